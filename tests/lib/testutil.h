/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the unit tests: a private temporary directory per test,
 * seeded random numbers, and file helpers.
 */
#ifndef SL_TESTS_TESTUTIL_H
#define SL_TESTS_TESTUTIL_H

#include <stddef.h>
#include <stdint.h>

/* Creates a fresh directory under $TMPDIR (or /tmp) for one test and returns
 * its path (static storage, valid until the next call). */
const char *tu_tmpdir(const char *test_name);
/* Removes a directory tree. */
void tu_rmtree(const char *path);
/* splitmix64: a deterministic generator for seeded tests. */
uint64_t tu_rand(uint64_t *state);
/* Seed from $SLUICE_SEED, else from the clock; logged so a run can be replayed. */
uint64_t tu_seed(const char *test_name);
/* Reads a whole file into a malloc'd buffer; returns its size or -errno. */
long tu_read_file(const char *path, uint8_t **out);

#endif
