// The Swift runtime's once-lock after fork() (see Sources/CApixoFork/fork.c):
// the parent's main thread runs one once, so the runtime caches its thread id; then, in a
// child, the main thread holds a once's lock while a second thread queues on it. Without a
// fix the child livelocks (both threads at 100% CPU) and its alarm kills it.
import Glibc

_ = warm
let pid = fork()
if pid == 0 {
    alarm(5)
    var t = pthread_t()
    pthread_create(&t, nil, { _ in
        usleep(50_000)
        _ = slow
        return nil
    }, nil)
    _ = slow  // holds the once's lock for 300 ms; the thread queues on it meanwhile
    pthread_join(t, nil)
    _exit(0)
}
var status: Int32 = 0
waitpid(pid, &status, 0)
let hung = (status & 0x7f) == SIGALRM
print(hung ? "child hung (killed by its 5 s alarm)" : "child finished (status \(status))")
exit(hung ? 1 : 0)
