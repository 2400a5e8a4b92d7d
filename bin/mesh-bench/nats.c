/*  nats.c - a minimal NATS protocol client and the JetStream calls of
    `mesh-bench relay` (see nats.h). The protocol is the documented text
    protocol (https://docs.nats.io/reference/reference-protocols/nats-protocol):
    control lines end in CRLF, MSG/HMSG carry a byte count and the payload
    follows with its own CRLF. Everything the server sends is checked
    against those rules and bounded; anything else ends the connection.
*/
#include "nats.h"

#include "bench.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

/*  nats-server's default max_payload is 1 MiB; the benchmark's messages
    are far smaller, and a server announcing more than this is refused. */
#define S_PAYLOAD_CAP (8u << 20)
/*  INFO may carry URLs and more: a longer line than other commands. */
#define S_INFO_MAX 32768
/*  Queued output beyond this is written before more is queued. */
#define S_WBUF_SOFT (256u << 10)

struct nats_conn {
    int fd;
    char err[256];
    char version[32];
    char inbox[48];
    size_t max_payload;
    /*  Input: bytes [rpos, rlen) of rbuf are unread; `consume` bytes at
        rpos belong to the message last returned, skipped at the next
        call. */
    uint8_t *rbuf;
    size_t rcap, rpos, rlen, consume;
    /*  Output, queued. */
    uint8_t *wbuf;
    size_t wcap, wlen;
    /*  The last message's subject and reply, NUL-terminated. */
    char subject[NATS_SUBJECT_MAX + 1];
    char reply[NATS_SUBJECT_MAX + 1];
    uint64_t requests;
};

static int s_fail(nats_conn_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
s_fail(nats_conn_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return NATS_ERROR;
}

const char *
nats_error(const nats_conn_t *c)
{
    return c->err;
}

const char *
nats_server_version(const nats_conn_t *c)
{
    return c->version;
}

const char *
nats_inbox(const nats_conn_t *c)
{
    return c->inbox;
}

/*  A subject as the protocol allows it here: 1..NATS_SUBJECT_MAX visible
    ASCII or UTF-8 bytes, no white space or control characters. */
static int
s_subject_ok(const char *s, size_t n)
{
    if (n == 0 || n > NATS_SUBJECT_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch <= 0x20 || ch == 0x7f)
            return 0;
    }
    return 1;
}

/*  Plain decimal digits, at most 18 of them (no sign, no spaces). */
static int
s_parse_u64(const char *s, size_t n, uint64_t *out)
{
    if (n == 0 || n > 18)
        return -1;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return 0;
}

/* ------------------------------------------------------------------------ */
/*  Output */

static int
s_write_all(nats_conn_t *c, const uint8_t *p, size_t n)
{
    while (n > 0) {
        ssize_t w = send(c->fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd pfd = {c->fd, POLLOUT, 0};
            if (poll(&pfd, 1, 5000) <= 0)
                return s_fail(c, "write to nats-server timed out");
            continue;
        }
        if (w <= 0)
            return s_fail(c, "write to nats-server: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int
nats_flush(nats_conn_t *c)
{
    if (c->wlen == 0)
        return 0;
    int rc = s_write_all(c, c->wbuf, c->wlen);
    c->wlen = 0;
    return rc;
}

/*  Queues a control line and an optional payload with its CRLF. */
static int
s_queue(nats_conn_t *c, const char *line, size_t line_len, const void *data,
        size_t len, int with_payload)
{
    size_t need = line_len + (with_payload ? len + 2 : 0);
    if (c->wlen + need > c->wcap && nats_flush(c) < 0)
        return -1;
    if (need > c->wcap)
        return s_fail(c, "command of %zu bytes does not fit", need);
    memcpy(c->wbuf + c->wlen, line, line_len);
    c->wlen += line_len;
    if (with_payload) {
        if (len)
            memcpy(c->wbuf + c->wlen, data, len);
        memcpy(c->wbuf + c->wlen + len, "\r\n", 2);
        c->wlen += len + 2;
    }
    if (c->wlen >= S_WBUF_SOFT)
        return nats_flush(c);
    return 0;
}

int
nats_sub(nats_conn_t *c, const char *subject, uint64_t sid)
{
    char line[NATS_LINE_MAX];
    if (!s_subject_ok(subject, strlen(subject)))
        return s_fail(c, "bad subject '%s'", subject);
    int n = snprintf(line, sizeof line, "SUB %s %llu\r\n", subject,
                     (unsigned long long)sid);
    return s_queue(c, line, (size_t)n, NULL, 0, 0);
}

int
nats_pub(nats_conn_t *c, const char *subject, const char *reply,
         const void *data, size_t len)
{
    char line[NATS_LINE_MAX];
    if (!s_subject_ok(subject, strlen(subject)) ||
        (reply && !s_subject_ok(reply, strlen(reply))))
        return s_fail(c, "bad subject '%s'", subject);
    if (len > c->max_payload)
        return s_fail(c, "payload of %zu bytes over the server's max %zu", len,
                      c->max_payload);
    int n = reply ? snprintf(line, sizeof line, "PUB %s %s %zu\r\n", subject,
                             reply, len)
                  : snprintf(line, sizeof line, "PUB %s %zu\r\n", subject, len);
    return s_queue(c, line, (size_t)n, data, len, 1);
}

int
nats_ping(nats_conn_t *c)
{
    return s_queue(c, "PING\r\n", 6, NULL, 0, 0);
}

/* ------------------------------------------------------------------------ */
/*  Input */

/*  Reads what is there, waiting up to timeout_ms for the first byte.
    1 read something, 0 timeout, -1 error or closed. */
static int
s_fill(nats_conn_t *c, int timeout_ms)
{
    if (c->rpos > 0 && c->rpos == c->rlen)
        c->rpos = c->rlen = 0;
    if (c->rlen == c->rcap && c->rpos > 0) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    if (c->rlen == c->rcap)
        return s_fail(c, "input buffer full (a message over %zu bytes)",
                      c->rcap);
    struct pollfd pfd = {c->fd, POLLIN, 0};
    int p = poll(&pfd, 1, timeout_ms);
    if (p < 0 && errno == EINTR)
        return 0;
    if (p < 0)
        return s_fail(c, "poll: %s", strerror(errno));
    if (p == 0)
        return 0;
    ssize_t r = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return 0;
    if (r < 0)
        return s_fail(c, "read from nats-server: %s", strerror(errno));
    if (r == 0)
        return s_fail(c, "nats-server closed the connection");
    c->rlen += (size_t)r;
    return 1;
}

/*  Splits a control line's arguments at spaces and tabs. Returns the
    count, or -1 for more than `max`. */
static int
s_split(char *s, size_t n, char **tok, size_t *tlen, int max)
{
    int count = 0;
    size_t i = 0;
    while (i < n) {
        while (i < n && (s[i] == ' ' || s[i] == '\t'))
            i++;
        if (i == n)
            break;
        if (count == max)
            return -1;
        size_t from = i;
        while (i < n && s[i] != ' ' && s[i] != '\t')
            i++;
        tok[count] = s + from;
        tlen[count] = i - from;
        count++;
    }
    return count;
}

static int
s_ieq(const char *a, size_t n, const char *word)
{
    return strlen(word) == n && strncasecmp(a, word, n) == 0;
}

/*  The status of an HMSG header block: "NATS/1.0 503" gives 503. */
static int
s_status(const uint8_t *h, size_t n)
{
    if (n < 8 || memcmp(h, "NATS/1.0", 8) != 0)
        return -1;
    if (n >= 12 && h[8] == ' ' && h[9] >= '0' && h[9] <= '9' && h[10] >= '0' &&
        h[10] <= '9' && h[11] >= '0' && h[11] <= '9')
        return (h[9] - '0') * 100 + (h[10] - '0') * 10 + (h[11] - '0');
    return 0;
}

/*  One complete command at rpos, if there is one: 1 (a MSG or PONG in
    *kind and *msg), 0 more input needed, -1 error. Other commands are
    handled here and reported as kind 0. */
static int
s_parse_one(nats_conn_t *c, int *kind, nats_msg_t *msg)
{
    const uint8_t *start = c->rbuf + c->rpos;
    size_t avail = c->rlen - c->rpos;
    size_t limit = avail < S_INFO_MAX ? avail : S_INFO_MAX;
    const uint8_t *cr = NULL;
    for (size_t i = 0; i + 1 < limit; i++)
        if (start[i] == '\r' && start[i + 1] == '\n') {
            cr = start + i;
            break;
        }
    if (!cr) {
        if (avail >= S_INFO_MAX)
            return s_fail(c, "control line over %d bytes", S_INFO_MAX);
        return 0;
    }
    size_t line_len = (size_t)(cr - start);
    char line[S_INFO_MAX];
    memcpy(line, start, line_len);
    line[line_len] = '\0';
    if (memchr(line, '\0', line_len))
        return s_fail(c, "NUL in a control line");
    char *op = line;
    size_t op_len = strcspn(line, " \t");
    char *args = line + op_len;
    size_t args_len = line_len - op_len;
    *kind = 0;
    if (s_ieq(op, op_len, "PING") && args_len == 0) {
        c->rpos += line_len + 2;
        return s_queue(c, "PONG\r\n", 6, NULL, 0, 0) < 0 ? -1 : 1;
    }
    if (s_ieq(op, op_len, "PONG") && args_len == 0) {
        c->rpos += line_len + 2;
        *kind = NATS_PONG;
        return 1;
    }
    if (s_ieq(op, op_len, "+OK") && args_len == 0) {
        c->rpos += line_len + 2;
        return 1;
    }
    if (s_ieq(op, op_len, "-ERR"))
        return s_fail(c, "nats-server: %s", args_len ? args + 1 : "-ERR");
    if (s_ieq(op, op_len, "INFO")) {
        /*  An update (cluster URLs): nothing here uses it. */
        c->rpos += line_len + 2;
        return 1;
    }
    int is_h = s_ieq(op, op_len, "HMSG");
    if (!is_h && !s_ieq(op, op_len, "MSG"))
        return s_fail(c, "unexpected '%.*s' from nats-server", (int)op_len, op);
    if (line_len > NATS_LINE_MAX)
        return s_fail(c, "MSG line over %d bytes", NATS_LINE_MAX);
    char *tok[6];
    size_t tl[6];
    int nt = s_split(args, args_len, tok, tl, 6);
    int base = is_h ? 4 : 3;
    if (nt != base && nt != base + 1)
        return s_fail(c, "malformed %s line", is_h ? "HMSG" : "MSG");
    int has_reply = nt == base + 1;
    uint64_t sid, hdr_len = 0, total;
    if (!s_subject_ok(tok[0], tl[0]) || s_parse_u64(tok[1], tl[1], &sid) < 0 ||
        (has_reply && !s_subject_ok(tok[2], tl[2])) ||
        s_parse_u64(tok[nt - 1], tl[nt - 1], &total) < 0 ||
        (is_h && s_parse_u64(tok[nt - 2], tl[nt - 2], &hdr_len) < 0) ||
        hdr_len > total || total > c->max_payload + 65536)
        return s_fail(c, "malformed %s line", is_h ? "HMSG" : "MSG");
    size_t need = line_len + 2 + (size_t)total + 2;
    if (need > c->rcap)
        return s_fail(c, "message of %llu bytes does not fit",
                      (unsigned long long)total);
    if (avail < need)
        return 0;
    const uint8_t *body = start + line_len + 2;
    if (body[total] != '\r' || body[total + 1] != '\n')
        return s_fail(c, "payload not followed by CRLF");
    memcpy(c->subject, tok[0], tl[0]);
    c->subject[tl[0]] = '\0';
    if (has_reply)
        memcpy(c->reply, tok[2], tl[2]);
    c->reply[has_reply ? tl[2] : 0] = '\0';
    memset(msg, 0, sizeof *msg);
    msg->subject = c->subject;
    msg->reply = c->reply;
    msg->sid = sid;
    if (is_h) {
        int st = s_status(body, (size_t)hdr_len);
        if (st < 0)
            return s_fail(c, "HMSG header block without NATS/1.0");
        msg->status = st;
        msg->hdr = body;
        msg->hdr_len = (size_t)hdr_len;
    }
    msg->data = body + hdr_len;
    msg->len = (size_t)(total - hdr_len);
    c->consume = need;
    *kind = NATS_MSG;
    return 1;
}

int
nats_next(nats_conn_t *c, int timeout_ms, nats_msg_t *msg)
{
    c->rpos += c->consume;
    c->consume = 0;
    int64_t deadline = mb_now_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int kind = 0;
        int got = s_parse_one(c, &kind, msg);
        if (got < 0)
            return NATS_ERROR;
        if (got > 0) {
            if (kind)
                return kind;
            continue;
        }
        if (nats_flush(c) < 0)
            return NATS_ERROR;
        int64_t left = (deadline - mb_now_ns() + 999999) / 1000000;
        if (left <= 0)
            return NATS_TIMEOUT;
        if (s_fill(c, (int)left) < 0)
            return NATS_ERROR;
    }
}

/* ------------------------------------------------------------------------ */
/*  Connecting */

/*  A number after "key": in a JSON text, or -1. Enough for INFO, whose
    keys are the server's own. */
static long long
s_json_num(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *p = strstr(json, pat);
    if (!p)
        return -1;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    char *end;
    errno = 0;
    long long v = strtoll(p, &end, 10);
    return errno || end == p ? -1 : v;
}

static void
s_json_str(const char *json, const char *key, char *out, size_t cap)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    out[0] = '\0';
    const char *p = strstr(json, pat);
    if (!p)
        return;
    p += strlen(pat);
    while (*p == ' ')
        p++;
    if (*p++ != '"')
        return;
    size_t n = 0;
    while (p[n] && p[n] != '"' && n + 1 < cap)
        n++;
    memcpy(out, p, n);
    out[n] = '\0';
}

static int
s_read_info(nats_conn_t *c, int timeout_ms)
{
    int64_t deadline = mb_now_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        uint8_t *nl = c->rlen >= 2 ? memchr(c->rbuf, '\n', c->rlen) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - c->rbuf) + 1;
            if (n < 7 || nl[-1] != '\r' || strncmp((char *)c->rbuf, "INFO ", 5))
                return s_fail(c, "no INFO from the server");
            char info[S_INFO_MAX];
            memcpy(info, c->rbuf + 5, n - 7);
            info[n - 7] = '\0';
            long long mp = s_json_num(info, "max_payload");
            if (mp <= 0 || mp > (long long)S_PAYLOAD_CAP)
                return s_fail(c, "INFO: max_payload %lld", mp);
            c->max_payload = (size_t)mp;
            s_json_str(info, "version", c->version, sizeof c->version);
            if (!strstr(info, "\"headers\":true"))
                return s_fail(c, "the server does not support headers");
            c->rpos = n;
            return 0;
        }
        if (c->rlen >= S_INFO_MAX)
            return s_fail(c, "INFO over %d bytes", S_INFO_MAX);
        int64_t left = (deadline - mb_now_ns()) / 1000000;
        if (left <= 0)
            return s_fail(c, "no INFO within %d ms", timeout_ms);
        if (s_fill(c, (int)left) < 0)
            return -1;
    }
}

int
nats_connect(nats_conn_t **out, const char *host, int port, int timeout_ms,
             char *err, size_t err_cap)
{
    *out = NULL;
    nats_conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    c->fd = -1;
    c->rcap = S_INFO_MAX;
    c->rbuf = malloc(c->rcap);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    if (!c->rbuf || inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        s_fail(c, "bad address %s or out of memory", host);
        goto fail;
    }
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (c->fd < 0) {
        s_fail(c, "socket: %s", strerror(errno));
        goto fail;
    }
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (errno != EINPROGRESS) {
            s_fail(c, "connect %s:%d: %s", host, port, strerror(errno));
            goto fail;
        }
        struct pollfd pfd = {c->fd, POLLOUT, 0};
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (poll(&pfd, 1, timeout_ms) <= 0 ||
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            s_fail(c, "connect %s:%d: %s", host, port,
                   soerr ? strerror(soerr) : "timed out");
            goto fail;
        }
    }
    /*  One publish in flight must not wait for Nagle. */
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (s_read_info(c, timeout_ms) < 0)
        goto fail;
    /*  Room for the biggest message the server may send, its line and
        headers; output likewise. */
    size_t cap = c->max_payload + 65536 + 2 * NATS_LINE_MAX;
    uint8_t *grown = realloc(c->rbuf, cap);
    c->wbuf = malloc(cap);
    if (!grown || !c->wbuf) {
        if (grown)
            c->rbuf = grown;
        s_fail(c, "out of memory");
        goto fail;
    }
    c->rbuf = grown;
    c->rcap = c->wcap = cap;
    snprintf(c->inbox, sizeof c->inbox, "_INBOX.mb%ld_%llx", (long)getpid(),
             (unsigned long long)mb_now_ns());
    static const char connect_line[] =
        "CONNECT {\"verbose\":false,\"pedantic\":false,\"headers\":true,"
        "\"no_responders\":true,\"lang\":\"c\",\"version\":\"mesh-bench\","
        "\"protocol\":1,\"name\":\"mesh-bench\"}\r\n";
    char sub[96];
    snprintf(sub, sizeof sub, "%s.>", c->inbox);
    if (s_queue(c, connect_line, sizeof connect_line - 1, NULL, 0, 0) < 0 ||
        nats_sub(c, sub, NATS_INBOX_SID) < 0 || nats_ping(c) < 0)
        goto fail;
    nats_msg_t m;
    int got = nats_next(c, timeout_ms, &m);
    if (got != NATS_PONG) {
        if (got == NATS_TIMEOUT)
            s_fail(c, "no PONG within %d ms", timeout_ms);
        else if (got == NATS_MSG)
            s_fail(c, "a message before the first PONG");
        goto fail;
    }
    *out = c;
    return 0;
fail:
    snprintf(err, err_cap, "%s", c->err);
    nats_close(&c);
    return -1;
}

void
nats_close(nats_conn_t **conn)
{
    nats_conn_t *c = conn ? *conn : NULL;
    if (!c)
        return;
    if (c->fd >= 0)
        close(c->fd);
    free(c->rbuf);
    free(c->wbuf);
    free(c);
    *conn = NULL;
}

/* ------------------------------------------------------------------------ */
/*  JetStream */

int
js_request(nats_conn_t *c, const char *subject, const char *json,
           int timeout_ms, char *reply, size_t cap)
{
    char inbox[NATS_SUBJECT_MAX];
    snprintf(inbox, sizeof inbox, "%s.r%llu", c->inbox,
             (unsigned long long)++c->requests);
    reply[0] = '\0';
    if (nats_pub(c, subject, inbox, json, strlen(json)) < 0) {
        snprintf(reply, cap, "%s", c->err);
        return -1;
    }
    int64_t deadline = mb_now_ns() + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int64_t left = (deadline - mb_now_ns()) / 1000000;
        nats_msg_t m;
        int got = left > 0 ? nats_next(c, (int)left, &m) : NATS_TIMEOUT;
        if (got == NATS_ERROR) {
            snprintf(reply, cap, "%s", c->err);
            return -1;
        }
        if (got == NATS_TIMEOUT) {
            snprintf(reply, cap, "no answer to %s within %d ms", subject,
                     timeout_ms);
            return -1;
        }
        if (got != NATS_MSG || strcmp(m.subject, inbox) != 0)
            continue;
        if (m.status == 503) {
            snprintf(reply, cap, "no responders on %s (JetStream off?)",
                     subject);
            return -1;
        }
        size_t n = m.len < cap - 1 ? m.len : cap - 1;
        memcpy(reply, m.data, n);
        reply[n] = '\0';
        /*  API answers are JSON objects; an error is {"error":{...}}. */
        if (n == 0 || reply[0] != '{' || strstr(reply, "\"error\""))
            return -1;
        return 0;
    }
}

uint64_t
js_puback_seq(const uint8_t *data, size_t len)
{
    char buf[512];
    if (len == 0 || len >= sizeof buf || data[0] != '{' || data[len - 1] != '}')
        return 0;
    memcpy(buf, data, len);
    buf[len] = '\0';
    if (strstr(buf, "\"error\"") || !strstr(buf, "\"stream\""))
        return 0;
    long long seq = s_json_num(buf, "seq");
    return seq > 0 ? (uint64_t)seq : 0;
}
