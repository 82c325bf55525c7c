#!/usr/bin/env bash
# tftp_side_by_side.sh — CPU per file of tftpbench builds and dnsmasq, one
# round of each in turn, same load as tftp_vs_dnsmasq.sh (1,000 × 5 KiB by
# one curl, PAR at a time).
#
# Usage: tftp/bench/tftp_side_by_side.sh BIN [BIN...]   (tftpbench binaries,
#   e.g. main's build and yours; build with go build ./tftp/bench/cmd/tftpbench)
#   ROUNDS=9  rounds (after one uncounted warm-up of each)
#   PAR=16    transfers at a time (curl --parallel-max)
# Prints per round and server: files/s, server CPU per file (µs, from
# /proc/PID/task/*/schedstat), curl's CPU per file, and per file the
# server's syscalls, context switches and epoll_pwait calls (perf stat
# tracepoints; 0 when perf is missing), then medians per server. Run under
# flock /tmp/s6-bench.lock. Servers: dnsmasq on 127.0.0.1:69 (as
# tftp_vs_dnsmasq.sh), BIN n on 127.0.0.1:6971+n; stopped by PID on exit.
set -euo pipefail
(($#)) || { sed -n '2,16p' "$0"; exit 2; }
ROUNDS="${ROUNDS:-9}"; PAR="${PAR:-16}"
RUN="${RUN_DIR:-/tmp/hotdesk-tftp-side}"; ROOT="$RUN/tftproot"
mkdir -p "$ROOT"
[[ -s "$ROOT/phone5k.cfg" ]] || head -c 3840 /dev/urandom | base64 -w 76 | head -c 5120 > "$ROOT/phone5k.cfg"
chmod 755 "$RUN" "$ROOT"; chmod 644 "$ROOT"/*
cpu_us() { cat /proc/"$1"/task/*/schedstat | awk '{s+=$1} END {printf "%.0f", s/1000}'; }
wait_udp() { local i; for i in $(seq 50); do ss -lnu | awk '{print $4}' | grep -q ":$1\$" && return 0; sleep 0.1; done; return 1; }
PIDS=(); NAMES=(); PORTS=()
trap 'for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 --bind-interfaces --interface=lo \
  --listen-address=127.0.0.1 --enable-tftp --tftp-root="$ROOT" --tftp-max=64 --quiet-tftp \
  --pid-file="$RUN/dnsmasq.pid" --log-facility="$RUN/dnsmasq.log" &
PIDS+=($!); NAMES+=(dnsmasq); PORTS+=(69)
i=0
for b in "$@"; do
  port=$((6971 + i)); i=$((i + 1))
  "$b" -addr "127.0.0.1:$port" -root "$ROOT" 2>>"$RUN/tftpbench.log" &
  PIDS+=($!); NAMES+=("bin$i"); PORTS+=("$port")
  echo "bin$i = $b" >&2
done
for j in "${!PORTS[@]}"; do
  wait_udp "${PORTS[$j]}" || { echo "${NAMES[$j]} did not listen" >&2; exit 1; }
  for n in $(seq 1000); do printf 'url = "tftp://127.0.0.1:%s/phone5k.cfg"\noutput = "/dev/null"\n' "${PORTS[$j]}"; done > "$RUN/f_${PORTS[$j]}.curl"
done
# one NAME PORT PID: a round; prints "NAME files/s server_us curl_us syscalls switches epoll".
one() {
  local ps="" c0 c1 t0 t1 ok sc=0 sw=0 ep=0
  if command -v perf >/dev/null; then
    perf stat -x, -e raw_syscalls:sys_enter,sched:sched_switch,syscalls:sys_enter_epoll_pwait \
      -p "$3" -o "$RUN/pstat" 2>/dev/null & ps=$!
    sleep 0.2
  fi
  c0="$(cpu_us "$3")"; t0="$(date +%s.%N)"
  timeout -k 5 120 /usr/bin/time -o "$RUN/time" -f "%U %S" curl -s -Z --parallel-max "$PAR" \
    -K "$RUN/f_$2.curl" -w '%{size_download}\n' > "$RUN/out" 2>/dev/null || true
  t1="$(date +%s.%N)"; c1="$(cpu_us "$3")"
  if [[ -n "$ps" ]]; then
    kill -INT "$ps"; wait "$ps" || true
    sc="$(awk -F, '/raw_syscalls/{print $1}' "$RUN/pstat")"; sw="$(awk -F, '/sched_switch/{print $1}' "$RUN/pstat")"
    ep="$(awk -F, '/epoll_pwait/{print $1}' "$RUN/pstat")"
  fi
  ok="$(grep -cx 5120 "$RUN/out" || true)"
  read -r u s < "$RUN/time"
  awk -v n="$1" -v ok="$ok" -v el="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')" -v c=$((c1 - c0)) \
    -v u="$u" -v s="$s" -v sc="${sc:-0}" -v sw="${sw:-0}" -v ep="${ep:-0}" 'BEGIN{ok=ok?ok:1;
    printf "%-8s %6.0f files/s (ok %d)  server %6.1f us/file  curl %6.1f us/file  syscalls %5.1f  switches %5.1f  epoll %5.1f\n",
    n, ok/el, ok, c/ok, (u+s)*1e6/ok, sc/ok, sw/ok, ep/ok}'
}
for j in "${!PIDS[@]}"; do one warm "${PORTS[$j]}" "${PIDS[$j]}" >/dev/null; done
: > "$RUN/results"
for r in $(seq "$ROUNDS"); do
  for j in "${!PIDS[@]}"; do one "${NAMES[$j]}" "${PORTS[$j]}" "${PIDS[$j]}" | tee -a "$RUN/results"; done
done
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
for n in "${NAMES[@]}"; do
  printf '%-8s median: %s files/s, server %s us/file, switches %s, epoll %s per file\n' "$n" \
    "$(awk -v n="$n" '$1==n {print $2}' "$RUN/results" | median)" \
    "$(awk -v n="$n" '$1==n {print $7}' "$RUN/results" | median)" \
    "$(awk -v n="$n" '$1==n {print $15}' "$RUN/results" | median)" \
    "$(awk -v n="$n" '$1==n {print $17}' "$RUN/results" | median)"
done
