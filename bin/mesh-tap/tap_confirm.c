/*  tap_confirm.c - pub --confirm's side of publisher confirms. Each
    zmesh_agent_publish_confirmed is owed exactly one ZMESH_EVENT_CONFIRM
    (status 0 when a relay stored the event, else why not), at the latest
    after the confirm timeout, so counting them is enough to know when
    every event has its answer; the tally never needs to know which event
    a confirm is for. Confirms are taken as they come, also while pub
    paces or waits for room, since the agent holds only so many events for
    an application that does not receive. Failures are grouped by status
    and reason, so a thousand timeouts make one line, not a thousand.
*/
#include "tap_confirm.h"

#include "tap_agent.h"
#include "tap_output.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/*  What the tap waits past the confirm timeout for the last confirm
    before it gives up on the library: the library answers within the
    timeout, so this is only a bound on a wait that should not happen. */
#define S_GRACE_MS 3000

/*  Events taken per non-blocking drain, so a flood cannot hold pub up. */
#define S_DRAIN_MAX 10000

int
tap_confirm_init(tap_confirm_t *self, const tap_options_t *opts,
                 zmesh_agent_t *agent)
{
    memset(self, 0, sizeof *self);
    self->opts = opts;
    int rc = zmesh_agent_set_confirm_timeout(agent, opts->confirm_timeout_ms);
    if (rc != 0) {
        tap_error("cannot set the confirm timeout: %s", zmesh_strerror(rc));
        return TAP_EXIT_FAILURE;
    }
    return 0;
}

/*  The kind of failure an event belongs to, created when new. NULL past
    TAP_CONFIRM_KINDS. */
static tap_confirm_kind_t *
s_kind(tap_confirm_t *self, int status, const char *reason)
{
    for (size_t i = 0; i < self->kinds_count; i++)
        if (self->kinds[i].status == status &&
            strcmp(self->kinds[i].reason, reason) == 0)
            return &self->kinds[i];
    if (self->kinds_count == TAP_CONFIRM_KINDS)
        return NULL;
    tap_confirm_kind_t *kind = &self->kinds[self->kinds_count++];
    memset(kind, 0, sizeof *kind);
    kind->status = status;
    snprintf(kind->reason, sizeof kind->reason, "%s", reason);
    return kind;
}

/*  Counts `event` when it is a confirm. */
static void
s_take(tap_confirm_t *self, const zmesh_event_t *event)
{
    if (!event || zmesh_event_type(event) != ZMESH_EVENT_CONFIRM)
        return;
    int status = zmesh_event_status(event);
    if (status == 0) {
        self->confirmed++;
        return;
    }
    self->failed++;
    const char *reason = zmesh_event_reason(event);
    if (self->opts->verbose) {
        fputs("mesh-tap: ", stderr);
        tap_output_text(stderr, zmesh_event_topic(event), 0);
        fprintf(stderr, " seq %" PRIu64 " not confirmed: %s%s",
                zmesh_event_sequence(event), zmesh_strerror(status),
                reason[0] ? ": " : "");
        tap_output_text(stderr, reason, 0);
        fputc('\n', stderr);
    }
    tap_confirm_kind_t *kind = s_kind(self, status, reason);
    if (!kind) {
        self->other_failures++;
        return;
    }
    if (kind->count++ == 0) {
        snprintf(kind->topic, sizeof kind->topic, "%s",
                 zmesh_event_topic(event));
        kind->sequence = zmesh_event_sequence(event);
    }
}

/*  Takes what the agent has ready, without waiting. */
static void
s_drain(tap_confirm_t *self, zmesh_agent_t *agent)
{
    for (int i = 0; i < S_DRAIN_MAX; i++) {
        const zmesh_event_t *event = NULL;
        if (zmesh_agent_recv(agent, 0, &event) != 0)
            return;
        s_take(self, event);
    }
}

int
tap_confirm_idle_until(tap_confirm_t *self, zmesh_agent_t *agent,
                       int64_t due_ms)
{
    while (!tap_interrupted()) {
        int wait = tap_wait_ms(due_ms);
        if (wait <= 0)
            return 0;
        const zmesh_event_t *event = NULL;
        if (zmesh_agent_recv(agent, wait, &event) == 0)
            s_take(self, event);
    }
    return -1;
}

int
tap_confirm_publish(tap_confirm_t *self, zmesh_agent_t *agent,
                    const char *topic, const void *payload, size_t size)
{
    // Room comes back as confirms arrive or time out, so a wait of the
    // confirm timeout (and a little) always ends with room.
    int64_t deadline =
        tap_monotonic_ms() + self->opts->confirm_timeout_ms + S_GRACE_MS;
    for (;;) {
        int rc =
            zmesh_agent_publish_confirmed(agent, topic, payload, size, NULL);
        if (rc == 0) {
            self->published++;
            self->last_publish_ms = tap_monotonic_ms();
            s_drain(self, agent);
            return 0;
        }
        if (rc != ZMESH_EFULL || tap_monotonic_ms() >= deadline) {
            tap_error("cannot publish on '%s': %s", topic, zmesh_strerror(rc));
            return TAP_EXIT_FAILURE;
        }
        int64_t due = tap_monotonic_ms() + TAP_POLL_MS;
        if (tap_confirm_idle_until(self, agent, due) != 0) {
            tap_error("interrupted while waiting for room to publish on '%s'",
                      topic);
            return TAP_EXIT_FAILURE;
        }
    }
}

static void
s_report(const tap_confirm_t *self, long wanted)
{
    long waiting = self->published - self->confirmed - self->failed;
    printf("confirmed %ld of %ld event%s\n", self->confirmed, wanted,
           wanted == 1 ? "" : "s");
    fflush(stdout);
    for (size_t i = 0; i < self->kinds_count; i++) {
        const tap_confirm_kind_t *kind = &self->kinds[i];
        fprintf(stderr, "mesh-tap: %ld event%s not confirmed: %s", kind->count,
                kind->count == 1 ? "" : "s", zmesh_strerror(kind->status));
        if (kind->reason[0]) {
            fputs(": ", stderr);
            tap_output_text(stderr, kind->reason, 0);
        }
        fputs(" (first: ", stderr);
        tap_output_text(stderr, kind->topic, 0);
        fprintf(stderr, " seq %" PRIu64 ")\n", kind->sequence);
    }
    if (self->other_failures > 0)
        fprintf(stderr,
                "mesh-tap: %ld more event%s not confirmed, for other "
                "reasons (-v lists each)\n",
                self->other_failures, self->other_failures == 1 ? "" : "s");
    if (waiting > 0)
        fprintf(stderr, "mesh-tap: %ld event%s still waiting for a confirm%s\n",
                waiting, waiting == 1 ? "" : "s",
                tap_interrupted() ? " when interrupted" : "");
    if (self->published < wanted)
        fprintf(stderr, "mesh-tap: %ld event%s not published\n",
                wanted - self->published,
                wanted - self->published == 1 ? "" : "s");
    bool timed_out = false;
    for (size_t i = 0; i < self->kinds_count; i++)
        timed_out = timed_out || self->kinds[i].status == ZMESH_ETIMEDOUT;
    if (timed_out)
        fputs("mesh-tap: is mesh-relay running, in this mesh, with a stream "
              "whose patterns cover the topic? ('mesh-tap streams' lists "
              "them)\n",
              stderr);
}

int
tap_confirm_finish(tap_confirm_t *self, zmesh_agent_t *agent, long wanted)
{
    int64_t deadline =
        self->last_publish_ms + self->opts->confirm_timeout_ms + S_GRACE_MS;
    while (self->confirmed + self->failed < self->published &&
           !tap_interrupted() && tap_monotonic_ms() < deadline) {
        int64_t due = tap_monotonic_ms() + TAP_POLL_MS;
        tap_confirm_idle_until(self, agent, due < deadline ? due : deadline);
    }
    s_report(self, wanted);
    bool all = self->published == wanted && self->confirmed == wanted;
    return all ? TAP_EXIT_OK : TAP_EXIT_FAILURE;
}
