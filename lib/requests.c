/*  requests.c - requests in flight, in an array kept in deadline order
    (timeouts are usually all the same, so a new request almost always
    goes at the end, and the next to expire is the first). Requests in
    flight are few; answering searches the array from the front. */
#include "requests.h"
#include "zmesh.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    uint64_t req;
    uint8_t peer[ZMESH__ID_SIZE];
    int64_t deadline;
    bool left; /* zmesh__requests_peer_left */
} s_request_t;

struct zmesh__requests {
    s_request_t *items; /* ascending deadline */
    size_t count;
    size_t max;
    uint64_t last_req;
};

int
zmesh__requests_new(zmesh__requests_t **requests, size_t max)
{
    if (!requests || max == 0)
        return ZMESH_EINVAL;
    zmesh__requests_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZMESH_ENOMEM;
    self->items = calloc(max, sizeof *self->items);
    if (!self->items) {
        free(self);
        return ZMESH_ENOMEM;
    }
    self->max = max;
    *requests = self;
    return 0;
}

void
zmesh__requests_destroy(zmesh__requests_t **requests)
{
    if (!requests || !*requests)
        return;
    free((*requests)->items);
    free(*requests);
    *requests = NULL;
}

uint64_t
zmesh__requests_next(zmesh__requests_t *self)
{
    return ++self->last_req;
}

int
zmesh__requests_add(zmesh__requests_t *self, uint64_t req,
                    const uint8_t peer[ZMESH__ID_SIZE], int64_t deadline)
{
    if (self->count == self->max)
        return ZMESH_EFULL;
    size_t at = self->count;
    while (at > 0 && self->items[at - 1].deadline > deadline)
        at--;
    memmove(&self->items[at + 1], &self->items[at],
            (self->count - at) * sizeof *self->items);
    self->items[at].req = req;
    memcpy(self->items[at].peer, peer, ZMESH__ID_SIZE);
    self->items[at].deadline = deadline;
    self->items[at].left = false;
    self->count++;
    return 0;
}

static int
s_by_deadline(const void *a, const void *b)
{
    int64_t x = ((const s_request_t *)a)->deadline;
    int64_t y = ((const s_request_t *)b)->deadline;
    return (x > y) - (x < y);
}

void
zmesh__requests_peer_left(zmesh__requests_t *self,
                          const uint8_t peer[ZMESH__ID_SIZE], int64_t deadline)
{
    bool moved = false;
    for (size_t i = 0; i < self->count; i++) {
        s_request_t *r = &self->items[i];
        if (memcmp(r->peer, peer, ZMESH__ID_SIZE) != 0)
            continue;
        r->left = true;
        if (r->deadline > deadline) {
            r->deadline = deadline;
            moved = true;
        }
    }
    if (moved)
        qsort(self->items, self->count, sizeof *self->items, s_by_deadline);
}

static void
s_remove(zmesh__requests_t *self, size_t i)
{
    memmove(&self->items[i], &self->items[i + 1],
            (self->count - i - 1) * sizeof *self->items);
    self->count--;
}

bool
zmesh__requests_answer(zmesh__requests_t *self, uint64_t req,
                       const uint8_t peer[ZMESH__ID_SIZE])
{
    for (size_t i = 0; i < self->count; i++)
        if (self->items[i].req == req) {
            // Only the peer asked may answer: a reply naming another's
            // request number is not an answer.
            if (memcmp(self->items[i].peer, peer, ZMESH__ID_SIZE) != 0)
                return false;
            s_remove(self, i);
            return true;
        }
    return false;
}

size_t
zmesh__requests_expire_all(zmesh__requests_t *self, int64_t now,
                           const uint8_t *gone, zmesh__requests_ended_fn *fn,
                           void *arg)
{
    // One pass, keeping the rest in order: a peer that leaves with
    // thousands of requests in flight costs one sweep, not one each.
    size_t kept = 0, ended = 0;
    for (size_t i = 0; i < self->count; i++) {
        s_request_t *r = &self->items[i];
        bool due = r->deadline <= now;
        bool orphan = gone && memcmp(r->peer, gone, ZMESH__ID_SIZE) == 0;
        if (due || orphan) {
            fn(arg, r->req, (orphan && !due) || r->left, r->peer);
            ended++;
        } else
            self->items[kept++] = *r;
        if (!due && !gone) {
            // In deadline order: none later is due either.
            for (size_t j = i + 1; j < self->count; j++)
                self->items[kept++] = self->items[j];
            break;
        }
    }
    self->count = kept;
    return ended;
}

int64_t
zmesh__requests_deadline(const zmesh__requests_t *self)
{
    return self->count > 0 ? self->items[0].deadline : 0;
}

size_t
zmesh__requests_size(const zmesh__requests_t *self)
{
    return self->count;
}
