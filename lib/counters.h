/*  counters.h - named groups of counters ("agent", "peer" <id>, "topic"
    <topic>): what zmesh_agent_counters returns and what a STATS answer
    carries (proto/wire.md#stats). Building, lookup and the public
    accessors; talks to nothing. */
#ifndef ZMESH_COUNTERS_H_INCLUDED
#define ZMESH_COUNTERS_H_INCLUDED

#include "codec.h"
#include "zmesh.h"

/*  A new, empty set; NULL on out of memory. */
zmesh_counters_t *zmesh__counters_new(void);

/*  Appends a group and returns it (NULL on out of memory or past 1024
    groups, the wire's limit). */
zmesh__counters_t *zmesh__counters_group(zmesh_counters_t *self,
                                         const char *kind, const char *name);

/*  Sets `key` in a group: adds it, or adds `value` to it when it is there
    already (so groups can be summed). ZMESH_ENOMEM, or ZMESH_EINVAL past
    64 keys. */
int zmesh__counters_add(zmesh__counters_t *group, const char *key,
                        uint64_t value);

/*  The group of that kind and name, or NULL. */
zmesh__counters_t *zmesh__counters_find(zmesh_counters_t *self,
                                        const char *kind, const char *name);

/*  Lends the groups to a STATS message being encoded. */
void zmesh__counters_lend(const zmesh_counters_t *self, zmesh__msg_t *msg);

/*  Takes the groups of a decoded STATS answer (msg keeps none). NULL on
    out of memory. The set is read-only: its groups have room only for
    the keys they came with. */
zmesh_counters_t *zmesh__counters_take(zmesh__msg_t *msg);

#endif
