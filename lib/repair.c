/*  repair.c - the sessions of a subscriber's repairs under way: per
    stream, the frames held in sequence order (live ones that came after
    the gap, repaired ones that fill it) and the requests not yet answered.
    Sessions are few (a gap is rare and repaired within a round trip), so
    they live in a small array searched linearly, with the last match
    cached; a stream with no session costs one comparison. This module
    decides nothing about delivery: it only holds and releases in order.
*/
#include "repair.h"
#include "clock.h"
#include "topic.h"
#include "zmesh.h"

#include <stdlib.h>
#include <string.h>

#define S_REQS_MAX 256 /* requests per session; more gaps are reported */

typedef struct s_frame {
    zmq_msg_t msg;
    uint64_t seq;
    bool repaired;
    bool tail; /* a tail frame's marker, see zmesh__repair_hold */
    struct s_frame *next;
} s_frame_t;

typedef struct {
    uint8_t publisher[ZMESH__ID_SIZE];
    char topic[ZMESH_TOPIC_MAX + 1];
    size_t topic_size;
    uint64_t asked_from;    /* the lowest seq asked for */
    uint64_t asked_through; /* every seq up to here is asked for or held */
    s_frame_t *frames;      /* ascending seq */
    s_frame_t *tail;
    s_frame_t *hint;           /* the last frame inserted, where the next
                                  repaired one most likely follows */
    uint64_t reqs[S_REQS_MAX]; /* not yet answered in full */
    size_t reqs_count;
    int64_t deadline;
    int64_t patience; /* ms: each answer moves the deadline this far on */
    size_t bytes;
    bool join;
    bool vouched;
    bool ended; /* abandoned or over the byte limit: release now */
    /* a history session: holds every stream of the publisher matching
       `topic` (a pattern then); its answers go to `answers`, in the order
       they came, and are released before `frames` (arrival order) */
    bool history;
    s_frame_t *answers;
    s_frame_t *answers_tail;
} s_session_t;

struct zmesh__repair {
    s_session_t **sessions;
    size_t count;
    size_t max_sessions;
    size_t max_bytes;
    size_t bytes;
    uint64_t next_req;
    zmesh__repair_stats_t stats;
};

int
zmesh__repair_new(zmesh__repair_t **repair, size_t max_sessions,
                  size_t max_bytes)
{
    if (!repair || max_sessions == 0)
        return ZMESH_EINVAL;
    zmesh__repair_t *self = calloc(1, sizeof *self);
    if (!self)
        return ZMESH_ENOMEM;
    self->sessions = calloc(max_sessions, sizeof *self->sessions);
    if (!self->sessions) {
        free(self);
        return ZMESH_ENOMEM;
    }
    self->max_sessions = max_sessions;
    self->max_bytes = max_bytes;
    *repair = self;
    return 0;
}

static void
s_frames_free(s_frame_t *f)
{
    for (s_frame_t *next; f; f = next) {
        next = f->next;
        zmq_msg_close(&f->msg);
        free(f);
    }
}

static void
s_session_free(zmesh__repair_t *self, s_session_t *session)
{
    s_frames_free(session->frames);
    s_frames_free(session->answers);
    self->bytes -= session->bytes;
    free(session);
}

void
zmesh__repair_destroy(zmesh__repair_t **repair)
{
    if (!repair || !*repair)
        return;
    zmesh__repair_t *self = *repair;
    for (size_t i = 0; i < self->count; i++)
        s_session_free(self, self->sessions[i]);
    free(self->sessions);
    free(self);
    *repair = NULL;
}

size_t
zmesh__repair_sessions(const zmesh__repair_t *self)
{
    return self->count;
}

// The session holding a stream: a history session of its publisher
// whose pattern matches the topic comes first, since history is
// delivered before everything live.
static s_session_t *
s_find(zmesh__repair_t *self, const uint8_t publisher[ZMESH__ID_SIZE],
       const char *topic, size_t topic_size)
{
    for (size_t i = 0; i < self->count; i++) {
        s_session_t *s = self->sessions[i];
        if (s->history &&
            memcmp(s->publisher, publisher, ZMESH__ID_SIZE) == 0 &&
            zmesh__pattern_match(s->topic, s->topic_size, topic, topic_size))
            return s;
    }
    for (size_t i = 0; i < self->count; i++) {
        s_session_t *s = self->sessions[i];
        if (!s->history && s->topic_size == topic_size &&
            memcmp(s->publisher, publisher, ZMESH__ID_SIZE) == 0 &&
            memcmp(s->topic, topic, topic_size) == 0)
            return s;
    }
    return NULL;
}

// Inserts in sequence order: 1, or 0 (nothing taken) for a sequence the
// session holds already, -1 when memory is short. An event takes the
// place of a tail frame's marker: the marker only says where the stream
// ended, and the event that follows that end is what must be kept.
static int
s_insert(zmesh__repair_t *self, s_session_t *session, zmq_msg_t *msg,
         uint64_t seq, bool repaired, bool tail)
{
    s_frame_t **at = &session->frames;
    if (session->tail && session->tail->seq < seq)
        at = &session->tail->next; // the usual case: a live frame, in order
    else {
        // Repairs come in ascending order too, each after the one before:
        // starting at the last insertion keeps a large repair linear.
        if (session->hint && session->hint->seq < seq)
            at = &session->hint->next;
        while (*at && (*at)->seq < seq)
            at = &(*at)->next;
    }
    if (*at && (*at)->seq == seq) {
        s_frame_t *held = *at;
        if (tail || !held->tail)
            return 0;
        size_t was = zmq_msg_size(&held->msg);
        session->bytes -= was;
        self->bytes -= was;
        zmq_msg_close(&held->msg);
        zmq_msg_init(&held->msg);
        zmq_msg_move(&held->msg, msg);
        held->repaired = repaired;
        held->tail = false;
        size_t size = zmq_msg_size(&held->msg);
        session->bytes += size;
        self->bytes += size;
        return 1;
    }
    s_frame_t *frame = malloc(sizeof *frame);
    if (!frame)
        return -1;
    zmq_msg_init(&frame->msg);
    zmq_msg_move(&frame->msg, msg);
    frame->seq = seq;
    frame->repaired = repaired;
    frame->tail = tail;
    frame->next = *at;
    *at = frame;
    if (!frame->next)
        session->tail = frame;
    session->hint = frame;
    size_t size = zmq_msg_size(&frame->msg);
    session->bytes += size;
    self->bytes += size;
    if (self->bytes > self->max_bytes)
        session->ended = true; // release what it has rather than hold more
    return 1;
}

static void
s_nak(zmesh__repair_t *self, s_session_t *session, uint64_t first,
      uint64_t last, zmesh__nak_t *nak)
{
    uint64_t req = ++self->next_req;
    session->reqs[session->reqs_count++] = req;
    memcpy(nak->topic, session->topic, session->topic_size);
    nak->topic[session->topic_size] = '\0';
    memcpy(nak->publisher, session->publisher, ZMESH__ID_SIZE);
    nak->req = req;
    nak->first = first;
    nak->last = last;
    nak->join = session->join && first == 1;
    self->stats.naks++;
}

zmesh__repair_verdict_t
zmesh__repair_hold(zmesh__repair_t *self, const zmesh__frame_t *frame,
                   zmq_msg_t *msg, zmesh__nak_t *nak)
{
    if (self->count == 0)
        return ZMESH__REPAIR_PASS;
    s_session_t *session =
        s_find(self, frame->publisher, frame->topic, frame->topic_size);
    if (!session)
        return ZMESH__REPAIR_PASS;
    uint64_t seq = frame->sequence;
    if (session->history) {
        // Arrival order is the publisher's order per stream: append.
        s_frame_t *held = malloc(sizeof *held);
        if (!held) {
            session->ended = true;
            return ZMESH__REPAIR_PASS;
        }
        zmq_msg_init(&held->msg);
        zmq_msg_move(&held->msg, msg);
        held->seq = seq;
        held->repaired = false;
        held->tail = false; // arrival order: nothing takes its place
        held->next = NULL;
        if (session->tail)
            session->tail->next = held;
        else
            session->frames = held;
        session->tail = held;
        size_t size = zmq_msg_size(&held->msg);
        session->bytes += size;
        self->bytes += size;
        if (self->bytes > self->max_bytes)
            session->ended = true;
        return ZMESH__REPAIR_HELD;
    }
    // A tail's marker stands just after the stream's last event: what is
    // missing up to it is asked for, but the marker's place is not.
    bool tail = frame->flags & ZMESH__FRAME_TAIL;
    bool ask = seq > session->asked_through + 1 &&
               session->reqs_count < S_REQS_MAX && !session->ended;
    uint64_t first = session->asked_through + 1;
    int inserted = s_insert(self, session, msg, seq, false, tail);
    if (inserted == 0)
        return ZMESH__REPAIR_DUPLICATE;
    if (inserted < 0) {
        // Cannot hold it: end the session. Judged now, this frame reports
        // the gap; what the session holds then comes too late and is
        // dropped as old, so the order is kept.
        session->ended = true;
        return ZMESH__REPAIR_PASS;
    }
    if (seq - tail > session->asked_through)
        session->asked_through = seq - tail;
    if (!ask)
        return ZMESH__REPAIR_HELD;
    s_nak(self, session, first, seq - 1, nak);
    return ZMESH__REPAIR_NAK;
}

bool
zmesh__repair_open(zmesh__repair_t *self, const zmesh__frame_t *frame,
                   zmq_msg_t *msg, uint64_t first, uint64_t last, bool join,
                   int64_t deadline, zmesh__nak_t *nak)
{
    if (self->count >= self->max_sessions ||
        self->bytes + zmq_msg_size(msg) > self->max_bytes ||
        frame->topic_size > ZMESH_TOPIC_MAX || first > last) {
        self->stats.refused++;
        return false;
    }
    s_session_t *session = calloc(1, sizeof *session);
    if (!session) {
        self->stats.refused++;
        return false;
    }
    memcpy(session->publisher, frame->publisher, ZMESH__ID_SIZE);
    memcpy(session->topic, frame->topic, frame->topic_size);
    session->topic_size = frame->topic_size;
    session->deadline = deadline;
    session->patience = deadline - zmesh__clock_ms();
    session->join = join;
    uint64_t seq = frame->sequence;
    bool tail = frame->flags & ZMESH__FRAME_TAIL;
    if (s_insert(self, session, msg, seq, false, tail) != 1) {
        free(session);
        self->stats.refused++;
        return false;
    }
    session->asked_through = seq - tail;
    session->asked_from = first;
    self->sessions[self->count++] = session;
    s_nak(self, session, first, last, nak);
    return true;
}

bool
zmesh__repair_history_open(zmesh__repair_t *self,
                           const uint8_t publisher[ZMESH__ID_SIZE],
                           const char *pattern, uint64_t req, int64_t deadline)
{
    size_t size = strlen(pattern);
    if (self->count >= self->max_sessions || size > ZMESH_TOPIC_MAX) {
        self->stats.refused++;
        return false;
    }
    s_session_t *session = calloc(1, sizeof *session);
    if (!session) {
        self->stats.refused++;
        return false;
    }
    memcpy(session->publisher, publisher, ZMESH__ID_SIZE);
    memcpy(session->topic, pattern, size);
    session->topic_size = size;
    session->deadline = deadline;
    session->patience = deadline - zmesh__clock_ms();
    session->history = true;
    session->reqs[session->reqs_count++] = req;
    self->sessions[self->count++] = session;
    return true;
}

static s_session_t *
s_find_req(zmesh__repair_t *self, uint64_t req, size_t *slot)
{
    for (size_t i = 0; i < self->count; i++) {
        s_session_t *s = self->sessions[i];
        for (size_t r = 0; r < s->reqs_count; r++)
            if (s->reqs[r] == req) {
                *slot = r;
                return s;
            }
    }
    return NULL;
}

bool
zmesh__repair_answer(zmesh__repair_t *self,
                     const uint8_t sender[ZMESH__ID_SIZE], uint64_t req,
                     void *const *frames, const size_t *sizes, size_t count,
                     bool done, bool vouched, uint64_t *rejected)
{
    size_t slot = 0;
    s_session_t *session = s_find_req(self, req, &slot);
    if (!session || memcmp(session->publisher, sender, ZMESH__ID_SIZE) != 0)
        return false;
    for (size_t i = 0; i < count && session->history; i++) {
        zmesh__frame_t frame;
        zmq_msg_t msg;
        s_frame_t *kept = NULL;
        // History: the publisher's own, of topics the pattern matches.
        if (zmesh__frame_decode(frames[i], sizes[i], &frame) != 0 ||
            memcmp(frame.publisher, session->publisher, ZMESH__ID_SIZE) != 0 ||
            !zmesh__pattern_match(session->topic, session->topic_size,
                                  frame.topic, frame.topic_size)) {
            (*rejected)++;
            continue;
        }
        if (zmq_msg_init_size(&msg, sizes[i]) != 0)
            continue;
        if (!(kept = malloc(sizeof *kept))) {
            zmq_msg_close(&msg);
            continue;
        }
        memcpy(zmq_msg_data(&msg), frames[i], sizes[i]);
        zmq_msg_init(&kept->msg);
        zmq_msg_move(&kept->msg, &msg);
        kept->seq = frame.sequence;
        kept->repaired = false;
        kept->tail = false;
        kept->next = NULL;
        if (session->answers_tail)
            session->answers_tail->next = kept;
        else
            session->answers = kept;
        session->answers_tail = kept;
        session->bytes += sizes[i];
        self->bytes += sizes[i];
        self->stats.history++;
        if (self->bytes > self->max_bytes)
            session->ended = true; // release what it has rather than more
    }
    for (size_t i = 0; i < count && !session->history; i++) {
        zmesh__frame_t frame;
        zmq_msg_t msg;
        // Only the stream asked about, from its own publisher, and only
        // what the session does not hold yet.
        if (zmesh__frame_decode(frames[i], sizes[i], &frame) != 0 ||
            memcmp(frame.publisher, session->publisher, ZMESH__ID_SIZE) != 0 ||
            frame.topic_size != session->topic_size ||
            memcmp(frame.topic, session->topic, frame.topic_size) != 0 ||
            frame.sequence > session->asked_through ||
            frame.sequence < session->asked_from) {
            (*rejected)++;
            continue;
        }
        if (zmq_msg_init_size(&msg, sizes[i]) != 0)
            continue;
        memcpy(zmq_msg_data(&msg), frames[i], sizes[i]);
        if (s_insert(self, session, &msg, frame.sequence, true, false) == 1)
            self->stats.repaired++;
        else
            zmq_msg_close(&msg); // a duplicate of what is held
    }
    // The timeout is for silence, not for the whole repair: a large one
    // arrives in many answers, each a sign of life.
    int64_t later = zmesh__clock_ms() + session->patience;
    if (later > session->deadline)
        session->deadline = later;
    if (vouched)
        session->vouched = true;
    if (done)
        session->reqs[slot] = session->reqs[--session->reqs_count];
    return true;
}

void
zmesh__repair_abandon(zmesh__repair_t *self,
                      const uint8_t publisher[ZMESH__ID_SIZE])
{
    for (size_t i = 0; i < self->count; i++)
        if (memcmp(self->sessions[i]->publisher, publisher, ZMESH__ID_SIZE) ==
            0)
            self->sessions[i]->ended = true;
}

size_t
zmesh__repair_release(zmesh__repair_t *self, int64_t now, bool all,
                      zmesh__repair_session_fn *on_session,
                      zmesh__repair_frame_fn *on_frame, void *arg)
{
    size_t released = 0;
    for (size_t i = 0; i < self->count;) {
        s_session_t *s = self->sessions[i];
        bool late = now >= s->deadline;
        if (!all && !s->ended && s->reqs_count > 0 && !late) {
            i++;
            continue;
        }
        if (s->reqs_count > 0 && late)
            self->stats.timeouts++;
        on_session(arg, s->publisher, s->history ? "" : s->topic,
                   s->history ? 0 : s->topic_size, s->join, s->vouched);
        s_frame_t *lists[2] = {s->answers, s->frames};
        for (int l = 0; l < 2; l++)
            for (s_frame_t *f = lists[l], *next; f; f = next) {
                next = f->next;
                size_t size = zmq_msg_size(&f->msg);
                s->bytes -= size;
                self->bytes -= size;
                on_frame(arg, &f->msg, f->seq, f->repaired);
                zmq_msg_close(&f->msg);
                free(f);
            }
        s->frames = s->answers = s->hint = NULL;
        s_session_free(self, s);
        self->sessions[i] = self->sessions[--self->count];
        released++;
    }
    return released;
}

int64_t
zmesh__repair_deadline(const zmesh__repair_t *self)
{
    int64_t earliest = 0;
    for (size_t i = 0; i < self->count; i++) {
        const s_session_t *s = self->sessions[i];
        int64_t due = s->ended || s->reqs_count == 0 ? 1 : s->deadline;
        if (earliest == 0 || due < earliest)
            earliest = due;
    }
    return earliest;
}

void
zmesh__repair_stats(const zmesh__repair_t *self, zmesh__repair_stats_t *stats)
{
    *stats = self->stats;
    stats->held_bytes = self->bytes;
    stats->held_frames = 0;
    for (size_t i = 0; i < self->count; i++) {
        for (const s_frame_t *f = self->sessions[i]->frames; f; f = f->next)
            stats->held_frames++;
        for (const s_frame_t *f = self->sessions[i]->answers; f; f = f->next)
            stats->held_frames++;
    }
}
