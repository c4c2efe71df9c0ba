/* test_requests.c: the "Requests" section of apixo.h (nothing is sent).
 *
 *   For seedream-5-0 every setter with valid and invalid values: prompt of 0 / 5000 / 5001
 *   characters, counted in characters not bytes ("é" is 2 bytes, "😀" 4); max_images
 *   0/1/10/11/-1; resolution 2K/3K/4K/2048x2048/2048X2048/2048*2048 and junk; the 8 aspect
 *   ratios and others; sequential; web_search; output_format; prompt_optimize_mode; provider;
 *   callback_url http/https/ftp/""/NULL; image URLs (14 allowed, the 15th rejected); tags;
 *   set_input_json with valid and invalid JSON and the known-field rules. A rejected value
 *   leaves the request unchanged (to_json identical) and apixo_last_error() names the field
 *   (and the allowed values). apixo_request_validate: missing prompt, missing max_images,
 *   image-to-image without URLs. apixo_request_to_json: exact text of a fully set request.
 *   seedream-4-5 accepts 4K and rejects 3K. The unknown model "flux-2" takes any field.
 *   apixo_request_new with a bad model returns NULL. apixo_request_copy is a deep copy.
 */
#include "harness.h"

#include <stdlib.h>
#include <string.h>

#define INVALID APIXO_ERR_INVALID_ARGUMENT

static char *to_json(const apixo_request *r) {
  char *s = NULL;
  if (!CHECK_CODE(apixo_request_to_json(r, &s), APIXO_OK)) return NULL;
  CHECK(s != NULL);
  return s;
}

/* Runs a setter that must fail: code INVALID, the message names `field`, the request is
 * unchanged. `call` is an expression using `r`. */
#define REJECTS(r, call, field)                                    \
  do {                                                             \
    char *before_ = to_json(r);                                    \
    CHECK_CODE((call), INVALID);                                   \
    CHECK_CONTAINS(apixo_last_error(), (field));                   \
    char *after_ = to_json(r);                                     \
    CHECK_STR(after_, before_);                                    \
    apixo_free(before_);                                           \
    apixo_free(after_);                                            \
  } while (0)

static char *repeat(const char *unit, int n) {
  size_t u = strlen(unit);
  char *s = malloc(u * (size_t)n + 1);
  for (int i = 0; i < n; i++) memcpy(s + u * (size_t)i, unit, u);
  s[u * (size_t)n] = 0;
  return s;
}

static void test_new_and_free(void) {
  apixo_request *r = apixo_request_new(NULL); /* seedream-5-0 */
  CHECK(r != NULL);
  char *j = to_json(r);
  CHECK_CONTAINS(j, "\"request_type\":\"async\"");
  CHECK(j && strstr(j, "provider") == NULL);
  CHECK(j && strstr(j, "callback_url") == NULL);
  CHECK_CONTAINS(j, "\"input\":{");
  apixo_free(j);
  /* NULL means seedream-5-0: its rules apply */
  CHECK_CODE(apixo_request_set_resolution(r, "4K"), INVALID);
  CHECK_CODE(apixo_request_set_resolution(r, "3K"), APIXO_OK);
  apixo_request_free(r);
  apixo_request_free(NULL);

  const char *bad[] = {"", "a/b", "has space", "../etc", "x?y", "m\n"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    r = apixo_request_new(bad[i]);
    if (!CHECK(r == NULL)) apixo_request_free(r);
    CHECK(apixo_last_error()[0] != 0);
  }
  r = apixo_request_new("seedream-4-5");
  CHECK(r != NULL);
  apixo_request_free(r);
  r = apixo_request_new("flux-2");
  CHECK(r != NULL);
  apixo_request_free(r);
}

static void test_null_arguments(void) {
  apixo_request *r = apixo_request_new(NULL);
  CHECK_CODE(apixo_request_set_prompt(NULL, "x"), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "req");
  CHECK_CODE(apixo_request_set_prompt(r, NULL), INVALID);
  CHECK_CODE(apixo_request_set_mode(NULL, "text-to-image"), INVALID);
  CHECK_CODE(apixo_request_set_mode(r, NULL), INVALID);
  CHECK_CODE(apixo_request_add_image_url(NULL, "http://a/b.png"), INVALID);
  CHECK_CODE(apixo_request_add_image_url(r, NULL), INVALID);
  CHECK_CODE(apixo_request_set_max_images(NULL, 1), INVALID);
  CHECK_CODE(apixo_request_set_resolution(NULL, "2K"), INVALID);
  CHECK_CODE(apixo_request_set_resolution(r, NULL), INVALID);
  CHECK_CODE(apixo_request_set_aspect_ratio(NULL, "1:1"), INVALID);
  CHECK_CODE(apixo_request_set_aspect_ratio(r, NULL), INVALID);
  CHECK_CODE(apixo_request_set_sequential(NULL, "auto"), INVALID);
  CHECK_CODE(apixo_request_set_sequential(r, NULL), INVALID);
  CHECK_CODE(apixo_request_set_web_search(NULL, 1), INVALID);
  CHECK_CODE(apixo_request_set_output_format(NULL, "png"), INVALID);
  CHECK_CODE(apixo_request_set_output_format(r, NULL), INVALID);
  CHECK_CODE(apixo_request_set_prompt_optimize_mode(NULL, "standard"), INVALID);
  CHECK_CODE(apixo_request_set_prompt_optimize_mode(r, NULL), INVALID);
  CHECK_CODE(apixo_request_set_provider(NULL, "auto"), INVALID);
  CHECK_CODE(apixo_request_set_provider(r, NULL), INVALID);
  CHECK_CODE(apixo_request_set_callback_url(NULL, "http://a/b"), INVALID);
  CHECK_CODE(apixo_request_set_input_json(NULL, "k", "1"), INVALID);
  CHECK_CODE(apixo_request_set_input_json(r, NULL, "1"), INVALID);
  CHECK_CODE(apixo_request_set_input_json(r, "k", NULL), INVALID);
  CHECK_CODE(apixo_request_set_tag(NULL, "t"), INVALID);
  CHECK_CODE(apixo_request_validate(NULL), INVALID);
  char *s = NULL;
  CHECK_CODE(apixo_request_to_json(NULL, &s), INVALID);
  CHECK(s == NULL);
  CHECK_CODE(apixo_request_to_json(r, NULL), INVALID);
  CHECK(apixo_request_copy(NULL) == NULL);
  apixo_request_free(r);
}

static void test_prompt(void) {
  apixo_request *r = apixo_request_new("seedream-5-0");
  REJECTS(r, apixo_request_set_prompt(r, ""), "prompt");
  CHECK_CODE(apixo_request_set_prompt(r, "a"), APIXO_OK);
  char *s = repeat("a", 5000);
  CHECK_CODE(apixo_request_set_prompt(r, s), APIXO_OK);
  free(s);
  s = repeat("a", 5001);
  REJECTS(r, apixo_request_set_prompt(r, s), "prompt");
  CHECK_CONTAINS(apixo_last_error(), "5000");
  free(s);
  /* characters, not bytes: 5000 x "é" is 10000 bytes and fine; 5001 is one too many */
  s = repeat("\xc3\xa9", 5000);
  CHECK_CODE(apixo_request_set_prompt(r, s), APIXO_OK);
  free(s);
  s = repeat("\xc3\xa9", 5001);
  REJECTS(r, apixo_request_set_prompt(r, s), "prompt");
  free(s);
  s = repeat("\xf0\x9f\x98\x80", 5000); /* U+1F600, 4 bytes each */
  CHECK_CODE(apixo_request_set_prompt(r, s), APIXO_OK);
  free(s);
  s = repeat("\xf0\x9f\x98\x80", 5001);
  REJECTS(r, apixo_request_set_prompt(r, s), "prompt");
  free(s);
  apixo_request_free(r);
}

static void test_max_images(void) {
  apixo_request *r = apixo_request_new("seedream-5-0");
  CHECK_CODE(apixo_request_set_max_images(r, 1), APIXO_OK);
  CHECK_CODE(apixo_request_set_max_images(r, 10), APIXO_OK);
  REJECTS(r, apixo_request_set_max_images(r, 0), "max_images");
  CHECK_CONTAINS(apixo_last_error(), "10");
  REJECTS(r, apixo_request_set_max_images(r, 11), "max_images");
  REJECTS(r, apixo_request_set_max_images(r, -1), "max_images");
  char *j = to_json(r);
  CHECK_CONTAINS(j, "\"max_images\":10");
  apixo_free(j);
  apixo_request_free(r);
}

static void test_resolution(void) {
  apixo_request *r = apixo_request_new("seedream-5-0");
  const char *ok[] = {"2K", "3K", "2048x2048", "2048X2048", "2048*2048", "2560x1440"};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
    CHECK_CODE(apixo_request_set_resolution(r, ok[i]), APIXO_OK);
  const char *bad[] = {"4K", "1K", "2k", "", "2048", "x2048", "2048x", "2048 x 2048", "abc"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    REJECTS(r, apixo_request_set_resolution(r, bad[i]), "resolution");
  }
  CHECK_CODE(apixo_request_set_resolution(r, "4K"), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "2K");
  CHECK_CONTAINS(apixo_last_error(), "3K");
  apixo_request_free(r);

  /* seedream-4-5: 2K and 4K, no 3K */
  r = apixo_request_new("seedream-4-5");
  CHECK_CODE(apixo_request_set_resolution(r, "4K"), APIXO_OK);
  CHECK_CODE(apixo_request_set_resolution(r, "2K"), APIXO_OK);
  REJECTS(r, apixo_request_set_resolution(r, "3K"), "resolution");
  CHECK_CONTAINS(apixo_last_error(), "4K");
  apixo_request_free(r);
}

static void test_enumerations(void) {
  apixo_request *r = apixo_request_new("seedream-5-0");
  const char *ratios[] = {"1:1", "2:3", "3:2", "4:3", "3:4", "9:16", "16:9", "21:9"};
  for (size_t i = 0; i < 8; i++) CHECK_CODE(apixo_request_set_aspect_ratio(r, ratios[i]), APIXO_OK);
  REJECTS(r, apixo_request_set_aspect_ratio(r, "5:4"), "aspect_ratio");
  CHECK_CONTAINS(apixo_last_error(), "16:9");
  REJECTS(r, apixo_request_set_aspect_ratio(r, ""), "aspect_ratio");
  REJECTS(r, apixo_request_set_aspect_ratio(r, "1:1 "), "aspect_ratio");

  CHECK_CODE(apixo_request_set_sequential(r, "disabled"), APIXO_OK);
  CHECK_CODE(apixo_request_set_sequential(r, "auto"), APIXO_OK);
  REJECTS(r, apixo_request_set_sequential(r, "on"), "sequential_image_generation");
  CHECK_CONTAINS(apixo_last_error(), "auto");

  CHECK_CODE(apixo_request_set_web_search(r, 0), APIXO_OK);
  char *j = to_json(r);
  CHECK_CONTAINS(j, "\"web_search\":false");
  apixo_free(j);
  CHECK_CODE(apixo_request_set_web_search(r, 7), APIXO_OK);
  j = to_json(r);
  CHECK_CONTAINS(j, "\"web_search\":true");
  apixo_free(j);

  CHECK_CODE(apixo_request_set_output_format(r, "jpeg"), APIXO_OK);
  CHECK_CODE(apixo_request_set_output_format(r, "png"), APIXO_OK);
  REJECTS(r, apixo_request_set_output_format(r, "jpg"), "output_format");
  CHECK_CONTAINS(apixo_last_error(), "png");
  REJECTS(r, apixo_request_set_output_format(r, "webp"), "output_format");

  CHECK_CODE(apixo_request_set_prompt_optimize_mode(r, "standard"), APIXO_OK);
  REJECTS(r, apixo_request_set_prompt_optimize_mode(r, "fast"), "prompt_optimize_mode");

  CHECK_CODE(apixo_request_set_provider(r, "auto"), APIXO_OK);
  CHECK_CODE(apixo_request_set_provider(r, "value"), APIXO_OK);
  CHECK_CODE(apixo_request_set_provider(r, "official"), APIXO_OK);
  REJECTS(r, apixo_request_set_provider(r, "cheap"), "provider");
  CHECK_CONTAINS(apixo_last_error(), "official");
  REJECTS(r, apixo_request_set_provider(r, ""), "provider");

  CHECK_CODE(apixo_request_set_mode(r, "text-to-image"), APIXO_OK);
  CHECK_CODE(apixo_request_set_mode(r, "image-to-image"), APIXO_OK);
  REJECTS(r, apixo_request_set_mode(r, "inpaint"), "mode");
  CHECK_CONTAINS(apixo_last_error(), "image-to-image");
  apixo_request_free(r);
}

static void test_callback_url(void) {
  apixo_request *r = apixo_request_new("seedream-5-0");
  CHECK_CODE(apixo_request_set_callback_url(r, "http://127.0.0.1:9/hook"), APIXO_OK);
  char *j = to_json(r);
  CHECK_CONTAINS(j, "\"request_type\":\"callback\"");
  CHECK_CONTAINS(j, "\"callback_url\":\"http://127.0.0.1:9/hook\"");
  apixo_free(j);
  CHECK_CODE(apixo_request_set_callback_url(r, "https://hooks.example.com/a?b=c"), APIXO_OK);
  REJECTS(r, apixo_request_set_callback_url(r, "ftp://example.com/hook"), "callback_url");
  REJECTS(r, apixo_request_set_callback_url(r, ""), "callback_url");
  REJECTS(r, apixo_request_set_callback_url(r, "hooks.example.com/x"), "callback_url");
  j = to_json(r);
  CHECK_CONTAINS(j, "https://hooks.example.com/a?b=c");
  apixo_free(j);
  /* NULL removes it: request_type back to "async" */
  CHECK_CODE(apixo_request_set_callback_url(r, NULL), APIXO_OK);
  j = to_json(r);
  CHECK_CONTAINS(j, "\"request_type\":\"async\"");
  CHECK(j && strstr(j, "callback_url") == NULL);
  apixo_free(j);
  apixo_request_free(r);
}

static void test_image_urls(void) {
  apixo_request *r = apixo_request_new("seedream-5-0");
  REJECTS(r, apixo_request_add_image_url(r, "ftp://example.com/a.png"), "image_urls");
  REJECTS(r, apixo_request_add_image_url(r, ""), "image_urls");
  REJECTS(r, apixo_request_add_image_url(r, "example.com/a.png"), "image_urls");
  char url[64];
  for (int i = 1; i <= 14; i++) {
    snprintf(url, sizeof url, "https://example.com/%d.png", i);
    CHECK_CODE(apixo_request_add_image_url(r, url), APIXO_OK);
  }
  REJECTS(r, apixo_request_add_image_url(r, "https://example.com/15.png"), "image_urls");
  CHECK_CONTAINS(apixo_last_error(), "14");
  char *j = to_json(r);
  CHECK_CONTAINS(j, "\"image_urls\":[\"https://example.com/1.png\",\"https://example.com/2.png\"");
  CHECK_CONTAINS(j, "\"https://example.com/14.png\"]");
  CHECK(j && strstr(j, "15.png") == NULL);
  apixo_free(j);
  apixo_request_free(r);
}

static void test_tag(void) {
  apixo_request *r = apixo_request_new("seedream-5-0");
  CHECK_CODE(apixo_request_set_tag(r, "order-12345"), APIXO_OK);
  REJECTS(r, apixo_request_set_tag(r, ""), "tag");
  char *j = to_json(r);
  CHECK(j && strstr(j, "order-12345") == NULL); /* never sent */
  CHECK(j && strstr(j, "tag") == NULL);
  apixo_free(j);
  CHECK_CODE(apixo_request_set_tag(r, NULL), APIXO_OK);
  /* the header names only an empty tag as invalid: any other string is the caller's */
  char *longtag = repeat("x", 4096);
  CHECK_CODE(apixo_request_set_tag(r, longtag), APIXO_OK);
  free(longtag);
  CHECK_CODE(apixo_request_set_tag(r, "line\nbreak \xc3\xa9"), APIXO_OK);
  apixo_request_free(r);
}

static void test_set_input_json(void) {
  apixo_request *r = apixo_request_new("seedream-5-0");
  /* known fields are validated like the typed setters */
  CHECK_CODE(apixo_request_set_input_json(r, "max_images", "3"), APIXO_OK);
  REJECTS(r, apixo_request_set_input_json(r, "max_images", "11"), "max_images");
  REJECTS(r, apixo_request_set_input_json(r, "max_images", "0"), "max_images");
  REJECTS(r, apixo_request_set_input_json(r, "max_images", "\"3\""), "max_images");
  REJECTS(r, apixo_request_set_input_json(r, "max_images", "true"), "max_images");
  REJECTS(r, apixo_request_set_input_json(r, "max_images", "2.5"), "max_images");
  REJECTS(r, apixo_request_set_input_json(r, "prompt", "\"\""), "prompt");
  REJECTS(r, apixo_request_set_input_json(r, "prompt", "42"), "prompt");
  CHECK_CODE(apixo_request_set_input_json(r, "prompt", "\"from json\""), APIXO_OK);
  CHECK_CODE(apixo_request_set_input_json(r, "web_search", "false"), APIXO_OK);
  REJECTS(r, apixo_request_set_input_json(r, "web_search", "1"), "web_search");
  REJECTS(r, apixo_request_set_input_json(r, "resolution", "\"4K\""), "resolution");
  CHECK_CODE(apixo_request_set_input_json(r, "resolution", "\"3K\""), APIXO_OK);
  REJECTS(r, apixo_request_set_input_json(r, "aspect_ratio", "\"5:4\""), "aspect_ratio");
  REJECTS(r, apixo_request_set_input_json(r, "output_format", "\"gif\""), "output_format");
  REJECTS(r, apixo_request_set_input_json(r, "image_urls", "[\"ftp://x/y.png\"]"), "image_urls");
  REJECTS(r, apixo_request_set_input_json(r, "image_urls", "\"https://x/y.png\""), "image_urls");
  char many[2048] = "[";
  for (int i = 1; i <= 15; i++) {
    char u[64];
    snprintf(u, sizeof u, "%s\"https://example.com/%d.png\"", i > 1 ? "," : "", i);
    strcat(many, u);
  }
  strcat(many, "]");
  REJECTS(r, apixo_request_set_input_json(r, "image_urls", many), "image_urls");
  CHECK_CODE(apixo_request_set_input_json(r, "image_urls", "[\"https://a.example/x.png\"]"),
             APIXO_OK);
  /* not JSON at all */
  const char *bad_json[] = {"", "{", "tru", "1 2", "'x'", "[1,]", "{\"a\":}", "nul"};
  for (size_t i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
    REJECTS(r, apixo_request_set_input_json(r, "extra", bad_json[i]), "JSON");
  }
  REJECTS(r, apixo_request_set_input_json(r, "", "1"), "");
  /* unknown fields pass through, any JSON */
  CHECK_CODE(apixo_request_set_input_json(r, "seed", "42"), APIXO_OK);
  CHECK_CODE(apixo_request_set_input_json(r, "style", "{\"x\":1,\"y\":[true,null]}"), APIXO_OK);
  char *j = to_json(r);
  CHECK_STR(j,
            "{\"request_type\":\"async\",\"input\":{\"max_images\":3,\"prompt\":\"from json\","
            "\"web_search\":false,\"resolution\":\"3K\",\"image_urls\":[\"https://a.example/x.png\"],"
            "\"seed\":42,\"style\":{\"x\":1,\"y\":[true,null]}}}");
  apixo_free(j);
  /* replacing a field keeps one copy of it */
  CHECK_CODE(apixo_request_set_max_images(r, 7), APIXO_OK);
  CHECK_CODE(apixo_request_set_input_json(r, "seed", "43"), APIXO_OK);
  j = to_json(r);
  CHECK_CONTAINS(j, "\"max_images\":7");
  CHECK_CONTAINS(j, "\"seed\":43");
  CHECK(j && strstr(j, "\"max_images\":3") == NULL);
  CHECK(j && strstr(j, "\"seed\":42") == NULL);
  apixo_free(j);
  apixo_request_free(r);
}

static void test_validate(void) {
  apixo_request *r = apixo_request_new("seedream-5-0");
  CHECK_CODE(apixo_request_validate(r), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "prompt");
  CHECK_CODE(apixo_request_set_prompt(r, "a cat"), APIXO_OK);
  CHECK_CODE(apixo_request_validate(r), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "max_images");
  CHECK_CODE(apixo_request_set_max_images(r, 1), APIXO_OK);
  CHECK_CODE(apixo_request_validate(r), APIXO_OK);
  CHECK_CODE(apixo_request_set_mode(r, "image-to-image"), APIXO_OK);
  CHECK_CODE(apixo_request_validate(r), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "image_urls");
  CHECK_CODE(apixo_request_add_image_url(r, "https://example.com/ref.png"), APIXO_OK);
  CHECK_CODE(apixo_request_validate(r), APIXO_OK);
  /* 14 URLs validate; the 15th is refused by the setter and the request stays valid */
  char url[64];
  for (int i = 2; i <= 14; i++) {
    snprintf(url, sizeof url, "https://example.com/%d.png", i);
    CHECK_CODE(apixo_request_add_image_url(r, url), APIXO_OK);
  }
  CHECK_CODE(apixo_request_validate(r), APIXO_OK);
  CHECK_CODE(apixo_request_add_image_url(r, "https://example.com/15.png"), INVALID);
  CHECK_CODE(apixo_request_validate(r), APIXO_OK);
  apixo_request_free(r);

  /* a request with a callback URL validates; removing the URL validates as async */
  r = h_request("a dog", 1);
  CHECK_CODE(apixo_request_set_callback_url(r, "https://example.com/hook"), APIXO_OK);
  CHECK_CODE(apixo_request_validate(r), APIXO_OK);
  CHECK_CODE(apixo_request_set_callback_url(r, NULL), APIXO_OK);
  CHECK_CODE(apixo_request_validate(r), APIXO_OK);
  apixo_request_free(r);
}

static void test_to_json_exact(void) {
  apixo_request *r = apixo_request_new("seedream-5-0");
  CHECK_CODE(apixo_request_set_mode(r, "image-to-image"), APIXO_OK);
  CHECK_CODE(apixo_request_set_prompt(r, "a cozy caf\xc3\xa9, \"quoted\" \\ slash/"), APIXO_OK);
  CHECK_CODE(apixo_request_set_max_images(r, 4), APIXO_OK);
  CHECK_CODE(apixo_request_add_image_url(r, "https://example.com/a.png"), APIXO_OK);
  CHECK_CODE(apixo_request_add_image_url(r, "http://example.com/b.jpg"), APIXO_OK);
  CHECK_CODE(apixo_request_set_resolution(r, "2048*2048"), APIXO_OK);
  CHECK_CODE(apixo_request_set_aspect_ratio(r, "16:9"), APIXO_OK);
  CHECK_CODE(apixo_request_set_sequential(r, "auto"), APIXO_OK);
  CHECK_CODE(apixo_request_set_web_search(r, 1), APIXO_OK);
  CHECK_CODE(apixo_request_set_output_format(r, "png"), APIXO_OK);
  CHECK_CODE(apixo_request_set_prompt_optimize_mode(r, "standard"), APIXO_OK);
  CHECK_CODE(apixo_request_set_provider(r, "official"), APIXO_OK);
  CHECK_CODE(apixo_request_set_callback_url(r, "https://hooks.example.com/apixo?x=1"), APIXO_OK);
  CHECK_CODE(apixo_request_set_tag(r, "order-7"), APIXO_OK);
  CHECK_CODE(apixo_request_set_input_json(r, "seed", "42"), APIXO_OK);
  CHECK_CODE(apixo_request_validate(r), APIXO_OK);
  const char *want =
      "{\"request_type\":\"callback\",\"callback_url\":\"https://hooks.example.com/apixo?x=1\","
      "\"provider\":\"official\",\"input\":{\"mode\":\"image-to-image\","
      "\"prompt\":\"a cozy caf\xc3\xa9, \\\"quoted\\\" \\\\ slash/\",\"max_images\":4,"
      "\"image_urls\":[\"https://example.com/a.png\",\"http://example.com/b.jpg\"],"
      "\"resolution\":\"2048*2048\",\"aspect_ratio\":\"16:9\","
      "\"sequential_image_generation\":\"auto\",\"web_search\":true,\"output_format\":\"png\","
      "\"prompt_optimize_mode\":\"standard\",\"seed\":42}}";
  char *j = to_json(r);
  CHECK_STR(j, want);
  /* the text is valid JSON */
  json_error_t err;
  json_t *parsed = j ? json_loads(j, 0, &err) : NULL;
  CHECK(parsed != NULL);
  json_decref(parsed);
  /* to_json does not change the request: twice gives the same text */
  char *j2 = to_json(r);
  CHECK_STR(j2, j);
  apixo_free(j);
  apixo_free(j2);
  apixo_request_free(r);
}

static void test_unknown_model_passthrough(void) {
  apixo_request *r = apixo_request_new("flux-2");
  CHECK_CODE(apixo_request_validate(r), INVALID); /* no input at all */
  CHECK_CODE(apixo_request_set_prompt(r, ""), INVALID);
  CHECK_CODE(apixo_request_set_prompt(r, "a fox"), APIXO_OK);
  CHECK_CODE(apixo_request_validate(r), APIXO_OK); /* max_images is a seedream rule */
  CHECK_CODE(apixo_request_set_resolution(r, "8K"), APIXO_OK);
  CHECK_CODE(apixo_request_set_aspect_ratio(r, "5:4"), APIXO_OK);
  CHECK_CODE(apixo_request_set_max_images(r, 50), APIXO_OK);
  CHECK_CODE(apixo_request_set_input_json(r, "guidance_scale", "3.5"), APIXO_OK);
  CHECK_CODE(apixo_request_set_input_json(r, "loras", "[{\"name\":\"x\",\"w\":0.5}]"), APIXO_OK);
  CHECK_CODE(apixo_request_set_input_json(r, "bad", "{"), INVALID);
  CHECK_CONTAINS(apixo_last_error(), "JSON");
  CHECK_CODE(apixo_request_set_provider(r, "cheap"), INVALID); /* top-level rules still apply */
  char *j = to_json(r);
  CHECK_STR(j,
            "{\"request_type\":\"async\",\"input\":{\"prompt\":\"a fox\",\"resolution\":\"8K\","
            "\"aspect_ratio\":\"5:4\",\"max_images\":50,\"guidance_scale\":3.5,"
            "\"loras\":[{\"name\":\"x\",\"w\":0.5}]}}");
  apixo_free(j);
  CHECK_CODE(apixo_request_validate(r), APIXO_OK);
  apixo_request_free(r);
}

static void test_copy_independent(void) {
  apixo_request *a = h_request("original", 2);
  CHECK_CODE(apixo_request_set_tag(a, "tag-a"), APIXO_OK);
  CHECK_CODE(apixo_request_add_image_url(a, "https://example.com/1.png"), APIXO_OK);
  apixo_request *b = apixo_request_copy(a);
  CHECK(b != NULL);
  char *ja = to_json(a), *jb = to_json(b);
  CHECK_STR(jb, ja);
  apixo_free(jb);
  CHECK_CODE(apixo_request_set_prompt(a, "changed"), APIXO_OK);
  CHECK_CODE(apixo_request_add_image_url(a, "https://example.com/2.png"), APIXO_OK);
  CHECK_CODE(apixo_request_set_max_images(b, 9), APIXO_OK);
  jb = to_json(b);
  CHECK_CONTAINS(jb, "\"prompt\":\"original\"");
  CHECK_CONTAINS(jb, "\"max_images\":9");
  CHECK(jb && strstr(jb, "2.png") == NULL);
  char *ja2 = to_json(a);
  CHECK_CONTAINS(ja2, "\"max_images\":2");
  CHECK_CONTAINS(ja2, "\"prompt\":\"changed\"");
  apixo_free(ja);
  apixo_free(ja2);
  apixo_free(jb);
  /* the copy outlives the original */
  apixo_request_free(a);
  CHECK_CODE(apixo_request_validate(b), APIXO_OK);
  jb = to_json(b);
  CHECK_CONTAINS(jb, "original");
  apixo_free(jb);
  apixo_request_free(b);
}

int main(void) {
  h_init();
  RUN(test_new_and_free);
  RUN(test_null_arguments);
  RUN(test_prompt);
  RUN(test_max_images);
  RUN(test_resolution);
  RUN(test_enumerations);
  RUN(test_callback_url);
  RUN(test_image_urls);
  RUN(test_tag);
  RUN(test_set_input_json);
  RUN(test_validate);
  RUN(test_to_json_exact);
  RUN(test_unknown_model_passthrough);
  RUN(test_copy_independent);
  return h_finish();
}
