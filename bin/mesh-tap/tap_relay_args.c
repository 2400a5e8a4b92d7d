/*  tap_relay_args.c - what mesh-tap's relay commands take from the command
    line and check before they join the mesh: stream and consumer names
    (proto/relay.md#terms, #durable-consumers) and times, as RFC 3339 or
    as a duration ago. read --since, sub --start time:... and the
    consumers listing share them, so they accept the same text. Pure
    syntax; nothing here touches the network.
*/
#include "tap_relay_args.h"

#include "tap_output.h"

#include <ctype.h>
#include <string.h>

/*  Days from 1970-01-01 to y-m-d (proleptic Gregorian), after Howard
    Hinnant's days_from_civil: timegm is not POSIX. */
static int64_t
s_days_from_civil(int64_t y, unsigned m, unsigned d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/*  Exactly `n` digits at *p. */
static bool
s_fixed(const char **p, int n, unsigned *out)
{
    unsigned value = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i]))
            return false;
        value = value * 10 + (unsigned)((*p)[i] - '0');
    }
    *p += n;
    *out = value;
    return true;
}

/*  RFC 3339: 2026-11-23T17:00:00Z, with optional fraction and offset. */
static bool
s_parse_rfc3339(const char *text, int64_t *us)
{
    const char *p = text;
    unsigned year, month, day, hour, minute, second;
    if (!s_fixed(&p, 4, &year) || *p++ != '-' || !s_fixed(&p, 2, &month) ||
        *p++ != '-' || !s_fixed(&p, 2, &day) ||
        (*p != 'T' && *p != 't' && *p != ' '))
        return false;
    p++;
    if (!s_fixed(&p, 2, &hour) || *p++ != ':' || !s_fixed(&p, 2, &minute) ||
        *p++ != ':' || !s_fixed(&p, 2, &second))
        return false;
    int64_t fraction = 0;
    if (*p == '.') {
        p++;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (digits < 6) {
                fraction = fraction * 10 + (*p - '0');
                digits++;
            }
            p++;
        }
        if (digits == 0)
            return false;
        for (; digits < 6; digits++)
            fraction *= 10;
    }
    int64_t offset_s = 0;
    if (*p == 'Z' || *p == 'z')
        p++;
    else if (*p == '+' || *p == '-') {
        int sign = *p++ == '-' ? -1 : 1;
        unsigned oh, om;
        if (!s_fixed(&p, 2, &oh) || *p++ != ':' || !s_fixed(&p, 2, &om) ||
            oh > 23 || om > 59)
            return false;
        offset_s = sign * (int64_t)(oh * 3600 + om * 60);
    } else
        return false;
    if (*p || month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 ||
        minute > 59 || second > 60)
        return false;
    int64_t days = s_days_from_civil(year, month, day);
    int64_t seconds =
        days * 86400 + hour * 3600 + minute * 60 + second - offset_s;
    *us = seconds * 1000000 + fraction;
    return true;
}

/*  A duration such as 30s, 5m, 2h, 1h30m, 7d, 500ms, in microseconds. */
static bool
s_parse_ago(const char *text, int64_t *us)
{
    static const struct {
        const char *unit;
        int64_t us;
    } units[] = {{"ms", 1000},         {"s", 1000000},
                 {"m", 60000000},      {"h", 3600000000LL},
                 {"d", 86400000000LL}, {"w", 604800000000LL}};
    const int64_t max = 100LL * 365 * 86400000000LL;
    const char *p = text;
    int64_t total = 0;
    if (!*p)
        return false;
    while (*p) {
        int64_t number = 0;
        int digits = 0;
        while (isdigit((unsigned char)*p)) {
            if (++digits > 12)
                return false;
            number = number * 10 + (*p++ - '0');
        }
        if (digits == 0)
            return false;
        size_t best = 0, best_len = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
            size_t len = strlen(units[i].unit);
            if (strncmp(p, units[i].unit, len) == 0 && len > best_len &&
                !islower((unsigned char)p[len])) {
                best = i;
                best_len = len;
            }
        }
        if (best_len == 0 || number > max / units[best].us)
            return false;
        total += number * units[best].us;
        if (total > max)
            return false;
        p += best_len;
    }
    *us = total;
    return true;
}

bool
tap_parse_time(const char *text, int64_t *us)
{
    if (s_parse_rfc3339(text, us))
        return true;
    int64_t ago;
    if (!s_parse_ago(text, &ago))
        return false;
    *us = tap_now_us() - ago;
    return true;
}

/*  1..64 bytes, each a letter, a digit or one of `extra`. */
static bool
s_name_ok(const char *name, const char *extra)
{
    size_t n = strlen(name);
    if (n < 1 || n > 64)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && !strchr(extra, name[i]))
            return false;
    return true;
}

bool
tap_stream_name_ok(const char *name)
{
    return s_name_ok(name, "_-");
}

bool
tap_consumer_name_ok(const char *name)
{
    return s_name_ok(name, "_.-");
}
