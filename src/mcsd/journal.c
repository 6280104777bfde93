/* journal.c - segmented append-only journal with CRC32 per record.
 * Owns the files under SPOOL_DIR. Thread: one writer, one reader (see .h). */
#include "journal.h"
#include "err.h"
#include "log.h"
#include "timeutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#define HDR 8 /* u32 length, u32 crc32 */
#define REC (HDR + (int64_t)sizeof(struct mcs_jrec))

static void seg_path(const struct mcs_journal *j, int64_t base, char *out, size_t n)
{
    snprintf(out, n, "%s/j-%020" PRId64 ".log", j->dir, base);
}

/* Lists segment bases in ascending order. Returns count or negative error;
 * *bases is malloc'd (caller frees). */
static int list_segments(const char *dir, int64_t **bases)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0, cap = 16;
    int64_t *v = malloc((size_t)cap * sizeof(*v));

    if(!d || !v) {
        if(d)
            closedir(d);
        free(v);
        return MCS_EIO;
    }
    while((e = readdir(d))) {
        char *end;
        if(strncmp(e->d_name, "j-", 2) != 0)
            continue;
        long long b = strtoll(e->d_name + 2, &end, 10);
        if(strcmp(end, ".log") != 0 || b < 0)
            continue;
        if(n == cap) {
            int64_t *nv = realloc(v, (size_t)(cap *= 2) * sizeof(*v));
            if(!nv) {
                closedir(d);
                free(v);
                return MCS_ENOMEM;
            }
            v = nv;
        }
        v[n++] = b;
    }
    closedir(d);
    for(int i = 1; i < n; i++) /* few files: insertion sort */
        for(int k = i; k > 0 && v[k - 1] > v[k]; k--) {
            int64_t t = v[k];
            v[k] = v[k - 1];
            v[k - 1] = t;
        }
    *bases = v;
    return n;
}

/* Returns the length of the valid prefix of a segment file. */
static int64_t valid_length(int fd)
{
    int64_t off = 0;
    unsigned char buf[REC];
    for(;;) {
        ssize_t r = pread(fd, buf, (size_t)REC, off);
        if(r != REC)
            return off;
        uint32_t len, crc;
        memcpy(&len, buf, 4);
        memcpy(&crc, buf + 4, 4);
        if(len != sizeof(struct mcs_jrec) ||
           crc != (uint32_t)crc32(0L, buf + HDR, (uInt)sizeof(struct mcs_jrec)))
            return off;
        off += REC;
    }
}

static int open_segment(struct mcs_journal *j, int64_t base)
{
    char p[600];
    seg_path(j, base, p, sizeof(p));
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if(fd < 0) {
        LOG_E("journal", "cannot open segment", LS("path", p), LS("error", strerror(errno)));
        return MCS_EIO;
    }
    if(j->wfd >= 0)
        close(j->wfd);
    j->wfd = fd;
    j->wseg = base;
    return 0;
}

int journal_open(struct mcs_journal *j, const char *dir, int64_t max_bytes)
{
    int64_t *bases = NULL;
    int n, rc = 0;

    memset(j, 0, sizeof(*j));
    j->wfd = -1;
    j->rfd = -1;
    snprintf(j->dir, sizeof(j->dir), "%s", dir);
    j->max_bytes = max_bytes;
    /* Small bounds get small segments, so that stored data is released. */
    j->seg_bytes = max_bytes / 8 < (64 << 20) ? max_bytes / 8 : (64 << 20);
    if(j->seg_bytes < REC * 64)
        j->seg_bytes = REC * 64;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    if(mkdir(dir, 0750) != 0 && errno != EEXIST) {
        LOG_E("journal", "cannot create spool dir", LS("dir", dir), LS("error", strerror(errno)));
        return MCS_EIO;
    }
    n = list_segments(dir, &bases);
    if(n < 0)
        return n;
    if(n == 0) {
        atomic_store(&j->wpos, 0);
        atomic_store(&j->committed, 0);
        j->bpos = 0;
        j->start_pos = 0;
        rc = open_segment(j, 0);
        goto out;
    }
    {
        char p[600];
        int64_t last = bases[n - 1], len;
        seg_path(j, last, p, sizeof(p));
        int fd = open(p, O_RDWR | O_CLOEXEC);
        if(fd < 0) {
            rc = MCS_EIO;
            goto out;
        }
        len = valid_length(fd);
        struct stat st;
        if(fstat(fd, &st) == 0 && st.st_size != len) {
            LOG_W("journal", "truncating torn record at the end of the journal",
                  LS("segment", p), LI("valid", len), LI("size", st.st_size));
            if(ftruncate(fd, len) != 0)
                rc = MCS_EIO;
        }
        close(fd);
        if(rc)
            goto out;
        atomic_store(&j->wpos, last + len);
        j->bpos = last + len;
        j->start_pos = last + len;
        atomic_store(&j->committed, bases[0]);
        j->oldest = bases[0];
        rc = open_segment(j, last);
    }
out:
    free(bases);
    return rc;
}

void journal_close(struct mcs_journal *j)
{
    if(j->rfd >= 0)
        close(j->rfd);
    j->rfd = -1;
    free(j->rbuf);
    j->rbuf = NULL;
    if(j->wbuf_len)
        journal_flush(j);
    free(j->wbuf);
    j->wbuf = NULL;
    if(j->wfd >= 0)
        close(j->wfd);
    j->wfd = -1;
    pthread_mutex_destroy(&j->mu);
    pthread_cond_destroy(&j->cv);
}

#define WBUF_MAX (64 * 1024)

int journal_flush(struct mcs_journal *j)
{
    int64_t pos = atomic_load_explicit(&j->wpos, memory_order_relaxed);
    size_t off = 0;

    while(off < j->wbuf_len) {
        /* A segment ends only at a record boundary: write up to it. */
        size_t n = j->wbuf_len - off;
        int64_t room = j->seg_bytes - (pos - j->wseg);
        if(room <= 0) {
            if(open_segment(j, pos))
                goto fail;
            room = j->seg_bytes;
        }
        if((int64_t)n > room)
            n = (size_t)(((room + REC - 1) / REC) * REC);
        if(n > j->wbuf_len - off)
            n = j->wbuf_len - off;
        ssize_t w = write(j->wfd, j->wbuf + off, n);
        if(w != (ssize_t)n) {
            /* A short write leaves a torn tail: cut it so the next record
             * lands at a record boundary. */
            if(w > 0 && ftruncate(j->wfd, pos - j->wseg) != 0)
                LOG_E("journal", "cannot truncate after short write", LS("error", strerror(errno)));
            goto fail;
        }
        off += n;
        pos += (int64_t)n;
        atomic_store_explicit(&j->wpos, pos, memory_order_release);
    }
    j->wbuf_len = 0;
    if(off && __atomic_load_n(&j->waiting, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&j->mu);
        pthread_cond_signal(&j->cv);
        pthread_mutex_unlock(&j->mu);
    }
    return 0;
fail:
    /* What was not written is dropped from the buffer: the caller counts
     * the failure; records already written stay valid. */
    j->wbuf_len = 0;
    j->bpos = atomic_load(&j->wpos);
    return MCS_EIO;
}

int journal_append(struct mcs_journal *j, const struct mcs_jrec *rec, int sync)
{
    uint32_t len = sizeof(*rec);
    uint32_t crc = (uint32_t)crc32(0L, (const Bytef *)rec, (uInt)sizeof(*rec));
    unsigned char *p;

    if(j->bpos + REC - atomic_load(&j->committed) > j->max_bytes)
        return MCS_EFULL;
    if(j->wbuf_len + REC > j->wbuf_cap) {
        if(j->wbuf_len && journal_flush(j))
            return MCS_EIO;
        if(!j->wbuf) {
            j->wbuf_cap = WBUF_MAX;
            j->wbuf = malloc(j->wbuf_cap);
            if(!j->wbuf) {
                j->wbuf_cap = 0;
                return MCS_ENOMEM;
            }
        }
    }
    p = j->wbuf + j->wbuf_len;
    memcpy(p, &len, 4);
    memcpy(p + 4, &crc, 4);
    memcpy(p + HDR, rec, sizeof(*rec));
    j->wbuf_len += REC;
    j->bpos += REC;
    return sync ? journal_flush(j) : 0;
}

/* Reader side: opens the segment holding pos. A segment's file is named by
 * its first position, so the one starting exactly at pos (the reader just
 * finished the previous one) is opened by name; anything else looks at the
 * directory. */
static int reader_open(struct mcs_journal *j, int64_t pos)
{
    char p[600];
    int64_t base = -1;

    if(j->rfd >= 0)
        close(j->rfd);
    j->rfd = -1;
    seg_path(j, pos, p, sizeof(p));
    j->rfd = open(p, O_RDONLY | O_CLOEXEC);
    if(j->rfd >= 0) {
        j->rbase = pos;
        return 0;
    }
    int64_t *bases = NULL;
    int n = list_segments(j->dir, &bases);
    if(n < 0)
        return n;
    for(int i = 0; i < n; i++)
        if(bases[i] <= pos)
            base = bases[i];
    free(bases);
    if(base < 0)
        return MCS_ECORRUPT;
    seg_path(j, base, p, sizeof(p));
    j->rfd = open(p, O_RDONLY | O_CLOEXEC);
    if(j->rfd < 0)
        return MCS_EIO;
    j->rbase = base;
    return 0;
}

int journal_read(struct mcs_journal *j, int64_t pos, struct mcs_jrec *out, int max,
                 int64_t *next)
{
    int64_t end = atomic_load_explicit(&j->wpos, memory_order_acquire);
    int count = 0, rc;
    ssize_t r;

    *next = pos;
    if(pos >= end)
        return 0;
    if((size_t)max * REC > j->rbuf_cap) {
        unsigned char *nb = realloc(j->rbuf, (size_t)max * REC);
        if(!nb)
            return MCS_ENOMEM;
        j->rbuf = nb;
        j->rbuf_cap = (size_t)max * REC;
    }
    if(j->rfd < 0 || pos < j->rbase) {
        if((rc = reader_open(j, pos)))
            return rc;
    }
    int64_t want = (end - pos) / REC;
    if(want > max)
        want = max;
    r = pread(j->rfd, j->rbuf, (size_t)(want * REC), pos - j->rbase);
    if(r == 0) {
        /* The end of this segment: the rest is in the next file. */
        if((rc = reader_open(j, pos)))
            return rc;
        r = pread(j->rfd, j->rbuf, (size_t)(want * REC), pos - j->rbase);
    }
    if(r < 0)
        return MCS_EIO;
    for(int64_t off = 0; off + REC <= r; off += REC) {
        uint32_t len, crc;
        memcpy(&len, j->rbuf + off, 4);
        memcpy(&crc, j->rbuf + off + 4, 4);
        /* Records this process wrote went through the page cache only:
         * checking their CRC again costs a tenth of the store thread's CPU
         * for nothing. Records from before the start (a crash, a database
         * outage across a restart) are checked. */
        if(len != sizeof(struct mcs_jrec) ||
           (pos + off < j->start_pos &&
            crc != (uint32_t)crc32(0L, j->rbuf + off + HDR, (uInt)sizeof(struct mcs_jrec)))) {
            LOG_E("journal", "corrupt record", LI("segment", j->rbase),
                  LI("offset", pos - j->rbase + off));
            return count ? count : MCS_ECORRUPT;
        }
        memcpy(&out[count++], j->rbuf + off + HDR, sizeof(struct mcs_jrec));
        *next = pos + off + REC;
    }
    return count;
}

void journal_commit(struct mcs_journal *j, int64_t pos)
{
    int64_t *bases = NULL;
    int n;
    atomic_store(&j->committed, pos);
    /* Only once the reader has moved past the oldest segment can a whole
     * segment lie before pos: the directory is read then, not per batch. */
    if(j->rfd >= 0 && j->rbase <= j->oldest)
        return;
    n = list_segments(j->dir, &bases);
    if(n < 0)
        return;
    /* A segment may go once the next one starts at or before pos (so it is
     * never the writer's current segment). */
    int i = 0;
    for(; i + 1 < n && bases[i + 1] <= pos; i++) {
        char p[600];
        seg_path(j, bases[i], p, sizeof(p));
        if(unlink(p) != 0)
            LOG_W("journal", "cannot remove stored segment", LS("path", p));
    }
    j->oldest = n ? bases[i] : pos;
    free(bases);
}

int64_t journal_oldest(struct mcs_journal *j)
{
    int64_t *bases = NULL, r;
    int n = list_segments(j->dir, &bases);
    r = n > 0 ? bases[0] : atomic_load(&j->wpos);
    free(bases);
    return r;
}

void journal_wait(struct mcs_journal *j, int64_t pos, int timeout_ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += timeout_ms / 1000;
    ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if(ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&j->mu);
    __atomic_store_n(&j->waiting, 1, __ATOMIC_SEQ_CST);
    if(atomic_load(&j->wpos) <= pos)
        pthread_cond_timedwait(&j->cv, &j->mu, &ts);
    __atomic_store_n(&j->waiting, 0, __ATOMIC_RELEASE);
    pthread_mutex_unlock(&j->mu);
}

void journal_wake(struct mcs_journal *j)
{
    pthread_mutex_lock(&j->mu);
    pthread_cond_broadcast(&j->cv);
    pthread_mutex_unlock(&j->mu);
}
