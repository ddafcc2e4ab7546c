#!/usr/bin/env bash
# Make Redis, PostgreSQL and ClickHouse available on loopback for Meterline
# (the app, its tests and benchmarks).
#
#   scripts/services.sh up      start whatever is not already answering
#   scripts/services.sh down    stop only what this script started
#   scripts/services.sh status  one line per service; exit 1 if any is down
#
# Anything already listening on a port is reused as-is, so this is safe on a
# dev box with system services and fast when run repeatedly (npm test calls it).
# Missing servers are installed from Debian apt. Our own state (pid files, logs,
# ClickHouse data) lives in $ROOT/.data/, which is git-ignored.
#
# Env: REDIS_PORT (6379), PG_PORT (5432), PG_CLUSTER (main),
#      CLICKHOUSE_HTTP_PORT (8123), CLICKHOUSE_TCP_PORT (9000),
#      CLICKHOUSE_INTERSERVER_PORT (9009), CLICKHOUSE_LISTEN_HOST (auto),
#      SERVICES_WAIT_SECS (60).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DATA="$ROOT/.data"

REDIS_PORT="${REDIS_PORT:-6379}"
PG_PORT="${PG_PORT:-5432}"
PG_CLUSTER="${PG_CLUSTER:-main}"
CLICKHOUSE_HTTP_PORT="${CLICKHOUSE_HTTP_PORT:-8123}"
CLICKHOUSE_TCP_PORT="${CLICKHOUSE_TCP_PORT:-9000}"
CLICKHOUSE_INTERSERVER_PORT="${CLICKHOUSE_INTERSERVER_PORT:-9009}"
WAIT_SECS="${SERVICES_WAIT_SECS:-60}"

REDIS_DIR="$DATA/redis"
REDIS_PID="$REDIS_DIR/redis.pid"
REDIS_LOG="$REDIS_DIR/redis.log"
PG_MARKER="$DATA/postgres.started" # "<version> <cluster>" of a cluster we started
CH_DIR="$DATA/clickhouse"
CH_PID="$CH_DIR/clickhouse.pid"

log() { printf '%s\n' "$*"; }
die() {
  printf 'services.sh: ERROR: %s\n' "$*" >&2
  exit 1
}

# Print the tail of each existing log file to stderr (used on failures).
show_logs() {
  local f
  for f in "$@"; do
    [ -f "$f" ] || continue
    printf -- '--- last lines of %s ---\n' "$f" >&2
    tail -n 30 "$f" >&2 || true
  done
}

# Run a command as root (apt, pg_ctlcluster, pg_hba edits); sudo if we are not root.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root (or sudo) to run: $*"
  fi
}

APT_UPDATED=0
apt_install() {
  command -v apt-get >/dev/null 2>&1 || die "apt-get not available; please install: $*"
  # Package lists in fresh containers are empty/stale: update once per run.
  if [ "$APT_UPDATED" -eq 0 ]; then
    log "apt: updating package lists"
    as_root apt-get update -qq
    APT_UPDATED=1
  fi
  log "apt: installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# True if something accepts TCP connections on 127.0.0.1:$1 (bash's /dev/tcp,
# so it works before any client tools are installed).
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" >/dev/null 2>&1
}

# True if $1 is a pid file whose process is alive and its command line matches $2
# (guards against acting on a recycled pid from a stale file).
pidfile_alive() {
  local pid
  [ -f "$1" ] || return 1
  pid="$(cat "$1" 2>/dev/null)" || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q -- "$2"
}

# wait_for NAME ALIVE_FN LOG -- CHECK...
# Poll CHECK until it succeeds (max $WAIT_SECS). ALIVE_FN (or "true") lets us
# fail fast when the daemon already died instead of waiting out the timeout;
# it gets a short grace period because daemons fork before writing pid files.
wait_for() {
  local name="$1" alive="$2" logf="$3"
  shift 4
  local start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS - start >= WAIT_SECS)); then
      show_logs "$logf"
      die "$name did not become ready within ${WAIT_SECS}s"
    fi
    if ((SECONDS - start >= 5)) && ! "$alive"; then
      show_logs "$logf"
      die "$name exited during startup"
    fi
    sleep 0.5
  done
}

# Stop the process in pid file $2 (matching $3); SIGTERM, then SIGKILL after 30 s.
stop_pidfile() {
  local name="$1" pidf="$2" match="$3" pid i
  if ! pidfile_alive "$pidf" "$match"; then
    rm -f "$pidf"
    log "$name: not started by services.sh, nothing to stop"
    return 0
  fi
  pid="$(cat "$pidf")"
  kill "$pid"
  for ((i = 0; i < 150; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: did not stop after 30s, sending SIGKILL"
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidf"
  log "$name: stopped (pid $pid)"
}

# ---------------------------------------------------------------- Redis

redis_ping() { [ "$(redis-cli -h 127.0.0.1 -p "$REDIS_PORT" ping 2>/dev/null)" = "PONG" ]; }
redis_alive() { pidfile_alive "$REDIS_PID" redis-server; }

redis_up() {
  if port_open "$REDIS_PORT"; then
    log "redis: already running on 127.0.0.1:$REDIS_PORT"
    return
  fi
  if ! command -v redis-server >/dev/null 2>&1; then
    apt_install redis-server
    # The package's postinst may have started a system Redis on the default port.
    if port_open "$REDIS_PORT"; then
      log "redis: already running on 127.0.0.1:$REDIS_PORT (started by package install)"
      return
    fi
  fi
  mkdir -p "$REDIS_DIR"
  # The Redis Streams event log holds accepted events until the sink stored them: keep an append-only
  # file (fsync each second: a Redis crash loses nothing, a power loss at most the last second).
  redis-server --daemonize yes --bind 127.0.0.1 --port "$REDIS_PORT" \
    --save "" --appendonly yes --appendfsync everysec --dir "$REDIS_DIR" \
    --logfile "$REDIS_LOG" --pidfile "$REDIS_PID"
  wait_for redis redis_alive "$REDIS_LOG" -- redis_ping
  log "redis: started on 127.0.0.1:$REDIS_PORT (pid $(cat "$REDIS_PID"))"
}

redis_down() { stop_pidfile redis "$REDIS_PID" redis-server; }

# ---------------------------------------------------------------- PostgreSQL

# Newest installed Debian PostgreSQL version that has cluster $PG_CLUSTER.
pg_version() {
  local d
  for d in /etc/postgresql/*/"$PG_CLUSTER"; do
    [ -d "$d" ] && basename "$(dirname "$d")"
  done | sort -V | tail -n 1
}

pg_ready() { pg_isready -q -h 127.0.0.1 -p "$PG_PORT"; }

# The exact connection the app/tests rely on: postgres user, no password.
# PGPASSFILE=/dev/null so a ~/.pgpass cannot mask a missing trust rule.
pg_trust_ok() {
  env -u PGPASSWORD PGPASSFILE=/dev/null PGCONNECT_TIMEOUT=5 \
    psql -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres -w -qAt -c 'select 1' >/dev/null 2>&1
}

postgres_up() {
  if port_open "$PG_PORT"; then
    log "postgres: already running on 127.0.0.1:$PG_PORT"
  else
    if ! command -v pg_ctlcluster >/dev/null 2>&1 || [ -z "$(pg_version)" ]; then
      apt_install postgresql # creates and (maybe) starts the "main" cluster
    fi
    if port_open "$PG_PORT"; then
      log "postgres: already running on 127.0.0.1:$PG_PORT (started by package install)"
    else
      postgres_start
    fi
  fi
  postgres_ensure_trust
}

postgres_start() {
  local ver conf
  ver="$(pg_version)"
  [ -n "$ver" ] || die "postgres: no cluster '$PG_CLUSTER' under /etc/postgresql"
  local pglog="/var/log/postgresql/postgresql-$ver-$PG_CLUSTER.log"
  # pg_ctlcluster always checks the port from postgresql.conf (passing `-o -p`
  # starts the server but pg_ctlcluster then reports failure), so require a match.
  conf="$(sed -nE 's/^[[:space:]]*port[[:space:]]*=[[:space:]]*([0-9]+).*/\1/p' \
    "/etc/postgresql/$ver/$PG_CLUSTER/postgresql.conf" | tail -n 1)"
  if [ "${conf:-5432}" != "$PG_PORT" ]; then
    die "postgres: cluster $ver/$PG_CLUSTER is configured for port ${conf:-5432}, not PG_PORT=$PG_PORT" \
      "(change 'port' in /etc/postgresql/$ver/$PG_CLUSTER/postgresql.conf or unset PG_PORT)"
  fi
  mkdir -p "$DATA"
  # --skip-systemctl-redirect: there is no systemd here; start the cluster directly.
  if ! as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$PG_CLUSTER" start; then
    show_logs "$pglog"
    die "postgres: pg_ctlcluster $ver $PG_CLUSTER start failed"
  fi
  echo "$ver $PG_CLUSTER" >"$PG_MARKER"
  wait_for postgres true "$pglog" -- pg_ready
  log "postgres: started cluster $ver/$PG_CLUSTER on 127.0.0.1:$PG_PORT"
}

# Fresh Debian clusters use scram/md5 for TCP loopback; the app and tests connect
# as postgres without a password, so add trust rules for loopback if needed.
# pg_hba is first-match, hence the rules are inserted at the top of the file.
postgres_ensure_trust() {
  if ! command -v psql >/dev/null 2>&1; then
    log "postgres: psql not installed, skipping passwordless-login check"
    return
  fi
  pg_trust_ok && return
  local ver hba
  ver="$(pg_version)"
  hba="/etc/postgresql/${ver:-?}/$PG_CLUSTER/pg_hba.conf"
  if [ -z "$ver" ] || [ ! -f "$hba" ]; then
    die "postgres: 'psql -h 127.0.0.1 -U postgres' needs a password and no local pg_hba.conf was found; enable trust auth for loopback"
  fi
  if ! grep -q 'meterline services.sh' "$hba"; then
    log "postgres: enabling trust auth for 127.0.0.1/32 and ::1/128 in $hba"
    as_root sed -i '1i # added by meterline services.sh: passwordless loopback for dev/tests\nhost    all    all    127.0.0.1/32    trust\nhost    all    all    ::1/128         trust' "$hba"
  fi
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$PG_CLUSTER" reload
  # Reload is asynchronous (SIGHUP); give it a moment.
  local i
  for ((i = 0; i < 20; i++)); do
    pg_trust_ok && {
      log "postgres: passwordless loopback login enabled"
      return
    }
    sleep 0.5
  done
  die "postgres: 'psql -h 127.0.0.1 -p $PG_PORT -U postgres' still fails after enabling trust in $hba"
}

postgres_down() {
  if [ ! -f "$PG_MARKER" ]; then
    log "postgres: not started by services.sh, nothing to stop"
    return
  fi
  local ver cluster
  read -r ver cluster <"$PG_MARKER"
  as_root pg_ctlcluster --skip-systemctl-redirect "$ver" "$cluster" stop ||
    log "postgres: pg_ctlcluster $ver $cluster stop failed (already stopped?)"
  rm -f "$PG_MARKER"
  log "postgres: stopped cluster $ver/$cluster"
}

# ---------------------------------------------------------------- ClickHouse

ch_ping() { [ "$(curl -sf --max-time 2 "http://127.0.0.1:$CLICKHOUSE_HTTP_PORT/ping")" = "Ok." ]; }
ch_alive() { pidfile_alive "$CH_PID" clickhouse-server; }

clickhouse_up() {
  if port_open "$CLICKHOUSE_HTTP_PORT"; then
    log "clickhouse: already running on 127.0.0.1:$CLICKHOUSE_HTTP_PORT"
    return
  fi
  command -v curl >/dev/null 2>&1 || apt_install curl ca-certificates
  if ! command -v clickhouse-server >/dev/null 2>&1; then
    # Debian 12 ships ClickHouse 18.16. We never use its init script/systemd unit.
    apt_install clickhouse-server clickhouse-client
    if port_open "$CLICKHOUSE_HTTP_PORT"; then
      log "clickhouse: already running on 127.0.0.1:$CLICKHOUSE_HTTP_PORT (started by package install)"
      return
    fi
  fi

  mkdir -p "$CH_DIR"/{data,tmp,uf,fs}
  if ch_alive; then
    # Our instance exists but is not answering yet (e.g. a concurrent `up`).
    log "clickhouse: our instance (pid $(cat "$CH_PID")) is not answering on :$CLICKHOUSE_HTTP_PORT yet, waiting" \
      "(if you changed CLICKHOUSE_*_PORT, run 'services.sh down' first)"
  else
    rm -f "$CH_PID"
    # Keep the previous run's logs aside so a failure shows only fresh errors.
    local f
    for f in server.log err.log stderr.log stdout.log; do
      if [ -f "$CH_DIR/$f" ]; then mv -f "$CH_DIR/$f" "$CH_DIR/$f.prev"; fi
    done
    # With no <listen_host> configured (Debian default), ClickHouse tries ::1
    # and 127.0.0.1. Pin IPv4 loopback when IPv6 loopback is absent.
    local listen=()
    if [ -n "${CLICKHOUSE_LISTEN_HOST:-}" ]; then
      listen=("--listen_host=$CLICKHOUSE_LISTEN_HOST")
    elif ! grep -qi '^0\{31\}1 ' /proc/net/if_inet6 2>/dev/null; then
      listen=(--listen_host=127.0.0.1)
    fi
    # System config/users.xml, everything else overridden to a project-local dir.
    # Settings after `--` override config.xml keys. --daemon forks, setsid()s and
    # redirects stdio to stdout.log/stderr.log next to server.log, and returns 0
    # even when startup later fails, so readiness is checked below.
    (
      cd "$CH_DIR"
      clickhouse-server --config-file=/etc/clickhouse-server/config.xml \
        --daemon --pid-file="$CH_PID" -- \
        --path="$CH_DIR/data/" --tmp_path="$CH_DIR/tmp/" \
        --user_files_path="$CH_DIR/uf/" --format_schema_path="$CH_DIR/fs/" \
        --http_port="$CLICKHOUSE_HTTP_PORT" --tcp_port="$CLICKHOUSE_TCP_PORT" \
        --interserver_http_port="$CLICKHOUSE_INTERSERVER_PORT" \
        --logger.log="$CH_DIR/server.log" --logger.errorlog="$CH_DIR/err.log" \
        "${listen[@]}"
    ) || {
      show_logs "$CH_DIR/err.log" "$CH_DIR/stderr.log"
      die "clickhouse: clickhouse-server failed to launch"
    }
  fi
  wait_for clickhouse ch_alive "$CH_DIR/err.log" -- ch_ping
  log "clickhouse: started on 127.0.0.1:$CLICKHOUSE_HTTP_PORT (tcp $CLICKHOUSE_TCP_PORT, pid $(cat "$CH_PID"), data $CH_DIR)"
}

clickhouse_down() { stop_pidfile clickhouse "$CH_PID" clickhouse-server; }

# ---------------------------------------------------------------- main

status_line() { # NAME PORT PIDFILE_OR_MARKER_DESCRIPTION
  local name="$1" port="$2" ours="$3" state=down
  port_open "$port" && state=up
  log "$name: $state (127.0.0.1:$port)${ours:+ [$ours]}"
  [ "$state" = up ]
}

cmd_status() {
  local rc=0 r="" p="" c=""
  redis_alive && r="started by services.sh, pid $(cat "$REDIS_PID")"
  [ -f "$PG_MARKER" ] && p="started by services.sh: $(cat "$PG_MARKER")"
  ch_alive && c="started by services.sh, pid $(cat "$CH_PID")"
  status_line redis "$REDIS_PORT" "$r" || rc=1
  status_line postgres "$PG_PORT" "$p" || rc=1
  status_line clickhouse "$CLICKHOUSE_HTTP_PORT" "$c" || rc=1
  return "$rc"
}

case "${1:-}" in
up)
  redis_up
  postgres_up
  clickhouse_up
  ;;
down)
  clickhouse_down
  redis_down
  postgres_down
  ;;
status) cmd_status ;;
*)
  echo "usage: $0 up|down|status" >&2
  exit 2
  ;;
esac
