"""Training throughput of VGG16-BN at 32 px, batch 64, on this machine's CPU.

Runs the real train step (graph mode, the digits recipe's optimiser and loss scale) on a
fixed batch, so the figure is the network's, not the input pipeline's (which reads
thousands of images per second). Each configuration runs in its own process, side by side,
because oneDNN reads DNNL_MAX_CPU_ISA once, when MindSpore loads it.

    .venv/bin/python bench/train_throughput.py [--steps 10] [--compare-isa] [--candidates]

`--candidates` measures the settings tried in search of a faster path (issue 11), two
alternating rounds each: MindSpore's `jit_level` O1 and O2, oneDNN's AVX2_VNNI kernels and
OMP_NUM_THREADS=2; none was faster than the default on the Zen 5 (README, "Speed").
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

steps, batch, context = int(sys.argv[1]), int(sys.argv[2]), json.loads(sys.argv[3])
ms.set_context(mode=ms.GRAPH_MODE, **context)
ms.set_device("CPU")
recipe = load_recipe(dataset="digits", overrides={"batch_size": batch})
net = build_net(recipe)
step = build_train_step(net, recipe, np.full(steps + 1, 0.01, dtype=np.float32), "O0")
rng = np.random.default_rng(0)
x = ms.Tensor(rng.integers(0, 256, (batch, 3, 32, 32), dtype=np.uint8))
y = ms.Tensor(rng.integers(0, 10, batch), ms.int32)
t = time.perf_counter(); step(x, y).asnumpy(); first = time.perf_counter() - t
t = time.perf_counter()
for _ in range(steps):
    step(x, y).asnumpy()
per_step = (time.perf_counter() - t) / steps
print(json.dumps({"first_step_s": first, "step_s": per_step, "img_per_s": batch / per_step}))
"""


#: name -> (extra `ms.set_context` arguments, extra environment)
CANDIDATES = {
    "jit_level O1": ({"jit_config": {"jit_level": "O1"}}, {}),
    "jit_level O2": ({"jit_config": {"jit_level": "O2"}}, {}),
    "DNNL_MAX_CPU_ISA=AVX2_VNNI": ({}, {"DNNL_MAX_CPU_ISA": "AVX2_VNNI"}),
    "OMP_NUM_THREADS=2": ({}, {"OMP_NUM_THREADS": "2"}),
}


def measure(
    steps: int, batch: int, isa: str | None, context: dict | None = None, env: dict | None = None
) -> dict:
    env = dict(os.environ, GLOG_v="3", **(env or {}))
    if isa:
        env["DNNL_MAX_CPU_ISA"] = isa
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(steps), str(batch), json.dumps(context or {})],
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
    parser.add_argument(
        "--candidates", action="store_true", help="also measure the settings in CANDIDATES"
    )
    args = parser.parse_args()
    if args.candidates:
        for round_ in (1, 2):
            default = measure(args.steps, args.batch, "AVX2")["img_per_s"]
            print(f"round {round_}, default: {default:.1f} img/s")
            for name, (context, env) in CANDIDATES.items():
                rate = measure(args.steps, args.batch, None, context, env)["img_per_s"]
                print(f"round {round_}, {name}: {rate:.1f} img/s")
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
