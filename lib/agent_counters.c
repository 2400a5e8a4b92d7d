/*  agent_counters.c - what an agent can tell of itself: zmesh_agent_stats
    (the totals, this thread's counters with the control thread's), and
    zmesh_agent_counters, the same as groups of named counters with one
    group per peer and per topic, which is also what a peer asking for
    our counters gets (STATSQ, answered from the notify pipe). The
    per-peer and per-topic groups are capped at the busiest, so a mesh
    with many streams cannot make an answer grow without bound. */
#include "agent_private.h"
#include "clock.h"
#include "control.h"
#include "counters.h"
#include "zmesh.h"

#include <czmq.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int
zmesh_agent_stats(zmesh_agent_t *self, zmesh_stats_t *stats)
{
    if (!self || !stats)
        return ZMESH_EINVAL;
    if (!self->started)
        return ZMESH_ESTATE;
    zframe_t *frame = NULL;
    int rc = zmesh__agent_query(self, "STATS", NULL, &frame);
    if (rc != 0)
        return rc;
    zmesh__control_stats_t control;
    if (!frame || zframe_size(frame) != sizeof control) {
        zframe_destroy(&frame);
        return ZMESH_ESYS;
    }
    memcpy(&control, zframe_data(frame), sizeof control);
    zframe_destroy(&frame);
    memset(stats, 0, sizeof *stats);
    stats->events_published = self->events_published;
    stats->events_received = self->events_received;
    stats->frames_rejected = self->frames_rejected;
    stats->data_reconnects = self->data_reconnects;
    stats->backlog_dropped = self->frames_dropped + self->peer_events_dropped +
                             control.backlog_dropped;
    stats->gaps = self->gaps;
    stats->events_missing = self->events_missing;
    stats->duplicates_dropped = self->duplicates_dropped;
    zmesh__repair_stats_t repair;
    zmesh__repair_stats(self->repair, &repair);
    stats->repair_requests = repair.naks;
    stats->events_repaired = repair.repaired;
    stats->repair_timeouts = repair.timeouts;
    stats->repairs_rejected = self->repairs_rejected;
    zmesh__retain_stats_t retained;
    zmesh__retain_stats(self->retained, &retained);
    stats->retransmit_bytes = retained.bytes;
    stats->events_resent = control.frames_resent;
    stats->directs_sent = self->directs_sent;
    stats->directs_received = self->directs_received;
    stats->replies_received = self->replies_received;
    stats->requests_timed_out = self->requests_timed_out;
    stats->replies_dropped = self->replies_dropped;
    stats->group_received = self->group_received;
    stats->group_delivered = control.group_delivered;
    stats->group_redelivered = control.group_redelivered;
    stats->group_dropped = control.group_dropped;
    stats->backpressure_waits = self->bp_waits;
    stats->backpressure_timeouts = self->bp_timeouts;
    stats->requests_refused = self->requests_refused;
    stats->confirms_ok = self->confirms_ok;
    stats->confirms_failed = self->confirms_failed;
    stats->confirms_resent = self->confirms_resent;
    zmesh__durable_stats_t durable;
    zmesh__durable_stats(self->durable, &durable);
    stats->durable_delivered = durable.delivered;
    stats->durable_redelivered = durable.redelivered;
    stats->durable_duplicates = durable.duplicates;
    stats->durable_terminated = durable.terminated;
    stats->durable_refused = durable.refused;
    zmesh__outbox_stats(self->outbox, &stats->batches_sent,
                        &stats->events_batched, &stats->events_unsent);
    stats->tails_sent = self->tails_sent;
    stats->tail_gaps = self->tail_gaps;
    stats->control_rejected = control.control_rejected;
    stats->beacons_received = control.beacons_received;
    stats->beacons_rejected = control.beacons_rejected;
    stats->beacons_foreign = control.beacons_foreign;
    stats->peers_joined = control.peers_joined;
    stats->peers_left = control.peers_left;
    return 0;
}

/*  Counters in detail (zmesh_agent_counters, and STATS answers). */

#define S_COUNTER_PEERS 128
#define S_COUNTER_TOPICS 256

typedef struct {
    uint64_t received, repaired, gaps, missing, duplicates, topics, sent;
    int64_t lag_us;
} s_sum_t;

typedef struct {
    zhashx_t *peers;  /* publisher hex -> s_sum_t * */
    zhashx_t *topics; /* topic -> s_sum_t * */
} s_sums_t;

static s_sum_t *
s_sum_of(zhashx_t *table, const char *key)
{
    s_sum_t *sum = zhashx_lookup(table, key);
    if (!sum && (sum = calloc(1, sizeof *sum)) != NULL &&
        zhashx_insert(table, key, sum) != 0) {
        free(sum);
        sum = NULL;
    }
    return sum;
}

static void
s_sum_stream(void *arg, const char *publisher_hex, const char *topic,
             const zmesh__stream_stats_t *stream)
{
    s_sums_t *sums = arg;
    s_sum_t *targets[2] = {s_sum_of(sums->peers, publisher_hex),
                           s_sum_of(sums->topics, topic)};
    for (int i = 0; i < 2; i++) {
        s_sum_t *sum = targets[i];
        if (!sum)
            continue;
        sum->received += stream->received;
        sum->repaired += stream->repaired;
        sum->gaps += stream->gaps;
        sum->missing += stream->missing;
        sum->duplicates += stream->duplicates;
        sum->topics++;
        if (stream->lag_us > sum->lag_us)
            sum->lag_us = stream->lag_us;
    }
}

// Adds the busiest `max` of `table` as groups of `kind`; returns how
// many were left out.
static uint64_t
s_sum_groups(zmesh_counters_t *counters, zhashx_t *table, const char *kind,
             size_t max)
{
    size_t count = zhashx_size(table);
    uint64_t floor = 0; // with more than max, only those above a floor
    if (count > max) {
        uint64_t *load = calloc(count, sizeof *load);
        size_t n = 0;
        for (s_sum_t *sum = zhashx_first(table); sum && load;
             sum = zhashx_next(table))
            load[n++] = sum->received + sum->sent;
        for (size_t k = 0; load && k < max; k++) { // the max-th largest
            size_t best = k;
            for (size_t i = k + 1; i < n; i++)
                if (load[i] > load[best])
                    best = i;
            uint64_t t = load[k];
            load[k] = load[best];
            load[best] = t;
        }
        floor = load ? load[max - 1] : UINT64_MAX;
        free(load);
    }
    uint64_t omitted = 0;
    size_t added = 0;
    for (s_sum_t *sum = zhashx_first(table); sum; sum = zhashx_next(table)) {
        if (added == max || sum->received + sum->sent < floor) {
            omitted++;
            continue;
        }
        zmesh__counters_t *g =
            zmesh__counters_group(counters, kind, zhashx_cursor(table));
        if (!g) {
            omitted++;
            continue;
        }
        added++;
        if (strcmp(kind, "topic") == 0)
            zmesh__counters_add(g, "sent", sum->sent);
        zmesh__counters_add(g, "received", sum->received);
        zmesh__counters_add(g, "repaired", sum->repaired);
        zmesh__counters_add(g, "gaps", sum->gaps);
        zmesh__counters_add(g, "missing", sum->missing);
        zmesh__counters_add(g, "duplicates", sum->duplicates);
        zmesh__counters_add(g, "lag_us",
                            sum->lag_us > 0 ? (uint64_t)sum->lag_us : 0);
        if (strcmp(kind, "peer") == 0)
            zmesh__counters_add(g, "topics", sum->topics);
    }
    return omitted;
}

int
zmesh__agent_counters_build(zmesh_agent_t *self, zmesh_counters_t **out)
{
    zmesh_stats_t st;
    int rc = zmesh_agent_stats(self, &st);
    if (rc != 0)
        return rc;
    zmesh_counters_t *counters = zmesh__counters_new();
    zmesh__counters_t *agent =
        counters ? zmesh__counters_group(counters, "agent", self->name) : NULL;
    s_sums_t sums = {zhashx_new(), zhashx_new()};
    if (!agent || !sums.peers || !sums.topics) {
        zmesh_counters_destroy(&counters);
        zhashx_destroy(&sums.peers);
        zhashx_destroy(&sums.topics);
        return ZMESH_ENOMEM;
    }
    zhashx_set_destructor(sums.peers, zmesh__agent_free_value);
    zhashx_set_destructor(sums.topics, zmesh__agent_free_value);
    const struct {
        const char *key;
        uint64_t value;
    } fields[] = {
        {"events_published", st.events_published},
        {"events_received", st.events_received},
        {"frames_rejected", st.frames_rejected},
        {"data_reconnects", st.data_reconnects},
        {"backlog_dropped", st.backlog_dropped},
        {"gaps", st.gaps},
        {"events_missing", st.events_missing},
        {"duplicates_dropped", st.duplicates_dropped},
        {"control_rejected", st.control_rejected},
        {"beacons_received", st.beacons_received},
        {"beacons_rejected", st.beacons_rejected},
        {"beacons_foreign", st.beacons_foreign},
        {"peers_joined", st.peers_joined},
        {"peers_left", st.peers_left},
        {"repair_requests", st.repair_requests},
        {"events_repaired", st.events_repaired},
        {"repair_timeouts", st.repair_timeouts},
        {"repairs_rejected", st.repairs_rejected},
        {"events_resent", st.events_resent},
        {"retransmit_bytes", st.retransmit_bytes},
        {"directs_sent", st.directs_sent},
        {"directs_received", st.directs_received},
        {"replies_received", st.replies_received},
        {"requests_timed_out", st.requests_timed_out},
        {"replies_dropped", st.replies_dropped},
        {"group_received", st.group_received},
        {"group_delivered", st.group_delivered},
        {"group_redelivered", st.group_redelivered},
        {"group_dropped", st.group_dropped},
        {"backpressure_waits", st.backpressure_waits},
        {"backpressure_timeouts", st.backpressure_timeouts},
        {"requests_refused", st.requests_refused},
        {"confirms_ok", st.confirms_ok},
        {"confirms_failed", st.confirms_failed},
        {"confirms_resent", st.confirms_resent},
        {"durable_delivered", st.durable_delivered},
        {"durable_redelivered", st.durable_redelivered},
        {"durable_duplicates", st.durable_duplicates},
        {"durable_terminated", st.durable_terminated},
        {"durable_refused", st.durable_refused},
        {"batches_sent", st.batches_sent},
        {"events_batched", st.events_batched},
        {"events_unsent", st.events_unsent},
        {"tails_sent", st.tails_sent},
        {"tail_gaps", st.tail_gaps},
        {"confirms_waiting",
         self->confirms ? zmesh__confirms_size(self->confirms) : 0},
        {"queue_depth", zlistx_size(self->peer_events)},
        {"held_bytes", self->held.bytes + self->settled.bytes},
        {"streams", zmesh__streams_size(self->streams_in)},
        {"repairs_open", zmesh__repair_sessions(self->repair)},
        {"requests_open", zmesh__requests_size(self->requests)},
    };
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        zmesh__counters_add(agent, fields[i].key, fields[i].value);
    zmesh__streams_each(self->streams_in, s_sum_stream, &sums);
    for (zmesh__pubstream_t *stream = zhashx_first(self->streams); stream;
         stream = zhashx_next(self->streams)) {
        s_sum_t *sum = s_sum_of(sums.topics, zhashx_cursor(self->streams));
        if (sum)
            sum->sent = stream->sequence;
    }
    uint64_t peers_omitted =
        s_sum_groups(counters, sums.peers, "peer", S_COUNTER_PEERS);
    uint64_t topics_omitted =
        s_sum_groups(counters, sums.topics, "topic", S_COUNTER_TOPICS);
    // Adding groups may have moved the agent's group: look it up again.
    agent = zmesh__counters_find(counters, "agent", self->name);
    zmesh__counters_add(agent, "peers_omitted", peers_omitted);
    zmesh__counters_add(agent, "topics_omitted", topics_omitted);
    zhashx_destroy(&sums.peers);
    zhashx_destroy(&sums.topics);
    *out = counters;
    return 0;
}

int
zmesh_agent_query_counters(zmesh_agent_t *self, const char *peer,
                           int timeout_ms, zmesh_counters_t **counters)
{
    if (!self || !peer || !*peer || !counters || timeout_ms < 0)
        return ZMESH_EINVAL;
    if (!self->started)
        return ZMESH_ESTATE;
    zmsg_t *args = zmsg_new();
    if (!args || zmsg_addstr(args, peer) != 0) {
        zmsg_destroy(&args);
        return ZMESH_ENOMEM;
    }
    zframe_t *frame = NULL;
    int rc = zmesh__agent_query_msg(self, "STATSQ", &args, &frame);
    if (rc != 0)
        return rc;
    zmesh__stats_query_t result;
    bool ok = zframe_size(frame) == sizeof result;
    if (ok)
        memcpy(&result, zframe_data(frame), sizeof result);
    zframe_destroy(&frame);
    if (!ok)
        return ZMESH_ESYS;
    if (result.rc != 0)
        return result.rc == ZMESH_EAGAIN ? ZMESH_EFULL : result.rc;
    // The answer comes on the notify pipe, among what else comes there,
    // which is handled as always.
    self->stats_wait = result.req;
    int64_t deadline = zmesh__clock_ms() + timeout_ms;
    while (!self->stats_answer) {
        int64_t left = deadline - zmesh__clock_ms();
        if (left <= 0)
            break;
        zmq_pollitem_t item = {zsock_resolve(self->notify), 0, ZMQ_POLLIN, 0};
        if (zmq_poll(&item, 1, (long)left) > 0)
            zmesh__agent_drain_notify(self);
    }
    self->stats_wait = 0;
    *counters = self->stats_answer;
    self->stats_answer = NULL;
    zmesh__agent_wake_update(self);
    return *counters ? 0 : ZMESH_ETIMEDOUT;
}

int
zmesh_agent_counters(zmesh_agent_t *self, zmesh_counters_t **counters)
{
    if (!self || !counters)
        return ZMESH_EINVAL;
    if (!self->started)
        return ZMESH_ESTATE;
    return zmesh__agent_counters_build(self, counters);
}
