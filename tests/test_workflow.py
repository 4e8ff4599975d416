"""The Snakemake workflow, driven through the real `snakemake` on copies of the repository.

A tiny CIFAR-format set (200 of scikit-learn's digits) and a 2-epoch recipe make a full run
take about a minute on 2 cores. That finished run is made once per session; each rerun test
works on its own copy of it, so any test passes or fails alone (`pytest -k`).
"""

from __future__ import annotations

import csv
import html
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import write_source
from PIL import Image

from vgg16 import checkpoint
from vgg16.plot import eval_figures

#: Runs the real snakemake (left out of `make check`).
pytestmark = pytest.mark.workflow

REPO = Path(__file__).resolve().parent.parent
TINY_RECIPE = {
    "dataset": "cifar10", "num_classes": 10, "image_size": "32,32", "max_epoch": 2,
    "warmup_epochs": 0, "lr_max": 0.05, "batch_size": 16, "eval_batch_size": 32,
    "keep_checkpoint_max": 5, "random_flip": False, "log_interval": 5,
    "mean": [0.19, 0.19, 0.19], "std": [0.33, 0.33, 0.33],
}  # fmt: skip
#: Relative to the working directory, so that copies of a finished run keep their parameters.
DATASETS = {
    "tiny": {"format": "cifar10", "data_path": "src", "expect": {"train": 160, "test": 40},
             "val_fraction": 0.2},
}  # fmt: skip
#: Each rule and the rules that consume its outputs, directly or not (the DAG, by hand).
DOWNSTREAM = {
    "download": {"verify", "prepare", "train", "select", "evaluate", "plot", "summary", "export"},
    "verify": {"prepare", "train", "select", "evaluate", "plot", "summary", "export"},
    "prepare": {"train", "select", "evaluate", "plot", "summary", "export"},
    "train": {"select", "evaluate", "plot", "summary", "export"},
    "select": {"evaluate", "plot", "summary", "export"},
    "evaluate": {"plot", "summary"},
    "plot": set(),
    "summary": set(),
    "export": set(),
}
ALL_RULES = {*DOWNSTREAM, "all"}
#: Every figure of a run and its size in pixels (vgg16/plot.py's inches at 100 dpi); the
#: gallery of mistakes is 50 px of title and 175 px per row of (up to) 8 of them.
FIGURES = {"loss.png": (600, 400), "lr.png": (600, 400), "accuracy.png": (600, 400),
           "confusion.png": (1200, 700), "per_class.png": (800, 700),
           "mistakes.png": None}  # fmt: skip
AFTER_TRAINING = {"train": 1, "select": 1, "evaluate": 1, "plot": 1, "summary": 1, "all": 1}


def snakemake(
    workdir: Path, *args: str, check: bool = True, env: dict | None = None
) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", "--directory", str(workdir),
           "--snakefile", str(workdir / "Snakefile"), *args]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if check and result.returncode:
        raise AssertionError(f"{cmd} failed:\n{result.stdout}\n{result.stderr}")
    return result


def job_counts(result: subprocess.CompletedProcess) -> dict[str, int]:
    """The 'Job stats' table Snakemake prints before running (or dry-running) jobs."""
    text = result.stdout + result.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:", 1)[1]
    counts = {}
    for line in table.splitlines()[3:]:
        match = re.fullmatch(r"(\w+)\s+(\d+)", line.strip())
        if not match:
            break
        counts[match[1]] = int(match[2])
    counts.pop("total", None)
    return counts


def copy_repo(dest: Path) -> Path:
    for name in ("Snakefile", "workflow", "config", "profiles", "vgg16"):
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, dest / name)
    return dest


def write_config(workdir: Path, runs: dict, datasets: dict | None = None) -> list[str]:
    config = {"datasets": datasets or DATASETS, "runs": runs}
    (workdir / "test-config.yaml").write_text(yaml.safe_dump(config))
    return ["--configfile", str(workdir / "test-config.yaml")]


def tiny_run(**overrides) -> dict:
    return {"dataset": "tiny", "recipe": "tiny.yaml", "set": overrides}


#: The finished run also exports its selected checkpoint; the tests that retrain leave it
#: out, which spares them an export each.
EXPORTS = ["onnx", "mindir"]


def exporting_run() -> dict:
    return {**tiny_run(), "export": EXPORTS}


@pytest.fixture(scope="session")
def finished(digits, tmp_path_factory) -> Path:
    """A copy of the repository with a tiny dataset, after one complete run. Read-only.

    Every Python process of the run lists its imports in its rule's log (-X importtime):
    what each stage really runs, to check the code inputs the rules declare against."""
    workdir = copy_repo(tmp_path_factory.mktemp("workflow"))
    write_source(workdir / "src", *digits, train=160, test=40)
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(TINY_RECIPE))
    result = snakemake(workdir, *write_config(workdir, {"tiny": exporting_run()}),
                       env={"PYTHONPROFILEIMPORTTIME": "1"})  # fmt: skip
    assert set(job_counts(result)) == ALL_RULES
    return workdir


def _link_checkpoints(src: str, dst: str) -> None:
    """Checkpoints are only ever replaced, moved or deleted, never written in place, so the
    copies can share them (about 0.8 GB per copy)."""
    if src.endswith(".ckpt"):
        os.link(src, dst)
    else:
        shutil.copy2(src, dst)


@pytest.fixture
def workdir(finished, tmp_path) -> Path:
    """This test's own copy of the finished run, modification times and Snakemake state kept."""
    copy = tmp_path / "w"
    shutil.copytree(finished, copy, symlinks=True, copy_function=_link_checkpoints)
    yield copy
    shutil.rmtree(copy)


def test_full_run_writes_every_interface_path(finished):
    run = finished / "results" / "runs" / "tiny"
    for path in ("train/history.csv", "train/recipe.yaml", "select/selection.csv",
                 "select/best.ckpt", "eval/metrics.json", "eval/confusion.csv",
                 "eval/mistakes.csv", "eval/mistakes.npz",
                 *(f"plots/{name}" for name in FIGURES)):  # fmt: skip
        assert (run / path).is_file(), path
    exported = json.loads((run / "export" / "preprocessing.json").read_text())
    assert exported["class_names"] == [str(d) for d in range(10)]
    made = {p.name for p in (run / "export").iterdir()} - {".snakemake_timestamp"}
    assert made == {"preprocessing.json", "vgg16.mindir", "vgg16.onnx"}
    assert (finished / "results" / "comparison.png").is_file()
    assert len(list((run / "train" / "ckpt").glob("*.ckpt"))) == 2
    data = finished / "results" / "data" / "tiny"
    assert (data / "verified.json").is_file() and (data / "mindrecord" / "manifest.json").is_file()
    summary = (finished / "results" / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("run,dataset,recipe,epochs,val_top1")
    assert summary[1].startswith("tiny,cifar10,tiny.yaml,2,")
    for rule in ("train", "select", "evaluate", "prepare"):
        assert list((finished / "results" / "benchmarks" / rule).glob("*.tsv")), rule


def test_the_runs_figures_hold_its_confusion_matrix_metrics_and_mistakes(finished):
    """The PNGs have their sizes, and the figures `vgg16 plot` drew into them hold the run's
    own numbers, read here with the csv and json modules."""
    run = finished / "results" / "runs" / "tiny"
    wrong = len((run / "eval" / "mistakes.csv").read_text().splitlines()) - 1
    for name, size in FIGURES.items():
        with Image.open(run / "plots" / name) as image:
            assert image.size == (size or (1200, 50 + 175 * -(-wrong // 8))), name
    with (run / "eval" / "confusion.csv").open() as f:
        header, *rows = list(csv.reader(f))
    counts = np.array([[int(v) for v in row[1:]] for row in rows])
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    with (run / "eval" / "mistakes.csv").open() as f:
        mistakes = list(csv.DictReader(f))
    figures = eval_figures(run / "eval")

    (heat,) = [ax for ax in figures["confusion.png"].axes if ax.get_images()]
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros(counts.shape), where=totals > 0)
    np.testing.assert_allclose(heat.get_images()[0].get_array(), shares)
    assert [label.get_text() for label in heat.get_yticklabels()] == header[1:]

    (chart,) = figures["per_class.png"].axes
    bars = sorted(chart.patches, key=lambda bar: bar.get_y())
    accuracy = [a for a in metrics["per_class_accuracy"].values() if a is not None]
    assert [bar.get_width() for bar in bars] == sorted(accuracy, reverse=True)
    assert list(chart.get_lines()[0].get_xdata()) == [metrics["top1"]] * 2

    wrong = int(counts.sum() - np.trace(counts))
    assert wrong > 0 and len(mistakes) == min(32, wrong)  # all of them, up to 32
    names = header[1:]
    for row in mistakes:  # each is one of confusion.csv's off-diagonal counts
        assert row["true"] != row["predicted"]
        assert counts[names.index(row["true"]), names.index(row["predicted"])] > 0
    probabilities = [float(row["probability"]) for row in mistakes]
    assert probabilities == sorted(probabilities, reverse=True)
    shown = [ax for ax in figures["mistakes.png"].axes if ax.get_images()]
    assert [ax.get_title() for ax in shown] == [
        f"true {row['true']}\npredicted {row['predicted']}\np = {float(row['probability']):.3f}"
        for row in mistakes
    ]


def test_second_run_has_nothing_to_do(workdir):
    result = snakemake(workdir, *write_config(workdir, {"tiny": exporting_run()}))
    assert "Nothing to be done" in result.stdout + result.stderr


def test_another_list_of_export_formats_exports_again_and_nothing_else(workdir):
    run = {**tiny_run(), "export": ["onnx"]}
    result = snakemake(workdir, "--dry-run", *write_config(workdir, {"tiny": run}))
    assert job_counts(result) == {"export": 1, "all": 1}


def test_eval_batch_size_reruns_evaluation_and_what_reads_it_only(workdir):
    run = {**tiny_run(), "eval_batch_size": 8}
    result = snakemake(workdir, *write_config(workdir, {"tiny": run}))
    assert job_counts(result) == {"evaluate": 1, "plot": 1, "summary": 1, "all": 1}


def training_hashes(ckpt_dir: Path) -> set[str]:
    return {checkpoint.read(p, meta_only=True)[1]["training_hash"] for p in ckpt_dir.glob("*.ckpt")}


def test_learning_rate_reruns_training_not_data(workdir):
    ckpt = workdir / "results" / "runs" / "tiny" / "train" / "ckpt"
    (before,) = training_hashes(ckpt)
    result = snakemake(workdir, *write_config(workdir, {"tiny": tiny_run(lr_max=0.02)}))
    assert job_counts(result) == AFTER_TRAINING
    # The first recipe's checkpoints are kept aside, not deleted, and not selected.
    assert training_hashes(ckpt / f"previous-{before}") == {before}
    assert len(list(ckpt.glob("*.ckpt"))) == 2 and before not in training_hashes(ckpt)


def test_training_code_edit_retrains_and_keeps_the_data(workdir):
    """Snakemake reruns `train`, and `train` really trains again rather than "resuming" the
    finished run: the old checkpoints are set aside and every epoch is trained anew."""
    ckpt = workdir / "results" / "runs" / "tiny" / "train" / "ckpt"
    (before,) = training_hashes(ckpt)
    schedule = workdir / "vgg16" / "schedule.py"
    schedule.write_text(schedule.read_text() + "\n# edited\n")
    result = snakemake(workdir, *write_config(workdir, {"tiny": tiny_run()}))
    assert job_counts(result) == AFTER_TRAINING
    assert training_hashes(ckpt / f"previous-{before}") == {before}
    (after,) = training_hashes(ckpt)
    assert after != before and len(list(ckpt.glob("*.ckpt"))) == 2
    log = (workdir / "results" / "logs" / "train" / "tiny.log").read_text()
    assert "epoch 1/2 done" in log and "epoch 2/2 done" in log and "resuming" not in log


#: A learning-rate sweep of two: the session's finished run and a second one.
SWEEP = {"tiny": tiny_run(), "tiny_b": tiny_run(lr_max=0.02)}


@pytest.fixture(scope="module")
def sweep(finished, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """A copy of the finished run with the second run of `SWEEP` added, after the run that
    trains it (shared by the tests of the sweep and its report). Read-only."""
    copy = tmp_path_factory.mktemp("sweep") / "w"
    shutil.copytree(finished, copy, symlinks=True, copy_function=_link_checkpoints)
    result = snakemake(copy, *write_config(copy, SWEEP))
    yield copy, result
    shutil.rmtree(copy)


def test_a_second_run_trains_only_itself(sweep):
    workdir, result = sweep
    assert job_counts(result) == AFTER_TRAINING
    assert "run=tiny_b" in result.stdout + result.stderr


def test_the_summary_puts_the_best_test_top1_first(sweep):
    workdir, _ = sweep
    runs = workdir / "results" / "runs"
    top1 = {run: json.loads((runs / run / "eval" / "metrics.json").read_text())["top1"]
            for run in SWEEP}  # fmt: skip
    assert top1["tiny"] != top1["tiny_b"], top1  # the sweep tells the orders apart
    with (workdir / "results" / "summary.csv").open() as f:
        table = list(csv.DictReader(f))
    assert [row["run"] for row in table] == sorted(SWEEP, key=lambda run: -top1[run])
    assert [float(row["test_top1"]) for row in table] == sorted(top1.values(), reverse=True)
    with Image.open(workdir / "results" / "comparison.png") as image:
        assert image.size == (800, 500)


@pytest.fixture(scope="module")
def report(sweep, tmp_path_factory) -> Path:
    """`snakemake --report` of the sweep."""
    workdir, _ = sweep
    path = tmp_path_factory.mktemp("report") / "report.html"
    snakemake(workdir, *write_config(workdir, SWEEP), "--report", str(path))
    return path


#: Where each file is in the report: (category, subcategory).
REPORT_PLACES = {
    "plots/loss.png": "training", "plots/lr.png": "training",
    "plots/accuracy.png": "checkpoint selection", "select/selection.csv": "checkpoint selection",
    "plots/confusion.png": "test set", "plots/per_class.png": "test set",
    "eval/confusion.csv": "test set", "eval/metrics.json": "test set",
    "plots/mistakes.png": "mistakes", "eval/mistakes.csv": "mistakes",
    "train/recipe.yaml": "recipe",
}  # fmt: skip


def _report_categories(report: Path) -> dict:
    """The `categories` object the report's page defines: category -> subcategory -> files."""
    text = report.read_text()
    start = text.index("var categories = ") + len("var categories = ")
    return json.JSONDecoder().raw_decode(text[start:])[0]


def test_the_report_files_every_result_under_its_run_or_the_summary(report):
    want = {run: {} for run in SWEEP}
    for run in SWEEP:
        for path, place in REPORT_PLACES.items():
            want[run].setdefault(place, []).append(f"results/runs/{run}/{path}")
    want["Summary"] = {"Other": ["results/comparison.png", "results/summary.csv"]}
    got = _report_categories(report)
    assert {c: {s: sorted(files) for s, files in subs.items()} for c, subs in got.items()} == {
        c: {s: sorted(files) for s, files in subs.items()} for c, subs in want.items()
    }


def chromium() -> str:
    """The browser of the report test: $VGG16_CHROMIUM (what tests/browser/install printed:
    `.ci/run` sets it, so CI never skips this test), else chromium on the PATH."""
    given = os.environ.get("VGG16_CHROMIUM")
    found = given or shutil.which("chromium") or shutil.which("chromium-browser")
    if not found:
        pytest.skip(
            "no chromium on the PATH to open the report in: run tests/browser/install "
            "(apt-get install chromium, as root or with sudo)"
        )
    return found


def open_in_browser(report: Path, tmp_path: Path) -> dict:
    """The report in headless Chromium, with tests/browser/probe.js at the top of a copy of
    it: after loading, every image it embeds, decoded by the browser (path, loaded, width,
    height), the errors its scripts raised, its categories and its text."""
    probe = (REPO / "tests" / "browser" / "probe.js").read_text()
    page = tmp_path / "report-probed.html"
    page.write_text(report.read_text().replace("<head>", f"<head><script>{probe}</script>", 1))
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu",
           f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=30000",
           "--dump-dom", page.as_uri()]  # fmt: skip
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    found = re.search(r'<pre id="vgg16-probe">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found, f"no probe result:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return json.loads(html.unescape(found[1]))


def test_every_image_of_the_report_loads_in_a_browser(report, sweep, tmp_path):
    workdir, _ = sweep
    seen = open_in_browser(report, tmp_path)
    assert seen["errors"] == []
    figures = [f"results/runs/{run}/plots/{name}" for run in SWEEP for name in FIGURES]
    assert sorted(image["path"] for image in seen["images"]) == sorted(
        [*figures, "results/comparison.png"]
    )
    for image in seen["images"]:
        with Image.open(workdir / image["path"]) as file:
            assert image["loaded"] and (image["width"], image["height"]) == file.size, image
    assert seen["categories"] == _report_categories(report)
    shown = seen["text"].splitlines()
    assert {"tiny", "tiny_b", "Summary"} <= set(shown)  # the page's menu, drawn by its scripts


IMPORTED = re.compile(r"^import time:\s+\d+ \|\s+\d+ \|\s+vgg16(?:\.([\w.]+))?$", re.MULTILINE)


def modules_run(finished: Path) -> dict[str, set[str]]:
    """Per rule, the package modules its process really ran: what it imported (listed by
    -X importtime), the stage's own module (`stages.module`: `vgg16 <rule>` imports it with
    importlib, which importtime does not list, though it lists what that module imports) and
    `__main__` (run by `python -m vgg16`, not imported)."""
    from vgg16.stages import module

    logs, found = finished / "results" / "logs", {}
    for rule in DOWNSTREAM:
        (log,) = [*logs.glob(f"{rule}/*.log"), *logs.glob(f"{rule}.log")]
        imported = {name or "__init__" for name in IMPORTED.findall(log.read_text())}
        assert {"__init__", "cli"} <= imported, (rule, imported)  # importtime did list them
        found[rule] = imported | {module(rule), "__main__"}
    return found


def test_each_stage_declares_exactly_the_modules_it_runs(finished):
    """The derived code inputs equal what each rule's process ran."""
    from vgg16.stages import modules

    for rule, ran in modules_run(finished).items():
        assert set(modules(rule)) == ran, rule


def test_editing_a_module_reruns_exactly_the_stages_that_import_it(finished, workdir, tmp_path):
    """A package module edited in a copy of the finished run: the dry run plans the rules
    whose processes imported it, and everything downstream of them, and nothing else. One
    module for each set of rules that import the same modules (the test above checks that
    every module a rule imports is declared, and Snakemake treats the declared files alike);
    two copies take alternate modules side by side (a dry run is one busy core)."""
    ran = modules_run(finished)
    second = tmp_path / "w2"
    shutil.copytree(finished, second, symlinks=True, copy_function=_link_checkpoints)

    def name_of(module: Path) -> str:
        parts = module.relative_to(workdir / "vgg16").with_suffix("").parts
        return ".".join(parts).removesuffix(".__init__")

    def users(name: str) -> frozenset[str]:
        return frozenset(rule for rule, names in ran.items() if name in names)

    one_each: dict[frozenset[str], Path] = {}
    for module in sorted((workdir / "vgg16").rglob("*.py")):
        one_each.setdefault(users(name_of(module)), module.relative_to(workdir))
    edits = sorted(one_each.values())

    def planned(copy: Path, path: Path) -> tuple[str, set[str], set[str]]:
        module, name = copy / path, name_of(workdir / path)
        expected = users(name).union(*(DOWNSTREAM[rule] for rule in users(name)))
        args = write_config(copy, {"tiny": exporting_run()})
        text, stat = module.read_text(), module.stat()
        module.write_text(text + "\n# edited\n")
        jobs = set(job_counts(snakemake(copy, "--dry-run", *args))) - {"all"}
        module.write_text(text)
        os.utime(module, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        return name, jobs, expected

    with ThreadPoolExecutor(2) as pool:
        halves = [pool.submit(lambda c, part: [planned(c, e) for e in part], copy, edits[i::2])
                  for i, copy in enumerate((workdir, second))]  # fmt: skip
        results = [result for done in halves for result in done.result()]
    assert len(results) == len(edits) > 5
    for name, jobs, expected in results:
        assert jobs == expected, name


def test_recipe_mistakes_stop_the_dry_run_naming_the_run_and_key(tmp_path):
    workdir = copy_repo(tmp_path)
    (workdir / "tiny.yaml").write_text(yaml.safe_dump(TINY_RECIPE))
    cases = [
        ({"tiny": tiny_run(lr_maxx=0.1)}, "lr_maxx"),
        ({"tiny": tiny_run(lr_max=-1)}, "'lr_max'=-1.0: expected > 0"),
        (
            {"tiny": {"dataset": "tiny", "recipe": "nope.yaml"}},
            "recipe file nope.yaml does not exist",
        ),
        (
            {"tiny": tiny_run(num_classes=7)},
            "runs.tiny.set.num_classes: dataset 'tiny' has 10 classes but the recipe's "
            "num_classes is 7",
        ),
    ]
    for runs, message in cases:
        result = snakemake(workdir, "--dry-run", *write_config(workdir, runs), check=False)
        text = result.stdout + result.stderr
        assert result.returncode != 0 and "config runs.tiny" in text and message in text, text


@pytest.mark.parametrize("config", ["config/config.yaml", "config/cifar10.yaml",
                                    "config/imagenet2012.yaml"])  # fmt: skip
def test_dry_run_dag_of_the_shipped_configs(tmp_path, config):
    workdir = copy_repo(tmp_path)
    # The given file replaces the demo: one run, not the demo's besides.
    result = snakemake(workdir, "--dry-run", "--configfile", str(REPO / config))
    assert job_counts(result) == {
        "download": 1, "verify": 1, "prepare": 1, "train": 1, "select": 1,
        "evaluate": 1, "plot": 1, "summary": 1, "all": 1,
    }  # fmt: skip


def test_slurm_profile_dry_run(tmp_path):
    workdir = copy_repo(tmp_path)
    result = snakemake(workdir, "--dry-run", "--workflow-profile", str(workdir / "profiles/slurm"))
    assert job_counts(result)["train"] == 1


@pytest.mark.parametrize(
    ("resources", "message"),
    [
        (["train:mpi=srun", "train:nodes=2"], "`mpi` needs `tasks` (or `tasks_per_node`)"),
        (["train:mpi=srun", "train:nodes=2", "train:tasks=1"], "'tasks' must be greater than 1"),
        (["train:nodes=2", "train:workers=2"], '`nodes: 2` needs `mpi: "srun"` and `tasks: 2`'),
        (["train:mpi=srun", "train:nodes=2", "train:tasks=2"],
         "`nodes: 2` does not divide the 1 workers of run digits"),
    ],
)  # fmt: skip
def test_several_node_settings_the_plugin_or_vgg16_would_refuse_stop_a_dry_run(
    tmp_path, resources, message
):
    """The SLURM plugin refuses these in a thread that reports nothing, and the workflow
    would wait forever; vgg16 would refuse the others only once the job runs."""
    workdir = copy_repo(tmp_path)
    result = snakemake(workdir, "--dry-run", "--set-resources", *resources, check=False)
    text = result.stdout + result.stderr
    assert result.returncode != 0 and "set-resources of rule train" in text, text[-2000:]
    assert message in text, text[-2000:]


def test_unknown_config_key_is_named(tmp_path):
    workdir = copy_repo(tmp_path)
    runs = {"tiny": {"dataset": "tiny", "recipe": "tiny.yaml", "sett": {}}}
    result = snakemake(workdir, "--dry-run", *write_config(workdir, runs), check=False)
    assert result.returncode != 0
    assert "sett" in result.stdout + result.stderr


def test_run_naming_a_missing_dataset_is_an_error(tmp_path):
    workdir = copy_repo(tmp_path)
    runs = {"a": {"dataset": "nope", "recipe": "tiny.yaml"}}
    result = snakemake(workdir, "--dry-run", *write_config(workdir, runs), check=False)
    assert result.returncode != 0 and "runs.a.dataset: 'nope'" in result.stdout + result.stderr


def _download_only(
    workdir: Path, spec: dict, recipe: str = "config/recipes/cifar10.yaml"
) -> subprocess.CompletedProcess:
    run = {"x": {"dataset": "x", "recipe": recipe}}
    args = write_config(workdir, run, {"x": spec})
    return snakemake(workdir, "results/data/x/raw", *args, check=False)


def test_download_with_a_wrong_checksum_fails_and_leaves_nothing(tmp_path):
    workdir = copy_repo(tmp_path)
    archive = tmp_path / "data.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(REPO / "README.md", arcname="cifar-10-batches-bin/README.md")
    spec = {"format": "cifar10", "url": archive.as_uri(), "md5": "0" * 32}
    result = _download_only(workdir, spec)
    assert result.returncode != 0
    log = (workdir / "results" / "logs" / "download" / "x.log").read_text()
    assert archive.as_uri() in log and "md5" in log
    assert not (workdir / "results" / "data" / "x" / "raw").exists()
    assert not list((workdir / "results" / "data" / "x").rglob("*.tar.gz"))


def test_archive_escaping_the_target_is_refused(tmp_path):
    workdir = copy_repo(tmp_path)
    archive = tmp_path / "evil.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("../escaped.txt")
        info.size = 4
        tar.addfile(info, io.BytesIO(b"evil"))
    result = _download_only(workdir, {"format": "cifar10", "data_path": str(archive)})
    assert result.returncode != 0
    log = (workdir / "results" / "logs" / "download" / "x.log").read_text()
    assert "../escaped.txt" in log
    assert not (workdir / "results" / "data" / "x" / "raw").exists()
    assert not list(tmp_path.rglob("escaped.txt"))


def test_lint_has_only_the_justified_exception():
    result = subprocess.run([sys.executable, "-m", "snakemake", "--lint", "--snakefile",
                             str(REPO / "Snakefile"), "--directory", str(REPO)],
                            capture_output=True, text=True)  # fmt: skip
    lints = set(re.findall(r"^    \* (.+?):$", result.stdout + result.stderr, re.MULTILINE))
    assert lints == {"Specify a conda environment or container for each rule."}
