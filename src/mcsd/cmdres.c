/* cmdres.c - command results, returns and expiry into device_commands
 * (cmdres.h). Owns its queue. Thread: ingest pushes, store flushes. */
#include "cmdres.h"
#include "err.h"
#include "log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cmdres_init(struct mcs_cmdres *c, int cap)
{
    memset(c, 0, sizeof(*c));
    c->q = calloc((size_t)cap, sizeof(*c->q));
    if(!c->q)
        return MCS_ENOMEM;
    c->cap = cap;
    pthread_mutex_init(&c->lock, NULL);
    return 0;
}

void cmdres_cleanup(struct mcs_cmdres *c)
{
    if(!c->q)
        return;
    pthread_mutex_destroy(&c->lock);
    free(c->q);
    c->q = NULL;
}

int cmdres_push(struct mcs_cmdres *c, const char *sn, const struct mcs_status *st, int64_t recv_s)
{
    int rc = 0;

    pthread_mutex_lock(&c->lock);
    if(c->n == c->cap) {
        rc = MCS_EFULL;
    }
    else {
        struct mcs_cmdres_item *it = &c->q[c->n++];
        snprintf(it->sn, sizeof(it->sn), "%s", sn);
        it->st = *st;
        it->recv_s = recv_s;
    }
    pthread_mutex_unlock(&c->lock);
    if(rc && atomic_fetch_add(&c->dropped, 1) % 1000 == 0)
        LOG_W("cmdres", "command result queue full: result not recorded", LS("sn", sn));
    return rc;
}

/* The id as the bigint the server sent, or NULL: a device that sends no id
 * (or one that is not ours) is matched by command name instead. */
static const char *numeric_id(const char *id)
{
    size_t n = strlen(id);
    if(n == 0 || n > 18)
        return NULL;
    for(size_t i = 0; i < n; i++)
        if(id[i] < '0' || id[i] > '9')
            return NULL;
    return id;
}

/* The state a result closes a command with: an OTA's "ok" only says the
 * download started ("accepted"); its "done" or "failed" comes later. */
#define NEW_STATE                                                                              \
    "CASE WHEN $4 = 'ok' AND $3 = 'ota' THEN 'accepted' WHEN $4 IN ('ok', 'done') THEN 'ok' "  \
    "ELSE 'error' END"

static const char *const RESULT_SQL =
    "WITH hit AS ("
    " UPDATE device_commands SET state = " NEW_STATE ", result = $4, reason = $5,"
    " result_at = to_timestamp($6::bigint)"
    " WHERE id = (SELECT id FROM device_commands WHERE sn = $1 AND"
    "  (cmd_id = $2::bigint OR ($2 IS NULL AND cmd = $3 AND"
    "   state IN ('sent', 'delivered', 'accepted')))"
    "  ORDER BY sent_at DESC, id DESC LIMIT 1)"
    " RETURNING 1) "
    "INSERT INTO device_commands (cmd_id, sn, cmd, payload, state, sent_by, sent_at,"
    " delivered_at, deadline_s, due_at, result, reason, result_at)"
    " SELECT b.cmd_id, $1, b.cmd, b.payload, " NEW_STATE ", b.sent_by, b.sent_at,"
    " b.delivered_at, b.deadline_s, b.due_at, $4, $5, to_timestamp($6::bigint)"
    " FROM device_commands b WHERE b.cmd_id = $2::bigint AND b.sn IS NULL"
    " AND NOT EXISTS (SELECT 1 FROM hit) ON CONFLICT DO NOTHING";

/* Devices back online: the commands the broker held for them now have their
 * deadline. One statement for all ($1 a text[] of SNs). */
static const char *const RETURN_SQL =
    "UPDATE device_commands SET due_at = now() + make_interval(secs => deadline_s)"
    " WHERE sn = ANY($1::text[]) AND due_at IS NULL AND state IN ('sent', 'delivered')";

static const char *const EXPIRE_SQL =
    "UPDATE device_commands SET state = 'expired', result_at = now()"
    " WHERE state IN ('sent', 'delivered', 'accepted') AND due_at < now()";

static int exec_ok(PGconn *pg, const char *sql, int n, const char *const *v, const char *sn)
{
    PGresult *r = PQexecParams(pg, sql, n, NULL, v, NULL, NULL, 0);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;

    if(!ok)
        LOG_W("cmdres", "command state not written", LS("sn", sn),
              LS("error", PQresultErrorMessage(r)));
    PQclear(r);
    return ok ? 0 : MCS_EDB;
}

static int write_result(PGconn *pg, const struct mcs_cmdres_item *it)
{
    char at[24];
    const char *v[6] = {it->sn, numeric_id(it->st.id), it->st.cmd[0] ? it->st.cmd : "?",
                        it->st.result, it->st.reason[0] ? it->st.reason : NULL, at};

    snprintf(at, sizeof(at), "%lld", (long long)it->recv_s);
    return exec_ok(pg, RESULT_SQL, 6, v, it->sn);
}

/* The SNs of the "online" items as a text[] literal (SNs are letters,
 * digits, '_' and '-': nothing to quote). NULL when there are none. */
static char *online_array(const struct mcs_cmdres_item *w, int n)
{
    size_t cap = 3, len = 0;
    char *a;

    for(int i = 0; i < n; i++)
        cap += strlen(w[i].sn) + 1;
    a = malloc(cap);
    if(!a)
        return NULL;
    a[len++] = '{';
    for(int i = 0; i < n; i++) {
        if(w[i].st.result[0])
            continue;
        if(len > 1)
            a[len++] = ',';
        memcpy(a + len, w[i].sn, strlen(w[i].sn));
        len += strlen(w[i].sn);
    }
    if(len == 1) {
        free(a);
        return NULL;
    }
    a[len++] = '}';
    a[len] = '\0';
    return a;
}

int cmdres_flush(struct mcs_cmdres *c, PGconn *pg)
{
    struct mcs_cmdres_item *work = NULL;
    int n, done = 0, rc = 0;
    PGresult *r;

    pthread_mutex_lock(&c->lock);
    n = c->n;
    if(n) {
        work = malloc((size_t)n * sizeof(*work));
        if(work) {
            memcpy(work, c->q, (size_t)n * sizeof(*work));
            c->n = 0;
        }
    }
    pthread_mutex_unlock(&c->lock);
    if(n && !work)
        return MCS_ENOMEM;
    if(n) {
        char *arr = online_array(work, n);
        const char *v[1] = {arr};
        if(arr)
            rc = exec_ok(pg, RETURN_SQL, 1, v, "*");
        free(arr);
    }
    for(; done < n && !rc; done++) {
        if(!work[done].st.result[0])
            continue;
        if((rc = write_result(pg, &work[done])) != 0)
            break;
        atomic_fetch_add(&c->recorded, 1);
    }
    if(done < n) {
        /* Back in front of what came meanwhile, in order, as far as room
         * allows (what does not fit is counted as dropped). */
        pthread_mutex_lock(&c->lock);
        int keep = n - done;
        if(keep > c->cap - c->n)
            keep = c->cap - c->n;
        memmove(c->q + keep, c->q, (size_t)c->n * sizeof(*c->q));
        memcpy(c->q, work + done, (size_t)keep * sizeof(*c->q));
        c->n += keep;
        pthread_mutex_unlock(&c->lock);
        atomic_fetch_add(&c->dropped, (uint64_t)(n - done - keep));
    }
    free(work);
    if(rc)
        return rc;
    r = PQexec(pg, EXPIRE_SQL);
    if(PQresultStatus(r) != PGRES_COMMAND_OK) {
        LOG_W("cmdres", "expiry not written", LS("error", PQresultErrorMessage(r)));
        rc = MCS_EDB;
    }
    PQclear(r);
    return rc;
}
