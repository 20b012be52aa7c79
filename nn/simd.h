// Function multi-versioning that a ThreadSanitizer build can load. gcc's target_clones makes an
// ifunc whose resolver runs during relocation, before TSan's runtime is initialised, and a TSan
// build crashes at load; under -fsanitize=thread the clones are dropped and the plain (default)
// version is the only one, which changes speed, not results (the clones are the same C code).
#ifndef OODSEG_NN_SIMD_H
#define OODSEG_NN_SIMD_H

#if defined(__SANITIZE_THREAD__)
#define NN_NO_CLONES 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define NN_NO_CLONES 1
#endif
#endif

// An AVX-512 clone and the default, picked at load by the CPU (nothing under ThreadSanitizer).
#ifdef NN_NO_CLONES
#define NN_TARGET_CLONES
#else
#define NN_TARGET_CLONES __attribute__((target_clones("avx512f", "default")))
#endif

// A loop gcc must vectorise (omp simd) whose integer or float-to-int arithmetic carries
// sanitizer checks in clang's fuzz build (Makefile, fuzz), where the vectoriser then gives up and
// -Werror makes its warning an error: there the pragma is left out (the code is the same).
#if defined(__clang__)
#define NN_SIMD_INT
#else
#define NN_SIMD_INT _Pragma("omp simd")
#endif

#endif
