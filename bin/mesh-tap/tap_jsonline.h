/*  tap_jsonline.h - one line of NDJSON read by mesh-tap (pub --stdin, play)
    turned into a msgpack object tree that can be asked for its keys. The
    JSON goes through the library's zmesh_json_to_msgpack, so what the tool
    accepts is exactly what the library calls JSON. */
#ifndef TAP_JSONLINE_H_INCLUDED
#define TAP_JSONLINE_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct {
    void *bytes; // the msgpack form of the line
    size_t size;
    msgpack_unpacked unpacked;
    bool ready;
} tap_jsonline_t;

/*  Parses `text` (exactly one JSON value, whitespace around it allowed).
    Returns 0, ZMESH_EJSON or ZMESH_ENOMEM; free the line with
    tap_jsonline_free whatever the result. */
int tap_jsonline_parse(tap_jsonline_t *line, const char *text, size_t size);

/*  The whole value, or NULL when the line was not parsed. */
const msgpack_object *tap_jsonline_root(const tap_jsonline_t *line);

/*  The value under `key` when the line is a JSON object holding it (the
    first, if the key repeats), else NULL. */
const msgpack_object *tap_jsonline_get(const tap_jsonline_t *line,
                                       const char *key);

/*  Whether `object` is a string equal to `text`. */
bool tap_jsonline_is(const msgpack_object *object, const char *text);

/*  Copies a string value into `out` (NUL-terminated); false when `object`
    is not a string, holds a NUL byte or does not fit in out_size - 1. */
bool tap_jsonline_string(const msgpack_object *object, char *out,
                         size_t out_size);

/*  An integer value (JSON numbers without fraction or exponent) that fits
    an int64_t; false for anything else. */
bool tap_jsonline_int(const msgpack_object *object, int64_t *out);

void tap_jsonline_free(tap_jsonline_t *line);

#endif
