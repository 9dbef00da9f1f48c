#!/usr/bin/env bash
# Smoke test of spoa-sim-workers over loopback: two workers on port 0, a request (worker header,
# JSON body), a scrape (Content-Type, promtool), in-flight visible while a slow request runs, the
# hung / garbage / huge modes, down (connection refused) then normal (same port answers again),
# and SIGTERM -> exit 0. Usage: smoke.sh PATH/TO/spoa-sim-workers
set -euo pipefail

BIN=${1:?usage: smoke.sh PATH/TO/spoa-sim-workers}
for tool in curl promtool; do
  command -v "$tool" >/dev/null || { echo "smoke: $tool is not installed" >&2; exit 1; }
done

TMP=$(mktemp -d)
PID=""
BG=""
cleanup() {
  if [[ -n $BG ]]; then kill "$BG" 2>/dev/null || true; fi
  if [[ -n $PID ]] && kill -0 "$PID" 2>/dev/null; then kill -KILL "$PID" 2>/dev/null || true; fi
  rm -rf "$TMP"
}
trap cleanup EXIT

fail() {
  echo "smoke: FAIL: $*" >&2
  if [[ -f $TMP/stderr ]]; then sed 's/^/  sim stderr: /' "$TMP/stderr" >&2; fi
  exit 1
}
pass() { echo "smoke: ok: $*"; }

"$BIN" --server-name example.org --cpu-per-request 0.002 \
  --worker room1=127.0.0.1:0 --worker room2=127.0.0.1:0,metrics=127.0.0.1:0 \
  --ready-file "$TMP/ready" >"$TMP/stdout" 2>"$TMP/stderr" &
PID=$!

# The ready file appears (atomically) once every listener is bound; bounded wait of 10 s.
for _ in $(seq 200); do
  [[ -f $TMP/ready ]] && break
  kill -0 "$PID" 2>/dev/null || fail "spoa-sim-workers exited before it was ready"
  sleep 0.05
done
[[ -f $TMP/ready ]] || fail "no ready file after 10 s"
field() { awk -v n="$1" -v f="$2" '$1 == n { print $f }' "$TMP/ready"; }
HTTP1=$(field room1 2)
METRICS1=$(field room1 3)
HTTP2=$(field room2 2)
CONTROL=$(field control 2)
[[ -n $HTTP1 && -n $METRICS1 && -n $HTTP2 && -n $CONTROL ]] || fail "bad ready file: $(cat "$TMP/ready")"
pass "ready: $(tr '\n' ' ' <"$TMP/ready")"

control() {
  local code
  code=$(curl -s -o "$TMP/control.out" -w '%{http_code}' -X POST "http://127.0.0.1:$CONTROL$1")
  [[ $code == "${2:-200}" ]] || fail "POST $1 answered $code: $(cat "$TMP/control.out")"
}

# 1. A request is answered by the worker that got it.
curl -s -D "$TMP/headers" -o "$TMP/body" \
  "http://127.0.0.1:$HTTP1/_matrix/client/v3/rooms/!r:example.org/messages?dir=b"
grep -qi '^X-Synapse-Worker: room1' "$TMP/headers" || fail "no X-Synapse-Worker: room1 header"
grep -q '"worker":"room1","method":"GET","path":"/_matrix/client/v3/rooms/!r:example.org/messages?dir=b"' \
  "$TMP/body" || fail "unexpected body: $(cat "$TMP/body")"
[[ $(curl -s "http://127.0.0.1:$HTTP2/health") == OK ]] || fail "/health is not OK"
pass "request answered by room1, /health OK"

# 2. The metrics: content type, promtool (parse errors fail; Synapse's own lint findings such as
#    empty HELP texts are expected and allowed), and the request counted.
check_promtool() {
  local rc=0
  promtool check metrics <"$1" >"$TMP/promtool.out" 2>&1 || rc=$?
  [[ $rc == 0 || $rc == 3 ]] || fail "promtool rejected the body (rc $rc): $(cat "$TMP/promtool.out")"
  if grep -v -E '^[a-zA-Z_:][a-zA-Z0-9_:]* (no help text|non-counter metrics should not have "_total" suffix|non-histogram and non-summary metrics should not have "_count" suffix)$' \
    "$TMP/promtool.out" | grep -q .; then
    fail "promtool: $(cat "$TMP/promtool.out")"
  fi
}
curl -s -D "$TMP/mheaders" -o "$TMP/metrics" "http://127.0.0.1:$METRICS1/_synapse/metrics"
grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8' "$TMP/mheaders" \
  || fail "bad metrics Content-Type: $(cat "$TMP/mheaders")"
check_promtool "$TMP/metrics"
grep -q '^synapse_http_server_requests_received_total{method="GET",server_name="example.org",servlet="RoomMessageListRestServlet"} 1.0$' \
  "$TMP/metrics" || fail "request not counted"
grep -q '^python_twisted_reactor_tick_time_bucket{le="+Inf"} ' "$TMP/metrics" || fail "no tick histogram"
grep -q '^process_cpu_seconds_total ' "$TMP/metrics" || fail "no process_cpu_seconds_total"
pass "metrics: content type, promtool, counters"

# 3. In flight: a slow request (0.002 s x 500 = 1 s) shows up in the LaterGauge and in /stats.
control "/worker/room1/mode/slow?factor=500"
curl -s -o /dev/null "http://127.0.0.1:$HTTP1/_matrix/client/v3/sync" &
BG=$!
seen=""
for _ in $(seq 100); do
  if curl -s "http://127.0.0.1:$CONTROL/stats" | grep -q '"room1":{"requests":2,"in_flight":1,'; then
    seen=1
    break
  fi
  sleep 0.01
done
[[ -n $seen ]] || fail "slow request never in flight: $(curl -s "http://127.0.0.1:$CONTROL/stats")"
curl -s -o "$TMP/metrics" "http://127.0.0.1:$METRICS1/metrics"
grep -q '^synapse_http_server_in_flight_requests_count{method="GET",server_name="example.org",servlet="SyncRestServlet"} 1.0$' \
  "$TMP/metrics" || fail "in-flight request missing from the metrics"
check_promtool "$TMP/metrics"
wait "$BG" || fail "slow request failed"
BG=""
control /worker/room1/mode/normal
pass "slow request visible in flight"

# 4. hung: the metrics request is read but never answered; HTTP still answers.
control /worker/room1/mode/hung
rc=0
curl -s -m 1 -o /dev/null "http://127.0.0.1:$METRICS1/metrics" || rc=$?
[[ $rc == 28 ]] || fail "hung metrics: curl exit $rc, expected 28 (timeout)"
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP1/x") == 200 ]] \
  || fail "HTTP should answer while metrics hang"
pass "hung"

# 5. garbage: 200 with a body promtool cannot parse. huge: a 50 MiB body.
control /worker/room1/mode/garbage
[[ $(curl -s -o "$TMP/garbage" -w '%{http_code}' "http://127.0.0.1:$METRICS1/metrics") == 200 ]] \
  || fail "garbage should still be 200"
rc=0
promtool check metrics <"$TMP/garbage" >/dev/null 2>&1 || rc=$?
[[ $rc == 1 ]] || fail "promtool accepted the garbage body (rc $rc)"
control /worker/room1/mode/huge
size=$(curl -s "http://127.0.0.1:$METRICS1/metrics" | wc -c)
[[ $size == 52428800 ]] || fail "huge body was $size bytes"
control /worker/room1/mode/normal
pass "garbage, huge"

# 6. down: connection refused on both listeners; normal: the same ports answer again.
control /worker/room1/mode/down
for port in "$HTTP1" "$METRICS1"; do
  rc=0
  curl -s -o /dev/null "http://127.0.0.1:$port/x" || rc=$?
  [[ $rc == 7 ]] || fail "down: curl to $port exited $rc, expected 7 (connection refused)"
done
[[ $(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$HTTP2/x") == 200 ]] \
  || fail "room2 should be unaffected"
control /worker/room1/mode/normal
curl -s -D "$TMP/headers" -o /dev/null "http://127.0.0.1:$HTTP1/x" || fail "room1 did not come back on $HTTP1"
grep -qi '^X-Synapse-Worker: room1' "$TMP/headers" || fail "room1 back without its header"
curl -s -o "$TMP/metrics" "http://127.0.0.1:$METRICS1/metrics" || fail "metrics did not come back"
check_promtool "$TMP/metrics"
pass "down refuses, normal re-binds the same ports"

# 7. Control errors.
control /worker/nosuch/mode/slow 404
control /worker/room1/mode/fast 400
control "/worker/room1/mode/slow?factor=-1" 400
pass "control errors"

# 8. SIGTERM -> clean exit 0.
kill -TERM "$PID"
rc=0
wait "$PID" || rc=$?
PID=""
[[ $rc == 0 ]] || fail "exit status $rc after SIGTERM"
pass "SIGTERM -> exit 0"
echo "smoke: all checks passed"
