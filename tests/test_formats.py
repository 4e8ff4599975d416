"""The formats registry and the split vocabulary: every format module is registered once, its
raw splits use the one vocabulary (vgg16/splits.py), and the schema, the docs and the shipped
configs say the same."""

from pathlib import Path

import pytest
import yaml

from vgg16 import formats
from vgg16.formats.base import Format
from vgg16.splits import SPLITS

REPO = Path(__file__).resolve().parent.parent


def test_every_format_module_is_registered_under_its_own_name() -> None:
    """A format module defines FORMAT; the others hold what formats share."""
    modules = {
        p.stem for p in (REPO / "vgg16" / "formats").glob("*.py") if "\nFORMAT = " in p.read_text()
    }
    assert set(formats.NAMES) == modules
    for name, fmt in formats.FORMATS.items():
        assert isinstance(fmt, Format) and fmt.name == name
        assert fmt.default_recipe == REPO / "config" / "recipes" / f"{name}.yaml"
        assert fmt.default_recipe.is_file()


def test_an_unknown_format_is_refused_naming_every_known_one() -> None:
    with pytest.raises(ValueError, match=r"^unknown dataset 'mnist': expected one of cifar10, "):
        formats.get("mnist")
    assert formats.get("digits") is formats.FORMATS["digits"]


def test_every_layout_has_a_train_split_named_in_the_one_vocabulary() -> None:
    for fmt in formats.FORMATS.values():
        assert "train" in fmt.raw_splits and set(fmt.raw_splits) <= set(SPLITS), fmt.name


def test_the_schema_allows_exactly_the_raw_splits_under_expect() -> None:
    schema = yaml.safe_load((REPO / "workflow" / "schemas" / "config.schema.yaml").read_text())
    dataset = schema["properties"]["datasets"]["additionalProperties"]
    assert set(dataset["properties"]["expect"]["properties"]) == {
        split for fmt in formats.FORMATS.values() for split in fmt.raw_splits
    }


def test_the_shipped_configs_expect_splits_their_format_has() -> None:
    for path in sorted((REPO / "config").glob("*.yaml")):
        for name, entry in yaml.safe_load(path.read_text())["datasets"].items():
            for split in entry.get("expect", {}):
                what = f"{path.name}: datasets.{name}.expect"
                formats.get(entry["format"]).check_split(split, what)


def test_the_shipped_configs_expect_their_formats_official_counts() -> None:
    """A config of an official dataset checks that every image of it is there."""
    for path in sorted((REPO / "config").glob("*.yaml")):
        for entry in yaml.safe_load(path.read_text())["datasets"].values():
            official = formats.get(entry["format"]).official_counts
            assert entry.get("expect") == official, path.name


def test_the_config_readme_table_gives_each_formats_folders() -> None:
    readme = (REPO / "config" / "README.md").read_text()
    table = readme[readme.index("## Splits") :].split("\n\n")[2].splitlines()
    header = [cell.strip() for cell in table[0].strip("|").split("|")]
    rows = {}
    for line in table[2:]:
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for fmt in cells[0].replace("`", "").split(", "):
            rows[fmt] = dict(zip(header, cells, strict=True))
    assert set(rows) == set(formats.NAMES)
    for name, fmt in formats.FORMATS.items():
        for split in SPLITS:
            cell = rows[name][f"`{split}`"]
            if split in fmt.raw_splits:
                assert cell.startswith(f"`{fmt.raw_splits[split]}"), (name, split)
            else:
                assert cell == "held out of `train`", (name, split)


def test_a_split_the_layout_lacks_is_explained() -> None:
    imagenet = formats.get("imagenet2012")
    assert imagenet.describe_splits() == (
        "train <- train, test <- val, val <- held out of train by prepare"
    )
    with pytest.raises(ValueError, match=r"^expect names split 'val', which a raw imagenet2012"):
        imagenet.check_split("val", "expect")
    imagenet.check_split("test", "expect")


def test_only_a_builtin_format_generates_its_layout(tmp_path: Path) -> None:
    assert [name for name, fmt in formats.FORMATS.items() if fmt.builtin] == ["digits"]
    with pytest.raises(ValueError, match="^cifar10 is not built in: it needs a source$"):
        formats.get("cifar10").generate(tmp_path)
    with pytest.raises(ValueError, match=r"^digits: archives \(--archive\) are ImageNet2012's"):
        formats.get("digits").from_archives({}, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("source", ["url", "data_path"])
def test_a_url_or_a_data_path_is_a_source_for_any_format(source: str) -> None:
    for name in ("cifar10", "folders", "imagenet2012"):
        formats.check_source({"format": name, source: "https://example.org/x or /data/x"})
    with pytest.raises(ValueError, match="^a folders dataset needs a source: url or data_path$"):
        formats.check_source({"format": "folders"})
