/*  log.h - the library's internal logging, silent until the application
    installs a sink with zmesh_log_set(). */
#ifndef ZMESH_LOG_H_INCLUDED
#define ZMESH_LOG_H_INCLUDED

#include "zmesh.h"

#include <stdbool.h>
#include <stdint.h>

/*  True when a message at `level` would reach a sink; check it before
    building an expensive message. */
bool zmesh__log_enabled(zmesh_log_level_t level);

/*  Formats and passes one line to the sink, if any. Thread-safe. */
void zmesh__log(zmesh_log_level_t level, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/*  A rate limit for log lines about bytes from the network: at most one
    line per `interval_ms` per limiter; suppressed lines are counted and
    reported in the next line that gets through. Owned by whoever logs (one
    per kind of rejection), used from one thread. */
typedef struct {
    int64_t next_ms;
    uint64_t suppressed;
} zmesh__log_limit_t;

/*  Logs a warning through `limit`: " (N similar suppressed)" is appended
    when lines were held back. */
void zmesh__log_limited(zmesh__log_limit_t *limit, int interval_ms,
                        const char *format, ...)
    __attribute__((format(printf, 3, 4)));

#endif
