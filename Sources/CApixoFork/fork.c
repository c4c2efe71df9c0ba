/* fork.c: fork() safety of the library, installed by a constructor when it is loaded.
 *
 * 1. The process generation (apixo_fork.h): a client used in a child of fork() answers every
 *    call with APIXO_ERR_CLOSED instead of waiting for threads that do not exist there.
 *
 * 2. The Swift runtime's once-lock. swift_once on Linux (lib/Threading/Linux.cpp, once_slow)
 *    takes a per-once "ulock" (include/swift/Threading/Impl/Linux/ulock.h): a futex word that
 *    holds the owner's thread id, taken by compare-and-swap and, under contention, by
 *    FUTEX_LOCK_PI / FUTEX_UNLOCK_PI. The owner's id comes from ulock_get_tid(), which caches
 *    gettid() in a thread-local variable. fork() copies the forking thread's thread-local
 *    storage, so in the child that thread keeps the PARENT's thread id in the cache. Once the
 *    child has threads of its own (a new client starts two), a contended once goes wrong:
 *    the main thread owns the lock under the parent's id, a library thread queues on it with
 *    FUTEX_LOCK_PI (the kernel records the waiter), and the main thread's unlock fails its
 *    compare-and-swap (the waiter bit is set), calls FUTEX_UNLOCK_PI, which the kernel refuses
 *    with EPERM because the word names another thread, and retries forever: a livelock at
 *    100% CPU, in a few percent of children. The child handler below clears the cached id,
 *    so the next lock in the child caches the right one. The cache is a hidden weak symbol
 *    of the static runtime (-static-stdlib, as libapixo.so is linked); the weak definition
 *    here is merged with it at link time. Linked against the shared runtime instead (swift
 *    test), the definition here is a separate variable and clearing it does nothing.
 *
 * 3. Quiescence: the prepare handler waits (at most 2 s) until no engine thread is inside its
 *    work (running posted closures, curl_multi_perform, timers), so that the child never
 *    inherits a lock of libcurl, OpenSSL, the Swift runtime or the allocator held halfway by a
 *    thread that does not exist in the child. Engines hold the lock as readers, fork as the
 *    writer (writer-preferring, so a busy engine cannot starve a fork). */
#define _GNU_SOURCE
#include "apixo_fork.h"

#include <pthread.h>
#include <string.h>
#include <time.h>

unsigned long apx_fork_generation_value = 0;

/* swift::threading_impl::linux::ulock_get_tid()::tid */
__attribute__((weak, visibility("hidden"))) __thread int apx_swift_ulock_tid __asm__(
    "_ZZN5swift14threading_impl5linux13ulock_get_tidEvE3tid") = 0;

static pthread_rwlock_t quiet;
static __thread int inside;       /* this thread holds `quiet` as a reader */
static __thread int fork_locked;  /* the forking thread holds `quiet` as the writer */

static void init_quiet(void) {
  pthread_rwlockattr_t a;
  pthread_rwlockattr_init(&a);
  pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  memset(&quiet, 0, sizeof quiet);
  pthread_rwlock_init(&quiet, &a);
  pthread_rwlockattr_destroy(&a);
}

void apx_engine_busy(void) {
  if (inside) return;
  pthread_rwlock_rdlock(&quiet);
  inside = 1;
}

void apx_engine_idle(void) {
  if (!inside) return;
  inside = 0;
  pthread_rwlock_unlock(&quiet);
}

int apx_host_call_begin(void) {
  if (!inside) return 0;
  apx_engine_idle();
  return 1;
}

void apx_host_call_end(int stepped_out) {
  if (stepped_out) apx_engine_busy();
}

static void before_fork(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  ts.tv_sec += 2;
  /* Never block a fork for good (say a thread of ours forks from inside its work): after
     2 s it goes ahead without the guarantee. */
  fork_locked = !inside && pthread_rwlock_clockwrlock(&quiet, CLOCK_MONOTONIC, &ts) == 0;
}

static void after_fork_parent(void) {
  if (fork_locked) pthread_rwlock_unlock(&quiet);
  fork_locked = 0;
}

static void after_fork_child(void) {
  /* The lock's owner ids are the parent's; the readers do not exist here: start afresh. */
  init_quiet();
  fork_locked = 0;
  inside = 0;
  apx_swift_ulock_tid = 0;
  __atomic_add_fetch(&apx_fork_generation_value, 1, __ATOMIC_RELAXED);
}

__attribute__((constructor)) static void apx_fork_setup(void) {
  init_quiet();
  /* glibc drops these handlers again when the library is unloaded (dlclose). */
  pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}
