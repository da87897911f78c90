/* fuzz_config.c: libFuzzer target for the configuration parser (src/config.c): config_parse of
 * the input over the defaults. Invariants (abort() on violation): the result is 0 or -1; on -1
 * the error says "line N: ..."; on 0 there are 1 to CONFIG_LISTENERS_MAX listeners with ports
 * 1-65535 and every string field is NUL-terminated within its array; numbers stay non-zero where
 * zero would disable the server (timeouts, threads, limits). */
#include <string.h>

#include "config.h"
#include "fuzz_util.h"

static struct config defaults;
static bool have_defaults;

#define TERMINATED(a) (memchr((a), '\0', sizeof(a)) != NULL)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct config c;
    if (!have_defaults) { /* once: it calls gethostname() */
        config_defaults(&defaults, "/data");
        have_defaults = true;
    }
    memcpy(&c, &defaults, sizeof c);
    char err[256];
    memset(err, 0xa5, sizeof err);
    int r = config_parse((const char *)data, size, &c, err, sizeof err);
    FUZZ_CHECK(r == 0 || r == -1);
    if (r == -1) {
        FUZZ_CHECK(TERMINATED(err));
        FUZZ_CHECK(strncmp(err, "line ", 5) == 0);
        return 0;
    }
    FUZZ_CHECK(c.n_listeners >= 1 && c.n_listeners <= CONFIG_LISTENERS_MAX);
    for (size_t i = 0; i < c.n_listeners; i++) {
        const struct listener_config *l = &c.listeners[i];
        FUZZ_CHECK(l->port >= 1 && l->port <= 65535);
        FUZZ_CHECK(TERMINATED(l->host) && TERMINATED(l->name) && l->host[0] != '\0');
        FUZZ_CHECK(l->tls == LISTENER_STARTTLS || l->tls == LISTENER_IMPLICIT_TLS);
    }
    FUZZ_CHECK(TERMINATED(c.hostname) && TERMINATED(c.tls_cert) && TERMINATED(c.tls_key) &&
               TERMINATED(c.datadir));
    FUZZ_CHECK(c.max_message_size > 0 && c.max_recipients > 0 && c.max_errors > 0);
    FUZZ_CHECK(c.command_timeout > 0 && c.data_timeout > 0);
    FUZZ_CHECK(c.max_connections > 0 && c.max_connections_per_ip > 0);
    FUZZ_CHECK(c.io_threads > 0 && c.auth_threads > 0 && c.auth_memlimit > 0);
    return 0;
}
