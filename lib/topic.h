/*  topic.h - topic and pattern syntax, matching, pattern intersection, the
    ZeroMQ subscription prefix of a pattern, and a subscription index.
    Pure functions and data structures; talks to nothing else. The syntax
    is specified in proto/wire.md#topics. */
#ifndef ZMESH_TOPIC_H_INCLUDED
#define ZMESH_TOPIC_H_INCLUDED

#include "zmesh.h"

#include <stdbool.h>
#include <stddef.h>

/*  Validates a topic of `size` bytes (not NUL-terminated necessarily).
    Returns 0, ZMESH_ETOPIC (syntax: empty, too long, empty token, a
    wildcard, space, control character, invalid UTF-8) or ZMESH_ERESERVED
    (valid syntax but starts with '$'; callers that accept reserved topics,
    like the receive path, treat that as valid). */
int zmesh__topic_check(const char *topic, size_t size);

/*  Validates a pattern: ZMESH_EPATTERN for bad syntax ('*' or '>' inside a
    token, '>' not last, and every topic rule), else 0. '$' patterns are
    valid. */
int zmesh__pattern_check(const char *pattern, size_t size);

/*  True when `topic` matches `pattern`. Both must be valid; `>` needs at
    least one token. A pattern without a leading '$' never matches a '$'
    topic through a wildcard in its first token ('>' does not match
    "$mesh.x"), as in NATS. */
bool zmesh__pattern_match(const char *pattern, size_t pattern_size,
                          const char *topic, size_t topic_size);

/*  True when some topic matches both patterns (a publisher advertising `a`
    may publish something a subscriber to `b` wants). Both must be valid. */
bool zmesh__patterns_intersect(const char *a, size_t a_size, const char *b,
                               size_t b_size);

/*  Writes the ZeroMQ SUB prefix filter for a valid pattern into `out`
    (capacity `cap`, at least ZMESH_TOPIC_MAX + 2) and returns its length:
    the literal bytes before the first wildcard token (ending with the '.'
    before it); for a pattern with no wildcard, the whole topic followed by
    one NUL byte, since a data frame starts with the topic and a NUL
    (proto/wire.md#event-frame), so the filter then matches that topic
    exactly. */
size_t zmesh__pattern_filter(const char *pattern, size_t size, char *out,
                             size_t cap);

/*  A set of patterns with reference counts, answering "does any pattern
    match this topic" in time that depends on the topic's token count, not
    on how many patterns there are (a trie over tokens). */
typedef struct zmesh__topic_index zmesh__topic_index_t;

int zmesh__topic_index_new(zmesh__topic_index_t **index);
void zmesh__topic_index_destroy(zmesh__topic_index_t **index);

/*  Adds one reference to a valid pattern. Returns 1 if the pattern is new
    in the index, 0 if it was there already, ZMESH_EPATTERN (invalid),
    ZMESH_ENOMEM. */
int zmesh__topic_index_add(zmesh__topic_index_t *self, const char *pattern);

/*  Drops one reference. Returns 1 if the pattern is now gone from the
    index, 0 if references remain, ZMESH_ENOTFOUND if it was not there (or
    is not a valid pattern). */
int zmesh__topic_index_remove(zmesh__topic_index_t *self, const char *pattern);

/*  True when any pattern in the index matches the topic. */
bool zmesh__topic_index_match(const zmesh__topic_index_t *self,
                              const char *topic, size_t size);

/*  Number of distinct patterns, and the i-th one in a stable order (valid
    until the index changes). */
size_t zmesh__topic_index_size(const zmesh__topic_index_t *self);
const char *zmesh__topic_index_at(const zmesh__topic_index_t *self, size_t i);

#endif
