#ifndef CSTREAMLAB_SUPPORT_H
#define CSTREAMLAB_SUPPORT_H

/// Returns 1 when this CPU can run the vector code the library was built with
/// (AVX2, FMA and F16C on x86_64 unless built with STREAMLAB_PORTABLE=1), else 0.
/// The check also runs automatically before `main`: an unsupported CPU gets a
/// one-line message and exit status 1 instead of an illegal-instruction crash.
int streamlab_cpu_supported(void);



/// Keeps large freed blocks in the heap for reuse instead of returning them to
/// the kernel, so repeated forward passes do not pay page faults and page
/// zeroing for every big scratch buffer. Returns 1 on success.
int streamlab_tune_allocator(void);
#endif
