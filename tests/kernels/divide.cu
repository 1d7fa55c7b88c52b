// Calls common.cuh's make_divisor and divide on pairs (n[i], d[i]), thread per pair.
// Launch: grid (ceil(count / 256),), block (256,).
#include "common.cuh"

extern "C" __global__ void divide_pairs(const int* __restrict__ n, const int* __restrict__ d, int* __restrict__ q,
                                        int count) {
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < count) q[i] = divide(n[i], make_divisor(d[i]));
}
