/* sysalarm.c - settings of alarm.general.system and the UNKNOWN_DEVICE
 * digest (see sysalarm.h). Owns nothing persistent; touches alarm_logs only
 * through the statements below. Thread: the notifier's housekeeping. */
#include "sysalarm.h"
#include "err.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>

#define DIGEST_MAX 1000 /* episodes per digest row; more wait for the next */

const char *const sysalarm_types[] = {
    "UNKNOWN_DEVICE", "NOTIFY_FAILED", "ARCHIVE_FAILED", "BACKUP_FAILED", "HEALTH_FAILED",
    "LICENSE_FAILED", "JOB_OFFLINE",   "JOB_STATS",      "JOB_VACUUM",    "DISK_HIGH",
    "MEM_HIGH",       "CPU_HIGH",      "ONLINE_LOW",     "MSG_RATE_DROP", "DB_CONN_HIGH",
    "JOURNAL_BACKLOG", NULL,
};

void sysalarm_cfg_parse(struct sysalarm_cfg *c, const char *general_json)
{
    cJSON *root = general_json ? cJSON_Parse(general_json) : NULL;
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(root, "system");
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(sys, "unknown_digest_s");
    c->unknown_digest_s = 60;
    if(cJSON_IsNumber(v) && v->valuedouble >= SYSALARM_DIGEST_MIN &&
       v->valuedouble <= SYSALARM_DIGEST_MAX)
        c->unknown_digest_s = v->valuedouble;
    cJSON_Delete(root);
}

int sysalarm_digest_unknown(PGconn *pg, const struct sysalarm_cfg *c, const char *tz)
{
    char secs[32], lim[16];
    const char *p[3] = {secs, tz, lim};
    int n;
    snprintf(secs, sizeof(secs), "%.3f", c->unknown_digest_s);
    snprintf(lim, sizeof(lim), "%d", DIGEST_MAX);
    /* The text lists serial number, attempts and local time of each episode
     * (the first 20, which fit any platform's text; the count says how
     * many in all, the screens list every one). */
    PGresult *r = PQexecParams(
        pg,
        "WITH due AS (SELECT id, sn, count, triggered_at FROM alarm_logs"
        "  WHERE alarm_type = 'UNKNOWN_DEVICE' AND reported_in IS NULL AND sn <> 'SYSTEM'"
        "  AND EXISTS (SELECT 1 FROM alarm_logs o WHERE o.alarm_type = 'UNKNOWN_DEVICE'"
        "   AND o.reported_in IS NULL AND o.sn <> 'SYSTEM'"
        "   AND o.triggered_at <= now() - make_interval(secs => $1::float8))"
        "  ORDER BY id LIMIT $3::int FOR UPDATE SKIP LOCKED),"
        " d AS (INSERT INTO alarm_logs (sn, alarm_type, level, value, count, message, cleared_at)"
        "  SELECT 'SYSTEM', 'UNKNOWN_DEVICE', 1, count(*), sum(count),"
        "   format('%s 台未知设备尝试接入 / %s unknown devices tried to connect: %s%s',"
        "    count(*), count(*),"
        "    string_agg(format('%s(%s次 %s)', sn, count,"
        "     to_char(triggered_at AT TIME ZONE $2, 'MM-DD HH24:MI:SS')), ', ' ORDER BY id)"
        "     FILTER (WHERE rn <= 20),"
        "    CASE WHEN count(*) > 20 THEN ' …' ELSE '' END), now()"
        "  FROM (SELECT *, row_number() OVER (ORDER BY id) AS rn FROM due) x"
        "  HAVING count(*) > 0 RETURNING id)"
        " UPDATE alarm_logs a SET reported_in = d.id FROM d, due WHERE a.id = due.id",
        3, NULL, p, NULL, NULL, 0);
    if(PQresultStatus(r) != PGRES_COMMAND_OK) {
        LOG_W("sysalarm", "unknown-device digest failed", LS("error", PQresultErrorMessage(r)));
        PQclear(r);
        return MCS_EDB;
    }
    n = (int)strtol(PQcmdTuples(r), NULL, 10);
    PQclear(r);
    if(n > 0)
        LOG_I("sysalarm", "unknown devices reported in one digest", LI("episodes", n));
    return n;
}
