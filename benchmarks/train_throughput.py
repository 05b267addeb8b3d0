"""Training throughput: the optimizer step alone vs the full training loop, images per second.

The step alone is forward + backward + Adam on one batch already on the device, repeated; the
loop is ``nightskynet.train.Trainer.train_epoch`` over a uint8 training set (shuffle, gather,
convert, step), as the train stage runs it. The loop should reach >= 90% of the step alone: if it
does not, the data path throttles the model. Image content does not change the speed, so the
set is random pixels of the study's shape (60 x 60 x 3).

    .venv/bin/python benchmarks/train_throughput.py                       # CPU, 6,000 images
    python benchmarks/train_throughput.py --images 105000 --epochs 3      # on a GPU: the study's epoch
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from nightskynet.train import Trainer, pick_device, place  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=6000)
    p.add_argument("--epochs", type=int, default=2, help="loop epochs to time (the first also warms up)")
    p.add_argument("--batch-size", type=int, default=None, help="default: train.batch_size of config.yaml")
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args()
    cfg = yaml.safe_load((REPO / "config.yaml").read_text())["train"]
    cfg["device"] = args.device
    if args.batch_size:
        cfg["batch_size"] = args.batch_size
    device = pick_device(cfg["device"])
    torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    name = torch.cuda.get_device_name() if device.type == "cuda" else f"CPU, {args.threads} threads"
    print(f"device: {name}; batch {cfg['batch_size']}; {args.images} images of 60 x 60 x 3; torch {torch.__version__}")

    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(args.images, 60, 60, 3), dtype=np.uint8)
    y = rng.integers(0, 4, size=args.images).astype(np.int64)
    trainer = Trainer(cfg, device)
    images, labels = place(x, device), torch.from_numpy(y).to(device)

    # the step alone: one batch, already converted and on the device
    idx = torch.arange(cfg["batch_size"], device=images.device)
    xb, yb = trainer._batch(images, idx), labels[idx].to(device)
    steps = max(20, min(200, args.images // cfg["batch_size"]))

    def step() -> None:
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=trainer.amp):
            loss = trainer.loss_fn(trainer.model(xb).float(), yb)
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
    step_rate = steps * cfg["batch_size"] / (time.perf_counter() - t0)

    rates = []
    for epoch in range(1, args.epochs + 1):
        sync()
        t0 = time.perf_counter()
        trainer.train_epoch(images, labels, epoch)
        sync()
        rates.append(args.images / (time.perf_counter() - t0))
    loop_rate = max(rates[1:] or rates)
    print("\n| measure | img/s | seconds per 105,000-image epoch |")
    print("|---|---|---|")
    print(f"| step alone (batch on device) | {step_rate:.0f} | {105000 / step_rate:.1f} |")
    print(f"| full training loop | {loop_rate:.0f} | {105000 / loop_rate:.1f} |")
    print(f"\nloop / step = {100 * loop_rate / step_rate:.0f}%  (goal >= 90%)")


if __name__ == "__main__":
    main()
