/*  tap_record.c - "mesh-tap record FILE [PATTERN...]": writes every message
    event on the patterns to FILE (or stdout for "-") in the record format
    of tap_recfile.h, for "mesh-tap play" or for any program that reads
    JSON lines. Peer joins and leaves are not recorded. Lines are written
    as events come and flushed whenever the agent has nothing more queued,
    so a burst costs one write and a killed recorder loses at most the
    burst in flight. Stops like the live view: --count, --timeout, Ctrl-C.
*/
#include "tap_agent.h"
#include "tap_options.h"
#include "tap_output.h"
#include "tap_recfile.h"

#include "zmesh.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

typedef struct {
    const tap_options_t *opts;
    FILE *out;
    const char *path; // for messages
    long recorded;
    bool unflushed;
} s_record_t;

/*  Flushes the file; returns 0 or TAP_EXIT_FAILURE after saying why. */
static int
s_flush(s_record_t *self)
{
    self->unflushed = false;
    errno = 0;
    if (fflush(self->out) == 0 && !ferror(self->out))
        return 0;
    tap_error("cannot write to %s: %s", self->path,
              strerror(errno ? errno : EIO));
    return TAP_EXIT_FAILURE;
}

static int
s_run_loop(s_record_t *self, zmesh_agent_t *agent)
{
    const tap_options_t *opts = self->opts;
    int64_t deadline = tap_agent_deadline(opts);
    // Not tap_agent_next: while lines wait to be flushed the receive must
    // not block, and running dry is the moment to flush them.
    while (!tap_interrupted()) {
        int wait = tap_wait_ms(deadline);
        if (wait <= 0)
            break;
        const zmesh_event_t *event = NULL;
        int rc = zmesh_agent_recv(agent, self->unflushed ? 0 : wait, &event);
        if (rc == ZMESH_EAGAIN) {
            if (self->unflushed && s_flush(self) != 0)
                return TAP_EXIT_FAILURE;
            continue;
        }
        if (rc != 0) {
            tap_error("receive failed: %s", zmesh_strerror(rc));
            return TAP_EXIT_FAILURE;
        }
        if (zmesh_event_type(event) != ZMESH_EVENT_MESSAGE ||
            !tap_options_publisher_wanted(opts, zmesh_event_peer_name(event),
                                          zmesh_event_peer_id(event)))
            continue;
        tap_recfile_write_event(self->out, event, tap_now_us());
        if (fputc('\n', self->out) == EOF) {
            s_flush(self); // the error flag is set: this says why
            return TAP_EXIT_FAILURE;
        }
        self->unflushed = true;
        self->recorded++;
        if (opts->count > 0 && self->recorded >= opts->count)
            return TAP_EXIT_OK;
    }
    return tap_agent_count_verdict(opts, self->recorded, "events");
}

int
tap_record_run(const tap_options_t *opts)
{
    int exit_code = tap_options_check_patterns(opts, 1);
    if (exit_code != 0)
        return exit_code;
    // The agent is configured first, so a usage error leaves FILE alone.
    zmesh_agent_t *agent = NULL;
    exit_code = tap_agent_configure(opts, 1, &agent);
    if (exit_code != 0)
        return exit_code;
    s_record_t self = {.opts = opts, .path = opts->args[0]};
    bool to_stdout = strcmp(self.path, "-") == 0;
    if (to_stdout) {
        self.out = stdout;
        self.path = "stdout";
    } else if (!(self.out = fopen(self.path, "w"))) {
        tap_error("cannot open %s for writing: %s", self.path, strerror(errno));
        zmesh_agent_destroy(&agent);
        return TAP_EXIT_FAILURE;
    }
    exit_code = tap_options_start(opts, agent);
    if (exit_code == 0) {
        tap_signal_install();
        tap_recfile_write_header(self.out, tap_options_mesh(opts),
                                 opts->args + 1, opts->args_count - 1,
                                 tap_now_us());
        fputc('\n', self.out);
        exit_code = s_flush(&self);
    }
    if (exit_code == 0)
        exit_code = s_run_loop(&self, agent);
    zmesh_agent_destroy(&agent);
    int flushed = s_flush(&self);
    if (exit_code == 0)
        exit_code = flushed;
    if (!to_stdout && fclose(self.out) != 0 && exit_code == 0) {
        tap_error("cannot write to %s: %s", self.path, strerror(errno));
        exit_code = TAP_EXIT_FAILURE;
    }
    fprintf(stderr, "mesh-tap: recorded %ld event%s to %s\n", self.recorded,
            self.recorded == 1 ? "" : "s", self.path);
    return exit_code;
}

void
tap_help_record(void)
{
    fputs(
        "Usage: mesh-tap record [OPTIONS] FILE [PATTERN...]\n"
        "\n"
        "Joins the mesh, subscribes to every PATTERN (default '>') and\n"
        "writes each event to FILE (- for stdout) until Ctrl-C, --count or\n"
        "--timeout; then says how many it recorded. FILE is overwritten.\n"
        "It is NDJSON: a header line, then one line per event:\n"
        "  {\"format\":\"mesh-tap-record\",\"version\":1,\"tool\":...,"
        "\"mesh\":...,\n"
        "   \"patterns\":[...],\"started\":US}\n"
        "  {\"topic\":...,\"publisher\":...,\"publisher_id\":...,\"seq\":N,"
        "\"ts\":US,\n"
        "   \"recv_ts\":US,\"payload\":BASE64}\n"
        "payload is base64 of the exact msgpack bytes received, so 'mesh-tap\n"
        "play' sends the same bytes again; ts is the publish time on the\n"
        "publisher's clock, recv_ts the receive time on this host's.\n"
        "\n"
        "Options:\n"
        "  --publisher NAME     record only these publishers (name, or id\n"
        "                       prefix of 8+ hex digits; repeatable)\n"
        "  --count N            exit 0 after N events\n"
        "  --timeout SEC        stop after SEC seconds: exit 1 if --count\n"
        "                       was not reached, else 0\n\n",
        stdout);
    tap_options_help_common();
    fputs("\n"
          "Examples:\n"
          "  mesh-tap record orders.rec 'orders.>'        until Ctrl-C\n"
          "  mesh-tap record --timeout 60 minute.rec      one minute of "
          "everything\n"
          "  mesh-tap record - 'sensors.>' | gzip > sensors.rec.gz\n",
          stdout);
}
