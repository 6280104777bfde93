/* main.c - mcs-api: the HTTP/WebSocket process of MCS-IoT (issue #8). Loads
 * the configuration (refuses a JWT_SECRET shorter than 32 bytes), starts the
 * broker client and the feed threads, then runs the one lws loop.
 * Owns struct api_ctx. Thread: main = the lws loop thread. */
#include "api.h"
#include "auth.h"
#include "err.h"
#include "feed.h"
#include "http.h"
#include "jobs.h"
#include "log.h"
#include "mqcmd.h"
#include "route.h"
#include "secret.h"
#include "timeutil.h"
#include "ws.h"

#include <libwebsockets.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    (void)sig;
    stopping = 1;
}

static void lws_log(int level, const char *line)
{
    char buf[256];
    size_t n;
    snprintf(buf, sizeof(buf), "%s", line);
    n = strlen(buf);
    while(n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = '\0';
    if(level & LLL_ERR)
        LOG_E("lws", "libwebsockets", LS("line", buf));
    else
        LOG_W("lws", "libwebsockets", LS("line", buf));
}

static struct lws_protocols protocols[] = {
    {"http", http_callback, 0, 0, 0, NULL, 0},
    {WS_PROTOCOL, ws_callback, 0, WS_RX_MAX, 0, NULL, WS_TX_CHUNK},
    {NULL, NULL, 0, 0, 0, NULL, 0},
};

/* A WebSocket client that names no subprotocol binds to the dashboard. */
static const struct lws_protocol_vhost_options pvo_default = {NULL, NULL, "default", "1"};
static const struct lws_protocol_vhost_options pvo = {NULL, &pvo_default, WS_PROTOCOL, ""};

int main(int argc, char **argv)
{
    static struct api_ctx ctx;
    struct lws_context_creation_info info;
    int rc = 1;

    if(mcs_config_load(&ctx.cfg, &argc, argv))
        return 2;
    for(int i = 1; i < argc; i++) {
        if(!strcmp(argv[i], "--routes")) {
            api_routes_print(stdout);
            return 0;
        }
        if(!strcmp(argv[i], "--check-config")) {
            mcs_config_print(&ctx.cfg);
            return strlen(ctx.cfg.jwt_secret) >= 32 ? 0 : 2;
        }
        fprintf(stderr, "usage: mcs-api [--env-file FILE] [--set NAME=VALUE]... "
                        "[--check-config] [--routes]\n");
        return 2;
    }
    if(strcmp(ctx.cfg.api_alarm_source, "pg") && strcmp(ctx.cfg.api_alarm_source, "redis")) {
        LOG_E("api", "API_ALARM_SOURCE must be pg or redis");
        return 2;
    }
    if(strlen(ctx.cfg.jwt_secret) < 32) {
        LOG_E("api", "JWT_SECRET must be at least 32 bytes: refusing to start");
        return 2;
    }
    {
        int k = secret_key_load(&ctx.skey, ctx.cfg.secret_key, ctx.cfg.secret_key_file);
        if(k && k != MCS_ENOTFOUND) {
            LOG_E("api", "MCS_SECRET_KEY / MCS_SECRET_KEY_FILE unusable: refusing to start");
            return 2;
        }
        if(k == MCS_ENOTFOUND)
            LOG_W("api", "no MCS_SECRET_KEY: channel and storage secrets cannot be changed");
    }
    if(sodium_init() < 0) {
        LOG_E("api", "libsodium initialisation failed");
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    ctx.st.started_ms = mcs_now_ms();
    protocols[0].per_session_data_size = http_pss_size;
    protocols[1].per_session_data_size = ws_pss_size;
    lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);

    ctx.auth = auth_new(&ctx.cfg);
    if(!ctx.auth || ws_init(&ctx))
        goto out;
    ctx.mq = mq_new(&ctx.cfg);
    if(!ctx.mq)
        LOG_W("api", "no broker client: device commands will answer 503");

    memset(&info, 0, sizeof(info));
    info.port = ctx.cfg.api_port;
    info.iface = ctx.cfg.api_bind;
    info.protocols = protocols;
    info.pvo = &pvo;
    info.user = &ctx;
    info.options = LWS_SERVER_OPTION_VALIDATE_UTF8 | LWS_SERVER_OPTION_DISABLE_IPV6;
    /* Slow clients (headers or body dribbled in) are cut after 10 s. */
    info.timeout_secs = 10;
    info.keepalive_timeout = 30;
    info.max_http_header_data = 8192;
    ctx.lws = lws_create_context(&info);
    if(!ctx.lws) {
        LOG_E("api", "cannot listen", LS("bind", ctx.cfg.api_bind), LI("port", ctx.cfg.api_port));
        goto out;
    }
    if(jobs_start(&ctx)) {
        LOG_E("api", "cannot start the job worker");
        goto out;
    }
    if(feed_start(&ctx))
        LOG_W("api", "feed threads did not all start");
    api_pg(&ctx);
    LOG_I("api", "ready", LS("bind", ctx.cfg.api_bind), LI("port", ctx.cfg.api_port),
          LS("web_root", ctx.cfg.web_root));
    while(!stopping)
        if(lws_service(ctx.lws, 0) < 0)
            break;
    LOG_I("api", "stopping");
    rc = 0;
out:
    feed_stop(&ctx);
    jobs_halt(&ctx);
    if(ctx.lws)
        lws_context_destroy(ctx.lws);
    jobs_stop(&ctx);
    mq_free(ctx.mq);
    ws_cleanup(&ctx);
    auth_free(ctx.auth);
    if(ctx.pg)
        PQfinish(ctx.pg);
    if(ctx.rds)
        redisFree(ctx.rds);
    return rc;
}
