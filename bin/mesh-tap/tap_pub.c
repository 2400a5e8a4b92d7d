/*  tap_pub.c - "mesh-tap pub TOPIC JSON": publishes one event from a
    script or a shell. The JSON is converted to msgpack before the agent
    starts, so a typo costs no network time and exits 2. The topic is
    advertised before start, so peers that want it connect at once; then
    the tap waits for them (zmesh_agent_wait_subscribers, which also gives
    discovery one and a half beacon intervals to hear every peer before it
    concludes nobody wants the topic), publishes, and lingers on destroy
    until the event has left.
*/
#include "tap_options.h"
#include "tap_output.h"

#include "zmesh.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  Largest payload read from stdin; the agent's default frame limit is far
    below this anyway. */
#define S_STDIN_MAX (64u * 1024 * 1024)

/*  How long destroy may take to flush the event to slow subscribers. */
#define S_LINGER_MS 2000

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

/*  Says why `json` was refused, with the start of it and a hint for the
    mistakes people make most on a command line. */
static int
s_bad_json(const char *json, size_t size, int rc)
{
    if (rc != ZMESH_EJSON) {
        tap_error("cannot convert the payload: %s", zmesh_strerror(rc));
        return TAP_EXIT_FAILURE;
    }
    const char *start = json;
    while (start < json + size && isspace((unsigned char)*start))
        start++;
    const char *hint = "look for a missing or trailing comma, an unclosed "
                       "bracket or quote, an unquoted key, a leading zero "
                       "or a bad escape";
    if (start == json + size)
        hint = "the payload is empty; use null for no value";
    else if (*start == '\'')
        hint = "JSON strings take double quotes, e.g. '\"text\"'";
    else if (isalpha((unsigned char)*start) && strncmp(start, "true", 4) != 0 &&
             strncmp(start, "false", 5) != 0 && strncmp(start, "null", 4) != 0)
        hint = "a string needs double quotes inside the shell's quotes, "
               "e.g. '\"text\"'";
    fputs("mesh-tap: the payload is not valid JSON: ", stderr);
    // Show at most 60 bytes, made safe for the terminal.
    char excerpt[64];
    size_t n = size < 60 ? size : 60;
    memcpy(excerpt, json, n);
    excerpt[n] = '\0';
    tap_output_text(stderr, excerpt, 0);
    fprintf(stderr, "%s\nmesh-tap: %s\n", size > n ? "..." : "", hint);
    return TAP_EXIT_USAGE;
}

/*  Joins the mesh, waits for the subscribers and publishes. */
static int
s_publish(const tap_options_t *opts, const char *topic, const void *payload,
          size_t size)
{
    zmesh_agent_t *agent = NULL;
    int exit_code = tap_options_agent(opts, &agent);
    if (exit_code != 0)
        return exit_code;
    int rc = zmesh_agent_set_linger(agent, S_LINGER_MS);
    if (rc == 0)
        rc = zmesh_agent_advertise(agent, topic);
    if (rc != 0) {
        tap_error("cannot advertise '%s': %s", topic, zmesh_strerror(rc));
        zmesh_agent_destroy(&agent);
        return TAP_EXIT_FAILURE;
    }
    exit_code = tap_options_start(opts, agent);
    if (exit_code != 0) {
        zmesh_agent_destroy(&agent);
        return exit_code;
    }

    int subscribers = zmesh_agent_wait_subscribers(
        agent, topic, opts->min_peers, opts->timeout_ms);
    if (subscribers == ZMESH_ETIMEDOUT && opts->min_peers > 0) {
        tap_error("fewer than %d subscriber%s of '%s' in mesh '%s' within "
                  "%.1f s; nothing published",
                  opts->min_peers, opts->min_peers == 1 ? "" : "s", topic,
                  tap_options_mesh(opts), opts->timeout_ms / 1000.0);
        zmesh_agent_destroy(&agent);
        return TAP_EXIT_FAILURE;
    }
    if (subscribers < 0 && subscribers != ZMESH_ETIMEDOUT) {
        tap_error("waiting for subscribers failed: %s",
                  zmesh_strerror(subscribers));
        zmesh_agent_destroy(&agent);
        return TAP_EXIT_FAILURE;
    }
    // A timeout with no minimum only means discovery had less time than it
    // likes: publish to whoever is connected.
    rc = zmesh_agent_publish(agent, topic, payload, size);
    if (rc != 0) {
        tap_error("cannot publish on '%s': %s", topic, zmesh_strerror(rc));
        exit_code = TAP_EXIT_FAILURE;
    } else if (opts->verbose) {
        if (subscribers >= 0)
            fprintf(stderr,
                    "mesh-tap: published %zu bytes on '%s' to %d "
                    "subscriber%s\n",
                    size, topic, subscribers, subscribers == 1 ? "" : "s");
        else
            fprintf(stderr,
                    "mesh-tap: published %zu bytes on '%s' (discovery "
                    "not settled within --timeout)\n",
                    size, topic);
    }
    zmesh_agent_destroy(&agent); // lingers until the event is sent
    return exit_code;
}

int
tap_pub_run(const tap_options_t *opts)
{
    const char *topic = opts->args[0];
    const char *json_arg = opts->args[1];
    int rc = zmesh_topic_check(topic);
    if (rc != 0)
        return tap_usage_error(opts->command, "cannot publish on '%s': %s",
                               topic, zmesh_strerror(rc));

    char *from_stdin = NULL;
    const char *json = json_arg;
    size_t json_size = strlen(json_arg);
    if (strcmp(json_arg, "-") == 0) {
        int exit_code = s_read_stdin(opts, &from_stdin, &json_size);
        if (exit_code != 0)
            return exit_code;
        json = from_stdin;
    }
    void *payload = NULL;
    size_t size = 0;
    rc = zmesh_json_to_msgpack(json, json_size, &payload, &size);
    int exit_code = rc == 0 ? s_publish(opts, topic, payload, size)
                            : s_bad_json(json, json_size, rc);
    free(payload);
    free(from_stdin);
    return exit_code;
}

void
tap_help_pub(void)
{
    fputs(
        "Usage: mesh-tap pub [OPTIONS] TOPIC JSON\n"
        "\n"
        "Publishes one event on TOPIC whose payload is the JSON value, sent\n"
        "as msgpack (JSON '-' reads it from stdin). Before publishing it\n"
        "waits until every peer that wants TOPIC is connected; it gives\n"
        "discovery about 1.5 s to hear the peers' beacons before it\n"
        "concludes that nobody wants the topic. Then it waits until the\n"
        "event has left and exits.\n"
        "\n"
        "Options:\n"
        "  --timeout SEC        how long to wait for subscribers (default 3)\n"
        "  --min-peers N        exit 1 without publishing unless at least N\n"
        "                       subscribers are connected by the timeout\n"
        "                       (default 0)\n\n",
        stdout);
    tap_options_help_common();
    fputs("\n"
          "Examples:\n"
          "  mesh-tap pub orders.created '{\"id\":42,\"items\":[\"tea\"]}'\n"
          "  mesh-tap pub --min-peers 2 --timeout 10 deploy.done '\"v1.4\"'\n"
          "  mesh-tap pub sensors.temp -3.5\n"
          "  jq -c . event.json | mesh-tap pub orders.created -\n"
          "\n"
          "A JSON string needs its double quotes inside the shell's quotes:\n"
          "'\"text\"', not \"text\".\n",
          stdout);
}
