"""compose_resolvers: the compose stack's HAProxy follows a container that comes back with a new
IP (compose/README.md, "Restarts"), shown without a container engine.

haproxy/haproxy.cfg runs with the compose stack's variables except that the container DNS
(127.0.0.11:53 in Docker) is a DNS server in this test, and every server is a compose host name
(`synapse-room1:PORT`, ...) that /etc/hosts does not know, so HAProxy can only learn addresses
from that DNS:

1. HAProxy starts although no name resolves through libc (`init-addr last,libc,none`); every
   server comes UP at 127.0.0.1 once the DNS answers.
2. room1's "container is recreated": its HTTP server on 127.0.0.1 stops, one on 127.0.0.2 (same
   port) starts, and the DNS now answers 127.0.0.2. HAProxy's room1 must move to 127.0.0.2
   within 3 s (`timeout resolve` 1 s, `hold obsolete` 0 s) and be UP there; the rooms the
   fallback's hash sent to room1 are then answered by the new server, and no other server moved.

No agent runs (the SPOE group errors, HAProxy routes by its fallback rules). SPOA_HAPROXY picks
the HAProxy (the host's 2.6, or scripts/haproxy3 for 3.2 as compose runs it).
"""

import http.server
import os
import re
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from pathlib import Path

SOURCE = Path(os.environ.get("SPOA_SOURCE_DIR") or Path(__file__).resolve().parents[2])
sys.path.insert(0, str(SOURCE / "tests" / "integration"))
sys.path.insert(0, str(SOURCE / "compose"))

import render  # noqa: E402  compose/render.py
from harness import HAPROXY, Proc, free_port, haproxy_version, port_open, wait_for  # noqa: E402


class FakeDNS:
    """A UDP DNS server on 127.0.0.1 answering A queries from `self.records` (name -> IPv4),
    NXDOMAIN for unknown names, an empty answer for other types. Counts the queries per name."""

    def __init__(self):
        self.records = {}
        self.queries = {}
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.stopped = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.sock.settimeout(0.2)
        while not self.stopped:
            try:
                data, peer = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            except OSError:
                return
            reply = self._answer(data)
            if reply:
                self.sock.sendto(reply, peer)

    def _answer(self, q):
        if len(q) < 12:
            return None
        (qid, _flags, qdcount) = struct.unpack("!HHH", q[:6])
        if qdcount != 1:
            return None
        labels, i = [], 12
        while i < len(q) and q[i] != 0:
            n = q[i]
            labels.append(q[i + 1:i + 1 + n].decode("ascii", "replace").lower())
            i += 1 + n
        qtype, _qclass = struct.unpack("!HH", q[i + 1:i + 5])
        question = q[12:i + 5]
        name = ".".join(labels)
        self.queries[name] = self.queries.get(name, 0) + 1
        ip = self.records.get(name)
        if ip is None:
            return struct.pack("!HHHHHH", qid, 0x8183, 1, 0, 0, 0) + question  # NXDOMAIN
        answers = b""
        if qtype == 1:  # A
            answers = struct.pack("!HHHIH", 0xC00C, 1, 1, 1, 4) + socket.inet_aton(ip)
        return struct.pack("!HHHHHH", qid, 0x8180, 1, 1 if answers else 0, 0, 0) + question + answers

    def close(self):
        self.stopped = True
        self.sock.close()


class Worker:
    """A stand-in Synapse HTTP listener: /health is 200; every answer names the worker and the
    address it listens on (X-Synapse-Worker: room1@127.0.0.2)."""

    def __init__(self, name, host, port):
        ident = f"{name}@{host}"

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = b"{}"
                self.send_response(200)
                self.send_header("X-Synapse-Worker", ident)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # HAProxy's checks close as soon as they have the status line

        self.server = Server((host, port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ResolversTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="spoa-resolvers-")
        self.dns = FakeDNS()
        self.workers = {}
        self.haproxy = None

    def tearDown(self):
        if self.haproxy:
            rc = self.haproxy.stop()
            if rc not in (0, -15, 143):
                print(self.haproxy.output()[-3000:])
        for w in self.workers.values():
            w.close()
        self.dns.close()
        self.tmp.cleanup()

    def stats(self):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", self.stats_port, timeout=5)
        conn.request("GET", "/stats;csv")
        lines = conn.getresponse().read().decode().splitlines()
        conn.close()
        header = lines[0].lstrip("# ").split(",")
        return {(r["pxname"], r["svname"]): r for r in (dict(zip(header, l.split(","))) for l in lines[1:] if l)}

    def server(self, backend, name):
        return self.stats().get((backend, name), {})

    def runtime(self, command):
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(str(self.sock_path))
            s.sendall(command.encode() + b"\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return data.decode()

    def addresses(self):
        """(backend, server) -> "IP:PORT" from `show servers state`."""
        out = {}
        for line in self.runtime("show servers state").splitlines():
            f = line.split()
            if len(f) > 18 and f[0].isdigit():
                out[(f[1], f[3])] = f"{f[4]}:{f[18]}"
        return out

    def servers_at(self, ips):
        """Every serving worker UP at ips[name]:its port."""
        st, addr = self.stats(), self.addresses()
        for w in self.serving:
            key = (f"synapse_{render.ROLES[w['role']][0]}", w["name"])
            if st.get(key, {}).get("status") != "UP" or addr.get(key) != f"{ips[w['name']]}:{self.ports[w['name']]}":
                return False
        return True

    def get(self, path):
        conn = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        conn.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
        conn.close()
        for line in data.decode("latin-1").split("\r\n"):
            if line.lower().startswith("x-synapse-worker:"):
                return line.split(":", 1)[1].strip()
        return None

    def test_server_follows_a_new_address(self):
        topo = render.load_topology(SOURCE / "compose" / "topology.yaml")
        compose_env = render.compose_file(topo)["services"]["haproxy"]["environment"]
        self.assertEqual(compose_env.get("SPOA_HAPROXY_RESOLVER"), "127.0.0.11:53")
        env = dict(os.environ, **compose_env)
        self.port, self.stats_port = free_port(), free_port()
        env.update(SPOA_HAPROXY_BIND=f"127.0.0.1:{self.port}",
                   SPOA_HAPROXY_STATS=f"127.0.0.1:{self.stats_port}",
                   SPOA_HAPROXY_DIR=str(SOURCE / "haproxy"),
                   SPOA_HAPROXY_RESOLVER=f"127.0.0.1:{self.dns.port}",
                   SPOA_AGENT_ADDR=f"synapse-spoa:{free_port()}")  # no agent listens there
        serving = [w for w in topo["workers"] if render.ROLES[w["role"]][0]]
        ports = {}
        for w in serving:
            host = render.host_of(w["name"])
            ports[w["name"]] = free_port()
            env[render.env_addr_var(w["name"])] = f"{host}:{ports[w['name']]}"
            self.dns.records[host] = "127.0.0.1"
            self.workers[w["name"]] = Worker(w["name"], "127.0.0.1", ports[w["name"]])
        self.dns.records["synapse-spoa"] = "127.0.0.1"
        for host in [render.host_of(w["name"]) for w in serving] + ["synapse-spoa"]:
            try:
                socket.getaddrinfo(host, None)
                self.skipTest(f"{host} resolves through libc here; the test needs it not to")
            except socket.gaierror:
                pass
        version = haproxy_version()
        cfg = SOURCE / "haproxy" / "haproxy.cfg"
        # Not -dW: here a name libc cannot resolve is the case under test, and HAProxy says
        # (2.6: WARNING, 3.2: NOTICE) that it starts that server without an address. Nothing
        # else may be reported.
        check = subprocess.run([HAPROXY, "-c", "-f", str(cfg)], env=env,
                               capture_output=True, text=True, timeout=60)
        out = check.stdout + check.stderr
        unresolved = [l for l in out.splitlines()
                      if re.search(r"could not resolve address '[a-z0-9-]+', disabling server", l)]
        other = [l for l in out.splitlines()
                 if ("[WARNING]" in l or "[ALERT]" in l) and l not in unresolved]
        print(f"HAProxy {version[0]}.{version[1]}: haproxy -c with the compose variables and "
              f"names only DNS knows: exit {check.returncode}, {len(unresolved)} servers start "
              f"without an address, {len(other)} other warnings")
        self.assertEqual(check.returncode, 0, out)
        self.assertEqual(len(unresolved), len(serving) + 1, out)  # every server + the agent's
        self.assertEqual(other, [])
        # The runtime API (haproxy.cfg's optional socket): the stats CSV has no server address.
        self.sock_path = Path(self.tmp.name) / "admin.sock"
        env["SPOA_HAPROXY_RUNTIME"] = str(self.sock_path)
        self.haproxy = Proc("haproxy", [HAPROXY, "-db", "-f", str(cfg)], self.tmp.name, env=env)
        wait_for(lambda: port_open(self.stats_port), what="HAProxy")
        self.serving, self.ports = serving, ports

        def all_up_at(ip):
            return self.servers_at({w["name"]: ip for w in serving})

        t0 = time.monotonic()
        try:
            wait_for(lambda: all_up_at("127.0.0.1"), timeout=20, what="every server UP at 127.0.0.1")
        except TimeoutError:
            st = self.stats()
            print({k: (v.get("status"), v.get("check_status")) for k, v in st.items()},
                  self.addresses(), self.dns.queries, self.haproxy.output()[-3000:])
            raise
        print(f"start: every server UP through DNS only after {time.monotonic() - t0:.1f} s "
              f"(queries: {self.dns.queries.get('synapse-room1', 0)} for synapse-room1)")

        # The rooms the fallback's consistent hash sends to room1.
        rooms = [f"!r{i}:example.org" for i in range(200)]
        on_room1 = [r for r in rooms
                    if self.get(f"/_matrix/client/v3/rooms/{r}/messages") == "room1@127.0.0.1"]
        self.assertTrue(on_room1, "no room lands on room1")

        # room1's container is recreated with a new address.
        self.workers["room1"].close()
        self.workers["room1"] = Worker("room1", "127.0.0.2", ports["room1"])
        self.dns.records["synapse-room1"] = "127.0.0.2"
        t0 = time.monotonic()
        want = f"127.0.0.2:{ports['room1']}"
        wait_for(lambda: self.addresses().get(("synapse_room", "room1")) == want, timeout=15,
                 what=f"room1 at {want}")
        moved = time.monotonic() - t0
        wait_for(lambda: self.server("synapse_room", "room1").get("status") == "UP", timeout=10,
                 what="room1 UP at its new address")
        up = time.monotonic() - t0
        answered = {self.get(f"/_matrix/client/v3/rooms/{r}/messages") for r in on_room1}
        print(f"recreated room1 (127.0.0.1 -> 127.0.0.2): new address after {moved:.1f} s, UP "
              f"after {up:.1f} s; its {len(on_room1)} rooms now answered by {sorted(answered)}")
        self.assertLessEqual(moved, 3.0, "slower than `timeout resolve` + a retry")
        self.assertEqual(answered, {"room1@127.0.0.2"})
        # Every other server kept its address and is UP.
        self.assertTrue(self.servers_at({w["name"]: "127.0.0.2" if w["name"] == "room1" else "127.0.0.1"
                                         for w in serving}))


if __name__ == "__main__":
    unittest.main(verbosity=2)
