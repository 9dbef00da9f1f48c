"""Real client traffic for the real stack: matrix-nio (bookworm's python3-matrix-nio) for what it
speaks, raw JSON requests with the same access token for the endpoints nio 0.20 lacks (account
data, tags, device keys, directories, authenticated media). Every read checks what was written.

Each check failure raises AssertionError with what was expected and what came back."""

from __future__ import annotations

import asyncio
import http.client
import json
import ssl
import struct
import time
import urllib.parse
import zlib

import nio


def quote(s: str) -> str:
    return urllib.parse.quote(s, safe="")


def png(width=64, height=48) -> bytes:
    """A small valid RGB PNG (for the thumbnailer), built without Pillow."""
    rows = []
    for y in range(height):
        rows.append(b"\x00" + b"".join(bytes((x * 4 % 256, y * 5 % 256, 128)) for x in range(width)))
    raw = b"".join(rows)

    def chunk(kind, data):
        c = struct.pack(">I", len(data)) + kind + data
        return c + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) +
            chunk(b"IEND", b""))


class Raw:
    """JSON over HTTP to HAProxy with a user's access token."""

    def __init__(self, port, token=None, tls=False):
        self.port, self.token, self.tls = port, token, tls

    def call(self, method, path, body=None, expect=200, raw_body=None, content_type=None):
        if self.tls:
            conn = http.client.HTTPSConnection("127.0.0.1", self.port, timeout=40,
                                               context=ssl._create_unverified_context())
        else:
            conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=40)
        headers = {}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = None
        if raw_body is not None:
            data = raw_body
            headers["Content-Type"] = content_type or "application/octet-stream"
        elif body is not None:
            data = json.dumps(body)
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=data, headers=headers)
        resp = conn.getresponse()
        payload = resp.read()
        conn.close()
        if expect is not None and resp.status != expect:
            raise AssertionError(f"{method} {path}: HTTP {resp.status} (wanted {expect}): "
                                 f"{payload[:300]!r}")
        ctype = resp.getheader("Content-Type", "")
        if ctype.startswith("application/json"):
            return resp.status, json.loads(payload or b"{}")
        return resp.status, payload


def ok(resp, what):
    """A nio response that is not an error."""
    if isinstance(resp, nio.responses.ErrorResponse) or (
            isinstance(resp, tuple) and isinstance(resp[0], nio.responses.ErrorResponse)):
        raise AssertionError(f"{what}: {resp}")
    return resp


async def client_for(port, creds, tls=False):
    scheme = "https" if tls else "http"
    c = nio.AsyncClient(f"{scheme}://127.0.0.1:{port}", creds["user_id"],
                        config=nio.AsyncClientConfig(store_sync_tokens=False, encryption_enabled=False),
                        ssl=False if tls else None)
    c.access_token = creds["access_token"]
    c.user_id = creds["user_id"]
    c.device_id = creds["device_id"]
    return c


async def wait_sync(client, since, predicate, what, timeout=20.0):
    """Long-poll /sync (with since) until predicate(response) holds; returns (response, since)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        r = ok(await client.sync(timeout=5000, since=since, full_state=False), f"sync for {what}")
        since = r.next_batch
        if predicate(r):
            return r, since
    raise AssertionError(f"{what}: not seen in /sync within {timeout}s")


def room_events(sync, room_id, kind="timeline"):
    room = sync.rooms.join.get(room_id)
    if not room:
        return []
    if kind == "timeline":
        return room.timeline.events
    return room.ephemeral


async def run(stack, rooms=6, prefix=""):
    """The whole client scenario; returns a dict of facts for the caller's assertions."""
    port = stack.port
    facts = {}
    alice_c = stack.register(f"{prefix}alice")
    bob_c = stack.register(f"{prefix}bob")
    carol_c = stack.register(f"{prefix}carol")
    server = alice_c["user_id"].split(":", 1)[1]

    # Password login through nio (main), then the registered devices for the rest.
    login = nio.AsyncClient(f"http://127.0.0.1:{port}", alice_c["user_id"],
                            config=nio.AsyncClientConfig(encryption_enabled=False))
    ok(await login.login("spoa-pass", device_name="scenario"), "login")
    ok(await login.whoami(), "whoami")
    await login.close()

    alice = await client_for(port, alice_c)
    bob = await client_for(port, bob_c)
    carol = await client_for(port, carol_c)
    ra, rb, rc = Raw(port, alice_c["access_token"]), Raw(port, bob_c["access_token"]), Raw(
        port, carol_c["access_token"])
    try:
        first = ok(await bob.sync(timeout=0), "bob initial sync")
        bob_since = first.next_batch
        first_a = ok(await alice.sync(timeout=0), "alice initial sync")
        alice_since = first_a.next_batch

        # Rooms: created on main (or a worker), joined, talked in.
        room_ids = []
        for i in range(rooms):
            r = ok(await alice.room_create(name=f"room {i}", topic=f"topic {i}",
                                           visibility=nio.RoomVisibility.public if i == 0
                                           else nio.RoomVisibility.private,
                                           alias=f"{prefix}spoa-room-{i}" if i == 0 else None,
                                           invite=[] if i == 0 else [bob.user_id]),
                   "createRoom")
            room_ids.append(r.room_id)
        facts["rooms"] = room_ids
        main_room = room_ids[0]
        for rid in room_ids:
            ok(await bob.join(rid), f"bob joins {rid}")
        ok(await carol.join(f"#{prefix}spoa-room-0:{server}"), "carol joins by alias")

        # Messages, a long-poll /sync that must wake up for them.
        sent = []
        for rid in room_ids:
            for n in range(3):
                r = ok(await alice.room_send(rid, "m.room.message",
                                             {"msgtype": "m.text", "body": f"hello {rid} {n}"}),
                       "send")
                sent.append((rid, r.event_id))
        poll = asyncio.ensure_future(bob.sync(timeout=30000, since=bob_since))
        await asyncio.sleep(0.5)
        late = ok(await alice.room_send(main_room, "m.room.message",
                                        {"msgtype": "m.text", "body": "wake the long-poll"}),
                  "send during long-poll")
        bob_seen = set()
        got = ok(await asyncio.wait_for(poll, 40), "bob long-poll sync")
        bob_since = got.next_batch
        for rid in room_ids:
            bob_seen.update(e.event_id for e in room_events(got, rid))
        if late.event_id not in bob_seen:
            _, bob_since = await wait_sync(
                bob, bob_since,
                lambda s: late.event_id in {e.event_id for e in room_events(s, main_room)},
                "message sent during long-poll")
        facts["long_poll_woke"] = True

        # History: /messages, /context, state, a single event, members, a redaction.
        msgs = ok(await bob.room_messages(main_room, start="", limit=50), "messages")
        bodies = [getattr(e, "body", None) for e in msgs.chunk]
        if "wake the long-poll" not in bodies:
            raise AssertionError(f"/messages lacks the last message: {bodies[:5]}")
        ok(await bob.room_context(main_room, late.event_id, limit=3), "context")
        ok(await alice.room_put_state(main_room, "m.room.topic", {"topic": "changed"}), "state")
        state = ok(await bob.room_get_state_event(main_room, "m.room.topic"), "state event")
        if state.content.get("topic") != "changed":
            raise AssertionError(f"topic read back as {state.content}")
        ok(await bob.room_get_state(main_room), "full state")
        ok(await bob.room_get_event(main_room, sent[0][1]), "single event")
        ok(await bob.joined_members(main_room), "joined members")
        red = ok(await alice.room_redact(main_room, sent[1][1], reason="test"), "redact")
        ev = ok(await bob.room_get_event(main_room, sent[1][1]), "redacted event")
        if getattr(ev.event, "source", {}).get("content"):
            raise AssertionError(f"redacted event still has content: {ev.event.source}")
        facts["redaction"] = red.event_id

        # Typing, receipts, read markers: written on the writer, seen by the other user.
        ok(await alice.room_typing(main_room, True, timeout=20000), "typing")
        _, bob_since = await wait_sync(
            bob, bob_since,
            lambda s: any(isinstance(e, nio.TypingNoticeEvent) and alice.user_id in e.users
                          for e in room_events(s, main_room, "ephemeral")),
            "alice typing")
        ok(await bob.update_receipt_marker(main_room, late.event_id), "receipt")
        ok(await bob.room_read_markers(main_room, late.event_id, late.event_id), "read markers")
        _, alice_since = await wait_sync(
            alice, alice_since,
            lambda s: any(isinstance(e, nio.ReceiptEvent) and any(
                r.user_id == bob.user_id and r.event_id == late.event_id for r in e.receipts)
                for e in room_events(s, main_room, "ephemeral")),
            "bob's read receipt")

        # To-device: alice -> bob's device.
        txn = f"td{time.monotonic_ns()}"
        rb_dev = bob_c["device_id"]
        ra.call("PUT", f"/_matrix/client/v3/sendToDevice/org.example.ping/{txn}",
                {"messages": {bob.user_id: {rb_dev: {"ping": txn}}}})
        # nio drops to-device events of types it does not know: read this one from raw /sync.
        deadline = time.monotonic() + 20
        while True:
            _, raw_sync = rb.call("GET", "/_matrix/client/v3/sync?timeout=5000&since=" +
                                  quote(bob_since))
            bob_since = raw_sync["next_batch"]
            if any(e.get("content", {}).get("ping") == txn
                   for e in raw_sync.get("to_device", {}).get("events", [])):
                break
            if time.monotonic() > deadline:
                raise AssertionError("to-device message not seen in /sync within 20 s")

        # Account data and tags.
        ua = quote(alice.user_id)
        ra.call("PUT", f"/_matrix/client/v3/user/{ua}/account_data/org.example.setting",
                {"value": 42})
        _, got_ad = ra.call("GET", f"/_matrix/client/v3/user/{ua}/account_data/org.example.setting")
        if got_ad != {"value": 42}:
            raise AssertionError(f"account data read back as {got_ad}")
        rq = quote(main_room)
        ra.call("PUT", f"/_matrix/client/v3/user/{ua}/rooms/{rq}/account_data/org.example.room",
                {"v": 1})
        ra.call("PUT", f"/_matrix/client/v3/user/{ua}/rooms/{rq}/tags/m.favourite", {"order": 0.5})
        _, tags = ra.call("GET", f"/_matrix/client/v3/user/{ua}/rooms/{rq}/tags")
        if "m.favourite" not in tags.get("tags", {}):
            raise AssertionError(f"tags read back as {tags}")

        # Presence and profile.
        ok(await alice.set_presence("online", "routing"), "set presence")
        pres = ok(await bob.get_presence(alice.user_id), "get presence")
        if pres.presence != "online":
            raise AssertionError(f"presence read back as {pres.presence}")
        ok(await alice.set_displayname("Alice A"), "set displayname")
        prof = ok(await bob.get_profile(alice.user_id), "get profile")
        if prof.displayname != "Alice A":
            raise AssertionError(f"displayname read back as {prof.displayname}")

        # Device keys: upload (with one-time keys), query, claim.
        dev = alice_c["device_id"]
        ra.call("POST", "/_matrix/client/v3/keys/upload", {
            "device_keys": {"user_id": alice.user_id, "device_id": dev,
                            "algorithms": ["m.olm.v1.curve25519-aes-sha2"],
                            "keys": {f"curve25519:{dev}": "A" * 43, f"ed25519:{dev}": "B" * 43},
                            "signatures": {alice.user_id: {f"ed25519:{dev}": "C" * 86}}},
            "one_time_keys": {f"curve25519:AAAAA{i}": "D" * 42 + str(i) for i in range(3)}})
        _, q = rb.call("POST", "/_matrix/client/v3/keys/query",
                       {"device_keys": {alice.user_id: []}})
        if dev not in q.get("device_keys", {}).get(alice.user_id, {}):
            raise AssertionError(f"keys/query lacks alice's device: {q}")
        _, cl = rb.call("POST", "/_matrix/client/v3/keys/claim",
                        {"one_time_keys": {alice.user_id: {dev: "curve25519"}}})
        if not cl.get("one_time_keys", {}).get(alice.user_id, {}).get(dev):
            raise AssertionError(f"keys/claim returned no key: {cl}")
        rb.call("GET", "/_matrix/client/v3/keys/changes?from=" + quote(first.next_batch) +
                "&to=" + quote(bob_since))

        # Room directory (publish is main-only), alias lookup, public rooms.
        ra.call("PUT", f"/_matrix/client/v3/directory/list/room/{rq}", {"visibility": "public"})
        _, vis = rb.call("GET", f"/_matrix/client/v3/directory/list/room/{rq}")
        if vis.get("visibility") != "public":
            raise AssertionError(f"room visibility read back as {vis}")
        _, alias = rb.call("GET", "/_matrix/client/v3/directory/room/" +
                           quote(f"#{prefix}spoa-room-0:{server}"))
        if alias.get("room_id") != main_room:
            raise AssertionError(f"alias resolves to {alias}")
        _, pub = rb.call("GET", "/_matrix/client/v3/publicRooms")
        if main_room not in [c["room_id"] for c in pub.get("chunk", [])]:
            raise AssertionError(f"publicRooms lacks the room: {pub}")

        # User directory search (updated by client_sync; may lag a moment).
        deadline = time.monotonic() + 20
        while True:
            _, found = ra.call("POST", "/_matrix/client/v3/user_directory/search",
                               {"search_term": f"{prefix}carol", "limit": 5})
            if any(r["user_id"] == carol.user_id for r in found.get("results", [])):
                break
            if time.monotonic() > deadline:
                raise AssertionError(f"user directory never found carol: {found}")
            await asyncio.sleep(0.5)

        # Media: upload, authenticated download (byte-identical), thumbnail, legacy config.
        image = png()
        _, up = ra.call("POST", "/_matrix/media/v3/upload?filename=t.png", raw_body=image,
                        content_type="image/png")
        mxc = up["content_uri"]
        media_server, media_id = mxc[len("mxc://"):].split("/", 1)
        _, data = rb.call("GET", f"/_matrix/client/v1/media/download/{media_server}/{media_id}")
        if data != image:
            raise AssertionError(f"downloaded {len(data)} bytes, uploaded {len(image)}: differ")
        st, thumb = rb.call("GET", f"/_matrix/client/v1/media/thumbnail/{media_server}/{media_id}"
                            "?width=32&height=32&method=scale")
        if not (isinstance(thumb, bytes) and thumb[:4] in (b"\x89PNG", b"\xff\xd8\xff\xe0",
                                                            b"\xff\xd8\xff\xe1")):
            raise AssertionError(f"thumbnail is not an image: {thumb[:16]!r}")
        rb.call("GET", "/_matrix/client/v1/media/config")
        facts["media_bytes"] = len(image)

        # One room in every encoding of its ID: raw, fully encoded, colon encoded, '!' encoded.
        local, domain = main_room[1:].split(":", 1)
        for form in (main_room, quote(main_room), f"!{local}%3A{domain}", f"%21{local}:{domain}"):
            rb.call("GET", f"/_matrix/client/v3/rooms/{form}/messages?dir=b&limit=2")
            rb.call("GET", f"/_matrix/client/v3/rooms/{form}/state/m.room.name")
        facts["encodings"] = 4

        # Leave and forget (forget is main-only), and a few more syncs with tokens.
        ok(await carol.room_leave(main_room), "carol leaves")
        ok(await carol.room_forget(main_room), "carol forgets")
        for _ in range(2):
            _, bob_since = await wait_sync(bob, bob_since, lambda s: True, "idle sync")
    finally:
        for c in (alice, bob, carol):
            await c.close()
    return facts


async def federate(stack, peer, history=25):
    """alice on the stack and dave on the peer: joins both ways (make_join/send_join, invite),
    messages both ways, backfill of history the peer never saw, federated media and profile,
    device lists. Returns facts."""
    facts = {}
    alice_c = stack.register("fed_alice")
    dave_c = peer.register("fed_dave")
    alice = await client_for(stack.port, alice_c)
    dave = await client_for(peer.port, dave_c, tls=True)
    ra, rd = Raw(stack.port, alice_c["access_token"]), Raw(peer.port, dave_c["access_token"], tls=True)
    try:
        a_since = ok(await alice.sync(timeout=0), "alice sync").next_batch
        d_since = ok(await dave.sync(timeout=0), "dave sync").next_batch
        # A room on the stack with history the peer has never seen.
        r1 = ok(await alice.room_create(name="fed 1", visibility=nio.RoomVisibility.public,
                                        alias="fed-room-1"), "createRoom").room_id
        old = []
        for n in range(history):
            old.append(ok(await alice.room_send(r1, "m.room.message",
                                                {"msgtype": "m.text", "body": f"old {n}"}),
                          "send").event_id)
        # dave joins over federation by alias: query/directory, make_join, send_join at the stack.
        ok(await dave.join(f"#fed-room-1:{stack.server_name}"), "dave joins the stack's room")
        t0 = time.monotonic()
        m1 = ok(await alice.room_send(r1, "m.room.message",
                                      {"msgtype": "m.text", "body": "to the peer"}), "send").event_id
        _, d_since = await wait_sync(dave, d_since, lambda s: m1 in {
            e.event_id for e in room_events(s, r1)}, "stack -> peer message", timeout=30)
        facts["stack_to_peer_s"] = time.monotonic() - t0
        t0 = time.monotonic()
        m2 = ok(await dave.room_send(r1, "m.room.message",
                                     {"msgtype": "m.text", "body": "from the peer"}), "send").event_id
        _, a_since = await wait_sync(alice, a_since, lambda s: m2 in {
            e.event_id for e in room_events(s, r1)}, "peer -> stack message", timeout=30)
        facts["peer_to_stack_s"] = time.monotonic() - t0
        # Backfill: dave pages back through history its server never received.
        token, seen = "", set()
        for _ in range(6):
            page = ok(await dave.room_messages(r1, start=token, limit=20), "dave /messages")
            seen.update(e.event_id for e in page.chunk)
            if not page.end or old[0] in seen:
                break
            token = page.end
        if old[0] not in seen:
            raise AssertionError(f"backfill: dave saw {len(seen & set(old))} of {len(old)} "
                                 "old events")
        facts["backfilled"] = len(seen & set(old))
        # Typing and a receipt over federation (EDUs through /send).
        ok(await alice.room_typing(r1, True, timeout=20000), "typing")
        _, d_since = await wait_sync(dave, d_since, lambda s: any(
            isinstance(e, nio.TypingNoticeEvent) and alice.user_id in e.users
            for e in room_events(s, r1, "ephemeral")), "typing over federation", timeout=30)
        # A room on the peer: alice invited (invite at the stack), joins (make_join at the peer).
        r2 = ok(await dave.room_create(name="fed 2", invite=[alice.user_id]), "peer createRoom").room_id
        _, a_since = await wait_sync(alice, a_since, lambda s: r2 in s.rooms.invite,
                                     "invite over federation", timeout=30)
        ok(await alice.join(r2), "alice joins the peer's room")
        m3 = ok(await dave.room_send(r2, "m.room.message",
                                     {"msgtype": "m.text", "body": "peer room"}), "send").event_id
        _, a_since = await wait_sync(alice, a_since, lambda s: m3 in {
            e.event_id for e in room_events(s, r2)}, "peer room message", timeout=30)
        # Profile, devices and keys of a remote user; media fetched over federation.
        ok(await alice.set_displayname("Fed Alice"), "displayname")
        prof = ok(await dave.get_profile(alice.user_id), "remote profile")
        if prof.displayname != "Fed Alice":
            raise AssertionError(f"remote displayname {prof.displayname}")
        rd.call("POST", "/_matrix/client/v3/keys/query", {"device_keys": {alice.user_id: []}})
        image = png(40, 30)
        _, up = ra.call("POST", "/_matrix/media/v3/upload?filename=f.png", raw_body=image,
                        content_type="image/png")
        media_server, media_id = up["content_uri"][len("mxc://"):].split("/", 1)
        _, data = rd.call("GET", f"/_matrix/client/v1/media/download/{media_server}/{media_id}")
        if data != image:
            raise AssertionError("media fetched over federation differs from the upload")
        ok(await dave.room_leave(r1), "dave leaves")
        # An invite the peer rejects: make_leave / send_leave at the stack.
        r3 = ok(await alice.room_create(name="fed 3", invite=[dave.user_id]), "createRoom").room_id
        _, d_since = await wait_sync(dave, d_since, lambda s: r3 in s.rooms.invite,
                                     "invite to the peer", timeout=30)
        ok(await dave.room_leave(r3), "dave rejects the invite")
        facts["rooms"] = (r1, r2)
    finally:
        await alice.close()
        await dave.close()
    return facts
