/* mqcmd.h - the broker connection of mcs-api: device commands to
 * {prefix}/{sn}/cmd and {prefix}/broadcast/cmd at QoS 1 (R-MQ-4), and the
 * broker's connected-client count for health. Uses the API_MQTT_USER account
 * (`admin` for now, whose ACL is mcs/#).
 * Owns the mosquitto handle and its network thread. Thread: publish from
 * any thread (libmosquitto is thread-safe in threaded mode). */
#ifndef MCS_MQCMD_H
#define MCS_MQCMD_H

#include "config.h"

struct api_mq;

/* Starts connecting in the background (reconnects by itself). NULL when
 * libmosquitto cannot be set up. */
struct api_mq *mq_new(const struct mcs_config *cfg);
void mq_free(struct api_mq *mq);

/* 1 while connected to the broker. */
int mq_connected(struct api_mq *mq);
/* Clients the broker reports connected ($SYS), or -1 when unknown. */
int mq_broker_clients(struct api_mq *mq);

/* Publishes payload at QoS 1. 0, or MCS_EMQTT when not connected / refused. */
int mq_publish(struct api_mq *mq, const char *topic, const char *payload);
/* Where to find a message's PUBACK: its mid and the PUBACK count when it
 * was published. */
struct mq_track {
    int mid;
    unsigned from;
};
/* mq_publish that fills *t for mq_track_wait. */
int mq_publish_track(struct api_mq *mq, const char *topic, const char *payload,
                     struct mq_track *t);
/* Waits up to wait_ms for the broker's PUBACK of the message *t: 0 once it
 * came (the broker holds the message: delivered, or queued in the device's
 * session), MCS_ETIMEDOUT when it did not come in time (the message may
 * still go out), MCS_EMQTT when the broker refused it. Only the last 64
 * PUBACKs are kept. Blocks the calling thread. */
int mq_track_wait(struct api_mq *mq, const struct mq_track *t, int wait_ms);

#endif
