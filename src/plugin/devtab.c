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

#define SNAP_HEADER "mcs_auth-devtab 1"

struct devtab_map *devtab_map_new(size_t expected)
{
    struct devtab_map *m = malloc(sizeof(*m));

    if(!m)
        return NULL;
    if(hmap_init(&m->h, 1, expected, 0)) {
        free(m);
        return NULL;
    }
    return m;
}

void devtab_map_free(struct devtab_map *m)
{
    if(!m)
        return;
    hmap_cleanup(&m->h);
    free(m);
}

size_t devtab_map_count(const struct devtab_map *m)
{
    return hmap_count(&m->h);
}

enum devtab_state devtab_map_get(const struct devtab_map *m, const char *sn, size_t len)
{
    const uint8_t *v = hmap_find(&m->h, sn, len);
    return v ? (enum devtab_state) * v : DEVTAB_UNKNOWN;
}

int devtab_map_put(struct devtab_map **mp, const char *sn, enum devtab_state st,
                   enum devtab_state *prev)
{
    struct devtab_map *m = *mp;
    size_t len = sn ? strlen(sn) : 0;
    uint8_t *v, old = DEVTAB_UNKNOWN;
    int rc;

    if(prev)
        *prev = DEVTAB_UNKNOWN;
    if(!sn || !mcs_sn_valid(sn, len))
        return MCS_EINVAL;
    if(st == DEVTAB_UNKNOWN) {
        if(hmap_delete(&m->h, sn, len, &old) == 0 && prev)
            *prev = (enum devtab_state)old;
        return 0;
    }
    rc = hmap_insert(&m->h, sn, len, (void **)&v, NULL);
    if(rc)
        return rc == MCS_EFULL ? MCS_ENOMEM : rc;
    if(prev)
        *prev = (enum devtab_state) * v; /* 0 = DEVTAB_UNKNOWN for a new entry */
    *v = (uint8_t)st;
    return 0;
}

void devtab_map_each(const struct devtab_map *m,
                     void (*fn)(void *arg, const char *sn, enum devtab_state st), void *arg)
{
    size_t pos = 0;
    const char *sn;
    void *v;

    while(hmap_next(&m->h, &pos, &sn, NULL, &v))
        fn(arg, sn, (enum devtab_state) * (const uint8_t *)v);
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
    n = devtab_map_count(t->map);
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
    /* A growth reallocates the slot array, so the whole update is under the lock;
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
