/* Licensed under the Apache License, Version 2.0 (see LICENSE). */

/* soak-client: the load generator of `make soak`.
 *
 * Opens --conns connections per client certificate to an HTTPS server on
 * loopback and sends keep-alive GET requests on each, one at a time (no
 * pipelining, so a request that got no answer is unambiguous). Every
 * response is checked against the status expected for that certificate;
 * the expectation may depend on the server's configuration generation,
 * which the server names in an X-Soak-Gen response header.
 *
 * Each request carries "X-Soak-Id: c<conn>-<seq>-<try>" so that a script
 * can match what the client saw against the server's access log.
 *
 * It can also sample the resident set size of the httpd children (the
 * processes whose parent is --rss-pid) after a warm-up share of the
 * requests and at the end, and create marker files when a given number of
 * requests has been answered (so a script can run a graceful restart in
 * the middle of the load). It prints a summary as key=value lines and
 * exits 0 only if every request got the expected answer, 1 if not, 2 on
 * bad usage. soak/soak.sh runs it; HACKING.md, "Soak", explains. */

#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#define MAX_CERTS 16
#define MAX_GENS 8
#define MAX_MARKS 8
#define MAX_CHILDREN 64
#define MAX_TRIES 5 /* per request, in --retry mode */
#define MAX_ERRORS_SHOWN 20
#define RESP_BUF 16384

typedef struct {
    const char *name;
    const char *pem;
    int expect[MAX_GENS + 1]; /* by generation, 1-based */
    int ngens;
    SSL_CTX *ctx;
} cert_t;

typedef struct {
    unsigned idx;
    cert_t *cert;
    unsigned long todo; /* requests this connection must complete */
    pthread_t thread;
    int fd;
    SSL *ssl;
    unsigned long reqs_on_conn;
    /* results */
    unsigned long done, ok, wrong, transport, lost_sent;
    unsigned long connects, idle_closed, close_header, unanswered, retried;
    unsigned long by_status_200, by_status_403, by_status_other;
    unsigned long by_gen[MAX_GENS + 1];
    unsigned long max_reqs_on_conn;
} conn_t;

typedef struct {
    unsigned long at;
    const char *file;
} mark_t;

typedef struct {
    int n;
    int pid[MAX_CHILDREN];
    long rss_kb[MAX_CHILDREN];
    long anon_kb[MAX_CHILDREN];
    long total_kb, total_anon_kb;
} rss_t;

/* options */
static const char *opt_host = "127.0.0.1";
static int opt_port;
static const char *opt_ca;
static const char *opt_path = "/ok.txt";
static unsigned opt_conns = 2;
static unsigned long opt_requests = 10000;
static int opt_rss_pid;
static double opt_warmup = 0.05;
static double opt_time_limit = 600;
static double opt_io_timeout = 30;
static int opt_retry;
static int opt_require_gen;
static const char *opt_unanswered_log;
static cert_t certs[MAX_CERTS];
static int ncerts;
static mark_t marks[MAX_MARKS];
static int nmarks;

/* shared state */
static unsigned long completed; /* __atomic */
static unsigned long warm_at;   /* completed count of the warm-up sample */
static double t_start, deadline;
static rss_t rss_warm, rss_end;
static int rss_warm_taken; /* __atomic */
static unsigned long opt_rss_every;
static const char *opt_until_file;
static unsigned long opt_after;
static unsigned long until_seen_at; /* __atomic; 0 = not yet */
#define MAX_CURVE 256
static unsigned long curve_at[MAX_CURVE];
static long curve_kb[MAX_CURVE];
static unsigned curve_n; /* under out_lock */
static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned errors_shown;
static FILE *unanswered_fp;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("soak-client: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

/* Reports one problem on stderr; only the first few, so a broken run
 * does not flood the terminal (the counters say how many there were). */
static void report(const conn_t *c, const char *fmt, ...)
{
    va_list ap;
    pthread_mutex_lock(&out_lock);
    if (errors_shown++ < MAX_ERRORS_SHOWN) {
        va_start(ap, fmt);
        fprintf(stderr, "soak-client: conn %u (%s), request %lu: ", c->idx,
                c->cert->name, c->done);
        vfprintf(stderr, fmt, ap);
        fputc('\n', stderr);
        va_end(ap);
    }
    pthread_mutex_unlock(&out_lock);
}

static const char *ssl_reason(void)
{
    static __thread char buf[256];
    unsigned long e = ERR_peek_last_error();
    if (!e)
        return errno ? strerror(errno) : "unexpected EOF";
    ERR_error_string_n(e, buf, sizeof(buf));
    return buf;
}

/* ---- RSS of the httpd children ---------------------------------------- */

static long status_field_kb(const char *text, const char *key)
{
    const char *p = strstr(text, key);
    return p ? strtol(p + strlen(key), NULL, 10) : -1;
}

static int cmp_int(const void *a, const void *b)
{
    return *(const int *)a - *(const int *)b;
}

/* Every process whose parent is ppid, with VmRSS and RssAnon. */
static void rss_sample(int ppid, rss_t *out)
{
    DIR *d = opendir("/proc");
    struct dirent *de;
    int pids[MAX_CHILDREN], n = 0, i;

    memset(out, 0, sizeof(*out));
    if (!d)
        return;
    while ((de = readdir(d)) != NULL && n < MAX_CHILDREN) {
        char path[64], buf[512], *p;
        FILE *f;
        int pid = atoi(de->d_name), parent;
        if (pid <= 0)
            continue;
        snprintf(path, sizeof(path), "/proc/%d/stat", pid);
        if (!(f = fopen(path, "r")))
            continue;
        buf[0] = '\0';
        if (!fgets(buf, sizeof(buf), f))
            buf[0] = '\0';
        fclose(f);
        /* pid (comm) state ppid ...; comm may hold spaces and parens */
        p = strrchr(buf, ')');
        if (p && sscanf(p + 1, " %*c %d", &parent) == 1 && parent == ppid)
            pids[n++] = pid;
    }
    closedir(d);
    qsort(pids, n, sizeof(int), cmp_int);
    for (i = 0; i < n; i++) {
        char path[64], text[4096];
        size_t len;
        FILE *f;
        snprintf(path, sizeof(path), "/proc/%d/status", pids[i]);
        if (!(f = fopen(path, "r")))
            continue;
        len = fread(text, 1, sizeof(text) - 1, f);
        fclose(f);
        text[len] = '\0';
        out->pid[out->n] = pids[i];
        out->rss_kb[out->n] = status_field_kb(text, "VmRSS:");
        out->anon_kb[out->n] = status_field_kb(text, "RssAnon:");
        out->total_kb += out->rss_kb[out->n];
        out->total_anon_kb += out->anon_kb[out->n];
        out->n++;
    }
}

static void rss_print(const char *key, const rss_t *s)
{
    int i;
    printf("%s_children=%d\n%s_pids=", key, s->n, key);
    for (i = 0; i < s->n; i++)
        printf("%s%d", i ? "," : "", s->pid[i]);
    printf("\n%s_child_kb=", key);
    for (i = 0; i < s->n; i++)
        printf("%s%ld", i ? "," : "", s->rss_kb[i]);
    printf("\n%s_rss_kb=%ld\n%s_anon_kb=%ld\n", key, s->total_kb, key,
           s->total_anon_kb);
}

/* ---- one connection ---------------------------------------------------- */

static void conn_close(conn_t *c, int polite)
{
    if (c->ssl) {
        if (polite)
            SSL_shutdown(c->ssl); /* best effort, non-blocking */
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
}

/* Waits until fd is ready for events, or the I/O timeout. */
static int wait_fd(int fd, short events)
{
    struct pollfd p = {.fd = fd, .events = events};
    int ms = (int)(opt_io_timeout * 1000), r;
    do
        r = poll(&p, 1, ms);
    while (r < 0 && errno == EINTR);
    return r > 0 ? 0 : -1;
}

static int conn_open(conn_t *c)
{
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons(opt_port)};
    int one = 1, r, err;
    socklen_t len = sizeof(err);

    inet_pton(AF_INET, opt_host, &sa.sin_addr);
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0)
        return report(c, "socket: %s", strerror(errno)), -1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (errno != EINPROGRESS || wait_fd(c->fd, POLLOUT) < 0 ||
            getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0 || err) {
            report(c, "connect: %s", strerror(errno));
            conn_close(c, 0);
            return -1;
        }
    }
    c->ssl = SSL_new(c->cert->ctx);
    SSL_set_fd(c->ssl, c->fd);
    ERR_clear_error();
    while ((r = SSL_connect(c->ssl)) != 1) {
        int e = SSL_get_error(c->ssl, r);
        if ((e == SSL_ERROR_WANT_READ && wait_fd(c->fd, POLLIN) == 0) ||
            (e == SSL_ERROR_WANT_WRITE && wait_fd(c->fd, POLLOUT) == 0))
            continue;
        report(c, "TLS handshake: %s", ssl_reason());
        conn_close(c, 0);
        return -1;
    }
    c->connects++;
    c->reqs_on_conn = 0;
    return 0;
}

enum { IO_OK, IO_CLOSED, IO_ERROR };

/* SSL_read with the I/O timeout: IO_OK with *n bytes, IO_CLOSED when the
 * server ended the connection (close_notify, EOF or reset), IO_ERROR on
 * anything else (timeout, TLS error). */
static int conn_read(conn_t *c, char *buf, int len, int *n)
{
    for (;;) {
        int r, e;
        ERR_clear_error();
        errno = 0;
        r = SSL_read(c->ssl, buf, len);
        if (r > 0) {
            *n = r;
            return IO_OK;
        }
        e = SSL_get_error(c->ssl, r);
        if (e == SSL_ERROR_WANT_READ) {
            if (wait_fd(c->fd, POLLIN) < 0)
                return report(c, "read timeout"), IO_ERROR;
            continue;
        }
        if (e == SSL_ERROR_WANT_WRITE) {
            if (wait_fd(c->fd, POLLOUT) < 0)
                return report(c, "read timeout"), IO_ERROR;
            continue;
        }
        if (e == SSL_ERROR_ZERO_RETURN)
            return IO_CLOSED;
        if (e == SSL_ERROR_SYSCALL && (errno == 0 || errno == ECONNRESET))
            return IO_CLOSED;
        if (e == SSL_ERROR_SSL && ERR_GET_REASON(ERR_peek_error()) ==
                                      SSL_R_UNEXPECTED_EOF_WHILE_READING)
            return IO_CLOSED;
        report(c, "read: %s", ssl_reason());
        return IO_ERROR;
    }
}

/* Before reusing an idle keep-alive connection: has the server closed
 * it meanwhile? That is normal HTTP (RFC 9112, 9.6), not an error, as
 * long as no request was on it. 1 = closed, 0 = usable, -1 = trouble. */
static int conn_closed_by_server(conn_t *c)
{
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    char b;
    int r, e;

    if (SSL_pending(c->ssl) > 0)
        return report(c, "unsolicited data before a request"), -1;
    if (poll(&p, 1, 0) <= 0)
        return 0;
    /* Readable: a TLS 1.3 session ticket, a close_notify, or EOF. */
    ERR_clear_error();
    errno = 0;
    r = SSL_read(c->ssl, &b, 1);
    if (r > 0)
        return report(c, "unsolicited data before a request"), -1;
    e = SSL_get_error(c->ssl, r);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        return 0;
    return 1;
}

/* Writes all of buf; IO_CLOSED if the server had closed the connection. */
static int conn_write(conn_t *c, const char *buf, int len)
{
    while (len > 0) {
        int r, e;
        ERR_clear_error();
        errno = 0;
        r = SSL_write(c->ssl, buf, len);
        if (r > 0) {
            buf += r;
            len -= r;
            continue;
        }
        e = SSL_get_error(c->ssl, r);
        if ((e == SSL_ERROR_WANT_WRITE && wait_fd(c->fd, POLLOUT) == 0) ||
            (e == SSL_ERROR_WANT_READ && wait_fd(c->fd, POLLIN) == 0))
            continue;
        if (e == SSL_ERROR_ZERO_RETURN ||
            (e == SSL_ERROR_SYSCALL && (errno == EPIPE || errno == ECONNRESET)))
            return IO_CLOSED;
        report(c, "write: %s", ssl_reason());
        return IO_ERROR;
    }
    return IO_OK;
}

typedef struct {
    int status;
    int gen;     /* X-Soak-Gen, 0 if absent */
    int close;   /* Connection: close */
    long length; /* Content-Length, -1 if absent */
    int got_any; /* some bytes of the response arrived */
    int chunked;
} resp_t;

/* Header value if line (without CRLF) is "name: value", else NULL. */
static const char *header(const char *line, const char *name)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':')
        return NULL;
    line += n + 1;
    while (*line == ' ' || *line == '\t')
        line++;
    return line;
}

/* Reads one response: IO_OK, IO_CLOSED (the server closed the connection
 * before any byte of it), or IO_ERROR (anything else, reported). */
static int read_response(conn_t *c, resp_t *rs)
{
    static __thread char buf[RESP_BUF];
    int have = 0, n, r;
    char *eoh = NULL, *line, *next;
    long body_have, rest;

    memset(rs, 0, sizeof(*rs));
    rs->length = -1;
    while (!eoh) {
        if (have >= RESP_BUF - 1)
            return report(c, "response header too long"), IO_ERROR;
        r = conn_read(c, buf + have, RESP_BUF - 1 - have, &n);
        if (r == IO_CLOSED && have == 0)
            return IO_CLOSED;
        if (r != IO_OK)
            return report(c, "response cut short after %d bytes", have),
                   IO_ERROR;
        rs->got_any = 1;
        have += n;
        buf[have] = '\0';
        eoh = strstr(buf, "\r\n\r\n");
    }
    *eoh = '\0';
    if (sscanf(buf, "HTTP/1.%*1[01] %3d", &rs->status) != 1)
        return report(c, "bad status line"), IO_ERROR;
    for (line = strstr(buf, "\r\n"); line; line = next) {
        const char *v;
        line += 2;
        next = strstr(line, "\r\n");
        if (next)
            *next = '\0';
        if ((v = header(line, "Content-Length")))
            rs->length = strtol(v, NULL, 10);
        else if ((v = header(line, "Connection")))
            rs->close = strcasestr(v, "close") != NULL;
        else if ((v = header(line, "X-Soak-Gen")))
            rs->gen = atoi(v);
        else if ((v = header(line, "Transfer-Encoding")))
            rs->chunked = 1;
    }
    if (rs->chunked || rs->length < 0)
        return report(c, "response without Content-Length"), IO_ERROR;
    body_have = have - (eoh + 4 - buf);
    if (body_have > rs->length)
        return report(c, "more bytes than the response"), IO_ERROR;
    for (rest = rs->length - body_have; rest > 0; rest -= n) {
        r = conn_read(c, buf, rest < RESP_BUF ? rest : RESP_BUF, &n);
        if (r != IO_OK)
            return report(c, "body cut short"), IO_ERROR;
    }
    return IO_OK;
}

/* With --until FILE:N the run goes on past --requests until N requests
 * have been answered after FILE appeared (a script creates FILE once a
 * restart has finished, so the new generation surely answers some). */
static void until_check(unsigned long k)
{
    unsigned long zero = 0;

    if (opt_until_file && !__atomic_load_n(&until_seen_at, __ATOMIC_SEQ_CST) &&
        access(opt_until_file, F_OK) == 0)
        __atomic_compare_exchange_n(&until_seen_at, &zero, k + 1, 0,
                                    __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

static int more_needed(void)
{
    unsigned long k = __atomic_load_n(&completed, __ATOMIC_SEQ_CST), seen;

    if (!opt_until_file)
        return 0;
    until_check(k);
    seen = __atomic_load_n(&until_seen_at, __ATOMIC_SEQ_CST);
    return !seen || k + 1 < seen + opt_after;
}

static void request_completed(void)
{
    unsigned long k = __atomic_add_fetch(&completed, 1, __ATOMIC_SEQ_CST);
    int i;

    until_check(k);
    if (opt_rss_pid && k == warm_at) {
        rss_sample(opt_rss_pid, &rss_warm);
        __atomic_store_n(&rss_warm_taken, 1, __ATOMIC_SEQ_CST);
    }
    if (opt_rss_pid && opt_rss_every && k % opt_rss_every == 0) {
        rss_t s;
        rss_sample(opt_rss_pid, &s);
        pthread_mutex_lock(&out_lock);
        if (curve_n < MAX_CURVE) {
            curve_at[curve_n] = k;
            curve_kb[curve_n++] = s.total_kb;
        }
        pthread_mutex_unlock(&out_lock);
    }
    for (i = 0; i < nmarks; i++) {
        if (k == marks[i].at) {
            FILE *f = fopen(marks[i].file, "w");
            if (f)
                fclose(f);
        }
    }
}

/* Judges one response against the expectation for this certificate. */
static void judge(conn_t *c, const resp_t *rs)
{
    const cert_t *ct = c->cert;
    int want;

    if (rs->status == 200)
        c->by_status_200++;
    else if (rs->status == 403)
        c->by_status_403++;
    else
        c->by_status_other++;
    if (rs->gen < 1 || rs->gen > ct->ngens) {
        c->wrong++;
        report(c, "status %d with X-Soak-Gen %d: no expectation", rs->status,
               rs->gen);
        return;
    }
    c->by_gen[rs->gen]++;
    want = ct->expect[rs->gen];
    if (opt_require_gen && rs->gen != opt_require_gen) {
        c->wrong++;
        report(c, "answered by generation %d, want %d", rs->gen,
               opt_require_gen);
    }
    else if (rs->status != want) {
        c->wrong++;
        report(c, "status %d, want %d (generation %d)", rs->status, want,
               rs->gen);
    }
    else {
        c->ok++;
    }
}

/* Whether this connection has a request to send within the time limit;
 * with --until it takes on one more while more answers are needed. */
static int conn_has_work(conn_t *c)
{
    if (c->done >= c->todo) {
        if (!more_needed())
            return 0;
        c->todo++;
    }
    if (now() > deadline) {
        report(c, "time limit reached, %lu requests not sent",
               c->todo - c->done);
        c->transport += c->todo - c->done;
        return 0;
    }
    return 1;
}

/* Before a request: 1 when the connection is open and usable, 0 to look
 * again, -1 when this connection gives up (5 failed connects in a row). */
static int conn_ready(conn_t *c, unsigned *fails_in_row)
{
    int r;

    if (!c->ssl) {
        if (conn_open(c) < 0) {
            c->transport++;
            if (++*fails_in_row >= 5) {
                c->transport += c->todo - c->done;
                return -1;
            }
            usleep(100000);
            return 0;
        }
        *fails_in_row = 0;
    }
    else if ((r = conn_closed_by_server(c)) != 0) {
        /* Closed between requests: normal, but only expected when
         * the server restarts (--retry). */
        if (r > 0)
            c->idle_closed++;
        if (r < 0 || !opt_retry)
            c->transport++;
        conn_close(c, 0);
        return 0;
    }
    return 1;
}

/* Sends request c->done (its try number tries) and reads the answer. */
static int exchange(conn_t *c, unsigned tries, resp_t *rs)
{
    char req[512];
    int len, r;

    len = snprintf(req, sizeof(req),
                   "GET %s HTTP/1.1\r\nHost: %s\r\n"
                   "X-Soak-Id: c%u-%lu-%u\r\n\r\n",
                   opt_path, opt_host, c->idx, c->done, tries);
    r = conn_write(c, req, len);
    if (r == IO_OK)
        r = read_response(c, rs);
    return r;
}

/* The request is over, answered or given up. */
static void request_done(conn_t *c, unsigned *tries)
{
    c->done++;
    *tries = 0;
    request_completed();
}

/* Sent, then the connection ended with no byte of an answer. Whether the
 * server had read the request is for the access log to tell (the id is
 * logged here); GET is idempotent, so in --retry mode it is sent again on
 * a new connection, as RFC 9112, 9.3.1 allows. */
static void unanswered(conn_t *c, unsigned *tries)
{
    c->unanswered++;
    if (unanswered_fp) {
        pthread_mutex_lock(&out_lock);
        fprintf(unanswered_fp, "c%u-%lu-%u\n", c->idx, c->done, *tries);
        fflush(unanswered_fp);
        pthread_mutex_unlock(&out_lock);
    }
    conn_close(c, 0);
    if (opt_retry && ++*tries < MAX_TRIES) {
        c->retried++;
        return;
    }
    report(c, "sent, and the connection closed without an answer");
    c->transport++;
    c->lost_sent++;
    request_done(c, tries);
}

static void answered(conn_t *c, const resp_t *rs, unsigned *tries)
{
    judge(c, rs);
    if (++c->reqs_on_conn > c->max_reqs_on_conn)
        c->max_reqs_on_conn = c->reqs_on_conn;
    request_done(c, tries);
    if (rs->close) {
        c->close_header++;
        if (!opt_retry) {
            report(c, "server sent Connection: close");
            c->transport++;
        }
        conn_close(c, 1);
    }
}

/* One connection's thread: its requests, one at a time. */
static void *conn_run(void *arg)
{
    conn_t *c = arg;
    unsigned tries = 0;
    unsigned fails_in_row = 0;

    while (conn_has_work(c)) {
        resp_t rs;
        int r = conn_ready(c, &fails_in_row);

        if (r < 0)
            break;
        if (r == 0)
            continue;
        r = exchange(c, tries, &rs);
        if (r == IO_CLOSED)
            unanswered(c, &tries);
        else if (r == IO_ERROR) {
            c->transport++;
            c->lost_sent++;
            conn_close(c, 0);
            request_done(c, &tries);
        }
        else
            answered(c, &rs, &tries);
    }
    return NULL;
}

/* ---- setup and summary --------------------------------------------------- */

/* NAME=PEMFILE=STATUS[,STATUS...]: the status expected for generation 1,
 * 2, ... */
static void parse_cert(const char *arg)
{
    cert_t *ct;
    char *s, *pem, *exp, *tok, *save = NULL;

    if (ncerts == MAX_CERTS)
        die("too many --cert");
    ct = &certs[ncerts++];
    s = strdup(arg);
    if (!s || !(pem = strchr(s, '=')) || !(exp = strchr(pem + 1, '=')))
        die("--cert wants NAME=PEMFILE=STATUS[,STATUS...], got '%s'", arg);
    *pem++ = '\0';
    *exp++ = '\0';
    ct->name = s;
    ct->pem = pem;
    for (tok = strtok_r(exp, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        if (ct->ngens == MAX_GENS)
            die("--cert %s: too many generations", s);
        ct->expect[++ct->ngens] = atoi(tok);
        if (ct->expect[ct->ngens] < 100 || ct->expect[ct->ngens] > 599)
            die("--cert %s: bad status '%s'", s, tok);
    }
    if (!ct->ngens)
        die("--cert %s: no expected status", s);
}

static void parse_mark(const char *arg)
{
    char *colon;
    if (nmarks == MAX_MARKS)
        die("too many --mark");
    marks[nmarks].at = strtoul(arg, &colon, 10);
    if (*colon != ':' || !colon[1] || !marks[nmarks].at)
        die("--mark wants N:FILE, got '%s'", arg);
    marks[nmarks++].file = colon + 1;
}

/* FILE:N, split at the last colon (FILE may hold colons). */
static void parse_until(const char *arg)
{
    char *s = strdup(arg), *colon = s ? strrchr(s, ':') : NULL;
    if (!colon || !colon[1])
        die("--until wants FILE:N, got '%s'", arg);
    *colon = '\0';
    opt_until_file = s;
    opt_after = strtoul(colon + 1, NULL, 10);
}

/* The command line. Each option either hands its argument to parse, or
 * stores it in var as type says: s string, i int, u unsigned, l unsigned
 * long, d double; type 0 takes no argument and sets the int var to 1. */
static const struct {
    const char *name;
    char type;
    void *var;
    void (*parse)(const char *arg);
} options[] = {
    {"host", 's', &opt_host, NULL},
    {"port", 'i', &opt_port, NULL},
    {"ca", 's', &opt_ca, NULL},
    {"cert", 's', NULL, parse_cert},
    {"path", 's', &opt_path, NULL},
    {"conns", 'u', &opt_conns, NULL},
    {"requests", 'l', &opt_requests, NULL},
    {"time-limit", 'd', &opt_time_limit, NULL},
    {"io-timeout", 'd', &opt_io_timeout, NULL},
    {"rss-pid", 'i', &opt_rss_pid, NULL},
    {"warmup", 'd', &opt_warmup, NULL},
    {"rss-every", 'l', &opt_rss_every, NULL},
    {"mark", 's', NULL, parse_mark},
    {"until", 's', NULL, parse_until},
    {"retry", 0, &opt_retry, NULL},
    {"unanswered-log", 's', &opt_unanswered_log, NULL},
    {"require-gen", 'i', &opt_require_gen, NULL},
};
#define NOPTIONS (sizeof(options) / sizeof(options[0]))

static void set_option(size_t i, char *arg)
{
    void *v = options[i].var;

    if (options[i].parse)
        options[i].parse(arg);
    else if (options[i].type == 's')
        *(const char **)v = arg;
    else if (options[i].type == 'i')
        *(int *)v = atoi(arg);
    else if (options[i].type == 'u')
        *(unsigned *)v = strtoul(arg, NULL, 10);
    else if (options[i].type == 'l')
        *(unsigned long *)v = strtoul(arg, NULL, 10);
    else if (options[i].type == 'd')
        *(double *)v = atof(arg);
    else
        *(int *)v = 1;
}

static void usage(void)
{
    fputs("usage: soak-client --port P --ca CAFILE --cert NAME=PEM=STATUS"
          "[,STATUS...] [--cert ...]\n"
          "  [--host 127.0.0.1] [--path /ok.txt] [--conns K per cert]\n"
          "  [--requests N] [--time-limit S] [--io-timeout S]\n"
          "  [--rss-pid PID] [--warmup FRACTION] [--rss-every N]\n"
          "  [--mark N:FILE] [--until FILE:N]\n"
          "  [--retry] [--unanswered-log FILE] [--require-gen G]\n",
          stderr);
    exit(2);
}

/* Reads the options into the opt_* variables, certs[] and marks[]; exits
 * with the usage on anything missing or malformed. */
static void parse_args(int argc, char **argv)
{
    struct option lo[NOPTIONS + 1];
    struct in_addr a;
    size_t i;
    int o;

    /* getopt_long returns 256 + the index: no character it returns. */
    memset(lo, 0, sizeof(lo));
    for (i = 0; i < NOPTIONS; i++) {
        lo[i].name = options[i].name;
        lo[i].has_arg = options[i].type ? required_argument : no_argument;
        lo[i].val = 256 + (int)i;
    }
    while ((o = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        if (o < 256 || o >= 256 + (int)NOPTIONS)
            usage();
        set_option((size_t)(o - 256), optarg);
    }
    if (optind != argc || opt_port <= 0 || opt_port > 65535 || !opt_ca ||
        !ncerts || !opt_conns || !opt_requests || opt_time_limit <= 0)
        usage();
    if (inet_pton(AF_INET, opt_host, &a) != 1 || (ntohl(a.s_addr) >> 24) != 127)
        die("--host must be an IPv4 loopback address");
}

static SSL_CTX *make_ctx(const cert_t *ct)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx || SSL_CTX_use_certificate_chain_file(ctx, ct->pem) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, ct->pem, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_locations(ctx, opt_ca, NULL) != 1)
        die("%s: %s", ct->pem, ssl_reason());
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    return ctx;
}

/* The connections, opt_conns per certificate, each with its share of the
 * requests. */
static conn_t *conns_create(unsigned *nconns)
{
    conn_t *conns;
    unsigned i, n = opt_conns * ncerts;

    conns = calloc(n, sizeof(*conns));
    if (!conns)
        die("out of memory");
    for (i = 0; i < n; i++) {
        conns[i].idx = i;
        conns[i].cert = &certs[i % ncerts];
        conns[i].fd = -1;
        conns[i].todo = opt_requests / n + (i < opt_requests % n);
    }
    *nconns = n;
    return conns;
}

/* Runs every connection's thread to its end; returns the seconds taken. */
static double run_conns(conn_t *conns, unsigned nconns)
{
    unsigned i;
    double elapsed;

    warm_at = (unsigned long)(opt_requests * opt_warmup);
    if (warm_at < 1)
        warm_at = 1;
    t_start = now();
    deadline = t_start + opt_time_limit;
    for (i = 0; i < nconns; i++)
        if (pthread_create(&conns[i].thread, NULL, conn_run, &conns[i]))
            die("pthread_create failed");
    for (i = 0; i < nconns; i++)
        pthread_join(conns[i].thread, NULL);
    elapsed = now() - t_start;
    /* Sampled while the connections are still open, as at warm-up. */
    if (opt_rss_pid)
        rss_sample(opt_rss_pid, &rss_end);
    for (i = 0; i < nconns; i++)
        conn_close(&conns[i], 1);
    return elapsed;
}

/* The counters of all connections added up (the longest keep-alive run
 * is the maximum). */
static void conns_sum(const conn_t *conns, unsigned nconns, conn_t *sum)
{
    unsigned i;
    int g;

    memset(sum, 0, sizeof(*sum));
    for (i = 0; i < nconns; i++) {
        const conn_t *c = &conns[i];
        sum->todo += c->todo;
        sum->done += c->done;
        sum->ok += c->ok;
        sum->wrong += c->wrong;
        sum->transport += c->transport;
        sum->lost_sent += c->lost_sent;
        sum->connects += c->connects;
        sum->idle_closed += c->idle_closed;
        sum->close_header += c->close_header;
        sum->unanswered += c->unanswered;
        sum->retried += c->retried;
        sum->by_status_200 += c->by_status_200;
        sum->by_status_403 += c->by_status_403;
        sum->by_status_other += c->by_status_other;
        for (g = 1; g <= MAX_GENS; g++)
            sum->by_gen[g] += c->by_gen[g];
        if (c->max_reqs_on_conn > sum->max_reqs_on_conn)
            sum->max_reqs_on_conn = c->max_reqs_on_conn;
    }
}

/* The counters, then the answers by generation and by certificate. */
static void print_counts(const conn_t *conns, unsigned nconns,
                         const conn_t *sum)
{
    unsigned i;
    int g;

    printf("requests=%lu\nanswered=%lu\ncorrect=%lu\nwrong=%lu\n"
           "transport_errors=%lu\nlost_sent=%lu\nconnections=%lu\n"
           "conns_planned=%u\nmax_requests_per_connection=%lu\n"
           "closed_idle=%lu\nconnection_close_headers=%lu\n"
           "unanswered=%lu\nretried=%lu\n"
           "status_200=%lu\nstatus_403=%lu\nstatus_other=%lu\n",
           sum->todo, sum->ok + sum->wrong, sum->ok, sum->wrong, sum->transport,
           sum->lost_sent, sum->connects, nconns, sum->max_reqs_on_conn,
           sum->idle_closed, sum->close_header, sum->unanswered, sum->retried,
           sum->by_status_200, sum->by_status_403, sum->by_status_other);
    for (g = 1; g <= MAX_GENS; g++)
        if (sum->by_gen[g])
            printf("generation_%d=%lu\n", g, sum->by_gen[g]);
    for (g = 0; g < ncerts; g++) {
        unsigned long ok = 0, wrong = 0;
        for (i = g; i < nconns; i += ncerts) {
            ok += conns[i].ok;
            wrong += conns[i].wrong;
        }
        printf("cert_%s=%lu correct, %lu wrong\n", certs[g].name, ok, wrong);
    }
}

/* The rest of the summary: --until, the rate, the RSS samples. */
static void print_timing(const conn_t *sum, double elapsed)
{
    unsigned i;

    if (opt_until_file)
        printf("until_seen_at=%lu\n", until_seen_at ? until_seen_at - 1 : 0);
    printf("seconds=%.2f\nreq_per_s=%.0f\n", elapsed,
           elapsed > 0 ? (sum->ok + sum->wrong) / elapsed : 0);
    if (opt_rss_pid) {
        if (rss_warm_taken)
            rss_print("warm", &rss_warm);
        rss_print("end", &rss_end);
        if (curve_n) {
            printf("rss_curve=");
            for (i = 0; i < curve_n; i++)
                printf("%s%lu:%ld", i ? "," : "", curve_at[i], curve_kb[i]);
            printf("\n");
        }
    }
}

int main(int argc, char **argv)
{
    conn_t *conns, sum;
    unsigned nconns;
    int g;
    double elapsed;

    parse_args(argc, argv);
    signal(SIGPIPE, SIG_IGN);
    for (g = 0; g < ncerts; g++)
        certs[g].ctx = make_ctx(&certs[g]);
    if (opt_unanswered_log && !(unanswered_fp = fopen(opt_unanswered_log, "w")))
        die("%s: %s", opt_unanswered_log, strerror(errno));

    conns = conns_create(&nconns);
    elapsed = run_conns(conns, nconns);
    conns_sum(conns, nconns, &sum);
    print_counts(conns, nconns, &sum);
    print_timing(&sum, elapsed);
    if (unanswered_fp)
        fclose(unanswered_fp);
    return sum.wrong || sum.transport || sum.ok + sum.wrong != sum.todo;
}
