// Start-up CPU check. This file is compiled without the AVX2 flags the Swift
// kernels use, so it can run (and refuse politely) on any x86_64 CPU.
#include "CStreamLabSupport.h"
#include <stdio.h>
#include <stdlib.h>

#include <string.h>

// Whether the CPU has `feature`. Tests pretend to be an older CPU by listing the
// features it has in STREAMLAB_TEST_CPU_FEATURES (comma-separated, may be empty).
static int has_feature(const char *feature) {
    const char *pretend = getenv("STREAMLAB_TEST_CPU_FEATURES");
    if (pretend) {
        size_t n = strlen(feature);
        for (const char *p = pretend; (p = strstr(p, feature)) != NULL; p += n) {
            if ((p == pretend || p[-1] == ',') && (p[n] == '\0' || p[n] == ',')) return 1;
        }
        return 0;
    }
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (strcmp(feature, "avx2") == 0) return __builtin_cpu_supports("avx2");
    if (strcmp(feature, "fma") == 0) return __builtin_cpu_supports("fma");
    if (strcmp(feature, "f16c") == 0) return __builtin_cpu_supports("f16c");
#endif
    return 1;
}

#if defined(__x86_64__) && !defined(STREAMLAB_PORTABLE)
static const char *required[] = {"avx2", "fma", "f16c"};
static const int requiredCount = 3;
#else
static const char *required[] = {""};
static const int requiredCount = 0;
#endif

int streamlab_cpu_supported(void) {
    for (int i = 0; i < requiredCount; i++) {
        if (!has_feature(required[i])) return 0;
    }
    return 1;
}

__attribute__((constructor)) static void streamlab_check_cpu_at_start(void) {
    if (streamlab_cpu_supported()) return;
    char missing[64] = "";
    for (int i = 0; i < requiredCount; i++) {
        if (!has_feature(required[i])) {
            if (missing[0]) strcat(missing, ", ");
            strcat(missing, required[i]);
        }
    }
    fprintf(stderr, "error: this StreamLab build uses AVX2, FMA and F16C instructions and this CPU lacks %s; "
            "rebuild with `STREAMLAB_PORTABLE=1 swift build -c release` for a portable (slower) binary\n", missing);
    exit(1);
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
