/* batchnorm.cu: batch normalisation per channel, for gpucnn/ops/batchnorm.py.
 *
 * x, y, dy, dx: (N, C, S) float32, C-contiguous, S the product of the spatial sizes (1 for (N, C)
 * input); weight, bias, the running statistics and the parameter gradients: (C,); stats: (3, C), the
 * mean, residual and inv_std that forward writes for backward (one array: one allocation a layer).
 * Launch: grid (C, B), block (256,). Channel c's count = N S values j = n S + s, lying at
 * (n C + c) S + s, are shared among its B blocks: block b takes j in [b chunk, (b + 1) chunk) below
 * count (chunk from the host, count with B = 1). Thread t of a block visits its share's values
 * first + t, first + t + 256, ... in that order, summing them with Kahan's compensation, and the
 * block's sums are reduced by a fixed-shape shared-memory tree. With B > 1 the channel sums come
 * from a launch before, which writes each block's sums to a (C, B, k) array, and every block of the
 * second launch adds them up in double, in a fixed-shape tree again: every result is the same on
 * every run and in every thread order. With B = 1 every thread of the block holds its channel's sums,
 * and no sum over the block follows. No atomics. Plain float sums of the 256 values a thread
 * visits on a 64x16x32x32 input were off the cpu half's BLAS sums by 2.9e-4 of a weight gradient
 * of -0.72 on an H200.
 *
 *   batchnorm_moments   training, B > 1: each block's share's moments (its mean, the mean of
 *                       centered = x - that mean, which is what rounding the mean to a float left,
 *                       and the sum of centered^2) to moments[c, b, 0..2].
 *   batchnorm_forward   training: the channel's statistics from its blocks' moments (its own, with
 *                       B = 1), combined as Chan, Golub and LeVeque's pairwise update in double:
 *                       mean_b' = mean_b + residual_b, the channel's mean = the count-weighted mean
 *                       of the mean_b', and the biased variance = (the sum over blocks of
 *                       squares_b - n_b residual_b^2 + n_b (mean_b' - mean)^2) / count (0 where
 *                       rounding takes it below; a NaN stays). The mean is rounded to a float and
 *                       what that left is the channel's residual (0 where it is inf or NaN), as in
 *                       the cpu half's corrected two-pass algorithm. The mean, residual and
 *                       inv_std = 1 / sqrt(var + eps) go to stats for backward, and with
 *                       has_running the running statistics become keep * running + momentum *
 *                       statistic, with the mean + residual and the unbiased variance var * unbias
 *                       (keep = 1 - momentum and unbias = count / (count - 1) from the host, as the
 *                       cpu half rounds them; never for an empty batch), and with count_batch block
 *                       (0, 0) adds 1 to batches[0] (BatchNorm2d's num_batches_tracked: a CuPy
 *                       operation of its own was a launch per layer and step). Evaluation: the
 *                       running statistics stand in for the batch's, residual 0. Then each block
 *                       writes its share of y = (centered - residual) * inv_std * weight + bias (a
 *                       missing weight or bias: 1 or 0).
 *   batchnorm_backward_sums
 *                       B > 1: each block's share's sums of dy and dy * (x - mean) to
 *                       sums[c, b, 0..1].
 *   batchnorm_backward  s1 = sum(dy) and s2 = sum(dy * x_hat), x_hat = (centered - residual) *
 *                       inv_std, from the blocks' sums (its own, with B = 1): the bias and weight
 *                       gradients (written by block (c, 0) where asked for); with need_x, each block
 *                       writes its share of dx = scale * (dy - (x_hat * s2 + s1) / count) in training
 *                       and scale * dy in evaluation, scale = weight * inv_std.
 */
#include "common.cuh"

#define BN_THREADS 256

/* Channel c's values in the order j = first, first + BN_THREADS, ...: value j = n S + s lies at
 * (n C + c) S + s. The walk steps n and s, with no division per value. */
struct ChannelWalk {
    long long n, s, step_n, step_s, S, plane, plane_stride;
    __device__ ChannelWalk(long long first, long long c, long long C, long long S_)
        : n(first / S_), s(first % S_), step_n(BN_THREADS / S_), step_s(BN_THREADS % S_), S(S_), plane(c * S_),
          plane_stride(C * S_) {}
    __device__ long long offset() const { return n * plane_stride + plane + s; }
    __device__ void next() {
        n += step_n;
        s += step_s;
        if (s >= S) {
            s -= S;
            ++n;
        }
    }
};

/* A float sum that carries each add's rounding error into the next (Kahan). Once the sum is inf or
 * NaN it is left so (no carry), as a plain sum would be. */
struct CompensatedSum {
    float sum, carry;
    __device__ CompensatedSum() : sum(0.0f), carry(0.0f) {}
    __device__ void add(float value) {
        const float corrected = value - carry, total = sum + corrected;
        carry = is_finite(total) ? (total - sum) - corrected : 0.0f;
        sum = total;
    }
};

/* Block blockIdx.y's share of channel blockIdx.x: values [first, end) of the channel's count. */
struct Share {
    long long first, end;
    __device__ Share(long long chunk, long long count) : first(blockIdx.y * chunk), end(first + chunk) {
        if (end > count) end = count;
    }
};

/* A share's moments, in every thread of the block: its mean (its compensated sum over its count,
 * rounded to a float), the residual (the mean of x - mean; 0 where it is inf or NaN) and the sum of
 * (x - mean)^2. */
struct Moments {
    float mean, residual, squares;
};

static __device__ Moments share_moments(const float* __restrict__ x, long long c, long long C, long long S,
                                        Share share, float* partial) {
    const int tid = threadIdx.x;
    const float n = share.end > share.first ? (float)(share.end - share.first) : 1.0f;
    CompensatedSum sum;
    ChannelWalk walk(share.first + tid, c, C, S);
    for (long long j = share.first + tid; j < share.end; j += BN_THREADS, walk.next()) sum.add(x[walk.offset()]);
    Moments moments;
    moments.mean = block_sum<BN_THREADS>(sum.sum, partial) / n;
    CompensatedSum deviations, squares;
    walk = ChannelWalk(share.first + tid, c, C, S);
    for (long long j = share.first + tid; j < share.end; j += BN_THREADS, walk.next()) {
        const float centered = x[walk.offset()] - moments.mean;
        deviations.add(centered);
        squares.add(centered * centered);
    }
    moments.residual = block_sum<BN_THREADS>(deviations.sum, partial) / n;
    if (!is_finite(moments.residual)) moments.residual = 0.0f;
    moments.squares = block_sum<BN_THREADS>(squares.sum, partial);
    return moments;
}

/* The channel's statistics, in every thread of the block, from the moments of its B shares: thread
 * b < B passes share b's (the others are not read), B <= BN_THREADS. */
struct Statistics {
    float mean, residual, var;
};

static __device__ Statistics channel_statistics(Moments share, int B, long long chunk, long long count,
                                                double* wide) {
    const int tid = threadIdx.x;
    const bool alone = B == 1; /* the one share, which every thread holds: no sums over the block */
    const bool mine = alone || tid < B;
    double n = 0.0;
    if (mine) n = (double)(alone ? count : tid == B - 1 ? count - (long long)tid * chunk : chunk);
    const double share_mean = (double)share.mean + (double)share.residual;
    const double divisor = count > 0 ? (double)count : 1.0;
    const double weighted = mine ? n * share_mean : 0.0;
    const double mean = (alone ? weighted : block_sum<BN_THREADS>(weighted, wide)) / divisor;
    double spread = 0.0;
    if (mine) {
        const double apart = share_mean - mean;
        spread = (double)share.squares - n * (double)share.residual * (double)share.residual + n * apart * apart;
    }
    const double var = (alone ? spread : block_sum<BN_THREADS>(spread, wide)) / divisor;
    Statistics statistics;
    statistics.mean = (float)mean;
    const double residual = mean - (double)statistics.mean;
    statistics.residual = is_finite(residual) ? (float)residual : 0.0f;
    statistics.var = var < 0.0 ? 0.0f : (float)var; /* a NaN stays */
    return statistics;
}

extern "C" __global__ void __launch_bounds__(BN_THREADS) batchnorm_moments(
    const float* __restrict__ x, float* __restrict__ moments, int N, int C, long long S, long long chunk) {
    __shared__ float partial[BN_THREADS];
    const int c = blockIdx.x;
    const Moments share = share_moments(x, c, C, S, Share(chunk, (long long)N * S), partial);
    if (threadIdx.x == 0) {
        float* out = moments + ((long long)c * gridDim.y + blockIdx.y) * 3;
        out[0] = share.mean;
        out[1] = share.residual;
        out[2] = share.squares;
    }
}

extern "C" __global__ void __launch_bounds__(BN_THREADS) batchnorm_forward(
    const float* __restrict__ x, const float* __restrict__ moments, const float* __restrict__ weight,
    const float* __restrict__ bias, float* __restrict__ y, float* __restrict__ stats,
    float* __restrict__ running_mean, float* __restrict__ running_var, long long* __restrict__ batches, int N,
    int C, long long S, long long chunk, int training, int has_weight, int has_bias, int has_running,
    int count_batch, float momentum, float keep, float unbias, float eps) {
    __shared__ float partial[BN_THREADS];
    __shared__ double wide[BN_THREADS];
    const int tid = threadIdx.x, c = blockIdx.x, B = gridDim.y;
    const bool first_block = blockIdx.y == 0;
    if (count_batch && c == 0 && first_block && tid == 0) batches[0] += 1;
    const long long count = (long long)N * S;
    const Share share(chunk, count);
    float channel_mean, channel_residual = 0.0f, channel_inv_std;
    if (training) {
        Moments moments_of_mine = {0.0f, 0.0f, 0.0f};
        if (B == 1) {
            moments_of_mine = share_moments(x, c, C, S, share, partial);
        } else if (tid < B) {
            const float* in = moments + ((long long)c * B + tid) * 3;
            moments_of_mine.mean = in[0];
            moments_of_mine.residual = in[1];
            moments_of_mine.squares = in[2];
        }
        const Statistics statistics = channel_statistics(moments_of_mine, B, chunk, count, wide);
        channel_mean = statistics.mean;
        channel_residual = statistics.residual;
        channel_inv_std = 1.0f / sqrtf(statistics.var + eps);
        if (first_block && tid == 0 && has_running && count > 0) {
            running_mean[c] = keep * running_mean[c] + momentum * (channel_mean + channel_residual);
            running_var[c] = keep * running_var[c] + momentum * (statistics.var * unbias);
        }
    } else {
        channel_mean = running_mean[c];
        channel_inv_std = 1.0f / sqrtf(running_var[c] + eps);
    }
    if (first_block && tid == 0) {
        stats[c] = channel_mean;
        stats[C + c] = channel_residual;
        stats[2 * C + c] = channel_inv_std;
    }
    const float scale = has_weight ? channel_inv_std * weight[c] : channel_inv_std;
    const float shift = (has_bias ? bias[c] : 0.0f) - channel_residual * scale;
    ChannelWalk walk(share.first + tid, c, C, S);
    for (long long j = share.first + tid; j < share.end; j += BN_THREADS, walk.next()) {
        const long long i = walk.offset();
        y[i] = (x[i] - channel_mean) * scale + shift;
    }
}

/* A share's sums of dy and of dy * (x - mean), in every thread of the block. */
struct GradientSums {
    float dy, dy_centered;
};

static __device__ GradientSums share_gradient_sums(const float* __restrict__ x, const float* __restrict__ grad_y,
                                                   float channel_mean, long long c, long long C, long long S,
                                                   Share share, float* partial) {
    const int tid = threadIdx.x;
    CompensatedSum dy_sum, dy_centered_sum;
    ChannelWalk walk(share.first + tid, c, C, S);
    for (long long j = share.first + tid; j < share.end; j += BN_THREADS, walk.next()) {
        const long long i = walk.offset();
        const float dy = grad_y[i];
        dy_sum.add(dy);
        dy_centered_sum.add(dy * (x[i] - channel_mean));
    }
    GradientSums sums;
    sums.dy = block_sum<BN_THREADS>(dy_sum.sum, partial);
    sums.dy_centered = block_sum<BN_THREADS>(dy_centered_sum.sum, partial);
    return sums;
}

extern "C" __global__ void __launch_bounds__(BN_THREADS) batchnorm_backward_sums(
    const float* __restrict__ x, const float* __restrict__ grad_y, const float* __restrict__ stats,
    float* __restrict__ sums, int N, int C, long long S, long long chunk) {
    __shared__ float partial[BN_THREADS];
    const int c = blockIdx.x;
    const GradientSums share = share_gradient_sums(x, grad_y, stats[c], c, C, S, Share(chunk, (long long)N * S),
                                                   partial);
    if (threadIdx.x == 0) {
        float* out = sums + ((long long)c * gridDim.y + blockIdx.y) * 2;
        out[0] = share.dy;
        out[1] = share.dy_centered;
    }
}

extern "C" __global__ void __launch_bounds__(BN_THREADS) batchnorm_backward(
    const float* __restrict__ x, const float* __restrict__ grad_y, const float* __restrict__ sums,
    const float* __restrict__ stats, const float* __restrict__ weight, float* __restrict__ grad_x,
    float* __restrict__ grad_weight, float* __restrict__ grad_bias, int N, int C, long long S, long long chunk,
    int training, int has_weight, int need_x, int need_weight, int need_bias) {
    __shared__ float partial[BN_THREADS];
    __shared__ double wide[BN_THREADS];
    const int tid = threadIdx.x, c = blockIdx.x, B = gridDim.y;
    const long long count = (long long)N * S;
    const Share share(chunk, count);
    const float channel_mean = stats[c], channel_residual = stats[C + c], channel_inv_std = stats[2 * C + c];
    float sum_dy = 0.0f, sum_dy_x_hat = 0.0f;
    if (need_weight || need_bias || (need_x && training)) {
        GradientSums mine = {0.0f, 0.0f};
        if (B == 1) {
            mine = share_gradient_sums(x, grad_y, channel_mean, c, C, S, share, partial);
        } else if (tid < B) {
            const float* in = sums + ((long long)c * B + tid) * 2;
            mine.dy = in[0];
            mine.dy_centered = in[1];
        }
        float sum_dy_centered = mine.dy_centered;
        sum_dy = mine.dy;
        if (B > 1) { /* with B == 1 every thread holds the channel's sums */
            sum_dy = (float)block_sum<BN_THREADS>(tid < B ? (double)mine.dy : 0.0, wide);
            sum_dy_centered = (float)block_sum<BN_THREADS>(tid < B ? (double)mine.dy_centered : 0.0, wide);
        }
        sum_dy_x_hat = (sum_dy_centered - channel_residual * sum_dy) * channel_inv_std;
        if (blockIdx.y == 0 && tid == 0 && need_weight) grad_weight[c] = sum_dy_x_hat;
        if (blockIdx.y == 0 && tid == 0 && need_bias) grad_bias[c] = sum_dy;
    }
    if (!need_x) return;
    const float scale = has_weight ? channel_inv_std * weight[c] : channel_inv_std;
    const float divisor = count > 0 ? (float)count : 1.0f;
    /* dx = scale * (dy - (centered * k + m)), k = inv_std * s2 / count, m = (s1 - residual * inv_std * s2) / count
     * (as the cpu half) */
    const float k = channel_inv_std * (sum_dy_x_hat / divisor);
    const float m = (sum_dy - channel_residual * channel_inv_std * sum_dy_x_hat) / divisor;
    ChannelWalk walk(share.first + tid, c, C, S);
    for (long long j = share.first + tid; j < share.end; j += BN_THREADS, walk.next()) {
        const long long i = walk.offset();
        grad_x[i] = training ? (grad_y[i] - ((x[i] - channel_mean) * k + m)) * scale : grad_y[i] * scale;
    }
}
