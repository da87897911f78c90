#!/usr/bin/env bash
# fuzz/run.sh: builds every libFuzzer target (fuzz/fuzz_NAME.c) with clang into build/fuzz/ and
# runs each, one after the other, for SECONDS (default 60). Usage:
#   fuzz/run.sh [SECONDS] [TARGET...]     SECONDS=0 builds only
# Corpora live in build/fuzz/corpus/NAME (seeded from fuzz/corpus/NAME, kept between runs);
# crash, leak and timeout inputs go to build/fuzz/crashes/NAME/; logs to build/fuzz/logs/NAME.log.
# Exits non-zero if a target failed to build or any target found a crash. See docs/fuzzing.md.
# FUZZ_KEEP_GOING=1: run each target in libFuzzer's fork mode (one worker process at a time) and
# go on after a crash, so that each target gets its whole time and every distinct crash is kept.
set -u
cd "$(dirname "$0")/.."

SECONDS_EACH=${1:-60}
shift $(( $# > 0 ? 1 : 0 ))
CC=${FUZZ_CC:-clang}
OUT=build/fuzz
CFLAGS="-g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
-fno-omit-frame-pointer -std=c17 -D_GNU_SOURCE -Wall -Wextra -Isrc -Ifuzz"

# name | sources (besides fuzz/fuzz_NAME.c) | pkg-config packages | -max_len
TARGETS="
smtp_command|src/smtp_parse.c src/xtext.c||1200
sasl|src/sasl.c src/smtp_parse.c src/xtext.c|libsodium|9300
base64|src/base64.c|libsodium|12300
data_decoder|src/data_decoder.c||4096
header_scan|src/header_scan.c||4096
address_list|src/address_list.c||4096
jwt|src/jwt.c src/jwk.c|openssl jansson|8300
jwks|src/jwt.c src/jwk.c|openssl jansson|8192
config|src/config.c||4096
netmask|src/netmask.c||1024
smtp_reply|src/smtp_reply.c||10000
doctor_kb|src/doctor_kb.c build/fuzz/gen/kb_data.c|jansson|4096
smtp_client|src/smtp_client.c src/smtp_reply.c src/base64.c src/xtext.c src/delivery.c|libsodium|4096
journal|src/spool_journal_codec.c src/spool_index.c src/spool_envelope.c|libsodium jansson|70000
"

want() { # is target $1 selected on the command line (all when none is)?
    [ ${#SELECTED[@]} -eq 0 ] && return 0
    local t
    for t in "${SELECTED[@]}"; do [ "$t" = "$1" ] && return 0; done
    return 1
}
SELECTED=("$@")

mkdir -p "$OUT/logs"
# smtp-doctor's knowledge base, embedded as the Makefile does (doctor_kb.c links against it)
if [ -f data/smtp-replies.json ] && [ -x scripts/embed.sh ]; then
    mkdir -p "$OUT/gen"
    scripts/embed.sh doctor_kb_json data/smtp-replies.json "$OUT/gen/kb_data.c"
fi
status=0
summary=""
while IFS='|' read -r name srcs pkgs maxlen; do
    [ -n "$name" ] || continue
    want "$name" || continue
    missing=""
    for f in "fuzz/fuzz_$name.c" $srcs; do [ -f "$f" ] || missing="$missing $f"; done
    if [ -n "$missing" ]; then
        echo "== $name: skipped (missing:$missing)"
        summary+=$(printf '%-14s skipped (missing:%s)' "$name" "$missing")$'\n'
        continue
    fi
    pc_cflags="" pc_libs=""
    if [ -n "$pkgs" ]; then
        pc_cflags=$(pkg-config --cflags $pkgs) && pc_libs=$(pkg-config --libs $pkgs) || {
            echo "== $name: pkg-config failed for: $pkgs" >&2
            status=1
            continue
        }
    fi
    echo "== $name: building $OUT/fuzz_$name"
    # shellcheck disable=SC2086 # word splitting of flag lists is intended
    if ! $CC $CFLAGS $pc_cflags "fuzz/fuzz_$name.c" $srcs $pc_libs -o "$OUT/fuzz_$name"; then
        echo "== $name: BUILD FAILED" >&2
        summary+=$(printf '%-14s BUILD FAILED' "$name")$'\n'
        status=1
        continue
    fi
    [ "$SECONDS_EACH" -gt 0 ] || continue

    corpus="$OUT/corpus/$name"
    crashes="$OUT/crashes/$name"
    log="$OUT/logs/$name.log"
    mkdir -p "$corpus" "$crashes"
    [ -d "fuzz/corpus/$name" ] && cp -n fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null
    echo "== $name: fuzzing for ${SECONDS_EACH}s (max_len $maxlen), log $log"
    keep=()
    [ "${FUZZ_KEEP_GOING:-0}" = 1 ] && keep=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
    before=$(ls "$crashes" | wc -l)
    start=$(date +%s)
    "$OUT/fuzz_$name" "${keep[@]}" -max_total_time="$SECONDS_EACH" -max_len="$maxlen" -timeout=10 \
        -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$crashes/" "$corpus" >"$log" 2>&1
    rc=$?
    took=$(( $(date +%s) - start ))
    found=$(( $(ls "$crashes" | wc -l) - before ))
    [ $found -gt 0 ] && [ $rc -eq 0 ] && rc=1
    last=$(grep -E '^#[0-9]+' "$log" | tail -1)
    # normal mode: "#N DONE cov: C ft: F corp: U/SIZE ... exec/s: R"; fork mode: "#N: cov: C ft: F
    # corp: U exec/s R oom/timeout/crash: ..."
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    [ -n "$execs" ] || execs=$(sed -n 's/^#\([0-9]*\).*/\1/p' <<<"$last")
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    [ -n "$rate" ] || rate=$(sed -n 's/.* exec\/s:\{0,1\} \([0-9]*\).*/\1/p' <<<"$last")
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\(\/[0-9a-zA-Z]*\)\{0,1\}\).*/\1/p' <<<"$last")
    if [ $rc -eq 0 ]; then
        result=ok
    else
        result="CRASH (rc $rc, $found new in $crashes)"
        status=1
        grep -E '^(==[0-9]+==ERROR|SUMMARY|.*invariant violated)' "$log" | head -3
    fi
    line=$(printf '%-14s %5ss  %10s execs  %7s exec/s  cov %-5s ft %-6s corpus %-10s %s' \
        "$name" "$took" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$result")
    echo "$line"
    summary+="$line"$'\n'
done <<<"$TARGETS"

echo
echo "== summary"
printf '%s' "$summary"
exit $status
