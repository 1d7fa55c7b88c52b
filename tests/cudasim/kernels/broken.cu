// Does not compile (on purpose): the loader must report g++'s error.
extern "C" __global__ void broken(float* y) {
    y[threadIdx.x] = undeclared_name;
}
