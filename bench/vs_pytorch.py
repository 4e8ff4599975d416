"""MindSpore (this package) against PyTorch on the same CPU: VGG16-BN at 32 px, training and
inference, with achieved GFLOP/s against the machine's fp32 peak.

Both sides run the same network (the digits recipe: VGG16-BN, 10 classes, dropout), the same
step (SGD with momentum 0.9 and weight decay, cross-entropy) on one fixed batch, each in its
own process (oneDNN reads its settings once), alternating, `--rounds` times; the best round
of each counts. MindSpore runs the package's own train step (`train.build_train_step`, with
dropout multipliers drawn as training draws them) and its evaluation network; PyTorch runs a
plain NCHW model as a user would write it. PyTorch is an optional dependency:
`pip install -e '.[bench]'`.

    .venv/bin/python bench/vs_pytorch.py [--rounds 3] [--steps 8]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

from torch_vgg16 import python_path

MINDSPORE = r"""
import json, sys, time
import numpy as np
import mindspore as ms
from vgg16 import randomness
from vgg16.config import load_recipe
from vgg16.model import DROPOUT_P, DROPOUT_WIDTHS, build_net
from vgg16.train import Normalization, build_train_step

mode, steps, batch = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
ms.set_context(mode=ms.GRAPH_MODE)
ms.set_device("CPU")
recipe = load_recipe(dataset="digits", overrides={"batch_size": batch})
net = build_net(recipe)
rng = np.random.default_rng(0)
x = ms.Tensor(rng.integers(0, 256, (batch, 3, 32, 32), dtype=np.uint8))
if mode == "train":
    step = build_train_step(net, recipe, np.full(steps + 1, 0.01, np.float32), "O0")
    y = ms.Tensor(rng.integers(0, 10, batch), ms.int32)
    def run(i):
        where = np.arange(batch) + i * batch
        keep = randomness.dropout_keep(1, 1, where, DROPOUT_WIDTHS, DROPOUT_P)
        step(x, y, *map(ms.Tensor, keep)).asnumpy()
else:
    net.set_train(False)
    x = Normalization(recipe)(x)
    def run(i):
        net(x).asnumpy()
t = time.perf_counter(); run(0); first = time.perf_counter() - t
t = time.perf_counter()
for i in range(steps):
    run(i + 1)
print(json.dumps({"img_per_s": batch * steps / (time.perf_counter() - t), "first_s": first}))
"""

PYTORCH = r"""
import json, sys, time
import torch
from torch import nn
from torch_vgg16 import vgg16_bn

mode, steps, batch, threads = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
torch.set_num_threads(threads)
torch.manual_seed(0)
net = vgg16_bn(32)
x = torch.randn(batch, 3, 32, 32)
if mode == "train":
    y = torch.randint(0, 10, (batch,))
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    loss_fn = nn.CrossEntropyLoss()
    net.train()
    def run():
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x), y)
        loss.backward()
        opt.step()
        loss.item()
else:
    net.eval()
    def run():
        with torch.no_grad():
            net(x).sum().item()
t = time.perf_counter(); run(); first = time.perf_counter() - t
t = time.perf_counter()
for _ in range(steps):
    run()
print(json.dumps({"img_per_s": batch * steps / (time.perf_counter() - t), "first_s": first}))
"""

#: (output channels or "M") of VGG16's trunk, as in `vgg16.model`.
LAYERS = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M")


def forward_flops(side: int = 32, classes: int = 10) -> int:
    """Multiply-adds x 2 of one image's forward pass (convolutions and dense layers)."""
    flops, channels = 0, 3
    for v in LAYERS:
        if v == "M":
            side //= 2
            continue
        flops += 2 * side * side * channels * v * 9
        channels = v
    dense = [(512 * side * side, 4096), (4096, 4096), (4096, classes)]
    return flops + sum(2 * a * b for a, b in dense)


def machine() -> dict:
    """Cores, vector width and clock as the machine reports them, and the fp32 peak:
    cores x 2 FMA units (every x86 server core since Haswell/Zen 2) x lanes x 2 x clock."""
    info = Path("/proc/cpuinfo").read_text()
    flags = set(next(line for line in info.splitlines() if line.startswith("flags")).split())
    mhz = float(
        next(line for line in info.splitlines() if line.startswith("cpu MHz")).split(":")[1]
    )
    model = next(line for line in info.splitlines() if line.startswith("model name")).split(":")[1]
    cores = len(os.sched_getaffinity(0))
    isa = "AVX-512" if "avx512f" in flags else "AVX2" if "avx2" in flags else "SSE"
    lanes = {"AVX-512": 16, "AVX2": 8, "SSE": 4}[isa]
    return {
        "model": model,
        "cores": cores,
        "isa": isa + (" + BF16" if "avx512_bf16" in flags else ""),
        "peak_gflops": cores * 2 * lanes * 2 * mhz / 1000,
        "clock_ghz": mhz / 1000,
    }


def measure(framework: str, mode: str, steps: int, batch: int) -> dict:
    env = dict(python_path(), GLOG_v="3")
    if framework == "MindSpore":
        cmd = [sys.executable, "-c", MINDSPORE, mode, str(steps), str(batch)]
    else:
        threads = str(len(os.sched_getaffinity(0)))
        cmd = [sys.executable, "-c", PYTORCH, mode, str(steps), str(batch), threads]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    cpu = machine()
    path = os.environ.get("DNNL_MAX_CPU_ISA", "AVX2 (the package's default cap)")
    print(
        f"{cpu['model']}: {cpu['cores']} cores, {cpu['isa']}, {cpu['clock_ghz']:.2f} GHz, "
        f"fp32 peak {cpu['peak_gflops']:.0f} GFLOP/s; MindSpore's oneDNN ISA: {path}"
    )
    flops = forward_flops()
    for mode, per_image in (("train", 3 * flops), ("inference", flops)):
        rates: dict[str, list[float]] = {"MindSpore": [], "PyTorch": []}
        for _ in range(args.rounds):
            for framework in rates:
                rates[framework].append(
                    measure(framework, mode, args.steps, args.batch)["img_per_s"]
                )
        best = {name: max(values) for name, values in rates.items()}
        for name, rate in best.items():
            gflops = rate * per_image / 1e9
            print(
                f"{mode}, {name}: {rate:.1f} img/s, {gflops:.0f} GFLOP/s = "
                f"{gflops / cpu['peak_gflops']:.1%} of peak (rounds: "
                f"{', '.join(f'{r:.1f}' for r in rates[name])})"
            )
        print(f"{mode}: MindSpore / PyTorch = {best['MindSpore'] / best['PyTorch']:.2f}x")


if __name__ == "__main__":
    main()
