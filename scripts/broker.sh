#!/usr/bin/env bash
# Makes sure a RabbitMQ broker answers on 127.0.0.1:5672 for warren's tests, demo and benchmarks.
#
#   scripts/broker.sh ensure   start one unless a broker already answers (installs rabbitmq-server from
#                              Debian when it is missing and we are root)
#   scripts/broker.sh start    same as ensure
#   scripts/broker.sh stop     stop the broker this script started
#   scripts/broker.sh status   say whether a broker answers
#   scripts/broker.sh ctl ARGS run rabbitmqctl against the broker this script started
#
# The broker runs from a throw-away data directory (WARREN_BROKER_DIR, default /tmp/warren-broker) and binds
# every listener (AMQP, Erlang distribution, epmd) to 127.0.0.1 only.
set -euo pipefail

HOST=127.0.0.1
PORT=${WARREN_BROKER_PORT:-5672}
DIR=${WARREN_BROKER_DIR:-/tmp/warren-broker}
NODE=${WARREN_BROKER_NODE:-warren@localhost}
RMQ_BIN=/usr/lib/rabbitmq/bin

log() { printf 'broker: %s\n' "$*" >&2; }

# True when something on HOST:PORT answers an AMQP 0-9-1 protocol header with connection.start.
answers() {
  node -e '
    const s = require("net").connect(+process.argv[2], process.argv[1]);
    const t = setTimeout(() => process.exit(1), 2000);
    s.on("error", () => process.exit(1));
    s.on("connect", () => s.write(Buffer.from("AMQP\x00\x00\x09\x01", "latin1")));
    s.on("data", (d) => { clearTimeout(t); s.destroy(); process.exit(d[0] === 1 ? 0 : 2); });
  ' "$HOST" "$PORT" 2>/dev/null
}

broker_env() {
  export HOME="$DIR"                       # the Erlang cookie lives here, shared by server and rabbitmqctl
  export RABBITMQ_NODENAME="$NODE"
  export RABBITMQ_NODE_IP_ADDRESS="$HOST"
  export RABBITMQ_NODE_PORT="$PORT"
  export RABBITMQ_DIST_PORT=$((PORT + 20000))
  export ERL_EPMD_ADDRESS="$HOST"
  export RABBITMQ_MNESIA_BASE="$DIR/mnesia"
  export RABBITMQ_LOG_BASE="$DIR/log"
  export RABBITMQ_PID_FILE="$DIR/rabbitmq.pid"
  export ERL_CRASH_DUMP="$DIR/log/erl_crash.dump"  # a failed start writes one; keep it out of the working tree
  export RABBITMQ_CONFIG_FILE="$DIR/rabbitmq.conf"
  export RABBITMQ_ADVANCED_CONFIG_FILE="$DIR/advanced.config"
  export RABBITMQ_ENABLED_PLUGINS_FILE="$DIR/enabled_plugins"
  export RABBITMQ_SERVER_START_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  export RABBITMQ_CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
}

install_broker() {
  [ -x "$RMQ_BIN/rabbitmq-server" ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    log "rabbitmq-server is not installed; installing it from Debian (apt-get)"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
    # Debian's package may start a system broker on 0.0.0.0; ours runs from a temporary directory instead.
    pkill -f 'beam.*rabbit' 2>/dev/null || true
    # ...and its epmd listens on every interface; ours is started on 127.0.0.1 (ERL_EPMD_ADDRESS) instead.
    pkill -x epmd 2>/dev/null || true
    return 0
  fi
  log "rabbitmq-server is not installed and this script cannot install it (it needs root and apt-get)."
  log "Install RabbitMQ yourself (e.g. 'sudo apt-get install rabbitmq-server') or start any broker on"
  log "$HOST:$PORT with user guest/guest, then run this again."
  exit 1
}

start() {
  if answers; then log "a broker already answers on $HOST:$PORT"; return 0; fi
  install_broker
  mkdir -p "$DIR/log" "$DIR/mnesia"
  cat > "$DIR/rabbitmq.conf" <<CONF
listeners.tcp.1 = $HOST:$PORT
loopback_users.guest = true
log.console = false
log.file.level = warning
${WARREN_BROKER_EXTRA_CONF:-}
CONF
  echo "[]." > "$DIR/advanced.config"
  echo "[${WARREN_BROKER_PLUGINS:-}]." > "$DIR/enabled_plugins"
  broker_env
  log "starting RabbitMQ from $DIR on $HOST:$PORT"
  nohup "$RMQ_BIN/rabbitmq-server" >"$DIR/log/startup.log" 2>&1 &
  local server=$!
  for _ in $(seq 1 120); do
    if answers; then log "RabbitMQ answers on $HOST:$PORT"; return 0; fi
    # A bad config or a taken port stops the node within seconds: say so now rather than after 120 s.
    if ! kill -0 "$server" 2>/dev/null; then
      log "RabbitMQ exited during startup; its log follows"
      tail -n 40 "$DIR/log/startup.log" >&2 || true
      exit 1
    fi
    sleep 1
  done
  log "RabbitMQ did not answer within 120 s; its log follows"
  tail -n 40 "$DIR/log/startup.log" >&2 || true
  exit 1
}

stop() {
  broker_env
  if [ -f "$RABBITMQ_PID_FILE" ]; then
    "$RMQ_BIN/rabbitmqctl" -n "$NODE" stop "$RABBITMQ_PID_FILE" >/dev/null 2>&1 || kill "$(cat "$RABBITMQ_PID_FILE")" 2>/dev/null || true
    log "stopped"
  else
    log "no broker started from $DIR"
  fi
}

case "${1:-ensure}" in
  ensure|start) start ;;
  stop) stop ;;
  status) if answers; then echo "up"; else echo "down"; exit 1; fi ;;
  ctl) shift; broker_env; exec "$RMQ_BIN/rabbitmqctl" -n "$NODE" "$@" ;;
  *) echo "usage: $0 ensure|start|stop|status|ctl ARGS" >&2; exit 2 ;;
esac
