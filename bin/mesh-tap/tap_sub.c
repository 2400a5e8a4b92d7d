/*  tap_sub.c - "mesh-tap [sub]": the live view. Subscribes to the given
    patterns (every topic by default) and prints as one line each: every
    event (a repaired one marked), every gap, every direct message and
    request sent to the tap, and each peer join or leave: aligned text for
    people (coloured on a terminal), or a JSON object for programs, flushed
    at once so a pipe sees it live. --publisher filters after receipt (the
    library subscribes by topic only). Requests are shown, not answered.
    Stops after --count events, at --timeout or on SIGINT/SIGTERM, and
    destroys the agent so peers hear BYE. With --durable NAME the one
    pattern is consumed as a durable consumer instead (tap_durable.c): the
    same lines, with the consumer's fields, each event acknowledged once
    it is printed, and loss the relay reports shown as LOST lines.
*/
#include "tap_agent.h"
#include "tap_durable.h"
#include "tap_options.h"
#include "tap_output.h"

#include "zmesh.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/*  Column widths of the human lines: they grow to the widest topic and
    publisher seen (up to a cap), so lines stay aligned as traffic goes. */
typedef struct {
    size_t topic;
    size_t publisher;
    bool color;
} s_layout_t;

static size_t
s_grow(size_t width, const char *text, size_t cap)
{
    size_t columns = tap_output_columns(text);
    return columns > width && columns <= cap ? columns : width;
}

/*  The end of a JSON line with a payload: "payload" (or "payload_hex"
    with --raw, nothing with --headers-only) and the closing brace. */
static void
s_print_payload_json(const tap_options_t *opts, FILE *out,
                     const zmesh_event_t *event)
{
    size_t size = 0;
    const void *payload = zmesh_event_payload(event, &size);
    if (opts->raw) {
        fputs(",\"payload_hex\":\"", out);
        tap_output_hex(out, payload, size);
        fputc('"', out);
    } else if (!opts->headers_only) {
        fputs(",\"payload\":", out);
        int rc = tap_output_json_payload(out, payload, size);
        if (rc != 0) {
            fputs(",\"payload_error\":", out);
            tap_output_json_string(out, zmesh_strerror(rc));
        }
    }
    fputc('}', out);
}

static void
s_print_message_json(const tap_options_t *opts, FILE *out,
                     const zmesh_event_t *event, int64_t recv_us)
{
    size_t size = 0;
    zmesh_event_payload(event, &size);
    fputs("{\"type\":\"message\",\"topic\":", out);
    tap_output_json_string(out, zmesh_event_topic(event));
    fputs(",\"publisher\":", out);
    tap_output_json_string(out, zmesh_event_peer_name(event));
    fputs(",\"publisher_id\":", out);
    tap_output_json_string(out, zmesh_event_peer_id(event));
    fprintf(out,
            ",\"seq\":%" PRIu64 ",\"ts\":%" PRId64 ",\"recv_ts\":%" PRId64
            ",\"size\":%zu",
            zmesh_event_sequence(event), zmesh_event_timestamp(event), recv_us,
            size);
    // Present only when true, so the usual line stays as it was.
    if (zmesh_event_repaired(event))
        fputs(",\"repaired\":true", out);
    // A durable consumer's message: rseq 0 when it came live.
    const char *consumer = zmesh_event_consumer(event);
    if (consumer[0]) {
        fputs(",\"consumer\":", out);
        tap_output_json_string(out, consumer);
        fprintf(
            out, ",\"rseq\":%" PRIu64 ",\"deliveries\":%u,\"redelivered\":%s",
            zmesh_event_stream_sequence(event), zmesh_event_deliveries(event),
            zmesh_event_redelivered(event) ? "true" : "false");
    }
    s_print_payload_json(opts, out, event);
}

/*  A direct message or request to the tap: {"type":"direct"|"request",
    "topic","peer","peer_id",("req",)"ts","size","payload"}. They carry no
    publish time: ts is when the tap received it. */
static void
s_print_direct_json(const tap_options_t *opts, FILE *out,
                    const zmesh_event_t *event, int64_t recv_us)
{
    bool request = zmesh_event_type(event) == ZMESH_EVENT_REQUEST;
    size_t size = 0;
    zmesh_event_payload(event, &size);
    fprintf(out, "{\"type\":\"%s\",\"topic\":", request ? "request" : "direct");
    tap_output_json_string(out, zmesh_event_topic(event));
    fputs(",\"peer\":", out);
    tap_output_json_string(out, zmesh_event_peer_name(event));
    fputs(",\"peer_id\":", out);
    tap_output_json_string(out, zmesh_event_peer_id(event));
    if (request)
        fprintf(out, ",\"req\":%" PRIu64, zmesh_event_request_id(event));
    fprintf(out, ",\"ts\":%" PRId64 ",\"size\":%zu", recv_us, size);
    s_print_payload_json(opts, out, event);
}

/*  A human line with a payload: time, topic, sender, then in the
    sequence column the sequence number of a message, "direct" or
    "request N", and a "repaired" tag on a message that was sent again.
    Direct messages and requests carry no publish time: the time shown is
    when the tap received them. */
static void
s_print_message_text(const tap_options_t *opts, FILE *out, s_layout_t *layout,
                     const zmesh_event_t *event, int64_t recv_us)
{
    const char *topic = zmesh_event_topic(event);
    const char *publisher = zmesh_event_peer_name(event);
    // An event read back from a relay may come without its publisher's
    // name (the publisher has gone): show its id's start, as read does.
    char id_start[9];
    if (!publisher[0]) {
        snprintf(id_start, sizeof id_start, "%.8s", zmesh_event_peer_id(event));
        publisher = id_start;
    }
    zmesh_event_type_t type = zmesh_event_type(event);
    layout->topic = s_grow(layout->topic, topic, 48);
    layout->publisher = s_grow(layout->publisher, publisher, 32);
    char clock[16];
    tap_output_clock(type == ZMESH_EVENT_MESSAGE ? zmesh_event_timestamp(event)
                                                 : recv_us,
                     clock);
    tap_output_field(out, layout->color, "2", clock, 0);
    fputs("  ", out);
    tap_output_field(out, layout->color, "36", topic, layout->topic);
    fputs("  ", out);
    tap_output_field(out, layout->color, "33", publisher, layout->publisher);
    char seq[40];
    fputs("  ", out);
    if (type == ZMESH_EVENT_MESSAGE) {
        snprintf(seq, sizeof seq, "%6" PRIu64, zmesh_event_sequence(event));
        tap_output_field(out, layout->color, "2", seq, 0);
    } else {
        if (type == ZMESH_EVENT_REQUEST)
            snprintf(seq, sizeof seq, "request %" PRIu64,
                     zmesh_event_request_id(event));
        else
            snprintf(seq, sizeof seq, "%6s", "direct");
        tap_output_field(out, layout->color, "1;35", seq, 0);
    }
    if (zmesh_event_repaired(event)) {
        fputs("  ", out);
        tap_output_field(out, layout->color, "35", "repaired", 0);
    }
    // A durable consumer's message: where it came from (#relay sequence,
    // or live), and how often it was delivered when more than once.
    if (zmesh_event_consumer(event)[0]) {
        uint64_t rseq = zmesh_event_stream_sequence(event);
        if (rseq)
            snprintf(seq, sizeof seq, "#%" PRIu64, rseq);
        else
            snprintf(seq, sizeof seq, "live");
        fputs("  ", out);
        tap_output_field(out, layout->color, "2", seq, 0);
        if (zmesh_event_redelivered(event) ||
            zmesh_event_deliveries(event) > 1) {
            snprintf(seq, sizeof seq, "redelivered %u",
                     zmesh_event_deliveries(event));
            fputs("  ", out);
            tap_output_field(out, layout->color, "35", seq, 0);
        }
    }
    fputs("  ", out);
    size_t size = 0;
    const void *payload = zmesh_event_payload(event, &size);
    if (opts->headers_only) {
        fprintf(out, "%.8s  %zu byte%s", zmesh_event_peer_id(event), size,
                size == 1 ? "" : "s");
        return;
    }
    if (opts->raw) {
        fprintf(out, "id=%s ts=%" PRId64 " recv_ts=%" PRId64 " size=%zu\n",
                zmesh_event_peer_id(event), zmesh_event_timestamp(event),
                recv_us, size);
        tap_output_hex_dump(out, layout->color, payload, size, "    ");
        return;
    }
    // The rendering is valid UTF-8 with every control character escaped,
    // so it is safe to print as it is.
    int rc = tap_output_json_payload(out, payload, size);
    if (rc != 0)
        fprintf(out, " (payload not shown: %s)", zmesh_strerror(rc));
}

static void
s_print_peer_json(FILE *out, const zmesh_event_t *event)
{
    bool joined = zmesh_event_type(event) == ZMESH_EVENT_PEER_JOINED;
    fprintf(out,
            "{\"type\":\"%s\",\"peer\":", joined ? "peer_joined" : "peer_left");
    tap_output_json_string(out, zmesh_event_peer_name(event));
    fputs(",\"peer_id\":", out);
    tap_output_json_string(out, zmesh_event_peer_id(event));
    fputs(",\"reason\":", out);
    tap_output_json_string(out, zmesh_event_reason(event));
    // Peer events carry no time of their own: this is when we saw it.
    fprintf(out, ",\"ts\":%" PRId64 "}", tap_now_us());
}

static void
s_print_peer_text(FILE *out, bool color, const zmesh_event_t *event)
{
    bool joined = zmesh_event_type(event) == ZMESH_EVENT_PEER_JOINED;
    char clock[16];
    tap_output_clock(tap_now_us(), clock);
    tap_output_field(out, color, "2", clock, 0);
    fputs("  ", out);
    tap_output_sgr(out, color, joined ? "32" : "31");
    fprintf(out, "-- peer %s: ", joined ? "joined" : "left");
    tap_output_text(out, zmesh_event_peer_name(event), 0);
    fprintf(out, " (%.8s, ", zmesh_event_peer_id(event));
    tap_output_text(out, zmesh_event_reason(event), 0);
    fputc(')', out);
    tap_output_sgr(out, color, "0");
}

/*  A gap: events of one publisher's topic that never arrived. JSON has
    everything a script needs to account for every sequence number:
    {"type":"gap","topic","publisher","publisher_id","first","last",
    "count","ts"}. */
static void
s_print_gap_json(FILE *out, const zmesh_event_t *event)
{
    uint64_t first = zmesh_event_sequence(event);
    uint64_t last = zmesh_event_gap_last(event);
    fputs("{\"type\":\"gap\",\"topic\":", out);
    tap_output_json_string(out, zmesh_event_topic(event));
    fputs(",\"publisher\":", out);
    tap_output_json_string(out, zmesh_event_peer_name(event));
    fputs(",\"publisher_id\":", out);
    tap_output_json_string(out, zmesh_event_peer_id(event));
    fprintf(out,
            ",\"first\":%" PRIu64 ",\"last\":%" PRIu64 ",\"count\":%" PRIu64
            ",\"ts\":%" PRId64,
            first, last, last - first + 1, zmesh_event_timestamp(event));
    // A durable consumer's gap (one the relay recorded, or the live path
    // lost and the relay could not fill): whose, and why.
    const char *consumer = zmesh_event_consumer(event);
    if (consumer[0]) {
        fputs(",\"consumer\":", out);
        tap_output_json_string(out, consumer);
        fputs(",\"reason\":", out);
        tap_output_json_string(out, zmesh_event_reason(event));
    }
    fputc('}', out);
}

static void
s_print_gap_text(FILE *out, bool color, const zmesh_event_t *event)
{
    uint64_t first = zmesh_event_sequence(event);
    uint64_t last = zmesh_event_gap_last(event);
    char clock[16];
    tap_output_clock(zmesh_event_timestamp(event), clock);
    tap_output_field(out, color, "2", clock, 0);
    fputs("  ", out);
    tap_output_sgr(out, color, "33");
    fputs("-- gap: ", out);
    tap_output_text(out, zmesh_event_topic(event), 0);
    fputs(" from ", out);
    tap_output_text(out, zmesh_event_peer_name(event), 0);
    fprintf(out, ": %" PRIu64 " missing (%" PRIu64 "..%" PRIu64 ")",
            last - first + 1, first, last);
    const char *reason = zmesh_event_reason(event);
    if (zmesh_event_consumer(event)[0] && reason[0]) {
        fputs(", ", out);
        tap_output_text(out, reason, 0);
    }
    tap_output_sgr(out, color, "0");
}

/*  Prints one event. Returns -1 to go on, or the exit code to stop with
    when stdout is gone. */
static int
s_print_event(const tap_options_t *opts, s_layout_t *layout,
              const zmesh_event_t *event)
{
    int64_t recv_us = tap_now_us();
    switch (zmesh_event_type(event)) {
    case ZMESH_EVENT_GAP:
        if (opts->json)
            s_print_gap_json(stdout, event);
        else
            s_print_gap_text(stdout, layout->color, event);
        break;
    case ZMESH_EVENT_MESSAGE:
        if (opts->json)
            s_print_message_json(opts, stdout, event, recv_us);
        else
            s_print_message_text(opts, stdout, layout, event, recv_us);
        break;
    case ZMESH_EVENT_DIRECT:
    case ZMESH_EVENT_REQUEST:
        if (opts->json)
            s_print_direct_json(opts, stdout, event, recv_us);
        else
            s_print_message_text(opts, stdout, layout, event, recv_us);
        break;
    case ZMESH_EVENT_PEER_JOINED:
    case ZMESH_EVENT_PEER_LEFT:
        if (opts->json)
            s_print_peer_json(stdout, event);
        else
            s_print_peer_text(stdout, layout->color, event);
        break;
    case ZMESH_EVENT_LOST:
        if (opts->json)
            tap_durable_print_lost_json(stdout, event);
        else
            tap_durable_print_lost_text(stdout, layout->color, event);
        break;
    case ZMESH_EVENT_REPLY: // the tap asks nothing here: not for it
    case ZMESH_EVENT_CONFIRM: return -1; // nor publishes with confirms
    }
    return tap_output_line_done(stdout);
}

/*  What --count counts: the events with a payload, messages and the
    direct messages and requests sent to the tap; not gaps or peers. A
    durable consumer counts its messages only. */
static bool
s_counted(const tap_options_t *opts, const zmesh_event_t *event)
{
    zmesh_event_type_t type = zmesh_event_type(event);
    if (opts->durable)
        return type == ZMESH_EVENT_MESSAGE;
    return type == ZMESH_EVENT_MESSAGE || type == ZMESH_EVENT_DIRECT ||
           type == ZMESH_EVENT_REQUEST;
}

/*  Receives and prints until the count, the deadline or a signal. A
    durable consumer (`durable` not NULL) acknowledges each event after
    its line is out, and wakes at least every TAP_DURABLE_CHECK_MS to see
    whether the relay refused it. */
static int
s_run_loop(const tap_options_t *opts, zmesh_agent_t *agent,
           tap_durable_t *durable)
{
    s_layout_t layout = {16, 10,
                         !opts->json && tap_output_color_wanted(stdout)};
    int64_t deadline = tap_agent_deadline(opts);
    long received = 0;
    for (;;) {
        int64_t until = deadline;
        if (durable) {
            tap_durable_check(durable, agent);
            int64_t check = tap_monotonic_ms() + TAP_DURABLE_CHECK_MS;
            until = check < deadline ? check : deadline;
        }
        const zmesh_event_t *event = NULL;
        int rc = tap_agent_next(agent, until, &event);
        if (rc != 0)
            return rc;
        if (!event) {
            if (tap_interrupted() || tap_monotonic_ms() >= deadline)
                break;
            continue; // a durable consumer's wake-up
        }
        if (!tap_options_publisher_wanted(opts, zmesh_event_peer_name(event),
                                          zmesh_event_peer_id(event)))
            continue;
        rc = s_print_event(opts, &layout, event);
        if (rc >= 0)
            return rc; // stdout is gone: what was not printed stays unacked
        if (durable)
            tap_durable_ack(durable, agent, event);
        if (s_counted(opts, event) && opts->count > 0 &&
            ++received >= opts->count)
            return TAP_EXIT_OK;
    }
    return tap_agent_count_verdict(opts, received, "events");
}

int
tap_sub_run(const tap_options_t *opts)
{
    int exit_code = tap_options_check_patterns(opts, 0);
    if (exit_code != 0)
        return exit_code;
    zmesh_agent_t *agent = NULL;
    // A durable consumer subscribes after start (the library's rule), and
    // only through zmesh_agent_subscribe_durable.
    exit_code =
        tap_agent_open(opts, opts->durable ? TAP_AGENT_NO_PATTERNS : 0, &agent);
    if (exit_code != 0)
        return exit_code;
    tap_durable_t durable;
    if (opts->durable)
        exit_code = tap_durable_subscribe(&durable, opts, agent);
    tap_signal_install();
    if (opts->verbose && exit_code == 0)
        fprintf(stderr,
                "mesh-tap: watching mesh '%s' as %s (control endpoint %s)\n",
                tap_options_mesh(opts), zmesh_agent_id(agent),
                zmesh_agent_endpoint(agent));
    if (exit_code == 0)
        exit_code = s_run_loop(opts, agent, opts->durable ? &durable : NULL);
    // Destroying the agent also hands the relay the last acknowledgements.
    zmesh_agent_destroy(&agent);
    return exit_code;
}

void
tap_help_sub(void)
{
    fputs("Usage: mesh-tap [sub] [OPTIONS] [PATTERN...]\n"
          "       mesh-tap [sub] --durable NAME [OPTIONS] PATTERN\n"
          "\n"
          "Joins the mesh and prints every event on topics matching a PATTERN\n"
          "(default '>': every topic), one line each, and a line whenever a\n"
          "peer joins or leaves, events are lost (a gap), or a peer sends the\n"
          "tap a direct message or a request (shown, never answered: the\n"
          "requester times out). Patterns are NATS-style: '*' is one token,\n"
          "'>' (last) one or more, e.g. 'orders.*' or 'sensors.>'.\n"
          "\n"
          "Human lines: time (publisher's clock), topic, publisher, sequence\n"
          "number (or \"direct\", \"request N\"), \"repaired\" for an "
          "event lost\n"
          "and sent again, payload as compact JSON; coloured on a terminal\n"
          "unless NO_COLOR is set. With --json, one object per line:\n"
          "  {\"type\":\"message\",\"topic\":...,\"publisher\":...,"
          "\"publisher_id\":...,\n"
          "   \"seq\":N,\"ts\":US,\"recv_ts\":US,\"size\":BYTES,"
          "[\"repaired\":true,]\n"
          "   \"payload\":JSON}\n"
          "  {\"type\":\"gap\",\"topic\":...,\"publisher\":...,"
          "\"publisher_id\":...,\n"
          "   \"first\":N,\"last\":N,\"count\":N,\"ts\":US}\n"
          "  {\"type\":\"direct\"|\"request\",\"topic\":...,\"peer\":...,"
          "\"peer_id\":...,\n"
          "   [\"req\":N,]\"ts\":US,\"size\":BYTES,\"payload\":JSON}\n"
          "  {\"type\":\"peer_joined\"|\"peer_left\",\"peer\":...,"
          "\"peer_id\":...,\n"
          "   \"reason\":...,\"ts\":US}\n"
          "(ts: for messages and gaps the publish time on the publisher's\n"
          "clock, for the others when the tap saw them; recv_ts: when the tap\n"
          "received the message; all microseconds since the epoch.)\n"
          "\n"
          "Durable consumer (--durable NAME): consumes PATTERN as the\n"
          "consumer NAME kept by a mesh-relay whose stream covers it. First\n"
          "what was stored since NAME last acknowledged (everything, for a\n"
          "new consumer, see --start), then live events from the\n"
          "publishers, in order, without duplicates. Each event is\n"
          "acknowledged once its line is printed, so the next run under\n"
          "NAME starts after it; events not printed (--count reached,\n"
          "Ctrl-C) come again. Text lines add #RSEQ (relay sequence) or\n"
          "\"live\", and \"redelivered N\"; JSON messages add\n"
          "  \"consumer\":NAME,\"rseq\":N (0: came live),\"deliveries\":N,"
          "\"redelivered\":BOOL\n"
          "gaps add \"consumer\" and \"reason\", and records the relay\n"
          "deleted (retention) before NAME read them are reported as\n"
          "  {\"type\":\"lost\",\"consumer\":NAME,\"first\":RSEQ,"
          "\"last\":RSEQ,\"count\":N,\"ts\":US}\n"
          "(text: a \"-- LOST\" line). While no relay answers, live events\n"
          "wait; a refusal by the relay is said once on stderr.\n"
          "\n"
          "Options:\n"
          "  --json               one JSON object per line\n"
          "  --publisher NAME     only events from this publisher: its name,\n"
          "                       or its id or an id prefix of 8+ hex digits\n"
          "                       (repeatable: any of them)\n"
          "  --headers-only       leave the payload out; show its size\n"
          "  --raw                show the payload's bytes as a hex dump\n"
          "                       (\"payload_hex\" in JSON) and every meta "
          "field\n"
          "  --count N            exit 0 after N events (messages, direct\n"
          "                       messages and requests; not gaps or peers)\n"
          "  --timeout SEC        stop after SEC seconds: exit 1 if --count\n"
          "                       was not reached, else 0\n"
          "  --durable NAME       consume PATTERN as durable consumer NAME\n"
          "                       (1-64 letters, digits, '_', '.', '-')\n"
          "Options of --durable (settings replace the stored ones; --start\n"
          "and --stream count only when the consumer is created):\n"
          "  --start FROM         where a new consumer starts: all (default,\n"
          "                       everything stored), new, last (per topic\n"
          "                       the last stored), seq:N (relay sequence),\n"
          "                       time:TIME (RFC 3339, or ago: 15m, 2h, 1d)\n"
          "  --stream NAME        the relay's stream (default: the first\n"
          "                       whose patterns cover PATTERN)\n"
          "  --ack-wait SEC       redeliver an event not acknowledged in SEC\n"
          "                       (default 30)\n"
          "  --max-deliver N      give up on an event after N deliveries\n"
          "                       (default 0: never)\n"
          "  --max-ack-pending N  events delivered and not yet acknowledged,\n"
          "                       at most (default 1000)\n\n",
          stdout);
    tap_options_help_common();
    fputs(
        "\n"
        "Examples:\n"
        "  mesh-tap                              everything, until Ctrl-C\n"
        "  mesh-tap 'orders.>' 'billing.*'       two patterns\n"
        "  mesh-tap --publisher billing --headers-only\n"
        "                                        what billing sends, no "
        "payloads\n"
        "  mesh-tap --raw sensors.kitchen.temp   the exact msgpack bytes\n"
        "  mesh-tap --json --count 1 --timeout 10 orders.created\n"
        "                                        wait for one event, as "
        "JSON\n"
        "  mesh-tap --name ops --json 'alerts.>' alerts, and what peers "
        "send\n"
        "                                        to 'ops' directly\n"
        "  mesh-tap sub peers                    the topic 'peers' (plain\n"
        "                                        'mesh-tap peers' lists "
        "peers)\n"
        "  mesh-tap --durable billing 'orders.>' consume orders as 'billing':\n"
        "                                        what it missed, then live\n"
        "  mesh-tap --durable audit --start time:1h --json --count 100 \\\n"
        "      --timeout 30 'audit.>'            a script's batch of 100\n",
        stdout);
}
