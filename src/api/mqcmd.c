/* mqcmd.c - libmosquitto client of mcs-api (see mqcmd.h).
 * Owns struct api_mq. Thread: libmosquitto's network thread runs the
 * callbacks; the flags they set are atomics. */
#include "mqcmd.h"
#include "err.h"
#include "log.h"
#include "timeutil.h"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* The last PUBACKs seen (mid and reason), for publishers waiting on them. */
#define ACKS 64

struct api_mq {
    struct mosquitto *m;
    atomic_int connected;
    atomic_int clients;
    pthread_mutex_t lock;
    pthread_cond_t acked;
    int ack_mid[ACKS], ack_reason[ACKS];
    unsigned ack_n;
};

static void on_connect(struct mosquitto *m, void *ud, int rc, int flags,
                       const mosquitto_property *props)
{
    struct api_mq *mq = ud;
    if(rc) {
        LOG_W("mq", "broker refused the connection", LS("reason", mosquitto_reason_string(rc)));
        return;
    }
    atomic_store(&mq->connected, 1);
    /* Refused by an ACL without $SYS: the count then stays unknown. */
    mosquitto_subscribe_v5(m, NULL, "$SYS/broker/clients/connected", 0, 0, NULL);
    LOG_I("mq", "connected to the broker");
}

static void on_disconnect(struct mosquitto *m, void *ud, int rc, const mosquitto_property *p)
{
    struct api_mq *mq = ud;
    atomic_store(&mq->connected, 0);
    if(rc)
        LOG_W("mq", "disconnected from the broker", LI("rc", rc));
}

static void on_message(struct mosquitto *m, void *ud, const struct mosquitto_message *msg,
                       const mosquitto_property *p)
{
    struct api_mq *mq = ud;
    char buf[32];
    size_t n = (size_t)msg->payloadlen < sizeof(buf) - 1 ? (size_t)msg->payloadlen
                                                         : sizeof(buf) - 1;
    memcpy(buf, msg->payload, n);
    buf[n] = '\0';
    atomic_store(&mq->clients, (int)strtol(buf, NULL, 10));
}

static void on_publish(struct mosquitto *m, void *ud, int mid, int reason,
                       const mosquitto_property *p)
{
    struct api_mq *mq = ud;

    pthread_mutex_lock(&mq->lock);
    mq->ack_mid[mq->ack_n % ACKS] = mid;
    mq->ack_reason[mq->ack_n % ACKS] = reason;
    mq->ack_n++;
    pthread_cond_broadcast(&mq->acked);
    pthread_mutex_unlock(&mq->lock);
    if(reason >= 128)
        LOG_W("mq", "command refused by the broker", LI("mid", mid), LI("reason", reason));
}

struct api_mq *mq_new(const struct mcs_config *cfg)
{
    struct api_mq *mq = calloc(1, sizeof(*mq));
    char id[96];

    if(!mq)
        return NULL;
    atomic_store(&mq->clients, -1);
    pthread_mutex_init(&mq->lock, NULL);
    {
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&mq->acked, &ca);
        pthread_condattr_destroy(&ca);
    }
    mosquitto_lib_init();
    snprintf(id, sizeof(id), "mcs-api-%s-%d", cfg->instance_id, (int)getpid());
    mq->m = mosquitto_new(id, true, mq);
    if(!mq->m)
        goto fail;
    mosquitto_int_option(mq->m, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    if(cfg->api_mqtt_user[0])
        mosquitto_username_pw_set(mq->m, cfg->api_mqtt_user,
                                  cfg->api_mqtt_pass[0] ? cfg->api_mqtt_pass : NULL);
    if(cfg->mqtt_cafile[0])
        mosquitto_tls_set(mq->m, cfg->mqtt_cafile, NULL, NULL, NULL, NULL);
    mosquitto_connect_v5_callback_set(mq->m, on_connect);
    mosquitto_disconnect_v5_callback_set(mq->m, on_disconnect);
    mosquitto_message_v5_callback_set(mq->m, on_message);
    mosquitto_publish_v5_callback_set(mq->m, on_publish);
    mosquitto_reconnect_delay_set(mq->m, 1, 10, true);
    if(mosquitto_connect_async(mq->m, cfg->mqtt_host, cfg->mqtt_port, cfg->mqtt_keepalive) !=
       MOSQ_ERR_SUCCESS)
        LOG_W("mq", "broker not reachable yet; retrying in the background");
    if(mosquitto_loop_start(mq->m) != MOSQ_ERR_SUCCESS)
        goto fail;
    return mq;
fail:
    if(mq->m)
        mosquitto_destroy(mq->m);
    pthread_cond_destroy(&mq->acked);
    pthread_mutex_destroy(&mq->lock);
    free(mq);
    mosquitto_lib_cleanup();
    return NULL;
}

void mq_free(struct api_mq *mq)
{
    if(!mq)
        return;
    mosquitto_disconnect(mq->m);
    mosquitto_loop_stop(mq->m, true);
    mosquitto_destroy(mq->m);
    mosquitto_lib_cleanup();
    pthread_cond_destroy(&mq->acked);
    pthread_mutex_destroy(&mq->lock);
    free(mq);
}

int mq_connected(struct api_mq *mq)
{
    return mq && atomic_load(&mq->connected);
}

int mq_broker_clients(struct api_mq *mq)
{
    return mq ? atomic_load(&mq->clients) : -1;
}

/* The reason of mid's PUBACK when one was seen since ack_from, else -1.
 * Called with the lock held. */
static int ack_of(const struct api_mq *mq, unsigned ack_from, int mid)
{
    unsigned from = mq->ack_n - ack_from > ACKS ? mq->ack_n - ACKS : ack_from;
    for(unsigned i = from; i != mq->ack_n; i++)
        if(mq->ack_mid[i % ACKS] == mid)
            return mq->ack_reason[i % ACKS];
    return -1;
}

int mq_publish_track(struct api_mq *mq, const char *topic, const char *payload,
                     struct mq_track *t)
{
    int rc;

    t->mid = 0;
    if(!mq_connected(mq))
        return MCS_EMQTT;
    /* The PUBACK may come before publish returns: remember where to look. */
    pthread_mutex_lock(&mq->lock);
    t->from = mq->ack_n;
    pthread_mutex_unlock(&mq->lock);
    rc = mosquitto_publish_v5(mq->m, &t->mid, topic, (int)strlen(payload), payload, 1, false,
                              NULL);
    if(rc != MOSQ_ERR_SUCCESS) {
        LOG_W("mq", "publish failed", LS("error", mosquitto_strerror(rc)));
        return MCS_EMQTT;
    }
    return 0;
}

int mq_track_wait(struct api_mq *mq, const struct mq_track *t, int wait_ms)
{
    struct timespec until;
    int reason;

    mcs_deadline_ts(&until, CLOCK_MONOTONIC, wait_ms);
    pthread_mutex_lock(&mq->lock);
    while((reason = ack_of(mq, t->from, t->mid)) < 0)
        if(pthread_cond_timedwait(&mq->acked, &mq->lock, &until))
            break;
    pthread_mutex_unlock(&mq->lock);
    if(reason < 0)
        return MCS_ETIMEDOUT;
    return reason >= 128 ? MCS_EMQTT : 0;
}

int mq_publish(struct api_mq *mq, const char *topic, const char *payload)
{
    struct mq_track t;
    return mq_publish_track(mq, topic, payload, &t);
}