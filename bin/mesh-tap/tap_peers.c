/*  tap_peers.c - "mesh-tap peers": who is in the mesh. Joins, listens for
    --wait seconds (peers beacon once a second, so the default 1.5 s hears
    each of them), then prints zmesh_agent_peers(): a block of text per
    peer, or one JSON object per peer per line, each with the counters the
    peer gives when asked (a STATS message, zmesh_agent_query_counters). With
   --watch it prints a line per join and leave instead, as they happen, until
   --count,
    --timeout or Ctrl-C. Subscribes to nothing, so the tap itself never
    makes a publisher send it data.
*/
#include "tap_agent.h"
#include "tap_options.h"
#include "tap_output.h"

#include "zmesh.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static void
s_print_json_list(FILE *out, const zmesh_peer_list_t *list, size_t i,
                  size_t (*size_of)(const zmesh_peer_list_t *, size_t),
                  const char *(*item)(const zmesh_peer_list_t *, size_t,
                                      size_t))
{
    fputc('[', out);
    for (size_t j = 0; j < size_of(list, i); j++) {
        if (j > 0)
            fputc(',', out);
        tap_output_json_string(out, item(list, i, j));
    }
    fputc(']', out);
}

static void
s_print_peer_json(FILE *out, const zmesh_peer_list_t *list, size_t i)
{
    fputs("{\"type\":\"peer\",\"name\":", out);
    tap_output_json_string(out, zmesh_peer_name(list, i));
    fputs(",\"id\":", out);
    tap_output_json_string(out, zmesh_peer_id(list, i));
    fputs(",\"endpoint\":", out);
    tap_output_json_string(out, zmesh_peer_endpoint(list, i));
    fputs(",\"data_endpoint\":", out);
    tap_output_json_string(out, zmesh_peer_data_endpoint(list, i));
    fputs(",\"host\":", out);
    tap_output_json_string(out, zmesh_peer_host(list, i));
    fprintf(out, ",\"pid\":%" PRIu64 ",\"version\":", zmesh_peer_pid(list, i));
    tap_output_json_string(out, zmesh_peer_version(list, i));
    fputs(",\"origin\":", out);
    tap_output_json_string(out, zmesh_peer_origin(list, i));
    fprintf(out, ",\"connected\":%s,\"last_seen_ms\":%" PRId64,
            zmesh_peer_connected(list, i) ? "true" : "false",
            zmesh_peer_last_seen_ms(list, i));
    fputs(",\"publishes\":", out);
    s_print_json_list(out, list, i, zmesh_peer_publishes_size,
                      zmesh_peer_publishes);
    fputs(",\"wants\":", out);
    s_print_json_list(out, list, i, zmesh_peer_wants_size, zmesh_peer_wants);
    fputs(",\"serves\":", out);
    s_print_json_list(out, list, i, zmesh_peer_serves_size, zmesh_peer_serves);
    fputs(",\"headers\":{", out);
    for (size_t j = 0; j < zmesh_peer_headers_size(list, i); j++) {
        if (j > 0)
            fputc(',', out);
        tap_output_json_string(out, zmesh_peer_header_key(list, i, j));
        fputc(':', out);
        tap_output_json_string(out, zmesh_peer_header_value(list, i, j));
    }
    fputc('}', out);
}

/*  The peer's counters as JSON: {"agent":{...},"topics":{topic:{...}}},
    or null when it did not answer. */
static void
s_print_counters_json(FILE *out, const zmesh_counters_t *counters)
{
    if (!counters) {
        fputs(",\"counters\":null", out);
        return;
    }
    fputs(",\"counters\":{", out);
    bool topics = false;
    for (size_t g = 0; g < zmesh_counters_size(counters); g++) {
        const char *kind = zmesh_counters_kind(counters, g);
        bool agent = strcmp(kind, "agent") == 0;
        if (!agent && strcmp(kind, "topic") != 0)
            continue;
        if (agent)
            fputs("\"agent\":{", out);
        else {
            fputs(topics ? "," : "\"topics\":{", out);
            topics = true;
            tap_output_json_string(out, zmesh_counters_name(counters, g));
            fputs(":{", out);
        }
        for (size_t k = 0; k < zmesh_counters_keys(counters, g); k++) {
            if (k > 0)
                fputc(',', out);
            tap_output_json_string(out, zmesh_counters_key(counters, g, k));
            fprintf(out, ":%" PRIu64, zmesh_counters_value(counters, g, k));
        }
        fputc('}', out);
        if (agent)
            fputc(',', out);
    }
    fputs(topics ? "}}" : "\"topics\":{}}", out);
}

/*  One line of the counters that matter most for reliable delivery. */
static void
s_print_counters_text(FILE *out, const zmesh_counters_t *counters)
{
    fprintf(out, "\n  %-10s ", "counters");
    if (!counters) {
        fputs("(no answer)", out);
        return;
    }
    static const struct {
        const char *key;
        const char *label;
    } shown[] = {
        {"events_published", "published"}, {"events_received", "received"},
        {"events_repaired", "repaired"},   {"gaps", "gaps"},
        {"events_missing", "missing"},     {"backlog_dropped", "dropped"},
        {"queue_depth", "queued"},         {"events_resent", "resent"},
        {"directs_received", "direct in"}, {"requests_timed_out", "timeouts"},
    };
    for (size_t j = 0; j < sizeof shown / sizeof shown[0]; j++)
        fprintf(out, "%s%s %" PRIu64, j ? ", " : "", shown[j].label,
                zmesh_counters_get(counters, 0, shown[j].key));
}

static void
s_print_text_list(FILE *out, const char *label, const zmesh_peer_list_t *list,
                  size_t i,
                  size_t (*size_of)(const zmesh_peer_list_t *, size_t),
                  const char *(*item)(const zmesh_peer_list_t *, size_t,
                                      size_t))
{
    fprintf(out, "  %-10s ", label);
    size_t n = size_of(list, i);
    if (n == 0)
        fputs("-", out);
    for (size_t j = 0; j < n; j++) {
        if (j > 0)
            fputs(", ", out);
        tap_output_text(out, item(list, i, j), 0);
    }
    fputc('\n', out);
}

static void
s_print_peer_text(FILE *out, bool color, const zmesh_peer_list_t *list,
                  size_t i)
{
    tap_output_field(out, color, "1;33", zmesh_peer_name(list, i), 0);
    fprintf(out, "  %s\n", zmesh_peer_id(list, i));
    fputs("  host       ", out);
    tap_output_text(out, zmesh_peer_host(list, i), 0);
    fprintf(out, ", pid %" PRIu64 ", zmesh ", zmesh_peer_pid(list, i));
    tap_output_text(out, zmesh_peer_version(list, i), 0);
    fputs("\n  found      ", out);
    tap_output_text(out, zmesh_peer_origin(list, i), 0);
    fprintf(out, ", last heard %" PRId64 " ms ago, data ",
            zmesh_peer_last_seen_ms(list, i));
    if (zmesh_peer_connected(list, i))
        tap_output_field(out, color, "32", "connected", 0);
    else
        fputs("not connected", out);
    fputc('\n', out);
    fputs("  control    ", out);
    tap_output_text(out, zmesh_peer_endpoint(list, i), 0);
    fputs("\n  data       ", out);
    tap_output_text(out, zmesh_peer_data_endpoint(list, i), 0);
    fputc('\n', out);
    s_print_text_list(out, "publishes", list, i, zmesh_peer_publishes_size,
                      zmesh_peer_publishes);
    s_print_text_list(out, "wants", list, i, zmesh_peer_wants_size,
                      zmesh_peer_wants);
    s_print_text_list(out, "serves", list, i, zmesh_peer_serves_size,
                      zmesh_peer_serves);
    fprintf(out, "  %-10s ", "headers");
    size_t n = zmesh_peer_headers_size(list, i);
    if (n == 0)
        fputs("-", out);
    for (size_t j = 0; j < n; j++) {
        if (j > 0)
            fputs(", ", out);
        tap_output_text(out, zmesh_peer_header_key(list, i, j), 0);
        fputc('=', out);
        tap_output_text(out, zmesh_peer_header_value(list, i, j), 0);
    }
}

/*  Lets discovery run for the wait, handing the agent its events (peer
    joins and leaves, which the list will show anyway). */
static int
s_listen(const tap_options_t *opts, zmesh_agent_t *agent)
{
    // No signal handler is installed here, so Ctrl-C still ends the tap
    // at once and the loop stops only at the deadline.
    int64_t deadline = tap_monotonic_ms() + opts->wait_ms;
    const zmesh_event_t *event = NULL;
    int rc;
    do
        rc = tap_agent_next(agent, deadline, &event);
    while (rc == 0 && event);
    return rc;
}

static int
s_print(const tap_options_t *opts, zmesh_agent_t *agent,
        const zmesh_peer_list_t *list)
{
    bool color = !opts->json && tap_output_color_wanted(stdout);
    size_t n = zmesh_peer_list_size(list);
    if (n == 0)
        fprintf(stderr, "mesh-tap: no peers in mesh '%s' after %.1f s\n",
                tap_options_mesh(opts), opts->wait_ms / 1000.0);
    for (size_t i = 0; i < n; i++) {
        // Each peer is asked in turn; one that does not answer within
        // half a second (its application is not in a zmesh call) is shown
        // without counters.
        zmesh_counters_t *counters = NULL;
        zmesh_agent_query_counters(agent, zmesh_peer_id(list, i), 500,
                                   &counters);
        if (opts->json) {
            s_print_peer_json(stdout, list, i);
            s_print_counters_json(stdout, counters);
            fputc('}', stdout);
        } else {
            if (i > 0)
                fputc('\n', stdout); // a blank line between blocks
            s_print_peer_text(stdout, color, list, i);
            s_print_counters_text(stdout, counters);
        }
        zmesh_counters_destroy(&counters);
        int rc = tap_output_line_done(stdout);
        if (rc >= 0)
            return rc;
    }
    return TAP_EXIT_OK;
}

/*  The peer `id` in a fresh snapshot, so a join line can say where the
    peer runs. Returns its index or -1 (it may have left already). */
static long
s_find_peer(zmesh_agent_t *agent, const char *id, zmesh_peer_list_t **list)
{
    zmesh_peer_list_destroy(list);
    if (zmesh_agent_peers(agent, list) != 0)
        return -1;
    for (size_t i = 0; i < zmesh_peer_list_size(*list); i++)
        if (strcmp(zmesh_peer_id(*list, i), id) == 0)
            return (long)i;
    return -1;
}

static void
s_print_change_json(FILE *out, const zmesh_event_t *event,
                    const zmesh_peer_list_t *list, long i)
{
    bool joined = zmesh_event_type(event) == ZMESH_EVENT_PEER_JOINED;
    fprintf(out,
            "{\"type\":\"%s\",\"peer\":", joined ? "peer_joined" : "peer_left");
    tap_output_json_string(out, zmesh_event_peer_name(event));
    fputs(",\"peer_id\":", out);
    tap_output_json_string(out, zmesh_event_peer_id(event));
    fputs(",\"reason\":", out);
    tap_output_json_string(out, zmesh_event_reason(event));
    fprintf(out, ",\"ts\":%" PRId64, tap_now_us());
    if (i >= 0) {
        size_t at = (size_t)i;
        fputs(",\"host\":", out);
        tap_output_json_string(out, zmesh_peer_host(list, at));
        fprintf(out,
                ",\"pid\":%" PRIu64 ",\"version\":", zmesh_peer_pid(list, at));
        tap_output_json_string(out, zmesh_peer_version(list, at));
        fputs(",\"endpoint\":", out);
        tap_output_json_string(out, zmesh_peer_endpoint(list, at));
        fputs(",\"data_endpoint\":", out);
        tap_output_json_string(out, zmesh_peer_data_endpoint(list, at));
    }
    fputc('}', out);
}

static void
s_print_change_text(FILE *out, bool color, const zmesh_event_t *event,
                    const zmesh_peer_list_t *list, long i)
{
    bool joined = zmesh_event_type(event) == ZMESH_EVENT_PEER_JOINED;
    char clock[16];
    tap_output_clock(tap_now_us(), clock);
    tap_output_field(out, color, "2", clock, 0);
    fputs("  ", out);
    tap_output_field(out, color, joined ? "32" : "31",
                     joined ? "joined" : "left  ", 0);
    fputs("  ", out);
    tap_output_field(out, color, "33", zmesh_event_peer_name(event), 0);
    fprintf(out, " (%.8s, ", zmesh_event_peer_id(event));
    tap_output_text(out, zmesh_event_reason(event), 0);
    fputc(')', out);
    if (i >= 0) {
        size_t at = (size_t)i;
        fputs(" on ", out);
        tap_output_text(out, zmesh_peer_host(list, at), 0);
        fprintf(out, " pid %" PRIu64 ", zmesh ", zmesh_peer_pid(list, at));
        tap_output_text(out, zmesh_peer_version(list, at), 0);
        fputs(", ", out);
        tap_output_text(out, zmesh_peer_endpoint(list, at), 0);
    }
}

/*  --watch: a line per join and leave until --count, --timeout or a
    signal. Reaching the timeout is a normal end unless --count was not
    reached. */
static int
s_watch(const tap_options_t *opts, zmesh_agent_t *agent)
{
    bool color = !opts->json && tap_output_color_wanted(stdout);
    int64_t deadline = tap_agent_deadline(opts);
    zmesh_peer_list_t *list = NULL;
    long changes = 0;
    int exit_code = -1;
    while (exit_code < 0) {
        const zmesh_event_t *event = NULL;
        int rc = tap_agent_next(agent, deadline, &event);
        if (rc != 0)
            exit_code = rc;
        if (rc != 0 || !event)
            break;
        // Only joins and leaves: a peer may still send the tap a direct
        // message or a request, which this view is not about.
        if (zmesh_event_type(event) != ZMESH_EVENT_PEER_JOINED &&
            zmesh_event_type(event) != ZMESH_EVENT_PEER_LEFT)
            continue;
        long i = -1;
        if (zmesh_event_type(event) == ZMESH_EVENT_PEER_JOINED)
            i = s_find_peer(agent, zmesh_event_peer_id(event), &list);
        if (opts->json)
            s_print_change_json(stdout, event, list, i);
        else
            s_print_change_text(stdout, color, event, list, i);
        exit_code = tap_output_line_done(stdout);
        if (exit_code < 0 && opts->count > 0 && ++changes >= opts->count)
            exit_code = TAP_EXIT_OK;
    }
    zmesh_peer_list_destroy(&list);
    if (exit_code >= 0)
        return exit_code;
    return tap_agent_count_verdict(opts, changes, "joins and leaves");
}

int
tap_peers_run(const tap_options_t *opts)
{
    zmesh_agent_t *agent = NULL;
    int exit_code = tap_agent_open(opts, TAP_AGENT_NO_PATTERNS, &agent);
    if (exit_code == 0 && opts->watch) {
        tap_signal_install();
        exit_code = s_watch(opts, agent);
        zmesh_agent_destroy(&agent);
        return exit_code;
    }
    if (exit_code == 0)
        exit_code = s_listen(opts, agent);
    if (exit_code == 0) {
        zmesh_peer_list_t *list = NULL;
        int rc = zmesh_agent_peers(agent, &list);
        if (rc != 0) {
            tap_error("cannot list peers: %s", zmesh_strerror(rc));
            exit_code = TAP_EXIT_FAILURE;
        } else
            exit_code = s_print(opts, agent, list);
        zmesh_peer_list_destroy(&list);
    }
    zmesh_agent_destroy(&agent);
    return exit_code;
}

void
tap_help_peers(void)
{
    fputs(
        "Usage: mesh-tap peers [OPTIONS]\n"
        "       mesh-tap peers --watch [--count N] [--timeout SEC] "
        "[OPTIONS]\n"
        "\n"
        "Joins the mesh, listens for a while (peers send a beacon every\n"
        "second) and lists the peers it found: name, id, host, process id\n"
        "and zmesh version, how it was found, when it was last heard,\n"
        "whether the tap's data socket is connected to it, its control and\n"
        "data endpoints, the topics it publishes and wants, and its\n"
        "headers. The tap itself is not listed. Exits 0 also when no peer\n"
        "is found (with a note on stderr).\n"
        "\n"
        "With --watch it prints a line whenever a peer joins or leaves\n"
        "instead (the peers already there join within about a second).\n"
        "\n"
        "Options:\n"
        "  --json               one JSON object per line:\n"
        "                       {\"type\":\"peer\",\"name\":...,\"id\":...,"
        "\"endpoint\":...,\n"
        "                        \"data_endpoint\":...,\"host\":...,"
        "\"pid\":N,\n"
        "                        \"version\":...,\"origin\":...,"
        "\"connected\":BOOL,\n"
        "                        \"last_seen_ms\":N,\"publishes\":[...],"
        "\"wants\":[...],\n"
        "                        \"headers\":{...}}\n"
        "                       with --watch: {\"type\":\"peer_joined\"|"
        "\"peer_left\",\n"
        "                        \"peer\":...,\"peer_id\":...,"
        "\"reason\":...,\"ts\":US,...}\n"
        "  --wait SEC           how long to listen first (default 1.5)\n"
        "  --watch              follow joins and leaves until Ctrl-C\n"
        "  --count N            with --watch: exit 0 after N lines\n"
        "  --timeout SEC        with --watch: stop after SEC seconds (exit 1\n"
        "                       if --count was not reached, else 0)\n\n",
        stdout);
    tap_options_help_common();
    fputs("\n"
          "Examples:\n"
          "  mesh-tap peers\n"
          "  mesh-tap peers --mesh prod --wait 3 --json | jq .name\n"
          "  mesh-tap peers --watch                 joins and leaves, live\n"
          "  mesh-tap peers --discovery none --seed tcp://192.0.2.10:40123\n",
          stdout);
}
