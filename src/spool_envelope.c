/* spool_envelope.c: the envelope line of a queue file (docs/spool.md, "File format"): one
 * compact JSON object, written by spool_create and read back by spool_load. */
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

bool spool_envelope_parse(const char *line, size_t len, const char *id, struct spool_envelope *env)
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
              get_str(obj, "body", env->body, sizeof env->body) && get_rcpts(obj, env);
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
    free(env->rcpts);
    env->rcpts = NULL;
    env->n_rcpts = 0;
}
