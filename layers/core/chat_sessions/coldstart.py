"""A Lambda function's init with CPython's cyclic garbage collector paused.

Init builds what lives as long as the sandbox (modules, classes, models, clients), and the
collector traverses that growing heap again and again while it is built: about a tenth of a chat
function's import time (docs/performance.md). So each function's ``app.py`` imports this module
before anything else, which pauses collection, and the end of init calls ``finish``: what init
built is frozen (later collections skip it, so requests do not pay for it either) and collection
resumes. In any other process (tests, the library), ``finish`` changes nothing unless this module
paused collection itself.
"""

from __future__ import annotations

import gc

_paused = gc.isenabled()
if _paused:
    gc.disable()


def finish() -> None:
    """The end of init: freeze what it built and collect again (once; later calls do nothing)."""
    global _paused
    if _paused:
        _paused = False
        gc.freeze()
        gc.enable()
