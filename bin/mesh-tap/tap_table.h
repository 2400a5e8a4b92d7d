/*  tap_table.h - a string-keyed table of event counters, for what mesh-tap
    tallies per topic or per publisher (stats) and the sets of topics it
    has seen (pub --stdin, play). Bounded: past its limit of entries it
    refuses new keys, so a mesh with endless distinct topics cannot make
    the tool grow without end. */
#ifndef TAP_TABLE_H_INCLUDED
#define TAP_TABLE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char *key;   // owned by the table
    char *label; // owned by the table; NULL until tap_table_set_label
    uint64_t events_total;
    uint64_t bytes_total;
    uint64_t events; // in the current interval
    uint64_t bytes;
} tap_entry_t;

typedef struct tap_table tap_table_t;

/*  Creates an empty table holding at most `max_entries` keys. Returns 0 or
    ZMESH_ENOMEM; on success *table is the caller's. */
int tap_table_new(tap_table_t **table, size_t max_entries);

/*  Frees the table and sets *table to NULL; accepts NULL. */
void tap_table_destroy(tap_table_t **table);

/*  The entry for `key`, created (all counters 0) when missing; *created
    says which. NULL when the table is full or memory ran out. The pointer
    stays valid until the next call that may create an entry. */
tap_entry_t *tap_table_get(tap_table_t *table, const char *key, bool *created);

/*  Sets an entry's label (a copy of `label`). Returns 0 or ZMESH_ENOMEM. */
int tap_table_set_label(tap_entry_t *entry, const char *label);

/*  Entries in the order their keys were first seen. */
size_t tap_table_size(const tap_table_t *table);
tap_entry_t *tap_table_entry(tap_table_t *table, size_t i);

#endif
