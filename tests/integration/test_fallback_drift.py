"""it_fallback_drift: haproxy/haproxy.cfg's fallback ACLs (used while the agent is down) against
the agent's route table (issue 15, part 6).

The fallback rules are a hand copy of the embedded route table (src/routing/default_rules.cpp).
This test sends a request corpus through real HAProxy with the project's haproxy.cfg and NO agent
running, reads from HAProxy's own log which backend served each request, and compares it with the
backend the agent's route table chooses for the same request (`synapse-spoa route -`, offline).

The corpus: every row of tests/unit/routing/test_corpus.cpp (parsed from the C++ source), plus
one sample path for every expansion of every default rule's pattern (`synapse-spoa routes`), so a
new rule is covered without a new corpus row, plus probes of every client API version prefix the
ACLs accept (PROBE_TAILS: keep them in step with the ACLs' endpoints by hand).

The fallback is deliberately coarser than the agent: it may send a request to synapse_main (which
serves every endpoint) where the agent picks a worker pool. Each such difference is an explicit
entry of ALLOWED below; any other difference fails, and so does an entry that no request needs
any more (the ACLs were fixed: drop the entry).
"""

import collections
import http.client
import json
import os
import re
import subprocess
import unittest

from harness import AGENT, SOURCE, Stack, wait_for

CORPUS_CPP = SOURCE / "tests" / "unit" / "routing" / "test_corpus.cpp"

# Known, accepted differences: (agent rule, path regex or None for every path of the rule,
# the backend the fallback chooses, why). Everything not listed must agree, and every entry must
# still be needed by some request.
ALLOWED = [
    # --- Coarser by design: worker-capable endpoints the fallback leaves on main, which serves
    # every endpoint (without room stickiness while the agent is down).
    ("join_room", None, "synapse_main", "/join|knock/{room}: p_room matches only .../rooms/ID/"),
    ("room_keys_room", None, "synapse_main", "/room_keys/keys/{room}: e2e key backup"),
    ("room_summary", None, "synapse_main", "/v1/room_summary/{room}, nheko summary"),
    ("admin_room_details", None, "synapse_main", "/_synapse/admin/v1/rooms/{room} on main"),
    ("room_aliases", r"/unstable/org\.matrix\.msc2432/", "synapse_main",
     "p_room does not list the msc2432 unstable prefix"),
    # --- Paths Synapse does not serve (the catch-all rule, main, in the agent; 404 on any
    # worker): the fallback's ACLs accept every client API version prefix, the route table only
    # those Synapse registers. Only the ACL probes and a malformed room ID reach these.
    ("fallback",
     r"^/_matrix/client/(api/v1|unstable)/(sync|events|initialSync|rooms/[^/]+/initialSync)$",
     "synapse_client_sync", "p_sync: no api/v1 /sync, no unstable sync family in Synapse"),
    ("fallback",
     r"^/_matrix/client/api/v1/"
     r"(rooms/[^/]+/(receipt|read_markers)|sendToDevice/|user_directory/search|user/)",
     "synapse_client_sync", "p_writer: these stream-writer endpoints have no api/v1 form"),
    ("fallback", r"^/_matrix/client/v1/rooms/[^/]+/", "synapse_room",
     "p_room takes v1 for hierarchy/relations/threads/timestamp_to_event; no other v1 room path"),
    ("fallback", r"^/_matrix/client/(api/v1|r0|v3|unstable)/rooms/[^!%/][^/]*/", "synapse_room",
     "a malformed room ID: the agent's room rules need '!', p_room takes any segment (400 anyway)"),
]

# haproxy.cfg's log-format: "%ci:%cp [%tr] %ft %b/%s %TR/%Tw/%Tc/%Tr/%Ta %ST %B %HM %HPO srv=..."
LOG_LINE = re.compile(r"^\S+ \[[^\]]*\] matrix (?P<backend>[^/\s]+)/\S+ \S+ \d+ \d+ "
                      r"(?P<method>\S+) (?P<path>\S+) srv=")


# --- the corpus ---------------------------------------------------------------------------------
def corpus_rows():
    """(method, path, rule) for every row of test_corpus.cpp's `corpus` array. The rows are
    brace-enclosed C string literals and macro names (#define NAME "text"); adjacent pieces
    concatenate as in C."""
    text = CORPUS_CPP.read_text()
    text = re.sub(r"//[^\n]*", "", text)
    macros = dict(re.findall(r'#define\s+(\w+)\s+"((?:[^"\\]|\\.)*)"', text))
    start = text.index("corpus_row corpus[] = {")
    block = text[text.index("{", start) + 1:text.index("\n};", start)]
    rows, row, field = [], None, []
    for tok in re.findall(r'"(?:[^"\\]|\\.)*"|\w+|[{},]', block):
        if tok == "{":
            row, field = [], []
        elif tok == ",":
            if row is not None:
                row.append("".join(field))
                field = []
        elif tok == "}":
            row.append("".join(field))
            rows.append(row)
            row = None
        elif tok.startswith('"'):
            if "\\" in tok:
                raise AssertionError(f"escape sequence in corpus literal {tok}: extend the parser")
            field.append(tok[1:-1])
        elif tok in macros:
            field.append(macros[tok])
        else:
            raise AssertionError(f"unknown token {tok!r} in test_corpus.cpp's corpus")
    return [(r[0], r[1], r[4]) for r in rows if len(r) == 5]


SAMPLE = {"*": "x1", "**": "x2", "{room}": "!abc:example.org",
          "{room_or_alias}": "!abc:example.org", "{alias}": "%23alias:example.org",
          "{user}": "@alice:example.org", "{event}": "$ev1"}


def expand(pattern):
    """Every expansion of a route pattern's {a|b} alternatives, captures replaced by samples."""
    m = re.search(r"\{([^{}]*\|[^{}]*)\}", pattern)
    if m:
        return [p for alt in m.group(1).split("|")
                for p in expand(pattern[:m.start()] + alt + pattern[m.end():])]
    segs = [SAMPLE.get(s, s) for s in pattern.split("/")]
    return ["/".join(segs)]


def rule_samples():
    """(method, path, None) for every expansion of every rule in `synapse-spoa routes` (None: an
    earlier rule may take a sample: the patterns overlap, first match wins), and the rule
    names."""
    out = subprocess.run([str(AGENT), "routes"], capture_output=True, text=True, check=True).stdout
    samples, rules = [], []
    for line in out.splitlines():
        cells = [c.strip().replace("\\|", "|") for c in re.split(r"(?<!\\)\|", line)[1:-1]]
        if len(cells) != 6 or not cells[0].isdigit():
            continue
        _n, name, methods, pattern, _pool, _key = cells
        rules.append(name)
        method = "GET" if methods == "*" else methods.split("|")[0]
        for path in expand(pattern.strip("`")):
            samples.append((method, path, None))
    return samples, rules


# The fallback ACLs accept every client API version for their endpoints, where the route table is
# per endpoint (sync has no api/v1 or unstable form, receipts no api/v1, ...). These probes send
# each of the fallback's version prefixes with each endpoint its ACLs name, so an ACL that sends
# more than the route table to a worker pool shows up too.
PROBE_VERSIONS = ["api/v1", "r0", "v3", "unstable", "v1"]
PROBE_TAILS = [
    "sync", "events", "initialSync", "rooms/!abc:example.org/initialSync",
    "rooms/!abc:example.org/typing/@alice:example.org", "rooms/!abc:example.org/receipt/m.read/$e",
    "rooms/!abc:example.org/read_markers", "sendToDevice/m.room.encrypted/t1",
    "presence/@alice:example.org/status", "user_directory/search",
    "user/@alice:example.org/account_data/m.x",
    "user/@alice:example.org/rooms/!abc:example.org/tags/t",
    "user/@alice:example.org/rooms/!abc:example.org/account_data/m.x",
    "rooms/!abc:example.org/forget", "rooms/!abc:example.org/upgrade",
    "rooms/!abc:example.org/report/$e", "pushrules/global/", "directory/list/room/!abc:example.org",
    "rooms/!abc:example.org/messages", "rooms/!abc:example.org/state/m.room.name/",
]


# ACL lines with a fixed unstable prefix instead of a version: their edges (no remainder after
# account_data; tags, which MSC3391 does not cover).
PROBE_PATHS = [
    "/_matrix/client/unstable/org.matrix.msc3391/user/@alice:example.org/account_data",
    "/_matrix/client/unstable/org.matrix.msc3391/user/@alice:example.org/rooms/!abc:example.org/"
    "account_data",
    "/_matrix/client/unstable/org.matrix.msc3391/user/@alice:example.org/rooms/!abc:example.org/"
    "tags/t",
]


def acl_probes():
    return ([("GET", f"/_matrix/client/{v}/{t}", None) for v in PROBE_VERSIONS for t in PROBE_TAILS]
            + [("GET", p, None) for p in PROBE_PATHS])


# --- the test -----------------------------------------------------------------------------------
class FallbackDrift(unittest.TestCase):
    def test_fallback_acls_choose_the_route_tables_backend(self):
        requests = corpus_rows()
        self.assertGreaterEqual(len(requests), 150, "test_corpus.cpp parsed to too few rows")
        samples, rules = rule_samples()
        self.assertGreater(len(rules), 50, "synapse-spoa routes parsed to too few rules")
        requests += samples
        probes = acl_probes()
        requests += probes

        os.environ["SPOA_HAPROXY_LOG_ALL"] = "1"  # one log line per request, with its backend
        self.addCleanup(os.environ.pop, "SPOA_HAPROXY_LOG_ALL", None)
        stack = Stack()
        self.addCleanup(stack.close)
        stack.start(agent=False)
        # Until HAProxy has marked the (absent) agent DOWN each request waits for the SPOE
        # connection to fail; afterwards the fallback answers at once. Either way it is the
        # fallback: nothing listens on the agent's port.
        wait_for(lambda: (stack.server_status("spoa_synapse", "agent1") or "").startswith("DOWN"),
                 timeout=30, what="HAProxy marks the absent agent DOWN")

        agent = self.agent_backends(stack, requests)
        workers = self.send(stack, requests)
        fallback = self.logged_backends(stack, requests, workers)

        differences = collections.defaultdict(list)  # (rule, agent, fallback) -> requests
        allowed_used = set()
        unexpected = []
        rules_hit = set()
        for i, (method, path, corpus_rule) in enumerate(requests):
            a = agent[i]
            rule, a_backend, f_backend = a["rule"], a["backend"], fallback[i]
            rules_hit.add(rule)
            if corpus_rule is not None and corpus_rule != rule:  # corpus rows name their rule
                self.fail(f"{method} {path}: the agent says rule {rule}, "
                          f"test_corpus.cpp says {corpus_rule}")
            if a_backend == f_backend:
                continue
            differences[(rule, a_backend, f_backend)].append(f"{method} {path}")
            entry = next((n for n, (r, rx, b, _why) in enumerate(ALLOWED)
                          if r == rule and b == f_backend and (rx is None or re.search(rx, path))),
                         None)
            if entry is None:
                unexpected.append(f"{method} {path}: rule {rule}, agent {a_backend}, "
                                  f"fallback {f_backend}")
            else:
                allowed_used.add(entry)

        report = "\n".join(f"  {r}: agent {a} / fallback {f}: {len(v)} requests, e.g. {v[0]}"
                           for (r, a, f), v in sorted(differences.items()))
        print(f"{len(requests)} requests ({len(samples)} rule samples, {len(probes)} ACL probes), "
              f"{len(rules_hit)} rules; "
              f"differences:\n{report or '  none'}")
        self.assertEqual(set(rules) - rules_hit, set(), "rules no request exercised")
        if unexpected:
            self.fail("the fallback ACLs drifted from the route table (fix "
                      "haproxy/haproxy.cfg, or add a commented ALLOWED entry):\n  "
                      + "\n  ".join(unexpected))
        stale = [ALLOWED[n][:3] for n in range(len(ALLOWED)) if n not in allowed_used]
        self.assertEqual(stale, [], "ALLOWED entries no request needs any more: remove them")

    def agent_backends(self, stack, requests):
        """The agent's decision per request: `synapse-spoa route -` over the stack's config."""
        lines = "".join(f"{m} {p}\n" for m, p, _r in requests)
        out = subprocess.run([str(AGENT), "route", "--config", str(stack.agent_config), "-"],
                             input=lines, capture_output=True, text=True, check=True).stdout
        answers = [json.loads(l) for l in out.splitlines()]
        self.assertEqual(len(answers), len(requests))
        for (m, p, _r), a in zip(requests, answers):
            self.assertNotIn("error", a, f"{m} {p}")
        return answers

    def send(self, stack, requests):
        """Every request in order on one keep-alive connection (so HAProxy logs them in order):
        the worker that answered each, None where the simulator does not say (/health)."""
        workers = []
        conn = http.client.HTTPConnection("127.0.0.1", stack.port, timeout=10)
        self.addCleanup(conn.close)
        for method, path, _rule in requests:
            conn.request(method, path)
            resp = conn.getresponse()
            resp.read()
            self.assertEqual(resp.status, 200, f"{method} {path}: HTTP {resp.status}")
            workers.append(resp.getheader("X-Synapse-Worker"))
            if resp.will_close:
                conn.close()
        return workers

    def logged_backends(self, stack, requests, workers):
        """The backend HAProxy chose for each request: its log lines for the `matrix` frontend,
        in order, each checked against the request's method and path; cross-checked against the
        worker that answered where the simulator names it."""
        lines = []

        def scan():
            lines[:] = [m for m in map(LOG_LINE.match, stack.haproxy.output().splitlines())
                        if m and m.group("backend") != "matrix"]  # matrix/<NOSRV>: port probes
            return len(lines) >= len(requests)

        wait_for(scan, timeout=15, what="one HAProxy log line per request")
        self.assertEqual(len(lines), len(requests), "HAProxy logged more requests than were sent")
        pool_of = {name: pool for name, pool in stack.workers}
        backends = []
        for (method, path, _rule), worker, m in zip(requests, workers, lines):
            logged_path = re.sub(r"#([0-9A-F]{2})", lambda h: chr(int(h.group(1), 16)),
                                 m.group("path"))
            self.assertEqual((m.group("method"), logged_path), (method, path.split("?")[0]),
                             "HAProxy's log out of step with the requests")
            if worker is not None:
                self.assertEqual(m.group("backend"), f"synapse_{pool_of[worker]}",
                                 f"{method} {path}: served by {worker}")
            backends.append(m.group("backend"))
        return backends


if __name__ == "__main__":
    unittest.main(verbosity=2)
