import Glibc

/// The thread-mode Delivery: one thread of ours runs the host's callbacks, in order, so slow
/// host code never stalls I/O. Log lines go to the logger at once, on the thread that logs.
final class DispatcherThread: Delivery {
    private let mutex = Mutex()
    private let cond = Condition()
    private var queue: [() -> Void] = []
    private var head = 0
    private var stopping = false
    private var thread: pthread_t?
    /// Written once by start(), before the client is handed to anyone.
    private var threadID: pthread_t?

    func start() {
        let t = startThread { [self] in loop() }
        thread = t
        threadID = t
    }

    /// True on the dispatcher thread (inside a callback).
    var isDeliveryThread: Bool {
        guard let id = threadID else { return false }
        return pthread_equal(id, pthread_self()) != 0
    }

    func complete(_ c: Completion) {
        enqueue { c.run() }
    }

    func log(_ level: LogLevel, _ message: String, _ sink: @escaping LogSink) {
        sink(level, message)
    }

    func enqueue(_ job: @escaping () -> Void) {
        mutex.with {
            queue.append(job)
            cond.signal()
        }
    }

    /// Runs what is queued, then ends the thread and joins it.
    func stop() {
        mutex.with {
            stopping = true
            cond.signal()
        }
        if let t = thread {
            pthread_join(t, nil)
            thread = nil
        }
    }

    private func loop() {
        while true {
            mutex.lock()
            while head == queue.count && !stopping { cond.wait(mutex, until: nil) }
            if head == queue.count {
                mutex.unlock()
                return
            }
            let job = queue[head]
            head += 1
            if head == queue.count {
                queue.removeAll(keepingCapacity: true)
                head = 0
            }
            mutex.unlock()
            job()
        }
    }
}
