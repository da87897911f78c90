/* quota.c: the submission limits' state: a mutex-protected hash of mailboxes, each with its
 * count of submitting sessions and its accepted messages of the last 24 hours (time and
 * recipients, in time order, pruned as they age) with their recipients' running sum. A busy
 * mailbox has tens of thousands of them: the minute's window is found by binary search and the
 * day's recipients are the sum, so neither question walks the list. */
#include "quota.h"

#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "protocol_limits.h"

struct sent {
    int64_t when_ms;
    unsigned recipients;
};

struct mailbox_quota {
    char mailbox[SMTP_PATH_MAX + 1];
    unsigned sessions;
    struct sent *sent; /* ring: head is the oldest; sorted by when_ms */
    size_t head, n, cap;
    uint64_t recipients; /* the sum over sent[] */
    struct mailbox_quota *next;
};

#define QUOTA_BUCKETS 1024

struct quota {
    pthread_mutex_t mu;
    struct mailbox_quota *buckets[QUOTA_BUCKETS];
};

static unsigned quota_hash(const char *s)
{
    unsigned h = 2166136261u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % QUOTA_BUCKETS;
}

struct quota *quota_new(void)
{
    struct quota *q = calloc(1, sizeof *q);
    if (q)
        pthread_mutex_init(&q->mu, NULL);
    return q;
}

void quota_free(struct quota *q)
{
    if (!q)
        return;
    for (size_t i = 0; i < QUOTA_BUCKETS; i++) {
        struct mailbox_quota *m = q->buckets[i];
        while (m) {
            struct mailbox_quota *next = m->next;
            free(m->sent);
            free(m);
            m = next;
        }
    }
    pthread_mutex_destroy(&q->mu);
    free(q);
}

/* Called with the lock held. NULL only when out of memory and create is set. */
static struct mailbox_quota *find(struct quota *q, const char *mailbox, bool create)
{
    unsigned b = quota_hash(mailbox);
    for (struct mailbox_quota *m = q->buckets[b]; m; m = m->next)
        if (strcmp(m->mailbox, mailbox) == 0)
            return m;
    if (!create)
        return NULL;
    struct mailbox_quota *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    strncpy(m->mailbox, mailbox, SMTP_PATH_MAX);
    m->next = q->buckets[b];
    q->buckets[b] = m;
    return m;
}

static struct sent *at(struct mailbox_quota *m, size_t i)
{
    return &m->sent[(m->head + i) % m->cap];
}

static void prune(struct mailbox_quota *m, int64_t now_ms)
{
    while (m->n > 0 && at(m, 0)->when_ms <= now_ms - QUOTA_DAY_MS) {
        m->recipients -= at(m, 0)->recipients;
        m->head = (m->head + 1) % m->cap;
        m->n--;
    }
}

bool quota_session_acquire(struct quota *q, const char *mailbox, unsigned max)
{
    pthread_mutex_lock(&q->mu);
    struct mailbox_quota *m = find(q, mailbox, true);
    bool ok = m && m->sessions < max;
    if (ok)
        m->sessions++;
    pthread_mutex_unlock(&q->mu);
    return ok || !m; /* out of memory: do not refuse mail for our own failure */
}

void quota_session_release(struct quota *q, const char *mailbox)
{
    pthread_mutex_lock(&q->mu);
    struct mailbox_quota *m = find(q, mailbox, false);
    if (m && m->sessions > 0)
        m->sessions--;
    pthread_mutex_unlock(&q->mu);
}

unsigned quota_message_wait(struct quota *q, const char *mailbox, unsigned per_minute,
                            int64_t now_ms)
{
    unsigned wait = 0;
    pthread_mutex_lock(&q->mu);
    struct mailbox_quota *m = find(q, mailbox, false);
    if (m && per_minute > 0) {
        prune(m, now_ms);
        /* messages in the last minute: from the first one younger than a minute on */
        size_t first = 0, end = m->n;
        while (first < end) {
            size_t mid = first + (end - first) / 2;
            if (at(m, mid)->when_ms > now_ms - 60000)
                end = mid;
            else
                first = mid + 1;
        }
        size_t in_window = m->n - first;
        if (in_window >= per_minute) {
            /* the oldest message that must leave the window before one more fits */
            int64_t leaves = at(m, first + (in_window - per_minute))->when_ms + 60000;
            wait = (unsigned)((leaves - now_ms + 999) / 1000);
            if (wait == 0)
                wait = 1;
        }
    }
    pthread_mutex_unlock(&q->mu);
    return wait;
}

unsigned quota_recipients_today(struct quota *q, const char *mailbox, int64_t now_ms)
{
    unsigned total = 0;
    pthread_mutex_lock(&q->mu);
    struct mailbox_quota *m = find(q, mailbox, false);
    if (m) {
        prune(m, now_ms);
        total = m->recipients > UINT_MAX ? UINT_MAX : (unsigned)m->recipients;
    }
    pthread_mutex_unlock(&q->mu);
    return total;
}

void quota_record(struct quota *q, const char *mailbox, unsigned recipients, int64_t when_ms)
{
    pthread_mutex_lock(&q->mu);
    struct mailbox_quota *m = find(q, mailbox, true);
    if (m) {
        prune(m, when_ms);
        if (m->n == m->cap) {
            size_t cap = m->cap ? m->cap * 2 : 16;
            struct sent *s = malloc(cap * sizeof *s);
            if (s) {
                for (size_t i = 0; i < m->n; i++)
                    s[i] = *at(m, i);
                free(m->sent);
                m->sent = s;
                m->head = 0;
                m->cap = cap;
            }
        }
        if (m->n < m->cap) {
            /* in time order (two loops record at nearly the same moment; a restart replays) */
            size_t i = m->n;
            for (; i > 0 && at(m, i - 1)->when_ms > when_ms; i--)
                *at(m, i) = *at(m, i - 1);
            *at(m, i) = (struct sent){when_ms, recipients};
            m->n++;
            m->recipients += recipients;
        }
    }
    pthread_mutex_unlock(&q->mu);
}
