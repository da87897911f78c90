/* connlimit.h: concurrent connections per client address, across all loops. */
#ifndef SUBMITD_CONNLIMIT_H
#define SUBMITD_CONNLIMIT_H

#include <stdbool.h>

#include "netmask.h"

struct connlimit;

struct connlimit *connlimit_new(void);
/* Counts a connection from a; false (and nothing counted) when a already has max. */
bool connlimit_acquire(struct connlimit *c, const struct netaddr *a, unsigned max);
void connlimit_release(struct connlimit *c, const struct netaddr *a);
void connlimit_free(struct connlimit *c);

#endif
