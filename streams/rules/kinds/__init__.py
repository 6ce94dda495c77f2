"""Every rule kind, one module each; importing this package registers them all.

A module whose name starts with ``_`` holds code several kinds share and is not a kind.
Third-party kinds register through the ``crowdwatch.rules`` entry-point group instead.
"""

from __future__ import annotations

from crowdwatch.kinds import import_kinds

import_kinds(__name__, __path__)
