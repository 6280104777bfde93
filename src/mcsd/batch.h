/* batch.h - writes one journal batch into PostgreSQL in one transaction:
 * the readings (binary COPY; a staged INSERT ... ON CONFLICT DO NOTHING when
 * the batch holds a duplicate, R-PR-5), the status records (in sn order:
 * the global lock order, issue #15), and the journal
 * checkpoint, so that the batch is stored exactly once across crashes.
 * Failures are told apart by SQLSTATE (PG_DIAG_SQLSTATE), never by message
 * text: a transient one (timeout, deadlock, lock, resources, cancel) rolls
 * back and is retried by the caller; a missing partition is created from the
 * batch's own oldest reading; only rows that are themselves invalid (class
 * 22/23) go to sensor_quarantine, with the reason.
 * This is where alarm decisions will be written too: in the same
 * transaction as the readings they come from (issue #7).
 * Owns nothing but the batch's transaction. Thread: the store thread. */
#ifndef MCS_BATCH_H
#define MCS_BATCH_H

#include "copybuf.h"
#include "dialect.h"
#include "journal.h"

#include <libpq-fe.h>
#include <stdint.h>

struct alarm_engine; /* alarm_db.h (issue #7) */

/* What a failed statement means for the batch (from its SQLSTATE). */
enum mcs_pgfail {
    MCS_PGF_NONE = 0,
    MCS_PGF_DUP,          /* 23505: a duplicate (sn, time, seq) */
    MCS_PGF_NO_PARTITION, /* 23514: no partition for a row (or a CHECK) */
    MCS_PGF_DATA,         /* other class 22/23: a row itself is invalid */
    MCS_PGF_TRANSIENT,    /* anything else on a live connection: retry */
    MCS_PGF_CONN,         /* the connection is gone */
};

/* Classifies a failed result (NULL: a failure without a result). */
enum mcs_pgfail batch_classify(PGconn *pg, const PGresult *r);

/* The store thread's writing context; fields set by the store thread. */
struct mcs_batchdb {
    PGconn *pg;
    const struct mcs_dialect *dialect;
    const char *instance;     /* INSTANCE_ID: the checkpoint row */
    const char *spool_id;     /* written with the checkpoint */
    struct mcs_copybuf copy;
    int64_t parts_lo, parts_hi; /* day numbers known to have partitions */
    char err[1024];           /* the last failure: SQLSTATE, then message */
    struct alarm_engine *alarm; /* issue #7: alarm decisions in the batch's transaction */
};

/* Outcome of a committed batch. */
struct mcs_batch_result {
    int readings;    /* reading records in the batch */
    int inserted;    /* rows new in sensor_data */
    int quarantined; /* rows moved to sensor_quarantine */
};

int batch_init(struct mcs_batchdb *b, const char *instance, const char *spool_id);
void batch_cleanup(struct mcs_batchdb *b);

/* Makes sure partitions exist for the days of [min_ts, max_ts] (Unix s),
 * asking the database only for days not already known. Returns 0 or
 * MCS_EDB. */
int batch_cover(struct mcs_batchdb *b, int64_t min_ts, int64_t max_ts);

/* Stores recs[0..n), which end at journal position next, with the
 * checkpoint. Returns 0 (committed; *res filled), MCS_EAGAIN (a transient
 * failure: rolled back, nothing advanced; retry the same batch later),
 * MCS_EDB (the connection is lost), or MCS_ETOOBIG (COPY buffer cap).
 * b->err says why. */
int batch_write(struct mcs_batchdb *b, const struct mcs_jrec *recs, int n, int64_t next,
                struct mcs_batch_result *res);

#endif
