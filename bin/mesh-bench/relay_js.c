/*  relay_js.c - the JetStream side of `mesh-bench relay`: nats-server -js
    with file storage on loopback, one server per sync policy (its sync
    setting is the server's, jetstream.sync_interval, 2.10 and later),
    and the same three rows as relay_mesh.c over the client in nats.c:
    publishes that wait for their PubAck (one in flight, then a window of
    256), and a durable pull consumer created afterwards that fetches and
    acknowledges (+ACK) everything the stream holds.
*/
#include "bench.h"
#include "nats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define S_START_TIMEOUT_MS 10000
#define S_ACK_TIMEOUT_MS 10000
#define S_API_TIMEOUT_MS 5000
/*  Pull requests of S_BATCH, at most two outstanding: up to 1000
    messages handed out and not acknowledged, like the mesh consumer's
    default max_ack_pending. */
#define S_BATCH 500
#define S_PULLS 2

static void
s_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

int
mb_nats_version(const char *nats_bin, const char *dir, mb_nats_version_t *v)
{
    memset(v, 0, sizeof *v);
    char log[4096];
    mb_path(log, sizeof log, "%s/nats-version.txt", dir);
    mb_server_t srv;
    char *argv[] = {(char *)nats_bin, "nats-server", "--version", NULL};
    if (mb_server_start(&srv, log, argv) < 0)
        return -1;
    for (int i = 0; i < 500 && mb_server_alive(&srv); i++)
        s_sleep_ms(10);
    mb_server_stop(&srv, 100);
    FILE *f = fopen(log, "r");
    if (!f)
        return -1;
    char line[256] = "";
    char *got = fgets(line, sizeof line, f);
    fclose(f);
    /*  "nats-server: v2.9.10" */
    char *p = got ? strstr(line, ": v") : NULL;
    if (!p || sscanf(p + 3, "%d.%d.%d", &v->major, &v->minor, &v->patch) != 3)
        return -1;
    v->sync_setting = v->major > 2 || (v->major == 2 && v->minor >= 10);
    return 0;
}

void
mb_nats_sync_for(const mb_nats_version_t *v, const char *policy, char *conf,
                 size_t conf_cap, char *label, size_t label_cap, int *same)
{
    conf[0] = '\0';
    *same = 0;
    if (!v->sync_setting) {
        /*  Before 2.10 the file store syncs on a fixed 2-minute timer
            (filestore.go, defaultSyncInterval) and nothing changes it. */
        snprintf(label, label_cap,
                 "syncs every 2 min (fixed before nats-server 2.10)");
        *same = strcmp(policy, "interval:120000") == 0;
        return;
    }
    if (strcmp(policy, "always") == 0) {
        snprintf(conf, conf_cap, "always");
        snprintf(label, label_cap, "sync_interval: always");
        *same = 1;
    } else if (strncmp(policy, "interval:", 9) == 0) {
        snprintf(conf, conf_cap, "\"%sms\"", policy + 9);
        snprintf(label, label_cap, "sync_interval: %sms", policy + 9);
        *same = 1;
    } else {
        snprintf(label, label_cap,
                 "sync_interval: 2m (its default; syncing cannot be off)");
    }
}

/*  The client port nats-server wrote to its ports file
    (--ports_file_dir): {"client":["nats://127.0.0.1:PORT"],...}. */
static int
s_read_port(const char *dir, pid_t pid)
{
    char path[4096];
    if (mb_path(path, sizeof path, "%s/nats-server_%ld.ports", dir, (long)pid) <
        0)
        return -1;
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    char buf[2048];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strstr(buf, "nats://127.0.0.1:");
    if (!p)
        return -1;
    int port = atoi(p + 17);
    return port > 0 && port < 65536 ? port : -1;
}

typedef struct {
    mb_server_t srv;
    nats_conn_t *conn;
    char stream[64];
    char subj[3][NATS_SUBJECT_MAX]; /* warm, one, win */
} s_js_t;

static int
s_start(s_js_t *js, const char *nats_bin, const char *dir,
        const mb_nats_version_t *v, const mb_relay_params_t *p)
{
    char sub[4096], conf[4096], log[4096], setting[32], label[96];
    int same;
    mb_path(sub, sizeof sub, "%s/nats-%s", dir, p->tag);
    if (mkdir(sub, 0700) < 0 && errno != EEXIST) {
        fprintf(stderr, "mesh-bench: mkdir %s: %s\n", sub, strerror(errno));
        return -1;
    }
    mb_nats_sync_for(v, p->policy, setting, sizeof setting, label, sizeof label,
                     &same);
    mb_path(conf, sizeof conf, "%s/server.conf", sub);
    FILE *f = fopen(conf, "w");
    if (!f) {
        fprintf(stderr, "mesh-bench: %s: %s\n", conf, strerror(errno));
        return -1;
    }
    fprintf(f, "jetstream {\n  store_dir: \"%s/store\"\n", sub);
    if (setting[0])
        fprintf(f, "  sync_interval: %s\n", setting);
    fprintf(f, "}\n");
    fclose(f);
    mb_path(log, sizeof log, "%s/nats.log", sub);
    char *argv[] = {(char *)nats_bin,
                    "nats-server",
                    "-c",
                    conf,
                    "-a",
                    "127.0.0.1",
                    "-p",
                    "-1",
                    "--ports_file_dir",
                    sub,
                    NULL};
    if (mb_server_start(&js->srv, log, argv) < 0)
        return -1;
    int port = -1;
    int64_t deadline = mb_now_ns() + (int64_t)S_START_TIMEOUT_MS * 1000000;
    while ((port = s_read_port(sub, js->srv.pid)) < 0 &&
           mb_now_ns() < deadline && mb_server_alive(&js->srv) &&
           !mb_relay_stopping())
        s_sleep_ms(10);
    if (port < 0) {
        fprintf(stderr, "mesh-bench: nats-server did not open its port\n");
        mb_server_log_tail(&js->srv, "nats-server");
        return -1;
    }
    char err[256];
    if (nats_connect(&js->conn, "127.0.0.1", port, S_START_TIMEOUT_MS, err,
                     sizeof err) < 0) {
        fprintf(stderr, "mesh-bench: nats 127.0.0.1:%d: %s\n", port, err);
        return -1;
    }
    snprintf(js->stream, sizeof js->stream, "bench-%s", p->tag);
    static const char *last[3] = {"warm", "one", "win"};
    for (int i = 0; i < 3; i++)
        snprintf(js->subj[i], sizeof js->subj[i], "bench.relay.%s.%s", p->tag,
                 last[i]);
    char api[256], body[512], reply[2048];
    snprintf(api, sizeof api, "$JS.API.STREAM.CREATE.%s", js->stream);
    snprintf(body, sizeof body,
             "{\"name\":\"%s\",\"subjects\":[\"bench.relay.%s.>\"],"
             "\"storage\":\"file\",\"num_replicas\":1}",
             js->stream, p->tag);
    if (js_request(js->conn, api, body, S_API_TIMEOUT_MS, reply, sizeof reply) <
        0) {
        fprintf(stderr, "mesh-bench: JetStream stream create: %s\n", reply);
        return -1;
    }
    if (p->verbose)
        fprintf(stderr, "mesh-bench: nats-server %s on 127.0.0.1:%d, %s\n",
                nats_server_version(js->conn), port, label);
    return 0;
}

static void
s_stop(s_js_t *js)
{
    nats_close(&js->conn);
    mb_server_stop(&js->srv, 5000);
}

/*  Publishes until `count` were acknowledged (or the row's time is up),
    with at most `window` waiting for their PubAck. */
static int
s_publish(s_js_t *js, const char *subject, const uint8_t *payload, size_t size,
          long count, int window, int limit_s, char tag, mb_relay_row_t *row)
{
    nats_conn_t *c = js->conn;
    char prefix[NATS_SUBJECT_MAX], reply[NATS_SUBJECT_MAX];
    snprintf(prefix, sizeof prefix, "%s.%c", nats_inbox(c), tag);
    size_t plen = strlen(prefix);
    long sent = 0, inflight = 0;
    int64_t t0 = mb_now_ns();
    int64_t stop_at = t0 + (int64_t)limit_s * 1000000000;
    int64_t last = t0;
    memset(row, 0, sizeof *row);
    while (sent < count || inflight > 0) {
        while (inflight < window && sent < count && !row->capped) {
            int n = snprintf(reply, sizeof reply, "%s%ld", prefix, sent);
            if (n < 0 || (size_t)n >= sizeof reply) {
                fprintf(stderr, "mesh-bench: nats inbox name too long\n");
                return -1;
            }
            if (nats_pub(c, subject, reply, payload, size) < 0) {
                fprintf(stderr, "mesh-bench: nats publish: %s\n",
                        nats_error(c));
                return -1;
            }
            sent++;
            inflight++;
        }
        if (inflight == 0)
            break;
        nats_msg_t m;
        int got = nats_next(c, S_ACK_TIMEOUT_MS, &m);
        if (got == NATS_ERROR) {
            fprintf(stderr, "mesh-bench: nats: %s\n", nats_error(c));
            return -1;
        }
        if (got == NATS_TIMEOUT) {
            /*  What is still out counts as not confirmed. */
            row->failed += inflight;
            break;
        }
        if (got != NATS_MSG || strncmp(m.subject, prefix, plen) != 0)
            continue;
        inflight--;
        last = mb_relay_row_outcome(row, js_puback_seq(m.data, m.len) > 0, sent,
                                    &count, stop_at);
    }
    mb_relay_row_done(row, t0, last);
    return 0;
}

/*  The delivered count in a JetStream ack subject:
    $JS.ACK.<stream>.<consumer>.<delivered>.<sseq>.<cseq>.<ts>.<pending>
    (9 tokens), or with domain and account hash after $JS.ACK (11 or
    12). 0 when it is neither. */
static unsigned long
s_delivered(const char *reply)
{
    const char *tok[16];
    int n = 0;
    tok[n++] = reply;
    for (const char *p = reply; *p && n < 16; p++)
        if (*p == '.')
            tok[n++] = p + 1;
    if (strncmp(reply, "$JS.ACK.", 8) != 0)
        return 0;
    int at = n == 9 ? 4 : n >= 11 ? 6 : -1;
    return at < 0 ? 0 : strtoul(tok[at], NULL, 10);
}

static int
s_catchup(s_js_t *js, const mb_relay_params_t *p, long expected,
          mb_relay_row_t *row)
{
    nats_conn_t *c = js->conn;
    memset(row, 0, sizeof *row);
    char api[256], body[512], reply[2048], pull_subj[256], inbox[256];
    const char *consumer = "catchup";
    int64_t t0 = mb_now_ns();
    int64_t stop_at = t0 + (int64_t)p->row_limit_s * 1000000000;
    snprintf(api, sizeof api, "$JS.API.CONSUMER.DURABLE.CREATE.%s.%s",
             js->stream, consumer);
    snprintf(body, sizeof body,
             "{\"stream_name\":\"%s\",\"config\":{\"durable_name\":\"%s\","
             "\"deliver_policy\":\"all\",\"ack_policy\":\"explicit\","
             "\"ack_wait\":30000000000,\"max_ack_pending\":1000}}",
             js->stream, consumer);
    if (js_request(c, api, body, S_API_TIMEOUT_MS, reply, sizeof reply) < 0) {
        fprintf(stderr, "mesh-bench: JetStream consumer create: %s\n", reply);
        return -1;
    }
    snprintf(pull_subj, sizeof pull_subj, "$JS.API.CONSUMER.MSG.NEXT.%s.%s",
             js->stream, consumer);
    snprintf(inbox, sizeof inbox, "%s.pull", nats_inbox(c));
    snprintf(body, sizeof body, "{\"batch\":%d,\"expires\":2000000000}",
             S_BATCH);
    long asked = 0; /* handed out by live pulls and not received yet */
    int64_t last = t0;
    int empty = 0; /* pulls that ended with nothing since the last message */
    while (row->events < expected) {
        if (mb_now_ns() > stop_at || mb_relay_stopping()) {
            row->capped = 1;
            break;
        }
        /*  Two pulls in a row expired with nothing: the stream has no
            more for this consumer. */
        if (empty >= S_PULLS + 1)
            break;
        while (asked + S_BATCH <= (long)S_BATCH * S_PULLS) {
            if (nats_pub(c, pull_subj, inbox, body, strlen(body)) < 0) {
                fprintf(stderr, "mesh-bench: nats pull: %s\n", nats_error(c));
                return -1;
            }
            asked += S_BATCH;
        }
        nats_msg_t m;
        int got = nats_next(c, S_ACK_TIMEOUT_MS, &m);
        if (got == NATS_ERROR) {
            fprintf(stderr, "mesh-bench: nats: %s\n", nats_error(c));
            return -1;
        }
        if (got == NATS_TIMEOUT)
            break;
        if (got != NATS_MSG || m.sid != NATS_INBOX_SID)
            continue;
        /*  Deliveries keep their own subject and come with an ack
            subject to reply to; the pull's end is a status message on
            the pull's inbox. */
        int delivery = m.status == 0 && strncmp(m.reply, "$JS.ACK.", 8) == 0;
        if (!delivery && strcmp(m.subject, inbox) != 0)
            continue;
        if (!delivery) {
            /*  404 no messages, 408 request expired, 409: the pull is
                over, whatever it still had to give. */
            if (p->verbose > 1)
                fprintf(stderr, "mesh-bench: JetStream pull: %.*s\n",
                        (int)m.hdr_len, (const char *)m.hdr);
            asked = 0;
            empty++;
            continue;
        }
        empty = 0;
        asked--;
        unsigned long delivered = s_delivered(m.reply);
        if (nats_pub(c, m.reply, NULL, "+ACK", 4) < 0) {
            fprintf(stderr, "mesh-bench: nats ack: %s\n", nats_error(c));
            return -1;
        }
        if (delivered == 1)
            row->events++;
        last = mb_now_ns();
    }
    if (row->events < expected && !row->capped)
        row->failed = expected - row->events;
    if (nats_flush(c) < 0)
        return -1;
    last = mb_now_ns();
    mb_relay_row_done(row, t0, last);
    return 0;
}

int
mb_relay_js_rows(const char *nats_bin, const char *dir,
                 const mb_nats_version_t *v, const mb_relay_params_t *p,
                 mb_relay_row_t rows[MB_ROWS])
{
    s_js_t js;
    memset(&js, 0, sizeof js);
    int rc = -1;
    uint8_t *payload = mb_payload_new(p->size);
    mb_relay_row_t warm;
    if (!payload || s_start(&js, nats_bin, dir, v, p) < 0)
        goto done;
    if (s_publish(&js, js.subj[0], payload, p->size, MB_RELAY_WARMUP, 1,
                  p->row_limit_s, 'x', &warm) < 0 ||
        s_publish(&js, js.subj[1], payload, p->size, p->count, 1,
                  p->row_limit_s, 'a', &rows[MB_ROW_ONE]) < 0 ||
        s_publish(&js, js.subj[2], payload, p->size, p->count, MB_RELAY_WINDOW,
                  p->row_limit_s, 'w', &rows[MB_ROW_WINDOW]) < 0)
        goto done;
    long stored =
        warm.events + rows[MB_ROW_ONE].events + rows[MB_ROW_WINDOW].events;
    if (p->verbose)
        fprintf(stderr,
                "mesh-bench: JetStream %s: warm-up %ld, 1 in flight %ld (%ld "
                "failed), window %ld (%ld failed)\n",
                p->policy, warm.events, rows[MB_ROW_ONE].events,
                rows[MB_ROW_ONE].failed, rows[MB_ROW_WINDOW].events,
                rows[MB_ROW_WINDOW].failed);
    if (s_catchup(&js, p, stored, &rows[MB_ROW_CATCHUP]) < 0)
        goto done;
    if (p->verbose)
        fprintf(stderr,
                "mesh-bench: JetStream %s: %ld + %ld confirmed, %ld of %ld "
                "consumed\n",
                p->policy, rows[MB_ROW_ONE].events, rows[MB_ROW_WINDOW].events,
                rows[MB_ROW_CATCHUP].events, stored);
    rc = 0;
done:
    if (rc < 0 && js.srv.pid > 0)
        mb_server_log_tail(&js.srv, "nats-server");
    s_stop(&js);
    free(payload);
    return rc;
}
