"""Soak: a steady request rate through real HAProxy and the agent, with room churn, for MINUTES
(default 10). Reuses the integration harness (simulated workers + synapse-spoa + HAProxy on free
loopback ports; everything stopped by PID at the end).

Churn: every second CHURN new rooms join the active set and rooms older than ACTIVE seconds leave
it (they idle out of the agent's table after placement.affinity_ttl). The table is capped by
placement.max_keys below the number of rooms alive at once (active + idling), so both the LRU cap
and the TTL work throughout.

Every 10 s: agent RSS and open descriptors (from /proc), requests and errors in the interval,
remembered keys and evictions (the agent's /metrics). At the end: the table and a verdict:
  - zero errors (non-200 answers, connection failures);
  - RSS flat after warm-up: max RSS after warm-up <= RSS at the end of warm-up x 1.10 + 4 MiB;
  - descriptors flat after warm-up: max - min after warm-up <= 8;
  - the affinity table never above max_keys, and both LRU and TTL evictions happened.
Exit status 0 when every check passes, 1 otherwise."""

import argparse
import collections
import http.client
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from harness import Stack, agent_metrics, wait_for  # noqa: E402

MAX_KEYS = 300
TTL_S = 10
CHURN = 10      # new rooms per second
ACTIVE = 25     # seconds a room stays in the active set: ~250 active, ~100 idling toward TTL
SAMPLE_S = 10

AGENT_EXTRA = f"""placement:
  hash_key: soak-test
  max_keys: {MAX_KEYS}
  affinity_ttl: {TTL_S}s
load:
  scrape_interval: 1s
  scrape_timeout: 500ms
"""

OTHER_PATHS = ["/_matrix/client/versions", "/_matrix/client/v3/sync?since=s1",
               "/_matrix/media/v3/download/example.org/abc", "/_matrix/client/v3/keys/query"]


class Rooms:
    """The active set: room i joins at second i // CHURN and leaves ACTIVE seconds later."""

    def __init__(self, start):
        self.start = start

    def active(self, now):
        t = now - self.start
        newest = int(t * CHURN)
        oldest = max(0, newest - ACTIVE * CHURN)
        return oldest, newest

    @staticmethod
    def name(i):
        return f"!soak{i}:example.org"


class Load:
    def __init__(self, stack, rate, threads):
        self.stack, self.rate, self.nthreads = stack, rate, threads
        self.rooms = Rooms(time.monotonic())
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.errors = collections.Counter()
        self.late = 0            # requests that started behind schedule (client saturated)
        self.moves = 0           # an active room answered by another worker than before
        self.last_worker = {}
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]

    def run(self, idx):
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=10)
        interval = self.nthreads / self.rate
        next_t = time.monotonic() + idx * interval / self.nthreads
        n = idx
        while not self.stop_flag.is_set():
            now = time.monotonic()
            if next_t > now:
                time.sleep(next_t - now)
            elif now - next_t > 0.5:
                with self.lock:
                    self.late += 1
            next_t += interval
            n += 1
            room = None
            if n % 5 == 0:
                path = OTHER_PATHS[(n // 5) % len(OTHER_PATHS)]
            else:
                lo, hi = self.rooms.active(time.monotonic())
                room = lo + (n * 7919) % max(1, hi - lo + 1)
                path = f"/_matrix/client/v3/rooms/{Rooms.name(room)}/messages"
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                worker = resp.getheader("X-Synapse-Worker")
                with self.lock:
                    if resp.status == 200:
                        self.ok += 1
                    else:
                        self.errors[resp.status] += 1
                    if room is not None and resp.status == 200:
                        prev = self.last_worker.get(room)
                        if prev is not None and prev != worker:
                            self.moves += 1
                        self.last_worker[room] = worker
                        # Forget rooms that left the active set (bounded memory here too).
                        for old in [r for r in self.last_worker if r < lo - CHURN * 5][:100]:
                            del self.last_worker[old]
            except OSError as e:
                with self.lock:
                    self.errors[type(e).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=10)
        conn.close()

    def snapshot(self):
        with self.lock:
            return self.ok, sum(self.errors.values()), self.moves, self.late

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=15)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def open_fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def metric(m, name, **labels):
    return m.get((name, frozenset(labels.items())), 0.0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("minutes", nargs="?", type=float, default=10.0)
    ap.add_argument("--rate", type=float, default=200.0, help="requests per second (default 200)")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--warmup", type=float, default=None,
                    help="seconds of warm-up excluded from the flatness checks "
                         "(default: 20%% of the run, at least 60 s, at most 120 s)")
    args = ap.parse_args()
    duration = args.minutes * 60
    warmup = args.warmup if args.warmup is not None else min(120.0, max(60.0, duration * 0.2))

    stack = Stack(agent_extra=AGENT_EXTRA).start()
    rows = []
    try:
        wait_for(stack.agent_up, what="agent UP in HAProxy")
        pid = stack.agent.pid
        print(f"soak: {args.minutes:g} min at {args.rate:g} req/s, {CHURN} new rooms/s, "
              f"max_keys {MAX_KEYS}, affinity_ttl {TTL_S}s, warm-up {warmup:g} s; agent pid {pid}",
              flush=True)
        header = (f"{'t(s)':>6} {'rss(KiB)':>9} {'fds':>5} {'req/s':>7} {'errors':>6} "
                  f"{'keys':>5} {'lru_ev':>7} {'ttl_ev':>7} {'moves':>6} {'late':>5}")
        print(header, flush=True)
        start = time.monotonic()
        with Load(stack, args.rate, args.threads) as load:
            prev_ok, t_prev = 0, start
            while True:
                elapsed = time.monotonic() - start
                target = (len(rows) + 1) * SAMPLE_S
                if target > duration + 1e-6:
                    break
                time.sleep(max(0.0, start + target - time.monotonic()))
                ok, errors, moves, late = load.snapshot()
                now = time.monotonic()
                m = agent_metrics(stack)
                row = {
                    "t": round(now - start),
                    "rss": rss_kib(pid),
                    "fds": open_fds(pid),
                    "rps": (ok - prev_ok) / (now - t_prev),
                    "errors": errors,
                    "keys": int(metric(m, "synapse_spoa_affinity_entries")),
                    "lru": int(metric(m, "synapse_spoa_affinity_evictions_total", reason="lru")),
                    "ttl": int(metric(m, "synapse_spoa_affinity_evictions_total", reason="ttl")),
                    "moves": moves,
                    "late": late,
                }
                prev_ok, t_prev = ok, now
                rows.append(row)
                print(f"{row['t']:>6} {row['rss']:>9} {row['fds']:>5} {row['rps']:>7.1f} "
                      f"{row['errors']:>6} {row['keys']:>5} {row['lru']:>7} {row['ttl']:>7} "
                      f"{row['moves']:>6} {row['late']:>5}", flush=True)
                if not stack.agent.alive():
                    print("soak: the agent died", flush=True)
                    break
            total_ok, total_err, _, _ = load.snapshot()
            error_kinds = dict(load.errors)
    finally:
        stack.close()

    checks = []
    checks.append(("zero errors", total_err == 0,
                   f"{total_ok} answered, {total_err} errors {error_kinds or ''}".strip()))
    after = [r for r in rows if r["t"] > warmup]
    base = [r for r in rows if r["t"] <= warmup]
    if after and base:
        rss0 = base[-1]["rss"]
        rss_max = max(r["rss"] for r in after)
        limit = rss0 * 1.10 + 4096
        checks.append(("RSS flat after warm-up", rss_max <= limit,
                       f"{rss0} KiB at {base[-1]['t']} s, max {rss_max} KiB after "
                       f"(limit {limit:.0f})"))
        fd_min, fd_max = min(r["fds"] for r in after), max(r["fds"] for r in after)
        checks.append(("fds flat after warm-up", fd_max - fd_min <= 8,
                       f"{fd_min}..{fd_max} after warm-up"))
    else:
        checks.append(("RSS/fds flat after warm-up", False, "run shorter than the warm-up"))
    keys_max = max((r["keys"] for r in rows), default=0)
    checks.append(("affinity table within max_keys", keys_max <= MAX_KEYS,
                   f"max {keys_max} <= {MAX_KEYS}"))
    last = rows[-1] if rows else {"lru": 0, "ttl": 0}
    checks.append(("LRU cap and TTL both evicting", last["lru"] > 0 and last["ttl"] > 0,
                   f"lru {last['lru']}, ttl {last['ttl']}"))
    print("\nverdict:")
    for name, ok, detail in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {detail}")
    passed = all(ok for _, ok, _ in checks)
    print("soak:", "PASS" if passed else "FAIL", flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
