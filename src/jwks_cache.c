/* jwks_cache.c: owns the per-source cache of token signing keys (SPEC 5): JWK Sets (RFC 7517)
 * from the built-in issuer's key file, from a JWKS file, or from an issuer's jwks_uri fetched
 * over HTTPS (RFC 9110 GET; Cache-Control max-age, RFC 9111 5.2.2.1) with libcurl. Sets are
 * reference-counted snapshots, so a refetch never frees keys a verifier is still using.
 *
 * One entry per source, never removed until the cache is freed. At most one thread loads a
 * source at a time; others wait on the cache's condition variable (bounded) or use the set
 * they already have. A URL set lives for its max-age (clamped); it is refetched when it
 * expires, or early when a token names a kid it lacks, but never twice within
 * JWKS_REFETCH_MIN_SECONDS, whatever the outcome of the last attempt. A file (or the built-in
 * key file) is re-read when its stat signature (inode, size, mtime, ctime) changes. */
#include "jwks_cache.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "issuer.h"
#include "logger.h"
#include "timed_wait.h"

#define JWKS_BODY_MAX (64 * 1024)    /* largest JWKS document accepted, fetched or read */
#define JWKS_CONNECT_TIMEOUT_MS 3000 /* TCP + TLS connect */
#define JWKS_FETCH_TIMEOUT_MS 5000   /* whole transfer */
#define JWKS_WAIT_MS 6000            /* a waiter gives up on another thread's load after */
#define JWKS_MAX_AGE_DEFAULT 3600    /* lifetime without Cache-Control max-age */
#define JWKS_MAX_AGE_MIN 300         /* max-age is clamped to [5 min, 24 h] */
#define JWKS_MAX_AGE_MAX 86400
#define JWKS_STALE_SECONDS 86400 /* an expired set serves this long while refetches fail */
#define JWKS_SOURCE_MAX 2048     /* longest file path or URL */

enum jwks_kind { SRC_BUILTIN, SRC_FILE, SRC_URL };

struct jwks_ref {
    atomic_uint refs;
    struct jwks keys;
};

/* What stat(2) said about a key file at the last load attempt. */
struct file_sig {
    bool known; /* false: never looked */
    int err;    /* errno of a failed stat, else 0 */
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime, ctime;
};

struct jwks_entry {
    struct jwks_entry *next;
    enum jwks_kind kind;
    char *name;           /* URL, absolute path, or (built-in) the domain */
    struct jwks_ref *cur; /* the newest good set, or NULL */
    int64_t expires;      /* URL: end of cur's lifetime */
    int64_t last_attempt; /* URL: when the last fetch started */
    bool attempted;       /* URL: a fetch was ever started */
    struct file_sig sig;  /* file, built-in: the key file at the last load attempt */
    bool busy;            /* a thread is loading this source now */
    char last_err[256];   /* why the last load failed ("" after a success) */
};

struct jwks_cache {
    pthread_mutex_t mu;
    pthread_cond_t done; /* broadcast whenever any load ends */
    struct jwks_entry *entries;
    char *datadir;
    char *cafile; /* SUBMITD_JWKS_CAFILE, or NULL */
    uint64_t fetches;
    jwks_fetch_fn fetch;
    void *fetch_arg;
};

/* ---- snapshots ---- */

static struct jwks_ref *ref_hold(struct jwks_ref *r)
{
    atomic_fetch_add_explicit(&r->refs, 1, memory_order_relaxed);
    return r;
}

void jwks_ref_release(struct jwks_ref *r)
{
    if (!r)
        return;
    if (atomic_fetch_sub_explicit(&r->refs, 1, memory_order_acq_rel) == 1) {
        jwks_free(&r->keys);
        free(r);
    }
}

const struct jwks *jwks_ref_keys(const struct jwks_ref *r)
{
    return &r->keys;
}

static bool set_has_kid(const struct jwks_ref *r, const char *kid)
{
    if (!kid || !*kid)
        return true;
    for (size_t i = 0; i < r->keys.n; i++)
        if (strcmp(r->keys.keys[i].kid, kid) == 0)
            return true;
    return false;
}

/* Parses a JWKS document into a new snapshot (one reference). */
static struct jwks_ref *ref_parse(const char *json, size_t len, const char *what, char *err,
                                  size_t errlen)
{
    if (len > JWKS_BODY_MAX) {
        snprintf(err, errlen, "JWKS from %s is larger than %d bytes", what, JWKS_BODY_MAX);
        return NULL;
    }
    struct jwks_ref *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "JWKS from %s: out of memory", what);
        return NULL;
    }
    char perr[200] = "";
    if (jwks_parse(json, len, &r->keys, perr, sizeof perr) != 0) {
        snprintf(err, errlen, "JWKS from %s: %s", what, perr[0] ? perr : "unparsable");
        free(r);
        return NULL;
    }
    atomic_init(&r->refs, 1);
    return r;
}

/* ---- sources ---- */

/* The host of an http(s) URL, lowercased, without the brackets of an IPv6 literal. False for
 * a URL without a host or with userinfo. */
static bool url_host(const char *url, char *host, size_t cap)
{
    const char *p = strstr(url, "://");
    if (!p)
        return false;
    p += 3;
    size_t alen = strcspn(p, "/?#");
    if (memchr(p, '@', alen))
        return false; /* no credentials in a JWKS URL: they would end up in logs */
    size_t hlen;
    if (alen > 0 && p[0] == '[') {
        const char *close = memchr(p, ']', alen);
        if (!close)
            return false;
        p++;
        hlen = (size_t)(close - p);
    } else {
        const char *colon = memchr(p, ':', alen);
        hlen = colon ? (size_t)(colon - p) : alen;
    }
    if (hlen == 0 || hlen >= cap)
        return false;
    for (size_t i = 0; i < hlen; i++)
        host[i] = (char)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
    host[hlen] = '\0';
    return true;
}

static bool url_is_local_http(const char *url)
{
    char host[256];
    if (strncasecmp(url, "http://", 7) != 0 || !url_host(url, host, sizeof host))
        return false;
    return strcmp(host, "127.0.0.1") == 0 || strcmp(host, "::1") == 0 ||
           strcmp(host, "localhost") == 0;
}

/* Decides what kind of source `source` is; name is what the entry is keyed by. */
static int classify(const char *domain, const char *source, enum jwks_kind *kind, const char **name,
                    char *err, size_t errlen)
{
    if (!source || !*source) {
        if (!domain || !*domain || domain[0] == '.' || strchr(domain, '/') ||
            strlen(domain) > 255) {
            snprintf(err, errlen, "built-in JWKS: invalid domain \"%s\"", domain ? domain : "");
            return -1;
        }
        *kind = SRC_BUILTIN;
        *name = domain;
        return 0;
    }
    if (strlen(source) > JWKS_SOURCE_MAX) {
        snprintf(err, errlen, "JWKS source longer than %d characters", JWKS_SOURCE_MAX);
        return -1;
    }
    *name = source;
    if (source[0] == '/') {
        *kind = SRC_FILE;
        return 0;
    }
    char host[256];
    if (strncasecmp(source, "https://", 8) == 0 && url_host(source, host, sizeof host)) {
        *kind = SRC_URL;
        return 0;
    }
    if (url_is_local_http(source)) {
        *kind = SRC_URL;
        return 0;
    }
    if (strncasecmp(source, "http://", 7) == 0)
        snprintf(err, errlen, "JWKS source %s: plain http is allowed only for localhost", source);
    else
        snprintf(err, errlen, "JWKS source %s: not an absolute path or https:// URL", source);
    return -1;
}

static void sig_read(const char *path, struct file_sig *s)
{
    struct stat st;
    memset(s, 0, sizeof *s);
    s->known = true;
    if (stat(path, &st) != 0) {
        s->err = errno ? errno : EIO;
        return;
    }
    s->dev = st.st_dev;
    s->ino = st.st_ino;
    s->size = st.st_size;
    s->mtime = st.st_mtim;
    s->ctime = st.st_ctim;
}

static bool sig_equal(const struct file_sig *a, const struct file_sig *b)
{
    return a->known && b->known && a->err == b->err && a->dev == b->dev && a->ino == b->ino &&
           a->size == b->size && a->mtime.tv_sec == b->mtime.tv_sec &&
           a->mtime.tv_nsec == b->mtime.tv_nsec && a->ctime.tv_sec == b->ctime.tv_sec &&
           a->ctime.tv_nsec == b->ctime.tv_nsec;
}

static void builtin_key_path(const struct jwks_cache *c, const char *domain, char *out, size_t cap)
{
    snprintf(out, cap, "%s/keys/%s.pem", c->datadir, domain);
}

static struct jwks_ref *load_file(const char *path, char *err, size_t errlen)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "JWKS file %s: open: %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(err, errlen, "JWKS file %s: fstat: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "JWKS file %s: not a regular file", path);
        close(fd);
        return NULL;
    }
    char *buf = malloc(JWKS_BODY_MAX + 1);
    if (!buf) {
        snprintf(err, errlen, "JWKS file %s: out of memory", path);
        close(fd);
        return NULL;
    }
    size_t len = 0;
    for (;;) {
        ssize_t n = read(fd, buf + len, JWKS_BODY_MAX + 1 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf(err, errlen, "JWKS file %s: read: %s", path, strerror(errno));
            free(buf);
            close(fd);
            return NULL;
        }
        if (n == 0)
            break;
        len += (size_t)n;
        if (len > JWKS_BODY_MAX)
            break;
    }
    if (close(fd) != 0) {
        snprintf(err, errlen, "JWKS file %s: close: %s", path, strerror(errno));
        free(buf);
        return NULL;
    }
    char what[JWKS_SOURCE_MAX + 16];
    snprintf(what, sizeof what, "file %s", path);
    struct jwks_ref *r = ref_parse(buf, len, what, err, errlen);
    free(buf);
    return r;
}

static struct jwks_ref *load_builtin(const struct jwks_cache *c, const char *domain, char *err,
                                     size_t errlen)
{
    struct jwks_ref *r = calloc(1, sizeof *r);
    if (!r) {
        snprintf(err, errlen, "built-in JWKS of %s: out of memory", domain);
        return NULL;
    }
    char ierr[200] = "";
    if (issuer_jwks(c->datadir, domain, &r->keys, ierr, sizeof ierr) != 0) {
        snprintf(err, errlen, "built-in JWKS of %s: %s", domain, ierr[0] ? ierr : "failed");
        free(r);
        return NULL;
    }
    atomic_init(&r->refs, 1);
    return r;
}

static int clamp_max_age(int max_age)
{
    if (max_age < 0)
        return JWKS_MAX_AGE_DEFAULT;
    if (max_age < JWKS_MAX_AGE_MIN)
        return JWKS_MAX_AGE_MIN;
    if (max_age > JWKS_MAX_AGE_MAX)
        return JWKS_MAX_AGE_MAX;
    return max_age;
}

static struct jwks_ref *load_url(struct jwks_cache *c, const char *url, int *max_age, char *err,
                                 size_t errlen)
{
    char *body = NULL;
    size_t len = 0;
    *max_age = -1;
    char ferr[200] = "";
    if (c->fetch(c->fetch_arg, url, &body, &len, max_age, ferr, sizeof ferr) != 0) {
        snprintf(err, errlen, "JWKS fetch from %s: %s", url, ferr[0] ? ferr : "failed");
        free(body);
        return NULL;
    }
    char what[JWKS_SOURCE_MAX + 8];
    snprintf(what, sizeof what, "%s", url);
    struct jwks_ref *r = ref_parse(body ? body : "", body ? len : 0, what, err, errlen);
    free(body);
    return r;
}

/* ---- the libcurl fetcher ---- */

struct curl_body {
    char *data;
    size_t len;
    bool too_big;
};

static size_t curl_on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct curl_body *b = userdata;
    size_t n = size * nmemb;
    if (n > JWKS_BODY_MAX - b->len) {
        b->too_big = true;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    return n;
}

/* Cache-Control: max-age=N (RFC 9111 5.2.2.1); no-store and no-cache count as 0 (the floor
 * applies). A new status line (after 1xx) forgets what came before. */
static size_t curl_on_header(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    int *max_age = userdata;
    size_t n = size * nmemb;
    if (n >= 5 && strncmp(ptr, "HTTP/", 5) == 0) {
        *max_age = -1;
        return n;
    }
    static const char name[] = "cache-control:";
    if (n < sizeof name - 1 || strncasecmp(ptr, name, sizeof name - 1) != 0)
        return n;
    char val[512];
    size_t vlen = n - (sizeof name - 1);
    if (vlen >= sizeof val)
        vlen = sizeof val - 1;
    memcpy(val, ptr + sizeof name - 1, vlen);
    val[vlen] = '\0';
    char *save = NULL;
    bool no_cache = false;
    long v = -1;
    for (char *tok = strtok_r(val, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        tok += strspn(tok, " \t");
        if (strncasecmp(tok, "no-store", 8) == 0 || strncasecmp(tok, "no-cache", 8) == 0) {
            no_cache = true;
            continue;
        }
        if (strncasecmp(tok, "max-age", 7) != 0)
            continue;
        char *p = tok + 7;
        p += strspn(p, " \t");
        if (*p++ != '=')
            continue;
        p += strspn(p, " \t\"");
        if (*p < '0' || *p > '9')
            continue;
        for (v = 0; *p >= '0' && *p <= '9'; p++)
            v = v > 100000000 ? v : v * 10 + (*p - '0');
    }
    if (no_cache)
        *max_age = 0;
    else if (v >= 0)
        *max_age = (int)v;
    return n;
}

/* libcurl's own reading of the URL's host agrees that plain http goes to this machine. */
static bool curl_host_is_local(const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL;
    bool local = false;
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
        local = strcasecmp(host, "127.0.0.1") == 0 || strcmp(host, "[::1]") == 0 ||
                strcasecmp(host, "localhost") == 0;
    curl_free(host);
    curl_url_cleanup(u);
    return local;
}

static int curl_fetch(void *arg, const char *url, char **body, size_t *len, int *max_age, char *err,
                      size_t errlen)
{
    const struct jwks_cache *c = arg;
    bool local = url_is_local_http(url);
    if (local && !curl_host_is_local(url)) {
        snprintf(err, errlen, "plain http is allowed only for localhost");
        return -1;
    }
    if (!local && strncasecmp(url, "https://", 8) != 0) {
        snprintf(err, errlen, "only https:// is allowed");
        return -1;
    }
    struct curl_body b = {.data = malloc(JWKS_BODY_MAX + 1)};
    if (!b.data) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "curl_easy_init failed");
        free(b.data);
        return -1;
    }
    char ebuf[CURL_ERROR_SIZE] = "";
    CURLcode rc = CURLE_OK;
#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (rc == CURLE_OK)                                                                        \
            rc = curl_easy_setopt(h, opt, val);                                                    \
    } while (0)
    SETOPT(CURLOPT_ERRORBUFFER, ebuf);
    SETOPT(CURLOPT_URL, url);
    SETOPT(CURLOPT_PROTOCOLS_STR, local ? "http" : "https");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    if (c->cafile)
        SETOPT(CURLOPT_CAINFO, c->cafile);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)JWKS_CONNECT_TIMEOUT_MS);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)JWKS_FETCH_TIMEOUT_MS);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)JWKS_BODY_MAX);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_USERAGENT, "submitd");
    SETOPT(CURLOPT_NOPROXY, "127.0.0.1,::1,localhost");
    SETOPT(CURLOPT_WRITEFUNCTION, curl_on_body);
    SETOPT(CURLOPT_WRITEDATA, &b);
    SETOPT(CURLOPT_HEADERFUNCTION, curl_on_header);
    SETOPT(CURLOPT_HEADERDATA, max_age);
#undef SETOPT
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "curl_easy_setopt: %s", curl_easy_strerror(rc));
        goto fail;
    }
    rc = curl_easy_perform(h);
    if (b.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(err, errlen, "response larger than %d bytes", JWKS_BODY_MAX);
        goto fail;
    }
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s", ebuf[0] ? ebuf : curl_easy_strerror(rc));
        goto fail;
    }
    long status = 0;
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status) != CURLE_OK || status != 200) {
        snprintf(err, errlen, "HTTP status %ld", status);
        goto fail;
    }
    curl_easy_cleanup(h);
    b.data[b.len] = '\0';
    *body = b.data;
    *len = b.len;
    return 0;
fail:
    curl_easy_cleanup(h);
    free(b.data);
    return -1;
}

/* ---- the cache ---- */

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;

static void global_init_once(void)
{
    global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

int jwks_cache_global_init(void)
{
    if (pthread_once(&global_once, global_init_once) != 0)
        return -1;
    if (global_rc != CURLE_OK) {
        log_error("curl_global_init failed: %s", curl_easy_strerror(global_rc));
        return -1;
    }
    return 0;
}

struct jwks_cache *jwks_cache_new(const char *datadir)
{
    struct jwks_cache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    const char *ca = getenv("SUBMITD_JWKS_CAFILE");
    c->datadir = strdup(datadir ? datadir : ".");
    c->cafile = ca && *ca ? strdup(ca) : NULL;
    if (!c->datadir || (ca && *ca && !c->cafile))
        goto fail;
    if (timed_wait_cond_init(&c->done) != 0)
        goto fail;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        pthread_cond_destroy(&c->done);
        goto fail;
    }
    c->fetch = curl_fetch;
    c->fetch_arg = c;
    return c;
fail:
    free(c->datadir);
    free(c->cafile);
    free(c);
    return NULL;
}

void jwks_cache_free(struct jwks_cache *c)
{
    if (!c)
        return;
    for (struct jwks_entry *e = c->entries, *next; e; e = next) {
        next = e->next;
        jwks_ref_release(e->cur);
        free(e->name);
        free(e);
    }
    pthread_mutex_destroy(&c->mu);
    pthread_cond_destroy(&c->done);
    free(c->datadir);
    free(c->cafile);
    free(c);
}

void jwks_cache_set_fetcher(struct jwks_cache *c, jwks_fetch_fn fetch, void *arg)
{
    pthread_mutex_lock(&c->mu);
    c->fetch = fetch ? fetch : curl_fetch;
    c->fetch_arg = fetch ? arg : c;
    pthread_mutex_unlock(&c->mu);
}

uint64_t jwks_cache_fetches(struct jwks_cache *c)
{
    pthread_mutex_lock(&c->mu);
    uint64_t n = c->fetches;
    pthread_mutex_unlock(&c->mu);
    return n;
}

/* Called with c->mu held. */
static struct jwks_entry *entry_find(struct jwks_cache *c, enum jwks_kind kind, const char *name)
{
    for (struct jwks_entry *e = c->entries; e; e = e->next)
        if (e->kind == kind && strcmp(e->name, name) == 0)
            return e;
    struct jwks_entry *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->name = strdup(name);
    if (!e->name) {
        free(e);
        return NULL;
    }
    e->kind = kind;
    e->next = c->entries;
    c->entries = e;
    return e;
}

/* Called with c->mu held: waits for another thread's load of any source to end, until
 * deadline (CLOCK_MONOTONIC). Returns false when the deadline passed. */
static bool wait_load(struct jwks_cache *c, const struct timespec *deadline)
{
    int rc = pthread_cond_timedwait(&c->done, &c->mu, deadline);
    return rc != ETIMEDOUT;
}

/* Called with c->mu held: loads e's source with the mutex released, then installs the result.
 * sig: the key file's state before the load (file, built-in); updated when the built-in
 * issuer made the key during the load. */
static void entry_load(struct jwks_cache *c, struct jwks_entry *e, struct file_sig *sig,
                       int64_t now)
{
    e->busy = true;
    if (e->kind == SRC_URL) {
        e->attempted = true;
        e->last_attempt = now;
        c->fetches++;
    }
    pthread_mutex_unlock(&c->mu);

    char err[sizeof e->last_err] = "";
    int max_age = -1;
    struct jwks_ref *r = NULL;
    struct file_sig after = *sig;
    switch (e->kind) {
    case SRC_URL:
        r = load_url(c, e->name, &max_age, err, sizeof err);
        break;
    case SRC_FILE:
        r = load_file(e->name, err, sizeof err);
        break;
    case SRC_BUILTIN:
        r = load_builtin(c, e->name, err, sizeof err);
        if (r && sig->err) { /* the key may have been made just now: remember its state */
            char path[JWKS_SOURCE_MAX + 300];
            builtin_key_path(c, e->name, path, sizeof path);
            sig_read(path, &after);
        }
        break;
    }

    pthread_mutex_lock(&c->mu);
    e->busy = false;
    if (e->kind != SRC_URL) {
        e->sig = after;
        *sig = after;
    }
    if (r) {
        struct jwks_ref *old = e->cur;
        e->cur = r;
        e->expires = now + clamp_max_age(max_age);
        e->last_err[0] = '\0';
        jwks_ref_release(old);
    } else {
        snprintf(e->last_err, sizeof e->last_err, "%s", err);
        if (e->cur)
            log_warn("event=jwks_load_failed source=\"%s\" error=\"%s\" using=previous-set",
                     e->name, err);
        else
            log_warn("event=jwks_load_failed source=\"%s\" error=\"%s\"", e->name, err);
    }
    pthread_cond_broadcast(&c->done);
}

static void entry_error(const struct jwks_entry *e, char *err, size_t errlen)
{
    if (e->last_err[0])
        snprintf(err, errlen, "%s", e->last_err);
    else
        snprintf(err, errlen, "JWKS from %s: no keys loaded", e->name);
}

struct jwks_ref *jwks_cache_get(struct jwks_cache *c, const char *domain, const char *source,
                                const char *want_kid, int64_t now, char *err, size_t errlen)
{
    enum jwks_kind kind;
    const char *name;
    if (errlen)
        err[0] = '\0';
    if (classify(domain, source, &kind, &name, err, errlen) != 0)
        return NULL;

    /* The key file's state, looked at before the lock (a cheap stat per call). */
    struct file_sig sig = {0};
    if (kind == SRC_FILE) {
        sig_read(name, &sig);
    } else if (kind == SRC_BUILTIN) {
        char path[JWKS_SOURCE_MAX + 300];
        builtin_key_path(c, name, path, sizeof path);
        sig_read(path, &sig);
    }

    struct timespec deadline = timed_wait_deadline(CLOCK_MONOTONIC, JWKS_WAIT_MS);

    struct jwks_ref *out = NULL;
    pthread_mutex_lock(&c->mu);
    struct jwks_entry *e = entry_find(c, kind, name);
    if (!e) {
        snprintf(err, errlen, "JWKS cache: out of memory");
        goto done;
    }
    bool timed_out = false;
    for (;;) {
        if (kind != SRC_URL) {
            if (sig_equal(&sig, &e->sig) || timed_out) {
                if (e->cur)
                    out = ref_hold(e->cur);
                else
                    entry_error(e, err, errlen);
                goto done;
            }
            if (e->busy) {
                timed_out = !wait_load(c, &deadline);
                continue;
            }
            entry_load(c, e, &sig, now);
            continue;
        }

        bool fresh = e->cur && now < e->expires;
        bool usable = e->cur && now < e->expires + JWKS_STALE_SECONDS;
        bool kid_ok = e->cur && set_has_kid(e->cur, want_kid);
        if (fresh && kid_ok) {
            out = ref_hold(e->cur);
            goto done;
        }
        if (e->busy && !timed_out) {
            if (usable && kid_ok) { /* expired but usable: do not wait for the refetch */
                out = ref_hold(e->cur);
                goto done;
            }
            timed_out = !wait_load(c, &deadline);
            continue;
        }
        /* A clock stepped back by the minimum counts as time passed; jitter between threads
         * does not. */
        bool may_fetch = !e->attempted || now - e->last_attempt >= JWKS_REFETCH_MIN_SECONDS ||
                         e->last_attempt - now >= JWKS_REFETCH_MIN_SECONDS;
        if (may_fetch && !e->busy) {
            entry_load(c, e, &sig, now);
            continue;
        }
        /* Rate-limited or gave up waiting: the set we have (the verifier then reports an
         * unknown kid), or the reason there is none. */
        if (usable) {
            out = ref_hold(e->cur);
        } else if (e->cur) {
            snprintf(err, errlen, "JWKS from %s expired more than %d s ago; refetch failed: %s",
                     e->name, JWKS_STALE_SECONDS,
                     e->last_err[0] ? e->last_err : "still in progress");
        } else if (e->busy) {
            snprintf(err, errlen, "JWKS fetch from %s: still in progress after %d ms", e->name,
                     JWKS_WAIT_MS);
        } else {
            entry_error(e, err, errlen);
        }
        goto done;
    }
done:
    pthread_mutex_unlock(&c->mu);
    return out;
}
