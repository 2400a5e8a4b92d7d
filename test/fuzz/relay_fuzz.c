/*  relay_fuzz.c - fuzz target for what mesh-relay decodes from others: a
    "$relay.read" request payload (any peer can send one), the durable
    consumer requests ("$relay.consume", "$relay.next", "$relay.ack") and
    a consumer file's blob (first byte 0xf0..0xff), a configuration
    file's text, and the duration, size, count and sync values of flags and
    files. The first byte picks which; the rest is the input. Nothing may
    crash, leak or hang, and what decodes must be within the documented
    limits. */
#include "relay.h"
#include "relay_consumer.h"

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
s_values(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text)
        return;
    memcpy(text, data, size);
    text[size] = '\0';
    uint64_t value = 0;
    if (zmesh__relay_parse_duration(text, &value) == 0)
        CHECK(value <= UINT64_C(100) * 366 * 24 * 3600 * 1000);
    if (zmesh__relay_parse_size(text, &value) == 0)
        CHECK(value <= (UINT64_C(1) << 60));
    if (zmesh__relay_parse_count(text, &value) == 0)
        CHECK(value <= (UINT64_C(1) << 62));
    zmesh__store_sync_t sync;
    uint32_t interval = 0;
    zmesh__relay_parse_sync(text, &sync, &interval);
    free(text);
}

static void
s_consumer_inputs(unsigned which, const uint8_t *data, size_t size)
{
    char err[256];
    switch (which % 4) {
    case 0: {
        zmesh__relay_consume_t c;
        if (zmesh__relay_consume_decode(data, size, &c, err, sizeof err) == 0)
            CHECK(zmesh__store_consumer_name_ok(c.consumer) &&
                  strlen(c.pattern) <= ZMESH_TOPIC_MAX &&
                  c.max_ack_pending >= 1 &&
                  c.max_ack_pending <= ZMESH__RELAY_ACK_PENDING_MAX);
        break;
    }
    case 1: {
        zmesh__relay_next_t n;
        if (zmesh__relay_next_decode(data, size, &n, err, sizeof err) == 0)
            CHECK(n.max >= 1 && n.max <= ZMESH__RELAY_READ_MAX);
        break;
    }
    case 2: {
        zmesh__relay_ack_t a;
        if (zmesh__relay_ack_decode(data, size, 1 << 20, &a, err, sizeof err) ==
            0) {
            CHECK(a.acks_count + a.live_count <= ZMESH__RELAY_ACK_ITEMS_MAX);
            zmesh__relay_ack_clear(&a);
        }
        break;
    }
    default:
        // Decodes, and what it encodes again decodes the same (or aborts).
        zmesh__relay_consumer_blob_check(data, size);
        break;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    char err[256];
    if (data[0] >= 0xf0) {
        s_consumer_inputs(data[0] - 0xf0u, data + 1, size - 1);
        return 0;
    }
    switch (data[0] % 3) {
    case 0: {
        zmesh__relay_read_t read;
        if (zmesh__relay_read_decode(data + 1, size - 1, &read, err,
                                     sizeof err) == 0)
            CHECK(read.max >= 1 && read.max <= ZMESH__RELAY_READ_MAX &&
                  strlen(read.stream) <= ZMESH__RELAY_STREAM_NAME_MAX);
        break;
    }
    case 1: {
        zmesh__relay_config_t config;
        zmesh__relay_config_init(&config);
        zmesh__relay_config_parse(&config, (const char *)data + 1, size - 1,
                                  "fuzz.conf", err, sizeof err);
        zmesh__relay_config_clear(&config);
        break;
    }
    default: s_values(data + 1, size - 1); break;
    }
    return 0;
}
