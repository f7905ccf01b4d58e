#!/usr/bin/env bash
# The full test suite (the README's "Run the full test suite" command, and CI's).
#
#   tier 1  unit   pytest tests/unit           pure logic, no root
#   tier 2  netns  pytest tests/netns          root; the host kernel inside namespaces the tests create
#   tier 3  vm     scripts/vm-tests.sh         the real IPVS kernel in a throwaway VM (booted once)
#
# Usage: scripts/test.sh [--unit] [--netns] [--vm] [-- EXTRA PYTEST ARGS]
#   With no tier option every tier runs. Exit status is non-zero if any tier fails.
#   A tier that collects no test fails (every tier is supposed to have tests), and a VM that
#   cannot boot fails the vm tier: nothing is ever skipped silently.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

TIERS=()
EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --unit) TIERS+=(unit) ;;
        --netns) TIERS+=(netns) ;;
        --vm) TIERS+=(vm) ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
        *) echo "test.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ ${#TIERS[@]} -gt 0 ] || TIERS=(unit netns vm)

# Tiers that must collect at least one test (pytest exit 5 = "no tests" is then a failure).
declare -A EXPECTS_TESTS=([unit]=1 [netns]=1 [vm]=1)

needs_vm=0
for t in "${TIERS[@]}"; do [ "$t" = vm ] && needs_vm=1; done
setup_args=()
[ "$needs_vm" = 1 ] || setup_args+=(--no-vm)
if ! bash scripts/setup.sh "${setup_args[@]}"; then
    echo "test.sh: setup failed; no tier ran" >&2
    exit 1
fi

RESULTS=${KPCTL_TEST_RESULTS:-$ROOT/vm-results}
mkdir -p "$RESULTS"
PY=$ROOT/.venv/bin/python
export PYTHONDONTWRITEBYTECODE=1

declare -A STATUS SECONDS_TAKEN COUNTS

# counts FILE.xml -> "P F E S" (passed failed errors skipped) from a junit xml
counts() {
    "$PY" - "$1" <<'EOF' 2>/dev/null || echo "0 0 0 0"
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0 0 0"); sys.exit()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
t = f = e = s = 0
for suite in suites:
    t += int(suite.get("tests", 0)); f += int(suite.get("failures", 0))
    e += int(suite.get("errors", 0)); s += int(suite.get("skipped", 0))
print(t - f - e - s, f, e, s)
EOF
}

run_tier() {
    local tier=$1 rc start xml
    xml=$RESULTS/$tier.xml
    rm -f "$xml"
    echo
    echo "================ tier: $tier ================"
    start=$(date +%s)
    case "$tier" in
        unit)
            "$PY" -m pytest tests/unit -p no:cacheprovider -ra --junitxml="$xml" "${EXTRA[@]}"
            rc=$? ;;
        netns)
            if [ "$(id -u)" != 0 ]; then
                echo "test.sh: the netns tier needs root (it creates network namespaces)" >&2
                rc=1
            else
                "$PY" -m pytest tests/netns -p no:cacheprovider -ra --junitxml="$xml" "${EXTRA[@]}"
                rc=$?
            fi ;;
        vm)
            KPCTL_VM_JUNIT=$xml bash scripts/vm-tests.sh "${EXTRA[@]}"
            rc=$? ;;
    esac
    SECONDS_TAKEN[$tier]=$(( $(date +%s) - start ))
    if [ "$rc" = 5 ] && [ "${EXPECTS_TESTS[$tier]:-1}" = 0 ]; then
        rc=0
    fi
    if [ "$rc" = 5 ]; then
        echo "test.sh: tier $tier collected no tests, but it is supposed to have some" >&2
    fi
    STATUS[$tier]=$rc
    COUNTS[$tier]=$(counts "$xml")
}

for tier in "${TIERS[@]}"; do
    run_tier "$tier"
done

echo
echo "================ summary ================"
overall=0
tp=0; tf=0; te=0; ts=0
for tier in "${TIERS[@]}"; do
    read -r p f e s <<<"${COUNTS[$tier]}"
    tp=$((tp + p)); tf=$((tf + f)); te=$((te + e)); ts=$((ts + s))
    if [ "${STATUS[$tier]}" = 0 ]; then verdict=PASSED; else verdict="FAILED (exit ${STATUS[$tier]})"; overall=1; fi
    printf 'tier %-5s %-16s %4d passed, %3d failed, %3d errors, %3d skipped  in %4ds\n' \
        "$tier" "$verdict" "$p" "$f" "$e" "$s" "${SECONDS_TAKEN[$tier]}"
done
[ "$overall" = 0 ] && echo "ALL TIERS PASSED" || echo "SOME TIERS FAILED"
# Plain closing line: totals over all tiers that ran (errors count as failures).
echo "total: $tp passed, $((tf + te)) failed, $ts skipped"
exit "$overall"
