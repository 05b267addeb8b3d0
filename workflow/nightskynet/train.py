"""Stage ``train``: fit the network on the augmented shards; early stopping on the val split.

CUDA when present (bf16 autocast, channels_last, the whole uint8 training set moved to the GPU
once), CPU otherwise (``threads`` from Snakemake). A checkpoint is written after every epoch to
``train.checkpoint_dir`` (outside Snakemake's outputs, which a failed job loses); a restarted
training with the same inputs and settings resumes from it, bit for bit on the CPU: the shuffle
order comes from (seed, epoch) and the dropout RNG state is saved with the checkpoint.
Outputs: ``model.pt`` (the weights of the epoch with the lowest val loss) and ``history.csv``;
the checkpoint is deleted once they are written, so ``--forcerun train`` trains afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn
from tqdm import tqdm

from .classes import CLASS_NAMES
from .errors import InputError, SettingsError
from .files import atomic_path, write_csv_atomic
from .model import build_model, save_model, to_input

log = logging.getLogger(__name__)

HISTORY_COLUMNS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "learning_rate", "seconds", "images_per_s")


def load_shards(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    images, labels = [], []
    for path in paths:
        with np.load(path) as z:
            images.append(z["images"])
            labels.append(z["labels"])
    return np.concatenate(images), np.concatenate(labels).astype(np.int64)


def pick_device(requested: str = "auto") -> torch.device:
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested == "cuda" and not torch.cuda.is_available():
        raise SettingsError("the device is 'cuda' but PyTorch sees no CUDA device; use 'auto' or 'cpu'")
    return torch.device(requested)


def run_key(shard_paths: list[str], cfg: dict) -> str:
    """Identifies a training run: a checkpoint is resumed only by a run with the same key."""
    h = hashlib.sha256(json.dumps(cfg, sort_keys=True).encode())
    for path in shard_paths:
        h.update(Path(path).name.encode())
        h.update(str(Path(path).stat().st_size).encode())
        with open(path, "rb") as f:
            h.update(hashlib.sha256(f.read()).digest())
    return h.hexdigest()[:16]


class Trainer:
    def __init__(self, cfg: dict, device: torch.device):
        self.cfg, self.device = cfg, device
        torch.manual_seed(cfg["seed"])
        self.model = build_model(cfg["model"]).to(device)
        if device.type == "cuda":
            self.model = self.model.to(memory_format=torch.channels_last)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg["learning_rate"], weight_decay=cfg["weight_decay"])
        self.loss_fn = nn.CrossEntropyLoss()
        self.amp = device.type == "cuda"

    def _batch(self, images: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        x = to_input(images[idx].to(self.device, non_blocking=True))
        return x.contiguous(memory_format=torch.channels_last) if self.device.type == "cuda" else x

    def train_epoch(self, images: torch.Tensor, labels: torch.Tensor, epoch: int) -> tuple[float, float]:
        self.model.train()
        order = torch.from_numpy(np.random.default_rng([self.cfg["seed"], epoch]).permutation(len(labels)))
        bs = self.cfg["batch_size"]
        # running sums stay on the device: no host sync per step (it would idle a GPU)
        total_loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        with tqdm(total=len(order), desc=f"epoch {epoch}", unit="img", mininterval=5.0, leave=False) as bar:
            for start in range(0, len(order), bs):
                idx = order[start : start + bs].to(images.device)
                x, y = self._batch(images, idx), labels[idx].to(self.device, non_blocking=True)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    logits = self.model(x)
                    loss = self.loss_fn(logits.float(), y)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                total_loss += loss.detach() * len(idx)
                correct += (logits.argmax(1) == y).sum()
                bar.update(len(idx))
        total_loss, correct = float(total_loss), int(correct)
        return total_loss / max(1, len(order)), correct / max(1, len(order))

    @torch.no_grad()
    def evaluate(self, images: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
        if len(labels) == 0:
            return float("nan"), float("nan")
        self.model.eval()
        total_loss, correct = 0.0, 0
        for start in range(0, len(labels), 1024):
            idx = torch.arange(start, min(start + 1024, len(labels)), device=images.device)
            x, y = self._batch(images, idx), labels[idx].to(self.device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits = self.model(x).float()
            total_loss += float(self.loss_fn(logits, y)) * len(idx)
            correct += int((logits.argmax(1) == y).sum())
        return total_loss / len(labels), correct / len(labels)

    def state(self) -> dict:
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "torch_rng": torch.get_rng_state(), "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])


def channel_statistics(images: np.ndarray, sample: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of the training images (in [0, 1]), from an evenly spaced sample."""
    step = max(1, len(images) // sample)
    x = images[::step].reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    return x.mean(axis=0), x.std(axis=0)


def place(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """The whole uint8 set on the training device once (1.1 GB at the study's scale)."""
    return torch.from_numpy(array).to(device)


def fit(train_paths: list[str], val_path: str, cfg: dict, checkpoint_dir: str | Path, device: str = "auto", threads: int = 1, stop_after_epochs: int | None = None) -> tuple[Trainer, pd.DataFrame, dict]:
    """Train (resuming from a matching checkpoint in ``checkpoint_dir``); return the trainer with the best weights loaded, the history, and the best state."""
    device = pick_device(device)
    if device.type == "cpu":
        torch.set_num_threads(max(1, threads))
    x_train, y_train = load_shards(train_paths)
    x_val, y_val = load_shards([val_path])
    if len(y_train) == 0:
        raise InputError(f"the training shards {train_paths} hold no images")
    log.info("training on %d images (%s), validating on %d galaxies, device %s, %d CPU threads", len(y_train), ", ".join(f"{c}={int((y_train == i).sum())}" for i, c in enumerate(CLASS_NAMES)), len(y_val), device, torch.get_num_threads())
    images, labels = place(x_train, device), torch.from_numpy(y_train).to(device)
    val_images, val_labels = place(x_val, device), torch.from_numpy(y_val).to(device)

    key = run_key(train_paths + [val_path], cfg)
    ckpt_path = Path(checkpoint_dir) / "checkpoint.pt"
    trainer = Trainer(cfg, device)
    trainer.model.standardize.set_statistics(*channel_statistics(x_train))
    history: list[dict] = []
    best = {"val_loss": float("inf"), "epoch": 0, "state": None}
    start_epoch = 1
    if ckpt_path.exists():
        saved = torch.load(ckpt_path, map_location="cpu", weights_only=False)  # RNG states must stay CPU tensors
        if saved.get("key") == key:
            trainer.load_state(saved["trainer"])
            history, best, start_epoch = saved["history"], saved["best"], saved["epoch"] + 1
            log.info("resuming from %s after epoch %d", ckpt_path, saved["epoch"])
        else:
            log.info("ignoring %s: it belongs to another run (inputs or settings changed)", ckpt_path)

    epochs_run = 0
    for epoch in range(start_epoch, cfg["epochs"] + 1):
        if best["epoch"] and epoch - best["epoch"] > cfg["patience"]:
            log.info("early stop: val loss has not improved for %d epochs (best %.4f at epoch %d)", cfg["patience"], best["val_loss"], best["epoch"])
            break
        if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
            break
        t0 = time.perf_counter()
        train_loss, train_acc = trainer.train_epoch(images, labels, epoch)
        if device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        val_loss, val_acc = trainer.evaluate(val_images, val_labels)
        score = val_loss if not np.isnan(val_loss) else train_loss
        if score < best["val_loss"]:
            best = {"val_loss": score, "epoch": epoch, "state": {k: v.detach().cpu().clone() for k, v in trainer.model.state_dict().items()}}
        history.append({"epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc, "val_loss": val_loss, "val_accuracy": val_acc, "learning_rate": trainer.optimizer.param_groups[0]["lr"], "seconds": round(seconds, 3), "images_per_s": round(len(labels) / seconds, 1)})
        log.info("epoch %d: train loss %.4f acc %.3f | val loss %.4f acc %.3f | %.1f s, %.0f img/s", epoch, train_loss, train_acc, val_loss, val_acc, seconds, len(labels) / seconds)
        with atomic_path(ckpt_path) as tmp:
            torch.save({"key": key, "epoch": epoch, "trainer": trainer.state(), "history": history, "best": best}, tmp)
        epochs_run += 1
    if best["state"] is not None:
        trainer.model.load_state_dict(best["state"])
    return trainer, pd.DataFrame(history, columns=list(HISTORY_COLUMNS)), best


def run(train_paths: list[str], val_path: str, shards_manifest: str, model_path: str, history_path: str, settings: dict, device: str = "auto", checkpoint_dir: str | Path = "results/cache/train", threads: int = 1) -> pd.DataFrame:
    """Stage ``train``. ``settings``: the ``train`` section (what decides the weights); ``device``,
    ``checkpoint_dir`` and ``threads``: how the job runs. The model file records the cutout
    geometry and crop of the shards it was trained on (from their manifest), so ``predict`` frames
    new images the same way."""
    cfg = settings["train"]
    manifest = json.loads(Path(shards_manifest).read_text())
    trainer, history, best = fit(train_paths, val_path, cfg, checkpoint_dir, device, threads)
    extra = {"classes": list(CLASS_NAMES), "best_epoch": best["epoch"], "best_val_loss": best["val_loss"], "epochs_run": int(len(history)), "cutout": manifest["cutout"], "crop": manifest["settings"]["crop"]}
    save_model(model_path, trainer.model, cfg["model"], extra)
    write_csv_atomic(history_path, history)
    # the checkpoint exists to resume a crashed run; once the model is out, a rerun trains afresh
    (Path(checkpoint_dir) / "checkpoint.pt").unlink(missing_ok=True)
    log.info("saved %s (best epoch %d of %d)", model_path, best["epoch"], len(history))
    return history
