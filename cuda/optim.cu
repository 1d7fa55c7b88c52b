/* optim.cu: optimizer updates for gpucnn/optim.py, every parameter of a group in one launch.
 *
 * A launch updates `tensors` parameters listed in `table`, int64, a row of OPTIM_COLUMNS per parameter:
 *   [0] its first block, [1] n, its number of elements, [2..6] the addresses of its float32,
 *   C-contiguous arrays (param, grad, then the optimizer's state; an unused one repeats param and is
 *   never touched), [7..8] two per-parameter values, read through `values`, the same table seen as
 *   double (float32 values, exact in double); a kernel of four arrays (nadam, radam) takes a third
 *   value in [6].
 * Block b updates the parameter of the last row whose first block is at most b (a binary search; a
 * parameter of no elements has no blocks), elements (b - first) * OPTIM_CHUNK + threadIdx.x + k * 256
 * for k < 4; block (256,), grid (the last row's first block plus its blocks,). Each element's update
 * reads and writes that element alone, so no thread order matters. As one launch per parameter the
 * updates took, in a cProfile of a small ResNet's training step on an H100, 29 of its 127 launches.
 *
 *   optim_sgd  torch.optim.SGD's step, as SGD._update runs it on the cpu: g = grad (negated with
 *              maximize) + weight_decay * param; with momentum, buffer = g on the parameter's first
 *              step ([7]: 1.0), else momentum * buffer + keep * g (keep = 1 - dampening, rounded by the
 *              host as the cpu half rounds it), and g = g + momentum * buffer (nesterov) or buffer;
 *              param -= lr * g. Arrays: param, grad, buffer.
 *   optim_adam torch.optim.Adam's (and AdamW's) step, as Adam._update: g = grad (negated with
 *              maximize); weight decay scales param by decay_scale = 1 - lr * weight_decay
 *              (decoupled) or adds weight_decay * param to g; m moves towards g by torch.lerp's
 *              two-sided rule (weight 1 - beta1); v = beta2 v + (1 - beta2) g g, v_max = max(v_max, v)
 *              with amsgrad (NaN wins, as NumPy's maximum); param -= step_size * m / (sqrt(v or v_max)
 *              / bias_correction2_sqrt + eps). The host computes step_size ([7]) and the bias
 *              correction ([8]) from each parameter's step count. Arrays: param, grad, m, v, v_max.
 *   optim_adadelta torch.optim.Adadelta's step, as Adadelta._update: g = grad (negated with
 *              maximize) + weight_decay * param; v = rho v + (1 - rho) g g; delta = sqrt(u + eps) /
 *              sqrt(v + eps) * g; u = rho u + (1 - rho) delta delta; param -= lr * delta. Arrays:
 *              param, grad, v, u.
 *   optim_rmsprop torch.optim.RMSprop's step, as RMSprop._update: g = grad (negated with maximize) +
 *              weight_decay * param; v = alpha v + (1 - alpha) g g; centered: m moves towards g by
 *              torch.lerp's two-sided rule (weight rest = 1 - alpha), avg = sqrt(v - m m) + eps, else
 *              avg = sqrt(v) + eps; with momentum, b = momentum * b + g / avg and param -= lr * b, else
 *              param -= lr * (g / avg). Arrays: param, grad, v, m, b (m unused unless centered, b
 *              unless use_momentum).
 *   optim_adagrad torch.optim.Adagrad's step, as Adagrad._update: g = grad (negated with maximize) +
 *              weight_decay * param; s = s + g g; param -= clr * g / (sqrt(s) + eps). The host computes
 *              clr = lr / (1 + (step - 1) lr_decay) ([7]) from each parameter's step count. Arrays:
 *              param, grad, s.
 *   optim_adamax torch.optim.Adamax's step, as Adamax._update: g = grad (negated with maximize) +
 *              weight_decay * param; m moves towards g by torch.lerp's two-sided rule (weight 1 - beta1);
 *              u = max(beta2 u, |g| + eps) (NaN wins, as NumPy's maximum); param -= clr * m / u, with
 *              clr = lr / (1 - beta1^step) ([7]). Arrays: param, grad, m, u.
 *   optim_nadam torch.optim.NAdam's step, as NAdam._update: g and weight decay as optim_adam's; m and v
 *              as there; denom = sqrt(v / bias_correction2) + eps; param -= grad_step * g / denom, then
 *              param -= avg_step * m / denom. The host computes bias_correction2 = 1 - beta2^step ([6]),
 *              grad_step = lr (1 - mu_t) / (1 - mu_product) ([7]) and avg_step = lr mu_{t+1} / (1 -
 *              mu_product mu_{t+1}) ([8]) from each parameter's step count and mu_product. Arrays:
 *              param, grad, m, v.
 *   optim_radam torch.optim.RAdam's step, as RAdam._update: g, weight decay, m and v as optim_nadam's;
 *              corrected = m / bias_correction1 * lr; where the rectification term rect ([8]) is 0 (the
 *              steps of rho_t <= 5), param -= corrected, else param -= corrected * ((1 / (sqrt(v) +
 *              eps)) * bias_correction2_sqrt) * rect. The host computes bias_correction1 ([6]),
 *              bias_correction2_sqrt ([7]) and rect from each parameter's step count. Arrays: param,
 *              grad, m, v.
 * Every scalar comes from the host rounded to float32 as NumPy rounds it on the cpu (1 - beta2, and
 * the like, computed in double first).
 */
#include "common.cuh"

#define OPTIM_THREADS 256
#define OPTIM_CHUNK (4 * OPTIM_THREADS)
#define OPTIM_COLUMNS 9

/* This block's row of the table: the last one whose first block is at most blockIdx.x. */
static __device__ __forceinline__ const long long* optim_row(const long long* __restrict__ table, int tensors) {
    const long long block = blockIdx.x;
    int low = 0, high = tensors - 1;
    while (low < high) {
        const int middle = (low + high + 1) / 2;
        if (table[(long long)middle * OPTIM_COLUMNS] <= block)
            low = middle;
        else
            high = middle - 1;
    }
    return table + (long long)low * OPTIM_COLUMNS;
}

/* Array `k` (0: param, 1: grad, 2... the state) of a row. */
static __device__ __forceinline__ float* optim_array(const long long* row, int k) {
    return (float*)(unsigned long long)row[2 + k];
}

extern "C" __global__ void optim_sgd(const long long* __restrict__ table, const double* __restrict__ values,
                                     int tensors, float lr, float momentum, float keep, float weight_decay,
                                     int use_momentum, int nesterov, int maximize) {
    const long long* row = optim_row(table, tensors);
    float* __restrict__ param = optim_array(row, 0);
    const float* __restrict__ grad = optim_array(row, 1);
    float* __restrict__ buffer = optim_array(row, 2);
    const bool first_step = values[(row - table) + 7] != 0.0;
    const long long n = row[1], start = (blockIdx.x - row[0]) * OPTIM_CHUNK + threadIdx.x;
    for (long long i = start; i < n && i < start + OPTIM_CHUNK; i += OPTIM_THREADS) {
        float g = maximize ? -grad[i] : grad[i];
        if (weight_decay != 0.0f) g = g + weight_decay * param[i];
        if (use_momentum) {
            const float b = first_step ? g : momentum * buffer[i] + keep * g;
            buffer[i] = b;
            g = nesterov ? g + momentum * b : b;
        }
        param[i] = param[i] - lr * g;
    }
}

extern "C" __global__ void optim_adam(const long long* __restrict__ table, const double* __restrict__ values,
                                      int tensors, float lerp_weight, float lerp_rest, float beta2, float rest2,
                                      float weight_decay, float decay_scale, float eps, int lerp_from_start,
                                      int amsgrad, int maximize, int decoupled) {
    const long long* row = optim_row(table, tensors);
    float* __restrict__ param = optim_array(row, 0);
    const float* __restrict__ grad = optim_array(row, 1);
    float* __restrict__ exp_avg = optim_array(row, 2);
    float* __restrict__ exp_avg_sq = optim_array(row, 3);
    float* __restrict__ max_exp_avg_sq = optim_array(row, 4);
    const double* row_values = values + (row - table);
    const float step_size = (float)row_values[7], bias_correction2_sqrt = (float)row_values[8];
    const long long n = row[1], start = (blockIdx.x - row[0]) * OPTIM_CHUNK + threadIdx.x;
    for (long long i = start; i < n && i < start + OPTIM_CHUNK; i += OPTIM_THREADS) {
        float g = maximize ? -grad[i] : grad[i];
        if (weight_decay != 0.0f) {
            if (decoupled)
                param[i] = param[i] * decay_scale;
            else
                g = g + weight_decay * param[i];
        }
        /* torch.lerp: m + w (g - m) for |w| < 0.5 (lerp_from_start), else g - (g - m) (1 - w) */
        const float m =
            lerp_from_start ? exp_avg[i] + lerp_weight * (g - exp_avg[i]) : g - (g - exp_avg[i]) * lerp_rest;
        exp_avg[i] = m;
        const float v = exp_avg_sq[i] * beta2 + rest2 * g * g;
        exp_avg_sq[i] = v;
        float second = v;
        if (amsgrad) {
            const float previous = max_exp_avg_sq[i];
            second = is_nan(previous) || is_nan(v) ? previous + v : (previous > v ? previous : v);
            max_exp_avg_sq[i] = second;
        }
        param[i] = param[i] - step_size * m / (sqrtf(second) / bias_correction2_sqrt + eps);
    }
}

extern "C" __global__ void optim_adadelta(const long long* __restrict__ table, const double* __restrict__ values,
                                          int tensors, float lr, float rho, float rest, float eps, float weight_decay,
                                          int maximize) {
    const long long* row = optim_row(table, tensors);
    float* __restrict__ param = optim_array(row, 0);
    const float* __restrict__ grad = optim_array(row, 1);
    float* __restrict__ square_avg = optim_array(row, 2);
    float* __restrict__ acc_delta = optim_array(row, 3);
    const long long n = row[1], start = (blockIdx.x - row[0]) * OPTIM_CHUNK + threadIdx.x;
    for (long long i = start; i < n && i < start + OPTIM_CHUNK; i += OPTIM_THREADS) {
        float g = maximize ? -grad[i] : grad[i];
        if (weight_decay != 0.0f) g = g + weight_decay * param[i];
        const float v = square_avg[i] * rho + rest * g * g;
        square_avg[i] = v;
        const float delta = sqrtf(acc_delta[i] + eps) / sqrtf(v + eps) * g;
        acc_delta[i] = acc_delta[i] * rho + rest * delta * delta;
        param[i] = param[i] - lr * delta;
    }
}

extern "C" __global__ void optim_rmsprop(const long long* __restrict__ table, const double* __restrict__ values,
                                         int tensors, float lr, float alpha, float rest, float lerp_rest, float eps,
                                         float weight_decay, float momentum, int lerp_from_start, int centered,
                                         int use_momentum, int maximize) {
    const long long* row = optim_row(table, tensors);
    float* __restrict__ param = optim_array(row, 0);
    const float* __restrict__ grad = optim_array(row, 1);
    float* __restrict__ square_avg = optim_array(row, 2);
    float* __restrict__ grad_avg = optim_array(row, 3);
    float* __restrict__ buffer = optim_array(row, 4);
    const long long n = row[1], start = (blockIdx.x - row[0]) * OPTIM_CHUNK + threadIdx.x;
    for (long long i = start; i < n && i < start + OPTIM_CHUNK; i += OPTIM_THREADS) {
        float g = maximize ? -grad[i] : grad[i];
        if (weight_decay != 0.0f) g = g + weight_decay * param[i];
        const float v = square_avg[i] * alpha + rest * g * g;
        square_avg[i] = v;
        float avg;
        if (centered) {
            /* torch.lerp: m + w (g - m) for |w| < 0.5 (lerp_from_start), else g - (g - m) (1 - w) */
            const float m =
                lerp_from_start ? grad_avg[i] + rest * (g - grad_avg[i]) : g - (g - grad_avg[i]) * lerp_rest;
            grad_avg[i] = m;
            avg = sqrtf(v - m * m) + eps;
        } else {
            avg = sqrtf(v) + eps;
        }
        if (use_momentum) {
            const float b = buffer[i] * momentum + g / avg;
            buffer[i] = b;
            param[i] = param[i] - lr * b;
        } else {
            param[i] = param[i] - lr * (g / avg);
        }
    }
}

extern "C" __global__ void optim_adagrad(const long long* __restrict__ table, const double* __restrict__ values,
                                         int tensors, float weight_decay, float eps, int maximize) {
    const long long* row = optim_row(table, tensors);
    float* __restrict__ param = optim_array(row, 0);
    const float* __restrict__ grad = optim_array(row, 1);
    float* __restrict__ state_sum = optim_array(row, 2);
    const float clr = (float)values[(row - table) + 7];
    const long long n = row[1], start = (blockIdx.x - row[0]) * OPTIM_CHUNK + threadIdx.x;
    for (long long i = start; i < n && i < start + OPTIM_CHUNK; i += OPTIM_THREADS) {
        float g = maximize ? -grad[i] : grad[i];
        if (weight_decay != 0.0f) g = g + weight_decay * param[i];
        const float s = state_sum[i] + g * g;
        state_sum[i] = s;
        param[i] = param[i] - clr * g / (sqrtf(s) + eps);
    }
}

extern "C" __global__ void optim_adamax(const long long* __restrict__ table, const double* __restrict__ values,
                                        int tensors, float lerp_weight, float lerp_rest, float beta2, float eps,
                                        float weight_decay, int lerp_from_start, int maximize) {
    const long long* row = optim_row(table, tensors);
    float* __restrict__ param = optim_array(row, 0);
    const float* __restrict__ grad = optim_array(row, 1);
    float* __restrict__ exp_avg = optim_array(row, 2);
    float* __restrict__ exp_inf = optim_array(row, 3);
    const float clr = (float)values[(row - table) + 7];
    const long long n = row[1], start = (blockIdx.x - row[0]) * OPTIM_CHUNK + threadIdx.x;
    for (long long i = start; i < n && i < start + OPTIM_CHUNK; i += OPTIM_THREADS) {
        float g = maximize ? -grad[i] : grad[i];
        if (weight_decay != 0.0f) g = g + weight_decay * param[i];
        /* torch.lerp: m + w (g - m) for |w| < 0.5 (lerp_from_start), else g - (g - m) (1 - w) */
        const float m =
            lerp_from_start ? exp_avg[i] + lerp_weight * (g - exp_avg[i]) : g - (g - exp_avg[i]) * lerp_rest;
        exp_avg[i] = m;
        const float decayed = exp_inf[i] * beta2, bound = fabsf(g) + eps;
        const float u = is_nan(decayed) || is_nan(bound) ? decayed + bound : (decayed > bound ? decayed : bound);
        exp_inf[i] = u;
        param[i] = param[i] - clr * m / u;
    }
}

extern "C" __global__ void optim_nadam(const long long* __restrict__ table, const double* __restrict__ values,
                                       int tensors, float lerp_weight, float lerp_rest, float beta2, float rest2,
                                       float weight_decay, float decay_scale, float eps, int lerp_from_start,
                                       int maximize, int decoupled) {
    const long long* row = optim_row(table, tensors);
    float* __restrict__ param = optim_array(row, 0);
    const float* __restrict__ grad = optim_array(row, 1);
    float* __restrict__ exp_avg = optim_array(row, 2);
    float* __restrict__ exp_avg_sq = optim_array(row, 3);
    const double* row_values = values + (row - table);
    const float bias_correction2 = (float)row_values[6], grad_step = (float)row_values[7],
                avg_step = (float)row_values[8];
    const long long n = row[1], start = (blockIdx.x - row[0]) * OPTIM_CHUNK + threadIdx.x;
    for (long long i = start; i < n && i < start + OPTIM_CHUNK; i += OPTIM_THREADS) {
        float g = maximize ? -grad[i] : grad[i];
        float p = param[i];
        if (weight_decay != 0.0f) {
            if (decoupled)
                p = p * decay_scale;
            else
                g = g + weight_decay * p;
        }
        /* torch.lerp: m + w (g - m) for |w| < 0.5 (lerp_from_start), else g - (g - m) (1 - w) */
        const float m =
            lerp_from_start ? exp_avg[i] + lerp_weight * (g - exp_avg[i]) : g - (g - exp_avg[i]) * lerp_rest;
        exp_avg[i] = m;
        const float v = exp_avg_sq[i] * beta2 + rest2 * g * g;
        exp_avg_sq[i] = v;
        const float denom = sqrtf(v / bias_correction2) + eps;
        p = p - grad_step * g / denom;
        param[i] = p - avg_step * m / denom;
    }
}

extern "C" __global__ void optim_radam(const long long* __restrict__ table, const double* __restrict__ values,
                                       int tensors, float lerp_weight, float lerp_rest, float beta2, float rest2,
                                       float weight_decay, float decay_scale, float eps, float lr,
                                       int lerp_from_start, int maximize, int decoupled) {
    const long long* row = optim_row(table, tensors);
    float* __restrict__ param = optim_array(row, 0);
    const float* __restrict__ grad = optim_array(row, 1);
    float* __restrict__ exp_avg = optim_array(row, 2);
    float* __restrict__ exp_avg_sq = optim_array(row, 3);
    const double* row_values = values + (row - table);
    const float bias_correction1 = (float)row_values[6], bias_correction2_sqrt = (float)row_values[7],
                rect = (float)row_values[8];
    const long long n = row[1], start = (blockIdx.x - row[0]) * OPTIM_CHUNK + threadIdx.x;
    for (long long i = start; i < n && i < start + OPTIM_CHUNK; i += OPTIM_THREADS) {
        float g = maximize ? -grad[i] : grad[i];
        float p = param[i];
        if (weight_decay != 0.0f) {
            if (decoupled)
                p = p * decay_scale;
            else
                g = g + weight_decay * p;
        }
        /* torch.lerp: m + w (g - m) for |w| < 0.5 (lerp_from_start), else g - (g - m) (1 - w) */
        const float m =
            lerp_from_start ? exp_avg[i] + lerp_weight * (g - exp_avg[i]) : g - (g - exp_avg[i]) * lerp_rest;
        exp_avg[i] = m;
        const float v = exp_avg_sq[i] * beta2 + rest2 * g * g;
        exp_avg_sq[i] = v;
        const float corrected = m / bias_correction1 * lr;
        if (rect != 0.0f) {
            const float adaptive_lr = 1.0f / (sqrtf(v) + eps) * bias_correction2_sqrt;
            p = p - corrected * adaptive_lr * rect;
        } else {
            p = p - corrected;
        }
        param[i] = p;
    }
}
