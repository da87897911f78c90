/* fuzz_journal.c: libFuzzer target for what the server reads back from its journal at start
 * (docs/spool.md, "Journal"): journal_next over the input as the segment named SEGMENT (J2
 * records keyed by that name, J1 records unkeyed), every record's queue
 * file (its first line and envelope line, spool_envelope_parse of versions 1 and 2), and the
 * index built from the records (a message adds an entry, a tombstone removes it) checked against
 * a plain model. Invariants (abort() on violation): a decoded record lies inside the input and
 * the offset advances by exactly its header and length; reading stops for good at the first
 * damaged record; a parsed envelope names its record's id and renders back to JSON that parses
 * to the same envelope; the index holds exactly the ids the model says live. */
#include <string.h>

#include "fuzz_util.h"
#include "spool.h"
#include "spool_index.h"
#include "spool_internal.h"
#include "spool_journal.h"

#define MODEL_MAX 64
#define SEGMENT "0000000000000010" /* the seeds' J2 records are keyed by this name */

struct model {
    char ids[MODEL_MAX][QUEUE_ID_LEN + 1];
    bool live[MODEL_MAX];
    size_t n;
};

static size_t model_slot(struct model *m, const char *id)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->ids[i], id) == 0)
            return i;
    if (m->n == MODEL_MAX)
        return MODEL_MAX;
    memcpy(m->ids[m->n], id, QUEUE_ID_LEN + 1);
    m->live[m->n] = false;
    return m->n++;
}

static void same_envelope(const struct spool_envelope *a, const struct spool_envelope *b)
{
    FUZZ_CHECK(strcmp(a->queue_id, b->queue_id) == 0 && strcmp(a->sender, b->sender) == 0);
    FUZZ_CHECK(strcmp(a->auth_user, b->auth_user) == 0 && strcmp(a->tenant, b->tenant) == 0);
    FUZZ_CHECK(a->received_ms == b->received_ms && a->client_port == b->client_port);
    FUZZ_CHECK(a->smtputf8 == b->smtputf8 && a->n_rcpts == b->n_rcpts);
    for (size_t i = 0; i < a->n_rcpts; i++)
        FUZZ_CHECK(strcmp(a->rcpts[i], b->rcpts[i]) == 0);
}

/* The queue file a record holds: magic line, envelope line, message. */
static void check_queue_file(const struct journal_record *r)
{
    const char *p = (const char *)r->payload;
    int version = 0;
    if (r->len > SPOOL_MAGIC_LEN && memcmp(p, SPOOL_MAGIC, SPOOL_MAGIC_LEN) == 0)
        version = 2;
    else if (r->len > SPOOL_MAGIC_LEN && memcmp(p, SPOOL_MAGIC_V1, SPOOL_MAGIC_LEN) == 0)
        version = 1;
    if (version == 0)
        return;
    const char *line = p + SPOOL_MAGIC_LEN;
    const char *nl = memchr(line, '\n', r->len - SPOOL_MAGIC_LEN);
    if (nl == NULL)
        return;
    struct spool_envelope env, back;
    memset(&env, 0, sizeof env);
    if (!spool_envelope_parse(line, (size_t)(nl - line), r->id, version, &env)) {
        spool_envelope_free(&env);
        return;
    }
    FUZZ_CHECK(strcmp(env.queue_id, r->id) == 0);
    char err[256];
    char *json = spool_envelope_json(&env, r->id, err, sizeof err);
    if (json != NULL) {
        memset(&back, 0, sizeof back);
        FUZZ_CHECK(spool_envelope_parse(json, strlen(json), r->id, 2, &back));
        same_envelope(&env, &back);
        spool_envelope_free(&back);
        free(json);
    }
    spool_envelope_free(&env);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct journal_index ix = {0};
    struct model m = {0};
    struct journal_record r;
    size_t off = 0, before;
    int rc;
    while (before = off, (rc = journal_next(data, size, &off, &r, SEGMENT)) == 1) {
        FUZZ_CHECK(off == before + JOURNAL_HEADER_LEN + r.len && off <= size);
        FUZZ_CHECK(r.payload == data + before + JOURNAL_HEADER_LEN);
        FUZZ_CHECK(strlen(r.id) == QUEUE_ID_LEN && journal_is_hex((const void *)r.id, 16, true));
        size_t k = model_slot(&m, r.id);
        if (r.len == 0) {
            bool had = jindex_del(&ix, r.id, NULL);
            FUZZ_CHECK(k == MODEL_MAX || had == m.live[k]);
            if (k < MODEL_MAX)
                m.live[k] = false;
        } else {
            FUZZ_CHECK(jindex_put(&ix, r.id, NULL, before + JOURNAL_HEADER_LEN, r.len) != NULL);
            if (k < MODEL_MAX)
                m.live[k] = true;
            check_queue_file(&r);
        }
    }
    FUZZ_CHECK(rc == 0 ? off == size : off == before); /* the end, or stopped at the damage */
    FUZZ_CHECK(journal_next(data, size, &off, &r, SEGMENT) == rc); /* and stays stopped */
    size_t live = 0;
    for (size_t i = 0; i < m.n; i++)
        if (m.live[i]) {
            live++;
            FUZZ_CHECK(jindex_get(&ix, m.ids[i]) != NULL);
        } else {
            FUZZ_CHECK(jindex_get(&ix, m.ids[i]) == NULL);
        }
    if (m.n < MODEL_MAX)
        FUZZ_CHECK(ix.count == live);
    jindex_free(&ix);
    return 0;
}
