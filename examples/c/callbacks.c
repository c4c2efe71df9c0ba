/* callbacks.c: many tasks at once, completion through callbacks.
 *
 *   callbacks [N] [PROMPT]
 *
 * Submits N tasks (default 12) with apixo_submit_async; the client queues what exceeds the
 * account's concurrency cap and paces every request under its rate limit. Each callback runs
 * on the client's dispatcher thread; apixo_drain waits for all of them. Environment as for
 * generate.c. */
#include <apixo.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

struct tally {
  pthread_mutex_t lock;
  int ok, failed, errors;
};

static void on_done(apixo_code code, const apixo_task *task, void *user_data) {
  struct tally *t = user_data;
  pthread_mutex_lock(&t->lock);
  if (code == APIXO_OK) {
    t->ok++;
    printf("done   %s  %zu image(s)  %s\n", apixo_task_id(task), apixo_task_result_count(task),
           apixo_task_result_url(task, 0));
  } else if (code == APIXO_ERR_TASK_FAILED) {
    t->failed++;
    printf("failed %s  %s\n", apixo_task_id(task), apixo_task_fail_code(task));
  } else {
    t->errors++;
    printf("error  %s: %s\n", apixo_code_name(code), apixo_last_error());
  }
  fflush(stdout);
  pthread_mutex_unlock(&t->lock);
}

int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 12;
  const char *prompt = argc > 2 ? argv[2] : "a lighthouse in a storm, oil painting";
  if (n < 1 || n > 1000) {
    fprintf(stderr, "usage: callbacks [N (1-1000)] [PROMPT]\n");
    return 2;
  }
  apixo_options *opts = apixo_options_new();
  const char *scale = getenv("APIXO_TIME_SCALE");
  if (scale) apixo_options_set_time_scale(opts, atof(scale));
  apixo_client *client = NULL;
  apixo_code rc = apixo_client_new(opts, &client);
  apixo_options_free(opts);
  if (rc != APIXO_OK) {
    fprintf(stderr, "callbacks: %s: %s\n", apixo_code_name(rc), apixo_last_error());
    return 1;
  }
  struct tally t = {PTHREAD_MUTEX_INITIALIZER, 0, 0, 0};
  apixo_request *req = apixo_request_new(NULL);
  apixo_request_set_prompt(req, prompt);
  apixo_request_set_max_images(req, 1);
  for (int i = 0; i < n; i++) {
    rc = apixo_submit_async(client, req, on_done, &t);
    if (rc != APIXO_OK) {
      fprintf(stderr, "callbacks: submit %d: %s: %s\n", i, apixo_code_name(rc), apixo_last_error());
      break;
    }
  }
  rc = apixo_drain(client, -1);
  printf("%d succeeded, %d failed, %d errors (%s)\n", t.ok, t.failed, t.errors, apixo_code_name(rc));
  apixo_request_free(req);
  apixo_client_free(client);
  return t.ok == n ? 0 : 1;
}
