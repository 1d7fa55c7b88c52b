"""Trains a small CNN on the synthetic shapes task (gpucnn.data.make_shapes) and reports accuracy.

    python examples/train_shapes.py --epochs 4
"""

from __future__ import annotations

import argparse
import time

import numpy

import gpucnn
from gpucnn import nn
from gpucnn.data import SHAPE_CLASSES, make_shapes


def build_model(size: int) -> nn.Module:
    """conv3x3(8) -> ReLU -> pool -> conv3x3(16) -> BN -> ReLU -> pool -> linear. Input (N, 1, size, size)."""
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Dropout(0.1), nn.Linear(16 * (size // 4) ** 2, len(SHAPE_CLASSES)),
    )


def accuracy(model: nn.Module, images: numpy.ndarray, labels: numpy.ndarray) -> float:
    model.eval()
    with gpucnn.no_grad():
        predictions = model(gpucnn.tensor(images)).argmax(dim=1).numpy()
    model.train()
    return float((predictions == labels).mean())


def main(argv=None) -> float:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--train-size", type=int, default=1600)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    gpucnn.manual_seed(args.seed)
    size = 12
    train_images, train_labels = make_shapes(args.train_size, size, seed=args.seed)
    test_images, test_labels = make_shapes(400, size, seed=args.seed + 1)
    model = build_model(size)
    gpucnn.summary(model, (1, size, size))
    optimizer = gpucnn.optim.Adam(model.parameters(), lr=args.lr)
    loss_fn = nn.CrossEntropyLoss()
    shuffle = numpy.random.default_rng(args.seed)

    for epoch in range(1, args.epochs + 1):
        start, losses = time.perf_counter(), []
        for batch in numpy.array_split(shuffle.permutation(len(train_images)), len(train_images) // args.batch_size):
            loss = loss_fn(model(gpucnn.tensor(train_images[batch])), gpucnn.tensor(train_labels[batch]))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        print(f"epoch {epoch}: train loss {numpy.mean(losses):.4f}, "
              f"test accuracy {accuracy(model, test_images, test_labels):.3f} ({time.perf_counter() - start:.1f} s)")
    final = accuracy(model, test_images, test_labels)
    print(f"test accuracy: {final:.4f}")
    return final


if __name__ == "__main__":
    main()
