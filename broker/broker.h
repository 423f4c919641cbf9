/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The broker of one node: what a shard owns (loop, ring, storage, topics,
 * server) and the request dispatch. The handlers live in one file per API
 * family and share what this header declares.
 */
#ifndef SL_BROKER_BROKER_H
#define SL_BROKER_BROKER_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "broker/config.h"
#include "broker/server.h"
#include "broker/topics.h"
#include "proto/kmsg.h"
#include "replication/metadata.h"

struct fetch;
struct groups;
struct metalog;
struct pid_wait;

struct broker {
    struct broker_config config;
    struct ev_loop *loop;
    struct ring *ring;
    struct log_shard *shard;
    struct md_image image;   /* the cluster metadata, as applied from the log */
    struct metalog *metalog; /* where metadata changes are appended */
    struct topics topics;    /* the open partitions, following the image */
    struct groups *groups;   /* the group coordinator */
    /* Producer ids: [pid_next, pid_end) is reserved in the metadata log. */
    int64_t pid_next;
    int64_t pid_end;
    bool pid_reserving;
    struct pid_wait *pid_waiting; /* InitProducerId requests waiting for a block */
    struct partition *blocked;    /* partitions with produce batches parked for room */
    ev_timer produce_retry;
    struct server *server;
    struct fetch *parked; /* fetches waiting for data (long poll) */
    unsigned parked_count;
    struct fetch *fetches; /* every fetch not yet answered, parked or reading */
};

/* One request being handled: its decoded body lives in the arena. */
struct handling {
    struct broker *broker;
    struct request *req;
    const struct kmsg_api *api;
    int16_t version;
    struct karena arena;
    uint8_t *arena_mem;
};

/* The server's dispatch callback (opaque = struct broker). */
void broker_dispatch(void *opaque, struct request *req);
/* Encodes resp as the response body and completes the request. */
void handling_respond(struct handling *h, const void *resp);
/* Ends the request without a response: the connection closes after the
 * responses before it are written (what Kafka does with a request it cannot
 * answer). The handling is freed. */
void handling_close(struct handling *h);
/* A message formatted into the request's arena (at most 511 bytes); the
 * null string when the arena is full (the error code still says what went
 * wrong). */
__attribute__((format(printf, 2, 3))) struct kstr handling_printf(struct handling *h,
                                                                  const char *fmt, ...);
/* Allocates from the request's arena (zeroed); NULL when it is exhausted. */
void *handling_alloc(struct handling *h, size_t n);
/* The advertised host and port of this node. */
void broker_endpoint(const struct broker *b, const char **host, int32_t *port);

void handle_api_versions(struct handling *h);
void handle_metadata(struct handling *h);
void handle_produce(struct handling *h);
void handle_fetch(struct handling *h);
void handle_list_offsets(struct handling *h);
void handle_create_topics(struct handling *h);
void handle_delete_topics(struct handling *h);
void handle_offset_for_leader_epoch(struct handling *h);
void handle_describe_configs(struct handling *h);
void handle_init_producer_id(struct handling *h);
/* Sets up produce's retry of batches parked for room (before serving). */
void broker_produce_init(struct broker *b);
/* A topic's logs are about to close: its parked batches are answered
 * UNKNOWN_TOPIC_OR_PARTITION. */
void broker_produce_closing(struct broker *b, const struct topic *topic);
/* The group APIs (handle_group.c). */
void handle_find_coordinator(struct handling *h);
void handle_join_group(struct handling *h);
void handle_sync_group(struct handling *h);
void handle_heartbeat(struct handling *h);
void handle_leave_group(struct handling *h);
void handle_offset_commit(struct handling *h);
void handle_offset_fetch(struct handling *h);
void handle_describe_groups(struct handling *h);
void handle_list_groups(struct handling *h);
void handle_delete_groups(struct handling *h);
/* The metalog's hook: a change was applied to the image (replay: while
 * replaying at start), so the topic table follows it. opaque = the broker. */
void broker_metadata_applied(void *opaque, int replay);
/* Wakes the parked fetches that read this partition: data became readable. */
void broker_data_arrived(struct broker *b, const struct log *log);
/* Answers every parked fetch at once (shutdown). */
void broker_release_fetches(struct broker *b);
/* A topic's logs are about to close (it is being deleted): every fetch that
 * reads one answers UNKNOWN_TOPIC_OR_PARTITION for it and never touches it
 * again; parked ones are answered now, those with reads in flight when their
 * reads end (the close drains them). */
void broker_topic_closing(struct broker *b, const struct topic *topic);

/* The version range this broker advertises and serves for an API, or false. */
bool broker_api_range(int16_t api_key, int16_t *min, int16_t *max);

#endif
