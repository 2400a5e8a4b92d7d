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
s_same(const zmesh__msg_t *a, const zmesh__msg_t *b)
{
    CHECK(a->type == b->type && a->version == b->version);
    CHECK(memcmp(a->sender, b->sender, ZMESH__ID_SIZE) == 0);
    s_same_text(a->name, b->name);
    s_same_text(a->mesh, b->mesh);
    s_same_text(a->endpoint, b->endpoint);
    s_same_text(a->data_endpoint, b->data_endpoint);
    s_same_text(a->host, b->host);
    s_same_text(a->version_text, b->version_text);
    CHECK(a->pid == b->pid && a->subs_generation == b->subs_generation);
    CHECK(a->headers_count == b->headers_count);
    for (size_t i = 0; i < a->headers_count; i++) {
        s_same_text(a->headers[i].key, b->headers[i].key);
        s_same_text(a->headers[i].value, b->headers[i].value);
    }
    CHECK(a->pubs_count == b->pubs_count && a->subs_count == b->subs_count);
    for (size_t i = 0; i < a->pubs_count; i++)
        s_same_text(a->pubs[i], b->pubs[i]);
    for (size_t i = 0; i < a->subs_count; i++)
        s_same_text(a->subs[i], b->subs[i]);
    CHECK(a->peers_count == b->peers_count);
    for (size_t i = 0; i < a->peers_count; i++) {
        CHECK(memcmp(a->peers[i].id, b->peers[i].id, ZMESH__ID_SIZE) == 0);
        s_same_text(a->peers[i].endpoint, b->peers[i].endpoint);
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
