/*  reliability.c - mesh-bench's `rr` and `repair`: what requests and gap
    repair cost, each beside raw libzmq measured in the same run. It
    orders the runs (alternating the paths, the order rotating each run),
    pools or takes the medians of what they measured and prints one table
    or one JSON line per size. The runs themselves are in raw.c, mesh.c
    and loss.c. Like the rest of mesh-bench it judges nothing.
*/
#include "bench.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*  One JSON object built field by field: the repair line has too many
    fields for one readable printf. */
typedef struct {
    char buf[4096];
    size_t len;
} s_json_t;

static void
s_jraw(s_json_t *j, const char *key, const char *value)
{
    if (j->len >= sizeof j->buf)
        return;
    int n = snprintf(j->buf + j->len, sizeof j->buf - j->len, "%s\"%s\":%s",
                     j->len ? "," : "", key, value);
    if (n > 0)
        j->len += (size_t)n;
}

static void
s_jnum(s_json_t *j, const char *key, int have, int decimals, double v)
{
    char num[64];
    s_jraw(j, key, mb_jnum(have, decimals, v, num, sizeof num));
}

static void
s_jstr(s_json_t *j, const char *key, const char *value)
{
    char quoted[128];
    snprintf(quoted, sizeof quoted, "\"%s\"", value);
    s_jraw(j, key, quoted);
}

/* ------------------------------------------------------------------------ */
/*  rr: request/reply round trips */

/*  A round trip on loopback this long waited on something other than the
    machine: counted apart, since a percentile would hide how many. */
#define S_SLOW_US 50000.0

int
mb_cmd_rr(const mb_opts_t *o)
{
    long count = o->count ? o->count : 3000;
    int runs = o->runs ? o->runs : 10;
    int paths = (o->paths ? o->paths : MB_RR_PATHS) & MB_RR_PATHS;
    int have[2] = {(paths & MB_PATH(MB_RAW)) != 0,
                   (paths & MB_PATH(MB_MESH)) != 0};
    size_t total = (size_t)count * (size_t)runs;
    double *samples[2] = {NULL, NULL};
    long replies = 0;
    int rc = -1;
    for (int p = 0; p < 2; p++) {
        samples[p] = have[p] ? malloc(total * sizeof(double)) : NULL;
        if (have[p] && !samples[p]) {
            fprintf(stderr, "mesh-bench: out of memory for %zu samples\n",
                    total);
            goto done;
        }
    }
    for (int r = 0; r < runs; r++) {
        for (int k = 0; k < 2; k++) {
            int p = (r + k) % 2;
            if (!have[p])
                continue;
            double *into = samples[p] + (size_t)r * (size_t)count;
            long got = 0;
            int res =
                p == MB_MESH
                    ? mb_mesh_rr_run(o->size, count, o->verbose, into, &got)
                    : mb_raw_lat_run(o->size, count, o->verbose, into);
            if (res < 0) {
                fprintf(stderr, "mesh-bench: rr %zu B, run %d, %s failed\n",
                        o->size, r + 1, p == MB_MESH ? "mesh" : "raw");
                goto done;
            }
            replies += got;
            if (o->verbose)
                fprintf(stderr,
                        "mesh-bench: rr %zu B run %d %-4s p50 %.1f us\n",
                        o->size, r + 1, p == MB_MESH ? "mesh" : "raw",
                        mb_median(into, (size_t)count));
        }
    }
    /*  One request outstanding, so requests per second is the inverse of
        the mean round trip: the time between requests is all waiting. */
    double pct[2][3] = {{0}}, per_s[2] = {0, 0};
    long slow[2] = {0, 0};
    static const double ps[3] = {0.50, 0.99, 0.999};
    for (int p = 0; p < 2; p++) {
        if (!have[p])
            continue;
        double sum_us = 0;
        for (size_t i = 0; i < total; i++) {
            sum_us += samples[p][i];
            slow[p] += samples[p][i] > S_SLOW_US;
        }
        per_s[p] = sum_us > 0 ? (double)total * 1e6 / sum_us : 0.0;
        for (int q = 0; q < 3; q++)
            pct[p][q] = mb_percentile(samples[p], total, ps[q]);
    }
    int both = have[0] && have[1] && pct[0][0] > 0 && per_s[0] > 0;
    double ratio = both ? pct[1][0] / pct[0][0] : 0.0;
    double ratio_rate = both ? per_s[1] / per_s[0] : 0.0;
    if (o->json) {
        char b[14][32];
        printf("{\"bench\":\"rr\",\"size\":%zu,\"count\":%ld,\"runs\":%d,"
               "\"requests\":%s,\"replies\":%s,"
               "\"mesh_p50_us\":%s,\"mesh_p99_us\":%s,\"mesh_p999_us\":%s,"
               "\"mesh_req_per_s\":%s,"
               "\"raw_p50_us\":%s,\"raw_p99_us\":%s,\"raw_p999_us\":%s,"
               "\"raw_req_per_s\":%s,\"ratio_p50\":%s,"
               "\"ratio_req_per_s\":%s,\"mesh_over_50ms\":%s,"
               "\"raw_over_50ms\":%s}\n",
               o->size, count, runs,
               mb_jnum(have[1], 0, (double)total, b[0], 32),
               mb_jnum(have[1], 0, (double)replies, b[1], 32),
               mb_jnum(have[1], 1, pct[1][0], b[2], 32),
               mb_jnum(have[1], 1, pct[1][1], b[3], 32),
               mb_jnum(have[1], 1, pct[1][2], b[4], 32),
               mb_jnum(have[1], 0, per_s[1], b[5], 32),
               mb_jnum(have[0], 1, pct[0][0], b[6], 32),
               mb_jnum(have[0], 1, pct[0][1], b[7], 32),
               mb_jnum(have[0], 1, pct[0][2], b[8], 32),
               mb_jnum(have[0], 0, per_s[0], b[9], 32),
               mb_jnum(both, 3, ratio, b[10], 32),
               mb_jnum(both, 3, ratio_rate, b[11], 32),
               mb_jnum(have[1], 0, (double)slow[1], b[12], 32),
               mb_jnum(have[0], 0, (double)slow[0], b[13], 32));
    } else {
        printf("rr %zu B, %ld requests x %d runs, one outstanding (us)\n",
               o->size, count, runs);
        static const char *labels[2] = {"raw DEALER/ROUTER",
                                        "mesh request/reply"};
        for (int p = 0; p < 2; p++) {
            if (!have[p])
                continue;
            char num[40];
            printf("  %-20s p50 %8.1f  p99 %8.1f  p99.9 %8.1f  %8s req/s",
                   labels[p], pct[p][0], pct[p][1], pct[p][2],
                   mb_grouped(per_s[p], num, sizeof num));
            if (p == MB_MESH && both)
                printf("  mesh/raw p50 %.2f, req/s %.2f", ratio, ratio_rate);
            printf("\n");
        }
        if (have[1])
            printf("  mesh: %ld requests, %ld replies\n", (long)total, replies);
        printf("  round trips over 50 ms:");
        for (int p = 0; p < 2; p++)
            if (have[p])
                printf(" %s %ld", p == MB_MESH ? "mesh" : "raw", slow[p]);
        printf("\n");
    }
    fflush(stdout);
    rc = 0;
done:
    free(samples[0]);
    free(samples[1]);
    return rc;
}

/* ------------------------------------------------------------------------ */
/*  repair: what a subscriber that falls behind gets */

long
mb_repair_default_count(size_t size)
{
    /*  One second of events at the default rate, and at most about 48 MB
        of frames per run, so the publisher's buffer (which holds the run)
        stays well within memory and the subscriber's repairs mostly
        within the 32 MiB the library holds while repairing. */
    long c = (long)(48000000.0 / (double)(size + 64));
    if (c > 100000)
        c = 100000;
    if (c < 1000)
        c = 1000;
    return c;
}

/*  Unless told otherwise, a buffer that holds every frame of the run
    (the frame adds at most 64 bytes to the payload here), so the
    benchmark measures repair rather than the buffer's size; --retransmit
    shows what a smaller one does. */
static long long
s_repair_retransmit(const mb_opts_t *o, long count)
{
    if (o->retransmit >= 0)
        return o->retransmit;
    long long bytes = (long long)count * (long long)(o->size + 64);
    return bytes < 1048576 ? 1048576 : bytes;
}

#define S_REPAIR_STALL_MS 200
#define S_REPAIR_RATE 100000

typedef struct {
    long live, repaired, gaps, missing, unaccounted, out_of_order;
    uint64_t requests, timeouts, resent;
    double rate[100];
    double *delays, *pauses;
    size_t delays_n, pauses_n;
} s_loss_total_t;

static int
s_append(double **to, size_t *n, const double *from, size_t more)
{
    if (!more)
        return 0;
    double *grown = realloc(*to, (*n + more) * sizeof *grown);
    if (!grown)
        return -1;
    memcpy(grown + *n, from, more * sizeof *grown);
    *to = grown;
    *n += more;
    return 0;
}

static int
s_loss_add(s_loss_total_t *t, int run, const mb_loss_run_t *res)
{
    t->live += res->live;
    t->repaired += res->repaired;
    t->gaps += res->gaps;
    t->missing += res->missing;
    t->unaccounted += res->unaccounted;
    t->out_of_order += res->out_of_order;
    t->requests += res->repair_requests;
    t->timeouts += res->repair_timeouts;
    t->resent += res->events_resent;
    t->rate[run] = res->per_s;
    if (s_append(&t->delays, &t->delays_n, res->delays_us, res->delays_n) < 0 ||
        s_append(&t->pauses, &t->pauses_n, res->pauses_us, res->pauses_n) < 0)
        return -1;
    return 0;
}

int
mb_cmd_repair(const mb_opts_t *o)
{
    long count = o->count ? o->count : mb_repair_default_count(o->size);
    int runs = o->runs ? o->runs : 3;
    int stall = o->stall_ms >= 0 ? o->stall_ms : S_REPAIR_STALL_MS;
    int paths = (o->paths ? o->paths : MB_REPAIR_PATHS) & MB_REPAIR_PATHS;
    static const int list[3] = {MB_RAW, MB_MESH, MB_NOREPAIR};
    static const char *names[3] = {"raw", "mesh", "norepair"};
    long long retransmit = s_repair_retransmit(o, count);
    const mb_mesh_cfg_t on = {retransmit, -1, 0};
    const mb_mesh_cfg_t off = MB_MESH_NO_REPAIR;
    long rate = o->rate >= 0 ? o->rate : S_REPAIR_RATE;
    const mb_loss_params_t lp = {.size = o->size,
                                 .count = count,
                                 .stall_ms = stall,
                                 .rate = rate,
                                 .hwm = o->hwm,
                                 .verbose = o->verbose};
    s_loss_total_t tot[3];
    memset(tot, 0, sizeof tot);
    int have[3];
    int rc = -1;
    for (int i = 0; i < 3; i++)
        have[i] = (paths & MB_PATH(list[i])) != 0;
    for (int r = 0; r < runs; r++) {
        for (int k = 0; k < 3; k++) {
            int i = (r + k) % 3;
            if (!have[i])
                continue;
            mb_loss_run_t res;
            int got = list[i] == MB_RAW
                          ? mb_loss_raw_run(&lp, &res)
                          : mb_loss_mesh_run(
                                &lp, list[i] == MB_MESH ? &on : &off, &res);
            if (got < 0) {
                fprintf(stderr, "mesh-bench: repair %zu B, run %d, %s failed\n",
                        o->size, r + 1, names[i]);
                mb_loss_run_free(&res);
                goto done;
            }
            if (o->verbose)
                fprintf(stderr,
                        "mesh-bench: repair %zu B run %d %-8s live %ld "
                        "repaired %ld gaps %ld (%ld events) unaccounted "
                        "%ld, %.0f delivered/s over %.3f s, NAKs %llu, "
                        "resent %llu\n",
                        o->size, r + 1, names[i], res.live, res.repaired,
                        res.gaps, res.missing, res.unaccounted, res.per_s,
                        res.elapsed_s, (unsigned long long)res.repair_requests,
                        (unsigned long long)res.events_resent);
            got = s_loss_add(&tot[i], r, &res);
            mb_loss_run_free(&res);
            if (got < 0) {
                fprintf(stderr, "mesh-bench: out of memory for samples\n");
                goto done;
            }
        }
    }
    long published = count * runs;
    double med[3] = {0, 0, 0}, ratio[3] = {0, 0, 0};
    for (int i = 0; i < 3; i++)
        if (have[i])
            med[i] = mb_median(tot[i].rate, (size_t)runs);
    for (int i = 1; i < 3; i++)
        if (have[i] && have[0] && med[0] > 0)
            ratio[i] = med[i] / med[0];
    s_loss_total_t *m = &tot[1];
    int delays = have[1] && m->delays_n > 0;
    int pauses = have[1] && m->pauses_n > 0;
    double d50 = delays ? mb_percentile(m->delays, m->delays_n, 0.5) : 0;
    double d99 = delays ? mb_percentile(m->delays, m->delays_n, 0.99) : 0;
    double p50 = pauses ? mb_percentile(m->pauses, m->pauses_n, 0.5) : 0;
    double p99 = pauses ? mb_percentile(m->pauses, m->pauses_n, 0.99) : 0;
    if (o->json) {
        s_json_t j = {.len = 0};
        s_jstr(&j, "bench", "repair");
        s_jnum(&j, "size", 1, 0, (double)o->size);
        s_jnum(&j, "count", 1, 0, (double)count);
        s_jnum(&j, "runs", 1, 0, runs);
        s_jnum(&j, "hwm", 1, 0, o->hwm);
        s_jnum(&j, "stall_ms", 1, 0, stall);
        s_jnum(&j, "rate", 1, 0, (double)rate);
        s_jnum(&j, "retransmit_bytes", 1, 0, (double)retransmit);
        s_jnum(&j, "published", 1, 0, (double)published);
        s_jnum(&j, "raw_received", have[0], 0, (double)tot[0].live);
        s_jnum(&j, "raw_lost", have[0], 0, (double)tot[0].missing);
        s_jnum(&j, "raw_gaps", have[0], 0, (double)tot[0].gaps);
        s_jnum(&j, "raw_delivered_per_s", have[0], 0, med[0]);
        s_jnum(&j, "mesh_live", have[1], 0, (double)m->live);
        s_jnum(&j, "mesh_repaired", have[1], 0, (double)m->repaired);
        s_jnum(&j, "mesh_gaps", have[1], 0, (double)m->gaps);
        s_jnum(&j, "mesh_missing", have[1], 0, (double)m->missing);
        s_jnum(&j, "mesh_unaccounted", have[1], 0, (double)m->unaccounted);
        s_jnum(&j, "mesh_delivered_per_s", have[1], 0, med[1]);
        s_jnum(&j, "ratio", have[1] && have[0], 3, ratio[1]);
        s_jnum(&j, "mesh_repair_requests", have[1], 0, (double)m->requests);
        s_jnum(&j, "mesh_events_resent", have[1], 0, (double)m->resent);
        s_jnum(&j, "mesh_repair_timeouts", have[1], 0, (double)m->timeouts);
        s_jnum(&j, "mesh_repair_delay_p50_us", delays, 0, d50);
        s_jnum(&j, "mesh_repair_delay_p99_us", delays, 0, d99);
        s_jnum(&j, "mesh_repair_pause_p50_us", pauses, 0, p50);
        s_jnum(&j, "mesh_repair_pause_p99_us", pauses, 0, p99);
        s_jnum(&j, "norepair_live", have[2], 0, (double)tot[2].live);
        s_jnum(&j, "norepair_gaps", have[2], 0, (double)tot[2].gaps);
        s_jnum(&j, "norepair_missing", have[2], 0, (double)tot[2].missing);
        s_jnum(&j, "norepair_unaccounted", have[2], 0,
               (double)tot[2].unaccounted);
        s_jnum(&j, "norepair_delivered_per_s", have[2], 0, med[2]);
        s_jnum(&j, "ratio_norepair", have[2] && have[0], 3, ratio[2]);
        s_jnum(&j, "raw_out_of_order", have[0], 0, (double)tot[0].out_of_order);
        s_jnum(&j, "mesh_out_of_order", have[1], 0, (double)m->out_of_order);
        s_jnum(&j, "norepair_out_of_order", have[2], 0,
               (double)tot[2].out_of_order);
        printf("{%s}\n", j.buf);
    } else {
        char g[6][40];
        printf("repair %zu B, %s events x %d runs, HWM %d, the subscriber "
               "sleeps %d ms after the first event\n",
               o->size, mb_grouped((double)count, g[0], 40), runs, o->hwm,
               stall);
        printf(
            "  (retransmit buffer %s B, the library's repair timeout; counts "
            "are totals of %s published, rates medians)\n",
            mb_grouped((double)retransmit, g[0], 40),
            mb_grouped((double)published, g[1], 40));
        printf("  %-18s %10s %10s %10s %10s %10s %12s %6s\n", "path", "live",
               "repaired", "in gaps", "gap events", "silent", "delivered/s",
               "/raw");
        static const char *labels[3] = {"raw libzmq PUB/SUB", "mesh, repair on",
                                        "mesh, repair off"};
        for (int i = 0; i < 3; i++) {
            if (!have[i])
                continue;
            s_loss_total_t *t = &tot[i];
            /*  Raw's losses are silent: nobody but this benchmark, which
                numbers its payloads, knows of them. */
            long silent = i == 0 ? t->missing : t->unaccounted;
            printf("  %-18s %10s %10s %10s %10s %10s %12s", labels[i],
                   mb_grouped((double)t->live, g[0], 40),
                   i == 0 ? "-" : mb_grouped((double)t->repaired, g[1], 40),
                   i == 0 ? "-" : mb_grouped((double)t->missing, g[2], 40),
                   i == 0 ? "-" : mb_grouped((double)t->gaps, g[3], 40),
                   mb_grouped((double)silent, g[4], 40),
                   mb_grouped(med[i], g[5], 40));
            if (i > 0 && have[0])
                printf(" %6.2f", ratio[i]);
            printf("\n");
        }
        for (int i = 0; i < 3; i++)
            if (have[i] && tot[i].out_of_order)
                printf("  %s: %ld events came twice or out of order (not "
                       "counted above)\n",
                       labels[i], tot[i].out_of_order);
        if (have[1]) {
            printf("  repair on: %llu NAKs, %llu events sent again, %llu "
                   "repairs timed out\n",
                   (unsigned long long)m->requests,
                   (unsigned long long)m->resent,
                   (unsigned long long)m->timeouts);
            if (delays)
                printf("  repaired events, delivery - publish: p50 %.1f ms, "
                       "p99 %.1f ms (includes the %d ms sleep)\n",
                       d50 / 1000, d99 / 1000, stall);
            if (pauses)
                printf("  pause in delivery before a repaired run: p50 %.2f "
                       "ms, p99 %.2f ms (%zu runs)\n",
                       p50 / 1000, p99 / 1000, m->pauses_n);
        }
    }
    fflush(stdout);
    rc = 0;
done:
    for (int i = 0; i < 3; i++) {
        free(tot[i].delays);
        free(tot[i].pauses);
    }
    return rc;
}
