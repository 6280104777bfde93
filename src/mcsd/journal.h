/* journal.h - the ingest journal: an append-only, segmented, checksummed log
 * of accepted readings and status events in SPOOL_DIR. It is both the queue
 * between ingest and store and the on-disk spool during a database outage.
 * A record is written (write(2)) before the MQTT callback returns, so before
 * the PUBACK leaves; the store thread reads it back from its checkpoint.
 * Positions are linear byte offsets; a segment file is named by the position
 * of its first byte ("j-%020llu.log"), so one number locates any record.
 * Owns the segment files. Thread: one writer (ingest) and one reader (store);
 * the shared positions are atomics, the wake-up a mutex/condvar. */
#ifndef MCS_JOURNAL_H
#define MCS_JOURNAL_H

#include "payload.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

enum { MCS_JREC_READING = 1, MCS_JREC_STATUS = 2 };

/* One record as stored (fixed size, host byte order: the journal never
 * leaves this host). */
struct mcs_jrec {
    uint8_t type;
    uint8_t online;     /* status records */
    uint16_t flags;     /* MCS_FLAG_* */
    int16_t err;
    int16_t pad;
    int32_t seq;
    int32_t bat, rssi;
    int64_t ts;         /* device time, Unix seconds */
    int64_t recv_us;    /* when mcsd received it */
    int64_t trace_us;   /* publish time from the mcs-pt property, or 0 */
    double v_raw, ppm, temp, humi;
    char sn[MCS_SN_MAX];  /* not NUL-terminated when 32 long */
};

/* Copies a record's SN (fixed 32 bytes, NUL-padded) into a C string. */
static inline void jrec_sn(const struct mcs_jrec *r, char out[MCS_SN_MAX + 1])
{
    for(int i = 0; i < MCS_SN_MAX; i++)
        out[i] = r->sn[i];
    out[MCS_SN_MAX] = '\0';
}

struct mcs_journal {
    char dir[512];
    int64_t max_bytes;        /* bound of unstored bytes (SPOOL_MAX_MB) */
    int64_t seg_bytes;        /* rotate after this many bytes */
    int wfd;                  /* current segment, writer side */
    unsigned char *wbuf;      /* records appended but not yet written */
    size_t wbuf_len, wbuf_cap;
    int64_t bpos;             /* position after the last buffered record */
    int64_t start_pos;        /* end of the journal when this process opened it */
    /* Reader side (store thread only): the open segment and a reusable
     * buffer, so that a batch costs one pread, not a directory scan. */
    int rfd;
    int64_t rbase;            /* first position of the segment rfd holds */
    int64_t oldest;           /* oldest segment still on disk, as last seen */
    unsigned char *rbuf;
    size_t rbuf_cap;
    int64_t wseg;             /* base position of the writer's segment */
    _Atomic int64_t wpos;     /* end of the last complete record */
    _Atomic int64_t committed;/* everything before is stored (store thread) */
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int waiting;
};

/* Opens (creating) dir, truncates a torn record at the end of the last
 * segment (a crash mid-write) and positions the writer after the last whole
 * record. committed starts at the oldest segment's base until the store
 * thread learns the real checkpoint. Returns 0 or MCS_EIO. */
int journal_open(struct mcs_journal *j, const char *dir, int64_t max_bytes);
void journal_close(struct mcs_journal *j);

/* Appends one record. With sync set it is written to the file before the
 * call returns (with every record buffered before it, in order): use it for
 * a message the broker will consider acknowledged when we return (QoS 1).
 * Otherwise it may stay in a small buffer until journal_flush() (QoS 0: no
 * acknowledgement depends on it; one write per burst instead of one per
 * message). Returns 0, MCS_EFULL when the unstored bytes would exceed the
 * bound, or MCS_EIO. Writer thread only. */
int journal_append(struct mcs_journal *j, const struct mcs_jrec *rec, int sync);

/* Writes buffered records and makes them visible to the reader (wakes it).
 * Returns 0 or MCS_EIO. Writer thread only. */
int journal_flush(struct mcs_journal *j);

/* Reads whole records from pos into out (at most max), never past wpos.
 * Returns the count (0 when nothing is available) and sets *next to the
 * position after the last one read; MCS_ECORRUPT or MCS_EIO on failure.
 * Reader thread only. */
int journal_read(struct mcs_journal *j, int64_t pos, struct mcs_jrec *out, int max,
                 int64_t *next);

/* Records that everything before pos is stored and deletes whole segments
 * before it. Reader thread only. */
void journal_commit(struct mcs_journal *j, int64_t pos);

/* Oldest position still on disk (the base of the first segment). */
int64_t journal_oldest(struct mcs_journal *j);

/* Waits until data beyond pos exists or timeout_ms passes. */
void journal_wait(struct mcs_journal *j, int64_t pos, int timeout_ms);

/* Wakes a waiting reader (shutdown). */
void journal_wake(struct mcs_journal *j);

#endif
