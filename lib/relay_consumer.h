/*  relay_consumer.h - a relay's durable consumers
    (proto/relay.md#durable-consumers): per consumer the filter, the
    settings, the ack floor and what is settled above it, kept in the
    stream's consumer files (store.h); the "$relay.consume", "$relay.next"
    and "$relay.ack" requests decoded and answered; pattern coverage, to
    pick the stream for a filter. relay.c dispatches requests here and
    calls the tick; this module never touches the agent or the network.

    Threads: one thread at a time, as the relay. Errors follow zmesh.h. */
#ifndef ZMESH_RELAY_CONSUMER_H_INCLUDED
#define ZMESH_RELAY_CONSUMER_H_INCLUDED

#include "store.h"
#include "zmesh.h"

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZMESH__RELAY_CONSUME_TOPIC "$relay.consume"
#define ZMESH__RELAY_NEXT_TOPIC "$relay.next"
#define ZMESH__RELAY_ACK_TOPIC "$relay.ack"

/*  Limits of proto/relay.md#durable-consumers. */
#define ZMESH__RELAY_CONSUMERS_MAX 256 /* per stream */
#define ZMESH__RELAY_ACK_ITEMS_MAX 10000
#define ZMESH__RELAY_LIVE_MAX 1024   /* live positions per consumer */
#define ZMESH__RELAY_WALK_MAX 100000 /* records examined per request */
#define ZMESH__RELAY_LAST_TOPICS_MAX 10000
#define ZMESH__RELAY_SAVE_MS 100 /* state saved at most this often */
/*  Settings' defaults and ranges. */
#define ZMESH__RELAY_ACK_WAIT_DEFAULT 30000
#define ZMESH__RELAY_ACK_WAIT_MIN 100
#define ZMESH__RELAY_ACK_WAIT_MAX 3600000
#define ZMESH__RELAY_MAX_DELIVER_MAX 1000
#define ZMESH__RELAY_ACK_PENDING_DEFAULT 1000
#define ZMESH__RELAY_ACK_PENDING_MAX 10000

/*  True when topic pattern `a` covers pattern `b`: every topic `b`
    matches, `a` matches too ('*' one token, '>' one or more trailing
    tokens). Both must be valid patterns (zmesh__pattern_check). */
bool zmesh__relay_pattern_covers(const char *a, size_t a_size, const char *b,
                                 size_t b_size);

typedef enum {
    ZMESH__RELAY_START_ALL = 0,
    ZMESH__RELAY_START_NEW,
    ZMESH__RELAY_START_LAST,
    ZMESH__RELAY_START_SEQ,
    ZMESH__RELAY_START_TIME
} zmesh__relay_start_t;

/*  A decoded "$relay.consume" request. */
typedef struct {
    char consumer[ZMESH__STORE_CONSUMER_NAME_MAX + 1];
    char pattern[ZMESH_TOPIC_MAX + 1];
    bool has_stream;
    char stream[65];
    zmesh__relay_start_t start;
    uint64_t seq;
    int64_t time_us;
    bool has_ack_wait, has_max_deliver, has_max_ack_pending;
    uint32_t ack_wait_ms, max_deliver, max_ack_pending;
} zmesh__relay_consume_t;

/*  A decoded "$relay.next" request. */
typedef struct {
    char consumer[ZMESH__STORE_CONSUMER_NAME_MAX + 1];
    bool has_from;
    uint64_t from;
    uint32_t max;   /* 1..1000, default 100 */
    uint64_t bytes; /* 0: the relay's own limit */
} zmesh__relay_next_t;

/*  One live position of a "$relay.ack". */
typedef struct {
    uint8_t publisher[16];
    char topic[ZMESH_TOPIC_MAX + 1];
    uint64_t seq;
} zmesh__relay_live_t;

/*  A decoded "$relay.ack"; clear with zmesh__relay_ack_clear. */
typedef struct {
    char consumer[ZMESH__STORE_CONSUMER_NAME_MAX + 1];
    uint64_t *acks; /* owned */
    size_t acks_count;
    zmesh__relay_live_t *live; /* owned */
    size_t live_count;
} zmesh__relay_ack_t;

/*  Strict decoders of untrusted payloads: one msgpack map of at most
    `max_size` bytes (consume and next: ZMESH__RELAY_REQUEST_MAX), keys
    strings given once, unknown keys ignored, types and ranges checked.
    Error: ZMESH_EPROTO with the reason in err; ZMESH_ENOMEM (ack). On
    error nothing is left to free. */
int zmesh__relay_consume_decode(const void *payload, size_t size,
                                zmesh__relay_consume_t *out, char *err,
                                size_t err_size);
int zmesh__relay_next_decode(const void *payload, size_t size,
                             zmesh__relay_next_t *out, char *err,
                             size_t err_size);
int zmesh__relay_ack_decode(const void *payload, size_t size, size_t max_size,
                            zmesh__relay_ack_t *out, char *err,
                            size_t err_size);
void zmesh__relay_ack_clear(zmesh__relay_ack_t *ack);

/*  All consumers of a relay. Names are unique over the relay: $relay.next
    and $relay.ack name no stream. */
typedef struct zmesh__relay_consumers zmesh__relay_consumers_t;

/*  Looks up a publisher's service name for answers (NULL when unknown). */
typedef const char *(zmesh__relay_name_fn)(void *arg, const char *hex);

/*  Creates the set. `answer_limit` is the largest answer (the relay's
    maximum message size less the REPLY envelope); `names` labels
    publishers in $relay.next answers. Errors: ZMESH_ENOMEM. */
int zmesh__relay_consumers_new(zmesh__relay_consumers_t **self,
                               size_t answer_limit, zmesh__relay_name_fn *names,
                               void *names_arg);

/*  Saves every consumer whose state changed, frees everything, nulls
 *self. Accepts NULL. Call before the stores are destroyed. */
void zmesh__relay_consumers_destroy(zmesh__relay_consumers_t **self);

/*  Adds a stream (in configuration order; `patterns` copied, `store`
    borrowed and must outlive the set) and loads its consumers from their
    files. A consumer whose state cannot be read (corrupt files, a blob
    this version does not understand) is kept out of service: logged,
    counted, its files left alone, and $relay.consume for its name is
    answered `unavailable` until an operator removes them. Returns the
    number of consumers loaded. Errors: ZMESH_ENOMEM, ZMESH_ETOOBIG (more
    than 64 streams). */
int zmesh__relay_consumers_add_stream(zmesh__relay_consumers_t *self,
                                      const char *name,
                                      const char *const *patterns,
                                      size_t patterns_count,
                                      zmesh__store_t *store);

/*  Answers a request into `out` (cleared first): the result, or an error
    map. Returns 0 when answered with a result, ZMESH_EPROTO for a
    malformed request (bad_request), another ZMESH_E* code for other
    error answers. `now_us` is the wall clock (attach time, start
    `time` has its own). */
int zmesh__relay_consumers_consume(zmesh__relay_consumers_t *self,
                                   const void *payload, size_t size,
                                   int64_t now_us, msgpack_sbuffer *out);
int zmesh__relay_consumers_next(zmesh__relay_consumers_t *self,
                                const void *payload, size_t size,
                                msgpack_sbuffer *out);
/*  `out` NULL: a message (req 0), no answer. */
int zmesh__relay_consumers_ack(zmesh__relay_consumers_t *self,
                               const void *payload, size_t size,
                               msgpack_sbuffer *out);

/*  Moves each consumer's floor over records settled since they were
    stored (every ZMESH__RELAY_SAVE_MS at most), then saves the consumers
    whose state changed at least ZMESH__RELAY_SAVE_MS ago (`now_ms`:
    zmesh__clock_ms). `force` saves every changed one now and walks
    nothing (the stores are only written, for what changed). Returns the
    number saved. */
int zmesh__relay_consumers_tick(zmesh__relay_consumers_t *self, int64_t now_ms,
                                bool force);

/*  Packs the "consumers" array of stream `stream` for $relay.info, and the
    number of consumers of that stream kept out of service. */
void zmesh__relay_consumers_pack_info(zmesh__relay_consumers_t *self,
                                      size_t stream, msgpack_packer *pk);
size_t zmesh__relay_consumers_unusable(const zmesh__relay_consumers_t *self,
                                       size_t stream);

/*  For tests: a consumer's floor, or -1 when there is no such consumer. */
int64_t zmesh__relay_consumers_floor(const zmesh__relay_consumers_t *self,
                                     const char *name);

/*  For the fuzz target: decodes a consumer file's blob into a throwaway
    consumer and encodes it again. Returns 0 when it decoded (and then
    the re-encoding decodes to the same bytes), ZMESH_EPROTO if not. */
int zmesh__relay_consumer_blob_check(const void *blob, size_t size);

#endif
