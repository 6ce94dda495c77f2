"""Every built-in source kind, one module each; importing this package registers them.

Other packages register kinds through the ``crowdwatch.sources`` entry-point group.
"""

from __future__ import annotations

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")
