"""A Lambda function's init with CPython's cyclic garbage collector paused.

Init builds what lives as long as the sandbox (modules, classes, models, clients), and the
collector traverses that growing heap again and again while it is built: about a tenth of a chat
function's import time (docs/performance.md). So each function's ``app.py`` imports this module
before anything else, which pauses collection, and the end of init calls ``finish``: what init
built is frozen (later collections skip it, so requests do not pay for it either: the few cycles
init left as garbage, about 1 MB, stay with it) and collection resumes.

Only inside Lambda (``AWS_LAMBDA_RUNTIME_API``): there an init that fails ends the sandbox, so
collection never stays paused in a process that goes on. Anywhere else (tests, the local server,
the library) importing this module changes nothing.
"""

from __future__ import annotations

import gc
import os

_paused = bool(os.environ.get("AWS_LAMBDA_RUNTIME_API")) and gc.isenabled()
if _paused:
    gc.disable()


def finish() -> None:
    """The end of init: freeze what it built and collect again (once; later calls do nothing)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
