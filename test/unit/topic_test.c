/*  topic_test.c - unit tests of lib/topic.c: a syntax table for topics and
    patterns (through both the internal and the public functions), tables
    for matching, intersection and the ZeroMQ prefix filter, the index's
    reference counting and ordering, and seeded random cross-checks: the
    index against a linear scan, intersection against a brute-force search
    for a common topic, and the filter against every topic it must admit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "topic.h"

#include <stdio.h>
#include <string.h>

/* Rows whose text has an embedded NUL give their size; 0 means strlen. */
typedef struct {
    const char *text;
    size_t size;
    int topic_rc;
    int pattern_rc;
} syntax_row_t;

#define OK 0
#define ET ZMESH_ETOPIC
#define EP ZMESH_EPATTERN
#define ER ZMESH_ERESERVED

static const syntax_row_t syntax_rows[] = {
    /* shape */
    {"", 0, ET, EP},
    {".", 0, ET, EP},
    {"..", 0, ET, EP},
    {"a.", 0, ET, EP},
    {".a", 0, ET, EP},
    {"a..b", 0, ET, EP},
    {"a", 0, OK, OK},
    {"a.b.c", 0, OK, OK},
    {"orders.eu-west_1.created", 0, OK, OK},
    /* wildcards as whole tokens */
    {"*", 0, ET, OK},
    {">", 0, ET, OK},
    {"a.*", 0, ET, OK},
    {"a.>", 0, ET, OK},
    {"*.b", 0, ET, OK},
    {"*.*.>", 0, ET, OK},
    {"a.*.c", 0, ET, OK},
    {"a.>.b", 0, ET, EP},
    {">.>", 0, ET, EP},
    {">.a", 0, ET, EP},
    /* wildcard characters inside a token */
    {"a.b*c", 0, ET, EP},
    {"a.*b", 0, ET, EP},
    {"a.b*", 0, ET, EP},
    {"a.b>", 0, ET, EP},
    {">a", 0, ET, EP},
    {"a.>b.c", 0, ET, EP},
    {"**", 0, ET, EP},
    {">>", 0, ET, EP},
    {"*>", 0, ET, EP},
    /* reserved */
    {"$mesh.x", 0, ER, OK},
    {"$mesh.peer.joined", 0, ER, OK},
    {"$", 0, ER, OK},
    {"$mesh.>", 0, ET, OK},
    {"$.a", 0, ER, OK},
    {"a.$b", 0, OK, OK},
    {"$.", 0, ET, EP},
    /* spaces and control characters */
    {"a b", 0, ET, EP},
    {" a", 0, ET, EP},
    {"a ", 0, ET, EP},
    {"a.\tb", 0, ET, EP},
    {"a\nb", 0, ET, EP},
    {"a\rb", 0, ET, EP},
    {"\x01", 0, ET, EP},
    {"a.\x1f", 0, ET, EP},
    {"a\x7f", 0, ET, EP},
    {"a\0b", 3, ET, EP},
    {"a\0", 2, ET, EP},
    {"!#%&+-/:;<=?@[]^_`{|}~", 0, OK, OK},
    /* UTF-8 that is fine */
    {"commandes.fa\xc3\xa7"
     "ade",
     0, OK, OK}, /* façade */
    {"\xe6\xb3\xa8\xe6\x96\x87.\xe4\xbd\x9c\xe6\x88\x90", 0, OK,
     OK},                                  /* 注文.作成 */
    {"emoji.\xf0\x9f\x98\x80", 0, OK, OK}, /* U+1F600 */
    {"\xc2\xa0", 0, OK, OK},               /* U+00A0, not ASCII space */
    {"\xc2\x80", 0, OK, OK},     /* U+0080: only ASCII controls are refused */
    {"\xed\x9f\xbf", 0, OK, OK}, /* U+D7FF, last before surrogates */
    {"\xee\x80\x80", 0, OK, OK}, /* U+E000, first after them */
    {"\xef\xbf\xbf", 0, OK, OK}, /* U+FFFF */
    {"\xf4\x8f\xbf\xbf", 0, OK, OK}, /* U+10FFFF */
    {"\xe0\xa0\x80", 0, OK, OK},     /* U+0800, shortest 3-byte */
    {"\xf0\x90\x80\x80", 0, OK, OK}, /* U+10000, shortest 4-byte */
    {"a.*.\xc3\xa7", 0, ET, OK},
    /* UTF-8 that is not */
    {"\x80", 0, ET, EP},             /* lone continuation */
    {"a.\xbf", 0, ET, EP},           /* lone continuation */
    {"\xc0\xaf", 0, ET, EP},         /* overlong '/' */
    {"\xc1\xbf", 0, ET, EP},         /* overlong */
    {"\xe0\x80\xaf", 0, ET, EP},     /* overlong 3-byte '/' */
    {"\xe0\x9f\xbf", 0, ET, EP},     /* overlong U+07FF */
    {"\xf0\x80\x80\xaf", 0, ET, EP}, /* overlong 4-byte '/' */
    {"\xf0\x8f\xbf\xbf", 0, ET, EP}, /* overlong U+FFFF */
    {"\xed\xa0\x80", 0, ET, EP},     /* U+D800, a surrogate */
    {"\xed\xbf\xbf", 0, ET, EP},     /* U+DFFF, a surrogate */
    {"\xf4\x90\x80\x80", 0, ET, EP}, /* U+110000 */
    {"\xf5\x80\x80\x80", 0, ET, EP},
    {"\xf8\x88\x80\x80\x80", 0, ET, EP},
    {"\xfe", 0, ET, EP},
    {"\xff", 0, ET, EP},
    {"a.\xff.b", 0, ET, EP},
    {"\xc3", 0, ET, EP},         /* truncated at the end */
    {"\xc3.a", 0, ET, EP},       /* truncated by a dot */
    {"\xe6\x96", 0, ET, EP},     /* truncated 3-byte */
    {"\xf0\x9f\x98", 0, ET, EP}, /* truncated 4-byte */
    {"\xe6\x96"
     "a",
     0, ET, EP},                 /* ASCII where a continuation goes */
    {"\xc3\xc3\xa7", 0, ET, EP}, /* lead byte where one goes */
};

static void
test_syntax_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof syntax_rows / sizeof syntax_rows[0]; i++) {
        const syntax_row_t *row = &syntax_rows[i];
        size_t size = row->size ? row->size : strlen(row->text);
        int topic_rc = zmesh__topic_check(row->text, size);
        int pattern_rc = zmesh__pattern_check(row->text, size);
        if (topic_rc != row->topic_rc || pattern_rc != row->pattern_rc)
            fail_msg("row %zu: topic %d (want %d), pattern %d (want %d)", i,
                     topic_rc, row->topic_rc, pattern_rc, row->pattern_rc);
        /* The public functions see the text up to its first NUL. */
        if (row->size == 0) {
            assert_int_equal(zmesh_topic_check(row->text), row->topic_rc);
            assert_int_equal(zmesh_pattern_check(row->text), row->pattern_rc);
        }
    }
}

static void
test_length_limit(void **state)
{
    (void)state;
    char text[1024];
    memset(text, 'x', sizeof text - 1);
    text[sizeof text - 1] = '\0';
    assert_int_equal(zmesh__topic_check(text, ZMESH_TOPIC_MAX), 0);
    assert_int_equal(zmesh__pattern_check(text, ZMESH_TOPIC_MAX), 0);
    assert_int_equal(zmesh__topic_check(text, ZMESH_TOPIC_MAX + 1),
                     ZMESH_ETOPIC);
    assert_int_equal(zmesh__pattern_check(text, ZMESH_TOPIC_MAX + 1),
                     ZMESH_EPATTERN);
    /* The public functions must not read a long string to its end to
       reject it; a 1023-byte one is rejected all the same. */
    assert_int_equal(zmesh_topic_check(text), ZMESH_ETOPIC);
    assert_int_equal(zmesh_pattern_check(text), ZMESH_EPATTERN);
    text[ZMESH_TOPIC_MAX] = '\0';
    assert_int_equal(zmesh_topic_check(text), 0);
    assert_int_equal(zmesh_pattern_check(text), 0);
    assert_int_equal(zmesh_pattern_match(text, text), 1);
    text[ZMESH_TOPIC_MAX] = 'x';
    text[ZMESH_TOPIC_MAX + 1] = '\0';
    assert_int_equal(zmesh_topic_check(text), ZMESH_ETOPIC);
    assert_int_equal(zmesh_pattern_match(text, text), 0);

    /* A multibyte character that would end at byte 256 is too long. */
    memset(text, 'x', ZMESH_TOPIC_MAX - 1);
    memcpy(text + ZMESH_TOPIC_MAX - 1, "\xc3\xa7", 3);
    assert_int_equal(zmesh_topic_check(text), ZMESH_ETOPIC);
    text[ZMESH_TOPIC_MAX - 1] = '\0';
    assert_int_equal(zmesh_topic_check(text), 0);

    assert_int_equal(zmesh_topic_check(NULL), ZMESH_EINVAL);
    assert_int_equal(zmesh_pattern_check(NULL), ZMESH_EINVAL);
    assert_int_equal(zmesh_pattern_match(NULL, "a"), 0);
    assert_int_equal(zmesh_pattern_match("a", NULL), 0);
}

typedef struct {
    const char *pattern;
    const char *topic;
    int match;
} match_row_t;

static const match_row_t match_rows[] = {
    {"a", "a", 1},
    {"a", "b", 0},
    {"a", "a.b", 0},
    {"a.b", "a", 0},
    {"a.b", "a.b", 1},
    {"orders.eu", "orders.e", 0},
    {"orders.e", "orders.eu", 0},
    {"a.*", "a.b", 1},
    {"a.*", "a", 0},
    {"a.*", "a.b.c", 0},
    {"a.>", "a", 0}, /* '>' needs at least one token */
    {"a.>", "a.b", 1},
    {"a.>", "a.b.c", 1},
    {"a.>", "b.c", 0},
    {">", "a", 1},
    {">", "a.b.c", 1},
    {"*", "a", 1},
    {"*", "a.b", 0},
    {"*.b", "a.b", 1},
    {"*.b", "a.c", 0},
    {"*.*", "a.b", 1},
    {"*.*", "a", 0},
    {"a.*.c", "a.b.c", 1},
    {"a.*.c", "a.b.d", 0},
    {"a.*.>", "a.b", 0},
    {"a.*.>", "a.b.c.d", 1},
    {"commandes.*",
     "commandes.fa\xc3\xa7"
     "ade",
     1},
    {"\xe6\xb3\xa8\xe6\x96\x87.>", "\xe6\xb3\xa8\xe6\x96\x87.\xe4\xbd\x9c", 1},
    /* '$' topics and wildcards in the first token */
    {">", "$mesh.x", 0},
    {"*.x", "$mesh.x", 0},
    {"*.>", "$mesh.x", 0},
    {"*", "$", 0},
    {"$mesh.>", "$mesh.peer.joined", 1},
    {"$mesh.>", "$mesh", 0},
    {"$mesh.*", "$mesh.x", 1},
    {"$mesh.*.joined", "$mesh.peer.joined", 1},
    {"$mesh.x", "$mesh.x", 1},
    {"$mesh.x", "$mesh.y", 0},
    {"a.*.c", "a.$x.c", 1}, /* '$' matters only in the first token */
    {"a.>", "a.$x", 1},
    /* invalid input on either side never matches */
    {"a.>.b", "a.x.b", 0},
    {"a.*", "a.*", 0},
    {"a", "a b", 0},
    {"", "", 0},
    {"a.b*", "a.b*", 0},
    {"a", "a.", 0},
    {"a.>", "a.", 0},
    {"\xff", "\xff", 0},
};

static void
test_match_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof match_rows / sizeof match_rows[0]; i++) {
        const match_row_t *row = &match_rows[i];
        int got = zmesh_pattern_match(row->pattern, row->topic);
        if (got != row->match)
            fail_msg("row %zu: match(\"%s\", \"%s\") = %d", i, row->pattern,
                     row->topic, got);
        /* The internal function, for valid input only. */
        size_t ps = strlen(row->pattern), ts = strlen(row->topic);
        int trc = zmesh__topic_check(row->topic, ts);
        if (zmesh__pattern_check(row->pattern, ps) == 0 &&
            (trc == 0 || trc == ZMESH_ERESERVED))
            assert_int_equal(
                zmesh__pattern_match(row->pattern, ps, row->topic, ts),
                row->match);
    }
}

typedef struct {
    const char *a;
    const char *b;
    bool intersect;
} intersect_row_t;

static const intersect_row_t intersect_rows[] = {
    {"a", "a", true},
    {"a", "b", false},
    {"a", "a.b", false},
    {"a.*", "a.b", true},
    {"a.*", "*.b", true},
    {"a.*", "b.*", false},
    {"a.>", "a", false},
    {"a.>", "a.b.c", true},
    {"a.>", "*", false},
    {"a.>", "*.*", true},
    {"a.>", "b.>", false},
    {">", "a.b.c", true},
    {">", ">", true},
    {"*", "*", true},
    {"*", "a.b", false},
    {"*", ">", true},
    {"*.*", ">", true},
    {"*.>", "a", false},
    {"*.>", "a.b.c", true},
    {"a.*.c", "a.b.>", true},
    {"a.*.c", "a.b.d", false},
    {"a.b.>", "a.*", false},
    {"a.b.>", "a.*.*", true},
    {"a.b.>", "a.b", false},
    {"a.b", "a.b.>", false},
    {"*.a.>", "x.*.b", true},
    {"*.a.>", "x.b.>", false},
    {"a.*.*", "a.>", true},
    {"a.*.*", "*.b", false},
    /* '$' in the first token */
    {">", "$mesh.x", false},
    {"*.x", "$mesh.x", false},
    {">", "$mesh.>", false},
    {"*", "$m", false},
    {"*.>", "$mesh.*", false},
    {"$mesh.>", "$mesh.*", true},
    {"$mesh.>", "$mesh", false},
    {"$mesh.>", "$mesh.peer.joined", true},
    {"$mesh.x", "$mesh.y", false},
    {"a.*", "a.$x", true},
    {"a.>", "a.$x.>", true},
};

static void
test_intersect_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof intersect_rows / sizeof intersect_rows[0];
         i++) {
        const intersect_row_t *row = &intersect_rows[i];
        size_t as = strlen(row->a), bs = strlen(row->b);
        assert_int_equal(zmesh__pattern_check(row->a, as), 0);
        assert_int_equal(zmesh__pattern_check(row->b, bs), 0);
        bool ab = zmesh__patterns_intersect(row->a, as, row->b, bs);
        bool ba = zmesh__patterns_intersect(row->b, bs, row->a, as);
        if (ab != row->intersect || ba != row->intersect)
            fail_msg("row %zu: intersect(\"%s\", \"%s\") = %d / %d", i, row->a,
                     row->b, ab, ba);
    }
}

typedef struct {
    const char *pattern;
    const char *filter; /* compared over `size` bytes */
    size_t size;
} filter_row_t;

static const filter_row_t filter_rows[] = {
    {"orders.>", "orders.", 7},
    {"orders.*", "orders.", 7},
    {"*.x", "", 0},
    {">", "", 0},
    {"*", "", 0},
    {"a.b", "a.b\0", 4},
    {"a", "a\0", 2},
    {"a.*.c", "a.", 2},
    {"a.b.*", "a.b.", 4},
    {"a.b.*.d.>", "a.b.", 4},
    {"$mesh.>", "$mesh.", 6},
    {"$mesh.peer.joined", "$mesh.peer.joined\0", 18},
    {"commandes.fa\xc3\xa7"
     "ade",
     "commandes.fa\xc3\xa7"
     "ade\0",
     18},
};

static void
test_filter_table(void **state)
{
    (void)state;
    char out[ZMESH_TOPIC_MAX + 2];
    for (size_t i = 0; i < sizeof filter_rows / sizeof filter_rows[0]; i++) {
        const filter_row_t *row = &filter_rows[i];
        memset(out, 0x55, sizeof out);
        size_t got = zmesh__pattern_filter(row->pattern, strlen(row->pattern),
                                           out, sizeof out);
        if (got != row->size || memcmp(out, row->filter, got) != 0)
            fail_msg("row %zu: filter(\"%s\") has %zu bytes", i, row->pattern,
                     got);
    }
    /* The longest pattern without a wildcard fills the whole buffer. */
    char pattern[ZMESH_TOPIC_MAX];
    memset(pattern, 'p', sizeof pattern);
    assert_int_equal(
        zmesh__pattern_filter(pattern, sizeof pattern, out, sizeof out),
        ZMESH_TOPIC_MAX + 1);
    assert_memory_equal(out, pattern, sizeof pattern);
    assert_int_equal(out[ZMESH_TOPIC_MAX], '\0');
}

static void
test_index_refcount(void **state)
{
    (void)state;
    zmesh__topic_index_t *index = NULL;
    assert_int_equal(zmesh__topic_index_new(&index), 0);
    assert_non_null(index);
    assert_int_equal(zmesh__topic_index_size(index), 0);
    assert_false(zmesh__topic_index_match(index, "a", 1));

    assert_int_equal(zmesh__topic_index_add(index, "a.b"), 1);
    assert_int_equal(zmesh__topic_index_add(index, "a.b"), 0);
    assert_int_equal(zmesh__topic_index_size(index), 1);
    assert_string_equal(zmesh__topic_index_at(index, 0), "a.b");
    assert_true(zmesh__topic_index_match(index, "a.b", 3));
    assert_false(zmesh__topic_index_match(index, "a.c", 3));
    assert_false(zmesh__topic_index_match(index, "a", 1));
    assert_false(zmesh__topic_index_match(index, "a.b.c", 5));

    assert_int_equal(zmesh__topic_index_add(index, "a.*"), 1);
    assert_true(zmesh__topic_index_match(index, "a.c", 3));
    assert_int_equal(zmesh__topic_index_size(index), 2);

    /* Two references: the first remove keeps the pattern. */
    assert_int_equal(zmesh__topic_index_remove(index, "a.b"), 0);
    assert_int_equal(zmesh__topic_index_size(index), 2);
    assert_int_equal(zmesh__topic_index_remove(index, "a.b"), 1);
    assert_int_equal(zmesh__topic_index_size(index), 1);
    assert_string_equal(zmesh__topic_index_at(index, 0), "a.*");
    assert_int_equal(zmesh__topic_index_remove(index, "a.b"), ZMESH_ENOTFOUND);
    assert_true(zmesh__topic_index_match(index, "a.b", 3)); /* via a.* */
    assert_int_equal(zmesh__topic_index_remove(index, "a.*"), 1);
    assert_false(zmesh__topic_index_match(index, "a.b", 3));
    assert_int_equal(zmesh__topic_index_remove(index, "a.*"), ZMESH_ENOTFOUND);
    assert_int_equal(zmesh__topic_index_remove(index, "x.y.z"),
                     ZMESH_ENOTFOUND);
    assert_int_equal(zmesh__topic_index_size(index), 0);

    /* "a" and "a.>" end on the same trie node but are two patterns. */
    assert_int_equal(zmesh__topic_index_add(index, "a"), 1);
    assert_int_equal(zmesh__topic_index_add(index, "a.>"), 1);
    assert_int_equal(zmesh__topic_index_size(index), 2);
    assert_true(zmesh__topic_index_match(index, "a", 1));
    assert_true(zmesh__topic_index_match(index, "a.b.c", 5));
    assert_int_equal(zmesh__topic_index_remove(index, "a"), 1);
    assert_false(zmesh__topic_index_match(index, "a", 1));
    assert_true(zmesh__topic_index_match(index, "a.b", 3));
    assert_int_equal(zmesh__topic_index_remove(index, "a.>"), 1);
    assert_false(zmesh__topic_index_match(index, "a.b", 3));
    assert_int_equal(zmesh__topic_index_remove(index, "a.*.>"),
                     ZMESH_ENOTFOUND);

    /* Invalid patterns are refused and never found. */
    assert_int_equal(zmesh__topic_index_add(index, "a.>.b"), ZMESH_EPATTERN);
    assert_int_equal(zmesh__topic_index_add(index, ""), ZMESH_EPATTERN);
    assert_int_equal(zmesh__topic_index_remove(index, "a..b"), ZMESH_ENOTFOUND);
    assert_int_equal(zmesh__topic_index_size(index), 0);

    zmesh__topic_index_destroy(&index);
    assert_null(index);
    zmesh__topic_index_destroy(&index);
    zmesh__topic_index_destroy(NULL);
}

static void
test_index_order_and_dollar(void **state)
{
    (void)state;
    zmesh__topic_index_t *index = NULL;
    assert_int_equal(zmesh__topic_index_new(&index), 0);
    const char *patterns[] = {"x", "y.>", "z.*", ">", "*"};
    for (size_t i = 0; i < 5; i++)
        assert_int_equal(zmesh__topic_index_add(index, patterns[i]), 1);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(zmesh__topic_index_at(index, i), patterns[i]);
    assert_int_equal(zmesh__topic_index_remove(index, "y.>"), 1);
    assert_int_equal(zmesh__topic_index_size(index), 4);
    assert_string_equal(zmesh__topic_index_at(index, 0), "x");
    assert_string_equal(zmesh__topic_index_at(index, 1), "z.*");
    assert_string_equal(zmesh__topic_index_at(index, 2), ">");
    assert_string_equal(zmesh__topic_index_at(index, 3), "*");
    assert_int_equal(zmesh__topic_index_add(index, "y.>"), 1);
    assert_string_equal(zmesh__topic_index_at(index, 4), "y.>");

    /* '>' and '*' at the root never match a '$' topic... */
    assert_true(zmesh__topic_index_match(index, "a.b", 3));
    assert_false(zmesh__topic_index_match(index, "$mesh.x", 7));
    assert_false(zmesh__topic_index_match(index, "$", 1));
    /* ...a literal '$' token does. */
    assert_int_equal(zmesh__topic_index_add(index, "$mesh.>"), 1);
    assert_true(zmesh__topic_index_match(index, "$mesh.peer.joined", 17));
    assert_false(zmesh__topic_index_match(index, "$mesh", 5));
    assert_false(zmesh__topic_index_match(index, "$other.x", 8));

    /* Invalid topics match nothing, even ">". */
    assert_false(zmesh__topic_index_match(index, "", 0));
    assert_false(zmesh__topic_index_match(index, "a..b", 4));
    assert_false(zmesh__topic_index_match(index, ".a", 2));
    assert_false(zmesh__topic_index_match(index, "a.", 2));
    assert_false(zmesh__topic_index_match(index, NULL, 3));
    char big[ZMESH_TOPIC_MAX + 1];
    memset(big, 'b', sizeof big);
    assert_false(zmesh__topic_index_match(index, big, sizeof big));
    assert_true(zmesh__topic_index_match(index, big, ZMESH_TOPIC_MAX));
    zmesh__topic_index_destroy(&index);
}

/*  Many siblings grow one node's table and, removed in a scattered order,
    exercise the backward-shift deletion. */
static void
test_index_many_siblings(void **state)
{
    (void)state;
    zmesh__topic_index_t *index = NULL;
    assert_int_equal(zmesh__topic_index_new(&index), 0);
    enum { N = 300 };
    char text[32];
    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof text, "k.%d", i);
        assert_int_equal(zmesh__topic_index_add(index, text), 1);
    }
    for (int i = 0; i < N; i++) {
        if (i % 3 == 0 || i % 7 == 0) {
            snprintf(text, sizeof text, "k.%d", i);
            assert_int_equal(zmesh__topic_index_remove(index, text), 1);
        }
    }
    size_t kept = 0;
    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof text, "k.%d", i);
        bool want = !(i % 3 == 0 || i % 7 == 0);
        kept += want;
        if (zmesh__topic_index_match(index, text, strlen(text)) != want)
            fail_msg("k.%d should %smatch", i, want ? "" : "not ");
    }
    assert_int_equal(zmesh__topic_index_size(index), kept);
    for (int i = 0; i < N; i++) {
        snprintf(text, sizeof text, "k.%d", i);
        zmesh__topic_index_remove(index, text);
    }
    assert_int_equal(zmesh__topic_index_size(index), 0);
    assert_false(zmesh__topic_index_match(index, "k.1", 3));
    zmesh__topic_index_destroy(&index);
}

/*  The deepest topic: 128 one-byte tokens in 255 bytes. */
static void
test_index_deepest(void **state)
{
    (void)state;
    char topic[ZMESH_TOPIC_MAX + 1], stars[ZMESH_TOPIC_MAX + 1];
    for (size_t i = 0; i < ZMESH_TOPIC_MAX; i++) {
        topic[i] = i % 2 ? '.' : 't';
        stars[i] = i % 2 ? '.' : '*';
    }
    topic[ZMESH_TOPIC_MAX] = stars[ZMESH_TOPIC_MAX] = '\0';
    assert_int_equal(zmesh_topic_check(topic), 0);
    assert_int_equal(zmesh_pattern_match(stars, topic), 1);
    zmesh__topic_index_t *index = NULL;
    assert_int_equal(zmesh__topic_index_new(&index), 0);
    assert_int_equal(zmesh__topic_index_add(index, stars), 1);
    assert_true(zmesh__topic_index_match(index, topic, ZMESH_TOPIC_MAX));
    assert_false(zmesh__topic_index_match(index, topic, ZMESH_TOPIC_MAX - 2));
    assert_int_equal(zmesh__topic_index_add(index, topic), 1);
    assert_int_equal(zmesh__topic_index_remove(index, stars), 1);
    assert_true(zmesh__topic_index_match(index, topic, ZMESH_TOPIC_MAX));
    zmesh__topic_index_destroy(&index);
}

/* ------------------------------------------------------------------------ */
/*  Random cross-checks over a small alphabet, so collisions are common.    */

static uint64_t rng_state;

static uint32_t
rng_next(void)
{
    /* xorshift64*: deterministic for a given seed, good enough here. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545F4914F6CDD1DULL) >> 32);
}

static const char *const literal_tokens[] = {"a", "b", "c", "$x"};

static void
random_pattern(char *out, size_t cap)
{
    size_t tokens = 1 + rng_next() % 4;
    out[0] = '\0';
    for (size_t i = 0; i < tokens; i++) {
        uint32_t pick = rng_next() % 7;
        const char *token = pick < 4   ? literal_tokens[pick]
                            : pick < 6 ? "*"
                                       : (i + 1 == tokens ? ">" : "*");
        if (i)
            strncat(out, ".", cap - strlen(out) - 1);
        strncat(out, token, cap - strlen(out) - 1);
    }
}

/*  Every topic of 1..4 tokens over literal_tokens plus "z", a token no
    pattern names. A '>' takes one token as well as many, and a wildcard
    can take "z" (or any literal), so two patterns of at most 4 tokens
    intersect exactly when some topic of this universe matches both. */
enum { UNIVERSE_MAX = 5 + 25 + 125 + 625 };

static size_t
build_universe(char universe[][24])
{
    static const char *const tokens[] = {"a", "b", "c", "$x", "z"};
    size_t count = 0;
    for (size_t length = 1; length <= 4; length++) {
        size_t combos = 1;
        for (size_t i = 0; i < length; i++)
            combos *= 5;
        for (size_t n = 0; n < combos; n++) {
            char *out = universe[count++];
            out[0] = '\0';
            size_t rest = n;
            for (size_t i = 0; i < length; i++) {
                if (i)
                    strcat(out, ".");
                strcat(out, tokens[rest % 5]);
                rest /= 5;
            }
        }
    }
    return count;
}

static void
test_random_cross_check(void **state)
{
    (void)state;
    rng_state = 0x5eed2024c0ffeeULL;
    static char universe[UNIVERSE_MAX][24];
    size_t universe_size = build_universe(universe);
    assert_int_equal(universe_size, UNIVERSE_MAX);

    enum { PATTERNS = 40, ROUNDS = 4 };
    char patterns[PATTERNS][24];
    zmesh__topic_index_t *index = NULL;
    assert_int_equal(zmesh__topic_index_new(&index), 0);
    size_t checked = 0;
    for (int round = 0; round < ROUNDS; round++) {
        for (int i = 0; i < PATTERNS; i++) {
            random_pattern(patterns[i], sizeof patterns[i]);
            assert_int_equal(
                zmesh__pattern_check(patterns[i], strlen(patterns[i])), 0);
            assert_true(zmesh__topic_index_add(index, patterns[i]) >= 0);
        }
        /* Drop a random part again so removal and pruning are covered. */
        for (int i = 0; i < PATTERNS / 2; i++)
            zmesh__topic_index_remove(index, patterns[rng_next() % PATTERNS]);

        /* Index against a linear scan of what the index says it holds. */
        size_t size = zmesh__topic_index_size(index);
        for (size_t t = 0; t < universe_size; t++) {
            const char *topic = universe[t];
            size_t ts = strlen(topic);
            bool linear = false;
            for (size_t i = 0; i < size && !linear; i++) {
                const char *p = zmesh__topic_index_at(index, i);
                linear = zmesh__pattern_match(p, strlen(p), topic, ts);
            }
            if (zmesh__topic_index_match(index, topic, ts) != linear)
                fail_msg("round %d: index and scan disagree on \"%s\"", round,
                         topic);
            checked++;
        }

        /* Intersection against a search for a common topic, and the
           filter against every topic it must let through. */
        for (int i = 0; i < PATTERNS; i++) {
            const char *a = patterns[i];
            size_t as = strlen(a);
            char filter[ZMESH_TOPIC_MAX + 2];
            size_t fs = zmesh__pattern_filter(a, as, filter, sizeof filter);
            for (int j = 0; j < PATTERNS; j++) {
                const char *b = patterns[j];
                size_t bs = strlen(b);
                bool common = false;
                for (size_t t = 0; t < universe_size && !common; t++) {
                    size_t ts = strlen(universe[t]);
                    common = zmesh__pattern_match(a, as, universe[t], ts) &&
                             zmesh__pattern_match(b, bs, universe[t], ts);
                }
                if (zmesh__patterns_intersect(a, as, b, bs) != common)
                    fail_msg("intersect(\"%s\", \"%s\") should be %d", a, b,
                             common);
            }
            for (size_t t = 0; t < universe_size; t++) {
                size_t ts = strlen(universe[t]);
                if (!zmesh__pattern_match(a, as, universe[t], ts))
                    continue;
                /* A data frame starts with the topic and a NUL. */
                if (fs > ts + 1 || memcmp(filter, universe[t], fs) != 0)
                    fail_msg("filter of \"%s\" drops \"%s\"", a, universe[t]);
            }
        }
    }
    assert_true(checked >= 3000);
    zmesh__topic_index_destroy(&index);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syntax_table),
        cmocka_unit_test(test_length_limit),
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_intersect_table),
        cmocka_unit_test(test_filter_table),
        cmocka_unit_test(test_index_refcount),
        cmocka_unit_test(test_index_order_and_dollar),
        cmocka_unit_test(test_index_many_siblings),
        cmocka_unit_test(test_index_deepest),
        cmocka_unit_test(test_random_cross_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
