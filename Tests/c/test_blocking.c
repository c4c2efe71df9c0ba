/* test_blocking.c: the "Blocking calls" section of apixo.h.
 *
 *   submit + get_status + wait; generate with max_images 3 gives 3 URLs; a
 *   "[fail:CONTENT_VIOLATION]" prompt gives APIXO_ERR_TASK_FAILED with the snapshot and its
 *   fail code; an image URL containing "unreachable" fails with INVALID_IMAGE_URL; wait with
 *   timeout 0 on a fresh task is APIXO_ERR_TIMEOUT with a snapshot; a short timeout is
 *   TIMEOUT, then a wait without deadline succeeds; get_status / wait of an unknown id is
 *   NOT_FOUND with *out NULL; a wrong API key is UNAUTHORIZED (nothing created); an unknown
 *   model is NOT_FOUND (the server's 404); invalid requests are rejected locally (nothing
 *   sent: the simulator's counters show it); NULL arguments; several threads generating at
 *   once on one client; generate's overall deadline covers the submit.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#define INVALID APIXO_ERR_INVALID_ARGUMENT

static long T(long ms) { return ms * h_slow(); }

static void test_submit_status_wait(void) {
  apixo_client *c = h_client();
  if (!c) return;
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "blocking submit"), 2);
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_OK);
  if (!CHECK(id != NULL)) goto out;
  CHECK(strncmp(id, "task_", 5) == 0);
  apixo_task *t = NULL;
  CHECK_CODE(apixo_get_status(c, "seedream-5-0", id, &t), APIXO_OK);
  CHECK_STR(apixo_task_id(t), id);
  apixo_task_free(t);
  t = NULL;
  CHECK_CODE(apixo_wait(c, NULL, id, T(30000), &t), APIXO_OK);
  CHECK_EQ(apixo_task_state(t), APIXO_STATE_SUCCESS);
  CHECK_EQ(apixo_task_result_count(t), 2);
  CHECK_STR(apixo_task_id(t), id);
  apixo_task_free(t);
  /* waiting again on a finished task answers at once */
  t = NULL;
  double t0 = h_now();
  CHECK_CODE(apixo_wait(c, NULL, id, T(30000), &t), APIXO_OK);
  CHECK(h_now() - t0 < 5.0 * h_slow());
  CHECK_EQ(apixo_task_state(t), APIXO_STATE_SUCCESS);
  apixo_task_free(t);
  json_t *st = sim_stats();
  CHECK_EQ(stats_prompt(st, "submits", prompt), 1);
  CHECK_EQ(stats_prompt(st, "tasks", prompt), 1);
  json_decref(st);
out:
  apixo_free(id);
  apixo_request_free(r);
  apixo_client_free(c);
}

static void test_generate_three_images(void) {
  apixo_client *c = h_client();
  if (!c) return;
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "blocking three"), 3);
  CHECK_CODE(apixo_request_set_aspect_ratio(r, "16:9"), APIXO_OK);
  apixo_task *t = NULL;
  CHECK_CODE(apixo_generate(c, r, T(30000), &t), APIXO_OK);
  CHECK_EQ(apixo_task_state(t), APIXO_STATE_SUCCESS);
  CHECK_EQ(apixo_task_result_count(t), 3);
  for (size_t i = 0; i < 3; i++) CHECK(apixo_task_result_url(t, i) != NULL);
  CHECK(apixo_task_result_url(t, 3) == NULL);
  apixo_task_free(t);
  apixo_request_free(r);
  apixo_client_free(c);
}

static void test_generate_failed_task(void) {
  apixo_client *c = h_client();
  if (!c) return;
  char prompt[128], p2[200];
  h_unique_prompt(prompt, sizeof prompt, "blocking fail");
  snprintf(p2, sizeof p2, "%s [fail:CONTENT_VIOLATION]", prompt);
  apixo_request *r = h_request(p2, 1);
  apixo_task *t = NULL;
  CHECK_CODE(apixo_generate(c, r, T(30000), &t), APIXO_ERR_TASK_FAILED);
  CHECK_CONTAINS(apixo_last_error(), "CONTENT_VIOLATION");
  if (CHECK(t != NULL)) {
    CHECK_EQ(apixo_task_state(t), APIXO_STATE_FAILED);
    CHECK_STR(apixo_task_fail_code(t), "CONTENT_VIOLATION");
    CHECK(apixo_task_fail_message(t) != NULL);
    CHECK_EQ(apixo_task_result_count(t), 0);
  }
  apixo_task_free(t);
  apixo_request_free(r);

  /* a reference image the provider cannot fetch */
  r = h_request(h_unique_prompt(prompt, sizeof prompt, "blocking unreachable"), 1);
  CHECK_CODE(apixo_request_set_mode(r, "image-to-image"), APIXO_OK);
  CHECK_CODE(apixo_request_add_image_url(r, "https://images.example.com/unreachable/ref.png"),
             APIXO_OK);
  t = NULL;
  CHECK_CODE(apixo_generate(c, r, T(30000), &t), APIXO_ERR_TASK_FAILED);
  CHECK_STR(apixo_task_fail_code(t), "INVALID_IMAGE_URL");
  CHECK_EQ(apixo_task_state(t), APIXO_STATE_FAILED);
  apixo_task_free(t);
  apixo_request_free(r);
  apixo_client_free(c);
}

static void test_wait_timeouts(void) {
  apixo_client *c = h_client();
  if (!c) return;
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "blocking timeout"), 1);
  CHECK_CODE(apixo_request_set_resolution(r, "3K"), APIXO_OK); /* ~0.4 s at scale 0.01 */
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_OK);
  if (!id) goto out;
  /* 0: one status check, then TIMEOUT with that snapshot */
  apixo_task *t = NULL;
  double t0 = h_now();
  CHECK_CODE(apixo_wait(c, NULL, id, 0, &t), APIXO_ERR_TIMEOUT);
  CHECK(h_now() - t0 < 5.0 * h_slow());
  if (CHECK(t != NULL)) {
    CHECK_STR(apixo_task_id(t), id);
    CHECK(apixo_task_state(t) == APIXO_STATE_PENDING ||
          apixo_task_state(t) == APIXO_STATE_PROCESSING);
  }
  apixo_task_free(t);
  /* a short deadline: TIMEOUT about then, with the last snapshot seen or NULL */
  t = (apixo_task *)&t;
  t0 = h_now();
  CHECK_CODE(apixo_wait(c, NULL, id, 60, &t), APIXO_ERR_TIMEOUT);
  double took = h_now() - t0;
  CHECK(took >= 0.05);
  CHECK(took < 3.0 * h_slow());
  CHECK(t != (apixo_task *)&t);
  if (t) CHECK(apixo_task_state(t) != APIXO_STATE_SUCCESS);
  apixo_task_free(t);
  /* then without a deadline */
  t = NULL;
  CHECK_CODE(apixo_wait(c, NULL, id, -1, &t), APIXO_OK);
  CHECK_EQ(apixo_task_state(t), APIXO_STATE_SUCCESS);
  apixo_task_free(t);
  /* timeout 0 on the finished task: OK at once */
  t = NULL;
  CHECK_CODE(apixo_wait(c, NULL, id, 0, &t), APIXO_OK);
  CHECK_EQ(apixo_task_state(t), APIXO_STATE_SUCCESS);
  apixo_task_free(t);

  /* generate with a deadline shorter than the task: TIMEOUT, a snapshot (or NULL) */
  t = (apixo_task *)&t;
  t0 = h_now();
  CHECK_CODE(apixo_generate(c, r, 100, &t), APIXO_ERR_TIMEOUT);
  CHECK(h_now() - t0 < 3.0 * h_slow());
  CHECK(t != (apixo_task *)&t);
  apixo_task_free(t);
out:
  apixo_free(id);
  apixo_request_free(r);
  apixo_client_free(c);
}

static void test_not_found(void) {
  apixo_client *c = h_client();
  if (!c) return;
  apixo_task *t = (apixo_task *)&t;
  CHECK_CODE(apixo_get_status(c, NULL, "task_000000000000000000000000", &t), APIXO_ERR_NOT_FOUND);
  /* out-parameters untouched on failure */
  CHECK(t == (apixo_task *)&t);
  t = (apixo_task *)&t;
  CHECK_CODE(apixo_wait(c, NULL, "task_000000000000000000000001", T(10000), &t),
             APIXO_ERR_NOT_FOUND);
  CHECK(t == NULL); /* "On other errors *out is NULL" */
  /* a task id under the wrong model is unknown there */
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "blocking model"), 1);
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_OK);
  if (id) {
    t = NULL;
    CHECK_CODE(apixo_get_status(c, "seedream-4-5", id, &t), APIXO_ERR_NOT_FOUND);
    CHECK(t == NULL);
  }
  apixo_free(id);
  apixo_request_free(r);

  /* unknown model: the server's 404 */
  r = apixo_request_new("no-such-model");
  CHECK_CODE(apixo_request_set_prompt(r, h_unique_prompt(prompt, sizeof prompt, "blocking nomodel")),
             APIXO_OK);
  id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_ERR_NOT_FOUND);
  CHECK(id == NULL);
  CHECK_CONTAINS(apixo_last_error(), "no-such-model");
  t = NULL;
  CHECK_CODE(apixo_generate(c, r, T(10000), &t), APIXO_ERR_NOT_FOUND);
  CHECK(t == NULL);
  t = NULL;
  CHECK_CODE(apixo_get_status(c, "no-such-model", "task_1", &t), APIXO_ERR_NOT_FOUND);
  apixo_request_free(r);
  apixo_client_free(c);
}

static void test_wrong_key(void) {
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_api_key(o, "sk-not-valid-here"), APIXO_OK);
  apixo_client *c = h_client_with(o);
  apixo_options_free(o);
  if (!c) return;
  sim_reset();
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "blocking badkey"), 1);
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_ERR_UNAUTHORIZED);
  CHECK(id == NULL);
  CHECK(strstr(apixo_last_error(), "sk-not-valid-here") == NULL);
  apixo_task *t = NULL;
  CHECK_CODE(apixo_generate(c, r, T(10000), &t), APIXO_ERR_UNAUTHORIZED);
  CHECK(t == NULL);
  CHECK_CODE(apixo_get_status(c, NULL, "task_123", &t), APIXO_ERR_UNAUTHORIZED);
  json_t *st = sim_stats();
  CHECK_EQ(stats_int(st, "tasks_created"), 0);
  /* 401 is not retried: one POST per call */
  CHECK_EQ(stats_int(st, "requests.generateTask.401"), 2);
  CHECK_EQ(stats_int(st, "requests.statusTask.401"), 1);
  json_decref(st);
  apixo_request_free(r);
  apixo_client_free(c);
}

static void test_local_rejection_sends_nothing(void) {
  apixo_client *c = h_client();
  if (!c) return;
  sim_reset();
  apixo_request *r = apixo_request_new(NULL); /* no prompt, no max_images */
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "prompt");
  apixo_task *t = NULL;
  CHECK_CODE(apixo_generate(c, r, T(5000), &t), INVALID);
  CHECK(t == NULL);
  CHECK_CODE(apixo_request_set_prompt(r, "only a prompt"), APIXO_OK);
  CHECK_CODE(apixo_submit(c, r, &id), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "max_images");
  json_t *st = sim_stats();
  CHECK_EQ(stats_requests(st, "generateTask"), 0);
  json_decref(st);

  /* NULL arguments */
  apixo_request *ok = h_request("fine", 1);
  CHECK_CODE(apixo_submit(NULL, ok, &id), INVALID);
  CHECK_CODE(apixo_submit(c, NULL, &id), INVALID);
  CHECK_CODE(apixo_submit(c, ok, NULL), INVALID);
  CHECK_CODE(apixo_get_status(NULL, NULL, "task_1", &t), INVALID);
  CHECK_CODE(apixo_get_status(c, NULL, NULL, &t), INVALID);
  CHECK_CODE(apixo_get_status(c, NULL, "task_1", NULL), INVALID);
  CHECK_CODE(apixo_get_status(c, NULL, "", &t), INVALID);
  CHECK_CODE(apixo_wait(NULL, NULL, "task_1", 0, &t), INVALID);
  CHECK_CODE(apixo_wait(c, NULL, NULL, 0, &t), INVALID);
  CHECK_CODE(apixo_wait(c, NULL, "task_1", 0, NULL), INVALID);
  CHECK_CODE(apixo_generate(NULL, ok, 0, &t), INVALID);
  CHECK_CODE(apixo_generate(c, NULL, 0, &t), INVALID);
  CHECK_CODE(apixo_generate(c, ok, 0, NULL), INVALID);
  st = sim_stats();
  CHECK_EQ(stats_requests(st, "generateTask"), 0);
  CHECK_EQ(stats_requests(st, "statusTask"), 0);
  json_decref(st);
  apixo_request_free(ok);
  apixo_request_free(r);
  apixo_client_free(c);
}

struct gen_arg {
  apixo_client *c;
  int index;
  int code;
  size_t count;
  char prompt[128];
};

static void *gen_thread(void *p) {
  struct gen_arg *a = p;
  apixo_request *r = apixo_request_new(NULL);
  apixo_request_set_prompt(r, a->prompt);
  apixo_request_set_max_images(r, 1 + a->index % 3);
  apixo_task *t = NULL;
  a->code = apixo_generate(a->c, r, T(60000), &t);
  a->count = apixo_task_result_count(t);
  apixo_task_free(t);
  apixo_request_free(r);
  return NULL;
}

/* One client, several threads blocking at once. */
static void test_concurrent_generate(void) {
  apixo_client *c = h_client();
  if (!c) return;
  enum { N = 6 };
  struct gen_arg args[N];
  pthread_t th[N];
  for (int i = 0; i < N; i++) {
    memset(&args[i], 0, sizeof args[i]);
    args[i].c = c;
    args[i].index = i;
    h_unique_prompt(args[i].prompt, sizeof args[i].prompt, "blocking threads");
    CHECK_EQ(pthread_create(&th[i], NULL, gen_thread, &args[i]), 0);
  }
  for (int i = 0; i < N; i++) pthread_join(th[i], NULL);
  json_t *st = sim_stats();
  for (int i = 0; i < N; i++) {
    CHECK_CODE(args[i].code, APIXO_OK);
    CHECK_EQ(args[i].count, 1 + i % 3);
    CHECK_EQ(stats_prompt(st, "submits", args[i].prompt), 1);
  }
  json_decref(st);
  apixo_client_free(c);
}

/* generate's deadline covers the wait in the local queue: past it, TIMEOUT and nothing sent */
static void test_generate_deadline_in_queue(void) {
  sim_reset();
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_limits(o, 60, 1), APIXO_OK);
  apixo_client *c = h_client_with(o);
  apixo_options_free(o);
  if (!c) return;
  char pa[128], pb[128];
  apixo_request *a = h_request(h_unique_prompt(pa, sizeof pa, "blocking slot holder"), 1);
  CHECK_CODE(apixo_request_set_resolution(a, "3K"), APIXO_OK);
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, a, &id), APIXO_OK); /* holds the only slot */
  apixo_request *b = h_request(h_unique_prompt(pb, sizeof pb, "blocking queued"), 1);
  apixo_task *t = (apixo_task *)&t;
  double t0 = h_now();
  CHECK_CODE(apixo_generate(c, b, 100, &t), APIXO_ERR_TIMEOUT);
  double took = h_now() - t0;
  CHECK(t == NULL); /* no snapshot: it never reached the server */
  CHECK(took >= 0.09);
  CHECK(took < 1.0 * h_slow());
  h_sleep_ms(800); /* the slot frees: the abandoned submit must not go out now */
  json_t *st = sim_stats();
  CHECK_EQ(stats_prompt(st, "submits", pb), 0);
  CHECK_EQ(stats_prompt(st, "submits", pa), 1);
  json_decref(st);
  apixo_free(id);
  apixo_request_free(a);
  apixo_request_free(b);
  apixo_client_free(c);
}

struct queued_submit {
  apixo_client *c;
  apixo_request *r;
  int code;
  char *id;
};

static void *queued_submit_main(void *p) {
  struct queued_submit *q = p;
  q->code = apixo_submit(q->c, q->r, &q->id);
  return NULL;
}

/* A blocking submit waiting in the local queue returns CLOSED when the client is freed,
 * and is never sent. */
static void test_free_releases_queued_submit(void) {
  sim_reset();
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_limits(o, 60, 1), APIXO_OK);
  apixo_client *c = h_client_with(o);
  apixo_options_free(o);
  if (!c) return;
  char pa[128], pb[128];
  apixo_request *a = h_request(h_unique_prompt(pa, sizeof pa, "blocking holder2"), 1);
  CHECK_CODE(apixo_request_set_resolution(a, "3K"), APIXO_OK);
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, a, &id), APIXO_OK);
  struct queued_submit q;
  memset(&q, 0, sizeof q);
  q.c = c;
  q.r = h_request(h_unique_prompt(pb, sizeof pb, "blocking queued2"), 1);
  q.code = -1;
  pthread_t th;
  CHECK_EQ(h_thread_start(&th, queued_submit_main, &q, 100), 0);
  apixo_client_free(c);
  pthread_join(th, NULL);
  CHECK_CODE(q.code, APIXO_ERR_CLOSED);
  CHECK(q.id == NULL);
  h_sleep_ms(100);
  json_t *st = sim_stats();
  CHECK_EQ(stats_prompt(st, "submits", pb), 0);
  json_decref(st);
  apixo_free(q.id);
  apixo_free(id);
  apixo_request_free(q.r);
  apixo_request_free(a);
}

/* The library counts prompt characters as the server does: 5000 four-byte characters go
 * through end to end. */
static void test_long_multibyte_prompt(void) {
  apixo_client *c = h_client();
  if (!c) return;
  char *p = malloc(5000 * 4 + 1);
  for (int i = 0; i < 5000; i++) memcpy(p + 4 * i, "\xf0\x9f\x98\x80", 4);
  p[5000 * 4] = 0;
  apixo_request *r = h_request(p, 1);
  apixo_task *t = NULL;
  CHECK_CODE(apixo_generate(c, r, T(30000), &t), APIXO_OK);
  CHECK_EQ(apixo_task_state(t), APIXO_STATE_SUCCESS);
  apixo_task_free(t);
  apixo_request_free(r);
  free(p);
  apixo_client_free(c);
}

/* generate with timeout 0: "as for apixo_wait" (one status check, then TIMEOUT with that
 * snapshot). With a free concurrency slot the submit itself is not queued, so every call
 * submits once and returns TIMEOUT with a pending/processing snapshot. */
static void test_generate_timeout_zero(void) {
  sim_reset();
  apixo_client *c = h_client();
  if (!c) return;
  enum { N = 8 };
  char prompts[N][128];
  int with_snapshot = 0, timeouts = 0;
  for (int i = 0; i < N; i++) {
    apixo_request *r = h_request(h_unique_prompt(prompts[i], sizeof prompts[i], "blocking gen0"), 1);
    apixo_task *t = NULL;
    int rc = apixo_generate(c, r, 0, &t);
    if (rc == APIXO_ERR_TIMEOUT) timeouts++;
    if (t) with_snapshot++;
    apixo_task_free(t);
    apixo_request_free(r);
  }
  h_sleep_ms(100);
  json_t *st = sim_stats();
  int sent = 0;
  for (int i = 0; i < N; i++) sent += stats_prompt(st, "submits", prompts[i]) == 1;
  json_decref(st);
  h_note("generate(timeout 0) x%d: %d TIMEOUT, %d with a snapshot, %d submits reached the server",
         N, timeouts, with_snapshot, sent);
  CHECK_EQ(timeouts, N);
  CHECK_EQ(with_snapshot, N);
  CHECK_EQ(sent, N);
  apixo_client_free(c);
}

/* HTTP connections are reused: a submit goes out on a fresh connection of its own (so curl
 * can never silently resend it), every status request after it reuses one connection. */
static void test_connections_are_reused(void) {
  apixo_client *c = h_client();
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "reuse"), 1);
  char *id = NULL;
  if (!c || !r) goto out;
  json_t *before = sim_stats();
  long long conns0 = stats_int(before, "connections_accepted");
  json_decref(before);
  if (!CHECK_CODE(apixo_submit(c, r, &id), APIXO_OK)) goto out;
  for (int i = 0; i < 12; i++) {
    apixo_task *t = NULL;
    CHECK_CODE(apixo_get_status(c, NULL, id, &t), APIXO_OK);
    apixo_task_free(t);
  }
  json_t *after = sim_stats();
  long long conns = stats_int(after, "connections_accepted") - conns0;
  json_decref(after);
  h_note("1 submit + 12 status requests used %lld connections", conns);
  CHECK(conns >= 1);
  CHECK(conns <= 2);
out:
  apixo_free(id);
  apixo_request_free(r);
  apixo_client_free(c);
}

int main(void) {
  h_init();
  RUN(test_submit_status_wait);
  RUN(test_generate_three_images);
  RUN(test_generate_failed_task);
  RUN(test_wait_timeouts);
  RUN(test_not_found);
  RUN(test_wrong_key);
  RUN(test_local_rejection_sends_nothing);
  RUN(test_concurrent_generate);
  RUN(test_generate_deadline_in_queue);
  RUN(test_free_releases_queued_submit);
  RUN(test_long_multibyte_prompt);
  RUN(test_generate_timeout_zero);
  RUN(test_connections_are_reused);
  return h_finish();
}
