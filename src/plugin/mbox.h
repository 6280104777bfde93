/* mbox.h - a bounded FIFO of fixed-size items between two threads of the
 * broker plugin (kicks and log lines from the sync thread to the broker's
 * thread; unknown-SN attempts the other way). Never blocks for long, never
 * grows: a put into a full box is refused and counted.
 * Owns its buffer. Thread: any (one mutex). */
#ifndef MCS_MBOX_H
#define MCS_MBOX_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

struct mbox {
    pthread_mutex_t lock;
    unsigned char *buf;
    size_t item_size, cap, head, n;
    uint64_t dropped; /* puts refused because the box was full */
};

/* Returns 0 or MCS_ENOMEM (cap items of item_size bytes). */
int mbox_init(struct mbox *m, size_t item_size, size_t cap);

/* Frees the buffer; a box never initialised (buf NULL) is a no-op. */
void mbox_cleanup(struct mbox *m);

/* Copies item (item_size bytes) in. Returns 0, or MCS_EFULL (counted). */
int mbox_put(struct mbox *m, const void *item);

/* Copies the oldest item out. Returns 1 when one was taken, 0 when empty. */
int mbox_take(struct mbox *m, void *item);

/* Free places right now. */
size_t mbox_room(struct mbox *m);

/* Items refused so far. */
uint64_t mbox_dropped(struct mbox *m);

#endif
