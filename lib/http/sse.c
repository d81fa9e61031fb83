/* sse.c: Server-Sent Events framing (see sse.h). Pure functions; any
 * thread. */
#include "http/sse.h"

#include <string.h>

int pg_sse_append_event(pg_buf_t *b, pg_str_t event, pg_str_t data)
{
    int rc = PG_OK;
    if (event.n > 0) {
        rc = pg_buf_append(b, "event: ", 7);
        if (rc == PG_OK)
            rc = pg_buf_append_str(b, event);
        if (rc == PG_OK)
            rc = pg_buf_append_char(b, '\n');
    }
    /* Each line of data becomes its own "data:" field; CR, LF and CRLF
     * all end a line, as the SSE spec's parser reads them. */
    size_t i = 0;
    while (rc == PG_OK) {
        size_t j = i;
        while (j < data.n && data.p[j] != '\r' && data.p[j] != '\n')
            j++;
        rc = pg_buf_append(b, "data: ", 6);
        if (rc == PG_OK)
            rc = pg_buf_append(b, data.p + i, j - i);
        if (rc == PG_OK)
            rc = pg_buf_append_char(b, '\n');
        if (j >= data.n)
            break;
        if (data.p[j] == '\r' && j + 1 < data.n && data.p[j + 1] == '\n')
            j++;
        i = j + 1;
    }
    if (rc == PG_OK)
        rc = pg_buf_append_char(b, '\n');
    return rc;
}

int pg_sse_append_comment(pg_buf_t *b, pg_str_t text)
{
    int rc = pg_buf_append(b, ": ", 2);
    if (rc == PG_OK)
        rc = pg_buf_append_str(b, text);
    if (rc == PG_OK)
        rc = pg_buf_append(b, "\n\n", 2);
    return rc;
}
