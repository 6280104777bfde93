/* journal.h - the ingest journal: an append-only, segmented, checksummed log
 * of accepted readings and status events in SPOOL_DIR. It is both the queue
 * between ingest and store and the on-disk spool during a database outage.
 * A record is written (write(2)) before the MQTT callback returns, so before
 * the PUBACK leaves; the store thread reads it back from its checkpoint.
 * Positions are linear byte offsets of record bytes; a segment file is named
 * by the position of its first record byte ("j-%020llu.log"), so one number
 * locates any record. Each segment file opens with a versioned header (format
 * version, record size, its base position, the spool's identity); positions
 * do not count header bytes. Segments written before headers existed
 * (version 0) are read as they are. Invariants, asserted: a record never
 * crosses a segment, positions inside a segment are base + k * record size,
 * and a batch read never crosses a segment.
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

/* Journal format version this build writes and reads (besides version 0,
 * the headerless segments of the first release). A new record layout gets a
 * new version; an older mcsd refuses a newer segment instead of cutting it. */
#define MCS_JOURNAL_VERSION 1
#define MCS_SPOOL_ID_LEN 32 /* hex characters */

enum { MCS_FSYNC_OFF = 0, MCS_FSYNC_INTERVAL = 1, MCS_FSYNC_ALWAYS = 2 };

struct mcs_journal {
    char dir[512];
    char spool_id[MCS_SPOOL_ID_LEN + 1]; /* identity of this spool directory */
    int fsync_mode, fsync_ms;
    int64_t last_sync_ms;
    int dirty;                /* written since the last fdatasync */
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
    int64_t rhdr;             /* header bytes of that segment file */
    int64_t oldest;           /* oldest segment still on disk, as last seen */
    unsigned char *rbuf;
    size_t rbuf_cap;
    int64_t wseg;             /* base position of the writer's segment */
    _Atomic int64_t wpos;     /* end of the last complete record */
    _Atomic int64_t committed;/* everything before is stored (store thread) */
    /* Damage found (reader side and at open): records skipped for a bad
     * checksum, bytes of torn segment tails jumped over. */
    _Atomic uint64_t bad_records, gap_bytes;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int waiting;
};

/* Opens (creating) dir and its identity file spool.id, checks every segment
 * (a power loss can leave a short or corrupt record in any of them): torn
 * tails are cut and counted, corrupt records inside are counted and skipped
 * by the reader; positions the writer after the last whole record.
 * committed starts at the oldest segment's base until the store thread
 * learns the real checkpoint. Returns 0, MCS_EIO, or MCS_ECORRUPT for a
 * segment of an unknown format version (nothing is changed then). */
int journal_open(struct mcs_journal *j, const char *dir, int64_t max_bytes);

/* Sets the power-loss policy (MCS_FSYNC_*): off, fdatasync at most every
 * ms, or before journal_flush() returns. */
void journal_set_fsync(struct mcs_journal *j, int mode, int ms);

/* Records appended but not yet written (a failed flush loses them). */
int journal_pending(const struct mcs_journal *j);
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

/* Reads whole records from pos into out (at most max), never past wpos and
 * never across a segment. Returns the count and sets *next to the position
 * after the last one read or skipped: records with a bad checksum and the
 * torn end of a segment are skipped (counted in bad_records/gap_bytes), so
 * the count may be 0 with *next > pos — the caller moves on to *next.
 * 0 with *next == pos: nothing available. MCS_EIO on failure.
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
