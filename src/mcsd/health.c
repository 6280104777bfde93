/* health.c - the §8.4 monitoring thresholds as system alarms (see
 * health.h). Reads /proc and statvfs of this machine and PostgreSQL's
 * statistics; writes alarm_logs only through sysalarm_raise/_clear
 * (jobs.c). Thread: the caller's. */
#include "health.h"
#include "conn.h"
#include "err.h"
#include "jobs.h"
#include "log.h"

#include <cjson/cJSON.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>
#include <inttypes.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#define F(k, d, lo, hi, m) {k, d, lo, hi, offsetof(struct health_limits, m)}
const struct health_field health_fields[] = {
    F("disk_pct", 80, 0, 100, disk_pct),
    F("mem_pct", 80, 0, 100, mem_pct),
    F("cpu_pct", 80, 0, 100, cpu_pct),
    F("cpu_min", 5, 0.01, 1440, cpu_min),
    F("online_pct", 90, 0, 100, online_pct),
    F("rate_drop_pct", 50, 1, 100, rate_drop_pct),
    F("db_conn_pct", 80, 0, 100, db_conn_pct),
    F("hysteresis_pct", 5, 0, 50, hyst_pct),
    F("backlog_runs", 3, 1, 100, backlog_runs),
    {NULL, 0, 0, 0, 0},
};
#undef F

void health_limits_parse(struct health_limits *l, const char *general_json)
{
    cJSON *root = general_json ? cJSON_Parse(general_json) : NULL;
    const cJSON *h =
        cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "system"), "health");
    const cJSON *off = cJSON_GetObjectItemCaseSensitive(root, "offline_s");
    for(const struct health_field *f = health_fields; f->key; f++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, f->key);
        *(double *)((char *)l + f->off) =
            cJSON_IsNumber(v) && v->valuedouble >= f->lo && v->valuedouble <= f->hi
                ? v->valuedouble
                : f->def;
    }
    l->offline_s = cJSON_IsNumber(off) && off->valuedouble >= 1 && off->valuedouble <= 86400
                       ? off->valuedouble
                       : 90;
    cJSON_Delete(root);
}

int health_decide(double value, double limit, double hyst, int high)
{
    if(value < 0)
        return 0;
    if(high)
        return value > limit ? 1 : value <= limit - hyst ? -1 : 0;
    return value < limit ? 1 : value >= limit + hyst ? -1 : 0;
}

/* Raises or clears alarm_type by decision d, with message msg. */
static int apply(PGconn *pg, int d, const char *alarm_type, const char *msg)
{
    if(d > 0)
        return sysalarm_raise(pg, alarm_type, msg);
    if(d < 0)
        return sysalarm_clear(pg, alarm_type);
    return 0;
}

/* Memory in use, %, from /proc/meminfo (MemTotal - MemAvailable); -1. */
static double mem_used_pct(void)
{
    char line[128];
    long long total = -1, avail = -1;
    FILE *f = fopen("/proc/meminfo", "r");
    if(!f)
        return -1;
    while(fgets(line, sizeof(line), f)) {
        if(!strncmp(line, "MemTotal:", 9))
            total = strtoll(line + 9, NULL, 10);
        else if(!strncmp(line, "MemAvailable:", 13))
            avail = strtoll(line + 13, NULL, 10);
    }
    fclose(f);
    return total > 0 && avail >= 0 ? 100.0 * (double)(total - avail) / (double)total : -1;
}

/* The aggregate CPU ticks of /proc/stat: all and idle (idle + iowait). */
static int cpu_ticks(long long *all, long long *idle)
{
    char line[256];
    long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    int ok = 0;
    if(!f)
        return MCS_EIO;
    if(fgets(line, sizeof(line), f) && !strncmp(line, "cpu ", 4)) {
        char *p = line + 4;
        for(int i = 0; i < 8; i++)
            v[i] = strtoll(p, &p, 10);
        ok = 1;
    }
    fclose(f);
    if(!ok)
        return MCS_EIO;
    *all = 0;
    for(int i = 0; i < 8; i++)
        *all += v[i];
    *idle = v[3] + v[4];
    return 0;
}

/* statvfs of path or, when it does not exist (yet, or here: the CLI on
 * another box), of its nearest existing parent: the disk it will be on. */
static int disk_of(const char *path, struct statvfs *vs)
{
    char p[512];
    snprintf(p, sizeof(p), "%s", path && *path ? path : "/");
    for(;;) {
        if(statvfs(p, vs) == 0)
            return 0;
        char *slash = strrchr(p, '/');
        if(!slash)
            return MCS_EIO;
        if(slash == p) {
            if(!p[1])
                return MCS_EIO;
            p[1] = '\0';
        }
        else
            *slash = '\0';
    }
}

/* The journal's end position: of its newest segment file (j-BASE.log),
 * base + its record bytes (journal.h: positions count no header bytes).
 * Returns it, or -1 when the spool holds no segment. */
static int64_t journal_end(const char *dir)
{
    int64_t end = -1;
    struct dirent *e;
    DIR *d = opendir(dir);
    if(!d)
        return -1;
    while((e = readdir(d))) {
        char path[1024], *stop;
        struct stat st;
        if(strncmp(e->d_name, "j-", 2))
            continue;
        long long base = strtoll(e->d_name + 2, &stop, 10);
        if(strcmp(stop, ".log") || base < 0)
            continue;
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if(stat(path, &st) != 0)
            continue;
        int64_t e_pos = base + (st.st_size > 64 ? (int64_t)st.st_size - 64 : 0);
        if(e_pos > end)
            end = e_pos;
    }
    closedir(d);
    return end;
}

/* Fetches one row of a statement into r (caller clears) or NULL. */
static PGresult *row(PGconn *pg, const char *sql, int n, const char *const *p)
{
    char err[256];
    PGresult *r = mcs_pg_query(pg, sql, n, p, PGRES_TUPLES_OK, err, sizeof(err));
    if(!r)
        LOG_W("health", "statement failed", LS("error", err));
    else if(PQntuples(r) != 1) {
        PQclear(r);
        r = NULL;
    }
    return r;
}

int health_check(PGconn *pg, const struct mcs_config *cfg, char *detail, size_t detailn)
{
    const char *spool_dir = cfg->spool_dir;
    struct health_limits l;
    struct statvfs vs;
    char msg[400], host[128] = "", off[32];
    double disk = -1, mem, cpu = -1, online = -1, rate = -1, conn = -1;
    long long all = 0, idle = 0, backlog = -1, streak = 0;
    size_t dl = strlen(detail);
    int rc = 0;
    PGresult *r;

    r = row(pg, "SELECT value::text FROM system_config WHERE key = 'alarm.general'", 0, NULL);
    health_limits_parse(&l, r ? PQgetvalue(r, 0, 0) : NULL);
    PQclear(r);
    gethostname(host, sizeof(host) - 1);

    /* Disk and memory: now. */
    if(disk_of(spool_dir, &vs) == 0 && vs.f_blocks > 0) {
        double used = (double)(vs.f_blocks - vs.f_bfree);
        disk = 100.0 * used / (used + (double)vs.f_bavail);
    }
    snprintf(msg, sizeof(msg), "磁盘使用率 %.1f%%，超过 %.0f%% / disk %.1f%% used (limit %.0f%%): %.120s",
             disk, l.disk_pct, disk, l.disk_pct, spool_dir);
    rc |= apply(pg, health_decide(disk, l.disk_pct, l.hyst_pct, 1), "DISK_HIGH", msg);
    mem = mem_used_pct();
    snprintf(msg, sizeof(msg), "内存使用率 %.1f%%，超过 %.0f%% / memory %.1f%% used (limit %.0f%%)",
             mem, l.mem_pct, mem, l.mem_pct);
    rc |= apply(pg, health_decide(mem, l.mem_pct, l.hyst_pct, 1), "MEM_HIGH", msg);

    /* CPU: the average since the newest health run on this machine that is
     * at least cpu_min old (a short spike is not "80 % for 5 min"). */
    if(cpu_ticks(&all, &idle) == 0) {
        char win[32];
        const char *p[2] = {host, win};
        snprintf(win, sizeof(win), "%.3f", l.cpu_min * 60);
        r = row(pg,
                "SELECT (detail->>'cpu_all')::bigint, (detail->>'cpu_idle')::bigint FROM job_runs"
                " WHERE job = 'health' AND detail->>'host' = $1 AND detail ? 'cpu_all'"
                " AND started_at <= clock_timestamp() - make_interval(secs => $2::float8)"
                " ORDER BY started_at DESC LIMIT 1",
                2, p);
        if(r) {
            long long a0 = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            long long i0 = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
            if(all > a0 && idle >= i0)
                cpu = 100.0 * (1.0 - (double)(idle - i0) / (double)(all - a0));
            PQclear(r);
        }
        snprintf(msg, sizeof(msg),
                 "CPU 使用率 %.1f%%（%.0f 分钟以上平均），超过 %.0f%% / CPU %.1f%% on average over"
                 " %.0f min or more (limit %.0f%%)",
                 cpu, l.cpu_min, l.cpu_pct, cpu, l.cpu_min, l.cpu_pct);
        rc |= apply(pg, health_decide(cpu, l.cpu_pct, l.hyst_pct, 1), "CPU_HIGH", msg);
    }

    /* Devices that have ever reported: the share that reported lately. */
    snprintf(off, sizeof(off), "%.3f", l.offline_s);
    {
        const char *p[1] = {off};
        r = row(pg,
                "SELECT count(*) FILTER (WHERE last_seen > now() - make_interval(secs =>"
                " $1::float8)), count(*) FROM devices WHERE enabled AND last_seen IS NOT NULL",
                1, p);
    }
    if(r) {
        long long on = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        long long n = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        PQclear(r);
        if(n > 0) {
            online = 100.0 * (double)on / (double)n;
            snprintf(msg, sizeof(msg),
                     "设备在线率 %.1f%%（%lld/%lld），低于 %.0f%% / %.1f%% of devices online"
                     " (%lld of %lld, limit %.0f%%)",
                     online, on, n, l.online_pct, online, on, n, l.online_pct);
            rc |= apply(pg, health_decide(online, l.online_pct, l.hyst_pct, 0), "ONLINE_LOW", msg);
        }
    }
    else
        rc = MCS_EDB;

    /* Messages of the last whole hour against the same hour of the last
     * seven days (device_stats_hourly, the stats job's counts). */
    r = row(pg,
            "WITH h AS (SELECT date_trunc('hour', now()) - interval '1 hour' AS h),"
            " past AS (SELECT s.hour, sum(s.received) AS n FROM device_stats_hourly s, h"
            "  WHERE s.hour IN (SELECT h.h - make_interval(days => d) FROM generate_series(1, 7) d)"
            "  GROUP BY s.hour)"
            " SELECT COALESCE((SELECT sum(received) FROM device_stats_hourly, h"
            "  WHERE hour = h.h), 0), (SELECT avg(n) FROM past)",
            0, NULL);
    if(r) {
        if(!PQgetisnull(r, 0, 1)) {
            double last = strtod(PQgetvalue(r, 0, 0), NULL);
            double avg = strtod(PQgetvalue(r, 0, 1), NULL);
            if(avg > 0) {
                /* The drop, in % of the average: an alarm above rate_drop_pct. */
                rate = 100.0 * (avg - last) / avg;
                if(rate < 0)
                    rate = 0;
                snprintf(msg, sizeof(msg),
                         "上一小时消息量 %.0f，比前几日同时段平均 %.0f 下降 %.0f%% / last hour"
                         " %.0f messages, %.0f%% below the same hour's average %.0f",
                         last, avg, rate, last, rate, avg);
                rc |= apply(pg, health_decide(rate, l.rate_drop_pct, l.hyst_pct, 1),
                            "MSG_RATE_DROP", msg);
            }
        }
        PQclear(r);
    }
    else
        rc = MCS_EDB;

    r = row(pg,
            "SELECT count(*), current_setting('max_connections')::int FROM pg_stat_activity"
            " WHERE backend_type = 'client backend'",
            0, NULL);
    if(r) {
        long long n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
        long long max = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
        PQclear(r);
        if(max > 0) {
            conn = 100.0 * (double)n / (double)max;
            snprintf(msg, sizeof(msg),
                     "数据库连接 %lld/%lld（%.0f%%），接近上限 / database connections %lld of"
                     " %lld (%.0f%%, limit %.0f%%)",
                     n, max, conn, n, max, conn, l.db_conn_pct);
            rc |= apply(pg, health_decide(conn, l.db_conn_pct, l.hyst_pct, 1), "DB_CONN_HIGH",
                        msg);
        }
    }
    else
        rc = MCS_EDB;

    /* The journal backlog, against the previous run on this host: growing
     * backlog_runs runs in a row raises, a run without growth clears. */
    {
        int64_t end = journal_end(spool_dir);
        const char *p[1] = {cfg->instance_id};
        r = end >= 0 ? row(pg, "SELECT \"offset\" FROM ingest_checkpoint WHERE instance = $1",
                           1, p)
                     : NULL;
        if(r) {
            long long done = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            PQclear(r);
            backlog = end > done ? end - done : 0;
        }
    }
    if(backlog >= 0) {
        /* The previous measure of this journal: same host, same instance. */
        const char *p[2] = {host, cfg->instance_id};
        r = row(pg,
                "SELECT (detail->>'backlog')::bigint, (detail->>'backlog_growing')::int FROM"
                " job_runs WHERE job = 'health' AND detail->>'host' = $1"
                " AND detail->>'backlog_of' = $2 ORDER BY started_at DESC LIMIT 1",
                2, p);
        if(r) {
            long long prev = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
            streak = backlog > prev ? strtoll(PQgetvalue(r, 0, 1), NULL, 10) + 1 : 0;
            PQclear(r);
        }
        snprintf(msg, sizeof(msg),
                 "采集日志积压 %lld 字节，连续 %lld 次检查增长 / journal backlog %lld bytes, growing"
                 " for %lld checks in a row",
                 backlog, streak, backlog, streak);
        rc |= apply(pg,
                    health_decide((double)streak, l.backlog_runs - 0.5, l.backlog_runs - 0.5, 1),
                    "JOURNAL_BACKLOG", msg);
    }

    if(dl < detailn) {
        char esc_host[128];
        size_t o = 0;
        for(const char *s = host; *s && o + 1 < sizeof(esc_host); s++)
            if(*s != '"' && *s != '\\' && (unsigned char)*s >= 0x20)
                esc_host[o++] = *s;
        esc_host[o] = '\0';
        snprintf(detail + dl, detailn - dl,
                 ",\"host\":\"%s\",\"cpu_all\":%lld,\"cpu_idle\":%lld,\"disk_pct\":%.1f,"
                 "\"mem_pct\":%.1f,\"cpu_pct\":%.1f,\"online_pct\":%.1f,\"rate_drop_pct\":%.1f,"
                 "\"db_conn_pct\":%.1f",
                 esc_host, all, idle, disk, mem, cpu, online, rate, conn);
        dl = strlen(detail);
        if(backlog >= 0 && dl < detailn) /* instance_id: letters, digits, - _ . (config.c) */
            snprintf(detail + dl, detailn - dl,
                     ",\"backlog_of\":\"%s\",\"backlog\":%lld,\"backlog_growing\":%lld",
                     cfg->instance_id, backlog, streak);
    }
    return rc ? MCS_EDB : 0;
}
