/* The kernel instruction set: which table of kernels (scalar reference,
 * hand-vectorized AVX2+FMA, or AVX-512 F/BW/DQ/VL over AVX2) every model and
 * optimizer call runs on. The
 * first use picks it: DPT_ISA from the environment when set and valid,
 * else the best this CPU and build support; dpt_isa_select overrides it. */
#ifndef DPT_ISA_H
#define DPT_ISA_H

#include "dpt/export.h"

#ifdef __cplusplus
extern "C" {
#endif

/* Use the kernels named "auto" (the best available), "scalar", "avx2" or
 * "avx512" (which needs the OS to save the ZMM state, too); NULL is "auto". 0, DPT_EINVAL for an
 * unknown name, or DPT_ENOTSUP for an ISA this CPU (or OS) or this build lacks; on failure the
 * table in use stays as it was. Call it outside parallel regions and not while an engine is
 * training: the choice is process-wide. */
DPT_API int dpt_isa_select(const char *name);

/* The ISA in use, "scalar", "avx2" or "avx512" (picking it first if nothing has). */
DPT_API const char *dpt_isa_name(void);

#ifdef __cplusplus
}
#endif
#endif
