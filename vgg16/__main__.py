"""`python -m vgg16 ...`, and the script msrun starts in each worker (msrun runs a file)."""

import sys
from pathlib import Path

if not __package__:
    # Run as a file (msrun runs this file in each worker), this folder comes first on
    # sys.path. Start from the folder that holds the package instead, so that a worker runs
    # the same copy of the package as the command that launched it (the workflow's, not one
    # installed elsewhere), and no module here stands in for a top-level one.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from vgg16.cli import main  # noqa: E402

if __name__ == "__main__":  # not when a worker process of `images.decode_all` imports this
    raise SystemExit(main())
