#pragma once
// NOTIFY payloads (LIST-OF-MESSAGES) as zero-allocation views, and the ACK action builder
// (LIST-OF-ACTIONS). Reference spop.md §5–6.
//
//   LIST-OF-MESSAGES = *( NAME:varint+bytes  NB-ARGS:1  *NB-ARGS( ARG-NAME:varint+bytes TYPED ) )
//   SET-VAR   = 01 03 SCOPE:1 NAME:varint+bytes TYPED
//   UNSET-VAR = 02 02 SCOPE:1 NAME:varint+bytes

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "spop/error.hpp"
#include "spop/typed_data.hpp"

namespace spoa::spop {

struct arg {
  std::string_view name;  // empty for an argument written without "name=" in the SPOE config
  typed_value value;
};

// One decoded message of a NOTIFY. Holds at most max_args arguments: the rest are skipped on the
// wire (correctly) and only counted in wire_arg_count(). All views point into the frame.
class message_view {
 public:
  static constexpr std::size_t max_args = 16;

  std::string_view name() const noexcept { return name_; }
  std::span<const arg> args() const noexcept { return {args_.data(), count_}; }
  // NB-ARGS as sent (up to 255), including the arguments beyond max_args that were dropped.
  std::size_t wire_arg_count() const noexcept { return wire_count_; }
  // The first argument called `name`, or nullptr.
  const typed_value* find(std::string_view name) const noexcept;
  // The STRING or BINARY bytes of argument `name`; "" if absent, NULL or another type.
  std::string_view string_arg(std::string_view name) const noexcept;

 private:
  friend class notify_reader;
  std::string_view name_;
  std::uint8_t count_ = 0;
  std::uint8_t wire_count_ = 0;
  std::array<arg, max_args> args_{};
};

// Iterates the messages of a NOTIFY payload. A NOTIFY may hold zero messages (HAProxy 3.x bug
// dc6e8dde2) or several.
class notify_reader {
 public:
  explicit notify_reader(std::span<const std::uint8_t> payload) noexcept
      : p_(payload.data()), end_(payload.data() + payload.size()) {}

  // Decodes the next message into `msg`. Returns false at the end of the payload or on a
  // malformed message; error() then tells which (normal or invalid).
  bool next(message_view& msg) noexcept;
  status error() const noexcept { return error_; }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  status error_ = status::normal;
};

// status::normal if the whole payload is a well-formed LIST-OF-MESSAGES, else invalid; counts
// the messages into `count` when given.
status validate_notify(std::span<const std::uint8_t> payload,
                       std::size_t* count = nullptr) noexcept;

enum class scope : std::uint8_t { proc = 0, sess = 1, txn = 2, req = 3, res = 4 };

enum class action_type : std::uint8_t { set_var = 1, unset_var = 2 };

// Variable names we send: [A-Za-z0-9_.], 1..40 characters, so that HAProxy's
// "<scope>.<prefix>.<name>" (e.g. txn.synapse.<name>) stays within its 63-character buffer
// (reference spop.md §6; overlong names are an out-of-bounds read before 23a2811b6).
inline constexpr std::size_t max_var_name = 40;
bool valid_var_name(std::string_view name) noexcept;

// Builds one ACK frame in place at the end of `out`: constructing it writes the header, each
// call appends one action, finish() closes the frame.
//
// Size rule: the frame never exceeds `max_frame_size`. An action that would not fit is dropped,
// and so is every action after it — actions are added most important first and HAProxy applies
// them in order, so dropping from the end keeps the decisive ones. The header plus the noop
// action take at most 33 bytes, below the smallest legal frame size (256), so finish() always
// fits.
class ack_builder {
 public:
  ack_builder(std::string& out, std::uint64_t stream_id, std::uint64_t frame_id,
              std::uint32_t max_frame_size);
  ack_builder(const ack_builder&) = delete;
  ack_builder& operator=(const ack_builder&) = delete;

  // Each returns true if the action was added; false if the name is invalid or the action was
  // dropped for size.
  bool set_var(scope s, std::string_view name, std::string_view string_value);
  bool set_var(scope s, std::string_view name, std::int64_t v);
  bool set_var(scope s, std::string_view name, const typed_value& v);
  bool unset_var(scope s, std::string_view name);

  bool empty() const noexcept { return actions_ == 0; }
  std::size_t action_count() const noexcept { return actions_; }
  std::size_t dropped() const noexcept { return dropped_; }    // too big for the frame
  std::size_t rejected() const noexcept { return rejected_; }  // invalid variable name

  // Adds unset-var(txn, "noop") if no action was added — an ACK always carries at least one
  // action (HAProxy 3.x before 851e52b55 never delivered an empty ACK) — and writes the length.
  // Idempotent.
  void finish() noexcept;
  // Removes the whole frame from `out` again (the NOTIFY turned out to be invalid).
  void abandon() noexcept;

 private:
  bool reserve(std::size_t n) noexcept;
  void put_header(action_type t, scope s, std::string_view name);

  std::string& out_;
  std::size_t start_;
  std::size_t limit_;  // out_.size() may grow up to this offset
  std::size_t actions_ = 0;
  std::size_t dropped_ = 0;
  std::size_t rejected_ = 0;
  bool full_ = false;
  bool finished_ = false;
};

inline constexpr std::string_view noop_var_name = "noop";

// --- the other direction, for tests, fake HAProxy peers and fuzz seeds ---

struct notify_message {
  std::string_view name;
  std::span<const arg> args;  // at most 255
};
// Appends a NOTIFY frame (FIN) carrying `messages`.
void encode_notify(std::string& out, std::uint64_t stream_id, std::uint64_t frame_id,
                   std::span<const notify_message> messages);

struct action {
  action_type type = action_type::set_var;
  scope var_scope = scope::txn;
  std::string_view name;
  typed_value value;  // NULL for unset-var
};

// Iterates the actions of an ACK payload, strictly (unknown type, wrong NB-ARGS, bad scope or
// truncation → invalid), where HAProxy would silently stop.
class ack_reader {
 public:
  explicit ack_reader(std::span<const std::uint8_t> payload) noexcept
      : p_(payload.data()), end_(payload.data() + payload.size()) {}
  bool next(action& a) noexcept;
  status error() const noexcept { return error_; }

 private:
  const std::uint8_t* p_;
  const std::uint8_t* end_;
  status error_ = status::normal;
};

}  // namespace spoa::spop
