/*  mpack.c - shared msgpack-c helpers (mpack.h). */
#include "mpack.h"

#include <string.h>

void
zmesh__mp_pack_str(msgpack_packer *pk, const char *text)
{
    size_t n = strlen(text);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, text, n);
}

void
zmesh__mp_pack_u64(msgpack_packer *pk, const char *key, uint64_t value)
{
    zmesh__mp_pack_str(pk, key);
    msgpack_pack_uint64(pk, value);
}

bool
zmesh__mp_key_is(const msgpack_object *key, const char *name)
{
    size_t n = strlen(name);
    return key->type == MSGPACK_OBJECT_STR && key->via.str.size == n &&
           memcmp(key->via.str.ptr, name, n) == 0;
}

bool
zmesh__mp_str_copy(const msgpack_object *value, char *out, size_t cap)
{
    if (value->type != MSGPACK_OBJECT_STR || value->via.str.size >= cap)
        return false;
    memcpy(out, value->via.str.ptr, value->via.str.size);
    out[value->via.str.size] = '\0';
    return true;
}

const msgpack_object *
zmesh__mp_get(const msgpack_object *map, const char *name)
{
    if (map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (zmesh__mp_key_is(&map->via.map.ptr[i].key, name))
            return &map->via.map.ptr[i].val;
    return NULL;
}
