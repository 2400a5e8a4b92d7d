/*  store_fuzz.c - libFuzzer target for store recovery: the input becomes
    the files of a store directory (pieces separated by "|SEG|": a piece
    starting with "ZMCU" is the consumer file fuzz.cursor, any other a
    segment named by the first sequence number its header claims), which
    is opened, read through in full, appended to and opened again. Beyond
    "no crash, no leak, no hang" it checks that what recovery keeps is
    served without a single check failing, that iteration and random
    reads agree, and that an append survives a reopen. Without libFuzzer,
    replay_main.c runs it over corpus/store. */
#include "store.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            abort();                                                           \
    } while (0)

#define MAX_PIECES 4

static char s_base[64];

static void
s_clear(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        CHECK(unlink(path) == 0);
    }
    closedir(d);
    CHECK(rmdir(dir) == 0);
}

static void
s_write(const char *dir, const char *name, const uint8_t *data, size_t size)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    CHECK(f);
    CHECK(fwrite(data, 1, size, f) == size);
    fclose(f);
}

static const uint8_t *
s_find(const uint8_t *p, size_t n, const char *sep, size_t k)
{
    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(p + i, sep, k) == 0)
            return p + i;
    return NULL;
}

/*  Writes the pieces of the input as files of `dir`. */
static void
s_lay_out(const char *dir, const uint8_t *data, size_t size)
{
    CHECK(mkdir(dir, 0755) == 0);
    const char sep[] = "|SEG|";
    const size_t k = sizeof sep - 1;
    for (int i = 0; i < MAX_PIECES && data; i++) {
        const uint8_t *end =
            i + 1 < MAX_PIECES ? s_find(data, size, sep, k) : NULL;
        size_t n = end ? (size_t)(end - data) : size;
        char name[64];
        if (n >= 4 && memcmp(data, "ZMCU", 4) == 0)
            snprintf(name, sizeof name, "fuzz.cursor");
        else {
            uint64_t seq = 0;
            for (size_t b = 12; b < 20 && n >= 20; b++)
                seq = seq << 8 | data[b];
            if (seq == 0 || seq > ZMESH__STORE_SEQ_MAX)
                seq = 1 + (uint64_t)i * 1000;
            snprintf(name, sizeof name, "%020llu.seg", (unsigned long long)seq);
        }
        char path[512];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", dir, name);
        if (stat(path, &st) != 0)
            s_write(dir, name, data, n);
        if (!end)
            break;
        size -= n + k;
        data = end + k;
    }
}

/*  Reads the whole store; returns the number of records served. */
static uint64_t
s_read_all(zmesh__store_t *store)
{
    uint64_t first = zmesh__store_first_seq(store);
    uint64_t last = zmesh__store_last_seq(store);
    uint64_t count = zmesh__store_count(store);
    CHECK(last + 1 >= first);
    zmesh__store_iter_t *it = NULL;
    CHECK(zmesh__store_iter_new(store, 0, &it) == 0);
    uint64_t served = 0, prev = 0;
    zmesh__store_record_t rec, again;
    for (uint64_t guard = 0; guard <= count + 1; guard++) {
        int rc = zmesh__store_iter_next(it, &rec);
        if (rc == ZMESH_EAGAIN)
            break;
        // Everything recovery kept was checked; nothing changed since.
        CHECK(rc == 0);
        CHECK(rec.seq > prev && rec.seq >= first && rec.seq <= last);
        CHECK(rec.flags <= ZMESH__STORE_FLAGS_MASK);
        CHECK(rec.size <= ZMESH__STORE_RECORD_LIMIT);
        uint8_t *copy = malloc(rec.size ? rec.size : 1);
        CHECK(copy);
        memcpy(copy, rec.body, rec.size);
        CHECK(zmesh__store_read(store, rec.seq, &again) == 0);
        CHECK(again.seq == rec.seq && again.size == rec.size &&
              again.stored_us == rec.stored_us && again.flags == rec.flags);
        CHECK(memcmp(again.body, copy, rec.size) == 0);
        free(copy);
        uint64_t at;
        CHECK(zmesh__store_seek_time(store, rec.stored_us, &at) == 0);
        CHECK(at <= rec.seq);
        prev = rec.seq;
        served++;
    }
    CHECK(served == count);
    CHECK(zmesh__store_iter_next(it, &rec) == ZMESH_EAGAIN);
    zmesh__store_iter_destroy(&it);
    CHECK(zmesh__store_read(store, last + 1, &rec) == ZMESH_ENOTFOUND);
    if (first > 0)
        CHECK(zmesh__store_read(store, first - 1, &rec) == ZMESH_ENOTFOUND);
    uint64_t at;
    CHECK(zmesh__store_seek_time(store, INT64_MIN, &at) == 0);
    CHECK(zmesh__store_seek_time(store, INT64_MAX, &at) == 0);
    return served;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!s_base[0]) {
        snprintf(s_base, sizeof s_base, "/tmp/zmesh-store-fuzz-XXXXXX");
        CHECK(mkdtemp(s_base));
    }
    char dir[128];
    snprintf(dir, sizeof dir, "%s/s", s_base);
    s_lay_out(dir, size ? data : NULL, size);

    zmesh__store_config_t cfg = {0};
    cfg.segment_bytes = 256;
    cfg.index_interval = 64;
    cfg.sync = ZMESH__STORE_SYNC_NEVER;
    zmesh__store_t *store = NULL;
    int rc = zmesh__store_open(&store, dir, &cfg);
    // A segment of a newer format version, or names that use up every
    // sequence number.
    if (rc == ZMESH_EPROTO || rc == ZMESH_ESTATE) {
        CHECK(store == NULL);
        s_clear(dir);
        return 0;
    }
    CHECK(rc == 0);
    uint64_t served = s_read_all(store);

    uint64_t acked;
    // 1 MiB: on the heap, not the fuzzer's stack.
    uint8_t *blob = malloc(ZMESH__STORE_CONSUMER_BLOB_MAX);
    CHECK(blob != NULL);
    size_t blob_size = 0;
    rc = zmesh__store_consumer_load(store, "fuzz", &acked, blob,
                                    ZMESH__STORE_CONSUMER_BLOB_MAX, &blob_size);
    CHECK(rc == 0 || rc == ZMESH__STORE_CONSUMER_FALLBACK ||
          rc == ZMESH_EPROTO || rc == ZMESH_ENOTFOUND);
    CHECK(blob_size <= ZMESH__STORE_CONSUMER_BLOB_MAX);
    free(blob);

    const char body[] = "fuzz.topic\0meta";
    uint64_t seq;
    uint64_t next_expected = zmesh__store_last_seq(store) + 1;
    rc = zmesh__store_append(store, body, sizeof body, 7, 0, &seq);
    if (rc == ZMESH_ESTATE) { // sequence numbers used up by a crafted name
        zmesh__store_destroy(&store);
        s_clear(dir);
        return 0;
    }
    CHECK(rc == 0);
    CHECK(seq >= next_expected);
    zmesh__store_destroy(&store);

    // Recovery of what recovery left, plus one append, finds exactly that.
    CHECK(zmesh__store_open(&store, dir, &cfg) == 0);
    zmesh__store_stats_t st;
    zmesh__store_stats(store, &st);
    CHECK(st.torn_tails == 0 && st.corrupt_segments == 0);
    CHECK(s_read_all(store) == served + 1);
    zmesh__store_record_t rec;
    CHECK(zmesh__store_read(store, seq, &rec) == 0);
    CHECK(rec.size == sizeof body && memcmp(rec.body, body, sizeof body) == 0);
    CHECK(rec.flags == 7);
    // Retention down to one segment keeps the appended record.
    zmesh__store_destroy(&store);
    cfg.max_events = 1;
    CHECK(zmesh__store_open(&store, dir, &cfg) == 0);
    CHECK(zmesh__store_retention(store, 0) >= 0);
    CHECK(zmesh__store_read(store, seq, &rec) == 0);
    zmesh__store_destroy(&store);
    s_clear(dir);
    return 0;
}
