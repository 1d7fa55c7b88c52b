/* relu.cu: ReLU and leaky ReLU, forward and backward, elementwise on n float32 values.
 *
 * Layout: any shape, C-contiguous, seen as a flat array of n elements (64-bit n).
 * Ownership: grid-stride loops (common.cuh). Where every array is 16-byte aligned (CuPy's allocations
 *   are; a view at an offset may not be), thread t handles the float4 quads t, t + T, ... (T = threads
 *   in the grid) of the first 4 * floor(n / 4) elements, then the last n % 4 elements one by one;
 *   otherwise every element one by one. Consecutive threads touch consecutive addresses (coalesced),
 *   and a quad is one 16-byte load per array: a quarter of the threads and index arithmetic.
 * Launch: block (256,), grid (min(ceil(n / 4096), 65535),): 16 elements, four quads, a thread. The
 *   loops are unrolled by four, so a thread issues its four quads' loads before it stores any (a load
 *   waits hundreds of cycles on memory; with a quad a thread, each thread had one load in flight).
 *   Any grid size is correct.
 *
 * Rules at 0 and NaN (PyTorch's, and the CPU half's):
 *   relu:       y = x < 0 ? 0 : x         (NaN passes through; -0.0 stays -0.0, as torch.relu)
 *               dx = x <= 0 ? 0 : dy      (at exactly 0 the gradient is 0; at NaN it passes)
 *   leaky_relu: y = x > 0 ? x : x * slope (NaN * slope is NaN)
 *               dx = x > 0 ? dy : dy * slope (at 0 and at NaN the gradient is scaled)
 * The tests on x read its bits (is_below_zero, is_above_zero), so subnormal x count as non-zero as on
 * the CPU, although CuPy compiles with flush-to-zero; a product with the slope may still flush.
 */
#include "common.cuh"

/* out[i] = f(x[i]) for i < n, by quads where both arrays are 16-byte aligned (see above). */
template <typename F>
static __device__ __forceinline__ void map_unary(const float* __restrict__ x, float* __restrict__ out, long long n,
                                                 F f) {
    long long done = 0;
    if (is_aligned_16(x) && is_aligned_16(out)) {
        const float4* x4 = reinterpret_cast<const float4*>(x);
        float4* out4 = reinterpret_cast<float4*>(out);
        done = n / 4 * 4;
#pragma unroll 4
        for (long long i = first_index(); i < n / 4; i += grid_threads()) {
            const float4 u = x4[i];
            float4 result;
            result.x = f(u.x);
            result.y = f(u.y);
            result.z = f(u.z);
            result.w = f(u.w);
            out4[i] = result;
        }
    }
    for (long long i = done + first_index(); i < n; i += grid_threads()) out[i] = f(x[i]);
}

/* out[i] = f(x[i], grad[i]) for i < n, likewise. */
template <typename F>
static __device__ __forceinline__ void map_binary(const float* __restrict__ x, const float* __restrict__ grad,
                                                  float* __restrict__ out, long long n, F f) {
    long long done = 0;
    if (is_aligned_16(x) && is_aligned_16(grad) && is_aligned_16(out)) {
        const float4* x4 = reinterpret_cast<const float4*>(x);
        const float4* grad4 = reinterpret_cast<const float4*>(grad);
        float4* out4 = reinterpret_cast<float4*>(out);
        done = n / 4 * 4;
#pragma unroll 4
        for (long long i = first_index(); i < n / 4; i += grid_threads()) {
            const float4 u = x4[i], v = grad4[i];
            float4 result;
            result.x = f(u.x, v.x);
            result.y = f(u.y, v.y);
            result.z = f(u.z, v.z);
            result.w = f(u.w, v.w);
            out4[i] = result;
        }
    }
    for (long long i = done + first_index(); i < n; i += grid_threads()) out[i] = f(x[i], grad[i]);
}

extern "C" __global__ void relu_forward(const float* __restrict__ x, float* __restrict__ y, long long n) {
    map_unary(x, y, n, [](float value) { return is_below_zero(value) ? 0.0f : value; });
}

extern "C" __global__ void relu_backward(const float* __restrict__ x, const float* __restrict__ grad_y,
                                         float* __restrict__ grad_x, long long n) {
    map_binary(x, grad_y, grad_x, n, [](float value, float grad) {
        return is_above_zero(value) || is_nan(value) ? grad : 0.0f;
    });
}

extern "C" __global__ void leaky_relu_forward(const float* __restrict__ x, float* __restrict__ y,
                                              float negative_slope, long long n) {
    map_unary(x, y, n, [=](float value) { return is_above_zero(value) ? value : value * negative_slope; });
}

extern "C" __global__ void leaky_relu_backward(const float* __restrict__ x, const float* __restrict__ grad_y,
                                               float* __restrict__ grad_x, float negative_slope, long long n) {
    map_binary(x, grad_y, grad_x, n, [=](float value, float grad) {
        return is_above_zero(value) ? grad : grad * negative_slope;
    });
}
