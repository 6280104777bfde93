/* http.c - HTTP requests in, answers out, static files (see http.h).
 * Owns each connection's request/response buffers. Thread: the lws loop
 * thread; the api_ctx comes from the vhost's user pointer. */
#include "http.h"
#include "api.h"
#include "err.h"
#include "jobs.h"
#include "log.h"
#include "reqparse.h"
#include "route.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#define CHUNK 16384

struct http_pss {
    struct api_job *job; /* a deferred answer being worked on (owned by jobs.c) */
    struct api_req *rq;
    struct api_resp rs;
    size_t sent;
    size_t body_max;
    size_t body_cap;
    int reading, too_big, responding;
};

const size_t http_pss_size = sizeof(struct http_pss);

static const char placeholder[] =
    "<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\">"
    "<title>MCS-IoT</title></head><body style=\"font-family:sans-serif;margin:3em\">"
    "<h1>MCS-IoT</h1><p>mcs-api is running. The web application has not been built "
    "yet (WEB_ROOT has no index.html).</p><p>API: <a href=\"/api/ping\">/api/ping</a>, "
    "see docs/api/openapi.yaml.</p></body></html>";

static struct api_ctx *ctx_of(struct lws *wsi)
{
    return (struct api_ctx *)lws_context_user(lws_get_context(wsi));
}

static void pss_reset(struct http_pss *p)
{
    if(p->job)
        p->job->wsi = NULL; /* nobody waits for its answer any more */
    if(p->rq) {
        free(p->rq->body);
        free(p->rq);
    }
    free(p->rs.body);
    if(p->rs.file)
        fclose(p->rs.file);
    memset(p, 0, sizeof(*p));
}

static enum api_method method_of(struct lws *wsi)
{
    char *uri;
    int len;
    switch(lws_http_get_uri_and_method(wsi, &uri, &len)) {
    case LWSHUMETH_GET:
        return API_GET;
    case LWSHUMETH_POST:
        return API_POST;
    case LWSHUMETH_PUT:
        return API_PUT;
    case LWSHUMETH_DELETE:
        return API_DELETE;
    default:
        return API_OTHER;
    }
}

/* The browser security headers of every answer, the app's files and the
 * API's JSON alike (issue #16, defect 13). The CSP allows only this origin:
 * scripts and style sheets from its files (Vite emits no inline script),
 * images from the API (the floor plan) or data:/blob: URLs (ECharts' image
 * export), the WebSocket to the same origin ('self' covers ws: and wss: of
 * it, CSP level 3). Style attributes are allowed ('unsafe-inline' in
 * style-src only): ECharts builds its tooltips as HTML with style
 * attributes (innerHTML), which a stricter style-src blocks; the web e2e
 * (no violation with or without it) does not hover a chart. No script may
 * be inline. Nobody may frame the app (clickjacking of the admin pages):
 * frame-ancestors 'none', and X-Frame-Options DENY for browsers before
 * CSP 2. The page's address is not sent to other sites. */
static const char *const sec_headers[][2] = {
    {"content-security-policy:",
     "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
     "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
     "object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"},
    {"x-frame-options:", "DENY"},
    {"x-content-type-options:", "nosniff"},
    {"referrer-policy:", "same-origin"},
};

/* Adds sec_headers at *q. 0, or -1 when they do not fit before end. */
static int add_sec_headers(struct lws *wsi, unsigned char **q, unsigned char *end)
{
    for(size_t i = 0; i < sizeof(sec_headers) / sizeof(sec_headers[0]); i++)
        if(lws_add_http_header_by_name(wsi, (const unsigned char *)sec_headers[i][0],
                                       (const unsigned char *)sec_headers[i][1],
                                       (int)strlen(sec_headers[i][1]), q, end))
            return -1;
    return 0;
}

/* Writes the status line and headers, then asks for writable callbacks to
 * send the body in chunks. Returns what the callback must return. */
static int respond(struct lws *wsi, struct http_pss *p)
{
    struct api_ctx *ctx = ctx_of(wsi);
    unsigned char buf[LWS_PRE + 4096], *start = buf + LWS_PRE, *q = start,
                                       *end = buf + sizeof(buf) - 1;
    struct api_resp *rs = &p->rs;

    ctx->st.http_requests++;
    if(rs->status >= 100 && rs->status < 600)
        ctx->st.http_by_class[rs->status / 100]++;
    if(rs->status >= 500)
        LOG_W("http", "request failed", LI("status", rs->status),
              LS("path", p->rq ? p->rq->path : ""), LI("code", rs->code));
    if(lws_add_http_common_headers(wsi, (unsigned)rs->status,
                                   rs->ctype ? rs->ctype : "application/json",
                                   (lws_filepos_t)rs->len, &q, end))
        return -1;
    if(add_sec_headers(wsi, &q, end) ||
       lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                   (const unsigned char *)"no-store", 8, &q, end))
        return -1;
    for(int i = 0; i < rs->nh; i++)
        if(lws_add_http_header_by_name(wsi, (const unsigned char *)rs->hname[i],
                                       (const unsigned char *)rs->hval[i],
                                       (int)strlen(rs->hval[i]), &q, end))
            return -1;
    if(rs->close_after &&
       lws_add_http_header_by_name(wsi, (const unsigned char *)"connection:",
                                   (const unsigned char *)"close", 5, &q, end))
        return -1;
    if(lws_finalize_write_http_header(wsi, start, &q, end))
        return -1;
    p->responding = 1;
    p->sent = 0;
    lws_callback_on_writable(wsi);
    return 0;
}

static int write_more(struct lws *wsi, struct http_pss *p)
{
    unsigned char buf[LWS_PRE + CHUNK];
    size_t left = p->rs.len - p->sent, n = left > CHUNK ? CHUNK : left;
    int final = n == left, close_after = p->rs.close_after;

    if(n && p->rs.file) {
        if(fread(buf + LWS_PRE, 1, n, p->rs.file) != n)
            return -1; /* the spool file shrank: cut the connection */
    } else if(n)
        memcpy(buf + LWS_PRE, p->rs.body + p->sent, n);
    if(lws_write(wsi, buf + LWS_PRE, n, final ? LWS_WRITE_HTTP_FINAL : LWS_WRITE_HTTP) <
       (int)n)
        return -1;
    p->sent += n;
    if(!final) {
        lws_callback_on_writable(wsi);
        return 0;
    }
    pss_reset(p);
    if(close_after)
        return -1;
    return lws_http_transaction_completed(wsi) ? -1 : 0;
}

static int run(struct lws *wsi, struct http_pss *p);

/* Behind the configured reverse proxy the client is the last address the
 * proxy appended to X-Forwarded-For (nginx $proxy_add_x_forwarded_for);
 * earlier entries came from the client and are not trusted. */
static void client_address(struct lws *wsi, const struct mcs_config *cfg, char *ip, size_t n)
{
    char xff[512];
    const char *last;
    size_t len;

    if(!cfg->api_trusted_proxy[0] || strcmp(ip, cfg->api_trusted_proxy) != 0)
        return;
    if(lws_hdr_copy(wsi, xff, sizeof(xff), WSI_TOKEN_X_FORWARDED_FOR) <= 0)
        return;
    last = strrchr(xff, ',');
    last = last ? last + 1 : xff;
    while(*last == ' ')
        last++;
    len = strcspn(last, " ");
    /* Only address characters: the value lands in logs and audit rows. */
    if(!len || len >= n || strspn(last, "0123456789abcdefABCDEF.:") < len)
        return;
    memcpy(ip, last, len);
    ip[len] = '\0';
}

void http_client_ip(struct lws *wsi, struct api_ctx *ctx, char *ip, size_t n)
{
    lws_get_peer_simple(wsi, ip, n);
    if(!ctx->cfg.api_trusted_proxy[0] && !ctx->st.proxy_warned &&
       (lws_hdr_total_length(wsi, WSI_TOKEN_X_FORWARDED_FOR) > 0 ||
        lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_X_REAL_IP) > 0)) {
        /* Behind nginx without it every client is the proxy's address: one
         * client's failed logins lock out everyone (issue #16). */
        ctx->st.proxy_warned = 1;
        LOG_W("http", "proxied requests (X-Forwarded-For/X-Real-IP) but API_TRUSTED_PROXY is "
                      "not set: every client counts as the proxy's address for the login "
                      "throttle and audit; set API_TRUSTED_PROXY to the proxy's address",
              LS("peer", ip));
    }
    client_address(wsi, &ctx->cfg, ip, n);
}

static int is_api(const char *path)
{
    return !strcmp(path, "/api") || !strncmp(path, "/api/", 5) || !strcmp(path, "/metrics");
}

/* Whether an Accept-Encoding value admits `coding` (RFC 9110 12.5.3): named,
 * or covered by "*", with a q-value other than zero. A client that names no
 * coding gets the file as it is. */
static int accepts_coding(const char *ae, const char *coding)
{
    size_t cl = strlen(coding);
    int named = -1, star = 0;
    const char *s = ae;

    while(*s) {
        const char *tok;
        size_t tl;
        int ok = 1;

        s += strspn(s, " \t,");
        if(!*s)
            break;
        tok = s;
        tl = strcspn(s, " \t;,");
        s += tl;
        while(*s && *s != ',') {
            s += strspn(s, " \t;");
            if((*s == 'q' || *s == 'Q') && s[1] == '=') {
                size_t vl;
                s += 2;
                vl = strcspn(s, " \t;,");
                /* q=0, q=0.0, q=0.000: "not acceptable". */
                ok = !(vl && s[0] == '0' && strspn(s + 1, ".0") == vl - 1);
                s += vl;
            } else
                s += strcspn(s, ";,");
        }
        if(tl == cl && !strncasecmp(tok, coding, cl))
            named = ok;
        else if(tl == 1 && *tok == '*')
            star = ok;
    }
    return named >= 0 ? named : star;
}

/* The precompressed sibling of `full` (`full`.br or .gz, written by
 * scripts/web.sh build) that the request accepts: its path into alt and
 * the coding returned, or NULL for the file as it is. *vary is set when a
 * sibling exists at all, so caches keep the codings apart. */
static const char *compressed_sibling(struct lws *wsi, const char *full, char *alt, size_t n,
                                      int *vary)
{
    static const char *const codings[][2] = {{"br", ".br"}, {"gzip", ".gz"}};
    char ae[256] = "";
    const char *found = NULL;
    struct stat sb;

    *vary = 0;
    if(lws_hdr_copy(wsi, ae, sizeof(ae), WSI_TOKEN_HTTP_ACCEPT_ENCODING) < 0)
        ae[0] = '\0';
    for(size_t i = 0; i < sizeof(codings) / sizeof(codings[0]); i++) {
        int k = snprintf(alt, n, "%s%s", full, codings[i][1]);
        if(k < 0 || (size_t)k >= n || stat(alt, &sb) || !S_ISREG(sb.st_mode))
            continue;
        *vary = 1;
        if(!found && accepts_coding(ae, codings[i][0]))
            found = codings[i][0];
    }
    if(found)
        snprintf(alt, n, "%s%s", full, strcmp(found, "br") ? ".gz" : ".br");
    return found;
}

/* Caching and coding headers of a static file, NUL-terminated in buf (lws
 * adds its own "cache-control: no-store" unless other_headers name one).
 * Vite names files under /assets/ by their content hash, so they never
 * change: a year, immutable; index.html and the rest must be revalidated
 * (no-cache), so a new build is seen at once. Returns the length or -1. */
static int static_headers(struct lws *wsi, char *buf, size_t n, int hashed, const char *coding,
                          int vary)
{
    unsigned char *q = (unsigned char *)buf, *end = (unsigned char *)buf + n - 1;
    const char *cc = hashed ? "public, max-age=31536000, immutable" : "no-cache";

    if(lws_add_http_header_by_name(wsi, (const unsigned char *)"cache-control:",
                                   (const unsigned char *)cc, (int)strlen(cc), &q, end))
        return -1;
    if(coding && lws_add_http_header_by_name(wsi, (const unsigned char *)"content-encoding:",
                                             (const unsigned char *)coding, (int)strlen(coding),
                                             &q, end))
        return -1;
    if(vary && lws_add_http_header_by_name(wsi, (const unsigned char *)"vary:",
                                           (const unsigned char *)"Accept-Encoding", 15, &q, end))
        return -1;
    if(add_sec_headers(wsi, &q, end))
        return -1;
    *q = '\0';
    return (int)(q - (unsigned char *)buf);
}

static int serve_static(struct lws *wsi, struct http_pss *p, const char *path)
{
    struct api_ctx *ctx = ctx_of(wsi);
    char full[1024], alt[1040], hdr[1536];
    struct stat sb;
    const char *mime, *coding;
    int n, hashed, vary, hl;

    if(method_of(wsi) != API_GET || strstr(path, "..") || strlen(path) > 512) {
        api_error(&p->rs, method_of(wsi) != API_GET ? 405 : 404,
                  method_of(wsi) != API_GET ? E_METHOD : E_NOTFOUND, "static files: GET only");
        return respond(wsi, p);
    }
    hashed = !strncmp(path, "/assets/", 8);
    n = snprintf(full, sizeof(full), "%s%s%s", ctx->cfg.web_root, path,
                 path[strlen(path) - 1] == '/' ? "index.html" : "");
    if(n < 0 || (size_t)n >= sizeof(full) || stat(full, &sb) || !S_ISREG(sb.st_mode)) {
        /* Client-side routes of the single-page app fall back to its index. */
        hashed = 0;
        n = snprintf(full, sizeof(full), "%s/index.html", ctx->cfg.web_root);
        if(n < 0 || (size_t)n >= sizeof(full) || stat(full, &sb) || !S_ISREG(sb.st_mode)) {
            char *b = strdup(placeholder);
            if(!b)
                return -1;
            api_raw(&p->rs, 200, "text/html; charset=utf-8", b, strlen(b));
            return respond(wsi, p);
        }
    }
    mime = lws_get_mimetype(full, NULL);
    if(!mime) {
        size_t fl = strlen(full);
        mime = fl > 5 && !strcmp(full + fl - 5, ".json") ? "application/json"
               : fl > 5 && !strcmp(full + fl - 5, ".wasm") ? "application/wasm"
               : fl > 4 && !strcmp(full + fl - 4, ".map") ? "application/json"
                                                        : "application/octet-stream";
    }
    coding = compressed_sibling(wsi, full, alt, sizeof(alt), &vary);
    hl = static_headers(wsi, hdr, sizeof(hdr), hashed, coding, vary);
    if(hl < 0)
        return -1;
    ctx->st.http_requests++;
    ctx->st.http_by_class[2]++;
    n = lws_serve_http_file(wsi, coding ? alt : full, mime, hdr, hl);
    if(n < 0)
        return -1;
    if(n > 0)
        return lws_http_transaction_completed(wsi) ? -1 : 0;
    return 0;
}

static int begin(struct lws *wsi, struct http_pss *p, const char *path)
{
    struct api_ctx *ctx = ctx_of(wsi);
    struct api_req *rq;
    char cl[32], frag[300];
    int known = 0;
    const struct api_route *route;
    long long clen = -1;

    pss_reset(p);
    if(!is_api(path))
        return serve_static(wsi, p, path);
    rq = p->rq = calloc(1, sizeof(*rq));
    if(!rq)
        return -1;
    rq->method = method_of(wsi);
    snprintf(rq->path, sizeof(rq->path), "%s", path);
    if(strlen(path) >= sizeof(rq->path)) {
        api_error(&p->rs, 404, E_NOTFOUND, "path too long");
        return respond(wsi, p);
    }
    if(lws_hdr_copy(wsi, rq->auth, sizeof(rq->auth), WSI_TOKEN_HTTP_AUTHORIZATION) < 0)
        rq->auth[0] = '\0';
    if(lws_hdr_copy(wsi, rq->ctype, sizeof(rq->ctype), WSI_TOKEN_HTTP_CONTENT_TYPE) < 0)
        rq->ctype[0] = '\0';
    http_client_ip(wsi, ctx, rq->ip, sizeof(rq->ip));
    for(int i = 0;; i++) {
        int n = lws_hdr_copy_fragment(wsi, frag, sizeof(frag), WSI_TOKEN_HTTP_URI_ARGS, i);
        if(n < 0) {
            /* Either the end or a fragment too long for frag. */
            if(lws_hdr_fragment_length(wsi, WSI_TOKEN_HTTP_URI_ARGS, i) > 0)
                rq->args_bad = 1;
            break;
        }
        rq_add_arg(rq, frag);
    }
    route = api_route_find(rq->method, rq->path, rq, &known);
    p->body_max = (size_t)(route && route->body == BODY_UPLOAD ? ctx->cfg.api_upload_max
                                                                : ctx->cfg.api_body_max);
    if(lws_hdr_copy(wsi, cl, sizeof(cl), WSI_TOKEN_HTTP_CONTENT_LENGTH) > 0)
        clen = strtoll(cl, NULL, 10);
    /* Authorised from the headers, before any body is read: a stranger's
     * body (up to API_UPLOAD_MAX) is never buffered. An unknown route or a
     * refused token is answered at once and the connection closed, its
     * body unread. */
    if(!route || api_authorise(ctx, rq, &p->rs, route)) {
        if(!route)
            api_dispatch(ctx, rq, &p->rs);
        p->rs.close_after = clen > 0 || lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING);
        return respond(wsi, p);
    }
    if(clen < 0 && lws_hdr_total_length(wsi, WSI_TOKEN_HTTP_TRANSFER_ENCODING)) {
        /* libwebsockets 4.1 does not read chunked request bodies. */
        api_error(&p->rs, 411, E_BAD_REQ, "a body needs Content-Length (no chunked encoding)");
        p->rs.close_after = 1;
        return respond(wsi, p);
    }
    if((rq->method == API_POST || rq->method == API_PUT) && clen > 0) {
        if(clen > (long long)p->body_max) {
            ctx->st.bodies_too_large++;
            api_error(&p->rs, 413, E_TOOBIG, "body of %lld bytes, at most %zu allowed", clen,
                      p->body_max);
            p->rs.close_after = 1;
            return respond(wsi, p);
        }
        p->reading = 1;
        return 0;
    }
    return run(wsi, p);
}

/* Runs the request; a handler that deferred its answer leaves the
 * connection waiting for its job. */
static int run(struct lws *wsi, struct http_pss *p)
{
    struct api_ctx *ctx = ctx_of(wsi);
    api_dispatch(ctx, p->rq, &p->rs);
    if(p->rs.deferred) {
        struct api_job *j = p->rs.deferred;
        p->rs.deferred = NULL;
        j->wsi = wsi;
        snprintf(j->ip, sizeof(j->ip), "%s", p->rq->ip);
        switch(jobs_submit(ctx, j)) {
        case 0:
            break;
        case MCS_EAGAIN:
            jobs_free(j);
            api_header(&p->rs, "retry-after:", "1");
            api_error(&p->rs, 429, E_TOOMANY, "too many slow requests from this address");
            return respond(wsi, p);
        default:
            jobs_free(j);
            api_error(&p->rs, 503, E_UNAVAIL, "too many slow requests waiting");
            return respond(wsi, p);
        }
        p->job = j;
        return 0;
    }
    return respond(wsi, p);
}

/* Loop thread: answers the requests whose jobs finished. */
static void finish_jobs(struct api_ctx *ctx)
{
    struct api_job *j;
    while((j = jobs_take_done(ctx))) {
        if(j->wsi) {
            struct http_pss *p = lws_wsi_user(j->wsi);
            struct lws *wsi = j->wsi;
            p->job = NULL;
            j->done(ctx, j, &p->rs);
            if(!p->rs.status)
                api_error(&p->rs, 500, E_INTERNAL, "job gave no answer");
            if(respond(wsi, p))
                lws_set_timeout(wsi, PENDING_TIMEOUT_USER_OK, LWS_TO_KILL_ASYNC);
        }
        jobs_free(j);
    }
}

static int body_chunk(struct http_pss *p, const void *in, size_t len)
{
    struct api_req *rq = p->rq;
    if(!rq || !p->reading || p->too_big)
        return 0;
    if(rq->body_len + len > p->body_max) {
        p->too_big = 1;
        free(rq->body);
        rq->body = NULL;
        rq->body_len = 0;
        return 0;
    }
    if(rq->body_len + len + 1 > p->body_cap) {
        size_t cap = p->body_cap ? p->body_cap : 4096;
        unsigned char *nb;
        while(cap < rq->body_len + len + 1)
            cap *= 2;
        nb = realloc(rq->body, cap);
        if(!nb)
            return -1;
        rq->body = nb;
        p->body_cap = cap;
    }
    memcpy(rq->body + rq->body_len, in, len);
    rq->body_len += len;
    rq->body[rq->body_len] = '\0';
    return 0;
}

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len)
{
    struct http_pss *p = user;

    switch(reason) {
    case LWS_CALLBACK_HTTP:
        return begin(wsi, p, (const char *)in);
    case LWS_CALLBACK_HTTP_BODY:
        return body_chunk(p, in, len);
    case LWS_CALLBACK_HTTP_BODY_COMPLETION:
        if(!p->rq || !p->reading)
            return 0;
        p->reading = 0;
        if(p->too_big) {
            ctx_of(wsi)->st.bodies_too_large++;
            api_error(&p->rs, 413, E_TOOBIG, "body larger than %zu bytes", p->body_max);
            p->rs.close_after = 1;
            return respond(wsi, p);
        }
        return run(wsi, p);
    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        finish_jobs(ctx_of(wsi));
        return 0;
    case LWS_CALLBACK_HTTP_WRITEABLE:
        if(!p || !p->responding)
            return 0;
        return write_more(wsi, p);
    case LWS_CALLBACK_CLOSED_HTTP:
        if(p)
            pss_reset(p);
        return 0;
    default:
        break;
    }
    return lws_callback_http_dummy(wsi, reason, user, in, len);
}
