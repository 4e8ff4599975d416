"""msrun and SLURM command lines, and what each worker is told to run."""

import shlex
import socket
from pathlib import Path

from vgg16.cli import _worker_argv
from vgg16.launch import SCRIPT, free_port, msrun_command, slurm_command

ARGS = ["train", "--data_path", "d", "--ckpt_path", "c", "--is_distributed", "1"]


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
        "train --data_path d --ckpt_path c --is_distributed 1"
    )
    assert cmd == (
        'MASTER_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1) '
        "srun --nodes=2 --ntasks-per-node=1 --export=ALL,MASTER_ADDR "
        f"bash -c {shlex.quote(inner)}"
    )
    # $SLURM_NODEID must reach each node's shell unexpanded: it differs per node.
    assert shlex.split(cmd)[-1] == inner


def test_workers_run_the_same_command_as_one_group_member():
    argv = ["train", "--workers", "2", "--nodes=1", "--data_path", "d", "--set", "lr=0.1"]
    assert _worker_argv(argv) == [
        "train", "--data_path", "d", "--set", "lr=0.1", "--is_distributed", "1",
    ]  # fmt: skip


def test_free_port_is_a_real_unused_port():
    """Binding that exact port works now; port 0 would mean "any port" and always bind."""
    port = free_port()
    assert 1024 <= port <= 65535
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("", port))
        assert sock.getsockname()[1] == port
