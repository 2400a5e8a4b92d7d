/*  tap_durable.h - "mesh-tap --durable NAME PATTERN" (sub --durable): the
    tap as a durable consumer kept by a mesh-relay
    (proto/relay.md#durable-consumers). The live view's loop (tap_sub.c)
    prints the events; this is what differs: subscribing with the consumer
    options, acknowledging each event once it is printed, showing loss,
    and saying so when the relay refuses the consumer. Uses only the
    public zmesh.h. */
#ifndef TAP_DURABLE_H_INCLUDED
#define TAP_DURABLE_H_INCLUDED

#include "tap_options.h"

#include "zmesh.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef struct {
    const tap_options_t *opts;
    uint64_t refused;      // the agent's durable_refused when last looked
    int64_t next_check_ms; // when to look again (tap_monotonic_ms())
    long ack_errors;       // acknowledgements the library refused
} tap_durable_t;

/*  Subscribes the started agent as durable consumer opts->durable to the
    one positional pattern, with --stream, --start, --ack-wait,
    --max-deliver and --max-ack-pending. Returns 0, TAP_EXIT_USAGE when
    the library refuses the name, pattern or options, or TAP_EXIT_FAILURE,
    having said why. */
int tap_durable_subscribe(tap_durable_t *self, const tap_options_t *opts,
                          zmesh_agent_t *agent);

/*  Acknowledges a durable consumer's message or gap once it is printed.
    A message the library is not waiting for (acknowledged already, or
    dropped after --max-deliver) is not an error. */
void tap_durable_ack(tap_durable_t *self, zmesh_agent_t *agent,
                     const zmesh_event_t *event);

/*  At most once a second: looks at the agent's counters and says on
    stderr when the relay has refused the consumer since (no stream covers
    the pattern, or the name is taken with another pattern or stream). */
void tap_durable_check(tap_durable_t *self, zmesh_agent_t *agent);

/*  How often tap_durable_check wants to be called, in ms. */
#define TAP_DURABLE_CHECK_MS 1000

/*  A ZMESH_EVENT_LOST: records the relay deleted (retention) before the
    consumer had them. JSON: {"type":"lost","consumer","first","last",
    "count","ts"}; text: a red "-- LOST" line. No newline. */
void tap_durable_print_lost_json(FILE *out, const zmesh_event_t *event);
void tap_durable_print_lost_text(FILE *out, bool color,
                                 const zmesh_event_t *event);

#endif
