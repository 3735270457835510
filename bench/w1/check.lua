-- wrk script for W1 and W1b. It POSTs GraphQL requests and checks every response body, so a
-- server answering 200 with an error inside cannot look fast; anything else counts as a
-- failure.
--
-- W1: BODY (from the environment) every time; each response must be HTTP 200, without
-- `errors`, with exactly EXPECT users (EXPECT `"email"` keys).
-- W1b: the bodies of the file BODIES (one JSON body a line) in turn, each thread starting at
-- its own place in the list; each response must be HTTP 200, without `errors`, with a `nodes`
-- list.
local body = os.getenv("BODY")
local bodies_file = os.getenv("BODIES")
local authorization = os.getenv("AUTHORIZATION")
local expect = tonumber(os.getenv("EXPECT") or "50")
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
  wrk.method = "POST"
  wrk.body = body
  wrk.headers["Content-Type"] = "application/json"
  wrk.headers["Accept"] = "application/json"
  if authorization and authorization ~= "" then
    wrk.headers["Authorization"] = authorization
  end
  if bodies_file and bodies_file ~= "" then
    bodies = {}
    for line in io.lines(bodies_file) do
      table.insert(bodies, line)
    end
    -- Threads start far apart in the list, so they do not ask the same thing at the same time.
    next_body = 1 + (id * 7919) % #bodies
  end
end

function request()
  if bodies == nil then
    return wrk.request()
  end
  local chosen = bodies[next_body]
  next_body = next_body % #bodies + 1
  return wrk.format(nil, nil, nil, chosen)
end

local function acceptable(status, response_body)
  if status ~= 200 or string.find(response_body, '"errors"', 1, true) then
    return false
  end
  if bodies ~= nil then
    return string.find(response_body, '"nodes"', 1, true) ~= nil
  end
  local _, users = string.gsub(response_body, '"email"', "")
  return users == expect
end

function response(status, headers, response_body)
  if not acceptable(status, response_body) then
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
