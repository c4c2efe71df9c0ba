#!/usr/bin/env python3
"""three_tasks.py: libapixo from Python through cffi in ABI mode (ffi.dlopen, no compiler).

Three tasks through apixo_submit_async with a completion callback made by ffi.callback;
thread mode: it runs on the library's dispatcher thread (cffi takes the GIL for it) and hands
each outcome to the main thread through a queue.Queue. One line per task.

    pip install cffi
    APIXO_LIBRARY=/path/to/libapixo.so APIXO_API_KEY=sk-... python3 three_tasks.py

The declarations come from apixo_cdef.h, the header without comments and directives that
make writes to build/include/ (APIXO_CDEF names another). (The apixo package in
bindings/python is the supported Python binding; this shows the shortest path for a cffi
user.)
"""
import os
import queue
import sys

from cffi import FFI

N = 3


def load():
    """The library and its declarations: apixo_cdef.h, apixo.h without comments and
    directives (make writes it to build/include/, make install to PREFIX/include/), found
    beside the library's lib/ folder unless APIXO_CDEF names it."""
    ffi = FFI()
    lib_path = os.environ.get("APIXO_LIBRARY", "libapixo.so")
    lib_dir = os.path.dirname(os.path.abspath(lib_path)) if os.sep in lib_path else "/usr/local/lib"
    cdef_path = os.environ.get("APIXO_CDEF") or os.path.join(
        os.path.dirname(lib_dir), "include", "apixo_cdef.h")
    with open(cdef_path) as f:
        ffi.cdef(f.read())
    return ffi, ffi.dlopen(lib_path)


def main():
    ffi, lib = load()

    def text(p):
        return ffi.string(p).decode("utf-8", "replace") if p != ffi.NULL else ""

    def fail(rc, what):
        # read on the failing thread, right after the call
        raise RuntimeError("%s: %s: %s" % (what, text(lib.apixo_code_name(rc)),
                                           text(lib.apixo_last_error())))

    done = queue.Queue()

    # Runs on the dispatcher thread. The task is borrowed: copy what is kept. An exception
    # here would be printed and swallowed by cffi, so nothing here raises.
    @ffi.callback("void(apixo_code, const apixo_task *, void *)")
    def on_done(code, task, user_data):
        index = int(ffi.cast("intptr_t", user_data))
        o = {"index": index, "code": code, "message": ""}
        if task != ffi.NULL:
            o["id"] = text(lib.apixo_task_id(task))
            o["state"] = text(lib.apixo_state_name(lib.apixo_task_state(task)))
            o["urls"] = lib.apixo_task_result_count(task)
        if code != lib.APIXO_OK:
            o["message"] = text(lib.apixo_last_error())
        done.put(o)

    opts = lib.apixo_options_new()
    if opts == ffi.NULL:
        raise MemoryError()
    try:
        scale = os.environ.get("APIXO_TIME_SCALE")
        if scale:
            rc = lib.apixo_options_set_time_scale(opts, float(scale))
            if rc != lib.APIXO_OK:
                fail(rc, "time scale")
        out = ffi.new("apixo_client **")
        rc = lib.apixo_client_new(opts, out)
        if rc != lib.APIXO_OK:
            fail(rc, "client")
    finally:
        lib.apixo_options_free(opts)
    client = out[0]
    req = lib.apixo_request_new(ffi.NULL)
    results = [None] * N
    try:
        for rc, what in ((lib.apixo_request_set_prompt(req, b"a lighthouse in a storm, oil painting"),
                          "prompt"),
                         (lib.apixo_request_set_max_images(req, 1), "max_images")):
            if rc != lib.APIXO_OK:
                fail(rc, what)
        for i in range(N):
            rc = lib.apixo_submit_async(client, req, on_done, ffi.cast("void *", i))
            if rc != lib.APIXO_OK:
                fail(rc, "submit")
        for _ in range(N):
            o = done.get(timeout=120)
            results[o["index"]] = o
    finally:
        lib.apixo_request_free(req)
        lib.apixo_client_free(client)  # fires any callback still pending; on_done is alive here

    failures = 0
    for i, o in enumerate(results):
        if o["code"] != lib.APIXO_OK:
            print("task %d: %s: %s" % (i, text(lib.apixo_code_name(o["code"])), o["message"]),
                  file=sys.stderr)
            failures += 1
            continue
        print("task %d id=%s state=%s urls=%d" % (i, o["id"], o["state"], o["urls"]))
    print("completed %d/%d" % (N - failures, N))
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Exception as e:  # one line, non-zero, as the other hosts
        print("three_tasks: %s" % e, file=sys.stderr)
        sys.exit(1)
