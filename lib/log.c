/*  log.c - the process-wide log sink and a rate limiter for lines about
    untrusted input. The library writes nothing anywhere on its own: until
    zmesh_log_set() installs a sink every call here returns after one load.
    Rate limiting matters because a peer sending garbage at line rate must
    not turn into a log flood that costs more than the garbage itself.
*/
#include "log.h"
#include "clock.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static zmesh_log_fn *s_sink;
static void *s_sink_arg;
static zmesh_log_level_t s_level = ZMESH_LOG_ERROR;

void
zmesh_log_set(zmesh_log_fn *sink, zmesh_log_level_t level, void *arg)
{
    s_sink = sink;
    s_sink_arg = arg;
    s_level = level;
}

void
zmesh_log_stderr(zmesh_log_level_t level, const char *message, void *arg)
{
    static const char *names[] = {"error", "warning", "notice", "info",
                                  "debug"};
    (void)arg;
    const char *name = (unsigned)level < 5 ? names[level] : "log";
    // One fprintf per line so lines from several threads do not interleave.
    fprintf(stderr, "zmesh: %s: %s\n", name, message);
}

bool
zmesh__log_enabled(zmesh_log_level_t level)
{
    return s_sink != NULL && level <= s_level;
}

__attribute__((format(printf, 2, 0))) static void
s_vlog(zmesh_log_level_t level, const char *format, va_list args,
       uint64_t suppressed)
{
    char line[1024];
    int n = vsnprintf(line, sizeof line, format, args);
    if (n >= 0 && suppressed > 0 && (size_t)n < sizeof line)
        snprintf(line + n, sizeof line - (size_t)n,
                 " (%llu similar suppressed)", (unsigned long long)suppressed);
    s_sink(level, line, s_sink_arg);
}

void
zmesh__log(zmesh_log_level_t level, const char *format, ...)
{
    if (!zmesh__log_enabled(level))
        return;
    va_list args;
    va_start(args, format);
    s_vlog(level, format, args, 0);
    va_end(args);
}

void
zmesh__log_limited(zmesh__log_limit_t *limit, int interval_ms,
                   const char *format, ...)
{
    if (!zmesh__log_enabled(ZMESH_LOG_WARNING))
        return;
    int64_t now = zmesh__clock_ms();
    if (now < limit->next_ms) {
        limit->suppressed++;
        return;
    }
    limit->next_ms = now + interval_ms;
    va_list args;
    va_start(args, format);
    s_vlog(ZMESH_LOG_WARNING, format, args, limit->suppressed);
    va_end(args);
    limit->suppressed = 0;
}
