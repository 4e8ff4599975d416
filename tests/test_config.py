"""Recipes: the seed's tables verbatim, strict validation, overrides and the recipe hash."""

from pathlib import Path

import pytest
import yaml

from vgg16.config import RECIPE_DIR, check_dataset, load_recipe, parse_overrides

# The seed README's tables (section 参数配置), transcribed key by key.
SEED_CIFAR10 = {
    "num_classes": 10,
    "lr": 0.01,
    "lr_init": 0.01,
    "lr_max": 0.1,
    "lr_epochs": "30,60,90,120",
    "lr_scheduler": "step",
    "warmup_epochs": 5,
    "batch_size": 64,
    "max_epoch": 70,
    "momentum": 0.9,
    "weight_decay": 5e-4,
    "loss_scale": 1.0,
    "label_smooth": 0,
    "label_smooth_factor": 0,
    "buffer_size": 10,
    "image_size": "224,224",
    "pad_mode": "same",
    "padding": 0,
    "has_bias": False,
    "batch_norm": True,
    "keep_checkpoint_max": 10,
    "initialize_mode": "XavierUniform",
    "has_dropout": True,
}
SEED_IMAGENET = {
    **SEED_CIFAR10,
    "num_classes": 1000,
    "lr_scheduler": "cosine_annealing",
    "warmup_epochs": 0,
    "batch_size": 32,
    "max_epoch": 150,
    "weight_decay": 1e-4,
    "loss_scale": 1024,
    "label_smooth": 1,
    "label_smooth_factor": 0.1,
    "pad_mode": "pad",
    "padding": 1,
    "has_bias": True,
    "batch_norm": False,
    "initialize_mode": "KaimingNormal",
}


@pytest.mark.parametrize(
    ("name", "table"), [("cifar10", SEED_CIFAR10), ("imagenet2012", SEED_IMAGENET)]
)
def test_recipe_files_carry_the_seed_table_verbatim(name, table):
    raw = yaml.safe_load((RECIPE_DIR / f"{name}.yaml").read_text())
    assert {k: raw[k] for k in table} == table


def test_loaded_recipe_parses_the_seed_spellings():
    recipe = load_recipe(dataset="cifar10")
    assert recipe.image_size == (224, 224)
    assert recipe.lr_epochs == (30, 60, 90, 120)
    assert recipe.smooth_factor == 0.0
    imagenet = load_recipe(dataset="imagenet2012")
    assert imagenet.smooth_factor == pytest.approx(0.1)
    assert imagenet.T_max == 150


def test_digits_is_the_default_recipe():
    recipe = load_recipe()
    assert recipe.dataset == "digits"
    assert recipe.image_size == (32, 32)


def test_overrides_apply_after_the_file():
    recipe = load_recipe(
        dataset="digits", overrides=parse_overrides(["lr_max=0.2", "image_size=64,64"])
    )
    assert recipe.lr_max == pytest.approx(0.2)
    assert recipe.image_size == (64, 64)
    assert parse_overrides(["has_bias=true", "lr=0.5"]) == {"has_bias": True, "lr": 0.5}
    assert load_recipe(
        dataset="digits", overrides=parse_overrides(["lr=1e-3"])
    ).lr == pytest.approx(1e-3)


def test_unknown_key_is_named(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("dataset: digits\nnum_clases: 10\n")
    with pytest.raises(ValueError, match="num_clases") as err:
        load_recipe(path)
    assert "allowed keys" in str(err.value)
    assert str(path) in str(err.value)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("pad_mode=valid", r"pad_mode.*'same', 'pad'"),
        ("lr_scheduler=linear", r"lr_scheduler.*'step', 'cosine_annealing', 'exponential'"),
        ("batch_size=0", r"batch_size.*>= 1"),
        ("batch_size=8.5", r"batch_size.*integer"),
        ("image_size=30,30", r"image_size.*multiples of 32"),
        ("has_bias=maybe", r"has_bias.*true/false"),
        ("mean=0.5,0.5", r"mean.*3 values"),
        ("label_smooth=2", r"label_smooth.*\[0, 1\]"),
    ],
)
def test_bad_values_name_the_key_and_what_is_allowed(override, message):
    with pytest.raises(ValueError, match=message):
        load_recipe(dataset="digits", overrides=parse_overrides([override]))


def test_set_without_equals_is_rejected():
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["lr"])


def test_dataset_flag_must_agree_with_the_file():
    with pytest.raises(ValueError, match="'cifar10'.*'digits'"):
        load_recipe(RECIPE_DIR / "cifar10.yaml", dataset="digits")


def test_missing_recipe_file_names_the_path(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_recipe(tmp_path / "nope.yaml")


def test_hash_follows_training_keys_only():
    base = load_recipe(dataset="digits")
    assert load_recipe(dataset="digits", overrides={"eval_batch_size": 7}).hash() == base.hash()
    assert load_recipe(dataset="digits", overrides={"keep_checkpoint_max": 2}).hash() == base.hash()
    assert load_recipe(dataset="digits", overrides={"lr_max": 0.06}).hash() != base.hash()


def test_dump_round_trips(tmp_path: Path):
    recipe = load_recipe(dataset="imagenet2012", overrides={"max_epoch": 3})
    recipe.dump(tmp_path / "recipe.yaml")
    assert load_recipe(tmp_path / "recipe.yaml") == recipe


def test_conversion_keys_of_old_recipes_are_ignored_with_a_warning(tmp_path: Path):
    path = tmp_path / "old.yaml"
    path.write_text("dataset: digits\nval_fraction: 0.2\nshards: 4\nlr_max: 0.07\n")
    with pytest.warns(FutureWarning, match=r"\['shards', 'val_fraction'\].*vgg16 prepare"):
        recipe = load_recipe(path)
    assert recipe.lr_max == pytest.approx(0.07)
    assert not hasattr(recipe, "val_fraction")


@pytest.mark.parametrize(
    ("dataset", "num_classes", "message"),
    [
        ("imagenet2012", 10, "holds 'imagenet2012' data but the recipe is for 'digits'"),
        ("digits", 1000, "has 1000 classes but the recipe's num_classes is 10"),
    ],
)
def test_a_recipe_must_fit_its_data(dataset, num_classes, message):
    recipe = load_recipe(dataset="digits")
    check_dataset(recipe, "cifar10", 10, "x")  # one layout, one reader: allowed
    with pytest.raises(ValueError, match=message):
        check_dataset(recipe, dataset, num_classes, "data folder")
