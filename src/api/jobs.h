/* jobs.h - slow work off the lws loop: a request whose handler would block
 * (an Argon2id check, ~80 ms; a channel test send, up to 5 s) hands a job to
 * a worker thread and answers when it is done, so that other clients are
 * served meanwhile. The worker never touches lws or the loop's connections:
 * `work` runs on the worker with the job's own data, `done` runs on the loop
 * and fills the response.
 * Owns the worker thread and its two queues. */
#ifndef MCS_API_JOBS_H
#define MCS_API_JOBS_H

#include "api.h"

struct lws;

struct api_job {
    void (*work)(struct api_job *j);                                        /* worker */
    void (*done)(struct api_ctx *ctx, struct api_job *j, struct api_resp *rs); /* loop */
    void (*free_data)(void *data);
    void *data;
    /* Set by http.c: the connection waiting for the answer. NULL once it
     * closed (the result is then dropped). Loop thread only. */
    struct lws *wsi;
    char ip[64]; /* the client's address: API_JOBS_PER_ADDR of one at once */
    struct api_job *next;
};

/* Starts the worker. 0 or MCS_ENOMEM. */
int jobs_start(struct api_ctx *ctx);
/* Stops and joins the worker; queued jobs stay allocated (connections that
 * close afterwards still clear their wsi). Idempotent. */
void jobs_halt(struct api_ctx *ctx);
/* Halts, then frees every job still queued. Call after lws_context_destroy. */
void jobs_stop(struct api_ctx *ctx);

/* Loop thread: queues j (taken over only on success: on an error the
 * caller still owns it). Returns 0; MCS_EAGAIN when API_JOBS_PER_ADDR jobs
 * of j->ip are queued or running already (the caller answers 429: one
 * client cannot take the queue from the others); MCS_EFULL when 64 jobs
 * wait already (503). */
int jobs_submit(struct api_ctx *ctx, struct api_job *j);
/* Loop thread: the next finished job or NULL. The caller runs done (when
 * wsi is set) and jobs_free(). */
struct api_job *jobs_take_done(struct api_ctx *ctx);
void jobs_free(struct api_job *j);

/* A flag that turns 1 when the worker is being halted (process stopping),
 * for long work that can end early (job_execute's stop). Valid until
 * jobs_stop(); NULL before jobs_start(). */
const _Atomic int *jobs_halting(struct api_ctx *ctx);

/* Handlers: defer the answer to j (set rs->deferred). */
void api_defer(struct api_resp *rs, struct api_job *j);

/* Handlers: defers the answer to a new job of work, done, free_data and
 * data. data is taken: when no job can be allocated it is freed with
 * free_data (which may be free). 0, or MCS_ENOMEM with a 500 on rs. */
int api_defer_work(struct api_resp *rs, void (*work)(struct api_job *j),
                   void (*done)(struct api_ctx *ctx, struct api_job *j, struct api_resp *rs),
                   void (*free_data)(void *data), void *data);

#endif
