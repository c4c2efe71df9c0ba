/* Typed wrappers around libcurl's variadic calls, which Swift cannot call directly.
   Every symbol here is static inline and carries the apixo_curl_ prefix, so nothing leaks
   into libapixo.so's exported symbol table. */
#ifndef APIXO_CCURL_SHIM_H
#define APIXO_CCURL_SHIM_H
#include <curl/curl.h>

typedef size_t (*apixo_curl_data_fn)(char *ptr, size_t size, size_t nmemb, void *userdata);

static inline CURLcode apixo_curl_setopt_long(CURL *h, CURLoption o, long v) {
  return curl_easy_setopt(h, o, v);
}
static inline CURLcode apixo_curl_setopt_off(CURL *h, CURLoption o, curl_off_t v) {
  return curl_easy_setopt(h, o, v);
}
static inline CURLcode apixo_curl_setopt_str(CURL *h, CURLoption o, const char *v) {
  return curl_easy_setopt(h, o, v);
}
static inline CURLcode apixo_curl_setopt_ptr(CURL *h, CURLoption o, void *v) {
  return curl_easy_setopt(h, o, v);
}
static inline CURLcode apixo_curl_setopt_slist(CURL *h, CURLoption o, struct curl_slist *v) {
  return curl_easy_setopt(h, o, v);
}
static inline CURLcode apixo_curl_setopt_datafn(CURL *h, CURLoption o, apixo_curl_data_fn v) {
  return curl_easy_setopt(h, o, v);
}
static inline CURLcode apixo_curl_setopt_prereq(CURL *h, curl_prereq_callback v) {
  return curl_easy_setopt(h, CURLOPT_PREREQFUNCTION, v);
}
static inline CURLcode apixo_curl_getinfo_long(CURL *h, CURLINFO i, long *out) {
  return curl_easy_getinfo(h, i, out);
}
static inline CURLcode apixo_curl_getinfo_ptr(CURL *h, CURLINFO i, void **out) {
  return curl_easy_getinfo(h, i, out);
}
static inline CURLcode apixo_curl_getinfo_off(CURL *h, CURLINFO i, curl_off_t *out) {
  return curl_easy_getinfo(h, i, out);
}
static inline CURLMcode apixo_curl_multi_setopt_long(CURLM *m, CURLMoption o, long v) {
  return curl_multi_setopt(m, o, v);
}
#endif
