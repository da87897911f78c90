/* oauth_client.c: owns the access tokens submitd presents to a smarthost with XOAUTH2: an OAuth
 * 2.0 client (RFC 6749) of a token endpoint, with the client-credentials grant (4.4) or the
 * refresh-token grant (6), client authentication by HTTP Basic over form-urlencoded id and
 * secret (2.3.1, RFC 7617) or in the form body, the form encoded as
 * application/x-www-form-urlencoded (Appendix B), the 5.1 success and 5.2 error responses
 * parsed with jansson, and Bearer tokens only (RFC 6750). Transport: libcurl POST, HTTPS only
 * and verified (plain http only to 127.0.0.1, ::1 or localhost, for tests), 10 s and 64 KiB.
 *
 * The cache holds one entry per key (never removed until the cache is freed), each with its
 * own mutex and condition variable. An entry's token serves until TOKEN_MARGIN_MS before it
 * expires (monotonic clock). One caller fetches while the others wait for that fetch and share
 * its result (token or error). A token is tied to the endpoint, client id, scope and grant it
 * was fetched with: a caller with other parameters (a reloaded configuration) fetches anew.
 *
 * Secrets: the form body, the Basic credentials, the Authorization header (also curl's copy in
 * its header list), the response buffer and every cached token are wiped before they are
 * freed. Error texts carry the endpoint's OAuth error code and description (sanitized, cut
 * short, withheld if they echo a credential), never a secret, token or response body. */
#include "oauth_client.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <pthread.h>
#include <sodium.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "timed_wait.h"

#define TOKEN_BODY_MAX (64 * 1024)    /* largest response accepted */
#define TOKEN_CONNECT_TIMEOUT_MS 5000 /* TCP + TLS connect */
#define TOKEN_FETCH_TIMEOUT_MS 10000  /* the whole exchange */
#define TOKEN_WAIT_MS 15000           /* a waiter gives up on another caller's fetch after */
#define TOKEN_MARGIN_MS 60000         /* a token is replaced this long before it expires */
#define TOKEN_EXPIRES_DEFAULT 3600    /* seconds, when the response has no expires_in */
#define TOKEN_EXPIRES_MIN 60          /* expires_in is clamped to [1 min, 1 day] */
#define TOKEN_EXPIRES_MAX 86400
#define TOKEN_LEN_MAX (16 * 1024) /* longest access or refresh token accepted */
#define TOKEN_DESC_MAX 160        /* error_description shown in err, at most */
#define TOKEN_CODE_MAX 64         /* OAuth error code shown in err, at most */
#define TOKEN_FP_LEN 16           /* parameter fingerprint (BLAKE2b) */

struct token_entry {
    struct token_entry *next;
    char *key;
    pthread_mutex_t mu;
    pthread_cond_t done;                 /* broadcast when a fetch ends */
    char *token;                         /* the cached access token, or NULL */
    int64_t expires_ms;                  /* monotonic: when token expires */
    unsigned char fp[TOKEN_FP_LEN];      /* the parameters token was fetched with */
    bool busy;                           /* a caller is fetching now */
    uint64_t gen;                        /* fetches finished */
    unsigned char last_fp[TOKEN_FP_LEN]; /* the parameters of the last finished fetch */
    bool last_ok, last_temporary;
    char last_err[256];
};

struct oauth_tokens {
    pthread_mutex_t mu; /* guards the entry list */
    struct token_entry *entries;
};

/* ---- small helpers ---- */

static int64_t mono_ms(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
        return 0; /* cannot happen with CLOCK_MONOTONIC */
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wipe_free(char *s, size_t len)
{
    if (!s)
        return;
    sodium_memzero(s, len);
    free(s);
}

static void wipe_free_str(char *s)
{
    if (s)
        wipe_free(s, strlen(s));
}

/* Copies text from the endpoint into out for an error message: printable ASCII only (others
 * become '?'), at most max characters, "..." when cut. */
static void sanitize(const char *in, size_t max, char *out, size_t cap)
{
    size_t n = 0, len = strlen(in);
    for (size_t i = 0; i < len && i < max && n + 4 < cap; i++) {
        unsigned char ch = (unsigned char)in[i];
        out[n++] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
    }
    if (len > max && n + 4 <= cap) {
        memcpy(out + n, "...", 3);
        n += 3;
    }
    out[n] = '\0';
}

/* A token as RFC 6750 2.1 b64token allows it, so it can go into an XOAUTH2 string intact. */
static bool token_chars_ok(const char *t)
{
    size_t len = strlen(t);
    if (len == 0 || len > TOKEN_LEN_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)t[i];
        if (ch <= 0x20 || ch >= 0x7f)
            return false;
    }
    return true;
}

/* Appends s form-urlencoded (the WHATWG application/x-www-form-urlencoded serializer:
 * alphanumerics and "*-._" kept, space as '+', every other octet %XX). */
static void form_encode(char *out, size_t *n, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '*' || ch == '-' || ch == '.' || ch == '_') {
            out[(*n)++] = (char)ch;
        } else if (ch == ' ') {
            out[(*n)++] = '+';
        } else {
            out[(*n)++] = '%';
            out[(*n)++] = hex[ch >> 4];
            out[(*n)++] = hex[ch & 15];
        }
    }
    out[*n] = '\0';
}

/* Room form_encode needs for s, at worst. */
static size_t form_cap(const char *s)
{
    return s ? strlen(s) * 3 : 0;
}

static const char *str_or_empty(const char *s)
{
    return s ? s : "";
}

static bool is_refresh(const struct oauth_client_params *p)
{
    return p->refresh_token && *p->refresh_token;
}

/* What a cached token is tied to: endpoint, client, scope and grant (not the secret or the
 * refresh token, which may rotate while the token stays good). */
static void params_fp(const struct oauth_client_params *p, unsigned char fp[TOKEN_FP_LEN])
{
    crypto_generichash_state st;
    const char *parts[] = {str_or_empty(p->token_url), str_or_empty(p->client_id),
                           str_or_empty(p->scope), is_refresh(p) ? "refresh" : "client"};
    crypto_generichash_init(&st, NULL, 0, TOKEN_FP_LEN);
    for (size_t i = 0; i < sizeof parts / sizeof *parts; i++)
        crypto_generichash_update(&st, (const unsigned char *)parts[i], strlen(parts[i]) + 1);
    crypto_generichash_final(&st, fp, TOKEN_FP_LEN);
}

/* ---- the request ---- */

/* Parses token_url into u; https, or http to this machine. host receives "HOST[:PORT]" for
 * error messages (no path or query: they might carry something private). */
static int url_check(CURLU *u, const char *url, char *host, size_t hostcap, char *err,
                     size_t errlen)
{
    if (!url || !*url) {
        snprintf(err, errlen, "token endpoint: no token URL configured");
        return -1;
    }
    char *scheme = NULL, *h = NULL, *port = NULL, *user = NULL;
    int rc = -1;
    if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &h, 0) != CURLUE_OK) {
        snprintf(err, errlen, "token endpoint: not a valid URL");
        goto out;
    }
    if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
        snprintf(err, errlen, "token endpoint: credentials in the URL are not allowed");
        goto out;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0); /* absent: the scheme's default */
    snprintf(host, hostcap, "%s%s%s", h, port ? ":" : "", port ? port : "");
    bool local = strcasecmp(h, "127.0.0.1") == 0 || strcmp(h, "[::1]") == 0 ||
                 strcasecmp(h, "localhost") == 0;
    if (strcasecmp(scheme, "https") == 0 || (strcasecmp(scheme, "http") == 0 && local)) {
        rc = 0;
    } else if (strcasecmp(scheme, "http") == 0) {
        snprintf(err, errlen, "token endpoint %s: plain http is allowed only for localhost", host);
    } else {
        snprintf(err, errlen, "token endpoint %s: only https:// is allowed", host);
    }
out:
    curl_free(scheme);
    curl_free(h);
    curl_free(port);
    curl_free(user);
    return rc;
}

/* The form body (RFC 6749 4.4.2, 6), with client_id (and client_secret) in it when the client
 * does not authenticate with Basic. malloc'd; *len its length (to wipe). */
static char *build_form(const struct oauth_client_params *p, bool basic, size_t *len)
{
    size_t cap = 128 + form_cap(p->refresh_token) + form_cap(p->scope) + form_cap(p->client_id) +
                 form_cap(p->client_secret);
    char *f = malloc(cap);
    if (!f)
        return NULL;
    size_t n = 0;
    f[0] = '\0';
#define LIT(s)                                                                                     \
    do {                                                                                           \
        memcpy(f + n, s, sizeof(s) - 1);                                                           \
        n += sizeof(s) - 1;                                                                        \
        f[n] = '\0';                                                                               \
    } while (0)
    if (is_refresh(p)) {
        LIT("grant_type=refresh_token&refresh_token=");
        form_encode(f, &n, p->refresh_token);
    } else {
        LIT("grant_type=client_credentials");
    }
    if (!basic) {
        LIT("&client_id=");
        form_encode(f, &n, str_or_empty(p->client_id));
        if (p->client_secret && *p->client_secret) {
            LIT("&client_secret=");
            form_encode(f, &n, p->client_secret);
        }
    }
    if (p->scope && *p->scope) {
        LIT("&scope=");
        form_encode(f, &n, p->scope);
    }
#undef LIT
    *len = n;
    return f;
}

/* "Authorization: Basic base64(urlenc(id) ":" urlenc(secret))" (RFC 6749 2.3.1). */
static char *build_basic(const struct oauth_client_params *p, size_t *len)
{
    size_t ccap = form_cap(p->client_id) + form_cap(p->client_secret) + 2;
    char *cred = malloc(ccap);
    if (!cred)
        return NULL;
    size_t n = 0;
    cred[0] = '\0';
    form_encode(cred, &n, str_or_empty(p->client_id));
    cred[n++] = ':';
    cred[n] = '\0';
    form_encode(cred, &n, p->client_secret);
    static const char prefix[] = "Authorization: Basic ";
    size_t hcap = sizeof prefix - 1 + sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_ORIGINAL);
    char *h = malloc(hcap);
    if (h) {
        memcpy(h, prefix, sizeof prefix - 1);
        sodium_bin2base64(h + sizeof prefix - 1, hcap - (sizeof prefix - 1),
                          (const unsigned char *)cred, n, sodium_base64_VARIANT_ORIGINAL);
        *len = strlen(h);
    }
    wipe_free(cred, ccap);
    return h;
}

struct resp_buf {
    char *data; /* TOKEN_BODY_MAX + 1 bytes */
    size_t len;
    bool too_big;
};

static size_t on_body(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct resp_buf *b = userdata;
    size_t n = size * nmemb;
    if (n > TOKEN_BODY_MAX - b->len) {
        b->too_big = true;
        return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
    }
    memcpy(b->data + b->len, ptr, n);
    b->len += n;
    return n;
}

/* Wipes what curl copied of our headers (the Authorization line) before freeing the list. */
static void slist_wipe_free(struct curl_slist *l)
{
    for (struct curl_slist *i = l; i; i = i->next)
        sodium_memzero(i->data, strlen(i->data));
    curl_slist_free_all(l);
}

/* POSTs the form to the endpoint. Returns 0 with the HTTP status and the body in b, or -1 with
 * err (every failure here is temporary except a refused URL, which sets *temporary false). */
static int http_post(const struct oauth_client_params *p, struct resp_buf *b, long *status,
                     char *host, size_t hostcap, bool *temporary, char *err, size_t errlen)
{
    *temporary = true;
    host[0] = '\0';
    CURLU *u = curl_url();
    if (!u) {
        snprintf(err, errlen, "token endpoint: out of memory");
        return -1;
    }
    if (url_check(u, p->token_url, host, hostcap, err, errlen) != 0) {
        curl_url_cleanup(u);
        *temporary = false;
        return -1;
    }
    bool basic = !p->secret_in_body && p->client_secret && *p->client_secret;
    size_t form_len = 0, auth_len = 0;
    char *form = build_form(p, basic, &form_len);
    char *auth = basic ? build_basic(p, &auth_len) : NULL;
    CURL *h = curl_easy_init();
    struct curl_slist *hdrs = NULL;
    int rc = -1;
    if (!form || (basic && !auth) || !h) {
        snprintf(err, errlen, "token endpoint %s: out of memory", host);
        goto out;
    }
    static const char *const fixed[] = {"Content-Type: application/x-www-form-urlencoded",
                                        "Accept: application/json", "Expect:"};
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) {
        struct curl_slist *l = curl_slist_append(hdrs, fixed[i]);
        if (!l)
            goto nomem;
        hdrs = l;
    }
    if (auth) {
        struct curl_slist *l = curl_slist_append(hdrs, auth);
        if (!l)
            goto nomem;
        hdrs = l;
    }
    char ebuf[CURL_ERROR_SIZE] = "";
    CURLcode cc = CURLE_OK;
    bool https = strncasecmp(p->token_url, "https:", 6) == 0;
#define SETOPT(opt, val)                                                                           \
    do {                                                                                           \
        if (cc == CURLE_OK)                                                                        \
            cc = curl_easy_setopt(h, opt, val);                                                    \
    } while (0)
    SETOPT(CURLOPT_ERRORBUFFER, ebuf);
    SETOPT(CURLOPT_CURLU, u); /* the URL exactly as url_check read it */
    SETOPT(CURLOPT_PROTOCOLS_STR, https ? "https" : "http");
    SETOPT(CURLOPT_FOLLOWLOCATION, 0L);
    SETOPT(CURLOPT_SSL_VERIFYPEER, 1L);
    SETOPT(CURLOPT_SSL_VERIFYHOST, 2L);
    if (p->cafile && *p->cafile)
        SETOPT(CURLOPT_CAINFO, p->cafile);
    SETOPT(CURLOPT_CONNECTTIMEOUT_MS, (long)TOKEN_CONNECT_TIMEOUT_MS);
    SETOPT(CURLOPT_TIMEOUT_MS, (long)TOKEN_FETCH_TIMEOUT_MS);
    SETOPT(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)TOKEN_BODY_MAX);
    SETOPT(CURLOPT_NOSIGNAL, 1L);
    SETOPT(CURLOPT_USERAGENT, "submitd");
    SETOPT(CURLOPT_NOPROXY, "127.0.0.1,::1,localhost");
    SETOPT(CURLOPT_POST, 1L);
    SETOPT(CURLOPT_POSTFIELDS, form); /* not copied: wiped below */
    SETOPT(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)form_len);
    SETOPT(CURLOPT_HTTPHEADER, hdrs);
    SETOPT(CURLOPT_WRITEFUNCTION, on_body);
    SETOPT(CURLOPT_WRITEDATA, b);
#undef SETOPT
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "token endpoint %s: curl_easy_setopt: %s", host,
                 curl_easy_strerror(cc));
        goto out;
    }
    cc = curl_easy_perform(h);
    if (b->too_big || cc == CURLE_FILESIZE_EXCEEDED) {
        snprintf(err, errlen, "token endpoint %s: response larger than %d bytes", host,
                 TOKEN_BODY_MAX);
        goto out;
    }
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "token endpoint %s: %s", host,
                 ebuf[0] ? ebuf : curl_easy_strerror(cc));
        goto out;
    }
    *status = 0;
    if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status) != CURLE_OK) {
        snprintf(err, errlen, "token endpoint %s: no HTTP status", host);
        goto out;
    }
    b->data[b->len] = '\0';
    rc = 0;
    goto out;
nomem:
    snprintf(err, errlen, "token endpoint %s: out of memory", host);
out:
    if (h)
        curl_easy_cleanup(h);
    slist_wipe_free(hdrs);
    wipe_free(form, form_len);
    wipe_free(auth, auth_len);
    curl_url_cleanup(u);
    return rc;
}

/* ---- the response ---- */

/* True when text contains one of the credentials we sent (an endpoint echoing it back). */
static bool echoes_secret(const char *text, const struct oauth_client_params *p)
{
    const char *secrets[] = {p->client_secret, p->refresh_token};
    for (size_t i = 0; i < sizeof secrets / sizeof *secrets; i++)
        if (secrets[i] && strlen(secrets[i]) >= 4 && strstr(text, secrets[i]))
            return true;
    return false;
}

/* An RFC 6749 5.2 error response (or anything else that is not 200). */
static void error_response(const struct oauth_client_params *p, const char *host, long status,
                           json_t *doc, bool *temporary, char *err, size_t errlen)
{
    const char *code = doc ? json_string_value(json_object_get(doc, "error")) : NULL;
    if (code && *code) {
        const char *desc = json_string_value(json_object_get(doc, "error_description"));
        char c[TOKEN_CODE_MAX + 8], d[TOKEN_DESC_MAX + 8] = "";
        sanitize(echoes_secret(code, p) ? "(withheld)" : code, TOKEN_CODE_MAX, c, sizeof c);
        if (desc && *desc)
            sanitize(echoes_secret(desc, p) ? "(withheld)" : desc, TOKEN_DESC_MAX, d, sizeof d);
        /* The endpoint's verdict is final, unless it says it is the one in trouble. */
        *temporary = status >= 500 || status == 429 || strcmp(code, "server_error") == 0 ||
                     strcmp(code, "temporarily_unavailable") == 0;
        snprintf(err, errlen, "token endpoint: %s%s%s (HTTP %ld from %s)", c, d[0] ? ": " : "", d,
                 status, host);
        return;
    }
    /* No OAuth error: a proxy, an outage, a wrong path. Nothing says the client is refused. */
    *temporary = true;
    snprintf(err, errlen, "token endpoint %s: HTTP %ld%s", host, status,
             status == 200 ? "" : " without an OAuth error");
}

/* expires_in (RFC 6749 5.1): a number; some endpoints send a numeric string. Clamped. */
static int64_t expires_in(json_t *doc)
{
    json_t *v = json_object_get(doc, "expires_in");
    double s = TOKEN_EXPIRES_DEFAULT;
    if (json_is_number(v)) {
        s = json_number_value(v);
    } else if (json_is_string(v)) {
        char *end = NULL;
        errno = 0;
        double d = strtod(json_string_value(v), &end);
        if (errno == 0 && end && *end == '\0' && end != json_string_value(v))
            s = d;
    }
    if (!isfinite(s) || s < TOKEN_EXPIRES_MIN)
        return TOKEN_EXPIRES_MIN;
    if (s > TOKEN_EXPIRES_MAX)
        return TOKEN_EXPIRES_MAX;
    return (int64_t)s;
}

/* One fetch: the token (malloc'd) and its lifetime in seconds, or NULL with err. */
static char *fetch_token(const char *key, const struct oauth_client_params *p,
                         oauth_rotated_fn rotated, void *arg, int64_t *lifetime, bool *temporary,
                         char *err, size_t errlen)
{
    struct resp_buf b = {.data = malloc(TOKEN_BODY_MAX + 1)};
    if (!b.data) {
        *temporary = true;
        snprintf(err, errlen, "token endpoint: out of memory");
        return NULL;
    }
    char host[300];
    long status = 0;
    char *token = NULL;
    json_t *doc = NULL;
    if (http_post(p, &b, &status, host, sizeof host, temporary, err, errlen) != 0)
        goto out;
    json_error_t jerr;
    doc = json_loadb(b.data, b.len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc && !json_is_object(doc)) {
        json_decref(doc);
        doc = NULL;
    }
    if (status != 200) {
        error_response(p, host, status, doc, temporary, err, errlen);
        goto out;
    }
    *temporary = true; /* a broken answer: the endpoint may be fixed later */
    if (!doc) {
        snprintf(err, errlen, "token endpoint %s: the response is not a JSON object", host);
        goto out;
    }
    json_t *at = json_object_get(doc, "access_token");
    if (!json_is_string(at) || !token_chars_ok(json_string_value(at))) {
        snprintf(err, errlen, "token endpoint %s: no usable access_token in the response", host);
        goto out;
    }
    json_t *tt = json_object_get(doc, "token_type");
    if (tt && (!json_is_string(tt) || strcasecmp(json_string_value(tt), "Bearer") != 0)) {
        char t[40];
        sanitize(json_is_string(tt) ? json_string_value(tt) : "(not a string)", 32, t, sizeof t);
        *temporary = false;
        snprintf(err, errlen, "token endpoint %s: token_type \"%s\" is not Bearer", host, t);
        goto out;
    }
    json_t *rt = json_object_get(doc, "refresh_token");
    if (json_is_string(rt) && token_chars_ok(json_string_value(rt)) &&
        strcmp(json_string_value(rt), str_or_empty(p->refresh_token)) != 0 && rotated)
        rotated(key, json_string_value(rt), arg); /* stored before the token is used */
    token = strdup(json_string_value(at));
    if (!token) {
        snprintf(err, errlen, "token endpoint %s: out of memory", host);
        goto out;
    }
    *lifetime = expires_in(doc);
out:
    json_decref(doc);
    wipe_free(b.data, b.len + 1);
    return token;
}

/* ---- the cache ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

struct oauth_tokens *oauth_tokens_new(void)
{
    if (sodium_init() < 0 || pthread_once(&curl_once, curl_init_once) != 0 ||
        curl_init_rc != CURLE_OK)
        return NULL;
    struct oauth_tokens *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    if (pthread_mutex_init(&c->mu, NULL) != 0) {
        free(c);
        return NULL;
    }
    return c;
}

static void entry_free(struct token_entry *e)
{
    wipe_free_str(e->token);
    pthread_mutex_destroy(&e->mu);
    pthread_cond_destroy(&e->done);
    free(e->key);
    free(e);
}

void oauth_tokens_free(struct oauth_tokens *c)
{
    if (!c)
        return;
    for (struct token_entry *e = c->entries, *next; e; e = next) {
        next = e->next;
        entry_free(e);
    }
    pthread_mutex_destroy(&c->mu);
    free(c);
}

/* The entry for key, made when create and there is none. */
static struct token_entry *entry_find(struct oauth_tokens *c, const char *key, bool create)
{
    pthread_mutex_lock(&c->mu);
    struct token_entry *e = c->entries;
    while (e && strcmp(e->key, key) != 0)
        e = e->next;
    if (!e && create && (e = calloc(1, sizeof *e)) != NULL) {
        bool cond_ok = timed_wait_cond_init(&e->done) == 0;
        bool mu_ok = cond_ok && pthread_mutex_init(&e->mu, NULL) == 0;
        e->key = strdup(key);
        if (!e->key || !mu_ok) {
            if (cond_ok)
                pthread_cond_destroy(&e->done);
            if (mu_ok)
                pthread_mutex_destroy(&e->mu);
            free(e->key);
            free(e);
            e = NULL;
        } else {
            e->next = c->entries;
            c->entries = e;
        }
    }
    pthread_mutex_unlock(&c->mu);
    return e;
}

char *oauth_tokens_get(struct oauth_tokens *c, const char *key, const struct oauth_client_params *p,
                       oauth_rotated_fn rotated, void *arg, bool *temporary, char *err,
                       size_t errlen)
{
    bool tmp_dummy;
    if (!temporary)
        temporary = &tmp_dummy;
    *temporary = true;
    if (errlen)
        err[0] = '\0';
    if (!key)
        key = "";
    struct token_entry *e = entry_find(c, key, true);
    if (!e) {
        snprintf(err, errlen, "token cache: out of memory");
        return NULL;
    }
    unsigned char fp[TOKEN_FP_LEN];
    params_fp(p, fp);
    struct timespec deadline = timed_wait_deadline(CLOCK_MONOTONIC, TOKEN_WAIT_MS);
    char *out = NULL;

    pthread_mutex_lock(&e->mu);
    uint64_t seen = e->gen;
    for (;;) {
        if (e->token && memcmp(e->fp, fp, sizeof fp) == 0 &&
            mono_ms() < e->expires_ms - TOKEN_MARGIN_MS) {
            out = strdup(e->token);
            if (!out)
                snprintf(err, errlen, "token cache: out of memory");
            break;
        }
        if (e->busy) {
            if (pthread_cond_timedwait(&e->done, &e->mu, &deadline) == ETIMEDOUT) {
                snprintf(err, errlen,
                         "token endpoint: another fetch for %s still running after "
                         "%d ms",
                         key, TOKEN_WAIT_MS);
                break;
            }
            continue;
        }
        /* A fetch we waited for failed: its answer is ours too (same parameters). */
        if (e->gen != seen && !e->last_ok && memcmp(e->last_fp, fp, sizeof fp) == 0) {
            *temporary = e->last_temporary;
            snprintf(err, errlen, "%s", e->last_err);
            break;
        }
        e->busy = true;
        pthread_mutex_unlock(&e->mu);

        int64_t lifetime = 0;
        bool tmp = true;
        char ferr[sizeof e->last_err] = "";
        char *tok = fetch_token(key, p, rotated, arg, &lifetime, &tmp, ferr, sizeof ferr);
        int64_t fetched = mono_ms();

        pthread_mutex_lock(&e->mu);
        e->busy = false;
        e->gen++;
        memcpy(e->last_fp, fp, sizeof fp);
        e->last_ok = tok != NULL;
        e->last_temporary = tmp;
        snprintf(e->last_err, sizeof e->last_err, "%s", ferr);
        if (tok) {
            wipe_free_str(e->token);
            e->token = tok;
            e->expires_ms = fetched + lifetime * 1000;
            memcpy(e->fp, fp, sizeof fp);
            out = strdup(tok);
            if (!out)
                snprintf(err, errlen, "token cache: out of memory");
        } else {
            *temporary = tmp;
            snprintf(err, errlen, "%s", ferr);
        }
        pthread_cond_broadcast(&e->done);
        break;
    }
    pthread_mutex_unlock(&e->mu);
    return out;
}

void oauth_tokens_invalidate(struct oauth_tokens *c, const char *key)
{
    struct token_entry *e = entry_find(c, key ? key : "", false);
    if (!e)
        return;
    pthread_mutex_lock(&e->mu);
    wipe_free_str(e->token);
    e->token = NULL;
    e->expires_ms = 0;
    pthread_mutex_unlock(&e->mu);
}
