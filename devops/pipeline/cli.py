"""`python manage.py pipeline lint FILE...` and `pipeline show FILE` (a contract).

lint: one line per problem, `FILE:LINE:COL: PATH: message`, warnings as
`FILE:LINE:COL: warning: PATH: message` (PATH is `(document)` for problems of
the whole file, such as YAML syntax errors), on stdout. Exit status 0 when no
file has an error (warnings alone pass), 1 otherwise, including unreadable
files.

show: the normalised pipeline (implicit Clone stage, {include, exclude}
constraints, defaults) as YAML on stdout, exit 0; on errors the lint lines go
to stderr and the exit status is 1. Warnings also go to stderr.

FILE may be `-` for standard input, or a directory: its pipeline file is
found in the usual order (.devops.yml, .rancher-pipeline.yaml, .yml).
"""
from __future__ import annotations

import os
import pathlib
import sys

from devops.pipeline import dump, find_pipeline_file, load
from devops.pipeline.yamltree import MAX_BYTES


def add_arguments(name: str, parser) -> None:
    if name == "lint":
        parser.add_argument("files", nargs="+", metavar="FILE", help="pipeline files ('-' for stdin)")
    elif name == "show":
        parser.add_argument("file", metavar="FILE", help="a pipeline file ('-' for stdin)")


def _too_big(size: int | None) -> str:
    what = f"{size} bytes" if size else f"larger than {MAX_BYTES} bytes"
    return f"the file is {what}; the limit is {MAX_BYTES} bytes (1 MiB)"


def _read(arg: str) -> tuple[str, bytes | None, str]:
    """(display name, content or None, why not).

    At most MAX_BYTES + 1 bytes are read, so a huge file (or `/dev/zero`) costs
    neither memory nor time; it is refused with the linter's own message.
    """
    if arg == "-":
        content = sys.stdin.buffer.read(MAX_BYTES + 1)
        return ("<stdin>", None, _too_big(None)) if len(content) > MAX_BYTES else ("<stdin>", content, "")
    path = pathlib.Path(arg)
    if path.is_dir():
        found = find_pipeline_file(path)
        if found is None:
            return arg, None, "no .devops.yml or .rancher-pipeline.y[a]ml in this directory"
        path, arg = found, str(found)
    try:
        with path.open("rb") as f:
            content = f.read(MAX_BYTES + 1)
            if len(content) > MAX_BYTES:
                return arg, None, _too_big(os.fstat(f.fileno()).st_size)
        return arg, content, ""
    except OSError as exc:
        return arg, None, f"cannot read the file: {exc.strerror or exc}"


def handle(name: str, options: dict, stdout, stderr) -> int:
    if name == "lint":
        return _lint(options["files"], stdout)
    if name == "show":
        return _show(options["file"], stdout, stderr)
    raise ValueError(f"unknown sub-command {name!r}")


def _lint(files: list[str], out) -> int:
    failed = False
    for arg in files:
        shown, content, why = _read(arg)
        if content is None:
            out.write(f"{shown}:1:1: (document): {why}\n")
            failed = True
            continue
        result = load(content, filename=shown)
        for problem in result.problems:
            out.write(problem.format(shown) + "\n")
        failed = failed or not result.ok
    return 1 if failed else 0


def _show(arg: str, out, err) -> int:
    shown, content, why = _read(arg)
    if content is None:
        err.write(f"{shown}:1:1: (document): {why}\n")
        return 1
    result = load(content, filename=shown)
    for problem in result.problems:
        err.write(problem.format(shown) + "\n")
    if not result.ok:
        return 1
    out.write(dump(result.config))
    return 0
