"""The old name of :mod:`rover.hw.sentinel` (moved so that ``rover-calibrate motors`` starts the same sentinel)."""

import sys

from rover.hw import sentinel as _sentinel

if __name__ == "__main__":
    _sentinel._exit(_sentinel.main())
else:
    sys.modules[__name__] = _sentinel
