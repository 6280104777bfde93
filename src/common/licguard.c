/* licguard.c - the plant's license state (see licguard.h).
 * Owns reading and replacing LICENSE_FILE. Thread: any. */
#include "licguard.h"
#include "err.h"
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define STATE_MAGIC "MCS-LICSTATE 1"
#define STATE_MAX 2048

/* The MAC key of license.state. It is in the binary, so the MAC makes an
 * edit evident rather than impossible; keyed with the host's fingerprint
 * too, a state file copied from another host fails as well. */
static const unsigned char state_key[crypto_generichash_KEYBYTES] = {
    0x4c, 0x49, 0x43, 0x53, 0x54, 0x41, 0x54, 0x45, 0x2d, 0x6d, 0x63, 0x73, 0x2d, 0x69, 0x6f, 0x74,
    0x2a, 0x91, 0x0d, 0x5e, 0xc4, 0x77, 0x3b, 0x18, 0xe2, 0x60, 0x9f, 0x4d, 0xa8, 0x13, 0xb5, 0x6c};

static int replace_file(const char *path, const char *buf, size_t n, char *why, size_t whyn);

static const char *const state_names[] = {
#define LIC_ST_NAME(e, name) name,
    LIC_STATES(LIC_ST_NAME)
#undef LIC_ST_NAME
};

const char *licguard_state_name(enum lic_state s)
{
    return (int)s >= 0 && (size_t)s < sizeof(state_names) / sizeof(state_names[0])
               ? state_names[s]
               : "locked";
}

int64_t licguard_now(void)
{
    int64_t now = (int64_t)time(NULL);
#ifdef MCS_LICENSE_TEST_PUBKEY
    /* Tests only: never compiled into a build without the test key. */
    const char *f = getenv("MCS_TEST_CLOCK_FILE");
    FILE *fp = f && *f ? fopen(f, "r") : NULL;
    if(fp) {
        long long off = 0;
        if(fscanf(fp, "%lld", &off) == 1)
            now += off;
        fclose(fp);
    }
#endif
    return now;
}

void licguard_path(const struct mcs_config *cfg, const char *name, char *out, size_t outn)
{
    char dir[sizeof(cfg->license_file)];
    snprintf(dir, sizeof(dir), "%s", cfg->license_file);
    snprintf(out, outn, "%s/%s", dirname(dir), name);
}

static void state_mac(const struct mcs_config *cfg, const char *text, size_t n,
                      char out[2 * crypto_generichash_BYTES + 1])
{
    char fp[LIC_FP_HEX + 1] = "";
    unsigned char h[crypto_generichash_BYTES];
    crypto_generichash_state st;
    license_fingerprint(cfg->machine_id_file, fp, NULL, 0);
    crypto_generichash_init(&st, state_key, sizeof(state_key), sizeof(h));
    crypto_generichash_update(&st, (const unsigned char *)fp, strlen(fp));
    crypto_generichash_update(&st, (const unsigned char *)text, n);
    crypto_generichash_final(&st, h, sizeof(h));
    sodium_bin2hex(out, 2 * crypto_generichash_BYTES + 1, h, sizeof(h));
}

static size_t state_text(const struct lic_record *r, char *out, size_t outn)
{
    char reason[sizeof(r->fail_reason)];
    int w;
    snprintf(reason, sizeof(reason), "%s", r->fail_reason);
    for(char *c = reason; *c; c++)
        if(*c == '\n' || *c == '\r')
            *c = ' ';
    w = snprintf(out, outn,
                 STATE_MAGIC "\nlicense_id=%s\nfirst_seen=%" PRId64 "\nlast_good=%" PRId64
                             "\nhwm=%" PRId64 "\nlast_fail=%" PRId64 "\nrejected=%s\nfail_reason=%s\n",
                 r->license_id, r->first_seen, r->last_good, r->hwm, r->last_fail, r->rejected,
                 reason);
    return w < 0 || (size_t)w >= outn ? 0 : (size_t)w;
}

int licguard_state_load(const struct mcs_config *cfg, struct lic_record *r)
{
    char path[600], buf[STATE_MAX + 1], again[STATE_MAX + 1], mac[2 * crypto_generichash_BYTES + 1];
    struct lic_record x;
    size_t n;
    FILE *f;
    char *m;

    memset(r, 0, sizeof(*r));
    licguard_path(cfg, "license.state", path, sizeof(path));
    f = fopen(path, "r");
    if(!f)
        return errno == ENOENT ? MCS_ENOTFOUND : MCS_ECORRUPT;
    n = fread(buf, 1, STATE_MAX, f);
    fclose(f);
    buf[n] = '\0';
    m = strstr(buf, "mac=");
    if(!m || strncmp(buf, STATE_MAGIC "\n", sizeof(STATE_MAGIC)) != 0)
        return MCS_ECORRUPT;
    memset(&x, 0, sizeof(x));
    for(char *line = buf + sizeof(STATE_MAGIC); line < m;) {
        char *eol = strchr(line, '\n'), *eq = strchr(line, '=');
        if(!eol || !eq || eq > eol)
            return MCS_ECORRUPT;
        *eol = *eq = '\0';
        if(!strcmp(line, "license_id"))
            snprintf(x.license_id, sizeof(x.license_id), "%s", eq + 1);
        else if(!strcmp(line, "rejected"))
            snprintf(x.rejected, sizeof(x.rejected), "%s", eq + 1);
        else if(!strcmp(line, "fail_reason"))
            snprintf(x.fail_reason, sizeof(x.fail_reason), "%s", eq + 1);
        else {
            int64_t *t = !strcmp(line, "first_seen") ? &x.first_seen
                         : !strcmp(line, "last_good") ? &x.last_good
                         : !strcmp(line, "hwm")       ? &x.hwm
                         : !strcmp(line, "last_fail") ? &x.last_fail
                                                      : NULL;
            if(!t)
                return MCS_ECORRUPT;
            *t = strtoll(eq + 1, NULL, 10);
        }
        line = eol + 1;
    }
    /* The MAC is over the canonical text of what was read. */
    n = state_text(&x, again, sizeof(again));
    state_mac(cfg, again, n, mac);
    if(!n || strncmp(m + 4, mac, strlen(mac)) != 0 || m[4 + strlen(mac)] != '\n')
        return MCS_ECORRUPT;
    *r = x;
    return 0;
}

static int state_save(const struct mcs_config *cfg, const struct lic_record *r)
{
    char path[600], text[STATE_MAX + 1], mac[2 * crypto_generichash_BYTES + 1], why[256];
    size_t n = state_text(r, text, sizeof(text) - 80);
    if(!n)
        return MCS_ETOOBIG;
    state_mac(cfg, text, n, mac);
    snprintf(text + n, sizeof(text) - n, "mac=%s\n", mac);
    licguard_path(cfg, "license.state", path, sizeof(path));
    return replace_file(path, text, strlen(text), why, sizeof(why));
}

void licguard_record_for(const struct mcs_config *cfg, struct lic_record *r, int loaded,
                         const char *license_id, int64_t now)
{
    char tok[600];
    if(loaded == 0 && !strcmp(r->license_id, license_id))
        return;
    licguard_path(cfg, "token.json", tok, sizeof(tok));
    /* A record that is not there although a check was made, or whose MAC
     * fails, buys no grace: it takes a good check to run again. */
    int tampered = loaded == MCS_ECORRUPT || (loaded == MCS_ENOTFOUND && access(tok, F_OK) == 0);
    memset(r, 0, sizeof(*r));
    snprintf(r->license_id, sizeof(r->license_id), "%s", license_id);
    r->first_seen = tampered ? 1 : now;
    if(tampered)
        snprintf(r->fail_reason, sizeof(r->fail_reason), "license.state 被修改或删除 / altered or deleted");
}

/* The license directory (default /var/lib/mcs/license) is made on first
 * use, one level, so a fresh install needs no step for it. */
static void ensure_dir(const struct mcs_config *cfg)
{
    char dir[sizeof(cfg->license_file)];
    snprintf(dir, sizeof(dir), "%s", cfg->license_file);
    if(mkdir(dirname(dir), 0750) != 0 && errno != EEXIST)
        LOG_W("license", "cannot make the license directory", LS("error", strerror(errno)));
}

int licguard_state_update(const struct mcs_config *cfg,
                          int (*fn)(struct lic_record *r, int loaded, void *arg), void *arg)
{
    char lock[600];
    struct lic_record r;
    int fd, rc, loaded;

    licguard_path(cfg, "license.lock", lock, sizeof(lock));
    ensure_dir(cfg);
    fd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if(fd < 0)
        return MCS_EIO;
    if(flock(fd, LOCK_EX) != 0) {
        close(fd);
        return MCS_EIO;
    }
    loaded = licguard_state_load(cfg, &r);
    rc = fn(&r, loaded, arg);
    if(rc == 0)
        rc = state_save(cfg, &r);
    flock(fd, LOCK_UN);
    close(fd);
    return rc;
}

/* The verdict of a signed rejection as the code a refused call gets. */
static int rejection_code(const char *status)
{
    if(!strcmp(status, "expired"))
        return LIC_CODE_EXPIRED;
    if(!strcmp(status, "other_host"))
        return LIC_CODE_HOST;
    return LIC_CODE_INVALID;
}

/* The online part of the state, for a license file that is itself fine. */
static void eval_record(const struct mcs_config *cfg, int64_t now, struct lic_view *v)
{
    struct lic_record *r = &v->rec;
    int rc = licguard_state_load(cfg, r);
    int64_t t, base, elapsed;
    enum lic_token_status st;

    licguard_record_for(cfg, r, rc, v->lic.id, now);
    v->tampered = r->first_seen == 1;
    if(r->rejected[0]) {
        v->state = LIC_ST_LOCKED;
        v->code = rejection_code(r->rejected);
        snprintf(v->reason, sizeof(v->reason), "授权服务器拒绝 / rejected by the license server: %s",
                 lic_token_status_parse(r->rejected, &st) == 0 ? lic_token_status_msg(st)
                                                                : r->rejected);
        return;
    }
    /* A clock turned back buys nothing: time runs from the high-water mark. */
    t = now > r->hwm ? now : r->hwm;
    v->clock_back = r->hwm - now > LIC_CLOCK_TOLERANCE_S;
    base = r->last_good ? r->last_good : r->first_seen;
    elapsed = t - base;
    if(r->last_good && elapsed < LIC_VALID_S && r->last_fail <= r->last_good && !v->clock_back) {
        v->state = LIC_ST_VALID;
        return;
    }
    if(elapsed <= LIC_GRACE_S) {
        v->state = LIC_ST_GRACE;
        v->grace_left = LIC_GRACE_S - elapsed;
        snprintf(v->reason, sizeof(v->reason),
                 "在线验证未通过, 宽限期剩余 %" PRId64 " 小时 / online check overdue, %" PRId64
                 " h of grace left%s%s",
                 v->grace_left / 3600, v->grace_left / 3600, r->fail_reason[0] ? ": " : "",
                 v->clock_back ? "系统时钟被回拨 / clock turned back" : r->fail_reason);
        return;
    }
    v->state = LIC_ST_LOCKED;
    v->code = LIC_CODE_INVALID;
    snprintf(v->reason, sizeof(v->reason),
             "超过 72 小时未通过在线验证 / no successful online check for 72 h%s%s",
             r->fail_reason[0] ? ": " : "", r->fail_reason);
}

void licguard_eval(const struct mcs_config *cfg, int64_t now, struct lic_view *v)
{
    char why[256] = "";
    int rc;

    memset(v, 0, sizeof(*v));
    v->evaluated = now;
    rc = license_load(cfg->license_file, license_builtin_keys(), &v->lic, why, sizeof(why));
    if(rc == MCS_ENOTFOUND) {
        v->state = LIC_ST_MISSING;
        v->code = LIC_CODE_INVALID;
        snprintf(v->reason, sizeof(v->reason), "未安装授权 / no license installed");
        return;
    }
    if(rc != 0) {
        v->state = LIC_ST_LOCKED;
        v->code = LIC_CODE_INVALID;
        snprintf(v->reason, sizeof(v->reason), "授权无效 / license invalid: %s", why);
        return;
    }
    v->have_license = 1;
    if(license_expired(&v->lic, now)) {
        v->state = LIC_ST_LOCKED;
        v->code = LIC_CODE_EXPIRED;
        snprintf(v->reason, sizeof(v->reason), "授权已过期 / license expired on %s",
                 v->lic.expires);
        return;
    }
    eval_record(cfg, now, v);
}

/* Writes buf to path through a temporary file in the same directory. */
static int replace_file(const char *path, const char *buf, size_t n, char *why, size_t whyn)
{
    char tmp[600], dir[600];
    int fd = -1, dfd = -1, rc = MCS_EIO;

    if(snprintf(tmp, sizeof(tmp), "%s.new", path) >= (int)sizeof(tmp))
        goto out;
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if(fd < 0 || write(fd, buf, n) != (ssize_t)n || fsync(fd) != 0)
        goto out;
    if(close(fd) != 0) {
        fd = -1;
        goto out;
    }
    fd = -1;
    if(rename(tmp, path) != 0)
        goto out;
    snprintf(dir, sizeof(dir), "%s", path);
    dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if(dfd >= 0)
        fsync(dfd);
    rc = 0;
out:
    if(rc) {
        snprintf(why, whyn, "无法写入授权文件 / cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    if(fd >= 0)
        close(fd);
    if(dfd >= 0)
        close(dfd);
    return rc;
}

int licguard_install(const struct mcs_config *cfg, const char *buf, size_t n, int64_t now,
                     char *why, size_t whyn)
{
    struct mcs_license l;
    int rc = license_parse(buf, n, license_builtin_keys(), &l, why, whyn);
    if(rc != 0)
        return rc;
    if(license_expired(&l, now)) {
        snprintf(why, whyn, "授权已过期 / the license expired on %s", l.expires);
        return MCS_EINVAL;
    }
    ensure_dir(cfg);
    return replace_file(cfg->license_file, buf, n, why, whyn);
}
