/*  tap_play.c - "mesh-tap play FILE": publishes a recording again. The
    file is read twice: first all of it is checked, so a corrupt or
    truncated file is refused naming the line before anything is published,
    and its topics are advertised and their subscribers waited for as "pub"
    does; then each payload is published byte for byte, at the recorded
    pace (recv_ts deltas over --speed) or as fast as possible. Events leave
    with the tap's own publisher id, sequence numbers and timestamps: the
    public API publishes as the agent itself, never on behalf of another.
*/
#include "tap_agent.h"
#include "tap_options.h"
#include "tap_output.h"
#include "tap_recfile.h"
#include "tap_table.h"

#include "zmesh.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  How long destroy may take to flush the events to slow subscribers. */
#define S_LINGER_MS 2000

/*  Distinct topics advertised one by one; past this, '>' is advertised
    instead, so the HELLO stays small. */
#define S_ADVERTISE_MAX 256

/*  Distinct topics whose subscribers are waited for, at most. */
#define S_TOPICS_MAX 65536

/*  Longest line accepted; a recorded event is far smaller (the default
    frame limit is 1 MiB, base64 makes 1.4 MiB of it). */
#define S_LINE_MAX (64u * 1024 * 1024)

typedef struct {
    const tap_options_t *opts;
    const char *path;
    FILE *in;
    char *text; // the current line, getline's buffer
    size_t text_cap;
    long line; // number of the current line
    tap_table_t *topics;
    long events;
} s_play_t;

/*  Reads and parses the next event line into *record. Returns 1 for an
    event, 0 at the end of the file, or an exit code (negated, so it is
    told apart from the others) after saying what is wrong. */
static int
s_next(s_play_t *self, tap_record_t *record, const char *when)
{
    for (;;) {
        errno = 0;
        ssize_t got = getline(&self->text, &self->text_cap, self->in);
        if (got < 0) {
            if (ferror(self->in)) {
                tap_error("cannot read %s: %s", self->path,
                          strerror(errno ? errno : EIO));
                return -TAP_EXIT_FAILURE;
            }
            return 0;
        }
        self->line++;
        size_t size = (size_t)got;
        bool newline = size > 0 && self->text[size - 1] == '\n';
        if (newline)
            size--;
        if (size > 0 && self->text[size - 1] == '\r')
            size--;
        if (size == 0)
            continue;
        if (size > S_LINE_MAX) {
            tap_error("%s line %ld: longer than %u MiB%s", self->path,
                      self->line, S_LINE_MAX >> 20, when);
            return -TAP_EXIT_FAILURE;
        }
        char why[160];
        int rc = tap_recfile_parse(self->text, size, self->line == 1, record,
                                   why, sizeof why);
        if (rc == ZMESH_ENOMEM) {
            tap_error("out of memory reading %s line %ld", self->path,
                      self->line);
            return -TAP_EXIT_FAILURE;
        }
        if (rc != 0) {
            tap_error("%s line %ld: %s%s%s", self->path, self->line,
                      newline ? "" : "truncated (no newline at the end): ", why,
                      when);
            return -TAP_EXIT_FAILURE;
        }
        if (!record->header)
            return 1;
        tap_record_clear(record);
    }
}

/*  The first pass: checks every line and collects the topics. */
static int
s_scan(s_play_t *self)
{
    for (;;) {
        tap_record_t record;
        int rc = s_next(self, &record, "; nothing was published");
        if (rc <= 0)
            return -rc;
        bool created;
        // A full table only means more topics than are waited for one by
        // one: the rest are covered by advertising '>'.
        tap_table_get(self->topics, record.topic, &created);
        self->events++;
        tap_record_clear(&record);
    }
}

static int
s_advertise(s_play_t *self, zmesh_agent_t *agent)
{
    size_t topics = tap_table_size(self->topics);
    bool each = topics <= S_ADVERTISE_MAX && self->events > 0;
    for (size_t i = 0; i < (each ? topics : 1); i++) {
        const char *pattern =
            each ? tap_table_entry(self->topics, i)->key : ">";
        int rc = zmesh_agent_advertise(agent, pattern);
        if (rc != 0) {
            tap_error("cannot advertise '%s': %s", pattern, zmesh_strerror(rc));
            return TAP_EXIT_FAILURE;
        }
    }
    return 0;
}

/*  Waits for the subscribers of every topic, all within one --timeout. */
static int
s_wait_subscribers(s_play_t *self, zmesh_agent_t *agent)
{
    const tap_options_t *opts = self->opts;
    int64_t deadline = tap_monotonic_ms() + opts->timeout_ms;
    for (size_t i = 0; i < tap_table_size(self->topics); i++) {
        const char *topic = tap_table_entry(self->topics, i)->key;
        int64_t left = deadline - tap_monotonic_ms();
        int subscribers;
        int exit_code = tap_agent_wait_subscribers(
            opts, agent, topic, left > 0 ? (int)left : 0, "nothing published",
            &subscribers);
        if (exit_code != 0)
            return exit_code;
    }
    return 0;
}

/*  The second pass: publishes every event at its time. */
static int
s_publish(s_play_t *self, zmesh_agent_t *agent, long *sent)
{
    const tap_options_t *opts = self->opts;
    int64_t start_ms = tap_monotonic_ms();
    int64_t first_recv = 0, due = start_ms;
    for (;;) {
        tap_record_t record;
        int rc =
            s_next(self, &record, " (the file changed while it was played)");
        if (rc <= 0)
            return -rc;
        if (*sent == 0)
            first_recv = record.recv_ts;
        if (!opts->fast) {
            // Times that go back (a clock step while recording) keep the
            // events in file order, without a wait.
            double offset_ms =
                (double)(record.recv_ts - first_recv) / 1000.0 / opts->speed;
            int64_t at = start_ms + (int64_t)offset_ms;
            if (at > due)
                due = at;
        }
        if (tap_agent_idle_until(agent, due) != 0) {
            tap_record_clear(&record);
            tap_error("interrupted after %ld of %ld events", *sent,
                      self->events);
            return TAP_EXIT_FAILURE;
        }
        rc = zmesh_agent_publish(agent, record.topic, record.payload,
                                 record.size);
        if (rc != 0) {
            tap_error("%s line %ld: cannot publish on '%s': %s", self->path,
                      self->line, record.topic, zmesh_strerror(rc));
            tap_record_clear(&record);
            return TAP_EXIT_FAILURE;
        }
        (*sent)++;
        tap_record_clear(&record);
    }
}

static int
s_play(s_play_t *self)
{
    const tap_options_t *opts = self->opts;
    zmesh_agent_t *agent = NULL;
    int exit_code = tap_options_agent(opts, &agent);
    if (exit_code == 0) {
        int rc = zmesh_agent_set_linger(agent, S_LINGER_MS);
        if (rc != 0) {
            tap_error("cannot set the linger time: %s", zmesh_strerror(rc));
            exit_code = TAP_EXIT_FAILURE;
        }
    }
    if (exit_code == 0)
        exit_code = s_advertise(self, agent);
    if (exit_code == 0)
        exit_code = tap_options_start(opts, agent);
    if (exit_code == 0) {
        tap_signal_install();
        exit_code = s_wait_subscribers(self, agent);
    }
    long sent = 0;
    int64_t start = tap_monotonic_ms();
    if (exit_code == 0) {
        rewind(self->in);
        self->line = 0;
        exit_code = s_publish(self, agent, &sent);
    }
    zmesh_agent_destroy(&agent); // lingers until the events are sent
    if (sent > 0 || exit_code == 0)
        fprintf(stderr,
                "mesh-tap: played %ld event%s on %zu topic%s from %s in "
                "%.1f s\n",
                sent, sent == 1 ? "" : "s", tap_table_size(self->topics),
                tap_table_size(self->topics) == 1 ? "" : "s", self->path,
                (double)(tap_monotonic_ms() - start) / 1000.0);
    return exit_code;
}

int
tap_play_run(const tap_options_t *opts)
{
    s_play_t self = {.opts = opts, .path = opts->args[0]};
    if (strcmp(self.path, "-") == 0)
        return tap_usage_error(opts->command,
                               "'play' reads a file twice (to check it, "
                               "then to play it), so it cannot read stdin");
    self.in = fopen(self.path, "r");
    if (!self.in) {
        tap_error("cannot open %s: %s", self.path, strerror(errno));
        return TAP_EXIT_FAILURE;
    }
    int exit_code = TAP_EXIT_FAILURE;
    if (tap_table_new(&self.topics, S_TOPICS_MAX) != 0)
        tap_error("out of memory");
    else
        exit_code = s_scan(&self);
    if (exit_code == 0 && self.events == 0)
        fprintf(stderr, "mesh-tap: %s holds no events; nothing to play\n",
                self.path);
    else if (exit_code == 0)
        exit_code = s_play(&self);
    free(self.text);
    fclose(self.in);
    tap_table_destroy(&self.topics);
    return exit_code;
}

void
tap_help_play(void)
{
    fputs(
        "Usage: mesh-tap play [OPTIONS] FILE\n"
        "\n"
        "Publishes the events of a recording made by 'mesh-tap record'\n"
        "again: the same topics and the same payload bytes, in file order,\n"
        "with the original gaps between them (from recv_ts) unless told\n"
        "otherwise. The whole file is checked first: a corrupt or truncated\n"
        "file is refused, naming the line, before anything is published\n"
        "(exit 1). Like 'pub', it advertises the topics and waits for\n"
        "their subscribers first. The events carry the tap's own publisher\n"
        "id, sequence numbers and timestamps, not the recorded ones.\n"
        "\n"
        "Options:\n"
        "  --speed X            play X times as fast (default 1; 0.5 is half\n"
        "                       speed)\n"
        "  --as-fast-as-possible\n"
        "                       no gaps at all (ZeroMQ drops events for a\n"
        "                       subscriber more than 1000 behind)\n"
        "  --timeout SEC        how long to wait for subscribers (default 3)\n"
        "  --min-peers N        exit 1 without publishing unless every topic\n"
        "                       has at least N subscribers by the timeout\n\n",
        stdout);
    tap_options_help_common();
    fputs("\n"
          "Examples:\n"
          "  mesh-tap play orders.rec\n"
          "  mesh-tap play --speed 10 --mesh staging orders.rec\n"
          "  mesh-tap play --as-fast-as-possible --min-peers 1 orders.rec\n",
          stdout);
}
