/* mbox.c - bounded inter-thread FIFO (see mbox.h). Owns its buffer.
 * Thread: any. */
#include "mbox.h"
#include "err.h"

#include <stdlib.h>
#include <string.h>

int mbox_init(struct mbox *m, size_t item_size, size_t cap)
{
    memset(m, 0, sizeof(*m));
    m->buf = calloc(cap ? cap : 1, item_size);
    if(!m->buf)
        return MCS_ENOMEM;
    m->item_size = item_size;
    m->cap = cap ? cap : 1;
    pthread_mutex_init(&m->lock, NULL);
    return 0;
}

void mbox_cleanup(struct mbox *m)
{
    if(!m->buf)
        return;
    pthread_mutex_destroy(&m->lock);
    free(m->buf);
    m->buf = NULL;
}

int mbox_put(struct mbox *m, const void *item)
{
    int rc = 0;
    pthread_mutex_lock(&m->lock);
    if(m->n == m->cap) {
        m->dropped++;
        rc = MCS_EFULL;
    }
    else {
        memcpy(m->buf + ((m->head + m->n) % m->cap) * m->item_size, item, m->item_size);
        m->n++;
    }
    pthread_mutex_unlock(&m->lock);
    return rc;
}

int mbox_take(struct mbox *m, void *item)
{
    int got = 0;
    pthread_mutex_lock(&m->lock);
    if(m->n > 0) {
        memcpy(item, m->buf + m->head * m->item_size, m->item_size);
        m->head = (m->head + 1) % m->cap;
        m->n--;
        got = 1;
    }
    pthread_mutex_unlock(&m->lock);
    return got;
}

size_t mbox_room(struct mbox *m)
{
    size_t r;
    pthread_mutex_lock(&m->lock);
    r = m->cap - m->n;
    pthread_mutex_unlock(&m->lock);
    return r;
}

uint64_t mbox_dropped(struct mbox *m)
{
    uint64_t d;
    pthread_mutex_lock(&m->lock);
    d = m->dropped;
    pthread_mutex_unlock(&m->lock);
    return d;
}
