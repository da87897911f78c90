/* delivery.c: helpers for delivery results (delivery.h). */
#include "delivery.h"

#include <stdio.h>

void delivery_result_all(struct delivery_result *r, enum delivery_outcome outcome, int code,
                         const char *enhanced, const char *stage, const char *text)
{
    for (size_t i = 0; i < r->n_rcpts; i++) {
        struct delivery_rcpt_result *x = &r->rcpts[i];
        x->outcome = outcome;
        x->code = code;
        snprintf(x->enhanced, sizeof x->enhanced, "%s", enhanced ? enhanced : "");
        snprintf(x->stage, sizeof x->stage, "%s", stage ? stage : "");
        snprintf(x->text, sizeof x->text, "%s", text ? text : "");
        x->dsn_passed = false;
    }
}
