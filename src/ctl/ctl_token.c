/* ctl_token.c: `submitctl token issue`: a short-lived access token (a JWT, RFC 7519, signed as a
 * compact JWS, RFC 7515) from the tenant's built-in issuer, so that OAuth works with no identity
 * provider (SPEC sections 5 and 8); and ctl_token_verify, which checks a token for `explain`
 * exactly as the server's AUTH does: the tenant's key source (RFC 7517) through a jwks_cache,
 * then jwt_verify with the tenant's issuer, audience, scope and identity claim, then whether the
 * identity may act as the mailbox. Tokens are never printed back or kept: wiped after use. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "ctl.h"
#include "issuer.h"
#include "jwks_cache.h"
#include "jwt.h"
#include "smtp_parse.h"

enum { TOKEN_OPT_TTL, TOKEN_OPT_SCOPE, TOKEN_OPT_AUDIENCE };
static const struct ctl_opt token_issue_opts[] = {
    {"--ttl", true}, {"--scope", true}, {"--audience", true}, {NULL, false}};

/* A claim value given on the command line: printable ASCII, no spaces (scopes are joined by
 * spaces, so one scope has none), at most max octets. */
static bool claim_word(const char *v, size_t max)
{
    size_t n = strlen(v);
    if (n == 0 || n > max)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] <= 0x20 || (unsigned char)v[i] >= 0x7f)
            return false;
    return true;
}

static int token_issue(struct ctl *c, char **pos, int npos)
{
    (void)npos;
    const char *ttl_s = c->opt[TOKEN_OPT_TTL], *scope = c->opt[TOKEN_OPT_SCOPE];
    const char *audience = c->opt[TOKEN_OPT_AUDIENCE];
    long ttl = ISSUER_DEFAULT_TTL;
    if (!ctl_valid_address(pos[0]))
        return ctl_usage(c, "not a valid address: %s", pos[0]);
    if (ttl_s != NULL && !ctl_parse_int(ttl_s, 1, ISSUER_TTL_MAX, &ttl))
        return ctl_usage(c, "--ttl must be a number of seconds from 1 to %d", ISSUER_TTL_MAX);
    if (scope != NULL && !claim_word(scope, 63))
        return ctl_usage(c, "--scope must be 1-63 printable characters without spaces");
    if (audience != NULL && !claim_word(audience, 255))
        return ctl_usage(c, "--audience must be 1-255 printable characters without spaces");
    int rc = ctl_dir(c);
    if (rc != 0)
        return rc;
    static struct dir_auth_view v; /* large (every access rule); one per process */
    if ((rc = ctl_dir_status(c, dir_auth_view(c->dir, pos[0], &v), pos[0])) != 0)
        return rc;
    const char *domain = strrchr(pos[0], '@') + 1;
    if (!v.tenant_found)
        return ctl_fail(c, "%s is not an accepted domain of any tenant (submitctl tenant add %s)",
                        domain, domain);
    if (!v.mailbox_found)
        return ctl_fail(c, "no such mailbox: %s (submitctl mailbox add %s)", pos[0], pos[0]);
    const struct dir_tenant *t = &v.tenant;
    if (t->oauth_issuer[0] != '\0')
        return ctl_fail(c,
                        "tenant %s uses the external issuer %s: get tokens from it (the built-in "
                        "issuer is used again after submitctl tenant set %s issuer builtin)",
                        t->domain, t->oauth_issuer, t->domain);
    if (audience == NULL)
        audience = t->oauth_audience[0] ? t->oauth_audience : ISSUER_DEFAULT_AUDIENCE;
    if (scope == NULL)
        scope = t->oauth_scope[0] ? t->oauth_scope : "SMTP.Send";
    char err[512] = "";
    char *token = issuer_issue(c->datadir, t->domain, v.mailbox.address, audience, scope,
                               (int64_t)time(NULL), (int)ttl, err, sizeof err);
    if (token == NULL)
        return ctl_fail(c, "cannot issue a token for %s: %s", v.mailbox.address,
                        err[0] ? err : "unknown error");
    size_t len = strlen(token);
    if (fwrite(token, 1, len, stdout) != len || fputc('\n', stdout) == EOF)
        rc = ctl_fail(c, "cannot write the token to standard output");
    sodium_memzero(token, len);
    free(token);
    return rc;
}

const char *ctl_token_check_name(enum ctl_token_check check)
{
    static const char *const names[TOKEN_CHECK_COUNT] = {"format", "alg",      "key",   "signature",
                                                         "exp",    "nbf",      "iss",   "aud",
                                                         "scope",  "identity", "act-as"};
    return check < TOKEN_CHECK_COUNT ? names[check] : "?";
}

/* The check jwt_verify's answer belongs to (it checks in the order of enum ctl_token_check). */
static enum ctl_token_check check_of(enum jwt_error e)
{
    switch (e) {
    case JWT_OK:
        return TOKEN_CHECK_ACT_AS;
    case JWT_MALFORMED:
    case JWT_OVERSIZED:
    case JWT_ERROR_COUNT:
        return TOKEN_CHECK_FORMAT;
    case JWT_ALG_REJECTED:
        return TOKEN_CHECK_ALG;
    case JWT_UNKNOWN_KID:
    case JWT_KEY_MISMATCH:
        return TOKEN_CHECK_KEY;
    case JWT_BAD_SIGNATURE:
        return TOKEN_CHECK_SIGNATURE;
    case JWT_EXPIRED:
        return TOKEN_CHECK_EXP;
    case JWT_NOT_YET_VALID:
        return TOKEN_CHECK_NBF;
    case JWT_WRONG_ISSUER:
        return TOKEN_CHECK_ISS;
    case JWT_WRONG_AUDIENCE:
        return TOKEN_CHECK_AUD;
    case JWT_NO_SCOPE:
        return TOKEN_CHECK_SCOPE;
    case JWT_NO_IDENTITY:
        return TOKEN_CHECK_IDENTITY;
    }
    return TOKEN_CHECK_FORMAT;
}

/* What the server expects of a token for tenant t (as in session_auth.c). */
struct expectation {
    char issuer[300];
    char source[1100]; /* the key source, for people */
    struct jwt_expect expect;
};

static void expectation_of(const struct dir_tenant *t, int64_t now, struct expectation *x)
{
    if (t->oauth_issuer[0])
        snprintf(x->issuer, sizeof x->issuer, "%s", t->oauth_issuer);
    else
        issuer_name(t->domain, x->issuer, sizeof x->issuer);
    if (t->oauth_jwks[0])
        snprintf(x->source, sizeof x->source, "%s", t->oauth_jwks);
    else
        snprintf(x->source, sizeof x->source, "the built-in key of %s", t->domain);
    x->expect = (struct jwt_expect){
        .issuer = x->issuer,
        .audience = t->oauth_audience[0] ? t->oauth_audience : ISSUER_DEFAULT_AUDIENCE,
        .scope = t->oauth_scope[0] ? t->oauth_scope : "SMTP.Send",
        .app_role = "SMTP.SendAsApp",
        .identity_claim = t->oauth_identity_claim[0] ? t->oauth_identity_claim : NULL,
        .now = now,
        .skew = JWT_SKEW_MAX,
    };
}

/* The line of one check that was reached: what was compared, and why it failed. */
static void describe(struct ctl_token_report *r, enum ctl_token_check k, bool failed,
                     const struct expectation *x, size_t len)
{
    const struct jwt_claims *cl = &r->claims;
    const struct jwt_expect *e = &x->expect;
    char *d = r->detail[k];
    size_t cap = sizeof r->detail[k];
    char when[40];
    switch (k) {
    case TOKEN_CHECK_FORMAT:
        if (r->error == JWT_OVERSIZED)
            snprintf(d, cap, "longer than %d octets", JWT_MAX_LEN);
        else if (failed)
            snprintf(d, cap,
                     "not a compact JWS (three base64url parts, JSON header and claims "
                     "of the right types)");
        else
            snprintf(d, cap, "compact JWS, %zu octets", len);
        break;
    case TOKEN_CHECK_ALG:
        if (failed)
            snprintf(d, cap, "alg refused: only RS256, ES256 and EdDSA (never none or HMAC)");
        else
            snprintf(d, cap, "%s", jwt_alg_name(cl->alg));
        break;
    case TOKEN_CHECK_KEY:
        if (r->keys_unavailable)
            break; /* filled in by the caller */
        if (r->error == JWT_KEY_MISMATCH)
            snprintf(d, cap, "the key with kid %s does not fit alg %s", cl->kid[0] ? cl->kid : "-",
                     jwt_alg_name(cl->alg));
        else if (failed)
            snprintf(d, cap, "no key %s%s in %s", cl->kid[0] ? "with kid " : "that fits (no kid)",
                     cl->kid, x->source);
        else
            snprintf(d, cap, "kid %s found in %s", cl->kid[0] ? cl->kid : "(none)", x->source);
        break;
    case TOKEN_CHECK_SIGNATURE:
        snprintf(d, cap, "%s", failed ? "bad signature" : "valid");
        break;
    case TOKEN_CHECK_EXP:
        ctl_time_s(cl->exp, when, sizeof when);
        if (failed)
            snprintf(d, cap, "expired at %s, %lld s ago (skew %d s)", when,
                     (long long)(e->now - cl->exp), e->skew);
        else
            snprintf(d, cap, "expires %s, in %lld s", when, (long long)(cl->exp - e->now));
        break;
    case TOKEN_CHECK_NBF:
        ctl_time_s(cl->nbf, when, sizeof when);
        if (failed)
            snprintf(d, cap, "not valid before %s, in %lld s (skew %d s)", when,
                     (long long)(cl->nbf - e->now), e->skew);
        else if (cl->nbf != 0)
            snprintf(d, cap, "valid since %s", when);
        else
            snprintf(d, cap, "no nbf");
        break;
    case TOKEN_CHECK_ISS:
        if (failed)
            snprintf(d, cap, "iss '%s', the tenant expects '%s'", cl->iss, e->issuer);
        else
            snprintf(d, cap, "%s", e->issuer);
        break;
    case TOKEN_CHECK_AUD:
        snprintf(d, cap, "%s %s", failed ? "does not contain" : "contains", e->audience);
        break;
    case TOKEN_CHECK_SCOPE:
        if (failed)
            snprintf(d, cap, "neither scope %s (scp/scope) nor role %s (roles)", e->scope,
                     e->app_role);
        else if (cl->app_only)
            snprintf(d, cap, "role %s (app-only token)", e->app_role);
        else
            snprintf(d, cap, "scope %s", e->scope);
        break;
    case TOKEN_CHECK_IDENTITY:
        if (failed)
            snprintf(d, cap, "no %s claim%s", e->identity_claim ? e->identity_claim : "identity",
                     e->identity_claim ? "" : " (email, upn, preferred_username)");
        else
            snprintf(d, cap, "%s (claim %s%s)", cl->identity,
                     cl->app_only && !e->identity_claim ? "sub of an app-only token or " : "",
                     e->identity_claim ? e->identity_claim : "email, upn or preferred_username");
        break;
    case TOKEN_CHECK_ACT_AS:
    case TOKEN_CHECK_COUNT:
        break;
    }
}

int ctl_token_verify(struct ctl *c, const struct dir_auth_view *v, const char *token, size_t len,
                     struct ctl_token_report *out)
{
    memset(out, 0, sizeof *out);
    const struct dir_tenant *t = &v->tenant;
    static struct expectation x; /* big text fields; one per process */
    expectation_of(t, (int64_t)time(NULL), &x);
    enum jwt_alg alg = JWT_ALG_NONE;
    char kid[JWT_KID_MAX + 1] = "";
    out->error = jwt_peek(token, len, &alg, kid);
    out->claims.alg = alg;
    snprintf(out->claims.kid, sizeof out->claims.kid, "%s", kid);
    if (out->error == JWT_OK) {
        char err[256] = "";
        /* submitctl has one thread: libcurl's global setup can happen here, when needed. */
        bool remote = strncmp(t->oauth_jwks, "http", 4) == 0;
        struct jwks_cache *cache =
            !remote || jwks_cache_global_init() == 0 ? jwks_cache_new(c->datadir) : NULL;
        struct jwks_ref *keys = cache ? jwks_cache_get(cache, t->domain, t->oauth_jwks, kid,
                                                       x.expect.now, err, sizeof err)
                                      : NULL;
        if (keys == NULL) {
            out->keys_unavailable = true;
            snprintf(out->detail[TOKEN_CHECK_KEY], sizeof out->detail[TOKEN_CHECK_KEY],
                     "cannot get the keys from %s: %s (the server answers a temporary failure)",
                     x.source, cache ? err : "cannot set up the key cache (libcurl)");
            out->error = JWT_UNKNOWN_KID;
        } else {
            out->error = jwt_verify(token, len, jwks_ref_keys(keys), &x.expect, &out->claims);
            jwks_ref_release(keys);
        }
        jwks_cache_free(cache);
    }
    enum ctl_token_check failed = check_of(out->error);
    for (int k = 0; k <= (int)failed && k < TOKEN_CHECK_ACT_AS; k++) {
        out->outcome[k] = k == (int)failed ? CHECK_FAIL : CHECK_PASS;
        describe(out, (enum ctl_token_check)k, k == (int)failed, &x, len);
    }
    if (out->error != JWT_OK)
        return 0;
    /* The identity against the SASL user, as the server compares them. */
    const struct jwt_claims *cl = &out->claims;
    if (!smtp_address_normalize(cl->identity, out->principal, sizeof out->principal))
        snprintf(out->principal, sizeof out->principal, "%s", cl->identity);
    bool self = strcmp(out->principal, v->mailbox.address) == 0;
    enum dir_status st = self ? DIR_OK : dir_may_act_as(c->dir, v->mailbox.id, out->principal);
    if (st == DIR_TEMPFAIL || st == DIR_INVALID) {
        ctl_dir_status(c, st, v->mailbox.address);
        return -1;
    }
    out->valid = st == DIR_OK;
    out->delegated = out->valid && !self;
    out->outcome[TOKEN_CHECK_ACT_AS] = out->valid ? CHECK_PASS : CHECK_FAIL;
    char *d = out->detail[TOKEN_CHECK_ACT_AS];
    size_t cap = sizeof out->detail[TOKEN_CHECK_ACT_AS];
    if (self)
        snprintf(d, cap, "%s is the mailbox itself", out->principal);
    else if (out->valid)
        snprintf(d, cap, "%s was granted access to %s", out->principal, v->mailbox.address);
    else
        snprintf(d, cap, "%s is not %s and was not granted access to it", out->principal,
                 v->mailbox.address);
    return 0;
}

const struct ctl_command ctl_token_commands[] = {
    {"token", "issue", "ADDRESS [--ttl SECONDS] [--scope SCOPE] [--audience AUD]",
     "print an access token for ADDRESS from the tenant's built-in issuer (ttl 1-86400 s, "
     "default 3600; scope and audience default to the tenant's)",
     1, 1, 0, token_issue_opts, token_issue},
    {NULL, NULL, NULL, NULL, 0, 0, 0, NULL, NULL},
};
