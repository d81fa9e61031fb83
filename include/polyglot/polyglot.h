/* polyglot.h: the umbrella header of libpolyglot. Version, error codes, the
 * string slice every API uses, the allocator hook and small helpers that the
 * CLI and hosts share (key hashing). Include this, or one of the headers it
 * includes; nothing else in the tree is public. */
#ifndef POLYGLOT_POLYGLOT_H
#define POLYGLOT_POLYGLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define PG_EXTERN __attribute__((visibility("default")))
#else
#define PG_EXTERN
#endif

#define PG_VERSION_MAJOR 0
#define PG_VERSION_MINOR 1
#define PG_VERSION_PATCH 0
#define PG_VERSION_STRING "0.1.0"

/** The library's version string ("0.1.0"); static storage. Any thread. */
PG_EXTERN const char *pg_version(void);

/* Error codes. Functions return PG_OK (0), a negative pg_err on failure, or,
 * only where their doc says so, PG_DECLINED ("not mine, try the next") or
 * PG_PENDING ("a callback follows, exactly once, from the loop"). */
#define PG_ERR_MAP(XX)                                                        \
    XX(EINVAL, -1, "invalid argument")                                        \
    XX(ENOMEM, -2, "out of memory")                                           \
    XX(ETOOBIG, -3, "size limit exceeded")                                    \
    XX(EBUSY, -4, "not allowed once the gateway has started")                 \
    XX(ENOENT, -5, "not found")                                               \
    XX(EIO, -6, "input/output error")                                         \
    XX(ECONFIG, -7, "invalid configuration")                                  \
    XX(EPARSE, -8, "malformed input")                                         \
    XX(ETIMEDOUT, -9, "timed out")                                            \
    XX(ECANCELED, -10, "canceled")                                            \
    XX(EUPSTREAM, -11, "upstream error")                                      \
    XX(EUNSUPPORTED, -12, "not supported")                                    \
    XX(ESTATE, -13, "wrong state for this call")                              \
    XX(EABI, -14, "vtable ABI version not supported")                         \
    XX(EEXIST, -15, "already exists")                                         \
    XX(ELISTEN, -16, "cannot listen on the address")                          \
    XX(ESYS, -17, "system call failed")

typedef enum pg_err {
    PG_OK = 0,
    PG_DECLINED = 1,
    PG_PENDING = 2,
#define PG__ERR_ENUM(name, code, text) PG_##name = (code),
    PG_ERR_MAP(PG__ERR_ENUM)
#undef PG__ERR_ENUM
} pg_err_t;

/** Human text for a pg_err code ("out of memory"); static storage. */
PG_EXTERN const char *pg_strerror(int err);
/** The code's name ("PG_ENOMEM"); static storage. */
PG_EXTERN const char *pg_err_name(int err);

/** A borrowed, length-carrying view of bytes. Not NUL-terminated by
 * contract; passed by value. The owner of the bytes says how long they live. */
typedef struct pg_str {
    const char *p;
    size_t n;
} pg_str_t;

#define PG_STR(lit) ((pg_str_t){(lit), sizeof(lit) - 1})
#define PG_STR_NULL ((pg_str_t){NULL, 0})

/** A key/value pair of slices (headers, provider options). */
typedef struct pg_kv {
    pg_str_t key;
    pg_str_t value;
} pg_kv_t;

/** Replaces the allocator used by everything in libpolyglot (and by cJSON
 * while the library parses). All four must be given. Call before any other
 * function, from one thread; returns PG_EINVAL if one is NULL. */
typedef void *(*pg_malloc_fn)(size_t size);
typedef void *(*pg_realloc_fn)(void *ptr, size_t size);
typedef void *(*pg_calloc_fn)(size_t count, size_t size);
typedef void (*pg_free_fn)(void *ptr);
PG_EXTERN int pg_set_allocator(pg_malloc_fn malloc_fn, pg_realloc_fn realloc_fn,
                               pg_calloc_fn calloc_fn, pg_free_fn free_fn);

/** Writes the lowercase hex SHA-256 of key[0..len) and a NUL into out: the
 * form tenants[].api_keys[].key_hash takes. Any thread. */
PG_EXTERN void pg_hash_key(const char *key, size_t len, char out[65]);

#ifdef __cplusplus
}
#endif

#include "polyglot/gateway.h"
#include "polyglot/ports.h"
#include "polyglot/provider.h"

#endif
