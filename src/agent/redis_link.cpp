#include "agent/redis_link.hpp"

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "agent/clock.hpp"

namespace spoa::agent {

// privdata of one command: its callback, and whether it is a subscription (many replies).
struct redis_link::call {
  redis_link* link;
  reply_fn fn;
  bool subscription;
};

std::shared_ptr<redis_link> redis_link::create(asio::io_context& io,
                                               std::function<void()> on_lost) {
  return std::shared_ptr<redis_link>(new redis_link(io, std::move(on_lost)));
}

redis_link::redis_link(asio::io_context& io, std::function<void()> on_lost)
    : io_(io), on_lost_(std::move(on_lost)) {}

redis_link::~redis_link() {
  close();
}

bool redis_link::connect(const std::string& ip, std::uint16_t port) {
  close();
  lost_reported_ = false;
  error_.clear();
  redisAsyncContext* c = redisAsyncConnect(ip.c_str(), port);
  if (c == nullptr) {
    error_ = "cannot allocate a Redis context";
    return false;
  }
  if (c->err) {
    error_ = c->errstr;
    redisAsyncFree(c);
    return false;
  }
  ctx_ = c;
  c->data = this;
  c->ev.data = this;
  c->ev.addRead = &add_read;
  c->ev.delRead = &del_read;
  c->ev.addWrite = &add_write;
  c->ev.delWrite = &del_write;
  c->ev.cleanup = &cleanup;
  redisAsyncSetConnectCallback(c, &on_connect);
  redisAsyncSetDisconnectCallback(c, &on_disconnect);
  sd_ = std::make_unique<asio::posix::stream_descriptor>(io_, c->c.fd);
  add_write(this);  // the connect completes on the first write readiness
  return true;
}

bool redis_link::command(const std::vector<std::string_view>& argv, reply_fn fn) {
  if (!ctx_ || argv.empty()) return false;
  std::vector<const char*> ptrs;
  std::vector<std::size_t> lens;
  ptrs.reserve(argv.size());
  lens.reserve(argv.size());
  for (const auto& a : argv) {
    ptrs.push_back(a.data());
    lens.push_back(a.size());
  }
  auto* c = new call{this, std::move(fn), false};
  if (redisAsyncCommandArgv(ctx_, &on_reply, c, static_cast<int>(argv.size()), ptrs.data(),
                            lens.data()) != REDIS_OK) {
    delete c;
    return false;
  }
  sent_ns_.push_back(now_ns());
  return true;
}

bool redis_link::subscribe(std::string_view channel, reply_fn fn) {
  if (!ctx_) return false;
  const char* argv[] = {"SUBSCRIBE", channel.data()};
  const std::size_t lens[] = {9, channel.size()};
  auto* c = new call{this, std::move(fn), true};
  if (redisAsyncCommandArgv(ctx_, &on_reply, c, 2, argv, lens) != REDIS_OK) {
    delete c;
    return false;
  }
  return true;
}

void redis_link::close() {
  if (!ctx_) return;
  redisAsyncContext* c = ctx_;
  lost_reported_ = true;  // an explicit close is not a loss
  redisAsyncFree(c);      // runs every pending callback with nullptr, then cleanup()
  ctx_ = nullptr;
  sent_ns_.clear();
}

void redis_link::on_reply(redisAsyncContext* ctx, void* reply, void* priv) {
  auto* c = static_cast<call*>(priv);
  redis_link* self = c->link;
  if (!c->subscription && !self->sent_ns_.empty()) self->sent_ns_.pop_front();
  if (c->fn) c->fn(static_cast<const redisReply*>(reply));
  (void)ctx;
  if (!c->subscription || reply == nullptr) delete c;
}

void redis_link::on_connect(const redisAsyncContext* c, int status) {
  auto* self = static_cast<redis_link*>(c->data);
  if (status != REDIS_OK) self->lost(c->errstr[0] ? c->errstr : "connect failed");
}

void redis_link::on_disconnect(const redisAsyncContext* c, int status) {
  auto* self = static_cast<redis_link*>(c->data);
  self->lost(status == REDIS_OK ? "closed" : (c->errstr[0] ? c->errstr : "connection lost"));
}

void redis_link::lost(std::string why) {
  // hiredis frees the context after this callback returns: forget it now.
  ctx_ = nullptr;
  sent_ns_.clear();
  if (lost_reported_) return;
  lost_reported_ = true;
  error_ = std::move(why);
  asio::post(io_, [self = shared_from_this()] {
    if (self->on_lost_) self->on_lost_();
  });
}

void redis_link::add_read(void* p) {
  auto* self = static_cast<redis_link*>(p);
  self->want_read_ = true;
  self->arm(true);
}
void redis_link::del_read(void* p) {
  static_cast<redis_link*>(p)->want_read_ = false;
}
void redis_link::add_write(void* p) {
  auto* self = static_cast<redis_link*>(p);
  self->want_write_ = true;
  self->arm(false);
}
void redis_link::del_write(void* p) {
  static_cast<redis_link*>(p)->want_write_ = false;
}

void redis_link::cleanup(void* p) {
  auto* self = static_cast<redis_link*>(p);
  self->want_read_ = self->want_write_ = false;
  ++self->generation_;
  if (self->sd_) {
    boost::system::error_code ec;
    self->sd_->cancel(ec);
    (void)self->sd_->release();  // hiredis closes its own socket
  }
}

void redis_link::arm(bool read) {
  bool& armed = read ? read_armed_ : write_armed_;
  if (armed || !sd_ || !ctx_) return;
  armed = true;
  const auto wait =
      read ? asio::posix::stream_descriptor::wait_read : asio::posix::stream_descriptor::wait_write;
  sd_->async_wait(wait, [self = shared_from_this(), read,
                         gen = generation_](const boost::system::error_code& ec) {
    (read ? self->read_armed_ : self->write_armed_) = false;
    if (ec || gen != self->generation_ || !self->ctx_) return;
    if (read ? !self->want_read_ : !self->want_write_) return;
    if (read)
      redisAsyncHandleRead(self->ctx_);
    else
      redisAsyncHandleWrite(self->ctx_);
    // The context may be gone now (a lost connection); otherwise keep waiting while wanted.
    if (gen != self->generation_ || !self->ctx_) return;
    if (read ? self->want_read_ : self->want_write_) self->arm(read);
  });
}

}  // namespace spoa::agent
