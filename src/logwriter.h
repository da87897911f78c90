/* logwriter.h: writes sign-in and submission events to the event log off the event loops: a
 * thread that takes queued events in batches (one SQLite transaction per batch). */
#ifndef SUBMITD_LOGWRITER_H
#define SUBMITD_LOGWRITER_H

#include "eventlog.h"

struct logwriter;

struct logwriter *logwriter_start(const char *datadir, char *err, size_t errlen);
/* Copies the event and queues it. Thread-safe. */
void logwriter_signin(struct logwriter *w, const struct signin_event *e);
void logwriter_submission(struct logwriter *w, const struct submission_event *e);
void logwriter_delivery(struct logwriter *w, const struct delivery_event *e);
/* Writes what is queued, then stops. */
void logwriter_stop(struct logwriter *w);

#endif
