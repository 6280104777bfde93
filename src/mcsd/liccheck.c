/* liccheck.c - the plant's online license check (see liccheck.h).
 * Owns nothing between calls. Thread: the caller's. */
#include "liccheck.h"
#include "conn.h"
#include "err.h"
#include "licguard.h"
#include "license.h"
#include "log.h"

#include <cJSON.h>
#include <curl/curl.h>
#include <inttypes.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK_VERSION "1.0.0"
#define CHECK_TIMEOUT_MS 8000 /* under mcsd's stop budget */
#define ANSWER_MAX LIC_FILE_MAX

struct answer {
    char buf[ANSWER_MAX + 1];
    size_t len;
    int too_big;
};

static size_t on_data(char *p, size_t size, size_t nmemb, void *arg)
{
    struct answer *a = arg;
    size_t n = size * nmemb;
    if(a->len + n > ANSWER_MAX) {
        a->too_big = 1;
        return 0;
    }
    memcpy(a->buf + a->len, p, n);
    a->len += n;
    return n;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    const _Atomic int *stop = arg;
    return stop && atomic_load(stop) ? 1 : 0;
}

/* POSTs body; returns the HTTP status (0 when there was no answer). */
static long post(const struct mcs_config *cfg, const char *body, const _Atomic int *stop,
                 struct answer *a, char *err, size_t errn)
{
    CURL *c = curl_easy_init();
    struct curl_slist *h = NULL;
    char ebuf[CURL_ERROR_SIZE] = "";
    long status = 0;
    CURLcode rc;

    if(!c) {
        snprintf(err, errn, "curl init failed");
        return 0;
    }
    h = curl_slist_append(h, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_URL, cfg->license_server_url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, a);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)CHECK_TIMEOUT_MS);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, 4000L);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, ebuf);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "https,http");
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, (void *)stop);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    if(cfg->license_server_cafile[0])
        curl_easy_setopt(c, CURLOPT_CAINFO, cfg->license_server_cafile);
    rc = curl_easy_perform(c);
    if(rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    else
        snprintf(err, errn, "%s", ebuf[0] ? ebuf : curl_easy_strerror(rc));
    curl_slist_free_all(h);
    curl_easy_cleanup(c);
    return status;
}

/* What one check learned, applied to license.state under its lock. */
struct outcome {
    const struct mcs_config *cfg;
    const char *license_id;
    int64_t now;
    enum liccheck_outcome result;
    const char *rejected;  /* LICCHECK_REJECTED: the status */
    const char *reason;    /* LICCHECK_FAILED */
};

static int apply(struct lic_record *r, int loaded, void *arg)
{
    const struct outcome *o = arg;
    licguard_record_for(o->cfg, r, loaded, o->license_id, o->now);
    if(o->result == LICCHECK_OK) {
        /* The server's signed time agreed with ours: the mark follows it. */
        r->last_good = o->now;
        r->hwm = o->now;
        r->rejected[0] = '\0';
        r->fail_reason[0] = '\0';
        return 0;
    }
    if(o->now > r->hwm)
        r->hwm = o->now;
    if(o->result == LICCHECK_REJECTED)
        snprintf(r->rejected, sizeof(r->rejected), "%s", o->rejected);
    else {
        r->last_fail = o->now > r->last_fail ? o->now : r->last_fail;
        snprintf(r->fail_reason, sizeof(r->fail_reason), "%s", o->reason);
    }
    return 0;
}

static void keep_token(const struct mcs_config *cfg, const char *text, int64_t now)
{
    char path[600], tmp[620], err[256];
    cJSON *o = cJSON_CreateObject();
    char *j;
    FILE *f;
    redisContext *rds;

    cJSON_AddStringToObject(o, "token", text);
    cJSON_AddNumberToObject(o, "received_at", (double)now);
    j = cJSON_Print(o);
    cJSON_Delete(o);
    licguard_path(cfg, "token.json", path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    f = j ? fopen(tmp, "w") : NULL;
    if(f && fputs(j, f) >= 0 && fflush(f) == 0 && fsync(fileno(f)) == 0 && fclose(f) == 0) {
        f = NULL;
        if(rename(tmp, path) != 0)
            LOG_W("license", "token.json not written", LS("path", path));
    } else
        LOG_W("license", "token.json not written", LS("path", path));
    if(f)
        fclose(f);
    free(j);
    rds = mcs_redis_connect(cfg, err, sizeof(err));
    if(rds) {
        redisReply *r = redisCommand(rds, "SETEX license:token 86400 %s", text);
        if(!r || r->type == REDIS_REPLY_ERROR)
            LOG_W("license", "license:token not stored in Redis");
        freeReplyObject(r);
        redisFree(rds);
    } else
        LOG_W("license", "license:token not stored in Redis", LS("error", err));
}

enum liccheck_outcome liccheck_run(const struct mcs_config *cfg, const _Atomic int *stop,
                                   char *msg, size_t msgn)
{
    struct mcs_license lic;
    struct mcs_lic_token tok;
    struct answer *a = NULL;
    struct outcome o;
    unsigned char nb[16];
    char fp[LIC_FP_HEX + 1], nonce[33], why[256] = "", body[512], err[CURL_ERROR_SIZE + 64] = "";
    int64_t now = licguard_now(), skew;
    long status;

    memset(&o, 0, sizeof(o));
    o.cfg = cfg;
    o.now = now;
    if(license_load(cfg->license_file, license_builtin_keys(), &lic, why, sizeof(why)) != 0) {
        snprintf(msg, msgn, "%s", why);
        return LICCHECK_NO_LICENSE;
    }
    o.license_id = lic.id;
    o.result = LICCHECK_FAILED;
    if(license_fingerprint(cfg->machine_id_file, fp, why, sizeof(why)) != 0) {
        o.reason = why;
        goto out;
    }
    randombytes_buf(nb, sizeof(nb));
    sodium_bin2hex(nonce, sizeof(nonce), nb, sizeof(nb));
    snprintf(body, sizeof(body),
             "{\"machine_id\":\"%s\",\"license_key\":\"%s\",\"version\":\"%s\",\"nonce\":\"%s\"}",
             fp, lic.key, CHECK_VERSION, nonce);
    a = calloc(1, sizeof(*a));
    if(!a) {
        o.reason = "out of memory";
        goto out;
    }
    status = post(cfg, body, stop, a, err, sizeof(err));
    if(status != 200) {
        if(status)
            snprintf(err, sizeof(err), "HTTP %ld", status);
        snprintf(why, sizeof(why), "授权服务器不可达 / license server unreachable: %.180s", err);
        o.reason = why;
        goto out;
    }
    if(lic_token_parse(a->buf, a->len, license_builtin_keys(), &tok, err, sizeof(err)) != 0) {
        snprintf(why, sizeof(why), "伪造的应答 / forged answer: %.180s", err);
        o.reason = why;
        goto out;
    }
    if(strcmp(tok.nonce, nonce) != 0) {
        o.reason = "重放的旧应答 / replayed answer: the nonce is not this request's";
        goto out;
    }
    if(strcmp(tok.key, lic.key) != 0 || strcmp(tok.fingerprint, fp) != 0) {
        o.reason = "应答不属于本授权或本机 / answer for another license or host";
        goto out;
    }
    skew = tok.issued_at - now;
    if(skew > LIC_CLOCK_TOLERANCE_S || skew < -LIC_CLOCK_TOLERANCE_S) {
        snprintf(why, sizeof(why),
                 "系统时钟与授权服务器相差 %" PRId64 " 秒 (时钟被回拨?) / clock differs from the "
                 "license server by %" PRId64 " s (turned back?)",
                 -skew, -skew);
        o.reason = why;
        goto out;
    }
    if(tok.status != LIC_TOK_OK) {
        o.result = LICCHECK_REJECTED;
        o.rejected = lic_token_status_name(tok.status);
        goto out;
    }
    o.result = LICCHECK_OK;
    keep_token(cfg, a->buf, now);
out:
    if(licguard_state_update(cfg, apply, &o) != 0)
        LOG_E("license", "license.state not written");
    switch(o.result) {
    case LICCHECK_OK:
        snprintf(msg, msgn, "online check ok, token valid 24 h");
        break;
    case LICCHECK_REJECTED:
        snprintf(msg, msgn, "%s", lic_token_status_msg(tok.status));
        break;
    default:
        snprintf(msg, msgn, "%s", o.reason ? o.reason : "check failed");
        break;
    }
    free(a);
    return o.result;
}
