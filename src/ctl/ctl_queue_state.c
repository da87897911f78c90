/* ctl_queue_state.c: the delivery state in `submitctl queue list|show` (ctl_queue_state.h;
 * docs/submitctl.md). */
#include "ctl_queue_state.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "queue_state.h"

/* The recipients' states (all pending when the message was never tried); NULL without memory. */
static struct qs_rcpt *load_state(struct spool *s, const struct spool_envelope *env)
{
    struct qs_rcpt *st = calloc(env->n_rcpts ? env->n_rcpts : 1, sizeof *st);
    if (st != NULL)
        (void)qstate_load(s, env->queue_id, st, env->n_rcpts); /* damage: shown as read */
    return st;
}

void ctl_queue_state_json(struct spool *s, const struct spool_envelope *env, json_t *j)
{
    struct qs_rcpt *st = load_state(s, env);
    json_t *arr = json_array();
    if (j == NULL || st == NULL || arr == NULL) {
        free(st);
        json_decref(arr);
        return;
    }
    for (size_t i = 0; i < env->n_rcpts; i++) {
        const struct qs_rcpt *r = &st[i];
        char last[40] = "", next[40] = "";
        if (r->last_ms > 0)
            ctl_time_ms(r->last_ms, last, sizeof last);
        if (r->status == QS_DEFERRED && r->next_ms > 0)
            ctl_time_ms(r->next_ms, next, sizeof next);
        json_t *o =
            json_pack("{s:s, s:s, s:i, s:o, s:o, s:i, s:s, s:s, s:s, s:s, s:s}", "rcpt",
                      env->rcpts[i], "status", qs_status_name(r->status), "attempts",
                      (int)r->attempts, "last_attempt", last[0] ? json_string(last) : json_null(),
                      "next_attempt", next[0] ? json_string(next) : json_null(), "reply_code",
                      r->code, "reply_enhanced", r->enhanced, "reply_text", r->text, "remote",
                      r->remote, "stage", r->stage, "dsn_queue_id", r->dsn_id);
        json_array_append_new(arr, o);
    }
    json_object_set_new(j, "held", json_boolean(spool_is_held(s, env->queue_id)));
    json_object_set_new(j, "delivery", arr);
    free(st);
}

void ctl_queue_state_print(struct spool *s, const struct spool_envelope *env)
{
    struct qs_rcpt *st = load_state(s, env);
    if (st == NULL)
        return;
    if (spool_is_held(s, env->queue_id))
        printf("held                yes (submitctl queue release %s)\n", env->queue_id);
    for (size_t i = 0; i < env->n_rcpts; i++) {
        const struct qs_rcpt *r = &st[i];
        printf("%-19s <%s> %s", i == 0 ? "delivery" : "", env->rcpts[i], qs_status_name(r->status));
        if (r->attempts > 0)
            printf(", %u attempt%s", r->attempts, r->attempts == 1 ? "" : "s");
        if (r->status == QS_DEFERRED && r->next_ms > 0) {
            char next[40];
            ctl_time_ms(r->next_ms, next, sizeof next);
            printf(", next %s", next);
        }
        putchar('\n');
        if (r->last_ms > 0) {
            char last[40];
            ctl_time_ms(r->last_ms, last, sizeof last);
            printf("%-19s   last %s: ", "", last);
            if (r->code != 0)
                printf("%d ", r->code);
            printf("%s%s%s", r->enhanced, r->enhanced[0] ? " " : "", r->text);
            if (r->remote[0])
                printf(" [%s]", r->remote);
            putchar('\n');
        }
        if (r->dsn_id[0])
            printf("%-19s   notice %s\n", "", r->dsn_id);
    }
    free(st);
}

const char *ctl_queue_state_summary(struct spool *s, const struct spool_envelope *env, char *buf,
                                    size_t cap)
{
    if (spool_is_held(s, env->queue_id)) {
        snprintf(buf, cap, "held");
        return buf;
    }
    struct qs_rcpt *st = load_state(s, env);
    unsigned count[QS_BOUNCED + 1] = {0};
    for (size_t i = 0; st != NULL && i < env->n_rcpts; i++)
        if ((unsigned)st[i].status <= QS_BOUNCED)
            count[st[i].status]++;
    free(st);
    size_t used = 0;
    buf[0] = '\0';
    for (int k = QS_PENDING; k <= QS_BOUNCED && used < cap; k++)
        if (count[k] > 0)
            used += (size_t)snprintf(buf + used, cap - used, "%s%u %s", used ? ", " : "", count[k],
                                     qs_status_name((enum qs_status)k));
    return buf;
}
