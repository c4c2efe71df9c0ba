/* One worker process of the shared-budget tests: N tasks through one client, optionally on a
 * shared budget and with a journal. Prints one JSON line per outcome and a summary:
 *   worker BASE_URL N TAG_PREFIX [--shared URL] [--journal PATH] [--resume] [--log]
 * Env: APIXO_API_KEY, APIXO_TIME_SCALE. Exit 0 when every task succeeded. */
#define _POSIX_C_SOURCE 200809L
#include <apixo.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static int ok_count, failed_count;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void on_done(apixo_code code, const apixo_task *t, void *ud) {
  (void)ud;
  pthread_mutex_lock(&mu);
  if (code == APIXO_OK) ok_count++; else failed_count++;
  printf("{\"event\":\"done\",\"code\":\"%s\",\"id\":\"%s\",\"tag\":\"%s\"}\n", apixo_code_name(code),
         t ? apixo_task_id(t) : "", t && apixo_task_tag(t) ? apixo_task_tag(t) : "");
  fflush(stdout);
  pthread_mutex_unlock(&mu);
}

static void on_log(int level, const char *msg, void *ud) {
  (void)ud;
  if (level >= APIXO_LOG_WARN) {
    fprintf(stderr, "log: %s\n", msg);
    fflush(stderr);
  }
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: worker BASE_URL N TAG_PREFIX [--shared URL] [--journal PATH] [--resume]\n");
    return 2;
  }
  const char *base = argv[1], *prefix = argv[3], *shared = NULL, *journal = NULL;
  int n = atoi(argv[2]), resume = 0;
  for (int i = 4; i < argc; i++) {
    if (!strcmp(argv[i], "--shared") && i + 1 < argc) shared = argv[++i];
    else if (!strcmp(argv[i], "--journal") && i + 1 < argc) journal = argv[++i];
    else if (!strcmp(argv[i], "--resume")) resume = 1;
  }
  const char *scale = getenv("APIXO_TIME_SCALE");
  apixo_options *o = apixo_options_new();
  apixo_options_set_base_url(o, base);
  apixo_options_set_time_scale(o, scale ? atof(scale) : 1.0);
  apixo_options_set_logger(o, on_log, APIXO_LOG_WARN, NULL);
  if (shared && apixo_options_set_shared_budget(o, shared, NULL) != APIXO_OK) {
    fprintf(stderr, "shared budget: %s\n", apixo_last_error());
    return 2;
  }
  if (journal) apixo_options_set_journal(o, journal);
  apixo_client *c = NULL;
  if (apixo_client_new(o, &c) != APIXO_OK) {
    fprintf(stderr, "client: %s\n", apixo_last_error());
    return 2;
  }
  apixo_options_free(o);
  double t0 = now_s();
  if (resume) {
    if (apixo_resume(c, on_done, NULL) != APIXO_OK) {
      fprintf(stderr, "resume: %s\n", apixo_last_error());
      return 2;
    }
  }
  for (int i = 0; i < n; i++) {
    apixo_request *r = apixo_request_new("seedream-5-0");
    char prompt[128], tag[96];
    snprintf(tag, sizeof tag, "%s-%d", prefix, i);
    snprintf(prompt, sizeof prompt, "shared budget %s", tag);
    apixo_request_set_prompt(r, prompt);
    apixo_request_set_max_images(r, 1);
    apixo_request_set_tag(r, tag);
    if (apixo_submit_async(c, r, on_done, NULL) != APIXO_OK) {
      fprintf(stderr, "submit_async: %s\n", apixo_last_error());
      return 2;
    }
    apixo_request_free(r);
  }
  printf("{\"event\":\"submitted\",\"n\":%d}\n", n);
  fflush(stdout);
  apixo_code rc = apixo_drain(c, 600000);
  double t = now_s() - t0;
  printf("{\"event\":\"summary\",\"ok\":%d,\"failed\":%d,\"seconds\":%.3f,\"drain\":\"%s\"}\n", ok_count,
         failed_count, t, apixo_code_name(rc));
  fflush(stdout);
  apixo_client_free(c);
  return rc == APIXO_OK && failed_count == 0 ? 0 : 1;
}
