"""`python -m shopstream.reconcile`: the command line of `shopstream.reconcile.cli`."""

import logging
import sys

from shopstream.reconcile.cli import main

if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    sys.exit(main())
