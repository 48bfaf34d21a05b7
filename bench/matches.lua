-- wrk script: POST /v1/matches with the requests of requests.tsv (written
-- by requests.py), each thread cycling through them from its own offset.
-- Prints one machine-readable line at the end: "RESULT rps p50_ms p99_ms
-- errors".

local bodies = {}
local counter = 0
local index = 1

local function split(line)
  local fields = {}
  for field in (line .. "\t"):gmatch("([^\t]*)\t") do
    fields[#fields + 1] = field
  end
  return fields
end

local function list(literal)
  -- "{a,b}" -> ["a","b"]
  local items = {}
  for item in literal:gmatch("[^{},]+") do
    items[#items + 1] = '"' .. item .. '"'
  end
  return "[" .. table.concat(items, ",") .. "]"
end

local function body(f)
  local profile = {}
  if f[5] ~= "" then profile[#profile + 1] = '"age":' .. f[5] end
  if f[6] ~= "" then profile[#profile + 1] = '"gender":"' .. f[6] .. '"' end
  if f[7] ~= "" then profile[#profile + 1] = '"victim_status":"' .. f[7] .. '"' end
  if f[8] ~= "" then profile[#profile + 1] = '"languages":' .. list(f[8]) end
  if f[9] ~= "" then profile[#profile + 1] = '"documents":' .. list(f[9]) end
  return '{"lon":' .. f[1] .. ',"lat":' .. f[2] .. ',"needs":' .. list(f[3]) ..
         ',"radius_m":' .. f[4] .. ',"profile":{' .. table.concat(profile, ",") .. '}}'
end

function setup(thread)
  counter = counter + 1
  thread:set("offset", counter * 997)
end

function init(args)
  local path = os.getenv("KETNOI_BENCH_REQUESTS") or "requests.tsv"
  for line in io.lines(path) do
    bodies[#bodies + 1] = body(split(line))
  end
  index = (offset or 0) % #bodies + 1
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
  -- The matcher serves caseworkers: a key made by bench/matches.
  wrk.headers["Authorization"] = "Bearer " .. (os.getenv("KETNOI_BENCH_KEY") or "")
end

function request()
  local b = bodies[index]
  index = index % #bodies + 1
  return wrk.format(nil, "/v1/matches", nil, b)
end

function done(summary, latency, requests)
  local errors = summary.errors.status + summary.errors.connect + summary.errors.read +
                 summary.errors.write + summary.errors.timeout
  io.write(string.format("RESULT %.1f %.3f %.3f %d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, errors))
end
