/* test_fork.c: a client and fork() (header, Client section: "Fork").
 *
 *   - a child that uses the parent's client gets APIXO_ERR_CLOSED at once, with the message
 *     "client created in another process; create one after fork", from every call (submit,
 *     generate, get_status, wait, drain, submit_async, watch, cancel, resume, client_stats,
 *     client_event_fd, webhook_ingest, download, download_results); apixo_client_free of it returns at once; the parent's
 *     client goes on working, its task completes;
 *   - a child that creates its own client completes a task against the simulator;
 *   - stress: APIXO_FORK_CHILDREN children (default 1000; 8 under valgrind) of a
 *     parent whose client has tasks in flight and status requests running while it forks, 4
 *     at a time; each child creates a client, makes one status request, checks that the
 *     parent's client answers CLOSED, frees both and exits. Every child is bounded by
 *     alarm(APIXO_FORK_CHILD_SECONDS, default 20): a child killed by it is a hang. 0 hangs.
 * Every child reports the number of its failed checks through a pipe; the parent checks it is 0.
 */
#include "harness.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *FORKED = "client created in another process; create one after fork";

static int env_int(const char *name, int dflt) {
  const char *v = getenv(name);
  if (!v || !*v) return dflt;
  int n = atoi(v);
  return n > 0 ? n : dflt;
}

static int child_seconds(void) { return env_int("APIXO_FORK_CHILD_SECONDS", 20) * h_slow(); }

/* The children's reports: a child writes its failed-check count to this pipe as its last act
 * (one byte; the exit status alone would not do under valgrind, which makes every forked child
 * exit 99: memory reachable only from the parent's threads counts as lost there). */
static int report_fd[2] = {-1, -1};

/* Forks; the child runs fn(arg) under an alarm, reports its failed-check count, exits. */
static pid_t spawn(void (*fn)(void *), void *arg) {
  if (report_fd[0] < 0 && !CHECK(pipe(report_fd) == 0)) return -1;
  fflush(NULL);
  int before = h_failures();
  pid_t pid = fork();
  if (pid == 0) {
    alarm((unsigned)child_seconds());
    fn(arg);
    fflush(NULL);
    int n = h_failures() - before;
    unsigned char b = (unsigned char)(n > 100 ? 100 : n);
    if (write(report_fd[1], &b, 1) != 1) _exit(101);
    _exit(b);
  }
  CHECK(pid > 0);
  return pid;
}

/* The report of the child that just ended: its count, or -1 when it wrote none. Children
 * that run at once may report in another order; only the sum matters to the callers. */
static int child_report(void) {
  struct pollfd p = {report_fd[0], POLLIN, 0};
  unsigned char b;
  if (poll(&p, 1, 0) != 1 || read(report_fd[0], &b, 1) != 1) return -1;
  return b;
}

/* How a child ended: 0 ok; 1 failed checks (or no report); 2 killed by its alarm (a hang);
 * 3 other death. Under valgrind an exit status of 99 (its report of the child) is not ours. */
static int judge(int st) {
  if (WIFSIGNALED(st)) return WTERMSIG(st) == SIGALRM ? 2 : 3;
  int code = WIFEXITED(st) ? WEXITSTATUS(st) : 3;
  int reported = child_report();
  if (reported != 0) return 1;
  return code == 0 || (h_slow() > 1 && code == 99) ? 0 : 1;
}

static int reap(pid_t pid, int *status_out) {
  int st = 0;
  while (waitpid(pid, &st, 0) < 0) {
  }
  if (status_out) *status_out = st;
  return judge(st);
}

/* ---------------------------------------------------------------- the parent's client in a child */

typedef struct {
  apixo_client *parent;
  const char *task_id;
  apixo_task *task; /* a successful task of the parent */
} shared_state;

static int never_fired;
static void must_not_fire(apixo_code code, const apixo_task *t, void *ud) {
  (void)code;
  (void)t;
  (void)ud;
  never_fired++;
}

/* Checks that one call answered CLOSED with the fork message, within a few seconds. */
static void closed_now(const char *what, apixo_code rc, double t0) {
  double took = h_now() - t0;
  if (!CHECK_CODE(rc, APIXO_ERR_CLOSED)) h_note("call: %s", what);
  CHECK_STR(apixo_last_error(), FORKED);
  if (!CHECK(took < 5.0)) h_note("%s took %.2f s", what, took);
}

static void use_parents_client(void *arg) {
  shared_state *s = arg;
  apixo_client *c = s->parent;
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "fork child"), 1);
  double t0;
  char *id = NULL;
  apixo_task *t = NULL;

  t0 = h_now();
  closed_now("submit", apixo_submit(c, r, &id), t0);
  CHECK(id == NULL);
  t0 = h_now();
  closed_now("generate", apixo_generate(c, r, 10000, &t), t0);
  CHECK(t == NULL);
  t0 = h_now();
  closed_now("get_status", apixo_get_status(c, NULL, s->task_id, &t), t0);
  t0 = h_now();
  closed_now("wait", apixo_wait(c, NULL, s->task_id, -1, &t), t0);
  CHECK(t == NULL);
  t0 = h_now();
  closed_now("drain", apixo_drain(c, -1), t0);
  t0 = h_now();
  closed_now("submit_async", apixo_submit_async(c, r, must_not_fire, NULL), t0);
  t0 = h_now();
  closed_now("watch", apixo_watch(c, NULL, s->task_id, must_not_fire, NULL), t0);
  t0 = h_now();
  closed_now("cancel", apixo_cancel(c, s->task_id), t0);
  t0 = h_now();
  closed_now("resume", apixo_resume(c, must_not_fire, NULL), t0);
  int64_t slots = -1;
  t0 = h_now();
  closed_now("client_stats", apixo_client_stats(c, NULL, &slots, NULL, NULL, NULL), t0);
  CHECK_EQ(slots, -1);
  int fd = -1;
  t0 = h_now();
  closed_now("client_event_fd", apixo_client_event_fd(c, &fd), t0);
  CHECK_EQ(fd, -1);
  char body[256];
  int n = snprintf(body, sizeof body, "{\"taskId\":\"%s\",\"state\":\"processing\",\"createTime\":1}",
                   s->task_id);
  t0 = h_now();
  closed_now("webhook_ingest", apixo_webhook_ingest(c, body, (size_t)n, &t), t0);
  char *dir = h_tempdir("apixo-fork");
  char path[512];
  snprintf(path, sizeof path, "%s/x.jpg", dir ? dir : "/tmp");
  const char *url = apixo_task_result_url(s->task, 0);
  t0 = h_now();
  closed_now("download", apixo_download(c, url ? url : "http://127.0.0.1:9/x.jpg", path), t0);
  CHECK(!h_file_exists(path));
  char **paths = NULL;
  size_t count = 0;
  t0 = h_now();
  closed_now("download_results", apixo_download_results(c, s->task, dir, &paths, &count), t0);
  CHECK_EQ(h_count_entries(dir, ""), 0); /* nothing was written */
  h_rmtree(dir);
  free(dir);
  h_sleep_ms(100); /* a callback that should not fire would have by now */
  CHECK_EQ(never_fired, 0);

  t0 = h_now();
  apixo_client_free(c); /* leaves the parent's client alone; must not hang */
  CHECK(h_now() - t0 < 5.0);
  apixo_request_free(r);
}

static void test_parents_client_in_child(void) {
  apixo_client *c = h_client();
  if (!c) return;
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "fork parent"), 1);
  apixo_task *done = NULL;
  CHECK_CODE(apixo_generate(c, r, 30000 * h_slow(), &done), APIXO_OK);
  char *running = NULL; /* in flight while forking: its poll timer and connection are live */
  CHECK_CODE(apixo_submit(c, r, &running), APIXO_OK);
  h_slot slot;
  memset(&slot, 0, sizeof slot);
  if (running) CHECK_CODE(apixo_watch(c, NULL, running, h_slot_cb, &slot), APIXO_OK);
  if (done && running) {
    shared_state s = {c, running, done};
    pid_t pid = spawn(use_parents_client, &s);
    int st = 0;
    int how = reap(pid, &st);
    if (!CHECK_EQ(how, 0)) h_note("child status 0x%x", st);
  }
  /* The parent's client is untouched by all that: its task completes, calls still work. */
  CHECK(h_wait_slots(&slot, 1, 30.0 * h_slow()));
  CHECK_CODE(slot.code, APIXO_OK);
  apixo_task *t = NULL;
  if (running) CHECK_CODE(apixo_get_status(c, NULL, running, &t), APIXO_OK);
  apixo_task_free(t);
  apixo_free(running);
  apixo_task_free(done);
  apixo_request_free(r);
  apixo_client_free(c);
}

/* ---------------------------------------------------------------- a child's own client */

static void own_client(void *arg) {
  (void)arg;
  apixo_client *c = h_client();
  if (!c) return;
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "fork own"), 1);
  apixo_task *t = NULL;
  CHECK_CODE(apixo_generate(c, r, 15000 * h_slow(), &t), APIXO_OK);
  if (t) {
    CHECK_EQ(apixo_task_state(t), APIXO_STATE_SUCCESS);
    CHECK(apixo_task_result_count(t) >= 1);
  }
  apixo_task_free(t);
  apixo_request_free(r);
  apixo_client_free(c);
}

static void test_child_creates_its_own_client(void) {
  /* after the parent only loaded the library (no client yet) ... */
  pid_t pid = spawn(own_client, NULL);
  CHECK_EQ(reap(pid, NULL), 0);
  /* ... and after it used one, which is still alive */
  apixo_client *c = h_client();
  if (!c) return;
  pid = spawn(own_client, NULL);
  CHECK_EQ(reap(pid, NULL), 0);
  apixo_client_free(c);
}

/* ---------------------------------------------------------------- stress */

typedef struct {
  apixo_client *c;
  apixo_request *r;
  volatile int stop;
  int outstanding;
  pthread_mutex_t mu;
  long submitted, statuses;
} busy_state;

static void busy_done(apixo_code code, const apixo_task *t, void *ud) {
  (void)code;
  (void)t;
  busy_state *b = ud;
  pthread_mutex_lock(&b->mu);
  b->outstanding--;
  pthread_mutex_unlock(&b->mu);
}

/* Keeps about 6 tasks in flight on the parent's client. */
static void *busy_submitter(void *arg) {
  busy_state *b = arg;
  while (!b->stop) {
    pthread_mutex_lock(&b->mu);
    int n = b->outstanding;
    pthread_mutex_unlock(&b->mu);
    if (n < 6) {
      pthread_mutex_lock(&b->mu);
      b->outstanding++;
      pthread_mutex_unlock(&b->mu);
      if (apixo_submit_async(b->c, b->r, busy_done, b) == APIXO_OK) {
        b->submitted++;
      } else {
        pthread_mutex_lock(&b->mu);
        b->outstanding--;
        pthread_mutex_unlock(&b->mu);
      }
    } else {
      h_sleep_ms(5);
    }
  }
  return NULL;
}

/* Status requests back to back: the engine always has a transfer going. */
static void *busy_poller(void *arg) {
  busy_state *b = arg;
  while (!b->stop) {
    apixo_task *t = NULL;
    apixo_get_status(b->c, NULL, "no-such-task", &t); /* NOT_FOUND after a round trip */
    apixo_task_free(t);
    b->statuses++;
  }
  return NULL;
}

static apixo_client *stress_parent;

static void stress_child(void *arg) {
  (void)arg;
  apixo_task *t = NULL;
  /* the parent's client: CLOSED at once */
  if (!CHECK_CODE(apixo_get_status(stress_parent, NULL, "x", &t), APIXO_ERR_CLOSED)) return;
  apixo_options *o = h_options();
  apixo_client *c = NULL;
  if (!CHECK_CODE(apixo_client_new(o, &c), APIXO_OK)) return;
  apixo_options_free(o);
  CHECK_CODE(apixo_get_status(c, NULL, "no-such-task", &t), APIXO_ERR_NOT_FOUND);
  apixo_task_free(t);
  apixo_client_free(c);
  apixo_client_free(stress_parent);
}

static void test_many_children_of_a_busy_parent(void) {
  int total = env_int("APIXO_FORK_CHILDREN", h_slow() > 1 ? 8 : 1000); /* valgrind: 8 */
  int parallel = env_int("APIXO_FORK_PARALLEL", 4);
  CHECK_EQ(sim_config("{\"rpm\":0,\"concurrency\":0}"), 0);
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_limits(o, 0, 0), APIXO_OK);
  busy_state b;
  memset(&b, 0, sizeof b);
  pthread_mutex_init(&b.mu, NULL);
  b.c = h_client_with(o);
  apixo_options_free(o);
  if (!b.c) return;
  stress_parent = b.c;
  char prompt[128];
  b.r = h_request(h_unique_prompt(prompt, sizeof prompt, "fork stress"), 1);
  pthread_t ts, tp;
  pthread_create(&ts, NULL, busy_submitter, &b);
  pthread_create(&tp, NULL, busy_poller, &b);
  h_sleep_ms(200);

  int ok = 0, failed = 0, hangs = 0, other = 0, started = 0, running = 0;
  pid_t *pids = calloc((size_t)parallel, sizeof *pids);
  double t0 = h_now();
  while (started < total || running > 0) {
    while (running < parallel && started < total) {
      for (int i = 0; i < parallel; i++) {
        if (pids[i] == 0) {
          pids[i] = spawn(stress_child, NULL);
          started++;
          running++;
          break;
        }
      }
    }
    int st = 0;
    pid_t done = waitpid(-1, &st, 0);
    if (done < 0) break;
    for (int i = 0; i < parallel; i++) {
      if (pids[i] != done) continue;
      pids[i] = 0;
      running--;
      switch (judge(st)) {
        case 0: ok++; break;
        case 1: failed++; break;
        case 2: hangs++; break;
        default: other++; break;
      }
    }
  }
  double took = h_now() - t0;
  b.stop = 1;
  pthread_join(ts, NULL);
  pthread_join(tp, NULL);
  h_note("%d children (%d at a time) of a busy parent in %.1f s: %d ok, %d failed checks, %d hangs "
         "(killed by their %d s alarm), %d other deaths; meanwhile the parent submitted %ld "
         "tasks and made %ld status requests", total, parallel, took, ok, failed, hangs,
         child_seconds(), other, b.submitted, b.statuses);
  CHECK_EQ(ok, total);
  CHECK_EQ(hangs, 0);
  CHECK_EQ(failed, 0);
  CHECK_EQ(other, 0);
  CHECK(b.statuses > 0);
  /* The parent's client still works. */
  apixo_task *t = NULL;
  CHECK_CODE(apixo_get_status(b.c, NULL, "no-such-task", &t), APIXO_ERR_NOT_FOUND);
  apixo_task_free(t);
  CHECK_CODE(apixo_drain(b.c, 30000 * h_slow()), APIXO_OK);
  free(pids);
  apixo_request_free(b.r);
  apixo_client_free(b.c);
  pthread_mutex_destroy(&b.mu);
  CHECK_EQ(sim_default_config(), 0);
}

int main(void) {
  h_init();
  RUN(test_child_creates_its_own_client);
  RUN(test_parents_client_in_child);
  RUN(test_many_children_of_a_busy_parent);
  return h_finish();
}
