"""`python -m vgg16 ...`, and the script msrun starts in each worker (msrun runs a file)."""

import sys
from pathlib import Path

if not __package__:
    # Run as a file, this folder comes first on sys.path, where select.py would shadow the
    # standard library's `select`: start from the folder that holds the package instead.
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from vgg16.cli import main  # noqa: E402

if __name__ == "__main__":  # not when a worker process of `images.decode_all` imports this
    raise SystemExit(main())
