#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
#
# libsluice's ABI surface: libsluice.so and libsluice.a export exactly the
# functions client/sluice.h declares (and the version script lists), nothing
# of common/ or proto/; and a program built against the header and the
# shared library runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
W=$(mktemp -d "${TMPDIR:-/tmp}/sluice-sym-XXXXXX")
trap 'rm -rf "$W"' EXIT
fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# Functions the header declares: "name(" at the start of a declaration.
grep -v '^typedef' client/sluice.h | sed -nE 's/^[a-z_ ]+\*? ?(sl_[a-z0-9_]+)\(.*/\1/p' |
    sort -u >"$W/header"
sed -n 's/^ *\(sl_[a-z0-9_]*\);.*/\1/p' client/libsluice.map | sort -u >"$W/map"
nm -D --defined-only "$BUILD/libsluice.so" | awk '$2 == "T" { sub(/@.*/, "", $3); print $3 }' |
    sort -u >"$W/so"
nm -g --defined-only "$BUILD/libsluice.a" | awk 'NF == 3 { print $3 }' | sort -u >"$W/a"
[ -s "$W/header" ] || fail "no functions found in sluice.h"
diff -u "$W/header" "$W/map" || fail "libsluice.map differs from sluice.h"
diff -u "$W/header" "$W/so" || fail "libsluice.so exports differ from sluice.h"
diff -u "$W/header" "$W/a" || fail "libsluice.a globals differ from sluice.h"
if nm -D --defined-only "$BUILD/libsluice.so" | grep -qE ' (buf_|kmsg_|murmur2|crc32c|slog_|slc_)'; then
    fail "internal symbols exported"
fi

# A sanitizer build's library needs its runtime in the program too.
san=""
nm -D --undefined-only "$BUILD/libsluice.so" | grep -q __asan_ && san="$san -fsanitize=address"
nm -D --undefined-only "$BUILD/libsluice.so" | grep -q __ubsan_ && san="$san -fsanitize=undefined"

# The header alone is enough to build against.
cat >"$W/t.c" <<'EOF2'
#include <stdio.h>
#include <string.h>
#include "sluice.h"
int main(void)
{
    sl_conf *conf = sl_conf_new();
    char err[256];
    if (sl_conf_set(conf, "linger.ms", "7", err, sizeof(err)) != SL_OK) {
        return 1;
    }
    if (sl_conf_set(conf, "lingerms", "7", err, sizeof(err)) != SL_ERR_CONF_UNKNOWN) {
        return 2;
    }
    sl_client *c = sl_producer_new(conf, err, sizeof(err));
    if (c != NULL || strstr(err, "bootstrap.servers") == NULL) {
        return 3;
    }
    sl_conf_free(conf);
    printf("%s %s\n", sl_version_str(), sl_err_name(SL_ERR_QUEUE_FULL));
    return 0;
}
EOF2
cc -std=c99 -Wall -Wextra -Werror -pedantic -I client "$W/t.c" -L "$BUILD" -lsluice \
    $(pkg-config --libs libzstd zlib) -o "$W/t" $san ||
    fail "a program does not build against sluice.h and libsluice.so"
out=$(LD_LIBRARY_PATH=$BUILD "$W/t") || fail "the program against libsluice.so failed: $?"
[ "$out" = "0.1.0 QUEUE_FULL" ] || fail "unexpected output: $out"
cc -std=c99 -I client "$W/t.c" "$BUILD/libsluice.a" $(pkg-config --libs libzstd zlib) -o "$W/ts" \
    $san || fail "static link"
[ "$("$W/ts")" = "0.1.0 QUEUE_FULL" ] || fail "the program against libsluice.a failed"
echo "client_symbols: $(wc -l <"$W/header") functions, .so and .a export exactly those: ok"
