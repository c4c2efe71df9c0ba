/* test_queue.c: the "Events" section of apixo.h (APIXO_DELIVERY_QUEUE).
 *
 *   - the event descriptor: not readable when the queue is empty, readable with an event
 *     waiting, not readable again once it was taken;
 *   - apixo_next_event: code, task, user_data and message of a completion (NULL callback);
 *     events come in the order they happened (cancels in a shuffled order);
 *   - apixo_dispatch: every callback exactly once, all on the calling thread (never on a
 *     library thread), ran_out counts; nothing runs without a dispatch;
 *   - apixo_drain runs callbacks on its caller; with NULL callbacks it returns once the
 *     completions wait in the queue (no deadlock for a pull-only host);
 *   - apixo_client_free runs the final APIXO_ERR_CLOSED deliveries on its caller;
 *   - apixo_resume with a NULL callback: journalled outcomes come as events with user_data,
 *     and once taken they are recorded as delivered (a third client gets nothing);
 *   - log lines are queued, the logger runs only inside apixo_dispatch on its caller; past
 *     1024 waiting lines they are dropped and counted by apixo_client_log_dropped;
 *   - thread mode refuses NULL callbacks and the queue calls; argument errors; event
 *     accessors with NULL.
 */
#include "harness.h"

#include <poll.h>
#include <stdlib.h>
#include <string.h>

#define INVALID APIXO_ERR_INVALID_ARGUMENT

static long T(long ms) { return ms * h_slow(); }

static apixo_client *qclient(const char *journal) {
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_delivery(o, APIXO_DELIVERY_QUEUE), APIXO_OK);
  if (journal) CHECK_CODE(apixo_options_set_journal(o, journal), APIXO_OK);
  apixo_client *c = NULL;
  CHECK_CODE(apixo_client_new(o, &c), APIXO_OK);
  apixo_options_free(o);
  return c;
}

/* 1 when fd is readable within ms (0: now). */
static int readable(int fd, long ms) {
  struct pollfd p = {fd, POLLIN, 0};
  int n = poll(&p, 1, (int)ms);
  return n == 1 && (p.revents & POLLIN);
}

/* submit_async of a fresh 1-image request ("<prefix> <unique>", resolution or 2K). */
static int submit(apixo_client *c, const char *prefix, const char *resolution, apixo_task_callback cb,
                  void *ud) {
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, prefix), 1);
  if (resolution) CHECK_CODE(apixo_request_set_resolution(r, resolution), APIXO_OK);
  int rc = apixo_submit_async(c, r, cb, ud);
  apixo_request_free(r);
  return rc;
}

/* N callbacks recording into slots. */
static void submit_slots(apixo_client *c, const char *prefix, const char *resolution, h_slot *slots, int n) {
  memset(slots, 0, sizeof *slots * (size_t)n);
  for (int i = 0; i < n; i++) CHECK_CODE(submit(c, prefix, resolution, h_slot_cb, &slots[i]), APIXO_OK);
}

/* ------------------------------------------------ descriptor and pull form */

static void test_fd_readiness(void) {
  apixo_client *c = qclient(NULL);
  if (!c) return;
  int fd = -1;
  CHECK_CODE(apixo_client_event_fd(c, &fd), APIXO_OK);
  CHECK(fd >= 0);
  int again = -2;
  CHECK_CODE(apixo_client_event_fd(c, &again), APIXO_OK);
  CHECK_EQ(again, fd);
  CHECK(!readable(fd, 0));
  apixo_event *ev = (apixo_event *)&fd;
  CHECK_CODE(apixo_next_event(c, 0, &ev), APIXO_ERR_TIMEOUT);
  CHECK(ev == NULL);

  CHECK_CODE(submit(c, "queue fd", NULL, NULL, (void *)(intptr_t)7), APIXO_OK);
  CHECK(readable(fd, T(30000)));
  CHECK(readable(fd, 0)); /* level-triggered: still readable */
  CHECK_CODE(apixo_next_event(c, 0, &ev), APIXO_OK);
  if (ev) {
    CHECK_EQ(apixo_event_kind_of(ev), APIXO_EVENT_COMPLETION);
    CHECK_CODE(apixo_event_code(ev), APIXO_OK);
    CHECK(apixo_event_user_data(ev) == (void *)(intptr_t)7);
    CHECK_STR(apixo_event_message(ev), "");
    CHECK_EQ(apixo_event_log_level(ev), -1);
    const apixo_task *t = apixo_event_task(ev);
    CHECK(t != NULL);
    CHECK_EQ(apixo_task_state(t), APIXO_STATE_SUCCESS);
    CHECK(apixo_task_id(t) && strncmp(apixo_task_id(t), "task_", 5) == 0);
    CHECK(apixo_task_result_count(t) == 1);
    apixo_task *kept = apixo_task_copy(t);
    apixo_event_free(ev);
    CHECK(kept && apixo_task_state(kept) == APIXO_STATE_SUCCESS); /* a copy outlives the event */
    apixo_task_free(kept);
  }
  CHECK(!readable(fd, 0));
  CHECK_CODE(apixo_next_event(c, 0, &ev), APIXO_ERR_TIMEOUT);
  /* a failed submit: the message travels with the event */
  apixo_request *bad = apixo_request_new("no-such-model");
  apixo_request_set_prompt(bad, "queue unknown model");
  CHECK_CODE(apixo_submit_async(c, bad, NULL, NULL), APIXO_OK);
  apixo_request_free(bad);
  CHECK_CODE(apixo_next_event(c, T(30000), &ev), APIXO_OK);
  if (ev) {
    CHECK_CODE(apixo_event_code(ev), APIXO_ERR_NOT_FOUND);
    CHECK(strlen(apixo_event_message(ev)) > 0);
    CHECK(apixo_event_task(ev) != NULL);
    CHECK_STR(apixo_task_id(apixo_event_task(ev)), "");
    CHECK_STR(apixo_task_model(apixo_event_task(ev)), "no-such-model");
    apixo_event_free(ev);
  }
  CHECK(!readable(fd, 0));
  apixo_client_free(c);
}

/* Cancels fire in the order they were made: the events come in that order. The tasks are
 * created on the simulator's real-time clock (35 s and more), so none ends first. */
static void test_order(void) {
  apixo_client *blocking = h_client();
  apixo_client *c = qclient(NULL);
  enum { N = 5 };
  char *ids[N] = {0};
  if (!c || !blocking) goto out;
  CHECK_EQ(sim_config("{\"time_scale\": 1.0}"), 0);
  for (int i = 0; i < N; i++) {
    char p[128];
    apixo_request *r = h_request(h_unique_prompt(p, sizeof p, "queue order"), 1);
    CHECK_CODE(apixo_request_set_resolution(r, "3K"), APIXO_OK);
    CHECK_CODE(apixo_submit(blocking, r, &ids[i]), APIXO_OK);
    apixo_request_free(r);
  }
  CHECK_EQ(sim_config("{\"time_scale\": 0.01}"), 0);
  for (int i = 0; i < N; i++)
    if (ids[i]) CHECK_CODE(apixo_watch(c, NULL, ids[i], NULL, (void *)(intptr_t)i), APIXO_OK);
  static const int order[N] = {3, 0, 4, 1, 2};
  for (int k = 0; k < N; k++)
    if (ids[order[k]]) CHECK_CODE(apixo_cancel(c, ids[order[k]]), APIXO_OK);
  for (int k = 0; k < N; k++) {
    apixo_event *ev = NULL;
    CHECK_CODE(apixo_next_event(c, T(10000), &ev), APIXO_OK);
    if (!ev) break;
    CHECK_EQ(apixo_event_kind_of(ev), APIXO_EVENT_COMPLETION);
    CHECK_CODE(apixo_event_code(ev), APIXO_ERR_CANCELLED);
    CHECK_EQ((intptr_t)apixo_event_user_data(ev), order[k]);
    if (apixo_event_task(ev)) CHECK_STR(apixo_task_id(apixo_event_task(ev)), ids[order[k]]);
    apixo_event_free(ev);
  }
  apixo_event *ev = NULL;
  CHECK_CODE(apixo_next_event(c, 0, &ev), APIXO_ERR_TIMEOUT);
out:
  for (int i = 0; i < N; i++) apixo_free(ids[i]);
  apixo_client_free(c);
  apixo_client_free(blocking);
  sim_reset(); /* the long tasks would hold the simulator's concurrency */
  CHECK_EQ(sim_config("{\"time_scale\": 0.01}"), 0);
  CHECK_EQ(sim_default_config(), 0);
}

/* ------------------------------------------------ running on the caller's thread */

static void test_dispatch_on_caller(void) {
  apixo_client *c = qclient(NULL);
  if (!c) return;
  int fd = -1;
  CHECK_CODE(apixo_client_event_fd(c, &fd), APIXO_OK);
  enum { N = 6 };
  h_slot slots[N];
  submit_slots(c, "queue dispatch", NULL, slots, N);
  /* nothing runs until the host dispatches */
  CHECK(readable(fd, T(30000)));
  h_sleep_ms(200);
  h_slots_lock();
  int fired = 0;
  for (int i = 0; i < N; i++) fired += slots[i].fired;
  h_slots_unlock();
  CHECK_EQ(fired, 0);
  size_t total = 0, ran = 99;
  double deadline = h_now() + 60.0 * h_slow();
  while (total < N && h_now() < deadline) {
    CHECK_CODE(apixo_dispatch(c, 2, T(1000), &ran), APIXO_OK);
    CHECK(ran <= 2);
    total += ran;
  }
  CHECK_EQ(total, N);
  for (int i = 0; i < N; i++) {
    CHECK_EQ(slots[i].fired, 1);
    CHECK_CODE(slots[i].code, APIXO_OK);
    CHECK(pthread_equal(slots[i].thread, pthread_self()));
  }
  CHECK(!readable(fd, 0));
  CHECK_CODE(apixo_dispatch(c, 10, 0, &ran), APIXO_OK);
  CHECK_EQ(ran, 0);
  CHECK_CODE(apixo_dispatch(c, 10, 50, NULL), APIXO_OK); /* a timeout is not an error */
  CHECK_CODE(apixo_dispatch(c, 0, 0, &ran), INVALID);
  CHECK_CODE(apixo_dispatch(NULL, 1, 0, &ran), INVALID);
  CHECK_EQ(ran, 0);
  apixo_client_free(c);
}

/* Inside a dispatched callback: dispatch and drain refuse, next_event works. */
struct inner {
  apixo_client *c;
  int dispatch_rc, drain_rc, next_rc, fired;
};

static void inner_cb(apixo_code code, const apixo_task *task, void *ud) {
  (void)code;
  (void)task;
  struct inner *in = ud;
  size_t ran = 0;
  apixo_event *ev = NULL;
  in->dispatch_rc = apixo_dispatch(in->c, 1, 0, &ran);
  in->drain_rc = apixo_drain(in->c, 0);
  in->next_rc = apixo_next_event(in->c, 0, &ev);
  apixo_event_free(ev);
  in->fired++;
}

static void test_calls_from_a_callback(void) {
  apixo_client *c = qclient(NULL);
  if (!c) return;
  struct inner in = {c, -1, -1, -1, 0};
  apixo_request *r = h_request("queue inner", 1);
  CHECK_CODE(apixo_submit_async(c, r, inner_cb, &in), APIXO_OK);
  apixo_request_free(r);
  CHECK_CODE(apixo_drain(c, T(30000)), APIXO_OK);
  CHECK_EQ(in.fired, 1);
  CHECK_CODE(in.dispatch_rc, INVALID);
  CHECK_CODE(in.drain_rc, INVALID);
  CHECK_CODE(in.next_rc, APIXO_ERR_TIMEOUT);
  apixo_client_free(c);
}

static void test_drain(void) {
  apixo_client *c = qclient(NULL);
  if (!c) return;
  enum { N = 4 };
  h_slot slots[N];
  submit_slots(c, "queue drain", NULL, slots, N);
  CHECK_CODE(apixo_drain(c, 0), APIXO_ERR_TIMEOUT); /* a task takes far longer than nothing */
  CHECK_CODE(apixo_drain(c, T(60000)), APIXO_OK);
  for (int i = 0; i < N; i++) {
    CHECK_EQ(slots[i].fired, 1);
    CHECK(pthread_equal(slots[i].thread, pthread_self()));
  }
  /* NULL callbacks: drain returns once they wait in the queue, and leaves them there */
  for (int i = 0; i < N; i++)
    CHECK_CODE(submit(c, "queue drain null", NULL, NULL, (void *)(intptr_t)(100 + i)), APIXO_OK);
  CHECK_CODE(apixo_drain(c, T(60000)), APIXO_OK);
  int seen[N] = {0};
  for (int i = 0; i < N; i++) {
    apixo_event *ev = NULL;
    CHECK_CODE(apixo_next_event(c, 0, &ev), APIXO_OK);
    if (!ev) break;
    intptr_t ud = (intptr_t)apixo_event_user_data(ev);
    CHECK(ud >= 100 && ud < 100 + N);
    if (ud >= 100 && ud < 100 + N) seen[ud - 100]++;
    CHECK_CODE(apixo_event_code(ev), APIXO_OK);
    apixo_event_free(ev);
  }
  for (int i = 0; i < N; i++) CHECK_EQ(seen[i], 1);
  CHECK_CODE(apixo_drain(c, 0), APIXO_OK); /* idle */
  apixo_client_free(c);
}

/* A dispatch consumes completions that have no callback. */
static void test_dispatch_consumes_null_callbacks(void) {
  apixo_client *c = qclient(NULL);
  if (!c) return;
  CHECK_CODE(submit(c, "queue consumed", NULL, NULL, (void *)(intptr_t)1), APIXO_OK);
  CHECK_CODE(apixo_drain(c, T(30000)), APIXO_OK);
  size_t ran = 0;
  CHECK_CODE(apixo_dispatch(c, 5, 0, &ran), APIXO_OK);
  CHECK_EQ(ran, 1);
  apixo_event *ev = NULL;
  CHECK_CODE(apixo_next_event(c, 0, &ev), APIXO_ERR_TIMEOUT);
  apixo_client_free(c);
}

static void test_free_on_caller(void) {
  apixo_client *c = qclient(NULL);
  if (!c) return;
  enum { N = 3 };
  h_slot slots[N];
  submit_slots(c, "queue free", "3K", slots, N);
  CHECK_CODE(submit(c, "queue free null", NULL, NULL, (void *)(intptr_t)9), APIXO_OK); /* dropped, not leaked */
  apixo_client_free(c);
  for (int i = 0; i < N; i++) {
    CHECK_EQ(slots[i].fired, 1);
    CHECK_CODE(slots[i].code, APIXO_ERR_CLOSED);
    CHECK(pthread_equal(slots[i].thread, pthread_self()));
    CHECK(slots[i].has_task);
  }
}

/* A next_event blocked on another thread wakes with APIXO_ERR_CLOSED. */
struct blocked {
  apixo_client *c;
  int rc;
};

static void *next_forever(void *arg) {
  struct blocked *b = arg;
  apixo_event *ev = NULL;
  b->rc = apixo_next_event(b->c, -1, &ev);
  apixo_event_free(ev);
  return NULL;
}

static void test_blocked_next_wakes_on_free(void) {
  apixo_client *c = qclient(NULL);
  if (!c) return;
  struct blocked b = {c, -1};
  pthread_t th;
  CHECK_EQ(h_thread_start(&th, next_forever, &b, 100), 0);
  apixo_client_free(c);
  pthread_join(th, NULL);
  CHECK_CODE(b.rc, APIXO_ERR_CLOSED);
}

/* ------------------------------------------------ journal */

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static int wait_created(const char *prompt, double seconds) {
  double deadline = h_now() + seconds * h_slow();
  for (;;) {
    json_t *st = sim_stats();
    long long n = stats_prompt(st, "tasks", prompt);
    json_decref(st);
    if (n >= 1) return 1;
    if (h_now() > deadline) return 0;
    h_sleep_ms(10);
  }
}

static void test_resume_null_callback(void) {
  char *dir = h_tempdir("apixo-qres");
  if (!dir) return;
  char *path = join(dir, "queue.journal");
  enum { N = 3 };
  char prompts[N][128];
  h_slot first[N];
  memset(first, 0, sizeof first);
  /* run A (thread mode): three tasks accepted, the client freed before they end (made on a
   * five times slower simulator clock, so that they still run then, also under valgrind) */
  char scale[64];
  snprintf(scale, sizeof scale, "{\"time_scale\": %g}", h_time_scale() * 5);
  CHECK_EQ(sim_config(scale), 0);
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_journal(o, path), APIXO_OK);
  apixo_client *c = h_client_with(o);
  apixo_options_free(o);
  if (!c) goto out;
  for (int i = 0; i < N; i++) {
    apixo_request *r = h_request(h_unique_prompt(prompts[i], sizeof prompts[i], "queue resume"), 1);
    CHECK_CODE(apixo_request_set_resolution(r, "3K"), APIXO_OK);
    char tag[8];
    snprintf(tag, sizeof tag, "q%d", i);
    CHECK_CODE(apixo_request_set_tag(r, tag), APIXO_OK);
    CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &first[i]), APIXO_OK);
    apixo_request_free(r);
  }
  for (int i = 0; i < N; i++) CHECK(wait_created(prompts[i], 10));
  CHECK(h_wait_accepted(c, first, N, N, 10)); /* and their ids are journalled */
  snprintf(scale, sizeof scale, "{\"time_scale\": %g}", h_time_scale());
  CHECK_EQ(sim_config(scale), 0);
  apixo_client_free(c);
  int closed = 0, want = 0; /* the tasks still running at free come back */
  for (int i = 0; i < N; i++)
    if (first[i].code == APIXO_ERR_CLOSED) {
      closed++;
      want |= 1 << i;
    }
  CHECK_EQ(closed, N);

  /* run B (queue mode): resume with no callback; the outcomes come as events */
  c = qclient(path);
  if (!c) goto out;
  CHECK_CODE(apixo_resume(c, NULL, (void *)(intptr_t)42), APIXO_OK);
  CHECK_CODE(apixo_drain(c, T(30000)), APIXO_OK);
  int got = 0;
  for (int i = 0; i < closed; i++) {
    apixo_event *ev = NULL;
    CHECK_CODE(apixo_next_event(c, 0, &ev), APIXO_OK);
    if (!ev) break;
    CHECK_CODE(apixo_event_code(ev), APIXO_OK);
    CHECK(apixo_event_user_data(ev) == (void *)(intptr_t)42);
    const apixo_task *t = apixo_event_task(ev);
    const char *tag = t ? apixo_task_tag(t) : NULL;
    if (CHECK(tag && tag[0] == 'q' && tag[1] >= '0' && tag[1] < '0' + N)) got |= 1 << (tag[1] - '0');
    apixo_event_free(ev);
  }
  CHECK_EQ(got, want);
  apixo_event *ev = NULL;
  CHECK_CODE(apixo_next_event(c, 0, &ev), APIXO_ERR_TIMEOUT);
  apixo_client_free(c);

  /* run C: they were recorded as delivered when handed over */
  c = qclient(path);
  if (!c) goto out;
  CHECK_CODE(apixo_resume(c, NULL, NULL), APIXO_OK);
  CHECK_CODE(apixo_drain(c, T(5000)), APIXO_OK);
  CHECK_CODE(apixo_next_event(c, 0, &ev), APIXO_ERR_TIMEOUT);
  apixo_client_free(c);
  json_t *st = sim_stats();
  for (int i = 0; i < N; i++) CHECK_EQ(stats_prompt(st, "submits", prompts[i]), 1);
  json_decref(st);
out:
  free(path);
  h_rmtree(dir);
  free(dir);
}

/* ------------------------------------------------ log lines */

struct logrec {
  int calls;
  int wrong_thread;
  pthread_t caller;
};

static void log_cb(int level, const char *message, void *ud) {
  struct logrec *l = ud;
  l->calls++;
  if (!pthread_equal(l->caller, pthread_self())) l->wrong_thread++;
  (void)level;
  (void)message;
}

static void test_logs_queued(void) {
  struct logrec rec = {0, 0, pthread_self()};
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_delivery(o, APIXO_DELIVERY_QUEUE), APIXO_OK);
  CHECK_CODE(apixo_options_set_logger(o, log_cb, APIXO_LOG_DEBUG, &rec), APIXO_OK);
  apixo_client *c = NULL;
  CHECK_CODE(apixo_client_new(o, &c), APIXO_OK);
  apixo_options_free(o);
  if (!c) return;
  int fd = -1;
  CHECK_CODE(apixo_client_event_fd(c, &fd), APIXO_OK);
  CHECK(readable(fd, 0)); /* "client started" waits */
  apixo_event *ev = NULL;
  CHECK_CODE(apixo_next_event(c, 0, &ev), APIXO_OK);
  if (ev) {
    CHECK_EQ(apixo_event_kind_of(ev), APIXO_EVENT_LOG);
    CHECK_EQ(apixo_event_log_level(ev), APIXO_LOG_DEBUG);
    CHECK_CONTAINS(apixo_event_message(ev), "client started");
    CHECK(apixo_event_task(ev) == NULL);
    CHECK(apixo_event_user_data(ev) == NULL);
    CHECK_CODE(apixo_event_code(ev), APIXO_OK);
    apixo_event_free(ev);
  }
  CHECK(!readable(fd, 0));
  /* a blocking submit logs on the engine thread: queued, the logger not called */
  char *id = NULL;
  apixo_request *r = h_request("queue logs", 1);
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_OK);
  apixo_request_free(r);
  apixo_free(id);
  CHECK(readable(fd, T(5000)));
  CHECK_EQ(rec.calls, 0);
  size_t ran = 0;
  CHECK_CODE(apixo_dispatch(c, (size_t)-1, 0, &ran), APIXO_OK);
  CHECK(ran >= 2); /* "submit ..." and "task ... accepted" */
  CHECK_EQ(rec.calls, (long long)ran);
  CHECK_EQ(rec.wrong_thread, 0);
  CHECK_EQ(apixo_client_log_dropped(c), 0);
  apixo_client_free(c);
  CHECK_EQ(rec.wrong_thread, 0);

  /* the bound, on a client with no task (nothing else logs): "client started", then one debug
   * line per webhook; 1 + 1100 lines, 1024 kept, 77 dropped */
  o = h_options();
  CHECK_CODE(apixo_options_set_delivery(o, APIXO_DELIVERY_QUEUE), APIXO_OK);
  CHECK_CODE(apixo_options_set_logger(o, log_cb, APIXO_LOG_DEBUG, &rec), APIXO_OK);
  c = NULL;
  CHECK_CODE(apixo_client_new(o, &c), APIXO_OK);
  apixo_options_free(o);
  if (!c) return;
  CHECK_CODE(apixo_client_event_fd(c, &fd), APIXO_OK);
  const char *body = "{\"taskId\":\"task_queue_unknown\",\"state\":\"processing\"}";
  for (int i = 0; i < 1100; i++)
    CHECK_CODE(apixo_webhook_ingest(c, body, strlen(body), NULL), APIXO_ERR_NOT_FOUND);
  CHECK_EQ(apixo_client_log_dropped(c), 1101 - 1024);
  CHECK_EQ(rec.calls, (long long)ran);
  size_t logs = 0;
  while (apixo_next_event(c, 0, &ev) == APIXO_OK) {
    if (apixo_event_kind_of(ev) == APIXO_EVENT_LOG) logs++;
    CHECK_CONTAINS(apixo_event_message(ev), logs == 1 ? "client started" : "task_queue_unknown");
    apixo_event_free(ev);
  }
  CHECK_EQ(logs, 1024);
  CHECK(!readable(fd, 0));
  /* room again */
  CHECK_CODE(apixo_webhook_ingest(c, body, strlen(body), NULL), APIXO_ERR_NOT_FOUND);
  CHECK_CODE(apixo_dispatch(c, 10, T(5000), &ran), APIXO_OK);
  CHECK_EQ(ran, 1);
  CHECK_EQ(apixo_client_log_dropped(c), 1101 - 1024);
  apixo_client_free(c);
  CHECK_EQ(rec.wrong_thread, 0);
}

/* ------------------------------------------------ thread mode and arguments */

static void never_cb(apixo_code code, const apixo_task *task, void *ud) {
  (void)code;
  (void)task;
  (*(int *)ud)++;
}

static void test_thread_mode_refuses(void) {
  apixo_client *c = h_client();
  if (!c) return;
  apixo_request *r = h_request("queue thread mode", 1);
  CHECK_CODE(apixo_submit_async(c, r, NULL, NULL), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "APIXO_DELIVERY_QUEUE");
  CHECK_CODE(apixo_watch(c, NULL, "task_x", NULL, NULL), INVALID);
  int fd = -7;
  CHECK_CODE(apixo_client_event_fd(c, &fd), INVALID);
  CHECK_EQ(fd, -7);
  size_t ran = 5;
  CHECK_CODE(apixo_dispatch(c, 1, 0, &ran), INVALID);
  CHECK_EQ(ran, 0);
  apixo_event *ev = (apixo_event *)&fd;
  CHECK_CODE(apixo_next_event(c, 0, &ev), INVALID);
  CHECK(ev == NULL);
  CHECK_EQ(apixo_client_log_dropped(c), 0);
  apixo_request_free(r);
  apixo_client_free(c);

  /* resume with NULL in thread mode */
  char *dir = h_tempdir("apixo-qthr");
  if (!dir) return;
  char *path = join(dir, "j");
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_journal(o, path), APIXO_OK);
  c = NULL;
  CHECK_CODE(apixo_client_new(o, &c), APIXO_OK);
  apixo_options_free(o);
  if (c) {
    CHECK_CODE(apixo_resume(c, NULL, NULL), INVALID);
    int fired = 0;
    CHECK_CODE(apixo_resume(c, never_cb, &fired), APIXO_OK);
    apixo_client_free(c);
    CHECK_EQ(fired, 0);
  }
  free(path);
  h_rmtree(dir);
  free(dir);
}

static void test_arguments(void) {
  CHECK_CODE(apixo_options_set_delivery(NULL, APIXO_DELIVERY_QUEUE), INVALID);
  apixo_options *o = apixo_options_new();
  CHECK_CODE(apixo_options_set_delivery(o, (apixo_delivery)2), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "APIXO_DELIVERY_QUEUE");
  CHECK_CODE(apixo_options_set_delivery(o, (apixo_delivery)-1), INVALID);
  CHECK_CODE(apixo_options_set_delivery(o, APIXO_DELIVERY_THREAD), APIXO_OK);
  apixo_options_free(o);
  CHECK_CODE(apixo_client_event_fd(NULL, NULL), INVALID);
  apixo_event *ev = NULL;
  CHECK_CODE(apixo_next_event(NULL, 0, &ev), INVALID);
  apixo_client *c = qclient(NULL);
  if (c) {
    CHECK_CODE(apixo_client_event_fd(c, NULL), INVALID);
    CHECK_CODE(apixo_next_event(c, 0, NULL), INVALID);
    apixo_client_free(c);
  }
  /* accessors with NULL */
  CHECK_EQ(apixo_event_kind_of(NULL), APIXO_EVENT_COMPLETION);
  CHECK_CODE(apixo_event_code(NULL), INVALID);
  CHECK(apixo_event_task(NULL) == NULL);
  CHECK(apixo_event_user_data(NULL) == NULL);
  CHECK_STR(apixo_event_message(NULL), "");
  CHECK_EQ(apixo_event_log_level(NULL), -1);
  apixo_event_free(NULL);
  CHECK_EQ(apixo_client_log_dropped(NULL), 0);
  /* 32-bit enums */
  CHECK_EQ(sizeof(apixo_code), 4);
  CHECK_EQ(sizeof(apixo_state), 4);
  CHECK_EQ(sizeof(apixo_delivery), 4);
  CHECK_EQ(sizeof(apixo_event_kind), 4);
}

int main(void) {
  h_init();
  RUN(test_arguments);
  RUN(test_fd_readiness);
  RUN(test_order);
  RUN(test_dispatch_on_caller);
  RUN(test_calls_from_a_callback);
  RUN(test_drain);
  RUN(test_dispatch_consumes_null_callbacks);
  RUN(test_free_on_caller);
  RUN(test_blocked_next_wakes_on_free);
  RUN(test_resume_null_callback);
  RUN(test_logs_queued);
  RUN(test_thread_mode_refuses);
  return h_finish();
}
