-- wrk script: the Matrix request mix of tests/bench/request_mix.hpp, as HTTP requests.
--   25 sync | 30 room endpoints (10,000 rooms, skewed, all three room-ID encodings) |
--    8 stream writers | 12 federation (X-Matrix origin) | 8 media | 17 main
-- Client requests carry "Authorization: Bearer syt_<base64 localpart>_..." so that HAProxy derives
-- the `user` key; federation requests carry an X-Matrix header so that it derives `origin`.
-- Each wrk thread seeds its own generator (thread id), so runs are repeatable.
-- `wrk ... -s matrix_mix.lua URL -- bearer`: client traffic only, every request with an
-- "Authorization: Bearer" header (the federation share becomes room requests; one token in five
-- is opaque, not syt_, so HAProxy takes its xxh64 branch).

local rooms, users, origins = 10000, 5000, 200
local counter = 0
local bearer_only = false

function setup(thread)
  counter = counter + 1
  thread:set("seed", counter)
end

function init(args)
  math.randomseed(1000 + (seed or 0))
  bearer_only = args[1] == "bearer"
end

local function pick(n) return math.random(0, n - 1) end

local function skewed(n)
  local u = math.random()
  local i = math.floor(n * u * u * u)
  if i >= n then i = n - 1 end
  return i
end

local function room_id(i, enc)
  local id = "R" .. i .. "xq"
  if enc == 1 then return "%21" .. id .. "%3Aexample.org" end
  if enc == 2 then return "!" .. id .. "%3Aexample.org" end
  return "!" .. id .. ":example.org"
end

local function client_headers()
  local u = pick(users)
  if bearer_only and u % 5 == 0 then
    return { ["Authorization"] = "Bearer mat_Zk9x" .. u .. "QpLmNoRsTuVwXyZ0123456789abcdef" }
  end
  return { ["Authorization"] = "Bearer syt_dXNlc" .. u .. "_AbCdEfGhIjKlMnOpQrSt_0a1b2c" }
end

local mains = {
  { "GET", "/_matrix/client/versions" },
  { "GET", "/_matrix/client/v3/capabilities" },
  { "GET", "/_matrix/client/v3/account/whoami" },
  { "POST", "/_matrix/client/v3/keys/query" },
  { "POST", "/_matrix/client/v3/keys/upload" },
  { "GET", "/_matrix/client/v3/pushrules/" },
  { "GET", "/_matrix/client/v3/profile/%40alice%3Aexample.org" },
  { "POST", "/_matrix/client/v3/login" },
}

function request()
  local w = pick(100)
  if bearer_only and w >= 63 and w < 75 then w = 25 + (w - 63) end  -- federation -> room
  local method, path, headers = "GET", nil, nil
  if w < 25 then
    headers = client_headers()
    local v = (pick(10) < 9) and "v3" or "r0"
    path = "/_matrix/client/" .. v .. "/sync?since=s" .. (70000 + pick(5000)) .. "_4483_1934&timeout=30000"
  elseif w < 55 then
    headers = client_headers()
    local base = "/_matrix/client/v3/rooms/" .. room_id(skewed(rooms), pick(3))
    local k = pick(10)
    if k < 4 then
      method, path = "PUT", base .. "/send/m.room.message/m" .. pick(1000000)
    elseif k < 7 then
      path = base .. "/messages?dir=b&limit=30"
    elseif k < 8 then
      path = base .. "/state/m.room.power_levels/"
    elseif k < 9 then
      path = base .. "/members"
    else
      path = base .. "/context/%24ev" .. pick(1000) .. "?limit=10"
    end
  elseif w < 63 then
    headers = client_headers()
    local room = room_id(skewed(rooms), pick(3))
    local k = pick(3)
    if k == 0 then
      method, path = "PUT", "/_matrix/client/v3/rooms/" .. room .. "/typing/%40u" .. pick(users) .. "%3Aexample.org"
    elseif k == 1 then
      method, path = "POST", "/_matrix/client/v3/rooms/" .. room .. "/receipt/m.read/%24ev" .. pick(100000)
    else
      method, path = "PUT", "/_matrix/client/v3/sendToDevice/m.room.encrypted/txn" .. pick(100000)
    end
  elseif w < 75 then
    headers = { ["Authorization"] = 'X-Matrix origin="server' .. pick(origins) ..
      '.example.net",destination="example.org",key="ed25519:a1",sig="c2lnbmF0dXJl"' }
    local k = pick(10)
    if k < 5 then
      method, path = "PUT", "/_matrix/federation/v1/send/" .. (1700000000000 + pick(100000))
    elseif k < 7 then
      path = "/_matrix/federation/v1/event/%24ev" .. pick(100000)
    elseif k < 8 then
      method, path = "POST", "/_matrix/key/v2/query"
    else
      path = "/_matrix/federation/v1/state_ids/" .. room_id(skewed(rooms), 1) .. "?event_id=%24ev" .. pick(1000)
    end
  elseif w < 83 then
    headers = client_headers()
    local id = "example.org/m" .. pick(100000)
    if pick(2) == 1 then
      path = "/_matrix/client/v1/media/download/" .. id
    else
      path = "/_matrix/client/v1/media/thumbnail/" .. id .. "?width=96&height=96"
    end
  else
    headers = client_headers()
    local m = mains[pick(#mains) + 1]
    method, path = m[1], m[2]
  end
  local body = nil
  if method ~= "GET" then body = "{}" end
  return wrk.format(method, path, headers, body)
end

-- One machine-readable line for e2e.py, after wrk's own report.
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("E2E requests=%d duration_us=%d non2xx=%d errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status,
    e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
