/*  tap_confirm.h - "mesh-tap pub --confirm": publishing with publisher
    confirms (proto/relay.md#publisher-confirms) and keeping the tally of
    the ZMESH_EVENT_CONFIRM each publish gets, so pub can wait for them
    all and say how many a relay stored. Uses only the public zmesh.h. */
#ifndef TAP_CONFIRM_H_INCLUDED
#define TAP_CONFIRM_H_INCLUDED

#include "tap_options.h"

#include "zmesh.h"

#include <stdint.h>

/*  Distinct failures (status and reason) the summary names one by one. */
#define TAP_CONFIRM_KINDS 8

typedef struct {
    int status; // ZMESH_ETIMEDOUT, ZMESH_EFULL, ...
    char reason[200];
    long count;
    char topic[ZMESH_TOPIC_MAX + 1]; // the first event that failed so
    uint64_t sequence;
} tap_confirm_kind_t;

typedef struct {
    const tap_options_t *opts;
    long published; // publishes that went out, each owed one CONFIRM
    long confirmed; // status 0: stored by a relay
    long failed;    // any other status
    tap_confirm_kind_t kinds[TAP_CONFIRM_KINDS];
    size_t kinds_count;
    long other_failures;     // failures of kinds past TAP_CONFIRM_KINDS
    int64_t last_publish_ms; // tap_monotonic_ms() of the last publish
} tap_confirm_t;

/*  Starts an empty tally and gives the agent --confirm-timeout. Returns
    0, or TAP_EXIT_FAILURE after saying why. */
int tap_confirm_init(tap_confirm_t *self, const tap_options_t *opts,
                     zmesh_agent_t *agent);

/*  Publishes one event with zmesh_agent_publish_confirmed. When too many
    wait for their confirm already (ZMESH_EFULL), receives confirms until
    there is room, at most for the confirm timeout. Takes the confirms that
    have come in meanwhile. Returns 0, or TAP_EXIT_FAILURE after saying
    why (the event was not published). */
int tap_confirm_publish(tap_confirm_t *self, zmesh_agent_t *agent,
                        const char *topic, const void *payload, size_t size);

/*  Receives until `due_ms` (tap_monotonic_ms()), counting the confirms
    among the events. Returns 0, or -1 when a signal came. */
int tap_confirm_idle_until(tap_confirm_t *self, zmesh_agent_t *agent,
                           int64_t due_ms);

/*  Waits until every event published has its confirm (the library gives
    each one within the confirm timeout), or a signal. Prints the summary:
    "confirmed N of M events" on stdout, each kind of failure on stderr.
    Returns TAP_EXIT_OK when every one of `wanted` events was published
    and confirmed, else TAP_EXIT_FAILURE. */
int tap_confirm_finish(tap_confirm_t *self, zmesh_agent_t *agent, long wanted);

#endif
