-- wrk -s botcall_register.lua: POST /register for botcalld, one BotAuth token per agent id.
-- Env TOKENS = file of "AGENT_ID TOKEN" lines (from `botload mint`). Requests cycle through
-- the lines in order: a file of a few hundred ids re-sends the same tokens (the daemon's
-- verified-token cache answers); a file larger than --token-cache (default 10000) misses the
-- FIFO cache every time (a signature check per request). All requests are pre-formatted in
-- init() so wrk spends little CPU per request.
local reqs = {}
local n = 0
local i = 0
function init(args)
  local path = os.getenv("TOKENS") or error("TOKENS not set")
  for line in io.lines(path) do
    local id, tok = line:match("^(%S+)%s+(%S+)$")
    if id then
      n = n + 1
      local body = string.format('{"agent_id":"%s","endpoint":"tcp://127.0.0.1:%d"}', id, 20000 + (n % 40000))
      reqs[n] = wrk.format("POST", "/register",
        {["Content-Type"] = "application/json", ["Authorization"] = "Bearer " .. tok}, body)
    end
  end
  if n == 0 then error("no tokens in " .. path) end
end
function request()
  i = i + 1
  if i > n then i = 1 end
  return reqs[i]
end
