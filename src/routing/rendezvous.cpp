#include "routing/rendezvous.hpp"

#include <algorithm>
#include <string>
#include <vector>

namespace spoa::routing {

std::uint64_t worker_seed(const sip_key& key, std::string_view name) {
  std::string buf{"worker:"};
  buf.append(name);
  return siphash24(key, buf);
}

int rendezvous_first(std::uint64_t key_hash, std::span<const rendezvous_node> nodes) noexcept {
  int best = -1;
  double best_score = 0;
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    const double s = rendezvous_score(key_hash, nodes[i].seed, nodes[i].weight);
    if (best < 0 ||
        ranks_before(s, nodes[i].name, best_score, nodes[static_cast<std::size_t>(best)].name)) {
      best = static_cast<int>(i);
      best_score = s;
    }
  }
  return best;
}

void rendezvous_rank(std::uint64_t key_hash, std::span<const rendezvous_node> nodes,
                     std::span<int> out) {
  std::vector<double> scores(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    scores[i] = rendezvous_score(key_hash, nodes[i].seed, nodes[i].weight);
    out[i] = static_cast<int>(i);
  }
  std::sort(out.begin(), out.end(), [&](int a, int b) {
    const auto ua = static_cast<std::size_t>(a);
    const auto ub = static_cast<std::size_t>(b);
    return ranks_before(scores[ua], nodes[ua].name, scores[ub], nodes[ub].name);
  });
}

}  // namespace spoa::routing
