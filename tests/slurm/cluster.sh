# Sourced by start-cluster and stop-cluster: where a test cluster of N nodes keeps everything.
#
# Each cluster lives in one folder of its own (config, munge key and socket, state, spools,
# pids, logs), and has its own ClusterName, ports, bridge and subnet, so that a one-node and a
# two-node cluster can run side by side, and beside a real SLURM, without touching it.

# parse_nodes ARGS...: sets NODES from `--nodes N` (1 or 2; default 1).
parse_nodes() {
    NODES=1
    while (($#)); do
        case $1 in
        --nodes) NODES=${2:-}; shift 2 ;;
        --nodes=*) NODES=${1#--nodes=}; shift ;;
        *) echo "$(basename "$0"): unknown argument '$1' (expected --nodes 1 or --nodes 2)" >&2; exit 2 ;;
        esac
    done
    if [[ $NODES != 1 && $NODES != 2 ]]; then
        echo "$(basename "$0"): --nodes must be 1 or 2, not '$NODES'" >&2
        exit 2
    fi
}

# cluster_paths: the names of cluster $NODES's folder, files, interfaces and addresses.
cluster_paths() {
    DIR=${VGG16_SLURM_ROOT:-/tmp/vgg16-slurm}/${NODES}node
    CONF=$DIR/etc/slurm.conf
    HOSTS=$DIR/hosts
    MUNGE_DIR=$DIR/munge
    MUNGE_SOCKET=$MUNGE_DIR/munge.socket.2
    MUNGE_PID=$MUNGE_DIR/munged.pid
    CTLD_PID=$DIR/slurmctld.pid
    CLUSTER_NAME=vgg16test${NODES}
    BRIDGE=vgg16-br${NODES}
    # 10.77.N.0/24: the host (and slurmctld) is .1, node k is .(k+1).
    SUBNET_PREFIX=10.77.${NODES}
    HOST_ADDR=$SUBNET_PREFIX.1
}

node_names() {
    local k
    for ((k = 1; k <= NODES; k++)); do echo "n$k"; done
}

node_dir() { echo "$DIR/nodes/$1"; }

# pid_of FILE NAME: the pid in FILE if that process is still NAME (never a reused pid).
pid_of() {
    local pid
    [[ -s $1 ]] || return 1
    pid=$(<"$1")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/comm && $(</proc/"$pid"/comm) == "$2" ]] || return 1
    echo "$pid"
}
