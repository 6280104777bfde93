/* ingest.h - where a reading enters: the MQTT v5 client of mcsd. Subscribes
 * to the shared subscriptions of {prefix}/+/up and {prefix}/+/status, checks
 * each message (payload.c), the registry (registry.c), converts it
 * (calib.c) and appends it to the journal (journal.c) inside the message
 * callback, before libmosquitto sends the PUBACK.
 * Owns the mosquitto handle and its network thread (our own loop, so that
 * reconnects carry the session-expiry property and keep the session).
 * Thread: its own network thread; start/stop from main. */
#ifndef MCS_INGEST_H
#define MCS_INGEST_H

#include "mcsd.h"

struct mcs_ingest;

/* Creates the client and starts its thread (which connects and reconnects by
 * itself). Returns 0 or MCS_EMQTT/MCS_ENOMEM. */
int ingest_start(struct mcsd *d, struct mcs_ingest **out);
/* Disconnects cleanly, joins the thread and frees. After it returns 0 no
 * more journal appends happen. Returns MCS_ETIMEDOUT when the thread is
 * still inside a blocking connect at deadline_ms (mcs_mono_ms clock): it is
 * left running and not freed (the process is exiting). With leave set the broker session is ended too
 * (DISCONNECT with session expiry 0): the instance leaves the shared
 * subscription group for good, so the broker stops routing it a share of
 * the messages (decommissioning; a normal stop keeps the session so that
 * nothing is lost across a restart). */
int ingest_stop(struct mcs_ingest *in, int leave, int64_t deadline_ms);

/* The message path without the network: handles one message as the
 * callback does. qos of the delivered message (a refused QoS 0 one is
 * counted as lost; a QoS 1 one is not, since it stays unacknowledged);
 * sync: write the record before returning (else it waits in the journal's
 * buffer for journal_flush); trace_us as in struct mcs_jrec. Returns
 * MCS_REJ_NONE or the reject reason (already counted). */
int ingest_handle(struct mcsd *d, const char *topic, const void *payload, int len, int qos,
                  int sync, int64_t trace_us);

#endif
