/* licguard.c - the plant's license state (see licguard.h).
 * Owns reading and replacing LICENSE_FILE. Thread: any. */
#include "licguard.h"
#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

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
    v->state = LIC_ST_VALID;
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
    return replace_file(cfg->license_file, buf, n, why, whyn);
}
