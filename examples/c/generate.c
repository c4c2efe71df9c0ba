/* generate.c: one prompt to image files, the blocking way.
 *
 *   generate [--out DIR] [--max-images N] [--resolution 2K] [--aspect-ratio 16:9] PROMPT
 *
 * The API key and base URL come from APIXO_API_KEY and APIXO_BASE_URL. APIXO_TIME_SCALE (a
 * number, e.g. 0.1) is read by this example only, to match a simulator started with
 * --time-scale. */
#include <apixo.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, apixo_code rc) {
  fprintf(stderr, "generate: %s: %s: %s\n", what, apixo_code_name(rc), apixo_last_error());
  return rc == APIXO_ERR_INVALID_ARGUMENT ? 2 : 1;
}

int main(int argc, char **argv) {
  const char *out_dir = "out", *prompt = NULL, *resolution = "2K", *ratio = "1:1";
  int max_images = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--out") && i + 1 < argc) out_dir = argv[++i];
    else if (!strcmp(argv[i], "--max-images") && i + 1 < argc) max_images = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--resolution") && i + 1 < argc) resolution = argv[++i];
    else if (!strcmp(argv[i], "--aspect-ratio") && i + 1 < argc) ratio = argv[++i];
    else if (argv[i][0] != '-' && !prompt) prompt = argv[i];
    else {
      fprintf(stderr, "usage: generate [--out DIR] [--max-images N] [--resolution R] [--aspect-ratio A] PROMPT\n");
      return 2;
    }
  }
  if (!prompt) {
    fprintf(stderr, "usage: generate [--out DIR] [--max-images N] [--resolution R] [--aspect-ratio A] PROMPT\n");
    return 2;
  }

  apixo_options *opts = apixo_options_new();
  const char *scale = getenv("APIXO_TIME_SCALE");
  if (scale && apixo_options_set_time_scale(opts, atof(scale)) != APIXO_OK) {
    apixo_options_free(opts);
    return fail("APIXO_TIME_SCALE", APIXO_ERR_INVALID_ARGUMENT);
  }
  apixo_client *client = NULL;
  apixo_code rc = apixo_client_new(opts, &client);
  apixo_options_free(opts); /* the client keeps its own copy */
  if (rc != APIXO_OK) return fail("client", rc);

  apixo_request *req = apixo_request_new("seedream-5-0");
  if ((rc = apixo_request_set_prompt(req, prompt)) != APIXO_OK ||
      (rc = apixo_request_set_max_images(req, max_images)) != APIXO_OK ||
      (rc = apixo_request_set_resolution(req, resolution)) != APIXO_OK ||
      (rc = apixo_request_set_aspect_ratio(req, ratio)) != APIXO_OK) {
    int status = fail("request", rc);
    apixo_request_free(req);
    apixo_client_free(client);
    return status;
  }

  apixo_task *task = NULL;
  rc = apixo_generate(client, req, 10L * 60 * 1000, &task);
  int status = 0;
  if (rc == APIXO_OK) {
    char **paths = NULL;
    size_t n = 0;
    printf("task %s succeeded in %lld ms\n", apixo_task_id(task), (long long)apixo_task_cost_time_ms(task));
    rc = apixo_download_results(client, task, out_dir, &paths, &n);
    if (rc == APIXO_OK) {
      for (size_t i = 0; i < n; i++) printf("%s\n", paths[i]);
      apixo_free_paths(paths, n);
    } else {
      status = fail("download", rc);
    }
  } else if (rc == APIXO_ERR_TASK_FAILED) {
    fprintf(stderr, "task %s failed: %s: %s\n", apixo_task_id(task), apixo_task_fail_code(task),
            apixo_task_fail_message(task));
    status = 3;
  } else {
    status = fail("generate", rc);
  }
  apixo_task_free(task);
  apixo_request_free(req);
  apixo_client_free(client);
  return status;
}
