"""Modules: registration, state_dict, init, layers against torch.nn, summary, and learning a task."""

import inspect
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

import gpucnn
from gpucnn import nn
from helpers import assert_close

ROOT = Path(__file__).resolve().parents[1]


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(4 * 4 * 4, 5),
    )


def torch_copy_of_small_cnn(model):
    reference = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.BatchNorm2d(4), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(4 * 4 * 4, 5),
    )
    reference.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in model.state_dict().items()})
    return reference


def test_registration_and_traversal():
    model = small_cnn()
    names = [name for name, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "1.weight", "1.bias", "5.weight", "5.bias"]
    assert [name for name, _ in model.named_buffers()] == ["1.running_mean", "1.running_var", "1.num_batches_tracked"]
    assert len(list(model.children())) == 6 and len(list(model.modules())) == 7
    assert all(isinstance(p, nn.Parameter) and p.requires_grad for p in model.parameters())
    assert list(model.state_dict()) == [k for k in torch_copy_of_small_cnn(model).state_dict()]


def test_shared_parameters_are_listed_once():
    layer = nn.Linear(3, 3)
    model = nn.Sequential(layer, nn.ReLU(), layer)
    assert len(list(model.parameters())) == 2


def test_train_eval_propagate():
    model = small_cnn()
    model.eval()
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())


def test_forward_and_backward_match_torch():
    gpucnn.manual_seed(0)
    model = small_cnn()
    reference = torch_copy_of_small_cnn(model)
    x = np.random.default_rng(0).standard_normal((3, 3, 8, 8)).astype(np.float32)
    target = np.array([0, 4, 2])
    for train in (True, False):
        model.train(train)
        reference.train(train)
        loss = nn.CrossEntropyLoss()(model(x), target)
        expected = torch.nn.CrossEntropyLoss()(reference(torch.from_numpy(x)), torch.from_numpy(target))
        assert_close(loss, expected, atol=1e-5)
        model.zero_grad()
        reference.zero_grad()
        loss.backward()
        expected.backward()
        for (name, p), (_, q) in zip(model.named_parameters(), reference.named_parameters()):
            assert_close(p.grad, q.grad, atol=1e-5, name=name)
    for name, buffer in model.named_buffers():
        assert_close(buffer, reference.state_dict()[name], name=name)


def test_default_init_matches_torch_distribution():
    gpucnn.manual_seed(0)
    conv = nn.Conv2d(16, 32, 5)
    bound = 1 / np.sqrt(16 * 25)  # kaiming_uniform(a=sqrt(5)) gives U(+-1/sqrt(fan_in)), as does the bias
    w, b = conv.weight.numpy(), conv.bias.numpy()
    assert w.dtype == np.float32 and np.abs(w).max() <= bound and np.abs(w).max() > 0.95 * bound
    assert abs(w.std() - bound / np.sqrt(3)) < 0.05 * bound
    assert np.abs(b).max() <= bound
    reference = torch.nn.Conv2d(16, 32, 5)
    assert abs(reference.weight.detach().numpy().std() - w.std()) < 0.05 * bound


def test_manual_seed_reproduces_init():
    gpucnn.manual_seed(7)
    a = small_cnn().state_dict()
    gpucnn.manual_seed(7)
    b = small_cnn().state_dict()
    for key in a:
        assert np.array_equal(a[key].numpy(), b[key].numpy())


@pytest.mark.parametrize("blocks", [1, 2], ids=["one_block", "two_blocks"])
@pytest.mark.parametrize("device", ["cpu", "cudasim"])
@pytest.mark.parametrize("momentum", [0.1, None], ids=["momentum", "cumulative"])
def test_batch_norm_layer_counts_batches_as_torch(monkeypatch, device, momentum, blocks):
    """num_batches_tracked counts the training batches (not evaluation's), and momentum=None averages
    the batch statistics over them, as torch's; an int32 counter (the kernels count int64) counts too.
    With two blocks a channel on cudasim (324 values in shares of 256 and 68), only one counts."""
    from gpucnn.ops.batchnorm import BatchNorm

    monkeypatch.setattr(BatchNorm, "MIN_BLOCK_VALUES", 8192 if blocks == 1 else 256)
    assert BatchNorm._shares(3, 4 * 9 * 9)[0] == blocks
    rng = np.random.default_rng(10)
    ours, theirs = nn.BatchNorm2d(3, momentum=momentum).to(device), torch.nn.BatchNorm2d(3, momentum=momentum)
    for step in range(4):
        x = (rng.standard_normal((4, 3, 9, 9)) * (step + 1) + step).astype(np.float32)
        ours.train(step != 2)
        theirs.train(step != 2)
        assert_close(ours(gpucnn.tensor(x, device=device)), theirs(torch.from_numpy(x)), atol=1e-5)
    for name, buffer in theirs.state_dict().items():
        assert_close(ours.state_dict()[name], buffer, atol=1e-6, name=name)
    assert int(ours.num_batches_tracked.item()) == 3
    ours.num_batches_tracked.data = ours.num_batches_tracked.data.astype(np.int32)
    ours.train()(gpucnn.tensor(rng.standard_normal((4, 3, 9, 9)).astype(np.float32), device=device))
    assert ours.num_batches_tracked.item() == 4 and ours.num_batches_tracked.dtype == np.int32


def test_cross_entropy_loss_weight_and_ignore_index():
    """The layer against torch's; its weight is a buffer: in the state dict (only when given, as in
    torch), moved by ``to``; the arguments after weight are keyword-only."""
    rng = np.random.default_rng(9)
    logits, target = rng.standard_normal((6, 4, 3)).astype(np.float32), rng.integers(0, 4, (6, 3))
    target[0, :2] = 255
    weight = np.array([0.5, 2.0, 1.0, 3.0], np.float32)
    options = dict(ignore_index=255, reduction="mean", label_smoothing=0.1)
    loss = nn.CrossEntropyLoss(weight, **options)
    expected = torch.nn.CrossEntropyLoss(torch.from_numpy(weight), **options)(torch.from_numpy(logits),
                                                                               torch.from_numpy(target))
    assert_close(loss(logits, target), expected)
    assert list(loss.state_dict()) == ["weight"] and not nn.CrossEntropyLoss().state_dict()
    loss.to("cudasim")
    assert loss.weight.device == "cudasim"
    assert_close(loss(gpucnn.tensor(logits, device="cudasim"), gpucnn.tensor(target, device="cudasim")), expected)
    assert repr(loss) == "CrossEntropyLoss(ignore_index=255, reduction='mean', label_smoothing=0.1)"
    with pytest.raises(TypeError, match=r"CrossEntropyLoss: weight must be numeric"):
        nn.CrossEntropyLoss("sum")  # PyTorch's first argument is weight, too
    with pytest.raises(ValueError, match=r"CrossEntropyLoss: weight must be a 1-D floating-point tensor, one value "
                                         r"per class, got shape \(2, 2\) and dtype float32"):
        nn.CrossEntropyLoss(np.ones((2, 2), np.float32))
    with pytest.raises(TypeError, match=r"CrossEntropyLoss: ignore_index must be an int, got '255'"):
        nn.CrossEntropyLoss(ignore_index="255")


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
def test_loss_layers_as_torchs(device):
    """NLLLoss (its weight a buffer that moves with the layer and is in its state_dict), MSELoss and L1Loss."""
    rng = np.random.default_rng(9)
    log_probs = torch.log_softmax(torch.from_numpy(rng.standard_normal((6, 4)).astype(np.float32)), 1).numpy()
    target, weight = rng.integers(0, 4, 6), rng.uniform(0.5, 2, 4).astype(np.float32)
    target[2] = 3
    loss = nn.NLLLoss(weight, ignore_index=3, reduction="sum").to(device)
    assert loss.weight.device.name == device and list(loss.state_dict()) == ["weight"]
    assert repr(loss) == "NLLLoss(ignore_index=3, reduction='sum')"
    expected = torch.nn.NLLLoss(torch.from_numpy(weight), ignore_index=3, reduction="sum")(
        torch.from_numpy(log_probs), torch.from_numpy(target))
    assert_close(loss(gpucnn.tensor(log_probs, device=device), gpucnn.tensor(target, device=device)), expected)
    x, y = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal((3, 5)).astype(np.float32)
    for ours, theirs in ((nn.MSELoss(), torch.nn.MSELoss()), (nn.L1Loss(reduction="none"), torch.nn.L1Loss(
            reduction="none"))):
        assert_close(ours(gpucnn.tensor(x, device=device), gpucnn.tensor(y, device=device)),
                     theirs(torch.from_numpy(x), torch.from_numpy(y)))
    assert repr(nn.L1Loss()) == "L1Loss(reduction='mean')"
    with pytest.raises(ValueError, match="MSELoss: reduction must be one of"):
        nn.MSELoss(reduction="avg")
    with pytest.raises(ValueError, match="NLLLoss: weight must be a 1-D floating-point tensor"):
        nn.NLLLoss(np.ones((2, 2), np.float32))


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
@pytest.mark.parametrize("shape", [(8, 5), (6, 5, 7)])
def test_batch_norm_1d_as_torchs(device, shape):
    """Training steps then evaluation, outputs, gradients and running statistics, on (N, C) and (N, C, L)."""
    rng = np.random.default_rng(12)
    ours, theirs = nn.BatchNorm1d(5, momentum=0.3).to(device), torch.nn.BatchNorm1d(5, momentum=0.3)
    for step in range(3):
        x = (rng.standard_normal(shape) * 2 + step).astype(np.float32)
        mine, reference = gpucnn.tensor(x, device=device, requires_grad=True), torch.tensor(x, requires_grad=True)
        upstream = rng.standard_normal(shape).astype(np.float32)
        out, expected = ours(mine), theirs(reference)
        out.backward(gpucnn.tensor(upstream, device=device))
        expected.backward(torch.from_numpy(upstream))
        assert_close(out, expected.detach(), atol=1e-5)
        assert_close(mine.grad, reference.grad, atol=1e-5)
        assert_close(ours.weight.grad, theirs.weight.grad, atol=1e-4)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        assert_close(getattr(ours, name), getattr(theirs, name), atol=1e-5, name=name)
    ours.eval(), theirs.eval()
    x = rng.standard_normal(shape).astype(np.float32)
    assert_close(ours(gpucnn.tensor(x, device=device)), theirs(torch.from_numpy(x)).detach(), atol=1e-5)
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected 2-D \(N, C\) or 3-D \(N, C, L\) input, got "
                                         r"shape \(2, 5, 3, 3\)"):
        ours(gpucnn.zeros(2, 5, 3, 3, device=device))
    assert repr(ours) == "BatchNorm1d(5, eps=1e-05, momentum=0.3, affine=True)"


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
def test_dropout2d_drops_whole_channels(device):
    gpucnn.manual_seed(5)
    layer = nn.Dropout2d(0.25)
    x = gpucnn.tensor(np.random.default_rng(1).uniform(1, 2, (64, 32, 3, 4)).astype(np.float32), device=device,
                      requires_grad=True)
    y = layer(x)
    kept = (y.numpy() != 0).reshape(64, 32, 12)
    assert (kept == kept[:, :, :1]).all()  # one draw a channel
    assert abs(1 - kept[:, :, 0].mean() - 0.25) < 0.05
    scale = kept.reshape(x.shape) / np.float32(0.75)
    np.testing.assert_allclose(y.numpy(), x.numpy() * scale, rtol=1e-6)
    y.sum().backward()
    np.testing.assert_allclose(x.grad.numpy(), scale, rtol=1e-6)
    unbatched = layer(gpucnn.ones(16, 2, 2, device=device)).numpy().reshape(16, 4)
    assert (unbatched == unbatched[:, :1]).all() and (unbatched[:, 0] == 0).any()
    layer.eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match=r"dropout2d: input must be \(N, C, H, W\) or \(C, H, W\), got shape "
                                         r"\(4, 5\)"):
        nn.functional.dropout2d(gpucnn.ones(4, 5))
    with pytest.raises(ValueError, match=r"Dropout2d: p must be a probability in \[0, 1\], got 1.5"):
        nn.Dropout2d(1.5)


def test_module_dict_registers_its_modules_as_torchs():
    heads = nn.ModuleDict({"class": nn.Linear(4, 3), "box": nn.Linear(4, 2)})
    heads["extra"] = nn.ReLU()
    theirs = torch.nn.ModuleDict({"class": torch.nn.Linear(4, 3), "box": torch.nn.Linear(4, 2)})
    theirs["extra"] = torch.nn.ReLU()
    assert list(heads) == list(theirs) == ["class", "box", "extra"]
    assert list(heads.state_dict()) == list(theirs.state_dict())
    assert len(list(heads.parameters())) == 4 and "box" in heads and len(heads) == 3
    assert [name for name, _ in heads.items()] == list(heads.keys()) and heads["box"] is list(heads.values())[1]
    heads.update([("box", nn.Linear(4, 5))])
    assert heads["box"].out_features == 5 and list(heads) == ["class", "box", "extra"]
    assert isinstance(heads.pop("extra"), nn.ReLU) and list(heads) == ["class", "box"]
    del heads["class"]
    assert list(heads) == ["box"]
    holder = nn.Module()
    holder.heads = heads
    assert list(holder.state_dict()) == ["heads.box.weight", "heads.box.bias"]
    heads.clear()
    assert len(heads) == 0 and not list(holder.parameters())
    for key, error, message in (("a.b", KeyError, "a name must be a non-empty str without"),
                                ("keys", KeyError, "the name 'keys' is an attribute of ModuleDict itself"),
                                (3, KeyError, "a name must be a non-empty str")):
        with pytest.raises(error, match=message):
            heads[key] = nn.ReLU()
    with pytest.raises(TypeError, match="ModuleDict: the value of 'x' is a int, not a Module"):
        heads["x"] = 3
    with pytest.raises(TypeError, match="ModuleDict.update: expected a mapping or"):
        nn.ModuleDict(["ab"])


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
def test_a_model_of_in_place_layers_trains_as_torchs(device):
    """nn.ReLU(inplace=True), LeakyReLU and Dropout(p=0) with inplace=True, as torchvision's models write them:
    the same outputs and gradients as torch's, training; in evaluation under no_grad the input of each is
    overwritten and returned, as in torch."""
    def build(nn_module):
        return nn_module.Sequential(nn_module.Conv2d(2, 4, 3), nn_module.ReLU(inplace=True),
                                    nn_module.Conv2d(4, 3, 3), nn_module.LeakyReLU(0.2, inplace=True),
                                    nn_module.Dropout(0.0, inplace=True), nn_module.Flatten(), nn_module.Linear(12, 2))

    gpucnn.manual_seed(6)
    ours, theirs = build(nn).to(device), build(torch.nn)
    theirs.load_state_dict({key: torch.from_numpy(value.numpy()) for key, value in ours.state_dict().items()})
    x = np.random.default_rng(7).standard_normal((3, 2, 6, 6)).astype(np.float32)
    mine, reference = gpucnn.tensor(x, device=device, requires_grad=True), torch.tensor(x, requires_grad=True)
    out, expected = ours(mine), theirs(reference)
    assert_close(out, expected.detach(), atol=1e-5)
    out.sum().backward()
    expected.sum().backward()
    assert_close(mine.grad, reference.grad, atol=1e-5)
    for (name, p), q in zip(ours.named_parameters(), theirs.parameters()):
        assert_close(p.grad, q.grad, atol=1e-4, name=name)
    assert repr(ours[1]) == "ReLU(inplace=True)" and repr(ours[3]) == "LeakyReLU(negative_slope=0.2, inplace=True)"
    hidden = gpucnn.tensor(np.float32([[-1.0, 2.0]]), device=device)
    with gpucnn.no_grad():
        assert ours[1](hidden) is hidden
    assert hidden.tolist() == [[0.0, 2.0]] and hidden._version[0] == 1


def test_state_dict_round_trip_and_errors():
    model, other = small_cnn(), small_cnn()
    result = other.load_state_dict(model.state_dict())
    assert result.missing_keys == [] and result.unexpected_keys == []
    for (name, p), q in zip(model.named_parameters(), other.parameters()):
        assert np.array_equal(p.numpy(), q.numpy()), name
    state = OrderedDict((k, v.numpy()) for k, v in model.state_dict().items())
    del state["0.bias"]
    state["extra.weight"] = np.zeros(2)
    with pytest.raises(ValueError, match=r"missing keys: 0\.bias.*unexpected keys: extra\.weight"):
        other.load_state_dict(state)
    result = other.load_state_dict(state, strict=False)
    assert result.missing_keys == ["0.bias"] and result.unexpected_keys == ["extra.weight"]
    state = model.state_dict()
    state["5.weight"] = np.zeros((5, 3))
    with pytest.raises(ValueError, match=r"size mismatch for 5\.weight.*\(5, 3\).*\(5, 64\)"):
        other.load_state_dict(state)


def test_load_state_dict_keeps_parameter_identity():
    model = small_cnn()
    weight = model[0].weight
    model.load_state_dict(small_cnn().state_dict())
    assert model[0].weight is weight


def test_to_device_keeps_parameters():
    model = small_cnn()
    parameters = list(model.parameters())
    assert model.to("cpu") is model
    assert list(model.parameters()) == parameters
    with pytest.raises(ValueError, match="unknown device"):
        model.to("gpu7")


@pytest.mark.parametrize("build, match", [
    (lambda: nn.Conv2d(3, 4, 0), "kernel_size"),
    (lambda: nn.Conv2d(0, 4, 3), "in_channels"),
    (lambda: nn.Conv2d(3, 4, 3, groups=2), "divisible by groups"),
    (lambda: nn.Conv2d(3, 4, 3, stride=0), "stride"),
    (lambda: nn.Conv2d(3, 4, 3, padding=-1), "padding"),
    (lambda: nn.Conv2d(3, 4, 3, padding="full"), "padding"),
    (lambda: nn.Linear(3, -1), "out_features"),
    (lambda: nn.MaxPool2d(2, padding=2), "half"),
    (lambda: nn.AvgPool2d(0), "kernel_size"),
    (lambda: nn.AvgPool2d(2, divisor_override=0), "AvgPool2d: divisor_override must be non-zero"),
    (lambda: nn.Conv2d(3, 4, 3, padding_mode="reflect"), "Conv2d: padding_mode must be 'zeros'"),
    (lambda: nn.AvgPool2d(2, divisor_override=1.5), "AvgPool2d: divisor_override must be an int"),
    (lambda: nn.Dropout(1.5), "p must be"),
    (lambda: nn.BatchNorm2d(0), "num_features"),
    (lambda: nn.CrossEntropyLoss(reduction="avg"), "reduction"),
    (lambda: nn.CrossEntropyLoss(label_smoothing=2), "label_smoothing"),
])
def test_bad_layer_hyper_parameters(build, match):
    with pytest.raises((ValueError, TypeError), match=match):
        build()


def test_layers_against_torch_modules():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 9, 7)).astype(np.float32)
    pairs = [
        (nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True), torch.nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)),
        (nn.AvgPool2d(2, padding=1, count_include_pad=False), torch.nn.AvgPool2d(2, padding=1, count_include_pad=False)),
        (nn.AvgPool2d(3, 2, 1, ceil_mode=True, divisor_override=4),
         torch.nn.AvgPool2d(3, 2, 1, ceil_mode=True, divisor_override=4)),
        (nn.AdaptiveAvgPool2d(1), torch.nn.AdaptiveAvgPool2d(1)),
        (nn.LeakyReLU(0.2), torch.nn.LeakyReLU(0.2)),
        (nn.Flatten(), torch.nn.Flatten()),
        (nn.Sigmoid(), torch.nn.Sigmoid()),
        (nn.Tanh(), torch.nn.Tanh()),
        (nn.Softmax(1), torch.nn.Softmax(1)),
        (nn.LogSoftmax(dim=-1), torch.nn.LogSoftmax(dim=-1)),
        (nn.Identity(54, unused=True), torch.nn.Identity(54, unused=True)),
    ]
    for ours, theirs in pairs:
        assert_close(ours(x), theirs(torch.from_numpy(x)), name=type(ours).__name__)
    gpucnn.manual_seed(3)
    conv = nn.Conv2d(6, 6, 3, stride=2, padding="same", dilation=1, groups=3, bias=False)
    reference = torch.nn.Conv2d(6, 6, 3, stride=2, padding=0, groups=3, bias=False)
    reference.weight.data = torch.from_numpy(conv.weight.numpy().copy())
    padded = torch.nn.functional.pad(torch.from_numpy(x), (1, 1, 1, 1))  # 'same' at stride 2 on 9x7: 1 each side
    assert_close(conv(x), reference(padded), atol=1e-5)


# What gpucnn leaves out of PyTorch's signatures, on purpose (README): device and dtype at construction,
# batch norm's separate bias switch, the losses' legacy arguments, Hardtanh's deprecated min_value and max_value.
_LEGACY = {"size_average", "reduce"}
_LEFT_OUT = {"BatchNorm1d": {"bias"}, "BatchNorm2d": {"bias"}, **dict.fromkeys(["CrossEntropyLoss", "cross_entropy", "NLLLoss", "nll_loss",
                                                        "MSELoss", "mse_loss", "L1Loss", "l1_loss", "BCELoss",
                                                        "binary_cross_entropy", "BCEWithLogitsLoss",
                                                        "binary_cross_entropy_with_logits", "KLDivLoss", "kl_div",
                                                        "SmoothL1Loss", "smooth_l1_loss"], _LEGACY),
             "Hardtanh": {"min_value", "max_value"}}
_LEFT_OUT_EVERYWHERE = {"self", "device", "dtype", "_stacklevel"}


def _parameter_names(function, owner: str) -> list:
    left_out = _LEFT_OUT_EVERYWHERE | _LEFT_OUT.get(owner, set())
    return [name for name in inspect.signature(function).parameters if name not in left_out]


_LAYERS = [name for name, value in vars(nn).items()
           if isinstance(value, type) and issubclass(value, nn.Module) and name not in ("Module", "Sequential")]


@pytest.mark.parametrize("name", _LAYERS)
def test_layers_take_pytorch_arguments_in_pytorch_order(name):
    """Each layer's constructor takes torch.nn's arguments, named and ordered as there, but for _LEFT_OUT."""
    ours, theirs = getattr(nn, name).__init__, getattr(torch.nn, name).__init__
    theirs_names = [] if theirs is torch.nn.Module.__init__ else _parameter_names(theirs, name)  # (*args, **kwargs)
    assert _parameter_names(ours, name) == theirs_names  # refuses any, as torch's


# torch.nn.functional functions whose signature Python cannot read (builtins, a *args wrapper), as documented.
_DOCUMENTED = {
    "avg_pool2d": ["input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad", "divisor_override"],
    "conv2d": ["input", "weight", "bias", "stride", "padding", "dilation", "groups"],
    "conv_transpose2d": ["input", "weight", "bias", "stride", "padding", "output_padding", "groups", "dilation"],
    "linear": ["input", "weight", "bias"],
    "max_pool2d": ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"],
    "adaptive_max_pool2d": ["input", "output_size", "return_indices"],
    "gelu": ["input", "approximate"],
    "logsigmoid": ["input"],
    "one_hot": ["tensor", "num_classes"],
    "prelu": ["input", "weight"],
    "softplus": ["input", "beta", "threshold"],
}


@pytest.mark.parametrize("name", sorted(set(gpucnn.nn.functional.__all__) & set(dir(torch.nn.functional))))
def test_functions_take_pytorch_arguments_in_pytorch_order(name):
    theirs = _DOCUMENTED.get(name) or _parameter_names(getattr(torch.nn.functional, name), name)
    assert _parameter_names(getattr(gpucnn.nn.functional, name), name) == theirs


def test_dropout_module_respects_mode():
    x = np.ones((100, 100), dtype=np.float32)
    layer = nn.Dropout(0.5)
    assert 0.4 < (layer(x).numpy() == 0).mean() < 0.6
    layer.eval()
    assert np.array_equal(layer(x).numpy(), x)


def test_repr():
    text = repr(small_cnn())
    assert "(0): Conv2d(3, 4, kernel_size=(3, 3), stride=(1, 1), padding=(1, 1))" in text
    assert "(5): Linear(in_features=64, out_features=5, bias=True)" in text
    assert repr(nn.AvgPool2d(3, divisor_override=4)) == "AvgPool2d(kernel_size=3, stride=3, padding=0, divisor_override=4)"


def test_summary_lecture_example(capsys):
    """10 filters of 5x5, stride 1, pad 2 on a 32x32x3 input: 32x32x10 output, 760 parameters."""
    table = gpucnn.summary(nn.Sequential(nn.Conv2d(3, 10, 5, stride=1, padding=2)), (3, 32, 32))
    assert table.rows == [("0", "Conv2d", (-1, 10, 32, 32), 760)]
    assert table.total_params == 760 == table.trainable_params
    printed = capsys.readouterr().out
    assert "[-1, 10, 32, 32]" in printed and "Total params: 760" in printed


def test_summary_of_a_cnn():
    model = small_cnn()
    model.train()
    table = gpucnn.summary(model, (3, 8, 8), print_table=False)
    assert [row[2] for row in table.rows] == [(-1, 4, 8, 8), (-1, 4, 8, 8), (-1, 4, 8, 8), (-1, 4, 4, 4), (-1, 64), (-1, 5)]
    assert table.total_params == sum(p.numel() for p in model.parameters()) == 112 + 8 + 325
    assert model.training  # restored
    with pytest.raises(ValueError, match="input_shape"):
        gpucnn.summary(model, (3, 0, 8))


def test_small_cnn_learns_synthetic_shapes():
    """README's main job: the example reaches high test accuracy on the CPU within seconds."""
    result = subprocess.run([sys.executable, str(ROOT / "examples" / "train_shapes.py"), "--epochs", "4"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    accuracy = float(result.stdout.strip().splitlines()[-1].split(":")[1])
    assert accuracy >= 0.9, result.stdout



class _Blocks(nn.Module):
    """A model whose layers sit in a ModuleList, indexed and sliced in its forward."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(2, 4, 3, padding=1)
        self.blocks = nn.ModuleList([nn.Conv2d(4, 4, 3, padding=1) for _ in range(2)])
        self.blocks.append(nn.BatchNorm2d(4))
        self.head = nn.Linear(4, 3)

    def forward(self, x):
        x = self.stem(x)
        for block in self.blocks[:2]:
            x = x + block(x)
        return self.head(self.blocks[-1](x).mean(dim=(2, 3)))


def test_module_list_registers_its_modules_as_torch():
    """ModuleList's modules are the model's: parameter and buffer names, state_dict, train/eval, to() and
    the gradients of a forward that indexes and slices it, as torch.nn.ModuleList's; it takes only
    Modules, and has no forward of its own."""
    ours = _Blocks()
    reference = torch.nn.Module()
    reference.stem = torch.nn.Conv2d(2, 4, 3, padding=1)
    reference.blocks = torch.nn.ModuleList([torch.nn.Conv2d(4, 4, 3, padding=1) for _ in range(2)])
    reference.blocks.append(torch.nn.BatchNorm2d(4))
    reference.head = torch.nn.Linear(4, 3)
    assert list(ours.state_dict()) == list(reference.state_dict())
    reference.load_state_dict({k: torch.from_numpy(v.numpy().copy()) for k, v in ours.state_dict().items()})
    assert len(ours.blocks) == 3 and isinstance(ours.blocks[1:], nn.ModuleList) and len(ours.blocks[1:]) == 2
    assert [type(m).__name__ for m in ours.blocks] == ["Conv2d", "Conv2d", "BatchNorm2d"]
    x = np.random.default_rng(7).standard_normal((2, 2, 5, 5)).astype(np.float32)
    loss = ours(gpucnn.tensor(x)).sum()
    h = reference.stem(torch.from_numpy(x))
    for block in reference.blocks[:2]:
        h = h + block(h)
    expected = reference.head(reference.blocks[-1](h).mean(dim=(2, 3))).sum()
    assert_close(loss, expected, atol=1e-5)
    loss.backward()
    expected.backward()
    for (name, p), (_, q) in zip(ours.named_parameters(), reference.named_parameters()):
        assert_close(p.grad, q.grad, atol=1e-5, name=name)
    ours.eval()
    assert not ours.blocks[2].training
    assert all(p.device == "cudasim" for p in ours.to("cudasim").blocks.parameters())
    with pytest.raises(TypeError, match=r"^ModuleList.append: element 3 is a function, not a Module"):
        ours.blocks.append(gpucnn.nn.functional.relu)
    with pytest.raises(TypeError, match=r"^ModuleList.append: element 0 is a list, not a Module"):
        nn.ModuleList([[nn.ReLU()]])
    with pytest.raises(NotImplementedError):
        ours.blocks(gpucnn.tensor(x))
