"""`synapse-spoa run` against an independent SPOP peer (spop_peer.py, written from SPOE.txt):
AGENT-HELLO, ACKs and the DISCONNECT status code of every protocol error."""

import struct
import unittest

import spop_peer as sp
from harness import AGENT, Proc, free_port, port_open, wait_for
import tempfile


class SpopPeer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix="spoa-peer-")
        cls.port = free_port()
        cls.agent = Proc("agent", [str(AGENT), "run", "--listen", f"127.0.0.1:{cls.port}",
                                   "--metrics-listen", f"127.0.0.1:{free_port()}"], cls.tmp.name)
        wait_for(lambda: port_open(cls.port), what="agent listening")

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_zz_sigterm_disconnects_every_connection_then_exits_0(self):
        peers = [self.peer() for _ in range(3)]
        for p in peers:
            p.handshake()
        rc = self.agent.stop()
        for p in peers:
            f = p.recv_frame()
            self.assertIsNotNone(f, "closed without AGENT-DISCONNECT")
            self.assertEqual(f.type, sp.AGENT_DISCONNECT)
            self.assertEqual(f.kv()["status-code"], 0)
            self.assertTrue(p.closed())
        self.assertEqual(rc, 0, f"agent exit code {rc}\n{self.agent.output()[-2000:]}")

    def peer(self):
        p = sp.Peer(self.port)
        self.addCleanup(p.close)
        return p

    def expect_disconnect(self, p, status):
        f = p.recv_frame()
        self.assertIsNotNone(f, "connection closed without AGENT-DISCONNECT")
        self.assertEqual(f.type, sp.AGENT_DISCONNECT)
        self.assertEqual((f.sid, f.fid), (0, 0))
        kv = f.kv()
        self.assertEqual(kv["status-code"], status, kv)
        self.assertIsInstance(kv.get("message"), str)
        self.assertTrue(p.closed(), "agent kept the connection open after DISCONNECT")

    def test_hello(self):
        p = self.peer()
        f = p.handshake()
        self.assertEqual(f.type, sp.AGENT_HELLO)
        self.assertEqual((f.flags, f.sid, f.fid), (sp.FIN, 0, 0))
        kv = f.kv()
        self.assertEqual(kv["version"], "2.0")
        self.assertEqual(kv["max-frame-size"], 16380)
        self.assertEqual(kv["capabilities"], "pipelining")  # never async, never fragmentation

    def test_hello_smaller_frame_size_is_echoed(self):
        f = self.peer().handshake(max_frame_size=1024)
        self.assertEqual(f.kv()["max-frame-size"], 1024)

    def test_healthcheck_answered_then_closed(self):
        p = self.peer()
        f = p.handshake(capabilities="", healthcheck=True)
        self.assertEqual(f.type, sp.AGENT_HELLO)
        self.assertTrue(p.closed())

    def test_pipelined_notifies_acked_in_order_with_their_ids(self):
        p = self.peer()
        p.handshake()
        batch = b""
        paths = [f"/_matrix/client/v3/rooms/!r{i}:example.org/messages" for i in range(20)]
        for i, path in enumerate(paths):
            batch += sp.route(1000 + i, 1, "GET", path)
        batch += sp.route(2000, 7, "GET", "/_matrix/client/v3/sync", query="since=s1")
        p.send(batch)
        for i in range(20):
            f = p.recv_frame()
            self.assertEqual(f.type, sp.ACK)
            self.assertEqual((f.sid, f.fid), (1000 + i, 1))
            v = f.vars()
            self.assertEqual(v["backend"], "synapse_room")
            self.assertIn(v["server"], {"room1", "room2", "room3", "room4"})
            self.assertEqual(f.actions()[0][3], "backend", "the decisive action comes first")
        f = p.recv_frame()
        self.assertEqual((f.sid, f.fid), (2000, 7))
        self.assertEqual(f.vars()["backend"], "synapse_client_sync")

    def test_empty_notify_and_unknown_message_are_acked_with_an_action(self):
        p = self.peer()
        p.handshake()
        p.send(sp.notify(5, 1, []) + sp.notify(6, 1, [("other", [("x", 1)])]))
        for sid in (5, 6):
            f = p.recv_frame()
            self.assertEqual((f.type, f.sid, f.fid), (sp.ACK, sid, 1))
            self.assertGreaterEqual(len(f.actions()), 1)

    def test_null_and_unnamed_args(self):
        p = self.peer()
        p.handshake()
        p.send(sp.notify(9, 1, [("route", [("method", "GET"), ("path", "/_matrix/client/versions"),
                                           ("user", None), ("", "unnamed")])]))
        f = p.recv_frame()
        self.assertEqual(f.vars()["backend"], "synapse_main")

    def test_haproxy_disconnect_answered_with_status_0(self):
        p = self.peer()
        p.handshake()
        p.send(sp.frame(sp.HAPROXY_DISCONNECT, sp.kv([("status-code", 0), ("message", "bye")])))
        self.expect_disconnect(p, 0)

    # --- errors -------------------------------------------------------------------------
    def test_unsupported_version(self):
        p = self.peer()
        p.send(sp.hello(version="1.0"))
        self.expect_disconnect(p, 8)

    def test_missing_version(self):
        p = self.peer()
        p.send(sp.hello(version=None))
        self.expect_disconnect(p, 5)

    def test_missing_max_frame_size(self):
        p = self.peer()
        p.send(sp.hello(max_frame_size=None))
        self.expect_disconnect(p, 6)

    def test_max_frame_size_too_small(self):
        p = self.peer()
        p.send(sp.hello(max_frame_size=255))
        self.expect_disconnect(p, 9)

    def test_frame_over_the_limit(self):
        p = self.peer()
        p.handshake(max_frame_size=1024)
        p.send(sp.route(1, 1, "GET", "/" + "a" * 2000))
        self.expect_disconnect(p, 3)

    def test_garbage_length_before_hello(self):
        p = self.peer()
        p.send(struct.pack(">I", 369295622) + b"\x01\x00\x00\x00\x01")
        self.expect_disconnect(p, 3)

    def test_zero_length_frame(self):
        p = self.peer()
        p.send(struct.pack(">I", 0))
        self.expect_disconnect(p, 4)

    def test_notify_before_hello(self):
        p = self.peer()
        p.send(sp.route(1, 1, "GET", "/_matrix/client/versions"))
        f = p.recv_frame()
        self.assertEqual(f.type, sp.AGENT_DISCONNECT)
        self.assertIn(f.kv()["status-code"], (4,))

    def test_non_fin_fragment(self):
        p = self.peer()
        p.handshake()
        p.send(sp.frame(sp.NOTIFY, b"\x05route\x00", 1, 1, flags=0))
        self.expect_disconnect(p, 10)

    def test_truncated_payload_inside_a_frame(self):
        p = self.peer()
        p.handshake()
        good = sp.route(1, 1, "GET", "/_matrix/client/versions")
        body = good[4:-5]  # cut the last STRING short: its length says more than the frame has
        p.send(struct.pack(">I", len(body)) + body)
        self.expect_disconnect(p, 4)

    def test_overlong_varint(self):
        p = self.peer()
        p.handshake()
        body = bytes([sp.NOTIFY]) + struct.pack(">I", sp.FIN) + b"\xff" * 11 + b"\x00" + b"\x01"
        p.send(struct.pack(">I", len(body)) + body)
        self.expect_disconnect(p, 4)

    def test_one_bad_connection_leaves_others_alone(self):
        good = self.peer()
        good.handshake()
        bad = self.peer()
        bad.send(sp.hello(version="9.9"))
        self.expect_disconnect(bad, 8)
        good.send(sp.route(3, 1, "GET", "/_matrix/client/versions"))
        self.assertEqual(good.recv_frame().vars()["backend"], "synapse_main")


if __name__ == "__main__":
    unittest.main(verbosity=2)
