// three_tasks.rs: libapixo from Rust with plain rustc and no crates. The few declarations the
// program needs are written by hand below (a real crate would generate them with bindgen
// from apixo.h). Three tasks through apixo_submit_async with a completion callback (thread
// mode: it runs on the library's dispatcher thread), apixo_drain to wait, one line per task.
//
//   rustc -O three_tasks.rs -L /path/to/lib -C link-arg=-Wl,-rpath,/path/to/lib
//   APIXO_API_KEY=sk-... ./three_tasks
use std::ffi::{c_char, c_int, c_long, c_void, CStr, CString};
use std::process::ExitCode;
use std::sync::Mutex;

#[repr(C)] struct ApixoOptions { _private: [u8; 0] } // opaque
#[repr(C)] struct ApixoClient { _private: [u8; 0] } // opaque
#[repr(C)] struct ApixoRequest { _private: [u8; 0] } // opaque
#[repr(C)] struct ApixoTask { _private: [u8; 0] } // opaque

type Code = c_int; // apixo_code: a C enum, int-sized
const APIXO_OK: Code = 0;
type TaskCallback = extern "C" fn(Code, *const ApixoTask, *mut c_void);

#[link(name = "apixo")]
extern "C" {
    fn apixo_code_name(code: Code) -> *const c_char;
    fn apixo_last_error() -> *const c_char;
    fn apixo_options_new() -> *mut ApixoOptions;
    fn apixo_options_free(opts: *mut ApixoOptions);
    fn apixo_options_set_time_scale(opts: *mut ApixoOptions, scale: f64) -> Code;
    fn apixo_client_new(opts: *const ApixoOptions, out: *mut *mut ApixoClient) -> Code;
    fn apixo_client_free(client: *mut ApixoClient);
    fn apixo_request_new(model: *const c_char) -> *mut ApixoRequest;
    fn apixo_request_free(req: *mut ApixoRequest);
    fn apixo_request_set_prompt(req: *mut ApixoRequest, prompt: *const c_char) -> Code;
    fn apixo_request_set_max_images(req: *mut ApixoRequest, n: c_int) -> Code;
    fn apixo_submit_async(c: *mut ApixoClient, req: *const ApixoRequest, cb: TaskCallback,
                          user_data: *mut c_void) -> Code;
    fn apixo_drain(c: *mut ApixoClient, timeout_ms: c_long) -> Code;
    fn apixo_task_id(t: *const ApixoTask) -> *const c_char;
    fn apixo_task_state(t: *const ApixoTask) -> c_int;
    fn apixo_state_name(state: c_int) -> *const c_char;
    fn apixo_task_result_count(t: *const ApixoTask) -> usize;
}

fn text(p: *const c_char) -> String {
    if p.is_null() {
        return String::new();
    }
    unsafe { CStr::from_ptr(p) }.to_string_lossy().into_owned()
}

/// An error from a failed call: its code name and apixo_last_error, read on the failing thread.
fn error(code: Code, what: &str) -> String {
    unsafe { format!("{}: {}: {}", what, text(apixo_code_name(code)), text(apixo_last_error())) }
}

fn check(code: Code, what: &str) -> Result<(), String> {
    if code == APIXO_OK { Ok(()) } else { Err(error(code, what)) }
}

// Owners: each handle's free function runs exactly once, when the owner is dropped.
struct Options(*mut ApixoOptions);
impl Drop for Options {
    fn drop(&mut self) { unsafe { apixo_options_free(self.0) } }
}
struct Client(*mut ApixoClient);
impl Drop for Client {
    fn drop(&mut self) { unsafe { apixo_client_free(self.0) } }
}
struct Request(*mut ApixoRequest);
impl Drop for Request {
    fn drop(&mut self) { unsafe { apixo_request_free(self.0) } }
}

#[derive(Default, Clone)]
struct Outcome {
    done: bool,
    code: Code,
    id: String,
    state: String,
    urls: usize,
    message: String,
}

struct Slot<'a> {
    outcomes: &'a Mutex<Vec<Outcome>>,
    index: usize,
}

// Runs on the dispatcher thread: no panic may cross this frame, so nothing here unwraps.
extern "C" fn on_done(code: Code, task: *const ApixoTask, user_data: *mut c_void) {
    let slot = unsafe { &*(user_data as *const Slot) };
    let mut o = Outcome { done: true, code, ..Default::default() };
    if !task.is_null() {
        unsafe {
            o.id = text(apixo_task_id(task));
            o.state = text(apixo_state_name(apixo_task_state(task)));
            o.urls = apixo_task_result_count(task);
        }
    }
    if code != APIXO_OK {
        o.message = text(unsafe { apixo_last_error() }); // describes `code` during the callback
    }
    if let Ok(mut outcomes) = slot.outcomes.lock() {
        outcomes[slot.index] = o;
    }
}

fn run(slots: &[Slot]) -> Result<(), String> {
    let opts = Options(unsafe { apixo_options_new() });
    if opts.0.is_null() {
        return Err("out of memory".into());
    }
    if let Ok(scale) = std::env::var("APIXO_TIME_SCALE") {
        let scale: f64 = scale.parse().map_err(|_| format!("APIXO_TIME_SCALE: not a number: {}", scale))?;
        check(unsafe { apixo_options_set_time_scale(opts.0, scale) }, "time scale")?;
    }
    let mut raw: *mut ApixoClient = std::ptr::null_mut();
    check(unsafe { apixo_client_new(opts.0, &mut raw) }, "client")?;
    let client = Client(raw);

    let req = Request(unsafe { apixo_request_new(std::ptr::null()) });
    if req.0.is_null() {
        return Err("out of memory".into());
    }
    let prompt = CString::new("a lighthouse in a storm, oil painting").unwrap();
    check(unsafe { apixo_request_set_prompt(req.0, prompt.as_ptr()) }, "prompt")?;
    check(unsafe { apixo_request_set_max_images(req.0, 1) }, "max_images")?;
    for slot in slots {
        let user_data = slot as *const Slot as *mut c_void;
        check(unsafe { apixo_submit_async(client.0, req.0, on_done, user_data) }, "submit")?;
    }
    check(unsafe { apixo_drain(client.0, 120_000) }, "drain")?;
    drop(client); // every callback has fired
    Ok(())
}

fn main() -> ExitCode {
    const N: usize = 3;
    // The outcomes and slots outlive the client (declared first, dropped last): a client freed
    // early fires the callbacks still pending with APIXO_ERR_CLOSED.
    let outcomes = Mutex::new(vec![Outcome::default(); N]);
    let slots: Vec<Slot> = (0..N).map(|index| Slot { outcomes: &outcomes, index }).collect();
    if let Err(e) = run(&slots) {
        eprintln!("three_tasks: {}", e);
        return ExitCode::FAILURE;
    }
    let outcomes = outcomes.lock().unwrap();
    let mut failures = 0;
    for (i, o) in outcomes.iter().enumerate() {
        if !o.done || o.code != APIXO_OK {
            eprintln!("task {}: {}: {}", i, text(unsafe { apixo_code_name(o.code) }), o.message);
            failures += 1;
            continue;
        }
        println!("task {} id={} state={} urls={}", i, o.id, o.state, o.urls);
    }
    println!("completed {}/{}", N - failures, N);
    if failures == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE }
}
