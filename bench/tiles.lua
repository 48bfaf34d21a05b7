-- wrk script: GET the tile paths of KETNOI_BENCH_PATHS (one per line,
-- written by bench/tiles), each thread cycling through them from its own
-- offset. Sends no Accept-Encoding and no If-None-Match: every answer is a
-- tile rendered anew, uncompressed. Prints one machine-readable line at the
-- end: "RESULT tiles_per_s p50_ms p99_ms n200 n204 nother socket_errors
-- bytes200" (bytes200: body bytes of the 200 answers).

local paths = {}
local counter = 0
local threads = {}
local index = 1

function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 37)
  threads[#threads + 1] = thread
end

function init(args)
  for line in io.lines(os.getenv("KETNOI_BENCH_PATHS") or "paths.txt") do
    paths[#paths + 1] = line
  end
  index = (offset or 0) % #paths + 1
  ok, empty, other, bytes = 0, 0, 0, 0
end

function request()
  local path = paths[index]
  index = index % #paths + 1
  return wrk.format("GET", path)
end

function response(status, headers, body)
  if status == 200 then
    ok = ok + 1
    bytes = bytes + #body
  elseif status == 204 then
    empty = empty + 1
  else
    other = other + 1
  end
end

function done(summary, latency, requests)
  local n200, n204, nother, nbytes = 0, 0, 0, 0
  for _, thread in ipairs(threads) do
    n200 = n200 + thread:get("ok")
    n204 = n204 + thread:get("empty")
    nother = nother + thread:get("other")
    nbytes = nbytes + thread:get("bytes")
  end
  local errors = summary.errors.connect + summary.errors.read +
                 summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %.1f %.3f %.3f %d %d %d %d %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    n200, n204, nother, errors, nbytes))
end
