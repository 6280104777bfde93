/* license_cli.c - `mcs-license`, the vendor's license tool (issue #17,
 * R-LI-6): generate the vendor key pair, issue a signed license file, list,
 * revoke, release a host binding (the store of licstore.h, shared with the
 * license server), and show a host's fingerprint or check a license file.
 * Owns nothing beyond one run. Thread: single-threaded. */
#include "err.h"
#include "licstore.h"
#include "license.h"

#include <errno.h>
#include <fcntl.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char usage_text[] =
    "usage: mcs-license COMMAND [OPTIONS]\n"
    "  keygen --out FILE              new vendor key pair: secret key (hex) to FILE\n"
    "                                 (mode 0600, never overwritten), public key printed\n"
    "  issue --sk FILE --db FILE --customer NAME --max-devices N --expires YYYY-MM-DD\n"
    "        [--key MCS-XXXX-XXXX-XXXX] [--id ID] [--issued YYYY-MM-DD] --out FILE\n"
    "                                 sign a license file and record it in the store\n"
    "  list --db FILE                 licenses, revocations, bound hosts\n"
    "  revoke --db FILE ID|KEY        revoke: the next check of that plant locks it\n"
    "  release --db FILE ID|KEY       free the host binding (the next host to check binds)\n"
    "  fingerprint [--machine-id PATH]  this host's fingerprint (default /etc/machine-id)\n"
    "  check FILE                     verify a license file with the keys built in\n"
    "Exit status: 0 ok, 1 runtime error, 2 usage error.\n";

struct opts {
    const char *out, *sk, *db, *customer, *maxdev, *expires, *key, *id, *issued, *machine_id;
    const char *arg; /* the one positional argument */
};

static int usage_fail(const char *msg)
{
    if(msg)
        fprintf(stderr, "mcs-license: %s\n", msg);
    fputs(usage_text, stderr);
    return 2;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct {
        const char *flag;
        size_t off;
    } tab[] = {
        {"--out", offsetof(struct opts, out)},
        {"--sk", offsetof(struct opts, sk)},
        {"--db", offsetof(struct opts, db)},
        {"--customer", offsetof(struct opts, customer)},
        {"--max-devices", offsetof(struct opts, maxdev)},
        {"--expires", offsetof(struct opts, expires)},
        {"--key", offsetof(struct opts, key)},
        {"--id", offsetof(struct opts, id)},
        {"--issued", offsetof(struct opts, issued)},
        {"--machine-id", offsetof(struct opts, machine_id)},
    };
    memset(o, 0, sizeof(*o));
    for(int i = 2; i < argc; i++) {
        size_t k;
        for(k = 0; k < sizeof(tab) / sizeof(tab[0]); k++)
            if(!strcmp(argv[i], tab[k].flag))
                break;
        if(k < sizeof(tab) / sizeof(tab[0])) {
            if(i + 1 >= argc) {
                fprintf(stderr, "mcs-license: %s needs a value\n", argv[i]);
                return -1;
            }
            *(const char **)((char *)o + tab[k].off) = argv[++i];
        }
        else if(argv[i][0] == '-' || o->arg) {
            fprintf(stderr, "mcs-license: unexpected '%s'\n", argv[i]);
            return -1;
        }
        else
            o->arg = argv[i];
    }
    return 0;
}

/* Writes text to a new file (mode) and fails if it exists. */
static int write_new(const char *path, const char *text, int mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    size_t n = strlen(text);
    int rc = 0;
    if(fd < 0) {
        fprintf(stderr, "mcs-license: cannot create %s: %s\n", path, strerror(errno));
        return 1;
    }
    if(write(fd, text, n) != (ssize_t)n || fsync(fd) != 0) {
        fprintf(stderr, "mcs-license: cannot write %s: %s\n", path, strerror(errno));
        rc = 1;
    }
    close(fd);
    return rc;
}

static int cmd_keygen(const struct opts *o)
{
    unsigned char pk[LIC_PK_LEN], sk[LIC_SK_LEN];
    char skhex[2 * LIC_SK_LEN + 2], pkhex[2 * LIC_PK_LEN + 1];
    int rc;
    if(!o->out)
        return usage_fail("keygen needs --out");
    crypto_sign_keypair(pk, sk);
    sodium_bin2hex(skhex, sizeof(skhex) - 1, sk, sizeof(sk));
    strncat(skhex, "\n", 2); /* lint-ok: bounded, room reserved above */
    rc = write_new(o->out, skhex, 0600);
    sodium_memzero(sk, sizeof(sk));
    sodium_memzero(skhex, sizeof(skhex));
    if(rc)
        return rc;
    license_pk_hex(pk, pkhex);
    printf("%s\n", pkhex);
    fprintf(stderr, "public key above: build the product with -DMCS_LICENSE_PUBKEY=%s\n", pkhex);
    return 0;
}

static void random_key(char out[LIC_KEY_LEN + 1])
{
    static const char al[] = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    memcpy(out, "MCS-XXXX-XXXX-XXXX", LIC_KEY_LEN + 1);
    for(int i = 4; i < LIC_KEY_LEN; i++)
        if(out[i] == 'X')
            out[i] = al[randombytes_uniform(sizeof(al) - 1)];
}

static int cmd_issue(const struct opts *o)
{
    struct mcs_license l;
    unsigned char sk[LIC_SK_LEN];
    char text[LIC_FILE_MAX + 1], *end = NULL;
    struct licstore *st = NULL;
    long md;
    int rc = 1, e;

    if(!o->sk || !o->db || !o->customer || !o->maxdev || !o->expires || !o->out)
        return usage_fail("issue needs --sk --db --customer --max-devices --expires --out");
    memset(&l, 0, sizeof(l));
    errno = 0;
    md = strtol(o->maxdev, &end, 10);
    if(errno || !end || *end || md < 1 || md > 1000000)
        return usage_fail("--max-devices must be 1..1000000");
    l.max_devices = (int)md;
    if(o->key)
        snprintf(l.key, sizeof(l.key), "%s", o->key);
    else
        random_key(l.key);
    snprintf(l.customer, sizeof(l.customer), "%s", o->customer);
    snprintf(l.expires, sizeof(l.expires), "%s", o->expires);
    if(o->issued)
        snprintf(l.issued, sizeof(l.issued), "%s", o->issued);
    else {
        time_t t = time(NULL);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(l.issued, sizeof(l.issued), "%Y-%m-%d", &tm);
    }
    if(o->id)
        snprintf(l.id, sizeof(l.id), "%s", o->id);
    else
        snprintf(l.id, sizeof(l.id), "L-%.4s%.2s%.2s-%08x", l.issued, l.issued + 5, l.issued + 8,
                 (unsigned)randombytes_random());
    if(strlen(o->customer) > LIC_VALUE_MAX || (o->key && strlen(o->key) != LIC_KEY_LEN))
        return usage_fail("--customer at most 128 bytes, --key MCS-XXXX-XXXX-XXXX");
    if((e = license_sk_load(o->sk, sk)) != 0) {
        fprintf(stderr, "mcs-license: cannot load the secret key %s: %s\n", o->sk,
                mcs_strerror(e));
        return 1;
    }
    e = license_format(&l, sk, text, sizeof(text));
    sodium_memzero(sk, sizeof(sk));
    if(e == MCS_EINVAL)
        return usage_fail("a field is out of form (key MCS-XXXX-XXXX-XXXX with A-Z 0-9, dates "
                          "YYYY-MM-DD with issued <= expires, no control characters)");
    if(e != 0) {
        fprintf(stderr, "mcs-license: %s\n", mcs_strerror(e));
        return 1;
    }
    if((e = licstore_open(o->db, &st)) != 0) {
        fprintf(stderr, "mcs-license: cannot open the store %s: %s\n", o->db, mcs_strerror(e));
        goto out;
    }
    /* The file is written first and must not exist: a failed write leaves no
     * license recorded that nobody holds. */
    if(write_new(o->out, text, 0644) != 0)
        goto out;
    if((e = licstore_add(st, &l, text)) != 0) {
        fprintf(stderr, "mcs-license: %s\n",
                e == MCS_EDUP ? "a license with this id or key exists" : mcs_strerror(e));
        unlink(o->out);
        goto out;
    }
    printf("issued %s key %s customer %s max_devices %d expires %s -> %s\n", l.id, l.key,
           l.customer, l.max_devices, l.expires, o->out);
    rc = 0;
out:
    licstore_free(st);
    return rc;
}

static int print_row(const struct licstore_row *r, void *arg)
{
    (void)arg;
    printf("%s\t%s\t%s\t%d\t%s\t%s\t%s\t%.16s\n", r->lic.id, r->lic.key, r->lic.customer,
           r->lic.max_devices, r->lic.issued, r->lic.expires, r->revoked ? "revoked" : "active",
           r->bound_fp[0] ? r->bound_fp : "-");
    return 0;
}

static int with_store(const struct opts *o, const char *what)
{
    struct licstore *st = NULL;
    int e;
    if(!o->db)
        return usage_fail("--db FILE is required");
    if(strcmp(what, "list") != 0 && !o->arg)
        return usage_fail("name the license: its id or key");
    if((e = licstore_open(o->db, &st)) != 0) {
        fprintf(stderr, "mcs-license: cannot open the store %s: %s\n", o->db, mcs_strerror(e));
        return 1;
    }
    if(!strcmp(what, "list")) {
        printf("id\tkey\tcustomer\tmax_devices\tissued\texpires\tstate\thost\n");
        e = licstore_list(st, print_row, NULL);
    }
    else if(!strcmp(what, "revoke"))
        e = licstore_revoke(st, o->arg);
    else
        e = licstore_release(st, o->arg);
    licstore_free(st);
    if(e == MCS_ENOTFOUND) {
        fprintf(stderr, "mcs-license: no license with id or key '%s'\n", o->arg);
        return 1;
    }
    if(e != 0) {
        fprintf(stderr, "mcs-license: %s\n", mcs_strerror(e));
        return 1;
    }
    if(strcmp(what, "list") != 0)
        printf("%s %s\n", !strcmp(what, "revoke") ? "revoked" : "released", o->arg);
    return 0;
}

static int cmd_fingerprint(const struct opts *o)
{
    char fp[LIC_FP_HEX + 1], why[256];
    if(license_fingerprint(o->machine_id ? o->machine_id : "/etc/machine-id", fp, why,
                           sizeof(why)) != 0) {
        fprintf(stderr, "mcs-license: %s\n", why);
        return 1;
    }
    printf("%s\n", fp);
    return 0;
}

static int cmd_check(const struct opts *o)
{
    struct mcs_license l;
    char why[256] = "", masked[LIC_KEY_LEN + 1];
    int e;
    if(!o->arg)
        return usage_fail("check needs a license file");
    e = license_load(o->arg, license_builtin_keys(), &l, why, sizeof(why));
    if(e != 0) {
        fprintf(stderr, "mcs-license: %s: %s\n", o->arg, why);
        return 1;
    }
    license_key_mask(l.key, masked);
    printf("ok %s key %s customer %s max_devices %d issued %s expires %s%s\n", l.id, masked,
           l.customer, l.max_devices, l.issued, l.expires,
           license_expired(&l, (int64_t)time(NULL)) ? " (EXPIRED)" : "");
    return 0;
}

int main(int argc, char **argv)
{
    struct opts o;
    const char *c;

    if(argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help"))
        return argc < 2 ? usage_fail(NULL) : (fputs(usage_text, stdout), 0);
    if(sodium_init() < 0) {
        fputs("mcs-license: libsodium failed to start\n", stderr);
        return 1;
    }
    if(parse_opts(argc, argv, &o) != 0)
        return usage_fail(NULL);
    c = argv[1];
    if(!strcmp(c, "keygen"))
        return cmd_keygen(&o);
    if(!strcmp(c, "issue"))
        return cmd_issue(&o);
    if(!strcmp(c, "list") || !strcmp(c, "revoke") || !strcmp(c, "release"))
        return with_store(&o, c);
    if(!strcmp(c, "fingerprint"))
        return cmd_fingerprint(&o);
    if(!strcmp(c, "check"))
        return cmd_check(&o);
    return usage_fail("unknown command");
}
