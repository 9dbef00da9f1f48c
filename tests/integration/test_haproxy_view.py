"""HAProxy's own view as a load source (issue 16, part 2): real HAProxy (2.6 here, 3.2 in the
_h32 twin), the real agent with load.haproxy_metrics pointed at HAProxy's Prometheus exporter,
simulated workers. The operator changes servers through HAProxy's runtime API only — no agent
config edit, no SIGHUP — and the agent follows:

- `set server synapse_room/room1 state drain`: the agent drains room1 (no new rooms, its rooms
  move gradually, moves counted with reason drain); `state ready` lifts it;
- `set server synapse_room/room2 state maint`: room2 is down to the agent (its rooms move at
  once, reason down) and healthy again after `state ready`;
- `disable health` + `set server synapse_room/room3 health down`: HAProxy's check says DOWN while
  room3's own metrics are fine: down to the agent as well.

Each step is timed from the runtime command to the agent's state (printed)."""

import time
import unittest

from harness import Stack, agent_metrics, wait_for, worker_state

AGENT_EXTRA = """placement:
  hash_key: haproxy-view-test
  max_moves_per_second: 200
"""


def room_path(room):
    return f"/_matrix/client/v3/rooms/{room}/messages"


class HaproxyViewTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack(agent_extra="", runtime=True)
        cls.stack.agent_extra = AGENT_EXTRA + (
            f"load:\n  haproxy_metrics: \"http://127.0.0.1:{cls.stack.stats_port}/metrics\"\n")
        cls.stack.start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def haproxy_state(self, worker):
        m = agent_metrics(self.stack)
        for s in ("unknown", "UP", "DOWN", "DRAIN", "MAINT"):
            if m.get(("synapse_spoa_worker_haproxy_state",
                      frozenset({("state", s), ("worker", worker)}))) == 1:
                return s
        return None

    def moves(self, reason):
        return agent_metrics(self.stack).get(
            ("synapse_spoa_affinity_moves_total", frozenset({("reason", reason)})), 0.0)

    def decisions_for(self, server):
        return sum(v for (name, labels), v in agent_metrics(self.stack).items()
                   if name == "synapse_spoa_decisions_total" and ("server", server) in labels)

    def serve(self, rooms):
        """{room: worker} after one request each through HAProxy."""
        out = {}
        for r in rooms:
            status, worker = self.stack.request("GET", room_path(r))
            self.assertEqual(status, 200, r)
            out[r] = worker
        return out

    def timed(self, command, predicate, what):
        t0 = time.monotonic()
        answer = self.stack.runtime(command)
        self.assertNotIn("Unknown", answer, answer)
        self.assertNotIn("No such", answer, answer)
        wait_for(predicate, timeout=10, what=what)
        dt = time.monotonic() - t0
        print(f"\n{command!r}: {what} after {dt:.2f} s")
        return dt

    def test_1_everything_up(self):
        wait_for(lambda: self.haproxy_state("room1") == "UP", what="HAProxy's view read")
        for w in ("room1", "room2", "room3", "room4"):
            self.assertEqual(self.haproxy_state(w), "UP")
        m = agent_metrics(self.stack)
        self.assertGreater(m[("synapse_spoa_haproxy_scrapes_total", frozenset({("result", "ok")}))],
                           0)

    def test_2_drain_through_the_runtime_api(self):
        rooms = [f"!view{i}:example.org" for i in range(80)]
        before = self.serve(rooms)
        on1 = [r for r, w in before.items() if w == "room1"]
        self.assertGreater(len(on1), 5)
        moved0 = self.moves("drain")
        self.timed("set server synapse_room/room1 state drain",
                   lambda: self.haproxy_state("room1") == "DRAIN", "the agent sees DRAIN")
        # Its rooms move (gradually: 200 per second here), and new rooms never land on room1.
        wait_for(lambda: all(w != "room1" for w in self.serve(on1).values()), timeout=10,
                 what="room1's rooms moved away")
        # (the agent copies its placement counters to /metrics once a second)
        wait_for(lambda: self.moves("drain") - moved0 >= len(on1), timeout=5,
                 what="moves counted with reason drain")
        fresh = self.serve([f"!fresh-drain{i}:example.org" for i in range(60)])
        self.assertNotIn("room1", fresh.values())
        # The other rooms stayed where they were.
        after = self.serve([r for r in rooms if r not in on1])
        self.assertEqual(after, {r: w for r, w in before.items() if r not in on1})
        self.timed("set server synapse_room/room1 state ready",
                   lambda: self.haproxy_state("room1") == "UP", "the agent sees UP")
        fresh = self.serve([f"!fresh-ready{i}:example.org" for i in range(60)])
        self.assertIn("room1", fresh.values())

    def test_3_maint_is_down(self):
        rooms = [f"!maint{i}:example.org" for i in range(60)]
        before = self.serve(rooms)
        on2 = [r for r, w in before.items() if w == "room2"]
        self.assertGreater(len(on2), 3)
        down0 = self.moves("down")
        self.timed("set server synapse_room/room2 state maint",
                   lambda: worker_state(self.stack, "room2") == "down", "room2 down in the agent")
        self.assertEqual(self.haproxy_state("room2"), "MAINT")
        # The agent's own answers (HAProxy would skip a MAINT server on its own anyway): no
        # decision names room2 any more.
        to2 = self.decisions_for("room2")
        moved = self.serve(on2)
        self.assertNotIn("room2", moved.values())
        self.assertEqual(self.decisions_for("room2"), to2)
        wait_for(lambda: self.moves("down") - down0 >= len(on2), timeout=5,
                 what="moves counted with reason down")
        self.timed("set server synapse_room/room2 state ready",
                   lambda: worker_state(self.stack, "room2") == "healthy",
                   "room2 healthy in the agent")

    def test_4_failed_health_check_is_down(self):
        self.stack.runtime("disable health synapse_room/room3")
        try:
            self.timed("set server synapse_room/room3 health down",
                       lambda: worker_state(self.stack, "room3") == "down",
                       "room3 down in the agent (its own metrics are fine)")
            self.assertEqual(self.haproxy_state("room3"), "DOWN")
        finally:
            self.stack.runtime("set server synapse_room/room3 health up")
            self.stack.runtime("enable health synapse_room/room3")
        wait_for(lambda: worker_state(self.stack, "room3") == "healthy", timeout=15,
                 what="room3 healthy again")


if __name__ == "__main__":
    unittest.main()
