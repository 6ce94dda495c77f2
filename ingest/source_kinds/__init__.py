"""Every built-in source kind, one module each; importing this package registers them.

Other packages register kinds through the ``crowdwatch.sources`` entry-point group.
"""

from __future__ import annotations

from crowdwatch.kinds import import_kinds

import_kinds(__name__, __path__)
