#!/usr/bin/env bash
# bench_all.sh — `make bench`: runs hotdesk's side-by-side benchmark scripts
# one after another (never in parallel: they share the 2 cores) and prints one
# summary table of what each printed. A script whose peer is not installed is
# skipped with a line saying which package is missing: nothing is installed
# here (run a script alone as root to install its peers). A skipped or failed
# benchmark is reported as such, never as passing; make test does not run this.
#
# Usage: cmd/hotdesk-load/bench/bench_all.sh [NAME...]   (default: all)
#   NAMEs: tftp http http-devices register register-daemon calls dhcp storm
#   (storm has no peer: it prints the boot storm's goals, 10,000 handsets)
#   BENCH_OUT=dir  raw output of each script (default /tmp/hotdesk-bench-all)
# Needs root for the SIP, DHCP (namespaces) and TFTP (port 69) scripts.
set -uo pipefail
REPO="$(cd "$(dirname "$0")/../../.." && pwd)"
OUT="${BENCH_OUT:-/tmp/hotdesk-bench-all}"
mkdir -p "$OUT"
export HOTDESK_BENCH_NO_INSTALL=1

# name | script and arguments | grep -E pattern of its summary lines
BENCHES=(
  "tftp|tftp/bench/tftp_vs_dnsmasq.sh|^median over"
  "http|prov/provhttp/bench/http_vs_nginx.sh|^rep="
  "http-devices|prov/provhttp/bench/http_devices_vs_nginx.sh|^devices_rep="
  "register|sip/bench/register_vs_kamailio.sh|^ratio_"
  "register-daemon|sip/bench/register_daemon_vs_kamailio.sh|^ratio_daemon"
  "calls|sip/bench/calls_vs_kamailio.sh|^(sustained|CPU per call|hotdesk RSS|burst)"
  "dhcp|dhcp/bench/dhcp_vs_peers.sh 3000,6000 3|^RATIO"
  "storm|cmd/hotdesk-load/bench/storm.sh 10000 0.2|^(all_devices_registered|all_users_registered|errors|daemon: rss_end|login_api )"
)
want=("$@")
rows=()
for b in "${BENCHES[@]}"; do
  IFS='|' read -r name cmd pat <<<"$b"
  if (( ${#want[@]} )) && [[ " ${want[*]} " != *" $name "* ]]; then continue; fi
  echo "== $name: $cmd" >&2
  # shellcheck disable=SC2086 # cmd carries its arguments
  (cd "$REPO" && bash $cmd) >"$OUT/$name.log" 2>&1
  rc=$?
  if (( rc == 3 )) && grep -q '^SKIP' "$OUT/$name.log"; then
    rows+=("$name|SKIPPED|$(grep -m1 '^SKIP' "$OUT/$name.log" | sed 's/^SKIP: //')")
  elif (( rc != 0 )); then
    rows+=("$name|FAILED (exit $rc)|see $OUT/$name.log: $(tail -1 "$OUT/$name.log")")
  else
    summary="$(grep -E "$pat" "$OUT/$name.log" | paste -sd';' -)"
    rows+=("$name|ran|${summary:-no summary line; see $OUT/$name.log}")
  fi
done

echo
echo "| benchmark | status | summary (hotdesk vs peer, same run) |"
echo "|---|---|---|"
for r in "${rows[@]}"; do
  IFS='|' read -r n st sm <<<"$r"
  echo "| $n | $st | ${sm//;/ <br> } |"
done
ran=0; for r in "${rows[@]}"; do [[ "$r" == *"|ran|"* ]] && ran=$((ran + 1)); done
echo
echo "$ran of ${#rows[@]} benchmarks ran; skipped or failed ones measured nothing (raw output: $OUT)"
