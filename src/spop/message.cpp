#include "spop/message.hpp"

#include "spop/frame.hpp"
#include "spop/reader.hpp"

namespace spoa::spop {

const typed_value* message_view::find(std::string_view name) const noexcept {
  for (std::size_t k = 0; k < count_; ++k)
    if (args_[k].name == name) return &args_[k].value;
  return nullptr;
}

std::string_view message_view::string_arg(std::string_view name) const noexcept {
  const typed_value* v = find(name);
  if (v == nullptr || (v->type != data_type::string && v->type != data_type::binary)) return {};
  return v->bytes;
}

bool notify_reader::next(message_view& msg) noexcept {
  if (p_ == end_ || error_ != status::normal) return false;
  byte_reader in(std::span<const std::uint8_t>(p_, static_cast<std::size_t>(end_ - p_)));
  std::uint8_t nb = 0;
  if (!in.read_name(msg.name_) || !in.read_u8(nb)) {
    error_ = status::invalid;
    return false;
  }
  msg.wire_count_ = nb;
  msg.count_ = 0;
  arg scratch;
  for (std::uint8_t k = 0; k < nb; ++k) {
    arg& a = msg.count_ < message_view::max_args ? msg.args_[msg.count_] : scratch;
    if (!in.read_name(a.name) || !in.read_typed(a.value)) {
      error_ = status::invalid;
      return false;
    }
    if (msg.count_ < message_view::max_args) ++msg.count_;
  }
  p_ = end_ - in.remaining();
  return true;
}

status validate_notify(std::span<const std::uint8_t> payload, std::size_t* count) noexcept {
  notify_reader reader(payload);
  message_view msg;
  std::size_t n = 0;
  while (reader.next(msg))
    ++n;
  if (count != nullptr) *count = n;
  return reader.error();
}

bool valid_var_name(std::string_view name) noexcept {
  if (name.empty() || name.size() > max_var_name) return false;
  for (char c : name) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

ack_builder::ack_builder(std::string& out, std::uint64_t stream_id, std::uint64_t frame_id,
                         std::uint32_t max_frame_size)
    : out_(out),
      start_(begin_frame(out, frame_type::ack, stream_id, frame_id)),
      limit_(start_ + length_prefix_size + max_frame_size) {}

bool ack_builder::reserve(std::size_t n) noexcept {
  if (full_ || out_.size() + n > limit_) {
    full_ = true;
    ++dropped_;
    return false;
  }
  return true;
}

void ack_builder::put_header(action_type t, scope s, std::string_view name) {
  const char head[3] = {static_cast<char>(t), t == action_type::set_var ? '\x03' : '\x02',
                        static_cast<char>(s)};
  out_.append(head, 3);
  append_name(out_, name);
}

bool ack_builder::set_var(scope s, std::string_view name, const typed_value& v) {
  if (finished_) return false;
  if (!valid_var_name(name)) {
    ++rejected_;
    return false;
  }
  if (!reserve(3 + name_size(name) + typed_size(v))) return false;
  put_header(action_type::set_var, s, name);
  encode_typed(out_, v);
  ++actions_;
  return true;
}

bool ack_builder::set_var(scope s, std::string_view name, std::string_view string_value) {
  return set_var(s, name, typed_value::make_string(string_value));
}

bool ack_builder::set_var(scope s, std::string_view name, std::int64_t v) {
  return set_var(s, name, typed_value::make_int64(v));
}

bool ack_builder::unset_var(scope s, std::string_view name) {
  if (finished_) return false;
  if (!valid_var_name(name)) {
    ++rejected_;
    return false;
  }
  if (!reserve(3 + name_size(name))) return false;
  put_header(action_type::unset_var, s, name);
  ++actions_;
  return true;
}

void ack_builder::finish() noexcept {
  if (finished_) return;
  if (actions_ == 0) {
    // Fits unconditionally: header ≤ 25 bytes + 8 bytes of action < 256 (see class comment).
    put_header(action_type::unset_var, scope::txn, noop_var_name);
    ++actions_;
  }
  end_frame(out_, start_);
  finished_ = true;
}

void ack_builder::abandon() noexcept {
  out_.resize(start_);
  finished_ = true;
}

void encode_notify(std::string& out, std::uint64_t stream_id, std::uint64_t frame_id,
                   std::span<const notify_message> messages) {
  const std::size_t start = begin_frame(out, frame_type::notify, stream_id, frame_id);
  for (const notify_message& m : messages) {
    append_name(out, m.name);
    const std::size_t nb = m.args.size() > 255 ? 255 : m.args.size();
    out.push_back(static_cast<char>(nb));
    for (std::size_t k = 0; k < nb; ++k) {
      append_name(out, m.args[k].name);
      encode_typed(out, m.args[k].value);
    }
  }
  end_frame(out, start);
}

bool ack_reader::next(action& a) noexcept {
  if (p_ == end_ || error_ != status::normal) return false;
  byte_reader in(std::span<const std::uint8_t>(p_, static_cast<std::size_t>(end_ - p_)));
  std::uint8_t type = 0;
  std::uint8_t nb = 0;
  std::uint8_t sc = 0;
  bool ok = in.read_u8(type) && in.read_u8(nb) && in.read_u8(sc) && sc <= 4 && in.read_name(a.name);
  if (ok) {
    a.var_scope = static_cast<scope>(sc);
    if (type == 1 && nb == 3) {
      a.type = action_type::set_var;
      ok = in.read_typed(a.value);
    } else if (type == 2 && nb == 2) {
      a.type = action_type::unset_var;
      a.value = typed_value{};
    } else {
      ok = false;
    }
  }
  if (!ok) {
    error_ = status::invalid;
    return false;
  }
  p_ = end_ - in.remaining();
  return true;
}

}  // namespace spoa::spop
