/*  relay_consumer.c - a relay's durable consumers (proto/relay.md#durable-
    consumers). A consumer is a name with a filter and an ack floor in one
    stream; above the floor it keeps what is settled one by one (acks by
    relay sequence, live positions per (publisher, topic), delivery
    counts, what start "last" left out), and moves the floor over settled
    records after each request, examining a bounded number of records.
    State goes to the stream's consumer files (store.h) as the floor plus
    a msgpack blob, at most every 100 ms while it changes. The relay is
    never on the live path: this module only remembers how far a consumer
    got and hands out stored records. No agent, no network here.
*/
#include "relay_consumer.h"
#include "clock.h"
#include "codec.h"
#include "log.h"
#include "mpack.h"
#include "relay.h"
#include "topic.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Delivery counts kept per consumer, at most: records handed out and not
    yet acknowledged; beyond it deliveries are not counted (reported 1). */
#define S_DELIVERIES_MAX 20000
#define S_BLOB_VERSION 1
#define S_LOG_MS 5000
/*  Room in a $relay.next answer for all but the events and the names. */
#define S_NEXT_HEADER 2048
#define S_EVENT_OVERHEAD 40
/*  Records counted for "pending" in $relay.info, per consumer: info lists
    up to 256 consumers a stream, so it counts less than a request does. */
#define S_INFO_PENDING_MAX 10000
#define S_KEY_MAX (32 + 1 + ZMESH_TOPIC_MAX + 1)

/* ------------------------------------------------------------------------ */
/*  Pattern coverage                                                        */

/*  Next token of [*p, end): sets *tok, *tok_size, moves *p past its dot. */
static bool
s_token(const char **p, const char *end, const char **tok, size_t *tok_size)
{
    if (*p >= end)
        return false;
    const char *dot = memchr(*p, '.', (size_t)(end - *p));
    *tok = *p;
    *tok_size = dot ? (size_t)(dot - *p) : (size_t)(end - *p);
    *p = dot ? dot + 1 : end;
    return true;
}

static bool
s_is(const char *tok, size_t size, char c)
{
    return size == 1 && tok[0] == c;
}

bool
zmesh__relay_pattern_covers(const char *a, size_t a_size, const char *b,
                            size_t b_size)
{
    const char *pa = a, *pb = b, *a_end = a + a_size, *b_end = b + b_size;
    bool first = true;
    for (;;) {
        const char *ta, *tb;
        size_t na, nb;
        bool has_a = s_token(&pa, a_end, &ta, &na);
        bool has_b = s_token(&pb, b_end, &tb, &nb);
        if (!has_a || !has_b)
            return !has_a && !has_b;
        bool a_wild = s_is(ta, na, '*') || s_is(ta, na, '>');
        // A wildcard first token matches no '$' topic (as in matching).
        if (first && a_wild && nb > 0 && tb[0] == '$')
            return false;
        first = false;
        if (s_is(ta, na, '>'))
            return true; // b has a token here: one or more are left
        if (s_is(tb, nb, '>'))
            return false; // b matches any length; a a fixed one
        if (s_is(ta, na, '*'))
            continue;
        if (s_is(tb, nb, '*') || na != nb || memcmp(ta, tb, na) != 0)
            return false;
    }
}

/* ------------------------------------------------------------------------ */
/*  Request decoding                                                        */

__attribute__((format(printf, 3, 4))) static int
s_proto(char *err, size_t err_size, const char *format, ...)
{
    if (err && err_size > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(err, err_size, format, args);
        va_end(args);
    }
    return ZMESH_EPROTO;
}

/*  Unpacks one msgpack map of at most `max` bytes into `unpacked`. */
static int
s_unpack_map(const void *payload, size_t size, size_t max,
             msgpack_unpacked *unpacked, char *err, size_t err_size)
{
    if (!payload || size == 0)
        return s_proto(err, err_size, "the request is empty");
    if (size > max)
        return s_proto(err, err_size, "the request is larger than %zu bytes",
                       max);
    // Well-formedness first: msgpack-c would allocate for counts the
    // bytes cannot hold (codec.c says why).
    if (zmesh__msgpack_check(payload, size) != 0)
        return s_proto(err, err_size, "the request is not one msgpack object");
    msgpack_unpacked_init(unpacked);
    size_t offset = 0;
    if (msgpack_unpack_next(unpacked, payload, size, &offset) !=
            MSGPACK_UNPACK_SUCCESS ||
        offset != size) {
        msgpack_unpacked_destroy(unpacked);
        return s_proto(err, err_size, "the request is not one msgpack object");
    }
    if (unpacked->data.type != MSGPACK_OBJECT_MAP) {
        msgpack_unpacked_destroy(unpacked);
        return s_proto(err, err_size, "the request must be a map");
    }
    return 0;
}

/*  Which of `known` (at most 32) a key is, -1 for unknown; checks that
    keys are strings and known ones are not repeated. */
static int
s_which(const msgpack_object *key, const char *const *known, int count,
        unsigned *seen, char *err, size_t err_size)
{
    if (key->type != MSGPACK_OBJECT_STR) {
        s_proto(err, err_size, "request keys must be strings");
        return -2;
    }
    for (int k = 0; k < count; k++)
        if (zmesh__mp_key_is(key, known[k])) {
            if (*seen & (1u << k)) {
                s_proto(err, err_size, "key \"%s\" is given twice", known[k]);
                return -2;
            }
            *seen |= 1u << k;
            return k;
        }
    return -1; // later versions may add keys (proto/relay.md)
}

static bool
s_uint(const msgpack_object *value, uint64_t min, uint64_t max, uint64_t *out)
{
    if (value->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        value->via.u64 < min || value->via.u64 > max)
        return false;
    *out = value->via.u64;
    return true;
}

static bool
s_consumer_name(const msgpack_object *value, char *out)
{
    if (value->type != MSGPACK_OBJECT_STR ||
        value->via.str.size > ZMESH__STORE_CONSUMER_NAME_MAX)
        return false;
    memcpy(out, value->via.str.ptr, value->via.str.size);
    out[value->via.str.size] = '\0';
    return zmesh__store_consumer_name_ok(out);
}

static int
s_consume_fields(const msgpack_object_map *map, zmesh__relay_consume_t *c,
                 char *err, size_t err_size)
{
    static const char *const known[] = {
        "consumer", "pattern",     "stream",      "start",          "seq",
        "time",     "ack_wait_ms", "max_deliver", "max_ack_pending"};
    static const char *const starts[] = {"all", "new", "last", "seq", "time"};
    unsigned seen = 0;
    uint64_t number = 0;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *value = &map->ptr[i].val;
        int which = s_which(&map->ptr[i].key, known, 9, &seen, err, err_size);
        if (which == -2)
            return ZMESH_EPROTO;
        switch (which) {
        case 0:
            if (!s_consumer_name(value, c->consumer))
                return s_proto(err, err_size,
                               "\"consumer\" must be a name of 1 to 64 of "
                               "[A-Za-z0-9_.-]");
            break;
        case 1:
            if (value->type != MSGPACK_OBJECT_STR ||
                value->via.str.size > ZMESH_TOPIC_MAX ||
                zmesh__pattern_check(value->via.str.ptr, value->via.str.size) !=
                    0)
                return s_proto(err, err_size,
                               "\"pattern\" must be a topic pattern");
            memcpy(c->pattern, value->via.str.ptr, value->via.str.size);
            c->pattern[value->via.str.size] = '\0';
            break;
        case 2:
            if (!zmesh__mp_str_copy(value, c->stream, sizeof c->stream) ||
                !zmesh__relay_stream_name_ok(c->stream))
                return s_proto(err, err_size,
                               "\"stream\" must be a stream name");
            c->has_stream = true;
            break;
        case 3: {
            int found = -1;
            for (int s = 0; s < 5 && value->type == MSGPACK_OBJECT_STR; s++)
                if (zmesh__mp_key_is(value, starts[s]))
                    found = s;
            if (found < 0)
                return s_proto(err, err_size,
                               "\"start\" must be all, new, last, seq or "
                               "time");
            c->start = (zmesh__relay_start_t)found;
            break;
        }
        case 4:
            if (!s_uint(value, 0, UINT64_MAX, &c->seq))
                return s_proto(err, err_size,
                               "\"seq\" must be a relay sequence number");
            break;
        case 5:
            if (value->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
                c->time_us = value->via.i64;
            else if (s_uint(value, 0, INT64_MAX, &number))
                c->time_us = (int64_t)number;
            else
                return s_proto(err, err_size,
                               "\"time\" must be microseconds since the "
                               "epoch (an integer)");
            break;
        case 6:
            if (!s_uint(value, ZMESH__RELAY_ACK_WAIT_MIN,
                        ZMESH__RELAY_ACK_WAIT_MAX, &number))
                return s_proto(err, err_size,
                               "\"ack_wait_ms\" must be from 100 to 3600000");
            c->ack_wait_ms = (uint32_t)number;
            c->has_ack_wait = true;
            break;
        case 7:
            if (!s_uint(value, 0, ZMESH__RELAY_MAX_DELIVER_MAX, &number))
                return s_proto(err, err_size,
                               "\"max_deliver\" must be from 0 to 1000");
            c->max_deliver = (uint32_t)number;
            c->has_max_deliver = true;
            break;
        case 8:
            if (!s_uint(value, 1, ZMESH__RELAY_ACK_PENDING_MAX, &number))
                return s_proto(err, err_size,
                               "\"max_ack_pending\" must be from 1 to 10000");
            c->max_ack_pending = (uint32_t)number;
            c->has_max_ack_pending = true;
            break;
        default: break;
        }
    }
    if (!(seen & 1u))
        return s_proto(err, err_size, "\"consumer\" is missing");
    if (!(seen & 2u))
        return s_proto(err, err_size, "\"pattern\" is missing");
    bool has_seq = seen & (1u << 4), has_time = seen & (1u << 5);
    if ((c->start == ZMESH__RELAY_START_SEQ) != has_seq)
        return s_proto(err, err_size,
                       "\"seq\" goes with \"start\": \"seq\", and only then");
    if ((c->start == ZMESH__RELAY_START_TIME) != has_time)
        return s_proto(err, err_size,
                       "\"time\" goes with \"start\": \"time\", and only then");
    return 0;
}

int
zmesh__relay_consume_decode(const void *payload, size_t size,
                            zmesh__relay_consume_t *out, char *err,
                            size_t err_size)
{
    if (!out)
        return s_proto(err, err_size, "invalid argument");
    msgpack_unpacked unpacked;
    int rc = s_unpack_map(payload, size, ZMESH__RELAY_REQUEST_MAX, &unpacked,
                          err, err_size);
    if (rc != 0)
        return rc;
    zmesh__relay_consume_t result = {
        .ack_wait_ms = ZMESH__RELAY_ACK_WAIT_DEFAULT,
        .max_ack_pending = ZMESH__RELAY_ACK_PENDING_DEFAULT};
    rc = s_consume_fields(&unpacked.data.via.map, &result, err, err_size);
    msgpack_unpacked_destroy(&unpacked);
    if (rc == 0)
        *out = result;
    return rc;
}

int
zmesh__relay_next_decode(const void *payload, size_t size,
                         zmesh__relay_next_t *out, char *err, size_t err_size)
{
    if (!out)
        return s_proto(err, err_size, "invalid argument");
    msgpack_unpacked unpacked;
    int rc = s_unpack_map(payload, size, ZMESH__RELAY_REQUEST_MAX, &unpacked,
                          err, err_size);
    if (rc != 0)
        return rc;
    static const char *const known[] = {"consumer", "from", "max", "bytes"};
    zmesh__relay_next_t result = {.max = ZMESH__RELAY_READ_DEFAULT};
    const msgpack_object_map *map = &unpacked.data.via.map;
    unsigned seen = 0;
    uint64_t number = 0;
    for (uint32_t i = 0; i < map->size && rc == 0; i++) {
        const msgpack_object *value = &map->ptr[i].val;
        int which = s_which(&map->ptr[i].key, known, 4, &seen, err, err_size);
        if (which == -2)
            rc = ZMESH_EPROTO;
        else if (which == 0 && !s_consumer_name(value, result.consumer))
            rc = s_proto(err, err_size, "\"consumer\" must be a name");
        else if (which == 1) {
            if (!s_uint(value, 0, UINT64_MAX, &result.from))
                rc = s_proto(err, err_size,
                             "\"from\" must be a relay sequence number");
            result.has_from = true;
        } else if (which == 2) {
            if (!s_uint(value, 1, ZMESH__RELAY_READ_MAX, &number))
                rc = s_proto(err, err_size,
                             "\"max\" must be an integer from 1 to 1000");
            result.max = (uint32_t)number;
        } else if (which == 3 && !s_uint(value, ZMESH__RELAY_READ_BYTES_MIN,
                                         UINT64_MAX, &result.bytes))
            rc = s_proto(err, err_size,
                         "\"bytes\" must be an integer of at least 4096");
    }
    if (rc == 0 && !(seen & 1u))
        rc = s_proto(err, err_size, "\"consumer\" is missing");
    msgpack_unpacked_destroy(&unpacked);
    if (rc == 0)
        *out = result;
    return rc;
}

void
zmesh__relay_ack_clear(zmesh__relay_ack_t *ack)
{
    if (!ack)
        return;
    free(ack->acks);
    free(ack->live);
    memset(ack, 0, sizeof *ack);
}

static int
s_ack_live(const msgpack_object *item, zmesh__relay_live_t *live, char *err,
           size_t err_size)
{
    const msgpack_object *e = item->via.array.ptr;
    if (item->type != MSGPACK_OBJECT_ARRAY || item->via.array.size != 3 ||
        e[0].type != MSGPACK_OBJECT_BIN || e[0].via.bin.size != 16 ||
        e[1].type != MSGPACK_OBJECT_STR ||
        e[1].via.str.size > ZMESH_TOPIC_MAX ||
        zmesh__topic_check(e[1].via.str.ptr, e[1].via.str.size) ==
            ZMESH_ETOPIC ||
        !s_uint(&e[2], 1, UINT64_MAX, &live->seq))
        return s_proto(err, err_size,
                       "\"live\" items must be [publisher bin 16, topic, "
                       "seq]");
    memcpy(live->publisher, e[0].via.bin.ptr, 16);
    memcpy(live->topic, e[1].via.str.ptr, e[1].via.str.size);
    live->topic[e[1].via.str.size] = '\0';
    return 0;
}

static int
s_ack_fields(const msgpack_object_map *map, zmesh__relay_ack_t *ack, char *err,
             size_t err_size)
{
    static const char *const known[] = {"consumer", "acks", "live"};
    unsigned seen = 0;
    size_t items = 0;
    for (uint32_t i = 0; i < map->size; i++) {
        const msgpack_object *value = &map->ptr[i].val;
        int which = s_which(&map->ptr[i].key, known, 3, &seen, err, err_size);
        if (which == -2)
            return ZMESH_EPROTO;
        if (which == 0 && !s_consumer_name(value, ack->consumer))
            return s_proto(err, err_size, "\"consumer\" must be a name");
        if (which < 1)
            continue;
        if (value->type != MSGPACK_OBJECT_ARRAY)
            return s_proto(err, err_size, "\"%s\" must be an array",
                           known[which]);
        uint32_t n = value->via.array.size;
        items += n;
        if (items > ZMESH__RELAY_ACK_ITEMS_MAX)
            return s_proto(err, err_size,
                           "more than 10000 acknowledgements in one request");
        if (n == 0)
            continue;
        if (which == 1) {
            ack->acks = malloc(n * sizeof *ack->acks);
            if (!ack->acks)
                return ZMESH_ENOMEM;
            for (uint32_t j = 0; j < n; j++)
                if (!s_uint(&value->via.array.ptr[j], 0, UINT64_MAX,
                            &ack->acks[ack->acks_count++]))
                    return s_proto(err, err_size,
                                   "\"acks\" must be relay sequence numbers");
        } else {
            ack->live = malloc(n * sizeof *ack->live);
            if (!ack->live)
                return ZMESH_ENOMEM;
            for (uint32_t j = 0; j < n; j++) {
                int rc = s_ack_live(&value->via.array.ptr[j],
                                    &ack->live[ack->live_count], err, err_size);
                if (rc != 0)
                    return rc;
                ack->live_count++;
            }
        }
    }
    if (!(seen & 1u))
        return s_proto(err, err_size, "\"consumer\" is missing");
    return 0;
}

int
zmesh__relay_ack_decode(const void *payload, size_t size, size_t max_size,
                        zmesh__relay_ack_t *out, char *err, size_t err_size)
{
    if (!out)
        return s_proto(err, err_size, "invalid argument");
    memset(out, 0, sizeof *out);
    msgpack_unpacked unpacked;
    int rc = s_unpack_map(payload, size, max_size, &unpacked, err, err_size);
    if (rc != 0)
        return rc;
    rc = s_ack_fields(&unpacked.data.via.map, out, err, err_size);
    msgpack_unpacked_destroy(&unpacked);
    if (rc != 0)
        zmesh__relay_ack_clear(out);
    return rc;
}

/* ------------------------------------------------------------------------ */
/*  Consumer state                                                          */

typedef struct {
    uint64_t rseq;
    uint32_t count;
} s_delivery_t;

typedef struct {
    uint64_t seq;
    uint64_t stamp; /* when last moved: the least recent is dropped */
    char key[S_KEY_MAX];
} s_live_t;

typedef struct {
    char name[ZMESH__STORE_CONSUMER_NAME_MAX + 1];
    size_t stream;
    bool unusable; /* its files could not be read: out of service */
    char pattern[ZMESH_TOPIC_MAX + 1];
    size_t pattern_size;
    uint32_t ack_wait_ms, max_deliver, max_ack_pending;
    uint64_t floor;
    uint64_t *acked; /* sorted, above the floor */
    size_t acked_count, acked_cap;
    s_delivery_t *deliveries; /* sorted by rseq, above the floor */
    size_t deliveries_count, deliveries_cap;
    zhashx_t *live; /* "<hex> <topic>" -> s_live_t */
    uint64_t live_clock;
    uint64_t last_cut;  /* start "last": records up to it left out ... */
    uint64_t *last_set; /* ... but these, sorted */
    size_t last_count;
    uint64_t delivered, acks; /* since the relay started */
    uint64_t acks_dropped;
    int64_t attached_us;
    bool dirty;
    int64_t saved_ms;
    int64_t walked_ms; /* the floor's last walk from a tick */
} s_consumer_t;

typedef struct {
    char name[ZMESH__RELAY_STREAM_NAME_MAX + 1];
    char **patterns;
    size_t patterns_count;
    zmesh__store_t *store;
} s_stream_t;

struct zmesh__relay_consumers {
    s_stream_t streams[ZMESH__RELAY_STREAMS_MAX];
    size_t streams_count;
    s_consumer_t **list;
    size_t count;
    size_t answer_limit;
    zmesh__relay_name_fn *names;
    void *names_arg;
    msgpack_sbuffer blob;
    zmesh__log_limit_t log_limit;
};

static void
s_live_free(void **item)
{
    free(*item);
    *item = NULL;
}

static s_consumer_t *
s_consumer_new(const char *name, size_t stream)
{
    s_consumer_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->live = zhashx_new();
    if (!c->live) {
        free(c);
        return NULL;
    }
    zhashx_set_destructor(c->live, s_live_free);
    snprintf(c->name, sizeof c->name, "%s", name);
    c->stream = stream;
    c->ack_wait_ms = ZMESH__RELAY_ACK_WAIT_DEFAULT;
    c->max_ack_pending = ZMESH__RELAY_ACK_PENDING_DEFAULT;
    return c;
}

static void
s_consumer_destroy(s_consumer_t **p)
{
    s_consumer_t *c = *p;
    if (!c)
        return;
    free(c->acked);
    free(c->deliveries);
    free(c->last_set);
    zhashx_destroy(&c->live);
    free(c);
    *p = NULL;
}

/*  Index of the first element >= value in a sorted array. */
static size_t
s_lower(const uint64_t *list, size_t count, uint64_t value)
{
    size_t lo = 0, hi = count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (list[mid] < value)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static bool
s_has(const uint64_t *list, size_t count, uint64_t value)
{
    size_t at = s_lower(list, count, value);
    return at < count && list[at] == value;
}

static size_t
s_delivery_at(const s_consumer_t *c, uint64_t rseq)
{
    size_t lo = 0, hi = c->deliveries_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c->deliveries[mid].rseq < rseq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static uint32_t
s_deliveries(const s_consumer_t *c, uint64_t rseq)
{
    size_t at = s_delivery_at(c, rseq);
    return at < c->deliveries_count && c->deliveries[at].rseq == rseq
               ? c->deliveries[at].count
               : 0;
}

/*  Counts one more delivery of rseq; returns the count (1 when the table
    is full and rseq is not in it). */
static uint32_t
s_deliver(s_consumer_t *c, uint64_t rseq)
{
    size_t at = s_delivery_at(c, rseq);
    if (at < c->deliveries_count && c->deliveries[at].rseq == rseq)
        return ++c->deliveries[at].count;
    if (c->deliveries_count == S_DELIVERIES_MAX)
        return 1;
    if (c->deliveries_count == c->deliveries_cap) {
        size_t cap = c->deliveries_cap ? c->deliveries_cap * 2 : 64;
        s_delivery_t *grown = realloc(c->deliveries, cap * sizeof *grown);
        if (!grown)
            return 1;
        c->deliveries = grown;
        c->deliveries_cap = cap;
    }
    memmove(c->deliveries + at + 1, c->deliveries + at,
            (c->deliveries_count - at) * sizeof *c->deliveries);
    c->deliveries[at] = (s_delivery_t){rseq, 1};
    c->deliveries_count++;
    return 1;
}

/*  Adds rseq to the acknowledged set; false when the set is full. */
static bool
s_ack_add(s_consumer_t *c, uint64_t rseq)
{
    size_t at = s_lower(c->acked, c->acked_count, rseq);
    if (at < c->acked_count && c->acked[at] == rseq)
        return true;
    if (c->acked_count >= c->max_ack_pending)
        return false;
    if (c->acked_count == c->acked_cap) {
        size_t cap = c->acked_cap ? c->acked_cap * 2 : 64;
        uint64_t *grown = realloc(c->acked, cap * sizeof *grown);
        if (!grown)
            return false;
        c->acked = grown;
        c->acked_cap = cap;
    }
    memmove(c->acked + at + 1, c->acked + at,
            (c->acked_count - at) * sizeof *c->acked);
    c->acked[at] = rseq;
    c->acked_count++;
    return true;
}

static void
s_live_key(char out[S_KEY_MAX], const uint8_t id[16], const char *topic,
           size_t topic_size)
{
    zmesh__id_to_hex(id, out);
    out[32] = ' ';
    memcpy(out + 33, topic, topic_size);
    out[33 + topic_size] = '\0';
}

/*  Moves a live position up (never down); drops the least recently moved
    one when 1024 are kept. */
static void
s_live_set(s_consumer_t *c, const char *key, uint64_t seq)
{
    s_live_t *entry = zhashx_lookup(c->live, key);
    if (entry) {
        if (seq > entry->seq) {
            entry->seq = seq;
            entry->stamp = ++c->live_clock;
        }
        return;
    }
    if (zhashx_size(c->live) >= ZMESH__RELAY_LIVE_MAX) {
        const char *oldest = NULL;
        uint64_t stamp = UINT64_MAX;
        for (s_live_t *e = zhashx_first(c->live); e; e = zhashx_next(c->live))
            if (e->stamp < stamp) {
                stamp = e->stamp;
                oldest = zhashx_cursor(c->live);
            }
        if (oldest) {
            char copy[S_KEY_MAX];
            snprintf(copy, sizeof copy, "%s", oldest);
            zhashx_delete(c->live, copy);
        }
    }
    entry = malloc(sizeof *entry);
    if (!entry)
        return;
    entry->seq = seq;
    entry->stamp = ++c->live_clock;
    snprintf(entry->key, sizeof entry->key, "%s", key);
    if (zhashx_insert(c->live, key, entry) != 0)
        free(entry);
}

/*  proto/relay.md#consumer-state: a record is settled when it does not
    match the filter, is acknowledged (by rseq or a live position),
    was handed out max_deliver times, or start "last" left it out. A
    record that is not an event frame cannot match: settled. */
static bool
s_settled(const s_consumer_t *c, const zmesh__store_record_t *record)
{
    zmesh__frame_t frame;
    if (zmesh__frame_decode(record->body, record->size, &frame) != 0 ||
        zmesh__topic_check(frame.topic, frame.topic_size) == ZMESH_ETOPIC)
        return true;
    if (!zmesh__pattern_match(c->pattern, c->pattern_size, frame.topic,
                              frame.topic_size))
        return true;
    if (s_has(c->acked, c->acked_count, record->seq))
        return true;
    if (c->max_deliver && s_deliveries(c, record->seq) >= c->max_deliver)
        return true;
    if (record->seq <= c->last_cut &&
        !s_has(c->last_set, c->last_count, record->seq))
        return true;
    if (zhashx_size(c->live) > 0) {
        char key[S_KEY_MAX];
        s_live_key(key, frame.publisher, frame.topic, frame.topic_size);
        const s_live_t *entry = zhashx_lookup(c->live, key);
        if (entry) {
            uint64_t upto = frame.sequence;
            if (record->flags & ZMESH__RELAY_FLAG_GAP) {
                uint64_t last =
                    zmesh__relay_gap_last(frame.payload, frame.payload_size);
                if (last > upto)
                    upto = last;
            }
            if (entry->seq >= upto)
                return true;
        }
    }
    return false;
}

/*  Drops the first n of `count` elements of size `size` at `list` (which
    may be NULL when empty: memmove wants real pointers). */
static size_t
s_drop(void *list, size_t count, size_t n, size_t size)
{
    if (n > 0 && n < count)
        memmove(list, (char *)list + n * size, (count - n) * size);
    return count - n;
}

/*  Forgets what the floor has passed. */
static void
s_prune(s_consumer_t *c)
{
    size_t n = s_lower(c->acked, c->acked_count, c->floor + 1);
    c->acked_count = s_drop(c->acked, c->acked_count, n, sizeof *c->acked);
    n = s_delivery_at(c, c->floor + 1);
    c->deliveries_count =
        s_drop(c->deliveries, c->deliveries_count, n, sizeof *c->deliveries);
    if (c->last_cut && c->last_cut <= c->floor) {
        free(c->last_set);
        c->last_set = NULL;
        c->last_count = 0;
        c->last_cut = 0;
    } else {
        n = s_lower(c->last_set, c->last_count, c->floor + 1);
        c->last_count =
            s_drop(c->last_set, c->last_count, n, sizeof *c->last_set);
    }
}

static void
s_touch(s_consumer_t *c)
{
    c->dirty = true;
}

/*  Moves the floor over settled records, examining at most
    ZMESH__RELAY_WALK_MAX. Records below the store's first (retention)
    are left for $relay.next to report as lost. */
static void
s_walk(zmesh__relay_consumers_t *self, s_consumer_t *c)
{
    zmesh__store_t *store = self->streams[c->stream].store;
    uint64_t first = zmesh__store_first_seq(store);
    uint64_t last = zmesh__store_last_seq(store);
    if (c->floor + 1 < first || c->floor >= last)
        return;
    zmesh__store_iter_t *iter = NULL;
    if (zmesh__store_iter_new(store, c->floor + 1, &iter) != 0)
        return;
    uint64_t start = c->floor;
    for (uint32_t examined = 0; examined < ZMESH__RELAY_WALK_MAX; examined++) {
        zmesh__store_record_t record;
        int rc = zmesh__store_iter_next(iter, &record);
        if (rc == ZMESH_EPROTO) {
            c->floor = record.seq; // never served: nothing to wait for
            continue;
        }
        if (rc != 0 || !s_settled(c, &record))
            break;
        c->floor = record.seq;
    }
    zmesh__store_iter_destroy(&iter);
    if (c->floor != start) {
        s_prune(c);
        s_touch(c);
    }
}

/*  Records above the floor that match and are not settled, up to last,
    over at most `bound` records. */
static uint64_t
s_pending(zmesh__relay_consumers_t *self, const s_consumer_t *c, uint32_t bound)
{
    zmesh__store_t *store = self->streams[c->stream].store;
    if (c->floor >= zmesh__store_last_seq(store))
        return 0;
    zmesh__store_iter_t *iter = NULL;
    if (zmesh__store_iter_new(store, c->floor + 1, &iter) != 0)
        return 0;
    uint64_t pending = 0;
    for (uint32_t examined = 0; examined < bound; examined++) {
        zmesh__store_record_t record;
        int rc = zmesh__store_iter_next(iter, &record);
        if (rc == ZMESH_EPROTO)
            continue;
        if (rc != 0)
            break;
        if (!s_settled(c, &record))
            pending++;
    }
    zmesh__store_iter_destroy(&iter);
    return pending;
}

/* ------------------------------------------------------------------------ */
/*  The blob: msgpack of everything but the floor                           */

static int
s_by_stamp(const void *a, const void *b)
{
    const s_live_t *x = *(s_live_t *const *)a, *y = *(s_live_t *const *)b;
    return (x->stamp > y->stamp) - (x->stamp < y->stamp);
}

/*  {"v", "pattern", "ack_wait_ms", "max_deliver", "max_ack_pending",
    "acked": [rseq], "deliveries": [[rseq, n]], "live": [[id bin16, topic,
    seq]] least recent first, "last_cut", "last_set": [rseq]} */
static int
s_blob_encode(const s_consumer_t *c, msgpack_sbuffer *out)
{
    msgpack_sbuffer_clear(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 10);
    zmesh__mp_pack_u64(&pk, "v", S_BLOB_VERSION);
    zmesh__mp_pack_str(&pk, "pattern");
    zmesh__mp_pack_str(&pk, c->pattern);
    zmesh__mp_pack_u64(&pk, "ack_wait_ms", c->ack_wait_ms);
    zmesh__mp_pack_u64(&pk, "max_deliver", c->max_deliver);
    zmesh__mp_pack_u64(&pk, "max_ack_pending", c->max_ack_pending);
    zmesh__mp_pack_str(&pk, "acked");
    msgpack_pack_array(&pk, c->acked_count);
    for (size_t i = 0; i < c->acked_count; i++)
        msgpack_pack_uint64(&pk, c->acked[i]);
    zmesh__mp_pack_str(&pk, "deliveries");
    msgpack_pack_array(&pk, c->deliveries_count);
    for (size_t i = 0; i < c->deliveries_count; i++) {
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint64(&pk, c->deliveries[i].rseq);
        msgpack_pack_uint32(&pk, c->deliveries[i].count);
    }
    // Least recent first, so a load gives them the same order.
    size_t n = zhashx_size(c->live), at = 0;
    s_live_t **order = n ? malloc(n * sizeof *order) : NULL;
    if (n && !order)
        return ZMESH_ENOMEM;
    for (s_live_t *e = zhashx_first(c->live); e; e = zhashx_next(c->live))
        order[at++] = e;
    if (n)
        qsort(order, n, sizeof *order, s_by_stamp);
    zmesh__mp_pack_str(&pk, "live");
    msgpack_pack_array(&pk, n);
    for (size_t i = 0; i < n; i++) {
        char hex[33];
        uint8_t id[16] = {0};
        memcpy(hex, order[i]->key, 32);
        hex[32] = '\0';
        zmesh__id_from_hex(hex, id);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_bin(&pk, 16);
        msgpack_pack_bin_body(&pk, id, 16);
        zmesh__mp_pack_str(&pk, order[i]->key + 33);
        msgpack_pack_uint64(&pk, order[i]->seq);
    }
    free(order);
    zmesh__mp_pack_u64(&pk, "last_cut", c->last_cut);
    zmesh__mp_pack_str(&pk, "last_set");
    msgpack_pack_array(&pk, c->last_count);
    for (size_t i = 0; i < c->last_count; i++)
        msgpack_pack_uint64(&pk, c->last_set[i]);
    return out->size <= ZMESH__STORE_CONSUMER_BLOB_MAX ? 0 : ZMESH_ETOOBIG;
}

static int
s_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/*  A sorted, duplicate-free list of uints from an array of at most max. */
static int
s_blob_list(const msgpack_object *value, size_t max, uint64_t **list,
            size_t *count)
{
    if (value->type != MSGPACK_OBJECT_ARRAY || value->via.array.size > max)
        return ZMESH_EPROTO;
    size_t n = value->via.array.size;
    uint64_t *items = n ? malloc(n * sizeof *items) : NULL;
    if (n && !items)
        return ZMESH_ENOMEM;
    for (size_t i = 0; i < n; i++)
        if (!s_uint(&value->via.array.ptr[i], 1, UINT64_MAX, &items[i])) {
            free(items);
            return ZMESH_EPROTO;
        }
    if (n)
        qsort(items, n, sizeof *items, s_u64_cmp);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (kept == 0 || items[kept - 1] != items[i])
            items[kept++] = items[i];
    free(*list);
    *list = items;
    *count = kept;
    return 0;
}

static int
s_blob_deliveries(s_consumer_t *c, const msgpack_object *value)
{
    if (value->type != MSGPACK_OBJECT_ARRAY ||
        value->via.array.size > S_DELIVERIES_MAX)
        return ZMESH_EPROTO;
    for (uint32_t i = 0; i < value->via.array.size; i++) {
        const msgpack_object *item = &value->via.array.ptr[i];
        uint64_t rseq, count;
        if (item->type != MSGPACK_OBJECT_ARRAY || item->via.array.size != 2 ||
            !s_uint(&item->via.array.ptr[0], 1, UINT64_MAX, &rseq) ||
            !s_uint(&item->via.array.ptr[1], 1, UINT32_MAX, &count))
            return ZMESH_EPROTO;
        s_deliver(c, rseq);
        size_t at = s_delivery_at(c, rseq);
        if (at < c->deliveries_count && c->deliveries[at].rseq == rseq)
            c->deliveries[at].count = (uint32_t)count;
    }
    return 0;
}

static int
s_blob_live(s_consumer_t *c, const msgpack_object *value)
{
    if (value->type != MSGPACK_OBJECT_ARRAY ||
        value->via.array.size > ZMESH__RELAY_LIVE_MAX)
        return ZMESH_EPROTO;
    for (uint32_t i = 0; i < value->via.array.size; i++) {
        zmesh__relay_live_t live;
        if (s_ack_live(&value->via.array.ptr[i], &live, NULL, 0) != 0)
            return ZMESH_EPROTO;
        char key[S_KEY_MAX];
        s_live_key(key, live.publisher, live.topic, strlen(live.topic));
        s_live_set(c, key, live.seq);
    }
    return 0;
}

static int
s_blob_decode(s_consumer_t *c, const void *blob, size_t size)
{
    msgpack_unpacked unpacked;
    if (s_unpack_map(blob, size, ZMESH__STORE_CONSUMER_BLOB_MAX, &unpacked,
                     NULL, 0) != 0)
        return ZMESH_EPROTO;
    static const char *const known[] = {
        "v",     "pattern",    "ack_wait_ms", "max_deliver", "max_ack_pending",
        "acked", "deliveries", "live",        "last_cut",    "last_set"};
    const msgpack_object_map *map = &unpacked.data.via.map;
    unsigned seen = 0;
    int rc = 0;
    uint64_t number = 0;
    for (uint32_t i = 0; i < map->size && rc == 0; i++) {
        const msgpack_object *v = &map->ptr[i].val;
        int which = s_which(&map->ptr[i].key, known, 10, &seen, NULL, 0);
        switch (which) {
        case -2: rc = ZMESH_EPROTO; break;
        case 0:
            if (!s_uint(v, S_BLOB_VERSION, S_BLOB_VERSION, &number))
                rc = ZMESH_EPROTO;
            break;
        case 1:
            if (v->type != MSGPACK_OBJECT_STR ||
                v->via.str.size > ZMESH_TOPIC_MAX ||
                zmesh__pattern_check(v->via.str.ptr, v->via.str.size) != 0) {
                rc = ZMESH_EPROTO;
                break;
            }
            memcpy(c->pattern, v->via.str.ptr, v->via.str.size);
            c->pattern[v->via.str.size] = '\0';
            c->pattern_size = v->via.str.size;
            break;
        case 2:
            if (!s_uint(v, ZMESH__RELAY_ACK_WAIT_MIN, ZMESH__RELAY_ACK_WAIT_MAX,
                        &number))
                rc = ZMESH_EPROTO;
            c->ack_wait_ms = (uint32_t)number;
            break;
        case 3:
            if (!s_uint(v, 0, ZMESH__RELAY_MAX_DELIVER_MAX, &number))
                rc = ZMESH_EPROTO;
            c->max_deliver = (uint32_t)number;
            break;
        case 4:
            if (!s_uint(v, 1, ZMESH__RELAY_ACK_PENDING_MAX, &number))
                rc = ZMESH_EPROTO;
            c->max_ack_pending = (uint32_t)number;
            break;
        case 5:
            rc = s_blob_list(v, ZMESH__RELAY_ACK_PENDING_MAX, &c->acked,
                             &c->acked_count);
            c->acked_cap = c->acked_count;
            break;
        case 6: rc = s_blob_deliveries(c, v); break;
        case 7: rc = s_blob_live(c, v); break;
        case 8:
            if (!s_uint(v, 0, UINT64_MAX, &c->last_cut))
                rc = ZMESH_EPROTO;
            break;
        case 9:
            rc = s_blob_list(v, ZMESH__RELAY_LAST_TOPICS_MAX, &c->last_set,
                             &c->last_count);
            break;
        default: break;
        }
    }
    msgpack_unpacked_destroy(&unpacked);
    if (rc == 0 && (seen & 3u) != 3u)
        rc = ZMESH_EPROTO; // version and pattern are required
    if (rc == 0 && c->acked_count > c->max_ack_pending)
        c->max_ack_pending = (uint32_t)c->acked_count;
    return rc;
}

int
zmesh__relay_consumer_blob_check(const void *blob, size_t size)
{
    s_consumer_t *c = s_consumer_new("check", 0);
    if (!c)
        return ZMESH_ENOMEM;
    msgpack_sbuffer first, second;
    msgpack_sbuffer_init(&first);
    msgpack_sbuffer_init(&second);
    int rc = s_blob_decode(c, blob, size);
    if (rc == 0 && s_blob_encode(c, &first) == 0) {
        s_consumer_t *again = s_consumer_new("check", 0);
        if (!again)
            rc = ZMESH_ENOMEM;
        else if (s_blob_decode(again, first.data, first.size) != 0 ||
                 s_blob_encode(again, &second) != 0 ||
                 first.size != second.size ||
                 memcmp(first.data, second.data, first.size) != 0)
            abort(); // what we encode must decode to the same state
        s_consumer_destroy(&again);
    } else if (rc == 0)
        rc = ZMESH_EPROTO;
    msgpack_sbuffer_destroy(&first);
    msgpack_sbuffer_destroy(&second);
    s_consumer_destroy(&c);
    return rc;
}

/* ------------------------------------------------------------------------ */
/*  The set                                                                 */

int
zmesh__relay_consumers_new(zmesh__relay_consumers_t **self, size_t answer_limit,
                           zmesh__relay_name_fn *names, void *names_arg)
{
    if (!self)
        return ZMESH_EINVAL;
    zmesh__relay_consumers_t *s = calloc(1, sizeof *s);
    if (!s)
        return ZMESH_ENOMEM;
    s->answer_limit = answer_limit < 8192 ? 8192 : answer_limit;
    s->names = names;
    s->names_arg = names_arg;
    msgpack_sbuffer_init(&s->blob);
    *self = s;
    return 0;
}

static int
s_save(zmesh__relay_consumers_t *self, s_consumer_t *c, int64_t now_ms)
{
    int rc = s_blob_encode(c, &self->blob);
    if (rc == 0)
        rc = zmesh__store_consumer_save(self->streams[c->stream].store, c->name,
                                        c->floor, self->blob.data,
                                        self->blob.size);
    c->saved_ms = now_ms;
    if (rc != 0) {
        zmesh__log_limited(&self->log_limit, S_LOG_MS,
                           "stream %s: cannot save consumer %s: %s; trying "
                           "again",
                           self->streams[c->stream].name, c->name,
                           zmesh_strerror(rc));
        return rc;
    }
    c->dirty = false;
    return 0;
}

int
zmesh__relay_consumers_tick(zmesh__relay_consumers_t *self, int64_t now_ms,
                            bool force)
{
    if (!self)
        return 0;
    int saved = 0;
    for (size_t i = 0; i < self->count; i++) {
        s_consumer_t *c = self->list[i];
        if (c->unusable)
            continue;
        // A consumer acknowledges live positions as it hands events out,
        // often before the relay has stored them, and such records only
        // settle once stored: without a walk now and then, the floor (and
        // the lag $relay.info shows) would wait for its next request. Not
        // when forced (at exit): then only what changed is saved, and the
        // stores are not read.
        if (!force && now_ms - c->walked_ms >= ZMESH__RELAY_SAVE_MS) {
            c->walked_ms = now_ms;
            s_walk(self, c);
        }
        if (!c->dirty)
            continue;
        if (!force && now_ms - c->saved_ms < ZMESH__RELAY_SAVE_MS)
            continue;
        if (s_save(self, c, now_ms) == 0)
            saved++;
    }
    return saved;
}

void
zmesh__relay_consumers_destroy(zmesh__relay_consumers_t **self)
{
    if (!self || !*self)
        return;
    zmesh__relay_consumers_t *s = *self;
    zmesh__relay_consumers_tick(s, zmesh__clock_ms(), true);
    for (size_t i = 0; i < s->count; i++)
        s_consumer_destroy(&s->list[i]);
    free(s->list);
    for (size_t i = 0; i < s->streams_count; i++) {
        for (size_t j = 0; j < s->streams[i].patterns_count; j++)
            free(s->streams[i].patterns[j]);
        free(s->streams[i].patterns);
    }
    msgpack_sbuffer_destroy(&s->blob);
    free(s);
    *self = NULL;
}

static s_consumer_t *
s_find(const zmesh__relay_consumers_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->list[i]->name, name) == 0)
            return self->list[i];
    return NULL;
}

static size_t
s_stream_count(const zmesh__relay_consumers_t *self, size_t stream)
{
    size_t n = 0;
    for (size_t i = 0; i < self->count; i++)
        n += self->list[i]->stream == stream;
    return n;
}

static int
s_list_add(zmesh__relay_consumers_t *self, s_consumer_t *c)
{
    s_consumer_t **grown =
        realloc(self->list, (self->count + 1) * sizeof *self->list);
    if (!grown)
        return ZMESH_ENOMEM;
    self->list = grown;
    self->list[self->count++] = c;
    return 0;
}

typedef struct {
    zmesh__relay_consumers_t *self;
    size_t stream;
    uint8_t *blob;
    int loaded;
    int rc;
} s_load_t;

static int
s_load_one(void *arg, const char *name)
{
    s_load_t *load = arg;
    zmesh__relay_consumers_t *self = load->self;
    const char *stream = self->streams[load->stream].name;
    if (s_find(self, name)) {
        zmesh__log(ZMESH_LOG_WARNING,
                   "stream %s: consumer %s is also kept by another stream; "
                   "names are unique per relay, so this copy is ignored",
                   stream, name);
        return 0;
    }
    if (s_stream_count(self, load->stream) >= ZMESH__RELAY_CONSUMERS_MAX) {
        zmesh__log(ZMESH_LOG_WARNING,
                   "stream %s: more than %d consumers; %s is ignored", stream,
                   ZMESH__RELAY_CONSUMERS_MAX, name);
        return 0;
    }
    s_consumer_t *c = s_consumer_new(name, load->stream);
    if (!c) {
        load->rc = ZMESH_ENOMEM;
        return 1;
    }
    uint64_t floor = 0;
    size_t size = 0;
    int rc = zmesh__store_consumer_load(self->streams[load->stream].store, name,
                                        &floor, load->blob,
                                        ZMESH__STORE_CONSUMER_BLOB_MAX, &size);
    if (rc >= 0)
        rc = s_blob_decode(c, load->blob, size);
    if (rc < 0) {
        // Out of service rather than reset: starting it afresh could skip
        // records (start "new") or a guess could lose acknowledgements.
        zmesh__log(ZMESH_LOG_ERROR,
                   "stream %s: the state of consumer %s cannot be read (%s); "
                   "it is out of service until its files %s.cursor* are "
                   "removed from the stream's directory",
                   stream, name, zmesh_strerror(rc), name);
        c->unusable = true;
    } else {
        c->floor = floor;
        s_prune(c);
        load->loaded++;
    }
    if (s_list_add(self, c) != 0) {
        s_consumer_destroy(&c);
        load->rc = ZMESH_ENOMEM;
        return 1;
    }
    return 0;
}

int
zmesh__relay_consumers_add_stream(zmesh__relay_consumers_t *self,
                                  const char *name, const char *const *patterns,
                                  size_t patterns_count, zmesh__store_t *store)
{
    if (!self || !name || !store || (!patterns && patterns_count))
        return ZMESH_EINVAL;
    if (self->streams_count == ZMESH__RELAY_STREAMS_MAX)
        return ZMESH_ETOOBIG;
    s_stream_t *stream = &self->streams[self->streams_count];
    memset(stream, 0, sizeof *stream);
    snprintf(stream->name, sizeof stream->name, "%s", name);
    stream->store = store;
    stream->patterns =
        calloc(patterns_count ? patterns_count : 1, sizeof *stream->patterns);
    if (!stream->patterns)
        return ZMESH_ENOMEM;
    for (size_t i = 0; i < patterns_count; i++) {
        if (!(stream->patterns[i] = strdup(patterns[i]))) {
            for (size_t j = 0; j < i; j++)
                free(stream->patterns[j]);
            free(stream->patterns);
            return ZMESH_ENOMEM;
        }
    }
    stream->patterns_count = patterns_count;
    s_load_t load = {.self = self, .stream = self->streams_count};
    self->streams_count++;
    load.blob = malloc(ZMESH__STORE_CONSUMER_BLOB_MAX);
    if (!load.blob)
        return ZMESH_ENOMEM;
    int calls = zmesh__store_consumers(store, s_load_one, &load);
    free(load.blob);
    if (load.rc != 0)
        return load.rc;
    if (calls < 0)
        zmesh__log(ZMESH_LOG_WARNING,
                   "stream %s: cannot list its consumers: %s", name,
                   zmesh_strerror(calls));
    return load.loaded;
}

/* ------------------------------------------------------------------------ */
/*  Answers                                                                 */

static int
s_error(msgpack_sbuffer *out, const char *code, const char *text)
{
    msgpack_sbuffer_clear(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    zmesh__mp_pack_str(&pk, "error");
    zmesh__mp_pack_str(&pk, text);
    zmesh__mp_pack_str(&pk, "code");
    zmesh__mp_pack_str(&pk, code);
    if (strcmp(code, "bad_request") == 0)
        return ZMESH_EPROTO;
    if (strcmp(code, "not_found") == 0)
        return ZMESH_ENOTFOUND;
    if (strcmp(code, "full") == 0)
        return ZMESH_EFULL;
    if (strcmp(code, "conflict") == 0)
        return ZMESH_ESTATE;
    return ZMESH_ESYS;
}

/*  The consumer named in a request, or an error answer. */
static s_consumer_t *
s_named(zmesh__relay_consumers_t *self, const char *name, msgpack_sbuffer *out,
        int *rc)
{
    s_consumer_t *c = s_find(self, name);
    char text[160];
    if (!c) {
        snprintf(text, sizeof text,
                 "no consumer '%s' here: create it with $relay.consume", name);
        *rc = out ? s_error(out, "not_found", text) : ZMESH_ENOTFOUND;
        return NULL;
    }
    if (c->unusable) {
        snprintf(text, sizeof text,
                 "the state of consumer '%s' cannot be read; see the relay's "
                 "log",
                 name);
        *rc = out ? s_error(out, "unavailable", text) : ZMESH_ESYS;
        return NULL;
    }
    return c;
}

static bool
s_stream_covers(const s_stream_t *stream, const char *pattern, size_t size)
{
    for (size_t i = 0; i < stream->patterns_count; i++)
        if (zmesh__relay_pattern_covers(stream->patterns[i],
                                        strlen(stream->patterns[i]), pattern,
                                        size))
            return true;
    return false;
}

/*  Start "last": per topic the last record stored now; the others up to
    now are left out. */
static int
s_start_last(s_consumer_t *c, zmesh__store_t *store)
{
    zhashx_t *topics = zhashx_new();
    zmesh__store_iter_t *iter = NULL;
    if (!topics || zmesh__store_iter_new(store, 1, &iter) != 0) {
        zhashx_destroy(&topics);
        return ZMESH_ENOMEM;
    }
    int rc = 0;
    for (;;) {
        zmesh__store_record_t record;
        int got = zmesh__store_iter_next(iter, &record);
        if (got == ZMESH_EPROTO)
            continue;
        if (got != 0)
            break;
        zmesh__frame_t frame;
        if (zmesh__frame_decode(record.body, record.size, &frame) != 0 ||
            !zmesh__pattern_match(c->pattern, c->pattern_size, frame.topic,
                                  frame.topic_size))
            continue;
        // zhashx keys are strings; the rseq rides in the pointer.
        if (zhashx_lookup(topics, frame.topic)) {
            zhashx_update(topics, frame.topic, (void *)(uintptr_t)record.seq);
            continue;
        }
        if (zhashx_size(topics) == ZMESH__RELAY_LAST_TOPICS_MAX) {
            rc = ZMESH_ETOOBIG;
            break;
        }
        zhashx_insert(topics, frame.topic, (void *)(uintptr_t)record.seq);
    }
    zmesh__store_iter_destroy(&iter);
    size_t n = zhashx_size(topics), at = 0;
    if (rc == 0 && n > 0) {
        c->last_set = malloc(n * sizeof *c->last_set);
        if (!c->last_set)
            rc = ZMESH_ENOMEM;
        for (void *v = c->last_set ? zhashx_first(topics) : NULL; v;
             v = zhashx_next(topics))
            c->last_set[at++] = (uint64_t)(uintptr_t)v;
        c->last_count = at;
        if (at)
            qsort(c->last_set, at, sizeof *c->last_set, s_u64_cmp);
    }
    zhashx_destroy(&topics);
    c->last_cut = zmesh__store_last_seq(store);
    return rc;
}

static int
s_create(zmesh__relay_consumers_t *self, const zmesh__relay_consume_t *req,
         size_t stream, s_consumer_t **created, msgpack_sbuffer *out)
{
    zmesh__store_t *store = self->streams[stream].store;
    s_consumer_t *c = s_consumer_new(req->consumer, stream);
    if (!c)
        return s_error(out, "unavailable", "out of memory");
    snprintf(c->pattern, sizeof c->pattern, "%s", req->pattern);
    c->pattern_size = strlen(c->pattern);
    uint64_t first = zmesh__store_first_seq(store);
    uint64_t last = zmesh__store_last_seq(store);
    int rc = 0;
    switch (req->start) {
    case ZMESH__RELAY_START_ALL: c->floor = first - 1; break;
    case ZMESH__RELAY_START_NEW: c->floor = last; break;
    case ZMESH__RELAY_START_SEQ:
        c->floor = (req->seq > first ? req->seq : first) - 1;
        break;
    case ZMESH__RELAY_START_TIME: {
        uint64_t seq = 0;
        rc = zmesh__store_seek_time(store, req->time_us, &seq);
        c->floor = (seq > first ? seq : first) - 1;
        break;
    }
    case ZMESH__RELAY_START_LAST:
        c->floor = first - 1;
        rc = s_start_last(c, store);
        break;
    }
    if (rc != 0) {
        s_consumer_destroy(&c);
        if (rc == ZMESH_ETOOBIG)
            return s_error(out, "bad_request",
                           "start \"last\" selects at most 10000 topics; "
                           "the stream holds more for this pattern");
        return s_error(out, "unavailable", "cannot read the stream now");
    }
    if (s_list_add(self, c) != 0) {
        s_consumer_destroy(&c);
        return s_error(out, "unavailable", "out of memory");
    }
    *created = c;
    return 0;
}

int
zmesh__relay_consumers_consume(zmesh__relay_consumers_t *self,
                               const void *payload, size_t size, int64_t now_us,
                               msgpack_sbuffer *out)
{
    zmesh__relay_consume_t req;
    char text[640];
    if (zmesh__relay_consume_decode(payload, size, &req, text, sizeof text) !=
        0)
        return s_error(out, "bad_request", text);
    size_t pattern_size = strlen(req.pattern);
    s_consumer_t *c = s_find(self, req.consumer);
    bool created = false;
    if (c && c->unusable) {
        int rc;
        s_named(self, req.consumer, out, &rc);
        return rc;
    }
    if (c) {
        const char *stream = self->streams[c->stream].name;
        if ((req.has_stream && strcmp(req.stream, stream) != 0) ||
            strcmp(req.pattern, c->pattern) != 0) {
            snprintf(text, sizeof text,
                     "consumer '%s' exists with pattern '%.100s' in stream "
                     "'%s'",
                     c->name, c->pattern, stream);
            return s_error(out, "conflict", text);
        }
    } else {
        size_t stream = self->streams_count;
        for (size_t i = 0; i < self->streams_count; i++) {
            const s_stream_t *s = &self->streams[i];
            if (req.has_stream
                    ? strcmp(s->name, req.stream) == 0
                    : s_stream_covers(s, req.pattern, pattern_size)) {
                stream = i;
                break;
            }
        }
        if (stream == self->streams_count) {
            if (req.has_stream)
                snprintf(text, sizeof text, "no stream '%s' here", req.stream);
            else
                snprintf(text, sizeof text,
                         "no stream here stores every topic of '%.200s'",
                         req.pattern);
            return s_error(out, "not_found", text);
        }
        if (req.has_stream && !s_stream_covers(&self->streams[stream],
                                               req.pattern, pattern_size)) {
            snprintf(text, sizeof text,
                     "stream '%s' does not store every topic of '%.200s'",
                     req.stream, req.pattern);
            return s_error(out, "not_found", text);
        }
        if (s_stream_count(self, stream) >= ZMESH__RELAY_CONSUMERS_MAX) {
            snprintf(text, sizeof text, "stream '%s' has %d consumers already",
                     self->streams[stream].name, ZMESH__RELAY_CONSUMERS_MAX);
            return s_error(out, "full", text);
        }
        int rc = s_create(self, &req, stream, &c, out);
        if (rc != 0)
            return rc;
        created = true;
    }
    // Given settings replace the stored ones, also on attach.
    if (created || req.has_ack_wait)
        c->ack_wait_ms = req.ack_wait_ms;
    if (created || req.has_max_deliver)
        c->max_deliver = req.max_deliver;
    if (created || req.has_max_ack_pending)
        c->max_ack_pending = req.max_ack_pending;
    c->attached_us = now_us;
    s_touch(c);
    s_walk(self, c);
    // A new consumer is saved at once: lost, it would come back with its
    // start position evaluated later, and start "new" would skip records.
    if (created)
        s_save(self, c, zmesh__clock_ms());
    zmesh__store_t *store = self->streams[c->stream].store;
    msgpack_sbuffer_clear(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 11);
    zmesh__mp_pack_str(&pk, "consumer");
    zmesh__mp_pack_str(&pk, c->name);
    zmesh__mp_pack_str(&pk, "stream");
    zmesh__mp_pack_str(&pk, self->streams[c->stream].name);
    zmesh__mp_pack_str(&pk, "pattern");
    zmesh__mp_pack_str(&pk, c->pattern);
    zmesh__mp_pack_str(&pk, "created");
    if (created)
        msgpack_pack_true(&pk);
    else
        msgpack_pack_false(&pk);
    zmesh__mp_pack_u64(&pk, "floor", c->floor);
    zmesh__mp_pack_u64(&pk, "first", zmesh__store_first_seq(store));
    zmesh__mp_pack_u64(&pk, "last", zmesh__store_last_seq(store));
    zmesh__mp_pack_u64(&pk, "pending",
                       s_pending(self, c, ZMESH__RELAY_WALK_MAX));
    zmesh__mp_pack_u64(&pk, "ack_wait_ms", c->ack_wait_ms);
    zmesh__mp_pack_u64(&pk, "max_deliver", c->max_deliver);
    zmesh__mp_pack_u64(&pk, "max_ack_pending", c->max_ack_pending);
    return 0;
}

/*  Packs the records of a $relay.next into `events`. */
typedef struct {
    msgpack_sbuffer events;
    uint32_t count;
    uint64_t next;
    zhashx_t *publishers; /* hex -> name, or (void *)1 */
} s_batch_t;

static int
s_next_events(zmesh__relay_consumers_t *self, s_consumer_t *c, uint64_t from,
              uint32_t max, size_t budget, s_batch_t *batch)
{
    zmesh__store_t *store = self->streams[c->stream].store;
    zmesh__store_iter_t *iter = NULL;
    int rc = zmesh__store_iter_new(store, from, &iter);
    if (rc != 0)
        return rc;
    msgpack_packer pk;
    msgpack_packer_init(&pk, &batch->events, msgpack_sbuffer_write);
    uint64_t first = zmesh__store_first_seq(store);
    batch->next = from < first ? first : from;
    size_t own = self->answer_limit - S_NEXT_HEADER;
    for (uint32_t examined = 0;
         examined < ZMESH__RELAY_WALK_MAX && batch->count < max; examined++) {
        zmesh__store_record_t record;
        rc = zmesh__store_iter_next(iter, &record);
        if (rc == ZMESH_EAGAIN) {
            rc = 0;
            break;
        }
        if (rc == ZMESH_EPROTO) {
            batch->next = record.seq + 1;
            rc = 0;
            continue;
        }
        if (rc != 0)
            break;
        if (s_settled(c, &record)) {
            batch->next = record.seq + 1;
            continue;
        }
        size_t cost = S_EVENT_OVERHEAD + record.size;
        if (cost > own) {
            // No answer can carry it: settled as if acknowledged, so the
            // consumer moves on (logged).
            zmesh__log_limited(&self->log_limit, S_LOG_MS,
                               "stream %s: record %" PRIu64
                               " is too large for any answer; consumer %s "
                               "skips it",
                               self->streams[c->stream].name, record.seq,
                               c->name);
            s_ack_add(c, record.seq);
            batch->next = record.seq + 1;
            continue;
        }
        if (batch->events.size + cost > budget)
            break;
        uint32_t deliveries = s_deliver(c, record.seq);
        c->delivered++;
        msgpack_pack_array(&pk, 5);
        msgpack_pack_uint64(&pk, record.seq);
        msgpack_pack_int64(&pk, record.stored_us);
        msgpack_pack_bin(&pk, record.size);
        msgpack_pack_bin_body(&pk, record.body, record.size);
        msgpack_pack_uint32(&pk, record.flags);
        msgpack_pack_uint32(&pk, deliveries);
        batch->count++;
        batch->next = record.seq + 1;
        zmesh__frame_t frame;
        if (zmesh__frame_decode(record.body, record.size, &frame) == 0) {
            char hex[33];
            zmesh__id_to_hex(frame.publisher, hex);
            if (!zhashx_lookup(batch->publishers, hex)) {
                const char *name =
                    self->names ? self->names(self->names_arg, hex) : NULL;
                zhashx_insert(batch->publishers, hex,
                              name ? (void *)name : (void *)1);
            }
        }
    }
    zmesh__store_iter_destroy(&iter);
    if (batch->count > 0)
        s_touch(c);
    return rc;
}

int
zmesh__relay_consumers_next(zmesh__relay_consumers_t *self, const void *payload,
                            size_t size, msgpack_sbuffer *out)
{
    zmesh__relay_next_t req;
    char text[640];
    if (zmesh__relay_next_decode(payload, size, &req, text, sizeof text) != 0)
        return s_error(out, "bad_request", text);
    int rc;
    s_consumer_t *c = s_named(self, req.consumer, out, &rc);
    if (!c)
        return rc;
    zmesh__store_t *store = self->streams[c->stream].store;
    uint64_t first = zmesh__store_first_seq(store);
    bool lost = c->floor + 1 < first;
    uint64_t lost_first = c->floor + 1, lost_last = first - 1;
    if (lost) {
        zmesh__log(ZMESH_LOG_WARNING,
                   "stream %s: retention deleted relay seq %" PRIu64
                   "..%" PRIu64 " before consumer %s acknowledged them",
                   self->streams[c->stream].name, lost_first, lost_last,
                   c->name);
        c->floor = first - 1;
        s_prune(c);
        s_touch(c);
    }
    s_walk(self, c);
    uint64_t from = req.has_from ? req.from : 0;
    if (from < c->floor + 1)
        from = c->floor + 1;
    size_t limit = self->answer_limit;
    if (req.bytes && req.bytes < limit)
        limit = (size_t)req.bytes;
    size_t budget = limit > S_NEXT_HEADER ? limit - S_NEXT_HEADER : 0;
    s_batch_t batch = {.publishers = zhashx_new()};
    if (!batch.publishers)
        return s_error(out, "unavailable", "out of memory");
    msgpack_sbuffer_init(&batch.events);
    rc = s_next_events(self, c, from, req.max, budget, &batch);
    if (rc != 0) {
        zhashx_destroy(&batch.publishers);
        msgpack_sbuffer_destroy(&batch.events);
        snprintf(text, sizeof text, "cannot read stream '%s': %s",
                 self->streams[c->stream].name, zmesh_strerror(rc));
        return s_error(out, "unavailable", text);
    }
    // Deliveries may have settled records (max_deliver).
    if (c->max_deliver)
        s_walk(self, c);
    size_t names_room = limit > S_NEXT_HEADER + batch.events.size
                            ? limit - S_NEXT_HEADER - batch.events.size
                            : 0;
    size_t names = 0, names_bytes = 0;
    for (void *name = zhashx_first(batch.publishers); name;
         name = zhashx_next(batch.publishers)) {
        size_t cost = 40 + (name == (void *)1 ? 0 : strlen(name));
        if (name == (void *)1 || names_bytes + cost > names_room)
            continue;
        names_bytes += cost;
        names++;
    }
    msgpack_sbuffer_clear(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4 + lost + (names > 0));
    zmesh__mp_pack_str(&pk, "events");
    msgpack_pack_array(&pk, batch.count);
    msgpack_sbuffer_write(out, batch.events.data, batch.events.size);
    zmesh__mp_pack_u64(&pk, "next", batch.next);
    zmesh__mp_pack_u64(&pk, "floor", c->floor);
    zmesh__mp_pack_u64(&pk, "last", zmesh__store_last_seq(store));
    if (lost) {
        zmesh__mp_pack_str(&pk, "lost");
        msgpack_pack_array(&pk, 2);
        msgpack_pack_uint64(&pk, lost_first);
        msgpack_pack_uint64(&pk, lost_last);
    }
    if (names > 0) {
        zmesh__mp_pack_str(&pk, "names");
        msgpack_pack_map(&pk, names);
        size_t packed = 0;
        names_bytes = 0;
        for (void *name = zhashx_first(batch.publishers);
             name && packed < names; name = zhashx_next(batch.publishers)) {
            if (name == (void *)1)
                continue;
            size_t cost = 40 + strlen(name);
            if (names_bytes + cost > names_room)
                continue;
            names_bytes += cost;
            zmesh__mp_pack_str(&pk, zhashx_cursor(batch.publishers));
            zmesh__mp_pack_str(&pk, name);
            packed++;
        }
    }
    zhashx_destroy(&batch.publishers);
    msgpack_sbuffer_destroy(&batch.events);
    return 0;
}

int
zmesh__relay_consumers_ack(zmesh__relay_consumers_t *self, const void *payload,
                           size_t size, msgpack_sbuffer *out)
{
    zmesh__relay_ack_t req;
    char text[640];
    int rc = zmesh__relay_ack_decode(payload, size, self->answer_limit + 1024,
                                     &req, text, sizeof text);
    if (rc != 0) {
        if (rc == ZMESH_ENOMEM)
            snprintf(text, sizeof text, "out of memory");
        return out ? s_error(out,
                             rc == ZMESH_ENOMEM ? "unavailable" : "bad_request",
                             text)
                   : rc;
    }
    s_consumer_t *c = s_named(self, req.consumer, out, &rc);
    if (!c) {
        zmesh__relay_ack_clear(&req);
        return rc;
    }
    zmesh__store_t *store = self->streams[c->stream].store;
    uint64_t last = zmesh__store_last_seq(store);
    size_t dropped = 0;
    for (size_t i = 0; i < req.acks_count; i++) {
        uint64_t rseq = req.acks[i];
        // At or below the floor, or never stored: nothing to remember.
        if (rseq <= c->floor || rseq > last)
            continue;
        if (!s_ack_add(c, rseq))
            dropped++;
    }
    for (size_t i = 0; i < req.live_count; i++) {
        char key[S_KEY_MAX];
        s_live_key(key, req.live[i].publisher, req.live[i].topic,
                   strlen(req.live[i].topic));
        s_live_set(c, key, req.live[i].seq);
    }
    c->acks += req.acks_count + req.live_count;
    if (dropped) {
        c->acks_dropped += dropped;
        zmesh__log_limited(&self->log_limit, S_LOG_MS,
                           "consumer %s: %zu acknowledgements above the floor "
                           "not kept (more than max_ack_pending %" PRIu32
                           "); those records will be handed out again",
                           c->name, dropped, c->max_ack_pending);
    }
    if (req.acks_count + req.live_count > 0)
        s_touch(c);
    zmesh__relay_ack_clear(&req);
    s_walk(self, c);
    if (!out)
        return 0;
    msgpack_sbuffer_clear(out);
    msgpack_packer pk;
    msgpack_packer_init(&pk, out, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    zmesh__mp_pack_u64(&pk, "floor", c->floor);
    zmesh__mp_pack_u64(&pk, "pending",
                       s_pending(self, c, ZMESH__RELAY_WALK_MAX));
    return 0;
}

void
zmesh__relay_consumers_pack_info(zmesh__relay_consumers_t *self, size_t stream,
                                 msgpack_packer *pk)
{
    size_t n = 0;
    for (size_t i = 0; i < self->count; i++)
        n += self->list[i]->stream == stream && !self->list[i]->unusable;
    msgpack_pack_array(pk, n);
    if (n == 0)
        return;
    uint64_t last = zmesh__store_last_seq(self->streams[stream].store);
    for (size_t i = 0; i < self->count; i++) {
        s_consumer_t *c = self->list[i];
        if (c->stream != stream || c->unusable)
            continue;
        msgpack_pack_map(pk, 13);
        zmesh__mp_pack_str(pk, "name");
        zmesh__mp_pack_str(pk, c->name);
        zmesh__mp_pack_str(pk, "pattern");
        zmesh__mp_pack_str(pk, c->pattern);
        zmesh__mp_pack_u64(pk, "floor", c->floor);
        zmesh__mp_pack_u64(pk, "pending",
                           s_pending(self, c, S_INFO_PENDING_MAX));
        zmesh__mp_pack_u64(pk, "lag", last > c->floor ? last - c->floor : 0);
        zmesh__mp_pack_u64(pk, "acked_above", c->acked_count);
        zmesh__mp_pack_u64(pk, "live_positions", zhashx_size(c->live));
        zmesh__mp_pack_u64(pk, "delivered", c->delivered);
        zmesh__mp_pack_u64(pk, "acked", c->acks);
        zmesh__mp_pack_u64(pk, "ack_wait_ms", c->ack_wait_ms);
        zmesh__mp_pack_u64(pk, "max_deliver", c->max_deliver);
        zmesh__mp_pack_u64(pk, "max_ack_pending", c->max_ack_pending);
        zmesh__mp_pack_str(pk, "attached");
        msgpack_pack_int64(pk, c->attached_us);
    }
}

size_t
zmesh__relay_consumers_unusable(const zmesh__relay_consumers_t *self,
                                size_t stream)
{
    size_t n = 0;
    for (size_t i = 0; self && i < self->count; i++)
        n += self->list[i]->stream == stream && self->list[i]->unusable;
    return n;
}

int64_t
zmesh__relay_consumers_floor(const zmesh__relay_consumers_t *self,
                             const char *name)
{
    const s_consumer_t *c = self ? s_find(self, name) : NULL;
    return c && !c->unusable ? (int64_t)c->floor : -1;
}
