/* queue_sched.c: the queue runner's schedule (queue_sched.h): a hash table of entries by queue
 * id, a binary min-heap of the entries not in flight by due time, and per-route counts of
 * deliveries in flight against their limits. */
#include "queue_sched.h"

#include <stdlib.h>
#include <string.h>

#define QSCHED_DEFAULT_LIMIT 10
#define NOT_IN_HEAP ((size_t)-1)

struct qsched_node {
    struct qsched_entry e;
    struct qsched_node *next; /* hash chain */
    bool forget;              /* removed while in flight */
};

struct qsched_route {
    struct qsched_route *next;
    char name[SMTP_DOMAIN_MAX + 1];
    unsigned limit, active;
};

struct qsched {
    struct qsched_node **buckets;
    size_t n_buckets, count;
    struct qsched_node **heap;
    size_t heap_n, heap_cap;
    struct qsched_route *routes;
};

static uint64_t hash_id(const char *id)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 1099511628211ULL;
    return h;
}

struct qsched *qsched_new(void)
{
    struct qsched *q = calloc(1, sizeof *q);
    if (q == NULL)
        return NULL;
    q->n_buckets = 1024;
    q->buckets = calloc(q->n_buckets, sizeof *q->buckets);
    if (q->buckets == NULL) {
        free(q);
        return NULL;
    }
    return q;
}

void qsched_free(struct qsched *q)
{
    if (q == NULL)
        return;
    for (size_t i = 0; i < q->n_buckets; i++)
        for (struct qsched_node *n = q->buckets[i], *next; n != NULL; n = next) {
            next = n->next;
            free(n);
        }
    for (struct qsched_route *r = q->routes, *next; r != NULL; r = next) {
        next = r->next;
        free(r);
    }
    free(q->buckets);
    free(q->heap);
    free(q);
}

size_t qsched_count(const struct qsched *q)
{
    return q->count;
}

/* ---- the heap ---- */

static bool earlier(const struct qsched_node *a, const struct qsched_node *b)
{
    return a->e.due_ms < b->e.due_ms ||
           (a->e.due_ms == b->e.due_ms && strcmp(a->e.id, b->e.id) < 0);
}

static void heap_set(struct qsched *q, size_t i, struct qsched_node *n)
{
    q->heap[i] = n;
    n->e.heap_index = i;
}

static void sift_up(struct qsched *q, size_t i)
{
    struct qsched_node *n = q->heap[i];
    while (i > 0 && earlier(n, q->heap[(i - 1) / 2])) {
        heap_set(q, i, q->heap[(i - 1) / 2]);
        i = (i - 1) / 2;
    }
    heap_set(q, i, n);
}

static void sift_down(struct qsched *q, size_t i)
{
    struct qsched_node *n = q->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= q->heap_n)
            break;
        if (c + 1 < q->heap_n && earlier(q->heap[c + 1], q->heap[c]))
            c++;
        if (!earlier(q->heap[c], n))
            break;
        heap_set(q, i, q->heap[c]);
        i = c;
    }
    heap_set(q, i, n);
}

static bool heap_push(struct qsched *q, struct qsched_node *n)
{
    if (q->heap_n == q->heap_cap) {
        size_t cap = q->heap_cap ? q->heap_cap * 2 : 256;
        struct qsched_node **h = realloc(q->heap, cap * sizeof *h);
        if (h == NULL)
            return false;
        q->heap = h;
        q->heap_cap = cap;
    }
    heap_set(q, q->heap_n++, n);
    sift_up(q, q->heap_n - 1);
    return true;
}

static void heap_remove(struct qsched *q, struct qsched_node *n)
{
    size_t i = n->e.heap_index;
    if (i == NOT_IN_HEAP)
        return;
    n->e.heap_index = NOT_IN_HEAP;
    if (--q->heap_n == i)
        return;
    heap_set(q, i, q->heap[q->heap_n]);
    sift_down(q, i);
    sift_up(q, q->heap[i]->e.heap_index);
}

/* ---- entries ---- */

static struct qsched_node **slot(struct qsched *q, const char *id)
{
    struct qsched_node **pp = &q->buckets[hash_id(id) % q->n_buckets];
    while (*pp != NULL && strcmp((*pp)->e.id, id) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void grow(struct qsched *q)
{
    size_t n = q->n_buckets * 4;
    struct qsched_node **b = calloc(n, sizeof *b);
    if (b == NULL)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < q->n_buckets; i++)
        for (struct qsched_node *x = q->buckets[i], *next; x != NULL; x = next) {
            next = x->next;
            size_t k = hash_id(x->e.id) % n;
            x->next = b[k];
            b[k] = x;
        }
    free(q->buckets);
    q->buckets = b;
    q->n_buckets = n;
}

struct qsched_entry *qsched_find(struct qsched *q, const char *id)
{
    struct qsched_node *n = *slot(q, id);
    return n != NULL && !n->forget ? &n->e : NULL;
}

bool qsched_add(struct qsched *q, const char *id, const char *route, int64_t due_ms)
{
    struct qsched_node **pp = slot(q, id), *n = *pp;
    if (n != NULL) {
        n->forget = false;
        if (n->e.in_flight) {
            n->e.flush_after = true;
        } else if (due_ms < n->e.due_ms) {
            n->e.due_ms = due_ms;
            sift_up(q, n->e.heap_index);
        }
        return true;
    }
    n = calloc(1, sizeof *n);
    if (n == NULL)
        return false;
    memcpy(n->e.id, id, QUEUE_ID_LEN);
    n->e.id[QUEUE_ID_LEN] = '\0';
    strncpy(n->e.route, route, SMTP_DOMAIN_MAX);
    n->e.due_ms = due_ms;
    n->e.heap_index = NOT_IN_HEAP;
    if (!heap_push(q, n)) {
        free(n);
        return false;
    }
    *pp = n;
    if (++q->count > 2 * q->n_buckets)
        grow(q);
    return true;
}

static void unlink_node(struct qsched *q, struct qsched_node *n)
{
    struct qsched_node **pp = slot(q, n->e.id);
    if (*pp == n) {
        *pp = n->next;
        q->count--;
    }
    free(n);
}

void qsched_remove(struct qsched *q, const char *id)
{
    struct qsched_node *n = *slot(q, id);
    if (n == NULL)
        return;
    if (n->e.in_flight) {
        n->forget = true;
        return;
    }
    heap_remove(q, n);
    unlink_node(q, n);
}

void qsched_flush_all(struct qsched *q, int64_t now_ms)
{
    for (size_t i = 0; i < q->n_buckets; i++)
        for (struct qsched_node *n = q->buckets[i]; n != NULL; n = n->next) {
            n->e.forced = true;
            if (n->e.in_flight)
                n->e.flush_after = true;
            else if (n->e.due_ms > now_ms)
                n->e.due_ms = now_ms;
        }
    for (size_t i = q->heap_n / 2 + 1; i-- > 0;) /* due times only went down: rebuild */
        if (i < q->heap_n)
            sift_down(q, i);
}

/* ---- routes ---- */

static struct qsched_route *route_of(struct qsched *q, const char *name)
{
    struct qsched_route *r;
    for (r = q->routes; r != NULL; r = r->next)
        if (strcmp(r->name, name) == 0)
            return r;
    r = calloc(1, sizeof *r);
    if (r == NULL)
        return NULL;
    strncpy(r->name, name, SMTP_DOMAIN_MAX);
    r->limit = QSCHED_DEFAULT_LIMIT;
    r->next = q->routes;
    q->routes = r;
    return r;
}

void qsched_set_limit(struct qsched *q, const char *route, unsigned limit)
{
    struct qsched_route *r = route_of(q, route);
    if (r != NULL && limit > 0)
        r->limit = limit;
}

struct qsched_entry *qsched_take(struct qsched *q, int64_t now_ms, int64_t *next_due_ms)
{
    struct qsched_node *skipped[64], *found = NULL;
    size_t n_skipped = 0;
    while (q->heap_n > 0 && q->heap[0]->e.due_ms <= now_ms && n_skipped < 64) {
        struct qsched_node *n = q->heap[0];
        struct qsched_route *r = route_of(q, n->e.route);
        heap_remove(q, n);
        if (r != NULL && r->active < r->limit) {
            r->active++;
            n->e.in_flight = true;
            found = n;
            break;
        }
        skipped[n_skipped++] = n; /* its route is busy: others may go first */
    }
    for (size_t i = 0; i < n_skipped; i++)
        (void)heap_push(q, skipped[i]); /* room was there a moment ago */
    *next_due_ms = q->heap_n > 0 ? q->heap[0]->e.due_ms : INT64_MAX;
    if (found == NULL && n_skipped > 0 && *next_due_ms <= now_ms)
        *next_due_ms = now_ms + 1000; /* every due route is busy: wake at a put_back or soon */
    return found != NULL ? &found->e : NULL;
}

void qsched_set_route(struct qsched *q, struct qsched_entry *e, const char *route)
{
    if (strcmp(e->route, route) == 0)
        return;
    struct qsched_route *from = route_of(q, e->route), *to = route_of(q, route);
    if (from != NULL && from->active > 0)
        from->active--;
    if (to != NULL)
        to->active++;
    memset(e->route, 0, sizeof e->route);
    strncpy(e->route, route, SMTP_DOMAIN_MAX);
}

void qsched_put_back(struct qsched *q, struct qsched_entry *e, int64_t due_ms)
{
    struct qsched_node *n = (struct qsched_node *)e; /* e is the node's first member */
    struct qsched_route *r = route_of(q, e->route);
    if (r != NULL && r->active > 0)
        r->active--;
    e->in_flight = false;
    if (n->forget || due_ms <= 0) {
        unlink_node(q, n);
        return;
    }
    e->due_ms = e->flush_after ? 0 : due_ms;
    e->forced = e->flush_after;
    e->flush_after = false;
    if (!heap_push(q, n))
        unlink_node(q, n);
}
