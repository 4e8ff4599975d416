"""Recipes: the seed's tables verbatim, strict validation, overrides and the recipe hash."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from vgg16 import config
from vgg16.cli import parse_args
from vgg16.config import (
    Recipe,
    fit,
    from_args,
    load_recipe,
    parse_overrides,
    recipe_from_dict,
)
from vgg16.formats import base
from vgg16.layout import TrainFolder

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
    raw = yaml.safe_load((base.RECIPES / f"{name}.yaml").read_text())
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
        ("pad_mode=valid", "recipe key 'pad_mode'='valid': expected one of ['same', 'pad']"),
        (
            "lr_scheduler=linear",
            "recipe key 'lr_scheduler'='linear': expected one of "
            "['step', 'cosine_annealing', 'exponential']",
        ),
        (
            "initialize_mode=He",
            "recipe key 'initialize_mode'='He': expected one of ['XavierUniform', 'KaimingNormal']",
        ),
        (
            "amp_level=O4",
            "recipe key 'amp_level'='O4': expected one of ['auto', 'O0', 'O1', 'O2', 'O3']",
        ),
        ("label_smooth=2", "recipe key 'label_smooth'=2: expected one of [0, 1]"),
        ("batch_size=0", "recipe key 'batch_size'=0: expected >= 1"),
        ("num_classes=1", "recipe key 'num_classes'=1: expected >= 2"),
        ("lr=0", "recipe key 'lr'=0.0: expected > 0"),
        ("loss_scale=-1", "recipe key 'loss_scale'=-1.0: expected > 0"),
        (
            "loss_scale_type=adaptive",
            "recipe key 'loss_scale_type'='adaptive': expected one of ['fixed', 'dynamic']",
        ),
        ("warmup_epochs=-1", "recipe key 'warmup_epochs'=-1: expected >= 0"),
        ("weight_decay=-0.1", "recipe key 'weight_decay'=-0.1: expected >= 0"),
        (
            "label_smooth_factor=1",
            "recipe key 'label_smooth_factor'=1.0: expected 0 <= x < 1",
        ),
        (
            "warmup_epochs=5",  # the digits recipe trains 5 epochs
            "recipe key 'warmup_epochs'=5: expected < max_epoch (5) for the step schedule",
        ),
        (
            "image_size=30,30",
            "recipe key 'image_size'=(30, 30): expected multiples of 32 "
            "(VGG16 halves the size five times)",
        ),
        (
            "image_size=48,64",  # 48 is not below 32 but not a multiple of it
            "recipe key 'image_size'=(48, 64): expected multiples of 32 "
            "(VGG16 halves the size five times)",
        ),
        ("lr_epochs=60,30", "recipe key 'lr_epochs'=(60, 30): expected increasing epochs"),
        ("lr_epochs=30,30", "recipe key 'lr_epochs'=(30, 30): expected increasing epochs"),
        ("batch_size=8.5", "recipe key 'batch_size'=8.5: expected an integer"),
        ("batch_size=true", "recipe key 'batch_size'=True: expected an integer"),
        ("has_bias=maybe", "recipe key 'has_bias'='maybe': expected true/false (or 1/0)"),
        ("has_bias=2", "recipe key 'has_bias'=2: expected true/false (or 1/0)"),
        ("mean=0.5,0.5", "recipe key 'mean'='0.5,0.5': expected 3 values"),
        ("std=0.2,0.2", "recipe key 'std'='0.2,0.2': expected 3 values"),
        ("image_size=64,64,64", "recipe key 'image_size'='64,64,64': expected 2 values"),
        ("lr_epochs=30.5,60", "recipe key 'lr_epochs'='30.5,60': expected int values"),
        ("mean=a,b,c", "recipe key 'mean'='a,b,c': expected float values"),
        (
            "lr_epochs=true",
            "recipe key 'lr_epochs'=True: expected a list or a comma-separated string",
        ),
        ("lr=abc", "recipe key 'lr'='abc': expected a number"),
        ("lr=true", "recipe key 'lr'=True: expected a number"),
        ("lr=[0.1]", "recipe key 'lr'=[0.1]: expected a number"),
        ("pad_mode=1", "recipe key 'pad_mode'=1: expected a string"),
    ],
)
def test_bad_values_name_the_key_the_value_and_what_is_allowed(override: str, message: str):
    """The message is all a user sees of a typo in a long recipe: key, value and the rule."""
    with pytest.raises(ValueError) as err:
        load_recipe(dataset="digits", overrides=parse_overrides([override]))
    assert str(err.value) == message


def test_the_seeds_and_yamls_spellings_of_values_are_accepted(tmp_path: Path):
    """'224,224' or a list, one number for a square size or a single milestone, 1/0 for
    booleans, spaces and a trailing comma in comma-separated lists."""
    path = tmp_path / "spellings.yaml"
    path.write_text(
        "dataset: digits\n"
        "image_size: 64\n"
        "lr_epochs: 3\n"
        "mean: '0.5, 0.25, 0.125, '\n"
        "std: [1, 2, 3]\n"
        "has_bias: 1\n"
        "batch_norm: 0\n"
        "lr: 1e-3\n"
        "num_classes: 2\n"
    )
    recipe = load_recipe(path)
    assert recipe.image_size == (64, 64)
    assert recipe.lr_epochs == (3,)
    assert recipe.mean == (0.5, 0.25, 0.125)
    assert recipe.std == (1.0, 2.0, 3.0)
    assert type(recipe.std[0]) is float
    assert recipe.has_bias is True
    assert recipe.batch_norm is False
    assert recipe.lr == 0.001
    assert recipe.num_classes == 2


def test_warmup_may_fill_the_run_outside_the_step_schedule():
    """Only the step schedule divides by the steps after warm-up."""
    recipe = load_recipe(
        dataset="digits",
        overrides={"lr_scheduler": "cosine_annealing", "warmup_epochs": 5, "max_epoch": 5},
    )
    assert (recipe.warmup_epochs, recipe.max_epoch) == (5, 5)


def test_an_unknown_dataset_names_the_dataset_key():
    """Both as `--dataset` (which picks the built-in recipe) and as a recipe value."""
    expected = (
        "recipe key 'dataset': unknown dataset 'mnist': "
        "expected one of cifar10, imagenet2012, digits, folders"
    )
    with pytest.raises(ValueError) as err:
        load_recipe(dataset="mnist")
    assert str(err.value) == expected
    with pytest.raises(ValueError) as err:
        load_recipe(overrides={"dataset": "mnist"})
    assert str(err.value) == expected


def test_a_missing_builtin_recipe_says_the_repository_is_broken(tmp_path, monkeypatch):
    monkeypatch.setattr(base, "RECIPES", tmp_path)
    with pytest.raises(FileNotFoundError) as err:
        load_recipe(dataset="cifar10")
    assert str(err.value) == (
        f"built-in recipe {tmp_path / 'cifar10.yaml'} is missing (is the repository intact?)"
    )


def test_a_recipe_file_that_is_not_a_mapping_is_rejected(tmp_path: Path):
    path = tmp_path / "list.yaml"
    path.write_text("- lr\n- 0.1\n")
    with pytest.raises(ValueError) as err:
        load_recipe(path)
    assert str(err.value) == f"{path}: expected a mapping of recipe keys, got list"


def test_an_empty_recipe_file_means_the_defaults(tmp_path: Path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing set\n")
    assert load_recipe(path) == Recipe()


def test_a_dict_without_a_source_is_named_recipe_in_errors():
    with pytest.raises(ValueError) as err:
        recipe_from_dict({"lr_maxx": 0.1})
    assert str(err.value).startswith("recipe: unknown recipe key(s) ['lr_maxx']; allowed keys: [")


def test_set_without_equals_is_rejected():
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["lr"])


def test_set_splits_at_the_first_equals_and_an_empty_value_is_an_empty_string():
    assert parse_overrides(["pad_mode=a=b", " lr =0.5", "dataset="]) == {
        "pad_mode": "a=b",
        "lr": 0.5,
        "dataset": "",
    }


def _select_args(tmp_path: Path, *flags: str):
    """`vgg16 select` of a training run whose resolved recipe says lr_max 0.07."""
    train = tmp_path / "train"
    resolved = TrainFolder(train).recipe
    load_recipe(dataset="digits", overrides={"lr_max": 0.07}).dump(resolved)
    argv = ["select", "--data_path", "d", "--train", str(train), "--output", "o", *flags]
    return parse_args(argv), resolved


def test_a_command_reads_its_default_recipe_then_the_set_flags(tmp_path: Path):
    args, resolved = _select_args(tmp_path, "--set", "eval_batch_size=8", "--set", "seed=3")
    recipe = from_args(args, default=resolved)
    assert (recipe.lr_max, recipe.eval_batch_size, recipe.seed) == (0.07, 8, 3)


def test_a_commands_config_flag_wins_over_its_default(tmp_path: Path):
    other = tmp_path / "other.yaml"
    other.write_text("dataset: digits\nlr_max: 0.03\n")
    args, resolved = _select_args(tmp_path, "--config", str(other))
    assert from_args(args, default=resolved).lr_max == 0.03


def test_a_command_without_config_uses_the_builtin_recipe_of_its_dataset_flag():
    args = parse_args(
        ["evaluate", "--data_path", "d", "--pre_trained", "c.ckpt", "--dataset", "cifar10"]
    )
    recipe = from_args(args)
    assert (recipe.dataset, recipe.image_size) == ("cifar10", (224, 224))


def test_dataset_flag_must_agree_with_the_file():
    with pytest.raises(ValueError, match="'cifar10'.*'digits'"):
        load_recipe(base.RECIPES / "cifar10.yaml", dataset="digits")


def test_missing_recipe_file_names_the_path(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        load_recipe(tmp_path / "nope.yaml")


def test_hash_follows_training_keys_only():
    base = load_recipe(dataset="digits")
    assert load_recipe(dataset="digits", overrides={"eval_batch_size": 7}).hash() == base.hash()
    assert load_recipe(dataset="digits", overrides={"keep_checkpoint_max": 2}).hash() == base.hash()
    assert load_recipe(dataset="digits", overrides={"lr_max": 0.06}).hash() != base.hash()


def test_the_hash_of_the_default_recipe_is_stable():
    """Checkpoints store this hash and `train` resumes only from equal hashes: a change in how
    it is computed would make every existing run train again from scratch. Update the value
    only together with a deliberate change of the recipe's fields."""
    assert Recipe().hash() == "2b581a960d20cc45"  # since `loss_scale_type`


def test_to_dict_holds_lists_not_tuples():
    """YAML and JSON readers (and people) see the sequence keys as plain lists."""
    values = Recipe().to_dict()
    assert values["image_size"] == [224, 224]
    assert values["lr_epochs"] == [30, 60, 90, 120]
    assert values["mean"] == [0.4465, 0.4822, 0.4914]


def test_dump_round_trips(tmp_path: Path):
    recipe = load_recipe(dataset="imagenet2012", overrides={"max_epoch": 3})
    recipe.dump(tmp_path / "out" / "recipe.yaml")
    assert load_recipe(tmp_path / "out" / "recipe.yaml") == recipe


def test_dump_keeps_the_fields_in_the_seeds_table_order(tmp_path: Path):
    """A person reads the resolved recipe like the recipe files: dataset first, not sorted."""
    Recipe().dump(tmp_path / "recipe.yaml")
    text = (tmp_path / "recipe.yaml").read_text()
    assert text.startswith("dataset: cifar10\nnum_classes: 10\nlr: 0.01\nlr_init: 0.01\n")
    assert list(yaml.safe_load(text)) == list(config.FIELDS)


def test_conversion_keys_of_old_recipes_are_ignored_with_a_warning(tmp_path: Path):
    path = tmp_path / "old.yaml"
    path.write_text("dataset: digits\nval_fraction: 0.2\nshards: 4\nlr_max: 0.07\n")
    with pytest.warns(FutureWarning) as warned:
        recipe = load_recipe(path)
    assert [str(w.message) for w in warned] == [
        f"{path}: recipe key(s) ['shards', 'val_fraction'] are ignored: the val split and the "
        "shards are settings of `vgg16 prepare` (--val_fraction, --shards) and of the "
        "workflow's datasets.<name> entries; remove them from the recipe"
    ]
    assert recipe.lr_max == pytest.approx(0.07)
    assert not hasattr(recipe, "val_fraction")


def test_a_recipe_fits_any_datas_classes_or_takes_them():
    """Recipes are not tied to a dataset: only the number of classes must agree, and a recipe
    that leaves it open (null) takes the data's."""
    recipe = load_recipe(dataset="digits")
    assert fit(recipe, 10, "x") is recipe
    with pytest.raises(ValueError) as err:
        fit(recipe, 1000, "data folder")
    assert str(err.value) == "data folder has 1000 classes but the recipe's num_classes is 10"
    open_ended = load_recipe(dataset="digits", overrides={"num_classes": None})
    assert fit(open_ended, 7, "x") == dataclasses.replace(recipe, num_classes=7)


def test_transforms_are_the_recipes_choice_defaulting_to_its_datasets_family():
    assert load_recipe(dataset="digits").transforms == "cifar"
    assert load_recipe(dataset="folders").transforms == "imagenet"
    assert load_recipe(dataset="digits", overrides={"transforms": "imagenet"}).transforms == (
        "imagenet"
    )
    assert recipe_from_dict({"dataset": "imagenet2012"}).transforms == "imagenet"  # an old recipe
    with pytest.raises(ValueError, match=r"^recipe key 'transforms'='resnet': expected one of "):
        recipe_from_dict({"transforms": "resnet"})
    with pytest.raises(ValueError, match=r"^recipe key 'freeze'='all': expected one of "):
        recipe_from_dict({"freeze": "all"})
    with pytest.raises(ValueError, match=r"^recipe key 'num_classes'=1: expected >= 2$"):
        recipe_from_dict({"num_classes": 1})
