#!/usr/bin/env bash
# register_daemon_vs_kamailio.sh — REGISTER + digest (401 qop=auth → REGISTER
# → 200) through the real daemon (hotdeskd serve: its store on SQLite, the
# registrar's bindings written behind in batches, 10,000 users imported
# through the admin API, each registering their permanent SIP account) and
# Kamailio 5.6 with usrloc in the database (db_sqlite, USRLOC_DB_MODE 2:
# write-back every second; 1: write-through), in the same run, loaded by
# sipp with the same scenario (reg_auth.xml) and the same number of users.
#
# Output: one line per sipp run (ok, failed, fail%, achieved/s, server CPU of
# one core, PSS; hotdesk also RSS), the load average before each pair, and
# the hotdesk/Kamailio ratio of achieved rates per rate. A rate counts as
# clean when fail% < 0.1.
#
# Usage: sip/bench/register_daemon_vs_kamailio.sh [RATES] [REPS]
#   RATES  comma list of target registrations/s (default 4000,8000,12000)
#   REPS   repetitions per rate and server (default 1)
# Env:     USERS=10000  USRLOC_DB_MODE=2  HOTDESKD=prebuilt binary  SIPP_TIMEOUT_S=60
#          PROFILE=DIR: for each hotdesk run, a goroutine dump 3 s in, a 5 s CPU profile and the
#          SIP counters after it (DIR/<run>.goroutines.txt, .cpu.pprof, .metrics.txt; admin.pprof on)
# Needs: root for apt-get only when peers are missing (sip-tester, kamailio,
# kamailio-sqlite-modules, sqlite3, curl); go. Loopback only: UDP 5070
# (Kamailio), 5080 (hotdeskd), TCP 5081/5082 (hotdeskd's admin and HTTP).
# Every sipp run is bounded by -m CALLS and SIPP_TIMEOUT_S; the servers
# started here are stopped by PID on exit.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
# shellcheck source=../../cmd/hotdesk-load/bench/peers.sh
source "$REPO/cmd/hotdesk-load/bench/peers.sh"
install_peers sip-tester kamailio kamailio-sqlite-modules sqlite3 curl
RUN_DIR="$(mktemp -d /tmp/hotdesk-regdaemon.XXXXXX)"
RATES="${1:-4000,8000,12000}"; REPS="${2:-1}"; USERS="${USERS:-10000}"
SIPP_TIMEOUT_S="${SIPP_TIMEOUT_S:-60}"; USRLOC_DB_MODE="${USRLOC_DB_MODE:-2}"
ulimit -n 65536 2>/dev/null || true
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do stop_pid "$p"; done; [[ "${KEEP:-}" == 1 ]] || rm -rf "$RUN_DIR"; }
trap cleanup EXIT
stop_pid() {
  local pid="$1" i; kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}
descendants() { local c; echo "$1"; for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do descendants "$c"; done; }
mem_mb() { # PSS of the process tree, so Kamailio's shared memory counts once
  local p t=0 v
  for p in $(descendants "$1"); do
    v="$(awk '/^Pss:/{print $2}' "/proc/$p/smaps_rollup" 2>/dev/null || echo 0)"; t=$((t + ${v:-0}))
  done
  echo $((t / 1024))
}
cpu_s() { local p t=0 v; for p in $(descendants "$1"); do
  v="$(sed -E 's/^.*\) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12+$13}')" || v=0; t=$((t + ${v:-0})); done
  awk -v t="$t" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.2f", t/hz}'; }
wait_udp() { local i; for i in $(seq 100); do ss -lnu | grep -q "127.0.0.1:$1 " && return 0; sleep 0.1; done; return 1; }
free_port() { ! ss -lnu | grep -q ":$1 " && ! ss -lnt | grep -q ":$1 "; }
for p in 5070 5080 5081 5082; do free_port "$p" || { log "port $p busy"; exit 1; }; done

# Kamailio: the subscribers u100000.. (HA1 of pwNNNNNx) and an empty location table.
N="$USERS" RUN_DIR="$RUN_DIR" python3 - <<'PY'
import hashlib, os
n, d, realm = int(os.environ["N"]), os.environ["RUN_DIR"], "hotdesk.test"
with open(f"{d}/kam.csv", "w") as f, open(f"{d}/kam.sql", "w") as s, open(f"{d}/users_import.csv", "w") as imp:
    f.write("SEQUENTIAL\n"); s.write("BEGIN;\n")
    imp.write("username,first_name,last_name,email,numbers\n")
    for i in range(n):
        u, p = f"u{100000+i}", f"pw{i:05d}x"
        f.write(f"{u};[authentication username={u} password={p}]\n")
        ha1 = hashlib.md5(f"{u}:{realm}:{p}".encode()).hexdigest()
        s.write(f"INSERT INTO subscriber(username,domain,ha1) VALUES('{u}','{realm}','{ha1}');\n")
        imp.write(f"{u},U,{i},{u}@bench.test,{100000+i}\n")
    s.write("COMMIT;\n")
PY
cat /usr/share/kamailio/db_sqlite/standard-create.sql /usr/share/kamailio/db_sqlite/auth_db-create.sql \
    /usr/share/kamailio/db_sqlite/usrloc-create.sql "$RUN_DIR/kam.sql" | sqlite3 "$RUN_DIR/kam.sqlite"
# WAL, as hotdesk's store: in the default rollback journal usrloc's flushes
# lock auth_db's reads out ("database is locked": 78 % of REGISTERs failed).
[[ "$(sqlite3 "$RUN_DIR/kam.sqlite" 'PRAGMA journal_mode=WAL')" == wal ]] || { log "kam.sqlite: no WAL"; exit 1; }

# hotdeskd: a plain serve (no demo data), SIP domain = realm hotdesk.test.
HOTDESKD="${HOTDESKD:-$RUN_DIR/hotdeskd}"
[[ -x "$HOTDESKD" ]] || { log "building hotdeskd"; (cd "$REPO" && go build -o "$HOTDESKD" ./cmd/hotdeskd); }
cat > "$RUN_DIR/hotdesk.yaml" <<EOF
data_dir: $RUN_DIR/data
log: {level: warn}
admin: {listen: "127.0.0.1:5081", initial_user: admin, initial_password: admin-bench, pprof: $([[ -n "${PROFILE:-}" ]] && echo true || echo false)}
sip: {listen: ["udp://127.0.0.1:5080"], domain: hotdesk.test}
provisioning: {http_listen: "127.0.0.1:5082", tftp_listen: ""}
dhcp: {mode: "off"}
EOF
"$HOTDESKD" check-config -c "$RUN_DIR/hotdesk.yaml" >/dev/null
"$HOTDESKD" serve -c "$RUN_DIR/hotdesk.yaml" >"$RUN_DIR/hotdeskd.log" 2>&1 &
HPID=$!; PIDS+=("$HPID")
for _ in $(seq 300); do curl -fs -m 1 http://127.0.0.1:5081/healthz >/dev/null 2>&1 && break
  kill -0 "$HPID" 2>/dev/null || { log "hotdeskd exited"; cat "$RUN_DIR/hotdeskd.log" >&2; exit 1; }; sleep 0.1; done
t0=$(date +%s.%N)
code="$(curl -s -m 300 -o "$RUN_DIR/import.json" -w '%{http_code}' -u admin:admin-bench -H 'Content-Type: text/csv' \
  --data-binary @"$RUN_DIR/users_import.csv" http://127.0.0.1:5081/api/v1/users/import)"
[[ "$code" == 201 ]] || { log "import: HTTP $code $(head -c 300 "$RUN_DIR/import.json")"; exit 1; }
log "imported $USERS users in $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b-a}') s"
# Each user's permanent SIP account: digest user = number, its password from the store.
sqlite3 -readonly "$RUN_DIR/data/hotdesk.db" \
  "SELECT n.number || ';[authentication username=' || n.number || ' password=' || u.sip_password || ']'
   FROM numbers n JOIN users u ON u.id = n.user_id WHERE n.number >= '100000' ORDER BY n.number" \
  | { echo SEQUENTIAL; cat; } >"$RUN_DIR/hd.csv"
(( $(wc -l <"$RUN_DIR/hd.csv") == USERS + 1 )) || { log "hd.csv has $(wc -l <"$RUN_DIR/hd.csv") lines"; exit 1; }

kamailio -f "$HERE/kamailio.cfg" -DD -E -m 256 -M 16 -A WITH_AUTH -A WITH_USRLOC_DB -A "USRLOC_DB_MODE=$USRLOC_DB_MODE" \
  -A "DBURL=\"sqlite://$RUN_DIR/kam.sqlite\"" >"$RUN_DIR/kamailio.log" 2>&1 &
KPID=$!; PIDS+=("$KPID")
wait_udp 5070 || { log "kamailio did not listen"; cat "$RUN_DIR/kamailio.log"; exit 1; }
wait_udp 5080 || { log "hotdeskd did not listen"; cat "$RUN_DIR/hotdeskd.log"; exit 1; }

# run_sipp TAG CSV PORT RATE CALLS SERVERPID → one result line on stdout.
run_sipp() {
  local tag="$1" csv="$2" port="$3" rate="$4" calls="$5" spid="$6" stat c0 c1 t0 t1 prof
  stat="$RUN_DIR/stat_$tag.csv"; rm -f "$stat"
  c0="$(cpu_s "$spid")"; t0="$(date +%s.%N)"
  if [[ -n "${PROFILE:-}" && "$tag" == hotdesk_r* ]]; then
    mkdir -p "$PROFILE"
    ( sleep 3; curl -s -m 5 "http://127.0.0.1:5081/debug/pprof/goroutine?debug=1" >"$PROFILE/$tag.goroutines.txt"
      curl -s -m 10 "http://127.0.0.1:5081/debug/pprof/profile?seconds=5" >"$PROFILE/$tag.cpu.pprof" ) &
    prof=$!
  fi
  timeout -k 5 "$SIPP_TIMEOUT_S" sipp -sf "$HERE/reg_auth.xml" -inf "$csv" "127.0.0.1:$port" \
    -i 127.0.0.1 -p 5061 -r "$rate" -m "$calls" -l 20000 -buff_size 4194304 \
    -timeout "${SIPP_TIMEOUT_S}s" -nd -nostdin -trace_stat -stf "$stat" -fd 1 \
    </dev/null >"$RUN_DIR/sipp_$tag.out" 2>&1 || true
  t1="$(date +%s.%N)"; c1="$(cpu_s "$spid")"
  if [[ -n "${PROFILE:-}" && "$tag" == hotdesk_r* ]]; then
    wait "$prof"
    curl -s -m 5 http://127.0.0.1:5081/metrics | grep -E '^hotdesk_sip_(udp|dropped|register|lockouts|auth|requests)' \
      >"$PROFILE/$tag.metrics.txt" || true
  fi
  awk -F';' -v tag="$tag" -v rate="$rate" -v calls="$calls" -v mem="$(mem_mb "$spid")" \
      -v cpu="$(awk -v a="$c0" -v b="$c1" -v s="$t0" -v e="$t1" 'BEGIN{printf "%.0f", 100*(b-a)/(e-s)}')" '
    END { split($1, s, "\t"); split($3, c, "\t"); el = c[3] - s[3]; ok = $16; fail = $18
      printf "%s rate=%s calls=%s ok=%d failed=%d fail%%=%.3f achieved=%.0f/s server_cpu=%s%% pss_mb=%s\n",
        tag, rate, calls, ok, fail, (ok+fail > 0 ? 100*fail/(ok+fail) : 0), (el > 0 ? ok/el : 0), cpu, mem }' "$stat"
}
sanity() { # NAME CSV PORT PID
  local out; out="$(run_sipp "$1_sanity" "$2" "$3" 20 20 "$4")"; log "$out"
  [[ "$out" == *" ok=20 failed=0 "* ]] || { log "$1: sanity failed"; exit 1; }
}
sanity kamailio "$RUN_DIR/kam.csv" 5070 "$KPID"
sanity hotdesk "$RUN_DIR/hd.csv" 5080 "$HPID"

for rate in ${RATES//,/ }; do
  calls="$(( rate * 10 > USERS ? rate * 10 : USERS ))"
  for rep in $(seq "$REPS"); do
    la="$(cut -d' ' -f1-3 /proc/loadavg)"
    # Alternate who goes first, so a drift in background load does not always hit the same one.
    if (( rep % 2 == 1 )); then
      k="$(run_sipp "kamailio_r${rate}_${rep}" "$RUN_DIR/kam.csv" 5070 "$rate" "$calls" "$KPID")"; echo "$k"; sleep 1
      h="$(run_sipp "hotdesk_r${rate}_${rep}" "$RUN_DIR/hd.csv" 5080 "$rate" "$calls" "$HPID")"
      echo "$h rss_mb=$(awk '/VmRSS/{print int($2/1024)}' /proc/$HPID/status)"
    else
      h="$(run_sipp "hotdesk_r${rate}_${rep}" "$RUN_DIR/hd.csv" 5080 "$rate" "$calls" "$HPID")"
      echo "$h rss_mb=$(awk '/VmRSS/{print int($2/1024)}' /proc/$HPID/status)"; sleep 1
      k="$(run_sipp "kamailio_r${rate}_${rep}" "$RUN_DIR/kam.csv" 5070 "$rate" "$calls" "$KPID")"; echo "$k"
    fi
    ka="$(sed -E 's/.*achieved=([0-9]+).*/\1/' <<<"$k")"; ha="$(sed -E 's/.*achieved=([0-9]+).*/\1/' <<<"$h")"
    echo "ratio_daemon_r${rate}_${rep} hotdesk/kamailio=$(awk -v a="$ha" -v b="$ka" 'BEGIN{printf "%.2f", (b>0 ? a/b : 0)}') load_average=${la// /,}"
    sleep 1
  done
done
# Both wrote their bindings to the database: count the rows (hotdesk flushes within ~100 ms, Kamailio each second).
sleep 2
log "rows in the database: hotdesk bindings $(sqlite3 -readonly "$RUN_DIR/data/hotdesk.db" 'SELECT count(*) FROM bindings'),"\
" kamailio location $(sqlite3 -readonly "$RUN_DIR/kam.sqlite" 'SELECT count(*) FROM location')"
log "hotdesk peak RSS (VmHWM): $(awk '/VmHWM/{print int($2/1024) " MB"}' /proc/$HPID/status)"
