/* avgpool2d.cu: 2-D average pooling, forward and backward.
 *
 * Layout: x (N, C, H, W), y (N, C, P, Q), float32, C-contiguous; (n, c) folded into one plane index.
 * Window of output (p, q): rows [p*stride_h - pad_h, + kernel_h), columns likewise (no dilation).
 * Divisor (PyTorch's rule, and the CPU half's): the window is first clipped to the padded input
 *   [-pad, size + pad) (with ceil_mode the last window may run past it); count_include_pad divides
 *   by that clipped size, padding included, otherwise by the number of input pixels in it;
 *   divisor_override != 0 (passed as the float the CPU half divides by) replaces both.
 *   P and Q (ceil_mode included) come from the Python geometry.
 * Launch (both kernels): block (256,), grid (min(ceil(total / 256), 65535),), grid-stride loop over
 *   total = N*C*P*Q outputs (forward) or N*C*H*W inputs (backward).
 */
#include "common.cuh"

/* The divisor of output (p, q), as a float (an exact integer up to 2^24). */
static __device__ __forceinline__ float window_divisor(int p, int q, int H, int W, int kernel_h, int kernel_w,
                                                       int stride_h, int stride_w, int pad_h, int pad_w,
                                                       int count_include_pad, float divisor_override) {
    if (divisor_override != 0.0f) return divisor_override;
    int row_start = p * stride_h - pad_h, col_start = q * stride_w - pad_w;
    int row_end = min(row_start + kernel_h, H + pad_h), col_end = min(col_start + kernel_w, W + pad_w);
    if (count_include_pad) return (float)((row_end - row_start) * (col_end - col_start));
    int rows = min(row_end, H) - max(row_start, 0), cols = min(col_end, W) - max(col_start, 0);
    return (float)(rows * cols);
}

/* Thread per output (plane, p, q): sums the window's input pixels in row-major order (padding adds
 * zeros, so it is skipped) and divides once, as the CPU half does. */
extern "C" __global__ void avgpool2d_forward(
    const float* __restrict__ x, float* __restrict__ y, long long total, int H, int W, int P, int Q,
    int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_h, int pad_w,
    int count_include_pad, float divisor_override) {
    const bool fits_int = total <= 0x7fffffff;
    for (long long out = first_index(); out < total; out += grid_threads()) {
        int p, q;
        const long long plane = split_index(out, P, Q, fits_int, p, q);
        const float* image = x + plane * H * W;
        int row_start = max(p * stride_h - pad_h, 0), row_end = min(p * stride_h - pad_h + kernel_h, H);
        int col_start = max(q * stride_w - pad_w, 0), col_end = min(q * stride_w - pad_w + kernel_w, W);
        float sum = 0.0f;
        for (int h = row_start; h < row_end; ++h)
            for (int w = col_start; w < col_end; ++w) sum += image[(long long)h * W + w];
        y[out] = sum / window_divisor(p, q, H, W, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                                      count_include_pad, divisor_override);
    }
}

/* Gather form, thread per input pixel (plane, h, w): sums grad_y / divisor over the windows that
 * hold it, no atomics. Window p holds row h when p*stride_h - pad_h <= h < p*stride_h - pad_h +
 * kernel_h, i.e. ceil((h + pad_h - kernel_h + 1) / stride_h) <= p <= floor((h + pad_h) / stride_h),
 * clipped to [0, P) (common.cuh's windows_reading). The walk from the last window to the first
 * matches the CPU half's tap order (its tap r = h + pad_h - p*stride_h grows as p falls), so the sums
 * agree bit for bit. */
extern "C" __global__ void avgpool2d_backward(
    const float* __restrict__ grad_y, float* __restrict__ grad_x, long long total, int H, int W, int P, int Q,
    int kernel_h, int kernel_w, int stride_h, int stride_w, int pad_h, int pad_w,
    int count_include_pad, float divisor_override) {
    const bool fits_int = total <= 0x7fffffff;
    for (long long in = first_index(); in < total; in += grid_threads()) {
        int h, w;
        const long long plane = split_index(in, H, W, fits_int, h, w);
        const float* grad_plane = grad_y + plane * P * Q;
        int p_first, p_last, q_first, q_last;
        windows_reading(h, pad_h, kernel_h, stride_h, 1, P, p_first, p_last);
        windows_reading(w, pad_w, kernel_w, stride_w, 1, Q, q_first, q_last);
        float sum = 0.0f;
        for (int p = p_last; p >= p_first; --p) {
            for (int q = q_last; q >= q_first; --q) {
                float divisor = window_divisor(p, q, H, W, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w,
                                               count_include_pad, divisor_override);
                sum += grad_plane[(long long)p * Q + q] / divisor;
            }
        }
        grad_x[in] = sum;
    }
}
