#!/usr/bin/env bash
# The full test suite (the README's "Run the full test suite" command, and CI's).
#
#   tier 1  unit   pytest tests/unit           pure logic, no root
#   tier 2  netns  pytest tests/netns          root; the host kernel inside namespaces the tests create
#   tier 3  vm     scripts/vm-tests.sh         the real IPVS kernel in a throwaway VM (booted once)
#   Tiers 1 and 2 run on .venv's Python (unit-3.11, netns-3.11); with --pythons also on every
#   other CPython pyproject.toml declares (.venv-3.X, made by setup.sh --pythons): the whole
#   unit tier (two versions at a time) and the netns tier's ipset and iptables files. A declared
#   Python missing from the machine fails the run. The VM tier runs on .venv's Python only.
#
# Usage: scripts/test.sh [--unit] [--netns] [--vm] [--pythons] [-- EXTRA PYTEST ARGS]
#   With no option every tier runs on every declared Python. Exit status is non-zero if any tier fails.
#   A tier that collects no test fails (every tier is supposed to have tests), and a VM that
#   cannot boot fails the vm tier: nothing is ever skipped silently.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$PWD

TIERS=()
EXTRA=()
ALL_PYTHONS=0
while [ $# -gt 0 ]; do
    case "$1" in
        --unit) TIERS+=(unit) ;;
        --netns) TIERS+=(netns) ;;
        --vm) TIERS+=(vm) ;;
        --pythons) ALL_PYTHONS=1 ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,16p' "$0"; exit 0 ;;
        *) echo "test.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ ${#TIERS[@]} -gt 0 ] || { TIERS=(unit netns vm); ALL_PYTHONS=1; }
# The netns files run on the other Pythons: the kernel-facing readers and writers, the parts of
# kpctl whose behaviour could differ between versions (the rest is the same code on the same kernel).
NETNS_ON_ALL_PYTHONS=(tests/netns/test_ipset_netns.py tests/netns/test_iptables_netns.py)

# Tiers that must collect at least one test (pytest exit 5 = "no tests" is then a failure).
declare -A EXPECTS_TESTS=([unit]=1 [netns]=1 [vm]=1)

needs_vm=0
for t in "${TIERS[@]}"; do [ "$t" = vm ] && needs_vm=1; done
setup_args=()
[ "$needs_vm" = 1 ] || setup_args+=(--no-vm)
[ "$ALL_PYTHONS" = 1 ] && setup_args+=(--pythons)
if ! bash scripts/setup.sh "${setup_args[@]}"; then
    echo "test.sh: setup failed; no tier ran" >&2
    exit 1
fi

RESULTS=${KPCTL_TEST_RESULTS:-$ROOT/vm-results}
mkdir -p "$RESULTS"
PY=$ROOT/.venv/bin/python
export PYTHONDONTWRITEBYTECODE=1
MAIN_VERSION=$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
OTHER_VERSIONS=()
if [ "$ALL_PYTHONS" = 1 ]; then
    while read -r version _; do
        [ "$version" = "$MAIN_VERSION" ] || OTHER_VERSIONS+=("$version")
    done < <("$PY" tests/pythons.py)  # setup.sh --pythons already failed if one is missing
fi

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

# python_of VERSION -> the venv interpreter that runs tiers on that Python
python_of() {
    if [ "$1" = "$MAIN_VERSION" ]; then echo "$PY"; else echo "$ROOT/.venv-$1/bin/python"; fi
}

# run_tier NAME (unit-3.X, netns-3.X or vm)
run_tier() {
    local tier=$1 rc start xml py
    xml=$RESULTS/$tier.xml
    rm -f "$xml"
    echo
    echo "================ tier: $tier ================"
    start=$(date +%s)
    py=$(python_of "${tier#*-}")
    case "$tier" in
        unit-*)
            "$py" -m pytest tests/unit -p no:cacheprovider -ra --junitxml="$xml" "${EXTRA[@]}"
            rc=$? ;;
        netns-*)
            local files=(tests/netns)
            [ "${tier#*-}" = "$MAIN_VERSION" ] || files=("${NETNS_ON_ALL_PYTHONS[@]}")
            if [ "$(id -u)" != 0 ]; then
                echo "test.sh: the netns tier needs root (it creates network namespaces)" >&2
                rc=1
            else
                "$py" -m pytest "${files[@]}" -p no:cacheprovider -ra --junitxml="$xml" "${EXTRA[@]}"
                rc=$?
            fi ;;
        vm)
            KPCTL_VM_JUNIT=$xml bash scripts/vm-tests.sh "${EXTRA[@]}"
            rc=$? ;;
    esac
    SECONDS_TAKEN[$tier]=$(( $(date +%s) - start ))
    if [ "$rc" = 5 ] && [ "${EXPECTS_TESTS[${tier%%-*}]:-1}" = 0 ]; then
        rc=0
    fi
    if [ "$rc" = 5 ]; then
        echo "test.sh: tier $tier collected no tests, but it is supposed to have some" >&2
    fi
    STATUS[$tier]=$rc
    COUNTS[$tier]=$(counts "$xml")
    echo "$rc ${SECONDS_TAKEN[$tier]}" >"$RESULTS/$tier.status"
}

# The unit tiers of the other Pythons, two at a time (the machines have two cores), each
# writing to its own log that is printed when it ends.
run_parallel_units() {
    local i version
    for ((i = 0; i < ${#OTHER_VERSIONS[@]}; i += 2)); do
        for version in "${OTHER_VERSIONS[@]:i:2}"; do
            run_tier "unit-$version" >"$RESULTS/unit-$version.log" 2>&1 &
        done
        wait
        for version in "${OTHER_VERSIONS[@]:i:2}"; do
            cat "$RESULTS/unit-$version.log"
            # the subshell's results come back through the files it wrote
            read -r "STATUS[unit-$version]" "SECONDS_TAKEN[unit-$version]" < "$RESULTS/unit-$version.status"
            COUNTS[unit-$version]=$(counts "$RESULTS/unit-$version.xml")
        done
    done
}

RAN=()
for tier in "${TIERS[@]}"; do
    case "$tier" in
        unit)
            run_tier "unit-$MAIN_VERSION"; RAN+=("unit-$MAIN_VERSION")
            run_parallel_units
            for version in "${OTHER_VERSIONS[@]}"; do RAN+=("unit-$version"); done ;;
        netns)
            for version in "$MAIN_VERSION" "${OTHER_VERSIONS[@]}"; do
                run_tier "netns-$version"; RAN+=("netns-$version")
            done ;;
        vm) run_tier vm; RAN+=(vm) ;;
    esac
done

echo
echo "================ summary ================"
overall=0
tp=0; tf=0; te=0; ts=0
for tier in "${RAN[@]}"; do
    read -r p f e s <<<"${COUNTS[$tier]}"
    tp=$((tp + p)); tf=$((tf + f)); te=$((te + e)); ts=$((ts + s))
    if [ "${STATUS[$tier]}" = 0 ]; then verdict=PASSED; else verdict="FAILED (exit ${STATUS[$tier]})"; overall=1; fi
    printf 'tier %-10s %-16s %4d passed, %3d failed, %3d errors, %3d skipped  in %4ds\n' \
        "$tier" "$verdict" "$p" "$f" "$e" "$s" "${SECONDS_TAKEN[$tier]}"
done
[ "$overall" = 0 ] && echo "ALL TIERS PASSED" || echo "SOME TIERS FAILED"
# Plain closing line: totals over all tiers that ran (errors count as failures).
echo "total: $tp passed, $((tf + te)) failed, $ts skipped"
exit "$overall"
