/* http.h - the lws HTTP protocol of mcs-api: reads a request (headers,
 * query, a capped body), hands it to the router, writes the answer; serves
 * WEB_ROOT with an SPA fallback to index.html and a placeholder page when
 * the web app is not built (R-API-2, STYLE rule 7).
 * Thread: the lws loop thread. */
#ifndef MCS_HTTP_H
#define MCS_HTTP_H

#include <libwebsockets.h>

struct http_pss;
/* Per-connection size for struct lws_protocols. */
extern const size_t http_pss_size;

struct api_ctx;
/* The client's address into ip[n]: the peer, or behind API_TRUSTED_PROXY the
 * last X-Forwarded-For entry. Needs the request headers (HTTP request, or
 * a WebSocket upgrade up to LWS_CALLBACK_ESTABLISHED). The first proxied
 * request (X-Forwarded-For or X-Real-IP) seen without API_TRUSTED_PROXY
 * logs a warning. */
void http_client_ip(struct lws *wsi, struct api_ctx *ctx, char *ip, size_t n);

int http_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                  size_t len);

#endif
