#!/usr/bin/env bash
# bench/run.sh: `make bench`. Builds bench/loadgen.c, starts build/submitd on a fresh data
# directory in a temp folder (free 127.0.0.1 ports: one STARTTLS listener, one that allows
# cleartext AUTH for the plaintext scenario), makes a tenant and mailboxes with build/submitctl,
# runs the scenarios below (each bounded in count and in time), samples the server's CPU time and
# peak RSS around each, prints a table, stops the server with SIGTERM and removes the temp folder.
# Method and results: docs/performance.md. Outputs are kept in $BUILD/bench/ (loadgen output,
# server log, results.md). Exit status: 0 when every scenario ran without a failure, 1 otherwise.
#
# Environment: BUILD (default build), BENCH_DURATION (seconds cap per scenario, default 30),
# BENCH_CLIENTS (default 20), BENCH_IDLE (connections held open in d and d-tls, default 10000),
# BENCH_IDLE_DURATION (seconds cap for opening them, default 120), BENCH_SCENARIOS (the names to
# run, space-separated; default all).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
DURATION=${BENCH_DURATION:-30}
CLIENTS=${BENCH_CLIENTS:-20}
IDLE=${BENCH_IDLE:-10000}
IDLE_DURATION=${BENCH_IDLE_DURATION:-120}
SCENARIOS=" ${BENCH_SCENARIOS:-a a-tls b noop-idle noop e e-tls d d-tls} "
want() { [[ $SCENARIOS == *" $1 "* ]]; }
DOMAIN=bench.example
OUT="$BUILD/bench"
SUBMITD="$BUILD/submitd"
SUBMITCTL="$BUILD/submitctl"
LOADGEN="$BUILD/loadgen"

for b in "$SUBMITD" "$SUBMITCTL"; do
    [ -x "$b" ] || { echo "bench: $b is missing; run 'make all' first" >&2; exit 2; }
done
mkdir -p "$OUT"
# shellcheck disable=SC2046 # pkg-config prints several words on purpose
cc -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -Wvla -O2 -g -o "$LOADGEN" bench/loadgen.c bench/loadgen_idle.c \
    $(pkg-config --cflags --libs openssl) -pthread -lm
"$LOADGEN" --self-test >/dev/null || { echo "bench: loadgen self-test failed" >&2; exit 2; }

# d and d-tls: submitd and loadgen each hold IDLE sockets. Both raise their soft limit to the
# hard one; raise the hard one too where allowed (root), never lower it.
FDS=$((IDLE + 1024))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$FDS" ]; then
    ulimit -Hn "$FDS" 2>/dev/null ||
        echo "bench: cannot raise the open-file limit to $FDS (hard limit $(ulimit -Hn))" >&2
fi
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

TMP=$(mktemp -d "${TMPDIR:-/tmp}/submitd-bench.XXXXXX")
DIR="$TMP/data"
SPID=""
# shellcheck disable=SC2317 # called by the EXIT trap
stop_submitd() {
    if [ -n "$SPID" ] && kill -0 "$SPID" 2>/dev/null; then
        kill -TERM "$SPID" 2>/dev/null || true
        for _ in $(seq 1 100); do kill -0 "$SPID" 2>/dev/null || break; sleep 0.1; done
        if kill -0 "$SPID" 2>/dev/null; then
            echo "bench: submitd ($SPID) ignored SIGTERM for 10 s; killing it" >&2
            kill -KILL "$SPID" 2>/dev/null || true
        fi
        wait "$SPID" 2>/dev/null || true
    fi
    SPID=""
}
# shellcheck disable=SC2317
cleanup() {
    stop_submitd
    [ -f "$DIR/submitd.log" ] && cp "$DIR/submitd.log" "$OUT/submitd.log"
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -m 700 "$DIR"

# Two free loopback ports: bound to port 0 and released (the kernel does not reuse them at once).
read -r PORT_TLS PORT_PLAIN < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])
for x in s: x.close()')

cat >"$DIR/submitd.conf" <<EOF
# written by bench/run.sh
hostname = bench.localhost
listen = 127.0.0.1:$PORT_TLS starttls
listen = 127.0.0.1:$PORT_PLAIN starttls allow-cleartext-auth no-require-tls
# d and d-tls hold BENCH_IDLE connections from 127.0.0.1 on one listener
max-connections = $((IDLE + 100))
max-connections-per-ip = $((IDLE + 100))
# delivery held, as it is for Postfix: the bench measures submission
delivery-threads = 0
EOF

# One mailbox per client (bench0 .. benchN, the last for the NOOP prober): the SPEC allows at most
# 3 concurrent submitting sessions per mailbox, and the bench measures the server, not that limit.
PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '\n')
export LOADGEN_PASSWORD="$PASSWORD"
ctl() { "$SUBMITCTL" -d "$DIR" "$@" >>"$OUT/submitctl.log" 2>&1 || {
    echo "bench: submitctl $* failed:" >&2; tail -n 5 "$OUT/submitctl.log" >&2; exit 2; }; }
: >"$OUT/submitctl.log"
ctl tenant add "$DOMAIN"
ctl tenant set "$DOMAIN" smtp-auth on
ctl tenant set "$DOMAIN" security-defaults off
ctl policy add allow --allow-basic-smtp
ctl tenant set "$DOMAIN" default-policy allow
# The load is the server's, not SPEC 4's per-mailbox limits (30 messages a minute, 10,000
# recipients a day): raise them so the benchmark measures throughput, not the limits.
ctl tenant set "$DOMAIN" messages-per-minute 1000000
ctl tenant set "$DOMAIN" recipients-per-day 1000000
for i in $(seq 0 "$CLIENTS"); do
    printf '%s\n' "$PASSWORD" | ctl mailbox add "bench$i@$DOMAIN"
done

start_submitd() {
    "$SUBMITD" -d "$DIR" -f >>"$DIR/submitd.log" 2>&1 &
    SPID=$!
    for port in "$PORT_TLS" "$PORT_PLAIN"; do
        for try in $(seq 1 100); do
            kill -0 "$SPID" 2>/dev/null || { echo "bench: submitd exited:" >&2;
                tail -n 20 "$DIR/submitd.log" >&2; exit 2; }
            (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
            [ "$try" -eq 100 ] && { echo "bench: submitd does not accept on $port" >&2; exit 2; }
            sleep 0.1
        done
    done
}
start_submitd

TICK=$(getconf CLK_TCK)
cpu_ticks() { # utime + stime of the server; fields 14 and 15, counted after the ")" of comm
    local stat
    stat=$(<"/proc/$SPID/stat")
    stat=${stat##*) }
    awk '{ print $12 + $13 }' <<<"$stat"
}
hwm_kib() { awk '/^VmHWM:/ { print $2 }' "/proc/$SPID/status"; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$SPID/status"; }
# Resetting the high-water mark (Linux >= 4.0) makes the peak per scenario; else it is the
# peak since the server started.
PEAK_NOTE="peak since the scenario started"
reset_hwm() { echo 5 >"/proc/$SPID/clear_refs" 2>/dev/null ||
    PEAK_NOTE="peak since the server started (clear_refs not writable)"; }

ROWS=()
DETAIL=()
FAILED=0
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }

# scenario NAME KIND LOADGEN-ARGS...; KIND is mail (per message) or noop (per AUTH).
scenario() {
    local name=$1 kind=$2
    shift 2
    kill -0 "$SPID" 2>/dev/null || { echo "bench: submitd died before $name" >&2; exit 2; }
    reset_hwm
    local c0 c1 rc=0 res
    c0=$(cpu_ticks)
    "$LOADGEN" --mode "$kind" --user "bench%d@$DOMAIN" --duration "$DURATION" "$@" \
        >"$OUT/$name.txt" 2>&1 ||
        rc=$?
    c1=$(cpu_ticks)
    [ "$rc" -le 1 ] || { echo "bench: loadgen for $name failed ($rc):" >&2;
        cat "$OUT/$name.txt" >&2; exit 2; }
    res=$(grep '^RESULT ' "$OUT/$name.txt")
    local fails ops rate p50 p99
    fails=$(field failures "$res")
    [ "$fails" = 0 ] || FAILED=1
    if [ "$kind" = mail ]; then
        ops=$(field msgs_ok "$res"); rate=$(field msgs_per_s "$res")
        # with --sync-start, the rate once every session was open (AUTH not included)
        [ "$(field mail_msgs_per_s "$res")" = nan ] || rate=$(field mail_msgs_per_s "$res")
        p50=$(field txn_p50_ms "$res"); p99=$(field txn_p99_ms "$res")
    else # AUTHs of the looping clients: the NOOP prober's own AUTH is not counted
        ops=$(($(field auths_ok "$res") - 1))
        rate=$(awk -v n="$ops" -v s="$(field elapsed_s "$res")" \
            'BEGIN { if (n > 0) printf "%.1f", n / s; else print "-" }')
        p50=$(field noop_p50_ms "$res"); p99=$(field noop_p99_ms "$res")
    fi
    local cpu_per rss
    cpu_per=$(awk -v d=$((c1 - c0)) -v t="$TICK" -v n="$ops" \
        'BEGIN { if (n > 0) printf "%.2f", d * 1000 / t / n; else print "-" }')
    # with --sync-start, loadgen sampled the server's CPU over the message phase only
    if [ "$kind" = mail ] && [ "$(field server_cpu_ms_per_msg "$res")" != nan ]; then
        cpu_per=$(field server_cpu_ms_per_msg "$res")
    fi
    rss=$(awk -v k="$(hwm_kib)" 'BEGIN { printf "%.1f", k / 1024 }')
    ROWS+=("| $name | $rate | $p50 | $p99 | $fails | $cpu_per | $rss |")
    DETAIL+=("| $name | $(field elapsed_s "$res") | $(field msgs_ok "$res") | \
$(field msgs_per_s "$res") | \
$(field conns_ok "$res") | $(field conns_failed "$res") | $(field conn_p50_ms "$res") | \
$(field conn_p99_ms "$res") | $(field auths_ok "$res") | $(field auth_p50_ms "$res") | \
$(field auth_p99_ms "$res") | $(field noops_ok "$res") |")
    printf 'bench: %-10s %s\n' "$name" "$(sed -n 's/^  messages/messages/p' "$OUT/$name.txt")"
}

# idle NAME TLS PORT: IDLE authenticated sessions held open at once; the server's VmRSS before
# they are opened and while every one is held gives KiB per idle connection. Each runs on a
# freshly started submitd (same data directory): memory freed by earlier scenarios (1 MiB
# message buffers, sessions) stays in the allocator and would hide part of the new sessions'.
IDLE_ROWS=()
idle() {
    local name=$1 tls=$2 port=$3
    local ready="$TMP/$name.ready" rc=0 res before held="" lpid
    kill -0 "$SPID" 2>/dev/null || { echo "bench: submitd died before $name" >&2; exit 2; }
    stop_submitd
    start_submitd
    # One AUTH per mailbox first, so that the measured ones hit the verified-credential cache, as
    # on a server that has been running (the first AUTH of a mailbox costs a full argon2id).
    "$LOADGEN" --mode idle --tls "$tls" --port "$port" --user "bench%d@$DOMAIN" \
        --clients "$CLIENTS" --connections "$CLIENTS" --hold 0 >"$OUT/$name-warmup.txt" 2>&1 ||
        { echo "bench: warm-up for $name failed:" >&2; cat "$OUT/$name-warmup.txt" >&2; exit 2; }
    sleep 1
    before=$(rss_kib)
    reset_hwm
    "$LOADGEN" --mode idle --tls "$tls" --port "$port" --user "bench%d@$DOMAIN" \
        --clients "$CLIENTS" --connections "$IDLE" --duration "$IDLE_DURATION" --hold 120 \
        --ready-file "$ready" >"$OUT/$name.txt" 2>&1 &
    lpid=$!
    while [ ! -e "$ready" ] && kill -0 "$lpid" 2>/dev/null; do sleep 0.2; done
    if [ -e "$ready" ]; then
        sleep 2 # let the last replies and TLS tickets settle
        held=$(rss_kib)
        rm -f "$ready" # ends the hold: loadgen QUITs every session
    fi
    wait "$lpid" || rc=$?
    [ "$rc" -le 1 ] || { echo "bench: loadgen for $name failed ($rc):" >&2;
        cat "$OUT/$name.txt" >&2; exit 2; }
    res=$(grep '^RESULT ' "$OUT/$name.txt")
    local n fails per
    n=$(field held "$res"); fails=$(field failures "$res")
    [ "$fails" = 0 ] || FAILED=1
    per=$(awk -v b="$before" -v h="${held:-0}" -v n="$n" \
        'BEGIN { if (n > 0 && h > 0) printf "%.1f", (h - b) / n; else print "-" }')
    IDLE_ROWS+=("| $name | $n | $(field open_s "$res") | $(field auth_p50_ms "$res") | \
$(field auth_p99_ms "$res") | $fails | $(awk -v k="$before" 'BEGIN { printf "%.1f", k / 1024 }') | \
$(awk -v k="${held:-0}" 'BEGIN { printf "%.1f", k / 1024 }') | $per |")
    ROWS+=("| $name | - | $(field auth_p50_ms "$res") | $(field auth_p99_ms "$res") | $fails | - | \
$(awk -v k="$(hwm_kib)" 'BEGIN { printf "%.1f", k / 1024 }') |")
    printf 'bench: %-10s %s connections held, %s KiB each (VmRSS %s -> %s KiB), %s failures\n' \
        "$name" "$n" "$per" "$before" "${held:--}" "$fails"
}

N=$CLIENTS
# a and a-tls: one session per client, all opened (and authenticated) before the first MAIL, so
# msgs/s and CPU/msg are of the message phase; the wall-clock rate, AUTH included, is in the
# second table.
want a && scenario a mail --tls none --port "$PORT_PLAIN" --clients "$N" \
    --per-conn 50 --connections "$N" --sync-start --server-pid "$SPID"
want a-tls && scenario a-tls mail --tls starttls --port "$PORT_TLS" --clients "$N" \
    --per-conn 50 --connections "$N" --sync-start --server-pid "$SPID"
want b && scenario b mail --tls starttls --port "$PORT_TLS" --clients "$N" --per-conn 1 \
    --connections 2000
want noop-idle && scenario noop-idle noop --tls starttls --port "$PORT_TLS" --clients 0 \
    --noops 2000 --user "bench$N@$DOMAIN"
want noop && scenario noop noop --tls starttls --port "$PORT_TLS" --clients "$N" \
    --connections 2000
# e and e-tls: 1 MiB messages, AUTH once, 5 per connection
want e && scenario e mail --tls none --port "$PORT_PLAIN" --clients "$N" --per-conn 5 \
    --size 1048576 --connections "$N" --sync-start --server-pid "$SPID"
want e-tls && scenario e-tls mail --tls starttls --port "$PORT_TLS" --clients "$N" \
    --per-conn 5 --size 1048576 --connections "$N" --sync-start --server-pid "$SPID"
# d and d-tls last: each restarts submitd
want d && idle d none "$PORT_PLAIN"
want d-tls && idle d-tls starttls "$PORT_TLS"

CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
{
    echo "Machine: $(nproc) CPUs, ${CPU:-unknown CPU}, $(uname -sr); $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "Caps: ${DURATION} s per scenario; RSS is the $PEAK_NOTE."
    echo
    echo "| scenario | msgs/s | p50 ms | p99 ms | failures | server CPU ms/msg | peak RSS MiB |"
    echo "|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "| scenario | seconds | msgs ok | msgs/s wall | conns ok | conns failed | conn p50 ms | conn p99 ms \
| AUTHs | AUTH p50 ms | AUTH p99 ms | NOOPs |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${DETAIL[@]}" | sed 's/| nan /| - /g'
    echo "(conn: connect to the 221 after QUIT; AUTH: AUTH PLAIN sent to its 235)"
    echo
    echo "| scenario | connections held | seconds to open all | AUTH p50 ms | AUTH p99 ms | failures \
| VmRSS before MiB | VmRSS held MiB | KiB per connection |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${IDLE_ROWS[@]}"
    echo
    echo "a: $N clients, AUTH once, 50 x 4 KiB per connection, plaintext; msgs/s is counted from"
    echo "when every session was authenticated. a-tls: the same over STARTTLS. b: 1 message per"
    echo "connection (connect, STARTTLS, AUTH, 1 message, QUIT), $N at a time. noop: msgs/s is"
    echo "AUTHs/s of $N clients that connect+AUTH in a loop, p50/p99 the NOOP round trip on another"
    echo "authenticated session, CPU per AUTH. noop-idle: that NOOP round trip with nothing else."
    echo "e: $N clients, AUTH once, 5 x 1 MiB per connection, plaintext; e-tls: over STARTTLS."
    echo "d: $IDLE authenticated sessions held open at once, plaintext (d-tls: over STARTTLS);"
    echo "KiB per connection = (VmRSS while all are held - VmRSS before) / connections held."
} | tee "$OUT/results.md"
exit "$FAILED"
