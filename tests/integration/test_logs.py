"""log_format: json with the real binary (issue 16, part 6): real HAProxy, simulated workers.

A room worker goes down and comes back, requests for its rooms move them, a reload drains
another worker, a peer sends an invalid SPOP frame, and the agent stops. Every line the agent
wrote is then parsed as one JSON object with ts (RFC 3339 UTC, milliseconds), level and msg, and
the events carry their figures: worker_state (worker, from, to, reason, cpu, lag, failures),
moves (keys by cause and by destination, once a second, never a room ID), drain and reload,
spop_error; and a drain set through HAProxy's runtime API (haproxy_state)."""

import json
import os
import re
import signal
import socket
import time
import unittest

from harness import Stack, wait_for

ROOM_WORKERS = ["room1", "room2", "room3", "room4"]
TS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")
EXTRA = """log_format: json
placement:
  hash_key: log-test
"""


def room_path(room):
    return f"/_matrix/client/v3/rooms/{room}/messages"


def events(stack):
    """Every line of the agent's output as JSON (fails the test on a line that is not)."""
    out = []
    for line in stack.agent.output().splitlines():
        out.append(json.loads(line))
    return out


def find(stack, **want):
    return [e for e in events(stack) if all(e.get(k) == v for k, v in want.items())]


class JsonLogs(unittest.TestCase):
    def test_every_line_is_json_and_every_change_has_its_figures(self):
        with Stack(agent_extra=EXTRA) as stack:
            rooms = [f"!log{i}:example.org" for i in range(40)]
            wait_for(lambda: len(find(stack, event="worker_state", to="healthy")) >= len(stack.workers),
                     timeout=30, what="every worker healthy in the agent's log")
            placed = {}
            for room in rooms:
                status, worker = stack.request("GET", room_path(room))
                self.assertEqual(status, 200)
                placed[room] = worker
            counts = {w: sum(1 for r in rooms if placed[r] == w) for w in ROOM_WORKERS}
            victim = max(counts, key=counts.get)
            self.assertGreaterEqual(counts[victim], 3)

            # Down: the state change names the worker, the reason and the failures.
            self.assertEqual(stack.control(victim, "down"), 200)
            wait_for(lambda: find(stack, event="worker_state", worker=victim, to="down"),
                     timeout=30, what=f"{victim} down in the agent's log")
            down = find(stack, event="worker_state", worker=victim, to="down")[0]
            self.assertEqual(down["reason"], "failures")
            self.assertEqual(down["failures"], 3)
            self.assertIn("error", down)
            self.assertIn("cpu", down)
            self.assertIn("lag", down)
            self.assertIn("in_flight", down)
            self.assertTrue(down["msg"].startswith(f"load: {victim}: "), down["msg"])

            # Its rooms move when they are requested: one summary, by cause and destination.
            mine = [r for r in rooms if placed[r] == victim]
            for room in mine:
                status, worker = stack.request("GET", room_path(room))
                self.assertEqual(status, 200)
                self.assertNotEqual(worker, victim)
                placed[room] = worker
            wait_for(lambda: find(stack, event="moves"), timeout=10, what="a move summary")
            moves = find(stack, event="moves")
            self.assertEqual(sum(m["by_cause"].get("down", 0) for m in moves), len(mine))
            self.assertEqual(sum(sum(m["to"].values()) for m in moves), len(mine))
            self.assertIn(victim, moves[0]["down"])
            self.assertNotIn(victim, moves[0]["to"])
            for m in moves:
                self.assertNotIn("!log", json.dumps(m), "a room ID in the log")

            # Up again: two good scrapes.
            self.assertEqual(stack.control(victim, "normal"), 200)
            wait_for(lambda: find(stack, event="worker_state", worker=victim, **{"from": "down"}),
                     timeout=30, what=f"{victim} up again in the agent's log")
            up = find(stack, event="worker_state", worker=victim, **{"from": "down"})[0]
            self.assertIn(up["to"], ("healthy", "hot"))
            self.assertEqual(up["reason"], "scrapes" if up["to"] == "healthy" else "hot")
            self.assertIsInstance(up["cpu"], float)

            # A reload that drains another room worker.
            others = [w for w in ROOM_WORKERS if w != victim]
            other = max(others, key=lambda w: sum(1 for r in rooms if placed[r] == w))
            text = stack.agent_config.read_text()
            stack.agent_config.write_text(text.replace(f"{{name: {other}, pool: room, ",
                                                       f"{{name: {other}, pool: room, drain: true, "))
            os.kill(stack.agent.pid, signal.SIGHUP)
            wait_for(lambda: find(stack, event="reload"), timeout=10, what="the reload")
            drain = find(stack, event="drain", worker=other)
            self.assertEqual(len(drain), 1)
            self.assertEqual((drain[0]["drain"], drain[0]["source"]), (True, "reload"))
            self.assertEqual(drain[0]["keys"], sum(1 for r in rooms if placed[r] == other))
            reload = find(stack, event="reload")[0]
            self.assertEqual((reload["drained"], reload["added"], reload["removed"]), (1, 0, 0))
            self.assertEqual(reload["config"], str(stack.agent_config))

            # The drained worker's rooms move as they are requested (50 a second at most).
            drained = [r for r in rooms if placed[r] == other]
            for room in drained:
                status, worker = stack.request("GET", room_path(room))
                self.assertEqual(status, 200)
            wait_for(lambda: [m for m in find(stack, event="moves") if m["by_cause"].get("drain")],
                     timeout=10, what="a drain move summary")
            drain_moves = [m for m in find(stack, event="moves") if m["by_cause"].get("drain")]
            self.assertEqual(sum(m["by_cause"]["drain"] for m in drain_moves), len(drained))
            self.assertIn(other, drain_moves[0]["draining"])
            self.assertNotIn(other, drain_moves[0]["to"])

            # A peer that is not HAProxy: NOTIFY before HELLO is refused with status 4.
            with socket.create_connection(("127.0.0.1", stack.agent_port), timeout=5) as s:
                s.sendall(bytes([0, 0, 0, 7, 3, 0, 0, 0, 1, 0, 0]))
                s.recv(4096)
            wait_for(lambda: find(stack, event="spop_error", side="agent", status=4),
                     timeout=10, what="the SPOP error summary")
            err = find(stack, event="spop_error", side="agent", status=4)[0]
            self.assertEqual(err["level"], "warn")
            self.assertEqual(err["connections"], 1)
            self.assertTrue(err["last_peer"].startswith("127.0.0.1:"))

            stack.agent.stop()
            all_events = events(stack)
            self.assertGreater(len(all_events), 10)
            for e in all_events:
                self.assertRegex(e["ts"], TS)
                self.assertIn(e["level"], ("debug", "info", "warn", "error"))
                self.assertIsInstance(e["msg"], str)
                self.assertEqual(list(e)[:3], ["ts", "level", "msg"])
            self.assertEqual(all_events[-1]["event"], "stopped")
            print("\n--- sample of the agent's JSON log ---")
            for e in all_events:
                if e.get("event") in ("worker_state", "moves", "drain", "reload", "spop_error") and \
                        (e.get("worker") in (victim, other, None)):
                    print(json.dumps(e, separators=(",", ":")))

    def test_a_drain_set_in_haproxy_is_logged_with_its_moves(self):
        """load.haproxy_metrics: the runtime API's `state drain` and `state ready` as
        haproxy_state events, and the drained server's rooms in the move summary."""
        stack = Stack(agent_extra="", runtime=True)
        stack.agent_extra = EXTRA + "  max_moves_per_second: 200\n" + (
            f"load:\n  haproxy_metrics: \"http://127.0.0.1:{stack.stats_port}/metrics\"\n")
        with stack:
            wait_for(lambda: find(stack, event="haproxy_state", worker="room1", to="UP"),
                     timeout=30, what="HAProxy's view of room1 in the log")
            rooms = [f"!hv{i}:example.org" for i in range(40)]
            placed = {r: stack.request("GET", room_path(r))[1] for r in rooms}
            on_room1 = [r for r in rooms if placed[r] == "room1"]
            self.assertGreaterEqual(len(on_room1), 3)
            stack.runtime("set server synapse_room/room1 state drain")
            wait_for(lambda: find(stack, event="haproxy_state", worker="room1", to="DRAIN"),
                     timeout=10, what="room1 DRAIN in the log")
            ev = find(stack, event="haproxy_state", worker="room1", to="DRAIN")[0]
            self.assertEqual(ev["from"], "UP")
            for r in on_room1:
                self.assertEqual(stack.request("GET", room_path(r))[0], 200)
            wait_for(lambda: [m for m in find(stack, event="moves") if m["by_cause"].get("drain")],
                     timeout=10, what="a drain move summary")
            drain_moves = [m for m in find(stack, event="moves") if m["by_cause"].get("drain")]
            self.assertEqual(sum(m["by_cause"]["drain"] for m in drain_moves), len(on_room1))
            self.assertIn("room1", drain_moves[0]["draining"])
            stack.runtime("set server synapse_room/room1 state ready")
            wait_for(lambda: find(stack, event="haproxy_state", worker="room1", **{"from": "DRAIN"}),
                     timeout=10, what="room1 ready again in the log")
            stack.agent.stop()
            for e in events(stack):
                self.assertRegex(e["ts"], TS)
            print("\n--- HAProxy's view in the agent's JSON log ---")
            for e in events(stack):
                if e.get("event") == "haproxy_state" and e.get("worker") == "room1" or \
                        e.get("event") == "moves":
                    print(json.dumps(e, separators=(",", ":")))


if __name__ == "__main__":
    unittest.main()
