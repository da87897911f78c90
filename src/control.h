/* control.h: the server's control socket DIR/control.sock (AF_UNIX stream, mode 0600, owned by
 * the server's user): how `submitctl queue flush|hold|release|delete` reach a running server.
 * One request line per connection, one reply line: "ok TEXT" or "error TEXT". Requests:
 * "flush", "flush ID", "hold ID", "release ID", "delete ID". Served by a thread of its own
 * (requests may touch the disk), never by an event loop. docs/delivery.md. */
#ifndef SUBMITD_CONTROL_H
#define SUBMITD_CONTROL_H

#include <stddef.h>

#define CONTROL_SOCKET_NAME "control.sock"

enum control_cmd { CONTROL_FLUSH = 0, CONTROL_HOLD, CONTROL_RELEASE, CONTROL_DELETE };

/* Carries out a request (queue_id "" = every message, for flush). Returns 0 with a short text
 * for "ok", or -1 with the reason for "error". Runs on the control thread. */
typedef int (*control_fn)(enum control_cmd cmd, const char *queue_id, char *text, size_t cap,
                          void *arg);

struct control;
/* Binds DIR/control.sock (replacing a stale one; refusing when another server answers on it)
 * and starts the thread. NULL with a reason in err. */
struct control *control_start(const char *datadir, control_fn fn, void *arg, char *err,
                              size_t errlen);
/* Stops the thread and removes the socket. */
void control_stop(struct control *c);

/* The client side (submitctl): sends one request line, reads the reply line into reply.
 * Returns 0 (reply holds "ok ..." or "error ..."), or -1 with errno (ENOENT or ECONNREFUSED:
 * no server is running) when the socket cannot be reached. Bounded by a 30 s timeout. */
int control_request(const char *datadir, const char *request, char *reply, size_t cap);

#endif
