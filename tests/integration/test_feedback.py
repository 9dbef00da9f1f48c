"""Response feedback (issue 17) through real HAProxy (2.6 here, 3.2 in the _h32 twin) with
simulated workers: haproxy.cfg's sampled `response` SPOE message reaches the agent, which counts
responses by rule, worker and status class, fills the per-worker response-time histograms, and
turns one room worker's slow answers into a latency ratio that makes it hot.

SPOA_RESPONSE_SAMPLE_PERCENT is 100 here so the test needs few requests; the default is 5."""

import os
import time
import unittest

from harness import Stack, agent_metrics, wait_for, worker_state

AGENT_EXTRA = """placement:
  hash_key: feedback-test
responses:
  latency_min_samples: 3
"""

ROOMS = [f"!fb{i}:example.org" for i in range(40)]


def room_path(room):
    return f"/_matrix/client/v3/rooms/{room}/messages"


def series(m, name, **labels):
    want = set(labels.items())
    return {k: v for k, v in m.items() if k[0] == name and want <= set(k[1])}


class FeedbackTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        os.environ["SPOA_RESPONSE_SAMPLE_PERCENT"] = "100"
        cls.stack = Stack(agent_extra=AGENT_EXTRA).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def drive(self, rounds=1):
        workers = {}
        for _ in range(rounds):
            for room in ROOMS:
                status, worker = self.stack.request("GET", room_path(room))
                self.assertEqual(status, 200)
                workers.setdefault(room, worker)
        return workers

    def test_1_responses_counted_by_rule_worker_class(self):
        placed = self.drive(2)
        m = agent_metrics(self.stack)
        ok = series(m, "synapse_spoa_responses_total", rule="room_messages", **{"class": "2xx"})
        by_worker = {dict(k[1])["worker"]: v for k, v in ok.items()}
        print("2xx responses by worker (rule room_messages):", by_worker)
        expected = {}
        for w in placed.values():
            expected[w] = expected.get(w, 0) + 2
        self.assertEqual(by_worker, {w: float(n) for w, n in expected.items()})
        dropped = series(m, "synapse_spoa_response_messages_total")
        for k, v in dropped.items():
            if dict(k[1])["result"] != "recorded":
                self.assertEqual(v, 0, k)
        hist = series(m, "synapse_spoa_worker_response_seconds_count", pool="room")
        self.assertEqual(sum(hist.values()), 2 * len(ROOMS))

    def test_2_slow_worker_is_hot_by_latency(self):
        self.drive(1)
        self.assertEqual(self.stack.control("room2", "slow", factor=150), 200)  # 300 ms each
        t0 = time.monotonic()
        try:
            def hot():
                self.drive(1)
                return worker_state(self.stack, "room2") == "hot"

            wait_for(hot, timeout=30, what="room2 hot")
            took = time.monotonic() - t0
            m = agent_metrics(self.stack)
            ratio = series(m, "synapse_spoa_worker_response_latency_ratio", worker="room2")
            print(f"room2 hot {took:.2f} s after it turned slow; latency ratio {list(ratio.values())}")
            self.assertGreaterEqual(list(ratio.values())[0], 4)
            others = series(m, "synapse_spoa_worker_response_latency_ratio", worker="room1")
            self.assertLess(list(others.values())[0], 2)
        finally:
            self.stack.control("room2", "normal")


if __name__ == "__main__":
    unittest.main()
