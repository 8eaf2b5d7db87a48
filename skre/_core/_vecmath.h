/* glibc's vector exp and log (libmvec), for the loops that
   "#pragma omp simd" vectorises in _slopepass.c and _interpass.c, and CLONES:
   one build of a function per instruction set (AVX-512, AVX2, the
   baseline), chosen when the library loads. Elsewhere plain scalar code. */
#ifndef SKRE_VECMATH_H
#define SKRE_VECMATH_H
#include <math.h>

#if defined(__x86_64__) && defined(__GLIBC__)
#pragma omp declare simd notinbranch
extern double exp(double);
#pragma omp declare simd notinbranch
extern double log(double);
#define CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define CLONES
#endif

#endif
