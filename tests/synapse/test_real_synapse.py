"""Real Synapse 1.160 (13 processes), real HAProxy 3.2, the real agent, a real Matrix client.

Run through tests/synapse/run (ctest label `synapse`): it builds the sid chroot if needed and
enters a private mount namespace."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
import unittest

import checks
import liveload
import realstack
import scenario


class RealSynapse(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = realstack.RealStack()
        cls.stack.__enter__()
        s = cls.stack
        print(f"\nversions: {s.versions}", flush=True)
        print("start-up (s): postgres {postgres:.1f}, main {main:.1f}, 12 workers in parallel "
              "{workers:.1f}, whole stack {total:.1f}".format(**s.timings), flush=True)

    @classmethod
    def tearDownClass(cls):
        s = cls.stack
        rss = s.rss_table()
        print("\nRSS after the tests (MiB): " + ", ".join(
            f"{k} {v / 1024:.0f}" for k, v in rss.items() if v), flush=True)
        s.__exit__(None, None, None)

    def test_1_client_scenario(self):
        """Every request kind of a real client lands on the process the agent names, and that
        process serves it (no 5xx, no M_UNRECOGNIZED); a room stays on one room worker in
        every encoding; what is written is read back."""
        s = self.stack
        since = time.time()
        facts = asyncio.run(scenario.run(s, prefix="c1"))
        time.sleep(0.5)  # HAProxy logs a request when its stream ends
        entries = checks.client_entries(s, since)
        table, rooms = checks.check_log(self, s, entries)
        checks.print_table("request kinds (rule) x process x status, agent answering", table)
        workers = {next(iter(v)) for v in rooms.values()}
        print(f"{len(rooms)} rooms, each on one room worker; room workers used: {sorted(workers)}")
        self.assertEqual(len(facts["rooms"]), 6)
        self.assertTrue(all(r in rooms for r in facts["rooms"]))

    def test_2_fallback_agent_killed(self):
        """The same scenario with the agent SIGKILLed a moment into it: HAProxy's fallback serves
        everything, still on the right processes, no 5xx; the agent comes back afterwards."""
        s = self.stack
        since = time.time()

        async def kill_soon():
            await asyncio.sleep(1.5)
            s.agent.signal(signal.SIGKILL)

        async def both():
            killer = asyncio.ensure_future(kill_soon())
            facts = await scenario.run(s, prefix="k1")
            await killer
            return facts

        try:
            asyncio.run(both())
        finally:
            s.agent.stop()
            s.procs.remove(s.agent)
            s.start_agent()
        time.sleep(0.5)
        entries = checks.client_entries(s, since)
        answered = [e for e in entries if e["srv"] not in ("", "-")]
        fallback = [e for e in entries if e["srv"] in ("", "-")]
        print(f"\nagent killed mid-run: {len(answered)} requests answered by the agent before, "
              f"{len(fallback)} by the fallback rules after")
        self.assertGreater(len(fallback), 50, "the agent was not killed early enough")
        # Rooms may switch once, from the agent's choice to the fallback's hash, at the kill;
        # after it each room must stay on one worker, and every other check holds.
        table, rooms = checks.check_log(self, s, fallback, agent_answered=False)
        checks.print_table("request kinds x process x status, agent SIGKILLed (fallback)", table)
        realstack.wait_for(s.backends_up, timeout=20, what="agent UP again in HAProxy")

    def test_3_federation(self):
        """A second homeserver federates through HAProxy's TLS bind: joins both ways, messages,
        backfill, typing, invites, profile, keys, media. Every inbound federation request lands
        where the route table says; a room's federation requests on the room's own worker;
        the federation reader pool keyed by the sending server."""
        s = self.stack
        peer = realstack.PeerHomeserver(s).start()
        print(f"\npeer {peer.server_name} started in {peer.startup:.1f} s", flush=True)
        since = time.time()
        facts = asyncio.run(scenario.federate(s, peer))
        time.sleep(1.0)
        entries = checks.client_entries(s, since)
        fed = [e for e in entries if e["path"].startswith(("/_matrix/federation/", "/_matrix/key/"))]
        self.assertGreater(len(fed), 10, "too few federation requests reached HAProxy")
        checks.check_log(self, s, entries)
        fed_table, _ = checks.check_log(self, s, fed)
        checks.print_table("inbound federation through HAProxy: rule x process x status",
                           fed_table)
        r1 = facts["rooms"][0]
        kinds = {checks.federation_kind(e["path"]) for e in fed}
        for want in ("send", "make_join", "send_join", "backfill", "key", "media", "query",
                     "invite", "make_leave", "send_leave"):
            self.assertIn(want, kinds, f"no federation {want} request reached the stack")
        r1_servers = {e["server"] for e in entries
                      if checks.room_of(e["path"]) == r1 and e["backend"] == "synapse_room"}
        self.assertEqual(len(r1_servers), 1, f"room {r1}: client and federation requests on "
                                             f"{sorted(r1_servers)}")
        reader = [e for e in fed if e["backend"] == "synapse_federation_reader"]
        self.assertTrue(reader, "no request reached the federation reader pool")
        self.assertEqual({e["key"] for e in reader} - {"-"} and len({e["key"] for e in reader}),
                         1, "federation reader requests of one origin carried several keys")
        print(f"messages: stack->peer {facts['stack_to_peer_s']:.2f} s, peer->stack "
              f"{facts['peer_to_stack_s']:.2f} s; backfilled {facts['backfilled']} old events; "
              f"room {r1} on {sorted(r1_servers)}; federation kinds {sorted(kinds)}")

    def test_4_live_load_and_dashboard(self):
        """A room worker's reactor stalls (SIGSTOP) under steady traffic: the agent's view of
        it changes within a few scrapes, new rooms avoid it, and after SIGCONT it takes new rooms
        again. Meanwhile a real Prometheus scrapes the workers, HAProxy and the agent with the
        compose stack's config, and every dashboard panel's query returns series."""
        s = self.stack
        prom = liveload.Prometheus(s).start()
        user = s.register("load1")
        token = user["access_token"]
        raw = scenario.Raw(s.port, token)
        rooms = [raw.call("POST", "/_matrix/client/v3/createRoom", {"name": f"load {i}"})[1]
                 ["room_id"] for i in range(16)]
        stall = float(os.environ.get("SPOA_STALL_SECONDS", "15"))
        with liveload.Background(s, token), liveload.RoomTraffic(s, token, rooms) as traffic:
            time.sleep(4)
            per = liveload.rooms_per_worker(s)
            victim = max(sorted(per), key=lambda w: per[w])
            held = [r for r in rooms if {srv for _, srv in liveload.served_by(s, r)} == {victim}]
            during = liveload.keys_first_on(s, victim, 6, "stall")
            after = liveload.keys_first_on(s, victim, 6, "back")
            with liveload.Timeline(s, victim) as tl:
                time.sleep(2)
                t_stop = time.monotonic() - tl.t0
                s.synapse[victim].signal(signal.SIGSTOP)
                time.sleep(2.5)
                t_probe = time.monotonic() - tl.t0
                during_status = [liveload.probe(s, token, r) for r in during]
                time.sleep(max(0.0, stall - (time.monotonic() - tl.t0 - t_stop)))
                s.synapse[victim].signal(signal.SIGCONT)
                t_cont = time.monotonic() - tl.t0
                realstack.wait_for(lambda: s.worker_view(victim)["state"] == "healthy",
                                   timeout=60, what=f"{victim} healthy again in the agent")
                t_healthy = time.monotonic() - tl.t0
                after_status = [liveload.probe(s, token, r) for r in after]
                time.sleep(1)
            liveload.bad_spop_peer(s)
            time.sleep(4)  # Prometheus: a few more scrapes of the end state
            rows, td, values = prom.evaluate_dashboard()  # while traffic still flows
        print(f"\nlive load: {victim} (held {len(held)} of {len(rooms)} rooms) SIGSTOPped at "
              f"+{t_stop:.1f} s for {stall:.0f} s, SIGCONT at +{t_cont:.1f} s, healthy in the "
              f"agent at +{t_healthy:.1f} s")
        print("| t (s) | agent state | cpu | tick (s) | capacity | HAProxy | rooms per worker |")
        print("|---|---|---|---|---|---|---|")
        for t, view, hap, rpw in tl.changes():
            print(f"| {t:.1f} | {view.get('state')} | {view.get('cpu_cores', float('nan')):.2f} | "
                  f"{view.get('reactor_lag_seconds', float('nan')):.4f} | "
                  f"{view.get('capacity', float('nan')):.2f} | {hap} | "
                  f"{' '.join(f'{k}={v}' for k, v in sorted(rpw.items()))} |")
        changed = tl.first(lambda v, h, r: v.get("state") != "healthy", after=t_stop)
        self.assertIsNotNone(changed, "the agent never noticed the stalled worker")
        print(f"agent noticed the stall after {changed - t_stop:.1f} s")
        self.assertLessEqual(changed - t_stop, 3.0, "the agent's view changed too late")
        on_victim = [r for r in during if any(srv == victim for _, srv in liveload.served_by(s, r))]
        print(f"new rooms probed at +{t_probe - t_stop:.1f} s into the stall: "
              f"{len(during) - len(on_victim)} of {len(during)} placed elsewhere "
              f"(statuses {during_status})")
        self.assertEqual(on_victim, [], "new rooms placed on the stalled worker")
        back = [r for r in after if {srv for _, srv in liveload.served_by(s, r)} == {victim}]
        print(f"after recovery: {len(back)} of {len(after)} new rooms whose first choice is "
              f"{victim} placed on it (statuses {after_status})")
        self.assertEqual(len(back), len(after), "the recovered worker takes no new rooms")
        errors = liveload.summarize(traffic.records, tl.t0)
        print("client outcomes per second from the timeline's start: " +
              ", ".join(f"+{k}:{dict(v)}" for k, v in errors.items() if set(v) - {"ok"}))

        print("\n" + td.table(rows), flush=True)
        self.assertEqual(td.failures(rows, without_shared=True), [], "dashboard panels whose query returned no series "
                                                "against real Synapse")
        self.assertEqual(values["worker"].strip("()").split("|"),
                         sorted(w["name"] for w in s.topology),
                         "the $worker variable lists every real worker")


if __name__ == "__main__":
    unittest.main()
