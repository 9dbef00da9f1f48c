#!/bin/sh
# bench_loadgen_smoke: spoa-loadgen against the real agent for 2 seconds. A correctness smoke,
# not a timing test: it passes when messages were ACKed with no protocol error (spoa-loadgen's
# exit status), whatever the rate.
#
#   loadgen_smoke.sh SYNAPSE_SPOA SPOA_LOADGEN
set -eu
agent_bin=$1
loadgen_bin=$2
dir=$(mktemp -d "${TMPDIR:-/tmp}/spoa-smoke.XXXXXX")
agent_pid=
cleanup() {
  if [ -n "$agent_pid" ]; then kill "$agent_pid" 2>/dev/null || true; wait "$agent_pid" 2>/dev/null || true; fi
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

# The embedded default's pools and workers, without metrics URLs: nothing is scraped, every
# worker counts as healthy at nominal capacity, so placement runs its full path.
cat > "$dir/agent.yaml" <<'YAML'
listen: 127.0.0.1:0
metrics_listen: 127.0.0.1:0
log_level: warn
pools:
  main:              {backend: synapse_main,              balance: least_loaded}
  client_sync:       {backend: synapse_client_sync,       balance: affinity, key: user}
  room:              {backend: synapse_room,              balance: affinity, key: room}
  federation_reader: {backend: synapse_federation_reader, balance: affinity, key: origin}
  media:             {backend: synapse_media,             balance: least_loaded}
workers:
  - {name: main,               pool: main}
  - {name: client_sync1,       pool: client_sync}
  - {name: room1,              pool: room}
  - {name: room2,              pool: room}
  - {name: room3,              pool: room}
  - {name: room4,              pool: room}
  - {name: federation_reader1, pool: federation_reader}
  - {name: media1,             pool: media}
YAML

"$agent_bin" run --config "$dir/agent.yaml" --ready-file "$dir/ready" > "$dir/agent.log" 2>&1 &
agent_pid=$!
i=0
while [ ! -s "$dir/ready" ]; do
  i=$((i + 1))
  if [ $i -gt 200 ] || ! kill -0 "$agent_pid" 2>/dev/null; then
    echo "agent did not become ready"; cat "$dir/agent.log"; exit 1
  fi
  sleep 0.05
done
port=$(awk '$1 == "spop" { print $2 }' "$dir/ready")
"$loadgen_bin" --agent "127.0.0.1:$port" --agent-pid "$agent_pid" --connections 4 \
  --pipeline 20 --duration 2 --warmup 0.2
