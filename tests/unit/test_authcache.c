/* test_authcache.c: the verified-credential cache (authcache.c, issue 6): a hit needs the same
 * user, secret and directory generation within the lifetime; the user/secret split is part of
 * the key; LRU eviction at max_entries; off when sized 0; and 8 threads hitting and storing at
 * once (run under ASan/TSan). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "authcache.h"

#define T0 1700000000000LL
#define PW(s) (const uint8_t *)(s), strlen(s)

static void test_hit_and_miss(void **state)
{
    (void)state;
    struct authcache *c = authcache_new(16, 900);
    assert_non_null(c);
    int64_t id = -1;
    assert_false(authcache_hit(c, "a@example.com", PW("pw1"), 7, T0, &id));
    assert_int_equal(id, -1);
    authcache_store(c, "a@example.com", PW("pw1"), 7, 42, T0);
    assert_int_equal(authcache_size(c), 1);
    assert_true(authcache_hit(c, "a@example.com", PW("pw1"), 7, T0 + 1000, &id));
    assert_int_equal(id, 42);
    /* another user with the same password is another entry */
    assert_false(authcache_hit(c, "b@example.com", PW("pw1"), 7, T0 + 1000, &id));
    /* storing the same pair again updates it in place */
    authcache_store(c, "a@example.com", PW("pw1"), 7, 43, T0 + 2000);
    assert_int_equal(authcache_size(c), 1);
    assert_true(authcache_hit(c, "a@example.com", PW("pw1"), 7, T0 + 2000, &id));
    assert_int_equal(id, 43);
    authcache_free(c);
}

static void test_wrong_secret_misses(void **state)
{
    (void)state;
    struct authcache *c = authcache_new(16, 900);
    assert_non_null(c);
    int64_t id = -1;
    authcache_store(c, "a@example.com", PW("correct horse"), 1, 5, T0);
    assert_false(authcache_hit(c, "a@example.com", PW("correct hors"), 1, T0, &id));
    assert_false(authcache_hit(c, "a@example.com", PW("correct horse "), 1, T0, &id));
    assert_false(authcache_hit(c, "a@example.com", PW("Correct horse"), 1, T0, &id));
    assert_false(authcache_hit(c, "a@example.com", PW(""), 1, T0, &id));
    /* a secret with NUL octets is compared by its length */
    const uint8_t bin1[] = {'x', 0, 'y'}, bin2[] = {'x', 0, 'z'};
    authcache_store(c, "a@example.com", bin1, sizeof bin1, 1, 6, T0);
    assert_false(authcache_hit(c, "a@example.com", bin2, sizeof bin2, 1, T0, &id));
    assert_false(authcache_hit(c, "a@example.com", bin1, 1, 1, T0, &id));
    assert_true(authcache_hit(c, "a@example.com", bin1, sizeof bin1, 1, T0, &id));
    assert_int_equal(id, 6);
    /* where the user ends and the secret begins is part of the key: "ab"+"c" is not "a"+"bc" */
    authcache_store(c, "ab", PW("c"), 1, 7, T0);
    assert_false(authcache_hit(c, "a", PW("bc"), 1, T0, &id));
    assert_false(authcache_hit(c, "abc", PW(""), 1, T0, &id));
    assert_true(authcache_hit(c, "ab", PW("c"), 1, T0, &id));
    authcache_free(c);
}

static void test_generation_change_misses(void **state)
{
    (void)state;
    struct authcache *c = authcache_new(16, 900);
    assert_non_null(c);
    int64_t id = -1;
    authcache_store(c, "a@example.com", PW("pw"), 10, 1, T0);
    authcache_store(c, "b@example.com", PW("pw"), 10, 2, T0);
    assert_true(authcache_hit(c, "a@example.com", PW("pw"), 10, T0, &id));
    /* any directory change: every entry stops counting at once */
    assert_false(authcache_hit(c, "a@example.com", PW("pw"), 11, T0, &id));
    assert_false(authcache_hit(c, "b@example.com", PW("pw"), 11, T0, &id));
    /* and does not come back if the generation number were ever seen again */
    assert_false(authcache_hit(c, "a@example.com", PW("pw"), 10, T0, &id));
    /* verified again at the new generation: hits again */
    authcache_store(c, "a@example.com", PW("pw"), 11, 1, T0 + 5);
    assert_true(authcache_hit(c, "a@example.com", PW("pw"), 11, T0 + 6, &id));
    assert_int_equal(id, 1);
    authcache_free(c);
}

static void test_lifetime_expiry(void **state)
{
    (void)state;
    struct authcache *c = authcache_new(16, 900);
    assert_non_null(c);
    int64_t id = -1;
    authcache_store(c, "a@example.com", PW("pw"), 1, 9, T0);
    assert_true(authcache_hit(c, "a@example.com", PW("pw"), 1, T0 + 900000 - 1, &id));
    /* a hit does not extend the lifetime: it counts from the verification */
    assert_false(authcache_hit(c, "a@example.com", PW("pw"), 1, T0 + 900000, &id));
    assert_int_equal(authcache_size(c), 0); /* the expired entry is gone */
    /* a clock step back misses but keeps the entry */
    authcache_store(c, "a@example.com", PW("pw"), 1, 9, T0);
    assert_false(authcache_hit(c, "a@example.com", PW("pw"), 1, T0 - 1, &id));
    assert_true(authcache_hit(c, "a@example.com", PW("pw"), 1, T0, &id));
    authcache_free(c);
}

static void test_lru_eviction(void **state)
{
    (void)state;
    enum { MAX = 8 };
    struct authcache *c = authcache_new(MAX, 900);
    assert_non_null(c);
    char user[32];
    int64_t id = -1;
    for (int i = 0; i < MAX; i++) {
        snprintf(user, sizeof user, "u%d@example.com", i);
        authcache_store(c, user, PW("pw"), 1, i, T0 + i);
    }
    assert_int_equal(authcache_size(c), MAX);
    /* touch u0: u1 becomes the least recently used */
    assert_true(authcache_hit(c, "u0@example.com", PW("pw"), 1, T0 + 100, &id));
    authcache_store(c, "new@example.com", PW("pw"), 1, 100, T0 + 101);
    assert_int_equal(authcache_size(c), MAX);
    assert_false(authcache_hit(c, "u1@example.com", PW("pw"), 1, T0 + 102, &id));
    assert_true(authcache_hit(c, "u0@example.com", PW("pw"), 1, T0 + 102, &id));
    assert_int_equal(id, 0);
    assert_true(authcache_hit(c, "new@example.com", PW("pw"), 1, T0 + 102, &id));
    assert_int_equal(id, 100);
    for (int i = 2; i < MAX; i++) {
        snprintf(user, sizeof user, "u%d@example.com", i);
        assert_true(authcache_hit(c, user, PW("pw"), 1, T0 + 103, &id));
        assert_int_equal(id, i);
    }
    /* many more: never more than MAX, and the last MAX stored all hit */
    for (int i = 0; i < 100; i++) {
        snprintf(user, sizeof user, "m%d@example.com", i);
        authcache_store(c, user, PW("pw"), 1, 1000 + i, T0 + 200);
        assert_true(authcache_size(c) <= MAX);
    }
    for (int i = 100 - MAX; i < 100; i++) {
        snprintf(user, sizeof user, "m%d@example.com", i);
        assert_true(authcache_hit(c, user, PW("pw"), 1, T0 + 201, &id));
        assert_int_equal(id, 1000 + i);
    }
    snprintf(user, sizeof user, "m%d@example.com", 100 - MAX - 1);
    assert_false(authcache_hit(c, user, PW("pw"), 1, T0 + 201, &id));
    authcache_free(c);
}

static void test_off_when_sized_zero(void **state)
{
    (void)state;
    int64_t id = -1;
    struct authcache *c = authcache_new(0, 900);
    assert_non_null(c);
    authcache_store(c, "a@example.com", PW("pw"), 1, 1, T0);
    assert_int_equal(authcache_size(c), 0);
    assert_false(authcache_hit(c, "a@example.com", PW("pw"), 1, T0, &id));
    authcache_free(c);
    c = authcache_new(16, 0);
    assert_non_null(c);
    authcache_store(c, "a@example.com", PW("pw"), 1, 1, T0);
    assert_false(authcache_hit(c, "a@example.com", PW("pw"), 1, T0, &id));
    authcache_free(c);
}

/* Two caches have different keys: the same pair hashes differently (nothing reusable across
 * processes). Checked through behaviour: each cache only knows what was stored in it. */
static void test_caches_are_independent(void **state)
{
    (void)state;
    int64_t id = -1;
    struct authcache *a = authcache_new(4, 900), *b = authcache_new(4, 900);
    assert_non_null(a);
    assert_non_null(b);
    authcache_store(a, "a@example.com", PW("pw"), 1, 1, T0);
    assert_false(authcache_hit(b, "a@example.com", PW("pw"), 1, T0, &id));
    assert_true(authcache_hit(a, "a@example.com", PW("pw"), 1, T0, &id));
    authcache_free(a);
    authcache_free(b);
}

enum { THREADS = 8, USERS = 64, ROUNDS = 4000, SMALL = 32 };

struct worker {
    struct authcache *c;
    int n;
    int wrong; /* hits that returned another user's mailbox id */
    int hits;
};

static void *worker_run(void *arg)
{
    struct worker *w = arg;
    char user[32];
    for (int r = 0; r < ROUNDS; r++) {
        int u = ((r / 4) * 7 + w->n * 13) % USERS; /* each user 4 times in a row */
        snprintf(user, sizeof user, "user%d@example.com", u);
        int64_t id = -1;
        int64_t gen = (r / 1000) % 2; /* the generation changes now and then */
        if (authcache_hit(w->c, user, PW("secret"), gen, T0 + r, &id)) {
            w->hits++;
            if (id != u)
                w->wrong++;
        } else {
            authcache_store(w->c, user, PW("secret"), gen, u, T0 + r);
        }
        if (authcache_hit(w->c, user, PW("not the secret"), gen, T0 + r, &id))
            w->wrong++;
    }
    return NULL;
}

static void test_concurrent(void **state)
{
    (void)state;
    /* smaller than the working set, so eviction runs concurrently with hits */
    struct authcache *c = authcache_new(SMALL, 900);
    assert_non_null(c);
    pthread_t t[THREADS];
    struct worker w[THREADS];
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.c = c, .n = i};
        assert_int_equal(pthread_create(&t[i], NULL, worker_run, &w[i]), 0);
    }
    int hits = 0;
    for (int i = 0; i < THREADS; i++) {
        assert_int_equal(pthread_join(t[i], NULL), 0);
        assert_int_equal(w[i].wrong, 0);
        hits += w[i].hits;
    }
    assert_true(hits > 0);
    assert_true(authcache_size(c) <= SMALL);
    authcache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hit_and_miss),
        cmocka_unit_test(test_wrong_secret_misses),
        cmocka_unit_test(test_generation_change_misses),
        cmocka_unit_test(test_lifetime_expiry),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_off_when_sized_zero),
        cmocka_unit_test(test_caches_are_independent),
        cmocka_unit_test(test_concurrent),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
