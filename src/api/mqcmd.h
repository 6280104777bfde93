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

#endif
