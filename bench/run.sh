#!/usr/bin/env bash
# bench/run.sh: `make bench`. Builds a release polyglot-gw and runs two
# lanes, each driven with wrk (and bench/stream_client) from other
# processes on loopback. CPU per request is user+system ticks from
# /proc/PID/stat over a run divided by its requests; RSS from
# /proc/PID/status.
#
# Mock lane: the gateway on bench/bench.yaml (mock provider answering at
# once):
#   - GET /health (the ceiling: HTTP server only)
#   - POST non-streaming mock chat completions
# at CONNS connections for SECONDS each, printing requests/s, p50/p99
# latency, the gateway's CPU time per request, and its RSS idle, after
# the first run, and after a long run (growth check).
#
# Proxy lane: bench/fast_upstream (a fake OpenAI upstream answering at
# once from static bytes) and a gateway on bench/proxy.yaml proxying to
# it through an openai-compatible provider. Measured directly and through
# the gateway in the same run:
#   - wrk at CONNS connections, non-stream: req/s, p50/p99, CPU/request of
#     the gateway and of the upstream, and the gateway/direct ratio
#   - one connection (wrk -c1 -t1), direct and gateway interleaved
#     LAT_ROUNDS times: p50/p99 and the difference
#   - streaming (CHUNKS content chunks, stream_client at one connection,
#     interleaved): time to first byte and per-chunk cost, direct vs gateway
#   - RSS of the gateway at 128 connections
#   - with BENCH_SLOW_STREAMS=N (e.g. 5000): N concurrent streams with a
#     per-chunk delay, all opened at once; how many completed, how many
#     were open together, RSS during and after
#
# Translation lanes (bench/translate_lane.sh, on the proxy lane's gateway
# and upstream): OpenAI client -> Anthropic-type provider, Anthropic
# client -> OpenAI-type, and Anthropic -> Anthropic, non-stream and
# streamed; CPU per request as a ratio to the passthrough lane's, added
# time per chunk against the same upstream stream read directly.
# Environment: BENCH_BUILD, BENCH_SECONDS, BENCH_LONG_SECONDS, BENCH_CONNS,
# BENCH_THREADS, BENCH_WORKERS, BENCH_MOCK=0 (skip the mock lane),
# BENCH_PROXY=0 (skip the proxy and translation lanes), BENCH_TRANSLATE=0
# (skip the translation lanes), BENCH_LAT_SECONDS, BENCH_LAT_ROUNDS,
# BENCH_CHUNKS, BENCH_STREAM_REQUESTS, BENCH_SLOW_STREAMS,
# BENCH_SLOW_DELAY_MS, BENCH_BUSY_POLL (the proxy gateway's server.busy_poll).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BENCH_BUILD:-build-release}
SECONDS_RUN=${BENCH_SECONDS:-10}
LONG_SECONDS=${BENCH_LONG_SECONDS:-30}
CONNS=${BENCH_CONNS:-32}
THREADS=${BENCH_THREADS:-1}
WORKERS=${BENCH_WORKERS:-1}

command -v wrk >/dev/null || bash scripts/install-deps.sh
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" -Dbuildtype=release -Dtests=false >/dev/null
fi
ninja -C "$BUILD" polyglot-gw bench/fast_upstream bench/stream_client bench/trivial_server >/dev/null

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')
sed "s/workers: 1/workers: $WORKERS/" bench/bench.yaml >"$BUILD/bench.yaml"
"$BUILD/polyglot-gw" --config "$BUILD/bench.yaml" --port "$port" 2>/dev/null &
pid=$!
pids=$pid
cleanup() {
  local p
  for p in $pids; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
  return 0
}
trap cleanup EXIT
for _ in $(seq 100); do
  curl -fs "http://127.0.0.1:$port/health" >/dev/null 2>&1 && break
  sleep 0.05
done

tick=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$pid/stat"; }
user_ticks() { awk '{print $14}' "/proc/$pid/stat"; }
rss_kib() { awk '/^VmRSS/{print $2}' "/proc/$pid/status"; }

# run NAME SECONDS URL [LUA]: one wrk run; prints a result row.
run() {
  local name=$1 secs=$2 url=$3 lua=${4:-}
  local before after out reqs ubefore uafter
  before=$(cpu_ticks)
  ubefore=$(user_ticks)
  if [ -n "$lua" ]; then
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --latency -s "$lua" "$url")
  else
    out=$(wrk -t"$THREADS" -c"$CONNS" -d"${secs}s" --latency "$url")
  fi
  after=$(cpu_ticks)
  uafter=$(user_ticks)
  reqs=$(echo "$out" | awk '/requests in/{print $1}')
  local rps p50 p99 errs
  rps=$(echo "$out" | awk '/Requests\/sec/{print $2}')
  p50=$(echo "$out" | awk '$1=="50%"{print $2}')
  p99=$(echo "$out" | awk '$1=="99%"{print $2}')
  errs=$(echo "$out" | awk '/Non-2xx|Socket errors/{print}' | tr '\n' ' ')
  local cpu_us user_us
  cpu_us=$(awk -v a="$after" -v b="$before" -v t="$tick" -v r="$reqs" \
    'BEGIN{ if (r>0) printf "%.2f", (a-b)/t*1e6/r; else print "n/a" }')
  user_us=$(awk -v a="$uafter" -v b="$ubefore" -v t="$tick" -v r="$reqs" \
    'BEGIN{ if (r>0) printf "%.2f", (a-b)/t*1e6/r; else print "n/a" }')
  printf '%-24s %9s req/s  p50 %-8s p99 %-8s cpu/req %6s us (user %5s)  rss %6s KiB %s\n' \
    "$name" "$rps" "$p50" "$p99" "$cpu_us" "$user_us" "$(rss_kib)" "$errs"
}

echo "polyglot bench: $(nproc) cores, $(uname -m), $CONNS connections, $THREADS wrk thread(s), $WORKERS gateway worker(s)"
if [ "${BENCH_MOCK:-1}" != 0 ]; then
echo "== mock lane"
echo "rss idle: $(rss_kib) KiB"
run "GET /health" "$SECONDS_RUN" "http://127.0.0.1:$port/health"
run "chat (mock, non-stream)" "$SECONDS_RUN" "http://127.0.0.1:$port/openai/v1/chat/completions" bench/chat.lua
rss_mid=$(rss_kib)
run "chat long run" "$LONG_SECONDS" "http://127.0.0.1:$port/openai/v1/chat/completions" bench/chat.lua
rss_end=$(rss_kib)
echo "rss growth over the ${LONG_SECONDS}s run: $rss_mid KiB -> $rss_end KiB"
fi
kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true

[ "${BENCH_PROXY:-1}" != 0 ] || exit 0
source bench/proxy_lane.sh
[ "${BENCH_TRANSLATE:-1}" = 0 ] || source bench/translate_lane.sh
# The lanes print figures and assert nothing: the run itself succeeded.
exit 0
