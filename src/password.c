/* password.c: owns password hashing and verification (argon2id through libsodium's
 * crypto_pwhash_str, RFC 9106 parameters chosen by libsodium's "interactive" profile). Every
 * verification does the same work: an unknown user, a mailbox without a password and a malformed
 * stored hash are verified against a dummy hash made at init with the current parameters, so the
 * time an AUTH takes does not reveal whether the mailbox exists (SPEC section 3).
 * The module state is written once by password_init, before threads start, and only read after. */
#include "password.h"

#include <string.h>

#include <sodium.h>

static bool pw_ready;
static unsigned long long pw_opslimit;
static size_t pw_memlimit;
static char pw_dummy[crypto_pwhash_STRBYTES];

int password_init(uint64_t memlimit)
{
    if (sodium_init() < 0)
        return -1;
    pw_opslimit = crypto_pwhash_OPSLIMIT_INTERACTIVE;
    pw_memlimit = memlimit != 0 ? (size_t)memlimit : crypto_pwhash_MEMLIMIT_INTERACTIVE;
    if (pw_memlimit < crypto_pwhash_MEMLIMIT_MIN)
        pw_memlimit = crypto_pwhash_MEMLIMIT_MIN;

    /* The dummy's password is random and forgotten: nothing can ever match it. */
    uint8_t secret[32];
    randombytes_buf(secret, sizeof secret);
    int rc =
        crypto_pwhash_str(pw_dummy, (const char *)secret, sizeof secret, pw_opslimit, pw_memlimit);
    sodium_memzero(secret, sizeof secret);
    if (rc != 0)
        return -1;
    pw_ready = true;
    return 0;
}

int password_hash(const uint8_t *pw, size_t len, char out[PASSWORD_HASH_MAX + 1])
{
    _Static_assert(PASSWORD_HASH_MAX + 1 >= crypto_pwhash_STRBYTES, "hash buffer too small");
    out[0] = '\0';
    if (!pw_ready || len > PASSWORD_MAX)
        return -1;
    char buf[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(buf, len > 0 ? (const char *)pw : "", len, pw_opslimit, pw_memlimit) != 0)
        return -1;
    memcpy(out, buf, sizeof buf);
    out[PASSWORD_HASH_MAX] = '\0';
    return 0;
}

/* A stored hash we can verify: NUL-terminated within crypto_pwhash_STRBYTES and parsable as an
 * argon2 string (crypto_pwhash_str_needs_rehash answers -1 for anything else). */
static bool hash_usable(const char *hash)
{
    if (hash == NULL || hash[0] == '\0')
        return false;
    if (strnlen(hash, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES)
        return false;
    if (strncmp(hash, crypto_pwhash_STRPREFIX, strlen(crypto_pwhash_STRPREFIX)) != 0)
        return false;
    return crypto_pwhash_str_needs_rehash(hash, pw_opslimit, pw_memlimit) >= 0;
}

bool password_verify(const char *hash, const uint8_t *pw, size_t len)
{
    if (!pw_ready)
        return false;
    const char *secret = pw != NULL && len > 0 ? (const char *)pw : "";
    if (pw == NULL)
        len = 0;
    bool too_long = len > PASSWORD_MAX;
    if (too_long)
        len = PASSWORD_MAX; /* a longer secret never matches; do the same work anyway */
    if (too_long || !hash_usable(hash)) {
        /* Same cost as a real verification; the result is ignored. */
        int ignored = crypto_pwhash_str_verify(pw_dummy, secret, len);
        (void)ignored;
        return false;
    }
    return crypto_pwhash_str_verify(hash, secret, len) == 0;
}

bool password_needs_rehash(const char *hash)
{
    if (hash == NULL || hash[0] == '\0' || !pw_ready)
        return false;
    if (strnlen(hash, crypto_pwhash_STRBYTES) >= crypto_pwhash_STRBYTES)
        return true;
    return crypto_pwhash_str_needs_rehash(hash, pw_opslimit, pw_memlimit) != 0;
}
