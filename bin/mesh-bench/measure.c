/*  measure.c - what mesh-bench's numbers are made of: a monotonic and a
    wall clock, payloads that are one msgpack object of an exact size
    (with room for the sequence number the repair benchmark counts by),
    medians and percentiles, and the per-run names and ports that keep a
    benchmark from hearing anybody else's agents. No sockets here.
*/
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

int64_t
mb_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
mb_wall_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t
mb_cpu_ns(void)
{
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0)
        return 0;
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000000 +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1000;
}

size_t
mb_payload_offset(size_t size)
{
    if (size <= 1)
        return 0;
    if (size - 2 <= 0xff)
        return 2;
    return size - 3 <= 0xffff ? 3 : 5;
}

void
mb_put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--) {
        p[i] = (uint8_t)v;
        v >>= 8;
    }
}

uint64_t
mb_get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

uint8_t *
mb_payload_new(size_t size)
{
    uint8_t *p = malloc(size ? size : 1);
    if (!p)
        return NULL;
    if (size <= 1) {
        p[0] = 0x01; /* positive fixint: the one 1-byte object not nil */
        return p;
    }
    /*  The encoded size is the header plus the data, so the header size
        depends on the data length: bin8 up to 2 + 255, bin16 from there
        (a bin16 holding 255 bytes for size 258 is valid msgpack, only not
        the shortest form), bin32 above 3 + 65535. */
    size_t hdr;
    size_t data;
    if (size - 2 <= 0xff) {
        hdr = 2;
        data = size - 2;
        p[0] = 0xc4;
        p[1] = (uint8_t)data;
    } else if (size - 3 <= 0xffff) {
        hdr = 3;
        data = size - 3;
        p[0] = 0xc5;
        p[1] = (uint8_t)(data >> 8);
        p[2] = (uint8_t)data;
    } else {
        hdr = 5;
        data = size - 5;
        p[0] = 0xc6;
        p[1] = (uint8_t)(data >> 24);
        p[2] = (uint8_t)(data >> 16);
        p[3] = (uint8_t)(data >> 8);
        p[4] = (uint8_t)data;
    }
    for (size_t i = 0; i < data; i++)
        p[hdr + i] = (uint8_t)('a' + i % 26);
    return p;
}

static int
s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

double
mb_median(double *values, size_t n)
{
    if (n == 0)
        return 0.0;
    qsort(values, n, sizeof *values, s_cmp_double);
    if (n % 2)
        return values[n / 2];
    return (values[n / 2 - 1] + values[n / 2]) / 2.0;
}

double
mb_percentile(double *values, size_t n, double p)
{
    if (n == 0)
        return 0.0;
    qsort(values, n, sizeof *values, s_cmp_double);
    /*  ceil() by hand: a tool should not need libm for one rounding. */
    double exact = p * (double)n;
    size_t rank = (size_t)exact;
    if ((double)rank < exact)
        rank++;
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return values[rank - 1];
}

int
mb_random_port(void)
{
    static int seeded;
    if (!seeded) {
        srand((unsigned)(getpid() ^ (pid_t)mb_now_ns()));
        seeded = 1;
    }
    return 20000 + rand() % 12000;
}

void
mb_mesh_name(char *buf, size_t cap)
{
    static unsigned counter;
    snprintf(buf, cap, "bench-%ld-%u", (long)getpid(), counter++);
}

int
mb_thr_deadline_s(long count)
{
    /*  Generous: a backstop against a wedged peer, not a timing. 20k msg/s
        is far below anything the mesh should do on loopback. */
    return 30 + (int)(count / 20000);
}

int
mb_lat_deadline_s(long count)
{
    return 30 + (int)((count + MB_LAT_WARMUP) / 500);
}
