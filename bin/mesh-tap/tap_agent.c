/*  tap_agent.c - what every subcommand does with its agent, written once:
    create it from the shared options, subscribe it to the positional
    patterns and join the mesh, then receive until a deadline or a signal,
    and say how far a --count got. The subcommands differ in what they do
    with each event, not in how they get one, and one copy keeps their
    error messages and their Ctrl-C and --timeout handling alike. What a
    subcommand prints, and how it publishes, stays in its own file.
*/
#include "tap_agent.h"
#include "tap_output.h"

#include <stdio.h>

int
tap_agent_configure(const tap_options_t *opts, size_t first_pattern,
                    zmesh_agent_t **agent)
{
    zmesh_agent_t *self = NULL;
    int exit_code = tap_options_agent(opts, &self);
    if (exit_code == 0 && first_pattern != TAP_AGENT_NO_PATTERNS)
        exit_code = tap_options_subscribe(opts, self, first_pattern);
    if (exit_code != 0) {
        zmesh_agent_destroy(&self);
        return exit_code;
    }
    *agent = self;
    return 0;
}

int
tap_agent_open(const tap_options_t *opts, size_t first_pattern,
               zmesh_agent_t **agent)
{
    int exit_code = tap_agent_configure(opts, first_pattern, agent);
    if (exit_code == 0)
        exit_code = tap_options_start(opts, *agent);
    if (exit_code != 0)
        zmesh_agent_destroy(agent);
    return exit_code;
}

int64_t
tap_agent_deadline(const tap_options_t *opts)
{
    return opts->timeout_ms >= 0 ? tap_monotonic_ms() + opts->timeout_ms
                                 : INT64_MAX;
}

int
tap_agent_next(zmesh_agent_t *agent, int64_t deadline_ms,
               const zmesh_event_t **event)
{
    *event = NULL;
    // Waits are cut to TAP_POLL_MS so a signal is seen soon after it came.
    while (!tap_interrupted()) {
        int wait = tap_wait_ms(deadline_ms);
        if (wait <= 0)
            return 0;
        int rc = zmesh_agent_recv(agent, wait, event);
        if (rc == 0)
            return 0;
        *event = NULL;
        if (rc != ZMESH_EAGAIN) {
            tap_error("receive failed: %s", zmesh_strerror(rc));
            return TAP_EXIT_FAILURE;
        }
    }
    return 0;
}

int
tap_agent_idle_until(zmesh_agent_t *agent, int64_t due_ms)
{
    // Receiving is what lets the agent act on joins and leaves while the
    // tap has nothing to send; an error here is for the publish to report.
    while (!tap_interrupted()) {
        int wait = tap_wait_ms(due_ms);
        if (wait <= 0)
            return 0;
        const zmesh_event_t *event = NULL;
        zmesh_agent_recv(agent, wait, &event);
    }
    return -1;
}

int
tap_agent_count_verdict(const tap_options_t *opts, long done, const char *what)
{
    if (opts->count == 0)
        return TAP_EXIT_OK; // stopping is how a live view ends
    if (tap_interrupted())
        tap_error("interrupted after %ld of %ld %s", done, opts->count, what);
    else
        tap_error("timed out after %.1f s with %ld of %ld %s",
                  opts->timeout_ms / 1000.0, done, opts->count, what);
    return TAP_EXIT_FAILURE;
}

int
tap_agent_wait_subscribers(const tap_options_t *opts, zmesh_agent_t *agent,
                           const char *topic, int timeout_ms,
                           const char *consequence, int *subscribers)
{
    int rc =
        zmesh_agent_wait_subscribers(agent, topic, opts->min_peers, timeout_ms);
    if (rc == ZMESH_ETIMEDOUT && opts->min_peers > 0) {
        tap_error("fewer than %d subscriber%s of '%s' in mesh '%s' within "
                  "%.1f s; %s",
                  opts->min_peers, opts->min_peers == 1 ? "" : "s", topic,
                  tap_options_mesh(opts), opts->timeout_ms / 1000.0,
                  consequence);
        return TAP_EXIT_FAILURE;
    }
    if (rc < 0 && rc != ZMESH_ETIMEDOUT) {
        tap_error("waiting for subscribers of '%s' failed: %s", topic,
                  zmesh_strerror(rc));
        return TAP_EXIT_FAILURE;
    }
    // A timeout with no minimum only means discovery had less time than it
    // likes: publish to whoever is connected by now.
    *subscribers = rc;
    return 0;
}
