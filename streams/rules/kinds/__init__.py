"""Every rule kind, one module each; importing this package registers them all.

A module whose name starts with ``_`` holds code several kinds share and is not a kind.
Third-party kinds register through the ``crowdwatch.rules`` entry-point group instead.
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
