/* The allocator of src/core (core/alloc.h): cache-line blocks, and large
 * blocks in whole huge pages, asked of the kernel with madvise, that a
 * data set's rows are read from at random, and page-aligned row blocks. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "core/alloc.h"

Test(alloc, blocks_are_cache_line_aligned)
{
    const size_t sizes[] = {0, 1, 63, 64, 65, 4096, DPT_HUGE_MIN - 1};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char *p = dpt_alloc(sizes[i]), *q = dpt_alloc_large(sizes[i]);
        cr_assert(p && q, "%zu bytes", sizes[i]);
        cr_expect_eq((uintptr_t)p % DPT_CACHE_LINE, 0, "dpt_alloc(%zu)", sizes[i]);
        cr_expect_eq((uintptr_t)q % DPT_CACHE_LINE, 0, "dpt_alloc_large(%zu)", sizes[i]);
        memset(p, 1, sizes[i]);
        memset(q, 1, sizes[i]);
        dpt_free(p);
        dpt_free(q);
    }
    cr_expect_null(dpt_alloc(SIZE_MAX - 8), "a size that overflows when rounded");
    cr_expect_null(dpt_alloc_large(SIZE_MAX - 8), "a size that overflows when rounded");
}

/* the row buffers the engine streams: page-aligned at every size,
 * malloc's mmap'd large blocks included (those start 16 bytes in) */
Test(alloc, row_blocks_start_on_a_page)
{
    const size_t sizes[] = {0, 1, 4095, 4096, 4097, (size_t)1 << 20, ((size_t)8 << 20) + 80};
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        char *p = dpt_alloc_pages(sizes[i]);
        cr_assert(p, "%zu bytes", sizes[i]);
        cr_expect_eq((uintptr_t)p % DPT_PAGE, 0, "dpt_alloc_pages(%zu) = %p", sizes[i], (void *)p);
        memset(p, 1, sizes[i]);
        dpt_free(p);
    }
    cr_expect_null(dpt_alloc_pages(SIZE_MAX - 8), "a size that overflows when rounded");
}

/* The VmFlags line of the mapping of /proc/self/smaps that holds p, or ""
 * where there is none. */
static void vm_flags(const void *p, char *out, size_t cap)
{
    out[0] = 0;
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return;
    char line[512];
    int inside = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' '))
            inside = (uintptr_t)p >= lo && (uintptr_t)p < hi;
        else if (inside && !strncmp(line, "VmFlags:", 8)) {
            snprintf(out, cap, "%.*s", (int)(cap - 1), line + 8);
            break;
        }
    }
    fclose(f);
}

Test(alloc, large_blocks_take_whole_huge_pages)
{
    const size_t bytes = DPT_HUGE_MIN + 12345;
    char *p = dpt_alloc_large(bytes);
    cr_assert(p);
    memset(p, 7, bytes);
    cr_expect_eq(p[bytes - 1], 7);
#ifdef MADV_HUGEPAGE
    cr_expect_eq((uintptr_t)p % DPT_HUGE_PAGE, 0, "%p is not on a 2 MiB boundary", (void *)p);
    char flags[512];
    vm_flags(p, flags, sizeof flags);
    if (flags[0]) /* " hg" marks a mapping advised MADV_HUGEPAGE */
        cr_expect(strstr(flags, " hg") != NULL, "the block's mapping lacks hg: %s", flags);
    else {
        dpt_free(p);
        cr_skip_test("no /proc/self/smaps: the advice is not checked");
    }
#endif
    dpt_free(p);
}
