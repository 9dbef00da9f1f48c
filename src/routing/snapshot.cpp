#include "routing/snapshot.hpp"

#include <cstring>
#include <msgpack.hpp>

namespace spoa::routing::snapshot {
namespace {

// A cursor over untrusted msgpack bytes. Every read checks the remaining length first; a read
// past the end sets truncated_, a type the document does not allow sets malformed_. After the
// first failure every read fails, so callers check ok() once per step.
class reader {
 public:
  explicit reader(std::string_view b) : p_(b.data()), end_(b.data() + b.size()) {}

  bool ok() const { return !truncated_ && malformed_.empty(); }
  std::string error() const { return truncated_ ? "truncated" : "malformed: " + malformed_; }
  std::size_t remaining() const { return static_cast<std::size_t>(end_ - p_); }
  void fail(std::string why) {
    if (ok()) malformed_ = std::move(why);
  }

  bool map_header(std::size_t* n) { return header(n, 0x80, 0xde, "map"); }
  bool array_header(std::size_t* n) { return header(n, 0x90, 0xdc, "array"); }

  bool uint(std::uint64_t* v) {
    std::uint8_t t;
    if (!byte(&t)) return false;
    if (t <= 0x7f) {
      *v = t;
      return true;
    }
    switch (t) {
      case 0xcc:
        return be(1, v);
      case 0xcd:
        return be(2, v);
      case 0xce:
        return be(4, v);
      case 0xcf:
        return be(8, v);
      default:
        fail("expected an unsigned integer");
        return false;
    }
  }

  bool str(std::string_view* s) {
    std::uint8_t t;
    if (!byte(&t)) return false;
    std::uint64_t n = 0;
    if ((t & 0xe0) == 0xa0) {
      n = t & 0x1f;
    } else if (t == 0xd9 || t == 0xda || t == 0xdb) {
      if (!be(t == 0xd9 ? 1 : t == 0xda ? 2 : 4, &n)) return false;
    } else {
      fail("expected a string");
      return false;
    }
    if (n > remaining()) return short_read();
    *s = std::string_view(p_, static_cast<std::size_t>(n));
    p_ += n;
    return true;
  }

  // Skips one value of any type (unknown map keys), at most 16 levels deep.
  bool skip(int depth = 0) {
    if (depth > 16) {
      fail("nested too deep");
      return false;
    }
    std::uint8_t t;
    if (!byte(&t)) return false;
    std::uint64_t n = 0;
    auto bytes = [&](std::uint64_t k) {
      if (k > remaining()) return short_read();
      p_ += k;
      return true;
    };
    auto items = [&](std::uint64_t k) {
      for (std::uint64_t i = 0; i < k; ++i)
        if (!skip(depth + 1)) return false;
      return true;
    };
    if (t <= 0x7f || t >= 0xe0 || t == 0xc0 || t == 0xc2 || t == 0xc3) return true;
    if ((t & 0xf0) == 0x80) return items(2 * std::uint64_t{t & 0x0fu});
    if ((t & 0xf0) == 0x90) return items(t & 0x0fu);
    if ((t & 0xe0) == 0xa0) return bytes(t & 0x1fu);
    switch (t) {
      case 0xcc:
      case 0xd0:
        return bytes(1);
      case 0xcd:
      case 0xd1:
        return bytes(2);
      case 0xce:
      case 0xd2:
      case 0xca:
        return bytes(4);
      case 0xcf:
      case 0xd3:
      case 0xcb:
        return bytes(8);
      case 0xd4:
        return bytes(2);
      case 0xd5:
        return bytes(3);
      case 0xd6:
        return bytes(5);
      case 0xd7:
        return bytes(9);
      case 0xd8:
        return bytes(17);
      case 0xc4:
      case 0xd9:
        return be(1, &n) && bytes(n);
      case 0xc5:
      case 0xda:
        return be(2, &n) && bytes(n);
      case 0xc6:
      case 0xdb:
        return be(4, &n) && bytes(n);
      case 0xc7:
        return be(1, &n) && bytes(n + 1);
      case 0xc8:
        return be(2, &n) && bytes(n + 1);
      case 0xc9:
        return be(4, &n) && bytes(n + 1);
      case 0xdc:
        return be(2, &n) && bounded(n, 1) && items(n);
      case 0xdd:
        return be(4, &n) && bounded(n, 1) && items(n);
      case 0xde:
        return be(2, &n) && bounded(n, 2) && items(2 * n);
      case 0xdf:
        return be(4, &n) && bounded(n, 2) && items(2 * n);
      default:
        fail("reserved byte 0xc1");
        return false;
    }
  }

  // A count of n items of at least `min_bytes` each cannot exceed what is left.
  bool bounded(std::uint64_t n, std::uint64_t min_bytes) {
    if (n > remaining() / min_bytes) return short_read();
    return true;
  }

 private:
  bool short_read() {
    if (ok()) truncated_ = true;
    return false;
  }
  bool byte(std::uint8_t* b) {
    if (!ok()) return false;
    if (p_ == end_) return short_read();
    *b = static_cast<std::uint8_t>(*p_++);
    return true;
  }
  bool be(int n, std::uint64_t* v) {
    if (!ok()) return false;
    if (remaining() < static_cast<std::size_t>(n)) return short_read();
    std::uint64_t x = 0;
    for (int i = 0; i < n; ++i)
      x = (x << 8) | static_cast<std::uint8_t>(*p_++);
    *v = x;
    return true;
  }
  bool header(std::size_t* n, std::uint8_t fix, std::uint8_t b16, const char* what) {
    std::uint8_t t;
    if (!byte(&t)) return false;
    std::uint64_t v = 0;
    if ((t & 0xf0) == fix) {
      v = t & 0x0f;
    } else if (t == b16 || t == b16 + 1) {
      if (!be(t == b16 ? 2 : 4, &v)) return false;
    } else {
      fail(std::string("expected a ") + what);
      return false;
    }
    *n = static_cast<std::size_t>(v);
    return true;
  }

  const char* p_;
  const char* end_;
  bool truncated_ = false;
  std::string malformed_;
};

decode_result failed(const reader& r) {
  decode_result out;
  out.error = r.error();
  return out;
}

}  // namespace

std::string encode(const document& doc) {
  msgpack::sbuffer buf;
  msgpack::packer<msgpack::sbuffer> pk(buf);
  pk.pack_map(5);
  pk.pack(std::string_view{"format"});
  pk.pack(format_name);
  pk.pack(std::string_view{"version"});
  pk.pack(format_version);
  pk.pack(std::string_view{"hash_key_id"});
  pk.pack(doc.hash_key_id);
  pk.pack(std::string_view{"workers"});
  pk.pack_array(static_cast<std::uint32_t>(doc.workers.size()));
  for (const auto& w : doc.workers)
    pk.pack(w);
  pk.pack(std::string_view{"entries"});
  pk.pack_array(static_cast<std::uint32_t>(doc.entries.size()));
  for (const auto& e : doc.entries) {
    pk.pack_array(3);
    pk.pack(e.hash);
    pk.pack(e.worker);
    pk.pack(e.last_used_unix_ms);
  }
  return std::string(buf.data(), buf.size());
}

decode_result decode(std::string_view bytes, std::size_t max_entries, std::size_t max_workers) {
  reader r(bytes);
  decode_result out;
  document& doc = out.doc;
  std::size_t fields = 0;
  if (!r.map_header(&fields)) return failed(r);
  bool have_format = false, have_version = false, have_id = false, have_workers = false,
       have_entries = false;
  for (std::size_t f = 0; f < fields; ++f) {
    std::string_view name;
    if (!r.str(&name)) return failed(r);
    if (name == "format") {
      std::string_view v;
      if (!r.str(&v)) return failed(r);
      if (v != format_name) {
        out.error = "not an affinity snapshot";
        return out;
      }
      have_format = true;
    } else if (name == "version") {
      std::uint64_t v = 0;
      if (!r.uint(&v)) return failed(r);
      if (v != format_version) {
        out.error = "version " + std::to_string(v) + " != " + std::to_string(format_version);
        return out;
      }
      have_version = true;
    } else if (name == "hash_key_id") {
      if (!r.uint(&doc.hash_key_id)) return failed(r);
      have_id = true;
    } else if (name == "workers") {
      std::size_t n = 0;
      if (!r.array_header(&n) || !r.bounded(n, 1)) return failed(r);
      if (n > max_workers) {
        r.fail("more than " + std::to_string(max_workers) + " workers");
        return failed(r);
      }
      doc.workers.clear();
      doc.workers.reserve(n);
      for (std::size_t i = 0; i < n; ++i) {
        std::string_view w;
        if (!r.str(&w)) return failed(r);
        if (w.size() > max_worker_name) {
          r.fail("worker name too long");
          return failed(r);
        }
        doc.workers.emplace_back(w);
      }
      have_workers = true;
    } else if (name == "entries") {
      std::size_t n = 0;
      // Every entry takes at least 4 bytes (fixarray + three fixints).
      if (!r.array_header(&n) || !r.bounded(n, 4)) return failed(r);
      const std::size_t skip = n > max_entries ? n - max_entries : 0;
      doc.entries.clear();
      doc.entries.reserve(n - skip);
      for (std::size_t i = 0; i < n; ++i) {
        std::size_t k = 0;
        entry e;
        std::uint64_t w = 0;
        if (!r.array_header(&k)) return failed(r);
        if (k != 3) {
          r.fail("entry is not [hash, worker, last_used]");
          return failed(r);
        }
        if (!r.uint(&e.hash) || !r.uint(&w) || !r.uint(&e.last_used_unix_ms)) return failed(r);
        if (w > 0xffffffffULL) {
          r.fail("worker index out of range");
          return failed(r);
        }
        e.worker = static_cast<std::uint32_t>(w);
        if (i >= skip) doc.entries.push_back(e);
      }
      have_entries = true;
    } else {
      if (!r.skip()) return failed(r);
    }
  }
  if (r.remaining() != 0) {
    r.fail("trailing bytes after the snapshot");
    return failed(r);
  }
  if (!have_format) {
    out.error = "not an affinity snapshot";
    return out;
  }
  if (!have_version || !have_id || !have_workers || !have_entries) {
    r.fail("a required field is missing");
    return failed(r);
  }
  out.ok = true;
  return out;
}

}  // namespace spoa::routing::snapshot
