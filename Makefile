# submitd build. `make run` and `make check` are the two commands in the README.
# Sources: src/*.c is the library shared by every program; src/bin/NAME.c is a program;
# src/ctl/*.c are submitctl's commands; tests/unit/test_*.c are cmocka tests (one binary each).

CC      ?= cc
PKGS    := libevent libevent_openssl libevent_pthreads openssl sqlite3 libsodium jansson libcurl
CSTD    := -std=c17 -D_GNU_SOURCE
# -Wno-format-truncation: snprintf into fixed buffers truncates by design (bounded text).
WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes -Wvla \
           -Wno-format-truncation
OPT     ?= -O2 -g
SAN     ?=
BUILD   ?= build
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS))
CFLAGS  += $(CSTD) $(WARN) $(OPT) $(SAN) -pthread -Isrc $(PKG_CFLAGS)
LDLIBS  += $(PKG_LIBS) -pthread -lm
LDFLAGS += $(SAN)

LIB_SRC  := $(wildcard src/*.c)
CTL_SRC  := $(wildcard src/ctl/*.c)
BINS     := submitd submitctl $(patsubst src/bin/%.c,%,$(filter-out src/bin/submitd.c src/bin/submitctl.c,$(wildcard src/bin/*.c)))
TEST_SRC := $(wildcard tests/unit/test_*.c)

LIB_OBJ  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(LIB_SRC))
# Data built into the programs: smtp-doctor's knowledge base.
GEN_OBJ  := $(if $(wildcard data/smtp-replies.json),$(BUILD)/obj/gen/kb_data.o)
CTL_OBJ  := $(patsubst src/%.c,$(BUILD)/obj/%.o,$(CTL_SRC))
TESTS    := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(TEST_SRC))

.PHONY: all deps run check unit integration sanitize bench bench-peers fuzz format clean
.SECONDARY:
all: $(addprefix $(BUILD)/,$(BINS))

deps:
	@scripts/deps.sh

$(BUILD)/obj/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/gen/kb_data.c: data/smtp-replies.json scripts/embed.sh
	@mkdir -p $(dir $@)
	scripts/embed.sh doctor_kb_json $< $@

$(BUILD)/obj/gen/kb_data.o: $(BUILD)/gen/kb_data.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libsubmitd.a: $(LIB_OBJ) $(GEN_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/submitctl: $(BUILD)/obj/bin/submitctl.o $(CTL_OBJ) $(BUILD)/libsubmitd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/%: $(BUILD)/obj/bin/%.o $(BUILD)/libsubmitd.a
	$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libsubmitd.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -o $@ $< $(BUILD)/libsubmitd.a $(LDFLAGS) $(LDLIBS) -lcmocka

unit: $(TESTS)
	@scripts/run-unit.sh $(TESTS)

integration: all
	SUBMITD_BUILD=$(abspath $(BUILD)) scripts/run-integration.py -j 3

# The same unit and integration tests under AddressSanitizer and UndefinedBehaviorSanitizer.
sanitize:
	$(MAKE) BUILD=build/san OPT="-O1 -g -fno-omit-frame-pointer" \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined" unit integration

check: deps
	@scripts/check.sh

run: deps all
	@scripts/demo.sh

bench: deps all
	@bench/run.sh

# The same load against Postfix + Dovecot SASL on this machine (root; docs/performance.md)
bench-peers: deps all
	@bench/peers.sh

# libFuzzer (clang) over every parser, each for FUZZ_SECONDS (default 60): docs/fuzzing.md
FUZZ_SECONDS ?= 60
fuzz: deps
	@fuzz/run.sh $(FUZZ_SECONDS)

format:
	clang-format -i $(LIB_SRC) $(CTL_SRC) src/*.h src/ctl/*.h src/bin/*.c tests/unit/*.c bench/loadgen.c bench/loadgen_idle.c bench/loadgen.h

clean:
	rm -rf build

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
