"""Stages: one name per stage across module, command, rule and README; code derived from imports.

Whether the derived code equals what each rule's process really runs is checked against the
real workflow in tests/test_workflow.py.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import re
import sys
from pathlib import Path

import pytest

from vgg16.cli import build_parser
from vgg16.stages import STAGES, code_digest, code_files, module, modules

REPO = Path(__file__).resolve().parent.parent
WORKFLOW_STAGES = list(STAGES)[:10]


def _commands(stage: str | None = None) -> dict[str, argparse.ArgumentParser]:
    """Command name or alias -> its parser."""
    (subparsers,) = [
        a for a in build_parser(stage)._actions if isinstance(a, argparse._SubParsersAction)
    ]
    return subparsers.choices


def test_each_stage_is_a_module_with_its_flags_and_main_and_a_command_of_the_same_name():
    commands = _commands()
    for stage in STAGES:
        stage_module = importlib.import_module(f"vgg16.{module(stage)}")
        assert callable(stage_module.main) and callable(stage_module.add_arguments), stage
        assert commands[stage].get_default("stage") == stage
        flags = {a.dest for a in _commands(stage)[stage]._actions} - {"help"}
        assert flags and not {a.dest for a in commands[stage]._actions} - {"help"}, stage
    assert {p.get_default("stage") for p in commands.values()} == set(STAGES)


def test_only_the_select_stage_has_a_module_of_another_name():
    """`select` would shadow the standard library's module of that name."""
    assert {stage: module(stage) for stage in STAGES if module(stage) != stage} == {
        "select": "selection"
    }
    with pytest.raises(ValueError, match="unknown stage 'fit'"):
        module("fit")


def test_no_module_is_named_after_a_standard_library_module():
    """msrun runs vgg16/__main__.py as a script, so the package folder comes first on
    sys.path: a module named like one of the standard library's would shadow it."""
    names = {p.stem for p in (REPO / "vgg16").rglob("*.py")} | {
        p.name for p in (REPO / "vgg16").iterdir() if p.is_dir() and p.name != "__pycache__"
    }
    assert not names & sys.stdlib_module_names


def test_the_workflow_has_one_rule_per_workflow_stage():
    rules = set()
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        rules |= set(re.findall(r"^rule (\w+):", smk.read_text(), re.MULTILINE))
    assert rules == set(WORKFLOW_STAGES)


def test_the_readme_map_names_every_stage_and_shared_module():
    """Every module and sub-package in the first cell of a row (and a sub-package's modules
    in its row); nothing else there but the stage names."""
    readme = (REPO / "README.md").read_text()
    map_section = readme[readme.index("### The map") : readme.index("### Tests")]
    listed, rows = set(), {}
    for line in map_section.splitlines():
        if line.startswith("| `"):  # a table row: the stage or module names in its first cell
            names = set(re.findall(r"`(\w+)(?:\.py|/)?`", line.split("|")[1]))
            listed |= names
            rows.update(dict.fromkeys(names, line))
    package = REPO / "vgg16"
    modules = {p.stem for p in package.glob("*.py")} - {"__init__", "__main__"}
    subpackages = {p.parent.name for p in package.glob("*/__init__.py")}
    assert listed - (set(STAGES) - modules) == modules | subpackages
    for sub in subpackages:
        for path in (package / sub).glob("*.py"):
            assert path.name == "__init__.py" or f"`{path.name}`" in rows[sub], path
    assert set(STAGES) <= listed


def _package(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "vgg16"
    root.mkdir()
    for name in ("__init__", "__main__", "cli"):
        (root / f"{name}.py").write_text("")
    for name, text in files.items():
        (root / f"{name}.py").write_text(text)
    return root


def test_modules_follow_every_kind_of_package_import(tmp_path: Path):
    root = _package(tmp_path, {
        "train": "import os\nfrom vgg16 import checkpoint, schedule\n",
        "checkpoint": "from vgg16.atomic import write_text\n",
        "schedule": "def f():\n    import vgg16.loss  # inside a function\n",
        "atomic": "", "loss": "import numpy\n", "plot": "from vgg16.tables import HISTORY\n",
        "tables": "",
    })  # fmt: skip
    assert modules("train", root) == ["__init__", "__main__", "atomic", "checkpoint", "cli",
                                      "loss", "schedule", "train"]  # fmt: skip
    assert [p.name for p in code_files("plot", root)] == [
        "__init__.py", "__main__.py", "cli.py", "plot.py", "tables.py"
    ]  # fmt: skip
    with pytest.raises(ValueError, match="unknown stage 'fit'"):
        modules("fit", root)


def test_a_c_modules_source_is_among_the_code_of_the_stages_that_import_it(tmp_path: Path):
    """`from vgg16 import _jpeg` runs `_jpeg.c` once built: editing it must rerun the stage,
    and a C file is not read for Python imports."""
    root = _package(tmp_path, {"train": "from vgg16 import images\n", "plot": "",
                               "images": "from vgg16 import _jpeg\n"})  # fmt: skip
    (root / "_jpeg.c").write_text("#include <jpeglib.h>\nimport vgg16.plot\n")
    assert modules("train", root) == ["__init__", "__main__", "_jpeg", "cli", "images", "train"]
    assert "_jpeg.c" in [p.name for p in code_files("train", root)]
    before = code_digest("train", root)
    (root / "_jpeg.c").write_text("/* edited */\n")
    assert code_digest("train", root) != before
    assert "_jpeg" not in modules("plot", root)


def test_code_digest_follows_the_stages_files_only(tmp_path: Path):
    root = _package(tmp_path, {"train": "from vgg16 import loss\n", "loss": "", "plot": ""})
    before = code_digest("train", root)
    (root / "plot.py").write_text("# edited\n")
    assert code_digest("train", root) == before
    (root / "loss.py").write_text("# edited\n")
    assert code_digest("train", root) != before


def test_modules_skip_names_already_followed_or_not_module_files_and_go_on(tmp_path: Path):
    """cli imports the stage it dispatches to (already followed when cli is read) and a name
    that `__init__` defines (no module file): both are skipped and the walk goes on to the
    entry modules still waiting. Every import statement counts, not just the last one."""
    root = _package(tmp_path, {
        "cli": "from vgg16 import train, __version__\n",
        "train": "from vgg16 import loss\nimport os\n",
        "loss": "",
    })  # fmt: skip
    assert modules("train", root) == ["__init__", "__main__", "cli", "loss", "train"]


def test_a_syntax_error_names_the_broken_file(tmp_path: Path):
    root = _package(tmp_path, {"train": "def broken(:\n"})
    with pytest.raises(SyntaxError) as err:
        modules("train", root)
    assert err.value.filename == str(root / "train.py")


def test_code_digest_hashes_each_files_name_and_bytes_in_name_order(tmp_path: Path):
    """Checkpoints store this digest and resume only from an equal one, so its definition is
    fixed: sha256 over name, NUL, bytes, NUL of each file sorted by module name, 16 hex
    digits."""
    root = _package(tmp_path, {"train": "from vgg16 import loss\n", "loss": "x = 1\n"})
    expected = hashlib.sha256(
        b"__init__.py\0\0"
        b"__main__.py\0\0"
        b"cli.py\0\0"
        b"loss.py\0x = 1\n\0"
        b"train.py\0from vgg16 import loss\n\0"
    ).hexdigest()[:16]
    assert code_digest("train", root) == expected


def test_modules_follow_sub_packages_and_skip_imports_only_a_type_checker_reads(tmp_path: Path):
    root = _package(tmp_path, {
        "train": "from typing import TYPE_CHECKING\nfrom vgg16.formats import cifar\n"
                 "if TYPE_CHECKING:\n    from vgg16 import group\nelse:\n    import vgg16.loss\n"
                 "import typing\nif typing.TYPE_CHECKING:\n    import vgg16.model\n"
                 "from . import relative\nfrom vgg16 import schedule\n",
        "group": "", "loss": "", "model": "", "schedule": "",
    })  # fmt: skip
    (root / "formats").mkdir()
    (root / "formats" / "__init__.py").write_text("from vgg16.formats.base import Format\n")
    (root / "formats" / "base.py").write_text("class Format: ...\n")
    (root / "formats" / "cifar.py").write_text("")
    assert modules("train", root) == ["__init__", "__main__", "cli", "formats", "formats.base",
                                      "formats.cifar", "loss", "schedule", "train"]  # fmt: skip
    assert [p.relative_to(root).as_posix() for p in code_files("train", root)] == [
        "__init__.py", "__main__.py", "cli.py", "formats/__init__.py", "formats/base.py",
        "formats/cifar.py", "loss.py", "schedule.py", "train.py",
    ]  # fmt: skip
    before = code_digest("train", root)
    (root / "formats" / "__init__.py").write_text("from vgg16.formats.base import Format\n#\n")
    assert code_digest("train", root) != before
