/*  tap_sub.c - "mesh-tap [sub]": the live view. Subscribes to the given
    patterns (every topic by default) and prints each event and each peer
    join or leave as one line, aligned text for people or a JSON object for
    programs, flushed at once so a pipe sees it live. Stops after --count
    messages, at --timeout, or on SIGINT/SIGTERM: the receive loop waits at
    most 200 ms at a time so it notices the signal flag, then destroys the
    agent so peers hear BYE instead of waiting for a timeout.
*/
#include "tap_options.h"
#include "tap_output.h"

#include "zmesh.h"

#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

/*  Longest single wait, so a signal is acted on within this time. */
#define S_POLL_MS 200

static volatile sig_atomic_t s_interrupted;

static void
s_on_signal(int signal_number)
{
    (void)signal_number;
    s_interrupted = 1;
}

static void
s_install_signals(void)
{
    struct sigaction action;
    memset(&action, 0, sizeof action);
    sigemptyset(&action.sa_mask);
    action.sa_handler = s_on_signal;
    sigaction(SIGINT, &action, NULL);
    sigaction(SIGTERM, &action, NULL);
    // A reader that went away (| head) shows up as EPIPE on the next write,
    // which ends the loop cleanly, so the agent still says BYE.
    action.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &action, NULL);
}

/*  Column widths of the human lines: they grow to the widest topic and
    publisher seen (up to a cap), so lines stay aligned as traffic goes. */
typedef struct {
    size_t topic;
    size_t publisher;
} s_layout_t;

static size_t
s_grow(size_t width, const char *text, size_t cap)
{
    size_t columns = tap_output_columns(text);
    return columns > width && columns <= cap ? columns : width;
}

static void
s_print_message_json(FILE *out, const zmesh_event_t *event)
{
    size_t size = 0;
    const void *payload = zmesh_event_payload(event, &size);
    fputs("{\"type\":\"message\",\"topic\":", out);
    tap_output_json_string(out, zmesh_event_topic(event));
    fputs(",\"publisher\":", out);
    tap_output_json_string(out, zmesh_event_peer_name(event));
    fputs(",\"publisher_id\":", out);
    tap_output_json_string(out, zmesh_event_peer_id(event));
    fprintf(out, ",\"seq\":%" PRIu64 ",\"ts\":%" PRId64 ",\"payload\":",
            zmesh_event_sequence(event), zmesh_event_timestamp(event));
    int rc = tap_output_json_payload(out, payload, size);
    if (rc != 0) {
        fputs(",\"payload_error\":", out);
        tap_output_json_string(out, zmesh_strerror(rc));
    }
    fputc('}', out);
}

static void
s_print_message_text(FILE *out, s_layout_t *layout, const zmesh_event_t *event)
{
    const char *topic = zmesh_event_topic(event);
    const char *publisher = zmesh_event_peer_name(event);
    layout->topic = s_grow(layout->topic, topic, 48);
    layout->publisher = s_grow(layout->publisher, publisher, 32);
    char clock[16];
    tap_output_clock(zmesh_event_timestamp(event), clock);
    fprintf(out, "%s  ", clock);
    tap_output_text(out, topic, layout->topic);
    fputs("  ", out);
    tap_output_text(out, publisher, layout->publisher);
    fprintf(out, "  %6" PRIu64 "  ", zmesh_event_sequence(event));
    size_t size = 0;
    const void *payload = zmesh_event_payload(event, &size);
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
s_print_peer_text(FILE *out, const zmesh_event_t *event)
{
    bool joined = zmesh_event_type(event) == ZMESH_EVENT_PEER_JOINED;
    char clock[16];
    tap_output_clock(tap_now_us(), clock);
    fprintf(out, "%s  -- peer %s: ", clock, joined ? "joined" : "left");
    tap_output_text(out, zmesh_event_peer_name(event), 0);
    fprintf(out, " (%.8s, ", zmesh_event_peer_id(event));
    tap_output_text(out, zmesh_event_reason(event), 0);
    fputc(')', out);
}

/*  Prints one event. Returns -1 to go on, or the exit code to stop with
    when stdout is gone. */
static int
s_print_event(const tap_options_t *opts, s_layout_t *layout,
              const zmesh_event_t *event)
{
    bool message = zmesh_event_type(event) == ZMESH_EVENT_MESSAGE;
    if (message && opts->json)
        s_print_message_json(stdout, event);
    else if (message)
        s_print_message_text(stdout, layout, event);
    else if (opts->json)
        s_print_peer_json(stdout, event);
    else
        s_print_peer_text(stdout, event);
    if (tap_output_end_line(stdout) == 0)
        return -1;
    if (errno == EPIPE)
        return TAP_EXIT_OK; // the reader has all it wanted
    tap_error("cannot write to stdout: %s", strerror(errno));
    return TAP_EXIT_FAILURE;
}

/*  Receives and prints until the count, the deadline or a signal. */
static int
s_run_loop(const tap_options_t *opts, zmesh_agent_t *agent)
{
    s_layout_t layout = {16, 10};
    int64_t deadline = opts->timeout_ms >= 0
                           ? tap_monotonic_ms() + opts->timeout_ms
                           : INT64_MAX;
    long received = 0;
    while (!s_interrupted) {
        int64_t left = deadline - tap_monotonic_ms();
        if (left <= 0)
            break;
        const zmesh_event_t *event = NULL;
        int rc = zmesh_agent_recv(
            agent, left < S_POLL_MS ? (int)left : S_POLL_MS, &event);
        if (rc == ZMESH_EAGAIN)
            continue;
        if (rc != 0) {
            tap_error("receive failed: %s", zmesh_strerror(rc));
            return TAP_EXIT_FAILURE;
        }
        rc = s_print_event(opts, &layout, event);
        if (rc >= 0)
            return rc;
        if (zmesh_event_type(event) == ZMESH_EVENT_MESSAGE && opts->count > 0 &&
            ++received >= opts->count)
            return TAP_EXIT_OK;
    }
    if (opts->count == 0)
        return TAP_EXIT_OK; // stopping is how a live view ends
    if (s_interrupted)
        tap_error("interrupted after %ld of %ld events", received, opts->count);
    else
        tap_error("timed out after %.1f s with %ld of %ld events",
                  opts->timeout_ms / 1000.0, received, opts->count);
    return TAP_EXIT_FAILURE;
}

int
tap_sub_run(const tap_options_t *opts)
{
    static char *all_topics[] = {">"};
    char **patterns = opts->args_count ? opts->args : all_topics;
    size_t patterns_count = opts->args_count ? opts->args_count : 1;
    for (size_t i = 0; i < patterns_count; i++) {
        int rc = zmesh_pattern_check(patterns[i]);
        if (rc != 0)
            return tap_usage_error(opts->command, "'%s': %s", patterns[i],
                                   zmesh_strerror(rc));
    }

    zmesh_agent_t *agent = NULL;
    int exit_code = tap_options_agent(opts, &agent);
    if (exit_code != 0)
        return exit_code;
    for (size_t i = 0; i < patterns_count && exit_code == 0; i++) {
        int rc = zmesh_agent_subscribe(agent, patterns[i]);
        if (rc != 0) {
            tap_error("cannot subscribe to '%s': %s", patterns[i],
                      zmesh_strerror(rc));
            exit_code = TAP_EXIT_FAILURE;
        }
    }
    if (exit_code == 0)
        exit_code = tap_options_start(opts, agent);
    if (exit_code == 0) {
        s_install_signals();
        if (opts->verbose)
            fprintf(stderr,
                    "mesh-tap: watching mesh '%s' as %s (control endpoint "
                    "%s)\n",
                    tap_options_mesh(opts), zmesh_agent_id(agent),
                    zmesh_agent_endpoint(agent));
        exit_code = s_run_loop(opts, agent);
    }
    zmesh_agent_destroy(&agent);
    return exit_code;
}

void
tap_help_sub(void)
{
    fputs("Usage: mesh-tap [sub] [OPTIONS] [PATTERN...]\n"
          "\n"
          "Joins the mesh and prints every event on topics matching a PATTERN\n"
          "(default '>': every topic), one line each, and a line whenever a\n"
          "peer joins or leaves. Patterns are NATS-style: '*' is one token,\n"
          "'>' (last) one or more, e.g. 'orders.*' or 'sensors.>'.\n"
          "\n"
          "Human lines: time (publisher's clock), topic, publisher, sequence\n"
          "number, payload as compact JSON. With --json, one object per line:\n"
          "  {\"type\":\"message\",\"topic\":...,\"publisher\":...,"
          "\"publisher_id\":...,\n"
          "   \"seq\":N,\"ts\":MICROSECONDS,\"payload\":JSON}\n"
          "  {\"type\":\"peer_joined\"|\"peer_left\",\"peer\":...,"
          "\"peer_id\":...,\n"
          "   \"reason\":...,\"ts\":MICROSECONDS}\n"
          "\n"
          "Options:\n"
          "  --json               one JSON object per line\n"
          "  --count N            exit 0 after N message events\n"
          "  --timeout SEC        stop after SEC seconds: exit 1 if --count\n"
          "                       was not reached, else 0\n\n",
          stdout);
    tap_options_help_common();
    fputs("\n"
          "Examples:\n"
          "  mesh-tap                              everything, until Ctrl-C\n"
          "  mesh-tap 'orders.>' 'billing.*'       two patterns\n"
          "  mesh-tap --json --count 1 --timeout 10 orders.created\n"
          "                                        wait for one event, as "
          "JSON\n"
          "  mesh-tap sub peers                    the topic 'peers' (plain\n"
          "                                        'mesh-tap peers' lists "
          "peers)\n",
          stdout);
}
