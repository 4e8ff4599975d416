"""The split vocabulary is defined once (vgg16/splits.py); the schema, the docs and the
shipped configs must say the same."""

from pathlib import Path

import pytest
import yaml

from vgg16.splits import HELD_OUT, RAW_SPLITS, SPLITS, check_raw_split, describe

REPO = Path(__file__).resolve().parent.parent


def test_every_split_is_a_raw_one_or_the_held_out_one() -> None:
    raw = {split for layout in RAW_SPLITS.values() for split in layout}
    assert raw | {HELD_OUT} == set(SPLITS) and HELD_OUT not in raw


def test_the_schema_allows_exactly_the_raw_splits_under_expect() -> None:
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    dataset = schema["properties"]["datasets"]["additionalProperties"]
    assert set(dataset["properties"]["expect"]["properties"]) == {
        split for layout in RAW_SPLITS.values() for split in layout
    }
    assert set(dataset["properties"]["format"]["enum"]) == set(RAW_SPLITS)


def test_the_shipped_configs_expect_splits_their_format_has() -> None:
    for path in sorted((REPO / "config").glob("*.yaml")):
        for name, entry in yaml.safe_load(path.read_text())["datasets"].items():
            for split in entry.get("expect", {}):
                check_raw_split(entry["format"], split, f"{path.name}: datasets.{name}.expect")


def test_the_config_readme_table_gives_each_formats_folders() -> None:
    readme = (REPO / "config" / "README.md").read_text()
    table = readme[readme.index("## Splits") :].split("\n\n")[2].splitlines()
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    rows = {}
    for line in table[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for fmt in cells[0].replace("`", "").split(", "):
            rows[fmt] = dict(zip(header, cells, strict=True))
    assert set(rows) == set(RAW_SPLITS)
    for fmt, layout in RAW_SPLITS.items():
        for split, where in layout.items():
            assert rows[fmt][f"`{split}`"].startswith(f"`{where}"), (fmt, split)
        assert rows[fmt][f"`{HELD_OUT}`"] == "held out of `train`"


def test_a_split_the_layout_lacks_is_explained() -> None:
    assert describe("imagenet2012") == (
        "train <- train, test <- val, val <- held out of train by prepare"
    )
    with pytest.raises(ValueError, match=r"^expect names split 'val', which a raw imagenet2012"):
        check_raw_split("imagenet2012", "val", "expect")
    with pytest.raises(ValueError, match=r"unknown dataset 'mnist'"):
        check_raw_split("mnist", "train", "expect")
