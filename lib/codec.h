/*  codec.h - every zmesh wire message to and from bytes: control messages
    (msgpack through msgpack-c) and event frames (topic, NUL, msgpack meta,
    msgpack payload). Strict on untrusted input: wrong types, lengths,
    nesting, missing fields or trailing bytes give ZMESH_EPROTO, never a
    crash. Normative spec: proto/wire.md. Talks to msgpack-c, and to topic.c
    for the syntax of the topic of NAK, DIRECT and CREDIT, of HISTORY's
    pattern and of the queue-group, bp and serves patterns of HELLO and
    ADVERTISE (pubs and subs are left to the caller). */
#ifndef ZMESH_CODEC_H_INCLUDED
#define ZMESH_CODEC_H_INCLUDED

#include "zmesh.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZMESH__ID_SIZE 16

/*  Control message types (proto/wire.md#control-messages). */
typedef enum {
    ZMESH__MSG_HELLO = 1,
    ZMESH__MSG_ADVERTISE = 2,
    ZMESH__MSG_PING = 3,
    ZMESH__MSG_PONG = 4,
    ZMESH__MSG_BYE = 5,
    ZMESH__MSG_PEERS = 6,
    ZMESH__MSG_NAK = 7,      /* asks a publisher to send events again */
    ZMESH__MSG_REPAIR = 8,   /* events sent again, or history */
    ZMESH__MSG_HISTORY = 9,  /* asks a publisher for its kept last events */
    ZMESH__MSG_DIRECT = 10,  /* a message or request to one agent */
    ZMESH__MSG_REPLY = 11,   /* the answer to a DIRECT request */
    ZMESH__MSG_STATS = 12,   /* asks for counters, or carries them */
    ZMESH__MSG_DELIVER = 13, /* events for one member of a queue group */
    ZMESH__MSG_ACK = 14,     /* a member took a delivered event */
    ZMESH__MSG_CREDIT = 15   /* a back-pressure subscriber's progress */
} zmesh__msg_type_t;

/*  REPLY status values (proto/wire.md#reply). */
#define ZMESH__REPLY_OK 0
#define ZMESH__REPLY_NO_HANDLER 1 /* nothing at the responder takes it */
#define ZMESH__REPLY_REFUSED 2    /* its queue to the application is full */

typedef struct {
    char *key;
    char *value;
} zmesh__header_t;

typedef struct {
    uint8_t id[ZMESH__ID_SIZE];
    char *endpoint;
} zmesh__gossip_t;

/*  One group of counters in a STATS answer: kind is "agent", "peer" (name
    is the peer's id in hex) or "topic" (name is the topic). */
typedef struct {
    char *kind;
    char *name;
    char **keys;
    uint64_t *values;
    size_t count;
} zmesh__counters_t;

/*  A decoded control message. Which fields are meaningful depends on type;
    the rest are zero/NULL. After zmesh__msg_decode all strings are
    NUL-terminated heap copies owned by the message: free them with
    zmesh__msg_clear. For encoding the caller fills the fields and keeps
    ownership. */
typedef struct {
    zmesh__msg_type_t type;
    uint32_t version;               /* protocol version of the sender */
    uint8_t sender[ZMESH__ID_SIZE]; /* the sending agent's id */
    /* HELLO */
    char *name;          /* service name */
    char *mesh;          /* mesh name */
    char *endpoint;      /* the sender's ROUTER endpoint */
    char *data_endpoint; /* the sender's PUB endpoint */
    char *host;          /* host name */
    char *version_text;  /* library version, e.g. "0.1.0" */
    uint64_t pid;
    zmesh__header_t *headers;
    size_t headers_count;
    /* HELLO and ADVERTISE */
    char **pubs; /* patterns published */
    size_t pubs_count;
    char **subs; /* patterns wanted */
    size_t subs_count;
    uint64_t subs_generation; /* grows each time subs change */
    /* HELLO and ADVERTISE: queue-group subscriptions, pairs of a pattern
       and a group name */
    char **group_patterns;
    char **group_names;
    size_t groups_count;
    /* HELLO and ADVERTISE: the wanted patterns (also in subs) whose
       publishers should wait for this subscriber rather than drop */
    char **bp_subs;
    size_t bp_subs_count;
    /* HELLO and ADVERTISE: the patterns the sender answers requests for */
    char **serves;
    size_t serves_count;
    uint64_t ask;   /* HELLO: 1 asks the receiver to answer with its HELLO */
    uint64_t batch; /* HELLO: the largest batch frame the sender reads
                       (proto/wire.md#batch-frame), 0: none; written only
                       when not 0 */
    uint64_t tail;  /* HELLO: not 0, the sender reads tail frames
                       (proto/wire.md#tail-frame); written only then */
    /* PEERS */
    zmesh__gossip_t *peers;
    size_t peers_count;
    /* NAK, REPAIR, HISTORY, DIRECT, REPLY, STATS: the requester's number
       for the request, echoed in the answer (0 in a DIRECT that wants no
       reply) */
    uint64_t req;
    /* NAK: the missing range of `topic`; join = 1 asks only for events
       published after the sender's data subscription reached us */
    char *topic; /* NAK, DIRECT */
    uint64_t first;
    uint64_t last;
    uint64_t join;
    /* REPAIR: event frames, each exactly as on the data plane; done = 1 on
       the last REPAIR answering a request, and there join = 1 when the
       answer to a join NAK is vouched for (proto/wire.md#repair). Each
       frame is checked with zmesh__frame_decode both ways (not its
       publisher: the caller's) */
    void **frames;
    size_t *frame_sizes;
    size_t frames_count;
    uint64_t done;
    /* HISTORY */
    char *pattern;
    /* DELIVER (with req and frames): the queue group it is for, and 1 when
       it went to a member before that left without acknowledging it */
    char *group;
    uint64_t redelivered;
    /* DIRECT and REPLY: one msgpack object. NULL (size 0) is an absent
       payload: allowed, and then not written, only in a REPLY whose status
       is not ZMESH__REPLY_OK */
    void *payload;
    size_t payload_size;
    /* REPLY */
    uint64_t status;
    /* STATS: absent in the question, present in the answer. NULL means
       absent whatever the count: an answer with no groups has a non-NULL
       counters and count 0 (decode gives one; to encode one, point
       counters at any zmesh__counters_t). A NULL name is written as "" */
    zmesh__counters_t *counters;
    size_t counters_count;
} zmesh__msg_t;

/*  Encodes `msg` (type, sender and the type's fields; version is always
    ZMESH_PROTOCOL_VERSION). On success *out is malloc'ed (caller frees) and
    holds *size bytes. Errors: ZMESH_EINVAL (missing required field),
    ZMESH_ENOMEM. */
int zmesh__msg_encode(const zmesh__msg_t *msg, void **out, size_t *size);

/*  Decodes one control message. On success *msg is filled (release it with
    zmesh__msg_clear). On error *msg is left cleared and nothing leaks.
    Errors: ZMESH_EPROTO (malformed, wrong types, unknown type, limits
    exceeded: strings over their ZMESH_*_MAX, more than 1024 entries in
    pubs, subs, groups, bp or serves, more than 32 headers, 1024 gossip
    entries, 4096 frames or 1024 counter groups of 64 counters; a bad
    NAK/DIRECT/CREDIT topic, a bad HISTORY pattern or queue-group, bp or
    serves pattern, a payload or frame that is not well-formed, and the
    other rules of wire.md), ZMESH_ENOMEM. A message whose version is not
    ZMESH_PROTOCOL_VERSION decodes its header only and returns
    ZMESH__EVERSION with msg->version and msg->sender set. */
#define ZMESH__EVERSION 1
int zmesh__msg_decode(const void *data, size_t size, zmesh__msg_t *msg);

/*  Frees what zmesh__msg_decode allocated and zeroes *msg. Safe on a zeroed
    message. */
void zmesh__msg_clear(zmesh__msg_t *msg);

/*  An event frame, decoded in place: pointers point into the frame bytes. */
typedef struct {
    const char *topic; /* NUL-terminated inside the frame */
    size_t topic_size;
    uint8_t publisher[ZMESH__ID_SIZE];
    uint64_t sequence;
    int64_t timestamp_us;
    unsigned flags; /* meta element 3, 0 when absent (ZMESH__FRAME_*); of
                       the reserved bits, only 0x04..0x40 are kept */
    const void *payload;
    size_t payload_size;
} zmesh__frame_t;

/*  Frame flags (proto/wire.md#event-frame, meta element 3). */
#define ZMESH__FRAME_CONFIRM 1u /* a relay is to confirm it stored it */
#define ZMESH__FRAME_BATCH 2u   /* several events (wire.md#batch-frame) */
#define ZMESH__FRAME_TAIL 4u    /* where a stream ends (wire.md#tail-frame) */

/*  A tail frame's payload: nil. */
#define ZMESH__TAIL_PAYLOAD "\xc0"

/*  The most events one batch frame may hold. */
#define ZMESH__BATCH_MAX 1024

/*  The largest number of bytes an encoded frame's header (topic, NUL and
    meta) can take, so callers can size buffers once. */
#define ZMESH__FRAME_OVERHEAD (ZMESH_TOPIC_MAX + 1 + 64)

/*  The exact size of the frame zmesh__frame_encode writes for these values,
    so the caller can encode straight into a buffer of that size. */
size_t zmesh__frame_size(size_t topic_size, uint64_t sequence,
                         int64_t timestamp_us, size_t payload_size);

/*  Writes the frame for (topic, publisher, sequence, timestamp, payload)
    into `out` (capacity `cap`) and returns its size, or ZMESH_ETOOBIG when
    it does not fit. Does not validate the topic or payload; the caller
    has. Does not allocate. */
int zmesh__frame_encode(const char *topic, size_t topic_size,
                        const uint8_t publisher[ZMESH__ID_SIZE],
                        uint64_t sequence, int64_t timestamp_us,
                        const void *payload, size_t payload_size, void *out,
                        size_t cap);

/*  Decodes a frame in place, strictly: a topic of 1..ZMESH_TOPIC_MAX bytes
    ended by NUL, a meta array of at least 3 elements (bin 16, uint, int;
    further elements are skipped if well-formed, for forward
    compatibility), then exactly one well-formed msgpack object as payload
    and nothing after it. Topic syntax is not checked here. Does not
    allocate. A batch frame and a tail frame are malformed here (they are
    no one event). Errors: ZMESH_EPROTO. */
int zmesh__frame_decode(const void *data, size_t size, zmesh__frame_t *frame);

/*  zmesh__frame_size for the frame zmesh__frame_encode_flags writes with
    `flags`: one byte more when they are not 0. */
size_t zmesh__frame_size_flags(size_t topic_size, uint64_t sequence,
                               int64_t timestamp_us, unsigned flags,
                               size_t payload_size);

/*  zmesh__frame_encode with meta element 3, `flags` (0..0x7f), written
    only when not 0: a frame without flags is byte for byte the same. */
int zmesh__frame_encode_flags(const char *topic, size_t topic_size,
                              const uint8_t publisher[ZMESH__ID_SIZE],
                              uint64_t sequence, int64_t timestamp_us,
                              unsigned flags, const void *payload,
                              size_t payload_size, void *out, size_t cap);

/*  A batch frame (proto/wire.md#batch-frame) being read: `frame` is the
    current event, with the frame's topic, publisher, timestamp and flags
    (without ZMESH__FRAME_BATCH), its own sequence and payload. */
typedef struct {
    zmesh__frame_t frame;
    const uint8_t *next; /* the next event's payload */
    const uint8_t *end;  /* of the frame */
    uint32_t left;       /* events after the current one */
    bool batched;        /* a batch frame (even of one event) */
} zmesh__batch_t;

/*  Decodes a data-plane frame in place, a single event's or a batch, as
    strictly as zmesh__frame_decode and whole: a batch is rejected unless
    its count is 1..ZMESH__BATCH_MAX and it holds exactly that many
    well-formed payloads. batch->frame is then the first event. A tail
    frame is read as a frame of one (ZMESH__FRAME_TAIL in frame.flags);
    one that is also a batch is malformed. Does not allocate. Errors:
    ZMESH_EPROTO. */
int zmesh__batch_decode(const void *data, size_t size, zmesh__batch_t *batch);

/*  Moves batch->frame to the next event of the frame (sequence + 1, the
    next payload); false when there is none. */
bool zmesh__batch_next(zmesh__batch_t *batch);

/*  The size of a batch frame's header (topic, NUL, meta with the flags
    and `count`); the payloads follow it, back to back. */
size_t zmesh__batch_head_size(size_t topic_size, uint64_t sequence,
                              int64_t timestamp_us, size_t count);

/*  Writes a batch frame's header for `count` (2..ZMESH__BATCH_MAX) events,
    the first with `sequence`, all stamped `timestamp_us`, with `flags`
    (0..0x7f, ZMESH__FRAME_BATCH is added) into `out` and returns its size,
    or ZMESH_ETOOBIG when `cap` is too small. */
int zmesh__batch_head_encode(const char *topic, size_t topic_size,
                             const uint8_t publisher[ZMESH__ID_SIZE],
                             uint64_t sequence, int64_t timestamp_us,
                             unsigned flags, size_t count, void *out,
                             size_t cap);

/*  A request or a reply on the data plane (proto/wire.md#requests-on-the-
    data-plane): the payload of an event on "$mesh.request.<responder id>"
    is [req, topic, payload], on "$mesh.reply.<requester id>" [req,
    status, payload]; `payload` is the application's msgpack object (nil
    in a reply whose status is not ZMESH__REPLY_OK). */
typedef struct {
    uint64_t req;      /* >= 1 */
    const char *topic; /* a request's, not NUL-terminated; 1..255 bytes */
    size_t topic_size;
    uint64_t status; /* a reply's: ZMESH__REPLY_* */
    const void *payload;
    size_t payload_size;
} zmesh__rr_t;

/*  The size of the part before the payload, and writing it into `out`
    (that many bytes): a request when topic_size > 0, else a reply with
    `status`. The payload is appended by the caller. */
size_t zmesh__rr_head_size(uint64_t req, size_t topic_size, uint64_t status);
size_t zmesh__rr_head_encode(uint64_t req, const char *topic, size_t topic_size,
                             uint64_t status, uint8_t *out);

/*  Decodes a request (`request`) or a reply in place, strictly: an array
    of exactly 3, a uint req >= 1, a str of 1..255 bytes without NUL (the
    topic's syntax is the caller's to check) or a uint status, then
    exactly one well-formed msgpack object. Errors: ZMESH_EPROTO. */
int zmesh__rr_decode(const void *data, size_t size, bool request,
                     zmesh__rr_t *rr);

/*  Returns 0 when `data` is exactly one well-formed msgpack object (nesting
    at most 64 deep, every length inside the buffer, no trailing bytes),
    else ZMESH_EPAYLOAD. Does not allocate. */
int zmesh__msgpack_check(const void *data, size_t size);

/*  Hex rendering of an id: 32 lowercase digits and a NUL. */
void zmesh__id_to_hex(const uint8_t id[ZMESH__ID_SIZE], char out[33]);

/*  Parses 32 hex digits (either case) into an id. ZMESH_EINVAL if not. */
int zmesh__id_from_hex(const char *hex, uint8_t id[ZMESH__ID_SIZE]);

#endif
