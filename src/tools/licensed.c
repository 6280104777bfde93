/* licensed.c - `mcs-licensed`, the vendor's license server (issue #17,
 * R-LI-3, R-LI-6): HTTPS (libwebsockets), POST /api/verify answers with a
 * token signed by the vendor key that carries the request's nonce and binds
 * the license to the first host fingerprint that activates it; GET /health;
 * per-address rate limit; JSON log lines; state in the SQLite store of
 * licstore.h (WAL), so bindings and revocations survive restarts and
 * `mcs-license` may change them while the server runs.
 * Owns its lws context, the store handle and the rate-limit table.
 * Thread: the lws loop thread only (one SQLite handle, serial requests). */
#include "err.h"
#include "licguard.h"
#include "licstore.h"
#include "license.h"
#include "log.h"
#include "timeutil.h"

#include <cJSON.h>
#include <libwebsockets.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BODY_MAX 2048       /* a verify request is well under 512 bytes */
#define TOKEN_TTL_S 86400   /* R-LI-3: a token is valid 24 h */
#define RL_SLOTS 1024       /* addresses tracked by the rate limit */
#define NONCE_MIN 32        /* hex digits: 16 random bytes at least */
#define NONCE_MAX 64

struct rl_slot {
    char ip[64];
    double tokens;
    int64_t last_ms;
};

struct server {
    struct licstore *store;
    unsigned char sk[LIC_SK_LEN];
    double rate_per_s, burst;
    struct rl_slot rl[RL_SLOTS];
    uint64_t verifies, refused_rate, bad_requests;
};

struct pss {
    char path[64];
    char ip[64];
    char body[BODY_MAX + 1];
    size_t body_len;
    int too_big;
    int status;
    char *resp; /* malloc'd */
    size_t resp_len;
    const char *ctype;
};

static volatile sig_atomic_t stopping;
static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static struct server *srv_of(struct lws *wsi)
{
    return lws_context_user(lws_get_context(wsi));
}

/* Token bucket per address; the least recently used slot is reused. */
static int rate_ok(struct server *s, const char *ip)
{
    int64_t now = mcs_mono_ms();
    struct rl_slot *slot = NULL, *oldest = &s->rl[0];
    for(int i = 0; i < RL_SLOTS; i++) {
        if(!strcmp(s->rl[i].ip, ip)) {
            slot = &s->rl[i];
            break;
        }
        if(s->rl[i].last_ms < oldest->last_ms)
            oldest = &s->rl[i];
    }
    if(!slot) {
        slot = oldest;
        snprintf(slot->ip, sizeof(slot->ip), "%s", ip);
        slot->tokens = s->burst;
        slot->last_ms = now;
    }
    slot->tokens += (double)(now - slot->last_ms) / 1000.0 * s->rate_per_s;
    if(slot->tokens > s->burst)
        slot->tokens = s->burst;
    slot->last_ms = now;
    if(slot->tokens < 1.0)
        return 0;
    slot->tokens -= 1.0;
    return 1;
}

static void answer(struct pss *p, int status, const char *ctype, const char *body)
{
    free(p->resp);
    p->resp = strdup(body);
    p->resp_len = p->resp ? strlen(p->resp) : 0;
    p->status = status;
    p->ctype = ctype;
}

static void answer_error(struct pss *p, int status, const char *msg)
{
    cJSON *o = cJSON_CreateObject();
    char *t;
    cJSON_AddNumberToObject(o, "status", status);
    cJSON_AddStringToObject(o, "error", msg);
    t = cJSON_PrintUnformatted(o);
    answer(p, status, "application/json", t ? t : "{}");
    free(t);
    cJSON_Delete(o);
}

static int hex_ok(const char *s, size_t lo, size_t hi)
{
    size_t n = strlen(s);
    return n >= lo && n <= hi && strspn(s, "0123456789abcdef") == n;
}

static const char *jstr(const cJSON *o, const char *name)
{
    const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
    return v ? v : "";
}

/* POST /api/verify {machine_id, license_key, version, nonce}. */
static void verify(struct server *s, struct pss *p)
{
    cJSON *req = cJSON_ParseWithLength(p->body, p->body_len);
    const char *fp, *key, *nonce, *version;
    struct mcs_license lic;
    struct mcs_lic_token tok;
    enum lic_token_status st;
    char text[LIC_FILE_MAX + 1], masked[LIC_KEY_LEN + 1];
    int64_t now = licguard_now(); /* the wall clock; a test clock in test builds only */

    if(!cJSON_IsObject(req)) {
        s->bad_requests++;
        answer_error(p, 400, "body is not a JSON object");
        goto out;
    }
    fp = jstr(req, "machine_id");
    key = jstr(req, "license_key");
    nonce = jstr(req, "nonce");
    version = jstr(req, "version");
    if(!hex_ok(fp, LIC_FP_HEX, LIC_FP_HEX) || !license_key_valid(key) ||
       !hex_ok(nonce, NONCE_MIN, NONCE_MAX) || strlen(version) > 32) {
        s->bad_requests++;
        answer_error(p, 400,
                     "machine_id: 64 hex digits (the fingerprint), license_key: "
                     "MCS-XXXX-XXXX-XXXX, nonce: 32..64 hex digits, version: at most 32 bytes");
        goto out;
    }
    if(licstore_verify(s->store, key, fp, now, &st, &lic) != 0) {
        LOG_E("licensed", "store error during verify");
        answer_error(p, 503, "license store unavailable");
        goto out;
    }
    memset(&tok, 0, sizeof(tok));
    snprintf(tok.license_id, sizeof(tok.license_id), "%s", lic.id[0] ? lic.id : "unknown");
    snprintf(tok.key, sizeof(tok.key), "%s", key);
    snprintf(tok.fingerprint, sizeof(tok.fingerprint), "%s", fp);
    snprintf(tok.nonce, sizeof(tok.nonce), "%s", nonce);
    tok.status = st;
    tok.issued_at = now;
    tok.expires_at = st == LIC_TOK_OK ? now + TOKEN_TTL_S : now;
    if(lic_token_format(&tok, s->sk, text, sizeof(text)) != 0) {
        answer_error(p, 500, "token not made");
        goto out;
    }
    s->verifies++;
    license_key_mask(key, masked);
    LOG_I("licensed", "verify", LS("ip", p->ip), LS("license_key", masked),
          LS("license_id", tok.license_id), LS("host", fp + 48), LS("version", version),
          LS("status", lic_token_status_name(st)));
    /* Every verdict is signed, a rejection too: the plant acts on none
     * that the vendor key did not sign. */
    answer(p, 200, "text/plain; charset=utf-8", text);
out:
    cJSON_Delete(req);
}

static int count_row(const struct licstore_row *r, void *arg)
{
    (void)r;
    (*(long *)arg)++;
    return 0;
}

static void health(struct server *s, struct pss *p)
{
    char buf[256];
    long n = 0;
    int ok = licstore_list(s->store, count_row, &n) == 0;
    snprintf(buf, sizeof(buf),
             "{\"status\":\"%s\",\"licenses\":%ld,\"verifies\":%llu,\"rate_limited\":%llu,"
             "\"bad_requests\":%llu}",
             ok ? "ok" : "store_error", n, (unsigned long long)s->verifies,
             (unsigned long long)s->refused_rate, (unsigned long long)s->bad_requests);
    answer(p, ok ? 200 : 503, "application/json", buf);
}

static int send_head(struct lws *wsi, struct pss *p)
{
    unsigned char buf[LWS_PRE + 512], *start = buf + LWS_PRE, *q = start,
                                      *end = buf + sizeof(buf) - 1;
    if(lws_add_http_common_headers(wsi, (unsigned)p->status, p->ctype, (lws_filepos_t)p->resp_len,
                                   &q, end) ||
       lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                   (const unsigned char *)"no-store", 8, &q, end) ||
       lws_finalize_write_http_header(wsi, start, &q, end))
        return -1;
    lws_callback_on_writable(wsi);
    return 0;
}

static void route(struct lws *wsi, struct pss *p, int is_post)
{
    struct server *s = srv_of(wsi);
    if(!rate_ok(s, p->ip)) {
        s->refused_rate++;
        answer_error(p, 429, "too many requests from this address");
    } else if(is_post && !strcmp(p->path, "/api/verify")) {
        if(p->too_big)
            answer_error(p, 413, "body larger than 2048 bytes");
        else
            verify(s, p);
    } else if(!is_post && !strcmp(p->path, "/health"))
        health(s, p);
    else
        answer_error(p, 404, "no such route");
}

static int cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
              size_t len)
{
    struct pss *p = user;
    switch(reason) {
    case LWS_CALLBACK_HTTP: {
        char cl[32];
        int is_post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
        memset(p, 0, sizeof(*p));
        snprintf(p->path, sizeof(p->path), "%s", (const char *)in);
        lws_get_peer_simple(wsi, p->ip, sizeof(p->ip));
        if(is_post && lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0 &&
           strtoll(cl, NULL, 10) > 0)
            return 0; /* the body follows */
        route(wsi, p, is_post);
        return send_head(wsi, p);
    }
    case LWS_CALLBACK_HTTP_BODY:
        if(p->body_len + len > BODY_MAX)
            p->too_big = 1;
        else {
            memcpy(p->body + p->body_len, in, len);
            p->body_len += len;
        }
        return 0;
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        p->body[p->body_len] = '\0';
        route(wsi, p, 1);
        return send_head(wsi, p);
    case LWS_CALLBACK_HTTP_WRITEABLE: {
        unsigned char *buf;
        int w;
        if(!p->resp)
            return -1;
        buf = malloc(LWS_PRE + p->resp_len + 1);
        if(!buf)
            return -1;
        memcpy(buf + LWS_PRE, p->resp, p->resp_len);
        w = lws_write(wsi, buf + LWS_PRE, p->resp_len, LWS_WRITE_HTTP_FINAL);
        free(buf);
        free(p->resp);
        p->resp = NULL;
        if(w < (int)p->resp_len)
            return -1;
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    }
    case LWS_CALLBACK_CLOSED_HTTP:
        if(p) {
            free(p->resp);
            p->resp = NULL;
        }
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}

static struct lws_protocols protocols[] = {
    {"http", cb, sizeof(struct pss), 0, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

static void lws_log(int level, const char *line)
{
    (void)level;
    LOG_W("lws", "libwebsockets", LS("line", line));
}

static const char usage_text[] =
    "usage: mcs-licensed --db FILE --sk FILE --cert FILE --key FILE [--bind ADDR] [--port N]\n"
    "                    [--rate-per-min N] [--burst N]\n"
    "  The vendor's license server: POST /api/verify, GET /health, over HTTPS.\n"
    "  --db    the store of mcs-license (SQLite, WAL; created if missing)\n"
    "  --sk    the vendor's secret key (mcs-license keygen)\n"
    "  --cert/--key  TLS certificate and key (PEM)\n"
    "  --bind  address (default 127.0.0.1), --port (default 8443)\n"
    "  --rate-per-min / --burst  requests per address (default 30 / 10)\n";

int main(int argc, char **argv)
{
    static struct server s;
    struct lws_context_creation_info info;
    struct lws_context *lws = NULL;
    const char *db = NULL, *sk = NULL, *cert = NULL, *key = NULL, *bind = "127.0.0.1";
    long port = 8443, per_min = 30, burst = 10;
    int rc = 1;

    for(int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        char *end = NULL;
        if(!strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if(!v) {
            fputs(usage_text, stderr);
            return 2;
        }
        i++;
        if(!strcmp(a, "--db"))
            db = v;
        else if(!strcmp(a, "--sk"))
            sk = v;
        else if(!strcmp(a, "--cert"))
            cert = v;
        else if(!strcmp(a, "--key"))
            key = v;
        else if(!strcmp(a, "--bind"))
            bind = v;
        else if(!strcmp(a, "--port") || !strcmp(a, "--rate-per-min") || !strcmp(a, "--burst")) {
            long n = strtol(v, &end, 10);
            if(!end || *end || n < 0 || n > 65535) {
                fprintf(stderr, "mcs-licensed: %s needs a number 0..65535\n", a);
                return 2;
            }
            *(!strcmp(a, "--port") ? &port : !strcmp(a, "--burst") ? &burst : &per_min) = n;
        } else {
            fprintf(stderr, "mcs-licensed: unknown argument '%s'\n", a);
            fputs(usage_text, stderr);
            return 2;
        }
    }
    if(!db || !sk || !cert || !key || per_min < 1 || burst < 1) {
        fputs(usage_text, stderr);
        return 2;
    }
    if(sodium_init() < 0)
        return 1;
    if(license_sk_load(sk, s.sk) != 0) {
        LOG_E("licensed", "cannot load the vendor secret key", LS("path", sk));
        return 1;
    }
    if(licstore_open(db, &s.store) != 0) {
        LOG_E("licensed", "cannot open the store", LS("path", db));
        goto out;
    }
    s.rate_per_s = (double)per_min / 60.0;
    s.burst = (double)burst;
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    signal(SIGPIPE, SIG_IGN);
    lws_set_log_level(LLL_ERR, lws_log);
    memset(&info, 0, sizeof(info));
    info.port = (int)port;
    info.iface = bind;
    info.protocols = protocols;
    info.user = &s;
    info.options = LWS_SERVER_OPTION_DO_SSL_GLOBAL_INIT | LWS_SERVER_OPTION_DISABLE_IPV6;
    info.ssl_cert_filepath = cert;
    info.ssl_private_key_filepath = key;
    info.timeout_secs = 10;
    info.keepalive_timeout = 10;
    lws = lws_create_context(&info);
    if(!lws) {
        LOG_E("licensed", "cannot listen", LS("bind", bind), LI("port", port));
        goto out;
    }
    LOG_I("licensed", "ready", LS("bind", bind), LI("port", port), LS("db", db));
    while(!stopping)
        if(lws_service(lws, 0) < 0)
            break;
    LOG_I("licensed", "stopping");
    rc = 0;
out:
    if(lws)
        lws_context_destroy(lws);
    licstore_free(s.store);
    sodium_memzero(s.sk, sizeof(s.sk));
    return rc;
}
