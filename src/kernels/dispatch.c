/* Kernel selection: CPUID (and XGETBV for OS-saved YMM/ZMM state) picks the
 * table once; DPT_ISA or dpt_kernels_select() override it. dpt/isa.h is
 * the public face of the same choice. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "dpt/error.h"
#include "dpt/isa.h"
#include "dpt_config.h"
#include "kernels/kernels.h"

static dpt_kernels table;
static int table_ready;

int dpt_build_has_avx2(void)
{
#if DPT_HAVE_AVX2
    return 1;
#else
    return 0;
#endif
}

int dpt_cpu_has_avx2(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
    /* The OS must save YMM state: OSXSAVE set and XCR0 bits 1 (SSE) and 2 (AVX). */
    unsigned a, b, c, d;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if (!(c & (1u << 27))) return 0;
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 6) == 6;
#else
    return 0;
#endif
}

int dpt_build_has_avx512(void)
{
#if DPT_HAVE_AVX512
    return 1;
#else
    return 0;
#endif
}

int dpt_cpu_has_avx512(void)
{
#if defined(__x86_64__) || defined(__i386__)
    if (!dpt_cpu_has_avx2()) return 0; /* also checks OSXSAVE */
    if (!__builtin_cpu_supports("avx512f") || !__builtin_cpu_supports("avx512bw") ||
        !__builtin_cpu_supports("avx512dq") || !__builtin_cpu_supports("avx512vl"))
        return 0;
    /* A CPU may have AVX-512 while the OS (or a hypervisor) does not save the
     * opmask and ZMM registers on a context switch: XCR0 bits 5 (k0-k7),
     * 6 (ZMM0-15 upper halves) and 7 (ZMM16-31) besides SSE and AVX. */
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return (lo & 0xe6) == 0xe6;
#else
    return 0;
#endif
}

#if !DPT_HAVE_AVX512
void dpt_kernels_fill_avx512(dpt_kernels *k)
{
    (void)k;
}
#endif

#if !DPT_HAVE_AVX2
/* The AVX2 files are not in this build: nothing to override with. */
void dpt_kernels_fill_avx2(dpt_kernels *k)
{
    (void)k;
}
#endif

static int fill(const char *name)
{
    dpt_kernels k;
    dpt_kernels_fill_scalar(&k);
    int want_avx2 = 0, want_avx512 = 0;
    if (!strcmp(name, "auto")) {
        want_avx2 = dpt_build_has_avx2() && dpt_cpu_has_avx2();
        want_avx512 = want_avx2 && dpt_build_has_avx512() && dpt_cpu_has_avx512();
    } else if (!strcmp(name, "scalar")) {
    } else if (!strcmp(name, "avx2")) {
        if (!dpt_build_has_avx2())
            return dpt_set_error(DPT_ENOTSUP, "ISA avx2: this build has no AVX2 kernels "
                                              "(configured with -Davx2=disabled)");
        if (!dpt_cpu_has_avx2())
            return dpt_set_error(DPT_ENOTSUP, "ISA avx2: this CPU (or OS) does not support "
                                              "AVX2+FMA; use scalar or auto");
        want_avx2 = 1;
    } else if (!strcmp(name, "avx512")) {
        /* the AVX-512 table falls back to AVX2 entries: it needs both */
        if (!dpt_build_has_avx512() || !dpt_build_has_avx2())
            return dpt_set_error(DPT_ENOTSUP, "ISA avx512: this build has no AVX-512 kernels "
                                              "(configured without avx512 or avx2)");
        if (!dpt_cpu_has_avx512())
            return dpt_set_error(DPT_ENOTSUP,
                                 "ISA avx512: this CPU (or OS) does not support AVX-512 "
                                 "F/BW/DQ/VL with saved ZMM state; use avx2, scalar or auto");
        want_avx2 = want_avx512 = 1;
    } else {
        return dpt_set_error(DPT_EINVAL, "unknown ISA '%s' (allowed: auto, scalar, avx2, avx512)",
                             name);
    }
    if (want_avx2) dpt_kernels_fill_avx2(&k);
    if (want_avx512) dpt_kernels_fill_avx512(&k);
    table = k;
    __atomic_store_n(&table_ready, 1, __ATOMIC_RELEASE);
    return 0;
}

int dpt_kernels_select(const char *name)
{
    return fill(name ? name : "auto");
}

static pthread_once_t env_once = PTHREAD_ONCE_INIT;

static void fill_from_env(void)
{
    if (__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) return; /* selected already */
    const char *env = getenv("DPT_ISA");
    /* a bad DPT_ISA is reported by the CLI via dpt_kernels_select; here it
     * falls back to auto rather than leaving no table */
    if (!env || !*env || fill(env) != 0) fill("auto");
}

const dpt_kernels *dpt_kernels_get(void)
{
    /* once, even if the first call comes from several threads at a time */
    if (!__atomic_load_n(&table_ready, __ATOMIC_ACQUIRE)) pthread_once(&env_once, fill_from_env);
    return &table;
}

int dpt_isa_select(const char *name)
{
    return dpt_kernels_select(name);
}

const char *dpt_isa_name(void)
{
    return dpt_kernels_get()->isa;
}
