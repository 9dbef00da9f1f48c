// The scraper over loopback, in process: a small HTTP/1.1 stub on 127.0.0.1 port 0 in the same
// io_context serves a real Synapse /metrics body (or accepts and never answers). The io_context
// is driven until a condition holds, never slept on; every test ends by running it to
// completion, so a coroutine that outlived what it references shows up under ASan.

#include "agent/scraper.hpp"

#include <gtest/gtest.h>

#include "drive.hpp"

#include <array>
#include <chrono>
#include <cmath>
#include <fstream>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace spoa::agent {
namespace {

using test::drain;
using test::drive;

using namespace std::chrono_literals;

std::string read_real(const std::string& name) {
  std::ifstream f(std::string(SPOA_REAL_BODIES) + "/" + name, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

// Answers every request with `body` (keep-alive), or reads requests and never answers.
class http_stub {
 public:
  enum class mode { answer, hang };

  http_stub(asio::io_context& io, mode m, std::string body)
      : acceptor_(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)),
        mode_(m),
        body_(std::move(body)) {
    accept();
  }
  std::uint16_t port() const { return acceptor_.local_endpoint().port(); }
  // Every pending operation completes with an error, so the loop can run dry.
  void close() {
    boost::system::error_code ec;
    acceptor_.close(ec);
    for (const auto& w : conns_)
      if (auto c = w.lock()) c->sock.close(ec);
  }

  int connections = 0;
  int requests = 0;

 private:
  struct conn {
    explicit conn(tcp::socket s) : sock(std::move(s)) {}
    tcp::socket sock;
    std::string in;
    std::array<char, 4096> buf{};
  };

  void accept() {
    acceptor_.async_accept([this](boost::system::error_code ec, tcp::socket s) {
      if (ec) return;
      ++connections;
      auto c = std::make_shared<conn>(std::move(s));
      conns_.push_back(c);
      read(c);
      accept();
    });
  }

  void read(const std::shared_ptr<conn>& c) {
    c->sock.async_read_some(
        asio::buffer(c->buf), [this, c](boost::system::error_code ec, std::size_t n) {
          if (ec) return;
          c->in.append(c->buf.data(), n);
          for (std::size_t end; (end = c->in.find("\r\n\r\n")) != std::string::npos;) {
            c->in.erase(0, end + 4);
            ++requests;
            if (mode_ == mode::hang) continue;
            auto out = std::make_shared<std::string>(
                "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\nContent-Length: " +
                std::to_string(body_.size()) + "\r\n\r\n" + body_);
            asio::async_write(c->sock, asio::buffer(*out),
                              [out, c](boost::system::error_code, std::size_t) {});
          }
          read(c);
        });
  }

  tcp::acceptor acceptor_;
  mode mode_;
  std::string body_;
  std::vector<std::weak_ptr<conn>> conns_;
};

config::load fast_load() {
  config::load l;
  l.scrape_interval = 20ms;
  l.scrape_timeout = 300ms;
  return l;
}

struct Scraper : ::testing::Test {
  std::shared_ptr<load::model> make_model(const config::load& l) {
    return std::make_shared<load::model>(l, std::vector<std::string>{"room1"});
  }
  std::vector<scrape_target> targets_for(const http_stub& s) {
    return {{0, "room1", "127.0.0.1", s.port(), "/metrics"}};
  }
  asio::io_context io{1};
};

TEST_F(Scraper, RealSynapseBodiesAreSuccesses) {
  const std::string body = read_real("room1.txt");
  ASSERT_FALSE(body.empty());
  http_stub stub(io, http_stub::mode::answer, body);
  const auto opts = fast_load();
  auto model = make_model(opts);
  int results = 0;
  auto s = std::make_unique<scraper>(io, targets_for(stub), opts, model, [&] { ++results; });
  s->start();
  ASSERT_TRUE(drive(io, [&] { return model->status(0).scrapes_ok >= 3; }));
  const auto& st = model->status(0);
  EXPECT_EQ(st.scrapes_failed, 0u) << st.last_error;
  EXPECT_EQ(st.last_error, "");
  EXPECT_GE(results, 3);
  EXPECT_EQ(stub.connections, 1) << "keep-alive: one connection for every scrape";
  EXPECT_FALSE(std::isnan(st.cpu));
  s->stop();
  const int seen = results;
  stub.close();
  EXPECT_TRUE(drain(io));
  EXPECT_TRUE(s->idle());
  EXPECT_EQ(results, seen) << "no callback after stop()";
}

TEST_F(Scraper, AnAcceptingServerThatNeverAnswersIsATimeout) {
  http_stub stub(io, http_stub::mode::hang, "");
  auto opts = fast_load();
  opts.scrape_timeout = 100ms;
  auto model = make_model(opts);
  scraper s(io, targets_for(stub), opts, model, nullptr);
  s.start();
  ASSERT_TRUE(drive(io, [&] { return model->status(0).scrapes_failed >= 1; }));
  const auto& st = model->status(0);
  EXPECT_EQ(st.scrapes_ok, 0u);
  EXPECT_EQ(st.last_error, "timed out");
  EXPECT_TRUE(st.stalled) << "a timeout is stall evidence (load/model.hpp)";
  EXPECT_GE(stub.requests, 1);
  s.stop();
  stub.close();
  EXPECT_TRUE(drain(io));
  EXPECT_TRUE(s.idle());
}

TEST_F(Scraper, NothingListeningIsUnreachable) {
  std::uint16_t port;
  {
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    port = a.local_endpoint().port();
  }  // closed: connections to it are refused
  const auto opts = fast_load();
  auto model = make_model(opts);
  scraper s(io, {{0, "room1", "127.0.0.1", port, "/metrics"}}, opts, model, nullptr);
  s.start();
  ASSERT_TRUE(drive(io, [&] { return model->status(0).consecutive_failures >= 1; }));
  EXPECT_EQ(model->status(0).last_error.rfind("connect: ", 0), 0u) << model->status(0).last_error;
  EXPECT_FALSE(model->status(0).stalled);
  s.stop();
  EXPECT_TRUE(drain(io));
}

// Liveness is counted when the coroutine is spawned, not when it first runs.
TEST_F(Scraper, LiveFromSpawnUntilUnwound) {
  http_stub stub(io, http_stub::mode::answer, read_real("main.txt"));
  const auto opts = fast_load();
  scraper s(io, targets_for(stub), opts, make_model(opts), nullptr);
  EXPECT_TRUE(s.idle());
  s.start();
  EXPECT_FALSE(s.idle()) << "spawned, not yet run";
  s.stop();
  EXPECT_FALSE(s.idle());
  stub.close();
  EXPECT_TRUE(drain(io));
  EXPECT_TRUE(s.idle());
}

// A request is in flight (the stub has read it and will never answer) when the scraper is
// stopped, and the scraper and the model are destroyed at once, as a reload does.
TEST_F(Scraper, StopInFlightThenDestroyScraperAndModel) {
  http_stub stub(io, http_stub::mode::hang, "");
  auto opts = fast_load();
  opts.scrape_timeout = 10s;  // the scrape is still waiting when it is stopped
  auto model = make_model(opts);
  std::weak_ptr<load::model> watch = model;
  int results = 0;
  auto s = std::make_unique<scraper>(io, targets_for(stub), opts, model, [&] { ++results; });
  s->start();
  ASSERT_TRUE(drive(io, [&] { return stub.requests >= 1; }));
  s->stop();
  s.reset();
  model.reset();
  EXPECT_FALSE(watch.expired()) << "the coroutine still holds it";
  stub.close();
  EXPECT_TRUE(drain(io));
  EXPECT_TRUE(watch.expired()) << "the coroutine unwound and let go";
  EXPECT_EQ(results, 0);
}

// Destroyed without stop() while the resolver, timer or socket is busy: the destructor stops.
TEST_F(Scraper, DestroyWithoutStop) {
  http_stub stub(io, http_stub::mode::answer, read_real("main.txt"));
  const auto opts = fast_load();
  auto model = make_model(opts);
  auto s = std::make_unique<scraper>(io, targets_for(stub), opts, model, nullptr);
  s->start();
  ASSERT_TRUE(drive(io, [&] { return stub.requests >= 1; }));
  s.reset();
  model.reset();
  stub.close();
  EXPECT_TRUE(drain(io));
}

// The scraper goes first and the io_context is destroyed with the coroutines still pending,
// never resumed (the agent's and scrape_live's shutdown order): the frames free their tasks.
TEST(ScraperShutdown, DroppedWithTheIoContext) {
  std::weak_ptr<load::model> watch;
  {
    asio::io_context io(1);
    http_stub stub(io, http_stub::mode::hang, "");
    const auto opts = fast_load();
    auto model = std::make_shared<load::model>(opts, std::vector<std::string>{"room1"});
    watch = model;
    auto s = std::make_unique<scraper>(
        io, std::vector<scrape_target>{{0, "room1", "127.0.0.1", stub.port(), "/metrics"}}, opts,
        model, nullptr);
    s->start();
    ASSERT_TRUE(drive(io, [&] { return stub.requests >= 1; }));
    s.reset();
    model.reset();
  }
  EXPECT_TRUE(watch.expired());
}

}  // namespace
}  // namespace spoa::agent
