# oodseg: `make demo` and `make test` install the Debian packages they need, build, then run.
# Build outputs go to build/ (release) and build-san/ (ASan + UBSan).
# `make MPI=1`: the same oodseg built with MPI (mpicc, Debian's libopenmpi-dev), in build-mpi/.
MPI     ?= 0
ifeq ($(MPI),1)
CC       = mpicc
B       ?= build-mpi
MPI_CFLAGS = -DOODSEG_MPI
endif
CC      ?= cc
BLAS_INC = /usr/include/x86_64-linux-gnu/openblas-openmp
BLAS_LIB = /usr/lib/x86_64-linux-gnu/openblas-openmp
# -fno-math-errno: nothing reads errno after a math function, so sqrt is an instruction and the
# loops that call it vectorise (results are the same: sqrt is correctly rounded either way).
CFLAGS_BASE = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -fopenmp -fPIC -I. -Iinclude -I$(BLAS_INC) \
              -fvisibility=hidden -fno-math-errno -MMD -MP $(MPI_CFLAGS)
OPT     ?= -O2 -march=x86-64-v3 -g
# Video (io/video.c): Debian's FFmpeg libraries, a required dependency like libpng (install-deps.sh).
FFMPEG_LIBS = -lavformat -lavcodec -lswscale -lavutil
LDLIBS  = -L$(BLAS_LIB) -Wl,-rpath,$(BLAS_LIB) -lopenblas -lpng -ljpeg -lwebp -ldeflate -lz $(FFMPEG_LIBS) -lm -fopenmp -pthread
SAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer

LIB_DIRS = core io nn models ood eval api
LIB_SRC  = $(foreach d,$(LIB_DIRS),$(wildcard $(d)/*.c))
CLI_SRC  = $(wildcard cli/*.c)
TEST_SRC = $(wildcard tests/test_*.c)
TEST_SUPPORT = tests/testlib.c
BENCH_SRC = $(wildcard bench/bench_*.c)
TOOL_SRC = $(wildcard tools/*.c)
EXAMPLE_SRC = $(wildcard examples/*.c)

B ?= build
LIB_OBJ  = $(LIB_SRC:%.c=$(B)/obj/%.o)
CLI_OBJ  = $(CLI_SRC:%.c=$(B)/obj/%.o)
TESTS    = $(TEST_SRC:tests/%.c=$(B)/tests/%)
BENCHES  = $(BENCH_SRC:bench/%.c=$(B)/bench/%)
TOOLS    = $(TOOL_SRC:tools/%.c=$(B)/tools/%)
EXAMPLES = $(EXAMPLE_SRC:examples/%.c=$(B)/examples/%)
PREFIX  ?= /usr/local
DEFAULT_MODEL = assets/models/espnetv2/espnetv2_s_2.0_city_1024x512.pth

.PHONY: all lib cli tests benches tools examples deps demo test test-release test-san test-tsan clean install valgrind bench python fuzz fuzz-bins FORCE

all: lib cli tests examples

lib: $(B)/liboodseg.a $(B)/liboodseg.so $(B)/oodseg.pc
cli: $(B)/oodseg
tests: $(TESTS)
benches: $(BENCHES)
tools: $(TOOLS)
examples: $(EXAMPLES)

$(B)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(OPT) $(EXTRA_CFLAGS) -c $< -o $@

$(B)/liboodseg.a: $(LIB_OBJ)
	@mkdir -p $(B)
	rm -f $@ && ar rcs $@ $^

# The version script keeps every symbol but the public oodseg_* API local.
$(B)/liboodseg.so: $(LIB_OBJ) tools/liboodseg.map
	$(CC) -shared $(OPT) $(EXTRA_CFLAGS) -Wl,--version-script=tools/liboodseg.map -o $@ $(LIB_OBJ) $(LDLIBS)

# Rewritten on every make (FORCE), so it always says the PREFIX of this run; `install` writes its
# own copy for the PREFIX it installs to. Every @NAME@ is replaced (g), and a leftover fails.
PC_SED = sed -e 's|@PREFIX@|$(PREFIX)|g' -e 's|@BLAS_LIB@|$(BLAS_LIB)|g'
$(B)/oodseg.pc: tools/oodseg.pc.in FORCE
	@mkdir -p $(B)
	$(PC_SED) $< > $@
	@! grep -n '@[A-Z_]*@' $@ || { echo "$@: placeholder left" >&2; rm -f $@; exit 1; }

$(B)/oodseg: $(CLI_OBJ) $(B)/liboodseg.a
	$(CC) $(OPT) $(EXTRA_CFLAGS) -o $@ $(CLI_OBJ) $(B)/liboodseg.a $(LDLIBS)

$(B)/tests/%: tests/%.c $(TEST_SUPPORT) tests/test.h $(B)/liboodseg.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(OPT) $(EXTRA_CFLAGS) -o $@ $< $(TEST_SUPPORT) $(B)/liboodseg.a $(LDLIBS)

# The fuzz-target table links into the replay of fuzz/regressions/ (tests/test_fuzz_regressions.c).
$(B)/tests/test_fuzz_regressions: tests/test_fuzz_regressions.c fuzz/targets.c fuzz/targets.h $(TEST_SUPPORT) tests/test.h $(B)/liboodseg.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(OPT) $(EXTRA_CFLAGS) -o $@ $< fuzz/targets.c $(TEST_SUPPORT) $(B)/liboodseg.a $(LDLIBS)

$(B)/bench/%: bench/%.c bench/common.c bench/common.h $(B)/liboodseg.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(OPT) $(EXTRA_CFLAGS) -o $@ $< bench/common.c $(B)/liboodseg.a $(LDLIBS)

# Tools link the library alone, like any program built on it.
$(B)/tools/%: tools/%.c $(B)/liboodseg.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(OPT) $(EXTRA_CFLAGS) -o $@ $< $(B)/liboodseg.a $(LDLIBS)

# Every examples/*.c is one program built against the public header only.
$(B)/examples/%: examples/%.c $(B)/liboodseg.a
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -Wall -Wextra -Werror -Iinclude $(OPT) $(EXTRA_CFLAGS) -o $@ $< $(B)/liboodseg.a $(LDLIBS)

# The Python package with the library inside it: PYTHONPATH=$(B)/python python3 -c "import oodseg".
# share/oodseg/models links the repository's assets/models, where the library looks beside itself
# for the default model (core/paths.h).
python: lib
	@mkdir -p $(B)/python/oodseg $(B)/python/share/oodseg
	cp python/oodseg/*.py $(B)/liboodseg.so $(B)/python/oodseg/
	ln -sfn ../../../../assets/models $(B)/python/share/oodseg/models

deps:
	@tools/install-deps.sh

# Release tests, the same tests under ASan + UBSan, then the checks that the install and the
# repository stand alone (tools/check-*.sh, on the release build).
CHECKS = tools/check-source.sh tools/check-install.sh tools/check-standalone.sh tools/check-fleet.sh
# The Python package's pytest suite, on the release build (tools/run-pytest.sh prints its RESULT line).
PYTESTS = tools/run-pytest.sh
test: deps
	$(MAKE) all python
	$(MAKE) B=build-san OPT="$(SAN_FLAGS)" all
	$(MAKE) MPI=1 cli
	tools/run-tests.sh build build-san $(CHECKS) $(PYTESTS)

test-release: all python
	tools/run-tests.sh build $(CHECKS) $(PYTESTS)

# Only the CLI: the demo needs nothing else, and a fresh clone gets there sooner.
demo: deps
	$(MAKE) cli
	tools/demo.sh

bench: all benches
	@echo "run the bench binaries in build/bench/ (see BENCHMARKS.md)"

# Memcheck (tools/valgrind-check.sh): VALGRIND=e2e the small end-to-end runs, api the examples and
# test_api, all both (what .ci/run runs), full also test_api_score (about an hour).
VALGRIND ?= all
valgrind: all
	@tools/install-deps.sh valgrind
	tools/valgrind-check.sh $(VALGRIND)

# ThreadSanitizer: the library and tests/test_tsan.c (two models in two host threads, one model
# from several) built into build-tsan/ with -fsanitize=thread (nn/simd.h drops target_clones there)
# and run with one OpenMP thread per model: libgomp is not TSan-instrumented, so OpenMP barriers
# would be reported as races (RELIABILITY.md "Concurrent use"). tools/tsan.supp names what is
# suppressed and why. TSAN_ITERS: iterations per host thread.
TSAN_FLAGS = -O1 -g -fsanitize=thread -fno-omit-frame-pointer
TSAN_ITERS ?= 30
# gcc 12's TSan runtime stops with "unexpected memory mapping" on kernels that randomise mmap with
# more than 30 bits (vm.mmap_rnd_bits = 32); run with randomisation off where setarch may do that.
TSAN_NORAND = $(shell setarch $$(uname -m) -R true 2>/dev/null && echo setarch $$(uname -m) -R)
test-tsan:
	$(MAKE) B=build-tsan OPT="$(TSAN_FLAGS)" build-tsan/tests/test_tsan
	TSAN_OPTIONS="halt_on_error=1 exitcode=66 second_deadlock_stack=1 suppressions=$(CURDIR)/tools/tsan.supp" \
	    OMP_WAIT_POLICY=passive OODSEG_TSAN_ITERS=$(TSAN_ITERS) OODSEG_TSAN_THREADS=1 \
	    $(TSAN_NORAND) build-tsan/tests/test_tsan

# The default model goes to P/share/oodseg/models/ (the assets layout), where core/paths.c looks.
install: lib cli
	install -d $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/bin \
	    $(DESTDIR)$(PREFIX)/lib/pkgconfig $(DESTDIR)$(PREFIX)/share/oodseg/models/espnetv2
	install -m 644 $(B)/liboodseg.a $(B)/liboodseg.so $(DESTDIR)$(PREFIX)/lib/
	install -m 644 include/oodseg.h $(DESTDIR)$(PREFIX)/include/
	install -m 755 $(B)/oodseg $(DESTDIR)$(PREFIX)/bin/
	$(PC_SED) tools/oodseg.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/oodseg.pc
	install -m 644 $(DEFAULT_MODEL) assets/models/espnetv2/LICENSE $(DESTDIR)$(PREFIX)/share/oodseg/models/espnetv2/

# libFuzzer targets (fuzz/targets.c), built with clang under ASan + UBSan into build-fuzz/ from the
# parsers' folders alone (core, io, eval), then each run for FUZZ_SECONDS (tools/fuzz.sh); FUZZ_B
# names the build folder, which keeps the corpus between runs.
FUZZ_SECONDS ?= 60
FUZZ_B ?= build-fuzz
FUZZ_TARGETS = pickle pth_legacy zip safetensors npy json image datasets mstate
FUZZ_FLAGS = -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_LIB_OBJ = $(filter $(B)/obj/core/% $(B)/obj/io/% $(B)/obj/eval/%,$(LIB_OBJ))
FUZZ_BINS = $(FUZZ_TARGETS:%=$(B)/fuzz/fuzz_%)

fuzz:
	@tools/install-deps.sh fuzz
	$(MAKE) B=$(FUZZ_B) CC=clang OPT="$(FUZZ_FLAGS)" fuzz-bins
	tools/fuzz.sh $(FUZZ_B) $(FUZZ_SECONDS) $(FUZZ_TARGETS)

fuzz-bins: $(FUZZ_BINS)

$(B)/libparsers.a: $(FUZZ_LIB_OBJ)
	rm -f $@ && ar rcs $@ $^

$(B)/fuzz/fuzz_%: fuzz/fuzz_main.c fuzz/targets.c fuzz/targets.h $(B)/libparsers.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) $(OPT) -fsanitize=fuzzer -DFUZZ_TARGET='"$*"' -o $@ fuzz/fuzz_main.c fuzz/targets.c \
	    $(B)/libparsers.a $(LDLIBS)

clean:
	rm -rf build build-san build-mpi build-fuzz build-tsan

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d)
