/* harness.c: see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <stdarg.h>
#include <strings.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---------------------------------------------------------------- assertions */

static pthread_mutex_t h_lock = PTHREAD_MUTEX_INITIALIZER;
static int h_passed = 0;
static int h_failed = 0;
static const char *h_current = "";

static void h_fail_line(const char *file, int line, const char *what) {
  /* apixo_last_error() is per thread: it describes this thread's last failed call. */
  const char *err = apixo_last_error();
  fprintf(stdout, "FAIL %s:%d [%s] %s\n     last error: \"%s\"\n", file, line, h_current, what,
          err ? err : "(NULL!)");
  fflush(stdout);
}

int h_check(int ok, const char *file, int line, const char *expr) {
  pthread_mutex_lock(&h_lock);
  if (ok) {
    h_passed++;
  } else {
    h_failed++;
    char buf[1024];
    snprintf(buf, sizeof buf, "CHECK(%s)", expr);
    h_fail_line(file, line, buf);
  }
  pthread_mutex_unlock(&h_lock);
  return ok;
}

int h_check_eq(long long got, long long want, const char *file, int line, const char *expr,
               const char *want_expr) {
  int ok = got == want;
  pthread_mutex_lock(&h_lock);
  if (ok) {
    h_passed++;
  } else {
    h_failed++;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s == %s: got %lld, want %lld", expr, want_expr, got, want);
    h_fail_line(file, line, buf);
  }
  pthread_mutex_unlock(&h_lock);
  return ok;
}

int h_check_code(int got, int want, const char *file, int line, const char *expr) {
  int ok = got == want;
  pthread_mutex_lock(&h_lock);
  if (ok) {
    h_passed++;
  } else {
    h_failed++;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s: got %s (%d), want %s (%d)", expr,
             apixo_code_name((apixo_code)got), got, apixo_code_name((apixo_code)want), want);
    h_fail_line(file, line, buf);
  }
  pthread_mutex_unlock(&h_lock);
  return ok;
}

int h_check_str(const char *got, const char *want, const char *file, int line, const char *expr) {
  int ok = (got == NULL && want == NULL) || (got != NULL && want != NULL && strcmp(got, want) == 0);
  pthread_mutex_lock(&h_lock);
  if (ok) {
    h_passed++;
  } else {
    h_failed++;
    size_t n = (got ? strlen(got) : 8) + (want ? strlen(want) : 8) + strlen(expr) + 64;
    char *buf = malloc(n);
    if (buf) {
      snprintf(buf, n, "%s: got %s%s%s, want %s%s%s", expr, got ? "\"" : "", got ? got : "NULL",
               got ? "\"" : "", want ? "\"" : "", want ? want : "NULL", want ? "\"" : "");
      h_fail_line(file, line, buf);
      free(buf);
    }
  }
  pthread_mutex_unlock(&h_lock);
  return ok;
}

int h_check_contains(const char *hay, const char *needle, const char *file, int line,
                     const char *expr) {
  int ok = hay != NULL && needle != NULL && strstr(hay, needle) != NULL;
  pthread_mutex_lock(&h_lock);
  if (ok) {
    h_passed++;
  } else {
    h_failed++;
    size_t n = (hay ? strlen(hay) : 8) + (needle ? strlen(needle) : 8) + strlen(expr) + 64;
    char *buf = malloc(n);
    if (buf) {
      snprintf(buf, n, "%s = \"%s\" does not contain \"%s\"", expr, hay ? hay : "(NULL)",
               needle ? needle : "(NULL)");
      h_fail_line(file, line, buf);
      free(buf);
    }
  }
  pthread_mutex_unlock(&h_lock);
  return ok;
}

void h_note(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  pthread_mutex_lock(&h_lock);
  fputs("     note: ", stdout);
  vfprintf(stdout, fmt, ap);
  fputc('\n', stdout);
  fflush(stdout);
  pthread_mutex_unlock(&h_lock);
  va_end(ap);
}

void h_run(const char *name, void (*fn)(void)) {
  const char *only = getenv("APIXO_TEST_ONLY");
  if (only && *only && !strstr(name, only)) return;
  pthread_mutex_lock(&h_lock);
  int failed_before = h_failed;
  h_current = name;
  pthread_mutex_unlock(&h_lock);
  printf("== %s\n", name);
  fflush(stdout);
  double t0 = h_now();
  fn();
  pthread_mutex_lock(&h_lock);
  int failed = h_failed - failed_before;
  pthread_mutex_unlock(&h_lock);
  printf("   %s %s (%.2f s)\n", failed ? "FAILED" : "ok", name, h_now() - t0);
  fflush(stdout);
}

void h_init(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  curl_global_init(CURL_GLOBAL_DEFAULT);
}

int h_failures(void) {
  pthread_mutex_lock(&h_lock);
  int f = h_failed;
  pthread_mutex_unlock(&h_lock);
  return f;
}

int h_finish(void) {
  curl_global_cleanup();
  pthread_mutex_lock(&h_lock);
  int p = h_passed, f = h_failed;
  pthread_mutex_unlock(&h_lock);
  printf("%d passed, %d failed\n", p, f);
  fflush(stdout);
  return f ? 1 : 0;
}

/* ---------------------------------------------------------------- environment and time */

static const char *env_or(const char *name, const char *dflt) {
  const char *v = getenv(name);
  return v && *v ? v : dflt;
}

const char *h_base_url(void) { return env_or("APIXO_BASE_URL", "http://127.0.0.1:8080/api/v1"); }
const char *h_api_key(void) { return env_or("APIXO_API_KEY", "sk-sim"); }
const char *h_sim_url(void) { return env_or("APIXO_SIM_URL", "http://127.0.0.1:8080"); }
double h_time_scale(void) { return atof(env_or("APIXO_TIME_SCALE", "0.01")); }
int h_slow(void) {
  const char *v = getenv("APIXO_VALGRIND");
  return v && *v && strcmp(v, "0") != 0 ? 8 : 1;
}

double h_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int64_t h_wall_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_sleep_ms(long ms) {
  struct timespec ts;
  ts.tv_sec = ms / 1000;
  ts.tv_nsec = (ms % 1000) * 1000000L;
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

/* One lock and condition for every start: the starting thread never touches memory of the
 * caller's after it said it runs (the caller frees the record once it saw that). */
static pthread_mutex_t h_start_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t h_start_cv = PTHREAD_COND_INITIALIZER;
struct h_start {
  void *(*fn)(void *);
  void *arg;
  int running;
};

static void *h_start_main(void *p) {
  struct h_start *s = p;
  void *(*fn)(void *) = s->fn;
  void *arg = s->arg;
  pthread_mutex_lock(&h_start_mu);
  s->running = 1;
  pthread_cond_broadcast(&h_start_cv);
  pthread_mutex_unlock(&h_start_mu);
  return fn(arg);
}

int h_thread_start(pthread_t *th, void *(*fn)(void *), void *arg, long settle_ms) {
  struct h_start *s = calloc(1, sizeof *s);
  if (!s) return -1;
  s->fn = fn;
  s->arg = arg;
  if (pthread_create(th, NULL, h_start_main, s) != 0) {
    free(s);
    return -1;
  }
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_sec += 10;
  pthread_mutex_lock(&h_start_mu);
  while (!s->running && pthread_cond_timedwait(&h_start_cv, &h_start_mu, &until) == 0) {
  }
  int running = s->running;
  pthread_mutex_unlock(&h_start_mu);
  if (!running) return -1; /* s stays: the thread may still read it */
  free(s);
  h_sleep_ms(settle_ms * h_slow());
  return 0;
}

apixo_options *h_options(void) {
  apixo_options *o = apixo_options_new();
  if (!CHECK(o != NULL)) return NULL;
  CHECK_CODE(apixo_options_set_base_url(o, h_base_url()), APIXO_OK);
  CHECK_CODE(apixo_options_set_api_key(o, h_api_key()), APIXO_OK);
  CHECK_CODE(apixo_options_set_time_scale(o, h_time_scale()), APIXO_OK);
  return o;
}

apixo_client *h_client_with(apixo_options *opts) {
  apixo_client *c = NULL;
  if (!CHECK_CODE(apixo_client_new(opts, &c), APIXO_OK)) return NULL;
  CHECK(c != NULL);
  return c;
}

apixo_client *h_client(void) {
  apixo_options *o = h_options();
  apixo_client *c = h_client_with(o);
  apixo_options_free(o);
  return c;
}

apixo_request *h_request(const char *prompt, int max_images) {
  apixo_request *r = apixo_request_new("seedream-5-0");
  if (!CHECK(r != NULL)) return NULL;
  if (prompt) CHECK_CODE(apixo_request_set_prompt(r, prompt), APIXO_OK);
  if (max_images) CHECK_CODE(apixo_request_set_max_images(r, max_images), APIXO_OK);
  CHECK_CODE(apixo_request_set_resolution(r, "2K"), APIXO_OK);
  return r;
}

const char *h_unique_prompt(char *buf, size_t size, const char *prefix) {
  static int counter = 0;
  pthread_mutex_lock(&h_lock);
  int n = ++counter;
  pthread_mutex_unlock(&h_lock);
  snprintf(buf, size, "%s %ld-%d-%lld", prefix, (long)getpid(), n, (long long)h_wall_ms());
  return buf;
}

char *h_tempdir(const char *prefix) {
  const char *base = env_or("TMPDIR", "/tmp");
  size_t n = strlen(base) + strlen(prefix) + 16;
  char *p = malloc(n);
  if (!p) return NULL;
  snprintf(p, n, "%s/%s-XXXXXX", base, prefix);
  if (!mkdtemp(p)) {
    free(p);
    return NULL;
  }
  return p;
}

void h_rmtree(const char *path) {
  struct stat st;
  if (lstat(path, &st) != 0) return;
  if (S_ISDIR(st.st_mode)) {
    chmod(path, 0755);
    DIR *d = opendir(path);
    if (d) {
      struct dirent *e;
      while ((e = readdir(d)) != NULL) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        size_t n = strlen(path) + strlen(e->d_name) + 2;
        char *child = malloc(n);
        if (!child) continue;
        snprintf(child, n, "%s/%s", path, e->d_name);
        h_rmtree(child);
        free(child);
      }
      closedir(d);
    }
    rmdir(path);
  } else {
    unlink(path);
  }
}

/* ---------------------------------------------------------------- simulator hooks */

struct buf {
  char *data;
  size_t len;
};

static size_t collect(char *ptr, size_t size, size_t n, void *ud) {
  struct buf *b = ud;
  size_t add = size * n;
  char *p = realloc(b->data, b->len + add + 1);
  if (!p) return 0;
  memcpy(p + b->len, ptr, add);
  b->data = p;
  b->len += add;
  b->data[b->len] = 0;
  return add;
}

static json_t *http_call(const char *method, const char *url, const char *auth,
                         const char *body, long *status) {
  CURL *h = curl_easy_init();
  if (!h) return NULL;
  struct buf b = {NULL, 0};
  struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
  if (auth) hdrs = curl_slist_append(hdrs, auth);
  curl_easy_setopt(h, CURLOPT_URL, url);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 20000L);
  curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
  if (body) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
  } else if (!strcmp(method, "POST")) {
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
  }
  CURLcode rc = curl_easy_perform(h);
  long st = 0;
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &st);
  if (status) *status = st;
  json_t *out = NULL;
  if (rc == CURLE_OK && b.data) {
    json_error_t err;
    out = json_loadb(b.data, b.len, 0, &err);
  } else {
    fprintf(stdout, "http %s %s: %s\n", method, url, curl_easy_strerror(rc));
  }
  free(b.data);
  curl_slist_free_all(hdrs);
  curl_easy_cleanup(h);
  return out;
}

static json_t *call_at(const char *root, const char *method, const char *path, const char *auth,
                       const char *body, long *status) {
  size_t n = strlen(root) + strlen(path) + 1;
  char *url = malloc(n);
  if (!url) return NULL;
  snprintf(url, n, "%s%s", root, path);
  json_t *out = http_call(method, url, auth, body, status);
  free(url);
  return out;
}

json_t *sim_call(const char *method, const char *path, const char *body, long *status) {
  return call_at(h_sim_url(), method, path, NULL, body, status);
}

json_t *api_call(const char *method, const char *path, const char *body, long *status) {
  char auth[256];
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", h_api_key());
  return call_at(h_base_url(), method, path, auth, body, status);
}

static int sim_ok(const char *method, const char *path, const char *body) {
  long st = 0;
  json_t *j = sim_call(method, path, body, &st);
  int ok = j != NULL && st == 200;
  if (!ok) {
    char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
    fprintf(stdout, "sim %s %s -> HTTP %ld %s\n", method, path, st, text ? text : "");
    free(text);
  }
  json_decref(j);
  return ok ? 0 : -1;
}

int sim_reset(void) { return sim_ok("POST", "/_sim/reset", NULL); }
int sim_fault(const char *json) { return sim_ok("POST", "/_sim/faults", json); }
int sim_clear_faults(void) { return sim_ok("DELETE", "/_sim/faults", NULL); }
int sim_config(const char *json) { return sim_ok("POST", "/_sim/config", json); }
int sim_default_config(void) { return sim_config("{\"rpm\":60,\"concurrency\":10}"); }

json_t *sim_stats(void) {
  long st = 0;
  json_t *j = sim_call("GET", "/_sim/stats", NULL, &st);
  if (!j) return NULL;
  json_t *data = json_object_get(j, "data");
  if (data) json_incref(data);
  json_decref(j);
  return data;
}

long long stats_int(json_t *stats, const char *path) {
  if (!stats) return 0;
  char key[256];
  json_t *cur = stats;
  const char *p = path;
  while (cur && *p) {
    const char *dot = strchr(p, '.');
    size_t n = dot ? (size_t)(dot - p) : strlen(p);
    if (n >= sizeof key) return 0;
    memcpy(key, p, n);
    key[n] = 0;
    cur = json_object_get(cur, key);
    p = dot ? dot + 1 : p + n;
  }
  if (!cur) return 0;
  if (json_is_integer(cur)) return (long long)json_integer_value(cur);
  if (json_is_real(cur)) return (long long)json_real_value(cur);
  if (json_is_true(cur)) return 1;
  return 0;
}

long long stats_prompt(json_t *stats, const char *which, const char *prompt) {
  if (!stats) return 0;
  const char *field = !strcmp(which, "tasks") ? "tasks_by_prompt" : "submits_by_prompt";
  json_t *m = json_object_get(stats, field);
  json_t *v = m ? json_object_get(m, prompt) : NULL;
  return v && json_is_integer(v) ? (long long)json_integer_value(v) : 0;
}

long long stats_requests(json_t *stats, const char *endpoint) {
  json_t *req = stats ? json_object_get(stats, "requests") : NULL;
  json_t *ep = req ? json_object_get(req, endpoint) : NULL;
  if (!ep) return 0;
  long long sum = 0;
  const char *k;
  json_t *v;
  json_object_foreach(ep, k, v) {
    (void)k;
    if (json_is_integer(v)) sum += (long long)json_integer_value(v);
  }
  return sum;
}

/* ---------------------------------------------------------------- small helpers */

char *h_read_file(const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  size_t cap = 4096, n = 0;
  char *data = malloc(cap + 1);
  while (data) {
    size_t got = fread(data + n, 1, cap - n, f);
    n += got;
    if (n < cap) break;
    cap *= 2;
    char *p = realloc(data, cap + 1);
    if (!p) {
      free(data);
      data = NULL;
    } else {
      data = p;
    }
  }
  fclose(f);
  if (!data) return NULL;
  data[n] = 0;
  if (len) *len = n;
  return data;
}

int h_file_exists(const char *path) {
  struct stat st;
  return stat(path, &st) == 0;
}

int h_count_entries(const char *dir, const char *needle) {
  DIR *d = opendir(dir);
  if (!d) return -1;
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) != NULL) {
    if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
    if (strstr(e->d_name, needle)) n++;
  }
  closedir(d);
  return n;
}

static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

void h_slots_lock(void) { pthread_mutex_lock(&slots_lock); }
void h_slots_unlock(void) { pthread_mutex_unlock(&slots_lock); }

void h_slot_cb(apixo_code code, const apixo_task *task, void *user_data) {
  h_slot *s = user_data;
  const char *msg = code != APIXO_OK ? apixo_last_error() : "";
  pthread_mutex_lock(&slots_lock);
  s->fired++;
  s->code = (int)code;
  s->has_task = task != NULL;
  s->state = (int)apixo_task_state(task);
  s->thread = pthread_self();
  snprintf(s->id, sizeof s->id, "%s", task && apixo_task_id(task) ? apixo_task_id(task) : "");
  snprintf(s->tag, sizeof s->tag, "%s", task && apixo_task_tag(task) ? apixo_task_tag(task) : "");
  snprintf(s->model, sizeof s->model, "%s",
           task && apixo_task_model(task) ? apixo_task_model(task) : "");
  snprintf(s->json, sizeof s->json, "%s", task && apixo_task_json(task) ? apixo_task_json(task) : "");
  snprintf(s->message, sizeof s->message, "%s", msg ? msg : "(NULL)");
  pthread_mutex_unlock(&slots_lock);
}

int h_wait_accepted(apixo_client *c, h_slot *slots, int nslots, long long n, double seconds) {
  double deadline = h_now() + seconds * h_slow();
  for (;;) {
    int64_t tracked = 0;
    long long fired = 0;
    pthread_mutex_lock(&slots_lock);
    for (int i = 0; i < nslots; i++) fired += slots[i].fired > 0;
    pthread_mutex_unlock(&slots_lock);
    if (apixo_client_stats(c, NULL, NULL, &tracked, NULL, NULL) == APIXO_OK && tracked + fired >= n) return 1;
    if (h_now() > deadline) return 0;
    h_sleep_ms(10);
  }
}

int h_wait_slots(h_slot *slots, int n, double seconds) {
  double deadline = h_now() + seconds * h_slow();
  for (;;) {
    int done = 1;
    pthread_mutex_lock(&slots_lock);
    for (int i = 0; i < n; i++)
      if (slots[i].fired == 0) done = 0;
    pthread_mutex_unlock(&slots_lock);
    if (done) return 1;
    if (h_now() > deadline) return 0;
    h_sleep_ms(5);
  }
}

/* ---------------------------------------------------------------- a scripted HTTP server */

typedef struct hs_entry {
  hs_reply r;
  int left; /* answers left; -1 without end */
  struct hs_entry *next;
} hs_entry;

typedef struct hs_conn {
  pthread_t thread;
  int fd;
  hs_server *server;
  struct hs_conn *next;
} hs_conn;

struct hs_server {
  int listen_fd;
  char url[64];
  char api[80];
  pthread_t acceptor;
  pthread_mutex_t lock;
  int stopping;
  hs_entry *replies;
  hs_conn *conns;
  int requests_total;
  int unmatched;
  /* the targets received, for hs_requests (a small log: tests make few requests) */
  char **targets;
  int ntargets;
};

static char *hs_dup(const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p) memcpy(p, s, n);
  return p;
}

static void hs_free_entry(hs_entry *e) {
  free((char *)e->r.path);
  free((char *)e->r.headers);
  free((char *)e->r.body);
  free(e);
}

static int hs_is_stopping(hs_server *s) {
  pthread_mutex_lock(&s->lock);
  int st = s->stopping;
  pthread_mutex_unlock(&s->lock);
  return st;
}

/* Sends all of buf; 0 when the peer went away or the server stops. */
static int hs_send(hs_server *s, int fd, const char *buf, size_t n) {
  while (n > 0) {
    if (hs_is_stopping(s)) return 0;
    ssize_t w = send(fd, buf, n, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EINTR) continue;
      return 0;
    }
    buf += w;
    n -= (size_t)w;
  }
  return 1;
}

/* Reads one request (head and Content-Length body); fills target. 0 when none came. */
static int hs_read_request(hs_server *s, int fd, char *target, size_t tsize) {
  char buf[65536];
  size_t n = 0;
  char *end = NULL;
  double deadline = h_now() + 30;
  while (!end) {
    if (hs_is_stopping(s) || h_now() > deadline || n + 1 >= sizeof buf) return 0;
    struct pollfd p = {fd, POLLIN, 0};
    int rc = poll(&p, 1, 50);
    if (rc <= 0) continue;
    ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
    if (r <= 0) return 0;
    n += (size_t)r;
    buf[n] = 0;
    end = strstr(buf, "\r\n\r\n");
  }
  /* request line: METHOD SP TARGET SP VERSION */
  char *sp = strchr(buf, ' ');
  char *sp2 = sp ? strchr(sp + 1, ' ') : NULL;
  if (!sp || !sp2) return 0;
  size_t tl = (size_t)(sp2 - sp - 1);
  if (tl >= tsize) tl = tsize - 1;
  memcpy(target, sp + 1, tl);
  target[tl] = 0;
  /* the body, when there is one, is read and dropped */
  long want = 0;
  for (char *h = strstr(buf, "\r\n"); h && h < end; h = strstr(h + 2, "\r\n")) {
    if (strncasecmp(h + 2, "Content-Length:", 15) == 0) want = atol(h + 17);
  }
  long have = (long)(n - (size_t)(end + 4 - buf));
  while (have < want) {
    if (hs_is_stopping(s) || h_now() > deadline) return 0;
    struct pollfd p = {fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    ssize_t r = recv(fd, buf, sizeof buf, 0);
    if (r <= 0) return 0;
    have += r;
  }
  return 1;
}

static void hs_answer(hs_server *s, int fd, const char *target) {
  hs_reply r;
  memset(&r, 0, sizeof r);
  int found = 0;
  char *headers = NULL, *body = NULL;
  pthread_mutex_lock(&s->lock);
  s->requests_total++;
  char **t = realloc(s->targets, sizeof(char *) * (size_t)(s->ntargets + 1));
  if (t) {
    s->targets = t;
    s->targets[s->ntargets++] = hs_dup(target);
  }
  for (hs_entry **pp = &s->replies; *pp; pp = &(*pp)->next) {
    hs_entry *e = *pp;
    if (e->r.path && strncmp(target, e->r.path, strlen(e->r.path)) != 0) continue;
    r = e->r;
    headers = hs_dup(e->r.headers);
    body = hs_dup(e->r.body);
    found = 1;
    if (e->left > 0 && --e->left == 0) {
      *pp = e->next;
      hs_free_entry(e);
    }
    break;
  }
  if (!found) s->unmatched++;
  pthread_mutex_unlock(&s->lock);
  char fallback[512];
  if (!found) {
    snprintf(fallback, sizeof fallback,
             "{\"code\":500,\"message\":\"hs: no reply queued for %.300s\",\"data\":null}", target);
    r.status = 500;
    body = hs_dup(fallback);
  }
  if (r.status == 0) {
    free(headers);
    free(body);
    return; /* close without answering */
  }
  const char *b = body ? body : "";
  size_t blen = strlen(b);
  char head[8192];
  int hl = snprintf(head, sizeof head, "HTTP/1.1 %d Hs\r\nConnection: close\r\n", r.status);
  if (!r.no_length)
    hl += snprintf(head + hl, sizeof head - (size_t)hl, "Content-Length: %zu\r\n", blen);
  hl += snprintf(head + hl, sizeof head - (size_t)hl, "%s\r\n", headers ? headers : "");
  if (hl > 0 && (size_t)hl < sizeof head && hs_send(s, fd, head, (size_t)hl)) {
    if (r.drip_ms > 0) {
      for (size_t i = 0; i < blen; i++) {
        if (!hs_send(s, fd, b + i, 1)) break;
        for (long waited = 0; waited < r.drip_ms && !hs_is_stopping(s); waited += 10)
          h_sleep_ms(r.drip_ms - waited < 10 ? r.drip_ms - waited : 10);
      }
    } else {
      hs_send(s, fd, b, blen);
    }
  }
  free(headers);
  free(body);
}

static void *hs_conn_main(void *arg) {
  hs_conn *c = arg;
  char target[2048];
  if (hs_read_request(c->server, c->fd, target, sizeof target)) hs_answer(c->server, c->fd, target);
  shutdown(c->fd, SHUT_RDWR);
  close(c->fd);
  return NULL;
}

static void *hs_accept_main(void *arg) {
  hs_server *s = arg;
  while (!hs_is_stopping(s)) {
    struct pollfd p = {s->listen_fd, POLLIN, 0};
    if (poll(&p, 1, 50) <= 0) continue;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0) continue;
    hs_conn *c = calloc(1, sizeof *c);
    if (!c) {
      close(fd);
      continue;
    }
    c->fd = fd;
    c->server = s;
    if (pthread_create(&c->thread, NULL, hs_conn_main, c) != 0) {
      close(fd);
      free(c);
      continue;
    }
    pthread_mutex_lock(&s->lock);
    c->next = s->conns;
    s->conns = c;
    pthread_mutex_unlock(&s->lock);
  }
  return NULL;
}

int h_listen_loopback(int backlog, int *port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return -1;
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, backlog) != 0 ||
      getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
    close(fd);
    return -1;
  }
  *port = (int)ntohs(a.sin_port);
  return fd;
}

hs_server *hs_start(void) {
  hs_server *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  pthread_mutex_init(&s->lock, NULL);
  int port = 0;
  s->listen_fd = h_listen_loopback(64, &port);
  if (s->listen_fd < 0) {
    pthread_mutex_destroy(&s->lock);
    free(s);
    return NULL;
  }
  snprintf(s->url, sizeof s->url, "http://127.0.0.1:%d", port);
  snprintf(s->api, sizeof s->api, "%s/api/v1", s->url);
  if (pthread_create(&s->acceptor, NULL, hs_accept_main, s) != 0) {
    close(s->listen_fd);
    pthread_mutex_destroy(&s->lock);
    free(s);
    return NULL;
  }
  return s;
}

void hs_push(hs_server *s, hs_reply r) {
  hs_entry *e = calloc(1, sizeof *e);
  if (!e) return;
  e->r = r;
  e->r.path = hs_dup(r.path);
  e->r.headers = hs_dup(r.headers);
  e->r.body = hs_dup(r.body);
  e->left = r.times == 0 ? 1 : r.times;
  pthread_mutex_lock(&s->lock);
  hs_entry **pp = &s->replies;
  while (*pp) pp = &(*pp)->next;
  *pp = e;
  pthread_mutex_unlock(&s->lock);
}

void hs_clear(hs_server *s) {
  pthread_mutex_lock(&s->lock);
  hs_entry *e = s->replies;
  s->replies = NULL;
  for (int i = 0; i < s->ntargets; i++) free(s->targets[i]);
  free(s->targets);
  s->targets = NULL;
  s->ntargets = 0;
  s->unmatched = 0;
  pthread_mutex_unlock(&s->lock);
  while (e) {
    hs_entry *next = e->next;
    hs_free_entry(e);
    e = next;
  }
}

const char *hs_url(hs_server *s) { return s->url; }
const char *hs_api(hs_server *s) { return s->api; }

int hs_requests(hs_server *s, const char *prefix) {
  pthread_mutex_lock(&s->lock);
  int n = 0;
  for (int i = 0; i < s->ntargets; i++)
    if (s->targets[i] && (!prefix || strncmp(s->targets[i], prefix, strlen(prefix)) == 0)) n++;
  pthread_mutex_unlock(&s->lock);
  return n;
}

int hs_unmatched(hs_server *s) {
  pthread_mutex_lock(&s->lock);
  int n = s->unmatched;
  pthread_mutex_unlock(&s->lock);
  return n;
}

void hs_stop(hs_server *s) {
  if (!s) return;
  pthread_mutex_lock(&s->lock);
  s->stopping = 1;
  pthread_mutex_unlock(&s->lock);
  pthread_join(s->acceptor, NULL);
  close(s->listen_fd);
  hs_conn *c = s->conns;
  while (c) {
    hs_conn *next = c->next;
    pthread_join(c->thread, NULL);
    free(c);
    c = next;
  }
  hs_clear(s);
  pthread_mutex_destroy(&s->lock);
  free(s);
}

apixo_options *hs_options(hs_server *s) {
  apixo_options *o = h_options();
  if (o) CHECK_CODE(apixo_options_set_base_url(o, hs_api(s)), APIXO_OK);
  return o;
}
