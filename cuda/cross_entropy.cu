/* cross_entropy.cu: softmax cross-entropy on logits and integer class targets, forward and backward.
 *
 * Layout: logits (N, C, D) float32 C-contiguous (D: the product of the trailing sizes, 1 for (N, C));
 *   target (N, D) int64; one sample per (n, d), `samples` = N * D of them, sample s = n * D + d.
 * With label smoothing e the target distribution is q = (1 - e) * one_hot + e / C, and a sample's
 * loss is -sum_c q_c * log_softmax(x)_c; its gradient with respect to the logits is softmax(x) - q.
 * Both follow the CPU half's operations step by step (gpucnn/ops/cross_entropy.py): shifted =
 * x - max, log_sum = log(sum(exp(shifted))), log_probs = shifted - log_sum. A NaN logit makes its
 * sample's sum NaN, and +inf or only -inf logits make inf - inf: NaN, as in PyTorch.
 *
 * cross_entropy_forward   grid (min(ceil(samples / 256), 65535),), block (256,): thread s (grid
 *   stride) owns sample s: loss[s], and stats[s] = max, stats[samples + s] = log_sum for backward.
 *   A target outside [0, C) reads no logit; its loss is NaN (cross_entropy_reduce reports it).
 * cross_entropy_reduce    grid (1,), block (256,): total[0] = the sum of the losses / divisor (0 / 0
 *   is NaN: the mean of an empty batch), and first_bad[0] = the first sample whose target is outside
 *   [0, C), or `samples` if none. Thread t adds samples t, t + 256, ... in order, then a fixed-shape
 *   tree adds the 256 partial sums: the same bits on every run and in every thread order.
 * cross_entropy_backward  grid (min(ceil(N * C * D / 256), 65535),), block (256,): one thread per
 *   logit (grid stride): grad = (softmax - q) * scale, where scale = grad_output[s] / divisor with
 *   per_sample (reduction 'none'), else grad_output[0] / divisor.
 */
#include "common.cuh"

#define CROSS_ENTROPY_THREADS 256

extern "C" __global__ void cross_entropy_forward(const float* __restrict__ logits, const long long* __restrict__ target,
                                                 float* __restrict__ loss, float* __restrict__ stats, int classes,
                                                 long long inner, long long samples, float smoothing) {
    for (long long s = first_index(); s < samples; s += grid_threads()) {
        const long long n = s / inner, d = s - n * inner;
        const float* x = logits + n * classes * inner + d;
        float top = x[0];
        for (int c = 1; c < classes; ++c) {
            const float value = x[c * inner];
            if (value > top) top = value;
        }
        float sum = 0.0f, sum_log_probs = 0.0f;
        for (int c = 0; c < classes; ++c) sum += expf(x[c * inner] - top);
        const float log_sum = logf(sum);
        if (smoothing != 0.0f) {
            for (int c = 0; c < classes; ++c) sum_log_probs += (x[c * inner] - top) - log_sum;
        }
        const long long t = target[s];
        float value = __int_as_float(0x7fc00000);  /* NaN: an out-of-range target is reported, not read */
        if (t >= 0 && t < classes) {
            value = -((x[t * inner] - top) - log_sum);
            if (smoothing != 0.0f) value = (1.0f - smoothing) * value - (smoothing / (float)classes) * sum_log_probs;
        }
        loss[s] = value;
        stats[s] = top;
        stats[samples + s] = log_sum;
    }
}

extern "C" __global__ void cross_entropy_reduce(const float* __restrict__ loss, const long long* __restrict__ target,
                                                float* __restrict__ total, long long* __restrict__ first_bad,
                                                long long samples, int classes, float divisor) {
    __shared__ float sums[CROSS_ENTROPY_THREADS];
    __shared__ long long bad[CROSS_ENTROPY_THREADS];
    const int tid = threadIdx.x;
    float sum = 0.0f;
    long long first = samples;
    for (long long s = tid; s < samples; s += CROSS_ENTROPY_THREADS) {
        sum += loss[s];
        const long long t = target[s];
        if (first == samples && (t < 0 || t >= classes)) first = s;
    }
    sums[tid] = sum;
    bad[tid] = first;
    __syncthreads();
    for (int half = CROSS_ENTROPY_THREADS / 2; half > 0; half /= 2) {
        if (tid < half) {
            sums[tid] += sums[tid + half];
            if (bad[tid + half] < bad[tid]) bad[tid] = bad[tid + half];
        }
        __syncthreads();
    }
    if (tid == 0) {
        total[0] = sums[0] / divisor;
        first_bad[0] = bad[0];
    }
}

extern "C" __global__ void cross_entropy_backward(const float* __restrict__ logits,
                                                  const long long* __restrict__ target, const float* __restrict__ stats,
                                                  const float* __restrict__ grad_output, float* __restrict__ grad,
                                                  int classes, long long inner, long long samples, float smoothing,
                                                  float divisor, int per_sample) {
    const long long count = samples * classes;
    const float off = smoothing / (float)classes, on = (1.0f - smoothing) + off;
    for (long long i = first_index(); i < count; i += grid_threads()) {
        const long long plane = (long long)classes * inner, n = i / plane, rest = i - n * plane;
        const int c = (int)(rest / inner);
        const long long s = n * inner + (rest - (long long)c * inner);
        const float prob = expf((logits[i] - stats[s]) - stats[samples + s]);
        const float scale = grad_output[per_sample ? s : 0] / divisor;
        grad[i] = (prob - (target[s] == c ? on : off)) * scale;
    }
}
