/*  control_fuzz.c - libFuzzer target for zmesh__msg_decode on arbitrary
    bytes. A message that decodes must encode again (the decoder never
    accepts what the encoder refuses), the encoding must decode to the same
    message and be canonical (encoding that gives the same bytes), and the
    message is always cleared, so LeakSanitizer sees any leak on any path.
    Without libFuzzer, replay_main.c runs it over corpus/control. */
#include "codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            abort();                                                           \
    } while (0)

static void
s_same_text(const char *a, const char *b)
{
    CHECK((a == NULL) == (b == NULL));
    CHECK(!a || strcmp(a, b) == 0);
}

static void
s_same_texts(char *const *a, char *const *b, size_t count)
{
    for (size_t i = 0; i < count; i++)
        s_same_text(a[i], b[i]);
}

/*  Same bytes, and both present or both absent. */
static void
s_same_bytes(const void *a, size_t a_size, const void *b, size_t b_size)
{
    CHECK((a == NULL) == (b == NULL) && a_size == b_size);
    CHECK(a_size == 0 || memcmp(a, b, a_size) == 0);
}

/*  Every field of zmesh__msg_t (lib/codec.h), whatever the type: the
    fields a type does not use are zero in both decodes. An empty list may
    be NULL or not; absent counters or payload differ from empty ones. */
static void
s_same(const zmesh__msg_t *a, const zmesh__msg_t *b)
{
    CHECK(a->type == b->type && a->version == b->version);
    CHECK(memcmp(a->sender, b->sender, ZMESH__ID_SIZE) == 0);
    /* HELLO */
    s_same_text(a->name, b->name);
    s_same_text(a->mesh, b->mesh);
    s_same_text(a->endpoint, b->endpoint);
    s_same_text(a->data_endpoint, b->data_endpoint);
    s_same_text(a->host, b->host);
    s_same_text(a->version_text, b->version_text);
    CHECK(a->pid == b->pid);
    CHECK(a->headers_count == b->headers_count);
    for (size_t i = 0; i < a->headers_count; i++) {
        s_same_text(a->headers[i].key, b->headers[i].key);
        s_same_text(a->headers[i].value, b->headers[i].value);
    }
    /* HELLO and ADVERTISE */
    CHECK(a->pubs_count == b->pubs_count && a->subs_count == b->subs_count);
    s_same_texts(a->pubs, b->pubs, a->pubs_count);
    s_same_texts(a->subs, b->subs, a->subs_count);
    CHECK(a->subs_generation == b->subs_generation);
    CHECK(a->groups_count == b->groups_count);
    s_same_texts(a->group_patterns, b->group_patterns, a->groups_count);
    s_same_texts(a->group_names, b->group_names, a->groups_count);
    CHECK(a->bp_subs_count == b->bp_subs_count);
    s_same_texts(a->bp_subs, b->bp_subs, a->bp_subs_count);
    CHECK(a->serves_count == b->serves_count);
    s_same_texts(a->serves, b->serves, a->serves_count);
    CHECK(a->ask == b->ask);
    /* PEERS */
    CHECK(a->peers_count == b->peers_count);
    for (size_t i = 0; i < a->peers_count; i++) {
        CHECK(memcmp(a->peers[i].id, b->peers[i].id, ZMESH__ID_SIZE) == 0);
        s_same_text(a->peers[i].endpoint, b->peers[i].endpoint);
    }
    /* NAK, REPAIR, HISTORY, DIRECT, REPLY, STATS, DELIVER, ACK, CREDIT */
    CHECK(a->req == b->req);
    s_same_text(a->topic, b->topic);
    CHECK(a->first == b->first && a->last == b->last && a->join == b->join);
    CHECK(a->frames_count == b->frames_count);
    for (size_t i = 0; i < a->frames_count; i++)
        s_same_bytes(a->frames[i], a->frame_sizes[i], b->frames[i],
                     b->frame_sizes[i]);
    CHECK(a->done == b->done);
    s_same_text(a->pattern, b->pattern);
    s_same_text(a->group, b->group);
    CHECK(a->redelivered == b->redelivered);
    s_same_bytes(a->payload, a->payload_size, b->payload, b->payload_size);
    CHECK(a->status == b->status);
    CHECK((a->counters == NULL) == (b->counters == NULL));
    CHECK(a->counters_count == b->counters_count);
    for (size_t i = 0; i < a->counters_count; i++) {
        const zmesh__counters_t *x = &a->counters[i];
        const zmesh__counters_t *y = &b->counters[i];
        s_same_text(x->kind, y->kind);
        s_same_text(x->name, y->name);
        CHECK(x->count == y->count);
        s_same_texts(x->keys, y->keys, x->count);
        for (size_t j = 0; j < x->count; j++)
            CHECK(x->values[j] == y->values[j]);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zmesh__msg_t msg;
    int rc = zmesh__msg_decode(data, size, &msg);
    if (rc == ZMESH__EVERSION)
        CHECK(msg.version != ZMESH_PROTOCOL_VERSION && msg.name == NULL);
    else if (rc != 0) {
        CHECK(rc == ZMESH_EPROTO || rc == ZMESH_ENOMEM);
        static const zmesh__msg_t zero;
        CHECK(memcmp(&msg, &zero, sizeof zero) == 0);
    } else {
        void *out;
        size_t out_size;
        rc = zmesh__msg_encode(&msg, &out, &out_size);
        CHECK(rc == 0 || rc == ZMESH_ENOMEM);
        if (rc == 0) {
            zmesh__msg_t again;
            CHECK(zmesh__msg_decode(out, out_size, &again) == 0);
            s_same(&msg, &again);
            void *twice;
            size_t twice_size;
            if (zmesh__msg_encode(&again, &twice, &twice_size) == 0) {
                CHECK(twice_size == out_size &&
                      memcmp(twice, out, out_size) == 0);
                free(twice);
            }
            zmesh__msg_clear(&again);
            free(out);
        }
    }
    zmesh__msg_clear(&msg);
    return 0;
}
