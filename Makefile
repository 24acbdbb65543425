# hring - GNU make build.  `make` builds into build/; `make test` runs the
# suite; `make bench` runs all_reduce_perf on local ranks.
# Optional parts are detected here and reported by build/bin/hring-info.

CC      ?= cc
BUILD   ?= build
OPT     ?= -O2
CFLAGS  ?=
SAN     ?=
CPPFLAGS_ALL = -Iinclude -Isrc -D_GNU_SOURCE
CFLAGS_ALL   = -std=c11 $(OPT) -g -Wall -Wextra -fPIC -fvisibility=hidden \
               -pthread $(SAN) $(CFLAGS)
LDLIBS_ALL   = -pthread -ldl -lm

LIB_SRCS  := $(sort $(wildcard src/core/*.c src/transport/*.c src/algos/*.c src/fusion/*.c))
SHIM_SRCS := $(sort $(wildcard src/nccl/*.c))
TEST_SRCS := tests/harness.c $(sort $(wildcard tests/unit/*.c tests/mp/*.c))
PERF_COMMON := $(filter-out %_perf.c,$(sort $(wildcard perf/*.c)))
PERF_BINS := $(patsubst perf/%.c,$(BUILD)/bin/%,$(sort $(wildcard perf/*_perf.c)))

LIB_OBJS  := $(patsubst %.c,$(BUILD)/obj/%.o,$(LIB_SRCS))
SHIM_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(SHIM_SRCS))
TEST_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(TEST_SRCS))
PERF_COMMON_OBJS := $(patsubst %.c,$(BUILD)/obj/%.o,$(PERF_COMMON))

# Optional parts: detected here, reported by hring-info.  CUDA is used
# through a plugin built when nvcc is found (below); verbs, PMIx and hwloc
# support come later, and the detection tells what a build could enable.
CUDA_HOME ?= /usr/local/cuda
have = $(if $(wildcard $(1)),1,0)
FEATURES := -DHRING_FOUND_VERBS=$(call have,/usr/include/infiniband/verbs.h) \
            -DHRING_FOUND_PMIX=$(call have,/usr/include/pmix.h) \
            -DHRING_FOUND_HWLOC=$(call have,/usr/include/hwloc.h)
$(BUILD)/obj/src/tools/hring_info.o: CPPFLAGS_EXTRA = $(FEATURES)

# The NCCL header the shim is checked against (tests/nccl/nccl_shim_test.c).
NCCL_INC ?= $(firstword $(wildcard /usr/local/cuda/include /usr/local/include /usr/include))
HAVE_NCCL_H := $(if $(wildcard $(NCCL_INC)/nccl.h),1,0)

# The CUDA plugin (src/core/cuda.h says why it is one): built when nvcc is
# found, for sm_80, sm_90 and PTX; `make NVCC=` builds without it.  The
# runtime is linked statically, so the plugin needs only the driver.
NVCC ?= $(firstword $(wildcard $(CUDA_HOME)/bin/nvcc) $(shell command -v nvcc 2>/dev/null))
CUDA_ARCH ?= -gencode arch=compute_80,code=sm_80 -gencode arch=compute_90,code=sm_90 \
             -gencode arch=compute_90,code=compute_90
CUDA_SRCS := $(sort $(wildcard src/core/*.cu src/algos/*.cu))
CUDA_PLUGIN := $(if $(NVCC),$(BUILD)/lib/libhring_cuda.so)
GPU_BINS := $(if $(NVCC),$(BUILD)/bin/nccl_stream_test $(BUILD)/bin/ctx_bench $(BUILD)/bin/copy_bw)

all: $(BUILD)/lib/libhring.so $(BUILD)/lib/libhring.a $(BUILD)/lib/libnccl.so.2 \
     $(CUDA_PLUGIN) $(GPU_BINS) $(BUILD)/lib/libhring_cudamock.so \
     $(BUILD)/bin/hring-run $(BUILD)/bin/hring-info $(PERF_BINS) $(BUILD)/bin/hring-tests \
     $(BUILD)/bin/plugin_check \
     $(if $(filter 1,$(HAVE_NCCL_H)),$(BUILD)/bin/nccl_shim_test)

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS_ALL) $(CPPFLAGS_EXTRA) $(CFLAGS_ALL) -MMD -MP -c $< -o $@

$(TEST_OBJS): CPPFLAGS_EXTRA = -Itests

$(BUILD)/lib/libhring.a: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/lib/libhring.so: $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libhring.so $(SAN) -o $@ $^ $(LDLIBS_ALL)

# The NCCL drop-in: self-contained (the library's objects linked in), so
# LD_LIBRARY_PATH=build/lib is all an NCCL program needs.
$(BUILD)/lib/libhring_nccl.so: $(SHIM_OBJS) $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared -Wl,-soname,libnccl.so.2 $(SAN) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/lib/libnccl.so.2: $(BUILD)/lib/libhring_nccl.so
	cp -f $< $@

$(BUILD)/lib/libhring_cuda.so: $(CUDA_SRCS) $(wildcard src/algos/reduce_cuda.h) src/core/cuda.h include/hring.h
	@mkdir -p $(dir $@)
	$(NVCC) -O2 -std=c++17 -Iinclude -Isrc -Xcompiler -fPIC,-fvisibility=hidden,-Wall $(CUDA_ARCH) \
	  -shared -cudart static -o $@ $(CUDA_SRCS) -lrt -ldl -lpthread

# GPU checks (tests/gpu/run.sh, GPU_BINS): an unchanged NCCL program linked to the
# drop-in, and the device copy bandwidth the device results are set against.
$(BUILD)/bin/nccl_stream_test $(BUILD)/bin/ctx_bench: $(BUILD)/bin/%: tests/gpu/%.cu $(BUILD)/lib/libnccl.so.2
	@mkdir -p $(dir $@)
	$(NVCC) -O2 $(CUDA_ARCH) -I$(NCCL_INC) -o $@ $< -L$(BUILD)/lib -l:libnccl.so.2 \
	  -Xlinker -rpath,'$$ORIGIN/../lib'

$(BUILD)/bin/plugin_check: $(BUILD)/obj/tests/gpu/plugin_check.o $(BUILD)/lib/libhring.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/bin/copy_bw: tests/gpu/copy_bw.cu
	@mkdir -p $(dir $@)
	$(NVCC) -O2 $(CUDA_ARCH) -o $@ $<

# The mock plugin of the tests: "device memory" in shared host memory, so
# the device path runs in CI without a GPU (tests/cudamock/).
$(BUILD)/lib/libhring_cudamock.so: $(BUILD)/obj/tests/cudamock/cuda_mock.o $(LIB_OBJS)
	@mkdir -p $(dir $@)
	$(CC) -shared $(SAN) -o $@ $^ $(LDLIBS_ALL)

# The launcher stands alone: it starts programs, it does not communicate.
$(BUILD)/bin/hring-run: $(BUILD)/obj/src/tools/hring_run.o $(BUILD)/obj/src/tools/run_bind.o
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^

$(BUILD)/bin/hring-info: $(BUILD)/obj/src/tools/hring_info.o $(BUILD)/lib/libhring.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/bin/%_perf: $(BUILD)/obj/perf/%_perf.o $(PERF_COMMON_OBJS) $(BUILD)/lib/libhring.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/bin/hring-tests: $(TEST_OBJS) $(BUILD)/lib/libhring.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS_ALL)

# Compiled against the real nccl.h, linked to the shim by soname.
$(BUILD)/bin/nccl_shim_test: tests/nccl/nccl_shim_test.c $(BUILD)/lib/libnccl.so.2
	@mkdir -p $(dir $@)
	$(CC) -std=c11 $(OPT) -Wall -Wextra $(SAN) -I$(NCCL_INC) -o $@ $< \
	  -L$(BUILD)/lib -l:libnccl.so.2 -Wl,-rpath,'$$ORIGIN/../lib' -pthread

NP ?= 2
test: all
	$(BUILD)/bin/hring-tests $(TESTARGS)

bench: all
	$(BUILD)/bin/hring-run -n $(NP) $(BUILD)/bin/all_reduce_perf -b 8 -e 64M -f 4 -c 1

clean:
	rm -rf $(BUILD)

.PHONY: all test bench clean
.DELETE_ON_ERROR:
.SECONDARY:
-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# Rewrites the README's table of variables from the config table.
readme: $(BUILD)/bin/hring-info
	$(BUILD)/bin/hring-info -c -m > $(BUILD)/config-table.md
	awk -v f=$(BUILD)/config-table.md \
	  '/<!-- end config-table -->/ {skip=0} !skip {print} \
	   /<!-- config-table/ {while ((getline l < f) > 0) print l; skip=1}' README.md > $(BUILD)/README.md
	mv $(BUILD)/README.md README.md
.PHONY: readme

# ---- fuzzing (tests/fuzz/) ---- begin ---------------------------------------
# `make fuzz` builds every tests/fuzz/fuzz_<name>.c that has a seed corpus
# tests/fuzz/corpus/<name>/ into $(BUILD)/fuzz/fuzz_<name> with clang's
# libFuzzer, ASan and UBSan (the library is compiled again for it, into
# $(BUILD)/fuzz/obj/), and the seed generators tests/fuzz/gen_*.c.  Without
# a clang that can link -fsanitize=fuzzer it says so and builds nothing.
# `bash tests/fuzz/run.sh [seconds]` builds and runs them.
FUZZ_CC    ?= clang
FUZZ_SAN   ?= -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
FUZZ_CFLAGS = -std=c11 -O1 -g -Wall -Wextra -pthread $(FUZZ_SAN)
fuzz_name   = $(patsubst tests/fuzz/fuzz_%.c,%,$(1))
FUZZ_NAMES := $(foreach f,$(sort $(wildcard tests/fuzz/fuzz_*.c)),\
                $(if $(wildcard tests/fuzz/corpus/$(call fuzz_name,$(f))/.),$(call fuzz_name,$(f))))
FUZZ_BINS  := $(patsubst %,$(BUILD)/fuzz/fuzz_%,$(FUZZ_NAMES))
FUZZ_GENS  := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(sort $(wildcard tests/fuzz/gen_*.c)))
FUZZ_LIB_OBJS := $(patsubst %.c,$(BUILD)/fuzz/obj/%.o,$(LIB_SRCS))
# Recursive (=): probed only when `make fuzz` runs, not on every make.
FUZZ_OK = $(shell printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
            | $(FUZZ_CC) -x c -fsanitize=fuzzer $(FUZZ_SAN) -o /dev/null - >/dev/null 2>&1 && echo yes)

fuzz:
	@if [ "$(FUZZ_OK)" = yes ]; then \
	  $(MAKE) --no-print-directory fuzz-build; \
	else \
	  echo "make fuzz: SKIPPED: '$(FUZZ_CC) -fsanitize=fuzzer' does not link (need clang with" \
	       "libFuzzer; on Debian: apt-get install clang libclang-rt-14-dev)"; \
	fi

fuzz-build: $(FUZZ_BINS) $(FUZZ_GENS)
	@echo "make fuzz: built $(FUZZ_BINS)"

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CPPFLAGS_ALL) -Itests/fuzz $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(BUILD)/fuzz/libhring.a: $(FUZZ_LIB_OBJS)
	rm -f $@ && ar rcs $@ $^

$(BUILD)/fuzz/fuzz_%: $(BUILD)/fuzz/obj/tests/fuzz/fuzz_%.o $(BUILD)/fuzz/libhring.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/fuzz/gen_%: $(BUILD)/fuzz/obj/tests/fuzz/gen_%.o $(BUILD)/fuzz/libhring.a
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -o $@ $^ $(LDLIBS_ALL)

.PHONY: fuzz fuzz-build
-include $(shell find $(BUILD)/fuzz/obj -name '*.d' 2>/dev/null)
# ---- fuzzing (tests/fuzz/) ---- end -----------------------------------------
# ---- topology ---- begin ----------------------------------------------------
# src/core/topo.c calls libhwloc through dlopen when hwloc.h is found here
# (the header fixes the object layout, a run-time check the ABI); the library
# is never linked, so one build runs with and without it.  `make HWLOC=0`
# leaves it out: the topology then comes from Linux's files alone.
HWLOC ?= $(call have,/usr/include/hwloc.h)
$(BUILD)/obj/src/core/topo.o: CPPFLAGS_EXTRA = -DHRING_HAVE_HWLOC_H=$(HWLOC)
# ---- topology ---- end ------------------------------------------------------

# ---- model tools ---- begin -------------------------------------------------
# hring-tune measures the cost model (src/algos/model.h) on live ranks;
# hring-sim predicts large clusters from it (docs/model.md).  The simulator
# lives in perf/sim/, out of the perf/*.c wildcard, so that it is not linked
# into the *_perf benchmarks as common code.
# hring-choice times the automatic choice against every forced algorithm in
# one process (perf/choice/, out of the wildcard for the same reason).
all: $(BUILD)/bin/hring-tune $(BUILD)/bin/hring-sim $(BUILD)/bin/hring-choice

$(BUILD)/bin/hring-tune: $(BUILD)/obj/src/tools/hring_tune.o $(BUILD)/lib/libhring.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/bin/hring-sim: $(BUILD)/obj/perf/sim/hring_sim.o $(PERF_COMMON_OBJS) $(BUILD)/lib/libhring.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS_ALL)

$(BUILD)/bin/hring-choice: $(BUILD)/obj/perf/choice/hring_choice.o $(PERF_COMMON_OBJS) $(BUILD)/lib/libhring.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS_ALL)
# ---- model tools ---- end ---------------------------------------------------

# ---- pmix ---- begin ---------------------------------------------------------
# Bootstrap through PMIx (src/core/pmix.c, docs/launch.md): compiled in where
# <pmix.h> is found (pkg-config's pmix, then the usual places; Debian keeps it
# under pmix2/), never linked: libpmix is loaded at run time, so programs
# linking libhring.a need no -lpmix.  `make PMIX_INC=` builds without it.
PMIX_H := $(firstword $(wildcard \
            $(addsuffix /pmix.h,$(shell pkg-config --variable=includedir pmix 2>/dev/null)) \
            /usr/include/pmix.h /usr/local/include/pmix.h /usr/lib/*/pmix2/include/pmix.h))
PMIX_INC ?= $(patsubst %/,%,$(dir $(PMIX_H)))
PMIX_LIBDIR ?= $(firstword $(shell pkg-config --variable=libdir pmix 2>/dev/null) \
                 $(patsubst %/,%,$(dir $(wildcard $(PMIX_INC)/../lib/libpmix.so.2))))
ifneq ($(PMIX_INC),)
$(BUILD)/obj/src/core/pmix.o: CPPFLAGS_EXTRA = -DHRING_HAVE_PMIX_H=1 -isystem $(PMIX_INC) \
  $(if $(PMIX_LIBDIR),-DHRING_PMIX_LIBDIR='"$(abspath $(PMIX_LIBDIR))"')
endif
# Several communicators of one job, run by tests/launch/{mpirun,srun}.sh.
all: $(BUILD)/bin/launch_comms
$(BUILD)/bin/launch_comms: $(BUILD)/obj/tests/launch/comms.o $(BUILD)/lib/libhring.a
	@mkdir -p $(dir $@)
	$(CC) $(SAN) -o $@ $^ $(LDLIBS_ALL)
# ---- pmix ---- end -----------------------------------------------------------
