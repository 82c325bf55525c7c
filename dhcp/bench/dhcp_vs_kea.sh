#!/usr/bin/env bash
# dhcp_vs_kea.sh — DHCPv4 DORA rate of hotdesk's dhcp package (dhcpbench:
# leases persisted to an append-only file, option 66 set) and of ISC Kea
# (kea-dhcp4, memfile persisted, option 66 set, single-threaded) in the same
# run, both loaded by perfdhcp through one veth pair between two private
# namespaces (server hdd-srv 10.66.0.1/16, clients hdd-cli 10.66.0.2/16).
# perfdhcp acts as a relay (giaddr 10.66.0.2) and unicasts to 10.66.0.1;
# nothing leaves the namespaces. Same method as ../shared/bench/dhcp_bench.sh.
#
# Usage (as root, from anywhere in the repo):
#   dhcp/bench/dhcp_vs_kea.sh [RATE[,RATE...]] [REPS]
#   RATE  target DORA exchanges/s (default 3000,6000,10000); each run initiates
#         max(5000, 10*RATE) exchanges over 5,000 distinct MACs (-R 5000)
#   REPS  repetitions per rate and server, interleaved (default 3)
# Every server starts from an empty lease file. Each perfdhcp run is bounded
# by -n and timeout(1) 60 s. Servers are stopped by PID; namespaces deleted.
# Needs: kea-admin (perfdhcp), kea-dhcp4-server, iproute2, Go.
set -euo pipefail

rates="${1:-3000,6000,10000}"; reps="${2:-3}"
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
RUN_DIR="${RUN_DIR:-/tmp/hotdesk-dhcp-bench}"
mkdir -p "$RUN_DIR"
SRV=hdd-srv CLI=hdd-cli
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

netns_down() { for ns in $SRV $CLI; do ip netns list | grep -qw "$ns" && ip netns delete "$ns"; done; true; }
netns_up() {
  netns_down
  ip netns add $SRV; ip netns add $CLI
  ip link add hdd-s0 type veth peer name hdd-c0
  ip link set hdd-s0 netns $SRV; ip link set hdd-c0 netns $CLI
  ip -n $SRV addr add 10.66.0.1/16 dev hdd-s0; ip -n $CLI addr add 10.66.0.2/16 dev hdd-c0
  for ns in $SRV $CLI; do ip -n $ns link set lo up; done
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

start_server() { # hotdesk|kea
  rm -f "$RUN_DIR"/kea-leases4.csv* "$RUN_DIR/hotdesk-leases.csv"
  if [[ "$1" == kea ]]; then
    KEA_PIDFILE_DIR="$RUN_DIR" KEA_LOCKFILE_DIR="$RUN_DIR" \
      ip netns exec $SRV kea-dhcp4 -c "$RUN_DIR/kea-dhcp4.json" >"$RUN_DIR/kea.out" 2>&1 &
    LEASES="$RUN_DIR/kea-leases4.csv"
  else
    ip netns exec $SRV "$RUN_DIR/dhcpbench" -iface hdd-s0 -server-id 10.66.0.1 -subnet 10.66.0.0/16 \
      -range 10.66.1.0,10.66.255.254 -boot 10.66.0.1 -leases "$RUN_DIR/hotdesk-leases.csv" >"$RUN_DIR/hotdesk.out" 2>&1 &
    LEASES="$RUN_DIR/hotdesk-leases.csv"
  fi
  SPID=$! # ip netns exec execs in place: this is the server's own PID
  for _ in $(seq 50); do ip netns exec $SRV ss -lnu | grep -q ':67 ' && return 0; sleep 0.1; done
  log "$1 did not bind :67"; cat "$RUN_DIR/$1.out" >&2; exit 1
}

# rcvbuf_errors NS: UDP datagrams the kernel dropped for a full socket buffer.
rcvbuf_errors() { ip netns exec "$1" awk '/^Udp:/ { getline; print $6; exit }' /proc/net/snmp; }

cpu_ticks() { sed -E 's/^.*\) //' "/proc/$1/stat" | awk '{print $12+$13}'; }

one_run() { # server rate rep
  local srv="$1" rate="$2" rep="$3" n out t0 t1 c0 c1 el
  n=$(( rate * 10 > 5000 ? rate * 10 : 5000 ))
  out="$RUN_DIR/perfdhcp_${srv}_r${rate}_${rep}.txt"
  start_server "$srv"
  local rs0 rc0; rs0="$(rcvbuf_errors $SRV)"; rc0="$(rcvbuf_errors $CLI)"
  c0="$(cpu_ticks "$SPID")"; t0="$(date +%s.%N)"
  timeout -k 5 60 ip netns exec $CLI perfdhcp -4 -l 10.66.0.2 -r "$rate" -R 5000 -n "$n" -W 1000000 10.66.0.1 >"$out" 2>&1 || true
  t1="$(date +%s.%N)"; c1="$(cpu_ticks "$SPID")"
  sleep 0.2
  local kdrop="srv:$(( $(rcvbuf_errors $SRV) - rs0 ))/cli:$(( $(rcvbuf_errors $CLI) - rc0 ))"
  local lines; lines="$(wc -l < "$LEASES")"
  stop_server
  el="$(awk -v a="$t0" -v b="$t1" 'BEGIN{print b-a}')"
  # 1st stats block = DISCOVER-OFFER, 2nd = REQUEST-ACK; rate = ACKs / (wall - 1 s -W wait).
  awk -v srv="$srv" -v rate="$rate" -v n="$n" -v rep="$rep" -v el="$el" -v lines="$lines" -v kdrop="$kdrop" \
      -v cpu="$(awk -v t=$((c1 - c0)) -v s="$el" -v hz="$(getconf CLK_TCK)" 'BEGIN{printf "%.0f", 100*t/hz/s}')" '
    /Statistics for: DISCOVER-OFFER/ { blk = "do" } /Statistics for: REQUEST-ACK/ { blk = "ra" }
    /^received packets:/ { recv[blk] = $3 }
    END { lost = n - recv["ra"]
          printf "RESULT %s rate=%s rep=%s initiated=%d offers=%d acks=%d lost=%d wall=%.2fs dora_per_s=%.0f server_cpu=%s%% lease_lines=%s rcvbuf_drops=%s\n",
            srv, rate, rep, n, recv["do"], recv["ra"], lost, el, recv["ra"]/(el-1), cpu, lines, kdrop }' "$out"
}

log "building dhcpbench"
(cd "$ROOT" && go build -o "$RUN_DIR/dhcpbench" ./dhcp/bench/cmd/dhcpbench)
kea_conf
netns_up
log "kea: $(kea-dhcp4 -v) perfdhcp: $(dpkg-query -W -f '${Version}' kea-admin) cpus: $(nproc)"
results="$RUN_DIR/results.txt"; : > "$results"
for rate in ${rates//,/ }; do
  for rep in $(seq "$reps"); do
    for srv in hotdesk kea; do
      one_run "$srv" "$rate" "$rep" | tee -a "$results"
      sleep 1
    done
  done
done
echo "SUMMARY (median over reps; clean = runs with 0 lost)"
awk '/^RESULT/ { split($3,r,"="); split($8,l,"="); split($10,d,"=");
       k = $2 " " r[2]; v[k] = v[k] " " d[2]; if (l[2] == 0) clean[k]++; runs[k]++ }
     function med(s,   a, n, i, j, t) { n = split(s, a, " ");
       for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
       return (n % 2) ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
     END { for (k in runs) { split(k, p, " "); if (p[1] != "hotdesk") continue
             h = med(v[k]); kk = med(v["kea " p[2]])
             printf "rate=%s hotdesk=%.0f DORA/s (clean %d/%d) kea=%.0f DORA/s (clean %d/%d) ratio=%.2f\n",
               p[2], h, clean[k], runs[k], kk, clean["kea " p[2]], runs["kea " p[2]], (kk > 0 ? h / kk : 0) } }' "$results" | sort -t= -k2 -n
