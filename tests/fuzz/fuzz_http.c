/* fuzz_http.c: libFuzzer target for the HTTP server's request path. Each
 * input is written, as the bytes of one client connection, to a real
 * pg_http_server on 127.0.0.1 (a persistent loop and server across runs);
 * the client then half-closes and reads until the server closes. Whatever
 * the bytes (pipelined requests, chunked bodies, garbage, oversized
 * headers), the server must answer or close without crashing, leaking or
 * calling the handler out of order. The handler echoes, or streams for
 * paths starting with "/s". Limits are small so 413/431 paths are hit. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "base/str.h"
#include "http/server.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uv_loop_t loop;
static pg_http_server_t *srv;
static int port;
static int active; /* requests between on_request and on_complete */

static void on_request(void *ud, pg_http_req_t *req)
{
    if (active != 0)
        abort(); /* one request per connection at a time */
    active++;
    if (req->body.p[req->body.n] != '\0')
        abort();
    if (pg_str_starts_with(req->path, PG_STR("/s"))) {
        pg_http_header_t extra[] = {{PG_STR("X-A"), PG_STR("b")}};
        pg_http_stream_start(req, 200, PG_STR("text/event-stream"), extra, 1);
        pg_http_stream_write(req, req->path);
        pg_http_stream_write(req, req->body);
        pg_http_stream_end(req);
    } else {
        pg_http_respond(req, 200, PG_STR("text/plain"), NULL, 0, req->body);
    }
}

static void on_complete(void *ud, pg_http_req_t *req)
{
    if (req->status == 0 && !req->aborted)
        abort(); /* every completed request was answered */
    if (active > 0)
        active--;
}

static void setup(void)
{
    uv_loop_init(&loop);
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(sa);
    if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) != 0)
        abort();
    port = ntohs(sa.sin_port);
    pg_http_limits_t lim = {.max_header_bytes = 2048,
                            .max_body_bytes = 4096,
                            .header_timeout_ms = 2000,
                            .idle_timeout_ms = 2000,
                            .max_queued_bytes = 1024};
    pg_http_handler_t h = {.on_request = on_request,
                           .on_complete = on_complete};
    char err[PG_ERRMSG_SIZE];
    if (pg_http_server_new(&loop, fd, &lim, &h, &srv, err) != PG_OK)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (srv == NULL)
        setup();
    int c = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (c < 0 || connect(c, (struct sockaddr *)&sa, sizeof(sa)) != 0)
        abort();
    fcntl(c, F_SETFL, O_NONBLOCK);
    size_t off = 0;
    bool shut = false, eof = false;
    char buf[65536];
    /* Single-threaded: the loop turns while the client writes and reads. */
    while (!eof) {
        if (off < size) {
            ssize_t w = send(c, data + off, size - off, MSG_NOSIGNAL);
            if (w > 0)
                off += (size_t)w;
            else if (w < 0 && errno != EAGAIN)
                off = size; /* the server closed early */
        }
        if (off == size && !shut) {
            shutdown(c, SHUT_WR);
            shut = true;
        }
        uv_run(&loop, UV_RUN_NOWAIT);
        struct pollfd p = {.fd = c, .events = POLLIN};
        if (poll(&p, 1, 1) > 0) {
            ssize_t r = recv(c, buf, sizeof(buf), 0);
            if (r == 0 || (r < 0 && errno != EAGAIN))
                eof = true;
        }
    }
    close(c);
    while (pg_http_server_connections(srv) > 0)
        uv_run(&loop, UV_RUN_NOWAIT);
    if (active != 0)
        abort();
    return 0;
}
