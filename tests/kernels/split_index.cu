// Calls common.cuh's split_index on indices 0..n-1 of a (planes, rows, cols) array, with the 32-bit
// branch (fits_int = 1) or the 64-bit one (0). Launch: grid (1,), block (n,).
#include "common.cuh"

extern "C" __global__ void split(int rows, int cols, int fits_int, long long* __restrict__ plane,
                                 int* __restrict__ row, int* __restrict__ col) {
    const int i = threadIdx.x;
    plane[i] = split_index(i, rows, cols, fits_int != 0, row[i], col[i]);
}
