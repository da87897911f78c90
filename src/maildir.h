/* maildir.h: final delivery into a Maildir (the qmail layout: tmp/, new/, cur/), the safe way:
 * write tmp/UNIQUE, fsync it, link into new/, fsync new/ (docs/delivery.md). The path comes from
 * a template per tenant: %d the recipient's domain, %u its local part, %a the whole address
 * (lower case; each checked: no '/', not "." or "..", no leading '.', no control octets).
 * The stored message is Return-Path: <sender> and Delivered-To: <recipient>, then the message
 * with LF line ends (the Maildir convention; Dovecot stores LF too). */
#ifndef SUBMITD_MAILDIR_H
#define SUBMITD_MAILDIR_H

#include <stddef.h>
#include <stdio.h>

#include "delivery.h"
#include "spool.h"

/* Expands template for rcpt into out; returns 0, or -1 with a reason in err (a permanent
 * failure: the address cannot name a directory safely). */
int maildir_path(const char *template, const char *rcpt, char *out, size_t cap, char *err,
                 size_t errlen);

/* Delivers the message (msg positioned at its first octet, env->size octets) for recipient
 * env->rcpts[index]; missing Maildir directories are made (0700). res: OK once new/ is
 * fsynced; TEMP on I/O trouble (disk full: 4.3.1); PERM when the template cannot name a safe
 * path (5.1.3). `hostname` goes into the unique file name. */
void maildir_deliver(const char *template, const struct spool_envelope *env, size_t index,
                     FILE *msg, const char *hostname, struct delivery_rcpt_result *res);

#endif
