/* ctl_route.h: `submitctl tenant route` (ctl_route.c) as the tenant commands (ctl_tenant.c) use
 * it: the command's options and function, and a route in one line and as JSON for `tenant
 * show`. Never shows a secret: only whether one is set. */
#ifndef SUBMITD_CTL_ROUTE_H
#define SUBMITD_CTL_ROUTE_H

#include <stddef.h>

#include <jansson.h>

#include "ctl.h"
#include "directory.h"

extern const struct ctl_opt ctl_route_opts[];

/* `tenant route DOMAIN [KIND [HOST[:PORT]|TEMPLATE]] [options]`: shows (one positional) or
 * replaces the tenant's delivery route. */
int ctl_tenant_route(struct ctl *c, char **pos, int npos);

/* "relay smtp.example.net:587, tls required, auth plain, user u, secret (set), ..." or "none". */
void ctl_route_summary(const struct dir_route *r, char *buf, size_t cap);
/* {"kind": ..., the fields of that kind; "secret_set" / "refresh_token_set" for secrets}. */
json_t *ctl_route_json(const struct dir_route *r);

#endif
