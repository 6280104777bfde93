/* history.c - the hot/cold history reader (see history.h). The cache holds
 * archive objects under their keys; a miss downloads to a temporary file and
 * renames it in, then evicts the least recently used files (by mtime, which
 * a hit refreshes) until the cache fits its bound.
 * Owns the files of HISTORY_CACHE_DIR. Thread: the caller's. */
#include "history.h"
#include "archive.h"
#include "conn.h"
#include "err.h"
#include "localday.h"
#include "log.h"
#include "sink.h"
#include "storage_cfg.h"

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

#define DAY_ROWS_MAX (2 * 1000 * 1000)
#define LINE_MAX_LEN 1024

static int64_t tm_to_utc(int y, int mo, int d, int h, int mi, int s)
{
    return mcs_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

/* "YYYY-MM-DD HH:MM:SS[.ffffff]+HH[:MM]" (PostgreSQL's text) or the same
 * with 'T': microseconds since the epoch. */
static int parse_pg_time(const char *s, size_t n, int64_t *us)
{
    int y, mo, d, h, mi, sec, used = 0;
    char buf[48];
    if(n >= sizeof(buf))
        return MCS_EPARSE;
    memcpy(buf, s, n);
    buf[n] = '\0';
    if(sscanf(buf, "%4d-%2d-%2d%*[ T]%2d:%2d:%2d%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6)
        return MCS_EPARSE;
    const char *p = buf + used;
    int64_t frac = 0;
    if(*p == '.') {
        int digits = 0;
        for(p++; *p >= '0' && *p <= '9'; p++, digits++)
            if(digits < 6)
                frac = frac * 10 + (*p - '0');
        for(; digits < 6; digits++)
            frac *= 10;
    }
    int64_t off = 0;
    if(*p == '+' || *p == '-') {
        int sign = *p == '-' ? -1 : 1, oh = 0, om = 0;
        p++;
        if(sscanf(p, "%2d", &oh) != 1)
            return MCS_EPARSE;
        p += 2;
        if(*p == ':')
            p++;
        if(*p >= '0' && *p <= '9' && sscanf(p, "%2d", &om) == 1)
            p += 2;
        off = sign * (oh * 3600 + om * 60);
    }
    else if(*p == 'Z')
        p++;
    if(*p)
        return MCS_EPARSE;
    *us = (tm_to_utc(y, mo, d, h, mi, sec) - off) * 1000000 + frac;
    return 0;
}

int history_row_time(const char *line, size_t len, int64_t *us)
{
    const char *c1 = memchr(line, ',', len);
    return parse_pg_time(line, c1 ? (size_t)(c1 - line) : len, us);
}

int history_parse_time(const char *s, int64_t *out)
{
    int y, mo, d, h = 0, mi = 0, sec = 0, used = 0;
    char *end;
    if(!*s)
        return MCS_EPARSE;
    long long v = strtoll(s, &end, 10);
    if(*end == '\0' && strchr(s, '-') == NULL) {
        *out = v;
        return 0;
    }
    if(sscanf(s, "%4d-%2d-%2d%n", &y, &mo, &d, &used) != 3)
        return MCS_EPARSE;
    const char *p = s + used;
    if(*p == '\0') {
        int64_t day;
        char ds[16];
        snprintf(ds, sizeof(ds), "%04d-%02d-%02d", y, mo, d);
        if(mcs_day_parse(ds, &day))
            return MCS_EPARSE;
        *out = mcs_local_midnight(day);
        return 0;
    }
    if(*p != 'T' && *p != ' ')
        return MCS_EPARSE;
    p++;
    int n2 = 0;
    if(sscanf(p, "%2d:%2d%n", &h, &mi, &n2) != 2)
        return MCS_EPARSE;
    p += n2;
    if(*p == ':') {
        if(sscanf(p + 1, "%2d%n", &sec, &n2) != 1)
            return MCS_EPARSE;
        p += 1 + n2;
    }
    if(*p == '\0') {
        struct tm tm;
        memset(&tm, 0, sizeof(tm));
        tm.tm_year = y - 1900;
        tm.tm_mon = mo - 1;
        tm.tm_mday = d;
        tm.tm_hour = h;
        tm.tm_min = mi;
        tm.tm_sec = sec;
        tm.tm_isdst = -1;
        *out = (int64_t)mktime(&tm);
        return 0;
    }
    char full[64];
    int64_t us;
    snprintf(full, sizeof(full), "%04d-%02d-%02dT%02d:%02d:%02d%s", y, mo, d, h, mi, sec, p);
    if(parse_pg_time(full, strlen(full), &us))
        return MCS_EPARSE;
    *out = us / 1000000;
    return 0;
}

/* ---- cache ----
 * One entry per archived day: the directory <cache>/<key>.d holding one
 * gzip file per device (sn_<SN>.gz, the day's lines of that device) and a
 * ".complete" marker whose mtime is the entry's last use. The day's file is
 * split once, when first read, so that a device's history over a cached day
 * reads only that device's lines. Entries appear by rename only. */

#define SPLIT_BUF (32u << 20) /* bytes of lines held before appending them out */
#define SPLIT_SNS 100000

struct centry {
    char path[1100];
    time_t mtime;
    int64_t size;
};

struct clist {
    struct centry *e;
    int n, cap;
};

static int64_t dir_size(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    int64_t total = 0;
    if(!d)
        return 0;
    while((de = readdir(d))) {
        char p[1400];
        struct stat st;
        if(!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if(stat(p, &st) == 0 && S_ISREG(st.st_mode))
            total += (int64_t)st.st_size;
    }
    closedir(d);
    return total;
}

static void scan(const char *dir, struct clist *l, int depth)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    if(!d)
        return;
    while((de = readdir(d))) {
        char p[1100], mark[1200];
        struct stat st;
        size_t nl = strlen(de->d_name);
        if(de->d_name[0] == '.')
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        if(stat(p, &st) || !S_ISDIR(st.st_mode))
            continue;
        snprintf(mark, sizeof(mark), "%s/.complete", p);
        if(nl > 2 && !strcmp(de->d_name + nl - 2, ".d") && stat(mark, &st) == 0) {
            if(l->n == l->cap) {
                int cap = l->cap ? l->cap * 2 : 64;
                void *ne = realloc(l->e, (size_t)cap * sizeof(*l->e));
                if(!ne)
                    break;
                l->e = ne;
                l->cap = cap;
            }
            snprintf(l->e[l->n].path, sizeof(l->e[0].path), "%s", p);
            l->e[l->n].mtime = st.st_mtime;
            l->e[l->n].size = dir_size(p);
            l->n++;
        }
        else if(depth < 6)
            scan(p, l, depth + 1);
    }
    closedir(d);
}

static void rmtree(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    if(!d)
        return;
    while((de = readdir(d))) {
        char p[1800];
        if(!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, de->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static int by_mtime(const void *a, const void *b)
{
    const struct centry *x = a, *y = b;
    return x->mtime < y->mtime ? -1 : x->mtime > y->mtime;
}

/* Evicts least recently used days until the cache is within its bound,
 * never `keep`. */
static void evict(const struct mcs_config *cfg, const char *keep)
{
    struct clist l = {0};
    int64_t total = 0, bound = (int64_t)cfg->history_cache_mb << 20;
    scan(cfg->history_cache_dir, &l, 0);
    for(int i = 0; i < l.n; i++)
        total += l.e[i].size;
    if(total > bound && l.n > 0) {
        qsort(l.e, (size_t)l.n, sizeof(*l.e), by_mtime);
        for(int i = 0; i < l.n && total > bound; i++) {
            if(!strcmp(l.e[i].path, keep))
                continue;
            rmtree(l.e[i].path);
            total -= l.e[i].size;
        }
    }
    free(l.e);
}

static int mkparents(const char *path)
{
    char p[1300];
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

static int to_file(void *arg, const void *p, size_t n)
{
    FILE *f = arg;
    return fwrite(p, 1, n, f) == n ? 0 : 1;
}

struct bucket {
    char sn[40];
    char *buf;
    size_t len, cap;
};

struct split {
    struct bucket *b;
    size_t n, cap, held;
    const char *dir;
};

static int by_sn(const void *a, const void *b)
{
    return strcmp(((const struct bucket *)a)->sn, ((const struct bucket *)b)->sn);
}

static int flush_buckets(struct split *sp, char *err, size_t errn)
{
    for(size_t i = 0; i < sp->n; i++) {
        struct bucket *b = &sp->b[i];
        char p[1600];
        if(!b->len)
            continue;
        snprintf(p, sizeof(p), "%s/sn_%s.gz", sp->dir, b->sn);
        /* Each flush appends one gzip member; gzread reads them as one. */
        gzFile g = gzopen(p, "ab1");
        if(!g || gzwrite(g, b->buf, (unsigned)b->len) != (int)b->len) {
            snprintf(err, errn, "cannot write %s", p);
            if(g)
                gzclose(g);
            return MCS_EIO;
        }
        if(gzclose(g) != Z_OK) {
            snprintf(err, errn, "cannot write %s", p);
            return MCS_EIO;
        }
        b->len = 0;
    }
    sp->held = 0;
    return 0;
}

static int split_add(struct split *sp, const char *sn, size_t snl, const char *line, size_t len,
                     char *err, size_t errn)
{
    struct bucket key, *b;
    if(snl == 0 || snl >= sizeof(key.sn))
        return 0;
    memcpy(key.sn, sn, snl);
    key.sn[snl] = '\0';
    b = sp->n ? bsearch(&key, sp->b, sp->n, sizeof(*sp->b), by_sn) : NULL;
    if(!b) {
        if(sp->n >= SPLIT_SNS) {
            snprintf(err, errn, "more than %d devices in a day", SPLIT_SNS);
            return MCS_ETOOBIG;
        }
        if(sp->n == sp->cap) {
            size_t cap = sp->cap ? sp->cap * 2 : 256;
            void *nb = realloc(sp->b, cap * sizeof(*sp->b));
            if(!nb)
                return MCS_ENOMEM;
            sp->b = nb;
            sp->cap = cap;
        }
        /* Sorted insert: new devices are few (one per device per day). */
        size_t at = 0;
        while(at < sp->n && strcmp(sp->b[at].sn, key.sn) < 0)
            at++;
        memmove(sp->b + at + 1, sp->b + at, (sp->n - at) * sizeof(*sp->b));
        memset(&sp->b[at], 0, sizeof(sp->b[at]));
        memcpy(sp->b[at].sn, key.sn, snl + 1);
        sp->n++;
        b = &sp->b[at];
    }
    if(b->len + len + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 4096;
        while(cap < b->len + len + 1)
            cap *= 2;
        char *nb = realloc(b->buf, cap);
        if(!nb)
            return MCS_ENOMEM;
        b->buf = nb;
        b->cap = cap;
    }
    memcpy(b->buf + b->len, line, len);
    b->buf[b->len + len] = '\n';
    b->len += len + 1;
    sp->held += len + 1;
    return sp->held > SPLIT_BUF ? flush_buckets(sp, err, errn) : 0;
}

/* Splits the archive file gzpath into per-device files under dir. */
static int split_day(const char *gzpath, const char *dir, char *err, size_t errn)
{
    gzFile gz = gzopen(gzpath, "rb");
    char line[LINE_MAX_LEN + 2];
    struct split sp = {NULL, 0, 0, 0, dir};
    int rc = 0, first = 1;
    if(!gz) {
        snprintf(err, errn, "cannot open %s", gzpath);
        return MCS_EIO;
    }
    gzbuffer(gz, 256 * 1024);
    while(!rc && gzgets(gz, line, sizeof(line))) {
        size_t len = strlen(line);
        if(len && line[len - 1] == '\n')
            line[--len] = '\0';
        else if(!gzeof(gz)) {
            snprintf(err, errn, "archive line longer than %d bytes", LINE_MAX_LEN);
            rc = MCS_ECORRUPT;
            break;
        }
        if(first) {
            first = 0;
            if(strcmp(line, ARCHIVE_CSV_HEADER)) {
                snprintf(err, errn, "not an archive file (header)");
                rc = MCS_ECORRUPT;
            }
            continue;
        }
        char *c1 = memchr(line, ',', len);
        char *c2 = c1 ? memchr(c1 + 1, ',', len - (size_t)(c1 + 1 - line)) : NULL;
        if(!c2)
            continue;
        rc = split_add(&sp, c1 + 1, (size_t)(c2 - c1 - 1), line, len, err, errn);
    }
    if(!rc && !gzeof(gz)) {
        int ze;
        const char *m = gzerror(gz, &ze);
        if(ze != Z_OK && ze != Z_STREAM_END) {
            snprintf(err, errn, "archive file: %s", m);
            rc = MCS_ECORRUPT;
        }
    }
    gzclose(gz);
    if(!rc)
        rc = flush_buckets(&sp, err, errn);
    for(size_t i = 0; i < sp.n; i++)
        free(sp.b[i].buf);
    free(sp.b);
    if(!rc) {
        char mark[1500];
        snprintf(mark, sizeof(mark), "%s/.complete", dir);
        FILE *f = fopen(mark, "w");
        if(!f || fclose(f)) {
            snprintf(err, errn, "cannot write %s", mark);
            rc = MCS_EIO;
        }
    }
    return rc;
}

/* Makes sure the day of object `key` is in the cache; dirpath receives its
 * directory. */
static int cache_get(const struct mcs_config *cfg, PGconn *pg, struct mcs_sink **k, const char *key,
                     char *dirpath, size_t pn, int *hit, char *err, size_t errn)
{
    char dl[2048], tmpdir[1400], mark[1400];
    snprintf(dirpath, pn, "%s/%s.d", cfg->history_cache_dir, key);
    snprintf(mark, sizeof(mark), "%s/.complete", dirpath);
    if(access(mark, R_OK) == 0) {
        /* A hit counts as a use for eviction. */
        utimensat(AT_FDCWD, mark, NULL, 0);
        *hit = 1;
        return 0;
    }
    *hit = 0;
    if(!*k) {
        int rc = storage_sink_open(cfg, pg, NULL, k, err, errn);
        if(rc)
            return rc;
    }
    if(mkparents(dirpath)) {
        snprintf(err, errn, "cannot create the cache directory %s", cfg->history_cache_dir);
        return MCS_EIO;
    }
    snprintf(dl, sizeof(dl), "%s/%s.dl.tmp.%ld", cfg->history_cache_dir, key, (long)getpid());
    snprintf(tmpdir, sizeof(tmpdir), "%s.tmp.%ld", dirpath, (long)getpid());
    rmtree(tmpdir);
    FILE *f = fopen(dl, "wb");
    if(!f) {
        snprintf(err, errn, "cannot write %s: %s", dl, strerror(errno));
        return MCS_EIO;
    }
    int rc = (*k)->ops->get(*k, key, to_file, f, err, errn);
    if(fclose(f) && !rc) {
        snprintf(err, errn, "cannot write %s", dl);
        rc = MCS_EIO;
    }
    if(!rc && mkdir(tmpdir, 0755)) {
        snprintf(err, errn, "cannot create %s: %s", tmpdir, strerror(errno));
        rc = MCS_EIO;
    }
    if(!rc)
        rc = split_day(dl, tmpdir, err, errn);
    unlink(dl);
    if(!rc && rename(tmpdir, dirpath)) {
        /* Another reader may have finished the same day first. */
        if(access(mark, R_OK) != 0) {
            snprintf(err, errn, "cannot store %s: %s", dirpath, strerror(errno));
            rc = MCS_EIO;
        }
        rmtree(tmpdir);
    }
    if(rc) {
        rmtree(tmpdir);
        return rc;
    }
    evict(cfg, dirpath);
    return 0;
}

/* ---- reading ---- */

struct crow {
    int64_t us;
    char *line;
    size_t len;
};

static int by_time(const void *a, const void *b)
{
    const struct crow *x = a, *y = b;
    return x->us < y->us ? -1 : x->us > y->us;
}

/* One day's rows of one device, gathered before they go out in time order. */
struct dayrows {
    struct crow *rows;
    size_t n, cap;
    char err[160];
};

/* Appends a copy of line (time us). Returns 0 or MCS_ETOOBIG/MCS_ENOMEM. */
static int dayrows_add(struct dayrows *v, const char *line, size_t len, int64_t us)
{
    if(v->n == v->cap) {
        size_t nc = v->cap ? v->cap * 2 : 1024;
        if(nc > DAY_ROWS_MAX) {
            snprintf(v->err, sizeof(v->err), "more than %d rows of one device in a day",
                     DAY_ROWS_MAX);
            return MCS_ETOOBIG;
        }
        void *nr = realloc(v->rows, nc * sizeof(*v->rows));
        if(!nr)
            return MCS_ENOMEM;
        v->rows = nr;
        v->cap = nc;
    }
    v->rows[v->n].line = malloc(len + 1);
    if(!v->rows[v->n].line)
        return MCS_ENOMEM;
    memcpy(v->rows[v->n].line, line, len);
    v->rows[v->n].line[len] = '\0';
    v->rows[v->n].us = us;
    v->rows[v->n].len = len;
    v->n++;
    return 0;
}

static void dayrows_free(struct dayrows *v)
{
    for(size_t i = 0; i < v->n; i++)
        free(v->rows[i].line);
    free(v->rows);
    memset(v, 0, sizeof(*v));
}

/* Sends the gathered rows in time order. */
static void dayrows_emit(struct dayrows *v, history_row_cb cb, void *arg, int64_t *nrows)
{
    qsort(v->rows, v->n, sizeof(*v->rows), by_time);
    for(size_t i = 0; i < v->n; i++)
        if(cb(arg, v->rows[i].line, v->rows[i].len))
            break;
    *nrows += (int64_t)v->n;
}

/* Gathers sn's lines of one cached day that lie in [from, to). */
static int read_cold(const char *dir, const char *sn, int64_t from_us, int64_t to_us,
                     struct dayrows *v, char *err, size_t errn)
{
    char path[1600], line[LINE_MAX_LEN + 2];
    int rc = 0;
    snprintf(path, sizeof(path), "%s/sn_%s.gz", dir, sn);
    if(access(path, F_OK) != 0)
        return 0; /* no reading of this device that day */
    gzFile gz = gzopen(path, "rb");
    if(!gz) {
        snprintf(err, errn, "cannot open %s", path);
        return MCS_EIO;
    }
    while(gzgets(gz, line, sizeof(line))) {
        size_t len = strlen(line);
        if(len && line[len - 1] == '\n')
            line[--len] = '\0';
        char *c1 = memchr(line, ',', len);
        int64_t us;
        if(!c1 || parse_pg_time(line, (size_t)(c1 - line), &us)) {
            snprintf(err, errn, "%s: bad row", path);
            rc = MCS_ECORRUPT;
            break;
        }
        if(us < from_us || us >= to_us)
            continue;
        if((rc = dayrows_add(v, line, len, us))) {
            snprintf(err, errn, "%s", v->err[0] ? v->err : "out of memory");
            break;
        }
    }
    gzclose(gz);
    return rc;
}

/* history_row_cb of read_hot that gathers rows of an archived day which are
 * in the database too: late rows not merged into the day's file yet. */
static int gather_late(void *arg, const char *line, size_t len)
{
    struct dayrows *v = arg;
    const char *c1 = memchr(line, ',', len);
    int64_t us;
    if(!c1 || parse_pg_time(line, (size_t)(c1 - line), &us)) {
        snprintf(v->err, sizeof(v->err), "bad time in a stored row");
        return 1;
    }
    if(dayrows_add(v, line, len, us)) {
        if(!v->err[0])
            snprintf(v->err, sizeof(v->err), "out of memory");
        return 1;
    }
    return 0;
}

/* Rows of sn in [from, to) from the database, in time order. */
static int read_hot(PGconn *pg, const char *tz, const char *sn, int64_t from_s, int64_t to_s,
                    history_row_cb cb, void *arg, int64_t *nrows, char *err, size_t errn)
{
    char f[32], t[32], line[LINE_MAX_LEN];
    const char *p[3] = {sn, f, t};
    const char *tzp[1] = {tz};
    int rc = 0, stopped = 0;
    char oldtz[128] = "";
    /* Times as the archive renders them (plant zone); the caller's session
     * zone is put back afterwards (the API shares its connection). */
    PGresult *r = PQexec(pg, "SELECT current_setting('TimeZone')");
    if(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        snprintf(oldtz, sizeof(oldtz), "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
    r = PQexecParams(pg, "SELECT set_config('TimeZone', $1, false)", 1, NULL, tzp, NULL, NULL, 0);
    PQclear(r);
    snprintf(f, sizeof(f), "%" PRId64, from_s);
    snprintf(t, sizeof(t), "%" PRId64, to_s);
    if(!PQsendQueryParams(pg,
                          "SELECT time, sn, v_raw, ppm, temp, humi, bat, rssi, seq FROM sensor_data"
                          " WHERE sn = $1 AND time >= to_timestamp($2::bigint)"
                          " AND time < to_timestamp($3::bigint) ORDER BY time, seq",
                          3, NULL, p, NULL, NULL, 0) ||
       !PQsetSingleRowMode(pg)) {
        snprintf(err, errn, "%s", PQerrorMessage(pg));
        return MCS_EDB;
    }
    while((r = PQgetResult(pg))) {
        ExecStatusType st = PQresultStatus(r);
        if(st == PGRES_SINGLE_TUPLE && !stopped) {
            size_t len = 0;
            for(int c = 0; c < 9; c++) {
                const char *v = PQgetisnull(r, 0, c) ? "" : PQgetvalue(r, 0, c);
                int w = snprintf(line + len, sizeof(line) - len, "%s%s", c ? "," : "", v);
                if(w < 0 || (size_t)w >= sizeof(line) - len)
                    break;
                len += (size_t)w;
            }
            (*nrows)++;
            if(cb(arg, line, len))
                stopped = 1;
        }
        else if(st != PGRES_TUPLES_OK && st != PGRES_SINGLE_TUPLE) {
            snprintf(err, errn, "%s", PQresultErrorMessage(r));
            rc = MCS_EDB;
        }
        PQclear(r);
    }
    if(oldtz[0]) {
        const char *op[1] = {oldtz};
        PQclear(PQexecParams(pg, "SELECT set_config('TimeZone', $1, false)", 1, NULL, op, NULL,
                             NULL, 0));
    }
    return rc;
}

static int sn_ok(const char *sn)
{
    size_t n = strlen(sn);
    if(n < 1 || n > 32)
        return 0;
    for(const char *p = sn; *p; p++)
        if(!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
             *p == '_' || *p == '-'))
            return 0;
    return 1;
}

int history_query(const struct mcs_config *cfg, PGconn *pg, const char *sn, int64_t from_s,
                  int64_t to_s, history_row_cb cb, void *arg, struct history_stats *st,
                  char *err, size_t errn)
{
    struct history_stats dummy;
    struct mcs_sink *k = NULL;
    int rc = 0;
    PGresult *r = NULL;
    char a[16], b[16];
    if(!st)
        st = &dummy;
    memset(st, 0, sizeof(*st));
    if(!sn_ok(sn) || to_s <= from_s) {
        snprintf(err, errn, "bad SN or empty range");
        return MCS_EINVAL;
    }
    int64_t d0 = mcs_local_day(from_s), d1 = mcs_local_day(to_s - 1);
    if(d1 - d0 > 366) {
        snprintf(err, errn, "range longer than 366 days");
        return MCS_ETOOBIG;
    }
    /* Archived days in range, oldest first; everything else is hot. */
    mcs_day_iso(d0, a, sizeof(a));
    mcs_day_iso(d1, b, sizeof(b));
    {
        const char *p[2] = {a, b};
        r = PQexecParams(pg,
                         "SELECT day::text, file_name FROM archive_logs WHERE status = 'archived'"
                         " AND day BETWEEN $1::date AND $2::date ORDER BY day",
                         2, NULL, p, NULL, NULL, 0);
        if(PQresultStatus(r) != PGRES_TUPLES_OK) {
            snprintf(err, errn, "%s", PQresultErrorMessage(r));
            PQclear(r);
            return MCS_EDB;
        }
    }
    int ncold = PQntuples(r), ci = 0;
    int64_t cur = from_s;
    while(cur < to_s && !rc) {
        /* The next archived day at or after cur. */
        int64_t cday = INT64_MAX;
        while(ci < ncold) {
            int64_t d;
            mcs_day_parse(PQgetvalue(r, ci, 0), &d);
            if(mcs_local_midnight(d + 1) > cur) {
                cday = d;
                break;
            }
            ci++;
        }
        int64_t cold_lo = cday == INT64_MAX ? to_s : mcs_local_midnight(cday);
        if(cold_lo > cur) {
            /* Hot stretch [cur, min(cold_lo, to)). */
            int64_t hi = cold_lo < to_s ? cold_lo : to_s;
            rc = read_hot(pg, cfg->tz, sn, cur, hi, cb, arg, &st->rows, err, errn);
            st->hot_days++;
            cur = hi;
            continue;
        }
        char path[1200];
        int hit = 0;
        int64_t hi = mcs_local_midnight(cday + 1);
        if(hi > to_s)
            hi = to_s;
        rc = cache_get(cfg, pg, &k, PQgetvalue(r, ci, 1), path, sizeof(path), &hit, err, errn);
        {
            /* The day's file, plus rows that reached the day after it was
             * archived and wait in the database for the next run to merge
             * them into a new version (docs/ARCHIVE.md): never both for one
             * row, as the merge drops them in the commit that names it. */
            struct dayrows v;
            int64_t late = 0;
            memset(&v, 0, sizeof(v));
            if(!rc)
                rc = read_cold(path, sn, cur * 1000000, hi * 1000000, &v, err, errn);
            if(!rc)
                rc = read_hot(pg, cfg->tz, sn, cur, hi, gather_late, &v, &late, err, errn);
            if(!rc && v.err[0]) {
                snprintf(err, errn, "%s", v.err);
                rc = MCS_EIO;
            }
            if(!rc)
                dayrows_emit(&v, cb, arg, &st->rows);
            dayrows_free(&v);
        }
        st->cold_days++;
        if(hit)
            st->cache_hits++;
        else
            st->cache_misses++;
        cur = hi;
        ci++;
    }
    PQclear(r);
    sink_free(k);
    return rc;
}

static int print_line(void *arg, const char *line, size_t len)
{
    (void)arg;
    fwrite(line, 1, len, stdout);
    fputc('\n', stdout);
    return 0;
}

int history_cli(const struct mcs_config *cfg, const char *sn, const char *start,
                const char *end)
{
    int64_t from, to;
    char err[600];
    struct history_stats st;
    if(history_parse_time(start, &from) || history_parse_time(end, &to)) {
        fprintf(stderr, "mcs: history: START and END are Unix seconds or ISO 8601 times\n");
        return MCS_EINVAL;
    }
    PGconn *pg = mcs_pg_connect(cfg, "mcs-history", err, sizeof(err));
    if(!pg) {
        fprintf(stderr, "mcs: database: %s\n", err);
        return MCS_EDB;
    }
    printf("%s\n", ARCHIVE_CSV_HEADER);
    int rc = history_query(cfg, pg, sn, from, to, print_line, NULL, &st, err, sizeof(err));
    PQfinish(pg);
    if(rc) {
        fprintf(stderr, "mcs: history: %s\n", err);
        return rc == MCS_EINVAL ? MCS_EINVAL : rc;
    }
    fprintf(stderr, "{\"rows\":%" PRId64 ",\"hot_ranges\":%d,\"cold_days\":%d,\"cache_hits\":%d,"
                    "\"cache_misses\":%d}\n",
            st.rows, st.hot_days, st.cold_days, st.cache_hits, st.cache_misses);
    return 0;
}
