-- lbkit: agent-driven active checks and balancing for nginx http {} upstreams.
--
-- Every node's lbagent answers GET /lb on its health port with the HAProxy agent-check line
-- ("up", "down #why", "drain", "up 50%", "up ready"). One worker per interval polls every
-- peer (a lock in the shared dict), all workers route from the state in the shared dict:
--   "down ..." / no valid answer   fall polls in a row -> DOWN; rise good polls -> UP again
--   "drain" / "maint"              DRAIN at once (no new requests) until "ready", or until
--                                  the agent says "up" rise times in a row
--   "up N%"                        weight N% (0% = out)
-- When every peer is out, requests get 502 rather than a failing node.
--
--   init_worker_by_lua_block { require("lbkit").watch{ upstream = "xroad_http", peers = {...} } }
--   upstream xroad_http { server 127.0.0.1:1; balancer_by_lua_block { require("lbkit").balance("xroad_http") } }
--   location = /lbkit { content_by_lua_block { require("lbkit").status() } }

local _M = { _VERSION = "1" }

local ngx = ngx
local balancer = require("ngx.balancer")

local upstreams = {}   -- name -> config (per worker, from watch{})
local order = {}       -- upstream names in the order watch{} saw them
local cache = {}       -- name -> { version, peers in rotation with their round-robin state } (per worker)

local function log(level, ...)
  ngx.log(level, "lbkit: ", ...)
end

-- key of a peer's field in the shared dict
local function key(up, peer, field)
  return up .. "\0" .. peer.name .. "\0" .. field
end

-- parse_line reads an agent-check line as HAProxy does: first line only, words separated
-- by spaces, tabs or commas, case-insensitive, per category the last word wins, '#' starts
-- free text. Returns nil and a reason for anything HAProxy would not take.
local function parse_line(body)
  if type(body) ~= "string" then
    return nil, "no answer"
  end
  local line = body:match("^([^\r\n]*)[\r\n]")
  if not line then
    return nil, "incomplete line"
  end
  local r = {}
  local text = line:match("#(.*)$")
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
      return nil, "bad word " .. string.format("%q", w:sub(1, 20))
    end
  end
  r.text = text
  return r
end
_M.parse_line = parse_line

-- clean keeps an agent's words printable, on one line and short.
local function clean(s)
  s = tostring(s or ""):gsub("[%c\128-\255]", "?")
  if #s > 120 then
    s = s:sub(1, 120)
  end
  return s
end

-- fetch GETs http://agent/lb with a cosocket; returns the body or nil, reason.
local function fetch(agent, timeout)
  local host, port = agent:match("^%[?([^%]]+)%]?:(%d+)$")
  if not host then
    return nil, "bad agent address " .. agent
  end
  local sock = ngx.socket.tcp()
  sock:settimeout(timeout * 1000)
  local ok, err = sock:connect(host, tonumber(port))
  if not ok then
    return nil, "unreachable: " .. tostring(err)
  end
  local _, serr = sock:send("GET /lb HTTP/1.0\r\nHost: " .. agent .. "\r\nConnection: close\r\n\r\n")
  if serr then
    sock:close()
    return nil, "unreachable: " .. tostring(serr)
  end
  local status, rerr = sock:receive("*l")
  if not status then
    sock:close()
    return nil, "no answer: " .. tostring(rerr)
  end
  local code = status:match("^HTTP/%d%.%d (%d%d%d)")
  if code ~= "200" then
    sock:close()
    return nil, "/lb answered " .. clean(status)
  end
  repeat -- headers
    local h, herr = sock:receive("*l")
    if not h then
      sock:close()
      return nil, "no answer: " .. tostring(herr)
    end
  until h == ""
  local body, berr, partial = sock:receive(4096)
  sock:close()
  if not body then
    if berr == "closed" then
      body = partial
    else
      return nil, "no answer: " .. tostring(berr)
    end
  end
  return body
end

-- apply is one poll's result for one peer: the agent-check state machine.
local function apply(cfg, peer, body, ferr)
  local d, up = cfg.dict, cfg.upstream
  local r, perr
  if body then
    r, perr = parse_line(body)
    if not r then
      perr = "bad answer: " .. perr
    end
  else
    perr = ferr
  end
  local healthy = d:get(key(up, peer, "healthy"))
  local admin = d:get(key(up, peer, "admin"))
  local pct = d:get(key(up, peer, "pct")) or 100
  local fails = d:get(key(up, peer, "fails")) or 0
  local oks = d:get(key(up, peer, "oks")) or 0
  if healthy == nil then
    healthy = true
  end
  local line
  if not r then
    line = clean(perr)
    fails, oks = fails + 1, 0
    if fails >= cfg.fall then
      healthy = false
    end
  else
    line = clean(body:match("^([^\r\n]*)"))
    if r.health == "down" or r.health == "stopped" or r.health == "fail" then
      fails, oks = fails + 1, 0
      if fails >= cfg.fall then
        healthy = false
      end
    elseif r.health == "up" then
      fails, oks = 0, oks + 1
      if oks >= cfg.rise then
        healthy = true
      end
    end
    if r.admin == "drain" or r.admin == "maint" then
      admin = true
    elseif r.admin == "ready" then
      admin = false
    elseif r.health == "up" and oks >= cfg.rise then
      admin = false -- its "ready" may have gone to another poller on this host
    end
    if r.weight then
      pct = math.min(r.weight, 100)
    end
  end
  local state = "UP"
  if admin then
    state = "DRAIN"
  elseif not healthy or pct == 0 then
    state = "DOWN"
  end
  local before = d:get(key(up, peer, "state"))
  d:set(key(up, peer, "healthy"), healthy)
  d:set(key(up, peer, "admin"), admin or false)
  d:set(key(up, peer, "pct"), pct)
  d:set(key(up, peer, "fails"), fails)
  d:set(key(up, peer, "oks"), oks)
  d:set(key(up, peer, "line"), line)
  if before ~= state or d:get(key(up, peer, "wpct")) ~= pct then
    d:set(key(up, peer, "state"), state)
    d:set(key(up, peer, "wpct"), pct)
    if before ~= state then
      d:set(key(up, peer, "since"), ngx.now())
      log(ngx.WARN, up, " peer ", peer.name, " ", before or "(new)", " -> ", state, " (agent: ", line, ")")
    end
    d:incr(up .. "\0version", 1, 0)
  end
end

-- poll polls every peer of the upstream at once, in one worker per interval.
local function poll(premature, cfg)
  if premature then
    return
  end
  -- the lock expires a little before the next interval, so one worker polls per interval
  local ok = cfg.dict:add(cfg.upstream .. "\0lock", ngx.worker.pid(), cfg.interval * 0.9)
  if not ok then
    return
  end
  local threads = {}
  for i, peer in ipairs(cfg.peers) do
    threads[i] = ngx.thread.spawn(function()
      local okc, body, err = pcall(fetch, peer.agent, cfg.timeout)
      if not okc then
        body, err = nil, "error: " .. tostring(body)
      end
      return body, err
    end)
  end
  for i, peer in ipairs(cfg.peers) do
    local tok, body, err = ngx.thread.wait(threads[i])
    if not tok then
      body, err = nil, "error: " .. tostring(body)
    end
    local aok, aerr = pcall(apply, cfg, peer, body, err)
    if not aok then
      log(ngx.ERR, cfg.upstream, " peer ", peer.name, ": ", aerr)
    end
  end
end

-- watch starts polling the peers of one upstream; call it in init_worker_by_lua*.
function _M.watch(opts)
  assert(type(opts) == "table", "lbkit.watch: want a table")
  local up = opts.upstream
  assert(type(up) == "string" and up ~= "", "lbkit.watch: upstream = \"NAME\" is required")
  local shm = opts.shm or "lbkit"
  local dict = ngx.shared[shm]
  assert(dict, "lbkit.watch: no lua_shared_dict " .. shm)
  local interval = tonumber(opts.interval or 1)
  local cfg = {
    upstream = up, dict = dict, interval = interval,
    fall = tonumber(opts.fall or 3), rise = tonumber(opts.rise or 2),
    timeout = tonumber(opts.timeout or math.min(interval, 2)), peers = {},
  }
  assert(cfg.interval > 0 and cfg.fall >= 1 and cfg.rise >= 1 and cfg.timeout > 0,
    "lbkit.watch: interval, timeout, fall and rise must be positive")
  assert(type(opts.peers) == "table" and #opts.peers > 0, "lbkit.watch: peers = { {...}, ... } is required")
  for i, p in ipairs(opts.peers) do
    assert(type(p.host) == "string" and tonumber(p.port), "lbkit.watch: peer " .. i .. " needs host and port")
    local peer = { name = p.name or (p.host .. ":" .. p.port), host = p.host, port = tonumber(p.port),
      agent = p.agent or (p.host .. ":5588") }
    cfg.peers[i] = peer
    -- kept across reloads: the shared dict outlives the workers
    dict:add(key(up, peer, "state"), "UP")
    dict:add(key(up, peer, "wpct"), 100)
    dict:add(key(up, peer, "since"), ngx.now())
    dict:add(key(up, peer, "line"), "")
  end
  if not upstreams[up] then
    order[#order + 1] = up
  end
  upstreams[up] = cfg
  local ok, err = ngx.timer.every(interval, poll, cfg)
  if not ok then
    log(ngx.ERR, "cannot start polling ", up, ": ", err)
    return
  end
  ngx.timer.at(0, poll, cfg)
end

-- rotation is the upstream's peers that take requests, with weights, refreshed when the
-- shared state changes.
local function rotation(up, cfg)
  local v = cfg.dict:get(up .. "\0version") or 0
  local c = cache[up]
  if c and c.version == v then
    return c.peers
  end
  local peers = {}
  for _, p in ipairs(cfg.peers) do
    if cfg.dict:get(key(up, p, "state")) == "UP" then
      local w = cfg.dict:get(key(up, p, "wpct")) or 100
      if w > 0 then
        peers[#peers + 1] = { peer = p, weight = w, current = 0 }
      end
    end
  end
  cache[up] = { version = v, peers = peers }
  return peers
end

-- balance picks the peer for this request (and for each retry a peer not tried yet);
-- call it in balancer_by_lua*. With no peer in rotation the request gets 502.
function _M.balance(up)
  local cfg = upstreams[up]
  if not cfg then
    log(ngx.ERR, "balance: upstream ", tostring(up), " has no lbkit.watch{} in init_worker_by_lua")
    return ngx.exit(502)
  end
  local peers = rotation(up, cfg)
  local ctx = ngx.ctx
  local tried = ctx.lbkit_tried
  if not tried then
    tried = {}
    ctx.lbkit_tried = tried
    if #peers > 1 then
      balancer.set_more_tries(#peers - 1)
    end
  end
  -- smooth weighted round robin (nginx's), over the peers not tried by this request
  local best, total = nil, 0
  for _, e in ipairs(peers) do
    if not tried[e.peer.name] then
      e.current = e.current + e.weight
      total = total + e.weight
      if not best or e.current > best.current then
        best = e
      end
    end
  end
  if not best then
    -- NGX_BUSY: nginx's own "no live upstreams", answered 502 (any HTTP code here gives 500)
    return ngx.exit(-3)
  end
  best.current = best.current - total
  tried[best.peer.name] = true
  local ok, err = balancer.set_current_peer(best.peer.host, best.peer.port)
  if not ok then
    log(ngx.ERR, "set_current_peer ", best.peer.name, ": ", err)
    return ngx.exit(502)
  end
end

local function json_string(s)
  return '"' .. tostring(s):gsub('[%c"\\]', function(c)
    if c == '"' then return '\\"' elseif c == "\\" then return "\\\\" end
    return string.format("\\u%04x", c:byte())
  end) .. '"'
end

-- status answers a page of every peer: name, address, UP/DOWN/DRAIN, the agent's last
-- line, since when; JSON with ?format=json. Call it in content_by_lua*.
function _M.status()
  local now = ngx.now()
  local rows = {}
  for _, up in ipairs(order) do
    local cfg = upstreams[up]
    for _, p in ipairs(cfg.peers) do
      local d = cfg.dict
      rows[#rows + 1] = {
        upstream = up, name = p.name, address = p.host .. ":" .. p.port, agent = p.agent,
        state = d:get(key(up, p, "state")) or "UP", weight = d:get(key(up, p, "wpct")) or 100,
        line = d:get(key(up, p, "line")) or "", since = d:get(key(up, p, "since")) or now,
      }
    end
  end
  if ngx.var.arg_format == "json" then
    local out = {}
    for i, r in ipairs(rows) do
      out[i] = string.format('{"upstream":%s,"name":%s,"address":%s,"agent":%s,"state":%s,"weight":%d,"line":%s,"since":%s,"for_seconds":%.1f}',
        json_string(r.upstream), json_string(r.name), json_string(r.address), json_string(r.agent),
        json_string(r.state), r.weight, json_string(r.line), json_string(ngx.http_time(math.floor(r.since))), now - r.since)
    end
    ngx.header["Content-Type"] = "application/json"
    ngx.say('{"peers":[', table.concat(out, ","), "]}")
    return
  end
  ngx.header["Content-Type"] = "text/plain; charset=utf-8"
  for _, r in ipairs(rows) do
    local state = r.state
    if state == "UP" and r.weight ~= 100 then
      state = "UP " .. r.weight .. "%"
    end
    ngx.say(string.format("%s %s %s %s agent=%q since %s (%ds)", r.upstream, r.name, r.address, state, r.line,
      ngx.http_time(math.floor(r.since)), math.floor(now - r.since)))
  end
end

return _M
