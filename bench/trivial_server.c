/* trivial_server.c: the machine's reference point in `make bench`. The
 * performance aims of the proxy lane were set on a machine where "a
 * trivial C HTTP server costs about 5.5 us of CPU per request"; this is
 * that server, so a run can say what the same thing costs on the machine
 * it ran on and scale the aims by it.
 *
 * One thread, one epoll set, level-triggered, no library: per readable
 * connection one read(), and for each complete request in the buffer
 * (head up to CRLFCRLF plus its Content-Length body) one fixed 200 with
 * the same chat.completion body bench/fast_upstream sends, in one write().
 * Keep-alive only; anything it cannot parse closes the connection. Not a
 * real server: no partial writes beyond closing, no chunked bodies.
 *
 *   trivial_server [--port 0]   prints the bound port, serves until killed */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bodies.h"

#define MAX_FDS 4096
#define BUF_SIZE 16384

static const char body[] = BENCH_CHAT_COMPLETION;

struct conn {
    size_t len;
    char buf[BUF_SIZE];
};

static struct conn *conns[MAX_FDS];
static char response[1024];
static size_t response_len;

/* Length of the first complete request in b[0..n), 0 if incomplete, -1 if
 * it cannot be served. */
static long request_length(const char *b, size_t n)
{
    const char *end = memmem(b, n, "\r\n\r\n", 4);
    if (end == NULL)
        return n >= BUF_SIZE ? -1 : 0;
    size_t head = (size_t)(end - b) + 4;
    unsigned long clen = 0;
    for (const char *p = b; p < end; p++) {
        if (*p == '\n' && end - p > 16 &&
            strncasecmp(p + 1, "content-length:", 15) == 0) {
            clen = strtoul(p + 16, NULL, 10);
            break;
        }
    }
    if (head + clen > BUF_SIZE)
        return -1;
    return head + clen <= n ? (long)(head + clen) : 0;
}

static void conn_close(int ep, int fd)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
    close(fd);
    free(conns[fd]);
    conns[fd] = NULL;
}

static void on_readable(int ep, int fd)
{
    struct conn *c = conns[fd];
    ssize_t n = read(fd, c->buf + c->len, BUF_SIZE - c->len);
    if (n <= 0) {
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        conn_close(ep, fd);
        return;
    }
    c->len += (size_t)n;
    size_t answered = 0;
    long r;
    while ((r = request_length(c->buf + answered, c->len - answered)) > 0)
        answered += (size_t)r;
    if (r < 0) {
        conn_close(ep, fd);
        return;
    }
    if (answered == 0)
        return;
    /* Pipelined requests get their answers in one write. */
    char out[8 * sizeof response];
    size_t nout = 0;
    for (size_t off = 0; off < answered;
         off += (size_t)request_length(c->buf + off, answered - off)) {
        if (nout + response_len > sizeof out)
            break;
        memcpy(out + nout, response, response_len);
        nout += response_len;
    }
    if (write(fd, out, nout) != (ssize_t)nout) {
        conn_close(ep, fd);
        return;
    }
    memmove(c->buf, c->buf + answered, c->len - answered);
    c->len -= answered;
}

int main(int argc, char **argv)
{
    int port = 0, one = 1;
    for (int i = 1; i + 1 < argc; i += 2)
        if (strcmp(argv[i], "--port") == 0)
            port = atoi(argv[i + 1]);
    response_len = (size_t)snprintf(response, sizeof response,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        "Content-Length: %zu\r\n\r\n%s", sizeof body - 1, body);

    int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ls < 0 || bind(ls, (struct sockaddr *)&a, sizeof a) != 0 ||
        listen(ls, 1024) != 0 ||
        getsockname(ls, (struct sockaddr *)&a, &alen) != 0) {
        perror("trivial_server");
        return 1;
    }
    printf("%d\n", ntohs(a.sin_port));
    fflush(stdout);

    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = ls};
    epoll_ctl(ep, EPOLL_CTL_ADD, ls, &ev);
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd != ls) {
                on_readable(ep, fd);
                continue;
            }
            int cfd;
            while ((cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                if (cfd >= MAX_FDS ||
                    (conns[cfd] = calloc(1, sizeof *conns[cfd])) == NULL) {
                    close(cfd);
                    continue;
                }
                setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
                epoll_ctl(ep, EPOLL_CTL_ADD, cfd, &cev);
            }
        }
    }
}
