/* mcs_hash.c - `mcs hash-password`: the Argon2id hash of a broker account
 * password for the plugin's options (docs/PLUGIN.md). Touches no server.
 * Thread: single-threaded. */
#include "err.h"
#include "mcs_util.h"

#include <sodium.h>
#include <string.h>

/* `mcs hash-password`: one line from stdin (no echo concerns: meant for
 * scripts and `read -s` pipelines) -> crypto_pwhash_str at the interactive
 * limits, which is what the broker plugin verifies (docs/PLUGIN.md). */
static int cmd_hash_password(struct cli *c, const struct cli_args *a)
{
    char pw[1026], out[crypto_pwhash_STRBYTES];
    size_t len;
    int rc = MCS_EINVAL;

    if(a->argc != 0)
        return cli_fail(MCS_EINVAL, "hash-password takes no arguments (password on stdin)");
    if(sodium_init() < 0)
        return cli_fail(MCS_ENOMEM, "libsodium failed to initialise");
    if(!fgets(pw, sizeof(pw), stdin)) {
        rc = cli_fail(MCS_EINVAL, "hash-password: no password on stdin");
        goto out;
    }
    len = strcspn(pw, "\r\n");
    if(len == sizeof(pw) - 1) {
        rc = cli_fail(MCS_EINVAL, "hash-password: password longer than 1024 bytes");
        goto out;
    }
    pw[len] = '\0';
    if(len == 0) {
        rc = cli_fail(MCS_EINVAL, "hash-password: empty password");
        goto out;
    }
    if(crypto_pwhash_str(out, pw, len, crypto_pwhash_OPSLIMIT_INTERACTIVE,
                         crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0) {
        rc = cli_fail(MCS_ENOMEM, "hash-password: out of memory");
        goto out;
    }
    printf("%s\n", out);
    rc = 0;
out:
    sodium_memzero(pw, sizeof(pw));
    return rc;
}

static const struct cli_cmd hash_cmds[] = {
    {NULL, CLI_A_RAW, cmd_hash_password},
};

const struct cli_group mcs_group_hash = {
    .name = "hash-password",
    .cmds = hash_cmds,
    .ncmds = 1,
    .usage = "  mcs hash-password             read a password (one line) on stdin, print its\n"
             "                                Argon2id hash for the broker plugin's\n"
             "                                plugin_opt_worker_hash/admin_hash\n",
};
