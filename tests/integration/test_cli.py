"""The command line: check-config exit codes and messages, print-default-config round trip,
route (one request and a replayed batch), and the committed route map being current."""

import json
import subprocess
import tempfile
import unittest
import pathlib

from harness import AGENT, SOURCE, Stack


def run(*args, stdin=None):
    return subprocess.run([str(AGENT), *args], input=stdin, capture_output=True, text=True, timeout=60)


class Cli(unittest.TestCase):
    def test_check_config_default(self):
        r = run("check-config")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("ok (5 pools, 13 workers)", r.stdout)

    def test_print_default_config_round_trips_through_check_config(self):
        r = run("print-default-config")
        self.assertEqual(r.returncode, 0)
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(r.stdout)
            f.flush()
            c = run("check-config", "--config", f.name)
            self.assertEqual(c.returncode, 0, c.stderr)

    def test_check_config_bad_value_names_file_line_key_value(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(run("print-default-config").stdout.replace("balance_factor: 1.1 ", "balance_factor: 0.5 "))
            f.flush()
            r = run("check-config", "--config", f.name)
            self.assertEqual(r.returncode, 2)
            self.assertRegex(r.stderr, rf"^{f.name}:\d+:\d+: placement\.balance_factor: .*\(got '0\.5'\)")

    def test_check_config_shadowed_rule_names_both_rules(self):
        with tempfile.NamedTemporaryFile("w", suffix=".yaml") as f:
            f.write(run("print-default-config").stdout.replace(
                "  prepend: []",
                "  prepend:\n"
                "    - {name: all_rooms, methods: \"*\", pattern: \"/_matrix/client/v3/rooms/**\", pool: room, key: none}\n"
                "    - {name: messages, methods: GET, pattern: \"/_matrix/client/v3/rooms/{room}/messages\", pool: room}"))
            f.flush()
            r = run("check-config", "--config", f.name)
            self.assertEqual(r.returncode, 2, r.stdout)
            self.assertIn("rule 'messages'", r.stderr)
            self.assertIn("rule 'all_rooms'", r.stderr)
            self.assertIn("can never match", r.stderr)

    def test_check_config_missing_file(self):
        r = run("check-config", "--config", "/nonexistent/x.yaml")
        self.assertEqual(r.returncode, 2)
        self.assertIn("/nonexistent/x.yaml: cannot read", r.stderr)

    def test_route_one_request(self):
        r = run("route", "PUT", "/_matrix/client/v3/rooms/%21abc%3Aexample.org/send/m.room.message/t1")
        self.assertEqual(r.returncode, 0, r.stderr)
        d = json.loads(r.stdout)
        self.assertEqual((d["pool"], d["backend"], d["key"]), ("room", "synapse_room", "!abc:example.org"))
        self.assertIn(d["server"], {"room1", "room2", "room3", "room4"})
        self.assertTrue(d["rule"])
        self.assertEqual(d["placement"]["chosen"], d["server"])
        self.assertEqual([w["worker"] for w in d["placement"]["ranking"]][0], d["server"])

    def test_route_user_key_from_arg(self):
        r = run("route", "--arg", "user=YWxpY2U", "GET", "/_matrix/client/v3/sync")
        d = json.loads(r.stdout)
        self.assertEqual((d["pool"], d["key"], d["key_kind"]), ("client_sync", "YWxpY2U", "user"))

    def test_route_batch_keeps_order_and_affinity(self):
        lines = []
        for i in range(50):
            lines.append(f"GET /_matrix/client/v3/rooms/!r{i}:example.org/messages")
            lines.append(f"PUT /_matrix/client/v3/rooms/%21r{i}%3Aexample.org/send/m.room.message/t")
        lines.append("garbage")
        r = run("route", "-", stdin="\n".join(lines) + "\n")
        self.assertEqual(r.returncode, 0, r.stderr)
        out = [json.loads(l) for l in r.stdout.splitlines()]
        self.assertEqual(len(out), 101)
        for i in range(50):
            a, b = out[2 * i], out[2 * i + 1]
            self.assertEqual(a["key"], f"!r{i}:example.org")
            self.assertEqual(a["server"], b["server"])
            self.assertEqual(b["reason"], "affinity_hit")
        self.assertEqual(out[-1]["error"], "expected METHOD PATH")

    def test_routes_map_is_current(self):
        r = run("routes")
        self.assertEqual(r.returncode, 0)
        committed = (SOURCE / "src" / "routing" / "ROUTES.md").read_text()
        self.assertEqual(r.stdout, committed,
                         "src/routing/ROUTES.md is stale: regenerate with `synapse-spoa routes > src/routing/ROUTES.md`")

    def test_unknown_command_and_option(self):
        self.assertEqual(run("frobnicate").returncode, 2)
        self.assertEqual(run("run", "--nope").returncode, 2)


class RouteLive(unittest.TestCase):
    """`route --live` scrapes the (simulated) workers first and shows their load view."""

    def test_live_view(self):
        stack = Stack(agent_extra="load: {scrape_interval: 200ms, scrape_timeout: 150ms}\n")
        try:
            stack.start_sim()
            stack.agent_port = stack.agent_metrics_port = 0
            stack.write_agent_config()
            self.assertEqual(stack.control("room2", "down"), 200)
            r = run("route", "--live", "--config", str(stack.agent_config),
                    "GET", "/_matrix/client/v3/rooms/!live:example.org/messages")
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("load: room1: unknown -> healthy", r.stderr)
            d = json.loads(r.stdout)
            states = {w["worker"]: w["state"] for w in d["placement"]["ranking"]}
            self.assertEqual(states["room1"], "healthy", states)
            self.assertEqual(states["room2"], "down", states)
            self.assertNotEqual(d["server"], "room2")
        finally:
            stack.close()


if __name__ == "__main__":
    unittest.main(verbosity=2)
