"""Training throughput: the optimizer step alone vs the full training loop, images per second.

The step alone is forward + backward + optimizer on one batch already on the device, repeated;
the loop is ``nightskynet.stages.train.Trainer.train_epoch`` over a uint8 training set (sampling, gather,
convert, fresh D4 view and shift for the resnet recipe, step), as the train stage runs it. The
loop should reach >= 90% of the step alone: if it does not, the data path throttles the model.
Image content does not change the speed, so the set is random pixels of the study's shape
(60 x 60 x 3). Settings of the recipe come from config.yaml.

Each layout of ``--layouts`` (network and batches in PyTorch's default NCHW or in channels_last;
``auto`` is what the train stage picks for the device, ``train.memory_format_for``) is measured on
a fresh trainer, the layouts in turns, ``--rounds`` times, and the median is printed: a shared
machine's speed drifts between minutes, so layouts are compared within one run.

    .venv/bin/python benchmarks/train_throughput.py                          # CPU, both recipes, NCHW and channels_last
    python benchmarks/train_throughput.py --images 105000 --epochs 3         # on a GPU: the study's epoch
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
from nightskynet.stages.train import Trainer, memory_format_for, place

LAYOUTS = {"nchw": torch.contiguous_format, "channels_last": torch.channels_last}


def layout_format(layout: str, device: torch.device) -> torch.memory_format:
    """The memory format of a ``--layouts`` name on ``device``."""
    return memory_format_for(device) if layout == "auto" else LAYOUTS[layout]


def measure(
    recipe_name: str, args: argparse.Namespace, device: torch.device, memory_format: torch.memory_format
) -> tuple[float, float, int]:
    """(step-alone img/s, full-loop img/s, batch size) of a fresh trainer of the recipe in ``memory_format``."""
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
    trainer = Trainer(recipe, 60, device, steps_per_epoch=-(-args.images // bs), memory_format=memory_format)
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
    p.add_argument("--layouts", nargs="+", choices=["auto", *LAYOUTS], default=list(LAYOUTS), help="auto: the train stage's choice")
    p.add_argument("--rounds", type=int, default=1, help="measurements of each layout, in turns; the median is printed")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args()
    device = pick_device(args.device)
    torch.set_num_threads(args.threads)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {args.threads} threads"
    print(f"device: {name}; {args.images} images of 60 x 60 x 3; torch {torch.__version__}; the train stage's layout here: ", end="")
    print(next(k for k, v in LAYOUTS.items() if v == memory_format_for(device)))
    print("\n| recipe | layout | batch | measure | img/s | seconds per 105,000-image epoch |")
    print("|---|---|---|---|---|---|")
    for recipe in args.recipes:
        runs: dict[str, list[tuple[float, float]]] = {layout: [] for layout in args.layouts}
        for _ in range(args.rounds):
            for layout in args.layouts:
                step_rate, loop_rate, bs = measure(recipe, args, device, layout_format(layout, device))
                runs[layout].append((step_rate, loop_rate))
        for layout, rates in runs.items():
            step_rate, loop_rate = (statistics.median(r[i] for r in rates) for i in (0, 1))
            each = ", ".join(f"{r[1]:.0f}" for r in rates)
            print(f"| {recipe} | {layout} | {bs} | step alone (batch on device) | {step_rate:.0f} | {105000 / step_rate:.1f} |")
            print(
                f"| {recipe} | {layout} | {bs} | full training loop ({100 * loop_rate / step_rate:.0f}% of the step; goal >= 90%; "
                f"rounds: {each}) | {loop_rate:.0f} | {105000 / loop_rate:.1f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
