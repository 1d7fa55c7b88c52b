/* winograd.cu: the transforms of Winograd's F(2x2, 3x3) and F(4x4, 3x3) for conv2d (3x3 kernel,
 * stride 1, dilation 1, one group): the kernel paths "winograd2" and "winograd4" of gpucnn/ops/conv2d.py.
 *
 * Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (2016). F(m x m, 3x3) cuts the
 * output into tiles of m x m pixels; the a x a patch d of padded input under tile t (a = m + 2; rows
 * m ti - pad_top .. + a - 1, columns likewise) and a filter g give
 *
 *     Y = A^T [ (G g G^T) * (B^T d B) ] A       (* elementwise, summed over input channels)
 *
 * with the matrices of Winograd<m> below. The sum over channels is a*a matrix products, one per
 * transform point xi = a alpha + beta, which conv2d.py runs on its own GEMM kernels as a 1x1
 * convolution of a*a groups:
 *
 *     M[xi] (K, T) = U[xi] (K, C) @ V[xi] (C, T),    T = N * tiles_h * tiles_w, t = (n * tiles_h + ti) * tiles_w + tj
 *
 * a*a K C T multiply-adds where direct convolution does 9 m*m K C T: 2.25 times fewer for m = 2, 4
 * times fewer for m = 4, whose transforms also move less data per output (36 values per 16 outputs
 * against 16 per 4) but round more (their coefficients reach 8 and 1/24).
 *
 * Layouts (C-contiguous, float32): V[(xi * C + c) * T + t] (the GEMM's input, a*a*C channels of T
 * pixels), U[(xi * K + k) * C + c] (its weight, a*a*K filters of C taps), M[(xi * K + k) * T + t].
 * The weight's gradient runs the adjoints: dM = A dY A^T (winograd_grad_transform), dU from the GEMM's
 * own backward kernel and dweight = G^T dU G (winograd_filter_adjoint). The input's gradient is a 3x3
 * convolution of the upstream gradient with the flipped weight, which conv2d.py runs as the forward: its filter
 * and output transforms read the layer's weight flipped and with its channels swapped (`flipped`), in place.
 *
 * Ownership: one thread per (channel, tile) for the transforms and per (k, c) for the filter's
 * adjoint; grid-stride loops, block (256,), any grid size. Each value is
 * computed in a fixed order, so results do not depend on the launch. An inf or NaN in the input, weight
 * or upstream gradient spreads through the transforms to results whose direct sums do not read it, and
 * inf - inf turns infinite results into NaN; each such wrong value is NaN, so the output transform and
 * the filter's adjoint sum their NaN results again directly (direct_nan_outputs, direct_nan_filter):
 * with finite data that costs a test per result, and no test of the data, which the host would wait
 * for. A direct sum stops at its first NaN, so NaN everywhere (a diverged model's weights) costs a term
 * or a row per result. Each kernel is a template on m, built
 * as <kernel>_2 and <kernel>_4 by extern "C" wrappers (kernels are found and launched by their C names).
 */
#include "common.cuh"

template <int M>
struct Winograd;

/* F(2x2, 3x3): B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]],
 * G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]], A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]. */
template <>
struct Winograd<2> {
    static constexpr int A = 4;
    /* out = B^T v */
    static __device__ __forceinline__ void bt(const float* v, float* out) {
        out[0] = v[0] - v[2];
        out[1] = v[1] + v[2];
        out[2] = v[2] - v[1];
        out[3] = v[1] - v[3];
    }
    /* out = G g (3 -> 4) */
    static __device__ __forceinline__ void g(const float* v, float* out) {
        const float half_outer = 0.5f * (v[0] + v[2]), half_middle = 0.5f * v[1];
        out[0] = v[0];
        out[1] = half_outer + half_middle;
        out[2] = half_outer - half_middle;
        out[3] = v[2];
    }
    /* out = G^T v (4 -> 3), the adjoint of g */
    static __device__ __forceinline__ void gt(const float* v, float* out) {
        const float half_sum = 0.5f * (v[1] + v[2]);
        out[0] = v[0] + half_sum;
        out[1] = 0.5f * (v[1] - v[2]);
        out[2] = half_sum + v[3];
    }
    /* out = A^T v (4 -> 2) */
    static __device__ __forceinline__ void at(const float* v, float* out) {
        out[0] = v[0] + v[1] + v[2];
        out[1] = v[1] - v[2] - v[3];
    }
    /* out = A v (2 -> 4), the adjoint of at */
    static __device__ __forceinline__ void a(const float* v, float* out) {
        out[0] = v[0];
        out[1] = v[0] + v[1];
        out[2] = v[0] - v[1];
        out[3] = -v[1];
    }
};

/* F(4x4, 3x3): B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
 * [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]],
 * G = [[1/4, 0, 0], [-1/6, -1/6, -1/6], [-1/6, 1/6, -1/6], [1/24, 1/12, 1/6], [1/24, -1/12, 1/6], [0, 0, 1]],
 * A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]. */
template <>
struct Winograd<4> {
    static constexpr int A = 6;
    static __device__ __forceinline__ void bt(const float* v, float* out) {
        out[0] = 4.0f * v[0] - 5.0f * v[2] + v[4];
        out[1] = v[3] + v[4] - 4.0f * (v[1] + v[2]);
        out[2] = v[4] - v[3] + 4.0f * (v[1] - v[2]);
        out[3] = v[4] - v[2] + 2.0f * (v[3] - v[1]);
        out[4] = v[4] - v[2] + 2.0f * (v[1] - v[3]);
        out[5] = 4.0f * v[1] - 5.0f * v[3] + v[5];
    }
    static __device__ __forceinline__ void g(const float* v, float* out) {
        const float outer = v[0] + v[2];
        out[0] = 0.25f * v[0];
        out[1] = -(outer + v[1]) / 6.0f;
        out[2] = -(outer - v[1]) / 6.0f;
        out[3] = v[0] / 24.0f + v[1] / 12.0f + v[2] / 6.0f;
        out[4] = v[0] / 24.0f - v[1] / 12.0f + v[2] / 6.0f;
        out[5] = v[2];
    }
    static __device__ __forceinline__ void gt(const float* v, float* out) {
        out[0] = 0.25f * v[0] - (v[1] + v[2]) / 6.0f + (v[3] + v[4]) / 24.0f;
        out[1] = (v[2] - v[1]) / 6.0f + (v[3] - v[4]) / 12.0f;
        out[2] = (v[3] + v[4] - v[1] - v[2]) / 6.0f + v[5];
    }
    static __device__ __forceinline__ void at(const float* v, float* out) {
        const float sum_12 = v[1] + v[2], diff_12 = v[1] - v[2], sum_34 = v[3] + v[4], diff_34 = v[3] - v[4];
        out[0] = v[0] + sum_12 + sum_34;
        out[1] = diff_12 + 2.0f * diff_34;
        out[2] = sum_12 + 4.0f * sum_34;
        out[3] = diff_12 + 8.0f * diff_34 + v[5];
    }
    static __device__ __forceinline__ void a(const float* v, float* out) {
        const float even = v[0] + v[2], odd = v[1] + v[3];
        out[0] = v[0];
        out[1] = even + odd;
        out[2] = even - odd;
        out[3] = v[0] + 2.0f * v[1] + 4.0f * v[2] + 8.0f * v[3];
        out[4] = v[0] - 2.0f * v[1] + 4.0f * v[2] - 8.0f * v[3];
        out[5] = v[3];
    }
};

/* The tile (n, ti, tj) of flat tile index t. */
static __device__ __forceinline__ long long winograd_tile(long long t, int tiles_h, int tiles_w, int& ti, int& tj) {
    tj = (int)(t % tiles_w);
    ti = (int)((t / tiles_w) % tiles_h);
    return t / ((long long)tiles_h * tiles_w);
}

/* V = B^T d B for every (channel c, tile t): thread per (c, t) over C * T. */
template <int M>
__device__ void input_transform(const float* __restrict__ x, float* __restrict__ V, int N, int C, int H, int W,
                                int pad_top, int pad_left, int tiles_h, int tiles_w) {
    constexpr int A = Winograd<M>::A;
    const long long T = (long long)N * tiles_h * tiles_w, total = (long long)C * T;
    for (long long i = first_index(); i < total; i += grid_threads()) {
        const long long c = i / T, t = i - c * T;
        int ti, tj;
        const long long n = winograd_tile(t, tiles_h, tiles_w, ti, tj);
        const float* plane = x + (n * C + c) * H * W;
        const int h0 = M * ti - pad_top, w0 = M * tj - pad_left;
        float rows[A][A]; /* rows[r] = B^T along the patch's row r */
        for (int r = 0; r < A; ++r) {
            const int h = h0 + r;
            float d[A];
            for (int s = 0; s < A; ++s) {
                const int w = w0 + s;
                d[s] = h >= 0 && h < H && w >= 0 && w < W ? plane[(long long)h * W + w] : 0.0f;
            }
            Winograd<M>::bt(d, rows[r]);
        }
        for (int beta = 0; beta < A; ++beta) {
            float column[A], v[A];
            for (int r = 0; r < A; ++r) column[r] = rows[r][beta];
            Winograd<M>::bt(column, v);
            for (int alpha = 0; alpha < A; ++alpha) V[((long long)(A * alpha + beta) * C + c) * T + t] = v[alpha];
        }
    }
}

/* Filter (k, c) of a convolution of K filters of C channels, whose tap t = 3 r + s is taps[tap_step(flipped) * t]:
 * weight[k, c, r, s] of weight (K, C, 3, 3), or where `flipped` (the input's gradient) weight[c, k, 2 - r, 2 - s]
 * of the layer's weight (C, K, 3, 3), its filters rotated by 180 degrees and their channels swapped. */
static __device__ __forceinline__ const float* filter_taps(const float* __restrict__ weight, long long k, long long c,
                                                           int K, int C, int flipped) {
    return flipped ? weight + (c * K + k) * 9 + 8 : weight + (k * C + c) * 9;
}
static __device__ __forceinline__ int tap_step(int flipped) { return flipped ? -1 : 1; }

/* U = G g G^T for every filter g = (k, c) (filter_taps): thread per (k, c). */
template <int M>
__device__ void filter_transform(const float* __restrict__ weight, float* __restrict__ U, int K, int C, int flipped) {
    constexpr int A = Winograd<M>::A;
    const long long total = (long long)K * C;
    for (long long i = first_index(); i < total; i += grid_threads()) {
        const float* taps = filter_taps(weight, i / C, i % C, K, C, flipped);
        float g[9];
        for (int t = 0; t < 9; ++t) g[t] = taps[tap_step(flipped) * t];
        float rows[3][A]; /* rows[r] = G along the filter's row r */
        for (int r = 0; r < 3; ++r) Winograd<M>::g(g + 3 * r, rows[r]);
        for (int beta = 0; beta < A; ++beta) {
            const float column[3] = {rows[0][beta], rows[1][beta], rows[2][beta]};
            float u[A];
            Winograd<M>::g(column, u);
            for (int alpha = 0; alpha < A; ++alpha) U[(long long)(A * alpha + beta) * total + i] = u[alpha];
        }
    }
}

/* The direct sum for output (n, k, row, col) of a 3x3 stride-1 convolution of x (N, C, H, W), padded by pad_top
 * and pad_left, with K filters g (filter_taps): g[k, c, r, s] * x[n, c, row - pad_top + r, col - pad_left + s] summed
 * over c, r, s in that order. A tap in the padding adds weight * 0 where padding_counts (the forward, whose direct
 * kernels, like the CPU half, multiply their zero padding) and nothing otherwise (the input's gradient, run as
 * this convolution of the upstream gradient: its direct kernels visit only the taps that read an output). */
static __device__ float direct_output(const float* __restrict__ x, const float* __restrict__ weight, long long n,
                                      long long k, int K, int C, int H, int W, int row, int col, int pad_top,
                                      int pad_left, int padding_counts, int flipped) {
    float sum = 0.0f;
    for (int c = 0; c < C && sum == sum; ++c) { /* a NaN sum stays NaN: no more terms once it is */
        const float* plane = x + (n * C + c) * H * W;
        const float* taps = filter_taps(weight, k, c, K, C, flipped);
        const int step = tap_step(flipped);
        for (int r = 0; r < 3; ++r) {
            const int h = row - pad_top + r;
            for (int s = 0; s < 3; ++s) {
                const int w = col - pad_left + s;
                const bool inside = h >= 0 && h < H && w >= 0 && w < W;
                if (inside) sum += taps[step * (3 * r + s)] * plane[(long long)h * W + w];
                else if (padding_counts) sum += taps[step * (3 * r + s)] * 0.0f;
            }
        }
    }
    return sum;
}

/* The outputs of tile (ti, tj) of plane (n, k) that came out NaN, summed again directly (direct_output, + shift;
 * see the top of this file). The thread reads back its own stores. */
template <int M>
static __device__ __noinline__ void direct_nan_outputs(const float* __restrict__ x, const float* __restrict__ weight,
                                                       float* __restrict__ plane, float shift, long long n, long long k,
                                                       int K, int C, int H, int W, int P, int Q, int ti, int tj,
                                                       int pad_top, int pad_left, int padding_counts, int flipped) {
    for (int p = 0; p < M && M * ti + p < P; ++p) {
        for (int q = 0; q < M && M * tj + q < Q; ++q) {
            float* out = plane + (long long)(M * ti + p) * Q + M * tj + q;
            if (*out == *out) continue;
            *out = direct_output(x, weight, n, k, K, C, H, W, M * ti + p, M * tj + q, pad_top, pad_left,
                                 padding_counts, flipped) + shift;
        }
    }
}

/* y = A^T M A (+ bias) for every (k, tile t), cut to P x Q: thread per (k, t) over K * T. A thread that wrote a
 * NaN goes over its tiles again, after the transform's loop, and sums their NaN outputs again directly from x
 * (N, C, H, W) and the filters (filter_taps; direct_nan_outputs, not inlined): called within the loop, it took
 * that loop from 504 to 725 instructions on sm_90 (546 so). */
template <int M>
__device__ void output_transform(const float* __restrict__ Mt, const float* __restrict__ bias, float* __restrict__ y,
                                 int has_bias, int N, int K, int P, int Q, int tiles_h, int tiles_w,
                                 const float* __restrict__ x, const float* __restrict__ weight, int C, int H, int W,
                                 int pad_top, int pad_left, int padding_counts, int flipped) {
    constexpr int A = Winograd<M>::A;
    const long long T = (long long)N * tiles_h * tiles_w, total = (long long)K * T;
    bool any_nan = false;
    for (long long i = first_index(); i < total; i += grid_threads()) {
        const long long k = i / T, t = i - k * T;
        int ti, tj;
        const long long n = winograd_tile(t, tiles_h, tiles_w, ti, tj);
        float rows[M][A]; /* rows[p][beta] = (A^T M)[p][beta] */
        for (int beta = 0; beta < A; ++beta) {
            float m[A], out[M];
            for (int alpha = 0; alpha < A; ++alpha) m[alpha] = Mt[((long long)(A * alpha + beta) * K + k) * T + t];
            Winograd<M>::at(m, out);
            for (int p = 0; p < M; ++p) rows[p][beta] = out[p];
        }
        const float shift = has_bias ? bias[k] : 0.0f;
        float* plane = y + (n * K + k) * P * Q;
        for (int p = 0; p < M && M * ti + p < P; ++p) {
            float out[M];
            Winograd<M>::at(rows[p], out);
            for (int q = 0; q < M && M * tj + q < Q; ++q) {
                const float value = out[q] + shift;
                plane[(long long)(M * ti + p) * Q + M * tj + q] = value;
                any_nan |= value != value;
            }
        }
    }
    if (!any_nan) return;
    for (long long i = first_index(); i < total; i += grid_threads()) { /* the thread's tiles again, for their NaNs */
        const long long k = i / T, t = i - k * T;
        int ti, tj;
        const long long n = winograd_tile(t, tiles_h, tiles_w, ti, tj);
        direct_nan_outputs<M>(x, weight, y + (n * K + k) * P * Q, has_bias ? bias[k] : 0.0f, n, k, K, C, H, W, P, Q,
                              ti, tj, pad_top, pad_left, padding_counts, flipped);
    }
}

/* dM = A dY A^T for every (k, tile t), outputs past P x Q counting as 0: thread per (k, t). */
template <int M>
__device__ void grad_transform(const float* __restrict__ grad_y, float* __restrict__ grad_M, int N, int K, int P,
                               int Q, int tiles_h, int tiles_w) {
    constexpr int A = Winograd<M>::A;
    const long long T = (long long)N * tiles_h * tiles_w, total = (long long)K * T;
    for (long long i = first_index(); i < total; i += grid_threads()) {
        const long long k = i / T, t = i - k * T;
        int ti, tj;
        const long long n = winograd_tile(t, tiles_h, tiles_w, ti, tj);
        const float* plane = grad_y + (n * K + k) * P * Q;
        float rows[M][A]; /* rows[p] = A along the tile's output row p */
        for (int p = 0; p < M; ++p) {
            float g[M];
            for (int q = 0; q < M; ++q) {
                const int row = M * ti + p, column = M * tj + q;
                g[q] = row < P && column < Q ? plane[(long long)row * Q + column] : 0.0f;
            }
            Winograd<M>::a(g, rows[p]);
        }
        for (int beta = 0; beta < A; ++beta) {
            float column[M], out[A];
            for (int p = 0; p < M; ++p) column[p] = rows[p][beta];
            Winograd<M>::a(column, out);
            for (int alpha = 0; alpha < A; ++alpha)
                grad_M[((long long)(A * alpha + beta) * K + k) * T + t] = out[alpha];
        }
    }
}

/* The values of dweight[k, c] (9 taps) that came out NaN, summed again directly: dy[n, k, p, q] * x[n, c,
 * p - pad_top + r, q - pad_left + s] over n, p, q in that order, a tap in the padding multiplying its 0 (as the
 * direct kernels and the CPU half do). */
static __device__ __noinline__ void direct_nan_filter(const float* __restrict__ x, const float* __restrict__ grad_y,
                                                      float* __restrict__ g, long long k, long long c, int N, int C,
                                                      int H, int W, int K, int P, int Q, int pad_top, int pad_left) {
    for (int rs = 0; rs < 9; ++rs) {
        if (g[rs] == g[rs]) continue;
        const int r = rs / 3, s = rs % 3;
        float sum = 0.0f;
        for (long long n = 0; n < N; ++n) {
            const float* plane = x + (n * C + c) * H * W;
            const float* grad_plane = grad_y + (n * K + k) * P * Q;
            for (int p = 0; p < P && sum == sum; ++p) { /* a NaN sum stays NaN: no more terms once it is */
                const int h = p - pad_top + r;
                for (int q = 0; q < Q; ++q) {
                    const int w = q - pad_left + s;
                    const float value = h >= 0 && h < H && w >= 0 && w < W ? plane[(long long)h * W + w] : 0.0f;
                    sum += grad_plane[(long long)p * Q + q] * value;
                }
            }
        }
        g[rs] = sum;
    }
}

/* dweight = G^T dU G for every (k, c): thread per (k, c) over K * C. A thread that wrote a NaN goes over its
 * (k, c) again, after the loop, and sums their NaN values again directly from x (N, C, H, W) and dy (N, K, P, Q)
 * (direct_nan_filter). */
template <int M>
__device__ void filter_adjoint(const float* __restrict__ grad_U, float* __restrict__ grad_weight, int K, int C,
                               const float* __restrict__ x, const float* __restrict__ grad_y, int N, int H, int W,
                               int P, int Q, int pad_top, int pad_left) {
    constexpr int A = Winograd<M>::A;
    const long long total = (long long)K * C;
    bool any_nan = false;
    for (long long i = first_index(); i < total; i += grid_threads()) {
        float rows[3][A]; /* rows[r][beta] = (G^T dU)[r][beta] */
        for (int beta = 0; beta < A; ++beta) {
            float v[A], out[3];
            for (int alpha = 0; alpha < A; ++alpha) v[alpha] = grad_U[(long long)(A * alpha + beta) * total + i];
            Winograd<M>::gt(v, out);
            for (int r = 0; r < 3; ++r) rows[r][beta] = out[r];
        }
        float* g = grad_weight + i * 9;
        for (int r = 0; r < 3; ++r) {
            float out[3];
            Winograd<M>::gt(rows[r], out);
            for (int s = 0; s < 3; ++s) {
                g[3 * r + s] = out[s];
                any_nan |= out[s] != out[s];
            }
        }
    }
    if (!any_nan) return;
    for (long long i = first_index(); i < total; i += grid_threads()) /* the thread's (k, c) again, for their NaNs */
        direct_nan_filter(x, grad_y, grad_weight + i * 9, i / C, i % C, N, C, H, W, K, P, Q, pad_top, pad_left);
}

/* The kernels, by their C names: F(2x2, 3x3), then F(4x4, 3x3). */
extern "C" __global__ void winograd_input_transform_2(const float* __restrict__ x, float* __restrict__ V, int N,
                                                      int C, int H, int W, int pad_top, int pad_left, int tiles_h,
                                                      int tiles_w) {
    input_transform<2>(x, V, N, C, H, W, pad_top, pad_left, tiles_h, tiles_w);
}
extern "C" __global__ void winograd_filter_transform_2(const float* __restrict__ weight, float* __restrict__ U, int K,
                                                       int C, int flipped) {
    filter_transform<2>(weight, U, K, C, flipped);
}
extern "C" __global__ void winograd_output_transform_2(const float* __restrict__ Mt, const float* __restrict__ bias,
                                                       float* __restrict__ y, const float* __restrict__ x,
                                                       const float* __restrict__ weight, int has_bias, int N, int K,
                                                       int P, int Q, int tiles_h, int tiles_w, int C, int H, int W,
                                                       int pad_top, int pad_left, int padding_counts, int flipped) {
    output_transform<2>(Mt, bias, y, has_bias, N, K, P, Q, tiles_h, tiles_w, x, weight, C, H, W, pad_top, pad_left,
                         padding_counts, flipped);
}
extern "C" __global__ void winograd_grad_transform_2(const float* __restrict__ grad_y, float* __restrict__ grad_M,
                                                     int N, int K, int P, int Q, int tiles_h, int tiles_w) {
    grad_transform<2>(grad_y, grad_M, N, K, P, Q, tiles_h, tiles_w);
}
extern "C" __global__ void winograd_filter_adjoint_2(const float* __restrict__ grad_U, float* __restrict__ grad_weight,
                                                     const float* __restrict__ x, const float* __restrict__ grad_y,
                                                     int K, int C, int N, int H, int W, int P, int Q, int pad_top,
                                                     int pad_left) {
    filter_adjoint<2>(grad_U, grad_weight, K, C, x, grad_y, N, H, W, P, Q, pad_top, pad_left);
}

extern "C" __global__ void winograd_input_transform_4(const float* __restrict__ x, float* __restrict__ V, int N,
                                                      int C, int H, int W, int pad_top, int pad_left, int tiles_h,
                                                      int tiles_w) {
    input_transform<4>(x, V, N, C, H, W, pad_top, pad_left, tiles_h, tiles_w);
}
extern "C" __global__ void winograd_filter_transform_4(const float* __restrict__ weight, float* __restrict__ U, int K,
                                                       int C, int flipped) {
    filter_transform<4>(weight, U, K, C, flipped);
}
extern "C" __global__ void winograd_output_transform_4(const float* __restrict__ Mt, const float* __restrict__ bias,
                                                       float* __restrict__ y, const float* __restrict__ x,
                                                       const float* __restrict__ weight, int has_bias, int N, int K,
                                                       int P, int Q, int tiles_h, int tiles_w, int C, int H, int W,
                                                       int pad_top, int pad_left, int padding_counts, int flipped) {
    output_transform<4>(Mt, bias, y, has_bias, N, K, P, Q, tiles_h, tiles_w, x, weight, C, H, W, pad_top, pad_left,
                         padding_counts, flipped);
}
extern "C" __global__ void winograd_grad_transform_4(const float* __restrict__ grad_y, float* __restrict__ grad_M,
                                                     int N, int K, int P, int Q, int tiles_h, int tiles_w) {
    grad_transform<4>(grad_y, grad_M, N, K, P, Q, tiles_h, tiles_w);
}
extern "C" __global__ void winograd_filter_adjoint_4(const float* __restrict__ grad_U, float* __restrict__ grad_weight,
                                                     const float* __restrict__ x, const float* __restrict__ grad_y,
                                                     int K, int C, int N, int H, int W, int P, int Q, int pad_top,
                                                     int pad_left) {
    filter_adjoint<4>(grad_U, grad_weight, K, C, x, grad_y, N, H, W, P, Q, pad_top, pad_left);
}
