"""The same small model trains on cpu (NumPy) and on cudasim (the CUDA kernels) with matching losses."""

import numpy as np

import gpucnn
from gpucnn import nn
from gpucnn.data import make_shapes
from helpers import assert_close


def train_losses(device: str, steps: int = 4) -> list:
    images, labels = make_shapes(48, 12, seed=0)
    gpucnn.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 6, 3, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 8, 3, stride=2, padding="same", groups=2), nn.BatchNorm2d(8), nn.LeakyReLU(0.1),
        nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
        nn.Flatten(), nn.Linear(8 * 3 * 3, 4),
    ).to(device)
    optimizer = gpucnn.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for step in range(steps):
        batch = slice(12 * step, 12 * step + 12)
        loss = nn.functional.cross_entropy(model(gpucnn.tensor(images[batch], device=device)),
                                           gpucnn.tensor(labels[batch], device=device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def test_cpu_and_cudasim_train_alike():
    cpu, simulated = train_losses("cpu"), train_losses("cudasim")
    assert cpu[-1] < cpu[0]
    assert_close(np.array(simulated), np.array(cpu), atol=1e-4, rtol=0, name="losses cudasim vs cpu")
