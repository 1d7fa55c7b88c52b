/* common.cuh: helpers shared by the kernels in this folder (conv2d.cu, maxpool2d.cu, ...).
 *
 * Plain CUDA C that nvcc (sm_75 ... sm_90), NVRTC (compute_53 and later) and the cudasim g++ shim
 * all accept: no CUDA headers, no C++ standard library, nothing but built-in variables and
 * arithmetic. Tensors are NCHW, float32, C-contiguous; element offsets are 64-bit (long long)
 * wherever a tensor can hold more than 2^31 elements.
 */
#ifndef GPUCNN_COMMON_CUH
#define GPUCNN_COMMON_CUH

/* This thread's index in a 1-D grid, and the number of threads in the grid: the start and the step
 * of a grid-stride loop, `for (i = first_index(); i < n; i += grid_threads())`, so any n (64-bit)
 * is covered by a grid capped below CUDA's limits. */
static __device__ __forceinline__ long long first_index() {
    return (long long)blockIdx.x * blockDim.x + threadIdx.x;
}
static __device__ __forceinline__ long long grid_threads() {
    return (long long)gridDim.x * blockDim.x;
}

/* Splits flat index i of a C-contiguous (planes, rows, cols) array into its plane (returned), row and
 * col. The GPU has no 64-bit divider: a 64-bit division is a long software routine and a 32-bit one
 * a short one, so an array of at most 2^31 - 1 elements (fits_int, the same for the whole grid)
 * takes 32-bit divisions; then rows * cols fits an int too. */
static __device__ __forceinline__ long long split_index(long long i, int rows, int cols, bool fits_int, int& row,
                                                        int& col) {
    if (fits_int) {
        const int flat = (int)i, plane_size = rows * cols;
        const int plane = flat / plane_size, rest = flat - plane * plane_size;
        row = rest / cols;
        col = rest - row * cols;
        return plane;
    }
    col = (int)(i % cols);
    row = (int)((i / cols) % rows);
    return i / ((long long)rows * cols);
}

/* Division of non-negative ints by a divisor fixed for a whole loop, as a multiply-high, an add and a
 * shift (Granlund and Montgomery's round-up method, "Division by invariant integers using
 * multiplication", 1994): the GPU has no integer divider, and a plain 32-bit division is a sequence
 * of about twenty instructions. For 1 <= d < 2^31, with l = ceil(log2 d) and
 * magic = floor(2^32 * (2^l - d) / d) + 1 (below 2^32), every 0 <= n < 2^31 gives
 * n / d == (umulhi(n, magic) + n) >> l; the sum stays below 2^32 since umulhi(n, magic) <= n.
 * make_divisor runs once per thread (one 64-bit division); divide in the loop. */
struct Divisor {
    unsigned int magic;
    int shift;
};

static __device__ __forceinline__ Divisor make_divisor(int d) {
    int shift = 0;
    while ((1ll << shift) < d) ++shift;
    const unsigned long long span = (1ull << shift) - (unsigned long long)d;
    Divisor divisor = {(unsigned int)((span << 32) / (unsigned long long)d + 1), shift};
    return divisor;
}

static __device__ __forceinline__ int divide(int n, Divisor d) {
    return (int)((__umulhi((unsigned int)n, d.magic) + (unsigned int)n) >> d.shift);
}

/* The windows of a pooling op along one axis (rows or columns) that can read input position `at`:
 * window p's tap t reads padded position p*stride + t*dilation, so they are the p in [first, last],
 * clipped to [0, count); with dilation above 1, only those with at + pad - p*stride divisible by it
 * do. Walking p upwards walks the taps t from the last to the first. */
static __device__ __forceinline__ void windows_reading(int at, int pad, int kernel, int stride, int dilation,
                                                       int count, int& first, int& last) {
    const int low = at + pad - (kernel - 1) * dilation;
    first = low <= 0 ? 0 : (low + stride - 1) / stride;
    last = min((at + pad) / stride, count - 1);
}

/* Whether a pointer may be read or written as float4: CuPy's allocations are 16-byte aligned, a view at an
 * offset may not be. */
static __device__ __forceinline__ bool is_aligned_16(const void* pointer) {
    return ((unsigned long long)pointer & 15ull) == 0;
}

/* NaN test without math headers: NaN is the only value unequal to itself (no fast-math here). */
static __device__ __forceinline__ bool is_nan(float value) { return value != value; }

/* Finite test likewise: value - value is exactly 0 for a finite value, NaN for inf and NaN. */
static __device__ __forceinline__ bool is_finite(float value) { return value - value == 0.0f; }
static __device__ __forceinline__ bool is_finite(double value) { return value - value == 0.0; }

/* value < 0 and value > 0 read off the bits (NaN: false). CuPy compiles with -ftz=true, under which a
 * float comparison sees a subnormal as 0; these see it as the CPU (and PyTorch's CPU half) does. */
static __device__ __forceinline__ bool is_below_zero(float value) {
    const int bits = __float_as_int(value), magnitude = bits & 0x7fffffff;
    return bits < 0 && magnitude != 0 && magnitude <= 0x7f800000;
}
static __device__ __forceinline__ bool is_above_zero(float value) {
    const int bits = __float_as_int(value);
    return bits > 0 && bits <= 0x7f800000;
}

/* The sum of every thread's ``value`` in a block of THREADS threads (a power of two), returned to all
 * of them: a shared-memory tree of fixed shape, so the sum's order never depends on the threads'
 * timing. ``partial`` holds THREADS values of T (float or double); it may be used again after the
 * call. Every thread of the block must call it. */
template <int THREADS, typename T>
static __device__ T block_sum(T value, T* partial) {
    const int tid = threadIdx.x;
    partial[tid] = value;
    __syncthreads();
    for (int half = THREADS / 2; half > 0; half >>= 1) {
        if (tid < half) partial[tid] += partial[tid + half];
        __syncthreads();
    }
    const T sum = partial[0];
    __syncthreads(); /* before partial is written again */
    return sum;
}

#endif /* GPUCNN_COMMON_CUH */
