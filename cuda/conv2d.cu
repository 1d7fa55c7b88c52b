/* conv2d.cu: 2-D convolution (cross-correlation, as in PyTorch) with groups, stride, asymmetric
 * padding and dilation: forward, backward-data, backward-filter (split over the batch, reduced in a
 * fixed order) and backward-bias.
 *
 * Layout: x (N, C, H, W), weight (K, C/G, R, S), bias (K,), y (N, K, P, Q); float32, C-contiguous.
 *   Cg = C/G and Kg = K/G are the channels per group g. Output pixel (p, q) of channel k reads
 *   x[n, g*Cg + c, p*stride_h - pad_top + r*dilation_h, q*stride_w - pad_left + s*dilation_w]
 *   for c < Cg, r < R, s < S; rows and columns outside the input are zero padding. Only the top
 *   and left pads enter the index math (the bottom and right pads only set P and Q).
 *
 * The three products are implicit GEMMs per group (no im2col buffer is ever written: its entries
 * are gathered from x or dy while a tile is loaded into shared memory):
 *   forward         y[k][(n,p,q)]    = sum over (c,r,s)  weight[k][(c,r,s)] * im2col[(c,r,s)][(n,p,q)]
 *   backward-data   dx[c][(n,h,w)]   = sum over (k,r,s)  weight[k][(c,r,s)] * dy(k, r, s; n, h, w)
 *                   where dy(...) is dy[n, k, p, q] for the output (p, q) whose tap (r, s) reads
 *                   (h, w), i.e. p = (h + pad_top - r*dilation_h) / stride_h when that divides
 *                   exactly and 0 <= p < P (q likewise), and 0 when there is none
 *   backward-filter dw[k][(c,r,s)]   = sum over (n,p,q)  dy[n, k, p, q] * im2col[(c,r,s)][(n,p,q)]
 *
 * Tiling (all three GEMM kernels): a block of 256 threads computes a 64 x 64 tile of the result
 *   (rows: the "M" index, an output or input channel; columns: pixels, or (c, r, s) for the
 *   filter), stepping through the reduction 16 at a time. Each step stages a 16 x 64 slice of both
 *   operands in shared memory, transposed so the reduction index is the slow one (rows padded by
 *   one float against bank conflicts); thread (tm, tn) = (tid / 16, tid % 16) then owns the 4 x 4
 *   results (tm + 16i, tn + 16j), reading a broadcast A value and consecutive B values per lane.
 *   Loads are coalesced: consecutive threads fetch consecutive pixels (x with stride stride_w,
 *   dy contiguous) or consecutive weights.
 * Launch shapes (block (256,) for all):
 *   conv2d_forward                grid (ceil(N*P*Q / 64), ceil(Kg / 64), G)
 *   conv2d_backward_data          grid (ceil(N*H*W / 64), ceil(Cg / 64), G)
 *   conv2d_backward_filter        grid (ceil(Cg*R*S / 64), ceil(Kg / 64), G * splits); split z / G
 *                                 sums N*P*Q positions [split*chunk, (split+1)*chunk) and writes
 *                                 partial[split] (K, Cg*R*S); chunk is a multiple of 16
 *   conv2d_backward_filter_reduce grid (min(ceil(K*Cg*R*S / 256), 65535),): dw = the splits' sum,
 *                                 added in split order (deterministic; skipped when splits == 1)
 *   conv2d_backward_bias          grid (K,): one block per channel, a fixed-shape tree reduction
 *   conv2d_weight_nonfinite       grid (min(ceil(K*Cg*R*S / 256), 65535),): flag = 1 when a weight is
 *                                 inf or NaN (the flag array starts at 0)
 *   conv2d_backward_data_exact    grid (min(ceil(N*C*H*W / 256), 256),), thread per input element
 *                                 (grid-stride); returns at once unless the flag is set
 * No float atomics anywhere: every result is the same on every run and in every thread order.
 *
 * Non-finite weights: the tiled backward-data multiplies a weight by the 0 that stands for "no
 * output reads this pixel through this tap", and inf * 0 is NaN where the CPU half (and PyTorch)
 * adds nothing. So both backward-data kernels are launched after conv2d_weight_nonfinite, and the
 * flag (read on the device: no host synchronisation) makes exactly one of them work: the tiled
 * GEMM for finite weights, the exact gather, which visits only the taps that exist, otherwise.
 */
#include "common.cuh"

#define CONV_THREADS 256
/* At least 3 resident blocks per SM: caps the GEMM kernels at 85 registers. With the block size
 * alone ptxas aimed at 64 and spilled (conv2d_forward on sm_70/sm_72); 80-ish registers keep the
 * 4 x 4 accumulators, both operand rows and the addressing in registers on every target. */
#define CONV_MIN_BLOCKS 3
#define TILE_M 64 /* result rows per block */
#define TILE_N 64 /* result columns per block */
#define TILE_K 16 /* reduction step */
#define TILE_PITCH (TILE_M + 1)

/* acc[i][j] += sum over the step's 16 reduction indices of a[kk][tm + 16i] * b[kk][tn + 16j]. */
static __device__ __forceinline__ void multiply_tiles(const float (*a)[TILE_PITCH], const float (*b)[TILE_PITCH],
                                                      float (*acc)[4], int tm, int tn) {
#pragma unroll
    for (int kk = 0; kk < TILE_K; ++kk) {
        float a_values[4], b_values[4];
#pragma unroll
        for (int i = 0; i < 4; ++i) a_values[i] = a[kk][tm + 16 * i];
#pragma unroll
        for (int j = 0; j < 4; ++j) b_values[j] = b[kk][tn + 16 * j];
#pragma unroll
        for (int i = 0; i < 4; ++i)
#pragma unroll
            for (int j = 0; j < 4; ++j) acc[i][j] += a_values[i] * b_values[j];
    }
}

/* Forward. Thread tid loads, per step: weights (row tid/16 + 16e, reduction index tid%16) and the
 * im2col entries (reduction index tid/64 + 4e, pixel tid%64) for e < 4. Its pixel is fixed for the
 * whole reduction, so it is decoded once; each reduction index decodes to (c, r, s). */
extern "C" __global__ void __launch_bounds__(CONV_THREADS, CONV_MIN_BLOCKS) conv2d_forward(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ y, int has_bias, int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups) {
    __shared__ float weight_tile[TILE_K][TILE_PITCH];
    __shared__ float input_tile[TILE_K][TILE_PITCH];
    const int tid = threadIdx.x, tm = tid / 16, tn = tid % 16;
    const int group = blockIdx.z, Cg = C / groups, Kg = K / groups, RS = R * S, reduction = Cg * RS;
    const long long PQ = (long long)P * Q, pixels = (long long)N * PQ, HW = (long long)H * W;
    const int m0 = blockIdx.y * TILE_M;
    const long long col0 = (long long)blockIdx.x * TILE_N;

    /* This thread's im2col column: pixel (n, p, q) and its window origin. */
    const int load_col = tid % TILE_N, load_row = tid / TILE_N;
    const long long my_pixel = col0 + load_col;
    const bool pixel_valid = my_pixel < pixels;
    const long long n = pixel_valid ? my_pixel / PQ : 0;
    const int pq = pixel_valid ? (int)(my_pixel - n * PQ) : 0;
    const int row_origin = (pq / Q) * stride_h - pad_top, col_origin = (pq % Q) * stride_w - pad_left;
    const float* x_group = x + (n * C + (long long)group * Cg) * HW;
    /* This thread's weight entries: reduction index tid % 16 of rows tid / 16 + 16e. */
    const int weight_k = tid % TILE_K, weight_m = tid / TILE_K;
    const float* weight_group = weight + ((long long)group * Kg + m0) * reduction;

    float acc[4][4] = {{0.0f}};
    for (int k0 = 0; k0 < reduction; k0 += TILE_K) {
        const int kk_w = k0 + weight_k;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int m = weight_m + 16 * e;
            weight_tile[weight_k][m] = m0 + m < Kg && kk_w < reduction
                                           ? weight_group[(long long)m * reduction + kk_w] : 0.0f;
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int row = load_row + 4 * e, kk = k0 + row;
            float value = 0.0f;
            if (pixel_valid && kk < reduction) {
                const int c = kk / RS, rs = kk - c * RS, r = rs / S, s = rs - r * S;
                const int h = row_origin + r * dilation_h, w = col_origin + s * dilation_w;
                if (h >= 0 && h < H && w >= 0 && w < W) value = x_group[c * HW + (long long)h * W + w];
            }
            input_tile[row][load_col] = value;
        }
        __syncthreads();
        multiply_tiles(weight_tile, input_tile, acc, tm, tn);
        __syncthreads();
    }

    /* Epilogue: y[n, group*Kg + m, p, q] = acc + bias; consecutive tn write consecutive pixels. */
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int m = m0 + tm + 16 * i;
        if (m >= Kg) continue;
        const long long k = (long long)group * Kg + m;
        const float add = has_bias ? bias[k] : 0.0f;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const long long pixel = col0 + tn + 16 * j;
            if (pixel >= pixels) continue;
            const long long image = pixel / PQ;
            y[(image * K + k) * PQ + (pixel - image * PQ)] = acc[i][j] + add;
        }
    }
}

/* Backward-data. Result rows: input channels c of the group; columns: input pixels (n, h, w);
 * reduction over (k, r, s) of the group. Thread tid loads weights weight[group*Kg + k, c, r, s]
 * (reduction index tid%16, channel tid/16 + 16e) and the gathered dy entries (reduction index
 * tid/64 + 4e, pixel tid%64). */
extern "C" __global__ void __launch_bounds__(CONV_THREADS, CONV_MIN_BLOCKS) conv2d_backward_data(
    const float* __restrict__ grad_y, const float* __restrict__ weight, float* __restrict__ grad_x,
    const int* __restrict__ weight_nonfinite,
    int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups) {
    if (*weight_nonfinite) return; /* the whole grid agrees: conv2d_backward_data_exact does the work */
    __shared__ float weight_tile[TILE_K][TILE_PITCH];
    __shared__ float grad_tile[TILE_K][TILE_PITCH];
    const int tid = threadIdx.x, tm = tid / 16, tn = tid % 16;
    const int group = blockIdx.z, Cg = C / groups, Kg = K / groups, RS = R * S, reduction = Kg * RS;
    const long long PQ = (long long)P * Q, HW = (long long)H * W, pixels = (long long)N * HW;
    const int m0 = blockIdx.y * TILE_M;
    const long long col0 = (long long)blockIdx.x * TILE_N;

    /* This thread's input pixel (n, h, w), shifted by the top/left padding. */
    const int load_col = tid % TILE_N, load_row = tid / TILE_N;
    const long long my_pixel = col0 + load_col;
    const bool pixel_valid = my_pixel < pixels;
    const long long n = pixel_valid ? my_pixel / HW : 0;
    const int hw = pixel_valid ? (int)(my_pixel - n * HW) : 0;
    const int h_padded = hw / W + pad_top, w_padded = hw % W + pad_left;
    const float* grad_group = grad_y + (n * K + (long long)group * Kg) * PQ;
    const int weight_k = tid % TILE_K, weight_m = tid / TILE_K;
    const float* weight_group = weight + (long long)group * Kg * Cg * RS;

    float acc[4][4] = {{0.0f}};
    for (int k0 = 0; k0 < reduction; k0 += TILE_K) {
        const int kk_w = k0 + weight_k;
        const int k_w = kk_w / RS, rs_w = kk_w - k_w * RS;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int c = m0 + weight_m + 16 * e;
            weight_tile[weight_k][weight_m + 16 * e] =
                c < Cg && kk_w < reduction ? weight_group[((long long)k_w * Cg + c) * RS + rs_w] : 0.0f;
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int row = load_row + 4 * e, kk = k0 + row;
            float value = 0.0f;
            if (pixel_valid && kk < reduction) {
                const int k = kk / RS, rs = kk - k * RS, r = rs / S, s = rs - r * S;
                const int p_times_stride = h_padded - r * dilation_h, q_times_stride = w_padded - s * dilation_w;
                if (p_times_stride >= 0 && q_times_stride >= 0 && p_times_stride % stride_h == 0 &&
                    q_times_stride % stride_w == 0) {
                    const int p = p_times_stride / stride_h, q = q_times_stride / stride_w;
                    if (p < P && q < Q) value = grad_group[k * PQ + (long long)p * Q + q];
                }
            }
            grad_tile[row][load_col] = value;
        }
        __syncthreads();
        multiply_tiles(weight_tile, grad_tile, acc, tm, tn);
        __syncthreads();
    }

#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int c = m0 + tm + 16 * i;
        if (c >= Cg) continue;
        const long long channel = (long long)group * Cg + c;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const long long pixel = col0 + tn + 16 * j;
            if (pixel >= pixels) continue;
            const long long image = pixel / HW;
            grad_x[(image * C + channel) * HW + (pixel - image * HW)] = acc[i][j];
        }
    }
}

/* flag[0] = 1 when some weight is inf or NaN (grid-stride). Every writer stores the same 1, so the
 * unsynchronised stores cannot disagree. */
extern "C" __global__ void conv2d_weight_nonfinite(const float* __restrict__ weight, long long count,
                                                   int* __restrict__ flag) {
    for (long long i = first_index(); i < count; i += grid_threads()) {
        if (!is_finite(weight[i])) *flag = 1;
    }
}

/* Backward-data for non-finite weights, gather form: thread per input element (n, channel, h, w)
 * (grid-stride). For each tap (r, s) that some output reads this pixel through (p*stride_h =
 * h + pad_top - r*dilation_h exactly, 0 <= p < P; q likewise) it sums weight * dy over the group's
 * output channels, then adds the taps in (r, s) order, as the CPU half's col2im does. Returns at
 * once when the weights are finite (conv2d_backward_data does the work). */
extern "C" __global__ void conv2d_backward_data_exact(
    const float* __restrict__ grad_y, const float* __restrict__ weight, float* __restrict__ grad_x,
    const int* __restrict__ weight_nonfinite,
    int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups) {
    if (!*weight_nonfinite) return;
    const int Cg = C / groups, Kg = K / groups, RS = R * S;
    const long long PQ = (long long)P * Q, total = (long long)N * C * H * W;
    for (long long i = first_index(); i < total; i += grid_threads()) {
        const int w = (int)(i % W), h = (int)((i / W) % H);
        const long long channel = (i / ((long long)H * W)) % C, n = i / ((long long)C * H * W);
        const int group = (int)(channel / Cg), c = (int)(channel % Cg);
        const float* grad_group = grad_y + (n * K + (long long)group * Kg) * PQ;
        const float* weight_group = weight + ((long long)group * Kg * Cg + c) * RS;
        float sum = 0.0f;
        for (int r = 0; r < R; ++r) {
            const int p_times_stride = h + pad_top - r * dilation_h;
            if (p_times_stride < 0 || p_times_stride % stride_h != 0 || p_times_stride / stride_h >= P) continue;
            for (int s = 0; s < S; ++s) {
                const int q_times_stride = w + pad_left - s * dilation_w;
                if (q_times_stride < 0 || q_times_stride % stride_w != 0 || q_times_stride / stride_w >= Q) continue;
                const long long pq = (long long)(p_times_stride / stride_h) * Q + q_times_stride / stride_w;
                const float* weight_tap = weight_group + r * S + s; /* weight[group*Kg + k, c, r, s] at k * Cg*RS */
                float tap = 0.0f;
                for (int k = 0; k < Kg; ++k) tap += weight_tap[(long long)k * Cg * RS] * grad_group[k * PQ + pq];
                sum += tap;
            }
        }
        grad_x[i] = sum;
    }
}

/* Backward-filter, one split of the reduction. Result rows: output channels k of the group;
 * columns: (c, r, s); reduction over output positions (n, p, q) in [split*chunk, (split+1)*chunk).
 * Thread tid loads, per step, position tid % 16 of dy for rows tid/16 + 16e and of im2col for
 * columns tid/16 + 16e: one (n, p, q) decode per step serves all eight loads, and consecutive
 * threads read consecutive positions. Writes partial[split][group*Kg + k][(c, r, s)]. */
extern "C" __global__ void __launch_bounds__(CONV_THREADS, CONV_MIN_BLOCKS) conv2d_backward_filter(
    const float* __restrict__ x, const float* __restrict__ grad_y, float* __restrict__ partial,
    int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups,
    long long chunk) {
    __shared__ float grad_tile[TILE_K][TILE_PITCH];
    __shared__ float input_tile[TILE_K][TILE_PITCH];
    const int tid = threadIdx.x, tm = tid / 16, tn = tid % 16;
    const int group = blockIdx.z % groups, split = blockIdx.z / groups;
    const int Cg = C / groups, Kg = K / groups, RS = R * S, columns = Cg * RS;
    const long long PQ = (long long)P * Q, HW = (long long)H * W, positions = (long long)N * PQ;
    const int m0 = blockIdx.y * TILE_M, n0 = blockIdx.x * TILE_N;
    const long long begin = split * chunk, end = min(begin + chunk, positions);

    const int load_k = tid % TILE_K, load_m = tid / TILE_K;
    /* The (c, r, s) columns this thread loads, decoded once: channel offset and tap shifts. */
    long long column_offset[4];
    int row_shift[4], col_shift[4];
    bool column_valid[4];
#pragma unroll
    for (int e = 0; e < 4; ++e) {
        const int column = n0 + load_m + 16 * e;
        column_valid[e] = column < columns;
        const int c = column_valid[e] ? column / RS : 0, rs = column_valid[e] ? column - c * RS : 0;
        column_offset[e] = ((long long)group * Cg + c) * HW;
        row_shift[e] = (rs / S) * dilation_h - pad_top;
        col_shift[e] = (rs % S) * dilation_w - pad_left;
    }
    const float* grad_group = grad_y + ((long long)group * Kg + m0) * PQ;

    float acc[4][4] = {{0.0f}};
    for (long long k0 = begin; k0 < end; k0 += TILE_K) {
        const long long position = k0 + load_k;
        const bool position_valid = position < end;
        const long long n = position_valid ? position / PQ : 0;
        const int pq = position_valid ? (int)(position - n * PQ) : 0;
        const int row = (pq / Q) * stride_h, col = (pq % Q) * stride_w;
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int m = load_m + 16 * e;
            grad_tile[load_k][m] = position_valid && m0 + m < Kg ? grad_group[(n * K + m) * PQ + pq] : 0.0f;
        }
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            float value = 0.0f;
            const int h = row + row_shift[e], w = col + col_shift[e];
            if (position_valid && column_valid[e] && h >= 0 && h < H && w >= 0 && w < W)
                value = x[n * C * HW + column_offset[e] + (long long)h * W + w];
            input_tile[load_k][load_m + 16 * e] = value;
        }
        __syncthreads();
        multiply_tiles(grad_tile, input_tile, acc, tm, tn);
        __syncthreads();
    }

    float* out = partial + (long long)split * K * columns;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int m = m0 + tm + 16 * i;
        if (m >= Kg) continue;
#pragma unroll
        for (int j = 0; j < 4; ++j) {
            const int column = n0 + tn + 16 * j;
            if (column < columns) out[((long long)group * Kg + m) * columns + column] = acc[i][j];
        }
    }
}

/* grad_weight[i] = partial[0][i] + partial[1][i] + ... in split order; thread per element i of the
 * K*Cg*R*S weight gradient (grid-stride). */
extern "C" __global__ void conv2d_backward_filter_reduce(const float* __restrict__ partial,
                                                         float* __restrict__ grad_weight, long long count,
                                                         int splits) {
    for (long long i = first_index(); i < count; i += grid_threads()) {
        float sum = partial[i];
        for (int split = 1; split < splits; ++split) sum += partial[split * count + i];
        grad_weight[i] = sum;
    }
}

/* grad_bias[k] = sum over (n, p, q) of dy[n, k, p, q]: block k; thread t sums positions t, t + 256,
 * ...; then a shared-memory tree halves the 256 partial sums (a fixed shape: deterministic). */
extern "C" __global__ void __launch_bounds__(CONV_THREADS, CONV_MIN_BLOCKS) conv2d_backward_bias(
    const float* __restrict__ grad_y, float* __restrict__ grad_bias, int N, int K, long long PQ) {
    __shared__ float partial_sums[CONV_THREADS];
    const int tid = threadIdx.x;
    const long long k = blockIdx.x, positions = (long long)N * PQ;
    float sum = 0.0f;
    for (long long position = tid; position < positions; position += CONV_THREADS) {
        const long long n = position / PQ;
        sum += grad_y[(n * K + k) * PQ + (position - n * PQ)];
    }
    partial_sums[tid] = sum;
    __syncthreads();
    for (int half = CONV_THREADS / 2; half > 0; half >>= 1) {
        if (tid < half) partial_sums[tid] += partial_sums[tid + half];
        __syncthreads();
    }
    if (tid == 0) grad_bias[k] = partial_sums[0];
}
