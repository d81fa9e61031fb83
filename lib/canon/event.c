/* event.c: names of stop reasons in both dialects -> pg_stop_reason_t, so
 * every upstream decoder maps finish_reason / stop_reason the same way.
 * Pure function; any thread. */
#include "canon/event.h"

#include "base/str.h"

static const struct {
    const char *name;
    pg_stop_reason_t reason;
} stop_names[] = {
    /* OpenAI Chat Completions finish_reason. */
    {"stop", PG_STOP_END_TURN},
    {"length", PG_STOP_MAX_TOKENS},
    {"tool_calls", PG_STOP_TOOL_USE},
    /* The deprecated single-function form of tool_calls. */
    {"function_call", PG_STOP_TOOL_USE},
    {"content_filter", PG_STOP_CONTENT_FILTER},
    /* Anthropic Messages stop_reason. */
    {"end_turn", PG_STOP_END_TURN},
    {"max_tokens", PG_STOP_MAX_TOKENS},
    {"stop_sequence", PG_STOP_STOP_SEQUENCE},
    {"tool_use", PG_STOP_TOOL_USE},
    /* A turn the server ended to let the client continue it: the answer
     * is whole as far as it goes. */
    {"pause_turn", PG_STOP_END_TURN},
    {"refusal", PG_STOP_CONTENT_FILTER},
    /* Our own canonical name, as recorded in storage. */
    {"error", PG_STOP_ERROR},
};

pg_stop_reason_t pg_stop_reason_from(pg_str_t name)
{
    for (size_t i = 0; i < sizeof(stop_names) / sizeof(stop_names[0]); i++) {
        if (pg_str_eqc(name, stop_names[i].name))
            return stop_names[i].reason;
    }
    return PG_STOP_NONE;
}
