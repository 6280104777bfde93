/* license.c - signed license file and token, host fingerprint (see license.h).
 * Owns the canonical text form of both documents and the built-in vendor keys.
 * Touches only the files it is asked to read. Thread: any. */
#include "license.h"
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define B64V sodium_base64_VARIANT_ORIGINAL
#define SIG_B64_LEN 88 /* base64 of 64 bytes, with padding */
#define MAGIC_LICENSE "MCS-LICENSE 1"
#define MAGIC_TOKEN "MCS-TOKEN 1"
#define MACHINE_ID_MAX 256

/* The product key: MCS_LICENSE_PUBKEY of CMake, 64 hex digits. */
#ifndef MCS_LICENSE_PUBKEY
#error "MCS_LICENSE_PUBKEY must be defined by the build (CMakeLists.txt)"
#endif

/* The fixed key of the fingerprint hash: a fingerprint means nothing outside
 * this product, and the machine id cannot be recovered from it. */
static const unsigned char fp_key[crypto_generichash_KEYBYTES] = {
    0x6d, 0x63, 0x73, 0x2d, 0x69, 0x6f, 0x74, 0x2d, 0x68, 0x6f, 0x73, 0x74, 0x2d, 0x66, 0x70, 0x01,
    0x9e, 0x37, 0x79, 0xb9, 0x7f, 0x4a, 0x7c, 0x15, 0xf3, 0x9c, 0xc0, 0x60, 0x5c, 0xed, 0xc8, 0x34};

static unsigned char builtin_pk[2][LIC_PK_LEN];
static struct lic_keyring builtin_ring;
static int builtin_done;

static int hex_key(const char *hex, unsigned char *out, size_t outn)
{
    size_t bl = 0;
    const char *end = NULL;
    size_t hl = strlen(hex);
    while(hl && (hex[hl - 1] == '\n' || hex[hl - 1] == '\r' || hex[hl - 1] == ' '))
        hl--;
    if(hl != 2 * outn || sodium_hex2bin(out, outn, hex, hl, NULL, &bl, &end) != 0 || bl != outn ||
       end != hex + hl)
        return MCS_EPARSE;
    return 0;
}

const struct lic_keyring *license_builtin_keys(void)
{
    /* Idempotent: racing first calls write the same bytes. */
    if(!builtin_done) {
        int n = 0;
        if(hex_key(MCS_LICENSE_PUBKEY, builtin_pk[n], LIC_PK_LEN) == 0)
            n++;
#ifdef MCS_LICENSE_TEST_PUBKEY
        if(hex_key(MCS_LICENSE_TEST_PUBKEY, builtin_pk[n], LIC_PK_LEN) == 0)
            n++;
#endif
        builtin_ring.pk = (const unsigned char (*)[LIC_PK_LEN])builtin_pk;
        builtin_ring.n = n;
        builtin_done = 1;
    }
    return &builtin_ring;
}

int license_test_build(void)
{
#ifdef MCS_LICENSE_TEST_PUBKEY
    return 1;
#else
    return 0;
#endif
}

__attribute__((format(printf, 3, 4))) static void say(char *why, size_t whyn, const char *fmt,
                                                        ...)
{
    va_list ap;
    if(!why || !whyn)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whyn, fmt, ap);
    va_end(ap);
}

/* ---- the canonical text form ---- */

struct field {
    const char *name;
    char *val;       /* destination, NUL-terminated */
    size_t cap;      /* bytes of val including the NUL */
};

/* A value is printable: no control byte (UTF-8 above 0x7f is allowed), no
 * leading or trailing space, not empty. */
static int value_ok(const char *v, size_t n)
{
    if(n == 0 || v[0] == ' ' || v[n - 1] == ' ')
        return 0;
    for(size_t i = 0; i < n; i++)
        if((unsigned char)v[i] < 0x20 || v[i] == 0x7f)
            return 0;
    return 1;
}

/* Reads one "name: value\n" line at *p. Returns 0 and advances *p. */
static int take_line(const char **p, const char *end, const char *name, char *val, size_t cap,
                     char *why, size_t whyn)
{
    size_t nl = strlen(name);
    const char *s = *p;
    const char *eol = memchr(s, '\n', (size_t)(end - s));

    if(!eol) {
        say(why, whyn, "格式错误: 缺少字段 %s / malformed: field '%s' missing or unterminated",
            name, name);
        return MCS_EPARSE;
    }
    if((size_t)(eol - s) < nl + 2 || memcmp(s, name, nl) != 0 || s[nl] != ':' ||
       s[nl + 1] != ' ') {
        say(why, whyn, "格式错误: 需要字段 %s / malformed: expected field '%s'", name, name);
        return MCS_EPARSE;
    }
    s += nl + 2;
    if(!value_ok(s, (size_t)(eol - s)) || (size_t)(eol - s) >= cap) {
        say(why, whyn, "格式错误: 字段 %s 的值无效 / malformed: bad value of '%s'", name, name);
        return MCS_EPARSE;
    }
    memcpy(val, s, (size_t)(eol - s));
    val[eol - s] = '\0';
    *p = eol + 1;
    return 0;
}

/* Splits and verifies a document: magic, fields, signature. */
static int doc_parse(const char *buf, size_t n, const char *magic, struct field *f, int nf,
                     const struct lic_keyring *keys, char *why, size_t whyn)
{
    const char *p = buf, *end = buf + n;
    const char *signed_end;
    char sigtxt[SIG_B64_LEN + 8];
    unsigned char sig[LIC_SIG_LEN];
    char again[SIG_B64_LEN + 1];
    size_t bl = 0, ml = strlen(magic);
    int rc;

    if(n == 0) {
        say(why, whyn, "文件为空 / the file is empty");
        return MCS_EPARSE;
    }
    if(n > LIC_FILE_MAX) {
        say(why, whyn, "文件过大 / larger than 4096 bytes");
        return MCS_ETOOBIG;
    }
    if(n < ml + 1 || memcmp(p, magic, ml) != 0 || p[ml] != '\n') {
        say(why, whyn, "格式错误: 不是 %s 文件 / malformed: not an '%s' document", magic, magic);
        return MCS_EPARSE;
    }
    p += ml + 1;
    for(int i = 0; i < nf; i++)
        if((rc = take_line(&p, end, f[i].name, f[i].val, f[i].cap, why, whyn)) != 0)
            return rc;
    signed_end = p;
    if((rc = take_line(&p, end, "signature", sigtxt, sizeof(sigtxt), why, whyn)) != 0)
        return rc;
    if(p != end) {
        say(why, whyn, "格式错误: 签名后有多余内容 / malformed: data after the signature");
        return MCS_EPARSE;
    }
    if(strlen(sigtxt) != SIG_B64_LEN ||
       sodium_base642bin(sig, sizeof(sig), sigtxt, SIG_B64_LEN, NULL, &bl, NULL, B64V) != 0 ||
       bl != LIC_SIG_LEN) {
        say(why, whyn, "签名无效 (20001): 签名不是 64 字节 / bad signature: not 64 bytes");
        return MCS_ECORRUPT;
    }
    /* Only the signer's own encoding: no second spelling of the same bytes. */
    sodium_bin2base64(again, sizeof(again), sig, sizeof(sig), B64V);
    if(strcmp(again, sigtxt) != 0) {
        say(why, whyn, "签名无效 (20001) / bad signature: not canonical base64");
        return MCS_ECORRUPT;
    }
    for(int k = 0; keys && k < keys->n; k++)
        if(crypto_sign_verify_detached(sig, (const unsigned char *)buf,
                                       (unsigned long long)(signed_end - buf), keys->pk[k]) == 0)
            return 0;
    say(why, whyn,
        "签名无效 (20001): 文件被修改或不是本厂商签发 / bad signature: the file was altered or "
        "not issued by the vendor");
    return MCS_ECORRUPT;
}

/* Writes magic, fields and the signature line into out. */
static int doc_format(const char *magic, const struct field *f, int nf,
                      const unsigned char sk[LIC_SK_LEN], char *out, size_t outn)
{
    size_t len = 0;
    unsigned char sig[LIC_SIG_LEN];
    int w;

    if(sodium_init() < 0)
        return MCS_EINVAL;
    w = snprintf(out, outn, "%s\n", magic);
    if(w < 0 || (size_t)w >= outn)
        return MCS_ETOOBIG;
    len = (size_t)w;
    for(int i = 0; i < nf; i++) {
        if(!value_ok(f[i].val, strlen(f[i].val)) || strlen(f[i].val) > LIC_VALUE_MAX)
            return MCS_EINVAL;
        w = snprintf(out + len, outn - len, "%s: %s\n", f[i].name, f[i].val);
        if(w < 0 || (size_t)w >= outn - len)
            return MCS_ETOOBIG;
        len += (size_t)w;
    }
    crypto_sign_detached(sig, NULL, (const unsigned char *)out, len, sk);
    if(outn - len < sizeof("signature: \n") + SIG_B64_LEN || len + SIG_B64_LEN + 13 > LIC_FILE_MAX)
        return MCS_ETOOBIG;
    memcpy(out + len, "signature: ", 11);
    len += 11;
    sodium_bin2base64(out + len, outn - len, sig, sizeof(sig), B64V);
    len += SIG_B64_LEN;
    out[len++] = '\n';
    out[len] = '\0';
    return 0;
}

static int read_file(const char *path, char *buf, size_t cap, size_t *n, char *why, size_t whyn)
{
    FILE *f = fopen(path, "rb");
    int rc = 0;

    if(!f) {
        if(errno == ENOENT) {
            say(why, whyn, "文件不存在 / file not found: %s", path);
            return MCS_ENOTFOUND;
        }
        say(why, whyn, "无法读取 / cannot read %s", path);
        return MCS_EIO;
    }
    *n = fread(buf, 1, cap, f);
    if(ferror(f)) {
        say(why, whyn, "无法读取 / cannot read %s", path);
        rc = MCS_EIO;
    }
    fclose(f);
    return rc;
}

/* ---- field checks ---- */

int license_key_valid(const char *k)
{
    static const char pat[] = "MCS-XXXX-XXXX-XXXX";
    if(!k || strlen(k) != LIC_KEY_LEN)
        return 0;
    for(size_t i = 0; i < LIC_KEY_LEN; i++) {
        if(pat[i] == 'X') {
            if(!((k[i] >= 'A' && k[i] <= 'Z') || (k[i] >= '0' && k[i] <= '9')))
                return 0;
        }
        else if(k[i] != pat[i])
            return 0;
    }
    return 1;
}

void license_key_mask(const char *key, char out[LIC_KEY_LEN + 1])
{
    if(!license_key_valid(key)) {
        snprintf(out, LIC_KEY_LEN + 1, "%s", "MCS-****-****-****");
        return;
    }
    snprintf(out, LIC_KEY_LEN + 1, "%.8s-****-****", key);
}

/* Parses YYYY-MM-DD strictly; *day_start gets 00:00 UTC of that day. */
static int date_parse(const char *s, int64_t *day_start)
{
    struct tm tm;
    int y, m, d;
    time_t t;

    if(strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return MCS_EINVAL;
    for(int i = 0; i < 10; i++)
        if(i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return MCS_EINVAL;
    y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    m = (s[5] - '0') * 10 + (s[6] - '0');
    d = (s[8] - '0') * 10 + (s[9] - '0');
    if(y < 2000 || y > 2999 || m < 1 || m > 12 || d < 1 || d > 31)
        return MCS_EINVAL;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    t = timegm(&tm);
    /* 2027-02-30 would roll over into March: refuse it. */
    if(t == (time_t)-1 || tm.tm_mday != d || tm.tm_mon != m - 1)
        return MCS_EINVAL;
    *day_start = (int64_t)t;
    return 0;
}

static int int_parse(const char *s, int64_t lo, int64_t hi, int64_t *v)
{
    char *end = NULL;
    long long x;
    if(!*s || (s[0] == '0' && s[1]) || s[0] == '-' || s[0] == '+')
        return MCS_EINVAL;
    errno = 0;
    x = strtoll(s, &end, 10);
    if(errno || *end || x < lo || x > hi)
        return MCS_EINVAL;
    *v = x;
    return 0;
}

/* ---- the license ---- */

#define LIC_NF 6

static void license_fields(struct field f[LIC_NF], struct mcs_license *l, char *maxdev)
{
    f[0] = (struct field){"id", l->id, sizeof(l->id)};
    f[1] = (struct field){"key", l->key, sizeof(l->key)};
    f[2] = (struct field){"customer", l->customer, sizeof(l->customer)};
    f[3] = (struct field){"max_devices", maxdev, 16};
    f[4] = (struct field){"issued", l->issued, sizeof(l->issued)};
    f[5] = (struct field){"expires", l->expires, sizeof(l->expires)};
}

/* Checks the meaning of the fields (the form is checked by doc_parse). */
static int license_check(struct mcs_license *l, const char *maxdev, char *why, size_t whyn)
{
    int64_t v, issued;
    /* The id travels in JSON, logs and file names: a plain word. */
    if(strspn(l->id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") !=
       strlen(l->id)) {
        say(why, whyn, "格式错误: 授权编号只能含字母数字 ._- / malformed: id");
        return MCS_EPARSE;
    }
    if(!license_key_valid(l->key)) {
        say(why, whyn, "格式错误: 授权码不是 MCS-XXXX-XXXX-XXXX / malformed: key");
        return MCS_EPARSE;
    }
    if(int_parse(maxdev, 1, 1000000, &v) != 0) {
        say(why, whyn, "格式错误: max_devices 无效 / malformed: max_devices");
        return MCS_EPARSE;
    }
    l->max_devices = (int)v;
    if(date_parse(l->issued, &issued) != 0 || date_parse(l->expires, &l->expires_end) != 0 ||
       l->expires_end < issued) {
        say(why, whyn, "格式错误: 日期无效 / malformed: issued or expires date");
        return MCS_EPARSE;
    }
    l->expires_end += 86400;
    return 0;
}

int license_parse(const char *buf, size_t n, const struct lic_keyring *keys,
                  struct mcs_license *out, char *why, size_t whyn)
{
    struct field f[LIC_NF];
    char maxdev[16];
    int rc;

    if(sodium_init() < 0)
        return MCS_EINVAL;
    memset(out, 0, sizeof(*out));
    license_fields(f, out, maxdev);
    rc = doc_parse(buf, n, MAGIC_LICENSE, f, LIC_NF, keys, why, whyn);
    if(rc == 0)
        rc = license_check(out, maxdev, why, whyn);
    if(rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int license_load(const char *path, const struct lic_keyring *keys, struct mcs_license *out,
                 char *why, size_t whyn)
{
    char buf[LIC_FILE_MAX + 1];
    size_t n = 0;
    int rc = read_file(path, buf, sizeof(buf), &n, why, whyn);
    if(rc != 0)
        return rc;
    return license_parse(buf, n, keys, out, why, whyn);
}

int license_expired(const struct mcs_license *l, int64_t now)
{
    return now >= l->expires_end;
}

int license_format(const struct mcs_license *l, const unsigned char sk[LIC_SK_LEN], char *out,
                   size_t outn)
{
    struct mcs_license c = *l;
    struct field f[LIC_NF];
    char maxdev[16];

    snprintf(maxdev, sizeof(maxdev), "%d", l->max_devices);
    license_fields(f, &c, maxdev);
    if(license_check(&c, maxdev, NULL, 0) != 0)
        return MCS_EINVAL;
    return doc_format(MAGIC_LICENSE, f, LIC_NF, sk, out, outn);
}

/* ---- the token ---- */

#define TOK_NF 7

static const char *const tok_names[] = {
#define LIC_TOK_NAME(e, name, msg) name,
    LIC_TOKEN_STATUSES(LIC_TOK_NAME)
#undef LIC_TOK_NAME
};
static const char *const tok_msgs[] = {
#define LIC_TOK_MSG(e, name, msg) msg,
    LIC_TOKEN_STATUSES(LIC_TOK_MSG)
#undef LIC_TOK_MSG
};
#define TOK_NSTATUS ((int)(sizeof(tok_names) / sizeof(tok_names[0])))

const char *lic_token_status_name(enum lic_token_status s)
{
    return (int)s >= 0 && (int)s < TOK_NSTATUS ? tok_names[s] : "unknown";
}

const char *lic_token_status_msg(enum lic_token_status s)
{
    return (int)s >= 0 && (int)s < TOK_NSTATUS ? tok_msgs[s] : tok_msgs[LIC_TOK_UNKNOWN];
}

int lic_token_status_parse(const char *name, enum lic_token_status *s)
{
    for(int i = 0; i < TOK_NSTATUS; i++)
        if(!strcmp(name, tok_names[i])) {
            *s = (enum lic_token_status)i;
            return 0;
        }
    return MCS_EINVAL;
}

struct tok_text {
    char status[16];
    char issued[24];
    char expires[24];
};

static void token_fields(struct field f[TOK_NF], struct mcs_lic_token *t, struct tok_text *x)
{
    f[0] = (struct field){"license_id", t->license_id, sizeof(t->license_id)};
    f[1] = (struct field){"key", t->key, sizeof(t->key)};
    f[2] = (struct field){"fingerprint", t->fingerprint, sizeof(t->fingerprint)};
    f[3] = (struct field){"nonce", t->nonce, sizeof(t->nonce)};
    f[4] = (struct field){"status", x->status, sizeof(x->status)};
    f[5] = (struct field){"issued_at", x->issued, sizeof(x->issued)};
    f[6] = (struct field){"expires_at", x->expires, sizeof(x->expires)};
}

static int token_check(struct mcs_lic_token *t, const struct tok_text *x)
{
    if(!license_key_valid(t->key) || strlen(t->fingerprint) != LIC_FP_HEX ||
       strspn(t->fingerprint, "0123456789abcdef") != LIC_FP_HEX ||
       lic_token_status_parse(x->status, &t->status) != 0 ||
       int_parse(x->issued, 0, INT64_C(99999999999), &t->issued_at) != 0 ||
       int_parse(x->expires, 0, INT64_C(99999999999), &t->expires_at) != 0 ||
       t->expires_at < t->issued_at)
        return MCS_EPARSE;
    return 0;
}

int lic_token_parse(const char *buf, size_t n, const struct lic_keyring *keys,
                    struct mcs_lic_token *out, char *why, size_t whyn)
{
    struct field f[TOK_NF];
    struct tok_text x;
    int rc;

    if(sodium_init() < 0)
        return MCS_EINVAL;
    memset(out, 0, sizeof(*out));
    memset(&x, 0, sizeof(x));
    token_fields(f, out, &x);
    rc = doc_parse(buf, n, MAGIC_TOKEN, f, TOK_NF, keys, why, whyn);
    if(rc == 0 && (rc = token_check(out, &x)) != 0)
        say(why, whyn, "格式错误: 令牌字段无效 / malformed: token field");
    if(rc != 0)
        memset(out, 0, sizeof(*out));
    return rc;
}

int lic_token_format(const struct mcs_lic_token *t, const unsigned char sk[LIC_SK_LEN], char *out,
                     size_t outn)
{
    struct mcs_lic_token c = *t;
    struct field f[TOK_NF];
    struct tok_text x;

    snprintf(x.status, sizeof(x.status), "%s", lic_token_status_name(t->status));
    snprintf(x.issued, sizeof(x.issued), "%lld", (long long)t->issued_at);
    snprintf(x.expires, sizeof(x.expires), "%lld", (long long)t->expires_at);
    token_fields(f, &c, &x);
    if(token_check(&c, &x) != 0)
        return MCS_EINVAL;
    return doc_format(MAGIC_TOKEN, f, TOK_NF, sk, out, outn);
}

/* ---- host fingerprint and key files ---- */

int license_fingerprint(const char *path, char out[LIC_FP_HEX + 1], char *why, size_t whyn)
{
    char id[MACHINE_ID_MAX + 1];
    unsigned char h[LIC_FP_HEX / 2];
    size_t n = 0, a = 0;
    int rc;

    out[0] = '\0';
    if(sodium_init() < 0)
        return MCS_EINVAL;
    rc = read_file(path, id, sizeof(id), &n, why, whyn);
    if(rc != 0)
        goto out;
    if(n > MACHINE_ID_MAX) {
        say(why, whyn, "机器码过长 / machine id longer than 256 bytes: %s", path);
        rc = MCS_EPARSE;
        goto out;
    }
    while(n && (id[n - 1] == '\n' || id[n - 1] == '\r' || id[n - 1] == ' ' || id[n - 1] == '\t'))
        n--;
    while(a < n && (id[a] == ' ' || id[a] == '\t' || id[a] == '\n'))
        a++;
    if(a == n) {
        say(why, whyn, "机器码为空 / machine id is empty: %s", path);
        rc = MCS_EPARSE;
        goto out;
    }
    crypto_generichash(h, sizeof(h), (const unsigned char *)id + a, n - a, fp_key, sizeof(fp_key));
    sodium_bin2hex(out, LIC_FP_HEX + 1, h, sizeof(h));
out:
    sodium_memzero(id, sizeof(id));
    return rc;
}

int license_sk_load(const char *path, unsigned char sk[LIC_SK_LEN])
{
    char buf[2 * LIC_SK_LEN + 8];
    size_t n = 0;
    int rc = read_file(path, buf, sizeof(buf) - 1, &n, NULL, 0);
    if(rc != 0)
        return rc;
    buf[n] = '\0';
    rc = hex_key(buf, sk, LIC_SK_LEN);
    sodium_memzero(buf, sizeof(buf));
    return rc;
}

void license_pk_hex(const unsigned char pk[LIC_PK_LEN], char out[2 * LIC_PK_LEN + 1])
{
    sodium_bin2hex(out, 2 * LIC_PK_LEN + 1, pk, LIC_PK_LEN);
}
