/* notify_chan.h - the notification channels (issue #7, R-AL-5): one vtable
 * entry per platform (e-mail over libcurl SMTP, DingTalk, Feishu, WeCom,
 * custom webhook, Aliyun SMS), their signatures, message templates and the
 * meaning of each platform's answer. Used by the notifier threads of mcsd
 * and by `mcs alarm test`. Owns nothing between calls.
 * Thread: any; one call uses its own curl handle. */
#ifndef MCS_NOTIFY_CHAN_H
#define MCS_NOTIFY_CHAN_H

#include "notify_text.h"
#include "secret.h"

#include <cjson/cJSON.h>
#include <stdatomic.h>
#include <stddef.h>

/* What a message is about: one alarm event (the template variables). */
struct notify_msg {
    long long alarm_id;
    char event[16];     /* raise, level2, reminder, escalate, test, digest */
    char sn[33], name[65], location[129], unit[17];
    char type[24], category[8];
    int level;
    char val[32], threshold[32];
    char time[32];      /* local time of the alarm, "YYYY-MM-DD HH:MM:SS" */
    int tz_offset_s;    /* of that local time, seconds east of UTC */
    char last_seen[32]; /* OFFLINE: the device's last report, local time */
    char detail[1024];  /* system alarms: what failed (alarm_logs.message) */
    long long count;
    const char *text;   /* when set (digest): the whole text, no template */
    const char *recipients; /* escalation: replaces the channel's recipients */
};

/* Outcome of one send. */
struct notify_result {
    int ok;         /* the platform confirmed (its own success code) */
    int retry;      /* worth retrying later */
    int throttled;  /* the platform's rate limit: back the channel off */
    int unknown;    /* may or may not have been delivered (SMS timeout) */
    long http;      /* HTTP status, SMTP reply code, or 0 */
    char detail[256];
    char provider_id[64]; /* e.g. Aliyun BizId */
    /* In: when set and non-zero during the request, the transfer is
     * aborted (mcsd stopping). Set by the caller after clearing the struct. */
    const _Atomic int *cancel;
};

struct notify_channel {
    const char *name; /* as in alarm.channel.NAME */
    int per_min;      /* platform limit per minute (0: none) */
    int per_sec;      /* platform limit per second (0: none) */
    /* Sends msg with the channel's settings cfg (secrets still encrypted,
     * decrypted with key). timeout_ms bounds the whole request. */
    void (*send)(const cJSON *cfg, const struct mcs_secret_key *key,
                 const struct notify_msg *msg, long timeout_ms, struct notify_result *res);
    /* For a send whose outcome is unknown (timeout after the request left):
     * asks the platform whether msg was delivered to the first recipient.
     * Returns 1 delivered, 0 not found, negative when it cannot tell. NULL
     * for channels that may simply be retried. */
    int (*verify)(const cJSON *cfg, const struct mcs_secret_key *key,
                  const struct notify_msg *msg, long timeout_ms, struct notify_result *res);
    const char *secret_field; /* the field stored encrypted, or NULL */
};

/* Whether the secret field of ch's settings cfg (if set) can be decrypted
 * with key: 0, or the MCS_E code of secret_decrypt (MCS_EINVAL: no key or
 * not the key it was encrypted with). */
int notify_check_secret(const struct notify_channel *ch, const cJSON *cfg,
                        const struct mcs_secret_key *key);

/* The channel of that name or NULL. */
const struct notify_channel *notify_channel_find(const char *name);
/* All channels, ended by a NULL name. */
extern const struct notify_channel notify_channels[];

/* Message text (notify_render, notify_default_text): notify_text.h. */

/* DingTalk: sign = urlencode(base64(HMAC-SHA256(secret, ts_ms "\n" secret))). */
int notify_dingtalk_sign(const char *secret, long long ts_ms, char *out, size_t outn);
/* Feishu: sign = base64(HMAC-SHA256(key = ts "\n" secret, msg = "")). */
int notify_feishu_sign(const char *secret, long long ts_s, char *out, size_t outn);
/* Aliyun RPC signature: base64(HMAC-SHA1(secret "&", "GET&%2F&" +
 * percent(canonical query))). params: name/value pairs (n pairs) in any
 * order. Also writes the canonical query (without Signature) into query. */
int notify_aliyun_sign(const char *secret, const char *const *params, size_t n, char *sig,
                       size_t sign, char *query, size_t queryn);
/* RFC 2047 "=?UTF-8?B?...?=" words (split at 45 bytes, on UTF-8 boundaries). */
int notify_mime_subject(const char *utf8, char *out, size_t outn);

#endif
