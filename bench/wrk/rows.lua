-- wrk script of bench/run's HTTP rows. Arguments after `--`:
--   plain                   GET the URL as given (/healthz)
--   token  <file>           every request carries the one token in <file>
--   tokens <file> <threads> each token in <file> is sent once: thread i of <threads> takes
--                           lines i, i + threads, ...; a thread that has sent its share stops
-- done() prints one line for bench/run:
--   result requests=N secs=S p50_ms=X p99_ms=Y errors=E [repeats=R]
-- where secs spans the first request to the last answer (a thread that runs out of tokens
-- stops early, so wrk's own duration would overstate it) and errors counts statuses >= 400
-- and socket errors. repeats counts requests sent again after a share ran out (wrk may
-- still write to other connections in the loop turn in which a thread stops).

local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
  int clock_gettime(int clock_id, bench_timespec *tp);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")
local function now_us()
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) * 1e6 + tonumber(ts.tv_nsec) / 1e3
end

-- Setup phase: number the threads and keep them for done().
local threads = {}
function setup(thread)
  thread:set("index", #threads)
  table.insert(threads, thread)
end

-- Running phase, one copy per thread.
-- Globals, so that done() can read them with thread:get().
local requests = {}
local next_request = 0
repeats = 0
first_us = nil
last_us = nil
shares = false

local function bearer(token)
  return wrk.format("GET", wrk.path, { ["Authorization"] = "Bearer " .. token })
end

function init(args)
  local mode = args[1] or "plain"
  if mode == "plain" then
    requests[1] = wrk.format("GET", wrk.path)
  elseif mode == "token" then
    local file = assert(io.open(args[2], "r"))
    requests[1] = bearer(file:read("*l"))
    file:close()
  elseif mode == "tokens" then
    local count = tonumber(args[3])
    local line_no = 0
    for line in io.lines(args[2]) do
      if line_no % count == index then
        table.insert(requests, bearer(line))
      end
      line_no = line_no + 1
    end
    shares = true
  else
    error("unknown mode " .. mode)
  end
end

function request()
  if first_us == nil then first_us = now_us() end
  if shares then
    if next_request >= #requests then
      repeats = repeats + 1
      wrk.thread:stop()
      return requests[#requests]
    end
    next_request = next_request + 1
    return requests[next_request]
  end
  return requests[1]
end

function response(status, headers, body)
  last_us = now_us()
  if shares and next_request >= #requests then
    wrk.thread:stop()
  end
end

function done(summary, latency, _)
  local first, last, repeated = nil, nil, 0
  for _, thread in ipairs(threads) do
    local f, l = thread:get("first_us"), thread:get("last_us")
    if f and (first == nil or f < first) then first = f end
    if l and (last == nil or l > last) then last = l end
    repeated = repeated + (thread:get("repeats") or 0)
  end
  local secs = (first and last) and (last - first) / 1e6 or summary.duration / 1e6
  local e = summary.errors
  io.write(string.format(
    "result requests=%d secs=%.3f p50_ms=%.3f p99_ms=%.3f errors=%d repeats=%d\n",
    summary.requests, secs, latency:percentile(50) / 1e3, latency:percentile(99) / 1e3,
    e.connect + e.read + e.write + e.status + e.timeout, repeated))
end
