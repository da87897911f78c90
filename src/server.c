/* server.c: the daemon's wiring: runtime snapshots (configuration + TLS context, swapped whole
 * on SIGHUP), listening sockets shared by every event loop, the worker pool, the spool and the
 * event-log writer; SIGTERM stops accepting, lets transactions in flight finish, then exits. */
#include "server.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>
#include <event2/thread.h>

#include "connlimit.h"
#include "directory.h"
#include "eventlog.h"
#include "authcache.h"
#include "jobs.h"
#include "lockout.h"
#include "jwks_cache.h"
#include "logger.h"
#include "logwriter.h"
#include "control.h"
#include "queue_runner.h"
#include "loop.h"
#include "password.h"
#include "privileges.h"
#include "quota.h"
#include "session.h"
#include "spool.h"
#include "tls.h"

struct accept_ctx {
    struct server *srv;
    struct listener *l;
    unsigned loop_idx;
};

/* ---- runtime snapshots ---- */

static struct runtime *runtime_load(const char *datadir, char *err, size_t errlen)
{
    struct runtime *rt = calloc(1, sizeof *rt);
    if (!rt) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    if (config_load(datadir, &rt->cfg, err, errlen) != 0)
        goto fail;
    char tlsdir[PATH_MAX + 8];
    snprintf(tlsdir, sizeof tlsdir, "%s/tls", datadir);
    if (mkdir(tlsdir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", tlsdir, strerror(errno));
        goto fail;
    }
    if (tls_ensure_certificate(rt->cfg.tls_cert, rt->cfg.tls_key, rt->cfg.hostname, err, errlen) !=
        0)
        goto fail;
    rt->ssl = tls_server_context(rt->cfg.tls_cert, rt->cfg.tls_key, err, errlen);
    if (!rt->ssl)
        goto fail;
    atomic_init(&rt->refs, 1);
    return rt;
fail:
    free(rt);
    return NULL;
}

struct runtime *server_runtime(struct server *s)
{
    pthread_mutex_lock(&s->mu);
    struct runtime *rt = s->rt;
    atomic_fetch_add(&rt->refs, 1);
    pthread_mutex_unlock(&s->mu);
    return rt;
}

void runtime_release(struct runtime *rt)
{
    if (rt && atomic_fetch_sub(&rt->refs, 1) == 1) {
        SSL_CTX_free(rt->ssl);
        free(rt);
    }
}

/* ---- running something on every loop and waiting for it ---- */

struct on_loops {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned left;
    void (*fn)(struct server *, unsigned, void *);
    struct server *srv;
    void *arg;
};

struct on_loop_call {
    struct on_loops *all;
    unsigned idx;
};

static void on_loop_run(void *arg)
{
    struct on_loop_call *c = arg;
    struct on_loops *all = c->all;
    all->fn(all->srv, c->idx, all->arg);
    pthread_mutex_lock(&all->mu);
    if (--all->left == 0)
        pthread_cond_signal(&all->cv);
    pthread_mutex_unlock(&all->mu);
    free(c);
}

static void server_on_loops(struct server *s, void (*fn)(struct server *, unsigned, void *),
                            void *arg)
{
    struct on_loops all = {.left = s->n_loops, .fn = fn, .srv = s, .arg = arg};
    pthread_mutex_init(&all.mu, NULL);
    pthread_cond_init(&all.cv, NULL);
    for (unsigned i = 0; i < s->n_loops; i++) {
        struct on_loop_call *c = malloc(sizeof *c);
        if (!c) {
            log_error("event=abort reason=\"out of memory\"");
            abort();
        }
        c->all = &all;
        c->idx = i;
        loop_post(s->loops[i], on_loop_run, c);
    }
    pthread_mutex_lock(&all.mu);
    while (all.left > 0)
        pthread_cond_wait(&all.cv, &all.mu);
    pthread_mutex_unlock(&all.mu);
    pthread_cond_destroy(&all.cv);
    pthread_mutex_destroy(&all.mu);
}

/* ---- listeners ---- */

static int listener_bind(const struct listener_config *lc, char *err, size_t errlen)
{
    struct addrinfo hints = {.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV | AI_PASSIVE,
                             .ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM};
    struct addrinfo *ai = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", lc->port);
    int rc = getaddrinfo(lc->host, port, &hints, &ai);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", lc->name, gai_strerror(rc));
        return -1;
    }
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errlen, "cannot listen on %s: socket: %s", lc->name, strerror(errno));
        freeaddrinfo(ai);
        return -1;
    }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (ai->ai_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        snprintf(err, errlen, "cannot listen on %s: %s", lc->name, strerror(errno));
        close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    return fd;
}

/* A connection accepted on one loop and served by another. */
struct handoff {
    struct server *srv;
    struct listener *l; /* a reference, held until the session has its own */
    unsigned loop_idx;
    int fd;
    int salen;
    struct sockaddr_storage sa;
};

static void handoff_cb(void *arg)
{
    struct handoff *h = arg;
    session_accept(h->srv, h->loop_idx, h->l, h->fd, (struct sockaddr *)&h->sa, h->salen);
    listener_release(h->l);
    free(h);
}

static void accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa,
                      int salen, void *arg)
{
    (void)evl;
    struct accept_ctx *c = arg;
    /* Every loop waits on every listener and whichever wakes first accepts the whole burst
     * waiting: without a hand-off, clients connecting at once land mostly on one loop, where
     * they wait behind each other while the other loop's are served at once. */
    unsigned to = loop_least_loaded(c->srv->loop_load, c->srv->n_loops, c->loop_idx);
    struct handoff *h = NULL;
    if (to != c->loop_idx && (size_t)salen <= sizeof h->sa && (h = malloc(sizeof *h)) != NULL) {
        *h = (struct handoff){c->srv, c->l, to, fd, salen, {0}};
        memcpy(&h->sa, sa, (size_t)salen);
        atomic_fetch_add(&c->l->refs, 1);
        atomic_fetch_add(&c->srv->loop_load[to], 1);
        loop_post(c->srv->loops[to], handoff_cb, h);
        return;
    }
    atomic_fetch_add(&c->srv->loop_load[c->loop_idx], 1);
    session_accept(c->srv, c->loop_idx, c->l, fd, sa, salen);
}

static void accept_error_cb(struct evconnlistener *evl, void *arg)
{
    (void)evl;
    struct accept_ctx *c = arg;
    int e = EVUTIL_SOCKET_ERROR();
    log_error("event=accept-failed listener=%s reason=\"%s\"", c->l->lc.name,
              evutil_socket_error_to_string(e));
}

void listener_release(struct listener *l)
{
    if (l && atomic_fetch_sub(&l->refs, 1) == 1) {
        free(l->evl);
        free(l->accept_ctx);
        free(l);
    }
}

static void listener_attach(struct server *s, unsigned idx, void *arg)
{
    struct listener *l = arg;
    struct accept_ctx *c = &((struct accept_ctx *)l->accept_ctx)[idx];
    *c = (struct accept_ctx){s, l, idx};
    l->evl[idx] = evconnlistener_new(loop_base(s->loops[idx]), accept_cb, c,
                                     LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC, 0, l->fd);
    if (!l->evl[idx]) {
        log_error("event=listener-failed listener=%s loop=%u", l->lc.name, idx);
        return;
    }
    evconnlistener_set_error_cb(l->evl[idx], accept_error_cb);
}

static void listener_detach(struct server *s, unsigned idx, void *arg)
{
    (void)s;
    struct listener *l = arg;
    if (!l->evl[idx])
        return;
    evconnlistener_free(l->evl[idx]);
    l->evl[idx] = NULL;
}

static struct listener *listener_open(struct server *s, const struct listener_config *lc, char *err,
                                      size_t errlen)
{
    struct listener *l = calloc(1, sizeof *l);
    if (!l || !(l->evl = calloc(s->n_loops, sizeof *l->evl)) ||
        !(l->accept_ctx = calloc(s->n_loops, sizeof(struct accept_ctx)))) {
        if (l)
            free(l->evl);
        free(l);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    l->lc = *lc;
    atomic_init(&l->refs, 1);
    l->fd = listener_bind(lc, err, errlen);
    if (l->fd < 0) {
        free(l->evl);
        free(l->accept_ctx);
        free(l);
        return NULL;
    }
    return l;
}

static void listener_start(struct server *s, struct listener *l)
{
    for (unsigned i = 0; i < s->n_loops; i++)
        listener_attach(s, i, l);
    log_info("event=listening listener=%s mode=%s", l->lc.name,
             l->lc.tls == LISTENER_IMPLICIT_TLS ? "tls" : "starttls");
}

static void listener_close(struct server *s, struct listener *l)
{
    if (s->loops_running)
        server_on_loops(s, listener_detach, l);
    close(l->fd);
    l->fd = -1;
    listener_release(l);
}

static bool listener_same(const struct listener_config *a, const struct listener_config *b)
{
    return strcmp(a->host, b->host) == 0 && a->port == b->port && a->tls == b->tls &&
           a->require_tls == b->require_tls && a->allow_cleartext_auth == b->allow_cleartext_auth;
}

/* Makes the open listeners match cfg: closes those gone or changed, opens the new ones. */
static int server_apply_listeners(struct server *s, const struct config *cfg, char *err,
                                  size_t errlen)
{
    struct listener *keep[CONFIG_LISTENERS_MAX];
    size_t n_keep = 0;
    for (size_t i = 0; i < s->n_listeners; i++) {
        bool wanted = false;
        for (size_t k = 0; k < cfg->n_listeners; k++)
            wanted = wanted || listener_same(&s->listeners[i]->lc, &cfg->listeners[k]);
        if (wanted) {
            keep[n_keep++] = s->listeners[i];
        } else {
            log_info("event=listener-closed listener=%s", s->listeners[i]->lc.name);
            listener_close(s, s->listeners[i]);
        }
    }
    memcpy(s->listeners, keep, n_keep * sizeof *keep);
    s->n_listeners = n_keep;
    int rc = 0;
    for (size_t k = 0; k < cfg->n_listeners; k++) {
        bool have = false;
        for (size_t i = 0; i < n_keep; i++)
            have = have || listener_same(&keep[i]->lc, &cfg->listeners[k]);
        if (have)
            continue;
        struct listener *l = listener_open(s, &cfg->listeners[k], err, errlen);
        if (!l) {
            rc = -1;
            continue;
        }
        listener_start(s, l);
        s->listeners[s->n_listeners++] = l;
    }
    return rc;
}

/* ---- workers ---- */

static void *worker_init(void *arg)
{
    struct server *s = arg;
    struct worker_ctx *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    w->jwks = s->jwks;
    w->authcache = s->authcache;
    struct runtime *rt = server_runtime(s);
    struct lockout_config lc;
    lockout_config_from(&lc, &rt->cfg);
    runtime_release(rt);
    w->lockout = lockout_open(s->datadir, &lc, w->err, sizeof w->err);
    if (!w->lockout)
        log_error("event=lockout-open-failed reason=\"%s\"", w->err);
    w->datadir = s->datadir;
    w->dir = directory_open(s->datadir, w->err, sizeof w->err);
    if (!w->dir)
        log_error("event=directory-open-failed reason=\"%s\"", w->err);
    return w;
}

static void worker_fini(void *ctx)
{
    struct worker_ctx *w = ctx;
    if (!w)
        return;
    directory_close(w->dir);
    lockout_close(w->lockout);
    free(w);
}

/* ---- setup ---- */

/* Descriptors besides the sessions': listeners, databases, spool files, logs, event loops. */
#define SERVER_FD_RESERVE 256

/* Every session holds a socket: raises the soft RLIMIT_NOFILE to the hard limit, and says so when
 * even that is below what max-connections on every listener needs (submitd still starts; accept
 * then fails with EMFILE past the limit). Before privileges are dropped, as root may raise it. */
static void server_raise_fd_limit(const struct config *cfg)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        log_error("event=fd-limit reason=\"getrlimit(RLIMIT_NOFILE) failed: %s\"", strerror(errno));
        return;
    }
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < rl.rlim_max) {
        rlim_t soft = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            log_error("event=fd-limit reason=\"setrlimit(RLIMIT_NOFILE, %llu) failed: %s\"",
                      (unsigned long long)rl.rlim_max, strerror(errno));
            rl.rlim_cur = soft;
        }
    }
    unsigned long long need =
        (unsigned long long)cfg->n_listeners * cfg->max_connections + SERVER_FD_RESERVE;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < need)
        log_error("event=fd-limit limit=%llu needed=%llu reason=\"the open-file limit is below "
                  "max-connections on every listener; raise the hard limit (ulimit -Hn, "
                  "LimitNOFILE=) or lower max-connections\"",
                  (unsigned long long)rl.rlim_cur, need);
}

static void restore_one(const char *user, int64_t time_ms, int recipients, void *arg)
{
    quota_record(arg, user, recipients > 0 ? (unsigned)recipients : 0, time_ms);
}

/* The submission limits count what the last 24 hours accepted, before this start too. */
static int server_restore_quota(struct server *s, char *err, size_t errlen)
{
    struct eventlog *l = eventlog_open(s->datadir, err, errlen);
    if (!l)
        return -1;
    int n = eventlog_accepted_since(l, session_now_ms() - QUOTA_DAY_MS, restore_one, s->quota);
    eventlog_close(l);
    if (n < 0) {
        snprintf(err, errlen, "cannot read the submission log to restore the limits");
        return -1;
    }
    log_info("event=limits-restored messages=%d", n);
    return 0;
}

struct server *server_new(const char *datadir, char *err, size_t errlen)
{
    if (evthread_use_pthreads() != 0) {
        snprintf(err, errlen, "libevent has no thread support");
        return NULL;
    }
    if (mkdir(datadir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create %s: %s", datadir, strerror(errno));
        return NULL;
    }
    struct server *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    snprintf(s->datadir, sizeof s->datadir, "%s", datadir);
    pthread_mutex_init(&s->mu, NULL);
    /* Bind first (ports below 1024 need root), then give root up before the data directory is
     * touched, so that every file it makes belongs to the unprivileged user. */
    struct config boot;
    if (config_load(datadir, &boot, err, errlen) != 0)
        goto fail;
    s->n_loops = boot.io_threads;
    server_raise_fd_limit(&boot);
    for (size_t i = 0; i < boot.n_listeners; i++) {
        struct listener *l = listener_open(s, &boot.listeners[i], err, errlen);
        if (!l)
            goto fail;
        s->listeners[s->n_listeners++] = l;
    }
    char why[512] = "";
    int dropped = privileges_drop(boot.user, datadir, why, sizeof why);
    if (dropped < 0) {
        snprintf(err, errlen, "%s", why);
        goto fail;
    }
    if (dropped > 0)
        log_warn("event=privileges reason=\"%s\"", why);
    if (privileges_check_dir(datadir, err, errlen) != 0 ||
        privileges_check_key(boot.tls_key, err, errlen) != 0)
        goto fail;
    s->rt = runtime_load(datadir, err, errlen);
    if (!s->rt)
        goto fail;
    const struct config *cfg = &s->rt->cfg;
    if (password_init(cfg->auth_memlimit) != 0) {
        snprintf(err, errlen, "cannot initialize libsodium");
        goto fail;
    }
    struct directory *d = directory_open(datadir, err, errlen);
    if (!d)
        goto fail;
    log_info("event=directory schema=%d", dir_schema_version(d));
    directory_close(d);
    s->spool = spool_open(datadir, err, errlen);
    if (!s->spool)
        goto fail;
    if (spool_recovered(s->spool) > 0)
        log_warn("event=spool-recovery removed=%d reason=\"incomplete messages (never "
                 "acknowledged) from before a crash\"",
                 spool_recovered(s->spool));
    if (spool_replayed(s->spool) > 0)
        log_info("event=spool-journal messages=%d note=\"queued messages living in the journal\"",
                 spool_replayed(s->spool));
    spool_set_journal(s->spool, cfg->spool_journal);
    s->logw = logwriter_start(datadir, err, errlen);
    if (!s->logw)
        goto fail;
    struct queue_runner_params qp = {
        .datadir = datadir,
        .hostname = cfg->hostname,
        .spool = s->spool,
        .log = s->logw,
        .threads = cfg->delivery_threads,
        .lifetime_ms = (int64_t)cfg->queue_lifetime * 1000,
        .retry_min_ms = (int64_t)cfg->retry_min * 1000,
        .retry_max_ms = (int64_t)cfg->retry_max * 1000,
        .delay_warning_ms = (int64_t)cfg->delay_warning * 1000,
        .bounce_size_limit = (size_t)cfg->bounce_size_limit,
    };
    s->runner = queue_runner_new(&qp);
    if (!s->runner) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    spool_set_ready(s->spool, queue_runner_ready, s->runner);
    if (spool_start(s->spool) != 0) {
        snprintf(err, errlen, "cannot start the spool thread");
        goto fail;
    }
    if (queue_runner_start(s->runner, err, errlen) != 0)
        goto fail;
    s->control = control_start(datadir, queue_runner_control, s->runner, err, errlen);
    if (!s->control)
        goto fail;
    s->limits = connlimit_new();
    s->quota = quota_new();
    if (jwks_cache_global_init() != 0) {
        snprintf(err, errlen, "cannot initialize libcurl");
        goto fail;
    }
    s->jwks = jwks_cache_new(datadir);
    s->authcache = authcache_new(100000, 900);
    if (!s->quota || !s->jwks || !s->authcache || server_restore_quota(s, err, errlen) != 0)
        goto fail;
    s->loops = calloc(s->n_loops, sizeof *s->loops);
    s->loop_sessions = calloc(s->n_loops, sizeof *s->loop_sessions);
    s->loop_load = calloc(s->n_loops, sizeof *s->loop_load);
    if (!s->limits || !s->loops || !s->loop_sessions || !s->loop_load) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (unsigned i = 0; i < s->n_loops; i++) {
        s->loops[i] = loop_new();
        if (!s->loops[i] || loop_start(s->loops[i]) != 0) {
            snprintf(err, errlen, "cannot start event loop %u", i);
            goto fail;
        }
    }
    s->loops_running = true;
    s->jobs = jobs_new(cfg->auth_threads, worker_init, worker_fini, s);
    if (!s->jobs) {
        snprintf(err, errlen, "cannot start worker threads");
        goto fail;
    }
    for (size_t i = 0; i < s->n_listeners; i++)
        listener_start(s, s->listeners[i]);
    if (server_apply_listeners(s, cfg, err, errlen) != 0)
        goto fail;
    return s;
fail:
    server_free(s);
    return NULL;
}

/* ---- signals, reload, shutdown ---- */

struct run_state {
    struct server *srv;
    struct event_base *base;
    struct event *sighup, *sigterm, *sigint, *tick;
    int64_t deadline_ms;
};

static void server_reload(struct server *s)
{
    char err[512];
    struct runtime *rt = runtime_load(s->datadir, err, sizeof err);
    if (!rt) {
        log_error("event=reload-failed reason=\"%s\" action=\"kept the running configuration\"",
                  err);
        return;
    }
    pthread_mutex_lock(&s->mu);
    struct runtime *old = s->rt;
    s->rt = rt;
    pthread_mutex_unlock(&s->mu);
    runtime_release(old);
    if (server_apply_listeners(s, &rt->cfg, err, sizeof err) != 0)
        log_error("event=reload-listener-failed reason=\"%s\"", err);
    log_info("event=reloaded listeners=%zu", s->n_listeners);
}

static void shutdown_sessions(struct server *s, unsigned idx, void *arg)
{
    session_shutdown_loop(s, idx, arg != NULL);
}

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct run_state *st = arg;
    int left = atomic_load(&st->srv->sessions);
    if (left == 0 || session_now_ms() > st->deadline_ms) {
        if (left > 0)
            log_warn("event=shutdown-timeout sessions=%d", left);
        event_base_loopbreak(st->base);
    }
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    (void)what;
    struct run_state *st = arg;
    struct server *s = st->srv;
    if (sig == SIGHUP) {
        log_info("event=sighup");
        server_reload(s);
        return;
    }
    if (atomic_exchange(&s->stopping, true))
        return;
    log_info("event=shutdown signal=%d sessions=%d in_transaction=%d", (int)sig,
             atomic_load(&s->sessions), atomic_load(&s->in_transaction));
    for (size_t i = 0; i < s->n_listeners; i++)
        listener_close(s, s->listeners[i]);
    s->n_listeners = 0;
    server_on_loops(s, shutdown_sessions, NULL);
    if (atomic_load(&s->sessions) == 0) {
        event_base_loopbreak(st->base);
        return;
    }
    const struct config *cfg = &s->rt->cfg;
    st->deadline_ms = session_now_ms() + 1000LL * (cfg->data_timeout > cfg->command_timeout
                                                       ? cfg->data_timeout
                                                       : cfg->command_timeout);
    struct timeval t = {0, 50 * 1000};
    event_add(st->tick, &t);
}

int server_run(struct server *s)
{
    struct run_state st = {.srv = s};
    signal(SIGPIPE, SIG_IGN);
    st.base = event_base_new();
    if (!st.base)
        return 1;
    st.sighup = evsignal_new(st.base, SIGHUP, on_signal, &st);
    st.sigterm = evsignal_new(st.base, SIGTERM, on_signal, &st);
    st.sigint = evsignal_new(st.base, SIGINT, on_signal, &st);
    st.tick = event_new(st.base, -1, EV_PERSIST, on_tick, &st);
    event_add(st.sighup, NULL);
    event_add(st.sigterm, NULL);
    event_add(st.sigint, NULL);
    sigset_t sigs; /* blocked by main until now: one that came early is handled at once */
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    sigaddset(&sigs, SIGHUP);
    pthread_sigmask(SIG_UNBLOCK, &sigs, NULL);
    log_info("event=ready loops=%u workers=%u", s->n_loops, s->rt->cfg.auth_threads);
    event_base_dispatch(st.base);
    event_free(st.sighup);
    event_free(st.sigterm);
    event_free(st.sigint);
    event_free(st.tick);
    event_base_free(st.base);
    log_info("event=stopped");
    return 0;
}

void server_free(struct server *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->n_listeners; i++)
        listener_close(s, s->listeners[i]);
    s->n_listeners = 0;
    if (s->loops_running && atomic_load(&s->sessions) > 0)
        server_on_loops(s, shutdown_sessions, s); /* force: the grace period is over */
    /* Finish work in flight: its completions land on the loops, which are still running. */
    control_stop(s->control);
    jobs_free(s->jobs);
    queue_runner_stop(s->runner); /* attempts under way finish; notices reach the spool */
    spool_close(s->spool);
    queue_runner_free(s->runner);
    for (unsigned i = 0; s->loops && i < s->n_loops; i++) {
        if (s->loops[i]) {
            loop_stop_and_join(s->loops[i]);
            loop_free(s->loops[i]);
        }
    }
    logwriter_stop(s->logw);
    connlimit_free(s->limits);
    quota_free(s->quota);
    jwks_cache_free(s->jwks);
    authcache_free(s->authcache);
    free(s->loops);
    free(s->loop_sessions);
    free(s->loop_load);
    runtime_release(s->rt);
    pthread_mutex_destroy(&s->mu);
    free(s);
}
