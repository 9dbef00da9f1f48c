"""Faults with HAProxy in the loop (issue 9, part 3): real HAProxy, the real agent, simulated
workers, all on free loopback ports.

- The agent SIGKILLed under load: HAProxy keeps answering (its fallback rules); the restarted
  agent restores affinity from its periodic snapshot, so rooms that had been placed away from
  their first rendezvous choice return to the worker they had, not to that first choice.
- A worker whose /metrics answers garbage or a 50 MB body: its scrapes fail, its load is
  `unknown` and it keeps its rooms (it answered: it is alive). A worker whose /metrics hangs
  looks stopped (issue 18): stalled, then down, and only its rooms move; the other workers stay
  healthy and keep their rooms, and requests keep being answered.
- SIGHUP with a broken config keeps the running one and says why; SIGHUP with a good config
  applies it without dropping HAProxy's SPOP connections.
- Secrets: with a stand-in agent that captures HAProxy's SPOP frames, no access token (nor the
  secret part of a syt_ token) ever leaves HAProxy.

No assertion depends on timing: every wait is a poll with a deadline."""

import collections
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import unittest

import spop_peer as sp
from harness import AGENT, Stack, Traffic, agent_metrics, wait_for, worker_state

ROOM_WORKERS = ["room1", "room2", "room3", "room4"]
FAST_LOAD = """load:
  scrape_interval: 300ms
  scrape_timeout: 250ms
  down_after_failures: 2
  stale_after: 5s
"""


def room_path(room):
    return f"/_matrix/client/v3/rooms/{room}/messages"


def traffic_paths(rooms):
    return [room_path(r) for r in rooms] + [
        "/_matrix/client/versions", "/_matrix/client/v3/sync",
        "/_matrix/media/v3/download/example.org/abc"]


def place(stack, rooms):
    """Each room's worker as HAProxy served it (one request per room)."""
    out = {}
    for room in rooms:
        status, worker = stack.request("GET", room_path(room))
        assert status == 200, (room, status)
        out[room] = worker
    return out


def first_choices(stack, rooms):
    """Each room's first rendezvous choice (offline `route`: every worker healthy, no load)."""
    lines = "".join(f"GET {room_path(r)}\n" for r in rooms)
    out = subprocess.run([str(AGENT), "route", "--config", str(stack.agent_config), "-"],
                         input=lines, capture_output=True, text=True, timeout=60, check=True)
    decisions = [json.loads(line) for line in out.stdout.splitlines()]
    return {r: d["placement"]["ranking"][0]["worker"] for r, d in zip(rooms, decisions)}


def scrapes_failed(stack, worker):
    return agent_metrics(stack).get(
        ("synapse_spoa_worker_scrapes_total", frozenset({("worker", worker), ("result", "failed")})),
        0.0)


def spop_connections(stack):
    return agent_metrics(stack).get(("synapse_spoa_spop_connections", frozenset()), 0.0)


class ContentLengthBomb:
    """An HTTP server that answers every request with a 200 announcing `length` body bytes, sends
    1 KiB of them and then waits for the client to give up."""

    def __init__(self, length):
        self.length = length
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop_flag.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            threading.Thread(target=self.answer, args=(conn,), daemon=True).start()

    def answer(self, conn):
        try:
            conn.settimeout(10)
            conn.recv(65536)
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                         b"Content-Length: " + str(self.length).encode() + b"\r\n\r\n" +
                         b"# x\n" * 256)
            conn.recv(1)  # until the scraper closes
        except OSError:
            pass
        finally:
            conn.close()

    def close(self):
        self.stop_flag.set()
        self.listener.close()
        self.thread.join(timeout=5)


def state_or_none(stack, worker):
    try:
        return worker_state(stack, worker)
    except OSError:  # the agent is gone (or going)
        return None


def agent_is_asan():
    with open(AGENT, "rb") as f:
        return b"__asan_init" in f.read()


class StackCase(unittest.TestCase):
    def make_stack(self, extra):
        stack = Stack()
        # Paths inside the stack's own temporary directory are known only now.
        stack.agent_extra = extra.format(dir=stack.dir)
        stack.start()
        self.addCleanup(stack.close)
        self.stack = stack
        return stack

    def run(self, result=None):
        # Show the children's logs when a test fails.
        outcome = super().run(result)
        if result is not None and not result.wasSuccessful() and getattr(self, "stack", None):
            try:
                self.stack.dump_logs()
            except Exception:  # the stack may already be closed
                pass
        return outcome

    def wait_rooms_healthy(self, stack):
        wait_for(stack.agent_up, what="agent UP in HAProxy")
        wait_for(lambda: all(worker_state(stack, w) == "healthy" for w in ROOM_WORKERS),
                 timeout=30, what="room workers healthy in the agent's view")


class AgentKilled(StackCase):
    def test_sigkill_under_load_fallback_then_snapshot_restores_affinity(self):
        stack = self.make_stack(FAST_LOAD + """placement:
  hash_key: faults-test
  snapshot: {dir}/affinity.snapshot
  snapshot_interval: 300ms
""")
        snapshot = stack.dir / "affinity.snapshot"
        self.wait_rooms_healthy(stack)
        rooms = [f"!kill{i}:example.org" for i in range(60)]
        first = first_choices(stack, rooms)
        displaced = [r for r in rooms if first[r] == "room2"]
        self.assertGreaterEqual(len(displaced), 5, "too few rooms rank room2 first to test with")

        # room2 is down while the rooms are placed: its rooms go to their second choice.
        self.assertEqual(stack.control("room2", "down"), 200)
        wait_for(lambda: worker_state(stack, "room2") == "down", timeout=30,
                 what="room2 down in the agent's view")
        wait_for(lambda: stack.server_status("synapse_room", "room2").startswith("DOWN"),
                 timeout=30, what="HAProxy sees room2 DOWN")
        placed = place(stack, rooms)
        self.assertNotIn("room2", placed.values())
        placed_at = time.time()
        # A periodic save that started after the last placement.
        wait_for(lambda: snapshot.exists() and snapshot.stat().st_mtime > placed_at + 0.05,
                 timeout=30, what="a periodic snapshot after the placements")

        with Traffic(stack, traffic_paths(rooms)) as traffic:
            wait_for(lambda: traffic.answered() > 50, what="traffic flowing")
            stack.agent.kill(signal.SIGKILL)
            killed_at = traffic.answered()
            # HAProxy answers on its own: its fallback rules route while the agent is gone.
            wait_for(lambda: traffic.answered() > killed_at + 200, timeout=60,
                     what="200 requests answered with the agent dead")
            for room in rooms[:10]:
                status, worker = stack.request("GET", room_path(room))
                self.assertEqual(status, 200)
                self.assertIn(worker, ROOM_WORKERS)

            # room2 comes back; a fresh agent without the snapshot would now send the displaced
            # rooms back to it, their first rendezvous choice.
            self.assertEqual(stack.control("room2", "normal"), 200)
            wait_for(lambda: stack.server_status("synapse_room", "room2") == "UP", timeout=30,
                     what="HAProxy sees room2 UP again")
            stack.start_agent()
            wait_for(stack.agent_up, timeout=30, what="restarted agent UP in HAProxy")
            wait_for(lambda: worker_state(stack, "room2") == "healthy", timeout=30,
                     what="room2 healthy in the restarted agent's view")
            self.assertRegex(stack.agent.output(), r"affinity snapshot .*: restored [1-9]\d* keys")
            after = place(stack, rooms)
        self.assertEqual(sum(traffic.errors.values()), 0, f"errors: {dict(traffic.errors)}")
        moved = {r: (placed[r], after[r]) for r in rooms if after[r] != placed[r]}
        self.assertEqual(moved, {}, "rooms must return to the worker they had before the kill")
        # ... including those whose first choice (room2) is healthy again.
        self.assertTrue(all(after[r] != "room2" for r in displaced))


class MetricsFaults(StackCase):
    def test_hung_garbage_and_huge_metrics(self):
        stack = self.make_stack(FAST_LOAD + "placement:\n  hash_key: faults-test\n")
        self.wait_rooms_healthy(stack)
        rooms = [f"!metrics{i}:example.org" for i in range(80)]
        before = place(stack, rooms)
        faulty = {"room2": "garbage", "room3": "huge"}
        failed_before = {w: scrapes_failed(stack, w) for w in list(faulty) + ["room1"]}
        with Traffic(stack, traffic_paths(rooms)) as traffic:
            for worker, mode in faulty.items():
                self.assertEqual(stack.control(worker, mode), 200)
            self.assertEqual(stack.control("room1", "hung"), 200)
            for worker, mode in faulty.items():
                wait_for(lambda w=worker: worker_state(stack, w) == "unknown", timeout=30,
                         what=f"{worker} ({mode} metrics) unknown in the agent's view")
                self.assertGreaterEqual(scrapes_failed(stack, worker) - failed_before[worker], 1)
            # Metrics that never answer are what a stopped process shows (issue 18): stalled
            # at the first timeout, down after two (load.down_after_failures here).
            wait_for(lambda: worker_state(stack, "room1") == "down", timeout=30,
                     what="room1 (hung metrics) down in the agent's view")
            self.assertGreaterEqual(scrapes_failed(stack, "room1") - failed_before["room1"], 2)
            # Bad metrics say nothing about the worker's health: neither is taken down, their
            # rooms stay where they were, and the worker with good metrics is unaffected.
            for worker in faulty:
                self.assertNotEqual(worker_state(stack, worker), "down")
            self.assertEqual(worker_state(stack, "room4"), "healthy")
            during = place(stack, rooms)
            self.assertEqual({r: w for r, w in during.items() if before[r] != "room1"},
                             {r: w for r, w in before.items() if before[r] != "room1"})
            self.assertNotIn("room1", during.values())
            new_rooms = place(stack, [f"!new{i}:example.org" for i in range(20)])
            self.assertTrue(set(new_rooms.values()) <= set(ROOM_WORKERS) - {"room1"})
            for worker in list(faulty) + ["room1"]:
                self.assertEqual(stack.control(worker, "normal"), 200)
            for worker in list(faulty) + ["room1"]:
                wait_for(lambda w=worker: worker_state(stack, w) == "healthy", timeout=30,
                         what=f"{worker} healthy again")
        self.assertEqual(sum(traffic.errors.values()), 0, f"errors: {dict(traffic.errors)}")

    # Regression: Beast 1.74's parser reserved an announced Content-Length before checking
    # body_limit (a 50 MB body cost ~100 MB of RSS; Content-Length: 2^40 was std::bad_alloc).
    def test_metrics_body_never_held_beyond_max_body_bytes(self):
        stack = Stack(agent_extra=FAST_LOAD + "placement:\n  hash_key: faults-test\n")
        self.addCleanup(stack.close)
        self.stack = stack
        stack.start(agent=False)
        bomb = ContentLengthBomb(2**40)
        self.addCleanup(bomb.close)
        # room1's metrics URL now points at a server that announces a 1 TiB body.
        config = stack.agent_config.read_text()
        stack.agent_config.write_text(config.replace(
            f"127.0.0.1:{stack.metrics_port['room1']}/metrics", f"127.0.0.1:{bomb.port}/metrics"))
        stack.start_agent()
        self.assertEqual(stack.control("room3", "huge"), 200)
        for worker in ("room1", "room3"):
            wait_for(lambda w=worker: not stack.agent.alive() or state_or_none(stack, w) == "unknown",
                     timeout=30, what=f"{worker} unknown in the agent's view")
            self.assertTrue(stack.agent.alive(), "the agent died scraping a huge metrics body")
        if not agent_is_asan():  # ASan's quarantine and shadow memory inflate RSS on their own
            rss = []
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:  # several huge scrapes (300 ms interval)
                with open(f"/proc/{stack.agent.pid}/status") as f:
                    rss.append(int(next(l.split()[1] for l in f if l.startswith("VmRSS"))))
                time.sleep(0.1)
            # load.max_body_bytes is 4 MiB: a scrape may hold that much, never the 50 MB body.
            self.assertLess(max(rss), 48 * 1024, "agent RSS while a worker sends 50 MB")
        self.assertEqual(stack.request("GET", room_path("!bomb:example.org"))[0], 200)


class Reload(StackCase):
    def test_broken_config_is_refused_and_good_config_applies_without_dropping(self):
        stack = self.make_stack("placement:\n  hash_key: reload-test\n")
        wait_for(stack.agent_up, what="agent UP in HAProxy")
        good = stack.agent_config.read_text()
        # A SPOP connection of our own, held across both reloads: it must stay open and follow
        # the new config.
        peer = sp.Peer(stack.agent_port, timeout=10)
        self.addCleanup(peer.close)
        self.assertEqual(peer.handshake().type, sp.AGENT_HELLO)
        media = "/_matrix/media/v3/download/example.org/abc"

        def backend_of(sid, path):
            peer.send(sp.route(sid, 1, "GET", path))
            f = peer.recv_frame()
            self.assertIsNotNone(f, "the agent closed a SPOP connection on reload")
            self.assertEqual((f.type, f.sid), (sp.ACK, sid))
            return f.vars()["backend"]

        self.assertEqual(backend_of(1, media), "synapse_media")
        with Traffic(stack, traffic_paths([f"!reload{i}:example.org" for i in range(20)])) as traffic:
            wait_for(lambda: spop_connections(stack) >= 2 and traffic.answered() > 50,
                     what="HAProxy connected to the agent")

            # Broken: refused with the file, line and reason; the old config keeps serving.
            stack.agent_config.write_text(good.replace(
                "hash_key: reload-test", "hash_key: reload-test\n  balance_factor: 0.5"))
            os.kill(stack.agent.pid, signal.SIGHUP)
            wait_for(lambda: "reload refused, keeping the running config" in stack.agent.output(),
                     what="the refusal in the agent log")
            refusal = next(l for l in stack.agent.output().splitlines() if "reload refused" in l)
            self.assertIn(str(stack.agent_config), refusal)
            self.assertIn("balance_factor", refusal)
            self.assertEqual(backend_of(2, media), "synapse_media")

            # Good: media moves to the main pool by a route override, applied in place.
            stack.agent_config.write_text(good + """routes:
  prepend:
    - {name: media_on_main, pattern: "/_matrix/media/**", pool: main}
""")
            os.kill(stack.agent.pid, signal.SIGHUP)
            wait_for(lambda: f"reloaded {stack.agent_config}" in stack.agent.output(),
                     what="the reload in the agent log")
            self.assertEqual(backend_of(3, media), "synapse_main")
            status, worker = stack.request("GET", media)
            self.assertEqual((status, worker), (200, "main"))
            self.assertTrue(stack.agent.alive())
        self.assertEqual(sum(traffic.errors.values()), 0, f"errors: {dict(traffic.errors)}")
        # Nothing was closed for a protocol error or a timeout by the reloads (0 = normal,
        # 1 = closed by the peer, e.g. HAProxy's health checks).
        closes = {dict(labels).get("status"): v for (name, labels), v in agent_metrics(stack).items()
                  if name == "synapse_spoa_spop_closes_total"}
        self.assertEqual({s: v for s, v in closes.items() if s not in ("0", "1") and v}, {})


class CapturingAgent:
    """A stand-in SPOP agent that records every frame HAProxy sends and ACKs each NOTIFY with
    backend synapse_main: what HAProxy puts on the wire is exactly what it captured.

    mode (how each NOTIFY is answered; HELLO, health checks and DISCONNECT are always right, so
    HAProxy's SPOP check keeps the agent UP):
      ack         set-var backend synapse_main
      slow        the same ACK, but SLOW_S later: past the SPOE `timeout processing` (200 ms)
      disconnect  an agent DISCONNECT with an error status (3, invalid frame), then close
      garbage     an ACK whose action is cut short (set-var with no variable), i.e. an agent
                  that sends a broken answer"""

    SLOW_S = 1.0

    def __init__(self, port, mode="ack"):
        self.mode = mode
        self.listener = socket.create_server(("127.0.0.1", port))
        self.listener.settimeout(0.2)
        self.captured = bytearray()
        self.notifies = 0
        self.lock = threading.Lock()
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop_flag.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            except OSError:  # closed by close()
                return
            threading.Thread(target=self.session, args=(conn,), daemon=True).start()

    def session(self, conn):
        peer = sp.Peer.__new__(sp.Peer)
        peer.sock, peer.buf = conn, b""
        conn.settimeout(30)
        try:
            while not self.stop_flag.is_set():
                f = peer.recv_frame()
                if f is None:
                    return
                with self.lock:
                    self.captured += f.payload
                if f.type == sp.HAPROXY_HELLO:
                    conn.sendall(sp.frame(sp.AGENT_HELLO, sp.kv([
                        ("version", "2.0"), ("max-frame-size", f.kv()["max-frame-size"]),
                        ("capabilities", "pipelining")])))
                    if f.kv().get("healthcheck"):
                        return
                elif f.type == sp.NOTIFY:
                    with self.lock:
                        self.notifies += 1
                    # set-var(txn, "backend", "synapse_main")
                    action = bytes([1, 3, 2]) + sp.s("backend") + sp.typed("synapse_main")
                    if self.mode == "slow":
                        threading.Timer(self.SLOW_S, self.send_quietly,
                                        (conn, sp.frame(sp.ACK, action, f.sid, f.fid))).start()
                    elif self.mode == "disconnect":
                        conn.sendall(sp.frame(sp.AGENT_DISCONNECT, sp.kv([
                            ("status-code", 3), ("message", "stand-in agent: refusing")])))
                        return
                    elif self.mode == "garbage":
                        conn.sendall(sp.frame(sp.ACK, bytes([1, 3, 2]), f.sid, f.fid))
                    else:
                        conn.sendall(sp.frame(sp.ACK, action, f.sid, f.fid))
                elif f.type == sp.HAPROXY_DISCONNECT:
                    conn.sendall(sp.frame(sp.AGENT_DISCONNECT,
                                          sp.kv([("status-code", 0), ("message", "")])))
                    return
        except OSError:
            return
        finally:
            conn.close()

    @staticmethod
    def send_quietly(conn, data):
        try:
            conn.sendall(data)
        except OSError:  # HAProxy gave up on the connection meanwhile
            pass

    def close(self):
        self.stop_flag.set()
        self.listener.close()
        self.thread.join(timeout=5)


# Requests whose fallback class is unambiguous: (method, path, headers, worker or set of workers).
FALLBACK_CASES = [
    ("GET", "/_matrix/client/v3/sync?since=s1&timeout=0", {}, "client_sync1"),
    ("PUT", "/_matrix/client/v3/rooms/!f:example.org/typing/%40a%3Aexample.org", {}, "client_sync1"),
    ("GET", "/_matrix/client/v1/media/download/example.org/AbC", {}, "media1"),
    ("PUT", "/_matrix/federation/v1/send/17", {"Authorization": 'X-Matrix origin="o.org",key="k",sig="s"'},
     "federation_reader1"),
    ("GET", "/_matrix/client/versions", {}, "main"),
    ("POST", "/_matrix/client/v3/rooms/!f:example.org/forget", {}, "main"),
    ("GET", "/_matrix/client/v3/rooms/!f:example.org/messages", {}, set(ROOM_WORKERS)),
    ("GET", "/_matrix/federation/v1/state_ids/%21f%3Aexample.org", {}, set(ROOM_WORKERS)),
]
SPOE_ERR = re.compile(r" (?P<method>[A-Z]+) (?P<path>\S+) srv=\S* pool=\S* key=\S* "
                        r"spoe_ms=(?P<ms>\S*) spoe_err=(?P<err>\S*)$")


class AgentMisbehaves(unittest.TestCase):
    """The fallback when the agent is up (HAProxy's SPOP check passes) but fails requests: too
    slow, answering with an error DISCONNECT, or with a broken ACK. Every request is still
    answered 200 by the static rules' worker (one room on one worker), within about the SPOE
    `timeout processing` rather than the agent's delay, and HAProxy's log carries the exact
    txn.synapse.error (option set-on-error) each failure sets — the same on 2.6 and 3.2:
      slow        1    (SPOE timeout: `timeout processing` expired)
      disconnect  259  (256 + the agent's DISCONNECT status-code, 3)
      garbage     -    (no error: HAProxy stops decoding actions at the broken one and takes the
                        ACK as an answer that set nothing, so only the missing
                        txn.synapse.backend sends the request to the fallback)"""

    def run_mode(self, mode, want_err):
        os.environ["SPOA_HAPROXY_LOG_ALL"] = "1"
        self.addCleanup(os.environ.pop, "SPOA_HAPROXY_LOG_ALL", None)
        stack = Stack()
        self.addCleanup(stack.close)
        stack.start(agent=False)
        agent = CapturingAgent(stack.agent_port, mode=mode)
        self.addCleanup(agent.close)
        wait_for(stack.agent_up, timeout=30, what=f"stand-in agent ({mode}) UP in HAProxy")
        rooms, slowest = set(), 0.0
        for _ in range(3):
            for method, path, headers, want in FALLBACK_CASES:
                t0 = time.monotonic()
                status, worker = stack.request(method, path, headers)
                slowest = max(slowest, time.monotonic() - t0)
                self.assertEqual(status, 200, f"{mode}: {method} {path}")
                if isinstance(want, set):
                    self.assertIn(worker, want, f"{mode}: {method} {path}")
                    if "/rooms/" in path:
                        rooms.add(worker)
                else:
                    self.assertEqual(worker, want, f"{mode}: {method} {path}")
        self.assertEqual(len(rooms), 1, f"{mode}: one room split over {rooms}")
        self.assertGreaterEqual(agent.notifies, 1, f"{mode}: HAProxy never asked the agent")
        # Not waiting for the agent: at most the processing timeout plus scheduling (the slow
        # agent answers after 1 s).
        self.assertLess(slowest, 0.9, f"{mode}: a request waited {slowest:.2f} s")
        errs = collections.Counter()

        def logged():
            errs.clear()
            for line in stack.haproxy.output().splitlines():
                m = SPOE_ERR.search(line)
                if m and "/_matrix/" in m.group("path"):
                    errs[m.group("err")] += 1
            return sum(errs.values()) >= 3 * len(FALLBACK_CASES)

        wait_for(logged, timeout=10, what="HAProxy's log line of every request")
        print(f"{mode}: slowest request {slowest * 1000:.0f} ms, {agent.notifies} NOTIFYs seen, "
              f"spoe_err values logged {dict(errs)}")
        if mode == "disconnect":
            # Each error DISCONNECT closes HAProxy's connection to the agent; a request that comes
            # while HAProxy has none open waits for a new one and can hit the processing timeout
            # (error 1) instead, more often on a loaded machine (seen 7 of 24 on 3.2). Either way
            # it was routed by the fallback (asserted above); most must carry the agent's error.
            self.assertLessEqual(set(errs), {want_err, "1"}, f"{mode}: logged {dict(errs)}")
            self.assertGreater(errs[want_err], errs["1"], f"{mode}: logged {dict(errs)}")
        else:
            self.assertEqual(set(errs), {want_err},
                             f"{mode}: txn.synapse.error logged {dict(errs)}")

    def test_slow_agent(self):
        self.run_mode("slow", "1")

    def test_agent_error_disconnect(self):
        self.run_mode("disconnect", "259")

    def test_agent_broken_ack(self):
        self.run_mode("garbage", "-")


class Secrets(unittest.TestCase):
    def test_access_tokens_never_leave_haproxy(self):
        # HAProxy derives `user` from a token (the localpart inside a syt_ token, else a hash of
        # the token) and unsets the token before asking the agent (haproxy.cfg). Capture what it
        # sends: neither the secret part of a syt_ token nor an opaque token may appear.
        stack = Stack()
        self.addCleanup(stack.close)
        stack.start(agent=False)
        agent = CapturingAgent(stack.agent_port)
        self.addCleanup(agent.close)
        wait_for(stack.agent_up, timeout=30, what="stand-in agent UP in HAProxy")
        syt_secret = "SeCrEtPaRtOfTheToken0123"
        opaque = "opaque-token-6f1d2c9e8b7a"
        cases = [
            ("/_matrix/client/v3/sync", {"Authorization": f"Bearer syt_YWxpY2U_{syt_secret}_1a2b3c"}),
            ("/_matrix/client/v3/sync", {"Authorization": f"Bearer {opaque}"}),
            ("/_matrix/client/v3/rooms/!s:example.org/messages",
             {"Authorization": f"Bearer {opaque}"}),
            ("/_matrix/federation/v1/send/1",
             {"Authorization": f'X-Matrix origin="o.example",key="ed25519:a",sig="{opaque}"'}),
        ]
        for path, headers in cases:
            status, worker = stack.request("GET", path, headers)
            self.assertEqual((status, worker), (200, "main"), path)
        self.assertGreaterEqual(agent.notifies, len(cases))
        with agent.lock:
            wire = bytes(agent.captured)
        self.assertIn(b"YWxpY2U", wire, "the syt_ localpart is what identifies the user")
        self.assertIn(b"o.example", wire, "the X-Matrix origin is sent")
        self.assertNotIn(syt_secret.encode(), wire)
        self.assertNotIn(opaque.encode(), wire)
        self.assertNotIn(b"Bearer", wire)


if __name__ == "__main__":
    unittest.main(verbosity=2)
