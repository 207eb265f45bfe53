"""The trusted Lua chunk that turns a fresh Lua 5.4 state into the script sandbox.

It runs before any user code, keeps private references to what the sandbox
itself needs (`load`, `debug.sethook`, `debug.getinfo`, the CPU clock), then
removes everything else from reach. What it defends against, each measured on
lupa 2.8 / Lua 5.4 and kept as a test in tests/test_scripting_sandbox.py
(docs/scripting.md lists them):

- `load` only in text mode into an allow-listed environment (no bytecode,
  no `io`, `os.execute`, `require`, `debug`, `string.dump`, `collectgarbage`);
- a count hook every CHECK_EVERY instructions enforces an instruction and a
  CPU-time budget; once over, it fires on every instruction so a `pcall` loop
  cannot swallow it; every coroutine is armed (hooks are per Lua thread);
- `xpcall`'s handler runs as ordinary code (Lua runs message handlers with
  hooks off, so a looping handler would hang), metatables with `__gc` or
  `__mode` are refused (finalizers run with hooks off);
- `string.rep` is capped in the REAL string table (`("x"):rep(n)` reaches it
  through the shared string metatable), the string metatable is hidden;
- patterns stay available: their backtracking runs in C where no hook fires,
  so the parent's wall-clock kill of the worker process is their budget.

Values that leave the sandbox (effects, logs, triggers) are deep copies made
here with `next` (no metamethods), limited in depth and size, so the host only
ever reads plain tables this chunk built.
"""

BOOTSTRAP = r"""
local host_read, max_instr, check_every, max_str = ...
local cpu_clock, lua_load, sethook, getinfo = os.clock, load, debug.sethook, debug.getinfo
local setmetatable_raw, getmetatable_raw = setmetatable, getmetatable
local rawget, type, error, pcall = rawget, type, error, pcall
local tostring, next, select = tostring, next, select
local ipairs, pairs, math_type, huge = ipairs, pairs, math.type, math.huge
local co_create, co_resume = coroutine.create, coroutine.resume
local tpack, tunpack, concat = table.pack, table.unpack, table.concat
local str_find, rawlen_ = string.find, rawlen

local real_rep = string.rep
string.rep = function(s, n, sep)
  if type(n) == "number" and n > 0
     and (#tostring(s) + (sep and #tostring(sep) or 0)) * n > max_str then
    error("string.rep: result too large", 2)
  end
  return real_rep(s, n, sep)
end
string.dump = nil
getmetatable("").__metatable = false

local used, deadline = 0, 0
local function hook()
  used = used + check_every
  if used > max_instr or cpu_clock() > deadline then
    sethook(hook, "", 1)
    error("script exceeded its CPU budget", 0)
  end
end
local function arm(co)
  if co then sethook(co, hook, "", check_every) else sethook(hook, "", check_every) end
end

local safe_co = {}
for k, v in pairs(coroutine) do safe_co[k] = v end
safe_co.create = function(f) local co = co_create(f); arm(co); return co end
safe_co.wrap = function(f)
  local co = co_create(f); arm(co)
  return function(...)
    local r = tpack(co_resume(co, ...))
    if not r[1] then error(r[2], 0) end
    return tunpack(r, 2, r.n)
  end
end

local function safe_setmetatable(t, mt)
  if type(mt) == "table" and (rawget(mt, "__gc") ~= nil or rawget(mt, "__mode") ~= nil) then
    error("__gc and __mode are not allowed in scripts", 2)
  end
  return setmetatable_raw(t, mt)
end
local function safe_getmetatable(v)
  if type(v) ~= "table" then return nil end
  return getmetatable_raw(v)
end
local function safe_xpcall(f, handler, ...)
  local r = tpack(pcall(f, ...))
  if r[1] then return tunpack(r, 1, r.n) end
  return false, handler(r[2])
end

local function pick(src, names)
  local d = {}
  for _, n in ipairs(names) do d[n] = src[n] end
  return d
end

-- plain copies: what leaves the sandbox ---------------------------------------------
local MAX_DEPTH, MAX_ITEMS, MAX_EFFECTS, MAX_LOGS, MAX_READS = 8, 5000, 200, 200, 100
local items = 0
local function plain(v, depth)
  local t = type(v)
  if t == "string" or t == "boolean" or t == "nil" then return v end
  if t == "number" then
    if v ~= v or v == huge or v == -huge then error("numbers must be finite", 0) end
    return v
  end
  if t == "table" then
    if depth > MAX_DEPTH then error("value nested too deep", 0) end
    local out = {}
    for k, val in next, v do
      items = items + 1
      if items > MAX_ITEMS then error("value too large", 0) end
      local kt = type(k)
      if kt ~= "string" and not (kt == "number" and math_type(k) == "integer") then
        error("table keys must be strings or integers", 0)
      end
      if type(val) ~= "function" then out[k] = plain(val, depth + 1) end
    end
    return out
  end
  error("a " .. t .. " cannot leave a script", 0)
end

local effects, logs, triggers, handlers = {}, {}, {}, {}
local function caller_line()
  local info = getinfo(4, "l")
  return info and info.currentline or nil
end
local function effect(e)
  if #effects >= MAX_EFFECTS then error("more than " .. MAX_EFFECTS .. " changes in one run", 3) end
  e.line = caller_line()
  effects[#effects + 1] = e
end
local function text(v, what)
  if type(v) ~= "string" then error(what .. " must be a string", 3) end
  return v
end
local function fields(v, what)
  if type(v) ~= "table" then error(what .. " expects a table", 3) end
  local ok, copy = pcall(plain, v, 1)
  if not ok then error(what .. ": " .. tostring(copy), 3) end
  return copy
end

local Issue = {}
local IssueMT = {__index = Issue, __metatable = "issue"}
local function key_of(self)
  local key = type(self) == "table" and rawget(self, "key")
  if type(key) ~= "string" then error("call issue methods with ':' on an issue", 3) end
  return key
end
function Issue.update(self, t)
  effect({kind = "update", issue = key_of(self), fields = fields(t, "issue:update")})
end
function Issue.add_comment(self, body)
  effect({kind = "comment", issue = key_of(self), body = text(body, "issue:add_comment's text")})
end
function Issue.add_tag(self, name)
  effect({kind = "tag", issue = key_of(self), name = text(name, "issue:add_tag's name")})
end

local reads = 0
local function read(kind, a, b)
  reads = reads + 1
  if reads > MAX_READS then error("more than " .. MAX_READS .. " reads in one run", 3) end
  local ok, value = host_read(kind, a, b)
  if not ok then error(tostring(value), 3) end
  return value
end
local function as_issue(row)
  if row == nil then return nil end
  return setmetatable_raw(row, IssueMT)
end

local Project = {}
local ProjectMT = {__index = Project, __metatable = "project"}
function Project.issues(self, query, opts)
  local limit = type(opts) == "table" and rawget(opts, "limit") or nil
  if limit ~= nil and math_type(limit) ~= "integer" then error("limit must be an integer", 2) end
  local rows = read("issues", text(query, "the query"), limit)
  for i = 1, #rows do rows[i] = as_issue(rows[i]) end
  return rows
end
function Project.issue(self, key)
  return as_issue(read("issue", text(key, "the issue key"), nil))
end
function Project.create_issue(self, t)
  effect({kind = "create", fields = fields(t, "project:create_issue")})
end

-- ctx.email{to = ..., subject = ..., body = ...}: an effect like the others (the host checks
-- that every recipient is a project member and queues the mail with the run's commit).
-- Limits mirror services/script_email.py: MAX_EMAILS recipients per run, subject length,
-- body length.
local MAX_EMAILS, MAX_SUBJECT, MAX_BODY = 10, 200, 20000
local emails = 0
local function email(t)
  if type(t) ~= "table" then
    error("ctx.email expects a table {to = ..., subject = ..., body = ...}", 2)
  end
  local to, subject, body = rawget(t, "to"), rawget(t, "subject"), rawget(t, "body")
  local list = {}
  if type(to) == "string" then
    list[1] = to
  elseif type(to) == "table" then
    for i = 1, rawlen_(to) do
      local v = rawget(to, i)
      if type(v) ~= "string" then error("ctx.email: to must list addresses or user ids", 2) end
      list[i] = v
    end
  else
    error("ctx.email: to must be an address, a user id or a list of them", 2)
  end
  if #list == 0 then error("ctx.email: to names nobody", 2) end
  if type(subject) ~= "string" or subject == "" or #subject > MAX_SUBJECT
     or str_find(subject, "[\r\n]") then
    error("ctx.email: subject must be one line of 1 to " .. MAX_SUBJECT .. " bytes", 2)
  end
  if type(body) ~= "string" or #body > MAX_BODY then
    error("ctx.email: body must be a string of at most " .. MAX_BODY .. " bytes", 2)
  end
  emails = emails + #list
  if emails > MAX_EMAILS then error("more than " .. MAX_EMAILS .. " emails in one run", 2) end
  effect({kind = "email", to = list, subject = subject, body = body})
end

local function log(...)
  if #logs >= MAX_LOGS then return end
  local n, parts = select("#", ...), {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  local line = concat(parts, " ")
  if #line > 2000 then line = line:sub(1, 2000) end
  logs[#logs + 1] = line
end

local function register(entry, fn)
  if type(fn) ~= "function" then error("the handler must be a function", 3) end
  if #handlers >= 50 then error("more than 50 triggers", 3) end
  entry.line = caller_line()
  triggers[#triggers + 1] = entry
  handlers[#handlers + 1] = fn
end

local env = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  pcall = pcall, select = select, tonumber = tonumber, tostring = tostring,
  type = type, xpcall = safe_xpcall, rawequal = rawequal, rawget = rawget,
  rawlen = rawlen, rawset = rawset, getmetatable = safe_getmetatable,
  setmetatable = safe_setmetatable,
  string = pick(string, {"byte","char","find","format","gmatch","gsub","len","lower","match",
                         "rep","reverse","sub","upper"}),
  table = pick(table, {"concat","insert","move","pack","remove","sort","unpack"}),
  math = pick(math, {"abs","ceil","floor","fmod","huge","max","maxinteger","min",
                     "mininteger","modf","pi","sqrt","tointeger","type","ult","random"}),
  utf8 = pick(utf8, {"char","charpattern","codes","codepoint","len","offset"}),
  os = pick(os, {"time","date","clock","difftime"}),
  coroutine = safe_co,
  log = log,
  on_event = function(name, fn)
    register({kind = "event", event = text(name, "the event name")}, fn)
  end,
  on_schedule = function(cron, fn)
    register({kind = "schedule", cron = text(cron, "the cron line")}, fn)
  end,
  on_manual = function(fn) register({kind = "manual"}, fn) end,
}
env._G = env

python = nil; package.loaded.python = nil
debug = nil; package.loaded.debug = nil
io = nil; package.loaded.io = nil
load, loadfile, dofile, require, collectgarbage = nil, nil, nil, nil, nil
os.execute, os.exit, os.remove, os.rename, os.tmpname, os.getenv = nil, nil, nil, nil, nil, nil
package.loadlib = nil; package.cpath = ""; package.path = ""

local function main(fn, job)
  fn()
  if job.mode ~= "run" then return end
  local now = job.now
  local ctx = {
    event = job.event, issue = as_issue(job.issue),
    project = setmetatable_raw(job.project, ProjectMT),
    now = function() return now end,
    email = email,
  }
  local ran = 0
  for i, t in ipairs(triggers) do
    if t.kind == job.kind and (job.kind == "manual"
        or (job.kind == "event" and t.event == job.key)
        or (job.kind == "schedule" and t.cron == job.key)) then
      handlers[i](ctx)
      ran = ran + 1
    end
  end
  if ran == 0 then error("the script has no handler for this trigger", 0) end
end

local state = {effects = effects, logs = logs, triggers = triggers}
return function(source, job)
  local fn, err = lua_load(source, "=script", "t", env)
  if not fn then return false, err end
  used, deadline = 0, cpu_clock() + job.cpu_seconds
  arm(nil)
  local ok, e = pcall(main, fn, job)
  if ok then return true, "" end
  if type(e) == "string" then return false, e end
  return false, "error object of type " .. type(e)
end, state
"""
