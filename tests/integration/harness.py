"""Test harness: starts the simulated Synapse workers, synapse-spoa and real HAProxy on free
loopback ports, and stops exactly what it started, by PID.

Paths come from the environment that ctest sets (SPOA_BUILD_DIR, SPOA_SOURCE_DIR)."""

import collections
import http.client
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BUILD = pathlib.Path(os.environ.get("SPOA_BUILD_DIR", "build"))
SOURCE = pathlib.Path(os.environ.get("SPOA_SOURCE_DIR", "."))
AGENT = BUILD / "src" / "synapse-spoa"
SIM = BUILD / "tests" / "support" / "spoa-sim-workers"
HAPROXY = os.environ.get("SPOA_HAPROXY", "haproxy")
REDIS = os.environ.get("SPOA_REDIS") or shutil.which("redis-server") or "/usr/bin/redis-server"


def _reference_workers():
    """The reference topology, [(worker, pool or None for workers with no inbound HTTP)], read
    from compose/topology.yaml: the source of haproxy/haproxy.cfg's server lines, so the
    harness starts a simulated worker behind every server HAProxy checks."""
    sys.path.insert(0, str(SOURCE / "compose"))
    import render  # compose/render.py
    topo = render.load_topology(SOURCE / "compose" / "topology.yaml")
    return [(w["name"], render.ROLES[w["role"]][0]) for w in topo["workers"]]


REFERENCE_WORKERS = _reference_workers()

POOLS = """pools:
  main:              {backend: synapse_main,              balance: least_loaded}
  client_sync:       {backend: synapse_client_sync,       balance: affinity, key: user}
  room:              {backend: synapse_room,              balance: affinity, key: room}
  federation_reader: {backend: synapse_federation_reader, balance: affinity, key: origin}
  media:             {backend: synapse_media,             balance: least_loaded}
"""


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=15.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def haproxy_env(port, stats_port, agent_port, worker_ports, runtime_port=None):
    """The environment haproxy/haproxy.cfg reads: every address on loopback.
    worker_ports: {worker name: HTTP port} for the workers with inbound HTTP; runtime_port: the
    runtime API (level admin) on that loopback port, or none."""
    env = dict(os.environ)
    env.update({
        "SPOA_HAPROXY_BIND": f"127.0.0.1:{port}",
        "SPOA_HAPROXY_STATS": f"127.0.0.1:{stats_port}",
        "SPOA_HAPROXY_DIR": str(SOURCE / "haproxy"),
        "SPOA_AGENT_ADDR": f"127.0.0.1:{agent_port}",
    })
    if runtime_port:
        env["SPOA_HAPROXY_RUNTIME"] = f"ipv4@127.0.0.1:{runtime_port}"
    for name, p in worker_ports.items():
        env[f"SPOA_{name.upper()}_ADDR"] = f"127.0.0.1:{p}"
    return env


def haproxy_version(exe=None):
    """(major, minor) of the HAProxy the tests drive (SPOA_HAPROXY): (2, 6) or (3, 2)."""
    out = subprocess.run([exe or HAPROXY, "-v"], capture_output=True, text=True, timeout=30).stdout
    m = re.search(r"version (\d+)\.(\d+)", out)
    if not m:
        raise RuntimeError(f"{exe or HAPROXY} -v printed no version: {out!r}")
    return int(m.group(1)), int(m.group(2))


class Proc:
    """A child process with its output in a log file; stop() is SIGTERM, then SIGKILL."""

    def __init__(self, name, argv, workdir, env=None):
        self.name = name
        self.log_path = pathlib.Path(workdir) / f"{name}.log"
        self.log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                      env=env, start_new_session=True)
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def kill(self, sig=signal.SIGKILL):
        if self.alive():
            os.kill(self.pid, sig)
            self.popen.wait(timeout=10)

    def stop(self, timeout=10.0):
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
        self.log.close()
        return self.popen.returncode

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")


class Stack:
    """sim workers + synapse-spoa + HAProxy, all on free loopback ports.

    shared: None (no shared affinity store), or the agent's `shared:` options other than `redis`
    ({} for the defaults); then a redis-server is started first and the agent points at it."""

    def __init__(self, workers=REFERENCE_WORKERS, agent_extra="", sim_args=(), shared=None,
                 runtime=False):
        self.tmp = tempfile.TemporaryDirectory(prefix="spoa-it-")
        self.dir = pathlib.Path(self.tmp.name)
        self.workers = workers
        self.agent_extra = agent_extra
        self.sim_args = list(sim_args)
        self.shared = shared
        self.redis = None
        self.redis_port = free_port() if shared is not None else None
        self.procs = []
        self.agent = None
        self.haproxy = None
        # Known before the agent's config is written (load.haproxy_metrics may point at it).
        self.stats_port = free_port()
        self.runtime_port = free_port() if runtime else None  # HAProxy's runtime API

    # -- lifecycle ---------------------------------------------------------------------------
    def start(self, agent=True):
        try:
            if self.shared is not None:
                self.start_redis()
            self.start_sim()
            self.agent_port = free_port()
            self.agent_metrics_port = free_port()
            self.write_agent_config()
            if agent:
                self.start_agent()
            self.start_haproxy()
        except BaseException:
            self.dump_logs()
            self.close()
            raise
        return self

    def dump_logs(self):
        """Print the tail of every child's output (for a failed start or test)."""
        for p in self.procs:
            print(f"----- {p.name} (pid {p.pid}) -----\n{p.output()[-3000:]}", file=sys.stderr)

    def close(self):
        for p in reversed(self.procs):
            p.stop()
        self.procs = []
        self.tmp.cleanup()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.close()

    # -- pieces ------------------------------------------------------------------------------
    def start_redis(self):
        """redis-server on 127.0.0.1:redis_port (the same port again on a restart), with no RDB
        snapshot or AOF: a throwaway store in the Stack's directory."""
        self.redis = Proc("redis", [REDIS, "--bind", "127.0.0.1", "--port", str(self.redis_port),
                                    "--save", "", "--appendonly", "no", "--dir", str(self.dir)],
                          self.dir)
        self.procs.append(self.redis)
        wait_for(lambda: port_open(self.redis_port), what="redis-server")

    def start_sim(self):
        ready = self.dir / "sim.ready"
        argv = [str(SIM), "--ready-file", str(ready), "--control", "127.0.0.1:0"] + self.sim_args
        for name, _pool in self.workers:
            argv += ["--worker", f"{name}=127.0.0.1:0,metrics=127.0.0.1:0"]
        self.sim = Proc("sim", argv, self.dir)
        self.procs.append(self.sim)
        wait_for(ready.exists, what="simulated workers")
        self.http_port, self.metrics_port = {}, {}
        for line in ready.read_text().splitlines():
            parts = line.split()
            if parts[0] == "control":
                self.control_port = int(parts[1])
            else:
                self.http_port[parts[0]] = int(parts[1])
                self.metrics_port[parts[0]] = int(parts[2])

    def write_agent_config(self):
        lines = [f"listen: 127.0.0.1:{self.agent_port}",
                 f"metrics_listen: 127.0.0.1:{self.agent_metrics_port}", POOLS, "workers:"]
        for name, pool in self.workers:
            pool_part = f"pool: {pool}, " if pool else ""
            lines.append(f"  - {{name: {name}, {pool_part}metrics: "
                         f"\"http://127.0.0.1:{self.metrics_port[name]}/metrics\"}}")
        lines.append(self.agent_extra)
        if self.shared is not None:
            lines += ["shared:", f'  redis: "redis://127.0.0.1:{self.redis_port}/0"']
            lines += [f"  {k}: {v}" for k, v in self.shared.items()]
        self.agent_config = self.dir / "agent.yaml"
        self.agent_config.write_text("\n".join(lines) + "\n")

    def start_agent(self):
        ready = self.dir / "agent.ready"
        if ready.exists():
            ready.unlink()
        self.agent = Proc("agent", [str(AGENT), "run", "--config", str(self.agent_config),
                                    "--ready-file", str(ready)], self.dir)
        self.procs.append(self.agent)
        wait_for(ready.exists, what="synapse-spoa ready file")
        return self.agent

    def start_haproxy(self):
        self.port = free_port()
        env = haproxy_env(self.port, self.stats_port, self.agent_port,
                          {name: self.http_port[name] for name, pool in self.workers if pool},
                          self.runtime_port)
        self.haproxy = Proc("haproxy", [HAPROXY, "-db", "-f", str(SOURCE / "haproxy" / "haproxy.cfg")],
                            self.dir, env=env)
        self.procs.append(self.haproxy)
        wait_for(lambda: port_open(self.port), what="HAProxy listening")
        wait_for(self.backends_up, what="HAProxy health checks of the workers")

    def runtime(self, command):
        """One HAProxy runtime API command (Stack(runtime=True)); returns its answer."""
        import socket
        with socket.create_connection(("127.0.0.1", self.runtime_port), timeout=5) as s:
            s.sendall(command.encode() + b"\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out.decode()

    # -- observation -------------------------------------------------------------------------
    def stats(self):
        """HAProxy's CSV stats as a list of dicts."""
        conn = http.client.HTTPConnection("127.0.0.1", self.stats_port, timeout=5)
        conn.request("GET", "/stats;csv")
        body = conn.getresponse().read().decode()
        conn.close()
        lines = body.splitlines()
        header = lines[0].lstrip("# ").split(",")
        return [dict(zip(header, l.split(","))) for l in lines[1:] if l]

    def server_status(self, backend, server):
        for row in self.stats():
            if row["pxname"] == backend and row["svname"] == server:
                return row["status"]
        return None

    def backends_up(self):
        return all(self.server_status(f"synapse_{pool}", name) == "UP"
                   for name, pool in self.workers if pool)

    def agent_up(self):
        return self.server_status("spoa_synapse", "agent1") == "UP"

    def request(self, method, path, headers=None, body=None):
        """One request through HAProxy: (status, worker that answered)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        conn.request(method, path, body=body, headers=headers or {})
        resp = conn.getresponse()
        resp.read()
        conn.close()
        return resp.status, resp.getheader("X-Synapse-Worker")

    def control(self, worker, mode, factor=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.control_port, timeout=5)
        q = f"?factor={factor}" if factor else ""
        conn.request("POST", f"/worker/{worker}/mode/{mode}{q}")
        status = conn.getresponse().status
        conn.close()
        return status


def agent_metrics(stack):
    """The agent's /metrics as {(name, frozenset(labels.items())): value}."""
    conn = http.client.HTTPConnection("127.0.0.1", stack.agent_metrics_port, timeout=5)
    conn.request("GET", "/metrics")
    body = conn.getresponse().read().decode()
    conn.close()
    out = {}
    for line in body.splitlines():
        if not line or line.startswith("#"):
            continue
        head, _, value = line.rpartition(" ")
        name, labels = head, {}
        if "{" in head:
            name, rest = head.split("{", 1)
            for part in rest.rstrip("}").split(","):
                if part:
                    k, v = part.split("=", 1)
                    labels[k] = v.strip('"')
        out[(name, frozenset(labels.items()))] = float(value)
    return out


def worker_state(stack, worker):
    m = agent_metrics(stack)
    for state in ("unknown", "healthy", "hot", "down", "stalled"):
        if m.get(("synapse_spoa_worker_state", frozenset({("state", state), ("worker", worker)}))) == 1:
            return state
    return None


class Traffic:
    """Background GET requests through HAProxy over `paths`, cycling, from a few threads; counts
    200s and everything else (statuses, socket errors) until the `with` block ends."""

    def __init__(self, stack, paths, threads=2):
        self.stack, self.paths = stack, list(paths)
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.ok = 0
        self.errors = collections.Counter()
        self.threads = [threading.Thread(target=self.run, args=(i,), daemon=True)
                        for i in range(threads)]

    def run(self, i):
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=10)
        n = i
        while not self.stop_flag.is_set():
            path = self.paths[n % len(self.paths)]
            n += len(self.threads)
            try:
                conn.request("GET", path)
                resp = conn.getresponse()
                resp.read()
                with self.lock:
                    if resp.status == 200:
                        self.ok += 1
                    else:
                        self.errors[resp.status] += 1
            except OSError as e:
                with self.lock:
                    self.errors[type(e).__name__] += 1
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=10)
        conn.close()

    def answered(self):
        with self.lock:
            return self.ok

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=15)
