"""`synapse-spoa ctl` against a running agent (issue 16, part 1): real HAProxy 2.6, the real
agent with control.socket set, simulated workers; every command through the real `ctl` client.

- status: every worker with state, HAProxy's view, capacity, rate, keys and drain source;
- drain room1: its rooms move, new rooms avoid it, exported (synapse_spoa_runtime_drain), kept
  across a SIGHUP reload; undrain lifts it;
- forget ROOM: the room is on another worker at its next request;
- explain: the live decision;
- errors: unknown command, unknown worker, a second agent on the same socket, no socket."""

import json
import os
import signal
import stat
import subprocess
import time
import unittest

from harness import AGENT, Stack, agent_metrics, free_port, wait_for


def room_path(room):
    return f"/_matrix/client/v3/rooms/{room}/messages"


class CtlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack()
        cls.sock = cls.stack.dir / "ctl.sock"
        cls.stack.agent_extra = (f"control:\n  socket: \"{cls.sock}\"\n  mode: \"0600\"\n"
                                 "placement:\n  hash_key: ctl-test\n  max_moves_per_second: 500\n")
        cls.stack.start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def ctl(self, *args, expect=0):
        r = subprocess.run([str(AGENT), "ctl", "--socket", str(self.sock), *args],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, expect, r.stdout + r.stderr)
        return json.loads(r.stdout) if r.stdout.strip() else None

    def serve(self, rooms):
        out = {}
        for r in rooms:
            status, worker = self.stack.request("GET", room_path(r))
            self.assertEqual(status, 200)
            out[r] = worker
        return out

    def test_1_socket_mode_and_status(self):
        self.assertEqual(stat.S_IMODE(os.stat(self.sock).st_mode), 0o600)
        self.serve([f"!status{i}:example.org" for i in range(20)])
        s = self.ctl("status")
        self.assertTrue(s["ok"])
        names = [w["name"] for w in s["workers"]]
        self.assertIn("room1", names)
        room1 = next(w for w in s["workers"] if w["name"] == "room1")
        for k in ("pool", "state", "haproxy", "capacity", "rate", "peer_rate", "keys", "drain"):
            self.assertIn(k, room1)
        self.assertEqual(room1["pool"], "room")
        self.assertGreaterEqual(sum(w["keys"] for w in s["workers"]), 20)
        self.assertIsNone(s["shared"])
        print("\nctl status (room workers): " + json.dumps(
            [w for w in s["workers"] if w["pool"] == "room"]))

    def test_2_drain_survives_reload(self):
        rooms = [f"!drain{i}:example.org" for i in range(60)]
        before = self.serve(rooms)
        on1 = [r for r, w in before.items() if w == "room1"]
        self.assertGreater(len(on1), 5)
        a = self.ctl("drain", "room1")
        self.assertEqual(a, {"ok": True, "worker": "room1", "drain": True, "changed": True})
        print(f"\nctl drain room1: {json.dumps(a)}")
        wait_for(lambda: all(w != "room1" for w in self.serve(on1).values()), timeout=10,
                 what="room1's rooms moved")
        wait_for(lambda: agent_metrics(self.stack).get(
            ("synapse_spoa_runtime_drain", frozenset({("worker", "room1")}))) == 1,
            what="the runtime drain exported")
        # Kept across a reload (the config has no drain).
        reloads = self.stack.agent.output().count("info reloaded ")
        os.kill(self.stack.agent.pid, signal.SIGHUP)
        wait_for(lambda: self.stack.agent.output().count("info reloaded ") > reloads,
                 what="the agent's reload")
        fresh = self.serve([f"!after-reload{i}:example.org" for i in range(60)])
        self.assertNotIn("room1", fresh.values())
        s = self.ctl("status")
        self.assertEqual(next(w for w in s["workers"] if w["name"] == "room1")["drain"], "runtime")
        self.assertEqual(self.ctl("undrain", "room1")["changed"], True)
        fresh = self.serve([f"!undrained{i}:example.org" for i in range(60)])
        self.assertIn("room1", fresh.values())
        self.assertIsNone(next(w for w in self.ctl("status")["workers"]
                               if w["name"] == "room1")["drain"])

    def test_3_forget_moves_one_room_now(self):
        room = "!forget-me:example.org"
        first = self.serve([room])[room]
        a = self.ctl("forget", room)
        self.assertEqual(len(a["moved"]), 1)
        self.assertEqual(a["moved"][0]["pool"], "room")
        self.assertEqual(a["moved"][0]["from"], first)
        print(f"\nctl forget {room}: {json.dumps(a)}")
        self.assertEqual(self.serve([room])[room], a["moved"][0]["to"])
        self.assertEqual(self.serve([room])[room], a["moved"][0]["to"])  # and it stays
        self.ctl("forget", "!never-seen:example.org", expect=1)

    def test_4_explain(self):
        d = self.ctl("explain", "GET", room_path("!explain:example.org"))
        self.assertEqual(d["decision"]["pool"], "room")
        self.assertEqual(d["decision"]["key"], "!explain:example.org")
        self.assertEqual(self.ctl("explain", "PUT", "/_matrix/client/v3/rooms/!r:x/typing/@u:x")
                         ["decision"]["pool"], "client_sync")

    def test_5_errors(self):
        bad = self.ctl("frobnicate", expect=1)
        self.assertFalse(bad["ok"])
        self.assertIn("unknown command", bad["error"])
        self.assertIn("no worker named 'room99'", self.ctl("drain", "room99", expect=1)["error"])
        r = subprocess.run([str(AGENT), "ctl", "--socket", str(self.stack.dir / "none.sock"),
                            "status"], capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 1)
        self.assertIn("cannot connect", r.stderr)
        # A second agent on the same socket refuses to start, and the first keeps it.
        cfg = self.stack.dir / "second.yaml"
        text = self.stack.agent_config.read_text()
        text = text.replace(f"listen: 127.0.0.1:{self.stack.agent_port}",
                            f"listen: 127.0.0.1:{free_port()}")
        text = text.replace(f"metrics_listen: 127.0.0.1:{self.stack.agent_metrics_port}",
                            f"metrics_listen: 127.0.0.1:{free_port()}")
        cfg.write_text(text)
        r = subprocess.run([str(AGENT), "run", "--config", str(cfg)], capture_output=True,
                           text=True, timeout=20)
        self.assertEqual(r.returncode, 1)
        self.assertIn("another agent answers there", r.stderr)
        self.assertTrue(self.ctl("status")["ok"])


if __name__ == "__main__":
    unittest.main()
