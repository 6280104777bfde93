/* sim_tls.h - one OpenSSL client context shared by every simulated device
 * (thousands of TLS connections without thousands of contexts and CA
 * copies). Owns the context. Thread: the simulator's loop. */
#ifndef SIM_TLS_H
#define SIM_TLS_H

#include <mosquitto.h>

/* TLS 1.2 or newer, the broker's certificate verified against cafile, a
 * client session cache (reconnects resume). NULL on failure (reason on
 * stderr). */
void *sim_tls_new(const char *cafile);
void sim_tls_free(void *ctx);

/* Makes mosq use ctx instead of a context of its own; libmosquitto still
 * checks the host name against the certificate. A MOSQ_ERR_... code. */
int sim_tls_use(struct mosquitto *mosq, void *ctx);

#endif
