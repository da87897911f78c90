/* test_random_ids.c: the identifier randomness pool (random_ids.c): requests that cross the
 * pool's refill are filled, draws differ, uniform draws stay in range and are spread evenly. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <string.h>

#include <sodium.h>

#include "random_ids.h"

static void test_buffers_cross_refills(void **state)
{
    (void)state;
    static unsigned char a[5000], b[5000];
    random_ids_buf(a, 3);       /* then the rest of a pool, several pools, part of another */
    random_ids_buf(a, sizeof a);
    random_ids_buf(b, sizeof b);
    assert_memory_not_equal(a, b, sizeof a);
    size_t zeros = 0; /* a wiped pool handed out would be zeros */
    for (size_t i = 0; i < sizeof a; i++)
        zeros += a[i] == 0;
    assert_true(zeros < 60); /* about 20 expected */
    random_ids_buf(b, 0);
}

static void test_uniform(void **state)
{
    (void)state;
    unsigned counts[10] = {0};
    assert_int_equal(random_ids_uniform(0), 0);
    assert_int_equal(random_ids_uniform(1), 0);
    for (int i = 0; i < 100000; i++) {
        uint32_t r = random_ids_uniform(10);
        assert_true(r < 10);
        counts[r]++;
    }
    for (int k = 0; k < 10; k++) /* 10,000 expected each; 5% off is over 15 sigma */
        assert_true(counts[k] > 9500 && counts[k] < 10500);
    for (int i = 0; i < 1000; i++) {
        assert_true(random_ids_uniform(0x80000001u) < 0x80000001u);
        assert_true(random_ids_uniform(1u << 16) < (1u << 16));
    }
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buffers_cross_refills),
        cmocka_unit_test(test_uniform),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
