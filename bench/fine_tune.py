"""What `freeze: features` saves: a training step of the classifier alone against a step of
the whole network, side by side on this machine's CPU.

Each setting runs in its own process (graph compilation and oneDNN's caches are per process),
in alternating rounds, on a fixed batch, so the figure is the network's step, not the input
pipeline's. The recipe is the digits demo's (VGG16-BN at 32 px, batch 64) unless `--size 224`
asks for the zoo's ImageNet network at 224 px (batch 8: a CPU step there takes seconds).

    .venv/bin/python bench/fine_tune.py [--steps 10] [--rounds 2] [--size 32|224]
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

steps, freeze, size = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
ms.set_context(mode=ms.GRAPH_MODE)
ms.set_device("CPU")
dataset, batch = ("digits", 64) if size == 32 else ("folders", 8)
recipe = load_recipe(dataset=dataset, overrides={"batch_size": batch, "freeze": freeze,
                                                 "num_classes": 10})
net = build_net(recipe)
step = build_train_step(net, recipe, np.full(steps + 1, 0.01, dtype=np.float32), "O0")
rng = np.random.default_rng(0)
x = ms.Tensor(rng.integers(0, 256, (batch, 3, size, size), dtype=np.uint8))
y = ms.Tensor(rng.integers(0, 10, batch), ms.int32)
keep = [ms.Tensor(np.ones((batch, 4096), np.uint8))] * 2
t = time.perf_counter(); step(x, y, *keep).asnumpy(); first = time.perf_counter() - t
t = time.perf_counter()
for _ in range(steps):
    step(x, y, *keep).asnumpy()
per_step = (time.perf_counter() - t) / steps
print(json.dumps({"first_step_s": first, "step_s": per_step, "img_per_s": batch / per_step}))
"""


def measure(steps: int, freeze: str, size: int) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(steps), freeze, str(size)],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "GLOG_v": "3"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--size", type=int, default=32, choices=(32, 224))
    args = parser.parse_args()
    runs: dict[str, list[dict]] = {"none": [], "features": []}
    for _ in range(args.rounds):
        for freeze in runs:
            runs[freeze].append(measure(args.steps, freeze, args.size))
    best = {freeze: min(r["step_s"] for r in results) for freeze, results in runs.items()}
    for freeze, results in runs.items():
        steps = ", ".join(f"{r['step_s']:.3f}" for r in results)
        print(f"freeze: {freeze:8s} best {best[freeze]:.3f} s/step (rounds: {steps})")
    print(f"speed-up of freeze: features: {best['none'] / best['features']:.2f}x")


if __name__ == "__main__":
    main()
