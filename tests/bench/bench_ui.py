"""UI benchmarks: `./slipway bench ui` (README "Benchmarks", issue 10 point 7).

The execution page's server time and step-state -> DOM latency live in
`_ui_run.py`; the log viewer's figures (100 MiB log) in `_ui_logs.py`.
"""
from __future__ import annotations

from tests.bench import _ui_logs, _ui_run


def main() -> None:
    _ui_run.main()
    _ui_logs.main()
