"""Issue 14: three HAProxy + agent pairs, one placement, shared through a real redis-server.

One set of simulated workers, one redis-server, three agents (same hash_key, `shared.redis` set)
and three HAProxy 2.6, all on free loopback ports, stopped by PID. Three client threads, one per
HAProxy, cycle over the same rooms; every answer is recorded with the worker that served it
(X-Synapse-Worker). Figures per scenario: split rooms, served by two workers at the same time
in the steady window at the end (target 0); rooms that every agent moved together in that window
(a gradual return home: not a split); the convergence time after the event (the last moment any
room was answered by a worker other than its final one); and failed requests (target 0).

SPOA_SCALEOUT_REPORT=FILE appends each scenario's row as a Markdown table line."""

import http.client
import http.server
import os
import re
import shutil
import signal
import socket
import threading
import time
import unittest

from harness import (AGENT, HAPROXY, POOLS, REFERENCE_WORKERS, SOURCE, Proc, Stack,
                     agent_metrics, free_port, haproxy_env, port_open, wait_for, worker_state)

REDIS = shutil.which("redis-server") or "/usr/bin/redis-server"
ROOMS = [f"!scale{i}:example.org" for i in range(60)]
STEADY_S = 3.0
OVERLAP_S = 0.2


def room_path(room):
    return f"/_matrix/client/v3/rooms/{room}/messages"


class HotMetrics:
    """One worker's /metrics as one agent sees it, hot: the simulated worker's body with its
    CPU counter multiplied (a 0.3-core worker reads as 6 cores, above hot_cpu), served on its own
    free port, so only the agent pointed at it sees the worker hot."""

    def __init__(self, upstream_port, factor=20.0):
        upstream = upstream_port

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                conn = http.client.HTTPConnection("127.0.0.1", upstream, timeout=2)
                conn.request("GET", "/metrics")
                body = conn.getresponse().read().decode()
                conn.close()
                body = re.sub(r"^(process_cpu_seconds_total(?:\{[^}]*\})?) (\S+)$",
                              lambda m: f"{m.group(1)} {float(m.group(2)) * factor}", body,
                              flags=re.M).encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class RedisPath:
    """A TCP relay between one agent and redis-server that can be cut: `cut()` closes every
    relayed connection and the listener (new connects are refused), `restore()` listens again on
    the same port. Redis unreachable for that agent only, while the others keep it."""

    def __init__(self, redis_port):
        self.redis_port = redis_port
        self.port = free_port()
        self.lock = threading.Lock()
        self.conns = []
        self.listener = None
        self.restore()

    def restore(self):
        ls = socket.socket()
        ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ls.bind(("127.0.0.1", self.port))
        ls.listen(16)
        self.listener = ls
        threading.Thread(target=self.accept, args=(ls,), daemon=True).start()

    def accept(self, ls):
        while True:
            try:
                a, _ = ls.accept()
            except OSError:
                return
            try:
                b = socket.create_connection(("127.0.0.1", self.redis_port), timeout=5)
            except OSError:
                a.close()
                continue
            with self.lock:
                self.conns += [a, b]
            for x, y in ((a, b), (b, a)):
                threading.Thread(target=self.pump, args=(x, y), daemon=True).start()

    @staticmethod
    def pump(src, dst):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def cut(self):
        self.listener.close()
        with self.lock:
            conns, self.conns = self.conns, []
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()

    def close(self):
        self.cut()


class Node:
    """One agent + HAProxy pair."""

    def __init__(self, cluster, i):
        self.cluster, self.i = cluster, i
        self.agent_port = free_port()
        self.metrics_port = free_port()
        self.config = cluster.dir / f"agent{i}.yaml"
        self.drain = set()
        self.dead_metrics = set()  # workers whose metrics this agent cannot reach
        self.metrics_override = {}  # worker -> port this agent scrapes instead (HotMetrics)
        self.redis_port = None  # a RedisPath's port instead of redis-server's own
        self.agent = None

    # harness.agent_metrics() reads .agent_metrics_port
    @property
    def agent_metrics_port(self):
        return self.metrics_port

    def write_config(self):
        c = self.cluster
        lines = [f"listen: 127.0.0.1:{self.agent_port}",
                 f"metrics_listen: 127.0.0.1:{self.metrics_port}", POOLS, "workers:"]
        for name, pool in REFERENCE_WORKERS:
            pool_part = f"pool: {pool}, " if pool else ""
            port = (c.dead_port if name in self.dead_metrics else
                    self.metrics_override.get(name, c.metrics_port[name]))
            drain = ", drain: true" if name in self.drain else ""
            lines.append(f"  - {{name: {name}, {pool_part}metrics: "
                         f"\"http://127.0.0.1:{port}/metrics\"{drain}}}")
        lines.append(f"""placement:
  hash_key: scaleout-test
  max_moves_per_second: 50
  snapshot: "{c.dir / f'agent{self.i}.snapshot'}"
load:
  scrape_interval: 500ms
  scrape_timeout: 250ms
  stale_after: 2s
  stall_down_after: 1500ms
shared:
  redis: "redis://127.0.0.1:{self.redis_port or c.redis_port}/0"
  refresh_interval: 1s
  reconnect_interval: 200ms
  command_timeout: 300ms
""")
        self.config.write_text("\n".join(lines) + "\n")

    def reload(self, **view):
        """Set this agent's view (drain=..., dead_metrics=...), rewrite its config, SIGHUP it."""
        for k, v in view.items():
            setattr(self, k, v)
        self.write_config()
        os.kill(self.agent.pid, signal.SIGHUP)

    def start_agent(self):
        self.write_config()
        ready = self.cluster.dir / f"agent{self.i}.ready"
        if ready.exists():
            ready.unlink()
        self.agent = Proc(f"agent{self.i}", [str(AGENT), "run", "--config", str(self.config),
                                             "--ready-file", str(ready)], self.cluster.dir)
        self.cluster.procs.append(self.agent)
        wait_for(ready.exists, what=f"agent{self.i} ready file")

    def start_haproxy(self):
        c = self.cluster
        self.port = free_port()
        self.stats_port = free_port()
        env = haproxy_env(self.port, self.stats_port, self.agent_port,
                          {name: c.http_port[name] for name, pool in REFERENCE_WORKERS if pool})
        self.haproxy = Proc(f"haproxy{self.i}",
                            [HAPROXY, "-db", "-f", str(SOURCE / "haproxy" / "haproxy.cfg")], c.dir,
                            env=env)
        c.procs.append(self.haproxy)
        wait_for(lambda: port_open(self.port), what=f"HAProxy {self.i} listening")

    def metric(self, name, **labels):
        return agent_metrics(self).get((name, frozenset(labels.items())), 0.0)

    def connected(self):
        return self.metric("synapse_spoa_shared_connected") == 1.0


class Cluster(Stack):
    """The harness's Stack for its simulated workers, temporary directory, control and clean-up,
    with redis-server and n Node pairs instead of one agent and one HAProxy."""

    def __init__(self, n=3):
        super().__init__()
        self.n = n
        self.dead_port = free_port()  # nothing listens here

    def start(self):
        try:
            self.redis_port = free_port()
            self.start_redis()
            self.start_sim()
            self.nodes = [Node(self, i) for i in range(self.n)]
            # Agent 0 reaches Redis through a relay that test_9 cuts.
            self.redis_path = RedisPath(self.redis_port)
            self.nodes[0].redis_port = self.redis_path.port
            for node in self.nodes:
                node.start_agent()
            for node in self.nodes:
                node.start_haproxy()
            wait_for(lambda: all(n.connected() for n in self.nodes), what="agents on Redis")
        except BaseException:
            self.dump_logs()
            self.close()
            raise
        return self

    def close(self):
        if getattr(self, "redis_path", None):
            self.redis_path.close()
        super().close()

    def start_redis(self):
        self.redis = Proc("redis", [REDIS, "--bind", "127.0.0.1", "--port", str(self.redis_port),
                                    "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
                          self.dir)
        self.procs.append(self.redis)
        wait_for(lambda: port_open(self.redis_port), what="redis-server")

    def redis_cli(self, *args):
        """One command over RESP by hand (no client package): returns the raw reply text."""
        import socket
        with socket.create_connection(("127.0.0.1", self.redis_port), timeout=5) as s:
            cmd = f"*{len(args)}\r\n" + "".join(f"${len(str(a))}\r\n{a}\r\n" for a in args)
            s.sendall(cmd.encode())
            time.sleep(0.1)
            return s.recv(1 << 20).decode(errors="replace")

    def commandstats(self):
        """{command: calls} from INFO commandstats."""
        out = {}
        for line in self.redis_cli("INFO", "commandstats").splitlines():
            if line.startswith("cmdstat_"):
                name, rest = line[len("cmdstat_"):].split(":", 1)
                calls = dict(kv.split("=") for kv in rest.split(","))["calls"]
                out[name] = int(calls)
        return out


class Load:
    """One client thread per HAProxy cycling over ROOMS; records (t, room, worker, status)."""

    def __init__(self, cluster):
        self.cluster = cluster
        self.t0 = time.monotonic()
        self.lock = threading.Lock()
        self.rows = []
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(n,), daemon=True)
                        for n in cluster.nodes]
        for t in self.threads:
            t.start()

    def now(self):
        return time.monotonic() - self.t0

    def run(self, node):
        conn = None
        k = node.i * 7
        while not self.stop_flag.is_set():
            room = ROOMS[k % len(ROOMS)]
            k += 1
            status, worker = None, None
            try:
                if conn is None:
                    conn = http.client.HTTPConnection("127.0.0.1", node.port, timeout=10)
                conn.request("GET", room_path(room))
                resp = conn.getresponse()
                resp.read()
                status, worker = resp.status, resp.getheader("X-Synapse-Worker")
            except OSError as e:
                status = type(e).__name__
                if conn:
                    conn.close()
                conn = None
            with self.lock:
                self.rows.append((self.now(), room, worker, status, node.i))
            time.sleep(0.002)

    def stop(self):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=15)

    def figures(self, since, until):
        """(split rooms in the last STEADY_S before `until`, rooms that moved there (every agent
        alike), convergence time after `since`, failed requests since `since`, requests).

        A room is split when two workers served it at the same time: their [first, last] answer
        intervals in the steady window overlap by more than OVERLAP_S (the store's propagation:
        a 10 ms tick plus pub/sub). A room that all agents move together (a gradual return
        home, say) shows two intervals one after the other: moved, not split."""
        with self.lock:
            rows = [r for r in self.rows if since <= r[0] <= until]
        failed = sum(1 for r in rows if r[3] != 200)
        steady = [r for r in rows if r[0] >= until - STEADY_S and r[3] == 200]
        served = {}  # room -> worker -> [first, last]
        for t, room, worker, _, _ in steady:
            span = served.setdefault(room, {}).setdefault(worker, [t, t])
            span[1] = t
        split, moved = {}, 0
        for room, spans in served.items():
            if len(spans) == 1:
                continue
            ordered = sorted(spans.values())
            end = ordered[0][1]
            overlap = False
            for first, last in ordered[1:]:
                overlap = overlap or first < end - OVERLAP_S
                end = max(end, last)
            if overlap:
                split[room] = sorted({(r[4], r[2]) for r in steady if r[1] == room})
            else:
                moved += 1
        self.last_split = split
        final = {room: next(iter(ws)) for room, ws in served.items() if len(ws) == 1}
        last_off = since
        for t, room, worker, status, _ in rows:
            if status == 200 and room in final and worker != final[room]:
                last_off = max(last_off, t)
        return len(split), moved, last_off - since, failed, len(rows)


class ScaleOutTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = Cluster().start()
        cls.load = Load(cls.cluster)
        cls.report = os.environ.get("SPOA_SCALEOUT_REPORT")

    @classmethod
    def tearDownClass(cls):
        cls.load.stop()
        cls.cluster.close()

    def record(self, name, since, settle):
        """Waits `settle` seconds after the event, then checks and reports the figures."""
        time.sleep(settle)
        split, moved, conv, failed, total = self.load.figures(since, self.load.now())
        row = f"| {name} | {split} | {moved} | {conv:.2f} s | {failed} / {total} |"
        print("\n" + row)
        if self.report:
            with open(self.report, "a") as f:
                f.write(row + "\n")
        if split or failed:
            self.cluster.dump_logs()
            for room, seen in list(self.load.last_split.items())[:10]:
                print(f"split: {room}: (agent, worker) {seen}")
        self.assertEqual(split, 0, f"{name}: rooms served by more than one worker")
        self.assertEqual(failed, 0, f"{name}: failed requests")
        return conv

    def moved(self, node):
        return sum(node.metric("synapse_spoa_affinity_moves_total", reason=r)
                   for r in ("down", "drain", "overload", "removed", "returned"))

    # Scenarios run in name order, each on the state the previous one left.
    def test_1_fresh_rooms(self):
        since = 0.0
        self.record("fresh rooms (60, three pairs at once)", since, 4.0)
        c = self.cluster
        claims = sum(n.metric("synapse_spoa_shared_operations_total", op="claim") for n in c.nodes)
        self.assertGreaterEqual(claims, len(ROOMS))  # every pair claimed the rooms it saw first
        keys = c.redis_cli("DBSIZE")
        self.assertIn(f":{len(ROOMS)}", keys)

    def test_2_hits_cost_no_redis_operations(self):
        c = self.cluster
        before = c.commandstats()
        n0 = len(self.load.rows)
        time.sleep(3.0)
        after = c.commandstats()
        requests = len(self.load.rows) - n0
        data_ops = sum(after.get(k, 0) - before.get(k, 0) for k in ("set", "eval", "get"))
        refresh = after.get("pexpire", 0) - before.get("pexpire", 0)
        # PUBLISH: no move happens here, so every one is a load report (one per agent per
        # load_interval, 1 s), whatever the request rate.
        reports = after.get("publish", 0) - before.get("publish", 0)
        print(f"\nsteady state: {requests} requests, {data_ops} SET/EVAL/GET, {reports} PUBLISH "
              f"(load reports), {refresh} PEXPIRE (batched refresh, <= rooms x agents per "
              f"refresh_interval)")
        self.assertEqual(data_ops, 0)
        self.assertLessEqual(reports, 5 * len(c.nodes))
        # Bounded load counts the sum over agents: each agent hears the two others and adds the
        # request rates they report for the room workers (each pair takes a third of the rooms'
        # traffic, so the others' part is about twice its own).
        for n in c.nodes:
            self.assertEqual(n.metric("synapse_spoa_shared_peers"), len(c.nodes) - 1)
            peer = sum(n.metric("synapse_spoa_shared_peer_request_rate", pool="room",
                                worker=f"room{w}") for w in range(1, 5))
            print(f"agent {n.i}: the others report {peer:.0f} requests/s to the room workers")
            self.assertGreater(peer, 10)
        self.assertLessEqual(refresh, 4 * len(ROOMS) * len(c.nodes))

    def test_3_drain_on_one_agent_first(self):
        c = self.cluster
        node = c.nodes[0]
        since = self.load.now()
        node.reload(drain={"room1"})
        wait_for(lambda: self.moved(node) > 0, what="agent0 moving room1's keys")
        self.record("drain room1 on agent 0 only", since, 5.0)
        received = sum(n.metric("synapse_spoa_shared_results_total", result="move_adopted")
                       for n in c.nodes[1:])
        self.assertGreater(received, 0)
        # The rollout reaches the other agents: every view agrees again.
        since = self.load.now()
        for n in c.nodes[1:]:
            n.reload(drain={"room1"})
        self.record("drain room1 then on agents 1, 2", since, 3.0)

    def test_4_worker_down_for_one_agent_only(self):
        # The agent-local view of trouble (as a worker hot for one agent only): agent 1 cannot
        # scrape room2 and moves its keys; the others see it healthy and follow the pushed moves.
        c = self.cluster
        node = c.nodes[1]
        since = self.load.now()
        node.reload(dead_metrics={"room2"})
        self.record("room2 down as seen by agent 1 only", since, 5.0)
        node.reload(dead_metrics=set())
        wait_for(lambda: node.metric("synapse_spoa_worker_state", state="healthy",
                                     worker="room2") == 1.0, what="room2 healthy again on agent 1")

    def test_4b_worker_hot_for_one_agent_only(self):
        # Agent 0 scrapes room1 through HotMetrics: hot to it, healthy to the others. Fresh rooms
        # then arrive at all three pairs at once: agent 0 ranks room1 out, the others may put
        # rooms there; the first claim wins in Redis and the others adopt it.
        c = self.cluster
        node = c.nodes[0]
        hot = HotMetrics(c.metrics_port["room1"])
        try:
            # room1 is still drained (test_3): undrain it so that it takes new rooms again.
            for n in c.nodes:
                n.reload(drain=set(), metrics_override={"room1": hot.port} if n is node else {})
            wait_for(lambda: worker_state(node, "room1") == "hot", what="room1 hot on agent 0")
            self.assertEqual(worker_state(c.nodes[1], "room1"), "healthy")
            adopted0 = node.metric("synapse_spoa_shared_results_total", result="conflict_adopted")
            since = self.load.now()
            ROOMS.extend(f"!fresh{i}:example.org" for i in range(30))
            self.record("room1 hot as seen by agent 0 only (30 fresh rooms)", since, 4.0)
            # Agent 0 lost the claims of the rooms the others put on room1, and adopted them.
            self.assertGreater(
                node.metric("synapse_spoa_shared_results_total", result="conflict_adopted"),
                adopted0)
        finally:
            node.reload(metrics_override={})
            hot.close()
        wait_for(lambda: worker_state(node, "room1") == "healthy", timeout=20,
                 what="room1 healthy again on agent 0")

    def test_5_worker_down(self):
        c = self.cluster
        since = self.load.now()
        self.assertEqual(c.control("room3", "down"), 200)
        self.record("room3 down (all agents)", since, 6.0)
        self.assertEqual(c.control("room3", "normal"), 200)
        wait_for(lambda: all(n.metric("synapse_spoa_worker_state", state="healthy",
                                      worker="room3") == 1.0 for n in c.nodes),
                 what="room3 healthy again")

    def test_6_agent_restarted(self):
        c = self.cluster
        node = c.nodes[2]
        since = self.load.now()
        node.agent.stop()
        c.procs.remove(node.agent)
        snap = c.dir / "agent2.snapshot"
        if snap.exists():
            snap.unlink()  # restore from Redis alone, not from the snapshot
        node.start_agent()
        wait_for(node.connected, what="agent2 back on Redis")
        self.record("agent 2 restarted (no snapshot)", since, 5.0)
        # It restored from Redis (SCAN + MGET at its first connection), not only claim by claim.
        self.assertGreaterEqual(node.metric("synapse_spoa_shared_operations_total",
                                            op="restore_scan"), 1)
        restored = node.metric("synapse_spoa_shared_results_total", result="restored")
        print(f"agent 2 restored {restored:.0f} of {len(ROOMS)} rooms from Redis")
        self.assertGreater(restored, 0)

    def test_7_redis_restarted_empty(self):
        c = self.cluster
        since = self.load.now()
        c.redis.stop()
        c.procs.remove(c.redis)
        time.sleep(1.0)
        c.start_redis()
        wait_for(lambda: all(n.connected() for n in c.nodes), what="agents back on Redis")
        self.record("Redis restarted empty", since, 4.0)
        wait_for(lambda: f":{len(ROOMS)}" in c.redis_cli("DBSIZE"), timeout=10,
                 what="the agents' tables claimed again")

    def test_8_redis_stopped(self):
        c = self.cluster
        since = self.load.now()
        os.kill(c.redis.pid, signal.SIGSTOP)
        try:
            wait_for(lambda: not any(n.connected() for n in c.nodes), timeout=10,
                     what="agents noticing a stopped Redis")
            time.sleep(1.0)
        finally:
            os.kill(c.redis.pid, signal.SIGCONT)
        wait_for(lambda: all(n.connected() for n in c.nodes), what="agents back on Redis")
        self.record("Redis SIGSTOPped 2 s", since, 6.0)

    def test_9_redis_unreachable_for_one_agent_only(self):
        # Agent 0's relay to Redis is cut; agents 1 and 2 keep Redis. While agent 0 is cut off,
        # a drain reaches agents 1 and 2 only: they move room4's rooms and agent 0 cannot hear
        # it (split rooms here are the price of a view change that one agent cannot learn). When
        # the relay is back, agent 0 reconciles its table with Redis and adopts their moves.
        c = self.cluster
        node = c.nodes[0]
        since = self.load.now()
        c.redis_path.cut()
        wait_for(lambda: not node.connected(), what="agent 0 cut off from Redis")
        self.assertTrue(all(n.connected() for n in c.nodes[1:]))
        for n in c.nodes[1:]:
            n.reload(drain={"room4"})
        time.sleep(4.0)
        split, _, _, failed, total = self.load.figures(since, self.load.now())
        print(f"\nwhile agent 0 was cut off: {split} rooms split (room4 drained on agents 1, 2 "
              f"only), {failed} / {total} failed")
        self.assertEqual(failed, 0, "requests failed while agent 0 was cut off from Redis")
        self.assertEqual(node.metric("synapse_spoa_shared_connected"), 0.0)
        since = self.load.now()
        c.redis_path.restore()
        wait_for(node.connected, what="agent 0 back on Redis")
        self.record("Redis unreachable for agent 0 only, then back", since, 4.0)
        for n in c.nodes[1:]:
            n.reload(drain=set())


if __name__ == "__main__":
    unittest.main()
