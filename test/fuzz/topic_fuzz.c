/*  topic_fuzz.c - fuzz target for lib/topic.c. The input is a pattern and
    a topic separated by the first NUL byte (without one, the whole input
    is both). Every function must survive any bytes, and the answers must
    agree with each other: a topic that matches a pattern is also matched
    by an index holding that pattern, passes the pattern's ZeroMQ prefix
    filter, and (when it is a valid pattern itself) intersects it; a valid
    topic matches itself; intersection is symmetric. */
#include "topic.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            abort();                                                           \
    } while (0)

/*  The public functions take C strings: NUL-terminated copies, cut at
    their first NUL like any C string would be. */
static void
s_public(const char *pattern, size_t pattern_size, const char *topic,
         size_t topic_size)
{
    char p[2 * ZMESH_TOPIC_MAX], t[2 * ZMESH_TOPIC_MAX];
    size_t ps = pattern_size < sizeof p - 1 ? pattern_size : sizeof p - 1;
    size_t ts = topic_size < sizeof t - 1 ? topic_size : sizeof t - 1;
    memcpy(p, pattern, ps);
    p[ps] = '\0';
    memcpy(t, topic, ts);
    t[ts] = '\0';
    int topic_rc = zmesh_topic_check(t);
    int pattern_rc = zmesh_pattern_check(p);
    int match = zmesh_pattern_match(p, t);
    CHECK(match == 0 || match == 1);
    if (match)
        CHECK(pattern_rc == 0 &&
              (topic_rc == 0 || topic_rc == ZMESH_ERESERVED));
}

static void
s_consistency(const char *pattern, size_t pattern_size, const char *topic,
              size_t topic_size)
{
    int topic_rc = zmesh__topic_check(topic, topic_size);
    bool topic_ok = topic_rc == 0 || topic_rc == ZMESH_ERESERVED;
    bool pattern_ok = zmesh__pattern_check(pattern, pattern_size) == 0;
    bool topic_is_pattern = zmesh__pattern_check(topic, topic_size) == 0;
    /* A topic is a pattern without wildcards. */
    if (topic_ok)
        CHECK(topic_is_pattern);

    zmesh__topic_index_t *index = NULL;
    CHECK(zmesh__topic_index_new(&index) == 0);
    /* An index holding only literals elsewhere must not match by accident,
       and an invalid topic must not crash the walk. */
    CHECK(zmesh__topic_index_add(index, "zz.fuzz.never") == 1);
    CHECK(!zmesh__topic_index_match(index, topic, topic_size) ||
          (topic_size == 13 && memcmp(topic, "zz.fuzz.never", 13) == 0));

    if (pattern_ok) {
        char filter[ZMESH_TOPIC_MAX + 2];
        size_t filter_size =
            zmesh__pattern_filter(pattern, pattern_size, filter, sizeof filter);
        CHECK(filter_size <= pattern_size + 1);
        CHECK(memcmp(filter, pattern,
                     filter_size <= pattern_size ? filter_size
                                                 : pattern_size) == 0);
        CHECK(zmesh__patterns_intersect(pattern, pattern_size, pattern,
                                        pattern_size));
        /* The index takes C strings; a valid pattern holds no NUL. */
        char text[ZMESH_TOPIC_MAX + 1];
        memcpy(text, pattern, pattern_size);
        text[pattern_size] = '\0';
        CHECK(zmesh__topic_index_add(index, text) >= 0);

        if (topic_ok) {
            bool match =
                zmesh__pattern_match(pattern, pattern_size, topic, topic_size);
            /* The index holds `pattern` and a literal that only matches
               itself. */
            bool literal =
                topic_size == 13 && memcmp(topic, "zz.fuzz.never", 13) == 0;
            CHECK(zmesh__topic_index_match(index, topic, topic_size) ==
                  (match || literal));
            if (match) {
                CHECK(filter_size <= topic_size + 1);
                CHECK(memcmp(filter, topic,
                             filter_size <= topic_size ? filter_size
                                                       : topic_size) == 0);
                if (filter_size == topic_size + 1)
                    CHECK(filter[topic_size] == '\0');
                CHECK(zmesh__patterns_intersect(pattern, pattern_size, topic,
                                                topic_size));
            }
        }
        if (topic_is_pattern)
            CHECK(zmesh__patterns_intersect(pattern, pattern_size, topic,
                                            topic_size) ==
                  zmesh__patterns_intersect(topic, topic_size, pattern,
                                            pattern_size));
    }
    if (topic_ok)
        CHECK(zmesh__pattern_match(topic, topic_size, topic, topic_size));
    zmesh__topic_index_destroy(&index);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *text = (const char *)data;
    const char *nul = memchr(text, 0, size);
    const char *pattern = text, *topic = text;
    size_t pattern_size = size, topic_size = size;
    if (nul) {
        pattern_size = (size_t)(nul - text);
        topic = nul + 1;
        topic_size = size - pattern_size - 1;
    }
    /* The whole input as one name, NULs and all. */
    (void)zmesh__topic_check(text, size);
    (void)zmesh__pattern_check(text, size);
    s_consistency(pattern, pattern_size, topic, topic_size);
    s_public(pattern, pattern_size, topic, topic_size);
    return 0;
}
