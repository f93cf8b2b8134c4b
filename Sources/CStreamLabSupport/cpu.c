// Start-up CPU check. This file is compiled without the AVX2 flags the Swift
// kernels use, so it can run (and refuse politely) on any x86_64 CPU.
#include "CStreamLabSupport.h"
#include <stdio.h>
#include <stdlib.h>

int streamlab_cpu_supported(void) {
#if defined(__x86_64__) && !defined(STREAMLAB_PORTABLE)
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    return 1;
#endif
}

__attribute__((constructor)) static void streamlab_check_cpu_at_start(void) {
    if (!streamlab_cpu_supported()) {
        fputs("error: this StreamLab build uses AVX2 and FMA instructions, which this CPU lacks; "
              "rebuild with `STREAMLAB_PORTABLE=1 swift build -c release` for a portable (slower) binary\n",
              stderr);
        exit(1);
    }
}

#if defined(__GLIBC__)
#include <malloc.h>
#endif

int streamlab_tune_allocator(void) {
#if defined(__GLIBC__)
    return mallopt(M_MMAP_THRESHOLD, 1 << 30) && mallopt(M_TRIM_THRESHOLD, 1 << 30);
#else
    return 1;
#endif
}
