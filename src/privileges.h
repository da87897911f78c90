/* privileges.h: least privilege at start (issue 6): started as root, submitd binds its
 * listeners, then becomes the configured `user` before it touches its data directory; and it
 * refuses to start when the data directory or a private key could be read or changed by others. */
#ifndef SUBMITD_PRIVILEGES_H
#define SUBMITD_PRIVILEGES_H

#include <stddef.h>

/* As root with `user` set: checks that datadir belongs to that user, then switches to it (its
 * groups, gid, uid) for good. As root without `user`: stays, and says so in err (returns 1).
 * Not root: nothing to do (returns 0). Returns 0, 1 (a warning in err), or -1 with err. */
int privileges_drop(const char *user, const char *datadir, char *err, size_t errlen);
/* The data directory must belong to the effective user and give nothing to group or others
 * (0700). Returns 0 or -1 with the reason and the command that fixes it. */
int privileges_check_dir(const char *datadir, char *err, size_t errlen);
/* A private key file must belong to the effective user and be 0600 or stricter. A missing file
 * is fine (it will be created 0600). */
int privileges_check_key(const char *path, char *err, size_t errlen);

#endif
