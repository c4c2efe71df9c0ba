/* apixo_addon.c: a Node.js N-API addon over libapixo, with Promises.
 *
 *   const { Client } = require('./build/apixo.node');
 *   const client = new Client({ timeScale: 0.01 });      // key and URL: options or env
 *   const task = await client.generate('a lighthouse', { maxImages: 1 });
 *   const { code, task } = await client.submit('a lighthouse');   // settles for every outcome
 *   client.close();
 *
 * No host code runs on a library thread: the client is in queue delivery mode, libuv watches
 * its event descriptor (uv_poll_t on apixo_client_event_fd) and, on the JS thread,
 * apixo_next_event takes the completions and settles their promises. The poll handle is
 * active only while a task is pending, so an idle client never keeps the process alive.
 *
 *   cc -shared -fPIC -O2 -I/usr/include/node -I$APIXO/include apixo_addon.c \
 *      -o build/apixo.node -L$APIXO/lib -Wl,-rpath,$APIXO/lib -lapixo
 */
#define NAPI_VERSION 3 /* the oldest N-API with what this uses: one binary for every Node since 10 */
#include <apixo.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

/* One promise waiting for its task's completion; user_data of apixo_submit_async. */
typedef struct pending {
  struct pending *prev, *next;
  napi_deferred deferred;
  int reject_on_failure; /* generate(): reject unless APIXO_OK; submit(): always resolve */
} pending;

typedef struct addon_client {
  napi_env env;
  apixo_client *client; /* NULL once closed */
  uv_poll_t poll;       /* watches apixo_client_event_fd while tasks are pending */
  int polling;          /* the poll handle is started */
  int poll_open;        /* the poll handle is initialised and uv_close not called yet */
  int poll_closed;      /* uv_close's callback has run: libuv no longer uses ac */
  int finalized;        /* the JS object is gone: ac is freed once poll_closed */
  napi_ref wrapper;     /* the JS object: the resource of the callback scope */
  napi_async_context async_ctx;
  pending *head;        /* promises not settled yet */
  size_t count;
} addon_client;

#define CHECK(env, call)                                                        \
  do {                                                                          \
    if ((call) != napi_ok) {                                                    \
      const napi_extended_error_info *info_ = NULL;                             \
      napi_get_last_error_info((env), &info_);                                  \
      napi_throw_error((env), NULL, info_ && info_->error_message               \
                                        ? info_->error_message : #call " failed"); \
      return NULL;                                                              \
    }                                                                           \
  } while (0)

/* ------------------------------------------------------------ JS values */

static napi_value str(napi_env env, const char *s) {
  napi_value v = NULL;
  if (s == NULL) {
    napi_get_null(env, &v);
    return v;
  }
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

static void set(napi_env env, napi_value obj, const char *key, napi_value v) {
  napi_set_named_property(env, obj, key, v);
}

/* A plain object snapshot of a task: { id, model, state, urls, failCode, failMessage, tag }. */
static napi_value task_object(napi_env env, const apixo_task *t) {
  napi_value obj, urls, n;
  if (t == NULL) {
    napi_get_null(env, &obj);
    return obj;
  }
  napi_create_object(env, &obj);
  set(env, obj, "id", str(env, apixo_task_id(t)));
  set(env, obj, "model", str(env, apixo_task_model(t)));
  set(env, obj, "state", str(env, apixo_state_name(apixo_task_state(t))));
  size_t count = apixo_task_result_count(t);
  napi_create_array_with_length(env, count, &urls);
  for (size_t i = 0; i < count; i++) napi_set_element(env, urls, (uint32_t)i, str(env, apixo_task_result_url(t, i)));
  set(env, obj, "urls", urls);
  set(env, obj, "failCode", str(env, apixo_task_fail_code(t)));
  set(env, obj, "failMessage", str(env, apixo_task_fail_message(t)));
  set(env, obj, "tag", str(env, apixo_task_tag(t)));
  napi_create_int64(env, apixo_task_cost_time_ms(t), &n);
  set(env, obj, "costTimeMs", n);
  return obj;
}

/* An Error with .code = "APIXO_ERR_...", the library's one-line message and .task. */
static napi_value apixo_error(napi_env env, apixo_code code, const char *message, napi_value task) {
  napi_value err, code_v, msg_v;
  char line[1024];
  snprintf(line, sizeof line, "%s: %s", apixo_code_name(code), message && *message ? message : "failed");
  napi_create_string_utf8(env, apixo_code_name(code), NAPI_AUTO_LENGTH, &code_v);
  napi_create_string_utf8(env, line, NAPI_AUTO_LENGTH, &msg_v);
  napi_create_error(env, code_v, msg_v, &err);
  if (task) set(env, err, "task", task);
  return err;
}

/* A promise already rejected with the last error of this thread (read at once). */
static napi_value rejected(napi_env env, apixo_code code, const char *what) {
  char message[1024];
  snprintf(message, sizeof message, "%s: %s", what, apixo_last_error());
  napi_deferred d;
  napi_value promise;
  CHECK(env, napi_create_promise(env, &d, &promise));
  napi_reject_deferred(env, d, apixo_error(env, code, message, NULL));
  return promise;
}

/* Property `key` of obj when present and neither undefined nor null: 1 with *v and *type set,
 * else 0. */
static int get_prop(napi_env env, napi_value obj, const char *key, napi_value *v,
                    napi_valuetype *type) {
  bool has = false;
  if (obj == NULL || napi_has_named_property(env, obj, key, &has) != napi_ok || !has) return 0;
  if (napi_get_named_property(env, obj, key, v) != napi_ok || napi_typeof(env, *v, type) != napi_ok)
    return 0;
  return *type != napi_undefined && *type != napi_null;
}

/* Throws a TypeError "<key>: must be <what>"; returns -1. */
static int wrong_type(napi_env env, const char *key, const char *what) {
  char msg[128];
  snprintf(msg, sizeof msg, "%s: must be %s", key, what);
  napi_throw_type_error(env, NULL, msg);
  return -1;
}

/* The string property `key` of obj copied into buf; 0 when absent, -1 (JS error thrown) when
 * present but not a string, or too long. */
static int get_string(napi_env env, napi_value obj, const char *key, char *buf, size_t size) {
  napi_value v;
  napi_valuetype type;
  size_t len = 0;
  if (!get_prop(env, obj, key, &v, &type)) return 0;
  if (type != napi_string || napi_get_value_string_utf8(env, v, buf, size, &len) != napi_ok)
    return wrong_type(env, key, "a string");
  if (len + 1 >= size) {
    char msg[128];
    snprintf(msg, sizeof msg, "%s: longer than %zu bytes", key, size - 2);
    napi_throw_range_error(env, NULL, msg);
    return -1;
  }
  return 1;
}

/* The number property `key` of obj; 0 when absent, -1 (JS error thrown) when not a number. */
static int get_number(napi_env env, napi_value obj, const char *key, double *out) {
  napi_value v;
  napi_valuetype type;
  if (!get_prop(env, obj, key, &v, &type)) return 0;
  if (type != napi_number || napi_get_value_double(env, v, out) != napi_ok)
    return wrong_type(env, key, "a number");
  return 1;
}

/* ------------------------------------------------------------ completions */

static void poll_update(addon_client *ac);
static void fail_all(addon_client *ac, apixo_code code, const char *message);

static void unlink_pending(addon_client *ac, pending *p) {
  if (p->prev) p->prev->next = p->next; else ac->head = p->next;
  if (p->next) p->next->prev = p->prev;
  ac->count--;
}

/* Settles p's promise with an outcome; runs on the JS thread inside a handle scope. */
static void settle(napi_env env, pending *p, apixo_code code, const apixo_task *task, const char *message) {
  napi_value task_v = task_object(env, task);
  if (code != APIXO_OK && p->reject_on_failure) {
    napi_reject_deferred(env, p->deferred, apixo_error(env, code, message, task_v));
  } else if (p->reject_on_failure) {
    napi_resolve_deferred(env, p->deferred, task_v);
  } else {
    napi_value result, code_v;
    napi_create_object(env, &result);
    napi_create_int32(env, (int32_t)code, &code_v);
    set(env, result, "code", code_v);
    set(env, result, "codeName", str(env, apixo_code_name(code)));
    set(env, result, "message", str(env, message ? message : ""));
    set(env, result, "task", task_v);
    napi_resolve_deferred(env, p->deferred, result);
  }
  free(p);
}

/* Takes every waiting event off the queue (never blocking) and settles its promise. */
static void drain_events(addon_client *ac) {
  apixo_event *ev = NULL;
  while (ac->client && apixo_next_event(ac->client, 0, &ev) == APIXO_OK) {
    if (apixo_event_kind_of(ev) == APIXO_EVENT_COMPLETION) {
      pending *p = apixo_event_user_data(ev);
      if (p) {
        unlink_pending(ac, p);
        settle(ac->env, p, apixo_event_code(ev), apixo_event_task(ev), apixo_event_message(ev));
      }
    }
    apixo_event_free(ev);
  }
}

/* libuv: the event descriptor is readable. Runs on the JS thread. The callback scope makes
 * Node run the promise reactions (microtasks) when it closes, as for any I/O callback. */
static void on_readable(uv_poll_t *handle, int status, int events) {
  (void)events;
  addon_client *ac = handle->data;
  napi_env env = ac->env;
  napi_handle_scope hs;
  napi_callback_scope cs = NULL;
  napi_value resource = NULL;
  if (napi_open_handle_scope(env, &hs) != napi_ok) return;
  napi_get_reference_value(env, ac->wrapper, &resource);
  if (resource) napi_open_callback_scope(env, resource, ac->async_ctx, &cs);
  if (status == 0) {
    drain_events(ac);
  } else { /* the descriptor cannot be watched any more: nothing would ever settle */
    char message[256];
    snprintf(message, sizeof message, "watching the event descriptor: %s", uv_strerror(status));
    fail_all(ac, APIXO_ERR_IO, message);
  }
  poll_update(ac);
  if (cs) napi_close_callback_scope(env, cs);
  napi_close_handle_scope(env, hs);
}

/* The poll handle runs only while promises are pending: an idle client keeps no loop alive.
 * While it runs, the JS object is held strongly, so a client dropped with tasks in flight is
 * not collected before their promises settle. */
static void poll_update(addon_client *ac) {
  uint32_t refs;
  if (ac->client && ac->poll_open && ac->count > 0 && !ac->polling) {
    if (uv_poll_start(&ac->poll, UV_READABLE, on_readable) == 0) {
      ac->polling = 1;
      napi_reference_ref(ac->env, ac->wrapper, &refs);
    }
  } else if ((ac->client == NULL || ac->count == 0) && ac->polling) {
    uv_poll_stop(&ac->poll);
    ac->polling = 0;
    napi_reference_unref(ac->env, ac->wrapper, &refs);
  }
}

/* Settles every pending promise with `code` (the client closed, or the descriptor failed). */
static void fail_all(addon_client *ac, apixo_code code, const char *message) {
  while (ac->head) {
    pending *p = ac->head;
    unlink_pending(ac, p);
    settle(ac->env, p, code, NULL, message);
  }
}

static void on_poll_closed(uv_handle_t *h) {
  addon_client *ac = h->data;
  ac->poll_closed = 1;
  if (ac->finalized) free(ac);
}

/* Stops watching and closes the poll handle. Must come BEFORE apixo_client_free closes the
 * descriptor: uv_close removes the descriptor number from the loop's epoll set, and once
 * closed that number may already belong to another client's descriptor. */
static void close_poll(addon_client *ac) {
  if (ac->polling) {
    uint32_t refs;
    uv_poll_stop(&ac->poll);
    ac->polling = 0;
    if (!ac->finalized) napi_reference_unref(ac->env, ac->wrapper, &refs);
  }
  if (ac->poll_open) {
    ac->poll_open = 0;
    uv_close((uv_handle_t *)&ac->poll, on_poll_closed);
  }
}

/* Frees the client (its last events are taken first) and rejects whatever is still pending
 * with APIXO_ERR_CLOSED. Runs on the JS thread. */
static void close_client(addon_client *ac) {
  if (ac->client == NULL) return;
  drain_events(ac);
  close_poll(ac);
  apixo_client_free(ac->client);
  ac->client = NULL;
  fail_all(ac, APIXO_ERR_CLOSED, "the client was closed");
}

/* The JS object was collected (or the environment is going away). While promises are
 * pending the object is held strongly, so this normally finds the client closed or idle. */
static void finalize(napi_env env, void *data, void *hint) {
  (void)hint;
  addon_client *ac = data;
  ac->finalized = 1;
  close_poll(ac);
  if (ac->client) {
    /* No JS may run in a finalizer: promises still pending (only at environment teardown)
     * are dropped with the client. */
    apixo_client_free(ac->client);
    ac->client = NULL;
    while (ac->head) {
      pending *p = ac->head;
      unlink_pending(ac, p);
      free(p);
    }
  }
  if (ac->async_ctx) napi_async_destroy(env, ac->async_ctx);
  if (ac->wrapper) napi_delete_reference(env, ac->wrapper);
  if (ac->poll_closed) free(ac); /* else on_poll_closed frees it */
}

/* ------------------------------------------------------------ the Client class */

static addon_client *unwrap(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv) {
  napi_value self;
  void *data = NULL;
  if (napi_get_cb_info(env, info, argc, argv, &self, NULL) != napi_ok ||
      napi_unwrap(env, self, &data) != napi_ok || data == NULL) {
    napi_throw_type_error(env, NULL, "not an apixo Client");
    return NULL;
  }
  return data;
}

/* new Client({ apiKey, baseUrl, timeScale }) */
static napi_value client_new(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1] = {NULL}, self, target;
  CHECK(env, napi_get_cb_info(env, info, &argc, argv, &self, NULL));
  CHECK(env, napi_get_new_target(env, info, &target));
  if (target == NULL) {
    napi_throw_type_error(env, NULL, "Client: use new Client(options)");
    return NULL;
  }
  napi_value o = NULL;
  if (argc > 0) {
    napi_valuetype type;
    napi_typeof(env, argv[0], &type);
    if (type == napi_object) o = argv[0];
    else if (type != napi_undefined) {
      napi_throw_type_error(env, NULL, "Client: options must be an object");
      return NULL;
    }
  }
  char key[512], url[2048];
  double scale = 0;
  int has_key = get_string(env, o, "apiKey", key, sizeof key);
  if (has_key < 0) return NULL;
  int has_url = get_string(env, o, "baseUrl", url, sizeof url);
  if (has_url < 0) return NULL;
  int has_scale = get_number(env, o, "timeScale", &scale);
  if (has_scale < 0) return NULL;

  apixo_options *opts = apixo_options_new();
  if (opts == NULL) {
    napi_throw_error(env, "APIXO_ERR_NO_MEMORY", "out of memory");
    return NULL;
  }
  apixo_code rc = apixo_options_set_delivery(opts, APIXO_DELIVERY_QUEUE);
  const char *what = "delivery";
  if (rc == APIXO_OK && has_key) rc = apixo_options_set_api_key(opts, key), what = "apiKey";
  if (rc == APIXO_OK && has_url) rc = apixo_options_set_base_url(opts, url), what = "baseUrl";
  if (rc == APIXO_OK && has_scale) rc = apixo_options_set_time_scale(opts, scale), what = "timeScale";
  apixo_client *client = NULL;
  if (rc == APIXO_OK) rc = apixo_client_new(opts, &client), what = "client";
  apixo_options_free(opts);
  int fd = -1;
  if (rc == APIXO_OK) rc = apixo_client_event_fd(client, &fd), what = "event fd";
  if (rc != APIXO_OK) {
    char message[1024];
    snprintf(message, sizeof message, "%s: %s", what, apixo_last_error());
    apixo_client_free(client);
    napi_throw(env, apixo_error(env, rc, message, NULL));
    return NULL;
  }

  addon_client *ac = calloc(1, sizeof *ac);
  uv_loop_t *loop = NULL;
  if (ac == NULL || napi_get_uv_event_loop(env, &loop) != napi_ok ||
      uv_poll_init(loop, &ac->poll, fd) != 0) {
    free(ac);
    apixo_client_free(client);
    napi_throw_error(env, NULL, "Client: cannot watch the event descriptor");
    return NULL;
  }
  ac->env = env;
  ac->client = client;
  ac->poll.data = ac;
  ac->poll_open = 1;
  napi_value name = str(env, "apixo.Client");
  if (napi_wrap(env, self, ac, finalize, NULL, NULL) != napi_ok) {
    ac->finalized = 1; /* on_poll_closed frees ac */
    close_poll(ac);
    apixo_client_free(client);
    napi_throw_error(env, NULL, "Client: napi_wrap failed");
    return NULL;
  }
  napi_create_reference(env, self, 0, &ac->wrapper); /* weak: the object may still be collected */
  napi_async_init(env, self, name, &ac->async_ctx);
  return self;
}

/* The request of submit/generate: prompt and { model, maxImages, resolution, aspectRatio, tag }.
 * NULL with a JS exception pending, or with *rc and *what set for a rejected promise. */
static apixo_request *build_request(napi_env env, size_t argc, napi_value *argv, apixo_code *rc,
                                    const char **what) {
  napi_valuetype type = napi_undefined;
  if (argc > 0) napi_typeof(env, argv[0], &type);
  if (type != napi_string) {
    napi_throw_type_error(env, NULL, "prompt: must be a string");
    return NULL;
  }
  size_t len = 0;
  napi_get_value_string_utf8(env, argv[0], NULL, 0, &len);
  char *prompt = malloc(len + 1);
  if (prompt == NULL) {
    napi_throw_error(env, "APIXO_ERR_NO_MEMORY", "out of memory");
    return NULL;
  }
  napi_get_value_string_utf8(env, argv[0], prompt, len + 1, &len);
  napi_value o = NULL;
  if (argc > 1) {
    napi_typeof(env, argv[1], &type);
    if (type == napi_object) o = argv[1];
    else if (type != napi_undefined) {
      free(prompt);
      napi_throw_type_error(env, NULL, "options: must be an object");
      return NULL;
    }
  }
  char model[128], resolution[32], ratio[32], tag[1024];
  double max_images = 0;
  int has_model = get_string(env, o, "model", model, sizeof model);
  int has_res = has_model < 0 ? -1 : get_string(env, o, "resolution", resolution, sizeof resolution);
  int has_ratio = has_res < 0 ? -1 : get_string(env, o, "aspectRatio", ratio, sizeof ratio);
  int has_tag = has_ratio < 0 ? -1 : get_string(env, o, "tag", tag, sizeof tag);
  int has_max = has_tag < 0 ? -1 : get_number(env, o, "maxImages", &max_images);
  if (has_max < 0) {
    free(prompt);
    return NULL;
  }
  apixo_request *req = apixo_request_new(has_model ? model : NULL);
  if (req == NULL) {
    free(prompt);
    *rc = APIXO_ERR_NO_MEMORY, *what = "request";
    return NULL;
  }
  *rc = apixo_request_set_prompt(req, prompt), *what = "prompt";
  free(prompt);
  if (*rc == APIXO_OK && has_max) {
    if (max_images != (double)(int)max_images) *rc = APIXO_ERR_INVALID_ARGUMENT;
    else *rc = apixo_request_set_max_images(req, (int)max_images);
    *what = "maxImages";
  }
  if (*rc == APIXO_OK && has_res) *rc = apixo_request_set_resolution(req, resolution), *what = "resolution";
  if (*rc == APIXO_OK && has_ratio) *rc = apixo_request_set_aspect_ratio(req, ratio), *what = "aspectRatio";
  if (*rc == APIXO_OK && has_tag) *rc = apixo_request_set_tag(req, tag), *what = "tag";
  if (*rc != APIXO_OK) {
    apixo_request_free(req);
    return NULL;
  }
  return req;
}

static napi_value start(napi_env env, napi_callback_info info, int reject_on_failure) {
  size_t argc = 2;
  napi_value argv[2] = {NULL, NULL};
  addon_client *ac = unwrap(env, info, &argc, argv);
  if (ac == NULL) return NULL;
  apixo_code rc = APIXO_OK;
  const char *what = "request";
  apixo_request *req = build_request(env, argc, argv, &rc, &what);
  if (req == NULL) {
    bool pending_exc = false;
    napi_is_exception_pending(env, &pending_exc);
    return pending_exc ? NULL : rejected(env, rc, what);
  }
  if (ac->client == NULL) {
    apixo_request_free(req);
    napi_deferred d;
    napi_value promise;
    CHECK(env, napi_create_promise(env, &d, &promise));
    napi_reject_deferred(env, d, apixo_error(env, APIXO_ERR_CLOSED, "the client was closed", NULL));
    return promise;
  }
  pending *p = calloc(1, sizeof *p);
  napi_value promise;
  if (p == NULL || napi_create_promise(env, &p->deferred, &promise) != napi_ok) {
    free(p);
    apixo_request_free(req);
    napi_throw_error(env, "APIXO_ERR_NO_MEMORY", "out of memory");
    return NULL;
  }
  p->reject_on_failure = reject_on_failure;
  /* queue mode: no callback; the completion comes back through apixo_next_event with p */
  rc = apixo_submit_async(ac->client, req, NULL, p);
  apixo_request_free(req);
  if (rc != APIXO_OK) {
    char message[1024];
    snprintf(message, sizeof message, "submit: %s", apixo_last_error());
    napi_reject_deferred(env, p->deferred, apixo_error(env, rc, message, NULL));
    free(p);
    return promise;
  }
  p->next = ac->head;
  if (ac->head) ac->head->prev = p;
  ac->head = p;
  ac->count++;
  poll_update(ac);
  return promise;
}

/* client.generate(prompt, opts) -> Promise<task>; rejects with .code/.task unless it succeeded. */
static napi_value client_generate(napi_env env, napi_callback_info info) { return start(env, info, 1); }

/* client.submit(prompt, opts) -> Promise<{code, codeName, message, task}>, for every outcome. */
static napi_value client_submit(napi_env env, napi_callback_info info) { return start(env, info, 0); }

/* client.close(): frees the client; promises still pending reject with APIXO_ERR_CLOSED. */
static napi_value client_close(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  addon_client *ac = unwrap(env, info, &argc, NULL);
  if (ac == NULL) return NULL;
  close_client(ac);
  return NULL;
}

/* client.pending: the number of promises not settled yet. */
static napi_value client_pending(napi_env env, napi_callback_info info) {
  size_t argc = 0;
  addon_client *ac = unwrap(env, info, &argc, NULL);
  if (ac == NULL) return NULL;
  napi_value n;
  CHECK(env, napi_create_uint32(env, (uint32_t)ac->count, &n));
  return n;
}

static napi_value version(napi_env env, napi_callback_info info) {
  (void)info;
  return str(env, apixo_version());
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor methods[] = {
      {"generate", NULL, client_generate, NULL, NULL, NULL, napi_default, NULL},
      {"submit", NULL, client_submit, NULL, NULL, NULL, napi_default, NULL},
      {"close", NULL, client_close, NULL, NULL, NULL, napi_default, NULL},
      {"pending", NULL, NULL, client_pending, NULL, NULL, napi_default, NULL},
  };
  napi_value cls, fn;
  CHECK(env, napi_define_class(env, "Client", NAPI_AUTO_LENGTH, client_new, NULL,
                               sizeof methods / sizeof methods[0], methods, &cls));
  CHECK(env, napi_set_named_property(env, exports, "Client", cls));
  CHECK(env, napi_create_function(env, "version", NAPI_AUTO_LENGTH, version, NULL, &fn));
  CHECK(env, napi_set_named_property(env, exports, "version", fn));
  return exports;
}

NAPI_MODULE(apixo, init)
