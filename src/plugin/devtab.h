/* devtab.h - the plugin's in-memory device registry: serial number ->
 * enabled or disabled, a shared hash map (src/common/hmap.h) behind one
 * mutex.
 * Owns the table and its snapshot file format. Touches no database.
 * Thread: the sync thread is the only writer (it may read its own table
 * without the lock); the broker's thread only reads, under the lock, via
 * devtab_get(). */
#ifndef MCS_DEVTAB_H
#define MCS_DEVTAB_H

#include "hmap.h"

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#define DEVTAB_SN_MAX HMAP_KEY_MAX

enum devtab_state {
    DEVTAB_UNKNOWN = 0,
    DEVTAB_DISABLED = 1,
    DEVTAB_ENABLED = 2,
};

/* One generation of the table: SN -> one byte, DEVTAB_ENABLED or
 * DEVTAB_DISABLED. */
struct devtab_map {
    struct hmap h;
};

struct devtab {
    pthread_mutex_t lock;
    struct devtab_map *map; /* never NULL after init */
    int loaded;             /* 0 none yet, 1 from the database, 2 from a snapshot */
};

/* Makes an empty map sized for `expected` entries. NULL when out of memory. */
struct devtab_map *devtab_map_new(size_t expected);

/* Frees a map (NULL is a no-op). */
void devtab_map_free(struct devtab_map *m);

/* Looks sn up in m (no locking). */
enum devtab_state devtab_map_get(const struct devtab_map *m, const char *sn, size_t len);

/* Number of live entries of m. */
size_t devtab_map_count(const struct devtab_map *m);

/* Inserts or updates sn in *m, growing (its slot array) when needed; st is
 * DEVTAB_ENABLED or DEVTAB_DISABLED, or DEVTAB_UNKNOWN to delete. prev (may
 * be NULL) receives the former state. Returns 0, MCS_EINVAL for an invalid
 * sn, or MCS_ENOMEM (*m unchanged). No locking: for maps not yet shared. */
int devtab_map_put(struct devtab_map **m, const char *sn, enum devtab_state st,
                   enum devtab_state *prev);

/* Calls fn for every live entry of m. */
void devtab_map_each(const struct devtab_map *m,
                     void (*fn)(void *arg, const char *sn, enum devtab_state st), void *arg);

/* Initialises an empty, not loaded table. Returns 0 or MCS_ENOMEM. */
int devtab_init(struct devtab *t);

/* Frees the table. */
void devtab_cleanup(struct devtab *t);

/* The state of sn (len bytes), under the lock. Broker thread. */
enum devtab_state devtab_get(struct devtab *t, const char *sn, size_t len);

/* Whether a full load (database or snapshot) has happened: before that,
 * "unknown" means "do not know", not "not registered". */
int devtab_loaded(struct devtab *t);

/* Number of live entries. */
size_t devtab_count(struct devtab *t);

/* Installs m (taken over) as the table after a full load; loaded_from is 1
 * (database) or 2 (snapshot). Returns the previous map, which the caller
 * owns and frees (e.g. after comparing it with m for kicks). */
struct devtab_map *devtab_replace(struct devtab *t, struct devtab_map *m, int loaded_from);

/* Sets one entry under the lock (see devtab_map_put). Sync thread. */
int devtab_set(struct devtab *t, const char *sn, enum devtab_state st, enum devtab_state *prev);

/* Writes the table to path atomically (path.tmp, fsync, rename), mode
 * 0600: a first line "mcs_auth-devtab 1", then "sn 0|1" lines. Sync thread
 * (reads its own table without the lock). Returns 0 or MCS_EIO. */
int devtab_snapshot_save(struct devtab *t, const char *path);

/* Reads a snapshot written by devtab_snapshot_save into a new map (*out,
 * caller owns). Lines that do not parse are skipped; at most max_entries
 * are read. Returns 0, MCS_ENOTFOUND when the file does not exist,
 * MCS_ECORRUPT for a wrong header, MCS_EIO or MCS_ENOMEM. */
int devtab_snapshot_load(const char *path, size_t max_entries, struct devtab_map **out);

#endif
