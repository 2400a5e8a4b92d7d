/*  resend.c - answers NAK and HISTORY with REPAIR messages. The retain
    buffer lends its frames only while its lock is held, and the
    publishing thread waits on that lock, so the visit only copies frames
    into batches that fit the size limit; they are sent after it, the last
    one marked done. A NAK with join = 1 is answered only with what was
    published after the requester's subscription reached us, and vouched
    (join = 1 in the last answer) when none of the stream's events since
    then was lost from the buffer.
*/
#include "resend.h"
#include "log.h"
#include "zmesh.h"

#include <stdlib.h>
#include <string.h>

#define S_FRAMES_MAX 4096 /* per REPAIR, the codec's limit */

typedef struct s_batch {
    void *frames[S_FRAMES_MAX];
    size_t sizes[S_FRAMES_MAX];
    size_t count;
    size_t bytes;
    struct s_batch *next;
} s_batch_t;

typedef struct {
    s_batch_t *head;
    s_batch_t *tail;
    size_t budget;
    size_t total; /* frame bytes taken */
    size_t limit; /* ... at most */
    bool short_of_memory;
    bool cut; /* the limit left some out */
} s_batches_t;

static bool
s_visit(void *arg, uint64_t seq, const void *frame, size_t size)
{
    (void)seq;
    s_batches_t *all = arg;
    if (all->total + size > all->limit) {
        all->cut = true;
        return false;
    }
    s_batch_t *batch = all->tail;
    // Each frame costs its bytes and a bin header (at most 5 bytes); the
    // envelope fits in what the control sockets allow beyond the largest
    // event (control.c), so a single frame always goes.
    if (!batch || (batch->count > 0 && (batch->bytes + size + 5 > all->budget ||
                                        batch->count == S_FRAMES_MAX))) {
        batch = calloc(1, sizeof *batch);
        if (!batch) {
            all->short_of_memory = true;
            return false;
        }
        if (all->tail)
            all->tail->next = batch;
        else
            all->head = batch;
        all->tail = batch;
    }
    void *copy = malloc(size);
    if (!copy) {
        all->short_of_memory = true;
        return false;
    }
    memcpy(copy, frame, size);
    batch->frames[batch->count] = copy;
    batch->sizes[batch->count++] = size;
    batch->bytes += size + 5;
    all->total += size;
    return true;
}

size_t
zmesh__resend(zmesh__peer_t *peer, const uint8_t self_id[ZMESH__ID_SIZE],
              zmesh__retain_t *retained, const zmesh__msg_t *request,
              size_t budget, size_t limit, size_t *bytes)
{
    s_batches_t all = {NULL, NULL, budget, 0, limit, false, false};
    bool vouched = false;
    if (retained && request->type == ZMESH__MSG_NAK) {
        size_t topic_size = strlen(request->topic);
        const uint8_t *since = request->join ? request->sender : NULL;
        zmesh__retain_range(retained, request->topic, topic_size,
                            request->first, request->last, since, s_visit,
                            &all);
        // Checked after the visit: nothing of the stream lost since the
        // mark up to now means nothing was missing from the visit.
        vouched = request->join && !all.short_of_memory && !all.cut &&
                  zmesh__retain_intact(retained, request->sender,
                                       request->topic, topic_size);
        zmesh__log(
            ZMESH_LOG_DEBUG, "NAK from %s for %s %llu..%llu%s: %zu frames held",
            zmesh__peer_id_hex(peer), request->topic,
            (unsigned long long)request->first,
            (unsigned long long)request->last, request->join ? " (join)" : "",
            all.head ? all.head->count : (size_t)0);
    } else if (retained && request->type == ZMESH__MSG_HISTORY)
        zmesh__retain_history(retained, request->pattern, s_visit, &all);
    if (all.short_of_memory)
        zmesh__log(ZMESH_LOG_WARNING,
                   "out of memory answering %s: part of "
                   "the answer is left out",
                   zmesh__peer_id_hex(peer));

    zmesh__msg_t msg;
    memset(&msg, 0, sizeof msg);
    msg.type = ZMESH__MSG_REPAIR;
    memcpy(msg.sender, self_id, ZMESH__ID_SIZE);
    msg.req = request->req;
    size_t sent = 0;
    bool failed = false;
    s_batch_t empty = {.count = 0};
    s_batch_t *batch = all.head ? all.head : &empty;
    while (batch) {
        s_batch_t *next = batch->next;
        msg.frames = batch->frames;
        msg.frame_sizes = batch->sizes;
        msg.frames_count = batch->count;
        msg.done = next == NULL;
        msg.join = msg.done && vouched;
        // After one failure (the requester's queue is full, or it left)
        // the rest is not worth sending: its repair times out and it
        // reports what it misses.
        if (!failed) {
            int rc = zmesh__peer_send(peer, &msg);
            if (rc == 0)
                sent += batch->count;
            else {
                failed = true;
                zmesh__log(ZMESH_LOG_DEBUG, "REPAIR to %s not sent: %s",
                           zmesh__peer_id_hex(peer), zmesh_strerror(rc));
            }
        }
        for (size_t i = 0; i < batch->count; i++)
            free(batch->frames[i]);
        if (batch != &empty)
            free(batch);
        batch = next;
    }
    *bytes = all.total;
    if (all.cut)
        zmesh__log(ZMESH_LOG_DEBUG,
                   "answer to %s cut at %zu bytes: it asks faster than we "
                   "may resend",
                   zmesh__peer_id_hex(peer), limit);
    return sent;
}
