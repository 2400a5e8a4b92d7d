/*  tap_relay_args.h - the syntax of what mesh-tap's relay commands take on
    the command line: stream and consumer names, and times (read --since,
    sub --durable --start time:...). Checked before the tap joins the mesh,
    so a typo exits 2 at once. */
#ifndef TAP_RELAY_ARGS_H_INCLUDED
#define TAP_RELAY_ARGS_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

/*  A time as RFC 3339 (2026-11-23T17:00:00Z, with optional fraction and
    offset) or a duration meaning that long ago (30s, 5m, 2h, 1h30m, 7d,
    500ms), in microseconds since the epoch. False for anything else. */
bool tap_parse_time(const char *text, int64_t *us);

/*  A stream name: 1..64 bytes of [A-Za-z0-9_-]. */
bool tap_stream_name_ok(const char *name);

/*  A durable consumer's name: 1..64 bytes of [A-Za-z0-9_.-]. */
bool tap_consumer_name_ok(const char *name);

#endif
