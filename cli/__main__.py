"""``python -m crowdwatch.cli``: the same as the ``crowdwatch`` command."""

import sys

from crowdwatch.cli.main import main

sys.exit(main())
