#!/usr/bin/env python3
"""The shared affinity store's cost at scale (issue 14, item 5): N real agents on one real
redis-server, each driven by its own spoa-loadgen, through three phases.

  fill    every agent first sends one request for each of the mix's 5000 users and 200 origins
          (so that the steady state is not their warm-up), then walks its share of the rooms
          (--room-dist fill --fill-users) at --fill-rate: `--overlap` agents request each room,
          so each key is one claim won (SET NX GET -> nil) and the other claims lost (the
          winner adopted). Figures: Redis keys, bytes per key (INFO memory used_memory
          delta / DBSIZE, and MEMORY USAGE of sampled keys), Redis calls per room.
  steady  the request mix with churn (--room-dist churn: --hot-share of the room requests to
          --hot-rooms rooms, --new-share to rooms never seen before, the rest uniform over all
          the rooms: the cold tail) at --rate msgs/s per connection for at least two
          refresh intervals after one interval of warm-up. Figures: Redis calls per command
          (INFO commandstats deltas) per second, per request and per remembered key; Redis
          instantaneous_ops_per_sec; Redis CPU; the agents' synapse_spoa_shared_* counters.
  cpu     two more agents on the same Redis, one with the store and one without, driven side by
          side by identical loadgens (same seed, same rate), --cpu-rounds interleaved rounds of
          two workloads: `hits` (the hot rooms only: every request a hit once warm) and `churn`
          (the steady mix). Figure: the ratio of their CPU per request, per round.

Everything binds 127.0.0.1 (agents on port 0, read back from --ready-file; Redis on a free
port), every process is started and stopped by its PID. The workers have no metrics URL: nothing
is scraped and every worker counts as healthy at nominal capacity (as in bench_loadgen_smoke), so
placement runs its full path on request rates alone. A benchmark, not a ctest test.

    tests/bench/shared_scale.py --build-dir build-perf --quick          # 4 agents x 20k rooms
    tests/bench/shared_scale.py --build-dir build-perf --command-timeout 5s   # 16 x 1M rooms

On two shared cores the 16 x 1M fill needs --command-timeout 5s: with the agent's 500 ms the
aligned refresh bursts outlast it, every agent drops off Redis, and the whole-table reclaim on
each reconnect keeps them dropping (tests/bench/README.md). The script stops with "reconnect
storm" rather than measure that; a few disconnects are printed as a warning.

Counters are read generically (every synapse_spoa_shared_* sample, every cmdstat_*), so new
store operations show up as new rows without a change here."""

import argparse
import json
import math
import os
import pathlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = pathlib.Path(__file__).resolve().parent
SOURCE = HERE.parent.parent
POOLS = """pools:
  main:              {backend: synapse_main,              balance: least_loaded}
  client_sync:       {backend: synapse_client_sync,       balance: affinity, key: user}
  room:              {backend: synapse_room,              balance: affinity, key: room}
  federation_reader: {backend: synapse_federation_reader, balance: affinity, key: origin}
  media:             {backend: synapse_media,             balance: least_loaded}
workers:
  - {name: main,               pool: main}
  - {name: client_sync1,       pool: client_sync}
  - {name: room1,              pool: room}
  - {name: room2,              pool: room}
  - {name: room3,              pool: room}
  - {name: room4,              pool: room}
  - {name: federation_reader1, pool: federation_reader}
  - {name: media1,             pool: media}
"""
MIX_KEYS = 5000 + 200  # spoa-loadgen's users and origins: affinity keys besides the rooms
# Commands this script sends itself (after its one PING): never counted as the store's.
OWN_COMMANDS = ("info", "dbsize", "randomkey", "memory", "strlen")


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cpu_seconds(pid):
    """CPU time of every thread of pid, seconds: its process CPU-time clock (nanoseconds,
    clock_getcpuclockid's MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)), else utime + stime of
    /proc/PID/stat (10 ms ticks: too coarse for a few-second window at a modest rate)."""
    try:
        return time.clock_gettime(((~pid) << 3) | 2)
    except OSError:
        pass
    with open(f"/proc/{pid}/stat") as f:
        s = f.read()
    fields = s[s.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_bytes(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Proc:
    """A child process with its output in a log file, in its own session; stopped by PID."""

    def __init__(self, name, argv, workdir):
        self.name = name
        self.log_path = pathlib.Path(workdir) / f"{name}.log"
        self.log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(argv, stdout=self.log, stderr=subprocess.STDOUT,
                                      start_new_session=True)
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def wait(self, timeout):
        rc = self.popen.wait(timeout=timeout)
        self.log.flush()
        return rc

    def stop(self, timeout=10.0):
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait(timeout=5)
            except ProcessLookupError:
                pass
        if not self.log.closed:
            self.log.close()
        return self.popen.returncode

    def output(self):
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")


class Redis:
    """A minimal RESP client over one socket (no client package)."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        self.buf = b""

    def _line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def _exact(self, n):
        while len(self.buf) < n + 2:
            chunk = self.sock.recv(1 << 16)
            if not chunk:
                raise ConnectionError("redis closed the connection")
            self.buf += chunk
        data, self.buf = self.buf[:n], self.buf[n + 2:]
        return data

    def _reply(self):
        line = self._line()
        t, rest = line[:1], line[1:]
        if t == b"+":
            return rest.decode()
        if t == b"-":
            raise RuntimeError("redis error: " + rest.decode())
        if t == b":":
            return int(rest)
        if t == b"$":
            n = int(rest)
            return None if n < 0 else self._exact(n)
        if t == b"*":
            n = int(rest)
            return None if n < 0 else [self._reply() for _ in range(n)]
        raise RuntimeError(f"bad RESP line {line!r}")

    def __call__(self, *args):
        out = [f"*{len(args)}\r\n".encode()]
        for a in args:
            b = a if isinstance(a, bytes) else str(a).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(b), b))
        self.sock.sendall(b"".join(out))
        return self._reply()

    def info(self, section):
        text = self("INFO", section).decode()
        d = {}
        for line in text.splitlines():
            if ":" in line and not line.startswith("#"):
                k, v = line.split(":", 1)
                d[k] = v
        return d

    def commandstats(self):
        """{command: (calls, usec)}"""
        out = {}
        for k, v in self.info("commandstats").items():
            if k.startswith("cmdstat_"):
                f = dict(kv.split("=", 1) for kv in v.split(","))
                out[k[len("cmdstat_"):]] = (int(f["calls"]), int(f["usec"]))
        return out

    def close(self):
        self.sock.close()


def is_own(cmd):
    return cmd.split("|")[0] in OWN_COMMANDS


def cmd_delta(a, b):
    """{command: (calls, usec)} of b - a, the store's commands only."""
    d = {}
    for k, (calls, usec) in b.items():
        c0, u0 = a.get(k, (0, 0))
        if calls - c0 and not is_own(k):
            d[k] = (calls - c0, usec - u0)
    return d


def parse_metrics(text, prefix="synapse_spoa_shared_"):
    """{sample name with labels: value} for every sample starting with prefix."""
    out = {}
    for line in text.splitlines():
        if not line.startswith(prefix):
            continue
        name, _, value = line.rpartition(" ")
        try:
            out[name] = float(value)
        except ValueError:
            pass
    return out


def parse_loadgen(text):
    """spoa-loadgen's '| metric | value |' rows."""
    rows = {}
    for line in text.splitlines():
        parts = [p.strip() for p in line.strip().strip("|").split("|")]
        if len(parts) == 2 and parts[0] not in ("metric", "---"):
            rows[parts[0]] = parts[1]
    return rows


def num(s, i=0):
    return float(s.split("/")[i].strip().split()[0])


class Agent:
    def __init__(self, bench, name, shared):
        self.bench, self.name, self.shared = bench, name, shared
        d = bench.dir
        self.config = d / f"{name}.yaml"
        self.ready = d / f"{name}.ready"
        a = bench.args
        text = ["listen: 127.0.0.1:0", "metrics_listen: 127.0.0.1:0", "log_level: warn", POOLS,
                "placement:", "  hash_key: shared-scale",
                f"  max_keys: {bench.max_keys}"]
        if shared:
            text += ["shared:", f'  redis: "redis://127.0.0.1:{bench.redis_port}/0"',
                     f"  refresh_interval: {a.refresh_interval}"]
            if a.command_timeout:
                text += [f"  command_timeout: {a.command_timeout}"]
        text += [a.agent_extra] if a.agent_extra else []
        self.config.write_text("\n".join(text) + "\n")
        self.proc = Proc(name, [str(bench.agent_bin), "run", "--config", str(self.config),
                                "--ready-file", str(self.ready)], d)
        bench.procs.append(self.proc)

    def wait_ready(self, timeout=20):
        deadline = time.monotonic() + timeout
        while not (self.ready.exists() and self.ready.stat().st_size):
            if not self.proc.alive() or time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not start:\n{self.proc.output()}")
            time.sleep(0.05)
        ports = dict(line.split() for line in self.ready.read_text().splitlines())
        self.spop_port, self.metrics_port = int(ports["spop"]), int(ports["metrics"])

    def metrics(self):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics",
                                    timeout=10) as r:
            return parse_metrics(r.read().decode())

    def connected(self):
        return self.metrics().get("synapse_spoa_shared_connected") == 1.0

    @property
    def pid(self):
        return self.proc.pid


def sum_metrics(agents):
    total = {}
    for a in agents:
        for k, v in a.metrics().items():
            total[k] = total.get(k, 0.0) + v
    return total


def is_counter(sample):
    return sample.split("{", 1)[0].endswith(("_total", "_count", "_sum"))


def metric_delta(a, b):
    """Counters that changed (histogram buckets left out, their _count and _sum kept); gauges
    as one row per family: the sum over agents of its samples at the end, and how many."""
    out = {k: b[k] - a.get(k, 0.0) for k in b
           if is_counter(k) and "_bucket{" not in k and b[k] - a.get(k, 0.0) != 0}
    for k, v in b.items():
        if not is_counter(k) and "_bucket{" not in k:
            fam = k.split("{", 1)[0] + " (gauge: sum at the end, samples)"
            n, total = out.get(fam, (0, 0.0))
            out[fam] = (n + 1, total + v)
    return {k: (f"{fmt(v[1])}, {v[0]}" if isinstance(v, tuple) else v) for k, v in out.items()}


def latency_quantiles(a, b, qs=(0.5, 0.99)):
    """Upper bounds (s) of the given quantiles of synapse_spoa_shared_redis_latency_seconds
    from the bucket deltas of two summed scrapes; None past the last finite bucket."""
    pre = "synapse_spoa_shared_redis_latency_seconds_bucket{"
    buckets = []
    for k, v in b.items():
        if k.startswith(pre) and 'le="' in k:
            le = k.split('le="', 1)[1].split('"', 1)[0]
            buckets.append((float("inf") if le == "+Inf" else float(le), v - a.get(k, 0.0)))
    buckets.sort()
    if not buckets or buckets[-1][1] <= 0:
        return {}
    total = buckets[-1][1]
    out = {}
    for q in qs:
        for le, cum in buckets:
            if cum >= q * total:
                out[q] = None if le == float("inf") else le
                break
    return out


def fmt_latency(q):
    return " / ".join("> last bucket" if v is None else f"≤ {v * 1000:g} ms"
                      for _, v in sorted(q.items())) or "-"


def table(headers, rows):
    out = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    out += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(out)


def fmt(x, digits=3):
    if isinstance(x, str):
        return x
    if x == 0:
        return "0"
    if abs(x) >= 100:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


class Bench:
    def __init__(self, args):
        self.args = args
        build = pathlib.Path(args.build_dir)
        self.agent_bin = build / "src" / "synapse-spoa"
        self.loadgen_bin = build / "tests" / "bench" / "spoa-loadgen"
        for b in (self.agent_bin, self.loadgen_bin):
            if not b.exists():
                sys.exit(f"shared_scale: {b} is missing (build the synapse-spoa and spoa-loadgen "
                         "targets)")
        if args.log_dir:  # kept: configs and every process's log
            self.tmp = None
            self.dir = pathlib.Path(args.log_dir)
            self.dir.mkdir(parents=True, exist_ok=True)
        else:
            self.tmp = tempfile.TemporaryDirectory(prefix="spoa-scale-")
            self.dir = pathlib.Path(self.tmp.name)
        self.procs = []
        self.results = {"args": vars(args)}
        # Every agent may come to remember every room (the cold tail), the new rooms, the users
        # and the origins of the mix.
        self.max_keys = max(1_000_000, int(args.rooms * 1.3) + 100_000)
        self.interval_s = parse_duration(args.refresh_interval)

    # -- processes ---------------------------------------------------------------------------
    def start_redis(self):
        self.redis_port = free_port()
        self.redis_proc = Proc("redis", [self.args.redis_server, "--bind", "127.0.0.1",
                                         "--port", str(self.redis_port), "--save", "",
                                         "--appendonly", "no", "--dir", str(self.dir)], self.dir)
        self.procs.append(self.redis_proc)
        deadline = time.monotonic() + 10
        while True:
            try:
                self.redis = Redis(self.redis_port)
                self.redis("PING")
                return
            except OSError:
                if not self.redis_proc.alive() or time.monotonic() > deadline:
                    raise RuntimeError("redis-server did not start:\n" + self.redis_proc.output())
                time.sleep(0.05)

    def loadgen(self, name, agent, extra):
        argv = [str(self.loadgen_bin), "--agent", f"127.0.0.1:{agent.spop_port}",
                "--agent-pid", str(agent.pid)] + [str(x) for x in extra]
        p = Proc(name, argv, self.dir)
        self.procs.append(p)
        return p

    def finish(self, procs, timeout):
        """Wait for loadgens; their parsed tables. A failed loadgen is an error."""
        out = []
        for p in procs:
            rc = p.wait(timeout)
            text = p.output()
            if rc != 0:
                raise RuntimeError(f"{p.name} exited {rc}:\n{text}")
            out.append(parse_loadgen(text))
        return out

    def close(self):
        for p in reversed(self.procs):
            try:
                p.stop()
            except Exception as e:  # keep stopping the others
                log(f"stopping {p.name} (pid {p.pid}): {e}")
        self.procs.clear()

    def disconnects(self, agents):
        return sum(v for ag in agents if ag.proc.alive() for k, v in ag.metrics().items()
                   if k.startswith("synapse_spoa_shared_connections_total") and "disconnect" in k)

    def settle(self, what, timeout=120, agents=None):
        """Until the store's Redis calls stop growing (replies of a phase all in). A reconnect
        storm (agents dropping off Redis again and again, each reconnect claiming its whole
        table again) never settles: raise instead of measuring it."""
        agents = self.agents if agents is None else agents
        prev, stable_since, t0 = None, None, time.monotonic()
        dis0 = self.disconnects(agents)
        while time.monotonic() - t0 < timeout:
            dis = self.disconnects(agents)
            if dis - dis0 >= 2 * len(agents):
                raise RuntimeError(
                    f"{what}: {dis - dis0:g} more Redis disconnects while settling: a reconnect "
                    "storm (each reconnect claims the whole local table again); lower "
                    "--fill-rate or raise --command-timeout")
            # every store command but PUBLISH (load reports go on while idle)
            cs = {k: v[0] for k, v in self.redis.commandstats().items()
                  if not is_own(k) and k != "publish"}
            if cs == prev:
                if stable_since and time.monotonic() - stable_since > 0.5:
                    return
                stable_since = stable_since or time.monotonic()
            else:
                prev, stable_since = cs, None
            time.sleep(0.2)
        log(f"warning: {what}: Redis calls still growing after {timeout}s")

    def redis_cpu(self):
        i = self.redis.info("cpu")
        return float(i["used_cpu_sys"]) + float(i["used_cpu_user"])

    # -- phases ------------------------------------------------------------------------------
    def run(self):
        a = self.args
        self.start_redis()
        mem0 = int(self.redis.info("memory")["used_memory"])
        log(f"redis-server on 127.0.0.1:{self.redis_port}, used_memory {mem0} B empty")
        self.agents = [Agent(self, f"agent{i}", True) for i in range(a.agents)]
        for ag in self.agents:
            ag.wait_ready()
        deadline = time.monotonic() + 30
        while not all(ag.connected() for ag in self.agents):
            if time.monotonic() > deadline:
                raise RuntimeError("agents not connected to Redis")
            time.sleep(0.1)
        log(f"{a.agents} agents up and connected")
        self.fill(mem0)
        self.steady()
        for ag in self.agents:
            ag.proc.stop()
        self.cpu()

    def fill(self, mem0):
        a = self.args
        per = math.ceil(a.rooms / a.agents)
        msgs = per * a.overlap + MIX_KEYS
        rss0 = [rss_bytes(ag.pid) for ag in self.agents]
        cs0, m0, rcpu0 = self.redis.commandstats(), sum_metrics(self.agents), self.redis_cpu()
        cpu0 = [cpu_seconds(ag.pid) for ag in self.agents]
        t0 = time.monotonic()
        log(f"fill: {a.agents} agents x {msgs} room requests ({a.overlap} agents per room)")
        gens = [self.loadgen(f"fill{i}", ag,
                             ["--room-dist", "fill", "--fill-users", "--rooms", a.rooms,
                              "--fill-first", i * per, "--messages", msgs,
                              "--rate", a.fill_rate, "--connections", a.fill_connections,
                              "--pipeline", 20, "--warmup", 0, "--duration", a.fill_timeout,
                              "--seed", i + 1])
                for i, ag in enumerate(self.agents)]
        rows = self.finish(gens, a.fill_timeout + 30)
        t_load = time.monotonic() - t0
        self.settle("fill")
        t_fill = time.monotonic() - t0
        cs1, m1, rcpu1 = self.redis.commandstats(), sum_metrics(self.agents), self.redis_cpu()
        cpu1 = [cpu_seconds(ag.pid) for ag in self.agents]
        rss1 = [rss_bytes(ag.pid) for ag in self.agents]
        mem = self.redis.info("memory")
        keys = int(self.redis("DBSIZE"))
        used = int(mem["used_memory"])
        # Sampled keys: MEMORY USAGE (the key's own allocation, SAMPLES 0), key and value lengths,
        # the pool in the key name.
        samples, per_pool = [], {}
        for _ in range(min(a.samples, keys)):
            k = self.redis("RANDOMKEY")
            if k is None:
                break
            usage = self.redis("MEMORY", "USAGE", k, "SAMPLES", "0")
            vlen = self.redis("STRLEN", k)
            samples.append((len(k), vlen, usage))
            pool = k.decode().split(":")[-2] if k.count(b":") >= 2 else "?"
            per_pool[pool] = per_pool.get(pool, 0) + 1
        sent = sum(num(r["total sent / ACKed / routed"]) for r in rows)
        d = cmd_delta(cs0, cs1)
        fill = {
            "requests": sent, "seconds_load": t_load, "seconds_until_settled": t_fill,
            "requests_per_s": sent / t_load, "keys": keys, "used_memory": used,
            "used_memory_empty": mem0, "used_memory_dataset": int(mem.get("used_memory_dataset", 0)),
            "bytes_per_key": (used - mem0) / keys if keys else 0,
            "memory_usage_mean": sum(s[2] for s in samples) / len(samples) if samples else 0,
            "key_len_mean": sum(s[0] for s in samples) / len(samples) if samples else 0,
            "value_len_mean": sum(s[1] for s in samples) / len(samples) if samples else 0,
            "sampled_pools": per_pool,
            "commands": d, "redis_cpu_s": rcpu1 - rcpu0,
            "agent_cpu_s": sum(cpu1) - sum(cpu0),
            "agent_rss_delta": sum(rss1) - sum(rss0),
            "shared_metrics": metric_delta(m0, m1),
            "latency_quantiles": latency_quantiles(m0, m1),
        }
        self.results["fill"] = fill
        log(f"fill done: {keys} keys in {t_fill:.1f}s")
        dis = sum(v for k, v in fill["shared_metrics"].items() if 'event="disconnect"' in k)
        if dis:
            log(f"warning: {dis:g} Redis disconnects during the fill (replies slower than "
                "command_timeout?): lower --fill-rate")

    def steady(self):
        a = self.args
        iv = self.interval_s
        # The first refresh after the fill PEXPIREs every key the fill touched: let it pass, and
        # one more interval of churn warm-up, before the window opens.
        log(f"steady: waiting one refresh interval ({iv:g}s) for the fill's own refresh")
        time.sleep(iv + 0.5)
        self.settle("post-fill refresh", timeout=60)
        window = max(a.steady, 2 * iv)
        warm = iv
        churn = ["--room-dist", "churn", "--rooms", a.rooms, "--hot-rooms", a.hot_rooms,
                 "--hot-share", a.hot_share, "--new-share", a.new_share]
        gens = [self.loadgen(f"steady{i}", ag,
                             churn + ["--rate", a.rate, "--connections", a.connections,
                                      "--pipeline", 20, "--warmup", warm, "--duration", window,
                                      "--seed", i + 1])
                for i, ag in enumerate(self.agents)]
        log(f"steady: {a.agents} x {a.rate * a.connections:g} msgs/s offered, {warm:g}s warm-up, "
            f"{window:g}s window")
        time.sleep(warm + 0.3)  # the loadgens' HELLO takes a moment: open after theirs
        cs0, m0, rcpu0 = self.redis.commandstats(), sum_metrics(self.agents), self.redis_cpu()
        cpu0 = [cpu_seconds(ag.pid) for ag in self.agents]
        keys0 = int(self.redis("DBSIZE"))
        t0 = time.monotonic()
        inst = []
        while time.monotonic() - t0 < window - 0.3:
            time.sleep(1.0)
            inst.append(int(self.redis.info("stats")["instantaneous_ops_per_sec"]))
        cs1, m1, rcpu1 = self.redis.commandstats(), sum_metrics(self.agents), self.redis_cpu()
        cpu1 = [cpu_seconds(ag.pid) for ag in self.agents]
        secs = time.monotonic() - t0
        keys1 = int(self.redis("DBSIZE"))
        rows = self.finish(gens, window + 30)
        msgs = sum(num(r["messages ACKed (window)"]) for r in rows)
        rate = sum(num(r["messages/s"]) for r in rows)
        steady = {
            "seconds": secs, "messages": msgs, "messages_per_s": rate,
            "commands": cmd_delta(cs0, cs1), "instantaneous_ops_per_sec": inst,
            "redis_cpu_s": rcpu1 - rcpu0, "agent_cpu_s": sum(cpu1) - sum(cpu0),
            "keys_start": keys0, "keys_end": keys1,
            "agent_cpu_us_per_msg": [num(r["agent CPU per message (us)"]) for r in rows
                                     if "agent CPU per message (us)" in r],
            "shared_metrics": metric_delta(m0, m1),
            "latency_quantiles": latency_quantiles(m0, m1),
            "new_rooms_sent": sum(int(r.get("room distribution", "x (new rooms sent: 0)")
                                      .rsplit(":", 1)[1].strip(" )")) for r in rows),
        }
        self.results["steady"] = steady

    def cpu(self):
        a = self.args
        cs_start, t_start = self.redis.commandstats(), time.monotonic()
        on, off = Agent(self, "cpu_on", True), Agent(self, "cpu_off", False)
        for ag in (on, off):
            ag.wait_ready()
        deadline = time.monotonic() + 30
        while not on.connected():
            if time.monotonic() > deadline:
                raise RuntimeError("cpu_on not connected to Redis")
            time.sleep(0.1)
        # Both agents learn the hot rooms, the users and the origins first: `hits` is all hits.
        warm = [self.loadgen(f"cpu_warm_{ag.name}", ag,
                             ["--room-dist", "fill", "--fill-users", "--rooms", a.hot_rooms,
                              "--messages", a.hot_rooms + MIX_KEYS, "--connections", 1,
                              "--rate", 5000, "--warmup", 0, "--duration", 60])
                for ag in (on, off)]
        self.finish(warm, 90)
        # Start-up work of cpu_on (a restore from Redis, if the store does one, and the refresh
        # of what it restored) stays out of the windows: settle, wait one refresh, settle.
        self.settle("cpu warm-up", agents=[on])
        t_settled = time.monotonic() - t_start
        time.sleep(self.interval_s + 0.5)
        self.settle("cpu warm-up refresh", agents=[on])
        startup = {"seconds_until_quiet": t_settled,
                   "commands": {k: c for k, (c, _) in
                                cmd_delta(cs_start, self.redis.commandstats()).items()}}
        workloads = {
            "hits": ["--room-dist", "churn", "--rooms", a.rooms, "--hot-rooms", a.hot_rooms,
                     "--hot-share", 1.0, "--new-share", 0],
            "churn": ["--room-dist", "churn", "--rooms", a.rooms, "--hot-rooms", a.hot_rooms,
                      "--hot-share", a.hot_share, "--new-share", a.new_share],
        }
        rounds = []
        for r in range(a.cpu_rounds):
            for wl, dist in workloads.items():
                # Same seed for both agents: the same requests; alternate who starts first.
                pair = [on, off] if r % 2 == 0 else [off, on]
                common = dist + ["--rate", a.cpu_rate, "--connections", a.connections,
                                 "--pipeline", 20, "--warmup", a.cpu_warmup,
                                 "--duration", a.cpu_duration, "--seed", 100 + r]
                gens = {ag.name: self.loadgen(f"cpu{r}_{wl}_{ag.name}", ag, common) for ag in pair}
                # The window: the loadgens' own (after their warm-up), CPU read here from the
                # agents' CPU-time clocks (ns) rather than spoa-loadgen's 10 ms ticks.
                time.sleep(a.cpu_warmup + 0.1)
                cs0 = self.redis.commandstats()
                c0, t0 = {ag.name: cpu_seconds(ag.pid) for ag in pair}, time.monotonic()
                time.sleep(a.cpu_duration - 0.2)
                c1, t1 = {ag.name: cpu_seconds(ag.pid) for ag in pair}, time.monotonic()
                cs1 = self.redis.commandstats()
                res = dict(zip(gens, self.finish(list(gens.values()), a.cpu_duration +
                                                 a.cpu_warmup + 30)))
                row = {"round": r + 1, "workload": wl}
                for name, rr in res.items():
                    rate = num(rr["messages/s"])
                    row[name] = {"cpu_us": (c1[name] - c0[name]) * 1e6 / (rate * (t1 - t0)),
                                 "loadgen_cpu_us": num(rr["agent CPU per message (us)"]),
                                 "msgs_per_s": rate,
                                 "p50_us": num(rr["latency p50 / p99 / p99.9 (us)"], 0),
                                 "p99_us": num(rr["latency p50 / p99 / p99.9 (us)"], 1)}
                row["ratio"] = row["cpu_on"]["cpu_us"] / row["cpu_off"]["cpu_us"]
                row["commands"] = {k: c for k, (c, _) in cmd_delta(cs0, cs1).items()}
                row["redis_calls"] = sum(row["commands"].values())
                row["redis_calls_per_msg"] = row["redis_calls"] / (
                    row["cpu_on"]["msgs_per_s"] * (t1 - t0))
                rounds.append(row)
                log(f"cpu round {r + 1} {wl}: on {row['cpu_on']['cpu_us']:.2f} / off "
                    f"{row['cpu_off']['cpu_us']:.2f} us/msg = {row['ratio']:.3f}")
        # CPU of the two agents with no traffic at all (the store's 10 ms tick), 3 s.
        c0 = (cpu_seconds(on.pid), cpu_seconds(off.pid))
        time.sleep(3)
        c1 = (cpu_seconds(on.pid), cpu_seconds(off.pid))
        self.results["cpu"] = {"rounds": rounds, "startup": startup,
                               "idle_cpu_ms_per_s": {"on": (c1[0] - c0[0]) * 1000 / 3,
                                                     "off": (c1[1] - c0[1]) * 1000 / 3},
                               "shared_metrics_on": on.metrics()}
        on.proc.stop()
        off.proc.stop()

    # -- report ------------------------------------------------------------------------------
    def report(self):
        a, res = self.args, self.results
        out = []
        f, s = res["fill"], res["steady"]
        out.append(f"### Fill: {a.agents} agents, {a.rooms:,} rooms, {a.overlap} agents per room\n")
        rows = [["requests sent (users and origins once per agent, then rooms)",
                 fmt(f["requests"])],
                ["time (load / until the last reply)", f"{f['seconds_load']:.1f} s / "
                 f"{f['seconds_until_settled']:.1f} s"],
                ["requests/s (all agents)", fmt(f["requests_per_s"])],
                ["Redis keys (DBSIZE)", fmt(f["keys"])],
                ["used_memory empty → filled", f"{f['used_memory_empty']:,} → "
                 f"{f['used_memory']:,} B"],
                ["**bytes per key** (used_memory delta / DBSIZE)", f"**{f['bytes_per_key']:.1f}**"],
                ["MEMORY USAGE per key (mean of samples)", f"{f['memory_usage_mean']:.1f}"],
                ["key / value length (mean of samples)", f"{f['key_len_mean']:.1f} / "
                 f"{f['value_len_mean']:.1f} B"],
                ["sampled keys by pool", ", ".join(f"{k} {v}" for k, v in
                                                   sorted(f["sampled_pools"].items()))],
                ["Redis CPU per request", f"{f['redis_cpu_s'] * 1e6 / f['requests']:.2f} µs"],
                ["agent CPU per request (all agents)",
                 f"{f['agent_cpu_s'] * 1e6 / f['requests']:.2f} µs"],
                ["agents' RSS growth per remembered key",
                 f"{f['agent_rss_delta'] / (f['requests'] or 1):.1f} B"],
                ["Redis round trip p50 / p99 (agents' histogram)",
                 fmt_latency(f["latency_quantiles"])]]
        out.append(table(["fill", "value"], rows))
        out.append("")
        out.append(table(["Redis command (fill)", "calls", "per request", "per key",
                          "µs per call"],
                         [[k, fmt(c), fmt(c / f["requests"]), fmt(c / max(1, f["keys"])),
                           f"{u / c:.2f}"] for k, (c, u) in sorted(f["commands"].items())]))
        out.append("")
        out.append(table(["agents' shared counters (fill, sum)", "delta"],
                         [[k, fmt(v)] for k, v in sorted(f["shared_metrics"].items())]))
        out.append("")
        offered = a.rate * a.connections
        out.append(f"### Steady state with churn: {a.agents} agents × {offered:g} msgs/s offered, "
                   f"refresh_interval {a.refresh_interval}, {s['seconds']:.1f} s window\n")
        out.append(f"Mix: the project's request mix; of its room requests {a.hot_share:g} to "
                   f"{a.hot_rooms:,} hot rooms, {a.new_share:g} to new rooms, the rest uniform "
                   f"over all {a.rooms:,}. Measured {s['messages_per_s']:,.0f} msgs/s in all "
                   f"({s['messages']:,.0f} messages); Redis keys {s['keys_start']:,} → "
                   f"{s['keys_end']:,}.\n")
        tot = sum(c for c, _ in s["commands"].values())
        rows = []
        for k, (c, u) in sorted(s["commands"].items(), key=lambda kv: -kv[1][0]):
            rows.append([k, fmt(c), fmt(c / s["seconds"]), fmt(c / s["messages"], 3),
                         fmt(c / s["seconds"] / max(1, s["keys_end"]) * 1e6, 3),
                         f"{u / c:.2f}"])
        rows.append(["**all**", fmt(tot), f"**{fmt(tot / s['seconds'])}**",
                     f"**{fmt(tot / s['messages'], 3)}**",
                     fmt(tot / s["seconds"] / max(1, s["keys_end"]) * 1e6, 3), ""])
        out.append(table(["Redis command (steady)", "calls", "calls/s", "per request",
                          "calls/s per 1M Redis keys", "µs per call"], rows))
        pex = s["commands"].get("pexpire", (0, 0))[0]
        per_interval = pex / a.agents / (s["seconds"] / self.interval_s)
        out.append(f"\nPEXPIRE per agent per refresh interval: {per_interval:,.0f} keys "
                   f"(every key the agent used in the interval).")
        inst = s["instantaneous_ops_per_sec"]
        out.append("")
        rows = [["instantaneous_ops_per_sec (mean / max of 1 s samples)",
                 f"{fmt(sum(inst) / len(inst)) if inst else '-'} / "
                 f"{fmt(max(inst)) if inst else '-'}"],
                ["Redis CPU (share of one core)", f"{s['redis_cpu_s'] / s['seconds'] * 100:.1f} %"],
                ["Redis CPU per request", f"{s['redis_cpu_s'] * 1e6 / s['messages']:.2f} µs"],
                ["agent CPU per request (all agents, at this rate)",
                 f"{s['agent_cpu_s'] * 1e6 / s['messages']:.2f} µs"],
                ["new rooms sent (all loadgens, whole run)", fmt(s["new_rooms_sent"])],
                ["Redis round trip p50 / p99 (agents' histogram)",
                 fmt_latency(s["latency_quantiles"])]]
        out.append(table(["steady", "value"], rows))
        out.append("")
        out.append(table(["agents' shared counters (steady window, sum)", "delta", "per s"],
                         [[k, fmt(v), fmt(v / s["seconds"]) if not isinstance(v, str) else ""]
                          for k, v in sorted(s["shared_metrics"].items())]))
        out.append("")
        c = res["cpu"]
        out.append(f"### Agent CPU per request, store on vs off (side by side, "
                   f"{a.cpu_rate * a.connections:g} msgs/s each, {a.cpu_duration:g} s windows)\n")
        rows = []
        for r in c["rounds"]:
            rows.append([r["round"], r["workload"], f"{r['cpu_on']['cpu_us']:.2f}",
                         f"{r['cpu_off']['cpu_us']:.2f}", f"**{r['ratio']:.3f}**",
                         f"{r['cpu_on']['cpu_us'] - r['cpu_off']['cpu_us']:+.2f}",
                         f"{r['cpu_on']['p50_us']:.0f} / {r['cpu_off']['p50_us']:.0f}",
                         fmt(r["redis_calls_per_msg"], 3),
                         ", ".join(f"{k} {fmt(v / r['redis_calls'] * r['redis_calls_per_msg'], 2)}"
                                   for k, v in sorted(r["commands"].items())) or "-"])
        out.append(table(["round", "workload", "on µs/msg", "off µs/msg", "on / off",
                          "on − off µs/msg", "p50 µs on / off", "Redis calls per msg (on)",
                          "by command"], rows))
        for wl in ("hits", "churn"):
            rs = sorted(r["ratio"] for r in c["rounds"] if r["workload"] == wl)
            if rs:
                out.append(f"\n{wl}: median on/off {rs[len(rs) // 2]:.3f} "
                           f"(range {rs[0]:.3f}–{rs[-1]:.3f}, {len(rs)} rounds)")
        st = c["startup"]
        out.append(f"\ncpu_on start-up (joining a Redis of {self.results['steady']['keys_end']:,} "
                   f"keys, plus its warm-up of {a.hot_rooms + MIX_KEYS:,} keys) until Redis was "
                   f"quiet: {st['seconds_until_quiet']:.1f} s; Redis calls until the first "
                   "window: " + ", ".join(f"{k} {fmt(v)}" for k, v in sorted(st["commands"].items())))
        ic = c["idle_cpu_ms_per_s"]
        rate = a.cpu_rate * a.connections
        out.append(f"\nIdle (no traffic) CPU: on {ic['on']:.2f} ms/s, off {ic['off']:.2f} ms/s "
                   f"(the store's timers); at {rate:g} msgs/s that alone is "
                   f"{(ic['on'] - ic['off']) * 1e3 / rate:.2f} µs/msg.")
        return "\n".join(out)


def parse_duration(s):
    units = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}
    for u in ("ms", "s", "m", "h"):
        if s.endswith(u) and s[:-len(u)].isdigit():
            return int(s[:-len(u)]) * units[u]
    raise argparse.ArgumentTypeError(f"a duration like 5s or 500ms, not {s!r}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--build-dir", default="build-perf")
    p.add_argument("--redis-server", default="/usr/bin/redis-server")
    p.add_argument("--agents", type=int, default=16)
    p.add_argument("--rooms", type=int, default=1_000_000)
    p.add_argument("--overlap", type=int, default=2, help="agents requesting each room in the fill")
    p.add_argument("--fill-connections", type=int, default=2)
    p.add_argument("--fill-rate", type=float, default=500, help="msgs/s per loadgen connection "
                   "in the fill (16 agents x 2 x 1000 = 32k/s on two shared cores: replies outgrew "
                   "shared.command_timeout, even at 5s, and the agents fell into a reconnect storm)")
    p.add_argument("--fill-timeout", type=float, default=600)
    p.add_argument("--samples", type=int, default=500, help="keys sampled for MEMORY USAGE")
    p.add_argument("--refresh-interval", default="10s", help="shared.refresh_interval (default: "
                   "the agent's own default)")
    p.add_argument("--command-timeout", default="", help="shared.command_timeout (default: "
                   "the agent's own, 500ms)")
    p.add_argument("--steady", type=float, default=20, help="steady window, s (at least two "
                   "refresh intervals)")
    p.add_argument("--rate", type=float, default=500, help="msgs/s per loadgen connection")
    p.add_argument("--connections", type=int, default=2)
    p.add_argument("--hot-rooms", type=int, default=1000)
    p.add_argument("--hot-share", type=float, default=0.9)
    p.add_argument("--new-share", type=float, default=0.01)
    p.add_argument("--cpu-rounds", type=int, default=3)
    p.add_argument("--cpu-rate", type=float, default=5000, help="msgs/s per connection, cpu phase")
    p.add_argument("--cpu-duration", type=float, default=0, help="cpu phase window, s (default: "
                   "one refresh interval, so that every window holds one refresh)")
    p.add_argument("--cpu-warmup", type=float, default=2)
    p.add_argument("--agent-extra", default="", help="YAML appended to every agent's config")
    p.add_argument("--quick", action="store_true",
                   help="4 agents x 20,000 rooms, 2 s refresh, short windows")
    p.add_argument("--json", help="write every figure to this file")
    p.add_argument("--log-dir", help="keep configs and logs here (default: a temporary directory, "
                   "removed)")
    args = p.parse_args()
    if args.quick:
        args.agents, args.rooms, args.refresh_interval = 4, 20_000, "2s"
        args.steady, args.cpu_rounds, args.cpu_warmup = 4, 2, 1
        args.samples = 100
    args.cpu_duration = args.cpu_duration or max(2.0, parse_duration(args.refresh_interval))
    b = Bench(args)
    try:
        b.run()
        print(b.report())
        if args.json:
            pathlib.Path(args.json).write_text(json.dumps(b.results, indent=1, default=str))
    except BaseException:
        for pr in b.procs:
            if pr.name.startswith("agent") or pr.name == "redis" or pr.name.startswith("cpu_"):
                text = pr.output() if pr.log_path.exists() else ""
                if text.strip():
                    log(f"--- {pr.name} ---\n{text[-2000:]}")
        raise
    finally:
        b.close()
        if b.tmp:
            b.tmp.cleanup()


if __name__ == "__main__":
    main()
