"""`python -m tradeoff`: the same command as the `tradeoff` console script."""

import sys

from tradeoff.cli import main

sys.exit(main())
