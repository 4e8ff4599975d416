# Lint exception (snakemake --lint: "Specify a conda environment or container for each
# rule"): every rule runs the vgg16 package from the project's own virtual environment, which
# `make` creates from pyproject.toml; a conda environment per rule would install MindSpore's
# 2.5 GB again for each. tests/test_workflow.py checks that this is the only lint.
import json
from pathlib import Path
import shlex
import sys
import urllib.parse

from snakemake.utils import validate

validate(config, schema="../schemas/config.schema.yaml", set_default=True)

# The workflow reads its own package (beside this file), whatever else is installed.
ROOT = Path(workflow.basedir)
sys.path.insert(0, str(ROOT))
from vgg16 import formats
from vgg16.config import fit, load_recipe
from vgg16.layout import Results
from vgg16.stages import code_files

# Rules call the package through the interpreter that runs Snakemake, so the workflow
# uses the same environment whether snakemake is on PATH or called as .venv/bin/snakemake.
# `exec`: the command replaces the job's shell. A cluster that stops a job (a time limit,
# requeue, preemption) signals all its processes at once; a shell in between would die first,
# and Snakemake would end the job while `train` is still saving its position.
VGG16 = f"exec {shlex.quote(sys.executable)} -m vgg16"
RUNS = sorted(config["runs"])
#: The runs whose config asks for exported models (`export: [onnx, mindir]`).
EXPORTED = [run for run in RUNS if config["runs"][run]["export"]]
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
    """The classes verify checks: the config's, else the format's (None: the data's own)."""
    return spec.get("num_classes", formats.get(spec["format"]).num_classes)


def classes_known(spec):
    """A dataset's number of classes if known before anything runs: `num_classes_of`, else
    the class folders of a local folder (a folders dataset), else None (the data will say).
    """
    known = num_classes_of(spec)
    if (
        known is None
        and Path(spec.get("data_path", "")).is_dir()
        and "data_path" in spec
    ):
        known = len(formats.get(spec["format"]).class_names(Path(spec["data_path"])))
    return known


def check_dataset(spec):
    """Its format exists, can take its source, and a local folder of class folders has
    classes to count."""
    formats.check_source(spec)
    classes_known(spec)


def run_overrides(run):
    """The run's recipe overrides; for data whose classes are its own (folders), the data's
    number unless the run sets one (None: read from the data when training starts)."""
    spec = config["runs"][run]
    data = config["datasets"][spec["dataset"]]
    if num_classes_of(data) is not None or "num_classes" in spec["set"]:
        return spec["set"]
    return {**spec["set"], "num_classes": classes_known(data)}


def check_run(run, spec):
    """Its dataset exists, its recipe and overrides resolve, the recipe fits the data's
    classes, and a local pre-trained checkpoint is there; errors name the run and the key.
    """
    where = f"config runs.{run}"
    if spec["dataset"] not in config["datasets"]:
        raise ValueError(
            f"{where}.dataset: {spec['dataset']!r} is not one of the datasets "
            f"{sorted(config['datasets'])}"
        )
    try:
        recipe = load_recipe(spec["recipe"], overrides=run_overrides(run))
    except (FileNotFoundError, ValueError) as err:
        raise ValueError(f"{where}: {err}") from None
    classes = classes_known(config["datasets"][spec["dataset"]])
    if classes is not None:
        key = f"{where}.set.num_classes" if "num_classes" in spec["set"] else where
        try:
            fit(recipe, classes, f"dataset {spec['dataset']!r}")
        except ValueError as err:
            raise ValueError(f"{key}: {err}") from None
    pre_trained = spec.get("pre_trained")
    if isinstance(pre_trained, str) and not Path(pre_trained).is_file():
        raise FileNotFoundError(f"{where}.pre_trained: {pre_trained} does not exist")


# Each dataset and run resolved and checked now: an unknown format, a misspelt key, a bad
# value, a missing recipe or checkpoint, or a recipe that does not fit its data's classes stops
# even a dry run, before hours of data conversion.
for _name, _data in config["datasets"].items():
    try:
        check_dataset(_data)
    except (FileNotFoundError, ValueError) as _err:
        raise ValueError(f"config datasets.{_name}: {_err}") from None
for _run, _spec in config["runs"].items():
    check_run(_run, _spec)


#: The rules whose command starts msrun workers (`--workers`, `--nodes`).
LAUNCHING = ("train", "select", "evaluate")


def check_cluster_resources(name, resources):
    """Several-node settings a profile gives a rule (`set-resources`), checked now.

    The SLURM plugin (2.6.1) refuses an `mpi` rule without `tasks` or `tasks_per_node`, or
    with either at 1, in the thread that submits it, where nothing reports the error: the
    workflow then waits forever ("No active jobs"). And vgg16 starts one msrun per node with
    srun from the job's own shell, which `mpi` gives, so `nodes` above 1 needs `mpi` and one
    task per node, and its workers must divide evenly among the nodes.
    """
    where = f"set-resources of rule {name}"

    def given(key):
        """The value when the profile gives a constant (a function is checked by no one)."""
        res = resources.get(key)
        return None if res is None or res.is_evaluable() else res.value

    nodes, tasks, per_node = (
        given("nodes") or 1,
        given("tasks"),
        given("tasks_per_node"),
    )
    if "mpi" in resources:
        plugin = "the SLURM plugin would refuse it while submitting the job, and wait forever"
        if "tasks" not in resources and "tasks_per_node" not in resources:
            raise ValueError(
                f"{where}: `mpi` needs `tasks` (or `tasks_per_node`): {plugin} ("
                "\"For MPI jobs, please specify either 'tasks_per_node' or 'tasks' (at least "
                'one is required).")'
            )
        if "tasks" in resources and "tasks_per_node" in resources:
            raise ValueError(
                f"{where}: `mpi` takes `tasks` or `tasks_per_node`, not both: {plugin}"
            )
        if tasks is not None and tasks <= 1 or per_node is not None and per_node <= 1:
            raise ValueError(
                f"{where}: `mpi` needs more than one task ({plugin}: \"For MPI jobs, 'tasks' "
                'must be greater than 1."); for vgg16, one per node: `tasks` = `nodes`'
            )
    if nodes > 1 and name in LAUNCHING:
        if "mpi" not in resources:
            raise ValueError(
                f'{where}: `nodes: {nodes}` needs `mpi: "srun"` and `tasks: {nodes}`: vgg16 '
                "starts one msrun per node with srun from the job's own shell, where `mpi` runs "
                'the rule (README, "On a SLURM cluster")'
            )
        if per_node is not None or tasks is not None and tasks != nodes:
            raise ValueError(
                f"{where}: `nodes: {nodes}` takes one task per node, `tasks: {nodes}` (vgg16 "
                "runs one msrun on each node, which starts that node's workers)"
            )
        workers = given("workers")
        for run, spec in config["runs"].items():
            if (workers or spec["workers"]) % nodes:
                raise ValueError(
                    f"{where}: `nodes: {nodes}` does not divide the {workers or spec['workers']} "
                    f"workers of run {run} ("
                    + ("`workers` there" if workers else f"config runs.{run}.workers")
                    + ")"
                )


for _rule, _resources in workflow.resource_settings.overwrite_resources.items():
    check_cluster_resources(_rule, _resources)


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


def classes_flag(wildcards):
    """The classes verify checks, when the config or the format says (else the data's)."""
    known = num_classes_of(dataset_of(wildcards))
    return "" if known is None else f"--num_classes {known}"


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
    pairs = sorted(run_overrides(wildcards.run).items())
    return " ".join(f"--set {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in pairs)


def pre_trained_digest(spec):
    return spec.get("md5") or spec["sha256"]


def pre_trained(wildcards):
    """The checkpoint a run starts from (none, a local file, or a download shared by every
    run that names its URL): an input of `train`, so that replacing it retrains."""
    start = run_spec(wildcards).get("pre_trained")
    if start is None or isinstance(start, str):
        return [start] if start else []
    name = Path(urllib.parse.urlparse(start["url"]).path).name
    return [RESULTS.pretrained(pre_trained_digest(start), name)]


def fetch_flags(wildcards):
    """The URL and digest of the checkpoint downloaded as `{digest}`."""
    for spec in config["runs"].values():
        start = spec.get("pre_trained")
        if isinstance(start, dict) and pre_trained_digest(start) == wildcards.digest:
            digests = (
                f"--{key} {start[key]}" for key in ("md5", "sha256") if key in start
            )
            return f"--url {shlex.quote(start['url'])} {' '.join(digests)}"
    raise ValueError(f"no run's pre_trained has the digest {wildcards.digest}")


def workers(wildcards):
    return run_spec(wildcards)["workers"]


def parallel_flags(wildcards, resources):
    """msrun data parallelism; `workers` and `nodes` are resources, so a profile can set them."""
    return f"--workers {resources.workers} --nodes {resources.nodes}"


def export_formats(wildcards):
    """The formats the run's config asks for, as `vgg16 export --file_format` takes them."""
    return " ".join(fmt.upper() for fmt in run_spec(wildcards)["export"])


def eval_flags(wildcards):
    size = run_spec(wildcards).get("eval_batch_size")
    return f"--set eval_batch_size={size}" if size else ""
