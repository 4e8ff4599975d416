"""Where every file of the results lives: each name is spelt here and nowhere else.

The commands take folders (`--output`, `--train`, `--data_path`, the seed's flags among them)
and find their files in them through these classes; the workflow's rules build their inputs
and outputs from the same classes (`workflow/rules/common.smk`), with Snakemake's wildcards
standing in for the names (`Results("results").run("{run}")`). So renaming a file here renames
it for the command that writes it, the commands that read it and the rules that track it.
Standard library only: the workflow reads this module when it is parsed.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

#: Where `--workers N` keeps msrun's logs, inside a command's output folder.
MSRUN_LOGS = "msrun"


@dataclass(frozen=True)
class _Folder:
    """A folder given as a path or a string (a rule's, with wildcards in it)."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    def files(self) -> list[Path]:
        """Every file or folder this class places in its folder, in the order defined."""
        names = [name for name, value in vars(type(self)).items() if isinstance(value, property)]
        return [getattr(self, name) for name in names]

    def names(self) -> str:
        """Their names, for help texts: "history.csv, recipe.yaml, ckpt"."""
        return ", ".join(path.name for path in self.files())


class PreparedFolder(_Folder):
    """`vgg16 prepare --output`: one set of MindRecord shards per split, and the manifest
    that describes them (`data.read_manifest`)."""

    @property
    def manifest(self) -> Path:
        return self.path / "manifest.json"

    def shards(self, split: str) -> str:
        """The name FileWriter is given for a split (it appends 0..N-1 when sharding)."""
        return f"{split}.mindrecord"


class DataFolder(_Folder):
    """A dataset's data stages: raw layout, downloaded archives, verification, MindRecord."""

    @property
    def raw(self) -> Path:
        return self.path / "raw"

    @property
    def downloads(self) -> Path:
        return self.path / "downloads"

    @property
    def verified(self) -> Path:
        return self.path / "verified.json"

    @property
    def prepared(self) -> PreparedFolder:
        return PreparedFolder(self.path / "mindrecord")


class TrainFolder(_Folder):
    """`vgg16 train --output` (the seed's `--ckpt_path`)."""

    @property
    def history(self) -> Path:
        return self.path / "history.csv"

    @property
    def recipe(self) -> Path:
        """The resolved recipe, which every later stage of the run reads."""
        return self.path / "recipe.yaml"

    @property
    def checkpoints(self) -> Path:
        """Not a declared output of the workflow: Snakemake would delete it before a rerun,
        and an interrupted run resumes from it (`checkpoint.CheckpointKeeper`)."""
        return self.path / "ckpt"

    @property
    def lock(self) -> Path:
        """Locked by the `vgg16 train` writing the folder (`folder_lock`), holding its pid."""
        return self.path / ".lock"


class SelectFolder(_Folder):
    """`vgg16 select --output`."""

    @property
    def selection(self) -> Path:
        return self.path / "selection.csv"

    @property
    def best(self) -> Path:
        return self.path / "best.ckpt"


class EvalFolder(_Folder):
    """`vgg16 evaluate --output`."""

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def confusion(self) -> Path:
        return self.path / "confusion.csv"

    @property
    def mistakes(self) -> Path:
        return self.path / "mistakes.csv"

    @property
    def mistake_images(self) -> Path:
        return self.path / "mistakes.npz"


class PlotsFolder(_Folder):
    """`vgg16 plot --output`: the figures of a run, in the order the report lists them."""

    @property
    def loss(self) -> Path:
        return self.path / "loss.png"

    @property
    def lr(self) -> Path:
        return self.path / "lr.png"

    @property
    def accuracy(self) -> Path:
        return self.path / "accuracy.png"

    @property
    def confusion(self) -> Path:
        return self.path / "confusion.png"

    @property
    def per_class(self) -> Path:
        return self.path / "per_class.png"

    @property
    def mistakes(self) -> Path:
        return self.path / "mistakes.png"


class ExportFolder(_Folder):
    """`vgg16 export --output`: the model in each format asked for, and what feeds it."""

    @property
    def preprocessing(self) -> Path:
        """What a runtime does to an image before the model (`preprocessing.Preprocessing`)."""
        return self.path / "preprocessing.json"

    def model(self, file_format: str) -> Path:
        """The model in `file_format` (MINDIR, ONNX, AIR): MindSpore names its suffix."""
        return self.path / f"vgg16.{file_format.lower()}"


class RunFolder(_Folder):
    """One run of the workflow: a folder per stage that writes into it."""

    @property
    def train(self) -> TrainFolder:
        return TrainFolder(self.path / "train")

    @property
    def select(self) -> SelectFolder:
        return SelectFolder(self.path / "select")

    @property
    def eval(self) -> EvalFolder:
        return EvalFolder(self.path / "eval")

    @property
    def plots(self) -> PlotsFolder:
        return PlotsFolder(self.path / "plots")

    @property
    def export(self) -> ExportFolder:
        """Written only for a run whose config asks for `export` formats."""
        return ExportFolder(self.path / "export")


class Results(_Folder):
    """The workflow's results folder: datasets, runs, and the summary across runs."""

    def data(self, dataset: str) -> DataFolder:
        return DataFolder(self.path / "data" / dataset)

    def run(self, name: str) -> RunFolder:
        return RunFolder(self.path / "runs" / name)

    @property
    def summary(self) -> Path:
        return self.path / "summary.csv"

    @property
    def comparison(self) -> Path:
        return self.path / "comparison.png"

    def pretrained(self, digest: str, name: str) -> Path:
        """A downloaded pre-trained checkpoint, under its digest: runs naming it share it."""
        return self.path / "pretrained" / digest / name

    def log(self, stage: str, name: str | None = None) -> Path:
        """A rule's log: one per job (`name`: its dataset or run), or the stage's only one."""
        logs = self.path / "logs"
        return logs / stage / f"{name}.log" if name else logs / f"{stage}.log"

    def benchmark(self, stage: str, name: str) -> Path:
        return self.path / "benchmarks" / stage / f"{name}.tsv"
