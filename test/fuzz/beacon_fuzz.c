/*  beacon_fuzz.c - fuzz target for zmesh__beacon_decode, the first thing
    that touches a datagram from the network. Any bytes must decode to one
    of the three documented results without crashing; a beacon that decodes
    must encode back to exactly its first 32 bytes (unknown flag bits
    included, since decode keeps them), satisfy the port rule, and decode
    again to the same fields. */
#include "beacon.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
    do {                                                                       \
        if (!(cond))                                                           \
            abort();                                                           \
    } while (0)

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zmesh__beacon_t beacon;
    memset(&beacon, 0, sizeof beacon);
    int rc = zmesh__beacon_decode(data, size, &beacon);
    CHECK(rc == 0 || rc == ZMESH__BEACON_OTHER_VERSION || rc == ZMESH_EPROTO);
    if (rc != ZMESH_EPROTO)
        CHECK(size >= ZMESH__BEACON_SIZE && memcmp(data, "ZMSH", 4) == 0);
    if (rc == ZMESH__BEACON_OTHER_VERSION)
        CHECK(beacon.version != ZMESH_PROTOCOL_VERSION &&
              beacon.version == data[4]);
    if (rc != 0)
        return 0;

    CHECK(beacon.version == ZMESH_PROTOCOL_VERSION);
    CHECK(beacon.port != 0 || (beacon.flags & ZMESH__BEACON_FLAG_LEAVING));
    uint8_t again[ZMESH__BEACON_SIZE];
    zmesh__beacon_encode(&beacon, again);
    CHECK(memcmp(again, data, ZMESH__BEACON_SIZE) == 0);

    zmesh__beacon_t twice;
    CHECK(zmesh__beacon_decode(again, sizeof again, &twice) == 0);
    CHECK(twice.version == beacon.version && twice.flags == beacon.flags &&
          twice.port == beacon.port && twice.mesh_hash == beacon.mesh_hash &&
          memcmp(twice.id, beacon.id, sizeof twice.id) == 0);
    return 0;
}
