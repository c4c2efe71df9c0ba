-- three_tasks.lua: libapixo from LuaJIT through its ffi library.
--
-- Queue delivery mode: no Lua code ever runs on a library thread (an ffi callback called
-- from the dispatcher thread enters the single-threaded VM from a second thread: "PANIC:
-- ... (bad callback)" or a crash). Three tasks through apixo_submit_async with no callback
-- and user_data = the task's index; the main thread waits for the client's event descriptor
-- with poll(2) and takes the completions with apixo_next_event. One line per task.
--
--   APIXO_LIBRARY=/path/to/libapixo.so APIXO_API_KEY=sk-... luajit three_tasks.lua
local ffi = require("ffi")

local lib_path = os.getenv("APIXO_LIBRARY") or "libapixo.so"

-- The declarations: apixo_cdef.h, apixo.h without comments and directives (make writes it to
-- build/include/, make install to PREFIX/include/), found beside the library's lib/ folder
-- unless APIXO_CDEF names it.
local cdef_path = os.getenv("APIXO_CDEF")
  or (lib_path:match("^(.*)/lib/[^/]*$") or "/usr/local") .. "/include/apixo_cdef.h"
local f, err = io.open(cdef_path)
if not f then
  io.stderr:write("three_tasks: " .. err .. " (set APIXO_CDEF to apixo_cdef.h)\n")
  os.exit(1)
end
ffi.cdef(f:read("*a"))
f:close()
ffi.cdef [[
struct pollfd { int fd; short events; short revents; };
int poll(struct pollfd *fds, unsigned long nfds, int timeout);
struct timespec { long tv_sec; long tv_nsec; };
int clock_gettime(int clock_id, struct timespec *tp);
]]
local POLLIN, CLOCK_MONOTONIC = 1, 1
local N = 3

local lib = ffi.load(lib_path)
-- the header's enum constants, through the library namespace
local OK, ERR_TIMEOUT = lib.APIXO_OK, lib.APIXO_ERR_TIMEOUT

local function text(p)
  if p == nil then return "" end
  return ffi.string(p)
end

-- An error with the code's name and apixo_last_error, read right after the failing call.
local function check(rc, what)
  if rc ~= OK then
    error(string.format("%s: %s: %s", what, text(lib.apixo_code_name(rc)),
                        text(lib.apixo_last_error())), 0)
  end
end

local function monotonic_s()
  local ts = ffi.new("struct timespec")
  ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local function main()
  local opts = lib.apixo_options_new()
  if opts == nil then error("out of memory", 0) end
  local scale = os.getenv("APIXO_TIME_SCALE")
  local client_out = ffi.new("apixo_client *[1]")
  local ok, err = pcall(function()
    if scale then check(lib.apixo_options_set_time_scale(opts, tonumber(scale)), "time scale") end
    check(lib.apixo_options_set_delivery(opts, lib.APIXO_DELIVERY_QUEUE), "delivery")
    check(lib.apixo_client_new(opts, client_out), "client")
  end)
  lib.apixo_options_free(opts)
  if not ok then error(err, 0) end
  local client = client_out[0]
  local req = lib.apixo_request_new(nil)
  local results, received = {}, 0

  ok, err = pcall(function()
    local fd = ffi.new("int[1]")
    check(lib.apixo_client_event_fd(client, fd), "event fd")
    -- the descriptor belongs to the client: only polled here, never read or closed
    local pfd = ffi.new("struct pollfd[1]")
    pfd[0].fd, pfd[0].events = fd[0], POLLIN

    check(lib.apixo_request_set_prompt(req, "a lighthouse in a storm, oil painting"), "prompt")
    check(lib.apixo_request_set_max_images(req, 1), "max_images")
    for i = 0, N - 1 do
      -- no callback (queue mode): the completion comes back through apixo_next_event
      check(lib.apixo_submit_async(client, req, nil, ffi.cast("void *", i)), "submit")
    end

    local ev = ffi.new("apixo_event *[1]")
    local deadline = monotonic_s() + 120
    while received < N do
      local left_ms = math.floor((deadline - monotonic_s()) * 1000)
      if left_ms <= 0 then
        error(string.format("timed out after %d of %d completions", received, N), 0)
      end
      local n = ffi.C.poll(pfd, 1, math.min(left_ms, 1000))
      if n < 0 and ffi.errno() ~= 4 then error("poll failed: errno " .. ffi.errno(), 0) end -- 4: EINTR
      local rc = lib.apixo_next_event(client, 0, ev)
      while rc == OK do
        local e = ev[0]
        if lib.apixo_event_kind_of(e) == lib.APIXO_EVENT_COMPLETION then
          local index = tonumber(ffi.cast("intptr_t", lib.apixo_event_user_data(e)))
          local o = { code = lib.apixo_event_code(e), message = text(lib.apixo_event_message(e)) }
          local task = lib.apixo_event_task(e) -- borrowed from the event: copy what is kept
          if task ~= nil then
            o.id = text(lib.apixo_task_id(task))
            o.state = text(lib.apixo_state_name(lib.apixo_task_state(task)))
            o.urls = tonumber(lib.apixo_task_result_count(task))
          end
          if results[index] == nil then received = received + 1 end
          results[index] = o
        end
        lib.apixo_event_free(e)
        rc = lib.apixo_next_event(client, 0, ev)
      end
      if rc ~= ERR_TIMEOUT then check(rc, "next event") end
    end
  end)
  lib.apixo_request_free(req)
  lib.apixo_client_free(client)
  if not ok then error(err, 0) end

  local failures = 0
  for i = 0, N - 1 do
    local o = results[i]
    if o.code ~= OK then
      io.stderr:write(string.format("task %d: %s: %s\n", i, text(lib.apixo_code_name(o.code)),
                                    o.message))
      failures = failures + 1
    else
      print(string.format("task %d id=%s state=%s urls=%d", i, o.id, o.state, o.urls))
    end
  end
  print(string.format("completed %d/%d", N - failures, N))
  return failures == 0
end

local ok, result = pcall(main)
if not ok then
  io.stderr:write("three_tasks: " .. tostring(result) .. "\n")
  os.exit(1)
end
os.exit(result and 0 or 1)
