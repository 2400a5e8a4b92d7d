/*  confirms.c - events waiting for a relay's confirm. Each is on two
    lists: in the order it was published (its deadline order, since the
    timeout is the same for all; a changed timeout applies to later
    events) and in the order it is due to be sent again. Both heads are
    what is due next, so the service never scans what is not due. An
    event is one allocation (its key inside) and a reference to the
    ZeroMQ message that was published, not a copy of it. */
#include "confirms.h"

#include "zmesh.h"

#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

typedef struct s_entry {
    struct s_entry *add_prev, *add_next;   /* publish order */
    struct s_entry *send_prev, *send_next; /* resend order */
    char *topic;                           /* inside key */
    uint64_t seq;
    zmq_msg_t frame;
    size_t size;
    int64_t deadline_ms;
    int64_t send_at_ms;
    char key[]; /* "seq topic", the table's */
} s_entry_t;

typedef struct {
    s_entry_t *head, *tail;
} s_list_t;

struct zmesh__confirms {
    zhashx_t *table; /* key -> s_entry_t * (owns nothing: entries freed here) */
    s_list_t by_add;
    s_list_t by_send;
    size_t bytes;
};

#define S_KEY_MAX (24 + ZMESH_TOPIC_MAX + 1)

// "seq topic" into out; returns its length. By hand: it is made for
// every confirmed publish and every event a confirm names.
static size_t
s_key(char out[S_KEY_MAX], const char *topic, uint64_t seq)
{
    char digits[20];
    size_t n = 0;
    do
        digits[n++] = (char)('0' + seq % 10);
    while ((seq /= 10) > 0);
    for (size_t i = 0; i < n; i++)
        out[i] = digits[n - 1 - i];
    out[n++] = ' ';
    size_t topic_size = strnlen(topic, ZMESH_TOPIC_MAX);
    memcpy(out + n, topic, topic_size);
    out[n + topic_size] = '\0';
    return n + topic_size;
}

// The two lists differ only in their links: one pair of helpers each way.
#define S_LIST_OPS(name, prev, next)                                           \
    static void s_##name##_append(s_list_t *list, s_entry_t *e)                \
    {                                                                          \
        e->next = NULL;                                                        \
        e->prev = list->tail;                                                  \
        if (list->tail)                                                        \
            list->tail->next = e;                                              \
        else                                                                   \
            list->head = e;                                                    \
        list->tail = e;                                                        \
    }                                                                          \
    static void s_##name##_unlink(s_list_t *list, s_entry_t *e)                \
    {                                                                          \
        if (e->prev)                                                           \
            e->prev->next = e->next;                                           \
        else                                                                   \
            list->head = e->next;                                              \
        if (e->next)                                                           \
            e->next->prev = e->prev;                                           \
        else                                                                   \
            list->tail = e->prev;                                              \
        e->prev = e->next = NULL;                                              \
    }

S_LIST_OPS(add, add_prev, add_next)
S_LIST_OPS(send, send_prev, send_next)

int
zmesh__confirms_new(zmesh__confirms_t **confirms)
{
    if (!confirms)
        return ZMESH_EINVAL;
    zmesh__confirms_t *self = calloc(1, sizeof *self);
    if (!self || !(self->table = zhashx_new())) {
        free(self);
        return ZMESH_ENOMEM;
    }
    *confirms = self;
    return 0;
}

static void
s_forget(zmesh__confirms_t *self, s_entry_t *e)
{
    s_add_unlink(&self->by_add, e);
    s_send_unlink(&self->by_send, e);
    zhashx_delete(self->table, e->key);
    self->bytes -= e->size;
    zmq_msg_close(&e->frame);
    free(e);
}

void
zmesh__confirms_destroy(zmesh__confirms_t **confirms)
{
    if (!confirms || !*confirms)
        return;
    zmesh__confirms_t *self = *confirms;
    while (self->by_add.head)
        s_forget(self, self->by_add.head);
    zhashx_destroy(&self->table);
    free(self);
    *confirms = NULL;
}

int
zmesh__confirms_add(zmesh__confirms_t *self, const char *topic, uint64_t seq,
                    zmq_msg_t *frame, int64_t now_ms, int timeout_ms)
{
    size_t size = zmq_msg_size(frame);
    if (zhashx_size(self->table) >= ZMESH__CONFIRMS_EVENTS_MAX ||
        size > ZMESH__CONFIRMS_BYTES_MAX - self->bytes)
        return ZMESH_EFULL;
    char key[S_KEY_MAX];
    size_t key_size = s_key(key, topic, seq);
    s_entry_t *e = malloc(sizeof *e + key_size + 1);
    if (!e)
        return ZMESH_ENOMEM;
    memcpy(e->key, key, key_size + 1);
    zmq_msg_init(&e->frame);
    if (zmq_msg_copy(&e->frame, frame) != 0 ||
        zhashx_insert(self->table, e->key, e) != 0) {
        zmq_msg_close(&e->frame);
        free(e);
        return ZMESH_ENOMEM;
    }
    e->add_prev = e->add_next = e->send_prev = e->send_next = NULL;
    e->topic = strchr(e->key, ' ') + 1;
    e->seq = seq;
    e->size = size;
    e->deadline_ms = now_ms + timeout_ms;
    e->send_at_ms = now_ms + ZMESH__CONFIRMS_RESEND_MS;
    self->bytes += size;
    s_add_append(&self->by_add, e);
    s_send_append(&self->by_send, e);
    return 0;
}

size_t
zmesh__confirms_settle(zmesh__confirms_t *self, const char *topic,
                       uint64_t first, uint64_t last, int status,
                       const char *reason, zmesh__confirms_report_fn *report,
                       void *arg)
{
    // A range can name far more than is waiting (a relay confirming a
    // long run): look up at most what is kept.
    size_t settled = 0;
    if (first > last || last - first >= zhashx_size(self->table)) {
        for (s_entry_t *e = self->by_add.head, *next; e; e = next) {
            next = e->add_next;
            if (e->seq >= first && e->seq <= last &&
                strcmp(e->topic, topic) == 0) {
                report(arg, e->topic, e->seq, status, reason);
                s_forget(self, e);
                settled++;
            }
        }
        return settled;
    }
    for (uint64_t seq = first;; seq++) {
        char key[S_KEY_MAX];
        s_key(key, topic, seq);
        s_entry_t *e = zhashx_lookup(self->table, key);
        if (e) {
            report(arg, e->topic, e->seq, status, reason);
            s_forget(self, e);
            settled++;
        }
        if (seq == last)
            break;
    }
    return settled;
}

void
zmesh__confirms_service(zmesh__confirms_t *self, int64_t now_ms,
                        const char *timeout_reason, size_t batch_max,
                        size_t batch_bytes, zmesh__confirms_report_fn *report,
                        zmesh__confirms_resend_fn *resend, void *arg)
{
    while (self->by_add.head && self->by_add.head->deadline_ms <= now_ms) {
        s_entry_t *e = self->by_add.head;
        report(arg, e->topic, e->seq, ZMESH_ETIMEDOUT, timeout_reason);
        s_forget(self, e);
    }
    if (batch_max == 0)
        return;
    const void **frames = calloc(batch_max, sizeof *frames);
    size_t *sizes = calloc(batch_max, sizeof *sizes);
    s_entry_t **taken = calloc(batch_max, sizeof *taken);
    // Batches until nothing is due, or a batch could not go out (then the
    // rest would not either).
    while (frames && sizes && taken && self->by_send.head &&
           self->by_send.head->send_at_ms <= now_ms) {
        size_t count = 0, bytes = 0;
        for (s_entry_t *e = self->by_send.head;
             e && e->send_at_ms <= now_ms && count < batch_max;
             e = e->send_next) {
            if (count > 0 && bytes + e->size > batch_bytes)
                break;
            frames[count] = zmq_msg_data(&e->frame);
            sizes[count] = e->size;
            taken[count++] = e;
            bytes += e->size;
        }
        int rc = resend(arg, frames, sizes, count);
        // Sent or not, they wait a resend period: a missing relay is
        // asked again then, not in a busy loop.
        for (size_t i = 0; i < count; i++) {
            s_send_unlink(&self->by_send, taken[i]);
            taken[i]->send_at_ms = now_ms + ZMESH__CONFIRMS_RESEND_MS;
            s_send_append(&self->by_send, taken[i]);
        }
        if (rc < 0)
            break;
    }
    free(frames);
    free(sizes);
    free(taken);
}

int64_t
zmesh__confirms_deadline(const zmesh__confirms_t *self)
{
    if (!self->by_add.head)
        return 0;
    int64_t a = self->by_add.head->deadline_ms;
    int64_t b = self->by_send.head->send_at_ms;
    return a < b ? a : b;
}

size_t
zmesh__confirms_size(const zmesh__confirms_t *self)
{
    return zhashx_size(self->table);
}
