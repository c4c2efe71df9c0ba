/* test_errors.c: the "Version and errors" section of apixo.h.
 *
 *   apixo_version() == APIXO_VERSION_STRING; apixo_code_name() for every code, for values
 *   outside the enum ("APIXO_ERR_UNKNOWN"); apixo_state_name(); apixo_last_error() is never
 *   NULL, "" on a thread where nothing failed, not cleared by successful calls, and
 *   thread-local (two threads failing at once each read their own message); apixo_free(NULL).
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

static void test_version(void) {
  const char *v = apixo_version();
  CHECK(v != NULL);
  CHECK_STR(v, APIXO_VERSION_STRING);
  char want[32];
  snprintf(want, sizeof want, "%d.%d.%d", APIXO_VERSION_MAJOR, APIXO_VERSION_MINOR,
           APIXO_VERSION_PATCH);
  CHECK_STR(v, want);
  CHECK(apixo_version() == v); /* static string */
}

static void test_code_names(void) {
  static const char *names[] = {
      "APIXO_OK",
      "APIXO_ERR_INVALID_ARGUMENT",
      "APIXO_ERR_BAD_REQUEST",
      "APIXO_ERR_UNAUTHORIZED",
      "APIXO_ERR_PAYMENT_REQUIRED",
      "APIXO_ERR_FORBIDDEN",
      "APIXO_ERR_NOT_FOUND",
      "APIXO_ERR_RATE_LIMITED",
      "APIXO_ERR_SERVER",
      "APIXO_ERR_NETWORK",
      "APIXO_ERR_TIMEOUT",
      "APIXO_ERR_PROTOCOL",
      "APIXO_ERR_TASK_FAILED",
      "APIXO_ERR_CANCELLED",
      "APIXO_ERR_CLOSED",
      "APIXO_ERR_IO",
      "APIXO_ERR_NO_MEMORY",
      "APIXO_ERR_INDETERMINATE",
  };
  /* the enum values are ABI: check them literally */
  CHECK_EQ(APIXO_OK, 0);
  CHECK_EQ(APIXO_ERR_TIMEOUT, 10);
  CHECK_EQ(APIXO_ERR_INDETERMINATE, 17);
  for (int i = 0; i <= 17; i++) CHECK_STR(apixo_code_name((apixo_code)i), names[i]);
  CHECK_STR(apixo_code_name(APIXO_ERR_TIMEOUT), "APIXO_ERR_TIMEOUT");
  CHECK_STR(apixo_code_name((apixo_code)18), "APIXO_ERR_UNKNOWN");
  CHECK_STR(apixo_code_name((apixo_code)-1), "APIXO_ERR_UNKNOWN");
  CHECK_STR(apixo_code_name((apixo_code)100000), "APIXO_ERR_UNKNOWN");
  CHECK(apixo_code_name((apixo_code)999) != NULL);
}

static void test_state_names(void) {
  CHECK_STR(apixo_state_name(APIXO_STATE_PENDING), "pending");
  CHECK_STR(apixo_state_name(APIXO_STATE_PROCESSING), "processing");
  CHECK_STR(apixo_state_name(APIXO_STATE_SUCCESS), "success");
  CHECK_STR(apixo_state_name(APIXO_STATE_FAILED), "failed");
  CHECK_STR(apixo_state_name((apixo_state)4), "unknown");
  CHECK_STR(apixo_state_name((apixo_state)-1), "unknown");
}

static void test_free_null(void) {
  apixo_free(NULL);
  apixo_options_free(NULL);
  apixo_request_free(NULL);
  apixo_task_free(NULL);
  apixo_client_free(NULL);
  apixo_free_paths(NULL, 0);
  apixo_free_paths(NULL, 3);
  CHECK(1);
}

/* ------------------------------------------------ last error */

static void *fresh_thread(void *arg) {
  const char **out = arg;
  const char *e = apixo_last_error();
  *out = e ? (e[0] == 0 ? "EMPTY" : "NONEMPTY") : "NULL";
  return NULL;
}

static void test_last_error_basics(void) {
  /* a thread on which nothing failed yet sees "" */
  pthread_t th;
  const char *seen = NULL;
  CHECK_EQ(pthread_create(&th, NULL, fresh_thread, &seen), 0);
  pthread_join(th, NULL);
  CHECK_STR(seen, "EMPTY");

  CHECK(apixo_last_error() != NULL);
  apixo_request *r = apixo_request_new(NULL);
  CHECK(r != NULL);
  CHECK_CODE(apixo_request_set_max_images(r, 0), APIXO_ERR_INVALID_ARGUMENT);
  char saved[512];
  snprintf(saved, sizeof saved, "%s", apixo_last_error());
  CHECK_CONTAINS(saved, "max_images");
  /* successful calls do not clear it */
  CHECK_CODE(apixo_request_set_max_images(r, 2), APIXO_OK);
  CHECK_STR(apixo_last_error(), saved);
  CHECK(apixo_version() != NULL);
  CHECK_STR(apixo_last_error(), saved);
  /* a NULL handle names the argument */
  CHECK_CODE(apixo_request_set_prompt(NULL, "x"), APIXO_ERR_INVALID_ARGUMENT);
  CHECK_CONTAINS(apixo_last_error(), "req");
  CHECK_CODE(apixo_options_set_timeout_ms(NULL, 5), APIXO_ERR_INVALID_ARGUMENT);
  CHECK_CONTAINS(apixo_last_error(), "opts");
  apixo_request_free(r);
}

/* Two threads fail with different errors at the same moment; each then reads its own. */
static pthread_barrier_t barrier;

struct thread_result {
  int which;
  int rounds;
  int mismatches;
  char before[512];
  char after[512];
  int code;
};

static void *failing_thread(void *arg) {
  struct thread_result *res = arg;
  apixo_request *r = apixo_request_new(NULL);
  for (int round = 0; round < res->rounds; round++) {
    if (res->which == 0) {
      res->code = apixo_request_set_max_images(r, 11);
    } else {
      res->code = apixo_request_set_aspect_ratio(r, "5:4");
    }
    snprintf(res->before, sizeof res->before, "%s", apixo_last_error());
    pthread_barrier_wait(&barrier); /* both failed */
    pthread_barrier_wait(&barrier); /* both may read */
    snprintf(res->after, sizeof res->after, "%s", apixo_last_error());
    if (strcmp(res->before, res->after) != 0) res->mismatches++;
  }
  apixo_request_free(r);
  return NULL;
}

static void test_last_error_thread_local(void) {
  pthread_barrier_init(&barrier, NULL, 2);
  struct thread_result a, b;
  memset(&a, 0, sizeof a);
  memset(&b, 0, sizeof b);
  a.which = 0;
  b.which = 1;
  a.rounds = b.rounds = 200;
  pthread_t ta, tb;
  CHECK_EQ(pthread_create(&ta, NULL, failing_thread, &a), 0);
  CHECK_EQ(pthread_create(&tb, NULL, failing_thread, &b), 0);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  pthread_barrier_destroy(&barrier);
  CHECK_CODE(a.code, APIXO_ERR_INVALID_ARGUMENT);
  CHECK_CODE(b.code, APIXO_ERR_INVALID_ARGUMENT);
  CHECK_EQ(a.mismatches, 0);
  CHECK_EQ(b.mismatches, 0);
  CHECK_CONTAINS(a.after, "max_images");
  CHECK_CONTAINS(b.after, "aspect_ratio");
  CHECK(strstr(a.after, "aspect_ratio") == NULL);
  CHECK(strstr(b.after, "max_images") == NULL);
}

/* The main thread's last error survives another thread's failures. */
static void test_last_error_main_untouched(void) {
  CHECK_CODE(apixo_options_set_max_retries(NULL, 1), APIXO_ERR_INVALID_ARGUMENT);
  char mine[512];
  snprintf(mine, sizeof mine, "%s", apixo_last_error());
  CHECK_CONTAINS(mine, "opts");
  struct thread_result a;
  memset(&a, 0, sizeof a);
  a.which = 0;
  a.rounds = 1;
  pthread_barrier_init(&barrier, NULL, 2);
  pthread_t ta;
  CHECK_EQ(pthread_create(&ta, NULL, failing_thread, &a), 0);
  pthread_barrier_wait(&barrier); /* the thread has failed */
  CHECK_STR(apixo_last_error(), mine);
  pthread_barrier_wait(&barrier);
  pthread_join(ta, NULL);
  pthread_barrier_destroy(&barrier);
  CHECK_STR(apixo_last_error(), mine);
}

int main(void) {
  h_init();
  RUN(test_version);
  RUN(test_code_names);
  RUN(test_state_names);
  RUN(test_free_null);
  RUN(test_last_error_basics);
  RUN(test_last_error_thread_local);
  RUN(test_last_error_main_untouched);
  return h_finish();
}
