-- wrk script for the push benchmark: the same requests as bench/load.py's Rotation.
-- Arguments: <base epoch ms> <spec file with "facility_id token" lines> <wrk thread count>.
-- Each wrk thread takes every n-th facility, so measured_at strictly increases per facility
-- (1 ms per report) whatever the thread count, and a facility is not sent again while its
-- previous report is unanswered (both servers echo facility_id): otherwise a slow request
-- can be overtaken by the facility's next one, and the server rightly answers 409.
-- Prints one BENCH_JSON line with the results.

local threads = {}
local counter = 1

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  base = tonumber(args[1])
  local nthreads = tonumber(args[3])
  mine = {}
  by_id = {}
  local index = 0
  for line in io.lines(args[2]) do
    local facility, token = line:match("^(%S+)%s+(%S+)$")
    if facility then
      if index % nthreads == id - 1 then
        local entry = {path = "/api/v1/facilities/" .. facility .. "/reports",
                       headers = {["Authorization"] = "Bearer " .. token, ["Content-Type"] = "application/json"},
                       sent = 0, busy = false}
        table.insert(mine, entry)
        by_id[facility] = entry
      end
      index = index + 1
    end
  end
  position = 0
  statuses = {}
end

local function iso(ms)
  return os.date("!%Y-%m-%dT%H:%M:%S", math.floor(ms / 1000)) .. string.format(".%03dZ", ms % 1000)
end

function request()
  for _ = 1, #mine do
    position = position % #mine + 1
    if not mine[position].busy then
      break
    end
  end
  local facility = mine[position]
  facility.busy = true
  local measured = iso(base + facility.sent)
  facility.sent = facility.sent + 1
  local body = '{"measured_at":"' .. measured .. '","seh":{"status":"open"},"units":[{"type":"ic_adult","staffed":10,"occupied":6,"available":4}]}'
  return wrk.format("POST", facility.path, facility.headers, body)
end

function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
  local facility = by_id[body:match('"facility_id":"([^"]+)"') or ""]
  if facility then
    facility.busy = false
  end
end

function done(summary, latency, requests)
  local merged = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      merged[status] = (merged[status] or 0) + count
    end
  end
  local parts = {}
  for status, count in pairs(merged) do
    table.insert(parts, string.format('"%d":%d', status, count))
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"statuses":{%s},"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"p50":%d,"p90":%d,"p99":%d,"max":%d,"mean":%f}}\n',
    summary.requests, summary.duration, table.concat(parts, ","), e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
