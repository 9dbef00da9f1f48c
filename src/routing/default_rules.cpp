#include "routing/default_rules.hpp"

#include <iterator>

namespace spoa::routing {

namespace {

// Client API version prefixes as docs/workers.md spells them; an alternative may span segments.
#define C4 "/_matrix/client/{api/v1|r0|v3|unstable}"
#define C3 "/_matrix/client/{r0|v3|unstable}"
#define FED "/_matrix/federation"

struct row {
  const char* name;
  const char* methods;
  const char* pattern;
  const char* pool;
  key_kind key;
};

constexpr key_kind none = key_kind::none;
constexpr key_kind room = key_kind::room;
constexpr key_kind user = key_kind::user;
constexpr key_kind origin = key_kind::origin;

// Order is the contract (first match wins), and tests pin it:
//   1. main-only endpoints (method-aware) and SSO: they must never reach a worker;
//   2. stream writers (client_sync1 writes typing, to_device, receipts, presence, account_data,
//      and runs the user directory), even when the path names a room (synapse-routing.md §9.1);
//   3. media and the media admin API (main has enable_media_repo: false);
//   4. the sync family, user-sticky;
//   5. worker-capable endpoints that name a room, keyed by the room ID taken from its known
//      position ({room}), never by a regex over the whole path (§9.2);
//   6. federation without a room ID, origin-sticky;
//   7. the rest of the admin API, then everything else, on main (the one process that can serve
//      every endpoint). Worker-capable client endpoints without a room (createRoom, keys/*, login,
//      profile, ...) deliberately fall through to main, as in the reference deployment.
constexpr row rows[] = {
    // --- 1. main only -------------------------------------------------------------------------
    // No push_rules stream writer in the reference deployment: a worker answers PUT/DELETE with
    // HTTP 500 (WORKERS_DENIED_METHODS). Retarget push_rules_write to your writer's pool.
    {"push_rules_write", "PUT|DELETE", C4 "/pushrules/**", "main", none},
    // GET may go to any worker (docs: GET-only group); the reference deployment keeps it on main.
    {"push_rules_read", "GET|HEAD", C4 "/pushrules/**", "main", none},
    {"room_forget", "*", C4 "/rooms/*/forget", "main", none},
    {"room_upgrade", "*", C4 "/rooms/*/upgrade", "main", none},
    {"room_report", "*", C4 "/rooms/*/report/**", "main", none},
    {"user_report", "*", C4 "/users/*/report", "main", none},
    {"directory_list", "*", C4 "/directory/list/**", "main", none},
    {"pushers", "*", C4 "/pushers/**", "main", none},
    {"logout", "*", C4 "/logout/**", "main", none},
    {"account_password", "*", C4 "/account/password/**", "main", none},
    {"account_3pid", "*", C4 "/account/3pid/**", "main", none},
    {"register_request_token", "*", C4 "/register/{email|msisdn}/requestToken", "main", none},
    {"refresh", "*", "/_matrix/client/{v1|r0|v3}/refresh", "main", none},
    {"login_get_token", "*", "/_matrix/client/v1/login/get_token", "main", none},
    {"auth_fallback", "*", C4 "/auth/*/fallback/web", "main", none},
    {"openid_request_token", "*", C4 "/user/*/openid/request_token", "main", none},
    {"thirdparty", "*", C4 "/thirdparty/**", "main", none},
    {"mutual_rooms", "*", "/_matrix/client/v1/mutual_rooms", "main", none},
    // SSO: every step of one login must reach the same process (synapse#7530, #9427).
    {"sso_redirect", "*", C4 "/login/sso/redirect/**", "main", none},
    {"cas_ticket", "*", C4 "/login/cas/ticket", "main", none},
    {"synapse_client", "*", "/_synapse/client/**", "main", none},
    // QR-code login (MSC4108) keeps session state in one process.
    {"qr_rendezvous", "*", "/_matrix/client/{unstable|v1}/org.matrix.msc4108/rendezvous/**", "main",
     none},
    {"fed_openid_userinfo", "*", FED "/v1/openid/userinfo", "main", none},
    {"fed_3pid_onbind", "*", FED "/v1/3pid/onbind", "main", none},
    {"key_server", "*", "/_matrix/key/v2/server/**", "main", none},
    {"policy_sign", "*", "/_matrix/policy/**", "main", none},

    // --- 2. stream writers (client_sync1) -----------------------------------------------------
    // '*' rather than {room}/{user}: the key is the user, and a malformed ID must still reach the
    // writer (a non-writer answers /typing with HTTP 500).
    {"typing", "*", C4 "/rooms/*/typing/**", "client_sync", user},
    {"receipts", "*", C3 "/rooms/*/receipt/**", "client_sync", user},
    {"read_markers", "*", C3 "/rooms/*/read_markers", "client_sync", user},
    {"to_device", "*", C3 "/sendToDevice/**", "client_sync", user},
    {"presence", "*", C4 "/presence/**", "client_sync", user},
    {"account_data", "*",
     "/_matrix/client/{r0|v3|unstable|unstable/org.matrix.msc3391}/user/*/account_data/**",
     "client_sync", user},
    {"room_account_data", "*",
     "/_matrix/client/{r0|v3|unstable|unstable/org.matrix.msc3391}/user/*/rooms/*/account_data/**",
     "client_sync", user},
    {"room_tags", "*", C3 "/user/*/rooms/*/tags/**", "client_sync", user},
    {"user_directory_search", "*", C3 "/user_directory/search", "client_sync", user},

    // --- 3. media -------------------------------------------------------------------------------
    // Whole prefixes, legacy /_matrix/media/* included (§9.6: config, preview_url, download,
    // thumbnail and v1/create must not fall through to main).
    {"media", "*", "/_matrix/media/**", "media", none},
    {"client_media", "*", "/_matrix/client/v1/media/**", "media", none},
    {"federation_media", "*", FED "/v1/media/**", "media", none},
    {"admin_purge_media_cache", "*", "/_synapse/admin/v1/purge_media_cache", "media", none},
    {"admin_room_media", "*", "/_synapse/admin/v1/room/*/media/**", "media", none},
    {"admin_user_media", "*", "/_synapse/admin/v1/user/*/media/**", "media", none},
    {"admin_media", "*", "/_synapse/admin/v1/media/**", "media", none},
    {"admin_quarantine_media", "*", "/_synapse/admin/v1/quarantine_media/**", "media", none},
    {"admin_users_media", "*", "/_synapse/admin/v1/users/*/media", "media", none},

    // --- 4. sync family (user-sticky) -----------------------------------------------------------
    {"sync", "*", "/_matrix/client/{r0|v3}/sync", "client_sync", user},
    {"sliding_sync", "*", "/_matrix/client/unstable/org.matrix.simplified_msc3575/sync",
     "client_sync", user},
    {"events", "*", "/_matrix/client/{api/v1|r0|v3}/events", "client_sync", user},
    {"initial_sync", "*", "/_matrix/client/{api/v1|r0|v3}/initialSync", "client_sync", user},
    {"room_initial_sync", "*", "/_matrix/client/{api/v1|r0|v3}/rooms/*/initialSync", "client_sync",
     user},

    // --- 5. rooms (keyed by the room ID at its position) ----------------------------------------
    // /messages must be room-sticky for correctness (backfill/purge locks are in-process).
    {"room_messages", "*", C4 "/rooms/{room}/messages", "room", room},
    {"room_send", "*", C4 "/rooms/{room}/send/**", "room", room},
    {"room_state", "*", C4 "/rooms/{room}/state/**", "room", room},
    {"room_redact", "*", C4 "/rooms/{room}/redact/**", "room", room},
    {"room_membership", "*", C4 "/rooms/{room}/{join|invite|leave|ban|unban|kick}", "room", room},
    {"room_members", "*", C4 "/rooms/{room}/{members|joined_members}", "room", room},
    {"room_event", "*", C4 "/rooms/{room}/event/**", "room", room},
    {"room_context", "*", C4 "/rooms/{room}/context/**", "room", room},
    {"room_aliases", "*",
     "/_matrix/client/{api/v1|r0|v3|unstable|unstable/org.matrix.msc2432}/rooms/{room}/aliases",
     "room", room},
    {"room_hierarchy", "*", "/_matrix/client/v1/rooms/{room}/hierarchy", "room", room},
    {"room_relations", "*", "/_matrix/client/{v1|unstable}/rooms/{room}/relations/**", "room",
     room},
    {"room_threads", "*", "/_matrix/client/v1/rooms/{room}/threads", "room", room},
    {"room_timestamp_to_event", "*", "/_matrix/client/v1/rooms/{room}/timestamp_to_event", "room",
     room},
    {"room_summary", "*",
     "/_matrix/client/{v1/room_summary|unstable/im.nheko.summary/summary}/{room}", "room", room},
    {"join_room", "*", C4 "/{join|knock}/{room}", "room", room},
    // By alias there is no room ID to key on without resolving it: main, like the reference guide.
    {"join_alias", "*", C4 "/{join|knock}/{alias}", "main", none},
    {"room_keys_room", "*", C3 "/room_keys/keys/{room}/**", "room", room},
    {"admin_room_details", "*", "/_synapse/admin/v1/rooms/{room}", "room", room},
    {"fed_state", "*", FED "/v1/{state|state_ids}/{room}/**", "room", room},
    {"fed_backfill", "*", FED "/v1/backfill/{room}/**", "room", room},
    {"fed_get_missing_events", "*", FED "/v1/get_missing_events/{room}/**", "room", room},
    {"fed_event_auth", "*", FED "/v1/event_auth/{room}/**", "room", room},
    {"fed_make_membership", "*", FED "/v1/{make_join|make_leave|make_knock}/{room}/**", "room",
     room},
    {"fed_send_membership", "*", FED "/{v1|v2}/{send_join|send_leave|invite}/{room}/**", "room",
     room},
    {"fed_send_knock", "*", FED "/v1/send_knock/{room}/**", "room", room},
    {"fed_timestamp_to_event", "*", FED "/v1/timestamp_to_event/{room}/**", "room", room},
    {"fed_exchange_third_party_invite", "*", FED "/v1/exchange_third_party_invite/{room}/**",
     "room", room},
    {"fed_hierarchy", "*", FED "/v1/hierarchy/{room}/**", "room", room},

    // --- 6. federation without a room ID (origin-sticky) ----------------------------------------
    {"fed_send", "*", FED "/v1/send/**", "federation_reader", origin},
    {"fed_event", "*", FED "/v1/event/**", "federation_reader", origin},
    {"fed_query", "*", FED "/v1/query/**", "federation_reader", origin},
    {"fed_user_devices", "*", FED "/v1/user/devices/**", "federation_reader", origin},
    {"fed_user_keys", "*", FED "/v1/user/keys/**", "federation_reader", origin},
    {"fed_public_rooms", "*", FED "/v1/publicRooms/**", "federation_reader", origin},
    {"fed_version", "*", FED "/v1/version", "federation_reader", origin},
    {"key_query", "*", "/_matrix/key/v2/query/**", "federation_reader", origin},

    // --- 7. main
    // ----------------------------------------------------------------------------------
    {"admin", "*", "/_synapse/admin/**", "main", none},
    {"fallback", "*", "/**", "main", none},
};

#undef C4
#undef C3
#undef FED

}  // namespace

std::vector<rule_spec> default_rules() {
  std::vector<rule_spec> out;
  out.reserve(std::size(rows));
  for (const row& r : rows) {
    rule_spec s;
    s.name = r.name;
    s.methods = r.methods;
    s.pattern = r.pattern;
    s.pool = r.pool;
    s.key = r.key;
    s.source = "default";
    out.push_back(std::move(s));
  }
  return out;
}

}  // namespace spoa::routing
