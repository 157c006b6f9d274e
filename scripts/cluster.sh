#!/usr/bin/env bash
# A three-node RabbitMQ cluster on loopback, for warren's failover tests (quorum queues, a node killed under
# a client). Each node is started by scripts/broker.sh (which installs rabbitmq-server when it is missing and
# binds AMQP, the Erlang distribution and epmd to 127.0.0.1), with its own name, directory and ports:
#
#   node               AMQP             distribution     data
#   warren-c1@localhost  127.0.0.1:5701   127.0.0.1:25701  /tmp/warren-cluster/c1
#   warren-c2@localhost  127.0.0.1:5702   127.0.0.1:25702  /tmp/warren-cluster/c2
#   warren-c3@localhost  127.0.0.1:5703   127.0.0.1:25703  /tmp/warren-cluster/c3
#
#   scripts/cluster.sh start         start the nodes that are down, join c2 and c3 to c1 (rabbitmqctl stop_app /
#                                    join_cluster / start_app), and wait until all three answer AMQP and the
#                                    cluster status lists 3 running nodes
#   scripts/cluster.sh stop          stop all three and remove /tmp/warren-cluster (the cluster is disposable)
#   scripts/cluster.sh status        each node up or down, and the running nodes; exit 0 only when all 3 run
#                                    clustered
#   scripts/cluster.sh kill N        kill -9 node N's beam process (no clean shutdown)
#   scripts/cluster.sh start-node N  start node N again and wait until the cluster lists it running (it rejoins
#                                    from its data; a node without data joins c1 afresh)
#   scripts/cluster.sh ports         the AMQP ports, one per line
#   scripts/cluster.sh ctl N ARGS    run rabbitmqctl against node N
#   scripts/cluster.sh lease PID     for test runs: record that process PID uses the cluster, starting it
#                                    unless it runs or another live process holds a lease
#   scripts/cluster.sh release PID   drop PID's lease; when no live process holds one and a lease started
#                                    the cluster, `stop` it (a cluster started by hand stays up)
#
# The nodes share one Erlang cookie (written into each node's HOME, which broker.sh sets to the node's
# directory), so they and rabbitmqctl may talk to each other. start, stop, kill and start-node hold a lock
# (flock on /tmp/warren-cluster.lock), so two test runs never form or tear down the cluster at once. Every
# wait is bounded. About 140 MB of memory and 5 s of boot per node.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BASE=${WARREN_CLUSTER_DIR:-/tmp/warren-cluster}
NODES=(1 2 3)
RMQ_BIN=/usr/lib/rabbitmq/bin

log() { printf 'cluster: %s\n' "$*" >&2; }

node_name() { echo "warren-c$1@localhost"; }
node_port() { echo $((5700 + $1)); }
node_dir() { echo "$BASE/c$1"; }

check_n() {
  case "${1:-}" in
    1|2|3) ;;
    *) echo "usage: $0 kill|start-node|ctl N (N is 1, 2 or 3)" >&2; exit 2 ;;
  esac
}

# scripts/broker.sh for node N. Without the lock's descriptor (9>&-): a node it starts would inherit it and
# hold the lock for as long as it runs.
broker() {
  local n=$1; shift
  WARREN_BROKER_NODE=$(node_name "$n") WARREN_BROKER_DIR=$(node_dir "$n") WARREN_BROKER_PORT=$(node_port "$n") \
    bash "$ROOT/scripts/broker.sh" "$@" 9>&-
}

ctl() {
  local n=$1; shift
  broker "$n" ctl "$@"
}

answers() { broker "$1" status >/dev/null 2>&1; }

# The pid of node N's beam process, when it runs (the pid file alone could name a recycled pid).
beam_pid() {
  local dir pid
  dir=$(node_dir "$1")
  [ -f "$dir/rabbitmq.pid" ] || return 1
  pid=$(cat "$dir/rabbitmq.pid")
  [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -F -- "beam" || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -F -- "-home $dir " || return 1
  echo "$pid"
}

# The running nodes as node N sees them, space-separated; fails when N does not answer.
running_nodes() {
  ctl "$1" cluster_status --formatter json 2>/dev/null | node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      const j = JSON.parse(s.slice(s.indexOf("{")));
      console.log((j.running_nodes || []).join(" "));
    });' 2>/dev/null
}

# Gives each node directory the cluster's cookie before its first boot.
prepare_dirs() {
  mkdir -p "$BASE"
  if [ ! -s "$BASE/cookie" ]; then
    # An Erlang cookie is a short printable string: 20 random hex digits. (Not `tr </dev/urandom | head`: under
    # pipefail its SIGPIPE fails the script.)
    od -An -N10 -tx1 /dev/urandom | tr -d ' \n' >"$BASE/cookie.tmp"
    mv "$BASE/cookie.tmp" "$BASE/cookie"
  fi
  local n dir
  for n in "${NODES[@]}"; do
    dir=$(node_dir "$n")
    mkdir -p "$dir"
    if ! cmp -s "$BASE/cookie" "$dir/.erlang.cookie" 2>/dev/null; then
      rm -f "$dir/.erlang.cookie"
      cp "$BASE/cookie" "$dir/.erlang.cookie"
      chmod 400 "$dir/.erlang.cookie"
    fi
  done
}

# Starts the given nodes that are down, in parallel once rabbitmq-server is installed (broker.sh installs it
# on the first start, so that one goes alone).
start_nodes() {
  local n pids=() failed=0
  local todo=()
  for n in "$@"; do answers "$n" || todo+=("$n"); done
  [ ${#todo[@]} -gt 0 ] || return 0
  if [ ! -x "$RMQ_BIN/rabbitmq-server" ]; then
    broker "${todo[0]}" start
    todo=("${todo[@]:1}")
  fi
  for n in "${todo[@]}"; do
    broker "$n" start &
    pids+=($!)
  done
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [ "$failed" = 0 ] || { log "a node failed to start; see $BASE/c*/log"; exit 1; }
}

# Joins node N to c1's cluster unless it is in it already.
join() {
  local n=$1 c1
  c1=$(node_name 1)
  if running_nodes "$n" | tr ' ' '\n' | grep -q -x -F "$c1"; then return 0; fi
  log "joining $(node_name "$n") to $c1"
  ctl "$n" stop_app >/dev/null
  ctl "$n" join_cluster "$c1" >/dev/null
  ctl "$n" start_app >/dev/null
}

all_answer() {
  local n
  for n in "${NODES[@]}"; do answers "$n" || return 1; done
}

# Waits until node N (the first that answers, when N is 0) lists all three nodes running and all three answer
# AMQP: bounded to 90 tries, about 90 s.
wait_clustered() {
  local from=$1 n running=""
  for _ in $(seq 1 90); do
    running=""
    for n in "${NODES[@]}"; do
      if [ "$from" != 0 ] && [ "$n" != "$from" ]; then continue; fi
      running=$(running_nodes "$n" || true)
      [ -z "$running" ] || break
    done
    if [ "$(echo "$running" | wc -w)" = 3 ] && all_answer; then
      log "3 nodes running: $running"
      return 0
    fi
    sleep 1
  done
  log "the cluster did not list 3 running nodes within 90 s (last: ${running:-none}); see $BASE/c*/log"
  exit 1
}

start() {
  prepare_dirs
  start_nodes "${NODES[@]}"
  join 2
  join 3
  wait_clustered 0
}

stop() {
  local n pid pids=()
  for n in "${NODES[@]}"; do
    if pid=$(beam_pid "$n"); then
      # SIGTERM makes the Erlang VM shut RabbitMQ down cleanly (no rabbitmqctl boot needed).
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
    fi
  done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 300); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
  done
  rm -rf "$BASE"
  log "stopped${pids[*]:+ (pids ${pids[*]})}; removed $BASE"
}

kill_node() {
  local n=$1 pid
  if ! pid=$(beam_pid "$n"); then log "$(node_name "$n") is not running"; return 0; fi
  kill -KILL "$pid"
  for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  log "killed $(node_name "$n") (pid $pid)"
}

start_node() {
  local n=$1
  prepare_dirs
  start_nodes "$n"
  # A node with its data rejoins by itself; one started from nothing has to join.
  if [ "$n" != 1 ]; then join "$n"; fi
  wait_clustered "$n"
}

status() {
  local n ok=0 running=""
  for n in "${NODES[@]}"; do
    if answers "$n"; then
      echo "$(node_name "$n") $(node_port "$n") up"
      [ -n "$running" ] || running=$(running_nodes "$n" || true)
    else
      echo "$(node_name "$n") $(node_port "$n") down"
      ok=1
    fi
  done
  echo "running: ${running:-none}"
  [ "$ok" = 0 ] && [ "$(echo "$running" | wc -w)" = 3 ]
}

LEASES="$BASE.leases"

# Live lease holders (a lease of a process that died no longer counts, and is removed).
live_leases() {
  local f pid count=0
  mkdir -p "$LEASES"
  for f in "$LEASES"/*; do
    [ -e "$f" ] || continue
    pid=$(basename "$f")
    if kill -0 "$pid" 2>/dev/null; then count=$((count + 1)); else rm -f "$f"; fi
  done
  echo "$count"
}

lease() {
  local pid=$1
  mkdir -p "$LEASES"
  # Another holder's cluster is used as it is (a node it killed on purpose stays down). Otherwise the cluster
  # is started unless it runs; that a lease started it is remembered in its data directory (stop removes it).
  if [ "$(live_leases)" = 0 ] && ! status >/dev/null 2>&1; then
    start
    touch "$BASE/started-by-lease"
  fi
  touch "$LEASES/$pid"
}

release() {
  rm -f "$LEASES/$1"
  if [ "$(live_leases)" = 0 ] && [ -e "$BASE/started-by-lease" ]; then stop; fi
}

locked() {
  exec 9>"$BASE.lock"
  flock -w 300 9 || { log "timed out waiting for $BASE.lock"; exit 1; }
  "$@"
}

case "${1:-}" in
  start) locked start ;;
  stop) locked stop ;;
  status) status ;;
  kill) check_n "${2:-}"; locked kill_node "$2" ;;
  start-node) check_n "${2:-}"; locked start_node "$2" ;;
  ports) for n in "${NODES[@]}"; do node_port "$n"; done ;;
  ctl) check_n "${2:-}"; n=$2; shift 2; ctl "$n" "$@" ;;
  lease|release)
    case "${2:-}" in ''|*[!0-9]*) echo "usage: $0 $1 PID" >&2; exit 2 ;; esac
    locked "$1" "$2" ;;
  *) echo "usage: $0 start|stop|status|kill N|start-node N|ports|ctl N ARGS|lease PID|release PID" >&2; exit 2 ;;
esac
