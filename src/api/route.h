/* route.h - the route table of mcs-api and the dispatcher that checks the
 * token and role before a handler runs (R-API-1, R-API-2).
 * Owns the table (a constant). Thread: the lws loop thread. */
#ifndef MCS_ROUTE_H
#define MCS_ROUTE_H

#include "api.h"

#include <stdio.h>

typedef int (*api_handler)(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs);

enum body_kind { BODY_NONE, BODY_JSON, BODY_UPLOAD };

struct api_route {
    enum api_method method;
    const char *pattern; /* "/api/devices/{sn}"; {x} matches one segment */
    enum api_role role;  /* ROLE_NONE: no token needed */
    enum body_kind body;
    api_handler fn;
};

extern const struct api_route api_routes[];

/* Finds the route of method+path; fills rq->params. NULL when none; then
 * *path_known = 1 if the path exists with another method (405). */
const struct api_route *api_route_find(enum api_method m, const char *path,
                                       struct api_req *rq, int *path_known);

/* Checks the bearer token of rq, that its user still holds the token's
 * role and gen (auth_user_valid; trusted while the database is down, so
 * that health answers), and the role route r needs. Called from the
 * headers, before a body is read (http.c). Returns 0 with rq->authorised
 * set, or -1 with a 401/403 on rs. */
int api_authorise(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs,
                  const struct api_route *r);

/* Runs the request: route, token and role (unless already authorised),
 * handler. Always fills rs. */
void api_dispatch(struct api_ctx *ctx, struct api_req *rq, struct api_resp *rs);

/* Prints "METHOD PATTERN ROLE" lines of the table (for `mcs-api --routes`
 * and the test that compares them with docs/api/openapi.yaml). */
void api_routes_print(FILE *f);

const char *api_method_name(enum api_method m);

#endif
