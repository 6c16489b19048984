-- wrk script for bench/registry: BENCH_OP get | list | create | patch,
-- BENCH_TOKEN the bearer token, BENCH_IDS a file of subprocessor ids.
-- patch: each id is written by one connection at a time, with the version the
-- last answer carried in If-Match (so no 412 is expected).
local op = os.getenv("BENCH_OP")
local token = os.getenv("BENCH_TOKEN")
local threads = 0
local ids, free, version = {}, {}, {}
local counter = 0

function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end

function init(args)
  for line in io.lines(os.getenv("BENCH_IDS")) do
    ids[#ids + 1] = line
  end
  math.randomseed(tid + 1)
  if op == "patch" then
    for i = 1, 32 do -- 16 per thread, of the first 64 ids
      local id = ids[i * 2 - 1 + tid]
      free[#free + 1] = id
      version[id] = tonumber(os.getenv("BENCH_VERSION") or "1")
    end
  end
end

local function headers(extra)
  local h = {["Authorization"] = "Bearer " .. token,
             ["Content-Type"] = op == "patch" and "application/merge-patch+json" or "application/json"}
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

function request()
  counter = counter + 1
  if op == "get" then
    return wrk.format("GET", "/v1/subprocessors/" .. ids[math.random(#ids)], headers())
  elseif op == "list" then
    return wrk.format("GET", "/v1/subprocessors?status=active&limit=50", headers())
  elseif op == "create" then
    local body = string.format('{"legal_name":"Wrk %d-%d-%d","hq_country":"DE","category":"hosting",'
      .. '"role":"subprocessor","purpose":{"de":"Last","en":"Load"},"data_categories":["master_contact"],'
      .. '"data_subjects":["customers"],"locations":[{"country":"DE","region":"eu-central","role":"hosting"}]}',
      tid, counter, os.time())
    return wrk.format("POST", "/v1/subprocessors", headers(), body)
  else
    local id = table.remove(free)
    return wrk.format("PATCH", "/v1/subprocessors/" .. id, headers({["If-Match"] = '"' .. version[id] .. '"'}),
      '{"notes":"bench ' .. counter .. '"}')
  end
end

function response(status, hdrs, body)
  if op ~= "patch" then return end
  local id = body:match('"id":"(sp_[^"]+)"') or body:match('/v1/subprocessors/(sp_[^"]+)')
  if not id then return end
  local v = body:match('"version":(%d+)')
  if v then version[id] = tonumber(v) end
  free[#free + 1] = id
end
