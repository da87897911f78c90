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
#include "spool_index.h"
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
/* The journal keeps a message until it is delivered; a message still queued when its segment is
 * this old, or when the journal holds more than SPOOL_SEGMENTS_MAX segments, is moved to a file
 * of its own in queue/ so that the segment can go (docs/spool.md, "Journal"). */
#define SPOOL_JOURNAL_AGE_MS (300 * 1000)
#define SPOOL_SEGMENTS_MAX 64
/* The keeper looks at the segments after every batch, and at least this often. */
#define SPOOL_KEEPER_TICK_MS 1000

/* One journal segment file, DIR/spool/journal/SEGMENT (docs/spool.md). Segments form a list,
 * oldest first; the newest may be the active one (appended to). */
struct spool_segment {
    struct spool_segment *next; /* the next younger segment */
    int fd;                     /* read and append */
    char name[24];
    uint64_t size;   /* octets appended (or read at open) */
    uint64_t filled; /* octets the file held when it became this segment (a spare's zeros) */
    uint64_t live;   /* records in it whose messages still live in the journal */
    int64_t last_ms; /* wall-clock time of its last append (its mtime at open) */
    bool pinned;     /* holds a message the index has no room for: kept until the next start */
    bool reusable;   /* started by this process: every record in it is keyed by its name, so
                        once nothing in it lives it may become the spare */
};

/* The spare: the file the next segment starts from, DIR/spool/journal/SPOOL_SPARE_NAME (a name
 * that is not a segment's), filled to SPOOL_SEGMENT_MAX octets ahead of time by the keeper. */
#define SPOOL_SPARE_NAME "spare"
/* A new spare is made, or an emptied segment filled up to be one, only while the file system
 * has this much free besides: a nearly full one keeps its space for what needs it now. */
#define SPOOL_SPARE_ROOM (64 * 1024 * 1024)
/* The unit of the page cache (and of direct I/O's alignment) the journal writes in: the
 * keeper's direct zero fill starts on it, and a batch written over a spare's zeros is padded
 * with zeros to it, so that no write covers part of a page the cache does not hold (which would
 * first read that page from the disk). 4096 is the page size of x86-64 and most arm64 kernels. */
#define SPOOL_PAGE 4096

struct spool {
    char *dir;            /* DIR/spool, for error messages */
    int tmp_fd;           /* DIR/spool/tmp */
    int queue_fd;         /* DIR/spool/queue */
    int journal_fd;       /* DIR/spool/journal; -1 for a reader */
    int hold_fd;          /* DIR/spool/hold: held messages (spool_delivery.c) */
    int state_fd;         /* DIR/spool/state: delivery state files (queue_state.c) */
    int recovered;        /* files removed from tmp/ at open */
    int replayed;         /* messages found living in the journal at open */
    bool journal;         /* small messages go through the journal (spool_set_journal) */
    bool reader;          /* spool_open_reader: reads the journal from disk, writes nothing */
    bool reader_indexed;  /* a reader has indexed the journal (its snapshot) */
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

    /* the journal (spool_journal.c, spool_keeper.c), also under lock */
    pthread_cond_t journal_cond;   /* work for the keeper: a segment started, a pause, a stop */
    pthread_cond_t append_cond;    /* appending went false */
    struct spool_segment *segs;    /* every open segment, oldest first */
    struct spool_segment *active;  /* the newest one while appends go to it, else NULL */
    bool appending;                /* the commit thread is appending a batch... */
    struct spool_segment *writing; /* ...to this segment (NULL until it has one): never removed */
    struct spool_segment *spare;   /* ready for the next segment (the keeper makes it); or NULL */
    bool spare_taking;             /* the commit thread is renaming the spare it took: the keeper
                                      must not make another under the same name meanwhile */
    uint64_t segment_clock;        /* the newest segment name's number (spool_journal.c) */
    struct journal_index index;    /* messages living in the journal (a writer's spool) */
    int64_t journal_age_ms;        /* SPOOL_JOURNAL_AGE_MS unless spool_set_journal_age */
    long keeper_tick_ms;           /* SPOOL_KEEPER_TICK_MS unless spool_set_keeper_tick */
    bool keeper_started, keeper_stopping;
    bool keeper_paused; /* spool_set_keeper_paused */
    pthread_t keeper_thread;
    /* Serializes moving messages out of the journal (to queue/ or hold/) with removing them:
     * one message never ends up both moved and removed. Taken before `lock`. */
    pthread_mutex_t move_lock;
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
    bool journaled;  /* on its way through the journal */
    bool tomb;       /* a tombstone: the message `id` left the journal */
    char record[70]; /* its journal record header (JOURNAL_HEADER_LEN) */
    size_t used;     /* octets waiting in buf */
    unsigned char buf[SPOOL_BUF_SIZE];
};

/* spool.c */
int spool_write_all(int fd, const void *buf, size_t n);
/* Whether dirfd holds an entry of that name (not following a symbolic link). */
bool spool_exists_in(int dirfd, const char *name);
/* from_dir/from -> to_dir/to, never replacing a file: renameat2(RENAME_NOREPLACE), or where the
 * file system lacks the flag a look first and renameat. 0, or -1 with errno (EEXIST when to_dir/to
 * exists). */
int spool_rename_noreplace(int from_dir, const char *from, int to_dir, const char *to);
/* A growing array of queue ids. */
struct spool_idvec {
    char (*v)[QUEUE_ID_LEN + 1];
    size_t n, cap;
    bool failed; /* an add ran out of memory */
};
/* Appends id; false (and `failed` set) when out of memory. */
bool spool_idvec_add(struct spool_idvec *vec, const char *id);
/* strcmp for qsort and bsearch over queue ids (arrays of QUEUE_ID_LEN + 1 octets). */
int spool_cmp_id(const void *a, const void *b);
/* A tombstone for id (spool_journal_forget); NULL when out of memory. */
struct spool_file *spool_tombstone(struct spool *s, const char *id);
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
/* Opens (making) DIR/spool/journal and indexes the messages a previous run left there. */
int spool_journal_open(struct spool *s, int spool_fd, char *err, size_t errlen);
/* Appends a batch of in-memory messages and tombstones to the journal, makes it durable, updates
 * the index, calls each `done`, announces the messages and frees the files. */
void spool_journal_commit(struct spool *s, struct spool_file *batch);
bool spool_journal_has_room(struct spool *s); /* the keeper runs; under lock */
/* Durably forgets ids from the journal (tombstones, one group commit); the caller holds
 * move_lock and has put every id's message elsewhere or wants it gone. 0, or -1 with errno. */
int spool_journal_forget(struct spool *s, const char (*ids)[QUEUE_ID_LEN + 1], size_t n);
/* A reader's view of the journal (submitctl): opens DIR/spool/journal when it exists. */
int spool_journal_open_reader(struct spool *s, int spool_fd);
/* Calls fn for every message living in the journal (an intact record not forgotten by a later
 * tombstone), reading the segments from disk (mtime_ms: the segment's modification time) until
 * fn returns non-zero. Returns 0, or -1 with errno. */
typedef int (*spool_journal_fn)(const struct journal_record *r, int64_t mtime_ms, void *arg);
int spool_journal_scan(struct spool *s, spool_journal_fn fn, void *arg);
/* One message's queue file from the journal: 1 with *payload (malloc'd; NULL to ask only
 * whether it is there) and *len, 0 when the journal does not hold it, -1 with errno. */
int spool_journal_get(struct spool *s, const char *id, unsigned char **payload, size_t *len);
/* The ids of the messages living in the journal, sorted (*ids NULL when *n is 0; free it).
 * 0, or -1 with errno. */
int spool_journal_ids(struct spool *s, char (**ids)[QUEUE_ID_LEN + 1], size_t *n);
/* Writes payload as DIR/spool/tmp/ID, fdatasync'd, and renames it into dirfd (queue/ or hold/,
 * never replacing a file there: EEXIST); the caller fsyncs dirfd. 0, or -1 with errno. */
int spool_journal_extract(struct spool *s, const char *id, const unsigned char *payload, size_t len,
                          int dirfd);

/* Shared by spool_journal.c and spool_journal_read.c. */
int64_t spool_now_ms(void); /* wall-clock milliseconds */
/* Puts g at the young end of the segment list. Under lock. */
void spool_segment_link(struct spool *s, struct spool_segment *g);
/* Drops id from the index (its segment holds one live message less). Under lock. */
void spool_index_drop(struct spool *s, const char *id);
/* Reads DIR/spool/journal/NAME whole into *buf (malloc'd). 0, or -1 with errno. */
int spool_journal_read_whole(int dirfd, const char *name, unsigned char **buf, size_t *len);
/* The segment names in journal/, sorted (oldest first); NULL with *n = 0 when there are none
 * (errno 0) or on a failure (errno set). */
char **spool_journal_names(struct spool *s, size_t *n);
void spool_journal_free_names(char **names, size_t n);
/* Indexes one segment's records and links the segment (kept open; never appended to again). */
int spool_journal_index_segment(struct spool *s, const char *name, char *err, size_t errlen);

/* spool_keeper.c: the keeper thread (removes segments that hold no live message, empties the
 * active one, moves long-queued messages out of old segments). */
int spool_keeper_start(struct spool *s);
void spool_keeper_stop(struct spool *s);
/* Frees the segments and the index (spool_close); removes segments that hold nothing. */
void spool_journal_close(struct spool *s);

#endif
