/*
 * harness.h: the tiny test framework of the C tests.
 *
 *   - CHECK / CHECK_EQ / CHECK_CODE / CHECK_STR / CHECK_CONTAINS count passes and failures
 *     (thread-safe) and print file:line, the values and apixo_last_error() on a failure;
 *   - RUN(test_fn) runs one test function and prints its name and time;
 *   - h_finish() prints the final line "N passed, N failed" and returns the exit status;
 *   - h_options() / h_client() build a client against the simulator from the environment
 *     (APIXO_BASE_URL, APIXO_API_KEY, APIXO_TIME_SCALE), set by Tests/c/run.py;
 *   - sim_*() drive the simulator's test hooks (APIXO_SIM_URL) through libcurl + jansson;
 *   - hs_*() run a scripted HTTP server on 127.0.0.1 that answers what a test tells it to
 *     (any status line, headers, body, a body dripped byte by byte, or a closed connection).
 */
#ifndef APIXO_TEST_HARNESS_H
#define APIXO_TEST_HARNESS_H

#include <apixo.h>
#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- assertions */

int h_check(int ok, const char *file, int line, const char *expr);
int h_check_eq(long long got, long long want, const char *file, int line, const char *expr,
               const char *want_expr);
int h_check_code(int got, int want, const char *file, int line, const char *expr);
int h_check_str(const char *got, const char *want, const char *file, int line, const char *expr);
int h_check_contains(const char *hay, const char *needle, const char *file, int line,
                     const char *expr);
void h_note(const char *fmt, ...);

#define CHECK(cond) h_check(!!(cond), __FILE__, __LINE__, #cond)
#define CHECK_EQ(got, want) \
  h_check_eq((long long)(got), (long long)(want), __FILE__, __LINE__, #got, #want)
#define CHECK_CODE(expr, want) h_check_code((int)(expr), (int)(want), __FILE__, __LINE__, #expr)
#define CHECK_STR(got, want) h_check_str((got), (want), __FILE__, __LINE__, #got)
#define CHECK_CONTAINS(hay, needle) h_check_contains((hay), (needle), __FILE__, __LINE__, #hay)

/* Runs a test function: prints "== name", then its duration. With APIXO_TEST_ONLY set, only
 * the tests whose name contains it run. */
void h_run(const char *name, void (*fn)(void));
#define RUN(fn) h_run(#fn, fn)

/* Call first in main (curl global init, line-buffered output). */
void h_init(void);
/* The number of failed checks so far. */
int h_failures(void);
/* Prints "N passed, N failed"; returns 0 when nothing failed, else 1. */
int h_finish(void);

/* ---------------------------------------------------------------- environment and time */

const char *h_base_url(void);  /* APIXO_BASE_URL (http://HOST:PORT/api/v1) */
const char *h_api_key(void);   /* APIXO_API_KEY, default sk-sim */
const char *h_sim_url(void);   /* APIXO_SIM_URL (http://HOST:PORT) */
double h_time_scale(void);     /* APIXO_TIME_SCALE, default 0.01 */
/* 1 normally; larger under valgrind (APIXO_VALGRIND=1), to stretch generous deadlines. */
int h_slow(void);

double h_now(void);            /* monotonic seconds */
int64_t h_wall_ms(void);       /* Unix milliseconds */
void h_sleep_ms(long ms);
/* pthread_create(th, NULL, fn, arg), returning only once the new thread runs (at most 10 s),
 * then after settle_ms more (x h_slow()) for it to reach the call it blocks in. For tests that
 * free a client under a blocked call: a thread started late would use a handle already freed.
 * 0 on success. */
int h_thread_start(pthread_t *th, void *(*fn)(void *), void *arg, long settle_ms);

/* A new options object: base URL, API key and time scale from the environment. */
apixo_options *h_options(void);
/* A client from h_options() (NULL and a failed check if that fails). */
apixo_client *h_client(void);
/* A client from the given options (not freed). */
apixo_client *h_client_with(apixo_options *opts);

/* A seedream-5-0 request: prompt, max_images n (0 = unset), resolution 2K. */
apixo_request *h_request(const char *prompt, int max_images);

/* A unique prompt "<prefix> <pid>-<counter>" in buf. */
const char *h_unique_prompt(char *buf, size_t size, const char *prefix);

/* mkdtemp under $TMPDIR or /tmp; the path is malloc'd. */
char *h_tempdir(const char *prefix);
/* rm -rf of a directory tree made by h_tempdir. */
void h_rmtree(const char *path);

/* ---------------------------------------------------------------- simulator hooks */

/* One call to the simulator: method, path (e.g. "/_sim/stats"), JSON body or NULL. Returns the
 * parsed answer (the whole envelope; owned, json_decref) or NULL; *status gets the HTTP
 * status when non-NULL. */
json_t *sim_call(const char *method, const char *path, const char *body, long *status);

/* The same against the API itself (h_base_url() + path, with the API key): raw requests that
 * bypass the library, e.g. api_call("POST", "/generateTask/seedream-5-0", body, &status). */
json_t *api_call(const char *method, const char *path, const char *body, long *status);

int sim_reset(void);                 /* POST /_sim/reset; 0 on success */
int sim_fault(const char *json);     /* POST /_sim/faults (a fault or a list); 0 on success */
int sim_clear_faults(void);          /* DELETE /_sim/faults */
int sim_config(const char *json);    /* POST /_sim/config; 0 on success */
/* Restores the configuration run.py starts the simulator with (rpm 60, concurrency 10). */
int sim_default_config(void);
json_t *sim_stats(void);             /* GET /_sim/stats: the `data` object (owned) or NULL */

/* An integer from a stats object by a dotted path ("requests.generateTask.200"); 0 when
 * missing. Keys containing '.' cannot be reached this way: use stats_prompt(). */
long long stats_int(json_t *stats, const char *path);
/* submits_by_prompt[prompt] (which = "submits") or tasks_by_prompt[prompt] (which = "tasks"). */
long long stats_prompt(json_t *stats, const char *which, const char *prompt);
/* Sum of every counter under requests.<endpoint>. */
long long stats_requests(json_t *stats, const char *endpoint);

/* ---------------------------------------------------------------- small helpers */

/* Reads a whole file (malloc'd, NUL-terminated, *len bytes) or NULL. */
char *h_read_file(const char *path, size_t *len);
int h_file_exists(const char *path);
/* Number of directory entries whose name contains `needle`. */
int h_count_entries(const char *dir, const char *needle);

/* A per-callback record: how many times it fired, with which code, on which thread. */
typedef struct h_slot {
  int fired;
  int code;
  int has_task;
  int state;
  char id[128];
  char tag[128];
  char model[64];
  char json[256]; /* apixo_task_json, truncated */
  char message[512];
  pthread_t thread;  /* the thread it ran on (last firing) */
} h_slot;

/* A callback recording into the h_slot passed as user_data (thread-safe). */
void h_slot_cb(apixo_code code, const apixo_task *task, void *user_data);
/* Waits until n of the tasks whose callbacks record into slots[0..nslots) have been accepted
 * on the client's side (their ids known and journalled): tracked (apixo_client_stats; a task is
 * tracked once its id is on disk) plus already fired >= n, or the deadline (seconds) passes.
 * 1 when they have. For thread-mode clients (the slots fire on their own). */
int h_wait_accepted(apixo_client *c, h_slot *slots, int nslots, long long n, double seconds);
/* Waits until every slot fired at least once or the deadline (seconds) passes. */
int h_wait_slots(h_slot *slots, int n, double seconds);
/* Locks a mutex shared by the slot callbacks (to read slots consistently). */
void h_slots_lock(void);
void h_slots_unlock(void);

/* ---------------------------------------------------------------- a scripted HTTP server */

/*
 * One answer of the scripted server. Requests take the first queued reply whose `path` is a
 * prefix of the request target (e.g. "/api/v1/statusTask"); it answers `times` requests (0
 * means 1, -1 without end) and is then dropped. Every answer carries "Connection: close" and,
 * unless no_length, a Content-Length of the body. A request that finds no reply gets a 500
 * whose message says so (and counts in hs_unmatched).
 */
typedef struct hs_reply {
  const char *path;     /* prefix of the request target; NULL matches any */
  int times;            /* 0: once; -1: every matching request */
  int status;           /* HTTP status; 0 closes the connection without answering */
  const char *headers;  /* extra header lines, each ending in "\r\n"; NULL: none */
  const char *body;     /* NULL: empty */
  long drip_ms;         /* > 0: the body goes out one byte every drip_ms */
  int no_length;        /* no Content-Length header */
} hs_reply;

typedef struct hs_server hs_server;

/* A listening TCP socket on 127.0.0.1 on a free port (*port gets it); -1 on failure. */
int h_listen_loopback(int backlog, int *port);

/* Starts a server on 127.0.0.1 on a free port (its own threads). NULL on failure. */
hs_server *hs_start(void);
/* Queues a reply (its strings are copied). */
void hs_push(hs_server *s, hs_reply r);
/* Drops every queued reply and forgets the requests seen (hs_requests, hs_unmatched). */
void hs_clear(hs_server *s);
/* "http://127.0.0.1:PORT" and "http://127.0.0.1:PORT/api/v1". */
const char *hs_url(hs_server *s);
const char *hs_api(hs_server *s);
/* Requests received whose target starts with prefix (NULL: all), and those no reply matched. */
int hs_requests(hs_server *s, const char *prefix);
int hs_unmatched(hs_server *s);
/* Stops accepting, ends dripping answers, joins every thread and frees the server. */
void hs_stop(hs_server *s);
/* h_options() with the base URL of this server. */
apixo_options *hs_options(hs_server *s);

#endif
