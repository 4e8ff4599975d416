"""The results' layout: the paths README.md gives as the interface, from one owner."""

from pathlib import Path

from vgg16.layout import EvalFolder, PlotsFolder, Results, SelectFolder, TrainFolder


def test_a_runs_files_are_where_the_readme_says():
    run = Results("results").run("lr05")
    root = Path("results/runs/lr05")
    assert run.train.files() == [root / "train/history.csv", root / "train/recipe.yaml",
                                 root / "train/ckpt", root / "train/.lock"]  # fmt: skip
    assert run.select.files() == [root / "select/selection.csv", root / "select/best.ckpt"]
    assert run.eval.files() == [root / "eval/metrics.json", root / "eval/confusion.csv",
                                root / "eval/mistakes.csv", root / "eval/mistakes.npz"]  # fmt: skip
    assert run.plots.files() == [
        root / f"plots/{name}.png"
        for name in ("loss", "lr", "accuracy", "confusion", "per_class", "mistakes")
    ]
    assert run.export.files() == [root / "export/preprocessing.json"]
    assert [run.export.model(f) for f in ("ONNX", "MINDIR", "AIR")] == [
        root / "export/vgg16.onnx",
        root / "export/vgg16.mindir",
        root / "export/vgg16.air",
    ]


def test_a_datasets_files_and_the_summary_are_where_the_readme_says():
    results = Results("results")
    data = results.data("cifar10")
    assert (data.raw, data.downloads, data.verified) == (
        Path("results/data/cifar10/raw"),
        Path("results/data/cifar10/downloads"),
        Path("results/data/cifar10/verified.json"),
    )
    assert data.prepared.manifest == Path("results/data/cifar10/mindrecord/manifest.json")
    assert data.prepared.shards("val") == "val.mindrecord"
    assert (results.summary, results.comparison) == (
        Path("results/summary.csv"),
        Path("results/comparison.png"),
    )
    assert results.log("train", "lr05") == Path("results/logs/train/lr05.log")
    assert results.log("summary") == Path("results/logs/summary.log")
    assert results.benchmark("prepare", "cifar10") == Path("results/benchmarks/prepare/cifar10.tsv")


def test_a_pretrained_checkpoint_is_kept_once_under_its_digest():
    """Every run naming the same checkpoint (by digest) shares the one download."""
    path = Results("results").pretrained("3f2a", "vgg16.ckpt")
    assert path == Path("results/pretrained/3f2a/vgg16.ckpt")


def test_wildcards_pass_through_for_the_rules():
    """The rules build their paths with Snakemake's wildcards in place of the names."""
    run = Results("results").run("{run}")
    assert str(run.eval.metrics) == "results/runs/{run}/eval/metrics.json"
    assert str(Results("results").data("{dataset}").raw) == "results/data/{dataset}/raw"


def test_a_folder_given_as_text_or_path_is_the_same_folder():
    assert TrainFolder("out") == TrainFolder(Path("out"))
    assert TrainFolder("out").checkpoints == Path("out/ckpt")
    assert SelectFolder("s").best == Path("s/best.ckpt")
    assert EvalFolder("e").names() == "metrics.json, confusion.csv, mistakes.csv, mistakes.npz"
    assert PlotsFolder("p").mistakes == Path("p/mistakes.png")
