-- The `lua` variant of tests/bench/e2e.py: an in-process HAProxy Lua action computing the same
-- route as synapse-spoa's table for the request mix (class by path, then the room, user or
-- origin key placed by highest-random-weight hashing over the pool's servers), setting the same
-- txn.synapse.backend / txn.synapse.server variables. No live load, no memory of keys: this is the
-- cost floor of "routing logic inside HAProxy" (load-balancing.md §1.8).

local pools = {
  room = { backend = "synapse_room", servers = { "room1", "room2", "room3", "room4" } },
  client_sync = { backend = "synapse_client_sync", servers = { "client_sync1" } },
  federation_reader = { backend = "synapse_federation_reader", servers = { "federation_reader1" } },
  media = { backend = "synapse_media", servers = { "media1" } },
  main = { backend = "synapse_main", servers = { "main" } },
}

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- FNV-1a, 32 bits, then MurmurHash3's fmix32 finaliser: FNV alone barely mixes the last bytes
-- into the high bits, and the server name is the last part of the hashed string.
local function fnv(s)
  local h = 2166136261
  for i = 1, #s do
    h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff
  end
  h = h ~ (h >> 16)
  h = (h * 0x85ebca6b) & 0xffffffff
  h = h ~ (h >> 13)
  h = (h * 0xc2b2ae35) & 0xffffffff
  return h ~ (h >> 16)
end

local function place(pool, key)
  local servers = pool.servers
  if #servers == 1 or key == nil or key == "" then return servers[1] end
  local best, best_score = servers[1], -1
  for _, s in ipairs(servers) do
    local score = fnv(key .. "\0" .. s)
    if score > best_score then best, best_score = s, score end
  end
  return best
end

local fed_room = { state = true, state_ids = true, backfill = true, get_missing_events = true,
  event_auth = true, make_join = true, make_leave = true, make_knock = true, send_join = true,
  send_leave = true, send_knock = true, invite = true, timestamp_to_event = true,
  hierarchy = true, exchange_third_party_invite = true }

local function classify(path)
  if path:find("^/_matrix/media/") or path:find("^/_matrix/client/v1/media/")
      or path:find("^/_matrix/federation/v1/media/") then
    return "media", nil
  end
  local ver, rest = path:match("^/_matrix/client/([^/]+)/(.*)$")
  if ver then
    if rest == "sync" or rest == "events" or rest == "initialSync" then return "client_sync", "user" end
    if rest:find("^sendToDevice/") or rest:find("^presence/") then return "client_sync", "user" end
    local room, tail = rest:match("^rooms/([^/]+)/(.*)$")
    if room then
      if tail:find("^typing/") or tail:find("^receipt/") or tail == "read_markers" then
        return "client_sync", "user"
      end
      if tail == "forget" or tail == "upgrade" or tail:find("^report") then return "main", nil end
      return "room", unescape(room)
    end
    return "main", nil
  end
  local fv, op, froom = path:match("^/_matrix/federation/(v[12])/([^/]+)/([^/]+)")
  if fv and fed_room[op] then return "room", unescape(froom) end
  if path:find("^/_matrix/federation/") or path:find("^/_matrix/key/v2/query") then
    return "federation_reader", "origin"
  end
  return "main", nil
end

core.register_action("synapse_route", { "http-req" }, function(txn)
  local path = txn.sf:path()
  local pool_name, key = classify(path)
  if key == "user" then
    key = txn:get_var("txn.synapse_user")
  elseif key == "origin" then
    key = txn:get_var("txn.synapse_origin")
  end
  local pool = pools[pool_name]
  txn:set_var("txn.synapse.backend", pool.backend)
  txn:set_var("txn.synapse.server", place(pool, key and tostring(key) or nil))
end)
