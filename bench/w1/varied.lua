-- wrk script for W1b: POSTs GraphQL requests taken in turn from BODIES (a file, one JSON body a
-- line), each thread starting at its own place in the list, and checks every response: HTTP
-- 200, no `errors`, a `nodes` list. Anything else counts as a failure.
local bodies_file = os.getenv("BODIES")
local authorization = os.getenv("AUTHORIZATION")
local threads = {}
local counter = 0

function setup(thread)
  thread:set("id", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

function init(args)
  failures = 0
  first_failure = ""
  bodies = {}
  for line in io.lines(bodies_file) do
    table.insert(bodies, line)
  end
  -- Threads start far apart in the list, so they do not ask the same thing at the same time.
  next_body = 1 + (id * 7919) % #bodies
  headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
  if authorization and authorization ~= "" then
    headers["Authorization"] = authorization
  end
end

function request()
  local body = bodies[next_body]
  next_body = next_body % #bodies + 1
  return wrk.format("POST", nil, headers, body)
end

function response(status, headers, response_body)
  if status ~= 200 or string.find(response_body, '"errors"', 1, true)
      or not string.find(response_body, '"nodes"', 1, true) then
    failures = failures + 1
    if first_failure == "" then
      first_failure = status .. " " .. string.sub(response_body, 1, 300)
    end
  end
end

function done(summary, latency, requests)
  local failed, sample = 0, ""
  for _, thread in ipairs(threads) do
    failed = failed + thread:get("failures")
    local first = thread:get("first_failure")
    if sample == "" and first ~= nil then sample = first end
  end
  io.write(string.format(
    "W1RESULT requests=%d seconds=%.3f rps=%.1f p50_ms=%.3f p99_ms=%.3f max_ms=%.3f failed=%d errors=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency.max / 1000,
    failed, summary.errors.connect + summary.errors.read + summary.errors.write
      + summary.errors.status + summary.errors.timeout))
  if sample ~= "" then
    io.write("W1FAILURE " .. string.gsub(sample, "\n", " ") .. "\n")
  end
end
