"""The stages, and the package code each one runs, derived from the imports.

Snakemake does not see changes in imported code, so each rule declares the package files its
stage runs as inputs; `train` stores a digest of the same files in every checkpoint, so a
checkpoint made by other code is never resumed from. Both come from `code_files`, which
follows the package's own imports (module level and inside functions, not those only a type
checker reads) from the stage's module and the command-line entry point: a list kept by hand
beside the code would drift.

This module imports nothing from the package, so the workflow can load it at parse time.
"""

from __future__ import annotations

import ast
import hashlib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
#: Stage name = rule name = `vgg16` command, with its one-line help. The first ten are the
#: workflow's rules, in its order.
STAGES = {
    "download": "materialise a raw dataset (URL, local path, ImageNet archives, digits)",
    "fetch": "download one checked file: a pre-trained checkpoint for fine-tuning",
    "verify": "check a raw layout's files, labels and counts",
    "prepare": "convert a dataset to MindRecord (train/val/test)",
    "train": "train VGG16 (seed: train.py)",
    "select": "pick the best checkpoint of a training run on the val split",
    "evaluate": "evaluate a checkpoint (seed: eval.py)",
    "plot": "a run's plots: training, test-set confusions and classes, mistakes",
    "summary": "one row per run: validation and test accuracy, training time",
    "export": "export a checkpoint to MINDIR or ONNX, with the preprocessing that feeds it",
    "predict": "class probabilities for image files (MindSpore, or ONNX Runtime alone)",
}
#: A stage's module is named after it, except where that name would shadow a standard-library
#: module (`select`): a script run by msrun has the package folder first on sys.path.
MODULES = {"select": "selection"}
#: What every command runs before its stage's module: `python -m vgg16 <stage> ...`.
ENTRY = ("__init__", "__main__", "cli")


def module(stage: str) -> str:
    """The name of the package module that holds `stage`'s `main`."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {list(STAGES)}")
    return MODULES.get(stage, stage)


def _type_checking_only(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in {
        "TYPE_CHECKING",
        "typing.TYPE_CHECKING",
    }


def _import_nodes(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement that runs: not those under `if TYPE_CHECKING:`."""
    found, todo = [], [tree]
    while todo:
        node = todo.pop()
        if _type_checking_only(node):
            todo.extend(node.orelse)
            continue
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        todo.extend(ast.iter_child_nodes(node))
    return found


def _imports(path: Path) -> set[str]:
    """Dotted names, relative to the package, of what `path` imports from it (and of the
    sub-packages that importing them runs), anywhere in the file."""
    found = set()
    for node in _import_nodes(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif node.module and not node.level:
            names = [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        else:
            continue
        for name in names:
            parts = name.split(".")
            if parts[0] == "vgg16":
                found |= {".".join(parts[1:i]) for i in range(2, len(parts) + 1)}
    return found


def _source(name: str, package: Path) -> Path | None:
    """The file of package module `name` ("train", "formats", "formats.cifar10"); a C
    module's source ("_jpeg": `_jpeg.c`), which imports nothing of the package."""
    base = package.joinpath(*name.split("."))
    for path in (base.with_suffix(".py"), base / "__init__.py", base.with_suffix(".c")):
        if path.is_file():
            return path
    return None  # `from vgg16.x import y` where y is no module


def modules(stage: str, package: Path = PACKAGE) -> list[str]:
    """The package modules `vgg16 <stage>` can run, sorted."""
    todo, seen = [*ENTRY, module(stage)], set()
    while todo:
        name = todo.pop()
        path = _source(name, package)
        if name in seen or path is None:
            continue
        seen.add(name)
        if path.suffix == ".py":
            todo.extend(_imports(path))
    return sorted(seen)


def code_files(stage: str, package: Path = PACKAGE) -> list[Path]:
    files = (_source(name, package) for name in modules(stage, package))
    return [path for path in files if path is not None]


def code_digest(stage: str, package: Path = PACKAGE) -> str:
    """sha256 over the stage's code files, paths in the package included, in a fixed order."""
    digest = hashlib.sha256()
    for path in code_files(stage, package):
        name = path.relative_to(package).as_posix()
        digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]
