"""``python -m numrnn``: the command line (see :mod:`numrnn.cli`)."""

import sys

from numrnn.cli import main

if __name__ == "__main__":
    sys.exit(main())
