#!/usr/bin/env python3
"""Static checks of the compose stack (ctest `compose_stack`). No container engine is needed.

1. The files scripts/render-topology (compose/render.py) writes are up to date with
   compose/topology.yaml, haproxy/haproxy.cfg's server blocks included (ctest `compose_topology`
   runs `scripts/render-topology --check` on its own, which prints the diff).
2. Cross-check, reading every file as its consumer would (not trusting render.py): the worker
   names, host names and ports agree between docker-compose.yml, every Synapse worker file,
   homeserver.yaml, the agent's synapse-spoa.yaml, Prometheus's scrape config and
   haproxy/haproxy.cfg with the compose environment. A negative self-test mutates copies (a
   worker added in one place only, a port changed in one place) and expects each to be caught.
3. Every Synapse file parses and has the keys Synapse needs for the worker's role; no removed
   settings; the homeserver template renders with .env.example (compose/synapse/init.py).
4. External validators: `docker-compose config -q` with .env.example (and refusal without it),
   `haproxy -c` with the compose environment and host names, `promtool check config`, and
   `synapse-spoa check-config` on the config the image's entrypoint renders.

Environment: SPOA_SOURCE_DIR (repository root; default: two levels up), SPOA_AGENT_BINARY (the
built synapse-spoa; when unset that one check is reported as skipped).
Prints one line per check and a closing `compose_stack: N passed, N failed[, N skipped]`.
"""

from __future__ import annotations

import copy
import os
import re
import shutil
import subprocess
import sys
import tempfile
import traceback
from pathlib import Path

import yaml

SOURCE = Path(os.environ.get("SPOA_SOURCE_DIR") or Path(__file__).resolve().parents[2])
COMPOSE = SOURCE / "compose"
sys.path.insert(0, str(COMPOSE))
sys.path.insert(0, str(COMPOSE / "synapse"))

import init as synapse_init  # noqa: E402  compose/synapse/init.py
import render  # noqa: E402  compose/render.py

SYNAPSE_IMAGE = "matrixdotorg/synapse:"
HTTP_RESOURCES = {"client", "federation", "media"}
# Deprecated in 1.84 and removed in 1.88, or replaced by the *_instances / *_from_worker keys.
REMOVED_SETTINGS = {
    "worker_replication_host",
    "worker_replication_port",
    "worker_replication_http_port",
    "worker_replication_http_tls",
    "worker_main_http_uri",
    "send_federation",
    "start_pushers",
    "update_user_directory",
    "notify_appservices",
}
WRITER_STREAMS = ("typing", "to_device", "receipts", "presence", "account_data")


class Skip(Exception):
    pass


# --- Loading ----------------------------------------------------------------------------------


def read_env_file(path: Path) -> dict[str, str]:
    env = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def load_stack_texts(root: Path) -> dict[str, str]:
    """Every file the cross-check reads, relative path -> text."""
    texts = {}
    for rel in (
        "compose/docker-compose.yml",
        "compose/synapse/homeserver.yaml",
        "compose/synapse-spoa.yaml",
        "compose/prometheus/prometheus.yml",
        "haproxy/haproxy.cfg",
    ):
        texts[rel] = (root / rel).read_text(encoding="utf-8")
    for p in sorted((root / "compose/synapse/workers").glob("*.yaml")):
        texts[f"compose/synapse/workers/{p.name}"] = p.read_text(encoding="utf-8")
    return texts


def parse_haproxy(text: str) -> dict[str, dict[str, str]]:
    """backend -> {server name -> address expression}; only the parts the stack relies on."""
    backends: dict[str, dict[str, str]] = {}
    current = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip() if not raw.strip().startswith("log-format") else ""
        if not line:
            continue
        words = line.split()
        if words[0] in ("global", "defaults", "frontend", "listen", "backend", "peers", "resolvers"):
            current = words[1] if words[0] == "backend" and len(words) > 1 else None
            if current:
                backends[current] = {}
            continue
        if current and words[0] == "server" and len(words) >= 3:
            backends[current][words[1]] = words[2].strip('"')
    return backends


ENV_ADDR = re.compile(r"^\$\{([A-Z0-9_]+)-([^}]*)\}$")


def resolve_haproxy_addr(expr: str, env: dict[str, str]) -> tuple[str | None, str]:
    """'${VAR-default}' -> (VAR, value with env) ; a literal -> (None, literal)."""
    m = ENV_ADDR.match(expr)
    if not m:
        return None, expr
    return m.group(1), env.get(m.group(1), m.group(2))


def split_hostport(addr: str) -> tuple[str, int | None]:
    host, _, port = addr.rpartition(":")
    return host, int(port) if port.isdigit() else None


# --- Cross-check ------------------------------------------------------------------------------


def cross_check(texts: dict[str, str]) -> list[str]:
    """Every disagreement between the stack's files, as messages; [] when they agree."""
    errors: list[str] = []
    err = errors.append
    compose = yaml.safe_load(texts["compose/docker-compose.yml"])
    hs = yaml.safe_load(texts["compose/synapse/homeserver.yaml"])
    agent = yaml.safe_load(texts["compose/synapse-spoa.yaml"])
    prom = yaml.safe_load(texts["compose/prometheus/prometheus.yml"])
    haproxy = parse_haproxy(texts["haproxy/haproxy.cfg"])
    services = compose.get("services", {})

    # Synapse processes: main from homeserver.yaml's listeners, workers from their files.
    listeners = {"main": hs.get("listeners") or []}
    for rel, text in texts.items():
        if rel.startswith("compose/synapse/workers/"):
            doc = yaml.safe_load(text)
            stem = Path(rel).stem
            if doc.get("worker_name") != stem:
                err(f"{rel}: worker_name {doc.get('worker_name')!r} is not the file name {stem!r}")
            listeners[stem] = doc.get("worker_listeners") or []
    workers = set(listeners)

    def ports_with(name: str, wanted: set[str]) -> list[int]:
        out = []
        for lst in listeners.get(name, []):
            names = {n for r in lst.get("resources", []) for n in r.get("names", [])}
            if lst.get("type") == "http" and names & wanted:
                out.append(lst.get("port"))
        return out

    def metrics_port(name: str) -> int | None:
        ports = [lst.get("port") for lst in listeners.get(name, []) if lst.get("type") == "metrics"]
        return ports[0] if len(ports) == 1 else None

    serving = {w for w in workers if ports_with(w, HTTP_RESOURCES)}

    # Compose: one Synapse service per process, found by the worker file its command loads.
    host_of: dict[str, str] = {}
    for svc_name, svc in services.items():
        if not str(svc.get("image", "")).startswith(SYNAPSE_IMAGE):
            continue
        command = svc.get("command") or []
        if not command or command[0] != "run":
            continue  # the init service
        files = [c.split("=", 1)[1] for c in command if str(c).startswith("--config-path=")]
        worker_files = [f for f in files if "/workers/" in f]
        name = Path(worker_files[0]).stem if worker_files else "main"
        if name in host_of:
            err(f"docker-compose.yml: worker {name} runs in two services")
        host_of[name] = svc.get("hostname", svc_name)
        if svc.get("hostname", svc_name) != svc_name:
            err(f"docker-compose.yml: service {svc_name} has hostname {svc['hostname']}")
        if files[:1] != ["/config/homeserver.yaml"]:
            err(f"docker-compose.yml: {svc_name} must load /config/homeserver.yaml first")
        if name != "main":
            if svc.get("environment", {}).get("SYNAPSE_WORKER") != "synapse.app.generic_worker":
                err(f"docker-compose.yml: {svc_name} must set SYNAPSE_WORKER=synapse.app.generic_worker")
            dep = svc.get("depends_on", {}).get(host_of_main(services), {})
            if dep.get("condition") != "service_healthy":
                err(f"docker-compose.yml: {svc_name} must wait for main to be healthy")
        probe = " ".join(str(x) for x in svc.get("healthcheck", {}).get("test", []))
        m = re.search(r"localhost:(\d+)/health", probe)
        health_ports = ports_with(name, HTTP_RESOURCES | {"health"})
        if not m or int(m.group(1)) not in health_ports:
            err(f"docker-compose.yml: {svc_name}'s healthcheck probes no HTTP listener of {name}")
    for missing in sorted(workers - set(host_of)):
        err(f"docker-compose.yml: no service runs Synapse worker {missing}")
    for extra in sorted(set(host_of) - workers):
        err(f"docker-compose.yml: a service runs {extra}, which has no worker file")

    # homeserver.yaml: instance_map and every key naming a worker.
    instance_map = hs.get("instance_map") or {}
    if "main" not in instance_map:
        err("homeserver.yaml: instance_map has no main")
    for name, entry in instance_map.items():
        if name not in workers:
            err(f"homeserver.yaml: instance_map names unknown worker {name}")
            continue
        if entry.get("host") != host_of.get(name):
            err(f"homeserver.yaml: instance_map.{name}.host {entry.get('host')} != compose host {host_of.get(name)}")
        if entry.get("port") not in ports_with(name, {"replication"}):
            err(f"homeserver.yaml: instance_map.{name}.port {entry.get('port')} is not a replication listener of {name}")
    for name in workers:
        if ports_with(name, {"replication"}) and name not in instance_map:
            err(f"homeserver.yaml: {name} has a replication listener but is not in instance_map")
    writers = hs.get("stream_writers") or {}
    for stream, names in writers.items():
        for name in names:
            if name not in instance_map:
                err(f"homeserver.yaml: stream_writers.{stream} names {name}, not in instance_map")
    for stream in WRITER_STREAMS + ("events",):
        if not writers.get(stream):
            err(f"homeserver.yaml: stream_writers.{stream} is not set")
    named = list(hs.get("federation_sender_instances") or []) + list(hs.get("pusher_instances") or [])
    for key in (
        "run_background_tasks_on",
        "notify_appservices_from_worker",
        "update_user_directory_from_worker",
        "media_instance_running_background_jobs",
    ):
        if not hs.get(key):
            err(f"homeserver.yaml: {key} is not set")
        named.append(hs.get(key))
    for name in named:
        if name not in workers:
            err(f"homeserver.yaml: names worker {name}, which has no worker file")
    media = hs.get("media_instance_running_background_jobs")
    if media in workers and not ports_with(media, {"media", "client"}):
        err(f"homeserver.yaml: media worker {media} serves no media resource")
    if hs.get("enable_media_repo") is not False:
        err("homeserver.yaml: enable_media_repo must be false (media1 runs the media repository)")
    if not (hs.get("redis") or {}).get("enabled"):
        err("homeserver.yaml: redis.enabled must be true")
    if hs.get("enable_metrics") is not True:
        err("homeserver.yaml: enable_metrics must be true")
    if not hs.get("worker_replication_secret"):
        err("homeserver.yaml: worker_replication_secret is not set")

    # Metrics: every process has exactly one metrics listener.
    for name in sorted(workers):
        if metrics_port(name) is None:
            err(f"{name}: needs exactly one `type: metrics` listener")

    # The agent.
    agent_workers = {w.get("name"): w for w in agent.get("workers") or []}
    pools = agent.get("pools") or {}
    for name in sorted(workers - set(agent_workers)):
        err(f"synapse-spoa.yaml: Synapse worker {name} is missing")
    for name in sorted(set(agent_workers) - workers):
        err(f"synapse-spoa.yaml: worker {name} is no Synapse process")
    metrics_paths = set()
    for name, w in agent_workers.items():
        if name not in workers:
            continue
        m = re.match(r"^http://([^:/]+):(\d+)(/.*)$", str(w.get("metrics", "")))
        if not m:
            err(f"synapse-spoa.yaml: {name}.metrics is not http://HOST:PORT/PATH")
            continue
        metrics_paths.add(m.group(3))
        if m.group(1) != host_of.get(name) or int(m.group(2)) != metrics_port(name):
            err(f"synapse-spoa.yaml: {name}.metrics {m.group(1)}:{m.group(2)} != {host_of.get(name)}:{metrics_port(name)}")
        if bool(w.get("pool")) != (name in serving):
            err(f"synapse-spoa.yaml: {name} has pool {w.get('pool')!r} but "
                f"{'serves' if name in serving else 'does not serve'} HTTP")
        if w.get("pool") and w.get("pool") not in pools:
            err(f"synapse-spoa.yaml: {name}.pool {w['pool']} is not a pool")

    # HAProxy: every pool's backend, every server, every address variable.
    haproxy_svc = services.get("haproxy", {})
    hx_env = {k: str(v) for k, v in (haproxy_svc.get("environment") or {}).items()}
    in_backend: dict[str, str] = {}
    for pool_name, pool in pools.items():
        backend = pool.get("backend")
        if backend not in haproxy:
            err(f"haproxy.cfg: no backend {backend} for pool {pool_name}")
            continue
        for server, expr in haproxy[backend].items():
            in_backend[server] = pool_name
            var, addr = resolve_haproxy_addr(expr, hx_env)
            if var is None or var not in hx_env:
                err(f"docker-compose.yml: haproxy sets no {var or expr} for server {server}")
            agent_w = next((w for w in agent_workers.values() if w.get("server", w.get("name")) == server), None)
            if agent_w is None or agent_w.get("pool") != pool_name:
                err(f"haproxy.cfg: server {server} in {backend} is no worker of pool {pool_name} in synapse-spoa.yaml")
                continue
            name = agent_w["name"]
            host, port = split_hostport(addr)
            if host != host_of.get(name) or port not in ports_with(name, HTTP_RESOURCES):
                err(f"haproxy: {server} -> {addr}, but {name} serves HTTP on {host_of.get(name)}:{ports_with(name, HTTP_RESOURCES)}")
            if (haproxy_svc.get("depends_on") or {}).get(host_of.get(name), {}).get("condition") != "service_healthy":
                err(f"docker-compose.yml: haproxy must wait for {host_of.get(name)} to be healthy")
    for name, w in agent_workers.items():
        if w.get("pool") and w.get("server", name) not in in_backend:
            err(f"haproxy.cfg: no server {w.get('server', name)} for worker {name} (pool {w['pool']})")
    listen_port = split_hostport(str(agent.get("listen", "")))[1]
    if hx_env.get("SPOA_AGENT_ADDR") != f"synapse-spoa:{listen_port}":
        err(f"docker-compose.yml: SPOA_AGENT_ADDR {hx_env.get('SPOA_AGENT_ADDR')} != synapse-spoa:{listen_port}")
    spoe_mount = f"../haproxy/spoe-synapse.conf:{hx_env.get('SPOA_HAPROXY_DIR')}/spoe-synapse.conf:ro"
    if spoe_mount not in (haproxy_svc.get("volumes") or []):
        err(f"docker-compose.yml: haproxy must mount {spoe_mount}")

    # Prometheus.
    jobs = {j.get("job_name"): j for j in prom.get("scrape_configs") or []}
    syn = jobs.get("synapse", {})
    targets = {}
    for sc in syn.get("static_configs") or []:
        for t in sc.get("targets") or []:
            targets[(sc.get("labels") or {}).get("worker")] = t
    for name in sorted(workers):
        want = f"{host_of.get(name)}:{metrics_port(name)}"
        if targets.get(name) != want:
            err(f"prometheus.yml: synapse target for {name} is {targets.get(name)}, want {want}")
    for name in sorted(set(targets) - workers):
        err(f"prometheus.yml: scrapes {name}, which is no Synapse process")
    if metrics_paths and {syn.get("metrics_path")} != metrics_paths:
        err(f"prometheus.yml: metrics_path {syn.get('metrics_path')} != the agent's {sorted(metrics_paths)}")
    stats_port = split_hostport(hx_env.get("SPOA_HAPROXY_STATS", ""))[1]
    hp_targets = [t for sc in jobs.get("haproxy", {}).get("static_configs", []) for t in sc.get("targets", [])]
    if hp_targets != [f"haproxy:{stats_port}"]:
        err(f"prometheus.yml: haproxy target {hp_targets} != haproxy:{stats_port}")
    agent_port = split_hostport(str(agent.get("metrics_listen", "")))[1]
    sp_targets = [t for sc in jobs.get("synapse-spoa", {}).get("static_configs", []) for t in sc.get("targets", [])]
    if sp_targets != [f"synapse-spoa:{agent_port}"]:
        err(f"prometheus.yml: synapse-spoa target {sp_targets} != synapse-spoa:{agent_port}")
    return errors


def host_of_main(services: dict) -> str:
    for name, svc in services.items():
        cmd = svc.get("command") or []
        if str(svc.get("image", "")).startswith(SYNAPSE_IMAGE) and cmd[:1] == ["run"] and not any(
            "/workers/" in str(c) for c in cmd
        ):
            return name
    return "<no main service>"


# --- Checks -----------------------------------------------------------------------------------


def render_all(topo: dict) -> dict[str, str]:
    """Every generated text, by repository-relative path, as scripts/render-topology writes it."""
    texts = {f"compose/{rel}": text for rel, text in render.render(topo).items()}
    hx = (SOURCE / "haproxy/haproxy.cfg").read_text(encoding="utf-8")
    texts["haproxy/haproxy.cfg"] = render.render_haproxy(topo, hx)
    return texts


def check_rendered_up_to_date():
    files = render_all(render.load_topology(COMPOSE / "topology.yaml"))
    stale = [rel for rel, text in files.items() if not (SOURCE / rel).exists()
             or (SOURCE / rel).read_text(encoding="utf-8") != text]
    extra = [p.name for p in (COMPOSE / "synapse/workers").glob("*.yaml")
             if f"compose/synapse/workers/{p.name}" not in files]
    assert not stale and not extra, f"stale: {stale}, not in topology: {extra}; run scripts/render-topology"


def check_cross_agreement():
    errors = cross_check(load_stack_texts(SOURCE))
    assert not errors, "\n    ".join(["the stack's files disagree:"] + errors)


def new_room(topo: dict) -> dict:
    """A room worker the topology does not have yet, on free local ports (the self-tests add it,
    so they keep working after a real room worker is added)."""
    names = {w["name"] for w in topo["workers"]}
    used = {p for w in topo["workers"] for p in w["local"].values()}
    n = len(render.workers_of(topo, "room")) + 1
    while f"room{n}" in names:
        n += 1
    http = max(w["local"].get("http", 0) for w in topo["workers"]) + 1
    metrics = max(w["local"]["metrics"] for w in topo["workers"]) + 1
    while http in used or metrics in used or http == metrics:
        http, metrics = http + 1, metrics + 1
    return {"name": f"room{n}", "role": "room", "local": {"http": http, "metrics": metrics}}


def _mutations(texts: dict[str, str]):
    """(description, mutated copy, text every error list must mention). The workers it breaks are
    picked by role from the committed topology."""
    topo = render.load_topology(COMPOSE / "topology.yaml")
    rooms = render.workers_of(topo, "room")
    first, last, new = rooms[0], rooms[-1], new_room(topo)["name"]
    tasks, media = render.one_of(topo, "tasks"), render.one_of(topo, "media")
    sender = render.workers_of(topo, "federation_sender")[-1]

    def yaml_edit(rel, fn):
        t = copy.deepcopy(texts)
        doc = yaml.safe_load(t[rel])
        fn(doc)
        t[rel] = yaml.safe_dump(doc, sort_keys=False)
        return t

    yield f"{new} only in synapse-spoa.yaml", yaml_edit(
        "compose/synapse-spoa.yaml",
        lambda d: d["workers"].append({"name": new, "pool": "room", "metrics": f"http://{render.host_of(new)}:9000/_synapse/metrics"}),
    ), new
    t = copy.deepcopy(texts)
    t[f"compose/synapse/workers/{new}.yaml"] = t[f"compose/synapse/workers/{last}.yaml"].replace(last, new)
    yield f"{new} only as a Synapse worker file", t, new
    t = copy.deepcopy(texts)
    m = re.search(rf"^    server {last} .*\n", t["haproxy/haproxy.cfg"], re.M)
    assert m, f"haproxy.cfg has no {last} line to copy"
    copied = m.group(0).replace(last, new).replace(render.env_addr_var(last), render.env_addr_var(new))
    t["haproxy/haproxy.cfg"] = t["haproxy/haproxy.cfg"].replace(m.group(0), m.group(0) + copied)
    yield f"{new} only in haproxy.cfg", t, new
    yield f"{last} missing from prometheus.yml", yaml_edit(
        "compose/prometheus/prometheus.yml",
        lambda d: d["scrape_configs"][0]["static_configs"].pop(
            next(i for i, sc in enumerate(d["scrape_configs"][0]["static_configs"]) if sc["labels"]["worker"] == last)),
    ), last
    yield f"{first}'s metrics port changed in its worker file", yaml_edit(
        f"compose/synapse/workers/{first}.yaml",
        lambda d: next(lst for lst in d["worker_listeners"] if lst["type"] == "metrics").update(port=9999),
    ), first
    yield f"{tasks}'s replication port changed in instance_map", yaml_edit(
        "compose/synapse/homeserver.yaml", lambda d: d["instance_map"][tasks].update(port=9094)
    ), tasks
    yield f"HAProxy pointed at the wrong host for {media}", yaml_edit(
        "compose/docker-compose.yml",
        lambda d: d["services"]["haproxy"]["environment"].update(
            {render.env_addr_var(media): f"{render.host_of(first)}:8008"}),
    ), media
    yield "a stream writer outside instance_map", yaml_edit(
        "compose/synapse/homeserver.yaml", lambda d: d["stream_writers"].update(typing=[first])
    ), first
    yield f"{sender} has no compose service", yaml_edit(
        "compose/docker-compose.yml", lambda d: d["services"].pop(render.host_of(sender))
    ), sender


def check_cross_check_catches_mutations():
    texts = load_stack_texts(SOURCE)
    missed = []
    for what, mutated, mention in _mutations(texts):
        errors = cross_check(mutated)
        if not any(mention in e for e in errors):
            missed.append(f"{what} (errors: {errors})")
    assert not missed, "the cross-check missed: " + "; ".join(missed)


def check_new_room_worker_is_one_line():
    """Adding a room worker to topology.yaml (one line) and rendering leaves nothing to edit by
    hand: every file agrees, haproxy.cfg has its server line, and nothing outside the generated
    blocks and files changed."""
    topo = render.load_topology(COMPOSE / "topology.yaml")
    new = new_room(topo)
    name, port = new["name"], new["local"]["http"]
    server = f'    server {name} "${{{render.env_addr_var(name)}-127.0.0.1:{port}}}" weight 64 maxconn 128\n'
    last = max(i for i, w in enumerate(topo["workers"]) if w["role"] == "room")
    topo["workers"].insert(last + 1, new)
    before = load_stack_texts(SOURCE)
    texts = dict(before, **render_all(render.validate_topology(topo, "mutated topology")))
    errors = cross_check(texts)
    assert not errors, f"after adding {name} and rendering: " + "; ".join(errors)
    hx = texts["haproxy/haproxy.cfg"]
    assert server in hx, f"haproxy.cfg: no server line {server.strip()!r}"
    # Only the room block of haproxy.cfg grew, by exactly that line.
    assert hx.replace(server, "", 1) == before["haproxy/haproxy.cfg"], "haproxy.cfg changed elsewhere"
    assert f"compose/synapse/workers/{name}.yaml" in texts
    print(f"    {name}: one topology line, {sum(texts[r] != before.get(r) for r in texts)} files rendered")


def check_topology_errors():
    """A bad topology stops the render with a message naming the worker and the key; haproxy.cfg
    without a pool's markers stops it too."""
    good = render.load_topology(COMPOSE / "topology.yaml")
    new = new_room(good)
    name = new["name"]
    other = next(w for w in good["workers"] if "http" in w["local"])

    def error_of(edit) -> str:
        topo = copy.deepcopy(good)
        edit(topo)
        try:
            render.validate_topology(topo, "topology.yaml")
            render.render_haproxy(topo, (SOURCE / "haproxy/haproxy.cfg").read_text(encoding="utf-8"))
        except render.TopologyError as e:
            return str(e)
        return "(accepted)"

    cases = [
        (lambda t: t["workers"].append({"name": name, "role": "room"}),
         f"topology.yaml: worker {name}: needs local: {{http: PORT, metrics: PORT}} (its ports on "
         "127.0.0.1 in the demo), found None"),
        (lambda t: t["workers"].append(dict(new, local=dict(new["local"], http=other["local"]["http"]))),
         f"topology.yaml: worker {name}: local.http {other['local']['http']} is also "
         f"{other['name']}'s local.http"),
        (lambda t: t["workers"].append(dict(new, weight=5)),
         f"topology.yaml: worker {name}: weight 5 gives HAProxy weight 320, outside 1..256"),
        (lambda t: t["workers"].append(dict(new, port=1)),
         f"topology.yaml: worker {name}: unknown keys ['port']"),
    ]
    for edit, want in cases:
        got = error_of(edit)
        assert got == want, f"want {want!r}, got {got!r}"
    hx = (SOURCE / "haproxy/haproxy.cfg").read_text(encoding="utf-8")
    for cut, want in (
        ("    # END servers of pool media\n",
         "haproxy/haproxy.cfg: `# BEGIN servers of pool media` has no matching END/BEGIN"),
        ("    # BEGIN servers of pool room: written by scripts/render-topology from compose/topology.yaml\n",
         "haproxy/haproxy.cfg: `# END servers of pool room` has no matching END/BEGIN"),
    ):
        assert cut in hx, f"haproxy.cfg lacks {cut!r}"
        try:
            render.render_haproxy(good, hx.replace(cut, ""))
        except render.TopologyError as e:
            assert str(e) == want, f"want {want!r}, got {str(e)!r}"
        else:
            raise AssertionError(f"haproxy.cfg without {cut.strip()!r} was accepted")


def check_local_ports_match_embedded_default():
    """scripts/demo runs the agent's embedded default config with the topology's workers on their
    `local` ports. Where both name a worker, its pool and metrics URL must be the same (a worker
    added to the topology only is run by the demo as an extra one)."""
    default = yaml.safe_load((SOURCE / "src/config/default_config.yaml").read_text(encoding="utf-8"))
    topo = render.load_topology(COMPOSE / "topology.yaml")
    local = render.local_agent_config(topo, default)
    ours = {w["name"]: w for w in local["workers"]}
    bad = [f"{w['name']}: embedded {w} != topology {ours[w['name']]}"
           for w in default["workers"] if w["name"] in ours and w != ours[w["name"]]]
    assert not bad, "compose/topology.yaml `local` disagrees with src/config/default_config.yaml: " + "; ".join(bad)
    extra = sorted(set(ours) - {w["name"] for w in default["workers"]})
    print(f"    demo: the embedded default config" + (f" + {', '.join(extra)}" if extra else
                                                     " exactly (the reference topology)"))


def check_synapse_files():
    hs = yaml.safe_load((COMPOSE / "synapse/homeserver.yaml").read_text(encoding="utf-8"))
    for key in ("server_name", "report_stats", "signing_key_path", "database", "listeners",
                "instance_map", "stream_writers", "worker_replication_secret", "redis"):
        assert key in hs, f"homeserver.yaml: {key} is missing"
    assert hs["database"]["name"] == "psycopg2", "workers need PostgreSQL"
    for p in sorted((COMPOSE / "synapse/workers").glob("*.yaml")):
        doc = yaml.safe_load(p.read_text(encoding="utf-8"))
        bad = REMOVED_SETTINGS & set(doc)
        assert not bad, f"{p.name}: removed settings {sorted(bad)}"
        assert doc.get("worker_app") == "synapse.app.generic_worker", f"{p.name}: worker_app"
        assert doc.get("worker_name") == p.stem, f"{p.name}: worker_name"
        assert doc.get("worker_log_config"), f"{p.name}: worker_log_config"
        for lst in doc.get("worker_listeners") or []:
            assert lst.get("type") in ("http", "metrics"), f"{p.name}: listener type {lst.get('type')}"
            assert isinstance(lst.get("port"), int), f"{p.name}: TCP listeners here"
            if lst["type"] == "http":
                assert lst.get("resources"), f"{p.name}: http listener without resources"
        assert not (REMOVED_SETTINGS & set(hs)), f"homeserver.yaml: removed settings {sorted(REMOVED_SETTINGS & set(hs))}"
    # The writers need the listeners their role implies.
    for stream in WRITER_STREAMS:
        for name in hs["stream_writers"][stream]:
            doc = yaml.safe_load((COMPOSE / f"synapse/workers/{name}.yaml").read_text(encoding="utf-8"))
            names = {n for lst in doc["worker_listeners"] for r in lst.get("resources", []) for n in r["names"]}
            assert {"client", "replication"} <= names, f"{name} writes {stream}: needs client + replication"
    log = yaml.safe_load((COMPOSE / "synapse/log.config").read_text(encoding="utf-8"))
    assert log.get("version") == 1 and "root" in log, "log.config is not a logging dictConfig"


def check_homeserver_template_renders():
    env = read_env_file(COMPOSE / ".env.example")
    doc, used = synapse_init.render((COMPOSE / "synapse/homeserver.yaml").read_text(encoding="utf-8"), env)
    text = yaml.safe_dump(doc)
    assert "${" not in text, "a placeholder is left after rendering"
    assert doc["server_name"] == env["SYNAPSE_SERVER_NAME"]
    assert doc["database"]["args"]["password"] == env["POSTGRES_PASSWORD"]
    # Every placeholder comes from a variable compose passes to the init service.
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text(encoding="utf-8"))
    passed = set(compose["services"]["synapse-init"]["environment"])
    assert used <= passed, f"init service lacks {sorted(used - passed)}"
    # A secret with YAML syntax in it stays one string; a missing one is an error.
    tricky = dict(env, SYNAPSE_FORM_SECRET='a": b\n- c')
    assert synapse_init.render(yaml.safe_dump(doc | {"form_secret": "${SYNAPSE_FORM_SECRET}"}), tricky)[0][
        "form_secret"] == 'a": b\n- c'
    missing = {k: v for k, v in env.items() if k != "SYNAPSE_MACAROON_SECRET_KEY"}
    try:
        synapse_init.render((COMPOSE / "synapse/homeserver.yaml").read_text(encoding="utf-8"), missing)
    except synapse_init.RenderError as e:
        assert "SYNAPSE_MACAROON_SECRET_KEY" in str(e)
    else:
        raise AssertionError("rendering without SYNAPSE_MACAROON_SECRET_KEY succeeded")


def _dockerfile_stages() -> list[dict]:
    """Each stage of compose/Dockerfile: base image, apt-get install packages, other lines."""
    text = (COMPOSE / "Dockerfile").read_text(encoding="utf-8").replace("\\\n", " ")
    stages: list[dict] = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word == "FROM":
            stages.append({"from": rest.split()[0], "packages": set(), "lines": []})
            continue
        stages[-1]["lines"].append(line)
        if word == "RUN" and "apt-get install" in rest:
            after = rest.split("apt-get install", 1)[1].split("&&", 1)[0]
            stages[-1]["packages"] |= {w for w in after.split() if not w.startswith("-")}
    return stages


RUNTIME_BASE = {"libc6", "libstdc++6", "libgcc-s1"}  # in every Debian image


def check_dockerfile():
    stages = _dockerfile_stages()
    assert len(stages) == 2, "a build stage and a runtime stage"
    for st in stages:
        assert st["from"].startswith("debian:bookworm"), f"base {st['from']} is not Debian bookworm"
    setup = (SOURCE / "scripts/setup").read_text(encoding="utf-8")
    setup_pkgs = set(re.search(r"packages=\((.*?)\)", setup, re.S).group(1).split())
    build, runtime = stages
    assert build["packages"] and build["packages"] <= setup_pkgs, \
        f"build packages not in scripts/setup: {sorted(build['packages'] - setup_pkgs)}"
    assert any("-DSPOA_BUILD_TESTS=OFF" in l and "-DSPOA_BUILD_BENCH=OFF" in l for l in build["lines"])
    users = [l.split()[1] for l in runtime["lines"] if l.startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), "the runtime stage must run as a non-root user"
    assert any(l.startswith("HEALTHCHECK ") for l in runtime["lines"]), "no HEALTHCHECK"
    # Every COPY from the context survives the ignore rules ("*" then "!" re-includes).
    ignore = (COMPOSE / "Dockerfile.dockerignore").read_text(encoding="utf-8").split()
    kept = {w[1:] for w in ignore if w.startswith("!")}
    for l in build["lines"] + runtime["lines"]:
        if l.startswith("COPY ") and "--from=" not in l:
            for src in l.split()[1:-1]:
                assert (SOURCE / src).exists(), f"COPY {src}: no such path"
                assert src.rstrip("/") in kept, f"COPY {src} is excluded by Dockerfile.dockerignore"
    # The runtime stage installs the package of every library the binary links directly.
    binary = os.environ.get("SPOA_AGENT_BINARY")
    if binary and Path(binary).is_file() and shutil.which("readelf") and shutil.which("dpkg"):
        needed = re.findall(r"\(NEEDED\)\s+Shared library: \[(.+?)\]", _run(["readelf", "-d", binary]).stdout)
        missing = []
        for lib in needed:
            r = _run(["dpkg", "-S", f"*/{lib}"])
            pkgs = {line.split(":")[0] for line in r.stdout.splitlines()}
            if not pkgs & (runtime["packages"] | RUNTIME_BASE):
                missing.append(f"{lib} ({', '.join(sorted(pkgs)) or 'no package'})")
        assert not missing, f"runtime stage lacks the packages of {missing}"
        print(f"    Dockerfile: runtime packages cover {len(needed)} linked libraries")


def _run(cmd, **kw):
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, **kw)


def check_env_example_documents_every_variable():
    text = (COMPOSE / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text))
    documented = set(read_env_file(COMPOSE / ".env.example"))
    assert used <= documented, f".env.example lacks {sorted(used - documented)}"
    unused = documented - used - {"COMPOSE_PROJECT_NAME"}
    assert not unused, f".env.example documents variables compose never reads: {sorted(unused)}"


def check_docker_compose_config():
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is not installed (scripts/setup installs it)"
    r = _run([exe, "-f", str(COMPOSE / "docker-compose.yml"), "--env-file", str(COMPOSE / ".env.example"), "config", "-q"])
    assert r.returncode == 0, f"docker-compose config -q failed:\n{r.stdout}{r.stderr}"
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.env"
        empty.write_text("")
        env = {k: v for k, v in os.environ.items() if not k.startswith(("SYNAPSE_", "POSTGRES_", "SPOA_", "GRAFANA_"))}
        r = _run([exe, "-f", str(COMPOSE / "docker-compose.yml"), "--env-file", str(empty), "config", "-q"], env=env)
        assert r.returncode != 0 and "compose/.env" in r.stderr, f"config without secrets was accepted: {r.stderr}"


def check_haproxy_resolvers():
    """Containers that come back with a new IP keep being routed: the compose environment turns
    on haproxy.cfg's `resolvers docker` (Docker's DNS) and every server (the workers' and the
    agent's) takes `resolvers docker init-addr last,libc,none`. tests/compose/test_resolvers.py
    shows it working with a DNS server of its own; this checks the files say so."""
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text(encoding="utf-8"))
    hx_env = compose["services"]["haproxy"]["environment"]
    assert hx_env.get("SPOA_HAPROXY_RESOLVER") == "127.0.0.11:53", \
        f"docker-compose.yml: haproxy's SPOA_HAPROXY_RESOLVER is {hx_env.get('SPOA_HAPROXY_RESOLVER')!r}"
    text = (SOURCE / "haproxy/haproxy.cfg").read_text(encoding="utf-8")
    # Each block that only the resolver variable enables: the section, and one default-server line
    # in each `defaults` that the servers' backends inherit from.
    blocks = re.findall(r"^\.if defined\(SPOA_HAPROXY_RESOLVER\)\n(.*?)^\.endif", text, re.M | re.S)
    assert any(re.search(r"^resolvers docker\n(?:    .*\n)*?    nameserver \S+ \"\$\{SPOA_HAPROXY_RESOLVER-",
                         b, re.M) for b in blocks), "haproxy.cfg: no `resolvers docker` on ${SPOA_HAPROXY_RESOLVER}"
    want = "default-server resolvers docker init-addr last,libc,none"
    sections, current = {}, None
    for line in text.splitlines():
        if line and not line[0].isspace() and not line.startswith(("#", ".")):
            current = line.split("#")[0].strip()
        elif want in line:
            sections.setdefault(current, 0)
            sections[current] += 1
    assert sections == {"defaults synapse": 1, "defaults": 1}, \
        f"haproxy.cfg: `{want}` in {sections}, want once in `defaults synapse` and the agent's `defaults`"
    assert sum(want in b for b in blocks) == 2, f"haproxy.cfg: `{want}` outside the .if blocks"
    backends = re.findall(r"^backend (\S+)(?: from (\S+))?", text, re.M)
    pools = {b for b, parent in backends if b.startswith("synapse_")}
    assert pools and all(parent == "synapse" for b, parent in backends if b in pools), backends


def _haproxy_check_compose(exe: str) -> str:
    """`EXE -c` on haproxy.cfg with the compose environment; returns how it was run."""
    compose = yaml.safe_load((COMPOSE / "docker-compose.yml").read_text(encoding="utf-8"))
    hx_env = {k: str(v) for k, v in compose["services"]["haproxy"]["environment"].items()}
    hosts = sorted(set(compose["services"]))
    with tempfile.TemporaryDirectory() as tmp:
        hosts_file = Path(tmp) / "hosts"
        hosts_file.write_text("127.0.0.1 localhost\n" + "".join(f"127.0.0.1 {h}\n" for h in hosts))
        env = dict(os.environ, **hx_env)
        # The exact compose environment: host names from a private /etc/hosts and the config
        # directory at the container's path, both in a private mount namespace (needs root).
        script = (
            'mount -t tmpfs tmpfs /usr/local/etc && mkdir /usr/local/etc/haproxy && '
            'mount --bind "$1" /usr/local/etc/haproxy && mount --bind "$2" /etc/hosts && '
            'exec "$3" -c -dW -f /usr/local/etc/haproxy/haproxy.cfg'
        )
        r = None
        if shutil.which("unshare") and os.geteuid() == 0:
            r = _run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                      str(SOURCE / "haproxy"), str(hosts_file), exe], env=env)
            how = "compose host names via a private /etc/hosts"
            if r.returncode != 0 and "unshare" in r.stderr:
                r = None  # no mount namespaces here: fall back below
        if r is None:
            # Fallback: same ports, every host replaced by 127.0.0.1, the repository's directory.
            env.update({k: re.sub(r"^[a-z0-9-]+:", "127.0.0.1:", v) for k, v in hx_env.items()
                        if k.endswith("_ADDR")})
            env["SPOA_HAPROXY_DIR"] = str(SOURCE / "haproxy")
            r = _run([exe, "-c", "-dW", "-f", str(SOURCE / "haproxy/haproxy.cfg")], env=env)
            how = "fallback: compose ports on 127.0.0.1"
        out = r.stdout + r.stderr
        assert r.returncode == 0, f"{exe} -c ({how}) failed:\n{out}"
        # 3.2 reports a name it starts without an address as a NOTICE, which -dW lets pass.
        assert "[WARNING]" not in out and "could not resolve" not in out, f"{exe} -c ({how}) warns:\n{out}"
        return how


def check_haproxy_config():
    exe = shutil.which("haproxy") or shutil.which("/usr/sbin/haproxy")
    assert exe, "haproxy is not installed"
    version = _run([exe, "-v"]).stdout.split("\n")[0]
    print(f"    haproxy -c ({version}): {_haproxy_check_compose(exe)}")


def check_haproxy32_config():
    """The stack runs haproxy:3.2: the same check with 3.2 from the sid chroot (scripts/haproxy3)."""
    exe = str(SOURCE / "scripts/haproxy3")
    r = _run([exe, "-v"])
    if r.returncode != 0:
        raise Skip(f"no HAProxy 3.2 here: {r.stderr.strip()[:200]}")
    version = r.stdout.split("\n")[0]
    print(f"    haproxy -c ({version}): {_haproxy_check_compose(exe)}")


def check_promtool():
    exe = shutil.which("promtool")
    assert exe, "promtool is not installed (Debian: prometheus)"
    r = _run([exe, "check", "config", str(COMPOSE / "prometheus/prometheus.yml")])
    assert r.returncode == 0, f"promtool check config failed:\n{r.stdout}{r.stderr}"


def check_agent_config():
    binary = os.environ.get("SPOA_AGENT_BINARY")
    if not binary:
        raise Skip("SPOA_AGENT_BINARY not set (the synapse-spoa target is not built)")
    assert Path(binary).is_file(), f"{binary} does not exist"
    env_example = read_env_file(COMPOSE / ".env.example")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "synapse-spoa.yaml"
        env = dict(os.environ, SPOA_HASH_KEY=env_example["SPOA_HASH_KEY"],
                   SPOA_CONFIG_TEMPLATE=str(COMPOSE / "synapse-spoa.yaml"), SPOA_CONFIG_OUT=str(out),
                   PATH=f"{Path(binary).parent}{os.pathsep}{os.environ.get('PATH', '')}")
        # Through the image's entrypoint, so the rendered file is what the container would run.
        r = _run(["sh", str(COMPOSE / "spoa-entrypoint.sh"), "check-config", "--config", str(out)], env=env)
        assert r.returncode == 0, f"check-config failed:\n{r.stdout}{r.stderr}"
        rendered = yaml.safe_load(out.read_text(encoding="utf-8"))
        assert rendered["placement"]["hash_key"] == env_example["SPOA_HASH_KEY"]
        for bad in ("", "has space", 'quo"te'):
            r = _run(["sh", str(COMPOSE / "spoa-entrypoint.sh"), "check-config", "--config", str(out)],
                     env=dict(env, SPOA_HASH_KEY=bad))
            assert r.returncode == 2 and "SPOA_HASH_KEY" in r.stderr, f"hash key {bad!r} accepted"


CHECKS = [
    check_rendered_up_to_date,
    check_cross_agreement,
    check_cross_check_catches_mutations,
    check_new_room_worker_is_one_line,
    check_topology_errors,
    check_local_ports_match_embedded_default,
    check_synapse_files,
    check_homeserver_template_renders,
    check_dockerfile,
    check_env_example_documents_every_variable,
    check_docker_compose_config,
    check_haproxy_resolvers,
    check_haproxy_config,
    check_haproxy32_config,
    check_promtool,
    check_agent_config,
]


def main() -> int:
    passed = failed = skipped = 0
    for check in CHECKS:
        name = check.__name__.removeprefix("check_")
        try:
            check()
        except Skip as s:
            skipped += 1
            print(f"SKIP {name}: {s}")
        except Exception as e:  # noqa: BLE001 - every failure is reported, then the next check runs
            failed += 1
            detail = str(e) if isinstance(e, AssertionError) else traceback.format_exc()
            print(f"FAIL {name}: {detail}")
        else:
            passed += 1
            print(f"ok   {name}")
    print(f"compose_stack: {passed} passed, {failed} failed" + (f", {skipped} skipped" if skipped else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
