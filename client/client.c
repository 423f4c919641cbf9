/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The caller-driven loop: sl_poll, sl_flush, sl_close, sl_topic_partitions
 * and the fd for external loops, plus the done list and error queue whose
 * callbacks they fire.
 *
 * One round of work (slc_timers) seals lingered batches, expires old ones,
 * asks for metadata and a producer id, connects, and sends what is ready;
 * between rounds, epoll_wait sleeps until a socket is ready or the next
 * deadline a round reported. Callbacks run only from slc_dispatch, which
 * only these calls reach, after the round that produced the outcomes: so a
 * callback never sees the client half-way through an update, and may call
 * sl_produce (which touches only batches and queues, never the loop).
 *
 * The fd of sl_fd is the epoll set itself. It holds every broker socket and
 * a timerfd armed for the next deadline, so it turns readable exactly when
 * sl_poll would have something to do. sl_produce arms the timer when it
 * creates work that has a deadline (a new batch's linger, a sealed batch, a
 * message waiting for metadata), once per batch, not per message.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "client/internal.h"
#include "common/assert.h"
#include "proto/compress.h"
#include "proto/errors.h"

/* Events taken per epoll_wait. */
#define EVENTS_PER_WAIT 64
/* sl_flush and sl_topic_partitions poll in slices of this, to re-check. */
#define WAIT_SLICE_MS 100

/* ================================================================ outcomes */

void slc_error(sl_client *c, sl_err err, const char *fmt, ...)
{
    if (c->errors_count == SLC_ERRORS_QUEUED_MAX) {
        c->errors_dropped++;
        return;
    }
    struct slc_error *e = &c->errors[(c->errors_head + c->errors_count) % SLC_ERRORS_QUEUED_MAX];
    e->err = err;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->text, sizeof(e->text), fmt, ap);
    va_end(ap);
    c->errors_count++;
    slc_wake_at(c, 0);
}

void slc_done_batch(sl_client *c, struct slc_batch *b, sl_err err)
{
    b->err = err;
    b->next = NULL;
    if (c->done_tail != NULL) {
        c->done_tail->next = b;
    } else {
        c->done_head = b;
    }
    c->done_tail = b;
}

void slc_done_pending(sl_client *c, struct slc_pending *m, sl_err err)
{
    m->err = err;
    m->next = NULL;
    if (c->done_pend_tail != NULL) {
        c->done_pend_tail->next = m;
    } else {
        c->done_pend_head = m;
    }
    c->done_pend_tail = m;
}

static int dispatch_batch(sl_client *c, struct slc_batch *b)
{
    SL_ASSERT(c->msg_count >= b->count && c->msg_bytes >= b->payload_bytes);
    c->msg_count -= b->count;
    c->msg_bytes -= b->payload_bytes;
    sl_delivery d = {.err = b->err, .topic = b->part->topic->name, .partition = b->part->id};
    for (uint32_t i = 0; i < b->count && c->conf->delivery_cb != NULL; i++) {
        bool placed = b->err == SL_OK && b->base_offset >= 0;
        d.offset = placed ? b->base_offset + i : -1;
        d.timestamp = b->log_append_time >= 0 ? b->log_append_time : b->msgs[i].timestamp;
        d.msg_opaque = b->msgs[i].opaque;
        c->conf->delivery_cb(c->conf->opaque, &d);
    }
    int served = (int)b->count;
    slc_batch_free(b);
    return served;
}

static void dispatch_pending(sl_client *c, struct slc_pending *m)
{
    SL_ASSERT(c->msg_count >= 1 && c->msg_bytes >= m->payload_bytes);
    c->msg_count--;
    c->msg_bytes -= m->payload_bytes;
    sl_delivery d = {.err = m->err,
                     .topic = m->topic->name,
                     .partition = -1,
                     .offset = -1,
                     .timestamp = m->msg.timestamp,
                     .msg_opaque = m->msg.opaque};
    if (c->conf->delivery_cb != NULL) {
        c->conf->delivery_cb(c->conf->opaque, &d);
    }
    free(m);
}

static int dispatch_errors(sl_client *c)
{
    int served = 0;
    while (c->errors_count > 0) {
        struct slc_error e = c->errors[c->errors_head];
        c->errors_head = (c->errors_head + 1) % SLC_ERRORS_QUEUED_MAX;
        c->errors_count--;
        if (c->conf->error_cb != NULL) {
            c->conf->error_cb(c->conf->opaque, e.err, e.text);
        }
        served++;
    }
    if (c->errors_dropped > 0) {
        char text[64];
        snprintf(text, sizeof(text), "%u more errors dropped", c->errors_dropped);
        c->errors_dropped = 0;
        if (c->conf->error_cb != NULL) {
            c->conf->error_cb(c->conf->opaque, SL_ERR_TRANSPORT, text);
        }
        served++;
    }
    return served;
}

int slc_dispatch(sl_client *c)
{
    if (c->in_callback) {
        return 0;
    }
    c->in_callback = true;
    int served = 0;
    /* Callbacks may produce, which may fail batches: re-read the heads. The
     * group's callbacks (rebalance, commits) go first, once a round. */
    served += slc_group_dispatch(c);
    while (c->done_head != NULL || c->done_pend_head != NULL || c->errors_count > 0) {
        while (c->done_head != NULL) {
            struct slc_batch *b = c->done_head;
            c->done_head = b->next;
            if (c->done_head == NULL) {
                c->done_tail = NULL;
            }
            served += dispatch_batch(c, b);
        }
        while (c->done_pend_head != NULL) {
            struct slc_pending *m = c->done_pend_head;
            c->done_pend_head = m->next;
            if (c->done_pend_head == NULL) {
                c->done_pend_tail = NULL;
            }
            dispatch_pending(c, m);
            served++;
        }
        served += dispatch_errors(c);
        served += slc_group_dispatch(c);
    }
    c->in_callback = false;
    return served;
}

/* ================================================================ the loop */

static void arm(sl_client *c, int64_t deadline_ms)
{
    struct itimerspec its = {0};
    if (deadline_ms != INT64_MAX) {
        /* Absolute 0 would disarm: a deadline already past is 1 ms. */
        int64_t ms = SL_MAX(deadline_ms, 1);
        its.it_value.tv_sec = ms / 1000;
        its.it_value.tv_nsec = (ms % 1000) * 1000000;
    }
    /* Fails only with a bad fd or value: a bug. */
    int rc = timerfd_settime(c->timerfd, TFD_TIMER_ABSTIME, &its, NULL);
    SL_ASSERT(rc == 0);
    c->timer_armed_ms = deadline_ms;
}

void slc_wake_at(sl_client *c, int64_t deadline_ms)
{
    if (deadline_ms < c->timer_armed_ms) {
        arm(c, deadline_ms);
    }
}

void slc_timers(sl_client *c, int64_t now_ms, int64_t *next_ms)
{
    slc_brokers_check_timeouts(c, now_ms, next_ms);
    slc_metadata_tick(c, now_ms, next_ms);
    if (c->cons != NULL) {
        slc_consumer_tick(c, now_ms, next_ms);
        slc_group_tick(c, now_ms, next_ms);
    } else {
        slc_producer_tick(c, now_ms, next_ms);
    }
    for (uint32_t i = 0; i < c->broker_count; i++) {
        slc_broker_flush(c, c->brokers[i], now_ms);
    }
}

static void handle_events(sl_client *c, const struct epoll_event *evs, int n, int64_t now_ms)
{
    for (int i = 0; i < n; i++) {
        if (evs[i].data.ptr == NULL) {
            uint64_t expirations;
            /* Clears readability; EAGAIN (already read) is fine. */
            ssize_t r = read(c->timerfd, &expirations, sizeof(expirations));
            (void)r;
            c->timer_armed_ms = INT64_MAX;
            continue;
        }
        if (slc_compressor_owns_event(c, evs[i].data.ptr)) {
            slc_compressor_reap(c);
            continue;
        }
        slc_broker_event(c, evs[i].data.ptr, evs[i].events, now_ms);
    }
}

/*
 * Works until at least one callback is served or timeout_ms passes (-1: no
 * limit), doing I/O at least once. Returns the callbacks served.
 */
/* One poll: work until a callback was served, records are ready, done(c,
 * arg) holds (when done is given), or timeout_ms passes. */
static int run_until(sl_client *c, int timeout_ms, bool (*done)(sl_client *, void *), void *arg)
{
    int64_t now_ms = slc_now_ms();
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : now_ms + timeout_ms;
    int64_t next_ms = INT64_MAX;
    int served = 0;
    bool waited = false;
    for (;;) {
        next_ms = INT64_MAX;
        slc_timers(c, now_ms, &next_ms);
        served += slc_dispatch(c);
        bool ready = slc_consumer_ready(c);
        if (served > 0 || (waited && (ready || now_ms >= deadline)) ||
            (done != NULL && done(c, arg))) {
            break;
        }
        int64_t until = SL_MIN(deadline, next_ms);
        int wait = until <= now_ms ? 0 : (int)SL_MIN(until - now_ms, (int64_t)INT_MAX);
        if (ready) {
            wait = 0; /* records are waiting: read what has come, do not sleep */
        }
        struct epoll_event evs[EVENTS_PER_WAIT];
        int n = epoll_wait(c->epfd, evs, EVENTS_PER_WAIT, wait);
        waited = true;
        now_ms = slc_now_ms();
        if (n > 0) {
            handle_events(c, evs, n, now_ms);
        }
    }
    slc_wake_at(c, next_ms);
    return served;
}

static int run(sl_client *c, int timeout_ms)
{
    return run_until(c, timeout_ms, NULL, NULL);
}

int sl_poll(sl_client *c, int timeout_ms)
{
    if (c == NULL || c->in_callback || c->closing) {
        return SL_ERR_STATE;
    }
    return run(c, timeout_ms);
}

int sl_fd(const sl_client *c)
{
    return c != NULL ? c->epfd : -1;
}

bool slc_poll_until(sl_client *c, int timeout_ms, bool (*done)(sl_client *, void *), void *arg)
{
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : slc_now_ms() + timeout_ms;
    while (!done(c, arg)) {
        int64_t left = deadline - slc_now_ms();
        if (left <= 0) {
            return done(c, arg);
        }
        run_until(c, (int)SL_MIN(left, (int64_t)WAIT_SLICE_MS), done, arg);
    }
    return true;
}

static bool queue_empty(sl_client *c, void *arg)
{
    (void)arg;
    return c->msg_count == 0;
}

sl_err sl_flush(sl_client *c, int timeout_ms)
{
    if (c == NULL || c->in_callback || c->closing) {
        return SL_ERR_STATE;
    }
    c->flushing = true;
    bool empty = slc_poll_until(c, timeout_ms, queue_empty, NULL);
    c->flushing = false;
    return empty ? SL_OK : SL_ERR_TIMED_OUT;
}

struct topic_wait {
    struct slc_topic *topic;
    uint64_t answers; /* metadata answers before the wait began */
};

static bool topic_settled(sl_client *c, void *arg)
{
    const struct topic_wait *w = arg;
    if (w->topic->partition_count >= 0) {
        return true;
    }
    /* A refusal counts only from an answer asked for after the call. */
    bool fresh = c->md_answers > w->answers;
    return c->all_down || (fresh && w->topic->err != 0 &&
                           (w->topic->err == KAFKA_ERR_UNKNOWN_TOPIC_OR_PARTITION ||
                            !kafka_error_retriable(w->topic->err)));
}

sl_err sl_topic_partitions(sl_client *c, const char *topic, int timeout_ms, int32_t *count)
{
    if (c == NULL || c->in_callback || c->closing) {
        return SL_ERR_STATE;
    }
    size_t len = topic != NULL ? strlen(topic) : 0;
    if (topic == NULL || count == NULL || !slc_topic_name_valid(topic, len)) {
        return SL_ERR_INVALID_ARG;
    }
    struct slc_topic *t = slc_topic_get(c, topic, len, true);
    if (t == NULL) {
        return SL_ERR_NOMEM;
    }
    if (t->partition_count < 0) {
        c->md_wanted = true;
        struct topic_wait w = {t, c->md_answers + (c->md_inflight ? 1 : 0)};
        if (!slc_poll_until(c, timeout_ms, topic_settled, &w)) {
            return c->all_down ? SL_ERR_ALL_BROKERS_DOWN : SL_ERR_TIMED_OUT;
        }
    }
    if (t->partition_count >= 0) {
        *count = t->partition_count;
        return SL_OK;
    }
    return c->all_down ? SL_ERR_ALL_BROKERS_DOWN : (sl_err)t->err;
}

static void client_free(sl_client *c)
{
    slc_compressor_stop(c); /* before the batches it may hold go */
    slc_brokers_end_calls(c, slc_now_ms());
    for (uint32_t i = 0; i < c->broker_count; i++) {
        slc_broker_free(c->brokers[i]);
    }
    free(c->brokers);
    for (struct slc_topic *t = c->topics, *next; t != NULL; t = next) {
        next = t->list_next;
        slc_topic_free(t);
    }
    free(c->buckets);
    close(c->epfd);
    close(c->timerfd);
    buf_deinit(&c->scratch);
    zstd_ctx_free(c->zstd);
    free(c->arena_mem);
    slc_group_free(c->group);
    slc_consumer_free(c->cons);
    sl_conf_free(c->conf);
    free(c);
}

sl_err sl_close(sl_client *c, int timeout_ms)
{
    if (c == NULL) {
        return SL_OK;
    }
    if (c->in_callback) {
        return SL_ERR_STATE;
    }
    if (timeout_ms != 0 && c->msg_count > 0) {
        sl_flush(c, timeout_ms);
    }
    slc_group_close(c, timeout_ms);
    /* Outcomes already known go out as they are. */
    slc_dispatch(c);
    bool left = c->msg_count > 0;
    c->closing = true;
    slc_fail_all(c, SL_ERR_CLOSED_UNSENT, SL_ERR_CLOSED_INFLIGHT, true);
    slc_dispatch(c);
    /* Every message accepted has been reported: none vanish. */
    SL_ASSERT(c->msg_count == 0 && c->msg_bytes == 0);
    client_free(c);
    return left ? SL_ERR_TIMED_OUT : SL_OK;
}
