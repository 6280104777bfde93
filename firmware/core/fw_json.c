/* fw_json.c - fixed-buffer JSON writer and flat-object reader (fw_json.h).
 * Owns nothing. No OS, no heap, no libc beyond memcpy. Thread: the core's
 * main loop. */
#include "fw_json.h"
#include "fw_err.h"

#include <string.h>

static void put(struct fw_jw *w, const char *s, size_t n)
{
    if(w->over)
        return;
    if(w->len + n + 1 > w->cap) { /* keep room for the NUL */
        w->over = 1;
        return;
    }
    memcpy(w->buf + w->len, s, n);
    w->len += n;
}

static void putc1(struct fw_jw *w, char c)
{
    put(w, &c, 1);
}

static void put_u32(struct fw_jw *w, uint32_t v)
{
    char tmp[10];
    int i = 0;

    do {
        tmp[i++] = (char)('0' + v % 10u);
        v /= 10u;
    } while(v);
    while(i--)
        putc1(w, tmp[i]);
}

static void put_key(struct fw_jw *w, const char *key)
{
    if(!w->first)
        putc1(w, ',');
    w->first = 0;
    putc1(w, '"');
    put(w, key, strlen(key));
    put(w, "\":", 2);
}

void fw_jw_begin(struct fw_jw *w, char *buf, size_t cap)
{
    w->buf = buf;
    w->cap = cap;
    w->len = 0;
    w->over = cap == 0;
    w->first = 1;
    putc1(w, '{');
}

void fw_jw_str(struct fw_jw *w, const char *key, const char *val)
{
    put_key(w, key);
    putc1(w, '"');
    for(const char *p = val; *p; p++) {
        /* Our strings are plain identifiers; anything else is escaped so the
         * output stays valid JSON whatever a port passes in. */
        if(*p == '"' || *p == '\\') {
            putc1(w, '\\');
            putc1(w, *p);
        }
        else if((unsigned char)*p < 0x20) {
            putc1(w, '?');
        }
        else {
            putc1(w, *p);
        }
    }
    putc1(w, '"');
}

void fw_jw_u32(struct fw_jw *w, const char *key, uint32_t val)
{
    put_key(w, key);
    put_u32(w, val);
}

void fw_jw_i32(struct fw_jw *w, const char *key, int32_t val)
{
    put_key(w, key);
    if(val < 0) {
        putc1(w, '-');
        put_u32(w, 0u - (uint32_t)val);
    }
    else {
        put_u32(w, (uint32_t)val);
    }
}

void fw_jw_fixed1(struct fw_jw *w, const char *key, int32_t tenths)
{
    uint32_t a;

    put_key(w, key);
    if(tenths < 0) {
        putc1(w, '-');
        a = 0u - (uint32_t)tenths;
    }
    else {
        a = (uint32_t)tenths;
    }
    put_u32(w, a / 10u);
    putc1(w, '.');
    putc1(w, (char)('0' + a % 10u));
}

int fw_jw_end(struct fw_jw *w)
{
    putc1(w, '}');
    if(w->over)
        return FW_E_FULL;
    w->buf[w->len] = '\0';
    return (int)w->len;
}

/* ---- reader ---------------------------------------------------------- */

struct rd {
    const char *p, *end;
};

static void ws(struct rd *r)
{
    while(r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
        r->p++;
}

/* A string starting at r->p (the quote). Escapes are allowed only for
 * quote, backslash and slash; they stay escaped in the borrowed text, which
 * is fine for our values (URLs, hex digests, command names) — a value with
 * a backslash in it is refused by the command checks. */
static int rd_str(struct rd *r, const char **s, size_t *n)
{
    const char *start;

    if(r->p >= r->end || *r->p != '"')
        return FW_E_MALFORMED;
    start = ++r->p;
    while(r->p < r->end && *r->p != '"') {
        if((unsigned char)*r->p < 0x20)
            return FW_E_MALFORMED;
        if(*r->p == '\\') {
            if(r->p + 1 >= r->end || (r->p[1] != '"' && r->p[1] != '\\' && r->p[1] != '/'))
                return FW_E_MALFORMED;
            r->p++;
        }
        r->p++;
    }
    if(r->p >= r->end)
        return FW_E_MALFORMED;
    *s = start;
    *n = (size_t)(r->p - start);
    r->p++;
    return FW_OK;
}

static int digit(char c)
{
    return c >= '0' && c <= '9';
}

/* JSON number grammar, value in single precision, |v| <= 1e9. */
static int rd_num(struct rd *r, float *v, int *is_int)
{
    float x = 0.0f, scale = 1.0f;
    int neg = 0, nd = 0, e = 0, eneg = 0, ed = 0;

    *is_int = 1;
    if(r->p < r->end && *r->p == '-') {
        neg = 1;
        r->p++;
    }
    if(r->p >= r->end || !digit(*r->p))
        return FW_E_MALFORMED;
    if(*r->p == '0' && r->p + 1 < r->end && digit(r->p[1]))
        return FW_E_MALFORMED; /* no leading zeros */
    while(r->p < r->end && digit(*r->p)) {
        if(++nd > 10)
            return FW_E_MALFORMED;
        x = x * 10.0f + (float)(*r->p++ - '0');
    }
    if(r->p < r->end && *r->p == '.') {
        *is_int = 0;
        r->p++;
        if(r->p >= r->end || !digit(*r->p))
            return FW_E_MALFORMED;
        while(r->p < r->end && digit(*r->p)) {
            scale *= 0.1f;
            if(scale > 1e-9f)
                x += (float)(*r->p - '0') * scale;
            r->p++;
        }
    }
    if(r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
        *is_int = 0;
        r->p++;
        if(r->p < r->end && (*r->p == '+' || *r->p == '-'))
            eneg = *r->p++ == '-';
        if(r->p >= r->end || !digit(*r->p))
            return FW_E_MALFORMED;
        while(r->p < r->end && digit(*r->p)) {
            if(++ed > 2)
                return FW_E_MALFORMED;
            e = e * 10 + (*r->p++ - '0');
        }
        while(e-- > 0) {
            x = eneg ? x * 0.1f : x * 10.0f;
            if(x > 1e9f)
                return FW_E_MALFORMED;
        }
    }
    if(x > 1e9f)
        return FW_E_MALFORMED;
    *v = neg ? -x : x;
    return FW_OK;
}

static int rd_word(struct rd *r, const char *w)
{
    size_t n = strlen(w);

    if((size_t)(r->end - r->p) < n || memcmp(r->p, w, n) != 0)
        return FW_E_MALFORMED;
    r->p += n;
    return FW_OK;
}

int fw_json_parse(const char *in, size_t len, struct fw_jobj *out)
{
    struct rd r = {in, in + len};
    struct fw_jmember *m;
    const char *ks;
    size_t kn;
    int rc = FW_E_MALFORMED;

    out->n = 0;
    ws(&r);
    if(r.p >= r.end || *r.p++ != '{')
        goto out;
    ws(&r);
    if(r.p < r.end && *r.p == '}') {
        r.p++;
        goto done;
    }
    for(;;) {
        ws(&r);
        if(out->n >= FW_JSON_MAX_KEYS || rd_str(&r, &ks, &kn) != FW_OK || kn == 0 ||
           kn >= FW_JSON_KEY_MAX)
            goto out;
        m = &out->m[out->n];
        memcpy(m->key, ks, kn);
        m->key[kn] = '\0';
        if(fw_json_get(out, m->key))
            goto out; /* duplicate key */
        ws(&r);
        if(r.p >= r.end || *r.p++ != ':')
            goto out;
        ws(&r);
        if(r.p >= r.end)
            goto out;
        m->str = NULL;
        m->str_len = 0;
        m->num = 0.0f;
        m->is_int = 0;
        if(*r.p == '"') {
            m->type = FW_JT_STR;
            if(rd_str(&r, &m->str, &m->str_len) != FW_OK)
                goto out;
        }
        else if(*r.p == 't' || *r.p == 'f') {
            m->type = FW_JT_BOOL;
            m->num = *r.p == 't' ? 1.0f : 0.0f;
            if(rd_word(&r, *r.p == 't' ? "true" : "false") != FW_OK)
                goto out;
        }
        else if(*r.p == 'n') {
            m->type = FW_JT_NULL;
            if(rd_word(&r, "null") != FW_OK)
                goto out;
        }
        else {
            m->type = FW_JT_NUM;
            if(rd_num(&r, &m->num, &m->is_int) != FW_OK)
                goto out;
        }
        out->n++;
        ws(&r);
        if(r.p >= r.end)
            goto out;
        if(*r.p == ',') {
            r.p++;
            continue;
        }
        if(*r.p++ != '}')
            goto out;
        break;
    }
done:
    ws(&r);
    if(r.p != r.end)
        goto out;
    rc = FW_OK;
out:
    if(rc != FW_OK)
        out->n = 0;
    return rc;
}

const struct fw_jmember *fw_json_get(const struct fw_jobj *o, const char *key)
{
    for(int i = 0; i < o->n; i++)
        if(!strcmp(o->m[i].key, key))
            return &o->m[i];
    return NULL;
}
