#!/usr/bin/env python3
"""End-to-end comparison: wrk -> HAProxy 2.6 -> 8 trivial backends, five ways of routing.

    tests/bench/e2e.py [--build-dir build-perf] [--rounds 10] [--duration 10] [--variants ...]
                       [--haproxy 2.6,3.2]

--haproxy takes one HAProxy or a comma-separated list: `2.6` (the host's, bookworm), `3.2` (the
sid chroot's through scripts/haproxy3) or a path. With several, every round runs every variant
on every HAProxy (each variant's versions back to back, the version order rotating too), and
the table has one row per version and variant, each ratio against the same version's static.

Variants (issue 8's table, plus synapse-spoa):
  static      one backend, no routing at all (the 1.00 reference)
  native      HAProxy ACLs + `balance hash` on the decoded room + `hash-balance-factor 150`
  lua         an in-process Lua action computing the route (tests/bench/haproxy_route.lua)
  spoe-noop   SPOE to synapse-spoa --noop (fixed route): HAProxy's own SPOE cost
  spoe-full   SPOE to synapse-spoa with full routing (route table + affinity + placement, live
              scraping of the simulated workers' metrics)
  spoe-alt    spoe-full with --alt-agent-extra appended to the agent config, to compare a setting
              side by side (not in the default list)

Every round runs every variant once (the order rotates from round to round); each run starts a
fresh HAProxy (and agent), warms up, then runs `wrk -t2 -c64 --latency -s matrix_mix.lua` for
--duration seconds. Per run: req/s, p50, p99, the CPU time of HAProxy and of the agent from
/proc/PID/stat (utime + stime) divided by the requests served, and the room traffic balance
(max / mean of the requests the four room workers received, from the simulator's /stats). The
table shows medians over the rounds and the median of the per-round ratios to `static`.

wrk, HAProxy, the backends and the agent share the machine's cores, so the CPU-us per request
columns are the figures that carry over to other machines. Everything listens on free loopback
ports; everything started is stopped by PID (also on Ctrl-C).
"""

import argparse
import json
import os
import pathlib
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE.parent.parent
sys.path.insert(0, str(SOURCE / "tests" / "integration"))
from harness import free_port, port_open, wait_for  # noqa: E402  (the tests' process helpers)

WORKERS = [("main", "main"), ("client_sync1", "client_sync"), ("room1", "room"),
           ("room2", "room"), ("room3", "room"), ("room4", "room"),
           ("federation_reader1", "federation_reader"), ("media1", "media")]
ROOMS = ["room1", "room2", "room3", "room4"]
VARIANTS = ["static", "native", "lua", "spoe-noop", "spoe-full", "spoe-alt"]
CLK_TCK = os.sysconf("SC_CLK_TCK")
# --perf-agent counts the agent's system calls with `perf stat`: these by name, and all of them
# (raw_syscalls:sys_enter, reported as "all"), to see how many messages each read and write
# carries and what else the event loop does.
SYSCALLS = ["recvmsg", "sendmsg", "recvfrom", "sendto", "read", "write", "writev", "readv",
            "epoll_wait", "epoll_ctl", "timerfd_settime", "futex", "accept4", "ioctl"]


def cpu_seconds(pid):
    """utime + stime of every thread of pid, in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


class Procs:
    """Children, stopped by PID in reverse order (SIGTERM, then SIGKILL)."""

    def __init__(self, workdir):
        self.dir = workdir
        self.procs = []

    def start(self, name, argv, env=None):
        log = open(self.dir / f"{name}.log", "ab")
        p = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env,
                             start_new_session=True)
        p.log = log
        p.name = name
        self.procs.append(p)
        return p

    def stop(self, p):
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        p.log.close()
        if p in self.procs:
            self.procs.remove(p)

    def stop_all(self):
        for p in reversed(list(self.procs)):
            self.stop(p)


# --- HAProxy configurations --------------------------------------------------------------------

def global_section(a, tmp, lua=False):
    g = [
        "global",
        f"    nbthread {a.nbthread}",
        "    maxconn 4000",
    ]
    if a.log:
        g.append("    log stdout format raw local0 info")
    if lua:
        g.append(f"    lua-load {HERE / 'haproxy_route.lua'}")
    if a.show_conns:
        g.append(f"    stats socket {tmp / 'haproxy.sock'} level admin")
    g += [
        "defaults",
        "    mode http",
        "    option http-keep-alive",
        "    timeout connect 5s",
        "    timeout client 65s",
        "    timeout server 65s",
        "    timeout http-request 10s",
        "    timeout http-keep-alive 10s",
    ]
    if a.log:
        g += ["    log global", "    option httplog"]
        if a.dontlog_normal:
            g.append("    option dontlog-normal")
    return "\n".join(g) + "\n"


def backends(ports, room_balance):
    out = []
    def be(name, servers, extra=()):
        out.append(f"backend {name}")
        out.extend("    " + e for e in extra)
        out.append("    use-server %[var(txn.synapse.server)] if { var(txn.synapse.server) -m found }")
        for s in servers:
            w = " weight 64" if s in ROOMS else ""
            out.append(f"    server {s} 127.0.0.1:{ports[s]}{w}")
    be("synapse_main", ["main"])
    be("synapse_client_sync", ["client_sync1"])
    be("synapse_room", ROOMS, room_balance)
    be("synapse_federation_reader", ["federation_reader1"])
    be("synapse_media", ["media1"])
    return "\n".join(out) + "\n"


# The user/origin keys, as haproxy/haproxy.cfg derives them (no secret leaves HAProxy).
KEYS = r"""
    http-request set-var(txn.synapse_token) req.hdr(authorization),word(2,' ') if { req.hdr(authorization) -m beg "Bearer " }
    http-request set-var(txn.synapse_user) var(txn.synapse_token),field(2,_) if { var(txn.synapse_token) -m beg syt_ }
    http-request set-var(txn.synapse_user) var(txn.synapse_token),xxh64 if { var(txn.synapse_token) -m found } !{ var(txn.synapse_user) -m found }
    http-request unset-var(txn.synapse_token)
    http-request set-var(txn.synapse_origin) 'req.fhdr(authorization),regsub("^X-Matrix .*origin=\"?([^\",]+)\"?.*$","\1")' if { req.fhdr(authorization) -m beg "X-Matrix " }
"""

# The native classification: haproxy/haproxy.cfg's fallback rules.
NATIVE_ACLS = r"""
    acl p_media   path_beg /_matrix/media/ /_matrix/client/v1/media/ /_matrix/federation/v1/media/
    acl p_media   path_reg ^/_synapse/admin/v1/(purge_media_cache|media/|room/[^/]+/media|user/[^/]+/media|users/[^/]+/media|quarantine_media/)
    acl p_sync    path_reg ^/_matrix/client/(api/v1|r0|v3|unstable)/(sync|events|initialSync|rooms/[^/]+/initialSync)$
    acl p_writer  path_reg ^/_matrix/client/(api/v1|r0|v3|unstable)/(rooms/[^/]+/(typing|receipt|read_markers)|sendToDevice/|presence/|user_directory/search|user/[^/]+/(rooms/[^/]+/)?(account_data|tags))
    acl p_mainonly path_reg ^/_matrix/client/(api/v1|r0|v3|unstable)/(rooms/[^/]+/(forget|upgrade|report)|pushrules/|directory/list/)
    acl p_room    path_reg ^/_matrix/client/(api/v1|r0|v3|unstable|v1)/rooms/[^/]+/
    acl p_fedroom path_reg ^/_matrix/federation/v[12]/(state|state_ids|backfill|get_missing_events|event_auth|make_join|make_leave|make_knock|send_join|send_leave|send_knock|invite|timestamp_to_event|hierarchy|exchange_third_party_invite)/[^/]+
    acl p_fed     path_beg /_matrix/federation/ /_matrix/key/v2/query
    acl p_fedmain path /_matrix/federation/v1/openid/userinfo
    http-request set-var(txn.room) path,field(6,/),url_dec if { path_reg ^/_matrix/client/(r0|v3|unstable|v1)/rooms/ }
    http-request set-var(txn.room) path,field(7,/),url_dec if { path_beg /_matrix/client/api/v1/rooms/ }
    http-request set-var(txn.room) path,field(5,/),url_dec if p_fedroom
    use_backend synapse_media             if p_media
    use_backend synapse_client_sync       if p_sync or p_writer
    use_backend synapse_main              if p_mainonly or p_fedmain
    use_backend synapse_room              if p_room or p_fedroom
    use_backend synapse_federation_reader if p_fed
    default_backend synapse_main
"""

ROOM_HASH = ["balance hash var(txn.room)", "hash-type consistent", "hash-balance-factor 150"]


def spoe_conf(a):
    args = ("method=method path=path query=query user=var(txn.synapse_user) "
            "origin=var(txn.synapse_origin) src=src") if a.spoe_args == "full" else \
        "method=method path=path"
    lines = [
        "[synapse]",
        "spoe-agent synapse-agent",
        "    groups route-grp" + (" response-grp" if a.response_sample else ""),
        "    option var-prefix       synapse",
        "    option set-on-error     error",
        "    option set-process-time ptime",
        "    option continue-on-error",
        "    option pipelining",
        "    no option async",
        "    no option send-frag-payload",
    ]
    if a.dontlog_normal:
        lines.append("    option dontlog-normal")
    if a.spoe_max_frame_size:
        lines.append(f"    max-frame-size {a.spoe_max_frame_size}")
    if a.spoe_max_waiting_frames:
        lines.append(f"    max-waiting-frames {a.spoe_max_waiting_frames}")
    lines += [
        "    timeout hello      2s",
        "    timeout idle       2m",
        f"    timeout processing {a.spoe_timeout_processing}",
        "    use-backend spoa_synapse",
    ]
    if a.log:
        lines.append("    log global")
    lines += ["", "spoe-message route", f"    args {args}", "", "spoe-group route-grp",
              "    messages route", ""]
    if a.response_sample:  # haproxy/spoe-synapse.conf's response message, as shipped
        lines += ["spoe-message response",
                  "    args pool=var(txn.synapse.pool) rule=var(txn.synapse.rule) server=srv_name "
                  "status=status header_us=date(0,us),sub(txn.synapse_t0) "
                  "long_poll=var(txn.synapse.long_poll) percent=var(txn.synapse_pct)",
                  "", "spoe-group response-grp", "    messages response", ""]
    return "\n".join(lines)


def haproxy_cfg(variant, a, tmp, port, ports, agent_port):
    if variant == "static":
        return (global_section(a, tmp) +
                f"frontend matrix\n    bind 127.0.0.1:{port}\n    default_backend synapse_main\n" +
                backends(ports, []))
    if variant == "native":
        return (global_section(a, tmp) + f"frontend matrix\n    bind 127.0.0.1:{port}\n" +
                NATIVE_ACLS + backends(ports, ROOM_HASH))
    if variant == "lua":
        return (global_section(a, tmp, lua=True) + f"frontend matrix\n    bind 127.0.0.1:{port}\n" +
                KEYS + "    http-request lua.synapse_route\n"
                "    use_backend %[var(txn.synapse.backend)] if { var(txn.synapse.backend) -m found }\n"
                "    default_backend synapse_main\n" + backends(ports, ROOM_HASH))
    # spoe-noop / spoe-full: haproxy/haproxy.cfg's shape, native rules as the fallback.
    (tmp / "spoe-synapse.conf").write_text(spoe_conf(a))
    keys = KEYS if a.spoe_args == "full" else ""
    fe = (f"frontend matrix\n    bind 127.0.0.1:{port}\n"
          f"    filter spoe engine synapse config {tmp / 'spoe-synapse.conf'}\n" + keys +
          "    http-request send-spoe-group synapse route-grp\n"
          "    acl agent_answered var(txn.synapse.backend) -m beg synapse_\n" +
          (f"    http-request set-var(txn.synapse_t0) date(0,us) if agent_answered\n"
           f"    http-request set-var(txn.synapse_pct) int({a.response_sample}) if agent_answered\n"
           f"    acl response_sampled rand(100) lt {a.response_sample}\n"
           "    http-response send-spoe-group synapse response-grp if agent_answered "
           "response_sampled || agent_answered { status ge 500 }\n"
           if a.response_sample else "") +
          "    use_backend %[var(txn.synapse.backend)] if agent_answered\n" +
          NATIVE_ACLS.replace("url_dec if ", "url_dec if !agent_answered "))
    agent_be = ("\nbackend spoa_synapse\n    mode tcp\n    balance roundrobin\n"
                "    timeout connect 5s\n    timeout server 3m\n"
                f"    server agent1 127.0.0.1:{agent_port}" +
                (f" maxconn {a.spoe_maxconn}" if a.spoe_maxconn else "") + "\n")
    return global_section(a, tmp) + fe + backends(ports, ROOM_HASH) + agent_be


def agent_yaml(a, agent_port, metrics_ports, own_metrics_port, alt=False):
    lines = [f"listen: 127.0.0.1:{agent_port}", f"metrics_listen: 127.0.0.1:{own_metrics_port}",
             "log_level: warn", "pools:",
             "  main:              {backend: synapse_main,              balance: least_loaded}",
             "  client_sync:       {backend: synapse_client_sync,       balance: affinity, key: user}",
             "  room:              {backend: synapse_room,              balance: affinity, key: room}",
             "  federation_reader: {backend: synapse_federation_reader, balance: affinity, key: origin}",
             "  media:             {backend: synapse_media,             balance: least_loaded}",
             "workers:"]
    for name, pool in WORKERS:
        lines.append(f"  - {{name: {name}, pool: {pool}, "
                     f"metrics: \"http://127.0.0.1:{metrics_ports[name]}/metrics\"}}")
    extra = a.alt_agent_extra if alt else a.agent_extra
    return "\n".join(lines) + "\n" + (extra or "")


# --- one run -----------------------------------------------------------------------------------

def haproxy_cli(path, command):
    """One command on HAProxy's stats socket (--show-conns)."""
    with socket.socket(socket.AF_UNIX) as c:
        c.settimeout(5)
        c.connect(str(path))
        c.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := c.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def sim_stats(control_port):
    with urllib.request.urlopen(f"http://127.0.0.1:{control_port}/stats", timeout=5) as r:
        return json.load(r)


# The agent's own SPOP counters, read from its /metrics before and after the measured window.
AGENT_COUNTERS = {
    "accepted": re.compile(r"^synapse_spoa_spop_connections_accepted_total(?:\{[^}]*\})? (\S+)$", re.M),
    "notify": re.compile(r'^synapse_spoa_spop_frames_received_total\{type="notify"\} (\S+)$', re.M),
    "ack": re.compile(r'^synapse_spoa_spop_frames_sent_total\{type="ack"\} (\S+)$', re.M),
    "messages": re.compile(r"^synapse_spoa_spop_messages_total(?:\{\})? (\S+)$", re.M),
}


def agent_counters(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
        text = r.read().decode()
    out = {}
    for k, rx in AGENT_COUNTERS.items():
        m = rx.search(text)
        out[k] = float(m.group(1)) if m else 0.0
    return out


def parse_wrk(text):
    m = re.search(r"^E2E (.*)$", text, re.M)
    if not m:
        raise RuntimeError("wrk printed no E2E line:\n" + text)
    return {k: int(v) for k, v in (kv.split("=") for kv in m.group(1).split())}


def run_variant(variant, a, procs, tmp, ports, metrics_ports, control_port, haproxy=None):
    port = free_port()
    agent_port = free_port()
    agent = None
    own_metrics = free_port()
    if variant.startswith("spoe"):
        cfg = tmp / "agent.yaml"
        cfg.write_text(agent_yaml(a, agent_port, metrics_ports, own_metrics,
                                  alt=variant == "spoe-alt"))
        ready = tmp / "agent.ready"
        if ready.exists():
            ready.unlink()
        argv = [str(a.agent_bin or a.build_dir / "src" / "synapse-spoa"), "run", "--config", str(cfg),
                "--ready-file", str(ready)]
        if variant == "spoe-noop":
            argv.append("--noop")
        agent = procs.start("agent", argv)
        wait_for(ready.exists, what="agent ready file")
    cfg_path = tmp / f"haproxy-{variant}.cfg"
    cfg_path.write_text(haproxy_cfg(variant, a, tmp, port, ports, agent_port))
    hap = procs.start("haproxy", [haproxy or a.haproxy, "-db", "-f", str(cfg_path)])
    try:
        wait_for(lambda: port_open(port) or hap.poll() is not None, what="haproxy")
        if hap.poll() is not None:
            raise RuntimeError(f"haproxy exited: see {tmp}/haproxy.log")
        wrk = [a.wrk, f"-t{a.threads}", f"-c{a.connections}", "--latency",
               "-s", str(HERE / "matrix_mix.lua"), f"http://127.0.0.1:{port}/", "--", a.mix]
        if a.warmup > 0:
            subprocess.run(wrk[:1] + [f"-d{a.warmup:g}s"] + wrk[1:], capture_output=True,
                           check=True)
        stats0 = sim_stats(control_port)
        perf = None
        if a.perf_agent and agent:
            perf_out = tmp / "perf-agent.txt"
            perf = subprocess.Popen(["perf", "stat", "-x,", "-o", str(perf_out), "-e",
                                     ",".join(["raw_syscalls:sys_enter"] +
                                              ["syscalls:sys_enter_" + c for c in SYSCALLS]),
                                     "-p", str(agent.pid)], start_new_session=True)
            time.sleep(0.2)
        counters0 = agent_counters(own_metrics) if agent else None
        hcpu0 = cpu_seconds(hap.pid)
        acpu0 = cpu_seconds(agent.pid) if agent else 0.0
        if a.show_conns and agent:
            wrk_p = subprocess.Popen(wrk[:1] + [f"-d{a.duration:g}s"] + wrk[1:],
                                     stdout=subprocess.PIPE, text=True)
            time.sleep(a.duration / 2)
            print(f"HAProxy {haproxy or a.haproxy} {variant}, mid-run: show servers conn\n" +
                  haproxy_cli(tmp / "haproxy.sock", "show servers conn spoa_synapse"),
                  file=sys.stderr, flush=True)
            out = wrk_p.communicate()[0]
        else:
            out = subprocess.run(wrk[:1] + [f"-d{a.duration:g}s"] + wrk[1:], capture_output=True,
                                 text=True, check=True).stdout
        hcpu1 = cpu_seconds(hap.pid)
        acpu1 = cpu_seconds(agent.pid) if agent else 0.0
        stats1 = sim_stats(control_port)
        counters1 = agent_counters(own_metrics) if agent else None
        syscalls = {}
        if perf:
            perf.send_signal(signal.SIGINT)
            perf.wait(timeout=10)
            for line in perf_out.read_text().splitlines():
                parts = line.split(",")
                if len(parts) > 2 and parts[0].isdigit() and int(parts[0]) > 0:
                    if parts[2] == "raw_syscalls:sys_enter":
                        syscalls["all"] = int(parts[0])
                    elif parts[2].startswith("syscalls:sys_enter_"):
                        syscalls[parts[2][len("syscalls:sys_enter_"):]] = int(parts[0])
    finally:
        procs.stop(hap)
        if agent:
            procs.stop(agent)
    w = parse_wrk(out)
    n = max(1, w["requests"])
    rooms = [stats1[r]["requests"] - stats0[r]["requests"] for r in ROOMS]
    mean = sum(rooms) / len(rooms)
    return {
        "rps": w["requests"] / (w["duration_us"] / 1e6),
        "p50_ms": w["p50_us"] / 1e3,
        "p99_ms": w["p99_us"] / 1e3,
        "haproxy_us": (hcpu1 - hcpu0) * 1e6 / n,
        "agent_us": (acpu1 - acpu0) * 1e6 / n,
        "balance": max(rooms) / mean if mean > 0 else float("nan"),
        "errors": w["non2xx"] + w["errors"],
        "room_requests": rooms,
        "agent_syscalls_per_req": {k: v / n for k, v in syscalls.items()},
        "spop": spop_figures(counters0, counters1, syscalls),
    }


def spop_figures(c0, c1, syscalls):
    """What one measured window looked like on the agent's side of SPOP: connections HAProxy
    opened, NOTIFY frames per read and ACK frames per write (with --perf-agent), messages per
    NOTIFY."""
    if not c0 or not c1:
        return {}
    d = {k: c1[k] - c0[k] for k in c0}
    out = {"connections_opened": d["accepted"], "connections_total": c1["accepted"],
           "messages_per_notify": d["messages"] / d["notify"] if d["notify"] else 0.0}
    reads = sum(syscalls.get(s, 0) for s in ("recvmsg", "recvfrom", "read"))
    writes = sum(syscalls.get(s, 0) for s in ("sendmsg", "sendto", "write", "writev"))
    if reads:
        out["notify_per_read"] = d["notify"] / reads
    if writes:
        out["ack_per_write"] = d["ack"] / writes
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", type=pathlib.Path, default=SOURCE / "build-perf")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--duration", type=int, default=10, help="seconds of wrk per run")
    ap.add_argument("--warmup", type=int, default=2, help="seconds of wrk before each run")
    ap.add_argument("--variants", default=",".join(VARIANTS[:-1]))
    ap.add_argument("--threads", type=int, default=2, help="wrk -t")
    ap.add_argument("--connections", type=int, default=64, help="wrk -c")
    ap.add_argument("--nbthread", type=int, default=2, help="HAProxy nbthread")
    ap.add_argument("--log", action=argparse.BooleanOptionalAction, default=True,
                    help="HAProxy logging to stdout (as haproxy/haproxy.cfg)")
    ap.add_argument("--dontlog-normal", action=argparse.BooleanOptionalAction, default=True)
    ap.add_argument("--spoe-timeout-processing", default="200ms")
    ap.add_argument("--spoe-max-frame-size", type=int, default=0, help="0 = HAProxy's default")
    ap.add_argument("--spoe-max-waiting-frames", type=int, default=0)
    ap.add_argument("--spoe-maxconn", type=int, default=0, help="maxconn on the agent server")
    ap.add_argument("--response-sample", type=int, default=0, choices=range(0, 101),
                    metavar="0..100", help="spoe variants: send haproxy.cfg's sampled `response` "
                    "message for this per cent of the responses (0 = none, the default)")
    ap.add_argument("--spoe-args", choices=["full", "min"], default="full",
                    help="full: method path query user origin src; min: method path")
    ap.add_argument("--agent-bin", type=pathlib.Path,
                    help="the synapse-spoa binary (default: BUILD_DIR/src/synapse-spoa)")
    ap.add_argument("--agent-extra", default="", help="YAML appended to the agent config")
    ap.add_argument("--alt-agent-extra", default="",
                    help="YAML appended to the agent config of the spoe-alt variant")
    ap.add_argument("--haproxy", default=shutil.which("haproxy") or "/usr/sbin/haproxy",
                    help="HAProxy binary, or a comma-separated list of binaries or versions "
                         "(2.6 = the host's, 3.2 = scripts/haproxy3): all run interleaved")
    ap.add_argument("--wrk", default=shutil.which("wrk") or "wrk")
    ap.add_argument("--perf-agent", action="store_true",
                    help="count the agent's system calls per request with perf stat")
    ap.add_argument("--mix", choices=["project", "bearer"], default="project",
                    help="project: matrix_mix.lua as it is (Bearer on client requests, X-Matrix on "
                         "federation); bearer: client requests only, every one with an "
                         "Authorization: Bearer header (syt_ and opaque tokens)")
    ap.add_argument("--show-conns", action="store_true",
                    help="print HAProxy's `show servers conn` for the agent's backend mid-run")
    ap.add_argument("--json", type=pathlib.Path, help="also write every run here")
    a = ap.parse_args()
    a.build_dir = a.build_dir.resolve()
    variants = a.variants.split(",")
    for v in variants:
        if v not in VARIANTS:
            ap.error(f"unknown variant {v}")

    haproxies = haproxy_versions(a.haproxy, ap)

    tmp = pathlib.Path(tempfile.mkdtemp(prefix="spoa-e2e-"))
    procs = Procs(tmp)
    def on_signal(signum, _frame):
        procs.stop_all()
        sys.exit(128 + signum)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    results = {h: {v: [] for v in variants} for h in haproxies}
    try:
        ready = tmp / "sim.ready"
        argv = [str(a.build_dir / "tests" / "support" / "spoa-sim-workers"), "--ready-file",
                str(ready), "--cpu-per-request", "0", "--cores", "0"]
        for name, _ in WORKERS:
            argv += ["--worker", f"{name}=127.0.0.1:0,metrics=127.0.0.1:0"]
        procs.start("sim", argv)
        wait_for(ready.exists, what="simulated workers")
        ports, metrics_ports, control_port = {}, {}, None
        for line in ready.read_text().split("\n"):
            parts = line.split()
            if not parts:
                continue
            if parts[0] == "control":
                control_port = int(parts[1])
            else:
                ports[parts[0]] = int(parts[1])
                metrics_ports[parts[0]] = int(parts[2])
        names = list(haproxies)
        for r in range(a.rounds):
            order = variants[r % len(variants):] + variants[:r % len(variants)]
            horder = names[r % len(names):] + names[:r % len(names)]
            for v, h in ((v, h) for v in order for h in horder):
                res = run_variant(v, a, procs, tmp, ports, metrics_ports, control_port,
                                  haproxy=haproxies[h])
                results[h][v].append(res)
                print(f"round {r + 1}/{a.rounds} HAProxy {h} {v:10s} {res['rps']:9.0f} req/s "
                      f"p99 {res['p99_ms']:.2f} ms  haproxy {res['haproxy_us']:.1f} us/req  "
                      f"agent {res['agent_us']:.1f} us/req  rooms {res['room_requests']}"
                      + (f"  agent syscalls/req {res['agent_syscalls_per_req']}"
                         if res["agent_syscalls_per_req"] else "")
                      + (f"  spop {res['spop']}" if res["spop"] else ""),
                      file=sys.stderr, flush=True)
    finally:
        procs.stop_all()
    if a.json:
        # One HAProxy: {variant: runs}, as before; several: {version: {variant: runs}}.
        out = results if len(results) > 1 else next(iter(results.values()))
        a.json.write_text(json.dumps(out, indent=1))
    print_table(results, variants, a)
    shutil.rmtree(tmp, ignore_errors=True)


def haproxy_versions(spec, ap):
    """--haproxy's list as {version label: executable}, e.g. {"2.6.12": "/usr/sbin/haproxy"}."""
    out = {}
    for item in spec.split(","):
        exe = {"2.6": shutil.which("haproxy") or "/usr/sbin/haproxy",
               "3.2": str(SOURCE / "scripts" / "haproxy3")}.get(item.strip(), item.strip())
        r = subprocess.run([exe, "-v"], capture_output=True, text=True)
        m = re.search(r"version (\d+\.\d+\.\d+)", r.stdout)
        if r.returncode != 0 or not m:
            ap.error(f"--haproxy {item}: `{exe} -v` failed (exit {r.returncode}): "
                     f"{(r.stdout + r.stderr).strip()}")
        out[m.group(1)] = exe
    return out


def print_table(all_results, variants, a):
    med = statistics.median
    rounds = min(len(v) for res in all_results.values() for v in res.values())
    print(f"\n{rounds} interleaved rounds x {a.duration:g} s, wrk -t{a.threads} -c{a.connections}, "
          f"HAProxy nbthread {a.nbthread}, {os.cpu_count()} CPUs; medians")
    print("| HAProxy | variant | req/s | ratio vs static | p50 ms | p99 ms | HAProxy CPU-us/req | "
          "agent CPU-us/req | room max/mean | errors |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for h, v in ((h, v) for h in all_results for v in variants):
        results = all_results[h]
        rs = results[v]
        if "static" in results and v != "static":
            ratio = med([x["rps"] / s["rps"] for x, s in zip(rs, results["static"])])
            ratio_s = f"{ratio:.3f} (min {min(x['rps'] / s['rps'] for x, s in zip(rs, results['static'])):.3f})"
        else:
            ratio_s = "1.000"
        agent = f"{med([x['agent_us'] for x in rs]):.2f}" if v.startswith("spoe") else "-"
        bal = med([x["balance"] for x in rs])
        bal_s = f"{bal:.3f}" if bal == bal else "-"  # NaN: no room traffic (static, noop)
        print(f"| {h} | {v} | {med([x['rps'] for x in rs]):.0f} | {ratio_s} | "
              f"{med([x['p50_ms'] for x in rs]):.2f} | {med([x['p99_ms'] for x in rs]):.2f} | "
              f"{med([x['haproxy_us'] for x in rs]):.1f} | {agent} | "
              f"{bal_s} | {sum(x['errors'] for x in rs)} |")
    spop_rows = [(h, v) for h in all_results for v in variants
                 if v.startswith("spoe") and all_results[h][v][0].get("spop")]
    if spop_rows:
        print("\nThe agent's side of SPOP (medians): connections HAProxy opened in the window and in"
              " all, NOTIFY frames per read, ACK frames per write, system calls per request")
        print("| HAProxy | variant | connections (window / all) | messages per NOTIFY | "
              "NOTIFY per read | ACK per write | agent syscalls/req |")
        print("|---|---|---|---|---|---|---|")
        for h, v in spop_rows:
            rs = all_results[h][v]
            def m(key, fmt):
                xs = [x["spop"][key] for x in rs if key in x["spop"]]
                return format(med(xs), fmt) if xs else "-"
            sc = [x["agent_syscalls_per_req"].get("all", 0) for x in rs
                  if x["agent_syscalls_per_req"]]
            sys_s = f"{med(sc):.2f}" if sc else "-"
            print(f"| {h} | {v} | {m('connections_opened', '.0f')} / {m('connections_total', '.0f')} | "
                  f"{m('messages_per_notify', '.2f')} | {m('notify_per_read', '.2f')} | "
                  f"{m('ack_per_write', '.2f')} | {sys_s} |")


if __name__ == "__main__":
    main()
