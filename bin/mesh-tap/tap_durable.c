/*  tap_durable.c - the durable consumer's part of "mesh-tap --durable NAME
    PATTERN". The library does the consuming (zmesh_agent_subscribe_
    durable: the relay's backlog first, then live events, no duplicate at
    the switch); the tap prints each event with the live view's code and
    then acknowledges it here, so the consumer's position on the relay only
    moves over what was printed (and flushed: an event lost to a dead pipe
    is not acknowledged, and comes again next time). An event the tap stops
    before printing (--count reached, Ctrl-C) stays unacknowledged and is
    delivered again to the next run under the same name. The relay's
    refusals reach the application only as a counter, so the tap watches
    the counter and says what it means.
*/
#include "tap_durable.h"

#include "tap_output.h"

#include <inttypes.h>
#include <string.h>

int
tap_durable_subscribe(tap_durable_t *self, const tap_options_t *opts,
                      zmesh_agent_t *agent)
{
    memset(self, 0, sizeof *self);
    self->opts = opts;
    self->next_check_ms = tap_monotonic_ms() + TAP_DURABLE_CHECK_MS;
    zmesh_durable_options_t options;
    memset(&options, 0, sizeof options);
    options.stream = opts->stream;
    options.start = opts->start;
    options.start_sequence = opts->start_sequence;
    options.start_time_us = opts->start_time_us;
    options.ack_wait_ms = opts->ack_wait_ms;
    options.max_deliver = opts->max_deliver;
    options.max_ack_pending = opts->max_ack_pending;
    const char *pattern = opts->args[0];
    int rc =
        zmesh_agent_subscribe_durable(agent, opts->durable, pattern, &options);
    if (rc == 0) {
        if (opts->verbose)
            fprintf(stderr,
                    "mesh-tap: consuming '%s' as durable consumer '%s'%s%s\n",
                    pattern, opts->durable, opts->stream ? " of stream " : "",
                    opts->stream ? opts->stream : "");
        return 0;
    }
    if (rc == ZMESH_EINVAL || rc == ZMESH_EPATTERN || rc == ZMESH_ERESERVED)
        return tap_usage_error(opts->command, "cannot consume '%s' as '%s': %s",
                               pattern, opts->durable, zmesh_strerror(rc));
    tap_error("cannot consume '%s' as durable consumer '%s': %s", pattern,
              opts->durable, zmesh_strerror(rc));
    return TAP_EXIT_FAILURE;
}

void
tap_durable_ack(tap_durable_t *self, zmesh_agent_t *agent,
                const zmesh_event_t *event)
{
    if (zmesh_event_consumer(event)[0] == '\0')
        return;
    zmesh_event_type_t type = zmesh_event_type(event);
    if (type != ZMESH_EVENT_MESSAGE && type != ZMESH_EVENT_GAP)
        return;
    int rc = zmesh_agent_ack(agent, event);
    // A gap may need no acknowledgement of the application (the library
    // settles it): EINVAL then says only that.
    if (rc == 0 || rc == ZMESH_ENOTFOUND ||
        (type == ZMESH_EVENT_GAP && rc == ZMESH_EINVAL))
        return;
    // Once is enough: the next event would say the same.
    if (self->ack_errors++ == 0)
        tap_error("cannot acknowledge %s seq %" PRIu64 ": %s",
                  zmesh_event_topic(event), zmesh_event_sequence(event),
                  zmesh_strerror(rc));
}

void
tap_durable_check(tap_durable_t *self, zmesh_agent_t *agent)
{
    int64_t now = tap_monotonic_ms();
    if (now < self->next_check_ms)
        return;
    self->next_check_ms = now + TAP_DURABLE_CHECK_MS;
    zmesh_stats_t stats;
    if (zmesh_agent_stats(agent, &stats) != 0 ||
        stats.durable_refused <= self->refused)
        return;
    bool first = self->refused == 0;
    self->refused = stats.durable_refused;
    if (!first && !self->opts->verbose)
        return; // said once; -v repeats it
    tap_error("the relay refused durable consumer '%s' for '%s'%s%s: no "
              "stream covers the pattern, or the consumer exists with "
              "another pattern or stream ('mesh-tap consumers' lists them; "
              "-v shows the relay's words); asking again every 5 s",
              self->opts->durable, self->opts->args[0],
              self->opts->stream ? " in stream " : "",
              self->opts->stream ? self->opts->stream : "");
}

void
tap_durable_print_lost_json(FILE *out, const zmesh_event_t *event)
{
    uint64_t first = zmesh_event_sequence(event);
    uint64_t last = zmesh_event_gap_last(event);
    if (last < first)
        last = first;
    fputs("{\"type\":\"lost\",\"consumer\":", out);
    tap_output_json_string(out, zmesh_event_consumer(event));
    fprintf(out,
            ",\"first\":%" PRIu64 ",\"last\":%" PRIu64 ",\"count\":%" PRIu64
            ",\"ts\":%" PRId64 "}",
            first, last, last - first + 1, tap_now_us());
}

void
tap_durable_print_lost_text(FILE *out, bool color, const zmesh_event_t *event)
{
    uint64_t first = zmesh_event_sequence(event);
    uint64_t last = zmesh_event_gap_last(event);
    if (last < first)
        last = first;
    char clock[16];
    tap_output_clock(tap_now_us(), clock);
    tap_output_field(out, color, "2", clock, 0);
    fputs("  ", out);
    tap_output_sgr(out, color, "1;31");
    fprintf(out,
            "-- LOST: relay seq %" PRIu64 "..%" PRIu64 " (%" PRIu64
            " record%s) deleted by the relay's retention before consumer ",
            first, last, last - first + 1, last == first ? "" : "s");
    tap_output_text(out, zmesh_event_consumer(event), 0);
    fputs(" had them", out);
    tap_output_sgr(out, color, "0");
}
