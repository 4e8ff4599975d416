"""The stages, and the package code each one runs, derived from the imports.

Snakemake does not see changes in imported code, so each rule declares the package files its
stage runs as inputs; `train` stores a digest of the same files in every checkpoint, so a
checkpoint made by other code is never resumed from. Both come from `code_files`, which
follows the package's own imports (module level and inside functions) from the stage's module
and the command-line entry point: a list kept by hand beside the code would drift.

This module imports nothing from the package, so the workflow can load it at parse time.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
#: Stage name = rule name = `vgg16` command = module name. The first eight are the workflow.
STAGES = (
    "download",
    "verify",
    "prepare",
    "train",
    "select",
    "evaluate",
    "plot",
    "summary",
    "export",
    "predict",
)
#: What every command runs before its stage's module: `python -m vgg16 <stage> ...`.
ENTRY = ("__init__", "__main__", "cli")


def _imports(path: Path) -> set[str]:
    """Names of the package modules that `path` imports, anywhere in the file."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        found |= {name.split(".")[1] for name in names if name.startswith("vgg16.")}
    return found


def modules(stage: str, package: Path = PACKAGE) -> list[str]:
    """The package modules `vgg16 <stage>` can run, sorted."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {list(STAGES)}")
    todo, seen = [*ENTRY, stage], set()
    while todo:
        name = todo.pop()
        path = package / f"{name}.py"
        if name in seen or not path.is_file():  # `from vgg16 import x` of a non-module
            continue
        seen.add(name)
        todo.extend(_imports(path))
    return sorted(seen)


def code_files(stage: str, package: Path = PACKAGE) -> list[Path]:
    return [package / f"{name}.py" for name in modules(stage, package)]


def code_digest(stage: str, package: Path = PACKAGE) -> str:
    """sha256 over the stage's code files, names included, in a fixed order."""
    digest = hashlib.sha256()
    for path in code_files(stage, package):
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
