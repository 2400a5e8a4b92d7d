/*  durable.c - durable consumers, consuming side. One state machine per
    consumer:

    - attached or not: until a relay has answered $relay.consume (and
      again after that relay left) the module asks for one every second;
    - CATCHUP: live events of the pattern are held (copied) while records
      come from the relay with $relay.next, as many as the application may
      have unacknowledged; when an answer shows the relay has nothing more
      (next > last), the held events are handed over and the consumer is
      LIVE;
    - LIVE: live events pass straight through. A gap, a stream that jumps,
      or a full window sends the consumer back to CATCHUP, since the relay
      may hold what the live path lost.

    Whatever the path, an event is handed to the application only if its
    publisher sequence is above the highest one handed out for its
    (publisher, topic): that is the deduplication of the switch
    (proto/relay.md#switching-to-live). Handed-out messages stay here
    until acknowledged; acknowledgements go to the relay in batches, by
    relay sequence and as live positions. */
#include "durable.h"

#include "clock.h"
#include "log.h"
#include "mpack.h"
#include "topic.h"

#include <czmq.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_ACK_ITEMS_MAX 10000 /* per $relay.ack (proto/relay.md#relay-ack) */
#define S_ACK_SOON 256        /* acknowledgements that are sent at once */
#define S_PATIENCE 3          /* catch-ups a jumping stream waits for */
#define S_PATIENCE_MS 100
#define S_KEY_MAX (33 + ZMESH_TOPIC_MAX + 1)

typedef enum { S_CATCHUP, S_LIVE } s_mode_t;

typedef struct s_item {
    struct s_item *next;
    zmesh_event_type_t type;
    uint8_t *data; /* MESSAGE: the frame */
    size_t size;
    zmesh__frame_t frame;
    char *topic; /* GAP: owned, frame.topic points here */
    char *reason;
    uint64_t rseq;
    unsigned deliveries;
    uint64_t first, last;
    int64_t deadline_ms; /* unacknowledged: when it is delivered again */
    bool queued;         /* in a queue (which then owns it) */
} s_item_t;

typedef struct {
    s_item_t *head, *tail;
    size_t count;
} s_queue_t;

typedef struct {
    char *name;
    char *pattern;
    size_t pattern_size;
    char *stream; /* NULL: the relay picks */
    zmesh_durable_options_t options;
    bool created_once; /* start applies to creation only: sent once */
    s_mode_t mode;
    bool attached;
    char relay[33];
    uint64_t req;     /* our request in flight, 0 if none */
    bool req_is_next; /* ... a $relay.next (else $relay.consume) */
    int64_t retry_at; /* when to ask again */
    uint64_t cursor;  /* $relay.next "from" */
    int patience;     /* catch-ups left for a jumping stream */
    zhashx_t *given;  /* "pubhex topic" -> uint64_t * highest handed out */
    s_queue_t held;   /* live events while catching up */
    size_t held_bytes;
    bool held_dropped; /* the hold overflowed: read on from the relay */
    s_queue_t ready;   /* for the application */
    s_queue_t unacked; /* handed out, not acknowledged */
    uint64_t *acks;    /* relay sequences to acknowledge */
    size_t acks_count, acks_cap;
    zhashx_t *dirty;  /* "pubhex topic" of streams whose position moved */
    int64_t flush_at; /* 0: nothing to send */
} s_sub_t;

struct zmesh__durable {
    zmesh__durable_io_t io;
    void *arg;
    s_sub_t *subs[ZMESH__DURABLE_SUBS_MAX];
    size_t count;
    s_item_t *current; /* handed out last; freed at the next */
    zmesh__durable_stats_t stats;
};

/* ------------------------------------------------------------------------ */
/*  Items and queues                                                        */

static void
s_item_free(s_item_t *item)
{
    if (!item)
        return;
    free(item->data);
    free(item->topic);
    free(item->reason);
    free(item);
}

static void
s_push(s_queue_t *q, s_item_t *item)
{
    item->queued = true;
    item->next = NULL;
    if (q->tail)
        q->tail->next = item;
    else
        q->head = item;
    q->tail = item;
    q->count++;
}

static void
s_push_front(s_queue_t *q, s_item_t *item)
{
    item->queued = true;
    item->next = q->head;
    q->head = item;
    if (!q->tail)
        q->tail = item;
    q->count++;
}

static s_item_t *
s_pop(s_queue_t *q)
{
    s_item_t *item = q->head;
    if (item) {
        q->head = item->next;
        if (!q->head)
            q->tail = NULL;
        q->count--;
        item->next = NULL;
        item->queued = false;
    }
    return item;
}

static void
s_unlink(s_queue_t *q, s_item_t *item, s_item_t *prev)
{
    if (prev)
        prev->next = item->next;
    else
        q->head = item->next;
    if (q->tail == item)
        q->tail = prev;
    q->count--;
    item->next = NULL;
    item->queued = false;
}

static void
s_clear(s_queue_t *q)
{
    for (s_item_t *item; (item = s_pop(q));)
        s_item_free(item);
}

static s_item_t *
s_message_item(const void *data, size_t size)
{
    s_item_t *item = calloc(1, sizeof *item);
    if (!item || !(item->data = malloc(size ? size : 1))) {
        free(item);
        return NULL;
    }
    memcpy(item->data, data, size);
    item->size = size;
    if (zmesh__frame_decode(item->data, size, &item->frame) != 0) {
        s_item_free(item);
        return NULL;
    }
    item->type = ZMESH_EVENT_MESSAGE;
    return item;
}

static s_item_t *
s_gap_item(const char *topic, size_t topic_size,
           const uint8_t publisher[ZMESH__ID_SIZE], uint64_t first,
           uint64_t last, int64_t timestamp_us, const char *reason)
{
    s_item_t *item = calloc(1, sizeof *item);
    if (!item || !(item->topic = strndup(topic, topic_size)) ||
        !(item->reason = strdup(reason))) {
        s_item_free(item);
        return NULL;
    }
    item->type = ZMESH_EVENT_GAP;
    item->frame.topic = item->topic;
    item->frame.topic_size = topic_size;
    memcpy(item->frame.publisher, publisher, ZMESH__ID_SIZE);
    item->frame.sequence = first;
    item->frame.timestamp_us = timestamp_us;
    item->frame.payload = "";
    item->first = first;
    item->last = last;
    return item;
}

static void
s_stream_key(char out[S_KEY_MAX], const uint8_t publisher[ZMESH__ID_SIZE],
             const char *topic, size_t topic_size)
{
    char hex[33];
    zmesh__id_to_hex(publisher, hex);
    snprintf(out, S_KEY_MAX, "%s %.*s", hex, (int)topic_size, topic);
}

/*  The highest sequence handed out of a stream, 0 when none. */
static uint64_t
s_given(s_sub_t *sub, const char *key)
{
    uint64_t *given = zhashx_lookup(sub->given, key);
    return given ? *given : 0;
}

static void
s_give(s_sub_t *sub, const char *key, uint64_t seq)
{
    uint64_t *given = zhashx_lookup(sub->given, key);
    if (!given) {
        // Bounded: past the limit the oldest knowledge goes (a duplicate
        // could then pass, never a loss).
        if (zhashx_size(sub->given) >= ZMESH__DURABLE_STREAMS_MAX)
            zhashx_purge(sub->given);
        if (!(given = calloc(1, sizeof *given)) ||
            zhashx_insert(sub->given, key, given) != 0) {
            free(given);
            return;
        }
    }
    if (seq > *given)
        *given = seq;
}

/* ------------------------------------------------------------------------ */
/*  Consumers                                                               */

static void
s_free_value(void **item)
{
    free(*item);
    *item = NULL;
}

static void
s_sub_free(s_sub_t *sub)
{
    if (!sub)
        return;
    free(sub->name);
    free(sub->pattern);
    free(sub->stream);
    zhashx_destroy(&sub->given);
    zhashx_destroy(&sub->dirty);
    s_clear(&sub->held);
    s_clear(&sub->ready);
    s_clear(&sub->unacked);
    free(sub->acks);
    free(sub);
}

int
zmesh__durable_new(zmesh__durable_t **durable, const zmesh__durable_io_t *io,
                   void *arg)
{
    if (!durable || !io || !io->request || !io->send)
        return ZMESH_EINVAL;
    zmesh__durable_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZMESH_ENOMEM;
    self->io = *io;
    self->arg = arg;
    *durable = self;
    return 0;
}

void
zmesh__durable_destroy(zmesh__durable_t **durable)
{
    if (!durable || !*durable)
        return;
    zmesh__durable_t *self = *durable;
    if (self->current && !self->current->queued)
        s_item_free(self->current); // else its queue frees it
    for (size_t i = 0; i < self->count; i++)
        s_sub_free(self->subs[i]);
    free(self);
    *durable = NULL;
}

static s_sub_t *
s_sub_named(zmesh__durable_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp(self->subs[i]->name, name) == 0)
            return self->subs[i];
    return NULL;
}

int
zmesh__durable_add(zmesh__durable_t *self, const char *name,
                   const char *pattern, const zmesh_durable_options_t *options)
{
    zmesh_durable_options_t o = {0};
    if (options)
        o = *options;
    if (o.ack_wait_ms == 0)
        o.ack_wait_ms = 30000;
    if (o.max_ack_pending == 0)
        o.max_ack_pending = 1000;
    if (o.ack_wait_ms < 100 || o.ack_wait_ms > 3600000 || o.max_deliver < 0 ||
        o.max_deliver > 1000 || o.max_ack_pending < 1 ||
        o.max_ack_pending > 10000 || o.start < ZMESH_START_ALL ||
        o.start > ZMESH_START_TIME ||
        (o.stream && (!*o.stream || strlen(o.stream) > 64)))
        return ZMESH_EINVAL;
    if (s_sub_named(self, name))
        return ZMESH_EINVAL;
    if (self->count >= ZMESH__DURABLE_SUBS_MAX)
        return ZMESH_ETOOBIG;
    s_sub_t *sub = calloc(1, sizeof *sub);
    if (!sub)
        return ZMESH_ENOMEM;
    sub->name = strdup(name);
    sub->pattern = strdup(pattern);
    sub->stream = o.stream ? strdup(o.stream) : NULL;
    sub->given = zhashx_new();
    sub->dirty = zhashx_new();
    if (!sub->name || !sub->pattern || (o.stream && !sub->stream) ||
        !sub->given || !sub->dirty) {
        s_sub_free(sub);
        return ZMESH_ENOMEM;
    }
    zhashx_set_destructor(sub->given, s_free_value);
    o.stream = NULL; // sub->stream owns it
    sub->options = o;
    sub->pattern_size = strlen(pattern);
    sub->mode = S_CATCHUP;
    sub->retry_at = 1; // at once (0 means nothing is due)
    self->subs[self->count++] = sub;
    return 0;
}

size_t
zmesh__durable_count(const zmesh__durable_t *self)
{
    return self ? self->count : 0;
}

static s_sub_t *
s_sub_for(zmesh__durable_t *self, const char *topic, size_t topic_size)
{
    for (size_t i = 0; i < self->count; i++)
        if (zmesh__pattern_match(self->subs[i]->pattern,
                                 self->subs[i]->pattern_size, topic,
                                 topic_size))
            return self->subs[i];
    return NULL;
}

/*  Events the application may still be given before the window is full. */
static size_t
s_window(const s_sub_t *sub)
{
    size_t used = sub->unacked.count + sub->ready.count;
    size_t max = (size_t)sub->options.max_ack_pending;
    return used >= max ? 0 : max - used;
}

static void
s_catch_up(s_sub_t *sub, int64_t now_ms)
{
    if (sub->mode == S_LIVE) {
        sub->mode = S_CATCHUP;
        sub->cursor = 0; // from the floor: the relay skips what is settled
        sub->patience = S_PATIENCE;
    }
    if (sub->retry_at > now_ms || sub->retry_at == 0)
        sub->retry_at = now_ms > 0 ? now_ms : 1;
}

static void
s_hold(zmesh__durable_t *self, s_sub_t *sub, s_item_t *item)
{
    if (sub->held.count >= ZMESH__DURABLE_HELD_MAX ||
        item->size > ZMESH__DURABLE_HELD_BYTES - sub->held_bytes) {
        // The relay stores these too: drop the hold and read on from it.
        self->stats.held_dropped += sub->held.count + 1;
        s_clear(&sub->held);
        sub->held_bytes = 0;
        sub->held_dropped = true;
        s_item_free(item);
        return;
    }
    sub->held_bytes += item->size;
    s_push(&sub->held, item);
}

/*  Whether a stream continues where the application is: the next
    sequence, or a stream it has not seen (which is judged by patience). */
static bool
s_continues(s_sub_t *sub, const char *key, uint64_t seq)
{
    uint64_t given = s_given(sub, key);
    return given ? seq == given + 1 : seq == 1 || sub->patience <= 0;
}

bool
zmesh__durable_live(zmesh__durable_t *self, const void *data, size_t size,
                    const zmesh__frame_t *frame, int64_t now_ms,
                    const char **consumer)
{
    *consumer = NULL;
    s_sub_t *sub = s_sub_for(self, frame->topic, frame->topic_size);
    if (!sub)
        return false;
    *consumer = sub->name;
    char key[S_KEY_MAX];
    s_stream_key(key, frame->publisher, frame->topic, frame->topic_size);
    if (frame->sequence <= s_given(sub, key)) {
        self->stats.duplicates++;
        return false;
    }
    s_item_t *item = s_message_item(data, size);
    if (!item)
        return false; // out of memory: the relay has it
    if (sub->mode == S_LIVE && s_window(sub) > 0 && sub->ready.count == 0 &&
        s_continues(sub, key, frame->sequence)) {
        s_give(sub, key, frame->sequence);
        item->deliveries = 1;
        item->deadline_ms = now_ms + sub->options.ack_wait_ms;
        s_push(&sub->unacked, item);
        self->stats.delivered++;
        return true;
    }
    // Behind, full, or a jump the relay may fill: hold it and ask.
    s_hold(self, sub, item);
    s_catch_up(sub, now_ms);
    return false;
}

bool
zmesh__durable_live_gap(zmesh__durable_t *self, const char *topic,
                        const uint8_t publisher[ZMESH__ID_SIZE], uint64_t first,
                        uint64_t last, int64_t now_ms, const char **consumer)
{
    *consumer = NULL;
    size_t topic_size = strlen(topic);
    s_sub_t *sub = s_sub_for(self, topic, topic_size);
    if (!sub)
        return false;
    *consumer = sub->name;
    // The relay may have what the live path lost: ask it first. The gap
    // is held, and reported after the catch-up only for what the relay
    // did not have either.
    s_item_t *item =
        s_gap_item(topic, topic_size, publisher, first, last,
                   zmesh__wall_clock_us(), "lost on the live path");
    if (item)
        s_hold(self, sub, item);
    s_catch_up(sub, now_ms);
    return false;
}

/* ------------------------------------------------------------------------ */
/*  Requests and answers                                                    */

static bool
s_get_u64(const msgpack_object *map, const char *key, uint64_t *out)
{
    const msgpack_object *o = zmesh__mp_get(map, key);
    if (!o || o->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *out = o->via.u64;
    return true;
}

static void
s_send_consume(zmesh__durable_t *self, s_sub_t *sub, int64_t now_ms)
{
    static const char *starts[] = {"all", "new", "last", "seq", "time"};
    const zmesh_durable_options_t *o = &sub->options;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    size_t keys = 6 + (sub->stream != NULL) + (o->start == ZMESH_START_SEQ) +
                  (o->start == ZMESH_START_TIME);
    msgpack_pack_map(&pk, keys);
    zmesh__mp_pack_str(&pk, "consumer");
    zmesh__mp_pack_str(&pk, sub->name);
    zmesh__mp_pack_str(&pk, "pattern");
    zmesh__mp_pack_str(&pk, sub->pattern);
    if (sub->stream) {
        zmesh__mp_pack_str(&pk, "stream");
        zmesh__mp_pack_str(&pk, sub->stream);
    }
    zmesh__mp_pack_str(&pk, "start");
    zmesh__mp_pack_str(&pk, starts[o->start]);
    if (o->start == ZMESH_START_SEQ) {
        zmesh__mp_pack_str(&pk, "seq");
        msgpack_pack_uint64(&pk, o->start_sequence);
    } else if (o->start == ZMESH_START_TIME) {
        zmesh__mp_pack_str(&pk, "time");
        msgpack_pack_int64(&pk, o->start_time_us);
    }
    zmesh__mp_pack_str(&pk, "ack_wait_ms");
    msgpack_pack_uint64(&pk, (uint64_t)o->ack_wait_ms);
    zmesh__mp_pack_str(&pk, "max_deliver");
    msgpack_pack_uint64(&pk, (uint64_t)o->max_deliver);
    zmesh__mp_pack_str(&pk, "max_ack_pending");
    msgpack_pack_uint64(&pk, (uint64_t)o->max_ack_pending);
    uint64_t req = 0;
    int rc = self->io.request(self->arg, NULL, "$relay.consume", buf.data,
                              buf.size, ZMESH__DURABLE_REQUEST_MS, &req);
    msgpack_sbuffer_destroy(&buf);
    if (rc == 0) {
        sub->req = req;
        sub->req_is_next = false;
        sub->retry_at = 0;
    } else
        sub->retry_at = now_ms + ZMESH__DURABLE_RETRY_MS; // no relay yet
}

static void
s_send_next(zmesh__durable_t *self, s_sub_t *sub, size_t max, int64_t now_ms)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    zmesh__mp_pack_str(&pk, "consumer");
    zmesh__mp_pack_str(&pk, sub->name);
    zmesh__mp_pack_str(&pk, "from");
    msgpack_pack_uint64(&pk, sub->cursor);
    zmesh__mp_pack_str(&pk, "max");
    msgpack_pack_uint64(&pk, max);
    uint64_t req = 0;
    int rc = self->io.request(self->arg, sub->relay, "$relay.next", buf.data,
                              buf.size, ZMESH__DURABLE_REQUEST_MS, &req);
    msgpack_sbuffer_destroy(&buf);
    if (rc == 0) {
        sub->req = req;
        sub->req_is_next = true;
        sub->retry_at = 0;
    } else {
        sub->attached = false; // the relay is gone: find one again
        sub->retry_at = now_ms + ZMESH__DURABLE_RETRY_MS;
    }
}

/*  The held live events go to the application, but for those it had
    from the relay. A stream that still jumps waits for a few more
    catch-ups (the relay may not have stored the events in between yet),
    then goes on: what is missing then, the relay did not have. */
static bool
s_release_held(zmesh__durable_t *self, s_sub_t *sub, int64_t now_ms)
{
    if (sub->patience > 0 && sub->held.head) {
        // Each held item must follow what comes before it: what the
        // application was given, or an earlier held item (a held gap
        // accounts for its range).
        zhashx_t *next = zhashx_new();
        bool jumps = !next;
        for (s_item_t *item = sub->held.head; item && !jumps;
             item = item->next) {
            char key[S_KEY_MAX];
            s_stream_key(key, item->frame.publisher, item->frame.topic,
                         item->frame.topic_size);
            uint64_t first = item->type == ZMESH_EVENT_GAP
                                 ? item->first
                                 : item->frame.sequence;
            uint64_t last = item->type == ZMESH_EVENT_GAP
                                ? item->last
                                : item->frame.sequence;
            uintptr_t seen = (uintptr_t)zhashx_lookup(next, key);
            uint64_t given = seen ? (uint64_t)seen : s_given(sub, key);
            if (given && first > given + 1)
                jumps = true;
            else if (last > given)
                zhashx_update(next, key, (void *)(uintptr_t)last);
        }
        zhashx_destroy(&next);
        if (jumps) {
            sub->patience--;
            sub->retry_at = now_ms + S_PATIENCE_MS;
            return false;
        }
    }
    for (s_item_t *item; (item = s_pop(&sub->held));) {
        char key[S_KEY_MAX];
        s_stream_key(key, item->frame.publisher, item->frame.topic,
                     item->frame.topic_size);
        uint64_t given = s_given(sub, key);
        if (item->type == ZMESH_EVENT_GAP) {
            if (item->last <= given) {
                s_item_free(item); // the relay had all of it
                continue;
            }
            if (item->first <= given)
                item->first = item->frame.sequence = given + 1;
            s_give(sub, key, item->last);
        } else {
            if (item->frame.sequence <= given) {
                self->stats.duplicates++;
                s_item_free(item);
                continue;
            }
            s_give(sub, key, item->frame.sequence);
            item->deliveries = 1;
        }
        s_push(&sub->ready, item);
    }
    sub->held_bytes = 0;
    sub->mode = S_LIVE;
    sub->patience = S_PATIENCE;
    return true;
}

/*  One record of a $relay.next answer: [rseq, stored, frame, flags,
    deliveries]. */
static void
s_take_record(zmesh__durable_t *self, s_sub_t *sub, const msgpack_object *o)
{
    if (o->type != MSGPACK_OBJECT_ARRAY || o->via.array.size < 3)
        return;
    const msgpack_object *part = o->via.array.ptr;
    if (part[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        part[2].type != MSGPACK_OBJECT_BIN)
        return;
    uint64_t rseq = part[0].via.u64;
    uint64_t flags = 0, deliveries = 1;
    if (o->via.array.size > 3 &&
        part[3].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        flags = part[3].via.u64;
    if (o->via.array.size > 4 &&
        part[4].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        deliveries = part[4].via.u64;
    s_item_t *item = s_message_item(part[2].via.bin.ptr, part[2].via.bin.size);
    if (!item)
        return; // not a frame: skipped (the relay serves only checked ones)
    item->rseq = rseq;
    item->deliveries =
        deliveries > UINT32_MAX ? UINT32_MAX : (unsigned)deliveries;
    char key[S_KEY_MAX];
    s_stream_key(key, item->frame.publisher, item->frame.topic,
                 item->frame.topic_size);
    uint64_t given = s_given(sub, key);
    if (flags & 1u) {
        // A gap record (proto/relay.md#gap-records): {last, reason}.
        uint64_t last = item->frame.sequence;
        char reason[64] = "not stored";
        msgpack_unpacked u;
        msgpack_unpacked_init(&u);
        size_t off = 0;
        if (msgpack_unpack_next(&u, item->frame.payload,
                                item->frame.payload_size,
                                &off) == MSGPACK_UNPACK_SUCCESS) {
            s_get_u64(&u.data, "last", &last);
            const msgpack_object *r = zmesh__mp_get(&u.data, "reason");
            if (r && r->type == MSGPACK_OBJECT_STR)
                snprintf(reason, sizeof reason, "%.*s", (int)r->via.str.size,
                         r->via.str.ptr);
        }
        msgpack_unpacked_destroy(&u);
        s_item_t *gap = NULL;
        if (last > given && last >= item->frame.sequence) {
            uint64_t first =
                item->frame.sequence > given ? item->frame.sequence : given + 1;
            gap = s_gap_item(item->frame.topic, item->frame.topic_size,
                             item->frame.publisher, first, last,
                             item->frame.timestamp_us, reason);
        }
        // One covered already is settled by the caller, like a duplicate.
        if (gap) {
            gap->rseq = rseq;
            s_give(sub, key, last);
            s_push(&sub->ready, gap);
        }
        s_item_free(item);
        return;
    }
    if (item->frame.sequence <= given) {
        // Handed out already (live, or before a relay restart): dropped.
        self->stats.duplicates++;
        s_item_free(item);
        return;
    }
    s_give(sub, key, item->frame.sequence);
    s_push(&sub->ready, item);
}

static void s_ack_rseq(s_sub_t *sub, uint64_t rseq, int64_t now_ms);

// The names a $relay.next answer gives for publishers of its records
// (proto/relay.md#durable-consumers), passed on so that events whose
// publisher has left still say who published them. Entries that are not
// a 32-hex-digit id and a 1..ZMESH_NAME_MAX byte name are ignored.
static void
s_learn_names(zmesh__durable_t *self, const msgpack_object *map)
{
    const msgpack_object *names = zmesh__mp_get(map, "names");
    if (!self->io.name || !names || names->type != MSGPACK_OBJECT_MAP)
        return;
    for (uint32_t i = 0; i < names->via.map.size; i++) {
        const msgpack_object *k = &names->via.map.ptr[i].key;
        const msgpack_object *v = &names->via.map.ptr[i].val;
        if (k->type != MSGPACK_OBJECT_STR || k->via.str.size != 32 ||
            v->type != MSGPACK_OBJECT_STR || v->via.str.size < 1 ||
            v->via.str.size > ZMESH_NAME_MAX ||
            memchr(v->via.str.ptr, 0, v->via.str.size))
            continue;
        char id[33], name[ZMESH_NAME_MAX + 1];
        uint8_t bytes[ZMESH__ID_SIZE];
        memcpy(id, k->via.str.ptr, 32);
        id[32] = '\0';
        if (zmesh__id_from_hex(id, bytes) != 0)
            continue;
        zmesh__id_to_hex(bytes, id); // the agent's spelling
        memcpy(name, v->via.str.ptr, v->via.str.size);
        name[v->via.str.size] = '\0';
        self->io.name(self->arg, id, name);
    }
}

static void
s_on_next(zmesh__durable_t *self, s_sub_t *sub, const msgpack_object *map,
          int64_t now_ms)
{
    uint64_t next = 0, last = 0;
    const msgpack_object *events = zmesh__mp_get(map, "events");
    if (!events || events->type != MSGPACK_OBJECT_ARRAY ||
        !s_get_u64(map, "next", &next) || !s_get_u64(map, "last", &last)) {
        self->stats.refused++;
        zmesh__log(ZMESH_LOG_WARNING,
                   "durable consumer %s: malformed $relay.next answer",
                   sub->name);
        sub->retry_at = now_ms + ZMESH__DURABLE_REFUSED_MS;
        return;
    }
    s_learn_names(self, map);
    const msgpack_object *lost = zmesh__mp_get(map, "lost");
    if (lost && lost->type == MSGPACK_OBJECT_ARRAY &&
        lost->via.array.size == 2 &&
        lost->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        lost->via.array.ptr[1].type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        s_item_t *item = calloc(1, sizeof *item);
        if (item && (item->reason = strdup("deleted by the relay's retention "
                                           "before this consumer read them"))) {
            item->type = ZMESH_EVENT_LOST;
            item->first = lost->via.array.ptr[0].via.u64;
            item->last = lost->via.array.ptr[1].via.u64;
            s_push(&sub->ready, item);
        } else
            s_item_free(item);
    }
    for (uint32_t i = 0; i < events->via.array.size; i++) {
        const msgpack_object *o = &events->via.array.ptr[i];
        size_t had = sub->ready.count;
        s_take_record(self, sub, o);
        // A record dropped as handed out already is settled at the relay
        // unless it still waits for the application's acknowledgement.
        if (sub->ready.count == had && o->type == MSGPACK_OBJECT_ARRAY &&
            o->via.array.size >= 1 &&
            o->via.array.ptr[0].type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
            uint64_t rseq = o->via.array.ptr[0].via.u64;
            bool waiting = false;
            for (s_item_t *u = sub->unacked.head; u && !waiting; u = u->next)
                waiting = u->rseq == rseq;
            if (!waiting)
                s_ack_rseq(sub, rseq, now_ms);
        }
    }
    if (next > sub->cursor)
        sub->cursor = next;
    sub->retry_at = now_ms > 0 ? now_ms : 1;
    if (events->via.array.size == 0 && next > last) {
        // The relay has nothing more: the held events follow on.
        if (sub->held_dropped) {
            sub->held_dropped = false; // what was dropped is stored now
            return;
        }
        if (s_release_held(self, sub, now_ms))
            sub->retry_at = 0;
    }
}

bool
zmesh__durable_reply(zmesh__durable_t *self, uint64_t req, const char *peer_id,
                     int status, const void *payload, size_t size,
                     int64_t now_ms)
{
    if (!self || req == 0)
        return false;
    s_sub_t *sub = NULL;
    for (size_t i = 0; i < self->count && !sub; i++)
        if (self->subs[i]->req == req)
            sub = self->subs[i];
    if (!sub)
        return false;
    bool was_next = sub->req_is_next;
    sub->req = 0;
    if (status != 0) {
        // Timed out, gone, or not a relay: find one again.
        sub->attached = false;
        sub->retry_at = now_ms + ZMESH__DURABLE_RETRY_MS;
        return true;
    }
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    size_t off = 0;
    if (msgpack_unpack_next(&u, payload, size, &off) !=
            MSGPACK_UNPACK_SUCCESS ||
        u.data.type != MSGPACK_OBJECT_MAP) {
        self->stats.refused++;
        sub->retry_at = now_ms + ZMESH__DURABLE_REFUSED_MS;
        msgpack_unpacked_destroy(&u);
        return true;
    }
    const msgpack_object *error = zmesh__mp_get(&u.data, "error");
    if (error) {
        const msgpack_object *code = zmesh__mp_get(&u.data, "code");
        self->stats.refused++;
        zmesh__log(
            ZMESH_LOG_WARNING,
            "durable consumer %s: the relay says: %.*s (%.*s)", sub->name,
            error->type == MSGPACK_OBJECT_STR ? (int)error->via.str.size : 0,
            error->type == MSGPACK_OBJECT_STR ? error->via.str.ptr : "",
            code && code->type == MSGPACK_OBJECT_STR ? (int)code->via.str.size
                                                     : 0,
            code && code->type == MSGPACK_OBJECT_STR ? code->via.str.ptr : "");
        // A $relay.next refused (the relay lost the consumer, say)
        // attaches again; a refused attach waits longer.
        sub->attached = false;
        sub->retry_at = now_ms + (was_next ? ZMESH__DURABLE_RETRY_MS
                                           : ZMESH__DURABLE_REFUSED_MS);
    } else if (!was_next) {
        snprintf(sub->relay, sizeof sub->relay, "%s", peer_id);
        sub->attached = true;
        sub->created_once = true;
        sub->cursor = 0;
        sub->retry_at = now_ms > 0 ? now_ms : 1;
        zmesh__log(ZMESH_LOG_INFO, "durable consumer %s attached to relay %.8s",
                   sub->name, peer_id);
        if (sub->acks_count > 0 || zhashx_size(sub->dirty) > 0)
            sub->flush_at = now_ms; // what was acknowledged meanwhile
    } else if (sub->mode == S_CATCHUP)
        s_on_next(self, sub, &u.data, now_ms);
    msgpack_unpacked_destroy(&u);
    return true;
}

void
zmesh__durable_peer_left(zmesh__durable_t *self, const char *peer_id)
{
    for (size_t i = 0; self && i < self->count; i++) {
        s_sub_t *sub = self->subs[i];
        if (sub->attached && strcmp(sub->relay, peer_id) == 0) {
            sub->attached = false;
            sub->retry_at = 1; // at once
        }
    }
}

/* ------------------------------------------------------------------------ */
/*  Acknowledgements                                                        */

static void
s_ack_rseq(s_sub_t *sub, uint64_t rseq, int64_t now_ms)
{
    if (sub->acks_count == sub->acks_cap) {
        size_t cap = sub->acks_cap ? sub->acks_cap * 2 : 64;
        uint64_t *acks = realloc(sub->acks, cap * sizeof *acks);
        if (!acks)
            return; // the relay hands it out again; it is dropped then
        sub->acks = acks;
        sub->acks_cap = cap;
    }
    sub->acks[sub->acks_count++] = rseq;
    if (sub->flush_at == 0)
        sub->flush_at = now_ms + ZMESH__DURABLE_ACK_DELAY_MS;
    if (sub->acks_count >= S_ACK_SOON)
        sub->flush_at = now_ms;
}

static void
s_mark_dirty(s_sub_t *sub, const char *key, int64_t now_ms)
{
    zhashx_update(sub->dirty, key, (void *)1);
    if (sub->flush_at == 0)
        sub->flush_at = now_ms + ZMESH__DURABLE_ACK_DELAY_MS;
}

int
zmesh__durable_ack(zmesh__durable_t *self, const char *consumer,
                   const uint8_t publisher[ZMESH__ID_SIZE], const char *topic,
                   uint64_t seq, uint64_t rseq, int64_t now_ms)
{
    s_sub_t *sub = s_sub_named(self, consumer);
    if (!sub)
        return ZMESH_EINVAL;
    size_t topic_size = strlen(topic);
    s_item_t *prev = NULL, *item = sub->unacked.head;
    for (; item; prev = item, item = item->next)
        if (item->frame.sequence == seq &&
            item->frame.topic_size == topic_size &&
            memcmp(item->frame.topic, topic, topic_size) == 0 &&
            memcmp(item->frame.publisher, publisher, ZMESH__ID_SIZE) == 0)
            break;
    if (!item)
        return ZMESH_ENOTFOUND;
    s_unlink(&sub->unacked, item, prev);
    // By relay sequence too when it came from the relay (`rseq` is what
    // the event said; the item knows).
    (void)rseq;
    if (item->rseq)
        s_ack_rseq(sub, item->rseq, now_ms);
    char key[S_KEY_MAX];
    s_stream_key(key, publisher, topic, topic_size);
    s_mark_dirty(sub, key, now_ms);
    // The application's event may still point into the item.
    if (item == self->current)
        return 0;
    s_item_free(item);
    return 0;
}

/*  A stream's live position: every event of it handed out is
    acknowledged up to here. Events given a number but still waiting to
    be taken (ready) or acknowledged (unacked) hold it back. */
static uint64_t
s_position(s_sub_t *sub, const char *key)
{
    uint64_t pos = s_given(sub, key);
    const s_queue_t *queues[] = {&sub->unacked, &sub->ready};
    for (size_t q = 0; q < 2; q++)
        for (s_item_t *u = queues[q]->head; u; u = u->next) {
            if (u->type == ZMESH_EVENT_LOST)
                continue;
            uint64_t first =
                u->type == ZMESH_EVENT_GAP ? u->first : u->frame.sequence;
            if (first - 1 >= pos)
                continue;
            char k[S_KEY_MAX];
            s_stream_key(k, u->frame.publisher, u->frame.topic,
                         u->frame.topic_size);
            if (strcmp(k, key) == 0)
                pos = first - 1;
        }
    return pos;
}

static void
s_flush(zmesh__durable_t *self, s_sub_t *sub, int64_t now_ms)
{
    sub->flush_at = 0;
    if (sub->acks_count == 0 && zhashx_size(sub->dirty) == 0)
        return;
    if (!sub->attached) {
        sub->flush_at = now_ms + ZMESH__DURABLE_RETRY_MS; // after attaching
        return;
    }
    size_t acks =
        sub->acks_count < S_ACK_ITEMS_MAX ? sub->acks_count : S_ACK_ITEMS_MAX;
    size_t lives = zhashx_size(sub->dirty);
    if (lives > S_ACK_ITEMS_MAX - acks)
        lives = S_ACK_ITEMS_MAX - acks;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    zmesh__mp_pack_str(&pk, "consumer");
    zmesh__mp_pack_str(&pk, sub->name);
    zmesh__mp_pack_str(&pk, "acks");
    msgpack_pack_array(&pk, acks);
    for (size_t i = 0; i < acks; i++)
        msgpack_pack_uint64(&pk, sub->acks[i]);
    zmesh__mp_pack_str(&pk, "live");
    // Positions of the streams whose acknowledgements moved; those at 0
    // (nothing acknowledged yet) are sent as 0, which moves nothing.
    msgpack_pack_array(&pk, lives);
    zlistx_t *sent = zlistx_new();
    size_t n = 0;
    for (void *v = zhashx_first(sub->dirty); v && n < lives;
         v = zhashx_next(sub->dirty), n++) {
        const char *key = zhashx_cursor(sub->dirty);
        uint8_t publisher[ZMESH__ID_SIZE];
        char hex[33];
        memcpy(hex, key, 32);
        hex[32] = '\0';
        zmesh__id_from_hex(hex, publisher);
        msgpack_pack_array(&pk, 3);
        msgpack_pack_bin(&pk, ZMESH__ID_SIZE);
        msgpack_pack_bin_body(&pk, publisher, ZMESH__ID_SIZE);
        zmesh__mp_pack_str(&pk, key + 33);
        msgpack_pack_uint64(&pk, s_position(sub, key));
        if (sent)
            zlistx_add_end(sent, (void *)key);
    }
    int rc =
        self->io.send(self->arg, sub->relay, "$relay.ack", buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
    if (rc == 0) {
        memmove(sub->acks, sub->acks + acks,
                (sub->acks_count - acks) * sizeof *sub->acks);
        sub->acks_count -= acks;
        char copy[S_KEY_MAX];
        for (const char *key = sent ? zlistx_first(sent) : NULL; key;
             key = zlistx_next(sent)) {
            snprintf(copy, sizeof copy, "%s", key);
            zhashx_delete(sub->dirty, copy);
        }
        if (sub->acks_count > 0 || zhashx_size(sub->dirty) > 0)
            sub->flush_at = now_ms;
    } else
        sub->flush_at = now_ms + ZMESH__DURABLE_RETRY_MS;
    zlistx_destroy(&sent);
}

void
zmesh__durable_flush(zmesh__durable_t *self, int64_t now_ms)
{
    // A few rounds: one message holds at most S_ACK_ITEMS_MAX items.
    for (size_t i = 0; self && i < self->count; i++)
        for (int rounds = 0; rounds < 8; rounds++) {
            s_sub_t *sub = self->subs[i];
            if (!sub->attached ||
                (sub->acks_count == 0 && zhashx_size(sub->dirty) == 0))
                break;
            s_flush(self, sub, now_ms);
            if (sub->flush_at != now_ms)
                break; // sent all, or could not send
        }
}

/* ------------------------------------------------------------------------ */
/*  Service                                                                 */

/*  Unacknowledged messages past their ack wait are handed out again, or
    dropped after max_deliver. */
static void
s_redeliver(zmesh__durable_t *self, s_sub_t *sub, int64_t now_ms)
{
    s_item_t *prev = NULL;
    for (s_item_t *item = sub->unacked.head, *next; item; item = next) {
        next = item->next;
        if (item->deadline_ms > now_ms) {
            prev = item;
            continue;
        }
        s_unlink(&sub->unacked, item, prev);
        int max = sub->options.max_deliver;
        if (max > 0 && item->deliveries >= (unsigned)max) {
            self->stats.terminated++;
            zmesh__log(ZMESH_LOG_WARNING,
                       "durable consumer %s: %s #%llu not acknowledged after "
                       "%u deliveries: dropped",
                       sub->name, item->frame.topic,
                       (unsigned long long)item->frame.sequence,
                       item->deliveries);
            if (item->rseq)
                s_ack_rseq(sub, item->rseq, now_ms);
            char key[S_KEY_MAX];
            s_stream_key(key, item->frame.publisher, item->frame.topic,
                         item->frame.topic_size);
            s_mark_dirty(sub, key, now_ms);
            if (item != self->current) // the application may hold it
                s_item_free(item);
            continue;
        }
        item->deliveries++;
        self->stats.redelivered++;
        s_push_front(&sub->ready, item);
    }
}

void
zmesh__durable_service(zmesh__durable_t *self, int64_t now_ms)
{
    for (size_t i = 0; self && i < self->count; i++) {
        s_sub_t *sub = self->subs[i];
        s_redeliver(self, sub, now_ms);
        if (sub->flush_at != 0 && sub->flush_at <= now_ms)
            s_flush(self, sub, now_ms);
        if (sub->req != 0 || sub->retry_at == 0 || sub->retry_at > now_ms)
            continue;
        if (!sub->attached)
            s_send_consume(self, sub, now_ms);
        else if (sub->mode == S_CATCHUP) {
            size_t window = s_window(sub);
            if (window > ZMESH__DURABLE_FETCH_MAX)
                window = ZMESH__DURABLE_FETCH_MAX;
            if (window > 0)
                s_send_next(self, sub, window, now_ms);
            else
                sub->retry_at = now_ms + ZMESH__DURABLE_ACK_DELAY_MS;
        } else
            sub->retry_at = 0;
    }
}

int64_t
zmesh__durable_deadline(const zmesh__durable_t *self)
{
    int64_t due = 0;
    for (size_t i = 0; self && i < self->count; i++) {
        const s_sub_t *sub = self->subs[i];
        int64_t times[2] = {sub->flush_at, sub->req ? 0 : sub->retry_at};
        for (int t = 0; t < 2; t++)
            if (times[t] > 0 && (due == 0 || times[t] < due))
                due = times[t];
        for (const s_item_t *u = sub->unacked.head; u; u = u->next)
            if (due == 0 || u->deadline_ms < due)
                due = u->deadline_ms;
    }
    return due;
}

bool
zmesh__durable_ready(const zmesh__durable_t *self)
{
    for (size_t i = 0; self && i < self->count; i++)
        if (self->subs[i]->ready.head)
            return true;
    return false;
}

bool
zmesh__durable_next(zmesh__durable_t *self, int64_t now_ms,
                    zmesh__durable_event_t *event)
{
    if (!self || self->count == 0)
        return false;
    // The event handed out before is over. Unless it still waits for
    // an acknowledgement (or to be handed out again), it goes.
    if (self->current && !self->current->queued)
        s_item_free(self->current);
    self->current = NULL;
    for (size_t i = 0; i < self->count; i++) {
        s_sub_t *sub = self->subs[i];
        s_item_t *item = s_pop(&sub->ready);
        if (!item)
            continue;
        memset(event, 0, sizeof *event);
        event->type = item->type;
        event->consumer = sub->name;
        event->frame = item->frame;
        event->rseq = item->rseq;
        event->first = item->first;
        event->last = item->last;
        event->reason = item->reason ? item->reason : "";
        if (item->type == ZMESH_EVENT_MESSAGE) {
            if (item->deliveries == 0)
                item->deliveries = 1;
            event->deliveries = item->deliveries;
            item->deadline_ms = now_ms + sub->options.ack_wait_ms;
            s_push(&sub->unacked, item);
            self->stats.delivered++;
        } else if (item->type == ZMESH_EVENT_GAP && item->rseq)
            s_ack_rseq(sub, item->rseq, now_ms); // reported: settled
        self->current = item;
        return true;
    }
    return false;
}

void
zmesh__durable_stats(const zmesh__durable_t *self,
                     zmesh__durable_stats_t *stats)
{
    if (self)
        *stats = self->stats;
    else
        memset(stats, 0, sizeof *stats);
}
