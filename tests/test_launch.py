"""msrun and SLURM command lines, and how a worker knows it is one."""

import socket
import subprocess
from pathlib import Path

import pytest

from vgg16.cli import parse_args
from vgg16.launch import SCRIPT, Launch, free_port, msrun_command, wanted
from vgg16.slurm import NODE_RANK, Allocation, NoAllocation

ARGS = ["train", "--data_path", "d", "--output", "c", "--workers", "8"]


def test_msrun_command_on_one_machine():
    cmd = msrun_command(ARGS, workers=2, local_workers=2, master_port=4321, log_dir=Path("L"))
    assert cmd == [
        "msrun", "--worker_num=2", "--local_worker_num=2", "--master_port=4321",
        "--join=True", "--log_dir=L", str(SCRIPT), *ARGS,
    ]  # fmt: skip


def test_srun_command_for_two_nodes_of_four_gpus():
    allocation = Allocation("77", ("n1", "n2", "n3"), cpus_per_task=16)
    msrun = msrun_command(ARGS, workers=8, local_workers=4, master_port=4321, log_dir=Path("L"),
                          master_addr="n1", node_rank=NODE_RANK)  # fmt: skip
    cmd = allocation.srun_command(msrun, nodes=2)
    inner = (
        f'msrun --worker_num=8 --local_worker_num=4 --master_addr=n1 --node_rank="$SLURM_NODEID" '
        f"--master_port=4321 --join=True --log_dir=L {SCRIPT} "
        "train --data_path d --output c --workers 8"
    )
    assert cmd == [
        "srun", "--jobid=77", "--job-name=vgg16-msrun", "--nodes=2", "--ntasks-per-node=1",
        "--cpus-per-task=16",
        "--kill-on-bad-exit=1", "--label", "--export=ALL", "bash", "-c",
        # msrun ignores what a stopped job sends every process, and replaces the shell.
        f"trap '' TERM USR1 && exec {inner}",
    ]  # fmt: skip
    # $SLURM_NODEID reaches each node's shell unexpanded (it differs per node), and the
    # shell then gives msrun that node's rank.
    out = subprocess.run(["bash", "-c", cmd[-1].replace("exec msrun", "exec echo")],
                         env={"SLURM_NODEID": "1", "PATH": "/usr/bin:/bin"},
                         capture_output=True, text=True).stdout  # fmt: skip
    assert "--node_rank=1 " in out
    with pytest.raises(NoAllocation, match="--nodes 4, but SLURM job 77 has 3 node"):
        allocation.srun_command(msrun, nodes=4)


def test_a_failure_line_from_srun_names_its_node_and_that_nodes_workers():
    """srun's `--label` puts the task, which is the node's index, before each line."""
    msrun = ["msrun", f"--node_rank={NODE_RANK}"]
    launch = Launch(msrun, 2, Allocation("77", ("n1", "n2", "n3"), cpus_per_task=4))
    failed = "2: [ERROR] ME(1:2) [_api.py:365] Worker process 9 exit with exception."
    assert launch.failed_node(failed) == ("n3", range(4, 6))
    assert launch.failed_node("[ERROR] no label") == (None, None)
    assert Launch(msrun, 2).failed_node(failed) == (None, None)  # msrun here: no nodes


SCONTROL = """#!/bin/sh
case "$*" in
"-o show job 4") echo 'JobId=4 JobName=wrap Requeue=1 ReqNodeList=(null) NodeList=n[1-2] \
BatchHost=n1 NumNodes=2 NumCPUs=4 NumTasks=2 CPUs/Task=2 TRES=cpu=4,node=2,billing=4' ;;
"show hostnames n[1-2]") printf 'n1\nn2\n' ;;
*) echo "slurm_load_jobs error: Invalid job id specified" >&2; exit 1 ;;
esac
"""


def test_the_allocation_is_read_back_from_the_job_id_alone(tmp_path, monkeypatch):
    """Inside Snakemake's `mpi` jobs only SLURM_JOB_ID is left of the job's variables: the
    nodes and cores come from scontrol (here a script answering as SLURM 22.05 does)."""
    (tmp_path / "scontrol").write_text(SCONTROL)
    (tmp_path / "scontrol").chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:/usr/bin:/bin")
    assert Allocation.of_this_shell({"SLURM_JOB_ID": "4"}) == Allocation("4", ("n1", "n2"), 2)
    # A job step runs its own srun: the launch stays on this node.
    assert Allocation.of_this_shell({"SLURM_JOB_ID": "4", "SLURM_STEP_ID": "0"}) is None
    assert Allocation.of_this_shell({}) is None
    with pytest.raises(NoAllocation, match="show job 5` failed: .*Invalid job id"):
        Allocation.of_this_shell({"SLURM_JOB_ID": "5"})


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
