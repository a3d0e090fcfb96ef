-- wrk script: POST a prescription to the URL's path (/v1/prescriptions, or a ceiling's endpoint)
-- with a distinct Idempotency-Key per request and a patient drawn from a pool (so patient
-- histories build up and the history rules do real work).
-- Env: RX_KEY (sandbox key), RX_TODAY (YYYY-MM-DD), RX_NHS (file of valid NHS numbers),
--      RX_DELAY_MS (think time per request, for an approximately fixed rate).

local key = os.getenv("RX_KEY")
local today = os.getenv("RX_TODAY")
local delay_ms = tonumber(os.getenv("RX_DELAY_MS") or "0")
local nhs = {}
for line in io.lines(os.getenv("RX_NHS")) do nhs[#nhs + 1] = line end

local counter = 0
local thread_id = 0
local threads = {}

function setup(thread)
  thread:set("tid", thread_id)
  thread_id = thread_id + 1
  table.insert(threads, thread)
end

function init(args)
  math.randomseed(os.time() + (tid or 0) * 7919)
  run = tostring(os.time()) .. "-" .. tostring(math.random(1, 1000000000))
end

local template = [[{"clinic_reference":"LOAD-%d","type":"private","issued_on":"%s",
"authority":{"kind":"paper_fp10pcd","serial_number":"PCD%07d"},
"prescriber":{"given_name":"Priya","family_name":"Shah","registration":{"body":"gmc","number":"7012345"},
"private_prescriber_code":"123456","address":{"lines":["1 Harley Street"],"town":"London","postcode":"W1G 9QD"}},
"patient":{"nhs_number":"%s","given_name":"%s","family_name":"Load","date_of_birth":"19%02d-01-%02d",
"email":"p%d@example.com","address":{"lines":["%d High Street"],"town":"Leeds","postcode":"LS1 4AP"}},
"items":[{"product_code":"%s","quantity":28,"quantity_in_words":"twenty-eight",
"dose":{"units":1,"times_per_day":1},"instructions":"Take ONE each morning","days_supply":28}]}]]
local products = {"CONCERTA-XL-36", "ELVANSE-ADULT-30", "MEDIKINET-XL-20", "STRATTERA-40"}

-- A letters-only name per patient number (names are normalised to letters for matching).
local function letters(n)
  local s = ""
  repeat
    s = s .. string.char(97 + n % 26)
    n = math.floor(n / 26)
  until n == 0
  return "P" .. s
end

function request()
  counter = counter + 1
  local p = (counter * 7 + (tid or 0) * 131) % #nhs + 1
  local body = string.format(template, counter, today, counter % 10000000, nhs[p], letters(p), 50 + p % 50, (p % 28) + 1, p, p,
    products[(counter % #products) + 1])
  local headers = {
    ["Authorization"] = "Bearer " .. key,
    ["Content-Type"] = "application/json",
    ["Idempotency-Key"] = "load-" .. run .. "-" .. tostring(tid) .. "-" .. tostring(counter),
  }
  return wrk.format("POST", wrk.path, headers, body)
end

function delay()
  return delay_ms
end

local statuses = {}
function response(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
  io.write(string.format("RESULT req_per_s=%.0f p50_ms=%.2f p99_ms=%.2f p999_ms=%.2f requests=%d errors=%d\n",
    summary.requests / (summary.duration / 1e6),
    latency:percentile(50) / 1000, latency:percentile(99) / 1000, latency:percentile(99.9) / 1000,
    summary.requests, summary.errors.status + summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
