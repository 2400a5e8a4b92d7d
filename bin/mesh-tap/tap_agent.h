/*  tap_agent.h - the tap's agent as every subcommand uses it: created,
    configured and subscribed from the options in one call, and the pieces
    of the receive loops the long-running subcommands share (deadline,
    next event, idling until a time, the --count verdict). Uses only the
    public zmesh.h. */
#ifndef TAP_AGENT_H_INCLUDED
#define TAP_AGENT_H_INCLUDED

#include "tap_options.h"

#include "zmesh.h"

#include <stdint.h>

/*  `first_pattern` for a tap that subscribes to nothing (peers). */
#define TAP_AGENT_NO_PATTERNS ((size_t)-1)

/*  tap_options_agent, then tap_options_subscribe to the positional
    patterns from `first_pattern` on (none with TAP_AGENT_NO_PATTERNS).
    Not started, so a caller can act between configuring and joining. On
    success *agent is the caller's; on failure it is NULL. Returns 0 or
    the exit code, after saying why. */
int tap_agent_configure(const tap_options_t *opts, size_t first_pattern,
                        zmesh_agent_t **agent);

/*  tap_agent_configure, then tap_options_start: the agent has joined the
    mesh. On failure *agent is NULL. Returns 0 or the exit code. */
int tap_agent_open(const tap_options_t *opts, size_t first_pattern,
                   zmesh_agent_t **agent);

/*  When a loop bounded by --timeout ends (tap_monotonic_ms()), INT64_MAX
    without one. */
int64_t tap_agent_deadline(const tap_options_t *opts);

/*  The next event before `deadline_ms`. Returns 0 with *event set, or
    with *event NULL when the deadline passed or a signal came
    (tap_interrupted() tells which); TAP_EXIT_FAILURE after saying why
    when receiving fails. The event lives until the next receive. */
int tap_agent_next(zmesh_agent_t *agent, int64_t deadline_ms,
                   const zmesh_event_t **event);

/*  Waits until `due_ms`, handing the agent its peer events (and dropping
    any others). Returns 0, or -1 when a signal came. */
int tap_agent_idle_until(zmesh_agent_t *agent, int64_t due_ms);

/*  The exit code of a loop that stopped at its deadline or on a signal
    after `done` of --count `what`s: 0 without --count (that is how such a
    view ends), else TAP_EXIT_FAILURE after saying how far it got. */
int tap_agent_count_verdict(const tap_options_t *opts, long done,
                            const char *what);

/*  Waits up to `timeout_ms` for the --min-peers subscribers of `topic`.
    Returns 0 (with their number in *subscribers, negative when discovery
    had not settled in time and there was no minimum), or TAP_EXIT_FAILURE
    after saying why, ending the message with `consequence`. */
int tap_agent_wait_subscribers(const tap_options_t *opts, zmesh_agent_t *agent,
                               const char *topic, int timeout_ms,
                               const char *consequence, int *subscribers);

#endif
