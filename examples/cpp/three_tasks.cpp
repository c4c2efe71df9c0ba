// three_tasks.cpp: libapixo from C++17. RAII owners for the handles, three tasks through
// apixo_submit_async with a completion callback (thread mode: it runs on the library's
// dispatcher thread), apixo_drain to wait, then one line per task.
//
//   g++ -std=c++17 -O2 three_tasks.cpp -lapixo -o three_tasks
//   APIXO_API_KEY=sk-... ./three_tasks
#include <apixo.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

namespace apixo {

// One owner type per handle: the handle's free function runs exactly once.
template <typename T, void (*Free)(T *)>
struct Deleter {
  void operator()(T *p) const { Free(p); }
};
using Options = std::unique_ptr<apixo_options, Deleter<apixo_options, apixo_options_free>>;
using Client = std::unique_ptr<apixo_client, Deleter<apixo_client, apixo_client_free>>;
using Request = std::unique_ptr<apixo_request, Deleter<apixo_request, apixo_request_free>>;

struct Error : std::runtime_error {
  apixo_code code;
  Error(apixo_code c, const std::string &what)
      : std::runtime_error(what + ": " + apixo_code_name(c) + ": " + apixo_last_error()), code(c) {}
};

// Turns a failed call into an exception; apixo_last_error is read on the failing thread.
inline void check(apixo_code rc, const char *what) {
  if (rc != APIXO_OK) throw Error(rc, what);
}

}  // namespace apixo

struct Outcome {
  bool done = false;
  apixo_code code = APIXO_OK;
  std::string id, state, message;
  size_t urls = 0;
};

struct Batch {
  std::mutex lock;
  std::vector<Outcome> outcomes;
};

struct Slot {
  Batch *batch;
  size_t index;
};

// Runs on the dispatcher thread. The task is borrowed: copy what is kept.
static void on_done(apixo_code code, const apixo_task *task, void *user_data) {
  auto *slot = static_cast<Slot *>(user_data);
  std::lock_guard<std::mutex> guard(slot->batch->lock);
  Outcome &o = slot->batch->outcomes[slot->index];
  o.done = true;
  o.code = code;
  if (task) {
    o.id = apixo_task_id(task);
    o.state = apixo_state_name(apixo_task_state(task));
    o.urls = apixo_task_result_count(task);
  }
  if (code != APIXO_OK) o.message = apixo_last_error();  // describes `code` during the callback
}

int main() {
  // The batch outlives the client: apixo_client_free fires any callback still pending
  // (APIXO_ERR_CLOSED), so whatever user_data points to must still exist then.
  const size_t n = 3;
  Batch batch;
  batch.outcomes.resize(n);
  std::vector<Slot> slots;
  for (size_t i = 0; i < n; i++) slots.push_back(Slot{&batch, i});
  try {
    apixo::Options opts(apixo_options_new());
    if (!opts) throw std::bad_alloc();
    if (const char *scale = std::getenv("APIXO_TIME_SCALE"))
      apixo::check(apixo_options_set_time_scale(opts.get(), std::atof(scale)), "time scale");
    apixo_client *raw = nullptr;
    apixo::check(apixo_client_new(opts.get(), &raw), "client");
    apixo::Client client(raw);

    apixo::Request req(apixo_request_new("seedream-5-0"));
    if (!req) throw std::bad_alloc();
    apixo::check(apixo_request_set_prompt(req.get(), "a lighthouse in a storm, oil painting"),
                 "prompt");
    apixo::check(apixo_request_set_max_images(req.get(), 1), "max_images");

    for (size_t i = 0; i < n; i++)
      apixo::check(apixo_submit_async(client.get(), req.get(), on_done, &slots[i]), "submit");
    apixo::check(apixo_drain(client.get(), 120000), "drain");

    client.reset();  // every callback has fired: nothing touches the batch any more
    size_t failures = 0;
    for (size_t i = 0; i < n; i++) {
      const Outcome &o = batch.outcomes[i];
      if (!o.done || o.code != APIXO_OK) {
        std::fprintf(stderr, "task %zu: %s: %s\n", i, apixo_code_name(o.code), o.message.c_str());
        failures++;
        continue;
      }
      std::printf("task %zu id=%s state=%s urls=%zu\n", i, o.id.c_str(), o.state.c_str(), o.urls);
    }
    std::printf("completed %zu/%zu\n", n - failures, n);
    return failures == 0 ? 0 : 1;
  } catch (const std::exception &e) {
    std::fprintf(stderr, "three_tasks: %s\n", e.what());
    return 1;
  }
}
