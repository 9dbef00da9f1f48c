"""An independent SPOP 2.0 peer written from HAProxy's SPOE.txt, to check the agent from the
outside: it shares no code with src/spop."""

import socket
import struct

HAPROXY_HELLO, HAPROXY_DISCONNECT, NOTIFY = 1, 2, 3
AGENT_HELLO, AGENT_DISCONNECT, ACK = 101, 102, 103
FIN = 1

T_NULL, T_BOOL, T_INT32, T_UINT32, T_INT64, T_UINT64, T_IPV4, T_IPV6, T_STR, T_BIN = range(10)


def varint(n):
    if n < 240:
        return bytes([n])
    out = bytearray([(n & 0xFF) | 240])
    n = (n - 240) >> 4
    while n >= 128:
        out.append((n & 0xFF) | 128)
        n = (n - 128) >> 7
    out.append(n)
    return bytes(out)


def read_varint(b, i):
    v = b[i]
    i += 1
    if v < 240:
        return v, i
    r = 4
    while True:
        c = b[i]
        v += c << r
        r += 7
        i += 1
        if c < 128:
            return v, i


def s(text):
    raw = text.encode() if isinstance(text, str) else text
    return varint(len(raw)) + raw


def typed(value):
    if value is None:
        return bytes([T_NULL])
    if isinstance(value, bool):
        return bytes([T_BOOL | (0x10 if value else 0)])
    if isinstance(value, int):
        return bytes([T_UINT32]) + varint(value) if value >= 0 else bytes([T_INT64]) + varint(value & (2**64 - 1))
    if isinstance(value, bytes):
        return bytes([T_BIN]) + s(value)
    return bytes([T_STR]) + s(value)


def kv(pairs):
    return b"".join(s(k) + typed(v) for k, v in pairs)


def frame(ftype, payload, sid=0, fid=0, flags=FIN):
    body = bytes([ftype]) + struct.pack(">I", flags) + varint(sid) + varint(fid) + payload
    return struct.pack(">I", len(body)) + body


def hello(version="2.0", max_frame_size=16380, capabilities="pipelining,async", healthcheck=None,
          extra=()):
    pairs = [("supported-versions", version), ("max-frame-size", max_frame_size),
             ("capabilities", capabilities), ("engine-id", "3b6e9f1c-0000-4000-8000-000000000001")]
    pairs = [p for p in pairs if p[1] is not None]
    if healthcheck is not None:
        pairs.append(("healthcheck", healthcheck))
    pairs += list(extra)
    return frame(HAPROXY_HELLO, kv(pairs))


def notify(sid, fid, messages):
    """messages: [(name, [(arg name, value), ...]), ...]"""
    payload = b""
    for name, args in messages:
        payload += s(name) + bytes([len(args)]) + b"".join(s(k) + typed(v) for k, v in args)
    return frame(NOTIFY, payload, sid, fid)


def route(sid, fid, method, path, **extra):
    args = [("method", method), ("path", path)] + list(extra.items())
    return notify(sid, fid, [("route", args)])


def parse_typed(b, i):
    t = b[i] & 0x0F
    flags = b[i] >> 4
    i += 1
    if t == T_NULL:
        return None, i
    if t == T_BOOL:
        return bool(flags & 1), i
    if t in (T_INT32, T_UINT32, T_INT64, T_UINT64):
        return read_varint(b, i)
    if t == T_IPV4:
        return b[i:i + 4], i + 4
    if t == T_IPV6:
        return b[i:i + 16], i + 16
    n, i = read_varint(b, i)
    raw = b[i:i + n]
    return (raw.decode() if t == T_STR else raw), i + n


def parse_kv(b, i=0):
    out = {}
    while i < len(b):
        n, i = read_varint(b, i)
        key = b[i:i + n].decode()
        i += n
        out[key], i = parse_typed(b, i)
    return out


def parse_actions(b):
    acts, i = [], 0
    while i < len(b):
        atype, nargs = b[i], b[i + 1]
        scope = b[i + 2]
        i += 3
        n, i = read_varint(b, i)
        name = b[i:i + n].decode()
        i += n
        value = None
        if atype == 1:
            value, i = parse_typed(b, i)
        acts.append((atype, nargs, scope, name, value))
    return acts


class Frame:
    def __init__(self, ftype, flags, sid, fid, payload, length):
        self.type, self.flags, self.sid, self.fid, self.payload, self.length = ftype, flags, sid, fid, payload, length

    def kv(self):
        return parse_kv(self.payload)

    def actions(self):
        return parse_actions(self.payload)

    def vars(self):
        return {name: value for atype, _n, _scope, name, value in self.actions() if atype == 1}


class Peer:
    def __init__(self, port, timeout=5.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data)

    def recv_frame(self):
        """The next frame, or None on EOF."""
        while len(self.buf) < 4 or len(self.buf) < 4 + struct.unpack(">I", self.buf[:4])[0]:
            chunk = self.sock.recv(65536)
            if not chunk:
                return None
            self.buf += chunk
        n = struct.unpack(">I", self.buf[:4])[0]
        body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
        ftype = body[0]
        flags = struct.unpack(">I", body[1:5])[0]
        sid, i = read_varint(body, 5)
        fid, i = read_varint(body, i)
        return Frame(ftype, flags, sid, fid, body[i:], n)

    def closed(self):
        """True once the agent has closed its side (EOF or reset)."""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return True
                self.buf += chunk
        except ConnectionResetError:
            return True
        except socket.timeout:
            return False

    def handshake(self, **kw):
        self.send(hello(**kw))
        return self.recv_frame()

    def close(self):
        self.sock.close()
