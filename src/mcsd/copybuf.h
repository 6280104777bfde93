/* copybuf.h - builds PostgreSQL binary COPY data for sensor_data rows.
 * Owns one growable buffer (capped). Thread: the store thread. */
#ifndef MCS_COPYBUF_H
#define MCS_COPYBUF_H

#include "journal.h"

#include <stddef.h>
#include <stdint.h>

struct mcs_copybuf {
    unsigned char *data;
    size_t len, cap, max;
    uint32_t rows;
};

/* The column list the rows are written in. */
#define MCS_COPY_COLUMNS "time, sn, v_raw, ppm, temp, humi, bat, rssi, seq, err, flags"

int copybuf_init(struct mcs_copybuf *b, size_t max);
void copybuf_cleanup(struct mcs_copybuf *b);
/* Starts a new COPY stream (binary header). */
void copybuf_reset(struct mcs_copybuf *b);
/* Appends one reading record as a row. Returns 0 or MCS_ETOOBIG. */
int copybuf_add(struct mcs_copybuf *b, const struct mcs_jrec *r);
/* Appends the trailer; the buffer is then ready for PQputCopyData. */
int copybuf_finish(struct mcs_copybuf *b);

#endif
