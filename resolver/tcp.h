/* tcp.h -- DNS over TCP for a worker (RFC 7766): length-prefixed queries, pipelined and
 * answered out of order, an idle timeout, a limit on connections per worker and on queries
 * in flight per connection, and a deadline for completing a frame so slow clients cannot
 * hold a connection open byte by byte. A connection is freed when it is closed and no query
 * started on it is still waiting for an upstream (hold/release count those).
 */
#ifndef AEGIS_TCP_H
#define AEGIS_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "server.h"

struct tcp_listener;
struct tcp_conn;

/* Starts accepting on an already bound and listening socket fd, on w's loop. */
struct tcp_listener *tcp_listener_new(struct worker *w, int fd);
void tcp_listener_free(struct tcp_listener *l);

void tcp_conn_hold(struct tcp_conn *c);
void tcp_conn_release(struct tcp_conn *c);
/* Queues an answer; dropped silently if the connection has closed meanwhile. */
void tcp_conn_send(struct tcp_conn *c, const uint8_t *msg, size_t len);

#endif
