/* SPDX-License-Identifier: Apache-2.0 */
/*
 * InitProducerId: producer ids for idempotent producers. Ids are handed out
 * from blocks of PRODUCER_ID_BLOCK reserved through the metadata log (a
 * PRODUCER_IDS record moves the watermark past the block before any id of it
 * is given), so that no id is ever handed out twice, even across crashes: a
 * restart starts from the watermark, at worst skipping the rest of a block.
 *
 * A producer that names its current id and epoch (v3+, KIP-360) gets the
 * same id with the next epoch, which fences its older incarnation on every
 * partition; at the last epoch it gets a fresh id instead. Transactions are
 * not served: a transactional id is refused with INVALID_REQUEST.
 */
#include <errno.h>
#include <string.h>

#include "broker/broker.h"
#include "broker/metalog.h"
#include "common/assert.h"
#include "common/log.h"
#include "proto/errors.h"

#define PRODUCER_ID_BLOCK 1000
#define EPOCH_MAX         INT16_MAX

/* A request waiting for a block of ids to be reserved. */
struct pid_wait {
    struct handling *h;
    struct pid_wait *next;
};

static void respond(struct handling *h, int16_t error, int64_t id, int16_t epoch)
{
    struct kmsg_init_producer_id_response resp;
    kmsg_init(&kmsg_init_producer_id_response_desc, &resp);
    resp.error_code = error;
    resp.producer_id = error == KAFKA_ERR_NONE ? id : -1;
    resp.producer_epoch = error == KAFKA_ERR_NONE ? epoch : -1;
    handling_respond(h, &resp);
}

static void serve_waiters(struct broker *b, int16_t error);

static void block_reserved(void *opaque, int status)
{
    struct broker *b = opaque;
    b->pid_reserving = false;
    if (status == 0) {
        /* The image's watermark moved past the new block when it was applied. */
        b->pid_end = b->image.next_producer_id;
        b->pid_next = SL_MAX(b->pid_next, b->pid_end - PRODUCER_ID_BLOCK);
        LOG_INFO("broker", "producer ids reserved from=%lld to=%lld", (long long)b->pid_next,
                 (long long)b->pid_end);
    }
    serve_waiters(b, status == 0 ? KAFKA_ERR_NONE : KAFKA_ERR_COORDINATOR_NOT_AVAILABLE);
}

/* Reserves the next block through the metadata log. 0 or -errno. */
static int reserve_block(struct broker *b)
{
    if (b->pid_reserving) {
        return 0;
    }
    struct metalog_txn txn;
    metalog_txn_init(&txn);
    int64_t next = b->image.next_producer_id + PRODUCER_ID_BLOCK;
    int err = md_put_producer_ids(&txn.bytes, b->config.node_id, next);
    err = err != 0 ? err : metalog_txn_mark(&txn);
    err = err != 0 ? err : metalog_commit(b->metalog, &txn, block_reserved, b);
    metalog_txn_deinit(&txn);
    if (err == 0) {
        b->pid_reserving = true;
    }
    return err;
}

/* A fresh id, or -1 when the block is used up. */
static int64_t take_id(struct broker *b)
{
    return b->pid_next < b->pid_end ? b->pid_next++ : -1;
}

static void serve_waiters(struct broker *b, int16_t error)
{
    while (b->pid_waiting != NULL) {
        struct pid_wait *w = b->pid_waiting;
        int64_t id = error == KAFKA_ERR_NONE ? take_id(b) : -1;
        if (error == KAFKA_ERR_NONE && id < 0) {
            if (reserve_block(b) == 0) {
                return; /* the rest wait for the next block */
            }
            error = KAFKA_ERR_COORDINATOR_NOT_AVAILABLE;
        }
        b->pid_waiting = w->next;
        respond(w->h, error, id, 0);
    }
}

void handle_init_producer_id(struct handling *h)
{
    struct broker *b = h->broker;
    const struct kmsg_init_producer_id_request *rq = h->req->handler_data;
    if (rq->transactional_id.len >= 0) {
        LOG_INFO("broker",
                 "init producer id: transactions are not served transactional_id=%.*s "
                 "peer=%s",
                 rq->transactional_id.len, rq->transactional_id.ptr, conn_peer(h->req->conn));
        respond(h, KAFKA_ERR_INVALID_REQUEST, -1, -1);
        return;
    }
    if (h->version >= 3 && rq->producer_id >= 0) {
        /* KIP-360: the producer names itself; it must be an id we gave. */
        if (rq->producer_id >= b->image.next_producer_id || rq->producer_epoch < 0) {
            respond(h, KAFKA_ERR_INVALID_PRODUCER_ID_MAPPING, -1, -1);
            return;
        }
        if (rq->producer_epoch < EPOCH_MAX - 1) {
            respond(h, KAFKA_ERR_NONE, rq->producer_id, (int16_t)(rq->producer_epoch + 1));
            return;
        }
        /* Out of epochs: a new id, as Kafka does. */
    }
    int64_t id = take_id(b);
    if (id >= 0) {
        respond(h, KAFKA_ERR_NONE, id, 0);
        return;
    }
    struct pid_wait *w = handling_alloc(h, sizeof(*w));
    int err = w == NULL ? -ENOBUFS : reserve_block(b);
    if (err != 0) {
        LOG_WARN("broker", "producer ids could not be reserved err=%s", strerror(-err));
        respond(h, KAFKA_ERR_COORDINATOR_NOT_AVAILABLE, -1, -1);
        return;
    }
    /* In arrival order: appended at the tail. */
    struct pid_wait **tail = &b->pid_waiting;
    while (*tail != NULL) {
        tail = &(*tail)->next;
    }
    *w = (struct pid_wait){h, NULL};
    *tail = w;
}
