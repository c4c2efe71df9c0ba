/* test_rules.c: the library's local request rules agree with the server's.
 *
 * The header promises that for the models whose rules the library knows, "every setter
 * validates its value at once" (architecture: "bad input gets a clear error, before any
 * request is sent"). This test takes a table of field values for seedream-5-0 and
 * seedream-4-5 and, for each, compares
 *   - the library: apixo_request_set_input_json (or the typed setter) + apixo_request_validate;
 *   - the server (the simulator, which follows the documented API and the provider's
 *     published ranges; sim/README.md): a raw POST /generateTask of the library's own
 *     apixo_request_to_json body when the library accepted the value, else of a hand-built
 *     body with that value.
 * Asserted: the library accepts a value exactly when the server does (no 400 for a request
 * the library let through, no local rejection of a value the server takes). Every
 * disagreement is printed with both messages.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

struct rule_case {
  const char *model;
  const char *field; /* an input field, or "callback_url" (top level) */
  const char *value; /* JSON text */
};

static char *repeat_json(const char *unit, int n) {
  size_t u = strlen(unit);
  char *s = malloc(u * (size_t)n + 3);
  s[0] = '"';
  for (int i = 0; i < n; i++) memcpy(s + 1 + u * (size_t)i, unit, u);
  s[1 + u * (size_t)n] = '"';
  s[2 + u * (size_t)n] = 0;
  return s;
}

static int disagreements = 0;

static void check_case(const char *model, const char *field, const char *value, int index) {
  apixo_request *r = apixo_request_new(model);
  if (!CHECK(r != NULL)) return;
  char prompt[128];
  snprintf(prompt, sizeof prompt, "rules case %d %lld", index, (long long)h_wall_ms());
  apixo_request_set_prompt(r, prompt);
  apixo_request_set_max_images(r, 1);
  int lib_rc;
  char lib_msg[512] = "";
  json_error_t err;
  json_t *val = json_loads(value, JSON_DECODE_ANY, &err);
  if (!strcmp(field, "callback_url")) {
    lib_rc = apixo_request_set_callback_url(r, json_string_value(val));
  } else {
    lib_rc = apixo_request_set_input_json(r, field, value);
  }
  if (lib_rc == APIXO_OK) lib_rc = apixo_request_validate(r);
  if (lib_rc != APIXO_OK) snprintf(lib_msg, sizeof lib_msg, "%s", apixo_last_error());

  char *body = NULL;
  if (lib_rc == APIXO_OK) {
    CHECK_CODE(apixo_request_to_json(r, &body), APIXO_OK);
  } else {
    json_t *input = json_object();
    json_object_set_new(input, "prompt", json_string(prompt));
    json_object_set_new(input, "max_images", json_integer(1));
    json_t *root = json_object();
    if (!strcmp(field, "callback_url")) {
      json_object_set_new(root, "request_type", json_string("callback"));
      json_object_set(root, "callback_url", val);
    } else {
      json_object_set_new(root, "request_type", json_string("async"));
      json_object_set(input, field, val);
    }
    json_object_set_new(root, "input", input);
    char *text = json_dumps(root, JSON_COMPACT);
    body = text ? strdup(text) : NULL;
    free(text);
    json_decref(root);
  }
  char path[128];
  snprintf(path, sizeof path, "/generateTask/%s", model);
  long status = 0;
  json_t *answer = body ? api_call("POST", path, body, &status) : NULL;
  const char *server_msg = json_string_value(json_object_get(json_object_get(answer, "data"), "error"));
  int lib_ok = lib_rc == APIXO_OK, server_ok = status == 200;
  if (status != 200 && status != 400) h_note("unexpected HTTP %ld for %s %s=%.60s", status, model, field, value);
  if (!CHECK_EQ(lib_ok, server_ok)) {
    disagreements++;
    h_note("%s %s=%.60s: library %s%s%s, server HTTP %ld%s%s", model, field, value,
           lib_ok ? "accepts" : "rejects (", lib_ok ? "" : lib_msg, lib_ok ? "" : ")", status,
           server_msg ? ": " : "", server_msg ? server_msg : "");
  }
  json_decref(answer);
  json_decref(val);
  if (lib_rc == APIXO_OK)
    apixo_free(body);
  else
    free(body);
  apixo_request_free(r);
}

static void test_rules_agree(void) {
  sim_reset();
  CHECK_EQ(sim_config("{\"rpm\":0,\"concurrency\":0}"), 0); /* accepted cases create tasks */
  char *p5000 = repeat_json("a", 5000), *p5001 = repeat_json("a", 5001);
  char *e5000 = repeat_json("\\ud83d\\ude00", 5000), *e5001 = repeat_json("\\ud83d\\ude00", 5001);
  char urls15[2048] = "[";
  for (int i = 1; i <= 15; i++) {
    char u[64];
    snprintf(u, sizeof u, "%s\"https://example.com/%d.png\"", i > 1 ? "," : "", i);
    strcat(urls15, u);
  }
  strcat(urls15, "]");
  const struct rule_case cases[] = {
      {"seedream-5-0", "resolution", "\"2K\""},
      {"seedream-5-0", "resolution", "\"3K\""},
      {"seedream-5-0", "resolution", "\"4K\""},
      {"seedream-5-0", "resolution", "\"2k\""},
      {"seedream-5-0", "resolution", "\"2048x2048\""},
      {"seedream-5-0", "resolution", "\"2048X2048\""},
      {"seedream-5-0", "resolution", "\"2048*2048\""},
      {"seedream-5-0", "resolution", "\"2560x1440\""},
      {"seedream-5-0", "resolution", "\"4096x4096\""},
      {"seedream-5-0", "resolution", "\"100x100\""},
      {"seedream-5-0", "resolution", "\"1920x1080\""},
      {"seedream-5-0", "resolution", "\"5000x5000\""},
      {"seedream-5-0", "resolution", "\"16384x256\""},
      {"seedream-5-0", "resolution", "null"},
      {"seedream-5-0", "aspect_ratio", "\"21:9\""},
      {"seedream-5-0", "aspect_ratio", "\"5:4\""},
      {"seedream-5-0", "aspect_ratio", "null"},
      {"seedream-5-0", "max_images", "1"},
      {"seedream-5-0", "max_images", "10"},
      {"seedream-5-0", "max_images", "0"},
      {"seedream-5-0", "max_images", "11"},
      {"seedream-5-0", "max_images", "2.0"},
      {"seedream-5-0", "max_images", "\"2\""},
      {"seedream-5-0", "max_images", "true"},
      {"seedream-5-0", "prompt", "\"\""},
      {"seedream-5-0", "prompt", p5000},
      {"seedream-5-0", "prompt", p5001},
      {"seedream-5-0", "prompt", e5000},
      {"seedream-5-0", "prompt", e5001},
      {"seedream-5-0", "prompt", "42"},
      {"seedream-5-0", "sequential_image_generation", "\"auto\""},
      {"seedream-5-0", "sequential_image_generation", "\"on\""},
      {"seedream-5-0", "web_search", "true"},
      {"seedream-5-0", "web_search", "1"},
      {"seedream-5-0", "output_format", "\"png\""},
      {"seedream-5-0", "output_format", "\"jpg\""},
      {"seedream-5-0", "prompt_optimize_mode", "\"standard\""},
      {"seedream-5-0", "prompt_optimize_mode", "\"fast\""},
      {"seedream-5-0", "mode", "\"image-to-image\""},
      {"seedream-5-0", "mode", "\"inpaint\""},
      {"seedream-5-0", "image_urls", "[]"},
      {"seedream-5-0", "image_urls", "[\"https://a.example/x.png\"]"},
      {"seedream-5-0", "image_urls", "[\"ftp://a.example/x.png\"]"},
      {"seedream-5-0", "image_urls", "[\"http:///x.png\"]"},
      {"seedream-5-0", "image_urls", urls15},
      {"seedream-5-0", "image_urls", "\"https://a.example/x.png\""},
      {"seedream-5-0", "callback_url", "\"https://hooks.example.com/x\""},
      {"seedream-5-0", "callback_url", "\"http:///hook\""},
      {"seedream-5-0", "callback_url", "\"ftp://hooks.example.com/x\""},
      {"seedream-4-5", "resolution", "\"2K\""},
      {"seedream-4-5", "resolution", "\"4K\""},
      {"seedream-4-5", "resolution", "\"3K\""},
      {"seedream-4-5", "resolution", "\"2048x2048\""},
      {"seedream-4-5", "resolution", "\"4096x4096\""},
      {"seedream-4-5", "max_images", "11"},
      {"seedream-4-5", "aspect_ratio", "\"5:4\""},
  };
  int n = (int)(sizeof cases / sizeof cases[0]);
  for (int i = 0; i < n; i++) check_case(cases[i].model, cases[i].field, cases[i].value, i);
  h_note("%d cases, %d disagreements between the library's rules and the server's", n,
         disagreements);
  free(p5000);
  free(p5001);
  free(e5000);
  free(e5001);
  CHECK_EQ(sim_default_config(), 0);
}

int main(void) {
  h_init();
  RUN(test_rules_agree);
  return h_finish();
}
