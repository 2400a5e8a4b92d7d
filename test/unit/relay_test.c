/*  relay_test.c - mesh-relay's engine without the network: the value
    syntax (durations, sizes, counts, sync policies, stream names), flags
    and NAME:VALUE settings, the configuration file with its line-numbered
    errors, the checks made before anything touches the disk (and that
    they touch nothing), the $relay.read request decoder against good and
    bad payloads, and open: a store written here with events, a gap record
    and a record that is no frame is read through and counted, and the
    publisher names file is compacted. Every test that needs files works
    in its own mkdtemp directory. */
#include "codec.h"
#include "relay.h"
#include "store.h"

#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

static char s_err[512];

/* ------------------------------------------------------------------------ */
/*  Value syntax                                                            */

static void
test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        uint64_t ms;
    } cases[] = {
        {"0", 0, 0},
        {"1ms", 0, 1},
        {"90s", 0, 90000},
        {"15m", 0, 900000},
        {"2h", 0, 7200000},
        {"7d", 0, 604800000},
        {"1w", 0, 604800000},
        {"1h30m", 0, 5400000},
        {"1m500ms", 0, 60500},
        {"36500d", 0, 3153600000000ull},
        {"36501d", ZMESH_EINVAL, 0}, /* over 100 years */
        {"", ZMESH_EINVAL, 0},
        {"5", ZMESH_EINVAL, 0}, /* a unit is needed */
        {"5x", ZMESH_EINVAL, 0},
        {"h", ZMESH_EINVAL, 0},
        {"-5s", ZMESH_EINVAL, 0},
        {"5 s", ZMESH_EINVAL, 0},
        {"5S", ZMESH_EINVAL, 0},
        {"1.5h", ZMESH_EINVAL, 0},
        {"5mss", ZMESH_EINVAL, 0},
        {"99999999999999999999s", ZMESH_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint64_t ms = 12345;
        int rc = zmesh__relay_parse_duration(cases[i].text, &ms);
        if (rc != cases[i].rc)
            fail_msg("duration '%s': rc %d, expected %d", cases[i].text, rc,
                     cases[i].rc);
        assert_int_equal(ms, rc == 0 ? cases[i].ms : 12345);
    }
    assert_int_equal(zmesh__relay_parse_duration(NULL, NULL), ZMESH_EINVAL);
}

static void
test_sizes_and_counts(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        uint64_t bytes;
    } sizes[] = {
        {"0", 0, 0},
        {"4096", 0, 4096},
        {"10b", 0, 10},
        {"1K", 0, 1024},
        {"1kb", 0, 1024},
        {"2KiB", 0, 2048},
        {"64M", 0, 64ull << 20},
        {"64MiB", 0, 64ull << 20},
        {"10G", 0, 10ull << 30},
        {"1T", 0, 1ull << 40},
        {"1048576T", 0, 1ull << 60},
        {"1048577T", ZMESH_EINVAL, 0},
        {"", ZMESH_EINVAL, 0},
        {"M", ZMESH_EINVAL, 0},
        {"1.5G", ZMESH_EINVAL, 0},
        {"1 G", ZMESH_EINVAL, 0},
        {"-1", ZMESH_EINVAL, 0},
        {"1P", ZMESH_EINVAL, 0},
        {"12Mx", ZMESH_EINVAL, 0},
    };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t bytes = 7;
        int rc = zmesh__relay_parse_size(sizes[i].text, &bytes);
        if (rc != sizes[i].rc)
            fail_msg("size '%s': rc %d", sizes[i].text, rc);
        assert_int_equal(bytes, rc == 0 ? sizes[i].bytes : 7);
    }
    uint64_t count = 0;
    assert_int_equal(zmesh__relay_parse_count("1000000", &count), 0);
    assert_int_equal(count, 1000000);
    assert_int_equal(zmesh__relay_parse_count("0", &count), 0);
    assert_int_equal(count, 0);
    assert_int_equal(zmesh__relay_parse_count("1K", &count), ZMESH_EINVAL);
    assert_int_equal(zmesh__relay_parse_count("", &count), ZMESH_EINVAL);
    assert_int_equal(zmesh__relay_parse_count("9223372036854775807", &count),
                     ZMESH_EINVAL);
}

static void
test_sync_policies_and_names(void **state)
{
    (void)state;
    static const struct {
        const char *text;
        int rc;
        zmesh__store_sync_t sync;
        uint32_t interval;
        const char *canonical;
    } cases[] = {
        {"always", 0, ZMESH__STORE_SYNC_ALWAYS, 0, "always"},
        {"never", 0, ZMESH__STORE_SYNC_NEVER, 0, "never"},
        {"interval:200", 0, ZMESH__STORE_SYNC_INTERVAL, 200, "interval:200"},
        {"interval:2s", 0, ZMESH__STORE_SYNC_INTERVAL, 2000, "interval:2000"},
        {"interval:3600000", 0, ZMESH__STORE_SYNC_INTERVAL, 3600000,
         "interval:3600000"},
        {"interval:3600001", ZMESH_EINVAL, 0, 0, NULL},
        {"interval:0", ZMESH_EINVAL, 0, 0, NULL},
        {"interval:", ZMESH_EINVAL, 0, 0, NULL},
        {"interval", ZMESH_EINVAL, 0, 0, NULL},
        {"Always", ZMESH_EINVAL, 0, 0, NULL},
        {"sometimes", ZMESH_EINVAL, 0, 0, NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zmesh__store_sync_t sync = ZMESH__STORE_SYNC_NEVER;
        uint32_t interval = 99;
        int rc = zmesh__relay_parse_sync(cases[i].text, &sync, &interval);
        if (rc != cases[i].rc)
            fail_msg("sync '%s': rc %d", cases[i].text, rc);
        if (rc != 0)
            continue;
        assert_int_equal(sync, cases[i].sync);
        assert_int_equal(interval, cases[i].interval);
        char text[32];
        zmesh__relay_sync_text(sync, interval, text, sizeof text);
        assert_string_equal(text, cases[i].canonical);
    }
    static const struct {
        const char *name;
        bool ok;
    } names[] = {{"orders", true},
                 {"a", true},
                 {"A-b_9", true},
                 {"0123456789012345678901234567890123456789012345678901234"
                  "567890123",
                  true},
                 {"0123456789012345678901234567890123456789012345678901234"
                  "5678901234",
                  false},
                 {"", false},
                 {"a.b", false},
                 {"a b", false},
                 {"a/b", false},
                 {"..", false},
                 {"caf\xc3\xa9", false}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (zmesh__relay_stream_name_ok(names[i].name) != names[i].ok)
            fail_msg("stream name '%s'", names[i].name);
    assert_false(zmesh__relay_stream_name_ok(NULL));
}

/* ------------------------------------------------------------------------ */
/*  Settings and the file                                                   */

static int
s_set(zmesh__relay_config_t *config, const char *key, const char *value)
{
    char source[64];
    snprintf(source, sizeof source, "--%s", key);
    return zmesh__relay_config_set(config, key, value, source, s_err,
                                   sizeof s_err);
}

static void
s_expect_error(int rc, const char *needle)
{
    assert_int_not_equal(rc, 0);
    if (!strstr(s_err, needle))
        fail_msg("'%s' not in '%s'", needle, s_err);
}

static void
test_flags(void **state)
{
    (void)state;
    zmesh__relay_config_t c;
    zmesh__relay_config_init(&c);
    assert_int_equal(s_set(&c, "stream", "orders=orders.>,returns.*"), 0);
    assert_int_equal(c.streams_count, 1);
    assert_int_equal(c.streams[0].patterns_count, 2);
    assert_string_equal(c.streams[0].patterns[1], "returns.*");
    static const struct {
        const char *key, *value, *needle;
    } bad[] = {
        {"stream", "orders=x.>", "defined twice"},
        {"stream", "noequals", "NAME=PATTERN"},
        {"stream", "bad.name=x", "not a stream name"},
        {"stream", "=x", "not a stream name"},
        {"stream", "e=", "no pattern"},
        {"stream", "e=a..b", "not a topic pattern"},
        {"stream", "e=a.>.b", "not a topic pattern"},
        {"stream", "e=a,a", "given twice"},
        {"max-age", "5", "not a duration"},
        {"max-age", "orders:5", "not a duration"},
        {"max-age", "bad.name:5m", "not a stream name"},
        {"max-age", ":5m", "neither"},
        {"max-bytes", "ten", "not a size"},
        {"max-events", "1.5", "whole number"},
        {"segment-bytes", "63", "segment size"},
        {"segment-bytes", "2T", "segment size"},
        {"sync", "sometimes", "sync policy"},
        {"sync", "orders:sometimes", "sync policy"},
        {"beacon-port", "0", "port number"},
        {"beacon-port", "65536", "port number"},
        {"beacon-interval", "soon", "time"},
        {"max-msg-size", "1K", "message size"},
        {"discovery", "everywhere", "host, lan"},
        {"mesh", "", "empty"},
        {"dir", "", "usable directory"},
        {"colour", "blue", "unknown setting"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        s_err[0] = '\0';
        int rc = s_set(&c, bad[i].key, bad[i].value);
        if (rc == 0 || !strstr(s_err, bad[i].needle))
            fail_msg("--%s %s: rc %d, '%s'", bad[i].key, bad[i].value, rc,
                     s_err);
        // The message names where the value came from.
        assert_non_null(strstr(s_err, bad[i].key));
    }
    assert_int_equal(c.streams_count, 1); // failed --stream added nothing
    assert_int_equal(s_set(&c, "stream", "metrics=metrics.>"), 0);
    assert_int_equal(s_set(&c, "max-age", "7d"), 0);
    assert_int_equal(s_set(&c, "max-age", "metrics:2h"), 0);
    assert_int_equal(s_set(&c, "sync", "interval:500"), 0); // not a stream
    assert_int_equal(s_set(&c, "sync", "metrics:never"), 0);
    assert_int_equal(s_set(&c, "max-bytes", "orders:1G"), 0);
    assert_int_equal(s_set(&c, "segment-bytes", "1M"), 0);
    assert_int_equal(s_set(&c, "max-events", "ghost:10"), 0); // checked later
    assert_int_equal(s_set(&c, "dir", "/tmp"), 0);
    s_expect_error(zmesh__relay_config_check(&c, s_err, sizeof s_err),
                   "no stream 'ghost'");
    zmesh__relay_config_clear(&c);

    zmesh__relay_config_init(&c);
    assert_int_equal(s_set(&c, "stream", "orders=orders.>"), 0);
    assert_int_equal(s_set(&c, "stream", "metrics=metrics.>"), 0);
    assert_int_equal(s_set(&c, "max-age", "7d"), 0);
    assert_int_equal(s_set(&c, "max-age", "metrics:2h"), 0);
    assert_int_equal(s_set(&c, "sync", "interval:500"), 0);
    assert_int_equal(s_set(&c, "sync", "metrics:never"), 0);
    assert_int_equal(s_set(&c, "max-bytes", "orders:1G"), 0);
    assert_int_equal(s_set(&c, "dir", "/tmp/zmesh-relay-test-not-made"), 0);
    assert_int_equal(zmesh__relay_config_check(&c, s_err, sizeof s_err), 0);
    zmesh__store_config_t store;
    zmesh__relay_store_config(&c, 0, &store); // orders
    assert_int_equal(store.max_age_ms, 7 * 86400000ull);
    assert_int_equal(store.max_bytes, 1ull << 30);
    assert_int_equal(store.max_events, 0);
    assert_int_equal(store.sync, ZMESH__STORE_SYNC_INTERVAL);
    assert_int_equal(store.sync_interval_ms, 500);
    assert_int_equal(store.segment_bytes, 0); // the store's default
    assert_true(store.max_record >= 1048576 + ZMESH__FRAME_OVERHEAD);
    zmesh__relay_store_config(&c, 1, &store); // metrics
    assert_int_equal(store.max_age_ms, 2 * 3600000ull);
    assert_int_equal(store.max_bytes, 0);
    assert_int_equal(store.sync, ZMESH__STORE_SYNC_NEVER);
    zmesh__relay_config_clear(&c);
}

static void
test_config_file(void **state)
{
    (void)state;
    static const char good[] = "# a relay\n"
                               "mesh = prod\n"
                               "dir = /tmp/zmesh-relay-test-not-made\r\n"
                               "  beacon-port=6000  \n"
                               "seed = tcp://127.0.0.1:5000\n"
                               "seed = tcp://127.0.0.1:5001\n"
                               "max-age = 7d\n"
                               "; another comment\n"
                               "\n"
                               "[stream orders]\n"
                               "patterns = orders.> returns.*,refunds.>\n"
                               "max-bytes = 10G\n"
                               "sync = interval:200\n"
                               "[ stream  metrics ]\n"
                               "pattern = metrics.a,b\n"
                               "segment-bytes = 4M\n";
    zmesh__relay_config_t c;
    zmesh__relay_config_init(&c);
    assert_int_equal(zmesh__relay_config_parse(&c, good, strlen(good),
                                               "relay.conf", s_err,
                                               sizeof s_err),
                     0);
    assert_string_equal(c.mesh, "prod");
    assert_int_equal(c.beacon_port, 6000);
    assert_int_equal(c.seeds_count, 2);
    assert_int_equal(c.streams_count, 2);
    assert_int_equal(c.streams[0].patterns_count, 3);
    assert_string_equal(c.streams[0].patterns[2], "refunds.>");
    assert_string_equal(c.streams[1].name, "metrics");
    assert_string_equal(c.streams[1].patterns[0], "metrics.a,b");
    // A flag after the file overrides it.
    assert_int_equal(s_set(&c, "mesh", "staging"), 0);
    assert_string_equal(c.mesh, "staging");
    assert_int_equal(zmesh__relay_config_check(&c, s_err, sizeof s_err), 0);
    zmesh__store_config_t store;
    zmesh__relay_store_config(&c, 0, &store);
    assert_int_equal(store.max_bytes, 10ull << 30);
    assert_int_equal(store.max_age_ms, 7 * 86400000ull);
    assert_int_equal(store.sync_interval_ms, 200);
    zmesh__relay_store_config(&c, 1, &store);
    assert_int_equal(store.segment_bytes, 4ull << 20);
    assert_int_equal(store.sync, ZMESH__STORE_SYNC_ALWAYS);
    zmesh__relay_config_clear(&c);

    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"mesh prod\n", "f:1: expected 'key = value'"},
        {"\n\ncolour = blue\n", "f:3: unknown setting 'colour'"},
        {"[stream orders]\nmesh = x\n", "f:2: 'mesh' does not belong"},
        {"[stream orders\n", "f:1: a section header"},
        {"[streams orders]\n", "f:1: unknown section"},
        {"[relay]\n", "f:1: unknown section"},
        {"[stream a.b]\n", "f:1: 'a.b' is not a stream name"},
        {"[stream a]\n[stream a]\n", "f:2: stream 'a' is defined twice"},
        {"[stream a]\npatterns = a..b\n", "f:2: 'a..b' is not a topic"},
        {"[stream a]\npatterns =\n", "f:2: no pattern"},
        {"[stream a]\nmax-age = forever\n", "f:2: 'forever' is not a dur"},
        {"= x\n", "f:1: the key is missing"},
        {"config = other.conf\n", "cannot include"},
        {"stream = a=x.>\n[stream a]\n", "f:2: stream 'a' is defined twice"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zmesh__relay_config_init(&c);
        s_err[0] = '\0';
        int rc = zmesh__relay_config_parse(&c, bad[i].text, strlen(bad[i].text),
                                           "f", s_err, sizeof s_err);
        if (rc == 0 || !strstr(s_err, bad[i].needle))
            fail_msg("file %zu: rc %d, '%s' lacks '%s'", i, rc, s_err,
                     bad[i].needle);
        zmesh__relay_config_clear(&c);
    }
    zmesh__relay_config_init(&c);
    char nul[] = "mesh = a\0b\n";
    s_expect_error(zmesh__relay_config_parse(&c, nul, sizeof nul - 1, "f",
                                             s_err, sizeof s_err),
                   "NUL");
    char *long_line = malloc(5000);
    assert_non_null(long_line);
    memset(long_line, 'a', 4999);
    long_line[4999] = '\0';
    s_expect_error(zmesh__relay_config_parse(&c, long_line, 4999, "f", s_err,
                                             sizeof s_err),
                   "longer than 4096");
    free(long_line);
    s_expect_error(zmesh__relay_config_load(&c, "/nonexistent/relay.conf",
                                            s_err, sizeof s_err),
                   "cannot read");
    // A section without patterns is caught by the check.
    const char *empty = "dir = /tmp\n[stream a]\nmax-age = 1h\n";
    assert_int_equal(zmesh__relay_config_parse(&c, empty, strlen(empty), "f",
                                               s_err, sizeof s_err),
                     0);
    s_expect_error(zmesh__relay_config_check(&c, s_err, sizeof s_err),
                   "stream 'a' has no patterns");
    zmesh__relay_config_clear(&c);
}

static size_t
s_entries(const char *path)
{
    DIR *dir = opendir(path);
    assert_non_null(dir);
    size_t n = 0;
    for (struct dirent *e; (e = readdir(dir));)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(dir);
    return n;
}

static void
test_check_touches_nothing(void **state)
{
    (void)state;
    char root[64];
    snprintf(root, sizeof root, "/tmp/zmesh-relay-XXXXXX");
    assert_non_null(mkdtemp(root));
    char path[128], file[128];
    snprintf(file, sizeof file, "%s/file", root);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    zmesh__relay_config_t c;

    zmesh__relay_config_init(&c);
    s_expect_error(zmesh__relay_config_check(&c, s_err, sizeof s_err),
                   "no --dir");
    assert_int_equal(s_set(&c, "dir", root), 0);
    s_expect_error(zmesh__relay_config_check(&c, s_err, sizeof s_err),
                   "no stream given");
    assert_int_equal(s_set(&c, "stream", "s=a.>"), 0);
    // Missing levels under a writable directory: good, and not made.
    snprintf(path, sizeof path, "%s/x/y/z", root);
    assert_int_equal(s_set(&c, "dir", path), 0);
    assert_int_equal(zmesh__relay_config_check(&c, s_err, sizeof s_err), 0);
    assert_int_equal(s_entries(root), 1);
    // Under a regular file.
    snprintf(path, sizeof path, "%s/file/d", root);
    assert_int_equal(s_set(&c, "dir", path), 0);
    s_expect_error(zmesh__relay_config_check(&c, s_err, sizeof s_err),
                   "not a directory");
    // The directory is a file.
    assert_int_equal(s_set(&c, "dir", file), 0);
    s_expect_error(zmesh__relay_config_check(&c, s_err, sizeof s_err),
                   "is not a directory");
    // A stream's directory is a file.
    snprintf(path, sizeof path, "%s/s", root);
    f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(s_set(&c, "dir", root), 0);
    s_expect_error(zmesh__relay_config_check(&c, s_err, sizeof s_err),
                   "stream 's'");
    unlink(path);
    assert_int_equal(zmesh__relay_config_check(&c, s_err, sizeof s_err), 0);
    // Discovery needs an interface that exists.
    assert_int_equal(s_set(&c, "discovery", "lan"), 0);
    s_expect_error(zmesh__relay_config_check(&c, s_err, sizeof s_err),
                   "needs --interface");
    assert_int_equal(s_set(&c, "interface", "zmesh-no-such-if0"), 0);
    s_expect_error(zmesh__relay_config_check(&c, s_err, sizeof s_err),
                   "no interface");
    assert_int_equal(s_set(&c, "interface", "127.0.0.1"), 0);
    assert_int_equal(zmesh__relay_config_check(&c, s_err, sizeof s_err), 0);
    assert_int_equal(s_set(&c, "discovery", "host"), 0);
    s_expect_error(zmesh__relay_config_check(&c, s_err, sizeof s_err),
                   "not host");
    zmesh__relay_config_clear(&c);
    assert_int_equal(s_entries(root), 1);

    // A relay made from a checked configuration touches nothing either;
    // the agent refuses a bad mesh name there.
    zmesh__relay_config_init(&c);
    snprintf(path, sizeof path, "%s/new", root);
    assert_int_equal(s_set(&c, "dir", path), 0);
    assert_int_equal(s_set(&c, "stream", "s=a.>"), 0);
    zmesh__relay_t *relay = NULL;
    assert_int_not_equal(zmesh__relay_new(&relay, &c, s_err, sizeof s_err),
                         0); // not checked yet
    assert_int_equal(zmesh__relay_config_check(&c, s_err, sizeof s_err), 0);
    assert_int_equal(zmesh__relay_new(&relay, &c, s_err, sizeof s_err), 0);
    zmesh__relay_destroy(&relay);
    assert_null(relay);
    assert_int_equal(s_set(&c, "mesh", "bad mesh"), 0);
    assert_int_equal(zmesh__relay_config_check(&c, s_err, sizeof s_err), 0);
    s_expect_error(zmesh__relay_new(&relay, &c, s_err, sizeof s_err), "--mesh");
    assert_null(relay);
    zmesh__relay_config_clear(&c);
    assert_int_equal(s_entries(root), 1);
    unlink(file);
    rmdir(root);
}

/* ------------------------------------------------------------------------ */
/*  $relay.read requests                                                    */

static void
test_read_decode(void **state)
{
    (void)state;
    static const struct {
        const char *hex; /* the payload */
        int rc;
        const char *needle; /* in the error, or the stream when good */
    } cases[] = {
        /* {"stream":"orders"} */
        {"81a673747265616da66f7264657273", 0, "orders"},
        /* {"stream":"o","from":5,"max":1000} */
        {"83a673747265616da16fa466726f6d05a36d6178cd03e8", 0, "o"},
        /* {"stream":"o","since":-1} */
        {"82a673747265616da16fa573696e6365ff", 0, "o"},
        /* {"stream":"o","bytes":4096,"later":[1]} */
        {"83a673747265616da16fa562797465"
         "73cd1000a56c617465729101",
         0, "o"},
        {"", ZMESH_EPROTO, "empty"},
        {"c0", ZMESH_EPROTO, "must be a map"},
        {"90", ZMESH_EPROTO, "must be a map"},
        {"80", ZMESH_EPROTO, "\"stream\" is missing"},
        {"81a673747265616d01", ZMESH_EPROTO, "stream name"},
        {"81a673747265616da3612e62", ZMESH_EPROTO, "stream name"},
        {"81a673747265616da0", ZMESH_EPROTO, "stream name"},
        {"810101", ZMESH_EPROTO, "keys must be strings"},
        /* stream given twice */
        {"82a673747265616da16fa673747265616da16f", ZMESH_EPROTO, "twice"},
        /* from -1 */
        {"82a673747265616da16fa466726f6dff", ZMESH_EPROTO, "\"from\""},
        /* since 1.5 */
        {"82a673747265616da16fa573696e6365cb3ff8000000000000", ZMESH_EPROTO,
         "\"since\""},
        /* since 2^64-1 */
        {"82a673747265616da16fa573696e6365cfffffffffffffffff", ZMESH_EPROTO,
         "\"since\""},
        /* max 0, max 1001 */
        {"82a673747265616da16fa36d617800", ZMESH_EPROTO, "\"max\""},
        {"82a673747265616da16fa36d6178cd03e9", ZMESH_EPROTO, "\"max\""},
        /* bytes 100 */
        {"82a673747265616da16fa56279746573cd0064", ZMESH_EPROTO, "\"bytes\""},
        /* from and since */
        {"83a673747265616da16fa466726f6d01a573696e636501", ZMESH_EPROTO,
         "not both"},
        /* truncated, trailing bytes, c1 */
        {"81a673747265616da66f72646572", ZMESH_EPROTO, "not one msgpack"},
        {"81a673747265616da16f00", ZMESH_EPROTO, "not one msgpack"},
        {"c1", ZMESH_EPROTO, "not one msgpack"},
        /* an array32 claiming 2^32-1 elements */
        {"ddffffffff", ZMESH_EPROTO, "not one msgpack"},
        /* testnode's request: {"n":1,"from":"x"} */
        {"82a16ece00000001a466726f6dd90178", ZMESH_EPROTO, "\"from\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        uint8_t bytes[64];
        size_t size = strlen(cases[i].hex) / 2;
        for (size_t j = 0; j < size; j++) {
            unsigned value;
            sscanf(cases[i].hex + 2 * j, "%2x", &value);
            bytes[j] = (uint8_t)value;
        }
        zmesh__relay_read_t read;
        memset(&read, 0x55, sizeof read);
        s_err[0] = '\0';
        int rc =
            zmesh__relay_read_decode(bytes, size, &read, s_err, sizeof s_err);
        if (rc != cases[i].rc)
            fail_msg("case %zu (%s): rc %d (%s)", i, cases[i].hex, rc, s_err);
        if (rc == 0)
            assert_string_equal(read.stream, cases[i].needle);
        else if (!strstr(s_err, cases[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, s_err, cases[i].needle);
    }
    zmesh__relay_read_t read;
    const uint8_t full[] = {0x83, 0xa6, 's',  't', 'r',  'e',  'a', 'm',
                            0xa1, 'o',  0xa4, 'f', 'r',  'o',  'm', 0x05,
                            0xa3, 'm',  'a',  'x', 0xcd, 0x03, 0xe8};
    assert_int_equal(
        zmesh__relay_read_decode(full, sizeof full, &read, NULL, 0), 0);
    assert_true(read.has_from && !read.has_since);
    assert_int_equal(read.from, 5);
    assert_int_equal(read.max, 1000);
    const uint8_t plain[] = {0x81, 0xa6, 's', 't',  'r',
                             'e',  'a',  'm', 0xa1, 'o'};
    assert_int_equal(
        zmesh__relay_read_decode(plain, sizeof plain, &read, NULL, 0), 0);
    assert_int_equal(read.max, ZMESH__RELAY_READ_DEFAULT);
    assert_false(read.has_from || read.has_since);
    assert_int_equal(read.bytes, 0);
    uint8_t *big = calloc(1, ZMESH__RELAY_REQUEST_MAX + 1);
    assert_non_null(big);
    assert_int_equal(zmesh__relay_read_decode(big, ZMESH__RELAY_REQUEST_MAX + 1,
                                              &read, s_err, sizeof s_err),
                     ZMESH_EPROTO);
    free(big);
}

/* ------------------------------------------------------------------------ */
/*  Open: reading what is stored                                            */

static void
s_append_frame(zmesh__store_t *store, const uint8_t id[16], const char *topic,
               uint64_t seq, const void *payload, size_t size, uint32_t flags)
{
    uint8_t frame[512];
    int n = zmesh__frame_encode(topic, strlen(topic), id, seq, 1700000000000000,
                                payload, size, frame, sizeof frame);
    assert_true(n > 0);
    uint64_t rseq;
    assert_int_equal(zmesh__store_append(store, frame, (size_t)n, flags,
                                         1700000000000000, &rseq),
                     0);
}

static void
test_open_reads_what_is_stored(void **state)
{
    (void)state;
    char root[64], path[128];
    snprintf(root, sizeof root, "/tmp/zmesh-relay-XXXXXX");
    assert_non_null(mkdtemp(root));
    snprintf(path, sizeof path, "%s/s", root);
    zmesh__store_t *store = NULL;
    zmesh__store_config_t sc = {.sync = ZMESH__STORE_SYNC_NEVER};
    assert_int_equal(zmesh__store_open(&store, path, &sc), 0);
    uint8_t a[16], b[16];
    memset(a, 0xaa, sizeof a);
    memset(b, 0xbb, sizeof b);
    const uint8_t payload[] = {0x01};
    for (uint64_t seq = 1; seq <= 5; seq++)
        s_append_frame(store, a, "t.one", seq, payload, 1, 0);
    // A gap record: 6..9 of a's t.one were not repaired.
    const uint8_t gap[] = {0x82, 0xa4, 'l', 'a', 's', 't', 0x09, 0xa6,
                           'r',  'e',  'a', 's', 'o', 'n', 0xa1, 'x'};
    s_append_frame(store, a, "t.one", 6, gap, sizeof gap,
                   ZMESH__RELAY_FLAG_GAP);
    s_append_frame(store, b, "t.two", 3, payload, 1, 0);
    uint64_t rseq;
    assert_int_equal(zmesh__store_append(store, "junk", 4, 0, 1, &rseq), 0);
    zmesh__store_destroy(&store);
    // Names: one stored publisher, one that is not, and garbage.
    char names[160];
    snprintf(names, sizeof names, "%s/publishers.names", root);
    FILE *f = fopen(names, "w");
    assert_non_null(f);
    fprintf(f, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa alpha\n"
               "cccccccccccccccccccccccccccccccc gone\n"
               "not a line\n"
               "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb bad\x01name\n");
    fclose(f);

    zmesh__relay_config_t c;
    zmesh__relay_config_init(&c);
    assert_int_equal(s_set(&c, "dir", root), 0);
    assert_int_equal(s_set(&c, "stream", "s=t.>"), 0);
    assert_int_equal(s_set(&c, "sync", "never"), 0);
    assert_int_equal(zmesh__relay_config_check(&c, s_err, sizeof s_err), 0);
    zmesh__relay_t *relay = NULL;
    assert_int_equal(zmesh__relay_new(&relay, &c, s_err, sizeof s_err), 0);
    assert_int_equal(zmesh__relay_step(relay, 0), ZMESH_ESTATE);
    assert_int_equal(zmesh__relay_open(relay, s_err, sizeof s_err), 0);
    assert_int_equal(zmesh__relay_streams(relay), 1);
    zmesh__relay_stream_stats_t stats;
    zmesh__relay_stream_stats(relay, 0, &stats);
    assert_int_equal(stats.gaps, 1);
    assert_int_equal(stats.unreadable, 1);
    assert_true(stats.accepting);
    assert_int_equal(zmesh__store_last_seq(zmesh__relay_stream_store(relay, 0)),
                     8);
    zmesh__relay_destroy(&relay);
    zmesh__relay_config_clear(&c);
    // The names file keeps only the stored publisher's good line.
    f = fopen(names, "r");
    assert_non_null(f);
    char text[256] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = '\0';
    fclose(f);
    assert_string_equal(text, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa alpha\n");

    char command[200];
    snprintf(command, sizeof command, "rm -rf '%s'", root);
    assert_int_equal(system(command), 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes_and_counts),
        cmocka_unit_test(test_sync_policies_and_names),
        cmocka_unit_test(test_flags),
        cmocka_unit_test(test_config_file),
        cmocka_unit_test(test_check_touches_nothing),
        cmocka_unit_test(test_read_decode),
        cmocka_unit_test(test_open_reads_what_is_stored),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
