/*  relay.c - mesh-relay's engine (proto/relay.md): the streams it stores
    and the requests it answers (its configuration is relay_config.c).
    One agent subscribes to every stream's patterns; each event it
    delivers is written back into a frame and appended to the store of
    every stream that wants it, many appends then one commit per pass
    (group commit). At open every store is read through once to learn the
    last sequence stored per (publisher, topic), which the agent is told
    after start so a restarted relay gets what it missed repaired by the
    publishers. Events that ask for a confirm are confirmed to their
    publisher after the commit ($relay.confirm), and $relay.store takes
    events a publisher sends again. Durable consumers live in
    relay_consumer.c; requests for them are dispatched from here.
*/
#include "relay.h"
#include "agent_internal.h"
#include "clock.h"
#include "codec.h"
#include "log.h"
#include "mpack.h"
#include "relay_consumer.h"
#include "topic.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/*  Events handled in one pass before the stores are committed. */
#define S_PASS_MAX 1024
/*  How often a stream whose appends fail tries again. */
#define S_RETRY_MS 5000
#define S_RETENTION_MS 1000
#define S_LOG_MS 5000
/*  Room left in an answer for the REPLY around it (proto/wire.md#reply). */
#define S_REPLY_ENVELOPE 1024
/*  Room kept in a $relay.read answer for everything but the events and
    the names: the keys, stream name, first, last, next, array headers
    and the two skipped lists at their longest (2 x 100 x 9 bytes). Less
    than the smallest answer (4096 bytes less the envelope), so events
    always get some room. */
#define S_READ_HEADER 2048
/*  Entries in a $relay.read answer's "corrupt" and "oversize" lists. */
#define S_SKIPPED_MAX 100
/*  Bytes an event takes in a $relay.read answer besides its frame: array
    header, rseq, stored time, bin header, flags. */
#define S_EVENT_OVERHEAD 32
/*  Streams the agent is told to resume at start, at most: the agent
    tracks 65,536 streams (zmesh.h); the most recent ones are taken. */
#define S_RESUME_MAX 60000
/*  The file naming the publishers whose events are stored; the '.'
    keeps it apart from stream directories. */
#define S_NAMES_FILE "publishers.names"
#define S_NAMES_FILE_MAX (4 * 1024 * 1024)
#define S_HEADER_MAX ZMESH_HEADER_VALUE_MAX
#define S_KEY_MAX (32 + 1 + ZMESH_TOPIC_MAX + 1)
#define S_SERVE_PATTERN "$relay.>"
/*  Gap ranges remembered per (publisher, topic) and stream, to tell a
    confirm "recorded missing" from "stored"; older ones are summed up as
    a bound below which the answer is "recorded missing" to be safe. */
#define S_GAPS_KEPT 16

/* ------------------------------------------------------------------------ */
/*  $relay.read requests                                                    */

static int
s_proto(char *err, size_t err_size, const char *text)
{
    zmesh__relay_err(err, err_size, "%s", text);
    return ZMESH_EPROTO;
}

static int
s_read_fields(const msgpack_object *map, zmesh__relay_read_t *read, char *err,
              size_t err_size)
{
    static const char *known[] = {"stream", "from", "since", "max", "bytes"};
    unsigned seen = 0;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *key = &map->via.map.ptr[i].key;
        const msgpack_object *value = &map->via.map.ptr[i].val;
        if (key->type != MSGPACK_OBJECT_STR)
            return s_proto(err, err_size, "request keys must be strings");
        int which = -1;
        for (int k = 0; k < 5; k++)
            if (zmesh__mp_key_is(key, known[k]))
                which = k;
        if (which < 0)
            continue; // later versions may add keys (proto/relay.md)
        if (seen & (1u << which)) {
            zmesh__relay_err(err, err_size, "key \"%s\" is given twice",
                             known[which]);
            return ZMESH_EPROTO;
        }
        seen |= 1u << which;
        bool uint = value->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
        switch (which) {
        case 0:
            if (!zmesh__mp_str_copy(value, read->stream, sizeof read->stream) ||
                !zmesh__relay_stream_name_ok(read->stream))
                return s_proto(err, err_size,
                               "\"stream\" must be a stream name");
            break;
        case 1:
            if (!uint)
                return s_proto(err, err_size,
                               "\"from\" must be a relay sequence number "
                               "(an unsigned integer)");
            read->has_from = true;
            read->from = value->via.u64;
            break;
        case 2:
            if (value->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                read->since_us = value->via.i64;
            else if (uint && value->via.u64 <= INT64_MAX)
                read->since_us = (int64_t)value->via.u64;
            else
                return s_proto(err, err_size,
                               "\"since\" must be microseconds since the "
                               "epoch (an integer)");
            read->has_since = true;
            break;
        case 3:
            if (!uint || value->via.u64 < 1 ||
                value->via.u64 > ZMESH__RELAY_READ_MAX)
                return s_proto(err, err_size,
                               "\"max\" must be an integer from 1 to 1000");
            read->max = (uint32_t)value->via.u64;
            break;
        case 4:
            if (!uint || value->via.u64 < ZMESH__RELAY_READ_BYTES_MIN)
                return s_proto(err, err_size,
                               "\"bytes\" must be an integer of at least "
                               "4096");
            read->bytes = value->via.u64;
            break;
        }
    }
    if (!(seen & 1u))
        return s_proto(err, err_size, "\"stream\" is missing");
    if (read->has_from && read->has_since)
        return s_proto(err, err_size, "give \"from\" or \"since\", not both");
    return 0;
}

int
zmesh__relay_read_decode(const void *payload, size_t size,
                         zmesh__relay_read_t *read, char *err, size_t err_size)
{
    if (!read || (!payload && size))
        return s_proto(err, err_size, "invalid argument");
    zmesh__relay_read_t result = {.max = ZMESH__RELAY_READ_DEFAULT};
    if (size == 0)
        return s_proto(err, err_size, "the request is empty");
    if (size > ZMESH__RELAY_REQUEST_MAX)
        return s_proto(err, err_size, "the request is larger than 4096 bytes");
    // Well-formedness first: msgpack-c would allocate for counts the
    // bytes cannot hold (codec.c says why).
    if (zmesh__msgpack_check(payload, size) != 0)
        return s_proto(err, err_size, "the request is not one msgpack object");
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t offset = 0;
    int rc;
    if (msgpack_unpack_next(&unpacked, payload, size, &offset) !=
            MSGPACK_UNPACK_SUCCESS ||
        offset != size)
        rc = s_proto(err, err_size, "the request is not one msgpack object");
    else if (unpacked.data.type != MSGPACK_OBJECT_MAP)
        rc = s_proto(err, err_size,
                     "the request must be a map such as {\"stream\": NAME}");
    else
        rc = s_read_fields(&unpacked.data, &result, err, err_size);
    msgpack_unpacked_destroy(&unpacked);
    if (rc == 0)
        *read = result;
    return rc;
}

/*  The "relay.streams" header value: the names, or "*" when they do not
    fit (readers then ask $relay.info). */
static void
s_streams_header(const zmesh__relay_config_t *config,
                 char out[S_HEADER_MAX + 1])
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < config->streams_count; i++) {
        size_t n = strlen(config->streams[i].name);
        if (used + (i > 0) + n > S_HEADER_MAX) {
            strcpy(out, "*");
            return;
        }
        if (i > 0)
            out[used++] = ',';
        memcpy(out + used, config->streams[i].name, n + 1);
        used += n;
    }
}

/* ------------------------------------------------------------------------ */
/*  The relay                                                               */

typedef struct {
    uint64_t first, last;
} s_range_t;

/*  What a stream has stored of one (publisher, topic). */
typedef struct {
    uint64_t last;     /* last sequence stored, or named by a gap record */
    int64_t stored_us; /* when that was stored */
    s_range_t *gaps;   /* the latest gap records' ranges, oldest first */
    size_t gaps_count;
    uint64_t gaps_forgotten; /* highest sequence of ranges dropped */
} s_last_t;

/*  What became of an event a publisher wants confirmed
    (proto/relay.md#publisher-confirms); the order is the precedence when
    streams disagree. */
typedef enum {
    S_CONFIRM_OK = 0,
    S_CONFIRM_MISSING,       /* "recorded missing" */
    S_CONFIRM_NOT_ACCEPTING, /* "not accepting" */
    S_CONFIRM_NO_STREAM,     /* "no stream" */
    S_CONFIRM_REJECTED       /* "rejected" */
} s_outcome_t;

static const char *const s_outcome_text[] = {
    "ok", "recorded missing", "not accepting", "no stream", "rejected"};

/*  One event to confirm. */
typedef struct {
    char hex[33];
    char *topic; /* owned */
    uint64_t seq;
    uint64_t streams; /* bit per stream it is stored in */
    s_outcome_t outcome;
} s_confirm_t;

/*  A list of them: the pass's confirms, or one $relay.store's. */
typedef struct {
    s_confirm_t *items;
    size_t count, cap;
} s_confirms_t;

typedef struct {
    char name[ZMESH__RELAY_STREAM_NAME_MAX + 1];
    char *patterns[ZMESH__RELAY_PATTERNS_MAX];
    size_t pattern_sizes[ZMESH__RELAY_PATTERNS_MAX];
    size_t patterns_count;
    zmesh__store_config_t store_config;
    char *path;
    zmesh__store_t *store;
    zhashx_t *last; /* "<publisher hex> <topic>" -> s_last_t */
    zmesh__relay_stream_stats_t stats;
    bool dirty;         /* appended since the last commit */
    bool commit_failed; /* a commit failed since confirms were sent */
    int64_t retry_ms;   /* when appends may be tried again */
} s_stream_t;

struct zmesh__relay {
    char *dir;
    size_t max_msg_size;
    zmesh_agent_t *agent;
    s_stream_t *streams;
    size_t streams_count;
    zhashx_t *names; /* publisher id hex -> name */
    int names_fd;
    bool names_failed;
    uint8_t *frame; /* the frame being stored */
    size_t frame_cap;
    msgpack_sbuffer reply;
    msgpack_sbuffer events;
    int64_t next_retention_ms;
    bool opened;
    bool started;
    uint64_t requests;
    uint64_t bad_requests;
    zmesh__log_limit_t gap_limit;
    zmesh__log_limit_t hole_limit;
    zmesh__log_limit_t request_limit;
    zmesh__log_limit_t store_limit;
    zmesh__log_limit_t confirm_limit;
    zmesh__relay_consumers_t *consumers;
    s_confirms_t confirms;     /* this pass's */
    uint64_t confirmed;        /* events confirmed (ok) since start */
    uint64_t confirms_dropped; /* not confirmed: over the pass's bound */
    uint64_t confirms_data;    /* confirm messages on the data plane */
    uint64_t confirms_direct;  /* ... as DIRECT messages */
};

static void
s_last_free(void **item)
{
    s_last_t *entry = *item;
    if (entry)
        free(entry->gaps);
    free(entry);
    *item = NULL;
}

static void
s_name_free(void **item)
{
    free(*item);
    *item = NULL;
}

static int
s_agent_configure(zmesh__relay_t *self, const zmesh__relay_config_t *config,
                  char *err, size_t err_size)
{
    zmesh_agent_t *agent = self->agent;
    int rc;
    if (config->mesh && (rc = zmesh_agent_set_mesh(agent, config->mesh)) != 0)
        return zmesh__relay_err(err, err_size,
                                "--mesh: '%s' is not a mesh name (%s)",
                                config->mesh, zmesh_strerror(rc));
    rc = zmesh_agent_set_discovery(agent, config->discovery,
                                   config->interface_name);
    if (rc != 0)
        return zmesh__relay_err(
            err, err_size, "--interface: '%s' cannot be used (%s)",
            config->interface_name ? config->interface_name : "",
            zmesh_strerror(rc));
    if (config->multicast_group && (rc = zmesh_agent_set_multicast_group(
                                        agent, config->multicast_group)) != 0)
        return zmesh__relay_err(
            err, err_size,
            "--multicast-group: '%s' is not an IPv4 multicast "
            "group (%s)",
            config->multicast_group, zmesh_strerror(rc));
    if (config->beacon_port &&
        (rc = zmesh_agent_set_beacon_port(agent, config->beacon_port)) != 0)
        return zmesh__relay_err(err, err_size, "--beacon-port %d: %s",
                                config->beacon_port, zmesh_strerror(rc));
    if (config->beacon_interval_ms &&
        (rc = zmesh_agent_set_beacon_interval(agent,
                                              config->beacon_interval_ms)) != 0)
        return zmesh__relay_err(
            err, err_size, "--beacon-interval %d ms: out of range (10..60000)",
            config->beacon_interval_ms);
    if (config->peer_timeout_ms && (rc = zmesh_agent_set_peer_timeout(
                                        agent, config->peer_timeout_ms)) != 0)
        return zmesh__relay_err(
            err, err_size,
            "--peer-timeout %d ms: out of range (3 beacon intervals "
            "to 600000)",
            config->peer_timeout_ms);
    if (config->max_msg_size &&
        (rc = zmesh_agent_set_max_msg_size(agent, config->max_msg_size)) != 0)
        return zmesh__relay_err(err, err_size, "--max-msg-size: %s",
                                zmesh_strerror(rc));
    for (size_t i = 0; i < config->seeds_count; i++)
        if ((rc = zmesh_agent_add_seed(agent, config->seeds[i])) != 0)
            return zmesh__relay_err(
                err, err_size,
                "--seed: '%s' is not a control endpoint like "
                "tcp://HOST:PORT (%s)",
                config->seeds[i], zmesh_strerror(rc));
    // The relay publishes only confirms, and a lost one is asked for
    // again by its publisher: it keeps nothing to repair with.
    zmesh_agent_set_retransmit_buffer(agent, 0);
    char header[S_HEADER_MAX + 1];
    s_streams_header(config, header);
    if (zmesh_agent_set_header(agent, ZMESH__RELAY_HEADER, "1") != 0 ||
        zmesh_agent_set_header(agent, ZMESH__RELAY_HEADER_STREAMS, header) != 0)
        return zmesh__relay_err(err, err_size,
                                "cannot set the relay's headers");
    // Every $relay. topic, so an unknown one gets the relay's own error
    // answer rather than the agent's refusal.
    if ((rc = zmesh_agent_serve(agent, S_SERVE_PATTERN)) != 0)
        return zmesh__relay_err(err, err_size, "cannot serve '%s': %s",
                                S_SERVE_PATTERN, zmesh_strerror(rc));
    // Publishers that want confirms subscribe to theirs: their SUBs
    // connect to relays that advertise them.
    if ((rc = zmesh__agent_advertise_reserved(agent, ZMESH__CONFIRM_TOPIC_PREFIX
                                              ">")) != 0)
        return zmesh__relay_err(err, err_size, "cannot advertise confirms: %s",
                                zmesh_strerror(rc));
    for (size_t i = 0; i < self->streams_count; i++)
        for (size_t j = 0; j < self->streams[i].patterns_count; j++)
            if ((rc = zmesh_agent_subscribe(agent,
                                            self->streams[i].patterns[j])) != 0)
                return zmesh__relay_err(
                    err, err_size, "cannot subscribe to '%s': %s",
                    self->streams[i].patterns[j], zmesh_strerror(rc));
    return 0;
}

int
zmesh__relay_new(zmesh__relay_t **relay, const zmesh__relay_config_t *config,
                 char *err, size_t err_size)
{
    if (!relay || !config || !config->checked)
        return zmesh__relay_err(err, err_size,
                                "the configuration has not been checked");
    zmesh__relay_t *self = calloc(1, sizeof *self);
    if (!self)
        return zmesh__relay_err(err, err_size, "out of memory");
    self->names_fd = -1;
    msgpack_sbuffer_init(&self->reply);
    msgpack_sbuffer_init(&self->events);
    self->max_msg_size = config->max_msg_size ? config->max_msg_size : 1048576;
    self->dir = strdup(config->dir);
    self->streams = calloc(config->streams_count, sizeof *self->streams);
    self->names = zhashx_new();
    int rc = ZMESH_ENOMEM;
    if (!self->dir || !self->streams || !self->names) {
        zmesh__relay_err(err, err_size, "out of memory");
        goto failed;
    }
    zhashx_set_destructor(self->names, s_name_free);
    for (size_t i = 0; i < config->streams_count; i++) {
        s_stream_t *stream = &self->streams[i];
        const zmesh__relay_stream_config_t *c = &config->streams[i];
        self->streams_count++;
        strcpy(stream->name, c->name);
        zmesh__relay_store_config(config, i, &stream->store_config);
        stream->stats.accepting = true;
        stream->last = zhashx_new();
        stream->path = malloc(strlen(config->dir) + strlen(c->name) + 2);
        if (!stream->last || !stream->path) {
            zmesh__relay_err(err, err_size, "out of memory");
            goto failed;
        }
        zhashx_set_destructor(stream->last, s_last_free);
        sprintf(stream->path, "%s/%s", config->dir, c->name);
        for (size_t j = 0; j < c->patterns_count; j++) {
            if (!(stream->patterns[j] = strdup(c->patterns[j]))) {
                zmesh__relay_err(err, err_size, "out of memory");
                goto failed;
            }
            stream->pattern_sizes[j] = strlen(c->patterns[j]);
            stream->patterns_count++;
        }
    }
    const char *name =
        config->agent_name ? config->agent_name : ZMESH__RELAY_AGENT_NAME;
    rc = zmesh_agent_new(&self->agent, name);
    if (rc != 0) {
        zmesh__relay_err(err, err_size,
                         "--name: '%s' is not an agent name (%s)", name,
                         zmesh_strerror(rc));
        goto failed;
    }
    rc = s_agent_configure(self, config, err, err_size);
    if (rc != 0)
        goto failed;
    *relay = self;
    return 0;

failed:
    zmesh__relay_destroy(&self);
    return rc == ZMESH_ENOMEM ? rc : ZMESH_EINVAL;
}

/*  mkdir -p */
static int
s_make_dirs(const char *path)
{
    char copy[ZMESH__RELAY_PATH_MAX + 2];
    snprintf(copy, sizeof copy, "%s", path);
    for (char *p = copy + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(copy, 0755) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(copy, 0755) != 0 && errno != EEXIST)
        return -1;
    return 0;
}

/*  The key of a (publisher, topic): "<hex> <topic>"; topics hold no
    spaces. */
static void
s_key(char out[S_KEY_MAX], const char *hex, const char *topic,
      size_t topic_size)
{
    memcpy(out, hex, 32);
    out[32] = ' ';
    memcpy(out + 33, topic, topic_size);
    out[33 + topic_size] = '\0';
}

static s_last_t *
s_last_note(s_stream_t *stream, const char *key, uint64_t last,
            int64_t stored_us)
{
    s_last_t *entry = zhashx_lookup(stream->last, key);
    if (!entry) {
        entry = calloc(1, sizeof *entry);
        if (!entry)
            return NULL;
        if (zhashx_insert(stream->last, key, entry) != 0) {
            free(entry);
            return NULL;
        }
    }
    if (last > entry->last)
        entry->last = last;
    entry->stored_us = stored_us;
    return entry;
}

/*  Remembers that first..last of the entry is covered by a gap record. */
static void
s_last_gap(s_last_t *entry, uint64_t first, uint64_t last)
{
    if (!entry)
        return;
    if (entry->gaps_count == S_GAPS_KEPT) {
        if (entry->gaps[0].last > entry->gaps_forgotten)
            entry->gaps_forgotten = entry->gaps[0].last;
        memmove(entry->gaps, entry->gaps + 1,
                (S_GAPS_KEPT - 1) * sizeof *entry->gaps);
        entry->gaps_count--;
    }
    if (!entry->gaps) {
        entry->gaps = malloc(S_GAPS_KEPT * sizeof *entry->gaps);
        if (!entry->gaps) {
            // Unknown from here down: the safe answer is "missing".
            if (last > entry->gaps_forgotten)
                entry->gaps_forgotten = last;
            return;
        }
    }
    entry->gaps[entry->gaps_count++] = (s_range_t){first, last};
}

/*  Whether sequence `seq` (at or below entry->last) is covered by a gap
    record rather than stored. Beyond the kept ranges it cannot tell and
    says yes: a confirm must never claim what is not stored. */
static bool
s_last_missing(const s_last_t *entry, uint64_t seq)
{
    if (seq <= entry->gaps_forgotten)
        return true;
    for (size_t i = 0; i < entry->gaps_count; i++)
        if (seq >= entry->gaps[i].first && seq <= entry->gaps[i].last)
            return true;
    return false;
}

/*  The "last" of a gap record's payload {"last": N, "reason": str}, or 0
    when it has none (a damaged record: the frame's sequence then counts). */
uint64_t
zmesh__relay_gap_last(const void *payload, size_t size)
{
    if (size > 512 || zmesh__msgpack_check(payload, size) != 0)
        return 0;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t offset = 0;
    uint64_t last = 0;
    if (msgpack_unpack_next(&unpacked, payload, size, &offset) ==
            MSGPACK_UNPACK_SUCCESS &&
        unpacked.data.type == MSGPACK_OBJECT_MAP) {
        const msgpack_object_map *map = &unpacked.data.via.map;
        for (uint32_t i = 0; i < map->size; i++)
            if (map->ptr[i].key.type == MSGPACK_OBJECT_STR &&
                zmesh__mp_key_is(&map->ptr[i].key, "last") &&
                map->ptr[i].val.type == MSGPACK_OBJECT_POSITIVE_INTEGER)
                last = map->ptr[i].val.via.u64;
    }
    msgpack_unpacked_destroy(&unpacked);
    return last;
}

/*  Reads a stream's store through, noting the last sequence of every
    (publisher, topic) and which publishers appear. */
static int
s_scan(zmesh__relay_t *self, s_stream_t *stream, zhashx_t *ids, char *err,
       size_t err_size)
{
    zmesh__store_iter_t *iter = NULL;
    int rc = zmesh__store_iter_new(stream->store, 1, &iter);
    if (rc != 0)
        return zmesh__relay_err(err, err_size, "cannot read %s: %s",
                                stream->path, zmesh_strerror(rc));
    int64_t start = zmesh__clock_ms();
    uint64_t records = 0;
    for (;;) {
        zmesh__store_record_t record;
        rc = zmesh__store_iter_next(iter, &record);
        if (rc == ZMESH_EAGAIN)
            break;
        if (rc == ZMESH_EPROTO)
            continue; // counted and logged by the store, never served
        if (rc != 0) {
            zmesh__store_iter_destroy(&iter);
            return zmesh__relay_err(err, err_size, "cannot read %s: %s",
                                    stream->path, zmesh_strerror(rc));
        }
        records++;
        zmesh__frame_t frame;
        if (zmesh__frame_decode(record.body, record.size, &frame) != 0 ||
            zmesh__topic_check(frame.topic, frame.topic_size) == ZMESH_ETOPIC) {
            stream->stats.unreadable++;
            zmesh__log_limited(&self->store_limit, S_LOG_MS,
                               "stream %s: record %" PRIu64
                               " is not an event frame; it is served as it "
                               "is but not counted as an event",
                               stream->name, record.seq);
            continue;
        }
        char hex[33];
        zmesh__id_to_hex(frame.publisher, hex);
        char key[S_KEY_MAX];
        s_key(key, hex, frame.topic, frame.topic_size);
        uint64_t last = frame.sequence;
        bool gap = record.flags & ZMESH__RELAY_FLAG_GAP;
        if (gap) {
            stream->stats.gaps++;
            uint64_t gap_last =
                zmesh__relay_gap_last(frame.payload, frame.payload_size);
            if (gap_last > last)
                last = gap_last;
        }
        s_last_t *noted = s_last_note(stream, key, last, record.stored_us);
        if (noted && gap)
            s_last_gap(noted, frame.sequence, last);
        if (!noted || (!zhashx_lookup(ids, hex) &&
                       zhashx_insert(ids, hex, (void *)1) != 0)) {
            zmesh__store_iter_destroy(&iter);
            return zmesh__relay_err(err, err_size, "out of memory");
        }
    }
    zmesh__store_iter_destroy(&iter);
    zmesh__store_stats_t stats;
    zmesh__store_stats(stream->store, &stats);
    zmesh__log(ZMESH_LOG_NOTICE,
               "stream %s: %s holds %" PRIu64 " records (relay seq %" PRIu64
               "..%" PRIu64 ", %" PRIu64 " bytes) of %zu publisher "
               "streams; read in %" PRId64 " ms",
               stream->name, stream->path, records,
               zmesh__store_first_seq(stream->store),
               zmesh__store_last_seq(stream->store),
               zmesh__store_bytes(stream->store), zhashx_size(stream->last),
               zmesh__clock_ms() - start);
    if (stats.torn_tails || stats.corrupt_regions || stats.corrupt_segments ||
        stats.read_errors)
        zmesh__log(ZMESH_LOG_WARNING,
                   "stream %s: recovery truncated %" PRIu64
                   " bytes of torn tail, skipped %" PRIu64
                   " corrupt regions (%" PRIu64 " bytes) and set aside %" PRIu64
                   " segments; what they held is not served",
                   stream->name, stats.truncated_bytes, stats.corrupt_regions,
                   stats.corrupt_bytes, stats.corrupt_segments);
    return 0;
}

static bool
s_name_ok(const char *name, size_t size)
{
    if (size < 1 || size > ZMESH_NAME_MAX)
        return false;
    for (size_t i = 0; i < size; i++)
        if ((unsigned char)name[i] <= 0x20 || name[i] == 0x7f)
            return false;
    return true;
}

/*  Loads the publisher names file, keeps the names of publishers whose
    events are stored (`ids`), writes it back compacted and opens it for
    appending. Names only label what readers see, so failures are logged
    and the relay goes on without them. */
static void
s_names_open(zmesh__relay_t *self, zhashx_t *ids)
{
    char path[ZMESH__RELAY_PATH_MAX + 32], temp[ZMESH__RELAY_PATH_MAX + 40];
    snprintf(path, sizeof path, "%s/%s", self->dir, S_NAMES_FILE);
    snprintf(temp, sizeof temp, "%s.tmp", path);
    FILE *in = fopen(path, "rb");
    if (in) {
        char line[128];
        size_t total = 0;
        while (fgets(line, sizeof line, in) && total < S_NAMES_FILE_MAX) {
            size_t n = strlen(line);
            total += n;
            if (n < 35 || line[n - 1] != '\n' || line[32] != ' ')
                continue;
            line[32] = '\0';
            line[n - 1] = '\0';
            uint8_t id[ZMESH__ID_SIZE];
            const char *name = line + 33;
            if (zmesh__id_from_hex(line, id) != 0 ||
                !s_name_ok(name, strlen(name)) || !zhashx_lookup(ids, line) ||
                zhashx_lookup(self->names, line))
                continue;
            char *copy = strdup(name);
            if (copy && zhashx_insert(self->names, line, copy) != 0)
                free(copy);
        }
        fclose(in);
    }
    FILE *out = fopen(temp, "wb");
    bool ok = out != NULL;
    for (char *name = ok ? zhashx_first(self->names) : NULL; name;
         name = zhashx_next(self->names))
        ok = fprintf(out, "%s %s\n", (const char *)zhashx_cursor(self->names),
                     name) > 0 &&
             ok;
    if (out && fclose(out) != 0)
        ok = false;
    if (ok && rename(temp, path) != 0)
        ok = false;
    if (!ok)
        unlink(temp);
    self->names_fd =
        open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (!ok || self->names_fd < 0) {
        zmesh__log(ZMESH_LOG_WARNING,
                   "cannot write %s (%s): publisher names will not be kept "
                   "across restarts",
                   path, strerror(errno));
        self->names_failed = true;
    }
}

static void
s_name_learn(zmesh__relay_t *self, const char *hex, const char *name)
{
    if (zhashx_lookup(self->names, hex) || !s_name_ok(name, strlen(name)))
        return;
    char *copy = strdup(name);
    if (!copy || zhashx_insert(self->names, hex, copy) != 0) {
        free(copy);
        return;
    }
    if (self->names_fd < 0 || self->names_failed)
        return;
    char line[33 + ZMESH_NAME_MAX + 2];
    int n = snprintf(line, sizeof line, "%s %s\n", hex, name);
    if (n < 0 || write(self->names_fd, line, (size_t)n) != n) {
        zmesh__log(ZMESH_LOG_WARNING,
                   "cannot append to %s/%s (%s): publisher names will not "
                   "be kept across restarts",
                   self->dir, S_NAMES_FILE, strerror(errno));
        self->names_failed = true;
    }
}

static const char *
s_name_of(void *arg, const char *hex)
{
    zmesh__relay_t *self = arg;
    return zhashx_lookup(self->names, hex);
}

/*  Loads every stream's durable consumers. */
static int
s_consumers_open(zmesh__relay_t *self, char *err, size_t err_size)
{
    int rc = zmesh__relay_consumers_new(&self->consumers,
                                        self->max_msg_size - S_REPLY_ENVELOPE,
                                        s_name_of, self);
    for (size_t i = 0; i < self->streams_count && rc == 0; i++) {
        s_stream_t *stream = &self->streams[i];
        int loaded = zmesh__relay_consumers_add_stream(
            self->consumers, stream->name,
            (const char *const *)stream->patterns, stream->patterns_count,
            stream->store);
        if (loaded > 0)
            zmesh__log(ZMESH_LOG_NOTICE, "stream %s: %d durable consumers",
                       stream->name, loaded);
        rc = loaded < 0 ? loaded : 0;
    }
    if (rc != 0)
        zmesh__relay_err(err, err_size, "cannot load the durable consumers: %s",
                         zmesh_strerror(rc));
    return rc;
}

int
zmesh__relay_open(zmesh__relay_t *self, char *err, size_t err_size)
{
    if (!self || self->opened)
        return zmesh__relay_err(err, err_size, "invalid argument");
    if (s_make_dirs(self->dir) != 0) {
        zmesh__relay_err(err, err_size, "cannot create directory '%s': %s",
                         self->dir, strerror(errno));
        return ZMESH_ESYS;
    }
    zhashx_t *ids = zhashx_new();
    if (!ids)
        return zmesh__relay_err(err, err_size, "out of memory");
    int rc = 0;
    for (size_t i = 0; i < self->streams_count && rc == 0; i++) {
        s_stream_t *stream = &self->streams[i];
        rc = zmesh__store_open(&stream->store, stream->path,
                               &stream->store_config);
        if (rc == ZMESH_ESTATE)
            zmesh__relay_err(
                err, err_size,
                "stream %s: %s is in use by another process (another "
                "mesh-relay?)",
                stream->name, stream->path);
        else if (rc == ZMESH_ESYS)
            zmesh__relay_err(err, err_size, "stream %s: cannot open %s: %s",
                             stream->name, stream->path, strerror(errno));
        else if (rc != 0)
            zmesh__relay_err(err, err_size, "stream %s: cannot open %s: %s",
                             stream->name, stream->path, zmesh_strerror(rc));
        else
            rc = s_scan(self, stream, ids, err, err_size);
    }
    if (rc == 0) {
        s_names_open(self, ids);
        rc = s_consumers_open(self, err, err_size);
    }
    if (rc == 0)
        self->opened = true;
    zhashx_destroy(&ids);
    return rc;
}

/*  One (publisher, topic) to resume, merged over the streams. */
typedef struct {
    char key[S_KEY_MAX];
    uint64_t last;
    int64_t stored_us;
} s_resume_t;

static int
s_resume_newest_first(const void *a, const void *b)
{
    const s_resume_t *x = a, *y = b;
    return (x->stored_us < y->stored_us) - (x->stored_us > y->stored_us);
}

/*  Tells the agent where the streams of `hex` (all publishers when NULL)
    stand: the lowest last sequence over the streams that store them, so
    repair fills the stream furthest behind and the others drop what they
    have (s_stream_event). */
static void
s_resume(zmesh__relay_t *self, const char *hex)
{
    zhashx_t *merged = zhashx_new();
    if (!merged)
        return;
    zhashx_set_destructor(merged, s_last_free);
    for (size_t i = 0; i < self->streams_count; i++) {
        zhashx_t *map = self->streams[i].last;
        for (s_last_t *entry = zhashx_first(map); entry;
             entry = zhashx_next(map)) {
            const char *key = zhashx_cursor(map);
            if (hex && strncmp(key, hex, 32) != 0)
                continue;
            s_last_t *seen = zhashx_lookup(merged, key);
            if (seen) {
                if (entry->last < seen->last)
                    seen->last = entry->last;
                if (entry->stored_us > seen->stored_us)
                    seen->stored_us = entry->stored_us;
                continue;
            }
            seen = malloc(sizeof *seen);
            if (!seen)
                continue;
            *seen = *entry;
            if (zhashx_insert(merged, key, seen) != 0)
                free(seen);
        }
    }
    size_t count = zhashx_size(merged), n = 0;
    s_resume_t *list = count ? malloc(count * sizeof *list) : NULL;
    for (s_last_t *entry = list ? zhashx_first(merged) : NULL; entry;
         entry = zhashx_next(merged)) {
        snprintf(list[n].key, S_KEY_MAX, "%s",
                 (const char *)zhashx_cursor(merged));
        list[n].last = entry->last;
        list[n].stored_us = entry->stored_us;
        n++;
    }
    zhashx_destroy(&merged);
    if (n > S_RESUME_MAX) {
        qsort(list, n, sizeof *list, s_resume_newest_first);
        zmesh__log(ZMESH_LOG_WARNING,
                   "%zu publisher streams are stored; only the %d most "
                   "recent are resumed, so what the others missed while the "
                   "relay was down is not repaired",
                   n, S_RESUME_MAX);
        n = S_RESUME_MAX;
    }
    size_t resumed = 0;
    for (size_t i = 0; i < n; i++) {
        list[i].key[32] = '\0';
        if (zmesh_agent_resume_stream(self->agent, list[i].key,
                                      list[i].key + 33, list[i].last) == 0)
            resumed++;
    }
    free(list);
    if (resumed > 0)
        zmesh__log(ZMESH_LOG_INFO,
                   "resumed %zu publisher streams%s%.8s from what is stored",
                   resumed, hex ? " of " : "", hex ? hex : "");
}

int
zmesh__relay_start(zmesh__relay_t *self, char *err, size_t err_size)
{
    if (!self || !self->opened || self->started)
        return zmesh__relay_err(err, err_size, "the relay is not open");
    int rc = zmesh_agent_start(self->agent);
    if (rc != 0) {
        zmesh__relay_err(
            err, err_size, "cannot join the mesh: %s%s", zmesh_strerror(rc),
            rc == ZMESH_EADDR ? " (check --interface and --beacon-port)" : "");
        return rc;
    }
    self->started = true;
    // Before the first receive, so no event of a resumed stream can be
    // judged the start of a new one.
    s_resume(self, NULL);
    self->next_retention_ms = zmesh__clock_ms();
    return 0;
}

static bool
s_stream_wants(const s_stream_t *stream, const char *topic, size_t size)
{
    for (size_t i = 0; i < stream->patterns_count; i++)
        if (zmesh__pattern_match(stream->patterns[i], stream->pattern_sizes[i],
                                 topic, size))
            return true;
    return false;
}

/*  Appends one record, keeping the stream's accepting state: a failed
    write stops the stream from accepting (logged once) until a retry
    some seconds later succeeds. */
static int
s_append(zmesh__relay_t *self, s_stream_t *stream, const void *body,
         size_t size, uint32_t flags, int64_t now_ms)
{
    if (!stream->stats.accepting && now_ms < stream->retry_ms)
        return ZMESH_EFULL;
    uint64_t seq;
    int rc = zmesh__store_append(stream->store, body, size, flags,
                                 zmesh__wall_clock_us(), &seq);
    if (rc == 0) {
        stream->dirty = true;
        if (!stream->stats.accepting) {
            stream->stats.accepting = true;
            zmesh__log(ZMESH_LOG_NOTICE,
                       "stream %s: storing again in %s (%" PRIu64
                       " events rejected so far)",
                       stream->name, stream->path, stream->stats.rejected);
        }
        return 0;
    }
    if (rc == ZMESH_ESYS) {
        if (stream->stats.accepting)
            zmesh__log(ZMESH_LOG_ERROR,
                       "stream %s: cannot store in %s: %s; not accepting "
                       "events for this stream until it can (retrying every "
                       "%d s); reads go on",
                       stream->name, stream->path,
                       strerror(zmesh__store_errno(stream->store)),
                       S_RETRY_MS / 1000);
        stream->stats.accepting = false;
        stream->retry_ms = now_ms + S_RETRY_MS;
        return rc;
    }
    zmesh__log_limited(&self->store_limit, S_LOG_MS,
                       "stream %s: cannot store a record of %zu bytes: %s",
                       stream->name, size, zmesh_strerror(rc));
    return rc;
}

/*  Appends a gap record for first..last of (publisher, topic), unless what
    is stored covers it already. */
static int
s_stream_gap(zmesh__relay_t *self, s_stream_t *stream, const char *key,
             const uint8_t id[ZMESH__ID_SIZE], const char *topic,
             size_t topic_size, uint64_t first, uint64_t last,
             int64_t timestamp_us, const char *reason, int64_t now_ms)
{
    s_last_t *entry = zhashx_lookup(stream->last, key);
    if (entry && last <= entry->last)
        return 0;
    if (entry && first <= entry->last)
        first = entry->last + 1;
    uint8_t payload[64];
    size_t reason_size = strlen(reason);
    size_t at = 0;
    payload[at++] = 0x82;
    payload[at++] = 0xa4;
    memcpy(payload + at, "last", 4);
    at += 4;
    payload[at++] = 0xcf;
    for (int b = 7; b >= 0; b--)
        payload[at++] = (uint8_t)(last >> (8 * b));
    payload[at++] = 0xa6;
    memcpy(payload + at, "reason", 6);
    at += 6;
    payload[at++] = (uint8_t)(0xa0 | reason_size);
    memcpy(payload + at, reason, reason_size);
    at += reason_size;
    uint8_t frame[ZMESH__FRAME_OVERHEAD + sizeof payload];
    int size = zmesh__frame_encode(topic, topic_size, id, first, timestamp_us,
                                   payload, at, frame, sizeof frame);
    if (size < 0)
        return size;
    int rc = s_append(self, stream, frame, (size_t)size, ZMESH__RELAY_FLAG_GAP,
                      now_ms);
    if (rc != 0)
        return rc;
    stream->stats.gaps++;
    stream->stats.missing += last - first + 1;
    s_last_t *noted = s_last_note(stream, key, last, zmesh__wall_clock_us());
    if (!noted)
        return ZMESH_ENOMEM;
    s_last_gap(noted, first, last);
    return 0;
}

/*  Stores one event frame in one stream: never twice, and a hole before it
    that the agent did not report (events this stream did not store) is
    recorded as a gap first. */
static s_outcome_t
s_stream_event(zmesh__relay_t *self, s_stream_t *stream, const char *key,
               const uint8_t id[ZMESH__ID_SIZE], const char *topic,
               size_t topic_size, uint64_t seq, int64_t timestamp_us,
               size_t frame_size, int64_t now_ms)
{
    s_last_t *entry = zhashx_lookup(stream->last, key);
    if (entry && seq <= entry->last) {
        stream->stats.duplicates++;
        return s_last_missing(entry, seq) ? S_CONFIRM_MISSING : S_CONFIRM_OK;
    }
    if (!stream->stats.accepting && now_ms < stream->retry_ms) {
        stream->stats.rejected++;
        return S_CONFIRM_NOT_ACCEPTING;
    }
    if (entry && seq > entry->last + 1) {
        uint64_t first = entry->last + 1;
        zmesh__log_limited(
            &self->hole_limit, S_LOG_MS,
            "stream %s: %" PRIu64 " events of '%s' from %.8s "
            "were not stored (%" PRIu64 "..%" PRIu64 "); recorded as a gap",
            stream->name, seq - first, topic, key, first, seq - 1);
        if (s_stream_gap(self, stream, key, id, topic, topic_size, first,
                         seq - 1, timestamp_us, "not stored", now_ms) != 0) {
            stream->stats.rejected++;
            return S_CONFIRM_NOT_ACCEPTING;
        }
    }
    if (s_append(self, stream, self->frame, frame_size, 0, now_ms) != 0) {
        stream->stats.rejected++;
        return S_CONFIRM_NOT_ACCEPTING;
    }
    stream->stats.stored++;
    if (!s_last_note(stream, key, seq, zmesh__wall_clock_us()))
        zmesh__log_limited(&self->store_limit, S_LOG_MS,
                           "stream %s: out of memory noting what is stored",
                           stream->name);
    return S_CONFIRM_OK;
}

/*  Stores one event in every stream that wants it, as the data plane
    delivered it or a $relay.store carried it; the frame is written anew
    with flags 0, so what is stored is canonical. Returns the outcome
    over the streams (the worst) and sets *streams to the streams that
    hold it. */
static s_outcome_t
s_store_event(zmesh__relay_t *self, const char *hex,
              const uint8_t id[ZMESH__ID_SIZE], const char *topic,
              size_t topic_size, uint64_t seq, int64_t timestamp,
              const void *payload, size_t payload_size, const char *name,
              int64_t now_ms, uint64_t *streams)
{
    *streams = 0;
    size_t need = zmesh__frame_size(topic_size, seq, timestamp, payload_size);
    if (need > self->frame_cap) {
        uint8_t *grown = realloc(self->frame, need);
        if (!grown) {
            bool wanted = false;
            for (size_t i = 0; i < self->streams_count; i++)
                if (s_stream_wants(&self->streams[i], topic, topic_size)) {
                    self->streams[i].stats.rejected++;
                    wanted = true;
                }
            return wanted ? S_CONFIRM_NOT_ACCEPTING : S_CONFIRM_NO_STREAM;
        }
        self->frame = grown;
        self->frame_cap = need;
    }
    int size =
        zmesh__frame_encode(topic, topic_size, id, seq, timestamp, payload,
                            payload_size, self->frame, self->frame_cap);
    if (size < 0)
        return S_CONFIRM_REJECTED;
    char key[S_KEY_MAX];
    s_key(key, hex, topic, topic_size);
    s_outcome_t outcome = S_CONFIRM_NO_STREAM;
    bool wanted = false;
    for (size_t i = 0; i < self->streams_count; i++) {
        s_stream_t *stream = &self->streams[i];
        if (!s_stream_wants(stream, topic, topic_size))
            continue;
        s_outcome_t got =
            s_stream_event(self, stream, key, id, topic, topic_size, seq,
                           timestamp, (size_t)size, now_ms);
        if (!wanted || got > outcome)
            outcome = got;
        wanted = true;
        if (got == S_CONFIRM_OK)
            *streams |= UINT64_C(1) << i;
    }
    if (wanted && name)
        s_name_learn(self, hex, name);
    return outcome;
}

/*  Whether a $relay.store frame would jump ahead of what some stream that
    wants it has stored of its (publisher, topic). Such a frame is left
    for later: the events before it are on their way (the live path, a
    repair, this or the next resend), and storing it now would record
    them as missing for good. */
static bool
s_store_jumps(zmesh__relay_t *self, const char *hex, const char *topic,
              size_t topic_size, uint64_t seq)
{
    char key[S_KEY_MAX];
    s_key(key, hex, topic, topic_size);
    for (size_t i = 0; i < self->streams_count; i++) {
        s_stream_t *stream = &self->streams[i];
        if (!s_stream_wants(stream, topic, topic_size))
            continue;
        s_last_t *entry = zhashx_lookup(stream->last, key);
        if (entry && seq > entry->last + 1)
            return true;
    }
    return false;
}

/*  Notes an event to confirm in `list` (a copy of the topic). */
static void
s_confirm_add(zmesh__relay_t *self, s_confirms_t *list, const char *hex,
              const char *topic, uint64_t seq, uint64_t streams,
              s_outcome_t outcome)
{
    if (list->count == ZMESH__RELAY_CONFIRMS_MAX) {
        self->confirms_dropped++;
        zmesh__log_limited(&self->confirm_limit, S_LOG_MS,
                           "more than %d events to confirm in one pass; "
                           "those beyond are not confirmed now (their "
                           "publishers send them again)",
                           ZMESH__RELAY_CONFIRMS_MAX);
        return;
    }
    if (list->count == list->cap) {
        size_t cap = list->cap ? list->cap * 2 : 256;
        s_confirm_t *grown = realloc(list->items, cap * sizeof *grown);
        if (!grown) {
            self->confirms_dropped++;
            return;
        }
        list->items = grown;
        list->cap = cap;
    }
    s_confirm_t *item = &list->items[list->count];
    item->topic = strdup(topic);
    if (!item->topic) {
        self->confirms_dropped++;
        return;
    }
    memcpy(item->hex, hex, 33);
    item->seq = seq;
    item->streams = streams;
    item->outcome = outcome;
    list->count++;
}

static void
s_confirms_clear(s_confirms_t *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->items[i].topic);
    list->count = 0;
}

static void
s_on_message(zmesh__relay_t *self, const zmesh_event_t *event, int64_t now_ms)
{
    const char *topic = zmesh_event_topic(event);
    size_t topic_size = strlen(topic);
    const char *hex = zmesh_event_peer_id(event);
    uint8_t id[ZMESH__ID_SIZE];
    if (topic_size == 0 || topic_size > ZMESH_TOPIC_MAX ||
        zmesh__id_from_hex(hex, id) != 0)
        return;
    size_t payload_size = 0;
    const void *payload = zmesh_event_payload(event, &payload_size);
    uint64_t seq = zmesh_event_sequence(event);
    uint64_t streams = 0;
    s_outcome_t outcome = s_store_event(
        self, hex, id, topic, topic_size, seq, zmesh_event_timestamp(event),
        payload, payload_size, zmesh_event_peer_name(event), now_ms, &streams);
    // An event no stream wants is never confirmed (proto/relay.md): some
    // other relay may store it.
    if ((zmesh__event_flags(event) & ZMESH__FRAME_CONFIRM) &&
        outcome != S_CONFIRM_NO_STREAM)
        s_confirm_add(self, &self->confirms, hex, topic, seq, streams, outcome);
}

static void
s_on_gap(zmesh__relay_t *self, const zmesh_event_t *event, int64_t now_ms)
{
    const char *topic = zmesh_event_topic(event);
    size_t topic_size = strlen(topic);
    const char *hex = zmesh_event_peer_id(event);
    uint8_t id[ZMESH__ID_SIZE];
    uint64_t first = zmesh_event_sequence(event);
    uint64_t last = zmesh_event_gap_last(event);
    if (topic_size == 0 || topic_size > ZMESH_TOPIC_MAX ||
        zmesh__id_from_hex(hex, id) != 0 || first == 0 || last < first)
        return;
    char key[S_KEY_MAX];
    s_key(key, hex, topic, topic_size);
    char names[256] = "";
    size_t used = 0;
    for (size_t i = 0; i < self->streams_count; i++) {
        s_stream_t *stream = &self->streams[i];
        if (!s_stream_wants(stream, topic, topic_size))
            continue;
        int n = snprintf(names + used, sizeof names - used, "%s%s",
                         used ? ", " : "", stream->name);
        if (n > 0 && (size_t)n < sizeof names - used)
            used += (size_t)n;
        if (s_stream_gap(self, stream, key, id, topic, topic_size, first, last,
                         zmesh_event_timestamp(event), "not repaired",
                         now_ms) != 0)
            stream->stats.rejected++;
    }
    zmesh__log_limited(&self->gap_limit, 1000,
                       "gap: %" PRIu64 " events of '%s' from %s (%.8s) could "
                       "not be repaired (%" PRIu64 "..%" PRIu64
                       "); recorded in stream %s",
                       last - first + 1, topic, zmesh_event_peer_name(event),
                       hex, first, last, used ? names : "-");
}

/*  Forgets the streams of a publisher incarnation that is gone for good:
    it can publish nothing more, so there is nothing to deduplicate. */
static void
s_forget(zmesh__relay_t *self, const char *hex)
{
    for (size_t i = 0; i < self->streams_count; i++) {
        zhashx_t *map = self->streams[i].last;
        zlistx_t *keys = zhashx_keys(map);
        if (!keys)
            continue;
        for (const char *key = zlistx_first(keys); key; key = zlistx_next(keys))
            if (strncmp(key, hex, 32) == 0)
                zhashx_delete(map, key);
        zlistx_destroy(&keys);
    }
}

static void
s_commit_all(zmesh__relay_t *self)
{
    for (size_t i = 0; i < self->streams_count; i++) {
        s_stream_t *stream = &self->streams[i];
        if (!stream->dirty)
            continue;
        stream->dirty = false;
        if (zmesh__store_commit(stream->store) < 0) {
            stream->stats.commit_errors++;
            stream->commit_failed = true;
            zmesh__log_limited(&self->store_limit, S_LOG_MS,
                               "stream %s: cannot sync %s: %s; what was "
                               "stored since the last sync may not survive a "
                               "power cut",
                               stream->name, stream->path,
                               strerror(zmesh__store_errno(stream->store)));
        }
    }
}

/* ------------------------------------------------------------------------ */
/*  Publisher confirms                                                      */

static int
s_confirm_cmp(const void *a, const void *b)
{
    const s_confirm_t *x = a, *y = b;
    int c = strcmp(x->hex, y->hex);
    if (c == 0)
        c = strcmp(x->topic, y->topic);
    if (c == 0)
        c = (x->outcome > y->outcome) - (x->outcome < y->outcome);
    if (c == 0)
        c = (x->seq > y->seq) - (x->seq < y->seq);
    return c;
}

/*  The end of the range of items starting at `at` (same topic and
    outcome, consecutive sequences) within [at, to). */
static size_t
s_range_end(const s_confirm_t *items, size_t at, size_t to, uint64_t *last)
{
    size_t end = at + 1;
    *last = items[at].seq;
    while (end < to && items[end].outcome == items[at].outcome &&
           strcmp(items[end].topic, items[at].topic) == 0 &&
           items[end].seq <= *last + 1) {
        *last = items[end].seq;
        end++;
    }
    return end;
}

/*  Packs {"ok": [[topic, first, last]...], "failed": [[topic, first, last,
    reason]...]} (failed only when there are some) of the sorted items
    [from, to) into `out`, coalesced into ranges, as many as fit `budget`
    bytes (one at least). Returns where it stopped; *ok_count counts the
    events confirmed. */
static size_t
s_pack_confirms(msgpack_sbuffer *out, const s_confirm_t *items, size_t from,
                size_t to, size_t budget, uint64_t *ok_count)
{
    size_t oks = 0, fails = 0, used = 32, end = from;
    *ok_count = 0;
    while (end < to) {
        uint64_t last;
        size_t next = s_range_end(items, end, to, &last);
        size_t cost = strlen(items[end].topic) + 48;
        if (used + cost > budget && end > from)
            break;
        used += cost;
        if (items[end].outcome == S_CONFIRM_OK) {
            oks++;
            *ok_count += next - end;
        } else
            fails++;
        end = next;
    }
    msgpack_sbuffer_clear(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, fails ? 2 : 1);
    for (int pass = 0; pass < (fails ? 2 : 1); pass++) {
        zmesh__mp_pack_str(&pk, pass == 0 ? "ok" : "failed");
        msgpack_pack_array(&pk, pass == 0 ? oks : fails);
        for (size_t at = from; at < end;) {
            uint64_t last;
            size_t next = s_range_end(items, at, end, &last);
            if ((items[at].outcome == S_CONFIRM_OK) == (pass == 0)) {
                msgpack_pack_array(&pk, pass == 0 ? 3 : 4);
                zmesh__mp_pack_str(&pk, items[at].topic);
                msgpack_pack_uint64(&pk, items[at].seq);
                msgpack_pack_uint64(&pk, last);
                if (pass == 1)
                    zmesh__mp_pack_str(&pk, s_outcome_text[items[at].outcome]);
            }
            at = next;
        }
    }
    return end;
}

/*  Drops the confirms of events stored in a stream whose commit failed:
    they may not be durable, so they are neither confirmed nor failed,
    and their publishers send them again. Then sorts. */
static void
s_confirms_prepare(zmesh__relay_t *self, s_confirms_t *list)
{
    uint64_t failed = 0;
    for (size_t i = 0; i < self->streams_count; i++)
        if (self->streams[i].commit_failed)
            failed |= UINT64_C(1) << i;
    size_t kept = 0;
    for (size_t i = 0; i < list->count; i++) {
        if (list->items[i].outcome == S_CONFIRM_OK &&
            (list->items[i].streams & failed)) {
            free(list->items[i].topic);
            continue;
        }
        list->items[kept++] = list->items[i];
    }
    list->count = kept;
    if (kept > 1)
        qsort(list->items, kept, sizeof *list->items, s_confirm_cmp);
}

/*  Sends this pass's confirms, after its commit: one message per
    publisher (more when the ranges do not fit one message), as an event
    on its confirm topic once its subscription to it is in effect here,
    else as a DIRECT message (proto/relay.md#publisher-confirms). The data
    plane spares a thread hop at each end: a third less time to a confirm
    with one in flight. */
static void
s_confirms_flush(zmesh__relay_t *self)
{
    s_confirms_t *list = &self->confirms;
    if (list->count > 0) {
        s_confirms_prepare(self, list);
        size_t budget = self->max_msg_size - S_REPLY_ENVELOPE;
        for (size_t i = 0; i < list->count;) {
            size_t j = i + 1;
            while (j < list->count &&
                   strcmp(list->items[j].hex, list->items[i].hex) == 0)
                j++;
            for (size_t at = i; at < j;) {
                uint64_t oks = 0;
                at = s_pack_confirms(&self->reply, list->items, at, j, budget,
                                     &oks);
                char topic[sizeof ZMESH__CONFIRM_TOPIC_PREFIX + 32];
                snprintf(topic, sizeof topic, "%s%s",
                         ZMESH__CONFIRM_TOPIC_PREFIX, list->items[i].hex);
                int rc;
                if (zmesh__agent_reaches(self->agent, list->items[i].hex,
                                         topic)) {
                    rc = zmesh__agent_publish_reserved(
                        self->agent, topic, self->reply.data, self->reply.size);
                    self->confirms_data += rc == 0;
                } else {
                    // Not waited for: a round trip to the control thread
                    // per pass would bound confirms per second, and a
                    // confirm that is lost is asked for again by its
                    // publisher.
                    rc = zmesh__agent_send_nowait(
                        self->agent, list->items[i].hex, ZMESH__CONFIRM_TOPIC,
                        self->reply.data, self->reply.size);
                    self->confirms_direct += rc == 0;
                }
                if (rc == 0)
                    self->confirmed += oks;
                else
                    zmesh__log_limited(&self->confirm_limit, S_LOG_MS,
                                       "cannot send confirms to %.8s: %s",
                                       list->items[i].hex, zmesh_strerror(rc));
            }
            i = j;
        }
        s_confirms_clear(list);
    }
    for (size_t i = 0; i < self->streams_count; i++)
        self->streams[i].commit_failed = false;
}

/* ------------------------------------------------------------------------ */
/*  Answers                                                                 */

static void
s_reply(zmesh__relay_t *self, const zmesh_event_t *request, const void *data,
        size_t size)
{
    int rc = zmesh_agent_reply(self->agent, request, data, size);
    if (rc != 0)
        zmesh__log(ZMESH_LOG_INFO, "cannot answer %s's request on %s: %s",
                   zmesh_event_peer_name(request), zmesh_event_topic(request),
                   zmesh_strerror(rc));
}

/*  {"error": text, "code": code} */
static void
s_reply_error(zmesh__relay_t *self, const zmesh_event_t *request,
              const char *code, const char *text)
{
    msgpack_sbuffer_clear(&self->reply);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &self->reply, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    zmesh__mp_pack_str(&pk, "error");
    zmesh__mp_pack_str(&pk, text);
    zmesh__mp_pack_str(&pk, "code");
    zmesh__mp_pack_str(&pk, code);
    s_reply(self, request, self->reply.data, self->reply.size);
}

static s_stream_t *
s_stream_named(zmesh__relay_t *self, const char *name)
{
    for (size_t i = 0; i < self->streams_count; i++)
        if (strcmp(self->streams[i].name, name) == 0)
            return &self->streams[i];
    return NULL;
}

static void
s_stream_list(zmesh__relay_t *self, char *out, size_t size)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < self->streams_count && used < size; i++) {
        int n = snprintf(out + used, size - used, "%s%s", i ? ", " : "",
                         self->streams[i].name);
        if (n < 0)
            break;
        used += (size_t)n;
    }
}

/*  What one $relay.read answer collects besides the events. */
typedef struct {
    uint64_t corrupt[S_SKIPPED_MAX];
    size_t corrupt_count;
    uint64_t oversize[S_SKIPPED_MAX];
    size_t oversize_count;
    zhashx_t *publishers; /* hex -> name, or (void *)1 when unknown */
} s_batch_t;

static void
s_pack_list(msgpack_packer *pk, const char *key, const uint64_t *list,
            size_t count)
{
    zmesh__mp_pack_str(pk, key);
    msgpack_pack_array(pk, count);
    for (size_t i = 0; i < count; i++)
        msgpack_pack_uint64(pk, list[i]);
}

/*  Packs the events from `start` on into self->events, within `max`
    events and `budget` bytes. Returns the next rseq to read, or a
    ZMESH_E* code. */
static int
s_read_events(zmesh__relay_t *self, s_stream_t *stream, uint64_t start,
              uint32_t max, size_t budget, s_batch_t *batch, uint32_t *count,
              uint64_t *next)
{
    zmesh__store_iter_t *iter = NULL;
    int rc = zmesh__store_iter_new(stream->store, start, &iter);
    if (rc != 0)
        return rc;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &self->events, msgpack_sbuffer_write);
    uint64_t first = zmesh__store_first_seq(stream->store);
    *next = start < first ? first : start;
    *count = 0;
    // Each turn either packs an event or moves past a skipped record, and
    // skipped ones are bounded, so this ends.
    for (uint32_t turn = 0; turn < max + 2 * S_SKIPPED_MAX + 2; turn++) {
        if (*count == max)
            break;
        zmesh__store_record_t record;
        rc = zmesh__store_iter_next(iter, &record);
        if (rc == ZMESH_EAGAIN) {
            rc = 0;
            break;
        }
        if (rc == ZMESH_EPROTO) {
            if (batch->corrupt_count == S_SKIPPED_MAX) {
                rc = 0;
                break; // the next answer goes on from here
            }
            batch->corrupt[batch->corrupt_count++] = record.seq;
            *next = record.seq + 1;
            continue;
        }
        if (rc != 0)
            break;
        size_t cost = S_EVENT_OVERHEAD + record.size;
        if (self->events.size + cost > budget) {
            if (cost <= budget)
                break; // fits an answer of its own: the next one
            if (batch->oversize_count == S_SKIPPED_MAX)
                break;
            batch->oversize[batch->oversize_count++] = record.seq;
            *next = record.seq + 1;
            continue;
        }
        uint32_t flags = record.flags;
        msgpack_pack_array(&pk, flags ? 4 : 3);
        msgpack_pack_uint64(&pk, record.seq);
        msgpack_pack_int64(&pk, record.stored_us);
        msgpack_pack_bin(&pk, record.size);
        msgpack_pack_bin_body(&pk, record.body, record.size);
        if (flags)
            msgpack_pack_uint32(&pk, flags);
        (*count)++;
        *next = record.seq + 1;
        zmesh__frame_t frame;
        if (zmesh__frame_decode(record.body, record.size, &frame) == 0) {
            char hex[33];
            zmesh__id_to_hex(frame.publisher, hex);
            if (!zhashx_lookup(batch->publishers, hex)) {
                void *name = zhashx_lookup(self->names, hex);
                zhashx_insert(batch->publishers, hex, name ? name : (void *)1);
            }
        }
    }
    zmesh__store_iter_destroy(&iter);
    return rc;
}

static void
s_serve_read(zmesh__relay_t *self, const zmesh_event_t *request)
{
    size_t size = 0;
    const void *payload = zmesh_event_payload(request, &size);
    zmesh__relay_read_t read;
    char text[256];
    if (zmesh__relay_read_decode(payload, size, &read, text, sizeof text) !=
        0) {
        self->bad_requests++;
        zmesh__log_limited(&self->request_limit, S_LOG_MS,
                           "bad $relay.read request from %s (%.8s): %s",
                           zmesh_event_peer_name(request),
                           zmesh_event_peer_id(request), text);
        s_reply_error(self, request, "bad_request", text);
        return;
    }
    s_stream_t *stream = s_stream_named(self, read.stream);
    if (!stream) {
        char list[200], message[sizeof list + 100];
        s_stream_list(self, list, sizeof list);
        snprintf(message, sizeof message, "no stream '%s' here (streams: %s)",
                 read.stream, list);
        s_reply_error(self, request, "not_found", message);
        return;
    }
    uint64_t start = read.has_from ? read.from : 1;
    if (read.has_since) {
        int rc = zmesh__store_seek_time(stream->store, read.since_us, &start);
        if (rc != 0) {
            snprintf(text, sizeof text, "cannot seek in stream '%s': %s",
                     stream->name, zmesh_strerror(rc));
            s_reply_error(self, request, "unavailable", text);
            return;
        }
    }
    size_t limit = self->max_msg_size - S_REPLY_ENVELOPE;
    if (read.bytes && read.bytes < limit)
        limit = (size_t)read.bytes;
    size_t budget = limit - S_READ_HEADER;
    s_batch_t batch = {.publishers = zhashx_new()};
    if (!batch.publishers) {
        s_reply_error(self, request, "unavailable", "out of memory");
        return;
    }
    msgpack_sbuffer_clear(&self->events);
    uint32_t count = 0;
    uint64_t next = 0;
    int rc = s_read_events(self, stream, start, read.max, budget, &batch,
                           &count, &next);
    if (rc != 0) {
        zhashx_destroy(&batch.publishers);
        snprintf(text, sizeof text, "cannot read stream '%s': %s", stream->name,
                 zmesh_strerror(rc));
        s_reply_error(self, request, "unavailable", text);
        return;
    }
    msgpack_sbuffer_clear(&self->reply);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &self->reply, msgpack_sbuffer_write);
    // Names go in while they fit what the events left of the answer.
    size_t names_room = limit - S_READ_HEADER - self->events.size;
    size_t names = 0, names_bytes = 0;
    for (void *name = zhashx_first(batch.publishers); name;
         name = zhashx_next(batch.publishers)) {
        size_t cost = 40 + (name == (void *)1 ? 0 : strlen(name));
        if (name == (void *)1 || names_bytes + cost > names_room)
            continue;
        names_bytes += cost;
        names++;
    }
    msgpack_pack_map(&pk, 5 + (names > 0) + (batch.corrupt_count > 0) +
                              (batch.oversize_count > 0));
    zmesh__mp_pack_str(&pk, "stream");
    zmesh__mp_pack_str(&pk, stream->name);
    zmesh__mp_pack_u64(&pk, "first", zmesh__store_first_seq(stream->store));
    zmesh__mp_pack_u64(&pk, "last", zmesh__store_last_seq(stream->store));
    zmesh__mp_pack_u64(&pk, "next", next);
    zmesh__mp_pack_str(&pk, "events");
    msgpack_pack_array(&pk, count);
    msgpack_sbuffer_write(&self->reply, self->events.data, self->events.size);
    if (names > 0) {
        zmesh__mp_pack_str(&pk, "names");
        msgpack_pack_map(&pk, names);
        size_t packed = 0;
        for (void *name = zhashx_first(batch.publishers);
             name && packed < names; name = zhashx_next(batch.publishers)) {
            if (name == (void *)1)
                continue;
            zmesh__mp_pack_str(&pk, zhashx_cursor(batch.publishers));
            zmesh__mp_pack_str(&pk, name);
            packed++;
        }
    }
    if (batch.corrupt_count > 0)
        s_pack_list(&pk, "corrupt", batch.corrupt, batch.corrupt_count);
    if (batch.oversize_count > 0)
        s_pack_list(&pk, "oversize", batch.oversize, batch.oversize_count);
    zhashx_destroy(&batch.publishers);
    s_reply(self, request, self->reply.data, self->reply.size);
}

static void
s_pack_stream_info(zmesh__relay_t *self, msgpack_packer *pk, size_t index)
{
    const s_stream_t *stream = &self->streams[index];
    zmesh__store_stats_t stats;
    zmesh__store_stats(stream->store, &stats);
    const zmesh__store_config_t *c = &stream->store_config;
    msgpack_pack_map(pk, 20);
    zmesh__mp_pack_str(pk, "name");
    zmesh__mp_pack_str(pk, stream->name);
    zmesh__mp_pack_str(pk, "patterns");
    msgpack_pack_array(pk, stream->patterns_count);
    for (size_t i = 0; i < stream->patterns_count; i++)
        zmesh__mp_pack_str(pk, stream->patterns[i]);
    zmesh__mp_pack_u64(pk, "first", zmesh__store_first_seq(stream->store));
    zmesh__mp_pack_u64(pk, "last", zmesh__store_last_seq(stream->store));
    zmesh__mp_pack_u64(pk, "count", zmesh__store_count(stream->store));
    zmesh__mp_pack_u64(pk, "bytes", zmesh__store_bytes(stream->store));
    zmesh__mp_pack_u64(pk, "stored", stream->stats.stored);
    zmesh__mp_pack_u64(pk, "duplicates", stream->stats.duplicates);
    zmesh__mp_pack_u64(pk, "gaps", stream->stats.gaps);
    zmesh__mp_pack_u64(pk, "missing", stream->stats.missing);
    zmesh__mp_pack_u64(pk, "rejected", stream->stats.rejected);
    zmesh__mp_pack_str(pk, "accepting");
    if (stream->stats.accepting)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    zmesh__mp_pack_str(pk, "retention");
    msgpack_pack_map(pk, 3);
    zmesh__mp_pack_u64(pk, "max_age_ms", c->max_age_ms);
    zmesh__mp_pack_u64(pk, "max_bytes", c->max_bytes);
    zmesh__mp_pack_u64(pk, "max_events", c->max_events);
    char sync[32];
    zmesh__relay_sync_text(c->sync, c->sync_interval_ms, sync, sizeof sync);
    zmesh__mp_pack_str(pk, "sync");
    zmesh__mp_pack_str(pk, sync);
    zmesh__mp_pack_u64(pk, "segment_bytes",
                       c->segment_bytes ? c->segment_bytes
                                        : ZMESH__STORE_SEGMENT_BYTES_DEFAULT);
    zmesh__mp_pack_str(pk, "path");
    zmesh__mp_pack_str(pk, stream->path);
    zmesh__mp_pack_u64(pk, "unreadable", stream->stats.unreadable);
    zmesh__mp_pack_str(pk, "consumers");
    zmesh__relay_consumers_pack_info(self->consumers, index, pk);
    // Consumers whose files could not be read: out of service.
    zmesh__mp_pack_u64(pk, "consumers_unusable",
                       zmesh__relay_consumers_unusable(self->consumers, index));
    zmesh__mp_pack_str(pk, "store");
    msgpack_pack_map(pk, 10);
    zmesh__mp_pack_u64(pk, "appends", stats.appends);
    zmesh__mp_pack_u64(pk, "syncs", stats.syncs);
    zmesh__mp_pack_u64(pk, "segments_created", stats.segments_created);
    zmesh__mp_pack_u64(pk, "segments_deleted", stats.segments_deleted);
    zmesh__mp_pack_u64(pk, "torn_tails", stats.torn_tails);
    zmesh__mp_pack_u64(pk, "truncated_bytes", stats.truncated_bytes);
    zmesh__mp_pack_u64(pk, "corrupt_regions", stats.corrupt_regions);
    zmesh__mp_pack_u64(pk, "corrupt_bytes", stats.corrupt_bytes);
    zmesh__mp_pack_u64(pk, "corrupt_segments", stats.corrupt_segments);
    zmesh__mp_pack_u64(pk, "read_errors", stats.read_errors);
}

static void
s_serve_info(zmesh__relay_t *self, const zmesh_event_t *request)
{
    size_t size = 0;
    const uint8_t *payload = zmesh_event_payload(request, &size);
    // nil or an empty map; anything else is a mistake worth saying.
    if (size != 1 || (payload[0] != 0xc0 && payload[0] != 0x80)) {
        self->bad_requests++;
        s_reply_error(self, request, "bad_request",
                      "$relay.info takes nil or an empty map");
        return;
    }
    msgpack_sbuffer_clear(&self->reply);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &self->reply, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    zmesh__mp_pack_str(&pk, "relay");
    msgpack_pack_map(&pk, 10);
    zmesh__mp_pack_str(&pk, "name");
    zmesh__mp_pack_str(&pk, zmesh_agent_name(self->agent));
    zmesh__mp_pack_u64(&pk, "confirmed", self->confirmed);
    zmesh__mp_pack_u64(&pk, "confirms_dropped", self->confirms_dropped);
    zmesh__mp_pack_u64(&pk, "confirms_data", self->confirms_data);
    zmesh__mp_pack_u64(&pk, "confirms_direct", self->confirms_direct);
    zmesh__mp_pack_str(&pk, "id");
    zmesh__mp_pack_str(&pk, zmesh_agent_id(self->agent));
    zmesh__mp_pack_str(&pk, "version");
    zmesh__mp_pack_str(&pk, zmesh_version());
    zmesh__mp_pack_u64(&pk, "requests", self->requests);
    zmesh__mp_pack_u64(&pk, "bad_requests", self->bad_requests);
    // What the agent did for the streams: repairs show what a restart
    // caught up on.
    zmesh_stats_t stats;
    if (zmesh_agent_stats(self->agent, &stats) != 0)
        memset(&stats, 0, sizeof stats);
    zmesh__mp_pack_str(&pk, "agent");
    msgpack_pack_map(&pk, 7);
    zmesh__mp_pack_u64(&pk, "events_received", stats.events_received);
    zmesh__mp_pack_u64(&pk, "events_repaired", stats.events_repaired);
    zmesh__mp_pack_u64(&pk, "repair_requests", stats.repair_requests);
    zmesh__mp_pack_u64(&pk, "gaps", stats.gaps);
    zmesh__mp_pack_u64(&pk, "events_missing", stats.events_missing);
    zmesh__mp_pack_u64(&pk, "duplicates_dropped", stats.duplicates_dropped);
    zmesh__mp_pack_u64(&pk, "backlog_dropped", stats.backlog_dropped);
    zmesh__mp_pack_str(&pk, "streams");
    msgpack_pack_array(&pk, self->streams_count);
    for (size_t i = 0; i < self->streams_count; i++)
        s_pack_stream_info(self, &pk, i);
    s_reply(self, request, self->reply.data, self->reply.size);
}

/*  $relay.store (proto/relay.md#relay-store): frames the requester
    published and is still waiting to have confirmed, stored as if they
    had come on the data plane, committed, then answered like a confirm. */
static void
s_serve_store(zmesh__relay_t *self, const zmesh_event_t *request,
              int64_t now_ms)
{
    size_t size = 0;
    const void *payload = zmesh_event_payload(request, &size);
    const char *requester = zmesh_event_peer_id(request);
    const char *problem = NULL;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t offset = 0;
    const msgpack_object *frames = NULL;
    if (size == 0 || zmesh__msgpack_check(payload, size) != 0 ||
        msgpack_unpack_next(&unpacked, payload, size, &offset) !=
            MSGPACK_UNPACK_SUCCESS ||
        unpacked.data.type != MSGPACK_OBJECT_MAP)
        problem = "$relay.store takes a map {\"frames\": [frame bin, ...]}";
    for (uint32_t i = 0; !problem && i < unpacked.data.via.map.size; i++) {
        const msgpack_object_kv *kv = &unpacked.data.via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR)
            problem = "request keys must be strings";
        else if (zmesh__mp_key_is(&kv->key, "frames")) {
            if (frames)
                problem = "key \"frames\" is given twice";
            frames = &kv->val;
        }
    }
    if (!problem && !frames)
        problem = "\"frames\" is missing";
    else if (!problem &&
             (frames->type != MSGPACK_OBJECT_ARRAY ||
              frames->via.array.size > ZMESH__RELAY_STORE_FRAMES_MAX))
        problem = "\"frames\" must be an array of at most 1000 frames";
    for (uint32_t i = 0; !problem && i < frames->via.array.size; i++)
        if (frames->via.array.ptr[i].type != MSGPACK_OBJECT_BIN)
            problem = "\"frames\" must hold event frames (bin)";
    if (problem) {
        msgpack_unpacked_destroy(&unpacked);
        self->bad_requests++;
        zmesh__log_limited(&self->request_limit, S_LOG_MS,
                           "bad $relay.store request from %s (%.8s): %s",
                           zmesh_event_peer_name(request), requester, problem);
        s_reply_error(self, request, "bad_request", problem);
        return;
    }
    s_confirms_t list = {0};
    size_t malformed = 0, deferred = 0;
    for (uint32_t i = 0; i < frames->via.array.size; i++) {
        const msgpack_object_bin *bin = &frames->via.array.ptr[i].via.bin;
        zmesh__frame_t frame;
        // A frame that does not decode names no topic or sequence to list.
        if (zmesh__frame_decode(bin->ptr, bin->size, &frame) != 0 ||
            zmesh__topic_check(frame.topic, frame.topic_size) == ZMESH_ETOPIC) {
            malformed++;
            continue;
        }
        char hex[33];
        zmesh__id_to_hex(frame.publisher, hex);
        uint64_t streams = 0;
        s_outcome_t outcome = S_CONFIRM_REJECTED;
        if (strcmp(hex, requester) == 0 &&
            s_store_jumps(self, hex, frame.topic, frame.topic_size,
                          frame.sequence)) {
            deferred++;
            continue; // not answered: the publisher sends it again
        }
        if (strcmp(hex, requester) == 0 && frame.sequence > 0)
            outcome = s_store_event(
                self, hex, frame.publisher, frame.topic, frame.topic_size,
                frame.sequence, frame.timestamp_us, frame.payload,
                frame.payload_size, zmesh_event_peer_name(request), now_ms,
                &streams);
        s_confirm_add(self, &list, requester, frame.topic, frame.sequence,
                      streams, outcome);
    }
    msgpack_unpacked_destroy(&unpacked);
    if (malformed > 0) {
        zmesh__log_limited(&self->request_limit, S_LOG_MS,
                           "$relay.store from %s (%.8s): %zu frames are not "
                           "event frames; dropped",
                           zmesh_event_peer_name(request), requester,
                           malformed);
    }
    if (deferred > 0)
        zmesh__log(ZMESH_LOG_DEBUG,
                   "$relay.store from %s: %zu frames wait for the events "
                   "before them",
                   zmesh_event_peer_name(request), deferred);
    s_commit_all(self);
    s_confirms_prepare(self, &list);
    uint64_t oks = 0;
    // What does not fit one answer is left out: the publisher asks again.
    s_pack_confirms(&self->reply, list.items, 0, list.count,
                    self->max_msg_size - S_REPLY_ENVELOPE, &oks);
    self->confirmed += oks;
    s_confirms_clear(&list);
    free(list.items);
    s_reply(self, request, self->reply.data, self->reply.size);
}

/*  A consumer request's answer (relay_consumer.c built it in self->reply). */
static void
s_consumer_answered(zmesh__relay_t *self, const zmesh_event_t *request, int rc)
{
    if (rc == ZMESH_EPROTO) {
        self->bad_requests++;
        zmesh__log_limited(
            &self->request_limit, S_LOG_MS, "bad %s request from %s (%.8s)",
            zmesh_event_topic(request), zmesh_event_peer_name(request),
            zmesh_event_peer_id(request));
    }
    s_reply(self, request, self->reply.data, self->reply.size);
}

static void
s_on_request(zmesh__relay_t *self, const zmesh_event_t *request, int64_t now_ms)
{
    self->requests++;
    // What is served has been committed: under the always policy a reader
    // never sees a record a crash could take back.
    s_commit_all(self);
    const char *topic = zmesh_event_topic(request);
    size_t size = 0;
    const void *payload = zmesh_event_payload(request, &size);
    if (strcmp(topic, ZMESH__RELAY_READ_TOPIC) == 0)
        s_serve_read(self, request);
    else if (strcmp(topic, ZMESH__RELAY_INFO_TOPIC) == 0)
        s_serve_info(self, request);
    else if (strcmp(topic, ZMESH__RELAY_STORE_TOPIC) == 0)
        s_serve_store(self, request, now_ms);
    else if (strcmp(topic, ZMESH__RELAY_CONSUME_TOPIC) == 0)
        s_consumer_answered(self, request,
                            zmesh__relay_consumers_consume(
                                self->consumers, payload, size,
                                zmesh__wall_clock_us(), &self->reply));
    else if (strcmp(topic, ZMESH__RELAY_NEXT_TOPIC) == 0)
        s_consumer_answered(self, request,
                            zmesh__relay_consumers_next(
                                self->consumers, payload, size, &self->reply));
    else if (strcmp(topic, ZMESH__RELAY_ACK_TOPIC) == 0)
        s_consumer_answered(self, request,
                            zmesh__relay_consumers_ack(self->consumers, payload,
                                                       size, &self->reply));
    else {
        self->bad_requests++;
        char text[ZMESH_TOPIC_MAX + 160];
        snprintf(text, sizeof text,
                 "a relay answers $relay.read, $relay.info, $relay.store, "
                 "$relay.consume, $relay.next and $relay.ack, not '%s'",
                 topic);
        s_reply_error(self, request, "bad_request", text);
    }
}

/*  A direct message (req 0): acknowledgements of a durable consumer. */
static void
s_on_direct(zmesh__relay_t *self, const zmesh_event_t *event)
{
    if (strcmp(zmesh_event_topic(event), ZMESH__RELAY_ACK_TOPIC) != 0)
        return;
    size_t size = 0;
    const void *payload = zmesh_event_payload(event, &size);
    int rc = zmesh__relay_consumers_ack(self->consumers, payload, size, NULL);
    if (rc == ZMESH_EPROTO) {
        self->bad_requests++;
        zmesh__log_limited(&self->request_limit, S_LOG_MS,
                           "bad $relay.ack message from %s (%.8s)",
                           zmesh_event_peer_name(event),
                           zmesh_event_peer_id(event));
    }
}

static void
s_handle(zmesh__relay_t *self, const zmesh_event_t *event, int64_t now_ms)
{
    switch (zmesh_event_type(event)) {
    case ZMESH_EVENT_MESSAGE: s_on_message(self, event, now_ms); break;
    case ZMESH_EVENT_GAP: s_on_gap(self, event, now_ms); break;
    case ZMESH_EVENT_REQUEST: s_on_request(self, event, now_ms); break;
    case ZMESH_EVENT_DIRECT: s_on_direct(self, event); break;
    case ZMESH_EVENT_PEER_JOINED:
        // A publisher back after a timeout has its streams forgotten by
        // the agent; they go on from what is stored.
        s_resume(self, zmesh_event_peer_id(event));
        break;
    case ZMESH_EVENT_PEER_LEFT: {
        const char *reason = zmesh_event_reason(event);
        if (strcmp(reason, "bye") == 0 || strcmp(reason, "restarted") == 0)
            s_forget(self, zmesh_event_peer_id(event));
        break;
    }
    case ZMESH_EVENT_REPLY:
    case ZMESH_EVENT_CONFIRM:
    case ZMESH_EVENT_LOST: break;
    }
}

static void
s_housekeeping(zmesh__relay_t *self, int64_t now_ms)
{
    for (size_t i = 0; i < self->streams_count; i++) {
        s_stream_t *stream = &self->streams[i];
        if (zmesh__store_tick(stream->store, now_ms) < 0)
            stream->stats.commit_errors++;
    }
    zmesh__relay_consumers_tick(self->consumers, now_ms, false);
    if (now_ms < self->next_retention_ms)
        return;
    self->next_retention_ms = now_ms + S_RETENTION_MS;
    int64_t now_us = zmesh__wall_clock_us();
    for (size_t i = 0; i < self->streams_count; i++) {
        s_stream_t *stream = &self->streams[i];
        int rc = zmesh__store_retention(stream->store, now_us);
        if (rc > 0)
            zmesh__log(ZMESH_LOG_INFO,
                       "stream %s: retention deleted %d segment%s; it now "
                       "starts at relay seq %" PRIu64,
                       stream->name, rc, rc == 1 ? "" : "s",
                       zmesh__store_first_seq(stream->store));
        else if (rc < 0)
            zmesh__log_limited(&self->store_limit, S_LOG_MS,
                               "stream %s: retention cannot delete a "
                               "segment: %s",
                               stream->name,
                               strerror(zmesh__store_errno(stream->store)));
    }
}

int
zmesh__relay_step(zmesh__relay_t *self, int timeout_ms)
{
    if (!self || !self->started)
        return ZMESH_ESTATE;
    int64_t now = zmesh__clock_ms();
    int64_t until_housekeeping = self->next_retention_ms - now;
    int wait = timeout_ms;
    if (wait < 0 || until_housekeeping < wait)
        wait = until_housekeeping < 0 ? 0 : (int)until_housekeeping;
    const zmesh_event_t *event = NULL;
    int rc = zmesh_agent_recv(self->agent, wait, &event);
    int handled = 0;
    while (rc == 0) {
        now = zmesh__clock_ms();
        s_handle(self, event, now);
        if (++handled == S_PASS_MAX)
            break;
        rc = zmesh_agent_recv(self->agent, 0, &event);
    }
    s_commit_all(self);
    s_confirms_flush(self);
    s_housekeeping(self, zmesh__clock_ms());
    if (rc < 0 && rc != ZMESH_EAGAIN)
        return rc;
    return handled;
}

void
zmesh__relay_destroy(zmesh__relay_t **relay)
{
    if (!relay || !*relay)
        return;
    zmesh__relay_t *self = *relay;
    // The agent goes first: peers hear BYE, and nothing more arrives.
    zmesh_agent_destroy(&self->agent);
    // Consumers save their state into the stores, so before them.
    zmesh__relay_consumers_destroy(&self->consumers);
    s_confirms_clear(&self->confirms);
    free(self->confirms.items);
    for (size_t i = 0; i < self->streams_count; i++) {
        s_stream_t *stream = &self->streams[i];
        if (stream->store) {
            if (stream->dirty)
                zmesh__store_commit(stream->store);
            zmesh__log(ZMESH_LOG_INFO,
                       "stream %s: stored %" PRIu64 " events, %" PRIu64
                       " duplicates dropped, %" PRIu64 " gap records, %" PRIu64
                       " rejected",
                       stream->name, stream->stats.stored,
                       stream->stats.duplicates, stream->stats.gaps,
                       stream->stats.rejected);
        }
        zmesh__store_destroy(&stream->store);
        zhashx_destroy(&stream->last);
        for (size_t j = 0; j < stream->patterns_count; j++)
            free(stream->patterns[j]);
        free(stream->path);
    }
    free(self->streams);
    zhashx_destroy(&self->names);
    if (self->names_fd >= 0)
        close(self->names_fd);
    free(self->frame);
    msgpack_sbuffer_destroy(&self->reply);
    msgpack_sbuffer_destroy(&self->events);
    free(self->dir);
    free(self);
    *relay = NULL;
}

zmesh_agent_t *
zmesh__relay_agent(zmesh__relay_t *self)
{
    return self ? self->agent : NULL;
}

size_t
zmesh__relay_streams(const zmesh__relay_t *self)
{
    return self ? self->streams_count : 0;
}

void
zmesh__relay_stream_stats(const zmesh__relay_t *self, size_t i,
                          zmesh__relay_stream_stats_t *stats)
{
    assert(self && i < self->streams_count && stats);
    *stats = self->streams[i].stats;
}

zmesh__store_t *
zmesh__relay_stream_store(zmesh__relay_t *self, size_t i)
{
    assert(self && i < self->streams_count);
    return self->streams[i].store;
}
