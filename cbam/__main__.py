"""``python -m cbam``: see ``cbam.cli``."""

import sys

from .cli import main

sys.exit(main())
