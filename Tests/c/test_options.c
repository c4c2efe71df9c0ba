/* test_options.c: the "Options" and "Client" sections of apixo.h.
 *
 *   Every setter with valid values (APIXO_OK) and invalid ones (APIXO_ERR_INVALID_ARGUMENT with
 *   a message): timeout 0/-1, negative retries and limits, time scale 0/-1/NaN/inf, base URLs
 *   that are not http(s), an empty key, empty CA file / journal paths, log levels outside
 *   0..3, max_download_bytes <= 0; a NULL options handle on every setter (the message names
 *   "opts"); NULL key / base URL / CA file / journal / logger unset the value;
 *   apixo_options_free(NULL). apixo_client_new: out NULL; no key anywhere (env unset) fails
 *   with INVALID_ARGUMENT and *out = NULL; an invalid env APIXO_BASE_URL; NULL options take the
 *   environment; options freed right after apixo_client_new (and reused for a second client);
 *   a logger receives lines and never the API key; apixo_client_free(NULL).
 */
#include "harness.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define INVALID APIXO_ERR_INVALID_ARGUMENT

static void test_defaults_and_free(void) {
  apixo_options *o = apixo_options_new();
  CHECK(o != NULL);
  apixo_options_free(o);
  apixo_options_free(NULL);
  CHECK(1);
}

static void test_null_handle(void) {
  CHECK_CODE(apixo_options_set_api_key(NULL, "k"), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "opts");
  CHECK_CODE(apixo_options_set_base_url(NULL, "http://a/api/v1"), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "opts");
  CHECK_CODE(apixo_options_set_timeout_ms(NULL, 1000), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "opts");
  CHECK_CODE(apixo_options_set_max_retries(NULL, 1), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "opts");
  CHECK_CODE(apixo_options_set_limits(NULL, 1, 1), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "opts");
  CHECK_CODE(apixo_options_set_time_scale(NULL, 1.0), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "opts");
  CHECK_CODE(apixo_options_set_ca_file(NULL, "/etc/ssl/certs/ca-certificates.crt"), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "opts");
  CHECK_CODE(apixo_options_set_logger(NULL, NULL, APIXO_LOG_INFO, NULL), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "opts");
  CHECK_CODE(apixo_options_set_max_download_bytes(NULL, 100), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "opts");
  CHECK_CODE(apixo_options_set_journal(NULL, "/tmp/j"), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "opts");
}

static void test_api_key(void) {
  apixo_options *o = apixo_options_new();
  CHECK_CODE(apixo_options_set_api_key(o, "sk-something"), APIXO_OK);
  CHECK_CODE(apixo_options_set_api_key(o, ""), INVALID);
  CHECK(apixo_last_error()[0] != 0);
  /* NULL unsets it (the client then falls back to env APIXO_API_KEY) */
  CHECK_CODE(apixo_options_set_api_key(o, NULL), APIXO_OK);
  apixo_options_free(o);
}

static void test_base_url(void) {
  apixo_options *o = apixo_options_new();
  CHECK_CODE(apixo_options_set_base_url(o, "https://api.apixo.ai/api/v1"), APIXO_OK);
  CHECK_CODE(apixo_options_set_base_url(o, "http://127.0.0.1:8080/api/v1/"), APIXO_OK);
  CHECK_CODE(apixo_options_set_base_url(o, "ftp://example.com/api/v1"), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "base_url");
  CHECK_CODE(apixo_options_set_base_url(o, "not a url"), INVALID);
  CHECK_CODE(apixo_options_set_base_url(o, ""), INVALID);
  CHECK_CODE(apixo_options_set_base_url(o, "http://"), INVALID);
  CHECK_CODE(apixo_options_set_base_url(o, NULL), APIXO_OK); /* unsets */
  apixo_options_free(o);
}

static void test_numbers(void) {
  apixo_options *o = apixo_options_new();
  CHECK_CODE(apixo_options_set_timeout_ms(o, 1), APIXO_OK);
  CHECK_CODE(apixo_options_set_timeout_ms(o, 30000), APIXO_OK);
  CHECK_CODE(apixo_options_set_timeout_ms(o, 0), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "timeout");
  CHECK_CODE(apixo_options_set_timeout_ms(o, -1), INVALID);

  CHECK_CODE(apixo_options_set_max_retries(o, 0), APIXO_OK);
  CHECK_CODE(apixo_options_set_max_retries(o, 3), APIXO_OK);
  CHECK_CODE(apixo_options_set_max_retries(o, -1), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "retries");

  CHECK_CODE(apixo_options_set_limits(o, 60, 10), APIXO_OK);
  CHECK_CODE(apixo_options_set_limits(o, 0, 0), APIXO_OK); /* 0 = off */
  CHECK_CODE(apixo_options_set_limits(o, -1, 10), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "limit");
  CHECK_CODE(apixo_options_set_limits(o, 60, -1), INVALID);
  CHECK_CODE(apixo_options_set_limits(o, -5, -5), INVALID);

  CHECK_CODE(apixo_options_set_time_scale(o, 1.0), APIXO_OK);
  CHECK_CODE(apixo_options_set_time_scale(o, 0.01), APIXO_OK);
  CHECK_CODE(apixo_options_set_time_scale(o, 0.0), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "time_scale");
  CHECK_CODE(apixo_options_set_time_scale(o, -1.0), INVALID);
  CHECK_CODE(apixo_options_set_time_scale(o, NAN), INVALID);
  CHECK_CODE(apixo_options_set_time_scale(o, INFINITY), INVALID);
  CHECK_CODE(apixo_options_set_time_scale(o, -INFINITY), INVALID);

  CHECK_CODE(apixo_options_set_max_download_bytes(o, 1), APIXO_OK);
  CHECK_CODE(apixo_options_set_max_download_bytes(o, 67108864), APIXO_OK);
  CHECK_CODE(apixo_options_set_max_download_bytes(o, 0), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "max_download_bytes");
  CHECK_CODE(apixo_options_set_max_download_bytes(o, -1), INVALID);
  apixo_options_free(o);
}

static void test_paths(void) {
  apixo_options *o = apixo_options_new();
  CHECK_CODE(apixo_options_set_ca_file(o, "/etc/ssl/certs/ca-certificates.crt"), APIXO_OK);
  CHECK_CODE(apixo_options_set_ca_file(o, ""), INVALID);
  CHECK_CODE(apixo_options_set_ca_file(o, NULL), APIXO_OK);
  CHECK_CODE(apixo_options_set_journal(o, "/tmp/some.journal"), APIXO_OK);
  CHECK_CODE(apixo_options_set_journal(o, ""), INVALID);
  CHECK_CODE(apixo_options_set_journal(o, NULL), APIXO_OK);
  apixo_options_free(o);
}

static void null_logger(int level, const char *message, void *ud) {
  (void)level;
  (void)message;
  (void)ud;
}

static void test_logger_setter(void) {
  apixo_options *o = apixo_options_new();
  for (int lvl = APIXO_LOG_DEBUG; lvl <= APIXO_LOG_ERROR; lvl++)
    CHECK_CODE(apixo_options_set_logger(o, null_logger, lvl, NULL), APIXO_OK);
  CHECK_CODE(apixo_options_set_logger(o, null_logger, -1, NULL), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "min_level");
  CHECK_CODE(apixo_options_set_logger(o, null_logger, 4, NULL), INVALID);
  CHECK_CODE(apixo_options_set_logger(o, NULL, APIXO_LOG_INFO, NULL), APIXO_OK); /* removes */
  apixo_options_free(o);
}

/* ------------------------------------------------ apixo_client_new */

static char *saved_env(const char *name) {
  const char *v = getenv(name);
  return v ? strdup(v) : NULL;
}

static void restore_env(const char *name, char *value) {
  if (value) {
    setenv(name, value, 1);
    free(value);
  } else {
    unsetenv(name);
  }
}

static void test_client_new_errors(void) {
  apixo_options *o = h_options();
  CHECK_CODE(apixo_client_new(o, NULL), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "out");
  apixo_options_free(o);

  /* no key in the options and none in the environment */
  char *key = saved_env("APIXO_API_KEY");
  unsetenv("APIXO_API_KEY");
  o = apixo_options_new();
  CHECK_CODE(apixo_options_set_base_url(o, h_base_url()), APIXO_OK);
  apixo_client *c = (apixo_client *)&c; /* garbage: must be overwritten with NULL */
  CHECK_CODE(apixo_client_new(o, &c), INVALID);
  CHECK(c == NULL);
  CHECK_CONTAINS(apixo_last_error(), "API key");
  /* an unset key (NULL) falls back to the environment, which is empty too */
  CHECK_CODE(apixo_options_set_api_key(o, "sk-sim"), APIXO_OK);
  CHECK_CODE(apixo_options_set_api_key(o, NULL), APIXO_OK);
  c = NULL;
  CHECK_CODE(apixo_client_new(o, &c), INVALID);
  CHECK(c == NULL);
  /* NULL options, no env key */
  c = (apixo_client *)&c;
  CHECK_CODE(apixo_client_new(NULL, &c), INVALID);
  CHECK(c == NULL);
  apixo_options_free(o);
  /* the environment key is used when the options have none */
  setenv("APIXO_API_KEY", "sk-sim", 1);
  o = apixo_options_new();
  CHECK_CODE(apixo_options_set_base_url(o, h_base_url()), APIXO_OK);
  c = NULL;
  CHECK_CODE(apixo_client_new(o, &c), APIXO_OK);
  CHECK(c != NULL);
  apixo_client_free(c);
  apixo_options_free(o);
  restore_env("APIXO_API_KEY", key);

  /* an invalid APIXO_BASE_URL in the environment, none in the options */
  char *base = saved_env("APIXO_BASE_URL");
  setenv("APIXO_BASE_URL", "ftp://example.com/api/v1", 1);
  o = apixo_options_new();
  CHECK_CODE(apixo_options_set_api_key(o, "sk-sim"), APIXO_OK);
  c = (apixo_client *)&c;
  CHECK_CODE(apixo_client_new(o, &c), INVALID);
  CHECK(c == NULL);
  CHECK_CONTAINS(apixo_last_error(), "base_url");
  apixo_options_free(o);
  restore_env("APIXO_BASE_URL", base);
}

/* NULL options: every default, API key and base URL from the environment. */
static void test_client_new_env_defaults(void) {
  apixo_client *c = NULL;
  CHECK_CODE(apixo_client_new(NULL, &c), APIXO_OK);
  if (!c) return;
  apixo_task *t = NULL;
  /* talking to the simulator proves the env base URL and key were used: 404, not 401 */
  CHECK_CODE(apixo_get_status(c, NULL, "task_doesnotexist", &t), APIXO_ERR_NOT_FOUND);
  CHECK(t == NULL);
  apixo_client_free(c);
}

/* The client copies the options: freed right after apixo_client_new, reused for another. */
static void test_options_copied(void) {
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_timeout_ms(o, 10000), APIXO_OK);
  apixo_client *a = NULL, *b = NULL;
  CHECK_CODE(apixo_client_new(o, &a), APIXO_OK);
  /* change the options after a was made: a keeps what it copied */
  CHECK_CODE(apixo_options_set_api_key(o, "sk-wrong"), APIXO_OK);
  CHECK_CODE(apixo_client_new(o, &b), APIXO_OK);
  apixo_options_free(o);
  if (!a || !b) {
    apixo_client_free(a);
    apixo_client_free(b);
    return;
  }
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "options copied"), 1);
  apixo_task *t = NULL;
  CHECK_CODE(apixo_generate(a, r, 20000 * h_slow(), &t), APIXO_OK);
  CHECK_EQ(apixo_task_state(t), APIXO_STATE_SUCCESS);
  apixo_task_free(t);
  char *id = NULL;
  CHECK_CODE(apixo_submit(b, r, &id), APIXO_ERR_UNAUTHORIZED);
  CHECK(id == NULL);
  /* the message never carries the key */
  CHECK(strstr(apixo_last_error(), "sk-wrong") == NULL);
  apixo_request_free(r);
  apixo_client_free(a);
  apixo_client_free(b);
}

struct log_capture {
  pthread_mutex_t lock;
  int lines;
  int with_key;
  int bad_level;
  int empty;
};

static void capture_logger(int level, const char *message, void *ud) {
  struct log_capture *lc = ud;
  pthread_mutex_lock(&lc->lock);
  lc->lines++;
  if (level < APIXO_LOG_DEBUG || level > APIXO_LOG_ERROR) lc->bad_level++;
  if (!message || !message[0]) lc->empty++;
  if (message && strstr(message, "sk-secret-key-123")) lc->with_key++;
  if (message && strchr(message, '\n')) lc->empty++; /* one line each */
  pthread_mutex_unlock(&lc->lock);
}

/* The logger gets lines; the key never appears, not even for a rejected key. */
static void test_logger_never_logs_key(void) {
  struct log_capture lc;
  memset(&lc, 0, sizeof lc);
  pthread_mutex_init(&lc.lock, NULL);
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_api_key(o, "sk-secret-key-123"), APIXO_OK);
  CHECK_CODE(apixo_options_set_logger(o, capture_logger, APIXO_LOG_DEBUG, &lc), APIXO_OK);
  apixo_client *c = h_client_with(o);
  apixo_options_free(o);
  if (c) {
    char prompt[128];
    apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "logger"), 1);
    char *id = NULL;
    CHECK_CODE(apixo_submit(c, r, &id), APIXO_ERR_UNAUTHORIZED);
    CHECK(strstr(apixo_last_error(), "sk-secret-key-123") == NULL);
    apixo_task *t = NULL;
    CHECK_CODE(apixo_get_status(c, NULL, "task_x", &t), APIXO_ERR_UNAUTHORIZED);
    CHECK(strstr(apixo_last_error(), "sk-secret-key-123") == NULL);
    apixo_request_free(r);
    apixo_client_free(c);
  }
  CHECK(lc.lines > 0);
  CHECK_EQ(lc.with_key, 0);
  CHECK_EQ(lc.bad_level, 0);
  CHECK_EQ(lc.empty, 0);
  pthread_mutex_destroy(&lc.lock);
}

static void test_ca_file_missing_is_not_fatal_for_http(void) {
  /* the CA file is read when TLS connections are made: plain http to the sim still works */
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_ca_file(o, "/nonexistent/ca.pem"), APIXO_OK);
  apixo_client *c = h_client_with(o);
  apixo_options_free(o);
  if (!c) return;
  apixo_task *t = NULL;
  CHECK_CODE(apixo_get_status(c, NULL, "task_nope", &t), APIXO_ERR_NOT_FOUND);
  apixo_client_free(c);
}

struct level_capture {
  pthread_mutex_t lock;
  int below;
  int total;
  int min;
};

static void level_logger(int level, const char *message, void *ud) {
  (void)message;
  struct level_capture *lc = ud;
  pthread_mutex_lock(&lc->lock);
  lc->total++;
  if (level < lc->min) lc->below++;
  pthread_mutex_unlock(&lc->lock);
}

/* Only messages of level >= min_level reach the logger. */
static void test_logger_min_level(void) {
  for (int min = APIXO_LOG_INFO; min <= APIXO_LOG_ERROR; min++) {
    struct level_capture lc;
    memset(&lc, 0, sizeof lc);
    pthread_mutex_init(&lc.lock, NULL);
    lc.min = min;
    apixo_options *o = h_options();
    CHECK_CODE(apixo_options_set_logger(o, level_logger, min, &lc), APIXO_OK);
    apixo_client *c = h_client_with(o);
    apixo_options_free(o);
    if (c) {
      char prompt[128];
      apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "logger level"), 1);
      apixo_task *t = NULL;
      CHECK_CODE(apixo_generate(c, r, 20000 * h_slow(), &t), APIXO_OK);
      apixo_task_free(t);
      t = NULL;
      CHECK_CODE(apixo_get_status(c, NULL, "task_missing", &t), APIXO_ERR_NOT_FOUND);
      apixo_request_free(r);
      apixo_client_free(c);
    }
    CHECK_EQ(lc.below, 0);
    if (min == APIXO_LOG_INFO) CHECK(lc.total > 0); /* "task ... accepted" at least */
    pthread_mutex_destroy(&lc.lock);
  }
}

/* Values the header allows must be accepted: it names only these as invalid:
 * time scale "<= 0 or not finite", max retries "n < 0". */
static void test_header_allowed_values(void) {
  apixo_options *o = apixo_options_new();
  CHECK_CODE(apixo_options_set_time_scale(o, 5000.0), APIXO_OK);
  CHECK_CODE(apixo_options_set_time_scale(o, 1e-6), APIXO_OK);
  CHECK_CODE(apixo_options_set_max_retries(o, 1000), APIXO_OK);
  CHECK_CODE(apixo_options_set_limits(o, 100000, 100000), APIXO_OK);
  CHECK_CODE(apixo_options_set_timeout_ms(o, 86400000L), APIXO_OK);
  CHECK_CODE(apixo_options_set_max_download_bytes(o, INT64_MAX), APIXO_OK);
  apixo_options_free(o);
}

int main(void) {
  h_init();
  RUN(test_defaults_and_free);
  RUN(test_null_handle);
  RUN(test_api_key);
  RUN(test_base_url);
  RUN(test_numbers);
  RUN(test_paths);
  RUN(test_logger_setter);
  RUN(test_client_new_errors);
  RUN(test_client_new_env_defaults);
  RUN(test_options_copied);
  RUN(test_logger_never_logs_key);
  RUN(test_ca_file_missing_is_not_fatal_for_http);
  RUN(test_logger_min_level);
  RUN(test_header_allowed_values);
  return h_finish();
}
