#!/bin/sh
# synapse-spoa container entrypoint.
#
# The agent's config file has no environment substitution, but the stack keeps its secrets in
# compose/.env. So this fills ${SPOA_HASH_KEY} (and nothing else) into the mounted config and
# writes the result to a tmpfs, then runs the agent on it:
#   no arguments          synapse-spoa run --config $SPOA_CONFIG_OUT
#   any arguments         synapse-spoa "$@"  (e.g. `route --config /run/synapse-spoa/synapse-spoa.yaml GET /...`)
# SPOA_HASH_KEY must be non-empty and [A-Za-z0-9] only (e.g. `openssl rand -hex 32`), so it can
# never change the YAML around it. Paths are overridable for tests/compose/check_stack.py.
set -eu

template=${SPOA_CONFIG_TEMPLATE:-/etc/synapse-spoa/synapse-spoa.yaml}
out=${SPOA_CONFIG_OUT:-/run/synapse-spoa/synapse-spoa.yaml}

case "${SPOA_HASH_KEY:-}" in
  "")
    echo "synapse-spoa-entrypoint: SPOA_HASH_KEY is empty; set it in compose/.env" >&2
    exit 2 ;;
  *[!A-Za-z0-9]*)
    echo "synapse-spoa-entrypoint: SPOA_HASH_KEY may hold only A-Z a-z 0-9 (try openssl rand -hex 32)" >&2
    exit 2 ;;
esac

umask 077
# The single-quoted argument is envsubst's list of variables to replace, not an expansion.
# shellcheck disable=SC2016
envsubst '${SPOA_HASH_KEY}' <"$template" >"$out.tmp"
mv "$out.tmp" "$out"

if [ "$#" -eq 0 ]; then
  exec synapse-spoa run --config "$out"
fi
exec synapse-spoa "$@"
