/*  tap_output.h - how mesh-tap writes what it sees: JSON strings and
    payloads for the --json lines, terminal-safe padded text, colour, hex
    and base64 for the human lines and record files, the clocks, and the
    signal flag every long-running subcommand watches. */
#ifndef TAP_OUTPUT_H_INCLUDED
#define TAP_OUTPUT_H_INCLUDED

#include <stdbool.h>
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

/*  tap_output_end_line for stdout, with the verdict a subcommand acts on:
    -1 to go on; TAP_EXIT_OK when the reader went away (| head), which is
    how a pipe says it has all it wanted; TAP_EXIT_FAILURE after saying why
    for any other write error. */
int tap_output_line_done(FILE *out);

/*  Whether to colour what goes to `out`: only when it is a terminal and
    NO_COLOR is unset or empty (https://no-color.org). */
bool tap_output_color_wanted(FILE *out);

/*  Writes the SGR sequence ESC[codes m when `color`, else nothing. */
void tap_output_sgr(FILE *out, bool color, const char *codes);

/*  tap_output_text inside an SGR sequence (reset after the text, before
    the padding). */
void tap_output_field(FILE *out, bool color, const char *codes,
                      const char *text, size_t width);

/*  Writes bytes as lowercase hex digits, two per byte, nothing between. */
void tap_output_hex(FILE *out, const void *data, size_t size);

/*  Writes a hex dump, 16 bytes a line: indent, offset, the bytes in two
    groups of eight, and the printable ASCII between bars. Every line but
    the last ends with '\n'; the caller ends the last. */
void tap_output_hex_dump(FILE *out, bool color, const void *data, size_t size,
                         const char *indent);

/*  Writes bytes as standard base64 with padding (RFC 4648 section 4). */
void tap_output_base64(FILE *out, const void *data, size_t size);

/*  Decodes standard base64 with padding, strictly: no whitespace, no
    other alphabet, non-zero bits in the padding refused. On success
    *out (malloc'ed, the caller frees it; never NULL, even for "") holds
    *out_size bytes. Returns 0, ZMESH_EPROTO for bad text, ZMESH_ENOMEM. */
int tap_base64_decode(const char *text, size_t size, void **out,
                      size_t *out_size);

/*  Human-readable rate of bytes per second ("512 B/s", "1.5 KiB/s"), into
    a buffer of at least 24 bytes. */
void tap_output_byte_rate(double bytes_per_s, char *out, size_t out_size);

/*  SIGINT and SIGTERM set a flag instead of killing the tool, so it can
    destroy its agent and peers hear BYE; SIGPIPE is ignored, so a reader
    that went away shows up as EPIPE. The handlers do not restart system
    calls, so a blocking read of stdin returns on Ctrl-C. */
void tap_signal_install(void);
bool tap_interrupted(void);

/*  The longest single wait of a receive loop, so a signal is acted on
    within this time, and the wait to use now: at most that, at most what
    is left until `deadline_ms` (tap_monotonic_ms()), never negative. */
#define TAP_POLL_MS 200
int tap_wait_ms(int64_t deadline_ms);

/*  Wall-clock microseconds since the epoch, and a monotonic millisecond
    clock for deadlines. */
int64_t tap_now_us(void);
int64_t tap_monotonic_ms(void);

#endif
