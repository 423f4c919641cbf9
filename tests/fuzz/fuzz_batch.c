/* SPDX-License-Identifier: Apache-2.0 */
/*
 * libFuzzer target: RecordBatch v2 validation and record iteration, the code
 * that reads bytes from producers and from disk. Whatever the input, the
 * decoders must stay inside it; a batch that passes the full check must
 * iterate to exactly its record count.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/assert.h"
#include "common/bytes.h"
#include "common/crc32c.h"
#include "proto/batch.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so any read past the end is caught. Half the
     * inputs get their CRC fixed up so the fuzzer reaches the record checks. */
    uint8_t *p = malloc(size + 1);
    if (p == NULL) {
        return 0;
    }
    memcpy(p, data, size);
    if (size > BATCH_HEADER_BYTES && (size & 1) == 0) {
        be32_put(p + BATCH_OFF_LENGTH, (uint32_t)(size - BATCH_LOG_OVERHEAD));
        p[BATCH_OFF_MAGIC] = 2;
        be32_put(p + BATCH_OFF_CRC, batch_compute_crc(p, size));
    }
    struct batch_header h;
    for (int check = BATCH_CHECK_FRAMING; check <= BATCH_CHECK_FULL; check++) {
        int rc = batch_validate(p, size, (enum batch_check)check, 0, &h, NULL);
        if (rc != 0 || check != BATCH_CHECK_FULL) {
            continue;
        }
        struct batch_record_iter it;
        struct batch_record_header slots[16];
        struct batch_record rec;
        if (batch_record_iter_init(&it, p, size, slots, 16) == 0) {
            int32_t n = 0;
            int r;
            while ((r = batch_record_iter_next(&it, &rec)) == 1) {
                n++;
            }
            SL_ASSERT(r == -ENOBUFS || n == h.record_count); /* validated batches iterate fully */
        }
    }
    free(p);
    return 0;
}
