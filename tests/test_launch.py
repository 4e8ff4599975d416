"""msrun and SLURM command lines, and how a worker knows it is one."""

import shlex
import socket
from pathlib import Path

import pytest

from vgg16.cli import parse_args
from vgg16.launch import SCRIPT, free_port, msrun_command, slurm_command, wanted

ARGS = ["train", "--data_path", "d", "--output", "c", "--workers", "8"]


def test_msrun_command_on_one_machine():
    cmd = msrun_command(ARGS, workers=2, local_workers=2, master_port=4321, log_dir=Path("L"))
    assert cmd == [
        "msrun", "--worker_num=2", "--local_worker_num=2", "--master_port=4321",
        "--join=True", "--log_dir=L", str(SCRIPT), *ARGS,
    ]  # fmt: skip


def test_slurm_command_for_two_nodes_of_four_gpus():
    cmd = slurm_command(ARGS, nodes=2, workers_per_node=4, master_port=4321, log_dir=Path("L"))
    inner = (
        f'msrun --worker_num=8 --local_worker_num=4 --master_addr="$MASTER_ADDR" '
        f'--node_rank="$SLURM_NODEID" --master_port=4321 --join=True --log_dir=L {SCRIPT} '
        "train --data_path d --output c --workers 8"
    )
    # msrun ignores what a stopped job sends every process, and replaces the shell.
    task = f"trap '' TERM USR1 && exec {inner}"
    assert cmd == (
        'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1) '
        "srun --nodes=2 --ntasks-per-node=1 --export=ALL,MASTER_ADDR "
        f"bash -c {shlex.quote(task)}"
    )
    # $SLURM_NODEID must reach each node's shell unexpanded: it differs per node.
    assert shlex.split(cmd)[-1] == task


def test_workers_run_the_same_command_knowing_their_role_from_msrun(monkeypatch):
    """msrun passes the command line on unchanged and sets MS_ROLE in the processes it starts:
    the launcher relaunches, a worker (or msrun's scheduler) runs the stage."""
    args = parse_args(ARGS)
    monkeypatch.delenv("MS_ROLE", raising=False)
    assert wanted(args)
    for role in ("MS_WORKER", "MS_SCHED"):
        monkeypatch.setenv("MS_ROLE", role)
        assert not wanted(args)
    monkeypatch.delenv("MS_ROLE")
    assert not wanted(parse_args(["train", "--data_path", "d"]))


@pytest.mark.parametrize("command", ["select", "evaluate", "eval"])
def test_evaluation_commands_take_workers_too(command):
    extra = ["--train", "t"] if command == "select" else ["--pre_trained", "p"]
    args = parse_args([command, "--data_path", "d", "--output", "o",
                                      "--workers", "2", *extra])  # fmt: skip
    assert args.stage == ("evaluate" if command == "eval" else command) and args.workers == 2


def test_free_port_is_a_real_unused_port():
    """Binding that exact port works now; port 0 would mean "any port" and always bind."""
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", port))
        assert sock.getsockname()[1] == port
