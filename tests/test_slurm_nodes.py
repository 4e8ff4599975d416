"""One training run across two SLURM nodes, requeued and then losing a node, through the
workflow and profiles/slurm-cpu with its several-node settings (`nodes`, `tasks`, `mpi`,
`workers`).

The cluster is tests/slurm/start-cluster's two-node one: two slurmd in their own network
namespaces, n1 and n2. The run (tests/slurm_cluster.py) is the one-node cluster's tiny
2-worker run with one worker per node. Its `train` job is requeued in epoch 2 and, once
restarted, loses the worker on n2 to `kill -9` in epoch 3; Snakemake's retry resumes it. It
must end exactly as the one-node cluster's run of the same recipe and data ends.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest
from slurm_cluster import INTERRUPTED, REQUIRED, TINY_RECIPE, ClusterRun, checkpoint_digests
from test_slurm import STOPPED, assert_same_checkpoint, history, resumed_at

from vgg16 import checkpoint
from vgg16.slurm import NODE_TIMEOUT_S

pytestmark = pytest.mark.slurm

NODES = ("n1", "n2")


def finished_run(runs: dict[int, ClusterRun], nodes: int) -> ClusterRun:
    run = runs.get(nodes)
    run = run and run.wait()
    reason = run.unavailable if run else f"the {nodes}-node SLURM workflow run was not started"
    if reason:
        if os.environ.get(REQUIRED):
            pytest.fail(f"{REQUIRED} is set, but {reason}")
        pytest.skip(reason)
    assert run.error is None, run.error
    assert run.returncode == 0, run.text()[-8000:]
    return run


@pytest.fixture(scope="module")
def two(slurm_workflows) -> ClusterRun:
    return finished_run(slurm_workflows, 2)


@pytest.fixture(scope="module")
def one(slurm_workflows) -> ClusterRun:
    """The same run on the one-node cluster (both workers on one node), requeued too."""
    return finished_run(slurm_workflows, 1)


def run_folder(run: ClusterRun) -> Path:
    return run.workdir / "results" / "runs" / INTERRUPTED


def test_both_nodes_trained_a_part_of_the_run(two):
    """MindSpore's scheduler registered one worker from each node, by its name and address
    in the node's own network; `train` ran as one SLURM job over both nodes."""
    log = two.train_log.read_text()
    assert f"launching 2 workers on nodes {', '.join(NODES)}: srun" in log, log[:3000]
    scheduler = (run_folder(two) / "train" / "msrun" / "scheduler.log").read_text()
    registered = re.findall(r"rank id: (\d), device id: \d+, hostname: (\w+), ip: ([\d.]+)",
                            scheduler)  # fmt: skip
    assert sorted((rank, host) for rank, host, _ in registered) == [("0", "n1"), ("1", "n2")]
    assert len({ip for _, _, ip in registered}) == 2
    # Each attempt was one job of both nodes (SLURM still remembers the last ones).
    for job in two.jobs("train", INTERRUPTED)[-1:]:
        state = two.cluster.job_state(job)
        assert state.get("NumNodes") in (None, "2"), state
        assert state.get("NodeList") in (None, "n[1-2]"), state


def test_two_nodes_end_exactly_as_one_node(two, one):
    """Bit for bit: the same two ranks hold the same data shards, and the all-reduce of two
    gradients is one addition, whose order does not matter, over TCP between namespaces or
    within one node alike."""
    final = checkpoint.checkpoint_name(TINY_RECIPE["max_epoch"])
    ckpt = run_folder(two) / "train" / "ckpt"
    assert_same_checkpoint(ckpt / final, run_folder(one) / "train" / "ckpt" / final)
    assert history(run_folder(two) / "train") == history(run_folder(one) / "train")


def test_a_requeue_stops_the_workers_of_both_nodes_gracefully(two):
    """`scontrol requeue` sends SIGTERM to every process of the job on both nodes; each
    worker finishes its step and stops, rank 0 saves the position, `train` exits 75, and
    SLURM's restart resumes from that position."""
    assert two.requeued and two.restarted.get("Restarts") == "1", two.restarted
    stopped = two.requeued_log
    for rank in (0, 1):
        worker_log = stopped.split(f"===== worker_{rank}.log =====")[1].split("=====")[0]
        assert STOPPED in worker_log, stopped[-4000:]
    assert f"vgg16 train: {STOPPED}" in stopped


def test_a_lost_node_fails_the_job_soon_naming_it_and_the_retry_resumes(two):
    assert two.killed, "no worker on n2 was killed"
    # msrun on n2 sees its worker die within a second and fails; srun then ends n1's part.
    assert two.failed_after_s is not None and two.failed_after_s < NODE_TIMEOUT_S
    print(f"the job ended {two.failed_after_s:.1f} s after the kill; the workflow took "
          f"{two.seconds:.0f} s")  # fmt: skip
    text = two.text()
    assert re.search(r"a worker failed after \d+ s: on node n2 \(worker log worker_1\.log\)",
                     text), text[-5000:]  # fmt: skip
    assert "Trying to restart job" in text
    # The retry resumed from the last epoch checkpoint saved before the loss: the end of epoch
    # 2, the kill landing in epoch 3 as intended; or, at most the end of that epoch, what the
    # surviving worker saved after the kill (its epoch checkpoint, or a recovery one if its stop
    # found it between steps). Only the retry's own attempt counts: on a busy machine it can
    # reach the 2-minute limit itself, stop and resume once more in a later attempt.
    assert two.saved_before_kill, "no checkpoint had been saved before the kill"
    epochs = range(1, TINY_RECIPE["max_epoch"] + 1)
    last = max(e for e in epochs if checkpoint.checkpoint_name(e) in two.saved_before_kill)
    assert two.killed_attempt is not None and len(two.attempt_logs) > two.killed_attempt + 1
    retry = two.attempt_logs[two.killed_attempt + 1]
    assert (last + 1, 0) <= (resumed_at(retry) or (0, 0)) <= (last + 2, 0), (last, retry[-3000:])
    # Nothing saved before the loss was lost or changed.
    now = checkpoint_digests(run_folder(two) / "train" / "ckpt")
    assert {name: now.get(name) for name in two.saved_before_kill} == two.saved_before_kill


def test_select_and_evaluate_give_the_one_node_results(two, one):
    for part in ("select/selection.csv", "eval/metrics.json"):
        got, want = ((run_folder(run) / part).read_text() for run in (two, one))
        if part.endswith(".json"):
            got, want = json.loads(got), json.loads(want)
        assert got == want, part
