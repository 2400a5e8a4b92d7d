/*  store.c - the relay's segmented append-only log (proto/relay-log.md).
    A store is a directory: segment files named by their first sequence
    number, each a header and then records (header + opaque body, CRC-32C
    over both). Opening reads every segment, checks every record and
    builds a sparse in-memory index (seq -> offset, stored-at time); there
    is no index file, so there is nothing to go stale. Bytes from the disk
    are never trusted: lengths are bounded by the file and by the format's
    limit before anything is read or allocated, and a record that fails a
    check is skipped, counted and logged, never served. No networking and
    no event-frame parsing here; consumer cursor files live here too.
*/
#include "store.h"
#include "clock.h"
#include "crc32c.h"
#include "log.h"

#include <assert.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#define S_SEG_HDR 32
#define S_REC_HDR ZMESH__STORE_RECORD_OVERHEAD
#define S_VERSION 1
#define S_NAME_SIZE 96 /* any file name this module makes, with room */
#define S_SCAN_CHUNK (1024 * 1024)
#define S_READ_CHUNK (64 * 1024)
#define S_LOG_INTERVAL_MS 10000
#define S_SEGMENT_BYTES_MAX (1ull << 40)
#define S_CON_HDR 28
#define S_CON_MAX                                                              \
    (S_CON_HDR + ZMESH__STORE_CONSUMER_NAME_MAX +                              \
     ZMESH__STORE_CONSUMER_BLOB_MAX + 4)

static const uint8_t s_seg_magic[8] = {'Z', 'M', 'E', 'S', 'H', 'L', 'O', 'G'};
static const uint8_t s_rec_magic[4] = {'Z', 'R', 'E', 'C'};
static const uint8_t s_con_magic[4] = {'Z', 'M', 'C', 'U'};

/*  One index entry: a run of records with consecutive sequence numbers
    stored back to back, starting at `offset`. A new run starts every
    index_interval bytes and after every gap. */
typedef struct {
    uint64_t seq;
    uint64_t offset;
    int64_t stored_us; /* of the first record, raised to be non-decreasing */
    uint64_t count;
} s_entry_t;

typedef struct {
    uint64_t first_seq;
    int64_t created_us;
    uint64_t size;     /* file bytes that belong to the log */
    uint64_t tail;     /* end of the last sound record */
    uint64_t count;    /* sound records */
    uint64_t last_seq; /* of the last sound record; first_seq - 1 if none */
    int64_t last_us;   /* its stored-at time, non-decreasing over the log */
    s_entry_t *entries;
    size_t entries_count;
    size_t entries_cap;
    /* recovery only: where unrecoverable bytes start at the end, or 0 */
    uint64_t bad_at;
    const char *bad_why;
    /* recovery skipped bad bytes inside it: nothing is appended to it,
       since a record written after them could change how the next
       recovery reads them (a damaged record's length could then point
       at it) and so what that recovery serves */
    bool damaged;
} s_segment_t;

/*  Buffered reads of one segment file. The buffer only ever holds bytes
    below the segment's checked end at the time they were read, and those
    never change (the log is append-only), so it stays valid while the
    active segment grows. */
typedef struct {
    int fd;
    uint64_t seg; /* first_seq of the segment fd is open on; 0: none */
    uint8_t *buf;
    size_t cap;
    uint64_t start; /* file offset of buf[0] */
    size_t len;
    size_t chunk;
} s_reader_t;

/*  A record header as read. header_ok: the header passed every check
    but the CRC, so its length can be trusted to step over the body. */
typedef struct {
    uint32_t crc;
    uint32_t length;
    uint32_t flags;
    uint64_t seq;
    int64_t stored_us;
    bool header_ok;
} s_rec_t;

struct zmesh__store {
    char *path;
    int dirfd;
    int lockfd;
    int fd; /* the active (last) segment, O_APPEND */
    zmesh__store_config_t config;
    s_segment_t *segs;
    size_t nsegs;
    size_t segs_cap;
    uint64_t next_seq;
    uint64_t last_seq; /* highest sound record, 0 if none ever */
    int64_t last_us;
    uint64_t count;
    uint64_t bytes;
    uint64_t floor; /* recovery: sequence numbers below it may have been used */
    bool dirty;     /* appended since the last sync */
    bool tail_dirty; /* a failed write may have left bytes past the end */
    int64_t last_sync_ms;
    int last_errno;
    s_reader_t reader;
    size_t iters;
    zmesh__store_stats_t stats;
    zmesh__log_limit_t log_limit;
};

struct zmesh__store_iter {
    zmesh__store_t *store;
    uint64_t next;
    bool placed; /* seg_seq, entry and off locate `next` */
    uint64_t seg_seq;
    size_t entry;
    uint64_t off;
    s_reader_t reader;
};

typedef struct {
    size_t seg;
    size_t entry;
    uint64_t seq;
} s_pos_t;

// ---------------------------------------------------------------------------
// Bytes on disk are big-endian (proto/relay-log.md#conventions).

static void
s_put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v >> 8);
    p[1] = (uint8_t)v;
}

static void
s_put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (24 - 8 * i));
}

static void
s_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (56 - 8 * i));
}

static uint16_t
s_get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
s_get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 |
           p[3];
}

static uint64_t
s_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

// ---------------------------------------------------------------------------
// Names and small helpers

static void
s_seg_name(char *out, uint64_t seq)
{
    snprintf(out, S_NAME_SIZE, "%020" PRIu64 ".seg", seq);
}

/*  Parses the 20-digit sequence number that starts a segment's file name;
    returns false unless it is 1..ZMESH__STORE_SEQ_MAX. */
static bool
s_parse_seq(const char *name, uint64_t *seq)
{
    uint64_t v = 0;
    for (int i = 0; i < 20; i++) {
        if (name[i] < '0' || name[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(name[i] - '0');
        if (v > ZMESH__STORE_SEQ_MAX)
            return false;
    }
    *seq = v;
    return v >= 1;
}

static bool
s_ends_with(const char *s, size_t n, const char *suffix, size_t *base)
{
    size_t k = strlen(suffix);
    if (n <= k || memcmp(s + n - k, suffix, k) != 0)
        return false;
    *base = n - k;
    return true;
}

static bool
s_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

static bool
s_name_ok(const char *name, size_t n)
{
    if (n == 0 || n > ZMESH__STORE_CONSUMER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!s_name_char(name[i]))
            return false;
    return true;
}

bool
zmesh__store_consumer_name_ok(const char *name)
{
    return name &&
           s_name_ok(name, strnlen(name, ZMESH__STORE_CONSUMER_NAME_MAX + 1));
}

static int
s_fail(zmesh__store_t *self, const char *what, const char *name)
{
    int err = errno;
    self->last_errno = err;
    zmesh__log(ZMESH_LOG_ERROR, "store %s: %s %s: %s", self->path, what,
               name ? name : "", strerror(err));
    errno = err;
    return ZMESH_ESYS;
}

static bool
s_syncs(const zmesh__store_t *self)
{
    return self->config.sync != ZMESH__STORE_SYNC_NEVER;
}

static int
s_sync_dir(zmesh__store_t *self)
{
    if (!s_syncs(self))
        return 0;
    if (fsync(self->dirfd) != 0)
        return s_fail(self, "cannot sync directory", NULL);
    self->stats.dir_syncs++;
    return 0;
}

static int
s_write_all(int fd, const void *data, size_t size)
{
    const uint8_t *p = data;
    while (size > 0) {
        ssize_t w = write(fd, p, size);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        p += w;
        size -= (size_t)w;
    }
    return 0;
}

static int
s_pread_all(int fd, void *data, size_t size, uint64_t off, size_t *got)
{
    uint8_t *p = data;
    *got = 0;
    while (*got < size) {
        ssize_t k = pread(fd, p + *got, size - *got, (off_t)(off + *got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return -1;
        if (k == 0)
            break;
        *got += (size_t)k;
    }
    return 0;
}

// ---------------------------------------------------------------------------
// Reader

static void
s_reader_init(s_reader_t *r, size_t chunk)
{
    memset(r, 0, sizeof *r);
    r->fd = -1;
    r->chunk = chunk;
}

static void
s_reader_close(s_reader_t *r)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = -1;
    r->seg = 0;
    r->len = 0;
}

static void
s_reader_free(s_reader_t *r)
{
    s_reader_close(r);
    free(r->buf);
    r->buf = NULL;
    r->cap = 0;
}

/*  Makes file bytes [off, off + n) available at *out; `limit` is the end of
    what may be read. ZMESH_EPROTO when the range passes the limit or the
    file turns out shorter. */
static int
s_reader_get(s_reader_t *r, uint64_t off, size_t n, uint64_t limit,
             const uint8_t **out)
{
    if (off > limit || n > limit - off)
        return ZMESH_EPROTO;
    if (off >= r->start && off - r->start <= r->len &&
        n <= r->len - (off - r->start)) {
        *out = r->buf + (off - r->start);
        return 0;
    }
    size_t want = n > r->chunk ? n : r->chunk;
    if (want > limit - off)
        want = (size_t)(limit - off);
    // One huge record should not pin a huge buffer for good.
    if (r->cap > 4 * r->chunk && want <= r->chunk) {
        free(r->buf);
        r->buf = NULL;
        r->cap = 0;
    }
    if (want > r->cap) {
        uint8_t *buf = realloc(r->buf, want ? want : 1);
        if (!buf)
            return ZMESH_ENOMEM;
        r->buf = buf;
        r->cap = want;
    }
    r->start = off;
    r->len = 0;
    size_t got;
    if (s_pread_all(r->fd, r->buf, want, off, &got) != 0)
        return ZMESH_ESYS;
    r->len = got;
    if (got < n)
        return ZMESH_EPROTO;
    *out = r->buf;
    return 0;
}

/*  Points the reader at segment `first_seq`. */
static int
s_reader_use(zmesh__store_t *self, s_reader_t *r, uint64_t first_seq)
{
    if (r->fd >= 0 && r->seg == first_seq)
        return 0;
    s_reader_close(r);
    char name[S_NAME_SIZE];
    s_seg_name(name, first_seq);
    r->fd = openat(self->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (r->fd < 0)
        return s_fail(self, "cannot open segment", name);
    r->seg = first_seq;
    return 0;
}

// ---------------------------------------------------------------------------
// Records

static void
s_rec_parse(const uint8_t *h, s_rec_t *rec)
{
    rec->crc = s_get32(h + 4);
    rec->length = s_get32(h + 8);
    rec->flags = s_get32(h + 12);
    rec->seq = s_get64(h + 16);
    rec->stored_us = (int64_t)s_get64(h + 24);
    rec->header_ok = false;
}

/*  Checks the record at `off`, which must lie wholly below `limit`, with a
    sequence number in [min_seq, max_seq]; with `crc` also its CRC (and
    then *body points at the body, if body is not NULL, and *work grows by
    the bytes summed, if work is not NULL). Returns 1 when sound, 0 when
    not (*why says why), < 0 on a system or memory error. */
static int
s_check_record(s_reader_t *r, uint64_t off, uint64_t limit, uint64_t min_seq,
               uint64_t max_seq, bool crc, s_rec_t *rec, const uint8_t **body,
               uint64_t *work, const char **why)
{
    const uint8_t *h;
    memset(rec, 0, sizeof *rec);
    if (off > limit || limit - off < S_REC_HDR) {
        *why = "partial record header";
        return 0;
    }
    int rc = s_reader_get(r, off, S_REC_HDR, limit, &h);
    if (rc == ZMESH_EPROTO) {
        *why = "file shorter than expected";
        return 0;
    }
    if (rc < 0)
        return rc;
    if (memcmp(h, s_rec_magic, sizeof s_rec_magic) != 0) {
        *why = "no record magic";
        return 0;
    }
    s_rec_parse(h, rec);
    if (rec->length > ZMESH__STORE_RECORD_LIMIT) {
        *why = "impossible length";
        return 0;
    }
    if (rec->length > limit - off - S_REC_HDR) {
        *why = "record runs past the end";
        return 0;
    }
    if (rec->flags & ~(uint32_t)ZMESH__STORE_FLAGS_MASK) {
        *why = "reserved flags set";
        return 0;
    }
    if (rec->seq < min_seq || rec->seq > max_seq) {
        *why = "sequence number out of order";
        return 0;
    }
    rec->header_ok = true;
    if (!crc)
        return 1;
    const uint8_t *p;
    rc = s_reader_get(r, off, S_REC_HDR + (size_t)rec->length, limit, &p);
    if (rc == ZMESH_EPROTO) {
        *why = "file shorter than expected";
        return 0;
    }
    if (rc < 0)
        return rc;
    if (work)
        *work += S_REC_HDR + rec->length;
    if (zmesh__crc32c(0, p + 8, S_REC_HDR - 8 + rec->length) != rec->crc) {
        *why = "bad CRC";
        return 0;
    }
    if (body)
        *body = p + S_REC_HDR;
    return 1;
}

// ---------------------------------------------------------------------------
// Segments and the index

static s_segment_t *
s_active(zmesh__store_t *self)
{
    assert(self->nsegs > 0);
    return &self->segs[self->nsegs - 1];
}

static int
s_segs_reserve(zmesh__store_t *self)
{
    if (self->nsegs < self->segs_cap)
        return 0;
    size_t cap = self->segs_cap ? self->segs_cap * 2 : 8;
    s_segment_t *segs = realloc(self->segs, cap * sizeof *segs);
    if (!segs)
        return ZMESH_ENOMEM;
    self->segs = segs;
    self->segs_cap = cap;
    return 0;
}

static int
s_index_reserve(s_segment_t *seg)
{
    if (seg->entries_count < seg->entries_cap)
        return 0;
    size_t cap = seg->entries_cap ? seg->entries_cap * 2 : 16;
    s_entry_t *entries = realloc(seg->entries, cap * sizeof *entries);
    if (!entries)
        return ZMESH_ENOMEM;
    seg->entries = entries;
    seg->entries_cap = cap;
    return 0;
}

/*  Indexes a sound record [off, end); s_index_reserve has made room. */
static void
s_index_add(zmesh__store_t *self, s_segment_t *seg, uint64_t seq, uint64_t off,
            uint64_t end, int64_t stored_us)
{
    s_entry_t *last =
        seg->entries_count ? &seg->entries[seg->entries_count - 1] : NULL;
    if (last && seq == last->seq + last->count && off == seg->tail &&
        off - last->offset < self->config.index_interval)
        last->count++;
    else
        seg->entries[seg->entries_count++] =
            (s_entry_t){seq, off, stored_us, 1};
    seg->tail = end;
    seg->count++;
    seg->last_seq = seq;
    seg->last_us = stored_us;
}

static void
s_seg_header(uint8_t *h, uint64_t seq, int64_t created_us)
{
    memcpy(h, s_seg_magic, sizeof s_seg_magic);
    s_put16(h + 8, S_VERSION);
    s_put16(h + 10, S_SEG_HDR);
    s_put64(h + 12, seq);
    s_put64(h + 20, (uint64_t)created_us);
    s_put32(h + 28, zmesh__crc32c(0, h, 28));
}

/*  NULL when the header is sound for a segment named `seq`, else why not;
 *newer when it is sound but of a later format version. */
static const char *
s_check_seg_header(const uint8_t *h, uint64_t seq, bool *newer)
{
    *newer = false;
    if (memcmp(h, s_seg_magic, sizeof s_seg_magic) != 0)
        return "no segment magic";
    if (s_get32(h + 28) != zmesh__crc32c(0, h, 28))
        return "bad header CRC";
    uint16_t version = s_get16(h + 8);
    if (version > S_VERSION) {
        *newer = true;
        return "newer format version";
    }
    if (version != S_VERSION)
        return "bad format version";
    if (s_get16(h + 10) != S_SEG_HDR)
        return "bad header size";
    if (s_get64(h + 12) != seq)
        return "first sequence number differs from the file name";
    return NULL;
}

/*  Sequence numbers at or above `seq` may have been handed out in a file
    that is not part of the log (proto/relay-log.md#sequence-numbers):
    every record takes at least S_REC_HDR bytes, so a file of `size` bytes
    accounts for at most that many. */
static void
s_raise_floor(zmesh__store_t *self, uint64_t seq, uint64_t size)
{
    uint64_t possible = size > S_SEG_HDR ? (size - S_SEG_HDR) / S_REC_HDR : 0;
    uint64_t floor = seq + (possible ? possible : 1);
    if (floor > self->floor)
        self->floor = floor;
}

/*  Renames a segment that cannot be used to <name>.corrupt (or .corrupt.N
    if that exists), so it is kept for inspection and never read again. */
static void
s_set_aside(zmesh__store_t *self, const char *name, uint64_t seq, uint64_t size,
            const char *why)
{
    self->stats.corrupt_segments++;
    s_raise_floor(self, seq, size);
    char target[S_NAME_SIZE + 24];
    for (int i = 0; i < 100; i++) {
        if (i == 0)
            snprintf(target, sizeof target, "%s.corrupt", name);
        else
            snprintf(target, sizeof target, "%s.corrupt.%d", name, i);
        struct stat st;
        if (fstatat(self->dirfd, target, &st, AT_SYMLINK_NOFOLLOW) == 0)
            continue;
        if (errno != ENOENT ||
            renameat(self->dirfd, name, self->dirfd, target) != 0)
            break;
        (void)s_sync_dir(self);
        zmesh__log(ZMESH_LOG_WARNING,
                   "store %s: segment %s set aside as %s: %s", self->path, name,
                   target, why);
        return;
    }
    zmesh__log(ZMESH_LOG_ERROR,
               "store %s: segment %s is unusable (%s) and could not be "
               "renamed: %s; ignored",
               self->path, name, why, strerror(errno));
}

/*  Looks for the first sound record after the bad bytes at `bad`: a record
    magic at p > bad whose record checks out, with a sequence number that
    the skipped bytes can account for (each lost record took at least
    S_REC_HDR bytes), so a record image inside some body is not taken for
    the log. *work bounds the CRC work, since a hostile file could put a
    magic and a long length at every byte. Returns 1 (*next, *rec), 0 when
    there is none, < 0 on errors. */
static int
s_resync(s_reader_t *r, uint64_t bad, uint64_t size, uint64_t min_seq,
         uint64_t *work, uint64_t budget, uint64_t *next, s_rec_t *rec)
{
    // Windows of half the reader's chunk: after a candidate's check has
    // refilled the buffer from the candidate on, the scan's next window
    // still lies inside it, so reading stays linear in the file's size.
    uint64_t p = bad + 1;
    while (p < size && size - p >= S_REC_HDR) {
        size_t n =
            size - p > S_SCAN_CHUNK / 2 ? S_SCAN_CHUNK / 2 : (size_t)(size - p);
        const uint8_t *buf;
        int rc = s_reader_get(r, p, n, size, &buf);
        if (rc < 0)
            return rc == ZMESH_EPROTO ? 0 : rc;
        const uint8_t *m = NULL;
        for (size_t i = 0; i + sizeof s_rec_magic <= n; i++) {
            m = memchr(buf + i, s_rec_magic[0], n - 3 - i);
            if (!m || memcmp(m, s_rec_magic, sizeof s_rec_magic) == 0)
                break;
            i = (size_t)(m - buf);
            m = NULL;
        }
        if (!m) {
            if (n == size - p)
                break;
            p += n - (sizeof s_rec_magic - 1); // a magic may straddle
            continue;
        }
        if (*work > budget)
            return 0;
        uint64_t cand = p + (uint64_t)(m - buf);
        uint64_t max_seq = min_seq + (cand - bad) / S_REC_HDR;
        const char *why;
        rc = s_check_record(r, cand, size, min_seq, max_seq, true, rec, NULL,
                            work, &why);
        if (rc != 0) {
            if (rc == 1)
                *next = cand;
            return rc;
        }
        p = cand + 1;
    }
    return 0;
}

/*  Reads and indexes every sound record of a segment whose header is
    sound; where bad bytes run to the end, seg->bad_at says where. */
static int
s_scan(zmesh__store_t *self, s_reader_t *r, s_segment_t *seg, const char *name)
{
    uint64_t size = seg->size;
    uint64_t off = S_SEG_HDR;
    uint64_t min_seq = self->last_seq + 1 > seg->first_seq ? self->last_seq + 1
                                                           : seg->first_seq;
    uint64_t work = 0, budget = 2 * size + S_SCAN_CHUNK;
    while (off < size) {
        s_rec_t rec;
        const char *why;
        int rc = s_check_record(r, off, size, min_seq, ZMESH__STORE_SEQ_MAX,
                                true, &rec, NULL, NULL, &why);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            uint64_t next = 0;
            // Only the CRC failed: the damage is most likely in the body,
            // and if the length still leads to a sound record, that is
            // the next one. Else scan byte by byte.
            if (rec.header_ok) {
                const char *ignored;
                next = off + S_REC_HDR + rec.length;
                rc = s_check_record(r, next, size, min_seq,
                                    min_seq + (next - off) / S_REC_HDR, true,
                                    &rec, NULL, &work, &ignored);
            }
            if (rc == 0)
                rc =
                    s_resync(r, off, size, min_seq, &work, budget, &next, &rec);
            if (rc < 0)
                return rc;
            if (rc == 0) {
                seg->bad_at = off;
                seg->bad_why = why;
                break;
            }
            self->stats.corrupt_regions++;
            self->stats.corrupt_bytes += next - off;
            seg->damaged = true;
            zmesh__log_limited(
                &self->log_limit, S_LOG_INTERVAL_MS,
                "store %s: segment %s: bad record at offset %" PRIu64
                " (%s); skipped %" PRIu64 " bytes to record %" PRIu64,
                self->path, name, off, why, next - off, rec.seq);
            off = next;
        }
        rc = s_index_reserve(seg);
        if (rc < 0)
            return rc;
        int64_t us =
            rec.stored_us > self->last_us ? rec.stored_us : self->last_us;
        self->last_us = us;
        s_index_add(self, seg, rec.seq, off, off + S_REC_HDR + rec.length, us);
        self->last_seq = rec.seq;
        min_seq = rec.seq + 1;
        off += S_REC_HDR + rec.length;
    }
    return 0;
}

/*  Opens, checks and indexes segment `seq`, appending it to self->segs;
    a segment that cannot be used is set aside instead. */
static int
s_load_segment(zmesh__store_t *self, s_reader_t *r, uint64_t seq)
{
    char name[S_NAME_SIZE];
    s_seg_name(name, seq);
    int rc = s_segs_reserve(self);
    if (rc < 0)
        return rc;
    int fd = openat(self->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return s_fail(self, "cannot open segment", name);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        rc = s_fail(self, "cannot stat segment", name);
        close(fd);
        return rc;
    }
    uint64_t size = (uint64_t)st.st_size;
    uint8_t h[S_SEG_HDR];
    size_t got = 0;
    const char *why = "partial segment header";
    bool newer = false;
    if (size >= S_SEG_HDR) {
        if (s_pread_all(fd, h, S_SEG_HDR, 0, &got) != 0) {
            rc = s_fail(self, "cannot read segment", name);
            close(fd);
            return rc;
        }
        if (got == S_SEG_HDR)
            why = s_check_seg_header(h, seq, &newer);
    }
    if (newer) {
        zmesh__log(ZMESH_LOG_ERROR,
                   "store %s: segment %s has format version %u; this build "
                   "reads version %d",
                   self->path, name, s_get16(h + 8), S_VERSION);
        close(fd);
        return ZMESH_EPROTO;
    }
    if (!why && self->last_seq >= seq)
        why = "overlaps the segment before it";
    if (why) {
        close(fd);
        s_set_aside(self, name, seq, size, why);
        return 0;
    }
    s_segment_t seg = {
        .first_seq = seq,
        .created_us = (int64_t)s_get64(h + 20),
        .size = size,
        .tail = S_SEG_HDR,
        .last_seq = seq - 1,
        .last_us = self->last_us,
    };
    s_reader_close(r);
    r->fd = fd;
    r->seg = seq;
    rc = s_scan(self, r, &seg, name);
    s_reader_close(r);
    if (rc < 0) {
        free(seg.entries);
        return rc;
    }
    self->segs[self->nsegs++] = seg;
    self->count += seg.count;
    self->bytes += seg.size;
    return 0;
}

/*  Creates segment `seq` (header only) under a temporary name and renames
    it into place, so a crash never leaves a segment with a partial
    header; returns its O_APPEND descriptor in *fd. */
static int
s_create_segment(zmesh__store_t *self, uint64_t seq, int64_t created_us,
                 int *fdp)
{
    char name[S_NAME_SIZE], tmp[S_NAME_SIZE + 8];
    s_seg_name(name, seq);
    snprintf(tmp, sizeof tmp, "%s.tmp", name);
    struct stat st;
    if (fstatat(self->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
        errno = EEXIST;
        return s_fail(self, "cannot create segment", name);
    }
    int fd = openat(self->dirfd, tmp,
                    O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return s_fail(self, "cannot create segment", tmp);
    uint8_t h[S_SEG_HDR];
    s_seg_header(h, seq, created_us);
    if (s_write_all(fd, h, sizeof h) != 0 ||
        (s_syncs(self) && fdatasync(fd) != 0) ||
        renameat(self->dirfd, tmp, self->dirfd, name) != 0) {
        int rc = s_fail(self, "cannot create segment", name);
        close(fd);
        unlinkat(self->dirfd, tmp, 0);
        return rc;
    }
    if (s_syncs(self))
        self->stats.syncs++;
    // Unless the directory entry is durable the segment is not; a segment
    // we could not make durable is removed so the name stays free.
    int rc = s_sync_dir(self);
    if (rc < 0) {
        close(fd);
        unlinkat(self->dirfd, name, 0);
        return rc;
    }
    self->stats.segments_created++;
    *fdp = fd;
    return 0;
}

/*  Adds segment `seq` as the new active segment (room reserved). */
static void
s_push_segment(zmesh__store_t *self, uint64_t seq, int64_t created_us)
{
    self->segs[self->nsegs++] = (s_segment_t){
        .first_seq = seq,
        .created_us = created_us,
        .size = S_SEG_HDR,
        .tail = S_SEG_HDR,
        .last_seq = seq - 1,
        .last_us = self->last_us,
    };
    self->bytes += S_SEG_HDR;
}

// ---------------------------------------------------------------------------
// Open and recovery

static int
s_config(zmesh__store_config_t *c, const zmesh__store_config_t *in)
{
    if (in)
        *c = *in;
    else
        memset(c, 0, sizeof *c);
    if (!c->segment_bytes)
        c->segment_bytes = ZMESH__STORE_SEGMENT_BYTES_DEFAULT;
    if (!c->max_record)
        c->max_record = ZMESH__STORE_RECORD_MAX_DEFAULT;
    if (!c->index_interval)
        c->index_interval = ZMESH__STORE_INDEX_INTERVAL_DEFAULT;
    if (!c->sync_interval_ms)
        c->sync_interval_ms = ZMESH__STORE_SYNC_INTERVAL_DEFAULT;
    if (c->segment_bytes < S_SEG_HDR + S_REC_HDR ||
        c->segment_bytes > S_SEGMENT_BYTES_MAX ||
        c->max_record > ZMESH__STORE_RECORD_LIMIT ||
        (c->sync != ZMESH__STORE_SYNC_ALWAYS &&
         c->sync != ZMESH__STORE_SYNC_INTERVAL &&
         c->sync != ZMESH__STORE_SYNC_NEVER))
        return ZMESH_EINVAL;
    return 0;
}

/*  A new directory is durable once its parent is synced. */
static void
s_sync_parent(zmesh__store_t *self)
{
    char *parent = strdup(self->path);
    if (!parent)
        return;
    size_t n = strlen(parent);
    while (n > 1 && parent[n - 1] == '/')
        parent[--n] = '\0';
    char *slash = strrchr(parent, '/');
    const char *dir = ".";
    if (slash == parent)
        dir = "/";
    else if (slash) {
        *slash = '\0';
        dir = parent;
    }
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        if (fsync(fd) == 0)
            self->stats.dir_syncs++;
        close(fd);
    }
    free(parent);
}

static int
s_open_dir(zmesh__store_t *self)
{
    bool made = mkdir(self->path, 0755) == 0;
    if (!made && errno != EEXIST)
        return s_fail(self, "cannot create directory", self->path);
    self->dirfd = open(self->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (self->dirfd < 0)
        return s_fail(self, "cannot open directory", self->path);
    if (made && s_syncs(self))
        s_sync_parent(self);
    self->lockfd = openat(self->dirfd, "LOCK",
                          O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (self->lockfd < 0)
        return s_fail(self, "cannot open", "LOCK");
    struct flock lock = {.l_type = F_WRLCK, .l_whence = SEEK_SET};
    if (fcntl(self->lockfd, F_SETLK, &lock) != 0) {
        if (errno == EACCES || errno == EAGAIN) {
            zmesh__log(ZMESH_LOG_ERROR, "store %s: in use by another process",
                       self->path);
            return ZMESH_ESTATE;
        }
        return s_fail(self, "cannot lock", "LOCK");
    }
    return 0;
}

typedef enum {
    S_FILE_OTHER,
    S_FILE_OURS, /* LOCK, consumer files */
    S_FILE_SEGMENT,
    S_FILE_TEMP,     /* <seq>.seg.tmp: an interrupted segment creation */
    S_FILE_SET_ASIDE /* <seq>.seg.corrupt[.N] */
} s_file_t;

static s_file_t
s_classify(const char *name, uint64_t *seq)
{
    size_t n = strlen(name), base;
    if (strcmp(name, "LOCK") == 0)
        return S_FILE_OURS;
    if (n >= 24 && s_parse_seq(name, seq)) {
        const char *rest = name + 20;
        if (strcmp(rest, ".seg") == 0)
            return S_FILE_SEGMENT;
        if (strcmp(rest, ".seg.tmp") == 0)
            return S_FILE_TEMP;
        if (strncmp(rest, ".seg.corrupt", 12) == 0)
            return S_FILE_SET_ASIDE;
    }
    if ((s_ends_with(name, n, ".cursor", &base) ||
         s_ends_with(name, n, ".cursor.prev", &base) ||
         s_ends_with(name, n, ".cursor.tmp", &base)) &&
        s_name_ok(name, base))
        return S_FILE_OURS;
    return S_FILE_OTHER;
}

static int
s_cmp_seq(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/*  Lists the directory: sorted segment candidates into *seqs; everything
    else is noted, counted or (set-aside segments) raises the floor. */
static int
s_list(zmesh__store_t *self, uint64_t **seqs, size_t *count)
{
    *seqs = NULL;
    *count = 0;
    size_t cap = 0;
    int fd = openat(self->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        int rc = s_fail(self, "cannot list directory", self->path);
        if (fd >= 0)
            close(fd);
        return rc;
    }
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        const char *name = entry->d_name;
        if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
            continue;
        uint64_t seq = 0;
        s_file_t kind = s_classify(name, &seq);
        struct stat st;
        if (fstatat(self->dirfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
            continue; // gone since readdir
        if (kind == S_FILE_SEGMENT && !S_ISREG(st.st_mode)) {
            s_raise_floor(self, seq, 0);
            kind = S_FILE_OTHER;
        }
        switch (kind) {
        case S_FILE_SEGMENT:
            if (*count == cap) {
                cap = cap ? cap * 2 : 64;
                uint64_t *grown = realloc(*seqs, cap * sizeof **seqs);
                if (!grown) {
                    closedir(dir);
                    free(*seqs);
                    *seqs = NULL;
                    return ZMESH_ENOMEM;
                }
                *seqs = grown;
            }
            (*seqs)[(*count)++] = seq;
            break;
        case S_FILE_SET_ASIDE:
            s_raise_floor(self, seq, (uint64_t)st.st_size);
            zmesh__log(ZMESH_LOG_NOTICE, "store %s: %s was set aside earlier",
                       self->path, name);
            break;
        case S_FILE_TEMP:
            zmesh__log(ZMESH_LOG_NOTICE,
                       "store %s: %s is left from an interrupted segment "
                       "creation; ignored",
                       self->path, name);
            break;
        case S_FILE_OURS: break;
        case S_FILE_OTHER:
            self->stats.bad_files++;
            zmesh__log_limited(&self->log_limit, S_LOG_INTERVAL_MS,
                               "store %s: unknown file %s ignored", self->path,
                               name);
            break;
        }
    }
    closedir(dir);
    if (*count)
        qsort(*seqs, *count, sizeof **seqs, s_cmp_seq);
    return 0;
}

/*  Bad bytes at the end of the last segment are a torn write (or damage
    that cannot be told from one): cut off, so appends go on from the last
    sound record. Elsewhere they stay on disk as a gap. */
static int
s_settle_tails(zmesh__store_t *self)
{
    for (size_t i = 0; i < self->nsegs; i++) {
        s_segment_t *seg = &self->segs[i];
        if (!seg->bad_at)
            continue;
        char name[S_NAME_SIZE];
        s_seg_name(name, seg->first_seq);
        uint64_t cut = seg->size - seg->bad_at;
        if (i + 1 < self->nsegs) {
            self->stats.corrupt_regions++;
            self->stats.corrupt_bytes += cut;
            zmesh__log_limited(&self->log_limit, S_LOG_INTERVAL_MS,
                               "store %s: segment %s: bad record at offset "
                               "%" PRIu64 " (%s); the last %" PRIu64
                               " bytes of the segment are skipped",
                               self->path, name, seg->bad_at, seg->bad_why,
                               cut);
            seg->bad_at = 0;
            continue;
        }
        int fd = openat(self->dirfd, name, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
            return s_fail(self, "cannot open segment", name);
        if (ftruncate(fd, (off_t)seg->bad_at) != 0 ||
            (s_syncs(self) && fdatasync(fd) != 0)) {
            int rc = s_fail(self, "cannot truncate segment", name);
            close(fd);
            return rc;
        }
        close(fd);
        if (s_syncs(self))
            self->stats.syncs++;
        self->stats.torn_tails++;
        self->stats.truncated_bytes += cut;
        self->bytes -= cut;
        zmesh__log(ZMESH_LOG_WARNING,
                   "store %s: segment %s: torn tail at offset %" PRIu64
                   " (%s): %" PRIu64 " bytes truncated",
                   self->path, name, seg->bad_at, seg->bad_why, cut);
        seg->size = seg->bad_at;
        seg->bad_at = 0;
    }
    return 0;
}

static int
s_recover(zmesh__store_t *self)
{
    uint64_t *seqs;
    size_t count;
    int rc = s_list(self, &seqs, &count);
    if (rc < 0)
        return rc;
    s_reader_t scan;
    s_reader_init(&scan, S_SCAN_CHUNK);
    for (size_t i = 0; i < count && rc == 0; i++)
        rc = s_load_segment(self, &scan, seqs[i]);
    s_reader_free(&scan);
    free(seqs);
    if (rc < 0)
        return rc;
    rc = s_settle_tails(self);
    if (rc < 0)
        return rc;

    uint64_t next = self->last_seq + 1;
    if (self->nsegs && s_active(self)->first_seq > next)
        next = s_active(self)->first_seq;
    if (self->floor > next)
        next = self->floor;
    self->next_seq = next;
    if (self->nsegs == 0) {
        if (next > ZMESH__STORE_SEQ_MAX)
            return ZMESH_ESTATE;
        rc = s_segs_reserve(self);
        if (rc < 0)
            return rc;
        int64_t now = zmesh__wall_clock_us();
        rc = s_create_segment(self, next, now, &self->fd);
        if (rc < 0)
            return rc;
        s_push_segment(self, next, now);
        return 0;
    }
    char name[S_NAME_SIZE];
    s_seg_name(name, s_active(self)->first_seq);
    self->fd =
        openat(self->dirfd, name, O_WRONLY | O_APPEND | O_CLOEXEC | O_NOFOLLOW);
    if (self->fd < 0)
        return s_fail(self, "cannot open segment", name);
    return 0;
}

static void
s_free(zmesh__store_t *self)
{
    for (size_t i = 0; i < self->nsegs; i++)
        free(self->segs[i].entries);
    free(self->segs);
    s_reader_free(&self->reader);
    if (self->fd >= 0)
        close(self->fd);
    if (self->lockfd >= 0)
        close(self->lockfd);
    if (self->dirfd >= 0)
        close(self->dirfd);
    free(self->path);
    free(self);
}

int
zmesh__store_open(zmesh__store_t **store, const char *path,
                  const zmesh__store_config_t *config)
{
    if (!store || !path || !*path)
        return ZMESH_EINVAL;
    zmesh__store_config_t cfg;
    int rc = s_config(&cfg, config);
    if (rc < 0)
        return rc;
    zmesh__store_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZMESH_ENOMEM;
    self->dirfd = self->lockfd = self->fd = -1;
    self->config = cfg;
    self->last_us = INT64_MIN;
    s_reader_init(&self->reader, S_READ_CHUNK);
    self->path = strdup(path);
    if (!self->path) {
        s_free(self);
        return ZMESH_ENOMEM;
    }
    rc = s_open_dir(self);
    if (rc == 0)
        rc = s_recover(self);
    if (rc < 0) {
        int err = errno;
        s_free(self);
        errno = err;
        return rc;
    }
    self->last_sync_ms = zmesh__clock_ms();
    *store = self;
    return 0;
}

static int
s_sync(zmesh__store_t *self, int64_t now_ms)
{
    if (!self->dirty)
        return 0;
    if (fdatasync(self->fd) != 0)
        return s_fail(self, "cannot sync segment", NULL);
    self->stats.syncs++;
    self->dirty = false;
    self->last_sync_ms = now_ms;
    return 1;
}

void
zmesh__store_destroy(zmesh__store_t **store)
{
    if (!store || !*store)
        return;
    zmesh__store_t *self = *store;
    assert(self->iters == 0);
    if (s_syncs(self))
        (void)s_sync(self, zmesh__clock_ms());
    s_free(self);
    *store = NULL;
}

// ---------------------------------------------------------------------------
// Appending and durability

/*  Closes the active segment (synced first, unless SYNC_NEVER) and starts
    segment next_seq. On failure the old segment stays active. */
static int
s_roll(zmesh__store_t *self, int64_t created_us)
{
    int rc = s_segs_reserve(self);
    if (rc < 0)
        return rc;
    if (s_syncs(self)) {
        rc = s_sync(self, zmesh__clock_ms());
        if (rc < 0)
            return rc;
    }
    int fd;
    rc = s_create_segment(self, self->next_seq, created_us, &fd);
    if (rc < 0)
        return rc;
    close(self->fd);
    self->fd = fd;
    self->dirty = false;
    s_push_segment(self, self->next_seq, created_us);
    return 0;
}

/*  Writes header and body with as few system calls as the kernel allows;
    O_APPEND puts every piece at the current end. */
static int
s_write_record(int fd, uint8_t *hdr, const void *body, size_t size)
{
    struct iovec iov[2] = {{hdr, S_REC_HDR}, {(void *)body, size}};
    struct iovec *v = iov;
    int n = size ? 2 : 1;
    while (n > 0) {
        ssize_t w = writev(fd, v, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            if (w == 0)
                errno = EIO;
            return -1;
        }
        size_t done = (size_t)w;
        while (n > 0 && done >= v->iov_len) {
            done -= v->iov_len;
            v++;
            n--;
        }
        if (n > 0) {
            v->iov_base = (uint8_t *)v->iov_base + done;
            v->iov_len -= done;
        }
    }
    return 0;
}

int
zmesh__store_append(zmesh__store_t *self, const void *body, size_t size,
                    uint32_t flags, int64_t stored_us, uint64_t *seq)
{
    if (!self || !seq || (!body && size) ||
        (flags & ~(uint32_t)ZMESH__STORE_FLAGS_MASK))
        return ZMESH_EINVAL;
    if (size > self->config.max_record)
        return ZMESH_ETOOBIG;
    if (self->next_seq > ZMESH__STORE_SEQ_MAX)
        return ZMESH_ESTATE;
    s_segment_t *seg = s_active(self);
    // A write that failed and could not be cut back at the time is cut
    // back now, before anything lands after it.
    if (self->tail_dirty) {
        if (ftruncate(self->fd, (off_t)seg->size) != 0)
            return s_fail(self, "cannot truncate segment", NULL);
        self->tail_dirty = false;
    }
    if (stored_us < self->last_us)
        stored_us = self->last_us;
    uint64_t need = S_REC_HDR + (uint64_t)size;
    if (seg->damaged || (seg->size > S_SEG_HDR &&
                         seg->size + need > self->config.segment_bytes)) {
        int rc = s_roll(self, stored_us);
        if (rc < 0)
            return rc;
        seg = s_active(self);
    }
    int rc = s_index_reserve(seg);
    if (rc < 0)
        return rc;

    uint8_t hdr[S_REC_HDR];
    memcpy(hdr, s_rec_magic, sizeof s_rec_magic);
    s_put32(hdr + 8, (uint32_t)size);
    s_put32(hdr + 12, flags);
    s_put64(hdr + 16, self->next_seq);
    s_put64(hdr + 24, (uint64_t)stored_us);
    uint32_t crc = zmesh__crc32c(0, hdr + 8, S_REC_HDR - 8);
    s_put32(hdr + 4, zmesh__crc32c(crc, body, size));
    if (s_write_record(self->fd, hdr, body, size) != 0) {
        int err = errno;
        self->stats.append_errors++;
        self->last_errno = err;
        // Whatever part reached the file is cut off again, so the log ends
        // with a sound record and a later append lands right after it.
        if (ftruncate(self->fd, (off_t)seg->size) != 0)
            self->tail_dirty = true;
        zmesh__log_limited(&self->log_limit, S_LOG_INTERVAL_MS,
                           "store %s: append of record %" PRIu64 " failed: %s",
                           self->path, self->next_seq, strerror(err));
        errno = err;
        return ZMESH_ESYS;
    }
    s_index_add(self, seg, self->next_seq, seg->size, seg->size + need,
                stored_us);
    seg->size += need;
    self->bytes += need;
    self->count++;
    self->last_seq = self->next_seq;
    self->last_us = stored_us;
    self->dirty = true;
    self->stats.appends++;
    *seq = self->next_seq++;
    return 0;
}

int
zmesh__store_commit(zmesh__store_t *self)
{
    if (!self)
        return ZMESH_EINVAL;
    self->stats.commits++;
    int64_t now = zmesh__clock_ms();
    switch (self->config.sync) {
    case ZMESH__STORE_SYNC_ALWAYS: return s_sync(self, now);
    case ZMESH__STORE_SYNC_INTERVAL:
        if (now - self->last_sync_ms >= (int64_t)self->config.sync_interval_ms)
            return s_sync(self, now);
        return 0;
    case ZMESH__STORE_SYNC_NEVER: return 0;
    }
    return 0;
}

int
zmesh__store_tick(zmesh__store_t *self, int64_t now_ms)
{
    if (!self)
        return ZMESH_EINVAL;
    if (self->config.sync == ZMESH__STORE_SYNC_INTERVAL &&
        now_ms - self->last_sync_ms >= (int64_t)self->config.sync_interval_ms)
        return s_sync(self, now_ms);
    return 0;
}

// ---------------------------------------------------------------------------
// Retention

int
zmesh__store_retention(zmesh__store_t *self, int64_t now_us)
{
    if (!self)
        return ZMESH_EINVAL;
    const zmesh__store_config_t *c = &self->config;
    bool by_age = c->max_age_ms > 0 && c->max_age_ms <= INT64_MAX / 1000;
    int64_t cutoff = INT64_MIN;
    if (by_age) {
        int64_t age = (int64_t)c->max_age_ms * 1000;
        cutoff = now_us < INT64_MIN + age ? INT64_MIN : now_us - age;
    }
    int deleted = 0;
    while (self->nsegs > 1) {
        s_segment_t *seg = &self->segs[0];
        bool doomed = (by_age && seg->last_us < cutoff) ||
                      (c->max_bytes && self->bytes > c->max_bytes) ||
                      (c->max_events && self->count > c->max_events);
        if (!doomed)
            break;
        char name[S_NAME_SIZE];
        s_seg_name(name, seg->first_seq);
        if (unlinkat(self->dirfd, name, 0) != 0) {
            int rc = s_fail(self, "cannot delete segment", name);
            if (deleted == 0)
                return rc;
            break;
        }
        if (self->reader.seg == seg->first_seq)
            s_reader_close(&self->reader);
        zmesh__log(ZMESH_LOG_INFO,
                   "store %s: retention deleted segment %s (%" PRIu64
                   " records, %" PRIu64 " bytes)",
                   self->path, name, seg->count, seg->size);
        self->bytes -= seg->size;
        self->count -= seg->count;
        free(seg->entries);
        memmove(self->segs, self->segs + 1,
                (self->nsegs - 1) * sizeof *self->segs);
        self->nsegs--;
        self->stats.segments_deleted++;
        deleted++;
    }
    if (deleted)
        (void)s_sync_dir(self);
    return deleted;
}

// ---------------------------------------------------------------------------
// Reading

/*  Index of the last segment whose first_seq <= seq (0 if none is). */
static size_t
s_find_segment(const zmesh__store_t *self, uint64_t seq)
{
    size_t lo = 0, hi = self->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->segs[mid].first_seq <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo ? lo - 1 : 0;
}

/*  The first sound record with sequence number >= seq, if any. */
static bool
s_position(const zmesh__store_t *self, uint64_t seq, s_pos_t *pos)
{
    for (size_t i = s_find_segment(self, seq); i < self->nsegs; i++) {
        const s_segment_t *seg = &self->segs[i];
        size_t lo = 0, hi = seg->entries_count;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (seg->entries[mid].seq <= seq)
                lo = mid + 1;
            else
                hi = mid;
        }
        if (lo > 0) {
            const s_entry_t *e = &seg->entries[lo - 1];
            if (seq - e->seq < e->count) {
                *pos = (s_pos_t){i, lo - 1, seq};
                return true;
            }
        }
        if (lo < seg->entries_count) {
            *pos = (s_pos_t){i, lo, seg->entries[lo].seq};
            return true;
        }
    }
    return false;
}

static void
s_read_error(zmesh__store_t *self, uint64_t seg_seq, uint64_t off, uint64_t seq,
             const char *why)
{
    self->stats.read_errors++;
    zmesh__log_limited(&self->log_limit, S_LOG_INTERVAL_MS,
                       "store %s: segment %020" PRIu64 ".seg: record %" PRIu64
                       " at offset %" PRIu64
                       " fails its check (%s); not served",
                       self->path, seg_seq, seq, off, why);
}

/*  Steps from the start of index run `e` to record `seq` by headers alone
    (magic, sequence number, length) and sets *off to its offset. */
static int
s_walk(zmesh__store_t *self, s_reader_t *r, const s_segment_t *seg,
       const s_entry_t *e, uint64_t seq, uint64_t *off)
{
    uint64_t at = e->offset;
    for (uint64_t s = e->seq; s < seq; s++) {
        s_rec_t rec;
        const char *why;
        int rc = s_check_record(r, at, seg->tail, s, s, false, &rec, NULL, NULL,
                                &why);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            s_read_error(self, seg->first_seq, at, s, why);
            return ZMESH_EPROTO;
        }
        at += S_REC_HDR + rec.length;
    }
    *off = at;
    return 0;
}

/*  Reads and fully checks record `seq` at `off`. *next_off is where the
    next record starts, or UINT64_MAX when the header is not to be trusted
    for that. */
static int
s_load(zmesh__store_t *self, s_reader_t *r, const s_segment_t *seg,
       uint64_t off, uint64_t seq, zmesh__store_record_t *out,
       uint64_t *next_off)
{
    s_rec_t rec;
    const uint8_t *body;
    const char *why;
    *next_off = UINT64_MAX;
    int rc = s_check_record(r, off, seg->tail, seq, seq, true, &rec, &body,
                            NULL, &why);
    if (rc < 0)
        return rc;
    if (rec.header_ok)
        *next_off = off + S_REC_HDR + rec.length;
    if (rc == 0) {
        s_read_error(self, seg->first_seq, off, seq, why);
        return ZMESH_EPROTO;
    }
    out->seq = rec.seq;
    out->stored_us = rec.stored_us;
    out->flags = rec.flags;
    out->body = body;
    out->size = rec.length;
    return 0;
}

int
zmesh__store_read(zmesh__store_t *self, uint64_t seq,
                  zmesh__store_record_t *record)
{
    if (!self || !record)
        return ZMESH_EINVAL;
    s_pos_t pos;
    if (seq < zmesh__store_first_seq(self) || seq > self->last_seq ||
        !s_position(self, seq, &pos) || pos.seq != seq)
        return ZMESH_ENOTFOUND;
    const s_segment_t *seg = &self->segs[pos.seg];
    int rc = s_reader_use(self, &self->reader, seg->first_seq);
    if (rc < 0)
        return rc;
    uint64_t off, next_off;
    rc = s_walk(self, &self->reader, seg, &seg->entries[pos.entry], seq, &off);
    if (rc < 0)
        return rc;
    zmesh__store_record_t out;
    rc = s_load(self, &self->reader, seg, off, seq, &out, &next_off);
    if (rc < 0)
        return rc;
    *record = out;
    return 0;
}

int
zmesh__store_seek_time(zmesh__store_t *self, int64_t wall_us, uint64_t *seq)
{
    if (!self || !seq)
        return ZMESH_EINVAL;
    // Stored-at times never decrease in the index, so both searches are
    // binary: the first segment whose newest record is recent enough...
    size_t lo = 0, hi = self->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (self->segs[mid].last_us < wall_us)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t i = lo; i < self->nsegs; i++) {
        const s_segment_t *seg = &self->segs[i];
        if (seg->entries_count == 0)
            continue;
        // ...then the last run that starts before the time, walked through.
        size_t a = 0, b = seg->entries_count;
        while (a < b) {
            size_t mid = a + (b - a) / 2;
            if (seg->entries[mid].stored_us < wall_us)
                a = mid + 1;
            else
                b = mid;
        }
        if (a == 0) {
            *seq = seg->entries[0].seq;
            return 0;
        }
        const s_entry_t *e = &seg->entries[a - 1];
        int rc = s_reader_use(self, &self->reader, seg->first_seq);
        if (rc < 0)
            return rc;
        uint64_t at = e->offset;
        int64_t clamp = e->stored_us;
        for (uint64_t k = 0; k < e->count; k++) {
            s_rec_t rec;
            const char *why;
            rc = s_check_record(&self->reader, at, seg->tail, e->seq + k,
                                e->seq + k, false, &rec, NULL, NULL, &why);
            if (rc < 0)
                return rc;
            if (rc == 0) {
                s_read_error(self, seg->first_seq, at, e->seq + k, why);
                return ZMESH_EPROTO;
            }
            if (rec.stored_us > clamp)
                clamp = rec.stored_us;
            if (clamp >= wall_us) {
                *seq = e->seq + k;
                return 0;
            }
            at += S_REC_HDR + rec.length;
        }
        if (a < seg->entries_count) {
            *seq = seg->entries[a].seq;
            return 0;
        }
    }
    *seq = self->next_seq;
    return 0;
}

uint64_t
zmesh__store_first_seq(const zmesh__store_t *self)
{
    return self->nsegs ? self->segs[0].first_seq : self->next_seq;
}

uint64_t
zmesh__store_last_seq(const zmesh__store_t *self)
{
    uint64_t first = zmesh__store_first_seq(self);
    return self->last_seq >= first ? self->last_seq : first - 1;
}

uint64_t
zmesh__store_bytes(const zmesh__store_t *self)
{
    return self->bytes;
}

uint64_t
zmesh__store_count(const zmesh__store_t *self)
{
    return self->count;
}

void
zmesh__store_stats(const zmesh__store_t *self, zmesh__store_stats_t *stats)
{
    *stats = self->stats;
}

int
zmesh__store_errno(const zmesh__store_t *self)
{
    return self->last_errno;
}

// ---------------------------------------------------------------------------
// Iterators

int
zmesh__store_iter_new(zmesh__store_t *store, uint64_t from_seq,
                      zmesh__store_iter_t **iter)
{
    if (!store || !iter)
        return ZMESH_EINVAL;
    zmesh__store_iter_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZMESH_ENOMEM;
    self->store = store;
    self->next = from_seq;
    s_reader_init(&self->reader, S_READ_CHUNK);
    store->iters++;
    *iter = self;
    return 0;
}

void
zmesh__store_iter_destroy(zmesh__store_iter_t **iter)
{
    if (!iter || !*iter)
        return;
    (*iter)->store->iters--;
    s_reader_free(&(*iter)->reader);
    free(*iter);
    *iter = NULL;
}

uint64_t
zmesh__store_iter_seq(const zmesh__store_iter_t *self)
{
    return self->next;
}

/*  The iterator's segment, if retention has not deleted it. */
static const s_segment_t *
s_iter_segment(const zmesh__store_iter_t *self)
{
    const zmesh__store_t *store = self->store;
    size_t i = s_find_segment(store, self->seg_seq);
    if (i < store->nsegs && store->segs[i].first_seq == self->seg_seq)
        return &store->segs[i];
    return NULL;
}

int
zmesh__store_iter_next(zmesh__store_iter_t *self, zmesh__store_record_t *record)
{
    if (!self || !record)
        return ZMESH_EINVAL;
    zmesh__store_t *store = self->store;
    uint64_t first = zmesh__store_first_seq(store);
    if (self->next < first) {
        self->next = first;
        self->placed = false;
    }
    const s_segment_t *seg = NULL;
    if (self->placed) {
        seg = s_iter_segment(self);
        const s_entry_t *e = seg ? &seg->entries[self->entry] : NULL;
        if (!e || self->next - e->seq >= e->count)
            self->placed = false;
    }
    if (!self->placed) {
        s_pos_t pos;
        if (!s_position(store, self->next, &pos))
            return ZMESH_EAGAIN;
        seg = &store->segs[pos.seg];
        const s_entry_t *e = &seg->entries[pos.entry];
        self->next = pos.seq;
        self->seg_seq = seg->first_seq;
        self->entry = pos.entry;
        int rc = s_reader_use(store, &self->reader, seg->first_seq);
        if (rc < 0)
            return rc;
        rc = s_walk(store, &self->reader, seg, e, pos.seq, &self->off);
        if (rc == ZMESH_EPROTO) {
            // The run cannot be walked: skip what is left of it.
            memset(record, 0, sizeof *record);
            record->seq = pos.seq;
            self->next = e->seq + e->count;
            return rc;
        }
        if (rc < 0)
            return rc;
        self->placed = true;
    }
    int rc = s_reader_use(store, &self->reader, seg->first_seq);
    if (rc < 0)
        return rc;
    uint64_t next_off;
    zmesh__store_record_t out;
    rc = s_load(store, &self->reader, seg, self->off, self->next, &out,
                &next_off);
    if (rc == 0 || rc == ZMESH_EPROTO) {
        if (rc == 0)
            *record = out;
        else {
            memset(record, 0, sizeof *record);
            record->seq = self->next;
        }
        if (next_off != UINT64_MAX) {
            self->next++;
            self->off = next_off;
        } else {
            const s_entry_t *e = &seg->entries[self->entry];
            self->next = e->seq + e->count;
            self->placed = false;
        }
    }
    return rc;
}

// ---------------------------------------------------------------------------
// Consumer files (proto/relay-log.md#consumer-files)

static void
s_consumer_file(char *out, size_t cap, const char *name, const char *suffix)
{
    snprintf(out, cap, "%s.cursor%s", name, suffix);
}

/*  Reads and checks one consumer file. On success *acked and *blob_size
    are set and, when `blob` is not NULL, *blob is a malloc'd copy of the
    blob (the caller frees it). The file is read into the heap: at up to
    1 MiB it does not belong on the stack. */
static int
s_consumer_read(zmesh__store_t *self, const char *file, const char *name,
                uint64_t *acked, uint8_t **blob, size_t *blob_size,
                const char **why)
{
    *why = "";
    int fd = openat(self->dirfd, file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return ZMESH_ENOTFOUND;
        if (errno == ELOOP) {
            *why = "not a regular file";
            return ZMESH_EPROTO;
        }
        return s_fail(self, "cannot open", file);
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int rc = s_fail(self, "cannot read", file);
        close(fd);
        return rc;
    }
    *why = "bad size";
    if (!S_ISREG(st.st_mode) || st.st_size > S_CON_MAX ||
        st.st_size < S_CON_HDR + 4) {
        close(fd);
        return ZMESH_EPROTO;
    }
    uint8_t *buf = malloc((size_t)st.st_size);
    if (!buf) {
        close(fd);
        return ZMESH_ENOMEM;
    }
    size_t got = 0;
    if (s_pread_all(fd, buf, (size_t)st.st_size, 0, &got) != 0) {
        int rc = s_fail(self, "cannot read", file);
        close(fd);
        free(buf);
        return rc;
    }
    close(fd);
    size_t n = strlen(name);
    int rc = ZMESH_EPROTO;
    uint32_t blob_len = 0;
    if (got != (size_t)st.st_size || got < S_CON_HDR + 4)
        goto done;
    *why = "bad CRC";
    if (s_get32(buf + got - 4) != zmesh__crc32c(0, buf, got - 4))
        goto done;
    *why = "bad header";
    blob_len = s_get32(buf + 24);
    if (memcmp(buf, s_con_magic, sizeof s_con_magic) != 0 ||
        s_get16(buf + 4) != 1 || s_get16(buf + 6) != n ||
        blob_len > ZMESH__STORE_CONSUMER_BLOB_MAX ||
        S_CON_HDR + n + blob_len + 4 != got ||
        memcmp(buf + S_CON_HDR, name, n) != 0)
        goto done;
    if (blob) {
        *blob = malloc(blob_len ? blob_len : 1);
        if (!*blob) {
            rc = ZMESH_ENOMEM;
            goto done;
        }
        memcpy(*blob, buf + S_CON_HDR + n, blob_len);
    }
    *acked = s_get64(buf + 8);
    *blob_size = blob_len;
    rc = 0;
done:
    free(buf);
    return rc;
}

int
zmesh__store_consumer_save(zmesh__store_t *self, const char *name,
                           uint64_t acked_seq, const void *blob,
                           size_t blob_size)
{
    if (!self || !zmesh__store_consumer_name_ok(name) || (!blob && blob_size))
        return ZMESH_EINVAL;
    if (blob_size > ZMESH__STORE_CONSUMER_BLOB_MAX)
        return ZMESH_ETOOBIG;
    size_t n = strlen(name);
    uint8_t *buf = malloc(S_CON_HDR + n + blob_size + 4);
    if (!buf)
        return ZMESH_ENOMEM;
    memcpy(buf, s_con_magic, sizeof s_con_magic);
    s_put16(buf + 4, 1);
    s_put16(buf + 6, (uint16_t)n);
    s_put64(buf + 8, acked_seq);
    s_put64(buf + 16, (uint64_t)zmesh__wall_clock_us());
    s_put32(buf + 24, (uint32_t)blob_size);
    memcpy(buf + S_CON_HDR, name, n);
    if (blob_size)
        memcpy(buf + S_CON_HDR + n, blob, blob_size);
    size_t size = S_CON_HDR + n + blob_size;
    s_put32(buf + size, zmesh__crc32c(0, buf, size));
    size += 4;

    char cur[S_NAME_SIZE], prev[S_NAME_SIZE], tmp[S_NAME_SIZE];
    s_consumer_file(cur, sizeof cur, name, "");
    s_consumer_file(prev, sizeof prev, name, ".prev");
    s_consumer_file(tmp, sizeof tmp, name, ".tmp");
    int fd =
        openat(self->dirfd, tmp,
               O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (fd < 0) {
        free(buf);
        return s_fail(self, "cannot create", tmp);
    }
    bool written =
        s_write_all(fd, buf, size) == 0 && (!s_syncs(self) || fsync(fd) == 0);
    free(buf);
    if (!written) {
        int rc = s_fail(self, "cannot write", tmp);
        close(fd);
        unlinkat(self->dirfd, tmp, 0);
        return rc;
    }
    close(fd);
    // The current copy becomes the previous one only if it is sound: a
    // corrupt current copy must not push out a good previous one.
    uint64_t acked;
    size_t old_size;
    const char *why;
    if (s_consumer_read(self, cur, name, &acked, NULL, &old_size, &why) == 0 &&
        renameat(self->dirfd, cur, self->dirfd, prev) != 0) {
        int rc = s_fail(self, "cannot rename", cur);
        unlinkat(self->dirfd, tmp, 0);
        return rc;
    }
    if (renameat(self->dirfd, tmp, self->dirfd, cur) != 0) {
        int rc = s_fail(self, "cannot rename", tmp);
        unlinkat(self->dirfd, tmp, 0);
        return rc;
    }
    return s_sync_dir(self);
}

int
zmesh__store_consumer_load(zmesh__store_t *self, const char *name,
                           uint64_t *acked_seq, void *blob, size_t blob_cap,
                           size_t *blob_size)
{
    if (!self || !zmesh__store_consumer_name_ok(name) || !acked_seq ||
        !blob_size || (!blob && blob_cap))
        return ZMESH_EINVAL;
    char file[S_NAME_SIZE];
    uint8_t *got_blob = NULL;
    uint64_t acked = 0;
    size_t size = 0;
    const char *why;
    int result = 0;
    s_consumer_file(file, sizeof file, name, "");
    int rc = s_consumer_read(self, file, name, &acked, &got_blob, &size, &why);
    if (rc == ZMESH_EPROTO) {
        self->stats.consumer_errors++;
        zmesh__log(ZMESH_LOG_WARNING,
                   "store %s: consumer file %s is corrupt (%s)", self->path,
                   file, why);
    }
    if (rc == ZMESH_EPROTO || rc == ZMESH_ENOTFOUND) {
        s_consumer_file(file, sizeof file, name, ".prev");
        int rc2 =
            s_consumer_read(self, file, name, &acked, &got_blob, &size, &why);
        if (rc2 == ZMESH_EPROTO) {
            self->stats.consumer_errors++;
            zmesh__log(ZMESH_LOG_WARNING,
                       "store %s: consumer file %s is corrupt (%s)", self->path,
                       file, why);
        }
        if (rc2 == 0) {
            result = ZMESH__STORE_CONSUMER_FALLBACK;
            if (rc == ZMESH_EPROTO)
                zmesh__log(ZMESH_LOG_WARNING,
                           "store %s: consumer %s restored from %s", self->path,
                           name, file);
            rc = 0;
        } else if (rc2 == ZMESH_EPROTO || rc2 == ZMESH_ENOTFOUND)
            rc = rc == ZMESH_EPROTO || rc2 == ZMESH_EPROTO ? ZMESH_EPROTO
                                                           : ZMESH_ENOTFOUND;
        else
            rc = rc2;
    }
    if (rc == 0 && size > blob_cap)
        rc = ZMESH_ETOOBIG;
    if (rc < 0) {
        free(got_blob);
        return rc;
    }
    if (size)
        memcpy(blob, got_blob, size);
    free(got_blob);
    *acked_seq = acked;
    *blob_size = size;
    return result;
}

int
zmesh__store_consumer_remove(zmesh__store_t *self, const char *name)
{
    if (!self || !zmesh__store_consumer_name_ok(name))
        return ZMESH_EINVAL;
    static const char *suffixes[] = {"", ".prev", ".tmp"};
    int removed = 0;
    for (size_t i = 0; i < 3; i++) {
        char file[S_NAME_SIZE];
        s_consumer_file(file, sizeof file, name, suffixes[i]);
        if (unlinkat(self->dirfd, file, 0) == 0)
            removed++;
        else if (errno != ENOENT)
            return s_fail(self, "cannot delete", file);
    }
    if (!removed)
        return ZMESH_ENOTFOUND;
    return s_sync_dir(self);
}

int
zmesh__store_consumers(zmesh__store_t *self, zmesh__store_consumer_fn *fn,
                       void *arg)
{
    if (!self || !fn)
        return ZMESH_EINVAL;
    int fd = openat(self->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *dir = fd >= 0 ? fdopendir(fd) : NULL;
    if (!dir) {
        int rc = s_fail(self, "cannot list directory", self->path);
        if (fd >= 0)
            close(fd);
        return rc;
    }
    int calls = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        const char *file = entry->d_name;
        size_t n = strlen(file), base;
        bool cur = s_ends_with(file, n, ".cursor", &base);
        // A previous copy alone still counts: the save that would have
        // renamed the new copy into place was cut short.
        if (!cur && !s_ends_with(file, n, ".cursor.prev", &base))
            continue;
        if (!s_name_ok(file, base))
            continue;
        char name[ZMESH__STORE_CONSUMER_NAME_MAX + 1];
        memcpy(name, file, base);
        name[base] = '\0';
        if (!cur) {
            char current[S_NAME_SIZE];
            struct stat st;
            s_consumer_file(current, sizeof current, name, "");
            if (fstatat(self->dirfd, current, &st, AT_SYMLINK_NOFOLLOW) == 0)
                continue;
        }
        calls++;
        if (fn(arg, name) != 0)
            break;
    }
    closedir(dir);
    return calls;
}
