/* doctor_report.h: smtp-doctor's output: the walk for people (pass / warn / fail per step with
 * the server's reply, then the diagnosis) and as one JSON document (docs/smtp-doctor.md,
 * docs/smtp-doctor.schema.json); and the explain mode, which diagnoses replies pasted from a
 * log without connecting. */
#ifndef SUBMITD_DOCTOR_REPORT_H
#define SUBMITD_DOCTOR_REPORT_H

#include <stdbool.h>
#include <stdio.h>

#include "doctor_kb.h"
#include "doctor_steps.h"

struct dout_opts {
    bool color;      /* ANSI colours (the caller decides: a terminal and NO_COLOR unset) */
    bool json;       /* one JSON document instead of text */
    bool transcript; /* include the SMTP conversation (secrets already masked) */
};

/* Prints the result of doctor_run. Returns 0, or -1 when the output cannot be written. */
int doctor_report(FILE *f, const struct doctor_result *r, const struct dout_opts *o);

/* explain: text is one reply ("535 5.7.3 ...") or, with from_log (or when text does not start
 * with a reply code), free text in which kb_extract_replies finds the replies. Prints the
 * diagnosis of each; returns the exit status: 0 every reply found is in the knowledge base,
 * 1 a reply is unknown or none was found. */
int doctor_explain(FILE *f, const struct kb *kb, const char *text, size_t len, bool from_log,
                   enum provider p, const struct dout_opts *o);

#endif
