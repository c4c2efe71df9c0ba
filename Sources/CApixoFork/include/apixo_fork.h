/* apixo_fork.h: what the library needs around fork() (see fork.c). Internal: nothing here is
   part of the C contract, and the apx_ prefix keeps it out of libapixo.so's exports. */
#ifndef APIXO_FORK_H
#define APIXO_FORK_H

/* The process generation: 0 in the process that loaded the library, one more in each child
   of fork() (a pthread_atfork child handler counts it). A client remembers the generation it
   was created in; any other value means the call runs in a forked child. */
extern unsigned long apx_fork_generation_value;
static inline unsigned long apx_fork_generation(void) {
  return __atomic_load_n(&apx_fork_generation_value, __ATOMIC_RELAXED);
}

/* An engine thread brackets its work with these: fork() (its prepare handler) waits, for at
   most 2 s, until no engine thread is inside its work, so that a child never inherits a lock
   of libcurl, OpenSSL or the Swift runtime taken halfway by an engine thread. */
void apx_engine_busy(void);
void apx_engine_idle(void);

/* Around a call into host code (a log sink) from library threads: when the calling thread is
   inside apx_engine_busy, it steps out for the call, so a host that forks while holding a lock
   the sink needs (Python's GIL) does not wait for it. Returns whether it stepped out; pass that
   to apx_host_call_end. */
int apx_host_call_begin(void);
void apx_host_call_end(int stepped_out);

#endif
