/* dpt: data-parallel training on many-core CPUs. The umbrella header; the
 * focused headers follow the data path: load -> shard -> kernels -> reduce
 * -> update, then measure. */
#ifndef DPT_DPT_H
#define DPT_DPT_H

#include "dpt/error.h"
#include "dpt/file.h"       /* atomic file output */
#include "dpt/data.h"       /* datasets, synthetic generators */
#include "dpt/io.h"         /* loaders, writers, standardization */
#include "dpt/topo.h"       /* topology and thread placement */
#include "dpt/isa.h"        /* the kernels in use: scalar or AVX2 */
#include "dpt/model.h"      /* networks and their gradients */
#include "dpt/optim.h"      /* update rules */
#include "dpt/comm.h"       /* hooks for other ranks */
#include "dpt/mpi.h"        /* the MPI implementation of those hooks */
#include "dpt/engine.h"     /* the data-parallel training loop */
#include "dpt/cost.h"       /* what a step moves: counters and the cost function */
#include "dpt/predict.h"    /* the speedup curve on machines we cannot reach */
#include "dpt/modelfile.h"  /* saved models */
#include "dpt/checkpoint.h" /* checkpoints: exact resume */
#include "dpt/limits.h"     /* machine limits: read bandwidth, FMA peak */
#include "dpt/stats.h"      /* statistics */
#include "dpt/report.h"     /* bench reports (dpt-bench/1) */
#include "dpt/tune.h"       /* the tuning race */
#include "dpt/compare.h"    /* the regression gate between two bench reports */

#endif
