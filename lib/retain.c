/*  retain.c - what a publisher remembers of the frames it sent. A kept
    frame is one record shared by the retransmit buffer and the topic's
    history, freed when neither holds it, so a seq is stored and served
    once. The record holds the frame as a reference to the very ZeroMQ
    message that was sent (zmq_msg_copy shares, never copies, a large
    message): no copy per publish, and the frame's memory is freed here,
    by the thread that allocated it, rather than by ZeroMQ's I/O thread
    (a free from another thread costs malloc locks and cold caches; it
    was a fifth of a publisher's time at 16-byte events). Records sit on the
   buffer's FIFO (add order, evicted from the head) and on their topic's list
   (seq order, walked back from the newest). A topic lives only while it holds
    a record. Every add gets an order number, which join marks and the
    "lost" watermarks compare. An event sent in a batch frame has a record
    of its own that refers to the batch, and is served as a frame of its
    own, encoded when asked for. It decodes and sends nothing. */
#include "retain.h"
#include "codec.h"
#include "topic.h"

#include <assert.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define S_CONTAINER(ptr, type, member)                                         \
    ((type *)(void *)((char *)(ptr)-offsetof(type, member)))

/* ------------------------------------------------------------------------ */
/*  Intrusive doubly linked lists: O(1) removal from anywhere, and no
    allocation to link a record, a topic or a mark. */

typedef struct s_link {
    struct s_link *prev, *next;
} s_link_t;

typedef struct {
    s_link_t *head, *tail;
} s_list_t;

static void
s_list_push(s_list_t *list, s_link_t *link)
{
    link->next = NULL;
    link->prev = list->tail;
    if (list->tail)
        list->tail->next = link;
    else
        list->head = link;
    list->tail = link;
}

static void
s_list_remove(s_list_t *list, s_link_t *link)
{
    if (link->prev)
        link->prev->next = link->next;
    else
        list->head = link->next;
    if (link->next)
        link->next->prev = link->prev;
    else
        list->tail = link->prev;
    link->prev = link->next = NULL;
}

/* ------------------------------------------------------------------------ */
/*  A hash table of byte-string keys (topics, peer ids) with linear probing
    and backward-shift deletion. Ours rather than zhashx so that a lookup
    needs neither a NUL-terminated copy of the topic nor an allocation per
    entry, and so that the table shrinks again when topics go away. */

typedef struct {
    size_t hash;
    size_t size;
    const void *key; /* points into the object that embeds this */
} s_keyed_t;

typedef struct {
    s_keyed_t **slots;
    size_t capacity; /* a power of two, at least S_TABLE_MIN */
    size_t count;
} s_table_t;

#define S_TABLE_MIN 16

// FNV-1a, 64-bit: short keys, and good enough spread for linear probing.
static size_t
s_hash(const void *key, size_t size)
{
    const unsigned char *p = key;
    uint64_t hash = 14695981039346656037u;
    for (size_t i = 0; i < size; i++) {
        hash ^= p[i];
        hash *= 1099511628211u;
    }
    return (size_t)(hash ^ (hash >> 32));
}

static int
s_table_init(s_table_t *table)
{
    table->slots = calloc(S_TABLE_MIN, sizeof *table->slots);
    if (!table->slots)
        return ZMESH_ENOMEM;
    table->capacity = S_TABLE_MIN;
    table->count = 0;
    return 0;
}

static s_keyed_t *
s_table_find(const s_table_t *table, size_t hash, const void *key, size_t size)
{
    size_t mask = table->capacity - 1;
    for (size_t i = hash & mask;; i = (i + 1) & mask) {
        s_keyed_t *entry = table->slots[i];
        if (!entry)
            return NULL;
        if (entry->hash == hash && entry->size == size &&
            memcmp(entry->key, key, size) == 0)
            return entry;
    }
}

static void
s_table_place(s_keyed_t **slots, size_t capacity, s_keyed_t *entry)
{
    size_t mask = capacity - 1;
    size_t i = entry->hash & mask;
    while (slots[i])
        i = (i + 1) & mask;
    slots[i] = entry;
}

static int
s_table_resize(s_table_t *table, size_t capacity)
{
    s_keyed_t **slots = calloc(capacity, sizeof *slots);
    if (!slots)
        return ZMESH_ENOMEM;
    for (size_t i = 0; i < table->capacity; i++)
        if (table->slots[i])
            s_table_place(slots, capacity, table->slots[i]);
    free(table->slots);
    table->slots = slots;
    table->capacity = capacity;
    return 0;
}

// Inserts an entry whose key is not in the table yet; at most half full.
static int
s_table_insert(s_table_t *table, s_keyed_t *entry)
{
    if ((table->count + 1) * 2 > table->capacity &&
        s_table_resize(table, table->capacity * 2) != 0)
        return ZMESH_ENOMEM;
    s_table_place(table->slots, table->capacity, entry);
    table->count++;
    return 0;
}

static void
s_table_remove(s_table_t *table, const s_keyed_t *entry)
{
    size_t mask = table->capacity - 1;
    size_t i = entry->hash & mask;
    while (table->slots[i] != entry)
        i = (i + 1) & mask;
    // Pull later entries of the probe run back over the hole, unless
    // their home slot lies after the hole (they would become unreachable).
    for (size_t j = (i + 1) & mask; table->slots[j]; j = (j + 1) & mask) {
        size_t home = table->slots[j]->hash & mask;
        bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
        if (!stays) {
            table->slots[i] = table->slots[j];
            i = j;
        }
    }
    table->slots[i] = NULL;
    table->count--;
    // Shrinking is an optimisation: keep the bigger table if memory is short.
    if (table->capacity > S_TABLE_MIN && table->count * 8 < table->capacity)
        (void)s_table_resize(table, table->capacity / 2);
}

/* ------------------------------------------------------------------------ */
/*  The object */

typedef struct s_record {
    s_link_t link;              /* in its topic's list, seq order */
    struct s_record *ring_next; /* in the retransmit FIFO, add order */
    struct s_topic *topic;
    uint64_t seq;
    uint64_t order; /* which add it was: 1, 2, 3... (marks compare it) */
    size_t size;    /* of the frame, or of the event's own frame (batched) */
    bool in_ring;
    bool in_history;
    /* An event sent in a batch frame (wire.md#batch-frame) is served as a
       frame of its own, made from its slice of the batch when asked for:
       its payload's place in the batch, and the batch's timestamp. */
    bool batched;
    uint32_t payload_offset, payload_size;
    int64_t timestamp_us;
    zmq_msg_t frame; /* a reference to the message sent */
} s_record_t;

/*  A topic with at least one record. Its history is always the newest
    history_count records: adds append, and the oldest history record is
    the one that leaves, so every record after `history` is history too. */
typedef struct s_topic {
    s_keyed_t keyed;
    s_list_t records;    /* s_record_t, seq order */
    s_record_t *history; /* the oldest history record, or NULL */
    size_t history_count;
    size_t history_limit; /* the largest count of the matching patterns */
    uint64_t lost;        /* the latest add of this topic that no store holds
                             (evicted, dropped or never kept); since the entry may
                             have come and gone, at least self->lost at creation */
    s_link_t all;         /* in self->topics */
    s_link_t lru;         /* in self->history_lru while history_count > 0 */
    char name[];          /* NUL-terminated, for pattern matching */
} s_topic_t;

typedef struct {
    s_keyed_t keyed;
    s_link_t lru;      /* in self->marks_lru, oldest mark first */
    uint64_t position; /* self->adds when marked */
    uint8_t id[16];
} s_mark_t;

typedef struct {
    char text[ZMESH_TOPIC_MAX + 1];
    size_t size;
    size_t count;
} s_pattern_t;

struct zmesh__retain {
    pthread_mutex_t lock;
    size_t max_bytes;
    uint64_t adds; /* adds so far, kept or not; the last one's order */
    uint64_t lost; /* the latest add, of any topic, that no store holds */
    s_record_t *ring_head, *ring_tail;
    /* The last record let go (its frame released), kept for the next
       add: in the steady state each add evicts about one frame, so this
       saves a free and a malloc per add. */
    s_record_t *spare;
    s_table_t topic_table;
    s_list_t topics;      /* every s_topic_t */
    s_list_t history_lru; /* topics with history, least recently added to
                             first */
    s_topic_t *last;      /* the topic of the last add: most publishers
                             repeat a few topics, so no hashing then */
    /* With the buffer disabled, the last topic found to need no history
       while the patterns stayed the same: its frames are dropped without
       a lookup. (Such a topic has no entry whose `lost` could need it.) */
    char skip[ZMESH_TOPIC_MAX];
    size_t skip_size; /* 0: none */
    s_table_t mark_table;
    s_list_t marks_lru;
    s_pattern_t patterns[ZMESH__RETAIN_PATTERNS_MAX];
    size_t patterns_count;
    zmesh__retain_stats_t stats;
    uint8_t publisher[ZMESH__ID_SIZE]; /* of batched events */
    uint8_t *scratch; /* a batched event's own frame, while it is visited */
    size_t scratch_cap;
};

static s_record_t *
s_record_of(s_link_t *link)
{
    return link ? S_CONTAINER(link, s_record_t, link) : NULL;
}

int
zmesh__retain_new(zmesh__retain_t **retain, size_t max_bytes)
{
    if (!retain)
        return ZMESH_EINVAL;
    zmesh__retain_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZMESH_ENOMEM;
    if (s_table_init(&self->topic_table) != 0)
        goto failed;
    if (s_table_init(&self->mark_table) != 0)
        goto failed;
    if (pthread_mutex_init(&self->lock, NULL) != 0)
        goto failed;
    self->max_bytes = max_bytes;
    *retain = self;
    return 0;
failed:
    free(self->topic_table.slots);
    free(self->mark_table.slots);
    free(self);
    return ZMESH_ENOMEM;
}

void
zmesh__retain_destroy(zmesh__retain_t **retain)
{
    if (!retain || !*retain)
        return;
    zmesh__retain_t *self = *retain;
    s_link_t *next;
    for (s_link_t *link = self->topics.head; link; link = next) {
        next = link->next;
        s_topic_t *topic = S_CONTAINER(link, s_topic_t, all);
        s_link_t *record_next;
        for (s_link_t *r = topic->records.head; r; r = record_next) {
            record_next = r->next;
            zmq_msg_close(&s_record_of(r)->frame);
            free(s_record_of(r));
        }
        free(topic);
    }
    for (s_link_t *link = self->marks_lru.head; link; link = next) {
        next = link->next;
        free(S_CONTAINER(link, s_mark_t, lru));
    }
    free(self->spare);
    free(self->scratch);
    free(self->topic_table.slots);
    free(self->mark_table.slots);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *retain = NULL;
}

/* ------------------------------------------------------------------------ */
/*  Topics and records; the lock is held. */

static s_topic_t *
s_topic_find(zmesh__retain_t *self, const char *name, size_t size, size_t *hash)
{
    s_topic_t *last = self->last;
    if (last && last->keyed.size == size && memcmp(last->name, name, size) == 0)
        return last;
    *hash = s_hash(name, size);
    s_keyed_t *keyed = s_table_find(&self->topic_table, *hash, name, size);
    return keyed ? S_CONTAINER(keyed, s_topic_t, keyed) : NULL;
}

static size_t
s_history_limit(const zmesh__retain_t *self, const char *name, size_t size)
{
    size_t limit = 0;
    for (size_t i = 0; i < self->patterns_count; i++) {
        const s_pattern_t *pattern = &self->patterns[i];
        if (pattern->count > limit &&
            zmesh__pattern_match(pattern->text, pattern->size, name, size))
            limit = pattern->count;
    }
    return limit;
}

static s_topic_t *
s_topic_new(zmesh__retain_t *self, const char *name, size_t size, size_t hash,
            size_t history_limit)
{
    s_topic_t *topic = calloc(1, sizeof *topic + size + 1);
    if (!topic)
        return NULL;
    memcpy(topic->name, name, size);
    topic->keyed = (s_keyed_t){hash, size, topic->name};
    topic->history_limit = history_limit;
    topic->lost = self->lost;
    if (s_table_insert(&self->topic_table, &topic->keyed) != 0) {
        free(topic);
        return NULL;
    }
    s_list_push(&self->topics, &topic->all);
    self->stats.topics++;
    return topic;
}

static void
s_topic_free(zmesh__retain_t *self, s_topic_t *topic)
{
    assert(!topic->records.head && topic->history_count == 0);
    s_table_remove(&self->topic_table, &topic->keyed);
    s_list_remove(&self->topics, &topic->all);
    if (self->last == topic)
        self->last = NULL;
    self->stats.topics--;
    free(topic);
}

// Frees a record that neither store holds; returns true when that freed
// its topic too.
static bool
s_record_free(zmesh__retain_t *self, s_record_t *record)
{
    assert(!record->in_ring && !record->in_history);
    s_topic_t *topic = record->topic;
    s_list_remove(&topic->records, &record->link);
    self->stats.held_bytes -= record->size;
    zmq_msg_close(&record->frame);
    free(self->spare);
    self->spare = record;
    if (topic->records.head)
        return false;
    s_topic_free(self, topic);
    return true;
}

// Notes that the add `order` of `topic` (NULL: it has no entry) is held
// by neither store, so a join mark before it no longer vouches.
static void
s_lose(zmesh__retain_t *self, s_topic_t *topic, uint64_t order)
{
    if (topic && topic->lost < order)
        topic->lost = order;
    if (self->lost < order)
        self->lost = order;
}

// A batched event's own frame, written into `out` (r->size bytes).
static int
s_own_frame(const zmesh__retain_t *self, const s_record_t *r, void *out)
{
    const uint8_t *payload =
        (const uint8_t *)zmq_msg_data((zmq_msg_t *)&r->frame) +
        r->payload_offset;
    return zmesh__frame_encode(r->topic->name, r->topic->keyed.size,
                               self->publisher, r->seq, r->timestamp_us,
                               payload, r->payload_size, out, r->size);
}

// Gives a batched record that only the history keeps a frame of its own,
// so that it no longer holds its whole batch: a history of one event per
// topic would otherwise keep a batch of up to 16 KiB per topic alive.
// Out of memory, it keeps the batch (counted in held_bytes as before).
static void
s_record_detach(zmesh__retain_t *self, s_record_t *record)
{
    if (!record->batched)
        return;
    zmq_msg_t own;
    if (zmq_msg_init_size(&own, record->size) != 0)
        return;
    if (s_own_frame(self, record, zmq_msg_data(&own)) != (int)record->size) {
        zmq_msg_close(&own);
        return;
    }
    zmq_msg_close(&record->frame);
    zmq_msg_init(&record->frame);
    zmq_msg_move(&record->frame, &own);
    zmq_msg_close(&own);
    record->batched = false;
}

static void
s_ring_evict(zmesh__retain_t *self)
{
    s_record_t *record = self->ring_head;
    self->ring_head = record->ring_next;
    if (!self->ring_head)
        self->ring_tail = NULL;
    record->ring_next = NULL;
    record->in_ring = false;
    self->stats.bytes -= record->size;
    self->stats.frames--;
    self->stats.evicted++;
    if (!record->in_history) {
        s_lose(self, record->topic, record->order);
        s_record_free(self, record);
    } else
        s_record_detach(self, record);
}

// Drops the oldest history records of `topic` until at most `keep` remain.
// May free the topic (only when keep is 0).
static void
s_history_trim(zmesh__retain_t *self, s_topic_t *topic, size_t keep)
{
    if (topic->history_count <= keep)
        return;
    if (keep == 0) {
        s_list_remove(&self->history_lru, &topic->lru);
        self->stats.history_topics--;
    }
    while (topic->history_count > keep) {
        s_record_t *record = topic->history;
        topic->history = s_record_of(record->link.next);
        topic->history_count--;
        self->stats.history_frames--;
        record->in_history = false;
        if (record->in_ring)
            continue;
        s_lose(self, topic, record->order);
        if (s_record_free(self, record))
            return;
    }
}

/*  An event's slice of a batch frame, for s_add. */
typedef struct {
    uint32_t payload_offset, payload_size;
    int64_t timestamp_us;
} s_slice_t;

static int
s_add(zmesh__retain_t *self, const char *name, size_t name_size, uint64_t seq,
      zmq_msg_t *frame, const s_slice_t *slice)
{
    size_t size = slice ? zmesh__frame_size(name_size, seq, slice->timestamp_us,
                                            slice->payload_size)
                        : zmq_msg_size(frame);
    bool ring = self->max_bytes > 0 && size <= self->max_bytes;
    if (self->max_bytes == 0 && (self->patterns_count == 0 ||
                                 (name_size == self->skip_size &&
                                  memcmp(name, self->skip, name_size) == 0))) {
        s_lose(self, NULL, ++self->adds);
        self->stats.not_kept++;
        return 0;
    }
    size_t hash = 0;
    s_topic_t *topic = s_topic_find(self, name, name_size, &hash);
    size_t limit = topic ? topic->history_limit : 0;
    if (!topic) {
        // Checked once per topic entry, not per add.
        int rc = zmesh__topic_check(name, name_size);
        if (rc != 0 && rc != ZMESH_ERESERVED)
            return rc;
        limit = s_history_limit(self, name, name_size);
    }
    uint64_t order = ++self->adds;
    bool history = limit > 0;
    if (!ring && !history) {
        s_lose(self, topic, order);
        if (self->max_bytes == 0) {
            memcpy(self->skip, name, name_size);
            self->skip_size = name_size;
        }
        self->stats.not_kept++;
        return 0;
    }
    if (!topic) {
        topic = s_topic_new(self, name, name_size, hash, limit);
        if (!topic) {
            s_lose(self, NULL, order);
            self->stats.add_failures++;
            return ZMESH_ENOMEM;
        }
    }
    s_record_t *record = self->spare;
    if (record)
        self->spare = NULL;
    else
        record = malloc(sizeof *record);
    if (record) {
        zmq_msg_init(&record->frame);
        if (zmq_msg_copy(&record->frame, frame) != 0) {
            free(record);
            record = NULL;
        }
    }
    if (!record) {
        s_lose(self, topic, order);
        if (!topic->records.head)
            s_topic_free(self, topic);
        self->stats.add_failures++;
        return ZMESH_ENOMEM;
    }
    record->ring_next = NULL;
    record->topic = topic;
    record->seq = seq;
    record->order = order;
    record->size = size;
    record->in_ring = ring;
    record->in_history = history;
    record->batched = slice != NULL;
    if (slice) {
        record->payload_offset = slice->payload_offset;
        record->payload_size = slice->payload_size;
        record->timestamp_us = slice->timestamp_us;
    }
    s_list_push(&topic->records, &record->link);
    self->stats.held_bytes += size;
    self->last = topic;
    if (!ring)
        s_record_detach(self, record); // history only, from the start

    if (history) {
        if (topic->history_count == 0) {
            if (self->stats.history_topics >=
                ZMESH__RETAIN_HISTORY_TOPICS_MAX) {
                s_topic_t *oldest =
                    S_CONTAINER(self->history_lru.head, s_topic_t, lru);
                s_history_trim(self, oldest, 0);
                self->stats.history_dropped++;
            }
            topic->history = record;
            self->stats.history_topics++;
        } else
            s_list_remove(&self->history_lru, &topic->lru);
        s_list_push(&self->history_lru, &topic->lru);
        topic->history_count++;
        self->stats.history_frames++;
        // The new record itself stays: the limit is at least 1.
        s_history_trim(self, topic, topic->history_limit);
    }
    if (ring) {
        if (self->ring_tail)
            self->ring_tail->ring_next = record;
        else
            self->ring_head = record;
        self->ring_tail = record;
        self->stats.bytes += size;
        self->stats.frames++;
        // Stops at the new record at the latest, since size <= max_bytes.
        while (self->stats.bytes > self->max_bytes)
            s_ring_evict(self);
    }
    return 0;
}

int
zmesh__retain_add_msg(zmesh__retain_t *self, const char *topic,
                      size_t topic_size, uint64_t seq, zmq_msg_t *frame)
{
    assert(self);
    if (!topic || topic_size == 0 || topic_size > ZMESH_TOPIC_MAX || !frame)
        return ZMESH_EINVAL;
    pthread_mutex_lock(&self->lock);
    int rc = s_add(self, topic, topic_size, seq, frame, NULL);
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int
zmesh__retain_add_batch(zmesh__retain_t *self, const char *topic,
                        size_t topic_size, zmq_msg_t *frame,
                        const uint8_t publisher[ZMESH__ID_SIZE],
                        uint64_t first_seq, int64_t timestamp_us,
                        const uint32_t *offsets, size_t count)
{
    assert(self);
    if (!topic || topic_size == 0 || topic_size > ZMESH_TOPIC_MAX || !frame ||
        !publisher || !offsets || count == 0)
        return ZMESH_EINVAL;
    size_t size = zmq_msg_size(frame);
    // All checked before any is kept: a slice must not run into the next.
    // (The first cannot start at 0: a frame begins with its topic.)
    for (size_t i = 0; i < count; i++) {
        size_t end = i + 1 < count ? offsets[i + 1] : size;
        if (offsets[i] == 0 || offsets[i] >= end || end > size)
            return ZMESH_EINVAL;
    }
    int rc = 0;
    pthread_mutex_lock(&self->lock);
    memcpy(self->publisher, publisher, ZMESH__ID_SIZE);
    for (size_t i = 0; i < count && rc == 0; i++) {
        size_t end = i + 1 < count ? offsets[i + 1] : size;
        s_slice_t slice = {offsets[i], (uint32_t)(end - offsets[i]),
                           timestamp_us};
        rc = s_add(self, topic, topic_size, first_seq + i, frame, &slice);
    }
    pthread_mutex_unlock(&self->lock);
    return rc;
}

int
zmesh__retain_add(zmesh__retain_t *self, const char *topic, size_t topic_size,
                  uint64_t seq, const void *frame, size_t size)
{
    assert(self);
    if (!topic || topic_size == 0 || topic_size > ZMESH_TOPIC_MAX ||
        (!frame && size > 0))
        return ZMESH_EINVAL;
    zmq_msg_t msg;
    if (zmq_msg_init_size(&msg, size) != 0) {
        pthread_mutex_lock(&self->lock);
        size_t hash;
        s_topic_t *entry = s_topic_find(self, topic, topic_size, &hash);
        s_lose(self, entry, ++self->adds);
        self->stats.add_failures++;
        pthread_mutex_unlock(&self->lock);
        return ZMESH_ENOMEM;
    }
    if (size)
        memcpy(zmq_msg_data(&msg), frame, size);
    int rc = zmesh__retain_add_msg(self, topic, topic_size, seq, &msg);
    zmq_msg_close(&msg);
    return rc;
}

/* ------------------------------------------------------------------------ */
/*  History patterns */

int
zmesh__retain_set_history(zmesh__retain_t *self, const char *pattern,
                          size_t count)
{
    assert(self);
    if (!pattern)
        return ZMESH_EPATTERN;
    size_t size = strnlen(pattern, ZMESH_TOPIC_MAX + 1);
    if (zmesh__pattern_check(pattern, size) != 0)
        return ZMESH_EPATTERN;
    if (count > ZMESH__RETAIN_HISTORY_MAX)
        return ZMESH_EINVAL;
    pthread_mutex_lock(&self->lock);
    size_t i = 0;
    while (i < self->patterns_count &&
           !(self->patterns[i].size == size &&
             memcmp(self->patterns[i].text, pattern, size) == 0))
        i++;
    int rc = 0;
    if (count == 0 && i == self->patterns_count)
        rc = ZMESH_ENOTFOUND;
    else if (i == self->patterns_count &&
             self->patterns_count == ZMESH__RETAIN_PATTERNS_MAX)
        rc = ZMESH_ETOOBIG;
    if (rc != 0) {
        pthread_mutex_unlock(&self->lock);
        return rc;
    }
    if (count == 0)
        self->patterns[i] = self->patterns[--self->patterns_count];
    else {
        if (i == self->patterns_count) {
            memcpy(self->patterns[i].text, pattern, size + 1);
            self->patterns[i].size = size;
            self->patterns_count++;
        }
        self->patterns[i].count = count;
    }
    self->skip_size = 0;
    // Only topics this pattern matches can see their limit change.
    s_link_t *next;
    for (s_link_t *link = self->topics.head; link; link = next) {
        next = link->next;
        s_topic_t *topic = S_CONTAINER(link, s_topic_t, all);
        if (!zmesh__pattern_match(pattern, size, topic->name,
                                  topic->keyed.size))
            continue;
        topic->history_limit =
            s_history_limit(self, topic->name, topic->keyed.size);
        s_history_trim(self, topic, topic->history_limit);
    }
    pthread_mutex_unlock(&self->lock);
    return 0;
}

/* ------------------------------------------------------------------------ */
/*  Join marks */

static s_mark_t *
s_mark_find(const zmesh__retain_t *self, const uint8_t peer[16])
{
    s_keyed_t *keyed =
        s_table_find(&self->mark_table, s_hash(peer, 16), peer, 16);
    return keyed ? S_CONTAINER(keyed, s_mark_t, keyed) : NULL;
}

static void
s_mark_free(zmesh__retain_t *self, s_mark_t *mark)
{
    s_table_remove(&self->mark_table, &mark->keyed);
    s_list_remove(&self->marks_lru, &mark->lru);
    self->stats.marks--;
    free(mark);
}

void
zmesh__retain_mark(zmesh__retain_t *self, const uint8_t peer[16])
{
    assert(self && peer);
    pthread_mutex_lock(&self->lock);
    s_mark_t *mark = s_mark_find(self, peer);
    if (mark)
        s_list_remove(&self->marks_lru, &mark->lru);
    else {
        if (self->stats.marks >= ZMESH__RETAIN_MARKS_MAX)
            s_mark_free(self, S_CONTAINER(self->marks_lru.head, s_mark_t, lru));
        mark = calloc(1, sizeof *mark);
        if (!mark)
            goto done;
        memcpy(mark->id, peer, 16);
        mark->keyed = (s_keyed_t){s_hash(peer, 16), 16, mark->id};
        if (s_table_insert(&self->mark_table, &mark->keyed) != 0) {
            free(mark);
            goto done;
        }
        self->stats.marks++;
    }
    mark->position = self->adds;
    s_list_push(&self->marks_lru, &mark->lru);
done:
    pthread_mutex_unlock(&self->lock);
}

void
zmesh__retain_unmark(zmesh__retain_t *self, const uint8_t peer[16])
{
    assert(self && peer);
    pthread_mutex_lock(&self->lock);
    s_mark_t *mark = s_mark_find(self, peer);
    if (mark)
        s_mark_free(self, mark);
    pthread_mutex_unlock(&self->lock);
}

bool
zmesh__retain_intact(zmesh__retain_t *self, const uint8_t peer[16],
                     const char *topic, size_t topic_size)
{
    assert(self && peer);
    if (!topic || topic_size == 0 || topic_size > ZMESH_TOPIC_MAX)
        return false;
    pthread_mutex_lock(&self->lock);
    const s_mark_t *mark = s_mark_find(self, peer);
    size_t hash;
    const s_topic_t *entry = s_topic_find(self, topic, topic_size, &hash);
    // Without an entry, any of the topic's adds may have been lost.
    bool intact = mark && (entry ? entry->lost : self->lost) <= mark->position;
    pthread_mutex_unlock(&self->lock);
    return intact;
}

/* ------------------------------------------------------------------------ */
/*  Serving */

// Visits one record: its frame as sent, or, for an event sent in a batch,
// a frame of its own made in the scratch buffer (the lock is held). A
// record that cannot be made (no memory) ends the visit, as a full
// answer would: the requester asks again or reports the gap.
static bool
s_visit(zmesh__retain_t *self, s_record_t *r, zmesh__retain_visit_fn *visit,
        void *arg)
{
    if (!r->batched)
        return visit(arg, r->seq, zmq_msg_data(&r->frame), r->size);
    if (r->size > self->scratch_cap) {
        uint8_t *grown = realloc(self->scratch, r->size);
        if (!grown)
            return false;
        self->scratch = grown;
        self->scratch_cap = r->size;
    }
    int n = s_own_frame(self, r, self->scratch);
    return n > 0 && visit(arg, r->seq, self->scratch, (size_t)n);
}

size_t
zmesh__retain_range(zmesh__retain_t *self, const char *topic, size_t topic_size,
                    uint64_t first, uint64_t last, const uint8_t *since_peer,
                    zmesh__retain_visit_fn *visit, void *arg)
{
    assert(self && visit);
    if (!topic || topic_size == 0 || topic_size > ZMESH_TOPIC_MAX ||
        first > last)
        return 0;
    size_t taken = 0;
    pthread_mutex_lock(&self->lock);
    size_t hash;
    s_topic_t *entry = s_topic_find(self, topic, topic_size, &hash);
    uint64_t after = 0; /* serve records whose order is above this */
    if (since_peer) {
        s_mark_t *mark = s_mark_find(self, since_peer);
        if (!mark)
            entry = NULL;
        else
            after = mark->position;
    }
    if (entry) {
        // Seq and order both grow along the list: walk back from the
        // newest to the first record wanted, so recent ranges cost little.
        s_record_t *start = NULL;
        for (s_record_t *r = s_record_of(entry->records.tail);
             r && r->seq >= first && r->order > after;
             r = s_record_of(r->link.prev))
            start = r;
        for (s_record_t *r = start; r && r->seq <= last;
             r = s_record_of(r->link.next)) {
            if (!s_visit(self, r, visit, arg))
                break;
            taken++;
        }
    }
    self->stats.served += taken;
    pthread_mutex_unlock(&self->lock);
    return taken;
}

size_t
zmesh__retain_history(zmesh__retain_t *self, const char *pattern,
                      zmesh__retain_visit_fn *visit, void *arg)
{
    assert(self && visit);
    if (!pattern)
        return 0;
    size_t size = strnlen(pattern, ZMESH_TOPIC_MAX + 1);
    if (zmesh__pattern_check(pattern, size) != 0)
        return 0;
    size_t taken = 0;
    pthread_mutex_lock(&self->lock);
    for (s_link_t *link = self->history_lru.head; link; link = link->next) {
        s_topic_t *topic = S_CONTAINER(link, s_topic_t, lru);
        if (!zmesh__pattern_match(pattern, size, topic->name,
                                  topic->keyed.size))
            continue;
        for (s_record_t *r = topic->history; r; r = s_record_of(r->link.next)) {
            if (!s_visit(self, r, visit, arg))
                goto stopped;
            taken++;
        }
    }
stopped:
    self->stats.served += taken;
    pthread_mutex_unlock(&self->lock);
    return taken;
}

void
zmesh__retain_stats(zmesh__retain_t *self, zmesh__retain_stats_t *out)
{
    assert(self && out);
    pthread_mutex_lock(&self->lock);
    *out = self->stats;
    pthread_mutex_unlock(&self->lock);
}
