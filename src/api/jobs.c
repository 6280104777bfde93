/* jobs.c - the worker thread of slow requests (see jobs.h).
 * Owns struct api_jobs. Thread: one worker; submit/take_done on the loop. */
#include "jobs.h"
#include "err.h"
#include "log.h"

#include <libwebsockets.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JOBS_MAX 64

struct api_jobs {
    struct api_ctx *ctx;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int stop;
    _Atomic int halting; /* set by jobs_halt before it waits for a running job */
    struct api_job *todo, *todo_tail, *done, *done_tail;
    int ntodo;
    char running_ip[64]; /* the address of the job the worker runs ("" idle) */
};

static void push(struct api_job **head, struct api_job **tail, struct api_job *j)
{
    j->next = NULL;
    if(*tail)
        (*tail)->next = j;
    else
        *head = j;
    *tail = j;
}

static struct api_job *pop(struct api_job **head, struct api_job **tail)
{
    struct api_job *j = *head;
    if(j) {
        *head = j->next;
        if(!*head)
            *tail = NULL;
        j->next = NULL;
    }
    return j;
}

static void *worker(void *arg)
{
    struct api_jobs *q = arg;
    pthread_mutex_lock(&q->mu);
    for(;;) {
        struct api_job *j;
        while(!q->stop && !q->todo)
            pthread_cond_wait(&q->cv, &q->mu);
        if(q->stop)
            break;
        j = pop(&q->todo, &q->todo_tail);
        q->ntodo--;
        snprintf(q->running_ip, sizeof(q->running_ip), "%s", j->ip);
        pthread_mutex_unlock(&q->mu);
        j->work(j);
        pthread_mutex_lock(&q->mu);
        q->running_ip[0] = '\0';
        push(&q->done, &q->done_tail, j);
        pthread_mutex_unlock(&q->mu);
        lws_cancel_service(q->ctx->lws);
        pthread_mutex_lock(&q->mu);
    }
    pthread_mutex_unlock(&q->mu);
    return NULL;
}

int jobs_start(struct api_ctx *ctx)
{
    struct api_jobs *q = calloc(1, sizeof(*q));
    if(!q)
        return MCS_ENOMEM;
    q->ctx = ctx;
    pthread_mutex_init(&q->mu, NULL);
    pthread_cond_init(&q->cv, NULL);
    ctx->jobs = q;
    if(pthread_create(&q->thread, NULL, worker, q))
        return MCS_ENOMEM;
    q->started = 1;
    return 0;
}

void jobs_free(struct api_job *j)
{
    if(!j)
        return;
    if(j->free_data)
        j->free_data(j->data);
    free(j);
}

void jobs_halt(struct api_ctx *ctx)
{
    struct api_jobs *q = ctx->jobs;
    if(!q)
        return;
    atomic_store(&q->halting, 1);
    pthread_mutex_lock(&q->mu);
    q->stop = 1;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    if(q->started)
        pthread_join(q->thread, NULL);
    q->started = 0;
}

void jobs_stop(struct api_ctx *ctx)
{
    struct api_jobs *q = ctx->jobs;
    struct api_job *j;
    if(!q)
        return;
    jobs_halt(ctx);
    while((j = pop(&q->todo, &q->todo_tail)))
        jobs_free(j);
    while((j = pop(&q->done, &q->done_tail)))
        jobs_free(j);
    pthread_cond_destroy(&q->cv);
    pthread_mutex_destroy(&q->mu);
    free(q);
    ctx->jobs = NULL;
}

int jobs_submit(struct api_ctx *ctx, struct api_job *j)
{
    struct api_jobs *q = ctx->jobs;
    int rc = 0;
    if(!q)
        return MCS_EFULL;
    pthread_mutex_lock(&q->mu);
    if(j->ip[0]) {
        int same = !strcmp(q->running_ip, j->ip);
        for(const struct api_job *t = q->todo; t; t = t->next)
            same += !strcmp(t->ip, j->ip);
        if(same >= q->ctx->cfg.api_jobs_per_addr)
            rc = MCS_EAGAIN;
    }
    if(!rc && q->ntodo >= JOBS_MAX)
        rc = MCS_EFULL;
    if(!rc) {
        push(&q->todo, &q->todo_tail, j);
        q->ntodo++;
        pthread_cond_signal(&q->cv);
    }
    pthread_mutex_unlock(&q->mu);
    return rc;
}

struct api_job *jobs_take_done(struct api_ctx *ctx)
{
    struct api_jobs *q = ctx->jobs;
    struct api_job *j;
    if(!q)
        return NULL;
    pthread_mutex_lock(&q->mu);
    j = pop(&q->done, &q->done_tail);
    pthread_mutex_unlock(&q->mu);
    return j;
}

const _Atomic int *jobs_halting(struct api_ctx *ctx)
{
    return ctx->jobs ? &ctx->jobs->halting : NULL;
}

void api_defer(struct api_resp *rs, struct api_job *j)
{
    rs->deferred = j;
}

int api_defer_work(struct api_resp *rs, void (*work)(struct api_job *j),
                   void (*done)(struct api_ctx *ctx, struct api_job *j, struct api_resp *rs),
                   void (*free_data)(void *data), void *data)
{
    struct api_job *j = calloc(1, sizeof(*j));
    if(!j) {
        free_data(data);
        api_error(rs, 500, E_INTERNAL, "out of memory");
        return MCS_ENOMEM;
    }
    j->work = work;
    j->done = done;
    j->free_data = free_data;
    j->data = data;
    api_defer(rs, j);
    return 0;
}
