"""Where ``MODULE:ATTR`` subjects are imported from: the current directory first, as ``python -m`` does.

A console script's ``sys.path[0]`` is the script's own folder, and ``pytest`` does not add the working
directory either, so ``backprop-check verify mymod:gradients`` run beside ``mymod.py`` would not find it.
"""

from __future__ import annotations

import importlib
import os
import sys


def current_directory_first() -> None:
    """Put the working directory at the front of ``sys.path`` (once), so a module beside the user is found.

    It stays there, as with ``python -m``: a subject that imports its own helpers lazily still finds them.
    """
    try:
        here = os.getcwd()
    except FileNotFoundError:  # the working directory was deleted: nothing there to import
        return
    if not sys.path or sys.path[0] not in ("", here):
        sys.path.insert(0, here)
    # Finders cache directory listings; a module written after start-up (a test, a notebook) must be seen.
    importlib.invalidate_caches()
