// Block sum reductions in shared memory: out[blockIdx.x] = sum of the block's slice of x.
// Launch: block (BLOCK,) with BLOCK = 128, grid (ceil(n / BLOCK),). Valid CUDA (nvcc -arch=sm_80).
#define BLOCK 128

// The correct version: a barrier after the loads and after every halving step.
extern "C" __global__ void block_sum(const float* __restrict__ x, float* __restrict__ out, int n) {
    __shared__ float partial[BLOCK];
    int tid = threadIdx.x;
    int i = blockIdx.x * BLOCK + tid;
    partial[tid] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int stride = BLOCK / 2; stride > 0; stride >>= 1) {
        if (tid < stride) partial[tid] += partial[tid + stride];
        __syncthreads();
    }
    if (tid == 0) out[blockIdx.x] = partial[0];
}

// Bug: no barrier between the loads and the first halving step.
extern "C" __global__ void block_sum_no_load_barrier(const float* __restrict__ x, float* __restrict__ out, int n) {
    __shared__ float partial[BLOCK];
    int tid = threadIdx.x;
    int i = blockIdx.x * BLOCK + tid;
    partial[tid] = i < n ? x[i] : 0.0f;
    for (int stride = BLOCK / 2; stride > 0; stride >>= 1) {
        if (tid < stride) partial[tid] += partial[tid + stride];
        __syncthreads();
    }
    if (tid == 0) out[blockIdx.x] = partial[0];
}

// Bug: no barrier inside the halving loop.
extern "C" __global__ void block_sum_no_loop_barrier(const float* __restrict__ x, float* __restrict__ out, int n) {
    __shared__ float partial[BLOCK];
    int tid = threadIdx.x;
    int i = blockIdx.x * BLOCK + tid;
    partial[tid] = i < n ? x[i] : 0.0f;
    __syncthreads();
    for (int stride = BLOCK / 2; stride > 0; stride >>= 1) {
        if (tid < stride) partial[tid] += partial[tid + stride];
    }
    if (tid == 0) out[blockIdx.x] = partial[0];
}

// Warp-shuffle reduction: each warp sums with __shfl_down_sync, warp 0 sums the warp totals.
extern "C" __global__ void warp_sum(const float* __restrict__ x, float* __restrict__ out, int n) {
    __shared__ float warp_totals[BLOCK / 32];
    int tid = threadIdx.x, lane = tid % 32, warp = tid / 32;
    int i = blockIdx.x * BLOCK + tid;
    float v = i < n ? x[i] : 0.0f;
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    if (lane == 0) warp_totals[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < BLOCK / 32 ? warp_totals[lane] : 0.0f;
        for (int mask = 16; mask > 0; mask >>= 1) v += __shfl_xor_sync(0xffffffffu, v, mask);
        if (lane == 0) out[blockIdx.x] = v;
    }
}

// Every warp primitive once: out[tid * 6 + k].
extern "C" __global__ void warp_primitives(const int* x, int* out) {
    int tid = threadIdx.x, lane = tid % 32;
    int v = x[tid];
    out[tid * 6 + 0] = __shfl_sync(0xffffffffu, v, 3);
    out[tid * 6 + 1] = __shfl_up_sync(0xffffffffu, v, 2);
    out[tid * 6 + 2] = __shfl_xor_sync(0xffffffffu, v, 5, 8);
    out[tid * 6 + 3] = (int)__ballot_sync(0xffffffffu, v % 2);
    out[tid * 6 + 4] = __any_sync(0xffffffffu, v == 7) + 2 * __all_sync(0xffffffffu, v >= 0);
    __syncwarp();
    out[tid * 6 + 5] = __shfl_down_sync(0xffffffffu, lane, 1);
}

// Bug: threads past n return before a full-mask shuffle; their lanes hold no value.
extern "C" __global__ void warp_sum_early_return(const float* __restrict__ x, float* __restrict__ out, int n) {
    int tid = threadIdx.x;
    if (tid >= n) return;
    float v = x[tid];
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_down_sync(0xffffffffu, v, offset);
    if (tid == 0) out[0] = v;
}

// Deadlock: lanes 0..15 shuffle with lanes 16..31, which wait at __syncthreads().
extern "C" __global__ void shuffle_vs_barrier(float* y) {
    float v = (float)threadIdx.x;
    if (threadIdx.x % 32 < 16) {
        v = __shfl_down_sync(0xffffffffu, v, 16);
    } else {
        __syncthreads();
    }
    y[threadIdx.x] = v;
}

// Bug: every lane passes mask 0x1, which names lane 0 only.
extern "C" __global__ void shuffle_bad_mask(float* y) {
    y[threadIdx.x] = __shfl_sync(0x1u, (float)threadIdx.x, 0);
}

// __trap() in thread 2 of block 1.
extern "C" __global__ void trap_in(float* y) {
    if (blockIdx.x == 1 && threadIdx.x == 2) __trap();
    y[threadIdx.x] = 1.0f;
}
