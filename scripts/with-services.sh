#!/usr/bin/env bash
# Runs a command with PostgreSQL and Redis available, then cleans up what it started.
#
#   scripts/with-services.sh <command> [args...]
#
# - DATABASE_URL / REDIS_URL set: used as they are, nothing is started.
# - Unset: a throwaway PostgreSQL (15+) and/or Redis is started from the system binaries, with
#   its own data directory and a free port under a temp dir, and stopped (and deleted) when the
#   command exits, however it exits. Servers already running (e.g. on 5432/6379) are never
#   touched: ours listen on other ports.
# - GENESIS_REDIS_CLUSTER=1 and REDIS_CLUSTER_URL unset (`make test`): a throwaway 3-shard
#   Redis Cluster (one replica per shard) is
#   started too (scripts/redis-cluster.sh), for the tests that run the queue on a cluster.
# - Binaries missing: installed with apt when running as root, otherwise the one apt command
#   to run is printed.
set -euo pipefail

if [ $# -eq 0 ]; then
  echo "usage: $0 <command> [args...]" >&2
  exit 2
fi

log() { printf '\033[2m[services]\033[0m %s\n' "$*" >&2; }

WORK=""
PG_BIN=""
PG_DATA=""
REDIS_PORT=""
CLUSTER_DIR=""
cleanup() {
  local rc=$?
  set +e
  if [ -n "$PG_DATA" ] && [ -f "$PG_DATA/postmaster.pid" ]; then
    log "stopping throwaway PostgreSQL"
    as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -m immediate -w stop >/dev/null 2>&1
  fi
  if [ -n "$REDIS_PORT" ]; then
    log "stopping throwaway Redis"
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1
  fi
  if [ -n "$CLUSTER_DIR" ]; then
    log "stopping throwaway Redis Cluster"
    "$(dirname "$0")/redis-cluster.sh" stop "$CLUSTER_DIR"
  fi
  [ -n "$WORK" ] && rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

need_packages=()

find_pg_bin() {
  local best="" v
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/postgres" ] || continue
    v=$(basename "$(dirname "$d")")
    if [ "${v%%.*}" -ge 15 ] 2>/dev/null; then
      if [ -z "$best" ] || [ "${v%%.*}" -gt "$(basename "$(dirname "$best")")" ]; then best="$d"; fi
    fi
  done
  echo "$best"
}

install_or_explain() {
  [ ${#need_packages[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    log "installing ${need_packages[*]} with apt"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_packages[@]}" >/dev/null
  else
    echo "PostgreSQL 15+ and Redis are needed. Install them with:" >&2
    echo "  sudo apt-get install -y ${need_packages[*]}" >&2
    echo "or set DATABASE_URL and REDIS_URL to servers you run." >&2
    exit 1
  fi
}

if [ -z "${DATABASE_URL:-}" ]; then
  [ -n "$(find_pg_bin)" ] || need_packages+=(postgresql)
fi
want_cluster=0
[ "${GENESIS_REDIS_CLUSTER:-0}" = 1 ] && [ -z "${REDIS_CLUSTER_URL:-}" ] && want_cluster=1
if [ -z "${REDIS_URL:-}" ] || [ "$want_cluster" = 1 ]; then
  command -v redis-server >/dev/null || need_packages+=(redis-server)
fi
# psql is used by the demo and the sqlx cache scripts even against a server of the user's.
command -v psql >/dev/null || [ -n "$(find_pg_bin)" ] || need_packages+=(postgresql-client)
install_or_explain

free_port() {
  local p
  for p in $(seq "$1" $(($1 + 200))); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return 0; fi
  done
  echo "no free port near $1" >&2
  return 1
}

# PostgreSQL refuses to run as root: run it as the `postgres` system user in that case.
as_pg() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

if [ -z "${DATABASE_URL:-}" ] || [ -z "${REDIS_URL:-}" ] || [ "$want_cluster" = 1 ]; then
  WORK=$(mktemp -d "${TMPDIR:-/tmp}/genesis-services.XXXXXX")
  chmod 755 "$WORK"
fi

if [ -z "${DATABASE_URL:-}" ]; then
  PG_BIN=$(find_pg_bin)
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --home-dir /var/lib/postgresql --shell /usr/sbin/nologin postgres
  fi
  PG_DATA="$WORK/pg"
  mkdir -p "$PG_DATA"
  [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DATA"
  PG_PORT=$(free_port 25432)
  # Tests trade durability for speed; benchmarks set GENESIS_PG_DURABLE=1 to measure a real
  # server's commit path.
  durable=off
  [ "${GENESIS_PG_DURABLE:-0}" = "1" ] && durable=on
  as_pg "$PG_BIN/initdb" -D "$PG_DATA" -U postgres --auth=trust -E UTF8 --no-locale >/dev/null
  # Spec 40.2 settings that matter for correctness are set as required; memory sizes are
  # scaled down for a laptop-sized throwaway cluster (`genesis db check` reports them).
  cat >>"$PG_DATA/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = '$PG_DATA'
max_connections = 300
max_locks_per_transaction = 256
max_pred_locks_per_transaction = 128
enable_partition_pruning = on
shared_buffers = 256MB
work_mem = 16MB
maintenance_work_mem = 256MB
fsync = $durable
synchronous_commit = $durable
full_page_writes = $durable
logging_collector = off
CONF
  as_pg "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 start >/dev/null
  export DATABASE_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres"
  log "throwaway PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PG_PORT"
fi

if [ -z "${REDIS_URL:-}" ]; then
  REDIS_PORT=$(free_port 26379)
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$WORK" --save "" --appendonly no \
    --daemonize yes --pidfile "$WORK/redis.pid" --logfile "$WORK/redis.log" >/dev/null
  for _ in $(seq 1 50); do
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
    sleep 0.1
  done
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT"
  log "throwaway Redis on 127.0.0.1:$REDIS_PORT"
fi

if [ "$want_cluster" = 1 ]; then
  CLUSTER_DIR="$WORK/redis-cluster"
  REDIS_CLUSTER_URL=$("$(dirname "$0")/redis-cluster.sh" start "$CLUSTER_DIR")
  export REDIS_CLUSTER_URL
  log "throwaway Redis Cluster (3 shards, 1 replica each) at ${REDIS_CLUSTER_URL#redis+cluster://}"
fi

# Not `exec`: the trap above must run after the command to stop what we started.
"$@"
