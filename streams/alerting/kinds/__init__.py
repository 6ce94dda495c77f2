"""Every built-in alert sink, one module each; importing this package registers them.

Other packages register sinks through the ``crowdwatch.sinks`` entry-point group.
"""

from __future__ import annotations

from crowdwatch.kinds import import_kinds

import_kinds(__name__, __path__)
