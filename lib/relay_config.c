/*  relay_config.c - mesh-relay's configuration (docs/mesh-relay.md): the
    value syntax of durations, sizes, counts and sync policies, flags and
    the configuration file into a zmesh__relay_config_t, and the checks
    that make a bad configuration a clear message before anything is
    touched on disk. It opens nothing but the file it is asked to load.
*/
#include "codec.h"
#include "relay.h"
#include "topic.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <net/if.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_DURATION_MAX_MS (100ull * 365 * 24 * 3600 * 1000)
#define S_SIZE_MAX (1ull << 60)
#define S_COUNT_MAX (1ull << 62)
#define S_SEGMENT_MIN 64
#define S_SEGMENT_MAX (1ull << 40)
#define S_SYNC_INTERVAL_MAX 3600000

int
zmesh__relay_err(char *err, size_t err_size, const char *format, ...)
{
    if (err && err_size > 0) {
        va_list args;
        va_start(args, format);
        vsnprintf(err, err_size, format, args);
        va_end(args);
    }
    return ZMESH_EINVAL;
}

/* ------------------------------------------------------------------------ */
/*  Value syntax                                                            */

/*  Reads the decimal digits at *p (at least one, at most 19). */
static bool
s_digits(const char **p, uint64_t *out)
{
    const char *c = *p;
    uint64_t value = 0;
    size_t n = 0;
    while (*c >= '0' && *c <= '9') {
        if (++n > 19)
            return false;
        value = value * 10 + (uint64_t)(*c - '0');
        c++;
    }
    if (n == 0)
        return false;
    *p = c;
    *out = value;
    return true;
}

int
zmesh__relay_parse_duration(const char *text, uint64_t *ms)
{
    static const struct {
        const char *unit;
        uint64_t ms;
    } units[] = {{"ms", 1},      {"s", 1000},        {"m", 60000},
                 {"h", 3600000}, {"d", 86400000ull}, {"w", 604800000ull}};
    if (!text || !ms || !*text)
        return ZMESH_EINVAL;
    if (strcmp(text, "0") == 0) {
        *ms = 0;
        return 0;
    }
    uint64_t total = 0;
    const char *p = text;
    while (*p) {
        uint64_t number;
        if (!s_digits(&p, &number))
            return ZMESH_EINVAL;
        size_t best = SIZE_MAX, best_len = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t len = strlen(units[i].unit);
            // "ms" before "m": the longest unit that fits wins.
            if (strncmp(p, units[i].unit, len) == 0 && len > best_len &&
                !(p[len] >= 'a' && p[len] <= 'z')) {
                best = i;
                best_len = len;
            }
        }
        if (best == SIZE_MAX)
            return ZMESH_EINVAL;
        p += best_len;
        if (number > S_DURATION_MAX_MS / units[best].ms)
            return ZMESH_EINVAL;
        total += number * units[best].ms;
        if (total > S_DURATION_MAX_MS)
            return ZMESH_EINVAL;
    }
    *ms = total;
    return 0;
}

int
zmesh__relay_parse_size(const char *text, uint64_t *bytes)
{
    static const struct {
        const char *suffix;
        unsigned shift;
    } units[] = {{"", 0},     {"b", 0},   {"k", 10},   {"kb", 10}, {"kib", 10},
                 {"m", 20},   {"mb", 20}, {"mib", 20}, {"g", 30},  {"gb", 30},
                 {"gib", 30}, {"t", 40},  {"tb", 40},  {"tib", 40}};
    if (!text || !bytes)
        return ZMESH_EINVAL;
    const char *p = text;
    uint64_t number;
    if (!s_digits(&p, &number))
        return ZMESH_EINVAL;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(p, units[i].suffix) != 0)
            continue;
        if (number > (S_SIZE_MAX >> units[i].shift))
            return ZMESH_EINVAL;
        *bytes = number << units[i].shift;
        return 0;
    }
    return ZMESH_EINVAL;
}

int
zmesh__relay_parse_count(const char *text, uint64_t *count)
{
    if (!text || !count)
        return ZMESH_EINVAL;
    const char *p = text;
    uint64_t number;
    if (!s_digits(&p, &number) || *p || number > S_COUNT_MAX)
        return ZMESH_EINVAL;
    *count = number;
    return 0;
}

int
zmesh__relay_parse_sync(const char *text, zmesh__store_sync_t *sync,
                        uint32_t *interval_ms)
{
    if (!text || !sync || !interval_ms)
        return ZMESH_EINVAL;
    if (strcmp(text, "always") == 0 || strcmp(text, "never") == 0) {
        *sync =
            text[0] == 'a' ? ZMESH__STORE_SYNC_ALWAYS : ZMESH__STORE_SYNC_NEVER;
        *interval_ms = 0;
        return 0;
    }
    static const char prefix[] = "interval:";
    if (strncmp(text, prefix, sizeof prefix - 1) != 0)
        return ZMESH_EINVAL;
    const char *value = text + sizeof prefix - 1;
    uint64_t ms;
    const char *p = value;
    bool plain = s_digits(&p, &ms) && *p == '\0';
    if (!plain && zmesh__relay_parse_duration(value, &ms) != 0)
        return ZMESH_EINVAL;
    if (ms < 1 || ms > S_SYNC_INTERVAL_MAX)
        return ZMESH_EINVAL;
    *sync = ZMESH__STORE_SYNC_INTERVAL;
    *interval_ms = (uint32_t)ms;
    return 0;
}

void
zmesh__relay_sync_text(zmesh__store_sync_t sync, uint32_t interval_ms,
                       char *out, size_t out_size)
{
    switch (sync) {
    case ZMESH__STORE_SYNC_ALWAYS: snprintf(out, out_size, "always"); return;
    case ZMESH__STORE_SYNC_NEVER: snprintf(out, out_size, "never"); return;
    case ZMESH__STORE_SYNC_INTERVAL:
        snprintf(out, out_size, "interval:%" PRIu32,
                 interval_ms ? interval_ms
                             : ZMESH__STORE_SYNC_INTERVAL_DEFAULT);
        return;
    }
    snprintf(out, out_size, "?");
}

bool
zmesh__relay_stream_name_ok(const char *name)
{
    if (!name)
        return false;
    size_t n = strlen(name);
    if (n < 1 || n > ZMESH__RELAY_STREAM_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                  (c >= '0' && c <= '9') || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* ------------------------------------------------------------------------ */
/*  Configuration                                                           */

void
zmesh__relay_config_init(zmesh__relay_config_t *config)
{
    memset(config, 0, sizeof *config);
    config->discovery = ZMESH_DISCOVERY_HOST;
}

static void
s_stream_config_clear(zmesh__relay_stream_config_t *stream)
{
    for (size_t i = 0; i < stream->patterns_count; i++)
        free(stream->patterns[i]);
    stream->patterns_count = 0;
}

void
zmesh__relay_config_clear(zmesh__relay_config_t *config)
{
    if (!config)
        return;
    free(config->dir);
    free(config->mesh);
    free(config->agent_name);
    free(config->interface_name);
    free(config->multicast_group);
    for (size_t i = 0; i < config->seeds_count; i++)
        free(config->seeds[i]);
    for (size_t i = 0; i < config->streams_count; i++)
        s_stream_config_clear(&config->streams[i]);
    free(config->streams);
    for (size_t i = 0; i < config->pending_count; i++) {
        free(config->pending[i].key);
        free(config->pending[i].stream);
        free(config->pending[i].value);
        free(config->pending[i].source);
    }
    free(config->pending);
    zmesh__relay_config_init(config);
}

static zmesh__relay_stream_config_t *
s_stream_find(zmesh__relay_config_t *config, const char *name)
{
    for (size_t i = 0; i < config->streams_count; i++)
        if (strcmp(config->streams[i].name, name) == 0)
            return &config->streams[i];
    return NULL;
}

/*  Replaces *slot with a copy of value. */
static int
s_set_string(char **slot, const char *value)
{
    char *copy = strdup(value);
    if (!copy)
        return ZMESH_ENOMEM;
    free(*slot);
    *slot = copy;
    return 0;
}

static bool
s_is_storage_key(const char *key)
{
    return strcmp(key, "max-age") == 0 || strcmp(key, "max-bytes") == 0 ||
           strcmp(key, "max-events") == 0 || strcmp(key, "sync") == 0 ||
           strcmp(key, "segment-bytes") == 0;
}

/*  Parses a storage key's VALUE into `limits`. */
static int
s_limits_set(zmesh__relay_limits_t *limits, const char *key, const char *value,
             const char *source, char *err, size_t err_size)
{
    uint64_t number;
    if (strcmp(key, "max-age") == 0) {
        if (zmesh__relay_parse_duration(value, &number) != 0)
            return zmesh__relay_err(
                err, err_size,
                "%s: '%s' is not a duration (e.g. 90s, 15m, 2h, 7d, "
                "1h30m; 0 for no limit)",
                source, value);
        limits->max_age_ms = number;
        limits->set |= ZMESH__RELAY_SET_MAX_AGE;
    } else if (strcmp(key, "max-bytes") == 0) {
        if (zmesh__relay_parse_size(value, &number) != 0)
            return zmesh__relay_err(
                err, err_size,
                "%s: '%s' is not a size (e.g. 512M, 10G, 1048576; "
                "0 for no limit)",
                source, value);
        limits->max_bytes = number;
        limits->set |= ZMESH__RELAY_SET_MAX_BYTES;
    } else if (strcmp(key, "max-events") == 0) {
        if (zmesh__relay_parse_count(value, &number) != 0)
            return zmesh__relay_err(
                err, err_size,
                "%s: '%s' is not a whole number of events (0 for no "
                "limit)",
                source, value);
        limits->max_events = number;
        limits->set |= ZMESH__RELAY_SET_MAX_EVENTS;
    } else if (strcmp(key, "segment-bytes") == 0) {
        if (zmesh__relay_parse_size(value, &number) != 0 ||
            number < S_SEGMENT_MIN || number > S_SEGMENT_MAX)
            return zmesh__relay_err(
                err, err_size,
                "%s: '%s' is not a segment size from 64 bytes to "
                "1T (e.g. 64M)",
                source, value);
        limits->segment_bytes = number;
        limits->set |= ZMESH__RELAY_SET_SEGMENT;
    } else {
        zmesh__store_sync_t sync;
        uint32_t interval;
        if (zmesh__relay_parse_sync(value, &sync, &interval) != 0)
            return zmesh__relay_err(
                err, err_size,
                "%s: '%s' is not a sync policy: always, never or "
                "interval:MS (MS from 1 to 3600000)",
                source, value);
        limits->sync = sync;
        limits->sync_interval_ms = interval;
        limits->set |= ZMESH__RELAY_SET_SYNC;
    }
    return 0;
}

/*  Splits "NAME:VALUE" for a storage key: true with *colon at the ':' when
    the text names a stream, false when it is a plain VALUE. */
static bool
s_split_stream_value(const char *key, const char *value, const char **colon)
{
    zmesh__store_sync_t sync;
    uint32_t interval;
    // "interval:500" is a policy, not stream "interval".
    if (strcmp(key, "sync") == 0 &&
        zmesh__relay_parse_sync(value, &sync, &interval) == 0)
        return false;
    *colon = strchr(value, ':');
    return *colon != NULL;
}

static int
s_pending_add(zmesh__relay_config_t *config, const char *key,
              const char *stream, size_t stream_size, const char *value,
              const char *source)
{
    zmesh__relay_pending_t *grown = realloc(
        config->pending, (config->pending_count + 1) * sizeof *config->pending);
    if (!grown)
        return ZMESH_ENOMEM;
    config->pending = grown;
    zmesh__relay_pending_t *p = &config->pending[config->pending_count];
    p->key = strdup(key);
    p->stream = strndup(stream, stream_size);
    p->value = strdup(value);
    p->source = strdup(source);
    if (!p->key || !p->stream || !p->value || !p->source) {
        free(p->key);
        free(p->stream);
        free(p->value);
        free(p->source);
        return ZMESH_ENOMEM;
    }
    config->pending_count++;
    return 0;
}

static int
s_storage_set(zmesh__relay_config_t *config, const char *key, const char *value,
              const char *source, char *err, size_t err_size)
{
    const char *colon = NULL;
    if (!s_split_stream_value(key, value, &colon))
        return s_limits_set(&config->defaults, key, value, source, err,
                            err_size);
    char name[ZMESH__RELAY_STREAM_NAME_MAX + 1];
    size_t name_size = (size_t)(colon - value);
    if (name_size == 0 || name_size > ZMESH__RELAY_STREAM_NAME_MAX)
        return zmesh__relay_err(
            err, err_size,
            "%s: '%s' is neither a value nor STREAM:VALUE with a "
            "stream name of 1 to 64 characters",
            source, value);
    memcpy(name, value, name_size);
    name[name_size] = '\0';
    if (!zmesh__relay_stream_name_ok(name))
        return zmesh__relay_err(
            err, err_size,
            "%s: '%s' is not a stream name (letters, digits, '_' "
            "and '-')",
            source, name);
    // The value is checked now, so the message points at the flag; it is
    // applied at check time, when every stream is known.
    zmesh__relay_limits_t scratch = {0};
    int rc = s_limits_set(&scratch, key, colon + 1, source, err, err_size);
    if (rc != 0)
        return rc;
    if (s_pending_add(config, key, name, name_size, colon + 1, source) != 0)
        return zmesh__relay_err(err, err_size, "out of memory");
    return 0;
}

/*  Adds the patterns in `list` (separated by commas, and by white space
    when `spaces`) to a stream. */
static int
s_add_patterns(zmesh__relay_stream_config_t *stream, const char *list,
               bool spaces, const char *source, char *err, size_t err_size)
{
    const char *p = list;
    size_t added = 0;
    for (;;) {
        while (*p == ',' || (spaces && (*p == ' ' || *p == '\t')))
            p++;
        if (!*p)
            break;
        const char *end = p;
        while (*end && *end != ',' &&
               !(spaces && (*end == ' ' || *end == '\t')))
            end++;
        size_t size = (size_t)(end - p);
        if (zmesh__pattern_check(p, size) != 0)
            return zmesh__relay_err(
                err, err_size,
                "%s: '%.*s' is not a topic pattern (tokens "
                "separated by '.', '*' for one token, '>' last for "
                "the rest, e.g. orders.>)",
                source, (int)(size > 300 ? 300 : size), p);
        for (size_t i = 0; i < stream->patterns_count; i++)
            if (strlen(stream->patterns[i]) == size &&
                memcmp(stream->patterns[i], p, size) == 0)
                return zmesh__relay_err(
                    err, err_size,
                    "%s: pattern '%.*s' is given twice for stream "
                    "'%s'",
                    source, (int)size, p, stream->name);
        if (stream->patterns_count == ZMESH__RELAY_PATTERNS_MAX)
            return zmesh__relay_err(
                err, err_size, "%s: stream '%s' has more than %d patterns",
                source, stream->name, ZMESH__RELAY_PATTERNS_MAX);
        char *copy = strndup(p, size);
        if (!copy)
            return zmesh__relay_err(err, err_size, "out of memory");
        stream->patterns[stream->patterns_count++] = copy;
        added++;
        p = end;
    }
    if (added == 0)
        return zmesh__relay_err(err, err_size, "%s: no pattern given", source);
    return 0;
}

static zmesh__relay_stream_config_t *
s_stream_add(zmesh__relay_config_t *config, const char *name,
             const char *source, char *err, size_t err_size)
{
    if (!zmesh__relay_stream_name_ok(name)) {
        zmesh__relay_err(
            err, err_size,
            "%s: '%s' is not a stream name (1 to 64 letters, digits, '_' "
            "and '-')",
            source, name);
        return NULL;
    }
    if (s_stream_find(config, name)) {
        zmesh__relay_err(err, err_size, "%s: stream '%s' is defined twice",
                         source, name);
        return NULL;
    }
    if (config->streams_count == ZMESH__RELAY_STREAMS_MAX) {
        zmesh__relay_err(err, err_size, "%s: more than %d streams", source,
                         ZMESH__RELAY_STREAMS_MAX);
        return NULL;
    }
    zmesh__relay_stream_config_t *grown = realloc(
        config->streams, (config->streams_count + 1) * sizeof *config->streams);
    if (!grown) {
        zmesh__relay_err(err, err_size, "out of memory");
        return NULL;
    }
    config->streams = grown;
    zmesh__relay_stream_config_t *stream =
        &config->streams[config->streams_count++];
    memset(stream, 0, sizeof *stream);
    strcpy(stream->name, name);
    return stream;
}

/*  "NAME=PATTERN[,PATTERN...]" */
static int
s_stream_spec(zmesh__relay_config_t *config, const char *spec,
              const char *source, char *err, size_t err_size)
{
    const char *equals = strchr(spec, '=');
    if (!equals)
        return zmesh__relay_err(
            err, err_size,
            "%s: '%s' is not NAME=PATTERN[,PATTERN...] (e.g. "
            "orders='orders.>')",
            source, spec);
    char name[ZMESH__RELAY_STREAM_NAME_MAX + 2];
    size_t name_size = (size_t)(equals - spec);
    if (name_size > ZMESH__RELAY_STREAM_NAME_MAX)
        name_size = ZMESH__RELAY_STREAM_NAME_MAX + 1; // refused below
    memcpy(name, spec, name_size);
    name[name_size] = '\0';
    zmesh__relay_stream_config_t *stream =
        s_stream_add(config, name, source, err, err_size);
    if (!stream)
        return ZMESH_EINVAL;
    int rc = s_add_patterns(stream, equals + 1, false, source, err, err_size);
    if (rc != 0) {
        s_stream_config_clear(stream);
        config->streams_count--;
    }
    return rc;
}

static int
s_parse_port(const char *value, int *port)
{
    uint64_t number;
    const char *p = value;
    if (!s_digits(&p, &number) || *p || number < 1 || number > 65535)
        return ZMESH_EINVAL;
    *port = (int)number;
    return 0;
}

/*  Milliseconds: a plain number of ms, or a duration. */
static int
s_parse_ms(const char *value, int *ms)
{
    uint64_t number;
    const char *p = value;
    bool plain = s_digits(&p, &number) && *p == '\0';
    if (!plain && zmesh__relay_parse_duration(value, &number) != 0)
        return ZMESH_EINVAL;
    if (number > INT_MAX)
        return ZMESH_EINVAL;
    *ms = (int)number;
    return 0;
}

int
zmesh__relay_config_set(zmesh__relay_config_t *config, const char *key,
                        const char *value, const char *source, char *err,
                        size_t err_size)
{
    if (!config || !key || !value || !source)
        return zmesh__relay_err(err, err_size, "invalid argument");
    config->checked = false;
    if (s_is_storage_key(key))
        return s_storage_set(config, key, value, source, err, err_size);
    if (strcmp(key, "stream") == 0)
        return s_stream_spec(config, value, source, err, err_size);
    if (strcmp(key, "seed") == 0) {
        if (config->seeds_count == ZMESH__RELAY_SEEDS_MAX)
            return zmesh__relay_err(err, err_size, "%s: more than %d seeds",
                                    source, ZMESH__RELAY_SEEDS_MAX);
        char *copy = strdup(value);
        if (!copy)
            return zmesh__relay_err(err, err_size, "out of memory");
        config->seeds[config->seeds_count++] = copy;
        return 0;
    }
    if (strcmp(key, "dir") == 0) {
        if (!*value || strlen(value) > ZMESH__RELAY_PATH_MAX)
            return zmesh__relay_err(err, err_size,
                                    "%s: '%s' is not a usable directory",
                                    source, value);
        return s_set_string(&config->dir, value) == 0
                   ? 0
                   : zmesh__relay_err(err, err_size, "out of memory");
    }
    char **text = strcmp(key, "mesh") == 0        ? &config->mesh
                  : strcmp(key, "name") == 0      ? &config->agent_name
                  : strcmp(key, "interface") == 0 ? &config->interface_name
                  : strcmp(key, "multicast-group") == 0
                      ? &config->multicast_group
                      : NULL;
    if (text) {
        // The agent checks these names when the relay is created.
        if (!*value)
            return zmesh__relay_err(err, err_size, "%s: the value is empty",
                                    source);
        return s_set_string(text, value) == 0
                   ? 0
                   : zmesh__relay_err(err, err_size, "out of memory");
    }
    if (strcmp(key, "beacon-port") == 0) {
        if (s_parse_port(value, &config->beacon_port) != 0)
            return zmesh__relay_err(err, err_size,
                                    "%s: '%s' is not a port number (1-65535)",
                                    source, value);
        return 0;
    }
    if (strcmp(key, "beacon-interval") == 0 ||
        strcmp(key, "peer-timeout") == 0) {
        int *slot = key[0] == 'b' ? &config->beacon_interval_ms
                                  : &config->peer_timeout_ms;
        if (s_parse_ms(value, slot) != 0 || *slot == 0)
            return zmesh__relay_err(
                err, err_size,
                "%s: '%s' is not a time (milliseconds, or e.g. 2s)", source,
                value);
        return 0;
    }
    if (strcmp(key, "max-msg-size") == 0) {
        uint64_t bytes;
        if (zmesh__relay_parse_size(value, &bytes) != 0 || bytes < 4096 ||
            bytes > ZMESH__STORE_RECORD_LIMIT - ZMESH__FRAME_OVERHEAD)
            return zmesh__relay_err(
                err, err_size, "%s: '%s' is not a message size from 4K to 63M",
                source, value);
        config->max_msg_size = (size_t)bytes;
        return 0;
    }
    if (strcmp(key, "discovery") == 0) {
        static const char *names[] = {"host", "lan", "multicast", "none"};
        for (int i = 0; i < 4; i++)
            if (strcmp(value, names[i]) == 0) {
                config->discovery = (zmesh_discovery_t)i;
                return 0;
            }
        return zmesh__relay_err(
            err, err_size,
            "%s: '%s' is not one of host, lan, multicast or none", source,
            value);
    }
    return zmesh__relay_err(err, err_size, "%s: unknown setting '%s'", source,
                            key);
}

/*  Trims white space at both ends, in place. */
static char *
s_trim(char *text)
{
    while (*text == ' ' || *text == '\t' || *text == '\r')
        text++;
    size_t n = strlen(text);
    while (n > 0 &&
           (text[n - 1] == ' ' || text[n - 1] == '\t' || text[n - 1] == '\r'))
        text[--n] = '\0';
    return text;
}

/*  One line of a [stream NAME] section. */
static int
s_stream_line(zmesh__relay_config_t *config,
              zmesh__relay_stream_config_t *stream, const char *key,
              const char *value, const char *source, char *err, size_t err_size)
{
    if (strcmp(key, "patterns") == 0)
        return s_add_patterns(stream, value, true, source, err, err_size);
    if (strcmp(key, "pattern") == 0) {
        // One pattern, whole: the way to give one that holds a comma.
        if (zmesh__pattern_check(value, strlen(value)) != 0)
            return zmesh__relay_err(err, err_size,
                                    "%s: '%s' is not a topic pattern", source,
                                    value);
        char *copy = strdup(value);
        if (!copy)
            return zmesh__relay_err(err, err_size, "out of memory");
        for (size_t i = 0; i < stream->patterns_count; i++)
            if (strcmp(stream->patterns[i], value) == 0) {
                free(copy);
                return zmesh__relay_err(
                    err, err_size,
                    "%s: pattern '%s' is given twice for stream "
                    "'%s'",
                    source, value, stream->name);
            }
        if (stream->patterns_count == ZMESH__RELAY_PATTERNS_MAX) {
            free(copy);
            return zmesh__relay_err(err, err_size, "%s: more than %d patterns",
                                    source, ZMESH__RELAY_PATTERNS_MAX);
        }
        stream->patterns[stream->patterns_count++] = copy;
        return 0;
    }
    if (s_is_storage_key(key))
        return s_limits_set(&stream->limits, key, value, source, err, err_size);
    (void)config;
    return zmesh__relay_err(
        err, err_size,
        "%s: '%s' does not belong in a [stream] section (patterns, "
        "pattern, max-age, max-bytes, max-events, sync, "
        "segment-bytes)",
        source, key);
}

int
zmesh__relay_config_parse(zmesh__relay_config_t *config, const char *text,
                          size_t size, const char *source, char *err,
                          size_t err_size)
{
    if (!config || (!text && size) || !source)
        return zmesh__relay_err(err, err_size, "invalid argument");
    if (size > 0 && memchr(text, '\0', size))
        return zmesh__relay_err(
            err, err_size, "%s: holds a NUL byte; not a text file", source);
    zmesh__relay_stream_config_t *section = NULL;
    size_t section_index = 0;
    size_t at = 0, number = 0;
    char line[4096 + 2];
    char where[ZMESH__RELAY_PATH_MAX + 32];
    while (at < size) {
        number++;
        const char *end = memchr(text + at, '\n', size - at);
        size_t len = end ? (size_t)(end - (text + at)) : size - at;
        snprintf(where, sizeof where, "%s:%zu", source, number);
        if (len > 4096)
            return zmesh__relay_err(err, err_size,
                                    "%s: line longer than 4096 bytes", where);
        memcpy(line, text + at, len);
        line[len] = '\0';
        at += len + (end ? 1 : 0);
        char *content = s_trim(line);
        if (!*content || *content == '#' || *content == ';')
            continue;
        // The stream being filled is found again by index: adding a
        // stream may move the array.
        section = section ? &config->streams[section_index] : NULL;
        if (*content == '[') {
            size_t n = strlen(content);
            if (content[n - 1] != ']')
                return zmesh__relay_err(err, err_size,
                                        "%s: a section header is [stream NAME]",
                                        where);
            content[n - 1] = '\0';
            char *inner = s_trim(content + 1);
            if (strncmp(inner, "stream", 6) != 0 ||
                (inner[6] != ' ' && inner[6] != '\t'))
                return zmesh__relay_err(
                    err, err_size,
                    "%s: unknown section '[%s]'; sections are "
                    "[stream NAME]",
                    where, inner);
            char *name = s_trim(inner + 6);
            section = s_stream_add(config, name, where, err, err_size);
            if (!section)
                return ZMESH_EINVAL;
            section_index = (size_t)(section - config->streams);
            continue;
        }
        char *equals = strchr(content, '=');
        if (!equals)
            return zmesh__relay_err(
                err, err_size,
                "%s: expected 'key = value', '[stream NAME]' or a "
                "# comment",
                where);
        *equals = '\0';
        char *key = s_trim(content);
        char *value = s_trim(equals + 1);
        if (!*key)
            return zmesh__relay_err(err, err_size, "%s: the key is missing",
                                    where);
        int rc;
        if (section)
            rc = s_stream_line(config, section, key, value, where, err,
                               err_size);
        else if (strcmp(key, "config") == 0)
            rc = zmesh__relay_err(
                err, err_size,
                "%s: a configuration file cannot include another", where);
        else
            rc = zmesh__relay_config_set(config, key, value, where, err,
                                         err_size);
        if (rc != 0)
            return rc;
    }
    config->checked = false;
    return 0;
}

int
zmesh__relay_config_load(zmesh__relay_config_t *config, const char *path,
                         char *err, size_t err_size)
{
    if (!config || !path)
        return zmesh__relay_err(err, err_size, "invalid argument");
    FILE *file = fopen(path, "rb");
    if (!file) {
        zmesh__relay_err(err, err_size, "--config: cannot read '%s': %s", path,
                         strerror(errno));
        return ZMESH_ESYS;
    }
    char *text = malloc(ZMESH__RELAY_CONFIG_FILE_MAX + 1);
    if (!text) {
        fclose(file);
        return zmesh__relay_err(err, err_size, "out of memory");
    }
    size_t size = fread(text, 1, ZMESH__RELAY_CONFIG_FILE_MAX + 1, file);
    bool failed = ferror(file);
    int saved = errno;
    fclose(file);
    int rc;
    if (failed) {
        zmesh__relay_err(err, err_size, "--config: cannot read '%s': %s", path,
                         strerror(saved));
        rc = ZMESH_ESYS;
    } else if (size > ZMESH__RELAY_CONFIG_FILE_MAX)
        rc = zmesh__relay_err(err, err_size,
                              "--config: '%s' is larger than 1 MiB", path);
    else
        rc = zmesh__relay_config_parse(config, text, size, path, err, err_size);
    free(text);
    return rc;
}

/*  Whether `path` can be a directory the relay writes: an existing
    writable directory, or missing under one (any number of levels). */
static int
s_check_dir(const char *path, const char *what, char *err, size_t err_size)
{
    struct stat st;
    if (stat(path, &st) == 0) {
        if (!S_ISDIR(st.st_mode))
            return zmesh__relay_err(err, err_size,
                                    "%s: '%s' is not a directory", what, path);
        if (access(path, W_OK | X_OK) != 0)
            return zmesh__relay_err(err, err_size,
                                    "%s: directory '%s' is not writable", what,
                                    path);
        return 0;
    }
    if (errno == ENOTDIR)
        return zmesh__relay_err(
            err, err_size,
            "%s: '%s' cannot be made: part of the path is not a "
            "directory",
            what, path);
    if (errno != ENOENT)
        return zmesh__relay_err(err, err_size, "%s: cannot use '%s': %s", what,
                                path, strerror(errno));
    char parent[ZMESH__RELAY_PATH_MAX + 2];
    snprintf(parent, sizeof parent, "%s", path);
    for (int level = 0; level < ZMESH__RELAY_PATH_MAX; level++) {
        size_t n = strlen(parent);
        while (n > 1 && parent[n - 1] == '/')
            parent[--n] = '\0';
        char *slash = strrchr(parent, '/');
        if (!slash)
            strcpy(parent, ".");
        else if (slash == parent)
            parent[1] = '\0';
        else
            *slash = '\0';
        if (stat(parent, &st) == 0) {
            if (!S_ISDIR(st.st_mode))
                return zmesh__relay_err(
                    err, err_size,
                    "%s: '%s' cannot be made: '%s' is not a "
                    "directory",
                    what, path, parent);
            if (access(parent, W_OK | X_OK) != 0)
                return zmesh__relay_err(
                    err, err_size,
                    "%s: '%s' cannot be made: directory '%s' is "
                    "not writable",
                    what, path, parent);
            return 0;
        }
        if (errno != ENOENT)
            return zmesh__relay_err(err, err_size,
                                    "%s: '%s' cannot be made: %s", what, path,
                                    strerror(errno));
        if (strcmp(parent, ".") == 0 || strcmp(parent, "/") == 0)
            break;
    }
    return zmesh__relay_err(err, err_size, "%s: '%s' cannot be made", what,
                            path);
}

int
zmesh__relay_config_check(zmesh__relay_config_t *config, char *err,
                          size_t err_size)
{
    if (!config)
        return zmesh__relay_err(err, err_size, "invalid argument");
    for (size_t i = 0; i < config->pending_count; i++) {
        zmesh__relay_pending_t *p = &config->pending[i];
        zmesh__relay_stream_config_t *stream = s_stream_find(config, p->stream);
        if (!stream)
            return zmesh__relay_err(err, err_size,
                                    "%s: there is no stream '%s'", p->source,
                                    p->stream);
        int rc = s_limits_set(&stream->limits, p->key, p->value, p->source, err,
                              err_size);
        if (rc != 0)
            return rc;
    }
    if (!config->dir)
        return zmesh__relay_err(
            err, err_size, "no --dir given: say where the streams are stored");
    if (config->streams_count == 0)
        return zmesh__relay_err(
            err, err_size,
            "no stream given: add --stream NAME=PATTERN (or a "
            "[stream NAME] section in the --config file)");
    for (size_t i = 0; i < config->streams_count; i++)
        if (config->streams[i].patterns_count == 0)
            return zmesh__relay_err(
                err, err_size,
                "stream '%s' has no patterns: give 'patterns = ...' "
                "in its section",
                config->streams[i].name);
    bool needs_interface = config->discovery == ZMESH_DISCOVERY_LAN ||
                           config->discovery == ZMESH_DISCOVERY_MULTICAST;
    if (needs_interface && !config->interface_name)
        return zmesh__relay_err(
            err, err_size, "--discovery %s needs --interface",
            config->discovery == ZMESH_DISCOVERY_LAN ? "lan" : "multicast");
    if (config->interface_name && config->discovery == ZMESH_DISCOVERY_HOST)
        return zmesh__relay_err(
            err, err_size,
            "--interface applies to --discovery lan, multicast or "
            "none, not host");
    if (config->interface_name) {
        struct in_addr address;
        if (inet_pton(AF_INET, config->interface_name, &address) != 1 &&
            if_nametoindex(config->interface_name) == 0)
            return zmesh__relay_err(err, err_size,
                                    "--interface: there is no interface '%s'",
                                    config->interface_name);
    }
    int rc = s_check_dir(config->dir, "--dir", err, err_size);
    if (rc != 0)
        return rc;
    for (size_t i = 0; i < config->streams_count; i++) {
        char path[ZMESH__RELAY_PATH_MAX + ZMESH__RELAY_STREAM_NAME_MAX + 2];
        snprintf(path, sizeof path, "%s/%s", config->dir,
                 config->streams[i].name);
        char what[ZMESH__RELAY_STREAM_NAME_MAX + 16];
        snprintf(what, sizeof what, "stream '%s'", config->streams[i].name);
        rc = s_check_dir(path, what, err, err_size);
        if (rc != 0)
            return rc;
    }
    config->checked = true;
    return 0;
}

void
zmesh__relay_store_config(const zmesh__relay_config_t *config, size_t i,
                          zmesh__store_config_t *out)
{
    memset(out, 0, sizeof *out);
    const zmesh__relay_limits_t *own = &config->streams[i].limits;
    const zmesh__relay_limits_t *all = &config->defaults;
#define S_PICK(bit, field)                                                     \
    (own->set & (bit) ? own->field : all->set & (bit) ? all->field : 0)
    out->max_age_ms = S_PICK(ZMESH__RELAY_SET_MAX_AGE, max_age_ms);
    out->max_bytes = S_PICK(ZMESH__RELAY_SET_MAX_BYTES, max_bytes);
    out->max_events = S_PICK(ZMESH__RELAY_SET_MAX_EVENTS, max_events);
    out->segment_bytes = S_PICK(ZMESH__RELAY_SET_SEGMENT, segment_bytes);
    out->sync = S_PICK(ZMESH__RELAY_SET_SYNC, sync);
    out->sync_interval_ms = S_PICK(ZMESH__RELAY_SET_SYNC, sync_interval_ms);
#undef S_PICK
    // A stored frame is an event as big as the agent accepts, plus its
    // topic and meta.
    size_t max_msg = config->max_msg_size ? config->max_msg_size : 1048576;
    uint64_t record = (uint64_t)max_msg + ZMESH__FRAME_OVERHEAD;
    out->max_record = record > ZMESH__STORE_RECORD_MAX_DEFAULT
                          ? (uint32_t)record
                          : ZMESH__STORE_RECORD_MAX_DEFAULT;
}
