// router::explain(): the `synapse-spoa route` line. Nothing here decides: the ranking is
// placement::explain() (placement::decide() printed), then router::decide() takes the decision.

#include "decision/router.hpp"
#include "routing/json.hpp"

namespace spoa::decision {

std::string router::explain(const routing::request& req, std::uint64_t now_ms) {
  namespace json = routing::json;
  routing::key_buffer buf;
  const auto c = table_.classify(req, buf);
  std::string ranking = "null";
  if (c.pool >= 0) ranking = placement_.explain(c.pool, c.key, now_ms);
  routing::key_buffer buf2;
  const answer a = decide(req, buf2, now_ms);
  const auto& rules = table_.rules();
  const routing::rule_spec* rule = (c.rule >= 0 && static_cast<std::size_t>(c.rule) < rules.size())
                                       ? &rules[static_cast<std::size_t>(c.rule)]
                                       : nullptr;
  char hash[16];
  std::string out = "{";
  auto field = [&](const char* name, std::string_view value) {
    if (out.size() > 1) out.push_back(',');
    out.push_back('"');
    out.append(name);
    out.append("\":");
    json::append_string(out, value);
  };
  field("method", req.method);
  field("path", req.path);
  field("pool", a.pool);
  field("backend", a.backend);
  field("server", a.server);
  field("server2", a.server2);
  field("key", c.key);
  field("key_kind", routing::to_string(c.kind));
  field("key_hash", c.key.empty() ? std::string_view() : routing::to_hex(a.key_hash, hash));
  field("rule", rule ? std::string_view(rule->name) : std::string_view());
  field("rule_source", rule ? std::string_view(rule->source) : std::string_view());
  field("reason", routing::to_string(a.why));
  out += ",\"placement\":" + ranking;
  out += "}";
  return out;
}

}  // namespace spoa::decision
