"""`python -m lastmile` is `lastmile`."""

import sys

from lastmile.cli import main

sys.exit(main())
