// libFuzzer's entry for one target, chosen at compile time (-DFUZZ_TARGET="pickle").
#include "targets.h"
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {
    static const fuzz_target *t;
    if (!t && !(t = fuzz_find(FUZZ_TARGET))) { fprintf(stderr, "no fuzz target %s\n", FUZZ_TARGET); abort(); }
    t->run(data, n);
    return 0;
}
