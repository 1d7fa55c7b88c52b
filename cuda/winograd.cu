/* winograd.cu: the transforms of Winograd's F(2x2, 3x3) for conv2d (3x3 kernel, stride 1, dilation 1,
 * one group), the kernel path "winograd" of gpucnn/ops/conv2d.py.
 *
 * Lavin and Gray, "Fast Algorithms for Convolutional Neural Networks" (2016). The output is cut into
 * tiles of 2x2 pixels; the 4x4 patch d of padded input under tile t (rows 2 ti - pad_top .. +3,
 * columns 2 tj - pad_left .. +3) and a filter g give
 *
 *     Y = A^T [ (G g G^T) * (B^T d B) ] A       (* elementwise, summed over input channels)
 *
 *     B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
 *     G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
 *     A^T = [[1, 1, 1, 0], [0, 1, -1, -1]]
 *
 * The sum over channels is 16 matrix products, one per transform point xi = 4 alpha + beta, which
 * conv2d.py runs with its own GEMM kernels as a 1x1 convolution of 16 groups:
 *
 *     M[xi] (K, T) = U[xi] (K, C) @ V[xi] (C, T),    T = N * tiles_h * tiles_w, t = (n * tiles_h + ti) * tiles_w + tj
 *
 * Layouts (C-contiguous, float32): V[(xi * C + c) * T + t] (the GEMM's input, 16 C channels of T
 * pixels), U[(xi * K + k) * C + c] (its weight, 16 K filters of C taps), M[(xi * K + k) * T + t].
 * Backward runs the adjoints: dM = A dY A^T (winograd_grad_transform), dV and dU from the GEMM's own
 * backward kernels, dx = the patches B dV B^T added back (winograd_input_adjoint, a gather: no
 * atomics) and dweight = G^T dU G (winograd_filter_adjoint).
 *
 * Ownership: one thread per (channel, tile) for the transforms, per input element for the input
 * adjoint, per (k, c) for the filter's; grid-stride loops, block (256,), any grid size. Each value is
 * computed in a fixed order, so results do not depend on the launch. The transforms only add,
 * subtract and halve: they assume finite values (inf - inf would give NaN where the direct sum gives
 * inf), and conv2d.py takes the direct kernels when the input, weight or upstream gradient is not finite.
 */
#include "common.cuh"

/* B^T applied along one axis: out[i] = sum over j of B^T[i][j] v[j]. */
static __device__ __forceinline__ void winograd_bt(const float v[4], float out[4]) {
    out[0] = v[0] - v[2];
    out[1] = v[1] + v[2];
    out[2] = v[2] - v[1];
    out[3] = v[1] - v[3];
}

/* (B^T)^T = B applied along one axis, the adjoint of winograd_bt: out[j] = sum over i of B^T[i][j] v[i]. */
static __device__ __forceinline__ float winograd_b(const float v[4], int j) {
    switch (j) {
        case 0: return v[0];
        case 1: return v[1] - v[2] + v[3];
        case 2: return v[1] + v[2] - v[0];
        default: return -v[3];
    }
}

/* V = B^T d B for every (channel c, tile t): thread per (c, t) over C * T. */
extern "C" __global__ void winograd_input_transform(const float* __restrict__ x, float* __restrict__ V, int N,
                                                    int C, int H, int W, int pad_top, int pad_left, int tiles_h,
                                                    int tiles_w) {
    const long long T = (long long)N * tiles_h * tiles_w, total = (long long)C * T;
    for (long long i = first_index(); i < total; i += grid_threads()) {
        const long long c = i / T, t = i - c * T;
        const int tj = (int)(t % tiles_w), ti = (int)((t / tiles_w) % tiles_h);
        const long long n = t / ((long long)tiles_h * tiles_w);
        const float* plane = x + (n * C + c) * H * W;
        const int h0 = 2 * ti - pad_top, w0 = 2 * tj - pad_left;
        float rows[4][4]; /* rows[a] = B^T along the patch's row a */
        for (int a = 0; a < 4; ++a) {
            const int h = h0 + a;
            float d[4];
            for (int b = 0; b < 4; ++b) {
                const int w = w0 + b;
                d[b] = h >= 0 && h < H && w >= 0 && w < W ? plane[(long long)h * W + w] : 0.0f;
            }
            winograd_bt(d, rows[a]);
        }
        for (int beta = 0; beta < 4; ++beta) {
            const float column[4] = {rows[0][beta], rows[1][beta], rows[2][beta], rows[3][beta]};
            float v[4];
            winograd_bt(column, v);
            for (int alpha = 0; alpha < 4; ++alpha) V[((long long)(4 * alpha + beta) * C + c) * T + t] = v[alpha];
        }
    }
}

/* G applied along one axis of a 3x3 filter: out[i] = sum over j of G[i][j] g[j]. */
static __device__ __forceinline__ void winograd_g(const float g[3], float out[4]) {
    const float half_outer = 0.5f * (g[0] + g[2]), half_middle = 0.5f * g[1];
    out[0] = g[0];
    out[1] = half_outer + half_middle;
    out[2] = half_outer - half_middle;
    out[3] = g[2];
}

/* U = G g G^T for every (k, c) of weight (K, C, 3, 3): thread per (k, c). */
extern "C" __global__ void winograd_filter_transform(const float* __restrict__ weight, float* __restrict__ U,
                                                     int K, int C) {
    const long long total = (long long)K * C;
    for (long long i = first_index(); i < total; i += grid_threads()) {
        const float* g = weight + i * 9;
        float rows[3][4]; /* rows[r] = G along the filter's row r */
        for (int r = 0; r < 3; ++r) winograd_g(g + 3 * r, rows[r]);
        for (int beta = 0; beta < 4; ++beta) {
            const float column[3] = {rows[0][beta], rows[1][beta], rows[2][beta]};
            float u[4];
            winograd_g(column, u);
            for (int alpha = 0; alpha < 4; ++alpha) U[(long long)(4 * alpha + beta) * total + i] = u[alpha];
        }
    }
}

/* y = A^T M A (+ bias) for every (k, tile t), cropped to P x Q: thread per (k, t) over K * T. */
extern "C" __global__ void winograd_output_transform(const float* __restrict__ M, const float* __restrict__ bias,
                                                     float* __restrict__ y, int has_bias, int N, int K, int P,
                                                     int Q, int tiles_h, int tiles_w) {
    const long long T = (long long)N * tiles_h * tiles_w, total = (long long)K * T;
    for (long long i = first_index(); i < total; i += grid_threads()) {
        const long long k = i / T, t = i - k * T;
        const int tj = (int)(t % tiles_w), ti = (int)((t / tiles_w) % tiles_h);
        const long long n = t / ((long long)tiles_h * tiles_w);
        float rows[2][4]; /* rows[a][beta] = (A^T M)[a][beta] */
        for (int beta = 0; beta < 4; ++beta) {
            float m[4];
            for (int alpha = 0; alpha < 4; ++alpha) m[alpha] = M[((long long)(4 * alpha + beta) * K + k) * T + t];
            rows[0][beta] = m[0] + m[1] + m[2];
            rows[1][beta] = m[1] - m[2] - m[3];
        }
        const float shift = has_bias ? bias[k] : 0.0f;
        float* out = y + (n * K + k) * P * Q;
        for (int a = 0; a < 2; ++a) {
            const int p = 2 * ti + a;
            if (p >= P) break;
            const float* s = rows[a];
            const float pair[2] = {s[0] + s[1] + s[2], s[1] - s[2] - s[3]};
            for (int b = 0; b < 2; ++b) {
                const int q = 2 * tj + b;
                if (q < Q) out[(long long)p * Q + q] = pair[b] + shift;
            }
        }
    }
}

/* dM = A dY A^T for every (k, tile t), outputs past P x Q counting as 0: thread per (k, t). */
extern "C" __global__ void winograd_grad_transform(const float* __restrict__ grad_y, float* __restrict__ grad_M,
                                                   int N, int K, int P, int Q, int tiles_h, int tiles_w) {
    const long long T = (long long)N * tiles_h * tiles_w, total = (long long)K * T;
    for (long long i = first_index(); i < total; i += grid_threads()) {
        const long long k = i / T, t = i - k * T;
        const int tj = (int)(t % tiles_w), ti = (int)((t / tiles_w) % tiles_h);
        const long long n = t / ((long long)tiles_h * tiles_w);
        const float* plane = grad_y + (n * K + k) * P * Q;
        float g[2][2];
        for (int a = 0; a < 2; ++a) {
            for (int b = 0; b < 2; ++b) {
                const int p = 2 * ti + a, q = 2 * tj + b;
                g[a][b] = p < P && q < Q ? plane[(long long)p * Q + q] : 0.0f;
            }
        }
        /* A applied along one axis to (v0, v1): (v0, v0 + v1, v0 - v1, -v1). */
        float rows[4][2];
        for (int b = 0; b < 2; ++b) {
            rows[0][b] = g[0][b];
            rows[1][b] = g[0][b] + g[1][b];
            rows[2][b] = g[0][b] - g[1][b];
            rows[3][b] = -g[1][b];
        }
        for (int alpha = 0; alpha < 4; ++alpha) {
            const float v0 = rows[alpha][0], v1 = rows[alpha][1];
            const float out[4] = {v0, v0 + v1, v0 - v1, -v1};
            for (int beta = 0; beta < 4; ++beta) grad_M[((long long)(4 * alpha + beta) * K + k) * T + t] = out[beta];
        }
    }
}

/* dx[n, c, h, w] = sum over the tiles whose patch holds padded pixel (h + pad_top, w + pad_left), at
 * patch position (a, b), of (B dV B^T)[a][b]: thread per input element (a gather, no atomics). A
 * padded row holds patch rows of at most two tiles (ti = row / 2 at a = row % 2, and ti - 1 at a + 2);
 * they are added in the order (ti, tj) ascending. */
extern "C" __global__ void winograd_input_adjoint(const float* __restrict__ grad_V, float* __restrict__ grad_x,
                                                  int N, int C, int H, int W, int pad_top, int pad_left,
                                                  int tiles_h, int tiles_w) {
    const long long T = (long long)N * tiles_h * tiles_w, total = (long long)N * C * H * W;
    for (long long i = first_index(); i < total; i += grid_threads()) {
        const int w = (int)(i % W), h = (int)((i / W) % H);
        const long long c = (i / ((long long)H * W)) % C, n = i / ((long long)C * H * W);
        const int row = h + pad_top, column = w + pad_left;
        float sum = 0.0f;
        for (int ti = row / 2 - 1; ti <= row / 2; ++ti) {
            if (ti < 0 || ti >= tiles_h) continue;
            for (int tj = column / 2 - 1; tj <= column / 2; ++tj) {
                if (tj < 0 || tj >= tiles_w) continue;
                const long long t = (n * tiles_h + ti) * tiles_w + tj;
                float by_alpha[4]; /* (dV B^T)[alpha][b] */
                for (int alpha = 0; alpha < 4; ++alpha) {
                    float v[4];
                    for (int beta = 0; beta < 4; ++beta) v[beta] = grad_V[((long long)(4 * alpha + beta) * C + c) * T + t];
                    by_alpha[alpha] = winograd_b(v, column - 2 * tj);
                }
                sum += winograd_b(by_alpha, row - 2 * ti);
            }
        }
        grad_x[i] = sum;
    }
}

/* G^T applied along one axis: out[j] = sum over i of G[i][j] v[i]. */
static __device__ __forceinline__ void winograd_gt(const float v[4], float out[3]) {
    const float half_sum = 0.5f * (v[1] + v[2]);
    out[0] = v[0] + half_sum;
    out[1] = 0.5f * (v[1] - v[2]);
    out[2] = half_sum + v[3];
}

/* dweight = G^T dU G for every (k, c): thread per (k, c) over K * C. */
extern "C" __global__ void winograd_filter_adjoint(const float* __restrict__ grad_U, float* __restrict__ grad_weight,
                                                   int K, int C) {
    const long long total = (long long)K * C;
    for (long long i = first_index(); i < total; i += grid_threads()) {
        float rows[3][4]; /* rows[r][beta] = (G^T dU)[r][beta] */
        for (int beta = 0; beta < 4; ++beta) {
            float v[4], out[3];
            for (int alpha = 0; alpha < 4; ++alpha) v[alpha] = grad_U[(long long)(4 * alpha + beta) * total + i];
            winograd_gt(v, out);
            for (int r = 0; r < 3; ++r) rows[r][beta] = out[r];
        }
        float* g = grad_weight + i * 9;
        for (int r = 0; r < 3; ++r) {
            float out[3];
            winograd_gt(rows[r], out);
            for (int s = 0; s < 3; ++s) g[3 * r + s] = out[s];
        }
    }
}
