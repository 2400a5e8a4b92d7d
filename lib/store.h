/*  store.h - the durable relay's storage: one stream's append-only log in
    a directory of segment files, read back by sequence number or time,
    kept within retention limits, plus small crash-safe files holding each
    durable consumer's position. Normative on-disk format and recovery
    rules: proto/relay-log.md. Talks to files only (no networking, no
    codec: a record's body is opaque bytes, in practice one event frame).

    Threads: a store and its iterators are not thread-safe; use them from
    one thread at a time. Errors follow zmesh.h: >= 0 success, < 0 a
    ZMESH_E* code, and a failed call leaves the store as it was. */
#ifndef ZMESH_STORE_H_INCLUDED
#define ZMESH_STORE_H_INCLUDED

#include "zmesh.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  When appended records reach the disk (proto/relay-log.md#durability). */
typedef enum {
    /*  zmesh__store_commit returns only once everything appended before it
        is on stable storage: append a batch, commit once, one fdatasync
        (group commit). The default. */
    ZMESH__STORE_SYNC_ALWAYS = 0,
    /*  zmesh__store_commit and zmesh__store_tick sync when interval_ms
        have passed since the last sync: a crash loses at most about that
        much. */
    ZMESH__STORE_SYNC_INTERVAL = 1,
    /*  Never fsync anything (segments, directory, consumer files); the
        kernel writes back when it likes. Survives a process crash, not a
        power cut. For tests and for data that can be lost. */
    ZMESH__STORE_SYNC_NEVER = 2
} zmesh__store_sync_t;

#define ZMESH__STORE_SEGMENT_BYTES_DEFAULT (64ull * 1024 * 1024)
/*  1 MiB of payload plus room for the frame's topic and meta
    (ZMESH__FRAME_OVERHEAD in codec.h, 320 bytes). */
#define ZMESH__STORE_RECORD_MAX_DEFAULT (1024u * 1024 + 4096)
/*  The format's own bound on a record body: recovery rejects longer
    records whatever max_record says, so lowering max_record never makes
    stored records unreadable. */
#define ZMESH__STORE_RECORD_LIMIT (64u * 1024 * 1024)
#define ZMESH__STORE_INDEX_INTERVAL_DEFAULT (64u * 1024)
#define ZMESH__STORE_SYNC_INTERVAL_DEFAULT 1000
/*  Bytes a record takes on disk besides its body (its header). */
#define ZMESH__STORE_RECORD_OVERHEAD 32
/*  The record flag bits the caller may use; the others are the format's. */
#define ZMESH__STORE_FLAGS_MASK 0xffffu
/*  Sequence numbers run from 1 to this. */
#define ZMESH__STORE_SEQ_MAX ((uint64_t)INT64_MAX)

/*  Configuration; zero in any field means its default. */
typedef struct {
    /*  A segment is closed and a new one started when the next record
        would take it past this many bytes (a record larger than that gets
        a segment of its own). Default 64 MiB; at least 64. */
    uint64_t segment_bytes;
    /*  Largest body zmesh__store_append accepts. Default
        ZMESH__STORE_RECORD_MAX_DEFAULT; at most ZMESH__STORE_RECORD_LIMIT. */
    uint32_t max_record;
    /*  One in-memory index entry per this many bytes of log (and one after
        every gap): memory against the bytes a random read scans. Default
        64 KiB; 1 indexes every record. */
    uint32_t index_interval;
    zmesh__store_sync_t sync;
    /*  For ZMESH__STORE_SYNC_INTERVAL; default 1000 ms. */
    uint32_t sync_interval_ms;
    /*  Retention, applied by zmesh__store_retention; 0 = unlimited. */
    uint64_t max_age_ms;
    uint64_t max_bytes;
    uint64_t max_events;
} zmesh__store_config_t;

/*  Counters since the store was opened; recovery's findings included. */
typedef struct {
    uint64_t appends;          /* records appended */
    uint64_t append_errors;    /* appends refused by a write error */
    uint64_t commits;          /* zmesh__store_commit calls */
    uint64_t syncs;            /* fdatasync/fsync calls on segment files */
    uint64_t dir_syncs;        /* fsync calls on the directory */
    uint64_t segments_created; /* by rolling (and the first one) */
    uint64_t segments_deleted; /* by retention */
    uint64_t torn_tails;       /* last-segment tails truncated at open */
    uint64_t truncated_bytes;  /* bytes those truncations removed */
    uint64_t corrupt_regions;  /* runs of bad bytes skipped at open */
    uint64_t corrupt_bytes;    /* bytes in those runs */
    uint64_t corrupt_segments; /* segments set aside as *.corrupt */
    uint64_t bad_files;        /* unknown directory entries, ignored */
    uint64_t read_errors;      /* records that failed their check on read */
    uint64_t consumer_errors;  /* corrupt consumer files found */
} zmesh__store_stats_t;

/*  One record as read. `body` points into memory owned by the store (or
    the iterator) and stays valid until the next call on it. */
typedef struct {
    uint64_t seq;
    int64_t stored_us; /* wall clock, µs since the epoch, at append */
    uint32_t flags;    /* the caller's bits, ZMESH__STORE_FLAGS_MASK */
    const void *body;
    size_t size;
} zmesh__store_record_t;

typedef struct zmesh__store zmesh__store_t;
typedef struct zmesh__store_iter zmesh__store_iter_t;

/*  Opens the store in directory `path` (created if missing, one level)
    and recovers it (proto/relay-log.md#recovery): every segment is read
    and checked; a torn tail of the last segment is truncated; bad records
    elsewhere are skipped and never served; segments with a bad header are
    renamed *.corrupt; unknown files are left alone. All of it is logged
    and counted in the stats. `config` is copied; NULL means defaults.
    Holds an fcntl lock on <path>/LOCK so a second process cannot open the
    same store (a second open in the same process is not detected).
    Errors: ZMESH_EINVAL (bad argument or config), ZMESH_ESTATE (locked by
    another process, or files in the directory claim every sequence number
    up to ZMESH__STORE_SEQ_MAX so no segment can be started), ZMESH_EPROTO (a
   segment written by a newer format version), ZMESH_ENOMEM, ZMESH_ESYS (errno
   kept). On success the caller owns *store. */
int zmesh__store_open(zmesh__store_t **store, const char *path,
                      const zmesh__store_config_t *config);

/*  Syncs what is unsynced (unless ZMESH__STORE_SYNC_NEVER), closes and
    frees the store and nulls *store. Every iterator must have been
    destroyed before. Safe with NULL. */
void zmesh__store_destroy(zmesh__store_t **store);

/*  Appends one record: `size` bytes of `body` (copied), the caller's
    `flags` (within ZMESH__STORE_FLAGS_MASK) and `stored_us`, the wall
    clock now (zmesh__wall_clock_us()); a time earlier than the last
    record's is raised to it, so stored-at times never decrease. Sets
    *seq to the record's sequence number: the last one plus 1. Rolls to a
    new segment first when this one is full. The record can be read at
    once; it is durable after zmesh__store_commit (per the sync policy).
    Errors: ZMESH_EINVAL, ZMESH_ETOOBIG (over max_record), ZMESH_ESTATE
    (sequence numbers used up), ZMESH_ENOMEM, ZMESH_ESYS: a write, segment
    creation or sync failed; errno and zmesh__store_errno() say why
    (ENOSPC, EDQUOT and EFBIG mean the disk or the file size limit is
    full). After ZMESH_ESYS the partial record has been cut off again, the
    log is as before the call, reads go on, and the append may be retried
    later. */
int zmesh__store_append(zmesh__store_t *self, const void *body, size_t size,
                        uint32_t flags, int64_t stored_us, uint64_t *seq);

/*  Ends a batch of appends. ZMESH__STORE_SYNC_ALWAYS: fdatasync if
    anything was appended since the last sync; ZMESH__STORE_SYNC_INTERVAL:
    the same, if sync_interval_ms have passed since the last sync
    (monotonic clock); ZMESH__STORE_SYNC_NEVER: nothing. Returns 1 if it
    synced, 0 if not. Errors: ZMESH_ESYS (errno kept): the records may not
    be durable; they stay readable and the next commit tries again. */
int zmesh__store_commit(zmesh__store_t *self);

/*  For ZMESH__STORE_SYNC_INTERVAL: syncs if unsynced records are older
    than the interval; `now_ms` is zmesh__clock_ms(). Call it from the
    daemon's timer. Returns 1 if it synced, 0 if not, ZMESH_ESYS. Does
    nothing under the other policies. */
int zmesh__store_tick(zmesh__store_t *self, int64_t now_ms);

/*  Deletes whole segments from the oldest on while one of the configured
    limits is exceeded: the segment's newest record is older than
    max_age_ms before `now_us` (wall clock, µs), or the store holds more
    than max_bytes bytes or max_events records. Never deletes the segment
    being appended to, so a store can stay above a limit by up to one
    segment. first_seq moves forward; iterators on deleted records skip
    ahead. Returns the number of segments deleted. Errors: ZMESH_ESYS
    when the first deletion fails (later failures end the pass with the
    count so far). */
int zmesh__store_retention(zmesh__store_t *self, int64_t now_us);

/*  Reads record `seq` into *record (body valid until the next call on the
    store). Errors: ZMESH_ENOTFOUND (below first_seq, above last_seq, or
    lost to corruption found at open), ZMESH_EPROTO (the record or one
    before it in its index run fails its check now: counted, logged,
    never served), ZMESH_ENOMEM, ZMESH_ESYS. */
int zmesh__store_read(zmesh__store_t *self, uint64_t seq,
                      zmesh__store_record_t *record);

/*  Sets *seq to the first sequence number stored at or after `wall_us`;
    when every record is older (or there is none), to the number the next
    append will get. Errors: ZMESH_EINVAL, ZMESH_EPROTO (a header it had to
    look at is corrupt), ZMESH_ENOMEM, ZMESH_ESYS. */
int zmesh__store_seek_time(zmesh__store_t *self, int64_t wall_us,
                           uint64_t *seq);

/*  The oldest sequence number retention kept (the first segment's first);
    the newest record's (first_seq - 1 when the store is empty); the bytes
    of all segments; the records stored. Sequence numbers lost to
    corruption count in neither bytes nor records, so count may be less
    than last - first + 1. */
uint64_t zmesh__store_first_seq(const zmesh__store_t *self);
uint64_t zmesh__store_last_seq(const zmesh__store_t *self);
uint64_t zmesh__store_bytes(const zmesh__store_t *self);
uint64_t zmesh__store_count(const zmesh__store_t *self);
void zmesh__store_stats(const zmesh__store_t *self,
                        zmesh__store_stats_t *stats);
/*  The errno of the last failed system call, 0 if none. */
int zmesh__store_errno(const zmesh__store_t *self);

/*  An iterator reads forward from `from_seq` (clamped to first_seq) for
    catch-up. It borrows the store, which must outlive it. It keeps the
    segment it is in open, so a segment retention deletes under it frees
    its disk space only at the iterator's next call (or destroy). On
    success the caller owns *iter. Errors: ZMESH_EINVAL, ZMESH_ENOMEM. */
int zmesh__store_iter_new(zmesh__store_t *store, uint64_t from_seq,
                          zmesh__store_iter_t **iter);
void zmesh__store_iter_destroy(zmesh__store_iter_t **iter);

/*  Fills *record with the next record (body valid until the next call on
    the iterator). Sequence numbers increase; they jump over records lost
    to corruption or deleted by retention. Returns ZMESH_EAGAIN at the end
    (call again after more appends). ZMESH_EPROTO: the next record fails
    its check; record->seq says which, the iterator has moved past it
    (and past the rest of its index run if its header is damaged) and the
    next call goes on. Also ZMESH_ENOMEM, ZMESH_ESYS. */
int zmesh__store_iter_next(zmesh__store_iter_t *self,
                           zmesh__store_record_t *record);

/*  The sequence number the iterator tries next. */
uint64_t zmesh__store_iter_seq(const zmesh__store_iter_t *self);

/*  Durable consumers (proto/relay-log.md#consumer-files): per name, the
    relay sequence acknowledged so far and an opaque blob of up to
    ZMESH__STORE_CONSUMER_BLOB_MAX bytes, in <name>.cursor in the store's
    directory. Names are 1..64 bytes of [A-Za-z0-9_.-]. */
#define ZMESH__STORE_CONSUMER_NAME_MAX 64
#define ZMESH__STORE_CONSUMER_BLOB_MAX (1024 * 1024)
/*  zmesh__store_consumer_load's result when it had to use the previous
    copy. */
#define ZMESH__STORE_CONSUMER_FALLBACK 1

/*  Saves crash-safely: a temp file is written and synced, the current
    copy (if sound) becomes <name>.cursor.prev, the temp file is renamed
    into place, the directory is synced (no syncs under
    ZMESH__STORE_SYNC_NEVER). Errors: ZMESH_EINVAL (bad name), ZMESH_ETOOBIG
    (blob), ZMESH_ENOMEM, ZMESH_ESYS. */
int zmesh__store_consumer_save(zmesh__store_t *self, const char *name,
                               uint64_t acked_seq, const void *blob,
                               size_t blob_size);

/*  Loads a consumer's state: *acked_seq, and the blob into `blob`
    (capacity `blob_cap`, size in *blob_size). Returns 0, or
    ZMESH__STORE_CONSUMER_FALLBACK when the current copy was missing or
    corrupt and the previous one was used. Errors: ZMESH_ENOTFOUND (no
    such consumer), ZMESH_EPROTO (corrupt and no sound previous copy:
    counted and logged), ZMESH_ETOOBIG (blob over blob_cap), ZMESH_EINVAL,
    ZMESH_ENOMEM, ZMESH_ESYS. On error the outputs are untouched. */
int zmesh__store_consumer_load(zmesh__store_t *self, const char *name,
                               uint64_t *acked_seq, void *blob, size_t blob_cap,
                               size_t *blob_size);

/*  Deletes a consumer's files. Errors: ZMESH_EINVAL, ZMESH_ENOTFOUND,
    ZMESH_ESYS. */
int zmesh__store_consumer_remove(zmesh__store_t *self, const char *name);

/*  Calls `fn` once per consumer that has a file (names valid only during
    the call); stops early when fn returns non-zero. Returns the number
    of calls, or ZMESH_ESYS. */
typedef int(zmesh__store_consumer_fn)(void *arg, const char *name);
int zmesh__store_consumers(zmesh__store_t *self, zmesh__store_consumer_fn *fn,
                           void *arg);

/*  True when `name` is a valid consumer name. */
bool zmesh__store_consumer_name_ok(const char *name);

#endif
