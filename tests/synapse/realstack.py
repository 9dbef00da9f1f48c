"""The real deployment on loopback: PostgreSQL, Redis, Synapse main + every worker of
compose/topology.yaml and HAProxy 3.2 from the sid chroot (scripts/sid-chroot), in front of the
host's synapse-spoa.

The Synapse configs are the files compose/render.py commits (compose/synapse/homeserver.yaml and
compose/synapse/workers/*.yaml), with only what a loopback run must change: addresses and ports
(every container of the compose stack has its own 8008/9093/9000; here each process gets free
loopback ports), file paths, and the test-traffic rate limits (TEST_OVERLAY below). The agent's
config is compose/synapse-spoa.yaml with its addresses mapped the same way.

Run it inside a private mount namespace (tests/synapse/run does `unshare --mount --propagation
private`): the chroot's /proc, /dev, /dev/shm and /sys mounts then never reach the host and vanish
with the last process, on failure and on SIGKILL too. Every child gets PR_SET_PDEATHSIG, and is
stopped by PID (its /proc/PID/root checked, so a recycled PID is never signalled)."""

from __future__ import annotations

import calendar
import ctypes
import hashlib
import hmac
import http.client
import json
import os
import pathlib
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse

import yaml

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = pathlib.Path(os.environ.get("SPOA_SOURCE_DIR", HERE.parent.parent))
BUILD = pathlib.Path(os.environ.get("SPOA_BUILD_DIR", SOURCE / "build"))
AGENT = BUILD / "src" / "synapse-spoa"
CHROOT = pathlib.Path(os.environ.get("SPOA_CHROOT", "/var/cache/synapse-spoa/sid"))
TXREDISAPI = pathlib.Path(os.environ.get("SPOA_TXREDISAPI",
                                         SOURCE.parent / "shared" / "vendor" / "txredisapi"))
COMPOSE = SOURCE / "compose"

sys.path.insert(0, str(COMPOSE / "synapse"))
sys.path.insert(0, str(SOURCE / "tests" / "integration"))
import harness  # noqa: E402  (the simulated-worker harness: HAProxy stats, agent metrics)
import init as compose_init  # noqa: E402  (compose/synapse/init.py: the ${NAME} substitution)

CHROOT_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)

# Rate limits: Synapse's defaults answer 429 to test traffic (real-synapse.md). Federation keys:
# the two homeservers fetch each other's keys directly, over loopback, with self-signed TLS.
TEST_OVERLAY = {
    "rc_message": {"per_second": 1000, "burst_count": 1000},
    "rc_registration": {"per_second": 1000, "burst_count": 1000},
    "rc_login": {"address": {"per_second": 1000, "burst_count": 1000},
                 "account": {"per_second": 1000, "burst_count": 1000},
                 "failed_attempts": {"per_second": 1000, "burst_count": 1000}},
    "rc_joins": {"local": {"per_second": 1000, "burst_count": 1000},
                 "remote": {"per_second": 1000, "burst_count": 1000}},
    "rc_joins_per_room": {"per_second": 1000, "burst_count": 1000},
    "rc_invites": {"per_room": {"per_second": 1000, "burst_count": 1000},
                   "per_user": {"per_second": 1000, "burst_count": 1000},
                   "per_issuer": {"per_second": 1000, "burst_count": 1000}},
    "rc_3pid_validation": {"per_second": 1000, "burst_count": 1000},
    "rc_media_create": {"per_second": 1000, "burst_count": 1000},
    "rc_presence": {"per_user": {"per_second": 1000, "burst_count": 1000}},
    "rc_delayed_event_mgmt": {"per_second": 1000, "burst_count": 1000},
    "rc_room_creation": {"per_second": 1000, "burst_count": 1000},
    "rc_user_directory": {"per_second": 1000, "burst_count": 1000},
    "rc_key_requests": {"per_second": 1000, "burst_count": 1000},
    "rc_third_party_invite": {"per_second": 1000, "burst_count": 1000},
    "rc_reports": {"per_second": 1000, "burst_count": 1000},
    "rc_federation": {"window_size": 1000, "sleep_limit": 1000, "sleep_delay": 1,
                      "reject_limit": 1000, "concurrent": 100},
    "trusted_key_servers": [],
    "federation_verify_certificates": False,
    "ip_range_whitelist": ["127.0.0.1"],
    "allow_public_rooms_over_federation": True,
    "room_list_publication_rules": [{"action": "allow"}],
    "user_directory": {"enabled": True, "search_all_users": True},
    "presence": {"enabled": True},
}

SECRETS = {
    "SYNAPSE_REGISTRATION_SHARED_SECRET": "spoa-test-registration-secret",
    "SYNAPSE_MACAROON_SECRET_KEY": "spoa-test-macaroon",
    "SYNAPSE_FORM_SECRET": "spoa-test-form",
    "SYNAPSE_WORKER_REPLICATION_SECRET": "spoa-test-replication",
    "POSTGRES_PASSWORD": "unused-trust-auth",
}


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(predicate, timeout=30.0, what="condition", interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}")


def http_get(port, path, timeout=2.0, tls=False):
    if tls:
        ctx = ssl._create_unverified_context()
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ctx)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    except OSError:
        return None, b""
    finally:
        conn.close()


def _haproxy_time(text):
    """%tr (01/Dec/2026:21:35:06.257, the chroot's zone: UTC) as Unix time."""
    stamp, _, ms = text.partition(".")
    t = time.strptime(stamp, "%d/%b/%Y:%H:%M:%S")
    return calendar.timegm(t) + int(ms or 0) / 1000.0


def register_user(conn, localpart, password, admin):
    """Synapse's shared-secret registration (/_synapse/admin/v1/register: nonce, then an
    HMAC-SHA1 over nonce, user, password and admin flag). Returns user_id, access_token,
    device_id."""
    path = "/_synapse/admin/v1/register"
    conn.request("GET", path)
    nonce = json.loads(conn.getresponse().read())["nonce"]
    mac = hmac.new(SECRETS["SYNAPSE_REGISTRATION_SHARED_SECRET"].encode(), digestmod=hashlib.sha1)
    mac.update(b"\x00".join([nonce.encode(), localpart.encode(), password.encode(),
                             b"admin" if admin else b"notadmin"]))
    body = json.dumps({"nonce": nonce, "username": localpart, "password": password,
                       "admin": admin, "mac": mac.hexdigest()})
    conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    data = json.loads(resp.read())
    conn.close()
    if resp.status != 200:
        raise RuntimeError(f"register {localpart}: {resp.status} {data}")
    return data


def _passwd(root: pathlib.Path, user: str) -> tuple[int, int]:
    for line in (root / "etc" / "passwd").read_text().splitlines():
        f = line.split(":")
        if f[0] == user:
            return int(f[2]), int(f[3])
    raise RuntimeError(f"user {user} does not exist in the chroot {root}")


class Proc:
    """One child: in the chroot as `user` (or on the host when user is None), output to a log
    file, killed with the harness (PR_SET_PDEATHSIG), stopped by PID."""

    def __init__(self, name, argv, logdir, env, chroot=None, user=None, cwd="/"):
        self.name, self.chroot = name, chroot
        self.log_path = pathlib.Path(logdir) / f"{name}.log"
        self.log = open(self.log_path, "ab")
        ids = _passwd(chroot, user) if chroot and user else None

        def preexec():
            os.setsid()
            if chroot:
                os.chroot(str(chroot))
                os.chdir(cwd)
            if ids:
                os.setgroups([])
                os.setgid(ids[1])
                os.setuid(ids[0])
            # After the credential change, which would clear it.
            _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

        self.popen = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                      preexec_fn=preexec, close_fds=True)
        self.pid = self.popen.pid
        self.started = time.monotonic()

    def alive(self):
        return self.popen.poll() is None

    def _ours(self):
        """The PID is still our child (and, for a chroot child, still in our chroot)."""
        if not self.alive():
            return False
        if self.chroot:
            try:
                return os.path.realpath(f"/proc/{self.pid}/root") == os.path.realpath(self.chroot)
            except OSError:
                return False
        return True

    def signal(self, sig):
        if self._ours():
            os.kill(self.pid, sig)

    def stop(self, timeout=10.0):
        if self._ours():
            os.kill(self.pid, signal.SIGCONT)
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
        if not self.log.closed:
            self.log.close()
        return self.popen.returncode

    def rss_kib(self):
        try:
            for line in pathlib.Path(f"/proc/{self.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        except OSError:
            pass
        return None

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")


class Chroot:
    """The sid chroot's mounts, made in the caller's (private) mount namespace."""

    def __init__(self, root=CHROOT):
        self.root = pathlib.Path(root)
        self.mounted: list[pathlib.Path] = []

    def _mount(self, target, *args):
        t = self.root / target
        t.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", *args, str(t)], check=True)
        self.mounted.append(t)
        subprocess.run(["mount", "--make-private", str(t)], check=True)

    def mount(self):
        if os.environ.get("SPOA_IN_PRIVATE_MOUNT_NS") != "1":
            raise RuntimeError("run inside a private mount namespace (tests/synapse/run)")
        self._mount("proc", "-t", "proc", "proc")
        self._mount("dev", "--bind", "/dev")
        self._mount("dev/pts", "-t", "devpts", "devpts", "-o", "newinstance,ptmxmode=0666")
        self._mount("dev/shm", "-t", "tmpfs", "tmpfs")
        self._mount("sys", "-t", "sysfs", "-o", "ro", "sysfs")
        return self

    def unmount(self):
        for t in reversed(self.mounted):
            subprocess.run(["umount", "-l", str(t)], check=False)
        self.mounted = []

    def env(self, **extra):
        e = {"PATH": CHROOT_PATH, "HOME": "/tmp", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}
        e.update(extra)
        return e

    def run(self, argv, user=None, env=None, check=True, timeout=120):
        """A short command in the chroot, waited for."""
        ids = _passwd(self.root, user) if user else None

        def preexec():
            os.chroot(str(self.root))
            os.chdir("/")
            if ids:
                os.setgroups([])
                os.setgid(ids[1])
                os.setuid(ids[0])

        r = subprocess.run(argv, env=env or self.env(), preexec_fn=preexec, capture_output=True,
                           text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise RuntimeError(f"{argv[0]} in the chroot failed ({r.returncode}): "
                               f"{r.stderr.strip()[-2000:]}")
        return r

    def version(self, package):
        r = self.run(["dpkg-query", "-W", "-f=${Version}", package], check=False)
        return r.stdout.strip()


def load_topology():
    doc = yaml.safe_load((COMPOSE / "topology.yaml").read_text())
    return doc["workers"], doc["ports"]


def map_listeners(listeners, ports):
    """Compose listener ports (8008/9093/9000) to this process's loopback ports."""
    out = []
    for l in listeners:
        l = dict(l)
        kind = {8008: "http", 9093: "replication", 9000: "metrics"}[l["port"]]
        l["port"] = ports[kind]
        l["bind_addresses"] = ["127.0.0.1"]
        out.append(l)
    return out


class RealStack:
    """The whole reference deployment as real processes. Use as a context manager."""

    def __init__(self, name="hs1", federation=True, extra_config=None, agent_extra="",
                 client_port=None):
        self.name = name
        self.client_port = client_port
        self.chroot = Chroot()
        self.procs: list[Proc] = []
        self.synapse: dict[str, Proc] = {}
        self.federation = federation
        self.extra_config = extra_config or {}
        self.agent_extra = agent_extra
        self.timings: dict[str, float] = {}
        self.agent = None
        self.haproxy = None
        # Extra variables for haproxy.cfg, e.g. SPOA_RESPONSE_SAMPLE_PERCENT.
        self.haproxy_env: dict[str, str] = {}

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self):
        try:
            self.start()
        except BaseException:
            self.dump_logs()
            self.close()
            raise
        return self

    def __exit__(self, *exc):
        if exc[0] is not None:
            self.dump_logs()
        self.close()

    def start(self):
        t0 = time.monotonic()
        if not (CHROOT / ".spoa-stamp").exists():
            raise RuntimeError(f"no sid chroot at {CHROOT}: run scripts/sid-chroot")
        if not (TXREDISAPI / "txredisapi.py").exists():
            raise RuntimeError(f"txredisapi.py not found in {TXREDISAPI} (set SPOA_TXREDISAPI)")
        self.chroot.mount()
        self.run_rel = pathlib.Path("/tmp") / f"spoa-real-{os.getpid()}-{self.name}"
        self.dir = CHROOT / self.run_rel.relative_to("/")
        if self.dir.exists():
            shutil.rmtree(self.dir)
        self.dir.mkdir(parents=True)
        (self.dir / "logs").mkdir()
        self.versions = {p: self.chroot.version(p)
                         for p in ("matrix-synapse", "haproxy", "postgresql", "redis-server")}
        self._write_hosts()
        self._install_txredisapi()
        self._allocate_ports()
        self.start_postgres()
        self.start_redis()
        self.write_synapse_configs()
        self.start_synapse()
        self.start_agent()
        self.start_haproxy()
        self.timings["total"] = time.monotonic() - t0
        return self

    def close(self):
        # Synapse processes first and all at once (each takes a second to stop), then the rest
        # in reverse start order: HAProxy, the agent, Redis, PostgreSQL.
        for p in self.procs:
            if p.name.startswith("synapse-"):
                p.signal(signal.SIGCONT)
                p.signal(signal.SIGTERM)
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:  # keep stopping the rest
                print(f"realstack: stopping {p.name}: {e}", file=sys.stderr)
        self.procs = []
        self.chroot.unmount()
        keep = os.environ.get("SPOA_KEEP_RUN")
        if getattr(self, "dir", None) and self.dir.exists():
            if keep:
                dest = pathlib.Path(keep) / self.dir.name
                shutil.rmtree(dest, ignore_errors=True)
                shutil.copytree(self.dir / "logs", dest)
                print(f"realstack: logs kept in {dest}", file=sys.stderr)
            shutil.rmtree(self.dir, ignore_errors=True)

    def dump_logs(self, tail=2500):
        for p in self.procs:
            print(f"----- {p.name} (pid {p.pid}) -----\n{p.output()[-tail:]}", file=sys.stderr)

    def in_chroot(self, host_path: pathlib.Path) -> str:
        return "/" + str(pathlib.Path(host_path).relative_to(CHROOT))

    # -- pieces ------------------------------------------------------------------------------
    def _write_hosts(self):
        # Synapse calls socket.getfqdn() at start; without this it asks the machine's resolver.
        hostname = socket.gethostname()
        hosts = CHROOT / "etc" / "hosts"
        hosts.write_text("127.0.0.1 localhost hs1.test hs2.test\n"
                         f"127.0.1.1 {hostname}\n::1 localhost\n")

    def _install_txredisapi(self):
        """txredisapi (not in Debian) on the chroot Python's path for this run only, with the
        dist-info Synapse's importlib.metadata version check needs."""
        pylib = self.dir / "pylib"
        pylib.mkdir()
        shutil.copy(TXREDISAPI / "txredisapi.py", pylib / "txredisapi.py")
        m = re.search(r'__version__\s*=\s*"([^"]+)"', (TXREDISAPI / "txredisapi.py").read_text())
        version = m.group(1) if m else "1.4.11"
        info = pylib / f"txredisapi-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: txredisapi\nVersion: {version}\n")
        self.pythonpath = self.in_chroot(pylib)

    def _allocate_ports(self):
        """Free loopback ports for every listener, all distinct: each is held open until the
        whole set is chosen (a port released at once may be handed out again)."""
        held = []

        def take():
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            held.append(sock)
            return sock.getsockname()[1]

        self.topology, _ = load_topology()
        try:
            self.ports = {w["name"]: {"http": take(), "replication": take(), "metrics": take()}
                          for w in self.topology}
            self.pg_port, self.redis_port = take(), take()
            self.agent_port, self.agent_metrics_port = take(), take()
            self.port, self.stats_port = self.client_port or take(), take()
            self.tls_port = take()
        finally:
            for sock in held:
                sock.close()
        self.server_name = f"{self.name}.test:{self.tls_port}"

    def start_postgres(self):
        t0 = time.monotonic()
        pg_bin = sorted((CHROOT / "usr/lib/postgresql").glob("*/bin"))[-1]
        bindir = self.in_chroot(pg_bin)
        data = self.dir / "pg"
        data.mkdir()
        uid, gid = _passwd(CHROOT, "postgres")
        os.chown(data, uid, gid)
        os.chown(self.dir, uid, gid)  # the socket directory
        os.chmod(self.dir, 0o755)
        self.chroot.run([f"{bindir}/initdb", "-D", self.in_chroot(data), "-U", "synapse", "-A",
                         "trust", "-E", "UTF8", "--locale=C", "--no-sync"], user="postgres")
        self.pg = self._spawn("postgres", [
            f"{bindir}/postgres", "-D", self.in_chroot(data), "-p", str(self.pg_port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.run_rel}",
            "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
            "-c", "max_connections=400", "-c", "shared_buffers=64MB"], user="postgres")
        wait_for(lambda: self.chroot.run(
            [f"{bindir}/pg_isready", "-h", "127.0.0.1", "-p", str(self.pg_port)],
            check=False).returncode == 0, what="PostgreSQL")
        self.chroot.run([f"{bindir}/psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U",
                         "synapse", "-d", "postgres", "-qc",
                         "CREATE DATABASE synapse ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' "
                         "TEMPLATE template0"], user="postgres")
        self.timings["postgres"] = time.monotonic() - t0

    def start_redis(self):
        self.redis = self._spawn("redis", [
            "/usr/bin/redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--protected-mode", "yes"], user="redis")
        wait_for(lambda: self._redis_ping(), what="Redis")

    def _redis_ping(self):
        try:
            with socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.5) as s:
                s.sendall(b"PING\r\n")
                return s.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def write_synapse_configs(self):
        env = dict(SECRETS, SYNAPSE_SERVER_NAME=self.server_name,
                   SYNAPSE_PUBLIC_BASEURL=f"http://127.0.0.1:{self.port}/")
        text = (COMPOSE / "synapse" / "homeserver.yaml").read_text()
        doc, _ = compose_init.render(text, env)
        conf = self.dir / "conf"
        conf.mkdir()
        media = self.dir / "media"
        media.mkdir()
        shutil.copy(COMPOSE / "synapse" / "log.config", conf / "log.config")
        # Paths.
        doc["log_config"] = self.in_chroot(conf / "log.config")
        doc["signing_key_path"] = self.in_chroot(conf / "signing.key")
        doc["media_store_path"] = self.in_chroot(media)
        # Addresses.
        doc["listeners"] = map_listeners(doc["listeners"], self.ports["main"])
        doc["database"]["args"].update(host="127.0.0.1", port=self.pg_port)
        doc["redis"].update(host="127.0.0.1", port=self.redis_port)
        for name, entry in doc.get("instance_map", {}).items():
            entry.update(host="127.0.0.1", port=self.ports[name]["replication"])
        doc.update(TEST_OVERLAY)
        doc.update(self.extra_config)
        self.homeserver = doc
        (conf / "homeserver.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        for w in self.topology:
            if w["name"] == "main":
                continue
            wdoc = yaml.safe_load((COMPOSE / "synapse" / "workers" / f"{w['name']}.yaml").read_text())
            wdoc["worker_log_config"] = self.in_chroot(conf / "log.config")
            wdoc["worker_listeners"] = map_listeners(wdoc["worker_listeners"], self.ports[w["name"]])
            (conf / f"{w['name']}.yaml").write_text(yaml.safe_dump(wdoc, sort_keys=False))
        uid, gid = _passwd(CHROOT, "matrix-synapse")
        for p in (conf, media, *conf.iterdir()):
            os.chown(p, uid, gid)
        self.conf = conf

    def _synapse_argv(self, name):
        hs = self.in_chroot(self.conf / "homeserver.yaml")
        if name == "main":
            return ["/usr/bin/python3", "-m", "synapse.app.homeserver", "-c", hs]
        return ["/usr/bin/python3", "-m", "synapse.app.generic_worker", "-c", hs, "-c",
                self.in_chroot(self.conf / f"{name}.yaml")]

    def _synapse_env(self):
        return self.chroot.env(PYTHONPATH=self.pythonpath, PYTHONDONTWRITEBYTECODE="1")

    def start_synapse(self):
        t0 = time.monotonic()
        self.chroot.run(self._synapse_argv("main") + ["--generate-keys"], user="matrix-synapse",
                        env=self._synapse_env())
        self.start_synapse_process("main")
        self.wait_healthy(["main"], timeout=90)
        self.timings["main"] = time.monotonic() - t0
        t1 = time.monotonic()
        rest = [w["name"] for w in self.topology if w["name"] != "main"]
        for name in rest:
            self.start_synapse_process(name)
        self.wait_healthy(rest, timeout=120)
        self.timings["workers"] = time.monotonic() - t1

    def start_synapse_process(self, name):
        p = self._spawn(f"synapse-{name}", self._synapse_argv(name), user="matrix-synapse",
                        env=self._synapse_env())
        self.synapse[name] = p
        return p

    def healthy(self, name):
        return http_get(self.ports[name]["http"], "/health", timeout=1.0)[0] == 200

    def wait_healthy(self, names, timeout=60):
        pending = set(names)

        def check():
            for n in list(pending):
                p = self.synapse[n]
                if not p.alive():
                    raise RuntimeError(f"Synapse {n} exited with {p.popen.returncode}:\n"
                                       f"{p.output()[-3000:]}")
                if self.healthy(n):
                    self.timings[f"ready_{n}"] = time.monotonic() - p.started
                    pending.discard(n)
            return not pending

        wait_for(check, timeout=timeout, what=f"Synapse processes {sorted(pending)} healthy",
                 interval=0.2)

    def write_agent_config(self):
        doc = yaml.safe_load((COMPOSE / "synapse-spoa.yaml").read_text())
        doc["listen"] = f"127.0.0.1:{self.agent_port}"
        doc["metrics_listen"] = f"127.0.0.1:{self.agent_metrics_port}"
        for w in doc["workers"]:
            u = urllib.parse.urlsplit(w["metrics"])
            w["metrics"] = f"http://127.0.0.1:{self.ports[w['name']]['metrics']}{u.path}"
        placement = doc.setdefault("placement", {})
        placement["snapshot"] = str(self.dir / "agent-affinity.msgpack")
        text = yaml.safe_dump(doc, sort_keys=False) + self.agent_extra
        self.agent_config = self.dir / "agent.yaml"
        self.agent_config.write_text(text)

    def start_agent(self):
        if not hasattr(self, "agent_config"):
            self.write_agent_config()
        ready = self.dir / "agent.ready"
        if ready.exists():
            ready.unlink()
        self.agent = self._spawn("agent", [str(AGENT), "run", "--config", str(self.agent_config),
                                           "--ready-file", str(ready)], env=dict(os.environ))
        wait_for(ready.exists, what="synapse-spoa ready file")
        return self.agent

    def _cert(self, name):
        pem = self.dir / f"{name}.pem"
        if not pem.exists():
            key, crt = self.dir / f"{name}.key", self.dir / f"{name}.crt"
            subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days",
                            "2", "-subj", f"/CN={name}", "-addext", f"subjectAltName=DNS:{name}",
                            "-keyout", str(key), "-out", str(crt)], check=True,
                           capture_output=True)
            pem.write_bytes(crt.read_bytes() + key.read_bytes())
            for f in (key, crt, pem):
                os.chmod(f, 0o644)
        return pem

    def start_haproxy(self):
        cfgdir = self.dir / "haproxy"
        shutil.copytree(SOURCE / "haproxy", cfgdir)
        env = self.chroot.env(
            SPOA_HAPROXY_BIND=f"127.0.0.1:{self.port}",
            SPOA_HAPROXY_STATS=f"127.0.0.1:{self.stats_port}",
            SPOA_HAPROXY_DIR=self.in_chroot(cfgdir),
            SPOA_AGENT_ADDR=f"127.0.0.1:{self.agent_port}",
            SPOA_HAPROXY_LOG_ALL="1", **self.haproxy_env)
        if self.federation:
            env["SPOA_HAPROXY_TLS_BIND"] = f"127.0.0.1:{self.tls_port}"
            env["SPOA_HAPROXY_TLS_CRT"] = self.in_chroot(self._cert(f"{self.name}.test"))
        for w in self.topology:
            env[f"SPOA_{w['name'].upper()}_ADDR"] = f"127.0.0.1:{self.ports[w['name']]['http']}"
        cfg = self.in_chroot(cfgdir / "haproxy.cfg")
        check = self.chroot.run(["/usr/sbin/haproxy", "-c", "-dW", "-f", cfg], env=env,
                                check=False)
        if check.returncode != 0:
            raise RuntimeError(f"haproxy -c -dW failed: {check.stdout}{check.stderr}")
        self.haproxy = self._spawn("haproxy", ["/usr/sbin/haproxy", "-db", "-f", cfg], env=env,
                                   user=None, in_chroot=True)
        wait_for(lambda: http_get(self.stats_port, "/stats;csv")[0] == 200, what="HAProxy")
        wait_for(self.backends_up, timeout=30, what="HAProxy health checks UP")

    def _spawn(self, name, argv, user=None, env=None, in_chroot=None):
        chroot = CHROOT if (user is not None or in_chroot) else None
        p = Proc(name, argv, self.dir / "logs", env or self.chroot.env(), chroot=chroot,
                 user=user)
        self.procs.append(p)
        return p

    # -- observation -------------------------------------------------------------------------
    # HAProxy's CSV stats and a server's check state, as the simulated-worker harness reads them.
    stats = harness.Stack.stats
    server_status = harness.Stack.server_status

    def backends_up(self):
        rows = self.stats()
        want = [r for r in rows if r["pxname"].startswith("synapse_") and
                r["svname"] not in ("FRONTEND", "BACKEND")]
        agent = [r for r in rows if r["pxname"] == "spoa_synapse" and r["svname"] == "agent1"]
        return want and all(r["status"] == "UP" for r in want) and agent[0]["status"] == "UP"

    def haproxy_log(self):
        """HAProxy's log lines of client requests: dicts with backend, server, status, method,
        path, the agent's server (srv) and pool."""
        out = []
        pat = re.compile(r"\[(\S+)\] (\S+) (\S+)/(\S+) \S+ (-?\d+) \S+ (\S+) (\S+) srv=(\S*) "
                         r"pool=(\S*) key=(\S*)")
        for line in self.haproxy.output().splitlines():
            m = pat.search(line)
            if m:
                out.append({"time": _haproxy_time(m.group(1)), "frontend": m.group(2),
                            "backend": m.group(3), "server": m.group(4),
                            "status": int(m.group(5)), "method": m.group(6), "path": m.group(7),
                            "srv": m.group(8), "pool": m.group(9), "key": m.group(10)})
        return out

    ACCESS = re.compile(r"synapse\.access\.http\.(\d+) .* Processed request: .* (\d{3})!? "
                        r"\"(\S+) (\S+) HTTP/[\d.]+\"")

    def access_log(self, name):
        """Synapse's own access log of one process's client/federation listener:
        [(method, path without query, status)]."""
        port = str(self.ports[name]["http"])
        out = []
        for line in self.synapse[name].output().splitlines():
            m = self.ACCESS.search(line)
            if m and m.group(1) == port:
                out.append((m.group(3), m.group(4).split("?", 1)[0], int(m.group(2))))
        return out

    def agent_metrics(self):
        return harness.agent_metrics(self)

    def worker_view(self, worker):
        """The agent's view of one worker: state, cpu, lag, capacity (None when absent)."""
        m = self.agent_metrics()
        view = {"state": None}
        for (name, labels), v in m.items():
            d = dict(labels)
            if d.get("worker") != worker:
                continue
            if name == "synapse_spoa_worker_state":
                if v == 1:
                    view["state"] = d.get("state")
            elif name.startswith("synapse_spoa_worker_"):
                view[name[len("synapse_spoa_worker_"):]] = v
        return view

    # -- clients -----------------------------------------------------------------------------
    def register(self, localpart, password="spoa-pass", admin=False):
        """Shared-secret registration through HAProxy (/_synapse/admin/v1/register on main)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        return register_user(conn, localpart, password, admin)

    def rss_table(self):
        return {p.name: p.rss_kib() for p in self.procs}


class PeerHomeserver:
    """A second homeserver (one monolith, SQLite) in the same chroot, federating with the stack:
    its own TLS listener (self-signed) on a free loopback port; the stack's inbound federation
    reaches the stack through HAProxy's TLS bind."""

    def __init__(self, stack: RealStack, name="hs2"):
        self.stack, self.name = stack, name
        self.port = free_port()
        self.server_name = f"{name}.test:{self.port}"
        self.dir = stack.dir / name
        self.proc = None

    def start(self):
        t0 = time.monotonic()
        s = self.stack
        self.dir.mkdir()
        pem = s._cert(f"{self.name}.test")
        key = s.dir / f"{self.name}.test.key"
        crt = s.dir / f"{self.name}.test.crt"
        shutil.copy(COMPOSE / "synapse" / "log.config", self.dir / "log.config")
        doc = {
            "server_name": self.server_name,
            "public_baseurl": f"https://{self.server_name}/",
            "report_stats": False,
            "log_config": s.in_chroot(self.dir / "log.config"),
            "signing_key_path": s.in_chroot(self.dir / "signing.key"),
            "media_store_path": s.in_chroot(self.dir / "media"),
            "registration_shared_secret": SECRETS["SYNAPSE_REGISTRATION_SHARED_SECRET"],
            "macaroon_secret_key": "peer-macaroon",
            "form_secret": "peer-form",
            "suppress_key_server_warning": True,
            "tls_certificate_path": s.in_chroot(crt),
            "tls_private_key_path": s.in_chroot(key),
            "listeners": [{"port": self.port, "type": "http", "tls": True,
                           "bind_addresses": ["127.0.0.1"],
                           "resources": [{"names": ["client", "federation"]}]}],
            "database": {"name": "sqlite3",
                         "args": {"database": s.in_chroot(self.dir / "homeserver.db")}},
        }
        doc.update(TEST_OVERLAY)
        (self.dir / "homeserver.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
        uid, gid = _passwd(CHROOT, "matrix-synapse")
        for p in (self.dir, *self.dir.iterdir()):
            os.chown(p, uid, gid)
        del pem
        argv = ["/usr/bin/python3", "-m", "synapse.app.homeserver", "-c",
                s.in_chroot(self.dir / "homeserver.yaml")]
        s.chroot.run(argv + ["--generate-keys"], user="matrix-synapse", env=s._synapse_env())
        self.proc = s._spawn(f"synapse-{self.name}", argv, user="matrix-synapse",
                             env=s._synapse_env())
        wait_for(lambda: http_get(self.port, "/health", tls=True)[0] == 200, timeout=90,
                 what=f"{self.name} healthy")
        self.startup = time.monotonic() - t0
        return self

    def register(self, localpart, password="spoa-pass"):
        conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=30,
                                           context=ssl._create_unverified_context())
        return register_user(conn, localpart, password, False)
