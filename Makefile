# Aegis -- build, test and install.
#
#   make            the four daemons into build/bin/
#   make test       install what is missing, build, start the dev stack, run every test
#   make asan       build with AddressSanitizer + UBSan and run the unit tests under them
#   make demo       install, build and bring the stack up on loopback
#   make install    DESTDIR=... PREFIX=... (default /usr/local)

BUILD    ?= build
PREFIX   ?= /usr/local
DESTDIR  ?=
VERSION  := $(shell cat VERSION)

COMPONENTS := resolver tenantd portal-api logpipe
DAEMONS    := $(addprefix $(BUILD)/bin/aegis-,$(COMPONENTS))

PKGS     := libevent libevent_pthreads openssl libpq rdkafka libmicrohttpd jansson libconfig \
            libsystemd zlib ldns libxxhash libcurl libzstd
# Recursive (=) so pkg-config runs only when a rule needs it, after set-up has installed it.
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   = $(shell pkg-config --libs $(PKGS)) -lpthread

WARN     := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
            -Wformat=2 -Wno-format-zero-length -Wvla
HARDEN   := -fstack-protector-strong -D_FORTIFY_SOURCE=2 -fPIE -fno-strict-overflow
OPT      ?= -O2 -g
SANITIZE ?=
ifeq ($(SANITIZE),1)
  OPT    := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all
  HARDEN := -fstack-protector-strong -fPIE
endif

CPPFLAGS_ALL = -D_GNU_SOURCE -DAEGIS_VERSION='"$(VERSION)"' \
               -DAEGIS_MIGRATIONS_DIR='"$(PREFIX)/share/aegis/migrations"' \
               -Icommon $(addprefix -I,$(COMPONENTS))
CFLAGS_ALL   = -std=gnu11 $(OPT) $(WARN) $(HARDEN) $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL  = -pie -Wl,-z,relro,-z,now -Wl,--as-needed $(OPT) $(LDFLAGS)

# Every component folder becomes a static library of its modules; main.c is the daemon.
lib_of  = $(BUILD)/lib/lib$(subst -,_,$(1)).a
objs_of = $(patsubst %.c,$(BUILD)/obj/%.o,$(filter-out $(1)/main.c,$(wildcard $(1)/*.c)))

COMMON_LIB := $(call lib_of,common)
ALL_LIBS   := $(foreach c,$(COMPONENTS),$(call lib_of,$(c))) $(COMMON_LIB)

UNIT_TESTS  := $(patsubst tests/unit/%.c,$(BUILD)/tests/unit/%,$(wildcard tests/unit/test_*.c))
INTEG_TESTS := $(patsubst tests/integration/%.c,$(BUILD)/tests/integration/%,\
                 $(wildcard tests/integration/test_*.c))

.PHONY: all tests test asan unit fuzz demo demo-down install clean
.SECONDARY:
all: $(DAEMONS)
tests: $(UNIT_TESTS) $(INTEG_TESTS)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  CC      $<"
	@$(CC) $(CPPFLAGS_ALL) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

# The OpenAPI document is assembled into the portal API with .incbin, which -MMD cannot see.
$(BUILD)/obj/portal-api/openapi.o $(BUILD)/fuzz/obj/portal-api/openapi.o: portal-api/openapi.json

define component_rules
$(call lib_of,$(1)): $(call objs_of,$(1))
	@mkdir -p $$(dir $$@)
	@rm -f $$@ && $(AR) rcs $$@ $$^
endef
$(foreach c,common $(COMPONENTS),$(eval $(call component_rules,$(c))))

$(BUILD)/bin/aegis-%: $(BUILD)/obj/%/main.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS_ALL) -o $@ $< $(call lib_of,$*) $(COMMON_LIB) $(PKG_LIBS)

$(BUILD)/tests/%: $(BUILD)/obj/tests/%.o $(ALL_LIBS)
	@mkdir -p $(dir $@)
	@echo "  LINK    $@"
	@$(CC) $(LDFLAGS_ALL) -o $@ $< $(ALL_LIBS) $(PKG_LIBS) -lcriterion

# libFuzzer targets (tests/fuzz/fuzz_*.c), built with clang and every sanitizer that fits.
FUZZ_CC      ?= clang
FUZZ_SECONDS ?= 30
FUZZ_FLAGS    = -std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=undefined
FUZZ_SRCS    := $(wildcard common/*.c) $(foreach c,$(COMPONENTS),$(filter-out $(c)/main.c,\
                  $(wildcard $(c)/*.c)))
FUZZ_OBJS    := $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(FUZZ_SRCS))
FUZZ_TARGETS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(wildcard tests/fuzz/fuzz_*.c))

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	@echo "  FUZZCC  $<"
	@$(FUZZ_CC) $(CPPFLAGS_ALL) $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link $(PKG_CFLAGS) \
		-MMD -MP -c $< -o $@

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	@echo "  FUZZLD  $@"
	@$(FUZZ_CC) $(CPPFLAGS_ALL) $(FUZZ_FLAGS) -fsanitize=fuzzer $(PKG_CFLAGS) $< \
		$(FUZZ_OBJS) $(PKG_LIBS) -o $@

fuzz: $(FUZZ_TARGETS)
	@scripts/run-fuzzers.sh $(FUZZ_SECONDS) $(FUZZ_TARGETS)

unit: $(UNIT_TESTS)
	@scripts/run-unit-tests.sh $(UNIT_TESTS)

asan:
	$(MAKE) BUILD=$(BUILD)/asan SANITIZE=1 unit

test:
	scripts/test.sh

demo:
	scripts/demo.sh up

demo-down:
	scripts/demo.sh down

install: all
	install -d $(DESTDIR)$(PREFIX)/sbin $(DESTDIR)$(PREFIX)/share/aegis/migrations
	install -m 0755 $(DAEMONS) $(DESTDIR)$(PREFIX)/sbin/
	install -m 0644 migrations/*.sql $(DESTDIR)$(PREFIX)/share/aegis/migrations/

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
