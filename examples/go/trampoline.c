// trampoline.c: the C side of the callback. cgo cannot hand a Go function to C as a
// function pointer, so apixo gets this C function, which calls the exported Go one. It also
// reads apixo_last_error() here, on the dispatcher thread, in the same C call, so the message
// belongs to this delivery. A file of its own: a Go file with //export may only declare C.
#include <stdint.h>
#include <apixo.h>
#include "_cgo_export.h"

static void on_done(apixo_code code, const apixo_task *task, void *user_data) {
  goOnDone(code, (apixo_task *)task, (char *)(code == APIXO_OK ? "" : apixo_last_error()),
           (uintptr_t)user_data);
}

apixo_code submit_with_trampoline(apixo_client *c, const apixo_request *req, uintptr_t handle) {
  return apixo_submit_async(c, req, on_done, (void *)handle);
}
