"""``python -m bench ops``, ``train``, ``infer``, ``kernels`` and ``compare``: gpucnn against PyTorch on one device,
one run.

    python -m bench ops     [--suite mix|lecture|convnetjs|resnet18|vgg16|jetson] [--device cpu|cuda|cudasim]
    python -m bench train   [--device cpu|cuda] [--models lenet,convnetjs,resnet]
    python -m bench infer   [--device cpu|cuda] [--models resnet18,mobilenet_v2] [--batches 1,8]
    python -m bench kernels [--suite resnet18|...] [--device cuda|cudasim]   # conv2d's kernel paths
    python -m bench compare BEFORE [--suite resnet18|...] [--device cuda]  # another version of gpucnn against this one
    python -m bench ops --quick                    # tiny sizes, one repeat: checks the code runs

Each writes a markdown table and a JSON record to --out (default bench/results/), named
``<bench>-..._<machine>_<date>`` where the machine is the CPU model or the GPU's name.
"""

from __future__ import annotations

import argparse
import sys

from . import RESULTS_DIR


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    from . import compare, infer, kernels, ops, train

    modules = {"ops": ops, "train": train, "infer": infer, "kernels": kernels, "compare": compare}
    for name, module in modules.items():
        sub = commands.add_parser(name, help=module.__doc__.splitlines()[0],
                                  formatter_class=argparse.RawDescriptionHelpFormatter, description=module.__doc__)
        module.add_arguments(sub)
        sub.add_argument("--out", default=str(RESULTS_DIR), help="directory for the .md and .json results")
    args = parser.parse_args(argv)
    return modules[args.command].main(args, args.out)


if __name__ == "__main__":
    main(sys.argv[1:])
