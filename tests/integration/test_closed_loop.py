"""Issue 5's closed loop, with real HAProxy: live load scraped from the (simulated) workers
steers new rooms away from a slow worker, moves a dead worker's rooms and brings new rooms back
to it when it returns — while placed rooms stay put."""

import concurrent.futures
import unittest

from harness import Stack, Traffic, wait_for, worker_state

ROOMS = ["room1", "room2", "room3", "room4"]
AGENT_EXTRA = """load:
  scrape_interval: 300ms
  scrape_timeout: 250ms
  down_after_failures: 2
  stale_after: 5s
placement:
  hash_key: closed-loop-test
"""


def place(stack, rooms):
    """Each room's worker, one request per room (in parallel)."""
    def one(room):
        status, worker = stack.request("GET", f"/_matrix/client/v3/rooms/{room}/messages")
        return room, status, worker
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        results = list(ex.map(one, rooms))
    for room, status, _ in results:
        assert status == 200, (room, status)
    return {room: worker for room, _, worker in results}


def share(placement, worker):
    return sum(1 for w in placement.values() if w == worker) / len(placement)


class ClosedLoop(unittest.TestCase):
    def test_slow_down_and_back(self):
        with Stack(agent_extra=AGENT_EXTRA, sim_args=["--cpu-per-request", "0.004"]) as stack:
            wait_for(stack.agent_up, what="agent UP in HAProxy")
            wait_for(lambda: all(worker_state(stack, w) == "healthy" for w in ROOMS),
                     timeout=20, what="room workers healthy in the agent's view")
            old_rooms = [f"!old{i}:example.org" for i in range(200)]
            before = place(stack, old_rooms)
            report = {"before": {w: share(before, w) for w in ROOMS}}

            with Traffic(stack, [f"/_matrix/client/v3/rooms/{r}/messages" for r in old_rooms], threads=3) as traffic:
                # room2 becomes 3x slower: the agent must see it hot from its metrics alone.
                self.assertEqual(stack.control("room2", "slow", 3), 200)
                wait_for(lambda: worker_state(stack, "room2") == "hot", timeout=30,
                         what="room2 hot in the agent's view")
                new_rooms = [f"!new{i}:example.org" for i in range(200)]
                after_slow = place(stack, new_rooms)
                report["new rooms while room2 slow"] = {w: share(after_slow, w) for w in ROOMS}
                self.assertLess(share(after_slow, "room2"), 0.10, report)
                still = place(stack, old_rooms)
                moved = [r for r in old_rooms if before[r] != "room2" and still[r] != before[r]]
                self.assertEqual(moved, [], "rooms on healthy workers must stay put")

                # room3 goes down: its rooms move, every request still succeeds.
                self.assertEqual(stack.control("room2", "normal"), 200)
                self.assertEqual(stack.control("room3", "down"), 200)
                wait_for(lambda: worker_state(stack, "room3") == "down", timeout=30,
                         what="room3 down in the agent's view")
                during = place(stack, old_rooms)
                self.assertNotIn("room3", during.values())
                moved_off_others = [r for r in old_rooms
                                    if before[r] not in ("room3", "room2") and during[r] != before[r]]
                self.assertEqual(moved_off_others, [], "only room3's rooms move")
                report["room3 down: old rooms"] = {w: share(during, w) for w in ROOMS}

                # room3 returns: new rooms reach it again.
                self.assertEqual(stack.control("room3", "normal"), 200)
                wait_for(lambda: worker_state(stack, "room3") == "healthy", timeout=30,
                         what="room3 healthy again")
                wait_for(lambda: stack.server_status("synapse_room", "room3") == "UP", timeout=30,
                         what="HAProxy sees room3 UP")
                back = place(stack, [f"!back{i}:example.org" for i in range(200)])
                report["new rooms after room3 returns"] = {w: share(back, w) for w in ROOMS}
                self.assertGreater(share(back, "room3"), 0.10, report)
            self.assertEqual(sum(traffic.errors.values()), 0, f"5xx/conn errors: {dict(traffic.errors)}")
            print("\nshares:", report)


if __name__ == "__main__":
    unittest.main(verbosity=2)
