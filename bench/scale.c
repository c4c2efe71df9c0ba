/* The client at scale (issue #14), against bench/fastserver.py:
 *
 *   scale BASE_URL cpu N    watch N tasks that are done (limits off): CPU time of this
 *                           process per task (getrusage), from the first watch to the drain
 *   scale BASE_URL mem N    watch N tasks that never end under the account's limits
 *                           (60 rpm, 10 tasks): heap and RSS per tracked task
 *
 * Prints one line of key=value pairs. Run by bench/scale.py. */
#define _GNU_SOURCE
#include <apixo.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static atomic_long fired;

static void on_done(apixo_code code, const apixo_task *task, void *ud) {
  (void)code; (void)task; (void)ud;
  atomic_fetch_add(&fired, 1);
}

static double cpu_now(void) {
  struct rusage u;
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_utime.tv_usec / 1e6 + u.ru_stime.tv_sec + u.ru_stime.tv_usec / 1e6;
}

static double wall_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static long heap_bytes(void) {
  struct mallinfo2 m = mallinfo2();
  return (long)(m.uordblks + m.hblkhd);
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, rss = 0;
  if (f) {
    if (fscanf(f, "%ld %ld", &pages, &rss) != 2) rss = 0;
    fclose(f);
  }
  return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: scale BASE_URL cpu|mem N\n");
    return 2;
  }
  const char *base = argv[1];
  int mem = strcmp(argv[2], "mem") == 0;
  long n = atol(argv[3]);
  apixo_options *o = apixo_options_new();
  apixo_options_set_api_key(o, "sk-bench");
  apixo_options_set_base_url(o, base);
  if (mem) apixo_options_set_limits(o, 60, 10); else apixo_options_set_limits(o, 0, 0);
  apixo_client *c = NULL;
  if (apixo_client_new(o, &c) != APIXO_OK) {
    fprintf(stderr, "client: %s\n", apixo_last_error());
    return 1;
  }
  apixo_options_free(o);
  char id[64];
  if (!mem) {
    double c0 = cpu_now(), w0 = wall_now();
    for (long i = 0; i < n; i++) {
      snprintf(id, sizeof id, "task_done%ld", i);
      if (apixo_watch(c, "seedream-5-0", id, on_done, NULL) != APIXO_OK) {
        fprintf(stderr, "watch: %s\n", apixo_last_error());
        return 1;
      }
    }
    if (apixo_drain(c, 600000) != APIXO_OK) {
      fprintf(stderr, "drain: %s\n", apixo_last_error());
      return 1;
    }
    double cpu = cpu_now() - c0, wall = wall_now() - w0;
    printf("tasks=%ld fired=%ld cpu_s=%.3f wall_s=%.3f cpu_us_per_task=%.2f\n", n, (long)atomic_load(&fired), cpu,
           wall, cpu / n * 1e6);
  } else {
    /* Let the engine settle (first transfers, curl's caches) before the baseline. */
    snprintf(id, sizeof id, "run_warmup");
    apixo_watch(c, "seedream-5-0", id, on_done, NULL);
    usleep(300000);
    malloc_trim(0);
    long h0 = heap_bytes(), r0 = rss_kb();
    for (long i = 0; i < n; i++) {
      snprintf(id, sizeof id, "run_task%ld", i);
      apixo_watch(c, "seedream-5-0", id, on_done, NULL);
    }
    int64_t tracked = 0;
    for (int k = 0; k < 100 && tracked < n + 1; k++) {
      apixo_client_stats(c, NULL, NULL, &tracked, NULL, NULL);
      if (tracked < n + 1) usleep(10000);
    }
    usleep(300000);
    long h1 = heap_bytes(), r1 = rss_kb();
    printf("tasks=%ld tracked=%lld heap_bytes_per_task=%.0f rss_kb_before=%ld rss_kb_after=%ld rss_bytes_per_task=%.0f\n",
           n, (long long)tracked - 1, (double)(h1 - h0) / n, r0, r1, (double)(r1 - r0) * 1024 / n);
  }
  apixo_client_free(c);
  return 0;
}
