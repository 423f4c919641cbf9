/* SPDX-License-Identifier: Apache-2.0 */
/*
 * idle-conns: what idle connections cost a broker. Opens --count TCP
 * connections to it, sends one ApiVersions request on each and reads the
 * answer (so the broker has accepted the connection and allocated all of its
 * per-connection state), then holds them all idle and reads the broker's
 * VmRSS from /proc/PID/status: before the first connection, with all of them
 * open, and after they are closed again. Last, one more ApiVersions on the
 * oldest connection shows the broker still answers with all of them open.
 *
 * Wire bytes, ApiVersions v0 (request header v1, response header v0):
 *   request   int32 size | int16 api_key=18 | int16 api_version=0 |
 *             int32 correlation_id | int16 client_id length | client_id
 *   response  int32 size | int32 correlation_id | int16 error_code | ...
 *
 * Connections are opened WINDOW at a time through non-blocking connects and
 * epoll, so that a listen backlog smaller than --count never drops a SYN
 * (which would cost a one-second retransmission). Prints one line for people
 * and one line starting with "JSON ". Exit status 1 if any connection failed.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/clock.h"

/* Connections at most: the ephemeral port range of one source address. */
#define CONNS_MAX 60000
/* Connections in their handshake at once. */
#define WINDOW_DEFAULT 256
/* A response larger than this is not an ApiVersions answer. */
#define RESPONSE_BYTES_MAX (64u << 10)
/* The whole run gives up after this long. */
#define RUN_TIMEOUT_S 120
/* The broker gets this long to settle (free what a request used) before RSS
 * is read. */
#define SETTLE_MS        500
#define API_VERSIONS_KEY 18
#define CLIENT_ID        "idle-conns"
#define REQUEST_BYTES    (4 + 2 + 2 + 4 + 2 + sizeof(CLIENT_ID) - 1)

_Static_assert(REQUEST_BYTES == 24, "ApiVersions v0 request with a 10-byte client id");

enum conn_state { CONN_CONNECTING, CONN_SENT, CONN_IDLE, CONN_FAILED };

struct conn {
    int fd;
    uint8_t state;
    uint8_t head[10]; /* size, correlation id, error code */
    uint32_t got;     /* response bytes read so far */
    uint32_t size;    /* response size once head holds it */
};

struct opts {
    const char *host;
    uint16_t port;
    int pid;
    unsigned count;
    unsigned window;
};

static void usage(void)
{
    fprintf(stderr, "usage: idle-conns --broker HOST:PORT --pid PID [--count N] [--window W]\n"
                    "  HOST is an IPv4 literal; PID is the broker's, whose VmRSS is read.\n"
                    "  N connections (default 10000), W of them connecting at once (default "
                    "256).\n");
}

static int parse_uint(const char *s, unsigned long max, unsigned long *out)
{
    char *end = NULL;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || s[0] == '-' || v == 0 || v > max) {
        return -EINVAL;
    }
    *out = v;
    return 0;
}

static int parse_broker(char *arg, struct opts *o)
{
    char *colon = strrchr(arg, ':');
    unsigned long port;
    if (colon == NULL || parse_uint(colon + 1, 65535, &port) != 0) {
        return -EINVAL;
    }
    *colon = '\0';
    o->host = arg;
    o->port = (uint16_t)port;
    return 0;
}

static int opts_parse(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"broker", required_argument, NULL, 'b'},
        {"pid", required_argument, NULL, 'p'},
        {"count", required_argument, NULL, 'n'},
        {"window", required_argument, NULL, 'w'},
        {NULL, 0, NULL, 0},
    };
    *o = (struct opts){.count = 10000, .window = WINDOW_DEFAULT};
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        unsigned long v = 0;
        int err = -EINVAL;
        if (c == 'b') {
            err = parse_broker(optarg, o);
        } else if (c == 'p' && (err = parse_uint(optarg, INT32_MAX, &v)) == 0) {
            o->pid = (int)v;
        } else if (c == 'n' && (err = parse_uint(optarg, CONNS_MAX, &v)) == 0) {
            o->count = (unsigned)v;
        } else if (c == 'w' && (err = parse_uint(optarg, CONNS_MAX, &v)) == 0) {
            o->window = (unsigned)v;
        }
        if (err != 0) {
            usage();
            return -EINVAL;
        }
    }
    if (optind != argc || o->host == NULL || o->pid == 0) {
        usage();
        return -EINVAL;
    }
    return 0;
}

/* VmRSS of pid in bytes, or -1. */
static long long rss_bytes(int pid)
{
    char path[64];
    char line[256];
    long long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        if (sscanf(line, "VmRSS: %lld kB", &kb) == 1) {
            break;
        }
    }
    fclose(f);
    return kb < 0 ? -1 : kb * 1024;
}

/* Raises the soft fd limit to what count connections need, up to the hard one. */
static int fd_limit_raise(unsigned count)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)count + 64;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        return -errno;
    }
    if (rl.rlim_cur >= need) {
        return 0;
    }
    if (rl.rlim_max < need) {
        fprintf(stderr,
                "idle-conns: %u connections need %llu descriptors; the hard limit is %llu "
                "(raise it with ulimit -n as root)\n",
                count, (unsigned long long)need, (unsigned long long)rl.rlim_max);
        return -EMFILE;
    }
    rl.rlim_cur = need;
    return setrlimit(RLIMIT_NOFILE, &rl) == 0 ? 0 : -errno;
}

/* ======================================================= the connections */

struct run {
    const struct opts *o;
    struct conn *conns;
    struct sockaddr_in addr;
    int epfd;
    unsigned started;   /* connections begun */
    unsigned in_flight; /* begun, neither idle nor failed */
    unsigned idle;
    unsigned failed;
    int first_error; /* errno of the first failure */
};

static void conn_fail(struct run *r, struct conn *c, int err)
{
    if (r->failed++ == 0) {
        r->first_error = err;
    }
    c->state = CONN_FAILED;
    r->in_flight--;
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
}

static void request_encode(uint8_t *out, int32_t correlation_id)
{
    be32_put(out, REQUEST_BYTES - 4);
    be16_put(out + 4, API_VERSIONS_KEY);
    be16_put(out + 6, 0);
    be32_put(out + 8, (uint32_t)correlation_id);
    be16_put(out + 12, sizeof(CLIENT_ID) - 1);
    memcpy(out + 14, CLIENT_ID, sizeof(CLIENT_ID) - 1);
}

/* Sends the request, whole: 24 bytes always fit an empty socket buffer. */
static int conn_send(struct conn *c, int32_t correlation_id)
{
    uint8_t req[REQUEST_BYTES];
    request_encode(req, correlation_id);
    ssize_t n = send(c->fd, req, sizeof(req), MSG_NOSIGNAL);
    if (n != (ssize_t)sizeof(req)) {
        return n < 0 ? -errno : -EIO;
    }
    c->state = CONN_SENT;
    c->got = 0;
    return 0;
}

/* Reads what is there of the response; 1 once it is whole and right. */
static int conn_read(struct conn *c, int32_t correlation_id)
{
    uint8_t scratch[4096];
    for (;;) {
        size_t want = c->got < sizeof(c->head) ? sizeof(c->head) - c->got
                                               : SL_MIN(c->size + 4 - c->got, sizeof(scratch));
        if (want == 0) {
            break;
        }
        uint8_t *dst = c->got < sizeof(c->head) ? c->head + c->got : scratch;
        ssize_t n = recv(c->fd, dst, want, 0);
        if (n < 0) {
            return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
        }
        if (n == 0) {
            return -ECONNRESET;
        }
        c->got += (uint32_t)n;
        if (c->got == sizeof(c->head)) {
            c->size = be32_get(c->head);
            if (c->size < 6 || c->size > RESPONSE_BYTES_MAX) {
                return -EPROTO;
            }
        }
    }
    SL_ASSERT(c->got == c->size + 4); /* the loop stops only there */
    bool ok = (int32_t)be32_get(c->head + 4) == correlation_id && be16_get(c->head + 8) == 0;
    return ok ? 1 : -EPROTO;
}

static int conn_start(struct run *r, unsigned i)
{
    struct conn *c = &r->conns[i];
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        return -errno;
    }
    r->started++;
    r->in_flight++;
    c->state = CONN_CONNECTING;
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.u32 = i};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, c->fd, &ev) != 0) {
        conn_fail(r, c, errno);
        return 0;
    }
    if (connect(c->fd, (struct sockaddr *)&r->addr, sizeof(r->addr)) != 0 && errno != EINPROGRESS) {
        conn_fail(r, c, errno);
    }
    return 0;
}

/* One readiness event: connected (send), or response bytes (read). */
static void conn_event(struct run *r, unsigned i, uint32_t events)
{
    struct conn *c = &r->conns[i];
    int rc = 0;
    if (c->state == CONN_CONNECTING) {
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        if (soerr != 0 || (events & (EPOLLERR | EPOLLHUP))) {
            conn_fail(r, c, soerr != 0 ? soerr : ECONNRESET);
            return;
        }
        rc = conn_send(c, (int32_t)i);
        struct epoll_event ev = {.events = EPOLLIN, .data.u32 = i};
        if (rc == 0) {
            epoll_ctl(r->epfd, EPOLL_CTL_MOD, c->fd, &ev);
        }
    } else if (c->state == CONN_SENT) {
        rc = conn_read(c, (int32_t)i);
        if (rc == 1) {
            /* Held idle from here on: no longer watched. */
            epoll_ctl(r->epfd, EPOLL_CTL_DEL, c->fd, NULL);
            c->state = CONN_IDLE;
            r->in_flight--;
            r->idle++;
            return;
        }
    }
    if (rc < 0) {
        conn_fail(r, c, -rc);
    }
}

/* Opens every connection and waits until each is idle or failed. */
static int open_all(struct run *r)
{
    int64_t deadline_ns = time_mono_ns() + (int64_t)RUN_TIMEOUT_S * 1000000000;
    struct epoll_event events[256];
    while (r->idle + r->failed < r->o->count) {
        while (r->started < r->o->count && r->in_flight < r->o->window) {
            int err = conn_start(r, r->started);
            if (err != 0) {
                fprintf(stderr, "idle-conns: socket: %s\n", strerror(-err));
                return err;
            }
        }
        if (time_mono_ns() > deadline_ns) {
            fprintf(stderr, "idle-conns: %u connections still not answered after %d s\n",
                    r->in_flight, RUN_TIMEOUT_S);
            return -ETIMEDOUT;
        }
        int n = epoll_wait(r->epfd, events, (int)SL_ARRAY_LEN(events), 1000);
        if (n < 0 && errno != EINTR) {
            return -errno;
        }
        for (int k = 0; k < n; k++) {
            conn_event(r, events[k].data.u32, events[k].events);
        }
    }
    return 0;
}

/* One more round trip on an idle connection, blocking: the broker's answer
 * time with every connection open, in microseconds, or -errno. */
static long long ping(struct run *r)
{
    for (unsigned i = 0; i < r->o->count; i++) {
        struct conn *c = &r->conns[i];
        if (c->state != CONN_IDLE) {
            continue;
        }
        int64_t start_ns = time_mono_ns();
        int32_t id = (int32_t)(r->o->count + i);
        int rc = conn_send(c, id);
        while (rc == 0) {
            rc = conn_read(c, id);
            if (rc == 0) {
                usleep(100);
            }
        }
        c->state = CONN_IDLE;
        return rc == 1 ? (time_mono_ns() - start_ns) / 1000 : rc;
    }
    return -ENOTCONN;
}

static void close_all(struct run *r)
{
    for (unsigned i = 0; i < r->started; i++) {
        if (r->conns[i].fd >= 0) {
            close(r->conns[i].fd);
            r->conns[i].fd = -1;
        }
    }
}

/* ================================================================= main */

static void report(const struct run *r, long long before, long long with_open, long long closed,
                   double open_s, long long ping_us)
{
    const struct opts *o = r->o;
    double per_conn = r->idle > 0 ? (double)(with_open - before) / r->idle : 0;
    printf("idle-conns: %u of %u connections open and idle (%u failed%s%s) in %.2f s; broker "
           "VmRSS %.1f MB before, %.1f MB with them open (+%.1f MB, %.0f B per connection), "
           "%.1f MB after closing; ApiVersions with all open: %lld us\n",
           r->idle, o->count, r->failed, r->failed ? ", first: " : "",
           r->failed ? strerror(r->first_error) : "", open_s, (double)before / 1e6,
           (double)with_open / 1e6, (double)(with_open - before) / 1e6, per_conn,
           (double)closed / 1e6, ping_us);
    printf("JSON {\"connections\":%u,\"idle\":%u,\"failed\":%u,\"open_seconds\":%.3f,"
           "\"rss_before_bytes\":%lld,\"rss_open_bytes\":%lld,\"rss_closed_bytes\":%lld,"
           "\"rss_delta_bytes\":%lld,\"bytes_per_connection\":%.1f,\"ping_us\":%lld}\n",
           o->count, r->idle, r->failed, open_s, before, with_open, closed, with_open - before,
           per_conn, ping_us);
}

int main(int argc, char **argv)
{
    struct opts o;
    if (opts_parse(argc, argv, &o) != 0) {
        return 2;
    }
    struct run r = {.o = &o, .epfd = -1};
    r.addr.sin_family = AF_INET;
    r.addr.sin_port = htons(o.port);
    if (inet_pton(AF_INET, o.host, &r.addr.sin_addr) != 1) {
        fprintf(stderr, "idle-conns: %s is not an IPv4 literal\n", o.host);
        return 2;
    }
    long long before = rss_bytes(o.pid);
    if (before < 0) {
        fprintf(stderr, "idle-conns: cannot read /proc/%d/status\n", o.pid);
        return 1;
    }
    r.conns = calloc(o.count, sizeof(*r.conns));
    r.epfd = epoll_create1(EPOLL_CLOEXEC);
    if (r.conns == NULL || r.epfd < 0 || fd_limit_raise(o.count) != 0) {
        free(r.conns);
        return 1;
    }
    int64_t start_ns = time_mono_ns();
    int err = open_all(&r);
    double open_s = (double)(time_mono_ns() - start_ns) / 1e9;
    usleep(SETTLE_MS * 1000);
    long long with_open = rss_bytes(o.pid);
    long long ping_us = err == 0 ? ping(&r) : -1;
    close_all(&r);
    usleep(SETTLE_MS * 1000);
    long long closed = rss_bytes(o.pid);
    report(&r, before, with_open, closed, open_s, ping_us);
    close(r.epfd);
    free(r.conns);
    return err == 0 && r.failed == 0 && ping_us >= 0 ? 0 : 1;
}
