"""``python -m cardio_explorer``: the console script, and what torchrun starts
(``torchrun --nproc-per-node N -m cardio_explorer train KIND ...``)."""

import sys

from cardio_explorer.app.cli import main

if __name__ == "__main__":
    sys.exit(main())
