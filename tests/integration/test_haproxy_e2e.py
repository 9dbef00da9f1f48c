"""Real HAProxy + the real agent + simulated workers: requests land where the route table and
placement say, one room stays on one worker in every encoding, and HAProxy keeps answering
through its fallback when the agent dies."""

import unittest

from harness import Stack, wait_for

ROOM_WORKERS = {"room1", "room2", "room3", "room4"}

# (method, raw path, headers, expected worker or set of workers)
CLASS_CASES = [
    ("GET", "/_matrix/client/v3/sync?since=s1_2&timeout=0", {}, "client_sync1"),
    ("PUT", "/_matrix/client/v3/rooms/!abc%3Aexample.org/typing/%40alice%3Aexample.org", {}, "client_sync1"),
    ("POST", "/_matrix/client/v3/rooms/%21abc%3Aexample.org/read_markers", {}, "client_sync1"),
    ("PUT", "/_matrix/client/v3/sendToDevice/m.room.encrypted/txn1", {}, "client_sync1"),
    ("GET", "/_matrix/client/v1/media/download/example.org/AbCdEf", {}, "media1"),
    ("POST", "/_matrix/media/v3/upload?filename=a.png", {}, "media1"),
    ("PUT", "/_matrix/federation/v1/send/1700000000000", {"Authorization": 'X-Matrix origin="other.org",destination="example.org",key="ed25519:a",sig="x"'}, "federation_reader1"),
    ("GET", "/_matrix/client/versions", {}, "main"),
    ("POST", "/_matrix/client/v3/rooms/!abc:example.org/forget", {}, "main"),
    ("GET", "/_matrix/federation/v1/state_ids/%21abc%3Aexample.org?event_id=%24ev", {}, ROOM_WORKERS),
    ("PUT", "/_matrix/client/v3/rooms/!abc%3Aexample.org/send/m.room.message/m1", {}, ROOM_WORKERS),
]


def expect(case, worker):
    want = case[3]
    return worker in want if isinstance(want, set) else worker == want


class HAProxyEndToEnd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = Stack().start()
        wait_for(cls.stack.agent_up, what="HAProxy's SPOP health check of the agent")

    @classmethod
    def tearDownClass(cls):
        cls.stack.close()

    def test_01_spop_health_check_succeeds(self):
        self.assertEqual(self.stack.server_status("spoa_synapse", "agent1"), "UP")

    def test_02_classes_land_on_their_pools(self):
        for case in CLASS_CASES:
            method, path, headers, _ = case
            status, worker = self.stack.request(method, path, headers)
            self.assertEqual(status, 200, path)
            self.assertTrue(expect(case, worker), f"{method} {path} -> {worker}, want {case[3]}")

    def test_03_one_room_one_worker_in_every_encoding(self):
        workers = set()
        for room in ("!abc:example.org", "%21abc%3Aexample.org", "!abc%3Aexample.org", "%21abc:example.org"):
            for suffix in ("/messages?dir=b", "/send/m.room.message/t1", "/state", "/members"):
                method = "PUT" if "/send/" in suffix else "GET"
                status, worker = self.stack.request(method, f"/_matrix/client/v3/rooms/{room}{suffix}")
                self.assertEqual(status, 200)
                workers.add(worker)
        status, worker = self.stack.request("GET", "/_matrix/federation/v1/state_ids/%21abc%3Aexample.org")
        workers.add(worker)
        self.assertEqual(len(workers), 1, workers)
        self.assertTrue(workers <= ROOM_WORKERS)

    def test_04_rooms_spread_over_room_workers(self):
        seen = {}
        for i in range(200):
            _, worker = self.stack.request("GET", f"/_matrix/client/v3/rooms/!spread{i}:example.org/messages")
            self.assertIn(worker, ROOM_WORKERS)
            seen[worker] = seen.get(worker, 0) + 1
        self.assertEqual(set(seen), ROOM_WORKERS, seen)
        # bounded load keeps every worker within 1.25x of the mean even for a small sample
        self.assertLessEqual(max(seen.values()), 1.25 * 200 / 4 + 1, seen)

    def test_05_agent_killed_requests_still_answered_then_restored(self):
        _, home = self.stack.request("GET", "/_matrix/client/v3/rooms/!kill:example.org/messages")
        self.stack.agent.kill()
        # Fallback: every request still answered, classes still right, one room on one worker.
        fallback_workers = set()
        for _ in range(3):
            for case in CLASS_CASES:
                method, path, headers, _want = case
                status, worker = self.stack.request(method, path, headers)
                self.assertEqual(status, 200, f"{path} while the agent is down")
                self.assertTrue(expect(case, worker), f"fallback {method} {path} -> {worker}")
            _, w = self.stack.request("GET", "/_matrix/client/v3/rooms/%21kill%3Aexample.org/messages")
            fallback_workers.add(w)
        self.assertEqual(len(fallback_workers), 1, fallback_workers)
        self.assertTrue(fallback_workers <= ROOM_WORKERS)
        # Restart on the same port: HAProxy's health check sees it and routing resumes; with
        # the same config, rendezvous places the room on the same worker again.
        self.stack.start_agent()
        wait_for(self.stack.agent_up, what="agent back UP")
        _, again = self.stack.request("GET", "/_matrix/client/v3/rooms/!kill:example.org/messages")
        self.assertEqual(again, home)


if __name__ == "__main__":
    unittest.main(verbosity=2)
