// libFuzzer target for the Prometheus text parser: every line is decoded (the sink wants every
// name), and each delivered sample is touched so the sanitizers see out-of-body label views.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "promtext/parser.hpp"

namespace {

class everything final : public spoa::promtext::sink {
 public:
  std::size_t bytes = 0;
  bool wants(std::string_view name) override {
    bytes += name.size();
    return true;
  }
  void on_sample(const spoa::promtext::sample& s) override {
    bytes += s.family.size();
    for (const auto& l : s.labels) {
      bytes += l.name.size() + spoa::promtext::unescape_label_value(l.value).size();
    }
  }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  everything sink;
  spoa::promtext::limits lim;
  lim.max_line = 4096;
  const auto r = spoa::promtext::parse(body, sink, lim);
  // Invariants: an error names a line inside the body; success names none.
  if (r.ok == (r.line != 0)) __builtin_trap();
  if (!r.ok && r.message.rfind("line ", 0) != 0) __builtin_trap();
  return 0;
}
