"""Checks of one run's HAProxy log against Synapse's own access logs and the route table."""

from __future__ import annotations

import collections
import json
import re
import subprocess
import urllib.parse

# Endpoints whose process is fixed by Synapse itself (a wrong one is a 500 or a 404): the
# stream writers on client_sync1, the media repository on media1, main-only endpoints on main.
FIXED = [
    (re.compile(r"^/_matrix/client/[^/]+/rooms/[^/]+/(typing|receipt|read_markers)/"), "client_sync1"),
    (re.compile(r"^/_matrix/client/[^/]+/sendToDevice/"), "client_sync1"),
    (re.compile(r"^/_matrix/client/[^/]+/user/[^/]+/(rooms/[^/]+/)?(account_data|tags)"), "client_sync1"),
    (re.compile(r"^/_matrix/client/[^/]+/presence/"), "client_sync1"),
    (re.compile(r"^/_matrix/client/[^/]+/user_directory/search$"), "client_sync1"),
    (re.compile(r"^/_matrix/client/[^/]+/sync$"), "client_sync1"),
    (re.compile(r"^/_matrix/(media|client/v1/media|federation/v1/media)/"), "media1"),
    (re.compile(r"^/_matrix/client/[^/]+/rooms/[^/]+/forget$"), "main"),
    (re.compile(r"^/_matrix/client/[^/]+/directory/list/room/"), "main"),
    (re.compile(r"^/_synapse/admin/"), "main"),
    (re.compile(r"^/_matrix/client/[^/]+/login$"), "main"),
]

ROOM_IN_PATH = [
    re.compile(r"^/_matrix/client/[^/]+/rooms/([^/]+)/"),
    re.compile(r"^/_matrix/client/[^/]+/(?:join|knock)/([^/]+)$"),
    re.compile(r"^/_matrix/federation/v[12]/(?:state|state_ids|backfill|get_missing_events|"
               r"event_auth|make_join|make_leave|send_join|send_leave|invite)/([^/]+)"),
]


def federation_kind(path):
    """send, make_join, backfill, key, media, query, ... for a federation path."""
    if path.startswith("/_matrix/key/"):
        return "key"
    parts = path.split("/")
    return parts[4] if len(parts) > 4 else path


def fixed_server(path):
    for pat, server in FIXED:
        if pat.search(path):
            return server
    return None


def room_of(path):
    for pat in ROOM_IN_PATH:
        m = pat.search(path)
        if m:
            room = urllib.parse.unquote(m.group(1))
            if room.startswith("!"):
                return room
    return None


def rules_for(stack, entries):
    """The route table's rule name for each entry (offline `synapse-spoa route -`)."""
    lines = "".join(f"{e['method']} {e['path']}\n" for e in entries)
    r = subprocess.run([str(stack_agent(stack)), "route", "--config", str(stack.agent_config), "-"],
                       input=lines, capture_output=True, text=True, check=True)
    return [json.loads(l)["rule"] for l in r.stdout.splitlines()]


def stack_agent(stack):
    from realstack import AGENT
    return AGENT


def client_entries(stack, since=0.0):
    """Client and federation requests HAProxy accepted at or after Unix time `since`. (HAProxy
    logs a TLS connection's frontend as "matrix~".)"""
    return [e for e in stack.haproxy_log()
            if e["frontend"].rstrip("~") == "matrix" and e["time"] >= since - 0.001]


def check_log(tc, stack, entries, agent_answered=True):
    """Every request: no 5xx, no 404; served by the process the agent named; that process's own
    access log has it; writer/main-only/media endpoints on their process; one room, one room
    worker. Returns the table rule x server x status."""
    tc.assertTrue(entries, "HAProxy logged no client request")
    bad = [e for e in entries if e["status"] >= 500 or e["status"] == 404 or e["status"] < 100]
    tc.assertEqual(bad, [], "requests answered 5xx/404 (or not at all)")
    if agent_answered:
        unnamed = [e for e in entries if e["srv"] in ("", "-")]
        tc.assertEqual(unnamed, [], "requests the agent did not answer")
        elsewhere = [e for e in entries if e["server"] != e["srv"]]
        tc.assertEqual(elsewhere, [], "requests not served by the server the agent named")
    # Served where HAProxy says: the process's own access log holds every such request.
    by_server = collections.defaultdict(collections.Counter)
    for e in entries:
        by_server[e["server"]][(e["method"], e["path"].split("?", 1)[0])] += 1
    for server, want in by_server.items():
        have = collections.Counter((m, p) for m, p, _ in stack.access_log(server))
        missing = want - have
        tc.assertEqual(dict(missing), {}, f"requests HAProxy sent to {server} that {server}'s "
                                          "Synapse access log does not have")
    wrong = [(e["method"], e["path"], e["server"], fixed_server(e["path"])) for e in entries
             if fixed_server(e["path"]) and e["server"] != fixed_server(e["path"])]
    tc.assertEqual(wrong, [], "endpoints served by the wrong process")
    rooms = collections.defaultdict(set)
    for e in entries:
        room = room_of(e["path"])
        if room and e["backend"] == "synapse_room":
            rooms[room].add(e["server"])
    split = {r: s for r, s in rooms.items() if len(s) > 1}
    tc.assertEqual(split, {}, "rooms served by more than one room worker")
    table = collections.Counter()
    for e, rule in zip(entries, rules_for(stack, entries)):
        table[(rule, e["server"], e["status"])] += 1
    return table, rooms


def print_table(title, table):
    print(f"\n{title}\n| rule | served by | status | requests |\n|---|---|---|---|")
    for (rule, server, status), n in sorted(table.items()):
        print(f"| {rule} | {server} | {status} | {n} |")
