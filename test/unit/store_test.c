/*  store_test.c - the relay's segmented log: append, read and iterate
    across segment rolls; reopen and continue; the exact bytes of headers
    and records against an encoder written here from proto/relay-log.md;
    a torn tail cut at every byte of the last record; a byte flipped at
    every offset of a segment, as the last segment and as an earlier one;
    damage done after open; bad segment headers and unknown files;
    retention by age, bytes and count; seek by time; consumer files,
    corrupt ones included; a full disk (RLIMIT_FSIZE); sync policies; the
    directory lock. Every test works in its own mkdtemp directory. */
#include "crc32c.h"
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#define SEG1 "00000000000000000001.seg"

// ---------------------------------------------------------------------------
// Helpers

static int s_warnings;

static void
s_sink(zmesh_log_level_t level, const char *message, void *arg)
{
    (void)message;
    (void)arg;
    if (level <= ZMESH_LOG_WARNING)
        s_warnings++;
}

typedef struct {
    char root[64];
    char path[96]; /* the store: root/log, made by zmesh__store_open */
} s_dir_t;

static void
s_dir_make(s_dir_t *d)
{
    snprintf(d->root, sizeof d->root, "/tmp/zmesh-store-XXXXXX");
    assert_non_null(mkdtemp(d->root));
    snprintf(d->path, sizeof d->path, "%s/log", d->root);
}

static void
s_rm_tree(const char *path, int depth)
{
    struct stat st;
    if (lstat(path, &st) != 0)
        return;
    if (S_ISDIR(st.st_mode) && depth < 4) {
        DIR *dir = opendir(path);
        if (dir) {
            struct dirent *e;
            while ((e = readdir(dir)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                    continue;
                char child[512];
                snprintf(child, sizeof child, "%s/%s", path, e->d_name);
                s_rm_tree(child, depth + 1);
            }
            closedir(dir);
        }
        rmdir(path);
    } else
        unlink(path);
}

static void
s_dir_free(s_dir_t *d)
{
    s_rm_tree(d->root, 0);
}

static void
s_file(const s_dir_t *d, const char *name, char *out, size_t cap)
{
    snprintf(out, cap, "%s/%s", d->path, name);
}

static bool
s_exists(const s_dir_t *d, const char *name)
{
    char path[256];
    struct stat st;
    s_file(d, name, path, sizeof path);
    return lstat(path, &st) == 0;
}

static size_t
s_file_size(const s_dir_t *d, const char *name)
{
    char path[256];
    struct stat st;
    s_file(d, name, path, sizeof path);
    assert_int_equal(stat(path, &st), 0);
    return (size_t)st.st_size;
}

/*  Reads a whole file (malloc'ed, caller frees). */
static uint8_t *
s_slurp(const s_dir_t *d, const char *name, size_t *size)
{
    char path[256];
    s_file(d, name, path, sizeof path);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *size = (size_t)n;
    return buf;
}

static void
s_spit(const s_dir_t *d, const char *name, const void *data, size_t size)
{
    char path[256];
    mkdir(d->path, 0755);
    s_file(d, name, path, sizeof path);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, size, f), size);
    fclose(f);
}

/*  XORs one byte of a file in place, behind the store's back. */
static void
s_flip(const s_dir_t *d, const char *name, size_t off, uint8_t mask)
{
    char path[256];
    s_file(d, name, path, sizeof path);
    int fd = open(path, O_RDWR);
    assert_true(fd >= 0);
    uint8_t b;
    assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
    b ^= mask;
    assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
    close(fd);
}

static void
s_seg_name(char *out, size_t cap, uint64_t seq)
{
    snprintf(out, cap, "%020llu.seg", (unsigned long long)seq);
}

/*  The body stored as record `seq`: 8..97 bytes that depend on seq, so a
    record served under the wrong number is caught. */
static size_t
s_body(uint64_t seq, uint8_t *buf)
{
    size_t n = 8 + (size_t)((seq * 37) % 90);
    for (size_t i = 0; i < n; i++)
        buf[i] = (uint8_t)(seq * 131 + i * 7 + 1);
    return n;
}

static void
s_expect(const zmesh__store_record_t *rec, uint64_t seq)
{
    uint8_t want[128];
    size_t n = s_body(seq, want);
    assert_int_equal(rec->seq, seq);
    assert_int_equal(rec->size, n);
    assert_memory_equal(rec->body, want, n);
}

static uint64_t
s_append(zmesh__store_t *store, uint64_t expect_seq, int64_t us)
{
    uint8_t body[128];
    size_t n = s_body(expect_seq, body);
    uint64_t seq = 0;
    assert_int_equal(zmesh__store_append(store, body, n, 0, us, &seq), 0);
    assert_int_equal(seq, expect_seq);
    return seq;
}

static zmesh__store_config_t
s_config(uint64_t segment_bytes, uint32_t index_interval)
{
    zmesh__store_config_t c = {0};
    c.segment_bytes = segment_bytes;
    c.index_interval = index_interval;
    c.sync = ZMESH__STORE_SYNC_NEVER;
    return c;
}

static zmesh__store_t *
s_open(const s_dir_t *d, const zmesh__store_config_t *c)
{
    zmesh__store_t *store = NULL;
    int rc = zmesh__store_open(&store, d->path, c);
    if (rc != 0)
        fail_msg("open %s: %s", d->path, zmesh_strerror(rc));
    return store;
}

static zmesh__store_stats_t
s_stats(const zmesh__store_t *store)
{
    zmesh__store_stats_t st;
    zmesh__store_stats(store, &st);
    return st;
}

/*  Reads every record through an iterator from `from`; checks each body
    against its number and returns how many there were. */
static uint64_t
s_iterate(zmesh__store_t *store, uint64_t from, uint64_t *last)
{
    zmesh__store_iter_t *it = NULL;
    assert_int_equal(zmesh__store_iter_new(store, from, &it), 0);
    uint64_t n = 0, prev = 0;
    zmesh__store_record_t rec;
    for (int guard = 0; guard < 100000; guard++) {
        int rc = zmesh__store_iter_next(it, &rec);
        if (rc == ZMESH_EAGAIN)
            break;
        assert_int_equal(rc, 0);
        assert_true(rec.seq > prev);
        s_expect(&rec, rec.seq);
        prev = rec.seq;
        n++;
    }
    zmesh__store_iter_destroy(&it);
    assert_null(it);
    if (last)
        *last = prev;
    return n;
}

/*  Sum of the sizes of the *.seg files in the store directory. */
static uint64_t
s_disk_bytes(const s_dir_t *d, int *segments)
{
    DIR *dir = opendir(d->path);
    assert_non_null(dir);
    uint64_t total = 0;
    *segments = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL) {
        size_t n = strlen(e->d_name);
        if (n == 24 && strcmp(e->d_name + 20, ".seg") == 0) {
            total += s_file_size(d, e->d_name);
            (*segments)++;
        }
    }
    closedir(dir);
    return total;
}

// ---------------------------------------------------------------------------
// proto/relay-log.md, encoded independently of lib/store.c

static void
s_be(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static void
s_spec_segment_header(uint8_t h[32], uint64_t first_seq, int64_t created_us,
                      uint16_t version)
{
    memcpy(h, "ZMESHLOG", 8);
    s_be(h + 8, version, 2);
    s_be(h + 10, 32, 2);
    s_be(h + 12, first_seq, 8);
    s_be(h + 20, (uint64_t)created_us, 8);
    s_be(h + 28, zmesh__crc32c(0, h, 28), 4);
}

/*  A record image: 32-byte header + body; returns its size. */
static size_t
s_spec_record(uint8_t *out, uint64_t seq, int64_t stored_us, uint32_t flags,
              const void *body, size_t size)
{
    memcpy(out, "ZREC", 4);
    s_be(out + 8, size, 4);
    s_be(out + 12, flags, 4);
    s_be(out + 16, seq, 8);
    s_be(out + 24, (uint64_t)stored_us, 8);
    memcpy(out + 32, body, size);
    s_be(out + 4, zmesh__crc32c(0, out + 8, 24 + size), 4);
    return 32 + size;
}

static size_t
s_spec_cursor(uint8_t *out, const char *name, uint64_t acked, int64_t saved_us,
              const void *blob, size_t size)
{
    size_t n = strlen(name);
    memcpy(out, "ZMCU", 4);
    s_be(out + 4, 1, 2);
    s_be(out + 6, n, 2);
    s_be(out + 8, acked, 8);
    s_be(out + 16, (uint64_t)saved_us, 8);
    s_be(out + 24, size, 4);
    memcpy(out + 28, name, n);
    memcpy(out + 28 + n, blob, size);
    s_be(out + 28 + n + size, zmesh__crc32c(0, out, 28 + n + size), 4);
    return 28 + n + size + 4;
}

// ---------------------------------------------------------------------------
// Tests

static void
test_append_read_iterate(void **state)
{
    (void)state;
    const struct {
        uint64_t segment_bytes;
        uint32_t index_interval;
    } cases[] = {
        {64, 1},    // one record per segment
        {512, 1},   // a few per segment, every record indexed
        {512, 100}, // sparse index
        {4096, 0},  // default interval: one run per segment
        {0, 0},     // all defaults: one segment
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        s_dir_t d;
        s_dir_make(&d);
        zmesh__store_config_t cfg =
            s_config(cases[c].segment_bytes, cases[c].index_interval);
        zmesh__store_t *store = s_open(&d, &cfg);
        assert_int_equal(zmesh__store_first_seq(store), 1);
        assert_int_equal(zmesh__store_last_seq(store), 0);
        assert_int_equal(zmesh__store_count(store), 0);
        for (uint64_t s = 1; s <= 200; s++)
            s_append(store, s, 1000 + (int64_t)s);
        assert_int_equal(zmesh__store_first_seq(store), 1);
        assert_int_equal(zmesh__store_last_seq(store), 200);
        assert_int_equal(zmesh__store_count(store), 200);
        int segments;
        assert_int_equal(zmesh__store_bytes(store),
                         s_disk_bytes(&d, &segments));
        if (cases[c].segment_bytes == 64)
            assert_int_equal(segments, 200);
        else if (cases[c].segment_bytes == 512)
            assert_true(segments > 20 && segments < 200);
        else if (cases[c].segment_bytes == 0)
            assert_int_equal(segments, 1);
        // Random order, so the reader's buffer is refilled both ways.
        for (uint64_t i = 0; i < 200; i++) {
            uint64_t s = 1 + (i * 73) % 200;
            zmesh__store_record_t rec;
            assert_int_equal(zmesh__store_read(store, s, &rec), 0);
            s_expect(&rec, s);
            assert_int_equal(rec.stored_us, 1000 + (int64_t)s);
            assert_int_equal(rec.flags, 0);
        }
        zmesh__store_record_t rec;
        assert_int_equal(zmesh__store_read(store, 0, &rec), ZMESH_ENOTFOUND);
        assert_int_equal(zmesh__store_read(store, 201, &rec), ZMESH_ENOTFOUND);
        uint64_t last;
        assert_int_equal(s_iterate(store, 1, &last), 200);
        assert_int_equal(last, 200);
        assert_int_equal(s_iterate(store, 57, &last), 144);
        assert_int_equal(s_iterate(store, 0, NULL), 200);
        assert_int_equal(s_iterate(store, 201, NULL), 0);

        // An iterator at the end sees later appends.
        zmesh__store_iter_t *it = NULL;
        assert_int_equal(zmesh__store_iter_new(store, 199, &it), 0);
        assert_int_equal(zmesh__store_iter_next(it, &rec), 0);
        assert_int_equal(zmesh__store_iter_next(it, &rec), 0);
        assert_int_equal(zmesh__store_iter_next(it, &rec), ZMESH_EAGAIN);
        assert_int_equal(zmesh__store_iter_seq(it), 201);
        s_append(store, 201, 5000);
        assert_int_equal(zmesh__store_iter_next(it, &rec), 0);
        s_expect(&rec, 201);
        assert_int_equal(zmesh__store_iter_next(it, &rec), ZMESH_EAGAIN);
        zmesh__store_iter_destroy(&it);

        zmesh__store_stats_t st = s_stats(store);
        assert_int_equal(st.appends, 201);
        assert_int_equal(st.read_errors, 0);
        assert_int_equal(st.syncs, 0);     // SYNC_NEVER
        assert_int_equal(st.dir_syncs, 0); // SYNC_NEVER
        zmesh__store_destroy(&store);
        assert_null(store);
        s_dir_free(&d);
    }
}

static void
test_reopen_continues(void **state)
{
    (void)state;
    s_dir_t d;
    s_dir_make(&d);
    zmesh__store_config_t cfg = s_config(700, 200);
    uint64_t next = 1;
    for (int round = 0; round < 4; round++) {
        zmesh__store_t *store = s_open(&d, &cfg);
        assert_int_equal(zmesh__store_last_seq(store), next - 1);
        assert_int_equal(zmesh__store_count(store), next - 1);
        zmesh__store_stats_t st = s_stats(store);
        assert_int_equal(st.torn_tails + st.corrupt_regions +
                             st.corrupt_segments + st.bad_files,
                         0);
        for (int i = 0; i < 30; i++, next++)
            s_append(store, next, (int64_t)next * 10);
        assert_int_equal(zmesh__store_commit(store), 0); // SYNC_NEVER
        uint64_t last;
        assert_int_equal(s_iterate(store, 1, &last), next - 1);
        assert_int_equal(last, next - 1);
        zmesh__store_destroy(&store);
    }
    zmesh__store_destroy(NULL);
    s_dir_free(&d);
}

static void
test_exact_bytes(void **state)
{
    (void)state;
    s_dir_t d;
    s_dir_make(&d);
    zmesh__store_config_t cfg = s_config(0, 0);
    zmesh__store_t *store = s_open(&d, &cfg);
    const char body[] = "demo.topic\0\x93\xc4\x10"
                        "0123456789abcdef\x01\x00\xa2hi";
    uint64_t seq;
    assert_int_equal(zmesh__store_append(store, body, sizeof body - 1, 0x0102,
                                         1700000000000000, &seq),
                     0);
    assert_int_equal(seq, 1);
    uint8_t empty_seq;
    assert_int_equal(
        zmesh__store_append(store, &empty_seq, 0, 0, 1700000000000001, &seq),
        0);
    assert_int_equal(seq, 2);
    zmesh__store_destroy(&store);

    size_t size;
    uint8_t *file = s_slurp(&d, SEG1, &size);
    uint8_t want[256];
    int64_t created = 0;
    for (int i = 0; i < 8; i++)
        created = (int64_t)((uint64_t)created << 8 | file[20 + i]);
    s_spec_segment_header(want, 1, created, 1);
    size_t n = 32;
    n += s_spec_record(want + n, 1, 1700000000000000, 0x0102, body,
                       sizeof body - 1);
    n += s_spec_record(want + n, 2, 1700000000000001, 0, "", 0);
    assert_int_equal(size, n);
    assert_memory_equal(file, want, n);
    // The examples of proto/relay-log.md#examples, byte for byte.
    static const uint8_t example_header[] = {
        0x5a, 0x4d, 0x45, 0x53, 0x48, 0x4c, 0x4f, 0x47, 0x00, 0x01, 0x00,
        0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x06,
        0x0a, 0x24, 0x18, 0x1e, 0x40, 0x00, 0x50, 0x51, 0x7a, 0xc2};
    static const uint8_t example_record[] = {
        0x5a, 0x52, 0x45, 0x43, 0xb5, 0xee, 0x86, 0xa3, 0x00, 0x00, 0x00,
        0x0b, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x07, 0x00, 0x06, 0x0a, 0x24, 0x18, 0x1e, 0x40, 0x00, 0x64,
        0x65, 0x6d, 0x6f, 0x2e, 0x74, 0x6f, 0x70, 0x69, 0x63, 0x00};
    uint8_t img[64];
    s_spec_segment_header(img, 7, 1700000000000000, 1);
    assert_memory_equal(img, example_header, sizeof example_header);
    assert_int_equal(
        s_spec_record(img, 7, 1700000000000000, 0, "demo.topic", 11),
        sizeof example_record);
    assert_memory_equal(img, example_record, sizeof example_record);
    free(file);
    s_dir_free(&d);
}

/*  A store of `n` records in one segment; returns the segment's bytes and
    sets *offsets[i] to where record i + 1 starts (offsets[n] = size). */
static uint8_t *
s_build(s_dir_t *d, uint64_t n, size_t *size, size_t *offsets)
{
    s_dir_make(d);
    zmesh__store_config_t cfg = s_config(0, 0);
    zmesh__store_t *store = s_open(d, &cfg);
    offsets[0] = 32;
    for (uint64_t s = 1; s <= n; s++) {
        s_append(store, s, (int64_t)s * 1000);
        uint8_t body[128];
        offsets[s] = offsets[s - 1] + 32 + s_body(s, body);
    }
    zmesh__store_destroy(&store);
    return s_slurp(d, SEG1, size);
}

static void
test_torn_tail_every_offset(void **state)
{
    (void)state;
    s_dir_t src;
    size_t size, off[8];
    uint8_t *seg = s_build(&src, 6, &size, off);
    assert_int_equal(size, off[6]);
    // Every cut from the start of the last record to one byte short of
    // its end: exactly records 1..5 are served and the next append is 6.
    for (size_t cut = off[5]; cut < off[6]; cut++) {
        s_dir_t d;
        s_dir_make(&d);
        s_spit(&d, SEG1, seg, cut);
        zmesh__store_config_t cfg = s_config(0, 0);
        zmesh__store_t *store = s_open(&d, &cfg);
        zmesh__store_stats_t st = s_stats(store);
        assert_int_equal(st.torn_tails, cut > off[5]);
        assert_int_equal(st.truncated_bytes, cut - off[5]);
        assert_int_equal(st.corrupt_regions + st.corrupt_segments, 0);
        assert_int_equal(s_file_size(&d, SEG1), off[5]);
        assert_int_equal(zmesh__store_count(store), 5);
        assert_int_equal(zmesh__store_last_seq(store), 5);
        zmesh__store_record_t rec;
        for (uint64_t s = 1; s <= 5; s++) {
            assert_int_equal(zmesh__store_read(store, s, &rec), 0);
            s_expect(&rec, s);
        }
        assert_int_equal(zmesh__store_read(store, 6, &rec), ZMESH_ENOTFOUND);
        assert_int_equal(s_iterate(store, 1, NULL), 5);
        s_append(store, 6, 6000);
        zmesh__store_destroy(&store);
        store = s_open(&d, &cfg);
        st = s_stats(store);
        assert_int_equal(st.torn_tails, 0);
        assert_int_equal(zmesh__store_count(store), 6);
        assert_int_equal(s_iterate(store, 1, NULL), 6);
        zmesh__store_destroy(&store);
        s_dir_free(&d);
    }
    // A torn tail down to the header leaves an empty, usable segment.
    s_dir_t d;
    s_dir_make(&d);
    s_spit(&d, SEG1, seg, 32 + 5);
    zmesh__store_config_t cfg = s_config(0, 0);
    zmesh__store_t *store = s_open(&d, &cfg);
    assert_int_equal(zmesh__store_count(store), 0);
    s_append(store, 1, 1);
    zmesh__store_destroy(&store);
    s_dir_free(&d);
    free(seg);
    s_dir_free(&src);
}

/*  One flipped byte at `at` in a segment holding records 1..8, either as
    the only segment or followed by segments 9 and 10. */
static void
s_flip_case(const uint8_t *seg, size_t size, const size_t *off, size_t at,
            uint8_t mask, bool followed)
{
    s_dir_t d;
    s_dir_make(&d);
    uint8_t *copy = malloc(size);
    assert_non_null(copy);
    memcpy(copy, seg, size);
    copy[at] ^= mask;
    s_spit(&d, SEG1, copy, size);
    free(copy);
    zmesh__store_config_t cfg = s_config(0, 0);
    if (followed) {
        // Two one-record segments after it, made by the store itself.
        cfg.segment_bytes = 64;
        uint8_t img[160];
        for (uint64_t s = 9; s <= 10; s++) {
            uint8_t body[128], h[32];
            size_t n = s_body(s, body);
            s_spec_segment_header(h, s, 0, 1);
            memcpy(img, h, 32);
            size_t k =
                s_spec_record(img + 32, s, (int64_t)s * 1000, 0, body, n);
            char name[32];
            s_seg_name(name, sizeof name, s);
            s_spit(&d, name, img, 32 + k);
        }
    }
    int warnings = s_warnings;
    zmesh__store_t *store = s_open(&d, &cfg);
    zmesh__store_stats_t st = s_stats(store);
    uint64_t lost = 0; // the record the byte belongs to; 0: the header
    for (uint64_t s = 1; s <= 8; s++)
        if (at >= off[s - 1] && at < off[s])
            lost = s;
    zmesh__store_record_t rec;
    if (lost == 0) {
        assert_int_equal(st.corrupt_segments, 1);
        assert_true(s_exists(&d, SEG1 ".corrupt"));
        assert_false(s_exists(&d, SEG1));
        assert_int_equal(zmesh__store_count(store), followed ? 2 : 0);
    } else {
        assert_int_equal(st.corrupt_segments, 0);
        bool tail = lost == 8 && !followed;
        assert_int_equal(st.torn_tails, tail);
        assert_int_equal(st.corrupt_regions, !tail);
        assert_int_equal(zmesh__store_count(store), followed ? 9 : 7);
    }
    assert_true(s_warnings > warnings);
    for (uint64_t s = 1; s <= (followed ? 10u : 8u); s++) {
        int rc = zmesh__store_read(store, s, &rec);
        if (s == lost || (lost == 0 && s <= 8))
            assert_int_equal(rc, ZMESH_ENOTFOUND);
        else {
            assert_int_equal(rc, 0);
            s_expect(&rec, s);
        }
    }
    uint64_t served = s_iterate(store, 1, NULL);
    assert_int_equal(served, zmesh__store_count(store));
    // The log takes appends after any of it, and reads back the same.
    uint64_t seq;
    uint8_t body[128];
    size_t n = s_body(100, body);
    assert_int_equal(zmesh__store_append(store, body, n, 0, 99999, &seq), 0);
    assert_true(seq > zmesh__store_last_seq(store) - 1);
    zmesh__store_destroy(&store);
    store = s_open(&d, &cfg);
    assert_int_equal(zmesh__store_count(store), served + 1);
    assert_int_equal(zmesh__store_read(store, seq, &rec), 0);
    assert_int_equal(rec.size, n);
    assert_memory_equal(rec.body, body, n);
    zmesh__store_destroy(&store);
    s_dir_free(&d);
}

static void
test_flip_every_offset(void **state)
{
    (void)state;
    s_dir_t src;
    size_t size, off[9];
    uint8_t *seg = s_build(&src, 8, &size, off);
    const uint8_t masks[] = {0x01, 0x80, 0xff};
    for (size_t m = 0; m < sizeof masks; m++)
        for (size_t at = 0; at < size; at++) {
            s_flip_case(seg, size, off, at, masks[m], false);
            s_flip_case(seg, size, off, at, masks[m], true);
        }
    free(seg);
    s_dir_free(&src);
}

/*  Record 2's body holds a whole record image (anyone may publish one).
    When record 2 goes bad on disk, the image must not cost the records
    after it; proto/relay-log.md#security-considerations says what is
    left. */
static void
test_embedded_record(void **state)
{
    (void)state;
    const struct {
        const char *what;
        uint64_t image_seq;
        size_t damage; /* offset in record 2's header */
        bool image_served;
    } cases[] = {
        // Only the CRC fails: the scan steps over the whole body.
        {"CRC only", 2, 24, false},
        // Magic gone: the byte scan finds the image, but 1000 is more
        // than the skipped bytes can account for.
        {"magic, far number", 1000, 1, false},
        // Magic gone and the image has the one number that fits: it
        // stands in for record 2, and record 3 is still served.
        {"magic, fitting number", 2, 1, true},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        s_dir_t d;
        s_dir_make(&d);
        zmesh__store_config_t cfg = s_config(0, 0);
        zmesh__store_t *store = s_open(&d, &cfg);
        s_append(store, 1, 1000);
        uint8_t image[128];
        size_t n =
            s_spec_record(image, cases[c].image_seq, 2000, 0, "forged", 6);
        uint64_t seq;
        assert_int_equal(zmesh__store_append(store, image, n, 0, 2000, &seq),
                         0);
        s_append(store, 3, 3000);
        zmesh__store_destroy(&store);
        uint8_t tmp[128];
        size_t off2 = 32 + 32 + s_body(1, tmp);
        s_flip(&d, SEG1, off2 + cases[c].damage, 0x10);
        store = s_open(&d, &cfg);
        zmesh__store_record_t rec;
        int rc = zmesh__store_read(store, 2, &rec);
        if (cases[c].image_served) {
            assert_int_equal(rc, 0);
            assert_int_equal(rec.size, 6);
            assert_memory_equal(rec.body, "forged", 6);
        } else
            assert_int_equal(rc, ZMESH_ENOTFOUND);
        assert_int_equal(zmesh__store_read(store, 1000, &rec), ZMESH_ENOTFOUND);
        assert_int_equal(zmesh__store_read(store, 3, &rec), 0);
        s_expect(&rec, 3);
        assert_int_equal(zmesh__store_last_seq(store), 3);
        assert_int_equal(zmesh__store_count(store),
                         cases[c].image_served ? 3 : 2);
        zmesh__store_destroy(&store);
        s_dir_free(&d);
    }
}

static void
test_damage_after_open(void **state)
{
    (void)state;
    const uint32_t intervals[] = {1, 0};
    for (size_t c = 0; c < 2; c++) {
        s_dir_t d;
        s_dir_make(&d);
        zmesh__store_config_t cfg = s_config(0, intervals[c]);
        zmesh__store_t *store = s_open(&d, &cfg);
        size_t off[12];
        off[0] = 32;
        for (uint64_t s = 1; s <= 10; s++) {
            s_append(store, s, (int64_t)s);
            uint8_t body[128];
            off[s] = off[s - 1] + 32 + s_body(s, body);
        }
        // Record 4's body and record 7's magic go bad under the store.
        s_flip(&d, SEG1, off[3] + 40, 0x04);
        s_flip(&d, SEG1, off[6], 0x20);
        zmesh__store_record_t rec;
        assert_int_equal(zmesh__store_read(store, 4, &rec), ZMESH_EPROTO);
        assert_int_equal(zmesh__store_read(store, 5, &rec), 0);
        s_expect(&rec, 5);
        assert_int_equal(zmesh__store_read(store, 7, &rec), ZMESH_EPROTO);
        // With every record indexed, 8 is found without stepping over 7.
        int rc8 = zmesh__store_read(store, 8, &rec);
        if (intervals[c] == 1) {
            assert_int_equal(rc8, 0);
            s_expect(&rec, 8);
        } else
            assert_int_equal(rc8, ZMESH_EPROTO);
        uint64_t errors = s_stats(store).read_errors;
        assert_true(errors >= 2);

        zmesh__store_iter_t *it = NULL;
        assert_int_equal(zmesh__store_iter_new(store, 1, &it), 0);
        uint64_t bad[12], nbad = 0, good = 0;
        for (int guard = 0; guard < 100; guard++) {
            int rc = zmesh__store_iter_next(it, &rec);
            if (rc == ZMESH_EAGAIN)
                break;
            if (rc == ZMESH_EPROTO) {
                bad[nbad++] = rec.seq;
                continue;
            }
            assert_int_equal(rc, 0);
            assert_true(rec.seq != 4 && rec.seq != 7);
            s_expect(&rec, rec.seq);
            good++;
        }
        zmesh__store_iter_destroy(&it);
        assert_true(nbad >= 2);
        assert_int_equal(bad[0], 4);
        assert_int_equal(bad[1], 7);
        // Sparse index: what follows 7 in its run is skipped with it.
        assert_int_equal(good, intervals[c] == 1 ? 8 : 5);
        zmesh__store_destroy(&store);
        s_dir_free(&d);
    }
}

static void
test_bad_segment_headers(void **state)
{
    (void)state;
    s_dir_t d;
    s_dir_make(&d);
    zmesh__store_config_t cfg = s_config(64, 0); // one record a segment
    zmesh__store_t *store = s_open(&d, &cfg);
    for (uint64_t s = 1; s <= 6; s++)
        s_append(store, s, (int64_t)s);
    zmesh__store_destroy(&store);
    char name[32];
    s_seg_name(name, sizeof name, 2);
    s_flip(&d, name, 3, 0x01); // magic
    s_seg_name(name, sizeof name, 3);
    s_flip(&d, name, 14, 0x01); // first seq: CRC fails
    // Segment 4 renamed: header and name disagree.
    char from[256], to[256];
    s_seg_name(name, sizeof name, 4);
    s_file(&d, name, from, sizeof from);
    s_seg_name(name, sizeof name, 40);
    s_file(&d, name, to, sizeof to);
    assert_int_equal(rename(from, to), 0);
    // Segment 6 (the last) shorter than a header.
    s_seg_name(name, sizeof name, 6);
    s_file(&d, name, from, sizeof from);
    assert_int_equal(truncate(from, 20), 0);
    // A previously set-aside file with a later name.
    s_spit(&d, "00000000000000000050.seg.corrupt", "x", 1);

    store = s_open(&d, &cfg);
    zmesh__store_stats_t st = s_stats(store);
    assert_int_equal(st.corrupt_segments, 4);
    assert_int_equal(st.bad_files, 0);
    assert_int_equal(zmesh__store_count(store), 2);
    zmesh__store_record_t rec;
    assert_int_equal(zmesh__store_read(store, 1, &rec), 0);
    assert_int_equal(zmesh__store_read(store, 5, &rec), 0);
    for (uint64_t s = 2; s <= 4; s++)
        assert_int_equal(zmesh__store_read(store, s, &rec), ZMESH_ENOTFOUND);
    assert_true(s_exists(&d, "00000000000000000002.seg.corrupt"));
    assert_true(s_exists(&d, "00000000000000000003.seg.corrupt"));
    assert_true(s_exists(&d, "00000000000000000040.seg.corrupt"));
    assert_true(s_exists(&d, "00000000000000000006.seg.corrupt"));
    // Sequence numbers that a set-aside file may have used are not
    // handed out again (40 and 50 were segment names).
    uint64_t seq;
    uint8_t b = 0;
    assert_int_equal(zmesh__store_append(store, &b, 1, 0, 7, &seq), 0);
    assert_int_equal(seq, 51);
    zmesh__store_destroy(&store);

    // A second corruption of the same name is kept beside the first.
    s_seg_name(name, sizeof name, 5);
    s_flip(&d, name, 0, 0x01);
    s_spit(&d, "00000000000000000005.seg.corrupt", "old", 3);
    store = s_open(&d, &cfg);
    assert_int_equal(s_stats(store).corrupt_segments, 1);
    assert_true(s_exists(&d, "00000000000000000005.seg.corrupt.1"));
    assert_int_equal(s_file_size(&d, "00000000000000000005.seg.corrupt"), 3);
    zmesh__store_destroy(&store);
    s_dir_free(&d);
}

static void
test_unknown_files(void **state)
{
    (void)state;
    s_dir_t d;
    s_dir_make(&d);
    zmesh__store_config_t cfg = s_config(0, 0);
    zmesh__store_t *store = s_open(&d, &cfg);
    s_append(store, 1, 1);
    zmesh__store_destroy(&store);
    s_spit(&d, "notes.txt", "hello", 5);
    s_spit(&d, "0000000000000000001.seg", "short name", 10);
    s_spit(&d, "99999999999999999999.seg", "too big", 7);
    s_spit(&d, "00000000000000000007.seg.tmp", "tmp", 3);
    s_spit(&d, "bad name!.cursor", "c", 1);
    char sub[256];
    s_file(&d, "00000000000000000009.seg", sub, sizeof sub);
    assert_int_equal(mkdir(sub, 0755), 0);
    int warnings = s_warnings;
    store = s_open(&d, &cfg);
    zmesh__store_stats_t st = s_stats(store);
    assert_int_equal(st.bad_files, 5);
    assert_true(s_warnings > warnings);
    assert_int_equal(zmesh__store_count(store), 1);
    // Left alone, and the odd directory's name is never made a segment:
    // numbering goes on after it.
    assert_true(s_exists(&d, "notes.txt"));
    assert_true(s_exists(&d, "00000000000000000007.seg.tmp"));
    assert_true(s_exists(&d, "00000000000000000009.seg"));
    uint64_t seq;
    uint8_t b = 0;
    assert_int_equal(zmesh__store_append(store, &b, 1, 0, 7, &seq), 0);
    assert_int_equal(seq, 10);
    zmesh__store_destroy(&store);
    s_dir_free(&d);
}

static void
test_newer_version(void **state)
{
    (void)state;
    s_dir_t d;
    s_dir_make(&d);
    uint8_t h[32];
    s_spec_segment_header(h, 1, 0, 2);
    s_spit(&d, SEG1, h, sizeof h);
    zmesh__store_t *store = NULL;
    assert_int_equal(zmesh__store_open(&store, d.path, NULL), ZMESH_EPROTO);
    assert_null(store);
    assert_true(s_exists(&d, SEG1)); // not set aside: it is not corrupt
    // Version 0 with a sound CRC is corrupt, though.
    s_spec_segment_header(h, 1, 0, 0);
    s_spit(&d, SEG1, h, sizeof h);
    zmesh__store_config_t cfg = s_config(0, 0);
    store = s_open(&d, &cfg);
    assert_int_equal(s_stats(store).corrupt_segments, 1);
    zmesh__store_destroy(&store);
    s_dir_free(&d);
}

static void
test_retention(void **state)
{
    (void)state;
    // Records of 64 bytes, four to a segment: 1-4, 5-8, ..., 17-20 (active).
    const struct {
        const char *what;
        uint64_t max_age_ms, max_bytes, max_events;
        int deleted;
        uint64_t first;
    } cases[] = {
        {"unlimited", 0, 0, 0, 0, 1},
        {"events", 0, 0, 10, 3, 13},
        {"events at the limit", 0, 0, 20, 0, 1},
        {"bytes", 0, 600, 0, 3, 13},
        {"bytes at the limit", 0, 5 * 288, 0, 0, 1},
        {"age", 9000, 0, 0, 2, 9},
        {"age, all old", 1, 0, 0, 4, 17},
        {"never the active segment", 0, 0, 1, 4, 17},
        {"any limit", 9000, 0, 16, 2, 9},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        s_dir_t d;
        s_dir_make(&d);
        zmesh__store_config_t cfg = s_config(32 + 4 * 64, 0);
        cfg.max_age_ms = cases[c].max_age_ms;
        cfg.max_bytes = cases[c].max_bytes;
        cfg.max_events = cases[c].max_events;
        zmesh__store_t *store = s_open(&d, &cfg);
        uint8_t body[32] = {0};
        for (uint64_t s = 1; s <= 20; s++) {
            uint64_t seq;
            body[0] = (uint8_t)s;
            assert_int_equal(zmesh__store_append(store, body, 32, 0,
                                                 (int64_t)s * 1000000, &seq),
                             0);
        }
        zmesh__store_iter_t *it = NULL;
        zmesh__store_record_t rec;
        assert_int_equal(zmesh__store_iter_new(store, 1, &it), 0);
        assert_int_equal(zmesh__store_iter_next(it, &rec), 0);
        int deleted = zmesh__store_retention(store, 20000000);
        if (deleted != cases[c].deleted)
            fail_msg("%s: deleted %d, want %d", cases[c].what, deleted,
                     cases[c].deleted);
        uint64_t first = cases[c].first;
        assert_int_equal(zmesh__store_first_seq(store), first);
        assert_int_equal(zmesh__store_last_seq(store), 20);
        assert_int_equal(zmesh__store_count(store), 21 - first);
        int segments;
        assert_int_equal(zmesh__store_bytes(store),
                         s_disk_bytes(&d, &segments));
        assert_int_equal(segments, 5 - deleted);
        assert_int_equal(s_stats(store).segments_deleted, (uint64_t)deleted);
        assert_int_equal(zmesh__store_read(store, first, &rec), 0);
        if (first > 1)
            assert_int_equal(zmesh__store_read(store, first - 1, &rec),
                             ZMESH_ENOTFOUND);
        // The iterator was at 2; it resumes at the first record kept.
        assert_int_equal(zmesh__store_iter_next(it, &rec), 0);
        assert_int_equal(rec.seq, first > 2 ? first : 2);
        zmesh__store_iter_destroy(&it);
        // Nothing more to do, and the next open agrees.
        assert_int_equal(zmesh__store_retention(store, 20000000), 0);
        zmesh__store_destroy(&store);
        store = s_open(&d, &cfg);
        assert_int_equal(zmesh__store_first_seq(store), first);
        assert_int_equal(zmesh__store_count(store), 21 - first);
        zmesh__store_destroy(&store);
        s_dir_free(&d);
    }
}

static void
test_seek_time(void **state)
{
    (void)state;
    // Stored-at times as appended; 250 comes after 300 and is raised.
    const int64_t times[] = {100, 200, 200, 300, 250, 1000, 1000, 1001};
    const struct {
        int64_t at;
        uint64_t seq;
    } cases[] = {
        {INT64_MIN, 1}, {50, 1},   {100, 1},       {101, 2}, {200, 2},
        {201, 4},       {250, 4},  {300, 4},       {301, 6}, {1000, 6},
        {1001, 8},      {1002, 9}, {INT64_MAX, 9},
    };
    const struct {
        uint64_t segment_bytes;
        uint32_t index_interval;
    } layouts[] = {{0, 1}, {0, 0}, {64, 0}, {200, 100}};
    for (size_t l = 0; l < sizeof layouts / sizeof layouts[0]; l++) {
        s_dir_t d;
        s_dir_make(&d);
        zmesh__store_config_t cfg =
            s_config(layouts[l].segment_bytes, layouts[l].index_interval);
        zmesh__store_t *store = s_open(&d, &cfg);
        uint64_t seq;
        // An empty store answers with the next number.
        assert_int_equal(zmesh__store_seek_time(store, 0, &seq), 0);
        assert_int_equal(seq, 1);
        for (uint64_t s = 1; s <= 8; s++)
            s_append(store, s, times[s - 1]);
        zmesh__store_record_t rec;
        assert_int_equal(zmesh__store_read(store, 5, &rec), 0);
        assert_int_equal(rec.stored_us, 300);
        for (int round = 0; round < 2; round++) {
            for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
                assert_int_equal(
                    zmesh__store_seek_time(store, cases[c].at, &seq), 0);
                if (seq != cases[c].seq)
                    fail_msg("layout %zu round %d: seek %lld gave %llu, want "
                             "%llu",
                             l, round, (long long)cases[c].at,
                             (unsigned long long)seq,
                             (unsigned long long)cases[c].seq);
            }
            // The rebuilt index agrees.
            zmesh__store_destroy(&store);
            store = s_open(&d, &cfg);
        }
        zmesh__store_destroy(&store);
        s_dir_free(&d);
    }
}

static void
test_consumers(void **state)
{
    (void)state;
    s_dir_t d;
    s_dir_make(&d);
    zmesh__store_config_t cfg = s_config(0, 0);
    zmesh__store_t *store = s_open(&d, &cfg);
    const struct {
        const char *name;
        bool ok;
    } names[] = {
        {"a", true},
        {"relay-1.consumer_A", true},
        {"0123456789012345678901234567890123456789012345678901234567890123",
         true},
        {"01234567890123456789012345678901234567890123456789012345678901234",
         false},
        {"", false},
        {"a/b", false},
        {"a b", false},
        {"caf\xc3\xa9", false},
        {NULL, false},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        assert_int_equal(zmesh__store_consumer_name_ok(names[i].name),
                         names[i].ok);
        int rc = zmesh__store_consumer_save(store, names[i].name, 1, NULL, 0);
        assert_int_equal(rc, names[i].ok ? 0 : ZMESH_EINVAL);
    }
    // Heap: two buffers of over 1 MiB do not belong on the stack.
    const size_t cap = ZMESH__STORE_CONSUMER_BLOB_MAX + 1;
    uint8_t *blob = malloc(cap), *got = malloc(cap);
    assert_non_null(blob);
    assert_non_null(got);
    for (size_t i = 0; i < cap; i++)
        blob[i] = (uint8_t)(i * 13);
    uint64_t acked;
    size_t size;
    assert_int_equal(
        zmesh__store_consumer_load(store, "nobody", &acked, got, cap, &size),
        ZMESH_ENOTFOUND);
    assert_int_equal(
        zmesh__store_consumer_save(store, "c", 5, blob,
                                   ZMESH__STORE_CONSUMER_BLOB_MAX + 1),
        ZMESH_ETOOBIG);
    const size_t sizes[] = {0, 1, 100, ZMESH__STORE_CONSUMER_BLOB_MAX};
    for (size_t i = 0; i < 4; i++) {
        assert_int_equal(
            zmesh__store_consumer_save(store, "c", 10 + i, blob, sizes[i]), 0);
        assert_int_equal(
            zmesh__store_consumer_load(store, "c", &acked, got, cap, &size), 0);
        assert_int_equal(acked, 10 + i);
        assert_int_equal(size, sizes[i]);
        assert_memory_equal(got, blob, sizes[i]);
    }
    assert_int_equal(
        zmesh__store_consumer_load(store, "c", &acked, got, 10, &size),
        ZMESH_ETOOBIG);
    // Saved: 12 (prev) and 13 (current). Damage the current copy.
    assert_int_equal(zmesh__store_consumer_save(store, "c", 12, blob, 7), 0);
    assert_int_equal(zmesh__store_consumer_save(store, "c", 13, blob, 9), 0);
    assert_true(s_exists(&d, "c.cursor.prev"));
    s_flip(&d, "c.cursor", 9, 0x40);
    int warnings = s_warnings;
    assert_int_equal(
        zmesh__store_consumer_load(store, "c", &acked, got, cap, &size),
        ZMESH__STORE_CONSUMER_FALLBACK);
    assert_int_equal(acked, 12);
    assert_int_equal(size, 7);
    assert_int_equal(s_stats(store).consumer_errors, 1);
    assert_true(s_warnings > warnings);
    // Saving over a corrupt current copy keeps the good previous one.
    assert_int_equal(zmesh__store_consumer_save(store, "c", 14, blob, 1), 0);
    assert_int_equal(
        zmesh__store_consumer_load(store, "c", &acked, got, cap, &size), 0);
    assert_int_equal(acked, 14);
    // Truncated current and previous copies: corrupt, no fallback left.
    size_t n;
    uint8_t *file = s_slurp(&d, "c.cursor", &n);
    for (size_t cut = 0; cut < n; cut += 7) {
        s_spit(&d, "c.cursor", file, cut);
        s_spit(&d, "c.cursor.prev", file, n - 1);
        acked = 999;
        assert_int_equal(
            zmesh__store_consumer_load(store, "c", &acked, got, cap, &size),
            ZMESH_EPROTO);
        assert_int_equal(acked, 999);
    }
    // A copy under another consumer's name is not that consumer's.
    s_spit(&d, "d.cursor", file, n);
    assert_int_equal(
        zmesh__store_consumer_load(store, "d", &acked, got, cap, &size),
        ZMESH_EPROTO);
    free(file);
    // Only the previous copy left (a save cut short between its renames):
    // it is used.
    assert_int_equal(zmesh__store_consumer_save(store, "e", 77, blob, 3), 0);
    assert_int_equal(zmesh__store_consumer_save(store, "e", 78, blob, 3), 0);
    char path[256];
    s_file(&d, "e.cursor", path, sizeof path);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(
        zmesh__store_consumer_load(store, "e", &acked, got, cap, &size),
        ZMESH__STORE_CONSUMER_FALLBACK);
    assert_int_equal(acked, 77);
    assert_int_equal(zmesh__store_consumers(store, NULL, NULL), ZMESH_EINVAL);
    zmesh__store_destroy(&store);
    free(blob);
    free(got);
    s_dir_free(&d);
}

static void
test_consumer_bytes(void **state)
{
    (void)state;
    static const uint8_t example[] = {
        0x5a, 0x4d, 0x43, 0x55, 0x00, 0x01, 0x00, 0x08, 0x00, 0x00, 0x00,
        0x00, 0x00, 0x00, 0x00, 0x2a, 0x00, 0x06, 0x0a, 0x24, 0x18, 0x1e,
        0x40, 0x00, 0x00, 0x00, 0x00, 0x02, 0x72, 0x65, 0x70, 0x6c, 0x61,
        0x79, 0x2d, 0x31, 0x01, 0x02, 0x13, 0x39, 0x6d, 0xcc};
    uint8_t img[128];
    assert_int_equal(
        s_spec_cursor(img, "replay-1", 42, 1700000000000000, "\x01\x02", 2),
        sizeof example);
    assert_memory_equal(img, example, sizeof example);

    s_dir_t d;
    s_dir_make(&d);
    zmesh__store_config_t cfg = s_config(0, 0);
    zmesh__store_t *store = s_open(&d, &cfg);
    assert_int_equal(
        zmesh__store_consumer_save(store, "replay-1", 42, "\x01\x02", 2), 0);
    size_t n;
    uint8_t *file = s_slurp(&d, "replay-1.cursor", &n);
    assert_int_equal(n, sizeof example);
    int64_t saved = 0;
    for (int i = 0; i < 8; i++)
        saved = (int64_t)((uint64_t)saved << 8 | file[16 + i]);
    s_spec_cursor(img, "replay-1", 42, saved, "\x01\x02", 2);
    assert_memory_equal(file, img, n);
    free(file);
    // A file written from the spec loads.
    s_spit(&d, "spec.cursor", img, s_spec_cursor(img, "spec", 9, 1, "xyz", 3));
    uint64_t acked;
    uint8_t blob[8];
    size_t size;
    assert_int_equal(zmesh__store_consumer_load(store, "spec", &acked, blob,
                                                sizeof blob, &size),
                     0);
    assert_int_equal(acked, 9);
    assert_int_equal(size, 3);
    assert_memory_equal(blob, "xyz", 3);
    zmesh__store_destroy(&store);
    s_dir_free(&d);
}

static int
s_count_consumer(void *arg, const char *name)
{
    char *seen = arg;
    strcat(seen, name);
    strcat(seen, ";");
    return 0;
}

static void
test_consumer_list_remove(void **state)
{
    (void)state;
    s_dir_t d;
    s_dir_make(&d);
    zmesh__store_config_t cfg = s_config(0, 0);
    cfg.sync = ZMESH__STORE_SYNC_ALWAYS;
    zmesh__store_t *store = s_open(&d, &cfg);
    assert_int_equal(zmesh__store_consumer_save(store, "x", 1, "b", 1), 0);
    assert_int_equal(zmesh__store_consumer_save(store, "x", 2, "b", 1), 0);
    assert_int_equal(zmesh__store_consumer_save(store, "y.z", 3, NULL, 0), 0);
    char seen[256] = "";
    assert_int_equal(zmesh__store_consumers(store, s_count_consumer, seen), 2);
    assert_true(strstr(seen, "x;") != NULL);
    assert_true(strstr(seen, "y.z;") != NULL);
    assert_int_equal(zmesh__store_consumer_remove(store, "x"), 0);
    assert_false(s_exists(&d, "x.cursor"));
    assert_false(s_exists(&d, "x.cursor.prev"));
    assert_int_equal(zmesh__store_consumer_remove(store, "x"), ZMESH_ENOTFOUND);
    assert_int_equal(zmesh__store_consumer_remove(store, "../x"), ZMESH_EINVAL);
    seen[0] = '\0';
    assert_int_equal(zmesh__store_consumers(store, s_count_consumer, seen), 1);
    assert_string_equal(seen, "y.z;");
    // Consumer files are not unknown files to the log.
    zmesh__store_destroy(&store);
    store = s_open(&d, &cfg);
    assert_int_equal(s_stats(store).bad_files, 0);
    zmesh__store_destroy(&store);
    s_dir_free(&d);
}

static void
test_disk_full(void **state)
{
    (void)state;
    s_dir_t d;
    s_dir_make(&d);
    zmesh__store_config_t cfg = s_config(0, 0);
    cfg.sync = ZMESH__STORE_SYNC_ALWAYS;
    zmesh__store_t *store = s_open(&d, &cfg);
    for (uint64_t s = 1; s <= 5; s++)
        s_append(store, s, (int64_t)s);
    assert_int_equal(zmesh__store_commit(store), 1);
    size_t before = s_file_size(&d, SEG1);

    // The file size limit stands in for a full disk: writes past it fail
    // with EFBIG once SIGXFSZ is ignored. Nothing is asserted while the
    // limit is on, so a failure cannot leave it set for later tests.
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    lim = old;
    lim.rlim_cur = before + 100;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    static uint8_t big[1000];
    uint64_t seq_big = 0, seq_small = 0;
    int rc_big = zmesh__store_append(store, big, sizeof big, 0, 6, &seq_big);
    int err_big = errno;
    uint8_t small[50] = {1};
    int rc_small =
        zmesh__store_append(store, small, sizeof small, 0, 6, &seq_small);
    int rc_big2 = zmesh__store_append(store, big, sizeof big, 0, 6, &seq_big);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);

    assert_int_equal(rc_big, ZMESH_ESYS);
    assert_int_equal(err_big, EFBIG);
    assert_int_equal(zmesh__store_errno(store), EFBIG);
    assert_int_equal(rc_small, 0);
    assert_int_equal(seq_small, 6);
    assert_int_equal(rc_big2, ZMESH_ESYS);
    assert_int_equal(s_stats(store).append_errors, 2);
    // Cut back: the file ends with record 6, and all of it reads.
    assert_int_equal(s_file_size(&d, SEG1), before + 32 + sizeof small);
    assert_int_equal(zmesh__store_bytes(store), before + 32 + sizeof small);
    zmesh__store_record_t rec;
    for (uint64_t s = 1; s <= 5; s++) {
        assert_int_equal(zmesh__store_read(store, s, &rec), 0);
        s_expect(&rec, s);
    }
    assert_int_equal(zmesh__store_read(store, 6, &rec), 0);
    assert_int_equal(rec.size, sizeof small);
    // With room again the same append goes through.
    assert_int_equal(
        zmesh__store_append(store, big, sizeof big, 0, 7, &seq_big), 0);
    assert_int_equal(seq_big, 7);
    assert_int_equal(zmesh__store_commit(store), 1);

    // A roll that cannot create its segment leaves the old one active.
    zmesh__store_destroy(&store);
    cfg.segment_bytes = 64;
    store = s_open(&d, &cfg);
    lim.rlim_cur = 16;
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
    int rc_roll = zmesh__store_append(store, small, 10, 0, 8, &seq_small);
    assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
    signal(SIGXFSZ, old_handler);
    assert_int_equal(rc_roll, ZMESH_ESYS);
    int segments;
    s_disk_bytes(&d, &segments);
    assert_int_equal(segments, 1);
    assert_false(s_exists(&d, "00000000000000000008.seg.tmp"));
    assert_int_equal(zmesh__store_append(store, small, 10, 0, 8, &seq_small),
                     0);
    assert_int_equal(seq_small, 8);
    zmesh__store_destroy(&store);

    store = s_open(&d, &cfg);
    zmesh__store_stats_t st = s_stats(store);
    assert_int_equal(st.torn_tails + st.corrupt_regions + st.corrupt_segments,
                     0);
    assert_int_equal(zmesh__store_count(store), 8);
    zmesh__store_destroy(&store);
    s_dir_free(&d);
}

static void
test_sync_policies(void **state)
{
    (void)state;
    const zmesh__store_sync_t policies[] = {ZMESH__STORE_SYNC_ALWAYS,
                                            ZMESH__STORE_SYNC_INTERVAL,
                                            ZMESH__STORE_SYNC_NEVER};
    for (size_t p = 0; p < 3; p++) {
        s_dir_t d;
        s_dir_make(&d);
        // Records 1-3 fit one segment; 4-12 need two more.
        zmesh__store_config_t cfg = s_config(400, 0);
        cfg.sync = policies[p];
        cfg.sync_interval_ms = 3600 * 1000;
        zmesh__store_t *store = s_open(&d, &cfg);
        zmesh__store_stats_t st0 = s_stats(store);
        for (uint64_t s = 1; s <= 3; s++)
            s_append(store, s, (int64_t)s);
        int rc = zmesh__store_commit(store);
        zmesh__store_stats_t st = s_stats(store);
        assert_int_equal(st.commits, 1);
        int64_t later = 0;
        switch (policies[p]) {
        case ZMESH__STORE_SYNC_ALWAYS:
            // One batch, one fdatasync; nothing new, none.
            assert_int_equal(rc, 1);
            assert_int_equal(st.syncs - st0.syncs, 1);
            assert_int_equal(zmesh__store_commit(store), 0);
            assert_int_equal(s_stats(store).syncs - st0.syncs, 1);
            assert_int_equal(zmesh__store_tick(store, INT64_MAX / 2), 0);
            assert_true(st0.dir_syncs > 0); // the new directory, segment 1
            break;
        case ZMESH__STORE_SYNC_INTERVAL:
            assert_int_equal(rc, 0);
            assert_int_equal(st.syncs, st0.syncs);
            // An hour later (on the caller's monotonic clock) the tick
            // syncs, and then has nothing to do.
            later = INT64_MAX / 2;
            assert_int_equal(zmesh__store_tick(store, later), 1);
            assert_int_equal(zmesh__store_tick(store, later + 1), 0);
            assert_int_equal(s_stats(store).syncs - st0.syncs, 1);
            break;
        case ZMESH__STORE_SYNC_NEVER:
            assert_int_equal(rc, 0);
            assert_int_equal(zmesh__store_tick(store, INT64_MAX / 2), 0);
            break;
        }
        // Rolling syncs the segment it closes (except SYNC_NEVER).
        uint64_t before = s_stats(store).syncs;
        for (uint64_t s = 4; s <= 12; s++)
            s_append(store, s, (int64_t)s);
        st = s_stats(store);
        assert_true(st.segments_created >= 3);
        if (policies[p] == ZMESH__STORE_SYNC_NEVER) {
            assert_int_equal(st.syncs, 0);
            assert_int_equal(st.dir_syncs, 0);
        } else
            assert_true(st.syncs > before);
        zmesh__store_destroy(&store);
        s_dir_free(&d);
    }
}

static void
test_arguments(void **state)
{
    (void)state;
    s_dir_t d;
    s_dir_make(&d);
    zmesh__store_t *store = NULL;
    const zmesh__store_config_t bad[] = {
        {.segment_bytes = 63},
        {.segment_bytes = (1ull << 40) + 1},
        {.max_record = ZMESH__STORE_RECORD_LIMIT + 1},
        {.sync = (zmesh__store_sync_t)3},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(zmesh__store_open(&store, d.path, &bad[i]),
                         ZMESH_EINVAL);
    assert_int_equal(zmesh__store_open(&store, "", NULL), ZMESH_EINVAL);
    assert_int_equal(zmesh__store_open(NULL, d.path, NULL), ZMESH_EINVAL);
    char file[128];
    snprintf(file, sizeof file, "%s/plain", d.root);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    assert_int_equal(zmesh__store_open(&store, file, NULL), ZMESH_ESYS);
    assert_null(store);

    zmesh__store_config_t cfg = s_config(0, 0);
    cfg.max_record = 100;
    store = s_open(&d, &cfg);
    static uint8_t body[101];
    uint64_t seq = 0;
    assert_int_equal(zmesh__store_append(store, body, 101, 0, 1, &seq),
                     ZMESH_ETOOBIG);
    assert_int_equal(zmesh__store_append(store, body, 100, 0x10000, 1, &seq),
                     ZMESH_EINVAL);
    assert_int_equal(zmesh__store_append(store, NULL, 1, 0, 1, &seq),
                     ZMESH_EINVAL);
    assert_int_equal(zmesh__store_append(store, NULL, 0, 0xffff, 1, &seq), 0);
    assert_int_equal(zmesh__store_append(store, body, 100, 0, 1, &seq), 0);
    zmesh__store_record_t rec;
    assert_int_equal(zmesh__store_read(store, 1, &rec), 0);
    assert_int_equal(rec.size, 0);
    assert_int_equal(rec.flags, 0xffff);
    assert_int_equal(zmesh__store_read(store, 1, NULL), ZMESH_EINVAL);
    assert_int_equal(zmesh__store_commit(NULL), ZMESH_EINVAL);
    assert_int_equal(zmesh__store_retention(NULL, 0), ZMESH_EINVAL);
    assert_true(ZMESH__STORE_RECORD_MAX_DEFAULT >= 1024 * 1024 + 320);
    zmesh__store_destroy(&store);

    // Lowering max_record leaves longer stored records readable.
    cfg.max_record = 10;
    store = s_open(&d, &cfg);
    assert_int_equal(zmesh__store_read(store, 2, &rec), 0);
    assert_int_equal(rec.size, 100);

    // A second process cannot open the store while this one holds it.
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        zmesh__store_t *other = NULL;
        int rc = zmesh__store_open(&other, d.path, NULL);
        _exit(rc == ZMESH_ESTATE ? 0 : 1);
    }
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    zmesh__store_destroy(&store);
    s_dir_free(&d);
}

static int
s_setup(void **state)
{
    (void)state;
    zmesh_log_set(s_sink, ZMESH_LOG_DEBUG, NULL);
    return 0;
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_append_read_iterate),
        cmocka_unit_test(test_reopen_continues),
        cmocka_unit_test(test_exact_bytes),
        cmocka_unit_test(test_torn_tail_every_offset),
        cmocka_unit_test(test_flip_every_offset),
        cmocka_unit_test(test_embedded_record),
        cmocka_unit_test(test_damage_after_open),
        cmocka_unit_test(test_bad_segment_headers),
        cmocka_unit_test(test_unknown_files),
        cmocka_unit_test(test_newer_version),
        cmocka_unit_test(test_retention),
        cmocka_unit_test(test_seek_time),
        cmocka_unit_test(test_consumers),
        cmocka_unit_test(test_consumer_bytes),
        cmocka_unit_test(test_consumer_list_remove),
        cmocka_unit_test(test_disk_full),
        cmocka_unit_test(test_sync_policies),
        cmocka_unit_test(test_arguments),
    };
    return cmocka_run_group_tests(tests, s_setup, NULL);
}
