-- wrk -s botcall_lookup.lua: GET /lookup/{id} cycling over the ids in IDS (first word of each
-- line, e.g. a `botload mint` file whose agents were registered first). No auth: botcalld's
-- lookup is public.
local reqs = {}
local n = 0
local i = 0
function init(args)
  local path = os.getenv("IDS") or error("IDS not set")
  for line in io.lines(path) do
    local id = line:match("^(%S+)")
    if id then
      n = n + 1
      reqs[n] = wrk.format("GET", "/lookup/" .. id)
    end
  end
  if n == 0 then error("no ids in " .. path) end
end
function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
