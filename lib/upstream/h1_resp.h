/* h1_resp.h: the response side of the native client (h1_resp.c): reads,
 * llhttp parsing, the head and body handed to the caller, pause and
 * resume.
 *
 * Threads: the worker's loop thread. */
#ifndef PG_UPSTREAM_H1_RESP_H
#define PG_UPSTREAM_H1_RESP_H

#include "upstream/h1_int.h"

/* llhttp's callbacks for a response (pg__h1_attach starts a parser with
 * them); parser.data is left alone, the transfer is the connection's. */
extern const llhttp_settings_t pg__h1_parser_settings;
/* uv_read_start's callback for every connection (pg__h1_conn_read_start). */
void pg__h1_on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
/* Parses what a pause kept and reads again; from x's timer (resume_due). */
void pg__h1_do_resume(h1_xfer_t *x);

#endif
