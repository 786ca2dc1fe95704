"""Pipeline editor benchmark: `./slipway bench editor` (README "Benchmarks").

On a generated, commented 200-step file (20 stages x 10 steps, a comment
above every step and at the end of its image line), measured in the same
process and run:

- baseline: the bare parse of the file (`yamltree.compose`: libyaml events
  into the position-keeping tree every later stage starts from);
- one visual edit, as the editor's server does it per change: `apply_ops`
  (set one step's image / move a step to another stage / insert a step)
  + the re-parse and lint of the result (`lint_text`);
- one lint pass (`lint_text`, per keystroke, debounced).

p50 / p95 in milliseconds over 100 rounds, and the p50 ratio to the baseline.
"""
from __future__ import annotations

import statistics
import time

ROUNDS = 100


def make_file(stages: int = 20, steps: int = 10) -> str:
    out = ["# A generated pipeline: 200 steps, every one commented.", "", "stages:"]
    for i in range(stages):
        out += [f"  # stage {i}", f"  - name: Stage {i}", "    when:", "      event: [ push, pull_request ]", "    steps:"]
        for j in range(steps):
            out += [
                f"      # step {i}.{j}: build part {j}",
                "      - runScriptConfig:",
                f"          image: golang:1.{j}   # pinned {i}.{j}",
                "          shellScript: |-",
                f"            go build ./part{j}/...",
                f"            go test ./part{j}/...",
                "        env:",
                f"          PART: \"{j}\"",
            ]
    out += ["timeout: 60", ""]
    return "\n".join(out)


def _measure(fn, rounds: int = ROUNDS) -> list[float]:
    fn()  # warm up
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return times


def _p(times: list[float], q: float) -> float:
    return statistics.quantiles(times, n=100, method="inclusive")[int(q) - 1]


def main() -> None:
    from devops.pipeline import apply_ops, lint_text
    from devops.pipeline.yamltree import compose

    text = make_file()
    assert sum(1 for ln in text.splitlines() if ln.strip() == "- runScriptConfig:") == 200
    assert not [p for p in lint_text(text) if p.is_error]

    def edit(ops):
        def run():
            out = apply_ops(text, ops)
            lint_text(out)
        return run

    cases = [
        ("bare parse (baseline)", lambda: compose(text)),
        ("edit: set one image + lint", edit([{"op": "set", "path": "stages[10].steps[5].runScriptConfig.image",
                                             "value": "golang:1.23"}])),
        ("edit: move a step to another stage + lint", edit([{"op": "move", "from": "stages[3].steps[2]",
                                                             "to": "stages[15].steps[0]"}])),
        ("edit: insert a step + lint", edit([{"op": "insert", "path": "stages[7].steps[4]",
                                              "value": {"runScriptConfig": {"image": "busybox", "shellScript": "true"}}}])),
        ("apply_ops alone: set one image", lambda: apply_ops(text, [
            {"op": "set", "path": "stages[10].steps[5].runScriptConfig.image", "value": "golang:1.23"}])),
        ("lint pass", lambda: lint_text(text)),
    ]
    # A single scalar set must change exactly one line even at this size.
    changed = [a for a, b in zip(text.splitlines(), apply_ops(text, [
        {"op": "set", "path": "stages[10].steps[5].runScriptConfig.image", "value": "golang:1.23"}]).splitlines(),
        strict=True) if a != b]
    assert changed == ["          image: golang:1.5   # pinned 10.5"], changed

    print(f"file: {len(text.splitlines())} lines, {len(text)} bytes, 200 steps; {ROUNDS} rounds each")
    base = None
    print(f"{'case':45} {'p50 ms':>8} {'p95 ms':>8} {'x parse':>8}")
    for name, fn in cases:
        times = _measure(fn)
        p50, p95 = _p(times, 50), _p(times, 95)
        base = base or p50
        print(f"{name:45} {p50:8.2f} {p95:8.2f} {p50 / base:8.1f}", flush=True)


if __name__ == "__main__":
    main()
