/*  tap_pub.c - "mesh-tap pub": publishes from a script or a shell: one
    event from the arguments (--repeat'ed, paced by --rate), or one per
    line of stdin (--stdin). Arguments become msgpack before the agent
    starts, so a typo costs no network time and exits 2. Each topic is
    advertised and its subscribers waited for before its first event, and
    the agent lingers on exit until the events have left. Stdin is a
    stream, so each line is checked just before it is published: a bad
    line stops everything after it; the lines before it have gone out.
    With --confirm every event is published asking the relays to confirm
    it was stored (tap_confirm.c), and pub waits for the last confirm and
    exits 0 only if a relay stored every event.
*/
#include "tap_agent.h"
#include "tap_confirm.h"
#include "tap_jsonline.h"
#include "tap_options.h"
#include "tap_output.h"
#include "tap_payload.h"
#include "tap_table.h"

#include "zmesh.h"

#include <ctype.h>
#include <errno.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  How long destroy may take to flush the events to slow subscribers. */
#define S_LINGER_MS 2000

/*  Distinct topics --stdin advertises and waits for, at most. */
#define S_TOPICS_MAX 4096

/*  Creates and starts the agent; `topic`, when not NULL, is advertised
    before start so its subscribers connect at once. */
static int
s_join(const tap_options_t *opts, const char *topic, zmesh_agent_t **agent)
{
    int exit_code = tap_options_agent(opts, agent);
    if (exit_code != 0)
        return exit_code;
    int rc = zmesh_agent_set_linger(*agent, S_LINGER_MS);
    if (rc == 0 && topic)
        rc = zmesh_agent_advertise(*agent, topic);
    if (rc != 0) {
        tap_error("cannot advertise '%s': %s", topic ? topic : "",
                  zmesh_strerror(rc));
        return TAP_EXIT_FAILURE;
    }
    return tap_options_start(opts, *agent);
}

/*  Waits --timeout for the subscribers of `topic` (tap_agent.h). */
static int
s_wait_subscribers(const tap_options_t *opts, zmesh_agent_t *agent,
                   const char *topic, int *subscribers)
{
    return tap_agent_wait_subscribers(opts, agent, topic, opts->timeout_ms,
                                      "nothing published on it", subscribers);
}

/*  Waits until event number `index` (from 0) is due under --rate,
    handing the agent its peer events meanwhile (and with --confirm
    counting the confirms). Returns 0, or -1 when a signal came. */
static int
s_pace(const tap_options_t *opts, zmesh_agent_t *agent, tap_confirm_t *confirm,
       int64_t start_ms, long index)
{
    if (opts->rate <= 0 || index == 0)
        return tap_interrupted() ? -1 : 0;
    int64_t due = start_ms + (int64_t)((double)index * 1000.0 / opts->rate);
    if (confirm)
        return tap_confirm_idle_until(confirm, agent, due);
    return tap_agent_idle_until(agent, due);
}

/*  Publishes one event; with `confirm` (--confirm) asking for a confirm. */
static int
s_publish_one(zmesh_agent_t *agent, tap_confirm_t *confirm, const char *topic,
              const void *payload, size_t size)
{
    if (confirm)
        return tap_confirm_publish(confirm, agent, topic, payload, size);
    int rc = zmesh_agent_publish(agent, topic, payload, size);
    if (rc != 0) {
        tap_error("cannot publish on '%s': %s", topic, zmesh_strerror(rc));
        return TAP_EXIT_FAILURE;
    }
    return 0;
}

/*  Joins the mesh, waits for the subscribers and publishes --repeat
    times. */
static int
s_publish_args(const tap_options_t *opts, const char *topic,
               const void *payload, size_t size)
{
    zmesh_agent_t *agent = NULL;
    int subscribers = -1;
    tap_confirm_t tally, *confirm = opts->confirm ? &tally : NULL;
    int exit_code = s_join(opts, topic, &agent);
    if (exit_code == 0 && confirm)
        exit_code = tap_confirm_init(confirm, opts, agent);
    if (exit_code == 0)
        exit_code = s_wait_subscribers(opts, agent, topic, &subscribers);
    long sent = 0;
    if (exit_code == 0) {
        tap_signal_install();
        int64_t start = tap_monotonic_ms();
        while (sent < opts->repeat && exit_code == 0) {
            if (s_pace(opts, agent, confirm, start, sent) != 0) {
                tap_error("interrupted after %ld of %ld events", sent,
                          opts->repeat);
                exit_code = TAP_EXIT_FAILURE;
                break;
            }
            exit_code = s_publish_one(agent, confirm, topic, payload, size);
            if (exit_code == 0)
                sent++;
        }
        // What went out is owed its confirms, whatever stopped the loop.
        if (confirm) {
            int verdict = tap_confirm_finish(confirm, agent, opts->repeat);
            if (exit_code == 0)
                exit_code = verdict;
        }
    }
    if (opts->verbose && sent > 0) {
        fprintf(stderr, "mesh-tap: published %ld event%s of %zu bytes on '%s'",
                sent, sent == 1 ? "" : "s", size, topic);
        if (subscribers >= 0)
            fprintf(stderr, " to %d subscriber%s\n", subscribers,
                    subscribers == 1 ? "" : "s");
        else
            fputs(" (discovery not settled within --timeout)\n", stderr);
    }
    zmesh_agent_destroy(&agent); // lingers until the events are sent
    return exit_code;
}

/*  What one line of stdin asks to publish. */
typedef struct {
    char topic[ZMESH_TOPIC_MAX + 1];
    void *payload; // malloc'ed msgpack
    size_t size;
    bool skip; // a line of 'sub --json' that is not a message
} s_line_t;

/*  Parses a line in --stdin object mode: {"topic":T,"payload":JSON}.
    Returns 0, or TAP_EXIT_USAGE or TAP_EXIT_FAILURE after saying why. */
static int
s_parse_object_line(const char *text, size_t size, long number, s_line_t *out)
{
    tap_jsonline_t line;
    int rc = tap_jsonline_parse(&line, text, size);
    int exit_code = TAP_EXIT_USAGE;
    const msgpack_object *type = tap_jsonline_get(&line, "type");
    const msgpack_object *topic = tap_jsonline_get(&line, "topic");
    const msgpack_object *payload = tap_jsonline_get(&line, "payload");
    char why[ZMESH_TOPIC_MAX + 128];
    if (rc == ZMESH_ENOMEM) {
        tap_payload_bad_line(number, "out of memory", NULL, 0, NULL);
        exit_code = TAP_EXIT_FAILURE;
    } else if (rc != 0)
        tap_payload_bad_line(number, "not valid JSON", text, size,
                             tap_payload_hint(text, size));
    else if (tap_jsonline_root(&line)->type != MSGPACK_OBJECT_MAP)
        tap_payload_bad_line(
            number, "not a JSON object", text, size,
            "without a TOPIC argument each line is "
            "{\"topic\":\"a.b\",\"payload\":JSON}; give a TOPIC "
            "to publish plain JSON values");
    else if (type && !tap_jsonline_is(type, "message")) {
        out->skip = true;
        exit_code = 0;
    } else if (!tap_jsonline_string(topic, out->topic, sizeof out->topic))
        tap_payload_bad_line(number, "no \"topic\" string", text, size, NULL);
    else if ((rc = zmesh_topic_check(out->topic)) != 0) {
        snprintf(why, sizeof why, "cannot publish on '%s': %s", out->topic,
                 zmesh_strerror(rc));
        tap_payload_bad_line(number, why, NULL, 0, NULL);
    } else if (!payload)
        tap_payload_bad_line(number, "no \"payload\" (use null for no value)",
                             text, size, NULL);
    else {
        msgpack_sbuffer sbuf;
        msgpack_packer pk;
        msgpack_sbuffer_init(&sbuf);
        msgpack_packer_init(&pk, &sbuf, msgpack_sbuffer_write);
        if (msgpack_pack_object(&pk, *payload) == 0 && sbuf.size > 0) {
            out->payload = sbuf.data; // the sbuffer's malloc'ed bytes
            out->size = sbuf.size;
            exit_code = 0;
        } else {
            msgpack_sbuffer_destroy(&sbuf);
            tap_payload_bad_line(number, "out of memory", NULL, 0, NULL);
            exit_code = TAP_EXIT_FAILURE;
        }
    }
    tap_jsonline_free(&line);
    return exit_code;
}

/*  Parses one line of stdin; `fixed_topic` NULL means object mode. */
static int
s_parse_line(const char *fixed_topic, const char *text, size_t size,
             long number, s_line_t *out)
{
    memset(out, 0, sizeof *out);
    if (!fixed_topic)
        return s_parse_object_line(text, size, number, out);
    snprintf(out->topic, sizeof out->topic, "%s", fixed_topic);
    int rc = zmesh_json_to_msgpack(text, size, &out->payload, &out->size);
    if (rc == 0)
        return 0;
    if (rc != ZMESH_EJSON) {
        tap_payload_bad_line(number, zmesh_strerror(rc), NULL, 0, NULL);
        return TAP_EXIT_FAILURE;
    }
    tap_payload_bad_line(number, "not valid JSON", text, size,
                         tap_payload_hint(text, size));
    return TAP_EXIT_USAGE;
}

static bool
s_blank(const char *text, size_t size)
{
    for (size_t i = 0; i < size; i++)
        if (!isspace((unsigned char)text[i]))
            return false;
    return true;
}

/*  Advertises a topic the first time a line names it (unless it is
    `advertised`, the TOPIC argument, declared before start) and waits for
    its subscribers. */
static int
s_first_use(const tap_options_t *opts, zmesh_agent_t *agent,
            tap_table_t *topics, const char *topic, const char *advertised)
{
    bool created = false;
    if (!tap_table_get(topics, topic, &created)) {
        // Past the limit the topic is published without waiting: the
        // agent declares it by itself on publish.
        return 0;
    }
    if (!created)
        return 0;
    bool declared = advertised && strcmp(topic, advertised) == 0;
    int rc = declared ? 0 : zmesh_agent_advertise(agent, topic);
    if (rc != 0) {
        tap_error("cannot advertise '%s': %s", topic, zmesh_strerror(rc));
        return TAP_EXIT_FAILURE;
    }
    int subscribers;
    return s_wait_subscribers(opts, agent, topic, &subscribers);
}

/*  Reads stdin line by line and publishes each as it comes. */
static int
s_publish_stdin(const tap_options_t *opts, const char *fixed_topic)
{
    zmesh_agent_t *agent = NULL;
    tap_table_t *topics = NULL;
    tap_confirm_t tally, *confirm = opts->confirm ? &tally : NULL;
    int exit_code = s_join(opts, fixed_topic, &agent);
    if (exit_code == 0 && confirm)
        exit_code = tap_confirm_init(confirm, opts, agent);
    bool joined = exit_code == 0;
    if (exit_code == 0 && tap_table_new(&topics, S_TOPICS_MAX) != 0) {
        tap_error("out of memory");
        exit_code = TAP_EXIT_FAILURE;
    }
    if (exit_code == 0 && fixed_topic)
        exit_code = s_first_use(opts, agent, topics, fixed_topic, fixed_topic);
    tap_signal_install();
    char *text = NULL;
    size_t text_cap = 0;
    long number = 0, sent = 0;
    int64_t start = tap_monotonic_ms();
    while (exit_code == 0) {
        errno = 0;
        ssize_t got = getline(&text, &text_cap, stdin);
        if (got < 0) {
            if (ferror(stdin) && !tap_interrupted()) {
                tap_error("cannot read stdin: %s", strerror(errno));
                exit_code = TAP_EXIT_FAILURE;
            }
            break; // end of input, or Ctrl-C: a stream ends like that
        }
        number++;
        size_t size = (size_t)got;
        while (size > 0 && (text[size - 1] == '\n' || text[size - 1] == '\r'))
            size--;
        if (s_blank(text, size))
            continue;
        s_line_t line;
        exit_code = s_parse_line(fixed_topic, text, size, number, &line);
        if (exit_code == 0 && !line.skip) {
            exit_code =
                s_first_use(opts, agent, topics, line.topic, fixed_topic);
            if (exit_code == 0 &&
                s_pace(opts, agent, confirm, start, sent) != 0) {
                free(line.payload);
                break;
            }
            if (exit_code == 0)
                exit_code = s_publish_one(agent, confirm, line.topic,
                                          line.payload, line.size);
            if (exit_code == 0)
                sent++;
            else
                tap_error("stdin line %ld was not published", number);
        }
        free(line.payload);
        if (exit_code == TAP_EXIT_USAGE)
            tap_error("%ld event%s published from the lines before it; "
                      "nothing after it",
                      sent, sent == 1 ? "" : "s");
    }
    free(text);
    if (opts->verbose)
        fprintf(stderr, "mesh-tap: published %ld event%s from %ld line%s\n",
                sent, sent == 1 ? "" : "s", number, number == 1 ? "" : "s");
    // Every line published is owed its confirm, whatever stopped the loop.
    if (confirm && joined) {
        int verdict = tap_confirm_finish(confirm, agent, sent);
        if (exit_code == 0)
            exit_code = verdict;
    }
    tap_table_destroy(&topics);
    zmesh_agent_destroy(&agent); // lingers until the events are sent
    return exit_code;
}

int
tap_pub_run(const tap_options_t *opts)
{
    const char *topic = opts->args_count > 0 ? opts->args[0] : NULL;
    int rc = topic ? zmesh_topic_check(topic) : 0;
    if (rc != 0)
        return tap_usage_error(opts->command, "cannot publish on '%s': %s",
                               topic, zmesh_strerror(rc));
    if (opts->stdin_lines)
        return s_publish_stdin(opts, topic);

    void *payload = NULL;
    size_t size = 0;
    int exit_code = tap_payload_from_arg(opts, opts->args[1], &payload, &size);
    if (exit_code == 0)
        exit_code = s_publish_args(opts, topic, payload, size);
    free(payload);
    return exit_code;
}

void
tap_help_pub(void)
{
    fputs(
        "Usage: mesh-tap pub [OPTIONS] TOPIC JSON\n"
        "       mesh-tap pub [OPTIONS] --stdin [TOPIC]\n"
        "\n"
        "Publishes an event on TOPIC whose payload is the JSON value, sent\n"
        "as msgpack (JSON '-' reads one value from all of stdin). Before the\n"
        "first event on a topic it waits until every peer that wants the\n"
        "topic is connected; it gives discovery about 1.5 s to hear the\n"
        "peers' beacons before it concludes that nobody wants it. Then it\n"
        "waits until the events have left and exits.\n"
        "\n"
        "With --stdin, every line of stdin is one event, published as it is\n"
        "read (blank lines are skipped):\n"
        "  with TOPIC     each line is one JSON value, the payload\n"
        "  without TOPIC  each line is {\"topic\":\"a.b\",\"payload\":JSON};\n"
        "                 other keys are ignored, and lines whose \"type\" is\n"
        "                 not \"message\" are skipped, so the output of\n"
        "                 'mesh-tap sub --json' can be fed back in\n"
        "A line that is not valid stops the tool: exit 2, naming the line;\n"
        "the lines before it were published, nothing after it is.\n"
        "\n"
        "With --confirm, each event asks the mesh's relays (mesh-relay) to\n"
        "confirm they stored it. After the last event pub waits for every\n"
        "confirm (the library resends what a relay missed, every second,\n"
        "until the confirm timeout), prints \"confirmed N of M events\" on\n"
        "stdout and each kind of failure, with its reason, on stderr, and\n"
        "exits 0 only if a relay stored every event. An event no relay\n"
        "stores (no relay, or no stream covers the topic) times out.\n"
        "\n"
        "Options:\n"
        "  --repeat N           publish the event N times (sequence 1..N)\n"
        "  --rate PER_SEC       at most this many events per second (default:\n"
        "                       as fast as possible; ZeroMQ drops events for "
        "a\n"
        "                       subscriber more than 1000 behind, so pace big\n"
        "                       batches)\n"
        "  --stdin              read the events from stdin, one per line\n"
        "  --timeout SEC        how long to wait for the subscribers of each\n"
        "                       topic (default 3)\n"
        "  --min-peers N        exit 1 without publishing unless at least N\n"
        "                       subscribers are connected by the timeout\n"
        "                       (default 0)\n"
        "  --confirm            wait until a relay has stored each event;\n"
        "                       exit 1 unless every one was confirmed\n"
        "  --confirm-timeout SEC\n"
        "                       how long an event may wait for its confirm\n"
        "                       (default 10, at most 3600)\n\n",
        stdout);
    tap_options_help_common();
    fputs("\n"
          "Examples:\n"
          "  mesh-tap pub orders.created '{\"id\":42,\"items\":[\"tea\"]}'\n"
          "  mesh-tap pub --min-peers 2 --timeout 10 deploy.done '\"v1.4\"'\n"
          "  mesh-tap pub sensors.temp -3.5\n"
          "  mesh-tap pub --repeat 100 --rate 20 load.test '{\"ping\":true}'\n"
          "  jq -c . event.json | mesh-tap pub orders.created -\n"
          "  printf '1\\n2\\n3\\n' | mesh-tap pub --stdin counter.tick\n"
          "  mesh-tap sub --json --mesh a 'orders.>' | mesh-tap pub --stdin "
          "--mesh b\n"
          "  mesh-tap pub --confirm orders.paid '{\"id\":7}' && echo stored\n"
          "  mesh-tap pub --confirm --confirm-timeout 30 --stdin audit.log "
          "< lines\n"
          "\n"
          "A JSON string needs its double quotes inside the shell's quotes:\n"
          "'\"text\"', not \"text\".\n"
          "\n"
          "Exit status: 0 published (with --confirm: and every event\n"
          "confirmed); 1 cannot join, too few subscribers, publish failed,\n"
          "interrupted, an event not confirmed; 2 usage or a bad payload.\n",
          stdout);
}
