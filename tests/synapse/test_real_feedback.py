"""Response feedback on real Synapse (issue 17): HAProxy 3.2 sends the agent every response
(SPOA_RESPONSE_SAMPLE_PERCENT=100 here; the default is 5 %, and every 5xx).

1. Misroute detection: the agent's config retargets the stream-writer rule `typing` to the room
   pool. Real Synapse answers a typing notification on a room worker with HTTP 500 ("not the
   typing writer"); the agent must name the rule and worker (log event `misroute`, gauge
   synapse_spoa_misroute_suspected) within a minute, while the correctly routed traffic is not
   flagged.
2. A slow worker: one room worker is stopped in short bursts (SIGSTOP 0.4 s, then 0.2 s running)
   under steady client traffic. Its metrics scrapes still answer within the 750 ms timeout and
   a stopped process burns no CPU, so the scrape-only model sees nothing; its responses are slow.
   The agent must make it hot by latency within seconds and place new rooms elsewhere. Prints
   the timeline."""

from __future__ import annotations

import json
import signal
import threading
import time
import unittest
import urllib.parse

import liveload
import realstack
import scenario

AGENT_EXTRA = """responses:
  misroute_interval: 10s
  latency_min_samples: 3
"""


class RealFeedback(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = realstack.RealStack(federation=False, agent_extra=AGENT_EXTRA)
        cls.stack.haproxy_env["SPOA_RESPONSE_SAMPLE_PERCENT"] = "100"
        cls.stack.__enter__()
        s = cls.stack
        print(f"\nversions: {s.versions}; stack up in {s.timings['total']:.1f} s", flush=True)
        user = s.register("feedback")
        cls.user_id, cls.token = user["user_id"], user["access_token"]
        raw = scenario.Raw(s.port, cls.token)
        cls.rooms = [raw.call("POST", "/_matrix/client/v3/createRoom", {"name": f"fb {i}"})[1]
                     ["room_id"] for i in range(20)]

    @classmethod
    def tearDownClass(cls):
        cls.stack.__exit__(None, None, None)

    def agent_log(self):
        return (self.stack.dir / "logs" / "agent.log").read_text(errors="replace")

    def test_1_misrouted_typing_is_named(self):
        s = self.stack
        # The same agent, its config now sending `typing` to the room pool (a SIGHUP reload).
        text = s.agent_config.read_text()
        s.agent_config.write_text(text + "routes:\n  retarget: {typing: room}\n")
        s.agent.signal(signal.SIGHUP)
        log0 = len(self.agent_log())
        realstack.wait_for(lambda: "reloaded" in self.agent_log()[log0:], timeout=20,
                           what="agent reload")
        raw = scenario.Raw(s.port, self.token)
        uid = urllib.parse.quote(self.user_id, safe="")
        t0 = time.monotonic()
        statuses = {}
        found = None
        while time.monotonic() - t0 < 60 and found is None:
            for room in self.rooms[:4]:
                q = urllib.parse.quote(room, safe="")
                st, _ = raw.call("PUT", f"/_matrix/client/v3/rooms/{q}/typing/{uid}",
                                 {"typing": True, "timeout": 5000}, expect=None)
                statuses[st] = statuses.get(st, 0) + 1
                raw.call("GET", f"/_matrix/client/v3/rooms/{q}/messages?limit=1", expect=None)
            for line in self.agent_log()[log0:].splitlines():
                if "responses: rule typing on room" in line:
                    found = line
            time.sleep(0.5)
        took = time.monotonic() - t0
        print(f"typing statuses through the retargeted rule: {statuses}")
        print(f"named after {took:.1f} s: {found}")
        self.assertIsNotNone(found, "the agent never named the misrouted typing rule")
        self.assertLess(took, 60)
        m = s.agent_metrics()
        flagged = {dict(k[1])["rule"] + "@" + dict(k[1])["worker"]
                   for k, v in m.items() if k[0] == "synapse_spoa_misroute_suspected" and v == 1}
        print("flagged cells:", sorted(flagged))
        self.assertTrue(any(f.startswith("typing@room") for f in flagged), flagged)
        self.assertFalse(any(f.startswith("room_messages@") for f in flagged), flagged)
        # Back to the right route for the next test.
        s.agent_config.write_text(text)
        log1 = len(self.agent_log())
        s.agent.signal(signal.SIGHUP)
        realstack.wait_for(lambda: "reloaded" in self.agent_log()[log1:], timeout=20,
                           what="agent reload")

    def test_2_slow_worker_avoided_for_new_rooms(self):
        s = self.stack
        with liveload.RoomTraffic(s, self.token, self.rooms, rate=12.0, timeout=10.0):
            time.sleep(6)
            per = liveload.rooms_per_worker(s)
            victim = max(sorted(per), key=lambda w: per[w])
            probes = liveload.keys_first_on(s, victim, 8, "fbprobe")
            stop = threading.Event()

            def bursts():
                proc = s.synapse[victim]
                while not stop.is_set():
                    proc.signal(signal.SIGSTOP)
                    time.sleep(0.4)
                    proc.signal(signal.SIGCONT)
                    stop.wait(0.2)

            with liveload.Timeline(s, victim, period=0.25) as tl:
                time.sleep(1)
                t_slow = time.monotonic() - tl.t0
                th = threading.Thread(target=bursts, daemon=True)
                th.start()
                try:
                    realstack.wait_for(lambda: s.worker_view(victim).get("state") == "hot",
                                       timeout=30, what=f"{victim} hot by latency")
                    t_hot = time.monotonic() - tl.t0
                    placed = []
                    for key in probes:
                        liveload.probe(s, self.token, key)
                    time.sleep(0.5)
                    m = s.agent_metrics()
                    for key in probes:
                        served = [srv for _, srv in liveload.served_by(s, key)]
                        placed.append(served[-1] if served else None)
                    time.sleep(2)
                finally:
                    stop.set()
                    th.join(timeout=5)
                    s.synapse[victim].signal(signal.SIGCONT)
                time.sleep(1)
        print(f"\n{victim}: slow from t={t_slow:.2f} s, hot at t={t_hot:.2f} s "
              f"({t_hot - t_slow:.2f} s later)")
        print("  t (s)   state     cpu    lag (s)  latency ratio  capacity")
        for t, view, hap, rooms in tl.samples:
            if t < t_slow - 0.5 or t > t_hot + 2:
                continue
            print(f"  {t:5.2f}   {str(view.get('state')):8}  {view.get('cpu_cores', 0):.2f}   "
                  f"{view.get('reactor_lag_seconds', 0):.3f}    "
                  f"{view.get('response_latency_ratio', float('nan')):6.2f}         "
                  f"{view.get('capacity', 0):.2f}")
        print(f"new rooms whose first choice is {victim}, placed at: {placed}")
        self.assertLess(t_hot - t_slow, 10.0)
        # Hot by latency, not by the scrape signals: its CPU and reactor lag stayed cool.
        hot_views = [v for t, v, _, _ in tl.samples if t >= t_hot - 0.3 and v.get("state") == "hot"]
        self.assertTrue(hot_views)
        self.assertGreaterEqual(hot_views[0].get("response_latency_ratio", 0), 4)
        self.assertLess(hot_views[0].get("cpu_cores", 1), 0.85)
        self.assertEqual([p for p in placed if p == victim], [],
                         f"new rooms placed on the slow {victim}: {placed}")


if __name__ == "__main__":
    unittest.main()
