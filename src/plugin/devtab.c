/* devtab.c - the plugin's device hash table and its snapshot file (see
 * devtab.h). Owns the maps it allocates. Thread: see devtab.h. */
#include "devtab.h"
#include "devcred.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SLOT_EMPTY 0
#define SLOT_DELETED 3
#define SNAP_HEADER "mcs_auth-devtab 1"

static uint64_t hash_sn(const char *sn, size_t len)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for(size_t i = 0; i < len; i++) {
        h ^= (unsigned char)sn[i];
        h *= 1099511628211ULL;
    }
    return h ^ (h >> 29);
}

struct devtab_map *devtab_map_new(size_t expected)
{
    size_t cap = 64;
    struct devtab_map *m;

    while(cap < expected * 2 && cap < ((size_t)1 << 40))
        cap <<= 1;
    m = calloc(1, sizeof(*m) + cap * sizeof(struct devtab_slot));
    if(!m)
        return NULL;
    m->cap = cap;
    return m;
}

void devtab_map_free(struct devtab_map *m)
{
    free(m);
}

/* Returns the slot holding sn, or NULL. */
static const struct devtab_slot *find(const struct devtab_map *m, const char *sn, size_t len)
{
    size_t mask = m->cap - 1, i = (size_t)hash_sn(sn, len) & mask;

    for(size_t probes = 0; probes < m->cap; probes++, i = (i + 1) & mask) {
        const struct devtab_slot *s = &m->slot[i];
        if(s->state == SLOT_EMPTY)
            return NULL;
        if(s->state != SLOT_DELETED && !strncmp(s->sn, sn, len) && s->sn[len] == '\0')
            return s;
    }
    return NULL;
}

enum devtab_state devtab_map_get(const struct devtab_map *m, const char *sn, size_t len)
{
    const struct devtab_slot *s;
    if(len == 0 || len > DEVTAB_SN_MAX)
        return DEVTAB_UNKNOWN;
    s = find(m, sn, len);
    return s ? (enum devtab_state)s->state : DEVTAB_UNKNOWN;
}

/* Rebuilds m into a map of twice the live size (drops tombstones). */
static struct devtab_map *rehash(const struct devtab_map *m)
{
    struct devtab_map *n = devtab_map_new(m->n * 2 + 16);
    if(!n)
        return NULL;
    for(size_t i = 0; i < m->cap; i++) {
        const struct devtab_slot *s = &m->slot[i];
        if(s->state == SLOT_EMPTY || s->state == SLOT_DELETED)
            continue;
        size_t mask = n->cap - 1, j = (size_t)hash_sn(s->sn, strlen(s->sn)) & mask;
        while(n->slot[j].state != SLOT_EMPTY)
            j = (j + 1) & mask;
        n->slot[j] = *s;
        n->n++;
        n->used++;
    }
    return n;
}

int devtab_map_put(struct devtab_map **mp, const char *sn, enum devtab_state st,
                   enum devtab_state *prev)
{
    struct devtab_map *m = *mp;
    size_t len = sn ? strlen(sn) : 0, mask, i, tomb = SIZE_MAX;
    struct devtab_slot *hit = NULL;

    if(prev)
        *prev = DEVTAB_UNKNOWN;
    if(!sn || !mcs_sn_valid(sn, len))
        return MCS_EINVAL;
    /* Keep the load (live + tombstones) under 70 %, so probes stay short
     * and an empty slot always ends a probe. */
    if((m->used + 1) * 10 > m->cap * 7) {
        struct devtab_map *n = rehash(m);
        if(!n)
            return MCS_ENOMEM;
        free(m);
        *mp = m = n;
    }
    mask = m->cap - 1;
    i = (size_t)hash_sn(sn, len) & mask;
    for(;; i = (i + 1) & mask) {
        struct devtab_slot *s = &m->slot[i];
        if(s->state == SLOT_EMPTY)
            break;
        if(s->state == SLOT_DELETED) {
            if(tomb == SIZE_MAX)
                tomb = i;
            continue;
        }
        if(!strcmp(s->sn, sn)) {
            hit = s;
            break;
        }
    }
    if(hit) {
        if(prev)
            *prev = (enum devtab_state)hit->state;
        if(st == DEVTAB_UNKNOWN) {
            hit->state = SLOT_DELETED;
            m->n--;
        }
        else {
            hit->state = (uint8_t)st;
        }
        return 0;
    }
    if(st == DEVTAB_UNKNOWN)
        return 0;
    if(tomb != SIZE_MAX)
        i = tomb;
    else
        m->used++;
    memcpy(m->slot[i].sn, sn, len + 1);
    m->slot[i].state = (uint8_t)st;
    m->n++;
    return 0;
}

void devtab_map_each(const struct devtab_map *m,
                     void (*fn)(void *arg, const char *sn, enum devtab_state st), void *arg)
{
    for(size_t i = 0; i < m->cap; i++) {
        const struct devtab_slot *s = &m->slot[i];
        if(s->state == DEVTAB_ENABLED || s->state == DEVTAB_DISABLED)
            fn(arg, s->sn, (enum devtab_state)s->state);
    }
}

int devtab_init(struct devtab *t)
{
    memset(t, 0, sizeof(*t));
    t->map = devtab_map_new(0);
    if(!t->map)
        return MCS_ENOMEM;
    pthread_mutex_init(&t->lock, NULL);
    return 0;
}

void devtab_cleanup(struct devtab *t)
{
    if(!t->map)
        return;
    pthread_mutex_destroy(&t->lock);
    devtab_map_free(t->map);
    t->map = NULL;
}

enum devtab_state devtab_get(struct devtab *t, const char *sn, size_t len)
{
    enum devtab_state st;
    pthread_mutex_lock(&t->lock);
    st = devtab_map_get(t->map, sn, len);
    pthread_mutex_unlock(&t->lock);
    return st;
}

int devtab_loaded(struct devtab *t)
{
    int l;
    pthread_mutex_lock(&t->lock);
    l = t->loaded;
    pthread_mutex_unlock(&t->lock);
    return l;
}

size_t devtab_count(struct devtab *t)
{
    size_t n;
    pthread_mutex_lock(&t->lock);
    n = t->map->n;
    pthread_mutex_unlock(&t->lock);
    return n;
}

struct devtab_map *devtab_replace(struct devtab *t, struct devtab_map *m, int loaded_from)
{
    struct devtab_map *old;
    pthread_mutex_lock(&t->lock);
    old = t->map;
    t->map = m;
    t->loaded = loaded_from;
    pthread_mutex_unlock(&t->lock);
    return old;
}

int devtab_set(struct devtab *t, const char *sn, enum devtab_state st, enum devtab_state *prev)
{
    int rc;
    /* A growth reallocates the map, so the whole update is under the lock;
     * it is rare and short (one rehash of the live entries). */
    pthread_mutex_lock(&t->lock);
    rc = devtab_map_put(&t->map, sn, st, prev);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

struct snap_writer {
    FILE *f;
    int bad;
};

static void snap_line(void *arg, const char *sn, enum devtab_state st)
{
    struct snap_writer *w = arg;
    if(fprintf(w->f, "%s %d\n", sn, st == DEVTAB_ENABLED) < 0)
        w->bad = 1;
}

int devtab_snapshot_save(struct devtab *t, const char *path)
{
    char tmp[4096];
    struct snap_writer w = {NULL, 0};
    int fd = -1, rc = MCS_EIO;

    if(snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
        goto out;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if(fd < 0)
        goto out;
    w.f = fdopen(fd, "w");
    if(!w.f)
        goto out;
    fd = -1; /* owned by w.f now */
    if(fprintf(w.f, "%s\n", SNAP_HEADER) < 0)
        goto out;
    /* The sync thread is the only writer, so it reads without the lock. */
    devtab_map_each(t->map, snap_line, &w);
    if(w.bad || fflush(w.f) != 0 || fsync(fileno(w.f)) != 0)
        goto out;
    if(fclose(w.f) != 0) {
        w.f = NULL;
        goto out;
    }
    w.f = NULL;
    if(rename(tmp, path) != 0)
        goto out;
    rc = 0;
out:
    if(w.f)
        fclose(w.f);
    if(fd >= 0)
        close(fd);
    if(rc)
        unlink(tmp);
    return rc;
}

int devtab_snapshot_load(const char *path, size_t max_entries, struct devtab_map **out)
{
    FILE *f = fopen(path, "r");
    struct devtab_map *m = NULL;
    char line[128];
    size_t count = 0;
    int rc = MCS_EIO;

    *out = NULL;
    if(!f) {
        rc = errno == ENOENT ? MCS_ENOTFOUND : MCS_EIO;
        goto out;
    }
    if(!fgets(line, sizeof(line), f) || strncmp(line, SNAP_HEADER "\n", sizeof(SNAP_HEADER)) != 0) {
        rc = MCS_ECORRUPT;
        goto out;
    }
    m = devtab_map_new(1024);
    if(!m) {
        rc = MCS_ENOMEM;
        goto out;
    }
    while(count < max_entries && fgets(line, sizeof(line), f)) {
        char *sp = strchr(line, ' ');
        size_t len;
        if(!sp || (sp[1] != '0' && sp[1] != '1') || sp[2] != '\n')
            continue;
        *sp = '\0';
        len = (size_t)(sp - line);
        if(!mcs_sn_valid(line, len))
            continue;
        rc = devtab_map_put(&m, line, sp[1] == '1' ? DEVTAB_ENABLED : DEVTAB_DISABLED, NULL);
        if(rc == MCS_ENOMEM)
            goto out;
        count++;
    }
    if(ferror(f)) {
        rc = MCS_EIO;
        goto out;
    }
    *out = m;
    m = NULL;
    rc = 0;
out:
    devtab_map_free(m);
    if(f)
        fclose(f);
    return rc;
}
