/*  clock.h - the two clocks the library reads: a monotonic one for every
    timeout, interval and deadline (never affected by the wall clock being
    set), and the wall clock for event timestamps, which travel to other
    hosts. Inline: the data path reads them per event or per wait. */
#ifndef ZMESH_CLOCK_H_INCLUDED
#define ZMESH_CLOCK_H_INCLUDED

#include <stdint.h>
#include <time.h>

/*  Milliseconds on the monotonic clock. */
static inline int64_t
zmesh__clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*  Microseconds since the Unix epoch on the wall clock. */
static inline int64_t
zmesh__wall_clock_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

#endif
