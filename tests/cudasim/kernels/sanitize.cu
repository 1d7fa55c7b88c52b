// Kernels for the sanitizer builds: one clean, one for each kind of bug ASan or UBSan reports.
// Launch: grid (1,), block (64,), n = 64. Valid CUDA (nvcc -arch=sm_80).
#include <assert.h>
#define BLOCK 64

// Clean: stage through shared memory, then write y[i] = 2 * x[i].
extern "C" __global__ void double_it(const float* __restrict__ x, float* __restrict__ y, int n) {
    __shared__ float tile[BLOCK];
    int i = threadIdx.x;
    tile[i] = i < n ? x[i] : 0.0f;
    __syncthreads();
    if (i < n) y[i] = 2.0f * tile[i];
}

// Bug: writes past the end of a static __shared__ array when extra > 0 (through a pointer, so
// that AddressSanitizer, not UBSan's bounds check, reports it).
extern "C" __global__ void shared_overflow(float* y, int extra) {
    __shared__ float tile[BLOCK];
    float* slot = tile + threadIdx.x;
    slot[extra] = 1.0f;
    __syncthreads();
    y[threadIdx.x] = tile[threadIdx.x];
}

// Bug: writes y[n + extra] (past the end of the caller's array) when extra >= 0.
extern "C" __global__ void global_overflow(float* y, int n, int extra) {
    if (threadIdx.x == 0) y[n + extra] = 1.0f;
}

// Bug: signed integer overflow (UBSan) when big is INT_MAX.
extern "C" __global__ void signed_overflow(int* y, int big) {
    y[threadIdx.x] = big + (int)threadIdx.x;
}

// Bug: writes past the end of dynamic shared memory when extra > 0 (launch with 64 floats).
extern "C" __global__ void dynamic_shared_overflow(float* y, int extra) {
    extern __shared__ float tile[];
    float* slot = tile + threadIdx.x;
    slot[extra] = 1.0f;
    __syncthreads();
    y[threadIdx.x] = tile[threadIdx.x];
}

// Bug: writes past the end of a thread's local array (on its fiber stack) when extra > 0.
extern "C" __global__ void local_overflow(float* y, int extra) {
    float scratch[8];
    float* slot = scratch + (threadIdx.x % 8);
    for (int k = 0; k < 8; ++k) scratch[k] = (float)k;
    slot[extra] = 1.0f;
    y[threadIdx.x] = scratch[threadIdx.x % 8];
}

// A device assert fails in thread 3 when flag is set; the launch after it must run clean.
extern "C" __global__ void checked(float* y, int flag) {
    assert(!(flag && threadIdx.x == 3));
    __syncthreads();
    y[threadIdx.x] = 1.0f;
}
