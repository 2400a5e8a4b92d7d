/*  tap_recfile.c - writes and reads mesh-tap's record files. Writing
    formats the fields itself (strings through the library's JSON escaping,
    the payload as base64). Reading is strict, because the file may be
    truncated, edited or not a record file at all: every line must be one
    JSON object of the right shape, with a valid topic, base64 that decodes
    to exactly one msgpack object, and an integer receive time; anything
    else is refused with the reason, and the caller names the line.
*/
#include "tap_recfile.h"

#include "tap_jsonline.h"
#include "tap_output.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void
tap_recfile_write_header(FILE *out, const char *mesh, char **patterns,
                         size_t patterns_count, int64_t started_us)
{
    fprintf(out,
            "{\"format\":\"%s\",\"version\":%d,\"tool\":", TAP_RECFILE_FORMAT,
            TAP_RECFILE_VERSION);
    char tool[64];
    snprintf(tool, sizeof tool, "mesh-tap %s", zmesh_version());
    tap_output_json_string(out, tool);
    fputs(",\"mesh\":", out);
    tap_output_json_string(out, mesh);
    fputs(",\"patterns\":[", out);
    for (size_t i = 0; i < patterns_count; i++) {
        if (i > 0)
            fputc(',', out);
        tap_output_json_string(out, patterns[i]);
    }
    if (patterns_count == 0)
        fputs("\">\"", out);
    fprintf(out, "],\"started\":%" PRId64 "}", started_us);
}

void
tap_recfile_write_event(FILE *out, const zmesh_event_t *event, int64_t recv_us)
{
    size_t size = 0;
    const void *payload = zmesh_event_payload(event, &size);
    fputs("{\"topic\":", out);
    tap_output_json_string(out, zmesh_event_topic(event));
    fputs(",\"publisher\":", out);
    tap_output_json_string(out, zmesh_event_peer_name(event));
    fputs(",\"publisher_id\":", out);
    tap_output_json_string(out, zmesh_event_peer_id(event));
    fprintf(out,
            ",\"seq\":%" PRIu64 ",\"ts\":%" PRId64 ",\"recv_ts\":%" PRId64
            ",\"payload\":\"",
            zmesh_event_sequence(event), zmesh_event_timestamp(event), recv_us);
    tap_output_base64(out, payload, size);
    fputs("\"}", out);
}

static int s_why(char *why, size_t why_size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static int
s_why(char *why, size_t why_size, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    vsnprintf(why, why_size, format, args);
    va_end(args);
    return ZMESH_EPROTO;
}

static int
s_parse_header(const tap_jsonline_t *line, bool first, tap_record_t *record,
               char *why, size_t why_size)
{
    if (!first)
        return s_why(why, why_size,
                     "a header line (\"format\") is only allowed first");
    if (!tap_jsonline_is(tap_jsonline_get(line, "format"), TAP_RECFILE_FORMAT))
        return s_why(why, why_size, "\"format\" is not \"%s\"",
                     TAP_RECFILE_FORMAT);
    int64_t version;
    if (!tap_jsonline_int(tap_jsonline_get(line, "version"), &version))
        return s_why(why, why_size, "the header has no integer \"version\"");
    if (version != TAP_RECFILE_VERSION)
        return s_why(why, why_size,
                     "format version %" PRId64 " (this mesh-tap reads "
                     "version %d)",
                     version, TAP_RECFILE_VERSION);
    record->header = true;
    return 0;
}

int
tap_recfile_parse(const char *text, size_t size, bool first,
                  tap_record_t *record, char *why, size_t why_size)
{
    memset(record, 0, sizeof *record);
    tap_jsonline_t line;
    int rc = tap_jsonline_parse(&line, text, size);
    if (rc == ZMESH_ENOMEM) {
        tap_jsonline_free(&line);
        return rc;
    }
    if (rc != 0)
        rc = s_why(why, why_size, "not valid JSON");
    else if (tap_jsonline_root(&line)->type != MSGPACK_OBJECT_MAP)
        rc = s_why(why, why_size, "not a JSON object");
    else if (tap_jsonline_get(&line, "format"))
        rc = s_parse_header(&line, first, record, why, why_size);
    else {
        const msgpack_object *topic = tap_jsonline_get(&line, "topic");
        const msgpack_object *payload = tap_jsonline_get(&line, "payload");
        int check;
        if (!tap_jsonline_string(topic, record->topic, sizeof record->topic))
            rc = s_why(why, why_size, "no \"topic\" string (at most %d bytes)",
                       ZMESH_TOPIC_MAX);
        else if ((check = zmesh_topic_check(record->topic)) != 0)
            rc = s_why(why, why_size, "topic: %s", zmesh_strerror(check));
        else if (!tap_jsonline_int(tap_jsonline_get(&line, "recv_ts"),
                                   &record->recv_ts))
            rc = s_why(why, why_size, "no integer \"recv_ts\"");
        else if (!payload || payload->type != MSGPACK_OBJECT_STR)
            rc = s_why(why, why_size, "no \"payload\" string (base64)");
        else if ((check = tap_base64_decode(
                      payload->via.str.ptr, payload->via.str.size,
                      &record->payload, &record->size)) != 0)
            rc = check == ZMESH_ENOMEM
                     ? check
                     : s_why(why, why_size, "\"payload\" is not base64");
        else {
            // The library's own reading of msgpack decides, so play never
            // publishes what zmesh_agent_publish would refuse.
            char *json = NULL;
            check = zmesh_msgpack_to_json(record->payload, record->size, &json);
            free(json);
            if (check == ZMESH_EPAYLOAD)
                rc = s_why(why, why_size,
                           "\"payload\" is not one well-formed msgpack "
                           "object");
        }
    }
    tap_jsonline_free(&line);
    if (rc != 0)
        tap_record_clear(record);
    return rc;
}

void
tap_record_clear(tap_record_t *record)
{
    free(record->payload);
    memset(record, 0, sizeof *record);
}
