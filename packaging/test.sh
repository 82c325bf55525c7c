#!/usr/bin/env bash
# packaging/test.sh — checks the packaging end to end:
#   1. the unit: systemd-analyze verify (clean) and security (OK or better);
#   2. alerts.yml (promtool check rules), the dashboard JSON, and that every
#      hotdesk_* metric they use exists in the Go sources;
#   3. builds hotdeskd and the .deb with nfpm v2.45.2, checks dpkg-deb -I/-c
#      (and lintian when installed);
#   4. installs the .deb into a throw-away root (dpkg --root,
#      --force-script-chrootless: the maintainer scripts run with DPKG_ROOT),
#      checks user, directories, permissions, enablement, then runs the
#      installed `hotdeskd check-config` on the installed default config
#      and checks hotdesk.yaml documents every key the daemon knows;
#   5. conffile kept on reinstall; purge removes the user but keeps
#      /var/lib/hotdesk, HOTDESK_PURGE_DATA=1 purge removes it.
# Needs (Debian): systemd, dpkg, passwd, init-system-helpers, prometheus
# (promtool), go; lintian optional. Run as root (dpkg --root, chown) from
# anywhere: `packaging/test.sh` (HOTDESKD_BIN=bin/hotdeskd to package a binary
# built already; VERSION=… to set the version). Touches nothing outside its
# temp directory.
set -euo pipefail

HERE="$(cd "$(dirname "$0")" && pwd)"
REPO="$(cd "$HERE/.." && pwd)"
NFPM="github.com/goreleaser/nfpm/v2/cmd/nfpm@v2.45.2"
WORK="$(mktemp -d /tmp/hotdesk-pkgtest.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
fails=0
log() { printf '[packaging] %s\n' "$*" >&2; }
ok() { printf 'ok   %s\n' "$*"; }
fail() { printf 'FAIL %s\n' "$*"; fails=$((fails + 1)); }
check() { local what="$1"; shift; if "$@"; then ok "$what"; else fail "$what"; fi; }

for tool in systemd-analyze dpkg dpkg-deb go promtool useradd deb-systemd-helper; do
  command -v "$tool" >/dev/null || { log "missing $tool"; exit 2; }
done
[[ "$(id -u)" == 0 ]] || { log "run as root (dpkg --root and chown need it)"; exit 2; }

# Debian versions must start with a digit: tag v1.2.3 -> 1.2.3, tag
# v1.2.3-4-gabc -> 1.2.3+4+gabc, no tag -> 0.0.0~git<hash>.
if [[ -z "${VERSION:-}" ]]; then
  if VERSION="$(git -C "$REPO" describe --tags --dirty 2>/dev/null)"; then :
  else VERSION="0.0.0~git$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo dev)"; fi
fi
case "$VERSION" in [0-9]*) ;; v[0-9]*) VERSION="${VERSION#v}" ;; *) VERSION="0.0.0~$VERSION" ;; esac
VERSION="${VERSION//-/+}"
DEB_ARCH="$(dpkg --print-architecture)"
DEB_MAINTAINER="${DEB_MAINTAINER:-hotdesk maintainers <hotdesk@example.org>}"
export VERSION DEB_ARCH DEB_MAINTAINER

# ---------------------------------------------------------------- 1. binary
BIN="$WORK/hotdeskd"; STUB=0
if [[ -n "${HOTDESKD_BIN:-}" ]]; then
  cp "$HOTDESKD_BIN" "$BIN"   # a binary built already, e.g. make's bin/hotdeskd
elif ! (cd "$REPO" && CGO_ENABLED=0 go build -trimpath -ldflags "-X main.version=$VERSION" -o "$BIN" ./cmd/hotdeskd) 2>"$WORK/build.log"; then
  log "STUB: ./cmd/hotdeskd does not build (below); packaging is tested with a stub binary"
  sed 's/^/    /' "$WORK/build.log" >&2
  STUB=1
  mkdir -p "$WORK/stub"
  cat > "$WORK/stub/main.go" <<'GO'
package main

import (
	"fmt"
	"os"
)

// A stand-in for hotdeskd: check-config -c FILE succeeds when FILE is readable.
func main() {
	if len(os.Args) == 4 && os.Args[1] == "check-config" && os.Args[2] == "-c" {
		if _, err := os.ReadFile(os.Args[3]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Printf("# %s: OK (stub)\n", os.Args[3])
		return
	}
	fmt.Println("hotdeskd stub")
}
GO
  (cd "$WORK/stub" && printf 'module stub\ngo 1.26\n' > go.mod && CGO_ENABLED=0 go build -o "$BIN" .)
fi

# ------------------------------------------------------------------ 2. unit
sed "s#/usr/bin/hotdeskd#$BIN#" "$HERE/hotdeskd.service" > "$WORK/hotdeskd.service"
out="$(cd "$WORK" && systemd-analyze verify --man=no ./hotdeskd.service 2>&1)" || true
check "systemd-analyze verify is clean${out:+: $out}" test -z "$out"
sec="$(systemd-analyze security --offline=yes --threshold=49 "$HERE/hotdeskd.service" 2>&1)" && rc=0 || rc=$?
score="$(grep -o 'Overall exposure level.*' <<<"$sec" || true)"
check "systemd-analyze security OK or better (${score:-no score})" test "$rc" = 0
for want in 'Type=notify' 'WatchdogSec=30s' 'Restart=on-failure' 'User=hotdesk' 'DynamicUser=no' \
            'StateDirectory=hotdesk' 'ConfigurationDirectory=hotdesk' 'NoNewPrivileges=yes' \
            'ProtectSystem=strict' 'ExecStart=/usr/bin/hotdeskd serve -c /etc/hotdesk/hotdesk.yaml'; do
  check "unit has $want" grep -qxF "$want" "$HERE/hotdeskd.service"
done

# ------------------------------------------------ 3. alerts and dashboard
check "promtool check rules alerts.yml" promtool check rules "$HERE/prometheus/alerts.yml"
if command -v python3 >/dev/null; then
  check "grafana/hotdesk.json is valid JSON" python3 -m json.tool "$HERE/grafana/hotdesk.json" /dev/null
else
  log "SKIPPED: python3 missing, dashboard JSON not parsed"
fi
for m in $(grep -ohE 'hotdesk_[a-z0-9_]+' "$HERE/prometheus/alerts.yml" "$HERE/grafana/hotdesk.json" | sed -E 's/_(bucket|sum|count)$//' | sort -u); do
  grep -rqF "\"$m\"" --include='*.go' "$REPO" || fail "metric $m (alerts/dashboard) is not defined in any Go source"
done
ok "every hotdesk_* metric in alerts and dashboard is defined in the sources"

# --------------------------------------------------------------- 4. .deb
DEB="$WORK/dist/hotdesk_${VERSION}_${DEB_ARCH}.deb"
mkdir -p "$WORK/dist"
(cd "$REPO" && HOTDESK_BIN="$BIN" go run "$NFPM" pkg --config packaging/nfpm.yaml --packager deb --target "$DEB") >"$WORK/nfpm.log" 2>&1 \
  || { cat "$WORK/nfpm.log" >&2; fail "nfpm pkg"; exit 1; }
ok "nfpm built $(basename "$DEB")"
info="$(dpkg-deb -I "$DEB")"; list="$(dpkg-deb -c "$DEB")"
check "control: Package hotdesk" grep -q '^ Package: hotdesk$' <<<"$info"
check "control: Version $VERSION" grep -qF " Version: $VERSION" <<<"$info"
check "control: Architecture $DEB_ARCH" grep -q "^ Architecture: $DEB_ARCH\$" <<<"$info"
check "conffiles: /etc/hotdesk/hotdesk.yaml" bash -c 'dpkg-deb --ctrl-tarfile "$1" | tar -xO ./conffiles | grep -qx /etc/hotdesk/hotdesk.yaml' _ "$DEB"
for s in postinst prerm postrm; do
  check "maintainer script $s present" bash -c 'dpkg-deb --ctrl-tarfile "$1" | tar -t | grep -qx "./$2"' _ "$DEB" "$s"
done
check "contents: /usr/bin/hotdeskd 0755" grep -qE '^-rwxr-xr-x .* \./usr/bin/hotdeskd$' <<<"$list"
check "contents: unit" grep -qE ' \./lib/systemd/system/hotdeskd\.service$' <<<"$list"
check "contents: /etc/hotdesk/hotdesk.yaml" grep -qE '^-rw-r--r-- .* \./etc/hotdesk/hotdesk\.yaml$' <<<"$list"
check "contents: copyright" grep -qE ' \./usr/share/doc/hotdesk/copyright$' <<<"$list"
check "contents: sysctl.d neighbour table sizes" grep -qE '^-rw-r--r-- .* \./usr/lib/sysctl\.d/60-hotdesk\.conf$' <<<"$list"
if command -v sysctl >/dev/null; then
  # The file must parse as sysctl settings this kernel knows.
  check "sysctl.d file names known keys" bash -c 'while read -r k _ v; do [[ -z "$k" || "$k" == \#* ]] && continue; sysctl -n "$k" >/dev/null || exit 1; done <"$1"' _ "$HERE/sysctl/60-hotdesk.conf"
fi
if command -v lintian >/dev/null; then
  # Tags a repository-built (non-Debian-archive) package cannot avoid.
  lint="$(lintian --tag-display-limit 0 --suppress-tags no-changelog,no-manual-page,statically-linked-binary,extended-description-is-probably-too-short,maintainer-script-calls-systemctl,initial-upload-closes-no-bugs,unstripped-binary-or-object,copyright-without-copyright-notice,embedded-library,description-starts-with-package-name "$DEB" 2>&1 | grep -E '^[EWIPXN]: ' || true)"
  [[ -n "$lint" ]] && printf '%s\n' "$lint" | sed 's/^/    lintian: /'
  check "lintian reports no errors" bash -c '! grep -q "^E:" <<<"$1"' _ "$lint"
else
  log "SKIPPED: lintian not installed"
fi

# ------------------------------------------------- 5. install into a root
ROOT="$WORK/root"
mkdir -p "$ROOT/var/lib/dpkg/updates" "$ROOT/var/lib/dpkg/info" "$ROOT/etc" "$ROOT/usr/sbin"
: > "$ROOT/var/lib/dpkg/status"
printf 'root:x:0:0:root:/root:/bin/bash\n' > "$ROOT/etc/passwd"
printf 'root:x:0:\n' > "$ROOT/etc/group"
printf 'root:*:19000:0:99999:7:::\n' > "$ROOT/etc/shadow"
printf 'root:*::\n' > "$ROOT/etc/gshadow"
chmod 640 "$ROOT/etc/shadow" "$ROOT/etc/gshadow"
cp /etc/login.defs "$ROOT/etc/login.defs"
host_passwd="$(sha256sum /etc/passwd /etc/group)"
dpkg_root() { dpkg --root="$ROOT" --force-script-chrootless --force-depends --log=/dev/null "$@"; }

dpkg_root -i "$DEB" >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log" >&2; fail "dpkg --root -i"; exit 1; }
ok "dpkg --root -i ran the maintainer scripts"
check "package installed in the root" bash -c 'dpkg --root="$1" -s hotdesk | grep -q "^Status: install ok installed"' _ "$ROOT"
check "host /etc/passwd and /etc/group untouched" bash -c '[[ "$(sha256sum /etc/passwd /etc/group)" == "$1" ]]' _ "$host_passwd"
uid="$(awk -F: '$1=="hotdesk"{print $3}' "$ROOT/etc/passwd")"
gid="$(awk -F: '$1=="hotdesk"{print $3}' "$ROOT/etc/group")"
check "system user hotdesk created (uid ${uid:-none} < 1000, nologin)" \
  bash -c '[[ -n "$1" && "$1" -lt 1000 ]] && grep -q "^hotdesk:.*:/var/lib/hotdesk:/usr/sbin/nologin$" "$2/etc/passwd"' _ "$uid" "$ROOT"
check "/var/lib/hotdesk hotdesk:hotdesk 0700" test "$(stat -c '%u:%g %a' "$ROOT/var/lib/hotdesk")" = "$uid:$gid 700"
check "/etc/hotdesk root:hotdesk 0750" test "$(stat -c '%u:%g %a' "$ROOT/etc/hotdesk")" = "0:$gid 750"
check "hotdesk.yaml root:hotdesk 0640" test "$(stat -c '%u:%g %a' "$ROOT/etc/hotdesk/hotdesk.yaml")" = "0:$gid 640"
check "unit enabled (multi-user.target.wants)" test -L "$ROOT/etc/systemd/system/multi-user.target.wants/hotdeskd.service"
check "default config says dhcp.mode off" grep -qE '^  mode: "?off"?' "$ROOT/etc/hotdesk/hotdesk.yaml"
if out="$("$ROOT/usr/bin/hotdeskd" check-config -c "$ROOT/etc/hotdesk/hotdesk.yaml" 2>&1)"; then
  ok "installed hotdeskd check-config accepts the installed default config$([[ $STUB == 1 ]] && echo ' (STUB binary)')"
else
  fail "installed hotdeskd check-config: $out"
fi

# Every key the daemon knows (its effective config for an empty file) is
# written out and commented in the shipped hotdesk.yaml.
keys() { # flatten a YAML mapping's keys to dotted paths (lists are leaves)
  awk '/^[[:space:]]*(#|$)/ {next} /^[[:space:]]*- / {next}
       { match($0, /^ */); ind = RLENGTH; key = $1; sub(/:.*/, "", key)
         while (n > 0 && ind <= lvl[n]) n--
         n++; lvl[n] = ind; name[n] = key; path = name[1]
         for (i = 2; i <= n; i++) path = path "." name[i]
         print path }' "$1" | sort -u
}
if [[ $STUB == 0 ]]; then
  "$ROOT/usr/bin/hotdeskd" check-config -c /dev/null | grep -v '^#' > "$WORK/defaults.yaml"
  missing="$(comm -23 <(keys "$WORK/defaults.yaml") <(keys "$HERE/hotdesk.yaml") | tr '\n' ' ')"
  check "hotdesk.yaml lists every key the daemon knows${missing:+ (missing: $missing)}" test -z "$missing"
  # A key is documented by the comment block it follows; keys of one block
  # (up to a blank line or a section header) share it.
  undocumented="$(awk '/^[[:space:]]*#/ {c=1; next} /^[[:space:]]*- / {next} /^[[:space:]]*$/ {c=0; next}
      /^[a-z_]+:[[:space:]]*$/ {c=0; next}
      /^ *[a-z_]+:/ { if (!c) print NR": "$0 }' "$HERE/hotdesk.yaml")"
  check "every key in hotdesk.yaml has a comment${undocumented:+: $undocumented}" test -z "$undocumented"
else
  log "SKIPPED (stub binary): key coverage of hotdesk.yaml against the daemon"
fi

# ------------------------------------------ 6. upgrade, remove, purge
echo "# local change" >> "$ROOT/etc/hotdesk/hotdesk.yaml"
echo "db" > "$ROOT/var/lib/hotdesk/hotdesk.db"
dpkg_root -i "$DEB" >"$WORK/dpkg2.log" 2>&1 || { cat "$WORK/dpkg2.log" >&2; fail "dpkg --root -i (reinstall)"; }
check "reinstall keeps the admin's hotdesk.yaml" grep -q '^# local change$' "$ROOT/etc/hotdesk/hotdesk.yaml"
dpkg_root --purge hotdesk >"$WORK/dpkg3.log" 2>&1 || { cat "$WORK/dpkg3.log" >&2; fail "dpkg --root --purge"; }
check "purge removed the user" bash -c '! grep -q "^hotdesk:" "$1/etc/passwd" "$1/etc/group"' _ "$ROOT"
check "purge kept /var/lib/hotdesk" test -f "$ROOT/var/lib/hotdesk/hotdesk.db"
check "purge removed the conffile" test ! -e "$ROOT/etc/hotdesk/hotdesk.yaml"
check "purge removed the enablement link" test ! -e "$ROOT/etc/systemd/system/multi-user.target.wants/hotdeskd.service"
dpkg_root -i "$DEB" >"$WORK/dpkg4.log" 2>&1 || { cat "$WORK/dpkg4.log" >&2; fail "dpkg --root -i (again)"; }
HOTDESK_PURGE_DATA=1 dpkg_root --purge hotdesk >"$WORK/dpkg5.log" 2>&1 || { cat "$WORK/dpkg5.log" >&2; fail "purge with data"; }
check "HOTDESK_PURGE_DATA=1 purge removed /var/lib/hotdesk" test ! -e "$ROOT/var/lib/hotdesk"

if [[ $fails -gt 0 ]]; then echo "packaging: $fails check(s) failed"; exit 1; fi
echo "packaging: all checks passed$([[ $STUB == 1 ]] && echo ' (with a STUB hotdeskd: cmd/hotdeskd did not build)')"
