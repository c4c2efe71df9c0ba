/* test_callbacks.c: the "Callbacks" section of apixo.h.
 *
 *   - many apixo_submit_async: each callback exactly once (counted per user_data), all on one
 *     thread that is not the caller's, code OK, distinct ids, the tag on the snapshot;
 *   - callbacks firing while 4 other threads call in concurrently (submit_async, submit,
 *     get_status, request building); a callback that itself calls submit_async / cancel;
 *   - apixo_watch of an existing id (fires once, OK, that id) and of an unknown id (NOT_FOUND);
 *   - apixo_cancel: CANCELLED exactly once, a second cancel and an unknown id are NOT_FOUND,
 *     a blocking wait on the cancelled task still succeeds;
 *   - apixo_drain: TIMEOUT after its deadline while tasks run, then OK; OK at once when idle;
 *     from inside a callback it is INVALID_ARGUMENT;
 *   - apixo_client_free with pending callbacks: each fires APIXO_ERR_CLOSED exactly once
 *     before free returns (with a stand-in snapshot), and a blocking wait running on another
 *     thread returns APIXO_ERR_CLOSED;
 *   - a submit error (unknown model) fires the callback once with that code and a stand-in
 *     (id "", the model and tag);
 *   - argument errors (cb will then NOT fire).
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define INVALID APIXO_ERR_INVALID_ARGUMENT

static long T(long ms) { return ms * h_slow(); }

static int all_same_thread(h_slot *s, int n, pthread_t *out) {
  h_slots_lock();
  int same = 1;
  for (int i = 1; i < n; i++)
    if (!pthread_equal(s[0].thread, s[i].thread)) same = 0;
  if (out) *out = s[0].thread;
  h_slots_unlock();
  return same;
}

static void test_many_async(void) {
  apixo_client *c = h_client();
  if (!c) return;
  enum { N = 16 };
  h_slot slots[N];
  memset(slots, 0, sizeof slots);
  char prompts[N][128];
  for (int i = 0; i < N; i++) {
    apixo_request *r = h_request(h_unique_prompt(prompts[i], sizeof prompts[i], "cb many"), 1);
    char tag[32];
    snprintf(tag, sizeof tag, "many-%d", i);
    CHECK_CODE(apixo_request_set_tag(r, tag), APIXO_OK);
    CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &slots[i]), APIXO_OK);
    apixo_request_free(r); /* the library copied what it needs */
  }
  CHECK_CODE(apixo_drain(c, T(60000)), APIXO_OK);
  h_sleep_ms(100); /* a late double firing would show now */
  pthread_t cb_thread;
  h_slots_lock();
  for (int i = 0; i < N; i++) {
    char tag[32];
    snprintf(tag, sizeof tag, "many-%d", i);
    CHECK_EQ(slots[i].fired, 1);
    CHECK_CODE(slots[i].code, APIXO_OK);
    CHECK(slots[i].has_task);
    CHECK_EQ(slots[i].state, APIXO_STATE_SUCCESS);
    CHECK(strncmp(slots[i].id, "task_", 5) == 0);
    CHECK_STR(slots[i].tag, tag);
    for (int j = 0; j < i; j++) CHECK(strcmp(slots[i].id, slots[j].id) != 0);
  }
  h_slots_unlock();
  CHECK(all_same_thread(slots, N, &cb_thread));
  CHECK(!pthread_equal(cb_thread, pthread_self()));
  json_t *st = sim_stats();
  for (int i = 0; i < N; i++) CHECK_EQ(stats_prompt(st, "submits", prompts[i]), 1);
  json_decref(st);
  apixo_client_free(c);
}

/* ------------------------------------------------ concurrent callers */

struct worker {
  apixo_client *c;
  int index;
  h_slot slots[3];
  int errors;
};

static void *worker_main(void *p) {
  struct worker *w = p;
  for (int k = 0; k < 3; k++) {
    char prompt[128];
    apixo_request *r = apixo_request_new(NULL);
    if (apixo_request_set_prompt(r, h_unique_prompt(prompt, sizeof prompt, "cb worker")) ||
        apixo_request_set_max_images(r, 1 + k) || apixo_request_set_aspect_ratio(r, "4:3") ||
        apixo_request_set_resolution(r, "2K"))
      w->errors++;
    apixo_request *copy = apixo_request_copy(r);
    char *json = NULL;
    if (apixo_request_to_json(copy, &json) != APIXO_OK) w->errors++;
    apixo_free(json);
    if (apixo_submit_async(w->c, copy, h_slot_cb, &w->slots[k]) != APIXO_OK) w->errors++;
    char *id = NULL;
    if (apixo_submit(w->c, r, &id) != APIXO_OK) {
      w->errors++;
    } else {
      apixo_task *t = NULL;
      if (apixo_get_status(w->c, NULL, id, &t) != APIXO_OK) w->errors++;
      if (t && strcmp(apixo_task_id(t), id) != 0) w->errors++;
      apixo_task_free(t);
    }
    if (apixo_request_set_max_images(r, 99) != APIXO_ERR_INVALID_ARGUMENT) w->errors++;
    if (!strstr(apixo_last_error(), "max_images")) w->errors++;
    apixo_free(id);
    apixo_request_free(copy);
    apixo_request_free(r);
  }
  return NULL;
}

static void test_concurrent_callers(void) {
  apixo_client *c = h_client();
  if (!c) return;
  enum { W = 4 };
  struct worker ws[W];
  pthread_t th[W];
  memset(ws, 0, sizeof ws);
  for (int i = 0; i < W; i++) {
    ws[i].c = c;
    ws[i].index = i;
    CHECK_EQ(pthread_create(&th[i], NULL, worker_main, &ws[i]), 0);
  }
  for (int i = 0; i < W; i++) pthread_join(th[i], NULL);
  CHECK_CODE(apixo_drain(c, T(60000)), APIXO_OK);
  h_slot all[W * 3];
  h_slots_lock();
  for (int i = 0; i < W; i++) {
    CHECK_EQ(ws[i].errors, 0);
    for (int k = 0; k < 3; k++) {
      CHECK_EQ(ws[i].slots[k].fired, 1);
      CHECK_CODE(ws[i].slots[k].code, APIXO_OK);
      all[i * 3 + k] = ws[i].slots[k];
    }
  }
  h_slots_unlock();
  pthread_t cbt;
  CHECK(all_same_thread(all, W * 3, &cbt));
  for (int i = 0; i < W; i++) CHECK(!pthread_equal(cbt, th[i]));
  CHECK(!pthread_equal(cbt, pthread_self()));
  apixo_client_free(c);
}

/* A callback that submits another task (allowed: non-blocking) */
struct chain {
  apixo_client *c;
  apixo_request *next;
  h_slot first;
  h_slot second;
  int submit_rc;
  int drain_rc;
  int cancel_rc;
};

static void chain_cb(apixo_code code, const apixo_task *task, void *ud) {
  struct chain *ch = ud;
  h_slot_cb(code, task, &ch->first);
  ch->submit_rc = apixo_submit_async(ch->c, ch->next, h_slot_cb, &ch->second);
  ch->drain_rc = apixo_drain(ch->c, 0);
  ch->cancel_rc = apixo_cancel(ch->c, "task_not_tracked_here");
}

static void test_callback_calls_in(void) {
  apixo_client *c = h_client();
  if (!c) return;
  struct chain ch;
  memset(&ch, 0, sizeof ch);
  ch.c = c;
  char prompt[128];
  ch.next = h_request(h_unique_prompt(prompt, sizeof prompt, "cb chained"), 1);
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "cb chain head"), 1);
  CHECK_CODE(apixo_submit_async(c, r, chain_cb, &ch), APIXO_OK);
  CHECK(h_wait_slots(&ch.second, 1, 30));
  CHECK_CODE(apixo_drain(c, T(30000)), APIXO_OK);
  CHECK_EQ(ch.first.fired, 1);
  CHECK_CODE(ch.first.code, APIXO_OK);
  CHECK_CODE(ch.submit_rc, APIXO_OK);
  CHECK_CODE(ch.drain_rc, INVALID); /* drain from a callback */
  CHECK_CODE(ch.cancel_rc, APIXO_ERR_NOT_FOUND);
  CHECK_EQ(ch.second.fired, 1);
  CHECK_CODE(ch.second.code, APIXO_OK);
  apixo_request_free(r);
  apixo_request_free(ch.next);
  apixo_client_free(c);
}

/* ------------------------------------------------ watch and cancel */

static void test_watch(void) {
  apixo_client *c = h_client();
  apixo_client *other = h_client();
  if (!c || !other) {
    apixo_client_free(c);
    apixo_client_free(other);
    return;
  }
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "cb watch"), 2);
  char *id = NULL;
  /* submitted by another client (think: another process) */
  CHECK_CODE(apixo_submit(other, r, &id), APIXO_OK);
  h_slot s[3];
  memset(s, 0, sizeof s);
  if (id) {
    CHECK_CODE(apixo_watch(c, NULL, id, h_slot_cb, &s[0]), APIXO_OK);
    CHECK_CODE(apixo_watch(c, "seedream-5-0", id, h_slot_cb, &s[1]), APIXO_OK); /* two watchers */
  }
  CHECK_CODE(apixo_watch(c, NULL, "task_ffffffffffffffffffffffff", h_slot_cb, &s[2]), APIXO_OK);
  CHECK_CODE(apixo_drain(c, T(30000)), APIXO_OK);
  h_sleep_ms(50);
  h_slots_lock();
  for (int i = 0; i < 2; i++) {
    CHECK_EQ(s[i].fired, 1);
    CHECK_CODE(s[i].code, APIXO_OK);
    CHECK_STR(s[i].id, id);
    CHECK_EQ(s[i].state, APIXO_STATE_SUCCESS);
  }
  CHECK_EQ(s[2].fired, 1);
  CHECK_CODE(s[2].code, APIXO_ERR_NOT_FOUND);
  CHECK(s[2].message[0] != 0); /* apixo_last_error() in the callback describes it */
  h_slots_unlock();

  /* argument errors: the callback will not fire */
  h_slot never;
  memset(&never, 0, sizeof never);
  CHECK_CODE(apixo_watch(NULL, NULL, "task_1", h_slot_cb, &never), INVALID);
  CHECK_CODE(apixo_watch(c, NULL, NULL, h_slot_cb, &never), INVALID);
  CHECK_CODE(apixo_watch(c, NULL, "", h_slot_cb, &never), INVALID);
  CHECK_CODE(apixo_watch(c, NULL, "task_1", NULL, &never), INVALID);
  CHECK_CODE(apixo_submit_async(NULL, r, h_slot_cb, &never), INVALID);
  CHECK_CODE(apixo_submit_async(c, NULL, h_slot_cb, &never), INVALID);
  CHECK_CODE(apixo_submit_async(c, r, NULL, &never), INVALID);
  apixo_request *bad = apixo_request_new(NULL); /* fails validation */
  CHECK_CODE(apixo_submit_async(c, bad, h_slot_cb, &never), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "prompt");
  apixo_request_free(bad);
  CHECK_CODE(apixo_drain(c, T(5000)), APIXO_OK);
  CHECK_EQ(never.fired, 0);

  apixo_free(id);
  apixo_request_free(r);
  apixo_client_free(other);
  apixo_client_free(c);
}

struct waiter_arg {
  apixo_client *c;
  const char *id;
  int code;
  int state;
};

static void *waiter_main(void *p) {
  struct waiter_arg *a = p;
  apixo_task *t = NULL;
  a->code = apixo_wait(a->c, NULL, a->id, T(30000), &t);
  a->state = (int)apixo_task_state(t);
  apixo_task_free(t);
  return NULL;
}

static void test_cancel(void) {
  apixo_client *c = h_client();
  if (!c) return;
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "cb cancel"), 1);
  CHECK_CODE(apixo_request_set_resolution(r, "3K"), APIXO_OK);
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_OK);
  if (!id) goto out;
  h_slot s;
  memset(&s, 0, sizeof s);
  CHECK_CODE(apixo_watch(c, NULL, id, h_slot_cb, &s), APIXO_OK);
  /* a blocking wait on the same task is not affected by the cancel */
  struct waiter_arg wa = {c, id, -1, -1};
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, waiter_main, &wa), 0);
  h_sleep_ms(30);
  CHECK_CODE(apixo_cancel(c, id), APIXO_OK);
  CHECK(h_wait_slots(&s, 1, 10));
  CHECK_CODE(apixo_cancel(c, id), APIXO_ERR_NOT_FOUND);
  CHECK_CODE(apixo_cancel(c, "task_never_heard_of"), APIXO_ERR_NOT_FOUND);
  CHECK_CODE(apixo_cancel(c, NULL), INVALID);
  CHECK_CODE(apixo_cancel(NULL, id), INVALID);
  pthread_join(th, NULL);
  CHECK_CODE(wa.code, APIXO_OK);
  CHECK_EQ(wa.state, APIXO_STATE_SUCCESS);
  CHECK_CODE(apixo_drain(c, T(10000)), APIXO_OK);
  h_sleep_ms(100);
  h_slots_lock();
  CHECK_EQ(s.fired, 1);
  CHECK_CODE(s.code, APIXO_ERR_CANCELLED);
  CHECK(s.message[0] != 0); /* apixo_last_error() in the callback */
  /* the callback contract: "NULL only when nothing at all is known" - the id is known */
  CHECK(s.has_task);
  CHECK_STR(s.id, id);
  h_slots_unlock();

  /* cancel a task submitted with submit_async, once its id is known from a watch */
  h_slot s2, s3;
  memset(&s2, 0, sizeof s2);
  memset(&s3, 0, sizeof s3);
  char *id2 = NULL;
  CHECK_CODE(apixo_submit(c, r, &id2), APIXO_OK);
  if (id2) {
    CHECK_CODE(apixo_watch(c, NULL, id2, h_slot_cb, &s2), APIXO_OK);
    CHECK_CODE(apixo_watch(c, NULL, id2, h_slot_cb, &s3), APIXO_OK);
    CHECK_CODE(apixo_cancel(c, id2), APIXO_OK); /* both callbacks of that id */
    CHECK_CODE(apixo_drain(c, T(10000)), APIXO_OK);
    CHECK_EQ(s2.fired, 1);
    CHECK_EQ(s3.fired, 1);
    CHECK_CODE(s2.code, APIXO_ERR_CANCELLED);
    CHECK_CODE(s3.code, APIXO_ERR_CANCELLED);
  }
  apixo_free(id2);
out:
  apixo_free(id);
  apixo_request_free(r);
  apixo_client_free(c);
}

/* ------------------------------------------------ drain */

static void test_drain(void) {
  apixo_client *c = h_client();
  if (!c) return;
  CHECK_CODE(apixo_drain(NULL, 0), INVALID);
  double t0 = h_now();
  CHECK_CODE(apixo_drain(c, 0), APIXO_OK); /* nothing pending */
  CHECK_CODE(apixo_drain(c, -1), APIXO_OK);
  CHECK(h_now() - t0 < 1.0 * h_slow());
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "cb drain"), 1);
  CHECK_CODE(apixo_request_set_resolution(r, "3K"), APIXO_OK);
  h_slot s[3];
  memset(s, 0, sizeof s);
  for (int i = 0; i < 3; i++) CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &s[i]), APIXO_OK);
  t0 = h_now();
  CHECK_CODE(apixo_drain(c, 20), APIXO_ERR_TIMEOUT);
  double took = h_now() - t0;
  CHECK(took >= 0.015);
  CHECK(took < 2.0 * h_slow());
  CHECK_CODE(apixo_drain(c, 0), APIXO_ERR_TIMEOUT);
  CHECK_CODE(apixo_drain(c, -1), APIXO_OK);
  for (int i = 0; i < 3; i++) {
    CHECK_EQ(s[i].fired, 1);
    CHECK_CODE(s[i].code, APIXO_OK);
  }
  apixo_request_free(r);
  apixo_client_free(c);
}

/* ------------------------------------------------ free with pending callbacks */

static void test_free_with_pending(void) {
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_limits(o, 60, 2), APIXO_OK); /* some stay in the local queue */
  apixo_client *c = h_client_with(o);
  apixo_options_free(o);
  if (!c) return;
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "cb free"), 1);
  CHECK_CODE(apixo_request_set_resolution(r, "3K"), APIXO_OK);
  CHECK_CODE(apixo_request_set_tag(r, "closing"), APIXO_OK);
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_OK);
  enum { N = 6 };
  h_slot s[N + 1];
  memset(s, 0, sizeof s);
  for (int i = 0; i < N; i++) CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &s[i]), APIXO_OK);
  if (id) CHECK_CODE(apixo_watch(c, NULL, id, h_slot_cb, &s[N]), APIXO_OK);
  /* a blocking wait in progress on another thread */
  struct waiter_arg wa = {c, id ? id : "task_x", -1, -1};
  pthread_t th;
  CHECK_EQ(h_thread_start(&th, waiter_main, &wa, 50), 0);
  apixo_client_free(c); /* every pending callback fires before this returns */
  h_slots_lock();
  int closed = 0;
  for (int i = 0; i <= N; i++) {
    CHECK_EQ(s[i].fired, 1);
    if (s[i].code == APIXO_ERR_CLOSED) {
      closed++;
      CHECK(s[i].has_task); /* the last snapshot or a stand-in */
      CHECK(s[i].message[0] != 0);
      if (i < N) CHECK_STR(s[i].tag, "closing");
    } else {
      /* a task can only have finished if it really ran that fast */
      CHECK_CODE(s[i].code, APIXO_OK);
    }
  }
  h_slots_unlock();
  CHECK(closed >= N - 1);
  pthread_join(th, NULL);
  CHECK_CODE(wa.code, APIXO_ERR_CLOSED);
  h_sleep_ms(100);
  for (int i = 0; i <= N; i++) CHECK_EQ(s[i].fired, 1);
  apixo_free(id);
  apixo_request_free(r);
}

/* A submit the server refuses: the callback fires once with that code and a stand-in. */
static void test_submit_error_callback(void) {
  apixo_client *c = h_client();
  if (!c) return;
  apixo_request *r = apixo_request_new("no-such-model");
  char prompt[128];
  CHECK_CODE(apixo_request_set_prompt(r, h_unique_prompt(prompt, sizeof prompt, "cb 404")),
             APIXO_OK);
  CHECK_CODE(apixo_request_set_tag(r, "missing-model"), APIXO_OK);
  h_slot s;
  memset(&s, 0, sizeof s);
  CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &s), APIXO_OK);
  CHECK_CODE(apixo_drain(c, T(10000)), APIXO_OK);
  CHECK_EQ(s.fired, 1);
  CHECK_CODE(s.code, APIXO_ERR_NOT_FOUND);
  CHECK_CONTAINS(s.message, "no-such-model");
  CHECK(s.has_task);
  CHECK_STR(s.id, "");
  CHECK_STR(s.tag, "missing-model");
  CHECK_STR(s.model, "no-such-model");
  CHECK_STR(s.json, "{}");
  apixo_request_free(r);
  apixo_client_free(c);
}

/* After apixo_client_free has begun, calls return CLOSED: checked through a callback, which
 * runs during free. */
struct during_free {
  apixo_client *c;
  apixo_request *r;
  int submit_rc;
  int watch_rc;
  int status_rc;
  int ingest_rc;
  int download_rc;
  int cancel_rc;
  h_slot self;
  h_slot never;
};

static void during_free_cb(apixo_code code, const apixo_task *task, void *ud) {
  struct during_free *d = ud;
  h_slot_cb(code, task, &d->self);
  if (code == APIXO_ERR_CLOSED) {
    d->submit_rc = apixo_submit_async(d->c, d->r, h_slot_cb, &d->never);
    d->watch_rc = apixo_watch(d->c, NULL, "task_1", h_slot_cb, &d->never);
    apixo_task *t = NULL;
    d->status_rc = apixo_get_status(d->c, NULL, "task_1", &t);
    apixo_task_free(t);
    const char *body = "{\"taskId\":\"task_1\",\"state\":\"processing\"}";
    d->ingest_rc = apixo_webhook_ingest(d->c, body, strlen(body), NULL);
    d->download_rc = apixo_download(d->c, "http://127.0.0.1:1/x.jpg", "/tmp/apixo-never-written.jpg");
    d->cancel_rc = apixo_cancel(d->c, "task_1");
  }
}

static void test_calls_during_free(void) {
  apixo_client *c = h_client();
  if (!c) return;
  struct during_free d;
  memset(&d, 0, sizeof d);
  d.c = c;
  char prompt[128];
  d.r = h_request(h_unique_prompt(prompt, sizeof prompt, "cb during free"), 1);
  CHECK_CODE(apixo_request_set_resolution(d.r, "3K"), APIXO_OK);
  CHECK_CODE(apixo_submit_async(c, d.r, during_free_cb, &d), APIXO_OK);
  h_sleep_ms(20);
  apixo_client_free(c);
  CHECK_EQ(d.self.fired, 1);
  CHECK_CODE(d.self.code, APIXO_ERR_CLOSED);
  CHECK_CODE(d.submit_rc, APIXO_ERR_CLOSED);
  CHECK_CODE(d.watch_rc, APIXO_ERR_CLOSED);
  CHECK_CODE(d.status_rc, APIXO_ERR_CLOSED);
  CHECK_CODE(d.ingest_rc, APIXO_ERR_CLOSED);
  CHECK_CODE(d.download_rc, APIXO_ERR_CLOSED);
  CHECK_CODE(d.cancel_rc, APIXO_ERR_CLOSED);
  CHECK_EQ(d.never.fired, 0);
  apixo_request_free(d.r);
}

/* ------------------------------------------------ drain waits only for earlier callbacks */

struct feeder {
  apixo_client *c;
  apixo_request *r;
  volatile int stop;
  int submitted;
  int fired;
  pthread_mutex_t lock;
};

static void feeder_cb(apixo_code code, const apixo_task *task, void *ud) {
  (void)code;
  (void)task;
  struct feeder *f = ud;
  pthread_mutex_lock(&f->lock);
  f->fired++;
  pthread_mutex_unlock(&f->lock);
}

static void *feeder_main(void *p) {
  struct feeder *f = p;
  while (!f->stop) {
    if (apixo_submit_async(f->c, f->r, feeder_cb, f) == APIXO_OK) f->submitted++;
    h_sleep_ms(60);
  }
  return NULL;
}

/* "Blocks until every callback registered before this call has fired": callbacks that other
 * threads register while drain waits are not waited for. */
static void test_drain_ignores_later_registrations(void) {
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_limits(o, 0, 0), APIXO_OK);
  apixo_client *c = h_client_with(o);
  apixo_options_free(o);
  CHECK_EQ(sim_config("{\"rpm\":0,\"concurrency\":0}"), 0);
  if (!c) goto out;
  struct feeder f;
  memset(&f, 0, sizeof f);
  pthread_mutex_init(&f.lock, NULL);
  f.c = c;
  char prompt[128];
  f.r = h_request(h_unique_prompt(prompt, sizeof prompt, "cb feeder"), 1);
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, feeder_main, &f), 0);
  h_sleep_ms(150);
  h_slot s;
  memset(&s, 0, sizeof s);
  CHECK_CODE(apixo_submit_async(c, f.r, h_slot_cb, &s), APIXO_OK);
  double t0 = h_now();
  int rc = apixo_drain(c, 3000);
  double took = h_now() - t0;
  CHECK_CODE(rc, APIXO_OK);
  CHECK_EQ(s.fired, 1);
  h_note("drain with another thread submitting every 60 ms: %s after %.2f s",
         apixo_code_name((apixo_code)rc), took);
  CHECK(took < 2.0 * h_slow());
  f.stop = 1;
  pthread_join(th, NULL);
  CHECK_CODE(apixo_drain(c, T(30000)), APIXO_OK);
  CHECK_EQ(f.fired, f.submitted);
  apixo_request_free(f.r);
  pthread_mutex_destroy(&f.lock);
  apixo_client_free(c);
out:
  CHECK_EQ(sim_default_config(), 0);
}

/* One request object submitted from several threads at once (the header allows it). */
struct same_req {
  apixo_client *c;
  const apixo_request *r;
  h_slot slots[5];
  int errors;
};

static void *same_req_main(void *p) {
  struct same_req *a = p;
  for (int i = 0; i < 5; i++)
    if (apixo_submit_async(a->c, a->r, h_slot_cb, &a->slots[i]) != APIXO_OK) a->errors++;
  return NULL;
}

static void test_same_request_many_threads(void) {
  sim_reset();
  apixo_client *c = h_client();
  if (!c) return;
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "cb same request"), 1);
  CHECK_CODE(apixo_request_set_tag(r, "shared"), APIXO_OK);
  struct same_req a[4];
  pthread_t th[4];
  memset(a, 0, sizeof a);
  for (int i = 0; i < 4; i++) {
    a[i].c = c;
    a[i].r = r;
    CHECK_EQ(pthread_create(&th[i], NULL, same_req_main, &a[i]), 0);
  }
  for (int i = 0; i < 4; i++) pthread_join(th[i], NULL);
  CHECK_CODE(apixo_drain(c, T(60000)), APIXO_OK);
  for (int i = 0; i < 4; i++) {
    CHECK_EQ(a[i].errors, 0);
    for (int k = 0; k < 5; k++) {
      CHECK_EQ(a[i].slots[k].fired, 1);
      CHECK_CODE(a[i].slots[k].code, APIXO_OK);
      CHECK_STR(a[i].slots[k].tag, "shared");
    }
  }
  json_t *st = sim_stats();
  CHECK_EQ(stats_prompt(st, "submits", prompt), 20);
  CHECK_EQ(stats_prompt(st, "tasks", prompt), 20);
  json_decref(st);
  apixo_request_free(r);
  apixo_client_free(c);
}

/* ------------------------------------------------ threads and idle CPU */

static int thread_count(void) { return h_count_entries("/proc/self/task", ""); }

static double cpu_seconds(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* "It owns two threads" (engine, dispatcher), no thread per request; idle: zero CPU. */
static void test_threads_and_idle_cpu(void) {
  int before = thread_count();
  apixo_client *c = h_client();
  if (!c) return;
  int after_new = thread_count();
  CHECK_EQ(after_new - before, 2);
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "cb threads"), 1);
  h_slot s[10];
  memset(s, 0, sizeof s);
  for (int i = 0; i < 10; i++) CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &s[i]), APIXO_OK);
  int peak = after_new;
  double t0 = h_now();
  while (apixo_drain(c, 0) == APIXO_ERR_TIMEOUT && h_now() - t0 < 30.0 * h_slow()) {
    int n = thread_count();
    if (n > peak) peak = n;
    h_sleep_ms(10);
  }
  h_note("threads: %d before the client, %d after apixo_client_new, at most %d with 10 tasks "
         "in flight", before, after_new, peak);
  CHECK(peak <= after_new);
  /* idle: a finished client should not burn CPU */
  h_sleep_ms(100);
  double cpu0 = cpu_seconds();
  h_sleep_ms(1000);
  double used = cpu_seconds() - cpu0;
  h_note("CPU used by an idle client in 1 s: %.1f ms", used * 1000);
  if (h_slow() == 1) CHECK(used < 0.03);
  apixo_request_free(r);
  apixo_client_free(c);
  CHECK_EQ(thread_count(), before); /* joined */
}

int main(void) {
  h_init();
  RUN(test_many_async);
  RUN(test_concurrent_callers);
  RUN(test_callback_calls_in);
  RUN(test_watch);
  RUN(test_cancel);
  RUN(test_drain);
  RUN(test_free_with_pending);
  RUN(test_submit_error_callback);
  RUN(test_calls_during_free);
  RUN(test_drain_ignores_later_registrations);
  RUN(test_same_request_many_threads);
  RUN(test_threads_and_idle_cpu);
  return h_finish();
}
