#!/usr/bin/env bash
# The compose topology on one machine, without Docker (what CI runs end to end):
#
#   demo service (uvicorn, 127.0.0.1) --files--> logpipe tail (sidecar) --bulk--> Elasticsearch
#
# No Fluentd here: the sidecar ships straight to Elasticsearch with the same pipeline
# (checkpoints, acks, metric and alert records); only the last hop differs from compose.
#
#   scripts/stack.sh start            # Elasticsearch (scripts/elasticsearch.sh), es setup, demo, sidecar
#   scripts/stack.sh traffic -n 5000  # drive the demo (args go to python -m demo.traffic)
#   scripts/stack.sh status           # exit 0 when every part is up and healthy
#   scripts/stack.sh logs             # last lines of each part's output
#   scripts/stack.sh stop             # stop sidecar and demo (Elasticsearch keeps running)
#   scripts/stack.sh stop --all       # ... and stop Elasticsearch too
#
# Environment (all optional):
#   LOGPIPE_STACK_DIR     run dir: logs/, pid files, outputs, sidecar.toml, checkpoints (.logpipe/stack)
#   LOGPIPE_ES_URL        use this Elasticsearch instead of starting scripts/elasticsearch.sh
#   LOGPIPE_DEMO_PORT     demo service port on 127.0.0.1 (8000)
#   LOGPIPE_METRICS_ADDR  sidecar /metrics and /healthz (127.0.0.1:9464)
#   LOGPIPE_SERVICE       service name in the records (demo-api)
#   LOGPIPE_STACK_INDEX   index pattern for log records (logpipe-{service}-%Y.%m.%d)
#   LOGPIPE_METRICS_INTERVAL_S  metric record period (60)
#   LOGPIPE_ALERTS_FILE   alert rules TOML (built-in defaults when empty)
#   DEMO_SEED, DEMO_ERROR_RATE, DEMO_SLOW_RATE, DEMO_SLOW_MS   chaos knobs of the demo service
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
RUN_DIR="${LOGPIPE_STACK_DIR:-$ROOT/.logpipe/stack}"
mkdir -p "$RUN_DIR"
RUN_DIR="$(cd "$RUN_DIR" && pwd)"
DEMO_PORT="${LOGPIPE_DEMO_PORT:-8000}"
METRICS_ADDR="${LOGPIPE_METRICS_ADDR:-127.0.0.1:9464}"
SERVICE="${LOGPIPE_SERVICE:-demo-api}"
DEFAULT_INDEX='logpipe-{service}-%Y.%m.%d'
INDEX="${LOGPIPE_STACK_INDEX:-$DEFAULT_INDEX}"
METRICS_INTERVAL_S="${LOGPIPE_METRICS_INTERVAL_S:-60}"
ALERTS_FILE="${LOGPIPE_ALERTS_FILE:-}"
PYTHON="${PYTHON:-python3}"
WAIT_S="${LOGPIPE_STACK_WAIT_S:-60}"

log() { echo "stack.sh: $*" >&2; }
die() { echo "stack.sh: $*" >&2; exit 1; }

es_url() {
  if [[ -n "${LOGPIPE_ES_URL:-}" ]]; then echo "$LOGPIPE_ES_URL"; else bash "$ROOT/scripts/elasticsearch.sh" url; fi
}

pid_of() { [[ -s "$RUN_DIR/$1.pid" ]] && cat "$RUN_DIR/$1.pid"; }

alive() {
  local pid
  pid="$(pid_of "$1")" || return 1
  kill -0 "$pid" 2>/dev/null
}

# wait_http NAME URL: poll until URL answers 2xx, while NAME's process lives; bounded by WAIT_S.
wait_http() {
  local name="$1" url="$2" deadline=$((SECONDS + WAIT_S))
  while (( SECONDS < deadline )); do
    curl -fsS --max-time 2 "$url" >/dev/null 2>&1 && return 0
    alive "$name" || { tail -n 20 "$RUN_DIR/$name.out" >&2 || true; die "$name exited during start (output: $RUN_DIR/$name.out)"; }
    sleep 0.3
  done
  die "$name not healthy at $url after ${WAIT_S}s (output: $RUN_DIR/$name.out)"
}

# spawn NAME CMD...: run detached in its own session, output to RUN_DIR/NAME.out, pid to RUN_DIR/NAME.pid.
spawn() {
  local name="$1"; shift
  if alive "$name"; then log "$name already running (pid $(pid_of "$name"))"; return 0; fi
  (cd "$ROOT" && exec setsid "$@" >"$RUN_DIR/$name.out" 2>&1 </dev/null) &
  echo $! >"$RUN_DIR/$name.pid"
  log "$name started (pid $!, output $RUN_DIR/$name.out)"
}

write_sidecar_config() {
  local url="$1" alerts_line=""
  [[ -n "$ALERTS_FILE" ]] && alerts_line="file = \"$ALERTS_FILE\""
  cat >"$RUN_DIR/sidecar.toml" <<TOML
# Written by scripts/stack.sh: the compose sidecar (deploy/sidecar.toml) with the last hop
# pointed at Elasticsearch instead of Fluentd.
[[inputs]]
paths = ["$RUN_DIR/logs/app.log", "$RUN_DIR/logs/access.log", "$RUN_DIR/logs/browser.log"]  # error.log repeats app.log errors
format = "json"
service = "$SERVICE"

[pipeline]
checkpoint_path = "$RUN_DIR/checkpoints.json"
batch_max_wait_s = 0.2

[sink]
url = "$url"
index = "$INDEX"
deadletter_path = "$RUN_DIR/deadletter.ndjson"

[metrics]
addr = "$METRICS_ADDR"
interval_s = $METRICS_INTERVAL_S
dashboard = true   # live page on / of addr (a non-loopback addr needs LOGPIPE_DASHBOARD_TOKEN)

[alerts]
enabled = true
$alerts_line
TOML
}

start() {
  local url
  if [[ -z "${LOGPIPE_ES_URL:-}" ]]; then
    bash "$ROOT/scripts/elasticsearch.sh" start >/dev/null
  fi
  url="$(es_url)"
  curl -fsS --max-time 5 "$url/_cluster/health" >/dev/null || die "Elasticsearch at $url does not answer"
  log "Elasticsearch: $url"
  "$PYTHON" -m logpipe es setup --es "$url" >"$RUN_DIR/es-setup.out" 2>&1 \
    || { cat "$RUN_DIR/es-setup.out" >&2; die "logpipe es setup failed"; }
  mkdir -p "$RUN_DIR/logs"
  DEMO_LOG_DIR="$RUN_DIR/logs" LOGPIPE_SERVICE="$SERVICE" \
    spawn demo "$PYTHON" -m uvicorn --factory demo.app:create_app \
      --host 127.0.0.1 --port "$DEMO_PORT" --no-access-log --log-level warning
  wait_http demo "http://127.0.0.1:$DEMO_PORT/healthz"
  write_sidecar_config "$url"
  spawn sidecar "$PYTHON" -m logpipe tail --config "$RUN_DIR/sidecar.toml"
  wait_http sidecar "http://$METRICS_ADDR/healthz"
  log "up: demo http://127.0.0.1:$DEMO_PORT  sidecar http://$METRICS_ADDR/metrics  dashboard http://$METRICS_ADDR/  ES $url"
}

# stop_one NAME: TERM, wait up to 20 s (the sidecar drains and checkpoints), then KILL.
stop_one() {
  local name="$1" pid i
  if ! alive "$name"; then rm -f "$RUN_DIR/$name.pid"; return 0; fi
  pid="$(pid_of "$name")"
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  if kill -0 "$pid" 2>/dev/null; then log "$name did not stop in 20s; KILL"; kill -KILL "$pid" 2>/dev/null || true; fi
  rm -f "$RUN_DIR/$name.pid"
  log "$name stopped"
}

stop() {
  # The demo first: once no more lines are written, the sidecar's drain on TERM is complete.
  stop_one demo
  stop_one sidecar
  if [[ "${1:-}" == "--all" && -z "${LOGPIPE_ES_URL:-}" ]]; then
    bash "$ROOT/scripts/elasticsearch.sh" stop
  fi
}

status() {
  local rc=0 url
  url="$(es_url)"
  if curl -fsS --max-time 3 "$url/_cluster/health" >/dev/null 2>&1; then echo "elasticsearch  up    $url"
  else echo "elasticsearch  down  $url"; rc=1; fi
  if alive demo && curl -fsS --max-time 3 "http://127.0.0.1:$DEMO_PORT/healthz" >/dev/null 2>&1; then
    echo "demo           up    http://127.0.0.1:$DEMO_PORT (pid $(pid_of demo))"
  else echo "demo           down"; rc=1; fi
  if alive sidecar && curl -fsS --max-time 3 "http://$METRICS_ADDR/healthz" >/dev/null 2>&1; then
    echo "sidecar        up    http://$METRICS_ADDR/metrics (pid $(pid_of sidecar))"
  else echo "sidecar        down"; rc=1; fi
  return "$rc"
}

logs() {
  local name
  for name in es-setup demo sidecar; do
    [[ -f "$RUN_DIR/$name.out" ]] || continue
    echo "== $name ($RUN_DIR/$name.out)"
    tail -n "${1:-20}" "$RUN_DIR/$name.out"
  done
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "$cmd" in
  start) start ;;
  stop) stop "$@" ;;
  restart) stop; start ;;
  status) status ;;
  logs) logs "$@" ;;
  traffic) cd "$ROOT" && exec "$PYTHON" -m demo.traffic --url "http://127.0.0.1:$DEMO_PORT" "$@" ;;
  *) die "usage: $0 start|stop [--all]|restart|status|logs [N]|traffic [demo.traffic args]" ;;
esac
