/* test_downloads.c: the "Downloads" section of apixo.h.
 *
 *   - apixo_download of a PNG and a JPEG result: the file exists, starts with the PNG
 *     signature / JPEG SOI (FF D8) and ends with EOI (FF D9); overwriting works; no
 *     "<path>.part-XXXXXX" is left behind;
 *   - a non-http(s) URL is INVALID_ARGUMENT; NULL arguments are INVALID_ARGUMENT;
 *   - a 404 URL is NOT_FOUND, leaving no file and no temporary file;
 *   - max_download_bytes smaller than the file: PROTOCOL, no file left;
 *   - an unwritable destination (its parent is a regular file, or missing): IO;
 *   - transient faults on the file endpoint (503, truncated body) are retried;
 *   - apixo_download_results: files named "<taskId>-<n>.<ext>" (n from 1, ext png / jpg) in a
 *     directory it creates, paths freed with apixo_free_paths; a task that has not succeeded
 *     is INVALID_ARGUMENT with the out-parameters untouched.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define INVALID APIXO_ERR_INVALID_ARGUMENT

static long T(long ms) { return ms * h_slow(); }

static apixo_task *generate(apixo_client *c, const char *format, int n) {
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "downloads"), n);
  CHECK_CODE(apixo_request_set_output_format(r, format), APIXO_OK);
  apixo_task *t = NULL;
  CHECK_CODE(apixo_generate(c, r, T(30000), &t), APIXO_OK);
  apixo_request_free(r);
  return t;
}

static int is_png(const char *path) {
  size_t n = 0;
  char *d = h_read_file(path, &n);
  int ok = d && n > 8 && !memcmp(d, "\x89PNG\r\n\x1a\n", 8);
  free(d);
  return ok;
}

static int is_jpeg(const char *path) {
  size_t n = 0;
  char *d = h_read_file(path, &n);
  int ok = d && n > 4 && (unsigned char)d[0] == 0xFF && (unsigned char)d[1] == 0xD8 &&
           (unsigned char)d[n - 2] == 0xFF && (unsigned char)d[n - 1] == 0xD9;
  free(d);
  return ok;
}

static char *join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static void test_download(void) {
  sim_reset();
  apixo_client *c = h_client();
  char *dir = h_tempdir("apixo-dl");
  if (!c || !dir) goto out;
  apixo_task *png = generate(c, "png", 2);
  apixo_task *jpg = generate(c, "jpeg", 1);
  if (!png || !jpg) {
    apixo_task_free(png);
    apixo_task_free(jpg);
    goto out;
  }
  char *p1 = join(dir, "one.png");
  CHECK_CODE(apixo_download(c, apixo_task_result_url(png, 0), p1), APIXO_OK);
  CHECK(is_png(p1));
  /* overwrite in place with the other image */
  CHECK_CODE(apixo_download(c, apixo_task_result_url(png, 1), p1), APIXO_OK);
  CHECK(is_png(p1));
  char *p2 = join(dir, "two.jpg");
  CHECK_CODE(apixo_download(c, apixo_task_result_url(jpg, 0), p2), APIXO_OK);
  CHECK(is_jpeg(p2));
  struct stat st;
  CHECK(stat(p2, &st) == 0 && st.st_size > 100);
  CHECK_EQ(h_count_entries(dir, ".part-"), 0);
  CHECK_EQ(h_count_entries(dir, ""), 2);

  /* transient faults on the file endpoint are retried */
  CHECK_EQ(sim_fault("[{\"kind\":\"status\",\"status\":503,\"endpoint\":\"files\"},"
                     "{\"kind\":\"truncated_body\",\"endpoint\":\"files\"}]"),
           0);
  char *p3 = join(dir, "three.jpg");
  CHECK_CODE(apixo_download(c, apixo_task_result_url(jpg, 0), p3), APIXO_OK);
  CHECK(is_jpeg(p3));
  json_t *s = sim_stats();
  CHECK_EQ(stats_int(s, "faults.fired.status"), 1);
  CHECK_EQ(stats_int(s, "faults.fired.truncated_body"), 1);
  json_decref(s);
  CHECK_EQ(h_count_entries(dir, ".part-"), 0);

  /* errors */
  char *bad = join(dir, "bad.jpg");
  CHECK_CODE(apixo_download(c, "ftp://127.0.0.1/x.jpg", bad), INVALID);
  CHECK_CODE(apixo_download(c, "file:///etc/hostname", bad), INVALID);
  CHECK_CODE(apixo_download(c, "", bad), INVALID);
  CHECK_CODE(apixo_download(c, "not a url", bad), INVALID);
  CHECK_CODE(apixo_download(NULL, apixo_task_result_url(jpg, 0), bad), INVALID);
  CHECK_CODE(apixo_download(c, NULL, bad), INVALID);
  CHECK_CODE(apixo_download(c, apixo_task_result_url(jpg, 0), NULL), INVALID);
  CHECK(!h_file_exists(bad));

  char url404[256];
  snprintf(url404, sizeof url404, "%s/files/task_000000000000000000000000-1.jpg", h_sim_url());
  CHECK_CODE(apixo_download(c, url404, bad), APIXO_ERR_NOT_FOUND);
  CHECK(!h_file_exists(bad));
  /* a wrong index of a real task is a 404 too */
  char url_idx[512];
  snprintf(url_idx, sizeof url_idx, "%s", apixo_task_result_url(jpg, 0));
  char *dash = strrchr(url_idx, '-');
  if (dash) memcpy(dash, "-9.jpg", 7);
  CHECK_CODE(apixo_download(c, url_idx, bad), APIXO_ERR_NOT_FOUND);
  CHECK(!h_file_exists(bad));
  CHECK_EQ(h_count_entries(dir, ".part-"), 0);

  /* unwritable destinations */
  char *afile = join(dir, "afile");
  FILE *f = fopen(afile, "w");
  if (f) fclose(f);
  char *under_file = join(afile, "x.jpg");
  CHECK_CODE(apixo_download(c, apixo_task_result_url(jpg, 0), under_file), APIXO_ERR_IO);
  char *missing = join(dir, "no/such/dir/x.jpg");
  CHECK_CODE(apixo_download(c, apixo_task_result_url(jpg, 0), missing), APIXO_ERR_IO);
  if (geteuid() != 0) { /* root ignores permissions */
    char *ro = join(dir, "ro");
    mkdir(ro, 0500);
    char *in_ro = join(ro, "x.jpg");
    CHECK_CODE(apixo_download(c, apixo_task_result_url(jpg, 0), in_ro), APIXO_ERR_IO);
    free(in_ro);
    free(ro);
  }
  CHECK_EQ(h_count_entries(dir, ".part-"), 0);

  free(p1);
  free(p2);
  free(p3);
  free(bad);
  free(afile);
  free(under_file);
  free(missing);
  apixo_task_free(png);
  apixo_task_free(jpg);
out:
  apixo_client_free(c);
  if (dir) h_rmtree(dir);
  free(dir);
}

static void test_max_download_bytes(void) {
  apixo_client *c = h_client();
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_max_download_bytes(o, 10), APIXO_OK);
  apixo_client *small = h_client_with(o);
  apixo_options_free(o);
  char *dir = h_tempdir("apixo-dlmax");
  if (!c || !small || !dir) goto out;
  apixo_task *t = generate(c, "jpeg", 1);
  if (t) {
    char *p = join(dir, "big.jpg");
    CHECK_CODE(apixo_download(small, apixo_task_result_url(t, 0), p), APIXO_ERR_PROTOCOL);
    CHECK(!h_file_exists(p));
    CHECK_EQ(h_count_entries(dir, ""), 0); /* no temporary file either */
    /* the same with download_results */
    char **paths = (char **)&paths;
    size_t count = 77;
    CHECK_CODE(apixo_download_results(small, t, dir, &paths, &count), APIXO_ERR_PROTOCOL);
    CHECK(paths == (char **)&paths);
    CHECK_EQ(count, 77);
    CHECK_EQ(h_count_entries(dir, ""), 0);
    /* the normal client gets it */
    CHECK_CODE(apixo_download(c, apixo_task_result_url(t, 0), p), APIXO_OK);
    CHECK(is_jpeg(p));
    free(p);
  }
  apixo_task_free(t);
out:
  apixo_client_free(small);
  apixo_client_free(c);
  if (dir) h_rmtree(dir);
  free(dir);
}

static void test_download_results(void) {
  apixo_client *c = h_client();
  char *dir = h_tempdir("apixo-dlres");
  if (!c || !dir) goto out;
  apixo_task *png = generate(c, "png", 3);
  apixo_task *jpg = generate(c, "jpeg", 2);
  if (!png || !jpg) {
    apixo_task_free(png);
    apixo_task_free(jpg);
    goto out;
  }
  char *target = join(dir, "results/nested");
  char **paths = NULL;
  size_t count = 0;
  CHECK_CODE(apixo_download_results(c, png, target, &paths, &count), APIXO_OK);
  CHECK_EQ(count, 3);
  for (size_t i = 0; paths && i < count; i++) {
    char want[512];
    snprintf(want, sizeof want, "%s/%s-%zu.png", target, apixo_task_id(png), i + 1);
    CHECK_STR(paths[i], want);
    CHECK(is_png(paths[i]));
  }
  apixo_free_paths(paths, count);
  paths = NULL;
  count = 0;
  CHECK_CODE(apixo_download_results(c, jpg, target, &paths, &count), APIXO_OK);
  CHECK_EQ(count, 2);
  for (size_t i = 0; paths && i < count; i++) {
    char want[512];
    snprintf(want, sizeof want, "%s/%s-%zu.jpg", target, apixo_task_id(jpg), i + 1);
    CHECK_STR(paths[i], want);
    CHECK(is_jpeg(paths[i]));
  }
  apixo_free_paths(paths, count);
  CHECK_EQ(h_count_entries(target, ".part-"), 0);
  CHECK_EQ(h_count_entries(target, ""), 5);

  /* a task that has not succeeded */
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "downloads pending"), 1);
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_OK);
  apixo_task *pending = NULL;
  if (id) CHECK_CODE(apixo_get_status(c, NULL, id, &pending), APIXO_OK);
  if (pending) {
    paths = (char **)&paths;
    count = 99;
    CHECK_CODE(apixo_download_results(c, pending, target, &paths, &count), INVALID);
    CHECK(paths == (char **)&paths);
    CHECK_EQ(count, 99);
  }
  apixo_task_free(pending);
  apixo_free(id);
  apixo_request_free(r);

  /* NULL arguments */
  paths = NULL;
  CHECK_CODE(apixo_download_results(NULL, png, target, &paths, &count), INVALID);
  CHECK_CODE(apixo_download_results(c, NULL, target, &paths, &count), INVALID);
  CHECK_CODE(apixo_download_results(c, png, NULL, &paths, &count), INVALID);
  CHECK_CODE(apixo_download_results(c, png, target, NULL, &count), INVALID);
  CHECK_CODE(apixo_download_results(c, png, target, &paths, NULL), INVALID);
  /* a directory that cannot be created */
  char *afile = join(dir, "plainfile");
  FILE *f = fopen(afile, "w");
  if (f) fclose(f);
  CHECK_CODE(apixo_download_results(c, png, afile, &paths, &count), APIXO_ERR_IO);
  char *below = join(afile, "sub");
  CHECK_CODE(apixo_download_results(c, png, below, &paths, &count), APIXO_ERR_IO);
  apixo_free_paths(NULL, 0);
  free(afile);
  free(below);
  free(target);
  apixo_task_free(png);
  apixo_task_free(jpg);
out:
  apixo_client_free(c);
  if (dir) h_rmtree(dir);
  free(dir);
}

struct dl_arg {
  apixo_client *c;
  const char *url;
  const char *path;
  int code;
  double t_end;
};

static void *dl_main(void *p) {
  struct dl_arg *a = p;
  a->code = apixo_download(a->c, a->url, a->path);
  a->t_end = h_now();
  return NULL;
}

/* The delayed file request has reached the simulator (its delay fault fired): the download
 * thread is inside apixo_download, past its use of the handle. At most 10 s. */
static int download_on_the_wire(void) {
  for (int i = 0; i < 1000; i++) {
    json_t *s = sim_stats();
    long long fired = s ? stats_int(s, "faults.fired.delay") : 0;
    json_decref(s);
    if (fired >= 1) return 1;
    h_sleep_ms(10);
  }
  return 0;
}

/* A download running on another thread returns CLOSED when the client is freed. */
static void test_free_during_download(void) {
  sim_reset();
  apixo_client *c = h_client();
  char *dir = h_tempdir("apixo-dlfree");
  if (!c || !dir) goto out;
  apixo_task *t = generate(c, "jpeg", 1);
  if (!t) goto out;
  char *p = join(dir, "slow.jpg");
  CHECK_EQ(sim_fault("{\"kind\":\"delay\",\"ms\":2000,\"endpoint\":\"files\"}"), 0);
  struct dl_arg a = {c, apixo_task_result_url(t, 0), p, -1, 0};
  pthread_t th;
  CHECK_EQ(pthread_create(&th, NULL, dl_main, &a), 0);
  /* Not a fixed sleep: a thread started late (a loaded machine, valgrind) would call
   * apixo_download with a handle already freed, which the header forbids. */
  CHECK(download_on_the_wire());
  h_sleep_ms(50);
  double t_free = h_now();
  apixo_client_free(c);
  c = NULL;
  pthread_join(th, NULL);
  CHECK_CODE(a.code, APIXO_ERR_CLOSED);
  /* woken by the free, not by the end of the sim's 2 s delay */
  CHECK(a.t_end - t_free < 1.0 * h_slow());
  CHECK(!h_file_exists(p));
  CHECK_EQ(h_count_entries(dir, ".part-"), 0);
  free(p);
  apixo_task_free(t);
  h_sleep_ms(1900); /* let the sim finish the delayed answer */
out:
  apixo_client_free(c);
  if (dir) h_rmtree(dir);
  free(dir);
}

/* "The timeout of each single HTTP request (connect to last byte)" applies to downloads. */
static void test_download_timeout(void) {
  sim_reset();
  apixo_client *c = h_client();
  apixo_options *o = h_options();
  CHECK_CODE(apixo_options_set_timeout_ms(o, 300), APIXO_OK);
  CHECK_CODE(apixo_options_set_max_retries(o, 0), APIXO_OK);
  apixo_client *quick = h_client_with(o);
  apixo_options_free(o);
  char *dir = h_tempdir("apixo-dltime");
  if (!c || !quick || !dir) goto out;
  apixo_task *t = generate(c, "jpeg", 1);
  if (!t) goto out;
  char *p = join(dir, "late.jpg");
  CHECK_EQ(sim_fault("{\"kind\":\"delay\",\"ms\":1500,\"endpoint\":\"files\"}"), 0);
  double t0 = h_now();
  int rc = apixo_download(quick, apixo_task_result_url(t, 0), p);
  double took = h_now() - t0;
  CHECK_CODE(rc, APIXO_ERR_TIMEOUT);
  h_note("download with a 300 ms HTTP timeout and a 1500 ms late file: %s after %.2f s",
         apixo_code_name((apixo_code)rc), took);
  CHECK(took < 1.2 * h_slow());
  if (rc != APIXO_OK) CHECK(!h_file_exists(p));
  CHECK_EQ(h_count_entries(dir, ".part-"), 0);
  free(p);
  apixo_task_free(t);
  h_sleep_ms(1500);
out:
  apixo_client_free(quick);
  apixo_client_free(c);
  if (dir) h_rmtree(dir);
  free(dir);
}

int main(void) {
  h_init();
  RUN(test_download);
  RUN(test_max_download_bytes);
  RUN(test_download_results);
  RUN(test_free_during_download);
  RUN(test_download_timeout);
  return h_finish();
}
