#!/usr/bin/env bash
# calls_vs_kamailio.sh — sustained call attempts/s through hotdesk's
# stateful proxy (sip/bench/cmd/callbench, UDP 127.0.0.1:5190) and through
# Kamailio 5.6 as a stateful proxy (kamailio_proxy.cfg, UDP 127.0.0.1:5170),
# in the same run: sipp UAC -> proxy -> sipp UAS, INVITE-100-180-200-ACK-BYE-200,
# no media. For each server and target rate, RATE*DURATION calls are offered;
# a rate is sustained when < 0.1 % of them fail and >= 90 % of the offered
# rate is carried. Prints the highest sustained
# rate of each and the ratio hotdesk/Kamailio, their CPU per call at
# the lower of the two best rates, then a burst at 3x hotdesk's best rate: hotdesk
# sheds what is over sip.proxy.max_calls with 503 + Retry-After, and its peak
# RSS is printed (goal: <= 200 MB at the sustained rate and bounded in the
# burst).
#
# Usage: sip/bench/calls_vs_kamailio.sh [RATES] [DURATION_S]
#   RATES       comma list of call attempts/s, ascending (default 250,500,750,1000,2000,3000,4000,5000)
#   DURATION_S  seconds of load per rate (default 15)
# Env: CALLBENCH_ARGS extra flags for callbench (e.g. "-cpuprofile /tmp/cpu.prof": the last rate's profile stays;
#        "-memprofile /tmp/heap.prof -memprofile-at 8s": the heap under load, as /tmp/heap.prof.at)
#      CALLBENCH_BIN a callbench binary to run instead of building this tree's (before/after runs)
#      SERVERS which to run (default "kamailio hotdesk"); BURST_RATE the burst's rate (default 3x hotdesk's best;
#        0: no burst, so a -cpuprofile is the last rate's)
# Needs: go; sip-tester (sipp) and kamailio are installed when missing. Every sipp run is bounded by -m and
# SIPP_TIMEOUT_S; the servers and UAS started here are stopped by PID on exit.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
TD="$REPO/sip/testdata"
# shellcheck source=../../cmd/hotdesk-load/bench/peers.sh
source "$REPO/cmd/hotdesk-load/bench/peers.sh"
install_peers sip-tester kamailio
RUN_DIR="${RUN_DIR:-/tmp/hotdesk-callbench}"; mkdir -p "$RUN_DIR"
RATES="${1:-250,500,750,1000,2000,3000,4000,5000}"; DURATION="${2:-15}"
SIPP_TIMEOUT_S="${SIPP_TIMEOUT_S:-90}"
# Ports (apart from register_vs_kamailio.sh's 5061/5070/5080 so both can coexist).
UAC_PORT="${UAC_PORT:-5161}"; KAM_UAS_PORT="${KAM_UAS_PORT:-5162}"; HD_UAS_PORT="${HD_UAS_PORT:-5163}"
KAM_PORT=5170  # fixed in kamailio_proxy.cfg
HD_PORT="${HD_PORT:-5190}"
ulimit -n 65536 2>/dev/null || true
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do stop_pid "$p"; done; }
trap cleanup EXIT
stop_pid() {
  local pid="$1" i; kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
descendants() { local c; echo "$1"; for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do descendants "$c"; done; }
cpu_s() { local p t=0 v; for p in $(descendants "$1"); do
  v="$(sed -E 's/^.*\) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12+$13}')" || v=0; t=$((t + ${v:-0})); done
  awk -v t="$t" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t/hz}'; }
mem_mb() { local p t=0 v; for p in $(descendants "$1"); do
  v="$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)"; t=$((t + ${v:-0})); done; echo $((t / 1024)); }
wait_udp() { local i; for i in $(seq 50); do ss -lnu | grep -q "127.0.0.1:$1 " && return 0; sleep 0.1; done; return 1; }
free_udp() { ! ss -lnu | grep -q ":$1 "; }

# start_uas PORT → PID of a sipp UAS answering every call (bounded by timeout).
start_uas() {
  timeout -k 5 $((SIPP_TIMEOUT_S * 20)) sipp -sf "$TD/proxy_uas.xml" -i 127.0.0.1 -p "$1" \
    -buff_size 4194304 -nostdin -nd >"$RUN_DIR/uas_$1.out" 2>&1 </dev/null &
  echo $!
}

# run_uac TAG PORT RATE CALLS SERVERPID → one result line.
run_uac() {
  local tag="$1" port="$2" rate="$3" calls="$4" spid="$5" stat c0 c1 t0 t1
  stat="$RUN_DIR/stat_$tag.csv"; rm -f "$stat"
  c0="$(cpu_s "$spid")"; t0="$(date +%s.%N)"
  timeout -k 5 "$SIPP_TIMEOUT_S" sipp -sf "$TD/proxy_bench_uac.xml" -s 1002 "127.0.0.1:$port" \
    -i 127.0.0.1 -p "$UAC_PORT" -r "$rate" -m "$calls" -l 30000 -buff_size 4194304 \
    -timeout "${SIPP_TIMEOUT_S}s" -nd -nostdin -trace_stat -stf "$stat" -fd 1 \
    </dev/null >"$RUN_DIR/sipp_$tag.out" 2>&1 || true
  t1="$(date +%s.%N)"; c1="$(cpu_s "$spid")"
  awk -F';' -v tag="$tag" -v rate="$rate" -v calls="$calls" -v mem="$(mem_mb "$spid")" \
      -v cpus="$(awk -v a="$c0" -v b="$c1" 'BEGIN{print b-a}')" \
      -v cpu="$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" 'BEGIN{printf "%.0f", 100*(b-a)/(e-s)}')" '
    END { split($1, s, "\t"); split($3, c, "\t"); el = c[3] - s[3]; ok = $16; fail = $18
      lost = calls - ok - fail
      printf "%s rate=%s calls=%s ok=%d failed=%d fail%%=%.3f achieved=%.0f/s server_cpu=%s%% cpu_us_per_call=%.0f pss_mb=%s\n",
        tag, rate, calls, ok, fail + (lost > 0 ? lost : 0), (calls > 0 ? 100*(calls-ok)/calls : 0),
        (el > 0 ? ok/el : 0), cpu, (ok > 0 ? 1e6*cpus/ok : 0), mem }' "$stat"
}

# start_kamailio → PID; the UAS is registered and answering afterwards.
start_kamailio() {
  kamailio -f "$HERE/kamailio_proxy.cfg" -DD -E -m 1024 -M 32 >>"$RUN_DIR/kamailio.log" 2>&1 &
  local pid=$!
  wait_udp "$KAM_PORT" || { log "kamailio did not listen"; tail "$RUN_DIR/kamailio.log" >&2; exit 1; }
  timeout 10 sipp -sf "$TD/proxy_bench_register.xml" "127.0.0.1:$KAM_PORT" -i 127.0.0.1 -p "$KAM_UAS_PORT" -m 1 \
    -nostdin >"$RUN_DIR/register.out" 2>&1 || { log "registering the UAS at kamailio failed"; exit 1; }
  echo "$pid"
}

start_hotdesk() {
  # shellcheck disable=SC2086 # CALLBENCH_ARGS splits into flags (e.g. "-cpuprofile FILE")
  "$RUN_DIR/callbench" -listen "udp://127.0.0.1:$HD_PORT" -callee "127.0.0.1:$HD_UAS_PORT" ${CALLBENCH_ARGS:-} >>"$RUN_DIR/callbench.log" 2>&1 &
  local pid=$!
  wait_udp "$HD_PORT" || { log "callbench did not listen"; tail "$RUN_DIR/callbench.log" >&2; exit 1; }
  echo "$pid"
}

# bench NAME PORT UASPORT → result lines; the highest sustained rate in $BEST.
# Each rate gets a freshly started server and UAS, so no rate inherits the
# previous one's lingering transactions (sipgo keeps some 32 s).
bench() {
  local name="$1" port="$2" uport="$3" out rate spid upid
  BEST=0
  for rate in sanity ${RATES//,/ }; do
    spid="$(start_$name)"; PIDS+=("$spid")
    upid="$(start_uas "$uport")"; PIDS+=("$upid"); wait_udp "$uport"
    if [[ "$rate" == sanity ]]; then
      out="$(run_uac "${name}_sanity" "$port" 20 20 "$spid")"; log "$out"
      [[ "$out" == *" ok=20 failed=0 "* ]] || { log "$name: sanity run failed"; exit 1; }
    else
      out="$(run_uac "${name}_r${rate}" "$port" "$rate" $((rate * DURATION)) "$spid")"; log "$out"
      echo "$out" >>"$RUN_DIR/results.txt"
      [[ "$name" == hotdesk ]] && log "hotdesk peak RSS: $(awk '/VmHWM/{print $2/1024 " MB"}' /proc/$spid/status)"
      echo "$out peak_rss_mb=$(awk '/VmHWM/{print int($2/1024)}' "/proc/$spid/status")" >>"$RUN_DIR/peaks.txt"
    fi
    stop_pid "$spid"; stop_pid "$upid"; sleep 1
    [[ "$rate" == sanity ]] && continue
    local pct ach; pct="$(sed -E 's/.*fail%=([0-9.]+).*/\1/' <<<"$out")"
    ach="$(sed -E 's/.*achieved=([0-9.]+).*/\1/' <<<"$out")"
    # Sustained: < 0.1 % failed and the offered rate was actually carried
    # (>= 90 %; a run that drags on retransmissions is not sustained).
    if awk -v p="$pct" -v a="$ach" -v r="$rate" 'BEGIN{exit !(p < 0.1 && a >= 0.9 * r)}'; then BEST="$rate"; else break; fi
  done
}

: >"$RUN_DIR/results.txt"; : >"$RUN_DIR/peaks.txt"
if [[ -n "${CALLBENCH_BIN:-}" ]]; then
  cp "$CALLBENCH_BIN" "$RUN_DIR/callbench"
else
  log "building callbench"
  (cd "$REPO" && go build -o "$RUN_DIR/callbench" ./sip/bench/cmd/callbench)
fi
for p in "$UAC_PORT" "$KAM_UAS_PORT" "$HD_UAS_PORT" "$KAM_PORT" "$HD_PORT"; do free_udp "$p" || { log "UDP $p busy"; exit 1; }; done
SERVERS="${SERVERS:-kamailio hotdesk}"; KBEST=0; HBEST=0
[[ "$SERVERS" != *kamailio* ]] || { bench kamailio "$KAM_PORT" "$KAM_UAS_PORT"; KBEST="$BEST"; }
[[ "$SERVERS" != *hotdesk* ]] || { bench hotdesk "$HD_PORT" "$HD_UAS_PORT"; HBEST="$BEST"; }

echo "sustained call attempts/s (<0.1% failed, ${DURATION}s per rate): kamailio=$KBEST hotdesk=$HBEST ratio=$(awk -v h="$HBEST" -v k="$KBEST" 'BEGIN{printf "%.2f", (k > 0 ? h/k : 0)}')"
cpu_at() { grep "^$1_r$2 " "$RUN_DIR/results.txt" | sed -E 's/.*cpu_us_per_call=([0-9]+).*/\1/' || true; }
if (( HBEST > 0 )); then
  # CPU per call where both ran clean: the lower of the two best rates.
  CMP=$(( KBEST > 0 && KBEST < HBEST ? KBEST : HBEST ))
  kc="$(cpu_at kamailio "$CMP")"; hc="$(cpu_at hotdesk "$CMP")"
  echo "CPU per call at ${CMP}/s: kamailio=${kc:-?} us hotdesk=${hc:-?} us ratio=$(awk -v h="${hc:-0}" -v k="${kc:-0}" 'BEGIN{printf "%.2f", (k > 0 ? h/k : 0)}') (goal <= 1.0)"
  echo "hotdesk RSS at ${HBEST}/s: $(grep "^hotdesk_r$HBEST " "$RUN_DIR/peaks.txt" | sed -E 's/.*peak_rss_mb=([0-9]+).*/\1/') MB peak (goal <= 200)"
  # The burst: 3x the sustained rate; what max_calls refuses gets 503.
  BURST="${BURST_RATE:-$((HBEST * 3))}"
  (( BURST > 0 )) || exit 0
  spid="$(start_hotdesk)"; PIDS+=("$spid"); upid="$(start_uas "$HD_UAS_PORT")"; PIDS+=("$upid"); wait_udp "$HD_UAS_PORT"
  out="$(run_uac hotdesk_burst "$HD_PORT" "$BURST" $((BURST * DURATION)) "$spid")"; log "$out"
  echo "burst at ${BURST}/s (3x): $(sed -E 's/.*ok=([0-9]+).*/\1/' <<<"$out") calls carried, the rest shed (503); hotdesk peak RSS $(awk '/VmHWM/{print int($2/1024)}' "/proc/$spid/status") MB"
  stop_pid "$spid"; stop_pid "$upid"
fi
