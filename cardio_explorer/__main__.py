"""``python -m cardio_explorer``: the same as the ``cardio-explorer`` command (torchrun uses it)."""

import sys

from cardio_explorer.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
