#!/usr/bin/env bash
# make check: build, unit tests, integration tests, then all of them again under ASan+UBSan.
set -uo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
step() { echo; echo "=== check: $*"; }
failed=()
step "build"
unit_targets() { for t in tests/unit/test_*.c; do t=${t##*/}; echo "$1/tests/${t%.c}"; done; }
make -j"$jobs" all $(unit_targets build) \
    || { echo "check: build failed"; echo "check: 0 passed, 1 failed"; exit 1; }
step "unit tests"
make -s unit || failed+=(unit)
step "load generator tests (bench/loadgen.c against a scripted server)"
python3 -m unittest bench.test_loadgen 2>&1 | tail -3
[ "${PIPESTATUS[0]}" -eq 0 ] || failed+=(loadgen)
step "integration tests"
make -s integration || failed+=(integration)
step "sanitizers (ASan + UBSan): build"
make -s -j"$jobs" BUILD=build/san OPT="-O1 -g -fno-omit-frame-pointer" \
    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" all \
    $(unit_targets build/san) || failed+=(sanitize-build)
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
step "sanitizers: unit tests"
make -s BUILD=build/san OPT="-O1 -g -fno-omit-frame-pointer" \
    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" unit || failed+=(sanitize-unit)
step "sanitizers: integration tests"
make -s BUILD=build/san OPT="-O1 -g -fno-omit-frame-pointer" \
    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" integration || failed+=(sanitize-integration)
echo
if [ ${#failed[@]} -eq 0 ]; then
    echo "check: 6 passed, 0 failed"
    exit 0
fi
echo "check: failed stages: ${failed[*]}"
echo "check: $((6 - ${#failed[@]})) passed, ${#failed[@]} failed"
exit 1
