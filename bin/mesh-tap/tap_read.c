/*  tap_read.c - "mesh-tap read" and "mesh-tap streams": the tap's window
    on mesh-relay (proto/relay.md). Both find a relay among the peers by
    its "relay" header (within --timeout), then ask it with requests:
    read pages through $relay.read from a relay sequence or a time and
    prints each stored event as the live view does (text, or NDJSON with
    "rseq" and "stored" added), up to what the stream held when it began;
    streams prints $relay.info as a table or one JSON object per stream,
    and consumers the durable consumers of each stream it reports.
    Relay answers are untrusted: each field is type-checked, and the event
    frames inside are parsed here with a bounded reader, since the tap sees
    the library only through zmesh.h.
*/
#include "tap_agent.h"
#include "tap_options.h"
#include "tap_output.h"
#include "tap_relay_args.h"

#include "zmesh.h"

#include <inttypes.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_READ_TOPIC "$relay.read"
#define S_INFO_TOPIC "$relay.info"
#define S_PAGE_MAX 1000
#define S_DEFAULT_TIMEOUT_MS 5000
#define S_DISCOVERY_POLL_MS 50
#define S_RELAYS_MAX 64
/*  Pages read at most, so a relay that keeps answering cannot keep the
    tap forever: far more than a stream can hold. */
#define S_PAGES_MAX 100000000L

typedef struct {
    char name[ZMESH_NAME_MAX + 1];
    char id[33];
} s_relay_t;

/* ------------------------------------------------------------------------ */
/*  Finding a relay and asking it                                           */

static const char *
s_header(const zmesh_peer_list_t *list, size_t i, const char *key)
{
    for (size_t j = 0; j < zmesh_peer_headers_size(list, i); j++)
        if (strcmp(zmesh_peer_header_key(list, i, j), key) == 0)
            return zmesh_peer_header_value(list, i, j);
    return NULL;
}

/*  Whether the comma-separated `list` holds `name`, or is "*". */
static bool
s_list_has(const char *list, const char *name)
{
    if (strcmp(list, "*") == 0)
        return true;
    size_t n = strlen(name);
    for (const char *p = list; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len == n && strncmp(p, name, n) == 0)
            return true;
        p += len + (end ? 1 : 0);
    }
    return false;
}

static bool
s_relay_wanted(const tap_options_t *opts, const zmesh_peer_list_t *list,
               size_t i, const char *stream)
{
    const char *flag = s_header(list, i, "relay");
    if (!flag || strcmp(flag, "1") != 0)
        return false;
    if (opts->relay && strcmp(zmesh_peer_name(list, i), opts->relay) != 0 &&
        !(strlen(opts->relay) >= 8 &&
          strncmp(zmesh_peer_id(list, i), opts->relay, strlen(opts->relay)) ==
              0))
        return false;
    const char *streams = s_header(list, i, "relay.streams");
    return !stream || (streams && s_list_has(streams, stream));
}

/*  Waits until the peer list holds a relay (with `stream`, when given)
    and fills `relays` with every such one then. Returns 0 with *count
    set (0 when none turned up by `deadline`), or TAP_EXIT_FAILURE. */
static int
s_find_relays(const tap_options_t *opts, zmesh_agent_t *agent,
              const char *stream, int64_t deadline, s_relay_t *relays,
              size_t *count)
{
    *count = 0;
    for (;;) {
        zmesh_peer_list_t *list = NULL;
        int rc = zmesh_agent_peers(agent, &list);
        if (rc != 0) {
            tap_error("cannot list the peers: %s", zmesh_strerror(rc));
            return TAP_EXIT_FAILURE;
        }
        for (size_t i = 0; i < zmesh_peer_list_size(list); i++) {
            if (*count == S_RELAYS_MAX ||
                !s_relay_wanted(opts, list, i, stream))
                continue;
            snprintf(relays[*count].name, sizeof relays[*count].name, "%s",
                     zmesh_peer_name(list, i));
            snprintf(relays[*count].id, sizeof relays[*count].id, "%s",
                     zmesh_peer_id(list, i));
            (*count)++;
        }
        zmesh_peer_list_destroy(&list);
        if (*count > 0 || tap_monotonic_ms() >= deadline)
            return 0;
        int64_t due = tap_monotonic_ms() + S_DISCOVERY_POLL_MS;
        if (tap_agent_idle_until(agent, due < deadline ? due : deadline) != 0)
            return 0; // a signal: nothing found
    }
}

static int
s_no_relay(const tap_options_t *opts, const char *stream, int timeout_ms)
{
    if (stream)
        tap_error("no relay with stream '%s'%s%s in mesh '%s' within %.1f s "
                  "(is mesh-relay running with --stream %s=...?)",
                  stream, opts->relay ? " named " : "",
                  opts->relay ? opts->relay : "", tap_options_mesh(opts),
                  timeout_ms / 1000.0, stream);
    else
        tap_error("no relay%s%s in mesh '%s' within %.1f s (is mesh-relay "
                  "running, with the same --mesh and --beacon-port?)",
                  opts->relay ? " named " : "", opts->relay ? opts->relay : "",
                  tap_options_mesh(opts), timeout_ms / 1000.0);
    return TAP_EXIT_FAILURE;
}

/*  What every command that asks relays does first: opens the tap's agent
    (*agent, which the caller destroys; NULL when it could not be opened),
    and waits for the relays that hold `stream` (NULL: every relay) within
    the timeout (*timeout_ms, also for the caller's questions). Returns 0
    with at least one relay, or the exit code. */
static int
s_relays_open(const tap_options_t *opts, const char *stream,
              zmesh_agent_t **agent, int *timeout_ms, s_relay_t *relays,
              size_t *count)
{
    *timeout_ms = opts->timeout_given ? opts->timeout_ms : S_DEFAULT_TIMEOUT_MS;
    *count = 0;
    *agent = NULL;
    int exit_code = tap_agent_open(opts, TAP_AGENT_NO_PATTERNS, agent);
    if (exit_code != 0)
        return exit_code;
    tap_signal_install();
    exit_code = s_find_relays(opts, *agent, stream,
                              tap_monotonic_ms() + *timeout_ms, relays, count);
    if (exit_code == 0 && *count == 0)
        exit_code = s_no_relay(opts, stream, *timeout_ms);
    return exit_code;
}

/*  One request and its reply. On success `reply` holds the decoded
    answer (destroy it with msgpack_unpacked_destroy). Returns 0, or
    TAP_EXIT_FAILURE after saying why. */
static int
s_ask(zmesh_agent_t *agent, const s_relay_t *relay, const char *topic,
      const void *payload, size_t size, int timeout_ms, msgpack_unpacked *reply)
{
    uint64_t req = 0;
    int rc = zmesh_agent_request(agent, relay->id, topic, payload, size,
                                 timeout_ms, &req);
    if (rc != 0) {
        tap_error("cannot ask relay %s (%.8s): %s", relay->name, relay->id,
                  zmesh_strerror(rc));
        return TAP_EXIT_FAILURE;
    }
    // The library ends every request by its timeout; a little more is
    // allowed before the tap stops waiting by itself.
    int64_t deadline = tap_monotonic_ms() + timeout_ms + 2000;
    for (;;) {
        const zmesh_event_t *event = NULL;
        rc = tap_agent_next(agent, deadline, &event);
        if (rc != 0)
            return rc;
        if (!event) {
            if (tap_interrupted())
                tap_error("interrupted");
            else
                tap_error("relay %s (%.8s) did not answer", relay->name,
                          relay->id);
            return TAP_EXIT_FAILURE;
        }
        if (zmesh_event_type(event) != ZMESH_EVENT_REPLY ||
            zmesh_event_request_id(event) != req)
            continue;
        int status = zmesh_event_status(event);
        if (status != 0) {
            tap_error("relay %s (%.8s) did not answer %s: %s", relay->name,
                      relay->id, topic, zmesh_strerror(status));
            return TAP_EXIT_FAILURE;
        }
        size_t reply_size = 0;
        const void *bytes = zmesh_event_payload(event, &reply_size);
        size_t offset = 0;
        // The library passes only well-formed msgpack (proto/wire.md#reply),
        // so every count is backed by bytes.
        if (msgpack_unpack_next(reply, bytes, reply_size, &offset) !=
                MSGPACK_UNPACK_SUCCESS ||
            reply->data.type != MSGPACK_OBJECT_MAP) {
            tap_error("relay %s (%.8s) answered %s with something that is "
                      "not a map",
                      relay->name, relay->id, topic);
            return TAP_EXIT_FAILURE;
        }
        return 0;
    }
}

static const msgpack_object *
s_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t n = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == n &&
            memcmp(k->via.str.ptr, key, n) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

static bool
s_get_u64(const msgpack_object *map, const char *key, uint64_t *out)
{
    const msgpack_object *value = s_get(map, key);
    if (!value || value->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
        return false;
    *out = value->via.u64;
    return true;
}

/*  A str value as a NUL-terminated copy in `out`; "" when absent or not a
    string. */
static void
s_get_str(const msgpack_object *map, const char *key, char *out, size_t size)
{
    const msgpack_object *value = s_get(map, key);
    out[0] = '\0';
    if (value && value->type == MSGPACK_OBJECT_STR) {
        size_t n =
            value->via.str.size < size - 1 ? value->via.str.size : size - 1;
        memcpy(out, value->via.str.ptr, n);
        out[n] = '\0';
        if (memchr(out, '\0', n))
            out[0] = '\0';
    }
}

/*  Says what an {"error": ...} answer says. True when it was one. */
static bool
s_relay_error(const s_relay_t *relay, const msgpack_object *reply)
{
    if (!s_get(reply, "error"))
        return false;
    char text[512], code[64];
    s_get_str(reply, "error", text, sizeof text);
    s_get_str(reply, "code", code, sizeof code);
    tap_error("relay %s (%.8s): %s%s%s%s", relay->name, relay->id, text,
              code[0] ? " (" : "", code, code[0] ? ")" : "");
    return true;
}

/* ------------------------------------------------------------------------ */
/*  Event frames (proto/wire.md#event-frame)                                */

typedef struct {
    char topic[ZMESH_TOPIC_MAX + 1];
    char publisher_id[33];
    uint64_t seq;
    int64_t ts;
    const uint8_t *payload;
    size_t payload_size;
} s_frame_t;

/*  Skips one msgpack object within `size` bytes; returns its size or 0
    when it is not well-formed (bounded nesting, lengths checked). */
static size_t
s_skip(const uint8_t *p, size_t size, int depth)
{
    if (size == 0 || depth > 64)
        return 0;
    uint8_t b = p[0];
    size_t head = 1, body = 0, items = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return 1;
    if ((b & 0xe0) == 0xa0)
        body = b & 0x1f;
    else if ((b & 0xf0) == 0x90)
        items = b & 0x0f;
    else if ((b & 0xf0) == 0x80)
        items = 2 * (size_t)(b & 0x0f);
    else {
        static const struct {
            uint8_t byte;
            uint8_t len_size; // bytes of the length that follows
            uint8_t fixed;    // fixed body size
            uint8_t kind;     // 0 body, 1 array, 2 map, 3 ext
        } forms[] = {{0xc4, 1, 0, 0}, {0xc5, 2, 0, 0}, {0xc6, 4, 0, 0},
                     {0xc7, 1, 1, 3}, {0xc8, 2, 1, 3}, {0xc9, 4, 1, 3},
                     {0xca, 0, 4, 0}, {0xcb, 0, 8, 0}, {0xcc, 0, 1, 0},
                     {0xcd, 0, 2, 0}, {0xce, 0, 4, 0}, {0xcf, 0, 8, 0},
                     {0xd0, 0, 1, 0}, {0xd1, 0, 2, 0}, {0xd2, 0, 4, 0},
                     {0xd3, 0, 8, 0}, {0xd4, 0, 2, 0}, {0xd5, 0, 3, 0},
                     {0xd6, 0, 5, 0}, {0xd7, 0, 9, 0}, {0xd8, 0, 17, 0},
                     {0xd9, 1, 0, 0}, {0xda, 2, 0, 0}, {0xdb, 4, 0, 0},
                     {0xdc, 2, 0, 1}, {0xdd, 4, 0, 1}, {0xde, 2, 0, 2},
                     {0xdf, 4, 0, 2}};
        size_t f = 0;
        while (f < sizeof forms / sizeof forms[0] && forms[f].byte != b)
            f++;
        if (f == sizeof forms / sizeof forms[0])
            return 0; // 0xc1
        size_t length = 0;
        if (size < 1 + (size_t)forms[f].len_size)
            return 0;
        for (int i = 0; i < forms[f].len_size; i++)
            length = length << 8 | p[1 + i];
        head = 1 + forms[f].len_size;
        switch (forms[f].kind) {
        case 0: body = forms[f].len_size ? length : forms[f].fixed; break;
        case 1: items = length; break;
        case 2: items = 2 * length; break;
        case 3: body = 1 + length; break; // the ext type byte, then data
        }
    }
    if (head > size || body > size - head)
        return 0;
    size_t at = head + body;
    if (items > size - at)
        return 0; // each item takes at least a byte
    for (size_t i = 0; i < items; i++) {
        size_t n = s_skip(p + at, size - at, depth + 1);
        if (n == 0)
            return 0;
        at += n;
    }
    return at;
}

/*  An unsigned or signed msgpack integer at p (at most `size` bytes). */
static bool
s_int(const uint8_t *p, size_t size, size_t *used, bool *negative,
      uint64_t *magnitude)
{
    if (size == 0)
        return false;
    uint8_t b = p[0];
    *negative = false;
    if (b <= 0x7f) {
        *used = 1;
        *magnitude = b;
        return true;
    }
    if (b >= 0xe0) {
        *used = 1;
        *negative = true;
        *magnitude = (uint64_t)(256 - b);
        return true;
    }
    int n = b == 0xcc || b == 0xd0   ? 1
            : b == 0xcd || b == 0xd1 ? 2
            : b == 0xce || b == 0xd2 ? 4
            : b == 0xcf || b == 0xd3 ? 8
                                     : 0;
    if (n == 0 || size < (size_t)(1 + n))
        return false;
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[1 + i];
    *used = (size_t)(1 + n);
    if (b >= 0xd0 && (v >> (8 * n - 1)) & 1) {
        // Two's complement of an n-byte signed value.
        uint64_t sign_extended = n == 8 ? v : v | (~0ull << (8 * n));
        *negative = true;
        *magnitude = ~sign_extended + 1;
        return true;
    }
    *magnitude = v;
    return true;
}

/*  topic NUL [publisher bin16, seq uint, ts int, ...] payload */
static bool
s_frame_parse(const uint8_t *data, size_t size, s_frame_t *frame)
{
    const uint8_t *nul = memchr(data, 0, size < 256 ? size : 256);
    if (!nul || nul == data)
        return false;
    size_t topic_size = (size_t)(nul - data);
    memcpy(frame->topic, data, topic_size);
    frame->topic[topic_size] = '\0';
    const uint8_t *p = nul + 1;
    size_t left = size - topic_size - 1;
    size_t elements;
    if (left >= 1 && (p[0] & 0xf0) == 0x90) {
        elements = p[0] & 0x0f;
        p++, left--;
    } else if (left >= 3 && p[0] == 0xdc) {
        elements = (size_t)p[1] << 8 | p[2];
        p += 3, left -= 3;
    } else if (left >= 5 && p[0] == 0xdd) {
        elements =
            (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
        p += 5, left -= 5;
    } else
        return false;
    if (elements < 3 || left < 18 || p[0] != 0xc4 || p[1] != 16)
        return false;
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        frame->publisher_id[2 * i] = digits[p[2 + i] >> 4];
        frame->publisher_id[2 * i + 1] = digits[p[2 + i] & 15];
    }
    frame->publisher_id[32] = '\0';
    p += 18, left -= 18;
    size_t used;
    bool negative;
    uint64_t value;
    if (!s_int(p, left, &used, &negative, &value) || negative || value == 0)
        return false;
    frame->seq = value;
    p += used, left -= used;
    if (!s_int(p, left, &used, &negative, &value) ||
        value > (uint64_t)INT64_MAX)
        return false;
    frame->ts = negative ? -(int64_t)value : (int64_t)value;
    p += used, left -= used;
    for (size_t i = 3; i < elements; i++) {
        size_t n = s_skip(p, left, 1);
        if (n == 0)
            return false;
        p += n, left -= n;
    }
    if (left == 0)
        return false;
    frame->payload = p;
    frame->payload_size = left;
    return true;
}

/* ------------------------------------------------------------------------ */
/*  mesh-tap read                                                           */

typedef struct {
    const tap_options_t *opts;
    zmesh_agent_t *agent;
    s_relay_t relay;
    const char *stream;
    bool color;
    size_t topic_width;
    size_t publisher_width;
    long printed;
    uint64_t expected; // the rseq that should come next; 0: unknown
    uint64_t corrupt, oversize;
} s_read_t;

/*  The publisher's name from the answer's "names", else the first 8
    digits of its id. */
static void
s_publisher_name(const msgpack_object *names, const char *id, char *out,
                 size_t size)
{
    s_get_str(names, id, out, size);
    if (!out[0] || !tap_output_columns(out))
        snprintf(out, size, "%.8s", id);
}

static size_t
s_grow(size_t width, const char *text, size_t cap)
{
    size_t columns = tap_output_columns(text);
    return columns > width && columns <= cap ? columns : width;
}

/*  The "last" and "reason" of a gap record's payload. */
static void
s_gap_fields(const s_frame_t *frame, uint64_t *last, char *reason,
             size_t reason_size)
{
    *last = frame->seq;
    reason[0] = '\0';
    if (s_skip(frame->payload, frame->payload_size, 0) != frame->payload_size)
        return;
    msgpack_unpacked unpacked;
    msgpack_unpacked_init(&unpacked);
    size_t offset = 0;
    if (frame->payload_size <= 512 &&
        msgpack_unpack_next(&unpacked, (const char *)frame->payload,
                            frame->payload_size,
                            &offset) == MSGPACK_UNPACK_SUCCESS) {
        uint64_t value;
        if (s_get_u64(&unpacked.data, "last", &value) && value >= frame->seq)
            *last = value;
        s_get_str(&unpacked.data, "reason", reason, reason_size);
    }
    msgpack_unpacked_destroy(&unpacked);
}

static void
s_print_json(const s_frame_t *frame, const char *publisher, uint64_t rseq,
             int64_t stored, bool gap)
{
    FILE *out = stdout;
    if (gap) {
        uint64_t last;
        char reason[64];
        s_gap_fields(frame, &last, reason, sizeof reason);
        fputs("{\"type\":\"gap\",\"topic\":", out);
        tap_output_json_string(out, frame->topic);
        fputs(",\"publisher\":", out);
        tap_output_json_string(out, publisher);
        fputs(",\"publisher_id\":", out);
        tap_output_json_string(out, frame->publisher_id);
        fprintf(out,
                ",\"first\":%" PRIu64 ",\"last\":%" PRIu64 ",\"count\":%" PRIu64
                ",\"ts\":%" PRId64 ",\"reason\":",
                frame->seq, last, last - frame->seq + 1, frame->ts);
        tap_output_json_string(out, reason);
        fprintf(out, ",\"rseq\":%" PRIu64 ",\"stored\":%" PRId64 "}", rseq,
                stored);
        return;
    }
    fputs("{\"type\":\"message\",\"topic\":", out);
    tap_output_json_string(out, frame->topic);
    fputs(",\"publisher\":", out);
    tap_output_json_string(out, publisher);
    fputs(",\"publisher_id\":", out);
    tap_output_json_string(out, frame->publisher_id);
    fprintf(out,
            ",\"seq\":%" PRIu64 ",\"ts\":%" PRId64 ",\"recv_ts\":%" PRId64
            ",\"size\":%zu,\"rseq\":%" PRIu64 ",\"stored\":%" PRId64
            ",\"payload\":",
            frame->seq, frame->ts, tap_now_us(), frame->payload_size, rseq,
            stored);
    int rc = tap_output_json_payload(out, frame->payload, frame->payload_size);
    if (rc != 0) {
        fputs(",\"payload_error\":", out);
        tap_output_json_string(out, zmesh_strerror(rc));
    }
    fputc('}', out);
}

/*  As the live view: time, topic, publisher, sequence, payload; the
    relay sequence in front. */
static void
s_print_text(s_read_t *self, const s_frame_t *frame, const char *publisher,
             uint64_t rseq, bool gap)
{
    FILE *out = stdout;
    self->topic_width = s_grow(self->topic_width, frame->topic, 48);
    self->publisher_width = s_grow(self->publisher_width, publisher, 32);
    char text[40];
    snprintf(text, sizeof text, "#%-6" PRIu64, rseq);
    tap_output_field(out, self->color, "2", text, 0);
    fputs("  ", out);
    tap_output_clock(frame->ts, text);
    tap_output_field(out, self->color, "2", text, 0);
    fputs("  ", out);
    if (gap) {
        uint64_t last;
        char reason[64];
        s_gap_fields(frame, &last, reason, sizeof reason);
        tap_output_sgr(out, self->color, "33");
        fputs("-- gap: ", out);
        tap_output_text(out, frame->topic, 0);
        fputs(" from ", out);
        tap_output_text(out, publisher, 0);
        fprintf(out, ": %" PRIu64 " missing (%" PRIu64 "..%" PRIu64 ")",
                last - frame->seq + 1, frame->seq, last);
        if (reason[0]) {
            fputs(", ", out);
            tap_output_text(out, reason, 0);
        }
        tap_output_sgr(out, self->color, "0");
        return;
    }
    tap_output_field(out, self->color, "36", frame->topic, self->topic_width);
    fputs("  ", out);
    tap_output_field(out, self->color, "33", publisher, self->publisher_width);
    fputs("  ", out);
    snprintf(text, sizeof text, "%6" PRIu64, frame->seq);
    tap_output_field(out, self->color, "2", text, 0);
    fputs("  ", out);
    int rc = tap_output_json_payload(out, frame->payload, frame->payload_size);
    if (rc != 0)
        fprintf(out, " (payload not shown: %s)", zmesh_strerror(rc));
}

/*  Prints one [rseq, stored, frame (, flags)] entry. Returns -1 to go on,
    or the exit code when stdout is gone. */
static int
s_print_entry(s_read_t *self, const msgpack_object *entry,
              const msgpack_object *names)
{
    const msgpack_object_array *a = &entry->via.array;
    if (entry->type != MSGPACK_OBJECT_ARRAY || a->size < 3 ||
        a->ptr[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
        (a->ptr[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
         a->ptr[1].type != MSGPACK_OBJECT_NEGATIVE_INTEGER) ||
        a->ptr[2].type != MSGPACK_OBJECT_BIN) {
        tap_error("relay %s sent an event that is not [rseq, stored, frame]",
                  self->relay.name);
        return -1;
    }
    uint64_t rseq = a->ptr[0].via.u64;
    int64_t stored = a->ptr[1].via.i64;
    bool gap = a->size >= 4 &&
               a->ptr[3].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
               (a->ptr[3].via.u64 & 1);
    if (self->expected && rseq > self->expected)
        tap_error("relay seq %" PRIu64 "..%" PRIu64 " of stream '%s' %s not "
                  "there (deleted by retention meanwhile, or lost to "
                  "corruption)",
                  self->expected, rseq - 1, self->stream,
                  rseq - 1 == self->expected ? "is" : "are");
    self->expected = rseq + 1;
    s_frame_t frame;
    if (!s_frame_parse((const uint8_t *)a->ptr[2].via.bin.ptr,
                       a->ptr[2].via.bin.size, &frame)) {
        tap_error("relay seq %" PRIu64 " of stream '%s' is not an event frame; "
                  "skipped",
                  rseq, self->stream);
        return -1;
    }
    char publisher[ZMESH_NAME_MAX + 1];
    s_publisher_name(names, frame.publisher_id, publisher, sizeof publisher);
    if (self->opts->json)
        s_print_json(&frame, publisher, rseq, stored, gap);
    else
        s_print_text(self, &frame, publisher, rseq, gap);
    self->printed++;
    return tap_output_line_done(stdout);
}

static void
s_report_skipped(s_read_t *self, const msgpack_object *reply, const char *key,
                 const char *why)
{
    const msgpack_object *list = s_get(reply, key);
    if (!list || list->type != MSGPACK_OBJECT_ARRAY)
        return;
    for (uint32_t i = 0; i < list->via.array.size; i++)
        if (list->via.array.ptr[i].type == MSGPACK_OBJECT_POSITIVE_INTEGER)
            tap_error("relay seq %" PRIu64 " of stream '%s' %s",
                      list->via.array.ptr[i].via.u64, self->stream, why);
}

/*  Packs a $relay.read request. */
static void
s_pack_read(msgpack_sbuffer *buffer, const char *stream, bool from,
            uint64_t from_seq, bool since, int64_t since_us, uint32_t max)
{
    msgpack_packer pk;
    msgpack_sbuffer_clear(buffer);
    msgpack_packer_init(&pk, buffer, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2 + (from || since));
    msgpack_pack_str_with_body(&pk, "stream", 6);
    msgpack_pack_str_with_body(&pk, stream, strlen(stream));
    msgpack_pack_str_with_body(&pk, "max", 3);
    msgpack_pack_uint32(&pk, max);
    if (from) {
        msgpack_pack_str_with_body(&pk, "from", 4);
        msgpack_pack_uint64(&pk, from_seq);
    } else if (since) {
        msgpack_pack_str_with_body(&pk, "since", 5);
        msgpack_pack_int64(&pk, since_us);
    }
}

/*  Pages through the stream. */
static int
s_read_pages(s_read_t *self, int timeout_ms, bool has_since, int64_t since_us)
{
    const tap_options_t *opts = self->opts;
    msgpack_sbuffer request;
    msgpack_sbuffer_init(&request);
    bool from = !has_since;
    uint64_t next = opts->from_seq_given ? opts->from_seq : 1;
    bool since = has_since;
    uint64_t end = 0;
    int exit_code = TAP_EXIT_OK;
    for (long page = 0; page < S_PAGES_MAX && !tap_interrupted(); page++) {
        long left = opts->count > 0 ? opts->count - self->printed : S_PAGE_MAX;
        if (left <= 0)
            break;
        uint32_t max = left < S_PAGE_MAX ? (uint32_t)left : S_PAGE_MAX;
        s_pack_read(&request, self->stream, from, next, since, since_us, max);
        msgpack_unpacked reply;
        msgpack_unpacked_init(&reply);
        exit_code = s_ask(self->agent, &self->relay, S_READ_TOPIC, request.data,
                          request.size, timeout_ms, &reply);
        if (exit_code != 0) {
            msgpack_unpacked_destroy(&reply);
            break;
        }
        const msgpack_object *map = &reply.data;
        uint64_t first = 0, last = 0, reply_next = 0;
        const msgpack_object *events = s_get(map, "events");
        if (s_relay_error(&self->relay, map))
            exit_code = TAP_EXIT_FAILURE;
        else if (!s_get_u64(map, "first", &first) ||
                 !s_get_u64(map, "last", &last) ||
                 !s_get_u64(map, "next", &reply_next) || !events ||
                 events->type != MSGPACK_OBJECT_ARRAY) {
            tap_error("relay %s sent a read answer without first, last, next "
                      "and events",
                      self->relay.name);
            exit_code = TAP_EXIT_FAILURE;
        }
        if (exit_code != 0) {
            msgpack_unpacked_destroy(&reply);
            break;
        }
        if (page == 0) {
            // What the stream held when the read began is what is read.
            end = last;
            if (opts->from_seq_given && opts->from_seq < first)
                tap_error("stream '%s' starts at relay seq %" PRIu64
                          " now: %" PRIu64 "..%" PRIu64
                          " are no longer stored (retention)",
                          self->stream, first, opts->from_seq, first - 1);
            if (!has_since)
                self->expected = next < first ? first : next;
        }
        const msgpack_object *names = s_get(map, "names");
        for (uint32_t i = 0; i < events->via.array.size && exit_code == 0;
             i++) {
            int rc = s_print_entry(self, &events->via.array.ptr[i], names);
            if (rc >= 0) {
                exit_code = rc;
                page = S_PAGES_MAX; // stdout is gone
            }
        }
        s_report_skipped(self, map, "corrupt",
                         "is damaged on the relay's disk; skipped");
        s_report_skipped(self, map, "oversize",
                         "is too large for a read answer; skipped");
        bool moved = reply_next > next || events->via.array.size > 0 ||
                     (since && page == 0);
        msgpack_unpacked_destroy(&reply);
        if (exit_code != 0 || !moved || reply_next > end)
            break;
        next = reply_next;
        from = true;
        since = false;
    }
    msgpack_sbuffer_destroy(&request);
    if (exit_code == 0 && tap_interrupted())
        exit_code = opts->count > 0 ? TAP_EXIT_FAILURE : TAP_EXIT_OK;
    return exit_code;
}

int
tap_read_run(const tap_options_t *opts)
{
    const char *stream = opts->args[0];
    if (!tap_stream_name_ok(stream))
        return tap_usage_error(opts->command,
                               "'%s' is not a stream name (1-64 letters, "
                               "digits, '_' and '-')",
                               stream);
    int64_t since_us = 0;
    if (opts->since && !tap_parse_time(opts->since, &since_us))
        return tap_usage_error(opts->command,
                               "--since: '%s' is neither an RFC 3339 time "
                               "(2026-11-23T17:00:00Z) nor a duration ago "
                               "(30s, 5m, 2h, 1d)",
                               opts->since);
    zmesh_agent_t *agent;
    int timeout_ms;
    s_relay_t relays[S_RELAYS_MAX];
    size_t count;
    int exit_code =
        s_relays_open(opts, stream, &agent, &timeout_ms, relays, &count);
    s_read_t self = {.opts = opts,
                     .agent = agent,
                     .stream = stream,
                     .color = !opts->json && tap_output_color_wanted(stdout),
                     .topic_width = 16,
                     .publisher_width = 10};
    if (exit_code == 0) {
        self.relay = relays[0];
        if (opts->verbose)
            fprintf(stderr,
                    "mesh-tap: reading stream '%s' from relay %s (%s)\n",
                    stream, self.relay.name, self.relay.id);
        exit_code =
            s_read_pages(&self, timeout_ms, opts->since != NULL, since_us);
    }
    zmesh_agent_destroy(&agent);
    return exit_code;
}

/* ------------------------------------------------------------------------ */
/*  mesh-tap streams                                                        */

/*  One JSON line: {"type":TYPE, then with a relay its name and id, with
    a `stream` its name (unless `object` has one), then the fields of
    `object` as the relay sent them}. */
static int
s_object_json(const char *type, const s_relay_t *relay, const char *stream,
              const msgpack_object *object)
{
    msgpack_sbuffer buffer;
    msgpack_sbuffer_init(&buffer);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buffer, msgpack_sbuffer_write);
    msgpack_pack_object(&pk, *object);
    char *json = NULL;
    int rc = zmesh_msgpack_to_json(buffer.data, buffer.size, &json);
    msgpack_sbuffer_destroy(&buffer);
    if (rc != 0)
        return -1;
    printf("{\"type\":\"%s\"", type);
    if (relay) {
        fputs(",\"relay\":", stdout);
        tap_output_json_string(stdout, relay->name);
        fputs(",\"relay_id\":", stdout);
        tap_output_json_string(stdout, relay->id);
    }
    if (stream && !s_get(object, "stream")) {
        fputs(",\"stream\":", stdout);
        tap_output_json_string(stdout, stream);
    }
    // json is an object: "{...}"; its members follow ours.
    if (strcmp(json, "{}") != 0)
        printf(",%s", json + 1);
    else
        fputc('}', stdout);
    free(json);
    return tap_output_line_done(stdout);
}

static void
s_retention_text(const msgpack_object *stream, char *out, size_t size)
{
    const msgpack_object *retention = s_get(stream, "retention");
    uint64_t age = 0, bytes = 0, events = 0;
    s_get_u64(retention, "max_age_ms", &age);
    s_get_u64(retention, "max_bytes", &bytes);
    s_get_u64(retention, "max_events", &events);
    size_t used = 0;
    out[0] = '\0';
    if (age) {
        static const struct {
            const char *unit;
            uint64_t ms;
        } units[] = {{"d", 86400000},
                     {"h", 3600000},
                     {"m", 60000},
                     {"s", 1000},
                     {"ms", 1}};
        size_t u = 0;
        while (age % units[u].ms != 0)
            u++;
        used += (size_t)snprintf(out + used, size - used, "age %" PRIu64 "%s",
                                 age / units[u].ms, units[u].unit);
    }
    if (bytes && used < size) {
        char text[24];
        tap_output_byte_rate((double)bytes, text, sizeof text);
        text[strlen(text) - 2] = '\0'; // "/s"
        used += (size_t)snprintf(out + used, size - used, "%sbytes %s",
                                 used ? ", " : "", text);
    }
    if (events && used < size)
        used += (size_t)snprintf(out + used, size - used, "%sevents %" PRIu64,
                                 used ? ", " : "", events);
    if (!used)
        snprintf(out, size, "none");
}

static void
s_stream_row(const msgpack_object *stream, bool color)
{
    char name[80], sync[32], retention[96], patterns[256] = "";
    s_get_str(stream, "name", name, sizeof name);
    s_get_str(stream, "sync", sync, sizeof sync);
    s_retention_text(stream, retention, sizeof retention);
    const msgpack_object *list = s_get(stream, "patterns");
    size_t used = 0;
    for (uint32_t i = 0; list && list->type == MSGPACK_OBJECT_ARRAY &&
                         i < list->via.array.size && used < sizeof patterns;
         i++) {
        const msgpack_object *p = &list->via.array.ptr[i];
        if (p->type != MSGPACK_OBJECT_STR)
            continue;
        int n = snprintf(patterns + used, sizeof patterns - used, "%s%.*s",
                         used ? " " : "", (int)p->via.str.size, p->via.str.ptr);
        if (n > 0)
            used += (size_t)n;
    }
    uint64_t first = 0, last = 0, count = 0, bytes = 0, gaps = 0, rejected = 0;
    s_get_u64(stream, "first", &first);
    s_get_u64(stream, "last", &last);
    s_get_u64(stream, "count", &count);
    s_get_u64(stream, "bytes", &bytes);
    s_get_u64(stream, "gaps", &gaps);
    s_get_u64(stream, "rejected", &rejected);
    const msgpack_object *accepting = s_get(stream, "accepting");
    bool failing = accepting && accepting->type == MSGPACK_OBJECT_BOOLEAN &&
                   !accepting->via.boolean;
    char size_text[24];
    tap_output_byte_rate((double)bytes, size_text, sizeof size_text);
    size_text[strlen(size_text) - 2] = '\0';
    fputs("  ", stdout);
    tap_output_field(stdout, color, "1;36", name, 16);
    fputs("  ", stdout);
    tap_output_text(stdout, patterns, 20);
    char range[48];
    if (count == 0)
        snprintf(range, sizeof range, "-");
    else
        snprintf(range, sizeof range, "%" PRIu64 "..%" PRIu64, first, last);
    // A relay that does not report consumers shows "-" rather than 0.
    const msgpack_object *consumers = s_get(stream, "consumers");
    char consumers_text[16] = "-";
    if (consumers && consumers->type == MSGPACK_OBJECT_ARRAY)
        snprintf(consumers_text, sizeof consumers_text, "%" PRIu32,
                 consumers->via.array.size);
    printf("  %-17s %10" PRIu64 " %10s %6" PRIu64 " %8" PRIu64 " %9s  %-14s  ",
           range, count, size_text, gaps, rejected, consumers_text, sync);
    tap_output_text(stdout, retention, 0);
    if (failing) {
        fputs("  ", stdout);
        tap_output_field(stdout, color, "1;31", "NOT ACCEPTING", 0);
    }
}

/*  Asks a relay for $relay.info. On success `reply` holds the answer
    (the caller destroys it whatever the result) and *streams its array of
    streams. Returns 0, or TAP_EXIT_FAILURE after saying why. */
static int
s_info(zmesh_agent_t *agent, const s_relay_t *relay, int timeout_ms,
       msgpack_unpacked *reply, const msgpack_object **streams)
{
    static const uint8_t empty_map = 0x80;
    int exit_code =
        s_ask(agent, relay, S_INFO_TOPIC, &empty_map, 1, timeout_ms, reply);
    if (exit_code == 0 && s_relay_error(relay, &reply->data))
        exit_code = TAP_EXIT_FAILURE;
    if (exit_code == 0) {
        *streams = s_get(&reply->data, "streams");
        if (!*streams || (*streams)->type != MSGPACK_OBJECT_ARRAY) {
            tap_error("relay %s sent an info answer without streams",
                      relay->name);
            exit_code = TAP_EXIT_FAILURE;
        }
    }
    return exit_code;
}

static int
s_streams_of(const tap_options_t *opts, zmesh_agent_t *agent,
             const s_relay_t *relay, int timeout_ms, bool color)
{
    msgpack_unpacked reply;
    msgpack_unpacked_init(&reply);
    const msgpack_object *streams = NULL;
    int exit_code = s_info(agent, relay, timeout_ms, &reply, &streams);
    if (exit_code == 0 && !opts->json) {
        tap_output_field(stdout, color, "1;33", relay->name, 0);
        printf("  %s  %" PRIu32 " stream%s\n", relay->id,
               streams->via.array.size,
               streams->via.array.size == 1 ? "" : "s");
        printf("  %-16s  %-20s  %-17s %10s %10s %6s %8s %9s  %-14s  %s\n",
               "STREAM", "PATTERNS", "RELAY SEQ", "EVENTS", "BYTES", "GAPS",
               "REJECTED", "CONSUMERS", "SYNC", "RETENTION");
    }
    const msgpack_object *about = s_get(&reply.data, "relay");
    if (exit_code == 0 && opts->json && about &&
        about->type == MSGPACK_OBJECT_MAP) {
        int rc = s_object_json("relay", NULL, NULL, about);
        if (rc >= 0)
            exit_code = rc;
    }
    for (uint32_t i = 0; exit_code == 0 && i < streams->via.array.size; i++) {
        const msgpack_object *stream = &streams->via.array.ptr[i];
        int rc;
        if (opts->json)
            rc = s_object_json("stream", relay, NULL, stream);
        else {
            s_stream_row(stream, color);
            rc = tap_output_line_done(stdout);
        }
        if (rc >= 0)
            exit_code = rc;
    }
    msgpack_unpacked_destroy(&reply);
    return exit_code;
}

int
tap_streams_run(const tap_options_t *opts)
{
    zmesh_agent_t *agent;
    int timeout_ms;
    s_relay_t relays[S_RELAYS_MAX];
    size_t count;
    int exit_code =
        s_relays_open(opts, NULL, &agent, &timeout_ms, relays, &count);
    bool color = !opts->json && tap_output_color_wanted(stdout);
    for (size_t i = 0; exit_code == 0 && i < count; i++) {
        if (i > 0 && !opts->json)
            putchar('\n');
        exit_code = s_streams_of(opts, agent, &relays[i], timeout_ms, color);
    }
    zmesh_agent_destroy(&agent);
    return exit_code;
}

/* ------------------------------------------------------------------------ */
/*  mesh-tap consumers                                                      */

/*  How long ago `us` (microseconds since the epoch) was: "12s ago",
    "5m ago", "3h ago", "2d ago"; "-" for 0 (never). */
static void
s_ago_text(int64_t us, char *out, size_t size)
{
    if (us <= 0) {
        snprintf(out, size, "-");
        return;
    }
    int64_t seconds = (tap_now_us() - us) / 1000000;
    if (seconds < 0)
        seconds = 0; // the relay's clock is ahead of ours
    if (seconds < 120)
        snprintf(out, size, "%" PRId64 "s ago", seconds);
    else if (seconds < 7200)
        snprintf(out, size, "%" PRId64 "m ago", seconds / 60);
    else if (seconds < 172800)
        snprintf(out, size, "%" PRId64 "h ago", seconds / 3600);
    else
        snprintf(out, size, "%" PRId64 "d ago", seconds / 86400);
}

/*  A uint field as text, "-" when absent or of another type, `zero` (if
    not NULL) for 0. */
static void
s_u64_text(const msgpack_object *map, const char *key, const char *zero,
           char *out, size_t size)
{
    uint64_t value;
    if (!s_get_u64(map, key, &value))
        snprintf(out, size, "-");
    else if (value == 0 && zero)
        snprintf(out, size, "%s", zero);
    else
        snprintf(out, size, "%" PRIu64, value);
}

/*  One text row of the consumers table. */
static void
s_consumer_row(const char *stream, const msgpack_object *consumer, bool color)
{
    char name[80], pattern[ZMESH_TOPIC_MAX + 1], floor[24], lag[24],
        pending[24], max_deliver[24], max_pending[24], ack_wait[24],
        attached[24];
    s_get_str(consumer, "name", name, sizeof name);
    s_get_str(consumer, "pattern", pattern, sizeof pattern);
    s_u64_text(consumer, "floor", NULL, floor, sizeof floor);
    s_u64_text(consumer, "lag", NULL, lag, sizeof lag);
    s_u64_text(consumer, "pending", NULL, pending, sizeof pending);
    s_u64_text(consumer, "max_deliver", "none", max_deliver,
               sizeof max_deliver);
    s_u64_text(consumer, "max_ack_pending", NULL, max_pending,
               sizeof max_pending);
    uint64_t wait_ms;
    if (s_get_u64(consumer, "ack_wait_ms", &wait_ms)) {
        if (wait_ms % 1000 == 0)
            snprintf(ack_wait, sizeof ack_wait, "%" PRIu64 "s", wait_ms / 1000);
        else
            snprintf(ack_wait, sizeof ack_wait, "%" PRIu64 "ms", wait_ms);
    } else
        snprintf(ack_wait, sizeof ack_wait, "-");
    const msgpack_object *when = s_get(consumer, "attached");
    int64_t attached_us = 0;
    if (when && (when->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                 when->type == MSGPACK_OBJECT_NEGATIVE_INTEGER))
        attached_us = when->via.i64;
    s_ago_text(attached_us, attached, sizeof attached);
    uint64_t lag_value = 0;
    s_get_u64(consumer, "lag", &lag_value);
    fputs("  ", stdout);
    tap_output_field(stdout, color, "1;36", name, 16);
    fputs("  ", stdout);
    tap_output_text(stdout, stream, 12);
    fputs("  ", stdout);
    tap_output_text(stdout, pattern, 20);
    printf("  %10s ", floor);
    // Behind is worth a colour: yellow when it lags at all.
    char lag_field[32];
    snprintf(lag_field, sizeof lag_field, "%10s", lag);
    tap_output_field(stdout, color, lag_value ? "33" : "32", lag_field, 0);
    printf(" %9s  %8s %11s %11s  %s", pending, ack_wait, max_deliver,
           max_pending, attached);
}

/*  Lists the consumers of one relay's streams (of `only`, when given).
    Adds how many it listed to *listed. */
static int
s_consumers_of(const tap_options_t *opts, zmesh_agent_t *agent,
               const s_relay_t *relay, const char *only, int timeout_ms,
               bool color, size_t *listed)
{
    msgpack_unpacked reply;
    msgpack_unpacked_init(&reply);
    const msgpack_object *streams = NULL;
    int exit_code = s_info(agent, relay, timeout_ms, &reply, &streams);
    bool reported = false; // any stream with a "consumers" array
    size_t count = 0;
    for (uint32_t i = 0; exit_code == 0 && i < streams->via.array.size; i++) {
        const msgpack_object *stream = &streams->via.array.ptr[i];
        char name[80];
        s_get_str(stream, "name", name, sizeof name);
        if (only && strcmp(name, only) != 0)
            continue;
        const msgpack_object *list = s_get(stream, "consumers");
        if (!list || list->type != MSGPACK_OBJECT_ARRAY)
            continue;
        reported = true;
        for (uint32_t j = 0; exit_code == 0 && j < list->via.array.size; j++) {
            const msgpack_object *consumer = &list->via.array.ptr[j];
            if (consumer->type != MSGPACK_OBJECT_MAP)
                continue;
            if (count++ == 0 && !opts->json) {
                tap_output_field(stdout, color, "1;33", relay->name, 0);
                printf("  %s\n", relay->id);
                printf("  %-16s  %-12s  %-20s  %10s %10s %9s  %8s %11s %11s  "
                       "%s\n",
                       "CONSUMER", "STREAM", "PATTERN", "FLOOR", "LAG",
                       "PENDING", "ACK WAIT", "MAX DELIVER", "MAX PENDING",
                       "ATTACHED");
            }
            int rc;
            if (opts->json)
                rc = s_object_json("consumer", relay, name, consumer);
            else {
                s_consumer_row(name, consumer, color);
                rc = tap_output_line_done(stdout);
            }
            if (rc >= 0)
                exit_code = rc;
        }
    }
    if (exit_code == 0 && !reported && opts->verbose)
        fprintf(stderr,
                "mesh-tap: relay %s (%.8s) does not report durable "
                "consumers (an older mesh-relay?)\n",
                relay->name, relay->id);
    msgpack_unpacked_destroy(&reply);
    *listed += count;
    return exit_code;
}

int
tap_consumers_run(const tap_options_t *opts)
{
    const char *stream = opts->args_count > 0 ? opts->args[0] : NULL;
    if (stream && !tap_stream_name_ok(stream))
        return tap_usage_error(opts->command,
                               "'%s' is not a stream name (1-64 letters, "
                               "digits, '_' and '-')",
                               stream);
    zmesh_agent_t *agent;
    int timeout_ms;
    s_relay_t relays[S_RELAYS_MAX];
    size_t count, listed = 0;
    int exit_code =
        s_relays_open(opts, stream, &agent, &timeout_ms, relays, &count);
    bool color = !opts->json && tap_output_color_wanted(stdout);
    for (size_t i = 0; exit_code == 0 && i < count; i++) {
        size_t before = listed;
        if (i > 0 && before > 0 && !opts->json)
            putchar('\n');
        exit_code = s_consumers_of(opts, agent, &relays[i], stream, timeout_ms,
                                   color, &listed);
    }
    // Nothing to list is an answer too; a script reads the empty output.
    if (exit_code == 0 && listed == 0 && !opts->json) {
        if (stream)
            printf("no durable consumers of stream '%s'\n", stream);
        else
            printf("no durable consumers\n");
    }
    zmesh_agent_destroy(&agent);
    return exit_code;
}

void
tap_help_consumers(void)
{
    fputs("Usage: mesh-tap consumers [OPTIONS] [STREAM]\n"
          "\n"
          "Lists the durable consumers the relays of the mesh keep (from\n"
          "$relay.info, proto/relay.md#durable-consumers), of every stream\n"
          "or of STREAM: per consumer its name, stream, filter pattern,\n"
          "FLOOR (the relay sequence up to which everything it wants is\n"
          "acknowledged), LAG (the stream's last relay sequence minus the\n"
          "floor), PENDING (records above the floor it wants and has not\n"
          "settled), its settings (ack wait, max deliver, max ack pending)\n"
          "and when it last attached. Waits for the first relay (with\n"
          "STREAM, one that stores it), then asks every relay known by then.\n"
          "With --json, one line per consumer: every field the relay\n"
          "reports (name, pattern, floor, pending, lag, acked_above,\n"
          "live_positions, delivered, acked, ack_wait_ms, max_deliver,\n"
          "max_ack_pending, attached), plus \"type\":\"consumer\", \"relay\",\n"
          "\"relay_id\" and \"stream\".\n"
          "\n"
          "Options:\n"
          "  --json               one JSON object per consumer per line\n"
          "  --relay NAME|ID      only this relay\n"
          "  --timeout SEC        wait this long for a relay and its answer\n"
          "                       (default 5)\n\n",
          stdout);
    tap_options_help_common();
    fputs("\n"
          "Examples:\n"
          "  mesh-tap consumers                     every consumer\n"
          "  mesh-tap consumers orders --json | jq 'select(.lag > 1000)'\n"
          "\n"
          "Exit status: 0 listed (also when there are none); 1 no relay\n"
          "(with STREAM), or it did not answer; 2 usage.\n",
          stdout);
}

void
tap_help_read(void)
{
    fputs("Usage: mesh-tap read [OPTIONS] STREAM\n"
          "\n"
          "Reads a stream stored by mesh-relay: finds a relay that stores\n"
          "STREAM (by the \"relay\" header it shows its peers), asks it for\n"
          "the stored events page by page ($relay.read, proto/relay.md) and\n"
          "prints them as the live view does, each with its relay sequence\n"
          "number (#N, dense from 1 in a stream). Reads what the stream\n"
          "held when the command started, then exits. Gaps the relay\n"
          "recorded (events it could not get) are printed as gap lines;\n"
          "relay sequence numbers deleted by retention or lost to disk\n"
          "damage are reported on stderr.\n"
          "\n"
          "With --json, one object per line, the live view's fields plus\n"
          "\"rseq\" (relay sequence) and \"stored\" (when the relay stored\n"
          "it, microseconds since the epoch):\n"
          "  {\"type\":\"message\",\"topic\":...,\"publisher\":...,"
          "\"publisher_id\":...,\n"
          "   \"seq\":N,\"ts\":US,\"recv_ts\":US,\"size\":BYTES,\"rseq\":N,"
          "\"stored\":US,\n"
          "   \"payload\":JSON}\n"
          "  {\"type\":\"gap\",\"topic\":...,\"publisher\":...,"
          "\"publisher_id\":...,\n"
          "   \"first\":N,\"last\":N,\"count\":N,\"ts\":US,\"reason\":...,"
          "\"rseq\":N,\n"
          "   \"stored\":US}\n"
          "\n"
          "Options:\n"
          "  --from-seq N         start at relay sequence N (default: the\n"
          "                       oldest stored); if retention deleted it,\n"
          "                       start at the oldest and say so\n"
          "  --since TIME         start at the first event stored at or after\n"
          "                       TIME: RFC 3339 (2026-11-23T17:00:00Z) or a\n"
          "                       duration ago (30s, 5m, 2h, 1h30m, 7d)\n"
          "  --count N            print at most N events\n"
          "  --json               one JSON object per line\n"
          "  --relay NAME|ID      ask this relay (its name, or an id prefix\n"
          "                       of 8+ hex digits)\n"
          "  --timeout SEC        wait this long for a relay and for each\n"
          "                       answer (default 5)\n\n",
          stdout);
    tap_options_help_common();
    fputs("\n"
          "Examples:\n"
          "  mesh-tap read orders                   everything stored\n"
          "  mesh-tap read orders --since 15m       the last 15 minutes\n"
          "  mesh-tap read orders --from-seq 1200 --count 10 --json\n"
          "\n"
          "Exit status: 0 read; 1 no relay with the stream, or the relay\n"
          "failed or did not answer; 2 usage.\n",
          stdout);
}

void
tap_help_streams(void)
{
    fputs("Usage: mesh-tap streams [OPTIONS]\n"
          "\n"
          "Lists what the relays of the mesh store ($relay.info,\n"
          "proto/relay.md): per relay, each stream with its patterns, the\n"
          "relay sequence range and number of events stored, bytes, gap\n"
          "records, events rejected (disk full), durable consumers ('mesh-tap\n"
          "consumers' shows them), sync policy and retention.\n"
          "Waits for the first relay to turn up, then asks every relay known\n"
          "by then. With --json, per relay one line {\"type\":\"relay\",...}\n"
          "(its name, id, version, request and agent counters), then one\n"
          "line per stream: every field the relay reports (\"consumers\"\n"
          "included), plus \"type\":\"stream\", \"relay\" and \"relay_id\".\n"
          "\n"
          "Options:\n"
          "  --json               one JSON object per stream per line\n"
          "  --relay NAME|ID      only this relay\n"
          "  --timeout SEC        wait this long for a relay and its answer\n"
          "                       (default 5)\n\n",
          stdout);
    tap_options_help_common();
    fputs("\n"
          "Examples:\n"
          "  mesh-tap streams                       every relay's streams\n"
          "  mesh-tap streams --json --relay archive\n"
          "\n"
          "Exit status: 0 listed; 1 no relay found, or it did not answer; 2\n"
          "usage.\n",
          stdout);
}
