# bench/proxy_lane.sh: the proxy lane of `make bench`, sourced by
# bench/run.sh after the mock lane (it uses run.sh's BUILD, CONNS,
# THREADS, WORKERS, SECONDS_RUN, tick, pids and cleanup). See run.sh's
# header for what it measures. Prints figures; asserts nothing.

LAT_SECONDS=${BENCH_LAT_SECONDS:-3}
LAT_ROUNDS=${BENCH_LAT_ROUNDS:-3}
CHUNKS=${BENCH_CHUNKS:-20}
STREAM_REQUESTS=${BENCH_STREAM_REQUESTS:-2000}
SLOW_STREAMS=${BENCH_SLOW_STREAMS:-0}
SLOW_DELAY_MS=${BENCH_SLOW_DELAY_MS:-100}

# start_upstream PROG ARGS...: starts bench/PROG on a free port (it prints
# the port first); sets UP_PORT, UP_PID.
start_upstream() {
  local prog=$1 file; shift
  file=$(mktemp)
  "$BUILD/bench/$prog" --port 0 "$@" >"$file" &
  UP_PID=$!
  pids="$pids $UP_PID"
  for _ in $(seq 100); do
    [ -s "$file" ] && break
    sleep 0.02
  done
  UP_PORT=$(head -n1 "$file")
  rm -f "$file"
}

start_upstream fast_upstream --chunks "$CHUNKS"
fast_port=$UP_PORT; fast_pid=$UP_PID
start_upstream fast_upstream --chunks "$CHUNKS" --chunk-delay-ms "$SLOW_DELAY_MS"
slow_port=$UP_PORT
# The machine's reference point: the aims assume a trivial C HTTP server
# costs about 5.5 us of CPU per request; this one is measured here.
start_upstream trivial_server
trivial_port=$UP_PORT; trivial_pid=$UP_PID

gw_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
# BENCH_BUSY_POLL (e.g. 1ms): the gateway's server.busy_poll, off by default.
sed -e "s/workers: 1/workers: $WORKERS\n  busy_poll: ${BENCH_BUSY_POLL:-0}/" \
  -e "s/FAST_PORT/$fast_port/g" \
  -e "s/SLOW_PORT/$slow_port/" bench/proxy.yaml >"$BUILD/proxy.yaml"
"$BUILD/polyglot-gw" --config "$BUILD/proxy.yaml" --port "$gw_port" 2>/dev/null &
gw_pid=$!
pids="$pids $gw_pid"
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$gw_port/health" >/dev/null 2>&1 && break
  sleep 0.05
done

direct_url="http://127.0.0.1:$fast_port/v1/chat/completions"
gw_url="http://127.0.0.1:$gw_port/openai/v1/chat/completions"

ticks_of() { awk '{print $14 + $15}' "/proc/$1/stat"; }
rss_of() { awk '/^VmRSS/{print $2}' "/proc/$1/status"; }
# wrk's latency ("35.2us", "1.36ms", "2.00s") in microseconds.
to_us() {
  awk -v v="$1" 'BEGIN{
    if (v ~ /us$/) { sub(/us$/, "", v); printf "%.1f", v }
    else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.1f", v * 1000 }
    else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.1f", v * 1e6 }
    else print "nan" }'
}
per_req() { # ticks_before ticks_after requests -> microseconds
  awk -v a="$2" -v b="$1" -v t="$tick" -v r="$3" \
    'BEGIN{ if (r>0) printf "%.2f", (a-b)/t*1e6/r; else print "n/a" }'
}
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{v[NR]=$1} END{print v[int((NR+1)/2)]}'; }
calc() { awk "BEGIN{ printf \"%.1f\", $1 }"; }

# wrk_run NAME CONNS THREADS SECS URL [LUA]: wrk with LUA (default
# bench/chat.lua); sets
# W_RPS W_P50 W_P99 (us) W_GWCPU W_UPCPU (us per request of the upstream
# process, $up_pid: fast_upstream unless set) and prints a row.
up_pid=$fast_pid
wrk_run() {
  local name=$1 c=$2 t=$3 secs=$4 url=$5 lua=${6:-bench/chat.lua} out reqs g0 g1 u0 u1 errs
  g0=$(ticks_of "$gw_pid"); u0=$(ticks_of "$up_pid")
  out=$(wrk -t"$t" -c"$c" -d"${secs}s" --latency -s "$lua" "$url")
  g1=$(ticks_of "$gw_pid"); u1=$(ticks_of "$up_pid")
  reqs=$(echo "$out" | awk '/requests in/{print $1}')
  W_RPS=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  W_P50=$(to_us "$(echo "$out" | awk '$1=="50%"{print $2}')")
  W_P99=$(to_us "$(echo "$out" | awk '$1=="99%"{print $2}')")
  W_GWCPU=$(per_req "$g0" "$g1" "$reqs")
  W_UPCPU=$(per_req "$u0" "$u1" "$reqs")
  errs=$(echo "$out" | awk '/Non-2xx|Socket errors/{print}' | tr '\n' ' ')
  printf '%-34s %9s req/s  p50 %8s us  p99 %8s us  gateway cpu/req %6s us  upstream cpu/req %5s us %s\n' \
    "$name" "$W_RPS" "$W_P50" "$W_P99" "$W_GWCPU" "$W_UPCPU" "$errs"
}

# stream_run NAME PORT PATH [ARGS...]: stream_client at one connection
# (with --usage, or with ARGS when given); sets S_* (ttfb_p50 ttfb_p99
# total_p50 total_p99 events, microseconds) and the gateway's CPU per
# request over the run (S_GWCPU) and prints a row.
stream_run() {
  local name=$1 p=$2 path=$3 out g0 g1
  shift 3
  [ $# -gt 0 ] || set -- --usage
  g0=$(ticks_of "$gw_pid")
  out=$("$BUILD/bench/stream_client" --port "$p" --path "$path" \
    --requests "$STREAM_REQUESTS" --timeout-s 120 "$@") || true
  g1=$(ticks_of "$gw_pid")
  kv() { echo "$out" | tr ' ' '\n' | awk -F= -v k="$1" '$1==k{print $2}'; }
  S_OK=$(kv ok); S_TTFB50=$(kv ttfb_p50); S_TTFB99=$(kv ttfb_p99)
  S_TOT50=$(kv total_p50); S_TOT99=$(kv total_p99); S_EVENTS=$(kv events)
  S_GWCPU=$(per_req "$g0" "$g1" "$S_OK")
  printf '%-34s ok %5s  events %4s  ttfb p50 %6s us p99 %6s us  total p50 %6s us p99 %6s us  gateway cpu/req %6s us\n' \
    "$name" "$S_OK" "$S_EVENTS" "$S_TTFB50" "$S_TTFB99" "$S_TOT50" "$S_TOT99" "$S_GWCPU"
}

echo
echo "== proxy lane: fast_upstream ($CHUNKS chunks per stream) on :$fast_port, gateway on :$gw_port"
echo "gateway rss idle: $(rss_of "$gw_pid") KiB"

# Warm-up: connections to the upstream, caches, page faults.
wrk -t1 -c"$CONNS" -d1s -s bench/chat.lua "$gw_url" >/dev/null

echo "-- throughput at $CONNS connections, non-stream"
wrk_run "direct (upstream only)" "$CONNS" "$THREADS" "$SECONDS_RUN" "$direct_url"
d_rps=$W_RPS
wrk_run "through the gateway" "$CONNS" "$THREADS" "$SECONDS_RUN" "$gw_url"
g_rps=$W_RPS; g_cpu=$W_GWCPU
echo "gateway/direct req/s ratio: $(calc "$g_rps / $d_rps")  (gateway cpu per proxied request: $g_cpu us)"
up_pid=$trivial_pid
wrk_run "trivial C server (reference)" "$CONNS" "$THREADS" "$SECONDS_RUN" \
  "http://127.0.0.1:$trivial_port/v1/chat/completions"
up_pid=$fast_pid
t_cpu=$W_UPCPU
echo "machine scale: trivial server $t_cpu us/request here vs 5.5 us where the aims were set (x$(calc "$t_cpu / 5.5"));" \
  "gateway = $(calc "$g_cpu / $t_cpu") trivial servers per request (aim 15 us = $(calc "15 / 5.5") of them, $(calc "15 * $t_cpu / 5.5") us here)"

echo "-- one connection, non-stream (wrk -c1 -t1, ${LAT_SECONDS}s runs, interleaved x$LAT_ROUNDS)"
d50s=""; d99s=""; g50s=""; g99s=""; diff50s=""; diff99s=""
for r in $(seq "$LAT_ROUNDS"); do
  wrk_run "round $r direct" 1 1 "$LAT_SECONDS" "$direct_url"
  dp50=$W_P50; dp99=$W_P99
  wrk_run "round $r gateway" 1 1 "$LAT_SECONDS" "$gw_url"
  d50s="$d50s $dp50"; d99s="$d99s $dp99"; g50s="$g50s $W_P50"; g99s="$g99s $W_P99"
  diff50s="$diff50s $(calc "$W_P50 - $dp50")"; diff99s="$diff99s $(calc "$W_P99 - $dp99")"
done
echo "median p50: direct $(echo "$d50s" | median) us, gateway $(echo "$g50s" | median) us, added $(echo "$diff50s" | median) us"
echo "median p99: direct $(echo "$d99s" | median) us, gateway $(echo "$g99s" | median) us, added $(echo "$diff99s" | median) us"

echo "-- streaming, one connection, $STREAM_REQUESTS requests per run, include_usage (interleaved x$LAT_ROUNDS)"
dttfb=""; gttfb=""; dtot=""; gtot=""; gcpu=""; events=""
for r in $(seq "$LAT_ROUNDS"); do
  stream_run "round $r direct" "$fast_port" /v1/chat/completions
  dttfb="$dttfb $S_TTFB50"; dtot="$dtot $S_TOT50"
  stream_run "round $r gateway" "$gw_port" /openai/v1/chat/completions
  gttfb="$gttfb $S_TTFB50"; gtot="$gtot $S_TOT50"; gcpu="$gcpu $S_GWCPU"; events=$S_EVENTS
done
m_dttfb=$(echo "$dttfb" | median); m_gttfb=$(echo "$gttfb" | median)
m_dtot=$(echo "$dtot" | median); m_gtot=$(echo "$gtot" | median)
m_gcpu=$(echo "$gcpu" | median)
echo "median ttfb p50: direct $m_dttfb us, gateway $m_gttfb us, added $(calc "$m_gttfb - $m_dttfb") us"
echo "median total p50: direct $m_dtot us, gateway $m_gtot us, added $(calc "$m_gtot - $m_dtot") us"
echo "added per chunk after the first byte: $(calc "(($m_gtot - $m_gttfb) - ($m_dtot - $m_dttfb)) / $events") us (wall, $events events)"
echo "gateway cpu per streamed request: $m_gcpu us; per event over a non-stream request: $(calc "($m_gcpu - $g_cpu) / $events") us"

echo "-- RSS at 128 connections through the gateway (${SECONDS_RUN}s)"
rss_file=$(mktemp)
( while kill -0 "$gw_pid" 2>/dev/null; do rss_of "$gw_pid" >>"$rss_file"; sleep 0.2; done ) &
sampler=$!
wrk_run "through the gateway, 128 conns" 128 "$THREADS" "$SECONDS_RUN" "$gw_url"
kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
echo "gateway rss peak during the run: $(sort -n "$rss_file" | tail -n1) KiB, after: $(rss_of "$gw_pid") KiB"

if [ "$SLOW_STREAMS" -gt 0 ]; then
  echo "-- $SLOW_STREAMS concurrent slow streams through the gateway ($CHUNKS chunks, ${SLOW_DELAY_MS} ms apart)"
  : >"$rss_file"
  ( while kill -0 "$gw_pid" 2>/dev/null; do rss_of "$gw_pid" >>"$rss_file"; sleep 0.2; done ) &
  sampler=$!
  out=$("$BUILD/bench/stream_client" --port "$gw_port" --path /openai/v1/chat/completions \
    --model slow-bench --conns "$SLOW_STREAMS" --requests 1 --usage --timeout-s 300 2>&1) || true
  kill "$sampler" 2>/dev/null; wait "$sampler" 2>/dev/null || true
  echo "$out"
  echo "gateway rss peak during: $(sort -n "$rss_file" | tail -n1) KiB"
  sleep 2
  echo "gateway rss 2 s after: $(rss_of "$gw_pid") KiB"
fi
rm -f "$rss_file"
