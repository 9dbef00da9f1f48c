#include "decision/handler.hpp"

#include <charconv>
#include <cstdint>

#include "routing/json.hpp"

namespace spoa::decision {
namespace {

// HAProxy sends `user` as a STRING (the syt_ localpart) or as an INT64 (xxh64 of an opaque
// token). Either way the key is its text form.
std::string_view text_of(const spop::typed_value* v, char (&buf)[24]) {
  if (v == nullptr) return {};
  switch (v->type) {
    case spop::data_type::string:
    case spop::data_type::binary:
      return v->bytes;
    case spop::data_type::int32:
    case spop::data_type::int64: {
      auto r = std::to_chars(buf, buf + sizeof buf, v->i);
      return {buf, static_cast<std::size_t>(r.ptr - buf)};
    }
    case spop::data_type::uint32:
    case spop::data_type::uint64: {
      auto r = std::to_chars(buf, buf + sizeof buf, v->u);
      return {buf, static_cast<std::size_t>(r.ptr - buf)};
    }
    default:
      return {};
  }
}

// An integer argument (HAProxy sends sint for status, integer arithmetic and int()); `fallback`
// when absent or of another type.
std::int64_t int_of(const spop::typed_value* v, std::int64_t fallback) {
  if (v == nullptr) return fallback;
  switch (v->type) {
    case spop::data_type::int32:
    case spop::data_type::int64:
      return v->i;
    case spop::data_type::uint32:
    case spop::data_type::uint64:
      return v->u > static_cast<std::uint64_t>(INT64_MAX) ? fallback
                                                          : static_cast<std::int64_t>(v->u);
    default:
      return fallback;
  }
}

}  // namespace

void handler::on_response(const spop::message_view& msg) {
  if (responses_ == nullptr) return;
  response_report r;
  r.pool = msg.string_arg("pool");
  r.server = msg.string_arg("server");
  r.rule = msg.string_arg("rule");
  const std::int64_t status = int_of(msg.find("status"), 0);
  r.status = status >= 0 && status <= 999 ? static_cast<int>(status) : 0;
  r.header_us = int_of(msg.find("header_us"), -1);
  r.long_poll = !msg.string_arg("long_poll").empty();
  const std::int64_t pct = int_of(msg.find("percent"), 100);
  r.percent = pct >= 1 && pct <= 100 ? static_cast<int>(pct) : 100;
  responses_->on_response(r);
}

void handler::on_message(const spop::message_view& msg, spop::ack_builder& ack) {
  if (msg.name() == "response") return on_response(msg);  // acknowledged with no action
  if (msg.name() != "route") return;                      // unknown messages get the minimal ACK
  if (noop_) {
    ack.set_var(spop::scope::txn, "backend", "synapse_main");
    ack.set_var(spop::scope::txn, "server", "main");
    return;
  }
  const std::uint64_t start_ns = now_ns_();
  char user_buf[24];
  routing::request req;
  req.method = msg.string_arg("method");
  req.path = msg.string_arg("path");
  req.query = msg.string_arg("query");
  req.user = text_of(msg.find("user"), user_buf);
  req.origin = msg.string_arg("origin");
  if (req.path.empty()) return;  // nothing to route on: HAProxy's fallback rules decide

  const answer a = router_->decide(req, key_buf_, start_ns / 1'000'000);
  if (a.backend.empty()) return;
  // The decisive action first: HAProxy stops at the first action it cannot apply.
  ack.set_var(spop::scope::txn, "backend", a.backend);
  if (!a.server.empty()) ack.set_var(spop::scope::txn, "server", a.server);
  if (!a.server2.empty()) ack.set_var(spop::scope::txn, "server2", a.server2);
  ack.set_var(spop::scope::txn, "pool", a.pool);
  if (!a.key.empty()) {
    char h[16];
    ack.set_var(spop::scope::txn, "key_hash", routing::to_hex(a.key_hash, h));
  }
  // For the sampled `response` message: which rule routed it, and whether its time counts.
  const auto& rules = router_->table().rules();
  if (a.rule >= 0 && static_cast<std::size_t>(a.rule) < rules.size())
    ack.set_var(spop::scope::txn, "rule", rules[static_cast<std::size_t>(a.rule)].name);
  if (routing::long_poll(req)) ack.set_var(spop::scope::txn, "long_poll", "1");
  if (observer_) observer_->on_decision(a, static_cast<double>(now_ns_() - start_ns) * 1e-9);
}

}  // namespace spoa::decision
