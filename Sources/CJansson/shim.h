/* jansson for Swift: json_decref/json_incref are static inline in jansson.h and import as is;
   the type-test macros become inline functions here. */
#ifndef APIXO_CJANSSON_SHIM_H
#define APIXO_CJANSSON_SHIM_H
#include <jansson.h>

static inline int apixo_json_type(const json_t *v) { return v ? (int)json_typeof(v) : -1; }
static inline json_t *apixo_json_incref(json_t *v) { return json_incref(v); }
static inline void apixo_json_decref(json_t *v) { json_decref(v); }
#endif
