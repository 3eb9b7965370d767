#!/usr/bin/env bash
# A real single-node Elasticsearch for tests, CI and benchmarks.
#
#   scripts/elasticsearch.sh start    # download once (mvn), unzip once, start, wait for yellow/green
#   scripts/elasticsearch.sh stop     # SIGTERM, wait, then KILL
#   scripts/elasticsearch.sh status   # exit 0 and print the URL when running and healthy
#   scripts/elasticsearch.sh url      # print the URL
#   scripts/elasticsearch.sh cache    # print the cache directory
#
# Environment: LOGPIPE_CACHE (default ~/.cache/logpipe; as root /var/cache/logpipe),
# LOGPIPE_ES_PORT (default 9200), LOGPIPE_ES_VERSION (default 8.19.21), ES_JAVA_HOME (default:
# newest JDK >= 17 found), LOGPIPE_ES_HEAP (default 512m), LOGPIPE_ES_SETTINGS (extra node settings,
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

# As root: the node's user owns what it writes (the unpacked node, data, logs).
own_files() {
  [[ "$(id -u)" == 0 ]] || return 0
  chown -R "$RUN_USER" "$HOME_DIR" "$DATA_DIR" "$LOG_DIR"
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
    own_files
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

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  status) status ;;
  url) echo "$URL" ;;
  cache) echo "$CACHE" ;;
  pid) pid_alive && cat "$PID_FILE" ;;
  *) die "usage: $0 start|stop|restart|status|url|cache|pid" ;;
esac
