#ifndef CSTREAMLAB_SUPPORT_H
#define CSTREAMLAB_SUPPORT_H

/// Returns 1 when this CPU can run the vector code the library was built with
/// (AVX2 and FMA on x86_64 unless built with STREAMLAB_PORTABLE), else 0.
/// The check also runs automatically before `main`: an unsupported CPU gets a
/// one-line message and exit status 1 instead of an illegal-instruction crash.
int streamlab_cpu_supported(void);

/// Makes glibc serve large blocks (up to 32 MiB) from the heap and keep it
/// untrimmed, so a training loop that allocates and frees multi-megabyte
/// buffers every step reuses warm pages. No effect on other C libraries.
void streamlab_keep_large_allocations_in_heap(void);

#endif
