#!/usr/bin/env bash
# bench/peers.sh: `make bench-peers`. The same load generator (bench/loadgen.c) and the same
# workload against submitd and against the servers an administrator would otherwise run, on this
# machine, in one run: Postfix with SASL through Dovecot (OpenSMTPD cannot be measured on Debian
# 12: see below), and Postfix's smtp-sink as the ceiling of the SMTP exchange itself (scenario a:
# it accepts and discards, with no queue, no fsync and no real AUTH). Each is a private instance in a temp folder on its own 127.0.0.1 ports, an
# authenticated submission server with STARTTLS (RFC 3207, self-signed certificate), AUTH PLAIN
# (RFC 4954, RFC 4616), a durable queue and onward delivery switched off. The system's own Postfix
# configuration is never read or changed.
# Method and results: docs/performance.md ("Peers"). Outputs are kept in $BUILD/bench-peers/.
# Exit status: 0 when every scenario ran without a failure, 1 otherwise, 2 on a setup error.
#
# Environment: BUILD (default build), BENCH_DURATION (seconds cap per scenario, default 30),
# BENCH_CLIENTS (default 20), BENCH_B_CONNECTIONS (cap for b, default 2000), BENCH_IDLE
# (connections submitd holds in d and d-tls, default 10000), BENCH_PF_IDLE (the same for
# Postfix, which needs a process per connection; default 500), BENCH_IDLE_DURATION (seconds cap
# for opening them, default 120), BENCH_SCENARIOS (names to run, space-separated; default all:
# a a-tls b b-tls e e-tls d d-tls sink), BENCH_FS (where the servers keep their files: `fresh`,
# the default, a new ext4 file system with a journal made for this run on a loop device, so that
# every run and both servers start from the same state; `tmpdir`, TMPDIR's file system as it
# is), BENCH_FS_SIZE (the fresh file system's size, default 4G; the image file is sparse),
# BENCH_REPEAT (runs of each scenario but d, d-tls per server, default 5: the row shown is the
# run with the median msgs/s; a, 1,000 messages, lasts a fraction of a second, so one run's
# figure moves by 10-30% on a shared machine).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=${BUILD:-build}
DURATION=${BENCH_DURATION:-30}
REPEAT=${BENCH_REPEAT:-5}
CLIENTS=${BENCH_CLIENTS:-20}
B_CONNS=${BENCH_B_CONNECTIONS:-2000}
IDLE=${BENCH_IDLE:-10000}
PF_IDLE=${BENCH_PF_IDLE:-500}
[ "$PF_IDLE" -le "$IDLE" ] || PF_IDLE=$IDLE
IDLE_DURATION=${BENCH_IDLE_DURATION:-120}
SCENARIOS=" ${BENCH_SCENARIOS:-a a-tls b b-tls e e-tls d d-tls sink} "
want() { [[ $SCENARIOS == *" $1 "* ]]; }
DOMAIN=bench.example
OUT="$BUILD/bench-peers"
SUBMITD="$BUILD/submitd"
SUBMITCTL="$BUILD/submitctl"
LOADGEN="$BUILD/loadgen"
PROCTREE="$PWD/bench/peers/proctree.py"
NOTES=()

die() { echo "bench-peers: $*" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || die "needs root (Postfix's master and Dovecot drop privileges)"
for b in "$SUBMITD" "$SUBMITCTL"; do
    [ -x "$b" ] || die "$b is missing; run 'make all' first"
done
mkdir -p "$OUT"
: >"$OUT/setup.log"

# --- packages -------------------------------------------------------------------------------
export DEBIAN_FRONTEND=noninteractive
if ! [ -x /usr/sbin/postfix ] || ! [ -x /usr/sbin/dovecot ]; then
    echo "bench-peers: installing postfix and dovecot-core with apt-get" >&2
    # Debian's postinst may start a system Postfix on port 25: it is left alone.
    timeout 600 apt-get install -y --no-install-recommends postfix dovecot-core \
        >>"$OUT/setup.log" 2>&1 || die "apt-get install postfix dovecot-core failed (see $OUT/setup.log)"
fi

# shellcheck disable=SC2046 # pkg-config prints several words on purpose
cc -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
    -Wmissing-prototypes -Wvla -O2 -g -o "$LOADGEN" bench/loadgen.c bench/loadgen_idle.c \
    $(pkg-config --cflags --libs openssl) -pthread -lm
"$LOADGEN" --self-test >/dev/null || die "loadgen self-test failed"
# d and d-tls: submitd and loadgen each hold IDLE sockets; raise the hard limit (root), then the
# soft one (both programs raise their soft limit to the hard one themselves, too).
FDS=$((IDLE + 1024))
if [ "$(ulimit -Hn)" != unlimited ] && [ "$(ulimit -Hn)" -lt "$FDS" ]; then
    ulimit -Hn "$FDS" || die "cannot raise the open-file limit to $FDS"
fi
ulimit -Sn "$(ulimit -Hn)" 2>/dev/null || true

TMP=$(mktemp -d "${TMPDIR:-/tmp}/submitd-peers.XXXXXX")
chmod 755 "$TMP"
SPID="" PF_STARTED="" DOVECOT_PID="" SAMPLER="" SINK_PID="" FS_IMG=""
# shellcheck disable=SC2317 # called by the EXIT trap
stop_pid() { # stop_pid PID NAME: SIGTERM, 10 s, then SIGKILL
    local pid=$1
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    echo "bench-peers: $2 ($pid) ignored SIGTERM for 10 s; killing it" >&2
    kill -KILL "$pid" 2>/dev/null || true
}
# shellcheck disable=SC2317
cleanup() {
    [ -n "$SAMPLER" ] && stop_pid "$SAMPLER" sampler
    [ -n "$SPID" ] && { stop_pid "$SPID" submitd; wait "$SPID" 2>/dev/null || true; }
    [ -n "$SINK_PID" ] && { stop_pid "$SINK_PID" smtp-sink; wait "$SINK_PID" 2>/dev/null || true; }
    [ -f "$TMP/submitd/submitd.log" ] && cp "$TMP/submitd/submitd.log" "$OUT/submitd.log"
    if [ -n "$PF_STARTED" ]; then
        postfix -c "$TMP/postfix/etc" stop >>"$OUT/setup.log" 2>&1 || true
        [ -f "$TMP/postfix/maillog" ] && cp "$TMP/postfix/maillog" "$OUT/postfix.maillog"
    fi
    [ -f "$TMP/postfix/dovecot.log" ] && cp "$TMP/postfix/dovecot.log" "$OUT/dovecot.log"
    [ -n "$DOVECOT_PID" ] && stop_pid "$DOVECOT_PID" dovecot
    if [ -n "$FS_IMG" ]; then
        umount "$TMP" 2>/dev/null || umount -l "$TMP" 2>/dev/null || true
        rm -f "$FS_IMG"
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Both servers' files (queues, journals, logs) on one file system. How fast a file system creates
# files depends on its history: ext4 without a journal (this machine's root) skips inodes freed
# in the last minutes when it allocates one, so a run right after many files were removed finds
# per-file queues several times slower (docs/performance.md). A fresh ext4 with mkfs's defaults
# (journal, data=ordered, as on a typical server) gives every run the same start.
case "${BENCH_FS:-fresh}" in
fresh)
    command -v mkfs.ext4 >/dev/null || die "BENCH_FS=fresh needs mkfs.ext4 (e2fsprogs); or BENCH_FS=tmpdir"
    FS_IMG="$TMP.img"
    truncate -s "${BENCH_FS_SIZE:-4G}" "$FS_IMG"
    mkfs.ext4 -q -F "$FS_IMG" >>"$OUT/setup.log" 2>&1 || die "mkfs.ext4 failed (see $OUT/setup.log)"
    mount -o loop "$FS_IMG" "$TMP" 2>>"$OUT/setup.log" ||
        die "cannot mount a loop file system on $TMP (see $OUT/setup.log); or BENCH_FS=tmpdir"
    chmod 755 "$TMP"
    FS_DESC="a fresh ext4 (mkfs.ext4 defaults: journal, data=ordered) on a loop device, image file in ${TMPDIR:-/tmp}"
    ;;
tmpdir) FS_DESC="$(findmnt -n -o FSTYPE,OPTIONS --target "$TMP" 2>/dev/null || echo unknown) (TMPDIR as it is)" ;;
*) die "BENCH_FS must be fresh or tmpdir" ;;
esac

free_ports() { python3 -c '
import socket, sys
s = [socket.socket() for _ in range(int(sys.argv[1]))]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])
for x in s: x.close()' "$1"; }
read -r SD_TLS SD_PLAIN PF_TLS PF_PLAIN SINK_PORT < <(free_ports 5)
wait_port() { # wait_port PORT NAME PID
    for _ in $(seq 1 200); do
        [ -n "${3:-}" ] && ! kill -0 "$3" 2>/dev/null && return 1
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    return 1
}

PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '\n/+')
export LOADGEN_PASSWORD="$PASSWORD"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=bench.localhost -keyout "$TMP/key.pem" -out "$TMP/cert.pem" \
    >>"$OUT/setup.log" 2>&1 || die "openssl req failed"
chmod 600 "$TMP/key.pem"
HASH=$(openssl passwd -6 -stdin <<<"$PASSWORD") # SHA512-CRYPT, 5,000 rounds, for Dovecot

# --- submitd (as bench/run.sh) --------------------------------------------------------------
mkdir -m 700 "$TMP/submitd"
cat >"$TMP/submitd/submitd.conf" <<EOF
# written by bench/peers.sh
hostname = bench.localhost
listen = 127.0.0.1:$SD_TLS starttls
listen = 127.0.0.1:$SD_PLAIN starttls allow-cleartext-auth no-require-tls
# d and d-tls hold BENCH_IDLE connections from 127.0.0.1 on one listener
max-connections = $((IDLE + 100))
max-connections-per-ip = $((IDLE + 100))
# delivery held, as it is for Postfix: the bench measures submission
delivery-threads = 0
EOF
ctl() { "$SUBMITCTL" -d "$TMP/submitd" "$@" >>"$OUT/setup.log" 2>&1 || {
    tail -n 5 "$OUT/setup.log" >&2; die "submitctl $* failed"; }; }
ctl tenant add "$DOMAIN"
ctl tenant set "$DOMAIN" smtp-auth on
ctl tenant set "$DOMAIN" security-defaults off
ctl policy add allow --allow-basic-smtp
ctl tenant set "$DOMAIN" default-policy allow
ctl tenant set "$DOMAIN" messages-per-minute 1000000
ctl tenant set "$DOMAIN" recipients-per-day 1000000
for i in $(seq 0 "$CLIENTS"); do printf '%s\n' "$PASSWORD" | ctl mailbox add "bench$i@$DOMAIN"; done
start_submitd() {
    "$SUBMITD" -d "$TMP/submitd" -f >>"$TMP/submitd/submitd.log" 2>&1 &
    SPID=$!
    for p in "$SD_TLS" "$SD_PLAIN"; do
        wait_port "$p" submitd "$SPID" || { tail -n 20 "$TMP/submitd/submitd.log" >&2; die "submitd does not accept on $p"; }
    done
}
start_submitd

# --- Postfix + Dovecot SASL -------------------------------------------------------------------
PF="$TMP/postfix"
mkdir -p "$PF/etc" "$PF/queue" "$PF/data" "$PF/dovecot-run"
chown postfix "$PF/data"
cp "$TMP/cert.pem" "$TMP/key.pem" "$PF/etc/"
LOGIN_MAP=""
: >"$PF/etc/users"
for i in $(seq 0 "$CLIENTS"); do
    LOGIN_MAP+="bench$i@$DOMAIN=bench$i@$DOMAIN, "
    printf 'bench%s@%s:{SHA512-CRYPT}%s\n' "$i" "$DOMAIN" "$HASH" >>"$PF/etc/users"
done
chgrp dovecot "$PF/etc/users" # Dovecot's auth process reads it as user dovecot
chmod 640 "$PF/etc/users"
sed -e "s|@D@|$PF|g" -e "s|@LOGIN_MAP@|${LOGIN_MAP%, }|" bench/peers/postfix-main.cf >"$PF/etc/main.cf"
sed -e "s|@PLAIN@|$PF_PLAIN|" -e "s|@TLS@|$PF_TLS|" -e "s|@MAXPROC@|$((PF_IDLE + 50))|" \
    bench/peers/postfix-master.cf >"$PF/etc/master.cf"
sed -e "s|@D@|$PF|g" bench/peers/dovecot.conf >"$PF/etc/dovecot.conf"
postfix -c "$PF/etc" check >>"$OUT/setup.log" 2>&1 || die "postfix check failed (see $OUT/setup.log)"
postfix -c "$PF/etc" start </dev/null >>"$OUT/setup.log" 2>&1 || die "postfix start failed (see $OUT/setup.log)"
PF_STARTED=1
dovecot -c "$PF/etc/dovecot.conf" </dev/null >>"$OUT/setup.log" 2>&1 || die "dovecot failed to start (see $OUT/setup.log)"
for _ in $(seq 1 100); do [ -s "$PF/dovecot-run/master.pid" ] && [ -S "$PF/queue/private/auth" ] && break; sleep 0.1; done
DOVECOT_PID=$(cat "$PF/dovecot-run/master.pid" 2>/dev/null) || die "dovecot wrote no master.pid"
PF_MASTER=$(tr -d ' ' <"$PF/queue/pid/master.pid" 2>/dev/null) || die "postfix master wrote no pid"
for p in "$PF_TLS" "$PF_PLAIN"; do
    wait_port "$p" postfix "$PF_MASTER" || die "postfix does not accept on $p"
done

# --- OpenSMTPD: not measured ---------------------------------------------------------------------
# Debian 12's opensmtpd (6.8.0p2) conflicts with postfix (both provide mail-transport-agent), and
# with Debian's OpenSSL 3 its privilege-separated key process fails every TLS handshake ("EVP
# lib", OpenSMTPD issues #1171 and #1239; tried with ECDSA and RSA keys). It offers AUTH only
# after STARTTLS, so none of the scenarios can run against it: docs/performance.md, "Peers".
NOTES+=("OpenSMTPD not measured: Debian 12's 6.8.0p2 fails every TLS handshake with OpenSSL 3 (OpenSMTPD issues 1171, 1239) and offers AUTH only after STARTTLS")

# --- smtp-sink: the ceiling -----------------------------------------------------------------
# Postfix's test server: accepts every command and discards the message (no queue, no fsync). It
# offers AUTH but answers it with 250 instead of 235, and has no TLS, so only scenario a runs
# against it, with loadgen --no-auth (AUTH is outside a's message phase anyway).
if want sink; then
    SINK=$(command -v smtp-sink || echo /usr/sbin/smtp-sink)
    [ -x "$SINK" ] || die "smtp-sink is missing (it comes with the postfix package)"
    "$SINK" -u nobody -m 1000 "127.0.0.1:$SINK_PORT" 1024 >"$OUT/smtp-sink.log" 2>&1 &
    SINK_PID=$!
    wait_port "$SINK_PORT" smtp-sink "$SINK_PID" || die "smtp-sink does not accept on $SINK_PORT"
fi

# --- measurement --------------------------------------------------------------------------------
# A server is the process trees under these PIDs; a peer without a cleartext-AUTH port has ""
# in PORT_PLAIN and skips a and b.
declare -A ROOTS=([submitd]="$SPID" [postfix]="$PF_MASTER $DOVECOT_PID")
declare -A PORT_PLAIN=([submitd]="$SD_PLAIN" [postfix]="$PF_PLAIN")
declare -A PORT_TLS=([submitd]="$SD_TLS" [postfix]="$PF_TLS")
SERVERS=(submitd postfix)
declare -A RATE
ROWS=()
FAILED=0
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }
# shellcheck disable=SC2086 # word splitting of the roots on purpose
cpu_ms() { python3 "$PROCTREE" cpu ${ROOTS[$1]}; }

# run SCENARIO SERVER TLS PORT LOADGEN-ARGS...: REPEAT runs; the one with the median msgs/s is
# reported (its log is $OUT/SCENARIO-SERVER.txt, each run's .N.txt beside it), with the peak
# memory over all of them.
run() {
    local sc=$1 srv=$2 tls=$3 port=$4
    shift 4
    local log="$OUT/$sc-$srv.txt" rc=0 res c0 c1 i runs=()
    # shellcheck disable=SC2086
    python3 "$PROCTREE" peak "$TMP/peak" ${ROOTS[$srv]} &
    SAMPLER=$!
    for i in $(seq 1 "$REPEAT"); do
        rc=0
        c0=$(cpu_ms "$srv")
        "$LOADGEN" --mode mail --user "bench%d@$DOMAIN" --duration "$DURATION" --tls "$tls" \
            --port "$port" --clients "$CLIENTS" "$@" >"$OUT/$sc-$srv.$i.txt" 2>&1 || rc=$?
        c1=$(cpu_ms "$srv")
        [ "$rc" -le 1 ] || { cat "$OUT/$sc-$srv.$i.txt" >&2; die "loadgen for $sc against $srv failed ($rc)"; }
        awk -v a="$c0" -v b="$c1" 'BEGIN { print "cpu_total_ms=" (b - a) }' >>"$OUT/$sc-$srv.$i.txt"
        res=$(grep '^RESULT ' "$OUT/$sc-$srv.$i.txt")
        [ "$(field failures "$res")" = 0 ] || FAILED=1
        runs+=("$(field msgs_per_s "$res") $(field mail_msgs_per_s "$res") $i")
    done
    stop_pid "$SAMPLER" sampler
    wait "$SAMPLER" 2>/dev/null || true
    SAMPLER=""
    # the median run by msgs/s (the message phase's when loadgen measured it)
    i=$(printf '%s\n' "${runs[@]}" | awk '{ r = ($2 != "nan") ? $2 : $1; print r, $3 }' |
        sort -n | awk -v n="$REPEAT" 'NR == int((n + 1) / 2) { print $2 }')
    cp "$OUT/$sc-$srv.$i.txt" "$log"
    res=$(grep '^RESULT ' "$log")
    local fails ok rate p50 p99 cpu peak
    fails=$(field failures "$res"); ok=$(field msgs_ok "$res")
    rate=$(field msgs_per_s "$res")
    cpu=$(awk -v t="$(sed -n 's/^cpu_total_ms=//p' "$log")" -v n="$ok" \
        'BEGIN { if (n > 0) printf "%.2f", t / n; else print "-" }')
    if [ "$(field mail_msgs_per_s "$res")" != nan ]; then # --sync-start: message phase only
        rate=$(field mail_msgs_per_s "$res")
        [ "$(field server_cpu_ms_per_msg "$res")" = nan ] || cpu=$(field server_cpu_ms_per_msg "$res")
    fi
    p50=$(field txn_p50_ms "$res"); p99=$(field txn_p99_ms "$res")
    local rsssum
    peak=$(awk '{ printf "%.0f", $1 / 1024 }' "$TMP/peak" 2>/dev/null || echo -)
    rsssum=$(awk '{ printf "%.0f", $2 / 1024 }' "$TMP/peak" 2>/dev/null || echo -)
    rm -f "$TMP/peak"
    RATE[$sc,$srv]=$rate
    local ratio="1.00"
    if [ "$srv" != submitd ]; then
        ratio=$(awk -v s="${RATE[$sc,submitd]:-}" -v r="$rate" \
            'BEGIN { if (s != "" && r > 0) printf "%.2f", s / r; else print "-" }')
    fi
    ROWS+=("| $sc | $srv | $rate | $p50 | $p99 | $ok | $fails | $cpu | $peak | $rsssum | $ratio |")
    printf 'bench-peers: %-6s %-9s %8s msgs/s  p50 %7s  p99 %8s ms  %5s ok %3s failed  CPU %6s ms/msg  %5s MiB PSS (RSS sum %s)\n' \
        "$sc" "$srv" "$rate" "$p50" "$p99" "$ok" "$fails" "$cpu" "$peak" "$rsssum"
}

# idle SCENARIO SERVER TLS PORT N: N authenticated sessions held open at once; the server's PSS
# sum before they are opened and while every one is held gives KiB per idle connection. submitd
# is restarted first (as in bench/run.sh: memory freed by earlier scenarios stays in its
# allocator and would hide part of the new sessions'); Postfix starts a new smtpd per session.
# Both get one AUTH per mailbox first (submitd's verified-credential cache is then warm, as on a
# server that has been running).
IDLE_ROWS=()
idle() {
    local sc=$1 srv=$2 tls=$3 port=$4 n=$5
    local log="$OUT/$sc-$srv.txt" ready="$TMP/$sc-$srv.ready" rc=0 res lpid before held=""
    if [ "$srv" = submitd ]; then
        stop_pid "$SPID" submitd
        wait "$SPID" 2>/dev/null || true
        start_submitd
        ROOTS[submitd]=$SPID
    fi
    "$LOADGEN" --mode idle --user "bench%d@$DOMAIN" --tls "$tls" --port "$port" \
        --clients "$CLIENTS" --connections "$CLIENTS" --hold 0 >"$OUT/$sc-$srv-warmup.txt" 2>&1 ||
        { cat "$OUT/$sc-$srv-warmup.txt" >&2; die "warm-up for $sc against $srv failed"; }
    sleep 1
    # shellcheck disable=SC2086
    before=$(python3 "$PROCTREE" mem ${ROOTS[$srv]})
    "$LOADGEN" --mode idle --user "bench%d@$DOMAIN" --tls "$tls" --port "$port" \
        --clients "$CLIENTS" --connections "$n" --duration "$IDLE_DURATION" --hold 120 \
        --ready-file "$ready" >"$log" 2>&1 &
    lpid=$!
    while [ ! -e "$ready" ] && kill -0 "$lpid" 2>/dev/null; do sleep 0.2; done
    if [ -e "$ready" ]; then
        sleep 2 # let the last replies settle
        # shellcheck disable=SC2086
        held=$(python3 "$PROCTREE" mem ${ROOTS[$srv]})
        rm -f "$ready" # ends the hold: loadgen QUITs every session
    fi
    wait "$lpid" || rc=$?
    [ "$rc" -le 1 ] || { cat "$log" >&2; die "loadgen for $sc against $srv failed ($rc)"; }
    res=$(grep '^RESULT ' "$log")
    local k fails per rper
    k=$(field held "$res"); fails=$(field failures "$res")
    [ "$fails" = 0 ] || FAILED=1
    read -r b_pss b_rss _ <<<"$before"
    read -r h_pss h_rss h_procs <<<"${held:-0 0 0}"
    per=$(awk -v b="$b_pss" -v h="$h_pss" -v n="$k" \
        'BEGIN { if (n > 0 && h > 0) printf "%.1f", (h - b) / n; else print "-" }')
    rper=$(awk -v b="$b_rss" -v h="$h_rss" -v n="$k" \
        'BEGIN { if (n > 0 && h > 0) printf "%.1f", (h - b) / n; else print "-" }')
    IDLE_ROWS+=("| $sc | $srv | $k | $(field open_s "$res") | $(field auth_p50_ms "$res") | \
$fails | $(awk -v k="$b_pss" 'BEGIN { printf "%.1f", k / 1024 }') | \
$(awk -v k="$h_pss" 'BEGIN { printf "%.1f", k / 1024 }') | $per | $rper | $h_procs |")
    printf 'bench-peers: %-6s %-9s %6s held  %6s KiB/conn PSS (RSS sum %s)  %s processes  %s failed\n' \
        "$sc" "$srv" "$k" "$per" "$rper" "$h_procs" "$fails"
}

A_ARGS=(--per-conn 50 --connections "$CLIENTS" --sync-start)
B_ARGS=(--per-conn 1 --connections "$B_CONNS")
E_ARGS=(--per-conn 5 --size 1048576 --connections "$CLIENTS" --sync-start)
for srv in "${SERVERS[@]}"; do
    want a || break
    if [ -n "${PORT_PLAIN[$srv]}" ]; then
        run a "$srv" none "${PORT_PLAIN[$srv]}" "${A_ARGS[@]}" --cpu-cmd "python3 $PROCTREE cpu ${ROOTS[$srv]}"
    else
        ROWS+=("| a | $srv | skipped: no AUTH without TLS | | | | | | | | |")
    fi
done
if want sink; then
    ROOTS[smtp-sink]=$SINK_PID
    run a smtp-sink none "$SINK_PORT" "${A_ARGS[@]}" --no-auth \
        --cpu-cmd "python3 $PROCTREE cpu $SINK_PID"
    SINK_RATIO=$(awk -v s="${RATE[a,submitd]:-}" -v k="${RATE[a,smtp-sink]}" \
        'BEGIN { if (s > 0 && k != "") printf "%.2f", k / s; else print "-" }')
    NOTES+=("smtp-sink: Postfix's test server (accepts and discards; no queue, no fsync), the ceiling of the SMTP exchange with this loadgen on this machine; it answers AUTH with 250 (not 235), so loadgen ran --no-auth against it. smtp-sink msgs/s ÷ submitd msgs/s on a: $SINK_RATIO (issue 6 target: at most 1.6)")
fi
for srv in "${SERVERS[@]}"; do
    want a-tls || break
    run a-tls "$srv" starttls "${PORT_TLS[$srv]}" "${A_ARGS[@]}" --cpu-cmd "python3 $PROCTREE cpu ${ROOTS[$srv]}"
done
for srv in "${SERVERS[@]}"; do
    want b || break
    if [ -n "${PORT_PLAIN[$srv]}" ]; then
        run b "$srv" none "${PORT_PLAIN[$srv]}" "${B_ARGS[@]}"
    else
        ROWS+=("| b | $srv | skipped: no AUTH without TLS | | | | | | | | |")
    fi
done
for srv in "${SERVERS[@]}"; do
    want b-tls || break
    run b-tls "$srv" starttls "${PORT_TLS[$srv]}" "${B_ARGS[@]}"
done
for srv in "${SERVERS[@]}"; do
    want e || break
    run e "$srv" none "${PORT_PLAIN[$srv]}" "${E_ARGS[@]}" --cpu-cmd "python3 $PROCTREE cpu ${ROOTS[$srv]}"
done
for srv in "${SERVERS[@]}"; do
    want e-tls || break
    run e-tls "$srv" starttls "${PORT_TLS[$srv]}" "${E_ARGS[@]}" --cpu-cmd "python3 $PROCTREE cpu ${ROOTS[$srv]}"
done
for sc in d d-tls; do
    want "$sc" || continue
    tls=none
    [ "$sc" = d-tls ] && tls=starttls
    for srv in "${SERVERS[@]}"; do
        n=$IDLE port=${PORT_PLAIN[$srv]}
        [ "$srv" = postfix ] && n=$PF_IDLE
        [ "$tls" = starttls ] && port=${PORT_TLS[$srv]}
        idle "$sc" "$srv" "$tls" "$port" "$n"
    done
done
if want d || want d-tls; then
    NOTES+=("d, d-tls: KiB per connection = (PSS sum while all are held - PSS sum before) / connections held. Postfix needs an smtpd process per connection (maxproc $((PF_IDLE + 50)) here), so it held $PF_IDLE connections and submitd $IDLE; idle smtpd processes left by earlier scenarios are reused for some of Postfix's")
fi

# queue check: what each server holds now (accepted, not delivered)
QUEUED_PF=$(find "$PF/queue/hold" "$PF/queue/incoming" "$PF/queue/active" "$PF/queue/deferred" -type f 2>/dev/null | wc -l)
NOTES+=("Postfix queue after the run: $QUEUED_PF messages held (none delivered)")

CPU=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
{
    echo "Machine: $(nproc) CPUs, ${CPU:-unknown CPU}, $(uname -sr); $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo "Peers: Postfix $(postconf -h mail_version 2>/dev/null) + Dovecot $(dovecot --version 2>/dev/null | cut -d' ' -f1)"
    echo "File system: $FS_DESC"
    echo "Caps: $CLIENTS clients; a: $CLIENTS x 50 messages, b: $B_CONNS connections, e: $CLIENTS x 5 x 1 MiB; ${DURATION} s per scenario; each scenario but d run $REPEAT times per server, the median run (by msgs/s) shown"
    echo
    echo "| scenario | server | msgs/s | p50 ms | p99 ms | msgs ok | failures | server CPU ms/msg | peak PSS MiB | peak RSS sum MiB | submitd msgs/s ÷ this |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    if [ "${#IDLE_ROWS[@]}" -gt 0 ]; then
        echo
        echo "| scenario | server | connections held | seconds to open all | AUTH p50 ms | failures | PSS before MiB | PSS held MiB | KiB per connection (PSS) | KiB per connection (RSS sum) | processes held |"
        echo "|---|---|---|---|---|---|---|---|---|---|---|"
        printf '%s\n' "${IDLE_ROWS[@]}"
    fi
    echo
    printf -- '- %s\n' "${NOTES[@]}"
} | tee "$OUT/results.md"
exit "$FAILED"
