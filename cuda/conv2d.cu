/* conv2d.cu: 2-D convolution (cross-correlation, as in PyTorch) with groups, stride, asymmetric
 * padding and dilation: forward, backward-data, backward-filter (each with its reduction split into
 * chunks where few tiles would leave the GPU idle, the chunks' sums added in a fixed order) and
 * backward-bias.
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
 *                   exactly and 0 <= p < P (q likewise), and 0 when there is none; the tiled
 *                   kernel sums, per stride phase of (h, w), only the taps that divide exactly
 *   backward-filter dw[k][(c,r,s)]   = sum over (n,p,q)  dy[n, k, p, q] * im2col[(c,r,s)][(n,p,q)]
 *
 * Tiling (all three GEMM kernels, each built for TILE = 64 and TILE = 128, named <kernel>_64 and
 *   <kernel>_128): a block of 256 threads computes a TILE x TILE tile of the result (rows: the "M"
 *   index, an output or input channel; columns: pixels, or (c, r, s) for the filter), stepping
 *   through the reduction STEP = 1024 / TILE indices at a time (16 or 8), so that every thread
 *   loads 4 values of each operand per step. Each step stages a STEP x TILE slice of both operands
 *   in shared memory, transposed so the reduction index is the slow one (rows padded by 4 floats:
 *   16-byte aligned rows, stores spread over the banks). There are two such buffers: while the
 *   block multiplies one, its threads' loads of the next step are in flight, and one barrier per
 *   step suffices. Thread (tm, tn) = (tid / 16, tid % 16) owns MICRO x MICRO = TILE/16 squared
 *   results: rows 64h + 4tm + (0..3) and columns 64h + 4tn + (0..3) for h < TILE/64, read from
 *   shared memory four at a time (float4). Each result sums the reduction in index order, so both
 *   tiles give the same bits. The 128 tile does twice the arithmetic per shared-memory read; the
 *   64 tile wastes less on small channel counts and makes more blocks of a small problem.
 *   Loads are coalesced: consecutive threads fetch consecutive pixels (x with stride stride_w,
 *   dy contiguous) or consecutive weights. The forward and the 64 tile's backward-data write a thread's
 *   results in runs of four consecutive pixels, located from the block's first pixel without a 64-bit
 *   division (the forward's as one float4 where four divides the output plane).
 * Taps variants (conv2d_forward_taps_TILE, conv2d_backward_data_taps_TILE, TAPS_OUTER below): the same
 *   products with the reduction ordered tap by tap, channels innermost, on a weight the host has
 *   transposed so; for channel counts that 16 divides, where every step lies within one tap.
 * Split reductions: a product with few result tiles leaves most of a GPU idle, so the host may split
 *   its reduction into `splits` chunks of `chunk` indices, a multiple of 16: whole steps of either
 *   tile (each within one tap for the taps kernels), so only the reduction's own end cuts a step and
 *   the loads test against that. A block of grid z takes split z / layers (layers: the grid's z
 *   extent unsplit) and writes its partial sums to partial[split] (the result's shape; the result
 *   itself when splits == 1); a second kernel adds the splits in split order: deterministic.
 * Launch shapes (block (256,) for all):
 *   conv2d_forward[_taps]_TILE    grid (ceil(N*P*Q / TILE), ceil(Kg / TILE), G * splits): reduction over
 *                                 (c, r, s) [split*chunk, (split+1)*chunk); bias only when not split
 *   conv2d_backward_data[_taps]_TILE
 *                                 grid (ceil(N*ceil(H/stride_h)*ceil(W/stride_w) / TILE), ceil(Cg / TILE),
 *                                 G*stride_h*stride_w * splits): one z per (split, group, stride phase),
 *                                 see below; chunks of the largest phase's reduction (a phase of fewer
 *                                 taps has empty last splits, which write zeros)
 *   conv2d_backward_filter_TILE   grid (ceil(Cg*R*S / TILE), ceil(Kg / TILE), G * splits); split z / G
 *                                 sums N*P*Q positions [split*chunk, (split+1)*chunk) and writes
 *                                 partial[split] (K, Cg*R*S)
 *   conv2d_forward_pixels         grid (ceil(N*P*Q / 256), ceil(Kg / 16), G * splits): a thread an output
 *                                 pixel and 16 output channels, for reductions (a split's) of at most 160
 *                                 indices (see below); also backward-data at stride 1, as a forward of
 *                                 the upstream gradient
 *   conv2d_backward_filter_pixels grid (ceil(Cg*R*S / span), ceil(Kg / 16), G * splits): a thread a column
 *                                 (c, r, s) and 16 output channels, for Kg of 32 or fewer (see below)
 *   conv2d_sum_splits             grid (min(ceil(count * lanes / 256), 65535),): the result = the splits' sum
 *                                 (+ bias for the forward); launched only when splits > 1
 *   conv2d_backward_bias          grid (K,): one block per channel, a fixed-shape tree reduction
 *   conv2d_transpose_weight       grid (min(ceil(count / 256), 65535),), thread per element of the taps
 *                                 kernels' weight (grid-stride)
 *   conv2d_backward_data_exact    grid (min(ceil(items / 256), 65535),), thread per gather item: up to 4
 *                                 channels of a group at one input pixel (gather_items; grid-stride)
 * No float atomics anywhere: every result is the same on every run and in every thread order.
 *
 * Non-finite weights: the tiled backward-data multiplies a weight by the 0 that stands for "no
 * output reads this pixel through this tap", and inf * 0 is NaN where the CPU half (and PyTorch)
 * adds nothing. That wrong value is always NaN, so each thread tests its results before it writes them
 * and, where one is NaN, sums its NaN results again, exactly: the same terms of its chunk in the same
 * order, skipping the taps that do not exist (a NaN result that is right, from a NaN weight or dy or inf - inf, comes
 * out NaN again). With finite weights and gradients this costs a test per result, and a product in
 * splits gets exact partial sums, which conv2d_sum_splits adds. No flag, no extra launch.
 * With few input channels per group (Cg <= 8: an RGB stem) the host launches the exact gather,
 * conv2d_backward_data_exact, instead: the tiled kernel would spend most of its 64 rows on channels
 * that do not exist. It does so too where an axis has both a stride and a dilation above 1, which the
 * phases of the tiled kernel do not cover.
 */
#include "common.cuh"

#define CONV_THREADS 256

template <int TILE> struct Tiling {
    static constexpr int STEP = 1024 / TILE;           /* reduction indices per step: 16 or 8 */
    static constexpr int PITCH = TILE + 4;             /* floats per shared row */
    static constexpr int MICRO = TILE / 16;            /* results per thread along each side: 4 or 8 */
    static constexpr int BUFFER = STEP * PITCH;        /* floats of one staged operand slice */
    static constexpr int M_STRIDE = CONV_THREADS / STEP; /* rows between a thread's loads along M: 16, 32 */
    static constexpr int K_STRIDE = CONV_THREADS / TILE; /* reduction rows between its pixel loads: 4, 2 */
};

/* Row (or column) of a block's tile that a thread's i-th result lies on (tm or tn as `lane`). */
static __device__ __forceinline__ int micro_offset(int lane, int i) { return 64 * (i / 4) + 4 * lane + i % 4; }

/* acc[i][j] += sum over the step's reduction indices kk of a[kk][micro_offset(tm, i)] * b[kk][micro_offset(tn, j)]. */
template <int TILE>
static __device__ __forceinline__ void multiply_tiles(const float* a, const float* b,
                                                      float (&acc)[Tiling<TILE>::MICRO][Tiling<TILE>::MICRO],
                                                      int tm, int tn) {
    typedef Tiling<TILE> T;
#pragma unroll
    for (int kk = 0; kk < T::STEP; ++kk) {
        float a_values[T::MICRO], b_values[T::MICRO];
#pragma unroll
        for (int h = 0; h < T::MICRO / 4; ++h) {
            const float4 a4 = *reinterpret_cast<const float4*>(a + kk * T::PITCH + 64 * h + 4 * tm);
            const float4 b4 = *reinterpret_cast<const float4*>(b + kk * T::PITCH + 64 * h + 4 * tn);
            a_values[4 * h] = a4.x, a_values[4 * h + 1] = a4.y, a_values[4 * h + 2] = a4.z, a_values[4 * h + 3] = a4.w;
            b_values[4 * h] = b4.x, b_values[4 * h + 1] = b4.y, b_values[4 * h + 2] = b4.z, b_values[4 * h + 3] = b4.w;
        }
#pragma unroll
        for (int i = 0; i < T::MICRO; ++i)
#pragma unroll
            for (int j = 0; j < T::MICRO; ++j) acc[i][j] += a_values[i] * b_values[j];
    }
}

/* The steps of one GEMM over reduction indices [begin, end): load(k0) fetches a step's operands
 * into the thread's registers, store(buffer) writes them to shared buffer 0 or 1, multiply(buffer)
 * accumulates that buffer. The next step's loads are issued before the current step's products.
 * A thread stores into one buffer only after the barrier that all threads pass once they have
 * finished multiplying the step that last used it. */
template <class Load, class Store, class Multiply>
static __device__ __forceinline__ void run_steps(long long begin, long long end, int step, Load load, Store store,
                                                 Multiply multiply) {
    if (begin >= end) return;
    load(begin);
    int buffer = 0;
    for (long long k0 = begin; k0 < end; k0 += step, buffer ^= 1) {
        store(buffer);
        __syncthreads();
        if (k0 + step < end) load(k0 + step);
        multiply(buffer);
    }
}

/* Forward. Thread tid loads, per step: weights (row tid/STEP + M_STRIDE*e, reduction index
 * tid%STEP) and the im2col entries (reduction index tid/TILE + K_STRIDE*e, pixel tid%TILE) for
 * e < 4. Its pixel is fixed for the whole reduction, so it is decoded once; each reduction index
 * decodes to (c, r, s) by common.cuh's divide (on sm_90 that cut a step of the 128 tile from 927
 * instructions, 512 of them multiply-adds, to 757).
 * TAPS_OUTER: the reduction runs over (r, s, c) instead, channels innermost, on the weight laid out
 * (K, R, S, Cg) (the host transposes it; a 1x1 kernel's is the weight itself). The host takes it where
 * TAP_STEP_CHANNELS divides Cg, so that each step lies within one tap: the tap, the window position
 * and its bounds test are decoded once per step, and a thread's four entries are four channels of one
 * input pixel (757 -> 676 instructions a step for the 128 tile on sm_90, 504 -> 421 for the 64 tile). */
template <int TILE, bool TAPS_OUTER>
static __device__ __forceinline__ void conv2d_forward_tiles(
    const float* __restrict__ x, const float* __restrict__ weight,
    const float* __restrict__ bias, float* __restrict__ y, int has_bias, int N, int C, int H, int W, int K, int R,
    int S, int P, int Q, int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w,
    int groups, int chunk) {
    typedef Tiling<TILE> T;
    __shared__ __align__(16) float weight_tiles[2 * T::BUFFER];
    __shared__ __align__(16) float input_tiles[2 * T::BUFFER];
    const int tid = threadIdx.x, tm = tid / 16, tn = tid % 16;
    const int group = blockIdx.z % groups, split = blockIdx.z / groups;
    const int Cg = C / groups, Kg = K / groups, RS = R * S, reduction = Cg * RS;
    const int begin = split * chunk, end = min(begin + chunk, reduction);
    const long long PQ = (long long)P * Q, pixels = (long long)N * PQ, HW = (long long)H * W;
    y += split * pixels * K; /* the split's partial sums: y itself when the reduction is not split */
    const int m0 = blockIdx.y * TILE;
    const long long col0 = (long long)blockIdx.x * TILE;

    /* This thread's im2col column: pixel (n, p, q) and its window origin. */
    const int load_col = tid % TILE, load_row = tid / TILE;
    const long long my_pixel = col0 + load_col;
    const bool pixel_valid = my_pixel < pixels;
    const long long n = pixel_valid ? my_pixel / PQ : 0;
    const int pq = pixel_valid ? (int)(my_pixel - n * PQ) : 0;
    const int row_origin = (pq / Q) * stride_h - pad_top, col_origin = (pq % Q) * stride_w - pad_left;
    const float* x_group = x + (n * C + (long long)group * Cg) * HW;
    const int weight_k = tid % T::STEP, weight_m = tid / T::STEP;
    const float* weight_group = weight + ((long long)group * Kg + m0) * reduction;
    /* Worked out once a block, by its first thread: the reduction's divisors (each a 64-bit division) and,
     * for the epilogue, the block's first pixel as image and plane offset (with a division in the
     * epilogue, where the results hold 64 registers, the 128 tile spilled). */
    __shared__ Divisor block_divisors[3];
    __shared__ int block_image, block_pq;
    if (tid == 0) {
        block_divisors[0] = make_divisor(RS), block_divisors[1] = make_divisor(S), block_divisors[2] = make_divisor(Cg);
        const long long image = col0 / PQ;
        block_image = (int)image, block_pq = (int)(col0 - image * PQ);
    }
    __syncthreads();
    const Divisor by_RS = block_divisors[0], by_S = block_divisors[1], by_Cg = block_divisors[2];

    float weight_values[4], input_values[4];
    float acc[T::MICRO][T::MICRO] = {{0.0f}};
    run_steps(begin, end, T::STEP,
        [&](long long k0) {
            const int kk_w = (int)k0 + weight_k;
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int m = weight_m + T::M_STRIDE * e;
                weight_values[e] =
                    m0 + m < Kg && kk_w < reduction ? weight_group[(long long)m * reduction + kk_w] : 0.0f;
            }
            if (TAPS_OUTER) { /* k0 is the same for the whole block: so are the tap and the first channel */
                const int tap = divide((int)k0, by_Cg), c = (int)k0 - tap * Cg + load_row;
                const int r = divide(tap, by_S), s = tap - r * S;
                const int h = row_origin + r * dilation_h, w = col_origin + s * dilation_w;
                const bool inside = pixel_valid && h >= 0 && h < H && w >= 0 && w < W;
                const long long at = c * HW + (long long)h * W + w;
#pragma unroll
                for (int e = 0; e < 4; ++e) input_values[e] = inside ? x_group[at + T::K_STRIDE * e * HW] : 0.0f;
            } else {
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int kk = (int)k0 + load_row + T::K_STRIDE * e;
                    float value = 0.0f;
                    if (pixel_valid && kk < reduction) {
                        const int c = divide(kk, by_RS), rs = kk - c * RS, r = divide(rs, by_S), s = rs - r * S;
                        const int h = row_origin + r * dilation_h, w = col_origin + s * dilation_w;
                        if (h >= 0 && h < H && w >= 0 && w < W) value = x_group[c * HW + (long long)h * W + w];
                    }
                    input_values[e] = value;
                }
            }
        },
        [&](int buffer) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                weight_tiles[buffer * T::BUFFER + weight_k * T::PITCH + weight_m + T::M_STRIDE * e] = weight_values[e];
                input_tiles[buffer * T::BUFFER + (load_row + T::K_STRIDE * e) * T::PITCH + load_col] = input_values[e];
            }
        },
        [&](int buffer) {
            multiply_tiles<TILE>(weight_tiles + buffer * T::BUFFER, input_tiles + buffer * T::BUFFER, acc, tm, tn);
        });

    /* Epilogue: y[n, group*Kg + m, p, q] = acc + bias; consecutive tn write consecutive pixels. A thread's
     * columns are MICRO/4 runs of four consecutive pixels (micro_offset). A run's first pixel follows from
     * the block's with at most a 32-bit division (none where both lie in one image), and the next three
     * by increments (a run crosses into the next image where 4 does not divide PQ). Where 4
     * divides PQ, a run lies in one image, 16-byte aligned, and is written as one float4 a row. (Divided
     * in 64 bits for each result, the 128 tile's epilogue took 64 divisions a thread.) */
    const bool whole_runs = PQ % 4 == 0 && is_aligned_16(y);
#pragma unroll
    for (int j0 = 0; j0 < T::MICRO; j0 += 4) {
        const long long first = col0 + micro_offset(tn, j0);
        unsigned int first_pq = (unsigned int)block_pq + micro_offset(tn, j0); /* below PQ + TILE */
        long long first_image = block_image;
        if (first_pq >= PQ) first_image += first_pq / (unsigned int)PQ, first_pq %= (unsigned int)PQ;
#pragma unroll
        for (int i = 0; i < T::MICRO; ++i) {
            const int m = m0 + micro_offset(tm, i);
            if (m >= Kg) continue;
            const long long k = (long long)group * Kg + m;
            const float add = has_bias ? bias[k] : 0.0f;
            if (whole_runs) {
                /* indexed by float4: a float4 stored at a float's address came out as four scalar stores */
                if (first < pixels)
                    reinterpret_cast<float4*>(y + (first_image * K + k) * PQ)[first_pq >> 2] = make_float4(
                        acc[i][j0] + add, acc[i][j0 + 1] + add, acc[i][j0 + 2] + add, acc[i][j0 + 3] + add);
                continue;
            }
            long long image = first_image;
            unsigned int pq = first_pq;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                if (first + j < pixels) y[(image * K + k) * PQ + pq] = acc[i][j0 + j] + add;
                if (++pq == PQ) pq = 0, ++image;
            }
        }
    }
}

/* A backward-data block's split, group and stride phase (from blockIdx.z; see below): the phase's first
 * input row and column, its columns and pixels a plane, its taps along the columns and in all (each count a
 * ceiling of a quotient above -1: 0 where the phase has none), the output row and column that its first
 * pixel reads through tap (0, 0), that tap's r*S + s, and the split's reduction indices [begin, end). */
struct DataPhase {
    int split, group, first_h, first_w, cols, plane, taps_w, taps, p_base, q_base, first_tap, begin, end;
};

static __device__ __forceinline__ DataPhase data_phase(int C, int H, int W, int K, int R, int S, int stride_h,
                                                       int stride_w, int pad_top, int pad_left, int groups, int chunk) {
    DataPhase d;
    const int phases = stride_h * stride_w, layers = groups * phases;
    d.split = blockIdx.z / layers;
    const int layer = blockIdx.z - d.split * layers;
    d.group = layer / phases;
    const int phase = layer - d.group * phases, phase_h = phase / stride_w, phase_w = phase - phase_h * stride_w;
    d.first_h = ((phase_h - pad_top) % stride_h + stride_h) % stride_h;
    d.first_w = ((phase_w - pad_left) % stride_w + stride_w) % stride_w;
    const int rows = (H - d.first_h + stride_h - 1) / stride_h;
    d.cols = (W - d.first_w + stride_w - 1) / stride_w;
    d.plane = rows * d.cols; /* a plane's values fit an int (as in the kernels' loops) */
    d.taps_w = (S - phase_w + stride_w - 1) / stride_w;
    d.taps = (R - phase_h + stride_h - 1) / stride_h * d.taps_w;
    d.p_base = (d.first_h + pad_top - phase_h) / stride_h;
    d.q_base = (d.first_w + pad_left - phase_w) / stride_w;
    d.first_tap = phase_h * S + phase_w;
    d.begin = d.split * chunk;
    d.end = min(d.begin + chunk, K / groups * d.taps); /* empty for a phase of fewer taps */
    return d;
}

/* The tiled backward-data's results of this thread that came out NaN, summed again, exactly (see
 * "Non-finite weights" at the top): the same terms of the block's chunk in the same order, skipping the
 * taps that read no output. Called once a thread has written a NaN. Not inlined, it works the block's
 * phase out anew from the kernel's arguments: inlined, it changed the tiled kernels' registers, and the
 * taps kernel's 64 tile took 12-19 more instructions a reduction step on sm_75 to sm_90. grad_x: the
 * split's partial sums, as the tiled kernel writes them; the thread reads back its own stores. */
template <int TILE, bool TAPS_OUTER>
static __device__ __noinline__ void sum_nan_results_again(
    const float* __restrict__ grad_y, const float* __restrict__ weight, float* __restrict__ grad_x, int N, int C,
    int H, int W, int K, int R, int S, int P, int Q, int stride_h, int stride_w, int pad_top, int pad_left,
    int dilation_h, int dilation_w, int groups, int chunk) {
    const DataPhase phase = data_phase(C, H, W, K, R, S, stride_h, stride_w, pad_top, pad_left, groups, chunk);
    const int tm = threadIdx.x / 16, tn = threadIdx.x % 16, m0 = blockIdx.y * TILE;
    const long long col0 = (long long)blockIdx.x * TILE, pixels = (long long)N * phase.plane;
    const int Cg = C / groups, Kg = K / groups, RS = R * S, PQ = P * Q, group = phase.group;
    for (int i = 0; i < TILE / 16; ++i) {
        const int c = m0 + micro_offset(tm, i);
        if (c >= Cg) continue;
        for (int j = 0; j < TILE / 16; ++j) {
            const long long pixel = col0 + micro_offset(tn, j);
            if (pixel >= pixels) continue;
            const long long image = pixel / phase.plane;
            const int at = (int)(pixel - image * phase.plane), row = at / phase.cols, col = at % phase.cols;
            float* out = grad_x + (image * C + (long long)group * Cg + c) * ((long long)H * W) +
                         (phase.first_h + row * stride_h) * W + phase.first_w + col * stride_w;
            if (*out == *out) continue;
            const float* grad_image = grad_y + (image * K + (long long)group * Kg) * (long long)PQ;
            float sum = 0.0f;
            for (int kk = phase.begin; kk < phase.end; ++kk) {
                int k, t;
                if (TAPS_OUTER) t = kk / Kg, k = kk - t * Kg;
                else k = kk / phase.taps, t = kk - k * phase.taps;
                const int r2 = t / phase.taps_w, s2 = t - r2 * phase.taps_w;
                const int p = phase.p_base + row - r2 * dilation_h, q = phase.q_base + col - s2 * dilation_w;
                if (p < 0 || p >= P || q < 0 || q >= Q) continue;
                const int rs = phase.first_tap + r2 * stride_h * S + s2 * stride_w;
                const long long w_at = TAPS_OUTER ? (((long long)group * Cg + c) * RS + rs) * Kg + k
                                                  : (((long long)group * Kg + k) * Cg + c) * RS + rs;
                sum += weight[w_at] * grad_image[(long long)k * PQ + p * Q + q];
            }
            *out = sum;
        }
    }
}

/* Backward-data, by stride phases. The input pixels whose padded row h + pad_top is a modulo stride_h
 * (and column likewise b) are read only through the kernel rows r = a + r2*stride_h (columns
 * s = b + s2*stride_w), by output row p = p_base + i - r2 for the phase's i-th row: each phase is a
 * stride-1 correlation of dy with its own taps, and the kernel visits only those, where summing over
 * every tap would spend stride_h*stride_w times the work on zeros (4 times for 3x3 at stride 2). A
 * block takes one phase of one group (blockIdx.z = group * stride_h*stride_w + phase) and TILE of
 * its pixels (n, i, j), i.e. input pixel (n, first_h + i*stride_h, first_w + j*stride_w). A phase
 * that no tap reads (a 1x1 kernel at stride 2) sums nothing and writes zeros. At stride 1 the one
 * phase holds every pixel and every tap, and the row step per tap is dilation_h: so along each axis
 * the stride or the dilation must be 1 (the host sends the rest to conv2d_backward_data_exact).
 * Result rows: input channels c of the group; columns: the phase's pixels; reduction over (k, r2, s2),
 * decoded by common.cuh's divide.
 * Thread tid loads weights weight[group*Kg + k, c, r, s] (reduction index tid%STEP, channel
 * tid/STEP + M_STRIDE*e) and the gathered dy entries (reduction index tid/TILE + K_STRIDE*e, pixel
 * tid%TILE: consecutive threads read consecutive q).
 * TAPS_OUTER: the reduction runs over (r2, s2, k), output channels innermost, on the weight laid out
 * (G, Cg, R, S, Kg) (the host transposes it), where TAP_STEP_CHANNELS divides Kg: as in the forward,
 * each step lies within one tap, decoded once per step with its output position and bounds test. */
template <int TILE, bool TAPS_OUTER>
static __device__ __forceinline__ void conv2d_backward_data_tiles(
    const float* __restrict__ grad_y, const float* __restrict__ weight,
    float* __restrict__ grad_x, int N, int C, int H, int W, int K, int R, int S, int P, int Q, int stride_h,
    int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups, int chunk) {
    typedef Tiling<TILE> T;
    __shared__ __align__(16) float weight_tiles[2 * T::BUFFER];
    __shared__ __align__(16) float grad_tiles[2 * T::BUFFER];
    const int tid = threadIdx.x, tm = tid / 16, tn = tid % 16;
    const DataPhase phase = data_phase(C, H, W, K, R, S, stride_h, stride_w, pad_top, pad_left, groups, chunk);
    const int split = phase.split, group = phase.group, first_h = phase.first_h, first_w = phase.first_w;
    const int cols = phase.cols, taps_w = phase.taps_w, p_base = phase.p_base, q_base = phase.q_base;
    const int taps = phase.taps, begin = phase.begin, end = phase.end, plane = phase.plane;
    const int Cg = C / groups, Kg = K / groups, PQ = P * Q, reduction = Kg * taps;
    const long long pixels = (long long)N * plane;
    const int m0 = blockIdx.y * TILE;
    const long long col0 = (long long)blockIdx.x * TILE;
    if (col0 >= pixels) return; /* the grid covers the largest phase: the whole block leaves at once */
    /* The 64 tile's epilogue takes the block's first pixel as image and offset in the phase's plane (see
     * the forward's). */
    const bool RUNS = TILE == 64;
    __shared__ int block_image, block_at;
    if (RUNS && tid == 0) {
        const long long image = col0 / plane;
        block_image = (int)image, block_at = (int)(col0 - image * plane);
    }
    grad_x += split * (long long)N * C * H * W; /* the split's partial sums: grad_x itself when not split */

    /* This thread's pixel (n, i, j) of the phase, as the output row and column of its first tap. */
    const int load_col = tid % TILE, load_row = tid / TILE;
    const long long my_pixel = col0 + load_col;
    const bool pixel_valid = my_pixel < pixels;
    const long long n = pixel_valid ? my_pixel / plane : 0;
    const int ij = pixel_valid ? (int)(my_pixel - n * plane) : 0;
    const int p0 = p_base + ij / cols, q0 = q_base + ij % cols;
    const float* grad_group = grad_y + (n * K + (long long)group * Kg) * (long long)PQ;
    const int weight_k = tid % T::STEP, weight_m = tid / T::STEP;
    const int RS = R * S;
    const float* weight_group = weight + (long long)group * Kg * Cg * RS;
    const int first_tap = phase.first_tap, tap_row_step = stride_h * S; /* r*S + s of tap (0, 0), per r2 */
    const Divisor by_taps = make_divisor(max(taps, 1)), by_taps_w = make_divisor(max(taps_w, 1));
    const Divisor by_Kg = make_divisor(Kg);

    float weight_values[4], grad_values[4];
    float acc[T::MICRO][T::MICRO] = {{0.0f}};
    run_steps(begin, end, T::STEP,
        [&](long long k0) {
            if (TAPS_OUTER) { /* weight is (G, Cg, R, S, Kg); k0 and so the tap are the same for the whole block */
                const int t = divide((int)k0, by_Kg), k = (int)k0 - t * Kg, r2 = divide(t, by_taps_w);
                const int s2 = t - r2 * taps_w, rs = first_tap + r2 * tap_row_step + s2 * stride_w;
                const float* weight_tap = weight + ((long long)group * Cg * RS + rs) * Kg + k + weight_k;
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int c = m0 + weight_m + T::M_STRIDE * e;
                    weight_values[e] = c < Cg ? weight_tap[(long long)c * RS * Kg] : 0.0f;
                }
                const int p = p0 - r2 * dilation_h, q = q0 - s2 * dilation_w;
                const bool inside = pixel_valid && p >= 0 && p < P && q >= 0 && q < Q;
                const long long at = (long long)(k + load_row) * PQ + p * Q + q;
#pragma unroll
                for (int e = 0; e < 4; ++e)
                    grad_values[e] = inside ? grad_group[at + (long long)T::K_STRIDE * e * PQ] : 0.0f;
            } else {
                const int kk_w = (int)k0 + weight_k;
                const int k_w = divide(kk_w, by_taps), t_w = kk_w - k_w * taps;
                const int r2_w = divide(t_w, by_taps_w), s2_w = t_w - r2_w * taps_w;
                const int rs_w = first_tap + r2_w * tap_row_step + s2_w * stride_w;
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int c = m0 + weight_m + T::M_STRIDE * e;
                    weight_values[e] =
                        c < Cg && kk_w < reduction ? weight_group[((long long)k_w * Cg + c) * RS + rs_w] : 0.0f;
                }
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int kk = (int)k0 + load_row + T::K_STRIDE * e;
                    float value = 0.0f;
                    if (pixel_valid && kk < reduction) {
                        const int k = divide(kk, by_taps), t = kk - k * taps;
                        const int r2 = divide(t, by_taps_w), s2 = t - r2 * taps_w;
                        const int p = p0 - r2 * dilation_h, q = q0 - s2 * dilation_w;
                        if (p >= 0 && p < P && q >= 0 && q < Q) value = grad_group[(long long)k * PQ + p * Q + q];
                    }
                    grad_values[e] = value;
                }
            }
        },
        [&](int buffer) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                weight_tiles[buffer * T::BUFFER + weight_k * T::PITCH + weight_m + T::M_STRIDE * e] = weight_values[e];
                grad_tiles[buffer * T::BUFFER + (load_row + T::K_STRIDE * e) * T::PITCH + load_col] = grad_values[e];
            }
        },
        [&](int buffer) {
            multiply_tiles<TILE>(weight_tiles + buffer * T::BUFFER, grad_tiles + buffer * T::BUFFER, acc, tm, tn);
        });

    /* The results; where one is NaN, the thread's NaNs summed again, exactly (see "Non-finite weights"). The
     * test before the stores, in a loop of its own: within their loop it cost the taps kernel's 64 tile 17-20
     * instructions a reduction step on sm_75, sm_86 and sm_90 (the registers allotted differently). */
    bool any_nan = false;
#pragma unroll
    for (int i = 0; i < T::MICRO; ++i)
#pragma unroll
        for (int j = 0; j < T::MICRO; ++j) any_nan |= acc[i][j] != acc[i][j];
    /* RUNS (the 64 tile), as the forward's epilogue: a run of four consecutive pixels of the phase
     * (micro_offset) follows from the block's first pixel, its next three pixels by increments. The 128
     * tile divides each result's pixel in 64 bits: with runs (and with 32-bit divisions from the block's
     * first pixel), its taps kernel spilled on sm_86 to sm_90, and took 16-30 more instructions a step. */
    const long long HW = (long long)H * W;
    if (RUNS) {
        __syncthreads(); /* block_image and block_at written (a split of no steps passes no barrier before) */
#pragma unroll
        for (int j0 = 0; j0 < T::MICRO; j0 += 4) {
            const long long first = col0 + micro_offset(tn, j0);
            unsigned int first_at = (unsigned int)block_at + micro_offset(tn, j0); /* below plane + TILE */
            int image = block_image;
            if (first_at >= (unsigned int)plane)
                image += first_at / (unsigned int)plane, first_at %= (unsigned int)plane;
            /* the run's pixels: image, and offset in an input plane */
            int images[4], offsets[4];
            int at = (int)first_at, row = at / cols, col = at - row * cols;
#pragma unroll
            for (int j = 0; j < 4; ++j) {
                images[j] = image, offsets[j] = (first_h + row * stride_h) * W + first_w + col * stride_w;
                if (++col == cols) col = 0, ++row;
                if (++at == plane) at = 0, row = 0, ++image;
            }
#pragma unroll
            for (int i = 0; i < T::MICRO; ++i) {
                const int c = m0 + micro_offset(tm, i);
                if (c >= Cg) continue;
                float* grad_c = grad_x + ((long long)group * Cg + c) * HW;
#pragma unroll
                for (int j = 0; j < 4; ++j)
                    if (first + j < pixels) grad_c[(long long)images[j] * C * HW + offsets[j]] = acc[i][j0 + j];
            }
        }
    } else {
#pragma unroll
        for (int i = 0; i < T::MICRO; ++i) {
            const int c = m0 + micro_offset(tm, i);
            if (c >= Cg) continue;
            const long long channel = (long long)group * Cg + c;
#pragma unroll
            for (int j = 0; j < T::MICRO; ++j) {
                const long long pixel = col0 + micro_offset(tn, j);
                if (pixel >= pixels) continue;
                const long long image = pixel / plane;
                const int at = (int)(pixel - image * plane);
                const int h = first_h + at / cols * stride_h, w = first_w + at % cols * stride_w;
                grad_x[(image * C + channel) * HW + h * W + w] = acc[i][j];
            }
        }
    }
    if (any_nan)
        sum_nan_results_again<TILE, TAPS_OUTER>(grad_y, weight, grad_x, N, C, H, W, K, R, S, P, Q, stride_h, stride_w,
                                                pad_top, pad_left, dilation_h, dilation_w, groups, chunk);
}

/* Backward-filter, one split of the reduction. Result rows: output channels k of the group;
 * columns: (c, r, s); reduction over output positions (n, p, q) in [split*chunk, (split+1)*chunk).
 * Thread tid loads, per step, position tid % STEP of dy for rows tid/STEP + M_STRIDE*e and of
 * im2col for columns tid/STEP + M_STRIDE*e: one (n, p, q) serves all eight loads, and consecutive
 * threads read consecutive positions. The 128 tile carries its position from step to step and works
 * out its columns' and rows' offsets once, before the steps (CARRIED below): that took its step from
 * 801-809 instructions, 512 of them multiply-adds, to 696-713 (sm_75 to sm_90; the 64 tile's takes
 * 546-565). Writes partial[split][group*Kg + k][(c, r, s)]. */
template <int TILE>
static __device__ __forceinline__ void conv2d_backward_filter_tiles(
    const float* __restrict__ x, const float* __restrict__ grad_y,
    float* __restrict__ partial, int N, int C, int H, int W, int K, int R, int S, int P, int Q, int stride_h,
    int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups, long long chunk) {
    typedef Tiling<TILE> T;
    __shared__ __align__(16) float grad_tiles[2 * T::BUFFER];
    __shared__ __align__(16) float input_tiles[2 * T::BUFFER];
    const int tid = threadIdx.x, tm = tid / 16, tn = tid % 16;
    const int group = blockIdx.z % groups, split = blockIdx.z / groups;
    const int Cg = C / groups, Kg = K / groups, RS = R * S, columns = Cg * RS;
    const long long PQ = (long long)P * Q, HW = (long long)H * W, positions = (long long)N * PQ;
    const int m0 = blockIdx.y * TILE, n0 = blockIdx.x * TILE;
    const long long begin = split * chunk, end = min(begin + chunk, positions);

    const int load_k = tid % T::STEP, load_m = tid / T::STEP;
    const float* grad_group = grad_y + ((long long)group * Kg + m0) * PQ;

    /* CARRIED (the 128 tile): this thread's position k0 + load_k, as image n and pixel pq of the output
     * plane, is divided once here and then carried forward by STEP after each load (run_steps loads
     * k0 = begin, begin + STEP, ... in order); its four columns' tap offsets (row and column from the
     * output pixel's (p*stride_h, q*stride_w), and in x from that pixel in channel 0 of the group) and
     * its four rows' offsets in dy are worked out once, here. The 64 tile decodes its position and
     * columns afresh at each step: its 3 blocks per SM leave it 80 registers, and kept, these spilled
     * 8-32 bytes under NVRTC for sm_53 to sm_72. */
    const bool CARRIED = TILE == 128;
    const int plane = (int)PQ; /* a plane's positions fit an int, as in the other kernels */
    const int OUTSIDE = -(1 << 30); /* tap_h of a column past the weight's: never read */
    const Divisor by_Q = make_divisor(Q);
    long long n = 0, tap_at[4], grad_row[4];
    int pq = 0, tap_h[4], tap_w[4];
    if (CARRIED) {
        n = (begin + load_k) / PQ;
        pq = (int)(begin + load_k - n * PQ);
#pragma unroll
        for (int e = 0; e < 4; ++e) {
            const int column = n0 + load_m + T::M_STRIDE * e;
            const int c = column / RS, rs = column - c * RS, r = rs / S, s = rs - r * S;
            tap_h[e] = column < columns ? r * dilation_h - pad_top : OUTSIDE;
            tap_w[e] = s * dilation_w - pad_left;
            tap_at[e] = c * HW + (long long)tap_h[e] * W + tap_w[e];
            grad_row[e] = (load_m + T::M_STRIDE * e) * PQ;
        }
    }

    float grad_values[4], input_values[4];
    float acc[T::MICRO][T::MICRO] = {{0.0f}};
    run_steps(begin, end, T::STEP,
        [&](long long k0) {
            const long long position = k0 + load_k;
            const bool position_valid = position < end;
            if (CARRIED) {
                const int p = divide(pq, by_Q), row = p * stride_h, col = (pq - p * Q) * stride_w;
                const float* grad_pixel = grad_group + n * K * PQ + pq;
                const float* x_pixel = x + (n * C + (long long)group * Cg) * HW + (long long)row * W + col;
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const bool row_valid = m0 + load_m + T::M_STRIDE * e < Kg;
                    grad_values[e] = position_valid && row_valid ? grad_pixel[grad_row[e]] : 0.0f;
                }
#pragma unroll
                for (int e = 0; e < 4; ++e) {
                    const int h = row + tap_h[e], w = col + tap_w[e];
                    input_values[e] = position_valid && tap_h[e] != OUTSIDE && h >= 0 && h < H && w >= 0 && w < W
                                          ? x_pixel[tap_at[e]] : 0.0f;
                }
                for (pq += T::STEP; pq >= plane; pq -= plane) ++n; /* the next load's position */
                return;
            }
            const long long image = position_valid ? position / PQ : 0;
            const int at = position_valid ? (int)(position - image * PQ) : 0;
            const int row = (at / Q) * stride_h, col = (at % Q) * stride_w;
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int m = load_m + T::M_STRIDE * e;
                grad_values[e] = position_valid && m0 + m < Kg ? grad_group[(image * K + m) * PQ + at] : 0.0f;
            }
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                const int column = n0 + load_m + T::M_STRIDE * e;
                const int c = column / RS, rs = column - c * RS, r = rs / S, s = rs - r * S;
                const int h = row + r * dilation_h - pad_top, w = col + s * dilation_w - pad_left;
                float value = 0.0f;
                if (position_valid && column < columns && h >= 0 && h < H && w >= 0 && w < W)
                    value = x[(image * C + (long long)group * Cg + c) * HW + (long long)h * W + w];
                input_values[e] = value;
            }
        },
        [&](int buffer) {
#pragma unroll
            for (int e = 0; e < 4; ++e) {
                grad_tiles[buffer * T::BUFFER + load_k * T::PITCH + load_m + T::M_STRIDE * e] = grad_values[e];
                input_tiles[buffer * T::BUFFER + load_k * T::PITCH + load_m + T::M_STRIDE * e] = input_values[e];
            }
        },
        [&](int buffer) {
            multiply_tiles<TILE>(grad_tiles + buffer * T::BUFFER, input_tiles + buffer * T::BUFFER, acc, tm, tn);
        });

    float* out = partial + (long long)split * K * columns;
#pragma unroll
    for (int i = 0; i < T::MICRO; ++i) {
        const int m = m0 + micro_offset(tm, i);
        if (m >= Kg) continue;
#pragma unroll
        for (int j = 0; j < T::MICRO; ++j) {
            const int column = n0 + micro_offset(tn, j);
            if (column < columns) out[((long long)group * Kg + m) * columns + column] = acc[i][j];
        }
    }
}

/* The kernels (the tiles functions above hold their shared buffers, two per operand). Each declares
 * the number of resident blocks per SM that ptxas must allow, which caps the registers: 3 blocks
 * (85 registers) hold the 64 tile's 16 accumulators with its addressing, except in backward-data,
 * whose stride phases take a few more (at 80, ptxas spilled 4 bytes on sm_86 to sm_90): 2 blocks
 * there (101-115 registers). The 128 tile's 64 accumulators, operands, prefetched loads and
 * addressing fit 128 registers in backward-filter and the taps kernels, whose addressing is worked
 * out once per step or before the steps: 2 blocks per SM from sm_75 (nvcc 13.0 and CUDA 12.9's NVRTC,
 * sm_75 to sm_90: no spills, 1-10 more instructions a step than at the 156-182 registers of one
 * block, whose 8 warps left an H200 issuing on half its cycles in ncu). On sm_70 and sm_72 CUDA 12's
 * ptxas spilled 96-172 bytes there at 128, and the forward and backward-data kernels without taps,
 * which decode every reduction index they load, spilled at 128 on later archs too (backward-data on
 * every arch, 72-80 bytes; the forward 60 bytes on sm_90): one block per SM. Before sm_70 the 128 tile
 * is not built: sm_53 and sm_62 allow 32K registers per block, 128 per thread of 256, and the launcher
 * takes the 64 tile below compute capability 7.0. conv2d.py's WIDE_FILTER_BLOCKS and
 * WIDE_FILTER_CAPABILITY mirror CONV_BLOCKS_128 (backward-filter's waves). */
#define CONV_BLOCKS_64 3
#define CONV_BLOCKS_DATA_64 2
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 750
#define CONV_BLOCKS_128 1
#else
#define CONV_BLOCKS_128 2
#endif
#define CONV_BLOCKS_128_DECODING 1

extern "C" __global__ void __launch_bounds__(CONV_THREADS, CONV_BLOCKS_64) conv2d_forward_64(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ y, int has_bias, int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups, int chunk) {
    conv2d_forward_tiles<64, false>(x, weight, bias, y, has_bias, N, C, H, W, K, R, S, P, Q,
                                     stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w, groups, chunk);
}

extern "C" __global__ void __launch_bounds__(CONV_THREADS, CONV_BLOCKS_64) conv2d_forward_taps_64(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ y, int has_bias, int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups, int chunk) {
    conv2d_forward_tiles<64, true>(x, weight, bias, y, has_bias, N, C, H, W, K, R, S, P, Q,
                                     stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w, groups, chunk);
}

extern "C" __global__ void __launch_bounds__(CONV_THREADS, CONV_BLOCKS_DATA_64) conv2d_backward_data_64(
    const float* __restrict__ grad_y, const float* __restrict__ weight, float* __restrict__ grad_x,
    int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups, int chunk) {
    conv2d_backward_data_tiles<64, false>(grad_y, weight, grad_x, N, C, H, W, K, R, S, P, Q,
                                           stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w,
                                           groups, chunk);
}

extern "C" __global__ void __launch_bounds__(CONV_THREADS, CONV_BLOCKS_DATA_64) conv2d_backward_data_taps_64(
    const float* __restrict__ grad_y, const float* __restrict__ weight, float* __restrict__ grad_x,
    int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups, int chunk) {
    conv2d_backward_data_tiles<64, true>(grad_y, weight, grad_x, N, C, H, W, K, R, S, P, Q,
                                           stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w,
                                           groups, chunk);
}

extern "C" __global__ void __launch_bounds__(CONV_THREADS, CONV_BLOCKS_64) conv2d_backward_filter_64(
    const float* __restrict__ x, const float* __restrict__ grad_y, float* __restrict__ partial,
    int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups,
    long long chunk) {
    conv2d_backward_filter_tiles<64>(x, grad_y, partial, N, C, H, W, K, R, S, P, Q,
                                      stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w, groups, chunk);
}

#if !defined(__CUDA_ARCH__) || __CUDA_ARCH__ >= 700
extern "C" __global__ void __launch_bounds__(CONV_THREADS, CONV_BLOCKS_128_DECODING) conv2d_forward_128(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ y, int has_bias, int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups, int chunk) {
    conv2d_forward_tiles<128, false>(x, weight, bias, y, has_bias, N, C, H, W, K, R, S, P, Q,
                                     stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w, groups, chunk);
}

extern "C" __global__ void __launch_bounds__(CONV_THREADS, CONV_BLOCKS_128) conv2d_forward_taps_128(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ y, int has_bias, int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups, int chunk) {
    conv2d_forward_tiles<128, true>(x, weight, bias, y, has_bias, N, C, H, W, K, R, S, P, Q,
                                     stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w, groups, chunk);
}

extern "C" __global__ void __launch_bounds__(CONV_THREADS, CONV_BLOCKS_128_DECODING) conv2d_backward_data_128(
    const float* __restrict__ grad_y, const float* __restrict__ weight, float* __restrict__ grad_x,
    int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups, int chunk) {
    conv2d_backward_data_tiles<128, false>(grad_y, weight, grad_x, N, C, H, W, K, R, S, P, Q,
                                           stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w,
                                           groups, chunk);
}

extern "C" __global__ void __launch_bounds__(CONV_THREADS, CONV_BLOCKS_128) conv2d_backward_data_taps_128(
    const float* __restrict__ grad_y, const float* __restrict__ weight, float* __restrict__ grad_x,
    int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups, int chunk) {
    conv2d_backward_data_tiles<128, true>(grad_y, weight, grad_x, N, C, H, W, K, R, S, P, Q,
                                           stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w,
                                           groups, chunk);
}

extern "C" __global__ void __launch_bounds__(CONV_THREADS, CONV_BLOCKS_128) conv2d_backward_filter_128(
    const float* __restrict__ x, const float* __restrict__ grad_y, float* __restrict__ partial,
    int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups,
    long long chunk) {
    conv2d_backward_filter_tiles<128>(x, grad_y, partial, N, C, H, W, K, R, S, P, Q,
                                      stride_h, stride_w, pad_top, pad_left, dilation_h, dilation_w, groups, chunk);
}
#endif

/* Forward of a layer with a short reduction (an RGB stem's 3x3 kernel, 27 indices), where the GEMM
 * tiles spend their time on what surrounds one or two reduction steps: staging, barriers and an
 * epilogue that decodes every result's pixel; or of few output channels (Kg of 32 or fewer: a 5x5 RGB
 * stem's 16), whose 64-row tiles hold mostly channels that do not exist. A block's reduction is at most
 * PIXELS_MAX_REDUCTION, the weights' shared buffer (Conv2d's plan picks the layers): Cg*R*S, or where the
 * host splits it, split_channels*R*S, block z taking group z % G and input channels [split *
 * split_channels, ...) for split = z / G, and writing y[split] (the (N, K, P, Q) slice of a partial result
 * that conv2d_sum_splits adds; has_bias 0 there). split_channels >= Cg: one split.
 *
 * Backward-data of a stride-1 layer with few input channels a group is such a forward too: of the
 * upstream gradient (x: (N, K, P, Q) of the layer), whose filters are the layer's (weight: (K, C/G, R,
 * S)) rotated by 180 degrees and with their channels swapped, read so where `flipped`; its output (y)
 * is the input's gradient (N, C, H, W), padded by dilation * (R - 1) - pad_top (and so for the
 * columns). A tap in the padding adds weight * 0 where `padding_counts` (the forward, whose padding the
 * tiles and the cpu multiply too) and nothing otherwise (backward-data: as the exact gather, it visits
 * only the taps that read an output, so an inf weight meets no zero).
 *
 * A thread takes one output pixel (n, p, q) and PIXELS_CHANNELS output channels k0 + j of its group; the
 * block stages those channels' weights in shared memory, reduction index major ([i][j], padded with zeros
 * past Kg), so that one float4 read feeds four channels. For each reduction index i = (c, r, s) in order
 * the thread reads its input value once (0 in the padding) and adds weight * value to each channel's sum:
 * unsplit, the same terms in the same order as the GEMM kernels unsplit (whose steps pad the reduction
 * with zero terms), so the same sums. Grid (ceil(N*P*Q / 256), ceil(Kg / PIXELS_CHANNELS), G * splits); consecutive
 * threads take consecutive pixels, so their input reads and output writes are coalesced. */
#define PIXELS_CHANNELS 16
#define PIXELS_MAX_REDUCTION 160

/* acc[j] += factors[j] * value for the PIXELS_CHANNELS factors of four float4s (in shared memory): the
 * pixels kernels' step, a weight's channels times an input value or a position's dy times one. */
static __device__ __forceinline__ void add_scaled(float (&acc)[PIXELS_CHANNELS], const float4* factors, float value) {
#pragma unroll
    for (int j4 = 0; j4 < PIXELS_CHANNELS / 4; ++j4) {
        const float4 f4 = factors[j4];
        acc[4 * j4] += f4.x * value;
        acc[4 * j4 + 1] += f4.y * value;
        acc[4 * j4 + 2] += f4.z * value;
        acc[4 * j4 + 3] += f4.w * value;
    }
}

extern "C" __global__ void __launch_bounds__(CONV_THREADS) conv2d_forward_pixels(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ y, int has_bias, int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups,
    int flipped, int padding_counts, int split_channels) {
    __shared__ __align__(16) float weights[PIXELS_MAX_REDUCTION * PIXELS_CHANNELS];
    const int tid = threadIdx.x, group = blockIdx.z % groups, split = blockIdx.z / groups;
    const int k0 = blockIdx.y * PIXELS_CHANNELS, Cg = C / groups, Kg = K / groups, RS = R * S;
    const int c_begin = split * split_channels, c_end = min(c_begin + split_channels, Cg);
    const int reduction = (c_end - c_begin) * RS; /* this split's: channels [c_begin, c_end) */
    const float* weight_block = weight + ((long long)group * Kg + k0) * Cg * RS + c_begin * RS;
    for (int e = tid; e < reduction * PIXELS_CHANNELS; e += CONV_THREADS) {
        const int j = e / reduction, i = e - j * reduction; /* consecutive threads read consecutive weights */
        float value = 0.0f;
        if (k0 + j < Kg && !flipped) {
            value = weight_block[(long long)j * Cg * RS + i];
        } else if (k0 + j < Kg) { /* weight[group * Cg + c, k0 + j, R - 1 - r, S - 1 - s] for i = (c, r, s) */
            const int c = c_begin + i / RS, tap = i % RS;
            value = weight[(((long long)group * Cg + c) * Kg + k0 + j) * RS + RS - 1 - tap];
        }
        weights[i * PIXELS_CHANNELS + j] = value;
    }
    __syncthreads();
    const int PQ = P * Q; /* conv2d.py keeps a plane below 2^31 values */
    const long long pixels = (long long)N * PQ, pixel = (long long)blockIdx.x * CONV_THREADS + tid;
    if (pixel >= pixels) return;
    const long long n = pixel / PQ;
    const int pq = (int)(pixel - n * PQ), p = pq / Q, q = pq - p * Q;
    const int row_origin = p * stride_h - pad_top, col_origin = q * stride_w - pad_left;
    const long long HW = (long long)H * W;
    const float* x_image = x + (n * C + (long long)group * Cg) * HW;
    float acc[PIXELS_CHANNELS];
#pragma unroll
    for (int j = 0; j < PIXELS_CHANNELS; ++j) acc[j] = 0.0f;
    const float4* weight_i = reinterpret_cast<const float4*>(weights);
    for (int c = c_begin; c < c_end; ++c) {
        for (int r = 0; r < R; ++r) {
            const int h = row_origin + r * dilation_h;
            const bool row_inside = h >= 0 && h < H;
            const long long row = c * HW + (long long)h * W;
            for (int s = 0; s < S; ++s, weight_i += PIXELS_CHANNELS / 4) {
                const int w = col_origin + s * dilation_w;
                const bool inside = row_inside && w >= 0 && w < W;
                if (!inside && !padding_counts) continue;
                add_scaled(acc, weight_i, inside ? x_image[row + w] : 0.0f);
            }
        }
    }
    float* y_pixel = y + (((long long)split * N + n) * K + (long long)group * Kg + k0) * PQ + pq;
#pragma unroll
    for (int j = 0; j < PIXELS_CHANNELS; ++j) {
        const int k = group * Kg + k0 + j;
        if (k0 + j < Kg) y_pixel[(long long)j * PQ] = acc[j] + (has_bias ? bias[k] : 0.0f);
    }
}

/* Backward-filter of a layer of few output channels a group (Kg of 32 or fewer, as the pixels forward
 * takes), whose 64-row tiles would hold mostly channels that do not exist: ConvNetJS's 16 and 20, the
 * lecture's 10 and 1. A thread takes one column (c, r, s) of the weight's gradient and PIXELS_CHANNELS
 * output channels k0 + j of its group, over the positions (n, p, q) of its split's chunk:
 *   dw[k0 + j][(c, r, s)] += dy[n, k0 + j, p, q] * x[n, c, p*stride_h - pad_top + r*dilation_h, ...]
 * (0 in the padding, which multiplies dy as the tiles' and the cpu's zeros do). The block stages
 * FILTER_STAGE positions at a time: their dy values for its channels ([t][j], zeros past Kg, so that one
 * float4 read feeds four channels) and where each position's window starts; every thread then reads
 * its own input value at each position once. A block takes `span` columns (the host spreads the columns
 * evenly over enough blocks that three quarters of their threads or more hold one); where span is at
 * most half of CONV_THREADS, the block's CONV_THREADS / span lanes share the positions (lane l: staged
 * positions l, l + lanes, ...) and lane 0 adds the lanes' sums in lane order: a fixed order.
 * Grid (ceil(Cg*R*S / span), ceil(Kg / PIXELS_CHANNELS), G * splits); split z / G sums positions
 * [split*chunk, (split+1)*chunk) and writes partial[split] (K, Cg*R*S), as the tiles do. */
#define FILTER_STAGE 64
/* Resident blocks a multiprocessor that ptxas must allow: at 3 (80 registers) the position loop, unrolled
 * to keep four loads of x in flight, fits sm_53 to sm_90 without spills; with no minimum, nvcc 13 gave
 * it 64 registers on sm_90 and spilled 8 bytes. */
#define FILTER_PIXELS_BLOCKS 3

extern "C" __global__ void __launch_bounds__(CONV_THREADS, FILTER_PIXELS_BLOCKS) conv2d_backward_filter_pixels(
    const float* __restrict__ x, const float* __restrict__ grad_y, float* __restrict__ partial,
    int N, int C, int H, int W, int K, int R, int S, int P, int Q, int stride_h, int stride_w, int pad_top,
    int pad_left, int dilation_h, int dilation_w, int groups, long long chunk, int span) {
    __shared__ __align__(16) float grads[FILTER_STAGE * PIXELS_CHANNELS];
    __shared__ long long image_at[FILTER_STAGE];
    __shared__ int row_at[FILTER_STAGE], col_at[FILTER_STAGE];
    __shared__ __align__(16) float lane_sums[CONV_THREADS * PIXELS_CHANNELS];
    const int tid = threadIdx.x, group = blockIdx.z % groups, split = blockIdx.z / groups;
    const int k0 = blockIdx.y * PIXELS_CHANNELS, Cg = C / groups, Kg = K / groups, RS = R * S, columns = Cg * RS;
    const int PQ = P * Q; /* conv2d.py keeps a plane below 2^31 values */
    const long long HW = (long long)H * W, begin = split * chunk, end = min(begin + chunk, (long long)N * PQ);
    const int lanes = CONV_THREADS / span, lane = tid / span, column = blockIdx.x * span + tid - lane * span;
    const bool computes = lane < lanes && column < columns;
    int tap_h = 0, tap_w = 0;
    long long channel_at = 0;
    if (computes) {
        const int c = column / RS, rs = column - c * RS, r = rs / S;
        tap_h = r * dilation_h;
        tap_w = (rs - r * S) * dilation_w;
        channel_at = ((long long)group * Cg + c) * HW;
    }
    /* Every pass, this thread loads the dy values of staged position t = tid % FILTER_STAGE (CONV_THREADS
     * is a multiple of FILTER_STAGE): its (n, pq) is divided once and carried from pass to pass. */
    const int t_load = tid % FILTER_STAGE;
    long long n = (begin + t_load) / PQ;
    int pq = (int)(begin + t_load - n * PQ);
    float acc[PIXELS_CHANNELS];
#pragma unroll
    for (int j = 0; j < PIXELS_CHANNELS; ++j) acc[j] = 0.0f;
    for (long long first = begin; first < end; first += FILTER_STAGE) {
        const int staged = (int)min((long long)FILTER_STAGE, end - first);
        __syncthreads(); /* the last pass's reads of the staged values are done */
        if (t_load < staged) {
            if (tid < FILTER_STAGE) {
                const int p = pq / Q;
                image_at[t_load] = n * C * HW;
                row_at[t_load] = p * stride_h - pad_top;
                col_at[t_load] = (pq - p * Q) * stride_w - pad_left;
            }
            const float* grad_pixel = grad_y + (n * K + (long long)group * Kg + k0) * PQ + pq;
            for (int j = tid / FILTER_STAGE; j < PIXELS_CHANNELS; j += CONV_THREADS / FILTER_STAGE)
                grads[t_load * PIXELS_CHANNELS + j] = k0 + j < Kg ? grad_pixel[(long long)j * PQ] : 0.0f;
        }
        for (pq += FILTER_STAGE; pq >= PQ; pq -= PQ) ++n; /* the next pass's position */
        __syncthreads();
        if (!computes) continue;
#pragma unroll 4
        for (int t = lane; t < staged; t += lanes) { /* four loads of x in flight */
            const int h = row_at[t] + tap_h, w = col_at[t] + tap_w;
            const bool inside = h >= 0 && h < H && w >= 0 && w < W;
            add_scaled(acc, reinterpret_cast<const float4*>(grads + t * PIXELS_CHANNELS),
                       inside ? x[image_at[t] + channel_at + (long long)h * W + w] : 0.0f);
        }
    }
    if (lanes > 1) { /* the same for every thread of the block */
        if (computes)
#pragma unroll
            for (int j = 0; j < PIXELS_CHANNELS; ++j) lane_sums[j * CONV_THREADS + tid] = acc[j];
        __syncthreads();
        if (computes && lane == 0)
            for (int other = 1; other < lanes; ++other)
#pragma unroll
                for (int j = 0; j < PIXELS_CHANNELS; ++j) acc[j] += lane_sums[j * CONV_THREADS + other * span + tid];
    }
    if (!computes || lane > 0) return;
    float* out = partial + ((long long)split * K + (long long)group * Kg + k0) * columns + column;
#pragma unroll
    for (int j = 0; j < PIXELS_CHANNELS; ++j)
        if (k0 + j < Kg) out[(long long)j * columns] = acc[j];
}

/* The weight as the taps kernels read it: out[b, j, i] = weight[b, i, j] for a (batches, rows, cols)
 * weight; the forward's (K, Cg, R*S) -> (K, R*S, Cg), backward-data's (G, Kg, Cg*R*S) -> (G, Cg*R*S, Kg).
 * Thread per output element (grid-stride): the writes are coalesced, the reads of a small weight hit
 * the cache. One launch where the array module's transposing copy is several host calls. */
extern "C" __global__ void conv2d_transpose_weight(const float* __restrict__ weight, float* __restrict__ out,
                                                   long long count, int rows, int cols, int fits_int) {
    for (long long i = first_index(); i < count; i += grid_threads()) {
        int j, row;
        const long long batch = split_index(i, cols, rows, fits_int, j, row);
        out[i] = weight[(batch * rows + row) * cols + j];
    }
}

/* Backward-data in gather form, for few channels per group (an RGB stem) and the strides the tiled
 * kernel's phases do not cover. An item is up to GATHER_CHANNELS channels
 * c0, c0 + 1, ... of one group at one input pixel (n, h, w): for each tap (r, s) that some output reads
 * the pixel through (p*stride_h = h + pad_top - r*dilation_h exactly, 0 <= p < P; q likewise) it sums
 * weight * dy over the group's output channels, for every channel at once (each dy value read once),
 * then adds the taps in (r, s) order, as the CPU half's col2im does.
 * Items run (n, group, channel chunk, h, column phase, column): a row's columns w = phase + j*stride_w
 * go by phase (w mod stride_w), so the threads of a warp share one phase and take the same taps (by
 * column order, at stride 2, neighbouring threads took different taps), and neighbouring threads read
 * neighbouring dy columns. A phase has `columns` = ceil(W / stride_w) slots; a slot past W is no item. */
#define GATHER_CHANNELS 4

static __device__ __forceinline__ long long gather_items(int N, int C, int H, int W, int stride_w, int groups) {
    const int Cg = C / groups, chunks = (Cg + GATHER_CHANNELS - 1) / GATHER_CHANNELS;
    return (long long)N * groups * chunks * H * (stride_w * ((W + stride_w - 1) / stride_w));
}

/* taps[j] += the sum over the group's output channels k of weight_k[j*RS + k*weight_step] * grad_k[k*grad_step]
 * (in k order), for the COUNT channels j < COUNT of an item: a tap of the gather. */
template <int COUNT>
static __device__ __forceinline__ void sum_tap(const float* __restrict__ grad_k, const float* __restrict__ weight_k,
                                               int Kg, long long grad_step, long long weight_step, int RS,
                                               float* taps) {
    const float* weights[COUNT];
#pragma unroll
    for (int j = 0; j < COUNT; ++j) weights[j] = weight_k + (long long)j * RS;
    for (int k = 0; k < Kg; ++k, grad_k += grad_step) {
        const float grad = *grad_k;
#pragma unroll
        for (int j = 0; j < COUNT; ++j) {
            taps[j] += *weights[j] * grad;
            weights[j] += weight_step;
        }
    }
}

/* taps[j] for the count <= CHANNELS channels of an item: sum_tap of the count itself, unrolled. */
template <int CHANNELS>
static __device__ __forceinline__ void sum_taps(int count, const float* __restrict__ grad_k,
                                                const float* __restrict__ weight_k, int Kg, long long grad_step,
                                                long long weight_step, int RS, float* taps) {
    if constexpr (CHANNELS > 1) {
        if (count < CHANNELS) {  /* the same for a warp's threads but where it spans two chunks */
            sum_taps<CHANNELS - 1>(count, grad_k, weight_k, Kg, grad_step, weight_step, RS, taps);
            return;
        }
    }
    sum_tap<CHANNELS>(grad_k, weight_k, Kg, grad_step, weight_step, RS, taps);
}

/* Index: int where every item's index fits (one division a step is then a short sequence, not a 64-bit
 * routine), else long long. (common.cuh's split_index makes the same choice at run time; decoding the
 * item with two of its calls took more registers: 128 against 72 on sm_80, 96 against 66 on sm_75.) */
template <class Index>
static __device__ __forceinline__ void gather_item(
    const float* __restrict__ grad_y, const float* __restrict__ weight, float* __restrict__ grad_x, Index item,
    int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups) {
    const int Cg = C / groups, Kg = K / groups, RS = R * S;
    const int chunks = (Cg + GATHER_CHANNELS - 1) / GATHER_CHANNELS, columns = (W + stride_w - 1) / stride_w;
    const int slot = (int)(item % (stride_w * columns));
    const int w = slot / columns + slot % columns * stride_w;
    if (w >= W) return;
    Index rest = item / (stride_w * columns);
    const int h = (int)(rest % H);
    rest /= H;
    const int c0 = (int)(rest % chunks) * GATHER_CHANNELS, count = min(Cg - c0, GATHER_CHANNELS);
    rest /= chunks;
    const int group = (int)(rest % groups);
    const long long n = rest / groups, PQ = (long long)P * Q, k_step = (long long)Cg * RS;
    const float* grad_group = grad_y + (n * K + (long long)group * Kg) * PQ;
    const float* weight_group = weight + ((long long)group * Kg * Cg + c0) * RS;
    float sums[GATHER_CHANNELS];
#pragma unroll
    for (int j = 0; j < GATHER_CHANNELS; ++j) sums[j] = 0.0f;
    for (int r = 0; r < R; ++r) {
        const int p_times_stride = h + pad_top - r * dilation_h;
        if (p_times_stride < 0 || p_times_stride % stride_h != 0 || p_times_stride / stride_h >= P) continue;
        for (int s = 0; s < S; ++s) {
            const int q_times_stride = w + pad_left - s * dilation_w;
            if (q_times_stride < 0 || q_times_stride % stride_w != 0 || q_times_stride / stride_w >= Q) continue;
            /* dy[n, group*Kg + k, p, q] and weight[group*Kg + k, c0 + j, r, s], k = 0, 1, ... */
            const float* grad_k = grad_group + (long long)(p_times_stride / stride_h) * Q + q_times_stride / stride_w;
            const float* weight_k = weight_group + r * S + s;
            float taps[GATHER_CHANNELS];
#pragma unroll
            for (int j = 0; j < GATHER_CHANNELS; ++j) taps[j] = 0.0f;
            sum_taps<GATHER_CHANNELS>(count, grad_k, weight_k, Kg, PQ, k_step, RS, taps);
#pragma unroll
            for (int j = 0; j < GATHER_CHANNELS; ++j) sums[j] += taps[j];
        }
    }
    float* out = grad_x + ((n * C + (long long)group * Cg + c0) * H + h) * W + w;
#pragma unroll
    for (int j = 0; j < GATHER_CHANNELS; ++j) {
        if (j < count) out[(long long)j * H * W] = sums[j];
    }
}

/* Backward-data as the exact gather: every item (gather_item; grid-stride). */
extern "C" __global__ void conv2d_backward_data_exact(
    const float* __restrict__ grad_y, const float* __restrict__ weight, float* __restrict__ grad_x,
    int N, int C, int H, int W, int K, int R, int S, int P, int Q,
    int stride_h, int stride_w, int pad_top, int pad_left, int dilation_h, int dilation_w, int groups) {
    const long long items = gather_items(N, C, H, W, stride_w, groups);
    for (long long i = first_index(); i < items; i += grid_threads()) {
        if (items <= 0x7fffffff) {
            gather_item<int>(grad_y, weight, grad_x, (int)i, C, H, W, K, R, S, P, Q, stride_h, stride_w, pad_top,
                             pad_left, dilation_h, dilation_w, groups);
        } else {
            gather_item<long long>(grad_y, weight, grad_x, i, C, H, W, K, R, S, P, Q, stride_h, stride_w, pad_top,
                                   pad_left, dilation_h, dilation_w, groups);
        }
    }
}

/* out[i] = partial[0][i] + partial[1][i] + ... , plus bias[(i / PQ) % K] where has_bias: the result of a
 * product whose reduction ran in splits. With lanes == 1, a thread an element i (grid-stride) adds the
 * splits in split order. A result of few values in many splits (backward-filter of a narrow layer: 1,200
 * values in 256 splits) would leave such threads waiting on one load after another, so there a block
 * takes CONV_THREADS / lanes elements, `lanes` threads each (a power of two up to 32 that divides
 * CONV_THREADS): lane l adds splits l, l + lanes, ... in order, and lane 0 adds the lanes' sums in lane
 * order. A fixed order either way; the host picks lanes from the sizes alone. */
extern "C" __global__ void __launch_bounds__(CONV_THREADS) conv2d_sum_splits(
    const float* __restrict__ partial, const float* __restrict__ bias, float* __restrict__ out, int has_bias,
    long long count, int splits, int K, long long PQ, int lanes) {
    if (lanes == 1) {
        for (long long i = first_index(); i < count; i += grid_threads()) {
            float sum = partial[i];
            for (int split = 1; split < splits; ++split) sum += partial[split * count + i];
            out[i] = has_bias ? sum + bias[i / PQ % K] : sum;
        }
        return;
    }
    __shared__ float lane_sums[CONV_THREADS];
    const int width = CONV_THREADS / lanes, lane = threadIdx.x / width, slot = threadIdx.x - lane * width;
    for (long long first = (long long)blockIdx.x * width; first < count; first += (long long)gridDim.x * width) {
        const long long i = first + slot; /* consecutive threads of a lane: consecutive elements */
        float sum = 0.0f;
        if (i < count && lane < splits) {
            sum = partial[lane * count + i];
            for (int split = lane + lanes; split < splits; split += lanes) sum += partial[split * count + i];
        }
        lane_sums[threadIdx.x] = sum;
        __syncthreads();
        if (lane == 0 && i < count) {
            for (int other = 1; other < lanes && other < splits; ++other) sum += lane_sums[other * width + slot];
            out[i] = has_bias ? sum + bias[i / PQ % K] : sum;
        }
        __syncthreads(); /* lane_sums is written again in the next round */
    }
}

/* grad_bias[k] = sum over (n, p, q) of dy[n, k, p, q]: block k; thread t sums positions t, t + 256,
 * ...; then a shared-memory tree halves the 256 partial sums (a fixed shape: deterministic). */
extern "C" __global__ void __launch_bounds__(CONV_THREADS) conv2d_backward_bias(
    const float* __restrict__ grad_y, float* __restrict__ grad_bias, int N, int K, long long PQ) {
    __shared__ float partial_sums[CONV_THREADS];
    const int tid = threadIdx.x;
    const long long k = blockIdx.x, positions = (long long)N * PQ;
    float sum = 0.0f;
    for (long long position = tid; position < positions; position += CONV_THREADS) {
        const long long n = position / PQ;
        sum += grad_y[(n * K + k) * PQ + (position - n * PQ)];
    }
    sum = block_sum<CONV_THREADS>(sum, partial_sums);
    if (tid == 0) grad_bias[k] = sum;
}
