-- wrk script: GET the paths of KETNOI_BENCH_PATHS (one per line, written
-- by bench/search), each thread cycling through them from its own offset.
-- Prints one machine-readable line at the end: "RESULT rps p50_ms p99_ms
-- errors".

local paths = {}
local counter = 0
local index = 1

function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 7)
end

function init(args)
  for line in io.lines(os.getenv("KETNOI_BENCH_PATHS") or "paths.txt") do
    paths[#paths + 1] = line
  end
  index = (offset or 0) % #paths + 1
end

function request()
  local path = paths[index]
  index = index % #paths + 1
  return wrk.format("GET", path)
end

function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read +
                 summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %.1f %.3f %.3f %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
