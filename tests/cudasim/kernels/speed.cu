// Kernels that measure the simulator itself (tests/cudasim/speed.py).

// One store per thread.
extern "C" __global__ void touch(float* y, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) y[i] = 1.0f;
}

// rounds barriers per thread: 2 * rounds context switches per thread.
extern "C" __global__ void barriers(float* y, int rounds) {
    float v = 0.0f;
    for (int r = 0; r < rounds; ++r) {
        v += 1.0f;
        __syncthreads();
    }
    y[blockIdx.x * blockDim.x + threadIdx.x] = v;
}
