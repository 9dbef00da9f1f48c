"""A stalled worker (issue 18), fast and simulated: real HAProxy, the real agent with its default
load options, simulated workers. Steady traffic over 20 rooms plus a stream of new rooms; the
room worker holding the most rooms is frozen for 8 s (its HTTP and metrics listeners accept and
never answer, as a SIGSTOPped process does), then thawed.

Asserted, by the time each request was SENT relative to the freeze (t = 0):
- no new room is answered by the frozen worker when its first request was sent at t >= 2 s
  (the agent has called it stalled: no new keys);
- every request for the frozen worker's rooms sent at t >= 5 s, while it is still frozen, is
  answered (200) by another worker, promptly;
- over the whole cycle no room is answered by more than 2 workers: its home and one
  deterministic alternate (the agent's second choice, which HAProxy's server2 rule also uses);
- after the thaw the frozen worker's rooms return to it, gradually (placement.return_after 3 s,
  placement.return_per_second 2 here), and all of them are home by the end.
A timeline (agent state, HAProxy check state, rooms elsewhere/home) is printed."""

import collections
import concurrent.futures
import http.client
import threading
import time
import unittest

from harness import Stack, agent_metrics, wait_for, worker_state

ROOM_WORKERS = ["room1", "room2", "room3", "room4"]
ROOMS = [f"!steady{i}:example.org" for i in range(20)]
FREEZE_S = 8.0
RETURN_AFTER_S = 3.0
AGENT_EXTRA = f"""placement:
  hash_key: stall-test
  return_after: {int(RETURN_AFTER_S * 1000)}ms
  return_per_second: 2
"""


def room_path(room):
    return f"/_matrix/client/v3/rooms/{room}/messages"


class Recorder:
    """Requests through HAProxy from a thread pool, each recorded with its send and answer times
    on the test's monotonic clock. Never blocks the caller: a request stuck in a frozen worker
    holds only its own pool thread."""

    def __init__(self, stack, t0):
        self.stack, self.t0 = stack, t0
        self.lock = threading.Lock()
        self.results = []  # (kind, room, sent, done, status, worker)
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=256)

    def now(self):
        return time.monotonic() - self.t0

    def one(self, kind, room):
        sent = self.now()
        status, worker = None, None
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=30)
            conn.request("GET", room_path(room))
            resp = conn.getresponse()
            resp.read()
            status, worker = resp.status, resp.getheader("X-Synapse-Worker")
            conn.close()
        except OSError as e:
            status = type(e).__name__
        with self.lock:
            self.results.append((kind, room, sent, self.now(), status, worker))

    def submit(self, kind, room):
        self.pool.submit(self.one, kind, room)

    def close(self):
        self.pool.shutdown(wait=True)


class StalledWorker(unittest.TestCase):
    def run(self, result=None):
        outcome = super().run(result)
        if result is not None and not result.wasSuccessful() and getattr(self, "stack", None):
            try:
                self.stack.dump_logs()
            except Exception:
                pass
        return outcome

    def test_freeze_a_room_worker_for_8s(self):
        stack = Stack(agent_extra=AGENT_EXTRA)
        stack.start()
        self.addCleanup(stack.close)
        self.stack = stack
        wait_for(stack.agent_up, what="agent UP in HAProxy")
        wait_for(lambda: all(worker_state(stack, w) == "healthy" for w in ROOM_WORKERS),
                 timeout=30, what="room workers healthy in the agent's view")

        home = {}
        for room in ROOMS:
            status, worker = stack.request("GET", room_path(room))
            self.assertEqual(status, 200)
            home[room] = worker
        counts = collections.Counter(home.values())
        frozen = counts.most_common(1)[0][0]
        frozen_rooms = [r for r in ROOMS if home[r] == frozen]
        self.assertGreaterEqual(len(frozen_rooms), 3, f"rooms per worker: {dict(counts)}")

        t0 = time.monotonic() + 3.0  # the freeze, after 3 s of steady traffic
        rec = Recorder(stack, t0)
        self.addCleanup(rec.close)
        timeline = []  # (t, agent state, haproxy status)
        stop = threading.Event()

        def observe():
            while not stop.is_set():
                t = rec.now()
                try:
                    a = worker_state(stack, frozen)
                except OSError:
                    a = "?"
                try:
                    h = stack.server_status("synapse_room", frozen)
                except OSError:
                    h = "?"
                timeline.append((t, a, h))
                time.sleep(0.1)

        def drive(until):
            # Each steady room every 300 ms; a new room every 250 ms.
            new_i = 0
            next_steady, next_new = rec.now(), rec.now()
            while rec.now() < until:
                t = rec.now()
                if t >= next_steady:
                    for room in ROOMS:
                        rec.submit("steady", room)
                    next_steady += 0.3
                if t >= next_new:
                    rec.submit("new", f"!new{new_i}:example.org")
                    new_i += 1
                    next_new += 0.25
                time.sleep(0.01)

        observer = threading.Thread(target=observe, daemon=True)
        observer.start()
        drive_until = FREEZE_S + RETURN_AFTER_S + 9.0
        driver = threading.Thread(target=drive, args=(drive_until,), daemon=True)
        driver.start()
        wait_for(lambda: rec.now() >= 0, timeout=10, what="the freeze moment")
        self.assertEqual(stack.control(frozen, "frozen"), 200)
        wait_for(lambda: rec.now() >= FREEZE_S, timeout=20, what="the thaw moment")
        self.assertEqual(stack.control(frozen, "normal"), 200)
        thawed_at = rec.now()
        driver.join(timeout=60)
        rec.close()
        stop.set()
        observer.join(timeout=5)

        results = list(rec.results)
        self.print_timeline(frozen, frozen_rooms, home, timeline, results, thawed_at)

        # No new room on the frozen worker once it has been frozen for 2 s.
        late_new = [r for r in results
                    if r[0] == "new" and r[2] >= 2.0 and r[2] < thawed_at and r[5] == frozen]
        self.assertEqual(late_new, [], "new rooms placed on the frozen worker after 2 s")

        # Its rooms are served elsewhere within 5 s (requests sent 5 s after the freeze on).
        window = [r for r in results if r[0] == "steady" and r[1] in frozen_rooms
                  and 5.0 <= r[2] < thawed_at - 0.5]
        self.assertGreater(len(window), 0)
        bad = [r for r in window if r[4] != 200 or r[5] == frozen or r[3] - r[2] > 2.0]
        self.assertEqual(bad, [], "requests for the frozen worker's rooms after 5 s")

        # Every room whole: at most its home and one alternate over the whole cycle.
        served = collections.defaultdict(set)
        for kind, room, _sent, _done, status, worker in results:
            if status == 200 and worker:
                served[room].add(worker)
        split = {room: sorted(ws) for room, ws in served.items() if len(ws) > 2}
        self.assertEqual(split, {}, "rooms split across more than 2 workers")
        for room in ROOMS:
            self.assertIn(home[room], served[room] | {home[room]})

        # After the thaw: back home, gradually, and all of them by the end.
        back = self.return_times(results, frozen_rooms, frozen, thawed_at)
        self.assertEqual(sorted(back), sorted(frozen_rooms), f"returned: {back}")
        times = sorted(back.values())
        self.assertGreaterEqual(times[0], thawed_at + RETURN_AFTER_S - 0.5,
                                "rooms returned before return_after")
        # 2 per second with a burst of 2: the last of n rooms no earlier than (n - 2) / 2 s later.
        self.assertGreaterEqual(times[-1] - times[0], (len(times) - 2) / 2.0 - 0.3)
        errors = collections.Counter(r[4] for r in results if r[4] != 200)
        print(f"non-200 answers over the cycle: {dict(errors)}")

    @staticmethod
    def return_times(results, rooms, frozen, thawed_at):
        """Per room, the send time after which every request was answered by `frozen` again."""
        out = {}
        for room in rooms:
            rs = sorted((r for r in results if r[1] == room and r[0] == "steady"
                         and r[2] > thawed_at + 0.5 and r[4] == 200), key=lambda r: r[2])
            last_away = max((r[2] for r in rs if r[5] != frozen), default=None)
            home_after = [r[2] for r in rs if r[5] == frozen and
                          (last_away is None or r[2] > last_away)]
            if home_after:
                out[room] = home_after[0]
        return out

    def print_timeline(self, frozen, frozen_rooms, home, timeline, results, thawed_at):
        print(f"\n=== stall timeline: {frozen} frozen at t=0.00 s for {thawed_at:.2f} s; its rooms: "
              f"{len(frozen_rooms)} of {len(ROOMS)} ===")
        last = None
        for t, a, h in timeline:
            if (a, h) != last:
                print(f"  t={t:6.2f}  agent: {a:<8} HAProxy: {h}")
                last = (a, h)
        # Per 1 s bucket (by send time): requests for its rooms answered elsewhere / by it / not.
        buckets = collections.defaultdict(collections.Counter)
        for kind, room, sent, done, status, worker in results:
            b = int(sent // 1) if sent >= 0 else -1
            if kind == "steady" and room in frozen_rooms:
                if status != 200:
                    buckets[b]["failed"] += 1
                elif worker == frozen:
                    buckets[b]["home"] += 1 if done - sent < 1 else 0
                    buckets[b]["home_late"] += 1 if done - sent >= 1 else 0
                else:
                    buckets[b]["elsewhere"] += 1
            elif kind == "new":
                buckets[b]["new_on_frozen" if worker == frozen else "new_elsewhere"] += 1
        print("  sent  its rooms: home  home-late  elsewhere  failed | new rooms: on it  elsewhere")
        for b in sorted(buckets):
            c = buckets[b]
            print(f"  {b:+4d}s            {c['home']:4d}  {c['home_late']:9d}  {c['elsewhere']:9d}"
                  f"  {c['failed']:6d} |            {c['new_on_frozen']:5d}  {c['new_elsewhere']:9d}")
        back = self.return_times(results, frozen_rooms, frozen, thawed_at)
        for room in frozen_rooms:
            t = back.get(room)
            print(f"  {room}: home again from t={t:.2f} s" if t is not None
                  else f"  {room}: not home by the end")
        served = collections.defaultdict(set)
        for kind, room, _s, _d, status, worker in results:
            if status == 200 and worker:
                served[room].add(worker)
        print(f"  rooms on more than 2 workers: {sum(1 for w in served.values() if len(w) > 2)}; "
              f"on 2: {sum(1 for w in served.values() if len(w) == 2)}; "
              f"rooms: {len(served)}")


if __name__ == "__main__":
    unittest.main()
