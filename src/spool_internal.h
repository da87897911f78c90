/* spool_internal.h: what spool.c, spool_commit.c and spool_journal.c share (not for other
 * modules; they use spool.h). The structures, the constants of the queue file format and the
 * helpers each part needs from the others. Design and file formats: docs/spool.md. */
#ifndef SUBMITD_SPOOL_INTERNAL_H
#define SUBMITD_SPOOL_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spool.h"
#include "spool_journal.h"

/* Queue files are written in version 2; version 1 files (no DSN parameters) are still read.
 * Both first lines have the same length. */
#define SPOOL_MAGIC "SUBMITD-QUEUE 2\n"
#define SPOOL_MAGIC_V1 "SUBMITD-QUEUE 1\n"
#define SPOOL_MAGIC_LEN (sizeof SPOOL_MAGIC - 1)
_Static_assert(sizeof SPOOL_MAGIC == sizeof SPOOL_MAGIC_V1,
               "queue file first lines differ in length");
/* Message bytes are collected into this much memory per message before a write(2); a message
 * that fits entirely goes through the journal (docs/spool.md). */
#define SPOOL_BUF_SIZE (64 * 1024)
/* A journal segment is closed (a new one started) once it holds this much. */
#define SPOOL_SEGMENT_MAX (4 * 1024 * 1024)
/* Journalled messages not yet written to queue/ beyond which new ones take the file path, so a
 * slow disk holds memory bounded. */
#define SPOOL_BACKLOG_MAX (32 * 1024 * 1024)

/* One journal segment file, DIR/spool/journal/SEGMENT (docs/spool.md). */
struct spool_segment {
    struct spool_segment *next; /* in the closed list */
    int fd;
    char name[24];
    uint64_t size;                 /* octets appended */
    uint64_t appended;             /* records made durable in it */
    uint64_t materialized;         /* of those, records now in queue/ */
    char (*ids)[QUEUE_ID_LEN + 1]; /* the materialized ones, announced when it is emptied */
    size_t n_ids, cap_ids;
};

struct spool {
    char *dir;            /* DIR/spool, for error messages */
    int tmp_fd;           /* DIR/spool/tmp */
    int queue_fd;         /* DIR/spool/queue */
    int journal_fd;       /* DIR/spool/journal; -1 for a reader */
    int hold_fd;          /* DIR/spool/hold: held messages (spool_delivery.c) */
    int state_fd;         /* DIR/spool/state: delivery state files (queue_state.c) */
    int recovered;        /* files removed from tmp/ at open */
    int replayed;         /* journal records written to queue/ at open */
    bool journal;         /* small messages go through the journal (spool_set_journal) */
    spool_ready_fn ready; /* spool_set_ready */
    void *ready_arg;

    pthread_mutex_t lock; /* guards everything below */
    pthread_cond_t wake;  /* pending became non-empty, or stopping was set */
    struct spool_file *pending;
    struct spool_file **pending_tail;
    bool started;
    bool stopping;
    pthread_t thread;
    uint64_t batches;
    int64_t last_us; /* id clock: strictly increasing within this process */

    /* the journal (spool_journal.c), also under lock */
    pthread_cond_t journal_cond; /* appending or resetting changed; work for the materializer */
    struct spool_segment *active;
    struct spool_segment *closed; /* full or failed segments waiting for their records */
    bool appending;               /* the commit thread writes to `active` */
    bool resetting;               /* the materializer empties `active` */
    struct spool_file *mat_pending, **mat_tail; /* durable in the journal, not yet in queue/ */
    size_t mat_backlog;                         /* octets in mat_pending and being written */
    bool mat_started, mat_stopping;
    pthread_t mat_thread;
};

struct spool_file {
    struct spool *spool;
    struct spool_file *next; /* in the pending list, then in a batch */
    int fd;                  /* tmp/ID once created (-1 while the message is in memory) */
    int err;                 /* first failure, sticky */
    bool renamed;            /* now lives in queue/ */
    char id[QUEUE_ID_LEN + 1];
    uint64_t size; /* message octets accepted by spool_write */
    spool_done_fn done;
    void *arg;
    char *head; /* SPOOL_MAGIC and the envelope line: the start of the queue file */
    size_t head_len;
    bool journaled;                /* on its way through the journal */
    struct spool_segment *segment; /* the journal segment that holds it */
    char record[70];               /* its journal record header (JOURNAL_HEADER_LEN) */
    size_t used;                   /* octets waiting in buf */
    unsigned char buf[SPOOL_BUF_SIZE];
};

/* spool.c */
int spool_write_all(int fd, const void *buf, size_t n);
/* Writes the head and the buffered bytes into tmp/ID (creating it) and leaves f->fd open. */
int spool_file_materialize(struct spool_file *f);
void spool_file_free(struct spool_file *f);
/* True when id is a queue id (QUEUE_ID_LEN uppercase hex digits), so never a path. */
bool spool_valid_id(const char *id);
/* Collects the queue ids named in directory dirfd into a sorted array of QUEUE_ID_LEN + 1 octet
 * strings (*ids NULL when *n is 0; free it). Other names are ignored. 0, or -1 with errno. */
int spool_read_ids(int dirfd, char **ids, size_t *n);

/* spool_delivery.c */
/* At open (after the journal replay): removes a queue/ID that duplicates hold/ID (a journal
 * record replayed for a message held before the crash) and every state/ID whose message is in
 * neither queue/, hold/ nor the journal. 0, or -1 with a reason in err. */
int spool_delivery_recover(struct spool *s, char *err, size_t errlen);
/* Closes hold_fd and state_fd (spool_close). */
void spool_delivery_close(struct spool *s);

/* spool_envelope.c: the envelope line (without its LF, format version 2) as a malloc'd string,
 * or NULL with a reason in err; and back from a file of format `version` (1 or 2): false when
 * it breaks the format or does not name `id`. */
char *spool_envelope_json(const struct spool_envelope *env, const char *id, char *err,
                          size_t errlen);
bool spool_envelope_parse(const char *line, size_t len, const char *id, int version,
                          struct spool_envelope *env);

/* spool_commit.c: makes a batch of files (fd open on tmp/ID, or f->err set) durable in
 * queue/: f->err tells each one's fate; a failed one leaves no file. */
void spool_sync_files(struct spool *s, struct spool_file *batch);
/* spool_sync_files, then each `done` (when set); frees the files. */
void spool_commit_files(struct spool *s, struct spool_file *batch);

/* spool_journal.c */
/* Opens (making) DIR/spool/journal and replays what a crash left there into queue/. */
int spool_journal_open(struct spool *s, int spool_fd, char *err, size_t errlen);
int spool_journal_start(struct spool *s);
void spool_journal_stop(struct spool *s);
/* Appends a batch of in-memory messages to the journal, makes it durable, calls each `done`
 * and hands the files to the materializer (or frees them on failure). */
void spool_journal_commit(struct spool *s, struct spool_file *batch);
bool spool_journal_has_room(struct spool *s); /* backlog under SPOOL_BACKLOG_MAX; under lock */
/* A reader's view of the journal (submitctl): opens DIR/spool/journal when it exists. */
int spool_journal_open_reader(struct spool *s, int spool_fd);
/* Calls fn for every intact record of every segment (mtime_ms: the segment's modification
 * time) until fn returns non-zero. Returns 0, or -1 with errno. */
typedef int (*spool_journal_fn)(const struct journal_record *r, int64_t mtime_ms, void *arg);
int spool_journal_scan(struct spool *s, spool_journal_fn fn, void *arg);

#endif
