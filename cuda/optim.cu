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
