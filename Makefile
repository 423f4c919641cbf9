# Sluice: one non-recursive build for everything.
#
#   make            build everything into build/
#   make run        start a single-node broker (installs Debian packages first)
#   make test       unit tests, then integration and crash tests
#   make asan/ubsan the same tests under AddressSanitizer / UBSan (build/asan, build/ubsan)
#   make bench      every benchmark and bench/results/REPORT.md, beside fio, iperf3 and peers
#   make fuzz       libFuzzer targets (clang), FUZZ_SECONDS each
#   make gen-codec  regenerate proto/kmsg_gen.[ch] from Kafka's schemas
#   make deps       install missing Debian packages

CC       ?= cc
O        ?= build
OPT      ?= -O2 -g
SAN      ?=
PKGS     := liburing libzstd zlib
CPPFLAGS += -I. -D_GNU_SOURCE -MMD -MP
CFLAGS   += -std=gnu17 $(OPT) $(SAN) -Wall -Wextra -Werror -Wformat=2 -Wstrict-prototypes \
            -Wshadow -Wvla -Wno-missing-field-initializers -fno-strict-aliasing \
            $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
LDLIBS   += $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lev -lpthread
LDFLAGS  += $(SAN)

CORE_SRC  := $(wildcard common/*.c proto/*.c storage/*.c replication/*.c)
CORE_OBJ  := $(CORE_SRC:%.c=$(O)/obj/%.o)
UNIT_SRC  := $(wildcard tests/unit/test_*.c)
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(O)/tests/%)
TLIB_SRC  := $(wildcard tests/lib/*.c)
TLIB_OBJ  := $(TLIB_SRC:%.c=$(O)/obj/%.o)
TOOL_SRC  := $(wildcard tests/tools/*.c)
TOOL_BIN  := $(TOOL_SRC:tests/tools/%.c=$(O)/tests/%)
BENCH_SRC := $(wildcard bench/*.c)
BENCH_BIN := $(BENCH_SRC:bench/%.c=$(O)/%)
BROKER_SRC := $(wildcard broker/*.c)
BROKER_OBJ := $(BROKER_SRC:%.c=$(O)/obj/%.o)
BROKER_LIB_OBJ := $(filter-out $(O)/obj/broker/main.o,$(BROKER_OBJ))

.SECONDARY:
.PHONY: all run test bench bench-quick fuzz gen-codec asan ubsan deps clean format check-format
all: $(O)/libsluice-core.a $(O)/sluiced $(UNIT_BIN) $(TOOL_BIN) $(BENCH_BIN)

$(O)/obj/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(O)/libsluice-core.a: $(CORE_OBJ)
	@rm -f $@
	$(AR) rcs $@ $^

$(O)/sluiced: $(BROKER_OBJ) $(O)/libsluice-core.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# Unit tests link the broker's modules too (all but main), for tests of broker/.
$(O)/tests/%: $(O)/obj/tests/unit/%.o $(TLIB_OBJ) $(BROKER_LIB_OBJ) $(O)/libsluice-core.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcmocka

$(O)/tests/%: $(O)/obj/tests/tools/%.o $(TLIB_OBJ) $(O)/libsluice-core.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

$(O)/%: $(O)/obj/bench/%.o $(O)/libsluice-core.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS)

# The peer driver: Debian's librdkafka, against sluiced and its mock broker.
$(O)/kafka-bench: $(O)/obj/bench/kafka-bench.o $(O)/libsluice-core.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lrdkafka

# The NATS JetStream driver for bench/peers.sh: Debian's libnats, built where it
# is installed (scripts/deps bench); elsewhere `make all` passes it over, saying so.
ifeq ($(shell pkg-config --exists libnats && echo yes),yes)
$(O)/nats-bench: $(O)/obj/bench/nats-bench.o $(O)/libsluice-core.a
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) $(shell pkg-config --libs libnats)
else
$(O)/nats-bench:
	@echo "nats-bench: not built: libnats-dev is missing (scripts/deps bench)"
endif

# ---- client: begin ------------------------------------------------------------
# libsluice (client/*.c, public header client/sluice.h), the sluice CLI
# (client/cli/*.c) and the client's unit tests (tests/unit/test_client_*.c).
# The library carries the common/ and proto/ pieces it uses, compiled again
# position-independent (build/pic/), and exports only the API: libsluice.so
# through the version script, libsluice.a by linking everything into one
# object whose other symbols are made local, so that an application linking
# it cannot collide with buf_init or murmur2. Users link -lzstd -lz too.
CLIENT_SRC     := $(wildcard client/*.c)
CLIENT_OBJ     := $(CLIENT_SRC:%.c=$(O)/obj/%.o)
CLI_SRC        := $(wildcard client/cli/*.c)
CLI_OBJ        := $(CLI_SRC:%.c=$(O)/obj/%.o)
CLIENT_PIC_OBJ := $(patsubst %.c,$(O)/pic/%.o,$(CLIENT_SRC) $(wildcard common/*.c proto/*.c))
BENCH_CL_SRC   := $(wildcard client/bench/*.c)
BENCH_CL_OBJ   := $(BENCH_CL_SRC:%.c=$(O)/obj/%.o)
CLIENT_ALL     := $(O)/libsluice.a $(O)/libsluice.so $(O)/sluice $(O)/sluice-bench

# CLIENT_OBJ is named here so that make builds a new client file's object
# for the tests' pattern rule below instead of passing over that rule.
all: $(CLIENT_ALL) $(CLIENT_OBJ)

$(O)/pic/%.o: %.c
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -fPIC -c $< -o $@

$(O)/pic/libsluice.syms: client/libsluice.map
	@mkdir -p $(@D)
	sed -n 's/^ *\(sl_[a-z0-9_]*\);.*/\1/p' $< >$@

$(O)/libsluice.a: $(CLIENT_PIC_OBJ) $(O)/pic/libsluice.syms
	@rm -f $@
	$(LD) -r $(CLIENT_PIC_OBJ) -o $(O)/pic/libsluice.o
	objcopy --keep-global-symbols=$(O)/pic/libsluice.syms $(O)/pic/libsluice.o
	$(AR) rcs $@ $(O)/pic/libsluice.o

$(O)/libsluice.so: $(CLIENT_PIC_OBJ) client/libsluice.map
	$(CC) -shared $(LDFLAGS) -Wl,--version-script=client/libsluice.map -Wl,--no-undefined \
	    $(CLIENT_PIC_OBJ) -o $@ $(shell pkg-config --libs libzstd zlib 2>/dev/null)

$(O)/sluice: $(CLI_OBJ) $(O)/libsluice.a
	$(CC) $(LDFLAGS) $^ -o $@ $(shell pkg-config --libs libzstd zlib 2>/dev/null)

# sluice-bench (client/bench/*.c), on the public API only, like the CLI; one
# thread per client, hence -lpthread.
$(O)/sluice-bench: $(BENCH_CL_OBJ) $(O)/libsluice.a
	$(CC) $(LDFLAGS) $^ -o $@ $(shell pkg-config --libs libzstd zlib 2>/dev/null) -lpthread

# Example programs (client/examples/*.c): the public API as an application
# uses it, linked against the archive; tests drive them too.
EXAMPLE_SRC := $(wildcard client/examples/*.c)
EXAMPLE_BIN := $(EXAMPLE_SRC:client/examples/%.c=$(O)/examples/%)
all: $(EXAMPLE_BIN)

$(O)/examples/%: $(O)/obj/client/examples/%.o $(O)/libsluice.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ $(shell pkg-config --libs libzstd zlib 2>/dev/null)

# Client unit tests see the library's internals (client/internal.h): they link
# its plain objects, not the archive whose internals are hidden. The bench's
# histogram (client/bench/hist.o) is linked for test_client_hist.
$(O)/tests/test_client_%: $(O)/obj/tests/unit/test_client_%.o $(CLIENT_OBJ) $(TLIB_OBJ) \
                          $(O)/obj/client/bench/hist.o $(O)/libsluice-core.a
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $^ -o $@ $(LDLIBS) -lcmocka

-include $(shell find $(O)/pic -name '*.d' 2>/dev/null)
# ---- client: end --------------------------------------------------------------

test: all
	scripts/run-tests $(O)

# On a fresh machine `make bench` installs what it needs first: the peers
# (NATS, Redis), iperf3 and gnuplot besides the build's packages.
bench:
	scripts/deps bench
	$(MAKE) all
	bench/storage-bench.sh $(O)
	bench/broker-bench.sh $(O)
	/usr/bin/python3 bench/groups-bench.py $(O)
	bench/client-bench.sh $(O)
	bench/peers.sh $(O)
	/usr/bin/python3 bench/report.py $(O)

bench-quick: all
	QUICK=1 bench/storage-bench.sh $(O)
	QUICK=1 bench/broker-bench.sh $(O)
	QUICK=1 bench/client-bench.sh $(O)

asan:
	$(MAKE) O=build/asan OPT="-O1 -g" SAN="-fsanitize=address -fno-omit-frame-pointer" test

ubsan:
	$(MAKE) O=build/ubsan OPT="-O1 -g" \
	    SAN="-fsanitize=undefined,alignment -fno-sanitize-recover=all" test

run: deps
	$(MAKE) all
	$(O)/sluiced -c config/sluice.conf

FUZZ_SECONDS ?= 60
FUZZ_FLAGS := -std=gnu17 -O1 -g -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
              -I. -D_GNU_SOURCE
FUZZ_LIB   := common/crc32c.c common/varint.c common/buf.c common/log.c proto/batch.c \
              proto/kmsg.c proto/kmsg_gen.c proto/compress.c
FUZZ_LIBS  := $(shell pkg-config --libs libzstd zlib 2>/dev/null)
FUZZ_TARGETS := batch request decompress
fuzz:
	@mkdir -p build/fuzz
	for t in $(FUZZ_TARGETS); do \
	    clang $(FUZZ_FLAGS) tests/fuzz/fuzz_$$t.c $(FUZZ_LIB) -o build/fuzz/fuzz_$$t $(FUZZ_LIBS) || exit 1; \
	    mkdir -p build/fuzz/corpus-$$t; \
	    build/fuzz/fuzz_$$t -max_total_time=$(FUZZ_SECONDS) -max_len=65536 \
	        build/fuzz/corpus-$$t || exit 1; \
	done

# The codec tables are generated from Kafka's message schemas and committed.
SCHEMAS ?= ../shared/kafka-messages
gen-codec:
	python3 scripts/gen-codec.py $(SCHEMAS)

deps:
	scripts/deps

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

check-format:
	clang-format --dry-run -Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)
