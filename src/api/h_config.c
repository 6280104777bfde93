/* h_config.c - configuration endpoints (R-API-2, R-API-6): alarm channels in
 * the manual's §10.2 shape mapped onto the alarm engine's system_config
 * layout (docs/ALARMS.md: alarm.general, alarm.channel.NAME), storage, the
 * dashboard layout and its floor-plan image, and a channel test send through
 * the alarm outbox, delivered by mcsd's notifier like any alarm. Secrets are encrypted at rest
 * (src/common/secret.h), masked in answers, and a PUT that sends the mask
 * back keeps the stored secret.
 * Owns nothing. Thread: the lws loop thread. */
#include "audit.h"
#include "err.h"
#include "handlers.h"
#include "health.h"
#include "jobs.h"
#include "log.h"
#include "mailaddr.h"
#include "notify_chan.h"
#include "reqparse.h"
#include "secret.h"
#include "conn.h"
#include "sysalarm.h"
#include "timeutil.h"

#include <math.h>
#include <stdatomic.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ROBOTS 4
/* A test send waits for mcsd this much beyond NOTIFY_TIMEOUT_MS (its poll,
 * a lease of another request, the outcome's commit). */
#define TEST_WAIT_EXTRA_MS 8000
/* ... and gives up sooner when no mcsd has even taken the row: the job
 * worker also serves logins. */
#define TEST_CLAIM_WAIT_MS 4000
static const char *const robot_names[ROBOTS] = {"dingtalk", "feishu", "wecom", "webhook"};

/* Reads system_config[key] as JSON; an absent key is an empty object. NULL
 * with rs set on a database error. */
static cJSON *cfg_load(struct api_ctx *ctx, struct api_resp *rs, const char *key)
{
    const char *v[1] = {key};
    PGresult *r = api_query(ctx, rs, "SELECT value::text FROM system_config WHERE key = $1", 1, v);
    cJSON *j = NULL;
    if(!r)
        return NULL;
    if(PQntuples(r) == 1)
        j = cJSON_Parse(PQgetvalue(r, 0, 0));
    PQclear(r);
    if(!j || !cJSON_IsObject(j)) {
        cJSON_Delete(j);
        j = cJSON_CreateObject();
    }
    return j;
}

static int cfg_store(struct api_ctx *ctx, struct api_resp *rs, const char *key, const cJSON *val)
{
    char *s = cJSON_PrintUnformatted(val);
    const char *v[2] = {key, s};
    PGresult *r;
    if(!s)
        return api_error(rs, 500, E_INTERNAL, "out of memory"), MCS_ENOMEM;
    r = api_query(ctx, rs,
                  "INSERT INTO system_config (key, value, updated_at) VALUES ($1, $2::jsonb, now()) "
                  "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()",
                  2, v);
    free(s);
    if(!r)
        return MCS_EDB;
    PQclear(r);
    return 0;
}

static const char *jstr(const cJSON *o, const char *k)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void put_str(cJSON *o, const char *k, const char *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    cJSON_AddStringToObject(o, k, v ? v : "");
}

static void put_item(cJSON *o, const char *k, cJSON *v)
{
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    cJSON_AddItemToObject(o, k, v);
}

/* "a; b" -> ["a","b"] with sep ';' or ','. */
static cJSON *split_list(const char *s, char sep)
{
    cJSON *a = cJSON_CreateArray();
    char item[256];
    size_t n = 0;
    if(!s)
        return a;
    for(const char *p = s;; p++) {
        if(*p == sep || !*p) {
            while(n && item[n - 1] == ' ')
                n--;
            item[n] = '\0';
            if(n)
                cJSON_AddItemToArray(a, cJSON_CreateString(item));
            n = 0;
            if(!*p)
                break;
            continue;
        }
        if((*p == ' ' && !n) || n >= sizeof(item) - 1)
            continue;
        item[n++] = *p;
    }
    return a;
}

/* ["a","b"] -> "a<sep>b"; MCS_EINVAL when not an array of plain strings. */
static int join_list(const cJSON *a, const char *sep, char *out, size_t n)
{
    const cJSON *it;
    size_t o = 0;
    out[0] = '\0';
    if(!cJSON_IsArray(a))
        return MCS_EINVAL;
    cJSON_ArrayForEach(it, a)
    {
        if(!cJSON_IsString(it) || !it->valuestring[0] || strpbrk(it->valuestring, ";,\r\n") ||
           strlen(it->valuestring) > 128)
            return MCS_EINVAL;
        o += (size_t)snprintf(out + o, n > o ? n - o : 0, "%s%s", o ? sep : "", it->valuestring);
        if(o >= n)
            return MCS_EINVAL;
    }
    return 0;
}

static cJSON *bool_of(const cJSON *o, const char *k)
{
    return cJSON_CreateBool(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, k)));
}

/* A channel's "recovery" switch (issue #15): on unless stored false. */
static cJSON *recovery_of(const cJSON *o)
{
    return cJSON_CreateBool(!cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "recovery")));
}

static void mask_into(cJSON *out, const char *k, const char *stored)
{
    cJSON_AddStringToObject(out, k, stored && stored[0] ? API_SECRET_MASK : "");
}

/* alarm.general.system with every default filled in (docs/ALARMS.md). */
static cJSON *system_view(const cJSON *general)
{
    const cJSON *sys = cJSON_GetObjectItemCaseSensitive(general, "system");
    const cJSON *nt = cJSON_GetObjectItemCaseSensitive(sys, "notify");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(sys, "health");
    cJSON *o = cJSON_CreateObject(), *n = cJSON_AddObjectToObject(o, "notify"),
          *hv = cJSON_AddObjectToObject(o, "health");
    struct sysalarm_cfg sc;
    char *txt = cJSON_PrintUnformatted(general);
    sysalarm_cfg_parse(&sc, txt);
    free(txt);
    for(const char *const *t = sysalarm_types; *t; t++)
        cJSON_AddBoolToObject(n, *t, !cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(nt, *t)));
    cJSON_AddNumberToObject(o, "unknown_digest_s", sc.unknown_digest_s);
    for(const struct health_field *f = health_fields; f->key; f++) {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(h, f->key);
        cJSON_AddNumberToObject(hv, f->key,
                                cJSON_IsNumber(v) && v->valuedouble >= f->lo &&
                                        v->valuedouble <= f->hi
                                    ? v->valuedouble
                                    : f->def);
    }
    return o;
}

/* The §10.2 view of the stored settings. */
static cJSON *alarm_view(cJSON *general, cJSON *ch[], int nch)
{
    cJSON *o = cJSON_CreateObject(), *e = cJSON_AddObjectToObject(o, "email"),
          *w = cJSON_AddObjectToObject(o, "webhook"), *s = cJSON_AddObjectToObject(o, "sms"),
          *st = cJSON_AddObjectToObject(o, "settings");
    const cJSON *mail = ch[0], *sms = ch[1], *robot = NULL, *sched, *v;
    int robot_i = 3;

    cJSON_AddItemToObject(e, "enabled", bool_of(mail, "enabled"));
    cJSON_AddStringToObject(e, "smtp_host", jstr(mail, "host") ? jstr(mail, "host") : "");
    v = cJSON_GetObjectItemCaseSensitive(mail, "port");
    cJSON_AddNumberToObject(e, "smtp_port", cJSON_IsNumber(v) ? v->valuedouble : 465);
    cJSON_AddStringToObject(e, "ssl", jstr(mail, "security") ? jstr(mail, "security") : "ssl");
    cJSON_AddStringToObject(e, "sender", jstr(mail, "from") ? jstr(mail, "from") : "");
    cJSON_AddStringToObject(e, "smtp_user", jstr(mail, "user") ? jstr(mail, "user") : "");
    mask_into(e, "smtp_pass", jstr(mail, "password"));
    cJSON_AddItemToObject(e, "recipients", split_list(jstr(mail, "to"), ';'));
    cJSON_AddItemToObject(e, "recovery", recovery_of(mail));

    /* The robot shown is the enabled one, else the first with a URL. */
    for(int i = 0; i < ROBOTS && !robot; i++)
        if(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ch[2 + i], "enabled"))) {
            robot = ch[2 + i];
            robot_i = i;
        }
    for(int i = 0; i < ROBOTS && !robot; i++)
        if(jstr(ch[2 + i], "url") && jstr(ch[2 + i], "url")[0]) {
            robot = ch[2 + i];
            robot_i = i;
        }
    if(!robot)
        robot = ch[2 + 3];
    cJSON_AddItemToObject(w, "enabled", bool_of(robot, "enabled"));
    cJSON_AddStringToObject(w, "platform", robot_i == 3 ? "custom" : robot_names[robot_i]);
    {
        char url[1100];
        rq_url_mask(jstr(robot, "url") ? jstr(robot, "url") : "", url, sizeof(url));
        cJSON_AddStringToObject(w, "url", url);
    }
    mask_into(w, "secret", jstr(robot, "secret"));
    cJSON_AddItemToObject(w, "at_mobiles",
                          split_list(jstr(robot, robot_i == 2 ? "mentioned_mobiles" : "at_mobiles"),
                                     ','));
    cJSON_AddStringToObject(w, "template", jstr(robot, "template") ? jstr(robot, "template") : "");
    cJSON_AddItemToObject(w, "recovery", recovery_of(robot));

    cJSON_AddItemToObject(s, "enabled", bool_of(sms, "enabled"));
    cJSON_AddStringToObject(s, "access_key_id",
                            jstr(sms, "access_key_id") ? jstr(sms, "access_key_id") : "");
    mask_into(s, "access_key_secret", jstr(sms, "access_key_secret"));
    cJSON_AddStringToObject(s, "sign_name", jstr(sms, "sign_name") ? jstr(sms, "sign_name") : "");
    cJSON_AddStringToObject(s, "template_code",
                            jstr(sms, "template_code") ? jstr(sms, "template_code") : "");
    cJSON_AddItemToObject(s, "phones", split_list(jstr(sms, "phones"), ','));
    cJSON_AddItemToObject(s, "recovery", recovery_of(sms));

    v = cJSON_GetObjectItemCaseSensitive(general, "debounce_min");
    cJSON_AddNumberToObject(st, "debounce_minutes", cJSON_IsNumber(v) ? v->valuedouble : 10);
    sched = cJSON_GetObjectItemCaseSensitive(general, "schedule");
    cJSON_AddItemToObject(st, "enable_schedule", bool_of(sched, "enabled"));
    v = cJSON_GetObjectItemCaseSensitive(sched, "days");
    cJSON_AddItemToObject(st, "schedule_days",
                          cJSON_IsArray(v) ? cJSON_Duplicate(v, 1) : cJSON_CreateArray());
    cJSON_AddStringToObject(st, "schedule_start",
                            jstr(sched, "start") ? jstr(sched, "start") : "00:00");
    cJSON_AddStringToObject(st, "schedule_end", jstr(sched, "end") ? jstr(sched, "end") : "24:00");
    cJSON_AddStringToObject(st, "timezone", jstr(sched, "tz") ? jstr(sched, "tz") : "Asia/Shanghai");
    cJSON_AddItemToObject(o, "system", system_view(general));
    (void)nch;
    return o;
}

/* Keys of the stored objects, in the order alarm_view takes them. */
static const char *const ch_keys[] = {"alarm.channel.email",  "alarm.channel.sms",
                                      "alarm.channel.dingtalk", "alarm.channel.feishu",
                                      "alarm.channel.wecom",  "alarm.channel.webhook"};
#define NCH 6

static int load_all(struct api_ctx *ctx, struct api_resp *rs, cJSON **general, cJSON *ch[NCH])
{
    *general = cfg_load(ctx, rs, "alarm.general");
    if(!*general)
        return MCS_EDB;
    for(int i = 0; i < NCH; i++) {
        ch[i] = cfg_load(ctx, rs, ch_keys[i]);
        if(!ch[i]) {
            for(int k = 0; k < i; k++)
                cJSON_Delete(ch[k]);
            cJSON_Delete(*general);
            return MCS_EDB;
        }
    }
    return 0;
}

static void free_all(cJSON *general, cJSON *ch[NCH])
{
    cJSON_Delete(general);
    for(int i = 0; i < NCH; i++)
        cJSON_Delete(ch[i]);
}

int h_cfg_alarm_get(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    cJSON *general, *ch[NCH], *o;
    if(load_all(ctx, rs, &general, ch))
        return 0;
    o = alarm_view(general, ch, NCH);
    free_all(general, ch);
    return api_json(rs, 200, o);
}

/* A secret field of a PUT: the mask keeps what is stored, "" clears it,
 * anything else is encrypted. */
static int put_secret(struct api_ctx *ctx, cJSON *stored, const char *field, const cJSON *in,
                      char *err, size_t errn)
{
    char *enc;
    size_t n;
    if(!in)
        return 0;
    if(!cJSON_IsString(in)) {
        snprintf(err, errn, "%s must be a string", field);
        return MCS_EINVAL;
    }
    if(!strcmp(in->valuestring, API_SECRET_MASK))
        return 0;
    if(!in->valuestring[0]) {
        put_str(stored, field, "");
        return 0;
    }
    if(!ctx->skey.set) {
        snprintf(err, errn, "MCS_SECRET_KEY is not configured: secrets cannot be stored "
                            "encrypted");
        return MCS_EINVAL;
    }
    if(strlen(in->valuestring) > 1024) {
        snprintf(err, errn, "%s is too long", field);
        return MCS_EINVAL;
    }
    n = secret_enc_len(strlen(in->valuestring));
    enc = malloc(n);
    if(!enc || secret_encrypt(&ctx->skey, in->valuestring, enc, n)) {
        free(enc);
        snprintf(err, errn, "cannot encrypt %s", field);
        return MCS_EINVAL;
    }
    put_str(stored, field, enc);
    free(enc);
    return 0;
}

static int opt_str(const cJSON *in, const char *k, size_t max, cJSON *stored, const char *to,
                   char *err, size_t errn)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, k);
    if(!v)
        return 0;
    if(!cJSON_IsString(v) || strlen(v->valuestring) > max ||
       !rq_utf8_valid((const unsigned char *)v->valuestring, strlen(v->valuestring))) {
        snprintf(err, errn, "%s must be a string of at most %zu bytes", k, max);
        return MCS_EINVAL;
    }
    put_str(stored, to, v->valuestring);
    return 0;
}

static int opt_bool(const cJSON *in, const char *k, cJSON *stored, const char *to, char *err,
                    size_t errn)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, k);
    if(!v)
        return 0;
    if(!cJSON_IsBool(v)) {
        snprintf(err, errn, "%s must be true or false", k);
        return MCS_EINVAL;
    }
    put_item(stored, to, cJSON_CreateBool(cJSON_IsTrue(v)));
    return 0;
}

static int opt_list(const cJSON *in, const char *k, const char *sep, cJSON *stored,
                    const char *to, char *err, size_t errn)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(in, k);
    char buf[2048];
    if(!v)
        return 0;
    if(join_list(v, sep, buf, sizeof(buf))) {
        snprintf(err, errn, "%s must be an array of strings", k);
        return MCS_EINVAL;
    }
    put_str(stored, to, buf);
    return 0;
}

static int url_ok(const char *u)
{
    return u && (!strncmp(u, "https://", 8) || !strncmp(u, "http://", 7)) && strlen(u) < 1024 &&
           !strpbrk(u, " \r\n\"<>");
}

static int hhmm_ok(const char *s)
{
    return s && strlen(s) == 5 && s[2] == ':' && s[0] >= '0' && s[0] <= '2' && s[1] >= '0' &&
           s[1] <= '9' && s[3] >= '0' && s[3] <= '5' && s[4] >= '0' && s[4] <= '9' &&
           ((s[0] - '0') * 10 + (s[1] - '0') < 24 || !strcmp(s, "24:00"));
}

/* 1 when a PUT section leaves the stored secret `field` of m in place: it
 * is set, and the request sent no new value (absent or the mask). */
static int secret_kept(const cJSON *m, const char *field, const cJSON *in)
{
    const char *stored = jstr(m, field);
    return stored && stored[0] && (!in || (cJSON_IsString(in) && !strcmp(in->valuestring,
                                                                         API_SECRET_MASK)));
}

/* The SMTP destination of a stored email channel as one string: where its
 * password goes (host, port, user, security). */
static void mail_dest(const cJSON *m, char *out, size_t n)
{
    const cJSON *port = cJSON_GetObjectItemCaseSensitive(m, "port");
    snprintf(out, n, "%s\n%g\n%s\n%s", jstr(m, "host") ? jstr(m, "host") : "",
             cJSON_IsNumber(port) ? port->valuedouble : 0, jstr(m, "user") ? jstr(m, "user") : "",
             jstr(m, "security") ? jstr(m, "security") : "");
}

/* The url of a webhook PUT: sent back as GET masked it, the stored URL
 * (with its token) stays; a URL with the mask in it otherwise would send
 * the robot's token nowhere useful: refused. Else as opt_str. */
static int put_url(const cJSON *w, cJSON *m, char *err, size_t errn)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(w, "url");
    char masked[1100];
    if(cJSON_IsString(v) && strstr(v->valuestring, API_SECRET_MASK)) {
        rq_url_mask(jstr(m, "url") ? jstr(m, "url") : "", masked, sizeof(masked));
        if(!strcmp(v->valuestring, masked))
            return 0;
        snprintf(err, errn, "webhook.url: 修改地址须重新输入完整地址（含 access_token/key）/ "
                            "a changed URL must be entered whole, token included");
        return MCS_EINVAL;
    }
    return opt_str(w, "url", 1023, m, "url", err, errn);
}

/* "section: reason" into err (err may already hold the reason). */
static int section_err(char *err, size_t errn, const char *section, int is_object)
{
    char tmp[200];
    snprintf(tmp, sizeof(tmp), "%.190s", is_object ? err : "must be an object");
    snprintf(err, errn, "%.20s: %.170s", section, tmp);
    return MCS_EINVAL;
}

/* The object k of o, made (replacing a non-object) when missing. */
static cJSON *obj_of(cJSON *o, const char *k)
{
    cJSON *v = cJSON_GetObjectItemCaseSensitive(o, k);
    if(cJSON_IsObject(v))
        return v;
    cJSON_DeleteItemFromObjectCaseSensitive(o, k);
    return cJSON_AddObjectToObject(o, k);
}

/* The "system" section: per-type send switches, the unknown-device digest
 * window and the health thresholds, each within its bounds. */
static int apply_system(const cJSON *in, cJSON *general, char *err, size_t errn)
{
    static const char *const syk[] = {"notify", "unknown_digest_s", "health", NULL};
    const cJSON *nt = cJSON_GetObjectItemCaseSensitive(in, "notify");
    const cJSON *ud = cJSON_GetObjectItemCaseSensitive(in, "unknown_digest_s");
    const cJSON *h = cJSON_GetObjectItemCaseSensitive(in, "health"), *v;
    cJSON *sys;

    if(!cJSON_IsObject(in) || rq_known_fields(in, syk, err, errn))
        return section_err(err, errn, "system", cJSON_IsObject(in));
    sys = obj_of(general, "system");
    if(nt) {
        cJSON *dst;
        if(!cJSON_IsObject(nt))
            return snprintf(err, errn, "system.notify must be an object"), MCS_EINVAL;
        dst = obj_of(sys, "notify");
        cJSON_ArrayForEach(v, nt)
        {
            const char *const *t = sysalarm_types;
            while(*t && strcmp(*t, v->string))
                t++;
            if(!*t)
                return snprintf(err, errn, "system.notify: unknown alarm type %.40s", v->string),
                       MCS_EINVAL;
            if(!cJSON_IsBool(v))
                return snprintf(err, errn, "system.notify.%s must be true or false", *t),
                       MCS_EINVAL;
            put_item(dst, *t, cJSON_CreateBool(cJSON_IsTrue(v)));
        }
    }
    if(ud) {
        if(!cJSON_IsNumber(ud) || ud->valuedouble < SYSALARM_DIGEST_MIN ||
           ud->valuedouble > SYSALARM_DIGEST_MAX)
            return snprintf(err, errn, "system.unknown_digest_s must be in [%d, %d]",
                            SYSALARM_DIGEST_MIN, SYSALARM_DIGEST_MAX),
                   MCS_EINVAL;
        put_item(sys, "unknown_digest_s", cJSON_CreateNumber(ud->valuedouble));
    }
    if(h) {
        cJSON *dst;
        if(!cJSON_IsObject(h))
            return snprintf(err, errn, "system.health must be an object"), MCS_EINVAL;
        dst = obj_of(sys, "health");
        cJSON_ArrayForEach(v, h)
        {
            const struct health_field *f = health_fields;
            while(f->key && strcmp(f->key, v->string))
                f++;
            if(!f->key)
                return snprintf(err, errn, "system.health: unknown field %.40s", v->string),
                       MCS_EINVAL;
            if(!cJSON_IsNumber(v) || v->valuedouble < f->lo || v->valuedouble > f->hi)
                return snprintf(err, errn, "system.health.%s must be in [%g, %g]", f->key, f->lo,
                                f->hi),
                       MCS_EINVAL;
            put_item(dst, f->key, cJSON_CreateNumber(v->valuedouble));
        }
    }
    return 0;
}

static int apply_alarm(struct api_ctx *ctx, const cJSON *in, cJSON *general, cJSON *ch[NCH],
                       int changed[NCH + 1], char *err, size_t errn)
{
    static const char *const top[] = {"email", "webhook", "sms", "settings", "system", NULL};
    static const char *const emk[] = {"enabled", "smtp_host", "smtp_port", "ssl", "sender",
                                      "smtp_user", "smtp_pass", "recipients", "recovery",
                                      NULL};
    static const char *const whk[] = {"enabled", "platform", "url", "secret", "at_mobiles",
                                      "template", "recovery", NULL};
    static const char *const smk[] = {"enabled", "access_key_id", "access_key_secret",
                                      "sign_name", "template_code", "phones", "recovery",
                                      NULL};
    static const char *const stk[] = {"debounce_minutes", "enable_schedule", "schedule_days",
                                      "schedule_start", "schedule_end", "timezone", NULL};
    const cJSON *e = cJSON_GetObjectItemCaseSensitive(in, "email");
    const cJSON *w = cJSON_GetObjectItemCaseSensitive(in, "webhook");
    const cJSON *s = cJSON_GetObjectItemCaseSensitive(in, "sms");
    const cJSON *st = cJSON_GetObjectItemCaseSensitive(in, "settings"), *v;

    if(rq_known_fields(in, top, err, errn))
        return MCS_EINVAL;
    if(e) {
        cJSON *m = ch[0];
        const cJSON *pass_in = cJSON_GetObjectItemCaseSensitive(e, "smtp_pass");
        char dest0[600], dest1[600];
        int pass_kept = secret_kept(m, "password", pass_in);
        if(!cJSON_IsObject(e) || rq_known_fields(e, emk, err, errn))
            return section_err(err, errn, "email", cJSON_IsObject(e));
        mail_dest(m, dest0, sizeof(dest0));
        v = cJSON_GetObjectItemCaseSensitive(e, "sender");
        if(v && (!cJSON_IsString(v) || (v->valuestring[0] && !mcs_mail_addr_valid(v->valuestring))))
            return snprintf(err, errn, "email.sender: 发件人须为一个邮箱地址 / must be one e-mail "
                                       "address such as alarm@example.com"),
                   MCS_EINVAL;
        v = cJSON_GetObjectItemCaseSensitive(e, "recipients");
        if(cJSON_IsArray(v)) {
            const cJSON *a;
            cJSON_ArrayForEach(a, v)
            if(cJSON_IsString(a) && !mcs_mail_addr_valid(a->valuestring))
                return snprintf(err, errn, "email.recipients: '%.80s' 不是邮箱地址 / is not an "
                                           "e-mail address",
                                a->valuestring),
                       MCS_EINVAL;
        }
        if(opt_bool(e, "enabled", m, "enabled", err, errn) ||
           opt_bool(e, "recovery", m, "recovery", err, errn) ||
           opt_str(e, "smtp_host", 255, m, "host", err, errn) ||
           opt_str(e, "sender", 255, m, "from", err, errn) ||
           opt_str(e, "smtp_user", 255, m, "user", err, errn) ||
           opt_list(e, "recipients", "; ", m, "to", err, errn) ||
           put_secret(ctx, m, "password", cJSON_GetObjectItemCaseSensitive(e, "smtp_pass"), err,
                      errn))
            return MCS_EINVAL;
        v = cJSON_GetObjectItemCaseSensitive(e, "smtp_port");
        if(v) {
            if(!cJSON_IsNumber(v) || v->valuedouble < 1 || v->valuedouble > 65535 ||
               v->valuedouble != floor(v->valuedouble))
                return snprintf(err, errn, "email.smtp_port must be 1..65535"), MCS_EINVAL;
            put_item(m, "port", cJSON_CreateNumber(v->valuedouble));
        }
        v = cJSON_GetObjectItemCaseSensitive(e, "ssl");
        if(v) {
            const char *sec = cJSON_IsString(v) ? v->valuestring : NULL;
            if(cJSON_IsBool(v))
                sec = cJSON_IsTrue(v) ? "ssl" : "starttls";
            if(!sec || (strcmp(sec, "ssl") && strcmp(sec, "starttls") && strcmp(sec, "none")))
                return snprintf(err, errn, "email.ssl must be ssl, starttls or none"), MCS_EINVAL;
            put_str(m, "security", sec);
        } else if(!jstr(m, "security")) {
            v = cJSON_GetObjectItemCaseSensitive(m, "port");
            put_str(m, "security", cJSON_IsNumber(v) && v->valuedouble == 587 ? "starttls" : "ssl");
        }
        /* The stored password goes only where it went: a new server, port,
         * account or security needs it typed again (issue #16, defect 8). */
        mail_dest(m, dest1, sizeof(dest1));
        if(pass_kept && strcmp(dest0, dest1))
            return snprintf(err, errn, "email: 修改服务器、端口、账号或加密方式须重新输入密码 / "
                                       "changing smtp_host, smtp_port, smtp_user or ssl needs "
                                       "smtp_pass entered again"),
                   MCS_EINVAL;
        if(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "enabled")) &&
           (!jstr(m, "host") || !jstr(m, "host")[0] || !jstr(m, "to") || !jstr(m, "to")[0]))
            return snprintf(err, errn, "email: enabled needs smtp_host and recipients"), MCS_EINVAL;
        changed[0] = 1;
    }
    if(s) {
        cJSON *m = ch[1];
        if(!cJSON_IsObject(s) || rq_known_fields(s, smk, err, errn))
            return section_err(err, errn, "sms", cJSON_IsObject(s));
        if(opt_bool(s, "enabled", m, "enabled", err, errn) ||
           opt_bool(s, "recovery", m, "recovery", err, errn) ||
           opt_str(s, "access_key_id", 128, m, "access_key_id", err, errn) ||
           opt_str(s, "sign_name", 128, m, "sign_name", err, errn) ||
           opt_str(s, "template_code", 128, m, "template_code", err, errn) ||
           opt_list(s, "phones", ",", m, "phones", err, errn) ||
           put_secret(ctx, m, "access_key_secret",
                      cJSON_GetObjectItemCaseSensitive(s, "access_key_secret"), err, errn))
            return MCS_EINVAL;
        changed[1] = 1;
    }
    if(w) {
        const char *plat;
        char url0[1024];
        int ri = -1, secret_was;
        cJSON *m;
        if(!cJSON_IsObject(w) || rq_known_fields(w, whk, err, errn))
            return section_err(err, errn, "webhook", cJSON_IsObject(w));
        plat = jstr(w, "platform");
        if(!plat)
            plat = "custom";
        for(int i = 0; i < ROBOTS; i++)
            if(!strcmp(plat, robot_names[i]) || (i == 3 && !strcmp(plat, "custom")))
                ri = i;
        if(ri < 0)
            return snprintf(err, errn, "webhook.platform must be dingtalk, feishu, wecom or custom"),
                   MCS_EINVAL;
        m = ch[2 + ri];
        secret_was = secret_kept(m, "secret", cJSON_GetObjectItemCaseSensitive(w, "secret"));
        snprintf(url0, sizeof(url0), "%s", jstr(m, "url") ? jstr(m, "url") : "");
        if(opt_bool(w, "enabled", m, "enabled", err, errn) ||
           opt_bool(w, "recovery", m, "recovery", err, errn) || put_url(w, m, err, errn) ||
           opt_str(w, "template", 4000, m, "template", err, errn) ||
           opt_list(w, "at_mobiles", ",", m, ri == 2 ? "mentioned_mobiles" : "at_mobiles", err,
                    errn) ||
           put_secret(ctx, m, "secret", cJSON_GetObjectItemCaseSensitive(w, "secret"), err, errn))
            return MCS_EINVAL;
        if(jstr(m, "url") && jstr(m, "url")[0] && !url_ok(jstr(m, "url")))
            return snprintf(err, errn, "webhook.url must be an http(s) URL"), MCS_EINVAL;
        if(secret_was && url0[0] && !rq_same_origin(url0, jstr(m, "url") ? jstr(m, "url") : ""))
            return snprintf(err, errn, "webhook: 修改地址的主机须重新输入 secret / a URL to "
                                       "another host needs the secret entered again"),
                   MCS_EINVAL;
        if(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(m, "enabled"))) {
            if(!jstr(m, "url") || !jstr(m, "url")[0])
                return snprintf(err, errn, "webhook: enabled needs url"), MCS_EINVAL;
            /* One robot at a time in this view: the others are switched off. */
            for(int i = 0; i < ROBOTS; i++)
                if(i != ri && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ch[2 + i], "enabled"))) {
                    put_item(ch[2 + i], "enabled", cJSON_CreateFalse());
                    changed[2 + i] = 1;
                }
        }
        changed[2 + ri] = 1;
    }
    if(st) {
        cJSON *sched;
        if(!cJSON_IsObject(st) || rq_known_fields(st, stk, err, errn))
            return section_err(err, errn, "settings", cJSON_IsObject(st));
        sched = cJSON_GetObjectItemCaseSensitive(general, "schedule");
        if(!cJSON_IsObject(sched)) {
            cJSON_DeleteItemFromObjectCaseSensitive(general, "schedule");
            sched = cJSON_AddObjectToObject(general, "schedule");
        }
        v = cJSON_GetObjectItemCaseSensitive(st, "debounce_minutes");
        if(v) {
            if(!cJSON_IsNumber(v) || !(v->valuedouble > 0) || v->valuedouble > 1440)
                return snprintf(err, errn, "settings.debounce_minutes must be in (0, 1440]"),
                       MCS_EINVAL;
            put_item(general, "debounce_min", cJSON_CreateNumber(v->valuedouble));
        }
        if(opt_bool(st, "enable_schedule", sched, "enabled", err, errn))
            return MCS_EINVAL;
        v = cJSON_GetObjectItemCaseSensitive(st, "schedule_days");
        if(v) {
            const cJSON *d;
            if(!cJSON_IsArray(v) || cJSON_GetArraySize(v) > 7)
                return snprintf(err, errn, "settings.schedule_days must be days 1..7"), MCS_EINVAL;
            cJSON_ArrayForEach(d, v)
            if(!cJSON_IsNumber(d) || d->valuedouble < 1 || d->valuedouble > 7 ||
               d->valuedouble != floor(d->valuedouble))
                return snprintf(err, errn, "settings.schedule_days must be days 1..7"), MCS_EINVAL;
            put_item(sched, "days", cJSON_Duplicate(v, 1));
        }
        v = cJSON_GetObjectItemCaseSensitive(st, "schedule_start");
        if(v) {
            if(!cJSON_IsString(v) || !hhmm_ok(v->valuestring))
                return snprintf(err, errn, "settings.schedule_start must be HH:MM"), MCS_EINVAL;
            put_str(sched, "start", v->valuestring);
        }
        v = cJSON_GetObjectItemCaseSensitive(st, "schedule_end");
        if(v) {
            if(!cJSON_IsString(v) || !hhmm_ok(v->valuestring))
                return snprintf(err, errn, "settings.schedule_end must be HH:MM"), MCS_EINVAL;
            put_str(sched, "end", v->valuestring);
        }
        if(opt_str(st, "timezone", 63, sched, "tz", err, errn))
            return MCS_EINVAL;
        changed[NCH] = 1;
    }
    v = cJSON_GetObjectItemCaseSensitive(in, "system");
    if(v) {
        if(apply_system(v, general, err, errn))
            return MCS_EINVAL;
        changed[NCH] = 1;
    }
    return 0;
}

int h_cfg_alarm_put(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    char err[320];
    cJSON *in = rq_json_object(rq->body, rq->body_len, err, sizeof(err));
    cJSON *general = NULL, *ch[NCH], *before = NULL, *after = NULL;
    int changed[NCH + 1] = {0};

    if(!in)
        return api_error(rs, 400, E_ALARM_CFG, "%s", err);
    if(api_begin(ctx, rs)) {
        cJSON_Delete(in);
        return 0;
    }
    if(load_all(ctx, rs, &general, ch)) {
        api_rollback(ctx);
        cJSON_Delete(in);
        return 0;
    }
    before = cJSON_CreateObject();
    cJSON_AddItemToObject(before, "alarm.general", cJSON_Duplicate(general, 1));
    for(int i = 0; i < NCH; i++)
        cJSON_AddItemToObject(before, ch_keys[i], cJSON_Duplicate(ch[i], 1));
    if(apply_alarm(ctx, in, general, ch, changed, err, sizeof(err))) {
        api_error(rs, 400, E_ALARM_CFG, "%s", err);
        goto fail;
    }
    after = cJSON_CreateObject();
    for(int i = 0; i < NCH; i++)
        if(changed[i]) {
            if(cfg_store(ctx, rs, ch_keys[i], ch[i]))
                goto fail;
            cJSON_AddItemToObject(after, ch_keys[i], cJSON_Duplicate(ch[i], 1));
        }
    if(changed[NCH]) {
        if(cfg_store(ctx, rs, "alarm.general", general))
            goto fail;
        cJSON_AddItemToObject(after, "alarm.general", cJSON_Duplicate(general, 1));
    }
    if(!audit_commit(ctx, rq, rs, "config.alarm", "alarm", before, after))
        api_saved(rs, "配置已保存");
    goto out;
fail:
    api_rollback(ctx);
out:
    free_all(general, ch);
    cJSON_Delete(before);
    cJSON_Delete(after);
    cJSON_Delete(in);
    return 0;
}

struct test_job {
    const struct mcs_config *cfg;
    const _Atomic int *stop;
    long long id;       /* the test's outbox row */
    char channel[16];
    int code;
    int state;          /* 0 no outcome, 1 sent, 2 failed, -1 database error */
    int claimed;        /* an mcsd took it */
    long http;
    char detail[300];
    char user[65], ip[64];
};

/* Waits on the job worker (never the loop) for mcsd's outcome of the test
 * row: the first attempt, as the notifier records it for every alarm. */
static void test_work(struct api_job *j)
{
    struct test_job *t = j->data;
    char err[256], id[24];
    const char *p[1] = {id};
    int64_t t0 = mcs_mono_ms();
    int64_t deadline = t0 + t->cfg->notify_timeout_ms + TEST_WAIT_EXTRA_MS;
    PGconn *pg = mcs_pg_connect(t->cfg, "mcs-api-test-send", err, sizeof(err));

    snprintf(id, sizeof(id), "%lld", t->id);
    if(!pg) {
        t->state = -1;
        snprintf(t->detail, sizeof(t->detail), "%s", err);
        return;
    }
    while(!t->state && mcs_mono_ms() < deadline && !(t->stop && atomic_load(t->stop))) {
        PGresult *r = PQexecParams(pg,
                                   "SELECT o.claimed_at IS NOT NULL, a.ok, a.http_status, a.detail"
                                   " FROM alarm_outbox o LEFT JOIN LATERAL (SELECT ok,"
                                   " COALESCE(http_status, 0) AS http_status,"
                                   " COALESCE(detail, '') AS detail FROM alarm_attempts"
                                   " WHERE outbox_id = o.id ORDER BY id LIMIT 1) a ON true"
                                   " WHERE o.id = $1::bigint",
                                   1, NULL, p, NULL, NULL, 0);
        if(PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
            t->state = -1;
            snprintf(t->detail, sizeof(t->detail), "%s", PQresultErrorMessage(r));
        }
        else {
            t->claimed = !strcmp(PQgetvalue(r, 0, 0), "t");
            if(!PQgetisnull(r, 0, 1)) {
                t->state = !strcmp(PQgetvalue(r, 0, 1), "t") ? 1 : 2;
                t->http = strtol(PQgetvalue(r, 0, 2), NULL, 10);
                snprintf(t->detail, sizeof(t->detail), "%s", PQgetvalue(r, 0, 3));
            }
        }
        PQclear(r);
        if(!t->state && !t->claimed && mcs_mono_ms() - t0 > TEST_CLAIM_WAIT_MS)
            break;
        if(!t->state)
            mcs_sleep_ms(100);
    }
    if(!t->state && !t->claimed)
        /* Nobody will send it later by surprise. */
        PQclear(PQexecParams(pg,
                             "UPDATE alarm_outbox SET status = 'dropped', last_error ="
                             " 'test: no mcsd took it in time' WHERE id = $1::bigint"
                             " AND status = 'pending' AND claimed_at IS NULL",
                             1, NULL, p, NULL, NULL, 0));
    PQfinish(pg);
}

static void test_done(struct api_ctx *ctx, struct api_job *j, struct api_resp *rs)
{
    static struct api_req who;
    struct test_job *t = j->data;
    cJSON *o;

    snprintf(who.user, sizeof(who.user), "%s", t->user);
    snprintf(who.ip, sizeof(who.ip), "%s", t->ip);
    audit_log(ctx, &who, "config.alarm.test", t->channel, NULL, NULL);
    if(t->state == -1) {
        api_error(rs, 503, E_UNAVAIL, "database: %s", t->detail);
        return;
    }
    if(t->state == 0) {
        api_error(rs, 503, E_UNAVAIL,
                  t->claimed ? "mcsd is sending the test; no answer from %s yet"
                             : "no mcsd took the test send of %s within 4 s: mcsd not running"
                               " (ALARMS_ENABLED=1), or the channel busy or at its rate limit"
                               " (GET /api/config/alarm/channels)",
                  t->channel);
        return;
    }
    if(t->state == 2) {
        api_error(rs, 502, t->code, "%s (status %ld)", t->detail, t->http);
        return;
    }
    o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "message", "测试发送成功");
    cJSON_AddStringToObject(o, "channel", t->channel);
    cJSON_AddStringToObject(o, "detail", t->detail);
    cJSON_AddNumberToObject(o, "outbox_id", (double)t->id);
    api_json(rs, 200, o);
}

int h_cfg_alarm_test(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    static const char *const ok[] = {"channel", NULL};
    char err[160], key[64];
    cJSON *in = rq_json_object(rq->body, rq->body_len, err, sizeof(err)), *cfg = NULL;
    const char *name;
    const struct notify_channel *chan;
    struct test_job *t;
    PGresult *r;
    int code;

    if(!in)
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    name = jstr(in, "channel");
    if(rq_known_fields(in, ok, err, sizeof(err)) || !name) {
        cJSON_Delete(in);
        return api_error(rs, 400, E_BAD_REQ, "body must be {\"channel\": NAME}");
    }
    if(!strcmp(name, "webhook") || !strcmp(name, "custom")) {
        /* The robot of the §10.2 view: the enabled one, else the custom one. */
        cJSON *general, *ch[NCH];
        if(load_all(ctx, rs, &general, ch)) {
            cJSON_Delete(in);
            return 0;
        }
        name = "webhook";
        for(int i = 0; i < ROBOTS; i++)
            if(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(ch[2 + i], "enabled"))) {
                name = robot_names[i];
                break;
            }
        free_all(general, ch);
    }
    chan = notify_channel_find(name);
    cJSON_Delete(in);
    if(!chan)
        return api_error(rs, 400, E_BAD_REQ,
                         "channel must be email, webhook, dingtalk, feishu, wecom or sms");
    snprintf(key, sizeof(key), "alarm.channel.%s", chan->name);
    cfg = cfg_load(ctx, rs, key);
    if(!cfg)
        return 0;
    code = !strcmp(chan->name, "email") ? E_MAIL : !strcmp(chan->name, "sms") ? E_SMS : E_WEBHOOK;
    if(!cfg->child) {
        cJSON_Delete(cfg);
        return api_error(rs, 400, E_ALARM_CFG, "channel %s is not configured", chan->name);
    }
    cJSON_Delete(cfg);
    /* The test goes through the outbox and mcsd's notifier, with mcsd's
     * key and code, exactly as an alarm would: a passing test means alarms
     * are delivered (issue #15). */
    {
        const char *v[1] = {chan->name};
        r = api_query(ctx, rs,
                      "INSERT INTO alarm_outbox (channel, event, level) VALUES ($1, 'test', 1)"
                      " RETURNING id",
                      1, v);
    }
    if(!r)
        return 0;
    t = calloc(1, sizeof(*t));
    if(!t) {
        PQclear(r);
        return api_error(rs, 500, E_INTERNAL, "out of memory");
    }
    t->id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    PQclear(r);
    t->cfg = &ctx->cfg;
    t->stop = jobs_halting(ctx);
    t->code = code;
    snprintf(t->channel, sizeof(t->channel), "%s", chan->name);
    snprintf(t->user, sizeof(t->user), "%s", rq->user);
    snprintf(t->ip, sizeof(t->ip), "%s", rq->ip);
    api_defer_work(rs, test_work, test_done, free, t);
    return 0;
}

/* GET /api/config/alarm/channels: each channel's delivery state as mcsd's
 * notifier records it (alarm_channel_state, written with every outcome):
 * last success, last failure and its reason, requests sent / failed on the
 * plant's local day (alarm.general.schedule.tz), messages waiting. */
int h_cfg_alarm_channels(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    static const char sql[] =
        "WITH g AS (SELECT " API_PLANT_TZ_SQL " AS tz),"
        " ch AS (SELECT * FROM unnest(ARRAY['email','dingtalk','feishu','wecom','webhook','sms'])"
        "  WITH ORDINALITY AS x(channel, o))"
        " SELECT ch.channel, COALESCE(c.value->>'enabled', 'false') = 'true',"
        " to_char(s.last_ok_at AT TIME ZONE g.tz, 'YYYY-MM-DD HH24:MI:SS'),"
        " to_char(s.last_fail_at AT TIME ZONE g.tz, 'YYYY-MM-DD HH24:MI:SS'),"
        " s.last_fail_detail,"
        " CASE WHEN s.day = (now() AT TIME ZONE g.tz)::date THEN s.sent_day ELSE 0 END,"
        " CASE WHEN s.day = (now() AT TIME ZONE g.tz)::date THEN s.failed_day ELSE 0 END,"
        " (SELECT count(*) FROM alarm_outbox o WHERE o.channel = ch.channel"
        "  AND o.status = 'pending'), g.tz, extract(epoch FROM s.last_ok_at),"
        " extract(epoch FROM s.last_fail_at)"
        " FROM ch CROSS JOIN g LEFT JOIN alarm_channel_state s ON s.channel = ch.channel"
        " LEFT JOIN system_config c ON c.key = 'alarm.channel.' || ch.channel ORDER BY ch.o";
    PGresult *r = api_query(ctx, rs, sql, 0, NULL);
    cJSON *o, *arr;
    (void)rq;
    if(!r)
        return 0;
    o = cJSON_CreateObject();
    arr = cJSON_AddArrayToObject(o, "channels");
    for(int i = 0; i < PQntuples(r); i++) {
        cJSON *c = cJSON_CreateObject();
        cJSON_AddStringToObject(c, "channel", PQgetvalue(r, i, 0));
        cJSON_AddBoolToObject(c, "enabled", !strcmp(PQgetvalue(r, i, 1), "t"));
        for(int k = 0; k < 2; k++) {
            static const char *const names[2][2] = {{"last_ok_at", "last_ok_local"},
                                                    {"last_fail_at", "last_fail_local"}};
            if(PQgetisnull(r, i, 2 + k)) {
                cJSON_AddNullToObject(c, names[k][0]);
                cJSON_AddNullToObject(c, names[k][1]);
                continue;
            }
            char iso[40];
            mcs_time_iso8601((int64_t)(strtod(PQgetvalue(r, i, 9 + k), NULL) * 1e6), iso,
                             sizeof(iso));
            cJSON_AddStringToObject(c, names[k][0], iso);
            cJSON_AddStringToObject(c, names[k][1], PQgetvalue(r, i, 2 + k));
        }
        if(PQgetisnull(r, i, 4))
            cJSON_AddNullToObject(c, "last_fail_detail");
        else
            cJSON_AddStringToObject(c, "last_fail_detail", PQgetvalue(r, i, 4));
        cJSON_AddNumberToObject(c, "sent_today", strtod(PQgetvalue(r, i, 5), NULL));
        cJSON_AddNumberToObject(c, "failed_today", strtod(PQgetvalue(r, i, 6), NULL));
        cJSON_AddNumberToObject(c, "pending", strtod(PQgetvalue(r, i, 7), NULL));
        cJSON_AddItemToArray(arr, c);
    }
    if(PQntuples(r) > 0)
        cJSON_AddStringToObject(o, "tz", PQgetvalue(r, 0, 8));
    PQclear(r);
    return api_json(rs, 200, o);
}

int h_cfg_storage_get(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    static const char *const plain[] = {"endpoint", "bucket", "region", "prefix"};
    cJSON *s = cfg_load(ctx, rs, "storage"), *o;
    if(!s)
        return 0;
    o = cJSON_CreateObject();
    for(size_t i = 0; i < sizeof(plain) / sizeof(plain[0]); i++)
        cJSON_AddStringToObject(o, plain[i], jstr(s, plain[i]) ? jstr(s, plain[i]) : "");
    mask_into(o, "access_key", jstr(s, "access_key"));
    mask_into(o, "secret_key", jstr(s, "secret_key"));
    cJSON_Delete(s);
    return api_json(rs, 200, o);
}

int h_cfg_storage_put(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    static const char *const ok[] = {"endpoint", "bucket", "region", "prefix", "access_key",
                                     "secret_key", NULL};
    char err[200];
    cJSON *in = rq_json_object(rq->body, rq->body_len, err, sizeof(err)), *s = NULL,
          *before = NULL;
    const char *b;
    int keys_kept;

    if(!in)
        return api_error(rs, 400, E_R2, "%s", err);
    if(rq_known_fields(in, ok, err, sizeof(err))) {
        cJSON_Delete(in);
        return api_error(rs, 400, E_R2, "%s", err);
    }
    if(api_begin(ctx, rs)) {
        cJSON_Delete(in);
        return 0;
    }
    s = cfg_load(ctx, rs, "storage");
    if(!s)
        goto fail;
    before = cJSON_Duplicate(s, 1);
    keys_kept = secret_kept(s, "secret_key", cJSON_GetObjectItemCaseSensitive(in, "secret_key"));
    if(opt_str(in, "endpoint", 512, s, "endpoint", err, sizeof(err)) ||
       opt_str(in, "bucket", 63, s, "bucket", err, sizeof(err)) ||
       opt_str(in, "region", 64, s, "region", err, sizeof(err)) ||
       opt_str(in, "prefix", 256, s, "prefix", err, sizeof(err)) ||
       put_secret(ctx, s, "access_key", cJSON_GetObjectItemCaseSensitive(in, "access_key"), err,
                  sizeof(err)) ||
       put_secret(ctx, s, "secret_key", cJSON_GetObjectItemCaseSensitive(in, "secret_key"), err,
                  sizeof(err))) {
        api_error(rs, 400, E_R2, "%s", err);
        goto fail;
    }
    if(jstr(s, "endpoint") && jstr(s, "endpoint")[0] && !url_ok(jstr(s, "endpoint"))) {
        api_error(rs, 400, E_R2, "endpoint must be an http(s) URL");
        goto fail;
    }
    if(keys_kept && jstr(before, "endpoint") && jstr(before, "endpoint")[0] &&
       !rq_same_origin(jstr(before, "endpoint"), jstr(s, "endpoint") ? jstr(s, "endpoint") : "")) {
        api_error(rs, 400, E_R2, "修改 endpoint 的主机须重新输入 secret_key / an endpoint on "
                                 "another host needs secret_key entered again");
        goto fail;
    }
    b = jstr(s, "bucket");
    if(b && b[0] &&
       (strlen(b) < 3 || strspn(b, "abcdefghijklmnopqrstuvwxyz0123456789.-") != strlen(b))) {
        api_error(rs, 400, E_R2, "bucket must be 3..63 of a-z 0-9 . -");
        goto fail;
    }
    if(cfg_store(ctx, rs, "storage", s))
        goto fail;
    if(!audit_commit(ctx, rq, rs, "config.storage", "storage", before, s))
        api_saved(rs, "配置已保存");
    goto out;
fail:
    api_rollback(ctx);
out:
    cJSON_Delete(before);
    cJSON_Delete(s);
    cJSON_Delete(in);
    return 0;
}

int h_cfg_dash_get(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    cJSON *d = cfg_load(ctx, rs, "dashboard");
    return d ? api_json(rs, 200, d) : 0;
}

int h_cfg_dash_put(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    char err[200];
    cJSON *in = rq_json_object(rq->body, rq->body_len, err, sizeof(err)), *before = NULL;

    if(!in)
        return api_error(rs, 400, E_BAD_REQ, "%s", err);
    if(api_begin(ctx, rs))
        goto out;
    before = cfg_load(ctx, rs, "dashboard");
    if(!before || cfg_store(ctx, rs, "dashboard", in) || api_notify_config(ctx, rs, "layout"))
        goto fail;
    if(!audit_commit(ctx, rq, rs, "config.dashboard", "dashboard", before, in))
        api_saved(rs, "配置已保存");
    goto out;
fail:
    api_rollback(ctx);
out:
    cJSON_Delete(before);
    cJSON_Delete(in);
    return 0;
}

int h_cfg_bg_get(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    PGconn *pg = api_pg(ctx);
    PGresult *r;
    char *buf;
    size_t n;
    const char *ct;

    if(!pg)
        return api_error(rs, 503, E_UNAVAIL, "database unavailable");
    r = PQexecParams(pg, "SELECT content_type, data FROM api_files WHERE name = 'dashboard_bg'", 0,
                     NULL, NULL, NULL, NULL, 1);
    if(PQresultStatus(r) != PGRES_TUPLES_OK) {
        PQclear(r);
        api_pg_check(ctx);
        return api_error(rs, 503, E_UNAVAIL, "database error");
    }
    if(PQntuples(r) != 1) {
        PQclear(r);
        return api_error(rs, 404, E_NOTFOUND, "no background uploaded");
    }
    n = (size_t)PQgetlength(r, 0, 1);
    buf = malloc(n ? n : 1);
    if(!buf) {
        PQclear(r);
        return api_error(rs, 500, E_INTERNAL, "out of memory");
    }
    memcpy(buf, PQgetvalue(r, 0, 1), n);
    ct = !strncmp(PQgetvalue(r, 0, 0), "image/png", 9) ? "image/png" : "image/jpeg";
    PQclear(r);
    return api_raw(rs, 200, ct, buf, n);
}

int h_cfg_bg_post(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
{
    const char *type = NULL;
    long w = 0, h = 0;
    char ws[24], hs[24];
    PGconn *pg;
    PGresult *r;
    cJSON *o, *after;

    if(!rq->body_len)
        return api_error(rs, 400, E_BAD_REQ, "the image is the request body");
    if(rq_image_info(rq->body, rq->body_len, &type, &w, &h))
        return api_error(rs, 415, E_MEDIA, "not a PNG or JPEG image");
    if(w > 16384 || h > 16384)
        return api_error(rs, 400, E_BAD_REQ, "image of %ldx%ld, at most 16384x16384", w, h);
    pg = api_pg(ctx);
    if(!pg)
        return api_error(rs, 503, E_UNAVAIL, "database unavailable");
    snprintf(ws, sizeof(ws), "%ld", w);
    snprintf(hs, sizeof(hs), "%ld", h);
    {
        const char *ct = !strcmp(type, "png") ? "image/png" : "image/jpeg";
        const char *v[5] = {ct, (const char *)rq->body, ws, hs, rq->user};
        int lens[5] = {0, (int)rq->body_len, 0, 0, 0};
        int fmts[5] = {0, 1, 0, 0, 0};
        r = PQexecParams(pg,
                         "INSERT INTO api_files (name, content_type, data, width, height, "
                         "updated_by) VALUES ('dashboard_bg', $1, $2, $3, $4, $5) ON CONFLICT "
                         "(name) DO UPDATE SET content_type = EXCLUDED.content_type, data = "
                         "EXCLUDED.data, width = EXCLUDED.width, height = EXCLUDED.height, "
                         "updated_at = now(), updated_by = EXCLUDED.updated_by",
                         5, NULL, v, lens, fmts, 0);
    }
    if(PQresultStatus(r) != PGRES_COMMAND_OK) {
        LOG_W("api", "background not stored", LS("error", PQerrorMessage(pg)));
        PQclear(r);
        api_pg_check(ctx);
        return api_error(rs, 503, E_UNAVAIL, "database error");
    }
    PQclear(r);
    if(api_notify_config(ctx, rs, "background"))
        return 0;
    after = cJSON_CreateObject();
    cJSON_AddStringToObject(after, "type", type);
    cJSON_AddNumberToObject(after, "width", (double)w);
    cJSON_AddNumberToObject(after, "height", (double)h);
    cJSON_AddNumberToObject(after, "size", (double)rq->body_len);
    audit_log(ctx, rq, "config.dashboard.bg", "dashboard_bg", NULL, after);
    o = cJSON_Duplicate(after, 1);
    cJSON_Delete(after);
    cJSON_AddStringToObject(o, "message", "背景图已上传");
    cJSON_AddStringToObject(o, "url", "/api/config/dashboard/bg");
    {
        char ts[40];
        mcs_time_iso8601(mcs_now_us(), ts, sizeof(ts));
        cJSON_AddStringToObject(o, "updated_at", ts);
    }
    return api_json(rs, 200, o);
}
