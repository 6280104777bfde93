/* mcs_device.c - `mcs device ...`: device registry edits and device
 * credentials (R-PR-2, R-ST-7). Owns its argument checks and the
 * parameterised SQL it sends; of Redis it only reads, and deletes a written
 * device's cache keys. It never tells mcsd anything directly: the NOTIFY
 * trigger on `devices` does. Thread: single-threaded. */
#include "devcred.h"
#include "err.h"
#include "mcs_util.h"

#include <stdlib.h>
#include <string.h>

/* A value read back from Redis (realtime:{sn}) is shown only up to this size;
 * mcsd writes about 200 bytes. */
#define REALTIME_MAX 65536

/* The settable device columns of `device add` / `device set`. */
static const struct cli_opt devopts[] = {
    {"--name", "name", 64, CLI_OPT_STR, 1, 0, 0},
    {"--location", "location", 128, CLI_OPT_STR, 1, 0, 0},
    {"--k", "calib_k", 0, CLI_OPT_NUM, 0, 0, 0},
    {"--b", "calib_b", 0, CLI_OPT_NUM, 0, 0, 0},
    {"--t-ref", "calib_t_ref", 0, CLI_OPT_NUM, 0, 0, 0},
    {"--t-comp", "calib_t_comp", 0, CLI_OPT_NUM, 0, 0, 0},
    {"--high", "high_limit", 0, CLI_OPT_NUM, 0, 1, 0}, /* "none": no such alarm */
    {"--low", "low_limit", 0, CLI_OPT_NUM, 0, 1, 0},
    {"--range-max", "range_max", 0, CLI_OPT_NUM, 0, 0, 1},
    {"--unit", "unit", 16, CLI_OPT_STR, 0, 0, 0},
    /* issue #7: level-2 limits and the clearing band (docs/ALARMS.md) */
    {"--high2", "high_limit2", 0, CLI_OPT_NUM, 0, 1, 0},
    {"--low2", "low_limit2", 0, CLI_OPT_NUM, 0, 1, 0},
    {"--hysteresis", "hysteresis", 0, CLI_OPT_NUM, 0, 1, 0},
};
#define NDEVOPTS (sizeof(devopts) / sizeof(devopts[0]))
/* Indices of the two alarm limits in devopts, for their cross-check. */
enum { OPT_HIGH = 6, OPT_LOW = 7 };

/* Columns as shown by `device list` / `device show`: JSON key, SQL
 * expression (a constant), table heading and how to type the JSON value. */
enum coltype { CT_STR, CT_NUM, CT_BOOL };
struct col {
    const char *key;
    const char *expr;
    const char *head;
    enum coltype type;
};

#define TS_UTC(c) "to_char(" c " AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')"

static const struct col list_cols[] = {
    {"sn", "sn", "sn", CT_STR},
    {"name", "name", "name", CT_STR},
    {"location", "location", "location", CT_STR},
    {"enabled", "enabled", "enabled", CT_BOOL},
    {"status", "status", "status", CT_STR},
    {"last_seen", TS_UTC("last_seen"), "last_seen", CT_STR},
    {"calib_k", "calib_k", "k", CT_NUM},
    {"calib_b", "calib_b", "b", CT_NUM},
    {"calib_t_comp", "calib_t_comp", "t_comp", CT_NUM},
    {"high_limit", "high_limit", "high", CT_NUM},
    {"low_limit", "low_limit", "low", CT_NUM},
    {"pkt_recv", "pkt_recv", "pkt_recv", CT_NUM},
    {"pkt_lost", "pkt_lost", "pkt_lost", CT_NUM},
};

static const struct col show_cols[] = {
    {"sn", "sn", "sn", CT_STR},
    {"name", "name", "name", CT_STR},
    {"location", "location", "location", CT_STR},
    {"pos_x", "pos_x", "pos_x", CT_NUM},
    {"pos_y", "pos_y", "pos_y", CT_NUM},
    {"calib_k", "calib_k", "calib_k", CT_NUM},
    {"calib_b", "calib_b", "calib_b", CT_NUM},
    {"calib_t_ref", "calib_t_ref", "calib_t_ref", CT_NUM},
    {"calib_t_comp", "calib_t_comp", "calib_t_comp", CT_NUM},
    {"unit", "unit", "unit", CT_STR},
    {"range_max", "range_max", "range_max", CT_NUM},
    {"high_limit", "high_limit", "high_limit", CT_NUM},
    {"low_limit", "low_limit", "low_limit", CT_NUM},
    {"enabled", "enabled", "enabled", CT_BOOL},
    {"status", "status", "status", CT_STR},
    {"last_seen", TS_UTC("last_seen"), "last_seen", CT_STR},
    {"fw_ver", "fw_ver", "fw_ver", CT_STR},
    {"last_err", "last_err", "last_err", CT_NUM},
    {"bat", "bat", "bat", CT_NUM},
    {"rssi", "rssi", "rssi", CT_NUM},
    {"pkt_recv", "pkt_recv", "pkt_recv", CT_NUM},
    {"pkt_lost", "pkt_lost", "pkt_lost", CT_NUM},
    {"created_at", TS_UTC("created_at"), "created_at", CT_STR},
    {"updated_at", TS_UTC("updated_at"), "updated_at", CT_STR},
};
#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

/* Deletes the cache keys of a device just written (R-ST-7 cache-aside), and
 * on removal its live keys too. Best effort: mcsd reloads the device through
 * the database notification anyway, so a failure is only a warning. */
static void cache_invalidate(struct cli *c, const char *sn, int removed)
{
    redisReply *rep;
    if(removed)
        rep = cli_redis_cmd(c, "DEL device:%s calib:%s online:%s realtime:%s", sn, sn, sn, sn);
    else
        rep = cli_redis_cmd(c, "DEL device:%s calib:%s", sn, sn);
    if(!rep)
        cli_warn("Redis cache keys of %s not cleared (%s); running mcsd instances still reload "
                 "the device from PostgreSQL",
                 sn, c->redis_err);
    cli_reply_free(rep);
}

static cJSON *jcell(const PGresult *r, int row, int i, enum coltype t)
{
    const char *v;
    if(PQgetisnull(r, row, i))
        return cJSON_CreateNull();
    v = PQgetvalue(r, row, i);
    if(t == CT_BOOL)
        return cJSON_CreateBool(v[0] == 't');
    if(t == CT_NUM)
        return cli_jnum_or_str(v);
    return cJSON_CreateString(v);
}

static const char *tcell(const PGresult *r, int row, int i, enum coltype t)
{
    if(PQgetisnull(r, row, i))
        return "-";
    if(t == CT_BOOL)
        return PQgetvalue(r, row, i)[0] == 't' ? "yes" : "no";
    return PQgetvalue(r, row, i);
}

/* SELECT <cols> FROM devices [WHERE sn = $1] ORDER BY sn, into buf. */
static int select_sql(char *buf, size_t n, const struct col *cols, size_t ncols, int one)
{
    size_t len = 0;
    int rc = cli_sql_cat(buf, n, &len, "SELECT ");
    for(size_t i = 0; !rc && i < ncols; i++)
        rc = cli_sql_cat(buf, n, &len, "%s%s", i ? ", " : "", cols[i].expr);
    if(!rc)
        rc = cli_sql_cat(buf, n, &len, " FROM devices%s ORDER BY sn", one ? " WHERE sn = $1" : "");
    return rc;
}

static int cmd_add(struct cli *c, const struct cli_args *a)
{
    const char *vals[NDEVOPTS + 1];
    char sql[1024], pw[17];
    size_t len = 0;
    int n = 1, rc;
    PGresult *r = NULL;

    vals[0] = a->sn;
    rc = cli_sql_cat(sql, sizeof(sql), &len, "INSERT INTO devices (sn");
    for(size_t i = 0; !rc && i < NDEVOPTS; i++)
        if(a->set[i])
            rc = cli_sql_cat(sql, sizeof(sql), &len, ", %s", devopts[i].column);
    if(!rc)
        rc = cli_sql_cat(sql, sizeof(sql), &len, ") VALUES ($1");
    for(size_t i = 0; !rc && i < NDEVOPTS; i++)
        if(a->set[i]) {
            vals[n++] = a->val[i];
            rc = cli_sql_cat(sql, sizeof(sql), &len, ", $%d", n);
        }
    if(!rc)
        rc = cli_sql_cat(sql, sizeof(sql), &len, ")");
    if(rc)
        goto out;
    rc = cli_db_open(c);
    if(rc)
        goto out;
    /* SNs are unique ignoring case, as in the API (migration 065). */
    rc = cli_pg_query(c, "SELECT 1 FROM devices WHERE lower(sn) = lower($1)", 1, vals, &r);
    if(!rc && PQntuples(r))
        rc = MCS_EDUP;
    PQclear(r);
    r = NULL;
    if(!rc)
        rc = cli_pg_query(c, sql, n, vals, &r);
    if(rc == MCS_EDUP)
        cli_fail(rc, "device %s already exists, or one whose SN differs only in case (change it "
                     "with `mcs device set`)",
                 a->sn);
    if(rc)
        goto out;
    printf("device %s added\n", a->sn);
    printf("mqtt username: device_%s\n", a->sn);
    printf("mqtt client id: device_%s\n", a->sn);
    if(!c->cfg.vendor_secret[0])
        cli_warn("VENDOR_SECRET is not set, so no MQTT password is shown; set it to the value "
                 "the broker uses and run `mcs device password %s`",
                 a->sn);
    else if(!mcs_device_password(a->sn, c->cfg.vendor_secret, pw))
        printf("mqtt password: %s\n", pw);
    fflush(stdout);
    cache_invalidate(c, a->sn, 0);
out:
    PQclear(r);
    return rc;
}

static int cmd_set(struct cli *c, const struct cli_args *a)
{
    const char *vals[NDEVOPTS + 1];
    char sql[1024];
    size_t len = 0;
    int n = 1, rc, in_tx = 0;
    PGresult *r = NULL;

    if(!a->nset) {
        rc = cli_fail(MCS_EINVAL,
                      "`mcs device set %s` needs at least one option to change "
                      "(see `mcs --help`)",
                      a->sn);
        goto out;
    }
    vals[0] = a->sn;
    rc = cli_sql_cat(sql, sizeof(sql), &len, "UPDATE devices SET ");
    for(size_t i = 0; !rc && i < NDEVOPTS; i++)
        if(a->set[i]) {
            vals[n++] = a->val[i];
            rc = cli_sql_cat(sql, sizeof(sql), &len, "%s = $%d, ", devopts[i].column, n);
        }
    if(!rc)
        rc = cli_sql_cat(sql, sizeof(sql), &len,
                         "updated_at = now() WHERE sn = $1 RETURNING low_limit, high_limit");
    if(rc)
        goto out;
    rc = cli_db_open(c);
    if(rc)
        goto out;
    /* One transaction, so that a change leaving LOW at or above HIGH (one of
     * the two given, the other already stored) is never visible to mcsd. */
    rc = cli_pg_simple(c, "BEGIN");
    if(rc)
        goto out;
    in_tx = 1;
    rc = cli_pg_query(c, sql, n, vals, &r);
    if(rc)
        goto out;
    if(PQntuples(r) == 0) {
        rc = cli_fail(MCS_ENOTFOUND, "no device %s", a->sn);
        goto out;
    }
    if((a->set[OPT_LOW] || a->set[OPT_HIGH]) && !PQgetisnull(r, 0, 0) && !PQgetisnull(r, 0, 1) &&
       !(strtod(PQgetvalue(r, 0, 0), NULL) < strtod(PQgetvalue(r, 0, 1), NULL))) {
        /* Both given and crossed was refused by parse_args, so one was. */
        if(a->set[OPT_LOW])
            rc = cli_fail(MCS_EINVAL,
                          "--low %s must be below the high limit %s of device %s; "
                          "nothing changed",
                          PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1), a->sn);
        else
            rc = cli_fail(MCS_EINVAL,
                          "--high %s must be above the low limit %s of device %s; "
                          "nothing changed",
                          PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 0), a->sn);
        goto out;
    }
    rc = cli_pg_simple(c, "COMMIT");
    in_tx = 0;
    if(rc)
        goto out;
    printf("device %s updated\n", a->sn);
    fflush(stdout);
    cache_invalidate(c, a->sn, 0);
out:
    PQclear(r);
    if(in_tx)
        cli_pg_simple(c, "ROLLBACK");
    return rc;
}

static int set_enabled(struct cli *c, const struct cli_args *a, int on)
{
    const char *vals[2] = {a->sn, on ? "true" : "false"};
    PGresult *r = NULL;
    int rc = cli_db_open(c);
    if(rc)
        goto out;
    rc = cli_pg_query(c, "UPDATE devices SET enabled = $2, updated_at = now() WHERE sn = $1", 2,
                      vals, &r);
    if(rc)
        goto out;
    if(!strcmp(PQcmdTuples(r), "0")) {
        rc = cli_fail(MCS_ENOTFOUND, "no device %s", a->sn);
        goto out;
    }
    printf("device %s %s\n", a->sn, on ? "enabled" : "disabled");
    fflush(stdout);
    cache_invalidate(c, a->sn, 0);
out:
    PQclear(r);
    return rc;
}

static int cmd_enable(struct cli *c, const struct cli_args *a)
{
    return set_enabled(c, a, 1);
}

static int cmd_disable(struct cli *c, const struct cli_args *a)
{
    return set_enabled(c, a, 0);
}

static int cmd_del(struct cli *c, const struct cli_args *a)
{
    const char *vals[1] = {a->sn};
    PGresult *r = NULL;
    int rc = cli_db_open(c);
    if(rc)
        goto out;
    rc = cli_pg_query(c, "DELETE FROM devices WHERE sn = $1", 1, vals, &r);
    if(rc)
        goto out;
    if(!strcmp(PQcmdTuples(r), "0")) {
        rc = cli_fail(MCS_ENOTFOUND, "no device %s", a->sn);
        goto out;
    }
    printf("device %s deleted\n", a->sn);
    fflush(stdout);
    cache_invalidate(c, a->sn, 1);
out:
    PQclear(r);
    return rc;
}

static int cmd_list(struct cli *c, const struct cli_args *a)
{
    char sql[1024];
    size_t w[NCOLS(list_cols)];
    PGresult *r = NULL;
    cJSON *arr = NULL;
    int rc, rows;

    rc = select_sql(sql, sizeof(sql), list_cols, NCOLS(list_cols), 0);
    if(!rc)
        rc = cli_db_open(c);
    if(!rc)
        rc = cli_pg_query(c, sql, 0, NULL, &r);
    if(rc)
        goto out;
    rows = PQntuples(r);
    if(a->json) {
        arr = cJSON_CreateArray();
        rc = arr ? 0 : MCS_ENOMEM;
        for(int row = 0; !rc && row < rows; row++) {
            cJSON *o = cJSON_CreateObject();
            rc = cli_jadd(arr, NULL, o);
            for(size_t i = 0; !rc && i < NCOLS(list_cols); i++)
                rc = cli_jadd(o, list_cols[i].key, jcell(r, row, (int)i, list_cols[i].type));
        }
        if(!rc)
            rc = cli_print_json(arr);
        goto out;
    }
    for(size_t i = 0; i < NCOLS(list_cols); i++) {
        w[i] = cli_dwidth(list_cols[i].head);
        for(int row = 0; row < rows; row++) {
            size_t cw = cli_dwidth(tcell(r, row, (int)i, list_cols[i].type));
            if(cw > w[i])
                w[i] = cw;
        }
    }
    for(int row = -1; row < rows; row++) {
        for(size_t i = 0; i < NCOLS(list_cols); i++) {
            const char *s = row < 0 ? list_cols[i].head : tcell(r, row, (int)i, list_cols[i].type);
            fputs(s, stdout);
            if(i + 1 < NCOLS(list_cols))
                cli_pad(w[i] - cli_dwidth(s) + 2);
        }
        fputc('\n', stdout);
    }
    if(!rows)
        fputs("(no devices; add one with `mcs device add SN`)\n", stdout);
out:
    cJSON_Delete(arr);
    PQclear(r);
    return rc;
}

/* Live state of one device from Redis for `device show`. */
struct live {
    int ok; /* Redis answered */
    int online;
    long long ttl;  /* seconds left of online:{sn}, -1 none */
    redisReply *rt; /* GET realtime:{sn}, a string or nil */
};

static void live_read(struct cli *c, const char *sn, struct live *l)
{
    redisReply *rep = NULL;
    memset(l, 0, sizeof(*l));
    l->ttl = -1;
    rep = cli_redis_cmd(c, "EXISTS online:%s", sn);
    if(!rep)
        goto out;
    l->online = rep->type == REDIS_REPLY_INTEGER && rep->integer > 0;
    cli_reply_free(rep);
    rep = cli_redis_cmd(c, "TTL online:%s", sn);
    if(!rep)
        goto out;
    if(rep->type == REDIS_REPLY_INTEGER && rep->integer >= 0)
        l->ttl = rep->integer;
    l->rt = cli_redis_cmd(c, "GET realtime:%s", sn);
    if(!l->rt)
        goto out;
    l->ok = 1;
out:
    cli_reply_free(rep);
    if(!l->ok)
        cli_warn("Redis unreachable (%s): online state and latest reading unknown", c->redis_err);
}

static int cmd_show(struct cli *c, const struct cli_args *a)
{
    char sql[1024];
    const char *vals[1] = {a->sn};
    PGresult *r = NULL;
    cJSON *o = NULL, *rt = NULL;
    struct live l;
    double recv, lost, loss = -1;
    int rc, ircv = -1, ilost = -1;

    memset(&l, 0, sizeof(l));
    rc = select_sql(sql, sizeof(sql), show_cols, NCOLS(show_cols), 1);
    if(!rc)
        rc = cli_db_open(c);
    if(!rc)
        rc = cli_pg_query(c, sql, 1, vals, &r);
    if(rc)
        goto out;
    if(PQntuples(r) == 0) {
        rc = cli_fail(MCS_ENOTFOUND, "no device %s", a->sn);
        goto out;
    }
    for(size_t i = 0; i < NCOLS(show_cols); i++) {
        if(!strcmp(show_cols[i].key, "pkt_recv"))
            ircv = (int)i;
        if(!strcmp(show_cols[i].key, "pkt_lost"))
            ilost = (int)i;
    }
    /* Loss as a share of what the device sent: lost / (received + lost). */
    recv = strtod(PQgetvalue(r, 0, ircv), NULL);
    lost = strtod(PQgetvalue(r, 0, ilost), NULL);
    if(recv + lost > 0)
        loss = 100.0 * lost / (recv + lost);
    live_read(c, a->sn, &l);
    if(l.ok && l.rt->type == REDIS_REPLY_STRING && l.rt->len <= REALTIME_MAX)
        rt = cJSON_ParseWithLength(l.rt->str, l.rt->len);

    if(a->json) {
        o = cJSON_CreateObject();
        rc = o ? 0 : MCS_ENOMEM;
        for(size_t i = 0; !rc && i < NCOLS(show_cols); i++)
            rc = cli_jadd(o, show_cols[i].key, jcell(r, 0, (int)i, show_cols[i].type));
        if(!rc)
            rc = cli_jadd(o, "packet_loss_pct",
                          loss < 0 ? cJSON_CreateNull() : cJSON_CreateNumber(loss));
        if(!rc)
            rc = cli_jadd(o, "online", l.ok ? cJSON_CreateBool(l.online) : cJSON_CreateNull());
        if(!rc)
            rc = cli_jadd(o, "online_ttl_s",
                          l.ok && l.online && l.ttl >= 0 ? cJSON_CreateNumber((double)l.ttl)
                                                         : cJSON_CreateNull());
        if(!rc) {
            rc = cli_jadd(o, "realtime", rt ? rt : cJSON_CreateNull());
            rt = NULL; /* owned by o now, or freed by jadd */
        }
        if(!rc)
            rc = cli_print_json(o);
        goto out;
    }
    for(size_t i = 0; i < NCOLS(show_cols); i++) {
        printf("%-15s %s\n", show_cols[i].head, tcell(r, 0, (int)i, show_cols[i].type));
    }
    if(loss < 0)
        printf("%-15s -\n", "packet_loss");
    else
        printf("%-15s %.2f %%\n", "packet_loss", loss);
    if(!l.ok)
        printf("%-15s unknown (Redis unreachable)\n", "online");
    else if(l.online && l.ttl >= 0)
        printf("%-15s yes (expires in %lld s)\n", "online", l.ttl);
    else
        printf("%-15s %s\n", "online", l.online ? "yes" : "no");
    if(rt) {
        char *s = cJSON_PrintUnformatted(rt);
        if(!s) {
            rc = MCS_ENOMEM;
            goto out;
        }
        printf("%-15s %s\n", "realtime", s);
        cJSON_free(s);
    }
    else if(l.ok && l.rt->type == REDIS_REPLY_STRING)
        printf("%-15s (not JSON, %zu bytes)\n", "realtime", l.rt->len);
    else
        printf("%-15s -\n", "realtime");
out:
    cJSON_Delete(rt);
    cJSON_Delete(o);
    cli_reply_free(l.rt);
    PQclear(r);
    return rc;
}

static int cmd_password(struct cli *c, const struct cli_args *a)
{
    const char *vals[1] = {a->sn};
    PGresult *r = NULL;
    char pw[17];
    int rc = 0;

    if(!c->cfg.vendor_secret[0]) {
        rc = cli_fail(MCS_ECONFIG, "VENDOR_SECRET is not set: device passwords are derived from it "
                                   "(set it to the value the broker uses)");
        goto out;
    }
    rc = cli_db_open(c);
    if(!rc)
        rc = cli_pg_query(c, "SELECT 1 FROM devices WHERE sn = $1", 1, vals, &r);
    if(rc)
        goto out;
    if(PQntuples(r) == 0) {
        rc =
            cli_fail(MCS_ENOTFOUND, "no device %s (add it with `mcs device add %s`)", a->sn, a->sn);
        goto out;
    }
    rc = mcs_device_password(a->sn, c->cfg.vendor_secret, pw);
    if(rc)
        goto out;
    printf("%s\n", pw);
out:
    PQclear(r);
    return rc;
}

/* Cross-check of `device add/set` options given together. */
static int check_limits(const struct cli_args *a)
{
    if(a->set[OPT_LOW] && a->set[OPT_HIGH] && a->val[OPT_LOW] && a->val[OPT_HIGH] &&
       !(a->num[OPT_LOW] < a->num[OPT_HIGH]))
        return cli_fail(MCS_EINVAL, "--low %s must be below --high %s", a->raw[OPT_LOW],
                        a->raw[OPT_HIGH]);
    return 0;
}

static const struct cli_cmd device_cmds[] = {
    {"add", CLI_A_SN | CLI_A_OPTS, cmd_add},
    {"set", CLI_A_SN | CLI_A_OPTS, cmd_set},
    {"enable", CLI_A_SN, cmd_enable},
    {"disable", CLI_A_SN, cmd_disable},
    {"del", CLI_A_SN, cmd_del},
    {"delete", CLI_A_SN, cmd_del},
    {"list", CLI_A_JSON, cmd_list},
    {"show", CLI_A_SN | CLI_A_JSON, cmd_show},
    {"password", CLI_A_SN, cmd_password},
};

const struct cli_group mcs_group_device = {
    .name = "device",
    .cmds = device_cmds,
    .ncmds = sizeof(device_cmds) / sizeof(device_cmds[0]),
    .opts = devopts,
    .nopts = NDEVOPTS,
    .check = check_limits,
    .nosub = "`mcs device` needs a subcommand: add, set, enable, disable, del, list, show or "
             "password",
    .usage = "Device registry (every running mcsd picks a change up at once):\n"
             "  mcs device add SN [OPTIONS]   register a device, print its MQTT credentials\n"
             "  mcs device set SN OPTIONS     change only the given settings\n"
             "  mcs device disable SN         drop its readings from now on\n"
             "  mcs device enable SN          accept its readings again\n"
             "  mcs device del SN             remove it (its stored readings stay)\n"
             "  mcs device list [--json]      all devices\n"
             "  mcs device show SN [--json]   one device with its live state from Redis\n"
             "  mcs device password SN        print its MQTT password (needs VENDOR_SECRET)\n",
    .detail = "SN: 1 to 32 of A-Z a-z 0-9 _ -. Device OPTIONS (--opt VALUE or --opt=VALUE):\n"
              "  --name TEXT        display name, at most 64 bytes\n"
              "  --location TEXT    where it is installed, at most 128 bytes\n"
              "  --k NUM, --b NUM   ppm = k * v_raw + b + t_comp * (temp - t_ref)\n"
              "  --t-ref NUM        reference temperature in deg C (default 25)\n"
              "  --t-comp NUM       temperature coefficient (default 0)\n"
              "  --high NUM|none    HIGH alarm above this value (level 1)\n"
              "  --high2 NUM|none   level-2 HIGH limit; --low2 NUM|none level-2 LOW limit\n"
              "  --hysteresis NUM|none  clearing band in the unit (default 2 % of the limit)\n"
              "  --low NUM|none     LOW alarm below this value; must be below --high\n"
              "  --range-max NUM    sensor range maximum, > 0 (default 50000)\n"
              "  --unit TEXT        unit (default ppm), at most 16 bytes\n",
};
