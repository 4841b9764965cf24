-- Deliver signed Stripe events, and count how the webhook answered them.
--
-- BENCH_WEBHOOK_EVENTS names a file with one delivery per line:
-- "<Stripe-Signature header>\t<event JSON>". Every event appears in it more
-- than once, so duplicates arrive (some at the same moment, on two
-- connections) as they do from Stripe. Each wrk thread starts at its own
-- offset in the file and cycles through it.

new_events, duplicates, failures = 0, 0, 0
local deliveries, position = {}, 1
local threads = {}

function setup(thread)
  thread:set("offset", #threads * 7919)
  table.insert(threads, thread)
end

function init(args)
  for line in io.lines(os.getenv("BENCH_WEBHOOK_EVENTS")) do
    local tab = line:find("\t", 1, true)
    local headers = {["Content-Type"] = "application/json", ["Stripe-Signature"] = line:sub(1, tab - 1)}
    table.insert(deliveries, wrk.format("POST", nil, headers, line:sub(tab + 1)))
  end
  position = (offset or 0) % #deliveries + 1
end

function request()
  local delivery = deliveries[position]
  position = position % #deliveries + 1
  return delivery
end

function response(status, headers, body)
  if status ~= 200 then
    failures = failures + 1
  elseif body:find('"duplicate":%s*true') then
    duplicates = duplicates + 1
  else
    new_events = new_events + 1
  end
end

function done(summary, latency, requests)
  local totals = {new_events = 0, duplicates = 0, failures = 0}
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + thread:get(name)
    end
  end
  for name, value in pairs(totals) do
    io.write(string.format("counter %s %d\n", name, value))
  end
end
