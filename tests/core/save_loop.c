/* Test helper: saves a model file to argv[1] over and over, alternating
 * two parameter sets (all 1s, all 2s), until it is killed; the kill test
 * (test_interrupt.c) SIGKILLs it at random points of a save. */
#include <stdio.h>

#include "dpt/error.h"
#include "dpt/modelfile.h"

int main(int argc, char **argv)
{
    if (argc != 2) return 2;
    dpt_model m;
    dpt_model_spec s = {.kind = DPT_MODEL_MLP,
                        .inputs = 64,
                        .n_hidden = 1,
                        .hidden = {256},
                        .act = DPT_ACTIVATION_RELU,
                        .bias = 1};
    if (dpt_model_init(&m, &s)) return 1;
    static float w[2][64 * 256 + 256 + 256 + 1];
    if (m.n_params > sizeof w[0] / sizeof w[0][0]) return 1;
    for (size_t i = 0; i < m.n_params; i++) w[0][i] = 1, w[1][i] = 2;
    for (unsigned k = 0;; k++)
        if (dpt_model_save(argv[1], &m, w[k & 1], NULL)) {
            fprintf(stderr, "save_loop: %s\n", dpt_last_error());
            return 1;
        }
}
