/* libFuzzer entry point for one loader, chosen at build time with
 * -DFUZZ_TARGET="csv" (or svmlight, idx, dptb, modelfile, checkpoint). The work is in fuzz_one.h,
 * which tests/data/test_crashes.c replays crashes through. */
#include "fuzz_one.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    dpt_fuzz_one(FUZZ_TARGET, data, size);
    return 0;
}
