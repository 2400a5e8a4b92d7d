/*  tap_payload.h - a JSON payload given to mesh-tap on its command line
    (pub, send, request): taken from the argument or, for "-", from all of
    stdin, turned into msgpack by the library, and when it is not valid
    JSON, what to say: the start of the text and a hint for the mistakes
    people make most with JSON in a shell. Uses only the public zmesh.h. */
#ifndef TAP_PAYLOAD_H_INCLUDED
#define TAP_PAYLOAD_H_INCLUDED

#include "tap_options.h"

#include <stddef.h>
#include <stdio.h>

/*  Converts the JSON argument `arg` ("-": one value from all of stdin) to
    msgpack. On success *payload (malloc'ed, the caller frees it) holds
    *size bytes. Returns 0, TAP_EXIT_USAGE for text that is not one JSON
    value (after showing it with a hint) or TAP_EXIT_FAILURE (stdin
    unreadable, no memory), having said why. */
int tap_payload_from_arg(const tap_options_t *opts, const char *arg,
                         void **payload, size_t *size);

/*  The hint for a JSON text the library refused, looking at its start. */
const char *tap_payload_hint(const char *json, size_t size);

/*  Writes at most 60 bytes of `text`, made safe for the terminal, and
    "..." when there was more. */
void tap_payload_excerpt(FILE *out, const char *text, size_t size);

/*  Says what is wrong with stdin line `number`: the message, the start of
    the line when `text` is given, and the hint when there is one. */
void tap_payload_bad_line(long number, const char *why, const char *text,
                          size_t size, const char *hint);

#endif
