/* server.h: the running daemon: its configuration snapshot (swapped whole on SIGHUP), event
 * loops, listeners, worker pool, spool, event-log writer and connection limits. Sessions reach
 * shared state only through this. */
#ifndef SUBMITD_SERVER_H
#define SUBMITD_SERVER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>

#include <openssl/ssl.h>

#include "config.h"

struct loop;
struct jobs;
struct spool;
struct logwriter;
struct connlimit;
struct quota;
struct jwks_cache;

/* An immutable snapshot of configuration and TLS context; sessions hold a reference. */
struct runtime {
    atomic_int refs;
    struct config cfg;
    SSL_CTX *ssl;
};

/* A bound listening socket, shared by every loop (each has an evconnlistener on it). */
struct listener {
    struct listener_config lc;
    int fd;
    atomic_uint conns;
    atomic_int refs;
    struct evconnlistener **evl; /* one per loop */
    void *accept_ctx;            /* one callback argument per loop */
};

struct server {
    char datadir[4096];
    pthread_mutex_t mu;
    struct runtime *rt; /* guarded by mu */
    struct loop **loops;
    struct session **loop_sessions; /* per loop: its sessions (touched only on that loop) */
    unsigned n_loops;
    bool loops_running;     /* every loop started: listeners may be attached */
    atomic_uint *loop_load; /* per loop: its sessions, counted when one is handed to it */
    struct listener *listeners[CONFIG_LISTENERS_MAX];
    size_t n_listeners;
    struct jobs *jobs; /* directory lookups, password verification */
    struct spool *spool;
    struct queue_runner *runner; /* delivery */
    struct control *control;     /* DIR/control.sock */
    struct logwriter *logw;
    struct connlimit *limits;
    struct quota *quota;         /* per-mailbox submission limits */
    struct jwks_cache *jwks;     /* OAuth token keys */
    struct authcache *authcache; /* verified credentials */
    atomic_bool stopping;
    atomic_int sessions;       /* live sessions */
    atomic_int in_transaction; /* sessions between MAIL and the end of their transaction */
};

/* Per-worker context for jobs (its own database connections). */
struct worker_ctx {
    struct directory *dir;
    struct lockout *lockout;     /* its own connection to the sign-in log */
    struct authcache *authcache; /* shared, thread-safe */
    struct jwks_cache *jwks;     /* shared, thread-safe */
    const char *datadir;
    char err[256];
};

struct runtime *server_runtime(struct server *s); /* takes a reference */
void runtime_release(struct runtime *rt);
void listener_release(struct listener *l);

/* Sets up everything from DIR (config, certificate, directory check, spool recovery, loops,
 * listeners). Returns NULL with a reason. */
struct server *server_new(const char *datadir, char *err, size_t errlen);
/* Runs until SIGTERM/SIGINT: SIGHUP reloads. Returns the exit status. */
int server_run(struct server *s);
void server_free(struct server *s);

#endif
