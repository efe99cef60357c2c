#!/usr/bin/env bash
# Starts a three-node Skiff cluster on this machine, on loopback only: three etcd members and three
# Skiff nodes, each with its own data directory under DIR (default /tmp/skiff-cluster).
#   bash examples/cluster/start.sh [DIR]      # start; prints how to use the cluster
#   bash examples/cluster/start.sh --stop [DIR]
# Needs `etcd` (Debian: apt-get install etcd-server) and a built Skiff (`npm run build`).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
skiff="$root/bin/skiff.js"

stop=0
if [ "${1:-}" = "--stop" ]; then stop=1; shift; fi
dir=$(realpath -m "${1:-/tmp/skiff-cluster}")

stop_all() {
  for f in "$dir"/*.pid; do
    [ -e "$f" ] || continue
    kill "$(cat "$f")" 2>/dev/null || true
    rm -f "$f"
  done
}
if [ "$stop" = 1 ]; then stop_all; echo "stopped the cluster in $dir"; exit 0; fi

command -v etcd >/dev/null || { echo "etcd is not installed: apt-get install etcd-server" >&2; exit 1; }
[ -e "$root/dist/cli/main.js" ] || { echo "Skiff is not built: run npm run build in $root" >&2; exit 1; }
if ls "$dir"/*.pid >/dev/null 2>&1; then echo "a cluster already runs from $dir: bash $0 --stop $dir" >&2; exit 1; fi
mkdir -p "$dir"

# Three etcd members: clients on 2379, 22379, 32379; peers on the port above each.
initial="e1=http://127.0.0.1:2380,e2=http://127.0.0.1:22380,e3=http://127.0.0.1:32380"
for i in 1 2 3; do
  client=$([ $i = 1 ] && echo 2379 || echo ${i}2379)
  peer=$((client + 1))
  etcd --name "e$i" --data-dir "$dir/etcd$i" \
    --listen-client-urls "http://127.0.0.1:$client" --advertise-client-urls "http://127.0.0.1:$client" \
    --listen-peer-urls "http://127.0.0.1:$peer" --initial-advertise-peer-urls "http://127.0.0.1:$peer" \
    --initial-cluster "$initial" --initial-cluster-state new --log-level warn >"$dir/etcd$i.log" 2>&1 &
  echo $! >"$dir/etcd$i.pid"
done
store="etcd://127.0.0.1:2379,127.0.0.1:22379,127.0.0.1:32379/skiff"
for _ in $(seq 1 100); do
  curl -fsS http://127.0.0.1:2379/health 2>/dev/null | grep -q '"health":"true"' && break
  sleep 0.2
done

# wait_ready FILE: waits (bounded) until a node prints its ready line.
wait_ready() {
  for _ in $(seq 1 300); do
    grep -q '^skiff ready' "$1" 2>/dev/null && return 0
    sleep 0.2
  done
  echo "a node did not start; see $1" >&2
  stop_all
  exit 1
}

# Node 1 initialises the cluster: its CA, the API token and the join token (DATA_DIR/node-token).
node "$skiff" up --store "$store" --cluster-init --node-name node-1 --data-dir "$dir/node-1" \
  --api 127.0.0.1:7070 --gateway 127.0.0.1:8080 --mesh 127.0.0.1:7443 --demo >"$dir/node-1.log" 2>&1 &
echo $! >"$dir/node-1.pid"
wait_ready "$dir/node-1.log"

# Nodes 2 and 3 join with that token; it lets them check the cluster's CA and get their certificates.
for i in 2 3; do
  node "$skiff" up --store "$store" --join https://127.0.0.1:7070 --token "$(cat "$dir/node-1/node-token")" \
    --node-name "node-$i" --data-dir "$dir/node-$i" \
    --api "127.0.0.1:707$i" --gateway "127.0.0.1:808$i" --mesh "127.0.0.1:744$((i + 2))" >"$dir/node-$i.log" 2>&1 &
  echo $! >"$dir/node-$i.pid"
done
wait_ready "$dir/node-2.log"
wait_ready "$dir/node-3.log"

cat <<NEXT
a three-node cluster runs from $dir:
  API      https://127.0.0.1:7070  :7072  :7073   (one token for all: $dir/node-1/token)
  gateway  http://127.0.0.1:8080   :8082  :8083
export SKIFF_DATA_DIR=$dir/node-1
  skiff get nodes                  # node-1, node-2, node-3 Ready
  skiff get leases -A              # skiff-system/skiff-leader names the leader
  curl http://127.0.0.1:8083/hello # the demo, through node 3's gateway
stop it with: bash $0 --stop $dir
NEXT
