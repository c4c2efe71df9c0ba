/* test_hostile.c: hostile input never kills, wedges or leaks through the host.
 *
 * A scripted server (hs_* in harness.c) gives answers no real server would, and hostile
 * journal files stand in for a corrupted disk:
 *   Retry-After 10000000000000000, 1000000000, an HTTP date in year 9999 on 429/503 of a
 *     status request, a submit and a download  -> the call ends at once with RATE_LIMITED /
 *     SERVER and a message that quotes the Retry-After; the client is not frozen either
 *   a Retry-After within the cap               -> honoured, then the call succeeds
 *   createTime 1e300, completeTime -1e300, costTime 1e19 in status answers and webhooks
 *                                              -> no trap; treated as absent (0)
 *   completeTime INT64_MAX, or a latency of 11 days -> the next task is still polled at once
 *   createTime an hour in the future for a watched (and a resumed) task -> polled promptly
 *   the API key echoed in bodies, headers, fail messages, URLs -> never in apixo_last_error,
 *     a log line, apixo_task_json or the fail message; replaced by "[redacted]"
 *   server messages with CR, LF, U+2028       -> one-line errors and log lines
 *   a download that drips one byte every 200 ms -> ended by the download timeout
 *   apixo_client_free while get_status sleeps in a backoff, a download sleeps out a
 *     Retry-After, a submit waits to be resent, a wait and a drain block -> all return
 *     APIXO_ERR_CLOSED within 2 s of the free
 *   a journal that is a FIFO, /dev/zero, a directory, a file over the size bound, a record
 *     with seq near INT64_MAX, a 200 MiB line -> a clear APIXO_ERR_IO at once, or the record
 *     skipped; memory stays bounded
 *   a handle of another apixo type (a request passed as a client, a client to
 *     apixo_request_free, ...)                 -> APIXO_ERR_INVALID_ARGUMENT naming the type,
 *     NULL from accessors, frees that do nothing; both objects go on working
 */
#include "harness.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#define KEY "sk-hostile-Zq81-secret-0123456789"

static double S(double seconds) { return seconds * h_slow(); }

/* ---------------------------------------------------------------- helpers */

static hs_server *srv;

/* Log lines of the client under test, with checks that none is multi-line or holds the key. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static int log_lines, log_with_key, log_multiline;

static void log_cb(int level, const char *message, void *ud) {
  (void)level;
  (void)ud;
  pthread_mutex_lock(&log_lock);
  log_lines++;
  if (strstr(message, KEY)) {
    log_with_key++;
    printf("     log line with the key: %s\n", message);
  }
  if (strchr(message, '\n') || strchr(message, '\r')) log_multiline++;
  pthread_mutex_unlock(&log_lock);
}

static void log_reset(void) {
  pthread_mutex_lock(&log_lock);
  log_lines = log_with_key = log_multiline = 0;
  pthread_mutex_unlock(&log_lock);
}

/* Options against the scripted server: the test key, a debug logger, and the given
 * max_retries (-1: the default). */
static apixo_options *opts(int max_retries) {
  apixo_options *o = hs_options(srv);
  CHECK_CODE(apixo_options_set_api_key(o, KEY), APIXO_OK);
  CHECK_CODE(apixo_options_set_logger(o, log_cb, APIXO_LOG_DEBUG, NULL), APIXO_OK);
  if (max_retries >= 0) CHECK_CODE(apixo_options_set_max_retries(o, max_retries), APIXO_OK);
  return o;
}

static apixo_client *client(int max_retries) {
  apixo_options *o = opts(max_retries);
  apixo_client *c = h_client_with(o);
  apixo_options_free(o);
  return c;
}

static void reply(const char *path, int times, int status, const char *headers, const char *body) {
  hs_reply r = {path, times, status, headers, body, 0, 0};
  hs_push(srv, r);
}

#define STATUS "/api/v1/statusTask/"
#define SUBMIT "/api/v1/generateTask/"

/* A status answer: the envelope around a data object. */
static const char *status_body(char *buf, size_t n, const char *id, const char *state,
                               const char *extra) {
  const char *result = !strcmp(state, "success")
                           ? ",\"resultJson\":\"{\\\"resultUrls\\\":[\\\"http://127.0.0.1:9/a.png\\\"]}\""
                           : "";
  snprintf(buf, n, "{\"code\":200,\"message\":\"success\",\"data\":{\"taskId\":\"%s\","
                   "\"state\":\"%s\"%s%s%s}}",
           id, state, result, extra && *extra ? "," : "", extra ? extra : "");
  return buf;
}

static const char *submit_body(char *buf, size_t n, const char *id) {
  snprintf(buf, n, "{\"code\":200,\"message\":\"success\",\"data\":{\"taskId\":\"%s\"}}", id);
  return buf;
}

/* One blocking call run on its own thread, so that a call that never returns shows as a
 * failed check instead of a hung test. */
typedef enum { J_STATUS, J_SUBMIT, J_DOWNLOAD, J_WAIT, J_DRAIN, J_CLIENT_NEW } job_kind;

typedef struct job {
  job_kind kind;
  apixo_client *c;
  const char *arg;          /* task id, URL, journal path */
  char path[512];           /* download destination */
  pthread_t thread;
  pthread_mutex_t lock;
  int done;
  int code;
  double started, ended;
  char message[2048];
  apixo_task *task;
  apixo_client *made;       /* J_CLIENT_NEW */
  char *task_id;            /* J_SUBMIT */
} job;

static void *job_main(void *arg) {
  job *j = arg;
  apixo_code rc = APIXO_OK;
  switch (j->kind) {
    case J_STATUS: rc = apixo_get_status(j->c, NULL, j->arg, &j->task); break;
    case J_WAIT: rc = apixo_wait(j->c, NULL, j->arg, -1, &j->task); break;
    case J_DOWNLOAD: rc = apixo_download(j->c, j->arg, j->path); break;
    case J_DRAIN: rc = apixo_drain(j->c, -1); break;
    case J_SUBMIT: {
      apixo_request *r = h_request("hostile", 1);
      rc = apixo_submit(j->c, r, &j->task_id);
      apixo_request_free(r);
      break;
    }
    case J_CLIENT_NEW: {
      apixo_options *o = opts(-1);
      apixo_options_set_journal(o, j->arg);
      rc = apixo_client_new(o, &j->made);
      apixo_options_free(o);
      break;
    }
  }
  pthread_mutex_lock(&j->lock);
  j->code = (int)rc;
  snprintf(j->message, sizeof j->message, "%s", rc == APIXO_OK ? "" : apixo_last_error());
  j->ended = h_now();
  j->done = 1;
  pthread_mutex_unlock(&j->lock);
  return NULL;
}

/* `path`: the download destination (NULL for other kinds). */
static void job_start(job *j, job_kind kind, apixo_client *c, const char *arg, const char *path) {
  memset(j, 0, sizeof *j);
  j->kind = kind;
  j->c = c;
  j->arg = arg;
  if (path) snprintf(j->path, sizeof j->path, "%s", path);
  pthread_mutex_init(&j->lock, NULL);
  j->started = h_now();
  if (pthread_create(&j->thread, NULL, job_main, j) != 0) CHECK(!"pthread_create");
}

/* Waits up to `seconds` for the job. 1 (joined) when it ended; 0 when still running. */
static int job_wait(job *j, double seconds) {
  double deadline = h_now() + seconds;
  for (;;) {
    pthread_mutex_lock(&j->lock);
    int done = j->done;
    pthread_mutex_unlock(&j->lock);
    if (done) {
      pthread_join(j->thread, NULL);
      pthread_mutex_destroy(&j->lock);
      return 1;
    }
    if (h_now() > deadline) return 0;
    h_sleep_ms(10);
  }
}

static void job_clean(job *j) {
  apixo_task_free(j->task);
  apixo_free(j->task_id);
  j->task = NULL;
  j->task_id = NULL;
}

static void check_one_line_no_key(const char *msg) {
  CHECK(msg != NULL && strstr(msg, KEY) == NULL);
  CHECK(msg != NULL && strchr(msg, '\n') == NULL && strchr(msg, '\r') == NULL);
}

/* A new temporary directory (malloc'd; h_rmtree and free it) and "<dir>/journal" in path. */
static char *journal_in_tempdir(char *path, size_t size) {
  char *dir = h_tempdir("apixo-hostile");
  snprintf(path, size, "%s/journal", dir ? dir : "/nonexistent");
  return dir;
}

/* ---------------------------------------------------------------- Retry-After */

static const char *huge_retry_afters[] = {"10000000000000000", "1000000000",
                                          "Fri, 31 Dec 9999 23:59:59 GMT"};

/* A call answered 429/503 with a Retry-After far past the cap ends at once with the code of
 * the answer and a message that quotes what the server asked for. */
static void retry_after_case(job_kind kind, int status, const char *value) {
  hs_clear(srv);
  char headers[128], body[256];
  snprintf(headers, sizeof headers, "Retry-After: %s\r\n", value);
  const char *path = kind == J_STATUS ? STATUS : kind == J_SUBMIT ? SUBMIT : "/files/";
  snprintf(body, sizeof body, "{\"code\":%d,\"message\":\"slow down\",\"data\":null}", status);
  reply(path, -1, status, headers, body);
  apixo_client *c = client(-1);
  if (!c) return;
  char url[256];
  snprintf(url, sizeof url, "%s/files/a.png", hs_url(srv));
  char *dir = h_tempdir("apixo-hostile");
  char dest[512];
  snprintf(dest, sizeof dest, "%s/a.png", dir);
  job j;
  job_start(&j, kind, c, kind == J_DOWNLOAD ? url : "task_ra", dest);
  if (!job_wait(&j, S(5))) {
    h_note("Retry-After %s on %d: the call did not return within 5 s", value, status);
    CHECK(!"a Retry-After past the cap freezes the call");
    return; /* the thread still holds the client: leave both */
  }
  CHECK_CODE(j.code, status == 429 ? APIXO_ERR_RATE_LIMITED : APIXO_ERR_SERVER);
  CHECK_CONTAINS(j.message, "Retry-After");
  CHECK_CONTAINS(j.message, strncmp(value, "Fri", 3) == 0 ? "9999" : value);
  check_one_line_no_key(j.message);
  CHECK_EQ(hs_requests(srv, path), 1); /* not retried */
  job_clean(&j);
  apixo_client_free(c);
  h_rmtree(dir);
  free(dir);
}

static void test_retry_after_huge(void) {
  for (size_t i = 0; i < sizeof huge_retry_afters / sizeof *huge_retry_afters; i++) {
    const char *v = huge_retry_afters[i];
    retry_after_case(J_STATUS, 429, v);
    retry_after_case(J_STATUS, 503, v);
    retry_after_case(J_SUBMIT, 429, v);
    retry_after_case(J_SUBMIT, 503, v);
    retry_after_case(J_DOWNLOAD, 503, v);
    retry_after_case(J_DOWNLOAD, 429, v);
  }
}

/* A Retry-After within the cap is waited out; one past a small cap fails at once, and the
 * client-wide 429 hold that follows lasts the cap, not what the server asked. */
static void test_retry_after_cap(void) {
  hs_clear(srv);
  char ok[512];
  reply(STATUS, 1, 503, "Retry-After: 1\r\n", "{\"code\":503,\"message\":\"busy\",\"data\":null}");
  reply(STATUS, 1, 200, NULL, status_body(ok, sizeof ok, "task_cap", "processing", NULL));
  apixo_options *o = opts(-1);
  CHECK_CODE(apixo_options_set_max_retry_after_ms(o, 2000), APIXO_OK);
  CHECK_CODE(apixo_options_set_max_retry_after_ms(o, -1), APIXO_ERR_INVALID_ARGUMENT);
  apixo_client *c = h_client_with(o);
  apixo_options_free(o);
  if (!c) return;
  apixo_task *t = NULL;
  double t0 = h_now();
  CHECK_CODE(apixo_get_status(c, NULL, "task_cap", &t), APIXO_OK);
  CHECK(h_now() - t0 >= 0.9); /* the server's second was honoured */
  apixo_task_free(t);
  t = NULL;

  /* 429 Retry-After 100 s against a 500 ms cap: fails at once; the next call waits the cap */
  reply(STATUS, 1, 429, "Retry-After: 100\r\n", "{\"code\":429,\"message\":\"later\",\"data\":null}");
  reply(STATUS, 1, 200, NULL, ok);
  apixo_client_free(c);
  o = opts(-1);
  CHECK_CODE(apixo_options_set_max_retry_after_ms(o, 500), APIXO_OK);
  c = h_client_with(o);
  apixo_options_free(o);
  if (!c) return;
  job j;
  job_start(&j, J_STATUS, c, "task_cap", NULL);
  if (!job_wait(&j, S(5))) {
    CHECK(!"a 429 Retry-After of 100 s past a 500 ms cap froze the call");
    return;
  }
  CHECK_CODE(j.code, APIXO_ERR_RATE_LIMITED);
  CHECK_CONTAINS(j.message, "Retry-After");
  CHECK_CONTAINS(j.message, "100");
  job_clean(&j);
  job_start(&j, J_STATUS, c, "task_cap", NULL);
  if (!job_wait(&j, S(5))) {
    CHECK(!"after a 429 past the cap the client stayed frozen longer than the cap");
    return;
  }
  CHECK_CODE(j.code, APIXO_OK);
  job_clean(&j);
  apixo_client_free(c);
}

/* ---------------------------------------------------------------- huge numbers */

static void test_huge_times_status(void) {
  hs_clear(srv);
  char b1[512], b2[512], b3[512];
  reply(STATUS, 1, 200, NULL,
        status_body(b1, sizeof b1, "task_h1", "success",
                    "\"createTime\":1e300,\"completeTime\":-1e300,\"costTime\":1e19"));
  reply(STATUS, 1, 200, NULL,
        status_body(b2, sizeof b2, "task_h2", "processing", "\"createTime\":-9.3e18"));
  reply(STATUS, 1, 200, NULL,
        status_body(b3, sizeof b3, "task_h3", "failed",
                    "\"failCode\":\"X\",\"createTime\":\"99999999999999999999999\","
                    "\"completeTime\":9223372036854775807,\"costTime\":-5"));
  apixo_client *c = client(0);
  if (!c) return;
  apixo_task *t = NULL;
  CHECK_CODE(apixo_get_status(c, NULL, "task_h1", &t), APIXO_OK);
  CHECK_EQ(apixo_task_create_time_ms(t), 0);
  CHECK_EQ(apixo_task_complete_time_ms(t), 0);
  CHECK_EQ(apixo_task_cost_time_ms(t), 0);
  CHECK_EQ(apixo_task_state(t), APIXO_STATE_SUCCESS);
  apixo_task_free(t);
  t = NULL;
  CHECK_CODE(apixo_get_status(c, NULL, "task_h2", &t), APIXO_OK);
  CHECK_EQ(apixo_task_create_time_ms(t), 0);
  apixo_task_free(t);
  t = NULL;
  CHECK_CODE(apixo_get_status(c, NULL, "task_h3", &t), APIXO_OK);
  CHECK_EQ(apixo_task_create_time_ms(t), 0);
  CHECK_EQ(apixo_task_complete_time_ms(t), 0);
  CHECK_EQ(apixo_task_cost_time_ms(t), 0);
  apixo_task_free(t);
  apixo_client_free(c);
}

static void test_huge_times_webhook(void) {
  hs_clear(srv);
  apixo_client *c = client(0);
  if (!c) return;
  const char *body = "{\"taskId\":\"t\",\"state\":\"pending\",\"createTime\":1e300}";
  apixo_task *t = NULL;
  CHECK_CODE(apixo_webhook_ingest(c, body, strlen(body), &t), APIXO_ERR_NOT_FOUND);
  CHECK(t != NULL);
  CHECK_EQ(apixo_task_create_time_ms(t), 0);
  apixo_task_free(t);
  t = NULL;

  /* a watched task completed by a webhook whose times are absurd */
  char processing[512];
  reply(STATUS, -1, 200, NULL, status_body(processing, sizeof processing, "task_wh", "processing",
                                           "\"createTime\":1e300"));
  h_slot slot;
  memset(&slot, 0, sizeof slot);
  CHECK_CODE(apixo_watch(c, NULL, "task_wh", h_slot_cb, &slot), APIXO_OK);
  double deadline = h_now() + S(5);
  while (hs_requests(srv, STATUS) < 1 && h_now() < deadline) h_sleep_ms(10);
  const char *done =
      "{\"code\":200,\"msg\":\"success\",\"data\":{\"taskId\":\"task_wh\",\"state\":\"success\","
      "\"resultJson\":\"{\\\"resultUrls\\\":[\\\"http://127.0.0.1:9/a.png\\\"]}\","
      "\"createTime\":-1e300,\"completeTime\":1e19,\"costTime\":1e300}}";
  CHECK_CODE(apixo_webhook_ingest(c, done, strlen(done), &t), APIXO_OK);
  CHECK_EQ(apixo_task_complete_time_ms(t), 0);
  apixo_task_free(t);
  CHECK(h_wait_slots(&slot, 1, 5));
  CHECK_CODE(slot.code, APIXO_OK);
  apixo_client_free(c);
}

/* One generate against the script: the submit answers `id`, every status answers `status`. */
static apixo_code generate_scripted(apixo_client *c, const char *id, const char *extra,
                                    long timeout_ms) {
  char sb[256], st[1024];
  hs_clear(srv);
  reply(SUBMIT, 1, 200, NULL, submit_body(sb, sizeof sb, id));
  reply(STATUS, -1, 200, NULL, status_body(st, sizeof st, id, "success", extra));
  apixo_request *r = h_request("hostile generate", 1);
  apixo_task *t = NULL;
  apixo_code rc = apixo_generate(c, r, timeout_ms, &t);
  apixo_task_free(t);
  apixo_request_free(r);
  return rc;
}

/* An absurd latency from one success answer must not stall or crash the next task. */
static void test_absurd_latency_next_task_polled(void) {
  char extra[256];
  long long now = (long long)h_wall_ms();
  const char *poison[2];
  char p0[256], p1[256];
  snprintf(p0, sizeof p0, "\"createTime\":%lld,\"completeTime\":9223372036854775807,\"costTime\":1",
           now - 3000);
  /* plausible timestamps, implausible latency: eleven and a half days */
  snprintf(p1, sizeof p1, "\"createTime\":%lld,\"completeTime\":%lld,\"costTime\":1000000000",
           now - 3000, now - 3000 + 1000000000LL);
  poison[0] = p0;
  poison[1] = p1;
  for (int i = 0; i < 2; i++) {
    apixo_client *c = client(0);
    if (!c) return;
    CHECK_CODE(generate_scripted(c, "task_poison", poison[i], (long)S(10) * 1000), APIXO_OK);
    snprintf(extra, sizeof extra, "\"createTime\":%lld,\"completeTime\":%lld,\"costTime\":300",
             (long long)h_wall_ms() - 300, (long long)h_wall_ms());
    double t0 = h_now();
    /* the time scale is 0.01: the next task's first poll is due within about a second */
    CHECK_CODE(generate_scripted(c, "task_next", extra, (long)S(5) * 1000), APIXO_OK);
    CHECK(h_now() - t0 < S(5));
    apixo_client_free(c);
  }
}

/* A watched task whose server createTime lies an hour ahead: later polls are not delayed by
 * the skew. The first poll answers processing, every later one success. */
static void future_create_time_script(const char *id) {
  char b1[512], b2[512], extra[128];
  hs_clear(srv);
  snprintf(extra, sizeof extra, "\"createTime\":%lld", (long long)h_wall_ms() + 3600000);
  reply(STATUS, 1, 200, NULL, status_body(b1, sizeof b1, id, "processing", extra));
  reply(STATUS, -1, 200, NULL, status_body(b2, sizeof b2, id, "success", extra));
}

static void test_future_create_time_watched(void) {
  apixo_client *c = client(0);
  if (!c) return;
  future_create_time_script("task_future");
  h_slot slot;
  memset(&slot, 0, sizeof slot);
  CHECK_CODE(apixo_watch(c, NULL, "task_future", h_slot_cb, &slot), APIXO_OK);
  CHECK(h_wait_slots(&slot, 1, 5));
  CHECK_CODE(slot.code, APIXO_OK);
  CHECK_EQ(hs_requests(srv, STATUS), 2);
  apixo_client_free(c);
}

static void test_future_create_time_resumed(void) {
  char journal[512];
  char *dir = journal_in_tempdir(journal, sizeof journal);
  /* the first client watches the task and is freed before it ends */
  hs_clear(srv);
  char b[512];
  reply(STATUS, -1, 200, NULL, status_body(b, sizeof b, "task_resumed", "processing", NULL));
  apixo_options *o = opts(0);
  CHECK_CODE(apixo_options_set_journal(o, journal), APIXO_OK);
  apixo_client *c = h_client_with(o);
  if (!c) return;
  h_slot first;
  memset(&first, 0, sizeof first);
  CHECK_CODE(apixo_watch(c, NULL, "task_resumed", h_slot_cb, &first), APIXO_OK);
  double deadline = h_now() + S(5);
  while (hs_requests(srv, STATUS) < 1 && h_now() < deadline) h_sleep_ms(10);
  apixo_client_free(c);
  CHECK_CODE(first.code, APIXO_ERR_CLOSED);
  /* the next one resumes it against a server whose clock is an hour ahead */
  future_create_time_script("task_resumed");
  c = h_client_with(o);
  apixo_options_free(o);
  if (!c) return;
  h_slot slot;
  memset(&slot, 0, sizeof slot);
  CHECK_CODE(apixo_resume(c, h_slot_cb, &slot), APIXO_OK);
  CHECK(h_wait_slots(&slot, 1, 5));
  CHECK_CODE(slot.code, APIXO_OK);
  apixo_client_free(c);
  h_rmtree(dir);
  free(dir);
}

/* ---------------------------------------------------------------- secrets and one line */

static void test_key_echo_never_surfaces(void) {
  hs_clear(srv);
  log_reset();
  char b[1024];
  /* an error envelope quoting the Authorization header back */
  reply(STATUS, 1, 401, "X-Echo: Authorization: Bearer " KEY "\r\n",
        "{\"code\":401,\"message\":\"invalid credentials: Bearer " KEY "\",\"data\":{\"error\":\"key "
        KEY " revoked\"}}");
  /* a status object with the header echoed in a field, and in a failMsg */
  reply(STATUS, 1, 200, "X-Echo: Bearer " KEY "\r\n",
        status_body(b, sizeof b, "task_echo", "failed",
                    "\"failCode\":\"BAD_" KEY "\",\"failMsg\":\"you sent Bearer " KEY "\","
                    "\"echo\":{\"Authorization\":\"Bearer " KEY "\",\"" KEY "\":1}"));
  reply(STATUS, -1, 200, NULL, b);
  reply("/files/", -1, 404, NULL, "not here: " KEY);
  apixo_client *c = client(0);
  if (!c) return;
  apixo_task *t = NULL;
  CHECK_CODE(apixo_get_status(c, NULL, "task_echo", &t), APIXO_ERR_UNAUTHORIZED);
  check_one_line_no_key(apixo_last_error());
  CHECK_CONTAINS(apixo_last_error(), "[redacted]");
  CHECK_CODE(apixo_get_status(c, NULL, "task_echo", &t), APIXO_OK);
  CHECK(strstr(apixo_task_json(t), KEY) == NULL);
  CHECK_CONTAINS(apixo_task_json(t), "[redacted]");
  CHECK(strstr(apixo_task_fail_message(t), KEY) == NULL);
  CHECK(strstr(apixo_task_fail_code(t), KEY) == NULL);
  apixo_task_free(t);
  t = NULL;
  CHECK_CODE(apixo_wait(c, NULL, "task_echo", (long)S(5) * 1000, &t), APIXO_ERR_TASK_FAILED);
  check_one_line_no_key(apixo_last_error());
  apixo_task_free(t);
  t = NULL;
  h_slot slot;
  memset(&slot, 0, sizeof slot);
  CHECK_CODE(apixo_watch(c, NULL, "task_echo", h_slot_cb, &slot), APIXO_OK);
  CHECK(h_wait_slots(&slot, 1, 5));
  CHECK_CODE(slot.code, APIXO_ERR_TASK_FAILED);
  check_one_line_no_key(slot.message);
  CHECK(strstr(slot.json, KEY) == NULL);
  /* a webhook carrying the key, and a download URL holding it */
  const char *hook = "{\"taskId\":\"task_other\",\"state\":\"failed\",\"failMsg\":\"" KEY "\"}";
  CHECK_CODE(apixo_webhook_ingest(c, hook, strlen(hook), &t), APIXO_ERR_NOT_FOUND);
  CHECK(t != NULL && strstr(apixo_task_json(t), KEY) == NULL);
  check_one_line_no_key(apixo_last_error());
  apixo_task_free(t);
  const char *bad = "{\"taskId\":\"x\",\"state\":\"" KEY "\"}";
  CHECK_CODE(apixo_webhook_ingest(c, bad, strlen(bad), NULL), APIXO_ERR_PROTOCOL);
  check_one_line_no_key(apixo_last_error());
  const char *garbled = "{\"taskId\":\"x\", " KEY "}";
  CHECK_CODE(apixo_webhook_ingest(c, garbled, strlen(garbled), NULL), APIXO_ERR_PROTOCOL);
  check_one_line_no_key(apixo_last_error());
  char url[256], *dir = h_tempdir("apixo-hostile"), path[512];
  snprintf(url, sizeof url, "%s/files/a.png?k=" KEY, hs_url(srv));
  snprintf(path, sizeof path, "%s/a.png", dir);
  CHECK_CODE(apixo_download(c, url, path), APIXO_ERR_NOT_FOUND);
  check_one_line_no_key(apixo_last_error());
  apixo_client_free(c);
  pthread_mutex_lock(&log_lock);
  CHECK(log_lines > 0);
  CHECK_EQ(log_with_key, 0);
  CHECK_EQ(log_multiline, 0);
  pthread_mutex_unlock(&log_lock);
  h_rmtree(dir);
  free(dir);
}

static void test_multiline_messages_one_line(void) {
  hs_clear(srv);
  log_reset();
  char b[1024];
  reply(STATUS, 1, 400, NULL,
        "{\"code\":400,\"message\":\"first\\nsecond\\r\\nthird\\u2028fourth\\u0007\",\"data\":null}");
  reply(STATUS, -1, 200, NULL,
        status_body(b, sizeof b, "task_ml", "failed",
                    "\"failCode\":\"A\\nB\",\"failMsg\":\"line one\\nline two\\r\\n\""));
  apixo_client *c = client(0);
  if (!c) return;
  apixo_task *t = NULL;
  CHECK_CODE(apixo_get_status(c, NULL, "task_ml", &t), APIXO_ERR_BAD_REQUEST);
  check_one_line_no_key(apixo_last_error());
  CHECK(strstr(apixo_last_error(), "\xe2\x80\xa8") == NULL); /* U+2028 */
  CHECK(strchr(apixo_last_error(), '\a') == NULL);
  CHECK_CONTAINS(apixo_last_error(), "second");
  CHECK_CODE(apixo_wait(c, NULL, "task_ml", (long)S(5) * 1000, &t), APIXO_ERR_TASK_FAILED);
  check_one_line_no_key(apixo_last_error());
  CHECK_CONTAINS(apixo_last_error(), "line two");
  apixo_task_free(t);
  h_slot slot;
  memset(&slot, 0, sizeof slot);
  CHECK_CODE(apixo_watch(c, NULL, "task_ml", h_slot_cb, &slot), APIXO_OK);
  CHECK(h_wait_slots(&slot, 1, 5));
  check_one_line_no_key(slot.message);
  apixo_client_free(c);
  pthread_mutex_lock(&log_lock);
  CHECK(log_lines > 0);
  CHECK_EQ(log_multiline, 0);
  pthread_mutex_unlock(&log_lock);
}

/* ---------------------------------------------------------------- downloads */

static void test_download_deadline(void) {
  hs_clear(srv);
  char body[65];
  memset(body, 'x', 64);
  body[64] = 0;
  hs_reply drip = {"/files/", -1, 200, "Content-Type: image/png\r\n", body, 200, 0};
  hs_push(srv, drip);
  apixo_options *o = opts(0);
  CHECK_CODE(apixo_options_set_timeout_ms(o, 5000), APIXO_OK);
  CHECK_CODE(apixo_options_set_download_timeout_ms(o, 800), APIXO_OK);
  CHECK_CODE(apixo_options_set_download_timeout_ms(o, 0), APIXO_ERR_INVALID_ARGUMENT);
  apixo_client *c = h_client_with(o);
  apixo_options_free(o);
  if (!c) return;
  char url[256], *dir = h_tempdir("apixo-hostile");
  snprintf(url, sizeof url, "%s/files/drip.png", hs_url(srv));
  job j;
  char dest[512];
  snprintf(dest, sizeof dest, "%s/drip.png", dir);
  job_start(&j, J_DOWNLOAD, c, url, dest);
  /* the whole body takes 64 x 200 ms = 12.8 s; the deadline is 0.8 s */
  if (!job_wait(&j, S(6))) {
    CHECK(!"a dripping download was not ended by the download timeout");
    job_wait(&j, 60);
  }
  CHECK_CODE(j.code, APIXO_ERR_TIMEOUT);
  CHECK_CONTAINS(j.message, "download");
  CHECK(j.ended - j.started < S(5));
  CHECK(!h_file_exists(j.path));
  CHECK_EQ(h_count_entries(dir, ".part-"), 0);
  job_clean(&j);
  apixo_client_free(c);
  h_rmtree(dir);
  free(dir);
}

/* ---------------------------------------------------------------- close wakes blocked calls */

/* Starts `kind` against a server that answers `status` with Retry-After 60 (within the cap),
 * waits until the call is asleep, frees the client and checks that the call returned CLOSED
 * within 2 s. */
static void free_wakes(job_kind kind, const char *path, int status) {
  hs_clear(srv);
  char body[128];
  snprintf(body, sizeof body, "{\"code\":%d,\"message\":\"busy\",\"data\":null}", status);
  reply(path, -1, status, "Retry-After: 60\r\n", body);
  apixo_client *c = client(-1);
  if (!c) return;
  char url[256], *dir = h_tempdir("apixo-hostile");
  snprintf(url, sizeof url, "%s/files/a.png", hs_url(srv));
  job j;
  h_slot slot;
  memset(&slot, 0, sizeof slot);
  if (kind == J_DRAIN) {
    apixo_request *r = h_request("hostile drain", 1);
    CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &slot), APIXO_OK);
    apixo_request_free(r);
  }
  char dest[512];
  snprintf(dest, sizeof dest, "%s/a.png", dir);
  job_start(&j, kind, c, kind == J_DOWNLOAD ? url : "task_busy", dest);
  double deadline = h_now() + S(5);
  while (hs_requests(srv, path) < 1 && h_now() < deadline) h_sleep_ms(10);
  h_sleep_ms(200); /* now asleep in the 60 s wait */
  CHECK(hs_requests(srv, path) >= 1);
  double freed = h_now();
  apixo_client_free(c);
  if (!job_wait(&j, S(2))) {
    h_note("call kind %d still blocked 2 s after apixo_client_free", (int)kind);
    CHECK(!"apixo_client_free did not wake the blocked call");
    if (!job_wait(&j, 65)) return;
  }
  CHECK(j.ended - freed < S(2));
  CHECK_CODE(j.code, APIXO_ERR_CLOSED);
  if (kind == J_DRAIN) CHECK_CODE(slot.code, APIXO_ERR_CLOSED);
  job_clean(&j);
  h_rmtree(dir);
  free(dir);
}

static void test_free_wakes_status_in_backoff(void) { free_wakes(J_STATUS, STATUS, 503); }
static void test_free_wakes_download_in_retry_after(void) { free_wakes(J_DOWNLOAD, "/files/", 503); }
static void test_free_wakes_submit_wait_drain(void) {
  free_wakes(J_SUBMIT, SUBMIT, 503);
  free_wakes(J_WAIT, STATUS, 429);
  free_wakes(J_DRAIN, SUBMIT, 503);
}

/* ---------------------------------------------------------------- hostile journals */

static unsigned long crc32_of(const char *s, size_t n) {
  unsigned long c = 0xFFFFFFFFUL;
  for (size_t i = 0; i < n; i++) {
    c ^= (unsigned char)s[i];
    for (int k = 0; k < 8; k++) c = (c & 1) ? 0xEDB88320UL ^ (c >> 1) : c >> 1;
  }
  return c ^ 0xFFFFFFFFUL;
}

/* Appends one checksummed record, as the journal writes them. */
static void journal_record(FILE *f, const char *payload) {
  fprintf(f, "%08lx %s\n", crc32_of(payload, strlen(payload)), payload);
}

/* apixo_client_new on `path` returns at once with APIXO_ERR_IO and a message that has `want`. */
static void journal_refused(const char *path, const char *want) {
  job j;
  job_start(&j, J_CLIENT_NEW, NULL, path, NULL);
  if (!job_wait(&j, S(5))) {
    h_note("apixo_client_new on %s blocked", path);
    CHECK(!"apixo_client_new blocked on a hostile journal path");
    /* a FIFO: a writer that goes away ends the read */
    int fd = open(path, O_WRONLY | O_NONBLOCK);
    if (fd >= 0) close(fd);
    if (!job_wait(&j, 10)) return;
  }
  CHECK_CODE(j.code, APIXO_ERR_IO);
  CHECK_CONTAINS(j.message, want);
  check_one_line_no_key(j.message);
  apixo_client_free(j.made);
}

static void test_journal_not_a_regular_file(void) {
  char *dir = h_tempdir("apixo-hostile");
  char fifo[512];
  snprintf(fifo, sizeof fifo, "%s/fifo", dir);
  CHECK_EQ(mkfifo(fifo, 0600), 0);
  journal_refused(fifo, "not a regular file");
  journal_refused("/dev/zero", "not a regular file");
  char sub[512];
  snprintf(sub, sizeof sub, "%s/adir", dir);
  CHECK_EQ(mkdir(sub, 0700), 0);
  journal_refused(sub, "not a regular file");
  h_rmtree(dir);
  free(dir);
}

static void test_journal_over_size_bound(void) {
  char path[512];
  char *dir = journal_in_tempdir(path, sizeof path);
  /* a sparse file just over the 1 GiB bound: no disk used */
  int fd = open(path, O_WRONLY | O_CREAT, 0600);
  CHECK(fd >= 0);
  CHECK_EQ(ftruncate(fd, (off_t)(1LL << 30) + 1), 0);
  close(fd);
  journal_refused(path, "larger than");
  h_rmtree(dir);
  free(dir);
}

/* Records with sequence numbers near INT64_MAX are not ours: skipped, and later records are
 * numbered normally. */
static void test_journal_huge_seq(void) {
  char path[512];
  char *dir = journal_in_tempdir(path, sizeof path);
  FILE *f = fopen(path, "w");
  if (!CHECK(f != NULL)) return;
  journal_record(f, "{\"t\":\"intent\",\"seq\":9223372036854775807,\"model\":\"seedream-5-0\","
                    "\"body\":\"{}\",\"tag\":\"max\"}");
  journal_record(f, "{\"t\":\"seq\",\"seq\":9223372036854775806}");
  journal_record(f, "{\"t\":\"watch\",\"seq\":-4,\"model\":\"seedream-5-0\",\"id\":\"task_neg\"}");
  journal_record(f, "{\"t\":\"terminal\",\"seq\":9223372036854775807,\"code\":12,\"msg\":\"x\"}");
  journal_record(f, "{\"t\":\"intent\",\"seq\":3,\"model\":\"seedream-5-0\",\"body\":\"{}\",\"tag\":\"ok\"}");
  journal_record(f, "{\"t\":\"terminal\",\"seq\":3,\"code\":12,\"msg\":\"failed earlier\"}");
  fclose(f);
  apixo_options *o = opts(0);
  CHECK_CODE(apixo_options_set_journal(o, path), APIXO_OK);
  apixo_client *c = NULL;
  CHECK_CODE(apixo_client_new(o, &c), APIXO_OK);
  if (c) {
    h_slot slot[2];
    memset(slot, 0, sizeof slot);
    CHECK_CODE(apixo_resume(c, h_slot_cb, &slot[0]), APIXO_OK);
    CHECK(h_wait_slots(slot, 1, 5));
    CHECK_CODE(slot[0].code, APIXO_ERR_TASK_FAILED);
    CHECK_STR(slot[0].tag, "ok");
    CHECK_CODE(apixo_drain(c, (long)S(5) * 1000), APIXO_OK);
    /* a new entry gets the next number after the largest valid one */
    hs_clear(srv);
    char sb[256], st[512];
    reply(SUBMIT, 1, 200, NULL, submit_body(sb, sizeof sb, "task_seq"));
    reply(STATUS, -1, 200, NULL, status_body(st, sizeof st, "task_seq", "success", NULL));
    char *id = NULL;
    apixo_request *r = h_request("hostile seq", 1);
    CHECK_CODE(apixo_submit(c, r, &id), APIXO_OK);
    apixo_free(id);
    apixo_request_free(r);
    apixo_client_free(c);
    size_t n = 0;
    char *text = h_read_file(path, &n);
    CHECK(text != NULL && strstr(text, "\"seq\":4") != NULL);
    CHECK(text != NULL && strstr(text, "9223372036854775807") == NULL);
    free(text);
  }
  apixo_options_free(o);
  h_rmtree(dir);
  free(dir);
}

static long max_rss_kib(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;
}

/* A 200 MiB line (no record of ours is longer than 32 MiB) is skipped without holding it whole;
 * the valid record after it is still read. */
static void test_journal_huge_line(void) {
  char path[512];
  char *dir = journal_in_tempdir(path, sizeof path);
  FILE *f = fopen(path, "w");
  if (!CHECK(f != NULL)) return;
  size_t chunk = 1 << 20;
  char *junk = malloc(chunk);
  memset(junk, 'j', chunk);
  int mib = h_slow() == 1 ? 200 : 40; /* under valgrind: still past the 32 MiB line bound */
  for (int i = 0; i < mib; i++) fwrite(junk, 1, chunk, f);
  fputc('\n', f);
  free(junk);
  journal_record(f, "{\"t\":\"intent\",\"seq\":1,\"model\":\"seedream-5-0\",\"body\":\"{}\",\"tag\":\"after\"}");
  journal_record(f, "{\"t\":\"terminal\",\"seq\":1,\"code\":12,\"msg\":\"failed earlier\"}");
  fclose(f);
  long before = max_rss_kib();
  apixo_options *o = opts(0);
  CHECK_CODE(apixo_options_set_journal(o, path), APIXO_OK);
  apixo_client *c = NULL;
  CHECK_CODE(apixo_client_new(o, &c), APIXO_OK);
  apixo_options_free(o);
  long grown = max_rss_kib() - before;
  h_note("peak RSS grew by %ld KiB reading a journal with a %d MiB line", grown, mib);
  if (h_slow() == 1) CHECK(grown < 100 * 1024);
  if (c) {
    h_slot slot;
    memset(&slot, 0, sizeof slot);
    CHECK_CODE(apixo_resume(c, h_slot_cb, &slot), APIXO_OK);
    CHECK(h_wait_slots(&slot, 1, 5));
    CHECK_STR(slot.tag, "after");
    apixo_client_free(c);
  }
  h_rmtree(dir);
  free(dir);
}

/* FFI hosts pass void pointers: one handle in another's place is a checked error. */
static void test_handle_of_another_type(void) {
  apixo_options *o = h_options();
  apixo_client *c = h_client();
  apixo_request *r = h_request("a request, not a client", 1);
  if (!o || !c || !r) goto out;
  apixo_task *t = NULL;
  CHECK_CODE(apixo_get_status((apixo_client *)r, NULL, "task_x", &t), APIXO_ERR_INVALID_ARGUMENT);
  CHECK_CONTAINS(apixo_last_error(), "not an apixo_client");
  CHECK(t == NULL);
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, (apixo_request *)o, &id), APIXO_ERR_INVALID_ARGUMENT);
  CHECK_CONTAINS(apixo_last_error(), "not an apixo_request");
  CHECK(id == NULL);
  CHECK_CODE(apixo_request_set_prompt((apixo_request *)c, "x"), APIXO_ERR_INVALID_ARGUMENT);
  CHECK_CODE(apixo_options_set_api_key((apixo_options *)r, "sk-x"), APIXO_ERR_INVALID_ARGUMENT);
  CHECK_CONTAINS(apixo_last_error(), "not an apixo_options");
  apixo_client *c2 = NULL;
  CHECK_CODE(apixo_client_new((apixo_options *)r, &c2), APIXO_ERR_INVALID_ARGUMENT);
  CHECK(c2 == NULL);
  CHECK(apixo_request_copy((apixo_request *)c) == NULL);
  CHECK(apixo_task_id((const apixo_task *)r) == NULL);
  CHECK(apixo_event_task((const apixo_event *)c) == NULL);
  CHECK_EQ(apixo_client_log_dropped((apixo_client *)o), 0);
  /* frees of the wrong type do nothing */
  apixo_request_free((apixo_request *)c);
  apixo_client_free((apixo_client *)r);
  apixo_task_free((apixo_task *)o);
  apixo_event_free((apixo_event *)r);
  apixo_options_free((apixo_options *)c);
  CHECK_CONTAINS(apixo_last_error(), "apixo_options_free did nothing");
  /* and every object still works */
  int64_t q = -1;
  CHECK_CODE(apixo_client_stats(c, &q, NULL, NULL, NULL, NULL), APIXO_OK);
  CHECK_EQ(q, 0);
  CHECK_CODE(apixo_request_set_prompt(r, "still a request"), APIXO_OK);
  CHECK_CODE(apixo_request_validate(r), APIXO_OK);
  CHECK_CODE(apixo_options_set_api_key(o, "sk-sim"), APIXO_OK);
out:
  apixo_request_free(r);
  apixo_client_free(c);
  apixo_options_free(o);
}

int main(void) {
  h_init();
  if (h_slow() == 1) {
    /* A regression that reads /dev/zero or a huge file into memory must fail here, not take
     * the machine's memory: 4 GiB of address space is plenty for this test. */
    struct rlimit rl = {(rlim_t)4 << 30, (rlim_t)4 << 30};
    setrlimit(RLIMIT_AS, &rl);
  }
  srv = hs_start();
  if (!CHECK(srv != NULL)) return h_finish();
  RUN(test_retry_after_huge);
  RUN(test_retry_after_cap);
  RUN(test_huge_times_status);
  RUN(test_huge_times_webhook);
  RUN(test_absurd_latency_next_task_polled);
  RUN(test_future_create_time_watched);
  RUN(test_future_create_time_resumed);
  RUN(test_key_echo_never_surfaces);
  RUN(test_multiline_messages_one_line);
  RUN(test_download_deadline);
  RUN(test_free_wakes_status_in_backoff);
  RUN(test_free_wakes_download_in_retry_after);
  RUN(test_free_wakes_submit_wait_drain);
  RUN(test_journal_not_a_regular_file);
  RUN(test_journal_over_size_bound);
  RUN(test_journal_huge_seq);
  RUN(test_journal_huge_line);
  RUN(test_handle_of_another_type);
  hs_stop(srv);
  return h_finish();
}
