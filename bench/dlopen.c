/* Load time of the shipped library (issue #14): dlopen + dlsym of every apixo_ function the
 * header declares (names on stdin, one a line), in a fresh process each run (bench/scale.py
 * runs it N times and takes the median).
 *
 *   dlopen LIB [DEP...]   DEPs (e.g. libcurl.so.4) are loaded first and timed apart, so that
 *                         the library's own cost shows without the system libraries it needs
 *
 * Prints: milliseconds for the DEPs, milliseconds for LIB plus the lookups, names, missing. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: dlopen LIB [DEP...] < names\n");
    return 2;
  }
  static char names[512][96];
  int n = 0;
  while (n < 512 && fgets(names[n], sizeof names[n], stdin)) {
    names[n][strcspn(names[n], "\r\n")] = 0;
    if (names[n][0]) n++;
  }
  double t0 = now_ms();
  for (int i = 2; i < argc; i++) {
    if (!dlopen(argv[i], RTLD_NOW | RTLD_GLOBAL)) {
      fprintf(stderr, "%s\n", dlerror());
      return 1;
    }
  }
  double t1 = now_ms();
  void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    fprintf(stderr, "%s\n", dlerror());
    return 1;
  }
  int missing = 0;
  for (int i = 0; i < n; i++)
    if (!dlsym(h, names[i])) missing++;
  double t2 = now_ms();
  printf("%.3f %.3f %d %d\n", t1 - t0, t2 - t1, n, missing);
  return missing ? 1 : 0;
}
