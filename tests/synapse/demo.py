"""scripts/demo --synapse: the real reference deployment (Synapse 1.160 main + 12 workers,
PostgreSQL, Redis, HAProxy 3.2 from the sid chroot, the host's agent), sample traffic from a real
client, the same table as the simulated demo, and how to point a Matrix client at it. Runs until
Ctrl-C (or --once), then stops everything it started."""

from __future__ import annotations

import asyncio
import collections
import signal
import socket
import sys
import time

import checks
import realstack
import scenario


def port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def main():
    once = "--once" in sys.argv[1:]
    stack = realstack.RealStack(client_port=8008 if port_free(8008) else None)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    try:
        print("demo: starting PostgreSQL, Redis, Synapse main + 12 workers, the agent and "
              "HAProxy 3.2 ...", flush=True)
        stack.start()
        v = stack.versions
        print(f"demo: up in {stack.timings['total']:.0f} s — Synapse {v['matrix-synapse']}, "
              f"HAProxy {v['haproxy']}, PostgreSQL {v['postgresql']}, Redis {v['redis-server']}")
        print("demo: sending sample traffic from matrix-nio (rooms, messages, sync, typing, "
              "receipts, to-device, keys, directory, media) ...", flush=True)
        asyncio.run(scenario.run(stack, rooms=8, prefix="demo"))
        user = stack.register("demo", password="demo-pass")
        time.sleep(0.5)
        entries = checks.client_entries(stack)
        rules = checks.rules_for(stack, entries)
        table = collections.Counter((r, e["server"]) for e, r in zip(entries, rules))
        print("\nWhere each request class went (requests per worker):")
        print(f"  {'class (rule)':<24} {'worker':<20} requests")
        for (rule, server), n in sorted(table.items()):
            print(f"  {rule:<24} {server:<20} {n}")
        rooms = collections.defaultdict(set)
        for e in entries:
            room = checks.room_of(e["path"])
            if room and e["backend"] == "synapse_room":
                rooms[room].add(e["server"])
        per = collections.Counter(next(iter(s)) for s in rooms.values() if len(s) == 1)
        print("\nRooms (every request of a room, in several encodings): rooms per room worker")
        for w, n in sorted(per.items()):
            print(f"  {w:<10} {n} rooms")
        print(f"  rooms split over several workers: {sum(1 for s in rooms.values() if len(s) > 1)}")
        print(f"\nPoint a Matrix client at it:\n"
              f"  homeserver URL  http://127.0.0.1:{stack.port}\n"
              f"  user            {user['user_id']}   password demo-pass\n"
              f"  e.g.  curl -s http://127.0.0.1:{stack.port}/_matrix/client/versions\n"
              f"HAProxy stats:    http://127.0.0.1:{stack.stats_port}/stats\n"
              f"Agent metrics:    http://127.0.0.1:{stack.agent_metrics_port}/metrics\n"
              f"Logs:             {stack.dir / 'logs'}")
        if once:
            return 0
        print("demo: running; Ctrl-C stops everything it started.", flush=True)
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stack.close()
        print("demo: stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
