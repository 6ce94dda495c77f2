"""Every built-in detector kind, one module each; importing this package registers them.

A module whose name starts with ``_`` holds shared code and is not a kind. Other
packages register kinds through the ``crowdwatch.detectors`` entry-point group.
"""

from __future__ import annotations

from crowdwatch.kinds import import_kinds

import_kinds(__name__, __path__)
