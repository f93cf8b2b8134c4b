// Allocator tuning for the training loop (Sources/StreamLab/Training).
#include "CStreamLabSupport.h"
#if defined(__GLIBC__)
#include <malloc.h>
#endif

void streamlab_keep_large_allocations_in_heap(void) {
#if defined(__GLIBC__)
    // Serve blocks up to 32 MiB (the largest allowed threshold) from the heap and never trim
    // it below 1 GiB, so repeatedly packed matrices reuse warm pages instead of fresh mmap
    // pages the kernel must zero.
    mallopt(M_MMAP_THRESHOLD, 32 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}
