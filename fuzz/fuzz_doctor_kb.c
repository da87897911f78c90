/* fuzz_doctor_kb.c: libFuzzer target for smtp-doctor's reply extraction from free text
 * (kb_extract_replies in src/doctor_kb.c): client logs, exception messages and transcripts are
 * whatever a user pastes. Invariants (abort() on violation): at most `max` replies; each is
 * NUL-terminated within its 512 octets and starts with a three-digit reply code, or with an
 * enhanced code when the text carried no reply code (.NET's "The server response was: 5.7.57 ...").
 * Each reply found is then matched against the built-in knowledge base, when it loads (kb_match:
 * its regexes meet user text), and kb_detect_provider runs on the text split at its first LF
 * (greeting, EHLO reply). RFC 5321 4.2. Links the knowledge base that fuzz/run.sh embeds from
 * data/smtp-replies.json. */
#include <string.h>

#include "doctor_kb.h"
#include "fuzz_util.h"

#define MAX_REPLIES 8

static struct kb *kb;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char err[256] = "";
    kb = kb_load_default(err, sizeof err);
    if (kb == NULL) /* a defect of the data, not of the extraction: fuzz that alone */
        fprintf(stderr,
                "fuzz_doctor_kb: kb_match not fuzzed, the knowledge base does not load: %s\n", err);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char out[MAX_REPLIES][512];
    if (size == 0)
        return 0;
    memset(out, 0xa5, sizeof out);
    size_t n = kb_extract_replies((const char *)data, size, out, MAX_REPLIES);
    FUZZ_CHECK(n <= MAX_REPLIES);
    for (size_t i = 0; i < n; i++) {
        FUZZ_CHECK(memchr(out[i], '\0', sizeof out[i]) != NULL);
        FUZZ_CHECK(out[i][0] >= '2' && out[i][0] <= '5');
        FUZZ_CHECK((out[i][1] >= '0' && out[i][1] <= '9' && out[i][2] >= '0' && out[i][2] <= '9') ||
                   out[i][1] == '.');
        if (kb == NULL)
            continue;
        const struct kb_entry *hits[8];
        size_t m = kb_match(kb, out[i], (enum provider)(data[0] % PROVIDER_COUNT), hits, 8);
        FUZZ_CHECK(m <= 8);
        for (size_t j = 0; j < m; j++)
            FUZZ_CHECK(hits[j] != NULL && hits[j]->id != NULL);
    }
    char *text = fuzz_strndup(data, size);
    char *nl = strchr(text, '\n');
    if (nl != NULL)
        *nl = '\0';
    enum provider p = kb_detect_provider(text, nl != NULL ? nl + 1 : NULL);
    FUZZ_CHECK(p >= PROVIDER_UNKNOWN && p < PROVIDER_COUNT);
    free(text);
    return 0;
}
