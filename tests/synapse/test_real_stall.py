"""Stalled workers on real Synapse (issue 18): a room worker frozen with SIGSTOP for 15 s and for
30 s under steady client traffic (12 requests/s over 20 rooms, /messages and send, 10 s client
timeout). Targets:
  - no new room placed on the frozen worker from 2 s into the stall;
  - the frozen worker's rooms served elsewhere from 5 s into the stall;
  - 0 rooms split: during a cycle each room is served by its home and at most one other worker;
  - afterwards its rooms come back home, and it does not end the cycle with 0 rooms.
Prints a timeline per cycle: agent state, HAProxy check state, client timeouts, requests of the
frozen worker's rooms served by it / elsewhere, new-room probes."""

from __future__ import annotations

import collections
import os
import signal
import time
import unittest

import checks
import liveload
import realstack
import scenario


class RealStall(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = realstack.RealStack(federation=False)
        cls.stack.__enter__()
        s = cls.stack
        print(f"\nversions: {s.versions}; stack up in {s.timings['total']:.1f} s", flush=True)
        user = s.register("stall")
        cls.token = user["access_token"]
        raw = scenario.Raw(s.port, cls.token)
        cls.rooms = [raw.call("POST", "/_matrix/client/v3/createRoom", {"name": f"stall {i}"})[1]
                     ["room_id"] for i in range(20)]

    @classmethod
    def tearDownClass(cls):
        cls.stack.__exit__(None, None, None)

    def cycle(self, stall, label):
        s = self.stack
        with liveload.RoomTraffic(s, self.token, self.rooms, rate=12.0, timeout=10.0) as traffic:
            time.sleep(6)
            now = time.time()
            recent = [e for e in checks.client_entries(s) if e["time"] > now - 5]
            home = {}
            for e in recent:
                room = checks.room_of(e["path"])
                if room in self.rooms and e["backend"] == "synapse_room":
                    home[room] = e["server"]
            per = collections.Counter(home.values())
            victim = max(sorted(per), key=lambda w: per[w])
            mine = sorted(r for r, w in home.items() if w == victim)
            probes = liveload.keys_first_on(s, victim, 12, f"{label}probe")
            with liveload.Timeline(s, victim, period=0.5) as tl:
                wall0 = time.time() - (time.monotonic() - tl.t0)
                time.sleep(1)
                t_stop = time.monotonic() - tl.t0
                s.synapse[victim].signal(signal.SIGSTOP)
                probe_times = []
                for i, key in enumerate(probes):
                    at = t_stop + 2.0 + i * stall / len(probes) * 0.8
                    time.sleep(max(0.0, at - (time.monotonic() - tl.t0)))
                    probe_times.append((time.monotonic() - tl.t0, key))
                    liveload.probe(s, self.token, key)
                time.sleep(max(0.0, t_stop + stall - (time.monotonic() - tl.t0)))
                s.synapse[victim].signal(signal.SIGCONT)
                t_cont = time.monotonic() - tl.t0
                # Recovery: the worker healthy again and its rooms back home.
                def back_home():
                    recent = [e for e in checks.client_entries(s)
                              if e["time"] > time.time() - 3]
                    last = {}
                    for e in recent:
                        room = checks.room_of(e["path"])
                        if room in mine and e["backend"] == "synapse_room":
                            last[room] = e["server"]
                    return len(mine) > 0 and all(last.get(r) == victim for r in mine)
                try:
                    realstack.wait_for(back_home, timeout=90, interval=1.0,
                                       what=f"{victim}'s rooms back home")
                    t_home = time.monotonic() - tl.t0
                except TimeoutError:
                    t_home = None
                time.sleep(2)
        entries = [e for e in checks.client_entries(s) if e["time"] >= wall0]
        rel = lambda e: e["time"] - wall0  # noqa: E731

        # New rooms placed on the frozen worker (probes from +2 s).
        placed = {}
        for e in entries:
            room = checks.room_of(e["path"])
            if room in dict((k, t) for t, k in probe_times):
                placed[room] = e["srv"] or e["server"]
        new_on_frozen = [k for t, k in probe_times if placed.get(k) == victim]
        # The frozen worker's rooms: requests received from +5 s into the stall until SIGCONT.
        late = [e for e in entries if checks.room_of(e["path"]) in mine and
                t_stop + 5.0 <= rel(e) < t_cont]
        late_on_victim = [e for e in late if e["server"] == victim]
        # Splits: a room on more than one worker besides its home during the cycle.
        servers = collections.defaultdict(set)
        for e in entries:
            room = checks.room_of(e["path"])
            if room in home and e["backend"] == "synapse_room" and rel(e) >= t_stop:
                servers[room].add(e["server"])
        split = {r: sorted(v) for r, v in servers.items() if len(v - {home[r]}) > 1}
        # Client side: timeouts and errors by second.
        outcomes = collections.defaultdict(collections.Counter)
        for t, room, method, status, _ in traffic.records:
            sec = int(t - tl.t0 - t_stop)
            outcomes[sec]["ok" if isinstance(status, int) and status < 500 else str(status)] += 1
        timeouts = sum(c.get("TimeoutError", 0) + c.get("timeout", 0)
                       for c in outcomes.values())
        final = liveload.rooms_per_worker(s)

        print(f"\n== {label}: {victim} (home of {len(mine)} of {len(self.rooms)} rooms) "
              f"SIGSTOPped {stall:.0f} s at +{t_stop:.1f} s, SIGCONT at +{t_cont:.1f} s, "
              f"rooms back home at " + (f"+{t_home:.1f} s" if t_home else "never (90 s)"))
        print("| t from stop (s) | agent | HAProxy | client ok / failed | "
              f"{victim}'s rooms served by it / elsewhere |")
        print("|---|---|---|---|---|")
        by_sec = collections.defaultdict(lambda: [0, 0])
        for e in entries:
            if checks.room_of(e["path"]) in mine:
                by_sec[int(rel(e) - t_stop)][0 if e["server"] == victim else 1] += 1
        states = {}
        for t, view, hap, rooms in tl.samples:
            states.setdefault(int(t - t_stop), (view.get("state"), hap))
        for sec in range(-1, int((t_home or t_cont + 10) - t_stop) + 3):
            st = states.get(sec, ("", ""))
            oc = outcomes.get(sec, collections.Counter())
            bad = sum(v for k, v in oc.items() if k != "ok")
            print(f"| {sec:+d} | {st[0]} | {st[1]} | {oc.get('ok', 0)} / {bad} | "
                  f"{by_sec[sec][0]} / {by_sec[sec][1]} |")
        print(f"client timeouts in the cycle: {timeouts}; new-room probes on {victim}: "
              f"{len(new_on_frozen)} of {len(probe_times)}; {victim}'s rooms' requests from +5 s "
              f"served by it: {len(late_on_victim)} of {len(late)}; rooms split: {len(split)}; "
              f"rooms per worker at the end: {final}")

        self.assertEqual(new_on_frozen, [], "new rooms placed on the frozen worker after 2 s")
        self.assertEqual([(e["method"], e["path"]) for e in late_on_victim], [],
                         "requests of the frozen worker's rooms sent to it after 5 s")
        self.assertEqual(split, {}, "rooms served by more than one other worker in the cycle")
        self.assertIsNotNone(t_home, f"{victim}'s rooms never came back home")
        self.assertGreater(final.get(victim, 0), 0, f"{victim} ends the cycle with 0 rooms")

    def test_stall_15s(self):
        self.cycle(float(os.environ.get("SPOA_STALL_SHORT", "15")), "stall 15 s")

    def test_stall_30s(self):
        self.cycle(float(os.environ.get("SPOA_STALL_LONG", "30")), "stall 30 s")


if __name__ == "__main__":
    unittest.main()
