/*  codec.c - every zmesh wire message to and from bytes (proto/wire.md).
    Control messages are packed with msgpack-c and their known values read
    with msgpack_unpack; frames, payloads and all skipped values go through
    our own strict, non-allocating reader, as msgpack-c cannot validate
    without a zone (an allocation per event), allocates 24 bytes per declared
    element before reading any (a 5-byte array32 header asks for 96 GiB) and
    stops at 32 levels of nesting where the protocol allows 64. The topic
    of NAK, DIRECT and CREDIT, HISTORY's pattern, and the queue-group and
    back-pressure patterns, are checked with topic.c, as a bad one could
    only be refused later; the pubs and subs of HELLO and ADVERTISE are
    left to the caller. No state, no logging. */
#include "codec.h"
#include "topic.h"
#include "utf8.h"

#include <assert.h>
#include <limits.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

/*  Limits of proto/wire.md#limits. */
#define S_DEPTH_MAX 64      /* nesting of a payload or of a skipped value */
#define S_BODY_MAX 64       /* entries in a control message's body map */
#define S_KEY_MAX 64        /* bytes in a body key */
#define S_TEXT_MAX 255      /* bytes in endpoint, data, host, ver */
#define S_PATTERNS_MAX 1024 /* patterns in pubs, and in subs */
#define S_HEADERS_MAX 32
#define S_GOSSIP_MAX 1024
#define S_FRAMES_MAX 4096   /* frames in one REPAIR */
#define S_COUNTERS_MAX 1024 /* groups in a STATS answer */
#define S_COUNTER_KEYS_MAX 64
#define S_KIND_MAX 16        /* bytes in a counter group's kind */
#define S_ENVELOPE_MIN 3     /* version, type, sender: fixed for all versions */
#define S_ENVELOPE_V1 4      /* ... and the body */
#define S_META_MIN 3         /* publisher, sequence, timestamp */
#define S_TIMESTAMP_EXT 0xff /* msgpack's timestamp extension, type -1 */

/* ------------------------------------------------------------------------ */
/*  A strict, non-allocating msgpack reader                                 */

typedef enum {
    S_NIL,
    S_BOOL,
    S_UINT, /* any integer format holding a value >= 0 */
    S_INT,  /* any integer format holding a value < 0 */
    S_FLOAT,
    S_STR,
    S_BIN,
    S_EXT,
    S_ARRAY,
    S_MAP
} s_kind_t;

typedef struct {
    s_kind_t kind;
    /*  S_UINT: the value; S_INT: the value as two's complement; S_BOOL: 0
        or 1; S_STR, S_BIN, S_EXT: payload bytes; S_ARRAY, S_MAP: count. */
    uint64_t value;
    const uint8_t *bytes; /* S_STR, S_BIN, S_EXT: the payload */
} s_item_t;

typedef struct {
    const uint8_t *p;
    const uint8_t *end;
} s_reader_t;

/*  Big-endian load of 1, 2, 4 or 8 bytes: a load and a byte swap. */
static inline uint64_t
s_load_be(const uint8_t *p, size_t width)
{
    switch (width) {
    case 1: return p[0];
    case 2: return (uint64_t)p[0] << 8 | p[1];
    case 4:
        return (uint64_t)p[0] << 24 | (uint64_t)p[1] << 16 |
               (uint64_t)p[2] << 8 | p[3];
    default:
        return (uint64_t)p[0] << 56 | (uint64_t)p[1] << 48 |
               (uint64_t)p[2] << 40 | (uint64_t)p[3] << 32 |
               (uint64_t)p[4] << 24 | (uint64_t)p[5] << 16 |
               (uint64_t)p[6] << 8 | p[7];
    }
}

/*  A timestamp extension must have one of the three sizes the msgpack spec
    defines and nanoseconds below one second; other decoders reject the
    rest, so a payload holding one would fail at some subscribers. */
static bool
s_timestamp_ok(const uint8_t *data, uint64_t size)
{
    if (size == 4)
        return true;
    if (size == 8)
        return (s_load_be(data, 4) >> 2) <= 999999999u;
    if (size == 12)
        return s_load_be(data, 4) <= 999999999u;
    return false;
}

/*  The pieces of s_read_wide, each inlined with a constant `width` so the
    loads become single instructions. `p` points after the marker. */
static inline bool
s_take_uint(s_reader_t *r, s_item_t *it, const uint8_t *p, size_t width)
{
    if ((size_t)(r->end - p) < width)
        return false;
    it->kind = S_UINT;
    it->value = s_load_be(p, width);
    r->p = p + width;
    return true;
}

static inline bool
s_take_int(s_reader_t *r, s_item_t *it, const uint8_t *p, size_t width)
{
    if ((size_t)(r->end - p) < width)
        return false;
    uint64_t bits = s_load_be(p, width);
    // Sign-extend from width bytes (unsigned shifts: no UB).
    if (width < 8 && (bits >> (8 * width - 1)))
        bits |= ~(uint64_t)0 << (8 * width % 64);
    it->kind = (bits >> 63) ? S_INT : S_UINT;
    it->value = bits;
    r->p = p + width;
    return true;
}

/*  str or bin: a `width`-byte length, then that many bytes. */
static inline bool
s_take_bytes(s_reader_t *r, s_item_t *it, const uint8_t *p, size_t width,
             s_kind_t kind)
{
    size_t left = (size_t)(r->end - p);
    if (left < width)
        return false;
    uint64_t len = s_load_be(p, width);
    if (len > left - width)
        return false;
    it->kind = kind;
    it->value = len;
    it->bytes = p + width;
    r->p = p + width + len;
    return true;
}

/*  ext: `len` bytes of data after one byte of type, at p. */
static inline bool
s_take_ext(s_reader_t *r, s_item_t *it, const uint8_t *p, uint64_t len)
{
    size_t left = (size_t)(r->end - p);
    if (left < 1 || len > left - 1)
        return false;
    if (p[0] == S_TIMESTAMP_EXT && !s_timestamp_ok(p + 1, len))
        return false;
    it->kind = S_EXT;
    it->value = len;
    it->bytes = p + 1;
    r->p = p + 1 + len;
    return true;
}

static inline bool
s_take_ext_sized(s_reader_t *r, s_item_t *it, const uint8_t *p, size_t width)
{
    if ((size_t)(r->end - p) < width)
        return false;
    return s_take_ext(r, it, p + width, s_load_be(p, width));
}

/*  array or map: a `width`-byte count. Each element takes at least one
    byte, a map's entries two, so larger counts are refused here. */
static inline bool
s_take_container(s_reader_t *r, s_item_t *it, const uint8_t *p, size_t width,
                 s_kind_t kind)
{
    size_t left = (size_t)(r->end - p);
    if (left < width)
        return false;
    uint64_t len = s_load_be(p, width);
    left -= width;
    if (kind == S_MAP ? len > left / 2 : len > left)
        return false;
    it->kind = kind;
    it->value = len;
    r->p = p + width;
    return true;
}

/*  s_read for the markers 0xc0..0xdf, whose lengths or values follow in
    1 to 8 more bytes. */
static bool
s_read_wide(s_reader_t *r, s_item_t *it)
{
    const uint8_t *p = r->p + 1;
    switch (r->p[0]) {
    case 0xc0:
        it->kind = S_NIL;
        it->value = 0;
        r->p = p;
        return true;
    case 0xc2:
    case 0xc3:
        it->kind = S_BOOL;
        it->value = r->p[0] & 1;
        r->p = p;
        return true;
    case 0xc4: return s_take_bytes(r, it, p, 1, S_BIN);
    case 0xc5: return s_take_bytes(r, it, p, 2, S_BIN);
    case 0xc6: return s_take_bytes(r, it, p, 4, S_BIN);
    case 0xc7: return s_take_ext_sized(r, it, p, 1);
    case 0xc8: return s_take_ext_sized(r, it, p, 2);
    case 0xc9: return s_take_ext_sized(r, it, p, 4);
    case 0xca:
    case 0xcb:
        if (!s_take_uint(r, it, p, r->p[0] == 0xca ? 4 : 8))
            return false;
        it->kind = S_FLOAT;
        it->value = 0;
        return true;
    case 0xcc: return s_take_uint(r, it, p, 1);
    case 0xcd: return s_take_uint(r, it, p, 2);
    case 0xce: return s_take_uint(r, it, p, 4);
    case 0xcf: return s_take_uint(r, it, p, 8);
    case 0xd0: return s_take_int(r, it, p, 1);
    case 0xd1: return s_take_int(r, it, p, 2);
    case 0xd2: return s_take_int(r, it, p, 4);
    case 0xd3: return s_take_int(r, it, p, 8);
    case 0xd4: return s_take_ext(r, it, p, 1);
    case 0xd5: return s_take_ext(r, it, p, 2);
    case 0xd6: return s_take_ext(r, it, p, 4);
    case 0xd7: return s_take_ext(r, it, p, 8);
    case 0xd8: return s_take_ext(r, it, p, 16);
    case 0xd9: return s_take_bytes(r, it, p, 1, S_STR);
    case 0xda: return s_take_bytes(r, it, p, 2, S_STR);
    case 0xdb: return s_take_bytes(r, it, p, 4, S_STR);
    case 0xdc: return s_take_container(r, it, p, 2, S_ARRAY);
    case 0xdd: return s_take_container(r, it, p, 4, S_ARRAY);
    case 0xde: return s_take_container(r, it, p, 2, S_MAP);
    case 0xdf: return s_take_container(r, it, p, 4, S_MAP);
    default: return false; // 0xc1, never used
    }
}

/*  Reads one item's header from `r` and, for str, bin and ext, steps over
    its payload. Every declared length is checked against the bytes left
    before it is used, and a container may not declare more elements than
    there are bytes left (each takes at least one), so no count from the
    wire can make a caller loop or allocate beyond the input's size. False
    for truncated input, 0xc1 and malformed timestamps. The one-byte forms
    that make up most small events are handled inline. */
static inline bool
s_read(s_reader_t *r, s_item_t *it)
{
    const uint8_t *p = r->p;
    if (p == r->end)
        return false;
    uint8_t c = *p;
    if (c <= 0x7f) {
        it->kind = S_UINT;
        it->value = c;
        r->p = p + 1;
        return true;
    }
    if (c >= 0xe0) {
        it->kind = S_INT;
        it->value = (uint64_t)(int64_t)(int8_t)c;
        r->p = p + 1;
        return true;
    }
    if (c >= 0xc0)
        return s_read_wide(r, it);
    size_t left = (size_t)(r->end - p) - 1;
    uint64_t len;
    if (c >= 0xa0) {
        len = c & 0x1f;
        if (len > left)
            return false;
        it->kind = S_STR;
        it->value = len;
        it->bytes = p + 1;
        r->p = p + 1 + len;
        return true;
    }
    len = c & 0x0f;
    if (c <= 0x8f) {
        if (len > left / 2)
            return false;
        it->kind = S_MAP;
    } else {
        if (len > left)
            return false;
        it->kind = S_ARRAY;
    }
    it->value = len;
    r->p = p + 1;
    return true;
}

/*  Steps over one well-formed item nested at most `max_depth` containers
    deep (an empty container counts as one level; a scalar is 0). No
    recursion: one counter of items still due per open level. Each pass of
    the loop consumes at least one byte or fails, so it ends within the
    input's size whatever the counts say. */
static bool
s_skip(s_reader_t *r, int max_depth)
{
    assert(max_depth >= 0 && max_depth <= S_DEPTH_MAX);
    uint64_t due[S_DEPTH_MAX]; // items due in each enclosing level
    int open = 0;              // containers open around the next item
    uint64_t left = 1;         // items due at the current level
    for (;;) {
        while (left == 0) {
            if (open == 0)
                return true;
            left = due[--open];
        }
        left--;
        s_item_t it;
        if (!s_read(r, &it))
            return false;
        if (it.kind != S_ARRAY && it.kind != S_MAP)
            continue;
        if (open >= max_depth)
            return false;
        // s_read bounded the count by the bytes left, so no overflow.
        uint64_t items = it.kind == S_MAP ? 2 * it.value : it.value;
        if (items > 0) {
            due[open++] = left;
            left = items;
        }
    }
}

int
zmesh__msgpack_check(const void *data, size_t size)
{
    if (!data || size == 0)
        return ZMESH_EPAYLOAD;
    s_reader_t r = {data, (const uint8_t *)data + size};
    // Most events are one bin or str (an application's own encoding) or a
    // map; a lone bin or str is decided from its header alone.
    const uint8_t *p = data;
    uint8_t c = p[0];
    if ((c == 0xc4 || c == 0xd9) && size >= 2)
        return size == 2 + (size_t)p[1] ? 0 : ZMESH_EPAYLOAD;
    if ((c == 0xc5 || c == 0xda) && size >= 3)
        return size == 3 + ((size_t)p[1] << 8 | p[2]) ? 0 : ZMESH_EPAYLOAD;
    // Otherwise most small events are one scalar: one read decides.
    s_reader_t first = r;
    s_item_t it;
    if (s_read(&first, &it) && it.kind != S_ARRAY && it.kind != S_MAP)
        return first.p == first.end ? 0 : ZMESH_EPAYLOAD;
    if (!s_skip(&r, S_DEPTH_MAX) || r.p != r.end)
        return ZMESH_EPAYLOAD;
    return 0;
}

/*  True when `size` bytes at `p` are well-formed UTF-8 (no overlong forms,
    surrogates or code points above U+10FFFF) and hold no NUL, so they can
    become a C string (proto/wire.md#strings). */
static bool
s_text_ok(const uint8_t *p, size_t size)
{
    for (size_t i = 0; i < size;) {
        size_t n = zmesh__utf8_sequence(p + i, size - i);
        if (n == 0 || p[i] == 0)
            return false;
        i += n;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/*  Control messages: the fields of each type                               */

typedef enum {
    S_F_STR,      /* str, copied to a char * */
    S_F_TOPIC,    /* str holding a topic ('$' ones too), to a char * */
    S_F_PATTERN,  /* str holding a pattern, to a char * */
    S_F_UINT,     /* uint in min..max, to a uint64_t */
    S_F_PATTERNS, /* array of str */
    S_F_HEADERS,  /* map str -> str */
    S_F_GOSSIP,   /* array of [bin 16, str] */
    S_F_FRAMES,   /* array of bin, each an event frame */
    S_F_PAYLOAD,  /* bin holding one msgpack object */
    S_F_COUNTERS, /* array of [str, str, map str -> uint] */
    S_F_GROUPS    /* array of [pattern str, group str] */
} s_field_kind_t;

typedef enum {
    S_NAME,
    S_MESH,
    S_ENDPOINT,
    S_DATA,
    S_HOST,
    S_VER,
    S_PID,
    S_HEADERS,
    S_PUBS,
    S_SUBS,
    S_SUBGEN,
    S_ASK,
    S_PEERS,
    S_REQ,
    S_TOPIC,
    S_FIRST,
    S_LAST,
    S_JOIN,
    S_FRAMES,
    S_DONE,
    S_PATTERN,
    S_PAYLOAD,
    S_STATUS,
    S_COUNTERS,
    S_GROUPS,
    S_GROUP,
    S_REDELIVERED,
    S_BP,
    S_SERVES,
    S_BATCH,
    S_TAIL
} s_field_id_t;

/*  min and max: bytes of a str, the values of a uint; a container's max is
    its element count (a payload has its own rules). */
typedef struct {
    const char *key;
    s_field_kind_t kind;
    uint64_t min, max;
} s_field_t;

static const s_field_t s_fields[] = {
    [S_NAME] = {"name", S_F_STR, 1, ZMESH_NAME_MAX},
    [S_MESH] = {"mesh", S_F_STR, 1, ZMESH_NAME_MAX},
    [S_ENDPOINT] = {"endpoint", S_F_STR, 1, S_TEXT_MAX},
    [S_DATA] = {"data", S_F_STR, 1, S_TEXT_MAX},
    [S_HOST] = {"host", S_F_STR, 0, S_TEXT_MAX},
    [S_VER] = {"ver", S_F_STR, 0, S_TEXT_MAX},
    [S_PID] = {"pid", S_F_UINT, 0, UINT64_MAX},
    [S_HEADERS] = {"headers", S_F_HEADERS, 0, S_HEADERS_MAX},
    [S_PUBS] = {"pubs", S_F_PATTERNS, 0, S_PATTERNS_MAX},
    [S_SUBS] = {"subs", S_F_PATTERNS, 0, S_PATTERNS_MAX},
    [S_SUBGEN] = {"subgen", S_F_UINT, 0, UINT64_MAX},
    [S_ASK] = {"ask", S_F_UINT, 0, UINT64_MAX},
    [S_PEERS] = {"peers", S_F_GOSSIP, 0, S_GOSSIP_MAX},
    [S_REQ] = {"req", S_F_UINT, 0, UINT64_MAX},
    [S_TOPIC] = {"topic", S_F_TOPIC, 1, ZMESH_TOPIC_MAX},
    [S_FIRST] = {"first", S_F_UINT, 1, UINT64_MAX},
    [S_LAST] = {"last", S_F_UINT, 1, UINT64_MAX},
    [S_JOIN] = {"join", S_F_UINT, 0, 1},
    [S_FRAMES] = {"frames", S_F_FRAMES, 0, S_FRAMES_MAX},
    [S_DONE] = {"done", S_F_UINT, 0, 1},
    [S_PATTERN] = {"pattern", S_F_PATTERN, 1, ZMESH_TOPIC_MAX},
    [S_PAYLOAD] = {"payload", S_F_PAYLOAD, 0, 0},
    [S_STATUS] = {"status", S_F_UINT, 0, UINT64_MAX},
    [S_COUNTERS] = {"counters", S_F_COUNTERS, 0, S_COUNTERS_MAX},
    [S_GROUPS] = {"groups", S_F_GROUPS, 0, S_PATTERNS_MAX},
    [S_GROUP] = {"group", S_F_STR, 1, ZMESH_NAME_MAX},
    [S_REDELIVERED] = {"redelivered", S_F_UINT, 0, 1},
    [S_BP] = {"bp", S_F_PATTERNS, 0, S_PATTERNS_MAX},
    [S_SERVES] = {"serves", S_F_PATTERNS, 0, S_PATTERNS_MAX},
    [S_BATCH] = {"batch", S_F_UINT, 0, UINT32_MAX},
    [S_TAIL] = {"tail", S_F_UINT, 0, UINT64_MAX},
};

typedef struct {
    s_field_id_t id;
    bool required;
} s_use_t;

/*  Each type's keys in the order the encoder writes them
    (proto/wire.md#control-messages). */
static const s_use_t s_hello[] = {
    {S_NAME, true},    {S_MESH, true},  {S_ENDPOINT, true}, {S_DATA, true},
    {S_HOST, false},   {S_VER, false},  {S_PID, false},     {S_HEADERS, false},
    {S_PUBS, false},   {S_SUBS, false}, {S_SUBGEN, false},  {S_ASK, false},
    {S_GROUPS, false}, {S_BP, false},   {S_SERVES, false},  {S_BATCH, false},
    {S_TAIL, false},
};
static const s_use_t s_advertise[] = {{S_PUBS, true},   {S_SUBS, true},
                                      {S_SUBGEN, true}, {S_GROUPS, false},
                                      {S_BP, false},    {S_SERVES, false}};
static const s_use_t s_peers[] = {{S_PEERS, true}};
static const s_use_t s_nak[] = {{S_REQ, true},
                                {S_TOPIC, true},
                                {S_FIRST, true},
                                {S_LAST, true},
                                {S_JOIN, false}};
/*  join: the answer to a NAK with join 1 is vouched for (wire.md#repair). */
static const s_use_t s_repair[] = {
    {S_REQ, true}, {S_FRAMES, true}, {S_DONE, true}, {S_JOIN, false}};
static const s_use_t s_history[] = {{S_REQ, true}, {S_PATTERN, true}};
static const s_use_t s_direct[] = {
    {S_REQ, true}, {S_TOPIC, true}, {S_PAYLOAD, true}};
/*  A REPLY's payload is there when status is 0 (s_rules_ok). */
static const s_use_t s_reply[] = {
    {S_REQ, true}, {S_STATUS, true}, {S_PAYLOAD, false}};
/*  No counters: the question; counters, even none: the answer. */
static const s_use_t s_stats[] = {{S_REQ, true}, {S_COUNTERS, false}};
static const s_use_t s_deliver[] = {
    {S_REQ, true}, {S_GROUP, true}, {S_FRAMES, true}, {S_REDELIVERED, false}};
static const s_use_t s_ack[] = {{S_REQ, true}};
static const s_use_t s_credit[] = {{S_TOPIC, true}, {S_LAST, true}};

#define S_COUNT(a) (sizeof a / sizeof a[0])

/*  The most keys a type has (HELLO's). */
#define S_USES_MAX (sizeof s_hello / sizeof s_hello[0])

typedef struct {
    const s_use_t *uses;
    size_t count;
} s_type_t;

static const s_type_t s_types[] = {
    [ZMESH__MSG_HELLO] = {s_hello, S_COUNT(s_hello)},
    [ZMESH__MSG_ADVERTISE] = {s_advertise, S_COUNT(s_advertise)},
    [ZMESH__MSG_PING] = {NULL, 0},
    [ZMESH__MSG_PONG] = {NULL, 0},
    [ZMESH__MSG_BYE] = {NULL, 0},
    [ZMESH__MSG_PEERS] = {s_peers, S_COUNT(s_peers)},
    [ZMESH__MSG_NAK] = {s_nak, S_COUNT(s_nak)},
    [ZMESH__MSG_REPAIR] = {s_repair, S_COUNT(s_repair)},
    [ZMESH__MSG_HISTORY] = {s_history, S_COUNT(s_history)},
    [ZMESH__MSG_DIRECT] = {s_direct, S_COUNT(s_direct)},
    [ZMESH__MSG_REPLY] = {s_reply, S_COUNT(s_reply)},
    [ZMESH__MSG_STATS] = {s_stats, S_COUNT(s_stats)},
    [ZMESH__MSG_DELIVER] = {s_deliver, S_COUNT(s_deliver)},
    [ZMESH__MSG_ACK] = {s_ack, S_COUNT(s_ack)},
    [ZMESH__MSG_CREDIT] = {s_credit, S_COUNT(s_credit)},
};

static bool
s_type_known(uint64_t type)
{
    return type >= ZMESH__MSG_HELLO && type <= ZMESH__MSG_CREDIT;
}

/*  Rules that tie fields together, the same for both directions. */
static bool
s_rules_ok(const zmesh__msg_t *msg)
{
    switch (msg->type) {
    case ZMESH__MSG_NAK: return msg->last >= msg->first;
    case ZMESH__MSG_REPLY:
        // 0 would mean "no reply wanted" in the DIRECT it answers.
        return msg->req >= 1 &&
               (msg->status != ZMESH__REPLY_OK || msg->payload != NULL);
    default: return true;
    }
}

/*  Whether the encoder writes the key: every key of the type, except a
    payload or counters that are absent by meaning, not by default, and
    queue groups and back-pressure patterns when there are none, so that
    an agent without them sends
    the HELLO and ADVERTISE bytes it sent before groups existed
    (proto/wire.md#body). */
static bool
s_written(const zmesh__msg_t *msg, s_field_id_t id)
{
    if (id == S_PAYLOAD)
        return msg->payload != NULL;
    if (id == S_COUNTERS)
        return msg->counters != NULL;
    if (id == S_GROUPS)
        return msg->groups_count > 0;
    if (id == S_BP)
        return msg->bp_subs_count > 0;
    if (id == S_SERVES)
        return msg->serves_count > 0;
    if (id == S_BATCH)
        return msg->batch != 0;
    if (id == S_TAIL)
        return msg->tail != 0;
    return true;
}

/*  Where a str or uint field lives in the message. */
static char **
s_str_slot(zmesh__msg_t *msg, s_field_id_t id)
{
    switch (id) {
    case S_NAME: return &msg->name;
    case S_MESH: return &msg->mesh;
    case S_ENDPOINT: return &msg->endpoint;
    case S_DATA: return &msg->data_endpoint;
    case S_HOST: return &msg->host;
    case S_VER: return &msg->version_text;
    case S_TOPIC: return &msg->topic;
    case S_PATTERN: return &msg->pattern;
    case S_GROUP: return &msg->group;
    default: assert(!"not a str field"); return NULL;
    }
}

static uint64_t *
s_uint_slot(zmesh__msg_t *msg, s_field_id_t id)
{
    switch (id) {
    case S_PID: return &msg->pid;
    case S_SUBGEN: return &msg->subs_generation;
    case S_ASK: return &msg->ask;
    case S_BATCH: return &msg->batch;
    case S_TAIL: return &msg->tail;
    case S_REQ: return &msg->req;
    case S_FIRST: return &msg->first;
    case S_LAST: return &msg->last;
    case S_JOIN: return &msg->join;
    case S_DONE: return &msg->done;
    case S_STATUS: return &msg->status;
    case S_REDELIVERED: return &msg->redelivered;
    default: assert(!"not a uint field"); return NULL;
    }
}

/*  Topic syntax for NAK and DIRECT ('$' topics included: a subscriber may
    repair a mesh event's stream), pattern syntax for HISTORY. */
static bool
s_topic_syntax_ok(s_field_kind_t kind, const char *s, size_t n)
{
    if (kind == S_F_TOPIC) {
        int rc = zmesh__topic_check(s, n);
        return rc == 0 || rc == ZMESH_ERESERVED;
    }
    if (kind == S_F_PATTERN)
        return zmesh__pattern_check(s, n) == 0;
    return true;
}

/*  Pattern syntax for every entry of bp and serves, like queue-group
    patterns: a peer matches its topics against them to decide whom it
    waits for or asks, so a bad one is refused with the message rather
    than matching nothing later. The entries are NUL-free text by now. */
static bool
s_patterns_syntax_ok(char *const *patterns, size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (zmesh__pattern_check(patterns[i], strlen(patterns[i])) != 0)
            return false;
    return true;
}

/* ------------------------------------------------------------------------ */
/*  Control messages: encoding                                              */

/*  EINVAL unless `s` (NULL counts as "" for optional fields) fits `field`
    and is valid UTF-8: the encoder never writes what a decoder rejects. */
static int
s_check_text(const char *s, size_t min, size_t max)
{
    if (!s)
        return ZMESH_EINVAL;
    size_t n = strnlen(s, max + 1);
    if (n < min || n > max || !s_text_ok((const uint8_t *)s, n))
        return ZMESH_EINVAL;
    return 0;
}

/*  EINVAL unless the `count` keys are valid and unique. */
static int
s_check_keys(char *const *keys, size_t count, size_t max)
{
    for (size_t i = 0; i < count; i++) {
        if (s_check_text(keys[i], 1, max) != 0)
            return ZMESH_EINVAL;
        for (size_t j = 0; j < i; j++)
            if (strcmp(keys[j], keys[i]) == 0)
                return ZMESH_EINVAL;
    }
    return 0;
}

static int
s_check_counters(const zmesh__msg_t *msg)
{
    if (msg->counters_count > S_COUNTERS_MAX ||
        (msg->counters_count > 0 && !msg->counters))
        return ZMESH_EINVAL;
    for (size_t i = 0; i < msg->counters_count; i++) {
        const zmesh__counters_t *c = &msg->counters[i];
        if (s_check_text(c->kind, 1, S_KIND_MAX) != 0 ||
            (c->name && s_check_text(c->name, 0, ZMESH_TOPIC_MAX) != 0) ||
            c->count > S_COUNTER_KEYS_MAX ||
            (c->count > 0 && (!c->keys || !c->values)) ||
            s_check_keys(c->keys, c->count, S_KEY_MAX) != 0)
            return ZMESH_EINVAL;
    }
    return 0;
}

/*  Where a list of patterns lives in the message. */
static void
s_list_slot(zmesh__msg_t *msg, s_field_id_t id, char ***list, size_t **count)
{
    switch (id) {
    case S_PUBS: *list = msg->pubs, *count = &msg->pubs_count; return;
    case S_SUBS: *list = msg->subs, *count = &msg->subs_count; return;
    case S_BP: *list = msg->bp_subs, *count = &msg->bp_subs_count; return;
    default: *list = msg->serves, *count = &msg->serves_count; return;
    }
}

static int
s_check_field(const zmesh__msg_t *msg, s_field_id_t id, bool required)
{
    const s_field_t *f = &s_fields[id];
    switch (f->kind) {
    case S_F_STR:
    case S_F_TOPIC:
    case S_F_PATTERN: {
        const char *s = *s_str_slot((zmesh__msg_t *)msg, id);
        if (!s && !required)
            return 0;
        if (s_check_text(s, (size_t)f->min, (size_t)f->max) != 0 ||
            !s_topic_syntax_ok(f->kind, s, strlen(s)))
            return ZMESH_EINVAL;
        return 0;
    }
    case S_F_UINT: {
        uint64_t value = *s_uint_slot((zmesh__msg_t *)msg, id);
        return value < f->min || value > f->max ? ZMESH_EINVAL : 0;
    }
    case S_F_PAYLOAD:
        if (!msg->payload)
            return required || msg->payload_size > 0 ? ZMESH_EINVAL : 0;
        // A bin holds at most 2^32-1 bytes; msgpack-c would cut the length.
        if (msg->payload_size > UINT32_MAX ||
            zmesh__msgpack_check(msg->payload, msg->payload_size) != 0)
            return ZMESH_EINVAL;
        return 0;
    case S_F_FRAMES:
        if (msg->frames_count > f->max ||
            (msg->frames_count > 0 && (!msg->frames || !msg->frame_sizes)))
            return ZMESH_EINVAL;
        for (size_t i = 0; i < msg->frames_count; i++) {
            zmesh__frame_t frame;
            if (msg->frame_sizes[i] > UINT32_MAX ||
                zmesh__frame_decode(msg->frames[i], msg->frame_sizes[i],
                                    &frame) != 0)
                return ZMESH_EINVAL;
        }
        return 0;
    case S_F_COUNTERS:
        if (!msg->counters)
            return msg->counters_count > 0 ? ZMESH_EINVAL : 0;
        return s_check_counters(msg);
    case S_F_PATTERNS: {
        char **list;
        size_t *slot;
        s_list_slot((zmesh__msg_t *)msg, id, &list, &slot);
        size_t count = *slot;
        if (count > f->max || (count > 0 && !list))
            return ZMESH_EINVAL;
        for (size_t i = 0; i < count; i++)
            if (s_check_text(list[i], 1, ZMESH_TOPIC_MAX) != 0)
                return ZMESH_EINVAL;
        // The decoder checks the syntax of bp and serves, so the encoder
        // must.
        if ((id == S_BP || id == S_SERVES) &&
            !s_patterns_syntax_ok(list, count))
            return ZMESH_EINVAL;
        return 0;
    }
    case S_F_GROUPS:
        if (msg->groups_count > f->max ||
            (msg->groups_count > 0 &&
             (!msg->group_patterns || !msg->group_names)))
            return ZMESH_EINVAL;
        // The decoder checks the patterns' syntax, so the encoder must.
        for (size_t i = 0; i < msg->groups_count; i++)
            if (s_check_text(msg->group_patterns[i], 1, ZMESH_TOPIC_MAX) != 0 ||
                zmesh__pattern_check(msg->group_patterns[i],
                                     strlen(msg->group_patterns[i])) != 0 ||
                s_check_text(msg->group_names[i], 1, ZMESH_NAME_MAX) != 0)
                return ZMESH_EINVAL;
        return 0;
    case S_F_HEADERS:
        if (msg->headers_count > f->max ||
            (msg->headers_count > 0 && !msg->headers))
            return ZMESH_EINVAL;
        for (size_t i = 0; i < msg->headers_count; i++) {
            const zmesh__header_t *h = &msg->headers[i];
            if (s_check_text(h->key, 1, ZMESH_HEADER_KEY_MAX) != 0 ||
                s_check_text(h->value, 0, ZMESH_HEADER_VALUE_MAX) != 0)
                return ZMESH_EINVAL;
            for (size_t j = 0; j < i; j++)
                if (strcmp(msg->headers[j].key, h->key) == 0)
                    return ZMESH_EINVAL;
        }
        return 0;
    case S_F_GOSSIP:
        if (msg->peers_count > f->max || (msg->peers_count > 0 && !msg->peers))
            return ZMESH_EINVAL;
        for (size_t i = 0; i < msg->peers_count; i++)
            if (s_check_text(msg->peers[i].endpoint, 1, S_TEXT_MAX) != 0)
                return ZMESH_EINVAL;
        return 0;
    }
    return ZMESH_EINVAL;
}

/*  The msgpack_pack_* calls return 0 or -1 (out of memory), so a chain of
    them joined by || is true when one failed. */
static int
s_pack_text(msgpack_packer *pk, const char *s)
{
    if (!s)
        s = "";
    size_t n = strlen(s);
    return msgpack_pack_str(pk, n) || msgpack_pack_str_body(pk, s, n);
}

static int
s_pack_field(msgpack_packer *pk, const zmesh__msg_t *msg, s_field_id_t id)
{
    const s_field_t *f = &s_fields[id];
    if (s_pack_text(pk, f->key))
        return -1;
    switch (f->kind) {
    case S_F_STR:
    case S_F_TOPIC:
    case S_F_PATTERN:
        return s_pack_text(pk, *s_str_slot((zmesh__msg_t *)msg, id));
    case S_F_UINT:
        return msgpack_pack_uint64(pk, *s_uint_slot((zmesh__msg_t *)msg, id));
    case S_F_PATTERNS: {
        char **list;
        size_t *slot;
        s_list_slot((zmesh__msg_t *)msg, id, &list, &slot);
        size_t count = *slot;
        if (msgpack_pack_array(pk, count))
            return -1;
        for (size_t i = 0; i < count; i++)
            if (s_pack_text(pk, list[i]))
                return -1;
        return 0;
    }
    case S_F_GROUPS:
        if (msgpack_pack_array(pk, msg->groups_count))
            return -1;
        for (size_t i = 0; i < msg->groups_count; i++)
            if (msgpack_pack_array(pk, 2) ||
                s_pack_text(pk, msg->group_patterns[i]) ||
                s_pack_text(pk, msg->group_names[i]))
                return -1;
        return 0;
    case S_F_HEADERS:
        if (msgpack_pack_map(pk, msg->headers_count))
            return -1;
        for (size_t i = 0; i < msg->headers_count; i++)
            if (s_pack_text(pk, msg->headers[i].key) ||
                s_pack_text(pk, msg->headers[i].value))
                return -1;
        return 0;
    case S_F_GOSSIP:
        if (msgpack_pack_array(pk, msg->peers_count))
            return -1;
        for (size_t i = 0; i < msg->peers_count; i++) {
            const zmesh__gossip_t *g = &msg->peers[i];
            if (msgpack_pack_array(pk, 2) ||
                msgpack_pack_bin(pk, ZMESH__ID_SIZE) ||
                msgpack_pack_bin_body(pk, g->id, ZMESH__ID_SIZE) ||
                s_pack_text(pk, g->endpoint))
                return -1;
        }
        return 0;
    case S_F_FRAMES:
        if (msgpack_pack_array(pk, msg->frames_count))
            return -1;
        for (size_t i = 0; i < msg->frames_count; i++)
            if (msgpack_pack_bin(pk, msg->frame_sizes[i]) ||
                msgpack_pack_bin_body(pk, msg->frames[i], msg->frame_sizes[i]))
                return -1;
        return 0;
    case S_F_PAYLOAD:
        return msgpack_pack_bin(pk, msg->payload_size) ||
               msgpack_pack_bin_body(pk, msg->payload, msg->payload_size);
    case S_F_COUNTERS:
        if (msgpack_pack_array(pk, msg->counters_count))
            return -1;
        for (size_t i = 0; i < msg->counters_count; i++) {
            const zmesh__counters_t *c = &msg->counters[i];
            if (msgpack_pack_array(pk, 3) || s_pack_text(pk, c->kind) ||
                s_pack_text(pk, c->name) || msgpack_pack_map(pk, c->count))
                return -1;
            for (size_t j = 0; j < c->count; j++)
                if (s_pack_text(pk, c->keys[j]) ||
                    msgpack_pack_uint64(pk, c->values[j]))
                    return -1;
        }
        return 0;
    }
    return -1;
}

int
zmesh__msg_encode(const zmesh__msg_t *msg, void **out, size_t *size)
{
    if (!msg || !out || !size || !s_type_known(msg->type))
        return ZMESH_EINVAL;
    const s_type_t *type = &s_types[msg->type];
    size_t written = 0;
    for (size_t i = 0; i < type->count; i++) {
        if (s_check_field(msg, type->uses[i].id, type->uses[i].required) != 0)
            return ZMESH_EINVAL;
        written += s_written(msg, type->uses[i].id);
    }
    if (!s_rules_ok(msg))
        return ZMESH_EINVAL;

    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buffer, msgpack_sbuffer_write);
    int failed = msgpack_pack_array(&pk, S_ENVELOPE_V1) ||
                 msgpack_pack_uint32(&pk, ZMESH_PROTOCOL_VERSION) ||
                 msgpack_pack_uint32(&pk, (uint32_t)msg->type) ||
                 msgpack_pack_bin(&pk, ZMESH__ID_SIZE) ||
                 msgpack_pack_bin_body(&pk, msg->sender, ZMESH__ID_SIZE) ||
                 msgpack_pack_map(&pk, written);
    for (size_t i = 0; i < type->count && !failed; i++)
        if (s_written(msg, type->uses[i].id))
            failed = s_pack_field(&pk, msg, type->uses[i].id);
    if (failed) {
        msgpack_sbuffer_destroy(&buffer);
        return ZMESH_ENOMEM;
    }
    // The buffer grows in 8 KiB steps; hand back only what is used.
    size_t used = buffer.size;
    char *data = msgpack_sbuffer_release(&buffer);
    char *fitted = realloc(data, used);
    *out = fitted ? fitted : data;
    *size = used;
    return 0;
}

/* ------------------------------------------------------------------------ */
/*  Control messages: decoding                                              */

/*  Copies a str object of min..max bytes into a new C string at *slot. */
static int
s_copy_text(const msgpack_object *o, size_t min, size_t max, char **slot)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return ZMESH_EPROTO;
    size_t n = o->via.str.size;
    if (n < min || n > max || !s_text_ok((const uint8_t *)o->via.str.ptr, n))
        return ZMESH_EPROTO;
    char *s = malloc(n + 1);
    if (!s)
        return ZMESH_ENOMEM;
    if (n > 0) // msgpack-c leaves ptr NULL for an empty str
        memcpy(s, o->via.str.ptr, n);
    s[n] = '\0';
    *slot = s;
    return 0;
}

/*  The container decoders below publish each count before filling the
    zeroed element, so zmesh__msg_clear frees whatever a failure leaves. */
static int
s_decode_patterns(const msgpack_object *o, char ***list, size_t *count)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > S_PATTERNS_MAX)
        return ZMESH_EPROTO;
    size_t n = o->via.array.size;
    if (n == 0)
        return 0;
    *list = calloc(n, sizeof **list);
    if (!*list)
        return ZMESH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        *count = i + 1;
        int rc =
            s_copy_text(&o->via.array.ptr[i], 1, ZMESH_TOPIC_MAX, &(*list)[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static bool
s_same_str(const msgpack_object *a, const msgpack_object *b)
{
    return a->via.str.size == b->via.str.size &&
           memcmp(a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0;
}

static int
s_decode_headers(const msgpack_object *o, zmesh__msg_t *msg)
{
    if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size > S_HEADERS_MAX)
        return ZMESH_EPROTO;
    size_t n = o->via.map.size;
    if (n == 0)
        return 0;
    msg->headers = calloc(n, sizeof *msg->headers);
    if (!msg->headers)
        return ZMESH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object_kv *kv = &o->via.map.ptr[i];
        msg->headers_count = i + 1;
        int rc = s_copy_text(&kv->key, 1, ZMESH_HEADER_KEY_MAX,
                             &msg->headers[i].key);
        if (rc == 0)
            rc = s_copy_text(&kv->val, 0, ZMESH_HEADER_VALUE_MAX,
                             &msg->headers[i].value);
        if (rc != 0)
            return rc;
        for (size_t j = 0; j < i; j++)
            if (s_same_str(&o->via.map.ptr[j].key, &kv->key))
                return ZMESH_EPROTO;
    }
    return 0;
}

static int
s_decode_gossip(const msgpack_object *o, zmesh__msg_t *msg)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > S_GOSSIP_MAX)
        return ZMESH_EPROTO;
    size_t n = o->via.array.size;
    if (n == 0)
        return 0;
    msg->peers = calloc(n, sizeof *msg->peers);
    if (!msg->peers)
        return ZMESH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *entry = &o->via.array.ptr[i];
        msg->peers_count = i + 1;
        if (entry->type != MSGPACK_OBJECT_ARRAY || entry->via.array.size != 2)
            return ZMESH_EPROTO;
        const msgpack_object *id = &entry->via.array.ptr[0];
        if (id->type != MSGPACK_OBJECT_BIN ||
            id->via.bin.size != ZMESH__ID_SIZE)
            return ZMESH_EPROTO;
        memcpy(msg->peers[i].id, id->via.bin.ptr, ZMESH__ID_SIZE);
        int rc = s_copy_text(&entry->via.array.ptr[1], 1, S_TEXT_MAX,
                             &msg->peers[i].endpoint);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/*  [[pattern, group], ...]: a valid pattern and a group name each. */
static int
s_decode_groups(const msgpack_object *o, zmesh__msg_t *msg)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > S_PATTERNS_MAX)
        return ZMESH_EPROTO;
    size_t n = o->via.array.size;
    if (n == 0)
        return 0;
    msg->group_patterns = calloc(n, sizeof *msg->group_patterns);
    msg->group_names = calloc(n, sizeof *msg->group_names);
    if (!msg->group_patterns || !msg->group_names)
        return ZMESH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *entry = &o->via.array.ptr[i];
        msg->groups_count = i + 1;
        if (entry->type != MSGPACK_OBJECT_ARRAY || entry->via.array.size != 2)
            return ZMESH_EPROTO;
        int rc = s_copy_text(&entry->via.array.ptr[0], 1, ZMESH_TOPIC_MAX,
                             &msg->group_patterns[i]);
        if (rc == 0)
            rc = s_copy_text(&entry->via.array.ptr[1], 1, ZMESH_NAME_MAX,
                             &msg->group_names[i]);
        if (rc != 0)
            return rc;
        if (zmesh__pattern_check(msg->group_patterns[i],
                                 strlen(msg->group_patterns[i])) != 0)
            return ZMESH_EPROTO;
    }
    return 0;
}

/*  A copy of a bin's bytes, or NULL when out of memory. */
static void *
s_copy_bytes(const msgpack_object *o)
{
    void *copy = malloc(o->via.bin.size);
    if (copy)
        memcpy(copy, o->via.bin.ptr, o->via.bin.size);
    return copy;
}

static int
s_decode_payload(const msgpack_object *o, zmesh__msg_t *msg)
{
    if (o->type != MSGPACK_OBJECT_BIN ||
        zmesh__msgpack_check(o->via.bin.ptr, o->via.bin.size) != 0)
        return ZMESH_EPROTO;
    if (!(msg->payload = s_copy_bytes(o)))
        return ZMESH_ENOMEM;
    msg->payload_size = o->via.bin.size;
    return 0;
}

static int
s_decode_frames(const msgpack_object *o, zmesh__msg_t *msg)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > S_FRAMES_MAX)
        return ZMESH_EPROTO;
    size_t n = o->via.array.size;
    if (n == 0)
        return 0;
    msg->frames = calloc(n, sizeof *msg->frames);
    msg->frame_sizes = calloc(n, sizeof *msg->frame_sizes);
    if (!msg->frames || !msg->frame_sizes)
        return ZMESH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object *entry = &o->via.array.ptr[i];
        msg->frames_count = i + 1;
        zmesh__frame_t frame;
        if (entry->type != MSGPACK_OBJECT_BIN ||
            zmesh__frame_decode(entry->via.bin.ptr, entry->via.bin.size,
                                &frame) != 0)
            return ZMESH_EPROTO;
        if (!(msg->frames[i] = s_copy_bytes(entry)))
            return ZMESH_ENOMEM;
        msg->frame_sizes[i] = entry->via.bin.size;
    }
    return 0;
}

/*  One group [kind, name, {key: uint}] of a STATS answer. */
static int
s_decode_group(const msgpack_object *o, zmesh__counters_t *group)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size != 3)
        return ZMESH_EPROTO;
    const msgpack_object *part = o->via.array.ptr;
    int rc = s_copy_text(&part[0], 1, S_KIND_MAX, &group->kind);
    if (rc == 0)
        rc = s_copy_text(&part[1], 0, ZMESH_TOPIC_MAX, &group->name);
    if (rc != 0)
        return rc;
    const msgpack_object *map = &part[2];
    if (map->type != MSGPACK_OBJECT_MAP ||
        map->via.map.size > S_COUNTER_KEYS_MAX)
        return ZMESH_EPROTO;
    size_t n = map->via.map.size;
    if (n == 0)
        return 0;
    group->keys = calloc(n, sizeof *group->keys);
    group->values = calloc(n, sizeof *group->values);
    if (!group->keys || !group->values)
        return ZMESH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const msgpack_object_kv *kv = &map->via.map.ptr[i];
        group->count = i + 1;
        rc = s_copy_text(&kv->key, 1, S_KEY_MAX, &group->keys[i]);
        if (rc != 0)
            return rc;
        if (kv->val.type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            return ZMESH_EPROTO;
        group->values[i] = kv->val.via.u64;
        for (size_t j = 0; j < i; j++)
            if (s_same_str(&map->via.map.ptr[j].key, &kv->key))
                return ZMESH_EPROTO;
    }
    return 0;
}

static int
s_decode_counters(const msgpack_object *o, zmesh__msg_t *msg)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size > S_COUNTERS_MAX)
        return ZMESH_EPROTO;
    size_t n = o->via.array.size;
    // Never NULL once decoded, even for no groups: NULL is the question.
    msg->counters = calloc(n > 0 ? n : 1, sizeof *msg->counters);
    if (!msg->counters)
        return ZMESH_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        msg->counters_count = i + 1;
        int rc = s_decode_group(&o->via.array.ptr[i], &msg->counters[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

/*  Unpacks the value of a known field with msgpack-c, once our reader has
    seen that its outer type and count fit the field and that it is
    well-formed and no deeper than the field's shape: msgpack-c then never
    allocates for counts the input cannot hold, nor meets its own depth
    limit. */
static int
s_unpack_field(s_reader_t *r, const s_field_t *f, msgpack_zone *zone,
               msgpack_object *obj)
{
    s_reader_t peek = *r;
    s_item_t it;
    if (!s_read(&peek, &it))
        return ZMESH_EPROTO;
    int depth = 0;
    switch (f->kind) {
    case S_F_STR:
    case S_F_TOPIC:
    case S_F_PATTERN:
        if (it.kind != S_STR || it.value < f->min || it.value > f->max)
            return ZMESH_EPROTO;
        break;
    case S_F_UINT:
        if (it.kind != S_UINT || it.value < f->min || it.value > f->max)
            return ZMESH_EPROTO;
        break;
    case S_F_PAYLOAD:
        if (it.kind != S_BIN)
            return ZMESH_EPROTO;
        break;
    case S_F_PATTERNS:
    case S_F_GOSSIP:
    case S_F_GROUPS:
    case S_F_FRAMES:
    case S_F_COUNTERS:
        if (it.kind != S_ARRAY || it.value > f->max)
            return ZMESH_EPROTO;
        // [[kind, name, {key: value}]] is three deep.
        depth = f->kind == S_F_COUNTERS                          ? 3
                : f->kind == S_F_GOSSIP || f->kind == S_F_GROUPS ? 2
                                                                 : 1;
        break;
    case S_F_HEADERS:
        if (it.kind != S_MAP || it.value > f->max)
            return ZMESH_EPROTO;
        depth = 1;
        break;
    }
    const uint8_t *start = r->p;
    if (!s_skip(r, depth))
        return ZMESH_EPROTO;
    size_t offset = 0;
    msgpack_unpack_return rc = msgpack_unpack(
        (const char *)start, (size_t)(r->p - start), &offset, zone, obj);
    if (rc == MSGPACK_UNPACK_SUCCESS)
        return 0;
    // Our reader accepted these bytes, so a failure here is memory.
    return rc == MSGPACK_UNPACK_NOMEM_ERROR ? ZMESH_ENOMEM : ZMESH_EPROTO;
}

static int
s_decode_field(zmesh__msg_t *msg, s_field_id_t id, const msgpack_object *o)
{
    const s_field_t *f = &s_fields[id];
    switch (f->kind) {
    case S_F_STR:
    case S_F_TOPIC:
    case S_F_PATTERN: {
        char **slot = s_str_slot(msg, id);
        int rc = s_copy_text(o, (size_t)f->min, (size_t)f->max, slot);
        if (rc == 0 && !s_topic_syntax_ok(f->kind, *slot, o->via.str.size))
            rc = ZMESH_EPROTO;
        return rc;
    }
    case S_F_UINT:
        if (o->type != MSGPACK_OBJECT_POSITIVE_INTEGER || o->via.u64 < f->min ||
            o->via.u64 > f->max)
            return ZMESH_EPROTO;
        *s_uint_slot(msg, id) = o->via.u64;
        return 0;
    case S_F_PAYLOAD: return s_decode_payload(o, msg);
    case S_F_FRAMES: return s_decode_frames(o, msg);
    case S_F_COUNTERS: return s_decode_counters(o, msg);
    case S_F_PATTERNS: {
        char ***list = id == S_PUBS   ? &msg->pubs
                       : id == S_SUBS ? &msg->subs
                       : id == S_BP   ? &msg->bp_subs
                                      : &msg->serves;
        size_t *count = id == S_PUBS   ? &msg->pubs_count
                        : id == S_SUBS ? &msg->subs_count
                        : id == S_BP   ? &msg->bp_subs_count
                                       : &msg->serves_count;
        int rc = s_decode_patterns(o, list, count);
        if (rc == 0 && (id == S_BP || id == S_SERVES) &&
            !s_patterns_syntax_ok(*list, *count))
            rc = ZMESH_EPROTO;
        return rc;
    }
    case S_F_HEADERS: return s_decode_headers(o, msg);
    case S_F_GOSSIP: return s_decode_gossip(o, msg);
    case S_F_GROUPS: return s_decode_groups(o, msg);
    }
    return ZMESH_EPROTO;
}

/*  The index in type->uses of the body key `key`, or -1 when it is not
    one of this type's keys (then it is skipped like any unknown key). */
static int
s_find_use(const s_type_t *type, const s_item_t *key)
{
    for (size_t i = 0; i < type->count; i++) {
        const char *name = s_fields[type->uses[i].id].key;
        if (strlen(name) == key->value &&
            memcmp(name, key->bytes, key->value) == 0)
            return (int)i;
    }
    return -1;
}

static int
s_decode_body(s_reader_t *r, zmesh__msg_t *msg, msgpack_zone *zone)
{
    const s_type_t *type = &s_types[msg->type];
    s_item_t body;
    if (!s_read(r, &body) || body.kind != S_MAP || body.value > S_BODY_MAX)
        return ZMESH_EPROTO;
    s_item_t keys[S_BODY_MAX];
    bool seen[S_USES_MAX] = {false};
    assert(type->count <= S_USES_MAX);
    for (size_t i = 0; i < body.value; i++) {
        s_item_t *key = &keys[i];
        if (!s_read(r, key) || key->kind != S_STR || key->value < 1 ||
            key->value > S_KEY_MAX || !s_text_ok(key->bytes, key->value))
            return ZMESH_EPROTO;
        // At most 64 keys of at most 64 bytes: comparing them all is cheap.
        for (size_t j = 0; j < i; j++)
            if (keys[j].value == key->value &&
                memcmp(keys[j].bytes, key->bytes, key->value) == 0)
                return ZMESH_EPROTO;
        int use = s_find_use(type, key);
        if (use < 0) {
            if (!s_skip(r, S_DEPTH_MAX))
                return ZMESH_EPROTO;
            continue;
        }
        s_field_id_t id = type->uses[use].id;
        msgpack_object value;
        int rc = s_unpack_field(r, &s_fields[id], zone, &value);
        if (rc == 0)
            rc = s_decode_field(msg, id, &value);
        if (rc != 0)
            return rc;
        seen[use] = true;
        msgpack_zone_clear(zone);
    }
    for (size_t i = 0; i < type->count; i++)
        if (type->uses[i].required && !seen[i])
            return ZMESH_EPROTO;
    if (!s_rules_ok(msg))
        return ZMESH_EPROTO;
    if (msg->type == ZMESH__MSG_HELLO) {
        // Absent optional strings read as "", so users need no NULL checks.
        if (!msg->host && !(msg->host = calloc(1, 1)))
            return ZMESH_ENOMEM;
        if (!msg->version_text && !(msg->version_text = calloc(1, 1)))
            return ZMESH_ENOMEM;
    }
    return 0;
}

int
zmesh__msg_decode(const void *data, size_t size, zmesh__msg_t *msg)
{
    assert(msg);
    memset(msg, 0, sizeof *msg);
    if (!data)
        return ZMESH_EPROTO;
    s_reader_t r = {data, (const uint8_t *)data + size};
    s_item_t envelope, version, type, sender;
    // The first three elements are the same in every protocol version
    // (proto/wire.md#versions), so any version can be reported.
    if (!s_read(&r, &envelope) || envelope.kind != S_ARRAY ||
        envelope.value < S_ENVELOPE_MIN || !s_read(&r, &version) ||
        version.kind != S_UINT || version.value > UINT32_MAX ||
        !s_read(&r, &type) || type.kind != S_UINT || !s_read(&r, &sender) ||
        sender.kind != S_BIN || sender.value != ZMESH__ID_SIZE)
        return ZMESH_EPROTO;
    if (version.value != ZMESH_PROTOCOL_VERSION) {
        msg->version = (uint32_t)version.value;
        memcpy(msg->sender, sender.bytes, ZMESH__ID_SIZE);
        return ZMESH__EVERSION;
    }
    if (envelope.value != S_ENVELOPE_V1 || !s_type_known(type.value))
        return ZMESH_EPROTO;
    msg->version = (uint32_t)version.value;
    msg->type = (zmesh__msg_type_t)type.value;
    memcpy(msg->sender, sender.bytes, ZMESH__ID_SIZE);

    msgpack_zone zone;
    if (!msgpack_zone_init(&zone, 1024))
        return ZMESH_ENOMEM;
    int rc = s_decode_body(&r, msg, &zone);
    msgpack_zone_destroy(&zone);
    if (rc == 0 && r.p != r.end)
        rc = ZMESH_EPROTO; // trailing bytes
    if (rc != 0)
        zmesh__msg_clear(msg);
    return rc;
}

void
zmesh__msg_clear(zmesh__msg_t *msg)
{
    if (!msg)
        return;
    free(msg->name);
    free(msg->mesh);
    free(msg->endpoint);
    free(msg->data_endpoint);
    free(msg->host);
    free(msg->version_text);
    for (size_t i = 0; i < msg->headers_count; i++) {
        free(msg->headers[i].key);
        free(msg->headers[i].value);
    }
    free(msg->headers);
    for (size_t i = 0; i < msg->pubs_count; i++)
        free(msg->pubs[i]);
    free(msg->pubs);
    for (size_t i = 0; i < msg->subs_count; i++)
        free(msg->subs[i]);
    free(msg->subs);
    for (size_t i = 0; i < msg->bp_subs_count; i++)
        free(msg->bp_subs[i]);
    free(msg->bp_subs);
    for (size_t i = 0; i < msg->serves_count; i++)
        free(msg->serves[i]);
    free(msg->serves);
    for (size_t i = 0; i < msg->peers_count; i++)
        free(msg->peers[i].endpoint);
    free(msg->peers);
    free(msg->topic);
    for (size_t i = 0; i < msg->frames_count; i++)
        free(msg->frames[i]);
    free(msg->frames);
    free(msg->frame_sizes);
    free(msg->pattern);
    free(msg->group);
    for (size_t i = 0; i < msg->groups_count; i++) {
        free(msg->group_patterns ? msg->group_patterns[i] : NULL);
        free(msg->group_names ? msg->group_names[i] : NULL);
    }
    free(msg->group_patterns);
    free(msg->group_names);
    free(msg->payload);
    for (size_t i = 0; i < msg->counters_count; i++) {
        zmesh__counters_t *group = &msg->counters[i];
        free(group->kind);
        free(group->name);
        for (size_t j = 0; j < group->count; j++)
            free(group->keys[j]);
        free(group->keys);
        free(group->values);
    }
    free(msg->counters);
    memset(msg, 0, sizeof *msg);
}

/* ------------------------------------------------------------------------ */
/*  Event frames: topic, NUL, meta, payload (proto/wire.md#event-frame)     */

/*  Bytes of `value` in its smallest msgpack form. */
static inline size_t
s_uint_size(uint64_t value)
{
    return value <= 0x7f         ? 1
           : value <= UINT8_MAX  ? 2
           : value <= UINT16_MAX ? 3
           : value <= UINT32_MAX ? 5
                                 : 9;
}

/*  Values >= 0 as uint (as msgpack-c's pack_int64 does), the rest in the
    smallest signed form. */
static inline size_t
s_int_size(int64_t value)
{
    if (value >= 0)
        return s_uint_size((uint64_t)value);
    return value >= -32         ? 1
           : value >= INT8_MIN  ? 2
           : value >= INT16_MIN ? 3
           : value >= INT32_MIN ? 5
                                : 9;
}

/*  Writes an integer in the `size` bytes s_uint_size or s_int_size chose,
    each width with constant shifts (a byte swap and a store). */
static inline void
s_put_int(uint8_t *p, uint64_t bits, bool is_signed, size_t size)
{
    switch (size) {
    case 1: p[0] = (uint8_t)bits; return; // positive or negative fixint
    case 2:
        p[0] = is_signed ? 0xd0 : 0xcc;
        p[1] = (uint8_t)bits;
        return;
    case 3:
        p[0] = is_signed ? 0xd1 : 0xcd;
        p[1] = (uint8_t)(bits >> 8);
        p[2] = (uint8_t)bits;
        return;
    case 5:
        p[0] = is_signed ? 0xd2 : 0xce;
        p[1] = (uint8_t)(bits >> 24);
        p[2] = (uint8_t)(bits >> 16);
        p[3] = (uint8_t)(bits >> 8);
        p[4] = (uint8_t)bits;
        return;
    default:
        p[0] = is_signed ? 0xd3 : 0xcf;
        p[1] = (uint8_t)(bits >> 56);
        p[2] = (uint8_t)(bits >> 48);
        p[3] = (uint8_t)(bits >> 40);
        p[4] = (uint8_t)(bits >> 32);
        p[5] = (uint8_t)(bits >> 24);
        p[6] = (uint8_t)(bits >> 16);
        p[7] = (uint8_t)(bits >> 8);
        p[8] = (uint8_t)bits;
        return;
    }
}

size_t
zmesh__frame_size(size_t topic_size, uint64_t sequence, int64_t timestamp_us,
                  size_t payload_size)
{
    return topic_size + 1 + 3 + ZMESH__ID_SIZE + s_uint_size(sequence) +
           s_int_size(timestamp_us) + payload_size;
}

size_t
zmesh__frame_size_flags(size_t topic_size, uint64_t sequence,
                        int64_t timestamp_us, unsigned flags,
                        size_t payload_size)
{
    // The flags as a positive fixint, after a fixarray one longer.
    return zmesh__frame_size(topic_size, sequence, timestamp_us, payload_size) +
           (flags != 0);
}

int
zmesh__frame_encode(const char *topic, size_t topic_size,
                    const uint8_t publisher[ZMESH__ID_SIZE], uint64_t sequence,
                    int64_t timestamp_us, const void *payload,
                    size_t payload_size, void *out, size_t cap)
{
    return zmesh__frame_encode_flags(topic, topic_size, publisher, sequence,
                                     timestamp_us, 0, payload, payload_size,
                                     out, cap);
}

int
zmesh__frame_encode_flags(const char *topic, size_t topic_size,
                          const uint8_t publisher[ZMESH__ID_SIZE],
                          uint64_t sequence, int64_t timestamp_us,
                          unsigned flags, const void *payload,
                          size_t payload_size, void *out, size_t cap)
{
    assert(topic && topic_size >= 1 && topic_size <= ZMESH_TOPIC_MAX);
    assert(publisher && sequence >= 1 && (payload || payload_size == 0));
    assert(out || cap == 0);
    assert(flags <= 0x7f);
    size_t seq_size = s_uint_size(sequence);
    size_t ts_size = s_int_size(timestamp_us);
    // topic, NUL, fixarray 3 (4 with flags), bin8 16 + id, sequence,
    // timestamp, and the flags as a positive fixint.
    size_t head =
        topic_size + 1 + 3 + ZMESH__ID_SIZE + seq_size + ts_size + (flags != 0);
    if (payload_size > cap || head > cap - payload_size ||
        head + payload_size > INT_MAX)
        return ZMESH_ETOOBIG;
    uint8_t *p = out;
    memcpy(p, topic, topic_size);
    p += topic_size;
    *p++ = 0;
    *p++ = 0x90 | (S_META_MIN + (flags != 0));
    *p++ = 0xc4;
    *p++ = ZMESH__ID_SIZE;
    memcpy(p, publisher, ZMESH__ID_SIZE);
    p += ZMESH__ID_SIZE;
    s_put_int(p, sequence, false, seq_size);
    p += seq_size;
    s_put_int(p, (uint64_t)timestamp_us, timestamp_us < 0, ts_size);
    p += ts_size;
    if (flags != 0)
        *p++ = (uint8_t)flags;
    if (payload_size > 0)
        memcpy(p, payload, payload_size);
    return (int)(head + payload_size);
}

/*  Reads a frame's topic and meta, strictly (zmesh__frame_decode), into
    *frame, leaving *r at the first payload and *count at the number of
    events it holds when it is a batch (meta element 4, when the batch flag
    is set: wire.md#batch-frame), 0 when it is a single event's frame. */
static int
s_frame_head(const void *data, size_t size, zmesh__frame_t *frame,
             s_reader_t *r_out, uint64_t *count)
{
    if (!data)
        return ZMESH_EPROTO;
    const uint8_t *base = data;
    // The topic's NUL must come within ZMESH_TOPIC_MAX + 1 bytes; looking
    // no further keeps a NUL-less megabyte from costing a full scan.
    size_t scan = size < ZMESH_TOPIC_MAX + 1 ? size : ZMESH_TOPIC_MAX + 1;
    const uint8_t *nul = memchr(base, 0, scan);
    if (!nul || nul == base)
        return ZMESH_EPROTO;
    s_reader_t r = {nul + 1, base + size};
    s_item_t meta, id, sequence, timestamp;
    const uint8_t *publisher;
    if ((size_t)(r.end - r.p) > 3 + ZMESH__ID_SIZE && r.p[0] == 0x93 &&
        r.p[1] == 0xc4 && r.p[2] == ZMESH__ID_SIZE) {
        // The header zmesh__frame_encode writes, taken in one step; the
        // general path below would read these bytes the same way.
        meta.value = S_META_MIN;
        publisher = r.p + 3;
        r.p += 3 + ZMESH__ID_SIZE;
    } else {
        if (!s_read(&r, &meta) || meta.kind != S_ARRAY ||
            meta.value < S_META_MIN || !s_read(&r, &id) || id.kind != S_BIN ||
            id.value != ZMESH__ID_SIZE)
            return ZMESH_EPROTO;
        publisher = id.bytes;
    }
    if (!s_read(&r, &sequence) || sequence.kind != S_UINT ||
        sequence.value == 0)
        return ZMESH_EPROTO;
    if (r.end - r.p >= 9 && r.p[0] == 0xcf) {
        // The timestamp as the encoder writes it (uint64: microseconds
        // since 1970 need more than 32 bits), read without the general
        // reader's dispatch.
        timestamp.kind = S_UINT;
        timestamp.value = s_load_be(r.p + 1, 8);
        r.p += 9;
    } else if (!s_read(&r, &timestamp))
        return ZMESH_EPROTO;
    if (timestamp.kind != S_INT &&
        (timestamp.kind != S_UINT || timestamp.value > INT64_MAX))
        return ZMESH_EPROTO;
    // Element 3, when there, is the flags (wire.md#event-frame); it was
    // reserved before, so one that is no uint counts as no flags.
    unsigned flags = 0;
    uint64_t i = S_META_MIN;
    if (meta.value > i) {
        s_reader_t peek = r;
        s_item_t item;
        if (s_read(&peek, &item) && item.kind == S_UINT)
            flags = (unsigned)(item.value & 0xffffffffu);
    }
    *count = 0;
    // A tail frame stands for no event, so it is never part of a batch.
    if ((flags & ZMESH__FRAME_BATCH) && (flags & ZMESH__FRAME_TAIL))
        return ZMESH_EPROTO;
    if (flags & ZMESH__FRAME_BATCH) {
        // Element 4 is the number of events: a batch without it, or with
        // more than a batch may hold, is malformed rather than guessed at.
        s_item_t item;
        if (meta.value < S_META_MIN + 2 || !s_skip(&r, S_DEPTH_MAX) ||
            !s_read(&r, &item) || item.kind != S_UINT || item.value < 1 ||
            item.value > ZMESH__BATCH_MAX ||
            item.value - 1 > UINT64_MAX - sequence.value)
            return ZMESH_EPROTO;
        *count = item.value;
        i += 2;
    }
    // Later versions may append meta elements (headers); skip them.
    for (; i < meta.value; i++)
        if (!s_skip(&r, S_DEPTH_MAX))
            return ZMESH_EPROTO;
    frame->topic = (const char *)base;
    frame->topic_size = (size_t)(nul - base);
    memcpy(frame->publisher, publisher, ZMESH__ID_SIZE);
    frame->sequence = sequence.value;
    frame->timestamp_us = (int64_t)timestamp.value;
    // Reserved bits are ignored (wire.md#event-frame), and dropped here so
    // that a frame made again from the event (a repair keeps a batched
    // event as a frame of its own) has flags its encoder can write.
    frame->flags = flags & 0x7fu & ~ZMESH__FRAME_BATCH;
    *r_out = r;
    return 0;
}

int
zmesh__frame_decode(const void *data, size_t size, zmesh__frame_t *frame)
{
    assert(frame);
    s_reader_t r;
    uint64_t count;
    int rc = s_frame_head(data, size, frame, &r, &count);
    if (rc != 0)
        return rc;
    size_t payload_size = (size_t)(r.end - r.p);
    // A batch where one event belongs (a REPAIR, a relay record) is as
    // malformed as two payloads would be, even a batch of one; a tail
    // frame, which carries no event, as malformed as none.
    if (count != 0 || (frame->flags & ZMESH__FRAME_TAIL) ||
        zmesh__msgpack_check(r.p, payload_size) != 0)
        return ZMESH_EPROTO;
    frame->payload = r.p;
    frame->payload_size = payload_size;
    return 0;
}

/*  The end of the msgpack object at p (already checked well-formed). */
static const uint8_t *
s_object_end(const uint8_t *p, const uint8_t *end)
{
    s_reader_t r = {p, end};
    // Checked before, so this cannot fail; end it at the frame if it did.
    return s_skip(&r, S_DEPTH_MAX) ? r.p : end;
}

int
zmesh__batch_decode(const void *data, size_t size, zmesh__batch_t *batch)
{
    assert(batch);
    s_reader_t r;
    uint64_t count;
    int rc = s_frame_head(data, size, &batch->frame, &r, &count);
    if (rc != 0)
        return rc;
    if (count == 0) {
        size_t payload_size = (size_t)(r.end - r.p);
        if (zmesh__msgpack_check(r.p, payload_size) != 0)
            return ZMESH_EPROTO;
        batch->frame.payload = r.p;
        batch->frame.payload_size = payload_size;
        batch->next = batch->end = r.end;
        batch->left = 0;
        batch->batched = false;
        return 0;
    }
    // Every payload is checked before the first is handed out: a frame is
    // taken or rejected whole, never in part.
    const uint8_t *first = r.p, *first_end = NULL;
    for (uint64_t k = 0; k < count; k++) {
        if (r.p == r.end || !s_skip(&r, S_DEPTH_MAX))
            return ZMESH_EPROTO;
        if (k == 0)
            first_end = r.p;
    }
    if (r.p != r.end)
        return ZMESH_EPROTO;
    batch->frame.payload = first;
    batch->frame.payload_size = (size_t)(first_end - first);
    batch->next = first_end;
    batch->end = r.end;
    batch->left = (uint32_t)(count - 1);
    batch->batched = true;
    return 0;
}

bool
zmesh__batch_next(zmesh__batch_t *batch)
{
    assert(batch);
    if (batch->left == 0)
        return false;
    const uint8_t *end = s_object_end(batch->next, batch->end);
    batch->frame.payload = batch->next;
    batch->frame.payload_size = (size_t)(end - batch->next);
    batch->frame.sequence++;
    batch->next = end;
    batch->left--;
    return true;
}

size_t
zmesh__batch_head_size(size_t topic_size, uint64_t sequence,
                       int64_t timestamp_us, size_t count)
{
    // Beside a frame's: fixarray 5 rather than 3, the flags (a fixint),
    // and the count.
    return zmesh__frame_size(topic_size, sequence, timestamp_us, 0) + 1 +
           s_uint_size(count);
}

int
zmesh__batch_head_encode(const char *topic, size_t topic_size,
                         const uint8_t publisher[ZMESH__ID_SIZE],
                         uint64_t sequence, int64_t timestamp_us,
                         unsigned flags, size_t count, void *out, size_t cap)
{
    assert(count >= 2 && count <= ZMESH__BATCH_MAX);
    assert(!(flags & ZMESH__FRAME_BATCH) && flags <= 0x7f);
    size_t head =
        zmesh__batch_head_size(topic_size, sequence, timestamp_us, count);
    // The single frame's header with flags, then widened: the array
    // gains two elements (flags are there already only when not 0).
    int n = zmesh__frame_encode_flags(topic, topic_size, publisher, sequence,
                                      timestamp_us, flags | ZMESH__FRAME_BATCH,
                                      NULL, 0, out, cap);
    if (n < 0 || cap - (size_t)n < s_uint_size(count))
        return ZMESH_ETOOBIG;
    uint8_t *p = out;
    p[topic_size + 1] = 0x90 | (S_META_MIN + 2);
    s_put_int(p + n, count, false, s_uint_size(count));
    assert((size_t)n + s_uint_size(count) == head);
    return (int)head;
}

/* ------------------------------------------------------------------------ */
/*  Requests and replies on the data plane                                 */

size_t
zmesh__rr_head_size(uint64_t req, size_t topic_size, uint64_t status)
{
    size_t head = 1 + s_uint_size(req);
    if (topic_size > 0)
        return head + (topic_size < 32 ? 1 : 2) + topic_size;
    return head + s_uint_size(status);
}

size_t
zmesh__rr_head_encode(uint64_t req, const char *topic, size_t topic_size,
                      uint64_t status, uint8_t *out)
{
    assert(req >= 1 && topic_size <= ZMESH_TOPIC_MAX);
    uint8_t *p = out;
    *p++ = 0x93;
    s_put_int(p, req, false, s_uint_size(req));
    p += s_uint_size(req);
    if (topic_size > 0) {
        if (topic_size < 32)
            *p++ = (uint8_t)(0xa0 | topic_size);
        else {
            *p++ = 0xd9;
            *p++ = (uint8_t)topic_size;
        }
        memcpy(p, topic, topic_size);
        p += topic_size;
    } else {
        s_put_int(p, status, false, s_uint_size(status));
        p += s_uint_size(status);
    }
    return (size_t)(p - out);
}

int
zmesh__rr_decode(const void *data, size_t size, bool request, zmesh__rr_t *rr)
{
    assert(rr);
    if (!data)
        return ZMESH_EPROTO;
    s_reader_t r = {data, (const uint8_t *)data + size};
    s_item_t array, req, second;
    if (!s_read(&r, &array) || array.kind != S_ARRAY || array.value != 3 ||
        !s_read(&r, &req) || req.kind != S_UINT || req.value == 0 ||
        !s_read(&r, &second))
        return ZMESH_EPROTO;
    memset(rr, 0, sizeof *rr);
    rr->req = req.value;
    if (request) {
        if (second.kind != S_STR || second.value == 0 ||
            second.value > ZMESH_TOPIC_MAX ||
            memchr(second.bytes, 0, (size_t)second.value))
            return ZMESH_EPROTO;
        rr->topic = (const char *)second.bytes;
        rr->topic_size = (size_t)second.value;
    } else {
        if (second.kind != S_UINT)
            return ZMESH_EPROTO;
        rr->status = second.value;
    }
    rr->payload = r.p;
    rr->payload_size = (size_t)(r.end - r.p);
    return zmesh__msgpack_check(r.p, rr->payload_size) == 0 ? 0 : ZMESH_EPROTO;
}

/* ------------------------------------------------------------------------ */
/*  Agent ids                                                               */

void
zmesh__id_to_hex(const uint8_t id[ZMESH__ID_SIZE], char out[33])
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < ZMESH__ID_SIZE; i++) {
        out[2 * i] = digits[id[i] >> 4];
        out[2 * i + 1] = digits[id[i] & 0x0f];
    }
    out[2 * ZMESH__ID_SIZE] = '\0';
}

static int
s_hex_digit(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
zmesh__id_from_hex(const char *hex, uint8_t id[ZMESH__ID_SIZE])
{
    if (!hex || !id)
        return ZMESH_EINVAL;
    uint8_t parsed[ZMESH__ID_SIZE];
    for (size_t i = 0; i < ZMESH__ID_SIZE; i++) {
        int hi = s_hex_digit(hex[2 * i]);
        if (hi < 0)
            return ZMESH_EINVAL;
        int lo = s_hex_digit(hex[2 * i + 1]);
        if (lo < 0)
            return ZMESH_EINVAL;
        parsed[i] = (uint8_t)(hi << 4 | lo);
    }
    if (hex[2 * ZMESH__ID_SIZE] != '\0')
        return ZMESH_EINVAL;
    memcpy(id, parsed, ZMESH__ID_SIZE);
    return 0;
}
