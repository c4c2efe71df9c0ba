/* test_webhooks.c: the "Webhooks" section of apixo.h (apixo_webhook_ingest).
 *
 *   - end to end: a request with callback_url pointing at a tiny HTTP receiver run here (a
 *     thread listening on 127.0.0.1:0 that hands every body to apixo_webhook_ingest) which
 *     answers 500 to the first delivery, so the simulator delivers again: the callback fires
 *     exactly once (OK), every ingest returns OK (the repeat too, and again by hand), and the
 *     simulator's stats show >= 2 webhook attempts for the task, the first answered 500;
 *   - a webhook completes a blocking apixo_wait;
 *   - malformed bodies are APIXO_ERR_PROTOCOL: not JSON, a JSON array, no taskId, an unknown
 *     state, a resultJson that is not JSON, empty; NULL client/body are INVALID_ARGUMENT;
 *   - an unknown task id is APIXO_ERR_NOT_FOUND with *out set (its model NULL);
 *   - a bare status object (no envelope) completes a tracked task; a non-terminal status
 *     completes nothing; a failed status fires TASK_FAILED; `len` bounds the body.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define INVALID APIXO_ERR_INVALID_ARGUMENT

static long T(long ms) { return ms * h_slow(); }

/* ------------------------------------------------ a tiny webhook receiver */

enum { MAX_DELIVERIES = 32 };

struct receiver {
  int fd;
  int port;
  pthread_t thread;
  volatile int stop;
  apixo_client *client;
  int fail_first; /* answer 500 to this many deliveries first */
  pthread_mutex_t lock;
  int deliveries;
  int ingest_rc[MAX_DELIVERIES];
  char *bodies[MAX_DELIVERIES];
  size_t lens[MAX_DELIVERIES];
  char paths[MAX_DELIVERIES][128];
};

static const char *find_ci(const char *hay, size_t n, const char *needle) {
  size_t m = strlen(needle);
  for (size_t i = 0; i + m <= n; i++) {
    size_t k = 0;
    while (k < m && tolower((unsigned char)hay[i + k]) == tolower((unsigned char)needle[k])) k++;
    if (k == m) return hay + i;
  }
  return NULL;
}

static void handle_conn(struct receiver *rv, int cfd) {
  char *buf = malloc(1 << 20);
  size_t n = 0, cap = 1 << 20;
  const char *hdr_end = NULL;
  while (n < cap) {
    ssize_t got = recv(cfd, buf + n, cap - n, 0);
    if (got <= 0) break;
    n += (size_t)got;
    const char *e = NULL;
    for (size_t i = 0; i + 3 < n; i++)
      if (!memcmp(buf + i, "\r\n\r\n", 4)) {
        e = buf + i + 4;
        break;
      }
    if (e) {
      hdr_end = e;
      const char *cl = find_ci(buf, (size_t)(e - buf), "content-length:");
      size_t want = cl ? (size_t)strtoul(cl + 15, NULL, 10) : 0;
      size_t have = n - (size_t)(e - buf);
      while (have < want && n < cap) {
        got = recv(cfd, buf + n, cap - n, 0);
        if (got <= 0) break;
        n += (size_t)got;
        have += (size_t)got;
      }
      break;
    }
  }
  int status = 400;
  if (hdr_end) {
    size_t off = (size_t)(hdr_end - buf);
    size_t blen = n - off;
    char *body = malloc(blen + 1);
    memcpy(body, hdr_end, blen);
    body[blen] = 0;
    int idx;
    pthread_mutex_lock(&rv->lock);
    idx = rv->deliveries++;
    pthread_mutex_unlock(&rv->lock);
    apixo_task *t = NULL;
    int rc = apixo_webhook_ingest(rv->client, body, blen, &t);
    apixo_task_free(t);
    status = idx < rv->fail_first ? 500 : 200;
    pthread_mutex_lock(&rv->lock);
    if (idx < MAX_DELIVERIES) {
      rv->ingest_rc[idx] = rc;
      rv->bodies[idx] = body;
      rv->lens[idx] = blen;
      const char *sp = memchr(buf, ' ', off);
      const char *sp2 = sp ? memchr(sp + 1, ' ', off - (size_t)(sp + 1 - buf)) : NULL;
      if (sp && sp2) snprintf(rv->paths[idx], sizeof rv->paths[idx], "%.*s", (int)(sp2 - sp - 1), sp + 1);
      body = NULL;
    }
    pthread_mutex_unlock(&rv->lock);
    free(body);
  }
  char resp[160];
  snprintf(resp, sizeof resp,
           "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n"
           "Connection: close\r\n\r\nok",
           status, status == 200 ? "OK" : status == 500 ? "Internal Server Error" : "Bad Request");
  ssize_t w = send(cfd, resp, strlen(resp), MSG_NOSIGNAL);
  (void)w;
  free(buf);
}

static void *receiver_main(void *p) {
  struct receiver *rv = p;
  while (!rv->stop) {
    struct pollfd pfd = {rv->fd, POLLIN, 0};
    int r = poll(&pfd, 1, 50);
    if (r <= 0) continue;
    int cfd = accept(rv->fd, NULL, NULL);
    if (cfd < 0) continue;
    handle_conn(rv, cfd);
    close(cfd);
  }
  return NULL;
}

static int receiver_start(struct receiver *rv, apixo_client *c, int fail_first) {
  memset(rv, 0, sizeof *rv);
  pthread_mutex_init(&rv->lock, NULL);
  rv->client = c;
  rv->fail_first = fail_first;
  rv->fd = h_listen_loopback(16, &rv->port);
  if (rv->fd < 0) return -1;
  return pthread_create(&rv->thread, NULL, receiver_main, rv);
}

static void receiver_stop(struct receiver *rv) {
  rv->stop = 1;
  pthread_join(rv->thread, NULL);
  close(rv->fd);
  for (int i = 0; i < MAX_DELIVERIES; i++) free(rv->bodies[i]);
  pthread_mutex_destroy(&rv->lock);
}

static int receiver_count(struct receiver *rv) {
  pthread_mutex_lock(&rv->lock);
  int n = rv->deliveries;
  pthread_mutex_unlock(&rv->lock);
  return n;
}

static int wait_deliveries(struct receiver *rv, int n, double seconds) {
  double deadline = h_now() + seconds * h_slow();
  while (receiver_count(rv) < n) {
    if (h_now() > deadline) return 0;
    h_sleep_ms(10);
  }
  return 1;
}

/* ------------------------------------------------ tests */

static void test_webhook_end_to_end(void) {
  sim_reset();
  apixo_client *c = h_client();
  if (!c) return;
  struct receiver rv;
  if (!CHECK_EQ(receiver_start(&rv, c, 1), 0)) {
    apixo_client_free(c);
    return;
  }
  char url[128], prompt[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/hook?src=apixo", rv.port);
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "webhook e2e"), 2);
  CHECK_CODE(apixo_request_set_callback_url(r, url), APIXO_OK);
  h_slot s;
  memset(&s, 0, sizeof s);
  CHECK_CODE(apixo_submit_async(c, r, h_slot_cb, &s), APIXO_OK);
  /* the first delivery is answered 500; the simulator retries after 30 s x 0.01 */
  CHECK(wait_deliveries(&rv, 2, 15));
  CHECK_CODE(apixo_drain(c, T(20000)), APIXO_OK);
  h_sleep_ms(50);
  CHECK_EQ(s.fired, 1);
  CHECK_CODE(s.code, APIXO_OK);
  CHECK_EQ(s.state, APIXO_STATE_SUCCESS);
  int n = receiver_count(&rv);
  CHECK(n >= 2);
  pthread_mutex_lock(&rv.lock);
  for (int i = 0; i < n && i < MAX_DELIVERIES; i++) {
    CHECK_CODE(rv.ingest_rc[i], APIXO_OK);
    CHECK_STR(rv.paths[i], "/hook?src=apixo");
    CHECK(rv.bodies[i] && strstr(rv.bodies[i], s.id) != NULL);
  }
  /* the repeat once more, by hand: OK, nothing fires */
  if (rv.bodies[1]) {
    apixo_task *t = NULL;
    CHECK_CODE(apixo_webhook_ingest(c, rv.bodies[1], rv.lens[1], &t), APIXO_OK);
    CHECK_STR(apixo_task_id(t), s.id);
    CHECK_EQ(apixo_task_state(t), APIXO_STATE_SUCCESS);
    CHECK_EQ(apixo_task_result_count(t), 2);
    apixo_task_free(t);
    CHECK_CODE(apixo_webhook_ingest(c, rv.bodies[0], rv.lens[0], NULL), APIXO_OK);
  }
  pthread_mutex_unlock(&rv.lock);
  h_sleep_ms(50);
  CHECK_EQ(s.fired, 1);

  json_t *st = sim_stats();
  CHECK(stats_int(st, "webhooks.attempts") >= 2);
  CHECK(stats_int(st, "webhooks.delivered") >= 1);
  json_t *rec = json_object_get(json_object_get(json_object_get(st, "webhooks"), "by_task"), s.id);
  CHECK(rec != NULL);
  CHECK(json_integer_value(json_object_get(rec, "attempts")) >= 2);
  json_t *outcomes = json_object_get(rec, "outcomes");
  CHECK_STR(json_string_value(json_array_get(outcomes, 0)), "500");
  CHECK_STR(json_string_value(json_array_get(outcomes, 1)), "200");
  CHECK_EQ(stats_prompt(st, "submits", prompt), 1);
  json_decref(st);
  apixo_request_free(r);
  receiver_stop(&rv);
  apixo_client_free(c);
}

struct waiter_arg {
  apixo_client *c;
  char id[128];
  int code;
  double took;
};

static void *waiter_main(void *p) {
  struct waiter_arg *a = p;
  apixo_task *t = NULL;
  double t0 = h_now();
  a->code = apixo_wait(a->c, NULL, a->id, T(30000), &t);
  a->took = h_now() - t0;
  apixo_task_free(t);
  return NULL;
}

static void test_webhook_completes_wait(void) {
  sim_reset();
  apixo_client *c = h_client();
  if (!c) return;
  struct receiver rv;
  if (!CHECK_EQ(receiver_start(&rv, c, 0), 0)) {
    apixo_client_free(c);
    return;
  }
  char url[128], prompt[128];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/wh", rv.port);
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "webhook wait"), 1);
  CHECK_CODE(apixo_request_set_callback_url(r, url), APIXO_OK);
  struct waiter_arg wa;
  memset(&wa, 0, sizeof wa);
  wa.c = c;
  char *id = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_OK);
  if (id) {
    snprintf(wa.id, sizeof wa.id, "%s", id);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, waiter_main, &wa), 0);
    pthread_join(th, NULL);
    CHECK_CODE(wa.code, APIXO_OK);
    CHECK(receiver_count(&rv) >= 1);
    json_t *st = sim_stats();
    h_note("wait returned after %.2f s; webhook attempts %lld; polls of the task %lld", wa.took,
           stats_int(st, "webhooks.attempts"), stats_int(json_object_get(st, "polls"), id));
    json_decref(st);
  }
  apixo_free(id);
  apixo_request_free(r);
  receiver_stop(&rv);
  apixo_client_free(c);
}

static void test_malformed_bodies(void) {
  apixo_client *c = h_client();
  if (!c) return;
  const char *bad[] = {
      "not json at all",
      "[1,2,3]",
      "{\"code\":200,\"message\":\"success\",\"data\":{\"state\":\"success\"}}",
      "{\"taskId\":\"task_abc\",\"state\":\"exploded\"}",
      "{\"code\":200,\"data\":{\"taskId\":\"task_abc\",\"state\":\"success\","
      "\"resultJson\":\"{not json\"}}",
      "{\"taskId\":\"task_abc\"}",
      "{\"taskId\":42,\"state\":\"success\"}",
      "\"a string\"",
      "{\"taskId\":\"task_abc\",\"state\":\"success\",\"resultJson\":\"{\\\"resultUrls\\\":7}\"}",
      "{",
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    apixo_task *t = (apixo_task *)&t;
    CHECK_CODE(apixo_webhook_ingest(c, bad[i], strlen(bad[i]), &t), APIXO_ERR_PROTOCOL);
    CHECK(t == (apixo_task *)&t); /* untouched */
    CHECK(apixo_last_error()[0] != 0);
  }
  CHECK_CODE(apixo_webhook_ingest(c, "", 0, NULL), APIXO_ERR_PROTOCOL);
  /* len bounds the body: the first 5 bytes of a valid body are not JSON */
  const char *valid = "{\"taskId\":\"task_abc\",\"state\":\"processing\"}";
  CHECK_CODE(apixo_webhook_ingest(c, valid, 5, NULL), APIXO_ERR_PROTOCOL);
  CHECK_CODE(apixo_webhook_ingest(NULL, valid, strlen(valid), NULL), INVALID);
  CHECK_CODE(apixo_webhook_ingest(c, NULL, 10, NULL), INVALID);
  apixo_client_free(c);
}

static void test_unknown_task(void) {
  apixo_client *c = h_client();
  if (!c) return;
  const char *body =
      "{\"code\":200,\"message\":\"success\",\"data\":{\"taskId\":\"task_unknown_to_me\","
      "\"state\":\"success\",\"resultJson\":\"{\\\"resultUrls\\\":[\\\"http://x.example/a.png\\\"]}\","
      "\"costTime\":1000,\"createTime\":1700000000000,\"completeTime\":1700000001000,"
      "\"extraField\":{\"ignored\":true}},\"alsoExtra\":1}";
  apixo_task *t = NULL;
  CHECK_CODE(apixo_webhook_ingest(c, body, strlen(body), &t), APIXO_ERR_NOT_FOUND);
  if (CHECK(t != NULL)) {
    CHECK_STR(apixo_task_id(t), "task_unknown_to_me");
    CHECK(apixo_task_model(t) == NULL);
    CHECK_EQ(apixo_task_state(t), APIXO_STATE_SUCCESS);
    CHECK_EQ(apixo_task_result_count(t), 1);
    CHECK_STR(apixo_task_result_url(t, 0), "http://x.example/a.png");
    CHECK_EQ(apixo_task_create_time_ms(t), 1700000000000LL);
    CHECK_EQ(apixo_task_complete_time_ms(t), 1700000001000LL);
    CHECK_EQ(apixo_task_cost_time_ms(t), 1000);
  }
  apixo_task_free(t);
  CHECK_CODE(apixo_webhook_ingest(c, body, strlen(body), NULL), APIXO_ERR_NOT_FOUND);
  apixo_client_free(c);
}

static void test_bare_status_and_states(void) {
  apixo_client *c = h_client();
  if (!c) return;
  char prompt[128];
  apixo_request *r = h_request(h_unique_prompt(prompt, sizeof prompt, "webhook bare"), 1);
  CHECK_CODE(apixo_request_set_resolution(r, "3K"), APIXO_OK);
  char *id = NULL, *id2 = NULL;
  CHECK_CODE(apixo_submit(c, r, &id), APIXO_OK);
  CHECK_CODE(apixo_submit(c, r, &id2), APIXO_OK);
  if (!id || !id2) goto out;
  h_slot s, s2;
  memset(&s, 0, sizeof s);
  memset(&s2, 0, sizeof s2);
  CHECK_CODE(apixo_watch(c, NULL, id, h_slot_cb, &s), APIXO_OK);
  CHECK_CODE(apixo_watch(c, NULL, id2, h_slot_cb, &s2), APIXO_OK);
  char body[1024];
  int64_t now = h_wall_ms();
  /* non-terminal: updates, completes nothing */
  snprintf(body, sizeof body, "{\"taskId\":\"%s\",\"state\":\"processing\",\"createTime\":%lld}",
           id, (long long)now);
  apixo_task *t = NULL;
  CHECK_CODE(apixo_webhook_ingest(c, body, strlen(body), &t), APIXO_OK);
  CHECK_EQ(apixo_task_state(t), APIXO_STATE_PROCESSING);
  CHECK_STR(apixo_task_model(t), "seedream-5-0"); /* tracked: the model is known */
  apixo_task_free(t);
  h_sleep_ms(20);
  CHECK_EQ(s.fired, 0);
  /* a bare success status: completes it once */
  snprintf(body, sizeof body,
           "{\"taskId\":\"%s\",\"state\":\"success\",\"resultJson\":"
           "\"{\\\"resultUrls\\\":[\\\"http://127.0.0.1:1/files/bare.png\\\"]}\","
           "\"costTime\":5,\"createTime\":%lld,\"completeTime\":%lld}",
           id, (long long)now, (long long)now + 5);
  t = NULL;
  CHECK_CODE(apixo_webhook_ingest(c, body, strlen(body), &t), APIXO_OK);
  CHECK_EQ(apixo_task_state(t), APIXO_STATE_SUCCESS);
  CHECK_STR(apixo_task_result_url(t, 0), "http://127.0.0.1:1/files/bare.png");
  apixo_task_free(t);
  /* the envelope form with a failed state */
  snprintf(body, sizeof body,
           "{\"code\":200,\"message\":\"success\",\"data\":{\"taskId\":\"%s\",\"state\":\"failed\","
           "\"failCode\":\"SensitiveContentDetected\",\"failMsg\":\"nope\",\"createTime\":%lld,"
           "\"completeTime\":%lld}}",
           id2, (long long)now, (long long)now + 5);
  CHECK_CODE(apixo_webhook_ingest(c, body, strlen(body), NULL), APIXO_OK);
  CHECK(h_wait_slots(&s, 1, 10));
  CHECK(h_wait_slots(&s2, 1, 10));
  CHECK_CODE(apixo_drain(c, T(10000)), APIXO_OK);
  /* a repeat of the bare delivery: OK, fires nothing */
  snprintf(body, sizeof body,
           "{\"taskId\":\"%s\",\"state\":\"success\",\"resultJson\":"
           "\"{\\\"resultUrls\\\":[\\\"http://127.0.0.1:1/files/bare.png\\\"]}\"}",
           id);
  CHECK_CODE(apixo_webhook_ingest(c, body, strlen(body), NULL), APIXO_OK);
  h_sleep_ms(30);
  h_slots_lock();
  CHECK_EQ(s.fired, 1);
  CHECK_CODE(s.code, APIXO_OK);
  CHECK_STR(s.id, id);
  CHECK_EQ(s2.fired, 1);
  CHECK_CODE(s2.code, APIXO_ERR_TASK_FAILED);
  CHECK_EQ(s2.state, APIXO_STATE_FAILED);
  h_slots_unlock();
  /* a blocking wait sees the webhook's outcome too */
  t = NULL;
  CHECK_CODE(apixo_wait(c, NULL, id2, T(10000), &t), APIXO_ERR_TASK_FAILED);
  CHECK_STR(apixo_task_fail_code(t), "SensitiveContentDetected");
  apixo_task_free(t);
out:
  apixo_free(id);
  apixo_free(id2);
  apixo_request_free(r);
  apixo_client_free(c);
}

int main(void) {
  h_init();
  RUN(test_webhook_end_to_end);
  RUN(test_webhook_completes_wait);
  RUN(test_malformed_bodies);
  RUN(test_unknown_task);
  RUN(test_bare_status_and_states);
  return h_finish();
}
