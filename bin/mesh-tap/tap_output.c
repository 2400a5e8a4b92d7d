/*  tap_output.c - the formatting pieces mesh-tap's subcommands share.
    JSON escaping goes through the library's zmesh_msgpack_to_json (the
    string packed as msgpack first), so the tool and the library can never
    disagree on what a valid JSON string is. Human output is made safe for
    terminals, because topics, names and headers come from other processes.
    Nothing here knows about agents or options.
*/
#include "tap_output.h"

#include "zmesh.h"

#include <errno.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
