/*  relay.h - mesh-relay's engine. A relay stores *streams*: each has a
    name, topic patterns and retention limits, and lives in a store
    (store.h) in DIR/<name>/. An agent subscribed to every stream's
    patterns feeds them; readers get stored events back through requests
    on "$relay.read" and "$relay.info", publishers get "$relay.confirm"
    and may send "$relay.store", durable consumers use "$relay.consume",
    "$relay.next" and "$relay.ack" (relay_consumer.h; proto/relay.md).
    Also the
    relay's configuration: its file format, the duration, size and sync
    policy syntax, and every check made before anything touches the disk.
    Talks to the public agent API, store.h and codec.h.

    Threads: a relay, like its agent, is used from one thread at a time.
    Errors follow zmesh.h: >= 0 success, < 0 a ZMESH_E* code. Functions
    that take `err` write a one-line reason there (NUL-terminated, at most
    err_size bytes) when they fail. */
#ifndef ZMESH_RELAY_H_INCLUDED
#define ZMESH_RELAY_H_INCLUDED

#include "store.h"
#include "zmesh.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*  Request topics a relay answers (proto/relay.md#requests). */
#define ZMESH__RELAY_READ_TOPIC "$relay.read"
#define ZMESH__RELAY_INFO_TOPIC "$relay.info"
/*  Publisher confirms (proto/relay.md#publisher-confirms): the request
    publishers send events again with (the confirm topics are in
    agent_internal.h). */
#define ZMESH__RELAY_STORE_TOPIC "$relay.store"
/*  Frames in one $relay.store, at most. */
#define ZMESH__RELAY_STORE_FRAMES_MAX 1000
/*  Events confirmed per pass, at most; those beyond are not confirmed
    (counted, logged): their publishers send them again. */
#define ZMESH__RELAY_CONFIRMS_MAX 65536

/*  Peer headers a relay sets, so tools find it in zmesh_agent_peers
    (proto/relay.md#discovery). */
#define ZMESH__RELAY_HEADER "relay"
#define ZMESH__RELAY_HEADER_STREAMS "relay.streams"

#define ZMESH__RELAY_AGENT_NAME "mesh-relay"
#define ZMESH__RELAY_STREAMS_MAX 64
#define ZMESH__RELAY_PATTERNS_MAX 64 /* per stream */
#define ZMESH__RELAY_STREAM_NAME_MAX 64
#define ZMESH__RELAY_SEEDS_MAX 64
/*  $relay.read: events per answer, at most and by default. */
#define ZMESH__RELAY_READ_MAX 1000
#define ZMESH__RELAY_READ_DEFAULT 100
/*  $relay.read "bytes": the smallest answer size a reader may ask for. */
#define ZMESH__RELAY_READ_BYTES_MIN 4096
/*  Largest request payload a relay decodes. */
#define ZMESH__RELAY_REQUEST_MAX 4096
/*  Longest path the relay builds (a stream's directory, its files). */
#define ZMESH__RELAY_PATH_MAX 3072
/*  Largest configuration file read. */
#define ZMESH__RELAY_CONFIG_FILE_MAX (1024 * 1024)
/*  A record flag (store.h's caller bits): the record is a gap marker,
    not an event (proto/relay.md#gap-records). */
#define ZMESH__RELAY_FLAG_GAP 1u

/*  Which fields of a zmesh__relay_limits_t were given. */
enum {
    ZMESH__RELAY_SET_MAX_AGE = 1,
    ZMESH__RELAY_SET_MAX_BYTES = 2,
    ZMESH__RELAY_SET_MAX_EVENTS = 4,
    ZMESH__RELAY_SET_SYNC = 8,
    ZMESH__RELAY_SET_SEGMENT = 16
};

/*  Storage settings of one stream, or the defaults of all: a field counts
    only when its bit is in `set`. Retention 0 means unlimited. */
typedef struct {
    unsigned set;
    uint64_t max_age_ms;
    uint64_t max_bytes;
    uint64_t max_events;
    uint64_t segment_bytes;
    zmesh__store_sync_t sync;
    uint32_t sync_interval_ms;
} zmesh__relay_limits_t;

typedef struct {
    char name[ZMESH__RELAY_STREAM_NAME_MAX + 1];
    char *patterns[ZMESH__RELAY_PATTERNS_MAX]; /* owned */
    size_t patterns_count;
    zmesh__relay_limits_t limits;
} zmesh__relay_stream_config_t;

/*  A per-stream setting given as NAME:VALUE on the command line, kept
    until zmesh__relay_config_check, when every stream is known. */
typedef struct {
    char *key;
    char *stream;
    char *value;
    char *source;
} zmesh__relay_pending_t;

/*  The whole configuration. Initialise with zmesh__relay_config_init,
    fill with zmesh__relay_config_set / _load, validate with
    zmesh__relay_config_check, free with zmesh__relay_config_clear. All
    strings are owned. NULL / 0 means the library's default. */
typedef struct {
    char *dir;
    char *mesh;
    char *agent_name; /* default ZMESH__RELAY_AGENT_NAME */
    int beacon_port;
    int beacon_interval_ms;
    int peer_timeout_ms;
    size_t max_msg_size;
    zmesh_discovery_t discovery;
    char *interface_name;
    char *multicast_group;
    char *seeds[ZMESH__RELAY_SEEDS_MAX];
    size_t seeds_count;
    zmesh__relay_limits_t defaults; /* for streams that do not set their own */
    zmesh__relay_stream_config_t *streams;
    size_t streams_count;
    zmesh__relay_pending_t *pending;
    size_t pending_count;
    bool checked; /* zmesh__relay_config_check passed */
} zmesh__relay_config_t;

/*  Writes the message into err (when err_size > 0) and returns
    ZMESH_EINVAL: how the relay's checks say what is wrong. */
__attribute__((format(printf, 3, 4))) int
zmesh__relay_err(char *err, size_t err_size, const char *format, ...);

void zmesh__relay_config_init(zmesh__relay_config_t *config);
void zmesh__relay_config_clear(zmesh__relay_config_t *config);

/*  Parsers for the value syntax of flags and the file (docs/mesh-relay.md).
    Each returns 0 or ZMESH_EINVAL, and writes nothing on error.

    duration: one or more NUMBER UNIT pairs, units ms, s, m, h, d, w
      ("90s", "1h30m", "7d"), or "0"; to milliseconds, at most 100 years.
    size: NUMBER with an optional binary unit B, K/KiB, M/MiB, G/GiB,
      T/TiB (either case, "64M", "1GiB", "4096"); to bytes, at most 2^60.
    count: a whole decimal number, at most 2^62.
    sync: "always", "never", or "interval:MS" (MS a number of ms
      1..3600000, or a duration such as "interval:2s"). */
int zmesh__relay_parse_duration(const char *text, uint64_t *ms);
int zmesh__relay_parse_size(const char *text, uint64_t *bytes);
int zmesh__relay_parse_count(const char *text, uint64_t *count);
int zmesh__relay_parse_sync(const char *text, zmesh__store_sync_t *sync,
                            uint32_t *interval_ms);

/*  Writes a sync policy as the syntax above ("interval:1000"). */
void zmesh__relay_sync_text(zmesh__store_sync_t sync, uint32_t interval_ms,
                            char *out, size_t out_size);

/*  True when `name` is a valid stream name: 1..64 of [A-Za-z0-9_-]. */
bool zmesh__relay_stream_name_ok(const char *name);

/*  Applies one setting. `key` is a flag's long name without the dashes
    (dir, mesh, name, beacon-port, beacon-interval, peer-timeout,
    max-msg-size, discovery, interface, multicast-group, seed, stream,
    max-age, max-bytes, max-events, sync, segment-bytes); `source` names
    where it came from for messages ("--max-age", "relay.conf:7").
    "stream" takes NAME=PATTERN[,PATTERN...]; the storage keys take VALUE
    (a default for every stream) or NAME:VALUE (for stream NAME only,
    resolved at check time). A setting given again replaces the earlier
    one, except seed and stream, which add. Errors: ZMESH_EINVAL (unknown
    key or bad value; *config unchanged), ZMESH_ENOMEM. */
int zmesh__relay_config_set(zmesh__relay_config_t *config, const char *key,
                            const char *value, const char *source, char *err,
                            size_t err_size);

/*  Parses a configuration file's text (proto/relay.md has no part in it;
    docs/mesh-relay.md#configuration-file describes it): global
    "key = value" lines, then "[stream NAME]" sections with patterns and
    storage keys. `source` is the file name for messages, which read
    "FILE:LINE: ...". Errors: ZMESH_EINVAL (the first bad line),
    ZMESH_ENOMEM; *config may then hold part of the file. */
int zmesh__relay_config_parse(zmesh__relay_config_t *config, const char *text,
                              size_t size, const char *source, char *err,
                              size_t err_size);

/*  Reads the file at `path` (at most ZMESH__RELAY_CONFIG_FILE_MAX bytes)
    and parses it. Errors as above, and ZMESH_ESYS when it cannot be read
    (the reason in err). */
int zmesh__relay_config_load(zmesh__relay_config_t *config, const char *path,
                             char *err, size_t err_size);

/*  Validates the whole configuration without creating or changing
    anything: per-stream settings name existing streams; there is a
    directory and at least one stream, each with a pattern; the stream
    names fit the "relay.streams" header or are announced as "*"; the
    directory and each stream's directory either exist as writable
    directories or can be created under a writable one; an interface
    given by name exists. Errors: ZMESH_EINVAL, ZMESH_ENOMEM. */
int zmesh__relay_config_check(zmesh__relay_config_t *config, char *err,
                              size_t err_size);

/*  The store configuration stream `i` runs with: its own settings, else
    the defaults, else the store's. */
void zmesh__relay_store_config(const zmesh__relay_config_t *config, size_t i,
                               zmesh__store_config_t *out);

/*  A decoded "$relay.read" request (proto/relay.md#relay-read). */
typedef struct {
    char stream[ZMESH__RELAY_STREAM_NAME_MAX + 1];
    bool has_from;
    uint64_t from;
    bool has_since;
    int64_t since_us;
    uint32_t max;   /* 1..ZMESH__RELAY_READ_MAX */
    uint64_t bytes; /* 0: the relay's own limit */
} zmesh__relay_read_t;

/*  Decodes and checks a "$relay.read" payload strictly. Errors:
    ZMESH_EPROTO with the reason in err (what the relay answers with). */
int zmesh__relay_read_decode(const void *payload, size_t size,
                             zmesh__relay_read_t *read, char *err,
                             size_t err_size);

/*  The "last" of a gap record's payload {"last": N, "reason": str}
    (proto/relay.md#gap-records), or 0 when it has none (a damaged
    record: the frame's sequence then counts). */
uint64_t zmesh__relay_gap_last(const void *payload, size_t size);

/*  Counters of one stream since the relay opened it. */
typedef struct {
    uint64_t stored;        /* events appended */
    uint64_t duplicates;    /* events not appended: stored already */
    uint64_t gaps;          /* gap records: found at open, or appended */
    uint64_t missing;       /* events the appended gap records name */
    uint64_t rejected;      /* events that could not be stored */
    uint64_t unreadable;    /* records found at open that are no frame */
    uint64_t commit_errors; /* commits (syncs) that failed */
    bool accepting;         /* false while appends fail (disk full) */
} zmesh__relay_stream_stats_t;

typedef struct zmesh__relay zmesh__relay_t;

/*  Creates a relay for a checked configuration (copied) and configures
    its agent, touching no file. On success *relay is the caller's.
    Errors: ZMESH_EINVAL (config not checked, or a value the agent refuses:
    reason in err), ZMESH_ENOMEM. */
int zmesh__relay_new(zmesh__relay_t **relay,
                     const zmesh__relay_config_t *config, char *err,
                     size_t err_size);

/*  Creates the directory (and missing parents), opens and recovers every
    stream's store and reads it through to learn the last sequence stored
    of every (publisher, topic), so that a restarted relay asks the
    publishers for what it missed. Errors: ZMESH_ESTATE (a store is in
    use by another process), ZMESH_ESYS, ZMESH_EPROTO, ZMESH_ENOMEM, with
    the reason in err. */
int zmesh__relay_open(zmesh__relay_t *self, char *err, size_t err_size);

/*  Starts the agent (after open) and tells it, per (publisher, topic),
    what was stored before (zmesh_agent_resume_stream). Errors: those of
    zmesh_agent_start, with the reason in err. */
int zmesh__relay_start(zmesh__relay_t *self, char *err, size_t err_size);

/*  One pass of the daemon: waits up to `timeout_ms` for the agent, then
    handles at most a bounded batch of events (appending messages and gap
    records to every stream that wants them, answering requests), commits
    each store once (group commit), syncs on the interval and applies
    retention once a second. Returns the number of events handled, or a
    ZMESH_E* code when the agent fails (ZMESH_ESTATE). */
int zmesh__relay_step(zmesh__relay_t *self, int timeout_ms);

/*  Commits and closes every store, stops the agent (peers hear BYE) and
    frees the relay; nulls *relay. Accepts NULL. */
void zmesh__relay_destroy(zmesh__relay_t **relay);

/*  The relay's agent (owned by the relay). */
zmesh_agent_t *zmesh__relay_agent(zmesh__relay_t *self);

/*  The number of streams, and the counters and store of stream `i`
    (the store is NULL before open). */
size_t zmesh__relay_streams(const zmesh__relay_t *self);
void zmesh__relay_stream_stats(const zmesh__relay_t *self, size_t i,
                               zmesh__relay_stream_stats_t *stats);
zmesh__store_t *zmesh__relay_stream_store(zmesh__relay_t *self, size_t i);

#endif
