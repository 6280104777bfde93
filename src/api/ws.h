/* ws.h - the dashboard WebSocket /ws/dashboard (R-API-5): first-message
 * authentication, `connected`, the `realtime` frame every second, `alarm`
 * frames at once, `subscribe` -> `history`, `ping` -> `pong`, `silence` ->
 * an audit_logs row and `silenced` (issue #9). A client that
 * cannot keep up skips realtime frames (one pending at most); one whose
 * alarm backlog passes its bound is dropped, so memory stays bounded.
 * A message goes out in WebSocket fragments of WS_TX_CHUNK straight from
 * the one shared frame: no per-client copy of a ~500 KB realtime frame.
 * Owns struct api_ws (ctx->ws) and every client's queue.
 * Thread: the lws loop thread only. */
#ifndef MCS_WS_H
#define MCS_WS_H

#include <libwebsockets.h>
#include <stdint.h>

struct api_ctx;

#define WS_PROTOCOL "mcs-dashboard"
#define WS_RX_MAX 4096
/* Bytes of a message per lws_write (the protocol's tx_packet_size): lws
 * otherwise sends at most rx_buffer_size per POLLOUT, 115 rounds of the
 * event loop for one realtime frame of 10,000 devices. */
#define WS_TX_CHUNK (128 * 1024)

/* Upper bounds (ms) of the buckets of realtime frame delivery: built ->
 * its last byte handed to the client's socket. */
#define WS_DELIVERY_BUCKETS {10, 25, 50, 100, 200, 500, 1000, 2000, 5000}
#define WS_NDELIVERY 9

struct api_ws_stats {
    int clients;  /* authenticated dashboards (WS_MAX_CLIENTS bounds them) */
    int unauthed; /* sockets open, not yet authenticated */
    uint64_t unauthed_closed; /* closed to make room (WS_UNAUTHED_MAX/_PER_ADDR) */
    uint64_t frames_sent, realtime_skipped, dropped, bad_frames;
    /* Realtime frames delivered, per bucket (the last: over 5 s), and the
     * sum of their delivery times in ms. */
    uint64_t delivered[WS_NDELIVERY + 1];
    uint64_t delivered_ms_sum;
};

extern const size_t ws_pss_size;

/* Allocates ctx->ws. 0 or MCS_ENOMEM. */
int ws_init(struct api_ctx *ctx);
void ws_cleanup(struct api_ctx *ctx);
void ws_stats(struct api_ctx *ctx, struct api_ws_stats *out);

int ws_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                size_t len);

#endif
