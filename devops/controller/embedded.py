"""The controller inside the web process (SLIPWAY_EMBEDDED_CONTROLLER=1): one-process setups.

`start()` runs `Controller.run_forever()` in a daemon thread, once per
process. The web server is multi-threaded, so the local engine starts its
runners with the `exec` start method here (forking a threaded process could
copy a lock some other thread holds). A separate `runcontroller` is the
default (`./slipway up`); both may run at once — the claims make that safe.
"""
from __future__ import annotations

import logging
import threading

from django.conf import settings

log = logging.getLogger("devops.controller")
_started = threading.Lock()
_thread: threading.Thread | None = None
_controller = None


def _engine():
    if settings.SLIPWAY_ENGINE == "local":
        from devops.engines.local.engine import LocalEngine

        return LocalEngine(start_method="exec")
    from devops.controller.loop import make_engine

    return make_engine()


def _run() -> None:
    global _controller
    from django.db import connection

    from devops.controller.loop import Controller

    try:
        _controller = Controller(_engine())
        _controller.run_forever()
    except Exception:  # never take the web process down with it
        log.exception("embedded controller stopped")
    finally:
        connection.close()


def start() -> threading.Thread | None:
    """Start the embedded controller thread when the setting asks for it; idempotent."""
    global _thread
    if not settings.SLIPWAY_EMBEDDED_CONTROLLER:
        return None
    with _started:
        if _thread is None or not _thread.is_alive():
            _thread = threading.Thread(target=_run, name="slipway-controller", daemon=True)
            _thread.start()
            log.info("embedded controller started")
    return _thread


def stop(timeout: float = 5.0) -> None:
    """Finish the current unit and end the thread (tests; a web process just exits)."""
    if _controller is not None:
        _controller.stopping = True
    if _thread is not None:
        _thread.join(timeout)
