/*  tap_direct.c - "mesh-tap request" and "mesh-tap send": point-to-point
    from a shell. request asks one agent (one that serves the topic, or
    the peer named with --to) and prints its reply; with --stdin it asks
    once per line, one request at a time, so the replies come out in the
    order of the lines. send delivers one direct message. Both first wait,
    within --timeout, until discovery has found someone to ask: the tap
    joins knowing nobody, and the library refuses a request at once when
    it knows no target. The tap subscribes to nothing here, so it is never
    asked itself. It does not answer requests ("mesh-tap sub" shows them).
*/
#include "tap_agent.h"
#include "tap_options.h"
#include "tap_output.h"
#include "tap_payload.h"

#include "zmesh.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  How often the peer list is asked whether a target has turned up. */
#define S_DISCOVERY_POLL_MS 50

/*  The library ends every request by its timeout; this much more is
    allowed before the tap stops waiting for that ending itself. */
#define S_OUTCOME_GRACE_MS 2000

/*  Who a request or message can go to, as the peer list shows now: how
    many candidates, and the first one's name and id for messages. */
typedef struct {
    size_t count;
    char name[ZMESH_NAME_MAX + 1];
    char id[33];
} s_target_t;

typedef struct {
    const tap_options_t *opts;
    zmesh_agent_t *agent;
    const char *topic;
    const char *peer; // --to, or send's PEER; NULL: a server of topic
    s_target_t target;
} s_direct_t;

/*  Whether peer i of `list` is the one asked for: by name or id with a
    peer, else any peer that serves the topic (zmesh_agent_serve: the rule
    the library picks responders by). */
static bool
s_is_target(const s_direct_t *self, const zmesh_peer_list_t *list, size_t i)
{
    if (self->peer)
        return strcmp(zmesh_peer_name(list, i), self->peer) == 0 ||
               strcmp(zmesh_peer_id(list, i), self->peer) == 0;
    for (size_t j = 0; j < zmesh_peer_serves_size(list, i); j++)
        if (zmesh_pattern_match(zmesh_peer_serves(list, i, j), self->topic))
            return true;
    return false;
}

/*  Waits until the peer list holds a target or `deadline` passes (or a
    signal comes). Returns 0 with self->target filled in (count 0 when
    none turned up), or TAP_EXIT_FAILURE after saying why. */
static int
s_discover(s_direct_t *self, int64_t deadline)
{
    for (;;) {
        zmesh_peer_list_t *list = NULL;
        int rc = zmesh_agent_peers(self->agent, &list);
        if (rc != 0) {
            tap_error("cannot list the peers: %s", zmesh_strerror(rc));
            return TAP_EXIT_FAILURE;
        }
        memset(&self->target, 0, sizeof self->target);
        for (size_t i = 0; i < zmesh_peer_list_size(list); i++) {
            if (!s_is_target(self, list, i))
                continue;
            if (self->target.count++ == 0) {
                snprintf(self->target.name, sizeof self->target.name, "%s",
                         zmesh_peer_name(list, i));
                snprintf(self->target.id, sizeof self->target.id, "%s",
                         zmesh_peer_id(list, i));
            }
        }
        zmesh_peer_list_destroy(&list);
        if (self->target.count > 0 || tap_interrupted())
            return 0;
        int wait = tap_wait_ms(deadline);
        if (wait <= 0)
            return 0;
        // Receiving hands the agent its peer events meanwhile; nothing
        // else can come, since the tap subscribes to nothing.
        const zmesh_event_t *event = NULL;
        zmesh_agent_recv(
            self->agent,
            wait < S_DISCOVERY_POLL_MS ? wait : S_DISCOVERY_POLL_MS, &event);
    }
}

/*  "stdin line N: " for a line of --stdin (number > 0), else "". */
static void
s_where(long number, char *out, size_t out_size)
{
    if (number > 0)
        snprintf(out, out_size, "stdin line %ld: ", number);
    else
        out[0] = '\0';
}

/*  Says that nobody could be found; `waited_ms` is how long discovery
    was given. */
static void
s_no_target(const s_direct_t *self, const char *where, int waited_ms)
{
    const char *mesh = tap_options_mesh(self->opts);
    if (tap_interrupted())
        tap_error("%sinterrupted while looking for %s", where,
                  self->peer ? self->peer : "a responder");
    else if (self->peer)
        tap_error("%sno such peer: no agent named '%s' (or with that id) in "
                  "mesh '%s' within %.1f s",
                  where, self->peer, mesh, waited_ms / 1000.0);
    else
        tap_error("%sno responder: no agent in mesh '%s' subscribes to '%s' "
                  "(looked for %.1f s)",
                  where, mesh, self->topic, waited_ms / 1000.0);
}

/*  Names the agent a request went to, for a message: the event's peer
    when the reply says (a refusal does), else what --to named, else the
    one candidate, else how many there were. */
static void
s_who(const s_direct_t *self, const zmesh_event_t *event, char *out,
      size_t out_size)
{
    const char *name = zmesh_event_peer_name(event);
    const char *id = zmesh_event_peer_id(event);
    if (id[0] != '\0')
        snprintf(out, out_size, "%s (%.8s)", name[0] ? name : "?", id);
    else if (self->peer)
        snprintf(out, out_size, "'%s'", self->peer);
    else if (self->target.count == 1)
        snprintf(out, out_size, "%s (%.8s)", self->target.name,
                 self->target.id);
    else
        snprintf(out, out_size, "the server asked (one of %zu)",
                 self->target.count);
}

/*  Prints a reply: the payload as JSON, or with --json the whole line.
    Returns -1 to go on, or an exit code to stop with. */
static int
s_print_reply(const s_direct_t *self, const zmesh_event_t *event,
              int64_t rtt_us, const char *where)
{
    size_t size = 0;
    const void *payload = zmesh_event_payload(event, &size);
    int rc;
    if (self->opts->json) {
        fputs("{\"type\":\"reply\",\"topic\":", stdout);
        tap_output_json_string(stdout, self->topic);
        fputs(",\"peer\":", stdout);
        tap_output_json_string(stdout, zmesh_event_peer_name(event));
        fputs(",\"peer_id\":", stdout);
        tap_output_json_string(stdout, zmesh_event_peer_id(event));
        fprintf(stdout,
                ",\"req\":%" PRIu64 ",\"rtt_us\":%" PRId64
                ",\"size\":%zu,\"payload\":",
                zmesh_event_request_id(event), rtt_us, size);
        rc = tap_output_json_payload(stdout, payload, size);
        if (rc != 0) {
            fputs(",\"payload_error\":", stdout);
            tap_output_json_string(stdout, zmesh_strerror(rc));
        }
        fputc('}', stdout);
    } else {
        char *json = NULL;
        rc = zmesh_msgpack_to_json(payload, size, &json);
        if (rc == 0)
            fputs(json, stdout);
        free(json);
    }
    if (rc != 0) {
        // Nothing was printed in text mode; in JSON the line says so.
        char who[ZMESH_NAME_MAX + 48];
        s_who(self, event, who, sizeof who);
        if (self->opts->json)
            tap_output_line_done(stdout);
        tap_error("%sthe reply from %s cannot be shown as JSON: %s", where, who,
                  zmesh_strerror(rc));
        return TAP_EXIT_FAILURE;
    }
    if (self->opts->verbose) {
        fprintf(stderr, "mesh-tap: %sreply %" PRIu64 " from ", where,
                zmesh_event_request_id(event));
        tap_output_text(stderr, zmesh_event_peer_name(event), 0);
        fprintf(stderr, " (%.8s) after %.1f ms, %zu bytes\n",
                zmesh_event_peer_id(event), rtt_us / 1000.0, size);
    }
    return tap_output_line_done(stdout);
}

/*  What a reply event says: the reply printed (-1 to go on), or why
    there is none (TAP_EXIT_FAILURE after saying so). */
static int
s_outcome(const s_direct_t *self, const zmesh_event_t *event, int64_t rtt_us,
          const char *where)
{
    char who[ZMESH_NAME_MAX + 48];
    s_who(self, event, who, sizeof who);
    int status = zmesh_event_status(event);
    switch (status) {
    case 0: return s_print_reply(self, event, rtt_us, where);
    case ZMESH_ETIMEDOUT:
        tap_error("%stimeout: no reply from %s to the request on '%s' "
                  "within %.1f s",
                  where, who, self->topic, self->opts->timeout_ms / 1000.0);
        break;
    case ZMESH_EGONE:
        tap_error("%sresponder gone: %s left the mesh before it replied to "
                  "the request on '%s'",
                  where, who, self->topic);
        break;
    case ZMESH_EFULL:
        tap_error("%srefused: %s did not take the request on '%s', its "
                  "queue to its application is full",
                  where, who, self->topic);
        break;
    case ZMESH_ENOTFOUND:
        tap_error("%srefused: %s has nothing that answers requests on '%s'",
                  where, who, self->topic);
        break;
    default:
        tap_error("%sthe request on '%s' to %s failed: %s", where, self->topic,
                  who, zmesh_strerror(status));
        break;
    }
    return TAP_EXIT_FAILURE;
}

/*  Asks once and waits for the outcome, all within --timeout from now:
    finding a responder, then its reply. `number` is the stdin line (0 for
    the argument). Returns -1 with the reply printed, or an exit code. */
static int
s_request_one(s_direct_t *self, const void *payload, size_t size, long number)
{
    char where[48];
    s_where(number, where, sizeof where);
    int64_t start = tap_monotonic_ms();
    int64_t deadline = start + self->opts->timeout_ms;
    int exit_code = s_discover(self, deadline);
    if (exit_code != 0)
        return exit_code;
    if (self->target.count == 0) {
        s_no_target(self, where, self->opts->timeout_ms);
        return TAP_EXIT_FAILURE;
    }
    int64_t left = deadline - tap_monotonic_ms();
    uint64_t id = 0;
    int64_t sent_us = tap_now_us();
    int rc = zmesh_agent_request(self->agent, self->peer, self->topic, payload,
                                 size, left < 1 ? 1 : (int)left, &id);
    if (rc == ZMESH_ENOTFOUND) {
        // It left between the look at the peer list and the request.
        s_no_target(self, where, (int)(tap_monotonic_ms() - start));
        return TAP_EXIT_FAILURE;
    }
    if (rc == ZMESH_EGONE) {
        tap_error("%sresponder gone: '%s' left the mesh before the request "
                  "went out",
                  where, self->peer ? self->peer : self->target.name);
        return TAP_EXIT_FAILURE;
    }
    if (rc != 0) {
        tap_error("%scannot send the request on '%s': %s", where, self->topic,
                  zmesh_strerror(rc));
        return TAP_EXIT_FAILURE;
    }
    int64_t give_up = deadline + S_OUTCOME_GRACE_MS;
    for (;;) {
        const zmesh_event_t *event = NULL;
        exit_code = tap_agent_next(self->agent, give_up, &event);
        if (exit_code != 0)
            return exit_code;
        if (!event)
            break;
        // Peer joins and leaves pass by; one request is out at a time.
        if (zmesh_event_type(event) == ZMESH_EVENT_REPLY &&
            zmesh_event_request_id(event) == id)
            return s_outcome(self, event, tap_now_us() - sent_us, where);
    }
    if (tap_interrupted())
        tap_error("%sinterrupted while waiting for the reply", where);
    else
        tap_error("%stimeout: the request on '%s' did not end within %.1f s",
                  where, self->topic,
                  (self->opts->timeout_ms + S_OUTCOME_GRACE_MS) / 1000.0);
    return TAP_EXIT_FAILURE;
}

static bool
s_blank(const char *text, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (text[i] != ' ' && text[i] != '\t' && text[i] != '\r' &&
            text[i] != '\n' && text[i] != '\f' && text[i] != '\v')
            return false;
    return true;
}

/*  --stdin: one request per line as the lines come; the first line that
    fails (not JSON: exit 2; no reply: exit 1) ends the stream. */
static int
s_request_stdin(s_direct_t *self)
{
    char *text = NULL;
    size_t text_cap = 0;
    long number = 0, answered = 0;
    int exit_code = -1;
    while (exit_code < 0) {
        errno = 0;
        ssize_t got = getline(&text, &text_cap, stdin);
        if (got < 0) {
            if (ferror(stdin) && !tap_interrupted()) {
                tap_error("cannot read stdin: %s", strerror(errno));
                exit_code = TAP_EXIT_FAILURE;
            }
            break; // end of input, or Ctrl-C
        }
        number++;
        size_t size = (size_t)got;
        if (s_blank(text, size))
            continue;
        void *payload = NULL;
        size_t payload_size = 0;
        int rc = zmesh_json_to_msgpack(text, size, &payload, &payload_size);
        if (rc == ZMESH_EJSON) {
            while (size > 0 &&
                   (text[size - 1] == '\n' || text[size - 1] == '\r'))
                size--;
            tap_payload_bad_line(number, "not valid JSON", text, size,
                                 tap_payload_hint(text, size));
            exit_code = TAP_EXIT_USAGE;
        } else if (rc != 0) {
            tap_payload_bad_line(number, zmesh_strerror(rc), NULL, 0, NULL);
            exit_code = TAP_EXIT_FAILURE;
        } else {
            exit_code = s_request_one(self, payload, payload_size, number);
            if (exit_code < 0 || exit_code == TAP_EXIT_OK)
                answered++;
        }
        free(payload);
        if (exit_code > 0)
            tap_error("%ld request%s answered from the lines before it; "
                      "nothing after it was asked",
                      answered, answered == 1 ? "" : "s");
    }
    free(text);
    if (self->opts->verbose)
        fprintf(stderr, "mesh-tap: %ld request%s answered from %ld line%s\n",
                answered, answered == 1 ? "" : "s", number,
                number == 1 ? "" : "s");
    return exit_code < 0 ? TAP_EXIT_OK : exit_code;
}

/*  Topics are checked as for publishing, except that '$' topics are fine
    point-to-point: mesh services such as mesh-relay speak under them. */
static int
s_check_topic(const tap_options_t *opts, const char *topic)
{
    int rc = zmesh_topic_check(topic);
    if (rc != 0 && rc != ZMESH_ERESERVED)
        return tap_usage_error(opts->command, "'%s' is not a topic: %s", topic,
                               zmesh_strerror(rc));
    return 0;
}

int
tap_request_run(const tap_options_t *opts)
{
    s_direct_t self = {.opts = opts, .topic = opts->args[0], .peer = opts->to};
    int exit_code = s_check_topic(opts, self.topic);
    if (exit_code != 0)
        return exit_code;
    // The argument is converted before joining: a typo costs no network
    // time and exits 2.
    void *payload = NULL;
    size_t size = 0;
    if (!opts->stdin_lines) {
        exit_code = tap_payload_from_arg(opts, opts->args[1], &payload, &size);
        if (exit_code != 0)
            return exit_code;
    }
    exit_code = tap_agent_open(opts, TAP_AGENT_NO_PATTERNS, &self.agent);
    if (exit_code == 0) {
        tap_signal_install();
        if (opts->stdin_lines)
            exit_code = s_request_stdin(&self);
        else
            exit_code = s_request_one(&self, payload, size, 0);
        if (exit_code < 0)
            exit_code = TAP_EXIT_OK;
    }
    zmesh_agent_destroy(&self.agent);
    free(payload);
    return exit_code;
}

/*  Sends the message once the peer is known; returns the exit code. */
static int
s_send(s_direct_t *self, const void *payload, size_t size)
{
    int exit_code =
        s_discover(self, tap_monotonic_ms() + self->opts->timeout_ms);
    if (exit_code != 0)
        return exit_code;
    if (self->target.count == 0) {
        s_no_target(self, "", self->opts->timeout_ms);
        return TAP_EXIT_FAILURE;
    }
    int rc =
        zmesh_agent_send(self->agent, self->peer, self->topic, payload, size);
    switch (rc) {
    case 0:
        if (self->opts->verbose)
            fprintf(stderr, "mesh-tap: sent %zu bytes on '%s' to '%s'\n", size,
                    self->topic, self->peer);
        return TAP_EXIT_OK;
    case ZMESH_ENOTFOUND: s_no_target(self, "", self->opts->timeout_ms); break;
    case ZMESH_EGONE:
        tap_error("peer gone: '%s' left the mesh before the message went out",
                  self->peer);
        break;
    case ZMESH_EFULL:
        tap_error("queue full: the connection to '%s' holds too much "
                  "already; the message was not sent",
                  self->peer);
        break;
    default:
        tap_error("cannot send on '%s' to '%s': %s", self->topic, self->peer,
                  zmesh_strerror(rc));
        break;
    }
    return TAP_EXIT_FAILURE;
}

int
tap_send_run(const tap_options_t *opts)
{
    s_direct_t self = {
        .opts = opts, .peer = opts->args[0], .topic = opts->args[1]};
    if (self.peer[0] == '\0')
        return tap_usage_error(opts->command, "the PEER is empty");
    int exit_code = s_check_topic(opts, self.topic);
    if (exit_code != 0)
        return exit_code;
    void *payload = NULL;
    size_t size = 0;
    exit_code = tap_payload_from_arg(opts, opts->args[2], &payload, &size);
    if (exit_code != 0)
        return exit_code;
    exit_code = tap_agent_open(opts, TAP_AGENT_NO_PATTERNS, &self.agent);
    if (exit_code == 0) {
        tap_signal_install();
        exit_code = s_send(&self, payload, size);
    }
    // Destroy lingers until the message has left, then says BYE.
    zmesh_agent_destroy(&self.agent);
    free(payload);
    return exit_code;
}

void
tap_help_request(void)
{
    fputs(
        "Usage: mesh-tap request [OPTIONS] [--to PEER] TOPIC JSON\n"
        "       mesh-tap request [OPTIONS] [--to PEER] --stdin TOPIC\n"
        "\n"
        "Sends a request with the JSON value as payload (as msgpack; JSON "
        "'-'\n"
        "reads one value from all of stdin) to one agent subscribed to "
        "TOPIC\n"
        "(in turn, when several are), or to the peer --to names, waits for\n"
        "its reply and prints the reply's payload as JSON. It first waits\n"
        "until discovery has found such an agent. The tap itself does not\n"
        "subscribe, so it is never asked.\n"
        "\n"
        "With --stdin, every line of stdin is one payload, asked as it is\n"
        "read, one request at a time, so the replies come out in the order\n"
        "of the lines (blank lines are skipped). The first line that fails\n"
        "ends it: the replies before it were printed, nothing after it is\n"
        "asked.\n"
        "\n"
        "With --json, one object per reply:\n"
        "  {\"type\":\"reply\",\"topic\":...,\"peer\":...,\"peer_id\":...,"
        "\"req\":N,\n"
        "   \"rtt_us\":US,\"size\":BYTES,\"payload\":JSON}\n"
        "\n"
        "No reply is exit 1 with one line on stderr saying why: no "
        "responder\n"
        "(nobody subscribes to TOPIC, or no such --to peer, within the\n"
        "timeout), timeout (no reply in time), responder gone (it left "
        "first)\n"
        "or refused (its queue to its application was full).\n"
        "\n"
        "Options:\n"
        "  --to PEER            ask this peer (service name, or its 32-digit\n"
        "                       id), whatever it subscribes to\n"
        "  --timeout SEC        for each request, how long to look for a\n"
        "                       responder and wait for its reply together\n"
        "                       (default 5, at most 600)\n"
        "  --json               one JSON object per reply, as above\n"
        "  --stdin              one request per line of stdin\n\n",
        stdout);
    tap_options_help_common();
    fputs("\n"
          "Examples:\n"
          "  mesh-tap request svc.echo '{\"ping\":1}'\n"
          "  mesh-tap request --to inventory --timeout 2 stock.query "
          "'{\"sku\":\"tea\"}'\n"
          "  mesh-tap request --json svc.time null | jq .rtt_us\n"
          "  printf '1\\n2\\n3\\n' | mesh-tap request --stdin svc.square\n"
          "\n"
          "Exit status: 0 every request was answered; 1 no responder, "
          "timeout,\n"
          "responder gone, refused; 2 usage (bad option, topic or JSON, also "
          "a\n"
          "bad line of --stdin).\n",
          stdout);
}

void
tap_help_send(void)
{
    fputs("Usage: mesh-tap send [OPTIONS] PEER TOPIC JSON\n"
          "\n"
          "Sends one direct message to PEER (its service name, or its "
          "32-digit\n"
          "id; when several agents have the name, the one that joined last)\n"
          "on TOPIC, with the JSON value as payload (as msgpack; JSON '-'\n"
          "reads one value from all of stdin). The peer's application gets\n"
          "it whatever it subscribes to. It first waits until discovery has\n"
          "found the peer. Delivery is not confirmed: exit 0 means the\n"
          "message went out to a peer that was there.\n"
          "\n"
          "Options:\n"
          "  --timeout SEC        how long to look for the peer (default 5)\n"
          "\n",
          stdout);
    tap_options_help_common();
    fputs(
        "\n"
        "Examples:\n"
        "  mesh-tap send billing ops.note '{\"text\":\"invoice run "
        "late\"}'\n"
        "  mesh-tap send --timeout 2 3f2a9c1e0b7d4c55a1e2f3a4b5c6d7e8 "
        "cache.flush null\n"
        "  mesh-tap send --name ops-console inventory stock.recount '\"all\"'\n"
        "\n"
        "Exit status: 0 sent; 1 no such peer (within the timeout), it "
        "left,\n"
        "its queue is full; 2 usage (bad option, topic or JSON).\n",
        stdout);
}
