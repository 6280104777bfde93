/* notify_chan.c - the channel implementations (see notify_chan.h): libcurl
 * for HTTP and SMTP, OpenSSL HMAC for the signatures, libsodium base64,
 * cJSON for bodies and answers. Owns nothing between calls. Thread: any. */
#include "notify_chan.h"
#include "err.h"

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BODY_MAX (64 * 1024) /* answers we read at most */
#define TEXT_MAX 4096        /* a message text (WeCom markdown limit) */
#define B64V sodium_base64_VARIANT_ORIGINAL

/* ---- helpers ---- */

struct rbuf {
    char data[BODY_MAX + 1];
    size_t len;
};

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
    struct rbuf *b = ud;
    size_t n = sz * nm;
    size_t room = BODY_MAX - b->len;
    memcpy(b->data + b->len, p, n < room ? n : room);
    b->len += n < room ? n : room;
    b->data[b->len] = '\0';
    return n; /* the rest is read and dropped: the answer is capped */
}

static const char *cfg_str(const cJSON *cfg, const char *k, const char *def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, k);
    return cJSON_IsString(v) ? v->valuestring : def;
}

static int cfg_int(const cJSON *cfg, const char *k, int def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, k);
    if(cJSON_IsNumber(v))
        return (int)v->valuedouble;
    if(cJSON_IsString(v) && *v->valuestring)
        return (int)strtol(v->valuestring, NULL, 10);
    return def;
}

static int cfg_bool(const cJSON *cfg, const char *k, int def)
{
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, k);
    return cJSON_IsBool(v) ? cJSON_IsTrue(v) : def;
}

/* A secret field, decrypted into out. Returns 0 or an MCS_E code. */
static int cfg_secret(const cJSON *cfg, const char *k, const struct mcs_secret_key *key,
                      char *out, size_t outn)
{
    return secret_decrypt(key, cfg_str(cfg, k, ""), out, outn);
}

static int b64(const unsigned char *bin, size_t n, char *out, size_t outn)
{
    if(outn < sodium_base64_ENCODED_LEN(n, B64V))
        return MCS_ETOOBIG;
    sodium_bin2base64(out, outn, bin, n, B64V);
    return 0;
}

/* detail := prefix + a (cut to fit). */
static void set_result(struct notify_result *r, int ok, int retry, const char *prefix,
                       const char *a)
{
    r->ok = ok;
    r->retry = retry;
    snprintf(r->detail, sizeof(r->detail), "%s%.200s", prefix, a ? a : "");
}

/* Cuts s to at most n bytes and drops a UTF-8 sequence left incomplete at
 * its end. */
static void utf8_cut(char *s, size_t n)
{
    size_t l = strlen(s);
    if(l > n)
        l = n;
    s[l] = '\0';
    size_t start = l;
    while(start > 0 && ((unsigned char)s[start - 1] & 0xC0) == 0x80)
        start--;
    if(start == 0 || start == l)
        return;
    unsigned char lead = (unsigned char)s[start - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if(l - (start - 1) < need)
        s[start - 1] = '\0';
}

/* ---- signatures ---- */

int notify_dingtalk_sign(const char *secret, long long ts_ms, char *out, size_t outn)
{
    char msg[512], b[64];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    int n = snprintf(msg, sizeof(msg), "%lld\n%s", ts_ms, secret);
    if(n < 0 || (size_t)n >= sizeof(msg))
        return MCS_ETOOBIG;
    if(!HMAC(EVP_sha256(), secret, (int)strlen(secret), (const unsigned char *)msg, (size_t)n,
             mac, &ml))
        return MCS_EINVAL;
    if(b64(mac, ml, b, sizeof(b)))
        return MCS_ETOOBIG;
    char *e = curl_easy_escape(NULL, b, 0);
    if(!e)
        return MCS_ENOMEM;
    int rc = strlen(e) < outn ? 0 : MCS_ETOOBIG;
    if(!rc)
        snprintf(out, outn, "%s", e);
    curl_free(e);
    return rc;
}

int notify_feishu_sign(const char *secret, long long ts_s, char *out, size_t outn)
{
    char key[512];
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    int n = snprintf(key, sizeof(key), "%lld\n%s", ts_s, secret);
    if(n < 0 || (size_t)n >= sizeof(key))
        return MCS_ETOOBIG;
    if(!HMAC(EVP_sha256(), key, n, (const unsigned char *)"", 0, mac, &ml))
        return MCS_EINVAL;
    return b64(mac, ml, out, outn);
}

struct kv {
    const char *k, *v;
};

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct kv *)a)->k, ((const struct kv *)b)->k);
}

/* Appends percent(s) to out; returns 0 or MCS_ETOOBIG. */
static int pct_append(char *out, size_t outn, size_t *len, const char *s)
{
    char *e = curl_easy_escape(NULL, s, 0);
    if(!e)
        return MCS_ENOMEM;
    size_t l = strlen(e);
    int rc = 0;
    if(*len + l + 1 > outn)
        rc = MCS_ETOOBIG;
    else {
        memcpy(out + *len, e, l + 1);
        *len += l;
    }
    curl_free(e);
    return rc;
}

int notify_aliyun_sign(const char *secret, const char *const *params, size_t n, char *sig,
                       size_t sign, char *query, size_t queryn)
{
    struct kv kv[32];
    size_t ql = 0, sl = 0;
    char key[256];
    char *sts = NULL;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int ml = 0;
    int rc = 0;

    if(n > 32 || queryn == 0)
        return MCS_EINVAL;
    for(size_t i = 0; i < n; i++) {
        kv[i].k = params[2 * i];
        kv[i].v = params[2 * i + 1];
    }
    qsort(kv, n, sizeof(kv[0]), kv_cmp);
    query[0] = '\0';
    for(size_t i = 0; i < n; i++) {
        if(i) {
            if(ql + 2 > queryn)
                return MCS_ETOOBIG;
            query[ql++] = '&';
            query[ql] = '\0';
        }
        if((rc = pct_append(query, queryn, &ql, kv[i].k)))
            return rc;
        if(ql + 2 > queryn)
            return MCS_ETOOBIG;
        query[ql++] = '=';
        query[ql] = '\0';
        if((rc = pct_append(query, queryn, &ql, kv[i].v)))
            return rc;
    }
    size_t stsn = 16 + 3 * ql + 1;
    sts = malloc(stsn);
    if(!sts)
        return MCS_ENOMEM;
    memcpy(sts, "GET&%2F&", 8);
    sl = 8;
    sts[sl] = '\0';
    if((rc = pct_append(sts, stsn, &sl, query)))
        goto out;
    if(snprintf(key, sizeof(key), "%s&", secret) >= (int)sizeof(key)) {
        rc = MCS_ETOOBIG;
        goto out;
    }
    if(!HMAC(EVP_sha1(), key, (int)strlen(key), (const unsigned char *)sts, sl, mac, &ml)) {
        rc = MCS_EINVAL;
        goto out;
    }
    rc = b64(mac, ml, sig, sign);
out:
    free(sts);
    return rc;
}

int notify_mime_subject(const char *utf8, char *out, size_t outn)
{
    size_t len = strlen(utf8), pos = 0, ol = 0;
    out[0] = '\0';
    while(pos < len) {
        size_t chunk = len - pos < 45 ? len - pos : 45;
        while(pos + chunk < len && chunk > 0 && ((unsigned char)utf8[pos + chunk] & 0xC0) == 0x80)
            chunk--;
        char enc[96];
        sodium_bin2base64(enc, sizeof(enc), (const unsigned char *)utf8 + pos, chunk, B64V);
        int n = snprintf(out + ol, outn - ol, "%s=?UTF-8?B?%s?=", ol ? "\r\n " : "", enc);
        if(n < 0 || (size_t)n >= outn - ol)
            return MCS_ETOOBIG;
        ol += (size_t)n;
        pos += chunk;
    }
    return 0;
}

/* ---- templates (the words themselves: notify_text.c) ---- */

static void msg_text(const cJSON *cfg, const struct notify_msg *m, char *out, size_t outn)
{
    const char *tpl = cfg_str(cfg, "template", NULL);
    if(m->text || !tpl || !*tpl)
        notify_default_text(m, out, outn);
    else
        notify_render(tpl, m, 0, out, outn);
}

/* ---- HTTP ---- */

/* Aborts a transfer when the caller's cancel flag is raised. */
static int on_progress(void *ud, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    const _Atomic int *cancel = ud;
    (void)dt;
    (void)dn;
    (void)ut;
    (void)un;
    return cancel && atomic_load(cancel) ? 1 : 0;
}

static void set_cancel(CURL *c, const struct notify_result *res)
{
    if(!res->cancel)
        return;
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)res->cancel);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
}

/* POSTs body (or GETs when body is NULL) to url; fills res->http and the
 * answer. Returns the CURLcode. */
static CURLcode http_req(const char *url, const char *body, struct curl_slist *hdr,
                         long timeout_ms, struct rbuf *ans, struct notify_result *res,
                         int *sent_request)
{
    CURL *c = curl_easy_init();
    CURLcode cc;
    struct curl_slist *h = hdr;
    if(!c)
        return CURLE_OUT_OF_MEMORY;
    ans->len = 0;
    ans->data[0] = '\0';
    if(body)
        h = curl_slist_append(h, "Content-Type: application/json; charset=utf-8");
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    set_cancel(c, res);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 5000 ? timeout_ms : 5000);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, ans);
    if(h)
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    if(body)
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    cc = curl_easy_perform(c);
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->http);
    if(sent_request) {
        curl_off_t up = 0;
        double t_pre = 0;
        curl_easy_getinfo(c, CURLINFO_PRETRANSFER_TIME, &t_pre);
        curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &up);
        /* Past the connection: the request may have reached the server. */
        *sent_request = t_pre > 0 || up > 0;
    }
    curl_easy_cleanup(c);
    if(body)
        curl_slist_free_all(h);
    return cc;
}

/* Sends a JSON body and judges the answer by the integer field code_key
 * (0 = success). throttle_codes (the platform's rate limit: retried later,
 * the channel backs off) and permanent_codes (signature, keyword, address,
 * URL: a configuration error that no retry mends) end with 0. */
static void post_json(const char *url, cJSON *body, const char *code_key,
                      const long *throttle_codes, const long *permanent_codes, long timeout_ms,
                      struct notify_result *res)
{
    struct rbuf *ans = malloc(sizeof(*ans));
    char *txt = cJSON_PrintUnformatted(body);
    CURLcode cc;
    if(!ans || !txt) {
        set_result(res, 0, 1, "out of memory", NULL);
        goto out;
    }
    cc = http_req(url, txt, NULL, timeout_ms, ans, res, NULL);
    if(cc != CURLE_OK) {
        set_result(res, 0, 1, "", curl_easy_strerror(cc));
        goto out;
    }
    if(res->http < 200 || res->http >= 300) {
        char d[64];
        snprintf(d, sizeof(d), "HTTP %ld", res->http);
        set_result(res, 0, res->http >= 500 || res->http == 429, "", d);
        res->throttled = res->http == 429;
        goto out;
    }
    if(!code_key) {
        set_result(res, 1, 0, "HTTP 2xx", NULL);
        goto out;
    }
    {
        cJSON *a = cJSON_Parse(ans->data);
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(a, code_key);
        if(!cJSON_IsNumber(code)) {
            ans->data[120] = '\0';
            set_result(res, 0, 1, "unexpected answer: ", ans->data);
        }
        else if(code->valuedouble == 0)
            set_result(res, 1, 0, "", "code 0");
        else {
            long cv = (long)code->valuedouble;
            const cJSON *msg = cJSON_GetObjectItemCaseSensitive(a, "errmsg");
            if(!cJSON_IsString(msg))
                msg = cJSON_GetObjectItemCaseSensitive(a, "msg");
            snprintf(res->detail, sizeof(res->detail), "%s %ld: %s", code_key, cv,
                     cJSON_IsString(msg) ? msg->valuestring : "");
            res->ok = 0;
            res->retry = 1;
            for(const long *t = throttle_codes; t && *t; t++)
                if(cv == *t)
                    res->throttled = 1;
            for(const long *t = permanent_codes; t && *t; t++)
                if(cv == *t)
                    res->retry = 0;
        }
        cJSON_Delete(a);
    }
out:
    free(txt);
    free(ans);
}

static cJSON *mobiles_array(const char *list)
{
    cJSON *a = cJSON_CreateArray();
    char buf[1024];
    snprintf(buf, sizeof(buf), "%s", list ? list : "");
    for(char *p = buf; *p;) {
        char *end = p + strcspn(p, ",;");
        char save = *end;
        *end = '\0';
        while(*p == ' ')
            p++;
        char *q = p + strlen(p);
        while(q > p && q[-1] == ' ')
            *--q = '\0';
        if(*p)
            cJSON_AddItemToArray(a, cJSON_CreateString(p));
        if(!save)
            break;
        p = end + 1;
    }
    return a;
}

static void send_dingtalk(const cJSON *cfg, const struct mcs_secret_key *key,
                          const struct notify_msg *m, long timeout_ms, struct notify_result *res)
{
    static const long throttle[] = {130101, 0};
    static const long permanent[] = {310000, 300001, 0}; /* sign/keyword/IP; token */
    char secret[256], url[2048], sign[128], text[TEXT_MAX], content[TEXT_MAX + 128];
    const char *base = cfg_str(cfg, "url", "");
    const char *kw = cfg_str(cfg, "keyword", "");
    const char *mob = m->recipients ? m->recipients : cfg_str(cfg, "at_mobiles", "");
    int rc;

    if(!*base) {
        set_result(res, 0, 0, "no url", NULL);
        return;
    }
    if((rc = cfg_secret(cfg, "secret", key, secret, sizeof(secret)))) {
        set_result(res, 0, 0, "secret: ", mcs_strerror(rc));
        return;
    }
    snprintf(url, sizeof(url), "%s", base);
    if(*secret) {
        long long ts = (long long)time(NULL) * 1000;
        if(notify_dingtalk_sign(secret, ts, sign, sizeof(sign))) {
            set_result(res, 0, 0, "sign failed", NULL);
            return;
        }
        snprintf(url, sizeof(url), "%s%ctimestamp=%lld&sign=%s", base,
                 strchr(base, '?') ? '&' : '?', ts, sign);
    }
    sodium_memzero(secret, sizeof(secret));
    msg_text(cfg, m, text, sizeof(text));
    snprintf(content, sizeof(content), "%s%s%s", kw, *kw ? " " : "", text);
    utf8_cut(content, sizeof(content) - 1);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "msgtype", "text");
    cJSON *t = cJSON_AddObjectToObject(body, "text");
    cJSON_AddStringToObject(t, "content", content);
    cJSON *at = cJSON_AddObjectToObject(body, "at");
    cJSON_AddItemToObject(at, "atMobiles", mobiles_array(mob));
    cJSON_AddBoolToObject(at, "isAtAll", 0);
    post_json(url, body, "errcode", throttle, permanent, timeout_ms, res);
    cJSON_Delete(body);
}

static void send_feishu(const cJSON *cfg, const struct mcs_secret_key *key,
                        const struct notify_msg *m, long timeout_ms, struct notify_result *res)
{
    static const long throttle[] = {11232, 0};
    static const long permanent[] = {19021, 19022, 19024, 0}; /* sign, IP, keyword */
    char secret[256], sign[128], text[TEXT_MAX], ts[24];
    const char *url = cfg_str(cfg, "url", "");
    int rc;

    if(!*url) {
        set_result(res, 0, 0, "no url", NULL);
        return;
    }
    if((rc = cfg_secret(cfg, "secret", key, secret, sizeof(secret)))) {
        set_result(res, 0, 0, "secret: ", mcs_strerror(rc));
        return;
    }
    msg_text(cfg, m, text, sizeof(text));
    cJSON *body = cJSON_CreateObject();
    if(*secret) {
        long long now = (long long)time(NULL);
        snprintf(ts, sizeof(ts), "%lld", now);
        if(notify_feishu_sign(secret, now, sign, sizeof(sign))) {
            cJSON_Delete(body);
            set_result(res, 0, 0, "sign failed", NULL);
            return;
        }
        cJSON_AddStringToObject(body, "timestamp", ts);
        cJSON_AddStringToObject(body, "sign", sign);
    }
    sodium_memzero(secret, sizeof(secret));
    cJSON_AddStringToObject(body, "msg_type", "text");
    cJSON *c = cJSON_AddObjectToObject(body, "content");
    cJSON_AddStringToObject(c, "text", text);
    post_json(url, body, "code", throttle, permanent, timeout_ms, res);
    cJSON_Delete(body);
}

static void send_wecom(const cJSON *cfg, const struct mcs_secret_key *key,
                       const struct notify_msg *m, long timeout_ms, struct notify_result *res)
{
    static const long throttle[] = {45009, 0};
    static const long permanent[] = {93000, 0}; /* invalid webhook url (key) */
    char text[TEXT_MAX];
    const char *url = cfg_str(cfg, "url", "");
    const char *mob = m->recipients ? m->recipients : cfg_str(cfg, "mentioned_mobiles", "");
    int md = cfg_bool(cfg, "markdown", 0);
    (void)key;

    if(!*url) {
        set_result(res, 0, 0, "no url", NULL);
        return;
    }
    msg_text(cfg, m, text, md ? 4096 : 2048);
    cJSON *body = cJSON_CreateObject();
    cJSON_AddStringToObject(body, "msgtype", md ? "markdown" : "text");
    cJSON *t = cJSON_AddObjectToObject(body, md ? "markdown" : "text");
    cJSON_AddStringToObject(t, "content", text);
    if(!md)
        cJSON_AddItemToObject(t, "mentioned_mobile_list", mobiles_array(mob));
    post_json(url, body, "errcode", throttle, permanent, timeout_ms, res);
    cJSON_Delete(body);
}

static void send_webhook(const cJSON *cfg, const struct mcs_secret_key *key,
                         const struct notify_msg *m, long timeout_ms, struct notify_result *res)
{
    const char *url = cfg_str(cfg, "url", "");
    const char *tpl = cfg_str(cfg, "template", NULL);
    char text[TEXT_MAX], *body = NULL;
    struct rbuf *ans = NULL;
    struct curl_slist *hdr = NULL;
    const cJSON *hs = cJSON_GetObjectItemCaseSensitive(cfg, "headers"), *h;
    CURLcode cc;
    (void)key;

    if(!*url) {
        set_result(res, 0, 0, "no url", NULL);
        return;
    }
    if(tpl && *tpl && !m->text) {
        body = malloc(TEXT_MAX * 2);
        if(body)
            notify_render(tpl, m, 1, body, TEXT_MAX * 2);
    }
    else {
        cJSON *o = cJSON_CreateObject();
        notify_default_text(m, text, sizeof(text));
        cJSON_AddStringToObject(o, "event", m->event);
        cJSON_AddNumberToObject(o, "id", (double)m->alarm_id);
        cJSON_AddStringToObject(o, "sn", m->sn);
        cJSON_AddStringToObject(o, "name", m->name);
        cJSON_AddStringToObject(o, "location", m->location);
        cJSON_AddStringToObject(o, "type", m->type);
        cJSON_AddStringToObject(o, "category", m->category);
        cJSON_AddNumberToObject(o, "level", m->level);
        cJSON_AddStringToObject(o, "val", m->val);
        cJSON_AddStringToObject(o, "unit", m->unit);
        cJSON_AddStringToObject(o, "threshold", m->threshold);
        cJSON_AddStringToObject(o, "time", m->time);
        cJSON_AddStringToObject(o, "text", text);
        body = cJSON_PrintUnformatted(o);
        cJSON_Delete(o);
    }
    ans = malloc(sizeof(*ans));
    if(!body || !ans) {
        set_result(res, 0, 1, "out of memory", NULL);
        goto out;
    }
    cJSON_ArrayForEach(h, hs)
    {
        char line[512];
        if(cJSON_IsString(h) && h->string) {
            snprintf(line, sizeof(line), "%s: %s", h->string, h->valuestring);
            hdr = curl_slist_append(hdr, line);
        }
    }
    cc = http_req(url, body, hdr, timeout_ms, ans, res, NULL);
    hdr = NULL; /* freed by http_req with its own additions */
    if(cc != CURLE_OK)
        set_result(res, 0, 1, "", curl_easy_strerror(cc));
    else if(res->http >= 200 && res->http < 300)
        set_result(res, 1, 0, "HTTP 2xx", NULL);
    else {
        char d[64];
        snprintf(d, sizeof(d), "HTTP %ld", res->http);
        set_result(res, 0, res->http >= 500 || res->http == 429 || res->http == 408, "", d);
        res->throttled = res->http == 429;
    }
out:
    curl_slist_free_all(hdr);
    free(ans);
    free(body);
}

/* ---- e-mail ---- */

struct upload {
    const char *data;
    size_t len, pos;
};

static size_t on_read(char *p, size_t sz, size_t nm, void *ud)
{
    struct upload *u = ud;
    size_t n = sz * nm, left = u->len - u->pos;
    if(n > left)
        n = left;
    memcpy(p, u->data + u->pos, n);
    u->pos += n;
    return n;
}

/* RFC 5322 date-time in the plant's zone: "Mon, 07 Dec 2026 21:00:50 +0800"
 * (names in English whatever the locale, as the RFC requires). */
static void mail_date(int offset_s, char *out, size_t outn)
{
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = time(NULL) + offset_s;
    int a = offset_s < 0 ? -offset_s : offset_s;
    struct tm tmv;
    gmtime_r(&t, &tmv);
    snprintf(out, outn, "%s, %02d %s %04d %02d:%02d:%02d %c%02d%02d", wd[tmv.tm_wday],
             tmv.tm_mday, mo[tmv.tm_mon], tmv.tm_year + 1900, tmv.tm_hour, tmv.tm_min,
             tmv.tm_sec, offset_s < 0 ? '-' : '+', a / 3600, a % 3600 / 60);
}

/* RFC 5322 Message-ID, unique per message (a retry of one outbox row is a
 * new message for the relay): <alarm.time.random@domain of from>. */
static void mail_id(const struct notify_msg *m, const char *from, char *out, size_t outn)
{
    const char *at = strrchr(from, '@');
    const char *dom = at && at[1] && !strpbrk(at + 1, "<> \"") ? at + 1 : "mcs-iot.invalid";
    unsigned char rnd[8];
    randombytes_buf(rnd, sizeof(rnd));
    snprintf(out, outn, "<mcs.%lld.%lld.%02x%02x%02x%02x%02x%02x%02x%02x@%.100s>", m->alarm_id,
             (long long)time(NULL), rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7],
             dom);
}

static void send_email(const cJSON *cfg, const struct mcs_secret_key *key,
                       const struct notify_msg *m, long timeout_ms, struct notify_result *res)
{
    const char *host = cfg_str(cfg, "host", "");
    const char *sec = cfg_str(cfg, "security", "ssl");
    const char *from = cfg_str(cfg, "from", "");
    const char *user = cfg_str(cfg, "user", "");
    const char *to = m->recipients ? m->recipients : cfg_str(cfg, "to", "");
    const char *cafile = cfg_str(cfg, "cafile", "");
    const char *subj_tpl = cfg_str(cfg, "subject", notify_default_subject);
    int port = cfg_int(cfg, "port", !strcmp(sec, "ssl") ? 465 : 587);
    char pass[256], url[512], subject[512], subj_enc[1400], text[TEXT_MAX];
    char date[64], msgid[160], *b64body = NULL, *mail = NULL;
    struct curl_slist *rcpt = NULL;
    size_t tl, bl, ml = 0, cap;
    CURL *c = NULL;
    CURLcode cc;
    int rc, nrcpt = 0;
    char tolist[1024] = "";

    if(!*host || !*from) {
        set_result(res, 0, 0, "host and from are required", NULL);
        return;
    }
    if((rc = cfg_secret(cfg, "password", key, pass, sizeof(pass)))) {
        set_result(res, 0, 0, "password: ", mcs_strerror(rc));
        return;
    }
    /* Recipients split on ';' (and ','), trimmed. */
    {
        char buf[1024];
        snprintf(buf, sizeof(buf), "%s", to);
        for(char *p = buf; *p;) {
            char *end = p + strcspn(p, ";,");
            char save = *end;
            *end = '\0';
            while(*p == ' ')
                p++;
            char *q = p + strlen(p);
            while(q > p && q[-1] == ' ')
                *--q = '\0';
            if(*p) {
                char addr[300];
                snprintf(addr, sizeof(addr), "<%.256s>", p);
                rcpt = curl_slist_append(rcpt, addr);
                size_t l = strlen(tolist);
                snprintf(tolist + l, sizeof(tolist) - l, "%s%s", nrcpt ? ", " : "", p);
                nrcpt++;
            }
            if(!save)
                break;
            p = end + 1;
        }
    }
    if(!nrcpt) {
        set_result(res, 0, 0, "no recipients", NULL);
        goto out;
    }
    if(m->text)
        snprintf(subject, sizeof(subject), "【报警汇总】%lld 条报警", m->count);
    else
        notify_render(subj_tpl, m, 0, subject, sizeof(subject));
    if(notify_mime_subject(subject, subj_enc, sizeof(subj_enc))) {
        set_result(res, 0, 0, "subject too long", NULL);
        goto out;
    }
    msg_text(cfg, m, text, sizeof(text));
    tl = strlen(text);
    bl = sodium_base64_ENCODED_LEN(tl, B64V);
    b64body = malloc(bl);
    cap = bl + bl / 76 * 2 + 4096;
    mail = malloc(cap);
    if(!b64body || !mail) {
        set_result(res, 0, 1, "out of memory", NULL);
        goto out;
    }
    sodium_bin2base64(b64body, bl, (const unsigned char *)text, tl, B64V);
    mail_date(m->tz_offset_s, date, sizeof(date));
    mail_id(m, from, msgid, sizeof(msgid));
    ml = (size_t)snprintf(mail, cap,
                          "Date: %s\r\nMessage-ID: %s\r\nFrom: <%s>\r\nTo: %s\r\n"
                          "Subject: %s\r\nMIME-Version: 1.0\r\n"
                          "Content-Type: text/plain; charset=UTF-8\r\n"
                          "Content-Transfer-Encoding: base64\r\nX-MCS-Alarm: %lld\r\n\r\n",
                          date, msgid, from, tolist, subj_enc, m->alarm_id);
    for(size_t i = 0, l = strlen(b64body); i < l && ml + 80 < cap; i += 76) {
        size_t n = l - i < 76 ? l - i : 76;
        memcpy(mail + ml, b64body + i, n);
        ml += n;
        mail[ml++] = '\r';
        mail[ml++] = '\n';
    }
    c = curl_easy_init();
    if(!c) {
        set_result(res, 0, 1, "curl init failed", NULL);
        goto out;
    }
    snprintf(url, sizeof(url), "%s://%s:%d", !strcmp(sec, "ssl") ? "smtps" : "smtp", host, port);
    struct upload up = {mail, ml, 0};
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    set_cancel(c, res);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    if(!strcmp(sec, "starttls"))
        curl_easy_setopt(c, CURLOPT_USE_SSL, (long)CURLUSESSL_ALL);
    if(*cafile)
        curl_easy_setopt(c, CURLOPT_CAINFO, cafile);
    if(cfg_bool(cfg, "insecure", 0)) {
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if(*user) {
        curl_easy_setopt(c, CURLOPT_USERNAME, user);
        curl_easy_setopt(c, CURLOPT_PASSWORD, pass);
    }
    {
        char mf[300];
        snprintf(mf, sizeof(mf), "<%s>", from);
        curl_easy_setopt(c, CURLOPT_MAIL_FROM, mf);
        curl_easy_setopt(c, CURLOPT_MAIL_RCPT, rcpt);
        curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(c, CURLOPT_READDATA, &up);
        curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
        cc = curl_easy_perform(c);
    }
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->http);
    if(cc == CURLE_OK)
        set_result(res, 1, 0, "SMTP ", "250");
    else {
        set_result(res, 0, cc != CURLE_LOGIN_DENIED, "", curl_easy_strerror(cc));
    }
out:
    sodium_memzero(pass, sizeof(pass));
    curl_easy_cleanup(c);
    curl_slist_free_all(rcpt);
    free(b64body);
    free(mail);
}

/* ---- Aliyun SMS ---- */

static void send_sms(const cJSON *cfg, const struct mcs_secret_key *key,
                     const struct notify_msg *m, long timeout_ms, struct notify_result *res)
{
    const char *endpoint = cfg_str(cfg, "endpoint", "https://dysmsapi.aliyuncs.com/");
    const char *akid = cfg_str(cfg, "access_key_id", "");
    const char *sign_name = cfg_str(cfg, "sign_name", "");
    const char *tcode = cfg_str(cfg, "template_code", "");
    const char *phones = m->recipients ? m->recipients : cfg_str(cfg, "phones", "");
    const char *ptpl = cfg_str(cfg, "template_param", NULL);
    char secret[256], nonce[40], ts[32], outid[40], param[1024], sig[64];
    char *query = NULL, *url = NULL;
    struct rbuf *ans = NULL;
    unsigned char rnd[16];
    int rc, sent = 0;
    CURLcode cc;

    if(!*akid || !*sign_name || !*tcode || !*phones) {
        set_result(res, 0, 0, "access_key_id, sign_name, template_code, phones required", NULL);
        return;
    }
    if((rc = cfg_secret(cfg, "access_key_secret", key, secret, sizeof(secret)))) {
        set_result(res, 0, 0, "access_key_secret: ", mcs_strerror(rc));
        return;
    }
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(nonce, sizeof(nonce), rnd, sizeof(rnd));
    {
        time_t now = time(NULL);
        struct tm tmv;
        gmtime_r(&now, &tmv);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tmv);
    }
    snprintf(outid, sizeof(outid), "mcs-%lld", m->alarm_id);
    if(ptpl && *ptpl)
        notify_render(ptpl, m, 1, param, sizeof(param));
    else {
        cJSON *o = cJSON_CreateObject();
        char lv[8];
        snprintf(lv, sizeof(lv), "%d", m->level);
        cJSON_AddStringToObject(o, "sn", m->sn);
        cJSON_AddStringToObject(o, "name", m->name[0] ? m->name : m->sn);
        cJSON_AddStringToObject(o, "type", m->type);
        cJSON_AddStringToObject(o, "level", lv);
        cJSON_AddStringToObject(o, "val", m->val);
        char *t = cJSON_PrintUnformatted(o);
        snprintf(param, sizeof(param), "%s", t ? t : "{}");
        free(t);
        cJSON_Delete(o);
    }
    const char *params[] = {"AccessKeyId", akid, "Action", "SendSms", "Format", "JSON",
                            "OutId", outid, "PhoneNumbers", phones, "RegionId", "cn-hangzhou",
                            "SignName", sign_name, "SignatureMethod", "HMAC-SHA1",
                            "SignatureNonce", nonce, "SignatureVersion", "1.0",
                            "TemplateCode", tcode, "TemplateParam", param,
                            "Timestamp", ts, "Version", "2017-05-25"};
    query = malloc(8192);
    url = malloc(8192 + 512);
    ans = malloc(sizeof(*ans));
    if(!query || !url || !ans) {
        set_result(res, 0, 1, "out of memory", NULL);
        goto out;
    }
    if(notify_aliyun_sign(secret, params, sizeof(params) / sizeof(params[0]) / 2, sig,
                          sizeof(sig), query, 8192)) {
        set_result(res, 0, 0, "signature failed", NULL);
        goto out;
    }
    {
        char *es = curl_easy_escape(NULL, sig, 0);
        snprintf(url, 8192 + 512, "%s%sSignature=%s&%s", endpoint,
                 strchr(endpoint, '?') ? "&" : "?", es ? es : "", query);
        curl_free(es);
    }
    cc = http_req(url, NULL, NULL, timeout_ms, ans, res, &sent);
    if(cc != CURLE_OK) {
        set_result(res, 0, 1, "", curl_easy_strerror(cc));
        if(sent && (cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_ABORTED_BY_CALLBACK)) {
            /* SendSms is not idempotent: a timeout after the request left
             * may have sent the texts. Never resent blindly. */
            res->retry = 0;
            res->unknown = 1;
        }
        goto out;
    }
    {
        cJSON *a = cJSON_Parse(ans->data);
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(a, "Code");
        const cJSON *msg = cJSON_GetObjectItemCaseSensitive(a, "Message");
        const cJSON *biz = cJSON_GetObjectItemCaseSensitive(a, "BizId");
        if(cJSON_IsString(code) && !strcmp(code->valuestring, "OK")) {
            set_result(res, 1, 0, "", "Code OK");
            if(cJSON_IsString(biz))
                snprintf(res->provider_id, sizeof(res->provider_id), "%s", biz->valuestring);
        }
        else if(cJSON_IsString(code)) {
            snprintf(res->detail, sizeof(res->detail), "Code %s: %s", code->valuestring,
                     cJSON_IsString(msg) ? msg->valuestring : "");
            res->ok = 0;
            res->throttled = !strcmp(code->valuestring, "isv.BUSINESS_LIMIT_CONTROL");
            /* Flow control and server trouble may pass; a wrong signature,
             * template or number will not. */
            res->retry = res->throttled || res->http >= 500 ||
                         !strcmp(code->valuestring, "isp.SYSTEM_ERROR");
        }
        else {
            ans->data[120] = '\0';
            set_result(res, 0, res->http >= 500, "unexpected answer: ", ans->data);
        }
        cJSON_Delete(a);
    }
out:
    sodium_memzero(secret, sizeof(secret));
    free(query);
    free(url);
    free(ans);
}

/* QuerySendDetails (Dysmsapi 2017-05-25) for the first phone on the day of
 * the send: delivered when a record carries our OutId. */
static int verify_sms(const cJSON *cfg, const struct mcs_secret_key *key,
                      const struct notify_msg *m, long timeout_ms, struct notify_result *res)
{
    const char *endpoint = cfg_str(cfg, "endpoint", "https://dysmsapi.aliyuncs.com/");
    const char *akid = cfg_str(cfg, "access_key_id", "");
    const char *phones = m->recipients ? m->recipients : cfg_str(cfg, "phones", "");
    char secret[256], nonce[40], ts[32], day[16], outid[40], phone[32], sig[64];
    char *query = NULL, *url = NULL;
    struct rbuf *ans = NULL;
    unsigned char rnd[16];
    int found = -1;

    snprintf(phone, sizeof(phone), "%.*s", (int)strcspn(phones, ",; "), phones);
    if(!*akid || !*phone || cfg_secret(cfg, "access_key_secret", key, secret, sizeof(secret)))
        return -1;
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(nonce, sizeof(nonce), rnd, sizeof(rnd));
    {
        time_t now = time(NULL);
        struct tm tmv;
        gmtime_r(&now, &tmv);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tmv);
        /* SendDate is the day in China time (UTC+8). */
        now += 8 * 3600;
        gmtime_r(&now, &tmv);
        strftime(day, sizeof(day), "%Y%m%d", &tmv);
    }
    snprintf(outid, sizeof(outid), "mcs-%lld", m->alarm_id);
    const char *params[] = {"AccessKeyId", akid, "Action", "QuerySendDetails", "CurrentPage", "1",
                            "Format", "JSON", "PageSize", "50", "PhoneNumber", phone,
                            "RegionId", "cn-hangzhou", "SendDate", day,
                            "SignatureMethod", "HMAC-SHA1", "SignatureNonce", nonce,
                            "SignatureVersion", "1.0", "Timestamp", ts, "Version", "2017-05-25"};
    query = malloc(4096);
    url = malloc(4096 + 512);
    ans = malloc(sizeof(*ans));
    if(!query || !url || !ans)
        goto out;
    if(notify_aliyun_sign(secret, params, sizeof(params) / sizeof(params[0]) / 2, sig,
                          sizeof(sig), query, 4096))
        goto out;
    {
        char *es = curl_easy_escape(NULL, sig, 0);
        snprintf(url, 4096 + 512, "%s%sSignature=%s&%s", endpoint,
                 strchr(endpoint, '?') ? "&" : "?", es ? es : "", query);
        curl_free(es);
    }
    if(http_req(url, NULL, NULL, timeout_ms, ans, res, NULL) != CURLE_OK)
        goto out;
    {
        cJSON *a = cJSON_Parse(ans->data);
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(a, "Code");
        const cJSON *dtos = cJSON_GetObjectItemCaseSensitive(
            cJSON_GetObjectItemCaseSensitive(a, "SmsSendDetailDTOs"), "SmsSendDetailDTO");
        const cJSON *d;
        if(cJSON_IsString(code) && !strcmp(code->valuestring, "OK")) {
            found = 0;
            cJSON_ArrayForEach(d, dtos)
            {
                const cJSON *o = cJSON_GetObjectItemCaseSensitive(d, "OutId");
                if(cJSON_IsString(o) && !strcmp(o->valuestring, outid))
                    found = 1;
            }
        }
        cJSON_Delete(a);
    }
out:
    sodium_memzero(secret, sizeof(secret));
    free(query);
    free(url);
    free(ans);
    return found;
}

const struct notify_channel notify_channels[] = {
    {"email", 0, 0, send_email, NULL, "password"},
    {"dingtalk", 20, 0, send_dingtalk, NULL, "secret"},
    {"feishu", 100, 5, send_feishu, NULL, "secret"},
    {"wecom", 20, 0, send_wecom, NULL, NULL},
    {"webhook", 0, 0, send_webhook, NULL, NULL},
    {"sms", 0, 0, send_sms, verify_sms, "access_key_secret"},
    {NULL, 0, 0, NULL, NULL, NULL},
};

int notify_check_secret(const struct notify_channel *ch, const cJSON *cfg,
                        const struct mcs_secret_key *key)
{
    char plain[512];
    int rc;
    if(!ch->secret_field || !*cfg_str(cfg, ch->secret_field, ""))
        return 0;
    rc = cfg_secret(cfg, ch->secret_field, key, plain, sizeof(plain));
    sodium_memzero(plain, sizeof(plain));
    return rc;
}

const struct notify_channel *notify_channel_find(const char *name)
{
    for(const struct notify_channel *c = notify_channels; c->name; c++)
        if(!strcmp(c->name, name))
            return c;
    return NULL;
}
