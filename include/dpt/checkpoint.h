/* Checkpoints: everything a run needs to continue bit for bit where it
 * stopped: a whole model file (architecture, parameters, standardization),
 * the engine's state (epochs, steps, the divergence rule's reference loss,
 * the velocity), and the settings a continuation must share (optimizer,
 * schedule and its horizon, seed, engine settings that change the bits,
 * the training data's shape and a fingerprint of it). One versioned
 * little-endian file with a CRC-32, written atomically (dpt/file.h).
 *
 * Layout (version 1): "DPTCKPT\0" | u32 version | u64 model_bytes | a
 * model file (dpt/modelfile.h) | u32 epochs | u32 epochs_total | u64 steps
 * | f64 loss0 | u64 seed | u32 opt kind | f64 lr | f64 momentum | u64 batch
 * | f64 weight_decay | u32 schedule | u64 step_every | f64 step_factor |
 * u64 warmup | f64 clip_norm | u32 shuffle | u32 init | u32 leaves | u32
 * balance | u32 batching_local | u32 reduce | u32 threads | u64 rows |
 * u64 features | u64 data_hash | u32 has_velocity | f32 velocity[n_params]
 * when it has one | u32 crc32 of all bytes before it. */
#ifndef DPT_CHECKPOINT_H
#define DPT_CHECKPOINT_H

#include "dpt/export.h"

#include <stdint.h>

#include "dpt/engine.h"
#include "dpt/io.h"
#include "dpt/model.h"
#include "dpt/run.h"

#ifdef __cplusplus
extern "C" {
#endif

#define DPT_CHECKPOINT_VERSION 1

typedef struct dpt_checkpoint {
    dpt_model model;
    float *params;       /* n_params floats */
    dpt_standardizer st; /* d 0: none */
    /* the engine's state; state.velocity points at `velocity` */
    dpt_engine_state state;
    float *velocity;  /* n_params floats, or NULL: the optimizer keeps none */
    int epochs_total; /* the run's length: the schedule's horizon */
    dpt_optim_spec opt;
    uint64_t seed;
    int shuffle, init, leaves, balance, batching_local, reduce;
    int threads;                        /* recorded; the bits match at the same count (or leaves) */
    uint64_t rows, features, data_hash; /* the training set (dpt_checkpoint_data_hash) */
} dpt_checkpoint;

/* A cheap fingerprint of a training set: its shape and up to 4096 of its
 * rows spread evenly (features and labels, bitwise). A set that holds
 * only part of its rows (per-rank loading) gives the hash of its shape. */
DPT_API uint64_t dpt_checkpoint_data_hash(const dpt_dataset *ds);

/* The checkpoint of a run where it stands (between epochs): pointers into
 * the run's own buffers, valid until it trains again or is destroyed; st
 * the standardization its data had (NULL: none). Nothing to free. */
DPT_API void dpt_checkpoint_of_run(dpt_checkpoint *ck, dpt_run *r, const dpt_run_spec *s,
                                   const dpt_standardizer *st);

/* 0, or DPT_EIO naming the file, or DPT_ENOMEM. */
DPT_API int dpt_checkpoint_save(const char *path, const dpt_checkpoint *ck);

/* Load into ck (free with dpt_checkpoint_free). DPT_EIO for an unreadable
 * file, DPT_EFORMAT ("FILE: problem") for a corrupt, truncated, foreign or
 * other-version one. */
DPT_API int dpt_checkpoint_load(const char *path, dpt_checkpoint *ck);
DPT_API void dpt_checkpoint_free(dpt_checkpoint *ck);

/* Make s continue the checkpoint's run (s->init_params, s->resume point
 * into ck, which must outlive the run), when it is that run: the model m
 * (built for s's data), the optimizer and schedule, the run's length, the
 * seed, the engine settings that change the bits and the training data
 * must be the same. 0, or DPT_EINVAL with one line naming the first thing
 * that differs and both values (s untouched). */
DPT_API int dpt_checkpoint_resume(const dpt_checkpoint *ck, const dpt_model *m, dpt_run_spec *s);

#ifdef __cplusplus
}
#endif
#endif
