/* sim_tls.c - the shared OpenSSL client context of mcs-sim (sim_tls.h).
 * Owns the context. Thread: the simulator's loop. */
#include "sim_tls.h"

#include <openssl/ssl.h>
#include <stdio.h>

void *sim_tls_new(const char *cafile)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if(!ctx) {
        fprintf(stderr, "mcs-sim: SSL_CTX_new failed\n");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT);
    if(SSL_CTX_load_verify_locations(ctx, cafile, NULL) != 1) {
        fprintf(stderr, "mcs-sim: cannot load CA file %s\n", cafile);
        SSL_CTX_free(ctx);
        return NULL;
    }
    return ctx;
}

void sim_tls_free(void *ctx)
{
    SSL_CTX_free(ctx);
}

int sim_tls_use(struct mosquitto *mosq, void *ctx)
{
    int rc = mosquitto_int_option(mosq, MOSQ_OPT_SSL_CTX_WITH_DEFAULTS, 0);

    if(rc == MOSQ_ERR_SUCCESS)
        rc = mosquitto_void_option(mosq, MOSQ_OPT_SSL_CTX, ctx);
    return rc;
}
