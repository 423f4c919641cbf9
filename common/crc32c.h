/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CRC-32C (Castagnoli), the checksum of Kafka's RecordBatch v2. Uses the SSE4.2
 * crc32 instruction when the CPU has it (chosen once, at first use), a
 * slicing-by-8 table otherwise; both give identical results.
 */
#ifndef SL_COMMON_CRC32C_H
#define SL_COMMON_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* Continues a checksum: crc32c(crc32c(0, a), b) == crc32c(0, a || b). */
uint32_t crc32c(uint32_t crc, const void *data, size_t len);
/* The portable implementation, exposed so tests can compare the two. */
uint32_t crc32c_portable(uint32_t crc, const void *data, size_t len);
/* True when the hardware path is in use. */
int crc32c_hw_available(void);

#endif
