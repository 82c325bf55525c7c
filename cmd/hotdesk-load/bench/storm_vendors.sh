#!/usr/bin/env bash
# storm_vendors.sh — the boot storm Polycom-only and with a vendor mix, side by
# side in one run (the machine is shared: only the ratio of two runs made
# together means something), then one table with the ratios.
#
# Usage: storm_vendors.sh [N] [LOGIN_SHARE] [MIX]   (defaults: 2000 0.2 polycom,yealink,cisco)
# Env:   everything storm.sh takes (HOTDESKD, HOTDESK_LOAD, CONCURRENCY, PORT_BASE, …);
#        ROUNDS=1 alternates the two storms ROUNDS times and reports each round.
# Ratio is mix ÷ Polycom-only: ≤ 1.0 for the times and RSS means the mix keeps the figures.
set -euo pipefail
N="${1:-2000}"; SHARE="${2:-0.2}"; MIX="${3:-polycom,yealink,cisco}"; ROUNDS="${ROUNDS:-1}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"; ROOT="$(cd "$HERE/../../.." && pwd)"
OUT="$(mktemp -d /tmp/hotdesk-storm-vendors.XXXXXX)"
trap 'rm -rf "$OUT"' EXIT
# Built once, so both storms run the same binaries.
export HOTDESKD="${HOTDESKD:-$OUT/hotdeskd}" HOTDESK_LOAD="${HOTDESK_LOAD:-$OUT/hotdesk-load}"
[[ -x "$HOTDESKD" ]] || (cd "$ROOT" && go build -o "$HOTDESKD" ./cmd/hotdeskd)
[[ -x "$HOTDESK_LOAD" ]] || (cd "$ROOT" && go build -o "$HOTDESK_LOAD" ./cmd/hotdesk-load)

# fig FILE NAME: a figure of the storm's summary, or the daemon's peak RSS (MB).
fig() {
  case "$2" in
    rss_peak) awk '/^daemon: rss_end/{for(i=1;i<=NF;i++) if($i=="rss_peak"){printf "%.0f", $(i+1)/1024}}' "$1" ;;
    errors) awk '/^errors:/{print $2}' "$1" ;;
    *) awk -v k="$2:" '$1==k{print $2}' "$1" ;;
  esac
}
rc=0
for r in $(seq "$ROUNDS"); do
  for v in polycom "$MIX"; do
    tag=$([[ "$v" == polycom ]] && echo polycom || echo mix)
    echo "== round $r: storm.sh $N $SHARE $v" >&2
    bash "$HERE/storm.sh" "$N" "$SHARE" "$v" >"$OUT/$tag.$r.txt" || rc=1
    grep -E '^(all_|devices_registered|user_lines_registered|errors|daemon: rss)' "$OUT/$tag.$r.txt" >&2 || true
  done
  printf '\nround %s: storm.sh %s %s, Polycom-only vs %s\n' "$r" "$N" "$SHARE" "$MIX"
  printf '%-28s %12s %12s %8s\n' figure polycom mix ratio
  for k in all_devices_registered all_users_registered devices_registered user_lines_registered errors rss_peak; do
    a=$(fig "$OUT/polycom.$r.txt" "$k"); b=$(fig "$OUT/mix.$r.txt" "$k")
    printf '%-28s %12s %12s %8s\n' "$k$([[ $k == rss_peak ]] && echo ' (MB)' || ([[ $k == all_* ]] && echo ' (s)'))" "${a:--}" "${b:--}" \
      "$(awk -v a="${a:-0}" -v b="${b:-0}" 'BEGIN{if (a > 0) printf "%.2f", b/a; else print "-"}')"
  done
  for tag in polycom mix; do
    grep '^error ' "$OUT/$tag.$r.txt" | sed "s/^/$tag: /" || true
  done
done
exit "$rc"
