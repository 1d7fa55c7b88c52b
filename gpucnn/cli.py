"""The ``gpucnn`` command: train, eval, predict, summary, info.

    gpucnn train                                # LeNet-style CNN on the digits shipped with scikit-learn
    gpucnn train --dataset cifar10 --model convnetjs --device cuda
    gpucnn eval runs/digits
    gpucnn predict runs/digits my_digit.png
    gpucnn summary --model convnetjs --dataset cifar10
    gpucnn info

Errors (missing data, unknown names, bad folders, unreadable images, broken checkpoints) print one
line and exit non-zero: 2 for a wrong command line, 1 for everything else; ``--debug`` shows the
traceback instead. The packages only the command needs (tqdm, safetensors, Pillow, matplotlib,
scikit-learn) come with the ``cli`` extra; when one is missing the command says so.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

EXTRA_HINT = "pip install 'gpucnn[cli]'"
# import name -> package name, for the modules of the 'cli' extra
EXTRA_MODULES = {"tqdm": "tqdm", "safetensors": "safetensors", "PIL": "Pillow", "matplotlib": "matplotlib",
                 "sklearn": "scikit-learn"}
RUN_FILES = ("metrics.json", "model.safetensors", "checkpoint.safetensors")


class UsageError(Exception):
    """A wrong command line that argparse cannot catch (unknown names, conflicting options): exit 2."""


class CommandError(Exception):
    """A clear failure of the command (bad folder, unreadable file): exit 1."""


def _require(command: str, *modules: str) -> None:
    """Checks that the optional modules ``command`` needs are installed, so a missing one is reported
    before any work (without importing them: scikit-learn alone takes about a second)."""
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise CommandError(f"gpucnn {command} needs the 'cli' extra: {EXTRA_HINT} "
                               f"({EXTRA_MODULES[module]} is not installed)")


def _device(name):
    from .devices import default_device, get_device

    try:
        return default_device() if name is None else get_device(name)
    except ValueError as error:
        raise UsageError(str(error)) from None


def _dataset_name(name: str) -> str:
    from .data import DATASETS

    if name not in DATASETS:
        raise UsageError(f"unknown dataset '{name}'; expected one of: {', '.join(DATASETS)}")
    return name


def _run_folder(path: str, what: str) -> Path:
    folder = Path(path)
    if not folder.is_dir():
        raise CommandError(f"{what} {folder}: no such folder" if not folder.exists()
                           else f"{what} {folder} is a file, not a folder")
    return folder


# --------------------------------------------------------------------------------------------- train
def _output_folder(args, dataset: str) -> Path:
    """The folder a run writes to; refuses files and (without --overwrite) other runs' folders."""
    if args.out is None:
        if args.resume is not None:
            return Path(args.resume)
        base = Path("runs") / dataset  # runs/digits, or runs/digits-2, ... when taken
        candidates = [base] + [base.with_name(f"{dataset}-{index}") for index in range(2, 10000)]
        return next(path for path in candidates if not path.exists() or path.is_dir() and not any(path.iterdir()))
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CommandError(f"--out {out} is a file, not a folder; choose another --out")
    resuming_in_place = args.resume is not None and out.resolve() == Path(args.resume).resolve()
    taken = [name for name in RUN_FILES if (out / name).exists()]
    if taken and not args.overwrite and not resuming_in_place:
        raise CommandError(f"--out {out} already holds a run ({taken[0]}); continue it with --resume {out}, "
                           "choose another --out, or pass --overwrite")
    return out


def _resumed_config(args):
    """The run's config from --resume's checkpoint, with --epochs applied; other options must agree."""
    from . import io
    from .train import TrainConfig

    folder = _run_folder(args.resume, "--resume")
    path = folder / io.CHECKPOINT_FILE
    if not path.is_file():
        raise CommandError(f"--resume {folder}: no {io.CHECKPOINT_FILE} there (it is written by gpucnn train "
                           "after each epoch)")
    checkpoint = io.load_checkpoint(path)
    try:
        config = TrainConfig.from_dict(checkpoint.config)
        config.check()
    except (TypeError, ValueError) as error:
        raise io.CheckpointError(f"{path}: unusable training config ({error})") from None
    for name in ("dataset", "model", "batch_size", "optimizer", "lr", "lr_step", "seed", "train_size"):
        given = getattr(args, name)
        if given is not None and given != getattr(config, name):
            raise UsageError(f"--{name.replace('_', '-')} {given} differs from the resumed run's "
                             f"{getattr(config, name)}; --resume continues a run as it was configured")
    if args.no_augment and config.augment:
        raise UsageError("--no-augment differs from the resumed run, which augments")
    if args.epochs is not None:
        config.epochs = args.epochs
        config.check()
    return config, checkpoint, path


def _blas_threads(count):
    """Limits NumPy's BLAS to ``count`` threads (None: unchanged). For small matrices, such as the 8x8
    digits', extra BLAS threads only add overhead: with another busy process on a 2-core machine,
    2 threads measured 5-20x slower per batch than 1."""
    import contextlib

    if count is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # comes with scikit-learn; without it the BLAS keeps its own setting
        return contextlib.nullcontext()
    return threadpool_limits(limits=count, user_api="blas")


def cmd_train(args) -> int:
    from . import data, train

    if args.threads is not None and args.threads < 1:
        raise UsageError(f"--threads must be at least 1, got {args.threads}")
    if args.resume is not None:
        config, checkpoint, checkpoint_path = _resumed_config(args)
    else:
        dataset = _dataset_name(args.dataset or "digits")
        try:
            config = train.TrainConfig.with_defaults(
                dataset=dataset, model=args.model or "lenet", epochs=args.epochs, batch_size=args.batch_size,
                optimizer=args.optimizer, lr=args.lr, lr_step=args.lr_step, seed=args.seed,
                train_size=args.train_size, augment=not args.no_augment)
        except ValueError as error:
            raise UsageError(str(error)) from None
        checkpoint = checkpoint_path = None
    _require("train", "tqdm", "safetensors", "matplotlib", *(["sklearn"] if config.dataset == "digits" else []))
    device = _device(args.device)
    out = _output_folder(args, config.dataset)
    dataset = data.load_dataset(config.dataset, args.data_dir, seed=config.seed)
    trainer = train.Trainer(config, dataset, device, out, progress=not args.no_progress)
    if checkpoint is not None:
        trainer.restore(checkpoint, checkpoint_path)
        if trainer.epoch >= config.epochs:
            print(f"{checkpoint_path} has already trained {trainer.epoch} epochs; pass --epochs N (N > "
                  f"{trainer.epoch}) to train more")
            return 0
        print(f"resuming {checkpoint_path} after epoch {trainer.epoch} of {config.epochs}")
    print(f"training {config.model} on {config.dataset} ({len(trainer.dataset.train_labels)} train, "
          f"{len(trainer.dataset.test_labels)} test images) on {device.name}: {config.epochs} epochs, batch "
          f"{config.batch_size}, {config.optimizer} lr {config.lr:g}"
          + (f" halved every {config.lr_step} epochs" if config.lr_step else "") + f", seed {config.seed}")
    try:
        with _blas_threads(args.threads if args.threads is not None
                           else 1 if device.type == "cpu" and config.dataset == "digits" else None):
            metrics = trainer.run(plots=not args.no_plots)
    except KeyboardInterrupt:
        if trainer.epoch:
            print(f"interrupted: epoch {trainer.epoch} is saved; continue with gpucnn train --resume {out}",
                  file=sys.stderr)
        raise
    seconds = sum(record["seconds"] for record in metrics["epochs"])
    print(f"test accuracy: {metrics['test_accuracy']:.4f} ({seconds:.1f} s of training)")
    written = [name for name in (*RUN_FILES, "curves.png", "filters.png", "activations.png") if (out / name).exists()]
    print(f"wrote {out}/: {', '.join(written)}")
    return 0


# ---------------------------------------------------------------------------------- eval, predict
def _load_run(folder_arg: str, command: str, device_name):
    from . import io

    folder = _run_folder(folder_arg, command)
    path = folder / io.MODEL_FILE
    if not path.is_file():
        raise CommandError(f"{folder}: no {io.MODEL_FILE} there (it is written by gpucnn train)")
    model, config = io.load_model(path, _device(device_name))
    return model, config


def cmd_eval(args) -> int:
    from . import data
    from .data import Preprocess
    from .train import confusion_matrix, predict

    for name in ("batch_size", "test_size"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise UsageError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    _require("eval", "safetensors")
    model, config = _load_run(args.dir, "eval", args.device)
    if config.get("dataset") == "digits":
        _require("eval", "sklearn")
    dataset = data.load_dataset(_dataset_name(config["dataset"]), args.data_dir, seed=config["train"]["seed"])
    dataset = dataset.limit_test(args.test_size)
    probabilities = predict(model, dataset.test_images, Preprocess.from_dict(config["preprocess"]),
                            model_device(model), args.batch_size)
    predictions = probabilities.argmax(axis=1)
    classes = config["classes"]
    accuracy = float((predictions == dataset.test_labels).mean())
    print(f"test accuracy: {accuracy:.4f} ({int((predictions == dataset.test_labels).sum())} of "
          f"{len(predictions)} {config['dataset']} test images)")
    matrix = confusion_matrix(dataset.test_labels, predictions, len(classes))
    width = max(5, len(str(matrix.max())) + 1)
    labels = [name if name == str(index) else f"{index} {name}" for index, name in enumerate(classes)]
    label_width = max(map(len, labels))
    print("confusion matrix (rows: true class, columns: predicted class)")
    print(" " * label_width + "".join(f"{index:>{width}}" for index in range(len(classes))))
    for label, row in zip(labels, matrix):
        print(f"{label:<{label_width}}" + "".join(f"{count:>{width}}" for count in row))
    return 0


def model_device(model):
    return next(model.parameters()).device


def load_image(path: Path, shape):
    """An image file as (C, H, W) float32 in [0, 1], converted to ``shape``'s channels and size."""
    from PIL import Image, UnidentifiedImageError
    import numpy

    channels, height, width = shape
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB")
            # BOX averages the pixels each output pixel covers: how the 8x8 digits were made from bitmaps
            image = image.resize((width, height), Image.Resampling.BOX if image.width >= width
                                 else Image.Resampling.BILINEAR)
            pixels = numpy.asarray(image, dtype=numpy.float32) / 255
    except (OSError, UnidentifiedImageError, ValueError) as error:
        raise CommandError(f"cannot read image {path}: {error}") from None
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def cmd_predict(args) -> int:
    import numpy

    from .autograd import no_grad
    from .data import Preprocess
    from .nn.functional import softmax
    from .tensor import tensor

    _require("predict", "safetensors", "PIL")
    model, config = _load_run(args.dir, "predict", args.device)
    shape, classes = tuple(config["input_shape"]), config["classes"]
    images = [load_image(Path(path), shape) for path in args.images]
    preprocess = Preprocess.from_dict(config["preprocess"])
    for path, image in zip(args.images, images):
        # one-channel datasets (digits, MNIST) are light strokes on black; invert dark-on-light pictures
        border = numpy.concatenate([image[:, 0], image[:, -1], image[:, :, 0], image[:, :, -1]], axis=None)
        if shape[0] == 1 and (args.invert == "always" or args.invert == "auto" and border.mean() > 0.5):
            image = 1 - image
        with no_grad():
            logits = model(tensor(preprocess.normalize(image)[None], device=model_device(model)))
        probabilities = softmax(logits, dim=1).numpy()[0]
        top = numpy.argsort(-probabilities, kind="stable")[:3]
        print(f"{path}: " + ", ".join(f"{classes[index]} ({probabilities[index]:.1%})" for index in top))
    return 0


# ---------------------------------------------------------------------------------- summary, info
def cmd_summary(args) -> int:
    from . import models
    from .data import DATASETS
    from .summary import summary

    info = DATASETS[_dataset_name(args.dataset)]
    if args.model not in models.MODELS:
        raise UsageError(f"unknown model '{args.model}'; expected one of: {', '.join(models.MODELS)}")
    model = models.build(args.model, info.channels, info.size, len(info.classes))
    print(f"{args.model} for {info.name} inputs {tuple(info.input_shape)}")
    summary(model, info.input_shape)
    return 0


def cmd_export(args) -> int:
    from .onnx import export_run

    export_run(args.dir, args.onnx, opset=args.opset)
    print(f"wrote {args.onnx}")
    return 0


def cmd_info(args) -> int:
    from . import info

    print(info.format_report(info.collect()))
    return 0


# ---------------------------------------------------------------------------------- parser, main
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="gpucnn", description="Train and use small CNNs on the CPU or an NVIDIA GPU.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    parser.add_argument("--version", action="version", version=f"gpucnn {_version()}")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser("train", parents=[common], help="train a CNN and report its test accuracy",
                                description="Train a CNN; writes metrics.json, model.safetensors, "
                                            "checkpoint.safetensors and PNG plots into --out.")
    train.add_argument("--dataset", metavar="{digits,mnist,cifar10}", help="default: digits (ships with scikit-learn)")
    train.add_argument("--data-dir", help="where MNIST/CIFAR-10 files are found or downloaded to "
                                          "(default: $GPUCNN_DATA_DIR or ~/.cache/gpucnn/datasets)")
    train.add_argument("--model", metavar="{lenet,convnetjs}", help="default: lenet, sized to the dataset")
    train.add_argument("--epochs", type=int, help="default: 20 (digits), 5 (mnist), 10 (cifar10)")
    train.add_argument("--batch-size", type=int, help="default: 32 (digits), 64 (mnist, cifar10)")
    train.add_argument("--optimizer", metavar="{sgd,adam,adadelta}",
                       help="default: adam for lenet, adadelta for convnetjs (as ConvNetJS)")
    train.add_argument("--lr", type=float, help="default: 1e-3 adam (3e-3 on digits), 1.0 adadelta, "
                                                "0.01 sgd (momentum 0.9)")
    train.add_argument("--lr-step", type=int, metavar="EPOCHS", help="halve the learning rate every EPOCHS "
                       "epochs, 0: never (default: 5 digits, 2 mnist, 4 cifar10)")
    train.add_argument("--device", metavar="{cpu,cuda,cuda:N,cudasim}", help="default: cuda when usable, else cpu")
    train.add_argument("--seed", type=int, help="seeds initialisation, shuffling, augmentation, the digits "
                                                "split (default 0: runs are repeatable)")
    train.add_argument("--out", metavar="DIR", help="output folder (default: runs/DATASET, or runs/DATASET-2, ... "
                                                    "when taken)")
    train.add_argument("--resume", metavar="DIR", help="continue the run saved in DIR up to --epochs")
    train.add_argument("--train-size", type=int, help="train on the first N training images only")
    train.add_argument("--no-augment", action="store_true", help="no random shifts and flips (digits has none)")
    train.add_argument("--threads", type=int, help="BLAS threads on the cpu device (default: 1 for digits, "
                                                   "whose matrices are too small to share, else the BLAS default)")
    train.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    train.add_argument("--no-progress", action="store_true", help="no progress bar")
    train.add_argument("--overwrite", action="store_true", help="allow --out to be a folder holding another run")
    train.set_defaults(handler=cmd_train)

    evaluate = commands.add_parser("eval", parents=[common], help="test accuracy and confusion matrix of a run",
                                   description="Evaluate the model saved in DIR on its dataset's test split.")
    evaluate.add_argument("dir", metavar="DIR", help="a folder written by gpucnn train")
    evaluate.add_argument("--data-dir", help="where MNIST/CIFAR-10 files are")
    evaluate.add_argument("--device", metavar="{cpu,cuda,cuda:N,cudasim}")
    evaluate.add_argument("--batch-size", type=int, default=256)
    evaluate.add_argument("--test-size", type=int, help="evaluate the first N test images only")
    evaluate.set_defaults(handler=cmd_eval)

    predict = commands.add_parser("predict", parents=[common], help="classify PNG/JPEG images with a trained run",
                                  description="Print the top-3 classes of each image with their probabilities.")
    predict.add_argument("dir", metavar="DIR", help="a folder written by gpucnn train")
    predict.add_argument("images", metavar="IMAGE", nargs="+", help="PNG or JPEG files")
    predict.add_argument("--device", metavar="{cpu,cuda,cuda:N,cudasim}")
    predict.add_argument("--invert", choices=("auto", "always", "never"), default="auto",
                         help="for one-channel models: invert dark-on-light images (auto: when the border is light)")
    predict.set_defaults(handler=cmd_predict)

    summary = commands.add_parser("summary", parents=[common], help="layer table of a built-in model",
                                  description="Print each layer's output shape and parameter count.")
    summary.add_argument("--model", default="lenet", metavar="{lenet,convnetjs}")
    summary.add_argument("--dataset", default="digits", metavar="{digits,mnist,cifar10}",
                         help="sets the input shape and class count (default: digits)")
    summary.set_defaults(handler=cmd_summary)

    export = commands.add_parser("export", parents=[common], help="export a trained run to ONNX",
                                 description="Write a run's model as an ONNX file with a dynamic batch dimension "
                                             "(needs the 'onnx' extra: pip install 'gpucnn[onnx]').")
    export.add_argument("dir", help="a run folder written by gpucnn train")
    export.add_argument("--onnx", required=True, metavar="FILE", help="the ONNX file to write")
    export.add_argument("--opset", type=int, default=17, help="ONNX opset (13 or newer; default 17)")
    export.set_defaults(handler=cmd_export)

    info = commands.add_parser("info", parents=[common], help="versions, devices and GPU state",
                               description="Versions of gpucnn, NumPy, CuPy and CUDA, usable devices, and each "
                                           "GPU's state (NVML; the CUDA runtime on Jetson).")
    info.set_defaults(handler=cmd_info)
    return parser


def _version() -> str:
    from . import __version__

    return __version__


def main(argv=None) -> int:
    """Runs the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)  # exits 2 on a malformed command line
    from .data import DatasetError
    from .io import CheckpointError

    try:
        return args.handler(args)
    except KeyboardInterrupt:
        print("gpucnn: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if args.debug:
            raise
        missing = getattr(error, "name", None) if isinstance(error, ModuleNotFoundError) else None
        if missing and missing.split(".")[0] in EXTRA_MODULES:
            message = (f"gpucnn {args.command} needs the 'cli' extra: {EXTRA_HINT} "
                       f"({EXTRA_MODULES[missing.split('.')[0]]} is not installed)")
        elif isinstance(error, (UsageError, CommandError, DatasetError, CheckpointError)):
            message = str(error)
        elif isinstance(error, (OSError, RuntimeError, ValueError, NotImplementedError)):
            message = f"{error}" if str(error) else type(error).__name__
        else:
            message = f"{type(error).__name__}: {error} (run with --debug for the traceback)"
        print(f"gpucnn: error: {' '.join(message.split())}", file=sys.stderr)
        return 2 if isinstance(error, UsageError) else 1


if __name__ == "__main__":
    sys.exit(main())
