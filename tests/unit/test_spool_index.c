/* test_spool_index.c: unit tests for the journal index (src/spool_index.c): put, get, replace
 * and delete against a plain array model through many growths of the table, the entry copied
 * out on delete, and every entry visited once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "spool_index.h"

#define N 5000

static void id_of(int i, char id[QUEUE_ID_LEN + 1])
{
    snprintf(id, QUEUE_ID_LEN + 1, "%016X", (unsigned)i * 2654435761u);
}

static void count_entry(const struct journal_entry *e, void *arg)
{
    size_t *n = arg;
    char id[QUEUE_ID_LEN + 1];
    unsigned v;
    assert_int_equal(sscanf(e->id, "%16X", &v), 1);
    id_of((int)e->off, id);
    assert_string_equal(e->id, id); /* off holds i: the entry belongs to its id */
    (*n)++;
}

static void test_model(void **state)
{
    (void)state;
    static bool present[N];
    struct journal_index ix = {0};
    struct spool_segment *seg = (struct spool_segment *)&ix; /* only compared, never used */
    char id[QUEUE_ID_LEN + 1];
    size_t live = 0;
    assert_null(jindex_get(&ix, "0000000000000000"));
    assert_false(jindex_del(&ix, "0000000000000000", NULL));
    for (int i = 0; i < N; i++) {
        id_of(i, id);
        assert_non_null(jindex_put(&ix, id, seg, (uint64_t)i, (size_t)i + 1));
        present[i] = true;
        live++;
        if (i % 3 == 0) { /* delete an earlier one */
            int k = i / 2;
            id_of(k, id);
            struct journal_entry out;
            bool was = present[k];
            assert_int_equal(jindex_del(&ix, id, &out), was);
            if (was) {
                assert_string_equal(out.id, id);
                assert_int_equal(out.off, (uint64_t)k);
                assert_int_equal(out.len, (size_t)k + 1);
                present[k] = false;
                live--;
            }
        }
    }
    assert_int_equal(ix.count, live);
    for (int i = 0; i < N; i++) {
        id_of(i, id);
        const struct journal_entry *e = jindex_get(&ix, id);
        if (!present[i]) {
            assert_null(e);
            continue;
        }
        assert_non_null(e);
        assert_ptr_equal(e->seg, seg);
        assert_int_equal(e->len, (size_t)i + 1);
    }
    /* a put of a present id replaces its entry, the count unchanged */
    int some = 0;
    while (!present[some])
        some++;
    id_of(some, id);
    assert_non_null(jindex_put(&ix, id, NULL, (uint64_t)some, 99));
    assert_int_equal(ix.count, live);
    assert_int_equal(jindex_get(&ix, id)->len, 99);
    assert_null(jindex_get(&ix, id)->seg);
    size_t visited = 0;
    jindex_each(&ix, count_entry, &visited);
    assert_int_equal(visited, live);
    jindex_free(&ix);
    assert_int_equal(ix.count, 0);
    assert_null(jindex_get(&ix, id));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_model),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
