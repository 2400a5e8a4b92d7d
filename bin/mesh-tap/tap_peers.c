/*  tap_peers.c - "mesh-tap peers": who is in the mesh. Joins, listens for
    --wait seconds (peers beacon once a second, so the default 1.5 s hears
    each of them), then prints zmesh_agent_peers(): a block of text per
    peer, or one JSON object per peer per line. Subscribes to nothing, so
    the tap itself never makes a publisher send it data.
*/
#include "tap_options.h"
#include "tap_output.h"

#include "zmesh.h"

#include <errno.h>
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
    fputs(",\"headers\":{", out);
    for (size_t j = 0; j < zmesh_peer_headers_size(list, i); j++) {
        if (j > 0)
            fputc(',', out);
        tap_output_json_string(out, zmesh_peer_header_key(list, i, j));
        fputc(':', out);
        tap_output_json_string(out, zmesh_peer_header_value(list, i, j));
    }
    fputs("}}", out);
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
s_print_peer_text(FILE *out, const zmesh_peer_list_t *list, size_t i)
{
    tap_output_text(out, zmesh_peer_name(list, i), 0);
    fprintf(out, "  %s\n", zmesh_peer_id(list, i));
    fputs("  found      ", out);
    tap_output_text(out, zmesh_peer_origin(list, i), 0);
    fprintf(out, ", last heard %" PRId64 " ms ago, data %s\n",
            zmesh_peer_last_seen_ms(list, i),
            zmesh_peer_connected(list, i) ? "connected" : "not connected");
    fputs("  control    ", out);
    tap_output_text(out, zmesh_peer_endpoint(list, i), 0);
    fputs("\n  data       ", out);
    tap_output_text(out, zmesh_peer_data_endpoint(list, i), 0);
    fputc('\n', out);
    s_print_text_list(out, "publishes", list, i, zmesh_peer_publishes_size,
                      zmesh_peer_publishes);
    s_print_text_list(out, "wants", list, i, zmesh_peer_wants_size,
                      zmesh_peer_wants);
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
    int64_t deadline = tap_monotonic_ms() + opts->wait_ms;
    for (;;) {
        int64_t left = deadline - tap_monotonic_ms();
        if (left <= 0)
            return 0;
        const zmesh_event_t *event = NULL;
        int rc = zmesh_agent_recv(agent, (int)left, &event);
        if (rc != 0 && rc != ZMESH_EAGAIN) {
            tap_error("receive failed: %s", zmesh_strerror(rc));
            return TAP_EXIT_FAILURE;
        }
    }
}

static int
s_print(const tap_options_t *opts, const zmesh_peer_list_t *list)
{
    size_t n = zmesh_peer_list_size(list);
    if (n == 0)
        fprintf(stderr, "mesh-tap: no peers in mesh '%s' after %.1f s\n",
                tap_options_mesh(opts), opts->wait_ms / 1000.0);
    for (size_t i = 0; i < n; i++) {
        if (opts->json)
            s_print_peer_json(stdout, list, i);
        else {
            if (i > 0)
                fputc('\n', stdout); // a blank line between blocks
            s_print_peer_text(stdout, list, i);
        }
        if (tap_output_end_line(stdout) != 0) {
            if (errno == EPIPE)
                return TAP_EXIT_OK;
            tap_error("cannot write to stdout: %s", strerror(errno));
            return TAP_EXIT_FAILURE;
        }
    }
    return TAP_EXIT_OK;
}

int
tap_peers_run(const tap_options_t *opts)
{
    zmesh_agent_t *agent = NULL;
    int exit_code = tap_options_agent(opts, &agent);
    if (exit_code == 0)
        exit_code = tap_options_start(opts, agent);
    if (exit_code == 0)
        exit_code = s_listen(opts, agent);
    if (exit_code == 0) {
        zmesh_peer_list_t *list = NULL;
        int rc = zmesh_agent_peers(agent, &list);
        if (rc != 0) {
            tap_error("cannot list peers: %s", zmesh_strerror(rc));
            exit_code = TAP_EXIT_FAILURE;
        } else
            exit_code = s_print(opts, list);
        zmesh_peer_list_destroy(&list);
    }
    zmesh_agent_destroy(&agent);
    return exit_code;
}

void
tap_help_peers(void)
{
    fputs("Usage: mesh-tap peers [OPTIONS]\n"
          "\n"
          "Joins the mesh, listens for a while (peers send a beacon every\n"
          "second) and lists the peers it found: name, id, how it was found,\n"
          "when it was last heard, its control and data endpoints, the topics\n"
          "it publishes and wants, and its headers. The tap itself is not\n"
          "listed. Exits 0 also when no peer is found (with a note on "
          "stderr).\n"
          "\n"
          "Options:\n"
          "  --json               one JSON object per peer per line:\n"
          "                       {\"type\":\"peer\",\"name\":...,\"id\":...,"
          "\"endpoint\":...,\n"
          "                        \"data_endpoint\":...,\"origin\":...,"
          "\"connected\":BOOL,\n"
          "                        \"last_seen_ms\":N,\"publishes\":[...],"
          "\"wants\":[...],\n"
          "                        \"headers\":{...}}\n"
          "  --wait SEC           how long to listen first (default 1.5)\n\n",
          stdout);
    tap_options_help_common();
    fputs("\n"
          "Examples:\n"
          "  mesh-tap peers\n"
          "  mesh-tap peers --mesh prod --wait 3 --json | jq .name\n"
          "  mesh-tap peers --discovery none --seed tcp://192.0.2.10:40123\n",
          stdout);
}
