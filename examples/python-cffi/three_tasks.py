#!/usr/bin/env python3
"""three_tasks.py: libapixo from Python through cffi in ABI mode (ffi.dlopen, no compiler).

Three tasks through apixo_submit_async with a completion callback made by ffi.callback;
thread mode: it runs on the library's dispatcher thread (cffi takes the GIL for it) and hands
each outcome to the main thread through a queue.Queue. One line per task.

    pip install cffi
    APIXO_LIBRARY=/path/to/libapixo.so APIXO_API_KEY=sk-... python3 three_tasks.py

The declarations come from the preprocessed header apixo_cdef.h (APIXO_CDEF, default
build/include/apixo_cdef.h beside the library) when it exists, else from the subset below.
(The apixo package in bindings/python is the supported Python binding; this shows the
shortest path for a cffi user.)
"""
import os
import queue
import sys

from cffi import FFI

CDEF_SUBSET = """
typedef enum apixo_code {
  APIXO_OK = 0, APIXO_ERR_INVALID_ARGUMENT = 1, APIXO_ERR_BAD_REQUEST = 2,
  APIXO_ERR_UNAUTHORIZED = 3, APIXO_ERR_PAYMENT_REQUIRED = 4, APIXO_ERR_FORBIDDEN = 5,
  APIXO_ERR_NOT_FOUND = 6, APIXO_ERR_RATE_LIMITED = 7, APIXO_ERR_SERVER = 8,
  APIXO_ERR_NETWORK = 9, APIXO_ERR_TIMEOUT = 10, APIXO_ERR_PROTOCOL = 11,
  APIXO_ERR_TASK_FAILED = 12, APIXO_ERR_CANCELLED = 13, APIXO_ERR_CLOSED = 14,
  APIXO_ERR_IO = 15, APIXO_ERR_NO_MEMORY = 16, APIXO_ERR_INDETERMINATE = 17
} apixo_code;
typedef enum apixo_state {
  APIXO_STATE_PENDING = 0, APIXO_STATE_PROCESSING = 1, APIXO_STATE_SUCCESS = 2,
  APIXO_STATE_FAILED = 3
} apixo_state;
typedef struct apixo_options apixo_options;
typedef struct apixo_client apixo_client;
typedef struct apixo_request apixo_request;
typedef struct apixo_task apixo_task;
typedef void (*apixo_task_callback)(apixo_code code, const apixo_task *task, void *user_data);
const char *apixo_code_name(apixo_code code);
const char *apixo_last_error(void);
const char *apixo_state_name(apixo_state state);
apixo_options *apixo_options_new(void);
void apixo_options_free(apixo_options *opts);
apixo_code apixo_options_set_time_scale(apixo_options *opts, double scale);
apixo_code apixo_client_new(const apixo_options *opts, apixo_client **out);
void apixo_client_free(apixo_client *client);
apixo_request *apixo_request_new(const char *model);
void apixo_request_free(apixo_request *req);
apixo_code apixo_request_set_prompt(apixo_request *req, const char *prompt);
apixo_code apixo_request_set_max_images(apixo_request *req, int n);
apixo_code apixo_submit_async(apixo_client *c, const apixo_request *req,
                              apixo_task_callback cb, void *user_data);
const char *apixo_task_id(const apixo_task *t);
apixo_state apixo_task_state(const apixo_task *t);
size_t apixo_task_result_count(const apixo_task *t);
"""

N = 3


def load():
    ffi = FFI()
    lib_path = os.environ.get("APIXO_LIBRARY", "libapixo.so")
    cdef_path = os.environ.get("APIXO_CDEF") or os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(lib_path))), "include", "apixo_cdef.h")
    if os.path.isfile(cdef_path):
        with open(cdef_path) as f:
            ffi.cdef(f.read())
    else:
        ffi.cdef(CDEF_SUBSET)
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
