/*  codec_test.c - unit tests of lib/codec.c: the test vectors of
    proto/vectors (decoded, re-encoded byte for byte, or rejected), round
    trips of every control message type, every limit on both sides of its
    edge, the field rules of NAK, REPAIR, HISTORY, DIRECT, REPLY, STATS,
    DELIVER, ACK and CREDIT and of queue groups, back-pressure and served
    patterns in HELLO and ADVERTISE in both directions, truncation at every
    offset, trailing bytes, wrong types, duplicate and unknown keys, other
    protocol versions, event frame edge cases, the msgpack checker and agent
    id hex. Malformed messages are built with msgpack-c's packer through a
    mutating encoder below, not with the codec under test. Every input is
    copied into a buffer of its exact size so ASan catches a read past its
    end. */
#include "codec.h"

#include <dirent.h>
#include <limits.h>
#include <msgpack.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#ifndef ZMESH_SOURCE_DIR
#error "ZMESH_SOURCE_DIR must name the source tree (the build defines it)"
#endif
#define VECTOR_DIR ZMESH_SOURCE_DIR "/proto/vectors"

static const uint8_t id_a[ZMESH__ID_SIZE] = {0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
                                             0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
                                             0xcc, 0xdd, 0xee, 0xff};
static const uint8_t id_b[ZMESH__ID_SIZE] = {0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
                                             0x32, 0x10, 0x01, 0x23, 0x45, 0x67,
                                             0x89, 0xab, 0xcd, 0xef};

/* ------------------------------------------------------------------------ */
/*  Helpers                                                                 */

/*  A heap copy of exactly `size` bytes (at least one byte is allocated so
    that size 0 still gives a valid pointer). */
static uint8_t *
copy_exact(const void *data, size_t size)
{
    uint8_t *copy = malloc(size ? size : 1);
    assert_non_null(copy);
    if (size)
        memcpy(copy, data, size);
    return copy;
}

static int
decode_exact(const void *data, size_t size, zmesh__msg_t *msg)
{
    uint8_t *copy = copy_exact(data, size);
    int rc = zmesh__msg_decode(copy, size, msg);
    free(copy);
    return rc;
}

/*  Frame decode on an exact copy; the frame's pointers are not used after
    the copy is freed. */
static int
frame_decode_exact(const void *data, size_t size)
{
    uint8_t *copy = copy_exact(data, size);
    zmesh__frame_t frame;
    int rc = zmesh__frame_decode(copy, size, &frame);
    free(copy);
    return rc;
}

static int
check_exact(const void *data, size_t size)
{
    uint8_t *copy = copy_exact(data, size);
    int rc = zmesh__msgpack_check(copy, size);
    free(copy);
    return rc;
}

/*  A string of `n` copies of `c`, freed by free_strings(). */
static char *strings[64];
static size_t strings_count;

static char *
rep(char c, size_t n)
{
    assert_true(strings_count < sizeof strings / sizeof strings[0]);
    char *s = malloc(n + 1);
    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    strings[strings_count++] = s;
    return s;
}

static void
free_strings(void)
{
    for (size_t i = 0; i < strings_count; i++)
        free(strings[i]);
    strings_count = 0;
}

/*  Whether `needle` occurs in `data`. */
static bool
contains(const void *data, size_t size, const void *needle, size_t n)
{
    for (size_t i = 0; i + n <= size; i++)
        if (memcmp((const uint8_t *)data + i, needle, n) == 0)
            return true;
    return false;
}

static bool
str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/*  Same bytes, and both present or both absent. */
static bool
bytes_eq(const void *a, size_t a_size, const void *b, size_t b_size)
{
    if ((a == NULL) != (b == NULL) || a_size != b_size)
        return false;
    return a_size == 0 || memcmp(a, b, a_size) == 0;
}

static bool
group_equal(const zmesh__counters_t *a, const zmesh__counters_t *b)
{
    if (!str_eq(a->kind, b->kind) || !str_eq(a->name, b->name) ||
        a->count != b->count)
        return false;
    for (size_t i = 0; i < a->count; i++)
        if (!str_eq(a->keys[i], b->keys[i]) || a->values[i] != b->values[i])
            return false;
    return true;
}

/*  The fields of NAK, REPAIR, HISTORY, DIRECT, REPLY, STATS, DELIVER, ACK
    and CREDIT. A payload or counters absent differs from one present, even
    empty. */
static bool
msg_equal_requests(const zmesh__msg_t *a, const zmesh__msg_t *b)
{
    if (a->req != b->req || !str_eq(a->topic, b->topic) ||
        a->first != b->first || a->last != b->last || a->join != b->join ||
        a->frames_count != b->frames_count || a->done != b->done ||
        !str_eq(a->pattern, b->pattern) ||
        !bytes_eq(a->payload, a->payload_size, b->payload, b->payload_size) ||
        a->status != b->status || !str_eq(a->group, b->group) ||
        a->redelivered != b->redelivered ||
        (a->counters == NULL) != (b->counters == NULL) ||
        a->counters_count != b->counters_count)
        return false;
    for (size_t i = 0; i < a->frames_count; i++)
        if (!bytes_eq(a->frames[i], a->frame_sizes[i], b->frames[i],
                      b->frame_sizes[i]))
            return false;
    for (size_t i = 0; i < a->counters_count; i++)
        if (!group_equal(&a->counters[i], &b->counters[i]))
            return false;
    return true;
}

/*  Semantic equality of two messages (NULL and "" are equal). */
static bool
msg_equal(const zmesh__msg_t *a, const zmesh__msg_t *b)
{
    if (a->type != b->type || memcmp(a->sender, b->sender, 16) != 0 ||
        !str_eq(a->name, b->name) || !str_eq(a->mesh, b->mesh) ||
        !str_eq(a->endpoint, b->endpoint) ||
        !str_eq(a->data_endpoint, b->data_endpoint) ||
        !str_eq(a->host, b->host) ||
        !str_eq(a->version_text, b->version_text) || a->pid != b->pid ||
        a->subs_generation != b->subs_generation || a->ask != b->ask ||
        a->headers_count != b->headers_count ||
        a->pubs_count != b->pubs_count || a->subs_count != b->subs_count ||
        a->peers_count != b->peers_count ||
        a->groups_count != b->groups_count ||
        a->bp_subs_count != b->bp_subs_count ||
        a->serves_count != b->serves_count || !msg_equal_requests(a, b))
        return false;
    for (size_t i = 0; i < a->bp_subs_count; i++)
        if (!str_eq(a->bp_subs[i], b->bp_subs[i]))
            return false;
    for (size_t i = 0; i < a->serves_count; i++)
        if (!str_eq(a->serves[i], b->serves[i]))
            return false;
    for (size_t i = 0; i < a->groups_count; i++)
        if (!str_eq(a->group_patterns[i], b->group_patterns[i]) ||
            !str_eq(a->group_names[i], b->group_names[i]))
            return false;
    for (size_t i = 0; i < a->headers_count; i++)
        if (!str_eq(a->headers[i].key, b->headers[i].key) ||
            !str_eq(a->headers[i].value, b->headers[i].value))
            return false;
    for (size_t i = 0; i < a->pubs_count; i++)
        if (!str_eq(a->pubs[i], b->pubs[i]))
            return false;
    for (size_t i = 0; i < a->subs_count; i++)
        if (!str_eq(a->subs[i], b->subs[i]))
            return false;
    for (size_t i = 0; i < a->peers_count; i++)
        if (memcmp(a->peers[i].id, b->peers[i].id, 16) != 0 ||
            !str_eq(a->peers[i].endpoint, b->peers[i].endpoint))
            return false;
    return true;
}

static bool
msg_is_zero(const zmesh__msg_t *msg)
{
    static const zmesh__msg_t zero;
    return memcmp(msg, &zero, sizeof zero) == 0;
}

/* ------------------------------------------------------------------------ */
/*  Sample messages                                                         */

static char *sample_pubs[] = {"orders.*.created", "orders.>"};
static char *sample_subs[] = {"payments.>", "inventory.*.level",
                              "$mesh.peer.joined"};
static zmesh__header_t sample_headers[] = {{"region", "eu-west"},
                                           {"team", "payments"}};
/*  Queue groups: one group of two patterns, a pattern in two groups. */
static char *sample_group_patterns[] = {"orders.*.created", "orders.eu.>",
                                        "orders.eu.>"};
static char *sample_group_names[] = {"billing", "billing", "audit"};
/*  Back-pressure: some of sample_subs, a '$' one too. */
static char *sample_bp[] = {"payments.>", "$mesh.peer.joined"};
/*  Served patterns: a topic as it is, and a wildcard one. */
static char *sample_serves[] = {"inventory.lookup", "inventory.*.price"};
static zmesh__gossip_t sample_peers[2];

/*  Event frames written byte by byte (not with the codec): topic, NUL,
    meta [publisher, sequence, timestamp 0], then the payload. */
static uint8_t sample_frame_bytes[2][64];
static void *sample_frames[2];
static size_t sample_frame_sizes[2];

static size_t
make_frame(uint8_t *out, const char *topic, const uint8_t publisher[16],
           uint8_t sequence, const uint8_t *payload, size_t payload_size)
{
    size_t n = strlen(topic);
    memcpy(out, topic, n + 1);
    out[n + 1] = 0x93;
    out[n + 2] = 0xc4;
    out[n + 3] = 16;
    memcpy(out + n + 4, publisher, 16);
    assert_true(sequence >= 1 && sequence <= 0x7f);
    out[n + 20] = sequence;
    out[n + 21] = 0x00;
    memcpy(out + n + 22, payload, payload_size);
    return n + 22 + payload_size;
}

/*  {"sku": "a-1"} and ["ok", 3]. */
static const uint8_t sample_payload[] = {0x81, 0xa3, 's', 'k', 'u',
                                         0xa3, 'a',  '-', '1'};
static const uint8_t sample_answer[] = {0x92, 0xa2, 'o', 'k', 0x03};

static char *sample_keys[] = {"events_published", "naks_sent"};
static uint64_t sample_values[] = {1200, UINT64_MAX};
static char *topic_keys[] = {"gaps"};
static uint64_t topic_values[] = {1};
static zmesh__counters_t sample_groups[] = {
    {"agent", "", sample_keys, sample_values, 2},
    {"topic", "orders.eu.created", topic_keys, topic_values, 1},
};

static zmesh__msg_t
sample(zmesh__msg_type_t type)
{
    zmesh__msg_t msg = {.type = type};
    memcpy(msg.sender, id_a, 16);
    switch (type) {
    case ZMESH__MSG_HELLO:
        msg.name = "orders-service";
        msg.mesh = "default";
        msg.endpoint = "tcp://192.168.1.20:40001";
        msg.data_endpoint = "tcp://192.168.1.20:40002";
        msg.host = "node-7";
        msg.version_text = "0.1.0";
        msg.pid = 4242;
        msg.headers = sample_headers;
        msg.headers_count = 2;
        msg.pubs = sample_pubs;
        msg.pubs_count = 2;
        msg.subs = sample_subs;
        msg.subs_count = 3;
        msg.subs_generation = 3;
        msg.ask = 1;
        msg.group_patterns = sample_group_patterns;
        msg.group_names = sample_group_names;
        msg.groups_count = 3;
        msg.bp_subs = sample_bp;
        msg.bp_subs_count = 1;
        msg.serves = sample_serves;
        msg.serves_count = 1;
        break;
    case ZMESH__MSG_ADVERTISE:
        msg.pubs = sample_pubs;
        msg.pubs_count = 2;
        msg.subs = sample_subs;
        msg.subs_count = 3;
        msg.subs_generation = 70000;
        msg.group_patterns = sample_group_patterns;
        msg.group_names = sample_group_names;
        msg.groups_count = 2;
        msg.bp_subs = sample_bp;
        msg.bp_subs_count = 2;
        msg.serves = sample_serves;
        msg.serves_count = 2;
        break;
    case ZMESH__MSG_PEERS:
        memcpy(sample_peers[0].id, id_b, 16);
        sample_peers[0].endpoint = "tcp://10.0.0.2:5000";
        memset(sample_peers[1].id, 0x5a, 16);
        sample_peers[1].endpoint = "tcp://10.0.0.3:5000";
        msg.peers = sample_peers;
        msg.peers_count = 2;
        break;
    case ZMESH__MSG_NAK:
        msg.req = 17;
        msg.topic = "orders.eu.created";
        msg.first = 5;
        msg.last = 300;
        msg.join = 1;
        break;
    case ZMESH__MSG_REPAIR:
        for (uint8_t i = 0; i < 2; i++) {
            sample_frame_sizes[i] = make_frame(
                sample_frame_bytes[i], "orders.eu.created", id_a,
                (uint8_t)(5 + i), sample_payload, sizeof sample_payload);
            sample_frames[i] = sample_frame_bytes[i];
        }
        msg.req = 17;
        msg.frames = sample_frames;
        msg.frame_sizes = sample_frame_sizes;
        msg.frames_count = 2;
        msg.done = 1;
        msg.join = 1;
        break;
    case ZMESH__MSG_HISTORY:
        msg.req = 70000;
        msg.pattern = "orders.*.created";
        break;
    case ZMESH__MSG_DIRECT:
        msg.req = 9;
        msg.topic = "inventory.lookup";
        msg.payload = (void *)sample_payload;
        msg.payload_size = sizeof sample_payload;
        break;
    case ZMESH__MSG_REPLY:
        msg.req = 9;
        msg.status = ZMESH__REPLY_OK;
        msg.payload = (void *)sample_answer;
        msg.payload_size = sizeof sample_answer;
        break;
    case ZMESH__MSG_STATS:
        msg.req = UINT64_MAX;
        msg.counters = sample_groups;
        msg.counters_count = 2;
        break;
    case ZMESH__MSG_DELIVER:
        sample_frame_sizes[0] =
            make_frame(sample_frame_bytes[0], "orders.eu.created", id_a, 5,
                       sample_payload, sizeof sample_payload);
        sample_frames[0] = sample_frame_bytes[0];
        msg.req = 70000;
        msg.group = "billing";
        msg.frames = sample_frames;
        msg.frame_sizes = sample_frame_sizes;
        msg.frames_count = 1;
        msg.redelivered = 1;
        break;
    case ZMESH__MSG_ACK: msg.req = 70000; break;
    case ZMESH__MSG_CREDIT:
        msg.topic = "orders.eu.created";
        msg.last = 70000;
        break;
    default: break;
    }
    return msg;
}

static const zmesh__msg_type_t all_types[] = {
    ZMESH__MSG_HELLO,   ZMESH__MSG_ADVERTISE, ZMESH__MSG_PING,
    ZMESH__MSG_PONG,    ZMESH__MSG_BYE,       ZMESH__MSG_PEERS,
    ZMESH__MSG_NAK,     ZMESH__MSG_REPAIR,    ZMESH__MSG_HISTORY,
    ZMESH__MSG_DIRECT,  ZMESH__MSG_REPLY,     ZMESH__MSG_STATS,
    ZMESH__MSG_DELIVER, ZMESH__MSG_ACK,       ZMESH__MSG_CREDIT};
#define ALL_TYPES (sizeof all_types / sizeof all_types[0])

/* ------------------------------------------------------------------------ */
/*  A mutating encoder, independent of the codec, for malformed messages    */

typedef enum {
    K_STR,
    K_UINT,
    K_PATTERNS,
    K_HEADERS,
    K_GOSSIP,
    K_FRAMES,
    K_PAYLOAD,
    K_COUNTERS,
    K_GROUPS
} kind_t;

typedef struct {
    const char *key;
    kind_t kind;
    bool required;
} field_t;

static const field_t hello_fields[] = {
    {"name", K_STR, true},        {"mesh", K_STR, true},
    {"endpoint", K_STR, true},    {"data", K_STR, true},
    {"host", K_STR, false},       {"ver", K_STR, false},
    {"pid", K_UINT, false},       {"headers", K_HEADERS, false},
    {"pubs", K_PATTERNS, false},  {"subs", K_PATTERNS, false},
    {"subgen", K_UINT, false},    {"ask", K_UINT, false},
    {"groups", K_GROUPS, false},  {"bp", K_PATTERNS, false},
    {"serves", K_PATTERNS, false}};
static const field_t advertise_fields[] = {
    {"pubs", K_PATTERNS, true}, {"subs", K_PATTERNS, true},
    {"subgen", K_UINT, true},   {"groups", K_GROUPS, false},
    {"bp", K_PATTERNS, false},  {"serves", K_PATTERNS, false}};
static const field_t peers_fields[] = {{"peers", K_GOSSIP, true}};
static const field_t nak_fields[] = {{"req", K_UINT, true},
                                     {"topic", K_STR, true},
                                     {"first", K_UINT, true},
                                     {"last", K_UINT, true},
                                     {"join", K_UINT, false}};
static const field_t repair_fields[] = {{"req", K_UINT, true},
                                        {"frames", K_FRAMES, true},
                                        {"done", K_UINT, true},
                                        {"join", K_UINT, false}};
static const field_t history_fields[] = {{"req", K_UINT, true},
                                         {"pattern", K_STR, true}};
static const field_t direct_fields[] = {{"req", K_UINT, true},
                                        {"topic", K_STR, true},
                                        {"payload", K_PAYLOAD, true}};
/*  REPLY's payload is required by the sample's status 0. */
static const field_t reply_fields[] = {{"req", K_UINT, true},
                                       {"status", K_UINT, true},
                                       {"payload", K_PAYLOAD, true}};
static const field_t stats_fields[] = {{"req", K_UINT, true},
                                       {"counters", K_COUNTERS, false}};
static const field_t deliver_fields[] = {{"req", K_UINT, true},
                                         {"group", K_STR, true},
                                         {"frames", K_FRAMES, true},
                                         {"redelivered", K_UINT, false}};
static const field_t ack_fields[] = {{"req", K_UINT, true}};
static const field_t credit_fields[] = {{"topic", K_STR, true},
                                        {"last", K_UINT, true}};

#define FIELDS(a) (*count = sizeof a / sizeof a[0], a)

static const field_t *
fields_of(zmesh__msg_type_t type, size_t *count)
{
    switch (type) {
    case ZMESH__MSG_HELLO:
        *count = sizeof hello_fields / sizeof hello_fields[0];
        return hello_fields;
    case ZMESH__MSG_ADVERTISE:
        *count = sizeof advertise_fields / sizeof advertise_fields[0];
        return advertise_fields;
    case ZMESH__MSG_PEERS: *count = 1; return peers_fields;
    case ZMESH__MSG_NAK: return FIELDS(nak_fields);
    case ZMESH__MSG_REPAIR: return FIELDS(repair_fields);
    case ZMESH__MSG_HISTORY: return FIELDS(history_fields);
    case ZMESH__MSG_DIRECT: return FIELDS(direct_fields);
    case ZMESH__MSG_REPLY: return FIELDS(reply_fields);
    case ZMESH__MSG_STATS: return FIELDS(stats_fields);
    case ZMESH__MSG_DELIVER: return FIELDS(deliver_fields);
    case ZMESH__MSG_ACK: return FIELDS(ack_fields);
    case ZMESH__MSG_CREDIT: return FIELDS(credit_fields);
    default: *count = 0; return NULL;
    }
}

typedef struct {
    bool set_version;
    uint64_t version;
    bool set_type;
    uint64_t type;
    bool short_sender;  /* sender of 15 bytes */
    const char *omit;   /* key left out */
    const char *dup;    /* key written twice */
    const char *wrong;  /* key written with a value of the wrong type */
    int wrong_variant;  /* 0..2: which wrong value */
    const char *nul_in; /* key whose (first) string gets a NUL */
    int unknown_depth;  /* > 0: add unknown keys, one this deep */
    bool trailing;      /* a byte after the message */
} raw_t;

#define WRONG_VARIANTS 3

static void
pk_ok(int rc)
{
    assert_int_equal(rc, 0);
}

static void
pk_str(msgpack_packer *pk, const char *s, bool nul)
{
    s = s ? s : "";
    size_t n = strlen(s);
    pk_ok(msgpack_pack_str(pk, n + (nul ? 2 : 0)));
    pk_ok(msgpack_pack_str_body(pk, s, n));
    if (nul)
        pk_ok(msgpack_pack_str_body(pk, "\0x", 2));
}

static void
pk_nested(msgpack_packer *pk, int depth)
{
    for (int i = 1; i < depth; i++)
        pk_ok(msgpack_pack_array(pk, 1));
    pk_ok(msgpack_pack_array(pk, 0));
}

static void
pk_wrong(msgpack_packer *pk, kind_t kind, int variant)
{
    static const uint8_t id[16];
    switch (kind) {
    case K_STR:
        if (variant == 0)
            pk_ok(msgpack_pack_uint64(pk, 1));
        else if (variant == 1) {
            pk_ok(msgpack_pack_bin(pk, 3));
            pk_ok(msgpack_pack_bin_body(pk, "abc", 3));
        } else
            pk_ok(msgpack_pack_nil(pk));
        break;
    case K_UINT:
        if (variant == 0)
            pk_str(pk, "1", false);
        else if (variant == 1)
            pk_ok(msgpack_pack_int64(pk, -1));
        else
            pk_ok(msgpack_pack_double(pk, 1.0));
        break;
    case K_PATTERNS:
        if (variant == 0)
            pk_ok(msgpack_pack_map(pk, 0));
        else if (variant == 1) {
            pk_ok(msgpack_pack_array(pk, 1));
            pk_ok(msgpack_pack_uint64(pk, 1));
        } else
            pk_str(pk, "a.b", false);
        break;
    case K_HEADERS:
        if (variant == 0)
            pk_ok(msgpack_pack_array(pk, 0));
        else if (variant == 1) {
            pk_ok(msgpack_pack_map(pk, 1));
            pk_ok(msgpack_pack_uint64(pk, 1));
            pk_str(pk, "v", false);
        } else {
            pk_ok(msgpack_pack_map(pk, 1));
            pk_str(pk, "k", false);
            pk_ok(msgpack_pack_uint64(pk, 1));
        }
        break;
    case K_GOSSIP:
        if (variant == 0)
            pk_ok(msgpack_pack_map(pk, 0));
        else if (variant == 1) {
            pk_ok(msgpack_pack_array(pk, 1));
            pk_ok(msgpack_pack_array(pk, 1));
            pk_ok(msgpack_pack_bin(pk, 16));
            pk_ok(msgpack_pack_bin_body(pk, id, 16));
        } else {
            pk_ok(msgpack_pack_array(pk, 1));
            pk_ok(msgpack_pack_array(pk, 2));
            pk_ok(msgpack_pack_str(pk, 16));
            pk_ok(msgpack_pack_str_body(pk, "0123456789abcdef", 16));
            pk_str(pk, "tcp://x:1", false);
        }
        break;
    case K_FRAMES:
        if (variant == 0)
            pk_ok(msgpack_pack_map(pk, 0));
        else if (variant == 1) {
            pk_ok(msgpack_pack_array(pk, 1));
            pk_str(pk, "a", false);
        } else
            pk_ok(msgpack_pack_nil(pk));
        break;
    case K_PAYLOAD:
        if (variant == 0)
            pk_str(pk, "x", false);
        else if (variant == 1)
            pk_ok(msgpack_pack_nil(pk)); // nil is not an absent payload
        else {
            pk_ok(msgpack_pack_array(pk, 1));
            pk_ok(msgpack_pack_uint64(pk, 1));
        }
        break;
    case K_COUNTERS:
        if (variant == 0)
            pk_ok(msgpack_pack_map(pk, 0));
        else if (variant == 1) {
            pk_ok(msgpack_pack_array(pk, 1));
            pk_ok(msgpack_pack_array(pk, 3));
            pk_str(pk, "agent", false);
            pk_str(pk, "", false);
            pk_ok(msgpack_pack_map(pk, 1));
            pk_str(pk, "k", false);
            pk_str(pk, "1", false);
        } else {
            pk_ok(msgpack_pack_array(pk, 1));
            pk_ok(msgpack_pack_array(pk, 3));
            pk_ok(msgpack_pack_bin(pk, 5));
            pk_ok(msgpack_pack_bin_body(pk, "agent", 5));
            pk_str(pk, "", false);
            pk_ok(msgpack_pack_map(pk, 0));
        }
        break;
    case K_GROUPS:
        if (variant == 0)
            pk_ok(msgpack_pack_map(pk, 0));
        else if (variant == 1) {
            pk_ok(msgpack_pack_array(pk, 1)); // a pair of one
            pk_ok(msgpack_pack_array(pk, 1));
            pk_str(pk, "a.>", false);
        } else {
            pk_ok(msgpack_pack_array(pk, 1)); // a group named by a uint
            pk_ok(msgpack_pack_array(pk, 2));
            pk_str(pk, "a.>", false);
            pk_ok(msgpack_pack_uint64(pk, 1));
        }
        break;
    }
}

static char **
msg_str(const zmesh__msg_t *msg, const char *key)
{
    zmesh__msg_t *m = (zmesh__msg_t *)msg;
    if (strcmp(key, "name") == 0)
        return &m->name;
    if (strcmp(key, "mesh") == 0)
        return &m->mesh;
    if (strcmp(key, "endpoint") == 0)
        return &m->endpoint;
    if (strcmp(key, "data") == 0)
        return &m->data_endpoint;
    if (strcmp(key, "host") == 0)
        return &m->host;
    if (strcmp(key, "ver") == 0)
        return &m->version_text;
    if (strcmp(key, "topic") == 0)
        return &m->topic;
    if (strcmp(key, "pattern") == 0)
        return &m->pattern;
    if (strcmp(key, "group") == 0)
        return &m->group;
    fail_msg("no str field %s", key);
    return NULL;
}

static uint64_t *
msg_uint(const zmesh__msg_t *msg, const char *key)
{
    zmesh__msg_t *m = (zmesh__msg_t *)msg;
    static const struct {
        const char *key;
        size_t offset;
    } slots[] = {
        {"pid", offsetof(zmesh__msg_t, pid)},
        {"subgen", offsetof(zmesh__msg_t, subs_generation)},
        {"ask", offsetof(zmesh__msg_t, ask)},
        {"req", offsetof(zmesh__msg_t, req)},
        {"first", offsetof(zmesh__msg_t, first)},
        {"last", offsetof(zmesh__msg_t, last)},
        {"join", offsetof(zmesh__msg_t, join)},
        {"done", offsetof(zmesh__msg_t, done)},
        {"status", offsetof(zmesh__msg_t, status)},
        {"redelivered", offsetof(zmesh__msg_t, redelivered)},
    };
    for (size_t i = 0; i < sizeof slots / sizeof slots[0]; i++)
        if (strcmp(slots[i].key, key) == 0)
            return (uint64_t *)((char *)m + slots[i].offset);
    fail_msg("no uint field %s", key);
    return NULL;
}

/*  Whether the codec writes the field: a payload or counters that are
    absent by meaning, and no queue groups, back-pressure or served
    patterns, are left out, as zmesh__msg_encode does (proto/wire.md#body). */
static bool
field_present(const zmesh__msg_t *msg, const field_t *f)
{
    if (f->kind == K_PAYLOAD)
        return msg->payload != NULL;
    if (f->kind == K_COUNTERS)
        return msg->counters != NULL;
    if (f->kind == K_GROUPS)
        return msg->groups_count > 0;
    if (strcmp(f->key, "bp") == 0)
        return msg->bp_subs_count > 0;
    if (strcmp(f->key, "serves") == 0)
        return msg->serves_count > 0;
    return true;
}

static void
pk_value(msgpack_packer *pk, const zmesh__msg_t *msg, const field_t *f,
         const raw_t *raw)
{
    bool nul = raw->nul_in && strcmp(raw->nul_in, f->key) == 0;
    switch (f->kind) {
    case K_STR: pk_str(pk, *msg_str(msg, f->key), nul); break;
    case K_UINT: pk_ok(msgpack_pack_uint64(pk, *msg_uint(msg, f->key))); break;
    case K_PATTERNS: {
        bool pubs = strcmp(f->key, "pubs") == 0;
        bool bp = strcmp(f->key, "bp") == 0;
        bool serves = strcmp(f->key, "serves") == 0;
        char **list = pubs     ? msg->pubs
                      : bp     ? msg->bp_subs
                      : serves ? msg->serves
                               : msg->subs;
        size_t count = pubs     ? msg->pubs_count
                       : bp     ? msg->bp_subs_count
                       : serves ? msg->serves_count
                                : msg->subs_count;
        pk_ok(msgpack_pack_array(pk, count));
        for (size_t i = 0; i < count; i++)
            pk_str(pk, list[i], nul && i == 0);
        break;
    }
    case K_HEADERS: {
        bool nul_key = raw->nul_in && strcmp(raw->nul_in, "headers.key") == 0;
        pk_ok(msgpack_pack_map(pk, msg->headers_count));
        for (size_t i = 0; i < msg->headers_count; i++) {
            pk_str(pk, msg->headers[i].key, nul_key && i == 0);
            pk_str(pk, msg->headers[i].value, nul && i == 0);
        }
        break;
    }
    case K_GOSSIP:
        pk_ok(msgpack_pack_array(pk, msg->peers_count));
        for (size_t i = 0; i < msg->peers_count; i++) {
            pk_ok(msgpack_pack_array(pk, 2));
            pk_ok(msgpack_pack_bin(pk, 16));
            pk_ok(msgpack_pack_bin_body(pk, msg->peers[i].id, 16));
            pk_str(pk, msg->peers[i].endpoint, nul && i == 0);
        }
        break;
    case K_FRAMES:
        pk_ok(msgpack_pack_array(pk, msg->frames_count));
        for (size_t i = 0; i < msg->frames_count; i++) {
            pk_ok(msgpack_pack_bin(pk, msg->frame_sizes[i]));
            pk_ok(
                msgpack_pack_bin_body(pk, msg->frames[i], msg->frame_sizes[i]));
        }
        break;
    case K_PAYLOAD:
        pk_ok(msgpack_pack_bin(pk, msg->payload_size));
        pk_ok(msgpack_pack_bin_body(pk, msg->payload, msg->payload_size));
        break;
    case K_COUNTERS: {
        bool nul_key = raw->nul_in && strcmp(raw->nul_in, "counters.key") == 0;
        bool nul_name =
            raw->nul_in && strcmp(raw->nul_in, "counters.name") == 0;
        pk_ok(msgpack_pack_array(pk, msg->counters_count));
        for (size_t i = 0; i < msg->counters_count; i++) {
            const zmesh__counters_t *c = &msg->counters[i];
            pk_ok(msgpack_pack_array(pk, 3));
            pk_str(pk, c->kind, nul && i == 0);
            pk_str(pk, c->name, nul_name && i == 0);
            pk_ok(msgpack_pack_map(pk, c->count));
            for (size_t j = 0; j < c->count; j++) {
                pk_str(pk, c->keys[j], nul_key && i == 0 && j == 0);
                pk_ok(msgpack_pack_uint64(pk, c->values[j]));
            }
        }
        break;
    }
    case K_GROUPS: {
        bool nul_name = raw->nul_in && strcmp(raw->nul_in, "groups.name") == 0;
        pk_ok(msgpack_pack_array(pk, msg->groups_count));
        for (size_t i = 0; i < msg->groups_count; i++) {
            pk_ok(msgpack_pack_array(pk, 2));
            pk_str(pk, msg->group_patterns[i], nul && i == 0);
            pk_str(pk, msg->group_names[i], nul_name && i == 0);
        }
        break;
    }
    }
}

#define UNKNOWN_KEYS 8

/*  Unknown keys of every kind; the last one nests `depth` deep. A key of
    another type ("peers", or "name" in PEERS) is unknown here too. */
static void
pk_unknown(msgpack_packer *pk, zmesh__msg_type_t type, int depth)
{
    static const uint8_t ext[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    pk_str(pk, "zz-map", false);
    pk_ok(msgpack_pack_map(pk, 1));
    pk_str(pk, "a", false);
    pk_ok(msgpack_pack_array(pk, 3));
    pk_ok(msgpack_pack_uint64(pk, 1));
    pk_ok(msgpack_pack_int64(pk, -1000));
    pk_ok(msgpack_pack_map(pk, 1));
    pk_ok(msgpack_pack_uint64(pk, 7)); // a non-str key inside a skipped map
    pk_ok(msgpack_pack_nil(pk));
    pk_str(pk, "zz-ext", false);
    pk_ok(msgpack_pack_ext(pk, 8, 42));
    pk_ok(msgpack_pack_ext_body(pk, ext, 8));
    pk_str(pk, "zz-bin", false);
    pk_ok(msgpack_pack_bin(pk, 2));
    pk_ok(msgpack_pack_bin_body(pk, "\0\1", 2));
    pk_str(pk, "zz-float", false);
    pk_ok(msgpack_pack_float(pk, 2.5f));
    pk_str(pk, "zz-bool", false);
    pk_ok(msgpack_pack_true(pk));
    pk_str(pk, "zz-\xc3\xa9t\xc3\xa9", false); // UTF-8 key
    pk_ok(msgpack_pack_nil(pk));
    pk_str(pk, type == ZMESH__MSG_PEERS ? "name" : "peers", false);
    pk_ok(msgpack_pack_int64(pk, -5));
    pk_str(pk, "zz-deep", false);
    pk_nested(pk, depth);
}

/*  Whether raw_encode writes the field: not when omitted, nor when absent
    unless a wrong value is asked for. */
static bool
raw_writes(const zmesh__msg_t *msg, const raw_t *raw, const field_t *f)
{
    if (raw->omit && strcmp(raw->omit, f->key) == 0)
        return false;
    return field_present(msg, f) ||
           (raw->wrong && strcmp(raw->wrong, f->key) == 0);
}

/*  Packs `msg` the way the wire spec says, changed as `raw` asks. The
    caller frees *out. */
static void
raw_encode(const zmesh__msg_t *msg, const raw_t *raw, uint8_t **out,
           size_t *size)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    size_t count;
    const field_t *fields = fields_of(msg->type, &count);

    pk_ok(msgpack_pack_array(&pk, 4));
    pk_ok(msgpack_pack_uint64(&pk, raw->set_version ? raw->version : 1));
    pk_ok(msgpack_pack_uint64(&pk, raw->set_type ? raw->type : msg->type));
    size_t sender_size = raw->short_sender ? 15 : 16;
    pk_ok(msgpack_pack_bin(&pk, sender_size));
    pk_ok(msgpack_pack_bin_body(&pk, msg->sender, sender_size));

    size_t entries = 0;
    bool dup_known = false;
    for (size_t i = 0; i < count; i++) {
        if (raw_writes(msg, raw, &fields[i]))
            entries++;
        if (raw->dup && strcmp(raw->dup, fields[i].key) == 0)
            dup_known = true;
    }
    if (raw->dup)
        entries += dup_known ? 1 : 2; // an unknown key is written twice
    if (raw->unknown_depth > 0)
        entries += UNKNOWN_KEYS;
    pk_ok(msgpack_pack_map(&pk, entries));
    for (size_t i = 0; i < count; i++) {
        const field_t *f = &fields[i];
        if (!raw_writes(msg, raw, f))
            continue;
        pk_str(&pk, f->key, false);
        if (raw->wrong && strcmp(raw->wrong, f->key) == 0)
            pk_wrong(&pk, f->kind, raw->wrong_variant);
        else
            pk_value(&pk, msg, f, raw);
    }
    for (size_t i = 0; raw->dup && i < count; i++)
        if (strcmp(raw->dup, fields[i].key) == 0) {
            pk_str(&pk, fields[i].key, false);
            pk_value(&pk, msg, &fields[i], raw);
        }
    for (int i = 0; raw->dup && !dup_known && i < 2; i++) {
        pk_str(&pk, raw->dup, false);
        pk_ok(msgpack_pack_nil(&pk));
    }
    if (raw->unknown_depth > 0)
        pk_unknown(&pk, msg->type, raw->unknown_depth);
    if (raw->trailing)
        pk_ok(msgpack_pack_nil(&pk));
    *size = sbuf.size;
    *out = (uint8_t *)msgpack_sbuffer_release(&sbuf);
}

/*  Raw-encodes `msg` as `raw` says and decodes it; returns the decode's
    result, and on success checks that the message came back whole. */
static int
raw_decode(const zmesh__msg_t *msg, const raw_t *raw)
{
    uint8_t *bytes;
    size_t size;
    raw_encode(msg, raw, &bytes, &size);
    zmesh__msg_t got;
    int rc = decode_exact(bytes, size, &got);
    free(bytes);
    if (rc == 0 && !raw->omit)
        assert_true(msg_equal(msg, &got));
    else if (rc < 0)
        assert_true(msg_is_zero(&got));
    zmesh__msg_clear(&got);
    return rc;
}

/* ------------------------------------------------------------------------ */
/*  Test vectors                                                            */

typedef enum { V_CANONICAL, V_COMPAT, V_OTHER_VERSION, V_BAD } expect_t;
typedef enum { V_CONTROL, V_FRAME, V_BATCH, V_TAIL, V_BEACON } vkind_t;

typedef struct {
    uint8_t *bytes;
    size_t size;
    bool has_mesh;
    char mesh[128];
    long events; /* a batch's `# events: N` comment, -1 when absent */
} vector_t;

/*  Parses a vector file: lowercase hex split over lines at will; lines
    whose first non-blank character is '#' are comments, the comment
    `mesh: "NAME"` names a beacon's mesh and `events: N` gives the number
    of events a batch frame holds. False on anything else. */
static bool
vector_load(const char *path, vector_t *v)
{
    memset(v, 0, sizeof *v);
    v->events = -1;
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t cap = 4096;
    v->bytes = malloc(cap);
    assert_non_null(v->bytes);
    char line[4096];
    bool ok = true;
    while (ok && fgets(line, sizeof line, f)) {
        const char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '#') {
            const char *m = strstr(p, "# mesh: \"");
            if (m == p) {
                const char *start = p + strlen("# mesh: \"");
                const char *end = strchr(start, '"');
                ok = end && (size_t)(end - start) < sizeof v->mesh;
                if (ok) {
                    memcpy(v->mesh, start, (size_t)(end - start));
                    v->mesh[end - start] = '\0';
                    v->has_mesh = true;
                }
            }
            if (strncmp(p, "# events: ", 10) == 0) {
                char *end;
                v->events = strtol(p + 10, &end, 10);
                ok = end != p + 10 && v->events >= 1 &&
                     (*end == '\n' || *end == '\0');
            }
            continue;
        }
        int high = -1;
        for (; *p && ok; p++) {
            int digit;
            if (*p >= '0' && *p <= '9')
                digit = *p - '0';
            else if (*p >= 'a' && *p <= 'f')
                digit = *p - 'a' + 10;
            else if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
                continue;
            else {
                ok = false;
                break;
            }
            if (high < 0) {
                high = digit;
                continue;
            }
            if (v->size == cap) {
                cap *= 2;
                v->bytes = realloc(v->bytes, cap);
                assert_non_null(v->bytes);
            }
            v->bytes[v->size++] = (uint8_t)(high << 4 | digit);
            high = -1;
        }
        if (high >= 0)
            ok = false; // a byte split over two lines, or an odd digit
    }
    fclose(f);
    if (!ok) {
        free(v->bytes);
        v->bytes = NULL;
        return false;
    }
    // Exactly-sized, so ASan sees reads past the end.
    uint8_t *exact = copy_exact(v->bytes, v->size);
    free(v->bytes);
    v->bytes = exact;
    return true;
}

/*  Splits a file name into what is expected of it and what it holds:
    [bad-|compat-|vN-]KIND[-variant].hex (proto/vectors/README.md). */
static bool
vector_classify(const char *name, expect_t *expect, vkind_t *kind,
                uint64_t *version, zmesh__msg_type_t *type)
{
    const char *rest = name;
    *version = 1;
    *type = 0;
    if (strncmp(rest, "bad-", 4) == 0) {
        *expect = V_BAD;
        rest += 4;
    } else if (strncmp(rest, "compat-", 7) == 0) {
        *expect = V_COMPAT;
        rest += 7;
    } else if (rest[0] == 'v' && rest[1] >= '0' && rest[1] <= '9') {
        char *end;
        *version = strtoull(rest + 1, &end, 10);
        if (*end != '-')
            return false;
        *expect = V_OTHER_VERSION;
        rest = end + 1;
    } else
        *expect = V_CANONICAL;
    static const struct {
        const char *word;
        vkind_t kind;
        zmesh__msg_type_t type;
    } words[] = {
        {"hello", V_CONTROL, ZMESH__MSG_HELLO},
        {"advertise", V_CONTROL, ZMESH__MSG_ADVERTISE},
        {"ping", V_CONTROL, ZMESH__MSG_PING},
        {"pong", V_CONTROL, ZMESH__MSG_PONG},
        {"bye", V_CONTROL, ZMESH__MSG_BYE},
        {"peers", V_CONTROL, ZMESH__MSG_PEERS},
        {"nak", V_CONTROL, ZMESH__MSG_NAK},
        {"repair", V_CONTROL, ZMESH__MSG_REPAIR},
        {"history", V_CONTROL, ZMESH__MSG_HISTORY},
        {"direct", V_CONTROL, ZMESH__MSG_DIRECT},
        {"reply", V_CONTROL, ZMESH__MSG_REPLY},
        {"stats", V_CONTROL, ZMESH__MSG_STATS},
        {"deliver", V_CONTROL, ZMESH__MSG_DELIVER},
        {"ack", V_CONTROL, ZMESH__MSG_ACK},
        {"credit", V_CONTROL, ZMESH__MSG_CREDIT},
        {"control", V_CONTROL, 0},
        {"frame", V_FRAME, 0},
        {"batch", V_BATCH, 0},
        {"tail", V_TAIL, 0},
        {"beacon", V_BEACON, 0},
    };
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++) {
        size_t n = strlen(words[i].word);
        if (strncmp(rest, words[i].word, n) == 0 &&
            (rest[n] == '-' || strcmp(rest + n, ".hex") == 0)) {
            *kind = words[i].kind;
            *type = words[i].type;
            // A good control vector must say which type it is.
            return !(*kind == V_CONTROL && *type == 0 &&
                     (*expect == V_CANONICAL || *expect == V_COMPAT));
        }
    }
    return false;
}

static uint64_t
fnv1a(const char *s)
{
    uint64_t h = 0xcbf29ce484222325u;
    for (; *s; s++) {
        h ^= (uint8_t)*s;
        h *= 0x100000001b3u;
    }
    return h;
}

/*  The beacon rules of proto/wire.md#beacon, checked here independently
    of lib/beacon.c (whose own tests use the same vectors): 0 for a valid
    version-1 beacon, 1 for another version, -1 for malformed. */
static int
beacon_check(const uint8_t *b, size_t n, unsigned *version)
{
    if (n < 32 || memcmp(b, "ZMSH", 4) != 0)
        return -1;
    *version = b[4];
    if (b[4] != 1)
        return 1;
    unsigned port = (unsigned)b[6] << 8 | b[7];
    if (port == 0 && !(b[5] & 1))
        return -1;
    return 0;
}

static int failures;

static void vfail(const char *name, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void
vfail(const char *name, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    char text[256];
    vsnprintf(text, sizeof text, format, args);
    va_end(args);
    print_error("vector %s: %s\n", name, text);
    failures++;
}

static void
vector_control(const char *name, const vector_t *v, expect_t expect,
               uint64_t version, zmesh__msg_type_t type)
{
    zmesh__msg_t msg;
    int rc = zmesh__msg_decode(v->bytes, v->size, &msg);
    switch (expect) {
    case V_BAD:
        if (rc != ZMESH_EPROTO)
            vfail(name, "decode gave %d, not ZMESH_EPROTO", rc);
        else if (!msg_is_zero(&msg))
            vfail(name, "message not cleared after a failed decode");
        break;
    case V_OTHER_VERSION:
        if (rc != ZMESH__EVERSION)
            vfail(name, "decode gave %d, not ZMESH__EVERSION", rc);
        else if (msg.version != version)
            vfail(name, "version %u, not %llu", msg.version,
                  (unsigned long long)version);
        else if (msg.name || msg.pubs || msg.peers || msg.type != 0)
            vfail(name, "fields beyond version and sender were set");
        break;
    case V_CANONICAL:
    case V_COMPAT: {
        if (rc != 0) {
            vfail(name, "decode gave %d", rc);
            break;
        }
        if (msg.type != type || msg.version != 1)
            vfail(name, "decoded as type %d version %u", (int)msg.type,
                  msg.version);
        void *again;
        size_t again_size;
        rc = zmesh__msg_encode(&msg, &again, &again_size);
        if (rc != 0) {
            vfail(name, "re-encode gave %d", rc);
            break;
        }
        if (expect == V_CANONICAL &&
            (again_size != v->size || memcmp(again, v->bytes, v->size) != 0))
            vfail(name, "re-encoding differs from the vector");
        if (expect == V_COMPAT) {
            if (again_size == v->size && memcmp(again, v->bytes, v->size) == 0)
                vfail(name, "canonical: name it without compat-");
            zmesh__msg_t second;
            if (zmesh__msg_decode(again, again_size, &second) != 0 ||
                !msg_equal(&msg, &second))
                vfail(name, "re-encoding decodes to another message");
            zmesh__msg_clear(&second);
        }
        free(again);
        break;
    }
    }
    zmesh__msg_clear(&msg);
}

static bool
frame_equal(const zmesh__frame_t *a, const zmesh__frame_t *b)
{
    return a->topic_size == b->topic_size &&
           memcmp(a->topic, b->topic, a->topic_size) == 0 &&
           memcmp(a->publisher, b->publisher, 16) == 0 &&
           a->sequence == b->sequence && a->timestamp_us == b->timestamp_us &&
           a->payload_size == b->payload_size &&
           memcmp(a->payload, b->payload, a->payload_size) == 0;
}

static void
vector_frame(const char *name, const vector_t *v, expect_t expect)
{
    zmesh__frame_t frame;
    int rc = zmesh__frame_decode(v->bytes, v->size, &frame);
    // The data plane reads every frame with zmesh__batch_decode: it must
    // agree with zmesh__frame_decode on each single event's frame.
    zmesh__batch_t batch;
    int batch_rc = zmesh__batch_decode(v->bytes, v->size, &batch);
    if (expect == V_BAD || expect == V_OTHER_VERSION) {
        if (rc != ZMESH_EPROTO)
            vfail(name, "frame decode gave %d, not ZMESH_EPROTO", rc);
        if (batch_rc != ZMESH_EPROTO)
            vfail(name, "batch decode gave %d, not ZMESH_EPROTO", batch_rc);
        return;
    }
    if (rc != 0) {
        vfail(name, "frame decode gave %d", rc);
        return;
    }
    if (batch_rc != 0 || batch.left != 0 ||
        !frame_equal(&frame, &batch.frame) ||
        batch.frame.flags != frame.flags || zmesh__batch_next(&batch))
        vfail(name, "batch decode does not give the same single event");
    if (frame.topic[frame.topic_size] != '\0' ||
        zmesh__msgpack_check(frame.payload, frame.payload_size) != 0)
        vfail(name, "decoded topic or payload is not what it claims");
    size_t cap = v->size + ZMESH__FRAME_OVERHEAD;
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    int n = zmesh__frame_encode(frame.topic, frame.topic_size, frame.publisher,
                                frame.sequence, frame.timestamp_us,
                                frame.payload, frame.payload_size, out, cap);
    if (n < 0)
        vfail(name, "re-encode gave %d", n);
    else if (expect == V_CANONICAL &&
             ((size_t)n != v->size || memcmp(out, v->bytes, v->size) != 0))
        vfail(name, "re-encoding differs from the vector");
    else if (expect == V_COMPAT) {
        zmesh__frame_t second;
        if ((size_t)n == v->size && memcmp(out, v->bytes, v->size) == 0)
            vfail(name, "canonical: name it without compat-");
        if (zmesh__frame_decode(out, (size_t)n, &second) != 0 ||
            !frame_equal(&frame, &second))
            vfail(name, "re-encoding decodes to another frame");
    }
    free(out);
}

/*  The events of a batch, as zmesh__batch_next hands them out; pointers
    into the frame they came from. Two, to compare a re-encoding. */
static zmesh__frame_t walked[2][ZMESH__BATCH_MAX];

/*  Walks a batch zmesh__batch_decode accepted (data, size: the frame) to
    its end into `events`, checking what holds of every batch: left counts
    down to 0, and each event has the frame's topic, publisher, timestamp
    and flags (never the batch bit), the sequence after the one before,
    and a well-formed payload right after the one before, the last ending
    the frame. Sets *count; NULL when all holds, else what does not. */
static const char *
batch_walk(zmesh__batch_t *b, const uint8_t *data, size_t size,
           zmesh__frame_t *events, size_t *count)
{
    *count = 0;
    const zmesh__frame_t first = b->frame;
    uint32_t left = b->left;
    if (left >= ZMESH__BATCH_MAX)
        return "left is ZMESH__BATCH_MAX or more";
    if (b->end != data + size)
        return "end is not the frame's end";
    if (first.topic != (const char *)data || first.topic_size == 0 ||
        first.topic[first.topic_size] != '\0')
        return "topic is not the frame's";
    if (first.flags & ZMESH__FRAME_BATCH)
        return "an event has the batch flag";
    const uint8_t *at = first.payload; // where the next payload starts
    if (at <= data + first.topic_size + 1 || at >= data + size)
        return "first payload outside the frame";
    size_t n = 0;
    do {
        const zmesh__frame_t *f = &b->frame;
        if (b->left != left - n)
            return "left does not count down";
        if (f->topic != first.topic || f->topic_size != first.topic_size ||
            memcmp(f->publisher, first.publisher, ZMESH__ID_SIZE) != 0 ||
            f->timestamp_us != first.timestamp_us || f->flags != first.flags)
            return "an event differs from the frame";
        if (f->sequence != first.sequence + n)
            return "sequences are not consecutive";
        const uint8_t *p = f->payload;
        if (p != at || f->payload_size == 0 ||
            f->payload_size > (size_t)(data + size - p))
            return "payloads are not back to back inside the frame";
        if (zmesh__msgpack_check(p, f->payload_size) != 0)
            return "a payload is not one well-formed object";
        events[n++] = *f;
        at = p + f->payload_size;
    } while (n <= left && zmesh__batch_next(b));
    if (n != (size_t)left + 1)
        return "events walked are not left + 1";
    if (at != data + size)
        return "the last payload does not end the frame";
    if (b->left != 0 || zmesh__batch_next(b) || zmesh__batch_next(b))
        return "batch_next goes on past the last event";
    *count = n;
    return NULL;
}

/*  Encodes `n` events as the publisher would: a batch frame (header, then
    the payloads back to back) for two or more, a plain frame for one.
    The first event gives the topic, publisher, sequence, timestamp and
    flags. Returns an exactly sized heap copy. */
static uint8_t *
batch_encode(const zmesh__frame_t *events, size_t n, size_t *size)
{
    const zmesh__frame_t *f = &events[0];
    if (n == 1) {
        *size = zmesh__frame_size(f->topic_size, f->sequence, f->timestamp_us,
                                  f->payload_size) +
                (f->flags != 0);
        uint8_t *out = malloc(*size);
        assert_non_null(out);
        assert_int_equal(
            zmesh__frame_encode_flags(f->topic, f->topic_size, f->publisher,
                                      f->sequence, f->timestamp_us, f->flags,
                                      f->payload, f->payload_size, out, *size),
            (int)*size);
        return out;
    }
    size_t head =
        zmesh__batch_head_size(f->topic_size, f->sequence, f->timestamp_us, n);
    *size = head;
    for (size_t i = 0; i < n; i++)
        *size += events[i].payload_size;
    uint8_t *out = malloc(*size);
    assert_non_null(out);
    assert_int_equal(zmesh__batch_head_encode(
                         f->topic, f->topic_size, f->publisher, f->sequence,
                         f->timestamp_us, f->flags, n, out, *size),
                     (int)head);
    size_t at = head;
    for (size_t i = 0; i < n; i++) {
        memcpy(out + at, events[i].payload, events[i].payload_size);
        at += events[i].payload_size;
    }
    return out;
}

static bool
events_equal(const zmesh__frame_t *a, const zmesh__frame_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!frame_equal(&a[i], &b[i]) || a[i].flags != b[i].flags)
            return false;
    return true;
}

/*  What batch and tail vectors share: good or bad, neither is a single
    event's frame (zmesh__frame_decode rejects it), and zmesh__batch_decode
    rejects the bad ones. True, with *batch decoded, for a good vector that
    zmesh__batch_decode takes. */
static bool
vector_data_plane(const char *name, const vector_t *v, expect_t expect,
                  zmesh__batch_t *batch)
{
    zmesh__frame_t single;
    int rc = zmesh__frame_decode(v->bytes, v->size, &single);
    if (rc != ZMESH_EPROTO)
        vfail(name, "frame decode gave %d, not ZMESH_EPROTO", rc);
    rc = zmesh__batch_decode(v->bytes, v->size, batch);
    if (expect == V_BAD || expect == V_OTHER_VERSION) {
        if (rc != ZMESH_EPROTO)
            vfail(name, "batch decode gave %d, not ZMESH_EPROTO", rc);
        return false;
    }
    if (rc != 0)
        vfail(name, "batch decode gave %d", rc);
    return rc == 0;
}

static void
vector_batch(const char *name, const vector_t *v, expect_t expect)
{
    zmesh__batch_t batch;
    if (!vector_data_plane(name, v, expect, &batch))
        return;
    if (v->events < 1) {
        vfail(name, "no `# events: N` comment");
        return;
    }
    size_t n;
    const char *why = batch_walk(&batch, v->bytes, v->size, walked[0], &n);
    if (why) {
        vfail(name, "%s", why);
        return;
    }
    if (n != (size_t)v->events) {
        vfail(name, "%zu events, not %ld", n, v->events);
        return;
    }
    size_t size;
    uint8_t *again = batch_encode(walked[0], n, &size);
    bool same = size == v->size && memcmp(again, v->bytes, size) == 0;
    if (expect == V_CANONICAL && !same)
        vfail(name, "re-encoding differs from the vector");
    if (expect == V_COMPAT) {
        size_t m;
        if (same)
            vfail(name, "canonical: name it without compat-");
        if (zmesh__batch_decode(again, size, &batch) != 0 ||
            batch_walk(&batch, again, size, walked[1], &m) != NULL || m != n ||
            !events_equal(walked[0], walked[1], n))
            vfail(name, "re-encoding decodes to other events");
    }
    free(again);
}

static void
vector_beacon(const char *name, const vector_t *v, expect_t expect,
              uint64_t version)
{
    unsigned got_version = 0;
    int rc = beacon_check(v->bytes, v->size, &got_version);
    if (v->has_mesh && v->size >= 16) {
        uint64_t hash = 0;
        for (int i = 0; i < 8; i++)
            hash = hash << 8 | v->bytes[8 + i];
        if (hash != fnv1a(v->mesh))
            vfail(name, "mesh hash is not FNV-1a of \"%s\"", v->mesh);
    }
    switch (expect) {
    case V_BAD:
        if (rc != -1)
            vfail(name, "a valid beacon in a bad- vector");
        break;
    case V_OTHER_VERSION:
        if (rc != 1 || got_version != version)
            vfail(name, "not a well-framed beacon of version %llu",
                  (unsigned long long)version);
        break;
    case V_CANONICAL:
    case V_COMPAT:
        if (rc != 0)
            vfail(name, "not a valid beacon");
        if (!v->has_mesh)
            vfail(name, "no mesh: comment");
        if (expect == V_CANONICAL && (v->size != 32 || (v->bytes[5] & 0xfe)))
            vfail(name, "a canonical beacon is 32 bytes, reserved flags 0");
        break;
    }
}

static int
name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*  Calls `fn` for every vector file, in name order; fails the test when
    there are none, so a moved directory cannot pass silently. */
static void
each_vector(void (*fn)(const char *name, const vector_t *v, void *arg),
            void *arg)
{
    DIR *dir = opendir(VECTOR_DIR);
    if (!dir)
        fail_msg("cannot open %s", VECTOR_DIR);
    char *names[1024];
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir(dir)) != NULL) {
        size_t n = strlen(entry->d_name);
        if (n > 4 && strcmp(entry->d_name + n - 4, ".hex") == 0) {
            assert_true(count < sizeof names / sizeof names[0]);
            names[count] = strdup(entry->d_name);
            assert_non_null(names[count]);
            count++;
        }
    }
    closedir(dir);
    if (count == 0)
        fail_msg("no test vectors in %s", VECTOR_DIR);
    qsort(names, count, sizeof names[0], name_cmp);
    for (size_t i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", VECTOR_DIR, names[i]);
        vector_t v;
        if (!vector_load(path, &v))
            vfail(names[i], "not lowercase hex with '#' comment lines");
        else {
            fn(names[i], &v, arg);
            free(v.bytes);
        }
        free(names[i]);
    }
}

/*  A tail frame is no event: zmesh__frame_decode rejects it, good or
    bad; zmesh__batch_decode reads a good one as a frame of one with the
    tail flag, which encodes back to the same bytes. */
static void
vector_tail(const char *name, const vector_t *v, expect_t expect)
{
    zmesh__batch_t batch;
    if (!vector_data_plane(name, v, expect, &batch))
        return;
    if (batch.batched || batch.left != 0 ||
        !(batch.frame.flags & ZMESH__FRAME_TAIL)) {
        vfail(name, "not read as a tail frame");
        return;
    }
    const zmesh__frame_t *f = &batch.frame;
    size_t cap = v->size + ZMESH__FRAME_OVERHEAD;
    uint8_t *out = malloc(cap);
    assert_non_null(out);
    int n = zmesh__frame_encode_flags(f->topic, f->topic_size, f->publisher,
                                      f->sequence, f->timestamp_us, f->flags,
                                      f->payload, f->payload_size, out, cap);
    bool same =
        n > 0 && (size_t)n == v->size && memcmp(out, v->bytes, v->size) == 0;
    if (expect == V_CANONICAL && !same)
        vfail(name, "re-encoding differs from the vector");
    if (expect == V_COMPAT && same)
        vfail(name, "canonical: name it without compat-");
    free(out);
}

typedef struct {
    size_t canonical[ZMESH__MSG_CREDIT + 1];
    size_t frames, batches, tails, beacons, bad, compat, other;
} tally_t;

static void
vector_run(const char *name, const vector_t *v, void *arg)
{
    tally_t *tally = arg;
    expect_t expect;
    vkind_t kind;
    uint64_t version;
    zmesh__msg_type_t type;
    if (!vector_classify(name, &expect, &kind, &version, &type)) {
        vfail(name, "name does not follow proto/vectors/README.md");
        return;
    }
    tally->bad += expect == V_BAD;
    tally->compat += expect == V_COMPAT;
    tally->other += expect == V_OTHER_VERSION;
    switch (kind) {
    case V_CONTROL:
        if (expect == V_CANONICAL)
            tally->canonical[type]++;
        vector_control(name, v, expect, version, type);
        break;
    case V_FRAME:
        tally->frames += expect == V_CANONICAL;
        vector_frame(name, v, expect);
        break;
    case V_BATCH:
        tally->batches += expect == V_CANONICAL;
        vector_batch(name, v, expect);
        break;
    case V_TAIL:
        tally->tails += expect == V_CANONICAL;
        vector_tail(name, v, expect);
        break;
    case V_BEACON:
        tally->beacons += expect == V_CANONICAL;
        vector_beacon(name, v, expect, version);
        break;
    }
}

static void
test_vectors(void **state)
{
    (void)state;
    failures = 0;
    tally_t tally = {0};
    each_vector(vector_run, &tally);
    for (size_t i = 0; i < ALL_TYPES; i++)
        if (tally.canonical[all_types[i]] == 0) {
            print_error("no canonical vector of type %d\n", all_types[i]);
            failures++;
        }
    if (!tally.frames || !tally.batches || !tally.tails || !tally.beacons ||
        !tally.bad || !tally.compat || !tally.other) {
        print_error("a kind of vector is missing\n");
        failures++;
    }
    assert_int_equal(failures, 0);
}

/*  Every strict prefix of a good vector is rejected, and so is the vector
    with one more byte: a frame's by both frame decoders, a batch's by
    zmesh__batch_decode (zmesh__frame_decode never takes a batch). */
static void
vector_cut(const char *name, const vector_t *v, void *arg)
{
    (void)arg;
    expect_t expect;
    vkind_t kind;
    uint64_t version;
    zmesh__msg_type_t type;
    if (!vector_classify(name, &expect, &kind, &version, &type) ||
        (expect != V_CANONICAL && expect != V_COMPAT) || kind == V_BEACON)
        return;
    for (size_t k = 0; k <= v->size; k++) {
        // Cut to k bytes, or (k == size) one trailing byte added.
        size_t size = k == v->size ? k + 1 : k;
        uint8_t *cut = malloc(size ? size : 1);
        assert_non_null(cut);
        memcpy(cut, v->bytes, k);
        if (k == v->size)
            cut[k] = 0xc0;
        zmesh__msg_t msg;
        int rc = kind == V_CONTROL
                     ? zmesh__msg_decode(cut, size, &msg)
                     : zmesh__frame_decode(cut, size, &(zmesh__frame_t){0});
        if (kind != V_CONTROL) {
            int batch_rc = zmesh__batch_decode(cut, size, &(zmesh__batch_t){0});
            rc = rc != ZMESH_EPROTO ? rc : batch_rc;
        }
        if (kind == V_CONTROL) {
            if (!msg_is_zero(&msg))
                vfail(name, "message not cleared after a failed decode");
            zmesh__msg_clear(&msg);
        }
        free(cut);
        if (rc != ZMESH_EPROTO) {
            vfail(name, "%zu of %zu bytes gave %d", size, v->size, rc);
            break;
        }
    }
}

static void
test_vectors_truncated(void **state)
{
    (void)state;
    failures = 0;
    each_vector(vector_cut, NULL);
    assert_int_equal(failures, 0);
}

/* ------------------------------------------------------------------------ */
/*  Control messages                                                        */

static void
test_round_trip_every_type(void **state)
{
    (void)state;
    for (size_t i = 0; i < ALL_TYPES; i++) {
        zmesh__msg_t msg = sample(all_types[i]);
        void *bytes;
        size_t size;
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), 0);
        zmesh__msg_t got;
        assert_int_equal(decode_exact(bytes, size, &got), 0);
        assert_int_equal(got.version, ZMESH_PROTOCOL_VERSION);
        assert_true(msg_equal(&msg, &got));
        // The mutating encoder, unmutated, writes the same bytes.
        uint8_t *raw;
        size_t raw_size;
        raw_t plain = {0};
        raw_encode(&msg, &plain, &raw, &raw_size);
        assert_int_equal(raw_size, size);
        assert_memory_equal(raw, bytes, size);
        free(raw);
        free(bytes);
        zmesh__msg_clear(&got);
        assert_true(msg_is_zero(&got));
        zmesh__msg_clear(&got); // twice is fine
        zmesh__msg_clear(NULL);
    }
}

static void
test_hello_defaults(void **state)
{
    (void)state;
    // Optional HELLO fields left NULL/0 encode as empty and decode as "".
    zmesh__msg_t msg = {.type = ZMESH__MSG_HELLO,
                        .name = "a",
                        .mesh = "m",
                        .endpoint = "tcp://127.0.0.1:1",
                        .data_endpoint = "tcp://127.0.0.1:2"};
    void *bytes;
    size_t size;
    assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), 0);
    zmesh__msg_t got;
    assert_int_equal(decode_exact(bytes, size, &got), 0);
    assert_string_equal(got.host, "");
    assert_string_equal(got.version_text, "");
    assert_int_equal(got.pubs_count + got.subs_count + got.headers_count, 0);
    assert_null(got.pubs);
    zmesh__msg_clear(&got);
    free(bytes);

    // Optional keys may be left out on the wire.
    static const char *optional[] = {"host",   "ver",  "pid",    "headers",
                                     "pubs",   "subs", "subgen", "ask",
                                     "groups", "bp",   "serves"};
    msg = sample(ZMESH__MSG_HELLO);
    for (size_t i = 0; i < sizeof optional / sizeof optional[0]; i++) {
        raw_t raw = {.omit = optional[i]};
        uint8_t *b;
        raw_encode(&msg, &raw, &b, &size);
        assert_int_equal(decode_exact(b, size, &got), 0);
        if (strcmp(optional[i], "host") == 0)
            assert_string_equal(got.host, "");
        if (strcmp(optional[i], "pubs") == 0)
            assert_int_equal(got.pubs_count, 0);
        if (strcmp(optional[i], "groups") == 0) {
            assert_int_equal(got.groups_count, 0);
            assert_null(got.group_patterns);
            assert_null(got.group_names);
        }
        if (strcmp(optional[i], "bp") == 0) {
            assert_int_equal(got.bp_subs_count, 0);
            assert_null(got.bp_subs);
        }
        if (strcmp(optional[i], "serves") == 0) {
            assert_int_equal(got.serves_count, 0);
            assert_null(got.serves);
        }
        zmesh__msg_clear(&got);
        free(b);
    }
}

static void
test_encode_rejects(void **state)
{
    (void)state;
    void *bytes = NULL;
    size_t size = 0;
    zmesh__msg_t msg = sample(ZMESH__MSG_HELLO);
    assert_int_equal(zmesh__msg_encode(NULL, &bytes, &size), ZMESH_EINVAL);
    assert_int_equal(zmesh__msg_encode(&msg, NULL, &size), ZMESH_EINVAL);
    assert_int_equal(zmesh__msg_encode(&msg, &bytes, NULL), ZMESH_EINVAL);

    static const int bad_types[] = {0, 127, 255};
    for (size_t i = 0; i < 3; i++) {
        msg.type = (zmesh__msg_type_t)bad_types[i];
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), ZMESH_EINVAL);
    }

    static const char *required[] = {"name", "mesh", "endpoint", "data"};
    for (size_t i = 0; i < 4; i++) {
        msg = sample(ZMESH__MSG_HELLO);
        *msg_str(&msg, required[i]) = NULL;
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), ZMESH_EINVAL);
    }

    msg = sample(ZMESH__MSG_HELLO);
    msg.name = "x\xc3\x28"; // not UTF-8
    assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), ZMESH_EINVAL);

    msg = sample(ZMESH__MSG_ADVERTISE);
    msg.pubs = NULL; // count 2, no array
    assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), ZMESH_EINVAL);
    char *with_null[] = {"a", NULL};
    msg = sample(ZMESH__MSG_ADVERTISE);
    msg.subs = with_null;
    msg.subs_count = 2;
    assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), ZMESH_EINVAL);

    zmesh__header_t dup[] = {{"a", "1"}, {"a", "2"}};
    msg = sample(ZMESH__MSG_HELLO);
    msg.headers = dup;
    msg.headers_count = 2;
    assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), ZMESH_EINVAL);
    zmesh__header_t null_value[] = {{"a", NULL}};
    msg.headers = null_value;
    msg.headers_count = 1;
    assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), ZMESH_EINVAL);

    zmesh__gossip_t no_endpoint[] = {{{0}, NULL}};
    msg = sample(ZMESH__MSG_PEERS);
    msg.peers = no_endpoint;
    msg.peers_count = 1;
    assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), ZMESH_EINVAL);
    assert_null(bytes);
}

/*  Limits: each case sets one field at or past its limit. The codec's
    encoder must accept exactly what its decoder accepts. */
static char *many[1025];
static zmesh__header_t many_headers[33];
static zmesh__gossip_t many_peers[1025];

typedef struct {
    const char *what;
    zmesh__msg_type_t type;
    void (*set)(zmesh__msg_t *msg, size_t n);
    size_t n;
    bool ok;
} limit_t;

static void
set_name(zmesh__msg_t *m, size_t n)
{
    m->name = rep('n', n);
}
static void
set_mesh(zmesh__msg_t *m, size_t n)
{
    m->mesh = rep('m', n);
}
static void
set_endpoint(zmesh__msg_t *m, size_t n)
{
    m->endpoint = rep('e', n);
}
static void
set_data(zmesh__msg_t *m, size_t n)
{
    m->data_endpoint = rep('d', n);
}
static void
set_host(zmesh__msg_t *m, size_t n)
{
    m->host = rep('h', n);
}
static void
set_ver(zmesh__msg_t *m, size_t n)
{
    m->version_text = rep('v', n);
}
static void
set_pattern(zmesh__msg_t *m, size_t n)
{
    many[0] = rep('p', n);
    m->pubs = many;
    m->pubs_count = 1;
}
static void
set_pubs(zmesh__msg_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        many[i] = "a.*";
    m->pubs = many;
    m->pubs_count = n;
}
static void
set_subs(zmesh__msg_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        many[i] = "b.>";
    m->subs = many;
    m->subs_count = n;
}
static void
set_headers(zmesh__msg_t *m, size_t n)
{
    static char keys[33][8];
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "k%u", (unsigned)(i & 0xff));
        many_headers[i].key = keys[i];
        many_headers[i].value = "v";
    }
    m->headers = many_headers;
    m->headers_count = n;
}
static void
set_header_key(zmesh__msg_t *m, size_t n)
{
    many_headers[0].key = rep('k', n);
    many_headers[0].value = "v";
    m->headers = many_headers;
    m->headers_count = 1;
}
static void
set_header_value(zmesh__msg_t *m, size_t n)
{
    many_headers[0].key = "k";
    many_headers[0].value = rep('v', n);
    m->headers = many_headers;
    m->headers_count = 1;
}
static void
set_peers(zmesh__msg_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        memset(many_peers[i].id, (int)(i & 0xff), 16);
        many_peers[i].endpoint = "tcp://10.1.2.3:4567";
    }
    m->peers = many_peers;
    m->peers_count = n;
}
static void
set_peer_endpoint(zmesh__msg_t *m, size_t n)
{
    memset(many_peers[0].id, 1, 16);
    many_peers[0].endpoint = rep('e', n);
    m->peers = many_peers;
    m->peers_count = 1;
}
static void
set_utf8_name(zmesh__msg_t *m, size_t n)
{
    // 62 ASCII bytes and one 2-byte (n == 2) or 3-byte (n == 3) character.
    char *s = rep('u', 62 + n);
    if (n == 2)
        memcpy(s + 62, "\xc3\xa9", 2);
    else
        memcpy(s + 62, "\xe2\x82\xac", 3);
    m->name = s;
}

static void
set_topic(zmesh__msg_t *m, size_t n)
{
    m->topic = rep('t', n);
}
static void
set_history_pattern(zmesh__msg_t *m, size_t n)
{
    m->pattern = rep('p', n);
}

/*  n copies of the smallest frame ("a", sequence 1, timestamp 0, nil). */
static uint8_t tiny_frame[32];
static void *many_frames[4097];
static size_t many_frame_sizes[4097];
static void
set_frames(zmesh__msg_t *m, size_t n)
{
    static const uint8_t nil = 0xc0;
    size_t size = make_frame(tiny_frame, "a", id_a, 1, &nil, 1);
    for (size_t i = 0; i < n; i++) {
        many_frames[i] = tiny_frame;
        many_frame_sizes[i] = size;
    }
    m->frames = many_frames;
    m->frame_sizes = many_frame_sizes;
    m->frames_count = n;
}

static zmesh__counters_t many_groups[1025];
static char *many_keys[65];
static uint64_t many_values[65];
static void
set_groups(zmesh__msg_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        many_groups[i] = (zmesh__counters_t){"peer", "", NULL, NULL, 0};
    m->counters = many_groups;
    m->counters_count = n;
}
static void
set_counter_keys(zmesh__msg_t *m, size_t n)
{
    static char keys[65][8];
    for (size_t i = 0; i < n; i++) {
        snprintf(keys[i], sizeof keys[i], "c%u", (unsigned)i);
        many_keys[i] = keys[i];
        many_values[i] = i;
    }
    many_groups[0] =
        (zmesh__counters_t){"agent", "", many_keys, many_values, n};
    m->counters = many_groups;
    m->counters_count = 1;
}
static void
set_counter_key(zmesh__msg_t *m, size_t n)
{
    many_keys[0] = rep('k', n);
    many_values[0] = 1;
    many_groups[0] =
        (zmesh__counters_t){"agent", "", many_keys, many_values, 1};
    m->counters = many_groups;
    m->counters_count = 1;
}
static void
set_kind(zmesh__msg_t *m, size_t n)
{
    many_groups[0] = (zmesh__counters_t){rep('k', n), "", NULL, NULL, 0};
    m->counters = many_groups;
    m->counters_count = 1;
}
static void
set_group_name(zmesh__msg_t *m, size_t n)
{
    many_groups[0] = (zmesh__counters_t){"topic", rep('n', n), NULL, NULL, 0};
    m->counters = many_groups;
    m->counters_count = 1;
}

/*  Queue groups: n pairs, or one pair with a pattern or a group name of n
    bytes. */
static char *many_group_names[1025];
static void
set_queue_groups(zmesh__msg_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        many[i] = "orders.>";
        many_group_names[i] = "g";
    }
    m->group_patterns = many;
    m->group_names = many_group_names;
    m->groups_count = n;
}
static void
set_queue_pattern(zmesh__msg_t *m, size_t n)
{
    many[0] = rep('p', n);
    many_group_names[0] = "g";
    m->group_patterns = many;
    m->group_names = many_group_names;
    m->groups_count = 1;
}
static void
set_queue_name(zmesh__msg_t *m, size_t n)
{
    many[0] = "orders.>";
    many_group_names[0] = rep('g', n);
    m->group_patterns = many;
    m->group_names = many_group_names;
    m->groups_count = 1;
}
/*  62 ASCII bytes and one 2-byte (n == 2) or 3-byte (n == 3) character. */
static void
set_queue_utf8_name(zmesh__msg_t *m, size_t n)
{
    char *name = rep('u', 62 + n);
    memcpy(name + 62, n == 2 ? "\xc3\xa9" : "\xe2\x82\xac", n);
    many[0] = "orders.>";
    many_group_names[0] = name;
    m->group_patterns = many;
    m->group_names = many_group_names;
    m->groups_count = 1;
}
static void
set_deliver_group(zmesh__msg_t *m, size_t n)
{
    m->group = rep('g', n);
}

/*  Back-pressure patterns: n of them, or one of n bytes. */
static void
set_bp(zmesh__msg_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        many[i] = "b.>";
    m->bp_subs = many;
    m->bp_subs_count = n;
}
static void
set_bp_pattern(zmesh__msg_t *m, size_t n)
{
    many[0] = rep('p', n);
    m->bp_subs = many;
    m->bp_subs_count = 1;
}

/*  Served patterns: n of them, or one of n bytes. */
static void
set_serves(zmesh__msg_t *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        many[i] = "s.*";
    m->serves = many;
    m->serves_count = n;
}
static void
set_serves_pattern(zmesh__msg_t *m, size_t n)
{
    many[0] = rep('s', n);
    m->serves = many;
    m->serves_count = 1;
}

static const limit_t limits[] = {
    {"name 64", ZMESH__MSG_HELLO, set_name, 64, true},
    {"name 65", ZMESH__MSG_HELLO, set_name, 65, false},
    {"name 1", ZMESH__MSG_HELLO, set_name, 1, true},
    {"name 0", ZMESH__MSG_HELLO, set_name, 0, false},
    {"name 64 bytes of UTF-8", ZMESH__MSG_HELLO, set_utf8_name, 2, true},
    {"name 65 bytes of UTF-8", ZMESH__MSG_HELLO, set_utf8_name, 3, false},
    {"mesh 64", ZMESH__MSG_HELLO, set_mesh, 64, true},
    {"mesh 65", ZMESH__MSG_HELLO, set_mesh, 65, false},
    {"mesh 0", ZMESH__MSG_HELLO, set_mesh, 0, false},
    {"endpoint 255", ZMESH__MSG_HELLO, set_endpoint, 255, true},
    {"endpoint 256", ZMESH__MSG_HELLO, set_endpoint, 256, false},
    {"endpoint 0", ZMESH__MSG_HELLO, set_endpoint, 0, false},
    {"data 255", ZMESH__MSG_HELLO, set_data, 255, true},
    {"data 256", ZMESH__MSG_HELLO, set_data, 256, false},
    {"data 0", ZMESH__MSG_HELLO, set_data, 0, false},
    {"host 255", ZMESH__MSG_HELLO, set_host, 255, true},
    {"host 256", ZMESH__MSG_HELLO, set_host, 256, false},
    {"host 0", ZMESH__MSG_HELLO, set_host, 0, true},
    {"ver 255", ZMESH__MSG_HELLO, set_ver, 255, true},
    {"ver 256", ZMESH__MSG_HELLO, set_ver, 256, false},
    {"ver 0", ZMESH__MSG_HELLO, set_ver, 0, true},
    {"pattern 255", ZMESH__MSG_ADVERTISE, set_pattern, 255, true},
    {"pattern 256", ZMESH__MSG_ADVERTISE, set_pattern, 256, false},
    {"pattern 0", ZMESH__MSG_ADVERTISE, set_pattern, 0, false},
    {"pattern 256 in HELLO", ZMESH__MSG_HELLO, set_pattern, 256, false},
    {"pubs 1024", ZMESH__MSG_ADVERTISE, set_pubs, 1024, true},
    {"pubs 1025", ZMESH__MSG_ADVERTISE, set_pubs, 1025, false},
    {"subs 1024", ZMESH__MSG_HELLO, set_subs, 1024, true},
    {"subs 1025", ZMESH__MSG_HELLO, set_subs, 1025, false},
    {"subs 1025 in ADVERTISE", ZMESH__MSG_ADVERTISE, set_subs, 1025, false},
    {"headers 32", ZMESH__MSG_HELLO, set_headers, 32, true},
    {"headers 33", ZMESH__MSG_HELLO, set_headers, 33, false},
    {"header key 64", ZMESH__MSG_HELLO, set_header_key, 64, true},
    {"header key 65", ZMESH__MSG_HELLO, set_header_key, 65, false},
    {"header key 0", ZMESH__MSG_HELLO, set_header_key, 0, false},
    {"header value 255", ZMESH__MSG_HELLO, set_header_value, 255, true},
    {"header value 256", ZMESH__MSG_HELLO, set_header_value, 256, false},
    {"header value 0", ZMESH__MSG_HELLO, set_header_value, 0, true},
    {"peers 1024", ZMESH__MSG_PEERS, set_peers, 1024, true},
    {"peers 1025", ZMESH__MSG_PEERS, set_peers, 1025, false},
    {"peers 0", ZMESH__MSG_PEERS, set_peers, 0, true},
    {"peer endpoint 255", ZMESH__MSG_PEERS, set_peer_endpoint, 255, true},
    {"peer endpoint 256", ZMESH__MSG_PEERS, set_peer_endpoint, 256, false},
    {"peer endpoint 0", ZMESH__MSG_PEERS, set_peer_endpoint, 0, false},
    {"NAK topic 255", ZMESH__MSG_NAK, set_topic, 255, true},
    {"NAK topic 256", ZMESH__MSG_NAK, set_topic, 256, false},
    {"NAK topic 0", ZMESH__MSG_NAK, set_topic, 0, false},
    {"DIRECT topic 255", ZMESH__MSG_DIRECT, set_topic, 255, true},
    {"DIRECT topic 256", ZMESH__MSG_DIRECT, set_topic, 256, false},
    {"HISTORY pattern 255", ZMESH__MSG_HISTORY, set_history_pattern, 255, true},
    {"HISTORY pattern 256", ZMESH__MSG_HISTORY, set_history_pattern, 256,
     false},
    {"HISTORY pattern 0", ZMESH__MSG_HISTORY, set_history_pattern, 0, false},
    {"frames 4096", ZMESH__MSG_REPAIR, set_frames, 4096, true},
    {"frames 4097", ZMESH__MSG_REPAIR, set_frames, 4097, false},
    {"frames 0", ZMESH__MSG_REPAIR, set_frames, 0, true},
    {"counter groups 1024", ZMESH__MSG_STATS, set_groups, 1024, true},
    {"counter groups 1025", ZMESH__MSG_STATS, set_groups, 1025, false},
    {"counter groups 0", ZMESH__MSG_STATS, set_groups, 0, true},
    {"counters 64", ZMESH__MSG_STATS, set_counter_keys, 64, true},
    {"counters 65", ZMESH__MSG_STATS, set_counter_keys, 65, false},
    {"counter key 64", ZMESH__MSG_STATS, set_counter_key, 64, true},
    {"counter key 65", ZMESH__MSG_STATS, set_counter_key, 65, false},
    {"counter key 0", ZMESH__MSG_STATS, set_counter_key, 0, false},
    {"kind 16", ZMESH__MSG_STATS, set_kind, 16, true},
    {"kind 17", ZMESH__MSG_STATS, set_kind, 17, false},
    {"kind 0", ZMESH__MSG_STATS, set_kind, 0, false},
    {"group name 255", ZMESH__MSG_STATS, set_group_name, 255, true},
    {"group name 256", ZMESH__MSG_STATS, set_group_name, 256, false},
    {"group name 0", ZMESH__MSG_STATS, set_group_name, 0, true},
    {"queue groups 1024", ZMESH__MSG_HELLO, set_queue_groups, 1024, true},
    {"queue groups 1025", ZMESH__MSG_HELLO, set_queue_groups, 1025, false},
    {"queue groups 0", ZMESH__MSG_HELLO, set_queue_groups, 0, true},
    {"queue groups 1024 in ADVERTISE", ZMESH__MSG_ADVERTISE, set_queue_groups,
     1024, true},
    {"queue groups 1025 in ADVERTISE", ZMESH__MSG_ADVERTISE, set_queue_groups,
     1025, false},
    {"queue groups 0 in ADVERTISE", ZMESH__MSG_ADVERTISE, set_queue_groups, 0,
     true},
    {"queue pattern 255", ZMESH__MSG_HELLO, set_queue_pattern, 255, true},
    {"queue pattern 256", ZMESH__MSG_HELLO, set_queue_pattern, 256, false},
    {"queue pattern 0", ZMESH__MSG_ADVERTISE, set_queue_pattern, 0, false},
    {"queue group name 64", ZMESH__MSG_ADVERTISE, set_queue_name, 64, true},
    {"queue group name 65", ZMESH__MSG_ADVERTISE, set_queue_name, 65, false},
    {"queue group name 1", ZMESH__MSG_HELLO, set_queue_name, 1, true},
    {"queue group name 0", ZMESH__MSG_HELLO, set_queue_name, 0, false},
    {"queue group name 64 bytes of UTF-8", ZMESH__MSG_HELLO,
     set_queue_utf8_name, 2, true},
    {"queue group name 65 bytes of UTF-8", ZMESH__MSG_HELLO,
     set_queue_utf8_name, 3, false},
    {"DELIVER group 64", ZMESH__MSG_DELIVER, set_deliver_group, 64, true},
    {"DELIVER group 65", ZMESH__MSG_DELIVER, set_deliver_group, 65, false},
    {"DELIVER group 0", ZMESH__MSG_DELIVER, set_deliver_group, 0, false},
    {"DELIVER frames 4096", ZMESH__MSG_DELIVER, set_frames, 4096, true},
    {"DELIVER frames 4097", ZMESH__MSG_DELIVER, set_frames, 4097, false},
    {"DELIVER frames 0", ZMESH__MSG_DELIVER, set_frames, 0, true},
    {"bp 1024", ZMESH__MSG_HELLO, set_bp, 1024, true},
    {"bp 1025", ZMESH__MSG_HELLO, set_bp, 1025, false},
    {"bp 0", ZMESH__MSG_HELLO, set_bp, 0, true},
    {"bp 1024 in ADVERTISE", ZMESH__MSG_ADVERTISE, set_bp, 1024, true},
    {"bp 1025 in ADVERTISE", ZMESH__MSG_ADVERTISE, set_bp, 1025, false},
    {"bp 0 in ADVERTISE", ZMESH__MSG_ADVERTISE, set_bp, 0, true},
    {"bp pattern 255", ZMESH__MSG_HELLO, set_bp_pattern, 255, true},
    {"bp pattern 256", ZMESH__MSG_HELLO, set_bp_pattern, 256, false},
    {"bp pattern 0", ZMESH__MSG_ADVERTISE, set_bp_pattern, 0, false},
    {"bp pattern 256 in ADVERTISE", ZMESH__MSG_ADVERTISE, set_bp_pattern, 256,
     false},
    {"serves 1024", ZMESH__MSG_HELLO, set_serves, 1024, true},
    {"serves 1025", ZMESH__MSG_HELLO, set_serves, 1025, false},
    {"serves 0", ZMESH__MSG_HELLO, set_serves, 0, true},
    {"serves 1024 in ADVERTISE", ZMESH__MSG_ADVERTISE, set_serves, 1024, true},
    {"serves 1025 in ADVERTISE", ZMESH__MSG_ADVERTISE, set_serves, 1025, false},
    {"serves 0 in ADVERTISE", ZMESH__MSG_ADVERTISE, set_serves, 0, true},
    {"serves pattern 255", ZMESH__MSG_HELLO, set_serves_pattern, 255, true},
    {"serves pattern 256", ZMESH__MSG_HELLO, set_serves_pattern, 256, false},
    {"serves pattern 0", ZMESH__MSG_ADVERTISE, set_serves_pattern, 0, false},
    {"serves pattern 256 in ADVERTISE", ZMESH__MSG_ADVERTISE,
     set_serves_pattern, 256, false},
    {"CREDIT topic 255", ZMESH__MSG_CREDIT, set_topic, 255, true},
    {"CREDIT topic 256", ZMESH__MSG_CREDIT, set_topic, 256, false},
    {"CREDIT topic 0", ZMESH__MSG_CREDIT, set_topic, 0, false},
};

static void
test_limits(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        const limit_t *c = &limits[i];
        zmesh__msg_t msg = sample(c->type);
        c->set(&msg, c->n);
        raw_t raw = {0};
        int rc = raw_decode(&msg, &raw);
        if (rc != (c->ok ? 0 : ZMESH_EPROTO))
            fail_msg("%s: decode gave %d", c->what, rc);
        void *bytes = NULL;
        size_t size;
        rc = zmesh__msg_encode(&msg, &bytes, &size);
        if (rc != (c->ok ? 0 : ZMESH_EINVAL))
            fail_msg("%s: encode gave %d", c->what, rc);
        free(bytes);
        free_strings();
    }
}

/*  Field rules of the request messages: each case changes one field of the
    type's sample, and the decoder (fed by the mutating encoder) and the
    encoder must agree on it. */
typedef struct {
    const char *what;
    zmesh__msg_type_t type;
    /* a uint key, "topic", "pattern", "group", "payload", "frame" (the
       last frame), "range" (first = number, last = number2), "no-payload"
       (status = number, payload absent), "kind", "name" (of the first
       counter group), "dup-key" (its two keys the same), "queue-pattern"
       or "queue-name" (of the first queue group), "bp-pattern" (the
       first back-pressure pattern), "serves-pattern" (the first served
       pattern) */
    const char *field;
    uint64_t number, number2;
    const char *text;
    const uint8_t *bytes;
    size_t size;
    bool ok;
} rule_t;

#define BYTES(...) .bytes = B(__VA_ARGS__)
#define B(...)                                                                 \
    (const uint8_t[]){__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__})
#define ID16                                                                   \
    0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,    \
        0xcc, 0xdd, 0xee, 0xff
#define ID16_B                                                                 \
    0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10, 0x01, 0x23, 0x45, 0x67,    \
        0x89, 0xab, 0xcd, 0xef

static const rule_t rules[] = {
    {"NAK first 0", ZMESH__MSG_NAK, "first", 0, .ok = false},
    {"NAK 1..1", ZMESH__MSG_NAK, "range", 1, 1, .ok = true},
    {"NAK 300..300", ZMESH__MSG_NAK, "range", 300, 300, .ok = true},
    {"NAK last < first", ZMESH__MSG_NAK, "range", 301, 300, .ok = false},
    {"NAK 2^64-1..2^64-1", ZMESH__MSG_NAK, "range", UINT64_MAX, UINT64_MAX,
     .ok = true},
    {"NAK last 0", ZMESH__MSG_NAK, "range", 1, 0, .ok = false},
    {"NAK join 0", ZMESH__MSG_NAK, "join", 0, .ok = true},
    {"NAK join 2", ZMESH__MSG_NAK, "join", 2, .ok = false},
    {"NAK join 2^64-1", ZMESH__MSG_NAK, "join", UINT64_MAX, .ok = false},
    {"NAK req 0", ZMESH__MSG_NAK, "req", 0, .ok = true},
    {"NAK reserved topic", ZMESH__MSG_NAK, "topic", .text = "$mesh.peer.joined",
     .ok = true},
    {"NAK UTF-8 topic", ZMESH__MSG_NAK, "topic", .text = "caf\xc3\xa9.x",
     .ok = true},
    {"NAK topic *", ZMESH__MSG_NAK, "topic", .text = "orders.*", .ok = false},
    {"NAK topic >", ZMESH__MSG_NAK, "topic", .text = "orders.>", .ok = false},
    {"NAK topic a..b", ZMESH__MSG_NAK, "topic", .text = "a..b", .ok = false},
    {"NAK topic .a", ZMESH__MSG_NAK, "topic", .text = ".a", .ok = false},
    {"NAK topic a.", ZMESH__MSG_NAK, "topic", .text = "a.", .ok = false},
    {"NAK topic with space", ZMESH__MSG_NAK, "topic", .text = "a b",
     .ok = false},
    {"NAK topic with DEL", ZMESH__MSG_NAK, "topic", .text = "a\x7f",
     .ok = false},
    {"NAK topic with ff", ZMESH__MSG_NAK, "topic", .text = "\xff", .ok = false},
    {"REPAIR done 0", ZMESH__MSG_REPAIR, "done", 0, .ok = true},
    {"REPAIR done 2", ZMESH__MSG_REPAIR, "done", 2, .ok = false},
    {"REPAIR join 0", ZMESH__MSG_REPAIR, "join", 0, .ok = true},
    {"REPAIR join 2", ZMESH__MSG_REPAIR, "join", 2, .ok = false},
    {"REPAIR req 0", ZMESH__MSG_REPAIR, "req", 0, .ok = true},
    {"REPAIR frame not a frame", ZMESH__MSG_REPAIR, "frame",
     BYTES('h', 'e', 'l', 'l', 'o'), .ok = false},
    {"REPAIR frame empty topic", ZMESH__MSG_REPAIR, "frame",
     BYTES(0x00, 0x93, 0xc4, 0x10, ID16, 0x01, 0x00, 0xc0), .ok = false},
    {"REPAIR frame two objects", ZMESH__MSG_REPAIR, "frame",
     BYTES('a', 0x00, 0x93, 0xc4, 0x10, ID16, 0x01, 0x00, 0xc0, 0xc0),
     .ok = false},
    {"REPAIR frame no payload", ZMESH__MSG_REPAIR, "frame",
     BYTES('a', 0x00, 0x93, 0xc4, 0x10, ID16, 0x01, 0x00), .ok = false},
    {"REPAIR frame seq 0", ZMESH__MSG_REPAIR, "frame",
     BYTES('a', 0x00, 0x93, 0xc4, 0x10, ID16, 0x00, 0x00, 0xc0), .ok = false},
    // The publisher is the agent's to check (proto/wire.md#repair).
    {"REPAIR frame of another publisher", ZMESH__MSG_REPAIR, "frame",
     BYTES('a', 0x00, 0x93, 0xc4, 0x10, ID16_B, 0x01, 0x00, 0xc0), .ok = true},
    {"REPAIR frame with a 4th meta element", ZMESH__MSG_REPAIR, "frame",
     BYTES('a', 0x00, 0x94, 0xc4, 0x10, ID16, 0x01, 0x00, 0x80, 0xc0),
     .ok = true},
    {"REPAIR frame of a bad topic", ZMESH__MSG_REPAIR, "frame",
     BYTES('a', '.', '*', 0x00, 0x93, 0xc4, 0x10, ID16, 0x01, 0x00, 0xc0),
     .ok = true}, // frames are matched, not syntax-checked, by receivers
    {"HISTORY >", ZMESH__MSG_HISTORY, "pattern", .text = ">", .ok = true},
    {"HISTORY *", ZMESH__MSG_HISTORY, "pattern", .text = "*", .ok = true},
    {"HISTORY $mesh.>", ZMESH__MSG_HISTORY, "pattern", .text = "$mesh.>",
     .ok = true},
    {"HISTORY a topic", ZMESH__MSG_HISTORY, "pattern", .text = "a.b",
     .ok = true},
    {"HISTORY > not last", ZMESH__MSG_HISTORY, "pattern", .text = "a.>.b",
     .ok = false},
    {"HISTORY a*", ZMESH__MSG_HISTORY, "pattern", .text = "a*", .ok = false},
    {"HISTORY a..b", ZMESH__MSG_HISTORY, "pattern", .text = "a..b",
     .ok = false},
    {"HISTORY tab", ZMESH__MSG_HISTORY, "pattern", .text = "a\tb", .ok = false},
    {"DIRECT req 0", ZMESH__MSG_DIRECT, "req", 0, .ok = true},
    {"DIRECT reserved topic", ZMESH__MSG_DIRECT, "topic", .text = "$mesh.x",
     .ok = true},
    {"DIRECT topic *", ZMESH__MSG_DIRECT, "topic", .text = "jobs.*",
     .ok = false},
    {"DIRECT payload nil", ZMESH__MSG_DIRECT, "payload", BYTES(0xc0),
     .ok = true},
    {"DIRECT payload nil nil", ZMESH__MSG_DIRECT, "payload", BYTES(0xc0, 0xc0),
     .ok = false},
    {"DIRECT payload 0xc1", ZMESH__MSG_DIRECT, "payload", BYTES(0xc1),
     .ok = false},
    {"DIRECT payload truncated", ZMESH__MSG_DIRECT, "payload",
     BYTES(0x92, 0x01), .ok = false},
    {"DIRECT payload bad timestamp", ZMESH__MSG_DIRECT, "payload",
     BYTES(0xd5, 0xff, 0x00, 0x00), .ok = false},
    {"DIRECT payload absent", ZMESH__MSG_DIRECT, "payload", .bytes = NULL,
     .ok = false},
    {"REPLY req 0", ZMESH__MSG_REPLY, "req", 0, .ok = false},
    {"REPLY req 1", ZMESH__MSG_REPLY, "req", 1, .ok = true},
    {"REPLY status 0 without payload", ZMESH__MSG_REPLY, "no-payload",
     ZMESH__REPLY_OK, .ok = false},
    {"REPLY status 1 without payload", ZMESH__MSG_REPLY, "no-payload",
     ZMESH__REPLY_NO_HANDLER, .ok = true},
    {"REPLY status 2 without payload", ZMESH__MSG_REPLY, "no-payload",
     ZMESH__REPLY_REFUSED, .ok = true},
    {"REPLY status 2^64-1 without payload", ZMESH__MSG_REPLY, "no-payload",
     UINT64_MAX, .ok = true},
    {"REPLY status 1 with payload", ZMESH__MSG_REPLY, "status", 1, .ok = true},
    {"REPLY status 3 with payload", ZMESH__MSG_REPLY, "status", 3, .ok = true},
    {"REPLY payload two objects", ZMESH__MSG_REPLY, "payload",
     BYTES(0x01, 0x02), .ok = false},
    {"STATS req 0", ZMESH__MSG_STATS, "req", 0, .ok = true},
    {"STATS other kind", ZMESH__MSG_STATS, "kind", .text = "relay", .ok = true},
    {"STATS kind with space", ZMESH__MSG_STATS, "kind", .text = "a b",
     .ok = true},
    {"STATS kind not UTF-8", ZMESH__MSG_STATS, "kind", .text = "\xc3\x28",
     .ok = false},
    {"STATS name NULL reads as empty", ZMESH__MSG_STATS, "name", .text = NULL,
     .ok = true},
    {"STATS name not UTF-8", ZMESH__MSG_STATS, "name", .text = "\xed\xa0\x80",
     .ok = false},
    {"STATS duplicate counter", ZMESH__MSG_STATS, "dup-key", .ok = false},
    {"DELIVER redelivered 0", ZMESH__MSG_DELIVER, "redelivered", 0, .ok = true},
    {"DELIVER redelivered 1", ZMESH__MSG_DELIVER, "redelivered", 1, .ok = true},
    {"DELIVER redelivered 2", ZMESH__MSG_DELIVER, "redelivered", 2,
     .ok = false},
    {"DELIVER redelivered 2^64-1", ZMESH__MSG_DELIVER, "redelivered",
     UINT64_MAX, .ok = false},
    {"DELIVER req 0", ZMESH__MSG_DELIVER, "req", 0, .ok = true},
    {"DELIVER req 2^64-1", ZMESH__MSG_DELIVER, "req", UINT64_MAX, .ok = true},
    {"DELIVER UTF-8 group", ZMESH__MSG_DELIVER, "group", .text = "caf\xc3\xa9",
     .ok = true},
    {"DELIVER group not UTF-8", ZMESH__MSG_DELIVER, "group", .text = "\xc0\xaf",
     .ok = false},
    {"DELIVER frame not a frame", ZMESH__MSG_DELIVER, "frame",
     BYTES('h', 'e', 'l', 'l', 'o'), .ok = false},
    {"DELIVER frame seq 0", ZMESH__MSG_DELIVER, "frame",
     BYTES('a', 0x00, 0x93, 0xc4, 0x10, ID16, 0x00, 0x00, 0xc0), .ok = false},
    {"DELIVER frame two objects", ZMESH__MSG_DELIVER, "frame",
     BYTES('a', 0x00, 0x93, 0xc4, 0x10, ID16, 0x01, 0x00, 0xc0, 0xc0),
     .ok = false},
    // As in REPAIR, the publisher is not the codec's to check.
    {"DELIVER frame of another publisher", ZMESH__MSG_DELIVER, "frame",
     BYTES('a', 0x00, 0x93, 0xc4, 0x10, ID16_B, 0x01, 0x00, 0xc0), .ok = true},
    {"ACK req 0", ZMESH__MSG_ACK, "req", 0, .ok = true},
    {"ACK req 2^64-1", ZMESH__MSG_ACK, "req", UINT64_MAX, .ok = true},
    {"queue pattern >", ZMESH__MSG_HELLO, "queue-pattern", .text = ">",
     .ok = true},
    {"queue pattern $mesh.>", ZMESH__MSG_ADVERTISE, "queue-pattern",
     .text = "$mesh.>", .ok = true},
    {"queue pattern a topic", ZMESH__MSG_ADVERTISE, "queue-pattern",
     .text = "orders.eu.created", .ok = true},
    {"queue pattern > not last", ZMESH__MSG_HELLO, "queue-pattern",
     .text = "a.>.b", .ok = false},
    {"queue pattern a..b", ZMESH__MSG_ADVERTISE, "queue-pattern",
     .text = "a..b", .ok = false},
    {"queue pattern a*", ZMESH__MSG_ADVERTISE, "queue-pattern", .text = "a*",
     .ok = false},
    {"queue pattern with space", ZMESH__MSG_HELLO, "queue-pattern",
     .text = "a b", .ok = false},
    {"queue pattern not UTF-8", ZMESH__MSG_HELLO, "queue-pattern",
     .text = "a.\xff", .ok = false},
    {"queue group name UTF-8", ZMESH__MSG_ADVERTISE, "queue-name",
     .text = "\xe2\x82\xac-workers", .ok = true},
    {"queue group name not UTF-8", ZMESH__MSG_ADVERTISE, "queue-name",
     .text = "\xed\xa0\x80", .ok = false},
    // The wire checks only the str rules; the name rules are the API's.
    {"queue group name with a dot", ZMESH__MSG_HELLO, "queue-name",
     .text = "a.b", .ok = true},
    {"CREDIT last 0", ZMESH__MSG_CREDIT, "last", 0, .ok = false},
    {"CREDIT last 1", ZMESH__MSG_CREDIT, "last", 1, .ok = true},
    {"CREDIT last 2^64-1", ZMESH__MSG_CREDIT, "last", UINT64_MAX, .ok = true},
    {"CREDIT reserved topic", ZMESH__MSG_CREDIT, "topic",
     .text = "$mesh.peer.joined", .ok = true},
    {"CREDIT UTF-8 topic", ZMESH__MSG_CREDIT, "topic", .text = "caf\xc3\xa9.x",
     .ok = true},
    {"CREDIT topic *", ZMESH__MSG_CREDIT, "topic", .text = "orders.*",
     .ok = false},
    {"CREDIT topic >", ZMESH__MSG_CREDIT, "topic", .text = ">", .ok = false},
    {"CREDIT topic a..b", ZMESH__MSG_CREDIT, "topic", .text = "a..b",
     .ok = false},
    {"CREDIT topic with space", ZMESH__MSG_CREDIT, "topic", .text = "a b",
     .ok = false},
    {"CREDIT topic not UTF-8", ZMESH__MSG_CREDIT, "topic", .text = "a.\xc0\xaf",
     .ok = false},
    {"bp pattern >", ZMESH__MSG_HELLO, "bp-pattern", .text = ">", .ok = true},
    {"bp pattern $mesh.>", ZMESH__MSG_ADVERTISE, "bp-pattern",
     .text = "$mesh.>", .ok = true},
    {"bp pattern a topic", ZMESH__MSG_ADVERTISE, "bp-pattern",
     .text = "orders.eu.created", .ok = true},
    {"bp pattern UTF-8", ZMESH__MSG_HELLO, "bp-pattern",
     .text = "caf\xc3\xa9.*", .ok = true},
    {"bp pattern > not last", ZMESH__MSG_HELLO, "bp-pattern", .text = "a.>.b",
     .ok = false},
    {"bp pattern a..b", ZMESH__MSG_ADVERTISE, "bp-pattern", .text = "a..b",
     .ok = false},
    {"bp pattern a*", ZMESH__MSG_ADVERTISE, "bp-pattern", .text = "a*",
     .ok = false},
    {"bp pattern .a", ZMESH__MSG_HELLO, "bp-pattern", .text = ".a",
     .ok = false},
    {"bp pattern with space", ZMESH__MSG_HELLO, "bp-pattern", .text = "a b",
     .ok = false},
    {"bp pattern with tab", ZMESH__MSG_ADVERTISE, "bp-pattern", .text = "a\tb",
     .ok = false},
    {"bp pattern not UTF-8", ZMESH__MSG_HELLO, "bp-pattern", .text = "a.\xff",
     .ok = false},
    {"serves pattern >", ZMESH__MSG_HELLO, "serves-pattern", .text = ">",
     .ok = true},
    {"serves pattern $mesh.>", ZMESH__MSG_ADVERTISE, "serves-pattern",
     .text = "$mesh.>", .ok = true},
    {"serves pattern a topic", ZMESH__MSG_ADVERTISE, "serves-pattern",
     .text = "inventory.lookup", .ok = true},
    {"serves pattern *", ZMESH__MSG_HELLO, "serves-pattern", .text = "*",
     .ok = true},
    {"serves pattern UTF-8", ZMESH__MSG_HELLO, "serves-pattern",
     .text = "caf\xc3\xa9.*", .ok = true},
    {"serves pattern > not last", ZMESH__MSG_HELLO, "serves-pattern",
     .text = "a.>.b", .ok = false},
    {"serves pattern a..b", ZMESH__MSG_ADVERTISE, "serves-pattern",
     .text = "a..b", .ok = false},
    {"serves pattern a*", ZMESH__MSG_ADVERTISE, "serves-pattern", .text = "a*",
     .ok = false},
    {"serves pattern a.", ZMESH__MSG_HELLO, "serves-pattern", .text = "a.",
     .ok = false},
    {"serves pattern with space", ZMESH__MSG_HELLO, "serves-pattern",
     .text = "a b", .ok = false},
    {"serves pattern with DEL", ZMESH__MSG_ADVERTISE, "serves-pattern",
     .text = "a\x7f", .ok = false},
    {"serves pattern not UTF-8", ZMESH__MSG_HELLO, "serves-pattern",
     .text = "a.\xc0\xaf", .ok = false},
};

static void
rule_apply(zmesh__msg_t *msg, const rule_t *rule)
{
    static void *frames[2];
    static size_t frame_sizes[2];
    static zmesh__counters_t groups[2];
    static char *dup_keys[] = {"a", "a"};
    static char *queue_patterns[3];
    static char *queue_names[3];
    static char *bp[2];
    static char *serves[2];
    const char *f = rule->field;
    if (strcmp(f, "topic") == 0 || strcmp(f, "pattern") == 0 ||
        strcmp(f, "group") == 0)
        *msg_str(msg, f) = (char *)rule->text;
    else if (strcmp(f, "queue-pattern") == 0 || strcmp(f, "queue-name") == 0) {
        memcpy(queue_patterns, msg->group_patterns,
               msg->groups_count * sizeof queue_patterns[0]);
        memcpy(queue_names, msg->group_names,
               msg->groups_count * sizeof queue_names[0]);
        if (f[6] == 'p')
            queue_patterns[0] = (char *)rule->text;
        else
            queue_names[0] = (char *)rule->text;
        msg->group_patterns = queue_patterns;
        msg->group_names = queue_names;
    } else if (strcmp(f, "bp-pattern") == 0) {
        memcpy(bp, msg->bp_subs, msg->bp_subs_count * sizeof bp[0]);
        bp[0] = (char *)rule->text;
        msg->bp_subs = bp;
    } else if (strcmp(f, "serves-pattern") == 0) {
        memcpy(serves, msg->serves, msg->serves_count * sizeof serves[0]);
        serves[0] = (char *)rule->text;
        msg->serves = serves;
    } else if (strcmp(f, "payload") == 0) {
        msg->payload = (void *)rule->bytes;
        msg->payload_size = rule->size;
    } else if (strcmp(f, "no-payload") == 0) {
        msg->status = rule->number;
        msg->payload = NULL;
        msg->payload_size = 0;
    } else if (strcmp(f, "range") == 0) {
        msg->first = rule->number;
        msg->last = rule->number2;
    } else if (strcmp(f, "frame") == 0) {
        size_t last = msg->frames_count - 1;
        memcpy(frames, msg->frames, msg->frames_count * sizeof frames[0]);
        memcpy(frame_sizes, msg->frame_sizes,
               msg->frames_count * sizeof frame_sizes[0]);
        frames[last] = (void *)rule->bytes;
        frame_sizes[last] = rule->size;
        msg->frames = frames;
        msg->frame_sizes = frame_sizes;
    } else if (strcmp(f, "kind") == 0 || strcmp(f, "name") == 0 ||
               strcmp(f, "dup-key") == 0) {
        memcpy(groups, msg->counters, sizeof groups);
        if (f[0] == 'k')
            groups[0].kind = (char *)rule->text;
        else if (f[0] == 'n')
            groups[0].name = (char *)rule->text;
        else
            groups[0].keys = dup_keys;
        msg->counters = groups;
    } else
        *msg_uint(msg, f) = rule->number;
}

static void
test_request_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++) {
        const rule_t *c = &rules[i];
        zmesh__msg_t msg = sample(c->type);
        rule_apply(&msg, c);
        raw_t raw = {0};
        int rc = raw_decode(&msg, &raw);
        if (rc != (c->ok ? 0 : ZMESH_EPROTO))
            fail_msg("%s: decode gave %d", c->what, rc);
        void *bytes = NULL;
        size_t size;
        rc = zmesh__msg_encode(&msg, &bytes, &size);
        if (rc != (c->ok ? 0 : ZMESH_EINVAL))
            fail_msg("%s: encode gave %d", c->what, rc);
        if (rc == 0) {
            // What the codec writes is what the mutating encoder writes.
            uint8_t *raw_bytes;
            size_t raw_size;
            raw_encode(&msg, &raw, &raw_bytes, &raw_size);
            if (raw_size != size || memcmp(raw_bytes, bytes, size) != 0)
                fail_msg("%s: encodings differ", c->what);
            free(raw_bytes);
        }
        free(bytes);
    }
}

/*  Misuse the encoder must refuse (ZMESH_EINVAL), writing nothing:
    missing required fields, counts without arrays, NULL entries. */
static void
test_encode_rejects_requests(void **state)
{
    (void)state;
    static const uint8_t payload[] = {0xc0};
    void *no_frames[] = {sample_frames[0], NULL};
    char *null_key[] = {"a", NULL};
    uint64_t values[2] = {1, 2};
    zmesh__counters_t group;
    for (int which = 0;; which++) {
        zmesh__msg_t msg;
        switch (which) {
        case 0:
            msg = sample(ZMESH__MSG_NAK);
            msg.topic = NULL;
            break;
        case 1:
            msg = sample(ZMESH__MSG_HISTORY);
            msg.pattern = NULL;
            break;
        case 2:
            msg = sample(ZMESH__MSG_DIRECT);
            msg.topic = NULL;
            break;
        case 3:
            msg = sample(ZMESH__MSG_DIRECT);
            msg.payload = NULL;
            break;
        case 4:
            msg = sample(ZMESH__MSG_DIRECT);
            msg.payload_size = 0; // a payload of no bytes is no object
            break;
        case 5:
            msg = sample(ZMESH__MSG_REPLY);
            msg.status = ZMESH__REPLY_NO_HANDLER;
            msg.payload = NULL; // but a size
            break;
        case 6:
            msg = sample(ZMESH__MSG_REPLY);
            msg.payload = NULL;
            msg.payload_size = 0;
            break;
        case 7:
            msg = sample(ZMESH__MSG_REPAIR);
            msg.frames = NULL;
            break;
        case 8:
            msg = sample(ZMESH__MSG_REPAIR);
            msg.frame_sizes = NULL;
            break;
        case 9:
            msg = sample(ZMESH__MSG_REPAIR);
            no_frames[0] = sample_frames[0];
            msg.frames = no_frames;
            break;
        case 10:
            msg = sample(ZMESH__MSG_STATS);
            msg.counters = NULL; // with a count
            break;
        case 11:
            msg = sample(ZMESH__MSG_STATS);
            group = (zmesh__counters_t){NULL, "", NULL, NULL, 0};
            msg.counters = &group;
            msg.counters_count = 1;
            break;
        case 12:
            msg = sample(ZMESH__MSG_STATS);
            group = (zmesh__counters_t){"agent", "", NULL, values, 2};
            msg.counters = &group;
            msg.counters_count = 1;
            break;
        case 13:
            msg = sample(ZMESH__MSG_STATS);
            group = (zmesh__counters_t){"agent", "", null_key, NULL, 2};
            msg.counters = &group;
            msg.counters_count = 1;
            break;
        case 14:
            msg = sample(ZMESH__MSG_STATS);
            group = (zmesh__counters_t){"agent", "", null_key, values, 2};
            msg.counters = &group;
            msg.counters_count = 1;
            break;
        case 15:
            msg = sample(ZMESH__MSG_DIRECT);
            msg.payload = (void *)payload;
            msg.payload_size = 2; // one byte more than the object
            break;
        case 16:
            msg = sample(ZMESH__MSG_DELIVER);
            msg.group = NULL;
            break;
        case 17:
            msg = sample(ZMESH__MSG_DELIVER);
            msg.frames = NULL; // with a count
            break;
        case 18:
            msg = sample(ZMESH__MSG_HELLO);
            msg.group_patterns = NULL; // with a count
            break;
        case 19:
            msg = sample(ZMESH__MSG_ADVERTISE);
            msg.group_names = NULL;
            break;
        case 20:
            msg = sample(ZMESH__MSG_ADVERTISE);
            msg.group_patterns = null_key; // "a", then NULL
            msg.groups_count = 2;
            break;
        case 21:
            msg = sample(ZMESH__MSG_ADVERTISE);
            msg.group_names = null_key;
            msg.groups_count = 2;
            break;
        case 22:
            msg = sample(ZMESH__MSG_CREDIT);
            msg.topic = NULL;
            break;
        case 23:
            msg = sample(ZMESH__MSG_CREDIT);
            msg.last = 0;
            break;
        case 24:
            msg = sample(ZMESH__MSG_HELLO);
            msg.bp_subs = NULL; // with a count
            break;
        case 25:
            msg = sample(ZMESH__MSG_ADVERTISE);
            msg.bp_subs = null_key; // "a", then NULL
            msg.bp_subs_count = 2;
            break;
        case 26:
            msg = sample(ZMESH__MSG_HELLO);
            msg.serves = NULL; // with a count
            break;
        case 27:
            msg = sample(ZMESH__MSG_ADVERTISE);
            msg.serves = null_key; // "a", then NULL
            msg.serves_count = 2;
            break;
        default: return;
        }
        void *bytes = NULL;
        size_t size = 0;
        if (zmesh__msg_encode(&msg, &bytes, &size) != ZMESH_EINVAL)
            fail_msg("case %d encoded", which);
        assert_null(bytes);
    }
}

/*  Absent and empty are different answers: a STATS question has no
    counters, an answer with none has an empty array; a REPLY without a
    payload has none; NAK's join and DELIVER's redelivered default to 0. */
static void
test_absent_by_meaning(void **state)
{
    (void)state;
    zmesh__msg_t msg = sample(ZMESH__MSG_STATS);
    zmesh__counters_t none;
    for (int answer = 0; answer < 2; answer++) {
        msg.counters = answer ? &none : NULL;
        msg.counters_count = 0;
        void *bytes;
        size_t size;
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), 0);
        // The body is a map of 1 (req) or 2 (req, counters []).
        assert_int_equal(((uint8_t *)bytes)[21], answer ? 0x82 : 0x81);
        zmesh__msg_t got;
        assert_int_equal(decode_exact(bytes, size, &got), 0);
        assert_int_equal(got.counters_count, 0);
        if (answer)
            assert_non_null(got.counters);
        else
            assert_null(got.counters);
        zmesh__msg_clear(&got);
        free(bytes);
    }

    msg = sample(ZMESH__MSG_REPLY);
    msg.status = ZMESH__REPLY_REFUSED;
    msg.payload = NULL;
    msg.payload_size = 0;
    void *bytes;
    size_t size;
    assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), 0);
    zmesh__msg_t got;
    assert_int_equal(decode_exact(bytes, size, &got), 0);
    assert_null(got.payload);
    assert_int_equal(got.payload_size, 0);
    assert_int_equal(got.status, ZMESH__REPLY_REFUSED);
    zmesh__msg_clear(&got);
    free(bytes);

    msg = sample(ZMESH__MSG_DELIVER);
    msg.redelivered = 0;
    raw_t no_redelivered = {.omit = "redelivered"};
    assert_int_equal(raw_decode(&msg, &no_redelivered), 0);

    msg = sample(ZMESH__MSG_NAK);
    msg.join = 0; // so the decoded message equals it
    raw_t no_join = {.omit = "join"};
    assert_int_equal(raw_decode(&msg, &no_join), 0);
    uint8_t *raw_bytes;
    raw_encode(&msg, &no_join, &raw_bytes, &size);
    assert_int_equal(decode_exact(raw_bytes, size, &got), 0);
    assert_int_equal(got.join, 0);
    assert_string_equal(got.topic, "orders.eu.created");
    zmesh__msg_clear(&got);
    free(raw_bytes);
}

/*  Decoded requests own heap copies of everything (the input is freed
    before they are read, so ASan sees any pointer into it), and
    zmesh__msg_clear frees them all (LeakSanitizer) and zeroes the message. */
static void
test_clear_requests(void **state)
{
    (void)state;
    static const zmesh__msg_type_t types[] = {
        ZMESH__MSG_NAK,     ZMESH__MSG_REPAIR, ZMESH__MSG_HISTORY,
        ZMESH__MSG_DIRECT,  ZMESH__MSG_REPLY,  ZMESH__MSG_STATS,
        ZMESH__MSG_DELIVER, ZMESH__MSG_ACK,    ZMESH__MSG_CREDIT};
    for (size_t t = 0; t < sizeof types / sizeof types[0]; t++) {
        zmesh__msg_t msg = sample(types[t]);
        void *bytes;
        size_t size;
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), 0);
        zmesh__msg_t got;
        assert_int_equal(decode_exact(bytes, size, &got), 0);
        free(bytes);
        assert_true(msg_equal(&msg, &got));
        assert_true(got.topic != msg.topic || !got.topic);
        assert_true(got.payload != msg.payload || !got.payload);
        assert_true(got.group != msg.group || !got.group);
        for (size_t i = 0; i < got.frames_count; i++) {
            zmesh__frame_t frame;
            assert_int_equal(
                zmesh__frame_decode(got.frames[i], got.frame_sizes[i], &frame),
                0);
            assert_int_equal(frame.sequence, 5 + i);
        }
        if (types[t] == ZMESH__MSG_DELIVER) {
            assert_string_equal(got.group, "billing");
            assert_int_equal(got.redelivered, 1);
            assert_int_equal(got.frames_count, 1);
        }
        if (types[t] == ZMESH__MSG_ACK)
            assert_int_equal(got.req, 70000);
        if (types[t] == ZMESH__MSG_CREDIT) {
            assert_string_equal(got.topic, "orders.eu.created");
            assert_int_equal(got.last, 70000);
            assert_int_equal(got.req, 0);
        }
        if (types[t] == ZMESH__MSG_STATS) {
            assert_string_equal(got.counters[1].kind, "topic");
            assert_string_equal(got.counters[1].name, "orders.eu.created");
            assert_string_equal(got.counters[0].keys[1], "naks_sent");
            assert_true(got.counters[0].values[1] == UINT64_MAX);
        }
        zmesh__msg_clear(&got);
        assert_true(msg_is_zero(&got));
        zmesh__msg_clear(&got);
    }
}

/*  Queue groups in HELLO and ADVERTISE: decoded into heap copies that
    zmesh__msg_clear frees (LeakSanitizer), also when a later pair fails
    after earlier ones were copied; and a message without groups, from an
    agent that has none or predates them, still decodes, while the encoder
    writes no "groups" key for none (proto/wire.md#body). */
static void
test_queue_groups(void **state)
{
    (void)state;
    static const zmesh__msg_type_t types[] = {ZMESH__MSG_HELLO,
                                              ZMESH__MSG_ADVERTISE};
    for (size_t t = 0; t < 2; t++) {
        zmesh__msg_t msg = sample(types[t]);
        void *bytes;
        size_t size;
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), 0);
        zmesh__msg_t got;
        assert_int_equal(decode_exact(bytes, size, &got), 0);
        free(bytes);
        assert_int_equal(got.groups_count, msg.groups_count);
        for (size_t i = 0; i < got.groups_count; i++) {
            assert_string_equal(got.group_patterns[i],
                                sample_group_patterns[i]);
            assert_string_equal(got.group_names[i], sample_group_names[i]);
            assert_true(got.group_patterns[i] != sample_group_patterns[i]);
        }
        zmesh__msg_clear(&got);
        assert_true(msg_is_zero(&got));

        // A bad last pair: the copies of the first ones are freed.
        char *patterns[] = {"a.>", "b.*", "c..d"};
        char *names[] = {"g1", "g2", "g3"};
        msg.group_patterns = patterns;
        msg.group_names = names;
        msg.groups_count = 3;
        raw_t raw = {0};
        assert_int_equal(raw_decode(&msg, &raw), ZMESH_EPROTO);
        patterns[2] = "c.d";
        names[2] = "";
        assert_int_equal(raw_decode(&msg, &raw), ZMESH_EPROTO);
        names[2] = "g3";
        assert_int_equal(raw_decode(&msg, &raw), 0);

        // None: no key at all, so an agent without groups sends what it
        // sent before they existed; and such a message decodes.
        msg = sample(types[t]);
        msg.groups_count = 0; // the arrays stay set: the count rules
        msg.bp_subs_count = 0;
        msg.serves_count = 0;
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), 0);
        uint8_t *body = (uint8_t *)bytes + 21; // after the envelope
        assert_int_equal(*body, types[t] == ZMESH__MSG_HELLO ? 0x8c : 0x83);
        assert_false(contains(bytes, size, "\xa6groups", 7));
        assert_int_equal(decode_exact(bytes, size, &got), 0);
        assert_int_equal(got.groups_count, 0);
        assert_null(got.group_patterns);
        assert_null(got.group_names);
        assert_int_equal(got.subs_count, msg.subs_count);
        zmesh__msg_clear(&got);
        free(bytes);
        raw_t omitted = {.omit = "groups"};
        assert_int_equal(raw_decode(&msg, &omitted), 0);
    }

    // An empty "groups" array is accepted as none.
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    pk_ok(msgpack_pack_array(&pk, 4));
    pk_ok(msgpack_pack_uint64(&pk, 1));
    pk_ok(msgpack_pack_uint64(&pk, ZMESH__MSG_ADVERTISE));
    pk_ok(msgpack_pack_bin(&pk, 16));
    pk_ok(msgpack_pack_bin_body(&pk, id_a, 16));
    pk_ok(msgpack_pack_map(&pk, 4));
    pk_str(&pk, "groups", false);
    pk_ok(msgpack_pack_array(&pk, 0));
    pk_str(&pk, "pubs", false);
    pk_ok(msgpack_pack_array(&pk, 0));
    pk_str(&pk, "subs", false);
    pk_ok(msgpack_pack_array(&pk, 0));
    pk_str(&pk, "subgen", false);
    pk_ok(msgpack_pack_uint64(&pk, 2));
    zmesh__msg_t got;
    assert_int_equal(decode_exact(sbuf.data, sbuf.size, &got), 0);
    assert_int_equal(got.groups_count, 0);
    assert_null(got.group_patterns);
    zmesh__msg_clear(&got);
    msgpack_sbuffer_destroy(&sbuf);
}

/*  Canonical HELLO and ADVERTISE vectors: those without an optional list
    key ("bp", "serves") decode to no such patterns and re-encode byte for
    byte, so an agent that has none sends the bytes it sent before the key
    existed; those with one keep it. */
typedef struct {
    const char *key; /* the key as the codec writes it */
    size_t key_size;
    bool serves; /* which list: serves, else bp_subs */
    size_t without, with;
} list_tally_t;

/*  The str "bp" and the str "serves" as the codec writes the keys. */
#define BP_KEY "\xa2\x62\x70"
#define SERVES_KEY "\xa6serves"
#define SERVES_KEY_SIZE 7

static void
vector_list_key(const char *name, const vector_t *v, void *arg)
{
    list_tally_t *tally = arg;
    expect_t expect;
    vkind_t kind;
    uint64_t version;
    zmesh__msg_type_t type;
    if (!vector_classify(name, &expect, &kind, &version, &type) ||
        expect != V_CANONICAL ||
        (type != ZMESH__MSG_HELLO && type != ZMESH__MSG_ADVERTISE))
        return;
    bool has_key = contains(v->bytes, v->size, tally->key, tally->key_size);
    zmesh__msg_t msg;
    if (zmesh__msg_decode(v->bytes, v->size, &msg) != 0) {
        vfail(name, "does not decode");
        return;
    }
    size_t count = tally->serves ? msg.serves_count : msg.bp_subs_count;
    if (has_key != (count > 0))
        vfail(name, "key %s and %zu decoded patterns disagree", tally->key + 1,
              count);
    void *again;
    size_t size;
    if (zmesh__msg_encode(&msg, &again, &size) != 0)
        vfail(name, "does not encode");
    else {
        if (size != v->size || memcmp(again, v->bytes, size) != 0)
            vfail(name, "re-encoding differs");
        free(again);
    }
    if (has_key)
        tally->with++;
    else
        tally->without++;
    zmesh__msg_clear(&msg);
}

/*  Back-pressure patterns in HELLO and ADVERTISE: decoded into heap copies
    that zmesh__msg_clear frees (LeakSanitizer), also when a later pattern
    fails after earlier ones were copied; their syntax is checked both
    ways; none means no "bp" key, and an empty array reads as none. */
static void
test_backpressure(void **state)
{
    (void)state;
    static const zmesh__msg_type_t types[] = {ZMESH__MSG_HELLO,
                                              ZMESH__MSG_ADVERTISE};
    for (size_t t = 0; t < 2; t++) {
        zmesh__msg_t msg = sample(types[t]);
        msg.serves_count = 0; // what follows "bp" is test_serves's
        void *bytes;
        size_t size;
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), 0);
        zmesh__msg_t got;
        assert_int_equal(decode_exact(bytes, size, &got), 0);
        assert_int_equal(got.bp_subs_count, msg.bp_subs_count);
        for (size_t i = 0; i < got.bp_subs_count; i++) {
            assert_string_equal(got.bp_subs[i], sample_bp[i]);
            assert_true(got.bp_subs[i] != sample_bp[i]);
        }
        // "groups" and then "bp", the last key.
        const uint8_t *end = (const uint8_t *)bytes + size;
        size_t tail = 3 + 1;
        for (size_t i = 0; i < msg.bp_subs_count; i++)
            tail += 1 + strlen(sample_bp[i]);
        assert_memory_equal(end - tail, BP_KEY, 3);
        assert_true(contains(bytes, size - tail, "\xa6groups", 7));
        zmesh__msg_clear(&got);
        assert_true(msg_is_zero(&got));
        free(bytes);

        // A bad last pattern: the copies of the first ones are freed.
        char *patterns[] = {"a.>", "b.*", "c..d"};
        msg.bp_subs = patterns;
        msg.bp_subs_count = 3;
        raw_t raw = {0};
        assert_int_equal(raw_decode(&msg, &raw), ZMESH_EPROTO);
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), ZMESH_EINVAL);
        patterns[2] = "";
        assert_int_equal(raw_decode(&msg, &raw), ZMESH_EPROTO);
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), ZMESH_EINVAL);
        patterns[2] = rep('p', 256);
        assert_int_equal(raw_decode(&msg, &raw), ZMESH_EPROTO);
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), ZMESH_EINVAL);
        patterns[2] = "c.d";
        assert_int_equal(raw_decode(&msg, &raw), 0);
        free_strings();

        // None: no key, whether or not there are queue groups.
        for (int groups = 0; groups < 2; groups++) {
            msg = sample(types[t]);
            msg.bp_subs_count = 0; // the array stays set: the count rules
            msg.serves_count = 0;
            if (!groups)
                msg.groups_count = 0;
            assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), 0);
            uint8_t body = ((uint8_t *)bytes)[21]; // after the envelope
            if (types[t] == ZMESH__MSG_HELLO)
                assert_int_equal(body, groups ? 0x8d : 0x8c);
            else
                assert_int_equal(body, groups ? 0x84 : 0x83);
            assert_false(contains(bytes, size, BP_KEY, 3));
            assert_int_equal(decode_exact(bytes, size, &got), 0);
            assert_int_equal(got.bp_subs_count, 0);
            assert_null(got.bp_subs);
            zmesh__msg_clear(&got);
            free(bytes);
            raw_t omitted = {.omit = "bp"};
            assert_int_equal(raw_decode(&msg, &omitted), 0);
        }
    }

    // An empty "bp" array, first of the keys, is accepted as none.
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    pk_ok(msgpack_pack_array(&pk, 4));
    pk_ok(msgpack_pack_uint64(&pk, 1));
    pk_ok(msgpack_pack_uint64(&pk, ZMESH__MSG_ADVERTISE));
    pk_ok(msgpack_pack_bin(&pk, 16));
    pk_ok(msgpack_pack_bin_body(&pk, id_a, 16));
    pk_ok(msgpack_pack_map(&pk, 4));
    pk_str(&pk, "bp", false);
    pk_ok(msgpack_pack_array(&pk, 0));
    pk_str(&pk, "pubs", false);
    pk_ok(msgpack_pack_array(&pk, 0));
    pk_str(&pk, "subs", false);
    pk_ok(msgpack_pack_array(&pk, 0));
    pk_str(&pk, "subgen", false);
    pk_ok(msgpack_pack_uint64(&pk, 2));
    zmesh__msg_t got;
    assert_int_equal(decode_exact(sbuf.data, sbuf.size, &got), 0);
    assert_int_equal(got.bp_subs_count, 0);
    assert_null(got.bp_subs);
    zmesh__msg_clear(&got);
    msgpack_sbuffer_destroy(&sbuf);

    // "bp" is HELLO's and ADVERTISE's: in any other type it is an unknown
    // key, skipped even when it would be malformed there.
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    pk_ok(msgpack_pack_array(&pk, 4));
    pk_ok(msgpack_pack_uint64(&pk, 1));
    pk_ok(msgpack_pack_uint64(&pk, ZMESH__MSG_CREDIT));
    pk_ok(msgpack_pack_bin(&pk, 16));
    pk_ok(msgpack_pack_bin_body(&pk, id_b, 16));
    pk_ok(msgpack_pack_map(&pk, 3));
    pk_str(&pk, "bp", false);
    pk_ok(msgpack_pack_map(&pk, 0));
    pk_str(&pk, "topic", false);
    pk_str(&pk, "a.b", false);
    pk_str(&pk, "last", false);
    pk_ok(msgpack_pack_uint64(&pk, 9));
    assert_int_equal(decode_exact(sbuf.data, sbuf.size, &got), 0);
    assert_int_equal(got.type, ZMESH__MSG_CREDIT);
    assert_string_equal(got.topic, "a.b");
    assert_int_equal(got.last, 9);
    assert_int_equal(got.bp_subs_count, 0);
    assert_memory_equal(got.sender, id_b, 16);
    zmesh__msg_clear(&got);
    msgpack_sbuffer_destroy(&sbuf);

    failures = 0;
    list_tally_t tally = {.key = BP_KEY, .key_size = 3};
    each_vector(vector_list_key, &tally);
    assert_int_equal(failures, 0);
    // hello, hello-minimal, hello-limits, hello-groups, advertise,
    // advertise-empty and advertise-groups predate "bp".
    assert_true(tally.without >= 7);
    assert_true(tally.with >= 2);
}

/*  Served patterns in HELLO and ADVERTISE: decoded into heap copies that
    zmesh__msg_clear frees (LeakSanitizer), also when a later pattern fails
    after earlier ones were copied; their syntax is checked both ways;
    "serves" is written last, after "groups" and "bp"; none means no
    "serves" key, and an empty array reads as none. */
static void
test_serves(void **state)
{
    (void)state;
    static const zmesh__msg_type_t types[] = {ZMESH__MSG_HELLO,
                                              ZMESH__MSG_ADVERTISE};
    for (size_t t = 0; t < 2; t++) {
        zmesh__msg_t msg = sample(types[t]);
        void *bytes;
        size_t size;
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), 0);
        zmesh__msg_t got;
        assert_int_equal(decode_exact(bytes, size, &got), 0);
        assert_int_equal(got.serves_count, msg.serves_count);
        for (size_t i = 0; i < got.serves_count; i++) {
            assert_string_equal(got.serves[i], sample_serves[i]);
            assert_true(got.serves[i] != sample_serves[i]);
        }
        // "groups", "bp" and then "serves", the last key.
        const uint8_t *end = (const uint8_t *)bytes + size;
        size_t tail = SERVES_KEY_SIZE + 1;
        for (size_t i = 0; i < msg.serves_count; i++)
            tail += 1 + strlen(sample_serves[i]);
        assert_memory_equal(end - tail, SERVES_KEY, SERVES_KEY_SIZE);
        assert_true(contains(bytes, size - tail, BP_KEY, 3));
        assert_true(contains(bytes, size - tail, "\xa6groups", 7));
        zmesh__msg_clear(&got);
        assert_true(msg_is_zero(&got));
        free(bytes);

        // A bad last pattern: the copies of the first ones are freed.
        char *patterns[] = {"a.>", "b.*", "c.>.d"};
        msg.serves = patterns;
        msg.serves_count = 3;
        raw_t raw = {0};
        assert_int_equal(raw_decode(&msg, &raw), ZMESH_EPROTO);
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), ZMESH_EINVAL);
        patterns[2] = "";
        assert_int_equal(raw_decode(&msg, &raw), ZMESH_EPROTO);
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), ZMESH_EINVAL);
        patterns[2] = rep('p', 256);
        assert_int_equal(raw_decode(&msg, &raw), ZMESH_EPROTO);
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), ZMESH_EINVAL);
        patterns[2] = "c.\xed\xa0\x80"; // a surrogate: not UTF-8
        assert_int_equal(raw_decode(&msg, &raw), ZMESH_EPROTO);
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), ZMESH_EINVAL);
        patterns[2] = "c.d";
        assert_int_equal(raw_decode(&msg, &raw), 0);
        free_strings();

        // None: no key, whether or not there are queue groups and
        // back-pressure patterns.
        for (int others = 0; others < 2; others++) {
            msg = sample(types[t]);
            msg.serves_count = 0; // the array stays set: the count rules
            if (!others) {
                msg.groups_count = 0;
                msg.bp_subs_count = 0;
            }
            assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), 0);
            uint8_t body = ((uint8_t *)bytes)[21]; // after the envelope
            if (types[t] == ZMESH__MSG_HELLO)
                assert_int_equal(body, others ? 0x8e : 0x8c);
            else
                assert_int_equal(body, others ? 0x85 : 0x83);
            assert_false(contains(bytes, size, SERVES_KEY, SERVES_KEY_SIZE));
            assert_int_equal(decode_exact(bytes, size, &got), 0);
            assert_int_equal(got.serves_count, 0);
            assert_null(got.serves);
            assert_int_equal(got.bp_subs_count, msg.bp_subs_count);
            zmesh__msg_clear(&got);
            free(bytes);
            raw_t omitted = {.omit = "serves"};
            assert_int_equal(raw_decode(&msg, &omitted), 0);
        }
    }

    // An empty "serves" array, first of the keys, is accepted as none.
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    pk_ok(msgpack_pack_array(&pk, 4));
    pk_ok(msgpack_pack_uint64(&pk, 1));
    pk_ok(msgpack_pack_uint64(&pk, ZMESH__MSG_HELLO));
    pk_ok(msgpack_pack_bin(&pk, 16));
    pk_ok(msgpack_pack_bin_body(&pk, id_a, 16));
    pk_ok(msgpack_pack_map(&pk, 5));
    pk_str(&pk, "serves", false);
    pk_ok(msgpack_pack_array(&pk, 0));
    pk_str(&pk, "name", false);
    pk_str(&pk, "a", false);
    pk_str(&pk, "mesh", false);
    pk_str(&pk, "m", false);
    pk_str(&pk, "endpoint", false);
    pk_str(&pk, "tcp://127.0.0.1:1", false);
    pk_str(&pk, "data", false);
    pk_str(&pk, "tcp://127.0.0.1:2", false);
    zmesh__msg_t got;
    assert_int_equal(decode_exact(sbuf.data, sbuf.size, &got), 0);
    assert_int_equal(got.serves_count, 0);
    assert_null(got.serves);
    assert_string_equal(got.name, "a");
    zmesh__msg_clear(&got);
    msgpack_sbuffer_destroy(&sbuf);

    // "serves" is HELLO's and ADVERTISE's: in any other type, DIRECT
    // included, it is an unknown key, skipped even when it would be
    // malformed there.
    static const uint8_t nil = 0xc0;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    pk_ok(msgpack_pack_array(&pk, 4));
    pk_ok(msgpack_pack_uint64(&pk, 1));
    pk_ok(msgpack_pack_uint64(&pk, ZMESH__MSG_DIRECT));
    pk_ok(msgpack_pack_bin(&pk, 16));
    pk_ok(msgpack_pack_bin_body(&pk, id_b, 16));
    pk_ok(msgpack_pack_map(&pk, 4));
    pk_str(&pk, "serves", false);
    pk_ok(msgpack_pack_array(&pk, 1));
    pk_str(&pk, "c..d", false);
    pk_str(&pk, "req", false);
    pk_ok(msgpack_pack_uint64(&pk, 3));
    pk_str(&pk, "topic", false);
    pk_str(&pk, "inventory.lookup", false);
    pk_str(&pk, "payload", false);
    pk_ok(msgpack_pack_bin(&pk, 1));
    pk_ok(msgpack_pack_bin_body(&pk, &nil, 1));
    assert_int_equal(decode_exact(sbuf.data, sbuf.size, &got), 0);
    assert_int_equal(got.type, ZMESH__MSG_DIRECT);
    assert_string_equal(got.topic, "inventory.lookup");
    assert_int_equal(got.req, 3);
    assert_int_equal(got.serves_count, 0);
    assert_null(got.serves);
    assert_memory_equal(got.sender, id_b, 16);
    zmesh__msg_clear(&got);
    msgpack_sbuffer_destroy(&sbuf);

    failures = 0;
    list_tally_t tally = {
        .key = SERVES_KEY, .key_size = SERVES_KEY_SIZE, .serves = true};
    each_vector(vector_list_key, &tally);
    assert_int_equal(failures, 0);
    // hello, hello-minimal, hello-limits, hello-groups, hello-bp,
    // advertise, advertise-empty, advertise-groups, advertise-bp and
    // advertise-groups-bp predate "serves"; hello-serves, advertise-serves
    // and advertise-all-lists hold it.
    assert_true(tally.without >= 10);
    assert_true(tally.with >= 3);
}

static void
test_wrong_types(void **state)
{
    (void)state;
    for (size_t t = 0; t < ALL_TYPES; t++) {
        zmesh__msg_t msg = sample(all_types[t]);
        size_t count;
        const field_t *fields = fields_of(msg.type, &count);
        for (size_t i = 0; i < count; i++)
            for (int v = 0; v < WRONG_VARIANTS; v++) {
                raw_t raw = {.wrong = fields[i].key, .wrong_variant = v};
                int rc = raw_decode(&msg, &raw);
                if (rc != ZMESH_EPROTO)
                    fail_msg("type %d key %s variant %d: %d", msg.type,
                             fields[i].key, v, rc);
            }
    }
}

static void
test_missing_required(void **state)
{
    (void)state;
    for (size_t t = 0; t < ALL_TYPES; t++) {
        zmesh__msg_t msg = sample(all_types[t]);
        size_t count;
        const field_t *fields = fields_of(msg.type, &count);
        for (size_t i = 0; i < count; i++) {
            raw_t raw = {.omit = fields[i].key};
            int rc = raw_decode(&msg, &raw);
            if (fields[i].required && rc != ZMESH_EPROTO)
                fail_msg("type %d without %s: %d", msg.type, fields[i].key, rc);
        }
    }
}

static void
test_duplicate_keys(void **state)
{
    (void)state;
    for (size_t t = 0; t < ALL_TYPES; t++) {
        zmesh__msg_t msg = sample(all_types[t]);
        size_t count;
        const field_t *fields = fields_of(msg.type, &count);
        for (size_t i = 0; i < count; i++) {
            raw_t raw = {.dup = fields[i].key};
            assert_int_equal(raw_decode(&msg, &raw), ZMESH_EPROTO);
        }
        raw_t unknown = {.dup = "zz-twice"};
        assert_int_equal(raw_decode(&msg, &unknown), ZMESH_EPROTO);
    }
}

static void
test_unknown_keys_skipped(void **state)
{
    (void)state;
    for (size_t t = 0; t < ALL_TYPES; t++) {
        zmesh__msg_t msg = sample(all_types[t]);
        raw_t deep = {.unknown_depth = 64};
        assert_int_equal(raw_decode(&msg, &deep), 0);
        raw_t shallow = {.unknown_depth = 1};
        assert_int_equal(raw_decode(&msg, &shallow), 0);
        raw_t too_deep = {.unknown_depth = 65};
        assert_int_equal(raw_decode(&msg, &too_deep), ZMESH_EPROTO);
    }
}

static void
test_trailing_bytes(void **state)
{
    (void)state;
    for (size_t t = 0; t < ALL_TYPES; t++) {
        zmesh__msg_t msg = sample(all_types[t]);
        raw_t raw = {.trailing = true};
        assert_int_equal(raw_decode(&msg, &raw), ZMESH_EPROTO);
    }
}

static void
test_truncated_every_offset(void **state)
{
    (void)state;
    for (size_t t = 0; t < ALL_TYPES; t++) {
        zmesh__msg_t msg = sample(all_types[t]);
        void *bytes;
        size_t size;
        assert_int_equal(zmesh__msg_encode(&msg, &bytes, &size), 0);
        for (size_t k = 0; k < size; k++) {
            zmesh__msg_t got;
            int rc = decode_exact(bytes, k, &got);
            if (rc != ZMESH_EPROTO)
                fail_msg("type %d cut to %zu of %zu: %d", msg.type, k, size,
                         rc);
            assert_true(msg_is_zero(&got));
        }
        free(bytes);
    }
}

static void
test_other_versions(void **state)
{
    (void)state;
    static const uint64_t versions[] = {0, 2, 3, 255, UINT32_MAX};
    for (size_t t = 0; t < ALL_TYPES; t++)
        for (size_t i = 0; i < sizeof versions / sizeof versions[0]; i++) {
            zmesh__msg_t msg = sample(all_types[t]);
            raw_t raw = {.set_version = true, .version = versions[i]};
            uint8_t *bytes;
            size_t size;
            raw_encode(&msg, &raw, &bytes, &size);
            zmesh__msg_t got;
            assert_int_equal(decode_exact(bytes, size, &got), ZMESH__EVERSION);
            assert_int_equal(got.version, versions[i]);
            assert_memory_equal(got.sender, id_a, 16);
            assert_null(got.name);
            assert_int_equal(got.pubs_count, 0);
            zmesh__msg_clear(&got);
            free(bytes);
        }

    // A v2 message needs only the first three elements to be reported;
    // what follows them is not read.
    static const uint8_t v2_short[] = {
        0x93, 0x02, 0x01, 0xc4, 0x10, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55,
        0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff};
    zmesh__msg_t got;
    assert_int_equal(decode_exact(v2_short, sizeof v2_short, &got),
                     ZMESH__EVERSION);
    assert_int_equal(got.version, 2);
    assert_memory_equal(got.sender, id_a, 16);
    zmesh__msg_clear(&got);
    // ... but those three must be there and well-typed.
    static const uint8_t v2_two[] = {0x92, 0x02, 0x01};
    assert_int_equal(decode_exact(v2_two, sizeof v2_two, &got), ZMESH_EPROTO);
    static const uint8_t v2_over[] = {0x94, 0xcf, 1, 0, 0, 0, 0, 0, 0, 0};
    assert_int_equal(decode_exact(v2_over, sizeof v2_over, &got), ZMESH_EPROTO);
    static const uint8_t v2_no_sender[] = {0x93, 0x02, 0x01, 0xc0};
    assert_int_equal(decode_exact(v2_no_sender, sizeof v2_no_sender, &got),
                     ZMESH_EPROTO);
}

static void
test_bad_envelope(void **state)
{
    (void)state;
    zmesh__msg_t msg = sample(ZMESH__MSG_PING);
    static const uint64_t types[] = {0, 100, 127, UINT64_MAX};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        raw_t raw = {.set_type = true, .type = types[i]};
        assert_int_equal(raw_decode(&msg, &raw), ZMESH_EPROTO);
    }
    raw_t sender = {.short_sender = true};
    assert_int_equal(raw_decode(&msg, &sender), ZMESH_EPROTO);
    zmesh__msg_t got;
    assert_int_equal(zmesh__msg_decode(NULL, 0, &got), ZMESH_EPROTO);
    assert_int_equal(decode_exact("", 0, &got), ZMESH_EPROTO);
}

static void
test_nul_in_strings(void **state)
{
    (void)state;
    static const struct {
        zmesh__msg_type_t type;
        const char *key;
    } cases[] = {
        {ZMESH__MSG_HELLO, "name"},         {ZMESH__MSG_HELLO, "mesh"},
        {ZMESH__MSG_HELLO, "endpoint"},     {ZMESH__MSG_HELLO, "data"},
        {ZMESH__MSG_HELLO, "host"},         {ZMESH__MSG_HELLO, "ver"},
        {ZMESH__MSG_HELLO, "headers"},      {ZMESH__MSG_HELLO, "headers.key"},
        {ZMESH__MSG_HELLO, "pubs"},         {ZMESH__MSG_HELLO, "subs"},
        {ZMESH__MSG_ADVERTISE, "pubs"},     {ZMESH__MSG_ADVERTISE, "subs"},
        {ZMESH__MSG_PEERS, "peers"},        {ZMESH__MSG_NAK, "topic"},
        {ZMESH__MSG_DIRECT, "topic"},       {ZMESH__MSG_HISTORY, "pattern"},
        {ZMESH__MSG_STATS, "counters"},     {ZMESH__MSG_STATS, "counters.name"},
        {ZMESH__MSG_STATS, "counters.key"}, {ZMESH__MSG_HELLO, "groups"},
        {ZMESH__MSG_HELLO, "groups.name"},  {ZMESH__MSG_ADVERTISE, "groups"},
        {ZMESH__MSG_DELIVER, "group"},      {ZMESH__MSG_HELLO, "bp"},
        {ZMESH__MSG_ADVERTISE, "bp"},       {ZMESH__MSG_CREDIT, "topic"},
        {ZMESH__MSG_HELLO, "serves"},       {ZMESH__MSG_ADVERTISE, "serves"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        zmesh__msg_t msg = sample(cases[i].type);
        raw_t raw = {.nul_in = cases[i].key};
        if (raw_decode(&msg, &raw) != ZMESH_EPROTO)
            fail_msg("NUL in %s accepted", cases[i].key);
    }
}

static void
test_invalid_utf8(void **state)
{
    (void)state;
    static const char *bad[] = {
        "\x80",             // continuation byte alone
        "\xc3",             // truncated
        "\xc0\xaf",         // overlong
        "\xe0\x80\xaf",     // overlong
        "\xed\xa0\x80",     // surrogate
        "\xf4\x90\x80\x80", // above U+10FFFF
        "\xf5\x80\x80\x80", // no such lead byte
        "\xff",
        "\xe2\x82",         // truncated 3-byte
        "\xe2\x28\xa1",     // bad second byte
        "\xe2\x82\x28",     // bad third byte
        "\xf0\x9f\x98\x28", // bad fourth byte
    };
    static const char *good[] = {"\xc3\xa9",         "\xe2\x82\xac",
                                 "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
                                 "\xed\x9f\xbf",     "\x7f"};
    zmesh__msg_t msg = sample(ZMESH__MSG_HELLO);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        msg.name = (char *)bad[i];
        raw_t raw = {0};
        if (raw_decode(&msg, &raw) != ZMESH_EPROTO)
            fail_msg("bad UTF-8 %zu accepted", i);
    }
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        msg.name = (char *)good[i];
        raw_t raw = {0};
        if (raw_decode(&msg, &raw) != 0)
            fail_msg("good UTF-8 %zu rejected", i);
    }
}

static void
test_body_limits(void **state)
{
    (void)state;
    // A body of 64 entries is fine, 65 is not; keys are 1..64 bytes.
    for (int entries = 63; entries <= 65; entries++) {
        msgpack_sbuffer sbuf;
        msgpack_sbuffer_init(&sbuf);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
        pk_ok(msgpack_pack_array(&pk, 4));
        pk_ok(msgpack_pack_uint64(&pk, 1));
        pk_ok(msgpack_pack_uint64(&pk, ZMESH__MSG_PING));
        pk_ok(msgpack_pack_bin(&pk, 16));
        pk_ok(msgpack_pack_bin_body(&pk, id_a, 16));
        pk_ok(msgpack_pack_map(&pk, (size_t)entries));
        for (int i = 0; i < entries; i++) {
            char key[65];
            // The last key is 64 bytes long.
            if (i == entries - 1)
                memset(key, 'k', 64), key[64] = '\0';
            else
                snprintf(key, sizeof key, "k%d", i);
            pk_str(&pk, key, false);
            pk_ok(msgpack_pack_nil(&pk));
        }
        zmesh__msg_t got;
        int rc = decode_exact(sbuf.data, sbuf.size, &got);
        assert_int_equal(rc, entries <= 64 ? 0 : ZMESH_EPROTO);
        zmesh__msg_clear(&got);
        msgpack_sbuffer_destroy(&sbuf);
    }
}

/* ------------------------------------------------------------------------ */
/*  Event frames                                                            */

/*  topic + NUL + meta [A, seq, ts] + payload, into `out`. */
static size_t
frame_bytes(uint8_t *out, const char *topic, size_t topic_size,
            const uint8_t *meta, size_t meta_size, const uint8_t *payload,
            size_t payload_size)
{
    memcpy(out, topic, topic_size);
    out[topic_size] = 0;
    memcpy(out + topic_size + 1, meta, meta_size);
    memcpy(out + topic_size + 1 + meta_size, payload, payload_size);
    return topic_size + 1 + meta_size + payload_size;
}

static const uint8_t good_meta[] = {0x93, 0xc4, 0x10, 0x00, 0x11, 0x22, 0x33,
                                    0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa,
                                    0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x05, 0xd2,
                                    0x80, 0,    0,    0};

static void
test_frame_round_trip(void **state)
{
    (void)state;
    static const uint64_t seqs[] = {1,         127,        128,
                                    255,       256,        65535,
                                    65536,     UINT32_MAX, (uint64_t)1 << 32,
                                    UINT64_MAX};
    static const int64_t stamps[] = {0,
                                     1,
                                     127,
                                     128,
                                     -1,
                                     -32,
                                     -33,
                                     -128,
                                     -129,
                                     -32768,
                                     -32769,
                                     INT32_MIN,
                                     (int64_t)INT32_MIN - 1,
                                     INT64_MIN,
                                     INT64_MAX,
                                     1700000000123456};
    static const uint8_t payload[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0xc0};
    uint8_t out[512];
    for (size_t i = 0; i < sizeof seqs / sizeof seqs[0]; i++)
        for (size_t j = 0; j < sizeof stamps / sizeof stamps[0]; j++) {
            int n =
                zmesh__frame_encode("a.b", 3, id_b, seqs[i], stamps[j], payload,
                                    sizeof payload, out, sizeof out);
            assert_true(n > 0);
            // The meta is what msgpack-c writes for the same values: the
            // smallest forms.
            msgpack_sbuffer sbuf;
            msgpack_sbuffer_init(&sbuf);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
            pk_ok(msgpack_pack_array(&pk, 3));
            pk_ok(msgpack_pack_bin(&pk, 16));
            pk_ok(msgpack_pack_bin_body(&pk, id_b, 16));
            pk_ok(msgpack_pack_uint64(&pk, seqs[i]));
            pk_ok(msgpack_pack_int64(&pk, stamps[j]));
            assert_int_equal((size_t)n, 4 + sbuf.size + sizeof payload);
            assert_memory_equal(out, "a.b", 4);
            assert_memory_equal(out + 4, sbuf.data, sbuf.size);
            msgpack_sbuffer_destroy(&sbuf);

            uint8_t *copy = copy_exact(out, (size_t)n);
            zmesh__frame_t f;
            assert_int_equal(zmesh__frame_decode(copy, (size_t)n, &f), 0);
            assert_int_equal(f.topic_size, 3);
            assert_string_equal(f.topic, "a.b");
            assert_memory_equal(f.publisher, id_b, 16);
            assert_true(f.sequence == seqs[i]);
            assert_true(f.timestamp_us == stamps[j]);
            assert_int_equal(f.payload_size, sizeof payload);
            assert_memory_equal(f.payload, payload, sizeof payload);
            free(copy);
        }
}

static void
test_frame_encode_capacity(void **state)
{
    (void)state;
    uint8_t out[ZMESH__FRAME_OVERHEAD + 16];
    uint8_t payload[16];
    memset(payload, 0, sizeof payload);
    payload[0] = 0xc4; // bin 14
    payload[1] = 14;
    char topic[ZMESH_TOPIC_MAX];
    memset(topic, 't', sizeof topic);
    // The largest header still fits ZMESH__FRAME_OVERHEAD.
    int n =
        zmesh__frame_encode(topic, sizeof topic, id_a, UINT64_MAX, INT64_MIN,
                            payload, sizeof payload, out, sizeof out);
    assert_true(n > 0 && (size_t)n <= sizeof out);
    assert_int_equal(frame_decode_exact(out, (size_t)n), 0);
    // Exactly n bytes fit; n - 1 do not.
    assert_int_equal(zmesh__frame_encode(topic, sizeof topic, id_a, UINT64_MAX,
                                         INT64_MIN, payload, sizeof payload,
                                         out, (size_t)n),
                     n);
    assert_int_equal(zmesh__frame_encode(topic, sizeof topic, id_a, UINT64_MAX,
                                         INT64_MIN, payload, sizeof payload,
                                         out, (size_t)n - 1),
                     ZMESH_ETOOBIG);
    assert_int_equal(zmesh__frame_encode("a", 1, id_a, 1, 0, payload, SIZE_MAX,
                                         out, sizeof out),
                     ZMESH_ETOOBIG);
    assert_int_equal(
        zmesh__frame_encode("a", 1, id_a, 1, 0, payload, 1, out, 0),
        ZMESH_ETOOBIG);
}

typedef struct {
    const char *what;
    size_t topic_size; /* topic of this many 't' bytes */
    const uint8_t *meta;
    size_t meta_size;
    const uint8_t *payload;
    size_t payload_size;
    int expect;
} frame_case_t;

static const frame_case_t frame_cases[] = {
    {"good", 1, good_meta, sizeof good_meta, B(0xc0), 0},
    {"topic 255", 255, good_meta, sizeof good_meta, B(0xc0), 0},
    {"topic 256", 256, good_meta, sizeof good_meta, B(0xc0), ZMESH_EPROTO},
    {"empty topic", 0, good_meta, sizeof good_meta, B(0xc0), ZMESH_EPROTO},
    {"empty payload", 1, good_meta, sizeof good_meta, NULL, 0, ZMESH_EPROTO},
    {"two objects", 1, good_meta, sizeof good_meta, B(0xc0, 0xc0),
     ZMESH_EPROTO},
    {"payload trailing byte", 1, good_meta, sizeof good_meta,
     B(0x91, 0x01, 0x02), ZMESH_EPROTO},
    {"payload truncated", 1, good_meta, sizeof good_meta, B(0x92, 0x01),
     ZMESH_EPROTO},
    {"payload 0xc1", 1, good_meta, sizeof good_meta, B(0xc1), ZMESH_EPROTO},
    {"seq 0", 1, B(0x93, 0xc4, 0x10, ID16, 0x00, 0x00), B(0xc0), ZMESH_EPROTO},
    {"seq as int8 1", 1, B(0x93, 0xc4, 0x10, ID16, 0xd0, 0x01, 0x00), B(0xc0),
     0},
    {"seq -1", 1, B(0x93, 0xc4, 0x10, ID16, 0xff, 0x00), B(0xc0), ZMESH_EPROTO},
    {"seq nil", 1, B(0x93, 0xc4, 0x10, ID16, 0xc0, 0x00), B(0xc0),
     ZMESH_EPROTO},
    {"ts uint64 2^63-1", 1,
     B(0x93, 0xc4, 0x10, ID16, 0x01, 0xcf, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff,
       0xff, 0xff),
     B(0xc0), 0},
    {"ts uint64 2^63", 1,
     B(0x93, 0xc4, 0x10, ID16, 0x01, 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0), B(0xc0),
     ZMESH_EPROTO},
    {"ts str", 1, B(0x93, 0xc4, 0x10, ID16, 0x01, 0xa1, '1'), B(0xc0),
     ZMESH_EPROTO},
    {"meta of 2", 1, B(0x92, 0xc4, 0x10, ID16, 0x01), B(0xc0), ZMESH_EPROTO},
    {"meta not array", 1, B(0xc0), B(0xc0), ZMESH_EPROTO},
    {"meta of 5, extras skipped", 1,
     B(0x95, 0xc4, 0x10, ID16, 0x01, 0x02, 0x81, 0xa1, 'k', 0x90, 0xc3),
     B(0xc0), 0},
    {"meta extra truncated", 1, B(0x94, 0xc4, 0x10, ID16, 0x01, 0x02, 0xa5),
     B(0x61, 0x62), ZMESH_EPROTO},
    {"publisher 17", 1, B(0x93, 0xc4, 0x11, ID16, 0x00, 0x01, 0x02), B(0xc0),
     ZMESH_EPROTO},
    {"publisher as str", 1, B(0x93, 0xb0, ID16, 0x01, 0x02), B(0xc0),
     ZMESH_EPROTO},
    {"meta array32 huge", 1, B(0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0), B(0xc0),
     ZMESH_EPROTO},
    {"payload str32 huge", 1, good_meta, sizeof good_meta,
     B(0xdb, 0xff, 0xff, 0xff, 0xff, 0x61), ZMESH_EPROTO},
    {"payload bin32 huge", 1, good_meta, sizeof good_meta,
     B(0xc6, 0xff, 0xff, 0xff, 0xff, 0x61), ZMESH_EPROTO},
    {"payload ext32 huge", 1, good_meta, sizeof good_meta,
     B(0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 0x61), ZMESH_EPROTO},
    {"payload map32 huge", 1, good_meta, sizeof good_meta,
     B(0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0, 0xc0, 0xc0), ZMESH_EPROTO},
    {"payload array16 huge", 1, good_meta, sizeof good_meta,
     B(0xdc, 0xff, 0xff, 0xc0, 0xc0), ZMESH_EPROTO},
};

static void
test_frame_decode_cases(void **state)
{
    (void)state;
    uint8_t buf[1024];
    char topic[300];
    memset(topic, 't', sizeof topic);
    for (size_t i = 0; i < sizeof frame_cases / sizeof frame_cases[0]; i++) {
        const frame_case_t *c = &frame_cases[i];
        size_t n = frame_bytes(buf, topic, c->topic_size, c->meta, c->meta_size,
                               c->payload ? c->payload : (const uint8_t *)"",
                               c->payload_size);
        int rc = frame_decode_exact(buf, n);
        if (rc != c->expect)
            fail_msg("%s: %d, not %d", c->what, rc, c->expect);
    }
    // No NUL at all, and no NUL in the first 256 of a long buffer.
    memset(buf, 'x', sizeof buf);
    assert_int_equal(frame_decode_exact(buf, sizeof buf), ZMESH_EPROTO);
    assert_int_equal(frame_decode_exact(buf, 0), ZMESH_EPROTO);
    zmesh__frame_t f;
    assert_int_equal(zmesh__frame_decode(NULL, 0, &f), ZMESH_EPROTO);
}

/*  `depth` nested containers; maps hold their child under the key "". */
static size_t
nest(uint8_t *out, int depth, bool maps)
{
    size_t n = 0;
    for (int i = 1; i < depth; i++) {
        if (maps) {
            out[n++] = 0x81;
            out[n++] = 0xa0;
        } else
            out[n++] = 0x91;
    }
    out[n++] = maps ? 0x80 : 0x90;
    return n;
}

static void
test_frame_deep_payload(void **state)
{
    (void)state;
    uint8_t payload[256];
    uint8_t frame[512];
    for (int maps = 0; maps < 2; maps++)
        for (int depth = 63; depth <= 66; depth++) {
            size_t p = nest(payload, depth, maps);
            assert_int_equal(check_exact(payload, p),
                             depth <= 64 ? 0 : ZMESH_EPAYLOAD);
            size_t n = frame_bytes(frame, "t", 1, good_meta, sizeof good_meta,
                                   payload, p);
            assert_int_equal(frame_decode_exact(frame, n),
                             depth <= 64 ? 0 : ZMESH_EPROTO);
        }
    // A 64-deep payload whose innermost item is a scalar is 64 deep too.
    memset(payload, 0x91, 64);
    payload[64] = 0x01;
    assert_int_equal(check_exact(payload, 65), 0);
    memset(payload, 0x91, 65);
    payload[65] = 0x01;
    assert_int_equal(check_exact(payload, 66), ZMESH_EPAYLOAD);
    // Depth counts nesting, not containers: many siblings are fine.
    uint8_t wide[200];
    size_t n = 0;
    wide[n++] = 0xdc;
    wide[n++] = 0;
    wide[n++] = 100;
    for (int i = 0; i < 100; i++)
        wide[n++] = 0x90;
    assert_int_equal(check_exact(wide, n), 0);
}

/* ------------------------------------------------------------------------ */
/*  Batch frames                                                            */

/*  Payloads of every shape, handed out in turn to a batch's events. */
static const struct {
    const uint8_t *bytes;
    size_t size;
} batch_payloads[] = {
    {B(0xc0)},
    {B(0x01)},
    {B(0xa2, 'h', 'i')},
    {B(0x92, 0x01, 0x02)},
    {B(0x81, 0xa1, 'a', 0xc3)},
    {B(0xc4, 0x02, 0xde, 0xad)},
    {B(0xd6, 0xff, 0x00, 0x00, 0x00, 0x01)}, // timestamp32
    {B(0x91, 0x91, 0x90)},
    {B(0xcb, 0x40, 0x29, 0, 0, 0, 0, 0, 0)},
    {B(0xe0)},
    {B(0xcd, 0x01, 0x00)},
};
#define BATCH_PAYLOADS (sizeof batch_payloads / sizeof batch_payloads[0])

/*  A batch frame of `count` (2..ZMESH__BATCH_MAX) events as a publisher
    sends it: zmesh__batch_head_encode, then batch_payloads in turn from
    `shift`, back to back. Returns an exactly sized heap buffer; *head is
    the header's size. */
static uint8_t *
batch_build(const char *topic, uint64_t sequence, int64_t timestamp,
            unsigned flags, size_t count, size_t shift, size_t *size,
            size_t *head)
{
    size_t topic_size = strlen(topic);
    *head = zmesh__batch_head_size(topic_size, sequence, timestamp, count);
    *size = *head;
    for (size_t i = 0; i < count; i++)
        *size += batch_payloads[(i + shift) % BATCH_PAYLOADS].size;
    uint8_t *out = malloc(*size);
    assert_non_null(out);
    int n = zmesh__batch_head_encode(topic, topic_size, id_b, sequence,
                                     timestamp, flags, count, out, *size);
    assert_int_equal(n, (int)*head);
    size_t at = *head;
    for (size_t i = 0; i < count; i++) {
        size_t k = (i + shift) % BATCH_PAYLOADS;
        memcpy(out + at, batch_payloads[k].bytes, batch_payloads[k].size);
        at += batch_payloads[k].size;
    }
    return out;
}

/*  zmesh__batch_decode on `data` as it is: 0 when it decodes and walks to
    `count` good events (checked by batch_walk), else the decode's code
    (or -1000 when the walk found something wrong, -1001 for another
    count). */
static int
batch_decode_walk(const uint8_t *data, size_t size, size_t count)
{
    zmesh__batch_t b;
    int rc = zmesh__batch_decode(data, size, &b);
    if (rc != 0)
        return rc;
    size_t n;
    const char *why = batch_walk(&b, data, size, walked[0], &n);
    if (why) {
        print_error("batch walk: %s\n", why);
        return -1000;
    }
    return n == count ? 0 : -1001;
}

/*  The same on an exact copy, so ASan sees any read past the end. */
static int
batch_decode_exact(const void *data, size_t size, size_t count)
{
    uint8_t *copy = copy_exact(data, size);
    int rc = batch_decode_walk(copy, size, count);
    free(copy);
    return rc;
}

static void
test_batch_round_trip(void **state)
{
    (void)state;
    static const size_t counts[] = {2, 3, 11, 127, 128, 1024};
    static const uint64_t seqs[] = {1, 127, 128, 65536, (uint64_t)1 << 32};
    static const int64_t stamps[] = {0,         -1,       -33, 1700000000123456,
                                     INT64_MIN, INT64_MAX};
    static const unsigned flags[] = {0, ZMESH__FRAME_CONFIRM, 0x79};
    static const char *topics[] = {"a", "orders.eu.created"};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
        for (size_t s = 0; s < sizeof seqs / sizeof seqs[0] + 1; s++)
            for (size_t t = 0; t < sizeof stamps / sizeof stamps[0]; t++)
                for (size_t f = 0; f < sizeof flags / sizeof flags[0]; f++) {
                    size_t count = counts[c];
                    // The last: a batch whose last event is 2^64-1.
                    uint64_t seq = s < sizeof seqs / sizeof seqs[0]
                                       ? seqs[s]
                                       : UINT64_MAX - (count - 1);
                    const char *topic = topics[(c + s + t) % 2];
                    size_t topic_size = strlen(topic);
                    size_t size, head;
                    uint8_t *bytes =
                        batch_build(topic, seq, stamps[t], flags[f], count,
                                    c + t, &size, &head);
                    // The header is what msgpack-c writes for the same
                    // values: the smallest forms.
                    msgpack_sbuffer sbuf;
                    msgpack_sbuffer_init(&sbuf);
                    msgpack_packer pk;
                    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
                    pk_ok(msgpack_pack_array(&pk, 5));
                    pk_ok(msgpack_pack_bin(&pk, 16));
                    pk_ok(msgpack_pack_bin_body(&pk, id_b, 16));
                    pk_ok(msgpack_pack_uint64(&pk, seq));
                    pk_ok(msgpack_pack_int64(&pk, stamps[t]));
                    pk_ok(msgpack_pack_uint64(&pk,
                                              flags[f] | ZMESH__FRAME_BATCH));
                    pk_ok(msgpack_pack_uint64(&pk, count));
                    assert_int_equal(head, topic_size + 1 + sbuf.size);
                    assert_memory_equal(bytes, topic, topic_size);
                    assert_int_equal(bytes[topic_size], 0);
                    assert_memory_equal(bytes + topic_size + 1, sbuf.data,
                                        sbuf.size);
                    msgpack_sbuffer_destroy(&sbuf);

                    zmesh__batch_t b;
                    assert_int_equal(zmesh__batch_decode(bytes, size, &b), 0);
                    assert_int_equal(b.left, count - 1);
                    size_t n;
                    const char *why =
                        batch_walk(&b, bytes, size, walked[0], &n);
                    if (why)
                        fail_msg("count %zu seq %zu: %s", count, s, why);
                    assert_int_equal(n, count);
                    for (size_t i = 0; i < n; i++) {
                        const zmesh__frame_t *e = &walked[0][i];
                        size_t k = (i + c + t) % BATCH_PAYLOADS;
                        assert_int_equal(e->topic_size, topic_size);
                        assert_memory_equal(e->topic, topic, topic_size);
                        assert_memory_equal(e->publisher, id_b, 16);
                        assert_true(e->sequence == seq + i);
                        assert_true(e->timestamp_us == stamps[t]);
                        assert_int_equal(e->flags, flags[f]);
                        assert_int_equal(e->payload_size,
                                         batch_payloads[k].size);
                        assert_memory_equal(e->payload, batch_payloads[k].bytes,
                                            batch_payloads[k].size);
                    }
                    // Never a single event's frame, whatever its count.
                    assert_int_equal(frame_decode_exact(bytes, size),
                                     ZMESH_EPROTO);
                    // Encoding the decoded events gives the same bytes.
                    size_t again_size;
                    uint8_t *again = batch_encode(walked[0], n, &again_size);
                    assert_int_equal(again_size, size);
                    assert_memory_equal(again, bytes, size);
                    free(again);
                    free(bytes);
                }
}

/*  The header's size, what it holds and ZMESH_ETOOBIG below it. */
static void
test_batch_head_encode(void **state)
{
    (void)state;
    static const size_t counts[] = {2, 127, 128, 255, 256, 1023, 1024};
    static const uint64_t seqs[] = {1, 128, 65536, UINT32_MAX,
                                    UINT64_MAX - 1024};
    static const int64_t stamps[] = {0, -32, -129, 1700000000123456, INT64_MIN};
    char topic[ZMESH_TOPIC_MAX];
    memset(topic, 't', sizeof topic);
    uint8_t out[ZMESH__FRAME_OVERHEAD + 1];
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
        for (size_t s = 0; s < sizeof seqs / sizeof seqs[0]; s++)
            for (size_t t = 0; t < sizeof stamps / sizeof stamps[0]; t++)
                for (size_t topic_size = 1; topic_size <= ZMESH_TOPIC_MAX;
                     topic_size += ZMESH_TOPIC_MAX - 1) {
                    size_t head = zmesh__batch_head_size(topic_size, seqs[s],
                                                         stamps[t], counts[c]);
                    // A frame header's bound holds for a batch's too.
                    assert_true(head <= ZMESH__FRAME_OVERHEAD);
                    // One byte more than a single event's header with
                    // flags, and the count.
                    assert_int_equal(
                        head,
                        zmesh__frame_size(topic_size, seqs[s], stamps[t], 0) +
                            1 +
                            (counts[c] <= 127   ? 1
                             : counts[c] <= 255 ? 2
                                                : 3));
                    memset(out, 0xaa, sizeof out);
                    int n = zmesh__batch_head_encode(
                        topic, topic_size, id_a, seqs[s], stamps[t], 0,
                        counts[c], out, sizeof out);
                    assert_int_equal(n, (int)head);
                    assert_int_equal(out[head], 0xaa); // nothing written past
                    assert_int_equal(out[topic_size + 1], 0x95);
                    assert_int_equal(zmesh__batch_head_encode(
                                         topic, topic_size, id_a, seqs[s],
                                         stamps[t], 0, counts[c], out, head),
                                     (int)head);
                    // Every capacity below the header's size is too small.
                    for (size_t cap = 0; cap < head; cap++)
                        if (zmesh__batch_head_encode(
                                topic, topic_size, id_a, seqs[s], stamps[t], 0,
                                counts[c], out, cap) != ZMESH_ETOOBIG)
                            fail_msg("head of %zu fits in %zu", head, cap);
                }
    // Cut in the count: the rest of the header fits, the count does not.
    size_t head = zmesh__batch_head_size(1, 1, 0, 1024);
    assert_int_equal(
        zmesh__batch_head_encode("t", 1, id_a, 1, 0, 0, 1024, out, head - 1),
        ZMESH_ETOOBIG);
    assert_int_equal(
        zmesh__batch_head_encode("t", 1, id_a, 1, 0, 0, 1024, out, head - 3),
        ZMESH_ETOOBIG);
}

typedef struct {
    const char *what;
    const uint8_t *meta; /* after topic "t" and its NUL */
    size_t meta_size;
    const uint8_t *body; /* the payloads */
    size_t body_size;
    int expect;        /* of zmesh__batch_decode */
    size_t events;     /* when it decodes */
    unsigned flags;    /* of each event, when it decodes */
    bool single_frame; /* zmesh__frame_decode takes it too */
} batch_case_t;

/*  Meta [A, sequence 1, timestamp 0, then the rest]. */
#define META(n, ...) B(0x90 | (n), 0xc4, 0x10, ID16, 0x01, 0x00, __VA_ARGS__)
#define U64_MAX_BYTES 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff
#define OK(events, flags) 0, events, flags, false
#define SINGLE(events, flags) 0, events, flags, true
#define BAD ZMESH_EPROTO, 0, 0, false

static const batch_case_t batch_cases[] = {
    {"batch of 3", META(5, 0x02, 0x03), B(0xc0, 0x01, 0xa0), OK(3, 0)},
    {"batch of 1", META(5, 0x02, 0x01), B(0xc0), OK(1, 0)},
    {"count 0", META(5, 0x02, 0x00), B(0xc0), BAD},
    {"count 0, no payload", META(5, 0x02, 0x00), NULL, 0, BAD},
    {"count 3, 2 payloads", META(5, 0x02, 0x03), B(0xc0, 0xc0), BAD},
    {"count 2, 3 payloads", META(5, 0x02, 0x02), B(0xc0, 0xc0, 0xc0), BAD},
    {"count 1, 2 payloads", META(5, 0x02, 0x01), B(0xc0, 0xc0), BAD},
    {"count 3, no payload", META(5, 0x02, 0x03), NULL, 0, BAD},
    {"0xc1 in the middle", META(5, 0x02, 0x03), B(0xc0, 0xc1, 0xc0), BAD},
    {"0xc1 first", META(5, 0x02, 0x03), B(0xc1, 0xc0, 0xc0), BAD},
    // The array takes the last nil as its second element: 2 payloads.
    {"short array in the middle", META(5, 0x02, 0x03),
     B(0xc0, 0x92, 0x01, 0xc0), BAD},
    {"bad timestamp in the middle", META(5, 0x02, 0x03),
     B(0xc0, 0xd5, 0xff, 0x00, 0x00, 0xc0), BAD},
    {"str overrunning the next", META(5, 0x02, 0x02), B(0xa3, 'a', 0xc0), BAD},
    {"trailing 0xc1", META(5, 0x02, 0x02), B(0xc0, 0xc0, 0xc1), BAD},
    {"trailing partial str", META(5, 0x02, 0x02), B(0xc0, 0xc0, 0xa3, 'a'),
     BAD},
    {"batch flag, no count", META(4, 0x02), B(0xc0), BAD},
    {"batch flag, no count, 2 payloads", META(4, 0x02), B(0xc0, 0xc0), BAD},
    // Read past the meta, the first payload would be a count of 1.
    {"batch flag, no count, payloads 1 and nil", META(4, 0x02), B(0x01, 0xc0),
     BAD},
    {"batch and confirm, no count", META(4, 0x03), B(0xc0), BAD},
    {"count str", META(5, 0x02, 0xa1, '2'), B(0xc0, 0xc0), BAD},
    {"count nil", META(5, 0x02, 0xc0), B(0xc0, 0xc0), BAD},
    {"count true", META(5, 0x02, 0xc3), B(0xc0), BAD},
    {"count -1", META(5, 0x02, 0xff), B(0xc0), BAD},
    {"count int8 -2", META(5, 0x02, 0xd0, 0xfe), B(0xc0, 0xc0), BAD},
    {"count float 2.0", META(5, 0x02, 0xca, 0x40, 0x00, 0x00, 0x00),
     B(0xc0, 0xc0), BAD},
    {"count [2]", META(5, 0x02, 0x91, 0x02), B(0xc0, 0xc0), BAD},
    {"count 1025", META(5, 0x02, 0xcd, 0x04, 0x01), B(0xc0), BAD},
    {"count 2^32 + 2", META(5, 0x02, 0xcf, 0, 0, 0, 0x01, 0, 0, 0, 0x02),
     B(0xc0, 0xc0), BAD},
    {"count 2^64 - 1", META(5, 0x02, U64_MAX_BYTES), B(0xc0), BAD},
    {"count truncated", META(5, 0x02, 0xcd, 0x00), NULL, 0, BAD},
    {"count as uint64 2", META(5, 0x02, 0xcf, 0, 0, 0, 0, 0, 0, 0, 0x02),
     B(0xc0, 0xc0), OK(2, 0)},
    {"count as int8 2", META(5, 0x02, 0xd0, 0x02), B(0xc0, 0xc0), OK(2, 0)},
    {"flags uint8 2", META(5, 0xcc, 0x02, 0x02), B(0xc0, 0xc0), OK(2, 0)},
    {"flags uint64 3", META(5, 0xcf, 0, 0, 0, 0, 0, 0, 0, 0x03, 0x02),
     B(0xc0, 0xc0), OK(2, 1)},
    {"flags 0x7b", META(5, 0x7b, 0x02), B(0xc0, 0xc0), OK(2, 0x79)},
    {"flags 0x7f: a tail is no batch", META(5, 0x7f, 0x02), B(0xc0, 0xc0), BAD},
    {"flags 6: a tail is no batch", META(5, 0x06, 0x01), B(0xc0), BAD},
    {"flags 3, meta of 6 with a map after the count",
     META(6, 0x03, 0x02, 0x81, 0xa1, 'k', 0x90), B(0xc0, 0x01), OK(2, 1)},
    {"extra after the count 0xc1", META(6, 0x02, 0x02, 0xc1), B(0xc0, 0xc0),
     BAD},
    {"extra after the count truncated", META(6, 0x02, 0x02, 0xa5),
     B(0xc0, 0xc0), BAD},
    {"extra after the count 65 deep", META(6, 0x02, 0x01, 0x91, 0x91), B(0xc0),
     BAD},
    {"meta as array16",
     B(0xdc, 0x00, 0x05, 0xc4, 0x10, ID16, 0x01, 0x00, 0x02, 0x02),
     B(0xc0, 0xc0), OK(2, 0)},
    {"meta of 5 saying 6", META(6, 0x02, 0x02), B(0xc0, 0xc0), BAD},
    // Element 3 not a uint is no flags: not a batch, element 4 reserved.
    {"flags str, then 2", META(5, 0xa1, 'x', 0x02), B(0xc0), SINGLE(1, 0)},
    {"flags str, then 2, 2 payloads", META(5, 0xa1, 'x', 0x02), B(0xc0, 0xc0),
     BAD},
    {"flags -2, then 2", META(5, 0xfe, 0x02), B(0xc0), SINGLE(1, 0)},
    {"flags 1, then 3", META(5, 0x01, 0x03), B(0xc0), SINGLE(1, 1)},
    {"flags 1, then 3, 3 payloads", META(5, 0x01, 0x03), B(0xc0, 0xc0, 0xc0),
     BAD},
    {"flags 1 only", META(4, 0x01), B(0xc0), SINGLE(1, 1)},
    {"seq 2^64-1, count 1",
     B(0x95, 0xc4, 0x10, ID16, U64_MAX_BYTES, 0x00, 0x02, 0x01), B(0xc0),
     OK(1, 0)},
    {"seq 2^64-1, count 2",
     B(0x95, 0xc4, 0x10, ID16, U64_MAX_BYTES, 0x00, 0x02, 0x02), B(0xc0, 0xc0),
     BAD},
    {"seq 2^64-2, count 2",
     B(0x95, 0xc4, 0x10, ID16, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
       0xfe, 0x00, 0x02, 0x02),
     B(0xc0, 0xc0), OK(2, 0)},
    {"seq 2^64-2, count 3",
     B(0x95, 0xc4, 0x10, ID16, 0xcf, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
       0xfe, 0x00, 0x02, 0x03),
     B(0xc0, 0xc0, 0xc0), BAD},
    {"seq 0", B(0x95, 0xc4, 0x10, ID16, 0x00, 0x00, 0x02, 0x02), B(0xc0, 0xc0),
     BAD},
    {"publisher 15", B(0x95, 0xc4, 0x0f, ID16, 0x01, 0x00, 0x02, 0x02),
     B(0xc0, 0xc0), BAD},
    {"timestamp 2^63",
     B(0x95, 0xc4, 0x10, ID16, 0x01, 0xcf, 0x80, 0, 0, 0, 0, 0, 0, 0, 0x02,
       0x02),
     B(0xc0, 0xc0), BAD},
};

static void
test_batch_decode_cases(void **state)
{
    (void)state;
    uint8_t buf[256];
    for (size_t i = 0; i < sizeof batch_cases / sizeof batch_cases[0]; i++) {
        const batch_case_t *c = &batch_cases[i];
        size_t n =
            frame_bytes(buf, "t", 1, c->meta, c->meta_size,
                        c->body ? c->body : (const uint8_t *)"", c->body_size);
        int rc = batch_decode_exact(buf, n, c->events);
        if (rc != c->expect)
            fail_msg("%s: %d, not %d", c->what, rc, c->expect);
        if (rc == 0 && walked[0][0].flags != c->flags)
            fail_msg("%s: flags %u, not %u", c->what, walked[0][0].flags,
                     c->flags);
        rc = frame_decode_exact(buf, n);
        if (rc != (c->single_frame ? 0 : ZMESH_EPROTO))
            fail_msg("%s: frame decode gave %d", c->what, rc);
    }
    // Every single event's frame case: the batch decoder agrees, and
    // what it takes is one event (batch_walk checks left is 0 then).
    char topic[300];
    memset(topic, 't', sizeof topic);
    for (size_t i = 0; i < sizeof frame_cases / sizeof frame_cases[0]; i++) {
        const frame_case_t *c = &frame_cases[i];
        uint8_t frame[1024];
        size_t n = frame_bytes(
            frame, topic, c->topic_size, c->meta, c->meta_size,
            c->payload ? c->payload : (const uint8_t *)"", c->payload_size);
        int rc = batch_decode_exact(frame, n, 1);
        if (rc != c->expect)
            fail_msg("%s: batch decode gave %d, not %d", c->what, rc,
                     c->expect);
    }
    zmesh__batch_t b;
    assert_int_equal(zmesh__batch_decode(NULL, 0, &b), ZMESH_EPROTO);
    assert_int_equal(batch_decode_exact("", 0, 1), ZMESH_EPROTO);
    memset(buf, 'x', sizeof buf);
    assert_int_equal(batch_decode_exact(buf, sizeof buf, 1), ZMESH_EPROTO);
}

/*  A single event's frame, with flags or without, is one event to
    zmesh__batch_decode: left 0, nothing next, the values of
    zmesh__frame_decode. */
static void
test_batch_single_frames(void **state)
{
    (void)state;
    static const uint8_t payload[] = {0x82, 0xa1, 'a', 0x01, 0xa1, 'b', 0xc0};
    for (unsigned flags = 0; flags <= ZMESH__FRAME_CONFIRM; flags++) {
        uint8_t out[128];
        int n =
            zmesh__frame_encode_flags("a.b", 3, id_a, 77, -5, flags, payload,
                                      sizeof payload, out, sizeof out);
        assert_true(n > 0);
        uint8_t *copy = copy_exact(out, (size_t)n);
        zmesh__frame_t f;
        assert_int_equal(zmesh__frame_decode(copy, (size_t)n, &f), 0);
        zmesh__batch_t b;
        assert_int_equal(zmesh__batch_decode(copy, (size_t)n, &b), 0);
        assert_int_equal(b.left, 0);
        assert_true(frame_equal(&f, &b.frame));
        assert_int_equal(b.frame.flags, flags);
        assert_ptr_equal(b.frame.payload, f.payload);
        assert_ptr_equal(b.end, copy + n);
        assert_false(zmesh__batch_next(&b));
        assert_false(zmesh__batch_next(&b));
        assert_true(b.frame.sequence == 77); // untouched
        free(copy);
    }
}

/*  A tail frame (wire.md#tail-frame): the data plane's decoder reads it
    as one frame with the tail flag, whatever its other flags; where one
    event belongs (zmesh__frame_decode: a REPAIR, a relay record) it is
    malformed. */
static void
test_tail_frames(void **state)
{
    (void)state;
    static const unsigned flags[] = {ZMESH__FRAME_TAIL,
                                     ZMESH__FRAME_TAIL | ZMESH__FRAME_CONFIRM,
                                     ZMESH__FRAME_TAIL | 0x40};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++) {
        uint8_t out[128];
        int n = zmesh__frame_encode_flags("a.b", 3, id_a, UINT64_MAX - 1, 9,
                                          flags[i], ZMESH__TAIL_PAYLOAD, 1, out,
                                          sizeof out);
        assert_true(n > 0);
        uint8_t *copy = copy_exact(out, (size_t)n);
        zmesh__frame_t f;
        assert_int_equal(zmesh__frame_decode(copy, (size_t)n, &f),
                         ZMESH_EPROTO);
        zmesh__batch_t b;
        assert_int_equal(zmesh__batch_decode(copy, (size_t)n, &b), 0);
        assert_false(b.batched);
        assert_int_equal(b.left, 0);
        assert_int_equal(b.frame.flags, flags[i]);
        assert_true(b.frame.sequence == UINT64_MAX - 1);
        assert_int_equal(b.frame.payload_size, 1);
        assert_false(zmesh__batch_next(&b));
        free(copy);
    }
}

/*  A batch of 1 is a batch: the batch decoder takes it, the single-event
    decoder does not, at any count. */
static void
test_batch_not_a_frame(void **state)
{
    (void)state;
    for (size_t count = 1; count <= 3; count++) {
        uint8_t buf[64];
        size_t n = frame_bytes(buf, "t", 1, META(5, 0x02, (uint8_t)count),
                               B(0x01, 0x02, 0x03));
        n -= 3 - count; // `count` payloads
        assert_int_equal(frame_decode_exact(buf, n), ZMESH_EPROTO);
        assert_int_equal(batch_decode_exact(buf, n, count), 0);
        // With confirm as well.
        buf[1 + 1 + 3 + 16 + 2] = 0x03;
        assert_int_equal(frame_decode_exact(buf, n), ZMESH_EPROTO);
        assert_int_equal(batch_decode_exact(buf, n, count), 0);
        assert_int_equal(walked[0][0].flags, ZMESH__FRAME_CONFIRM);
    }
}

static void
test_batch_limits(void **state)
{
    (void)state;
    size_t size, head;
    uint8_t *bytes =
        batch_build("t", 1, 0, 0, ZMESH__BATCH_MAX, 0, &size, &head);
    assert_int_equal(batch_decode_exact(bytes, size, ZMESH__BATCH_MAX), 0);
    // 1025: the count's uint16 says one more, and one more payload is there.
    assert_int_equal(bytes[head - 3], 0xcd);
    assert_int_equal(bytes[head - 2] << 8 | bytes[head - 1], 1024);
    uint8_t *more = malloc(size + 1);
    assert_non_null(more);
    memcpy(more, bytes, size);
    more[head - 1] = 0x01;
    more[size] = 0xc0;
    assert_int_equal(batch_decode_exact(more, size + 1, 1025), ZMESH_EPROTO);
    // ... and the 1024 payloads alone are too few for it.
    assert_int_equal(batch_decode_exact(more, size, 1025), ZMESH_EPROTO);
    // A count of 0, with and without payloads after it.
    more[head - 3] = 0xcd;
    more[head - 2] = 0;
    more[head - 1] = 0;
    assert_int_equal(batch_decode_exact(more, size, 0), ZMESH_EPROTO);
    assert_int_equal(batch_decode_exact(more, head, 0), ZMESH_EPROTO);
    free(more);
    free(bytes);

    // The last sequence of a batch is at most 2^64-1.
    for (uint64_t back = 1022; back <= 1024; back++) {
        uint64_t first = UINT64_MAX - back;
        // head_encode writes what it is given; the decoder judges it.
        bytes =
            batch_build("t", first, 0, 0, ZMESH__BATCH_MAX, 3, &size, &head);
        assert_int_equal(batch_decode_exact(bytes, size, ZMESH__BATCH_MAX),
                         back >= 1023 ? 0 : ZMESH_EPROTO);
        free(bytes);
    }

    // A payload of 64 levels is fine in the middle of a batch; 65 is not,
    // and then the whole frame goes.
    for (int depth = 64; depth <= 65; depth++) {
        uint8_t payload[160]; // maps take 2 bytes a level
        size_t p = nest(payload, depth, depth % 2);
        uint8_t frame[256];
        size_t n = frame_bytes(frame, "t", 1, META(5, 0x02, 0x03), B(0xc0));
        memcpy(frame + n, payload, p);
        n += p;
        frame[n++] = 0x01;
        assert_int_equal(batch_decode_exact(frame, n, 3),
                         depth == 64 ? 0 : ZMESH_EPROTO);
    }
}

/*  Every strict prefix of a batch is rejected, the whole is taken, and a
    byte more is rejected; every byte changed to a few other values never
    crashes (ASan and the walk's checks watch) and, when taken, still walks
    to good events. */
static void
test_batch_truncated(void **state)
{
    (void)state;
    static const size_t counts[] = {2, 5, 130};
    static const uint8_t swaps[] = {0x00, 0x01, 0x02, 0x03, 0x7f, 0x80, 0x90,
                                    0x95, 0xc0, 0xc1, 0xcd, 0xdc, 0xdd, 0xff};
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        size_t size, head;
        uint8_t *bytes =
            batch_build("orders.eu", 300, 1700000000123456,
                        ZMESH__FRAME_CONFIRM, counts[c], c, &size, &head);
        for (size_t k = 0; k < size; k++) {
            int rc = batch_decode_exact(bytes, k, counts[c]);
            if (rc != ZMESH_EPROTO)
                fail_msg("count %zu cut to %zu of %zu: %d", counts[c], k, size,
                         rc);
            assert_int_equal(frame_decode_exact(bytes, k), ZMESH_EPROTO);
        }
        assert_int_equal(batch_decode_exact(bytes, size, counts[c]), 0);
        uint8_t *more = malloc(size + 1);
        assert_non_null(more);
        memcpy(more, bytes, size);
        more[size] = 0xc0;
        assert_int_equal(batch_decode_exact(more, size + 1, counts[c]),
                         ZMESH_EPROTO);
        for (size_t i = 0; i < size; i++)
            for (size_t s = 0; s < sizeof swaps / sizeof swaps[0]; s++) {
                memcpy(more, bytes, size);
                more[i] = swaps[s];
                uint8_t *copy = copy_exact(more, size);
                zmesh__batch_t b;
                if (zmesh__batch_decode(copy, size, &b) == 0) {
                    size_t n;
                    const char *why = batch_walk(&b, copy, size, walked[0], &n);
                    if (why)
                        fail_msg("byte %zu = 0x%02x: %s", i, swaps[s], why);
                }
                (void)zmesh__frame_decode(copy, size, &(zmesh__frame_t){0});
                free(copy);
            }
        free(more);
        free(bytes);
    }
}

/* ------------------------------------------------------------------------ */
/*  zmesh__msgpack_check                                                    */

/*  Each object: valid; each strict prefix: rejected; with a byte more:
    rejected. */
static void
check_object(const uint8_t *data, size_t size, const char *what)
{
    if (check_exact(data, size) != 0)
        fail_msg("%s rejected", what);
    for (size_t k = 0; k < size; k++)
        if (check_exact(data, k) != ZMESH_EPAYLOAD)
            fail_msg("%s cut to %zu accepted", what, k);
    uint8_t *more = malloc(size + 1);
    assert_non_null(more);
    memcpy(more, data, size);
    more[size] = 0xc0;
    if (zmesh__msgpack_check(more, size + 1) != ZMESH_EPAYLOAD)
        fail_msg("%s with a trailing byte accepted", what);
    free(more);
}

static void
test_msgpack_check_types(void **state)
{
    (void)state;
    // Everything msgpack-c's packer writes is accepted.
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    static char big[70000];
    memset(big, 'z', sizeof big);
    static const size_t sizes[] = {0, 1, 15, 31, 32, 255, 256, 65535, 65536};
    for (int what = 0; what < 12; what++)
        for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
            msgpack_sbuffer_clear(&sbuf);
            size_t n = sizes[s];
            switch (what) {
            case 0:
                pk_ok(msgpack_pack_str(&pk, n));
                pk_ok(msgpack_pack_str_body(&pk, big, n));
                break;
            case 1:
                pk_ok(msgpack_pack_bin(&pk, n));
                pk_ok(msgpack_pack_bin_body(&pk, big, n));
                break;
            case 2:
                if (n == 0)
                    continue; // ext 0 is written as ext8, covered below
                pk_ok(msgpack_pack_ext(&pk, n, 7));
                pk_ok(msgpack_pack_ext_body(&pk, big, n));
                break;
            case 3:
                if (n > 300)
                    continue; // only the header forms matter
                pk_ok(msgpack_pack_array(&pk, n));
                for (size_t i = 0; i < n; i++)
                    pk_ok(msgpack_pack_nil(&pk));
                break;
            case 4:
                if (n > 300)
                    continue;
                pk_ok(msgpack_pack_map(&pk, n));
                for (size_t i = 0; i < n; i++) {
                    pk_ok(msgpack_pack_uint64(&pk, i));
                    pk_ok(msgpack_pack_false(&pk));
                }
                break;
            case 5: pk_ok(msgpack_pack_uint64(&pk, (uint64_t)n << 40)); break;
            case 6: pk_ok(msgpack_pack_int64(&pk, -(int64_t)n - 1)); break;
            case 7:
                pk_ok(msgpack_pack_int64(&pk, INT64_MIN + (int64_t)n));
                break;
            case 8: pk_ok(msgpack_pack_float(&pk, (float)n)); break;
            case 9: pk_ok(msgpack_pack_double(&pk, (double)n)); break;
            case 10: {
                msgpack_timestamp ts = {.tv_sec = (int64_t)n * 1000003 - 9,
                                        .tv_nsec = (uint32_t)n * 3001};
                pk_ok(msgpack_pack_timestamp(&pk, &ts));
                break;
            }
            case 11:
                pk_ok(n % 2 ? msgpack_pack_true(&pk) : msgpack_pack_nil(&pk));
                break;
            }
            char what_text[64];
            snprintf(what_text, sizeof what_text, "kind %d size %zu", what, n);
            // Prefixes of the big ones are checked at a few sizes only.
            if (sbuf.size > 1000)
                assert_int_equal(check_exact(sbuf.data, sbuf.size), 0);
            else
                check_object((const uint8_t *)sbuf.data, sbuf.size, what_text);
        }
    msgpack_sbuffer_destroy(&sbuf);

    // Hand-written forms msgpack-c's packer does not produce.
    const struct {
        const uint8_t *bytes;
        size_t size;
    } forms[] = {
        {B(0xd9, 0x00)},                               // str8 of 0
        {B(0xda, 0x00, 0x01, 'a')},                    // str16 of 1
        {B(0xdb, 0x00, 0x00, 0x00, 0x00)},             // str32 of 0
        {B(0xc7, 0x00, 0x05)},                         // ext8 of 0
        {B(0xc8, 0x00, 0x01, 0x05, 0x00)},             // ext16 of 1
        {B(0xc9, 0x00, 0x00, 0x00, 0x00, 0x05)},       // ext32 of 0
        {B(0xdd, 0x00, 0x00, 0x00, 0x01, 0xc0)},       // array32 of 1
        {B(0xdf, 0x00, 0x00, 0x00, 0x01, 0xc0, 0xc0)}, // map32 of 1
        {B(0xd0, 0x05)},                               // int8 5 (positive)
        {B(0xd3, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff)},
        {B(0xd6, 0xff, 0xff, 0xff, 0xff, 0xff)}, // timestamp32 max
        {B(0xd7, 0xff, 0xee, 0x6b, 0x27, 0xfc, 0xff, 0xff, 0xff, 0xff)},
        {B(0xc7, 0x0c, 0xff, 0x3b, 0x9a, 0xc9, 0xff, 0x80, 0, 0, 0, 0, 0, 0,
           0)},                // timestamp96, 999999999 ns
        {B(0x81, 0x90, 0x80)}, // a map keyed by an array
    };
    for (size_t i = 0; i < sizeof forms / sizeof forms[0]; i++) {
        char what[32];
        snprintf(what, sizeof what, "form %zu", i);
        check_object(forms[i].bytes, forms[i].size, what);
    }
}

static void
test_msgpack_check_rejects(void **state)
{
    (void)state;
    const struct {
        const char *what;
        const uint8_t *bytes;
        size_t size;
    } bad[] = {
        {"0xc1", B(0xc1)},
        {"0xc1 in an array", B(0x92, 0x01, 0xc1)},
        {"0xc1 as a map key", B(0x81, 0xc1, 0x01)},
        {"map missing a value", B(0x81, 0x01)},
        {"array32 2^32-1 in 10 bytes",
         B(0xdd, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0)},
        {"map32 2^32-1 in 10 bytes",
         B(0xdf, 0xff, 0xff, 0xff, 0xff, 0xc0, 0xc0, 0xc0, 0xc0, 0xc0)},
        {"nested huge arrays",
         B(0x91, 0x91, 0xdd, 0x7f, 0xff, 0xff, 0xff, 0x90)},
        {"str32 2^32-1", B(0xdb, 0xff, 0xff, 0xff, 0xff, 'a')},
        {"bin32 2^32-1", B(0xc6, 0xff, 0xff, 0xff, 0xff, 'a')},
        {"ext32 2^32-1", B(0xc9, 0xff, 0xff, 0xff, 0xff, 0x01, 'a')},
        {"ext8 with no type byte", B(0xc7, 0x00)},
        {"fixext16 short", B(0xd8, 0x01, 0x00)},
        {"timestamp of 2 bytes", B(0xd5, 0xff, 0x00, 0x00)},
        {"timestamp of 16 bytes",
         B(0xd8, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)},
        {"timestamp64 1e9 ns",
         B(0xd7, 0xff, 0xee, 0x6b, 0x28, 0x00, 0x00, 0x00, 0x00, 0x00)},
        {"timestamp96 1e9 ns",
         B(0xc7, 0x0c, 0xff, 0x3b, 0x9a, 0xca, 0x00, 0, 0, 0, 0, 0, 0, 0, 0)},
        {"float64 short", B(0xcb, 0x00, 0x00)},
        {"uint64 short", B(0xcf, 0x00)},
        {"int16 short", B(0xd1, 0x00)},
        {"str8 without length", B(0xd9)},
        {"map16 without count", B(0xde, 0x00)},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (check_exact(bad[i].bytes, bad[i].size) != ZMESH_EPAYLOAD)
            fail_msg("%s accepted", bad[i].what);
    assert_int_equal(zmesh__msgpack_check(NULL, 0), ZMESH_EPAYLOAD);
    assert_int_equal(check_exact("", 0), ZMESH_EPAYLOAD);

    // A declared count larger than the input must not be walked: 2^32-1
    // nils promised and a megabyte of them given fails after that megabyte.
    size_t size = 1 << 20;
    uint8_t *many_nils = malloc(size);
    assert_non_null(many_nils);
    memset(many_nils, 0xc0, size);
    memcpy(many_nils, "\xdd\xff\xff\xff\xff", 5);
    assert_int_equal(zmesh__msgpack_check(many_nils, size), ZMESH_EPAYLOAD);
    // A count that does fit is walked to its end.
    many_nils[1] = 0x00;
    many_nils[2] = 0x0f;
    many_nils[3] = 0xff;
    many_nils[4] = 0xfb; // 0x000ffffb = size - 5 nils
    assert_int_equal(zmesh__msgpack_check(many_nils, size), 0);
    free(many_nils);
}

/* ------------------------------------------------------------------------ */
/*  Ids                                                                     */

static void
test_id_hex(void **state)
{
    (void)state;
    char hex[33];
    zmesh__id_to_hex(id_a, hex);
    assert_string_equal(hex, "00112233445566778899aabbccddeeff");
    uint8_t id[16];
    assert_int_equal(zmesh__id_from_hex(hex, id), 0);
    assert_memory_equal(id, id_a, 16);
    assert_int_equal(zmesh__id_from_hex("FEDCBA98765432100123456789ABCDEF", id),
                     0);
    assert_memory_equal(id, id_b, 16);
    zmesh__id_to_hex(id_b, hex);
    assert_string_equal(hex, "fedcba98765432100123456789abcdef");

    static const char *bad[] = {
        "",
        "00112233445566778899aabbccddeef",   // 31
        "00112233445566778899aabbccddeeff0", // 33
        "00112233445566778899aabbccddeefg",
        "0x112233445566778899aabbccddeeff",
        " 0112233445566778899aabbccddeeff",
        "00112233445566778899aabbccddeef ",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memcpy(id, id_b, 16);
        if (zmesh__id_from_hex(bad[i], id) != ZMESH_EINVAL)
            fail_msg("\"%s\" accepted", bad[i]);
        assert_memory_equal(id, id_b, 16); // untouched
    }
    assert_int_equal(zmesh__id_from_hex(NULL, id), ZMESH_EINVAL);
}

/*  The envelope of requests and replies on the data plane. */
static void
test_rr_envelope(void **state)
{
    (void)state;
    uint8_t buf[600];
    const uint8_t payload[] = {0x81, 0xa1, 'k', 0x01};
    // A request round trip, short and long topics, small and large req.
    const char *topics[] = {"a", "svc.echo", "x.0123456789.0123456789.0123"};
    const uint64_t reqs[] = {1, 127, 128, 65536, UINT64_MAX};
    for (size_t t = 0; t < 3; t++)
        for (size_t q = 0; q < 5; q++) {
            size_t ts = strlen(topics[t]);
            size_t head = zmesh__rr_head_size(reqs[q], ts, 0);
            assert_int_equal(
                zmesh__rr_head_encode(reqs[q], topics[t], ts, 0, buf), head);
            memcpy(buf + head, payload, sizeof payload);
            zmesh__rr_t rr;
            assert_int_equal(
                zmesh__rr_decode(buf, head + sizeof payload, true, &rr), 0);
            assert_int_equal(rr.req, reqs[q]);
            assert_int_equal(rr.topic_size, ts);
            assert_memory_equal(rr.topic, topics[t], ts);
            assert_int_equal(rr.payload_size, sizeof payload);
            assert_memory_equal(rr.payload, payload, sizeof payload);
            // Read as a reply, a request is malformed (a str, no status).
            assert_int_equal(
                zmesh__rr_decode(buf, head + sizeof payload, false, &rr),
                ZMESH_EPROTO);
            // Cut anywhere, it is rejected.
            for (size_t cut = 0; cut < head + sizeof payload; cut++)
                assert_int_equal(zmesh__rr_decode(buf, cut, true, &rr),
                                 ZMESH_EPROTO);
        }
    // A reply with each status, and a nil payload.
    for (uint64_t status = 0; status < 3; status++) {
        size_t head = zmesh__rr_head_size(9, 0, status);
        assert_int_equal(zmesh__rr_head_encode(9, NULL, 0, status, buf), head);
        buf[head] = 0xc0;
        zmesh__rr_t rr;
        assert_int_equal(zmesh__rr_decode(buf, head + 1, false, &rr), 0);
        assert_int_equal(rr.req, 9);
        assert_int_equal(rr.status, status);
        assert_int_equal(rr.payload_size, 1);
        assert_int_equal(zmesh__rr_decode(buf, head + 1, true, &rr),
                         ZMESH_EPROTO);
    }
    // Malformed: req 0, a negative req, an array of 2 or 4, an empty or
    // NUL-holding topic, a topic of 256 bytes, no payload, two payloads.
    const struct {
        const char *why;
        uint8_t bytes[16];
        size_t size;
        bool request;
    } bad[] = {
        {"req 0", {0x93, 0x00, 0xa1, 'a', 0xc0}, 5, true},
        {"req -1", {0x93, 0xff, 0xa1, 'a', 0xc0}, 5, true},
        {"array of 2", {0x92, 0x01, 0xa1, 'a'}, 4, true},
        {"array of 4", {0x94, 0x01, 0xa1, 'a', 0xc0, 0xc0}, 6, true},
        {"empty topic", {0x93, 0x01, 0xa0, 0xc0}, 4, true},
        {"NUL in topic", {0x93, 0x01, 0xa2, 'a', 0x00, 0xc0}, 6, true},
        {"topic a bin", {0x93, 0x01, 0xc4, 0x01, 'a', 0xc0}, 6, true},
        {"no payload", {0x93, 0x01, 0xa1, 'a'}, 4, true},
        {"two payloads", {0x93, 0x01, 0xa1, 'a', 0xc0, 0xc0}, 6, true},
        {"status a str", {0x93, 0x01, 0xa1, 'a', 0xc0}, 5, false},
        {"status -1", {0x93, 0x01, 0xff, 0xc0}, 4, false},
        {"a map", {0x81, 0x01, 0x02}, 3, false},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        zmesh__rr_t rr;
        if (zmesh__rr_decode(bad[i].bytes, bad[i].size, bad[i].request, &rr) !=
            ZMESH_EPROTO)
            fail_msg("accepted: %s", bad[i].why);
    }
    uint8_t long_topic[300] = {0x93, 0x01, 0xd9, 0xff};
    memset(long_topic + 4, 'a', 255);
    long_topic[4 + 255] = 0xc0;
    zmesh__rr_t rr;
    assert_int_equal(zmesh__rr_decode(long_topic, 260, true, &rr), 0);
    long_topic[2] = 0xda; // str16 of 256
    long_topic[3] = 0x01;
    long_topic[4] = 0x00;
    memset(long_topic + 5, 'a', 256);
    long_topic[5 + 256] = 0xc0;
    assert_int_equal(zmesh__rr_decode(long_topic, 262, true, &rr),
                     ZMESH_EPROTO);
    assert_int_equal(zmesh__rr_decode(NULL, 0, true, &rr), ZMESH_EPROTO);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors),
        cmocka_unit_test(test_vectors_truncated),
        cmocka_unit_test(test_round_trip_every_type),
        cmocka_unit_test(test_hello_defaults),
        cmocka_unit_test(test_encode_rejects),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_request_rules),
        cmocka_unit_test(test_encode_rejects_requests),
        cmocka_unit_test(test_absent_by_meaning),
        cmocka_unit_test(test_clear_requests),
        cmocka_unit_test(test_queue_groups),
        cmocka_unit_test(test_backpressure),
        cmocka_unit_test(test_serves),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_missing_required),
        cmocka_unit_test(test_duplicate_keys),
        cmocka_unit_test(test_unknown_keys_skipped),
        cmocka_unit_test(test_trailing_bytes),
        cmocka_unit_test(test_truncated_every_offset),
        cmocka_unit_test(test_other_versions),
        cmocka_unit_test(test_bad_envelope),
        cmocka_unit_test(test_nul_in_strings),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_body_limits),
        cmocka_unit_test(test_frame_round_trip),
        cmocka_unit_test(test_frame_encode_capacity),
        cmocka_unit_test(test_frame_decode_cases),
        cmocka_unit_test(test_frame_deep_payload),
        cmocka_unit_test(test_batch_round_trip),
        cmocka_unit_test(test_batch_head_encode),
        cmocka_unit_test(test_batch_decode_cases),
        cmocka_unit_test(test_batch_single_frames),
        cmocka_unit_test(test_tail_frames),
        cmocka_unit_test(test_batch_not_a_frame),
        cmocka_unit_test(test_batch_limits),
        cmocka_unit_test(test_batch_truncated),
        cmocka_unit_test(test_rr_envelope),
        cmocka_unit_test(test_msgpack_check_types),
        cmocka_unit_test(test_msgpack_check_rejects),
        cmocka_unit_test(test_id_hex),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
