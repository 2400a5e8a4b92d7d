/*  json_test.c - unit tests of lib/json.c: JSON to msgpack and back.
    Tables of texts that must round-trip to an exact rendering, texts that
    must be rejected (RFC 8259 strictness, UTF-8, surrogates, depth), exact
    msgpack bytes for the integer and float rules, and msgpack that only
    the msgpack side can produce (bin, ext, non-string keys, bad UTF-8,
    float32, NaN), plus malformed msgpack and a key-escaping bomb.
*/
#include "zmesh.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <locale.h>
#include <msgpack.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  JSON text in, msgpack out, JSON text back: must equal `expected`. */
static void
s_assert_round_trip(const char *json, size_t json_size, const char *expected)
{
    void *mp = NULL;
    size_t mp_size = 0;
    int rc = zmesh_json_to_msgpack(json, json_size, &mp, &mp_size);
    if (rc != 0)
        fail_msg("json_to_msgpack(%s) = %d", json, rc);
    char *back = NULL;
    rc = zmesh_msgpack_to_json(mp, mp_size, &back);
    if (rc != 0)
        fail_msg("msgpack_to_json for %s = %d", json, rc);
    if (strcmp(back, expected) != 0)
        fail_msg("%s rendered as %s, expected %s", json, back, expected);
    // One more round gives the same msgpack bytes.
    void *again = NULL;
    size_t again_size = 0;
    assert_int_equal(
        zmesh_json_to_msgpack(back, strlen(back), &again, &again_size), 0);
    assert_int_equal(again_size, mp_size);
    assert_memory_equal(again, mp, mp_size);
    free(again);
    free(back);
    free(mp);
}

static void
test_round_trips(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *expected;
    } cases[] = {
        {"null", "null"},
        {"true", "true"},
        {"false", "false"},
        {"0", "0"},
        {"-0", "0"},
        {"7", "7"},
        {"-1", "-1"},
        {"-32", "-32"},
        {"-33", "-33"},
        {"255", "255"},
        {"65536", "65536"},
        {"1.5", "1.5"},
        {"1.0", "1.0"},
        {"-0.0", "-0.0"},
        {"0.1", "0.1"},
        {"3.141592653589793", "3.141592653589793"},
        {"1e3", "1000.0"},
        {"1E+2", "100.0"},
        {"2.5e-3", "0.0025"},
        {"1e-7", "1e-07"},
        {"1e300", "1e+300"},
        {"1e-400", "0.0"}, // underflows to zero
        {"9223372036854775807", "9223372036854775807"},
        {"-9223372036854775808", "-9223372036854775808"},
        {"18446744073709551615", "18446744073709551615"},
        {"18446744073709551616", "1.8446744073709552e+19"},
        {"-9223372036854775809", "-9.223372036854776e+18"},
        {"100000000000000000000000", "1e+23"},
        {"\"\"", "\"\""},
        {"\"plain\"", "\"plain\""},
        {"\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\"",
         "\"a\\\"b\\\\c/d\\b\\f\\n\\r\\t\""},
        {"\"\\u0041\\u00e9\"", "\"A\xc3\xa9\""},
        {"\"\\u00E9\"", "\"\xc3\xa9\""},
        {"\"\xc3\xa9\"", "\"\xc3\xa9\""},
        {"\"\\ud83d\\ude00\"", "\"\xf0\x9f\x98\x80\""},
        {"\"\xf0\x9f\x98\x80\"", "\"\xf0\x9f\x98\x80\""},
        {"\"\\u20ac\xe2\x82\xac\"", "\"\xe2\x82\xac\xe2\x82\xac\""},
        {"\"\\u0001\\u001f\\u007f\"", "\"\\u0001\\u001f\\u007f\""},
        {"\"a\\u0000b\"", "\"a\\u0000b\""},
        {"[]", "[]"},
        {"{}", "{}"},
        {" \t\r\n[ 1 , 2 , [ ] , { } ] \n", "[1,2,[],{}]"},
        {"{\"a\":[1,{\"b\":null}],\"c\":\"d\"}",
         "{\"a\":[1,{\"b\":null}],\"c\":\"d\"}"},
        {"{\"a\":1,\"a\":2}", "{\"a\":1,\"a\":2}"}, // duplicates kept
        {"{\"\":0}", "{\"\":0}"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_assert_round_trip(cases[i].json, strlen(cases[i].json),
                            cases[i].expected);
}

/*  JSON text that must be refused with ZMESH_EJSON. Sizes are explicit so
    NUL bytes inside can be tested. */
/*  Literals beyond the double range become infinities, which JSON cannot
    show: they render as null, so these alone do not survive a round. */
static void
test_overflow_to_null(void **state)
{
    (void)state;
    static const char *cases[] = {"1e400", "-1e400", "[1e999]"};
    static const char *expected[] = {"null", "null", "[null]"};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        void *mp = NULL;
        size_t mp_size = 0;
        assert_int_equal(
            zmesh_json_to_msgpack(cases[i], strlen(cases[i]), &mp, &mp_size),
            0);
        char *json = NULL;
        assert_int_equal(zmesh_msgpack_to_json(mp, mp_size, &json), 0);
        assert_string_equal(json, expected[i]);
        free(json);
        free(mp);
    }
}

static void
test_rejections(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        size_t size; // 0: strlen
        const char *why;
    } cases[] = {
        {"", 0, "empty"},
        {" \n", 0, "only whitespace"},
        {"[1,]", 0, "trailing comma in array"},
        {"{\"a\":1,}", 0, "trailing comma in object"},
        {"[,1]", 0, "leading comma"},
        {"[1,,2]", 0, "double comma"},
        {"[1 2]", 0, "missing comma"},
        {"{\"a\" 1}", 0, "missing colon"},
        {"{\"a\":}", 0, "missing value"},
        {"{1:2}", 0, "non-string key"},
        {"{a:1}", 0, "bare key"},
        {"01", 0, "leading zero"},
        {"-01", 0, "negative leading zero"},
        {"00", 0, "double zero"},
        {"1.", 0, "no fraction digits"},
        {".5", 0, "no integer digits"},
        {"1e", 0, "no exponent digits"},
        {"1e+", 0, "signed exponent without digits"},
        {"+1", 0, "plus sign"},
        {"-", 0, "lone minus"},
        {"0x10", 0, "hex"},
        {"NaN", 0, "NaN"},
        {"Infinity", 0, "Infinity"},
        {"-Infinity", 0, "-Infinity"},
        {"tru", 0, "truncated true"},
        {"nul", 0, "truncated null"},
        {"True", 0, "capital True"},
        {"truex", 0, "garbage after true"},
        {"'a'", 0, "single quotes"},
        {"\"abc", 0, "unterminated string"},
        {"\"\x01\"", 0, "raw control character"},
        {"\"a\nb\"", 0, "raw newline"},
        {"\"\\x41\"", 0, "invalid escape"},
        {"\"\\U0041\"", 0, "capital U escape"},
        {"\"\\u12\"", 0, "short \\u escape"},
        {"\"\\u12g4\"", 0, "bad hex digit"},
        {"\"\\ud83d\"", 0, "lone high surrogate"},
        {"\"\\ud83dx\"", 0, "high surrogate then text"},
        {"\"\\ud83d\\u0041\"", 0, "high surrogate then non-surrogate"},
        {"\"\\ud83d\\ud83d\"", 0, "two high surrogates"},
        {"\"\\ude00\"", 0, "lone low surrogate"},
        {"\"\\ude00\\ud83d\"", 0, "reversed pair"},
        {"\"\xff\"", 0, "invalid UTF-8 byte"},
        {"\"\xc3\"", 0, "truncated UTF-8"},
        {"\"\xc3(\"", 0, "bad continuation"},
        {"\"\xc0\xaf\"", 0, "overlong slash"},
        {"\"\xe0\x80\xaf\"", 0, "overlong 3-byte"},
        {"\"\xed\xa0\x80\"", 0, "UTF-8 encoded surrogate"},
        {"\"\xf4\x90\x80\x80\"", 0, "above U+10FFFF"},
        {"\"\xf8\x88\x80\x80\x80\"", 0, "5-byte form"},
        {"\xef\xbb\xbf"
         "1",
         0, "byte order mark"},
        {"\xc3\xa9", 0, "UTF-8 outside a string"},
        {"1 2", 0, "two values"},
        {"[1] x", 0, "garbage after value"},
        {"{}{}", 0, "two objects"},
        {"[", 0, "unclosed array"},
        {"{", 0, "unclosed object"},
        {"]", 0, "lone close"},
        {"[1}", 0, "mismatched close"},
        {"1\0", 2, "NUL after value"},
        {"\"a\0b\"", 5, "raw NUL in string"},
        {"\0", 1, "only NUL"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t size = cases[i].size ? cases[i].size : strlen(cases[i].json);
        void *mp = (void *)&cases; // must be reset to NULL
        size_t mp_size = 99;
        int rc = zmesh_json_to_msgpack(cases[i].json, size, &mp, &mp_size);
        if (rc != ZMESH_EJSON)
            fail_msg("%s: got %d, expected ZMESH_EJSON", cases[i].why, rc);
        assert_null(mp);
        assert_int_equal(mp_size, 0);
    }
}

/*  Exact msgpack for the number rules and the basic types. */
static void
test_msgpack_bytes(void **state)
{
    (void)state;
    static const struct {
        const char *json;
        const char *bytes; // hex
    } cases[] = {
        {"0", "00"},
        {"127", "7f"},
        {"128", "cc80"},
        {"-1", "ff"},
        {"-33", "d0df"},
        {"null", "c0"},
        {"false", "c2"},
        {"true", "c3"},
        {"1.5", "cb3ff8000000000000"},
        {"1.0", "cb3ff0000000000000"},
        {"1e2", "cb4059000000000000"},
        {"-0.0", "cb8000000000000000"},
        {"9223372036854775807", "cf7fffffffffffffff"},
        {"-9223372036854775808", "d38000000000000000"},
        {"18446744073709551615", "cfffffffffffffffff"},
        {"18446744073709551616", "cb43f0000000000000"},
        {"\"a\"", "a161"},
        {"\"\\ud83d\\ude00\"", "a4f09f9880"},
        {"[]", "90"},
        {"{}", "80"},
        {"[1,[2]]", "920191"
                    "02"},
        {"{\"k\":[true]}", "81a16b91c3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        void *mp = NULL;
        size_t mp_size = 0;
        assert_int_equal(zmesh_json_to_msgpack(cases[i].json,
                                               strlen(cases[i].json), &mp,
                                               &mp_size),
                         0);
        char hex[64] = "";
        assert_true(mp_size * 2 < sizeof hex);
        for (size_t j = 0; j < mp_size; j++)
            snprintf(hex + 2 * j, 3, "%02x", ((uint8_t *)mp)[j]);
        if (strcmp(hex, cases[i].bytes) != 0)
            fail_msg("%s packed as %s, expected %s", cases[i].json, hex,
                     cases[i].bytes);
        free(mp);
    }
}

/*  A long string needs str8/16/32 headers and the text scratch to grow. */
static void
test_long_string(void **state)
{
    (void)state;
    size_t n = 70000;
    char *json = malloc(n + 3);
    assert_non_null(json);
    json[0] = '"';
    for (size_t i = 0; i < n; i++)
        json[1 + i] = (char)('a' + i % 26);
    json[n + 1] = '"';
    json[n + 2] = '\0';
    s_assert_round_trip(json, n + 2, json);
    free(json);
}

/*  `levels` nested arrays (or objects) around a 1. */
static char *
s_nested_json(int levels, int objects)
{
    char *json = malloc((size_t)levels * 6 + 2);
    assert_non_null(json);
    size_t n = 0;
    for (int i = 0; i < levels; i++) {
        if (objects) {
            memcpy(json + n, "{\"a\":", 5);
            n += 5;
        } else
            json[n++] = '[';
    }
    json[n++] = '1';
    for (int i = 0; i < levels; i++)
        json[n++] = objects ? '}' : ']';
    json[n] = '\0';
    return json;
}

static void
test_json_depth(void **state)
{
    (void)state;
    for (int objects = 0; objects < 2; objects++) {
        char *ok = s_nested_json(64, objects);
        s_assert_round_trip(ok, strlen(ok), ok);
        free(ok);

        char *deep = s_nested_json(65, objects);
        void *mp = NULL;
        size_t mp_size = 0;
        assert_int_equal(
            zmesh_json_to_msgpack(deep, strlen(deep), &mp, &mp_size),
            ZMESH_EJSON);
        free(deep);
    }
    // Far deeper than the limit: refused without exhausting the stack.
    size_t n = 100000;
    char *bomb = malloc(n);
    assert_non_null(bomb);
    memset(bomb, '[', n);
    void *mp = NULL;
    size_t mp_size = 0;
    assert_int_equal(zmesh_json_to_msgpack(bomb, n, &mp, &mp_size),
                     ZMESH_EJSON);
    free(bomb);
}

/*  msgpack bytes from hex. */
static size_t
s_from_hex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    assert_true(n <= cap);
    for (size_t i = 0; i < n; i++) {
        unsigned byte;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &byte), 1);
        out[i] = (uint8_t)byte;
    }
    return n;
}

/*  msgpack that only the msgpack side produces, and how it renders. */
static void
test_msgpack_rendering(void **state)
{
    (void)state;
    static const struct {
        const char *hex;
        const char *json;
    } cases[] = {
        // bin: base64 with padding
        {"c400", "\"\""},
        {"c40100", "\"AA==\""},
        {"c402ffee", "\"/+4=\""},
        {"c403666f6f", "\"Zm9v\""},
        {"c404666f6f62", "\"Zm9vYg==\""},
        {"c50003666f6f", "\"Zm9v\""},
        {"c600000003666f6f", "\"Zm9v\""},
        // ext: {"ext":TYPE,"base64":...}, type signed
        {"d40501", "{\"ext\":5,\"base64\":\"AQ==\"}"},
        {"d6ff00000001", "{\"ext\":-1,\"base64\":\"AAAAAQ==\"}"},
        {"c70007", "{\"ext\":7,\"base64\":\"\"}"},
        {"c8000180ff", "{\"ext\":-128,\"base64\":\"/w==\"}"},
        // non-string keys become their JSON text
        {"8101a161", "{\"1\":\"a\"}"},
        {"81c001", "{\"null\":1}"},
        {"81c3c2", "{\"true\":false}"},
        {"819201"
         "02c3",
         "{\"[1,2]\":true}"},
        {"8181a161"
         "0100",
         "{\"{\\\"a\\\":1}\":0}"},
        {"81cb3ff8000000000000"
         "00",
         "{\"1.5\":0}"},
        {"81c40100"
         "00",
         "{\"\\\"AA==\\\"\":0}"},
        // str bytes that are not UTF-8 become U+FFFD, one per byte
        {"a361ff62", "\"a\xef\xbf\xbd"
                     "b\""},
        {"a2c328", "\"\xef\xbf\xbd(\""},
        {"a3eda080", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
        {"a2c0af", "\"\xef\xbf\xbd\xef\xbf\xbd\""},
        {"a4f09f9880", "\"\xf0\x9f\x98\x80\""},
        {"a3f09f98", "\"\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\""},
        {"81a1ff01", "{\"\xef\xbf\xbd\":1}"},
        // control characters and DEL escaped
        {"a5000a1f7f22", "\"\\u0000\\n\\u001f\\u007f\\\"\""},
        // every integer width
        {"ccff", "255"},
        {"cdffff", "65535"},
        {"ceffffffff", "4294967295"},
        {"cfffffffffffffffff", "18446744073709551615"},
        {"d080", "-128"},
        {"d18000", "-32768"},
        {"d280000000", "-2147483648"},
        {"d38000000000000000", "-9223372036854775808"},
        {"e0", "-32"},
        {"d0ff", "-1"},
        // floats: shortest text that reads back, NaN and infinities null
        {"ca3fc00000", "1.5"},
        {"ca3f8ccccd", "1.1"},
        {"ca7fc00000", "null"},
        {"ca7f800000", "null"},
        {"cb7ff8000000000000", "null"},
        {"cbfff0000000000000", "null"},
        {"cb3ff0000000000000", "1.0"},
        {"cb4415af1d78b58c40", "1e+20"},
        // str8/16/32 and array16/map16/array32
        {"d90161", "\"a\""},
        {"da000161", "\"a\""},
        {"db0000000161", "\"a\""},
        {"dc000101", "[1]"},
        {"dd0000000101", "[1]"},
        {"de0001a16101", "{\"a\":1}"},
        {"df00000001a16101", "{\"a\":1}"},
        {"9190", "[[]]"},
        {"c0", "null"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t mp[64];
        size_t size = s_from_hex(cases[i].hex, mp, sizeof mp);
        char *json = NULL;
        int rc = zmesh_msgpack_to_json(mp, size, &json);
        if (rc != 0)
            fail_msg("%s: rc %d", cases[i].hex, rc);
        if (strcmp(json, cases[i].json) != 0)
            fail_msg("%s rendered as %s, expected %s", cases[i].hex, json,
                     cases[i].json);
        // The rendering is valid JSON by our own parser.
        void *back = NULL;
        size_t back_size = 0;
        assert_int_equal(
            zmesh_json_to_msgpack(json, strlen(json), &back, &back_size), 0);
        free(back);
        free(json);
    }
}

static void
test_msgpack_rejections(void **state)
{
    (void)state;
    static const struct {
        const char *hex;
        const char *why;
    } cases[] = {
        {"", "empty"},
        {"c1", "never-used byte"},
        {"0101", "two objects"},
        {"c0c0", "two nils"},
        {"a561", "truncated str"},
        {"d9", "str8 without length"},
        {"db7fffffff61", "huge str32"},
        {"c4ff00", "truncated bin"},
        {"cd01", "truncated uint16"},
        {"cb3ff0", "truncated float64"},
        {"92", "array missing elements"},
        {"9201", "array missing one element"},
        {"dcffff01", "array16 count beyond the bytes"},
        {"ddffffffff", "array32 count beyond the bytes"},
        {"dfffffffff", "map32 count beyond the bytes"},
        {"81a161", "map missing a value"},
        {"d405", "truncated fixext"},
        {"c7ff05", "truncated ext8"},
        {"91c1", "bad byte inside"},
        {"81c101", "bad byte as key"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t mp[64];
        size_t size = s_from_hex(cases[i].hex, mp, sizeof mp);
        char *json = (char *)"sentinel";
        int rc = zmesh_msgpack_to_json(mp, size, &json);
        if (rc != ZMESH_EPAYLOAD)
            fail_msg("%s: got %d, expected ZMESH_EPAYLOAD", cases[i].why, rc);
        assert_null(json);
    }
}

/*  `levels` nested one-element arrays around `leaf`. */
static size_t
s_nested_msgpack(uint8_t *out, int levels, const char *leaf_hex)
{
    for (int i = 0; i < levels; i++)
        out[i] = 0x91;
    return (size_t)levels + s_from_hex(leaf_hex, out + levels, 32);
}

static void
test_msgpack_depth(void **state)
{
    (void)state;
    uint8_t mp[128];
    char *json = NULL;
    // 64 levels render (beyond msgpack_unpack's own 32-level stack).
    size_t size = s_nested_msgpack(mp, 64, "c0");
    assert_int_equal(zmesh_msgpack_to_json(mp, size, &json), 0);
    assert_int_equal(strlen(json), 64 * 2 + 4);
    void *back = NULL;
    size_t back_size = 0;
    assert_int_equal(
        zmesh_json_to_msgpack(json, strlen(json), &back, &back_size), 0);
    assert_int_equal(back_size, size);
    assert_memory_equal(back, mp, size);
    free(back);
    free(json);
    // 64 levels with maps: {1:{1:...{}}}.
    size = 0;
    for (int i = 0; i < 63; i++) {
        mp[size++] = 0x81;
        mp[size++] = 0x01;
    }
    mp[size++] = 0x80; // the 64th map, empty
    assert_int_equal(zmesh_msgpack_to_json(mp, size, &json), 0);
    free(json);
    // 65 levels are refused.
    size = s_nested_msgpack(mp, 65, "c0");
    json = (char *)"sentinel";
    assert_int_equal(zmesh_msgpack_to_json(mp, size, &json), ZMESH_EPAYLOAD);
    assert_null(json);
    size = s_nested_msgpack(mp, 64, "90");
    assert_int_equal(zmesh_msgpack_to_json(mp, size, &json), ZMESH_EPAYLOAD);
    // An ext becomes a JSON object, so at level 64 it is one too deep...
    size = s_nested_msgpack(mp, 64, "d40501");
    assert_int_equal(zmesh_msgpack_to_json(mp, size, &json), ZMESH_EPAYLOAD);
    // ...and fine at 63.
    size = s_nested_msgpack(mp, 63, "d40501");
    assert_int_equal(zmesh_msgpack_to_json(mp, size, &json), 0);
    free(json);
}

/*  Maps as keys of maps as keys...: each level escapes the text of the one
    inside, doubling it, so 64 levels would ask for exabytes. The output
    limit stops it cheaply. */
static void
test_key_escaping_bomb(void **state)
{
    (void)state;
    uint8_t mp[256];
    size_t n = 0;
    int levels = 60;
    for (int i = 0; i < levels; i++)
        mp[n++] = 0x81; // a map of one pair whose key comes next
    mp[n++] = 0xa1;     // innermost key "\""
    mp[n++] = '"';
    for (int i = 0; i < levels; i++)
        mp[n++] = 0xc0; // each pair's value
    char *json = NULL;
    assert_int_equal(zmesh_msgpack_to_json(mp, n, &json), ZMESH_ENOMEM);
    assert_null(json);

    // Three levels are ordinary and fine.
    uint8_t small[] = {0x81, 0x81, 0x81, 0xa1, '"', 0xc0, 0xc0, 0xc0};
    assert_int_equal(zmesh_msgpack_to_json(small, sizeof small, &json), 0);
    assert_string_equal(
        json, "{\"{\\\"{\\\\\\\"\\\\\\\\\\\\\\\"\\\\\\\":null}\\\":null}\":"
              "null}");
    free(json);
}

/*  Values packed by msgpack-c round-trip through JSON to the same bytes. */
static void
test_msgpack_round_trip(void **state)
{
    (void)state;
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    msgpack_pack_str_with_body(&pk, "int", 3);
    msgpack_pack_int64(&pk, INT64_MIN);
    msgpack_pack_str_with_body(&pk, "uint", 4);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_str_with_body(&pk, "float", 5);
    msgpack_pack_double(&pk, 0.1 + 0.2);
    msgpack_pack_str_with_body(&pk, "tiny", 4);
    msgpack_pack_double(&pk, 5e-324);
    msgpack_pack_str_with_body(&pk, "list", 4);
    msgpack_pack_array(&pk, 3);
    msgpack_pack_nil(&pk);
    msgpack_pack_true(&pk);
    msgpack_pack_str_with_body(&pk, "\xe2\x82\xac\n", 4);
    msgpack_pack_str_with_body(&pk, "big", 3);
    msgpack_pack_double(&pk, 1.7976931348623157e308);

    char *json = NULL;
    assert_int_equal(zmesh_msgpack_to_json(sbuf.data, sbuf.size, &json), 0);
    assert_string_equal(json, "{\"int\":-9223372036854775808,"
                              "\"uint\":18446744073709551615,"
                              "\"float\":0.30000000000000004,"
                              "\"tiny\":4.94065645841247e-324,"
                              "\"list\":[null,true,\"\xe2\x82\xac\\n\"],"
                              "\"big\":1.7976931348623157e+308}");
    void *back = NULL;
    size_t back_size = 0;
    assert_int_equal(
        zmesh_json_to_msgpack(json, strlen(json), &back, &back_size), 0);
    assert_int_equal(back_size, sbuf.size);
    assert_memory_equal(back, sbuf.data, sbuf.size);
    free(back);
    free(json);
    msgpack_sbuffer_destroy(&sbuf);
}

static void
test_bad_arguments(void **state)
{
    (void)state;
    void *mp = NULL;
    size_t mp_size = 0;
    char *json = NULL;
    assert_int_equal(zmesh_json_to_msgpack(NULL, 1, &mp, &mp_size),
                     ZMESH_EINVAL);
    assert_int_equal(zmesh_json_to_msgpack("1", 1, NULL, &mp_size),
                     ZMESH_EINVAL);
    assert_int_equal(zmesh_json_to_msgpack("1", 1, &mp, NULL), ZMESH_EINVAL);
    assert_int_equal(zmesh_msgpack_to_json(NULL, 1, &json), ZMESH_EINVAL);
    assert_int_equal(zmesh_msgpack_to_json("\x01", 1, NULL), ZMESH_EINVAL);
}

/*  A process that switched LC_NUMERIC to a decimal-comma locale still
    reads and writes JSON numbers with '.'. Skipped when no such locale is
    installed (LOCPATH can point at one made with localedef). */
static void
test_decimal_comma_locale(void **state)
{
    (void)state;
    static const char *names[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8",
                                  "fr_FR.utf8", "de_DE"};
    const char *found = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !found; i++)
        if (setlocale(LC_NUMERIC, names[i]) &&
            strcmp(localeconv()->decimal_point, ",") == 0)
            found = names[i];
    if (!found) {
        setlocale(LC_NUMERIC, "C");
        skip();
    }
    s_assert_round_trip("[1.5,2.0,1e-07]", 15, "[1.5,2.0,1e-07]");
    setlocale(LC_NUMERIC, "C");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_overflow_to_null),
        cmocka_unit_test(test_rejections),
        cmocka_unit_test(test_msgpack_bytes),
        cmocka_unit_test(test_long_string),
        cmocka_unit_test(test_json_depth),
        cmocka_unit_test(test_msgpack_rendering),
        cmocka_unit_test(test_msgpack_rejections),
        cmocka_unit_test(test_msgpack_depth),
        cmocka_unit_test(test_key_escaping_bomb),
        cmocka_unit_test(test_msgpack_round_trip),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_decimal_comma_locale),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
