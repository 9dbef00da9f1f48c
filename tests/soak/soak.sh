#!/usr/bin/env bash
# The soak run (issue 9): steady load through real HAProxy with room churn, agent RSS and open
# descriptors sampled every 10 s, a table and a verdict. Not part of the default ctest run.
#
#   tests/soak/soak.sh [MINUTES] [--rate N] [--threads N] [--warmup SECONDS]   (default 10 min)
#
# Uses an existing build (SPOA_BUILD_DIR, default build/): synapse-spoa and spoa-sim-workers.
set -euo pipefail
top=$(cd "$(dirname "$0")/../.." && pwd)
build="${SPOA_BUILD_DIR:-$top/build}"
for bin in "$build/src/synapse-spoa" "$build/tests/support/spoa-sim-workers"; do
  if [ ! -x "$bin" ]; then
    echo "soak: $bin missing; build first: cmake --build $build --target synapse-spoa spoa-sim-workers" >&2
    exit 2
  fi
done
export SPOA_BUILD_DIR="$build" SPOA_SOURCE_DIR="$top" PYTHONDONTWRITEBYTECODE=1
export SPOA_HAPROXY="${SPOA_HAPROXY:-$(command -v haproxy || echo /usr/sbin/haproxy)}"
exec python3 "$top/tests/soak/soak.py" "$@"
