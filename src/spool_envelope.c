/* spool_envelope.c: the envelope line of a queue file (docs/spool.md, "File format"): one
 * compact JSON object, written by spool_create (version 2) and read back by spool_load (versions
 * 1 and 2). Version 2 adds the submission's reference and the RFC 3461 DSN parameters: RET and
 * ENVID per message, NOTIFY and ORCPT per recipient, and whether the message is itself a DSN. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "spool.h"
#include "spool_internal.h"

/* Sets KEY to the string VALUE; fails when VALUE is not UTF-8 (JSON cannot carry it). */
static int set_str(json_t *obj, const char *key, const char *value, char *err, size_t errlen)
{
    json_t *v = json_string(value);
    if (v == NULL || json_object_set_new(obj, key, v) == -1) {
        snprintf(err, errlen, "spool envelope: %s is not valid UTF-8", key);
        errno = EINVAL;
        return -1;
    }
    return 0;
}

const struct spool_notify_word spool_notify_words[SPOOL_NOTIFY_WORDS] = {
    {"NEVER", DSN_NOTIFY_NEVER},
    {"SUCCESS", DSN_NOTIFY_SUCCESS},
    {"FAILURE", DSN_NOTIFY_FAILURE},
    {"DELAY", DSN_NOTIFY_DELAY}};

/* "notify": a list of words per recipient ([] = not given); "orcpt": a string or null each. */
static int set_dsn_rcpts(json_t *obj, const struct spool_envelope *env, char *err, size_t errlen)
{
    /* json_object_set_new takes the reference even when it fails; obj owns both arrays. */
    json_t *notify = json_array();
    if (notify == NULL || json_object_set_new(obj, "notify", notify) == -1)
        goto nomem;
    json_t *orcpt = json_array();
    if (orcpt == NULL || json_object_set_new(obj, "orcpt", orcpt) == -1)
        goto nomem;
    for (size_t i = 0; i < env->n_rcpts; i++) {
        unsigned bits = env->notify != NULL ? env->notify[i] : 0;
        json_t *words = json_array(), *o;
        if (words == NULL || json_array_append_new(notify, words) == -1)
            goto nomem;
        for (size_t w = 0; w < SPOOL_NOTIFY_WORDS; w++)
            if ((bits & spool_notify_words[w].bit) &&
                json_array_append_new(words, json_string(spool_notify_words[w].word)) == -1)
                goto nomem;
        if (env->orcpt != NULL && env->orcpt[i] != NULL) {
            o = json_string(env->orcpt[i]);
            if (o == NULL) {
                snprintf(err, errlen, "spool envelope: orcpt[%zu] is not valid UTF-8", i);
                errno = EINVAL;
                return -1;
            }
        } else {
            o = json_null();
        }
        if (json_array_append_new(orcpt, o) == -1)
            goto nomem;
    }
    return 0;
nomem:
    snprintf(err, errlen, "spool envelope: out of memory");
    errno = ENOMEM;
    return -1;
}

char *spool_envelope_json(const struct spool_envelope *env, const char *id, char *err,
                          size_t errlen)
{
    json_t *obj = json_object(), *rcpts;
    char *out = NULL;
    size_t i;
    if (obj == NULL || json_object_set_new(obj, "id", json_string(id)) == -1 ||
        json_object_set_new(obj, "received_ms", json_integer(env->received_ms)) == -1)
        goto nomem;
    if (set_str(obj, "sender", env->sender, err, errlen) == -1)
        goto fail;
    rcpts = json_array();
    if (rcpts == NULL)
        goto nomem;
    for (i = 0; i < env->n_rcpts; i++) {
        json_t *r = json_string(env->rcpts[i]);
        if (r == NULL || json_array_append_new(rcpts, r) == -1) {
            snprintf(err, errlen, "spool envelope: rcpts[%zu] is not valid UTF-8", i);
            errno = EINVAL;
            json_decref(rcpts);
            goto fail;
        }
    }
    if (json_object_set_new(obj, "rcpts", rcpts) == -1)
        goto nomem;
    if (set_str(obj, "auth_user", env->auth_user, err, errlen) == -1 ||
        set_str(obj, "tenant", env->tenant, err, errlen) == -1 ||
        set_str(obj, "client_ip", env->client_ip, err, errlen) == -1 ||
        set_str(obj, "helo", env->helo, err, errlen) == -1 ||
        set_str(obj, "session", env->session, err, errlen) == -1 ||
        set_str(obj, "body", env->body, err, errlen) == -1)
        goto fail;
    if (json_object_set_new(obj, "client_port", json_integer(env->client_port)) == -1 ||
        json_object_set_new(obj, "smtputf8", json_boolean(env->smtputf8)) == -1)
        goto nomem;
    if (set_str(obj, "ref", env->ref, err, errlen) == -1 ||
        set_str(obj, "envid", env->envid, err, errlen) == -1 ||
        set_str(obj, "ret", env->ret, err, errlen) == -1)
        goto fail;
    if (set_dsn_rcpts(obj, env, err, errlen) == -1)
        goto fail;
    if (json_object_set_new(obj, "is_dsn", json_boolean(env->is_dsn)) == -1)
        goto nomem;
    out = json_dumps(obj, JSON_COMPACT);
    if (out == NULL)
        goto nomem;
    /* Compact output escapes control characters, so the envelope stays on one line. */
    if (strchr(out, '\n') != NULL) {
        snprintf(err, errlen, "spool envelope: JSON contains a newline");
        errno = EINVAL;
        free(out);
        out = NULL;
    }
    json_decref(obj);
    return out;
nomem:
    snprintf(err, errlen, "spool envelope: out of memory");
    errno = ENOMEM;
fail:
    json_decref(obj);
    return NULL;
}

/* Copies string KEY of OBJ into DST (DSTSIZE octets with the NUL); false if absent or too long. */
static bool get_str(json_t *obj, const char *key, char *dst, size_t dstsize)
{
    json_t *v = json_object_get(obj, key);
    const char *str;
    size_t len;
    if (!json_is_string(v))
        return false;
    str = json_string_value(v);
    len = json_string_length(v);
    if (len >= dstsize || strlen(str) != len)
        return false;
    memcpy(dst, str, len + 1);
    return true;
}

static bool get_rcpts(json_t *obj, struct spool_envelope *env)
{
    json_t *arr = json_object_get(obj, "rcpts");
    size_t i, n;
    if (!json_is_array(arr))
        return false;
    n = json_array_size(arr);
    env->rcpts = calloc(n > 0 ? n : 1, sizeof *env->rcpts);
    if (env->rcpts == NULL)
        return false;
    for (i = 0; i < n; i++) {
        json_t *v = json_array_get(arr, i);
        if (!json_is_string(v) || json_string_length(v) > SMTP_PATH_MAX ||
            strlen(json_string_value(v)) != json_string_length(v))
            return false;
        env->rcpts[i] = strdup(json_string_value(v));
        if (env->rcpts[i] == NULL)
            return false;
        env->n_rcpts = i + 1;
    }
    return true;
}

/* One recipient's NOTIFY list: known words, none twice, NEVER only alone. */
static bool get_notify_list(json_t *list, unsigned *bits)
{
    size_t i;
    json_t *v;
    *bits = 0;
    if (!json_is_array(list))
        return false;
    json_array_foreach(list, i, v)
    {
        unsigned bit = 0;
        if (!json_is_string(v))
            return false;
        for (size_t w = 0; w < SPOOL_NOTIFY_WORDS; w++)
            if (strcmp(json_string_value(v), spool_notify_words[w].word) == 0)
                bit = spool_notify_words[w].bit;
        if (bit == 0 || (*bits & bit))
            return false;
        *bits |= bit;
    }
    return !(*bits & DSN_NOTIFY_NEVER) || *bits == DSN_NOTIFY_NEVER;
}

/* Version 2: "ref", "envid", "ret", "notify" and "orcpt" (one entry per recipient), "is_dsn". */
static bool get_dsn(json_t *obj, struct spool_envelope *env)
{
    json_t *notify = json_object_get(obj, "notify"), *orcpt = json_object_get(obj, "orcpt");
    json_t *is_dsn = json_object_get(obj, "is_dsn");
    size_t i, n = env->n_rcpts;
    if (!get_str(obj, "ref", env->ref, sizeof env->ref) ||
        !get_str(obj, "envid", env->envid, sizeof env->envid) ||
        !get_str(obj, "ret", env->ret, sizeof env->ret) || !json_is_boolean(is_dsn))
        return false;
    if (env->ret[0] != '\0' && strcmp(env->ret, "FULL") != 0 && strcmp(env->ret, "HDRS") != 0)
        return false;
    env->is_dsn = json_is_true(is_dsn);
    if (!json_is_array(notify) || json_array_size(notify) != n || !json_is_array(orcpt) ||
        json_array_size(orcpt) != n)
        return false;
    env->notify = calloc(n > 0 ? n : 1, sizeof *env->notify);
    env->orcpt = calloc(n > 0 ? n : 1, sizeof *env->orcpt);
    if (env->notify == NULL || env->orcpt == NULL)
        return false;
    for (i = 0; i < n; i++) {
        json_t *o = json_array_get(orcpt, i);
        if (!get_notify_list(json_array_get(notify, i), &env->notify[i]))
            return false;
        if (json_is_null(o))
            continue;
        if (!json_is_string(o) || json_string_length(o) > DSN_ORCPT_MAX ||
            strlen(json_string_value(o)) != json_string_length(o))
            return false;
        env->orcpt[i] = strdup(json_string_value(o));
        if (env->orcpt[i] == NULL)
            return false;
    }
    return true;
}

bool spool_envelope_parse(const char *line, size_t len, const char *id, int version,
                          struct spool_envelope *env)
{
    json_error_t jerr;
    json_t *obj = json_loadb(line, len, JSON_REJECT_DUPLICATES, &jerr);
    json_t *received = json_object_get(obj, "received_ms");
    json_t *port = json_object_get(obj, "client_port");
    json_t *utf8 = json_object_get(obj, "smtputf8");
    bool ok = json_is_object(obj) && json_is_integer(received) && json_is_integer(port) &&
              json_is_boolean(utf8) && get_str(obj, "id", env->queue_id, sizeof env->queue_id) &&
              strcmp(env->queue_id, id) == 0 &&
              get_str(obj, "sender", env->sender, sizeof env->sender) &&
              get_str(obj, "auth_user", env->auth_user, sizeof env->auth_user) &&
              get_str(obj, "tenant", env->tenant, sizeof env->tenant) &&
              get_str(obj, "client_ip", env->client_ip, sizeof env->client_ip) &&
              get_str(obj, "helo", env->helo, sizeof env->helo) &&
              get_str(obj, "session", env->session, sizeof env->session) &&
              get_str(obj, "body", env->body, sizeof env->body) && get_rcpts(obj, env) &&
              (version < 2 || get_dsn(obj, env));
    if (ok) {
        json_int_t p = json_integer_value(port);
        ok = p >= 0 && p <= 65535;
        env->received_ms = json_integer_value(received);
        env->client_port = (int)p;
        env->smtputf8 = json_is_true(utf8);
    }
    json_decref(obj);
    return ok;
}

void spool_envelope_free(struct spool_envelope *env)
{
    size_t i;
    if (env->rcpts != NULL)
        for (i = 0; i < env->n_rcpts; i++)
            free(env->rcpts[i]);
    if (env->orcpt != NULL)
        for (i = 0; i < env->n_rcpts; i++)
            free(env->orcpt[i]);
    free(env->rcpts);
    free(env->notify);
    free(env->orcpt);
    env->rcpts = NULL;
    env->notify = NULL;
    env->orcpt = NULL;
    env->n_rcpts = 0;
}
