/* mcs_license.c - `mcs license install FILE` and `mcs license show`: the
 * plant's license from the command line (issue #17), beside the admin
 * page's upload. Writes only LICENSE_FILE (through licguard_install, as
 * mcs-api does) and one audit row. Thread: single-threaded. */
#include "err.h"
#include "licguard.h"
#include "mcs_util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


/* Reads at most LIC_FILE_MAX bytes of path into a new buffer (*out, *n). */
static int read_small(const char *path, char **out, size_t *n)
{
    FILE *f = fopen(path, "rb");
    char *buf = NULL;
    int rc = 0;

    if(!f)
        return cli_fail(MCS_EIO, "license install: cannot open %s", path);
    buf = malloc(LIC_FILE_MAX + 1);
    if(!buf) {
        rc = cli_fail(MCS_ENOMEM, "out of memory");
        goto out;
    }
    *n = fread(buf, 1, LIC_FILE_MAX + 1, f);
    if(ferror(f)) {
        rc = cli_fail(MCS_EIO, "license install: cannot read %s", path);
        goto out;
    }
    if(*n > LIC_FILE_MAX) {
        rc = cli_fail(MCS_ETOOBIG, "license install: %s is larger than %d bytes", path,
                      LIC_FILE_MAX);
        goto out;
    }
    *out = buf;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

static void print_view(const struct lic_view *v)
{
    printf("state: %s\n", licguard_state_name(v->state));
    if(v->have_license)
        printf("customer: %s\nmax_devices: %d\nexpires: %s\n", v->lic.customer, v->lic.max_devices,
               v->lic.expires);
    if(v->reason[0])
        printf("reason: %s\n", v->reason);
    if(v->state == LIC_ST_GRACE)
        printf("grace_left_h: %.1f\n", (double)v->grace_left / 3600.0);
}

static int cmd_install(struct cli *c, const struct cli_args *a)
{
    char why[512] = "", *buf = NULL;
    size_t n = 0;
    struct lic_view v;
    PGresult *res = NULL;
    int rc;

    if(a->argc != 1)
        return cli_fail(MCS_EINVAL, "usage: mcs license install FILE");
    if((rc = read_small(a->argv[0], &buf, &n)) != 0)
        return rc;
    rc = licguard_install(&c->cfg, buf, n, licguard_now(), why, sizeof(why));
    free(buf);
    if(rc == MCS_ECORRUPT)
        return cli_fail(rc, "20001 %s", why);
    if(rc == MCS_EINVAL)
        return cli_fail(MCS_ECORRUPT, "20002 %s", why);
    if(rc)
        return cli_fail(rc, "license install: %s", why);
    /* Installed: mcsd and mcs-api read it within seconds, no restart. The
     * audit row is the same as the admin page's upload. */
    {
        const char *vals[1] = {a->argv[0]};
        if(cli_db_open(c) != 0 ||
           cli_pg_query(c,
                        "INSERT INTO audit_logs (username, action, target, ip)"
                        " VALUES ('cli', 'license.install', $1, 'local')",
                        1, vals, &res) != 0)
            cli_warn("installed, but the audit row was not written");
        PQclear(res);
    }
    licguard_eval(&c->cfg, licguard_now(), &v);
    printf("installed: %s\n", c->cfg.license_file);
    print_view(&v);
    return 0;
}

static int cmd_show(struct cli *c, const struct cli_args *a)
{
    struct lic_view v;

    if(a->argc != 0)
        return cli_fail(MCS_EINVAL, "usage: mcs license show");
    licguard_eval(&c->cfg, licguard_now(), &v);
    print_view(&v);
    return 0;
}

static const struct cli_cmd license_cmds[] = {
    {"install", CLI_A_RAW, cmd_install},
    {"show", CLI_A_RAW, cmd_show},
};

const struct cli_group mcs_group_license = {
    .name = "license",
    .cmds = license_cmds,
    .ncmds = sizeof(license_cmds) / sizeof(license_cmds[0]),
    .nosub = "license: install FILE | show",
    .usage = "  mcs license install FILE      verify a license file (signature, expiry) and\n"
             "                                install it as LICENSE_FILE; mcsd and mcs-api\n"
             "                                take it within seconds (20001/20002 refused)\n"
             "  mcs license show              the license state as mcsd and mcs-api see it\n",
};
