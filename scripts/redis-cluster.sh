#!/usr/bin/env bash
# Starts or stops a throwaway Redis Cluster on 127.0.0.1 from the system's redis-server.
#
#   scripts/redis-cluster.sh start DIR [SHARDS [REPLICAS]]   # default 3 shards, 1 replica each
#   scripts/redis-cluster.sh stop DIR
#
# `start` prints the cluster's URL (redis+cluster://127.0.0.1:P1,...) on stdout once every
# slot is served, and writes the nodes' ports to DIR/ports (primaries first, as created).
# Every node runs with AOF on and `appendfsync everysec`, the production setting, and a
# 1-second node timeout so that a killed primary fails over in about two seconds.
# `cluster-require-full-coverage no`: while one shard fails over, the others keep serving.
set -euo pipefail

cmd=${1:-}
dir=${2:-}
if [ -z "$cmd" ] || [ -z "$dir" ]; then
  echo "usage: $0 start DIR [SHARDS [REPLICAS]] | stop DIR" >&2
  exit 2
fi

stop() {
  [ -f "$dir/ports" ] || return 0
  while read -r port; do
    if [ -f "$dir/$port/redis.pid" ]; then
      kill -9 "$(cat "$dir/$port/redis.pid")" 2>/dev/null || true
    fi
  done <"$dir/ports"
}

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

case "$cmd" in
stop)
  stop
  exit 0
  ;;
start) ;;
*)
  echo "unknown command $cmd" >&2
  exit 2
  ;;
esac

shards=${3:-3}
replicas=${4:-1}
nodes=$((shards * (replicas + 1)))
command -v redis-server >/dev/null || { echo "redis-server is not installed" >&2; exit 1; }
mkdir -p "$dir"
: >"$dir/ports"

# Each node needs a port and a cluster bus port, both below the kernel's ephemeral range
# (32768 and up), where an outgoing connection may hold a port at any moment: nodes listen on
# 21000-25999 and their bus on the port minus 10000. A random base keeps clusters started
# side by side apart; a node that still loses its port to a neighbour makes the attempt
# start over elsewhere.
start_nodes() {
  local port p
  port=$((21000 + RANDOM % 4900))
  ports=()
  while [ ${#ports[@]} -lt "$nodes" ]; do
    port=$((port + 1))
    [ "$port" -lt 25990 ] || port=21001
    if port_free "$port" && port_free $((port - 10000)); then
      ports+=("$port")
    fi
  done
  : >"$dir/ports"
  for p in "${ports[@]}"; do
    mkdir -p "$dir/$p"
    echo "$p" >>"$dir/ports"
    redis-server --port "$p" --cluster-port $((p - 10000)) --bind 127.0.0.1 --dir "$dir/$p" \
      --cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" \
      --cluster-node-timeout 1000 --cluster-require-full-coverage no \
      --appendonly yes --appendfsync everysec --save "" \
      --daemonize yes --pidfile "$dir/$p/redis.pid" --logfile "$dir/$p/redis.log" >/dev/null || return 1
  done
  for p in "${ports[@]}"; do
    for _ in $(seq 1 100); do
      redis-cli -p "$p" ping >/dev/null 2>&1 && continue 2
      sleep 0.05
    done
    return 1
  done
}

started=0
for _ in 1 2 3 4 5; do
  if start_nodes; then
    started=1
    break
  fi
  stop
  rm -rf "${dir:?}"/[0-9]*
done
if [ "$started" != 1 ]; then
  echo "could not start $nodes Redis nodes (see $dir/*/redis.log)" >&2
  exit 1
fi

addrs=()
for p in "${ports[@]}"; do addrs+=("127.0.0.1:$p"); done
if ! timeout 60 redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$replicas" --cluster-yes \
  >"$dir/create.log" 2>&1; then
  cat "$dir/create.log" >&2
  stop
  exit 1
fi

# Waits (up to 20 s) until `$1 PORT` holds for every node.
wait_nodes() {
  local check=$1 p ok
  for _ in $(seq 1 200); do
    ok=1
    for p in "${ports[@]}"; do
      "$check" "$p" || { ok=0; break; }
    done
    [ "$ok" = 1 ] && return 0
    sleep 0.1
  done
  return 1
}
# The node agrees every slot is served and sees every node.
serving() {
  case "$(redis-cli -p "$1" cluster info 2>/dev/null || true)" in
  *"cluster_state:ok"*"cluster_slots_ok:16384"*"cluster_known_nodes:$nodes"*) return 0 ;;
  esac
  return 1
}
# A replica's link to its primary is up (a test may kill that primary next).
synced() {
  local info
  info=$(redis-cli -p "$1" info replication 2>/dev/null || true)
  case "$info" in
  *"role:slave"*) [[ "$info" == *"master_link_status:up"* ]] ;;
  *) return 0 ;;
  esac
}
if ! wait_nodes serving || ! wait_nodes synced; then
  echo "the cluster in $dir did not become ready" >&2
  stop
  exit 1
fi

seeds=$(printf '127.0.0.1:%s,' "${ports[@]:0:$shards}")
echo "redis+cluster://${seeds%,}"
