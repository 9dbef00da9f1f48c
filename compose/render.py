#!/usr/bin/env python3
"""Render every file that names a Synapse worker from compose/topology.yaml.

    scripts/render-topology             write the files (the same as python3 compose/render.py)
    scripts/render-topology --check     write nothing; print a unified diff of every stale file
                                        and exit 1 (ctest `compose_topology`)

Generated, each with a header saying so:
    compose/docker-compose.yml, compose/synapse/homeserver.yaml,
    compose/synapse/workers/<name>.yaml, compose/synapse-spoa.yaml,
    compose/prometheus/prometheus.yml
and, in haproxy/haproxy.cfg (shared by the demo, the integration tests and the stack), only the
`server` lines of each pool backend, between `# BEGIN servers of pool P` and `# END servers of
pool P`; everything else in that file is hand-written. tests/compose/check_stack.py proves the
files agree, reading each as its consumer would.

Python 3 standard library + PyYAML (Debian: python3-yaml).
"""

from __future__ import annotations

import argparse
import copy
import difflib
import re
import sys
from pathlib import Path

import yaml

COMPOSE_DIR = Path(__file__).resolve().parent

# --- Versions of the images the stack runs (one place to bump them) ----------------------------
IMAGES = {
    "postgres": "postgres:17",
    "redis": "redis:7.4",
    # Synapse 1.157.1 is the release the agent's embedded route table follows; overridable in .env.
    "synapse": "matrixdotorg/synapse:${SYNAPSE_VERSION:-v1.157.1}",
    "haproxy": "haproxy:3.2",  # LTS
    "prometheus": "prom/prometheus:v3.5.0",  # LTS
    "grafana": "grafana/grafana:12.3.1",
}

# The agent's pools, as in the embedded default (src/config/default_config.yaml).
POOLS = {
    "main": {"backend": "synapse_main", "balance": "least_loaded"},
    "client_sync": {"backend": "synapse_client_sync", "balance": "affinity", "key": "user"},
    "room": {"backend": "synapse_room", "balance": "affinity", "key": "room"},
    "federation_reader": {
        "backend": "synapse_federation_reader",
        "balance": "affinity",
        "key": "origin",
    },
    "media": {"backend": "synapse_media", "balance": "least_loaded"},
}

# role -> (pool or None, HTTP resources, has replication listener, how many are allowed)
ROLES = {
    "main": ("main", ["client", "federation"], True, "one"),
    "client_sync": ("client_sync", ["client"], True, "one"),
    "room": ("room", ["client", "federation"], False, "many"),
    "federation_reader": ("federation_reader", ["federation"], False, "many"),
    # client: the media admin API; federation: /_matrix/federation/v1/media/.
    "media": ("media", ["media", "client", "federation"], True, "one"),
    # No inbound traffic: the HTTP listener serves only /health, for the container healthcheck.
    "tasks": (None, ["health"], True, "one"),
    "federation_sender": (None, ["health"], False, "many"),
}

STREAMS_ON_CLIENT_SYNC = ["typing", "to_device", "receipts", "presence", "account_data"]

AGENT_SPOP_PORT = 12345
AGENT_METRICS_PORT = 9464
HAPROXY_HTTP_PORT = 8008
HAPROXY_STATS_PORT = 8405
DOCKER_DNS = "127.0.0.11:53"  # the embedded DNS server of every container on a user network
METRICS_PATH = "/_synapse/metrics"
SPOA_SNAPSHOT = "/var/lib/synapse-spoa/affinity.msgpack"

NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,30}$")

REPO_DIR = COMPOSE_DIR.parent
HAPROXY_CFG = REPO_DIR / "haproxy" / "haproxy.cfg"
# HAProxy's fallback weight of one unit of the agent's weight, for the roles that may have several
# servers in a pool: consistent hashing places `weight` points per server on its ring, so 64 keeps
# rooms evenly spread in the fallback (HAProxy allows 1..256).
HAPROXY_WEIGHT_UNIT = 64
# A frozen room worker holds at most this many requests; the rest wait <= `timeout queue`.
HAPROXY_ROOM_MAXCONN = 128


class TopologyError(Exception):
    pass


def host_of(name: str) -> str:
    """Compose service (= host) name of a worker. Hyphens, not underscores: host names with '_'
    are not valid DNS names and some HTTP clients refuse them."""
    return "synapse-" + name.replace("_", "-")


def env_addr_var(name: str) -> str:
    """haproxy.cfg's variable for a worker's HTTP address, e.g. SPOA_ROOM1_ADDR."""
    return "SPOA_" + name.upper() + "_ADDR"


def server_of(worker: dict) -> str:
    """The worker's HAProxy server name (and the agent's `server`): its name, everywhere."""
    return worker["name"]


def load_topology(path: Path) -> dict:
    with open(path, encoding="utf-8") as f:
        topo = yaml.safe_load(f)
    return validate_topology(topo, str(path))


def validate_topology(topo: dict, source: str) -> dict:
    if not isinstance(topo, dict) or not isinstance(topo.get("workers"), list):
        raise TopologyError(f"{source}: needs a `workers` list")
    ports = topo.get("ports") or {}
    for key in ("http", "replication", "metrics"):
        if not isinstance(ports.get(key), int) or not 1 <= ports[key] <= 65535:
            raise TopologyError(f"{source}: ports.{key} must be a port number")
    if len({ports["http"], ports["replication"], ports["metrics"]}) != 3:
        raise TopologyError(f"{source}: ports.http, .replication and .metrics must differ")
    seen, local_ports = set(), {}
    count = {role: 0 for role in ROLES}
    for w in topo["workers"]:
        if not isinstance(w, dict):
            raise TopologyError(f"{source}: every worker is a mapping")
        name, role = w.get("name"), w.get("role")
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise TopologyError(f"{source}: bad worker name {name!r} (a-z, 0-9, _; at most 31)")
        if name in seen:
            raise TopologyError(f"{source}: worker {name} listed twice")
        seen.add(name)
        if role not in ROLES:
            raise TopologyError(f"{source}: worker {name}: unknown role {role!r}")
        if (role == "main") != (name == "main"):
            raise TopologyError(f"{source}: the main process is named main and has role main")
        weight = w.get("weight", 1)
        if not isinstance(weight, (int, float)) or isinstance(weight, bool) or weight <= 0:
            raise TopologyError(f"{source}: worker {name}: weight must be > 0")
        if ROLES[role][3] == "many" and not 1 <= round(HAPROXY_WEIGHT_UNIT * weight) <= 256:
            raise TopologyError(f"{source}: worker {name}: weight {weight} gives HAProxy weight "
                                f"{round(HAPROXY_WEIGHT_UNIT * weight)}, outside 1..256")
        unknown = set(w) - {"name", "role", "weight", "local"}
        if unknown:
            raise TopologyError(f"{source}: worker {name}: unknown keys {sorted(unknown)}")
        local = w.get("local")
        wanted = ("http", "metrics") if ROLES[role][0] else ("metrics",)
        if not isinstance(local, dict) or set(local) != set(wanted):
            raise TopologyError(f"{source}: worker {name}: needs local: {{{', '.join(f'{k}: PORT' for k in wanted)}}} "
                                f"(its ports on 127.0.0.1 in the demo), found {local!r}")
        for key in wanted:
            port = local[key]
            if not isinstance(port, int) or isinstance(port, bool) or not 1 <= port <= 65535:
                raise TopologyError(f"{source}: worker {name}: local.{key} must be a port number, found {port!r}")
            if port in local_ports:
                raise TopologyError(f"{source}: worker {name}: local.{key} {port} is also "
                                    f"{local_ports[port]}")
            local_ports[port] = f"{name}'s local.{key}"
        count[role] += 1
    for role, (_, _, _, how_many) in ROLES.items():
        if how_many == "one" and count[role] != 1:
            raise TopologyError(f"{source}: exactly one worker with role {role} (found {count[role]})")
        if count[role] < 1:
            raise TopologyError(f"{source}: at least one worker with role {role}")
    return topo


def workers_of(topo: dict, role: str) -> list[str]:
    return [w["name"] for w in topo["workers"] if w["role"] == role]


def one_of(topo: dict, role: str) -> str:
    return workers_of(topo, role)[0]


# --- Synapse ----------------------------------------------------------------------------------


def listeners_for(topo: dict, worker: dict) -> list[dict]:
    ports = topo["ports"]
    _, resources, replication, _ = ROLES[worker["role"]]
    out = [
        {
            "type": "http",
            "port": ports["http"],
            "bind_addresses": ["0.0.0.0"],
            "x_forwarded": True,
            "resources": [{"names": list(resources), "compress": False}],
        }
    ]
    if replication:
        out.append(
            {
                "type": "http",
                "port": ports["replication"],
                "bind_addresses": ["0.0.0.0"],
                "resources": [{"names": ["replication"], "compress": False}],
            }
        )
    # Metrics listeners are TCP only and IPv4 only (synapse-metrics.md §1).
    out.append({"type": "metrics", "port": ports["metrics"], "bind_addresses": ["0.0.0.0"]})
    return out


def homeserver(topo: dict) -> dict:
    ports = topo["ports"]
    main = next(w for w in topo["workers"] if w["role"] == "main")
    sync, tasks, media = one_of(topo, "client_sync"), one_of(topo, "tasks"), one_of(topo, "media")
    writers = [w["name"] for w in topo["workers"] if ROLES[w["role"]][2]]
    stream_writers = {s: [sync] for s in STREAMS_ON_CLIENT_SYNC}
    stream_writers["events"] = [tasks]
    # Since Synapse 1.152 the workers that serve the quarantine admin API must write this stream.
    stream_writers["quarantined_media_changes"] = [media]
    return {
        # ${NAME} is filled in from the environment (.env) by compose/synapse/init.py at start.
        "server_name": "${SYNAPSE_SERVER_NAME}",
        "public_baseurl": "${SYNAPSE_PUBLIC_BASEURL}",
        "report_stats": False,
        "log_config": "/compose/synapse/log.config",
        "signing_key_path": "/config/signing.key",
        "media_store_path": "/media",
        "suppress_key_server_warning": True,
        "enable_registration": False,
        "registration_shared_secret": "${SYNAPSE_REGISTRATION_SHARED_SECRET}",
        "macaroon_secret_key": "${SYNAPSE_MACAROON_SECRET_KEY}",
        "form_secret": "${SYNAPSE_FORM_SECRET}",
        "listeners": listeners_for(topo, main),
        "database": {
            "name": "psycopg2",
            "args": {
                "user": "synapse",
                "password": "${POSTGRES_PASSWORD}",
                "dbname": "synapse",
                "host": "postgres",
                "port": 5432,
                "cp_min": 5,
                "cp_max": 10,
            },
        },
        "redis": {"enabled": True, "host": "redis", "port": 6379},
        "enable_metrics": True,
        # --- Workers (synapse-routing.md §10, §12) --------------------------------------------
        "worker_replication_secret": "${SYNAPSE_WORKER_REPLICATION_SECRET}",
        "instance_map": {
            name: {"host": host_of(name), "port": ports["replication"]} for name in writers
        },
        "stream_writers": stream_writers,
        "federation_sender_instances": workers_of(topo, "federation_sender"),
        "pusher_instances": [tasks],
        "notify_appservices_from_worker": tasks,
        "run_background_tasks_on": tasks,
        "update_user_directory_from_worker": sync,
        "enable_media_repo": False,
        "media_instance_running_background_jobs": media,
    }


def worker_file(topo: dict, worker: dict) -> dict:
    doc = {
        "worker_app": "synapse.app.generic_worker",
        "worker_name": worker["name"],
        "worker_log_config": "/compose/synapse/log.config",
        "worker_listeners": listeners_for(topo, worker),
    }
    if worker["role"] == "media":
        # The shared file turns the media repository off (main must not serve it); a generic
        # worker loads it only when its own file turns it back on. Without this, Synapse 1.160
        # answers every media request on the media worker with 404 M_UNRECOGNIZED (found by
        # tests/synapse).
        doc["enable_media_repo"] = True
    return doc


# --- The agent and Prometheus -----------------------------------------------------------------


def metrics_url(topo: dict, name: str) -> str:
    return f"http://{host_of(name)}:{topo['ports']['metrics']}{METRICS_PATH}"


def agent_config(topo: dict) -> dict:
    workers = []
    for w in topo["workers"]:
        entry = {"name": w["name"]}
        pool = ROLES[w["role"]][0]
        if pool:
            entry["pool"] = pool
            entry["server"] = server_of(w)
        if w.get("weight", 1) != 1:
            entry["weight"] = w["weight"]
        entry["metrics"] = metrics_url(topo, w["name"])
        workers.append(entry)
    return {
        # 0.0.0.0 inside the container: the port is not published, so only containers on the
        # stack's own network reach it, and HAProxy is the only one that speaks SPOP.
        "listen": f"0.0.0.0:{AGENT_SPOP_PORT}",
        "metrics_listen": f"0.0.0.0:{AGENT_METRICS_PORT}",
        "log_level": "info",
        "pools": copy.deepcopy(POOLS),
        "workers": workers,
        "placement": {
            # Filled in from .env (SPOA_HASH_KEY) by the image's entrypoint at start.
            "hash_key": "${SPOA_HASH_KEY}",
            "snapshot": SPOA_SNAPSHOT,
        },
        # HAProxy's own view: a server set to DRAIN or MAINT through its runtime API or stats
        # page, or failing HAProxy's checks, is drained or down in the agent too.
        "load": {"haproxy_metrics": f"http://haproxy:{HAPROXY_STATS_PORT}/metrics"},
    }


def prometheus_config(topo: dict) -> dict:
    port = topo["ports"]["metrics"]
    return {
        "global": {"scrape_interval": "15s", "evaluation_interval": "15s"},
        "scrape_configs": [
            {
                "job_name": "synapse",
                "metrics_path": METRICS_PATH,
                "static_configs": [
                    {
                        "targets": [f"{host_of(w['name'])}:{port}"],
                        "labels": {"instance": w["name"], "worker": w["name"], "role": w["role"]},
                    }
                    for w in topo["workers"]
                ],
            },
            {
                "job_name": "haproxy",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"haproxy:{HAPROXY_STATS_PORT}"]}],
            },
            {
                "job_name": "synapse-spoa",
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [f"synapse-spoa:{AGENT_METRICS_PORT}"]}],
            },
        ],
    }


# --- haproxy/haproxy.cfg ----------------------------------------------------------------------

# The generated part of each pool backend. The text after the pool name is free; END must follow
# BEGIN in the same backend. Everything outside these pairs is left exactly as it is.
HAPROXY_BLOCK = re.compile(
    r"^(?P<begin>[ \t]*# BEGIN servers of pool (?P<pool>[a-z0-9_]+)\b[^\n]*\n)"
    r"(?P<body>.*?)"
    r"(?P<end>^[ \t]*# END servers of pool (?P=pool)\b[^\n]*\n)",
    re.M | re.S,
)
HAPROXY_MARKER = re.compile(r"^[ \t]*# (BEGIN|END) servers of pool ([a-z0-9_]+)", re.M)


def haproxy_server_lines(topo: dict, pool: str) -> list[str]:
    """The `server` lines of one pool's backend. The address is an environment variable whose
    default is the worker's port on 127.0.0.1 (the demo); the integration tests set it to a free
    port, the compose stack to the container's host name (docker-compose.yml)."""
    lines = []
    for w in topo["workers"]:
        if ROLES[w["role"]][0] != pool:
            continue
        addr = '"${' + env_addr_var(w["name"]) + f'-127.0.0.1:{w["local"]["http"]}' + '}"'
        line = f"    server {server_of(w)} {addr}"
        if ROLES[w["role"]][3] == "many":
            line += f" weight {round(HAPROXY_WEIGHT_UNIT * w.get('weight', 1))}"
        if w["role"] == "room":
            line += f" maxconn {HAPROXY_ROOM_MAXCONN}"
        lines.append(line + "\n")
    return lines


def render_haproxy(topo: dict, text: str, source: str = "haproxy/haproxy.cfg") -> str:
    """`text` (haproxy.cfg) with every pool's BEGIN/END block holding that pool's server lines."""
    blocks = {}
    for m in HAPROXY_BLOCK.finditer(text):
        if m.group("pool") in blocks:
            raise TopologyError(f"{source}: two `# BEGIN servers of pool {m.group('pool')}` blocks")
        blocks[m.group("pool")] = m
    for m in HAPROXY_MARKER.finditer(text):
        if m.group(2) not in blocks:
            raise TopologyError(f"{source}: `# {m.group(1)} servers of pool {m.group(2)}` "
                                "has no matching END/BEGIN")
    for pool, spec in POOLS.items():
        if pool not in blocks:
            raise TopologyError(f"{source}: backend {spec['backend']} needs the lines "
                                f"`# BEGIN servers of pool {pool}` and `# END servers of pool {pool}`")
        inner = text[blocks[pool].end("begin"):blocks[pool].start("end")]
        if re.search(r"^\s*(backend|frontend|listen|defaults)\b", inner, re.M):
            raise TopologyError(f"{source}: the block of pool {pool} spans a section boundary")
    for pool in blocks:
        if pool not in POOLS:
            raise TopologyError(f"{source}: `# BEGIN servers of pool {pool}`: no such pool")

    def fill(m: re.Match) -> str:
        return m.group("begin") + "".join(haproxy_server_lines(topo, m.group("pool"))) + m.group("end")

    return HAPROXY_BLOCK.sub(fill, text)


# --- docker-compose.yml -----------------------------------------------------------------------


def required(var: str) -> str:
    """A compose variable that must be set in .env; `docker compose` refuses to start otherwise."""
    return "${" + var + ":?set it in compose/.env, see .env.example}"


def synapse_healthcheck(port: int) -> dict:
    return {
        "test": ["CMD", "curl", "-fsS", "-o", "/dev/null", f"http://localhost:{port}/health"],
        "interval": "15s",
        "timeout": "5s",
        "retries": 3,
        "start_period": "120s",  # main runs the database migrations on first start
    }


def bash_http_probe(port: int, path: str) -> list:
    """A healthcheck for images without curl: a bash /dev/tcp request, 200 expected. `$$` is
    compose's escape for a literal `$`."""
    script = (
        f"exec 3<>/dev/tcp/127.0.0.1/{port} && "
        f"printf 'GET {path} HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && "
        "read -r _ code _ <&3 && [ \"$$code\" = 200 ]"
    )
    return ["CMD", "bash", "-c", script]


def compose_file(topo: dict) -> dict:
    ports = topo["ports"]
    synapse_env = {
        "SYNAPSE_SERVER_NAME": required("SYNAPSE_SERVER_NAME"),
        "SYNAPSE_PUBLIC_BASEURL": required("SYNAPSE_PUBLIC_BASEURL"),
        "POSTGRES_PASSWORD": required("POSTGRES_PASSWORD"),
        "SYNAPSE_REGISTRATION_SHARED_SECRET": required("SYNAPSE_REGISTRATION_SHARED_SECRET"),
        "SYNAPSE_MACAROON_SECRET_KEY": required("SYNAPSE_MACAROON_SECRET_KEY"),
        "SYNAPSE_FORM_SECRET": required("SYNAPSE_FORM_SECRET"),
        "SYNAPSE_WORKER_REPLICATION_SECRET": required("SYNAPSE_WORKER_REPLICATION_SECRET"),
    }
    services: dict = {}
    services["postgres"] = {
        "image": IMAGES["postgres"],
        "restart": "unless-stopped",
        "environment": {
            "POSTGRES_USER": "synapse",
            "POSTGRES_DB": "synapse",
            "POSTGRES_PASSWORD": required("POSTGRES_PASSWORD"),
            # Synapse refuses a database whose collation is not C.
            "POSTGRES_INITDB_ARGS": "--encoding=UTF8 --locale=C",
        },
        "volumes": ["postgres-data:/var/lib/postgresql/data"],
        "healthcheck": {
            "test": ["CMD", "pg_isready", "-U", "synapse", "-d", "synapse"],
            "interval": "5s",
            "timeout": "5s",
            "retries": 10,
        },
    }
    services["redis"] = {
        "image": IMAGES["redis"],
        "restart": "unless-stopped",
        # Synapse uses Redis only for pub/sub between processes: nothing to persist.
        "command": ["redis-server", "--save", "", "--appendonly", "no"],
        "healthcheck": {
            "test": ["CMD", "redis-cli", "ping"],
            "interval": "5s",
            "timeout": "5s",
            "retries": 10,
        },
    }
    services["synapse-init"] = {
        "image": IMAGES["synapse"],
        # One shot: fills the secrets and server name from .env into homeserver.yaml, creates the
        # signing key once, and hands the volumes to Synapse's user (991).
        "entrypoint": ["python3", "/compose/synapse/init.py"],
        "restart": "no",
        "environment": dict(synapse_env),
        "volumes": [
            "./synapse:/compose/synapse:ro",
            "synapse-config:/config",
            "synapse-media:/media",
        ],
    }
    for w in topo["workers"]:
        name, role = w["name"], w["role"]
        host = host_of(name)
        svc: dict = {
            "image": IMAGES["synapse"],
            "restart": "unless-stopped",
            "hostname": host,
        }
        if role == "main":
            svc["command"] = ["run", "--config-path=/config/homeserver.yaml"]
            svc["depends_on"] = {
                "postgres": {"condition": "service_healthy"},
                "redis": {"condition": "service_healthy"},
                "synapse-init": {"condition": "service_completed_successfully"},
            }
        else:
            svc["environment"] = {"SYNAPSE_WORKER": "synapse.app.generic_worker"}
            svc["command"] = [
                "run",
                "--config-path=/config/homeserver.yaml",
                f"--config-path=/compose/synapse/workers/{name}.yaml",
            ]
            # Main runs the schema migrations; a worker started before them refuses to run.
            svc["depends_on"] = {host_of("main"): {"condition": "service_healthy"}}
        svc["volumes"] = ["./synapse:/compose/synapse:ro", "synapse-config:/config:ro"]
        if role == "media":
            svc["volumes"].append("synapse-media:/media")
        # The image declares VOLUME /data; nothing is kept there (keys and config live in
        # synapse-config, media in synapse-media), so a tmpfs avoids one anonymous volume each.
        svc["tmpfs"] = ["/data"]
        svc["healthcheck"] = synapse_healthcheck(ports["http"])
        services[host] = svc

    services["synapse-spoa"] = {
        "build": {"context": "..", "dockerfile": "compose/Dockerfile"},
        "image": "synapse-spoa:local",
        "restart": "unless-stopped",
        "read_only": True,
        # The config with SPOA_HASH_KEY filled in is written here at start (see Dockerfile).
        "tmpfs": ["/run/synapse-spoa:uid=10001,gid=10001,mode=0700"],
        "environment": {"SPOA_HASH_KEY": required("SPOA_HASH_KEY")},
        "volumes": [
            "./synapse-spoa.yaml:/etc/synapse-spoa/synapse-spoa.yaml:ro",
            "spoa-state:/var/lib/synapse-spoa",
        ],
        "healthcheck": {
            "test": bash_http_probe(AGENT_METRICS_PORT, "/metrics"),
            "interval": "10s",
            "timeout": "5s",
            "retries": 3,
            "start_period": "10s",
        },
    }

    haproxy_env = {
        "SPOA_HAPROXY_BIND": f":{HAPROXY_HTTP_PORT}",
        "SPOA_HAPROXY_STATS": f":{HAPROXY_STATS_PORT}",
        "SPOA_HAPROXY_DIR": "/usr/local/etc/haproxy",
        "SPOA_AGENT_ADDR": f"synapse-spoa:{AGENT_SPOP_PORT}",
        # Docker's embedded DNS: server host names are resolved again at run time, so a container
        # recreated with a new IP keeps being routed (haproxy.cfg's `resolvers docker`).
        "SPOA_HAPROXY_RESOLVER": DOCKER_DNS,
    }
    haproxy_deps = {"synapse-spoa": {"condition": "service_healthy"}}
    for w in topo["workers"]:
        if ROLES[w["role"]][0]:
            haproxy_env[env_addr_var(w["name"])] = f"{host_of(w['name'])}:{ports['http']}"
            # Not needed for addresses (`init-addr ...,none` + the resolver): HAProxy starts taking
            # traffic once every worker it routes to has passed its healthcheck.
            haproxy_deps[host_of(w["name"])] = {"condition": "service_healthy"}
    services["haproxy"] = {
        "image": IMAGES["haproxy"],
        "restart": "unless-stopped",
        "environment": haproxy_env,
        "volumes": [
            "../haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro",
            "../haproxy/spoe-synapse.conf:/usr/local/etc/haproxy/spoe-synapse.conf:ro",
        ],
        "ports": [
            f"${{SYNAPSE_HTTP_PORT:-8008}}:{HAPROXY_HTTP_PORT}",
            f"127.0.0.1:${{HAPROXY_STATS_PORT:-8405}}:{HAPROXY_STATS_PORT}",
        ],
        "depends_on": haproxy_deps,
        "healthcheck": {
            "test": bash_http_probe(HAPROXY_STATS_PORT, "/metrics"),
            "interval": "10s",
            "timeout": "5s",
            "retries": 3,
        },
    }
    services["prometheus"] = {
        "image": IMAGES["prometheus"],
        "restart": "unless-stopped",
        "command": [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--storage.tsdb.retention.time=15d",
        ],
        "volumes": [
            "./prometheus/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
            "prometheus-data:/prometheus",
        ],
        "ports": ["127.0.0.1:${PROMETHEUS_PORT:-9090}:9090"],
        "healthcheck": {
            "test": ["CMD", "wget", "-qO", "/dev/null", "http://localhost:9090/-/healthy"],
            "interval": "10s",
            "timeout": "5s",
            "retries": 3,
        },
    }
    services["grafana"] = {
        "image": IMAGES["grafana"],
        "restart": "unless-stopped",
        "environment": {
            "GF_SECURITY_ADMIN_USER": "admin",
            "GF_SECURITY_ADMIN_PASSWORD": required("GRAFANA_ADMIN_PASSWORD"),
            "GF_USERS_ALLOW_SIGN_UP": "false",
        },
        # File provisioning: the datasource (http://prometheus:9090) and the dashboards.
        "volumes": [
            "../grafana/provisioning:/etc/grafana/provisioning:ro",
            "../grafana/dashboards:/var/lib/grafana/dashboards:ro",
            "grafana-data:/var/lib/grafana",
        ],
        "ports": ["127.0.0.1:${GRAFANA_PORT:-3000}:3000"],
        "depends_on": {"prometheus": {"condition": "service_healthy"}},
        "healthcheck": {
            "test": ["CMD", "wget", "-qO", "/dev/null", "http://localhost:3000/api/health"],
            "interval": "10s",
            "timeout": "5s",
            "retries": 3,
        },
    }
    volumes = {
        v: {}
        for v in (
            "postgres-data",
            "synapse-config",
            "synapse-media",
            "spoa-state",
            "prometheus-data",
            "grafana-data",
        )
    }
    return {"services": services, "volumes": volumes}


# --- Writing ----------------------------------------------------------------------------------


class _Dumper(yaml.SafeDumper):
    # No &id001 anchors: every file is read by people.
    def ignore_aliases(self, data):  # noqa: D401 - PyYAML hook
        return True


def _represent_list(dumper: yaml.SafeDumper, data: list):
    # Short lists of scalars (commands, healthcheck tests, resource names) on one line.
    flow = all(isinstance(x, (str, int, float, bool)) for x in data) and len(str(data)) <= 80
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)


def dump(doc: dict, header: str) -> str:
    body = yaml.dump(doc, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=4096)
    lines = [f"# {line}".rstrip() for line in header.strip().splitlines()]
    return "\n".join(lines) + "\n\n" + body


GENERATED = (
    "Generated by scripts/render-topology (compose/render.py) from compose/topology.yaml. Do not\n"
    "edit: edit those and run scripts/render-topology; ctest -L compose fails while this file is\n"
    "stale."
)


def render(topo: dict) -> dict[str, str]:
    """Relative path (from compose/) -> file text."""
    out = {}
    out["docker-compose.yml"] = dump(
        compose_file(topo),
        "synapse-spoa reference deployment: Synapse main + workers, PostgreSQL, Redis, HAProxy,\n"
        "synapse-spoa, Prometheus, Grafana. See compose/README.md.\n\n" + GENERATED,
    )
    out["synapse/homeserver.yaml"] = dump(
        homeserver(topo),
        "Shared Synapse configuration (main + every worker). ${NAME} values are filled in from\n"
        "compose/.env by compose/synapse/init.py when the stack starts.\n\n" + GENERATED,
    )
    for w in topo["workers"]:
        if w["role"] == "main":
            continue
        out[f"synapse/workers/{w['name']}.yaml"] = dump(
            worker_file(topo, w), f"Synapse worker {w['name']} (role {w['role']}).\n\n" + GENERATED
        )
    agent_text = dump(
        agent_config(topo),
        "synapse-spoa configuration for the compose stack; every key left out takes the value of\n"
        "`synapse-spoa print-default-config`. ${SPOA_HASH_KEY} is filled in from compose/.env by\n"
        "the image's entrypoint.\n\n" + GENERATED,
    )
    # Quoted, so a key of digits only stays a string once envsubst has filled it in.
    quoted = 'hash_key: "${SPOA_HASH_KEY}"\n'
    out["synapse-spoa.yaml"] = agent_text.replace("hash_key: ${SPOA_HASH_KEY}\n", quoted)
    if quoted not in out["synapse-spoa.yaml"]:
        raise TopologyError("render.py: placement.hash_key placeholder not found")
    out["prometheus/prometheus.yml"] = dump(
        prometheus_config(topo),
        "Prometheus: every Synapse worker's metrics listener, HAProxy's exporter and the agent.\n\n"
        + GENERATED,
    )
    return out


# --- The demo (scripts/demo): the same workers on 127.0.0.1 ------------------------------------


def local_workers(topo: dict) -> str:
    """One line per worker for scripts/demo: NAME POOL|- HTTP_PORT|0 METRICS_PORT."""
    return "".join(
        f"{w['name']} {ROLES[w['role']][0] or '-'} {w['local'].get('http', 0)} {w['local']['metrics']}\n"
        for w in topo["workers"])


def local_agent_config(topo: dict, default: dict) -> dict:
    """`default` (the output of `synapse-spoa print-default-config`) with its workers replaced by
    the topology's on 127.0.0.1: the demo runs the embedded config on whatever workers the
    topology lists (for the reference topology the two lists are equal; compose_stack checks)."""
    doc = copy.deepcopy(default)
    doc["workers"] = []
    for w in topo["workers"]:
        entry = {"name": w["name"]}
        if ROLES[w["role"]][0]:
            entry["pool"] = ROLES[w["role"]][0]
        if w.get("weight", 1) != 1:
            entry["weight"] = w["weight"]
        entry["metrics"] = f"http://127.0.0.1:{w['local']['metrics']}/metrics"
        doc["workers"].append(entry)
    return doc


def _label(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(REPO_DIR))
    except ValueError:
        return str(path)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; print the diff of every stale file and exit 1")
    parser.add_argument("--topology", type=Path, default=COMPOSE_DIR / "topology.yaml")
    parser.add_argument("--out", type=Path, default=COMPOSE_DIR, help="directory to write into")
    parser.add_argument("--haproxy", type=Path, default=HAPROXY_CFG,
                        help="the haproxy.cfg whose server blocks to fill")
    parser.add_argument("--print-local", action="store_true",
                        help="print NAME POOL|- HTTP|0 METRICS per worker (scripts/demo), write nothing")
    parser.add_argument("--local-agent-config", metavar="DEFAULT",
                        help="print the agent config DEFAULT (a file, - for stdin) with the "
                        "topology's workers on 127.0.0.1 (scripts/demo), write nothing")
    args = parser.parse_args(argv)
    try:
        topo = load_topology(args.topology)
        if args.print_local:
            sys.stdout.write(local_workers(topo))
            return 0
        if args.local_agent_config:
            src = sys.stdin if args.local_agent_config == "-" else open(args.local_agent_config, encoding="utf-8")
            with src:
                default = yaml.safe_load(src)
            sys.stdout.write(dump(local_agent_config(topo, default),
                                  "synapse-spoa's embedded default config with the workers of "
                                  "compose/topology.yaml on 127.0.0.1\n(scripts/render-topology "
                                  "--local-agent-config, for scripts/demo)."))
            return 0
        wanted = {args.out / rel: text for rel, text in render(topo).items()}
        hx_text = args.haproxy.read_text(encoding="utf-8")
        wanted[args.haproxy] = render_haproxy(topo, hx_text, _label(args.haproxy))
    except (TopologyError, OSError, yaml.YAMLError) as e:
        print(f"render: {e}", file=sys.stderr)
        return 2
    workers_dir = args.out / "synapse" / "workers"
    extra = sorted(p for p in workers_dir.glob("*.yaml") if p not in wanted)
    stale = []
    for path, text in wanted.items():
        current = path.read_text(encoding="utf-8") if path.exists() else None
        if current == text:
            continue
        stale.append(path)
        if args.check:
            label = _label(path)
            a, b = ("a/", "b/") if not label.startswith("/") else ("", "")
            sys.stdout.writelines(difflib.unified_diff(
                (current or "").splitlines(keepends=True), text.splitlines(keepends=True),
                f"{a}{label}" if current is not None else "/dev/null", f"{b}{label} (rendered)"))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    if args.check:
        for p in extra:
            print(f"render: {_label(p)}: no such worker in compose/topology.yaml")
        if stale or extra:
            print(f"render: {len(stale) + len(extra)} file(s) differ from compose/topology.yaml "
                  "(above); run scripts/render-topology", file=sys.stderr)
            return 1
        return 0
    for p in extra:
        p.unlink()  # a worker removed from the topology
        print(f"render: removed {_label(p)}")
    for path in stale:
        print(f"render: wrote {_label(path)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
