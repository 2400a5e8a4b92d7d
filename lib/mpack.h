/*  mpack.h - the few msgpack-c helpers the library's request and answer
    builders share: strings packed from C strings, "key": uint pairs, and
    looking a key up in a decoded map. Talks to msgpack-c only. */
#ifndef ZMESH_MPACK_H_INCLUDED
#define ZMESH_MPACK_H_INCLUDED

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

/*  Packs NUL-terminated `text` as a msgpack str. */
void zmesh__mp_pack_str(msgpack_packer *pk, const char *text);

/*  Packs the map entry "key": value. */
void zmesh__mp_pack_u64(msgpack_packer *pk, const char *key, uint64_t value);

/*  True when `key` is a str equal to `name`. */
bool zmesh__mp_key_is(const msgpack_object *key, const char *name);

/*  Copies a str `value` into `out` (`cap` bytes) with a NUL after it;
    false, and nothing written, when `value` is no str or does not fit. */
bool zmesh__mp_str_copy(const msgpack_object *value, char *out, size_t cap);

/*  The value of str key `name` in `map`, or NULL when `map` is no map or
    has no such key (the first one, if it repeats). */
const msgpack_object *zmesh__mp_get(const msgpack_object *map,
                                    const char *name);

#endif
