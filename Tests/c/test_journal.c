/* test_journal.c: the "Journal" section of apixo.h (the C half of issue 5).
 *
 * Basic API:
 *   - a journal locked by a live client: a second apixo_client_new on it fails with
 *     APIXO_ERR_IO (*out NULL); after the first is freed it opens; an unopenable path is IO;
 *   - apixo_resume without a journal: APIXO_ERR_INVALID_ARGUMENT (as the header now says);
 *     NULL client / callback: INVALID_ARGUMENT;
 *   - tags round-trip through apixo_task_tag (generate, submit_async callbacks, with and
 *     without a journal), and are never sent;
 *   - in-process resume: tasks accepted before apixo_client_free (their callbacks fired
 *     CLOSED) are re-tracked by the next client's resume and delivered with their tag and id,
 *     nothing resubmitted; intents that never left the local queue are submitted by resume
 *     (once); a watched id is re-tracked; a second resume takes up nothing; once everything
 *     was delivered a new client's resume fires nothing.
 *
 * Kill and resume (test_kill_and_resume), with the host Tests/c/journal_host.c (see there):
 *   a 40-task batch, tag "t<i>", prompt "<unique prefix> t<i>", restarted on the same journal
 *   and records file after each SIGKILL:
 *     run 1  self-kill at the 5th "submit" log line: a POST about to leave, journalled as sent;
 *     run 2  self-kill inside the 3rd callback, after the host recorded the delivery and before
 *            the library could (slow callbacks, 20 ms);
 *     run 3  self-kill at the 4th "accepted" log line: right after a task id was journalled;
 *     run 4  the simulator delays the first submit by 600 ms; self-kill 150 ms after the first
 *            "submit" line: the POST is inside the server, which creates the task afterwards;
 *     run 5, 6  SIGKILL from this test after a pseudo-random 100..499 ms (slow callbacks 25 ms;
 *            a run that finishes first ends the sequence);
 *     then   runs without kills until one prints "done" (at most 6 more).
 *   (The random seed is printed.)
 *   Asserted afterwards, from the host's records and the simulator's stats:
 *     (a) the host finished, and runs 1-4 really died by SIGKILL at their kill points;
 *     (b) every tag t0..t39 was delivered at least once; every record has the tag (never "?")
 *         and a code of OK or INDETERMINATE (nothing else was provoked);
 *     (c) a tag delivered OK: its prompt created exactly one task (tasks_by_prompt == 1) and
 *         every OK record of it names that same task id. Its prompt may have been sent more
 *         than once only when the server refused a send with 429 before processing it (the
 *         tasks of killed runs still occupy the account's 10 slots): over the whole batch,
 *         sum(submits_by_prompt - tasks_by_prompt) <= the simulator's 429s on generateTask;
 *     (d) a tag delivered INDETERMINATE (the host died between sending its submit and
 *         recording the answer): its snapshot carried the tag and id "", every record of it is
 *         INDETERMINATE (never resubmitted by the library, nor by the host), its prompt
 *         created at most one task (and was sent at most once beyond 429 refusals); there is at least one such tag
 *         (run 1 guarantees it), and if run 4 died, one whose task does exist (tasks == 1);
 *     (e) deliveries are exactly once except across a kill during a callback: the duplicates
 *         (records beyond the first, over all tags) number at most the killed runs, and the
 *         tag whose callback run 2 died in was delivered again (>= 2 records), as documented;
 *     (f) the sum of tasks created for the batch is at most 40 (nothing billed twice) and
 *         equals the number of OK tags plus the INDETERMINATE tags whose task exists;
 *     (g) a final client on the journal resumes nothing: no callback fires.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define INVALID APIXO_ERR_INVALID_ARGUMENT

extern char **environ;

static long T(long ms) { return ms * h_slow(); }
static char host_path[1024];

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static apixo_client *jclient(const char *journal, int tasks) {
  apixo_options *o = h_options();
  if (journal) CHECK_CODE(apixo_options_set_journal(o, journal), APIXO_OK);
  if (tasks > 0) CHECK_CODE(apixo_options_set_limits(o, 60, tasks), APIXO_OK);
  apixo_client *c = NULL;
  CHECK_CODE(apixo_client_new(o, &c), APIXO_OK);
  apixo_options_free(o);
  return c;
}

/* ------------------------------------------------ basic API */

static void test_journal_locked(void) {
  char *dir = h_tempdir("apixo-jlock");
  if (!dir) return;
  char *path = join(dir, "locked.journal");
  apixo_client *a = jclient(path, 0);
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_journal(o, path), APIXO_OK);
  apixo_client *b = (apixo_client *)&b;
  CHECK_CODE(apixo_client_new(o, &b), APIXO_ERR_IO);
  CHECK(b == NULL);
  CHECK_CONTAINS(apixo_last_error(), "journal");
  apixo_client_free(a);
  b = NULL;
  CHECK_CODE(apixo_client_new(o, &b), APIXO_OK); /* the lock went with the first client */
  apixo_client_free(b);
  /* journals that cannot be opened */
  char *afile = join(dir, "plain");
  FILE *f = fopen(afile, "w");
  if (f) fclose(f);
  char *under = join(afile, "j");
  CHECK_CODE(apixo_options_set_journal(o, under), APIXO_OK);
  b = (apixo_client *)&b;
  CHECK_CODE(apixo_client_new(o, &b), APIXO_ERR_IO);
  CHECK(b == NULL);
  char *missing = join(dir, "no/such/dir/j");
  CHECK_CODE(apixo_options_set_journal(o, missing), APIXO_OK);
  CHECK_CODE(apixo_client_new(o, &b), APIXO_ERR_IO);
  CHECK_CODE(apixo_options_set_journal(o, dir), APIXO_OK); /* a directory */
  CHECK_CODE(apixo_client_new(o, &b), APIXO_ERR_IO);
  apixo_options_free(o);
  free(afile);
  free(under);
  free(missing);
  free(path);
  h_rmtree(dir);
  free(dir);
}

static void never_cb(apixo_code code, const apixo_task *task, void *ud) {
  (void)code;
  (void)task;
  int *n = ud;
  (*n)++;
}

static void test_resume_arguments(void) {
  apixo_client *c = h_client();
  if (!c) return;
  int fired = 0;
  /* the header: "Errors: APIXO_ERR_INVALID_ARGUMENT (c or cb NULL; the client has no
   * journal)" */
  CHECK_CODE(apixo_resume(c, never_cb, &fired), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "journal");
  CHECK_CODE(apixo_resume(NULL, never_cb, &fired), INVALID);
  CHECK_CODE(apixo_resume(c, NULL, &fired), INVALID);
  CHECK_CODE(apixo_drain(c, T(1000)), APIXO_OK);
  CHECK_EQ(fired, 0);
  apixo_client_free(c);
}

static void tag_round_trip(const char *journal) {
  apixo_client *c = jclient(journal, 0);
  if (!c) return;
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "journal tag"), 1);
  CHECK_CODE(apixo_request_set_tag(r, "order-42/\xc3\xa9"), APIXO_OK);
  apixo_task *t = NULL;
  CHECK_CODE(apixo_generate(c, r, T(30000), &t), APIXO_OK);
  CHECK_STR(apixo_task_tag(t), "order-42/\xc3\xa9");
  apixo_task *copy = apixo_task_copy(t);
  CHECK_STR(apixo_task_tag(copy), "order-42/\xc3\xa9");
  apixo_task_free(copy);
  apixo_task_free(t);
  h_slot s[2];
  memset(s, 0, sizeof s);
  CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &s[0]), APIXO_OK);
  CHECK_CODE(apixo_request_set_tag(r, NULL), APIXO_OK);
  CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &s[1]), APIXO_OK);
  CHECK_CODE(apixo_drain(c, T(30000)), APIXO_OK);
  CHECK_CODE(s[0].code, APIXO_OK);
  CHECK_STR(s[0].tag, "order-42/\xc3\xa9");
  CHECK_CODE(s[1].code, APIXO_OK);
  CHECK_STR(s[1].tag, ""); /* no tag: apixo_task_tag NULL */
  t = NULL;
  CHECK_CODE(apixo_generate(c, r, T(30000), &t), APIXO_OK);
  CHECK(apixo_task_tag(t) == NULL);
  apixo_task_free(t);
  apixo_request_free(r);
  apixo_client_free(c);
}

static void test_tag_round_trip(void) {
  tag_round_trip(NULL);
  char *dir = h_tempdir("apixo-jtag");
  if (!dir) return;
  char *path = join(dir, "tags.journal");
  tag_round_trip(path);
  /* the tag is in the journal, never on the wire */
  size_t n = 0;
  char *data = h_read_file(path, &n);
  CHECK(data != NULL);
  free(data);
  free(path);
  h_rmtree(dir);
  free(dir);
}

/* Waits until the simulator created a task for each prompt. */
static int wait_created(char prompts[][128], int n, double seconds) {
  double deadline = h_now() + seconds * h_slow();
  for (;;) {
    json_t *st = sim_stats();
    int all = 1;
    for (int i = 0; i < n; i++)
      if (stats_prompt(st, "tasks", prompts[i]) < 1) all = 0;
    json_decref(st);
    if (all) return 1;
    if (h_now() > deadline) return 0;
    h_sleep_ms(10);
  }
}

/* Tasks created while on run five times longer on the simulator (1.75 s and more for 3K at
 * the suite's 0.01), so that a test can free its client while they still run, also under
 * valgrind. Off restores the suite's scale at once (the rate window follows it). */
static void slow_tasks(int on) {
  char body[64];
  snprintf(body, sizeof body, "{\"time_scale\": %g}", h_time_scale() * (on ? 5 : 1));
  CHECK_EQ(sim_config(body), 0);
}

static void test_resume_in_process(void) {
  sim_reset();
  slow_tasks(1);
  char *dir = h_tempdir("apixo-jres");
  if (!dir) return;
  char *path = join(dir, "resume.journal");
  enum { N = 3 };
  char prompts[N + 2][128];
  h_slot first[N + 2];
  memset(first, 0, sizeof first);

  /* run A: three tasks accepted, then the client is freed before they finish; one watched
   * task from elsewhere; two intents still in the local queue (concurrency cap 3 + 1) */
  apixo_client *other = h_client();
  char *watched = NULL;
  char wprompt[128];
  apixo_request *wr = h_request(h_unique_prompt(wprompt, sizeof wprompt, "journal watched"), 1);
  CHECK_CODE(apixo_request_set_resolution(wr, "3K"), APIXO_OK);
  if (other) CHECK_CODE(apixo_submit(other, wr, &watched), APIXO_OK);
  apixo_client_free(other);
  apixo_request_free(wr);

  apixo_client *c = jclient(path, N);
  if (!c) goto out;
  for (int i = 0; i < N + 2; i++) {
    apixo_request *r = h_request(h_unique_prompt(prompts[i], sizeof prompts[i], "journal resume"), 1);
    CHECK_CODE(apixo_request_set_resolution(r, "3K"), APIXO_OK);
    char tag[16];
    snprintf(tag, sizeof tag, "r%d", i);
    CHECK_CODE(apixo_request_set_tag(r, tag), APIXO_OK);
    CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &first[i]), APIXO_OK);
    apixo_request_free(r);
  }
  h_slot wfirst;
  memset(&wfirst, 0, sizeof wfirst);
  if (watched) CHECK_CODE(apixo_watch(c, NULL, watched, h_slot_cb, &wfirst), APIXO_OK);
  CHECK(wait_created(prompts, N, 10));
  CHECK(h_wait_accepted(c, first, N + 2, N + (watched ? 1 : 0), 10)); /* and their ids are journalled */
  slow_tasks(0);
  apixo_client_free(c);
  for (int i = 0; i < N + 2; i++) {
    CHECK_EQ(first[i].fired, 1);
    CHECK_CODE(first[i].code, APIXO_ERR_CLOSED);
  }
  if (watched) CHECK_CODE(wfirst.code, APIXO_ERR_CLOSED);
  json_t *st = sim_stats();
  for (int i = N; i < N + 2; i++) CHECK_EQ(stats_prompt(st, "submits", prompts[i]), 0);
  json_decref(st);

  /* run B: resume finishes all of it */
  h_slot again[N + 3];
  memset(again, 0, sizeof again);
  c = jclient(path, 0);
  if (!c) goto out;
  /* one callback for all: record into the slot of its tag */
  h_slot all[8];
  memset(all, 0, sizeof all);
  CHECK_CODE(apixo_resume(c, h_slot_cb, &all[0]), APIXO_OK);
  CHECK_CODE(apixo_drain(c, T(30000)), APIXO_OK);
  CHECK_EQ(all[0].fired, N + 2 + (watched ? 1 : 0));
  CHECK_CODE(all[0].code, APIXO_OK); /* the last one */
  /* a second resume on the same client takes up nothing */
  int fired = 0;
  CHECK_CODE(apixo_resume(c, never_cb, &fired), APIXO_OK);
  CHECK_CODE(apixo_drain(c, T(5000)), APIXO_OK);
  CHECK_EQ(fired, 0);
  apixo_client_free(c);
  st = sim_stats();
  for (int i = 0; i < N + 2; i++) {
    CHECK_EQ(stats_prompt(st, "submits", prompts[i]), 1); /* never twice */
    CHECK_EQ(stats_prompt(st, "tasks", prompts[i]), 1);
  }
  CHECK_EQ(stats_prompt(st, "submits", wprompt), 1);
  json_decref(st);

  /* run C: nothing left */
  c = jclient(path, 0);
  if (!c) goto out;
  fired = 0;
  CHECK_CODE(apixo_resume(c, never_cb, &fired), APIXO_OK);
  CHECK_CODE(apixo_drain(c, T(5000)), APIXO_OK);
  CHECK_EQ(fired, 0);
  apixo_client_free(c);
out:
  apixo_free(watched);
  free(path);
  h_rmtree(dir);
  free(dir);
}

/* Each resumed task carries its tag and its id: one callback per tag. */
struct tagged {
  pthread_mutex_t lock;
  int n;
  char tags[16][32];
  char ids[16][64];
  int codes[16];
};

static void tagged_cb(apixo_code code, const apixo_task *task, void *ud) {
  struct tagged *tg = ud;
  pthread_mutex_lock(&tg->lock);
  if (tg->n < 16) {
    snprintf(tg->tags[tg->n], sizeof tg->tags[0], "%s", task && apixo_task_tag(task) ? apixo_task_tag(task) : "?");
    snprintf(tg->ids[tg->n], sizeof tg->ids[0], "%s", task && apixo_task_id(task) ? apixo_task_id(task) : "?");
    tg->codes[tg->n] = (int)code;
  }
  tg->n++;
  pthread_mutex_unlock(&tg->lock);
}

static void test_resume_tags_and_ids(void) {
  sim_reset();
  slow_tasks(1);
  char *dir = h_tempdir("apixo-jtags");
  if (!dir) return;
  char *path = join(dir, "t.journal");
  char prompts[3][128];
  h_slot first[3];
  memset(first, 0, sizeof first);
  apixo_client *c = jclient(path, 0);
  if (!c) goto out;
  for (int i = 0; i < 3; i++) {
    apixo_request *r = h_request(h_unique_prompt(prompts[i], sizeof prompts[i], "journal tags"), 1);
    CHECK_CODE(apixo_request_set_resolution(r, "3K"), APIXO_OK);
    char tag[16];
    snprintf(tag, sizeof tag, "k%d", i);
    CHECK_CODE(apixo_request_set_tag(r, tag), APIXO_OK);
    CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &first[i]), APIXO_OK);
    apixo_request_free(r);
  }
  CHECK(wait_created(prompts, 3, 10));
  CHECK(h_wait_accepted(c, first, 3, 3, 10)); /* and their ids are journalled */
  slow_tasks(0);
  apixo_client_free(c);
  c = jclient(path, 0);
  if (!c) goto out;
  struct tagged tg;
  memset(&tg, 0, sizeof tg);
  pthread_mutex_init(&tg.lock, NULL);
  CHECK_CODE(apixo_resume(c, tagged_cb, &tg), APIXO_OK);
  CHECK_CODE(apixo_drain(c, T(30000)), APIXO_OK);
  apixo_client_free(c);
  CHECK_EQ(tg.n, 3);
  for (int i = 0; i < 3 && i < tg.n; i++) {
    char want[16];
    snprintf(want, sizeof want, "k%d", i);
    int found = -1;
    for (int j = 0; j < tg.n; j++)
      if (!strcmp(tg.tags[j], want)) found = j;
    if (CHECK(found >= 0)) {
      CHECK_CODE(tg.codes[found], APIXO_OK);
      CHECK_STR(tg.ids[found], first[i].id); /* the CLOSED stand-in carried the id too */
    }
  }
  pthread_mutex_destroy(&tg.lock);
out:
  free(path);
  h_rmtree(dir);
  free(dir);
}

/* Tasks a resume re-tracks are the account's tasks in flight: new submits of the resumed
 * client must wait for a slot in the local queue instead of drawing 429 ("Submissions past
 * the concurrency cap wait in a local queue instead of drawing HTTP 429"). */
static void test_resume_counts_running_tasks(void) {
  sim_reset();
  slow_tasks(1);
  char *dir = h_tempdir("apixo-jslots");
  if (!dir) return;
  char *path = join(dir, "slots.journal");
  enum { N = 10, M = 3 };
  char prompts[N][128];
  h_slot first[N];
  memset(first, 0, sizeof first);
  apixo_client *c = jclient(path, 0); /* default limits: 10 tasks, as the account */
  if (!c) goto out;
  for (int i = 0; i < N; i++) {
    apixo_request *r = h_request(h_unique_prompt(prompts[i], sizeof prompts[i], "journal slots"), 1);
    CHECK_CODE(apixo_request_set_resolution(r, "3K"), APIXO_OK);
    CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &first[i]), APIXO_OK);
    apixo_request_free(r);
  }
  CHECK(wait_created(prompts, N, 10));
  CHECK(h_wait_accepted(c, first, N, N, 10)); /* and their ids are journalled (an id-less entry is another case) */
  slow_tasks(0);
  apixo_client_free(c);
  c = jclient(path, 0);
  if (!c) goto out;
  struct tagged tg;
  memset(&tg, 0, sizeof tg);
  pthread_mutex_init(&tg.lock, NULL);
  CHECK_CODE(apixo_resume(c, tagged_cb, &tg), APIXO_OK);
  h_slot more[M];
  memset(more, 0, sizeof more);
  for (int i = 0; i < M; i++) {
    char p[128];
    apixo_request *r = h_request(h_unique_prompt(p, sizeof p, "journal slots more"), 1);
    CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &more[i]), APIXO_OK);
    apixo_request_free(r);
  }
  CHECK_CODE(apixo_drain(c, T(30000)), APIXO_OK);
  apixo_client_free(c);
  CHECK_EQ(tg.n, N);
  for (int i = 0; i < M; i++) CHECK_CODE(more[i].code, APIXO_OK);
  json_t *st = sim_stats();
  long long limited = stats_int(st, "rate_limited.by_endpoint.generateTask");
  h_note("after resuming %d running tasks, %d new submits drew %lld 429(s); peak %lld", N, M,
         limited, stats_int(st, "peak_concurrent_tasks"));
  CHECK_EQ(limited, 0);
  CHECK(stats_int(st, "peak_concurrent_tasks") <= 10);
  json_decref(st);
  pthread_mutex_destroy(&tg.lock);
out:
  free(path);
  h_rmtree(dir);
  free(dir);
}

/* A journal that compacts itself (the file is rewritten once finished entries dominate,
 * after 512 appends) keeps its lock and exactly the unfinished entries. */
static void test_compaction(void) {
  sim_reset();
  CHECK_EQ(sim_config("{\"rpm\":0,\"concurrency\":0}"), 0);
  char *dir = h_tempdir("apixo-jcompact");
  if (!dir) return;
  char *path = join(dir, "big.journal");
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_journal(o, path), APIXO_OK);
  CHECK_CODE(apixo_options_set_limits(o, 0, 0), APIXO_OK);
  apixo_client *c = h_client_with(o);
  if (!c) goto out;
  enum { N = 110, M = 4 };
  h_slot *slots = calloc(N, sizeof *slots);
  char prompts[M][128];
  for (int i = 0; i < N; i++) {
    char prompt[128], tag[16];
    apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "journal compact"), 1);
    snprintf(tag, sizeof tag, "c%d", i);
    CHECK_CODE(apixo_request_set_tag(r, tag), APIXO_OK);
    CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &slots[i]), APIXO_OK);
    apixo_request_free(r);
  }
  CHECK_CODE(apixo_drain(c, T(60000)), APIXO_OK);
  int ok = 0;
  for (int i = 0; i < N; i++) ok += slots[i].fired == 1 && slots[i].code == APIXO_OK;
  CHECK_EQ(ok, N);
  free(slots);
  struct stat sb;
  if (stat(path, &sb) == 0) h_note("journal after %d tasks (5 records each): %lld bytes", N, (long long)sb.st_size);
  /* the lock survived the rewrite */
  apixo_client *second = (apixo_client *)&second;
  CHECK_CODE(apixo_client_new(o, &second), APIXO_ERR_IO);
  CHECK(second == NULL);
  /* M more, accepted, then the client goes away before they finish */
  h_slot closing[M];
  memset(closing, 0, sizeof closing);
  slow_tasks(1);
  for (int i = 0; i < M; i++) {
    apixo_request *r = h_request(h_unique_prompt(prompts[i], sizeof prompts[i], "journal after"), 1);
    CHECK_CODE(apixo_request_set_resolution(r, "3K"), APIXO_OK);
    char tag[16];
    snprintf(tag, sizeof tag, "x%d", i);
    CHECK_CODE(apixo_request_set_tag(r, tag), APIXO_OK);
    CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &closing[i]), APIXO_OK);
    apixo_request_free(r);
  }
  CHECK(wait_created(prompts, M, 10));
  CHECK(h_wait_accepted(c, closing, M, M, 10)); /* and their ids are journalled */
  slow_tasks(0);
  apixo_client_free(c);
  /* resume: exactly those M, with their tags */
  c = h_client_with(o);
  if (!c) goto out;
  struct tagged tg;
  memset(&tg, 0, sizeof tg);
  pthread_mutex_init(&tg.lock, NULL);
  CHECK_CODE(apixo_resume(c, tagged_cb, &tg), APIXO_OK);
  CHECK_CODE(apixo_drain(c, T(30000)), APIXO_OK);
  apixo_client_free(c);
  CHECK_EQ(tg.n, M);
  for (int j = 0; j < tg.n && j < 16; j++) {
    CHECK(tg.tags[j][0] == 'x');
    CHECK_CODE(tg.codes[j], APIXO_OK);
  }
  pthread_mutex_destroy(&tg.lock);
  json_t *st = sim_stats();
  for (int i = 0; i < M; i++) CHECK_EQ(stats_prompt(st, "submits", prompts[i]), 1);
  CHECK_EQ(stats_int(st, "tasks_created"), N + M);
  json_decref(st);
out:
  apixo_options_free(o);
  CHECK_EQ(sim_default_config(), 0);
  free(path);
  h_rmtree(dir);
  free(dir);
}

/* ------------------------------------------------ kill and resume */

enum { COUNT = 40 };

struct run_result {
  int signal;     /* the signal it died of, 0 if none */
  int exited;     /* exited normally */
  int status;     /* exit status */
  int killed;     /* died of SIGKILL (self or ours) */
  int done;       /* printed "done" */
};

/* Runs the host once. die_at: APIXO_TEST_DIE_AT or NULL; kill_after_ms > 0: SIGKILL from here. */
static struct run_result run_host(const char *dir, const char *journal, const char *records,
                                  const char *prefix, int run, const char *die_at, long slow_ms,
                                  long kill_after_ms) {
  struct run_result res = {0, 0, -1, 0, 0};
  char logname[64];
  snprintf(logname, sizeof logname, "run%d.log", run);
  char *log = join(dir, logname);
  /* the environment of the child, built before fork */
  int n = 0;
  while (environ[n]) n++;
  char **envp = calloc((size_t)n + 3, sizeof *envp);
  int k = 0;
  for (int i = 0; i < n; i++)
    if (strncmp(environ[i], "APIXO_TEST_", 11) != 0) envp[k++] = environ[i];
  char die_env[96], slow_env[96];
  if (die_at) {
    snprintf(die_env, sizeof die_env, "APIXO_TEST_DIE_AT=%s", die_at);
    envp[k++] = die_env;
  }
  snprintf(slow_env, sizeof slow_env, "APIXO_TEST_SLOW_CALLBACK_MS=%ld", slow_ms);
  envp[k++] = slow_env;
  envp[k] = NULL;
  char count[16], runs[16];
  snprintf(count, sizeof count, "%d", COUNT);
  snprintf(runs, sizeof runs, "%d", run);
  char *argv[] = {host_path, (char *)journal, (char *)records, count, (char *)prefix, runs, NULL};
  fflush(stdout);
  pid_t pid = fork();
  if (pid == 0) {
    int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
      dup2(fd, 1);
      dup2(fd, 2);
      close(fd);
    }
    execve(host_path, argv, envp);
    _exit(127);
  }
  free(envp);
  if (!CHECK(pid > 0)) {
    free(log);
    return res;
  }
  double t0 = h_now();
  int st = 0, sent_kill = 0;
  for (;;) {
    pid_t w = waitpid(pid, &st, WNOHANG);
    if (w == pid) break;
    double ms = (h_now() - t0) * 1000;
    if (kill_after_ms > 0 && !sent_kill && ms >= kill_after_ms) {
      kill(pid, SIGKILL);
      sent_kill = 1;
    }
    if (ms > 90000) { /* a hung host */
      kill(pid, SIGKILL);
      waitpid(pid, &st, 0);
      CHECK(!"journal_host hung for 90 s");
      break;
    }
    h_sleep_ms(5);
  }
  if (WIFEXITED(st)) {
    res.exited = 1;
    res.status = WEXITSTATUS(st);
  } else if (WIFSIGNALED(st)) {
    res.signal = WTERMSIG(st);
    res.killed = res.signal == SIGKILL;
  }
  size_t len = 0;
  char *out = h_read_file(log, &len);
  res.done = out && strstr(out, "\ndone (APIXO_OK)") != NULL;
  char how[96];
  if (die_at)
    snprintf(how, sizeof how, "self-kill at %s", die_at);
  else if (kill_after_ms > 0)
    snprintf(how, sizeof how, "SIGKILL from the test after %ld ms", kill_after_ms);
  else
    snprintf(how, sizeof how, "no kill");
  char what[64];
  if (res.killed)
    snprintf(what, sizeof what, "SIGKILLed");
  else if (res.signal)
    snprintf(what, sizeof what, "DIED OF SIGNAL %d", res.signal);
  else if (res.done)
    snprintf(what, sizeof what, "done");
  else
    snprintf(what, sizeof what, "exited with status %d", res.status);
  printf("   run %d (%s; callbacks %ld ms): %s after %.2f s\n", run, how, slow_ms, what,
         h_now() - t0);
  /* a host must only ever end by our SIGKILL or by finishing */
  if (!CHECK(res.killed || (res.exited && res.status == 0 && res.done)))
    printf("---- host output (%s):\n%s\n----\n", log, out ? out : "(none)");
  free(out);
  free(log);
  return res;
}

struct record {
  char tag[32];
  char code[48];
  char id[64];
  int run;
};

static int read_records(const char *path, struct record **out) {
  size_t len = 0;
  char *data = h_read_file(path, &len);
  int n = 0, cap = 64;
  struct record *recs = calloc((size_t)cap, sizeof *recs);
  for (char *line = data; line && *line;) {
    char *nl = strchr(line, '\n');
    if (nl) *nl = 0;
    if (n == cap) {
      cap *= 2;
      recs = realloc(recs, (size_t)cap * sizeof *recs);
    }
    memset(&recs[n], 0, sizeof recs[n]);
    if (sscanf(line, "%31s %47s %63s %d", recs[n].tag, recs[n].code, recs[n].id, &recs[n].run) == 4)
      n++;
    line = nl ? nl + 1 : NULL;
  }
  free(data);
  *out = recs;
  return n;
}

static void test_kill_and_resume(void) {
  int failures_before = h_failures();
  sim_reset();
  char *dir = h_tempdir("apixo-jkill");
  if (!dir) return;
  char *journal = join(dir, "batch.journal");
  char *records = join(dir, "records.txt");
  char prefix[96];
  h_unique_prompt(prefix, sizeof prefix, "journal kill");
  unsigned seed = (unsigned)getpid() ^ (unsigned)h_wall_ms();
  printf("   host %s; dir %s; random seed %u\n", host_path, dir, seed);
  srand(seed);

  int killed = 0, run = 0;
  struct run_result r;
  int self_kills_ok = 1;
  /* run 1: at the 5th submit, journalled as sent */
  r = run_host(dir, journal, records, prefix, ++run, "submit:5", 0, 0);
  killed += r.killed;
  self_kills_ok &= CHECK(r.killed);
  /* run 2: inside the 3rd callback, after the host recorded it */
  r = run_host(dir, journal, records, prefix, ++run, "callback:3", 20, 0);
  int run_cb = run;
  killed += r.killed;
  self_kills_ok &= CHECK(r.killed);
  /* run 3: right after the 4th answer was journalled */
  r = run_host(dir, journal, records, prefix, ++run, "accepted:4", 0, 0);
  killed += r.killed;
  self_kills_ok &= CHECK(r.killed);
  /* run 4: the first submit hangs 600 ms inside the server; die 150 ms into it */
  CHECK_EQ(sim_fault("{\"kind\":\"delay\",\"ms\":600,\"endpoint\":\"generateTask\"}"), 0);
  r = run_host(dir, journal, records, prefix, ++run, "submit:1:150", 0, 0);
  int run_delay_killed = r.killed;
  killed += r.killed;
  self_kills_ok &= CHECK(r.killed);
  h_sleep_ms(700); /* the delayed submit lands: the task exists */
  CHECK_EQ(sim_clear_faults(), 0);
  /* runs 5, 6: from outside at a random moment (they may also finish first) */
  for (int i = 0; i < 2 && !r.done; i++) {
    r = run_host(dir, journal, records, prefix, ++run, NULL, 25, 100 + rand() % 400);
    killed += r.killed;
  }
  /* then to the end */
  int finished = r.done;
  for (int i = 0; i < 6 && !finished; i++) {
    r = run_host(dir, journal, records, prefix, ++run, NULL, 0, 0);
    finished = r.done;
    killed += r.killed;
  }
  CHECK(finished);                /* (a) */
  CHECK(self_kills_ok);

  struct record *recs = NULL;
  int nrec = read_records(records, &recs);
  json_t *st = sim_stats();
  int duplicates = 0, indeterminate = 0, indeterminate_created = 0, indeterminate_unsent = 0;
  int ok_tags = 0;
  long long tasks_sum = 0, extra_sends = 0;
  for (int i = 0; i < COUNT; i++) {
    char tag[16], prompt[160];
    snprintf(tag, sizeof tag, "t%d", i);
    snprintf(prompt, sizeof prompt, "%s %s", prefix, tag);
    int n = 0, n_ok = 0, n_ind = 0;
    const char *ok_id = NULL;
    int same_id = 1;
    for (int j = 0; j < nrec; j++) {
      if (strcmp(recs[j].tag, tag) != 0) continue;
      n++;
      if (!strcmp(recs[j].code, "APIXO_OK")) {
        n_ok++;
        if (ok_id && strcmp(ok_id, recs[j].id) != 0) same_id = 0;
        ok_id = recs[j].id;
      } else if (!strcmp(recs[j].code, "APIXO_ERR_INDETERMINATE")) {
        n_ind++;
        CHECK_STR(recs[j].id, "-"); /* id "" */
      }
    }
    long long submits = stats_prompt(st, "submits", prompt);
    long long tasks = stats_prompt(st, "tasks", prompt);
    tasks_sum += tasks;
    extra_sends += submits - tasks;
    if (!CHECK(n >= 1)) /* (b) */
      h_note("tag %s was never delivered", tag);
    CHECK_EQ(n_ok + n_ind, n); /* (b): no other codes */
    if (n_ind == 0 && n > 0) { /* (c) */
      ok_tags++;
      if (!CHECK_EQ(tasks, 1)) h_note("tag %s: %lld tasks created", tag, tasks);
      CHECK(submits >= 1);
      CHECK(same_id);
      CHECK(ok_id && strncmp(ok_id, "task_", 5) == 0);
    } else if (n_ind > 0) { /* (d) */
      indeterminate++;
      CHECK_EQ(n_ok, 0);
      CHECK(tasks <= 1);
      if (tasks == 1) indeterminate_created++;
      if (submits == 0) indeterminate_unsent++;
      h_note("tag %s: INDETERMINATE x%d; the server saw %lld submit(s), %lld task(s)", tag, n_ind,
             submits, tasks);
    }
    if (n > 1) {
      duplicates += n - 1;
      char runs[128] = "";
      for (int j = 0; j < nrec; j++)
        if (!strcmp(recs[j].tag, tag) && strlen(runs) < sizeof runs - 8)
          snprintf(runs + strlen(runs), sizeof runs - strlen(runs), " %d", recs[j].run);
      h_note("tag %s delivered %d times, in runs%s", tag, n, runs);
    }
  }
  /* every record names a tag of the batch */
  for (int j = 0; j < nrec; j++) {
    int known = recs[j].tag[0] == 't' && atoi(recs[j].tag + 1) >= 0 && atoi(recs[j].tag + 1) < COUNT;
    if (!CHECK(known)) h_note("record with tag '%s' (code %s)", recs[j].tag, recs[j].code);
  }
  CHECK(indeterminate >= 1);               /* (d): run 1 */
  if (run_delay_killed) CHECK(indeterminate_created >= 1);
  /* (e) */
  CHECK(duplicates <= killed);
  int cb_dups = 0, seen_cb = 0;
  for (int j = 0; j < nrec && seen_cb < 3; j++) {
    if (recs[j].run != run_cb || ++seen_cb != 3) continue;
    /* the 3rd record of run 4 is the callback it died in */
    for (int m = 0; m < nrec; m++)
      if (!strcmp(recs[m].tag, recs[j].tag)) cb_dups++;
    h_note("run %d died in the callback of %s, delivered %d times in all", run_cb, recs[j].tag,
           cb_dups);
  }
  CHECK(cb_dups >= 2);
  /* (c, d) a prompt sent more often than it created tasks was refused with 429 first */
  long long refused = stats_int(st, "rate_limited.by_endpoint.generateTask");
  CHECK(extra_sends <= refused);
  /* (f) */
  CHECK(tasks_sum <= COUNT);
  CHECK_EQ(tasks_sum, ok_tags + indeterminate_created);
  h_note("%d runs, %d killed; %d records; %d tags OK, %d INDETERMINATE (%d with a task, %d never "
         "arrived); %d duplicate deliveries; %lld tasks created; %lld sends refused with 429 and "
         "sent again",
         run, killed, nrec, ok_tags, indeterminate, indeterminate_created, indeterminate_unsent,
         duplicates, tasks_sum, extra_sends);
  json_decref(st);
  free(recs);

  /* (g) nothing left in the journal */
  apixo_client *c = jclient(journal, 0);
  if (c) {
    int fired = 0;
    CHECK_CODE(apixo_resume(c, never_cb, &fired), APIXO_OK);
    CHECK_CODE(apixo_drain(c, T(10000)), APIXO_OK);
    CHECK_EQ(fired, 0);
    apixo_client_free(c);
  }
  free(journal);
  free(records);
  if (h_failures() == failures_before)
    h_rmtree(dir);
  else
    h_note("kept %s (journal, records, run logs)", dir);
  free(dir);
}

int main(int argc, char **argv) {
  (void)argc;
  h_init();
  const char *bindir = getenv("APIXO_TEST_BINDIR");
  if (bindir && *bindir) {
    snprintf(host_path, sizeof host_path, "%s/journal_host", bindir);
  } else {
    snprintf(host_path, sizeof host_path, "%s", argv[0]);
    char *slash = strrchr(host_path, '/');
    if (slash)
      snprintf(slash + 1, sizeof host_path - (size_t)(slash + 1 - host_path), "journal_host");
    else
      snprintf(host_path, sizeof host_path, "./journal_host");
  }
  RUN(test_journal_locked);
  RUN(test_resume_arguments);
  RUN(test_tag_round_trip);
  RUN(test_resume_in_process);
  RUN(test_resume_tags_and_ids);
  RUN(test_compaction);
  RUN(test_resume_counts_running_tasks);
  if (access(host_path, X_OK) == 0) {
    RUN(test_kill_and_resume);
  } else {
    CHECK(!"journal_host not found beside the test (make builds build/tests/journal_host)");
  }
  return h_finish();
}
