#include "routing_fixture.hpp"

#include <cstdio>
#include <cstdlib>

namespace spoa::routing::test {

std::vector<std::string> reference_pools() {
  return {"main", "client_sync", "room", "federation_reader", "media"};
}

const route_table& default_table() {
  static const route_table table = [] {
    auto compiled = route_table::compile(default_rules(), reference_pools());
    if (auto* err = std::get_if<compile_error>(&compiled)) {
      std::fprintf(stderr, "default table does not compile: %s\n", err->message.c_str());
      std::abort();
    }
    return std::get<route_table>(std::move(compiled));
  }();
  return table;
}

outcome classify(const route_table& t, std::string_view method, std::string_view path,
                 std::string_view user, std::string_view origin, std::string_view query) {
  request req{method, path, query, user, origin};
  key_buffer buf;
  const classification c = t.classify(req, buf);
  outcome o;
  if (c.pool >= 0) o.pool = t.pool_names()[static_cast<std::size_t>(c.pool)];
  if (c.rule >= 0) o.rule = t.rules()[static_cast<std::size_t>(c.rule)].name;
  o.key = std::string(c.key);
  o.kind = c.kind;
  return o;
}

rule_spec make_rule(std::string name, std::string methods, std::string pattern, std::string pool,
                    key_kind key, std::string source) {
  rule_spec r;
  r.name = std::move(name);
  r.methods = std::move(methods);
  r.pattern = std::move(pattern);
  r.pool = std::move(pool);
  r.key = key;
  r.source = std::move(source);
  return r;
}

}  // namespace spoa::routing::test
