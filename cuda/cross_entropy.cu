/* cross_entropy.cu: softmax cross-entropy on logits and integer class targets, forward and backward,
 * with class weights, an ignored target value and label smoothing (PyTorch's definitions).
 *
 * Layout: logits (N, C, D) float32 C-contiguous (D: the product of the trailing sizes, 1 for (N, C));
 *   target (N, D) int64; one sample per (n, d), `samples` = N * D of them, sample s = n * D + d;
 *   weight (C,) float32, read only where has_weight (else w = 1 for every class).
 * A sample whose target is ignore_index has loss 0 and gradient 0. Any other sample's loss, with
 * label smoothing e, is (1 - e) * w[t] * -log_softmax(x)[t] + (e / C) * sum_c w[c] * -log_softmax(x)[c];
 * its gradient with respect to logit c is coef * softmax(x)[c] - (e / C) * w[c] - (c == t) * (1 - e) * w[t],
 * with coef = (1 - e) * w[t] + (e / C) * sum_c w[c] (1 without weights: softmax - q, q = (1 - e) *
 * one_hot + e / C). Both follow the CPU half's operations step by step (gpucnn/ops/cross_entropy.py):
 * shifted = x - max, log_sum = log(sum(exp(shifted))), log_probs = shifted - log_sum. A NaN logit
 * makes its sample's sum NaN, and +inf or only -inf logits make inf - inf: NaN, as in PyTorch.
 *
 * cross_entropy_forward   grid (min(ceil(samples / 256), 65535),), block (256,): thread s (grid
 *   stride) owns sample s: loss[s], and stats[s] = max, stats[samples + s] = log_sum for backward.
 *   A target outside [0, C) that is not ignored reads no logit; its loss is NaN (cross_entropy_reduce
 *   reports it).
 * cross_entropy_reduce    grid (1,), block (256,): sums[0] = the sum of the losses, divided by the
 *   divisor where `mean` (0 / 0 is NaN: an empty batch, or every target ignored); sums[1] = the
 *   divisor, the sum of w[t] over the samples not ignored (their number without weights), added in
 *   double; sums[2] = the sum of the class weights; first_bad[0] = the first sample whose target is
 *   outside [0, C) and not ignored, or `samples` if none. Thread t adds samples t, t + 256, ... in
 *   order, then a fixed-shape tree adds the 256 partial sums: the same bits on every run and in every
 *   thread order.
 * cross_entropy_backward  grid (min(ceil(N * C * D / 256), 65535),), block (256,): one thread per
 *   logit (grid stride): its gradient times the upstream one, grad_output[s] for reduction 0
 *   ('none'), else grad_output[0], divided by sums[1] for reduction 2 ('mean'; 1 is 'sum').
 */
#include "common.cuh"

#define CROSS_ENTROPY_THREADS 256

extern "C" __global__ void cross_entropy_forward(const float* __restrict__ logits, const long long* __restrict__ target,
                                                 const float* __restrict__ weight, float* __restrict__ loss,
                                                 float* __restrict__ stats, int classes, long long inner,
                                                 long long samples, float smoothing, int has_weight,
                                                 long long ignore_index) {
    for (long long s = first_index(); s < samples; s += grid_threads()) {
        const long long n = s / inner, d = s - n * inner;
        const float* x = logits + n * classes * inner + d;
        const long long t = target[s];
        if (t == ignore_index) {  /* nothing read: backward gives it a zero gradient without its stats */
            loss[s] = 0.0f;
            stats[s] = stats[samples + s] = 0.0f;
            continue;
        }
        float top = x[0];
        for (int c = 1; c < classes; ++c) {
            const float value = x[c * inner];
            if (value > top) top = value;
        }
        float sum = 0.0f, sum_log_probs = 0.0f;
        for (int c = 0; c < classes; ++c) sum += expf(x[c * inner] - top);
        const float log_sum = logf(sum);
        if (smoothing != 0.0f) {
            for (int c = 0; c < classes; ++c) {
                const float log_prob = (x[c * inner] - top) - log_sum;
                sum_log_probs += has_weight ? log_prob * weight[c] : log_prob;
            }
        }
        float value = __int_as_float(0x7fc00000);  /* NaN: an out-of-range target is reported, not read */
        if (t >= 0 && t < classes) {
            value = -((x[t * inner] - top) - log_sum);
            if (has_weight) value = weight[t] * value;
            if (smoothing != 0.0f) value = (1.0f - smoothing) * value - (smoothing / (float)classes) * sum_log_probs;
        }
        loss[s] = value;
        stats[s] = top;
        stats[samples + s] = log_sum;
    }
}

extern "C" __global__ void cross_entropy_reduce(const float* __restrict__ loss, const long long* __restrict__ target,
                                                const float* __restrict__ weight, float* __restrict__ sums,
                                                long long* __restrict__ first_bad, int classes, long long samples,
                                                int has_weight, long long ignore_index, int mean) {
    __shared__ float totals[CROSS_ENTROPY_THREADS], weights[CROSS_ENTROPY_THREADS];
    __shared__ double divisors[CROSS_ENTROPY_THREADS];
    __shared__ long long bad[CROSS_ENTROPY_THREADS];
    const int tid = threadIdx.x;
    float total = 0.0f, weight_sum = 0.0f;
    double divisor = 0.0;
    long long first = samples;
    for (long long s = tid; s < samples; s += CROSS_ENTROPY_THREADS) {
        total += loss[s];
        const long long t = target[s];
        if (t == ignore_index) continue;
        if (t < 0 || t >= classes) {
            if (first == samples) first = s;
        } else {
            divisor += has_weight ? (double)weight[t] : 1.0;
        }
    }
    if (has_weight) {
        for (int c = tid; c < classes; c += CROSS_ENTROPY_THREADS) weight_sum += weight[c];
    }
    totals[tid] = total;
    weights[tid] = weight_sum;
    divisors[tid] = divisor;
    bad[tid] = first;
    __syncthreads();
    for (int half = CROSS_ENTROPY_THREADS / 2; half > 0; half /= 2) {
        if (tid < half) {
            totals[tid] += totals[tid + half];
            weights[tid] += weights[tid + half];
            divisors[tid] += divisors[tid + half];
            if (bad[tid + half] < bad[tid]) bad[tid] = bad[tid + half];
        }
        __syncthreads();
    }
    if (tid == 0) {
        const float divisor_sum = (float)divisors[0];
        sums[0] = mean ? totals[0] / divisor_sum : totals[0];
        sums[1] = divisor_sum;
        sums[2] = weights[0];
        first_bad[0] = bad[0];
    }
}

extern "C" __global__ void cross_entropy_backward(const float* __restrict__ logits,
                                                  const long long* __restrict__ target,
                                                  const float* __restrict__ weight,
                                                  const float* __restrict__ stats, const float* __restrict__ sums,
                                                  const float* __restrict__ grad_output, float* __restrict__ grad,
                                                  int classes, long long inner, long long samples, float smoothing,
                                                  int has_weight, long long ignore_index, int reduction) {
    const long long count = samples * classes;
    const float off = smoothing / (float)classes;
    for (long long i = first_index(); i < count; i += grid_threads()) {
        const long long plane = (long long)classes * inner, n = i / plane, rest = i - n * plane;
        const int c = (int)(rest / inner);
        const long long s = n * inner + (rest - (long long)c * inner);
        const long long t = target[s];
        if (t == ignore_index) {
            grad[i] = 0.0f;
            continue;
        }
        const float prob = expf((logits[i] - stats[s]) - stats[samples + s]);
        float coef = 1.0f, target_term;
        if (has_weight) {
            const float target_weight = weight[t];
            coef = (1.0f - smoothing) * target_weight + off * sums[2];
            target_term = t == c ? (1.0f - smoothing) * target_weight + off * target_weight : off * weight[c];
        } else {
            target_term = t == c ? (1.0f - smoothing) + off : off;
        }
        float scale = grad_output[reduction == 0 ? s : 0];
        if (reduction == 2) scale = scale / sums[1];
        grad[i] = (coef * prob - target_term) * scale;
    }
}
