/*
 * wsproto_tw benchmark load generator: a single-threaded epoll WebSocket
 * client (RFC 6455, optionally RFC 7692) that drives an echo server, checks
 * every echoed byte, and reports throughput, latency, the server's CPU time
 * (from /proc/PID/stat) and its own CPU time, as one JSON object on stdout.
 *
 * Modes:
 *   echo       N connections, K messages in flight on each; every echo is
 *              compared byte for byte with what was sent.
 *   handshake  P parallel loops of: connect, opening handshake (the
 *              Sec-WebSocket-Accept is checked), closing handshake, wait
 *              for the server to close TCP.
 *   idle       open N connections and hold them; report the server's RSS
 *              growth per connection (--deflate: each connection offers
 *              permessage-deflate, which the server must accept).
 *   broadcast  fan-out through a server that sends every message it gets to
 *              all its clients, the sender included: open N receivers and
 *              one sender (N + 1 connections), then, round after round, the
 *              sender sends one message and the round ends when all N + 1
 *              connections have it (each copy checked byte for byte); the
 *              next round starts then. Reported: deliveries ((N + 1) per
 *              round), the server's CPU time over the measured rounds, and
 *              the time from the send to the last copy received (p50, p99
 *              over the rounds). Rounds go on for --duration seconds after
 *              --warmup, and past it until --min-rounds rounds have been
 *              measured. Connections open, then --settle seconds
 *              pass before the first round (a server may register a client
 *              only after its handshake response has gone out).
 *
 * Open-loop latency (--rate R, echo mode): instead of keeping K messages
 * in flight and sending the next when an echo comes back (a closed loop,
 * where a slow reply delays the sends after it and so hides the latency
 * they would have seen: "coordinated omission"), messages are sent on a
 * fixed schedule, R per second in all, round-robin over the connections:
 * message k is due at start + k / R, from a timerfd, whether or not the
 * echoes of earlier ones have come back. Latency is the time from when a
 * message was due (its scheduled time, not when it was written) to its
 * echo, so any delay, the server's or a late send's, counts. The report
 * also gives how late sends went out (send_lag_*), the load generator's
 * own share of the latency. A connection more than RATE_BACKLOG messages
 * behind fails the run: the server can't keep up with the rate.
 *
 * --offer PARAMS sets the permessage-deflate parameters offered with
 * --deflate (default "client_no_context_takeover;
 * server_no_context_takeover"; a browser offers "client_max_window_bits").
 * The load generator always compresses without context takeover, so an
 * offer without client_no_context_takeover is only right as long as the
 * server does not lower client_max_window_bits: use it for idle mode.
 *
 * --raw speaks no WebSocket at all (for a plain TCP echo server): no
 * handshake, and the client's masked frames come back as they were sent,
 * so the same frame parser checks them.
 *
 * Build: cc -O2 -o loadgen loadgen.c -lz
 */

#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

/* ------------------------------------------------------------------ */
/* options                                                              */

static const char *opt_mode = "echo";
static const char *opt_host = "127.0.0.1";
static int opt_port = 0;
static const char *opt_path = "/";
static int opt_conns = 1;
static int opt_inflight = 1;
static size_t opt_size = 32;
static int opt_binary = 0;
static int opt_raw = 0;
static int opt_deflate = 0;
static int opt_json = 0; /* compressible JSON-like text payload */
static double opt_warmup = 1.0;
static double opt_duration = 5.0;
static int opt_parallel = 32;
static int opt_server_pid = 0;
static int opt_warm_conns = 50;
static double opt_settle = 2.0;
static int opt_src_ips = 16; /* source addresses 127.0.0.2 .. */
static double opt_rate = 0;  /* open loop: messages per second in all */
static int opt_min_rounds = 0; /* broadcast: measure at least this many rounds */
static const char *opt_offer = "client_no_context_takeover; server_no_context_takeover";

/* Most messages one connection may have unanswered with --rate. */
#define RATE_BACKLOG 4096
/* Slots of each connection's in-flight ring: --inflight, or RATE_BACKLOG. */
static int ring_cap = 1;

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: ");
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    exit(2);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static double self_cpu(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* utime + stime of the server, in seconds; -1 if unknown. */
static double server_cpu(void)
{
    if (!opt_server_pid)
        return -1;
    char path[64], buf[4096];
    snprintf(path, sizeof path, "/proc/%d/stat", opt_server_pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (!p)
        return -1;
    unsigned long long utime = 0, stime = 0;
    /* fields after ")": state(3) ... utime(14) stime(15) */
    int field = 2;
    char *tok = strtok(p + 1, " ");
    while (tok) {
        field++;
        if (field == 14)
            utime = strtoull(tok, NULL, 10);
        if (field == 15) {
            stime = strtoull(tok, NULL, 10);
            break;
        }
        tok = strtok(NULL, " ");
    }
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* resident set size of the server in bytes; -1 if unknown. */
static long long server_rss(void)
{
    if (!opt_server_pid)
        return -1;
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/statm", opt_server_pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long long size = 0, resident = 0;
    if (fscanf(f, "%lld %lld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/* ------------------------------------------------------------------ */
/* random numbers, SHA-1, base64                                        */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ull;
}

typedef struct {
    uint32_t h[5];
    uint64_t len;
    unsigned char block[64];
    size_t used;
} sha1_ctx;

#define ROL(x, n) (((x) << (n)) | ((x) >> (32 - (n))))

static void sha1_block(sha1_ctx *c, const unsigned char *p)
{
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 | (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 80; i++)
        w[i] = ROL(w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16], 1);
    uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3], e = c->h[4];
    for (int i = 0; i < 80; i++) {
        uint32_t f, k;
        if (i < 20) {
            f = (b & cc) | (~b & d);
            k = 0x5A827999;
        } else if (i < 40) {
            f = b ^ cc ^ d;
            k = 0x6ED9EBA1;
        } else if (i < 60) {
            f = (b & cc) | (b & d) | (cc & d);
            k = 0x8F1BBCDC;
        } else {
            f = b ^ cc ^ d;
            k = 0xCA62C1D6;
        }
        uint32_t t = ROL(a, 5) + f + e + k + w[i];
        e = d;
        d = cc;
        cc = ROL(b, 30);
        b = a;
        a = t;
    }
    c->h[0] += a;
    c->h[1] += b;
    c->h[2] += cc;
    c->h[3] += d;
    c->h[4] += e;
}

static void sha1(const unsigned char *data, size_t n, unsigned char out[20])
{
    sha1_ctx c = {{0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0}, 0, {0}, 0};
    c.len = n;
    while (n >= 64) {
        sha1_block(&c, data);
        data += 64;
        n -= 64;
    }
    unsigned char tail[128] = {0};
    memcpy(tail, data, n);
    tail[n] = 0x80;
    size_t total = n + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = c.len * 8;
    for (int i = 0; i < 8; i++)
        tail[total - 1 - i] = (unsigned char)(bits >> (8 * i));
    sha1_block(&c, tail);
    if (total == 128)
        sha1_block(&c, tail + 64);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = c.h[i] >> 24;
        out[4 * i + 1] = c.h[i] >> 16;
        out[4 * i + 2] = c.h[i] >> 8;
        out[4 * i + 3] = c.h[i];
    }
}

static void base64(const unsigned char *in, size_t n, char *out)
{
    static const char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < n ? in[i + 2] : 0);
        out[o++] = tbl[v >> 18 & 63];
        out[o++] = tbl[v >> 12 & 63];
        out[o++] = i + 1 < n ? tbl[v >> 6 & 63] : '=';
        out[o++] = i + 2 < n ? tbl[v & 63] : '=';
    }
    out[o] = 0;
}

/* ------------------------------------------------------------------ */
/* buffers                                                              */

typedef struct {
    unsigned char *p;
    size_t start, end, cap;
} buf_t;

static void buf_reserve(buf_t *b, size_t more)
{
    if (b->end + more <= b->cap)
        return;
    if (b->start > 0) {
        memmove(b->p, b->p + b->start, b->end - b->start);
        b->end -= b->start;
        b->start = 0;
        if (b->end + more <= b->cap)
            return;
    }
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->end + more)
        cap *= 2;
    b->p = realloc(b->p, cap);
    if (!b->p)
        die("out of memory");
    b->cap = cap;
}

static size_t buf_len(const buf_t *b) { return b->end - b->start; }

static void buf_free(buf_t *b)
{
    free(b->p);
    memset(b, 0, sizeof *b);
}

/* XOR n bytes at p with the 4-byte key, starting at key offset `phase`. */
static void xor_mask(unsigned char *p, size_t n, const unsigned char key[4], size_t phase)
{
    unsigned char k[4];
    for (int i = 0; i < 4; i++)
        k[i] = key[(phase + i) & 3];
    size_t i = 0;
    if (n >= 16) {
        uint64_t k8;
        unsigned char kb[8] = {k[0], k[1], k[2], k[3], k[0], k[1], k[2], k[3]};
        memcpy(&k8, kb, 8);
        for (; i + 8 <= n; i += 8) {
            uint64_t v;
            memcpy(&v, p + i, 8);
            v ^= k8;
            memcpy(p + i, &v, 8);
        }
    }
    for (; i < n; i++)
        p[i] ^= k[i & 3];
}

/* ------------------------------------------------------------------ */
/* payloads                                                             */

/* Every message is the base pattern with its sequence number written in
 * the first PREFIX bytes (as hex digits in text messages), so that each
 * echo can be matched to exactly one message sent. */
#define PREFIX 16
static unsigned char *pattern;

static void make_pattern(void)
{
    size_t n = opt_size < PREFIX ? PREFIX : opt_size;
    pattern = malloc(n + 1);
    if (opt_json) {
        static const char *names[] = {"sensor", "gateway", "meter", "pump", "valve"};
        size_t o = 0;
        while (o < n) {
            char rec[160];
            int len = snprintf(rec, sizeof rec,
                               "{\"id\":%u,\"kind\":\"%s\",\"value\":%u.%02u,\"unit\":\"kPa\",\"ok\":true},",
                               (unsigned)(rnd() % 100000), names[rnd() % 5], (unsigned)(rnd() % 1000),
                               (unsigned)(rnd() % 100));
            for (int i = 0; i < len && o < n; i++)
                pattern[o++] = rec[i];
        }
    } else if (opt_binary) {
        for (size_t i = 0; i < n; i++)
            pattern[i] = (unsigned char)rnd();
    } else {
        static const char alpha[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ";
        for (size_t i = 0; i < n; i++)
            pattern[i] = alpha[rnd() % 63];
    }
}

static void seq_prefix(uint64_t seq, unsigned char out[PREFIX])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < PREFIX; i++)
        out[i] = hex[(seq >> (4 * (PREFIX - 1 - i))) & 15];
}

/* ------------------------------------------------------------------ */
/* connections                                                          */

enum { ST_CONNECTING, ST_HANDSHAKE, ST_OPEN, ST_CLOSE_SENT, ST_WAIT_EOF, ST_DEAD };

typedef struct {
    int fd;
    int state;
    int writable_armed;
    buf_t out;
    char head[8192];
    size_t head_len;
    char accept[32];
    /* in-flight ring */
    uint64_t *ring_seq;
    uint64_t *ring_t;
    int ring_head, ring_count;
    uint64_t next_seq;
    /* frame parser */
    unsigned char hdr[14];
    int hdr_have, hdr_need;
    int in_payload;
    uint64_t remaining;
    int f_opcode, f_fin, f_rsv1, f_masked;
    unsigned char f_key[4];
    uint64_t f_off; /* payload bytes of this frame seen */
    int msg_active, msg_opcode, msg_compressed;
    uint64_t msg_off;
    unsigned char ctrl[128];
    int ctrl_len;
    buf_t zin;
    int deflate, server_nct;
    z_stream inflater;
    int inflater_ready;
} conn_t;

static int epfd;
static conn_t *conns;
static int nconns;
static struct sockaddr_in server_addr;
static unsigned src_counter;

/* counters */
static uint64_t c_messages, c_bytes, c_handshakes, c_errors;
static uint64_t *lat;
static size_t lat_n, lat_cap = 1 << 22;
static int measuring;
static int stopping;
static z_stream deflater;
static unsigned char *zscratch;
static size_t zscratch_cap;
static unsigned char *ibuf; /* inflate output */
static size_t ibuf_cap;

static void record_latency(uint64_t ns)
{
    if (!measuring)
        return;
    uint64_t v = ns / 100; /* units of 0.1 us */
    if (lat_n < lat_cap)
        lat[lat_n++] = v;
    else
        lat[rnd() % lat_cap] = v;
}

static void fail(conn_t *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "loadgen: connection %ld: ", (long)(c - conns));
    vfprintf(stderr, fmt, ap);
    fprintf(stderr, "\n");
    va_end(ap);
    c_errors++;
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    c->state = ST_DEAD;
}

static void arm(conn_t *c, int want_write)
{
    if (c->writable_armed == want_write)
        return;
    struct epoll_event ev = {.events = EPOLLIN | (want_write ? EPOLLOUT : 0), .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev);
    c->writable_armed = want_write;
}

static void flush_out(conn_t *c)
{
    while (buf_len(&c->out)) {
        ssize_t n = write(c->fd, c->out.p + c->out.start, buf_len(&c->out));
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            if (!stopping)
                fail(c, "write: %s", strerror(errno));
            return;
        }
        c->out.start += (size_t)n;
    }
    if (!buf_len(&c->out))
        c->out.start = c->out.end = 0;
    arm(c, buf_len(&c->out) > 0);
}

static void put_frame_header(buf_t *b, int b0, size_t n, const unsigned char key[4])
{
    buf_reserve(b, 14 + n);
    unsigned char *p = b->p + b->end;
    size_t h = 0;
    p[h++] = (unsigned char)b0;
    if (n < 126) {
        p[h++] = 0x80 | (unsigned char)n;
    } else if (n < 65536) {
        p[h++] = 0x80 | 126;
        p[h++] = n >> 8;
        p[h++] = n & 0xFF;
    } else {
        p[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--)
            p[h++] = (unsigned char)((uint64_t)n >> (8 * i));
    }
    memcpy(p + h, key, 4);
    b->end += h + 4;
}

static void random_key(unsigned char key[4])
{
    uint64_t r = rnd();
    memcpy(key, &r, 4);
}

static void send_control(conn_t *c, int opcode, const unsigned char *payload, size_t n)
{
    unsigned char key[4];
    random_key(key);
    put_frame_header(&c->out, 0x80 | opcode, n, key);
    unsigned char *p = c->out.p + c->out.end;
    memcpy(p, payload, n);
    xor_mask(p, n, key, 0);
    c->out.end += n;
}

/* Send the connection's next message; `due` is when it was scheduled
 * (--rate), or 0 for now: latency is measured from it. */
static void send_message(conn_t *c, uint64_t due)
{
    if (c->ring_count == ring_cap) {
        fail(c, "%d messages unanswered: the server can't keep up with --rate", ring_cap);
        return;
    }
    uint64_t seq = c->next_seq++;
    unsigned char prefix[PREFIX];
    seq_prefix(seq, prefix);
    size_t n = opt_size;
    unsigned char key[4];
    random_key(key);
    int opcode = opt_binary ? 2 : 1;
    if (c->deflate) {
        /* RFC 7692 §7.2.1: compress, remove the 00 00 ff ff tail. A fresh
         * context for each message (client_no_context_takeover). */
        size_t bound = deflateBound(&deflater, n) + 16;
        if (zscratch_cap < bound) {
            zscratch = realloc(zscratch, bound);
            zscratch_cap = bound;
        }
        deflateReset(&deflater);
        unsigned char *plain = malloc(n);
        memcpy(plain, pattern, n);
        memcpy(plain, prefix, n < PREFIX ? n : PREFIX);
        deflater.next_in = plain;
        deflater.avail_in = (uInt)n;
        deflater.next_out = zscratch;
        deflater.avail_out = (uInt)zscratch_cap;
        if (deflate(&deflater, Z_SYNC_FLUSH) != Z_OK)
            die("deflate failed");
        free(plain);
        size_t zn = zscratch_cap - deflater.avail_out;
        if (zn >= 4 && memcmp(zscratch + zn - 4, "\x00\x00\xff\xff", 4) == 0)
            zn -= 4;
        put_frame_header(&c->out, 0x80 | 0x40 | opcode, zn, key);
        unsigned char *p = c->out.p + c->out.end;
        memcpy(p, zscratch, zn);
        xor_mask(p, zn, key, 0);
        c->out.end += zn;
    } else {
        put_frame_header(&c->out, 0x80 | opcode, n, key);
        unsigned char *p = c->out.p + c->out.end;
        memcpy(p, pattern, n);
        memcpy(p, prefix, n < PREFIX ? n : PREFIX);
        xor_mask(p, n, key, 0);
        c->out.end += n;
    }
    int slot = (c->ring_head + c->ring_count) % ring_cap;
    c->ring_seq[slot] = seq;
    c->ring_t[slot] = due ? due : now_ns();
    c->ring_count++;
}

/* Broadcast mode: expect message `seq`, sent at `t`, on a receiver. */
static void expect_message(conn_t *c, uint64_t seq, uint64_t t)
{
    if (c->ring_count == ring_cap) {
        fail(c, "the previous broadcast message never came");
        return;
    }
    int slot = (c->ring_head + c->ring_count) % ring_cap;
    c->ring_seq[slot] = seq;
    c->ring_t[slot] = t;
    c->ring_count++;
}

/* Compare bytes [off, off+n) of the message with sequence number seq. */
static int verify_chunk(uint64_t seq, uint64_t off, const unsigned char *data, size_t n)
{
    if (off + n > opt_size)
        return 0;
    size_t i = 0;
    if (off < PREFIX) {
        unsigned char prefix[PREFIX];
        seq_prefix(seq, prefix);
        size_t lim = PREFIX < opt_size ? PREFIX : opt_size;
        for (; i < n && off + i < lim; i++)
            if (data[i] != prefix[off + i])
                return 0;
    }
    if (i < n && memcmp(data + i, pattern + off + i, n - i) != 0)
        return 0;
    return 1;
}

static int mode_echo, mode_handshake, mode_idle, mode_broadcast;
static void broadcast_received(uint64_t sent);

static void message_done(conn_t *c)
{
    if (c->ring_count == 0) {
        fail(c, "echo of a message that was never sent");
        return;
    }
    if (c->msg_off != opt_size) {
        fail(c, "echo has %llu bytes, sent %zu", (unsigned long long)c->msg_off, opt_size);
        return;
    }
    uint64_t t = c->ring_t[c->ring_head];
    c->ring_head = (c->ring_head + 1) % ring_cap;
    c->ring_count--;
    c->msg_active = 0;
    if (mode_broadcast) {
        broadcast_received(t);
        return;
    }
    uint64_t now = now_ns();
    record_latency(now - t);
    if (measuring) {
        c_messages++;
        c_bytes += opt_size;
    }
    if (!stopping && opt_rate <= 0)
        send_message(c, 0);
}

static void inflate_message(conn_t *c)
{
    if (!c->inflater_ready) {
        memset(&c->inflater, 0, sizeof c->inflater);
        if (inflateInit2(&c->inflater, -15) != Z_OK)
            die("inflateInit2 failed");
        c->inflater_ready = 1;
    }
    buf_reserve(&c->zin, 4);
    memcpy(c->zin.p + c->zin.end, "\x00\x00\xff\xff", 4);
    c->zin.end += 4;
    size_t want = opt_size + 64;
    if (ibuf_cap < want) {
        ibuf = realloc(ibuf, want);
        ibuf_cap = want;
    }
    c->inflater.next_in = c->zin.p + c->zin.start;
    c->inflater.avail_in = (uInt)buf_len(&c->zin);
    c->inflater.next_out = ibuf;
    c->inflater.avail_out = (uInt)ibuf_cap;
    int rc = inflate(&c->inflater, Z_SYNC_FLUSH);
    if (rc != Z_OK && rc != Z_BUF_ERROR) {
        fail(c, "inflate: %d", rc);
        return;
    }
    if (c->inflater.avail_in != 0) {
        fail(c, "inflated message larger than sent");
        return;
    }
    size_t got = ibuf_cap - c->inflater.avail_out;
    c->zin.start = c->zin.end = 0;
    if (c->server_nct)
        inflateReset(&c->inflater);
    if (c->ring_count == 0) {
        fail(c, "echo of a message that was never sent");
        return;
    }
    if (got != opt_size || !verify_chunk(c->ring_seq[c->ring_head], 0, ibuf, got)) {
        fail(c, "compressed echo differs from the message sent (%zu bytes)", got);
        return;
    }
    c->msg_off = got;
    message_done(c);
}

static void control_frame(conn_t *c)
{
    if (c->f_opcode == 9) { /* ping: answer (RFC 6455 §5.5.2) */
        send_control(c, 10, c->ctrl, (size_t)c->ctrl_len);
    } else if (c->f_opcode == 8) {
        if (c->state == ST_CLOSE_SENT) {
            int code = c->ctrl_len >= 2 ? c->ctrl[0] << 8 | c->ctrl[1] : 1005;
            if (code != 1000)
                fail(c, "server closed with %d", code);
            else
                c->state = ST_WAIT_EOF;
        } else if (!stopping) {
            int code = c->ctrl_len >= 2 ? c->ctrl[0] << 8 | c->ctrl[1] : 1005;
            fail(c, "unexpected close frame from the server, code %d: %.*s", code,
                 c->ctrl_len > 2 ? c->ctrl_len - 2 : 0, c->ctrl + 2);
        }
    }
}

/* Parse frames out of data (which may be modified: masked payloads are
 * unmasked in place). Returns 0 if the connection failed. */
static int parse_frames(conn_t *c, unsigned char *data, size_t n)
{
    while (n > 0 && c->state != ST_DEAD) {
        if (!c->in_payload) {
            if (c->hdr_have < 2) {
                c->hdr[c->hdr_have++] = *data++;
                n--;
                if (c->hdr_have == 2) {
                    int len7 = c->hdr[1] & 0x7F;
                    c->f_masked = c->hdr[1] >> 7;
                    c->hdr_need = 2 + (len7 == 126 ? 2 : len7 == 127 ? 8 : 0) + (c->f_masked ? 4 : 0);
                }
                if (c->hdr_have < 2 || c->hdr_have < c->hdr_need)
                    continue;
            } else {
                size_t take = (size_t)(c->hdr_need - c->hdr_have);
                if (take > n)
                    take = n;
                memcpy(c->hdr + c->hdr_have, data, take);
                c->hdr_have += (int)take;
                data += take;
                n -= take;
                if (c->hdr_have < c->hdr_need)
                    continue;
            }
            /* header complete */
            int len7 = c->hdr[1] & 0x7F;
            int pos = 2;
            uint64_t len = (uint64_t)len7;
            if (len7 == 126) {
                len = (uint64_t)c->hdr[2] << 8 | c->hdr[3];
                pos = 4;
            } else if (len7 == 127) {
                len = 0;
                for (int i = 0; i < 8; i++)
                    len = len << 8 | c->hdr[2 + i];
                pos = 10;
            }
            if (c->f_masked)
                memcpy(c->f_key, c->hdr + pos, 4);
            if (c->f_masked && !opt_raw) {
                fail(c, "masked frame from the server");
                return 0;
            }
            c->f_opcode = c->hdr[0] & 0x0F;
            c->f_fin = c->hdr[0] >> 7;
            c->f_rsv1 = (c->hdr[0] >> 6) & 1;
            c->remaining = len;
            c->f_off = 0;
            c->hdr_have = 0;
            c->in_payload = 1;
            if (c->f_opcode >= 8) {
                if (len > 125 || !c->f_fin) {
                    fail(c, "bad control frame");
                    return 0;
                }
                c->ctrl_len = 0;
            } else if (c->f_opcode == 0) {
                if (!c->msg_active) {
                    fail(c, "continuation without a message");
                    return 0;
                }
            } else {
                if (c->msg_active) {
                    fail(c, "new message inside a fragmented one");
                    return 0;
                }
                int want = opt_binary ? 2 : 1;
                if (c->f_opcode != want) {
                    fail(c, "echo has opcode %d, sent %d", c->f_opcode, want);
                    return 0;
                }
                if (c->f_rsv1 && !c->deflate) {
                    fail(c, "rsv1 without permessage-deflate");
                    return 0;
                }
                c->msg_active = 1;
                c->msg_opcode = c->f_opcode;
                c->msg_compressed = c->f_rsv1;
                c->msg_off = 0;
            }
        }
        /* payload */
        size_t take = c->remaining < n ? (size_t)c->remaining : n;
        if (take) {
            if (c->f_masked)
                xor_mask(data, take, c->f_key, (size_t)(c->f_off & 3));
            if (c->f_opcode >= 8) {
                memcpy(c->ctrl + c->ctrl_len, data, take);
                c->ctrl_len += (int)take;
            } else if (c->msg_compressed) {
                buf_reserve(&c->zin, take);
                memcpy(c->zin.p + c->zin.end, data, take);
                c->zin.end += take;
            } else {
                if (c->ring_count == 0) {
                    fail(c, "echo of a message that was never sent");
                    return 0;
                }
                if (!verify_chunk(c->ring_seq[c->ring_head], c->msg_off, data, take)) {
                    fail(c, "echo differs from the message sent at byte %llu",
                         (unsigned long long)c->msg_off);
                    return 0;
                }
                c->msg_off += take;
            }
            c->f_off += take;
            c->remaining -= take;
            data += take;
            n -= take;
        }
        if (c->remaining == 0) {
            c->in_payload = 0;
            if (c->f_opcode >= 8)
                control_frame(c);
            else if (c->f_fin) {
                if (c->msg_compressed)
                    inflate_message(c);
                else
                    message_done(c);
            }
        }
    }
    return c->state != ST_DEAD;
}

/* ------------------------------------------------------------------ */
/* connecting and the opening handshake                                 */

static void start_connect(conn_t *c)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (opt_src_ips > 1) {
        /* Spread connections over several loopback source addresses so
         * that ephemeral ports never run out. */
        struct sockaddr_in src = {.sin_family = AF_INET};
        src.sin_addr.s_addr = htonl(0x7F000002u + (src_counter++ % (unsigned)opt_src_ips));
        setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        if (bind(fd, (struct sockaddr *)&src, sizeof src) < 0)
            die("bind: %s", strerror(errno));
    }
    int rc = connect(fd, (struct sockaddr *)&server_addr, sizeof server_addr);
    if (rc < 0 && errno != EINPROGRESS)
        die("connect: %s", strerror(errno));
    memset(c, 0, sizeof *c - 0);
    c->fd = fd;
    c->state = ST_CONNECTING;
    c->writable_armed = 1;
    c->ring_seq = calloc((size_t)ring_cap, sizeof(uint64_t));
    c->ring_t = calloc((size_t)ring_cap, sizeof(uint64_t));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev);
}

static void release(conn_t *c)
{
    if (c->fd >= 0) {
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        close(c->fd);
    }
    c->fd = -1;
    buf_free(&c->out);
    buf_free(&c->zin);
    free(c->ring_seq);
    free(c->ring_t);
    c->ring_seq = c->ring_t = NULL;
    if (c->inflater_ready)
        inflateEnd(&c->inflater);
    c->inflater_ready = 0;
}

static void send_request(conn_t *c)
{
    unsigned char nonce[16];
    for (int i = 0; i < 16; i++)
        nonce[i] = (unsigned char)rnd();
    char key[32];
    base64(nonce, 16, key);
    char joined[128];
    snprintf(joined, sizeof joined, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", key);
    unsigned char digest[20];
    sha1((unsigned char *)joined, strlen(joined), digest);
    base64(digest, 20, c->accept);
    char req[1024];
    int n = snprintf(req, sizeof req,
                     "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s%s%s%s\r\n",
                     opt_path, opt_host, opt_port, key,
                     opt_deflate ? "Sec-WebSocket-Extensions: permessage-deflate" : "",
                     opt_deflate && *opt_offer ? "; " : "", opt_deflate ? opt_offer : "",
                     opt_deflate ? "\r\n" : "");
    buf_reserve(&c->out, (size_t)n);
    memcpy(c->out.p + c->out.end, req, (size_t)n);
    c->out.end += (size_t)n;
    c->state = ST_HANDSHAKE;
    c->head_len = 0;
}

static int header_has(const char *head, const char *name, const char *needle)
{
    /* case-insensitive header lookup; needle is searched in the value */
    size_t nl = strlen(name);
    const char *p = head;
    while ((p = strstr(p, "\r\n")) != NULL) {
        p += 2;
        if (strncasecmp(p, name, nl) == 0 && p[nl] == ':') {
            const char *v = p + nl + 1;
            const char *e = strstr(v, "\r\n");
            size_t vl = e ? (size_t)(e - v) : strlen(v);
            char tmp[1024];
            if (vl >= sizeof tmp)
                vl = sizeof tmp - 1;
            memcpy(tmp, v, vl);
            tmp[vl] = 0;
            if (!needle || strcasestr(tmp, needle))
                return 1;
        }
    }
    return 0;
}

/* The connection has just opened (handshake done, or TCP up in raw mode). */
static void on_open(conn_t *c);

/* Returns the number of bytes of data consumed by the head, or -1. */
static long handle_head(conn_t *c, const unsigned char *data, size_t n)
{
    size_t room = sizeof c->head - 1 - c->head_len;
    size_t take = n < room ? n : room;
    memcpy(c->head + c->head_len, data, take);
    size_t old = c->head_len;
    c->head_len += take;
    c->head[c->head_len] = 0;
    char *end = strstr(c->head, "\r\n\r\n");
    if (!end) {
        if (c->head_len >= sizeof c->head - 1) {
            fail(c, "response head too large");
            return -1;
        }
        return (long)take;
    }
    size_t head_size = (size_t)(end - c->head) + 4;
    end[2] = 0;
    if (strncmp(c->head, "HTTP/1.1 101", 12) != 0) {
        char *eol = strstr(c->head, "\r\n");
        if (eol)
            *eol = 0;
        fail(c, "handshake rejected: %s", c->head);
        return -1;
    }
    char want[64];
    snprintf(want, sizeof want, "%s", c->accept);
    if (!header_has(c->head, "Sec-WebSocket-Accept", want)) {
        fail(c, "wrong Sec-WebSocket-Accept");
        return -1;
    }
    if (opt_deflate) {
        c->deflate = header_has(c->head, "Sec-WebSocket-Extensions", "permessage-deflate");
        c->server_nct = header_has(c->head, "Sec-WebSocket-Extensions", "server_no_context_takeover");
        if (!c->deflate) {
            fail(c, "server did not accept permessage-deflate");
            return -1;
        }
    }
    c->state = ST_OPEN;
    on_open(c);
    return (long)(head_size - old);
}

/* ------------------------------------------------------------------ */
/* the event loop                                                       */

static unsigned char *rbuf;
#define RBUF_SIZE (1 << 20)
static int opened, open_target;

static void on_open(conn_t *c)
{
    opened++;
    if (mode_echo && opt_rate <= 0) {
        for (int i = 0; i < opt_inflight; i++)
            send_message(c, 0);
    } else if (mode_handshake) {
        unsigned char code[2] = {1000 >> 8, 1000 & 0xFF};
        send_control(c, 8, code, 2);
        c->state = ST_CLOSE_SENT;
    }
}

static void handshake_cycle_done(conn_t *c)
{
    release(c);
    if (measuring)
        c_handshakes++;
    if (!stopping)
        start_connect(c);
    else
        c->state = ST_DEAD;
}

static void on_readable(conn_t *c)
{
    ssize_t n = read(c->fd, rbuf, RBUF_SIZE);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return;
        if (c->state == ST_WAIT_EOF && errno == ECONNRESET) {
            handshake_cycle_done(c);
            return;
        }
        if (!stopping)
            fail(c, "read: %s", strerror(errno));
        else
            release(c), c->state = ST_DEAD;
        return;
    }
    if (n == 0) {
        if (c->state == ST_WAIT_EOF) {
            handshake_cycle_done(c);
            return;
        }
        if (!stopping)
            fail(c, "server closed the connection");
        else
            release(c), c->state = ST_DEAD;
        return;
    }
    unsigned char *data = rbuf;
    size_t len = (size_t)n;
    if (c->state == ST_HANDSHAKE) {
        long used = handle_head(c, data, len);
        if (used < 0)
            return;
        data += used;
        len -= (size_t)used;
    }
    if (len && c->state != ST_HANDSHAKE) {
        if (!parse_frames(c, data, len))
            return;
    }
    if (c->state != ST_DEAD && c->fd >= 0)
        flush_out(c);
}

static void on_writable(conn_t *c)
{
    if (c->state == ST_CONNECTING) {
        int err = 0;
        socklen_t l = sizeof err;
        getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &l);
        if (err) {
            fail(c, "connect: %s", strerror(err));
            return;
        }
        if (opt_raw) {
            c->state = ST_OPEN;
            on_open(c);
        } else {
            send_request(c);
        }
    }
    flush_out(c);
}

/* --rate: the schedule of sends, on a timerfd in the epoll set. */
static int timer_fd = -1;
static char timer_tag; /* its epoll data.ptr */
static uint64_t rate_start, rate_next; /* ns; message rate_sent is due at rate_next */
static uint64_t rate_sent;
static uint64_t lag_sum, lag_max, lag_n; /* how late sends went out, ns */

static uint64_t rate_due(uint64_t k) { return rate_start + (uint64_t)((double)k * 1e9 / opt_rate); }

static void arm_timer(uint64_t at)
{
    struct itimerspec its = {{0, 0}, {(time_t)(at / 1000000000ull), (long)(at % 1000000000ull)}};
    if (timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
        die("timerfd_settime: %s", strerror(errno));
}

/* Send every message that is due, round-robin over the connections. */
static void send_due(void)
{
    uint64_t now = now_ns();
    while (!stopping && rate_next <= now && !c_errors) {
        conn_t *c = &conns[rate_sent % (uint64_t)nconns];
        if (c->state == ST_OPEN) {
            send_message(c, rate_next);
            if (c->fd >= 0)
                flush_out(c);
        }
        if (measuring) {
            uint64_t lag = now - rate_next;
            lag_sum += lag;
            lag_n++;
            if (lag > lag_max)
                lag_max = lag;
        }
        rate_next = rate_due(++rate_sent);
        now = now_ns();
    }
    if (!stopping)
        arm_timer(rate_next);
}

static void start_rate(void)
{
    timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
    if (timer_fd < 0)
        die("timerfd_create: %s", strerror(errno));
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &timer_tag};
    epoll_ctl(epfd, EPOLL_CTL_ADD, timer_fd, &ev);
    rate_start = rate_next = now_ns();
    rate_sent = 0;
    send_due();
}

/* Broadcast mode: the round in progress. */
static uint64_t bc_round, bc_sent_at;
static int bc_pending; /* connections still waiting for this round's message */
static uint64_t c_rounds, c_deliveries;

static void start_round(void)
{
    bc_round++;
    bc_sent_at = now_ns();
    bc_pending = nconns;
    for (int i = 1; i < nconns; i++)
        expect_message(&conns[i], bc_round, bc_sent_at);
    conns[0].next_seq = bc_round;
    send_message(&conns[0], bc_sent_at);
    if (conns[0].fd >= 0)
        flush_out(&conns[0]);
}

static void broadcast_received(uint64_t sent)
{
    (void)sent;
    if (--bc_pending > 0)
        return;
    record_latency(now_ns() - bc_sent_at);
    if (measuring) {
        c_rounds++;
        c_deliveries += (uint64_t)nconns;
        c_messages++;
        c_bytes += opt_size * (uint64_t)nconns;
    }
}

static void loop_once(int timeout_ms)
{
    struct epoll_event evs[256];
    int n = epoll_wait(epfd, evs, 256, timeout_ms);
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == &timer_tag) {
            uint64_t expirations;
            if (read(timer_fd, &expirations, sizeof expirations) < 0 && errno != EAGAIN)
                die("timerfd read: %s", strerror(errno));
            send_due();
            continue;
        }
        conn_t *c = evs[i].data.ptr;
        if (c->fd < 0)
            continue;
        if (evs[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))
            on_readable(c);
        if (c->fd >= 0 && (evs[i].events & EPOLLOUT))
            on_writable(c);
    }
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static double pct(double q)
{
    if (!lat_n)
        return -1;
    size_t i = (size_t)(q * (double)(lat_n - 1));
    return (double)lat[i] / 10.0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: loadgen --port P [--mode echo|handshake|idle|broadcast] [--host H] [--path /]\n"
            "  [--conns N] [--inflight K] [--rate MSG_PER_S] [--size BYTES] [--binary] [--json] [--raw]\n"
            "  [--deflate] [--offer PARAMS] [--warmup S] [--duration S] [--parallel P] [--server-pid PID]\n"
            "  [--warm-conns N] [--settle S] [--src-ips N] [--min-rounds N]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
#define ARG(name) (strcmp(a, name) == 0 && i + 1 < argc)
        if (ARG("--mode"))
            opt_mode = argv[++i];
        else if (ARG("--host"))
            opt_host = argv[++i];
        else if (ARG("--port"))
            opt_port = atoi(argv[++i]);
        else if (ARG("--path"))
            opt_path = argv[++i];
        else if (ARG("--conns"))
            opt_conns = atoi(argv[++i]);
        else if (ARG("--inflight"))
            opt_inflight = atoi(argv[++i]);
        else if (ARG("--size"))
            opt_size = (size_t)strtoull(argv[++i], NULL, 10);
        else if (ARG("--warmup"))
            opt_warmup = atof(argv[++i]);
        else if (ARG("--duration"))
            opt_duration = atof(argv[++i]);
        else if (ARG("--parallel"))
            opt_parallel = atoi(argv[++i]);
        else if (ARG("--server-pid"))
            opt_server_pid = atoi(argv[++i]);
        else if (ARG("--warm-conns"))
            opt_warm_conns = atoi(argv[++i]);
        else if (ARG("--settle"))
            opt_settle = atof(argv[++i]);
        else if (ARG("--src-ips"))
            opt_src_ips = atoi(argv[++i]);
        else if (ARG("--rate"))
            opt_rate = atof(argv[++i]);
        else if (ARG("--min-rounds"))
            opt_min_rounds = atoi(argv[++i]);
        else if (ARG("--offer"))
            opt_offer = argv[++i];
        else if (strcmp(a, "--binary") == 0)
            opt_binary = 1;
        else if (strcmp(a, "--json") == 0)
            opt_json = 1;
        else if (strcmp(a, "--raw") == 0)
            opt_raw = 1;
        else if (strcmp(a, "--deflate") == 0)
            opt_deflate = 1;
        else
            usage();
    }
    if (!opt_port)
        usage();
    mode_echo = strcmp(opt_mode, "echo") == 0;
    mode_handshake = strcmp(opt_mode, "handshake") == 0;
    mode_idle = strcmp(opt_mode, "idle") == 0;
    mode_broadcast = strcmp(opt_mode, "broadcast") == 0;
    if (!mode_echo && !mode_handshake && !mode_idle && !mode_broadcast)
        usage();
    if (opt_rate < 0 || (opt_rate > 0 && !mode_echo))
        die("--rate is for echo mode, and positive");
    if (mode_broadcast && (opt_raw || opt_deflate))
        die("broadcast mode is WebSocket without --deflate");
    ring_cap = opt_rate > 0 ? RATE_BACKLOG : mode_broadcast ? 1 : opt_inflight;
    if (opt_raw && (mode_handshake || opt_deflate))
        die("--raw is for echo and idle modes without --deflate");
    if (opt_json && opt_binary)
        die("--json payloads are text");
    if (opt_inflight < 1 || opt_conns < 1)
        usage();

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    rng_state ^= (uint64_t)now_ns() ^ ((uint64_t)getpid() << 32);
    make_pattern();
    if (opt_deflate) {
        memset(&deflater, 0, sizeof deflater);
        if (deflateInit2(&deflater, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            die("deflateInit2 failed");
    }
    rbuf = malloc(RBUF_SIZE);
    lat = malloc(lat_cap * sizeof *lat);
    server_addr.sin_family = AF_INET;
    server_addr.sin_port = htons((uint16_t)opt_port);
    if (inet_pton(AF_INET, opt_host, &server_addr.sin_addr) != 1)
        die("bad host %s", opt_host);
    epfd = epoll_create1(0);

    double cpu0 = 0, cpu1 = 0, scpu0 = 0, scpu1 = 0;
    uint64_t t0 = 0, t1 = 0;
    long long rss0 = -1, rss1 = -1;

    if (mode_echo) {
        nconns = opt_conns;
        conns = calloc((size_t)nconns, sizeof *conns);
        /* Open every connection first, a few at a time. */
        int started = 0;
        uint64_t deadline = now_ns() + 60ull * 1000000000ull;
        while (opened < nconns) {
            while (started < nconns && started - opened < opt_parallel)
                start_connect(&conns[started++]);
            loop_once(10);
            if (c_errors)
                die("could not open the connections");
            if (now_ns() > deadline)
                die("timed out opening connections (%d of %d open)", opened, nconns);
        }
        uint64_t start = now_ns();
        uint64_t warm_end = start + (uint64_t)(opt_warmup * 1e9);
        uint64_t end = warm_end + (uint64_t)(opt_duration * 1e9);
        if (opt_rate > 0)
            start_rate();
        while (!c_errors) {
            uint64_t now = now_ns();
            if (!measuring && now >= warm_end && t0 == 0) {
                measuring = 1;
                t0 = now;
                cpu0 = self_cpu();
                scpu0 = server_cpu();
            }
            if (measuring && now >= end) {
                t1 = now;
                cpu1 = self_cpu();
                scpu1 = server_cpu();
                measuring = 0;
                break;
            }
            loop_once(5);
        }
        /* Let what is in flight come back (each echo is still checked). */
        stopping = 1;
        uint64_t drain_end = now_ns() + 30ull * 1000000000ull;
        for (;;) {
            int pending = 0;
            for (int i = 0; i < nconns; i++)
                if (conns[i].state == ST_OPEN && conns[i].ring_count)
                    pending = 1;
            if (!pending || c_errors || now_ns() > drain_end)
                break;
            loop_once(5);
        }
        for (int i = 0; i < nconns; i++)
            if (conns[i].state == ST_OPEN && conns[i].ring_count && !c_errors)
                fail(&conns[i], "%d echo(es) never came back", conns[i].ring_count);
    } else if (mode_handshake) {
        nconns = opt_parallel;
        conns = calloc((size_t)nconns, sizeof *conns);
        for (int i = 0; i < nconns; i++)
            start_connect(&conns[i]);
        uint64_t start = now_ns();
        uint64_t warm_end = start + (uint64_t)(opt_warmup * 1e9);
        uint64_t end = warm_end + (uint64_t)(opt_duration * 1e9);
        while (!c_errors) {
            uint64_t now = now_ns();
            if (!measuring && now >= warm_end && t0 == 0) {
                measuring = 1;
                t0 = now;
                cpu0 = self_cpu();
                scpu0 = server_cpu();
            }
            if (measuring && now >= end) {
                t1 = now;
                cpu1 = self_cpu();
                scpu1 = server_cpu();
                measuring = 0;
                break;
            }
            loop_once(5);
        }
        stopping = 1;
    } else if (mode_broadcast) {
        nconns = opt_conns + 1; /* conns[0] sends */
        conns = calloc((size_t)nconns, sizeof *conns);
        int started = 0;
        uint64_t deadline = now_ns() + 120ull * 1000000000ull;
        while (opened < nconns) {
            while (started < nconns && started - opened < opt_parallel)
                start_connect(&conns[started++]);
            loop_once(10);
            if (c_errors)
                die("could not open the connections (%d open)", opened);
            if (now_ns() > deadline)
                die("timed out opening connections (%d of %d open)", opened, nconns);
        }
        uint64_t settle_end = now_ns() + (uint64_t)(opt_settle * 1e9);
        while (now_ns() < settle_end && !c_errors)
            loop_once(10);
        uint64_t start = now_ns();
        uint64_t warm_end = start + (uint64_t)(opt_warmup * 1e9);
        uint64_t end = warm_end + (uint64_t)(opt_duration * 1e9);
        /* Rounds back to back; measuring starts and stops between rounds. */
        while (!c_errors) {
            if (bc_pending == 0) {
                uint64_t now = now_ns();
                if (!measuring && t0 == 0 && now >= warm_end) {
                    measuring = 1;
                    t0 = now;
                    cpu0 = self_cpu();
                    scpu0 = server_cpu();
                } else if (measuring && now >= end && c_rounds >= (uint64_t)opt_min_rounds) {
                    t1 = now;
                    cpu1 = self_cpu();
                    scpu1 = server_cpu();
                    measuring = 0;
                    break;
                }
                start_round();
            }
            loop_once(100);
            if (bc_pending && now_ns() - bc_sent_at > 30ull * 1000000000ull) {
                int missing = 0;
                for (int i = 0; i < nconns; i++)
                    if (conns[i].ring_count)
                        missing++;
                die("round %llu: %d of %d connections never got the message", (unsigned long long)bc_round,
                    missing, nconns);
            }
        }
        stopping = 1;
    } else { /* idle */
        int total = opt_warm_conns + opt_conns;
        nconns = total;
        conns = calloc((size_t)nconns, sizeof *conns);
        int started = 0;
        uint64_t deadline = now_ns() + 120ull * 1000000000ull;
        open_target = opt_warm_conns;
        for (int phase = 0; phase < 2; phase++) {
            while (opened < open_target) {
                while (started < open_target && started - opened < opt_parallel)
                    start_connect(&conns[started++]);
                loop_once(10);
                if (c_errors)
                    die("could not open the connections (%d open)", opened);
                if (now_ns() > deadline)
                    die("timed out opening connections (%d of %d open)", opened, open_target);
            }
            uint64_t settle_end = now_ns() + (uint64_t)(opt_settle * 1e9);
            while (now_ns() < settle_end && !c_errors)
                loop_once(10);
            if (phase == 0) {
                rss0 = server_rss();
                scpu0 = server_cpu();
                cpu0 = self_cpu();
                t0 = now_ns();
                measuring = 1;
                open_target = total;
            } else {
                rss1 = server_rss();
                scpu1 = server_cpu();
                cpu1 = self_cpu();
                t1 = now_ns();
                measuring = 0;
            }
        }
        for (int i = 0; i < nconns; i++)
            if (conns[i].state != ST_OPEN && !c_errors)
                fail(&conns[i], "connection lost while idle");
        stopping = 1;
    }

    for (int i = 0; i < nconns; i++)
        if (conns[i].fd >= 0)
            release(&conns[i]);

    double secs = t1 > t0 ? (double)(t1 - t0) / 1e9 : 0;
    double scpu = (scpu0 >= 0 && scpu1 >= 0) ? scpu1 - scpu0 : -1;
    double ccpu = cpu1 - cpu0;
    qsort(lat, lat_n, sizeof *lat, cmp_u64);
    printf("{\"mode\": \"%s\", \"conns\": %d, \"inflight\": %d, \"size\": %zu, \"binary\": %s, "
           "\"raw\": %s, \"deflate\": %s, \"seconds\": %.4f, \"server_cpu_s\": %.4f, "
           "\"client_cpu_s\": %.4f, \"client_cpu_share\": %.4f, \"errors\": %llu",
           opt_mode, opt_conns, opt_inflight, opt_size, opt_binary ? "true" : "false", opt_raw ? "true" : "false",
           opt_deflate ? "true" : "false", secs, scpu, ccpu, secs > 0 ? ccpu / secs : 0,
           (unsigned long long)c_errors);
    if (mode_echo)
        printf(", \"messages\": %llu, \"bytes\": %llu, \"p50_us\": %.1f, \"p99_us\": %.1f",
               (unsigned long long)c_messages, (unsigned long long)c_bytes, pct(0.5), pct(0.99));
    if (mode_echo && opt_rate > 0)
        printf(", \"rate\": %.1f, \"sent\": %llu, \"send_lag_mean_us\": %.1f, \"send_lag_max_us\": %.1f", opt_rate,
               (unsigned long long)rate_sent, lag_n ? (double)lag_sum / (double)lag_n / 1e3 : 0,
               (double)lag_max / 1e3);
    if (mode_broadcast)
        printf(", \"rounds\": %llu, \"deliveries\": %llu, \"messages\": %llu, \"bytes\": %llu, "
               "\"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f",
               (unsigned long long)c_rounds, (unsigned long long)c_deliveries, (unsigned long long)c_messages,
               (unsigned long long)c_bytes, pct(0.5), pct(0.99), pct(1.0));
    if (mode_handshake)
        printf(", \"handshakes\": %llu", (unsigned long long)c_handshakes);
    if (mode_idle)
        printf(", \"idle_conns\": %d, \"rss_before\": %lld, \"rss_after\": %lld", opt_conns, rss0, rss1);
    printf("}\n");
    return c_errors ? 1 : 0;
}
