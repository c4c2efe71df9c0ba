/*
 * apixo.h: the C interface of libapixo, a client for the APIXO image-generation
 * task API (Seedream 5.0 and other models).
 *
 * This header is the specification. Each declaration says what it returns, who
 * owns the result, how long a borrowed pointer stays valid, what a NULL argument
 * does, on which thread a callback runs, and which error codes it can produce.
 *
 * OVERVIEW
 *
 *   An apixo_client talks to one APIXO account. It owns two threads:
 *
 *     - the ENGINE thread drives every HTTP transfer of the client (submits,
 *       status polls, retries) through one event loop; no thread per request,
 *       no busy loop, zero CPU when idle;
 *     - in thread mode (APIXO_DELIVERY_THREAD, the default), the DISPATCHER
 *       thread runs the caller's task callbacks (apixo_task_callback), one at
 *       a time, so slow host code never stalls I/O.
 *
 *   In queue mode (APIXO_DELIVERY_QUEUE, see "Events") there is no dispatcher
 *   thread and the library never runs host code on a thread of its own:
 *   completions and log lines wait in a queue whose descriptor is readable
 *   while it is not empty, and the host runs them (apixo_dispatch) or takes
 *   them (apixo_next_event) on its own thread. This is for runtimes that
 *   cannot be entered from a foreign thread (Ruby, LuaJIT, Perl, ...) and for
 *   event loops (poll/epoll, asyncio, libuv, ...).
 *
 *   Every function in this header is safe to call from any thread, at any time,
 *   except where a comment says otherwise (apixo_client_free, apixo_drain and
 *   apixo_dispatch from inside a callback).
 *
 *   Every request of a client passes one limiter (requests per minute and
 *   concurrent tasks, the account's limits). Submissions past the concurrency
 *   cap wait in a local queue instead of drawing HTTP 429. Polls are scheduled,
 *   not looped. A submit (POST) is retried only when the server certainly did
 *   not take it; a submit whose answer was lost is reported as
 *   APIXO_ERR_INDETERMINATE and never resubmitted automatically.
 *
 *   The API key never appears in a log line, error message or JSON dump, even
 *   when a server echoes it back: while a client lives, its key is replaced by
 *   "[redacted]" in every error message (apixo_last_error, callback messages),
 *   log line, apixo_task_json, apixo_task_fail_code and apixo_task_fail_message
 *   (result URLs are passed through as received). Every error message and log
 *   line is one line: control characters of server text (CR, LF, tab, other C0
 *   and C1 codes, U+2028, U+2029) are escaped as \n, \r, \t, \uXXXX, and a
 *   message is cut to 4096 bytes.
 *
 *   Nothing from outside can crash or wedge the host. Numbers in answers,
 *   webhooks and the journal are range-checked where they are read: a time
 *   field out of range (negative, past year 9999, not finite) reads as 0 (as
 *   absent), a malformed one is APIXO_ERR_PROTOCOL. Every wait is bounded: a
 *   server's Retry-After by max_retry_after_ms (default 5 minutes), a download
 *   attempt by download_timeout_ms (default 10 minutes), and every blocking call
 *   returns APIXO_ERR_CLOSED at once when the client is freed.
 *
 * CONVENTIONS
 *
 *   - Every fallible function returns an apixo_code; results are written
 *     through out-parameters, which come last. On failure the out-parameters
 *     are left untouched unless the comment says otherwise.
 *   - A NULL handle or NULL required pointer argument yields
 *     APIXO_ERR_INVALID_ARGUMENT, and apixo_last_error() names the argument.
 *     So does a handle of another apixo type in its place (an apixo_request *
 *     passed as an apixo_client *, as an FFI's untyped pointers allow), the
 *     message naming the type expected; accessors then return what they return
 *     for NULL, and a _free function does nothing (apixo_last_error() says so).
 *     A pointer that is no live apixo handle (never one, or already freed) is
 *     undefined behaviour.
 *   - Every object the library hands over has exactly one free function.
 *     Strings handed over (char *, char **) are freed with apixo_free. Every
 *     _free function accepts NULL and then does nothing.
 *   - A borrowed "const char *" returned by an accessor stays valid as long as
 *     the object it came from; a "const char *" argument is only read during
 *     the call (the library copies what it keeps).
 *   - apixo_last_error() is thread-local: it describes the last failed call on
 *     the calling thread. Successful calls do not clear it. "Thread" means OS
 *     thread: a runtime that moves its green threads between OS threads
 *     between two C calls (Go's goroutines) must read it in the same C call
 *     that failed (a C wrapper that copies the message) or pin the caller to
 *     its thread (Go: runtime.LockOSThread) around the pair.
 *   - Every enum is 32 bits wide (a last member ..._FORCE_32BIT = 0x7fffffff
 *     pins it; it is not a value any function takes or returns). Values are
 *     never renumbered: the C contract only grows.
 *   - Durations are milliseconds; times are Unix milliseconds.
 *   - For FFIs that parse declarations (cffi's and LuaJIT's ffi.cdef),
 *     `make` writes apixo_cdef.h beside this header (installed with it): the
 *     same declarations without comments or preprocessor lines. There the
 *     integer macros (APIXO_LOG_*, APIXO_VERSION_MAJOR/MINOR/PATCH) are
 *     anonymous enum members and APIXO_VERSION_STRING is dropped (call
 *     apixo_version()).
 *
 * MINIMAL USAGE
 *
 *   apixo_options *opts = apixo_options_new();
 *   apixo_options_set_api_key(opts, "sk-...");        // or env APIXO_API_KEY
 *   apixo_client *client = NULL;
 *   if (apixo_client_new(opts, &client) != APIXO_OK) {
 *     fprintf(stderr, "apixo: %s\n", apixo_last_error());
 *     return 1;
 *   }
 *   apixo_options_free(opts);                          // the client copied it
 *
 *   apixo_request *req = apixo_request_new("seedream-5-0");
 *   apixo_request_set_prompt(req, "a cozy cyberpunk cafe");
 *   apixo_request_set_max_images(req, 2);
 *   apixo_request_set_resolution(req, "2K");
 *
 *   apixo_task *task = NULL;
 *   apixo_code rc = apixo_generate(client, req, 120000, &task);
 *   if (rc == APIXO_OK) {
 *     for (size_t i = 0; i < apixo_task_result_count(task); i++)
 *       printf("%s\n", apixo_task_result_url(task, i));
 *   } else if (rc == APIXO_ERR_TASK_FAILED) {
 *     printf("failed: %s\n", apixo_task_fail_code(task));
 *   } else {
 *     printf("%s: %s\n", apixo_code_name(rc), apixo_last_error());
 *   }
 *   apixo_task_free(task);
 *   apixo_request_free(req);
 *   apixo_client_free(client);
 */
#ifndef APIXO_H
#define APIXO_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* =========================================================================
 * Version and errors
 * ========================================================================= */

#define APIXO_VERSION_MAJOR 0
#define APIXO_VERSION_MINOR 1
#define APIXO_VERSION_PATCH 0
#define APIXO_VERSION_STRING "0.1.0"

/*
 * The version of the library actually loaded, "MAJOR.MINOR.PATCH" (equal to
 * APIXO_VERSION_STRING of the header it was built with). Static string: never
 * freed, never NULL.
 */
const char *apixo_version(void);

/*
 * Result codes. The values are part of the ABI: never renumbered or reused;
 * new codes are only appended.
 */
typedef enum apixo_code {
  APIXO_OK = 0,
  APIXO_ERR_INVALID_ARGUMENT = 1,  /* rejected locally; nothing was sent */
  APIXO_ERR_BAD_REQUEST = 2,       /* 400 */
  APIXO_ERR_UNAUTHORIZED = 3,      /* 401 */
  APIXO_ERR_PAYMENT_REQUIRED = 4,  /* 402 */
  APIXO_ERR_FORBIDDEN = 5,         /* 403 */
  APIXO_ERR_NOT_FOUND = 6,         /* 404, or a task this client does not know */
  APIXO_ERR_RATE_LIMITED = 7,      /* 429 after the retry budget */
  APIXO_ERR_SERVER = 8,            /* 5xx after the retry budget */
  APIXO_ERR_NETWORK = 9,           /* DNS, connect, TLS, reset */
  APIXO_ERR_TIMEOUT = 10,
  APIXO_ERR_PROTOCOL = 11,         /* an answer that is not the documented shape */
  APIXO_ERR_TASK_FAILED = 12,      /* the task ended in state failed: see its fail code */
  APIXO_ERR_CANCELLED = 13,
  APIXO_ERR_CLOSED = 14,           /* the client is shutting down */
  APIXO_ERR_IO = 15,               /* local file error */
  APIXO_ERR_NO_MEMORY = 16,
  APIXO_ERR_INDETERMINATE = 17,    /* a submit was sent but its answer was lost: the task may
                                      exist; it is not resubmitted automatically */
  APIXO_CODE_FORCE_32BIT = 0x7fffffff
} apixo_code;

/*
 * The name of a code, e.g. "APIXO_ERR_TIMEOUT" for APIXO_ERR_TIMEOUT and
 * "APIXO_OK" for APIXO_OK. Static string, never NULL; "APIXO_ERR_UNKNOWN" for a
 * value outside the enum.
 */
const char *apixo_code_name(apixo_code code);

/*
 * A one-line, human-readable description of the last failed call on the
 * calling thread (thread-local), e.g. "max_images: must be 1 to 10". Never
 * NULL; "" if no call on this thread has failed yet. Successful calls do not
 * clear it, so read it right after the failing call. The pointer is borrowed:
 * valid until the next apixo_* call on the same thread; copy it to keep it.
 * Never contains the API key.
 */
const char *apixo_last_error(void);

/*
 * Frees a string (or other single buffer) handed over by the library: the
 * outputs of apixo_request_to_json and apixo_submit. NULL does nothing. Do not
 * pass borrowed pointers (accessor results) or arrays from
 * apixo_download_results (use apixo_free_paths).
 */
void apixo_free(void *ptr);

/* =========================================================================
 * Options
 *
 * An apixo_options collects the settings of a client before it is created.
 * apixo_client_new copies it: the options object may be freed (or reused for
 * another client) right after. An options object is not meant to be modified
 * from two threads at once.
 * ========================================================================= */

typedef struct apixo_options apixo_options;

/*
 * A new options object with every default:
 *   api key            env APIXO_API_KEY, else none (apixo_client_new then fails)
 *   base URL           env APIXO_BASE_URL, else "https://api.apixo.ai/api/v1"
 *   timeout            30000 ms per HTTP request
 *   max retries        3
 *   limits             60 requests/minute, 10 concurrent tasks
 *   time scale         1.0
 *   CA file            the system's trust store
 *   logger             none
 *   journal            none
 *   max download bytes 64 MiB
 *   delivery           APIXO_DELIVERY_THREAD
 *   max Retry-After    300000 ms (5 minutes)
 *   download timeout   600000 ms (10 minutes) per attempt
 * The environment is read by apixo_client_new, not here. Owned: free with
 * apixo_options_free. NULL only when memory is exhausted.
 */
apixo_options *apixo_options_new(void);

/* Frees an options object. NULL does nothing. */
void apixo_options_free(apixo_options *opts);

/*
 * The API key sent as "Authorization: Bearer <key>". Copied. A NULL key unsets
 * it (the client then falls back to env APIXO_API_KEY). An empty key is
 * APIXO_ERR_INVALID_ARGUMENT. The key never appears in logs or messages.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (opts NULL, key empty).
 */
apixo_code apixo_options_set_api_key(apixo_options *opts, const char *key);

/*
 * The base URL, up to and including the version segment, e.g.
 * "https://api.apixo.ai/api/v1" or "http://127.0.0.1:8080/api/v1"; a trailing
 * "/" is ignored. Copied. NULL unsets it (env APIXO_BASE_URL, else the
 * default).
 * Errors: APIXO_ERR_INVALID_ARGUMENT (opts NULL; not an http:// or https:// URL).
 */
apixo_code apixo_options_set_base_url(apixo_options *opts, const char *url);

/*
 * The timeout of each single HTTP request (connect to last byte), in
 * milliseconds. Default 30000. Overall deadlines are the timeout_ms arguments
 * of the blocking calls.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (opts NULL, ms <= 0).
 */
apixo_code apixo_options_set_timeout_ms(apixo_options *opts, long ms);

/*
 * How many times a request is retried after a retryable failure (network
 * error, 429, 5xx) with backoff (honouring Retry-After up to
 * apixo_options_set_max_retry_after_ms). Default 3; 0 = never
 * retry. Applies to GETs (status, downloads) and to submit POSTs only when the
 * server certainly did not accept them (connect failure, 429, 503 answered
 * before processing). A submit whose body may have been accepted is never
 * retried: it fails with APIXO_ERR_INDETERMINATE.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (opts NULL, n < 0).
 */
apixo_code apixo_options_set_max_retries(apixo_options *opts, int n);

/*
 * The account's budget: at most requests_per_minute HTTP requests to the API
 * in any 60 s window (scaled by the time scale) and at most
 * max_concurrent_tasks tasks in flight (submitted, not yet terminal). Defaults
 * 60 and 10; 0 turns that limit off. Submissions past the concurrency cap wait
 * in a local queue; polls are spaced to fit the request budget.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (opts NULL, a negative value).
 */
apixo_code apixo_options_set_limits(apixo_options *opts, int requests_per_minute,
                                    int max_concurrent_tasks);

/*
 * Shares the account's budget (the limits of apixo_options_set_limits) with
 * every client that uses the same Redis and namespace, in this process, in
 * other processes and on other machines, so that N workers on one API key
 * together stay inside the account's limits instead of each budgeting for
 * itself. `url` is "redis://[:password@]host[:port][/db]" or "unix:///path"
 * (optionally "?db=N"); NULL turns sharing off (env APIXO_SHARED_BUDGET is then
 * used when set, else the budget is local). `ns` is the key prefix in Redis (1
 * to 128 printable characters, no spaces); NULL derives one from a SHA-256 of
 * the API key, so clients of one account share and the key itself never goes
 * to Redis. Both are copied.
 * What is shared: the request window (every API request takes a token from one
 * sliding window, kept with Redis's clock by an atomic Lua script) and the
 * concurrency slots (leases that the holder renews while it tracks the task;
 * the leases of a process that dies expire, never before its tasks could have
 * ended on the server). Waiting clients take freed slots in FIFO order. At most
 * one Redis round trip per API request, plus a heartbeat per client every
 * 2 s and, while it waits for a slot, one attempt per heartbeat (both scaled by
 * the time scale). Every Redis call is bounded (250 ms);
 * when Redis is unreachable or slow the client goes on with its fair share of
 * the limits (the limits divided among the live clients it last saw), logs
 * that once at APIXO_LOG_WARN, and returns to the shared budget when Redis
 * answers again: no call fails because Redis is down. The journal stays per
 * client; resumed tasks take their slots from the shared budget.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (opts NULL; a URL of another form; a bad
 * namespace). An unreachable Redis is not an error here nor in
 * apixo_client_new.
 */
apixo_code apixo_options_set_shared_budget(apixo_options *opts, const char *url, const char *ns);

/*
 * Multiplies every built-in time assumption (the 60 s rate window, the
 * expected generation time before the first poll, poll spacing, backoff);
 * 1.0 in production, e.g. 0.01 against a simulator started with
 * --time-scale 0.01. Does not scale the timeout_ms arguments nor the HTTP
 * timeout. Default 1.0.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (opts NULL, scale <= 0 or not finite).
 */
apixo_code apixo_options_set_time_scale(apixo_options *opts, double scale);

/*
 * A PEM bundle of CA certificates used to verify TLS peers instead of the
 * system's trust store. Copied; the file is read when connections are made.
 * NULL restores the system default.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (opts NULL, path empty).
 */
apixo_code apixo_options_set_ca_file(apixo_options *opts, const char *path);

/* Log levels of apixo_log_fn. */
#define APIXO_LOG_DEBUG 0
#define APIXO_LOG_INFO 1
#define APIXO_LOG_WARN 2
#define APIXO_LOG_ERROR 3

/*
 * A log sink. In thread mode it is called from library threads (the engine
 * thread, the dispatcher thread or the thread of the caller of a blocking
 * function), possibly from several at once, with messages of level >=
 * min_level. In queue mode (apixo_options_set_delivery) the lines are queued
 * instead and it is called only by apixo_dispatch, on the thread calling it.
 * `message` is one line, never contains the API key, and is borrowed for the
 * duration of the call. The function must not call apixo_client_free.
 */
typedef void (*apixo_log_fn)(int level, const char *message, void *user_data);

/*
 * Installs a logger: fn(level, message, user_data) for each message whose level
 * is >= min_level (APIXO_LOG_DEBUG .. APIXO_LOG_ERROR). fn NULL removes the
 * logger. In queue mode a logger is what turns log events on: only with one
 * are log lines queued (a host that only pulls with apixo_next_event installs
 * any function; it is then never called). fn and user_data must stay valid until the client created from these
 * options has been freed.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (opts NULL, min_level outside 0..3).
 */
apixo_code apixo_options_set_logger(apixo_options *opts, apixo_log_fn fn, int min_level,
                                    void *user_data);

/*
 * The largest file apixo_download / apixo_download_results will write, in
 * bytes. Default 64 MiB (67108864). A download that exceeds it is aborted, its
 * temporary file removed, with APIXO_ERR_PROTOCOL.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (opts NULL, max_bytes <= 0).
 */
apixo_code apixo_options_set_max_download_bytes(apixo_options *opts, int64_t max_bytes);

/* Delivery modes of apixo_options_set_delivery. */
typedef enum apixo_delivery {
  APIXO_DELIVERY_THREAD = 0,  /* default: callbacks run on the library's dispatcher thread, the
                                 logger on library threads */
  APIXO_DELIVERY_QUEUE = 1,   /* no host code ever runs on a library thread: see "Events" */
  APIXO_DELIVERY_FORCE_32BIT = 0x7fffffff
} apixo_delivery;

/*
 * Where the client hands over completions and log lines. APIXO_DELIVERY_THREAD
 * (the default) runs callbacks on the client's dispatcher thread and the
 * logger on library threads. APIXO_DELIVERY_QUEUE keeps them in a queue the
 * host empties on its own thread (apixo_client_event_fd, apixo_dispatch,
 * apixo_next_event); apixo_submit_async, apixo_watch and apixo_resume then
 * accept a NULL callback. The "Events" section has the details.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (opts NULL, mode not one of the two).
 */
apixo_code apixo_options_set_delivery(apixo_options *opts, apixo_delivery mode);

/*
 * The longest wait a server's Retry-After (on a 429 or 503 answer to a status
 * request, a submit or a download; delta-seconds or an HTTP date) is honoured
 * for, in milliseconds. Default 300000 (5 minutes); 0 honours no wait at all.
 * A Retry-After up to the cap is waited out (as a retry's backoff; a 429 also
 * holds every request of the client that long). One that asks for more is not
 * waited for: the call (or the tracking of the task) ends at once with the
 * code of the answer (APIXO_ERR_RATE_LIMITED for 429, APIXO_ERR_SERVER for
 * 503) and a message that quotes the server's Retry-After; the client-wide
 * hold of a 429 then lasts the cap, never longer. Retry-After is the server's
 * time: the time scale does not apply to it.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (opts NULL, ms < 0).
 */
apixo_code apixo_options_set_max_retry_after_ms(apixo_options *opts, long ms);

/*
 * The longest one download attempt (apixo_download, apixo_download_results)
 * may take from connect to last byte, in milliseconds. Default 600000 (10
 * minutes). The HTTP timeout (apixo_options_set_timeout_ms) still bounds each
 * stretch without data; this bounds a transfer that trickles. An attempt past
 * it ends with APIXO_ERR_TIMEOUT (retried like other timeouts, up to
 * max_retries, each attempt with the whole bound again).
 * Errors: APIXO_ERR_INVALID_ARGUMENT (opts NULL, ms <= 0).
 */
apixo_code apixo_options_set_download_timeout_ms(apixo_options *opts, long ms);

/* =========================================================================
 * Client
 * ========================================================================= */

typedef struct apixo_client apixo_client;

/*
 * Creates a client from opts (NULL: all defaults) and starts its engine
 * thread and, in thread mode, its dispatcher thread. The options are copied: opts may be freed right after.
 * With a journal (apixo_options_set_journal) the journal is opened, locked and
 * read here; its unfinished tasks are only re-tracked by apixo_resume.
 * On success *out is an owned client, freed with apixo_client_free; on failure
 * *out is set to NULL.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (out NULL; no API key in the options nor
 * in env APIXO_API_KEY; an invalid APIXO_BASE_URL), APIXO_ERR_IO (the journal
 * cannot be opened, read or is locked by another client, in this or another
 * process), APIXO_ERR_NO_MEMORY.
 */
apixo_code apixo_client_new(const apixo_options *opts, apixo_client **out);

/*
 * Shuts the client down and frees it. Cancels nothing on the server. Every
 * callback still pending fires with APIXO_ERR_CLOSED (task = the last snapshot
 * seen, or NULL) before this function returns; blocking calls running on other
 * threads return APIXO_ERR_CLOSED at once, wherever they wait (the local queue,
 * a retry's backoff or Retry-After, a transfer, a wait, apixo_drain); then the
 * library threads are joined.
 * In queue mode the callbacks still waiting in the queue, the final
 * APIXO_ERR_CLOSED ones among them, run on the thread calling this function;
 * log lines and completions without a callback still waiting are dropped (a
 * dropped completion is not recorded as delivered: with a journal the next
 * apixo_resume delivers it again). Calls
 * that start after this one began return APIXO_ERR_CLOSED; the handle must not
 * be used once it has returned. NULL does nothing.
 * Must not be called from inside a callback or logger of this client (it
 * would wait for itself).
 * In a child of fork() (see "Fork" below) it returns at once and frees
 * nothing: the parent's client is leaked in the child on purpose (its locks may
 * be held by threads that do not exist there, its curl state shares sockets
 * with the parent); the parent's own client is untouched.
 */
void apixo_client_free(apixo_client *client);

/*
 * What the client's budget looks like right now, one consistent reading taken
 * on the engine thread (waits at most 5 s for it: a client that is closing may
 * take that long and read as zeros except pending callbacks). Each out-parameter
 * may be NULL.
 *   queued_submits      submits waiting in the local queue for a slot or a token
 *   slots_in_use        concurrency slots taken (tasks in flight, or assumed to be)
 *   tracked_tasks       tasks being polled, parked or waited for
 *   requests_in_window  requests sent in the current rate window
 *   pending_callbacks   callbacks registered and not yet fired
 * Thread-safe; any thread, also inside a callback.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (c NULL), APIXO_ERR_CLOSED (in a forked child,
 * see "Fork").
 */
apixo_code apixo_client_stats(apixo_client *c, int64_t *queued_submits, int64_t *slots_in_use,
                              int64_t *tracked_tasks, int64_t *requests_in_window,
                              int64_t *pending_callbacks);

/*
 * Fork. A client belongs to the process that created it. In a child of fork()
 * every call on a client created before the fork returns APIXO_ERR_CLOSED at
 * once with the message "client created in another process; create one after
 * fork", without touching the parent's threads, locks or sockets (the check is
 * one load of a counter that a pthread_atfork child handler bumps); pending
 * callbacks of it never fire in the child. A child that needs the API creates
 * its own client (pre-fork servers: in the worker's post-fork hook, or lazily
 * at first use); that works every time, also while the parent's clients are
 * busy. Around fork() the library (its pthread_atfork handlers, installed when
 * it is loaded):
 *   - waits, at most 2 s, until no engine thread of the process is inside its
 *     work (the engines' idle point is their poll), so the child never inherits
 *     a lock of libcurl, OpenSSL or the Swift runtime taken halfway;
 *   - clears, in the child, the thread id that the Swift runtime's once-lock
 *     caches per thread. fork() copies the forking thread's cache, so the
 *     child's main thread would take once-locks (futex words that name their
 *     owner) under the parent's thread id; when one of the child's own library
 *     threads then queues on such a lock (FUTEX_LOCK_PI), the unlock
 *     (FUTEX_UNLOCK_PI) is refused by the kernel (EPERM: the word names another
 *     thread) and retried forever, a livelock at 100% CPU.
 * A fork from inside a callback or logger of a client is allowed (the child
 * gets the same rules). vfork()/posix_spawn() children that exec at once are
 * not concerned.
 */

/* =========================================================================
 * Requests
 *
 * A request is a local description of one task: model, input fields and
 * delivery. Building one sends nothing. For the models whose rules the library
 * knows ("seedream-5-0", "seedream-4-5") every setter validates its value at
 * once: an invalid value returns APIXO_ERR_INVALID_ARGUMENT, apixo_last_error()
 * names the field and the allowed values, and the request is unchanged. For any
 * other model only structural checks apply (non-empty strings, JSON that
 * parses); the server judges the rest.
 *
 * A request is not modified by the calls that use it (submit, generate,
 * to_json), so one request may be submitted many times and from several
 * threads at once; setters must not race with other use of the same request.
 * ========================================================================= */

typedef struct apixo_request apixo_request;

/*
 * A new request for `model` (a model ID, e.g. "seedream-5-0", "seedream-4-5",
 * "flux-2"); NULL means "seedream-5-0". The model is copied. Defaults: mode
 * "text-to-image" for seedream models, request_type "async", provider unset
 * (the server's "auto"). Owned: free with apixo_request_free. NULL when memory
 * is exhausted or the model ID is empty or contains characters that cannot be
 * a path segment (then apixo_last_error() says why).
 */
apixo_request *apixo_request_new(const char *model);

/* Frees a request. NULL does nothing. */
void apixo_request_free(apixo_request *req);

/*
 * input.prompt. Seedream: 1 to 5000 characters.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req or prompt NULL, empty, too long).
 */
apixo_code apixo_request_set_prompt(apixo_request *req, const char *prompt);

/*
 * input.mode. Seedream: "text-to-image" or "image-to-image".
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req or mode NULL, other value).
 */
apixo_code apixo_request_set_mode(apixo_request *req, const char *mode);

/*
 * Appends one URL to input.image_urls. Seedream: an http:// or https:// URL,
 * at most 14 in all.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req or url NULL, empty, not http(s), a
 * 15th URL).
 */
apixo_code apixo_request_add_image_url(apixo_request *req, const char *url);

/*
 * input.max_images: how many images to generate (billed per image actually
 * generated). Seedream: 1 to 10; required by apixo_request_validate.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req NULL, n out of range).
 */
apixo_code apixo_request_set_max_images(apixo_request *req, int n);

/*
 * input.resolution. Seedream: "2K", "3K", or an explicit size "WxH" (also
 * "WXH", "W*H"), e.g. "2048x2048".
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req or resolution NULL, other value).
 */
apixo_code apixo_request_set_resolution(apixo_request *req, const char *resolution);

/*
 * input.aspect_ratio. Seedream: "1:1", "2:3", "3:2", "4:3", "3:4", "9:16",
 * "16:9", "21:9".
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req or ratio NULL, other value).
 */
apixo_code apixo_request_set_aspect_ratio(apixo_request *req, const char *ratio);

/*
 * input.sequential_image_generation. Seedream: "disabled" (independent
 * images) or "auto" (a coherent series of up to max_images).
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req or mode NULL, other value).
 */
apixo_code apixo_request_set_sequential(apixo_request *req, const char *mode);

/*
 * input.web_search: 0 = false, any other value = true.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req NULL).
 */
apixo_code apixo_request_set_web_search(apixo_request *req, int enabled);

/*
 * input.output_format. Seedream: "jpeg" or "png".
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req or format NULL, other value).
 */
apixo_code apixo_request_set_output_format(apixo_request *req, const char *format);

/*
 * input.prompt_optimize_mode. Seedream: "standard".
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req or mode NULL, other value).
 */
apixo_code apixo_request_set_prompt_optimize_mode(apixo_request *req, const char *mode);

/*
 * The top-level "provider" (routing strategy): "auto", "value" or "official".
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req or provider NULL, other value).
 */
apixo_code apixo_request_set_provider(apixo_request *req, const char *provider);

/*
 * The top-level "callback_url"; request_type becomes "callback", so APIXO
 * POSTs the final status there (see apixo_webhook_ingest). The client still
 * tracks the task. NULL removes it (request_type back to "async").
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req NULL; url empty or not http(s)).
 */
apixo_code apixo_request_set_callback_url(apixo_request *req, const char *url);

/*
 * Sets input.<key> to the JSON value `json_value`: any JSON text, e.g. "true",
 * "7", "\"2K\"", "[\"https://a/b.png\"]", "{\"x\":1}". Replaces that field if
 * present (including fields the typed setters write; for known models the
 * value is validated like the typed setter would). For fields this library
 * has no setter for and for models it does not know.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req, key or json_value NULL; key empty;
 * json_value not valid JSON; a value a known model rejects).
 */
apixo_code apixo_request_set_input_json(apixo_request *req, const char *key,
                                        const char *json_value);

/*
 * The caller's own identifier for this task (e.g. an order id). Stored only
 * locally: in the journal and on the task snapshots of this client
 * (apixo_task_tag); never sent to the API. Copied. NULL removes it.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req NULL, tag empty).
 */
apixo_code apixo_request_set_tag(apixo_request *req, const char *tag);

/*
 * The cross-field checks, run again by every submit: prompt present; for
 * seedream models max_images present; image_urls present (1 to 14) for mode
 * "image-to-image"; callback_url present when request_type is "callback".
 * APIXO_OK if the request may be sent.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req NULL, a failed check: the message
 * names the field).
 */
apixo_code apixo_request_validate(const apixo_request *req);

/*
 * The exact JSON body a submit of this request would POST (without the tag,
 * which is never sent). Does not run apixo_request_validate. On success
 * *json_out is an owned NUL-terminated string, freed with apixo_free.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (req or json_out NULL),
 * APIXO_ERR_NO_MEMORY.
 */
apixo_code apixo_request_to_json(const apixo_request *req, char **json_out);

/*
 * A deep copy of req (model, input, delivery, tag). Owned: free with
 * apixo_request_free. NULL when req is NULL or memory is exhausted.
 */
apixo_request *apixo_request_copy(const apixo_request *req);

/* =========================================================================
 * Tasks
 *
 * An apixo_task is an immutable snapshot of one task's status, as last seen
 * by the client. Snapshots handed over through out-parameters are owned by the
 * caller and freed with apixo_task_free; the snapshot passed to a callback is
 * borrowed for the duration of the call (apixo_task_copy to keep it). A
 * snapshot can be read from any thread. Every string an accessor returns is
 * borrowed from the snapshot and valid until it is freed.
 *
 * Accessors given a NULL task return NULL / 0 / APIXO_STATE_PENDING and set
 * nothing.
 * ========================================================================= */

typedef enum apixo_state {
  APIXO_STATE_PENDING = 0,
  APIXO_STATE_PROCESSING = 1,
  APIXO_STATE_SUCCESS = 2,
  APIXO_STATE_FAILED = 3,
  APIXO_STATE_FORCE_32BIT = 0x7fffffff
} apixo_state;

/*
 * "pending", "processing", "success", "failed"; "unknown" for a value out of
 * range. Static string, never NULL.
 */
const char *apixo_state_name(apixo_state state);

typedef struct apixo_task apixo_task;

/*
 * The task id assigned by APIXO (e.g. "task_12345678"). "" (empty, never
 * NULL for a non-NULL task) when the id is unknown: a journal intent whose
 * submit answer was lost (see apixo_resume).
 */
const char *apixo_task_id(const apixo_task *t);

/* The model ID, or NULL when unknown (e.g. a webhook for a task this client
 * does not track). */
const char *apixo_task_model(const apixo_task *t);

/* The state. Only APIXO_STATE_SUCCESS and APIXO_STATE_FAILED are terminal. */
apixo_state apixo_task_state(const apixo_task *t);

/* The number of result URLs (0 unless the state is success). */
size_t apixo_task_result_count(const apixo_task *t);

/* The result URL at index (0-based), or NULL when index >= result_count. */
const char *apixo_task_result_url(const apixo_task *t, size_t index);

/* The failCode, e.g. "CONTENT_VIOLATION" (any string, passed through except
 * the API key, which reads "[redacted]"), or NULL unless the state is failed. */
const char *apixo_task_fail_code(const apixo_task *t);

/* The failMsg (the API key in it reads "[redacted]"), or NULL unless the state
 * is failed. */
const char *apixo_task_fail_message(const apixo_task *t);

/* createTime, Unix milliseconds; 0 when unknown or out of range (negative,
 * past year 9999). */
int64_t apixo_task_create_time_ms(const apixo_task *t);

/* completeTime, Unix milliseconds; 0 until terminal, or when out of range. */
int64_t apixo_task_complete_time_ms(const apixo_task *t);

/* costTime, milliseconds; 0 until terminal, or when out of range. */
int64_t apixo_task_cost_time_ms(const apixo_task *t);

/*
 * The status `data` object as received from the API (status answer or
 * webhook), as JSON text, with the client's API key, wherever it appears,
 * replaced by "[redacted]"; "{}" when no status was ever received (e.g. an
 * intent from the journal). Never NULL for a non-NULL task.
 */
const char *apixo_task_json(const apixo_task *t);

/*
 * The caller's tag from apixo_request_set_tag, or NULL when none. Known for
 * tasks submitted through this client or found in its journal.
 */
const char *apixo_task_tag(const apixo_task *t);

/* A copy of t, owned: free with apixo_task_free. NULL when t is NULL or memory
 * is exhausted. */
apixo_task *apixo_task_copy(const apixo_task *t);

/* Frees a snapshot. NULL does nothing. Never free a callback's borrowed task. */
void apixo_task_free(apixo_task *t);

/* =========================================================================
 * Blocking calls
 *
 * These block the calling thread (never the engine) until done; any thread
 * may call them, several at once. `model` NULL means "seedream-5-0".
 * Called from inside a callback they work, but stall the other callbacks of
 * the client until they return.
 * ========================================================================= */

/*
 * Validates req (apixo_request_validate) and creates the task (POST
 * generateTask). Past the concurrency cap it first waits in the local queue
 * until a slot frees (a task of this client ends, or has run as long as such a
 * task would). With a journal, the intent is written (fsync) before the POST
 * and the task id (fsync) before this returns.
 * The task then counts toward the concurrency cap until a wait, status or
 * webhook sees it terminal, or until it has run as long as such a task would;
 * it is not polled unless someone waits for or watches it.
 * On success *task_id_out is an owned string, freed with apixo_free.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (NULL argument, validation), the HTTP
 * errors (BAD_REQUEST, UNAUTHORIZED, PAYMENT_REQUIRED, FORBIDDEN, NOT_FOUND
 * for an unknown model, RATE_LIMITED, SERVER), APIXO_ERR_NETWORK (the server
 * certainly did not receive it), APIXO_ERR_INDETERMINATE (sent, and the
 * answer was lost, garbled or a gateway's 502/504: the task may exist and is
 * NOT resubmitted), APIXO_ERR_TIMEOUT (the HTTP
 * timeout before anything was sent), APIXO_ERR_PROTOCOL, APIXO_ERR_IO (journal write),
 * APIXO_ERR_CLOSED.
 */
apixo_code apixo_submit(apixo_client *c, const apixo_request *req, char **task_id_out);

/*
 * apixo_submit with a bound on the wait in the local queue: when no
 * concurrency slot or request token came within queue_timeout_ms (< 0: no
 * bound, as apixo_submit), it returns APIXO_ERR_TIMEOUT with nothing sent and
 * the submit removed from the queue. Once sent, it runs to its answer (the HTTP
 * timeout bounds that). *task_id_out and errors as for apixo_submit.
 */
apixo_code apixo_submit_timeout(apixo_client *c, const apixo_request *req, long queue_timeout_ms,
                                char **task_id_out);

/*
 * One status query (GET statusTask) for task_id of `model` (NULL:
 * "seedream-5-0"). On success *out is an owned snapshot (any state).
 * Errors: APIXO_ERR_INVALID_ARGUMENT (c, task_id or out NULL; task_id empty),
 * APIXO_ERR_NOT_FOUND (404), the other HTTP errors, APIXO_ERR_NETWORK,
 * APIXO_ERR_TIMEOUT, APIXO_ERR_PROTOCOL, APIXO_ERR_CLOSED.
 */
apixo_code apixo_get_status(apixo_client *c, const char *model, const char *task_id,
                            apixo_task **out);

/*
 * Waits until task_id reaches a terminal state, polling on the client's
 * schedule (also completed by a webhook handed to apixo_webhook_ingest).
 * timeout_ms < 0: no deadline; 0: one status check, then APIXO_ERR_TIMEOUT if
 * not terminal; > 0: overall deadline.
 * Returns APIXO_OK with *out = the success snapshot; APIXO_ERR_TASK_FAILED
 * with *out = the failed snapshot (see apixo_task_fail_code);
 * APIXO_ERR_TIMEOUT with *out = the last snapshot seen or NULL. *out is
 * owned (apixo_task_free) whenever non-NULL. On other errors *out is NULL.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (c, task_id or out NULL),
 * APIXO_ERR_NOT_FOUND, the HTTP errors after the retry budget,
 * APIXO_ERR_NETWORK, APIXO_ERR_PROTOCOL, APIXO_ERR_CLOSED.
 */
apixo_code apixo_wait(apixo_client *c, const char *model, const char *task_id,
                      long timeout_ms, apixo_task **out);

/*
 * apixo_submit followed by apixo_wait with one overall deadline (timeout_ms as
 * for apixo_wait, covering the queue, the submit and the wait). Returns and
 * sets *out as apixo_wait does; on a submit error, that error with *out NULL.
 */
apixo_code apixo_generate(apixo_client *c, const apixo_request *req, long timeout_ms,
                          apixo_task **out);

/* =========================================================================
 * Callbacks (the event-driven path)
 * ========================================================================= */

/*
 * Called exactly once per tracked task: in thread mode on the client's
 * dispatcher thread, one callback at a time; in queue mode on the thread that
 * calls apixo_dispatch, apixo_drain or apixo_client_free (see "Events"). `task` is borrowed for the duration of the call
 * (apixo_task_copy to keep it). When no status was ever received the task is
 * a stand-in in state pending that carries what is known: for a submit that
 * failed or was never answered, id "" with the model and tag; for a watched
 * task, its id. NULL only when nothing at all is known. `code` is:
 *   APIXO_OK                  the task succeeded
 *   APIXO_ERR_TASK_FAILED     the task failed (see apixo_task_fail_code)
 *   APIXO_ERR_CANCELLED       apixo_cancel stopped tracking it
 *   APIXO_ERR_CLOSED          the client was freed first (task = last snapshot or stand-in)
 *   or the error that ended tracking, e.g. APIXO_ERR_UNAUTHORIZED,
 *   APIXO_ERR_NOT_FOUND, APIXO_ERR_RATE_LIMITED, APIXO_ERR_NETWORK,
 *   APIXO_ERR_INDETERMINATE (see apixo_resume).
 * When code is not APIXO_OK, apixo_last_error() called during the callback
 * (on the thread running it) returns the message describing it.
 * A callback may call the non-blocking functions of its client
 * (apixo_submit_async, apixo_watch, apixo_cancel, task accessors). Blocking
 * calls work but stall other callbacks. apixo_client_free and apixo_drain must
 * not be called from a callback (apixo_drain returns
 * APIXO_ERR_INVALID_ARGUMENT there).
 */
typedef void (*apixo_task_callback)(apixo_code code, const apixo_task *task, void *user_data);

/*
 * Validates req and queues its submission; returns at once. The submit and
 * the tracking happen on the engine thread; cb(code, task, user_data) fires
 * exactly once when the task is terminal or tracking ends (a submit error
 * fires it with a stand-in task: id "", the request's model and tag). With a journal, the intent is written before the
 * POST and the task id before tracking continues.
 * In queue mode cb may be NULL: the completion is then only available through
 * apixo_next_event (with this user_data), or consumed by apixo_dispatch.
 * Errors (cb will then NOT fire): APIXO_ERR_INVALID_ARGUMENT (c or req NULL;
 * cb NULL in thread mode; validation), APIXO_ERR_CLOSED (the client is
 * closing), APIXO_ERR_IO (journal write), APIXO_ERR_NO_MEMORY.
 */
apixo_code apixo_submit_async(apixo_client *c, const apixo_request *req,
                              apixo_task_callback cb, void *user_data);

/*
 * Starts tracking an existing task (e.g. one submitted by another process);
 * returns at once; cb fires exactly once, as for apixo_submit_async (and may
 * be NULL in queue mode, as there).
 * Errors (cb will then NOT fire): APIXO_ERR_INVALID_ARGUMENT (c or task_id
 * NULL; cb NULL in thread mode; task_id empty), APIXO_ERR_CLOSED.
 */
apixo_code apixo_watch(apixo_client *c, const char *model, const char *task_id,
                       apixo_task_callback cb, void *user_data);

/*
 * Stops tracking task_id: its callback fires with APIXO_ERR_CANCELLED (task =
 * the last snapshot or NULL). Nothing is cancelled on the server (the API has
 * no cancel): the task still runs and is billed. Blocking waits on it are not
 * affected.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (c or task_id NULL), APIXO_ERR_NOT_FOUND
 * (no pending callback for that id), APIXO_ERR_CLOSED.
 */
apixo_code apixo_cancel(apixo_client *c, const char *task_id);

/*
 * Blocks until every callback registered before this call has fired.
 * timeout_ms < 0: no deadline; otherwise APIXO_ERR_TIMEOUT once it elapses.
 * In queue mode it runs the waiting callbacks on the calling thread while it
 * waits, and returns once every completion registered before the call has
 * been run (its callback returned), taken by apixo_next_event, or, for a
 * completion registered with a NULL callback, is waiting in the queue (so a
 * host that only pulls never deadlocks here). It runs only completions that
 * have a callback, in queue order; log lines and NULL-callback completions
 * keep their places in the queue.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (c NULL; called from a callback of this
 * client), APIXO_ERR_TIMEOUT, APIXO_ERR_CLOSED (in thread mode: once
 * apixo_client_free has fired the pending callbacks with APIXO_ERR_CLOSED; in
 * queue mode: as soon as apixo_client_free begins, which runs what is left).
 */
apixo_code apixo_drain(apixo_client *c, long timeout_ms);

/* =========================================================================
 * Events: completions on the host's own thread (queue mode)
 *
 * With apixo_options_set_delivery(opts, APIXO_DELIVERY_QUEUE) the library
 * never runs host code on a thread of its own. Each completion (what would
 * be a callback: code, task, user_data, message) and each log line (when a
 * logger is set) waits in the client's queue, in the order they happened,
 * and the host handles them on its own thread, in either of two ways:
 *
 *   - apixo_dispatch runs them: a completion's callback (when it has one), the
 *     logger for a log line; apixo_drain and apixo_client_free run waiting
 *     callbacks too (never the logger);
 *   - apixo_next_event takes the next one as an apixo_event object, for hosts
 *     that cannot be called back at all, or registered a NULL callback.
 *
 * apixo_client_event_fd gives a descriptor that is readable while something
 * waits, for poll/select/epoll or an event loop (asyncio add_reader, libuv,
 * IO#wait_readable, IO::Select): wait for it, then dispatch or take until the
 * queue is empty (or keep taking with timeout 0 until APIXO_ERR_TIMEOUT).
 *
 * Each completion is delivered exactly once: run by one dispatch (drain,
 * free), or handed over by one apixo_next_event. With a journal it is recorded
 * as delivered when its callback returns or when apixo_next_event hands it
 * over. Completions are never dropped; log lines are bounded: at most 1024
 * wait, more are dropped and counted (apixo_client_log_dropped).
 *
 * Several threads may dispatch or take at once: each event goes to one of
 * them, and callbacks may then run concurrently. apixo_dispatch and
 * apixo_drain must not be called from inside a callback (they return
 * APIXO_ERR_INVALID_ARGUMENT there); apixo_next_event may. The blocking calls
 * (apixo_submit, apixo_wait, apixo_generate, ...) are unaffected: they return
 * their results directly, in both modes.
 *
 * A minimal pull-mode host:
 *
 *   apixo_options_set_delivery(opts, APIXO_DELIVERY_QUEUE);
 *   ... apixo_client_new(opts, &c); apixo_client_event_fd(c, &fd);
 *   for (i = 0; i < 3; i++) apixo_submit_async(c, req, NULL, (void *)(intptr_t)i);
 *   while (done < 3) {
 *     struct pollfd p = { fd, POLLIN, 0 };
 *     poll(&p, 1, -1);
 *     apixo_event *ev;
 *     while (apixo_next_event(c, 0, &ev) == APIXO_OK) {
 *       if (apixo_event_kind_of(ev) == APIXO_EVENT_COMPLETION) done++;  // code, task, ...
 *       apixo_event_free(ev);
 *     }
 *   }
 *   apixo_client_free(c);
 * ========================================================================= */

/*
 * A descriptor that is readable (poll/select/epoll, asyncio add_reader,
 * IO#wait_readable, IO::Select) while at least one event (completion or log
 * line) waits. Level-triggered: it stays readable until the queue is empty,
 * and is not readable while it is empty. Owned by the client: never read,
 * write or close it; valid until apixo_client_free returns. The same
 * descriptor for the client's whole life; close-on-exec.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (c or fd_out NULL; thread mode).
 */
apixo_code apixo_client_event_fd(apixo_client *c, int *fd_out);

/*
 * Runs up to max_events waiting events on the calling thread, in order: a
 * completion calls its callback (a completion registered with a NULL callback
 * is consumed: recorded as delivered, nobody told), a log line calls the
 * logger. Waits up to timeout_ms for the first event (0: do not wait; < 0: no
 * deadline); then handles only what is already waiting. *ran_out (may be
 * NULL) = events handled; it is set on every return (0 on errors). APIXO_OK
 * also when nothing was waiting.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (c NULL; max_events 0; thread mode;
 * called from inside a callback of this client), APIXO_ERR_CLOSED (the
 * client is closing and nothing was handled).
 */
apixo_code apixo_dispatch(apixo_client *c, size_t max_events, long timeout_ms, size_t *ran_out);

/* An event taken by apixo_next_event: a completion or a log line. Opaque. */
typedef struct apixo_event apixo_event;

typedef enum apixo_event_kind {
  APIXO_EVENT_COMPLETION = 0,  /* a task callback's delivery: code, task, user_data, message */
  APIXO_EVENT_LOG = 1,         /* a log line: level, message */
  APIXO_EVENT_KIND_FORCE_32BIT = 0x7fffffff
} apixo_event_kind;

/*
 * The pull form: takes the next waiting event off the queue without running
 * any callback or the logger. A completion counts as delivered (journal) once
 * handed over. Waits up to timeout_ms (0: do not wait; < 0: no deadline).
 * On success *out is an owned event, freed with apixo_event_free; otherwise
 * *out is set to NULL (when out is not NULL).
 * Errors: APIXO_ERR_INVALID_ARGUMENT (c or out NULL; thread mode),
 * APIXO_ERR_TIMEOUT (nothing waited in time), APIXO_ERR_CLOSED (the client
 * is closing: apixo_client_free runs or drops what is left).
 */
apixo_code apixo_next_event(apixo_client *c, long timeout_ms, apixo_event **out);

/*
 * Event accessors. Every pointer returned is borrowed from the event and
 * valid until apixo_event_free. With a NULL event: kind APIXO_EVENT_COMPLETION,
 * code APIXO_ERR_INVALID_ARGUMENT, task NULL, user_data NULL, message "",
 * level -1.
 */
apixo_event_kind apixo_event_kind_of(const apixo_event *e);

/* A completion's code, as a callback would get it; APIXO_OK for a log line. */
apixo_code apixo_event_code(const apixo_event *e);

/* A completion's task snapshot (as a callback's task: a stand-in when no
 * status was received; NULL when nothing is known, and for a log line).
 * Borrowed from the event: apixo_task_copy to keep it. */
const apixo_task *apixo_event_task(const apixo_event *e);

/* The user_data given with the completion's callback (also when the callback
 * was NULL); NULL for a log line. */
void *apixo_event_user_data(const apixo_event *e);

/* One line: a completion's message ("" on success: apixo_last_error() cannot
 * carry it here) or the log line. Never NULL. */
const char *apixo_event_message(const apixo_event *e);

/* A log line's level (APIXO_LOG_DEBUG .. APIXO_LOG_ERROR); -1 for a completion. */
int apixo_event_log_level(const apixo_event *e);

/* Frees an event (its task, message). NULL does nothing. */
void apixo_event_free(apixo_event *e);

/*
 * The number of log lines dropped because 1024 were already waiting in the
 * queue, since the client started. 0 in thread mode and for a NULL client.
 */
uint64_t apixo_client_log_dropped(const apixo_client *c);

/* =========================================================================
 * Webhooks
 * ========================================================================= */

/*
 * Hands the raw body of a POST received at a callback_url to the client.
 * Accepts the delivery envelope {"code":..,"message":..,"data":{status}} and a
 * bare status object. Thread-safe: call it from any HTTP server thread, then
 * answer 200.
 *   - A terminal state for a tracked task completes it once: its callback
 *     fires and blocking waits return. APIXO_OK.
 *   - A repeat of an already-completed delivery: APIXO_OK, nothing fires.
 *   - A non-terminal state updates the snapshot but completes nothing: APIXO_OK.
 *   - A task id this client does not know: APIXO_ERR_NOT_FOUND (*out is still
 *     set when out is non-NULL; its model is NULL).
 * out may be NULL; otherwise *out is an owned snapshot of the delivered
 * status (apixo_task_free).
 * Errors: APIXO_ERR_INVALID_ARGUMENT (c or body NULL), APIXO_ERR_PROTOCOL (a
 * body that is not a status: not JSON, no taskId or state), APIXO_ERR_NOT_FOUND,
 * APIXO_ERR_CLOSED.
 */
apixo_code apixo_webhook_ingest(apixo_client *c, const char *body, size_t len,
                                apixo_task **out);

/* =========================================================================
 * Journal: tasks survive a crash of the host
 *
 * With a journal the client appends to a file, fsync'd at the points that
 * matter: an intent record (request and tag) before each submit POST; the
 * task id as soon as it is known, before apixo_submit returns or the async
 * path moves on; terminal states; and each callback delivery. After a crash,
 * a new client on the same file and apixo_resume finish the job: every
 * submitted task is tracked to its end and its final outcome is delivered;
 * nothing is submitted twice. Two cases deliver more than once across runs:
 * a crash during a callback (that callback fires again), and a client freed
 * before a task ended (its callback fired with APIXO_ERR_CLOSED, which is not
 * an outcome: the next run's resume delivers the real one). Key what a
 * callback does by tag or task id.
 * ========================================================================= */

/*
 * The journal file (created if missing, append-only). Copied. NULL: no
 * journal. Only one client at a time may use a journal file (apixo_client_new
 * takes an exclusive lock and fails with APIXO_ERR_IO otherwise). It must be a
 * regular file of at most 1 GiB: a FIFO, a device, a directory or a larger
 * file makes apixo_client_new fail with APIXO_ERR_IO at once, without reading
 * it. A line longer than 32 MiB, a record that fails its checksum and a
 * record numbered outside 0 to 2^53 were not written by this library: they
 * are skipped like a torn last record.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (opts NULL, path empty).
 */
apixo_code apixo_options_set_journal(apixo_options *opts, const char *path);

/*
 * Re-tracks every task of the journal whose callback has not been delivered
 * and fires cb exactly once for each (as apixo_submit_async's callbacks: on
 * the dispatcher thread in thread mode; in queue mode cb may be NULL and each
 * outcome is an event of apixo_next_event, with user_data):
 *   - a task with an id is polled until terminal (OK / TASK_FAILED / error);
 *   - a task whose outcome was recorded but not delivered fires with that
 *     outcome at once;
 *   - an intent whose POST was never started (the host died while it waited
 *     in the local queue) cannot exist on the server: it is submitted now,
 *     and its callback fires like apixo_submit_async's;
 *   - an intent whose POST was sent but whose answer was never recorded (the
 *     host died in between) fires with APIXO_ERR_INDETERMINATE and a snapshot
 *     whose id is "" and whose tag is the caller's tag. It is NEVER
 *     resubmitted: the task may exist and be billed. The host decides, by the
 *     tag, from its own records: resubmit only if it accepts the risk of
 *     paying twice, or check the provider's dashboard first.
 * A delivery is recorded once the callback returns (in queue mode also when
 * apixo_next_event hands the event over); a crash during a callback
 * means it fires again on the next resume, so make callbacks idempotent (e.g.
 * by tag). Returns at once; apixo_drain waits for the callbacks. Each journal
 * entry is taken up by the first apixo_resume of a client only.
 * Errors: APIXO_ERR_INVALID_ARGUMENT (c NULL; cb NULL in thread mode; the
 * client has no journal), APIXO_ERR_CLOSED, APIXO_ERR_IO.
 */
apixo_code apixo_resume(apixo_client *c, apixo_task_callback cb, void *user_data);

/* =========================================================================
 * Downloads
 *
 * Blocking, safe from any thread. Only http:// and https:// URLs. A file is
 * streamed to "<path>.part-XXXX" beside its destination and renamed into
 * place once complete, so a destination never holds a partial file; on error
 * the temporary file is removed. At most max_download_bytes (options) per file.
 * The options' HTTP timeout bounds each stretch without data, and
 * download_timeout_ms (default 600000 ms) the whole of one attempt, connect to
 * last byte, so a file that trickles still ends (both APIXO_ERR_TIMEOUT).
 * Transient failures (network, timeout, 429, 5xx) are retried up to
 * max_retries times, waiting out a Retry-After up to max_retry_after_ms
 * (default 300000 ms; a longer one fails the call at once). A download waiting
 * to retry returns APIXO_ERR_CLOSED at once when the client is freed.
 * ========================================================================= */

/*
 * Downloads url to path (overwriting it).
 * Errors: APIXO_ERR_INVALID_ARGUMENT (an argument NULL; url not http(s)),
 * APIXO_ERR_NOT_FOUND (HTTP 404), the other HTTP errors, APIXO_ERR_NETWORK,
 * APIXO_ERR_TIMEOUT, APIXO_ERR_PROTOCOL (larger than max_download_bytes),
 * APIXO_ERR_IO (local file error), APIXO_ERR_CLOSED.
 */
apixo_code apixo_download(apixo_client *c, const char *url, const char *path);

/*
 * Downloads every result of t into dir (created if missing), naming the files
 * "<taskId>-<n>.<ext>" with n from 1 and ext from the URL path or else the
 * Content-Type ("jpeg" becomes "jpg"). On success *paths_out is an owned array
 * of *count_out owned paths, freed with apixo_free_paths. On failure files
 * already written are kept and the out-parameters are untouched.
 * Errors: as apixo_download; APIXO_ERR_INVALID_ARGUMENT also for a NULL
 * argument or a task whose state is not success.
 */
apixo_code apixo_download_results(apixo_client *c, const apixo_task *t, const char *dir,
                                  char ***paths_out, size_t *count_out);

/* Frees an array from apixo_download_results and every string in it. NULL
 * does nothing. */
void apixo_free_paths(char **paths, size_t count);

#ifdef __cplusplus
}
#endif

#endif /* APIXO_H */
