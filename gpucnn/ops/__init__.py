"""One module per op: the Function (forward/backward per device) beside its validated public call."""
