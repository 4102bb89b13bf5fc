#!/usr/bin/env bash
# Local PostgreSQL server for nudge's tests: its own cluster, not Debian's system one.
#
#   deploy/postgres/postgres.sh start|stop|restart|status
#
# start    idempotent. Installs Debian's postgresql with apt-get when no server
#          binaries are found (without letting Debian create its system cluster),
#          initialises a cluster once under the state dir, starts it on
#          127.0.0.1:5432, waits for pg_isready and makes sure role nudge
#          (password nudge, CREATEDB) and databases nudge and nudge_test exist.
#          When some other server already answers on 127.0.0.1:5432 it only makes
#          sure the role and the databases exist there.
# stop     fast shutdown of our cluster; a no-op when it is not running.
# restart  stop, then start; the data is kept.
# status   exit 0 when pg_isready -h 127.0.0.1 -p 5432 succeeds, 1 otherwise.
#
# Environment:
#   NUDGE_STATE_DIR   state root (default $HOME/.cache/nudge); the cluster lives in
#                     $NUDGE_STATE_DIR/postgres. When the script runs as root the
#                     server runs as the OS user postgres (initdb refuses root); if
#                     postgres cannot reach that directory (e.g. it is under /root,
#                     mode 0700) the cluster goes to /var/tmp/nudge/postgres instead.
#   NUDGE_PG_DIR      explicit cluster root, overriding both of the above.
#   PG_START_TIMEOUT  seconds to wait for the server (default 60).
set -euo pipefail
umask 022

HOST=127.0.0.1
PORT=5432
DB_USER=nudge
DB_PASSWORD=nudge
DATABASES=(nudge nudge_test)
START_TIMEOUT="${PG_START_TIMEOUT:-60}"
FALLBACK_ROOT=/var/tmp/nudge/postgres

STATE_ROOT="${NUDGE_STATE_DIR:-${HOME:-/root}/.cache/nudge}"

log() { printf '[postgres.sh] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

IS_ROOT=0
[[ "$(id -u)" == 0 ]] && IS_ROOT=1

# Runs a command as the OS user that owns the cluster, from a directory it can read.
as_pg() {
  if ((IS_ROOT)); then
    (cd / && runuser -u postgres -- "$@")
  else
    (cd / && "$@")
  fi
}

# ---------------------------------------------------------------- binaries

find_pg_bin() {
  # Newest installed major that has a complete server.
  local d best="" best_ver=0 ver
  for d in /usr/lib/postgresql/*/bin; do
    [[ -x "$d/pg_ctl" && -x "$d/initdb" && -x "$d/postgres" ]] || continue
    ver="$(basename "$(dirname "$d")")"
    [[ "$ver" =~ ^[0-9]+$ ]] || continue
    if ((ver > best_ver)); then best_ver=$ver; best=$d; fi
  done
  [[ -n "$best" ]] || return 1
  echo "$best"
}

install_postgres() {
  ((IS_ROOT)) || die "PostgreSQL server binaries not found; install Debian's postgresql package (needs root)"
  log "installing Debian's postgresql with apt-get"
  # Keep Debian from creating (and starting) its own 'main' cluster on port 5432:
  # postgresql-common reads this drop-in when the server package is configured.
  if [[ ! -d /etc/postgresql ]] || [[ -z "$(ls -A /etc/postgresql 2>/dev/null)" ]]; then
    mkdir -p /etc/postgresql-common/createcluster.d
    printf '# written by nudge deploy/postgres/postgres.sh\ncreate_main_cluster = false\n' \
      >/etc/postgresql-common/createcluster.d/nudge-no-main-cluster.conf
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq -o Dpkg::Options::=--force-confold postgresql >/dev/null
  # Belt and braces: if a system cluster got started on our port anyway, stop it.
  if command -v pg_lsclusters >/dev/null 2>&1; then
    pg_lsclusters -h 2>/dev/null | while read -r ver name port status _rest; do
      if [[ "$port" == "$PORT" && "$status" == online* ]]; then
        log "stopping Debian's system cluster $ver/$name, which took port $PORT"
        pg_ctlcluster "$ver" "$name" stop || true
      fi
    done
  fi
}

PG_BIN=""
ensure_pg_bin() {
  if ! PG_BIN="$(find_pg_bin)"; then
    install_postgres
    PG_BIN="$(find_pg_bin)" || die "no PostgreSQL server binaries under /usr/lib/postgresql/*/bin after install"
  fi
}

client_bin() {
  # Client tools: prefer the server's own directory, then PATH.
  local tool=$1
  if [[ -n "$PG_BIN" && -x "$PG_BIN/$tool" ]]; then
    echo "$PG_BIN/$tool"
  elif PG_BIN_FOUND="$(find_pg_bin 2>/dev/null)" && [[ -x "$PG_BIN_FOUND/$tool" ]]; then
    echo "$PG_BIN_FOUND/$tool"
  else
    command -v "$tool" || return 1
  fi
}

# ---------------------------------------------------------------- locations

PG_ROOT=""
resolve_pg_root() {
  # Deterministic, so that start, stop and status always agree.
  if [[ -n "${NUDGE_PG_DIR:-}" ]]; then
    PG_ROOT="$NUDGE_PG_DIR"
  else
    PG_ROOT="$STATE_ROOT/postgres"
    if ((IS_ROOT)) && ! pg_user_can_use "$PG_ROOT"; then
      PG_ROOT="$FALLBACK_ROOT"
    fi
  fi
  DATA_DIR="$PG_ROOT/data"
  SOCK_DIR="$PG_ROOT/run"
  LOG_FILE="$PG_ROOT/log/postgres.log"
  # A unix socket path is limited to 107 bytes.
  if ((${#SOCK_DIR} > 90)); then
    SOCK_DIR="/tmp/nudge-pg-$(id -u)"
  fi
}

pg_user_can_use() {
  # Can the postgres OS user reach (traverse into) the given directory, creating it if needed?
  local dir=$1 parent
  parent="$(dirname "$dir")"
  # Probe on the nearest existing ancestor so that nothing gets created in the wrong place.
  while [[ ! -e "$parent" ]]; do parent="$(dirname "$parent")"; done
  (cd / && runuser -u postgres -- test -x "$parent") 2>/dev/null
}

prepare_dirs() {
  mkdir -p "$PG_ROOT" "$PG_ROOT/log" "$SOCK_DIR"
  if ((IS_ROOT)); then
    # The postgres user must be able to traverse every ancestor it needs: make
    # only the directories we created ourselves (not their ancestors) accessible.
    chown postgres:postgres "$PG_ROOT" "$PG_ROOT/log" "$SOCK_DIR"
    [[ -d "$DATA_DIR" ]] && chown -R postgres:postgres "$DATA_DIR"
    as_pg test -w "$PG_ROOT" || die "the postgres OS user cannot write to $PG_ROOT; set NUDGE_PG_DIR to a directory it can reach"
  fi
  chmod 0700 "$SOCK_DIR"
}

# ---------------------------------------------------------------- cluster

is_ready() {
  local isready
  isready="$(client_bin pg_isready)" || return 1
  "$isready" -q -h "$HOST" -p "$PORT" -t 3 >/dev/null 2>&1
}

our_cluster_running() {
  [[ -f "$DATA_DIR/PG_VERSION" ]] || return 1
  as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" status >/dev/null 2>&1
}

init_cluster() {
  if [[ -f "$DATA_DIR/PG_VERSION" ]]; then
    local have want
    have="$(cat "$DATA_DIR/PG_VERSION")"
    want="$(basename "$(dirname "$PG_BIN")")"
    if [[ "$have" != "$want" ]]; then
      local cand="/usr/lib/postgresql/$have/bin"
      [[ -x "$cand/pg_ctl" ]] || die "$DATA_DIR was made by PostgreSQL $have, whose binaries are gone; remove $PG_ROOT to start afresh"
      log "using PostgreSQL $have binaries to match the existing cluster in $DATA_DIR"
      PG_BIN="$cand"
    fi
    return 0
  fi
  log "initialising a new cluster in $DATA_DIR ($("$PG_BIN/postgres" --version))"
  local pwfile
  pwfile="$(mktemp)"
  rm -rf "$DATA_DIR"
  mkdir -p "$DATA_DIR"
  ((IS_ROOT)) && chown postgres:postgres "$DATA_DIR" "$pwfile"
  chmod 0700 "$DATA_DIR"
  # The superuser is always 'postgres'; it is reached through the unix socket only.
  printf 'postgres\n' >"$pwfile"
  if ! as_pg "$PG_BIN/initdb" -D "$DATA_DIR" -U postgres --pwfile="$pwfile" -E UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 >"$PG_ROOT/log/initdb.log" 2>&1; then
    rm -f "$pwfile"
    tail -n 30 "$PG_ROOT/log/initdb.log" >&2
    rm -rf "$DATA_DIR"
    die "initdb failed"
  fi
  rm -f "$pwfile"
  # Only local socket connections are trusted; TCP always needs a password.
  cat >"$DATA_DIR/pg_hba.conf" <<'EOF'
# Generated by deploy/postgres/postgres.sh
# TYPE  DATABASE  USER  ADDRESS       METHOD
local   all       all                 trust
host    all       all   127.0.0.1/32  scram-sha-256
host    all       all   ::1/128       scram-sha-256
EOF
  printf "\ninclude_if_exists = 'nudge.conf'\n" >>"$DATA_DIR/postgresql.conf"
  ((IS_ROOT)) && chown postgres:postgres "$DATA_DIR/pg_hba.conf" "$DATA_DIR/postgresql.conf"
  return 0
}

write_settings() {
  # Rewritten on every start so that changes here apply to existing clusters too.
  cat >"$DATA_DIR/nudge.conf" <<EOF
# Generated by deploy/postgres/postgres.sh on every start -- edit the script, not this file.
listen_addresses = '$HOST'
port = $PORT
unix_socket_directories = '$SOCK_DIR'
max_connections = 200
shared_buffers = 256MB
work_mem = 8MB
maintenance_work_mem = 128MB
# Durability stays on: the tests check that accepted events survive crashes.
fsync = on
synchronous_commit = on
full_page_writes = on
wal_level = replica
max_wal_size = 1GB
timezone = 'UTC'
log_timezone = 'UTC'
log_line_prefix = '%m [%p] %q%u@%d '
log_min_duration_statement = -1
idle_in_transaction_session_timeout = 0
EOF
  ((IS_ROOT)) && chown postgres:postgres "$DATA_DIR/nudge.conf"
  return 0
}

start_cluster() {
  log "starting PostgreSQL $(basename "$(dirname "$PG_BIN")") on $HOST:$PORT (data $DATA_DIR, log $LOG_FILE)"
  ((IS_ROOT)) && { touch "$LOG_FILE"; chown postgres:postgres "$LOG_FILE"; }
  # setsid: the server must outlive the shell (and make's process group) that started it.
  if ! as_pg setsid -w "$PG_BIN/pg_ctl" -D "$DATA_DIR" -l "$LOG_FILE" -w -t "$START_TIMEOUT" start >/dev/null 9>&-; then
    log "pg_ctl start failed; last lines of $LOG_FILE:"
    tail -n 40 "$LOG_FILE" >&2 || true
    exit 1
  fi
}

wait_ready() {
  local t0=$SECONDS
  until is_ready; do
    if ((SECONDS - t0 >= START_TIMEOUT)); then
      log "pg_isready -h $HOST -p $PORT did not succeed within ${START_TIMEOUT}s; last lines of $LOG_FILE:"
      tail -n 40 "$LOG_FILE" >&2 2>/dev/null || true
      exit 1
    fi
    sleep 0.5
  done
}

# ---------------------------------------------------------------- role and databases

ENSURE_SQL="
SELECT format('CREATE ROLE %I LOGIN CREATEDB PASSWORD %L', '$DB_USER', '$DB_PASSWORD')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '$DB_USER') \\gexec
ALTER ROLE $DB_USER LOGIN CREATEDB PASSWORD '$DB_PASSWORD';
"
for _db in "${DATABASES[@]}"; do
  ENSURE_SQL+="
SELECT format('CREATE DATABASE %I OWNER %I', '$_db', '$DB_USER')
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = '$_db') \\gexec
ALTER DATABASE $_db OWNER TO $DB_USER;
"
done

run_superuser_sql() {
  # Tries, in order: our cluster's socket, the default Debian socket dir as the
  # postgres OS user (peer auth), the current user on the default socket.
  local psql
  psql="$(client_bin psql)" || die "psql not found"
  if [[ -S "$SOCK_DIR/.s.PGSQL.$PORT" ]] && our_cluster_running 2>/dev/null; then
    as_pg "$psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCK_DIR" -p "$PORT" -U postgres -d postgres <<<"$ENSURE_SQL" >/dev/null
    return
  fi
  local sockdir
  for sockdir in /var/run/postgresql /run/postgresql /tmp; do
    [[ -S "$sockdir/.s.PGSQL.$PORT" ]] || continue
    if ((IS_ROOT)); then
      if as_pg "$psql" -X -q -v ON_ERROR_STOP=1 -h "$sockdir" -p "$PORT" -d postgres <<<"$ENSURE_SQL" >/dev/null 2>&1; then
        return 0
      fi
    elif "$psql" -X -q -v ON_ERROR_STOP=1 -h "$sockdir" -p "$PORT" -d postgres <<<"$ENSURE_SQL" >/dev/null 2>&1; then
      return 0
    fi
  done
  return 1
}

ensure_role_and_databases() {
  if run_superuser_sql; then
    log "role $DB_USER and databases ${DATABASES[*]} are in place"
    return 0
  fi
  # No superuser access: accept a server where everything already exists.
  local psql db ok=1
  psql="$(client_bin psql)" || die "psql not found"
  for db in "${DATABASES[@]}"; do
    PGPASSWORD="$DB_PASSWORD" PGCONNECT_TIMEOUT=5 "$psql" -X -q -h "$HOST" -p "$PORT" -U "$DB_USER" -d "$db" \
      -c 'select 1' >/dev/null 2>&1 || ok=0
  done
  if ((ok)); then
    log "role $DB_USER and databases ${DATABASES[*]} already exist on the running server"
    return 0
  fi
  die "a server answers on $HOST:$PORT but this script has no superuser access to create role $DB_USER and databases ${DATABASES[*]}"
}

# ---------------------------------------------------------------- commands

cmd_status() {
  if is_ready; then
    log "PostgreSQL answers on $HOST:$PORT"
    return 0
  fi
  log "no PostgreSQL on $HOST:$PORT"
  return 1
}

cmd_start() {
  ensure_pg_bin
  resolve_pg_root
  if is_ready; then
    if our_cluster_running; then
      log "our cluster already answers on $HOST:$PORT"
    else
      log "a PostgreSQL server already answers on $HOST:$PORT; using it"
    fi
    ensure_role_and_databases
    return 0
  fi
  prepare_dirs
  init_cluster
  write_settings
  if our_cluster_running; then
    log "our cluster is running but not answering yet; waiting for it"
  else
    start_cluster
  fi
  wait_ready
  ensure_role_and_databases
  log "ready: postgresql://$DB_USER:$DB_PASSWORD@$HOST:$PORT/nudge"
}

cmd_stop() {
  PG_BIN="$(find_pg_bin)" || { log "no PostgreSQL binaries installed; nothing to stop"; return 0; }
  resolve_pg_root
  if [[ ! -f "$DATA_DIR/PG_VERSION" ]] || ! our_cluster_running; then
    if is_ready; then
      log "the server on $HOST:$PORT was not started by this script; leaving it alone"
    else
      log "not running"
    fi
    return 0
  fi
  local have
  have="/usr/lib/postgresql/$(cat "$DATA_DIR/PG_VERSION")/bin"
  [[ -x "$have/pg_ctl" ]] && PG_BIN="$have"
  log "stopping our cluster ($DATA_DIR)"
  if ! as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m fast -w -t 60 stop >/dev/null; then
    log "fast shutdown did not finish in 60s; using immediate shutdown"
    as_pg "$PG_BIN/pg_ctl" -D "$DATA_DIR" -m immediate -w -t 30 stop >/dev/null || true
  fi
  log "stopped"
}

with_lock() {
  # Serialise concurrent start/stop calls (e.g. parallel test workers).
  local lock
  lock="/tmp/nudge-postgres-sh-$(id -u).lock"
  exec 9>"$lock"
  flock -w 300 9 || die "could not take $lock within 300s"
}

case "${1:-}" in start | stop | restart) with_lock ;; esac
case "${1:-}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  restart) cmd_stop; cmd_start ;;
  status) cmd_status ;;
  *) echo "usage: $0 start|stop|restart|status" >&2; exit 2 ;;
esac
