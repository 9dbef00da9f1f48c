#pragma once
// A realistic, seeded Matrix request mix shared by bench_pipeline and spoa-loadgen (the wrk side,
// tests/bench/matrix_mix.lua, draws from the same table with the same weights).
//
// Shape (weights out of 100), roughly a busy homeserver's client + federation traffic:
//   25 sync (long-poll, user-sticky)        30 room endpoints (room-sticky, 10,000 rooms)
//    8 stream writers (typing, receipts...)  12 federation (send, event, key query, room state)
//    8 media                                 17 main (login, profile, keys, pushrules, versions)
// Rooms are drawn with a skew (index = N * u^3: a few hot rooms, a long tail), or by
// mix_options::pick_room, and written in all three encodings HAProxy passes through raw:
// "!id:server", "%21id%3Aserver", "!id%3Aserver".

#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace spoa::bench {

struct mix_request {
  std::string method;
  std::string path;    // raw, as HAProxy's `path` sample sends it (no query)
  std::string query;   // raw, without '?'; empty = absent
  std::string user;    // HAProxy-derived user key (base64 localpart); empty = absent
  std::string origin;  // X-Matrix origin; empty = absent
  const char* category = "";
};

struct mix_options {
  int rooms = 10'000;
  int users = 5'000;
  int origins = 200;
  // Optional: the room index of every room-keyed request (spoa-loadgen --room-dist churn);
  // unset = the skew above over `rooms`. It draws from its own generator, not the mix's.
  std::function<int()> pick_room = {};
};

class request_mix {
 public:
  explicit request_mix(std::uint64_t seed, mix_options o = {}) : rng_(seed), opt_(o) {}

  mix_request next() {
    mix_request r;
    const int w = pick(100);
    r.user = user_key(pick(opt_.users));
    if (w < 25) {
      r.category = "sync";
      r.method = "GET";
      r.path = pick(10) < 9 ? "/_matrix/client/v3/sync" : "/_matrix/client/r0/sync";
      r.query = "since=s" + std::to_string(70000 + pick(5000)) + "_4483_1934&timeout=30000";
    } else if (w < 55) {
      r.category = "room";
      const std::string room = room_id(next_room(), pick(3));
      const int k = pick(10);
      if (k < 4) {
        r.method = "PUT";
        r.path = "/_matrix/client/v3/rooms/" + room + "/send/m.room.message/m" +
                 std::to_string(pick(1'000'000));
      } else if (k < 7) {
        r.method = "GET";
        r.path = "/_matrix/client/v3/rooms/" + room + "/messages";
        r.query = "dir=b&limit=30";
      } else if (k < 8) {
        r.method = "GET";
        r.path = "/_matrix/client/v3/rooms/" + room + "/state/m.room.power_levels/";
      } else if (k < 9) {
        r.method = "GET";
        r.path = "/_matrix/client/v3/rooms/" + room + "/members";
      } else {
        r.method = "GET";
        r.path = "/_matrix/client/v3/rooms/" + room + "/context/%24ev" + std::to_string(pick(1000));
        r.query = "limit=10";
      }
    } else if (w < 63) {
      r.category = "writer";
      const std::string room = room_id(next_room(), pick(3));
      const int k = pick(3);
      if (k == 0) {
        r.method = "PUT";
        r.path = "/_matrix/client/v3/rooms/" + room + "/typing/%40u" +
                 std::to_string(pick(opt_.users)) + "%3Aexample.org";
      } else if (k == 1) {
        r.method = "POST";
        r.path = "/_matrix/client/v3/rooms/" + room + "/receipt/m.read/%24ev" +
                 std::to_string(pick(100000));
      } else {
        r.method = "PUT";
        r.path =
            "/_matrix/client/v3/sendToDevice/m.room.encrypted/txn" + std::to_string(pick(100000));
      }
    } else if (w < 75) {
      r.category = "federation";
      r.user.clear();
      r.origin = origin_name(pick(opt_.origins));
      const int k = pick(10);
      if (k < 5) {
        r.method = "PUT";
        r.path = "/_matrix/federation/v1/send/" + std::to_string(1'700'000'000'000 + pick(100000));
      } else if (k < 7) {
        r.method = "GET";
        r.path = "/_matrix/federation/v1/event/%24ev" + std::to_string(pick(100000));
      } else if (k < 8) {
        r.method = "POST";
        r.path = "/_matrix/key/v2/query";
      } else {
        r.method = "GET";
        r.path = "/_matrix/federation/v1/state_ids/" + room_id(next_room(), 1);
        r.query = "event_id=%24ev" + std::to_string(pick(1000));
      }
    } else if (w < 83) {
      r.category = "media";
      r.method = "GET";
      const std::string id = "example.org/m" + std::to_string(pick(100000));
      r.path = pick(2) ? "/_matrix/client/v1/media/download/" + id
                       : "/_matrix/client/v1/media/thumbnail/" + id;
      if (r.path.find("thumbnail") != std::string::npos) r.query = "width=96&height=96";
    } else {
      r.category = "main";
      static const char* const mains[][2] = {
          {"GET", "/_matrix/client/versions"},
          {"GET", "/_matrix/client/v3/capabilities"},
          {"GET", "/_matrix/client/v3/account/whoami"},
          {"POST", "/_matrix/client/v3/keys/query"},
          {"POST", "/_matrix/client/v3/keys/upload"},
          {"GET", "/_matrix/client/v3/pushrules/"},
          {"GET", "/_matrix/client/v3/profile/%40alice%3Aexample.org"},
          {"POST", "/_matrix/client/v3/login"},
      };
      const auto& m = mains[pick(8)];
      r.method = m[0];
      r.path = m[1];
    }
    return r;
  }

  std::vector<mix_request> take(std::size_t n) {
    std::vector<mix_request> v;
    v.reserve(n);
    for (std::size_t i = 0; i < n; ++i)
      v.push_back(next());
    return v;
  }

  // Room `i` in encoding 0 (raw), 1 (fully percent-encoded), 2 (only the colon encoded).
  static std::string room_id(int i, int encoding) {
    const std::string id = "R" + std::to_string(i) + "xq";
    switch (encoding) {
      case 1:
        return "%21" + id + "%3Aexample.org";
      case 2:
        return "!" + id + "%3Aexample.org";
      default:
        return "!" + id + ":example.org";
    }
  }

  // User `i`'s key and origin `i`'s name, as next() writes them.
  static std::string user_key(int i) {
    // base64 of "user<i>"-like localparts: only the shape matters to the router
    return "dXNlc" + std::to_string(i);
  }
  static std::string origin_name(int i) { return "server" + std::to_string(i) + ".example.net"; }

 private:
  int pick(int n) { return static_cast<int>(rng_() % static_cast<std::uint64_t>(n)); }
  int next_room() { return opt_.pick_room ? opt_.pick_room() : skewed(opt_.rooms); }
  int skewed(int n) {
    const double u = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
    const int i = static_cast<int>(n * u * u * u);
    return i < n ? i : n - 1;
  }
  std::mt19937_64 rng_;
  mix_options opt_;
};

}  // namespace spoa::bench
