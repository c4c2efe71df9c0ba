/* test_tasks.c: the "Tasks" section of apixo.h (snapshots and their accessors).
 *
 *   Every accessor given NULL returns NULL / 0 / APIXO_STATE_PENDING; apixo_task_copy(NULL) is
 *   NULL; apixo_task_free(NULL). After a real apixo_generate: id ("task_..."), model, state
 *   success, result_count == max_images and the URLs, result_url(count) NULL, fail code and
 *   message NULL, times consistent (create > 0, complete >= create, cost > 0, complete near
 *   now), apixo_task_json parses and agrees with the accessors; apixo_task_copy survives the
 *   original; a snapshot from apixo_get_status right after submit is not terminal and has
 *   complete/cost 0; a failed task's fail code/message and no URLs.
 */
#include "harness.h"

#include <string.h>

static void test_null_task(void) {
  CHECK(apixo_task_id(NULL) == NULL);
  CHECK(apixo_task_model(NULL) == NULL);
  CHECK_EQ(apixo_task_state(NULL), APIXO_STATE_PENDING);
  CHECK_EQ(apixo_task_result_count(NULL), 0);
  CHECK(apixo_task_result_url(NULL, 0) == NULL);
  CHECK(apixo_task_fail_code(NULL) == NULL);
  CHECK(apixo_task_fail_message(NULL) == NULL);
  CHECK_EQ(apixo_task_create_time_ms(NULL), 0);
  CHECK_EQ(apixo_task_complete_time_ms(NULL), 0);
  CHECK_EQ(apixo_task_cost_time_ms(NULL), 0);
  CHECK(apixo_task_json(NULL) == NULL);
  CHECK(apixo_task_tag(NULL) == NULL);
  CHECK(apixo_task_copy(NULL) == NULL);
  apixo_task_free(NULL);
}

static void check_success_snapshot(const apixo_task *t, const char *prompt_tag, int n,
                                   int64_t started_ms) {
  const char *id = apixo_task_id(t);
  CHECK(id != NULL && strncmp(id, "task_", 5) == 0);
  CHECK_STR(apixo_task_model(t), "seedream-5-0");
  CHECK_EQ(apixo_task_state(t), APIXO_STATE_SUCCESS);
  CHECK_EQ(apixo_task_result_count(t), n);
  for (int i = 0; i < n; i++) {
    const char *u = apixo_task_result_url(t, (size_t)i);
    CHECK(u != NULL);
    CHECK_CONTAINS(u, "http://");
    CHECK_CONTAINS(u, id);
  }
  CHECK(apixo_task_result_url(t, (size_t)n) == NULL);
  CHECK(apixo_task_result_url(t, (size_t)-1) == NULL);
  CHECK(apixo_task_fail_code(t) == NULL);
  CHECK(apixo_task_fail_message(t) == NULL);
  int64_t create = apixo_task_create_time_ms(t);
  int64_t complete = apixo_task_complete_time_ms(t);
  int64_t cost = apixo_task_cost_time_ms(t);
  int64_t now = h_wall_ms();
  CHECK(create > 0);
  CHECK(create >= started_ms - 1000 && create <= now + 1000);
  CHECK(complete >= create);
  CHECK(complete <= now + 1000);
  CHECK(cost > 0);
  CHECK(cost <= complete - create);
  CHECK_STR(apixo_task_tag(t), prompt_tag);

  const char *text = apixo_task_json(t);
  CHECK(text != NULL);
  json_error_t err;
  json_t *j = text ? json_loads(text, 0, &err) : NULL;
  if (!CHECK(j != NULL && json_is_object(j))) {
    json_decref(j);
    return;
  }
  CHECK_STR(json_string_value(json_object_get(j, "taskId")), id);
  CHECK_STR(json_string_value(json_object_get(j, "state")), "success");
  CHECK_EQ(json_integer_value(json_object_get(j, "createTime")), create);
  CHECK_EQ(json_integer_value(json_object_get(j, "completeTime")), complete);
  CHECK_EQ(json_integer_value(json_object_get(j, "costTime")), cost);
  /* resultJson is a JSON string holding {"resultUrls":[...]} */
  const char *rj = json_string_value(json_object_get(j, "resultJson"));
  CHECK(rj != NULL);
  json_t *r = rj ? json_loads(rj, 0, &err) : NULL;
  json_t *urls = r ? json_object_get(r, "resultUrls") : NULL;
  CHECK(json_is_array(urls));
  CHECK_EQ(json_array_size(urls), n);
  for (size_t i = 0; urls && i < json_array_size(urls); i++)
    CHECK_STR(json_string_value(json_array_get(urls, i)), apixo_task_result_url(t, i));
  json_decref(r);
  json_decref(j);
}

static void test_snapshot_after_generate(void) {
  apixo_client *c = h_client();
  if (!c) return;
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "tasks snapshot"), 3);
  CHECK_CODE(apixo_request_set_tag(r, "snap-tag"), APIXO_OK);
  int64_t started = h_wall_ms();
  apixo_task *t = NULL;
  CHECK_CODE(apixo_generate(c, r, 30000 * h_slow(), &t), APIXO_OK);
  if (!CHECK(t != NULL)) goto out;
  check_success_snapshot(t, "snap-tag", 3, started);

  /* a copy is independent of the original */
  apixo_task *copy = apixo_task_copy(t);
  CHECK(copy != NULL);
  char id[128];
  snprintf(id, sizeof id, "%s", apixo_task_id(t));
  apixo_task_free(t);
  t = NULL;
  CHECK_STR(apixo_task_id(copy), id);
  check_success_snapshot(copy, "snap-tag", 3, started);
  apixo_task *copy2 = apixo_task_copy(copy);
  apixo_task_free(copy);
  CHECK_STR(apixo_task_id(copy2), id);
  CHECK_EQ(apixo_task_result_count(copy2), 3);

  /* get_status of the finished task: the same facts, a fresh owned snapshot */
  apixo_task *s = NULL;
  CHECK_CODE(apixo_get_status(c, "seedream-5-0", id, &s), APIXO_OK);
  CHECK_STR(apixo_task_id(s), id);
  CHECK_EQ(apixo_task_state(s), APIXO_STATE_SUCCESS);
  CHECK_EQ(apixo_task_result_count(s), 3);
  CHECK_EQ(apixo_task_create_time_ms(s), apixo_task_create_time_ms(copy2));
  CHECK_STR(apixo_task_model(s), "seedream-5-0");
  apixo_task_free(s);
  apixo_task_free(copy2);
out:
  apixo_request_free(r);
  apixo_client_free(c);
}

static void test_snapshot_not_terminal(void) {
  apixo_client *c = h_client();
  if (!c) return;
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "tasks fresh"), 1);
  CHECK_CODE(apixo_request_set_resolution(r, "3K"), APIXO_OK); /* 35-50 s scaled */
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_OK);
  if (id) {
    apixo_task *t = NULL;
    CHECK_CODE(apixo_get_status(c, NULL, id, &t), APIXO_OK);
    CHECK_STR(apixo_task_id(t), id);
    apixo_state st = apixo_task_state(t);
    CHECK(st == APIXO_STATE_PENDING || st == APIXO_STATE_PROCESSING);
    CHECK_EQ(apixo_task_result_count(t), 0);
    CHECK(apixo_task_result_url(t, 0) == NULL);
    CHECK(apixo_task_fail_code(t) == NULL);
    CHECK_EQ(apixo_task_complete_time_ms(t), 0);
    CHECK_EQ(apixo_task_cost_time_ms(t), 0);
    CHECK(apixo_task_create_time_ms(t) > 0);
    CHECK_STR(apixo_task_model(t), "seedream-5-0");
    json_error_t err;
    json_t *j = json_loads(apixo_task_json(t), 0, &err);
    CHECK(j != NULL);
    CHECK_STR(json_string_value(json_object_get(j, "state")), apixo_state_name(st));
    json_decref(j);
    apixo_task_free(t);
  }
  apixo_free(id);
  apixo_request_free(r);
  apixo_client_free(c);
}

static void test_failed_snapshot(void) {
  apixo_client *c = h_client();
  if (!c) return;
  char prompt[160], p2[200];
  h_unique_prompt(prompt, sizeof prompt, "tasks failing");
  snprintf(p2, sizeof p2, "[fail:NSFW_DETECTED] %s", prompt);
  apixo_request *r = h_request(p2, 2);
  apixo_task *t = NULL;
  CHECK_CODE(apixo_generate(c, r, 30000 * h_slow(), &t), APIXO_ERR_TASK_FAILED);
  CHECK(t != NULL);
  CHECK_EQ(apixo_task_state(t), APIXO_STATE_FAILED);
  CHECK_STR(apixo_task_fail_code(t), "NSFW_DETECTED");
  CHECK(apixo_task_fail_message(t) != NULL && apixo_task_fail_message(t)[0] != 0);
  CHECK_EQ(apixo_task_result_count(t), 0);
  CHECK(apixo_task_result_url(t, 0) == NULL);
  CHECK(apixo_task_complete_time_ms(t) >= apixo_task_create_time_ms(t));
  CHECK(apixo_task_tag(t) == NULL);
  apixo_task_free(t);
  apixo_request_free(r);
  apixo_client_free(c);
}

int main(void) {
  h_init();
  RUN(test_null_task);
  RUN(test_snapshot_after_generate);
  RUN(test_snapshot_not_terminal);
  RUN(test_failed_snapshot);
  return h_finish();
}
