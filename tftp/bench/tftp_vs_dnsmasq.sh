#!/usr/bin/env bash
# tftp_vs_dnsmasq.sh — hotdesk's TFTP server vs dnsmasq, same machine, same run.
#
# Usage: tftp/bench/tftp_vs_dnsmasq.sh [REPS]        (default 9 rounds)
#   TFTPBENCH_BIN=path  run this tftpbench binary instead of building one
#   PROFILE=1  also writes a CPU profile of hotdesk's server to $RUN_DIR/tftp.pprof
#   TFTPBENCH_ARGS="-procs 1"  extra tftpbench flags (-procs: the daemon's max_procs)
#
# Load (as /work/shared/bench/tftp_bench.sh, load A): 1,000 fetches of a
# 5,120-byte .cfg, 16 at a time, by one curl process (curl -Z
# --parallel-max 16), files/s = files received whole / wall time.
# Servers, both on loopback and both running for the whole run, loaded in
# turn (dnsmasq, then hotdesk, per round, after one uncounted warm-up round
# of each: a round lasts ~0.2 s, and the first one after start measured
# thread and stack start-up, not serving):
#   dnsmasq 2.90: TFTP only (port=0: no DNS, no DHCP), 127.0.0.1:69 (dnsmasq
#                 cannot move its TFTP port), --tftp-max=64
#   hotdesk:      tftp/bench/cmd/tftpbench (hotdesk/tftp, DefaultConfig with
#                 the per-client reflection limits lifted, as every request
#                 comes from 127.0.0.1; serving the same directory) on
#                 127.0.0.1:6971
# Prints per round files/s and server CPU (% of one core), then the medians
# and hotdesk ÷ dnsmasq (goal ≥ 1.0). Every step is bounded by timeout(1);
# the servers started here are stopped by PID on exit.
set -euo pipefail

REPS="${1:-9}"
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
RUN_DIR="${RUN_DIR:-/tmp/hotdesk-tftp-bench}"
ROOT="$RUN_DIR/tftproot"
HD_PORT=6971
CLK_TCK="$(getconf CLK_TCK)"
mkdir -p "$ROOT"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
# shellcheck source=../../cmd/hotdesk-load/bench/peers.sh
source "$REPO/cmd/hotdesk-load/bench/peers.sh"
install_peers curl dnsmasq-base iproute2
for tool in curl dnsmasq go ss; do
  command -v "$tool" >/dev/null || { log "missing $tool"; exit 2; }
done
udp_busy() { ss -lnu | awk '{print $4}' | grep -q ":$1\$"; }
wait_udp() { local i; for i in $(seq 50); do udp_busy "$1" && return 0; sleep 0.1; done; return 1; }
stop_pid() {
  local pid="$1" i
  [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
cpu_ticks() { sed -E 's/^.*\) //' "/proc/$1/stat" | awk '{print $12+$13}'; }
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }

for p in 69 "$HD_PORT"; do
  if udp_busy "$p"; then log "UDP port $p is in use"; ss -lnup | grep ":$p " >&2; exit 1; fi
done

BIN="${TFTPBENCH_BIN:-$RUN_DIR/tftpbench}"
if [[ -z "${TFTPBENCH_BIN:-}" ]]; then
  log "building tftpbench"
  (cd "$REPO" && go build -o "$BIN" ./tftp/bench/cmd/tftpbench)
fi
[[ -s "$ROOT/phone5k.cfg" ]] || head -c 3840 /dev/urandom | base64 -w 76 | head -c 5120 > "$ROOT/phone5k.cfg"
chmod 755 "$RUN_DIR" "$ROOT"; chmod 644 "$ROOT"/*

DPID=""; HPID=""
trap 'stop_pid "$HPID"; stop_pid "$DPID"' EXIT
dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
  --bind-interfaces --interface=lo --listen-address=127.0.0.1 \
  --enable-tftp --tftp-root="$ROOT" --tftp-max=64 --quiet-tftp \
  --pid-file="$RUN_DIR/dnsmasq.pid" --log-facility="$RUN_DIR/dnsmasq.log" &
DPID=$!
prof=(); [[ "${PROFILE:-0}" == 1 ]] && prof=(-cpuprofile "$RUN_DIR/tftp.pprof")
# shellcheck disable=SC2086 # TFTPBENCH_ARGS splits into flags
"$BIN" -addr "127.0.0.1:$HD_PORT" -root "$ROOT" "${prof[@]}" ${TFTPBENCH_ARGS:-} 2>"$RUN_DIR/tftpbench.log" &
HPID=$!
wait_udp 69 || { log "dnsmasq did not listen"; exit 1; }
wait_udp "$HD_PORT" || { log "tftpbench did not listen"; exit 1; }

for port in 69 "$HD_PORT"; do
  for i in $(seq 1000); do
    printf 'url = "tftp://127.0.0.1:%s/phone5k.cfg"\noutput = "/dev/null"\n' "$port"
  done > "$RUN_DIR/fetch_$port.curl"
done

# load NAME PORT PID: one round of load A; prints "files_per_s cpu_pct ok".
load() {
  local port="$2" pid="$3" t0 t1 c0 c1 ok el
  c0="$(cpu_ticks "$pid")"; t0="$(date +%s.%N)"
  timeout -k 5 120 curl -s -Z --parallel-max 16 -K "$RUN_DIR/fetch_$port.curl" \
    -w '%{size_download}\n' > "$RUN_DIR/out_$1" 2>/dev/null || true
  t1="$(date +%s.%N)"; c1="$(cpu_ticks "$pid")"
  ok="$(grep -cx 5120 "$RUN_DIR/out_$1" || true)"
  el="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')"
  awk -v n="$ok" -v s="$el" -v c=$((c1 - c0)) -v hz="$CLK_TCK" \
    'BEGIN{printf "%.0f %.0f %d\n", n/s, 100*c/hz/s, n}'
}

: > "$RUN_DIR/results"
load dnsmasq 69 "$DPID" >/dev/null
load hotdesk "$HD_PORT" "$HPID" >/dev/null
for rep in $(seq "$REPS"); do
  read -r dfs dcpu dok < <(load dnsmasq 69 "$DPID")
  read -r hfs hcpu hok < <(load hotdesk "$HD_PORT" "$HPID")
  echo "$dfs $hfs" >> "$RUN_DIR/results"
  printf 'round %d: dnsmasq %5d files/s (ok %d/1000, cpu %d%%)  hotdesk %5d files/s (ok %d/1000, cpu %d%%)  ratio %.2f\n' \
    "$rep" "$dfs" "$dok" "$dcpu" "$hfs" "$hok" "$hcpu" "$(awk -v a="$hfs" -v b="$dfs" 'BEGIN{print a/b}')"
done
dmed="$(awk '{print $1}' "$RUN_DIR/results" | median)"
hmed="$(awk '{print $2}' "$RUN_DIR/results" | median)"
printf 'median over %d rounds: dnsmasq %s files/s, hotdesk %s files/s, hotdesk/dnsmasq = %.2f (goal >= 1.0)\n' \
  "$REPS" "$dmed" "$hmed" "$(awk -v a="$hmed" -v b="$dmed" 'BEGIN{print a/b}')"
