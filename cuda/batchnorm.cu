/* batchnorm.cu: batch normalisation per channel, for gpucnn/ops/batchnorm.py.
 *
 * x, y, dy, dx: (N, C, S) float32, C-contiguous, S the product of the spatial sizes (1 for (N, C)
 * input); mean, inv_std, weight, bias, the running statistics and the parameter gradients: (C,).
 * Launch: grid (C,), block (256,): one block per channel c. Thread t visits the channel's values
 * j = t, t + 256, ... below count = N S, value j = n S + s lying at (n C + c) S + s, in that order,
 * summing them with Kahan's compensation, and the block's sums are reduced by a fixed-shape
 * shared-memory tree: every result is the same on every run and in every thread order. No atomics.
 * Plain float sums of the 256 values a thread visits on a 64x16x32x32 input were off the cpu
 * half's BLAS sums by 2.9e-4 of a weight gradient of -0.72 on an H200.
 *
 *   batchnorm_forward   training: the channel's mean, then in a second pass the means of
 *                       centered = x - mean and of its square (the corrected two-pass algorithm, as
 *                       the cpu half): the first, residual, is what rounding the mean to a float
 *                       left, and the biased variance is mean(centered^2) - residual^2 (0 where
 *                       rounding takes it below; residual 0 where it is inf or NaN). mean[c],
 *                       residual[c] and inv_std[c] = 1 / sqrt(var + eps) are written for backward,
 *                       and with has_running the running statistics become keep * running +
 *                       momentum * statistic, with the mean + residual and the unbiased variance
 *                       var * unbias (keep = 1 - momentum and unbias = count / (count - 1) from the
 *                       host, as the cpu half rounds them; never for an empty batch), and with
 *                       count_batch block 0 adds 1 to batches[0] (BatchNorm2d's num_batches_tracked:
 *                       a CuPy operation of its own was a launch per layer and step). Evaluation:
 *                       the running statistics stand in for the batch's, residual 0. Then
 *                       y = (centered - residual) * inv_std * weight + bias (a missing weight or
 *                       bias: 1 or 0).
 *   batchnorm_backward  s1 = sum(dy) and s2 = sum(dy * x_hat), x_hat = (centered - residual) *
 *                       inv_std: the bias and weight gradients (written where asked for); with
 *                       need_x, dx = scale * (dy - (x_hat * s2 + s1) / count) in training and
 *                       scale * dy in evaluation, scale = weight * inv_std.
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

extern "C" __global__ void __launch_bounds__(BN_THREADS) batchnorm_forward(
    const float* __restrict__ x, const float* __restrict__ weight, const float* __restrict__ bias,
    float* __restrict__ y, float* __restrict__ mean, float* __restrict__ residual, float* __restrict__ inv_std,
    float* __restrict__ running_mean, float* __restrict__ running_var, long long* __restrict__ batches, int N, int C,
    long long S, int training, int has_weight, int has_bias, int has_running, int count_batch, float momentum,
    float keep, float unbias, float eps) {
    __shared__ float partial[BN_THREADS];
    const int tid = threadIdx.x, c = blockIdx.x;
    if (count_batch && c == 0 && tid == 0) batches[0] += 1;
    const long long count = (long long)N * S;
    float channel_mean, channel_residual = 0.0f, channel_inv_std;
    if (training) {
        const float divisor = count > 0 ? (float)count : 1.0f;
        CompensatedSum sum;
        ChannelWalk walk(tid, c, C, S);
        for (long long j = tid; j < count; j += BN_THREADS, walk.next()) sum.add(x[walk.offset()]);
        channel_mean = block_sum<BN_THREADS>(sum.sum, partial) / divisor;
        CompensatedSum deviations, squares;
        walk = ChannelWalk(tid, c, C, S);
        for (long long j = tid; j < count; j += BN_THREADS, walk.next()) {
            const float centered = x[walk.offset()] - channel_mean;
            deviations.add(centered);
            squares.add(centered * centered);
        }
        channel_residual = block_sum<BN_THREADS>(deviations.sum, partial) / divisor;
        if (!is_finite(channel_residual)) channel_residual = 0.0f;
        float var = block_sum<BN_THREADS>(squares.sum, partial) / divisor - channel_residual * channel_residual;
        if (var < 0.0f) var = 0.0f;  /* a NaN stays */
        channel_inv_std = 1.0f / sqrtf(var + eps);
        if (tid == 0 && has_running && count > 0) {
            running_mean[c] = keep * running_mean[c] + momentum * (channel_mean + channel_residual);
            running_var[c] = keep * running_var[c] + momentum * (var * unbias);
        }
    } else {
        channel_mean = running_mean[c];
        channel_inv_std = 1.0f / sqrtf(running_var[c] + eps);
    }
    if (tid == 0) {
        mean[c] = channel_mean;
        residual[c] = channel_residual;
        inv_std[c] = channel_inv_std;
    }
    const float scale = has_weight ? channel_inv_std * weight[c] : channel_inv_std;
    const float shift = (has_bias ? bias[c] : 0.0f) - channel_residual * scale;
    ChannelWalk walk(tid, c, C, S);
    for (long long j = tid; j < count; j += BN_THREADS, walk.next()) {
        const long long i = walk.offset();
        y[i] = (x[i] - channel_mean) * scale + shift;
    }
}

extern "C" __global__ void __launch_bounds__(BN_THREADS) batchnorm_backward(
    const float* __restrict__ x, const float* __restrict__ grad_y, const float* __restrict__ mean,
    const float* __restrict__ residual, const float* __restrict__ inv_std, const float* __restrict__ weight,
    float* __restrict__ grad_x, float* __restrict__ grad_weight, float* __restrict__ grad_bias, int N, int C,
    long long S, int training, int has_weight, int need_x, int need_weight, int need_bias) {
    __shared__ float partial[BN_THREADS];
    const int tid = threadIdx.x, c = blockIdx.x;
    const long long count = (long long)N * S;
    const float channel_mean = mean[c], channel_residual = residual[c], channel_inv_std = inv_std[c];
    float sum_dy = 0.0f, sum_dy_x_hat = 0.0f;
    if (need_weight || need_bias || (need_x && training)) {
        CompensatedSum dy_sum, dy_centered_sum;
        ChannelWalk walk(tid, c, C, S);
        for (long long j = tid; j < count; j += BN_THREADS, walk.next()) {
            const long long i = walk.offset();
            const float dy = grad_y[i];
            dy_sum.add(dy);
            dy_centered_sum.add(dy * (x[i] - channel_mean));
        }
        sum_dy = block_sum<BN_THREADS>(dy_sum.sum, partial);
        const float sum_dy_centered = block_sum<BN_THREADS>(dy_centered_sum.sum, partial);
        sum_dy_x_hat = (sum_dy_centered - channel_residual * sum_dy) * channel_inv_std;
        if (tid == 0 && need_weight) grad_weight[c] = sum_dy_x_hat;
        if (tid == 0 && need_bias) grad_bias[c] = sum_dy;
    }
    if (!need_x) return;
    const float scale = has_weight ? channel_inv_std * weight[c] : channel_inv_std;
    const float divisor = count > 0 ? (float)count : 1.0f;
    /* dx = scale * (dy - (centered * k + m)), k = inv_std * s2 / count, m = (s1 - residual * inv_std * s2) / count
     * (as the cpu half) */
    const float k = channel_inv_std * (sum_dy_x_hat / divisor);
    const float m = (sum_dy - channel_residual * channel_inv_std * sum_dy_x_hat) / divisor;
    ChannelWalk walk(tid, c, C, S);
    for (long long j = tid; j < count; j += BN_THREADS, walk.next()) {
        const long long i = walk.offset();
        grad_x[i] = training ? (grad_y[i] - ((x[i] - channel_mean) * k + m)) * scale : grad_y[i] * scale;
    }
}
