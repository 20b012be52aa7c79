// The fuzz targets: one entry point per parser, each taking arbitrary bytes. libFuzzer drives
// them through fuzz/fuzz_main.c (make fuzz); tests/test_fuzz_regressions.c replays the saved
// reproducers of fuzz/regressions/<target>/ through the same functions in the normal build, so a
// fixed finding stays fixed. Each returns the parser's status (OODSEG_OK or an error code) and
// must never crash, leak, hang or allocate far beyond its input.
#ifndef OODSEG_FUZZ_TARGETS_H
#define OODSEG_FUZZ_TARGETS_H

#include <stddef.h>
#include <stdint.h>

typedef int (*fuzz_fn)(const uint8_t *data, size_t n);

typedef struct fuzz_target {
    const char *name;   // the folder name under fuzz/regressions/ and the binary fuzz_<name>
    fuzz_fn run;
} fuzz_target;

extern const fuzz_target fuzz_targets[];
extern const int fuzz_n_targets;

// The target called `name`, or NULL.
const fuzz_target *fuzz_find(const char *name);

#endif
