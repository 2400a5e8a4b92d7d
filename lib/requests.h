/*  requests.h - a requester's requests in flight: each has a number, the
    peer it went to and a deadline, and ends exactly once: with its reply,
    at its deadline, or when its peer leaves. Bookkeeping only, for the
    application thread (agent.c); talks to nothing. */
#ifndef ZMESH_REQUESTS_H_INCLUDED
#define ZMESH_REQUESTS_H_INCLUDED

#include "codec.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct zmesh__requests zmesh__requests_t;

/*  At most `max` requests in flight. */
int zmesh__requests_new(zmesh__requests_t **requests, size_t max);
void zmesh__requests_destroy(zmesh__requests_t **requests);

/*  The number the next request gets (1, 2, ...). */
uint64_t zmesh__requests_next(zmesh__requests_t *self);

/*  Records request `req` to `peer`, due at `deadline` (monotonic ms).
    ZMESH_EFULL at the limit, ZMESH_ENOMEM. */
int zmesh__requests_add(zmesh__requests_t *self, uint64_t req,
                        const uint8_t peer[ZMESH__ID_SIZE], int64_t deadline);

/*  Ends request `req` for its reply from `peer`: true if it was in flight
    (and was sent to that peer), false for an unknown or late reply. */
bool zmesh__requests_answer(zmesh__requests_t *self, uint64_t req,
                            const uint8_t peer[ZMESH__ID_SIZE]);

/*  Marks the requests sent to `peer`, which left, to end as left at
    `deadline` at the latest: a reply it sent on the data plane just
    before it left may still be on its way, behind the news that it left
    (proto/wire.md#requests-on-the-data-plane). */
void zmesh__requests_peer_left(zmesh__requests_t *self,
                               const uint8_t peer[ZMESH__ID_SIZE],
                               int64_t deadline);

/*  Ends, in one pass, every request due at `now` or sent to `gone`
    (NULL: none), calling `fn` for each (left: its peer left before its
    deadline, or was marked as left). Returns how many ended. */
typedef void(zmesh__requests_ended_fn)(void *arg, uint64_t req, bool left,
                                       const uint8_t peer[ZMESH__ID_SIZE]);
size_t zmesh__requests_expire_all(zmesh__requests_t *self, int64_t now,
                                  const uint8_t *gone,
                                  zmesh__requests_ended_fn *fn, void *arg);

/*  The earliest deadline, 0 when nothing is in flight. */
int64_t zmesh__requests_deadline(const zmesh__requests_t *self);
size_t zmesh__requests_size(const zmesh__requests_t *self);

#endif
