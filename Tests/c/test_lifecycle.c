/* test_lifecycle.c: apixo_client_new / apixo_client_free release everything.
 *
 *   - 40 clients, each freed right after apixo_submit (its task still holds a concurrency slot
 *     and a timer): the heap in use (glibc mallinfo2) grows by less than 200 KB in all, and
 *     the thread count and the open file descriptors return to where they were. A client that is not released leaks itself
 *     and everything it owns (~15 KB each); valgrind (make test-valgrind) names it;
 *   - the same for clients freed with a submit whose answer was lost (INDETERMINATE), with a
 *     watched task, and idle ones.
 */
#include "harness.h"

#include <malloc.h>
#include <string.h>

static int thread_count(void) { return h_count_entries("/proc/self/task", ""); }
static int fd_count(void) { return h_count_entries("/proc/self/fd", ""); }

static long long heap_in_use(void) {
  struct mallinfo2 mi = mallinfo2();
  return (long long)mi.uordblks + (long long)mi.hblkhd;
}

typedef void (*scenario_fn)(apixo_client *c, apixo_request *r, int i);

static void scenario_idle(apixo_client *c, apixo_request *r, int i) {
  (void)c;
  (void)r;
  (void)i;
}

static void scenario_submit(apixo_client *c, apixo_request *r, int i) {
  (void)i;
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_OK);
  apixo_free(id);
}

static void scenario_lost(apixo_client *c, apixo_request *r, int i) {
  (void)i;
  CHECK_EQ(sim_fault("{\"kind\":\"reset_after_body\",\"endpoint\":\"generateTask\"}"), 0);
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_ERR_INDETERMINATE);
  apixo_free(id);
}

static void scenario_watch(apixo_client *c, apixo_request *r, int i) {
  (void)i;
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_OK);
  h_slot s;
  memset(&s, 0, sizeof s);
  if (id) CHECK_CODE(apixo_watch(c, NULL, id, h_slot_cb, &s), APIXO_OK);
  apixo_free(id);
  apixo_client_free(c); /* fires CLOSED into s before returning */
  CHECK_EQ(s.fired, 1);
}

static void cycles(const char *name, scenario_fn fn, int frees_itself) {
  sim_reset();
  CHECK_EQ(sim_config("{\"rpm\":0,\"concurrency\":0}"), 0);
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "lifecycle"), 1);
  apixo_options *o = h_options();
  /* warm up: the Swift runtime's one-time caches, curl's global state */
  for (int i = 0; i < 3; i++) {
    apixo_client *c = h_client_with(o);
    if (!c) break;
    fn(c, r, i);
    if (!frees_itself) apixo_client_free(c);
  }
  int threads0 = thread_count();
  int fds0 = fd_count();
  long long heap0 = heap_in_use();
  enum { N = 40 };
  for (int i = 0; i < N; i++) {
    apixo_client *c = h_client_with(o);
    if (!c) break;
    fn(c, r, i);
    if (!frees_itself) apixo_client_free(c);
  }
  long long grew = heap_in_use() - heap0;
  h_note("%s: %d clients created and freed: heap in use %+lld bytes, threads %d -> %d, open "
         "file descriptors %d -> %d", name, N, grew, threads0, thread_count(), fds0, fd_count());
  if (h_slow() == 1) CHECK(grew < 200 * 1024); /* valgrind has its own allocator */
  CHECK(thread_count() <= threads0); /* a thread of an earlier test may still be ending */
  CHECK(fd_count() <= fds0 + 1); /* (the count itself opens one) */
  apixo_options_free(o);
  apixo_request_free(r);
  CHECK_EQ(sim_clear_faults(), 0);
  CHECK_EQ(sim_default_config(), 0);
}

static void test_idle_clients(void) { cycles("idle", scenario_idle, 0); }
static void test_clients_with_running_task(void) { cycles("submit, then free", scenario_submit, 0); }
static void test_clients_with_lost_submit(void) { cycles("lost answer, then free", scenario_lost, 0); }
static void test_clients_with_watch(void) { cycles("watch, then free", scenario_watch, 1); }

int main(void) {
  h_init();
  RUN(test_idle_clients);
  RUN(test_clients_with_running_task);
  RUN(test_clients_with_lost_submit);
  RUN(test_clients_with_watch);
  return h_finish();
}
