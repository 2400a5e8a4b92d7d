/*  tap_recfile.h - the record file mesh-tap record writes and mesh-tap play
    reads (docs/mesh-tap.md#record-files): NDJSON, an optional header line
    first, then one line per event with its payload as base64 of the exact
    msgpack bytes, so a replay sends what was received, byte for byte. */
#ifndef TAP_RECFILE_H_INCLUDED
#define TAP_RECFILE_H_INCLUDED

#include "zmesh.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define TAP_RECFILE_FORMAT "mesh-tap-record"
#define TAP_RECFILE_VERSION 1

/*  Writes the header line (without its newline): format, version, the
    mesh, the patterns recorded and when recording started. */
void tap_recfile_write_header(FILE *out, const char *mesh, char **patterns,
                              size_t patterns_count, int64_t started_us);

/*  Writes one message event as a line (without its newline); `recv_us` is
    when the tap received it, on its own clock. */
void tap_recfile_write_event(FILE *out, const zmesh_event_t *event,
                             int64_t recv_us);

typedef struct {
    bool header; // the line was a header; nothing else is set
    char topic[ZMESH_TOPIC_MAX + 1];
    void *payload; // malloc'ed msgpack bytes
    size_t size;
    int64_t recv_ts;
} tap_record_t;

/*  Parses one line (without its newline). `first`: whether it is the
    file's first line, the only place a header may be. Returns 0, or
    ZMESH_EPROTO with a reason (a phrase, no line number) in `why`, or
    ZMESH_ENOMEM. Clear the record with tap_record_clear afterwards. */
int tap_recfile_parse(const char *text, size_t size, bool first,
                      tap_record_t *record, char *why, size_t why_size);

void tap_record_clear(tap_record_t *record);

#endif
