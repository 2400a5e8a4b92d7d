/*  tap_output.h - how mesh-tap writes what it sees: JSON strings and
    payloads for the --json lines, terminal-safe padded text and clock
    times for the human lines, and the clocks themselves. */
#ifndef TAP_OUTPUT_H_INCLUDED
#define TAP_OUTPUT_H_INCLUDED

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/*  Writes `text` as a quoted JSON string; bytes that are not UTF-8 become
    U+FFFD (the library's own msgpack-to-JSON rendering does the escaping).
    Returns 0 or a ZMESH_E* code. */
int tap_output_json_string(FILE *out, const char *text);

/*  Writes a msgpack payload as compact JSON. When it cannot be rendered,
    writes null instead and returns the ZMESH_E* code (0 otherwise). */
int tap_output_json_payload(FILE *out, const void *payload, size_t size);

/*  Writes `text` for a terminal: control bytes become '?', so a peer's
    name cannot move the cursor; then pads with spaces to `width` columns
    (one column per code point). */
void tap_output_text(FILE *out, const char *text, size_t width);

/*  Columns `text` takes in tap_output_text. */
size_t tap_output_columns(const char *text);

/*  Formats microseconds since the epoch as local "HH:MM:SS.mmm". */
void tap_output_clock(int64_t us, char out[16]);

/*  Ends a line: writes '\n' and flushes, since a pipe reader should see
    each event as it comes. Returns 0, or -1 when stdout is gone (errno
    says why; EPIPE when the reader has exited). */
int tap_output_end_line(FILE *out);

/*  Wall-clock microseconds since the epoch, and a monotonic millisecond
    clock for deadlines. */
int64_t tap_now_us(void);
int64_t tap_monotonic_ms(void);

#endif
