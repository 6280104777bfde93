/* sink.c - the streaming upload over a sink, the verification rule, and the
 * two backends: S3/R2 (over s3.c) and a local directory (files written to a
 * temporary name, fsynced, then renamed, so a key never names a partial
 * object). Owns the backends' state and part buffers. Thread: the caller's. */
#include "sink.h"
#include "err.h"
#include "log.h"
#include "s3.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PARTS_MAX 10000

/* Keys are made by us: letters, digits and "/_.-", no "..", no leading "/". */
static int key_ok(const char *key)
{
    if(!key[0] || key[0] == '/' || strstr(key, "..") || strlen(key) > 512)
        return 0;
    for(const char *p = key; *p; p++)
        if(!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             strchr("/_.-", *p)))
            return 0;
    return 1;
}

static void hex(const unsigned char *d, unsigned n, char *out)
{
    for(unsigned i = 0; i < n; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    out[2 * n] = '\0';
}

/* ---- S3 backend ---- */

struct s3_sink {
    struct mcs_sink base;
    struct mcs_s3 s3;
};

#define S3(k) (&((struct s3_sink *)(void *)(k))->s3)

static int s3k_put(struct mcs_sink *k, const char *key, const void *buf, size_t n, char *etag,
                   char *err, size_t errn)
{
    return s3_put(S3(k), key, buf, n, etag, err, errn);
}
static int s3k_begin(struct mcs_sink *k, const char *key, char *id, size_t idn, char *err,
                     size_t errn)
{
    return s3_mpu_create(S3(k), key, id, idn, err, errn);
}
static int s3k_part(struct mcs_sink *k, const char *key, const char *id, int part,
                    const void *buf, size_t n, char *etag, char *err, size_t errn)
{
    return s3_mpu_part(S3(k), key, id, part, buf, n, etag, err, errn);
}
static int s3k_complete(struct mcs_sink *k, const char *key, const char *id,
                        const char (*etags)[MCS_SINK_ETAG_MAX], int nparts, char *etag,
                        char *err, size_t errn)
{
    return s3_mpu_complete(S3(k), key, id, etags, nparts, etag, err, errn);
}
static void s3k_abort(struct mcs_sink *k, const char *key, const char *id)
{
    char err[256];
    if(s3_mpu_abort(S3(k), key, id, err, sizeof(err)))
        LOG_W("sink", "multipart abort failed", LS("key", key), LS("error", err));
}
static int s3k_stat(struct mcs_sink *k, const char *key, int64_t *size, char *etag, char *err,
                    size_t errn)
{
    return s3_head(S3(k), key, size, etag, err, errn);
}
static int s3k_get(struct mcs_sink *k, const char *key,
                   int (*cb)(void *arg, const void *p, size_t n), void *arg, char *err,
                   size_t errn)
{
    return s3_get(S3(k), key, cb, arg, err, errn);
}
static int s3k_del(struct mcs_sink *k, const char *key, char *err, size_t errn)
{
    return s3_delete(S3(k), key, err, errn);
}
static int s3k_list(struct mcs_sink *k, const char *prefix,
                    int (*cb)(void *arg, const char *key, int64_t size), void *arg, char *err,
                    size_t errn)
{
    return s3_list(S3(k), prefix, cb, arg, err, errn);
}
static void s3k_free(struct mcs_sink *k)
{
    s3_cleanup(S3(k));
    free(k);
}

static const struct mcs_sink_ops s3_ops = {"s3", s3k_put, s3k_begin, s3k_part, s3k_complete,
                                           s3k_abort, s3k_stat, s3k_get, s3k_del, s3k_list,
                                           s3k_free};

/* ---- directory backend ---- */

struct dir_sink {
    struct mcs_sink base;
    char root[512];
};

#define ROOT(k) (((struct dir_sink *)(void *)(k))->root)

static int mkparents(const char *path)
{
    char p[1100];
    snprintf(p, sizeof(p), "%s", path);
    for(char *s = p + 1; *s; s++) {
        if(*s != '/')
            continue;
        *s = '\0';
        if(mkdir(p, 0755) && errno != EEXIST)
            return MCS_EIO;
        *s = '/';
    }
    return 0;
}

static int path_of(struct mcs_sink *k, const char *key, char *out, size_t n, char *err,
                   size_t errn)
{
    if(!key_ok(key)) {
        snprintf(err, errn, "bad object key");
        return MCS_EINVAL;
    }
    if((size_t)snprintf(out, n, "%s/%s", ROOT(k), key) >= n) {
        snprintf(err, errn, "path too long");
        return MCS_EINVAL;
    }
    return 0;
}

static int write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while(n > 0) {
        ssize_t w = write(fd, p, n);
        if(w < 0 && errno == EINTR)
            continue;
        if(w <= 0)
            return MCS_EIO;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int dir_begin(struct mcs_sink *k, const char *key, char *id, size_t idn, char *err,
                     size_t errn)
{
    char path[1100];
    int rc = path_of(k, key, path, sizeof(path), err, errn);
    if(rc)
        return rc;
    if((size_t)snprintf(id, idn, "%s.tmp.%ld", path, (long)getpid()) >= idn)
        return MCS_EINVAL;
    if(mkparents(path)) {
        snprintf(err, errn, "cannot create directories for %s: %s", key, strerror(errno));
        return MCS_EIO;
    }
    int fd = open(id, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if(fd < 0) {
        snprintf(err, errn, "cannot create %s: %s", id, strerror(errno));
        return MCS_EIO;
    }
    close(fd);
    return 0;
}

static int dir_part(struct mcs_sink *k, const char *key, const char *id, int part,
                    const void *buf, size_t n, char *etag, char *err, size_t errn)
{
    (void)k;
    (void)key;
    (void)part;
    int fd = open(id, O_WRONLY | O_APPEND | O_CLOEXEC);
    if(fd < 0 || write_all(fd, buf, n)) {
        snprintf(err, errn, "cannot write %s: %s", id, strerror(errno));
        if(fd >= 0)
            close(fd);
        return MCS_EIO;
    }
    close(fd);
    s3_md5_hex(buf, n, etag);
    return 0;
}

static int dir_complete(struct mcs_sink *k, const char *key, const char *id,
                        const char (*etags)[MCS_SINK_ETAG_MAX], int nparts, char *etag,
                        char *err, size_t errn)
{
    char path[1100];
    (void)etags;
    (void)nparts;
    int rc = path_of(k, key, path, sizeof(path), err, errn);
    if(rc)
        return rc;
    int fd = open(id, O_WRONLY | O_CLOEXEC);
    if(fd < 0 || fsync(fd) || rename(id, path)) {
        snprintf(err, errn, "cannot store %s: %s", key, strerror(errno));
        if(fd >= 0)
            close(fd);
        return MCS_EIO;
    }
    close(fd);
    etag[0] = '\0';
    return 0;
}

static void dir_abort(struct mcs_sink *k, const char *key, const char *id)
{
    (void)k;
    (void)key;
    unlink(id);
}

static int dir_put(struct mcs_sink *k, const char *key, const void *buf, size_t n, char *etag,
                   char *err, size_t errn)
{
    char id[1200];
    int rc = dir_begin(k, key, id, sizeof(id), err, errn);
    if(!rc)
        rc = dir_part(k, key, id, 1, buf, n, etag, err, errn);
    if(!rc)
        rc = dir_complete(k, key, id, NULL, 0, etag, err, errn);
    if(rc)
        unlink(id);
    else
        s3_md5_hex(buf, n, etag);
    return rc;
}

static int dir_get(struct mcs_sink *k, const char *key,
                   int (*cb)(void *arg, const void *p, size_t n), void *arg, char *err,
                   size_t errn)
{
    char path[1100];
    static const size_t BUFN = 256 * 1024;
    int rc = path_of(k, key, path, sizeof(path), err, errn);
    if(rc)
        return rc;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if(fd < 0) {
        snprintf(err, errn, "%s: %s", key, strerror(errno));
        return errno == ENOENT ? MCS_ENOTFOUND : MCS_EIO;
    }
    char *buf = malloc(BUFN);
    if(!buf) {
        close(fd);
        return MCS_ENOMEM;
    }
    for(;;) {
        ssize_t r = read(fd, buf, BUFN);
        if(r < 0 && errno == EINTR)
            continue;
        if(r < 0) {
            snprintf(err, errn, "%s: %s", key, strerror(errno));
            rc = MCS_EIO;
            break;
        }
        if(r == 0)
            break;
        if(cb(arg, buf, (size_t)r)) {
            snprintf(err, errn, "%s: aborted by the receiver", key);
            rc = MCS_EIO;
            break;
        }
    }
    free(buf);
    close(fd);
    return rc;
}

static int md5_cb(void *arg, const void *p, size_t n)
{
    return EVP_DigestUpdate(arg, p, n) == 1 ? 0 : 1;
}

static int dir_stat(struct mcs_sink *k, const char *key, int64_t *size, char *etag, char *err,
                    size_t errn)
{
    char path[1100];
    struct stat st;
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    int rc = path_of(k, key, path, sizeof(path), err, errn);
    if(rc)
        return rc;
    if(stat(path, &st)) {
        snprintf(err, errn, "%s: %s", key, strerror(errno));
        return errno == ENOENT ? MCS_ENOTFOUND : MCS_EIO;
    }
    *size = (int64_t)st.st_size;
    /* A directory has no ETag: the file's MD5 stands for it. */
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if(!c)
        return MCS_ENOMEM;
    EVP_DigestInit_ex(c, EVP_md5(), NULL);
    rc = dir_get(k, key, md5_cb, c, err, errn);
    EVP_DigestFinal_ex(c, d, &dl);
    EVP_MD_CTX_free(c);
    if(!rc)
        hex(d, dl, etag);
    return rc;
}

static int dir_del(struct mcs_sink *k, const char *key, char *err, size_t errn)
{
    char path[1100];
    int rc = path_of(k, key, path, sizeof(path), err, errn);
    if(rc)
        return rc;
    if(unlink(path) && errno != ENOENT) {
        snprintf(err, errn, "%s: %s", key, strerror(errno));
        return MCS_EIO;
    }
    return 0;
}

/* Walks root/rel recursively, reporting regular files whose key starts
 * with prefix; temporary files are not objects. */
static int walk(const char *root, const char *rel, const char *prefix,
                int (*cb)(void *arg, const char *key, int64_t size), void *arg, int depth)
{
    char dir[1100];
    snprintf(dir, sizeof(dir), "%s%s%s", root, rel[0] ? "/" : "", rel);
    DIR *d = opendir(dir);
    struct dirent *e;
    int stop = 0;
    if(!d)
        return 0;
    while(!stop && (e = readdir(d))) {
        char key[1100], full[1200];
        struct stat st;
        if(e->d_name[0] == '.' || strstr(e->d_name, ".tmp."))
            continue;
        snprintf(key, sizeof(key), "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        snprintf(full, sizeof(full), "%s/%s", root, key);
        if(stat(full, &st))
            continue;
        if(S_ISDIR(st.st_mode)) {
            size_t kl = strlen(key), pl = strlen(prefix);
            /* Descend only where the prefix can still match. */
            if(depth < 8 && (kl >= pl ? !strncmp(key, prefix, pl) : !strncmp(key, prefix, kl)))
                stop = walk(root, key, prefix, cb, arg, depth + 1);
        }
        else if(S_ISREG(st.st_mode) && !strncmp(key, prefix, strlen(prefix)))
            stop = cb(arg, key, (int64_t)st.st_size);
    }
    closedir(d);
    return stop;
}

static int dir_list(struct mcs_sink *k, const char *prefix,
                    int (*cb)(void *arg, const char *key, int64_t size), void *arg, char *err,
                    size_t errn)
{
    (void)err;
    (void)errn;
    walk(ROOT(k), "", prefix, cb, arg, 0);
    return 0;
}

static void dir_free(struct mcs_sink *k)
{
    free(k);
}

static const struct mcs_sink_ops dir_ops = {"dir", dir_put, dir_begin, dir_part, dir_complete,
                                            dir_abort, dir_stat, dir_get, dir_del, dir_list,
                                            dir_free};

int sink_open(const struct mcs_config *cfg, const _Atomic int *stop, struct mcs_sink **out,
              char *err, size_t errn)
{
    size_t part = (size_t)cfg->archive_part_mb << 20;
    *out = NULL;
    if(!strcmp(cfg->archive_sink, "dir")) {
        struct dir_sink *d = calloc(1, sizeof(*d));
        if(!d)
            return MCS_ENOMEM;
        d->base.ops = &dir_ops;
        d->base.part_size = part;
        snprintf(d->root, sizeof(d->root), "%s", cfg->archive_dir);
        size_t rl = strlen(d->root);
        while(rl > 1 && d->root[rl - 1] == '/')
            d->root[--rl] = '\0';
        if(mkdir(d->root, 0755) && errno != EEXIST) {
            snprintf(err, errn, "ARCHIVE_DIR %s: %s", d->root, strerror(errno));
            free(d);
            return MCS_ECONFIG;
        }
        *out = &d->base;
        return 0;
    }
    if(!cfg->r2_endpoint[0] || !cfg->r2_bucket[0]) {
        snprintf(err, errn, "ARCHIVE_SINK=s3 needs R2_ENDPOINT and R2_BUCKET");
        return MCS_ECONFIG;
    }
    struct s3_sink *s = calloc(1, sizeof(*s));
    if(!s)
        return MCS_ENOMEM;
    s->base.ops = &s3_ops;
    s->base.part_size = part;
    int rc = s3_init(&s->s3, cfg->r2_endpoint, cfg->r2_bucket, cfg->r2_region,
                     cfg->r2_access_key, cfg->r2_secret_key, stop);
    if(rc) {
        snprintf(err, errn, "R2_ENDPOINT/R2_BUCKET not usable (%s)", mcs_strerror(rc));
        s3_cleanup(&s->s3);
        free(s);
        return rc == MCS_ENOMEM ? rc : MCS_ECONFIG;
    }
    *out = &s->base;
    return 0;
}

void sink_free(struct mcs_sink *k)
{
    if(k)
        k->ops->free(k);
}

/* ---- streaming upload ---- */

struct mcs_upload {
    struct mcs_sink *k;
    char key[520];
    char id[1200];       /* multipart upload id, "" until started */
    unsigned char *buf;
    size_t len;
    int parts;
    char (*etags)[MCS_SINK_ETAG_MAX];
    EVP_MD_CTX *whole;   /* MD5 of everything */
    EVP_MD_CTX *partsmd; /* MD5 of the parts' binary MD5s */
    int64_t bytes;
};

static void upload_free(struct mcs_upload *u)
{
    free(u->buf);
    free(u->etags);
    EVP_MD_CTX_free(u->whole);
    EVP_MD_CTX_free(u->partsmd);
    free(u);
}

int sink_upload_begin(struct mcs_sink *k, const char *key, struct mcs_upload **out, char *err,
                      size_t errn)
{
    struct mcs_upload *u = calloc(1, sizeof(*u));
    *out = NULL;
    if(!key_ok(key)) {
        snprintf(err, errn, "bad object key");
        free(u);
        return MCS_EINVAL;
    }
    if(!u)
        return MCS_ENOMEM;
    u->k = k;
    snprintf(u->key, sizeof(u->key), "%s", key);
    u->buf = malloc(k->part_size);
    u->whole = EVP_MD_CTX_new();
    u->partsmd = EVP_MD_CTX_new();
    if(!u->buf || !u->whole || !u->partsmd) {
        upload_free(u);
        return MCS_ENOMEM;
    }
    EVP_DigestInit_ex(u->whole, EVP_md5(), NULL);
    EVP_DigestInit_ex(u->partsmd, EVP_md5(), NULL);
    *out = u;
    return 0;
}

static int send_part(struct mcs_upload *u, char *err, size_t errn)
{
    int rc;
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    if(!u->id[0] && (rc = u->k->ops->mpu_begin(u->k, u->key, u->id, sizeof(u->id), err, errn))) {
        u->id[0] = '\0';
        return rc;
    }
    if(u->parts >= PARTS_MAX) {
        snprintf(err, errn, "more than %d parts: raise ARCHIVE_PART_MB", PARTS_MAX);
        return MCS_ETOOBIG;
    }
    if(!(u->parts % 64)) {
        void *ne = realloc(u->etags, (size_t)(u->parts + 64) * MCS_SINK_ETAG_MAX);
        if(!ne)
            return MCS_ENOMEM;
        u->etags = ne;
    }
    rc = u->k->ops->mpu_part(u->k, u->key, u->id, u->parts + 1, u->buf, u->len,
                             u->etags[u->parts], err, errn);
    if(rc)
        return rc;
    EVP_Digest(u->buf, u->len, d, &dl, EVP_md5(), NULL);
    EVP_DigestUpdate(u->partsmd, d, dl);
    u->parts++;
    u->len = 0;
    return 0;
}

int sink_upload_write(struct mcs_upload *u, const void *p, size_t n, char *err, size_t errn)
{
    const unsigned char *s = p;
    EVP_DigestUpdate(u->whole, p, n);
    u->bytes += (int64_t)n;
    while(n > 0) {
        size_t room = u->k->part_size - u->len, take = n < room ? n : room;
        memcpy(u->buf + u->len, s, take);
        u->len += take;
        s += take;
        n -= take;
        /* A full part is sent only when more follows, so that an object of
         * exactly one part is a single PUT. */
        if(u->len == u->k->part_size && n > 0) {
            int rc = send_part(u, err, errn);
            if(rc)
                return rc;
        }
    }
    return 0;
}

int sink_upload_finish(struct mcs_upload *u, struct mcs_upload_result *res, char *err,
                       size_t errn)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    int rc = 0;
    memset(res, 0, sizeof(*res));
    EVP_DigestFinal_ex(u->whole, d, &dl);
    hex(d, dl, res->md5);
    res->bytes = u->bytes;
    if(!u->parts) {
        rc = u->k->ops->put(u->k, u->key, u->buf, u->len, res->etag, err, errn);
        goto out;
    }
    if(u->len > 0 && (rc = send_part(u, err, errn)))
        goto out;
    EVP_DigestFinal_ex(u->partsmd, d, &dl);
    hex(d, dl, res->multipart_etag);
    snprintf(res->multipart_etag + strlen(res->multipart_etag),
             sizeof(res->multipart_etag) - strlen(res->multipart_etag), "-%d", u->parts);
    res->parts = u->parts;
    rc = u->k->ops->mpu_complete(u->k, u->key, u->id, (const char(*)[MCS_SINK_ETAG_MAX])u->etags,
                                 u->parts, res->etag, err, errn);
out:
    if(rc && u->id[0])
        u->k->ops->mpu_abort(u->k, u->key, u->id);
    upload_free(u);
    return rc;
}

void sink_upload_abort(struct mcs_upload *u)
{
    if(!u)
        return;
    if(u->id[0])
        u->k->ops->mpu_abort(u->k, u->key, u->id);
    upload_free(u);
}

struct dl_check {
    EVP_MD_CTX *md;
    int64_t bytes;
};

static int dl_cb(void *arg, const void *p, size_t n)
{
    struct dl_check *c = arg;
    c->bytes += (int64_t)n;
    return EVP_DigestUpdate(c->md, p, n) == 1 ? 0 : 1;
}

int sink_verify(struct mcs_sink *k, const char *key, const struct mcs_upload_result *res,
                int force_download, char *how, char *err, size_t errn)
{
    int64_t size = -1;
    char etag[MCS_SINK_ETAG_MAX] = "";
    int rc = k->ops->stat(k, key, &size, etag, err, errn);
    snprintf(how, 16, "etag");
    if(rc)
        return rc;
    if(size != res->bytes) {
        snprintf(err, errn, "%s: stored %lld bytes, uploaded %lld", key, (long long)size,
                 (long long)res->bytes);
        return MCS_ECORRUPT;
    }
    int etag_says = !strcmp(etag, res->md5) ||
                    (res->parts > 0 && !strcmp(etag, res->multipart_etag));
    if(etag_says && !force_download)
        return 0;
    if(etag[0] && !etag_says && !strchr(etag, '-') && strlen(etag) == 32) {
        /* A plain MD5 ETag that differs is a different object. */
        snprintf(err, errn, "%s: stored ETag %s, uploaded MD5 %s", key, etag, res->md5);
        return MCS_ECORRUPT;
    }
    /* The ETag says nothing we can check (or a download was asked for). */
    snprintf(how, 16, "download");
    struct dl_check c = {EVP_MD_CTX_new(), 0};
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned dl = 0;
    char md5[33];
    if(!c.md)
        return MCS_ENOMEM;
    EVP_DigestInit_ex(c.md, EVP_md5(), NULL);
    rc = k->ops->get(k, key, dl_cb, &c, err, errn);
    EVP_DigestFinal_ex(c.md, d, &dl);
    EVP_MD_CTX_free(c.md);
    if(rc)
        return rc;
    hex(d, dl, md5);
    if(c.bytes != res->bytes || strcmp(md5, res->md5)) {
        snprintf(err, errn, "%s: downloaded %lld bytes MD5 %s, uploaded %lld MD5 %s", key,
                 (long long)c.bytes, md5, (long long)res->bytes, res->md5);
        return MCS_ECORRUPT;
    }
    return 0;
}
