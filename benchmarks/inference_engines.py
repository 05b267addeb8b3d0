"""The network's inference engines side by side, on the same batches, against the machine's physical bound.

Engines, each on the same uint8 crops (the demo sky's, 60 x 60), the 8 D4 views of a batch of
galaxies at a time, as the morphology stage asks for them:

* PyTorch eager, fp32, NCHW (PyTorch's default layout);
* PyTorch eager, fp32, channels-last (the CPU path before ONNX Runtime: the baseline);
* PyTorch eager, bf16 autocast, channels-last (only where the CPU has AVX512-BF16 or AMX; else skipped, said so);
* ONNX Runtime, fp32, CPU provider: the model file's graph (``inference.OnnxEngine``), the engine in use.

Each runs for ``--seconds`` in turns, ``--rounds`` times (a shared machine drifts by tens of
percent); the table gives the median views/s, the share of ONNX Runtime's rate, and the largest
difference of the calibrated probabilities from PyTorch fp32 NCHW. The physical bound: the
network's multiply-adds per view (counted on its convolutions and dense layers) against the
CPU's peak, cores x clock x fp32 FLOP per cycle (32 for AVX2 with two FMA units, 64 for AVX-512).

    .venv/bin/python benchmarks/inference_engines.py                  # the make demo model (results/demo/model/model.pt)
    .venv/bin/python benchmarks/inference_engines.py --recipe study   # a study network of the default size, untrained
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nightskynet.core.architecture import ResNetArchitecture, StudyArchitecture
from nightskynet.core.config import load_config
from nightskynet.images.augment import d4_torch
from nightskynet.images.cutouts import decode_crops, iter_chunk
from nightskynet.net.inference import VIEWS, Calibration, OnnxEngine, averaged_probabilities, open_engine
from nightskynet.net.model import GalaxyClassifier, load_model, save_model, to_input

REPO = Path(__file__).resolve().parent.parent


def crops_from_run(results: Path, n: int) -> np.ndarray:
    tars = sorted((results / "images").glob("chunk_*.tar"))
    jpegs = [jpeg for tar in tars for _, jpeg in iter_chunk(tar)][:n]
    return decode_crops(jpegs, 120, 60)


def untrained(recipe: str) -> GalaxyClassifier:
    cfg = load_config()["train"]
    if recipe == "study":
        m = cfg["study"]["model"]
        arch = StudyArchitecture(tuple(m["channels"]), tuple(m["kernels"]), tuple(m["dense"]), m["maxout_pieces"], m["dropout"])
    else:
        arch = ResNetArchitecture(cfg["resnet"]["width"], cfg["resnet"]["dropout"])
    torch.manual_seed(0)
    return GalaxyClassifier(recipe, arch, 60).eval()


def macs_per_view(model: GalaxyClassifier) -> int:
    """Multiply-adds of one 60 x 60 view through the convolutions and dense layers."""
    total = 0

    def count(module, _inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            total += output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
        elif isinstance(module, torch.nn.Linear):
            total += module.in_features * module.out_features

    hooks = [m.register_forward_hook(count) for m in model.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    with torch.no_grad():
        model(torch.zeros(1, 3, model.input_size, model.input_size))
    for h in hooks:
        h.remove()
    return total


def cpu_peak_gflops(threads: int) -> tuple[float, str]:
    """(peak fp32 GFLOP/s of ``threads`` cores, how it was reckoned)."""
    info = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    mhz = [float(v) for v in re.findall(r"^cpu MHz\s*:\s*([\d.]+)", info, re.M)]
    flags = set(re.search(r"^flags\s*:(.*)$", info, re.M).group(1).split()) if "flags" in info else set()
    per_cycle = 64 if "avx512f" in flags else 32 if {"avx2", "fma"} <= flags else 16
    ghz = (max(mhz) if mhz else 2500.0) / 1000
    return threads * ghz * per_cycle, f"{threads} cores x {ghz:.2f} GHz x {per_cycle} fp32 FLOP/cycle"


def bf16_supported() -> bool:
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    return bool(re.search(r"\b(avx512_bf16|amx_bf16)\b", flags))


class TorchRunner:
    """The PyTorch network on the CPU in a layout and precision, the 8 views of a batch view by view (as before ONNX)."""

    def __init__(self, model: GalaxyClassifier, channels_last: bool, bf16: bool):
        self.model = model.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)
        self.channels_last, self.bf16 = channels_last, bf16

    @torch.inference_mode()
    def logits(self, crops: np.ndarray) -> np.ndarray:
        x = to_input(torch.from_numpy(crops))
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        out = []
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=self.bf16):
            for g in range(VIEWS):
                out.append(self.model.raw_logits(d4_torch(x, g)).float())
        return torch.stack(out, dim=1).double().numpy()


def rate(run, batches: list[np.ndarray], seconds: float) -> float:
    run(batches[0])  # warm-up
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for b in batches:
            run(b)
            done += len(b) * VIEWS
    return done / (time.perf_counter() - t0)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", type=Path, default=REPO / "results/demo/model/model.pt", help="default: the make demo model")
    p.add_argument("--recipe", choices=("resnet", "study"), default=None, help="an untrained network of the default size instead")
    p.add_argument("--results", type=Path, default=REPO / "results/demo", help="a finished run, for real crops")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=64, help="galaxies per call (8 views each)")
    p.add_argument("--galaxies", type=int, default=512)
    p.add_argument("--seconds", type=float, default=6.0)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        if args.recipe:
            model = untrained(args.recipe)
            path = Path(tmp) / "model.pt"
            save_model(path, model, {"cutout": {"size": 120, "scale_mode": "fixed", "scale": 0.4, "adaptive_k": 0.0846}})
        else:
            if not args.model.is_file():
                raise SystemExit(f"{args.model} not found: run make demo first, or give --recipe")
            path = args.model
            model, _ = load_model(path)
        onnx, info = open_engine(path, "cpu", args.threads)
    assert isinstance(onnx, OnnxEngine)
    calibration = Calibration.of(info)
    if args.results.is_dir() and list((args.results / "images").glob("chunk_*.tar")):
        crops = crops_from_run(args.results, args.galaxies)
    else:
        crops = np.random.default_rng(0).integers(0, 256, (args.galaxies, 60, 60, 3), dtype=np.uint8)
    batches = [crops[s : s + args.batch] for s in range(0, len(crops), args.batch)]

    runners = {
        "PyTorch eager, fp32, NCHW": TorchRunner(model, False, False).logits,
        "PyTorch eager, fp32, channels-last (before)": TorchRunner(model, True, False).logits,
    }
    if bf16_supported():
        runners["PyTorch eager, bf16 autocast, channels-last"] = TorchRunner(model, True, True).logits
    runners["ONNX Runtime, fp32, CPU"] = lambda b: onnx.outputs(b, VIEWS)[0]
    reference = averaged_probabilities(runners["PyTorch eager, fp32, NCHW"](crops), calibration.bias, calibration.temperature)
    diffs = {
        name: float(np.abs(averaged_probabilities(run(crops), calibration.bias, calibration.temperature) - reference).max())
        for name, run in runners.items()
    }
    rates: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            rates[name].append(rate(run, batches, args.seconds))
    medians = {name: statistics.median(r) for name, r in rates.items()}
    onnx_rate = medians["ONNX Runtime, fp32, CPU"]
    macs = macs_per_view(model)
    peak, how = cpu_peak_gflops(args.threads)
    bound = peak * 1e9 / (2 * macs)
    print(
        f"{info['network']} network, {2 * macs / 1e6:.1f} MFLOP per view; {args.batch} galaxies ({args.batch * VIEWS} views) a call, "
        f"{args.threads} threads, {len(crops)} galaxies; torch {torch.__version__}, "
        f"CPU capability {torch.backends.cpu.get_cpu_capability()}"
    )
    if not bf16_supported():
        print("bf16 autocast: skipped, this CPU has neither AVX512-BF16 nor AMX (it would be emulated)")
    print("\n| engine | views/s (median) | each round | share of ONNX Runtime | share of the physical bound | max |p - p(fp32 NCHW)| |")
    print("|---|---|---|---|---|---|")
    for name, value in medians.items():
        each = ", ".join(f"{v:,.0f}" for v in rates[name])
        print(f"| {name} | {value:,.0f} | {each} | {value / onnx_rate:.0%} | {value / bound:.0%} | {diffs[name]:.1e} |")
    base = medians["PyTorch eager, fp32, channels-last (before)"]
    print(f"\nONNX Runtime / the PyTorch path before: {onnx_rate / base:.2f}x")
    print(
        f"physical bound: {peak:,.0f} GFLOP/s ({how}) / {2 * macs / 1e6:.1f} MFLOP per view = {bound:,.0f} views/s; "
        f"cpu threads in use {os.cpu_count()}"
    )


if __name__ == "__main__":
    main()
