/* cudasim.h: CUDA C on the CPU.
 *
 * g++ force-includes this header (-include cudasim.h) before a .cu file, so that plain CUDA C
 * kernels compile as C++17 and run on fibers driven by runtime.cpp:
 *
 *  - the CUDA qualifiers (__global__, __device__, ...) become nothing or plain C++ attributes;
 *  - threadIdx / blockIdx / blockDim / gridDim read a global that the block scheduler rewrites
 *    before it resumes a thread, and every call that can switch threads (__syncthreads, warp
 *    primitives) is an opaque call into the runtime, so the compiler reloads them after it;
 *  - __shared__ variables become static storage in the linker section "cudasim_shared", which the
 *    runtime fills with 0xFF bytes (NaN as float) at every block start; `extern __shared__ T s[];`
 *    (dynamic shared memory) is rewritten by the Python loader into CUDASIM_EXTERN_SHARED(T, s);
 *  - atomics are plain read-modify-write: fibers switch only inside the runtime calls;
 *  - assert() keeps glibc's macro; the runtime defines __assert_fail, which reports the failing
 *    kernel, block and thread and aborts the launch.
 *
 * Not provided: __CUDA_ARCH__ (kernels take their portable path), textures, cooperative groups,
 * half precision, C++-linkage or template kernels as launch targets. __CUDASIM__ is defined.
 */
#ifndef CUDASIM_H
#define CUDASIM_H

#define __CUDASIM__ 1

#include <assert.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <type_traits>
#include <utility>

#define CUDASIM_HIDDEN __attribute__((visibility("hidden")))
#define CUDASIM_EXPORT extern "C" __attribute__((visibility("default")))

/* ---- qualifiers ------------------------------------------------------------------------- */
#define __global__
#define __device__
#define __host__
#define __constant__
#define __managed__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __shared__ static __attribute__((section("cudasim_shared")))

/* Dynamic shared memory: all `extern __shared__` arrays alias one buffer, as on the GPU. */
extern "C" CUDASIM_HIDDEN char cudasim_dynamic_shared[];
#define CUDASIM_EXTERN_SHARED(type, name) type* const name = reinterpret_cast<type*>(cudasim_dynamic_shared)

/* ---- vector types ----------------------------------------------------------------------- */
#define CUDASIM_ALIGN2(T) __attribute__((aligned(2 * sizeof(T) < 16 ? 2 * sizeof(T) : 16)))
#define CUDASIM_ALIGN4(T) __attribute__((aligned(4 * sizeof(T) < 16 ? 4 * sizeof(T) : 16)))
#define CUDASIM_VECTOR_TYPES(T, N)                                                                   \
    struct N##1 { T x; };                                                                            \
    struct CUDASIM_ALIGN2(T) N##2 { T x, y; };                                                       \
    struct N##3 { T x, y, z; };                                                                      \
    struct CUDASIM_ALIGN4(T) N##4 { T x, y, z, w; };                                                 \
    static inline N##1 make_##N##1(T x) { return N##1{x}; }                                          \
    static inline N##2 make_##N##2(T x, T y) { return N##2{x, y}; }                                  \
    static inline N##3 make_##N##3(T x, T y, T z) { return N##3{x, y, z}; }                          \
    static inline N##4 make_##N##4(T x, T y, T z, T w) { return N##4{x, y, z, w}; }
CUDASIM_VECTOR_TYPES(signed char, char)
CUDASIM_VECTOR_TYPES(unsigned char, uchar)
CUDASIM_VECTOR_TYPES(short, short)
CUDASIM_VECTOR_TYPES(unsigned short, ushort)
CUDASIM_VECTOR_TYPES(int, int)
CUDASIM_VECTOR_TYPES(unsigned int, uint)
CUDASIM_VECTOR_TYPES(long, long)
CUDASIM_VECTOR_TYPES(unsigned long, ulong)
CUDASIM_VECTOR_TYPES(long long, longlong)
CUDASIM_VECTOR_TYPES(unsigned long long, ulonglong)
CUDASIM_VECTOR_TYPES(float, float)
CUDASIM_VECTOR_TYPES(double, double)
#undef CUDASIM_VECTOR_TYPES

struct dim3 {
    unsigned int x, y, z;
    constexpr dim3(unsigned int vx = 1, unsigned int vy = 1, unsigned int vz = 1) : x(vx), y(vy), z(vz) {}
    constexpr dim3(uint3 v) : x(v.x), y(v.y), z(v.z) {}
    constexpr operator uint3() const { return uint3{x, y, z}; }
};

/* ---- built-in variables ------------------------------------------------------------------ */
struct cudasim_builtins {
    uint3 thread_idx;
    uint3 block_idx;
    dim3 block_dim;
    dim3 grid_dim;
};
extern "C" CUDASIM_HIDDEN cudasim_builtins cudasim_bi;
/* Read-only views of a mutable global: the compiler must reload them after any opaque call. */
#define threadIdx (static_cast<const uint3&>(cudasim_bi.thread_idx))
#define blockIdx (static_cast<const uint3&>(cudasim_bi.block_idx))
#define blockDim (static_cast<const dim3&>(cudasim_bi.block_dim))
#define gridDim (static_cast<const dim3&>(cudasim_bi.grid_dim))
static constexpr int warpSize = 32;

/* ---- synchronisation (runtime.cpp) -------------------------------------------------------- */
enum cudasim_warp_kind {
    CUDASIM_SYNCWARP, CUDASIM_SHFL, CUDASIM_SHFL_UP, CUDASIM_SHFL_DOWN, CUDASIM_SHFL_XOR,
    CUDASIM_BALLOT, CUDASIM_ANY, CUDASIM_ALL
};
extern "C" {
CUDASIM_HIDDEN void cudasim_syncthreads(const char* file, int line);
/* op: 1 count, 2 and, 3 or (0 is the plain barrier). Returns the block-wide result. */
CUDASIM_HIDDEN int cudasim_syncthreads_op(int op, int predicate, const char* file, int line);
CUDASIM_HIDDEN unsigned long long cudasim_warp_op(int kind, unsigned int mask, unsigned long long value,
                                                  int arg, int width, int size, const char* file, int line);
CUDASIM_HIDDEN unsigned int cudasim_activemask(void);
CUDASIM_HIDDEN void cudasim_trap(const char* file, int line) __attribute__((noreturn));
}
#define __syncthreads() cudasim_syncthreads(__FILE__, __LINE__)
#define __syncthreads_count(p) cudasim_syncthreads_op(1, (p), __FILE__, __LINE__)
#define __syncthreads_and(p) cudasim_syncthreads_op(2, (p), __FILE__, __LINE__)
#define __syncthreads_or(p) cudasim_syncthreads_op(3, (p), __FILE__, __LINE__)
#define __trap() cudasim_trap(__FILE__, __LINE__)
#define __activemask() cudasim_activemask()
static inline void __threadfence_block(void) { __asm__ __volatile__("" ::: "memory"); }
static inline void __threadfence(void) { __asm__ __volatile__("" ::: "memory"); }
static inline void __threadfence_system(void) { __asm__ __volatile__("" ::: "memory"); }
static inline void __nanosleep(unsigned int) {}

namespace cudasim {
/* A warp primitive bound to its call site: `__shfl_down_sync(m, v, d)` expands to
 * `cudasim::WarpSite{__FILE__, __LINE__}.shfl_down(m, v, d)`, so the optional width argument
 * keeps its CUDA default and errors name the line. Values travel as up to 8 raw bytes. */
struct WarpSite {
    const char* file;
    int line;
    template <class T> T exchange(int kind, unsigned int mask, T value, int arg, int width) const {
        static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= 8,
                      "warp shuffles move values of at most 8 bytes");
        unsigned long long bits = 0;
        memcpy(&bits, &value, sizeof(T));
        bits = cudasim_warp_op(kind, mask, bits, arg, width, (int)sizeof(T), file, line);
        memcpy(&value, &bits, sizeof(T));
        return value;
    }
    template <class T> T shfl(unsigned int m, T v, int src, int w = 32) const {
        return exchange(CUDASIM_SHFL, m, v, src, w);
    }
    template <class T> T shfl_up(unsigned int m, T v, unsigned int delta, int w = 32) const {
        return exchange(CUDASIM_SHFL_UP, m, v, (int)delta, w);
    }
    template <class T> T shfl_down(unsigned int m, T v, unsigned int delta, int w = 32) const {
        return exchange(CUDASIM_SHFL_DOWN, m, v, (int)delta, w);
    }
    template <class T> T shfl_xor(unsigned int m, T v, int lane_mask, int w = 32) const {
        return exchange(CUDASIM_SHFL_XOR, m, v, lane_mask, w);
    }
    unsigned int ballot(unsigned int m, int p) const { return (unsigned int)vote(CUDASIM_BALLOT, m, p); }
    int any(unsigned int m, int p) const { return (int)vote(CUDASIM_ANY, m, p); }
    int all(unsigned int m, int p) const { return (int)vote(CUDASIM_ALL, m, p); }
    unsigned long long vote(int kind, unsigned int m, int p) const {
        return cudasim_warp_op(kind, m, p != 0, 0, 32, 4, file, line);
    }
    void syncwarp(unsigned int m = 0xffffffffu) const { cudasim_warp_op(CUDASIM_SYNCWARP, m, 0, 0, 32, 0, file, line); }
};
}  // namespace cudasim
#define CUDASIM_WARP_SITE (::cudasim::WarpSite{__FILE__, __LINE__})
#define __shfl_sync CUDASIM_WARP_SITE.shfl
#define __shfl_up_sync CUDASIM_WARP_SITE.shfl_up
#define __shfl_down_sync CUDASIM_WARP_SITE.shfl_down
#define __shfl_xor_sync CUDASIM_WARP_SITE.shfl_xor
#define __ballot_sync CUDASIM_WARP_SITE.ballot
#define __any_sync CUDASIM_WARP_SITE.any
#define __all_sync CUDASIM_WARP_SITE.all
#define __syncwarp CUDASIM_WARP_SITE.syncwarp

/* ---- atomics: fibers never switch inside these, so a plain read-modify-write is atomic ---- */
#define CUDASIM_ATOMIC(name, T, expr) \
    static inline T name(T* address, T val) { T old = *address; *address = (expr); return old; }
#define CUDASIM_ATOMIC_INTEGER(T)                                    \
    CUDASIM_ATOMIC(atomicAdd, T, old + val)                          \
    CUDASIM_ATOMIC(atomicSub, T, old - val)                          \
    CUDASIM_ATOMIC(atomicExch, T, val)                               \
    CUDASIM_ATOMIC(atomicMin, T, val < old ? val : old)              \
    CUDASIM_ATOMIC(atomicMax, T, val > old ? val : old)              \
    CUDASIM_ATOMIC(atomicAnd, T, old & val)                          \
    CUDASIM_ATOMIC(atomicOr, T, old | val)                           \
    CUDASIM_ATOMIC(atomicXor, T, old ^ val)                          \
    static inline T atomicCAS(T* address, T compare, T val) {        \
        T old = *address; *address = old == compare ? val : old; return old; }
CUDASIM_ATOMIC_INTEGER(int)
CUDASIM_ATOMIC_INTEGER(unsigned int)
CUDASIM_ATOMIC_INTEGER(unsigned long long)
CUDASIM_ATOMIC(atomicMin, long long, val < old ? val : old)
CUDASIM_ATOMIC(atomicMax, long long, val > old ? val : old)
CUDASIM_ATOMIC(atomicAdd, float, old + val)
CUDASIM_ATOMIC(atomicAdd, double, old + val)
CUDASIM_ATOMIC(atomicExch, float, val)
CUDASIM_ATOMIC(atomicInc, unsigned int, old >= val ? 0u : old + 1u)
CUDASIM_ATOMIC(atomicDec, unsigned int, (old == 0u || old > val) ? val : old - 1u)
#undef CUDASIM_ATOMIC_INTEGER
#undef CUDASIM_ATOMIC

/* ---- min / max: the overload set of CUDA's math_functions.hpp ----------------------------- */
#define CUDASIM_MINMAX(R, A, B)                                                  \
    static inline R min(A a, B b) { return (R)a < (R)b ? (R)a : (R)b; }          \
    static inline R max(A a, B b) { return (R)a > (R)b ? (R)a : (R)b; }
CUDASIM_MINMAX(int, int, int)
CUDASIM_MINMAX(unsigned int, unsigned int, unsigned int)
CUDASIM_MINMAX(unsigned int, int, unsigned int)
CUDASIM_MINMAX(unsigned int, unsigned int, int)
CUDASIM_MINMAX(long, long, long)
CUDASIM_MINMAX(unsigned long, unsigned long, unsigned long)
CUDASIM_MINMAX(unsigned long, long, unsigned long)
CUDASIM_MINMAX(unsigned long, unsigned long, long)
CUDASIM_MINMAX(long long, long long, long long)
CUDASIM_MINMAX(unsigned long long, unsigned long long, unsigned long long)
CUDASIM_MINMAX(unsigned long long, long long, unsigned long long)
CUDASIM_MINMAX(unsigned long long, unsigned long long, long long)
#undef CUDASIM_MINMAX
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
static inline double min(float a, double b) { return fmin(a, b); }
static inline double max(float a, double b) { return fmax(a, b); }
static inline double min(double a, float b) { return fmin(a, b); }
static inline double max(double a, float b) { return fmax(a, b); }

/* ---- math and bit intrinsics -------------------------------------------------------------- */
/* glibc declares (without exporting) __expf, __sinf...: the CUDA names are macros instead. */
static inline float cudasim_expf(float x) { return expf(x); }
static inline float cudasim_exp10f(float x) { return powf(10.0f, x); }
static inline float cudasim_logf(float x) { return logf(x); }
static inline float cudasim_log2f(float x) { return log2f(x); }
static inline float cudasim_log10f(float x) { return log10f(x); }
static inline float cudasim_powf(float x, float y) { return powf(x, y); }
static inline float cudasim_sinf(float x) { return sinf(x); }
static inline float cudasim_cosf(float x) { return cosf(x); }
static inline float cudasim_tanf(float x) { return tanf(x); }
static inline void cudasim_sincosf(float x, float* s, float* c) { *s = sinf(x); *c = cosf(x); }
#define __expf cudasim_expf
#define __exp10f cudasim_exp10f
#define __logf cudasim_logf
#define __log2f cudasim_log2f
#define __log10f cudasim_log10f
#define __powf cudasim_powf
#define __sinf cudasim_sinf
#define __cosf cudasim_cosf
#define __tanf cudasim_tanf
#define __sincosf cudasim_sincosf
static inline float __fdividef(float x, float y) { return x / y; }
static inline float fdividef(float x, float y) { return x / y; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __fsqrt_rn(float x) { return sqrtf(x); }
static inline float __frsqrt_rn(float x) { return 1.0f / sqrtf(x); }
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
static inline float rcbrtf(float x) { return 1.0f / cbrtf(x); }
static inline float __saturatef(float x) { return x > 0.0f ? (x < 1.0f ? x : 1.0f) : 0.0f; }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fsub_rn(float a, float b) { return a - b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
static inline float __fdiv_rn(float a, float b) { return a / b; }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline double __dadd_rn(double a, double b) { return a + b; }
static inline double __dmul_rn(double a, double b) { return a * b; }
static inline double __fma_rn(double a, double b, double c) { return fma(a, b, c); }
static inline int __float2int_rn(float x) { return (int)nearbyintf(x); }
static inline int __float2int_rz(float x) { return (int)x; }
static inline int __float2int_rd(float x) { return (int)floorf(x); }
static inline int __float2int_ru(float x) { return (int)ceilf(x); }
static inline unsigned int __float2uint_rn(float x) { return (unsigned int)nearbyintf(x); }
static inline unsigned int __float2uint_rz(float x) { return (unsigned int)x; }
static inline long long __float2ll_rn(float x) { return (long long)nearbyintf(x); }
static inline long long __float2ll_rz(float x) { return (long long)x; }
static inline int __double2int_rn(double x) { return (int)nearbyint(x); }
static inline int __double2int_rz(double x) { return (int)x; }
static inline float __double2float_rn(double x) { return (float)x; }
static inline float __int2float_rn(int x) { return (float)x; }
static inline float __uint2float_rn(unsigned int x) { return (float)x; }
static inline float __ll2float_rn(long long x) { return (float)x; }
static inline double __int2double_rn(int x) { return (double)x; }
template <class To, class From> static inline To cudasim_bit_cast(From from) {
    static_assert(sizeof(To) == sizeof(From), "bit cast between types of one size");
    To to;
    memcpy(&to, &from, sizeof(To));
    return to;
}
static inline int __float_as_int(float x) { return cudasim_bit_cast<int>(x); }
static inline unsigned int __float_as_uint(float x) { return cudasim_bit_cast<unsigned int>(x); }
static inline float __int_as_float(int x) { return cudasim_bit_cast<float>(x); }
static inline float __uint_as_float(unsigned int x) { return cudasim_bit_cast<float>(x); }
static inline long long __double_as_longlong(double x) { return cudasim_bit_cast<long long>(x); }
static inline double __longlong_as_double(long long x) { return cudasim_bit_cast<double>(x); }
static inline int __popc(unsigned int x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x == 0 ? 32 : __builtin_clz((unsigned int)x); }
static inline int __clzll(long long x) { return x == 0 ? 64 : __builtin_clzll((unsigned long long)x); }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline unsigned int __brev(unsigned int x) {
    unsigned int r = 0;
    for (int i = 0; i < 32; ++i) r |= ((x >> i) & 1u) << (31 - i);
    return r;
}
static inline int __mul24(int a, int b) { return a * b; }
static inline unsigned int __umul24(unsigned int a, unsigned int b) { return a * b; }
static inline int __mulhi(int a, int b) { return (int)(((long long)a * b) >> 32); }
static inline unsigned int __umulhi(unsigned int a, unsigned int b) {
    return (unsigned int)(((unsigned long long)a * b) >> 32);
}
static inline long long __mul64hi(long long a, long long b) { return (long long)(((__int128)a * b) >> 64); }
static inline unsigned long long __umul64hi(unsigned long long a, unsigned long long b) {
    return (unsigned long long)(((unsigned __int128)a * b) >> 64);
}
template <class T> static inline T __ldg(const T* p) { return *p; }
static inline long long clock64(void) {
#if defined(__x86_64__)
    return (long long)__builtin_ia32_rdtsc();
#else
    return 0;
#endif
}

/* ---- launch table glue used by the generated wrapper --------------------------------------- */
extern "C" {
typedef struct cudasim_kernel_entry {
    const char* name;
    void (*run)(const unsigned char* args); /* calls the kernel with its unpacked arguments */
    const int* params;                      /* parameter type codes (see cudasim::type_code) */
    int nparams;
} cudasim_kernel_entry;
}

namespace cudasim {
/* Type code of a kernel parameter: a base code, +0x100 for a pointer, +0x200 for a pointer to
 * const. Bases: 1 bool, 2/3 int8/uint8, 4/5 int16/uint16, 6/7 int32/uint32, 8/9 int64/uint64,
 * 10 float32, 11 float64, 12 void, 0 anything else. The Python side maps them to NumPy dtypes. */
template <class T> constexpr int base_code() {
    if constexpr (std::is_same<T, bool>::value) return 1;
    else if constexpr (std::is_same<T, float>::value) return 10;
    else if constexpr (std::is_same<T, double>::value) return 11;
    else if constexpr (std::is_void<T>::value) return 12;
    else if constexpr (std::is_integral<T>::value)
        return (sizeof(T) == 1 ? 2 : sizeof(T) == 2 ? 4 : sizeof(T) == 4 ? 6 : sizeof(T) == 8 ? 8 : -100)
               + (std::is_unsigned<T>::value ? 1 : 0);
    else return 0;
}
template <class T> constexpr int type_code() {
    if constexpr (std::is_pointer<T>::value) {
        using Pointee = typename std::remove_pointer<T>::type;
        return base_code<typename std::remove_cv<Pointee>::type>() + (std::is_const<Pointee>::value ? 0x300 : 0x100);
    } else {
        return base_code<typename std::remove_cv<T>::type>();
    }
}
/* Arguments arrive packed in 8-byte slots, one per parameter, in declaration order. */
template <class T> static inline T arg_at(const unsigned char* slots, size_t i) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value,
                  "cudasim passes kernel arguments of at most 8 bytes (pointers and scalars)");
    T value;
    memcpy(&value, slots + 8 * i, sizeof(T));
    return value;
}
template <class... A, size_t... I>
static inline void call_with(void (*kernel)(A...), const unsigned char* slots, std::index_sequence<I...>) {
    kernel(arg_at<typename std::remove_cv<A>::type>(slots, I)...);
}
template <class... A> static inline void call(void (*kernel)(A...), const unsigned char* slots) {
    call_with(kernel, slots, std::index_sequence_for<A...>{});
}
template <class... A> static inline const int* param_codes(void (*)(A...)) {
    static const int codes[] = {type_code<A>()..., 0};
    return codes;
}
template <class... A> constexpr int param_count(void (*)(A...)) { return (int)sizeof...(A); }
}  // namespace cudasim

#endif /* CUDASIM_H */
