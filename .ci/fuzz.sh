#!/usr/bin/env bash
# Runs every `func Fuzz*` of the module, one after another, for FUZZTIME each
# (a go test -fuzztime value: 10m, 30s, 1h30m, or 1000x). A finding (a
# failing input, saved under the package's testdata/fuzz/) fails the run;
# the remaining targets still run so one report covers them all. Each target
# is bounded by go test -timeout (FUZZTIME plus 10 minutes for the build and
# the seed corpus).
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-10m}"
GO="${GO:-go}"

# seconds converts a Go duration made of h, m and s parts; x counts as none.
seconds() {
  local d="$1" total=0 n unit
  if [[ "$d" =~ ^[0-9]+x$ ]]; then echo 0; return; fi
  if ! [[ "$d" =~ ^([0-9]+[hms])+$ ]]; then
    echo "fuzz: FUZZTIME=$d: want a duration like 10m, 30s, 1h30m, or a count like 1000x" >&2
    exit 2
  fi
  while [[ "$d" =~ ^([0-9]+)([hms])(.*)$ ]]; do
    n=${BASH_REMATCH[1]} unit=${BASH_REMATCH[2]} d=${BASH_REMATCH[3]}
    case $unit in h) total=$((total + n * 3600)) ;; m) total=$((total + n * 60)) ;; s) total=$((total + n)) ;; esac
  done
  echo "$total"
}
timeout_s=$(( $(seconds "$FUZZTIME") + 600 ))

# "dir name" per target, in a stable order.
mapfile -t targets < <(git ls-files '*_test.go' | xargs grep -Ho '^func Fuzz[A-Za-z0-9_]*' |
  sed -E 's#^(.*)/[^/]*_test\.go:func (Fuzz[A-Za-z0-9_]*)$#\1 \2#; s#^[^/ ]*_test\.go:func (Fuzz[A-Za-z0-9_]*)$#. \1#' | sort -u)
if [ ${#targets[@]} -eq 0 ]; then
  echo "fuzz: no Fuzz functions found" >&2
  exit 2
fi
echo "fuzz: ${#targets[@]} targets, $FUZZTIME each"
corpus() { ls "$1/testdata/fuzz/$2" 2>/dev/null | sort || true; }
out=$(mktemp)
trap 'rm -f "$out"' EXIT
failed=() flaked=()
for t in "${targets[@]}"; do
  dir=${t% *} name=${t#* }
  echo "=== fuzz ./$dir $name ($FUZZTIME)"
  before=$(corpus "$dir" "$name")
  if "$GO" test -run '^$' -fuzz "^${name}\$" -fuzztime "$FUZZTIME" -timeout "${timeout_s}s" "./$dir" 2>&1 | tee "$out"; then
    continue
  fi
  # Go 1.26's fuzz coordinator can report a bare "context deadline
  # exceeded" when -fuzztime ends with a worker mid-call
  # (go.dev/issue/75804, fixed in Go 1.27): no input was written, nothing
  # was found. Anything else, or a new input, is a failure.
  if [ "$(corpus "$dir" "$name")" = "$before" ] && grep -q '^    context deadline exceeded$' "$out" &&
    ! grep -q 'test timed out\|Failing input written\|failure while testing seed corpus' "$out"; then
    echo "fuzz: ./$dir $name: ignored Go's fuzztime deadline race (go.dev/issue/75804), no input written" >&2
    flaked+=("./$dir $name")
    continue
  fi
  failed+=("./$dir $name")
done
if [ ${#flaked[@]} -gt 0 ]; then
  echo "fuzz: ${#flaked[@]} target(s) ended in Go's deadline race (not a finding):" >&2
  printf '  %s\n' "${flaked[@]}" >&2
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: FAILED (failing inputs are under each package's testdata/fuzz/):" >&2
  printf '  %s\n' "${failed[@]}" >&2
  exit 1
fi
echo "fuzz: all ${#targets[@]} targets passed"
