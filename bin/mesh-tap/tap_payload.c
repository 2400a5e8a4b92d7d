/*  tap_payload.c - the JSON payloads mesh-tap takes on its command line,
    shared by pub, send and request so the three accept the same text and
    refuse it in the same words. The library's zmesh_json_to_msgpack says
    what JSON is; this file only reads the text (an argument, or all of
    stdin for "-") and, when the library refuses it, shows the start of it
    with a hint, since a shell eats quotes and JSON needs them. Lines of
    NDJSON read one by one (pub --stdin, request --stdin) are the callers'.
*/
#include "tap_payload.h"

#include "tap_output.h"

#include "zmesh.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

/*  Largest payload read from stdin; the agent's default frame limit is far
    below this anyway. */
#define S_STDIN_MAX (64u * 1024 * 1024)

/*  Reads all of stdin into a NUL-terminated buffer (the caller frees it).
    Returns 0 or an exit code after saying what went wrong. */
static int
s_read_stdin(const tap_options_t *opts, char **text, size_t *size)
{
    size_t used = 0, cap = 4096;
    char *buf = malloc(cap);
    while (buf) {
        if (used == cap - 1) {
            if (cap > S_STDIN_MAX) {
                free(buf);
                return tap_usage_error(opts->command,
                                       "the payload on stdin is larger than "
                                       "%u MiB",
                                       S_STDIN_MAX >> 20);
            }
            char *grown = realloc(buf, cap * 2);
            if (!grown)
                break;
            buf = grown;
            cap *= 2;
        }
        size_t got = fread(buf + used, 1, cap - 1 - used, stdin);
        used += got;
        if (got == 0) {
            if (ferror(stdin)) {
                free(buf);
                tap_error("cannot read the payload from stdin");
                return TAP_EXIT_FAILURE;
            }
            buf[used] = '\0';
            *text = buf;
            *size = used;
            return 0;
        }
    }
    free(buf);
    tap_error("out of memory reading stdin");
    return TAP_EXIT_FAILURE;
}

const char *
tap_payload_hint(const char *json, size_t size)
{
    const char *start = json;
    while (start < json + size && isspace((unsigned char)*start))
        start++;
    if (start == json + size)
        return "the payload is empty; use null for no value";
    if (*start == '\'')
        return "JSON strings take double quotes, e.g. '\"text\"'";
    if (isalpha((unsigned char)*start) && strncmp(start, "true", 4) != 0 &&
        strncmp(start, "false", 5) != 0 && strncmp(start, "null", 4) != 0)
        return "a string needs double quotes inside the shell's quotes, "
               "e.g. '\"text\"'";
    return "look for a missing or trailing comma, an unclosed bracket or "
           "quote, an unquoted key, a leading zero or a bad escape";
}

void
tap_payload_excerpt(FILE *out, const char *text, size_t size)
{
    char excerpt[64];
    size_t n = size < 60 ? size : 60;
    memcpy(excerpt, text, n);
    excerpt[n] = '\0';
    tap_output_text(out, excerpt, 0);
    if (size > n)
        fputs("...", out);
}

void
tap_payload_bad_line(long number, const char *why, const char *text,
                     size_t size, const char *hint)
{
    fprintf(stderr, "mesh-tap: stdin line %ld: %s", number, why);
    if (text) {
        fputs(": ", stderr);
        tap_payload_excerpt(stderr, text, size);
    }
    fputc('\n', stderr);
    if (hint)
        fprintf(stderr, "mesh-tap: %s\n", hint);
}

int
tap_payload_from_arg(const tap_options_t *opts, const char *arg, void **payload,
                     size_t *size)
{
    char *from_stdin = NULL;
    const char *json = arg;
    size_t json_size = strlen(arg);
    if (strcmp(arg, "-") == 0) {
        int exit_code = s_read_stdin(opts, &from_stdin, &json_size);
        if (exit_code != 0)
            return exit_code;
        json = from_stdin;
    }
    int exit_code = 0;
    int rc = zmesh_json_to_msgpack(json, json_size, payload, size);
    if (rc == ZMESH_EJSON) {
        fputs("mesh-tap: the payload is not valid JSON: ", stderr);
        tap_payload_excerpt(stderr, json, json_size);
        fprintf(stderr, "\nmesh-tap: %s\n", tap_payload_hint(json, json_size));
        exit_code = TAP_EXIT_USAGE;
    } else if (rc != 0) {
        tap_error("cannot convert the payload: %s", zmesh_strerror(rc));
        exit_code = TAP_EXIT_FAILURE;
    }
    free(from_stdin);
    return exit_code;
}
