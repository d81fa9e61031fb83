# bench/translate_lane.sh: the translation lanes of `make bench`, sourced
# by bench/run.sh after the proxy lane (it reuses that lane's gateway,
# fast_upstream, wrk_run, stream_run, median and calc, and its
# passthrough figures g_cpu and pass_stream_cpu). Prints figures; asserts
# nothing.
#
#   - OpenAI client -> Anthropic-type provider (model claude-bench),
#     non-stream at CONNS connections and streamed at one connection;
#   - Anthropic client -> OpenAI-type provider (model gpt-bench), the same;
#   - Anthropic client -> Anthropic-type provider (model claude-bench):
#     the same-dialect lane, for comparison.
# Each prints the gateway's CPU per request and its ratio to the
# passthrough lane's (OpenAI -> OpenAI), and for streams the added time
# per chunk against the same upstream stream read directly.

oa_url="http://127.0.0.1:$gw_port/openai/v1/chat/completions"
an_url="http://127.0.0.1:$gw_port/anthropic/v1/messages"

echo
echo "== translation lanes (passthrough reference: $g_cpu us/request, $pass_stream_cpu us/streamed request)"
echo "-- non-stream at $CONNS connections"
wrk -t1 -c"$CONNS" -d1s -s bench/chat_claude.lua "$oa_url" >/dev/null
wrk_run "openai client -> anthropic" "$CONNS" "$THREADS" "$SECONDS_RUN" "$oa_url" bench/chat_claude.lua
echo "   cpu ratio to passthrough: $(calc "$W_GWCPU / $g_cpu")"
MODEL=gpt-bench wrk_run "anthropic client -> openai" "$CONNS" "$THREADS" "$SECONDS_RUN" "$an_url" bench/messages.lua
echo "   cpu ratio to passthrough: $(calc "$W_GWCPU / $g_cpu")"
export MODEL=claude-bench
wrk_run "anthropic client -> anthropic" "$CONNS" "$THREADS" "$SECONDS_RUN" "$an_url" bench/messages.lua
echo "   cpu ratio to passthrough: $(calc "$W_GWCPU / $g_cpu")"
unset MODEL

# translate_stream NAME DIRECT_PATH DIRECT_ARGS GW_PATH GW_ARGS: interleaved
# direct/gateway stream runs; prints the added ttfb, the added time per
# content chunk (CHUNKS per stream) and the CPU ratio to passthrough.
translate_stream() {
  local name=$1 dpath=$2 dargs=$3 gpath=$4 gargs=$5 r
  local dttfb="" gttfb="" dtot="" gtot="" gcpu=""
  for r in $(seq "$LAT_ROUNDS"); do
    # shellcheck disable=SC2086
    stream_run "round $r direct" "$fast_port" "$dpath" $dargs
    dttfb="$dttfb $S_TTFB50"; dtot="$dtot $S_TOT50"
    # shellcheck disable=SC2086
    stream_run "round $r $name" "$gw_port" "$gpath" $gargs
    gttfb="$gttfb $S_TTFB50"; gtot="$gtot $S_TOT50"; gcpu="$gcpu $S_GWCPU"
  done
  local a b c d e
  a=$(echo "$dttfb" | median); b=$(echo "$gttfb" | median)
  c=$(echo "$dtot" | median); d=$(echo "$gtot" | median)
  e=$(echo "$gcpu" | median)
  echo "$name: added ttfb p50 $(calc "$b - $a") us; added per chunk $(calc "(($d - $b) - ($c - $a)) / $CHUNKS") us (wall, $CHUNKS chunks); gateway cpu/streamed request $e us, ratio to passthrough $(calc "$e / $pass_stream_cpu")"
}

echo "-- streaming, one connection, $STREAM_REQUESTS requests per run (interleaved x$LAT_ROUNDS)"
translate_stream "openai client -> anthropic" /v1/messages "--anthropic" \
  /openai/v1/chat/completions "--usage --model claude-bench"
translate_stream "anthropic client -> openai" /v1/chat/completions "--usage" \
  /anthropic/v1/messages "--anthropic --model gpt-bench"
translate_stream "anthropic client -> anthropic" /v1/messages "--anthropic" \
  /anthropic/v1/messages "--anthropic --model claude-bench"
