/* journal.c - segmented append-only journal with CRC32 per record.
 * Owns the files under SPOOL_DIR. Thread: one writer, one reader (see .h). */
#include "journal.h"
#include "err.h"
#include "log.h"
#include "timeutil.h"

#include <ctype.h>
#include <dirent.h>
#include <stddef.h>
#include <sys/random.h>
#include <assert.h>
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

/* The header that opens every segment file written by this version. */
#define SEG_MAGIC "MCSJRNL\n"
struct seg_hdr {
    char magic[8];
    uint32_t version;
    uint32_t rec_size;  /* sizeof(struct mcs_jrec) of the writer */
    int64_t base;       /* position of the first record: the file's name */
    char spool_id[MCS_SPOOL_ID_LEN];
    uint32_t crc;       /* crc32 of the bytes before it */
    uint32_t pad;
};
#define SEG_HDR ((int64_t)sizeof(struct seg_hdr))
_Static_assert(sizeof(struct seg_hdr) == 64, "segment header layout");

#define SCAN_CHUNK (1 << 20)

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

static void make_header(const struct mcs_journal *j, int64_t base, struct seg_hdr *h)
{
    memset(h, 0, sizeof(*h));
    memcpy(h->magic, SEG_MAGIC, 8);
    h->version = MCS_JOURNAL_VERSION;
    h->rec_size = (uint32_t)sizeof(struct mcs_jrec);
    h->base = base;
    memcpy(h->spool_id, j->spool_id, MCS_SPOOL_ID_LEN);
    h->crc = (uint32_t)crc32(0L, (const Bytef *)h, (uInt)offsetof(struct seg_hdr, crc));
}

/* Reads a segment's header: *hdr_len is 64 for a versioned segment, 0 for a
 * headerless one of the first release. A file too short to hold a header
 * that starts like one (a crash right after creating it) is an empty
 * versioned segment (*hdr_len = -1: write its header again). Returns 0, or
 * MCS_ECORRUPT for a format this build does not read. */
static int read_header(const struct mcs_journal *j, int fd, int64_t base, int64_t size,
                       int64_t *hdr_len)
{
    struct seg_hdr h;
    ssize_t r = pread(fd, &h, sizeof(h), 0);

    if(r < 0)
        return MCS_EIO;
    if(r < (ssize_t)sizeof(h)) {
        size_t cmp = (size_t)r < 8 ? (size_t)r : 8;
        if(size < SEG_HDR && memcmp(&h, SEG_MAGIC, cmp) == 0) {
            *hdr_len = -1;
            return 0;
        }
    }
    if(r < 8 || memcmp(h.magic, SEG_MAGIC, 8) != 0) {
        *hdr_len = 0; /* version 0: records from the first byte */
        return 0;
    }
    if(r < (ssize_t)sizeof(h) ||
       h.crc != (uint32_t)crc32(0L, (const Bytef *)&h, (uInt)offsetof(struct seg_hdr, crc))) {
        LOG_E("journal", "segment header damaged", LI("segment", base));
        return MCS_ECORRUPT;
    }
    if(h.version != MCS_JOURNAL_VERSION || h.rec_size != sizeof(struct mcs_jrec)) {
        LOG_E("journal", "segment of another journal format: drain it with the mcsd version that "
                         "wrote it, or move it away",
              LI("segment", base), LI("version", h.version), LI("record_size", h.rec_size),
              LI("supported_version", MCS_JOURNAL_VERSION));
        return MCS_ECORRUPT;
    }
    if(h.base != base)
        LOG_W("journal", "segment header names another position", LI("segment", base),
              LI("header_base", h.base));
    if(memcmp(h.spool_id, j->spool_id, MCS_SPOOL_ID_LEN) != 0)
        LOG_W("journal", "segment written by another spool directory", LI("segment", base));
    *hdr_len = SEG_HDR;
    return 0;
}

static int record_ok(const unsigned char *p)
{
    uint32_t len, crc;
    memcpy(&len, p, 4);
    memcpy(&crc, p + 4, 4);
    return len == sizeof(struct mcs_jrec) &&
           crc == (uint32_t)crc32(0L, p + HDR, (uInt)sizeof(struct mcs_jrec));
}

/* Checks every record of one segment file. Returns the file offset after
 * the last good record (the rest is a torn tail) and adds to *bad the
 * corrupt records before it. Negative on a read error. */
static int64_t scan_segment(int fd, int64_t hdr_len, int64_t size, uint64_t *bad)
{
    unsigned char *buf = malloc(SCAN_CHUNK);
    int64_t off = hdr_len, valid = hdr_len;
    uint64_t bad_run = 0;

    if(!buf)
        return MCS_ENOMEM;
    while(off + REC <= size) {
        int64_t want = (size - off) / REC * REC;
        if(want > SCAN_CHUNK / REC * REC)
            want = SCAN_CHUNK / REC * REC;
        ssize_t r = pread(fd, buf, (size_t)want, off);
        if(r < REC) {
            if(r < 0) {
                free(buf);
                return MCS_EIO;
            }
            break;
        }
        for(int64_t k = 0; k + REC <= r; k += REC) {
            if(record_ok(buf + k)) {
                *bad += bad_run;
                bad_run = 0;
                valid = off + k + REC;
            }
            else
                bad_run++;
        }
        off += r / REC * REC;
    }
    free(buf);
    return valid;
}

/* Reads SPOOL_DIR/spool.id, creating it for a new (or first-release)
 * spool. The identity goes with the checkpoint into the database, so that a
 * recreated directory is recognised instead of silently skipping records. */
static int load_spool_id(struct mcs_journal *j)
{
    char p[600], buf[MCS_SPOOL_ID_LEN + 2];
    snprintf(p, sizeof(p), "%s/spool.id", j->dir);
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if(fd >= 0) {
        ssize_t r = read(fd, buf, sizeof(buf));
        close(fd);
        int ok = r >= MCS_SPOOL_ID_LEN;
        for(int i = 0; ok && i < MCS_SPOOL_ID_LEN; i++)
            ok = isxdigit((unsigned char)buf[i]) != 0;
        if(ok) {
            memcpy(j->spool_id, buf, MCS_SPOOL_ID_LEN);
            j->spool_id[MCS_SPOOL_ID_LEN] = '\0';
            return 0;
        }
        LOG_W("journal", "spool.id unreadable; giving the spool a new identity", LS("path", p));
    }
    unsigned char raw[MCS_SPOOL_ID_LEN / 2];
    if(getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
        return MCS_EIO;
    for(size_t i = 0; i < sizeof(raw); i++)
        snprintf(j->spool_id + 2 * i, 3, "%02x", raw[i]);
    char tmp[610];
    snprintf(tmp, sizeof(tmp), "%s.tmp", p);
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if(fd < 0)
        return MCS_EIO;
    int ok = write(fd, j->spool_id, MCS_SPOOL_ID_LEN) == MCS_SPOOL_ID_LEN &&
             write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    close(fd);
    if(!ok || rename(tmp, p) != 0)
        return MCS_EIO;
    return 0;
}

static void sync_dir(const struct mcs_journal *j)
{
    int fd = open(j->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if(fd >= 0) {
        if(fsync(fd) != 0)
            LOG_W("journal", "cannot sync the spool directory", LS("error", strerror(errno)));
        close(fd);
    }
}

/* Makes the writer's segment the one starting at base, creating it with its
 * header when new. */
static int open_segment(struct mcs_journal *j, int64_t base)
{
    char p[600];
    struct stat st;
    seg_path(j, base, p, sizeof(p));
    int fd = open(p, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if(fd < 0) {
        LOG_E("journal", "cannot open segment", LS("path", p), LS("error", strerror(errno)));
        return MCS_EIO;
    }
    if(fstat(fd, &st) != 0 || st.st_size < SEG_HDR) {
        struct seg_hdr h;
        make_header(j, base, &h);
        if(ftruncate(fd, 0) != 0 || write(fd, &h, sizeof(h)) != (ssize_t)sizeof(h)) {
            LOG_E("journal", "cannot write segment header", LS("path", p),
                  LS("error", strerror(errno)));
            close(fd);
            return MCS_EIO;
        }
        if(j->fsync_mode != MCS_FSYNC_OFF)
            sync_dir(j);
    }
    if(j->wfd >= 0) {
        if(j->fsync_mode != MCS_FSYNC_OFF && fdatasync(j->wfd) != 0)
            LOG_E("journal", "fdatasync failed", LS("error", strerror(errno)));
        close(j->wfd);
    }
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
    j->fsync_mode = MCS_FSYNC_OFF;
    /* Small bounds get small segments, so that stored data is released. */
    j->seg_bytes = max_bytes / 8 < (64 << 20) ? max_bytes / 8 : (64 << 20);
    if(j->seg_bytes < REC * 64)
        j->seg_bytes = REC * 64;
    j->seg_bytes = j->seg_bytes / REC * REC;
    pthread_mutex_init(&j->mu, NULL);
    pthread_cond_init(&j->cv, NULL);
    if(mkdir(dir, 0750) != 0 && errno != EEXIST) {
        LOG_E("journal", "cannot create spool dir", LS("dir", dir), LS("error", strerror(errno)));
        return MCS_EIO;
    }
    if((rc = load_spool_id(j))) {
        LOG_E("journal", "cannot write spool.id", LS("dir", dir));
        return rc;
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
    /* Every segment is checked, not only the last: a power loss can leave a
     * torn or corrupt record in any segment the kernel had not written. */
    int64_t end = 0, last_hdr = 0;
    for(int i = 0; i < n; i++) {
        char p[600];
        struct stat st;
        int64_t hdr_len, valid;
        uint64_t bad = 0;
        seg_path(j, bases[i], p, sizeof(p));
        int fd = open(p, O_RDWR | O_CLOEXEC);
        if(fd < 0 || fstat(fd, &st) != 0) {
            if(fd >= 0)
                close(fd);
            rc = MCS_EIO;
            goto out;
        }
        if((rc = read_header(j, fd, bases[i], st.st_size, &hdr_len))) {
            close(fd);
            goto out;
        }
        if(hdr_len < 0) {
            /* Created, header never completed: an empty segment. */
            struct seg_hdr h;
            make_header(j, bases[i], &h);
            if(ftruncate(fd, 0) != 0 || pwrite(fd, &h, sizeof(h), 0) != (ssize_t)sizeof(h))
                rc = MCS_EIO;
            hdr_len = SEG_HDR;
            st.st_size = SEG_HDR;
        }
        valid = rc ? rc : scan_segment(fd, hdr_len, st.st_size, &bad);
        if(valid < 0) {
            close(fd);
            rc = (int)valid;
            goto out;
        }
        if(bad) /* counted when the reader skips them (if not stored before) */
            LOG_E("journal", "corrupt records in the journal; they will be skipped",
                  LS("segment", p), LI("records", (long long)bad));
        if(st.st_size != valid) {
            LOG_W("journal", "cutting a torn tail off a journal segment", LS("segment", p),
                  LI("valid", valid), LI("size", st.st_size));
            if(ftruncate(fd, valid) != 0)
                rc = MCS_EIO;
        }
        close(fd);
        if(rc)
            goto out;
        end = bases[i] + (valid - hdr_len);
        last_hdr = hdr_len;
        if(i + 1 < n && end > bases[i + 1]) {
            LOG_E("journal", "journal segments overlap", LI("segment", bases[i]),
                  LI("next", bases[i + 1]));
            rc = MCS_ECORRUPT;
            goto out;
        }
    }
    atomic_store(&j->wpos, end);
    j->bpos = end;
    j->start_pos = end;
    atomic_store(&j->committed, bases[0]);
    j->oldest = bases[0];
    /* The writer appends to the last segment when it has this version's
     * header; after a headerless first-release segment it starts a new one. */
    rc = open_segment(j, last_hdr ? bases[n - 1] : end);
out:
    free(bases);
    return rc;
}

void journal_set_fsync(struct mcs_journal *j, int mode, int ms)
{
    j->fsync_mode = mode;
    j->fsync_ms = ms;
}

int journal_pending(const struct mcs_journal *j)
{
    return (int)(j->wbuf_len / (size_t)REC);
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

/* fdatasync as the policy asks: always, or when the interval has passed
 * since the last one and something was written meanwhile. */
static int maybe_sync(struct mcs_journal *j, int wrote)
{
    if(j->fsync_mode == MCS_FSYNC_OFF || j->wfd < 0)
        return 0;
    if(wrote)
        j->dirty = 1;
    if(!j->dirty)
        return 0;
    int64_t now = mcs_mono_ms();
    if(j->fsync_mode == MCS_FSYNC_INTERVAL && now - j->last_sync_ms < j->fsync_ms)
        return 0;
    j->last_sync_ms = now;
    j->dirty = 0;
    if(fdatasync(j->wfd) != 0) {
        LOG_E("journal", "fdatasync failed", LS("error", strerror(errno)));
        return MCS_EIO;
    }
    return 0;
}

int journal_flush(struct mcs_journal *j)
{
    int64_t pos = atomic_load_explicit(&j->wpos, memory_order_relaxed);
    size_t off = 0;

    while(off < j->wbuf_len) {
        /* A segment ends only at a record boundary: write up to it. */
        size_t n = j->wbuf_len - off;
        assert((pos - j->wseg) % REC == 0 && (n % (size_t)REC) == 0);
        int64_t room = j->seg_bytes - (pos - j->wseg);
        if(room <= 0) {
            if(open_segment(j, pos))
                goto fail;
            room = j->seg_bytes;
        }
        if((int64_t)n > room)
            n = (size_t)room;
        ssize_t w = write(j->wfd, j->wbuf + off, n);
        if(w != (ssize_t)n) {
            /* A short write leaves a torn tail: cut it so the next record
             * lands at a record boundary. */
            int64_t hdr = SEG_HDR;
            if(w > 0 && ftruncate(j->wfd, hdr + (pos - j->wseg)) != 0)
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
    return maybe_sync(j, off > 0);
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
            j->wbuf_cap = WBUF_MAX / REC * REC;
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

/* Reader side: opens the segment starting exactly at base. */
static int reader_open_base(struct mcs_journal *j, int64_t base)
{
    char p[600];
    struct stat st;
    int64_t hdr_len = 0;

    if(j->rfd >= 0)
        close(j->rfd);
    seg_path(j, base, p, sizeof(p));
    j->rfd = open(p, O_RDONLY | O_CLOEXEC);
    if(j->rfd < 0)
        return MCS_ENOTFOUND;
    int rc = fstat(j->rfd, &st) != 0 ? MCS_EIO : read_header(j, j->rfd, base, st.st_size, &hdr_len);
    if(rc) {
        close(j->rfd);
        j->rfd = -1;
        return rc;
    }
    j->rbase = base;
    j->rhdr = hdr_len < 0 ? SEG_HDR : hdr_len;
    return 0;
}

/* Opens the segment holding pos, or finds where the next data starts when
 * pos is past the end of a torn segment. Returns 0 (segment open, *skip_to =
 * pos), 0 with *skip_to > pos (the bytes up to there are gone), or an error. */
static int reader_seek(struct mcs_journal *j, int64_t pos, int64_t *skip_to)
{
    int64_t *bases = NULL, holder = -1, after = -1;
    int n, rc;

    *skip_to = pos;
    /* A segment's file is named by its first position: the one that starts
     * exactly at pos (the reader just finished the previous one) needs no
     * directory listing. */
    if(reader_open_base(j, pos) == 0)
        return 0;
    n = list_segments(j->dir, &bases);
    if(n < 0)
        return n;
    for(int i = 0; i < n; i++) {
        if(bases[i] <= pos)
            holder = bases[i];
        else if(after < 0)
            after = bases[i];
    }
    free(bases);
    if(holder >= 0) {
        struct stat st;
        if((rc = reader_open_base(j, holder)))
            return rc;
        if(fstat(j->rfd, &st) == 0 && j->rhdr + (pos - holder) + REC <= st.st_size)
            return 0;
    }
    if(after < 0)
        return MCS_EIO; /* data before wpos with no file holding it */
    *skip_to = after;
    return 0;
}

int journal_read(struct mcs_journal *j, int64_t pos, struct mcs_jrec *out, int max,
                 int64_t *next)
{
    int64_t end = atomic_load_explicit(&j->wpos, memory_order_acquire), skip = pos;
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
        if((rc = reader_seek(j, pos, &skip)))
            return rc;
        if(skip > pos)
            goto gap;
    }
    int64_t want = (end - pos) / REC;
    if(want > max)
        want = max;
    r = pread(j->rfd, j->rbuf, (size_t)(want * REC), j->rhdr + (pos - j->rbase));
    if(r < REC) {
        /* The end of this segment: the rest is in the next file (or, after
         * a torn tail was cut at open, further on). */
        if(r < 0)
            return MCS_EIO;
        if((rc = reader_seek(j, pos, &skip)))
            return rc;
        if(skip > pos)
            goto gap;
        r = pread(j->rfd, j->rbuf, (size_t)(want * REC), j->rhdr + (pos - j->rbase));
        if(r < REC)
            return r < 0 ? MCS_EIO : 0;
    }
    for(int64_t off = 0; off + REC <= r; off += REC) {
        uint32_t len;
        memcpy(&len, j->rbuf + off, 4);
        /* Records this process wrote went through the page cache only:
         * checking their CRC again costs a tenth of the store thread's CPU
         * for nothing. Records from before the start (a crash, a power
         * loss, a database outage across a restart) are checked; a bad one
         * is skipped and counted, never allowed to stall storage. */
        if(len != sizeof(struct mcs_jrec) || (pos + off < j->start_pos && !record_ok(j->rbuf + off))) {
            uint64_t nbad = atomic_fetch_add(&j->bad_records, 1) + 1;
            if(nbad <= 10 || (nbad & (nbad - 1)) == 0)
                LOG_E("journal", "corrupt record skipped", LI("segment", j->rbase),
                      LI("offset", pos - j->rbase + off), LI("total", (long long)nbad));
            *next = pos + off + REC;
            continue;
        }
        memcpy(&out[count++], j->rbuf + off + HDR, sizeof(struct mcs_jrec));
        *next = pos + off + REC;
    }
    assert(*next <= end);
    return count;
gap:
    LOG_E("journal", "journal bytes lost to a torn segment skipped", LI("from", pos),
          LI("to", skip));
    atomic_fetch_add(&j->gap_bytes, (uint64_t)(skip - pos));
    *next = skip;
    return 0;
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
    mcs_deadline_ts(&ts, CLOCK_REALTIME, timeout_ms);
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
