// libFuzzer target for the affinity snapshot loader (routing/snapshot.hpp and
// placement::restore; the file read in front of them is agent/persistence.cpp's).
//
// 1. snapshot::decode on the raw bytes, with small limits: never crashes; a success respects the
//    limits, and re-encoding it decodes to the same document (round trip).
// 2. decode with the placement's own limits, then placement::restore, as the agent's loader does:
//    never throws, always answers a status ("restored ..." / "ignored: ...").
// 3. When the bytes decode, the same document re-signed with the placement's hash-key
//    fingerprint is loaded too, so the worker-name mapping, the index checks and the TTL / cap
//    logic run on hostile entries; the table then stays within max_keys and every decision names
//    a worker of the pool.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "routing/placement.hpp"
#include "routing/siphash.hpp"
#include "routing/snapshot.hpp"

namespace {

using namespace spoa::routing;

constexpr std::size_t max_entries = 64;
constexpr std::size_t max_names = 16;
constexpr std::uint64_t unix_now = 1'700'000'000'000;  // fixed: results must not depend on time

bool same(const snapshot::document& a, const snapshot::document& b) {
  if (a.hash_key_id != b.hash_key_id || a.workers != b.workers ||
      a.entries.size() != b.entries.size())
    return false;
  for (std::size_t i = 0; i < a.entries.size(); ++i) {
    const auto &x = a.entries[i], &y = b.entries[i];
    if (x.hash != y.hash || x.worker != y.worker || x.last_used_unix_ms != y.last_used_unix_ms)
      return false;
  }
  return true;
}

placement make_placement() {
  placement_options o;
  o.max_keys = max_entries / 2;  // smaller than a full snapshot: the cap is exercised
  o.affinity_ttl = std::chrono::milliseconds{3'600'000};
  o.hash_key = "fuzz";
  return placement({{"room", true}},
                   {{"room1", "room1", 0, 1.0, false},
                    {"room2", "room2", 0, 2.0, false},
                    {"room3", "room3", 0, 1.0, true}},
                   o);
}

void check_load(placement& p, std::string_view bytes) {
  const snapshot::decode_result r =
      snapshot::decode(bytes, p.table().max_keys(), affinity_table::no_worker);
  const std::string st = r.ok ? p.restore(r.doc, 1'000, unix_now) : "ignored: " + r.error;
  if (st.rfind("restored ", 0) != 0 && st.rfind("ignored: ", 0) != 0) __builtin_trap();
  if (p.table().size() > max_entries / 2) __builtin_trap();
  for (const char* key : {"!a:x", "!b:x", "!c:x"}) {
    const decision d = p.place(0, key, 2'000);
    if (d.worker < 0 || d.worker > 2) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);

  const snapshot::decode_result r = snapshot::decode(bytes, max_entries, max_names);
  if (r.ok) {
    if (r.doc.entries.size() > max_entries || r.doc.workers.size() > max_names) __builtin_trap();
    const snapshot::decode_result again =
        snapshot::decode(snapshot::encode(r.doc), max_entries, max_names);
    if (!again.ok || !same(r.doc, again.doc)) __builtin_trap();
  } else if (r.error.empty()) {
    __builtin_trap();  // a refusal always says why
  }

  {
    placement p = make_placement();
    check_load(p, bytes);
  }
  if (r.ok) {
    snapshot::document doc = r.doc;
    doc.hash_key_id = key_fingerprint(derive_sip_key("fuzz"));
    placement p = make_placement();
    check_load(p, snapshot::encode(doc));
  }
  return 0;
}
