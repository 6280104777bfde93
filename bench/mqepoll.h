/* mqepoll.h - unthreaded libmosquitto clients driven by one epoll loop, as
 * shared by mcs-loadgen (bench/loadgen.c) and the device simulator mcs-sim
 * (firmware/port-posix): keeping each client's epoll registration in step
 * with what libmosquitto wants and draining reads. Owns the registration
 * of each struct mqe, never the mosquitto client. Thread: the epoll loop's. */
#ifndef MCS_MQEPOLL_H
#define MCS_MQEPOLL_H

#include <mosquitto.h>
#include <stdint.h>

/* One client's registration with the epoll set. */
struct mqe {
    struct mosquitto *mosq;
    int fd;          /* socket registered, -1 none */
    uint32_t events; /* mask registered */
};

/* Starts *c for mosq, nothing registered. */
void mqe_init(struct mqe *c, struct mosquitto *mosq);

/* Registers the client's current socket (readable always, writable while
 * libmosquitto has output queued), with ptr as the epoll data; a new socket
 * replaces the old registration. No-op without a socket. */
void mqe_sync(int epfd, struct mqe *c, void *ptr);

/* Forgets the socket: call before libmosquitto closes it. */
void mqe_forget(int epfd, struct mqe *c);

/* Forgets a socket that is already closed (the kernel dropped it from the
 * epoll set; its number may belong to another client by now, so epoll is
 * not touched). */
void mqe_closed(struct mqe *c);

/* Runs libmosquitto's reads (every packet there, bounded) and its write for
 * the ready events ev, while alive(obj) holds (callbacks may end the
 * connection between two packets). Returns the last libmosquitto result. */
int mqe_io(struct mqe *c, uint32_t ev, int (*alive)(void *obj), void *obj);

#endif
