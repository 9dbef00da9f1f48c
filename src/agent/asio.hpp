#pragma once
// The one place that includes Asio. With g++ 12 and Boost 1.74, <utility> must precede Asio's
// coroutine headers (std::exchange is used before it is declared otherwise).

#include <utility>

#include <boost/asio.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace spoa::agent {
namespace asio = boost::asio;
using tcp = asio::ip::tcp;
template <typename T = void>
using awaitable = asio::awaitable<T>;
inline constexpr auto use_awaitable = asio::use_awaitable;
}  // namespace spoa::agent
