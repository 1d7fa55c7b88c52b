"""The benchmarks run (tiny shapes, one repeat) so they cannot rot; timings are never asserted."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_conv2d_benchmark_quick_run_writes_its_tables(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bench.conv2d", "--quick", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    (markdown,) = tmp_path.glob("conv2d-quick_*.md")
    (record_path,) = tmp_path.glob("conv2d-quick_*.json")
    text = markdown.read_text()
    assert "| suite | layer |" in text and "| gpucnn MiB | torch MiB |" in text and "| **all** |" in text
    assert "geometric mean torch / gpucnn" in result.stdout
    record = json.loads(record_path.read_text())
    assert record["op"] == "conv2d" and record["quick"] and len(record["rows"]) >= 2
    assert record["torch_threads"] == record["numpy_blas"]["threads"] >= 1
    assert record["geometric_mean_ratio"] > 0 and record["geometric_mean_gemm_bound"] > 0
    assert list(record["by_suite"]) == ["quick"]
    assert record["by_suite"]["quick"]["layers"] == len(record["rows"])
    assert record["by_suite"]["quick"]["geometric_mean_ratio"] > 0
    for row in record["rows"]:
        assert row["suite"] == "quick"
        assert row["gpucnn_ms"] > 0 and row["torch_ms"] > 0 and row["ratio"] > 0
        assert row["gemms_ms"] > 0 and row["gemm_bound"] == row["torch_ms"] / row["gemms_ms"]
        # the memory probes ran (one fresh process per library) and report a rise, possibly 0 for tiny layers
        assert row["gpucnn_peak_bytes"] >= 0 and row["torch_peak_bytes"] >= 0 and row["least_bytes"] > 0
        assert row["memory_ratio"] is None or row["memory_ratio"] > 0


def test_a_batch_for_every_layer_runs_each_distinct_layer_once():
    """With a batch for every layer, the layers that differ by their batch alone (VGG-16's at 32, 64
    and 128) run once, named without their own batch; the others keep their names."""
    from bench.conv2d import conv_layers
    from bench.suites import VGG16, at_batch

    assert at_batch(VGG16, None) == VGG16
    layers = at_batch(VGG16, 8)
    assert len(VGG16) == 3 * len(layers) and {layer.batch for layer in layers} == {8}
    assert layers[0].name == "vgg16 relu 64ch 224px" and layers[-1].name == "vgg16 512->512 14px"
    assert [layer._replace(name="", batch=0) for layer in layers] == [
        layer._replace(name="", batch=0) for layer in VGG16 if layer.batch == 32]
    pairs = conv_layers(["lecture", "vgg16"], 2)
    assert [suite for suite, _ in pairs] == ["lecture"] * 3 + ["vgg16"] * 9
    assert pairs[0][1].name == "lecture 32x32x3, ten 5x5 p2" and {layer.batch for _, layer in pairs} == {2}


def test_conv2d_benchmark_suites_pick_their_conv_layers():
    from bench.conv2d import DEFAULT_SUITES, conv_layers
    from bench.suites import JETSON, SUITES, Conv

    layers = conv_layers(["jetson", "lecture"])
    assert [layer for _, layer in layers] == [case for case in JETSON + SUITES["lecture"] if isinstance(case, Conv)]
    assert [suite for suite, _ in layers] == ["jetson"] * 6 + ["lecture"] * 3
    assert all(layer.batch == 1 for suite, layer in layers if suite == "jetson")
    default = conv_layers(DEFAULT_SUITES)
    assert {suite for suite, _ in default} == {"lecture", "convnetjs", "resnet18", "jetson"}
    assert all(isinstance(layer, Conv) for _, layer in default) and not any("vgg16" in s for s, _ in default)


def test_conv2d_benchmark_suite_option(capsys):
    from bench.conv2d import DEFAULT_SUITES, parse_arguments, results_name

    assert parse_arguments([]).suites == list(DEFAULT_SUITES)
    arguments = parse_arguments(["--suite", "jetson, resnet18", "--suite", "vgg16", "--suite", "jetson"])
    assert arguments.suites == ["jetson", "resnet18", "vgg16"]
    for wrong in (["--suite", "resnet18,nope"], ["--quick", "--suite", "jetson"]):
        with pytest.raises(SystemExit):
            parse_arguments(wrong)
    errors = capsys.readouterr().err
    assert "unknown suite 'nope'; choose from lecture, convnetjs, resnet18, jetson, smallresnet, vgg16" in errors
    assert "--quick runs its own tiny layers" in errors
    # runs of other suites than the default keep files of their own
    runs = ([], ["--suite", ",".join(DEFAULT_SUITES)], ["--quick"], ["--suite", "smallresnet"],
            ["--suite", "jetson,vgg16"], ["--suite", "vgg16", "--batch", "32"], ["--quick", "--batch", "3"])
    assert [results_name(parse_arguments(argv)) for argv in runs] == [
        "conv2d", "conv2d", "conv2d-quick", "conv2d-smallresnet", "conv2d-jetson-vgg16", "conv2d-vgg16-b32",
        "conv2d-quick-b3"]


def test_least_median_keeps_each_contenders_fastest_round():
    from bench import least_median

    rounds = [dict(gpucnn=[5.0, 1.0, 3.0], torch=[2.0, 2.0, 9.0]),  # medians 3 and 2
              dict(gpucnn=[4.0, 2.0, 2.5], torch=[8.0, 7.0, 1.0])]  # medians 2.5 and 7
    assert least_median(rounds) == dict(gpucnn=2.5, torch=2.0)
    # a block that timed nothing (a device time that could not be measured) is left out; none at all: None
    assert least_median([dict(gpucnn=[], torch=[3.0]), dict(gpucnn=[4.0], torch=[])]) == dict(gpucnn=4.0, torch=3.0)
    assert least_median([dict(gpucnn=[]), dict(gpucnn=[])]) == dict(gpucnn=None)


def test_settle_ends_the_window_of_split_work(monkeypatch):
    """A block of timings starts as a call on its own does: outside gpucnn's window of split work (where
    the cpu runs BLAS on one thread), whatever the op timed before split."""
    import bench
    from gpucnn.ops import _parallel

    monkeypatch.setattr(bench, "SETTLE_SECONDS", 0)
    _parallel.note_split()
    assert _parallel.splitting()
    bench.settle()
    assert not _parallel.splitting()


def test_warm_up_runs_its_calls_and_then_for_its_seconds(monkeypatch):
    import time

    import bench

    monkeypatch.setattr(bench, "WARMUP_SECONDS", 0.05)
    calls = []
    start = time.perf_counter()
    bench.warm_up(lambda: calls.append(time.perf_counter()), 3)
    end = time.perf_counter()
    # on past the 3 calls until the time was up: it returned after it, its last call (which ran before the
    # test that found the time up, so may come a moment short of it) close to it
    assert len(calls) > 3 and end - start >= 0.05 and calls[-1] - start >= 0.04
    slow = []
    bench.warm_up(lambda: (slow.append(1), time.sleep(0.03)), 3)
    assert len(slow) == 3  # the calls took longer than the time: no more
    none = []
    bench.warm_up(lambda: none.append(1), 0)
    assert none == []  # no warm-up asked for (--quick): none at all


@pytest.mark.parametrize("by_image_rows_max", [0, 1 << 7])
@pytest.mark.parametrize("transposed_filter_max, by_image_filter_max", [(1 << 18, 1 << 11), (1 << 18, 0), (0, 1 << 11)])
@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 1), (1, 0)])
def test_conv2d_gemm_bound_times_the_products_of_the_cpu_step(monkeypatch, stride, padding, transposed_filter_max,
                                                              by_image_filter_max, by_image_rows_max):
    """The GEMM-bound block runs the BLAS products a gpucnn cpu step on the plain columns runs: same
    shapes, same operand layouts (the forward's product in one go or an image at a time with the bias,
    the weight gradient's either way round, or an image at a time)."""
    import numpy

    from bench.conv2d import make_gemm_step, make_step
    from bench.suites import Conv
    from gpucnn.ops.conv2d import Conv2d

    monkeypatch.setattr(Conv2d, "BY_IMAGE_ROWS_MAX", by_image_rows_max)
    monkeypatch.setattr(Conv2d, "TRANSPOSED_FILTER_MAX", transposed_filter_max)
    monkeypatch.setattr(Conv2d, "BY_IMAGE_FILTER_MAX_BESIDE_COLUMNS", by_image_filter_max)
    monkeypatch.setattr(Conv2d, "BY_IMAGE_MIN_PIXELS", 1)

    layer = Conv("case", 3, 4, 6, 9, 3, stride, padding)
    products, matmul = [], numpy.matmul

    def recording_matmul(a, b, *args, **kwargs):
        products.append(tuple((x.shape[-2:], x.flags.c_contiguous) for x in (a, b)))
        return matmul(a, b, *args, **kwargs)

    monkeypatch.setattr(numpy, "matmul", recording_matmul)
    make_step("gpucnn", layer)()
    ours = sorted(products)
    products.clear()
    make_gemm_step(layer)()
    assert len(ours) == 3 and sorted(products) == ours


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 1)])
def test_conv2d_gemm_bound_counts_its_arrays(stride, padding):
    """gemm_step_bytes is what make_gemm_step's arrays take (views of them count nothing more)."""
    import numpy

    from bench.conv2d import gemm_step_bytes, make_gemm_step
    from bench.suites import Conv

    layer = Conv("case", 3, 4, 6, 9, 3, stride, padding)
    arrays = [cell.cell_contents for cell in make_gemm_step(layer).__closure__]
    assert gemm_step_bytes(layer) == sum(a.nbytes for a in arrays if isinstance(a, numpy.ndarray) and a.base is None)


def test_conv2d_skips_the_gemm_bound_past_its_memory(monkeypatch):
    """Where the GEMM bound's arrays would pass GEMM_MAX_BYTES, the layer has none: n/a in its row and
    the means over the layers that have one."""
    from bench import conv2d
    from bench.suites import Conv

    small, large = Conv("small", 1, 2, 3, 5, 3, 1, 1), Conv("large", 1, 2, 3, 9, 3, 1, 1)
    monkeypatch.setattr(conv2d, "GEMM_MAX_BYTES", conv2d.gemm_step_bytes(small))
    rows = conv2d.run([("quick", small), ("quick", large)], repeats=1, warmup=0, attempts=1, memory=False)
    assert rows[0]["gemms_ms"] > 0 and rows[1]["gemms_ms"] is None and rows[1]["gemm_bound"] is None
    summary = conv2d.summarize(rows)
    assert summary["all"]["geometric_mean_gemm_bound"] == pytest.approx(rows[0]["gemm_bound"])
    table = conv2d.markdown_tables(rows, summary)
    lines = table.splitlines()
    header, large_row = ([cell.strip() for cell in line.split("|")[1:-1]] for line in (lines[0], lines[3]))
    cells = dict(zip(header, large_row))
    assert cells["layer"] == "large" and cells["GEMMs ms"] == cells["torch / GEMMs"] == "n/a"


def test_benchmarks_time_in_rounds():
    from bench import conv2d, ops
    from bench.environment import Environment
    from bench.suites import TINY

    rows = conv2d.run([("quick", conv2d.QUICK_LAYERS[0])], repeats=2, warmup=0, attempts=1, memory=False, rounds=2)
    assert rows[0]["gpucnn_ms"] > 0 and rows[0]["torch_ms"] > 0
    rows = ops.run(Environment("cpu"), TINY[2:3], repeats=2, warmup=0, attempts=1, rounds=2, log=lambda line: None)
    assert [row["op"] for row in rows] == ["relu_forward", "relu_backward"]
    assert not any("issue" in key or "device" in key for key in rows[0])  # a cpu call returns when done
    with pytest.raises(SystemExit):
        conv2d.parse_arguments(["--rounds", "0"])


def _run_bench(tmp_path, *arguments):
    result = subprocess.run([sys.executable, "-m", "bench", *arguments, "--quick", "--out", str(tmp_path)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    return result


@pytest.mark.parametrize("device", ["cpu", "cudasim"])
def test_ops_benchmark_quick_run_writes_its_tables(tmp_path, device):
    result = _run_bench(tmp_path, "ops", "--device", device)
    (markdown,) = tmp_path.glob(f"ops-tiny-{device}-quick_*.md")
    (record_path,) = tmp_path.glob(f"ops-tiny-{device}-quick_*.json")
    assert "| layer | op |" in markdown.read_text() and "conv2d_forward_backward" in result.stdout
    record = json.loads(record_path.read_text())
    assert record["bench"] == "ops" and record["quick"] and record["device"] == device
    assert record["roofline"]["gemm_gflops"] > 0 and record["roofline"]["copy_gbps"] > 0
    ops = {row["op"] for row in record["rows"]}
    assert ops == {"conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter", "maxpool2d_forward",
                   "maxpool2d_backward", "avgpool2d_forward", "avgpool2d_backward", "relu_forward",
                   "relu_backward", "batchnorm_forward", "batchnorm_backward"}
    for row in record["rows"]:
        assert row["gpucnn_ms"] > 0 and row["torch_ms"] > 0 and row["ratio"] > 0 and row["roofline_fraction"] > 0


def test_profile_step_calls_and_conv_run():
    """bench.profile's commands on tiny sizes: a step's timing line and profile, single op calls timed
    and profiled, the conv layers, and a launch's host time both ways."""
    for arguments, expected in ((["step", "--device", "cpu", "--model", "lenet", "--batch", "2", "--steps", "2",
                                  "--top", "3"], "lenet on cpu, batch 2: a step takes"),
                                (["calls", "--device", "cudasim", "--calls", "2", "--top", "2"],
                                 "avg_pool2d forward, input (1, 16, 8, 8) on cudasim: "),
                                (["calls", "--device", "cudasim", "--calls", "2", "--top", "0"],
                                 "ms a call to issue back to back"),
                                (["conv", "--device", "cudasim"], "small 5x5: 2x3x7x7 -> 4, 5x5, path chosen"),
                                (["launches", "--device", "cudasim", "--blocks", "2", "--count", "2"],
                                 "conv2d_forward_64: launcher(grid, block, leading) on cudasim: "),
                                (["launches", "--device", "cudasim", "--blocks", "2", "--count", "2"],
                                 "relu_forward: launcher(grid, block, leading) on cudasim: ")):
        result = subprocess.run([sys.executable, "-m", "bench.profile", *arguments], cwd=ROOT, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        assert expected in result.stdout


def test_profile_host_counts_a_steps_launches_and_leaves_the_kernels_running():
    """bench.profile host: lenet's step launches its kernels (two convs, two pools, three ReLUs...)
    and makes NumPy calls; afterwards cudasim runs kernels again (its launches, through device.kernel and
    device.launcher, are no longer skipped)."""
    import numpy

    import gpucnn
    from bench.profile import profile_host
    from gpucnn.nn import functional as F

    lines = []
    result = profile_host("lenet", batch=2, steps=2, top=3, log=lines.append)
    assert result["host_ms"] > 0 and result["launches"] >= 10 and result["numpy_calls"] > 0
    assert lines[0].startswith("lenet on cudasim without its kernels, batch 2:") and len(lines) == 4
    x = numpy.array([[-1.0, 2.0]], dtype=numpy.float32)
    assert F.relu(gpucnn.tensor(x, device="cudasim")).numpy().tolist() == [[0.0, 2.0]]
    ones = gpucnn.tensor(numpy.ones((1, 1, 3, 3), numpy.float32), device="cudasim")
    assert F.conv2d(ones, ones).numpy().tolist() == [[[[9.0]]]]  # conv2d's launchers run too


def test_a_batch_for_every_layer_is_in_the_results_name(tmp_path):
    _run_bench(tmp_path, "ops", "--device", "cpu", "--batch", "3")
    (record_path,) = tmp_path.glob("ops-tiny-b3-cpu-quick_*.json")
    assert {row["shape"].split("x")[0] for row in json.loads(record_path.read_text())["rows"]} == {"3"}


def test_kernels_benchmark_quick_run_times_every_path(tmp_path):
    result = _run_bench(tmp_path, "kernels", "--device", "cudasim")
    (markdown,) = tmp_path.glob("kernels-tiny-cudasim-quick_*.md")
    (record_path,) = tmp_path.glob("kernels-tiny-cudasim-quick_*.json")
    table = markdown.read_text()
    assert ("| layer | op | shape | chosen ms | unsplit ms | split768 ms | chunk64 ms | taps_off ms "
            "| taps_forward ms | pixels_off ms | pixels_wide ms | pixels_split ms | waves_off ms | gather20 ms "
            "| tile64 ms | tile128 ms | winograd2 ms | winograd4 ms | torch ms |") in table
    assert "Geometric mean of chosen / fastest" in result.stdout
    record = json.loads(record_path.read_text())
    assert record["bench"] == "kernels" and record["chosen_over_fastest_device"] is None  # per-call times only
    assert "On the device alone" not in table
    assert record["paths"] == ["chosen", "unsplit", "split768", "chunk64", "taps_off", "taps_forward", "pixels_off",
                               "pixels_wide", "pixels_split", "waves_off", "gather20", "tile64", "tile128", "winograd2",
                               "winograd4"]
    assert [(row["layer"], row["op"]) for row in record["rows"]] == [
        (layer, op) for layer in ("tiny 3x3 p1", "tiny 1x1 s2")
        for op in ("conv2d_forward", "conv2d_backward_data", "conv2d_backward_filter")]
    for row in record["rows"]:
        assert all(row[f"{path}_ms"] > 0 for path in record["paths"] + ["torch"])
        assert row["fastest"] in record["paths"] and row["chosen_over_fastest"] >= 1.0


def test_kernels_benchmark_times_the_paths_asked_for_beside_chosen(tmp_path):
    _run_bench(tmp_path, "kernels", "--device", "cudasim", "--paths", "tile64,split768")
    (record_path,) = tmp_path.glob("kernels-tiny-split768+tile64-cudasim-quick_*.json")
    record = json.loads(record_path.read_text())
    assert record["paths"] == ["chosen", "split768", "tile64"]  # in KERNEL_PATHS's order
    assert all(set(row) >= {"chosen_ms", "split768_ms", "tile64_ms"} and "unsplit_ms" not in row
               for row in record["rows"])
    result = subprocess.run([sys.executable, "-m", "bench", "kernels", "--device", "cudasim", "--quick", "--paths",
                             "chosen,tile96", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode != 0 and "--paths: tile96 not among the kernel paths of cudasim: chosen" in result.stderr


def test_compare_benchmark_quick_run_times_both_versions(tmp_path):
    """``bench compare`` against a copy of this checkout's gpucnn: every op of the tiny suite, conv2d's
    on each path asked for, timed once in a process on each side (the copy's process must import the
    copy, which compare checks)."""
    before = tmp_path / "before"
    shutil.copytree(ROOT / "gpucnn", before / "gpucnn", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "cuda", before / "cuda")
    out = tmp_path / "out"
    result = _run_bench(out, "compare", str(before), "--device", "cudasim", "--paths", "chosen,tile64",
                        "--rounds", "1")
    assert "Geometric mean of after / before" in result.stdout
    (record_path,) = out.glob("compare-tiny-cudasim-quick_*.json")
    record = json.loads(record_path.read_text())
    assert record["bench"] == "compare" and record["paths"] == ["chosen", "tile64"]
    from bench.suites import TINY

    expected = [(layer.name, op, path) for layer in TINY for op in layer.ops
                for path in (["chosen", "tile64"] if op.startswith("conv2d") else ["chosen"])]
    assert [(row["layer"], row["op"], row["path"]) for row in record["rows"]] == expected
    for row in record["rows"]:
        assert len(row["before_ms"]) == len(row["after_ms"]) == 1 and len(row["torch_ms"]) == 2
        assert row["after_over_before"] > 0 and row["timing"] == row["torch_timing"] == "call"
        assert row["before_issue_ms"] == row["after_issue_ms"] == [] and row["issue_after_over_before"] is None
    (header,) = [line for line in result.stdout.splitlines() if line.startswith("| layer |")]
    assert record["issue_after_over_before"] is None and "host" not in header  # no GPU: no issue times
    # a run on some of the suite's ops writes files of its own beside the whole suite's
    _run_bench(out, "compare", str(before), "--device", "cudasim", "--ops", "relu_forward", "--rounds", "1")
    (record_path,) = out.glob("compare-tiny-relu_forward-cudasim-quick_*.json")
    assert [row["op"] for row in json.loads(record_path.read_text())["rows"]] == ["relu_forward"]
    assert len(list(out.glob("compare-tiny-cudasim-quick_*.json"))) == 1


def test_compare_table_gives_the_hosts_times_where_both_sides_have_them():
    """On a GPU ``bench compare`` also gives each side's time to issue a call, and their ratio."""
    from bench.compare import markdown_table

    def row(layer, before_issue, after_issue):
        ratio = min(after_issue) / min(before_issue) if before_issue and after_issue else None
        return dict(layer=layer, op="relu_forward", shape="2x3", path="chosen", timing="device",
                    torch_timing="device", before_ms=[0.02], after_ms=[0.01], after_over_before=0.5,
                    before_issue_ms=before_issue, after_issue_ms=after_issue, issue_after_over_before=ratio,
                    torch_ms=[0.01, 0.01])

    lines = markdown_table([row("a", [0.04, 0.05], [0.03]), row("b", [], [])]).splitlines()
    assert "| after / before | before host ms | after host ms | host after / before | torch ms |" in lines[0]
    assert {line.count("|") for line in lines} == {lines[0].count("|")}
    assert lines[2].endswith("| 0.0200 | 0.0100 | 0.50 | 0.0400 / 0.0500 | 0.0300 | 0.75 | 0.0100 / 0.0100 |")
    assert "| n/a | n/a | n/a |" in lines[3]
    assert "host" not in markdown_table([row("b", [], [])])


def test_blas_info_reads_openblas_through_gpucnn_or_without_it(monkeypatch):
    """With this checkout's gpucnn the thread count comes from OpenBLAS itself; with a gpucnn that has no
    ``_parallel.blas_threads`` (``bench compare`` runs older ones) from the next source."""
    from bench import blas_info
    from gpucnn.ops._parallel import blas_threads

    info = blas_info()
    assert info["threads"] >= 1
    if blas_threads().usable:
        assert info["threads_source"] == "openblas" and info["threads"] == blas_threads().get()
    monkeypatch.setitem(sys.modules, "gpucnn.ops._parallel", None)  # its import now raises ImportError
    info = blas_info()
    assert info["threads"] >= 1 and info["threads_source"] != "openblas"


def test_comma_lists_drop_spaces_and_empty_names():
    from bench import comma_list

    assert comma_list("chosen, tile64,") == ["chosen", "tile64"] and comma_list(" , ") == []


def test_compare_benchmark_refuses_what_it_cannot_compare(tmp_path):
    """No other version, this checkout itself, a kernel path or an op that does not exist: an error naming it."""
    before = tmp_path / "before"
    (before / "gpucnn").mkdir(parents=True)
    (before / "gpucnn" / "__init__.py").write_text("")
    for folder, options, message in (
            (tmp_path, [], "holds no gpucnn/ package"), (ROOT, [], "is this checkout"),
            (before, ["--paths", "chosen,tile256"], "--paths: unknown kernel paths tile256"),
            (before, ["--ops", "relu_forward,conv3d_forward"], "--ops: suite tiny has no conv3d_forward")):
        result = subprocess.run([sys.executable, "-m", "bench", "compare", str(folder), "--device", "cudasim",
                                 "--quick", "--out", str(tmp_path), *options], cwd=ROOT, capture_output=True,
                                text=True, timeout=300)
        assert result.returncode != 0 and message in result.stderr, (options, result.stderr)


def test_kernels_benchmark_device_table_marks_the_fastest_timed_path():
    """bench kernels --device-times: a path whose call waits on the GPU has no device time (n/a); the
    fastest is taken among the timed ones, and chosen's ratios only where chosen was timed."""
    from bench.kernels import _compared, markdown_table

    paths = ["chosen", "waves_off", "winograd4"]
    rows = []
    for device in ({"chosen": 0.09, "waves_off": 0.12, "winograd4": None, "torch": 0.045},
                   {"chosen": None, "waves_off": 0.2, "winograd4": None, "torch": 0.1}):
        row = dict(layer="resnet18 128ch 16px", op="conv2d_backward_filter", shape="32x128x16x16 -> 128")
        row.update(_compared(paths, {"chosen": 0.17, "waves_off": 0.16, "winograd4": 0.19, "torch": 0.09}, ""),
                   **_compared(paths, device, "_device"))
        rows.append(row)
    assert rows[0]["fastest"] == "waves_off" and rows[0]["fastest_device"] == "chosen"
    assert rows[0]["chosen_over_fastest_device"] == 1.0 and rows[0]["ratio_device"] == 0.5
    assert rows[1]["fastest_device"] == "waves_off" and rows[1]["chosen_over_fastest_device"] is None
    lines = markdown_table(rows, paths, "_device").splitlines()
    assert lines[2].endswith("| **0.090** | 0.120 | n/a | 0.045 | 1.00 | 0.50 |"), lines[2]
    assert lines[3].endswith("| n/a | **0.200** | n/a | 0.100 | n/a | n/a |"), lines[3]
    assert markdown_table(rows, paths).splitlines()[2].endswith("| 0.170 | **0.160** | 0.190 | 0.090 | 1.06 | 0.53 |")


def test_kernels_benchmark_needs_a_kernel_device(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bench", "kernels", "--device", "cpu", "--quick", "--out",
                             str(tmp_path)], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "runs no kernels: choose cuda, cuda:N or cudasim" in result.stderr


def test_kernels_benchmark_device_times_need_a_gpu(tmp_path):
    result = subprocess.run([sys.executable, "-m", "bench", "kernels", "--device", "cudasim", "--quick",
                             "--device-times", "--out", str(tmp_path)], cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode != 0
    assert "--device-times needs a GPU: --device cudasim has no device clock" in result.stderr
    assert not list(tmp_path.iterdir())


def test_train_benchmark_quick_run_writes_its_tables(tmp_path):
    _run_bench(tmp_path, "train", "--device", "cpu")
    (markdown,) = tmp_path.glob("train-cpu-quick_*.md")
    (record_path,) = tmp_path.glob("train-cpu-quick_*.json")
    assert "| model | batch |" in markdown.read_text()
    record = json.loads(record_path.read_text())
    assert [row["model"] for row in record["rows"]] == ["lenet", "convnetjs", "resnet"]
    for row in record["rows"]:
        assert row["gpucnn"]["images_per_s"] > 0 and row["torch"]["images_per_s"] > 0
        assert row["gpucnn"]["peak_memory_bytes"] >= 0 and row["torch"]["peak_memory_bytes"] >= 0
        # the same network from the same weights: the first losses agree
        assert row["first_loss_difference"] < 1e-4


def test_infer_benchmark_quick_run_writes_its_tables(tmp_path):
    _run_bench(tmp_path, "infer", "--device", "cpu", "--models", "resnet18,mobilenet_v2")
    (markdown,) = tmp_path.glob("infer-cpu-quick_*.md")
    (record_path,) = tmp_path.glob("infer-cpu-quick_*.json")
    assert "| model | batch | gpucnn ms |" in markdown.read_text()
    record = json.loads(record_path.read_text())
    assert [(row["model"], row["batch"]) for row in record["rows"]] == [("resnet18", 1), ("mobilenet_v2", 1)]
    for row in record["rows"]:
        assert row["gpucnn"]["median_ms"] > 0 and row["torch"]["median_ms"] > 0 and row["ratio"] > 0
        assert row["gpucnn_peak_bytes"] >= 0 and row["torch_peak_bytes"] >= 0
        # the same network from the same weights, in eval mode: the same logits to float32 rounding
        assert row["output_difference"] < 1e-4


def test_suites_name_every_op_and_valid_shapes():
    from bench.suites import SUITES

    for name, layers in SUITES.items():
        assert layers, name
        for layer in layers:
            assert min(layer.input_shape()) >= 1
            if hasattr(layer, "output_size"):
                assert layer.output_size() >= 1, (name, layer)


def test_poolrelu_suite_holds_each_relu_and_pooling_case_of_the_suites_once():
    from bench.suites import SUITES, Pool, Relu

    def case(layer):
        return type(layer), layer._replace(name="")

    wanted = {case(layer) for name in ("lecture", "convnetjs", "resnet18", "smallresnet", "jetson")
              for layer in SUITES[name] if isinstance(layer, (Relu, Pool))}
    cases = [case(layer) for layer in SUITES["poolrelu"]]
    assert len(cases) == len(set(cases)) and set(cases) == wanted  # each case once


def test_small_resnet_suite_holds_the_training_benchmarks_layers():
    import numpy

    import gpucnn
    from bench.suites import SMALL_RESNET, Conv, Norm, Pool, Relu
    from bench.train import BATCH, SHAPES, small_resnet

    model = small_resnet(gpucnn.nn)
    seen = {}

    def record(module, inputs, output):
        if isinstance(module, gpucnn.nn.Conv2d):
            (kernel, _), (stride, _), (padding, _) = module.kernel_size, module.stride, module.padding
            seen.setdefault("conv", set()).add(
                (module.in_channels, module.out_channels, inputs[0].shape[2], kernel, stride, padding))
        elif isinstance(module, gpucnn.nn.ReLU):
            seen.setdefault("relu", set()).add(tuple(inputs[0].shape[1:3]))
        elif isinstance(module, gpucnn.nn.BatchNorm2d):
            seen.setdefault("norm", set()).add(tuple(inputs[0].shape[1:3]))
        elif isinstance(module, gpucnn.nn.AdaptiveAvgPool2d):
            seen.setdefault("pool", set()).add(tuple(inputs[0].shape[1:3]))

    for module in model.modules():
        module.register_forward_hook(record)
    model(gpucnn.tensor(numpy.zeros((1,) + SHAPES["resnet"], dtype=numpy.float32)))
    assert {case.batch for case in SMALL_RESNET} == {BATCH}
    assert seen["conv"] == {(case.in_channels, case.out_channels, case.size, case.kernel, case.stride, case.padding)
                            for case in SMALL_RESNET if isinstance(case, Conv)}
    assert seen["norm"] == {(case.channels, case.size) for case in SMALL_RESNET if isinstance(case, Norm)}
    relus = {(case.channels, case.size) for case in SMALL_RESNET if isinstance(case, Relu)}
    assert relus and relus <= seen["relu"]
    pools = [case for case in SMALL_RESNET if isinstance(case, Pool)]
    assert [(case.kind, case.kernel, case.stride) for case in pools] == [("avg", 8, 8)]
    assert {(case.channels, case.size) for case in pools} == seen["pool"]


def test_ptxas_report_counts_the_loop_of_the_most_ffma_of_each_kernel():
    """bench.ptxas_report.ffma_loops on cuobjdump -sass text: a backward branch closes a loop (its trip
    runs from the target to the branch), a forward branch does not, and the loop of the most FFMA wins
    over a longer one of fewer, and over a shorter one of as many."""
    from bench.ptxas_report import ffma_loops

    def line(address, text):
        return f"        /*{address:04x}*/                   {text} ;   /* 0x000fe200078e00ff */\n"

    sass = ("\t\tFunction : gemm\n"
            + line(0x00, "MOV R1, c[0x0][0x28]")
            + line(0x10, "FFMA R2, R3, R4, R2")      # a short loop: 0x10-0x20
            + line(0x20, "@P0 BRA 0x10")
            + line(0x30, "LDS.128 R8, [R5]")         # the product's loop: 0x30-0x80, 3 FFMA of 6
            + line(0x40, "FFMA R2, R8, R9, R2")
            + line(0x50, "@!P1 BRA 0x90")            # forward: no loop
            + line(0x60, "FFMA R3, R8, R10, R3")
            + line(0x70, "FFMA R4, R8, R11, R4")
            + line(0x80, "@!P2 BRA 0x30")
            + line(0x90, "FFMA R2, R3, R4, R2")      # a longer loop of one FFMA: 0x90-0x100
            + "".join(line(0xa0 + 0x10 * i, "IMAD R5, R6, R7, R5") for i in range(6))
            + line(0x100, "@P3 BRA 0x90")
            + line(0x110, "FFMA R3, R8, R10, R3")    # a loop of 3 FFMA of 4: 0x110-0x140
            + line(0x120, "FFMA R3, R8, R10, R3")
            + line(0x130, "FFMA R3, R8, R10, R3")
            + line(0x140, "@P4 BRA 0x110")
            + line(0x150, "EXIT")
            + "\t\tFunction : straight\n"
            + line(0x00, "FFMA R2, R3, R4, R2")
            + line(0x10, "EXIT"))
    assert ffma_loops(sass) == {"gemm": (6, 3)}


def test_ptxas_report_reads_each_functions_own_spills():
    """ptxas lists a kernel's properties, then those of each noinline function it calls: the kernel's
    spills are its own line's (the callee's, read after it, had hidden them), and the callee's are
    reported under its own name."""
    from bench.ptxas_report import function_spills, parse_ptxas

    report = """ptxas info    : Compiling entry function 'k_tiles' for 'sm_86'
ptxas info    : Function properties for k_tiles
    64 bytes stack frame, 64 bytes spill stores, 108 bytes spill loads
ptxas info    : Used 128 registers, used 1 barriers, 64 bytes cumulative stack size, 16904 bytes smem
ptxas info    : Compile time = 258.852 ms
ptxas info    : Function properties for _Z9fix_upPKf
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Compiling entry function 'k_sum' for 'sm_86'
ptxas info    : Function properties for k_sum
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 32 registers
ptxas info    : Function properties for _Z8spilledv
    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
"""
    assert function_spills(report) == {("k_tiles", "sm_86"): (64, 64, 108), ("_Z9fix_upPKf", "sm_86"): (0, 0, 0),
                                       ("k_sum", "sm_86"): (0, 0, 0), ("_Z8spilledv", "sm_86"): (8, 4, 4)}
    rows = {row["kernel"]: row for row in parse_ptxas(report, "k.cu", "nvcc")}
    assert (rows["k_tiles"]["spill_store_bytes"], rows["k_tiles"]["spill_load_bytes"]) == (64, 108)
    assert (rows["k_tiles"]["registers"], rows["k_tiles"]["shared_bytes"]) == (128, 16904)
    assert (rows["k_sum"]["spill_store_bytes"], rows["k_sum"]["registers"]) == (0, 32)


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not installed (the CUDA toolkit's compiler)")
def test_busy_wait_kernel_compiles(tmp_path):
    """The kernel that Environment.device_ms queues the timed work behind compiles for the oldest GPU
    gpucnn targets that nvcc still builds for (CuPy compiles it with NVRTC on the GPU itself)."""
    from bench.environment import BUSY_WAIT_SOURCE

    source = tmp_path / "busy_wait.cu"
    source.write_text(BUSY_WAIT_SOURCE)
    done = subprocess.run(["nvcc", "-cubin", "-arch=sm_75", "-o", str(tmp_path / "busy_wait.cubin"), str(source)],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr


@pytest.mark.gpu
def test_profile_step_on_a_gpu():
    """bench.profile step on a GPU: the timing line, and a last step in the profiler's range."""
    from bench.profile import profile_step

    lines = []
    result = profile_step("lenet", "cuda", 2, 2, 0, log=lines.append)
    assert 0 < result["issued_ms"] <= result["step_ms"]
    assert lines and lines[0].startswith("lenet on cuda")


@pytest.mark.gpu
def test_ops_on_a_gpu_time_the_host_issuing_each_call():
    """bench.ops on a GPU: each library's time to issue a call, within the call's whole time."""
    from bench import ops
    from bench.environment import Environment
    from bench.suites import TINY

    rows = ops.run(Environment("cuda"), TINY[2:3], repeats=3, warmup=1, attempts=1, log=lambda line: None)
    for row in rows:
        for name in ("gpucnn", "torch"):
            assert 0 < row[f"{name}_issue_ms"] <= row[f"{name}_ms"]
        assert row["ratio_issue"] == pytest.approx(row["torch_issue_ms"] / row["gpucnn_issue_ms"])
    assert {"relu_forward, host time", "relu_backward, host time"} <= set(ops.summary(rows))


@pytest.mark.gpu
def test_device_time_leaves_the_host_out():
    """Environment.device_ms on a GPU: a large copy's device time is about its whole time; many tiny
    launches take the GPU less time than the host takes to issue them; a call that waits on the GPU
    cannot be timed so (None)."""
    import cupy

    from bench.environment import Environment

    env = Environment("cuda")
    with env.device.context():
        source = cupy.ones(1 << 26, dtype=cupy.float32)  # 256 MiB
        target = cupy.empty_like(source)
        small = cupy.zeros(256, dtype=cupy.float32)

        def copy():
            cupy.copyto(target, source)

        def many_launches():
            for _ in range(200):
                small.__iadd__(1)

        for run in (copy, many_launches):
            run()  # compiled and allocated before it is timed
        # the least of five of each: the first runs after an idle spell find the GPU's clocks low
        issued, whole = min((env.time_call(copy) for _ in range(5)), key=lambda times: times[1])
        device = min(env.device_ms(copy, issued) for _ in range(5))
        assert 0.5 * whole < device < 1.1 * whole  # runs of the same copy
        issued, whole = env.time_call(many_launches)
        device = env.device_ms(many_launches, issued)
        assert 0 < device < issued
        assert float(small[0]) >= 3 * 200  # the calls ran: warm-up, timed, timed on the device (once or more)
        assert env.device_ms(lambda: (small + 1).get(), issued) is None


@pytest.mark.gpu
def test_device_time_prepares_every_try():
    """Environment.device_ms runs ``prepare`` before each of its tries: a call that may run once per
    preparation (a backward that releases what its forward saved) is timed again after a slow try."""
    import time

    import cupy

    from bench.environment import Environment

    env = Environment("cuda")
    calls = {"prepared": 0, "ran": 0}

    def prepare():
        calls["prepared"] += 1

    def run_once():
        assert calls["ran"] < calls["prepared"], "ran twice on one preparation"
        calls["ran"] += 1
        time.sleep(0.02)  # the GPU's wait (0.1, 0.4, 1.6 ms) is over before the work is queued
        cupy.zeros(16, dtype=cupy.float32).__iadd__(1)

    with env.device.context():
        assert env.device_ms(run_once, 0.0, prepare) is None  # no try queued its work in time
    assert calls == {"prepared": 3, "ran": 3}


def test_ops_gpu_table_and_means_carry_the_device_times():
    """bench.ops on a GPU: the host's and the device's columns and geometric means, from rows as
    ``ops.run`` makes them; a row whose device time could not be measured reads n/a and is left out of
    those means."""
    from bench import ops

    def row(layer, op, ms, torch_ms, device_ms, torch_device_ms):
        measured = device_ms is not None
        return dict(layer=layer, op=op, shape="2x3x8x8", gpucnn_ms=ms, torch_ms=torch_ms, ratio=torch_ms / ms,
                    torch_tf32_ms=torch_ms, ratio_tf32=torch_ms / ms, gpucnn_issue_ms=ms / 8,
                    torch_issue_ms=torch_ms / 4, ratio_issue=2 * torch_ms / ms, gpucnn_device_ms=device_ms,
                    torch_device_ms=torch_device_ms, ratio_device=torch_device_ms / device_ms if measured else None,
                    roofline_fraction_device=0.25 if measured else None, gpucnn_rate=1.0, rate_unit="GB/s",
                    roofline_fraction=0.125, other_load=None)

    rows = [row("a", "conv2d_forward", 2.0, 1.0, 1.0, 1.0), row("a", "conv2d_backward_data", 2.0, 2.0, 1.0, 4.0),
            row("b", "conv2d_forward", 1.0, 4.0, None, None), row("c", "relu_forward", 0.5, 0.25, 0.1, 0.2)]
    means = ops.summary(rows)
    assert means["conv2d_forward"] == pytest.approx(2**0.5)  # (0.5 * 4) ** 0.5
    assert means["conv2d_forward, device time"] == pytest.approx(1.0)  # layer b has no device time
    assert means["conv2d_forward_backward, device time"] == pytest.approx(2.5)  # layer a: (1 + 4) / (1 + 1)
    assert means["relu_forward, device time"] == pytest.approx(2.0)
    assert means["conv2d_forward, host time"] == pytest.approx(8**0.5)  # layer a 1, layer b 8
    # layer a: (0.25 + 0.5) / (0.25 + 0.25), layer b: 1 / 0.125
    assert means["conv2d_forward_backward, host time"] == pytest.approx(12**0.5)
    lines = ops.markdown_table(rows, gpu=True).splitlines()
    assert ("gpucnn host ms | torch host ms | gpucnn device ms | torch device ms | device ratio | device roofline"
            in lines[0])
    assert {len(line.split("|")) for line in lines} == {len(lines[0].split("|"))}
    assert "| 0.250 | 0.500 | 1.000 | 4.000 | 4.00 | 25% |" in lines[3]
    assert "| 0.125 | 1.000 | n/a | n/a | n/a | n/a |" in lines[4]
    cpu_table = ops.markdown_table(rows, gpu=False)
    assert "device" not in cpu_table and "host" not in cpu_table
    cpu_means = str(ops.summary([dict(r, ratio_device=None, ratio_issue=None) for r in rows]))
    assert "device time" not in cpu_means and "host time" not in cpu_means


def test_kernel_smoke_launches_every_kernel(monkeypatch, capsys):
    """bench.kernel_smoke is what the sanitizers run on a GPU: it must reach every kernel of cuda/*.cu."""
    import gpucnn
    from bench import kernel_smoke
    from helpers import CUDA_SOURCES, declared_kernels

    device = gpucnn.device("cudasim")
    launched = set()
    kernel = device.kernel

    def recording(file: str, name: str):
        launched.add(name)
        return kernel(file, name)

    monkeypatch.setattr(device, "kernel", recording)
    kernel_smoke.main(["--device", "cudasim"])
    assert {name for source in CUDA_SOURCES for name in declared_kernels(source)} - launched == set()
    printed = capsys.readouterr().out
    assert all(f"{op}:" in printed or f"{op} (" in printed for op in kernel_smoke.CASES)
