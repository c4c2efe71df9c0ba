/* journal_host.c: the crash host of test_journal.c (not a test of its own).
 *
 *   journal_host JOURNAL RECORDS COUNT PREFIX RUN
 *
 * One run of a batch job that must survive SIGKILL at any moment:
 *   1. opens a client on JOURNAL (base URL, key and time scale from the environment);
 *   2. apixo_resume() and apixo_drain(): every task an earlier run left unfinished is
 *      delivered now (polled to its end, its recorded outcome, INDETERMINATE for a submit
 *      whose answer was lost, or submitted now if it never left the local queue);
 *   3. reads RECORDS and submits, with apixo_submit_async, every tag "t<i>" (i < COUNT) that
 *      has no record yet: prompt "PREFIX t<i>", max_images 1, tag "t<i>". After step 2 every
 *      tag the journal knew has a record, so a tag without one was never journalled, hence
 *      never sent. A tag recorded as INDETERMINATE is NOT resubmitted (it may exist);
 *   4. apixo_drain(), apixo_client_free(), prints "done", exits 0.
 *
 * Every callback appends "TAG CODE_NAME ID RUN" to RECORDS (ID "-" when the snapshot's id is
 * empty, TAG "?" when the snapshot has no tag) and fsyncs it before returning, so a delivery
 * counts once recorded. Events go to stdout: "started", "resumed", "submitted N", "done".
 *
 * Test knobs (environment):
 *   APIXO_TEST_SLOW_CALLBACK_MS=N   each callback sleeps N ms after recording;
 *   APIXO_TEST_DIE_AT=EVENT:N[:MS]  SIGKILL this process at the N-th EVENT of this run (MS ms
 *                                   later when given), EVENT one of:
 *       submit    the library's debug log line "submit <model> ..." (written on the engine
 *                 thread after the journal recorded the intent as being sent, right before the
 *                 POST is handed to curl)
 *       accepted  the library's log line "task <id> accepted" (after the journal recorded the
 *                 task id)
 *       callback  inside the host's callback, after the delivery was recorded to RECORDS and
 *                 before returning (so the journal has no delivery record: it fires again)
 */
#include "harness.h"

#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *records_path;
static int run_no;
static long slow_ms;
static char die_event[32];
static int die_n;
static long die_delay_ms;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int counts[3]; /* submit, accepted, callback */

static void *delayed_kill(void *arg) {
  (void)arg;
  h_sleep_ms(die_delay_ms);
  kill(getpid(), SIGKILL);
  return NULL;
}

static void event(int which, const char *name) {
  if (!die_event[0] || strcmp(die_event, name) != 0) return;
  pthread_mutex_lock(&lock);
  int n = ++counts[which];
  pthread_mutex_unlock(&lock);
  if (n != die_n) return;
  printf("dying at %s %d (+%ld ms)\n", name, n, die_delay_ms);
  fflush(stdout);
  if (die_delay_ms <= 0) {
    kill(getpid(), SIGKILL);
  } else {
    pthread_t th;
    pthread_create(&th, NULL, delayed_kill, NULL);
    pthread_detach(th);
  }
}

static void logger(int level, const char *message, void *ud) {
  (void)level;
  (void)ud;
  if (!strncmp(message, "submit ", 7)) event(0, "submit");
  if (!strncmp(message, "task ", 5) && strstr(message, " accepted")) event(1, "accepted");
}

static void on_done(apixo_code code, const apixo_task *task, void *ud) {
  (void)ud;
  const char *tag = task && apixo_task_tag(task) ? apixo_task_tag(task) : "?";
  const char *id = task && apixo_task_id(task) && apixo_task_id(task)[0] ? apixo_task_id(task) : "-";
  char line[512];
  int n = snprintf(line, sizeof line, "%s %s %s %d\n", tag, apixo_code_name(code), id, run_no);
  int fd = open(records_path, O_WRONLY | O_APPEND | O_CREAT, 0644);
  if (fd >= 0) {
    ssize_t w = write(fd, line, (size_t)n);
    (void)w;
    fsync(fd);
    close(fd);
  }
  event(2, "callback");
  if (slow_ms > 0) h_sleep_ms(slow_ms);
}

/* Tags with at least one record. */
static int recorded(const char *tag) {
  size_t len = 0;
  char *data = h_read_file(records_path, &len);
  if (!data) return 0;
  int found = 0;
  size_t tl = strlen(tag);
  for (char *line = data; line && *line;) {
    char *nl = strchr(line, '\n');
    if (!strncmp(line, tag, tl) && line[tl] == ' ') found = 1;
    line = nl ? nl + 1 : NULL;
  }
  free(data);
  return found;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: journal_host JOURNAL RECORDS COUNT PREFIX RUN\n");
    return 2;
  }
  h_init();
  setvbuf(stdout, NULL, _IOLBF, 0);
  const char *journal = argv[1];
  records_path = argv[2];
  int count = atoi(argv[3]);
  const char *prefix = argv[4];
  run_no = atoi(argv[5]);
  const char *slow = getenv("APIXO_TEST_SLOW_CALLBACK_MS");
  slow_ms = slow ? atol(slow) : 0;
  const char *die = getenv("APIXO_TEST_DIE_AT");
  if (die && *die) {
    char buf[32];
    snprintf(buf, sizeof buf, "%.31s", die);
    char *c1 = strchr(buf, ':');
    if (c1) {
      *c1 = 0;
      snprintf(die_event, sizeof die_event, "%.31s", buf);
      die_n = atoi(c1 + 1);
      char *c2 = strchr(c1 + 1, ':');
      if (c2) die_delay_ms = atol(c2 + 1);
    }
  }

  apixo_options *o = apixo_options_new();
  apixo_options_set_base_url(o, h_base_url());
  apixo_options_set_api_key(o, h_api_key());
  apixo_options_set_time_scale(o, h_time_scale());
  apixo_options_set_journal(o, journal);
  apixo_options_set_logger(o, logger, APIXO_LOG_DEBUG, NULL);
  apixo_client *c = NULL;
  apixo_code rc = apixo_client_new(o, &c);
  apixo_options_free(o);
  if (rc != APIXO_OK) {
    printf("client_new: %s: %s\n", apixo_code_name(rc), apixo_last_error());
    return 3;
  }
  printf("started\n");
  rc = apixo_resume(c, on_done, NULL);
  if (rc != APIXO_OK) {
    printf("resume: %s: %s\n", apixo_code_name(rc), apixo_last_error());
    apixo_client_free(c);
    return 4;
  }
  rc = apixo_drain(c, -1);
  printf("resumed (%s)\n", apixo_code_name(rc));

  int submitted = 0;
  for (int i = 0; i < count; i++) {
    char tag[32], prompt[256];
    snprintf(tag, sizeof tag, "t%d", i);
    if (recorded(tag)) continue;
    snprintf(prompt, sizeof prompt, "%s %s", prefix, tag);
    apixo_request *r = apixo_request_new("seedream-5-0");
    apixo_request_set_prompt(r, prompt);
    apixo_request_set_max_images(r, 1);
    apixo_request_set_tag(r, tag);
    rc = apixo_submit_async(c, r, on_done, NULL);
    apixo_request_free(r);
    if (rc != APIXO_OK) {
      printf("submit_async %s: %s: %s\n", tag, apixo_code_name(rc), apixo_last_error());
      apixo_client_free(c);
      return 5;
    }
    submitted++;
  }
  printf("submitted %d\n", submitted);
  rc = apixo_drain(c, -1);
  apixo_client_free(c);
  printf("done (%s)\n", apixo_code_name(rc));
  return h_finish() == 0 && rc == APIXO_OK ? 0 : 6;
}
