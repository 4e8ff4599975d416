"""The workflow's wall time on the test SLURM cluster, with the profile's `groups` (select,
evaluate and plot of a run as one job) and without (a job each), side by side.

Each variant is the run tests/test_slurm.py makes (two runs, one with two workers, a time
limit and a requeue), through profiles/slurm-cpu edited as README says; rounds alternate.
Needs root and the one-node test cluster (tests/slurm/start-cluster, started here if it
does not answer).

    .venv/bin/python bench/slurm_groups.py [--rounds 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
import slurm_cluster  # noqa: E402  (the test's cluster run)


def timed(grouped: bool, root: Path) -> float:
    run = slurm_cluster.ClusterRun(root / ("grouped" if grouped else "ungrouped") / "w",
                                   slurm_cluster.Cluster(1), slurm_cluster.CONFIG,
                                   groups=grouped)  # fmt: skip
    run.start()
    run.wait()
    if run.unavailable or run.returncode:
        raise SystemExit(f"the run failed: {run.unavailable or run.text()[-3000:]}")
    return run.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=1)
    args = parser.parse_args()
    times: dict[bool, list[float]] = {False: [], True: []}
    for round_ in range(1, args.rounds + 1):
        for grouped in (False, True):
            with tempfile.TemporaryDirectory() as tmp:
                seconds = timed(grouped, Path(tmp) / str(round_))
            times[grouped].append(seconds)
            print(f"round {round_}: {'grouped' if grouped else 'a job per rule'}: {seconds:.0f} s",
                  flush=True)  # fmt: skip
    a, b = min(times[False]), min(times[True])
    print(f"a job per rule {a:.0f} s, select+evaluate+plot grouped {b:.0f} s: {b / a:.2f}x")


if __name__ == "__main__":
    main()
