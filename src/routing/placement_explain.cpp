// placement::explain(): decide() printed as JSON (format in placement.hpp). Nothing here decides.

#include <cmath>

#include "routing/json.hpp"
#include "routing/placement.hpp"

namespace spoa::routing {

placement::worker_figures placement::figures(int worker) const noexcept {
  worker_figures f;
  if (worker < 0 || static_cast<std::size_t>(worker) >= workers_.size()) return f;
  const auto w = static_cast<std::size_t>(worker);
  f.state = workers_[w].state;
  f.weight = workers_[w].weight;
  f.capacity = workers_[w].capacity;
  const double cap = capacity_of(w);
  f.load = cap > 0 ? load_count(w) / cap : 0.0;
  f.peer_load = cap > 0 ? workers_[w].remote / cap : 0.0;
  return f;
}

double placement::rate_scale(std::uint64_t now_ms) const noexcept {
  // count x scale = decayed requests per second (an exponentially weighted rate).
  return std::log(2.0) * 1000.0 /
         (static_cast<double>(ms(opts_.load_half_life)) *
          increment_at(std::max(now_ms, clock_ms_)));
}

std::string placement::explain(int pool, std::string_view key, std::uint64_t now_ms) const {
  const plan pl = decide(pool, key, now_ms);
  std::string out = "{";
  if (pl.pool < 0) {
    out.append(
        "\"pool\":null,\"ranking\":[],\"bound\":null,\"remembered\":null,\"home\":null,"
        "\"chosen\":null,\"second\":null,\"reason\":\"fallback\"}");
    return out;
  }
  const double per_second = rate_scale(now_ms);
  out.append("\"pool\":");
  json::append_string(out, pool_specs_[static_cast<std::size_t>(pool)].name);
  char hex[16];
  out.append(",\"key_hash\":");
  json::append_string(out, to_hex(pl.answer.key_hash, hex));
  out.append(",\"ranking\":[");
  for (std::size_t r = 0; r < pl.ranking.size(); ++r) {
    const ranked_worker& rw = pl.ranking[r];
    const worker_figures f = figures(rw.worker);
    if (r) out.push_back(',');
    out.append("{\"worker\":");
    json::append_string(out, specs_[rw.worker].name);
    out.append(",\"server\":");
    json::append_string(out, specs_[rw.worker].server);
    out.append(",\"score\":");
    if (pl.keyed)
      json::append_number(out, rw.score);
    else
      out.append("null");
    out.append(",\"weight\":");
    json::append_number(out, f.weight);
    out.append(",\"capacity\":");
    json::append_number(out, f.capacity);
    out.append(",\"load\":");
    json::append_number(out, f.load * per_second);
    out.append(",\"state\":");
    json::append_string(out, to_string(f.state));
    out.append(",\"skipped\":");
    if (rw.why != skip::none)
      json::append_string(out, to_string(rw.why));
    else
      out.append("null");
    out.push_back('}');
  }
  out.append("],\"bound\":");
  json::append_number(out, pl.bound * per_second);
  auto name_or_null = [&](const char* field, int w) {
    out.append(field);
    if (w >= 0 && static_cast<std::size_t>(w) < specs_.size())
      json::append_string(out, specs_[static_cast<std::size_t>(w)].name);
    else
      out.append("null");
  };
  name_or_null(",\"remembered\":", pl.remembered);
  name_or_null(",\"home\":", pl.home);
  name_or_null(",\"chosen\":", pl.answer.worker);
  name_or_null(",\"second\":", pl.answer.second);
  out.append(",\"reason\":");
  json::append_string(out, to_string(pl.answer.why));
  out.push_back('}');
  return out;
}

}  // namespace spoa::routing
