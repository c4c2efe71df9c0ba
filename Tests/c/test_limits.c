/* test_limits.c: the request budget and the concurrency cap (apixo_options_set_limits).
 *
 *   - 30 tasks through apixo_submit_async under the default limits (60 requests/minute, 10
 *     tasks: the simulator's defaults too) at time scale 0.01: the simulator answered no 429,
 *     every prompt (one distinct prompt per task) was submitted exactly once and created one
 *     task, exactly one callback per task (OK), peak concurrency <= 10;
 *   - a tighter budget (12 rpm in the options and in the simulator, POST /_sim/config): still
 *     no 429, and the run took at least as long as 12 requests per 0.6 s window allow;
 *   - a tighter concurrency cap (3, both sides): peak <= 3, no 429, for async and for blocking
 *     generate calls from several threads (the local queue);
 *   - limits off (0, 0) against an unlimited simulator: everything completes.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static long T(long ms) { return ms * h_slow(); }

static apixo_client *lclient(int rpm, int tasks) {
  apixo_options *o = h_options();
  if (rpm >= 0) CHECK_CODE(apixo_options_set_limits(o, rpm, tasks), APIXO_OK);
  apixo_client *c = h_client_with(o);
  apixo_options_free(o);
  return c;
}

/* Submits n tasks with distinct prompts, drains, checks the per-task facts; returns the
 * stats (owned) and the elapsed seconds. */
static json_t *run_batch(apixo_client *c, int n, const char *what, double *elapsed) {
  h_slot *slots = calloc((size_t)n, sizeof *slots);
  char(*prompts)[128] = calloc((size_t)n, sizeof *prompts);
  double t0 = h_now();
  for (int i = 0; i < n; i++) {
    apixo_request *r = h_request(h_unique_prompt(prompts[i], sizeof prompts[i], what), 1);
    CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &slots[i]), APIXO_OK);
    apixo_request_free(r);
  }
  CHECK_CODE(apixo_drain(c, T(90000)), APIXO_OK);
  if (elapsed) *elapsed = h_now() - t0;
  h_sleep_ms(50);
  json_t *st = sim_stats();
  int ok = 0;
  h_slots_lock();
  for (int i = 0; i < n; i++) {
    CHECK_EQ(slots[i].fired, 1);
    if (slots[i].code == APIXO_OK) ok++;
    CHECK_EQ(stats_prompt(st, "submits", prompts[i]), 1);
    CHECK_EQ(stats_prompt(st, "tasks", prompts[i]), 1);
  }
  h_slots_unlock();
  CHECK_EQ(ok, n);
  CHECK_EQ(stats_int(st, "tasks_created"), n);
  free(slots);
  free(prompts);
  return st;
}

static void test_thirty_under_defaults(void) {
  sim_reset();
  apixo_client *c = lclient(-1, -1); /* the defaults: 60 rpm, 10 tasks */
  if (!c) return;
  double took = 0;
  json_t *st = run_batch(c, 30, "limits thirty", &took);
  CHECK_EQ(stats_int(st, "rate_limited.total"), 0);
  long long peak = stats_int(st, "peak_concurrent_tasks");
  CHECK(peak <= 10);
  CHECK(peak >= 1);
  long long polls = stats_int(st, "polls_total");
  h_note("30 tasks in %.2f s: peak %lld concurrent, %lld polls, %lld status requests", took,
         peak, polls, stats_requests(st, "statusTask"));
  /* polls are budgeted: not a poll loop */
  CHECK(polls <= 30 * 8);
  json_decref(st);
  apixo_client_free(c);
}

static void test_tight_rpm(void) {
  sim_reset();
  CHECK_EQ(sim_config("{\"rpm\":12}"), 0);
  apixo_client *c = lclient(12, 10);
  if (c) {
    double took = 0;
    json_t *st = run_batch(c, 12, "limits rpm", &took);
    CHECK_EQ(stats_int(st, "rate_limited.total"), 0);
    long long n = stats_requests(st, "generateTask") + stats_requests(st, "statusTask");
    /* at most 12 requests in any 0.6 s window: n requests need (ceil(n/12) - 1) windows */
    double floor_s = (double)((n + 11) / 12 - 1) * 60.0 * h_time_scale();
    h_note("12 tasks at 12 rpm: %lld requests in %.2f s (the budget allows no less than %.2f s)",
           n, took, floor_s);
    CHECK(took >= floor_s * 0.9);
    CHECK(n > 12);
    json_decref(st);
    apixo_client_free(c);
  }
  CHECK_EQ(sim_default_config(), 0);
}

struct gen_arg {
  apixo_client *c;
  int code;
  char prompt[128];
};

static void *gen_thread(void *p) {
  struct gen_arg *a = p;
  apixo_request *r = apixo_request_new(NULL);
  apixo_request_set_prompt(r, a->prompt);
  apixo_request_set_max_images(r, 1);
  apixo_task *t = NULL;
  a->code = apixo_generate(a->c, r, T(60000), &t);
  apixo_task_free(t);
  apixo_request_free(r);
  return NULL;
}

static void test_tight_concurrency(void) {
  sim_reset();
  CHECK_EQ(sim_config("{\"concurrency\":3}"), 0);
  apixo_client *c = lclient(60, 3);
  if (c) {
    json_t *st = run_batch(c, 9, "limits conc", NULL);
    CHECK_EQ(stats_int(st, "rate_limited.total"), 0);
    CHECK(stats_int(st, "peak_concurrent_tasks") <= 3);
    json_decref(st);

    /* blocking generate from 6 threads: the local queue holds the extra ones */
    sim_reset();
    enum { N = 6 };
    struct gen_arg args[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
      memset(&args[i], 0, sizeof args[i]);
      args[i].c = c;
      h_unique_prompt(args[i].prompt, sizeof args[i].prompt, "limits blocking");
      CHECK_EQ(pthread_create(&th[i], NULL, gen_thread, &args[i]), 0);
    }
    for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
    st = sim_stats();
    for (int i = 0; i < N; i++) {
      CHECK_CODE(args[i].code, APIXO_OK);
      CHECK_EQ(stats_prompt(st, "submits", args[i].prompt), 1);
    }
    CHECK_EQ(stats_int(st, "rate_limited.total"), 0);
    CHECK(stats_int(st, "peak_concurrent_tasks") <= 3);
    json_decref(st);
    apixo_client_free(c);
  }
  CHECK_EQ(sim_default_config(), 0);
}

static void test_limits_off(void) {
  sim_reset();
  CHECK_EQ(sim_config("{\"rpm\":0,\"concurrency\":0}"), 0);
  apixo_client *c = lclient(0, 0);
  if (c) {
    json_t *st = run_batch(c, 15, "limits off", NULL);
    h_note("limits off: peak %lld concurrent tasks", stats_int(st, "peak_concurrent_tasks"));
    json_decref(st);
    apixo_client_free(c);
  }
  CHECK_EQ(sim_default_config(), 0);
}

/* apixo_client_stats reads the budget; apixo_submit_timeout gives up in the local queue
 * with nothing sent, and behaves as apixo_submit with -1. */
static void test_stats_and_submit_timeout(void) {
  sim_reset();
  CHECK_EQ(sim_config("{\"concurrency\":1}"), 0);
  int64_t queued = -1, slots = -1, tracked = -1, in_window = -1, pending = -1;
  CHECK_CODE(apixo_client_stats(NULL, &queued, NULL, NULL, NULL, NULL), APIXO_ERR_INVALID_ARGUMENT);
  apixo_client *c = lclient(60, 1);
  if (c) {
    CHECK_CODE(apixo_client_stats(c, &queued, &slots, &tracked, &in_window, &pending), APIXO_OK);
    CHECK_EQ(queued + slots + tracked + in_window + pending, 0);
    CHECK_CODE(apixo_client_stats(c, NULL, NULL, NULL, NULL, NULL), APIXO_OK);

    char p1[96], p2[96];
    apixo_request *r1 = h_request(h_unique_prompt(p1, sizeof p1, "stats first"), 1);
    apixo_request_set_resolution(r1, "3K");
    char *id = NULL;
    CHECK_CODE(apixo_submit_timeout(c, r1, -1, &id), APIXO_OK);
    CHECK(id != NULL);
    CHECK_CODE(apixo_client_stats(c, &queued, &slots, &tracked, &in_window, &pending), APIXO_OK);
    CHECK_EQ(slots, 1);
    CHECK_EQ(in_window, 1);

    apixo_request *r2 = h_request(h_unique_prompt(p2, sizeof p2, "stats queued"), 1);
    char *id2 = NULL;
    double t0 = h_now();
    CHECK_CODE(apixo_submit_timeout(c, r2, 100, &id2), APIXO_ERR_TIMEOUT);
    CHECK(id2 == NULL);
    CHECK(h_now() - t0 < 5.0 * h_slow());
    CHECK_CONTAINS(apixo_last_error(), "local queue");
    CHECK_CODE(apixo_submit_timeout(c, r2, 0, NULL), APIXO_ERR_INVALID_ARGUMENT);
    json_t *st = sim_stats();
    CHECK_EQ(stats_prompt(st, "submits", p2), 0);
    json_decref(st);

    apixo_task *t = NULL;
    CHECK_CODE(apixo_wait(c, NULL, id, (long)(30000 * h_slow()), &t), APIXO_OK);
    apixo_task_free(t);
    apixo_free(id);
    apixo_request_free(r1);
    apixo_request_free(r2);
    apixo_client_free(c);
  }
  CHECK_EQ(sim_default_config(), 0);
}

int main(void) {
  h_init();
  RUN(test_thirty_under_defaults);
  RUN(test_tight_rpm);
  RUN(test_tight_concurrency);
  RUN(test_limits_off);
  RUN(test_stats_and_submit_timeout);
  sim_default_config();
  return h_finish();
}
