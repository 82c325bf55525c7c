#!/usr/bin/env bash
# register_vs_kamailio.sh — REGISTER + digest (401 qop=auth → REGISTER → 200)
# throughput of hotdesk's registrar (sip/bench/cmd/regbench, UDP
# 127.0.0.1:5080) and Kamailio 5.6 (kamailio.cfg here, UDP 127.0.0.1:5070)
# in the same run, loaded by sipp with the same 10,000 users u100000..
# (passwords pwNNNNNx, realm hotdesk.test). Method from
# shared/bench/sip_kamailio.sh + sip_common.sh.
#
# Output: one line per sipp run (ok, failed, fail%, achieved/s, server CPU of
# one core from /proc ticks, PSS of the server's process tree; hotdesk also
# its RSS) and the hotdesk/Kamailio ratio of achieved rates per rate.
# A rate counts as clean when fail% < 0.1.
#
# Usage: sip/bench/register_vs_kamailio.sh [RATES] [REPS]
#   RATES  comma list of target registrations/s (default 8000,10000,11000,12000)
#   REPS   repetitions per rate and server (default 1)
# Needs: python3, go; sip-tester (sipp), kamailio, kamailio-sqlite-modules and sqlite3 are installed when missing.
# Every sipp run is bounded by -m CALLS and SIPP_TIMEOUT_S (60 s); the servers
# started here are stopped by PID on exit.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../../cmd/hotdesk-load/bench/peers.sh
source "$REPO/cmd/hotdesk-load/bench/peers.sh"
install_peers sip-tester kamailio kamailio-sqlite-modules sqlite3
RUN_DIR="${RUN_DIR:-/tmp/hotdesk-regbench}"; mkdir -p "$RUN_DIR"
RATES="${1:-8000,10000,11000,12000}"; REPS="${2:-1}"; USERS="${USERS:-10000}"
SIPP_TIMEOUT_S="${SIPP_TIMEOUT_S:-60}"
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
# mem_mb PID: proportional set size (PSS) of the process tree in MB, so
# Kamailio's shared memory is counted once across its children.
mem_mb() {
  local p t=0 v
  for p in $(descendants "$1"); do
    v="$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)"; t=$((t + ${v:-0}))
  done
  echo $((t / 1024))
}
cpu_s() { local p t=0 v; for p in $(descendants "$1"); do
  v="$(sed -E 's/^.*\) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12+$13}')" || v=0; t=$((t + ${v:-0})); done
  awk -v t="$t" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t/hz}'; }
wait_udp() { local i; for i in $(seq 50); do ss -lnu | grep -q "127.0.0.1:$1 " && return 0; sleep 0.1; done; return 1; }
free_udp() { ! ss -lnu | grep -q ":$1 "; }

make_users() {
  [[ -f "$RUN_DIR/users.n" && "$(cat "$RUN_DIR/users.n")" == "$USERS" ]] && return 0
  N="$USERS" RUN_DIR="$RUN_DIR" python3 - <<'PY'
import hashlib, os
n, d, realm = int(os.environ["N"]), os.environ["RUN_DIR"], "hotdesk.test"
with open(f"{d}/users.csv", "w") as f, open(f"{d}/users.sql", "w") as s, open(f"{d}/badpw.csv", "w") as b:
    f.write("SEQUENTIAL\n"); s.write("BEGIN;\n"); b.write("SEQUENTIAL\n")
    for i in range(n):
        u, p = f"u{100000+i}", f"pw{i:05d}x"
        f.write(f"{u};[authentication username={u} password={p}]\n")
        ha1 = hashlib.md5(f"{u}:{realm}:{p}".encode()).hexdigest()
        s.write(f"INSERT INTO subscriber(username,domain,ha1) VALUES('{u}','{realm}','{ha1}');\n")
    s.write("COMMIT;\n")
    b.write("u100000;[authentication username=u100000 password=wrong]\n")
PY
  rm -f "$RUN_DIR/users.sqlite"
  cat /usr/share/kamailio/db_sqlite/standard-create.sql /usr/share/kamailio/db_sqlite/auth_db-create.sql \
      "$RUN_DIR/users.sql" | sqlite3 "$RUN_DIR/users.sqlite"
  echo "$USERS" > "$RUN_DIR/users.n"
}

# run_sipp TAG CSV PORT RATE CALLS SERVERPID → one result line on stdout.
run_sipp() {
  local tag="$1" csv="$2" port="$3" rate="$4" calls="$5" spid="$6" stat c0 c1 t0 t1
  stat="$RUN_DIR/stat_$tag.csv"; rm -f "$stat"
  c0="$(cpu_s "$spid")"; t0="$(date +%s.%N)"
  timeout -k 5 "$SIPP_TIMEOUT_S" sipp -sf "$HERE/reg_auth.xml" -inf "$csv" "127.0.0.1:$port" \
    -i 127.0.0.1 -p 5061 -r "$rate" -m "$calls" -l 20000 -buff_size 4194304 \
    -timeout "${SIPP_TIMEOUT_S}s" -nd -nostdin -trace_stat -stf "$stat" -fd 1 \
    </dev/null >"$RUN_DIR/sipp_$tag.out" 2>&1 || true
  t1="$(date +%s.%N)"; c1="$(cpu_s "$spid")"
  awk -F';' -v tag="$tag" -v rate="$rate" -v calls="$calls" -v mem="$(mem_mb "$spid")" \
      -v cpu="$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" 'BEGIN{printf "%.0f", 100*(b-a)/(e-s)}')" '
    END { split($1, s, "\t"); split($3, c, "\t"); el = c[3] - s[3]; ok = $16; fail = $18
      printf "%s rate=%s calls=%s ok=%d failed=%d fail%%=%.3f achieved=%.0f/s server_cpu=%s%% pss_mb=%s\n",
        tag, rate, calls, ok, fail, (ok+fail > 0 ? 100*fail/(ok+fail) : 0), (el > 0 ? ok/el : 0), cpu, mem }' "$stat"
}

sanity() { # NAME PORT PID
  local name="$1" port="$2" pid="$3" out
  out="$(run_sipp "${name}_sanity" "$RUN_DIR/users.csv" "$port" 20 20 "$pid")"; log "$out"
  [[ "$out" == *" ok=20 failed=0 "* ]] || { log "$name: sanity failed"; exit 1; }
  out="$(run_sipp "${name}_badpw" "$RUN_DIR/badpw.csv" "$port" 1 1 "$pid")"; log "$out"
  [[ "$out" == *" ok=0 failed=1 "* ]] || { log "$name: wrong password was accepted"; exit 1; }
}

make_users
log "building regbench"
(cd "$REPO" && go build -o "$RUN_DIR/regbench" ./sip/bench/cmd/regbench)

# Both servers run for the whole sweep; each rate is measured on Kamailio and
# then on hotdesk right after, so background load hits both alike.
free_udp 5070 || { log "UDP 5070 busy"; exit 1; }
free_udp 5080 || { log "UDP 5080 busy"; exit 1; }
kamailio -f "$HERE/kamailio.cfg" -DD -E -m 256 -M 16 -A WITH_AUTH -A "DBURL=\"sqlite://$RUN_DIR/users.sqlite\"" \
  >"$RUN_DIR/kamailio.log" 2>&1 &
KPID=$!; PIDS+=("$KPID")
"$RUN_DIR/regbench" -listen udp://127.0.0.1:5080 -users "$USERS" >"$RUN_DIR/regbench.log" 2>&1 &
HPID=$!; PIDS+=("$HPID")
wait_udp 5070 || { log "kamailio did not listen"; cat "$RUN_DIR/kamailio.log"; exit 1; }
wait_udp 5080 || { log "regbench did not listen"; cat "$RUN_DIR/regbench.log"; exit 1; }
sleep 0.5
sanity kamailio 5070 "$KPID"
sanity hotdesk 5080 "$HPID"
for rate in ${RATES//,/ }; do
  calls="$(( rate * 10 > USERS ? rate * 10 : USERS ))"
  for rep in $(seq "$REPS"); do
    log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
    # Alternate which server goes first so a drift in background load does
    # not always hit the same one.
    if (( rep % 2 == 1 )); then
      k="$(run_sipp "kamailio_r${rate}_${rep}" "$RUN_DIR/users.csv" 5070 "$rate" "$calls" "$KPID")"; echo "$k"; sleep 1
      h="$(run_sipp "hotdesk_r${rate}_${rep}" "$RUN_DIR/users.csv" 5080 "$rate" "$calls" "$HPID")"
      echo "$h rss_mb=$(awk '/VmRSS/{print int($2/1024)}' /proc/$HPID/status)"
    else
      h="$(run_sipp "hotdesk_r${rate}_${rep}" "$RUN_DIR/users.csv" 5080 "$rate" "$calls" "$HPID")"
      echo "$h rss_mb=$(awk '/VmRSS/{print int($2/1024)}' /proc/$HPID/status)"; sleep 1
      k="$(run_sipp "kamailio_r${rate}_${rep}" "$RUN_DIR/users.csv" 5070 "$rate" "$calls" "$KPID")"; echo "$k"
    fi
    ka="$(sed -E 's/.*achieved=([0-9]+).*/\1/' <<<"$k")"; ha="$(sed -E 's/.*achieved=([0-9]+).*/\1/' <<<"$h")"
    echo "ratio_r${rate}_${rep} hotdesk/kamailio=$(awk -v a="$ha" -v b="$ka" 'BEGIN{printf "%.2f", (b>0 ? a/b : 0)}')"
    sleep 1
  done
done
log "hotdesk peak RSS (VmHWM): $(awk '/VmHWM/{print int($2/1024) " MB"}' /proc/$HPID/status)"
