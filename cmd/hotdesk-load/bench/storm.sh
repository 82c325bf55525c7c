#!/usr/bin/env bash
# storm.sh — boot storm of N simulated handsets against a fresh hotdeskd.
#
# Starts hotdeskd --demo with a temporary config (loopback, unprivileged
# ports, data in a temp dir, auto-enroll when the daemon knows the key),
# seeds users for the login share through the admin API, runs
# `hotdesk-load storm`, prints the figures and the daemon's RSS/CPU, then
# stops the daemon by its PID and removes the temp dir.
#
# Usage: storm.sh [N] [LOGIN_SHARE]          (defaults: 10000 0.2)
# Env:   HOTDESKD=path  HOTDESK_LOAD=path     prebuilt binaries (else built here)
#        CONCURRENCY=200 (handsets in their boot flow at once) RATE=0 HOLD=2s CAP=120s DOMAIN= (AOR domain override; not needed: the lines carry the SIP domain)
#        SETTLE=0 (seconds): after the storm, wait this long and report the daemon's RSS again
#        SEED_CONCURRENCY=8 (users created at once; each costs the daemon an argon2id hash)
#        DAEMON_GOMEMLIMIT=     GOMEMLIMIT for hotdeskd only (e.g. 120MiB; the load tool keeps none)
#        PORT_BASE=18080 (http; admin +1, tftp +2, sip +3)  KEEP=1 keeps the temp dir
#        PROFILE=DIR: during the storm, save the daemon's goroutine dump (at 3 s) and a
#        5 s CPU profile (pprof) into DIR; after it, its heap profile (heap.pprof, in use
#        after a GC) and runtime memory figures (memstats.txt)
# Every load is bounded: -duration-cap and timeout(1); nothing leaves loopback.
set -euo pipefail

N="${1:-10000}"; SHARE="${2:-0.2}"
CONCURRENCY="${CONCURRENCY:-200}"; RATE="${RATE:-0}"; HOLD="${HOLD:-2s}"; CAP="${CAP:-120s}"
PORT_BASE="${PORT_BASE:-18080}"
HTTP_PORT=$PORT_BASE; ADMIN_PORT=$((PORT_BASE + 1)); TFTP_PORT=$((PORT_BASE + 2)); SIP_PORT=$((PORT_BASE + 3))
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
TMP="$(mktemp -d /tmp/hotdesk-storm.XXXXXX)"
DPID=""; PROF_PID=""

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
cleanup() {
  if [[ -n "$DPID" ]] && kill -0 "$DPID" 2>/dev/null; then
    kill -TERM "$DPID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DPID" 2>/dev/null || true
  fi
  [[ "${KEEP:-}" == 1 ]] && { log "kept $TMP"; return; }
  rm -rf "$TMP"
}
trap cleanup EXIT

for p in "$HTTP_PORT" "$ADMIN_PORT" "$SIP_PORT"; do
  if ss -lnt | grep -q ":$p " || ss -lnu | grep -q ":$p "; then log "port $p is in use"; exit 1; fi
done
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(( $(ulimit -n) >= 2 * N + 1000 )) || log "fd limit $(ulimit -n) may be short for $N handsets (one UDP socket each, plus HTTP)"

HOTDESKD="${HOTDESKD:-$TMP/hotdeskd}"; HOTDESK_LOAD="${HOTDESK_LOAD:-$TMP/hotdesk-load}"
[[ -x "$HOTDESKD" ]] || (cd "$ROOT" && go build -o "$HOTDESKD" ./cmd/hotdeskd)
[[ -x "$HOTDESK_LOAD" ]] || (cd "$ROOT" && go build -o "$HOTDESK_LOAD" ./cmd/hotdesk-load)

# The config names every listener so nothing lands on a privileged port.
write_config() {
  cat > "$TMP/hotdesk.yaml" <<EOF
data_dir: $TMP/data
log:
  level: warn
admin:
  listen: 127.0.0.1:$ADMIN_PORT
  initial_user: admin
  initial_password: admin-load
  pprof: true
sip:
  listen: ["udp://127.0.0.1:$SIP_PORT"]
  domain: demo.hotdesk.lan
provisioning:
  http_listen: 127.0.0.1:$HTTP_PORT
  tftp_listen: 127.0.0.1:$TFTP_PORT
$1
dhcp:
  mode: "off"
EOF
}
# Auto-enroll and a generous per-source failure budget when the daemon knows those keys.
write_config "  enroll: auto"
if ! "$HOTDESKD" check-config -c "$TMP/hotdesk.yaml" >"$TMP/check.log" 2>&1; then
  log "daemon does not take provisioning.enroll yet: $(grep -m1 -i enroll "$TMP/check.log" || true)"
  write_config ""
  "$HOTDESKD" check-config -c "$TMP/hotdesk.yaml" >"$TMP/check.log" 2>&1 || { cat "$TMP/check.log" >&2; exit 1; }
fi

env ${DAEMON_GOMEMLIMIT:+GOMEMLIMIT="$DAEMON_GOMEMLIMIT"} "$HOTDESKD" serve --demo -c "$TMP/hotdesk.yaml" >"$TMP/hotdeskd.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do
  curl -fs -m 1 "http://127.0.0.1:$ADMIN_PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$DPID" 2>/dev/null || { log "hotdeskd exited"; cat "$TMP/hotdeskd.log" >&2; exit 1; }
  sleep 0.1
done
log "hotdeskd pid $DPID up${DAEMON_GOMEMLIMIT:+ (GOMEMLIMIT=$DAEMON_GOMEMLIMIT)}; rss $(awk '/VmRSS/{print $2, $3}' /proc/$DPID/status)"

# Users for the login share: load1..loadK through the API.
LOGINS=$(awk -v n="$N" -v s="$SHARE" 'BEGIN{printf "%d", n*s + 0.5}')
if (( LOGINS > 0 )); then
  if ! timeout -k 5 300 "$HOTDESK_LOAD" seed -admin "http://127.0.0.1:$ADMIN_PORT" -admin-pass admin-load \
      -n "$LOGINS" -user-prefix load -c "${SEED_CONCURRENCY:-8}" -duration-cap 280s >"$TMP/seed.log" 2>&1; then
    log "seeding $LOGINS users failed (is POST /api/v1/users there yet?):"; tail -5 "$TMP/seed.log" >&2
    log "continuing with -login-share 0"; SHARE=0
  else
    log "seeded $LOGINS users: $(grep -m1 create_user "$TMP/seed.log" || true)"
    log "daemon after seeding: rss $(awk '/VmRSS/{print $2, $3}' /proc/$DPID/status), peak $(awk '/VmHWM/{print $2, $3}' /proc/$DPID/status)"
  fi
fi

if [[ -n "${PROFILE:-}" ]]; then
  mkdir -p "$PROFILE"
  ( sleep 3; curl -s -m 5 "http://127.0.0.1:$ADMIN_PORT/debug/pprof/goroutine?debug=1" >"$PROFILE/goroutines.txt"
    curl -s -m 15 "http://127.0.0.1:$ADMIN_PORT/debug/pprof/profile?seconds=5" >"$PROFILE/cpu.pprof" ) &
  PROF_PID=$!
fi
TIME=(); [[ -x /usr/bin/time ]] && TIME=(/usr/bin/time -f "hotdesk-load: cpu %P of one core, max rss %M kB" -a -o "$TMP/tool.time")
cpu0=$(awk '{print $14+$15}' "/proc/$DPID/stat")
t0=$(date +%s.%N)
set +e
timeout -k 5 "$(( ${CAP%s} + 30 ))" "${TIME[@]}" "$HOTDESK_LOAD" storm -n "$N" \
  -target "http://127.0.0.1:$HTTP_PORT" -sip "127.0.0.1:$SIP_PORT" -admin "http://127.0.0.1:$ADMIN_PORT" \
  -admin-pass admin-load -login-share "$SHARE" -user-prefix load -concurrency "$CONCURRENCY" -rate "$RATE" \
  -hold "$HOLD" -duration-cap "$CAP" ${DOMAIN:+-domain "$DOMAIN"} -json "$TMP/storm.json" | tee "$TMP/storm.txt"
rc=${PIPESTATUS[0]}
set -e
t1=$(date +%s.%N)
cpu1=$(awk '{print $14+$15}' "/proc/$DPID/stat")
hz=$(getconf CLK_TCK)
echo "daemon: rss_end $(awk '/VmRSS/{print $2, $3}' /proc/$DPID/status), rss_peak $(awk '/VmHWM/{print $2, $3}' /proc/$DPID/status)," \
  "cpu $(awk -v a="$cpu0" -v b="$cpu1" -v hz="$hz" -v t0="$t0" -v t1="$t1" 'BEGIN{printf "%.0f%% of one core over %.1f s", 100*(b-a)/hz/(t1-t0), t1-t0}')"
[[ -f "$TMP/tool.time" ]] && cat "$TMP/tool.time"
if (( ${SETTLE:-0} > 0 )); then
  sleep "$SETTLE"
  echo "daemon after ${SETTLE} s idle: rss $(awk '/VmRSS/{print $2, $3}' /proc/$DPID/status)"
fi
if [[ -n "${PROFILE:-}" ]]; then
  curl -s -m 10 "http://127.0.0.1:$ADMIN_PORT/debug/pprof/heap?gc=1" >"$PROFILE/heap.pprof" || true
  curl -s -m 10 "http://127.0.0.1:$ADMIN_PORT/debug/pprof/heap?debug=1" | grep -E '^# (HeapAlloc|HeapInuse|HeapIdle|HeapReleased|Sys|NextGC|Stack)' >"$PROFILE/memstats.txt" || true
  echo "daemon after GC: rss $(awk '/VmRSS/{print $2, $3}' /proc/$DPID/status); $(tr '\n' ' ' <"$PROFILE/memstats.txt")"
fi
if grep -q '^error sip_404' "$TMP/storm.txt" && [[ -z "${DOMAIN:-}" ]]; then
  log "sip_404: the rendered reg.1.address has no domain, so a phone uses reg.1.server.1.address as the AOR host"
  log "and the registrar does not serve that host; DOMAIN=demo.hotdesk.lan $0 … works around it"
fi
# Only the profiler: a bare `wait` would wait for the daemon too.
[[ -n "${PROF_PID:-}" ]] && { wait "$PROF_PID" 2>/dev/null || true; }
if grep -q ' level=ERROR' "$TMP/hotdeskd.log"; then
  log "daemon errors (first 5):"; grep ' level=ERROR' "$TMP/hotdeskd.log" | head -5 >&2
fi
[[ "${KEEP:-}" == 1 ]] && cp "$TMP/storm.json" "${TMPDIR:-/tmp}/storm-last.json" 2>/dev/null || true
exit "$rc"
