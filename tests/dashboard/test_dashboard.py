"""The Grafana dashboard (grafana/), proven against a real Prometheus.

DashboardFiles (offline): the JSON's structure (fixed datasource uid everywhere, no `${DS_...}`
import placeholders, unique panel ids, gridPos inside 24 columns without overlaps), the
provisioning files against compose/docker-compose.yml's mounts, every panel described in
grafana/README.md, and every query parsed by `promtool check rules`.

DashboardAgainstPrometheus (live): starts the integration harness's Stack (simulated Synapse
workers + synapse-spoa with its shared affinity store on a real redis-server + real HAProxy) and
Debian's `prometheus` on a free port, scraping them every second with the job names and target
labels of compose/prometheus/prometheus.yml (only the addresses change). Traffic flows through
HAProxy for every pool (new keys are claimed in Redis, their TTLs refreshed), one worker is slow
(requests in flight), one room worker goes down (its rooms move, pushed to Redis), and one SPOP
peer speaks a bad protocol version (an SPOP error). Then every target of every panel is
evaluated through /api/v1/query, with template variables substituted the way Grafana would
(below), and must return at least one series. A panel that queries a metric nobody exports, or a
label nobody sets, fails the test.

Template variables: `$__rate_interval` (and `$__interval`) become RATE_WINDOW, which holds
enough 1 s samples; `$worker` becomes what Grafana sends for "All": every value of the
variable's own `label_values(...)` query, asked of Prometheus, as a regex alternation."""

import http.client
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.error
import urllib.parse
import urllib.request

import yaml

SOURCE = pathlib.Path(os.environ.get("SPOA_SOURCE_DIR", pathlib.Path(__file__).resolve().parents[2]))
DASHBOARD = SOURCE / "grafana" / "dashboards" / "synapse-spoa.json"
DATASOURCES = SOURCE / "grafana" / "provisioning" / "datasources" / "prometheus.yaml"
PROVIDERS = SOURCE / "grafana" / "provisioning" / "dashboards" / "dashboards.yaml"
README = SOURCE / "grafana" / "README.md"
COMPOSE = SOURCE / "compose" / "docker-compose.yml"
COMPOSE_PROMETHEUS = SOURCE / "compose" / "prometheus" / "prometheus.yml"
PROMETHEUS = os.environ.get("SPOA_PROMETHEUS", "prometheus")
PROMTOOL = os.environ.get("SPOA_PROMTOOL", "promtool")

DATASOURCE_UID = "synapse-spoa-prometheus"
RATE_WINDOW = "30s"
# Constructs that turn a missing metric into a value would let a panel pass with nothing behind it.
MASKING = re.compile(r"\bor\b|\bunless\b|\babsent(_over_time)?\s*\(|\bvector\s*\(")
METRIC_NAME = re.compile(r"\b((?:synapse|process|python|haproxy)_[A-Za-z0-9_:]*)\b(?!\s*\()")


# --- the dashboard as data ----------------------------------------------------------------------
def load_dashboard(path=DASHBOARD):
    return json.loads(pathlib.Path(path).read_text())


def all_panels(dashboard):
    """Every panel, including those nested in collapsed rows."""
    for p in dashboard["panels"]:
        yield p
        yield from p.get("panels", [])


def panel_targets(dashboard):
    """[(panel id, panel title, refId, expr)] for every query target of every panel."""
    return [(p["id"], p["title"], t["refId"], t["expr"])
            for p in all_panels(dashboard) for t in p.get("targets", [])]


def variables(dashboard):
    return dashboard.get("templating", {}).get("list", [])


def variable_query(var):
    q = var.get("query")
    return q.get("query") if isinstance(q, dict) else q


def substitute(expr, values):
    """Replaces $name and ${name} by values[name]; every `$` must be consumed."""
    def repl(m):
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no value for template variable ${name} in {expr!r}")
        return values[name]
    out = re.sub(r"\$\{(\w+)\}|\$(\w+)", repl, expr)
    if "$" in out:
        raise KeyError(f"unsubstituted `$` left in {out!r}")
    return out


def builtin_values():
    return {"__rate_interval": RATE_WINDOW, "__interval": RATE_WINDOW, "__range": "1h"}


def regex_alternation(values):
    """What Grafana sends for a multi-value variable set to All (no custom all value)."""
    return "(" + "|".join(re.sub(r"([\\.+*?()\[\]{}|^$])", r"\\\\\1", v) for v in sorted(values)) + ")"


# --- Prometheus's HTTP API ----------------------------------------------------------------------
class Prometheus:
    def __init__(self, port):
        self.base = f"http://127.0.0.1:{port}"

    def get(self, path, **params):
        url = f"{self.base}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params, doseq=True)
        try:
            with urllib.request.urlopen(url, timeout=10) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as e:  # 400/422 carry a JSON error body
            return json.loads(e.read())

    def query(self, expr):
        """(series, error): the result of an instant query now."""
        r = self.get("/api/v1/query", query=expr)
        if r.get("status") != "success":
            return [], f"{r.get('errorType')}: {r.get('error')}"
        data = r["data"]
        if data["resultType"] in ("vector", "matrix"):
            return data["result"], None
        return [{"metric": {}, "value": data["result"]}], None

    def label_values(self, label, match):
        r = self.get(f"/api/v1/label/{label}/values", **{"match[]": match})
        return r.get("data", []) if r.get("status") == "success" else []

    def ready(self):
        try:
            with urllib.request.urlopen(f"{self.base}/-/ready", timeout=2) as resp:
                return resp.status == 200
        except OSError:
            return False

    def targets_up(self):
        r = self.get("/api/v1/targets", state="active")
        active = r.get("data", {}).get("activeTargets", [])
        return bool(active) and all(t["health"] == "up" for t in active)


def template_values(prom, dashboard):
    """Values for every variable: built-ins, plus each query variable's label_values() answer."""
    values = builtin_values()
    for var in variables(dashboard):
        if var.get("type") != "query":
            raise ValueError(f"variable {var['name']}: type {var.get('type')} is not handled")
        m = re.fullmatch(r"\s*label_values\(\s*(.+?)\s*,\s*(\w+)\s*\)\s*", variable_query(var))
        if not m:
            raise ValueError(f"variable {var['name']}: only label_values(metric, label) is handled")
        found = prom.label_values(m.group(2), m.group(1))
        values[var["name"]] = regex_alternation(found) if found else None
    return values


def evaluate(prom, targets, values):
    """[(title, refId, expr as evaluated, series, error)] for every target."""
    rows = []
    for _pid, title, ref, expr in targets:
        try:
            concrete = substitute(expr, {k: v for k, v in values.items() if v is not None})
        except KeyError as e:
            rows.append((title, ref, expr, 0, str(e)))
            continue
        series, error = prom.query(concrete)
        if not series and error is None:
            missing = [n for n in sorted(set(METRIC_NAME.findall(concrete)))
                       if not prom.query(f'count({{__name__="{n}"}})')[0]]
            error = ("no series" + (f"; no data at all for {', '.join(missing)}" if missing
                                    else "; the metrics exist but not with these labels"))
        rows.append((title, ref, concrete, len(series), error))
    return rows


def failures(rows, without_shared=False):
    """Rows whose query returned no series. without_shared: leave out the shared store's panels
    (synapse_spoa_shared_*), for a stack whose agent runs without `shared:` (the real-Synapse
    stage: one agent; dashboard_prometheus proves those panels with a real redis-server)."""
    return [r for r in rows
            if r[3] < 1 and not (without_shared and "synapse_spoa_shared_" in r[2])]


def table(rows):
    lines = [f"{'panel':<36} {'ref':<3} {'series':>6}  expr"]
    for title, ref, expr, n, error in rows:
        lines.append(f"{title[:36]:<36} {ref:<3} {n:>6}  {expr}" + (f"   <-- {error}" if n < 1 else ""))
    return "\n".join(lines)


# --- offline checks -----------------------------------------------------------------------------
def overlaps(a, b):
    return (a["x"] < b["x"] + b["w"] and b["x"] < a["x"] + a["w"]
            and a["y"] < b["y"] + b["h"] and b["y"] < a["y"] + a["h"])


class DashboardFiles(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.text = DASHBOARD.read_text()
        cls.dash = json.loads(cls.text)

    def test_top_level(self):
        d = self.dash
        self.assertIsNone(d.get("id"), "a file dashboard has id null; Grafana assigns it")
        self.assertRegex(d.get("uid", ""), r"^[A-Za-z0-9_-]{8,40}$")
        self.assertGreaterEqual(d.get("schemaVersion", 0), 36)
        self.assertTrue(d.get("title"))
        self.assertNotIn("__inputs", d, "import-only block: file provisioning ignores it")
        self.assertNotIn("__requires", d)

    def test_no_import_placeholders(self):
        self.assertNotIn("${DS_", self.text)
        self.assertNotIn("$DS_", self.text)

    def test_every_panel_and_target_uses_the_fixed_datasource(self):
        want = {"type": "prometheus", "uid": DATASOURCE_UID}
        for p in all_panels(self.dash):
            self.assertEqual(p.get("datasource"), want, p["title"])
            for t in p.get("targets", []):
                self.assertEqual(t.get("datasource"), want, f"{p['title']} {t.get('refId')}")
        for var in variables(self.dash):
            self.assertEqual(var.get("datasource"), want, var["name"])

    def test_panel_ids_unique_and_grid_positions_set(self):
        panels = list(all_panels(self.dash))
        ids = [p["id"] for p in panels]
        self.assertEqual(len(ids), len(set(ids)), ids)
        for p in panels:
            g = p.get("gridPos")
            self.assertIsNotNone(g, p["title"])
            for k in ("x", "y", "w", "h"):
                self.assertIsInstance(g.get(k), int, f"{p['title']}: gridPos.{k}")
            self.assertTrue(0 <= g["x"] and g["w"] > 0 and g["x"] + g["w"] <= 24, p["title"])
            self.assertTrue(g["y"] >= 0 and g["h"] > 0, p["title"])
        top = self.dash["panels"]
        for i, a in enumerate(top):
            for b in top[i + 1:]:
                self.assertFalse(overlaps(a["gridPos"], b["gridPos"]), f"{a['title']} / {b['title']}")

    def test_every_data_panel_has_targets_with_unique_ref_ids(self):
        for p in all_panels(self.dash):
            if p["type"] == "row":
                continue
            refs = [t["refId"] for t in p.get("targets", [])]
            self.assertTrue(refs, p["title"])
            self.assertEqual(len(refs), len(set(refs)), p["title"])
            for t in p["targets"]:
                self.assertTrue(t.get("expr", "").strip(), f"{p['title']} {t['refId']}")

    def test_no_query_masks_a_missing_metric(self):
        for _pid, title, ref, expr in panel_targets(self.dash):
            self.assertIsNone(MASKING.search(expr), f"{title} {ref}: {expr}")

    def test_covers_the_issue(self):
        exprs = " ".join(e for *_x, e in panel_targets(self.dash))
        for metric in ("synapse_spoa_decisions_total", "synapse_spoa_affinity_moves_total",
                       "process_cpu_seconds_total", "python_twisted_reactor_tick_time",
                       "synapse_http_server_in_flight_requests_count",
                       "synapse_spoa_decision_duration_seconds", "synapse_spoa_spop_closes_total",
                       "haproxy_backend_http_requests_total",
                       "haproxy_backend_response_time_average_seconds"):
            self.assertIn(metric, exprs)

    def test_covers_the_shared_store(self):
        """Issue 14: the shared store's metrics (src/agent/metrics.cpp, collect_shared)."""
        exprs = " ".join(e for *_x, e in panel_targets(self.dash))
        for metric in ("synapse_spoa_shared_connected", "synapse_spoa_shared_operations_total",
                       "synapse_spoa_shared_results_total", "synapse_spoa_shared_errors_total",
                       "synapse_spoa_shared_connections_total",
                       "synapse_spoa_shared_redis_latency_seconds_bucket"):
            self.assertIn(metric, exprs)

    def test_queries_parse(self):
        """promtool parses every expression (after substitution) as a recording rule."""
        values = dict(builtin_values(), **{v["name"]: "(room1|room2)" for v in variables(self.dash)})
        rules = [{"record": f"dashboard:panel{pid}_{ref}", "expr": substitute(expr, values)}
                 for pid, _t, ref, expr in panel_targets(self.dash)]
        with tempfile.NamedTemporaryFile("w", suffix=".yml") as f:
            yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}, f)
            f.flush()
            r = subprocess.run([PROMTOOL, "check", "rules", f.name], capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)

    def test_datasource_provisioning(self):
        doc = yaml.safe_load(DATASOURCES.read_text())
        self.assertEqual(doc["apiVersion"], 1)
        [ds] = doc["datasources"]
        self.assertEqual(ds["uid"], DATASOURCE_UID)
        self.assertEqual(ds["type"], "prometheus")
        self.assertEqual(ds["url"], "http://prometheus:9090")
        self.assertEqual(ds.get("access", "proxy"), "proxy")

    def test_dashboard_provider_matches_the_compose_mounts(self):
        compose = yaml.safe_load(COMPOSE.read_text())
        mounts = {}
        for vol in compose["services"]["grafana"]["volumes"]:
            host, container, *_ = vol.split(":")
            mounts[host] = container
        self.assertEqual(mounts.get("../grafana/provisioning"), "/etc/grafana/provisioning")
        doc = yaml.safe_load(PROVIDERS.read_text())
        [prov] = doc["providers"]
        self.assertEqual(prov["type"], "file")
        self.assertEqual(prov["options"]["path"], mounts.get("../grafana/dashboards"),
                         "the provider must read the directory compose mounts grafana/dashboards at")

    def test_readme_describes_every_panel(self):
        readme = README.read_text()
        for p in all_panels(self.dash):
            if p["type"] != "row":
                self.assertIn(f"**{p['title']}**", readme, p["title"])

    def test_shipped_prometheus_config_passes_promtool(self):
        r = subprocess.run([PROMTOOL, "check", "config", str(COMPOSE_PROMETHEUS)],
                           capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)


# --- live: real Prometheus, real HAProxy, the agent and simulated workers -----------------------
AGENT_EXTRA = """load:
  scrape_interval: 300ms
  scrape_timeout: 250ms
  down_after_failures: 2
placement:
  hash_key: dashboard-test
"""
# The agent's `shared:` section besides `redis` (the Stack's redis-server): TTL refreshes every
# second, so the refresh series moves within the test's window.
SHARED = {"refresh_interval": "1s"}
ROOMS = [f"!dash{i}:example.org" for i in range(40)]
SCENARIO = [
    'synapse_spoa_affinity_moves_total{reason="down"} > 0',        # room4's rooms moved
    'synapse_spoa_spop_closes_total{status!="0"} > 0',             # the bad SPOP peer
    'synapse_http_server_in_flight_requests_count{worker="media1"} > 0',  # slow media1
    'haproxy_server_status{server="room4", state="UP"} == 0',      # HAProxy saw room4 down
    'count_over_time(synapse_spoa_build_info[1m]) >= 20',          # 20 s of 1 s samples
    'synapse_spoa_shared_connected == 1',                          # the agent on redis-server
    'synapse_spoa_shared_results_total{result="claim_won"} > 0',   # new keys claimed
    'synapse_spoa_shared_operations_total{op="refresh"} > 0',      # their TTLs refreshed
    'synapse_spoa_shared_operations_total{op="move"} > 0',         # room4's moves pushed
    'synapse_spoa_shared_redis_latency_seconds_count > 0',         # round trips measured
]
X_MATRIX = 'X-Matrix origin="other{n}.org",destination="example.org",key="ed25519:a",sig="x"'


def local_scrape_config(stack):
    """compose/prometheus/prometheus.yml with loopback addresses and a 1 s interval: the same
    jobs and target labels the dashboard sees in the compose stack."""
    cfg = yaml.safe_load(COMPOSE_PROMETHEUS.read_text())
    cfg["global"] = {"scrape_interval": "1s", "scrape_timeout": "900ms", "evaluation_interval": "1s"}
    for job in cfg["scrape_configs"]:
        for sc in job["static_configs"]:
            if job["job_name"] == "synapse":
                worker = sc["labels"]["worker"]
                if worker not in stack.metrics_port:
                    raise ValueError(f"compose worker {worker} is not in the test stack")
                sc["targets"] = [f"127.0.0.1:{stack.metrics_port[worker]}"]
            elif job["job_name"] == "haproxy":
                sc["targets"] = [f"127.0.0.1:{stack.stats_port}"]
            elif job["job_name"] == "synapse-spoa":
                sc["targets"] = [f"127.0.0.1:{stack.agent_metrics_port}"]
            else:
                raise ValueError(f"unknown job {job['job_name']} in {COMPOSE_PROMETHEUS}")
    return cfg


class Traffic:
    """Background requests through HAProxy, one thread per request list, until stopped."""

    def __init__(self, stack, lists):
        self.stack, self.lists, self.stop_flag = stack, lists, threading.Event()
        self.threads = [threading.Thread(target=self.run, args=(reqs,), daemon=True) for reqs in lists]

    def run(self, reqs):
        conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=10)
        n = 0
        while not self.stop_flag.is_set():
            method, path, headers = reqs[n % len(reqs)]
            n += 1
            try:
                conn.request(method, path, body=b"{}" if method in ("PUT", "POST") else None,
                             headers=headers)
                conn.getresponse().read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", self.stack.port, timeout=10)
        conn.close()

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop_flag.set()
        for t in self.threads:
            t.join(timeout=15)


def request_lists():
    rooms = [("GET", f"/_matrix/client/v3/rooms/{r}/messages?dir=b", {}) for r in ROOMS]
    sends = [("PUT", f"/_matrix/client/v3/rooms/{r}/send/m.room.message/t{i}", {})
             for i, r in enumerate(ROOMS)]
    sync = [("GET", "/_matrix/client/v3/sync?since=s1_2&timeout=0",
             {"Authorization": f"Bearer syt_dXNlcns{i}_abc_def"}) for i in range(8)]
    fed = ([("PUT", f"/_matrix/federation/v1/send/{1700000000000 + i}",
             {"Authorization": X_MATRIX.format(n=i)}) for i in range(4)]
           + [("GET", f"/_matrix/federation/v1/state_ids/{r}", {}) for r in ROOMS[:8]])
    main = [("GET", "/_matrix/client/versions", {}), ("GET", "/_matrix/client/v3/pushrules/", {})]
    media = [("GET", "/_matrix/client/v1/media/download/example.org/AbCdEf", {})]
    # Three media clients against a slow media1 keep requests in flight at every scrape.
    return [rooms, sends, sync + main, fed, media, media, media]


class DashboardAgainstPrometheus(unittest.TestCase):
    def test_every_panel_query_returns_series(self):
        from harness import Proc, Stack, free_port, wait_for, worker_state
        import spop_peer as sp

        dash = load_dashboard()
        targets = panel_targets(dash)
        with Stack(agent_extra=AGENT_EXTRA, shared=SHARED) as stack:
            try:
                wait_for(stack.agent_up, what="HAProxy's SPOP check of the agent")
                cfg_path = stack.dir / "prometheus.yml"
                cfg_path.write_text(yaml.safe_dump(local_scrape_config(stack), sort_keys=False))
                r = subprocess.run([PROMTOOL, "check", "config", str(cfg_path)],
                                   capture_output=True, text=True)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
                port = free_port()
                proc = Proc("prometheus", [PROMETHEUS, f"--config.file={cfg_path}",
                                           f"--storage.tsdb.path={stack.dir / 'tsdb'}",
                                           f"--web.listen-address=127.0.0.1:{port}",
                                           "--log.level=warn"], stack.dir)
                stack.procs.append(proc)  # Stack.close() stops it first, by PID
                prom = Prometheus(port)
                wait_for(prom.ready, timeout=30, what="Prometheus ready")
                wait_for(prom.targets_up, timeout=30, what="every Prometheus target up")

                self.assertEqual(stack.control("media1", "slow", 250), 200)
                with Traffic(stack, request_lists()):
                    # An SPOP error: a peer that offers an unsupported version is disconnected
                    # with status 8, counted in synapse_spoa_spop_closes_total{status="8"}.
                    peer = sp.Peer(stack.agent_port)
                    peer.send(sp.hello(version="1.0"))
                    peer.recv_frame()
                    peer.close()
                    # A room worker goes down once it holds rooms: its rooms move.
                    wait_for(lambda: prom.query('synapse_spoa_decisions_total{server="room4", '
                                                'pool="room"}')[0], timeout=30,
                             what="room4 holds rooms (in Prometheus)")
                    self.assertEqual(stack.control("room4", "down"), 200)
                    wait_for(lambda: worker_state(stack, "room4") == "down", timeout=30,
                             what="room4 down in the agent's view")

                    # The scenario is in Prometheus (each condition fails the test by name if
                    # it never holds), then every panel has had time to fill.
                    for condition in SCENARIO:
                        wait_for(lambda c=condition: prom.query(c)[0], timeout=45,
                                 what=f"Prometheus: {condition}")
                    # A gauge that real Synapse writes only while something is in flight (and
                    # the simulator likewise) comes and goes between scrapes: a panel passes once
                    # its query has returned series during the window.
                    best = {}

                    def all_seen():
                        for row in evaluate(prom, targets, template_values(prom, dash)):
                            key = row[:2]
                            if key not in best or row[3] > best[key][3]:
                                best[key] = row
                        return not failures(best.values())

                    try:
                        wait_for(all_seen, timeout=30, what="every panel's query to return series")
                    except TimeoutError:
                        pass  # the assertions below name what is missing

                values = template_values(prom, dash)
                self.assertEqual(values["worker"].strip("()").split("|"),
                                 sorted(n for n, _p in stack.workers),
                                 "the $worker variable lists every scraped worker")
                rows = [best[t[1], t[2]] for t in targets]
                print("\n" + table(rows), flush=True)
                self.assertEqual(failures(rows), [], "panels whose query returned no series")
                self.assertEqual(len(rows), len(targets))

                # Negative self-checks: the same evaluator fails a metric nobody exports, and a
                # copy of the dashboard with one metric renamed fails on exactly that target.
                bogus = evaluate(prom, [(0, "bogus", "A",
                                         f"sum(rate(synapse_spoa_no_such_metric_total[{RATE_WINDOW}]))")],
                                 values)
                self.assertEqual(len(failures(bogus)), 1)
                self.assertIn("no data at all for synapse_spoa_no_such_metric_total", bogus[0][4])
                broken = json.loads(json.dumps(dash).replace("synapse_spoa_affinity_entries",
                                                             "synapse_spoa_affinity_entriez"))
                failed = failures(evaluate(prom, panel_targets(broken), values))
                self.assertEqual([(f[0], f[1]) for f in failed], [("Affinity table", "A")])
                wrong_label = evaluate(prom, [(0, "wrong label", "A",
                                               'haproxy_backend_http_requests_total{proxy="nope"}')],
                                       values)
                self.assertEqual(len(failures(wrong_label)), 1)
            except BaseException:
                stack.dump_logs()
                raise


if __name__ == "__main__":
    unittest.main()
