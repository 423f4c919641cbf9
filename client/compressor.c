/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The compression thread of a producer with compression.type=zstd: sealed
 * batches are compressed there while the caller's thread goes on producing
 * and doing I/O in sl_poll. Without it zstd ran on the caller's thread, and
 * at 100 B messages a producer was bound by one core where librdkafka uses
 * two (its application thread and its broker thread).
 *
 * A batch sealed for compression keeps its place in its partition's queue
 * (slc_batch.compressing set, wire NULL): order is kept without a second
 * queue, and nothing sends, expires or frees a batch while it is
 * compressing. Hand-over through two lists under one mutex: `todo` (the loop
 * appends, the thread takes) and `done` (the thread appends, the loop takes).
 * While a batch is on `todo` or being compressed, the thread owns its arena
 * and its wire fields and nothing else; everything the loop reads of a
 * compressing batch (links, counts, times) the thread never writes. The
 * mutex orders the thread's writes before the loop's reads. Done batches are
 * announced on an eventfd in the client's epoll set, so sl_fd turns readable
 * and sl_poll reaps them; no callback ever runs on this thread.
 *
 * Bounds: every batch on the lists is a batch of the producer's queue,
 * bounded by queue.buffering.max.messages and .kbytes. The thread's zstd
 * context and scratch block are its own, allocated once.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "client/internal.h"
#include "common/assert.h"
#include "proto/compress.h"

struct slc_compressor {
    pthread_t thread;
    pthread_mutex_t lock;
    pthread_cond_t wake;
    struct slc_batch *todo_head, *todo_tail; /* under lock, linked by znext */
    struct slc_batch *done_head, *done_tail; /* under lock, linked by znext */
    unsigned busy;                           /* under lock: batches on todo or compressing */
    bool stopping;                           /* under lock */
    int event_fd;
    int level;
    struct ZSTD_CCtx_s *zstd; /* the thread's */
    struct buf scratch;       /* the thread's */
};

static void list_push(struct slc_batch **head, struct slc_batch **tail, struct slc_batch *b)
{
    b->znext = NULL;
    if (*tail != NULL) {
        (*tail)->znext = b;
    } else {
        *head = b;
    }
    *tail = b;
}

static void *compressor_main(void *arg)
{
    struct slc_compressor *z = arg;
    pthread_mutex_lock(&z->lock);
    for (;;) {
        while (z->todo_head == NULL && !z->stopping) {
            pthread_cond_wait(&z->wake, &z->lock);
        }
        struct slc_batch *b = z->todo_head;
        if (b == NULL) {
            break; /* stopping, nothing left */
        }
        z->todo_head = b->znext;
        if (z->todo_head == NULL) {
            z->todo_tail = NULL;
        }
        pthread_mutex_unlock(&z->lock);
        b->zerr = slc_batch_compress(b, z->level, z->zstd, &z->scratch);
        pthread_mutex_lock(&z->lock);
        bool announce = z->done_head == NULL;
        list_push(&z->done_head, &z->done_tail, b);
        z->busy--;
        pthread_cond_broadcast(&z->wake); /* slc_compressor_wait */
        if (announce) {
            uint64_t one = 1;
            /* Cannot fail short of a bad fd: the counter is far from full. */
            ssize_t w = write(z->event_fd, &one, sizeof(one));
            (void)w;
        }
    }
    pthread_mutex_unlock(&z->lock);
    return NULL;
}

int slc_compressor_start(sl_client *c)
{
    struct slc_compressor *z = calloc(1, sizeof(*z));
    if (z == NULL) {
        return -ENOMEM;
    }
    z->level = c->conf->compression_level;
    z->event_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    z->zstd = zstd_ctx_new();
    buf_init(&z->scratch, (size_t)c->conf->batch_size * 2 + (1u << 20));
    int rc = z->event_fd < 0 ? -errno : z->zstd == NULL ? -ENOMEM : 0;
    if (rc == 0) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = z};
        rc = epoll_ctl(c->epfd, EPOLL_CTL_ADD, z->event_fd, &ev) == 0 ? 0 : -errno;
    }
    bool locks = false;
    if (rc == 0) {
        rc = -pthread_mutex_init(&z->lock, NULL);
        if (rc == 0 && (rc = -pthread_cond_init(&z->wake, NULL)) != 0) {
            pthread_mutex_destroy(&z->lock);
        }
        locks = rc == 0;
    }
    if (rc == 0) {
        rc = -pthread_create(&z->thread, NULL, compressor_main, z);
    }
    if (rc != 0) {
        if (locks) {
            pthread_cond_destroy(&z->wake);
            pthread_mutex_destroy(&z->lock);
        }
        if (z->event_fd >= 0) {
            close(z->event_fd); /* also leaves the epoll set */
        }
        zstd_ctx_free(z->zstd);
        buf_deinit(&z->scratch);
        free(z);
        return rc;
    }
    c->compressor = z;
    return 0;
}

void slc_compressor_submit(sl_client *c, struct slc_batch *b)
{
    struct slc_compressor *z = c->compressor;
    SL_ASSERT(z != NULL && !b->compressing);
    b->compressing = true;
    pthread_mutex_lock(&z->lock);
    list_push(&z->todo_head, &z->todo_tail, b);
    z->busy++;
    pthread_cond_broadcast(&z->wake);
    pthread_mutex_unlock(&z->lock);
}

bool slc_compressor_owns_event(const sl_client *c, const void *ptr)
{
    return c->compressor != NULL && ptr == (const void *)c->compressor;
}

void slc_compressor_reap(sl_client *c)
{
    struct slc_compressor *z = c->compressor;
    if (z == NULL) {
        return;
    }
    uint64_t count;
    ssize_t r = read(z->event_fd, &count, sizeof(count)); /* EAGAIN: already read */
    (void)r;
    pthread_mutex_lock(&z->lock);
    struct slc_batch *b = z->done_head;
    z->done_head = z->done_tail = NULL;
    pthread_mutex_unlock(&z->lock);
    bool any = b != NULL;
    while (b != NULL) {
        struct slc_batch *next = b->znext;
        b->znext = NULL;
        b->compressing = false; /* back to the loop: sendable, or failed at the head */
        b = next;
    }
    if (any) {
        slc_wake_at(c, 0); /* something to send */
    }
}

void slc_compressor_wait(sl_client *c)
{
    struct slc_compressor *z = c->compressor;
    if (z == NULL) {
        return;
    }
    pthread_mutex_lock(&z->lock);
    while (z->busy > 0) {
        pthread_cond_wait(&z->wake, &z->lock);
    }
    pthread_mutex_unlock(&z->lock);
    slc_compressor_reap(c);
}

void slc_compressor_stop(sl_client *c)
{
    struct slc_compressor *z = c->compressor;
    if (z == NULL) {
        return;
    }
    slc_compressor_wait(c);
    pthread_mutex_lock(&z->lock);
    z->stopping = true;
    pthread_cond_broadcast(&z->wake);
    pthread_mutex_unlock(&z->lock);
    pthread_join(z->thread, NULL);
    pthread_cond_destroy(&z->wake);
    pthread_mutex_destroy(&z->lock);
    close(z->event_fd);
    zstd_ctx_free(z->zstd);
    buf_deinit(&z->scratch);
    free(z);
    c->compressor = NULL;
}
