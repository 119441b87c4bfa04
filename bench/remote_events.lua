-- wrk script: POST Stellantis RemoteEvents bodies, every event new.
--
-- Our webhook ignores an event it already holds, so a benchmark that repeats bodies would
-- measure the duplicate path. Event number n (unique in the whole run: BENCH_EVENT_OFFSET
-- separates the phases, the thread id separates wrk threads) gives each event its own
-- eventDate (base + n ms) and its action (bench-<n mod BENCH_ACTIONS>, seeded by
-- bench/seed.py), so a 100-event body touches 100 different actions, each a few times per
-- run, with a later Pending status each time — as real traffic would.
--
-- Environment: BENCH_SECRET_HEADER (X-Fleetportal-Secret value), BENCH_EVENTS (events per
-- body; 0 = plain GET), BENCH_ACTIONS, BENCH_EVENT_OFFSET, BENCH_THREADS (same as wrk -t).
-- done() prints one line "BENCH_JSON {...}" that bench/drive.py reads.

local events_per_body = tonumber(os.getenv("BENCH_EVENTS") or "1")
local actions = tonumber(os.getenv("BENCH_ACTIONS") or "50000")
local offset = tonumber(os.getenv("BENCH_EVENT_OFFSET") or "0")
local nthreads = tonumber(os.getenv("BENCH_THREADS") or "1")
local secret = os.getenv("BENCH_SECRET_HEADER") or ""
local base = 1795600800 -- 2026-11-25T10:00:00Z
local statuses = { "Accepted", "WakingUpVehicle", "CheckingVehicle", "SentToVehicle" }

local threads = {}
local next_id = 0

function setup(thread)
   thread:set("tid", next_id)
   next_id = next_id + 1
   table.insert(threads, thread)
end

local headers, counter

function init(args)
   counter = 0
   non2xx = 0
   headers = {
      ["Content-Type"] = "application/json",
      ["X-Fleetportal-Secret"] = secret,
   }
end

local function event(n)
   local ms = n % 1000
   local date = os.date("!%Y-%m-%dT%H:%M:%S", base + (n - ms) / 1000) .. string.format(".%03dZ", ms)
   local status = statuses[math.floor(n / actions) % #statuses + 1]
   return string.format(
      '{"remoteActionId":"bench-%06d","vin":"VR3BENCH000000001","eventDate":"%s","remoteType":"Horn",'
         .. '"eventStatus":{"type":"Pending","status":"%s"}}',
      n % actions, date, status
   )
end

function request()
   if events_per_body == 0 then
      return wrk.format("GET") -- BENCH_EVENTS=0: a plain GET of the URL (the bare-view scale row)
   end
   local seq = counter * nthreads + tid
   counter = counter + 1
   local parts = {}
   for j = 0, events_per_body - 1 do
      parts[j + 1] = event(offset + seq * events_per_body + j)
   end
   local body = '{"callbackId":"bench-callback","attributes":[],"events":[' .. table.concat(parts, ",") .. "]}"
   return wrk.format("POST", nil, headers, body)
end

function response(status, hdrs, body)
   if status < 200 or status > 299 then
      non2xx = non2xx + 1
   end
end

function done(summary, latency, requests)
   local bad = 0
   for _, thread in ipairs(threads) do
      bad = bad + (thread:get("non2xx") or 0)
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_JSON {"requests":%d,"duration_us":%d,"non2xx":%d,"connect_errors":%d,"read_errors":%d,'
         .. '"write_errors":%d,"timeouts":%d,"latency_p50_us":%d,"latency_p99_us":%d}\n',
      summary.requests, summary.duration, bad, e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(99)
   ))
end
