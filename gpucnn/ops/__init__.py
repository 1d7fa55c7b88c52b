"""One module per op: the Function (forward/backward per device) beside its validated public call.
conv2d, the largest, keeps its two device halves in modules of their own (``_conv2d_cpu``, ``_conv2d_gpu``)."""
