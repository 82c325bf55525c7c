#!/usr/bin/env bash
# dhcp_vs_peers.sh — DHCPv4 DORA rate of hotdesk's dhcp package (dhcpbench:
# leases persisted to an append-only file, option 66 set) and of its peers in
# the same run, interleaved: ISC Kea (kea-dhcp4, memfile persisted, option 66
# set, single-threaded) and dnsmasq (lease file, option 66 set, --no-ping,
# DHCP only). All are loaded by perfdhcp through one veth pair between two
# private namespaces (server hdd-srv 10.66.0.1/16, clients hdd-cli
# 10.66.0.2/16). perfdhcp acts as a relay (giaddr 10.66.0.2) and unicasts to
# 10.66.0.1; nothing leaves the namespaces. Same method and server flags as
# /work/shared/bench/dhcp_bench.sh (see its RESULTS.md).
#
# Usage (as root, from anywhere in the repo):
#   [PEERS="kea dnsmasq"] dhcp/bench/dhcp_vs_peers.sh [RATE[,RATE...]] [REPS]
#   PEERS  peers to compare hotdesk with: kea, dnsmasq, base (default kea dnsmasq);
#          base is another dhcpbench binary, $BASE_DHCPBENCH (e.g. built from
#          main), run alternately with this tree's for a before/after ratio
#   PROFILE_DIR  write a CPU profile of every hotdesk/base run there, and an
#          allocation profile of hotdesk's: <server>_r<rate>_<rep>.{cpu,mem}.pprof
#   HOTDESK_ARGS, BASE_ARGS  extra flags of this tree's dhcpbench and of base's, e.g. "-fsync" (dnsmasq fsyncs its
#          lease file after every change; Kea's memfile and dhcpbench do not)
#   RATE   target DORA exchanges/s (default 3000,6000,10000); each run initiates
#          max(5000, 10*RATE) exchanges over 5,000 distinct MACs (-R 5000)
#   REPS   repetitions per rate and server (default 3); within a rate the
#          servers take turns, and the order rotates by one every repetition
# Prints one RESULT line per run, then per rate and peer one RATIO line:
# hotdesk/peer of the medians of achieved DORA/s, lost exchanges, server
# CPU (% of one core) and server CPU per DORA (µs; the goal is <= 1.0: it
# stays comparable when one server lost exchanges and so did less work).
# Every server starts from an empty lease file. Each perfdhcp run is bounded
# by -n and timeout(1) 60 s. Servers are stopped by PID; the namespaces are deleted on exit. Raw output: $RUN_DIR (default
# /tmp/hotdesk-dhcp-bench).
# Needs: Go, and from Debian (installed with apt-get when missing, without
# starting their services): iproute2, kea-admin (perfdhcp), kea-dhcp4-server,
# dnsmasq-base.
set -euo pipefail

rates="${1:-3000,6000,10000}"; reps="${2:-3}"
PEERS="${PEERS:-kea dnsmasq}"
read -r -a hotdesk_args <<< "${HOTDESK_ARGS:-}"
read -r -a base_args <<< "${BASE_ARGS:-}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUN_DIR="${RUN_DIR:-/tmp/hotdesk-dhcp-bench}"
SRV=hdd-srv CLI=hdd-cli
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

[[ "$rates" =~ ^[0-9]+(,[0-9]+)*$ && "$reps" =~ ^[1-9][0-9]*$ ]] || { echo "usage: $0 [RATE[,RATE...]] [REPS]" >&2; exit 2; }
for p in $PEERS; do
  [[ "$p" == kea || "$p" == dnsmasq || "$p" == base ]] || { echo "PEERS: unknown peer '$p' (kea, dnsmasq, base)" >&2; exit 2; }
done
[[ " $PEERS " != *" base "* || -x "${BASE_DHCPBENCH:-}" ]] || { echo "PEERS=base needs BASE_DHCPBENCH, a dhcpbench binary" >&2; exit 2; }
[[ -z "${PROFILE_DIR:-}" ]] || mkdir -p "$PROFILE_DIR"
[[ -n "${PEERS// /}" ]] || { echo "PEERS is empty" >&2; exit 2; }
[[ $EUID -eq 0 ]] || { echo "$0: run as root (namespaces, port 67)" >&2; exit 1; }
command -v go >/dev/null || { echo "$0: needs Go (see go.mod) to build dhcpbench" >&2; exit 1; }
mkdir -p "$RUN_DIR"

# Debian packages: install the missing ones without starting their services.
need=(iproute2 kea-admin)
[[ " $PEERS " == *" kea "* ]] && need+=(kea-dhcp4-server)
[[ " $PEERS " == *" dnsmasq "* ]] && need+=(dnsmasq-base)
# shellcheck source=../../cmd/hotdesk-load/bench/peers.sh
source "$ROOT/cmd/hotdesk-load/bench/peers.sh"
install_peers "${need[@]}"
for cmd in ip perfdhcp; do command -v "$cmd" >/dev/null || { echo "$0: $cmd not found" >&2; exit 1; }; done

netns_down() { for ns in $SRV $CLI; do ip netns list | grep -qw "$ns" && ip netns delete "$ns"; done; true; }
netns_up() {
  netns_down
  ip netns add $SRV; ip netns add $CLI
  ip link add hdd-s0 type veth peer name hdd-c0
  ip link set hdd-s0 netns $SRV; ip link set hdd-c0 netns $CLI
  ip -n $SRV addr add 10.66.0.1/16 dev hdd-s0; ip -n $CLI addr add 10.66.0.2/16 dev hdd-c0
  for ns in $SRV $CLI; do ip -n "$ns" link set lo up; done
  ip -n $SRV link set hdd-s0 up; ip -n $CLI link set hdd-c0 up
}

SPID=""
stop_server() {
  [[ -n "$SPID" ]] || return 0
  kill -TERM "$SPID" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$SPID" 2>/dev/null || true
  wait "$SPID" 2>/dev/null || true
  SPID=""
}
trap 'stop_server; netns_down' EXIT
trap 'exit 130' INT TERM

kea_conf() {
  cat > "$RUN_DIR/kea-dhcp4.json" <<EOF
{ "Dhcp4": {
    "interfaces-config": { "interfaces": [ "hdd-s0" ], "dhcp-socket-type": "udp" },
    "lease-database": { "type": "memfile", "persist": true, "name": "$RUN_DIR/kea-leases4.csv", "lfc-interval": 0 },
    "multi-threading": { "enable-multi-threading": false },
    "valid-lifetime": 3600, "renew-timer": 1800, "rebind-timer": 3150,
    "option-data": [ { "name": "tftp-server-name", "data": "10.66.0.1" } ],
    "subnet4": [ { "id": 1, "subnet": "10.66.0.0/16", "pools": [ { "pool": "10.66.1.0 - 10.66.255.254" } ] } ],
    "loggers": [ { "name": "kea-dhcp4", "severity": "WARN", "output_options": [ { "output": "$RUN_DIR/kea-dhcp4.log" } ] } ]
} }
EOF
}

LEASES="" PROF=""
start_server() { # hotdesk|base|kea|dnsmasq
  rm -f "$RUN_DIR"/kea-leases4.csv* "$RUN_DIR/hotdesk-leases.csv" "$RUN_DIR"/dnsmasq.{leases,log}
  case "$1" in
    kea)
      KEA_PIDFILE_DIR="$RUN_DIR" KEA_LOCKFILE_DIR="$RUN_DIR" \
        ip netns exec $SRV kea-dhcp4 -c "$RUN_DIR/kea-dhcp4.json" >"$RUN_DIR/kea.out" 2>&1 &
      LEASES="$RUN_DIR/kea-leases4.csv" ;;
    dnsmasq) # DHCP only (port=0: no DNS); lease-max raised from its default of 1000.
      ip netns exec $SRV dnsmasq --keep-in-foreground --conf-file=/dev/null --port=0 \
        --bind-interfaces --interface=hdd-s0 --except-interface=lo \
        --dhcp-range=10.66.1.0,10.66.255.254,255.255.0.0,1h --dhcp-option=66,"10.66.0.1" \
        --dhcp-lease-max=100000 --dhcp-leasefile="$RUN_DIR/dnsmasq.leases" --no-ping \
        --pid-file="$RUN_DIR/dnsmasq.pid" --log-facility="$RUN_DIR/dnsmasq.log" >"$RUN_DIR/dnsmasq.out" 2>&1 &
      LEASES="$RUN_DIR/dnsmasq.leases" ;;
    hotdesk|base)
      local bin="$RUN_DIR/dhcpbench" prof=()
      local args=("${hotdesk_args[@]}")
      [[ "$1" == base ]] && bin="$BASE_DHCPBENCH" args=("${base_args[@]}")
      [[ -z "${PROFILE_DIR:-}" ]] || prof=(-cpuprofile "$PROFILE_DIR/$PROF.cpu.pprof")
      # A base built before -memprofile existed has only -cpuprofile.
      [[ -z "${PROFILE_DIR:-}" || "$1" == base ]] || prof+=(-memprofile "$PROFILE_DIR/$PROF.mem.pprof")
      ip netns exec $SRV "$bin" "${prof[@]}" -iface hdd-s0 -server-id 10.66.0.1 -subnet 10.66.0.0/16 \
        -range 10.66.1.0,10.66.255.254 -boot 10.66.0.1 -leases "$RUN_DIR/hotdesk-leases.csv" "${args[@]}" >"$RUN_DIR/$1.out" 2>&1 &
      LEASES="$RUN_DIR/hotdesk-leases.csv" ;;
  esac
  SPID=$! # ip netns exec execs in place: this is the server's own PID
  for _ in $(seq 50); do ip netns exec $SRV ss -lnu | grep -q ':67 ' && return 0; sleep 0.1; done
  log "$1 did not bind :67"; cat "$RUN_DIR/$1.out" >&2; exit 1
}

# rcvbuf_errors NS: UDP datagrams the kernel dropped for a full socket buffer.
rcvbuf_errors() { ip netns exec "$1" cat /proc/net/snmp | awk '/^Udp:/ { getline; print $6 }'; }

# cpu_ticks PID: utime+stime+cutime+cstime of the server.
cpu_ticks() { sed -E 's/^.*\) //' "/proc/$1/stat" | awk '{print $12+$13+$14+$15}'; }

one_run() { # server rate rep
  local srv="$1" rate="$2" rep="$3" n out tfile t0 t1 c0 c1 el rs0 rc0 kdrop lines bytes load1
  n=$(( rate * 10 > 5000 ? rate * 10 : 5000 ))
  out="$RUN_DIR/perfdhcp_${srv}_r${rate}_${rep}.txt"; tfile="$RUN_DIR/time_${srv}_r${rate}_${rep}.txt"
  PROF="${srv}_r${rate}_${rep}"; start_server "$srv"
  rs0="$(rcvbuf_errors $SRV)"; rc0="$(rcvbuf_errors $CLI)"; load1="$(cut -d' ' -f1 /proc/loadavg)"
  c0="$(cpu_ticks "$SPID")"; t0="$(date +%s.%N)"
  # -W 1 s: wait for late replies after the last request before reporting.
  { TIMEFORMAT='%U %S'; time timeout -k 5 60 ip netns exec $CLI \
      perfdhcp -4 -l 10.66.0.2 -r "$rate" -R 5000 -n "$n" -W 1000000 10.66.0.1 >"$out" 2>&1 || true; } 2>"$tfile"
  t1="$(date +%s.%N)"; c1="$(cpu_ticks "$SPID")"
  sleep 0.2
  kdrop="srv:$(( $(rcvbuf_errors $SRV) - rs0 ))/cli:$(( $(rcvbuf_errors $CLI) - rc0 ))"
  stop_server # dnsmasq rewrites its lease file as it goes; measure what is on disk at the end
  lines="$(wc -l < "$LEASES")"; bytes="$(wc -c < "$LEASES")"
  el="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')"
  # 1st stats block = DISCOVER-OFFER, 2nd = REQUEST-ACK; perfdhcp's "Rate:"
  # includes the 1 s -W wait, so the achieved rate is ACKs / (wall - 1 s).
  awk -v srv="$srv" -v rate="$rate" -v n="$n" -v rep="$rep" -v el="$el" -v lines="$lines" -v bytes="$bytes" \
      -v kdrop="$kdrop" -v load1="$load1" -v tool="$(awk -v s="$el" '{printf "%.0f", 100*($1+$2)/s}' "$tfile")" \
      -v cpu="$(awk -v t=$((c1 - c0)) -v s="$el" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.0f", 100*t/hz/s}')" \
      -v cpus="$(awk -v t=$((c1 - c0)) -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.3f", t/hz}')" '
    /Statistics for: DISCOVER-OFFER/ { blk = "do" } /Statistics for: REQUEST-ACK/ { blk = "ra" }
    /^received packets:/ { recv[blk] = $3 }
    END { lost = n - recv["ra"]
          printf "RESULT %s rate=%s rep=%s initiated=%d offers=%d acks=%d lost=%d wall=%.2fs dora_per_s=%.0f server_cpu=%s%% cpu_us_per_dora=%.0f perfdhcp_cpu=%s%% lease_lines=%s lease_bytes=%s rcvbuf_drops=%s load1=%s\n",
            srv, rate, rep, n, recv["do"], recv["ra"], lost, el, recv["ra"]/(el-1), cpu, (recv["ra"] > 0 ? 1e6*cpus/recv["ra"] : 0), tool, lines, bytes, kdrop, load1 }' "$out" |
    tee -a "$results"
}

log "building dhcpbench"
(cd "$ROOT" && go build -o "$RUN_DIR/dhcpbench" ./dhcp/bench/cmd/dhcpbench)
[[ " $PEERS " == *" kea "* ]] && kea_conf
netns_up
vers="perfdhcp $(dpkg-query -W -f '${Version}' kea-admin)"
[[ " $PEERS " == *" kea "* ]] && vers+=", kea-dhcp4 $(kea-dhcp4 -v)"
[[ " $PEERS " == *" dnsmasq "* ]] && vers+=", dnsmasq $(dpkg-query -W -f '${Version}' dnsmasq-base)"
log "$vers; go $(go env GOVERSION); dhcpbench ${HOTDESK_ARGS:-(defaults)}; cpus $(nproc); loadavg $(cut -d' ' -f1-3 /proc/loadavg)"
results="$RUN_DIR/results.txt"; : > "$results"
read -r -a servers <<< "hotdesk $PEERS"
for rate in ${rates//,/ }; do
  for rep in $(seq "$reps"); do
    for i in "${!servers[@]}"; do
      srv="${servers[$(( (i + rep - 1) % ${#servers[@]} ))]}"
      one_run "$srv" "$rate" "$rep" # in this shell, so the EXIT trap sees SPID
      sleep 1
    done
  done
done
log "loadavg at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

echo "SUMMARY (median over reps; clean = runs with 0 lost; ratio = hotdesk/peer)"
awk -v peers="$PEERS" '
  /^RESULT/ { s = $2; for (i = 3; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] + 0 }
              k = s SUBSEP f["rate"]; runs[k]++; if (f["lost"] == 0) clean[k]++
              d[k] = d[k] " " f["dora_per_s"]; l[k] = l[k] " " f["lost"]; c[k] = c[k] " " f["server_cpu"]
              u[k] = u[k] " " f["cpu_us_per_dora"]
              if (!(f["rate"] in seen)) { seen[f["rate"]] = 1; order[++nr] = f["rate"] } }
  function med(s,   a, n, i, j, t) { n = split(s, a, " ")
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
  function ratio(a, b) { return (b > 0) ? sprintf("%.2f", a / b) : "n/a" }
  END { np = split(peers, p, " ")
    for (r = 1; r <= nr; r++) { rate = order[r]; h = "hotdesk" SUBSEP rate
      hd = med(d[h]); hl = med(l[h]); hc = med(c[h]); hu = med(u[h])
      for (j = 1; j <= np; j++) { k = p[j] SUBSEP rate
        pd = med(d[k]); pl = med(l[k]); pc = med(c[k]); pu = med(u[k])
        printf "RATIO rate=%s hotdesk/%s dora_per_s=%.0f/%.0f=%s lost=%.0f/%.0f=%s server_cpu=%.0f%%/%.0f%%=%s cpu_us_per_dora=%.0f/%.0f=%s clean=%d/%d,%d/%d\n",
          rate, p[j], hd, pd, ratio(hd, pd), hl, pl, ratio(hl, pl), hc, pc, ratio(hc, pc), hu, pu, ratio(hu, pu),
          clean[h], runs[h], clean[k], runs[k] } } }' "$results"
