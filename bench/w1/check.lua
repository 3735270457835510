-- wrk script for W1: POSTs one GraphQL query (BODY, from the environment) and checks every
-- response body: HTTP 200, no `errors`, exactly EXPECT users (EXPECT `"email"` keys). Anything
-- else counts as a failure, so a server answering 200 with an error inside cannot look fast.
local body = os.getenv("BODY")
local authorization = os.getenv("AUTHORIZATION")
local expect = tonumber(os.getenv("EXPECT") or "50")
local threads = {}

function setup(thread)
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
end

function response(status, headers, response_body)
  local _, users = string.gsub(response_body, '"email"', "")
  if status ~= 200 or string.find(response_body, '"errors"', 1, true) or users ~= expect then
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
