"""The training loop behind ``gpucnn train``: data, model, optimizer, per-epoch checkpoints, metrics, plots.

    >>> config = TrainConfig.with_defaults(dataset="digits", seed=0)
    >>> metrics = train(config, load_dataset("digits", seed=0), device="cpu", out_dir="runs/digits")

Determinism: the model is initialised from ``gpucnn.manual_seed(seed)``; batches are shuffled and
augmented by a generator of the loader's own, seeded from the same seed. Both generators' states,
the model and the optimizer state are saved after every epoch, so a resumed run continues exactly
where the saved one stopped (bit for bit on the cpu device).
"""

from __future__ import annotations

import dataclasses
import json
import sys
import time
from pathlib import Path

import numpy

from . import io, models, nn
from . import random as gpucnn_random
from .autograd import no_grad
from .data import BatchLoader, DatasetInfo, Preprocess, Splits
from .devices import get_device
from .optim import SGD, Adadelta, Adam
from .tensor import tensor

OPTIMIZERS = ("sgd", "adam", "adadelta")
# per dataset, for a short run; lr_step: the learning rate halves every lr_step epochs (0: never).
# digits: measured over seeds 0-4 (>= 98.3 % test accuracy each); mnist and cifar10: common choices.
DATASET_DEFAULTS = {"digits": {"epochs": 20, "batch_size": 32, "lr_step": 5, "lr": {"adam": 3e-3}},
                    "mnist": {"epochs": 5, "batch_size": 64, "lr_step": 2},
                    "cifar10": {"epochs": 10, "batch_size": 64, "lr_step": 4}}
MODEL_OPTIMIZER = {"lenet": "adam", "convnetjs": "adadelta"}  # ConvNetJS's demo trains with Adadelta
LEARNING_RATES = {"sgd": 0.01, "adam": 1e-3, "adadelta": 1.0}
EVAL_BATCH = 256
METRICS_FILE = "metrics.json"


@dataclasses.dataclass
class TrainConfig:
    """Everything that decides the result of a run (what a checkpoint must reproduce)."""

    dataset: str = "digits"
    model: str = "lenet"
    epochs: int = 20
    batch_size: int = 32
    optimizer: str = "adam"
    lr: float = 3e-3
    lr_step: int = 5
    seed: int = 0
    train_size: int | None = None
    augment: bool = True

    @classmethod
    def with_defaults(cls, dataset: str = "digits", model: str = "lenet", **given) -> "TrainConfig":
        """A config where every option not in ``given`` (or given as None) takes its default for the
        dataset and model."""
        given = {key: value for key, value in given.items() if value is not None}
        optimizer = given.pop("optimizer", None) or MODEL_OPTIMIZER.get(model, "adam")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer '{optimizer}'; expected one of: {', '.join(OPTIMIZERS)}")
        defaults = dict(DATASET_DEFAULTS.get(dataset, {}))
        lr = defaults.pop("lr", {}).get(optimizer, LEARNING_RATES[optimizer])
        values = {**defaults, "lr": lr, **given}
        config = cls(dataset=dataset, model=model, optimizer=optimizer, **values)
        config.check()
        return config

    def check(self) -> None:
        if self.model not in models.MODELS:
            raise ValueError(f"unknown model '{self.model}'; expected one of: {', '.join(models.MODELS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer '{self.optimizer}'; expected one of: {', '.join(OPTIMIZERS)}")
        for name in ("epochs", "batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.lr_step < 0:
            raise ValueError(f"--lr-step must be 0 (constant) or positive, got {self.lr_step}")
        if self.train_size is not None and self.train_size < 1:
            raise ValueError(f"--train-size must be at least 1, got {self.train_size}")
        if not self.lr > 0:
            raise ValueError(f"--lr must be positive, got {self.lr}")
        if self.seed < 0:
            raise ValueError(f"--seed must be non-negative, got {self.seed}")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        names = {field.name for field in dataclasses.fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in names})


def make_optimizer(name: str, parameters, lr: float):
    """SGD with momentum 0.9, Adam, or Adadelta with ConvNetJS's rho=0.95, eps=1e-6."""
    if name == "sgd":
        return SGD(parameters, lr=lr, momentum=0.9)
    if name == "adam":
        return Adam(parameters, lr=lr)
    return Adadelta(parameters, lr=lr, rho=0.95, eps=1e-6)


def model_file_config(config: TrainConfig, info: DatasetInfo) -> dict:
    """What ``model.safetensors`` stores beside the weights to rebuild and feed the model."""
    return {
        "model": models.config(config.model, info.channels, info.size, len(info.classes)),
        "dataset": info.name, "classes": list(info.classes), "input_shape": list(info.input_shape),
        "preprocess": Preprocess.for_dataset(info, augment=False).to_dict(), "train": config.to_dict(),
    }


def predict(model, images: numpy.ndarray, preprocess, device, batch_size: int = EVAL_BATCH) -> numpy.ndarray:
    """Class probabilities (N, classes) for uint8 images (N, C, H, W), in eval mode without grad."""
    was_training = model.training
    model.eval()
    outputs = []
    try:
        with no_grad():
            for start in range(0, len(images), batch_size):
                logits = model(tensor(preprocess(images[start:start + batch_size]), device=device))
                outputs.append(nn.functional.softmax(logits, dim=1).numpy())
    finally:
        model.train(was_training)
    return numpy.concatenate(outputs) if outputs else numpy.zeros((0, 0), dtype=numpy.float32)


def confusion_matrix(labels: numpy.ndarray, predictions: numpy.ndarray, classes: int) -> numpy.ndarray:
    """(classes, classes) counts: row = true class, column = predicted class."""
    matrix = numpy.zeros((classes, classes), dtype=numpy.int64)
    numpy.add.at(matrix, (labels, predictions), 1)
    return matrix


def write_json(path, values) -> None:
    io.atomic_write(path, (json.dumps(values, indent=2) + "\n").encode())


class Trainer:
    """One run: builds (or restores) the model, optimizer and loader, then trains epoch by epoch."""

    def __init__(self, config: TrainConfig, dataset: Splits, device, out_dir, progress: bool = True,
                 log=print):
        self.config, self.device, self.out_dir = config, get_device(device), Path(out_dir)
        self.dataset = dataset.limit_train(config.train_size)
        self.info, self.progress, self.log = dataset.info, progress, log
        self.preprocess = Preprocess.for_dataset(self.info, augment=config.augment)
        gpucnn_random.manual_seed(config.seed)
        self.model = models.build(config.model, self.info.channels, self.info.size, len(self.info.classes))
        self.model.to(self.device)
        self.optimizer = make_optimizer(config.optimizer, self.model.parameters(), config.lr)
        self.loader = BatchLoader(self.dataset.train_images, self.dataset.train_labels, config.batch_size,
                                  self.preprocess, shuffle=True, augment=config.augment,
                                  rng=numpy.random.default_rng([config.seed, 1]))
        self.epoch, self.history = 0, []

    def restore(self, checkpoint: io.Checkpoint, path) -> None:
        """Continues from ``checkpoint``: weights, optimizer state, both generators, epoch and history."""
        io.restore(checkpoint, self.model, self.optimizer, path)
        try:
            gpucnn_random.set_rng_state(checkpoint.rng["gpucnn"])
            self.loader.rng.bit_generator.state = checkpoint.rng["loader"]
        except (KeyError, TypeError, ValueError) as error:
            raise io.CheckpointError(f"{path}: the saved generator states are unusable ({error})") from None
        self.epoch, self.history = checkpoint.epoch, list(checkpoint.history)

    def rng_state(self) -> dict:
        return {"gpucnn": gpucnn_random.get_rng_state(), "loader": self.loader.rng.bit_generator.state}

    def learning_rate(self, epoch: int) -> float:
        """The learning rate of 0-based ``epoch``: a function of the epoch alone, so resuming keeps it."""
        step = self.config.lr_step
        return self.config.lr * 0.5 ** (epoch // step) if step else self.config.lr

    def train_epoch(self) -> dict:
        from tqdm import tqdm

        for group in self.optimizer.param_groups:
            group["lr"] = self.learning_rate(self.epoch)
        self.model.train()
        total_loss, correct, seen, start = 0.0, 0, 0, time.perf_counter()
        bar = tqdm(self.loader, desc=f"epoch {self.epoch + 1}/{self.config.epochs}", unit="batch",
                   file=sys.stderr, disable=None if self.progress else True, leave=False,
                   dynamic_ncols=True)  # None: shown on a terminal only
        for inputs, labels in bar:
            logits = self.model(tensor(inputs, device=self.device))
            loss = nn.functional.cross_entropy(logits, tensor(labels, device=self.device))
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            total_loss += loss.item() * len(labels)
            correct += int((logits.argmax(dim=1).numpy() == labels).sum())
            seen += len(labels)
            bar.set_postfix(loss=f"{total_loss / seen:.4f}", acc=f"{correct / seen:.3f}", refresh=False)
        bar.close()
        self.epoch += 1
        test_accuracy = self.test_accuracy()
        return {"epoch": self.epoch, "lr": self.learning_rate(self.epoch - 1), "train_loss": total_loss / seen,
                "train_accuracy": correct / seen, "test_accuracy": test_accuracy,
                "seconds": round(time.perf_counter() - start, 3)}

    def test_accuracy(self) -> float:
        probabilities = predict(self.model, self.dataset.test_images, self.preprocess, self.device)
        if not len(probabilities):
            return float("nan")
        return float((probabilities.argmax(axis=1) == self.dataset.test_labels).mean())

    def metrics(self) -> dict:
        final = self.history[-1]["test_accuracy"] if self.history else None
        return {"test_accuracy": final, "dataset": self.info.name, "model": self.config.model,
                "device": self.device.name, "train_size": int(len(self.dataset.train_labels)),
                "test_size": int(len(self.dataset.test_labels)), "config": self.config.to_dict(),
                "epochs": self.history}

    def save(self) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        io.save_checkpoint(self.out_dir / io.CHECKPOINT_FILE, self.model, self.optimizer, self.epoch,
                           self.config.to_dict(), self.rng_state(), self.history)
        io.save_model(self.out_dir / io.MODEL_FILE, self.model, model_file_config(self.config, self.info))
        write_json(self.out_dir / METRICS_FILE, self.metrics())

    def run(self, plots: bool = True) -> dict:
        """Trains the remaining epochs, saving after each; returns the metrics (also in metrics.json)."""
        while self.epoch < self.config.epochs:
            record = self.train_epoch()
            self.history.append(record)
            self.save()
            self.log(f"epoch {record['epoch']}/{self.config.epochs}: train loss {record['train_loss']:.4f}, "
                     f"train accuracy {record['train_accuracy']:.4f}, test accuracy {record['test_accuracy']:.4f} "
                     f"({record['seconds']:.1f} s)")
        if plots:
            self.plot()
        return self.metrics()

    def plot(self) -> list:
        """Writes the PNG plots into the output folder; returns their paths."""
        from . import viz

        image_index = 0
        image = self.dataset.test_images[image_index]
        probabilities = predict(self.model, image[None], self.preprocess, self.device)[0]
        caption = (f"test image {image_index}: true class {self.info.classes[self.dataset.test_labels[image_index]]}, "
                   f"predicted {self.info.classes[int(probabilities.argmax())]} ({probabilities.max():.0%})")
        paths = [self.out_dir / name for name in ("curves.png", "filters.png", "activations.png")]
        viz.plot_curves(self.history, paths[0], title=f"{self.config.model} on {self.info.name}")
        first_conv = next(module for module in self.model.modules() if isinstance(module, nn.Conv2d))
        viz.plot_filters(first_conv.weight.numpy(), paths[1])
        viz.plot_activations(self.model, image.astype(numpy.float32) * self.info.scale,
                             self.preprocess, self.device, paths[2], caption)
        return paths
