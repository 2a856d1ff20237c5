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

# Each node needs its port and its cluster bus port (port + 10000) free. Start from a
# random base so that tests starting clusters side by side rarely meet.
port=$((20000 + RANDOM % 9000))
ports=()
while [ ${#ports[@]} -lt "$nodes" ]; do
  port=$((port + 1))
  [ "$port" -lt 29990 ] || port=20001
  if port_free "$port" && port_free $((port + 10000)); then
    ports+=("$port")
  fi
done

for p in "${ports[@]}"; do
  mkdir -p "$dir/$p"
  echo "$p" >>"$dir/ports"
  redis-server --port "$p" --bind 127.0.0.1 --dir "$dir/$p" \
    --cluster-enabled yes --cluster-config-file "$dir/$p/nodes.conf" \
    --cluster-node-timeout 1000 --cluster-require-full-coverage no \
    --appendonly yes --appendfsync everysec --save "" \
    --daemonize yes --pidfile "$dir/$p/redis.pid" --logfile "$dir/$p/redis.log" >/dev/null
done
for p in "${ports[@]}"; do
  for _ in $(seq 1 100); do
    redis-cli -p "$p" ping >/dev/null 2>&1 && break
    sleep 0.05
  done
done

addrs=()
for p in "${ports[@]}"; do addrs+=("127.0.0.1:$p"); done
if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas "$replicas" --cluster-yes \
  >"$dir/create.log" 2>&1; then
  cat "$dir/create.log" >&2
  stop
  exit 1
fi

# Ready when every node agrees every slot is served and sees every node.
for _ in $(seq 1 200); do
  ready=1
  for p in "${ports[@]}"; do
    info=$(redis-cli -p "$p" cluster info 2>/dev/null || true)
    case "$info" in
    *"cluster_state:ok"*"cluster_slots_ok:16384"*"cluster_known_nodes:$nodes"*) ;;
    *) ready=0 ;;
    esac
  done
  [ "$ready" = 1 ] && break
  sleep 0.1
done
if [ "$ready" != 1 ]; then
  echo "the cluster in $dir did not become ready" >&2
  stop
  exit 1
fi
# Replicas must have synced before a test may kill their primary.
for _ in $(seq 1 200); do
  synced=1
  for p in "${ports[@]}"; do
    role=$(redis-cli -p "$p" info replication 2>/dev/null || true)
    case "$role" in
    *"role:slave"*) case "$role" in *"master_link_status:up"*) ;; *) synced=0 ;; esac ;;
    esac
  done
  [ "$synced" = 1 ] && break
  sleep 0.1
done

seeds=$(printf '127.0.0.1:%s,' "${ports[@]:0:$shards}")
echo "redis+cluster://${seeds%,}"
