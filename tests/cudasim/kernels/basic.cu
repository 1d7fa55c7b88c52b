// Small kernels for the cudasim tests: indexing, argument types, atomics, asserts, divergence.
// Layout: 1-D float32/int arrays, C-contiguous. Every kernel is valid CUDA (nvcc -arch=sm_80).
#include <assert.h>

// y[i] = a[i] + b[i] with a grid-stride loop: any grid size covers any n.
extern "C" __global__ void vector_add(const float* __restrict__ a, const float* __restrict__ b,
                                      float* __restrict__ y, long long n) {
    long long stride = (long long)blockDim.x * gridDim.x;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += stride) {
        y[i] = a[i] + b[i];
    }
}

// One thread per element of a (gz*bz, gy*by, gx*bx) volume: out[z][y][x] holds the thread's
// linear thread index in its block and blockIdx/threadIdx packed as decimal digits.
extern "C" __global__ void index_3d(int* thread_linear, long long* packed) {
    unsigned x = blockIdx.x * blockDim.x + threadIdx.x;
    unsigned y = blockIdx.y * blockDim.y + threadIdx.y;
    unsigned z = blockIdx.z * blockDim.z + threadIdx.z;
    unsigned width = gridDim.x * blockDim.x, height = gridDim.y * blockDim.y;
    long long i = ((long long)z * height + y) * width + x;
    thread_linear[i] = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    packed[i] = blockIdx.x * 100000LL + blockIdx.y * 10000LL + blockIdx.z * 1000LL
              + threadIdx.x * 100 + threadIdx.y * 10 + threadIdx.z;
}

// One parameter of each scalar type the project uses: out = [i, u, ll, f, d] as doubles.
extern "C" __global__ void scalar_types(double* out, int i, unsigned int u, long long ll, float f, double d,
                                        const unsigned char* flags, bool* seen) {
    out[0] = i; out[1] = u; out[2] = (double)ll; out[3] = f; out[4] = d;
    seen[0] = flags[0] != 0;
}

// Histogram of values in [0, bins) with atomics; also the maximum and a CAS-built count.
extern "C" __global__ void histogram(const int* __restrict__ values, int n, int* counts, float* weights_sum,
                                     int* maximum, unsigned long long* total, unsigned int* cas_count) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    int v = values[i];
    atomicAdd(&counts[v], 1);
    atomicAdd(weights_sum, 0.5f);
    atomicMax(maximum, v);
    atomicAdd(total, (unsigned long long)v);
    unsigned int old = *cas_count, assumed;
    do {
        assumed = old;
        old = atomicCAS(cas_count, assumed, assumed + 1);
    } while (old != assumed);
}

// Fails a device assert in one chosen thread of one chosen block.
extern "C" __global__ void assert_in(int bad_block, int bad_thread, int* touched) {
    touched[blockIdx.x * blockDim.x + threadIdx.x] = 1;
    assert(!(blockIdx.x == bad_block && threadIdx.x == bad_thread));
}

// __syncthreads() reached by only the first half of the block: divergence.
extern "C" __global__ void barrier_in_branch(float* x) {
    if (threadIdx.x < blockDim.x / 2) {
        x[threadIdx.x] = 1.0f;
        __syncthreads();
    }
}

// Odd and even threads wait at different __syncthreads() call sites.
extern "C" __global__ void barrier_two_sites(float* x) {
    if (threadIdx.x % 2) {
        __syncthreads();
    } else {
        __syncthreads();
    }
    x[threadIdx.x] = 1.0f;
}

// Dynamic shared memory: each block copies its slice in, reverses it, and writes it back.
extern "C" __global__ void reverse_blocks(const float* __restrict__ x, float* __restrict__ y) {
    extern __shared__ float tile[];
    int base = blockIdx.x * blockDim.x;
    tile[threadIdx.x] = x[base + threadIdx.x];
    __syncthreads();
    y[base + threadIdx.x] = tile[blockDim.x - 1 - threadIdx.x];
}

// Reads one more dynamic shared float than any thread writes: the last thread sees the poison.
extern "C" __global__ void read_unwritten_shared(float* y) {
    extern __shared__ float tile[];
    tile[threadIdx.x] = 1.0f;
    __syncthreads();
    y[threadIdx.x] = tile[threadIdx.x + 1];
}

// __syncthreads_count and __syncthreads_or over a predicate.
extern "C" __global__ void barrier_votes(const int* flags, int* out) {
    int count = __syncthreads_count(flags[threadIdx.x]);
    int any = __syncthreads_or(flags[threadIdx.x]);
    int all = __syncthreads_and(flags[threadIdx.x]);
    if (threadIdx.x == 0) { out[0] = count; out[1] = any; out[2] = all; }
}

// A local array far larger than a fiber stack.
extern "C" __global__ void huge_local(float* y, int n) {
    float scratch[200000];
    for (int i = 0; i < n; ++i) scratch[i] = (float)i;
    y[threadIdx.x] = scratch[n - 1];
}

// Not extern "C": CuPy's get_function cannot find it, neither can cudasim.
__global__ void mangled_kernel(float* y) { y[0] = 1.0f; }

// Writes through a wild pointer: the GPU's illegal address error.
extern "C" __global__ void wild_write(float* y, long long address) {
    y[threadIdx.x] = 1.0f;
    if (threadIdx.x == 7) *(float*)address = 1.0f;
}

// ---- language features: helpers with __shared__ memory, templates, __constant__, intrinsics ----
#define HELPER_BLOCK 64
__shared__ float file_scope[4];
__constant__ float table[3] = {1.0f, 2.0f, 3.0f};

__device__ __forceinline__ float block_sum(float v) {
    __shared__ float partial[HELPER_BLOCK];
    partial[threadIdx.x] = v;
    __syncthreads();
    float total = 0.0f;
    #pragma unroll 4
    for (int i = 0; i < HELPER_BLOCK; ++i) total += partial[i];
    __syncthreads();
    return total;
}

template <int N> __device__ float scaled_sum(float v) {
    __shared__ float tmp[N];
    tmp[threadIdx.x % N] = v;
    __syncthreads();
    return tmp[0] * N;
}

// y = [sum of x over the block, HELPER_BLOCK, table[2]]. Launch: grid (1,), block (HELPER_BLOCK,).
extern "C" __global__ void __launch_bounds__(HELPER_BLOCK) use_helpers(const float* __restrict__ x, float* y) {
    float s = block_sum(x[threadIdx.x]);
    float t = scaled_sum<HELPER_BLOCK>(1.0f);
    if (threadIdx.x == 0) { file_scope[0] = s; y[0] = file_scope[0]; y[1] = t; y[2] = table[2]; }
}

// One thread evaluates the intrinsics kernels may use. Launch: grid (1,), block (1,), 16 bytes of
// dynamic shared memory.
extern "C" __global__ void intrinsics(float* f, int* i) {
    extern __shared__ __align__(16) unsigned char raw[];
    float4* v = reinterpret_cast<float4*>(raw);
    v[0] = make_float4(1.0f, 2.0f, 3.0f, 4.0f);
    f[0] = __expf(1.0f); f[1] = rsqrtf(4.0f); f[2] = __fdividef(1.0f, 4.0f); f[3] = fmaxf(1.5f, -2.0f);
    f[4] = fminf(1.5f, -2.0f); f[5] = __logf(2.0f); f[6] = __ldg(&v[0].w); f[7] = min(2.5f, 1.5f);
    f[8] = __saturatef(1.5f); f[9] = INFINITY; f[10] = __int_as_float(0x3f800000); f[11] = __powf(2.0f, 10.0f);
    float s, c; __sincosf(0.0f, &s, &c); f[12] = s + c; f[13] = max(2.0, 3.0f); f[14] = tanhf(0.0f); f[15] = __fsqrt_rn(9.0f);
    i[0] = __float2int_rn(2.5f); i[1] = __float2int_rn(3.5f); i[2] = __popc(0xF0F0u); i[3] = __clz(1);
    i[4] = __ffs(8); i[5] = min(3, 7); i[6] = max(3u, 7u); i[7] = (int)__brev(1u) < 0;
    i[8] = __float_as_int(1.0f) == 0x3f800000; i[9] = (int)max(-1ll, 5ll); i[10] = __float2int_rz(-2.7f); i[11] = warpSize;
    __threadfence(); __threadfence_block();
}
