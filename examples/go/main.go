// Command threetasks: libapixo from Go through cgo. Three tasks through apixo_submit_async
// with a completion callback (thread mode: it runs on the library's dispatcher thread, calls
// the exported goOnDone through the C trampoline in trampoline.c, which sends the outcome on
// a channel); the main goroutine receives the three outcomes and prints one line per task.
//
//	PKG_CONFIG_PATH=/path/to/lib/pkgconfig go build -o threetasks .
//	APIXO_API_KEY=sk-... ./threetasks
package main

/*
#cgo pkg-config: apixo
#include <stdint.h>
#include <stdlib.h>
#include <apixo.h>
apixo_code submit_with_trampoline(apixo_client *c, const apixo_request *req, uintptr_t handle);
*/
import "C"

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unsafe"
)

// apixo_last_error is thread-local and a goroutine may move between OS threads from one cgo
// call to the next: keep the main goroutine on one thread so that the message read right
// after a failed call is that call's.
func init() { runtime.LockOSThread() }

type outcome struct {
	index   int
	code    C.apixo_code
	id      string
	state   string
	urls    int
	message string
}

// user_data cannot be a Go pointer kept by C: it is a handle into this table instead.
var (
	mu      sync.Mutex
	pending = map[uintptr]chan<- outcome{}
	indexOf = map[uintptr]int{}
	next    uintptr = 1
)

func register(ch chan<- outcome, index int) uintptr {
	mu.Lock()
	defer mu.Unlock()
	h := next
	next++
	pending[h] = ch
	indexOf[h] = index
	return h
}

//export goOnDone
func goOnDone(code C.apixo_code, task *C.apixo_task, message *C.char, handle C.uintptr_t) {
	mu.Lock()
	ch, index := pending[uintptr(handle)], indexOf[uintptr(handle)]
	delete(pending, uintptr(handle))
	delete(indexOf, uintptr(handle))
	mu.Unlock()
	o := outcome{index: index, code: code, message: C.GoString(message)}
	if task != nil { // borrowed for this call only: copy what is kept
		o.id = C.GoString(C.apixo_task_id(task))
		o.state = C.GoString(C.apixo_state_name(C.apixo_task_state(task)))
		o.urls = int(C.apixo_task_result_count(task))
	}
	if ch != nil {
		ch <- o // buffered for every task: never blocks the dispatcher
	}
}

func apixoError(code C.apixo_code, what string) error {
	return fmt.Errorf("%s: %s: %s", what, C.GoString(C.apixo_code_name(code)), C.GoString(C.apixo_last_error()))
}

func run() error {
	opts := C.apixo_options_new()
	if opts == nil {
		return fmt.Errorf("out of memory")
	}
	defer C.apixo_options_free(opts)
	if s, ok := os.LookupEnv("APIXO_TIME_SCALE"); ok {
		scale, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("APIXO_TIME_SCALE: %v", err)
		}
		if rc := C.apixo_options_set_time_scale(opts, C.double(scale)); rc != C.APIXO_OK {
			return apixoError(rc, "time scale")
		}
	}
	var client *C.apixo_client
	if rc := C.apixo_client_new(opts, &client); rc != C.APIXO_OK {
		return apixoError(rc, "client")
	}
	defer C.apixo_client_free(client) // fires any callback still pending (APIXO_ERR_CLOSED)

	req := C.apixo_request_new(nil)
	if req == nil {
		return fmt.Errorf("out of memory")
	}
	defer C.apixo_request_free(req)
	prompt := C.CString("a lighthouse in a storm, oil painting")
	defer C.free(unsafe.Pointer(prompt))
	if rc := C.apixo_request_set_prompt(req, prompt); rc != C.APIXO_OK {
		return apixoError(rc, "prompt")
	}
	if rc := C.apixo_request_set_max_images(req, 1); rc != C.APIXO_OK {
		return apixoError(rc, "max_images")
	}

	const n = 3
	done := make(chan outcome, n)
	for i := 0; i < n; i++ {
		h := register(done, i)
		if rc := C.submit_with_trampoline(client, req, C.uintptr_t(h)); rc != C.APIXO_OK {
			return apixoError(rc, "submit")
		}
	}
	results := make([]*outcome, n)
	deadline := time.After(2 * time.Minute)
	for received := 0; received < n; received++ {
		select {
		case o := <-done:
			results[o.index] = &o
		case <-deadline:
			return fmt.Errorf("timed out after %d of %d completions", received, n)
		}
	}
	failures := 0
	for i, o := range results {
		if o.code != C.APIXO_OK {
			fmt.Fprintf(os.Stderr, "task %d: %s: %s\n", i, C.GoString(C.apixo_code_name(o.code)), o.message)
			failures++
			continue
		}
		fmt.Printf("task %d id=%s state=%s urls=%d\n", i, o.id, o.state, o.urls)
	}
	fmt.Printf("completed %d/%d\n", n-failures, n)
	if failures > 0 {
		return fmt.Errorf("%d of %d tasks did not succeed", failures, n)
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintf(os.Stderr, "threetasks: %v\n", err)
		os.Exit(1)
	}
}
