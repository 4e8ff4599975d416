"""Training throughput of VGG16-BN at 32 px, batch 64, on this machine's CPU.

Runs the real train step (graph mode, the digits recipe's optimiser and loss scale) on a
fixed batch, so the figure is the network's, not the input pipeline's (which reads
thousands of images per second). Each configuration runs in its own process, side by side,
because oneDNN reads DNNL_MAX_CPU_ISA once, when MindSpore loads it.

    .venv/bin/python bench/train_throughput.py [--steps 10] [--compare-isa]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

CHILD = r"""
import json, sys, time
import numpy as np
import mindspore as ms
from vgg16.config import load_recipe
from vgg16.model import build_net
from vgg16.train import build_train_step

steps, batch = int(sys.argv[1]), int(sys.argv[2])
ms.set_context(mode=ms.GRAPH_MODE)
ms.set_device("CPU")
recipe = load_recipe(dataset="digits", overrides={"batch_size": batch})
net = build_net(recipe)
step = build_train_step(net, recipe, np.full(steps + 1, 0.01, dtype=np.float32), "O0")
rng = np.random.default_rng(0)
x = ms.Tensor(rng.standard_normal((batch, 3, 32, 32)), ms.float32)
y = ms.Tensor(rng.integers(0, 10, batch), ms.int32)
t = time.perf_counter(); step(x, y).asnumpy(); first = time.perf_counter() - t
t = time.perf_counter()
for _ in range(steps):
    step(x, y).asnumpy()
per_step = (time.perf_counter() - t) / steps
print(json.dumps({"first_step_s": first, "step_s": per_step, "img_per_s": batch / per_step}))
"""


def measure(steps: int, batch: int, isa: str | None) -> dict:
    env = dict(os.environ, GLOG_v="3")
    if isa:
        env["DNNL_MAX_CPU_ISA"] = isa
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(steps), str(batch)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument(
        "--compare-isa",
        action="store_true",
        help="also run with oneDNN's default ISA (AVX-512 where present): slow",
    )
    args = parser.parse_args()
    runs = {"package default (DNNL_MAX_CPU_ISA=AVX2)": measure(args.steps, args.batch, "AVX2")}
    if args.compare_isa:
        runs["oneDNN default (DNNL_MAX_CPU_ISA=ALL)"] = measure(2, args.batch, "ALL")
    for name, r in runs.items():
        print(
            f"{name}: {r['step_s']:.3f} s/step, {r['img_per_s']:.1f} img/s "
            f"(first step {r['first_step_s']:.1f} s)"
        )
    if len(runs) == 2:
        fast, slow = runs.values()
        print(f"ratio: AVX2 cap is {slow['step_s'] / fast['step_s']:.1f}x faster per step")


if __name__ == "__main__":
    main()
