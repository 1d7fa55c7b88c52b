/* relu.cu: ReLU and leaky ReLU, forward and backward, elementwise on n float32 values.
 *
 * Layout: any shape, C-contiguous, seen as a flat array of n elements (64-bit n).
 * Ownership: a grid-stride loop; thread t handles elements t, t + T, t + 2T, ... (T = threads in
 *   the grid), so consecutive threads touch consecutive addresses (coalesced).
 * Launch: block (256,), grid (min(ceil(n / 256), 65535),); any grid size is correct.
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

extern "C" __global__ void relu_forward(const float* __restrict__ x, float* __restrict__ y, long long n) {
    for (long long i = first_index(); i < n; i += grid_threads()) {
        float value = x[i];
        y[i] = is_below_zero(value) ? 0.0f : value;
    }
}

extern "C" __global__ void relu_backward(const float* __restrict__ x, const float* __restrict__ grad_y,
                                         float* __restrict__ grad_x, long long n) {
    for (long long i = first_index(); i < n; i += grid_threads()) {
        const float value = x[i];
        grad_x[i] = is_above_zero(value) || is_nan(value) ? grad_y[i] : 0.0f;
    }
}

extern "C" __global__ void leaky_relu_forward(const float* __restrict__ x, float* __restrict__ y,
                                              float negative_slope, long long n) {
    for (long long i = first_index(); i < n; i += grid_threads()) {
        float value = x[i];
        y[i] = is_above_zero(value) ? value : value * negative_slope;
    }
}

extern "C" __global__ void leaky_relu_backward(const float* __restrict__ x, const float* __restrict__ grad_y,
                                               float* __restrict__ grad_x, float negative_slope, long long n) {
    for (long long i = first_index(); i < n; i += grid_threads()) {
        float grad = grad_y[i];
        grad_x[i] = is_above_zero(x[i]) ? grad : grad * negative_slope;
    }
}
