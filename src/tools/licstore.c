/* licstore.c - the vendor's license store in SQLite (see licstore.h).
 * Owns its handle and the schema. Thread: the caller's, one handle each. */
#include "licstore.h"
#include "err.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct licstore {
    sqlite3 *db;
};

static const char schema[] =
    "PRAGMA journal_mode=WAL;"
    "PRAGMA synchronous=FULL;"
    "CREATE TABLE IF NOT EXISTS licenses ("
    " id TEXT PRIMARY KEY, key TEXT NOT NULL UNIQUE, customer TEXT NOT NULL,"
    " max_devices INTEGER NOT NULL, issued TEXT NOT NULL, expires TEXT NOT NULL,"
    " revoked INTEGER NOT NULL DEFAULT 0, text TEXT NOT NULL,"
    " created_at INTEGER NOT NULL DEFAULT (strftime('%s','now')));"
    "CREATE TABLE IF NOT EXISTS bindings ("
    " license_id TEXT PRIMARY KEY REFERENCES licenses(id), fingerprint TEXT NOT NULL,"
    " bound_at INTEGER NOT NULL, last_seen INTEGER NOT NULL);";

int licstore_open(const char *path, struct licstore **out)
{
    struct licstore *s = calloc(1, sizeof(*s));
    int rc = 0;

    *out = NULL;
    if(!s)
        return MCS_ENOMEM;
    if(sqlite3_open_v2(path, &s->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) !=
       SQLITE_OK) {
        rc = MCS_EIO;
        goto out;
    }
    sqlite3_busy_timeout(s->db, 5000);
    if(sqlite3_exec(s->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
        rc = MCS_EDB;
        goto out;
    }
    *out = s;
    s = NULL;
out:
    licstore_free(s);
    return rc;
}

void licstore_free(struct licstore *s)
{
    if(!s)
        return;
    sqlite3_close(s->db);
    free(s);
}

/* Prepares sql and binds the text parameters (NULL-terminated list). */
static sqlite3_stmt *prep(struct licstore *s, const char *sql, const char *const *texts)
{
    sqlite3_stmt *st = NULL;
    if(sqlite3_prepare_v2(s->db, sql, -1, &st, NULL) != SQLITE_OK)
        return NULL;
    for(int i = 0; texts && texts[i]; i++)
        if(sqlite3_bind_text(st, i + 1, texts[i], -1, SQLITE_TRANSIENT) != SQLITE_OK) {
            sqlite3_finalize(st);
            return NULL;
        }
    return st;
}

int licstore_add(struct licstore *s, const struct mcs_license *l, const char *text)
{
    char maxdev[16];
    const char *p[] = {l->id, l->key, l->customer, maxdev, l->issued, l->expires, text, NULL};
    sqlite3_stmt *st;
    int rc;

    snprintf(maxdev, sizeof(maxdev), "%d", l->max_devices);
    st = prep(s,
              "INSERT INTO licenses(id,key,customer,max_devices,issued,expires,text) "
              "VALUES(?,?,?,CAST(? AS INTEGER),?,?,?)",
              p);
    if(!st)
        return MCS_EDB;
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if(rc == SQLITE_CONSTRAINT)
        return MCS_EDUP;
    return rc == SQLITE_DONE ? 0 : MCS_EDB;
}

static void col_text(sqlite3_stmt *st, int i, char *out, size_t n)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    snprintf(out, n, "%s", t ? (const char *)t : "");
}

int licstore_list(struct licstore *s, int (*fn)(const struct licstore_row *, void *), void *arg)
{
    sqlite3_stmt *st = prep(s,
                            "SELECT l.id,l.key,l.customer,l.max_devices,l.issued,l.expires,"
                            "l.revoked,b.fingerprint,b.bound_at,b.last_seen FROM licenses l "
                            "LEFT JOIN bindings b ON b.license_id=l.id ORDER BY l.created_at,l.id",
                            NULL);
    struct licstore_row r;
    int rc = 0, step;

    if(!st)
        return MCS_EDB;
    while((step = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&r, 0, sizeof(r));
        col_text(st, 0, r.lic.id, sizeof(r.lic.id));
        col_text(st, 1, r.lic.key, sizeof(r.lic.key));
        col_text(st, 2, r.lic.customer, sizeof(r.lic.customer));
        r.lic.max_devices = sqlite3_column_int(st, 3);
        col_text(st, 4, r.lic.issued, sizeof(r.lic.issued));
        col_text(st, 5, r.lic.expires, sizeof(r.lic.expires));
        r.revoked = sqlite3_column_int(st, 6);
        col_text(st, 7, r.bound_fp, sizeof(r.bound_fp));
        r.bound_at = sqlite3_column_int64(st, 8);
        r.last_seen = sqlite3_column_int64(st, 9);
        if((rc = fn(&r, arg)) != 0)
            goto out;
    }
    if(step != SQLITE_DONE)
        rc = MCS_EDB;
out:
    sqlite3_finalize(st);
    return rc;
}

/* Runs one UPDATE/DELETE with `which` bound to both ?1 (id) and ?2 (key). */
static int change(struct licstore *s, const char *sql, const char *which)
{
    const char *p[] = {which, which, NULL};
    sqlite3_stmt *st = prep(s, sql, p);
    int rc;
    if(!st)
        return MCS_EDB;
    rc = sqlite3_step(st);
    sqlite3_finalize(st);
    if(rc != SQLITE_DONE)
        return MCS_EDB;
    return sqlite3_changes(s->db) > 0 ? 0 : MCS_ENOTFOUND;
}

int licstore_revoke(struct licstore *s, const char *which)
{
    return change(s, "UPDATE licenses SET revoked=1 WHERE id=?1 OR key=?2", which);
}

int licstore_release(struct licstore *s, const char *which)
{
    const char *p[] = {which, which, NULL};
    sqlite3_stmt *st = prep(s, "SELECT 1 FROM licenses WHERE id=?1 OR key=?2", p);
    int found;
    if(!st)
        return MCS_EDB;
    found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
    if(!found)
        return MCS_ENOTFOUND;
    /* Releasing a license with no host bound is not an error. */
    return change(s,
                  "DELETE FROM bindings WHERE license_id IN "
                  "(SELECT id FROM licenses WHERE id=?1 OR key=?2)",
                  which) == MCS_EDB
               ? MCS_EDB
               : 0;
}

int licstore_verify(struct licstore *s, const char *key, const char *fp, int64_t now,
                    enum lic_token_status *status, struct mcs_license *lic)
{
    const char *p[] = {key, NULL};
    sqlite3_stmt *st = NULL;
    char bound[LIC_FP_HEX + 1] = "";
    char nowtxt[24], today[16];
    int revoked, rc = MCS_EDB, step;

    memset(lic, 0, sizeof(*lic));
    *status = LIC_TOK_UNKNOWN;
    /* IMMEDIATE: two first activations from two hosts cannot both bind. */
    if(sqlite3_exec(s->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
        return MCS_EDB;
    st = prep(s,
              "SELECT l.id,l.key,l.customer,l.max_devices,l.issued,l.expires,l.revoked,"
              "b.fingerprint FROM licenses l LEFT JOIN bindings b ON b.license_id=l.id "
              "WHERE l.key=?",
              p);
    if(!st)
        goto out;
    step = sqlite3_step(st);
    if(step == SQLITE_DONE) {
        rc = 0;
        goto out;
    }
    if(step != SQLITE_ROW)
        goto out;
    col_text(st, 0, lic->id, sizeof(lic->id));
    col_text(st, 1, lic->key, sizeof(lic->key));
    col_text(st, 2, lic->customer, sizeof(lic->customer));
    lic->max_devices = sqlite3_column_int(st, 3);
    col_text(st, 4, lic->issued, sizeof(lic->issued));
    col_text(st, 5, lic->expires, sizeof(lic->expires));
    revoked = sqlite3_column_int(st, 6);
    col_text(st, 7, bound, sizeof(bound));
    sqlite3_finalize(st);
    st = NULL;
    {
        /* ISO dates compare as text; the license runs through its last day (UTC). */
        time_t t = (time_t)now;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(today, sizeof(today), "%Y-%m-%d", &tm);
    }
    if(revoked)
        *status = LIC_TOK_REVOKED;
    else if(strcmp(today, lic->expires) > 0)
        *status = LIC_TOK_EXPIRED;
    else if(bound[0] && strcmp(bound, fp) != 0)
        *status = LIC_TOK_OTHER_HOST;
    else {
        const char *q[] = {lic->id, fp, nowtxt, NULL};
        snprintf(nowtxt, sizeof(nowtxt), "%lld", (long long)now);
        st = prep(s,
                  "INSERT INTO bindings(license_id,fingerprint,bound_at,last_seen) "
                  "VALUES(?1,?2,CAST(?3 AS INTEGER),CAST(?3 AS INTEGER)) "
                  "ON CONFLICT(license_id) DO UPDATE SET last_seen=excluded.last_seen",
                  q);
        if(!st || sqlite3_step(st) != SQLITE_DONE)
            goto out;
        *status = LIC_TOK_OK;
    }
    rc = 0;
out:
    sqlite3_finalize(st);
    if(sqlite3_exec(s->db, rc == 0 ? "COMMIT" : "ROLLBACK", NULL, NULL, NULL) != SQLITE_OK)
        rc = MCS_EDB;
    return rc;
}
