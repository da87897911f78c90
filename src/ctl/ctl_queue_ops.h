/* ctl_queue_ops.h: `submitctl queue flush|hold|release|delete|log` (ctl_queue_ops.c), the rows
 * of ctl_queue.c's command table that act on the queue rather than read it. */
#ifndef SUBMITD_CTL_QUEUE_OPS_H
#define SUBMITD_CTL_QUEUE_OPS_H

#include "ctl.h"

int ctl_queue_flush(struct ctl *c, char **pos, int npos);
int ctl_queue_hold(struct ctl *c, char **pos, int npos);
int ctl_queue_release(struct ctl *c, char **pos, int npos);
int ctl_queue_delete(struct ctl *c, char **pos, int npos);
int ctl_queue_log(struct ctl *c, char **pos, int npos);

#endif
