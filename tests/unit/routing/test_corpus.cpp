// The request corpus: one row per request (method, raw path with query, expected pool, key and
// rule) against the embedded default table over the reference topology. It covers every endpoint
// group of Synapse 1.157's docs/workers.md, the Matrix spec endpoint list (synapse-routing.md
// appendix A), every encoding variant of §7, and every vector of §15.

#include <gtest/gtest.h>

#include <string>

#include "routing_fixture.hpp"

namespace spoa::routing::test {
namespace {

struct corpus_row {
  const char* method;
  const char* path;
  const char* pool;
  const char* key;
  const char* rule;
};

// Keys: U = the request's user, O = its origin, R = the decoded room "!abc:example.org".
#define U "YWxpY2U"
#define O "other.org"
#define R "!abc:example.org"
#define V12 "!31hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM"
#define FR "%21abc%3Aexample.org"
#define CL "/_matrix/client"
#define FED "/_matrix/federation"

const corpus_row corpus[] = {
    // --- sync family (client_sync, user) -- §5, §15 ---------------------------------------------
    {"GET", CL "/v3/sync?since=s72594_4483_1934&timeout=30000", "client_sync", U, "sync"},
    {"GET", CL "/r0/sync", "client_sync", U, "sync"},
    {"GET", CL "/v3/sync?filter=0&timeout=0", "client_sync", U, "sync"},
    {"GET", CL "/v3/events?from=s1", "client_sync", U, "events"},
    {"GET", CL "/api/v1/events", "client_sync", U, "events"},
    {"GET", CL "/r0/initialSync", "client_sync", U, "initial_sync"},
    {"GET", CL "/api/v1/initialSync?limit=1", "client_sync", U, "initial_sync"},
    {"GET", CL "/v3/rooms/" R "/initialSync", "client_sync", U, "room_initial_sync"},
    {"GET", CL "/api/v1/rooms/" FR "/initialSync", "client_sync", U, "room_initial_sync"},
    {"POST", CL "/unstable/org.matrix.simplified_msc3575/sync?pos=1", "client_sync", U,
     "sliding_sync"},
    // --- stream writers (client_sync, user) -- §2.5, §15 ----------------------------------------
    {"PUT", CL "/v3/rooms/!abc%3Aexample.org/typing/%40alice%3Aexample.org", "client_sync", U,
     "typing"},
    {"PUT", CL "/r0/rooms/" FR "/typing/@alice:example.org", "client_sync", U, "typing"},
    {"PUT", CL "/api/v1/rooms/" R "/typing/@alice:example.org", "client_sync", U, "typing"},
    {"PUT", CL "/unstable/rooms/" V12 "/typing/@alice:example.org", "client_sync", U, "typing"},
    {"POST", CL "/v3/rooms/" R "/receipt/m.read/$Rqnc-F-dvnEYJTyHq_iKxU2bZ1CI92-kuZq3a5lr5Zg",
     "client_sync", U, "receipts"},
    {"POST", CL "/r0/rooms/" FR "/receipt/m.read.private/%24ev", "client_sync", U, "receipts"},
    {"POST", CL "/v3/rooms/" FR "/read_markers", "client_sync", U, "read_markers"},
    {"POST", CL "/unstable/rooms/" R "/read_markers", "client_sync", U, "read_markers"},
    {"PUT", CL "/v3/sendToDevice/m.room.encrypted/txn1", "client_sync", U, "to_device"},
    {"PUT", CL "/r0/sendToDevice/m.room_key_request/txn2", "client_sync", U, "to_device"},
    {"PUT", CL "/v3/user/%40alice%3Aexample.org/rooms/!abc%3Aexample.org/account_data/m.fully_read",
     "client_sync", U, "room_account_data"},
    {"GET", CL "/v3/user/@alice:example.org/rooms/" R "/account_data/m.fully_read", "client_sync",
     U, "room_account_data"},
    {"PUT", CL "/v3/user/@alice:example.org/rooms/" R "/tags/u.work", "client_sync", U,
     "room_tags"},
    {"GET", CL "/v3/user/@alice:example.org/rooms/" R "/tags", "client_sync", U, "room_tags"},
    {"DELETE", CL "/r0/user/@alice:example.org/rooms/" FR "/tags/u.work", "client_sync", U,
     "room_tags"},
    {"GET", CL "/v3/user/@alice:example.org/account_data/m.direct", "client_sync", U,
     "account_data"},
    {"PUT", CL "/v3/user/%40alice%3Aexample.org/account_data/im.vector.setting", "client_sync", U,
     "account_data"},
    {"DELETE", CL "/unstable/org.matrix.msc3391/user/@alice:example.org/account_data/m.x",
     "client_sync", U, "account_data"},
    {"PUT", CL "/v3/presence/%40alice%3Aexample.org/status", "client_sync", U, "presence"},
    {"GET", CL "/v3/presence/@alice:example.org/status", "client_sync", U, "presence"},
    {"GET", CL "/api/v1/presence/@alice:example.org/status", "client_sync", U, "presence"},
    {"POST", CL "/v3/user_directory/search", "client_sync", U, "user_directory_search"},
    {"POST", CL "/r0/user_directory/search", "client_sync", U, "user_directory_search"},
    // --- client room endpoints (room, key = room ID) -- §2.1, §2.3, §8 --------------------------
    {"PUT", CL "/v3/rooms/!abc%3Aexample.org/send/m.room.message/m1", "room", R, "room_send"},
    {"PUT", CL "/v3/rooms/" R "/send/m.room.message/m1700000000000.0", "room", R, "room_send"},
    {"GET", CL "/v3/rooms/" R "/messages?dir=b", "room", R, "room_messages"},
    {"GET", CL "/r0/rooms/" FR "/messages?from=t1&dir=b&limit=10", "room", R, "room_messages"},
    {"GET", CL "/v3/rooms/%21abc%3aexample.org/messages", "room", R, "room_messages"},
    {"GET", CL "/v3/rooms/!abc%3Aexample.org/messages", "room", R, "room_messages"},
    {"GET", CL "/v3/rooms/%21abc:example.org/messages", "room", R, "room_messages"},
    {"GET", CL "/api/v1/rooms/" R "/messages", "room", R, "room_messages"},
    {"GET", CL "/unstable/rooms/" R "/messages", "room", R, "room_messages"},
    {"PUT", CL "/v3/rooms/" R "/state/m.room.member/@bob:example.org", "room", R, "room_state"},
    {"GET", CL "/v3/rooms/" R "/state", "room", R, "room_state"},
    {"PUT", CL "/v3/rooms/" R "/state/m.room.name/", "room", R, "room_state"},
    {"GET", CL "/v3/rooms/" R "/state/m.room.member/%40bob%3Aexample.org", "room", R, "room_state"},
    {"GET", CL "/v1/rooms/" V12 "/hierarchy", "room", V12, "room_hierarchy"},
    {"GET", CL "/v3/rooms/%2131hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM/messages", "room", V12,
     "room_messages"},
    {"GET", CL "/v3/rooms/!abc:example.org:8448/members", "room", "!abc:example.org:8448",
     "room_members"},
    {"GET", CL "/v3/rooms/%21abc%3Aexample.org%3A8448/members", "room", "!abc:example.org:8448",
     "room_members"},
    {"GET", CL "/v3/rooms/!abc%3A%5B1234%3A5678%3A%3Aabcd%5D%3A8448/messages", "room",
     "!abc:[1234:5678::abcd]:8448", "room_messages"},
    {"GET", CL "/v3/rooms/!abc:[1234:5678::abcd]:8448/messages", "room",
     "!abc:[1234:5678::abcd]:8448", "room_messages"},
    {"GET", CL "/v3/rooms/!abc:127.0.0.1:8448/messages", "room", "!abc:127.0.0.1:8448",
     "room_messages"},
    {"GET", CL "/v3/rooms/!test%2Fv6%3Amaunium.net/messages", "room", "!test/v6:maunium.net",
     "room_messages"},
    {"PUT", CL "/v3/rooms/" R "/redact/$ev/txn1", "room", R, "room_redact"},
    {"POST", CL "/v3/rooms/" R "/join", "room", R, "room_membership"},
    {"POST", CL "/v3/rooms/" R "/invite", "room", R, "room_membership"},
    {"POST", CL "/v3/rooms/" R "/leave", "room", R, "room_membership"},
    {"POST", CL "/v3/rooms/" R "/kick", "room", R, "room_membership"},
    {"POST", CL "/r0/rooms/" FR "/ban", "room", R, "room_membership"},
    {"POST", CL "/api/v1/rooms/" R "/unban", "room", R, "room_membership"},
    {"GET", CL "/v3/rooms/" R "/members?membership=join", "room", R, "room_members"},
    {"GET", CL "/v3/rooms/" R "/joined_members", "room", R, "room_members"},
    {"GET", CL "/v3/rooms/" R "/event/$ev", "room", R, "room_event"},
    {"GET", CL "/v3/rooms/" R "/event/$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk", "room", R,
     "room_event"},
    {"GET", CL "/v3/rooms/" R "/context/$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk?limit=10",
     "room", R, "room_context"},
    {"GET", CL "/v3/rooms/" R "/context/%24acR1l0raoZnm60CBwAVgqbZqoO%2FmYU81xysh1u7XcJk", "room",
     R, "room_context"},
    {"GET", CL "/v3/rooms/" R "/aliases", "room", R, "room_aliases"},
    {"GET", CL "/unstable/org.matrix.msc2432/rooms/" R "/aliases", "room", R, "room_aliases"},
    {"GET", CL "/v1/rooms/" R "/relations/$ev", "room", R, "room_relations"},
    {"GET", CL "/v1/rooms/" R "/relations/$ev/m.thread/m.room.message", "room", R,
     "room_relations"},
    {"GET", CL "/v1/rooms/" R "/threads?include=all", "room", R, "room_threads"},
    {"GET", CL "/v1/rooms/" R "/timestamp_to_event?ts=1&dir=f", "room", R,
     "room_timestamp_to_event"},
    {"GET", CL "/v1/room_summary/" R, "room", R, "room_summary"},
    {"GET", CL "/unstable/im.nheko.summary/summary/" FR, "room", R, "room_summary"},
    {"POST", CL "/v3/join/!abc%3Aexample.org?via=example.org", "room", R, "join_room"},
    {"POST", CL "/r0/join/" FR, "room", R, "join_room"},
    {"POST", CL "/v3/knock/" R, "room", R, "join_room"},
    {"GET", CL "/v3/room_keys/keys/" R "?version=1", "room", R, "room_keys_room"},
    {"PUT", CL "/v3/room_keys/keys/" FR "/sessionid?version=1", "room", R, "room_keys_room"},
    {"GET", "/_synapse/admin/v1/rooms/" R, "room", R, "admin_room_details"},
    {"DELETE", "/_synapse/admin/v1/rooms/" FR, "room", R, "admin_room_details"},
    // --- join / summary by alias: no room ID, so no room key: main -----------------------------
    {"POST", CL "/v3/join/%23matrix%3Amatrix.org", "main", "", "join_alias"},
    {"POST", CL "/v3/knock/%23room%3Aexample.org?via=example.org", "main", "", "join_alias"},
    {"GET", CL "/v1/room_summary/%23room%3Aexample.org", "main", "", "fallback"},
    // --- main only -- §3 -------------------------------------------------------------------------
    {"POST", CL "/v3/rooms/" R "/forget", "main", "", "room_forget"},
    {"POST", CL "/v3/rooms/" R "/upgrade", "main", "", "room_upgrade"},
    {"POST", CL "/v3/rooms/" R "/report/$ev", "main", "", "room_report"},
    {"POST", CL "/v3/rooms/" FR "/report", "main", "", "room_report"},
    {"POST", CL "/v3/users/@bob:example.org/report", "main", "", "user_report"},
    {"PUT", CL "/v3/pushrules/global/room/%21abc%3Aexample.org", "main", "", "push_rules_write"},
    {"DELETE", CL "/v3/pushrules/global/override/rule1", "main", "", "push_rules_write"},
    {"PUT", CL "/v3/pushrules/global/content/r/enabled", "main", "", "push_rules_write"},
    {"PUT", CL "/r0/pushrules/global/room/%21test%2Fv6%20%F0%9F%90%88%EF%B8%8F%3Amaunium.net",
     "main", "", "push_rules_write"},
    {"GET", CL "/v3/pushrules/", "main", "", "push_rules_read"},
    {"GET", CL "/v3/pushrules/global/", "main", "", "push_rules_read"},
    {"HEAD", CL "/v3/pushrules/global/override/rule1/actions", "main", "", "push_rules_read"},
    {"GET", CL "/v3/directory/list/room/" R, "main", "", "directory_list"},
    {"PUT", CL "/v3/directory/list/room/" FR, "main", "", "directory_list"},
    {"PUT", CL "/v3/directory/list/appservice/irc/" R, "main", "", "directory_list"},
    {"GET", CL "/v3/pushers", "main", "", "pushers"},
    {"POST", CL "/v3/pushers/set", "main", "", "pushers"},
    {"POST", CL "/v3/logout", "main", "", "logout"},
    {"POST", CL "/v3/logout/all", "main", "", "logout"},
    {"POST", CL "/v3/account/password", "main", "", "account_password"},
    {"POST", CL "/v3/account/password/email/requestToken", "main", "", "account_password"},
    {"POST", CL "/v3/account/password/msisdn/requestToken", "main", "", "account_password"},
    {"GET", CL "/v3/account/3pid", "main", "", "account_3pid"},
    {"POST", CL "/v3/account/3pid/add", "main", "", "account_3pid"},
    {"POST", CL "/v3/account/3pid/bind", "main", "", "account_3pid"},
    {"POST", CL "/v3/account/3pid/delete", "main", "", "account_3pid"},
    {"POST", CL "/v3/account/3pid/unbind", "main", "", "account_3pid"},
    {"POST", CL "/v3/account/3pid/email/requestToken", "main", "", "account_3pid"},
    {"POST", CL "/v3/account/3pid/msisdn/requestToken", "main", "", "account_3pid"},
    {"POST", CL "/v3/register/email/requestToken", "main", "", "register_request_token"},
    {"POST", CL "/v3/register/msisdn/requestToken", "main", "", "register_request_token"},
    {"POST", CL "/v3/refresh", "main", "", "refresh"},
    {"POST", CL "/v1/login/get_token", "main", "", "login_get_token"},
    {"GET", CL "/v3/auth/m.login.recaptcha/fallback/web?session=x", "main", "", "auth_fallback"},
    {"POST", CL "/v3/user/@alice:example.org/openid/request_token", "main", "",
     "openid_request_token"},
    {"GET", CL "/v3/thirdparty/protocols", "main", "", "thirdparty"},
    {"GET", CL "/v3/thirdparty/location/irc?alias=x", "main", "", "thirdparty"},
    {"GET", CL "/v3/thirdparty/user", "main", "", "thirdparty"},
    {"GET", CL "/v1/mutual_rooms?user_id=@bob:example.org", "main", "", "mutual_rooms"},
    {"GET", CL "/v3/login/sso/redirect?redirectUrl=https%3A%2F%2Fapp", "main", "", "sso_redirect"},
    {"GET", CL "/v3/login/sso/redirect/oidc-x?redirectUrl=x", "main", "", "sso_redirect"},
    {"GET", CL "/r0/login/cas/ticket?redirectUrl=x&ticket=y", "main", "", "cas_ticket"},
    {"GET", "/_synapse/client/pick_idp?idp=oidc", "main", "", "synapse_client"},
    {"GET", "/_synapse/client/oidc/callback?code=x&state=y", "main", "", "synapse_client"},
    {"POST", "/_synapse/client/saml2/authn_response", "main", "", "synapse_client"},
    {"GET", "/_synapse/client/pick_username/account", "main", "", "synapse_client"},
    {"GET", "/_synapse/client/new_user_consent", "main", "", "synapse_client"},
    {"POST", "/_synapse/client/sso_register", "main", "", "synapse_client"},
    {"POST", CL "/unstable/org.matrix.msc4108/rendezvous", "main", "", "qr_rendezvous"},
    {"GET", FED "/v1/openid/userinfo?access_token=x", "main", "", "fed_openid_userinfo"},
    {"PUT", FED "/v1/3pid/onbind", "main", "", "fed_3pid_onbind"},
    {"GET", "/_matrix/key/v2/server", "main", "", "key_server"},
    {"POST", "/_matrix/policy/v1/sign", "main", "", "policy_sign"},
    {"GET", "/_synapse/admin/v2/users/@alice:example.org", "main", "", "admin"},
    {"GET", "/_synapse/admin/v1/server_version", "main", "", "admin"},
    {"GET", "/_synapse/admin/v1/rooms/" R "/members", "main", "", "admin"},
    {"GET", "/_synapse/admin/v1/rooms?limit=10", "main", "", "admin"},
    {"POST", "/_synapse/admin/v1/purge_history/" R, "main", "", "admin"},
    // --- worker-capable without a room: main in the reference deployment -- §10 -----------------
    {"POST", CL "/v3/keys/query", "main", "", "fallback"},
    {"POST", CL "/v3/keys/claim", "main", "", "fallback"},
    {"GET", CL "/v3/keys/changes?from=a&to=b", "main", "", "fallback"},
    {"POST", CL "/v3/keys/upload", "main", "", "fallback"},
    {"POST", CL "/v3/keys/device_signing/upload", "main", "", "fallback"},
    {"POST", CL "/v3/keys/signatures/upload", "main", "", "fallback"},
    {"POST", CL "/v3/createRoom", "main", "", "fallback"},
    {"GET", CL "/versions", "main", "", "fallback"},
    {"GET", CL "/v3/capabilities", "main", "", "fallback"},
    {"POST", CL "/v3/login", "main", "", "fallback"},
    {"GET", CL "/v3/login", "main", "", "fallback"},
    {"POST", CL "/v3/register", "main", "", "fallback"},
    {"GET", CL "/v3/register/available?username=x", "main", "", "fallback"},
    {"GET", CL "/v1/register/m.login.registration_token/validity?token=x", "main", "", "fallback"},
    {"GET", CL "/v3/password_policy", "main", "", "fallback"},
    {"GET", CL "/v3/profile/@alice:example.org", "main", "", "fallback"},
    {"PUT", CL "/v3/profile/%40alice%3Aexample.org/displayname", "main", "", "fallback"},
    {"GET", CL "/v3/publicRooms", "main", "", "fallback"},
    {"GET", CL "/v3/joined_rooms", "main", "", "fallback"},
    {"POST", CL "/v3/search", "main", "", "fallback"},
    {"GET", CL "/v3/devices", "main", "", "fallback"},
    {"PUT", CL "/v3/devices/ABCDEF", "main", "", "fallback"},
    {"POST", CL "/v3/delete_devices", "main", "", "fallback"},
    {"GET", CL "/v3/directory/room/%23a%3Ab", "main", "", "fallback"},
    {"GET", CL "/v3/voip/turnServer", "main", "", "fallback"},
    {"GET", CL "/v3/account/whoami", "main", "", "fallback"},
    {"POST", CL "/v3/account/deactivate", "main", "", "fallback"},
    {"POST", CL "/v3/user/@alice:example.org/filter", "main", "", "fallback"},
    {"GET", CL "/v3/user/@alice:example.org/filter/1", "main", "", "fallback"},
    {"GET", CL "/v3/notifications", "main", "", "fallback"},
    {"GET", CL "/v3/events/$ev", "main", "", "fallback"},
    {"GET", CL "/v3/room_keys/keys?version=1", "main", "", "fallback"},
    {"GET", CL "/v3/room_keys/version", "main", "", "fallback"},
    {"GET", CL "/v3/admin/whois/@alice:example.org", "main", "", "fallback"},
    {"GET", CL "/v1/auth_metadata", "main", "", "fallback"},
    {"GET", CL "/v1/admin/lock/@bob:example.org", "main", "", "fallback"},
    {"PUT", CL "/v1/admin/suspend/%40bob%3Aexample.org", "main", "", "fallback"},
    {"POST", CL "/v1/appservice/irc/ping", "main", "", "fallback"},
    {"PUT", CL "/v3/room_keys/version/3", "main", "", "fallback"},
    {"GET", CL "/unstable/org.matrix.msc4140/delayed_events", "main", "", "fallback"},
    {"POST", CL "/unstable/org.matrix.msc4140/delayed_events/d1/restart", "main", "", "fallback"},
    {"GET", CL "/unstable/io.element.msc4306/rooms/" R "/thread/$e/subscription", "main", "",
     "fallback"},
    {"GET", "/.well-known/matrix/support", "main", "", "fallback"},
    {"GET", "/.well-known/matrix/policy_server", "main", "", "fallback"},
    {"GET", "/.well-known/matrix/client", "main", "", "fallback"},
    {"GET", "/.well-known/matrix/server", "main", "", "fallback"},
    {"GET", "/health", "main", "", "fallback"},
    {"GET", "/", "main", "", "fallback"},
    {"GET", CL "/v3/rooms/not_a_room_id/messages", "main", "", "fallback"},
    // --- media -- §2.6, §9.6 --------------------------------------------------------------------
    {"GET", CL "/v1/media/download/example.org/AbCdEf", "media", "", "client_media"},
    {"GET", CL "/v1/media/download/example.org/AbCdEf/cat.png", "media", "", "client_media"},
    {"GET", CL "/v1/media/thumbnail/example.org/AbCdEf?width=64&height=64", "media", "",
     "client_media"},
    {"GET", CL "/v1/media/config", "media", "", "client_media"},
    {"GET", CL "/v1/media/preview_url?url=https%3A%2F%2Fexample.org", "media", "", "client_media"},
    {"GET", FED "/v1/media/download/AbCdEf", "media", "", "federation_media"},
    {"GET", FED "/v1/media/thumbnail/AbCdEf?width=32", "media", "", "federation_media"},
    {"POST", "/_matrix/media/v3/upload?filename=a.png", "media", "", "media"},
    {"PUT", "/_matrix/media/v3/upload/example.org/AbCdEf", "media", "", "media"},
    {"GET", "/_matrix/media/v3/config", "media", "", "media"},
    {"GET", "/_matrix/media/v3/preview_url?url=x", "media", "", "media"},
    {"GET", "/_matrix/media/v3/download/example.org/AbCdEf/file.png", "media", "", "media"},
    {"GET", "/_matrix/media/r0/thumbnail/example.org/AbCdEf", "media", "", "media"},
    {"POST", "/_matrix/media/v1/create", "media", "", "media"},
    {"GET", "/_synapse/admin/v1/media/example.org/AbCdEf", "media", "", "admin_media"},
    {"POST", "/_synapse/admin/v1/purge_media_cache?before_ts=1", "media", "",
     "admin_purge_media_cache"},
    {"GET", "/_synapse/admin/v1/room/" R "/media", "media", "", "admin_room_media"},
    {"POST", "/_synapse/admin/v1/room/" FR "/media/quarantine", "media", "", "admin_room_media"},
    {"POST", "/_synapse/admin/v1/user/@alice:example.org/media/quarantine", "media", "",
     "admin_user_media"},
    {"POST", "/_synapse/admin/v1/quarantine_media/example.org/AbCdEf", "media", "",
     "admin_quarantine_media"},
    {"GET", "/_synapse/admin/v1/users/@alice:example.org/media", "media", "", "admin_users_media"},
    // --- federation with a room ID (room, key = room ID) -- §8 ----------------------------------
    {"GET", FED "/v1/state_ids/" FR "?event_id=%24ev", "room", R, "fed_state"},
    {"GET", FED "/v1/state/" FR "?event_id=%24ev", "room", R, "fed_state"},
    {"GET", FED "/v1/backfill/" FR "?v=%24ev&limit=100", "room", R, "fed_backfill"},
    {"POST", FED "/v1/get_missing_events/" FR, "room", R, "fed_get_missing_events"},
    {"GET", FED "/v1/event_auth/" FR "/%24ev", "room", R, "fed_event_auth"},
    {"GET", FED "/v1/make_join/" FR "/%40bob%3Aother.org?ver=10&ver=11", "room", R,
     "fed_make_membership"},
    {"GET", FED "/v1/make_leave/" FR "/%40bob%3Aother.org", "room", R, "fed_make_membership"},
    {"GET", FED "/v1/make_knock/" FR "/%40bob%3Aother.org?ver=11", "room", R,
     "fed_make_membership"},
    {"PUT", FED "/v2/send_join/" FR "/%24evhash", "room", R, "fed_send_membership"},
    {"PUT", FED "/v2/send_join/" FR "/%24evhash?omit_members=true", "room", R,
     "fed_send_membership"},
    {"PUT", FED "/v1/send_join/" FR "/%24evhash", "room", R, "fed_send_membership"},
    {"PUT", FED "/v2/send_leave/" FR "/%24evhash", "room", R, "fed_send_membership"},
    {"PUT", FED "/v1/send_leave/" FR "/%24evhash", "room", R, "fed_send_membership"},
    {"PUT", FED "/v2/invite/" FR "/%24ev", "room", R, "fed_send_membership"},
    {"PUT", FED "/v1/invite/" FR "/%24ev", "room", R, "fed_send_membership"},
    {"PUT", FED "/v1/send_knock/" FR "/%24ev", "room", R, "fed_send_knock"},
    {"GET", FED "/v1/timestamp_to_event/" FR "?ts=1&dir=f", "room", R, "fed_timestamp_to_event"},
    {"PUT", FED "/v1/exchange_third_party_invite/" FR, "room", R,
     "fed_exchange_third_party_invite"},
    {"GET", FED "/v1/hierarchy/" FR "?suggested_only=true", "room", R, "fed_hierarchy"},
    {"GET", FED "/v1/state_ids/%2131hneApxJ_1o-63DmFrpeqnkFfWppnzWso1JvH3ogLM?event_id=%24x",
     "room", V12, "fed_state"},
    {"GET", FED "/v1/backfill/" R "?v=%24ev", "room", R, "fed_backfill"},
    // --- federation without a room ID (federation_reader, origin) -- §8 -------------------------
    {"PUT", FED "/v1/send/1700000000000", "federation_reader", O, "fed_send"},
    {"GET", FED "/v1/event/%24evhash", "federation_reader", O, "fed_event"},
    {"GET", FED "/v1/event/$acR1l0raoZnm60CBwAVgqbZqoO/mYU81xysh1u7XcJk", "federation_reader", O,
     "fed_event"},
    {"GET", FED "/v1/query/directory?room_alias=%23a%3Ab", "federation_reader", O, "fed_query"},
    {"GET", FED "/v1/query/profile?user_id=%40a%3Ab&field=displayname", "federation_reader", O,
     "fed_query"},
    {"GET", FED "/v1/user/devices/%40alice%3Aexample.org", "federation_reader", O,
     "fed_user_devices"},
    {"POST", FED "/v1/user/keys/query", "federation_reader", O, "fed_user_keys"},
    {"POST", FED "/v1/user/keys/claim", "federation_reader", O, "fed_user_keys"},
    {"GET", FED "/v1/publicRooms?limit=10", "federation_reader", O, "fed_public_rooms"},
    {"POST", FED "/v1/publicRooms", "federation_reader", O, "fed_public_rooms"},
    {"GET", FED "/v1/version", "federation_reader", O, "fed_version"},
    {"GET", "/_matrix/key/v2/query/example.org", "federation_reader", O, "key_query"},
    {"POST", "/_matrix/key/v2/query", "federation_reader", O, "key_query"},
};

class Corpus : public ::testing::TestWithParam<corpus_row> {};

TEST_P(Corpus, ClassifiesAsExpected) {
  const corpus_row& row = GetParam();
  const outcome o = classify(default_table(), row.method, row.path);
  EXPECT_EQ(o.pool, row.pool) << row.method << " " << row.path;
  EXPECT_EQ(o.key, row.key) << row.method << " " << row.path;
  EXPECT_EQ(o.rule, row.rule) << row.method << " " << row.path;
}

INSTANTIATE_TEST_SUITE_P(Default, Corpus, ::testing::ValuesIn(corpus),
                         [](const ::testing::TestParamInfo<corpus_row>& p) {
                           return "row" + std::to_string(p.index);
                         });

TEST(CorpusSize, AtLeast150Requests) {
  EXPECT_GE(std::size(corpus), 150u);
}

// Every default rule is exercised by at least one corpus row, so none is dead or untested.
TEST(CorpusSize, EveryDefaultRuleIsHit) {
  for (const rule_spec& r : default_table().rules()) {
    bool hit = false;
    for (const corpus_row& row : corpus)
      hit = hit || r.name == row.rule;
    EXPECT_TRUE(hit) << "no corpus row for rule " << r.name;
  }
}

}  // namespace
}  // namespace spoa::routing::test
