#!/usr/bin/env bash
# A real Elasticsearch for tests, CI and benchmarks: one node, or a small cluster on loopback.
#
#   scripts/elasticsearch.sh start    # download once (mvn), unzip once, start, wait for yellow/green
#   scripts/elasticsearch.sh stop     # SIGTERM, wait, then KILL
#   scripts/elasticsearch.sh status   # exit 0 and print the URL when running and healthy
#   scripts/elasticsearch.sh url      # print the URL
#   scripts/elasticsearch.sh cache    # print the cache directory
#
#   scripts/elasticsearch.sh start --nodes 3 [--fresh]  # a 3-node cluster; waits for green with all nodes
#   scripts/elasticsearch.sh stop --nodes 3             # stops every node of that cluster
#   scripts/elasticsearch.sh status --nodes 3           # one line per node, then the cluster health
#   scripts/elasticsearch.sh url --nodes 3              # every node's URL, comma-separated (a sink list)
#   scripts/elasticsearch.sh pid --nodes 3              # "node-i pid" per running node (tests kill -9 one)
#
# `start --nodes N` is idempotent: it starts only the nodes that are not running (a node killed
# by a test comes back with its data) and waits until all N have joined and the cluster is green.
# `--fresh` wipes the cluster's data first (only when none of its nodes runs).
#
# Port layout. Single node: HTTP $LOGPIPE_ES_PORT (9200), transport HTTP + 100 (9300).
# Cluster (--nodes N, or LOGPIPE_ES_NODES=N): node i (1..N) listens on
#   HTTP      $LOGPIPE_ES_CLUSTER_HTTP_PORT + i - 1       (default 9401, 9402, 9403)
#   transport $LOGPIPE_ES_CLUSTER_TRANSPORT_PORT + i - 1  (default 9501, 9502, 9503)
# all on 127.0.0.1; cluster name logpipe-cluster-<first HTTP port>; seed hosts = every node's
# transport port; node names node-1..node-N (also the initial master nodes); one data and
# log directory per node under $LOGPIPE_ES_CLUSTER_DIR (default $CACHE/cluster-<first HTTP port>).
# The single node on 9200 and a cluster never share a port, data directory or cluster name.
#
# Environment: LOGPIPE_CACHE (default ~/.cache/logpipe; as root /var/cache/logpipe),
# LOGPIPE_ES_PORT (default 9200), LOGPIPE_ES_VERSION (default 8.19.21), ES_JAVA_HOME (default:
# newest JDK >= 17 found), LOGPIPE_ES_HEAP (default 512m; 320m per cluster node), LOGPIPE_ES_SETTINGS (extra node settings,
# space-separated key=value, e.g. "thread_pool.write.queue_size=1" for a node that answers 429).
#
# As root: Elasticsearch refuses to run as root, so the node runs as the unprivileged user
# logpipe-es (created when missing), and the cache defaults to /var/cache/logpipe, a directory
# that user can reach, instead of root's home. This script never changes the mode of a directory
# it did not create: a LOGPIPE_CACHE the user cannot reach is an error saying so. A zip already
# downloaded into /root/.cache/logpipe by an older version is copied, not downloaded again.
set -euo pipefail

VERSION="${LOGPIPE_ES_VERSION:-8.19.21}"
PORT="${LOGPIPE_ES_PORT:-9200}"
HEAP="${LOGPIPE_ES_HEAP:-512m}"
if [[ "$(id -u)" == 0 ]]; then DEFAULT_CACHE=/var/cache/logpipe; else DEFAULT_CACHE="$HOME/.cache/logpipe"; fi
CACHE="${LOGPIPE_CACHE:-$DEFAULT_CACHE}/es"
ZIP="$CACHE/elasticsearch-$VERSION.zip"
HOME_DIR="$CACHE/elasticsearch-$VERSION"
DATA_DIR="$CACHE/data-$PORT"
LOG_DIR="$CACHE/logs-$PORT"
PID_FILE="$CACHE/es-$PORT.pid"
# A node started by an older version of this script (cache in root's home) is still found.
LEGACY_PID_FILE="$HOME/.cache/logpipe/es/es-$PORT.pid"
if [[ -z "${LOGPIPE_CACHE:-}" && ! -f "$PID_FILE" && -f "$LEGACY_PID_FILE" ]]; then PID_FILE="$LEGACY_PID_FILE"; fi
URL="http://127.0.0.1:$PORT"
RUN_USER="logpipe-es"
WAIT_S="${LOGPIPE_ES_WAIT_S:-120}"
EXTRA_SETTINGS=()
for setting in ${LOGPIPE_ES_SETTINGS:-}; do EXTRA_SETTINGS+=("-E$setting"); done

die() { echo "elasticsearch.sh: $*" >&2; exit 1; }
log() { echo "elasticsearch.sh: $*" >&2; }

pid_alive() {
  [[ -f "$PID_FILE" ]] || return 1
  local pid
  pid="$(cat "$PID_FILE" 2>/dev/null || true)"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null
}

healthy() {
  local body
  body="$(curl -fsS --max-time 3 "$URL/_cluster/health" 2>/dev/null)" || return 1
  [[ "$body" == *'"status":"green"'* || "$body" == *'"status":"yellow"'* ]]
}

find_java() {
  if [[ -n "${ES_JAVA_HOME:-}" ]]; then echo "$ES_JAVA_HOME"; return; fi
  local best="" best_ver=0 dir ver
  for dir in /usr/lib/jvm/* /opt/java/* "${JAVA_HOME:-}"; do
    [[ -n "$dir" && -x "$dir/bin/java" && ! -L "$dir" ]] || continue
    ver="$("$dir/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1)"
    [[ -n "$ver" ]] || continue
    # Elasticsearch 8.19 runs on 17..24; prefer 21 > 17 over versions it was not built for.
    if (( ver >= 17 && ver <= 24 && ver > best_ver )); then best="$dir"; best_ver="$ver"; fi
  done
  [[ -n "$best" ]] || die "no JDK >= 17 found; set ES_JAVA_HOME"
  echo "$best"
}

download() {
  mkdir -p "$CACHE"
  [[ -s "$ZIP" ]] && return
  local old="$HOME/.cache/logpipe/es/elasticsearch-$VERSION.zip"
  if [[ -s "$old" && "$old" != "$ZIP" ]]; then
    log "copying $old (downloaded earlier) to $ZIP"
    cp "$old" "$ZIP.tmp" && mv "$ZIP.tmp" "$ZIP" && return
  fi
  command -v mvn >/dev/null || die "Elasticsearch $VERSION not cached at $ZIP and mvn is not installed"
  log "downloading Elasticsearch $VERSION (integ-test-zip) from Maven Central ..."
  if ! mvn -q dependency:copy \
      "-Dartifact=org.elasticsearch.distribution.integ-test-zip:elasticsearch:$VERSION:zip" \
      "-DoutputDirectory=$CACHE" >&2; then
    rm -f "$ZIP"
    die "download of Elasticsearch $VERSION failed (mvn dependency:copy); the ES tests cannot run"
  fi
  [[ -s "$ZIP" ]] || die "mvn finished but $ZIP is missing"
}

unpack() {
  [[ -x "$HOME_DIR/bin/elasticsearch" ]] && return
  log "unpacking $ZIP"
  local tmp="$CACHE/.unpack.$$"
  rm -rf "$tmp" && mkdir -p "$tmp"
  unzip -q "$ZIP" -d "$tmp" || die "cannot unzip $ZIP (delete it to download again)"
  mv "$tmp/elasticsearch-$VERSION" "$HOME_DIR"
  rm -rf "$tmp"
}

# As root: make sure the unprivileged user exists and can reach the cache dir (checked, never
# granted: changing the mode of someone's directories is not this script's business).
check_user() {
  [[ "$(id -u)" == 0 ]] || return 0
  id "$RUN_USER" >/dev/null 2>&1 || useradd -r -M -s /usr/sbin/nologin "$RUN_USER" \
    || die "cannot create user $RUN_USER (Elasticsearch refuses to run as root)"
  local dir
  dir="$(dirname "$CACHE")"
  while [[ ! -d "$dir" ]]; do dir="$(dirname "$dir")"; done  # what exists already; the rest we create
  while [[ "$dir" != "/" ]]; do
    runuser -u "$RUN_USER" -- test -x "$dir" 2>/dev/null \
      || die "the node runs as $RUN_USER, which cannot enter $dir; set LOGPIPE_CACHE to a directory it can reach (default as root: /var/cache/logpipe)"
    dir="$(dirname "$dir")"
  done
}

# As root: the node's user owns what it writes (the unpacked node, and the data/log dirs given).
own_files() {  # args: the directories the node(s) write to
  [[ "$(id -u)" == 0 ]] || return 0
  chown -R "$RUN_USER" "$HOME_DIR" "$@"
  chown "$RUN_USER" "$CACHE"
}

run_es() {
  if [[ "$(id -u)" == 0 ]]; then
    runuser -u "$RUN_USER" -- env "$@"
  else
    env "$@"
  fi
}

start() {
  if pid_alive && healthy; then echo "$URL"; return 0; fi
  if pid_alive; then
    log "process $(cat "$PID_FILE") is running but not healthy yet; waiting"
  else
    if curl -fsS --max-time 2 "$URL" >/dev/null 2>&1; then
      die "something else already answers on $URL; set LOGPIPE_ES_PORT or stop it"
    fi
    check_user
    download
    unpack
    mkdir -p "$DATA_DIR" "$LOG_DIR"
    rm -f "$PID_FILE"
    own_files "$DATA_DIR" "$LOG_DIR"
    local java_home
    java_home="$(find_java)"
    log "starting Elasticsearch $VERSION on $URL (java: $java_home, heap $HEAP)"
    # pid file must be writable by the node's user: let it write into the logs dir, copy after.
    run_es ES_JAVA_HOME="$java_home" ES_JAVA_OPTS="-Xms$HEAP -Xmx$HEAP" ES_PATH_CONF="$HOME_DIR/config" \
      "$HOME_DIR/bin/elasticsearch" -d -p "$LOG_DIR/es.pid" \
      -Ediscovery.type=single-node -Enetwork.host=127.0.0.1 -Ehttp.port="$PORT" \
      -Etransport.port="$((PORT + 100))" \
      -Epath.data="$DATA_DIR" -Epath.logs="$LOG_DIR" -Ecluster.name="logpipe-test-$PORT" \
      -Expack.security.enabled=false -Ecluster.routing.allocation.disk.threshold_enabled=false \
      -Eaction.destructive_requires_name=false ${EXTRA_SETTINGS[@]+"${EXTRA_SETTINGS[@]}"} >"$LOG_DIR/start.out" 2>&1 \
      || { tail -n 30 "$LOG_DIR/start.out" >&2; die "Elasticsearch failed to start (log: $LOG_DIR)"; }
    local i
    for i in $(seq 1 50); do [[ -s "$LOG_DIR/es.pid" ]] && break; sleep 0.2; done
    [[ -s "$LOG_DIR/es.pid" ]] || die "no pid file after start (log: $LOG_DIR)"
    cp "$LOG_DIR/es.pid" "$PID_FILE"
  fi
  local deadline=$((SECONDS + WAIT_S))
  while (( SECONDS < deadline )); do
    if healthy; then echo "$URL"; return 0; fi
    pid_alive || { tail -n 30 "$LOG_DIR"/*.log >&2 2>/dev/null || true; die "Elasticsearch exited during start (log: $LOG_DIR)"; }
    sleep 1
  done
  die "Elasticsearch not yellow/green after ${WAIT_S}s (log: $LOG_DIR)"
}

stop() {
  if ! pid_alive; then rm -f "$PID_FILE"; log "not running"; return 0; fi
  local pid i
  pid="$(cat "$PID_FILE")"
  kill -TERM "$pid"
  for i in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  if kill -0 "$pid" 2>/dev/null; then log "still running after 30s; KILL"; kill -KILL "$pid" || true; sleep 0.5; fi
  rm -f "$PID_FILE" "$LOG_DIR/es.pid"
  log "stopped"
}

status() {
  if pid_alive && healthy; then echo "running $URL pid $(cat "$PID_FILE")"; return 0; fi
  if pid_alive; then echo "starting (pid $(cat "$PID_FILE"), not healthy yet) $URL"; return 1; fi
  echo "stopped"
  return 3
}


# -- cluster mode ------------------------------------------------------------------------------
NODES="${LOGPIPE_ES_NODES:-1}"
FRESH=0
CMD="${1:-}"
shift || true
while (( $# )); do
  case "$1" in
    --nodes) NODES="${2:-}"; shift 2 || die "--nodes needs a number" ;;
    --nodes=*) NODES="${1#--nodes=}"; shift ;;
    --fresh) FRESH=1; shift ;;
    *) die "unknown option $1" ;;
  esac
done
[[ "$NODES" =~ ^[1-9][0-9]?$ ]] || die "--nodes must be a number from 1 to 99, got '$NODES'"

C_HTTP="${LOGPIPE_ES_CLUSTER_HTTP_PORT:-9401}"
C_TRANSPORT="${LOGPIPE_ES_CLUSTER_TRANSPORT_PORT:-9501}"
C_HEAP="${LOGPIPE_ES_HEAP:-320m}"
C_DIR="${LOGPIPE_ES_CLUSTER_DIR:-$CACHE/cluster-$C_HTTP}"
C_NAME="logpipe-cluster-$C_HTTP"

node_http() { echo $((C_HTTP + $1 - 1)); }
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
node_url() { echo "http://127.0.0.1:$(node_http "$1")"; }
node_pid_file() { echo "$C_DIR/node-$1/es.pid"; }

node_alive() {
  local f pid
  f="$(node_pid_file "$1")"
  [[ -s "$f" ]] || return 1
  pid="$(cat "$f" 2>/dev/null || true)"
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 1
  [[ "$(ps -o stat= -p "$pid" 2>/dev/null)" != Z* ]]  # a node just killed -9 may linger as a zombie
}

cluster_urls() {
  local i out=""
  for i in $(seq 1 "$NODES"); do out+="${out:+,}$(node_url "$i")"; done
  echo "$out"
}

# Green with every node joined and a probe index's replica assigned, asked of any node that answers.
cluster_green() {
  local i body
  for i in $(seq 1 "$NODES"); do
    curl -fsS --max-time 5 "$(node_url "$i")/cluster-probe" >/dev/null 2>&1 \
      || curl -fsS --max-time 10 -X PUT -H 'content-type: application/json' "$(node_url "$i")/cluster-probe" \
           -d '{"settings":{"number_of_shards":1,"number_of_replicas":1}}' >/dev/null 2>&1 || continue
    body="$(curl -fsS --max-time 5 \
      "$(node_url "$i")/_cluster/health?wait_for_nodes=$NODES&wait_for_status=green&timeout=2s" 2>/dev/null)" || continue
    [[ "$body" == *'"status":"green"'* && "$body" == *"\"number_of_nodes\":$NODES,"* \
       && "$body" == *'"timed_out":false'* ]] && return 0
    return 1
  done
  return 1
}

start_node() {
  local i="$1" http transport dir seeds="" masters="" j java_home
  http="$(node_http "$i")"
  transport=$((C_TRANSPORT + i - 1))
  dir="$C_DIR/node-$i"
  local k
  for k in $(seq 1 60); do  # a node just killed -9 holds its ports until its threads are gone
    port_busy "$http" || port_busy "$transport" || break
    sleep 0.5
  done
  if port_busy "$http" || port_busy "$transport"; then
    die "port $http or $transport is already in use (another node, or an orphan of an earlier run?); set LOGPIPE_ES_CLUSTER_HTTP_PORT"
  fi
  for j in $(seq 1 "$NODES"); do
    seeds+="${seeds:+,}127.0.0.1:$((C_TRANSPORT + j - 1))"
    masters+="${masters:+,}node-$j"
  done
  mkdir -p "$dir/data" "$dir/logs"
  rm -f "$dir/es.pid"
  check_user
  own_files "$C_DIR"
  java_home="$(find_java)"
  log "starting node-$i of $C_NAME: http $http, transport $transport (heap $C_HEAP)"
  run_es ES_JAVA_HOME="$java_home" ES_JAVA_OPTS="-Xms$C_HEAP -Xmx$C_HEAP" ES_PATH_CONF="$HOME_DIR/config" \
    "$HOME_DIR/bin/elasticsearch" -d -p "$dir/es.pid" \
    -Ecluster.name="$C_NAME" -Enode.name="node-$i" -Enetwork.host=127.0.0.1 \
    -Ehttp.port="$http" -Etransport.port="$transport" \
    -Ediscovery.seed_hosts="$seeds" -Ecluster.initial_master_nodes="$masters" \
    -Epath.data="$dir/data" -Epath.logs="$dir/logs" \
    -Expack.security.enabled=false -Ecluster.routing.allocation.disk.threshold_enabled=false \
    -Eaction.destructive_requires_name=false >"$dir/logs/start.out" 2>&1 \
    || { tail -n 30 "$dir/logs/start.out" >&2; die "node-$i failed to start (log: $dir/logs)"; }
}

cluster_start() {
  local i started=()
  download
  unpack
  if (( FRESH )); then
    for i in $(seq 1 "$NODES"); do node_alive "$i" && die "--fresh: node-$i is running; stop the cluster first"; done
    rm -rf "$C_DIR"
  fi
  mkdir -p "$C_DIR"
  local jobs=() failed=0 job
  for i in $(seq 1 "$NODES"); do  # in parallel: each `-d` start waits for its JVM to come up
    node_alive "$i" && continue
    start_node "$i" &
    jobs+=("$!")
    started+=("$i")
  done
  for job in "${jobs[@]}"; do wait "$job" || failed=1; done
  (( failed == 0 )) || die "a node failed to start (see above); the others keep running until 'stop --nodes $NODES'"
  for i in "${started[@]}"; do  # -d returns once the node runs; it wrote its own pid file
    [[ -s "$(node_pid_file "$i")" ]] || die "no pid file for node-$i (log: $C_DIR/node-$i/logs)"
  done
  local deadline=$((SECONDS + WAIT_S))
  while (( SECONDS < deadline )); do
    if cluster_green; then cluster_urls; return 0; fi
    for i in $(seq 1 "$NODES"); do
      node_alive "$i" || { tail -n 30 "$C_DIR/node-$i/logs/$C_NAME.log" >&2 2>/dev/null || true
                           die "node-$i exited during start (log: $C_DIR/node-$i/logs)"; }
    done
    sleep 1
  done
  die "$C_NAME not green with $NODES nodes after ${WAIT_S}s (logs: $C_DIR/node-*/logs)"
}

cluster_stop() {
  local f pid pids=() k
  for f in "$C_DIR"/node-*/es.pid; do
    [[ -s "$f" ]] || continue
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid" && pids+=("$pid"); fi
  done
  for pid in "${pids[@]}"; do
    for k in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
    if kill -0 "$pid" 2>/dev/null; then log "node pid $pid still running after 30s; KILL"; kill -KILL "$pid" || true; fi
  done
  rm -f "$C_DIR"/node-*/es.pid
  log "stopped ${#pids[@]} node(s) of $C_NAME"
}

cluster_status() {
  local i up=0 health
  for i in $(seq 1 "$NODES"); do
    if node_alive "$i" && curl -fsS --max-time 3 "$(node_url "$i")/_cluster/health?local=true" >/dev/null 2>&1; then
      echo "node-$i running $(node_url "$i") pid $(cat "$(node_pid_file "$i")") transport $((C_TRANSPORT + i - 1))"
      up=$((up + 1))
    elif node_alive "$i"; then
      echo "node-$i starting $(node_url "$i") pid $(cat "$(node_pid_file "$i")")"
    else
      echo "node-$i stopped $(node_url "$i")"
    fi
  done
  (( up > 0 )) || { echo "cluster $C_NAME stopped"; return 3; }
  for i in $(seq 1 "$NODES"); do
    health="$(curl -fsS --max-time 3 "$(node_url "$i")/_cluster/health" 2>/dev/null)" || continue
    health="$(sed -n 's/.*"status":"\([a-z]*\)".*"number_of_nodes":\([0-9]*\),.*/\1 \2/p' <<<"$health")"
    echo "cluster $C_NAME ${health% *} with ${health#* } of $NODES nodes"
    [[ "$health" == "green $NODES" ]] && return 0
    return 1
  done
  return 1
}

cluster_pids() {
  local i
  for i in $(seq 1 "$NODES"); do node_alive "$i" && echo "node-$i $(cat "$(node_pid_file "$i")")"; done
  return 0
}

if (( NODES > 1 )); then
  case "$CMD" in
    start) cluster_start ;;
    stop) cluster_stop ;;
    restart) cluster_stop; cluster_start ;;
    status) cluster_status ;;
    url) cluster_urls ;;
    pid) cluster_pids ;;
    *) die "usage: $0 start|stop|restart|status|url|pid [--nodes N] [--fresh]" ;;
  esac
  exit $?
fi

case "$CMD" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  url) echo "$URL" ;;
  cache) echo "$CACHE" ;;
  pid) pid_alive && cat "$PID_FILE" ;;
  *) die "usage: $0 start|stop|restart|status|url|cache|pid" ;;
esac
