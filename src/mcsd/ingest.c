/* ingest.c - MQTT v5 subscriber and per-message validation/conversion.
 * Owns the mosquitto client and the rejection log rate limit.
 * Thread: the ingest network thread (callbacks run on it). */
#include "ingest.h"
#include "err.h"
#include "log.h"
#include "timeutil.h"

#include <mosquitto.h>
#include <mqtt_protocol.h>
#include <poll.h>
#include <sys/socket.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define SESSION_EXPIRY_S (3 * 86400) /* queued messages survive a 3-day outage */

struct mcs_ingest {
    struct mcsd *d;
    struct mosquitto *mosq;
    pthread_t th;
    int connected, ready_logged, sys_mid;
    uint64_t msgs; /* messages delivered to on_message (network thread only) */
    /* The current read burst (network thread only): messages by QoS, and
     * whether one that the broker will consider delivered once its PUBACK
     * leaves could not be journaled. */
    uint32_t burst_qos0, burst_qos1;
    int unacked;
    _Atomic int leave;
    _Atomic int done; /* the network thread has finished */
    char sub_up[128], sub_status[128];
};

static int reject_q(struct mcsd *d, int reason, const char *topic, const char *sn, int qos)
{
    uint64_t suppressed = 0;
    metrics_reject(&d->metrics, reason);
    /* A QoS 1 message the journal refused is not acknowledged (the
     * connection is dropped before its PUBACK leaves, see loop_once): the
     * broker delivers it again. Only a QoS 0 one is lost. */
    if((reason == MCS_REJ_spool_full || reason == MCS_REJ_spool_error) && qos == 0)
        atomic_fetch_add(&d->metrics.spool_lost, 1);
    /* Rejection lines are rate-limited per reason: under a flood of bad
     * input the log stays readable (R-MQ-3); the counters above stay exact. */
    if(mcs_ratelimit_allow(&d->reject_rl[reason], &suppressed)) {
        int lvl = reason >= MCS_REJ_spool_full ? MCS_LOG_ERROR : MCS_LOG_WARN;
        MCS_LOG(lvl, "ingest", "message rejected", LS("reason", mcs_reject_name(reason)),
                LS("topic", topic), LS("sn", sn), LI("suppressed", (long long)suppressed));
    }
    return reason;
}

static int reject(struct mcsd *d, int reason, const char *topic, const char *sn)
{
    return reject_q(d, reason, topic, sn, 0);
}

static int append(struct mcsd *d, const struct mcs_jrec *rec, int qos, int sync,
                  const char *topic, const char *sn)
{
    int rc = journal_append(&d->journal, rec, sync);
    if(rc == MCS_EFULL)
        return reject_q(d, MCS_REJ_spool_full, topic, sn, qos);
    if(rc)
        return reject_q(d, MCS_REJ_spool_error, topic, sn, qos);
    return MCS_REJ_NONE;
}

int ingest_handle(struct mcsd *d, const char *topic, const void *payload, int len, int qos,
                  int sync, int64_t trace_us)
{
    const struct mcs_config *cfg = d->cfg;
    struct mcs_reading rd;
    struct mcs_jrec rec;
    struct mcs_calib c;
    int kind, rc, flags;

    atomic_fetch_add_explicit(&d->metrics.received, 1, memory_order_relaxed);
    memset(&rd, 0, sizeof(rd));
    kind = mcs_topic_parse(topic, cfg->mqtt_prefix, rd.sn);
    if(!kind)
        return reject(d, MCS_REJ_bad_topic, topic, NULL);
    if(len < 0 || len > cfg->payload_max_bytes)
        return reject(d, MCS_REJ_too_large, topic, rd.sn);

    memset(&rec, 0, sizeof(rec));
    memcpy(rec.sn, rd.sn, strnlen(rd.sn, MCS_SN_MAX));
    rec.recv_us = mcs_now_us();
    rec.trace_us = trace_us;

    if(kind == 2) {
        struct mcs_status st;
        if((rc = mcs_status_read(payload, (size_t)len, &st)) != MCS_REJ_NONE)
            return reject(d, rc, topic, rd.sn);
        if(registry_get_calib(&d->reg, rd.sn, &c) != 0)
            return reject(d, MCS_REJ_unknown_sn, topic, rd.sn);
        /* ver comes with the status on connect and on change (R-MQ-8). */
        if(st.ver[0])
            registry_note_ver(&d->reg, rd.sn, st.ver);
        /* A result, or a device back online whose held commands now run
         * against their deadline (issue #20). The retained "online" a new
         * worker reads at start counts too: harmless, only NULL due_at. */
        if(st.result[0] || st.online)
            cmdres_push(&d->cmdres, rd.sn, &st, rec.recv_us / 1000000);
        rec.type = MCS_JREC_STATUS;
        rec.online = (uint8_t)st.online;
        rec.ts = st.ts ? st.ts : rec.recv_us / 1000000;
        atomic_fetch_add_explicit(&d->metrics.status_msgs, 1, memory_order_relaxed);
        return append(d, &rec, qos, sync, topic, rd.sn);
    }

    struct mcs_payload_limits lim = {rec.recv_us / 1000000, cfg->ts_max_future_s,
                                     (int64_t)cfg->data_retention_days * 86400};
    if((rc = mcs_payload_parse(payload, (size_t)len, &lim, &rd)) != MCS_REJ_NONE)
        return reject(d, rc, topic, rd.sn);
    int obs = registry_observe(&d->reg, &rd, &c);
    switch(obs) {
    case MCS_REG_UNKNOWN:
        return reject(d, MCS_REJ_unknown_sn, topic, rd.sn);
    case MCS_REG_DISABLED:
        return reject(d, MCS_REJ_disabled, topic, rd.sn);
    default:
        break;
    }
    rec.type = MCS_JREC_READING;
    rec.ppm = mcs_calib_ppm(&c, rd.v_raw, rd.temp, &flags);
    if(obs == MCS_REG_RESENT)
        flags |= MCS_FLAG_RESENT;
    rec.flags = (uint16_t)flags;
    rec.err = (int16_t)rd.err;
    rec.seq = rd.seq;
    rec.bat = rd.bat;
    rec.rssi = rd.rssi;
    rec.ts = rd.ts;
    rec.v_raw = rd.v_raw;
    rec.temp = rd.temp;
    rec.humi = rd.humi;
    if((rc = append(d, &rec, qos, sync, topic, rd.sn)) != MCS_REJ_NONE)
        return rc;
    atomic_fetch_add_explicit(&d->metrics.accepted, 1, memory_order_relaxed);
    return MCS_REJ_NONE;
}

/* The mcs-pt user property: the publish time (µs) the load generator and
 * the benchmarks stamp, for the publish → commit latency. A device can send
 * it too, so only a plausible value counts: not in the future, not older
 * than an hour (an absurd one would skew the histogram or overflow). */
#define TRACE_MAX_AGE_US (3600LL * 1000000)
static int64_t trace_of(const mosquitto_property *props, int64_t now_us)
{
    const mosquitto_property *p;
    char *name = NULL, *value = NULL;
    int64_t t = 0;
    for(p = mosquitto_property_read_string_pair(props, MQTT_PROP_USER_PROPERTY, &name, &value,
                                                false);
        p; p = mosquitto_property_read_string_pair(p, MQTT_PROP_USER_PROPERTY, &name, &value,
                                                   true)) {
        if(!strcmp(name, "mcs-pt")) {
            char *end;
            long long v = strtoll(value, &end, 10);
            if(end != value && *end == '\0' && v > 0 && v <= now_us + 1000 &&
               v >= now_us - TRACE_MAX_AGE_US)
                t = v;
        }
        free(name);
        free(value);
        name = value = NULL;
        if(t)
            break;
    }
    return t;
}

#define SYS_DROPPED "$SYS/broker/publish/messages/dropped"
#define SYS_CLIENTS "$SYS/broker/clients/connected"

/* Broker statistics: visible in our metrics so that messages the broker
 * dropped before they reached us are not silent. */
static void on_sys(struct mcs_ingest *in, const struct mosquitto_message *msg)
{
    char buf[32], *end;
    int len = msg->payloadlen < (int)sizeof(buf) - 1 ? msg->payloadlen : (int)sizeof(buf) - 1;
    memcpy(buf, msg->payload, (size_t)(len > 0 ? len : 0));
    buf[len > 0 ? len : 0] = '\0';
    long long v = strtoll(buf, &end, 10);
    if(end == buf || v < 0)
        return;
    if(!strcmp(msg->topic, SYS_DROPPED))
        atomic_store(&in->d->metrics.broker_dropped, v);
    else if(!strcmp(msg->topic, SYS_CLIENTS))
        atomic_store(&in->d->metrics.broker_clients, v);
}

static void on_message(struct mosquitto *mosq, void *obj, const struct mosquitto_message *msg,
                       const mosquitto_property *props)
{
    struct mcs_ingest *in = obj;
    (void)mosq;
    in->msgs++;
    if(msg->topic[0] == '$') {
        on_sys(in, msg);
        return;
    }
    /* libmosquitto has queued this message's PUBACK already, but in threaded
     * mode only our loop writes it, after journal_flush (loop_once). So the
     * record is buffered here, and a message the journal refuses makes the
     * loop drop the connection instead of sending the burst's PUBACKs. */
    int rc = ingest_handle(in->d, msg->topic, msg->payload, msg->payloadlen, msg->qos, 0,
                           props ? trace_of(props, mcs_now_us()) : 0);
    if(msg->qos > 0) {
        in->burst_qos1++;
        if(rc == MCS_REJ_spool_full || rc == MCS_REJ_spool_error)
            in->unacked = 1;
    }
    else
        in->burst_qos0++;
}

static void on_connect(struct mosquitto *mosq, void *obj, int rc, int flags,
                       const mosquitto_property *props)
{
    struct mcs_ingest *in = obj;
    (void)flags;
    (void)props;
    if(rc) {
        LOG_W("ingest", "broker refused the connection", LS("reason", mosquitto_reason_string(rc)));
        return;
    }
    in->connected = 1;
    atomic_store(&in->d->metrics.mqtt_connected, 1);
    LOG_I("ingest", "connected to broker", LS("host", in->d->cfg->mqtt_host),
          LI("port", in->d->cfg->mqtt_port), LI("session_present", flags));
    mosquitto_subscribe_v5(mosq, NULL, in->sub_up, 1, 0, NULL);
    mosquitto_subscribe_v5(mosq, NULL, in->sub_status, 1, 0, NULL);
    /* Not shared: every instance reports the broker's figures. A broker
     * whose ACL refuses $SYS simply leaves them at -1. */
    char *sys[] = {SYS_DROPPED, SYS_CLIENTS};
    mosquitto_subscribe_multiple(mosq, &in->sys_mid, 2, sys, 0, 0, NULL);
}

static void on_subscribe(struct mosquitto *mosq, void *obj, int mid, int qos_count,
                         const int *granted, const mosquitto_property *props)
{
    struct mcs_ingest *in = obj;
    (void)mosq;
    (void)props;
    for(int i = 0; i < qos_count; i++) {
        if(granted[i] < 0x80)
            continue;
        if(mid == in->sys_mid)
            LOG_I("ingest", "broker statistics ($SYS) not readable for this user",
                  LI("reason", granted[i]));
        else
            LOG_E("ingest", "subscription refused by the broker", LI("reason", granted[i]));
    }
    if(mid == in->sys_mid)
        return;
    if(!in->ready_logged++)
        LOG_I("ingest", "ready", LS("up", in->sub_up), LS("status", in->sub_status));
}

static void on_disconnect(struct mosquitto *mosq, void *obj, int rc, const mosquitto_property *p)
{
    struct mcs_ingest *in = obj;
    (void)mosq;
    (void)p;
    in->connected = 0;
    atomic_store(&in->d->metrics.mqtt_connected, 0);
    if(!atomic_load(&in->d->stopping))
        LOG_W("ingest", "disconnected from broker", LS("reason", mosquitto_reason_string(rc)));
}

static int do_connect(struct mcs_ingest *in)
{
    mosquitto_property *props = NULL;
    int rc;
    mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, SESSION_EXPIRY_S);
    rc = mosquitto_connect_bind_v5(in->mosq, in->d->cfg->mqtt_host, in->d->cfg->mqtt_port,
                                   in->d->cfg->mqtt_keepalive, NULL, props);
    mosquitto_property_free_all(&props);
    return rc;
}

/* Sleeps up to ms, waking early when mcsd stops (every wait in a thread
 * must end on SIGTERM). */
static void nap(struct mcs_ingest *in, int ms)
{
    for(int64_t end = mcs_mono_ms() + ms; !atomic_load(&in->d->stopping);) {
        int64_t left = end - mcs_mono_ms();
        if(left <= 0)
            break;
        mcs_sleep_ms(left < 50 ? left : 50);
    }
}

/* Writes the burst's records to the journal, before any of its PUBACKs may
 * leave. A failed write loses the buffered QoS 0 records (counted); the
 * QoS 1 ones are not acknowledged, so the broker delivers them again.
 * Returns 0, or MCS_EIO when the connection must be dropped unacknowledged. */
static int flush_burst(struct mcs_ingest *in)
{
    struct mcsd *d = in->d;
    int pending = journal_pending(&d->journal), rc = 0;

    if(journal_flush(&d->journal)) {
        LOG_E("ingest", "journal write failed", LI("records", pending));
        for(int i = 0; i < pending; i++)
            metrics_reject(&d->metrics, MCS_REJ_spool_error);
        /* Which of the buffered records were QoS 0 is not kept per record:
         * all of the burst's QoS 0 messages are counted as lost at most. */
        uint32_t lost0 = in->burst_qos0 < (uint32_t)pending ? in->burst_qos0 : (uint32_t)pending;
        atomic_fetch_add(&d->metrics.spool_lost, lost0);
        if(in->burst_qos1)
            in->unacked = 1;
    }
    if(in->unacked)
        rc = MCS_EIO;
    in->burst_qos0 = in->burst_qos1 = 0;
    return rc;
}

/* One turn of the network loop: wait, then read every packet already
 * available before going back to poll(2) (libmosquitto reads one packet per
 * call; at tens of thousands of messages per second a poll per packet is a
 * third of the syscalls), then journal the burst, then let the PUBACKs out.
 * With TLS, OpenSSL may hold decrypted bytes the kernel does not show; the
 * read loop goes on while reads deliver messages, and the poll timeout
 * bounds what a held record can wait. */
static int loop_once(struct mcs_ingest *in)
{
    int sock = mosquitto_socket(in->mosq), rc = MOSQ_ERR_SUCCESS;
    struct pollfd p = {sock, POLLIN, 0};

    if(sock < 0)
        return MOSQ_ERR_NO_CONN;
    if(mosquitto_want_write(in->mosq))
        p.events |= POLLOUT;
    if(poll(&p, 1, in->d->cfg->mqtt_cafile[0] ? 20 : 200) < 0)
        return MOSQ_ERR_SUCCESS;
    if((p.revents & (POLLIN | POLLHUP | POLLERR)) || in->d->cfg->mqtt_cafile[0]) {
        /* A read that delivered no message found the socket empty (or read
         * a PINGRESP/SUBACK/part of a packet): back to poll then. Cheaper
         * than asking the kernel (FIONREAD) after every packet. */
        for(int i = 0; i < 4096; i++) {
            uint64_t before = in->msgs;
            rc = mosquitto_loop_read(in->mosq, 1);
            if(rc != MOSQ_ERR_SUCCESS || in->msgs == before)
                break;
        }
    }
    /* Every record of the burst is in the journal before its PUBACK is
     * written; a refused one drops the connection with the PUBACKs unsent
     * (R-PR-5: nothing acknowledged is lost). */
    if(flush_burst(in))
        return MOSQ_ERR_CONN_REFUSED;
    if(rc != MOSQ_ERR_SUCCESS)
        return rc;
    if(mosquitto_want_write(in->mosq) && (rc = mosquitto_loop_write(in->mosq, 1)))
        return rc;
    return mosquitto_loop_misc(in->mosq);
}

/* Makes a new client handle. Also used to throw away a handle whose queued
 * PUBACKs must never be sent. Returns 0 or MCS_EMQTT. */
static int client_new(struct mcs_ingest *in)
{
    const struct mcs_config *cfg = in->d->cfg;
    if(in->mosq) {
        int sock = mosquitto_socket(in->mosq);
        if(sock >= 0)
            shutdown(sock, SHUT_RDWR); /* nothing queued can be written now */
        mosquitto_destroy(in->mosq);
    }
    in->mosq = mosquitto_new(cfg->instance_id, false, in);
    if(!in->mosq)
        return MCS_EMQTT;
    mosquitto_int_option(in->mosq, MOSQ_OPT_PROTOCOL_VERSION, MQTT_PROTOCOL_V5);
    /* The broker may have this many messages in flight to us: read in one
     * burst, acknowledged together after one journal write. */
    mosquitto_int_option(in->mosq, MOSQ_OPT_RECEIVE_MAXIMUM, 1000);
    mosquitto_int_option(in->mosq, MOSQ_OPT_TCP_NODELAY, 1);
    /* Our loop thread, not libmosquitto's: PUBACKs are queued and written by
     * the loop after on_message returns (threaded mode). */
    mosquitto_threaded_set(in->mosq, true);
    if(cfg->mqtt_user[0] &&
       mosquitto_username_pw_set(in->mosq, cfg->mqtt_user, cfg->mqtt_pass[0] ? cfg->mqtt_pass : NULL))
        return MCS_EMQTT;
    if(cfg->mqtt_cafile[0] &&
       mosquitto_tls_set(in->mosq, cfg->mqtt_cafile, NULL, NULL, NULL, NULL) != MOSQ_ERR_SUCCESS) {
        LOG_E("ingest", "TLS setup failed", LS("cafile", cfg->mqtt_cafile));
        return MCS_EMQTT;
    }
    mosquitto_connect_v5_callback_set(in->mosq, on_connect);
    mosquitto_disconnect_v5_callback_set(in->mosq, on_disconnect);
    mosquitto_subscribe_v5_callback_set(in->mosq, on_subscribe);
    mosquitto_message_v5_callback_set(in->mosq, on_message);
    in->unacked = 0;
    in->burst_qos0 = in->burst_qos1 = 0;
    return 0;
}

static void *ingest_main(void *arg)
{
    struct mcs_ingest *in = arg;
    int backoff_ms = 500, up = 0;
    while(!atomic_load(&in->d->stopping)) {
        if(!up) {
            int rc = do_connect(in);
            if(rc != MOSQ_ERR_SUCCESS) {
                LOG_W("ingest", "cannot connect to broker", LS("error", mosquitto_strerror(rc)),
                      LS("host", in->d->cfg->mqtt_host), LI("port", in->d->cfg->mqtt_port));
                nap(in, backoff_ms);
                backoff_ms = backoff_ms < 8000 ? backoff_ms * 2 : 10000;
                continue;
            }
            up = 1;
        }
        int rc = loop_once(in);
        if(rc != MOSQ_ERR_SUCCESS && !atomic_load(&in->d->stopping)) {
            up = 0;
            in->connected = 0;
            atomic_store(&in->d->metrics.mqtt_connected, 0);
            if(in->unacked) {
                /* The spool is full or the disk failed: leave the messages
                 * with the broker (its session queue holds them) until the
                 * journal takes records again. */
                LOG_E("ingest", "journal refused acknowledged-delivery messages; reconnecting "
                                "without acknowledging them");
                atomic_fetch_add(&in->d->metrics.unacked_drops, 1);
                if(client_new(in)) {
                    LOG_E("ingest", "cannot recreate the MQTT client");
                    nap(in, 1000);
                    continue;
                }
                backoff_ms = backoff_ms < 1000 ? 1000 : backoff_ms;
            }
            else
                LOG_W("ingest", "connection to broker lost", LS("error", mosquitto_strerror(rc)));
            nap(in, backoff_ms);
            backoff_ms = backoff_ms < 8000 ? backoff_ms * 2 : 10000;
        }
        else if(rc == MOSQ_ERR_SUCCESS && in->connected)
            backoff_ms = 500;
    }
    if(up) {
        mosquitto_property *props = NULL;
        if(atomic_load(&in->leave))
            mosquitto_property_add_int32(&props, MQTT_PROP_SESSION_EXPIRY_INTERVAL, 0);
        mosquitto_disconnect_v5(in->mosq, 0, props);
        mosquitto_property_free_all(&props);
        /* Let the DISCONNECT and any queued PUBACK go out (their records
         * were journaled by the last loop_once). */
        for(int i = 0; i < 5 && mosquitto_loop_write(in->mosq, 1) == MOSQ_ERR_SUCCESS &&
                       mosquitto_want_write(in->mosq);
            i++)
            mcs_sleep_ms(20);
    }
    atomic_store(&in->done, 1);
    return NULL;
}

int ingest_start(struct mcsd *d, struct mcs_ingest **out)
{
    const struct mcs_config *cfg = d->cfg;
    struct mcs_ingest *in = calloc(1, sizeof(*in));
    int rc = MCS_EMQTT;

    if(!in)
        return MCS_ENOMEM;
    in->d = d;
    snprintf(in->sub_up, sizeof(in->sub_up), "$share/%s/%s/+/up", cfg->mqtt_share_group,
             cfg->mqtt_prefix);
    snprintf(in->sub_status, sizeof(in->sub_status), "$share/%s/%s/+/status",
             cfg->mqtt_share_group, cfg->mqtt_prefix);
    if(client_new(in))
        goto fail;
    if(pthread_create(&in->th, NULL, ingest_main, in))
        goto fail;
    *out = in;
    return 0;
fail:
    if(in->mosq)
        mosquitto_destroy(in->mosq);
    free(in);
    return rc;
}

int ingest_stop(struct mcs_ingest *in, int leave, int64_t deadline_ms)
{
    if(!in)
        return 0;
    atomic_store(&in->leave, leave);
    /* A blocking TCP connect to an unreachable broker cannot be woken: past
     * the deadline the thread is left behind (the process is exiting; what
     * it holds is in the journal or still at the broker). */
    while(!atomic_load(&in->done) && mcs_mono_ms() < deadline_ms)
        mcs_sleep_ms(20);
    if(!atomic_load(&in->done)) {
        LOG_W("ingest", "network thread did not stop in time; leaving it");
        return MCS_ETIMEDOUT;
    }
    pthread_join(in->th, NULL);
    mosquitto_destroy(in->mosq);
    free(in);
    return 0;
}
