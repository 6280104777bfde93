/* fuzz_license.c - libFuzzer target for the license file and the license
 * server's token (src/common/license.c: license_parse, lic_token_parse).
 * The low bit of the first byte chooses: 0 the rest is a license file, 1 a
 * token. Documents are checked against the test vendor key of tests/license
 * (seeds are signed with it), so the fuzzer reaches the accepting paths.
 * Touches nothing but its own memory. */
#include "fuzz_util.h"

#include "err.h"
#include "license.h"

#include <libgen.h>
#include <sodium.h>

static unsigned char pk[1][LIC_PK_LEN], sk[LIC_SK_LEN];
static struct lic_keyring ring = {pk, 1};

static void init(void)
{
    static int done;
    char path[4096], dir[4096];
    if(done)
        return;
    FUZZ_CHECK(sodium_init() >= 0);
    snprintf(dir, sizeof(dir), "%s", __FILE__);
    snprintf(path, sizeof(path), "%s/../license/test-vendor.sk", dirname(dir));
    FUZZ_CHECK(license_sk_load(path, sk) == 0);
    crypto_sign_ed25519_sk_to_pk(pk[0], sk);
    done = 1;
}

/* A message names the problem, never the key, and is a bounded string. */
static void check_why(const char *why, int rc)
{
    FUZZ_CHECK(strlen(why) < 256);
    if(rc != 0)
        FUZZ_CHECK(why[0] != '\0');
}

static void one_license(const char *p, size_t n)
{
    struct mcs_license l;
    char why[256] = "", again[LIC_FILE_MAX + 1];
    int rc = license_parse(p, n, &ring, &l, why, sizeof(why));
    FUZZ_CHECK(rc == 0 || rc == MCS_EPARSE || rc == MCS_ECORRUPT || rc == MCS_ETOOBIG);
    check_why(why, rc);
    if(rc != 0)
        return;
    /* Only the canonical form is accepted: signing what was parsed gives
     * back the very bytes (Ed25519 signatures are deterministic). */
    FUZZ_CHECK(license_key_valid(l.key));
    FUZZ_CHECK(l.max_devices >= 1 && l.max_devices <= 1000000);
    FUZZ_CHECK(strstr(why, l.key) == NULL);
    FUZZ_CHECK(license_format(&l, sk, again, sizeof(again)) == 0);
    FUZZ_CHECK(strlen(again) == n && memcmp(again, p, n) == 0);
}

static void one_token(const char *p, size_t n)
{
    struct mcs_lic_token t;
    char why[256] = "", again[LIC_FILE_MAX + 1];
    int rc = lic_token_parse(p, n, &ring, &t, why, sizeof(why));
    FUZZ_CHECK(rc == 0 || rc == MCS_EPARSE || rc == MCS_ECORRUPT || rc == MCS_ETOOBIG);
    check_why(why, rc);
    if(rc != 0)
        return;
    FUZZ_CHECK(strlen(t.fingerprint) == LIC_FP_HEX && t.expires_at >= t.issued_at);
    FUZZ_CHECK(lic_token_format(&t, sk, again, sizeof(again)) == 0);
    FUZZ_CHECK(strlen(again) == n && memcmp(again, p, n) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
    const char *p;
    if(n < 1)
        return 0;
    init();
    p = fuzz_tail_copy(data + 1, n - 1);
    if(data[0] & 1)
        one_token(p, n - 1);
    else
        one_license(p, n - 1);
    return 0;
}
