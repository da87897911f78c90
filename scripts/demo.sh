#!/usr/bin/env bash
# make run: creates ./var with a demo tenant and mailbox (once), then runs submitd in the
# foreground on 127.0.0.1:2587 (STARTTLS) and 127.0.0.1:2465 (implicit TLS).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${SUBMITD_DIR:-./var}
CTL="build/submitctl -d $DIR"
USER_ADDR=demo@demo.example
PASS=demo-password
if [ ! -f "$DIR/directory.db" ] || ! $CTL tenant show demo.example >/dev/null 2>&1; then
    echo "== creating $DIR with tenant demo.example and mailbox $USER_ADDR"
    $CTL tenant add demo.example
    # A new tenant starts as Exchange Online's do: SMTP AUTH off, security defaults on, basic
    # authentication blocked by the default policy. The demo opens all three gates:
    $CTL tenant set demo.example smtp-auth on
    $CTL tenant set demo.example security-defaults off
    $CTL tenant set demo.example default-policy allow-basic
    printf '%s\n' "$PASS" | $CTL mailbox add "$USER_ADDR"
fi
# Delivery: the demo delivers into Maildir directories under ./var/maildir (a smarthost would be
# `tenant route demo.example relay HOST:587 --auth ...`; docs/delivery.md).
if ! $CTL tenant route demo.example 2>/dev/null | grep -q "^route *maildir"; then
    $CTL tenant route demo.example maildir "$(cd "$DIR" && pwd)/maildir/%d/%u/Maildir"
fi
cat <<EOT

== submitd is starting in the foreground (Ctrl-C stops it). From another terminal:

  swaks --server 127.0.0.1:2587 --tls -a PLAIN -au $USER_ADDR -ap $PASS \\
        --from $USER_ADDR --to someone@example.net

  printf 'Subject: hello\r\n\r\nHello from curl.\r\n' > /tmp/msg.txt
  curl --ssl-reqd -k smtp://127.0.0.1:2587 --user '$USER_ADDR:$PASS' \\
       --mail-from $USER_ADDR --mail-rcpt someone@example.net -T /tmp/msg.txt

  implicit TLS: swaks --server 127.0.0.1:2465 --tls-on-connect ... / curl -k smtps://127.0.0.1:2465 ...

Break it and explain it:
  $CTL tenant set demo.example smtp-auth off      # swaks now gets 535 5.7.139 ... for the Tenant
  $CTL signins --mailbox $USER_ADDR               # the attempt, its gate and reference id
  $CTL explain $USER_ADDR                         # every gate, and the command that fixes it
  $CTL mailbox set $USER_ADDR smtp-auth on        # the mailbox override wins: mail flows again
  $CTL queue list                                 # what was accepted and not yet delivered
  ls $DIR/maildir/example.net/someone/Maildir/new  # delivered (the demo's route is Maildir)
  $CTL queue log <REFERENCE or QUEUE ID>          # what happened to each recipient

OAuth (XOAUTH2 / OAUTHBEARER) with the tenant's built-in issuer:
  TOKEN=\$($CTL token issue $USER_ADDR)
  curl --ssl-reqd -k smtp://127.0.0.1:2587 --user '$USER_ADDR:' --oauth2-bearer "\$TOKEN" \\
       --mail-from $USER_ADDR --mail-rcpt someone@example.net -T /tmp/msg.txt

EOT
exec build/submitd -d "$DIR" -f
