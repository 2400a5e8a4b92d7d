/*  streams.c - per-stream sequence bookkeeping for subscribers. A stream
    is one publisher incarnation's one topic; its events carry 1, 2, 3...
    (proto/wire.md#sequences). Knowing the last delivered number is what
    lets the agent report what it lost instead of losing it silently, and
    drop what it has delivered already. The last stream looked up is
    cached, since a busy subscriber mostly sees one stream at a time, so
    the common case costs two memcmp and no hashing.
*/
#include "streams.h"
#include "codec.h"
#include "zmesh.h"

#include <czmq.h>
#include <stdlib.h>
#include <string.h>

struct zmesh__streams {
    zhashx_t *table; /* hex id + topic -> zmesh__stream_stats_t * */
    size_t max;
    uint64_t resets;
    /* cache of the last stream */
    uint8_t last_id[ZMESH__ID_SIZE];
    char last_topic[ZMESH_TOPIC_MAX + 1];
    size_t last_topic_size;
    zmesh__stream_stats_t *last; /* NULL: nothing cached */
};

static void
s_free_value(void **item)
{
    free(*item);
    *item = NULL;
}

int
zmesh__streams_new(zmesh__streams_t **streams, size_t max)
{
    zmesh__streams_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZMESH_ENOMEM;
    self->table = zhashx_new();
    if (!self->table) {
        free(self);
        return ZMESH_ENOMEM;
    }
    zhashx_set_destructor(self->table, s_free_value);
    self->max = max ? max : 1;
    *streams = self;
    return 0;
}

void
zmesh__streams_destroy(zmesh__streams_t **streams)
{
    if (!streams || !*streams)
        return;
    zhashx_destroy(&(*streams)->table);
    free(*streams);
    *streams = NULL;
}

// The table's key: 32 hex digits of the id, then the topic.
static void
s_key(char *key, const uint8_t publisher[ZMESH__ID_SIZE], const char *topic,
      size_t topic_size)
{
    zmesh__id_to_hex(publisher, key);
    memcpy(key + 32, topic, topic_size);
    key[32 + topic_size] = '\0';
}

// The stream's counters, cached; made when `create` and not there yet
// (*created then), else NULL.
static zmesh__stream_stats_t *
s_find(zmesh__streams_t *self, const uint8_t publisher[ZMESH__ID_SIZE],
       const char *topic, size_t topic_size, bool create, bool *created)
{
    *created = false;
    if (self->last && topic_size == self->last_topic_size &&
        memcmp(publisher, self->last_id, ZMESH__ID_SIZE) == 0 &&
        memcmp(topic, self->last_topic, topic_size) == 0)
        return self->last;
    if (topic_size > ZMESH_TOPIC_MAX)
        return NULL;
    char key[32 + ZMESH_TOPIC_MAX + 1];
    s_key(key, publisher, topic, topic_size);
    zmesh__stream_stats_t *last = zhashx_lookup(self->table, key);
    if (!last && !create)
        return NULL;
    if (!last) {
        if (zhashx_size(self->table) >= self->max) {
            zhashx_purge(self->table);
            self->resets++;
        }
        last = calloc(1, sizeof *last);
        if (!last || zhashx_insert(self->table, key, last) != 0) {
            free(last);
            self->last = NULL;
            return NULL;
        }
        *created = true;
    }
    memcpy(self->last_id, publisher, ZMESH__ID_SIZE);
    memcpy(self->last_topic, topic, topic_size);
    self->last_topic_size = topic_size;
    self->last = last;
    return last;
}

static zmesh__stream_stats_t *
s_lookup(zmesh__streams_t *self, const uint8_t publisher[ZMESH__ID_SIZE],
         const char *topic, size_t topic_size, bool *created)
{
    return s_find(self, publisher, topic, topic_size, true, created);
}

bool
zmesh__streams_tail(zmesh__streams_t *self, const uint8_t publisher[16],
                    const char *topic, size_t topic_size, uint64_t last,
                    uint64_t *gap_first, uint64_t *gap_last)
{
    bool created;
    zmesh__stream_stats_t *stream =
        s_find(self, publisher, topic, topic_size, false, &created);
    if (!stream || stream->last >= last)
        return false;
    *gap_first = stream->last + 1;
    *gap_last = last;
    return true;
}

zmesh__seq_verdict_t
zmesh__streams_track(zmesh__streams_t *self, const uint8_t publisher[16],
                     const char *topic, size_t topic_size, uint64_t sequence,
                     uint64_t *gap_first, uint64_t *gap_last)
{
    bool created;
    zmesh__stream_stats_t *stream =
        s_lookup(self, publisher, topic, topic_size, &created);
    if (!stream)
        return ZMESH__SEQ_FIRST;
    if (created) {
        stream->last = sequence;
        return ZMESH__SEQ_FIRST;
    }
    if (sequence <= stream->last)
        return ZMESH__SEQ_OLD;
    zmesh__seq_verdict_t verdict = ZMESH__SEQ_NEXT;
    if (sequence > stream->last + 1) {
        *gap_first = stream->last + 1;
        *gap_last = sequence - 1;
        verdict = ZMESH__SEQ_GAP;
    }
    stream->last = sequence;
    return verdict;
}

void
zmesh__streams_drop(zmesh__streams_t *self, const uint8_t publisher[16],
                    const char *topic, size_t topic_size)
{
    if (topic_size > ZMESH_TOPIC_MAX)
        return;
    char key[32 + ZMESH_TOPIC_MAX + 1];
    s_key(key, publisher, topic, topic_size);
    zhashx_delete(self->table, key);
    self->last = NULL;
}

void
zmesh__streams_rewind(zmesh__streams_t *self, const uint8_t publisher[16],
                      const char *topic, size_t topic_size, uint64_t last)
{
    bool created;
    zmesh__stream_stats_t *stream =
        s_lookup(self, publisher, topic, topic_size, &created);
    if (stream)
        stream->last = last;
}

// Deletes the streams `doomed` picks; keys are hex id + topic.
static void
s_delete_where(zmesh__streams_t *self,
               bool (*doomed)(const char *key, const void *arg),
               const void *arg)
{
    zlistx_t *gone = zlistx_new();
    if (!gone)
        return;
    for (void *value = zhashx_first(self->table); value;
         value = zhashx_next(self->table)) {
        const char *key = zhashx_cursor(self->table);
        if (doomed(key, arg))
            zlistx_add_end(gone, (void *)key);
    }
    for (const char *key = zlistx_first(gone); key; key = zlistx_next(gone)) {
        char copy[32 + ZMESH_TOPIC_MAX + 1];
        snprintf(copy, sizeof copy, "%s", key);
        zhashx_delete(self->table, copy);
    }
    zlistx_destroy(&gone);
    self->last = NULL;
}

static bool
s_of_publisher(const char *key, const void *arg)
{
    return strncmp(key, arg, 32) == 0;
}

void
zmesh__streams_forget(zmesh__streams_t *self, const uint8_t publisher[16])
{
    char prefix[33];
    zmesh__id_to_hex(publisher, prefix);
    s_delete_where(self, s_of_publisher, prefix);
}

typedef struct {
    zmesh__streams_keep_fn *keep;
    void *arg;
} s_retain_t;

static bool
s_not_kept(const char *key, const void *arg)
{
    const s_retain_t *retain = arg;
    return !retain->keep(retain->arg, key + 32, strlen(key + 32));
}

void
zmesh__streams_retain(zmesh__streams_t *self, zmesh__streams_keep_fn *keep,
                      void *arg)
{
    s_retain_t retain = {keep, arg};
    s_delete_where(self, s_not_kept, &retain);
}

zmesh__stream_stats_t *
zmesh__streams_current(zmesh__streams_t *self)
{
    return self->last;
}

void
zmesh__streams_each(zmesh__streams_t *self, zmesh__streams_visit_fn *fn,
                    void *arg)
{
    char hex[33];
    for (zmesh__stream_stats_t *stream = zhashx_first(self->table); stream;
         stream = zhashx_next(self->table)) {
        const char *key = zhashx_cursor(self->table);
        memcpy(hex, key, 32);
        hex[32] = '\0';
        fn(arg, hex, key + 32, stream);
    }
}

void
zmesh__streams_clear_marks(zmesh__streams_t *self)
{
    for (zmesh__stream_stats_t *stream = zhashx_first(self->table); stream;
         stream = zhashx_next(self->table))
        stream->mark = 0;
}

size_t
zmesh__streams_size(const zmesh__streams_t *self)
{
    return zhashx_size(self->table);
}

uint64_t
zmesh__streams_resets(const zmesh__streams_t *self)
{
    return self->resets;
}
