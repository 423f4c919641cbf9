/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: a request frame as the broker receives it (without its
 * 4-byte size): the header, then the body of whichever API and version the
 * header names, decoded into a bounded arena. Whatever the input, the
 * decoders must stay inside it and inside the arena; a body that decodes must
 * encode again and decode to the same bytes.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/buf.h"
#include "proto/kmsg.h"

/* Large enough for any decodable message of the fuzzer's max_len. */
#define ARENA_BYTES (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static uint8_t arena_mem[ARENA_BYTES];
    static _Alignas(16) uint8_t msg[1 << 16];
    static _Alignas(16) uint8_t again[1 << 16];
    uint8_t *p = malloc(size + 1); /* exact size, so any over-read is caught */
    if (p == NULL) {
        return 0;
    }
    memcpy(p, data, size);
    struct kmsg_request_header hdr;
    size_t consumed = 0;
    const struct kmsg_api *api = NULL;
    if (kmsg_request_header_decode(p, size, &hdr, &consumed, NULL) == 0) {
        api = kmsg_api_find(hdr.request_api_key);
    }
    if (api != NULL && kmsg_api_version_valid(api, hdr.request_api_version)) {
        SL_ASSERT(api->request->size <= sizeof(msg)); /* every request struct fits */
        struct karena arena;
        karena_init(&arena, arena_mem, sizeof(arena_mem));
        int16_t v = hdr.request_api_version;
        if (kmsg_decode(api->request, v, p + consumed, size - consumed, msg, &arena, NULL) == 0) {
            struct buf out;
            buf_init(&out, size + 1024);
            /* A decoded message re-encodes to bytes that decode again. */
            SL_ASSERT(kmsg_encode(api->request, v, msg, &out) == 0);
            struct karena arena2;
            karena_init(&arena2, arena_mem, sizeof(arena_mem)); /* msg is no longer read */
            SL_ASSERT(kmsg_decode(api->request, v, out.data, out.len, again, &arena2, NULL) == 0);
            buf_deinit(&out);
        }
    }
    free(p);
    return 0;
}
