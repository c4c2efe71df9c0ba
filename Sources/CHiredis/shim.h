/* hiredis for Swift: the reply-type macros as constants, and typed access to a reply's
   elements (Swift cannot follow redisReply **element comfortably). Only the synchronous,
   non-variadic API is used (redisCommandArgv), so no variadic shims are needed. */
#ifndef APIXO_CHIREDIS_SHIM_H
#define APIXO_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <sys/time.h>

static inline int apixo_redis_type(const redisReply *r) { return r ? r->type : -1; }
static inline const redisReply *apixo_redis_element(const redisReply *r, size_t i) {
  return (r && r->type == REDIS_REPLY_ARRAY && i < r->elements) ? r->element[i] : (const redisReply *)0;
}
static inline redisContext *apixo_redis_connect_tcp(const char *host, int port, long timeout_ms) {
  struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
  return redisConnectWithTimeout(host, port, tv);
}
static inline redisContext *apixo_redis_connect_unix(const char *path, long timeout_ms) {
  struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
  return redisConnectUnixWithTimeout(path, tv);
}
static inline int apixo_redis_set_timeout(redisContext *c, long timeout_ms) {
  struct timeval tv = { timeout_ms / 1000, (timeout_ms % 1000) * 1000 };
  return redisSetTimeout(c, tv);
}
static inline int apixo_redis_error(const redisContext *c) { return c ? c->err : -1; }
static inline const char *apixo_redis_errstr(const redisContext *c) { return c ? c->errstr : "no context"; }

enum {
  APIXO_REDIS_STRING = REDIS_REPLY_STRING,
  APIXO_REDIS_ARRAY = REDIS_REPLY_ARRAY,
  APIXO_REDIS_INTEGER = REDIS_REPLY_INTEGER,
  APIXO_REDIS_NIL = REDIS_REPLY_NIL,
  APIXO_REDIS_STATUS = REDIS_REPLY_STATUS,
  APIXO_REDIS_ERROR = REDIS_REPLY_ERROR
};
#endif
