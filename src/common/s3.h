/* s3.h - a small S3 client on libcurl for Cloudflare R2 and other
 * S3-compatible stores: path-style URLs, SigV4 by CURLOPT_AWS_SIGV4
 * ("aws:amz:REGION:s3"), with what libcurl 7.88 leaves to us done here: the
 * x-amz-content-sha256 header (payload SHA-256) and canonical query strings
 * (sorted, URI-encoded). Content-MD5 on every body so a store that checks it
 * refuses a damaged upload. Responses are XML, read with libxml2.
 * Owns its CURL handle. Thread: one thread per struct mcs_s3. */
#ifndef MCS_S3_H
#define MCS_S3_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define MCS_S3_ETAG_MAX 80

struct mcs_s3 {
    void *curl;             /* CURL * */
    char base[640];         /* endpoint/bucket, no trailing slash */
    char sigv4[64];         /* "aws:amz:REGION:s3" */
    char userpwd[400];      /* "ACCESS:SECRET" for libcurl; never logged */
    const _Atomic int *stop;/* aborts a transfer when set; may be NULL */
    long last_status;       /* HTTP status of the last request */
};

/* Sets up a client. endpoint is "http(s)://host[:port]" (no path); the key
 * pair may be empty for anonymous access. Returns 0, MCS_EINVAL or
 * MCS_ENOMEM. */
int s3_init(struct mcs_s3 *s, const char *endpoint, const char *bucket, const char *region,
            const char *access_key, const char *secret_key, const _Atomic int *stop);
void s3_cleanup(struct mcs_s3 *s);

/* Each call returns 0 or a negative MCS_E code with a one-line reason in err
 * (the store's error code and message when it sent one): MCS_ENOTFOUND for
 * 404, MCS_EIO for transport and other HTTP errors. ETags are returned
 * without quotes. */
int s3_put(struct mcs_s3 *s, const char *key, const void *buf, size_t n,
           char etag[MCS_S3_ETAG_MAX], char *err, size_t errn);
int s3_head(struct mcs_s3 *s, const char *key, int64_t *size, char etag[MCS_S3_ETAG_MAX],
            char *err, size_t errn);
/* Streams the object to cb (return non-zero to abort: MCS_EIO). */
int s3_get(struct mcs_s3 *s, const char *key, int (*cb)(void *arg, const void *p, size_t n),
           void *arg, char *err, size_t errn);
int s3_delete(struct mcs_s3 *s, const char *key, char *err, size_t errn);
/* ListObjectsV2 under prefix, every page; cb per object (non-zero stops). */
int s3_list(struct mcs_s3 *s, const char *prefix,
            int (*cb)(void *arg, const char *key, int64_t size), void *arg, char *err,
            size_t errn);

/* Multipart upload. upload_id is at most 512 bytes. */
int s3_mpu_create(struct mcs_s3 *s, const char *key, char *upload_id, size_t idn, char *err,
                  size_t errn);
int s3_mpu_part(struct mcs_s3 *s, const char *key, const char *upload_id, int part,
                const void *buf, size_t n, char etag[MCS_S3_ETAG_MAX], char *err, size_t errn);
int s3_mpu_complete(struct mcs_s3 *s, const char *key, const char *upload_id,
                    const char (*etags)[MCS_S3_ETAG_MAX], int nparts,
                    char etag[MCS_S3_ETAG_MAX], char *err, size_t errn);
int s3_mpu_abort(struct mcs_s3 *s, const char *key, const char *upload_id, char *err,
                 size_t errn);

/* Lower-case hex SHA-256 / MD5 of a buffer (out: 65 / 33 bytes). */
void s3_sha256_hex(const void *buf, size_t n, char out[65]);
void s3_md5_hex(const void *buf, size_t n, char out[33]);

/* Canonical form of a query string (AWS SigV4): pairs sorted by name, then
 * value; names and values URI-encoded (unreserved kept, %XX upper-case);
 * a name without '=' gets an empty value. Input pairs are raw (not
 * encoded). Returns 0 or MCS_ETOOBIG when out (size n) is too small. */
int s3_canonical_query(const char *const *names, const char *const *values, int npairs,
                       char *out, size_t n);

#endif
