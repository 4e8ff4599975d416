"""The split vocabulary: every stage names the parts of a dataset `train`, `val` and `test`,
whatever its folders are called on disk.

`verify` reports and checks counts per split, `prepare` writes `<split>.mindrecord`, the input
pipeline and `evaluate --split` read them, and the workflow config's `expect` counts them.
Which raw files or folders hold each split is the format's (`Format.raw_splits`). The name
clash to keep in mind is ImageNet's: its `val/` folder is the seed's test set (ImageNet's own
test images have no public labels), so it becomes `test` here, and `val` is always held out of
`train` by `prepare`, for checkpoint selection.
"""

from __future__ import annotations

SPLITS = ("train", "val", "test")
#: The split `prepare` carves out of train (stratified, `val_fraction`); no raw layout has it.
HELD_OUT = "val"
