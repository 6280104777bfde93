/* mcs_alarm.c - the alarm commands of `mcs` (issue #7, docs/ALARMS.md):
 *   mcs config alarm show
 *   mcs config alarm set KEY JSON            (KEY: general or a channel name)
 *   mcs config alarm set-field KEY FIELD VALUE [--secret]
 *   mcs alarm test CHANNEL [--to RECIPIENTS]
 *   mcs alarm ack ID [--user NAME] [--note TEXT]
 * Secrets (password, secret, access_key_secret, or --secret) are stored
 * encrypted with MCS_SECRET_KEY (src/common/secret.h) and never printed.
 * Owns its SQL; tells mcsd nothing directly (mcsd re-reads system_config).
 * Thread: single-threaded. */
#include "conn.h"
#include "err.h"
#include "jsoncheck.h"
#include "mailaddr.h"
#include "mcs_util.h"
#include "notify_chan.h"
#include "secret.h"

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const secret_fields[] = {"password", "secret", "access_key_secret", NULL};

static int is_secret_field(const char *f)
{
    for(int i = 0; secret_fields[i]; i++)
        if(!strcmp(f, secret_fields[i]))
            return 1;
    return 0;
}

static int err_out(int rc, const char *msg, const char *arg)
{
    fprintf(stderr, "mcs: %s%s%s\n", msg, arg ? ": " : "", arg ? arg : "");
    return rc;
}

/* The email channel's from and to as the API checks them (issue #16): one
 * address each, so nothing can add a header line. 0 or MCS_EINVAL (said). */
static int mail_fields_ok(const char *k, const cJSON *obj)
{
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(obj, "from");
    const cJSON *to = cJSON_GetObjectItemCaseSensitive(obj, "to");
    char bad[300];
    if(strcmp(k, "email"))
        return 0;
    if(cJSON_IsString(from) && from->valuestring[0] && !mcs_mail_addr_valid(from->valuestring))
        return err_out(MCS_EINVAL, "from must be one e-mail address such as alarm@example.com",
                       from->valuestring);
    if(cJSON_IsString(to) && to->valuestring[0] &&
       !mcs_mail_list_valid(to->valuestring, bad, sizeof(bad)))
        return err_out(MCS_EINVAL, "to must be e-mail addresses separated by ';'", bad);
    return 0;
}

static int valid_key(const char *k)
{
    if(!strcmp(k, "general"))
        return 1;
    return notify_channel_find(k) != NULL;
}

static void full_key(const char *k, char *out, size_t n)
{
    snprintf(out, n, "alarm.%s%s", strcmp(k, "general") ? "channel." : "", k);
}

/* Encrypts every plain secret field of obj in place. */
static int encrypt_secrets(cJSON *obj, const struct mcs_secret_key *key, int allow_plain)
{
    cJSON *it;
    cJSON_ArrayForEach(it, obj)
    {
        if(!it->string || !is_secret_field(it->string) || !cJSON_IsString(it) ||
           !*it->valuestring || secret_is_encrypted(it->valuestring))
            continue;
        if(!key->set) {
            if(allow_plain)
                continue;
            return err_out(MCS_ECONFIG,
                           "MCS_SECRET_KEY (or MCS_SECRET_KEY_FILE) is not set: refusing to store "
                           "a secret in plain text (--allow-plain to insist)",
                           it->string);
        }
        size_t n = secret_enc_len(strlen(it->valuestring));
        char *enc = malloc(n);
        if(!enc)
            return MCS_ENOMEM;
        int rc = secret_encrypt(key, it->valuestring, enc, n);
        if(!rc)
            cJSON_SetValuestring(it, enc);
        free(enc);
        if(rc)
            return rc;
    }
    return 0;
}

static PGconn *db(const struct mcs_config *cfg)
{
    char err[512];
    PGconn *pg = mcs_pg_connect(cfg, "mcs", err, sizeof(err));
    if(!pg)
        err_out(MCS_EDB, "database", err);
    return pg;
}

static int put(PGconn *pg, const char *key, const char *json)
{
    const char *p[2] = {key, json};
    PGresult *r = PQexecParams(pg,
                               "INSERT INTO system_config (key, value) VALUES ($1, $2::jsonb)"
                               " ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value,"
                               " updated_at = now()",
                               2, NULL, p, NULL, NULL, 0);
    int rc = PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : MCS_EDB;
    if(rc)
        err_out(rc, "cannot store the setting", PQresultErrorMessage(r));
    PQclear(r);
    return rc;
}

static cJSON *get(PGconn *pg, const char *key)
{
    const char *p[1] = {key};
    cJSON *v = NULL;
    PGresult *r = PQexecParams(pg, "SELECT value::text FROM system_config WHERE key = $1", 1,
                               NULL, p, NULL, NULL, 0);
    if(PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        v = cJSON_Parse(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

static int cmd_show(PGconn *pg)
{
    PGresult *r = PQexec(pg, "SELECT key, value::text FROM system_config WHERE key LIKE 'alarm.%'"
                             " ORDER BY key");
    if(PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        return err_out(MCS_EDB, "cannot read system_config", NULL);
    }
    for(int i = 0; i < PQntuples(r); i++) {
        cJSON *v = cJSON_Parse(PQgetvalue(r, i, 1));
        cJSON *it;
        cJSON_ArrayForEach(it, v)
        {
            if(it->string && is_secret_field(it->string) && cJSON_IsString(it) &&
               *it->valuestring)
                cJSON_SetValuestring(it, secret_is_encrypted(it->valuestring) ? "********"
                                                                              : "******** (plain)");
        }
        char *s = cJSON_PrintUnformatted(v);
        printf("%s %s\n", PQgetvalue(r, i, 0), s ? s : PQgetvalue(r, i, 1));
        free(s);
        cJSON_Delete(v);
    }
    PQclear(r);
    return 0;
}

static int cmd_test(const struct mcs_config *cfg, PGconn *pg, const struct mcs_secret_key *key,
                    const char *chan, const char *to)
{
    char fk[64];
    const struct notify_channel *ch = notify_channel_find(chan);
    struct notify_msg m;
    struct notify_result res;
    cJSON *c;

    if(!ch)
        return err_out(MCS_EINVAL, "unknown channel (email, dingtalk, feishu, wecom, webhook, sms)",
                       chan);
    full_key(chan, fk, sizeof(fk));
    c = get(pg, fk);
    if(!c)
        return err_out(MCS_ENOTFOUND, "channel not configured", fk);
    memset(&m, 0, sizeof(m));
    snprintf(m.event, sizeof(m.event), "test");
    snprintf(m.sn, sizeof(m.sn), "TEST0001");
    snprintf(m.name, sizeof(m.name), "测试设备");
    snprintf(m.location, sizeof(m.location), "测试位置");
    snprintf(m.type, sizeof(m.type), "HIGH");
    snprintf(m.category, sizeof(m.category), "gas");
    snprintf(m.val, sizeof(m.val), "123.4");
    snprintf(m.threshold, sizeof(m.threshold), "100");
    snprintf(m.unit, sizeof(m.unit), "ppm");
    snprintf(m.time, sizeof(m.time), "now");
    m.level = 1;
    m.recipients = to;
    memset(&res, 0, sizeof(res));
    curl_global_init(CURL_GLOBAL_DEFAULT);
    ch->send(c, key, &m, cfg->notify_timeout_ms, &res);
    curl_global_cleanup();
    cJSON_Delete(c);
    printf("%s: %s (%s)\n", chan, res.ok ? "sent" : "FAILED", res.detail);
    return res.ok ? 0 : MCS_EIO;
}

static int cmd_ack(PGconn *pg, const char *id, const char *user, const char *note)
{
    const char *p[3] = {id, user, note};
    char *end;
    strtoll(id, &end, 10);
    if(!*id || *end)
        return err_out(MCS_EINVAL, "alarm id must be a number", id);
    PGresult *r = PQexecParams(pg,
                               "SELECT state, ack_by, ack_at FROM mcs_alarm_ack($1::bigint, $2, $3)"
                               " WHERE id IS NOT NULL",
                               3, NULL, p, NULL, NULL, 0);
    int rc = 0;
    if(PQresultStatus(r) != PGRES_TUPLES_OK)
        rc = err_out(MCS_EDB, "acknowledge failed", PQresultErrorMessage(r));
    else if(PQntuples(r) == 0)
        rc = err_out(MCS_ENOTFOUND, "no such alarm", id);
    else
        printf("alarm %s: %s by %s at %s\n", id, PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1),
               PQgetvalue(r, 0, 2));
    PQclear(r);
    return rc;
}

/* Runs `mcs config alarm WORDS...` (cfgmode) or `mcs alarm SUB WORDS...`
 * (sub given). Returns 0 or a negative MCS_E code, message printed. */
static int alarm_run(const struct mcs_config *cfg, int cfgmode, const char *sub, int argc,
                     char **argv)
{
    struct mcs_secret_key key;
    PGconn *pg = NULL;
    int rc = 0, secret = 0, allow_plain = 0;
    const char *user = "cli", *note = NULL, *to = NULL;
    const char *pos[6] = {0};
    int npos = 0;

    if(sub)
        pos[npos++] = sub;
    for(int i = 0; i < argc; i++) {
        if(!strcmp(argv[i], "--secret"))
            secret = 1;
        else if(!strcmp(argv[i], "--allow-plain"))
            allow_plain = 1;
        else if(!strcmp(argv[i], "--user") && i + 1 < argc)
            user = argv[++i];
        else if(!strcmp(argv[i], "--note") && i + 1 < argc)
            note = argv[++i];
        else if(!strcmp(argv[i], "--to") && i + 1 < argc)
            to = argv[++i];
        else if(npos < 6)
            pos[npos++] = argv[i];
        else
            return err_out(MCS_EINVAL, "too many arguments", argv[i]);
    }
    if(!npos)
        return err_out(MCS_EINVAL,
                       cfgmode ? "usage: mcs config alarm show | set KEY JSON | set-field KEY "
                                 "FIELD VALUE [--secret]"
                               : "usage: mcs alarm test CHANNEL [--to R] | ack ID [--user U] "
                                 "[--note N]",
                       NULL);
    rc = secret_key_load(&key, cfg->secret_key, cfg->secret_key_file);
    if(rc && rc != MCS_ENOTFOUND)
        return err_out(MCS_ECONFIG, "MCS_SECRET_KEY is not usable", mcs_strerror(rc));
    rc = 0;
    pg = db(cfg);
    if(!pg)
        return MCS_EDB;
    if(cfgmode && !strcmp(pos[0], "show") && npos == 1)
        rc = cmd_show(pg);
    else if(cfgmode && !strcmp(pos[0], "set") && npos == 3) {
        char fk[64], dup[48];
        int fault;
        /* As strict as the API: no repeated key, no \u0000, nothing after. */
        cJSON *v = mcs_json_parse_strict(pos[2], strlen(pos[2]), &fault, dup, sizeof(dup));
        if(!valid_key(pos[1]))
            rc = err_out(MCS_EINVAL, "unknown key (general or a channel name)", pos[1]);
        else if(fault == MCS_JSON_DUP)
            rc = err_out(MCS_EINVAL, "a field is given twice", dup);
        else if(fault == MCS_JSON_NUL)
            rc = err_out(MCS_EINVAL, "strings must not contain \\u0000", NULL);
        else if(!cJSON_IsObject(v))
            rc = err_out(MCS_EINVAL, "the value must be a JSON object", NULL);
        else if(!(rc = mail_fields_ok(pos[1], v)) &&
                !(rc = encrypt_secrets(v, &key, allow_plain))) {
            char *s = cJSON_PrintUnformatted(v);
            full_key(pos[1], fk, sizeof(fk));
            rc = s ? put(pg, fk, s) : MCS_ENOMEM;
            free(s);
        }
        cJSON_Delete(v);
    }
    else if(cfgmode && !strcmp(pos[0], "set-field") && npos == 4) {
        char fk[64];
        if(!valid_key(pos[1]))
            rc = err_out(MCS_EINVAL, "unknown key (general or a channel name)", pos[1]);
        else {
            full_key(pos[1], fk, sizeof(fk));
            cJSON *obj = get(pg, fk);
            if(!obj)
                obj = cJSON_CreateObject();
            cJSON *val = secret || is_secret_field(pos[2]) ? NULL : cJSON_Parse(pos[3]);
            if(!val)
                val = cJSON_CreateString(pos[3]);
            cJSON_DeleteItemFromObjectCaseSensitive(obj, pos[2]);
            cJSON_AddItemToObject(obj, pos[2], val);
            if(secret && !key.set && !allow_plain)
                rc = err_out(MCS_ECONFIG, "MCS_SECRET_KEY is not set: cannot store a secret",
                             NULL);
            else if(secret && key.set) {
                size_t n = secret_enc_len(strlen(pos[3]));
                char *enc = malloc(n);
                rc = enc ? secret_encrypt(&key, pos[3], enc, n) : MCS_ENOMEM;
                if(!rc)
                    cJSON_SetValuestring(val, enc);
                free(enc);
            }
            else
                rc = encrypt_secrets(obj, &key, allow_plain);
            if(!rc && !(rc = mail_fields_ok(pos[1], obj))) {
                char *s = cJSON_PrintUnformatted(obj);
                rc = s ? put(pg, fk, s) : MCS_ENOMEM;
                free(s);
            }
            cJSON_Delete(obj);
        }
    }
    else if(!cfgmode && !strcmp(pos[0], "test") && npos == 2)
        rc = cmd_test(cfg, pg, &key, pos[1], to);
    else if(!cfgmode && !strcmp(pos[0], "ack") && npos == 2)
        rc = cmd_ack(pg, pos[1], user, note);
    else
        rc = err_out(MCS_EINVAL, "unknown alarm command (see docs/ALARMS.md)", pos[0]);
    PQfinish(pg);
    return rc;
}

static int cmd_config_alarm(struct cli *c, const struct cli_args *a)
{
    return alarm_run(&c->cfg, 1, NULL, a->argc, a->argv);
}

static int cmd_alarm_test(struct cli *c, const struct cli_args *a)
{
    return alarm_run(&c->cfg, 0, "test", a->argc, a->argv);
}

static int cmd_alarm_ack(struct cli *c, const struct cli_args *a)
{
    return alarm_run(&c->cfg, 0, "ack", a->argc, a->argv);
}

static const struct cli_cmd alarm_cmds[] = {
    {"test", CLI_A_RAW, cmd_alarm_test},
    {"ack", CLI_A_RAW, cmd_alarm_ack},
};

static const struct cli_cmd config_cmds[] = {
    {"alarm", CLI_A_RAW, cmd_config_alarm},
};

const struct cli_group mcs_group_alarm = {
    "alarm", alarm_cmds, sizeof(alarm_cmds) / sizeof(alarm_cmds[0]), NULL, 0, NULL,
    "`mcs alarm` needs a subcommand: test or ack",
    "Alarms (docs/ALARMS.md):\n"
    "  mcs alarm test CHANNEL [--to R]   send a test message now (email, dingtalk,\n"
    "                                feishu, wecom, webhook, sms)\n"
    "  mcs alarm ack ID [--user U] [--note N]   acknowledge an alarm\n",
    NULL};

const struct cli_group mcs_group_config = {
    "config", config_cmds, sizeof(config_cmds) / sizeof(config_cmds[0]), NULL, 0, NULL,
    "`mcs config` needs a section: alarm",
    "  mcs config alarm show         the alarm settings, secrets masked\n"
    "  mcs config alarm set KEY JSON       KEY: general, email, dingtalk, feishu,\n"
    "                                wecom, webhook or sms\n"
    "  mcs config alarm set-field KEY FIELD VALUE [--secret]\n",
    "Secrets (password, secret, access_key_secret, or --secret) are stored\n"
    "encrypted with MCS_SECRET_KEY or MCS_SECRET_KEY_FILE (64 hex digits or\n"
    "base64 of 32 bytes), the key mcsd and mcs-api read too.\n"};
