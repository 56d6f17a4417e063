# moonspan — build, test, bench, install.
#   make demo    build, then run examples/research_agent.lua and its report
#   make test    build and run every test; last line "N passed, N failed"
#   make check   the tests again under AddressSanitizer + UBSan
#   make bench   performance figures (printed, never asserted)
#   make fuzz    libFuzzer targets, each run for FUZZ_SECONDS (tests/fuzz/)

PREFIX  ?= /usr/local
DESTDIR ?=
BUILD   ?= build
CC      ?= cc
VERSION := 0.1.0

PKGS     := lua5.4 libcurl sqlite3 zlib libmicrohttpd
DEB_PKGS := liblua5.4-dev lua5.4 lua-cjson-dev lua-cjson libcurl4-openssl-dev \
            libsqlite3-dev sqlite3 zlib1g-dev libmicrohttpd-dev lua-busted libcmocka-dev pkg-config \
            clang libclang-rt-14-dev prometheus chromium

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CJSON_LIBS = $(shell pkg-config --libs lua5.4-cjson 2>/dev/null)

OPT     ?= -O2 -g
WARN    := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wno-unused-parameter
CFLAGS  += -std=c11 -D_GNU_SOURCE $(OPT) $(WARN) -pthread -MMD -MP \
           -DMOONSPAN_VERSION='"$(VERSION)"' $(PKG_CFLAGS) -Itelemetry -Ihost
LDLIBS  += $(PKG_LIBS) -lm -pthread

TEL_SRC  := $(wildcard telemetry/*.c)
HOST_SRC := $(filter-out host/embed.c,$(wildcard host/*.c))
LUA_SRC  := $(wildcard scripts/*.lua scripts/*/*.lua)
UI_SRC   := $(sort $(wildcard host/ui/*.html host/ui/*.css host/ui/*.js))
TEST_SRC := $(wildcard tests/unit/test_*.c)

TEL_OBJ  := $(TEL_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/prices_builtin.o $(BUILD)/gen/schema_sql.o
HOST_OBJ := $(HOST_SRC:%.c=$(BUILD)/%.o) $(BUILD)/gen/lua_modules.o $(BUILD)/gen/ui_assets.o
TESTS    := $(TEST_SRC:tests/unit/%.c=$(BUILD)/tests/%)
BIN      := $(BUILD)/moonspan

# The loadable SQLite extension (the spans tables for the sqlite3 CLI and
# other clients): the decoder's files again, position-independent, calling
# SQLite through the host's routines.
EXT      := $(BUILD)/moonspan_sql.so
EXT_SRC  := telemetry/ms_vtab.c telemetry/ms_spans.c telemetry/ms_pack.c telemetry/ms_trace.c telemetry/ms_digest.c telemetry/ms_hist.c \
            telemetry/ms_trace_prof.c telemetry/ms_buf.c telemetry/ms_ids.c telemetry/ms_text.c telemetry/sqlext/moonspan_sql.c
EXT_OBJ  := $(EXT_SRC:%.c=$(BUILD)/ext/%.o)

# scripts/retry.lua -> moonspan.retry, scripts/providers/mock.lua -> moonspan.providers.mock
lua_modname = moonspan.$(subst /,.,$(patsubst scripts/%.lua,%,$(1)))

.PHONY: all deps demo test run-tests check bench fuzz fuzz-build install clean
all: $(BIN) $(EXT)

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -c $< -o $@

# never sanitized: it is loaded into programs that are not (the sqlite3 CLI)
EXT_CFLAGS = $(filter-out -fsanitize=% -fno-sanitize-recover=%,$(CFLAGS))
$(BUILD)/ext/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(EXT_CFLAGS) -fPIC -DMS_SQLITE_EXTENSION -c $< -o $@

$(EXT): $(EXT_OBJ)
	$(CC) $(EXT_CFLAGS) -shared -o $@ $^ -lm

$(BUILD)/embed: host/embed.c
	@mkdir -p $(dir $@)
	$(CC) -O2 -o $@ $<

$(BUILD)/gen/prices_builtin.c: telemetry/prices.tsv $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(BUILD)/embed ms_prices_builtin $< > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/schema_sql.c: telemetry/ms_schema.sql $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(BUILD)/embed ms_schema_sql $< > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/lua_modules.c: $(LUA_SRC) $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(BUILD)/embed -m ms_embedded_modules $(foreach f,$(LUA_SRC),$(call lua_modname,$(f))=$(f)) > $@.tmp && mv $@.tmp $@

# the web UI's pages (host/ui/), served by `moonspan ui` from the binary; named by file name
$(BUILD)/gen/ui_assets.c: $(UI_SRC) $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(BUILD)/embed -m ms_ui_assets $(foreach f,$(UI_SRC),$(notdir $(f))=$(f)) > $@.tmp && mv $@.tmp $@

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c
	$(CC) $(CFLAGS) -c $< -o $@

$(BUILD)/libmoonspan.a: $(TEL_OBJ)
	$(AR) rcs $@ $^

$(BIN): $(HOST_OBJ) $(BUILD)/libmoonspan.a
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.o %.a,$^) $(CJSON_LIBS) $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libmoonspan.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.a,$^) -lcmocka $(LDLIBS)

# Installs the Debian packages that are missing (needs root or sudo).
# Node is looked for as commands, not packages: a machine with node from
# elsewhere keeps it, a fresh Debian 12 gets Debian's nodejs and npm.
NODE_TESTS := tests/otel tests/ui

deps:
	@missing=$$(for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	command -v node >/dev/null 2>&1 || missing="$$missing nodejs"; \
	command -v npm >/dev/null 2>&1 || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
	  echo "installing:" $$missing; \
	  sudo=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing; \
	fi
	@# the npm packages the OTLP and browser tests use (each folder's package.json), when its lock file changed
	@for d in $(NODE_TESTS); do \
	  if [ ! -f $$d/node_modules/.package-lock.json ] || \
	     [ $$d/package-lock.json -nt $$d/node_modules/.package-lock.json ]; then \
	    echo "npm ci in $$d"; \
	    (cd $$d && npm ci --no-audit --no-fund --loglevel=error) || exit 1; \
	  fi; \
	done

demo: deps
	@$(MAKE) --no-print-directory all
	@rm -f $(BUILD)/demo.db $(BUILD)/demo.db-wal $(BUILD)/demo.db-shm
	$(BIN) --db $(BUILD)/demo.db run examples/research_agent.lua
	$(BIN) --db $(BUILD)/demo.db report

# `make test` works on a fresh machine: what the tests need (Chromium, the
# npm packages, ...) is installed first, then everything is built and run.
test: deps
	@$(MAKE) --no-print-directory run-tests

run-tests: $(BIN) $(EXT) $(TESTS) $(BUILD)/fake_llm
	@BUILD=$(BUILD) sh tests/run.sh

check:
	@$(MAKE) --no-print-directory BUILD=build-asan \
	  OPT="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined" \
	  LDFLAGS="-fsanitize=address,undefined" test

$(BUILD)/bench/%: tests/bench/%.c $(BUILD)/libmoonspan.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.a,$^) $(LDLIBS)

# Loopback fake of the LLM providers used by the specs (tests/fake_llm/README.md).
$(BUILD)/fake_llm: tests/fake_llm/fake_llm.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $< $(shell pkg-config --cflags --libs libmicrohttpd) -pthread

# the profiler's overhead in one process: the binary's profile.c and hook.c, the rest of the host stubbed
$(BUILD)/bench/bench_profile: tests/bench/bench_profile.c $(BUILD)/host/profile.o $(BUILD)/host/hook.o \
    $(BUILD)/libmoonspan.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $(filter %.c %.o %.a,$^) $(LDLIBS)

bench: $(BIN) $(BUILD)/bench/bench_store $(BUILD)/bench/bench_profile $(BUILD)/bench/bench_stats \
       $(BUILD)/bench/bench_metrics $(BUILD)/fake_llm
	@BUILD=$(BUILD) sh tests/bench/run.sh

# --- fuzzing (tests/fuzz/) ---------------------------------------------------
# `make fuzz` builds every target with clang's libFuzzer, ASan and UBSan in
# build-fuzz/, then runs each for FUZZ_SECONDS, FUZZ_JOBS at a time. A crash
# fails the build and says how to reproduce it.
FUZZ_SECONDS ?= 60
FUZZ_JOBS    ?= $(shell nproc 2>/dev/null || echo 2)
FUZZ_LUA     := sse ndjson anthropic openai ollama
FUZZ_TARGETS := $(FUZZ_LUA) traceparent prices cli json pack otlp redact query
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

fuzz:
	@$(MAKE) --no-print-directory -j$(FUZZ_JOBS) BUILD=build-fuzz CC=clang \
	  OPT="-O1 -g -fsanitize=fuzzer-no-link $(FUZZ_SAN)" LDFLAGS="-fsanitize=fuzzer $(FUZZ_SAN)" fuzz-build
	@$(MAKE) --no-print-directory -k -j$(FUZZ_JOBS) BUILD=build-fuzz $(FUZZ_TARGETS:%=fuzz-run-%)

fuzz-build: $(FUZZ_TARGETS:%=$(BUILD)/fuzz/%)

fuzz-run-%:
	@BUILD=$(BUILD) FUZZ_SECONDS=$(FUZZ_SECONDS) sh tests/fuzz/run.sh $* \
	  $(if $(filter $*,$(FUZZ_LUA)),tests/fuzz/wire.dict)

$(BUILD)/gen/fuzz_lua_targets.c: tests/fuzz/lua_targets.lua $(BUILD)/embed
	@mkdir -p $(dir $@)
	$(BUILD)/embed ms_fuzz_lua_targets $< > $@.tmp && mv $@.tmp $@

# One harness for the Lua targets, compiled once per target name.
$(BUILD)/tests/fuzz/fuzz_lua_%.o: tests/fuzz/fuzz_lua.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -DFUZZ_TARGET='"$*"' -c $< -o $@

$(FUZZ_LUA:%=$(BUILD)/fuzz/%): $(BUILD)/fuzz/%: $(BUILD)/tests/fuzz/fuzz_lua_%.o \
    $(BUILD)/host/embedded.o $(BUILD)/gen/lua_modules.o $(BUILD)/gen/fuzz_lua_targets.o
$(BUILD)/fuzz/traceparent: $(BUILD)/tests/fuzz/fuzz_traceparent.o $(BUILD)/telemetry/ms_ids.o
$(BUILD)/fuzz/prices: $(BUILD)/tests/fuzz/fuzz_prices.o $(BUILD)/telemetry/ms_prices.o \
    $(BUILD)/gen/prices_builtin.o
$(BUILD)/fuzz/cli: $(BUILD)/tests/fuzz/fuzz_cli.o $(BUILD)/host/cli.o
$(BUILD)/fuzz/query: $(BUILD)/tests/fuzz/fuzz_query.o $(BUILD)/host/serve.o $(BUILD)/host/cli_select.o $(BUILD)/host/cli.o \
    $(BUILD)/libmoonspan.a
$(BUILD)/fuzz/redact: $(BUILD)/tests/fuzz/fuzz_redact.o $(BUILD)/telemetry/ms_redact.o $(BUILD)/telemetry/ms_buf.o
# What a trace buffer needs to link: the fuzz targets that build traces share it.
FUZZ_TRACE_OBJS = $(addprefix $(BUILD)/telemetry/,ms_buf.o ms_trace.o ms_digest.o ms_trace_prof.o ms_text.o ms_ids.o ms_hist.o)
$(BUILD)/fuzz/json: $(BUILD)/tests/fuzz/fuzz_json.o $(FUZZ_TRACE_OBJS)
$(BUILD)/fuzz/pack: $(BUILD)/tests/fuzz/fuzz_pack.o $(BUILD)/telemetry/ms_pack.o $(FUZZ_TRACE_OBJS)
$(BUILD)/fuzz/otlp: $(BUILD)/tests/fuzz/fuzz_otlp.o $(addprefix $(BUILD)/telemetry/,ms_otlp_in.o ms_otlp_in_genai.o ms_otlp_in_json.o ms_otlp_pb.o \
    ms_clock.o ms_pack.o ms_prices.o) $(BUILD)/gen/prices_builtin.o $(FUZZ_TRACE_OBJS)
$(FUZZ_TARGETS:%=$(BUILD)/fuzz/%):
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(CJSON_LIBS) $(LDLIBS)

install: $(BIN)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/moonspan
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/moonspan
	install -m 644 telemetry/prices.tsv $(DESTDIR)$(PREFIX)/share/moonspan/prices.tsv

clean:
	rm -rf build build-asan build-fuzz

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
