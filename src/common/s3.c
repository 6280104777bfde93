/* s3.c - the S3 client of s3.h: one request function over libcurl's easy
 * interface (SigV4 by libcurl, payload hash and canonical query by us) and
 * the object operations on top. Response bodies that we parse (errors, XML
 * results) are capped at 1 MiB; object bodies stream to the caller.
 * Owns the CURL handle in struct mcs_s3. Thread: the caller's. */
#include "s3.h"
#include "err.h"
#include "log.h"

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define RESP_MAX (1 << 20)
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

static void digest_hex(const EVP_MD *md, const void *buf, size_t n, char *out)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(buf, n, d, &len, md, NULL);
    for(unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
    out[2 * len] = '\0';
}

void s3_sha256_hex(const void *buf, size_t n, char out[65])
{
    digest_hex(EVP_sha256(), buf, n, out);
}

void s3_md5_hex(const void *buf, size_t n, char out[33])
{
    digest_hex(EVP_md5(), buf, n, out);
}

static void md5_b64(const void *buf, size_t n, char out[32])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(buf, n, d, &len, EVP_md5(), NULL);
    EVP_EncodeBlock((unsigned char *)out, d, (int)len);
}

/* AWS UriEncode: unreserved characters kept, everything else %XX. */
static int uri_encode(const char *s, int keep_slash, char *out, size_t n, size_t *pos)
{
    static const char hex[] = "0123456789ABCDEF";
    for(; *s; s++) {
        unsigned char c = (unsigned char)*s;
        int keep = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                   c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/');
        if(*pos + 4 >= n)
            return MCS_ETOOBIG;
        if(keep)
            out[(*pos)++] = (char)c;
        else {
            out[(*pos)++] = '%';
            out[(*pos)++] = hex[c >> 4];
            out[(*pos)++] = hex[c & 15];
        }
    }
    out[*pos] = '\0';
    return 0;
}

int s3_canonical_query(const char *const *names, const char *const *values, int npairs,
                       char *out, size_t n)
{
    int order[16];
    size_t pos = 0;
    if(npairs > 16 || n == 0)
        return MCS_ETOOBIG;
    for(int i = 0; i < npairs; i++)
        order[i] = i;
    /* Insertion sort by name then value (a handful of pairs). */
    for(int i = 1; i < npairs; i++)
        for(int j = i; j > 0; j--) {
            int a = order[j - 1], b = order[j];
            int c = strcmp(names[a], names[b]);
            if(c == 0)
                c = strcmp(values[a] ? values[a] : "", values[b] ? values[b] : "");
            if(c <= 0)
                break;
            order[j - 1] = b;
            order[j] = a;
        }
    out[0] = '\0';
    for(int i = 0; i < npairs; i++) {
        int k = order[i];
        if(i) {
            if(pos + 2 >= n)
                return MCS_ETOOBIG;
            out[pos++] = '&';
        }
        if(uri_encode(names[k], 0, out, n, &pos))
            return MCS_ETOOBIG;
        if(pos + 2 >= n)
            return MCS_ETOOBIG;
        out[pos++] = '=';
        out[pos] = '\0';
        if(uri_encode(values[k] ? values[k] : "", 0, out, n, &pos))
            return MCS_ETOOBIG;
    }
    return 0;
}

int s3_init(struct mcs_s3 *s, const char *endpoint, const char *bucket, const char *region,
            const char *access_key, const char *secret_key, const _Atomic int *stop)
{
    size_t el;
    memset(s, 0, sizeof(*s));
    if(!endpoint[0] || !bucket[0] || strncmp(endpoint, "http", 4))
        return MCS_EINVAL;
    el = strlen(endpoint);
    while(el > 0 && endpoint[el - 1] == '/')
        el--;
    if((size_t)snprintf(s->base, sizeof(s->base), "%.*s/%s", (int)el, endpoint, bucket) >=
       sizeof(s->base))
        return MCS_EINVAL;
    snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:s3", region[0] ? region : "auto");
    if(access_key[0])
        snprintf(s->userpwd, sizeof(s->userpwd), "%s:%s", access_key, secret_key);
    s->stop = stop;
    s->curl = curl_easy_init();
    return s->curl ? 0 : MCS_ENOMEM;
}

void s3_cleanup(struct mcs_s3 *s)
{
    if(s->curl)
        curl_easy_cleanup(s->curl);
    /* The secret does not outlive the client in this struct. */
    memset(s->userpwd, 0, sizeof(s->userpwd));
    s->curl = NULL;
}

struct body_in {
    const unsigned char *p;
    size_t n, off;
};

struct resp {
    char *buf;
    size_t len, cap;
    int (*cb)(void *arg, const void *p, size_t n); /* stream 2xx bodies here */
    void *arg;
    int cb_failed;
    long status;
    char etag[MCS_S3_ETAG_MAX];
    int64_t clen;
};

static size_t read_cb(char *dst, size_t sz, size_t nm, void *arg)
{
    struct body_in *b = arg;
    size_t want = sz * nm, left = b->n - b->off;
    if(want > left)
        want = left;
    memcpy(dst, b->p + b->off, want);
    b->off += want;
    return want;
}

static size_t write_cb(char *p, size_t sz, size_t nm, void *arg)
{
    struct resp *r = arg;
    size_t n = sz * nm;
    long st = 0;
    if(r->status == 0)
        r->status = -1;
    if(r->cb) {
        /* The status is known once the body starts (headers came first). */
        st = r->status;
        if(st >= 200 && st < 300) {
            if(r->cb(r->arg, p, n)) {
                r->cb_failed = 1;
                return 0;
            }
            return n;
        }
    }
    if(r->len + n + 1 > r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 4096;
        while(cap < r->len + n + 1)
            cap *= 2;
        if(cap > RESP_MAX)
            return 0;
        char *nb = realloc(r->buf, cap);
        if(!nb)
            return 0;
        r->buf = nb;
        r->cap = cap;
    }
    memcpy(r->buf + r->len, p, n);
    r->len += n;
    r->buf[r->len] = '\0';
    return n;
}

static size_t header_cb(char *p, size_t sz, size_t nm, void *arg)
{
    struct resp *r = arg;
    size_t n = sz * nm;
    if(n > 5 && !strncmp(p, "HTTP/", 5)) {
        /* A new status line (after 100 Continue too). */
        const char *sp = memchr(p, ' ', n);
        if(sp)
            r->status = strtol(sp + 1, NULL, 10);
    }
    else if(n > 5 && !strncasecmp(p, "ETag:", 5)) {
        const char *v = p + 5;
        size_t k = 0;
        while(v < p + n && (*v == ' ' || *v == '"'))
            v++;
        while(v < p + n && *v != '"' && *v != '\r' && *v != '\n' && k + 1 < sizeof(r->etag))
            r->etag[k++] = *v++;
        r->etag[k] = '\0';
    }
    else if(n > 15 && !strncasecmp(p, "Content-Length:", 15))
        r->clen = strtoll(p + 15, NULL, 10);
    return n;
}

static int progress_cb(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
    const _Atomic int *stop = arg;
    (void)a;
    (void)b;
    (void)c;
    (void)d;
    return stop && atomic_load(stop) ? 1 : 0;
}

/* The text of an XML element <name> in the body, first match. */
static int xml_text(const char *xml, size_t len, const char *name, char *out, size_t n)
{
    int rc = MCS_ENOTFOUND;
    xmlDocPtr doc = xmlReadMemory(xml, (int)len, "s3.xml", NULL,
                                  XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
    if(!doc)
        return MCS_EPARSE;
    xmlNodePtr stack[32];
    int sp = 0;
    stack[sp++] = xmlDocGetRootElement(doc);
    while(sp > 0 && rc) {
        xmlNodePtr node = stack[--sp];
        for(; node; node = node->next) {
            if(node->type != XML_ELEMENT_NODE)
                continue;
            if(!strcmp((const char *)node->name, name)) {
                xmlChar *t = xmlNodeGetContent(node);
                snprintf(out, n, "%s", t ? (const char *)t : "");
                xmlFree(t);
                rc = 0;
                break;
            }
            if(node->children && sp < 32)
                stack[sp++] = node->children;
        }
    }
    xmlFreeDoc(doc);
    return rc;
}

/* One request. key may be NULL (bucket); query is canonical already or
 * NULL. body/n for PUT/POST. Fills r; returns 0 on 2xx, else an error. */
static int request(struct mcs_s3 *s, const char *method, const char *key, const char *query,
                   const void *body, size_t n, const char *ctype, struct resp *r, char *err,
                   size_t errn)
{
    CURL *h = s->curl;
    struct curl_slist *hdr = NULL;
    struct body_in in = {body, n, 0};
    char url[2048], path[1200], line[160], sha[65], b64[32];
    size_t pos = 0;
    int rc = MCS_EIO;
    CURLcode cc;

    path[0] = '\0';
    if(key && uri_encode(key, 1, path, sizeof(path), &pos)) {
        snprintf(err, errn, "object key too long");
        return MCS_EINVAL;
    }
    snprintf(url, sizeof(url), "%s%s%s%s%s", s->base, key ? "/" : "", path,
             query && query[0] ? "?" : "", query ? query : "");
    curl_easy_reset(h);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, 60L);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    if(s->userpwd[0]) {
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, s->sigv4);
        curl_easy_setopt(h, CURLOPT_USERPWD, s->userpwd);
    }
    if(body) {
        s3_sha256_hex(body, n, sha);
        md5_b64(body, n, b64);
        snprintf(line, sizeof(line), "Content-MD5: %s", b64);
        hdr = curl_slist_append(hdr, line);
    }
    else
        snprintf(sha, sizeof(sha), "%s", EMPTY_SHA256);
    snprintf(line, sizeof(line), "x-amz-content-sha256: %s", sha);
    hdr = curl_slist_append(hdr, line);
    /* No "Expect:" header to turn 100-continue off: libcurl 7.88 would sign
     * the empty header it then does not send. A short wait instead. */
    curl_easy_setopt(h, CURLOPT_EXPECT_100_TIMEOUT_MS, 200L);
    if(ctype) {
        snprintf(line, sizeof(line), "Content-Type: %s", ctype);
        hdr = curl_slist_append(hdr, line);
    }
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
    if(!strcmp(method, "PUT")) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_READFUNCTION, read_cb);
        curl_easy_setopt(h, CURLOPT_READDATA, &in);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)n);
    }
    else if(!strcmp(method, "POST")) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)n);
    }
    else if(!strcmp(method, "HEAD"))
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else if(strcmp(method, "GET"))
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, header_cb);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, r);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, progress_cb);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, (void *)s->stop);
    cc = curl_easy_perform(h);
    curl_slist_free_all(hdr);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &r->status);
    s->last_status = r->status;
    if(cc != CURLE_OK) {
        if(r->cb_failed)
            snprintf(err, errn, "%s %s: aborted by the receiver", method, key ? key : "/");
        else
            snprintf(err, errn, "%s %s: %s", method, key ? key : "/", curl_easy_strerror(cc));
        goto out;
    }
    if(r->status >= 200 && r->status < 300) {
        rc = 0;
        goto out;
    }
    {
        char code[64] = "", msg[200] = "";
        if(r->buf && r->len) {
            xml_text(r->buf, r->len, "Code", code, sizeof(code));
            xml_text(r->buf, r->len, "Message", msg, sizeof(msg));
        }
        snprintf(err, errn, "%s %s: HTTP %ld%s%s%s%s", method, key ? key : "/", r->status,
                 code[0] ? " " : "", code, msg[0] ? ": " : "", msg);
        rc = r->status == 404 ? MCS_ENOTFOUND : MCS_EIO;
    }
out:
    return rc;
}

static void resp_free(struct resp *r)
{
    free(r->buf);
    r->buf = NULL;
}

int s3_put(struct mcs_s3 *s, const char *key, const void *buf, size_t n,
           char etag[MCS_S3_ETAG_MAX], char *err, size_t errn)
{
    struct resp r = {0};
    int rc = request(s, "PUT", key, NULL, buf ? buf : "", n, "application/octet-stream", &r,
                     err, errn);
    if(!rc && etag)
        snprintf(etag, MCS_S3_ETAG_MAX, "%s", r.etag);
    resp_free(&r);
    return rc;
}

int s3_head(struct mcs_s3 *s, const char *key, int64_t *size, char etag[MCS_S3_ETAG_MAX],
            char *err, size_t errn)
{
    struct resp r = {0};
    r.clen = -1;
    int rc = request(s, "HEAD", key, NULL, NULL, 0, NULL, &r, err, errn);
    if(!rc) {
        if(size)
            *size = r.clen;
        if(etag)
            snprintf(etag, MCS_S3_ETAG_MAX, "%s", r.etag);
    }
    resp_free(&r);
    return rc;
}

int s3_get(struct mcs_s3 *s, const char *key, int (*cb)(void *arg, const void *p, size_t n),
           void *arg, char *err, size_t errn)
{
    struct resp r = {0};
    r.cb = cb;
    r.arg = arg;
    int rc = request(s, "GET", key, NULL, NULL, 0, NULL, &r, err, errn);
    resp_free(&r);
    return rc;
}

int s3_delete(struct mcs_s3 *s, const char *key, char *err, size_t errn)
{
    struct resp r = {0};
    int rc = request(s, "DELETE", key, NULL, NULL, 0, NULL, &r, err, errn);
    resp_free(&r);
    return rc;
}

int s3_list(struct mcs_s3 *s, const char *prefix,
            int (*cb)(void *arg, const char *key, int64_t size), void *arg, char *err,
            size_t errn)
{
    char token[1024] = "", query[2048];
    int rc = 0;
    for(int page = 0; page < 100000; page++) {
        const char *names[3] = {"list-type", "prefix", "continuation-token"};
        const char *vals[3] = {"2", prefix, token};
        struct resp r = {0};
        if(s3_canonical_query(names, vals, token[0] ? 3 : 2, query, sizeof(query))) {
            snprintf(err, errn, "list query too long");
            return MCS_EINVAL;
        }
        rc = request(s, "GET", NULL, query, NULL, 0, NULL, &r, err, errn);
        if(rc) {
            resp_free(&r);
            return rc;
        }
        xmlDocPtr doc = xmlReadMemory(r.buf ? r.buf : "", (int)r.len, "list.xml", NULL,
                                      XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING);
        int truncated = 0, stopped = 0;
        token[0] = '\0';
        if(!doc) {
            resp_free(&r);
            snprintf(err, errn, "list: unreadable XML");
            return MCS_EPARSE;
        }
        for(xmlNodePtr n = xmlDocGetRootElement(doc)->children; n && !stopped; n = n->next) {
            if(n->type != XML_ELEMENT_NODE)
                continue;
            if(!strcmp((const char *)n->name, "Contents")) {
                char k[1024] = "";
                int64_t sz = -1;
                for(xmlNodePtr c = n->children; c; c = c->next) {
                    if(c->type != XML_ELEMENT_NODE)
                        continue;
                    xmlChar *t = xmlNodeGetContent(c);
                    if(!strcmp((const char *)c->name, "Key"))
                        snprintf(k, sizeof(k), "%s", t ? (const char *)t : "");
                    else if(!strcmp((const char *)c->name, "Size"))
                        sz = t ? strtoll((const char *)t, NULL, 10) : -1;
                    xmlFree(t);
                }
                if(k[0] && cb(arg, k, sz))
                    stopped = 1;
            }
            else if(!strcmp((const char *)n->name, "IsTruncated")) {
                xmlChar *t = xmlNodeGetContent(n);
                truncated = t && !strcmp((const char *)t, "true");
                xmlFree(t);
            }
            else if(!strcmp((const char *)n->name, "NextContinuationToken")) {
                xmlChar *t = xmlNodeGetContent(n);
                snprintf(token, sizeof(token), "%s", t ? (const char *)t : "");
                xmlFree(t);
            }
        }
        xmlFreeDoc(doc);
        resp_free(&r);
        if(stopped || !truncated || !token[0])
            return 0;
    }
    return 0;
}

int s3_mpu_create(struct mcs_s3 *s, const char *key, char *upload_id, size_t idn, char *err,
                  size_t errn)
{
    struct resp r = {0};
    int rc = request(s, "POST", key, "uploads=", "", 0, "application/octet-stream", &r, err,
                     errn);
    if(!rc && (!r.buf || xml_text(r.buf, r.len, "UploadId", upload_id, idn) || !upload_id[0])) {
        snprintf(err, errn, "multipart create %s: no UploadId in the answer", key);
        rc = MCS_EPARSE;
    }
    resp_free(&r);
    return rc;
}

int s3_mpu_part(struct mcs_s3 *s, const char *key, const char *upload_id, int part,
                const void *buf, size_t n, char etag[MCS_S3_ETAG_MAX], char *err, size_t errn)
{
    char num[16], query[1200];
    const char *names[2] = {"partNumber", "uploadId"};
    const char *vals[2] = {num, upload_id};
    struct resp r = {0};
    snprintf(num, sizeof(num), "%d", part);
    if(s3_canonical_query(names, vals, 2, query, sizeof(query)))
        return MCS_EINVAL;
    int rc = request(s, "PUT", key, query, buf, n, NULL, &r, err, errn);
    if(!rc) {
        snprintf(etag, MCS_S3_ETAG_MAX, "%s", r.etag);
        if(!etag[0]) {
            snprintf(err, errn, "part %d of %s: no ETag", part, key);
            rc = MCS_EIO;
        }
    }
    resp_free(&r);
    return rc;
}

int s3_mpu_complete(struct mcs_s3 *s, const char *key, const char *upload_id,
                    const char (*etags)[MCS_S3_ETAG_MAX], int nparts,
                    char etag[MCS_S3_ETAG_MAX], char *err, size_t errn)
{
    char query[1200];
    const char *names[1] = {"uploadId"};
    const char *vals[1] = {upload_id};
    size_t cap = 128 + (size_t)nparts * (MCS_S3_ETAG_MAX + 64), len = 0;
    char *xml = malloc(cap);
    struct resp r = {0};
    int rc;
    if(!xml)
        return MCS_ENOMEM;
    if(s3_canonical_query(names, vals, 1, query, sizeof(query))) {
        free(xml);
        return MCS_EINVAL;
    }
    len += (size_t)snprintf(xml + len, cap - len, "<CompleteMultipartUpload>");
    for(int i = 0; i < nparts; i++)
        len += (size_t)snprintf(xml + len, cap - len,
                                "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>",
                                i + 1, etags[i]);
    len += (size_t)snprintf(xml + len, cap - len, "</CompleteMultipartUpload>");
    rc = request(s, "POST", key, query, xml, len, "application/xml", &r, err, errn);
    /* S3 may answer 200 with an <Error> body when completion fails late. */
    if(!rc && r.buf && strstr(r.buf, "<Error>")) {
        char code[64] = "";
        xml_text(r.buf, r.len, "Code", code, sizeof(code));
        snprintf(err, errn, "complete %s: %s", key, code);
        rc = MCS_EIO;
    }
    if(!rc && etag) {
        etag[0] = '\0';
        if(r.buf)
            xml_text(r.buf, r.len, "ETag", etag, MCS_S3_ETAG_MAX);
        /* strip quotes */
        size_t el = strlen(etag);
        if(el >= 2 && etag[0] == '"') {
            memmove(etag, etag + 1, el - 2);
            etag[el - 2] = '\0';
        }
    }
    free(xml);
    resp_free(&r);
    return rc;
}

int s3_mpu_abort(struct mcs_s3 *s, const char *key, const char *upload_id, char *err,
                 size_t errn)
{
    char query[1200];
    const char *names[1] = {"uploadId"};
    const char *vals[1] = {upload_id};
    struct resp r = {0};
    if(s3_canonical_query(names, vals, 1, query, sizeof(query)))
        return MCS_EINVAL;
    int rc = request(s, "DELETE", key, query, NULL, 0, NULL, &r, err, errn);
    resp_free(&r);
    return rc;
}
