/* logwriter.h: writes sign-in, submission and delivery events to the event log off the event
 * loops: a thread that takes queued events in batches (one SQLite transaction per batch), at most
 * one batch per pace (50 ms) while events keep coming, except that a sign-in is written at once
 * (smart lockout counts failures from the written log). */
#ifndef SUBMITD_LOGWRITER_H
#define SUBMITD_LOGWRITER_H

#include <stdint.h>

#include "eventlog.h"

struct logwriter;

struct logwriter *logwriter_start(const char *datadir, char *err, size_t errlen);
/* Copies the event and queues it. Thread-safe. */
void logwriter_signin(struct logwriter *w, const struct signin_event *e);
void logwriter_submission(struct logwriter *w, const struct submission_event *e);
void logwriter_delivery(struct logwriter *w, const struct delivery_event *e);
/* The pace in milliseconds (tests). */
void logwriter_set_pace(struct logwriter *w, long ms);
/* How many times the writer has taken queued events to write (one transaction each, or more for
 * a batch over 256 events). */
uint64_t logwriter_writes(struct logwriter *w);
/* Writes what is queued, then stops. */
void logwriter_stop(struct logwriter *w);

#endif
