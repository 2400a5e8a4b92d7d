/*  tap_output.c - the formatting pieces mesh-tap's subcommands share.
    JSON escaping goes through the library's zmesh_msgpack_to_json (the
    string packed as msgpack first), so the tool and the library can never
    disagree on what a valid JSON string is. Human output is made safe for
    terminals, because topics, names and headers come from other processes;
    colour is only ever added around such text, never taken from it. Also
    the clocks and the signal flag the receive loops share. Nothing here
    knows about agents or options.
*/
#include "tap_output.h"

#include "tap_options.h"

#include "zmesh.h"

#include <errno.h>
#include <msgpack.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int
tap_output_json_string(FILE *out, const char *text)
{
    size_t size = strlen(text);
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&sbuf);
    msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
    int rc = ZMESH_ENOMEM;
    if (msgpack_pack_str_with_body(&pk, text, size) == 0) {
        char *json = NULL;
        rc = zmesh_msgpack_to_json(sbuf.data, sbuf.size, &json);
        if (rc == 0)
            fputs(json, out);
        free(json);
    }
    msgpack_sbuffer_destroy(&sbuf);
    if (rc != 0)
        fputs("\"\"", out); // keep the line valid JSON whatever happened
    return rc;
}

int
tap_output_json_payload(FILE *out, const void *payload, size_t size)
{
    char *json = NULL;
    int rc = zmesh_msgpack_to_json(payload, size, &json);
    fputs(rc == 0 ? json : "null", out);
    free(json);
    return rc;
}

size_t
tap_output_columns(const char *text)
{
    size_t columns = 0;
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        if ((*c & 0xC0) != 0x80) // not a UTF-8 continuation byte
            columns++;
    return columns;
}

void
tap_output_text(FILE *out, const char *text, size_t width)
{
    for (const unsigned char *c = (const unsigned char *)text; *c; c++)
        fputc(*c < 0x20 || *c == 0x7F ? '?' : *c, out);
    for (size_t n = tap_output_columns(text); n < width; n++)
        fputc(' ', out);
}

void
tap_output_clock(int64_t us, char out[16])
{
    time_t seconds = (time_t)(us / 1000000);
    int ms = (int)((us % 1000000) / 1000);
    if (ms < 0) { // before 1970: C division truncates toward zero
        seconds--;
        ms += 1000;
    }
    struct tm local;
    if (!localtime_r(&seconds, &local)) {
        strcpy(out, "??:??:??.???");
        return;
    }
    // Unsigned, so the compiler can see each field fits its width.
    snprintf(out, 16, "%02u:%02u:%02u.%03u", (unsigned)local.tm_hour % 100u,
             (unsigned)local.tm_min % 100u, (unsigned)local.tm_sec % 100u,
             (unsigned)ms % 1000u);
}

int
tap_output_end_line(FILE *out)
{
    errno = 0;
    fputc('\n', out);
    if (fflush(out) != 0 || ferror(out)) {
        if (errno == 0)
            errno = EIO;
        return -1;
    }
    return 0;
}

int64_t
tap_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
tap_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int
tap_output_line_done(FILE *out)
{
    if (tap_output_end_line(out) == 0)
        return -1;
    if (errno == EPIPE)
        return TAP_EXIT_OK;
    tap_error("cannot write to stdout: %s", strerror(errno));
    return TAP_EXIT_FAILURE;
}

bool
tap_output_color_wanted(FILE *out)
{
    const char *no_color = getenv("NO_COLOR");
    if (no_color && no_color[0] != '\0')
        return false;
    return isatty(fileno(out)) == 1;
}

void
tap_output_sgr(FILE *out, bool color, const char *codes)
{
    if (color)
        fprintf(out, "\033[%sm", codes);
}

void
tap_output_field(FILE *out, bool color, const char *codes, const char *text,
                 size_t width)
{
    tap_output_sgr(out, color, codes);
    tap_output_text(out, text, 0);
    tap_output_sgr(out, color, "0");
    for (size_t n = tap_output_columns(text); n < width; n++)
        fputc(' ', out);
}

void
tap_output_hex(FILE *out, const void *data, size_t size)
{
    const unsigned char *bytes = data;
    for (size_t i = 0; i < size; i++)
        fprintf(out, "%02x", bytes[i]);
}

void
tap_output_hex_dump(FILE *out, bool color, const void *data, size_t size,
                    const char *indent)
{
    const unsigned char *bytes = data;
    for (size_t line = 0; line < size || (size == 0 && line == 0); line += 16) {
        if (line > 0)
            fputc('\n', out);
        fputs(indent, out);
        tap_output_sgr(out, color, "2");
        fprintf(out, "%04zx", line);
        tap_output_sgr(out, color, "0");
        fputs("  ", out);
        for (size_t i = line; i < line + 16; i++) {
            if (i == line + 8)
                fputc(' ', out);
            if (i < size)
                fprintf(out, "%02x ", bytes[i]);
            else
                fputs("   ", out);
        }
        fputs(" |", out);
        for (size_t i = line; i < line + 16 && i < size; i++)
            fputc(bytes[i] >= 0x20 && bytes[i] < 0x7F ? bytes[i] : '.', out);
        fputc('|', out);
        if (size == 0)
            break;
    }
}

static const char s_base64[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void
tap_output_base64(FILE *out, const void *data, size_t size)
{
    const unsigned char *bytes = data;
    size_t i = 0;
    for (; i + 3 <= size; i += 3) {
        unsigned long group = (unsigned long)bytes[i] << 16 |
                              (unsigned long)bytes[i + 1] << 8 | bytes[i + 2];
        fputc(s_base64[group >> 18 & 63], out);
        fputc(s_base64[group >> 12 & 63], out);
        fputc(s_base64[group >> 6 & 63], out);
        fputc(s_base64[group & 63], out);
    }
    if (i < size) {
        unsigned long group = (unsigned long)bytes[i] << 16;
        if (i + 1 < size)
            group |= (unsigned long)bytes[i + 1] << 8;
        fputc(s_base64[group >> 18 & 63], out);
        fputc(s_base64[group >> 12 & 63], out);
        fputc(i + 1 < size ? s_base64[group >> 6 & 63] : '=', out);
        fputc('=', out);
    }
}

/*  The value of one base64 digit, or -1. */
static int
s_base64_value(char c)
{
    const char *at = c ? strchr(s_base64, c) : NULL;
    return at ? (int)(at - s_base64) : -1;
}

int
tap_base64_decode(const char *text, size_t size, void **out, size_t *out_size)
{
    if (size % 4 != 0)
        return ZMESH_EPROTO;
    unsigned char *bytes = malloc(size / 4 * 3 + 1);
    if (!bytes)
        return ZMESH_ENOMEM;
    size_t used = 0;
    for (size_t i = 0; i < size; i += 4) {
        bool last = i + 4 == size;
        int pad = 0;
        if (last && text[i + 3] == '=')
            pad = text[i + 2] == '=' ? 2 : 1;
        unsigned long group = 0;
        for (int j = 0; j < 4; j++) {
            int value = j >= 4 - pad ? 0 : s_base64_value(text[i + j]);
            if (value < 0) {
                free(bytes);
                return ZMESH_EPROTO;
            }
            group = group << 6 | (unsigned long)value;
        }
        // The bits under the padding must be zero: one text per payload.
        if ((pad == 1 && (group & 0xFF) != 0) ||
            (pad == 2 && (group & 0xFFFF) != 0)) {
            free(bytes);
            return ZMESH_EPROTO;
        }
        bytes[used++] = (unsigned char)(group >> 16);
        if (pad < 2)
            bytes[used++] = (unsigned char)(group >> 8 & 0xFF);
        if (pad < 1)
            bytes[used++] = (unsigned char)(group & 0xFF);
    }
    *out = bytes;
    *out_size = used;
    return 0;
}

void
tap_output_byte_rate(double bytes_per_s, char *out, size_t out_size)
{
    static const char *units[] = {"B/s", "KiB/s", "MiB/s", "GiB/s"};
    size_t unit = 0;
    while (bytes_per_s >= 1024.0 && unit + 1 < sizeof units / sizeof *units) {
        bytes_per_s /= 1024.0;
        unit++;
    }
    if (unit == 0)
        snprintf(out, out_size, "%.0f %s", bytes_per_s, units[unit]);
    else
        snprintf(out, out_size, "%.1f %s", bytes_per_s, units[unit]);
}

static volatile sig_atomic_t s_interrupted;

static void
s_on_signal(int signal_number)
{
    (void)signal_number;
    s_interrupted = 1;
}

void
tap_signal_install(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    sigemptyset(&action.sa_mask);
    action.sa_handler = s_on_signal;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    action.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &action, NULL);
}

bool
tap_interrupted(void)
{
    return s_interrupted != 0;
}

int
tap_wait_ms(int64_t deadline_ms)
{
    int64_t left = deadline_ms - tap_monotonic_ms();
    if (left <= 0)
        return 0;
    return left < TAP_POLL_MS ? (int)left : TAP_POLL_MS;
}
