"""Live load on the real stack: steady client traffic, a timeline sampler of the agent's and
HAProxy's view of a worker, synthetic room keys whose first rendezvous choice is a given worker,
and Prometheus scraping everything with the compose stack's own scrape config."""

from __future__ import annotations

import collections
import concurrent.futures
import http.client
import json
import os
import pathlib
import subprocess
import sys
import threading
import time
import urllib.parse

import yaml

import realstack

DASHBOARD_TESTS = realstack.SOURCE / "tests" / "dashboard"
INTEGRATION_TESTS = realstack.SOURCE / "tests" / "integration"


class RoomTraffic:
    """Open-loop client traffic: GET /messages and PUT /send over `rooms` at `rate` requests per
    second in all, each request on its own connection from a pool of `concurrency` threads, with
    a `timeout` s client timeout — many independent clients, so one stuck request does not hold
    back the others. Records (t_start, room, method, status, duration)."""

    def __init__(self, stack, token, rooms, rate=12.0, concurrency=64, timeout=10.0):
        self.stack, self.token, self.rooms = stack, token, list(rooms)
        self.interval = 1.0 / rate
        self.timeout = timeout
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.records = []
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency)
        self.thread = threading.Thread(target=self.schedule, daemon=True)

    def schedule(self):
        n, next_at = 0, time.monotonic()
        while not self.stop_flag.is_set():
            self.pool.submit(self.one, n)
            n += 1
            next_at += self.interval
            self.stop_flag.wait(max(0.0, next_at - time.monotonic()))

    def one(self, n):
        room = self.rooms[n % len(self.rooms)]
        q = urllib.parse.quote(room, safe="")
        if n // len(self.rooms) % 2:
            method, body = "PUT", json.dumps({"msgtype": "m.text", "body": str(n)})
            path = f"/_matrix/client/v3/rooms/{q}/send/m.room.message/t{n}-{time.monotonic_ns()}"
        else:
            method, body = "GET", None
            path = f"/_matrix/client/v3/rooms/{q}/messages?dir=b&limit=5"
        t = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=self.timeout)
        try:
            conn.request(method, path, body=body,
                         headers={"Authorization": f"Bearer {self.token}",
                                  "Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException) as e:
            status = type(e).__name__
        finally:
            conn.close()
        with self.lock:
            self.records.append((t, room, method, status, time.monotonic() - t))

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(timeout=10)
        self.pool.shutdown(wait=True)


class Background:
    """Long-poll /sync loops (SyncRestServlet in flight on client_sync1) and media downloads
    that wait for a pending upload (MSC2246: requests in flight on media1), so that the in-flight
    families of real Synapse have samples while Prometheus scrapes."""

    def __init__(self, stack, token):
        self.stack, self.token = stack, token
        self.stop_flag = threading.Event()
        self.threads = [threading.Thread(target=self.sync_loop, daemon=True),
                        threading.Thread(target=self.pending_media_loop, daemon=True)]

    def _call(self, method, path, timeout=40):
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=timeout)
        try:
            conn.request(method, path, headers={"Authorization": f"Bearer {self.token}"})
            resp = conn.getresponse()
            body = resp.read()
            return resp.status, body
        except (OSError, http.client.HTTPException):
            return None, b""
        finally:
            conn.close()

    def sync_loop(self):
        since = None
        while not self.stop_flag.is_set():
            path = "/_matrix/client/v3/sync?timeout=3000" + (f"&since={since}" if since else "")
            status, body = self._call("GET", path)
            if status == 200:
                since = urllib.parse.quote(json.loads(body)["next_batch"], safe="")

    def pending_media_loop(self):
        status, body = self._call("POST", "/_matrix/media/v1/create")
        if status != 200:
            return
        server, media_id = json.loads(body)["content_uri"][len("mxc://"):].split("/", 1)
        while not self.stop_flag.is_set():
            self._call("GET", f"/_matrix/client/v1/media/download/{server}/{media_id}"
                              "?timeout_ms=4000")

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=45)


class Timeline:
    """Every `period` s: the agent's state/cpu/lag/capacity of `worker`, HAProxy's check state
    of it, and the agent's rooms per room worker."""

    def __init__(self, stack, worker, period=0.25):
        self.stack, self.worker, self.period = stack, worker, period
        self.t0 = time.monotonic()
        self.samples = []
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self):
        while not self.stop_flag.is_set():
            t = time.monotonic() - self.t0
            try:
                view = self.stack.worker_view(self.worker)
                hap = self.stack.server_status("synapse_room", self.worker)
                rooms = rooms_per_worker(self.stack)
            except Exception as e:  # a sample is best effort; the assertions read the rest
                view, hap, rooms = {"state": f"error {e}"}, None, {}
            self.samples.append((t, view, hap, rooms))
            self.stop_flag.wait(self.period)

    def first(self, predicate, after=0.0):
        for t, view, hap, rooms in self.samples:
            if t >= after and predicate(view, hap, rooms):
                return t
        return None

    def changes(self):
        """Samples where the agent's state or HAProxy's state changed."""
        out, last = [], None
        for t, view, hap, rooms in self.samples:
            key = (view.get("state"), hap)
            if key != last:
                out.append((t, view, hap, rooms))
                last = key
        return out

    def __enter__(self):
        self.t0 = time.monotonic()
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        self.thread.join(timeout=10)


def rooms_per_worker(stack):
    out = {}
    for (name, labels), v in stack.agent_metrics().items():
        d = dict(labels)
        if name == "synapse_spoa_affinity_keys" and d.get("pool") == "room":
            out[d["worker"]] = int(v)
    return out


def keys_first_on(stack, worker, n, prefix):
    """n synthetic room IDs whose first rendezvous choice (offline, every worker healthy) is
    `worker`: where a new room goes unless the agent steers it away."""
    out, i = [], 0
    while len(out) < n:
        batch = [f"!{prefix}{j}:{stack.server_name}" for j in range(i, i + 200)]
        i += 200
        lines = "".join(f"GET /_matrix/client/v3/rooms/{urllib.parse.quote(r, safe='')}/messages\n"
                        for r in batch)
        r = subprocess.run([str(realstack.AGENT), "route", "--config", str(stack.agent_config), "-"],
                           input=lines, capture_output=True, text=True, check=True)
        for room, line in zip(batch, r.stdout.splitlines()):
            ranking = json.loads(line)["placement"]["ranking"]
            if ranking[0]["worker"] == worker:
                out.append(room)
    return out[:n]


def probe(stack, token, room):
    """One /messages request for a room through HAProxy; (status, server the agent named)."""
    q = urllib.parse.quote(room, safe="")
    conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
    try:
        conn.request("GET", f"/_matrix/client/v3/rooms/{q}/messages?limit=1",
                     headers={"Authorization": f"Bearer {token}"})
        resp = conn.getresponse()
        resp.read()
        return resp.status
    except (OSError, http.client.HTTPException) as e:
        return type(e).__name__
    finally:
        conn.close()


def served_by(stack, room):
    """[(server, srv)] of every logged room request for `room` (any encoding)."""
    import checks
    return [(e["server"], e["srv"]) for e in checks.client_entries(stack)
            if checks.room_of(e["path"]) == room and e["backend"] == "synapse_room"]


class Prometheus:
    """Debian's Prometheus scraping the real stack with compose/prometheus/prometheus.yml's
    jobs and labels (only the addresses change), 1 s interval."""

    def __init__(self, stack):
        self.stack = stack
        self.port = realstack.free_port()
        cfg = yaml.safe_load((realstack.COMPOSE / "prometheus" / "prometheus.yml").read_text())
        cfg["global"] = {"scrape_interval": "1s", "scrape_timeout": "900ms",
                         "evaluation_interval": "1s"}
        for job in cfg["scrape_configs"]:
            for sc in job["static_configs"]:
                if job["job_name"] == "synapse":
                    sc["targets"] = [f"127.0.0.1:{stack.ports[sc['labels']['worker']]['metrics']}"]
                elif job["job_name"] == "haproxy":
                    sc["targets"] = [f"127.0.0.1:{stack.stats_port}"]
                elif job["job_name"] == "synapse-spoa":
                    sc["targets"] = [f"127.0.0.1:{stack.agent_metrics_port}"]
                else:
                    raise ValueError(f"unknown job {job['job_name']}")
        self.config = stack.dir / "prometheus.yml"
        self.config.write_text(yaml.safe_dump(cfg, sort_keys=False))

    def start(self):
        d = self.stack.dir / "tsdb"
        self.proc = self.stack._spawn("prometheus", [
            "/usr/bin/prometheus", f"--config.file={self.config}", f"--storage.tsdb.path={d}",
            f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            env=dict(os.environ))
        sys.path.insert(0, str(DASHBOARD_TESTS))
        import test_dashboard
        self.td = test_dashboard
        self.api = test_dashboard.Prometheus(self.port)
        realstack.wait_for(self.api.ready, timeout=30, what="Prometheus ready")
        realstack.wait_for(self.api.targets_up, timeout=30, what="every Prometheus target up")
        return self

    def evaluate_dashboard(self, window=20.0):
        """Every panel target, evaluated repeatedly for up to `window` s: a target passes once
        its query has returned series (real Synapse writes in-flight gauges only while a request
        is in flight). Returns (rows in target order, the dashboard test module, variables)."""
        td = self.td
        dash = td.load_dashboard()
        targets = td.panel_targets(dash)
        best = {}

        def all_seen():
            for row in td.evaluate(self.api, targets, td.template_values(self.api, dash)):
                if row[:2] not in best or row[3] > best[row[:2]][3]:
                    best[row[:2]] = row
            return not td.failures(best.values(), without_shared=True)

        try:
            realstack.wait_for(all_seen, timeout=window, interval=1.0, what="every panel's series")
        except TimeoutError:
            pass  # the caller's assertion names what is missing
        return [best[t[1], t[2]] for t in targets], td, td.template_values(self.api, dash)


def bad_spop_peer(stack):
    """An SPOP peer offering an unsupported version: the agent disconnects it (status 8)."""
    sys.path.insert(0, str(INTEGRATION_TESTS))
    import spop_peer as sp
    peer = sp.Peer(stack.agent_port)
    peer.send(sp.hello(version="1.0"))
    peer.recv_frame()
    peer.close()


def summarize(records, t0):
    """Per second since t0: requests, non-2xx/4xx outcomes."""
    per = collections.defaultdict(collections.Counter)
    for t, room, method, status, _ in records:
        per[int(t - t0)][status if not isinstance(status, int) or status >= 500 else "ok"] += 1
    return dict(sorted(per.items()))
