"""Inference speed of VGG16-BN three ways on this CPU, side by side in one run: the model
`vgg16 export` writes to ONNX, in ONNX Runtime; the network in MindSpore (graph mode, eval
mode, the package's oneDNN cap); and the same network written in PyTorch (torch.nn, NCHW, as
a user would write it).

For each image size and batch size, each framework runs in its own process (oneDNN reads
its settings once, and each runtime starts its own threads), alternating, `--rounds` times;
each process times as many forward passes as fit in `--seconds` after a first, untimed one,
and the best round of each counts. The ONNX model is exported by the package's own
`export.export` with the batch fixed, as `vgg16 export --batch_size` writes it. Needs the
`bench` extra (PyTorch and ONNX Runtime): `pip install -e '.[bench]'`.

    .venv/bin/python bench/onnx_inference.py [--sizes 32 224] [--batches 1 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from torch_vgg16 import python_path

#: Times `run()` after one untimed call: as many calls as fit in the budget, at least 3.
TIMER = r"""
def timed(run, batch, seconds):
    import time
    t = time.perf_counter(); run(); first = time.perf_counter() - t
    calls, t = 0, time.perf_counter()
    while calls < 3 or time.perf_counter() - t < seconds:
        run(); calls += 1
    rate = batch * calls / (time.perf_counter() - t)
    print(json.dumps({"img_per_s": rate, "first_s": first}))
"""

EXPORT = r"""
import sys
from pathlib import Path
import mindspore as ms
from vgg16.config import load_recipe
from vgg16.export import export
from vgg16.layout import ExportFolder
from vgg16.model import build_net

side, batch, folder = int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3])
ms.set_context(mode=ms.GRAPH_MODE)
ms.set_device("CPU")
ms.set_seed(0)
recipe = load_recipe(dataset="digits", overrides={"image_size": f"{side},{side}"})
print(export(build_net(recipe), recipe, ExportFolder(folder), "ONNX", batch))
"""

MINDSPORE = (
    r"""
import json, sys
import numpy as np
import mindspore as ms
from vgg16.config import load_recipe
from vgg16.model import build_net

side, batch, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ms.set_context(mode=ms.GRAPH_MODE)
ms.set_device("CPU")
recipe = load_recipe(dataset="digits", overrides={"image_size": f"{side},{side}"})
net = build_net(recipe)
net.set_train(False)
x = ms.Tensor(np.random.default_rng(0).standard_normal((batch, 3, side, side)), ms.float32)
"""
    + TIMER
    + "timed(lambda: net(x).asnumpy(), batch, seconds)\n"
)

ONNXRUNTIME = (
    r"""
import json, os, sys
import numpy as np
import onnxruntime as ort

side, batch, seconds, model = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
options = ort.SessionOptions()
options.intra_op_num_threads = len(os.sched_getaffinity(0))
session = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
x = np.random.default_rng(0).standard_normal((batch, 3, side, side)).astype(np.float32)
"""
    + TIMER
    + "timed(lambda: session.run(None, {'images': x}), batch, seconds)\n"
)

PYTORCH = (
    r"""
import json, os, sys
import torch
from torch_vgg16 import vgg16_bn

side, batch, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
torch.set_num_threads(len(os.sched_getaffinity(0)))
torch.manual_seed(0)
net = vgg16_bn(side).eval()
x = torch.randn(batch, 3, side, side)

def run():
    with torch.no_grad():
        net(x).numpy()
"""
    + TIMER
    + "timed(run, batch, seconds)\n"
)

FRAMEWORKS = {"ONNX Runtime": ONNXRUNTIME, "MindSpore": MINDSPORE, "PyTorch": PYTORCH}


def _python(code: str, *args: object) -> str:
    env = dict(python_path(), GLOG_v="3")
    cmd = [sys.executable, "-c", code, *map(str, args)]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout


def measure(framework: str, side: int, batch: int, seconds: float, model: Path) -> float:
    extra = [model] if framework == "ONNX Runtime" else []
    out = _python(FRAMEWORKS[framework], side, batch, seconds, *extra)
    return json.loads(out.strip().splitlines()[-1])["img_per_s"]


def cpu() -> str:
    info = Path("/proc/cpuinfo").read_text()
    model = next(line for line in info.splitlines() if line.startswith("model name"))
    flags = next(line for line in info.splitlines() if line.startswith("flags")).split()
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    return f"{model.split(':')[1].strip()}: {len(os.sched_getaffinity(0))} cores, {isa}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 224], help="image sides")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 64])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=3.0, help="timed per measurement")
    args = parser.parse_args()
    isa = os.environ.get("DNNL_MAX_CPU_ISA", "AVX2 (the package's default cap)")
    print(f"{cpu()}; MindSpore's oneDNN ISA: {isa}; VGG16-BN, 10 classes, fp32, eval mode")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for side in args.sizes:
            for batch in args.batches:
                folder = Path(tmp) / f"{side}-{batch}"
                model = Path(_python(EXPORT, side, batch, folder).strip().splitlines()[-1])
                rates: dict[str, list[float]] = {name: [] for name in FRAMEWORKS}
                for _ in range(args.rounds):
                    for name in FRAMEWORKS:
                        rates[name].append(measure(name, side, batch, args.seconds, model))
                best = {name: max(values) for name, values in rates.items()}
                rows.append((side, batch, best))
                print(
                    f"{side} px, batch {batch}: "
                    + ", ".join(
                        f"{name} {best[name]:.1f} img/s (rounds {', '.join(f'{r:.1f}' for r in v)})"
                        for name, v in rates.items()
                    ),
                    flush=True,
                )
    print("\n| image | batch | ONNX Runtime | MindSpore | PyTorch | ORT / MindSpore | "
          "PyTorch / MindSpore | ORT / PyTorch |")  # fmt: skip
    print("| --- | --- | --- | --- | --- | --- | --- | --- |")
    for side, batch, best in rows:
        ort, ms, pt = best["ONNX Runtime"], best["MindSpore"], best["PyTorch"]
        print(
            f"| {side} px | {batch} | {ort:.1f} img/s | {ms:.1f} img/s | {pt:.1f} img/s | "
            f"{ort / ms:.2f}x | {pt / ms:.2f}x | {ort / pt:.2f}x |"
        )


if __name__ == "__main__":
    main()
