"""Training throughput: the optimizer step alone vs the full training loop, images per second.

The step alone is forward + backward + optimizer on one batch already on the device, repeated;
the loop is ``nightskynet.stages.train.Trainer.train_epoch`` over a uint8 training set (sampling, gather,
convert, fresh D4 view and shift for the resnet recipe, step), as the train stage runs it. The
loop should reach >= 90% of the step alone: if it does not, the data path throttles the model.
Image content does not change the speed, so the set is random pixels of the study's shape
(60 x 60 x 3). Settings of the recipe come from config.yaml.

Each mode of ``--modes`` (precision fp32 or bf16 autocast, network and batches in PyTorch's
default NCHW or in channels_last; ``auto`` is what the train stage picks for the device,
``train.training_mode_for``; a ``+compile`` suffix runs the network through ``torch.compile``, its
compilation inside the first, warm-up epoch) is measured on a fresh trainer, the modes in turns,
``--rounds`` times, and the median is printed: a shared machine's speed drifts between minutes, so
modes are compared within one run. fp32 channels_last crashes oneDNN on narrow networks (width 4
or 8 on AVX-512): it is measured at the default width only, as a figure, never trained in.

    .venv/bin/python benchmarks/train_throughput.py                          # CPU, both recipes, every mode
    .venv/bin/python benchmarks/train_throughput.py --modes fp32-nchw auto bf16-nchw+compile
    python benchmarks/train_throughput.py --images 105000 --epochs 3 --modes auto   # on a GPU: the study's epoch
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from nightskynet.core.config import load_config
from nightskynet.core.recipes import Recipe
from nightskynet.net.torch_inference import pick_device
from nightskynet.stages.train import Trainer, TrainingMode, place, training_mode_for

LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}
MODES = [f"{precision}-{layout}" for precision in ("fp32", "bf16") for layout in LAYOUTS]


def parse_mode(name: str, device: torch.device) -> tuple[TrainingMode, bool]:
    """(the training mode, whether compiled) of a ``--modes`` name on ``device``."""
    base, compiled = name.removesuffix("+compile"), name.endswith("+compile")
    if base == "auto":
        return training_mode_for(device), compiled
    precision, layout = base.split("-", 1)
    return TrainingMode(LAYOUTS[layout], bf16=precision == "bf16"), compiled


def mode_name(value: str) -> str:
    if value.removesuffix("+compile") not in ["auto", *MODES]:
        raise argparse.ArgumentTypeError(f"{value!r}: one of auto, {', '.join(MODES)}, each with an optional +compile")
    return value


def measure(
    recipe_name: str, args: argparse.Namespace, device: torch.device, mode: TrainingMode, compiled: bool
) -> tuple[float, float, int]:
    """(step-alone img/s, full-loop img/s, batch size) of a fresh trainer of the recipe in ``mode``."""
    cfg = load_config()["train"]
    cfg["recipe"] = recipe_name
    if args.batch_size:
        cfg[recipe_name]["batch_size"] = args.batch_size
    if args.width and recipe_name == "resnet":
        cfg["resnet"]["width"] = args.width
    recipe = Recipe.from_config(cfg)
    bs = recipe.batch_size
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=args.images).astype(np.int64)
    arrays = {
        "images": rng.integers(0, 256, size=(args.images, 60, 60, 3), dtype=np.uint8),
        "labels": labels,
        "targets": np.eye(4, dtype=np.float32)[labels],
    }
    data = place(arrays, device)
    trainer = Trainer(recipe, 60, device, steps_per_epoch=-(-args.images // bs), mode=mode)
    if compiled:
        trainer.model = torch.compile(trainer.model)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    # the step alone: one batch, already converted and on the device
    idx = torch.arange(bs, device=data["images"].device)
    xb, yb, tb = trainer._input(data["images"], idx), data["labels"][idx].to(device), data["targets"][idx].to(device)
    steps = max(20, min(200, args.images // bs))

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=trainer.amp):
            loss = trainer._loss(trainer.model(xb).float(), yb, tb)
        trainer.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        trainer.optimizer.step()

    for _ in range(5):
        step()
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        step()
    sync()
    step_rate = steps * bs / (time.perf_counter() - t0)
    rates = []
    for epoch in range(1, args.epochs + 1):
        sync()
        t0 = time.perf_counter()
        trainer.train_epoch(data, labels, epoch)
        sync()
        rates.append(args.images / (time.perf_counter() - t0))
    return step_rate, max(rates[1:] or rates), bs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=6000)
    p.add_argument("--epochs", type=int, default=2, help="loop epochs to time (the first also warms up)")
    p.add_argument("--recipes", nargs="+", default=["resnet", "study"])
    p.add_argument("--batch-size", type=int, default=None, help="default: the recipe's batch_size in config.yaml")
    p.add_argument("--width", type=int, default=None, help="the resnet's first-stage width; default: config.yaml's")
    p.add_argument("--modes", nargs="+", type=mode_name, default=MODES, help="auto: the train stage's choice; +compile: torch.compile")
    p.add_argument("--rounds", type=int, default=1, help="measurements of each mode, in turns; the median is printed")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args()
    device = pick_device(args.device)
    torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {args.threads} threads"
    flags = " ".join(k for k in ("avx2", "avx512_f", "avx512_bf16", "amx_bf16") if getattr(torch.cpu, "get_capabilities", dict)().get(k))
    print(f"device: {name} ({flags}); {args.images} images of 60 x 60 x 3; torch {torch.__version__}; ", end="")
    print(f"the train stage's mode here: {training_mode_for(device).name}")
    print("\n| recipe | mode | batch | measure | img/s | seconds per 105,000-image epoch |")
    print("|---|---|---|---|---|---|")
    for recipe in args.recipes:
        runs: dict[str, list[tuple[float, float]]] = {mode: [] for mode in args.modes}
        for _ in range(args.rounds):
            for mode in args.modes:
                step_rate, loop_rate, bs = measure(recipe, args, device, *parse_mode(mode, device))
                runs[mode].append((step_rate, loop_rate))
        for mode, rates in runs.items():
            step_rate, loop_rate = (statistics.median(r[i] for r in rates) for i in (0, 1))
            each = ", ".join(f"{r[1]:.0f}" for r in rates)
            print(f"| {recipe} | {mode} | {bs} | step alone (batch on device) | {step_rate:.0f} | {105000 / step_rate:.1f} |")
            print(
                f"| {recipe} | {mode} | {bs} | full training loop ({100 * loop_rate / step_rate:.0f}% of the step; goal >= 90%; "
                f"rounds: {each}) | {loop_rate:.0f} | {105000 / loop_rate:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
