#!/usr/bin/env bash
# storm.sh — boot storm of N simulated handsets against a fresh hotdeskd.
#
# Starts hotdeskd --demo with a temporary config (loopback, unprivileged
# ports, data in a temp dir, auto-enroll when the daemon knows the key),
# seeds users for the login share through the admin API, runs
# `hotdesk-load storm`, prints the figures and the daemon's RSS/CPU, then
# stops the daemon by its PID and removes the temp dir.
#
# Usage: storm.sh [N] [LOGIN_SHARE] [VENDOR]  (defaults: 10000 0.2 polycom)
#        VENDOR (or env VENDOR) is the handsets' vendor mix, e.g. polycom,yealink,cisco or
#        polycom:2,yealink:1,cisco:1 (`hotdesk-load storm -vendor`); storm_vendors.sh runs
#        Polycom-only and the mix side by side and prints the ratios.
# Env:   HOTDESKD=path  HOTDESK_LOAD=path     prebuilt binaries (else built here)
#        CONCURRENCY=200 (handsets in their boot flow at once) RATE=0 HOLD=2s CAP=120s DOMAIN= (AOR domain override; not needed: the lines carry the SIP domain)
#        SETTLE=0 (seconds): after the storm, wait this long and report the daemon's RSS again
#        SEED_CONCURRENCY=8 (users created at once; each costs the daemon an argon2id hash)
#        DAEMON_GOMEMLIMIT=     GOMEMLIMIT for hotdeskd only (e.g. 120MiB; the load tool keeps none)
#        DAEMON_GODEBUG=        GODEBUG for hotdeskd only; with gctrace=1 its GC lines are kept in
#                               GCTRACE_LOG (default PROFILE/gctrace.log, else dropped with the temp
#                               dir) and summed up: cycles, the largest heap and heap goal
#        PORT_BASE=18080 (http; admin +1, tftp +2, sip +3)  KEEP=1 keeps the temp dir
#        STORM_ARGS="…" extra storm flags, e.g. "-reboot-share 0.3 -split-port-share 0.5 -relock-notify-wait 5s"
#        PROFILE=DIR: during the storm, save the daemon's goroutine dump (at PROFILE_AT=3 s) and a
#        PROFILE_SECONDS=5 s CPU profile (pprof) and mutex/block/allocs profiles over the same seconds
#        (mutex.pprof, block.pprof: where it waits; allocs.pprof: what it allocated) and the heap in use
#        at their end (heap-storm.pprof) into DIR; after it, its heap profile (heap.pprof, in use
#        after a GC) and runtime memory figures (memstats.txt); the load tool's own CPU profile over the
#        whole storm (load-cpu.pprof)
#        DHCP=1 (root): the handsets get their addresses and boot server by DHCP first.
#        Two network namespaces joined by a veth pair: hotdeskd in the server one
#        (10.77.0.1/16, DHCP server for 10.77.128.1-10.77.255.254 on the veth, every
#        listener on 10.77.0.1), hotdesk-load in the client one (10.77.0.2/16) with
#        `storm -dhcp <veth>` and no -target (option 160/66 is the target). A `local`
#        route for 10.77.128.0/17 on the client's lo makes every leased address
#        bindable (and answer ARP) without adding 10,000 addresses; the server
#        namespace routes that /17 via 10.77.0.2 so its neighbour table holds one entry,
#        not one per handset (the kernel's table is global and 1024 entries by default;
#        DHCP_ONLINK=1 keeps them on-link to see that). Namespaces are deleted on exit.
# Every load is bounded: -duration-cap and timeout(1); nothing leaves loopback
# (or, with DHCP=1, the two namespaces).
set -euo pipefail

N="${1:-10000}"; SHARE="${2:-0.2}"; VENDOR="${3:-${VENDOR:-polycom}}"
CONCURRENCY="${CONCURRENCY:-200}"; RATE="${RATE:-0}"; HOLD="${HOLD:-2s}"; CAP="${CAP:-120s}"
PORT_BASE="${PORT_BASE:-18080}"
HTTP_PORT=$PORT_BASE; ADMIN_PORT=$((PORT_BASE + 1)); TFTP_PORT=$((PORT_BASE + 2)); SIP_PORT=$((PORT_BASE + 3))
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)"
TMP="$(mktemp -d /tmp/hotdesk-storm.XXXXXX)"
DPID=""; PROF_PID=""
# DHCP=1 runs the daemon and the tool in namespaces; ADDR is where the daemon listens.
DHCP="${DHCP:-0}"; ADDR=127.0.0.1; NS_SRV=(); NS_CLI=(); SRV_NS=""; CLI_NS=""; SRV_IF=""; CLI_IF=""
if [[ "$DHCP" == 1 ]]; then
  SRV_NS="hdl-$$-srv"; CLI_NS="hdl-$$-cli"; SRV_IF="hdl$$s"; CLI_IF="hdl$$c"
  ADDR=10.77.0.1; NS_SRV=(ip netns exec "$SRV_NS"); NS_CLI=(ip netns exec "$CLI_NS")
fi

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
cleanup() {
  if [[ -n "$DPID" ]] && kill -0 "$DPID" 2>/dev/null; then
    kill -TERM "$DPID" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$DPID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$DPID" 2>/dev/null || true
  fi
  # Deleting a namespace deletes its end of the veth, and so the pair.
  for ns in $SRV_NS $CLI_NS; do ip netns delete "$ns" 2>/dev/null || true; done
  [[ "${KEEP:-}" == 1 ]] && { log "kept $TMP"; return; }
  rm -rf "$TMP"
}
trap cleanup EXIT

# netns_up builds the DHCP=1 network (see the header).
netns_up() {
  (( EUID == 0 )) || { log "DHCP=1 needs root (network namespaces, veth, DHCP port 68)"; exit 1; }
  (( N <= 32766 )) || { log "DHCP=1: the pool has 32766 addresses, N=$N"; exit 1; }
  ip netns add "$SRV_NS"; ip netns add "$CLI_NS"
  ip link add "$SRV_IF" type veth peer name "$CLI_IF"
  ip link set "$SRV_IF" netns "$SRV_NS"; ip link set "$CLI_IF" netns "$CLI_NS"
  ip -n "$SRV_NS" addr add 10.77.0.1/16 dev "$SRV_IF"; ip -n "$CLI_NS" addr add 10.77.0.2/16 dev "$CLI_IF"
  for ns in "$SRV_NS" "$CLI_NS"; do ip -n "$ns" link set lo up; done
  ip -n "$SRV_NS" link set "$SRV_IF" up; ip -n "$CLI_NS" link set "$CLI_IF" up
  ip -n "$CLI_NS" route add local 10.77.128.0/17 dev lo
  [[ "${DHCP_ONLINK:-0}" == 1 ]] || ip -n "$SRV_NS" route add 10.77.128.0/17 via 10.77.0.2 dev "$SRV_IF"
  log "namespaces $SRV_NS ($SRV_IF 10.77.0.1) and $CLI_NS ($CLI_IF 10.77.0.2), pool 10.77.128.1-10.77.255.254"
}
if [[ "$DHCP" == 1 ]]; then
  netns_up
else
  for p in "$HTTP_PORT" "$ADMIN_PORT" "$SIP_PORT"; do
    if ss -lnt | grep -q ":$p " || ss -lnu | grep -q ":$p "; then log "port $p is in use"; exit 1; fi
  done
fi
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
(( $(ulimit -n) >= 2 * N + 1000 )) || log "fd limit $(ulimit -n) may be short for $N handsets (one UDP socket each, plus HTTP)"

HOTDESKD="${HOTDESKD:-$TMP/hotdeskd}"; HOTDESK_LOAD="${HOTDESK_LOAD:-$TMP/hotdesk-load}"
[[ -x "$HOTDESKD" ]] || (cd "$ROOT" && go build -o "$HOTDESKD" ./cmd/hotdeskd)
[[ -x "$HOTDESK_LOAD" ]] || (cd "$ROOT" && go build -o "$HOTDESK_LOAD" ./cmd/hotdesk-load)

# dhcp_section is the daemon's dhcp: section: off, or (DHCP=1) a server on the
# veth whose option 66 is the provisioning base URL (the daemon's default)
# and whose Polycom vendor class also gets option 160.
dhcp_section() {
  if [[ "$DHCP" != 1 ]]; then printf 'dhcp:\n  mode: "off"\n'; return; fi
  cat <<EOF
dhcp:
  mode: server
  interface: $SRV_IF
  subnet: 10.77.0.0/16
  range: [10.77.128.1, 10.77.255.254]
  router: 10.77.0.1
  lease_time: 1h
  vendor_classes:
    - {match: "Polycom*", options: {160: "http://$ADDR:$HTTP_PORT/"}}
EOF
}
# The config names every listener so nothing lands on a privileged port.
write_config() {
  cat > "$TMP/hotdesk.yaml" <<EOF
data_dir: $TMP/data
log:
  level: warn
admin:
  listen: $ADDR:$ADMIN_PORT
  initial_user: admin
  initial_password: admin-load
  pprof: true
sip:
  listen: ["udp://$ADDR:$SIP_PORT"]
  domain: demo.hotdesk.lan
provisioning:
  http_listen: $ADDR:$HTTP_PORT
  tftp_listen: $ADDR:$TFTP_PORT
$1
$(dhcp_section)
EOF
}
# Auto-enroll and a generous per-source failure budget when the daemon knows those keys.
write_config "  enroll: auto"
if ! "${NS_SRV[@]}" "$HOTDESKD" check-config -c "$TMP/hotdesk.yaml" >"$TMP/check.log" 2>&1; then
  log "daemon does not take provisioning.enroll yet: $(grep -m1 -i enroll "$TMP/check.log" || true)"
  write_config ""
  "${NS_SRV[@]}" "$HOTDESKD" check-config -c "$TMP/hotdesk.yaml" >"$TMP/check.log" 2>&1 || { cat "$TMP/check.log" >&2; exit 1; }
fi

# ip netns exec and env both exec, so $! is hotdeskd itself.
"${NS_SRV[@]}" env ${DAEMON_GOMEMLIMIT:+GOMEMLIMIT="$DAEMON_GOMEMLIMIT"} ${DAEMON_GODEBUG:+GODEBUG="$DAEMON_GODEBUG"} "$HOTDESKD" serve --demo -c "$TMP/hotdesk.yaml" >"$TMP/hotdeskd.log" 2>&1 &
DPID=$!
for _ in $(seq 100); do
  "${NS_SRV[@]}" curl -fs -m 1 "http://$ADDR:$ADMIN_PORT/healthz" >/dev/null 2>&1 && break
  kill -0 "$DPID" 2>/dev/null || { log "hotdeskd exited"; cat "$TMP/hotdeskd.log" >&2; exit 1; }
  sleep 0.1
done
log "vendor mix: $VENDOR"
log "hotdeskd pid $DPID up${DAEMON_GOMEMLIMIT:+ (GOMEMLIMIT=$DAEMON_GOMEMLIMIT)}; rss $(awk '/VmRSS/{print $2, $3}' /proc/$DPID/status)"

# Users for the login share: load1..loadK through the API.
LOGINS=$(awk -v n="$N" -v s="$SHARE" 'BEGIN{printf "%d", n*s + 0.5}')
if (( LOGINS > 0 )); then
  if ! timeout -k 5 300 "${NS_CLI[@]}" "$HOTDESK_LOAD" seed -admin "http://$ADDR:$ADMIN_PORT" -admin-pass admin-load \
      -n "$LOGINS" -user-prefix load -c "${SEED_CONCURRENCY:-8}" -duration-cap 280s >"$TMP/seed.log" 2>&1; then
    log "seeding $LOGINS users failed (is POST /api/v1/users there yet?):"; tail -5 "$TMP/seed.log" >&2
    log "continuing with -login-share 0"; SHARE=0
  else
    log "seeded $LOGINS users: $(grep -m1 create_user "$TMP/seed.log" || true)"
    log "daemon after seeding: rss $(awk '/VmRSS/{print $2, $3}' /proc/$DPID/status), peak $(awk '/VmHWM/{print $2, $3}' /proc/$DPID/status)"
  fi
fi
# The seeding's argon2id hashes (19 MiB each, SEED_CONCURRENCY at once) set a peak of their own: reset the
# kernel's peak RSS (clear_refs 5) so rss_peak below is the storm's.
if echo 5 2>/dev/null >"/proc/$DPID/clear_refs"; then
  log "peak RSS reset before the storm: $(awk '/VmHWM/{print $2, $3}' /proc/$DPID/status)"
else
  log "peak RSS not reset (clear_refs not writable): rss_peak includes the seeding"
fi

if [[ -n "${PROFILE:-}" ]]; then
  mkdir -p "$PROFILE"
  ( sleep "${PROFILE_AT:-3}"; "${NS_SRV[@]}" curl -s -m 5 "http://$ADDR:$ADMIN_PORT/debug/pprof/goroutine?debug=1" >"$PROFILE/goroutines.txt"
    # Mutex and block profiles over the same window (delta profiles): where the daemon waits, not computes.
    # allocs: what the window allocated (delta; pprof -sample_index=alloc_space), the fetch path's garbage.
    for p in mutex block allocs; do
      "${NS_SRV[@]}" curl -s -m 90 "http://$ADDR:$ADMIN_PORT/debug/pprof/$p?seconds=${PROFILE_SECONDS:-5}" >"$PROFILE/$p.pprof" &
    done
    "${NS_SRV[@]}" curl -s -m 90 "http://$ADDR:$ADMIN_PORT/debug/pprof/profile?seconds=${PROFILE_SECONDS:-5}" >"$PROFILE/cpu.pprof"
    # The heap in use at the window's end, without a GC: what the peak is made of.
    "${NS_SRV[@]}" curl -s -m 10 "http://$ADDR:$ADMIN_PORT/debug/pprof/heap" >"$PROFILE/heap-storm.pprof"; wait ) &
  PROF_PID=$!
fi
TIME=(); [[ -x /usr/bin/time ]] && TIME=(/usr/bin/time -f "hotdesk-load: cpu %P of one core, max rss %M kB" -a -o "$TMP/tool.time")
# With DHCP=1 there is no -target: each handset boots from its lease's option 160/66.
STORM_NET=(-target "http://$ADDR:$HTTP_PORT")
[[ "$DHCP" == 1 ]] && STORM_NET=(-dhcp "$CLI_IF")
LOAD_PROF=()  # (a load tool built before -cpuprofile existed runs without it)
[[ -n "${PROFILE:-}" ]] && "$HOTDESK_LOAD" storm -h 2>&1 | grep -q -- -cpuprofile && LOAD_PROF=(-cpuprofile "$PROFILE/load-cpu.pprof")
cpu0=$(awk '{print $14+$15}' "/proc/$DPID/stat")
gc0=$(grep -c '^gc ' "$TMP/hotdeskd.log" || true)  # GC cycles before the storm (DAEMON_GODEBUG=gctrace=1)
t0=$(date +%s.%N)
set +e
timeout -k 5 "$(( ${CAP%s} + 30 ))" "${TIME[@]}" "${NS_CLI[@]}" "$HOTDESK_LOAD" storm -n "$N" \
  "${STORM_NET[@]}" -sip "$ADDR:$SIP_PORT" -admin "http://$ADDR:$ADMIN_PORT" \
  -admin-pass admin-load -login-share "$SHARE" -user-prefix load -concurrency "$CONCURRENCY" -rate "$RATE" -vendor "$VENDOR" \
  -hold "$HOLD" -duration-cap "$CAP" ${DOMAIN:+-domain "$DOMAIN"} -json "$TMP/storm.json" \
  "${LOAD_PROF[@]}" ${STORM_ARGS:-} | tee "$TMP/storm.txt"
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
# The daemon's own account of the check-syncs it sent (logins, logouts).
"${NS_SRV[@]}" curl -s -m 10 "http://$ADDR:$ADMIN_PORT/metrics" |
  grep -E '^hotdesk_(prov_check_sync_total|sip_notify_total|prov_logouts_total)' | sed 's/^/daemon: /' || true
if [[ "$DHCP" == 1 ]]; then
  # The daemon's own account of the DHCP storm, and the server side's neighbour table.
  "${NS_SRV[@]}" curl -s -m 10 "http://$ADDR:$ADMIN_PORT/metrics" |
    grep -E '^hotdesk_dhcp_(packets_total|dropped_total|lease_store_errors_total|leases|options_trimmed_total|offer_latency_seconds_(sum|count))' |
    sed 's/^/daemon: /' || true
  echo "daemon: $(ip -n "$SRV_NS" neigh show | wc -l) neighbour entries in $SRV_NS"
fi
if [[ -n "${PROFILE:-}" ]]; then
  "${NS_SRV[@]}" curl -s -m 10 "http://$ADDR:$ADMIN_PORT/debug/pprof/heap?gc=1" >"$PROFILE/heap.pprof" || true
  "${NS_SRV[@]}" curl -s -m 10 "http://$ADDR:$ADMIN_PORT/debug/pprof/heap?debug=1" | grep -E '^# (HeapAlloc|HeapInuse|HeapIdle|HeapReleased|Sys|NextGC|Stack)' >"$PROFILE/memstats.txt" || true
  echo "daemon after GC: rss $(awk '/VmRSS/{print $2, $3}' /proc/$DPID/status); $(tr '\n' ' ' <"$PROFILE/memstats.txt")"
fi
if grep -q '^error sip_404' "$TMP/storm.txt" && [[ -z "${DOMAIN:-}" ]]; then
  log "sip_404: the rendered reg.1.address has no domain, so a phone uses reg.1.server.1.address as the AOR host"
  log "and the registrar does not serve that host; DOMAIN=demo.hotdesk.lan $0 … works around it"
fi
# Only the profiler: a bare `wait` would wait for the daemon too.
[[ -n "${PROF_PID:-}" ]] && { wait "$PROF_PID" 2>/dev/null || true; }
if grep -q ' level=ERROR' "$TMP/hotdeskd.log"; then
  # sed, not head: head closing the pipe early would make pipefail report 141.
  log "daemon errors (first 5):"; grep ' level=ERROR' "$TMP/hotdeskd.log" | sed -n 1,5p >&2
fi
if [[ "${DAEMON_GODEBUG:-}" == *gctrace=1* ]]; then
  # gctrace lines: "gc N @t s P%: … A->B->C MB, G MB goal, …": A heap at the cycle's start, C live after it.
  GCTRACE_LOG="${GCTRACE_LOG:-${PROFILE:-$TMP}/gctrace.log}"
  grep '^gc ' "$TMP/hotdeskd.log" >"$GCTRACE_LOG" || true
  # The storm's cycles only: the seeding's argon2id hashes make a heap of their own.
  awk -v gc0="${gc0:-0}" 'NR > gc0 {n++; split($11, h, "->"); if (h[1]+0 > m) m = h[1]+0; if (h[2]+0 > m) m = h[2]+0
      if (h[3]+0 > l) l = h[3]+0; if ($13+0 > g) g = $13+0}
    END {printf "daemon gctrace (storm): %d cycles, largest heap %d MB, largest live after a cycle %d MB, largest goal %d MB\n", n, m, l, g}' \
    "$GCTRACE_LOG"
fi
[[ "${KEEP:-}" == 1 ]] && cp "$TMP/storm.json" "${TMPDIR:-/tmp}/storm-last.json" 2>/dev/null || true
exit "$rc"
