/*  tap_jsonline.c - reads one NDJSON line for mesh-tap: the library turns
    the JSON into msgpack, msgpack-c unpacks that into a tree, and the
    accessors look keys up and check types, so a line that is JSON but has
    the wrong shape is told apart from one that is not JSON at all. Lines
    come from files and pipes: every accessor checks the type it is given
    and nothing here trusts a length it did not measure.
*/
#include "tap_jsonline.h"

#include "zmesh.h"

#include <stdlib.h>
#include <string.h>

int
tap_jsonline_parse(tap_jsonline_t *line, const char *text, size_t size)
{
    memset(line, 0, sizeof *line);
    int rc = zmesh_json_to_msgpack(text, size, &line->bytes, &line->size);
    if (rc != 0)
        return rc;
    msgpack_unpacked_init(&line->unpacked);
    line->ready = true;
    size_t offset = 0;
    msgpack_unpack_return result =
        msgpack_unpack_next(&line->unpacked, line->bytes, line->size, &offset);
    if (result == MSGPACK_UNPACK_NOMEM_ERROR)
        return ZMESH_ENOMEM;
    // The library made these bytes from one JSON value, so anything else
    // means the two disagree: report it as the JSON being unusable.
    if (result != MSGPACK_UNPACK_SUCCESS || offset != line->size)
        return ZMESH_EJSON;
    return 0;
}

const msgpack_object *
tap_jsonline_root(const tap_jsonline_t *line)
{
    return line->ready ? &line->unpacked.data : NULL;
}

const msgpack_object *
tap_jsonline_get(const tap_jsonline_t *line, const char *key)
{
    const msgpack_object *root = tap_jsonline_root(line);
    if (!root || root->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < root->via.map.size; i++) {
        const msgpack_object_kv *kv = &root->via.map.ptr[i];
        if (tap_jsonline_is(&kv->key, key))
            return &kv->val;
    }
    return NULL;
}

bool
tap_jsonline_is(const msgpack_object *object, const char *text)
{
    size_t size = strlen(text);
    return object && object->type == MSGPACK_OBJECT_STR &&
           object->via.str.size == size &&
           memcmp(object->via.str.ptr, text, size) == 0;
}

bool
tap_jsonline_string(const msgpack_object *object, char *out, size_t out_size)
{
    if (!object || object->type != MSGPACK_OBJECT_STR ||
        object->via.str.size >= out_size ||
        memchr(object->via.str.ptr, '\0', object->via.str.size))
        return false;
    memcpy(out, object->via.str.ptr, object->via.str.size);
    out[object->via.str.size] = '\0';
    return true;
}

bool
tap_jsonline_int(const msgpack_object *object, int64_t *out)
{
    if (!object)
        return false;
    if (object->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = object->via.i64;
        return true;
    }
    if (object->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        object->via.u64 <= (uint64_t)INT64_MAX) {
        *out = (int64_t)object->via.u64;
        return true;
    }
    return false;
}

void
tap_jsonline_free(tap_jsonline_t *line)
{
    if (line->ready)
        msgpack_unpacked_destroy(&line->unpacked);
    free(line->bytes);
    memset(line, 0, sizeof *line);
}
