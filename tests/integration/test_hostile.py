"""Hostile and broken SPOP peers against the real agent binary (issue 9, part 2).

What test_spop_peer.py already covers is not repeated here (bad version, missing HELLO keys,
frame-size bounds, garbage and zero lengths, NOTIFY before HELLO, non-FIN, truncated payloads,
overlong varints). This file adds: frame types the agent must skip or refuse, a second HELLO,
HELLO with non-zero ids, interlaced and duplicate stream/frame ids, the HELLO and idle timeouts
(also against slow drips), pipelining beyond spop.max_pipelined, a reader that never reads next
to one that does, a 5,000-connection burst against spop.max_connections, and spop.allow_from.

Each class starts its own agent with short timeouts on free loopback ports and stops it by PID.
Pacing sleeps below shape the hostile input (a slow drip is slow by definition); no assertion
depends on how long anything took — every wait is a poll with a generous deadline."""

import os
import pathlib
import resource
import select
import socket
import struct
import tempfile
import time
import unittest

import spop_peer as sp
from harness import AGENT, POOLS, Proc, agent_metrics, free_port, wait_for

ROUTE_PATH = "/_matrix/client/v3/rooms/!hostile:example.org/messages"

# Minimal topology: no metrics URLs, so nothing is scraped and every worker stays "unknown"
# (placed as healthy). Only the spop section differs between the agents of this file.
BASE_CONFIG = """listen: 127.0.0.1:{port}
metrics_listen: 127.0.0.1:{metrics_port}
{pools}
workers:
  - {{name: main, pool: main}}
  - {{name: client_sync1, pool: client_sync}}
  - {{name: room1, pool: room}}
  - {{name: room2, pool: room}}
  - {{name: federation_reader1, pool: federation_reader}}
  - {{name: media1, pool: media}}
placement:
  hash_key: hostile-test
spop:
{spop}
"""


class Agent:
    """synapse-spoa with a generated config, on free loopback ports."""

    def __init__(self, spop_yaml):
        self.tmp = tempfile.TemporaryDirectory(prefix="spoa-hostile-")
        self.dir = pathlib.Path(self.tmp.name)
        self.port, self.metrics_port = free_port(), free_port()
        self.agent_metrics_port = self.metrics_port  # what harness.agent_metrics() reads
        self.config = self.dir / "agent.yaml"
        self.config.write_text(BASE_CONFIG.format(port=self.port, metrics_port=self.metrics_port,
                                                  pools=POOLS, spop=spop_yaml))
        ready = self.dir / "agent.ready"
        self.proc = Proc("agent", [str(AGENT), "run", "--config", str(self.config),
                                   "--ready-file", str(ready)], self.dir)
        try:
            wait_for(lambda: ready.exists() or not self.proc.alive(), what="agent ready file")
            if not self.proc.alive():
                raise RuntimeError(f"agent did not start:\n{self.proc.output()}")
        except BaseException:
            self.stop()
            raise

    def open_fds(self):
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def metric(self, name, **labels):
        return agent_metrics(self).get((name, frozenset(labels.items())))

    def stop(self):
        rc = self.proc.stop()
        self.tmp.cleanup()
        return rc


def read_ready(sock, timeout):
    return bool(select.select([sock], [], [], timeout)[0])


class PeerMixin:
    agent = None

    def peer(self, timeout=10.0):
        p = sp.Peer(self.agent.port, timeout=timeout)
        self.addCleanup(p.close)
        return p

    def expect_disconnect(self, p, status):
        f = p.recv_frame()
        self.assertIsNotNone(f, "connection closed without AGENT-DISCONNECT")
        self.assertEqual(f.type, sp.AGENT_DISCONNECT, f"frame type {f.type}")
        kv = f.kv()
        self.assertEqual(kv["status-code"], status, kv)
        self.assertTrue(p.closed(), "agent kept the connection open after DISCONNECT")
        return kv

    def expect_ack(self, p, sid, fid):
        f = p.recv_frame()
        self.assertIsNotNone(f, "connection closed instead of an ACK")
        self.assertEqual((f.type, f.sid, f.fid), (sp.ACK, sid, fid))
        return f

    def assert_agent_serves(self):
        """A fresh connection still gets a HELLO and an ACK: the agent is alive and well."""
        p = self.peer()
        self.assertEqual(p.handshake().type, sp.AGENT_HELLO)
        p.send(sp.route(77, 1, "GET", ROUTE_PATH))
        self.assertEqual(self.expect_ack(p, 77, 1).vars()["backend"], "synapse_room")


class HostileFrames(PeerMixin, unittest.TestCase):
    """Protocol abuse on one connection: the right DISCONNECT (or none), only that connection."""

    @classmethod
    def setUpClass(cls):
        cls.agent = Agent("  hello_timeout: 1s\n  idle_timeout: 1500ms\n  max_pipelined: 4\n")

    @classmethod
    def tearDownClass(cls):
        rc = cls.agent.stop()
        assert rc == 0, f"agent exit code {rc}"

    def test_unknown_frame_type_is_skipped(self):
        p = self.peer()
        p.handshake()
        p.send(sp.frame(42, b"\x00\x01\x02whatever") + sp.frame(200, b"", sid=9, fid=9) +
               sp.route(1, 1, "GET", ROUTE_PATH))
        self.assertEqual(self.expect_ack(p, 1, 1).vars()["backend"], "synapse_room")
        p.send(sp.route(2, 1, "GET", ROUTE_PATH))
        self.expect_ack(p, 2, 1)

    def test_agent_frame_types_from_the_peer_are_invalid(self):
        for ftype in (sp.AGENT_HELLO, sp.AGENT_DISCONNECT, sp.ACK):
            with self.subTest(ftype=ftype):
                p = self.peer()
                p.handshake()
                p.send(sp.frame(ftype, b""))
                self.expect_disconnect(p, 4)

    def test_unset_frame_type_is_fragmentation(self):
        p = self.peer()
        p.handshake()
        p.send(sp.frame(0, b"\x00", sid=1, fid=1))
        self.expect_disconnect(p, 10)

    def test_second_hello_is_invalid(self):
        p = self.peer()
        p.handshake()
        p.send(sp.hello())
        self.expect_disconnect(p, 4)

    def test_hello_with_non_zero_ids_is_invalid(self):
        for sid, fid in ((1, 0), (0, 1), (5, 7)):
            with self.subTest(sid=sid, fid=fid):
                p = self.peer()
                payload = sp.hello()[11:]  # 4 length + type + 4 flags + sid 0 + fid 0
                p.send(sp.frame(sp.HAPROXY_HELLO, payload, sid=sid, fid=fid))
                self.expect_disconnect(p, 4)

    def test_disconnect_with_non_zero_ids_is_invalid(self):
        p = self.peer()
        p.handshake()
        p.send(sp.frame(sp.HAPROXY_DISCONNECT, sp.kv([("status-code", 0), ("message", "x")]),
                        sid=3, fid=1))
        self.expect_disconnect(p, 4)

    def test_interlaced_and_duplicate_ids_are_echoed_in_order(self):
        # HAProxy's ids are opaque to the agent: ACK each NOTIFY with its own ids, in order, even
        # when streams interleave, repeat, or use the largest varints.
        ids = [(5, 1), (3, 9), (5, 1), (0, 0), (5, 2), (2**63, 2**32), (3, 9), (1, 2**64 - 1)]
        p = self.peer()
        p.handshake()
        p.send(b"".join(sp.route(sid, fid, "GET", ROUTE_PATH) for sid, fid in ids))
        for sid, fid in ids:
            self.expect_ack(p, sid, fid)

    def test_haproxy_disconnect_before_hello_is_answered(self):
        p = self.peer()
        p.send(sp.frame(sp.HAPROXY_DISCONNECT, sp.kv([("status-code", 2), ("message", "idle")])))
        self.expect_disconnect(p, 0)

    def test_malformed_haproxy_disconnect_is_invalid(self):
        p = self.peer()
        p.handshake()
        p.send(sp.frame(sp.HAPROXY_DISCONNECT, b"\x0bstatus-code"))  # key without a value
        self.expect_disconnect(p, 4)

    def test_pipelining_beyond_max_pipelined_answers_everything_in_order(self):
        # max_pipelined is 4 here: 1,000 NOTIFYs in one write are answered in batches of 4.
        p = self.peer()
        p.handshake()
        p.send(b"".join(sp.route(i, 1, "GET", f"/_matrix/client/v3/rooms/!r{i}:x/messages")
                        for i in range(1000)))
        for i in range(1000):
            self.expect_ack(p, i, 1)

    def test_bad_connections_leave_a_busy_one_alone(self):
        good = self.peer()
        good.handshake()
        for n, junk in enumerate([b"\x00\x00\x00\x05\x03\x00\x00\x00\x01", sp.hello() + sp.hello(),
                                  struct.pack(">I", 2**31) + b"x", sp.frame(sp.ACK, b"")]):
            bad = self.peer()
            bad.send(junk)
            self.assertIsNotNone(bad.recv_frame())
            self.assertTrue(bad.closed())
            good.send(sp.route(n, 1, "GET", ROUTE_PATH))
            self.expect_ack(good, n, 1)

    # --- timeouts (hello_timeout 1s, idle_timeout 1.5s in this agent's config) -----------------
    def test_silent_connection_closed_by_hello_timeout(self):
        kv = self.expect_disconnect(self.peer(), 2)
        self.assertIn("HELLO", kv["message"])

    def test_slow_drip_hello_closed_by_hello_timeout(self):
        # One byte every 50 ms: the HELLO would take over 5 s, far past the 1 s HELLO deadline,
        # although some byte arrives every 50 ms. The deadline runs from accept.
        p = self.peer()
        hello = sp.hello()
        sent = 0
        while sent < len(hello) and not read_ready(p.sock, 0.05):
            p.send(hello[sent:sent + 1])
            sent += 1
        self.assertLess(sent, len(hello), "the agent waited for the whole slow HELLO")
        self.expect_disconnect(p, 2)

    def test_idle_connection_closed_by_idle_timeout(self):
        p = self.peer()
        p.handshake()
        p.send(sp.route(1, 1, "GET", ROUTE_PATH))
        self.expect_ack(p, 1, 1)
        kv = self.expect_disconnect(p, 2)
        self.assertIn("idle", kv["message"])

    def test_slow_drip_frame_closed_by_idle_timeout(self):
        # After the HELLO only complete frames count as activity: a NOTIFY dripped one byte every
        # 50 ms (over 3 s in all, twice the idle timeout) is idle.
        p = self.peer()
        p.handshake()
        frame = sp.route(1, 1, "GET", ROUTE_PATH + "?" + "x" * 40)
        sent = 0
        while sent < len(frame) and not read_ready(p.sock, 0.05):
            p.send(frame[sent:sent + 1])
            sent += 1
        self.assertLess(sent, len(frame), "the agent waited for the whole slow frame")
        self.expect_disconnect(p, 2)

    def test_busy_connection_is_not_idle(self):
        # A NOTIFY every 250 ms for 3 s (twice the idle timeout): every one is answered.
        p = self.peer()
        p.handshake()
        for i in range(12):
            p.send(sp.route(i, 1, "GET", ROUTE_PATH))
            self.expect_ack(p, i, 1)
            time.sleep(0.25)
        p.send(sp.route(99, 1, "GET", ROUTE_PATH))
        self.expect_ack(p, 99, 1)

    def test_reader_that_never_reads_does_not_block_others(self):
        # `slow` fills both socket buffers with NOTIFYs and never reads an ACK: the agent's write
        # to it blocks, it stops reading from it (so `slow`'s own sends stall), and meanwhile
        # another connection is answered at once. The stuck connection is then closed by the idle
        # timeout (a write that makes no progress).
        slow = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(slow.close)
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        slow.settimeout(10)
        slow.connect(("127.0.0.1", self.agent.port))
        slow.sendall(sp.hello())
        batch = b"".join(sp.route(i, 1, "GET", ROUTE_PATH) for i in range(100))
        slow.setblocking(False)
        stalled_since, pushed = None, 0
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                pushed += slow.send(batch)
                stalled_since = None
            except BlockingIOError:
                # Stalled: the agent no longer reads us. Confirm it stays that way for a moment.
                if stalled_since is None:
                    stalled_since = time.monotonic()
                elif time.monotonic() - stalled_since > 0.3:
                    break
                select.select([], [slow], [], 0.05)
        self.assertIsNotNone(stalled_since, "the agent kept reading from a peer that never reads")

        other = self.peer()
        self.assertEqual(other.handshake().type, sp.AGENT_HELLO)
        for i in range(20):
            other.send(sp.route(i, 3, "GET", ROUTE_PATH))
            self.expect_ack(other, i, 3)

        # Now drain `slow`: ACKs, then EOF/reset once the idle timeout closed the stuck write.
        slow.setblocking(True)
        slow.settimeout(15)
        got = 0
        try:
            while True:
                chunk = slow.recv(1 << 20)
                if not chunk:
                    break
                got += len(chunk)
        except ConnectionResetError:
            pass
        self.assertGreater(got, 0)
        self.assertGreater(pushed, 0)
        self.assert_agent_serves()


class ConnectionBurst(PeerMixin, unittest.TestCase):
    """5,000 connections at once against spop.max_connections = 100."""

    CAP, BURST = 100, 5000

    @classmethod
    def setUpClass(cls):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        need = cls.BURST + 256
        if soft < need:
            resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(need, soft)), hard))
        cls.agent = Agent(f"  hello_timeout: 60s\n  max_connections: {cls.CAP}\n")

    @classmethod
    def tearDownClass(cls):
        rc = cls.agent.stop()
        assert rc == 0, f"agent exit code {rc}"

    def test_burst_over_the_cap(self):
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft < self.BURST + 256:
            self.skipTest(f"RLIMIT_NOFILE {soft} too low for {self.BURST} client sockets")
        fds_before = self.agent.open_fds()
        socks = []
        try:
            for _ in range(self.BURST):
                s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                s.settimeout(30)
                s.connect(("127.0.0.1", self.agent.port))
                socks.append(s)
            # The refused ones get AGENT-DISCONNECT 13 and EOF; the accepted ones hear nothing
            # until they say HELLO. Wait until every socket beyond the cap was answered.
            refused, silent = [], {s.fileno(): s for s in socks}
            poller = select.poll()  # select() cannot watch descriptors above 1023
            for fd in silent:
                poller.register(fd, select.POLLIN)

            def sweep():
                for fd, _events in poller.poll(200):
                    poller.unregister(fd)
                    refused.append(silent.pop(fd))
                return len(refused) >= self.BURST - self.CAP

            wait_for(sweep, timeout=60, what="refusals of the connections over the cap")
            self.assertEqual(len(silent), self.CAP)
            for s in refused:
                data = b""
                while True:
                    chunk = s.recv(4096)
                    if not chunk:
                        break
                    data += chunk
                peer = sp.Peer.__new__(sp.Peer)
                peer.sock, peer.buf = None, data
                f = peer.recv_frame()
                self.assertEqual(f.type, sp.AGENT_DISCONNECT)
                self.assertEqual(f.kv()["status-code"], 13, f.kv())
            # Every accepted connection is fully served.
            for i, s in enumerate(silent.values()):
                s.sendall(sp.hello() + sp.route(i, 1, "GET", ROUTE_PATH))
            for s in silent.values():
                peer = sp.Peer.__new__(sp.Peer)
                peer.sock, peer.buf = s, b""
                self.assertEqual(peer.recv_frame().type, sp.AGENT_HELLO)
                self.assertEqual(peer.recv_frame().type, sp.ACK)
            self.assertEqual(self.agent.metric("synapse_spoa_spop_connections"), self.CAP)
            self.assertGreaterEqual(
                self.agent.metric("synapse_spoa_spop_connections_refused_total"),
                self.BURST - self.CAP)
        finally:
            for s in socks:
                s.close()
        # Everything is released: open connections back to 0, descriptors back to the baseline.
        wait_for(lambda: self.agent.metric("synapse_spoa_spop_connections") == 0,
                 what="agent to notice the closes")
        wait_for(lambda: self.agent.open_fds() <= fds_before,
                 what=f"agent descriptors back to {fds_before}")
        self.assert_agent_serves()


class AllowList(PeerMixin, unittest.TestCase):
    """spop.allow_from: other source addresses are closed without a frame."""

    @classmethod
    def setUpClass(cls):
        cls.agent = Agent('  allow_from: ["127.0.0.2"]\n')

    @classmethod
    def tearDownClass(cls):
        rc = cls.agent.stop()
        assert rc == 0, f"agent exit code {rc}"

    def connect_from(self, source):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.addCleanup(s.close)
        s.settimeout(10)
        s.bind((source, 0))
        s.connect(("127.0.0.1", self.agent.port))
        p = sp.Peer.__new__(sp.Peer)
        p.sock, p.buf = s, b""
        return p

    def test_listed_address_is_served(self):
        p = self.connect_from("127.0.0.2")
        self.assertEqual(p.handshake().type, sp.AGENT_HELLO)
        p.send(sp.route(1, 1, "GET", ROUTE_PATH))
        self.assertEqual(self.expect_ack(p, 1, 1).vars()["backend"], "synapse_room")

    def test_other_address_is_closed_without_a_frame(self):
        before = self.agent.metric("synapse_spoa_spop_connections_refused_total") or 0
        p = self.connect_from("127.0.0.1")
        try:
            p.send(sp.hello())
        except (BrokenPipeError, ConnectionResetError):
            pass
        try:
            self.assertIsNone(p.recv_frame(), "an unlisted peer got a frame")
        except ConnectionResetError:
            pass
        self.assertEqual(self.agent.metric("synapse_spoa_spop_connections_refused_total"),
                         before + 1)


class AllowListCidr(PeerMixin, unittest.TestCase):
    """spop.allow_from with a CIDR block (the config accepts them; spop_server matches them)."""

    @classmethod
    def setUpClass(cls):
        try:
            cls.agent = Agent('  allow_from: ["127.0.0.2/31", "::1/128"]\n')
        except RuntimeError as e:
            if "not an IP address" in str(e):
                raise unittest.SkipTest("agent.cpp still parses allow_from entries as single "
                                        "addresses (use spop_server.hpp parse_address_range)")
            raise

    @classmethod
    def tearDownClass(cls):
        cls.agent.stop()

    connect_from = AllowList.connect_from

    def test_block_members_served_others_closed(self):
        for source in ("127.0.0.2", "127.0.0.3"):
            self.assertEqual(self.connect_from(source).handshake().type, sp.AGENT_HELLO, source)
        p = self.connect_from("127.0.0.4")
        try:
            p.send(sp.hello())
            self.assertIsNone(p.recv_frame())
        except (BrokenPipeError, ConnectionResetError):
            pass


if __name__ == "__main__":
    unittest.main(verbosity=2)
