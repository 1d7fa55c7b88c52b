/* maxpool2d.cu: 2-D max pooling, forward (with argmax indices) and backward.
 *
 * Layout: x (N, C, H, W), y and indices (N, C, P, Q); float32 (indices int64), C-contiguous. A
 *   plane is one (n, c) image; planes are independent, so (n, c) is folded into one plane index.
 *   The forwards write indices only where keep_indices is set (for backward or return_indices);
 *   inference passes 0 and a 1-element dummy array, and saves their 8 bytes per output.
 * Window of output (p, q): input rows p*stride_h - pad_h + r*dilation_h for taps r in
 *   [0, kernel_h), columns likewise; taps outside [0, H) x [0, W) are padding and never win.
 *   P and Q (ceil_mode included) come from the Python geometry, which also guarantees that every
 *   window holds at least one input pixel.
 * Launch (all kernels): block (256,), grid (min(ceil(total / 256), 65535),), grid-stride loop over
 *   total = N*C*P*Q outputs (the forwards and maxpool2d_backward_2x2), N*C*P*Q / 2 output pairs
 *   (maxpool2d_forward_2x2_pairs) or N*C*H*W inputs (maxpool2d_backward).
 */
#include "common.cuh"

/* Thread per output (plane, p, q). Scans the window in row-major tap order and keeps the first
 * maximum: a tap replaces the running maximum when it is larger, or when it is NaN (so the last
 * NaN wins and the output is NaN), or when it is the first in-input tap (so a window of -inf values
 * reports its first in-input tap). Writes the maximum and its flat in-plane index h*W + w. */
extern "C" __global__ void maxpool2d_forward(
    const float* __restrict__ x, float* __restrict__ y, long long* __restrict__ indices, int keep_indices,
    long long total, int H, int W, int P, int Q, int kernel_h, int kernel_w, int stride_h, int stride_w,
    int pad_h, int pad_w, int dilation_h, int dilation_w) {
    const bool fits_int = total <= 0x7fffffff;
    for (long long out = first_index(); out < total; out += grid_threads()) {
        int p, q;
        const long long plane = split_index(out, P, Q, fits_int, p, q);
        const float* image = x + plane * H * W;
        int row0 = p * stride_h - pad_h, col0 = q * stride_w - pad_w;
        float best = 0.0f;
        long long best_index = -1;
        for (int r = 0; r < kernel_h; ++r) {
            int h = row0 + r * dilation_h;
            if (h < 0 || h >= H) continue;
            for (int s = 0; s < kernel_w; ++s) {
                int w = col0 + s * dilation_w;
                if (w < 0 || w >= W) continue;
                float value = image[(long long)h * W + w];
                if (best_index < 0 || value > best || is_nan(value)) {
                    best = value;
                    best_index = (long long)h * W + w;
                }
            }
        }
        y[out] = best;
        if (keep_indices) indices[out] = best_index;
    }
}

/* Output `out` of 2x2 windows at stride 2 without padding: returns its plane and sets `top` to its
 * window's first pixel h*W + w in that plane. */
static __device__ __forceinline__ long long window_2x2(long long out, int W, int P, int Q, bool fits_int, int& top) {
    int p, q;
    const long long plane = split_index(out, P, Q, fits_int, p, q);
    top = 2 * p * W + 2 * q;
    return plane;
}

/* The running maximum of a 2x2 window of maxpool2d_forward's scan: its pixels upper-left, upper-right,
 * lower-left, lower-right, the first at in-plane index `top` of a plane W wide. */
static __device__ __forceinline__ void window_2x2_max(float upper_left, float upper_right, float lower_left,
                                                      float lower_right, int top, int W, float& best,
                                                      int& best_index) {
    best = upper_left, best_index = top;
    if (upper_right > best || is_nan(upper_right)) best = upper_right, best_index = top + 1;
    if (lower_left > best || is_nan(lower_left)) best = lower_left, best_index = top + W;
    if (lower_right > best || is_nan(lower_right)) best = lower_right, best_index = top + W + 1;
}

/* The same for 2x2 windows at stride 2 without padding or dilation, the common case, on an even W
 * and an 8-byte aligned x (the host checks both): a thread reads its window's two rows as one float2
 * each, so a warp's loads of a row are one contiguous run, where maxpool2d_forward reads every other
 * float twice. Same scan order and rule, the same results. */
extern "C" __global__ void maxpool2d_forward_2x2(
    const float* __restrict__ x, float* __restrict__ y, long long* __restrict__ indices, int keep_indices,
    long long total, int H, int W, int P, int Q) {
    const bool fits_int = total <= 0x7fffffff;
    for (long long out = first_index(); out < total; out += grid_threads()) {
        int top;
        const long long plane = window_2x2(out, W, P, Q, fits_int, top);
        const float2* pairs = reinterpret_cast<const float2*>(x + plane * H * W + top);
        const float2 upper = pairs[0], lower = pairs[W / 2];
        float best;
        int best_index;
        window_2x2_max(upper.x, upper.y, lower.x, lower.y, top, W, best, best_index);
        y[out] = best;
        if (keep_indices) indices[out] = best_index;
    }
}

/* The same windows on an even H, a W divisible by 4 and a 16-byte aligned x (the host checks all
 * three): a thread takes two neighbouring outputs of a row, reads their windows' two rows as one float4
 * each and writes the two maxima as one float2 (their indices as one longlong2). Output row `row` of
 * the whole array (plane * P + p) reads input rows 2 * row and 2 * row + 1 of it, since H = 2P, so
 * the thread's place is one division, and its in-plane indices a second where they are kept: half the
 * threads of maxpool2d_forward_2x2, a quarter of its divisions, and 16-byte loads. Same results. On an
 * H100 it took 0.89-0.90 of maxpool2d_forward_2x2's device time on 512x28x28 at batch 32-128 (90-103 %
 * of a large copy's bandwidth), 0.94-0.99 on 64x224x224. */
extern "C" __global__ void maxpool2d_forward_2x2_pairs(
    const float* __restrict__ x, float* __restrict__ y, long long* __restrict__ indices, int keep_indices,
    long long pairs, int P, int W) {
    const int row_pairs = W / 4;                  // output pairs a row
    const bool fits_int = pairs <= 0x7fffffff / 8;  // 8 inputs a pair: every input offset fits an int
    for (long long pair = first_index(); pair < pairs; pair += grid_threads()) {
        long long row;
        int q;  // the first output's column
        if (fits_int) {
            const int r = (int)pair / row_pairs;
            row = r, q = 2 * ((int)pair - r * row_pairs);
        } else {
            row = pair / row_pairs, q = 2 * (int)(pair - row * row_pairs);
        }
        const float* top_left = x + 2 * row * W + 2 * q;
        const float4 upper = *reinterpret_cast<const float4*>(top_left);
        const float4 lower = *reinterpret_cast<const float4*>(top_left + W);
        const int p = !keep_indices ? 0 : fits_int ? (int)row % P : (int)(row % P);
        const int top = 2 * p * W + 2 * q;  // in-plane index of the first window's first pixel
        float2 best;
        int first, second;
        window_2x2_max(upper.x, upper.y, lower.x, lower.y, top, W, best.x, first);
        window_2x2_max(upper.z, upper.w, lower.z, lower.w, top + 2, W, best.y, second);
        reinterpret_cast<float2*>(y)[pair] = best;
        if (keep_indices) {
            longlong2 both;
            both.x = first, both.y = second;
            reinterpret_cast<longlong2*>(indices)[pair] = both;
        }
    }
}

/* Gather form, thread per input pixel (plane, h, w): sums grad_y over the outputs whose argmax is
 * this pixel. No atomics, so the result does not depend on the order threads run in; the cost is an
 * index read per window that can hold the pixel, instead of one scatter per output. Those windows
 * are the runs of outputs p and q of common.cuh's windows_reading, walked upwards: the taps from the
 * last to the first, the order of the CPU half's sum. With dilation some of them skip the pixel, and
 * so never have it as their argmax. Four divisions a pixel, where a remainder tested each tap. */
extern "C" __global__ void maxpool2d_backward(
    const float* __restrict__ grad_y, const long long* __restrict__ indices, float* __restrict__ grad_x,
    long long total, int H, int W, int P, int Q, int kernel_h, int kernel_w, int stride_h, int stride_w,
    int pad_h, int pad_w, int dilation_h, int dilation_w) {
    const bool fits_int = total <= 0x7fffffff;
    for (long long in = first_index(); in < total; in += grid_threads()) {
        int h, w, p_first, p_last, q_first, q_last;
        const long long plane = split_index(in, H, W, fits_int, h, w);
        const long long* plane_indices = indices + plane * P * Q;
        const float* plane_grad = grad_y + plane * P * Q;
        const long long self = (long long)h * W + w;
        windows_reading(h, pad_h, kernel_h, stride_h, dilation_h, P, p_first, p_last);
        windows_reading(w, pad_w, kernel_w, stride_w, dilation_w, Q, q_first, q_last);
        float sum = 0.0f;
        for (int p = p_first; p <= p_last; ++p) {
            for (int q = q_first; q <= q_last; ++q) {
                const long long out = (long long)p * Q + q;
                const float grad = plane_grad[out];  /* read with the index, not after it: one wait, not two */
                if (plane_indices[out] == self) sum += grad;
            }
        }
        grad_x[in] = sum;
    }
}

/* The backward of 2x2 windows at stride 2 without padding or dilation on an even H and W, where every
 * input pixel lies in exactly one window (the host checks): thread per window (plane, p, q), which
 * writes its four pixels, the gradient at its argmax and 0 elsewhere, as one float2 per row. One
 * index and one gradient read per window, where maxpool2d_backward decodes four taps per pixel. */
extern "C" __global__ void maxpool2d_backward_2x2(
    const float* __restrict__ grad_y, const long long* __restrict__ indices, float* __restrict__ grad_x,
    long long total, int H, int W, int P, int Q) {
    const bool fits_int = total <= 0x7fffffff;
    for (long long out = first_index(); out < total; out += grid_threads()) {
        int top;
        const long long plane = window_2x2(out, W, P, Q, fits_int, top);
        const long long argmax = indices[out];
        const float grad = grad_y[out];
        float2* pairs = reinterpret_cast<float2*>(grad_x + plane * H * W + top);
        float2 upper, lower;
        upper.x = argmax == top ? grad : 0.0f, upper.y = argmax == top + 1 ? grad : 0.0f;
        lower.x = argmax == top + W ? grad : 0.0f, lower.y = argmax == top + W + 1 ? grad : 0.0f;
        pairs[0] = upper;
        pairs[W / 2] = lower;
    }
}
