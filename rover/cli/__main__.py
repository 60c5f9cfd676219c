"""``python -m rover.cli``: the same as the ``rover`` command."""

import sys

from rover.cli import main

if __name__ == "__main__":
    sys.exit(main())
