/* handlers.h - the request handlers of mcs-api, one file per area:
 * h_auth.c (login, users), h_devices.c, h_alarms.c, h_config.c, h_system.c.
 * Each takes a routed, authorised request and fills the response.
 * Thread: the lws loop thread. */
#ifndef MCS_HANDLERS_H
#define MCS_HANDLERS_H

#include "api.h"

#define H(name) int name(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
H(h_ping);
H(h_metrics);
H(h_login);
H(h_me);
H(h_password);
H(h_users_list);
H(h_users_add);
H(h_users_put);
H(h_users_del);
H(h_dev_list);
H(h_dev_add);
H(h_dev_get);
H(h_dev_put);
H(h_dev_del);
H(h_dev_realtime);
H(h_dev_history);
H(h_dev_command);
H(h_dev_commands);
H(h_dev_broadcast);
H(h_dev_positions);
H(h_alarm_list);
H(h_alarm_get);
H(h_alarm_ack);
H(h_alarm_stats);
H(h_alarm_export);
H(h_cfg_alarm_get);
H(h_cfg_alarm_put);
H(h_cfg_alarm_test);
H(h_cfg_alarm_channels);
H(h_cfg_storage_get);
H(h_cfg_storage_put);
H(h_cfg_dash_get);
H(h_cfg_dash_put);
H(h_cfg_bg_get);
H(h_cfg_bg_post);
H(h_sys_health);
H(h_sys_stats);
H(h_sys_license);
H(h_sys_license_put);
#undef H

/* h_license.c (issue #17). The license state, evaluated at most once a
 * second (a new license file takes effect without a restart). */
struct lic_view;
struct api_route;
const struct lic_view *api_license(struct api_ctx *ctx);
/* 0 when r may run; else -1 with a 403 (20001/20002/20004) on rs. */
int api_license_gate(struct api_ctx *ctx, const struct api_route *r, struct api_resp *rs);
/* Adds the license members (status, customer, limits, ...) to o. */
void api_license_json(struct api_ctx *ctx, cJSON *o, long long devices_in_use);
/* Inside a device add's transaction: 0 when one more device fits the
 * license, else -1 with 403/20003 (or a database error) on rs. */
int api_license_device_room(struct api_ctx *ctx, struct api_resp *rs);
#define H(name) int name(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs)
H(h_sys_logs);
H(h_sys_archives);
H(h_sys_archive_dl);
H(h_sys_archive_run);
#undef H

/* h_history.c: the device history of a range that touches archived days,
 * read as `mcs history` reads it (history_query, with its cache) on the job
 * worker; the answer says its source (hot/archive/mixed). */
int h_dev_history_cold(struct api_ctx *ctx, struct api_resp *rs, const char *sn, int64_t start,
                       int64_t end, long iv, const char *ivs, const struct api_page *pg);
/* Unix seconds as "YYYY-MM-DDTHH:MM:SSZ". */
void hist_iso(int64_t s, char *buf, size_t n);

/* Shared by handlers: 400 for bad query arguments (too many/too long). */
int h_args_ok(struct api_req *rq, struct api_resp *rs);

#endif
