/* optim.cu: optimizer updates for gpucnn/optim.py, one launch per parameter.
 *
 * param, grad, buffer: float32, n elements each, C-contiguous. Thread per element over a 1-D grid
 * (grid-stride: any grid size), block (256,); each element's update is independent of the others.
 *
 *   optim_sgd  torch.optim.SGD's step, as SGD._update runs it on the cpu: g = grad (negated with
 *              maximize) + weight_decay * param; with momentum, buffer = g on the first step, else
 *              momentum * buffer + keep * g (keep = 1 - dampening, rounded by the host as the cpu half
 *              rounds it), and g = g + momentum * buffer (nesterov) or buffer; param -= lr * g. As
 *              CuPy array operations the update was five launches per parameter: in a cProfile of a
 *              small ResNet's training step on an H200, 48 us of host time per parameter, a sixth of
 *              the step.
 *   optim_adam torch.optim.Adam's (and AdamW's) step, as Adam._update: g = grad (negated with
 *              maximize); weight decay scales param by decay_scale = 1 - lr * weight_decay
 *              (decoupled) or adds weight_decay * param to g; m moves towards g by torch.lerp's
 *              two-sided rule (weight 1 - beta1); v = beta2 v + (1 - beta2) g g, v_max = max(v_max, v)
 *              with amsgrad (NaN wins, as NumPy's maximum); param -= step_size * m / (sqrt(v or v_max)
 *              / bias_correction2_sqrt + eps). The host computes step_size and the bias correction
 *              from the step count.
 *   optim_adadelta torch.optim.Adadelta's step, as Adadelta._update: g = grad (negated with
 *              maximize) + weight_decay * param; v = rho v + (1 - rho) g g; delta = sqrt(u + eps) /
 *              sqrt(v + eps) * g; u = rho u + (1 - rho) delta delta; param -= lr * delta.
 * Every scalar comes from the host rounded to float32 as NumPy rounds it on the cpu (1 - beta2, and
 * the like, computed in double first).
 */
#include "common.cuh"

extern "C" __global__ void optim_sgd(float* __restrict__ param, const float* __restrict__ grad,
                                     float* __restrict__ buffer, long long n, float lr, float momentum, float keep,
                                     float weight_decay, int use_momentum, int first_step, int nesterov,
                                     int maximize) {
    for (long long i = first_index(); i < n; i += grid_threads()) {
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

extern "C" __global__ void optim_adam(float* __restrict__ param, const float* __restrict__ grad,
                                     float* __restrict__ exp_avg, float* __restrict__ exp_avg_sq,
                                     float* __restrict__ max_exp_avg_sq, long long n, float lerp_weight,
                                     float lerp_rest, float beta2, float rest2, float weight_decay, float decay_scale,
                                     float step_size, float bias_correction2_sqrt, float eps, int lerp_from_start,
                                     int amsgrad, int maximize, int decoupled) {
    for (long long i = first_index(); i < n; i += grid_threads()) {
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

extern "C" __global__ void optim_adadelta(float* __restrict__ param, const float* __restrict__ grad,
                                         float* __restrict__ square_avg, float* __restrict__ acc_delta, long long n,
                                         float lr, float rho, float rest, float eps, float weight_decay, int maximize) {
    for (long long i = first_index(); i < n; i += grid_threads()) {
        float g = maximize ? -grad[i] : grad[i];
        if (weight_decay != 0.0f) g = g + weight_decay * param[i];
        const float v = square_avg[i] * rho + rest * g * g;
        square_avg[i] = v;
        const float delta = sqrtf(acc_delta[i] + eps) / sqrtf(v + eps) * g;
        acc_delta[i] = acc_delta[i] * rho + rest * delta * delta;
        param[i] = param[i] - lr * delta;
    }
}
