/*  tap_stats.c - "mesh-tap stats": live rates. Subscribes like the live
    view, counts every message event (and its payload bytes) per topic and
    per publisher, and every --interval prints what the interval held:
    totals, events/s and bytes/s, the --top busiest topics and publishers.
    On a terminal the table is redrawn in place (clear, home); anywhere
    else, or with --json, each interval is one JSON object on a line. The
    counting tables are bounded (tap_table.h); events past the bound count
    in the totals only and are reported as untracked. Each report also
    carries the tap agent's own counters (zmesh_agent_counters, the
    "agent" group): whether what it received came complete, repaired or
    with gaps.
*/
#include "tap_agent.h"
#include "tap_options.h"
#include "tap_output.h"
#include "tap_table.h"

#include "zmesh.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/*  Distinct topics and publishers tracked, at most. */
#define S_KEYS_MAX 65536

typedef struct {
    const tap_options_t *opts;
    zmesh_agent_t *agent;
    tap_table_t *topics;
    tap_table_t *publishers; // keyed by id, labelled with the name
    uint64_t events_total, bytes_total;
    uint64_t events, bytes; // in this interval
    uint64_t untracked;     // events not in the tables (they were full)
    int64_t started_ms;
    int64_t tick_ms; // start of this interval
    bool tty;        // redraw in place rather than NDJSON
    bool color;
    // The tap agent's own counters, read at each tick, and which group
    // of them is the agent's (SIZE_MAX: none this tick).
    zmesh_counters_t *counters;
    size_t agent_group;
} s_stats_t;

/*  Reads the tap agent's counters: the "agent" group of
    zmesh_agent_counters holds every zmesh_stats_t field and a few more,
    named by the library, so the report keeps up with what it counts. A
    failure costs only that part of the report. */
static void
s_read_counters(s_stats_t *self)
{
    zmesh_counters_destroy(&self->counters);
    self->agent_group = SIZE_MAX;
    if (zmesh_agent_counters(self->agent, &self->counters) != 0)
        return;
    for (size_t i = 0; i < zmesh_counters_size(self->counters); i++)
        if (strcmp(zmesh_counters_kind(self->counters, i), "agent") == 0) {
            self->agent_group = i;
            break;
        }
}

/*  The agent's counters as one JSON object, or null. */
static void
s_print_counters_json(const s_stats_t *self, FILE *out)
{
    if (self->agent_group == SIZE_MAX) {
        fputs("null", out);
        return;
    }
    size_t group = self->agent_group;
    fputc('{', out);
    for (size_t j = 0; j < zmesh_counters_keys(self->counters, group); j++) {
        if (j > 0)
            fputc(',', out);
        tap_output_json_string(out,
                               zmesh_counters_key(self->counters, group, j));
        fprintf(out, ":%" PRIu64,
                zmesh_counters_value(self->counters, group, j));
    }
    fputc('}', out);
}

static void
s_count(tap_entry_t *entry, size_t size)
{
    entry->events++;
    entry->events_total++;
    entry->bytes += size;
    entry->bytes_total += size;
}

/*  Tallies one message event. Returns 0 or TAP_EXIT_FAILURE. */
static int
s_tally(s_stats_t *self, const zmesh_event_t *event)
{
    size_t size = 0;
    zmesh_event_payload(event, &size);
    self->events++;
    self->events_total++;
    self->bytes += size;
    self->bytes_total += size;
    bool created;
    tap_entry_t *topic =
        tap_table_get(self->topics, zmesh_event_topic(event), &created);
    tap_entry_t *publisher =
        tap_table_get(self->publishers, zmesh_event_peer_id(event), &created);
    if (publisher && created &&
        tap_table_set_label(publisher, zmesh_event_peer_name(event)) != 0) {
        tap_error("out of memory");
        return TAP_EXIT_FAILURE;
    }
    if (topic)
        s_count(topic, size);
    if (publisher)
        s_count(publisher, size);
    if (!topic || !publisher)
        self->untracked++;
    return 0;
}

/*  Busiest first in this interval, then over all time, then by name. */
static int
s_compare(const void *a, const void *b)
{
    const tap_entry_t *x = *(const tap_entry_t *const *)a;
    const tap_entry_t *y = *(const tap_entry_t *const *)b;
    if (x->events != y->events)
        return x->events > y->events ? -1 : 1;
    if (x->events_total != y->events_total)
        return x->events_total > y->events_total ? -1 : 1;
    return strcmp(x->key, y->key);
}

/*  The table's entries in ranking order, cut to --top; the caller frees
    the array. NULL (with *count 0) for an empty table or no memory. */
static tap_entry_t **
s_ranked(const s_stats_t *self, tap_table_t *table, size_t *count)
{
    size_t n = tap_table_size(table);
    *count = 0;
    if (n == 0)
        return NULL;
    tap_entry_t **ranked = malloc(n * sizeof *ranked);
    if (!ranked)
        return NULL;
    for (size_t i = 0; i < n; i++)
        ranked[i] = tap_table_entry(table, i);
    qsort(ranked, n, sizeof *ranked, s_compare);
    size_t top = (size_t)self->opts->top;
    *count = top > 0 && top < n ? top : n;
    return ranked;
}

static void
s_json_rates(FILE *out, const tap_entry_t *entry, double seconds)
{
    fprintf(out,
            ",\"events\":%" PRIu64 ",\"bytes\":%" PRIu64
            ",\"events_per_s\":%.3f,\"bytes_per_s\":%.3f"
            ",\"total_events\":%" PRIu64 ",\"total_bytes\":%" PRIu64 "}",
            entry->events, entry->bytes, (double)entry->events / seconds,
            (double)entry->bytes / seconds, entry->events_total,
            entry->bytes_total);
}

static void
s_print_json(s_stats_t *self, FILE *out, double seconds, int64_t now_ms)
{
    fprintf(out,
            "{\"type\":\"stats\",\"ts\":%" PRId64
            ",\"interval_s\":%.3f,\"uptime_s\":%.3f"
            ",\"events\":%" PRIu64 ",\"bytes\":%" PRIu64
            ",\"events_per_s\":%.3f,\"bytes_per_s\":%.3f"
            ",\"total_events\":%" PRIu64 ",\"total_bytes\":%" PRIu64
            ",\"topics_count\":%zu,\"publishers_count\":%zu"
            ",\"untracked_events\":%" PRIu64 ",\"agent\":",
            tap_now_us(), seconds, (double)(now_ms - self->started_ms) / 1000.0,
            self->events, self->bytes, (double)self->events / seconds,
            (double)self->bytes / seconds, self->events_total,
            self->bytes_total, tap_table_size(self->topics),
            tap_table_size(self->publishers), self->untracked);
    s_print_counters_json(self, out);
    fputs(",\"topics\":[", out);
    size_t n;
    tap_entry_t **ranked = s_ranked(self, self->topics, &n);
    for (size_t i = 0; i < n; i++) {
        fputs(i > 0 ? ",{\"topic\":" : "{\"topic\":", out);
        tap_output_json_string(out, ranked[i]->key);
        s_json_rates(out, ranked[i], seconds);
    }
    free(ranked);
    fputs("],\"publishers\":[", out);
    ranked = s_ranked(self, self->publishers, &n);
    for (size_t i = 0; i < n; i++) {
        fputs(i > 0 ? ",{\"publisher\":" : "{\"publisher\":", out);
        tap_output_json_string(out, ranked[i]->label ? ranked[i]->label : "");
        fputs(",\"publisher_id\":", out);
        tap_output_json_string(out, ranked[i]->key);
        s_json_rates(out, ranked[i], seconds);
    }
    free(ranked);
    fputs("]}", out);
}

static void
s_print_row(FILE *out, bool color, const char *name, const char *id,
            size_t width, const tap_entry_t *entry, double seconds)
{
    char rate[32];
    tap_output_byte_rate((double)entry->bytes / seconds, rate, sizeof rate);
    tap_output_field(out, color, entry->events ? "36" : "2", name, 0);
    size_t used = tap_output_columns(name);
    if (id) {
        fprintf(out, " %.8s", id);
        used += 9;
    }
    for (; used < width; used++)
        fputc(' ', out);
    fprintf(out, "  %10.1f  %12s  %10" PRIu64 "\n",
            (double)entry->events / seconds, rate, entry->events_total);
}

/*  The table of one kind, --top rows, with a line for those left out. */
static void
s_print_table(s_stats_t *self, FILE *out, const char *title, tap_table_t *table,
              bool with_id, double seconds)
{
    size_t n;
    tap_entry_t **ranked = s_ranked(self, table, &n);
    size_t width = 28;
    for (size_t i = 0; i < n; i++) {
        size_t columns =
            tap_output_columns(ranked[i]->label && with_id ? ranked[i]->label
                                                           : ranked[i]->key) +
            (with_id ? 9 : 0);
        if (columns > width && columns <= 64)
            width = columns;
    }
    tap_output_sgr(out, self->color, "1");
    fputs(title, out);
    for (size_t used = strlen(title); used < width; used++)
        fputc(' ', out);
    fprintf(out, "  %10s  %12s  %10s", "EVENTS/S", "BYTES/S", "TOTAL");
    tap_output_sgr(out, self->color, "0");
    fputc('\n', out);
    for (size_t i = 0; i < n; i++) {
        if (with_id)
            s_print_row(out, self->color,
                        ranked[i]->label ? ranked[i]->label : "",
                        ranked[i]->key, width, ranked[i], seconds);
        else
            s_print_row(out, self->color, ranked[i]->key, NULL, width,
                        ranked[i], seconds);
    }
    if (n == 0)
        fputs("(none yet)\n", out);
    else if (n < tap_table_size(table))
        fprintf(out, "(%zu more; --top 0 shows all)\n",
                tap_table_size(table) - n);
    free(ranked);
}

static void
s_print_screen(s_stats_t *self, FILE *out, double seconds, int64_t now_ms)
{
    // Clear the screen and go home, then draw the whole view again.
    fputs("\033[H\033[2J", out);
    char clock[16], rate[32], total[32];
    tap_output_clock(tap_now_us(), clock);
    tap_output_sgr(out, self->color, "1");
    fputs("mesh-tap stats", out);
    tap_output_sgr(out, self->color, "0");
    fputs("  mesh '", out);
    tap_output_text(out, tap_options_mesh(self->opts), 0);
    fprintf(out, "'  every %.1f s  %s  (Ctrl-C to stop)\n\n",
            self->opts->interval_ms / 1000.0, clock);
    tap_output_byte_rate((double)self->bytes / seconds, rate, sizeof rate);
    tap_output_byte_rate((double)self->bytes_total, total, sizeof total);
    // A byte rate formatter gives "B/s" units; for a total drop the "/s".
    char *per_second = strstr(total, "/s");
    if (per_second)
        *per_second = '\0';
    fprintf(out,
            "now    %.1f events/s, %s\n"
            "total  %" PRIu64 " events, %s in %.0f s; %zu topics, %zu "
            "publishers\n",
            (double)self->events / seconds, rate, self->events_total, total,
            (double)(now_ms - self->started_ms) / 1000.0,
            tap_table_size(self->topics), tap_table_size(self->publishers));
    if (self->untracked)
        fprintf(out,
                "       %" PRIu64 " events beyond %d topics or publishers "
                "counted in the totals only\n",
                self->untracked, S_KEYS_MAX);
    if (self->agent_group != SIZE_MAX) {
        // What the tap's own delivery went through: losses repaired or not.
        const zmesh_counters_t *c = self->counters;
        size_t i = self->agent_group;
        fprintf(out,
                "tap    %" PRIu64 " repaired, %" PRIu64 " gaps (%" PRIu64
                " missing), %" PRIu64 " repair timeouts, %" PRIu64
                " dropped as too slow\n",
                zmesh_counters_get(c, i, "events_repaired"),
                zmesh_counters_get(c, i, "gaps"),
                zmesh_counters_get(c, i, "events_missing"),
                zmesh_counters_get(c, i, "repair_timeouts"),
                zmesh_counters_get(c, i, "backlog_dropped"));
    }
    fputc('\n', out);
    s_print_table(self, out, "TOPIC", self->topics, false, seconds);
    fputc('\n', out);
    s_print_table(self, out, "PUBLISHER", self->publishers, true, seconds);
}

static void
s_reset_interval(tap_table_t *table)
{
    for (size_t i = 0; i < tap_table_size(table); i++) {
        tap_entry_t *entry = tap_table_entry(table, i);
        entry->events = 0;
        entry->bytes = 0;
    }
}

/*  Prints the interval that ends now and starts the next. Returns -1 to
    go on, or the exit code to stop with. */
static int
s_tick(s_stats_t *self)
{
    int64_t now = tap_monotonic_ms();
    double seconds = (double)(now - self->tick_ms) / 1000.0;
    if (seconds <= 0)
        seconds = 0.001;
    s_read_counters(self);
    int rc;
    if (self->tty) {
        s_print_screen(self, stdout, seconds, now);
        rc = fflush(stdout) == 0 ? -1 : tap_output_line_done(stdout);
    } else {
        s_print_json(self, stdout, seconds, now);
        rc = tap_output_line_done(stdout);
    }
    self->events = 0;
    self->bytes = 0;
    s_reset_interval(self->topics);
    s_reset_interval(self->publishers);
    self->tick_ms = now;
    return rc;
}

static int
s_run_loop(s_stats_t *self, zmesh_agent_t *agent)
{
    const tap_options_t *opts = self->opts;
    int64_t deadline = tap_agent_deadline(opts);
    long intervals = 0;
    while (!tap_interrupted()) {
        int64_t next_tick = self->tick_ms + opts->interval_ms;
        int64_t until = next_tick < deadline ? next_tick : deadline;
        int wait = tap_wait_ms(until);
        if (wait <= 0) {
            if (tap_monotonic_ms() >= deadline)
                break;
            int rc = s_tick(self);
            if (rc >= 0)
                return rc;
            if (opts->count > 0 && ++intervals >= opts->count)
                return TAP_EXIT_OK;
            continue;
        }
        const zmesh_event_t *event = NULL;
        int rc = zmesh_agent_recv(agent, wait, &event);
        if (rc == ZMESH_EAGAIN)
            continue;
        if (rc != 0) {
            tap_error("receive failed: %s", zmesh_strerror(rc));
            return TAP_EXIT_FAILURE;
        }
        if (zmesh_event_type(event) != ZMESH_EVENT_MESSAGE ||
            !tap_options_publisher_wanted(opts, zmesh_event_peer_name(event),
                                          zmesh_event_peer_id(event)))
            continue;
        rc = s_tally(self, event);
        if (rc != 0)
            return rc;
    }
    return tap_agent_count_verdict(opts, intervals, "intervals");
}

int
tap_stats_run(const tap_options_t *opts)
{
    int exit_code = tap_options_check_patterns(opts, 0);
    if (exit_code != 0)
        return exit_code;
    s_stats_t self = {.opts = opts};
    // Redrawing needs a terminal; colour also needs NO_COLOR unset, so a
    // terminal with NO_COLOR still gets the redrawn view, in plain text.
    self.tty = !opts->json && isatty(fileno(stdout)) == 1;
    self.color = self.tty && tap_output_color_wanted(stdout);
    if (tap_table_new(&self.topics, S_KEYS_MAX) != 0 ||
        tap_table_new(&self.publishers, S_KEYS_MAX) != 0) {
        tap_table_destroy(&self.topics);
        tap_error("out of memory");
        return TAP_EXIT_FAILURE;
    }
    zmesh_agent_t *agent = NULL;
    exit_code = tap_agent_open(opts, 0, &agent);
    if (exit_code == 0) {
        tap_signal_install();
        self.started_ms = tap_monotonic_ms();
        self.tick_ms = self.started_ms;
        self.agent = agent;
        exit_code = s_run_loop(&self, agent);
    }
    zmesh_agent_destroy(&agent);
    zmesh_counters_destroy(&self.counters);
    tap_table_destroy(&self.topics);
    tap_table_destroy(&self.publishers);
    return exit_code;
}

void
tap_help_stats(void)
{
    fputs("Usage: mesh-tap stats [OPTIONS] [PATTERN...]\n"
          "\n"
          "Joins the mesh, subscribes to every PATTERN (default '>') and\n"
          "measures the traffic: every --interval it shows the events per\n"
          "second and payload bytes per second of the whole stream, of the\n"
          "--top busiest topics and of the --top busiest publishers, with\n"
          "totals since start. On a terminal the view is redrawn in place;\n"
          "otherwise (or with --json) each interval is one JSON object on a\n"
          "line:\n"
          "  {\"type\":\"stats\",\"ts\":US,\"interval_s\":S,\"uptime_s\":S,"
          "\"events\":N,\n"
          "   \"bytes\":N,\"events_per_s\":X,\"bytes_per_s\":X,"
          "\"total_events\":N,\n"
          "   \"total_bytes\":N,\"topics_count\":N,\"publishers_count\":N,\n"
          "   \"untracked_events\":N,\"agent\":{COUNTERS},\n"
          "   \"topics\":[{\"topic\":...,\"events\":N,\"bytes\":N,"
          "\"events_per_s\":X,\n"
          "              \"bytes_per_s\":X,\"total_events\":N,"
          "\"total_bytes\":N},...],\n"
          "   \"publishers\":[{\"publisher\":...,\"publisher_id\":...,"
          "<same counters>},...]}\n"
          "Lists are busiest first in the interval, then over all time.\n"
          "\"agent\" holds the tap's own counters since it started (every\n"
          "zmesh_stats_t field by name: events_received, gaps, "
          "events_missing,\n"
          "events_repaired, repair_requests, repair_timeouts, "
          "backlog_dropped,\n"
          "directs_received, ..., and a few more such as queue_depth), or\n"
          "null when they could not be read.\n"
          "\n"
          "Options:\n"
          "  --interval SEC       how often to report (default 1, at least "
          "0.1)\n"
          "  --top N              rows per list (default 10; 0: all)\n"
          "  --publisher NAME     count only these publishers (name, or id\n"
          "                       prefix of 8+ hex digits; repeatable)\n"
          "  --json               JSON lines even on a terminal\n"
          "  --count N            exit 0 after N intervals\n"
          "  --timeout SEC        stop after SEC seconds: exit 1 if --count\n"
          "                       was not reached, else 0\n\n",
          stdout);
    tap_options_help_common();
    fputs("\n"
          "Examples:\n"
          "  mesh-tap stats                            the live table\n"
          "  mesh-tap stats --top 5 'orders.>'         five busiest order "
          "topics\n"
          "  mesh-tap stats --json --count 10 | jq .events_per_s\n"
          "  mesh-tap stats --interval 5 --publisher billing\n",
          stdout);
}
