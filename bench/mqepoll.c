/* mqepoll.c - epoll registration and I/O of unthreaded libmosquitto
 * clients (mqepoll.h). Owns the registrations. Thread: the epoll loop's. */
#include "mqepoll.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

void mqe_init(struct mqe *c, struct mosquitto *mosq)
{
    c->mosq = mosq;
    c->fd = -1;
    c->events = 0;
}

void mqe_sync(int epfd, struct mqe *c, void *ptr)
{
    struct epoll_event ev;
    uint32_t want;
    int fd;

    if(!c->mosq)
        return;
    fd = mosquitto_socket(c->mosq);
    if(fd < 0)
        return;
    want = EPOLLIN | (mosquitto_want_write(c->mosq) ? EPOLLOUT : 0);
    if(fd == c->fd && want == c->events)
        return;
    memset(&ev, 0, sizeof(ev));
    ev.events = want;
    ev.data.ptr = ptr;
    if(fd != c->fd) {
        if(c->fd >= 0)
            epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
        c->fd = -1;
        if(epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) == 0) {
            c->fd = fd;
            c->events = want;
        }
    }
    else if(epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev) == 0) {
        c->events = want;
    }
}

void mqe_forget(int epfd, struct mqe *c)
{
    if(c->fd >= 0)
        epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    c->fd = -1;
    c->events = 0;
}

void mqe_closed(struct mqe *c)
{
    c->fd = -1;
    c->events = 0;
}

int mqe_io(struct mqe *c, uint32_t ev, int (*alive)(void *obj), void *obj)
{
    int i, rc = MOSQ_ERR_SUCCESS;

    if(ev & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        /* Each call reads one packet; drain what is there (bounded). */
        for(i = 0; i < 1024 && alive(obj); i++) {
            errno = 0;
            rc = mosquitto_loop_read(c->mosq, 1);
            if(rc != MOSQ_ERR_SUCCESS || errno == EAGAIN || errno == EWOULDBLOCK)
                break;
        }
    }
    if((ev & EPOLLOUT) && alive(obj))
        rc = mosquitto_loop_write(c->mosq, 1);
    return rc;
}
