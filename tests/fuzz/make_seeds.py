#!/usr/bin/env python3
"""Writes the seed corpora of the targets added with spop_connection, route_classify and
affinity_snapshot (the spop_frame and promtext seeds are hand-made files). Deterministic: run it
again after changing it and commit the result.

    python3 tests/fuzz/make_seeds.py        # from the repository root
"""
import pathlib
import struct
import sys

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
import spop_peer as sp  # noqa: E402


def write(target, name, data):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    (d / name).write_bytes(data)


# --- spop_connection: byte 0 = reads - 1 (mod 8), then reads-1 cut bytes, then the stream ----------
def conn(name, stream, cuts=()):
    write("spop_connection", name, bytes([len(cuts)]) + bytes(cuts) + stream)


HELLO = sp.hello()
ROUTE = sp.route(1, 1, "GET", "/_matrix/client/v3/rooms/!abc:example.org/messages")
conn("hello_only", HELLO)
conn("session", HELLO + ROUTE + sp.route(2, 1, "PUT", "/_matrix/client/v3/rooms/%21x%3Ae/send/m/1",
                                          user="QGFsaWNl") +
     sp.frame(sp.HAPROXY_DISCONNECT, sp.kv([("status-code", 0), ("message", "bye")])),
     cuts=(3, 60, 61, 200))
conn("session_split", HELLO + ROUTE + ROUTE, cuts=(1, 2, 127, 128, 129, 250, 254))
conn("healthcheck", sp.hello(capabilities="", healthcheck=True))
conn("small_frame_size", sp.hello(max_frame_size=256) + sp.route(1, 1, "GET", "/" + "a" * 300))
conn("second_hello", HELLO + HELLO, cuts=(100,))
conn("hello_nonzero_sid", sp.frame(sp.HAPROXY_HELLO, sp.hello()[11:], sid=3, fid=1))
conn("unknown_type", HELLO + sp.frame(42, b"\x00\x01\x02") + ROUTE)
conn("agent_type", HELLO + sp.frame(sp.ACK, b""))
conn("empty_notify", HELLO + sp.notify(7, 0, []) + sp.notify(8, 1, [("other", [("x", None)])]))
conn("typed_args", HELLO + sp.notify(9, 1, [("route", [("method", "GET"), ("path", "/x"),
                                                       ("n", -5), ("b", True), ("f", False),
                                                       ("bin", b"\x00\xff"), ("", None)])]))
conn("disconnect_first", sp.frame(sp.HAPROXY_DISCONNECT, sp.kv([("status-code", 2),
                                                                ("message", "timeout")])))
conn("len_over", struct.pack(">I", 5000) + b"\x01")
conn("len_zero", struct.pack(">I", 0))
conn("no_fin", HELLO + sp.frame(sp.NOTIFY, b"\x05route\x00", 1, 1, flags=0))

# --- route_classify: byte 0 = method index (low 3 bits) | query 0x08 | user 0x10 | origin 0x20 ----
GET, PUT, POST, DELETE = 0, 1, 2, 3
for name, method, path, extra in [
    ("messages", GET, "/_matrix/client/v3/rooms/!abc:example.org/messages", None),
    ("messages_encoded", GET, "/_matrix/client/v3/rooms/%21abc%3Aexample.org/messages?dir=b", None),
    ("send", PUT, "/_matrix/client/v3/rooms/!abc:example.org/send/m.room.message/txn1", None),
    ("join_alias", POST, "/_matrix/client/v3/join/%23room:example.org", None),
    ("join_room", POST, "/_matrix/client/r0/join/!abc:example.org", None),
    ("sync", GET | 0x08 | 0x10, "/_matrix/client/v3/sync", b"since=s72594_4483_1934&timeout=30000"),
    ("sync_initial", GET | 0x10, "/_matrix/client/v3/sync", b"QGFsaWNlOmV4YW1wbGUub3Jn"),
    ("federation_send", PUT | 0x20, "/_matrix/federation/v1/send/1690000000000", b"remote.example"),
    ("federation_state", GET | 0x20, "/_matrix/federation/v1/state/!abc:example.org", b"o.example"),
    ("media", GET, "/_matrix/media/v3/download/example.org/abcdef", None),
    ("media_client", GET, "/_matrix/client/v1/media/thumbnail/example.org/abc?width=32", None),
    ("admin", DELETE, "/_synapse/admin/v1/rooms/!abc:example.org", None),
    ("versions", GET, "/_matrix/client/versions", None),
    ("login", POST, "/_matrix/client/v3/login", None),
    ("keys", POST, "/_matrix/client/v3/keys/query", None),
    ("odd_slashes", GET, "//_matrix//client/v3/rooms/!a/messages/", None),
    ("no_slash", GET, "_matrix/client/v3/rooms/!a:b/state", None),
    ("bad_escapes", GET, "/_matrix/client/v3/rooms/%2/%zz%/messages", None),
]:
    data = bytes([method]) + path.encode()
    if extra is not None:
        data += b"\x00" + extra
    write("route_classify", name, data)


# --- affinity_snapshot: msgpack, written by hand (no pip packages) --------------------------------
def mp(v):
    if isinstance(v, bool):
        return b"\xc3" if v else b"\xc2"
    if isinstance(v, int):
        if 0 <= v < 128:
            return bytes([v])
        if v < 2**8:
            return b"\xcc" + struct.pack(">B", v)
        if v < 2**16:
            return b"\xcd" + struct.pack(">H", v)
        if v < 2**32:
            return b"\xce" + struct.pack(">I", v)
        return b"\xcf" + struct.pack(">Q", v)
    if isinstance(v, str):
        raw = v.encode()
        return (bytes([0xA0 | len(raw)]) if len(raw) < 32 else b"\xd9" + bytes([len(raw)])) + raw
    if isinstance(v, list):
        return bytes([0x90 | len(v)]) + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        return bytes([0x80 | len(v)]) + b"".join(mp(k) + mp(x) for k, x in v.items())
    raise TypeError(v)


def snap(workers, entries, hash_key_id=0x1234_5678_9ABC_DEF0, version=1, extra=None):
    d = {"format": "synapse-spoa-affinity", "version": version, "hash_key_id": hash_key_id,
         "workers": workers, "entries": entries}
    if extra:
        d.update(extra)
    return mp(d)


T = 1_699_999_000_000
write("affinity_snapshot", "valid", snap(["room1", "room2", "room3"],
                                         [[0xDEADBEEF00000000 + i, i % 3, T + i] for i in range(8)]))
write("affinity_snapshot", "empty", snap([], []))
write("affinity_snapshot", "unknown_worker", snap(["room9", "room1"], [[1, 0, T], [2, 1, T], [3, 5, T]]))
write("affinity_snapshot", "duplicate_hash", snap(["room1", "room2"], [[7, 0, T], [7, 1, T + 1]]))
write("affinity_snapshot", "expired", snap(["room1"], [[1, 0, 0], [2, 0, T]]))
write("affinity_snapshot", "future", snap(["room2"], [[1, 0, 2**63]]))
write("affinity_snapshot", "version2", snap(["room1"], [[1, 0, T]], version=2))
write("affinity_snapshot", "extra_key", snap(["room1"], [[1, 0, T]], extra={"note": "x"}))
write("affinity_snapshot", "truncated", snap(["room1", "room2"], [[1, 0, T], [2, 1, T]])[:-7])
write("affinity_snapshot", "not_a_map", mp([1, 2, 3]))
