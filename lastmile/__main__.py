"""`python -m lastmile ...` is the `lastmile` command."""

import sys

from lastmile.cli import main

sys.exit(main())
