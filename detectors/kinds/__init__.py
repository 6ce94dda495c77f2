"""Every built-in detector kind, one module each; importing this package registers them.

A module whose name starts with ``_`` holds shared code and is not a kind. Other
packages register kinds through the ``crowdwatch.detectors`` entry-point group.
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
