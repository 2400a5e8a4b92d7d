/*  json_fuzz.c - fuzz target for lib/json.c. Each input is tried as JSON
    text and as msgpack bytes. Beyond "no crash, no leak" it checks that
    the conversions agree with each other: whatever is accepted converts
    back, and one round trip reaches a fixed point. Floats are the one
    exception, explained at s_check_json: a literal beyond the double range
    becomes an infinity, which JSON can only show as null.
*/
#include "zmesh.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
s_expect(int condition, const char *what)
{
    if (!condition) {
        fprintf(stderr, "json_fuzz: property broken: %s\n", what);
        abort();
    }
}

static int
s_same(const void *a, size_t a_size, const void *b, size_t b_size)
{
    return a_size == b_size && memcmp(a, b, a_size) == 0;
}

/*  True when the msgpack bytes may hold a float64 infinity (cb 7ff0... or
    cb fff0...). A byte scan can match inside other data, which only makes
    the check below weaker for that input, never wrong: valid UTF-8 strings
    can hold neither cb 7f nor ff. */
static int
s_may_hold_infinity(const uint8_t *p, size_t size)
{
    static const uint8_t plus[] = {0xcb, 0x7f, 0xf0, 0, 0, 0, 0, 0, 0};
    static const uint8_t minus[] = {0xcb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0};
    for (size_t i = 0; i + sizeof plus <= size; i++)
        if (memcmp(p + i, plus, sizeof plus) == 0 ||
            memcmp(p + i, minus, sizeof minus) == 0)
            return 1;
    return 0;
}

/*  JSON text J1 accepted as msgpack M1 must render (J2) and J2 must be
    accepted again (M2). M1 == M2 byte for byte: integers, strings and
    structure survive exactly, and finite floats are printed with enough
    digits to read back the same double and always with a '.' or exponent,
    so they stay floats. The exception: an out-of-range literal such as
    1e400 is packed as an infinity, rendered as null and comes back as nil.
    For such inputs the property is that J2 is already the fixed point:
    J2 -> M2 -> J3 -> M3 gives M3 == M2 and J3 == J2. */
static void
s_check_json(const uint8_t *data, size_t size)
{
    void *m1 = NULL;
    size_t m1_size = 0;
    if (zmesh_json_to_msgpack((const char *)data, size, &m1, &m1_size) != 0)
        return;
    char *j2 = NULL;
    s_expect(zmesh_msgpack_to_json(m1, m1_size, &j2) == 0,
             "msgpack made from JSON renders");
    void *m2 = NULL;
    size_t m2_size = 0;
    s_expect(zmesh_json_to_msgpack(j2, strlen(j2), &m2, &m2_size) == 0,
             "rendered JSON parses");
    if (!s_may_hold_infinity(m1, m1_size))
        s_expect(s_same(m1, m1_size, m2, m2_size),
                 "JSON -> msgpack -> JSON -> msgpack is the same msgpack");
    char *j3 = NULL;
    s_expect(zmesh_msgpack_to_json(m2, m2_size, &j3) == 0,
             "second rendering succeeds");
    s_expect(strcmp(j2, j3) == 0, "second rendering is the same text");
    free(j3);
    free(m2);
    free(j2);
    free(m1);
}

/*  msgpack M1 rendered as J1 must parse (M2), M2 must render (J2) and
    parse (M3) to the same bytes. M1 itself need not come back: bin and
    ext become strings and objects, float32 becomes float64, non-string
    keys become strings and NaN becomes nil. */
static void
s_check_msgpack(const uint8_t *data, size_t size)
{
    char *j1 = NULL;
    if (zmesh_msgpack_to_json(data, size, &j1) != 0)
        return;
    void *m2 = NULL;
    size_t m2_size = 0;
    s_expect(zmesh_json_to_msgpack(j1, strlen(j1), &m2, &m2_size) == 0,
             "rendered msgpack is valid JSON");
    char *j2 = NULL;
    s_expect(zmesh_msgpack_to_json(m2, m2_size, &j2) == 0,
             "msgpack from rendered JSON renders");
    void *m3 = NULL;
    size_t m3_size = 0;
    s_expect(zmesh_json_to_msgpack(j2, strlen(j2), &m3, &m3_size) == 0,
             "second rendering parses");
    s_expect(s_same(m2, m2_size, m3, m3_size),
             "msgpack -> JSON reaches a fixed point after one round");
    free(m3);
    free(j2);
    free(m2);
    free(j1);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_check_json(data, size);
    s_check_msgpack(data, size);
    return 0;
}
