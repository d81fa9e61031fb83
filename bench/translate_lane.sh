# bench/translate_lane.sh: the translation lanes of `make bench`, sourced
# by bench/run.sh after the proxy lane (it reuses that lane's gateway,
# fast_upstream, wrk_run, stream_run, median and calc). Prints figures;
# asserts nothing. BENCH_TR_SECONDS (5): length of each non-stream run.
#
#   - OpenAI client -> Anthropic-type provider (model claude-bench),
#     non-stream at CONNS connections and streamed at one connection;
#   - Anthropic client -> OpenAI-type provider (model gpt-bench), the same;
#   - Anthropic client -> Anthropic-type provider (model claude-bench):
#     the same-dialect lane, for comparison.
# Each prints the gateway's CPU per request and its ratio to the
# passthrough lane's (OpenAI -> OpenAI; non-stream runs interleaved with
# passthrough runs, median of the per-round ratios), and for streams the
# added time per chunk against the same upstream stream read directly.

oa_url="http://127.0.0.1:$gw_port/openai/v1/chat/completions"
an_url="http://127.0.0.1:$gw_port/anthropic/v1/messages"

echo
echo "== translation lanes"
TR_SECONDS=${BENCH_TR_SECONDS:-5}
echo "-- non-stream at $CONNS connections, ${TR_SECONDS}s runs, passthrough and the translated lanes interleaved x$LAT_ROUNDS"
wrk -t1 -c"$CONNS" -d1s -s bench/chat_claude.lua "$oa_url" >/dev/null
# Runs of one lane follow each other on a machine whose speed drifts by
# tens of percent over minutes: the ratio that counts is the median of
# the per-round ratios, each against the passthrough run of its round.
pt=""; r_oa=""; r_an=""; r_aa=""; c_oa=""; c_an=""; c_aa=""
for r in $(seq "$LAT_ROUNDS"); do
  wrk_run "round $r passthrough (openai)" "$CONNS" "$THREADS" "$TR_SECONDS" "$oa_url"
  p=$W_GWCPU; pt="$pt $p"
  wrk_run "round $r openai client -> anthropic" "$CONNS" "$THREADS" "$TR_SECONDS" "$oa_url" bench/chat_claude.lua
  c_oa="$c_oa $W_GWCPU"; r_oa="$r_oa $(awk -v a="$W_GWCPU" -v b="$p" 'BEGIN{printf "%.2f", a/b}')"
  MODEL=gpt-bench wrk_run "round $r anthropic client -> openai" "$CONNS" "$THREADS" "$TR_SECONDS" "$an_url" bench/messages.lua
  c_an="$c_an $W_GWCPU"; r_an="$r_an $(awk -v a="$W_GWCPU" -v b="$p" 'BEGIN{printf "%.2f", a/b}')"
  MODEL=claude-bench wrk_run "round $r anthropic -> anthropic" "$CONNS" "$THREADS" "$TR_SECONDS" "$an_url" bench/messages.lua
  c_aa="$c_aa $W_GWCPU"; r_aa="$r_aa $(awk -v a="$W_GWCPU" -v b="$p" 'BEGIN{printf "%.2f", a/b}')"
done
echo "median gateway cpu/request: passthrough $(echo "$pt" | median) us; openai client -> anthropic $(echo "$c_oa" | median) us (ratio $(echo "$r_oa" | median)); anthropic client -> openai $(echo "$c_an" | median) us (ratio $(echo "$r_an" | median)); anthropic -> anthropic $(echo "$c_aa" | median) us (ratio $(echo "$r_aa" | median))"

# translate_stream NAME DIRECT_PATH DIRECT_ARGS GW_PATH GW_ARGS: per round,
# the upstream's stream read directly, through the gateway translated, and
# the passthrough stream (OpenAI -> OpenAI) for the CPU ratio; prints the
# added ttfb, the added time per content chunk (CHUNKS per stream) and the
# median of the per-round CPU ratios.
translate_stream() {
  local name=$1 dpath=$2 dargs=$3 gpath=$4 gargs=$5 r p
  local dttfb="" gttfb="" dtot="" gtot="" gcpu="" ratios=""
  for r in $(seq "$LAT_ROUNDS"); do
    # shellcheck disable=SC2086
    stream_run "round $r direct" "$fast_port" "$dpath" $dargs
    dttfb="$dttfb $S_TTFB50"; dtot="$dtot $S_TOT50"
    stream_run "round $r passthrough (openai)" "$gw_port" /openai/v1/chat/completions
    p=$S_GWCPU
    # shellcheck disable=SC2086
    stream_run "round $r $name" "$gw_port" "$gpath" $gargs
    gttfb="$gttfb $S_TTFB50"; gtot="$gtot $S_TOT50"; gcpu="$gcpu $S_GWCPU"
    ratios="$ratios $(awk -v a="$S_GWCPU" -v b="$p" 'BEGIN{ if (b > 0) printf "%.2f", a/b; else print "nan" }')"
  done
  local a b c d e
  a=$(echo "$dttfb" | median); b=$(echo "$gttfb" | median)
  c=$(echo "$dtot" | median); d=$(echo "$gtot" | median)
  e=$(echo "$gcpu" | median)
  echo "$name: added ttfb p50 $(calc "$b - $a") us; added per chunk $(calc "(($d - $b) - ($c - $a)) / $CHUNKS") us (wall, $CHUNKS chunks); gateway cpu/streamed request $e us, ratio to passthrough $(echo "$ratios" | median)"
}

echo "-- streaming, one connection, $STREAM_REQUESTS requests per run (interleaved x$LAT_ROUNDS)"
translate_stream "openai client -> anthropic" /v1/messages "--anthropic" \
  /openai/v1/chat/completions "--usage --model claude-bench"
translate_stream "anthropic client -> openai" /v1/chat/completions "--usage" \
  /anthropic/v1/messages "--anthropic --model gpt-bench"
translate_stream "anthropic client -> anthropic" /v1/messages "--anthropic" \
  /anthropic/v1/messages "--anthropic --model claude-bench"
