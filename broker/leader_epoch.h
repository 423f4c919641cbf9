/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A partition's leader epoch as requests see it: Kafka's check of a client's
 * current leader epoch (KIP-320), and the end offset of an epoch, the answer
 * of OffsetForLeaderEpoch and of Fetch's divergence check. Shared by
 * handle_epoch.c (where they live), handle_fetch.c (Fetch, ListOffsets).
 *
 * A node has kept one epoch per partition so far (partition->leader_epoch,
 * stamped on every batch it appends, starting at the log's start): the epoch
 * history is that one entry until replication brings a leader-epoch cache.
 */
#ifndef SL_BROKER_LEADER_EPOCH_H
#define SL_BROKER_LEADER_EPOCH_H

#include <stdint.h>

#include "broker/topics.h"

/* A request's "no epoch given" (RecordBatch.NO_PARTITION_LEADER_EPOCH), and
 * Kafka's UNDEFINED_EPOCH / UNDEFINED_EPOCH_OFFSET in answers. */
#define LEADER_EPOCH_NONE             (-1)
#define LEADER_EPOCH_UNDEFINED        (-1)
#define LEADER_EPOCH_OFFSET_UNDEFINED (-1)

/*
 * Checks a request's current_leader_epoch against the partition's, as
 * Kafka's Partition.checkCurrentLeaderEpoch: LEADER_EPOCH_NONE passes
 * (KAFKA_ERR_NONE), an older one is FENCED_LEADER_EPOCH (the client's
 * metadata is stale), a newer one UNKNOWN_LEADER_EPOCH (this broker is
 * behind). Any other negative value is an epoch like the others (older).
 */
int16_t leader_epoch_check(const struct partition *partition, int32_t current_leader_epoch);

/*
 * The largest epoch <= requested and the offset where it ended, as Kafka's
 * LeaderEpochFileCache.endOffsetFor answers for the partition's history:
 *   requested == -1                  -1, -1
 *   requested == the current epoch   the epoch, the log end offset
 *   requested > the current epoch    -1, -1
 *   requested < the first epoch      requested, the first epoch's start offset
 *                                    (the log start offset: retention moves it)
 */
void leader_epoch_end_offset(const struct partition *partition, int32_t requested, int32_t *epoch,
                             int64_t *end_offset);

#endif
