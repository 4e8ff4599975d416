# Lint exception (snakemake --lint: "Specify a conda environment or container for each
# rule"): every rule runs the vgg16 package from the project's own virtual environment, which
# `make` creates from pyproject.toml; a conda environment per rule would install MindSpore's
# 2.5 GB again for each. tests/test_workflow.py checks that this is the only lint.
import json
from pathlib import Path
import shlex
import sys

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml", set_default=True)

# The workflow reads its own package (beside this file), whatever else is installed.
ROOT = Path(workflow.basedir)
sys.path.insert(0, str(ROOT))
from vgg16 import formats
from vgg16.config import check_dataset, load_recipe
from vgg16.layout import Results
from vgg16.stages import code_files

# Rules call the package through the interpreter that runs Snakemake, so the workflow
# uses the same environment whether snakemake is on PATH or called as .venv/bin/snakemake.
# `exec`: the command replaces the job's shell. A cluster that stops a job (a time limit,
# requeue, preemption) signals all its processes at once; a shell in between would die first,
# and Snakemake would end the job while `train` is still saving its position.
VGG16 = f"exec {shlex.quote(sys.executable)} -m vgg16"
RUNS = sorted(config["runs"])
# Every path of the results, from the package's one owner of the layout; the wildcards stand
# in for a dataset's and a run's name. (Params are formatted with wildcards only as strings.)
RESULTS = Results("results")
DATA = RESULTS.data("{dataset}")
RUN = RESULTS.run("{run}")


def run_folder(stage):
    """A param: the folder of `stage` in the run, which its command takes (as the seed's
    flags do) and finds its files in."""
    return lambda wildcards: str(getattr(RESULTS.run(wildcards.run), stage).path)


def num_classes_of(spec):
    return spec.get("num_classes", formats.get(spec["format"]).num_classes)


# Each dataset's format, and each run's recipe and overrides, resolved and checked now: an
# unknown format, a misspelt key, a bad value or a missing recipe file stops even a dry run,
# before hours of data conversion.
for _name, _data in config["datasets"].items():
    try:
        formats.get(_data["format"])
    except ValueError as _err:
        raise ValueError(f"config datasets.{_name}.format: {_err}") from None
for _run, _spec in config["runs"].items():
    if _spec["dataset"] not in config["datasets"]:
        raise ValueError(
            f"config runs.{_run}.dataset: {_spec['dataset']!r} is not one of the datasets "
            f"{sorted(config['datasets'])}"
        )
    _data = config["datasets"][_spec["dataset"]]
    try:
        _recipe = load_recipe(_spec["recipe"], overrides=_spec["set"])
        check_dataset(
            _recipe,
            _data["format"],
            num_classes_of(_data),
            f"dataset {_spec['dataset']!r}",
        )
    except (FileNotFoundError, ValueError) as _err:
        raise ValueError(f"config runs.{_run}: {_err}") from None


def code(stage):
    """The package files `vgg16 <stage>` runs: an edit reruns exactly the stages using it."""
    return [str(path.relative_to(ROOT)) for path in code_files(stage, ROOT / "vgg16")]


def dataset_of(wildcards):
    return config["datasets"][wildcards.dataset]


def source_flags(wildcards):
    """Where `download` takes the raw data from: a URL with its checksum, a local path,
    ImageNet's three archives, or nothing (digits is generated from scikit-learn's bundled
    copy)."""
    spec = dataset_of(wildcards)
    flags = [
        f"--{key} {shlex.quote(str(spec[key]))}"
        for key in ("url", "md5", "sha256", "data_path")
        if key in spec
    ]
    flags += [
        f"--archive {shlex.quote(f'{key}={path}')}"
        for key, path in spec.get("archives", {}).items()
    ]
    return " ".join(flags)


def num_classes(wildcards):
    return num_classes_of(dataset_of(wildcards))


def expect_flags(wildcards):
    expect = dataset_of(wildcards).get("expect", {})
    return " ".join(
        f"--expect {split}={count}" for split, count in sorted(expect.items())
    )


def run_spec(wildcards):
    return config["runs"][wildcards.run]


def run_prepared(wildcards):
    return RESULTS.data(run_spec(wildcards)["dataset"]).prepared


def run_data(wildcards):
    return str(run_prepared(wildcards).path)


def prepared_folder(wildcards):
    return str(RESULTS.data(wildcards.dataset).prepared.path)


def run_manifest(wildcards):
    return run_prepared(wildcards).manifest


def run_recipe(wildcards):
    return run_spec(wildcards)["recipe"]


def recipe_flags(wildcards):
    """The run's recipe overrides as `--set key=value` (values as JSON, which YAML reads)."""
    pairs = sorted(run_spec(wildcards)["set"].items())
    return " ".join(f"--set {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in pairs)


def workers(wildcards):
    return run_spec(wildcards)["workers"]


def parallel_flags(wildcards, resources):
    """msrun data parallelism; `workers` and `nodes` are resources, so a profile can set them."""
    return f"--workers {resources.workers} --nodes {resources.nodes}"


def eval_flags(wildcards):
    size = run_spec(wildcards).get("eval_batch_size")
    return f"--set eval_batch_size={size}" if size else ""
