/* sink.h - where archives and backups go (STYLE rule 9): an S3/R2 bucket
 * (s3.h) or a local directory, behind one small vtable, plus the streaming
 * upload on top of it: bytes are buffered up to one part (ARCHIVE_PART_MB),
 * sent as a single PUT when the whole object fits in one part, else as a
 * multipart upload, with the whole object's MD5 and the multipart ETag
 * (MD5 of the parts' binary MD5s, "-N") computed on the way for verifying.
 * Owns the backend connection and the part buffer. Thread: one per sink. */
#ifndef MCS_SINK_H
#define MCS_SINK_H

#include "config.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MCS_SINK_ETAG_MAX 80

struct mcs_sink;

struct mcs_sink_ops {
    const char *name; /* "s3" or "dir" */
    /* Whole object in one request. etag receives what the store says. */
    int (*put)(struct mcs_sink *k, const char *key, const void *buf, size_t n, char *etag,
               char *err, size_t errn);
    /* Multipart: begin → part 1..N → complete, or abort. */
    int (*mpu_begin)(struct mcs_sink *k, const char *key, char *id, size_t idn, char *err,
                     size_t errn);
    int (*mpu_part)(struct mcs_sink *k, const char *key, const char *id, int part,
                    const void *buf, size_t n, char *etag, char *err, size_t errn);
    int (*mpu_complete)(struct mcs_sink *k, const char *key, const char *id,
                        const char (*etags)[MCS_SINK_ETAG_MAX], int nparts, char *etag,
                        char *err, size_t errn);
    void (*mpu_abort)(struct mcs_sink *k, const char *key, const char *id);
    /* Size and ETag of a stored object (dir: the file's MD5). MCS_ENOTFOUND
     * when absent. */
    int (*stat)(struct mcs_sink *k, const char *key, int64_t *size, char *etag, char *err,
                size_t errn);
    int (*get)(struct mcs_sink *k, const char *key,
               int (*cb)(void *arg, const void *p, size_t n), void *arg, char *err,
               size_t errn);
    int (*del)(struct mcs_sink *k, const char *key, char *err, size_t errn);
    int (*list)(struct mcs_sink *k, const char *prefix,
                int (*cb)(void *arg, const char *key, int64_t size), void *arg, char *err,
                size_t errn);
    void (*free)(struct mcs_sink *k);
};

struct mcs_sink {
    const struct mcs_sink_ops *ops;
    size_t part_size;
};

/* Opens the sink that ARCHIVE_SINK names (s3: R2_*; dir: ARCHIVE_DIR).
 * stop (may be NULL) aborts transfers. Returns 0 or MCS_ECONFIG/MCS_ENOMEM
 * with the reason in err. */
int sink_open(const struct mcs_config *cfg, const _Atomic int *stop, struct mcs_sink **out,
              char *err, size_t errn);
void sink_free(struct mcs_sink *k);

/* What a finished upload wrote. */
struct mcs_upload_result {
    int64_t bytes;
    int parts;                      /* 0: single PUT */
    char md5[33];                   /* of the whole object */
    char multipart_etag[MCS_SINK_ETAG_MAX]; /* "<md5 of part md5s>-N" when parts > 0 */
    char etag[MCS_SINK_ETAG_MAX];   /* what the store answered */
};

struct mcs_upload;

/* Streaming upload of one object. write() may block while a part is sent.
 * finish() completes it and frees u; abort() discards it (and any parts
 * already sent) and frees u. NULL is a no-op for abort. */
int sink_upload_begin(struct mcs_sink *k, const char *key, struct mcs_upload **out, char *err,
                      size_t errn);
int sink_upload_write(struct mcs_upload *u, const void *p, size_t n, char *err, size_t errn);
int sink_upload_finish(struct mcs_upload *u, struct mcs_upload_result *res, char *err,
                       size_t errn);
void sink_upload_abort(struct mcs_upload *u);

/* Checks the stored object against what was uploaded: its size, and its
 * ETag equal to the MD5 (single PUT), the multipart rule, or the whole MD5
 * (some stores); otherwise, or when force_download, downloads it and
 * compares size and MD5. how (size >= 16) receives "etag" or "download".
 * Returns 0 or MCS_ECORRUPT / a transfer error, reason in err. */
int sink_verify(struct mcs_sink *k, const char *key, const struct mcs_upload_result *res,
                int force_download, char *how, char *err, size_t errn);

#endif
