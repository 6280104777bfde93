/* sysalarm.h - system alarms that reach people (issue #15): the settings of
 * alarm.general.system and the digest of UNKNOWN_DEVICE episodes. A new
 * system alarm row writes its own outbox rows (trigger of migration 050,
 * whoever inserts it); the broker plugin's UNKNOWN_DEVICE episodes are
 * instead collected here into one digest row per window, so a scan of a
 * thousand unknown serial numbers is one message, not a thousand.
 * Owns nothing persistent. Thread: the notifier's housekeeping thread. */
#ifndef MCS_SYSALARM_H
#define MCS_SYSALARM_H

#include <libpq-fe.h>

/* Bounds of alarm.general.system.unknown_digest_s (seconds). */
#define SYSALARM_DIGEST_MIN 1
#define SYSALARM_DIGEST_MAX 86400

/* Every system alarm type (what alarm.general.system.notify may switch),
 * ended by NULL. */
extern const char *const sysalarm_types[];

struct sysalarm_cfg {
    double unknown_digest_s; /* collect UNKNOWN_DEVICE episodes this long (60) */
};

/* Defaults, then alarm.general.system over them from the JSON text of
 * alarm.general (NULL or not an object: defaults). Bad values keep the
 * default. */
void sysalarm_cfg_parse(struct sysalarm_cfg *c, const char *general_json);

/* Writes one UNKNOWN_DEVICE digest row (sn 'SYSTEM', already cleared: it is
 * a report, the episodes stay on screens) listing the episodes nobody
 * reported yet, when the oldest of them has waited unknown_digest_s; marks
 * them reported_in = the digest's id. One statement, FOR UPDATE SKIP
 * LOCKED: two instances never report one episode twice. tz names the zone
 * of the times in the text. Returns episodes reported (0: none due) or
 * MCS_EDB. */
int sysalarm_digest_unknown(PGconn *pg, const struct sysalarm_cfg *c, const char *tz);

#endif
