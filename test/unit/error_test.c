/*  error_test.c - every error code has its own sentence, unknown codes get
    a fallback, the version string matches the header's numbers, and the
    log sink sees lines only at or below its level. */
#include "log.h"
#include "zmesh.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

static void
test_every_code_has_a_distinct_sentence(void **state)
{
    (void)state;
    const char *seen[32] = {0};
    int count = 0;
    for (int code = ZMESH_OK; code >= ZMESH_EFULL; code--) {
        const char *text = zmesh_strerror(code);
        assert_non_null(text);
        assert_string_not_equal(text, "unknown error");
        for (int i = 0; i < count; i++)
            assert_string_not_equal(text, seen[i]);
        seen[count++] = text;
    }
    assert_string_equal(zmesh_strerror(ZMESH_EFULL - 1), "unknown error");
    assert_string_equal(zmesh_strerror(12345), "unknown error");
}

static void
test_version_matches_header(void **state)
{
    (void)state;
    char expected[32];
    snprintf(expected, sizeof expected, "%d.%d.%d", ZMESH_VERSION_MAJOR,
             ZMESH_VERSION_MINOR, ZMESH_VERSION_PATCH);
    assert_string_equal(zmesh_version(), expected);
}

static int s_lines;
static char s_last[256];

static void
s_sink(zmesh_log_level_t level, const char *message, void *arg)
{
    (void)level;
    (void)arg;
    s_lines++;
    snprintf(s_last, sizeof s_last, "%s", message);
}

static void
test_log_levels_and_limits(void **state)
{
    (void)state;
    s_lines = 0;
    zmesh__log(ZMESH_LOG_ERROR, "silent until a sink is set");
    assert_int_equal(s_lines, 0);
    zmesh_log_set(s_sink, ZMESH_LOG_WARNING, NULL);
    zmesh__log(ZMESH_LOG_INFO, "below the level");
    assert_int_equal(s_lines, 0);
    zmesh__log(ZMESH_LOG_WARNING, "value %d", 42);
    assert_int_equal(s_lines, 1);
    assert_string_equal(s_last, "value 42");

    zmesh__log_limit_t limit = {0, 0};
    for (int i = 0; i < 100; i++)
        zmesh__log_limited(&limit, 60000, "flood %d", i);
    assert_int_equal(s_lines, 2); // one line, 99 held back
    assert_int_equal(limit.suppressed, 99);
    limit.next_ms = 0; // as if the interval had passed
    zmesh__log_limited(&limit, 60000, "again");
    assert_string_equal(s_last, "again (99 similar suppressed)");
    zmesh_log_set(NULL, ZMESH_LOG_ERROR, NULL);
    zmesh__log(ZMESH_LOG_ERROR, "silent again");
    assert_int_equal(s_lines, 3);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_code_has_a_distinct_sentence),
        cmocka_unit_test(test_version_matches_header),
        cmocka_unit_test(test_log_levels_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
