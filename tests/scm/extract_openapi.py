"""Extract the few parts of GitHub's OpenAPI description the SCM tests use (run by hand, output committed).

Input: `package/generated/api.github.com.json` of the npm package
@octokit/openapi (13 MB; not committed): `npm pack @octokit/openapi@23.0.2`.
Output: recordings/github-openapi-subset.json: for each operation Slipway
calls, the request body schema with every `$ref` resolved from the same
file, and the documented response example; plus the input's sha256.

    python tests/scm/extract_openapi.py /path/to/api.github.com.json
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

# (method, path) of every GitHub call whose body Slipway sends or whose answer it reads.
OPERATIONS = [
    ("post", "/repos/{owner}/{repo}/hooks"),
    ("post", "/repos/{owner}/{repo}/statuses/{sha}"),
    ("get", "/user/repos"),
    # the pipeline editor's commits (devops/scm/github.py commit_file)
    ("get", "/repos/{owner}/{repo}/git/ref/{ref}"),
    ("post", "/repos/{owner}/{repo}/git/refs"),
    ("get", "/repos/{owner}/{repo}/contents/{path}"),
    ("put", "/repos/{owner}/{repo}/contents/{path}"),
]


def resolve(node, root, depth=0):
    if depth > 40:
        raise ValueError("$ref too deep")
    if isinstance(node, dict):
        if "$ref" in node:
            target = root
            for part in node["$ref"].lstrip("#/").split("/"):
                target = target[part]
            return resolve(target, root, depth + 1)
        return {k: resolve(v, root, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve(v, root, depth + 1) for v in node]
    return node


def main(src: str) -> None:
    raw = Path(src).read_bytes()
    doc = json.loads(raw)
    out = {"source": "@octokit/openapi 23.0.2, generated/api.github.com.json",
           "sha256": hashlib.sha256(raw).hexdigest(), "info_version": doc["info"]["version"], "operations": {}}
    for method, path in OPERATIONS:
        op = doc["paths"][path][method]
        entry = {"operationId": op["operationId"]}
        body = op.get("requestBody")
        if body:
            entry["request_schema"] = resolve(body, doc)["content"]["application/json"]["schema"]
        for status in ("200", "201"):
            resp = op.get("responses", {}).get(status)
            if resp:
                content = resolve(resp, doc).get("content", {}).get("application/json", {})
                examples = content.get("examples", {})
                entry["response_status"] = int(status)
                entry["response_example"] = next(iter(examples.values()))["value"] if examples else None
        out["operations"][f"{method.upper()} {path}"] = entry
    target = Path(__file__).parent / "recordings" / "github-openapi-subset.json"
    target.write_text(json.dumps(out, indent=1, sort_keys=True) + "\n")
    print(f"wrote {target} ({target.stat().st_size} bytes)")


if __name__ == "__main__":
    main(sys.argv[1])
