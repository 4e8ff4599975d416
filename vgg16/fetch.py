"""`vgg16 fetch`: one file from a URL, checked against its digest: a pre-trained checkpoint
that every run naming it shares (the workflow's `runs.<name>.pre_trained: {url, md5}`).

`download.fetch` does the work: a `.part` file renamed only once its checksum matches, retries
of transient errors, and nothing downloaded again once a matching file is there.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from vgg16 import download


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--url", required=True, help="the file (http, https or file URL)")
    parser.add_argument("--md5", help="its expected md5")
    parser.add_argument("--sha256", help="its expected sha256")
    parser.add_argument("--output", type=Path, required=True, help="where to keep it")


def main(args: argparse.Namespace) -> None:
    if not (args.md5 or args.sha256):
        raise ValueError(f"--url {args.url}: give its --md5 or --sha256, to know it arrived whole")
    path = download.fetch(args.url, args.output, md5=args.md5, sha256=args.sha256)
    print(f"fetched {args.url} to {path}")
