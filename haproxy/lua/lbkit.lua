-- lbkit for HAProxy 2.6 (Lua 5.3): reads every node's lbagent /lb line over HTTP, for sites
-- where the balancer cannot reach the agent-check port (5589), and applies it to the
-- backend's servers the way the agent-check would, without ever undoing an operator.
--
--   global
--       setenv LBKIT_BACKENDS   xroad        # backends whose servers are polled (comma list)
--       setenv LBKIT_AGENT_PORT 5588         # lbagent's health port on every server's address
--       lua-load /usr/share/lbkit/haproxy/lbkit.lua
--
-- Optional: LBKIT_INTERVAL (ms, 2000), LBKIT_FALL (3), LBKIT_RISE (2), LBKIT_TIMEOUT (ms,
-- the interval, at most 2000).
--
--   "down ..." / no valid answer   fall polls in a row -> MAINT (lbkit's own), rise good -> READY
--   "drain" / "maint"              DRAIN / MAINT at once until "ready" (or rise plain "up")
--   "up N%"                        weight N%
-- A server an operator put in DRAIN or MAINT (runtime API, lbadapter drain) is never set
-- READY by lbkit: it only lifts what it set itself, and only while the server still shows it.

local function setting(name, default)
  local v = os.getenv(name)
  if v == nil or v == "" then
    return default
  end
  return v
end

local interval = tonumber(setting("LBKIT_INTERVAL", "2000"))
local fall = tonumber(setting("LBKIT_FALL", "3"))
local rise = tonumber(setting("LBKIT_RISE", "2"))
local timeout = tonumber(setting("LBKIT_TIMEOUT", tostring(math.min(interval or 2000, 2000))))
local agent_port = tonumber(setting("LBKIT_AGENT_PORT", ""))
local backends = setting("LBKIT_BACKENDS", "")

-- parse reads an agent-check line as HAProxy does; nil and a reason for anything else.
local function parse(body)
  if type(body) ~= "string" then
    return nil, "no answer"
  end
  local line = body:match("^([^\r\n]*)[\r\n]")
  if not line then
    return nil, "incomplete line"
  end
  local r = {}
  line = line:gsub("#.*$", "")
  for w in line:gmatch("[^ \t,]+") do
    w = w:lower()
    if w == "up" or w == "down" or w == "stopped" or w == "fail" then
      r.health = w
    elseif w == "ready" or w == "drain" or w == "maint" then
      r.admin = w
    elseif w:match("^%d+%%$") then
      r.weight = tonumber(w:sub(1, -2))
    elseif w:match("^maxconn:%d+$") then
      r.maxconn = tonumber(w:sub(9))
    else
      return nil, "bad word"
    end
  end
  return r
end

local function clean(s)
  s = tostring(s or ""):gsub("[%c\128-\255]", "?")
  return s:sub(1, 120)
end

-- fetch GETs /lb over a plain TCP socket: HAProxy 2.6's core.httpclient() retries a refused
-- connection for seconds (its retries are not configurable before 2.7), which would stretch
-- fall x interval. Returns the body, or nil and why.
local function fetch(host, port)
  local sock = core.tcp()
  sock:settimeout(timeout / 1000)
  local ok, err = sock:connect(host, port)
  if not ok then
    sock:close()
    return nil, "unreachable: " .. tostring(err)
  end
  sock:send("GET /lb HTTP/1.0\r\nHost: " .. host .. "\r\nConnection: close\r\n\r\n")
  local resp, rerr = sock:receive("*a")
  sock:close()
  if not resp or resp == "" then
    return nil, "no answer: " .. tostring(rerr)
  end
  local code, body = resp:match("^HTTP/%d%.%d (%d%d%d)[^\r\n]*\r?\n.-\r?\n\r?\n(.*)$")
  if code ~= "200" then
    return nil, "/lb answered " .. clean(resp:match("^[^\r\n]*"))
  end
  return body
end

-- watch polls one server forever.
local function watch(bname, sname, srv)
  local addr = tostring(srv:get_addr())
  local host = addr:match("^(.*):%d+$") or addr
  local st = { healthy = true, admin = nil, fails = 0, oks = 0, applied = nil, pct = 100 }
  local label = bname .. "/" .. sname
  while true do
    local ok, body, ferr = pcall(fetch, host, agent_port)
    local r, why
    if not ok then
      why = "error: " .. clean(body)
    elseif not body then
      why = ferr
    else
      r, why = parse(body)
      if not r then
        why = "bad answer: " .. why
      end
    end
    local line = why
    if r then
      line = clean(body:match("^([^\r\n]*)"))
      if r.health == "down" or r.health == "stopped" or r.health == "fail" then
        st.fails, st.oks = st.fails + 1, 0
      elseif r.health == "up" then
        st.fails, st.oks = 0, st.oks + 1
      end
      if r.admin == "drain" or r.admin == "maint" then
        st.admin = r.admin
      elseif r.admin == "ready" or (r.health == "up" and st.oks >= rise) then
        st.admin = nil
      end
      if r.weight and r.weight ~= st.pct then
        st.pct = math.min(r.weight, 256)
        srv:set_weight(st.pct .. "%")
        core.Info("lbkit: " .. label .. " weight " .. st.pct .. "% (agent: " .. line .. ")")
      end
    else
      st.fails, st.oks = st.fails + 1, 0
    end
    if st.fails >= fall then
      st.healthy = false
    elseif st.oks >= rise then
      st.healthy = true
    end
    local want = nil
    if not st.healthy or st.admin == "maint" then
      want = "MAINT"
    elseif st.admin == "drain" then
      want = "DRAIN"
    end
    if want ~= st.applied then
      local status = tostring(srv:get_stats().status or "")
      local shows = st.applied and status:sub(1, #st.applied) == st.applied
      if st.applied and not shows then
        -- someone changed the server since lbkit set it: theirs now
        core.Info("lbkit: " .. label .. " is " .. status .. ", set by someone else: left alone")
        st.applied = nil
      elseif want == nil then
        srv:set_ready()
        core.Info("lbkit: " .. label .. " READY (agent: " .. line .. ")")
        st.applied = nil
      elseif st.applied == nil and (status:sub(1, 5) == "MAINT" or status:sub(1, 5) == "DRAIN") then
        -- the operator's: lbkit does not take it over, so it will never lift it
      else
        if want == "MAINT" then
          srv:set_maint()
        else
          srv:set_drain()
        end
        core.Info("lbkit: " .. label .. " " .. want .. " (agent: " .. line .. ")")
        st.applied = want
      end
    end
    core.msleep(interval)
  end
end

core.register_init(function()
  if not agent_port or not interval or not fall or not rise or not timeout or backends == "" then
    core.Alert("lbkit: set LBKIT_BACKENDS and LBKIT_AGENT_PORT (setenv in the global section); "
      .. "LBKIT_INTERVAL, LBKIT_FALL, LBKIT_RISE, LBKIT_TIMEOUT must be numbers: not polling")
    return
  end
  for bname in backends:gmatch("[^,%s]+") do
    local be = core.backends[bname]
    if not be then
      core.Alert("lbkit: no backend " .. bname .. ": not polling it")
    else
      for sname, srv in pairs(be.servers) do
        core.register_task(function() watch(bname, sname, srv) end)
      end
    end
  end
end)
