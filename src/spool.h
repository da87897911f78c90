/* spool.h: the durable queue (SPEC section 7). spool_commit hands a message to the group-commit
 * thread, which makes a batch of messages durable together and only then reports success (the
 * caller then sends 250): a message that fits in memory is appended to the journal with one
 * fdatasync for the whole batch and lives there until it is delivered, held or deleted (a
 * log-structured queue: no file per message); a larger one is written to DIR/spool/tmp/ID as it
 * arrives, fdatasync'd, renamed into queue/, and queue/ fsynced once per batch. On start, files
 * left in tmp/ (no 250 was ever sent for them) are removed and the journal is indexed again.
 * Either way a message is found by its queue id. Formats: docs/spool.md. */
#ifndef SUBMITD_SPOOL_H
#define SUBMITD_SPOOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "protocol_limits.h"

struct spool_envelope {
    char queue_id[QUEUE_ID_LEN + 1]; /* set by spool_create; read back by spool_load */
    int64_t received_ms;
    char sender[SMTP_PATH_MAX + 1]; /* "" = null sender */
    char **rcpts;                   /* n_rcpts addresses */
    size_t n_rcpts;
    char auth_user[SMTP_PATH_MAX + 1]; /* authenticated identity */
    char tenant[SMTP_DOMAIN_MAX + 1];
    char client_ip[64];
    int client_port;
    char helo[256];
    char session[REF_ID_LEN + 1];
    char body[16]; /* "7BIT", "8BITMIME", "BINARYMIME" */
    bool smtputf8;
    uint64_t size; /* message octets (spool_load; spool_create ignores it) */
    /* queue file version 2 (docs/spool.md); version 1 files read as "not given" */
    char ref[REF_ID_LEN + 1];      /* reference of the accepted submission event, "" none */
    char envid[DSN_ENVID_MAX + 1]; /* RFC 3461 ENVID, xtext-decoded; "" = not given */
    char ret[5];                   /* RFC 3461 RET: "FULL", "HDRS" or "" = not given */
    unsigned *notify; /* n_rcpts entries of DSN_NOTIFY_* bits (0 = not given), or NULL */
    char **orcpt;     /* n_rcpts entries, each "addr-type;decoded address" or NULL; or NULL */
    bool is_dsn;      /* a delivery status notification made by this server */
};

/* RFC 3461 4.1 NOTIFY words and their DSN_NOTIFY_* bits, in the order queue files write them. */
struct spool_notify_word {
    const char *word;
    unsigned bit;
};
#define SPOOL_NOTIFY_WORDS 4
extern const struct spool_notify_word spool_notify_words[SPOOL_NOTIFY_WORDS];

struct spool_entry {
    const struct spool_envelope *env;
    int64_t queued_ms; /* file time */
};

struct spool;
struct spool_file;

typedef void (*spool_done_fn)(void *arg, int err, const char *queue_id);

/* Creates DIR/spool/{tmp,queue} (mode 0700) if needed and removes what tmp/ holds. Returns NULL
 * with a reason in err. */
struct spool *spool_open(const char *datadir, char *err, size_t errlen);
/* Opens the spool to read it (submitctl) while a server may be writing: no recovery, tmp/ is
 * left alone. */
struct spool *spool_open_reader(const char *datadir, char *err, size_t errlen);
/* Starts the group-commit thread (the server does; submitctl does not). Returns 0 or -1. */
int spool_start(struct spool *s);
/* Stops the thread after it has finished every commit handed to it. */
void spool_close(struct spool *s);
/* How many leftover files spool_open removed from tmp/. */
int spool_recovered(const struct spool *s);
/* How many messages spool_open found living in the journal. */
int spool_replayed(const struct spool *s);
/* Small messages go through the journal (the default; docs/spool.md). Off: every message gets
 * its own file from the start, as a reader's spool does. Call before spool_start. */
void spool_set_journal(struct spool *s, bool on);
/* Tells fn (on a spool thread) the id of every committed message once it is durable and may be
 * delivered. Messages already queued at open are not announced: the caller lists them
 * (spool_ids). Call before spool_start. */
typedef void (*spool_ready_fn)(const char *queue_id, void *arg);
void spool_set_ready(struct spool *s, spool_ready_fn fn, void *arg);
/* A message still queued when its journal segment is this old is moved to a file of its own in
 * queue/ (default 5 minutes; docs/spool.md). For tests. Call before spool_start. */
void spool_set_journal_age(struct spool *s, int64_t ms);
/* How often the journal's keeper looks at the segments besides after every batch (default 1 s;
 * 0: all the time). For tests. Call before spool_start. */
void spool_set_keeper_tick(struct spool *s, long ms);
/* While paused the keeper does nothing (no spare made, nothing removed or moved). For tests. */
void spool_set_keeper_paused(struct spool *s, bool paused);
/* Whether the journal's keeper has a spare segment file ready; for tests. */
bool spool_spare_ready(struct spool *s);
/* How many group commits (batches) have completed; for tests and statistics. */
uint64_t spool_batches(const struct spool *s);

/* Opens a new message: assigns the queue id (into env->queue_id too), writes the envelope.
 * Returns NULL with a reason in err (e.g. disk full). */
struct spool_file *spool_create(struct spool *s, struct spool_envelope *env, char *err,
                                size_t errlen);
const char *spool_file_id(const struct spool_file *f);
/* Buffered append of message bytes. Returns 0, or -1 with errno; the first error is kept and
 * later writes do nothing (check spool_file_error before committing). */
int spool_write(struct spool_file *f, const void *buf, size_t n);
int spool_file_error(const struct spool_file *f);     /* 0 or the errno of the first failure */
uint64_t spool_file_size(const struct spool_file *f); /* message octets written so far */
/* Flushes, makes durable (batched with other messages) and moves into queue/. `done` runs on
 * the group-commit thread with err 0 (durable, queue id valid) or an errno (nothing stored:
 * the file is removed). The spool_file is freed either way. Without spool_start (or after
 * spool_close began) the commit runs, and `done` is called, before spool_commit returns. */
void spool_commit(struct spool_file *f, spool_done_fn done, void *arg);
/* Discards a message being written (removes its file). */
void spool_abort(struct spool_file *f);

/* --- the delivery side (docs/spool.md, "Delivery"): DIR/spool/hold/ holds messages an
 * administrator held; DIR/spool/state/ID is each message's delivery state (queue_state.h). */
/* queue/ID (or the journal) -> hold/ID and back, each directory fsynced. -1 with ENOENT when
 * not there; EAGAIN when a reader's spool is asked to hold a message living in the journal. */
int spool_hold(struct spool *s, const char *queue_id);
int spool_release(struct spool *s, const char *queue_id);
bool spool_is_held(struct spool *s, const char *queue_id);
/* Removes finished (or deleted) messages: unlinks queue/ID or hold/ID of each, fsyncs those
 * directories once, writes one group-committed tombstone for those living in the journal, and
 * only then unlinks their state files, so that after a crash a removed message never comes back
 * without its state (and is never delivered twice). Returns 0, or -1 with errno (EAGAIN: a
 * reader's spool cannot remove a message living in the journal); messages that could not be
 * removed stay whole. */
int spool_remove(struct spool *s, const char *const *queue_ids, size_t n);
/* Calls cb for every id in queue/ and the journal (held false) or hold/ (held true), in id
 * order. At open, a state file without its message is removed (its message was removed).
 * Returns the count or -1. */
int spool_ids(struct spool *s, bool held, void (*cb)(const char *queue_id, void *arg), void *arg);

/* Queue listing, oldest first. Returns the number of messages or -1. */
int spool_list(struct spool *s, void (*cb)(const struct spool_entry *, void *), void *arg);
/* Reads one message's envelope (from queue/, hold/ or the journal); *body_offset is where the
 * message starts in the file.
 * Returns 0, -1 with errno ENOENT when there is no such message, or -1. */
int spool_load(struct spool *s, const char *queue_id, struct spool_envelope *env,
               long *body_offset);
/* Opens the queued file for reading at the start of the message. */
FILE *spool_open_message(struct spool *s, const char *queue_id);
void spool_envelope_free(struct spool_envelope *env); /* frees rcpts, notify, orcpt */

#endif
