/* test_faults.c: retries and the never-double-bill rule, proven with the simulator's counters.
 *
 * Each test resets the simulator, queues faults (POST /_sim/faults), makes one call and
 * asserts both the return code and what the simulator saw (GET /_sim/stats):
 *   statusTask  503, 500            retried -> OK; 1 fault answer + 1 success
 *   statusTask  503 x 4             retry budget (3) spent -> SERVER; 4 requests
 *   generateTask 503                retried once -> OK; 2 POSTs, 1 task created
 *   generateTask 500                NOT retried -> SERVER; 1 POST, no task
 *   generateTask 429 retry_after 1  honoured (>= ~1 s) -> OK; 2 POSTs, 1 task
 *   generateTask reset_before_body  -> INDETERMINATE; 1 POST, never resent, no task
 *   generateTask reset_after_body   -> INDETERMINATE; 1 POST, never resent, 1 task created
 *   statusTask  reset (both kinds)  retried -> OK
 *   delay within the HTTP timeout   -> OK, not retried
 *   statusTask delay > timeout      max_retries 0 -> TIMEOUT; with retries -> OK
 *   generateTask delay > timeout    -> INDETERMINATE; 1 POST; the task exists afterwards
 *   statusTask malformed_json / truncated_body   retried -> OK
 *   generateTask malformed_json / truncated_body -> INDETERMINATE; 1 POST, 1 task
 *   statusTask error_envelope 500 under HTTP 200 -> retried -> OK
 *   statusTask error_envelope 401 under HTTP 200 -> UNAUTHORIZED, not retried
 *   generateTask error_envelope 503 / 500 under HTTP 200 -> retried -> OK / SERVER
 *   a connect failure (nothing listening) -> NETWORK (certainly not sent: retried)
 *   submit_async with reset_after_body -> the callback fires INDETERMINATE with a stand-in
 *   status faults during apixo_wait / callbacks -> tracking survives them
 */
#include "harness.h"

#include <string.h>

static long T(long ms) { return ms * h_slow(); }

static apixo_client *fclient(int max_retries, long timeout_ms) {
  apixo_options *o = h_options();
  if (max_retries >= 0) CHECK_CODE(apixo_options_set_max_retries(o, max_retries), APIXO_OK);
  if (timeout_ms > 0) CHECK_CODE(apixo_options_set_timeout_ms(o, timeout_ms), APIXO_OK);
  apixo_client *c = h_client_with(o);
  apixo_options_free(o);
  return c;
}

/* A submitted task id (before any fault is queued). */
static char *submit_one(apixo_client *c, char *prompt, size_t size, const char *what) {
  apixo_request *r = h_request(h_unique_prompt(prompt, size, what), 1);
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_OK);
  apixo_request_free(r);
  return id;
}

static void status_fault_retried(const char *fault, const char *counter) {
  sim_reset();
  apixo_client *c = fclient(-1, 0);
  if (!c) return;
  char prompt[128];
  char *id = submit_one(c, prompt, sizeof prompt, "faults status");
  if (!id) goto out;
  CHECK_EQ(sim_fault(fault), 0);
  apixo_task *t = NULL;
  CHECK_CODE(apixo_get_status(c, NULL, id, &t), APIXO_OK);
  CHECK_STR(apixo_task_id(t), id);
  apixo_task_free(t);
  json_t *st = sim_stats();
  CHECK_EQ(stats_int(st, counter), 1);
  CHECK_EQ(stats_int(st, "requests.statusTask.200"), 1);
  CHECK_EQ(stats_requests(st, "statusTask"), 2);
  CHECK_EQ(stats_requests(st, "generateTask"), 1);
  json_decref(st);
out:
  apixo_free(id);
  apixo_client_free(c);
}

static void test_status_503_retried(void) {
  status_fault_retried("{\"kind\":\"status\",\"status\":503,\"endpoint\":\"statusTask\"}",
                       "requests.statusTask.503");
}

static void test_status_500_retried(void) {
  status_fault_retried("{\"kind\":\"status\",\"status\":500,\"endpoint\":\"statusTask\"}",
                       "requests.statusTask.500");
}

static void test_status_reset_retried(void) {
  status_fault_retried("{\"kind\":\"reset_after_body\",\"endpoint\":\"statusTask\"}",
                       "requests.statusTask.reset");
  status_fault_retried("{\"kind\":\"reset_before_body\",\"endpoint\":\"statusTask\"}",
                       "requests.statusTask.reset");
}

static void test_status_malformed_retried(void) {
  sim_reset();
  apixo_client *c = fclient(-1, 0);
  if (!c) return;
  char prompt[128];
  char *id = submit_one(c, prompt, sizeof prompt, "faults malformed");
  if (!id) goto out;
  const char *faults[] = {"{\"kind\":\"malformed_json\",\"endpoint\":\"statusTask\"}",
                          "{\"kind\":\"truncated_body\",\"endpoint\":\"statusTask\"}"};
  /* the faulty answer (the real 200 status, a broken body) is retried: the retry brings
   * the real answer */
  for (int i = 0; id && i < 2; i++) {
    CHECK_EQ(sim_fault(faults[i]), 0);
    apixo_task *t = NULL;
    CHECK_CODE(apixo_get_status(c, NULL, id, &t), APIXO_OK);
    CHECK_STR(apixo_task_id(t), id);
    apixo_task_free(t);
  }
  json_t *st = sim_stats();
  CHECK_EQ(stats_int(st, "requests.statusTask.200"), 4); /* 2 faulty + 2 retries */
  CHECK_EQ(stats_int(st, "faults.fired.malformed_json"), 1);
  CHECK_EQ(stats_int(st, "faults.fired.truncated_body"), 1);
  json_decref(st);
out:
  apixo_free(id);
  apixo_client_free(c);
}

static void test_status_budget_spent(void) {
  sim_reset();
  apixo_client *c = fclient(3, 0);
  if (!c) return;
  char prompt[128];
  char *id = submit_one(c, prompt, sizeof prompt, "faults budget");
  if (!id) goto out;
  CHECK_EQ(sim_fault("{\"kind\":\"status\",\"status\":503,\"endpoint\":\"statusTask\",\"count\":4}"), 0);
  apixo_task *t = (apixo_task *)&t;
  CHECK_CODE(apixo_get_status(c, NULL, id, &t), APIXO_ERR_SERVER);
  CHECK(t == (apixo_task *)&t);
  json_t *st = sim_stats();
  CHECK_EQ(stats_int(st, "requests.statusTask.503"), 4); /* 1 + 3 retries */
  CHECK_EQ(stats_requests(st, "statusTask"), 4);
  json_decref(st);
out:
  apixo_free(id);
  apixo_client_free(c);
}

/* A submit under a fault: returns the code, and the counters after `settle_ms`. */
static int submit_under(apixo_client *c, const char *fault, char *prompt, size_t size,
                        const char *what, double *took) {
  sim_reset();
  if (fault) CHECK_EQ(sim_fault(fault), 0);
  apixo_request *r = h_request(h_unique_prompt(prompt, size, what), 1);
  char *id = NULL;
  double t0 = h_now();
  int rc = apixo_submit(c, r, &id);
  if (took) *took = h_now() - t0;
  if (rc == APIXO_OK)
    CHECK(id != NULL);
  else
    CHECK(id == NULL);
  apixo_free(id);
  apixo_request_free(r);
  return rc;
}

static void test_generate_503_retried(void) {
  apixo_client *c = fclient(-1, 0);
  if (!c) return;
  char prompt[128];
  CHECK_CODE(submit_under(c, "{\"kind\":\"status\",\"status\":503,\"endpoint\":\"generateTask\"}",
                          prompt, sizeof prompt, "faults gen503", NULL),
             APIXO_OK);
  json_t *st = sim_stats();
  CHECK_EQ(stats_int(st, "requests.generateTask.503"), 1);
  CHECK_EQ(stats_int(st, "requests.generateTask.200"), 1);
  CHECK_EQ(stats_requests(st, "generateTask"), 2);
  CHECK_EQ(stats_int(st, "tasks_created"), 1);
  CHECK_EQ(stats_prompt(st, "tasks", prompt), 1);
  CHECK_EQ(stats_prompt(st, "submits", prompt), 2); /* sent twice, created once */
  json_decref(st);
  apixo_client_free(c);
}

static void test_retry_budget_and_429(void) {
  /* 429 on status past the budget: RATE_LIMITED after 1 + 3 tries */
  sim_reset();
  apixo_client *c = fclient(3, 0);
  if (!c) return;
  char prompt[128];
  char *id = submit_one(c, prompt, sizeof prompt, "faults 429 budget");
  if (id) {
    CHECK_EQ(sim_fault("{\"kind\":\"status\",\"status\":429,\"endpoint\":\"statusTask\",\"count\":4}"), 0);
    apixo_task *t = NULL;
    CHECK_CODE(apixo_get_status(c, NULL, id, &t), APIXO_ERR_RATE_LIMITED);
    json_t *st = sim_stats();
    CHECK_EQ(stats_int(st, "requests.statusTask.429"), 4);
    json_decref(st);
  }
  apixo_free(id);
  apixo_client_free(c);

  /* max_retries 0: a 503 on submit is not retried */
  c = fclient(0, 0);
  if (!c) return;
  CHECK_CODE(submit_under(c, "{\"kind\":\"status\",\"status\":503,\"endpoint\":\"generateTask\"}",
                          prompt, sizeof prompt, "faults noretry", NULL),
             APIXO_ERR_SERVER);
  json_t *st = sim_stats();
  CHECK_EQ(stats_requests(st, "generateTask"), 1);
  json_decref(st);
  apixo_client_free(c);

  /* a 503 with Retry-After: honoured before the submit is sent again */
  c = fclient(3, 0);
  if (!c) return;
  double took = 0;
  CHECK_CODE(submit_under(c,
                          "{\"kind\":\"status\",\"status\":503,\"retry_after\":1,"
                          "\"endpoint\":\"generateTask\"}",
                          prompt, sizeof prompt, "faults 503ra", &took),
             APIXO_OK);
  CHECK(took >= 0.95);
  apixo_client_free(c);
}

static void test_generate_500_not_retried(void) {
  apixo_client *c = fclient(3, 0);
  if (!c) return;
  char prompt[128];
  CHECK_CODE(submit_under(c, "{\"kind\":\"status\",\"status\":500,\"endpoint\":\"generateTask\"}",
                          prompt, sizeof prompt, "faults gen500", NULL),
             APIXO_ERR_SERVER);
  h_sleep_ms(200); /* nothing is resent later either */
  json_t *st = sim_stats();
  CHECK_EQ(stats_int(st, "requests.generateTask.500"), 1);
  CHECK_EQ(stats_requests(st, "generateTask"), 1);
  CHECK_EQ(stats_int(st, "tasks_created"), 0);
  json_decref(st);
  apixo_client_free(c);
}

/* A 502 or 504 from a gateway may hide a submit the API took: INDETERMINATE, never resent. */
static void test_generate_gateway_errors_are_indeterminate(void) {
  apixo_client *c = fclient(3, 0);
  if (!c) return;
  char prompt[128];
  static const int statuses[] = {502, 504};
  for (int i = 0; i < 2; i++) {
    char fault[128], key[64];
    snprintf(fault, sizeof fault, "{\"kind\":\"status\",\"status\":%d,\"endpoint\":\"generateTask\"}",
             statuses[i]);
    CHECK_CODE(submit_under(c, fault, prompt, sizeof prompt, "faults gateway", NULL), APIXO_ERR_INDETERMINATE);
    h_sleep_ms(200); /* nothing is resent later either */
    json_t *st = sim_stats();
    snprintf(key, sizeof key, "requests.generateTask.%d", statuses[i]);
    CHECK_EQ(stats_int(st, key), 1);
    CHECK_EQ(stats_requests(st, "generateTask"), 1);
    json_decref(st);
  }
  apixo_client_free(c);
}

static void test_generate_429_retry_after(void) {
  apixo_client *c = fclient(-1, 0);
  if (!c) return;
  char prompt[128];
  double took = 0;
  CHECK_CODE(submit_under(c,
                          "{\"kind\":\"status\",\"status\":429,\"retry_after\":1,"
                          "\"endpoint\":\"generateTask\"}",
                          prompt, sizeof prompt, "faults gen429", &took),
             APIXO_OK);
  h_note("submit with a 429 (Retry-After: 1) took %.2f s", took);
  CHECK(took >= 0.95); /* Retry-After is the server's word: not time-scaled */
  CHECK(took < 10.0 * h_slow());
  json_t *st = sim_stats();
  CHECK_EQ(stats_int(st, "requests.generateTask.429"), 1);
  CHECK_EQ(stats_int(st, "requests.generateTask.200"), 1);
  CHECK_EQ(stats_int(st, "tasks_created"), 1);
  CHECK_EQ(stats_prompt(st, "submits", prompt), 2); /* sent twice (429 first) */
  CHECK_EQ(stats_prompt(st, "tasks", prompt), 1);
  json_decref(st);
  apixo_client_free(c);
}

/* The answer to a submit is lost after the body went out: INDETERMINATE, exactly one POST. */
static void lost_answer(const char *fault, const char *counter, int task_created, int read) {
  apixo_client *c = fclient(3, 0);
  if (!c) return;
  char prompt[128];
  CHECK_CODE(submit_under(c, fault, prompt, sizeof prompt, "faults lost", NULL),
             APIXO_ERR_INDETERMINATE);
  CHECK(strstr(apixo_last_error(), "sk-sim") == NULL);
  h_sleep_ms(300); /* not resent later either */
  json_t *st = sim_stats();
  CHECK_EQ(stats_int(st, counter), 1);
  CHECK_EQ(stats_requests(st, "generateTask"), 1);
  CHECK_EQ(stats_int(st, "tasks_created"), task_created);
  CHECK_EQ(stats_prompt(st, "tasks", prompt), task_created);
  CHECK_EQ(stats_prompt(st, "submits", prompt), read); /* the body reached the server once */
  json_decref(st);
  apixo_client_free(c);
}

static void test_generate_reset_before_body(void) {
  lost_answer("{\"kind\":\"reset_before_body\",\"endpoint\":\"generateTask\"}",
              "requests.generateTask.reset", 0, 0);
}

static void test_generate_reset_after_body(void) {
  lost_answer("{\"kind\":\"reset_after_body\",\"endpoint\":\"generateTask\"}",
              "requests.generateTask.reset", 1, 1);
}

static void test_generate_malformed_json(void) {
  lost_answer("{\"kind\":\"malformed_json\",\"endpoint\":\"generateTask\"}",
              "requests.generateTask.200", 1, 1);
}

static void test_generate_truncated_body(void) {
  lost_answer("{\"kind\":\"truncated_body\",\"endpoint\":\"generateTask\"}",
              "requests.generateTask.200", 1, 1);
}

static void test_delay(void) {
  /* within the HTTP timeout: just slower, not retried */
  sim_reset();
  apixo_client *c = fclient(3, 3000);
  if (!c) return;
  char prompt[128];
  char *id = submit_one(c, prompt, sizeof prompt, "faults delay");
  if (id) {
    CHECK_EQ(sim_fault("{\"kind\":\"delay\",\"ms\":250,\"endpoint\":\"statusTask\"}"), 0);
    apixo_task *t = NULL;
    double t0 = h_now();
    CHECK_CODE(apixo_get_status(c, NULL, id, &t), APIXO_OK);
    CHECK(h_now() - t0 >= 0.24);
    apixo_task_free(t);
    json_t *st = sim_stats();
    CHECK_EQ(stats_requests(st, "statusTask"), 1);
    json_decref(st);
  }
  apixo_free(id);
  apixo_client_free(c);

  /* beyond the HTTP timeout, no retries: TIMEOUT after about the timeout */
  sim_reset();
  c = fclient(0, 300);
  if (!c) return;
  id = submit_one(c, prompt, sizeof prompt, "faults delay2");
  if (id) {
    CHECK_EQ(sim_fault("{\"kind\":\"delay\",\"ms\":800,\"endpoint\":\"statusTask\"}"), 0);
    apixo_task *t = (apixo_task *)&t;
    double t0 = h_now();
    CHECK_CODE(apixo_get_status(c, NULL, id, &t), APIXO_ERR_TIMEOUT);
    double took = h_now() - t0;
    CHECK(took >= 0.25);
    CHECK(took < 0.8 * h_slow());
    CHECK(t == (apixo_task *)&t);
    json_t *st = sim_stats();
    CHECK_EQ(stats_int(st, "faults.fired.delay"), 1);
    json_decref(st);
    h_sleep_ms(700); /* let the sim finish that request before the next reset */
  }
  apixo_free(id);
  apixo_client_free(c);

  /* beyond the timeout with retries: the retry gets the answer */
  sim_reset();
  c = fclient(3, 300);
  if (!c) return;
  id = submit_one(c, prompt, sizeof prompt, "faults delay3");
  if (id) {
    CHECK_EQ(sim_fault("{\"kind\":\"delay\",\"ms\":800,\"endpoint\":\"statusTask\"}"), 0);
    apixo_task *t = NULL;
    CHECK_CODE(apixo_get_status(c, NULL, id, &t), APIXO_OK);
    apixo_task_free(t);
    h_sleep_ms(900); /* the delayed request is counted when the sim answers it */
    json_t *st = sim_stats();
    CHECK_EQ(stats_int(st, "faults.fired.delay"), 1);
    CHECK_EQ(stats_requests(st, "statusTask"), 2);
    json_decref(st);
  }
  apixo_free(id);
  apixo_client_free(c);

  /* a submit whose answer takes longer than the timeout: sent, answer lost */
  c = fclient(3, 300);
  if (!c) return;
  CHECK_CODE(submit_under(c, "{\"kind\":\"delay\",\"ms\":800,\"endpoint\":\"generateTask\"}",
                          prompt, sizeof prompt, "faults delay4", NULL),
             APIXO_ERR_INDETERMINATE);
  h_sleep_ms(900); /* the sim creates the task once its delay is over */
  json_t *st = sim_stats();
  CHECK_EQ(stats_requests(st, "generateTask"), 1);
  CHECK_EQ(stats_int(st, "tasks_created"), 1);
  CHECK_EQ(stats_prompt(st, "submits", prompt), 1);
  json_decref(st);
  apixo_client_free(c);
}

static void test_error_envelope(void) {
  sim_reset();
  apixo_client *c = fclient(3, 0);
  if (!c) return;
  char prompt[128];
  char *id = submit_one(c, prompt, sizeof prompt, "faults envelope");
  if (!id) goto out;
  /* HTTP 200 carrying {"code":500}: an error, retried */
  CHECK_EQ(sim_fault("{\"kind\":\"error_envelope\",\"code\":500,\"endpoint\":\"statusTask\"}"), 0);
  apixo_task *t = NULL;
  CHECK_CODE(apixo_get_status(c, NULL, id, &t), APIXO_OK);
  apixo_task_free(t);
  json_t *st = sim_stats();
  CHECK_EQ(stats_int(json_object_get(json_object_get(st, "requests"), "statusTask"), "200:500"), 1);
  CHECK_EQ(stats_int(st, "requests.statusTask.200"), 1);
  json_decref(st);

  /* HTTP 200 carrying {"code":401}: UNAUTHORIZED, not retried */
  sim_reset();
  apixo_free(id);
  id = submit_one(c, prompt, sizeof prompt, "faults envelope401");
  if (!id) goto out;
  CHECK_EQ(sim_fault("{\"kind\":\"error_envelope\",\"code\":401,\"endpoint\":\"statusTask\"}"), 0);
  t = (apixo_task *)&t;
  CHECK_CODE(apixo_get_status(c, NULL, id, &t), APIXO_ERR_UNAUTHORIZED);
  CHECK(t == (apixo_task *)&t);
  st = sim_stats();
  CHECK_EQ(stats_int(json_object_get(json_object_get(st, "requests"), "statusTask"), "200:401"), 1);
  CHECK_EQ(stats_requests(st, "statusTask"), 1);
  json_decref(st);

  /* on generateTask: {"code":503} under 200 was not processed: retried; 500: not retried */
  CHECK_CODE(submit_under(c, "{\"kind\":\"error_envelope\",\"code\":503,\"endpoint\":\"generateTask\"}",
                          prompt, sizeof prompt, "faults genenv503", NULL),
             APIXO_OK);
  st = sim_stats();
  CHECK_EQ(stats_requests(st, "generateTask"), 2);
  CHECK_EQ(stats_int(st, "tasks_created"), 1);
  json_decref(st);
  CHECK_CODE(submit_under(c, "{\"kind\":\"error_envelope\",\"code\":500,\"endpoint\":\"generateTask\"}",
                          prompt, sizeof prompt, "faults genenv500", NULL),
             APIXO_ERR_SERVER);
  st = sim_stats();
  CHECK_EQ(stats_requests(st, "generateTask"), 1);
  CHECK_EQ(stats_int(st, "tasks_created"), 0);
  json_decref(st);
out:
  apixo_free(id);
  apixo_client_free(c);
}

static void test_connect_failure(void) {
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_base_url(o, "http://127.0.0.1:1/api/v1"), APIXO_OK);
  CHECK_CODE(apixo_options_set_max_retries(o, 2), APIXO_OK);
  apixo_client *c = h_client_with(o);
  apixo_options_free(o);
  if (!c) return;
  apixo_request *r = h_request("nobody listens", 1);
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_ERR_NETWORK);
  CHECK(id == NULL);
  apixo_task *t = NULL;
  CHECK_CODE(apixo_get_status(c, NULL, "task_1", &t), APIXO_ERR_NETWORK);
  apixo_request_free(r);
  apixo_client_free(c);
}

static void test_async_lost_answer(void) {
  apixo_client *c = fclient(3, 0);
  if (!c) return;
  sim_reset();
  CHECK_EQ(sim_fault("{\"kind\":\"reset_after_body\",\"endpoint\":\"generateTask\"}"), 0);
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "faults async lost"), 1);
  CHECK_CODE(apixo_request_set_tag(r, "lost-1"), APIXO_OK);
  h_slot s;
  memset(&s, 0, sizeof s);
  CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &s), APIXO_OK);
  CHECK_CODE(apixo_drain(c, T(10000)), APIXO_OK);
  CHECK_EQ(s.fired, 1);
  CHECK_CODE(s.code, APIXO_ERR_INDETERMINATE);
  CHECK(s.has_task);
  CHECK_STR(s.id, "");
  CHECK_STR(s.tag, "lost-1");
  CHECK_STR(s.model, "seedream-5-0");
  CHECK_EQ(s.state, APIXO_STATE_PENDING);
  CHECK_STR(s.json, "{}"); /* no status was ever received */
  CHECK(s.message[0] != 0);
  json_t *st = sim_stats();
  CHECK_EQ(stats_requests(st, "generateTask"), 1);
  CHECK_EQ(stats_prompt(st, "tasks", prompt), 1);
  json_decref(st);
  apixo_request_free(r);
  apixo_client_free(c);
}

/* Status faults while a task is tracked (wait and callbacks): tracking survives them. */
static void test_tracking_survives_faults(void) {
  apixo_client *c = fclient(3, 0);
  if (!c) return;
  sim_reset();
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "faults tracking"), 1);
  CHECK_EQ(sim_fault("[{\"kind\":\"status\",\"status\":503,\"endpoint\":\"statusTask\"},"
                     "{\"kind\":\"truncated_body\",\"endpoint\":\"statusTask\"},"
                     "{\"kind\":\"reset_after_body\",\"endpoint\":\"statusTask\"}]"),
           0);
  apixo_task *t = NULL;
  CHECK_CODE(apixo_generate(c, r, T(30000), &t), APIXO_OK);
  CHECK_EQ(apixo_task_state(t), APIXO_STATE_SUCCESS);
  apixo_task_free(t);
  CHECK_EQ(sim_fault("[{\"kind\":\"status\",\"status\":500,\"endpoint\":\"statusTask\"},"
                     "{\"kind\":\"malformed_json\",\"endpoint\":\"statusTask\"}]"),
           0);
  h_slot s;
  memset(&s, 0, sizeof s);
  CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &s), APIXO_OK);
  CHECK_CODE(apixo_drain(c, T(30000)), APIXO_OK);
  CHECK_EQ(s.fired, 1);
  CHECK_CODE(s.code, APIXO_OK);
  json_t *st = sim_stats();
  CHECK_EQ(stats_int(st, "faults.fired.status"), 2);
  CHECK_EQ(stats_int(st, "tasks_created"), 2);
  CHECK_EQ(stats_prompt(st, "submits", prompt), 2);
  json_decref(st);
  apixo_request_free(r);
  apixo_client_free(c);
}

int main(void) {
  h_init();
  RUN(test_status_503_retried);
  RUN(test_status_500_retried);
  RUN(test_status_reset_retried);
  RUN(test_status_malformed_retried);
  RUN(test_status_budget_spent);
  RUN(test_generate_503_retried);
  RUN(test_generate_500_not_retried);
  RUN(test_generate_gateway_errors_are_indeterminate);
  RUN(test_retry_budget_and_429);
  RUN(test_generate_429_retry_after);
  RUN(test_generate_reset_before_body);
  RUN(test_generate_reset_after_body);
  RUN(test_generate_malformed_json);
  RUN(test_generate_truncated_body);
  RUN(test_delay);
  RUN(test_error_envelope);
  RUN(test_connect_failure);
  RUN(test_async_lost_answer);
  RUN(test_tracking_survives_faults);
  return h_finish();
}
