"""Stage ``train``: fit the network on the augmented shards, then calibrate it on the val split.

Two recipes (config ``train.recipe``), each with its own settings section:

* ``study``: the study's network and training. Adam at a constant learning rate, cross-entropy,
  one pass over the stored training images per epoch in a seeded order, early stopping on the
  validation loss (``patience``), the weights of the best epoch kept.
* ``resnet``: the small residual network (``model.py``) with a modern recipe: AdamW under a
  one-cycle learning-rate schedule, each batch drawn so mergers make up ``merger_share`` of it
  (the stored shards keep the study's 1%), and every image given a fresh D4 element and a shift
  of up to ``shift`` px on the training device, on top of the stored augmentation; the weights
  of the last epoch kept (or their exponential moving average, ``ema``).

``train.targets``: ``hard`` learns each galaxy's class (with ``label_smoothing``), ``votes`` its
renormalised vote fractions (the soft cross-entropy). Then ``calibrate.calibrate`` fits the prior
correction, the temperature and the merger threshold on the validation galaxies.

CUDA when present (bf16 autocast, channels_last, the whole uint8 set on the GPU once), CPU
otherwise (``threads``): bf16 autocast and channels_last where the CPU computes bf16 natively
(AVX512-BF16 or AMX), PyTorch's default NCHW layout in fp32 elsewhere; ``training_mode_for`` is
the one place the layout and precision are chosen. A checkpoint is written after every epoch to ``checkpoint_dir`` (outside
Snakemake's outputs, which a failed job loses); a restarted training with the same inputs and
settings resumes from it, bit for bit on the CPU: batch order and augmentation come from (seed,
epoch), and the dropout RNG state is saved with the checkpoint.
Outputs: ``model.pt`` and ``history.csv``; the checkpoint (``checkpoint-<key>.pt``, the key a hash of
the shards and the settings, so two runs side by side never resume each other's) is deleted once
they are written, so ``--forcerun train`` trains afresh.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.nn import functional as F
from tqdm import tqdm

from ..analysis.classification import balanced_accuracy
from ..core.commands import File, Files, Run, Settings
from ..core.errors import InputError
from ..core.files import atomic_path, sha256_file, write_csv_atomic
from ..core.recipes import Recipe
from ..core.vocabulary import CLASS_NAMES, MERGER
from ..images.augment import d4_torch
from ..net.calibrate import calibrate
from ..net.model import GalaxyClassifier, save_model, to_input
from ..net.torch_inference import pick_device

log = logging.getLogger(__name__)

HISTORY_COLUMNS = (
    "epoch",
    "train_loss",
    "train_accuracy",
    "val_loss",
    "val_accuracy",
    "val_balanced_accuracy",
    "learning_rate",
    "seconds",
    "images_per_s",
)


def load_shards(paths: list[str]) -> dict[str, np.ndarray]:
    """images, labels, targets and objids of the shards, concatenated."""
    parts: dict[str, list] = {"images": [], "labels": [], "targets": [], "objids": []}
    for path in paths:
        with np.load(path) as z:
            for key in parts:
                parts[key].append(z[key])
    out = {k: np.concatenate(v) for k, v in parts.items()}
    out["labels"] = out["labels"].astype(np.int64)
    return out


def run_key(shard_paths: list[str], recipe: Recipe, input_size: int, mode_name: str) -> str:
    """Identifies a training run: a checkpoint is resumed only by a run with the same key (a bf16 run never resumes an fp32 one)."""
    h = hashlib.sha256(json.dumps({**recipe.settings, "input_size": input_size, "mode": mode_name}, sort_keys=True).encode())
    for path in shard_paths:
        h.update(f"{Path(path).name}:{sha256_file(path)}".encode())
    return h.hexdigest()[:16]


def cpu_computes_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic in hardware (AVX512-BF16 or AMX), where oneDNN's bf16 kernels are fast."""
    capabilities = torch.cpu.get_capabilities() if hasattr(torch.cpu, "get_capabilities") else {}
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))


@dataclass(frozen=True)
class TrainingMode:
    """How a device trains: the layout of the network and of every batch, and whether under bf16 autocast."""

    memory_format: torch.memory_format
    bf16: bool

    @property
    def name(self) -> str:
        layout = "channels_last" if self.memory_format == torch.channels_last else "NCHW"
        return f"{'bf16' if self.bf16 else 'fp32'} {layout}"


FP32_NCHW = TrainingMode(torch.contiguous_format, bf16=False)
BF16_CHANNELS_LAST = TrainingMode(torch.channels_last, bf16=True)


def training_mode_for(device: torch.device) -> TrainingMode:
    """bf16 autocast in channels_last on CUDA and on CPUs that compute bf16 in hardware; fp32 NCHW on other CPUs.

    On a CPU, oneDNN's fp32 channels_last backward pass of narrow convolutions corrupts memory: on
    AVX2 (AMD EPYC) the weight gradient of the 1x1 stride-2 shortcuts segfaults, aborts or hangs at
    first-stage width 1 or 4, on AVX-512 (Intel Xeon) training crashes at width 4 or 8. Its bf16
    kernels (AVX512-BF16, AMX) train every width, and 2.4x faster than fp32 NCHW; fp32 NCHW is safe
    at every width and is what a CPU without bf16 hardware trains in (docs/benchmarks.md, "Training
    (train)"). On CUDA channels_last is the layout of bf16 tensor-core convolutions.
    """
    if device.type == "cuda" or cpu_computes_bf16():
        return BF16_CHANNELS_LAST
    return FP32_NCHW


def random_views(x: torch.Tensor, shift: int, generator: torch.Generator) -> torch.Tensor:
    """A fresh D4 element and a shift of up to ``shift`` px (edges replicated) for every image of (N, C, H, W)."""
    n, _, h, w = x.shape
    g = torch.randint(0, 8, (n,), generator=generator)
    moves = torch.randint(-shift, shift + 1, (n, 2), generator=generator)
    if shift:
        padded = F.pad(x, (shift, shift, shift, shift), mode="replicate")
        rows = (shift + moves[:, :1] + torch.arange(h)).to(x.device)
        cols = (shift + moves[:, 1:] + torch.arange(w)).to(x.device)
        x = padded[
            torch.arange(n, device=x.device)[:, None, None, None],
            torch.arange(x.shape[1], device=x.device)[None, :, None, None],
            rows[:, None, :, None],
            cols[:, None, None, :],
        ]
    out = torch.empty_like(x)
    for element in range(8):
        chosen = (g == element).to(x.device)
        if chosen.any():
            out[chosen] = d4_torch(x[chosen], element)
    return out


def sampling_weights(labels: np.ndarray, merger_share: float) -> np.ndarray:
    """Per-image probabilities that give mergers ``merger_share`` of a batch and the other classes equal shares."""
    present = [c for c in range(len(CLASS_NAMES)) if (labels == c).any()]
    share = {}
    others = [c for c in present if c != MERGER]
    if MERGER in present:
        share[MERGER] = merger_share if others else 1.0
    for c in others:
        share[c] = (1.0 - share.get(MERGER, 0.0)) / len(others)
    counts = np.bincount(labels, minlength=len(CLASS_NAMES))
    w = np.array([share.get(int(c), 0.0) / counts[c] for c in labels])
    return w / w.sum()


class Trainer:
    """One recipe's network, optimizer and schedule; ``train_epoch`` and ``evaluate`` on uint8 tensors."""

    def __init__(
        self,
        recipe: Recipe,
        input_size: int,
        device: torch.device,
        steps_per_epoch: int,
        mode: TrainingMode | None = None,
    ):
        """``mode``: the layout and precision of the training; ``training_mode_for(device)`` unless given (benchmarks, tests)."""
        self.recipe, self.device = recipe, device
        self.checkpoint: Path | None = None  # set by ``fit``: where this training's checkpoint lives
        self.mode = training_mode_for(device) if mode is None else mode
        self.memory_format = self.mode.memory_format
        torch.manual_seed(recipe.seed)
        self.model = GalaxyClassifier(recipe.name, recipe.architecture, input_size).to(device).to(memory_format=self.memory_format)
        if recipe.is_study:
            self.optimizer = torch.optim.Adam(self.model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
            self.scheduler = None
        else:
            self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=recipe.learning_rate, weight_decay=recipe.weight_decay)
            self.scheduler = torch.optim.lr_scheduler.OneCycleLR(
                self.optimizer, max_lr=recipe.learning_rate, total_steps=max(1, recipe.epochs * steps_per_epoch), pct_start=0.2
            )
        ema = recipe.ema
        self.ema = (
            torch.optim.swa_utils.AveragedModel(self.model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(ema), use_buffers=True)
            if ema
            else None
        )
        self.amp = self.mode.bf16

    @property
    def final_model(self) -> GalaxyClassifier:
        return self.ema.module if self.ema is not None else self.model

    def _input(self, images: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """The images ``idx`` as network input in the trainer's layout (``to_input``'s permuted view is channels_last by its strides)."""
        return to_input(images[idx].to(self.device, non_blocking=True)).contiguous(memory_format=self.memory_format)

    def _loss(self, logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        if self.recipe.targets == "votes":
            return -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()
        return F.cross_entropy(logits, labels, label_smoothing=self.recipe.label_smoothing)

    def epoch_order(self, labels: np.ndarray, epoch: int) -> torch.Tensor:
        rng = np.random.default_rng([self.recipe.seed, epoch])
        if self.recipe.is_study:
            return torch.from_numpy(rng.permutation(len(labels)))
        return torch.from_numpy(rng.choice(len(labels), size=len(labels), p=sampling_weights(labels, self.recipe.merger_share)))

    def train_epoch(self, data: dict[str, torch.Tensor], labels_np: np.ndarray, epoch: int) -> tuple[float, float]:
        self.model.train()
        order = self.epoch_order(labels_np, epoch)
        bs, shift = self.recipe.batch_size, self.recipe.shift
        fresh_views = self.recipe.fresh_views
        generator = torch.Generator().manual_seed(int(np.random.default_rng([self.recipe.seed, epoch, 1]).integers(2**62)))
        # running sums stay on the device: no host sync per step (it would idle a GPU)
        total_loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), dtype=torch.long, device=self.device)
        with tqdm(total=len(order), desc=f"epoch {epoch}", unit="img", mininterval=5.0, leave=False) as bar:
            for start in range(0, len(order), bs):
                idx = order[start : start + bs].to(data["images"].device)
                x = self._input(data["images"], idx)
                if fresh_views:
                    x = random_views(x, shift, generator).contiguous(memory_format=self.memory_format)
                y, t = data["labels"][idx].to(self.device), data["targets"][idx].to(self.device)
                with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                    logits = self.model(x).float()
                loss = self._loss(logits, y, t)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
                if self.scheduler is not None:
                    self.scheduler.step()
                if self.ema is not None:
                    self.ema.update_parameters(self.model)
                total_loss += loss.detach() * len(idx)
                correct += (logits.argmax(1) == y).sum()
                bar.update(len(idx))
        return float(total_loss) / max(1, len(order)), int(correct) / max(1, len(order))

    @torch.no_grad()
    def evaluate(self, data: dict[str, torch.Tensor]) -> tuple[float, float, float]:
        """Validation loss (against the class), accuracy and balanced accuracy, one view per galaxy."""
        n = len(data["labels"])
        if n == 0:
            return float("nan"), float("nan"), float("nan")
        model = self.final_model
        model.eval()
        logits = []
        for start in range(0, n, 1024):
            idx = torch.arange(start, min(start + 1024, n), device=data["images"].device)
            with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.amp):
                logits.append(model(self._input(data["images"], idx)).float())
        logits = torch.cat(logits)
        y = data["labels"].to(self.device)
        pred = logits.argmax(1)
        return float(F.cross_entropy(logits, y)), float((pred == y).float().mean()), balanced_accuracy(y.cpu().numpy(), pred.cpu().numpy())

    def state(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "ema": self.ema.state_dict() if self.ema is not None else None,
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        }

    def load_state(self, state: dict) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        torch.set_rng_state(state["torch_rng"])
        if state["cuda_rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])


def channel_statistics(images: np.ndarray, sample: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean and std of the training images (in [0, 1]), from an evenly spaced sample."""
    step = max(1, len(images) // sample)
    x = images[::step].reshape(-1, images.shape[-1]).astype(np.float64) / 255.0
    return x.mean(axis=0), x.std(axis=0)


def place(arrays: dict[str, np.ndarray], device: torch.device) -> dict[str, torch.Tensor]:
    """The whole set on the training device once (1.1 GB of uint8 images at the study's scale)."""
    return {
        "images": torch.from_numpy(arrays["images"]).to(device),
        "labels": torch.from_numpy(arrays["labels"]).to(device),
        "targets": torch.from_numpy(arrays["targets"]).to(device),
    }


def class_priors(train: dict[str, np.ndarray], recipe: Recipe) -> tuple[np.ndarray, np.ndarray]:
    """(the class mixture the network is trained at, the real one of the training galaxies).

    Both are means of what the network learns (the class, or the vote fractions): over the
    training images as the recipe draws them, and over the training galaxies, each counted once.
    """
    learned = train["targets"].astype(np.float64) if recipe.targets == "votes" else np.eye(len(CLASS_NAMES))[train["labels"]]
    if recipe.is_study:
        trained = learned.mean(axis=0)
    else:
        trained = sampling_weights(train["labels"], recipe.merger_share) @ learned
    _, first = np.unique(train["objids"], return_index=True)
    real = learned[first].mean(axis=0)
    return trained, real


def load_training_data(train_paths: list[str], val_path: str, recipe: Recipe, device: torch.device) -> tuple[dict, dict, dict, dict]:
    """(training arrays, validation arrays, the same on the training device, ...) with a log line of what is trained on."""
    train, val = load_shards(train_paths), load_shards([val_path])
    if len(train["labels"]) == 0:
        raise InputError(f"the training shards {train_paths} hold no images")
    counts = ", ".join(f"{c}={int((train['labels'] == i).sum())}" for i, c in enumerate(CLASS_NAMES))
    log.info(
        "recipe %s, targets %s: %d training images (%s), %d validation galaxies, device %s, %d CPU threads",
        *(recipe.name, recipe.targets, len(train["labels"]), counts, len(val["labels"]), device, torch.get_num_threads()),
    )
    return train, val, place(train, device), place(val, device)


def build_trainer(recipe: Recipe, train: dict, input_size: int, device: torch.device, mode: TrainingMode | None = None) -> Trainer:
    """The recipe's trainer, its input standardisation set from the training images."""
    trainer = Trainer(recipe, input_size, device, steps_per_epoch=-(-len(train["labels"]) // recipe.batch_size), mode=mode)
    statistics = channel_statistics(train["images"])
    for model in (trainer.model, trainer.ema.module if trainer.ema is not None else None):
        if model is not None:
            model.standardize.set_statistics(*statistics)
    return trainer


@dataclass
class Progress:
    """Where a training stands: the epochs done, and the best one (by val loss for the study's recipe, else the last)."""

    history: list[dict] = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"val_loss": float("inf"), "epoch": 0, "state": None})
    next_epoch: int = 1


def resume(trainer: Trainer, ckpt_path: Path, key: str) -> Progress:
    """The progress of a matching checkpoint, loaded into ``trainer``; a fresh start otherwise."""
    if not ckpt_path.exists():
        return Progress()
    saved = torch.load(ckpt_path, map_location="cpu", weights_only=False)  # RNG states must stay CPU tensors
    if saved.get("key") != key:
        log.info("ignoring %s: it belongs to another run (inputs or settings changed)", ckpt_path)
        return Progress()
    trainer.load_state(saved["trainer"])
    log.info("resuming from %s after epoch %d", ckpt_path, saved["epoch"])
    return Progress(saved["history"], saved["best"], saved["epoch"] + 1)


def one_epoch(trainer: Trainer, epoch: int, train: dict, train_t: dict, val_t: dict) -> dict:
    """Train one epoch and score the validation galaxies; the history row."""
    t0 = time.perf_counter()
    lr = trainer.optimizer.param_groups[0]["lr"]
    train_loss, train_acc = trainer.train_epoch(train_t, train["labels"], epoch)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    val_loss, val_acc, val_bal = trainer.evaluate(val_t)
    rate = round(len(train["labels"]) / seconds, 1)
    row = {
        "epoch": epoch, "train_loss": train_loss, "train_accuracy": train_acc, "val_loss": val_loss, "val_accuracy": val_acc,
        "val_balanced_accuracy": val_bal, "learning_rate": lr, "seconds": round(seconds, 3), "images_per_s": rate,
    }  # fmt: skip
    log.info(
        "epoch %d: train loss %.4f acc %.3f | val loss %.4f acc %.3f balanced %.3f | lr %.2g | %.1f s, %.0f img/s",
        *(epoch, train_loss, train_acc, val_loss, val_acc, val_bal, lr, seconds, row["images_per_s"]),
    )
    return row


def record(progress: Progress, row: dict, trainer: Trainer, early_stopping: bool) -> None:
    """Add an epoch to the history; keep its weights if it is the best so far (the last one without early stopping)."""
    score = row["val_loss"] if not np.isnan(row["val_loss"]) else row["train_loss"]
    if not early_stopping or score < progress.best["val_loss"]:
        state = {k: v.detach().cpu().clone() for k, v in trainer.final_model.state_dict().items()}
        progress.best = {"val_loss": score, "epoch": row["epoch"], "state": state}
    progress.history.append(row)
    progress.next_epoch = row["epoch"] + 1


def fit(
    train_paths: list[str],
    val_path: str,
    cfg: dict,
    input_size: int,
    checkpoint_dir: str | Path,
    device: str = "auto",
    threads: int = 1,
    stop_after_epochs: int | None = None,
    mode: TrainingMode | None = None,
) -> tuple[Trainer, pd.DataFrame, dict]:
    """Train (resuming from a matching checkpoint in ``checkpoint_dir``); ``mode``: the device's own (``training_mode_for``) unless given.

    Returns the trainer with the final weights loaded, the history and the best epoch.
    """
    recipe = Recipe.from_config(cfg)
    torch_device = pick_device(device)
    if torch_device.type == "cpu":
        torch.set_num_threads(max(1, threads))
    train, _, train_t, val_t = load_training_data(train_paths, val_path, recipe, torch_device)
    trainer = build_trainer(recipe, train, input_size, torch_device, mode)
    log.info("training in %s on %s", trainer.mode.name, torch_device)
    key = run_key(train_paths + [val_path], recipe, input_size, trainer.mode.name)
    ckpt_path = trainer.checkpoint = Path(checkpoint_dir) / f"checkpoint-{key}.pt"  # one per training: runs side by side never share one
    progress = resume(trainer, ckpt_path, key)
    early_stopping = recipe.early_stopping
    for epochs_run, epoch in enumerate(range(progress.next_epoch, recipe.epochs + 1)):
        best = progress.best
        if early_stopping and best["epoch"] and epoch - best["epoch"] > recipe.patience:
            log.info(
                "early stop: val loss has not improved for %d epochs (best %.4f at epoch %d)",
                recipe.patience,
                best["val_loss"],
                best["epoch"],
            )
            break
        if stop_after_epochs is not None and epochs_run >= stop_after_epochs:
            break
        record(progress, one_epoch(trainer, epoch, train, train_t, val_t), trainer, early_stopping)
        with atomic_path(ckpt_path) as tmp:
            torch.save({"key": key, "epoch": epoch, "trainer": trainer.state(), "history": progress.history, "best": progress.best}, tmp)
    if progress.best["state"] is not None:
        trainer.final_model.load_state_dict(progress.best["state"])
    return trainer, pd.DataFrame(progress.history, columns=list(HISTORY_COLUMNS)), progress.best


def run(
    *,
    train_shards: Files,
    val: File,
    shards_manifest: File,
    model: File,
    history: File,
    settings: Settings,
    device: Run[str],
    checkpoint_dir: Run[str],
    threads: Run[int],
    mode: TrainingMode | None = None,
) -> pd.DataFrame:
    """Stage ``train``: the ``model`` and its training ``history``. ``settings``: the ``train`` settings that decide
    the weights; ``device``, ``checkpoint_dir`` and ``threads``: how the job runs. The model file records the cutout
    geometry and crop of the shards it was trained on (from their manifest), so ``predict`` frames new images the
    same way, and the calibration fitted on the val split. ``mode``: the device's own training mode unless given
    (the yardstick's fp32 comparison)."""
    cfg = settings["train"]
    manifest = json.loads(Path(shards_manifest).read_text())
    input_size = int(manifest["settings"]["crop"])
    trainer, fitted, best = fit(train_shards, val, cfg, input_size, checkpoint_dir, device, threads, mode=mode)
    network = trainer.final_model
    recipe = Recipe.from_config(cfg)
    trained_prior, real_prior = class_priors(load_shards(train_shards), recipe)
    val_set = load_shards([val])
    images, labels = val_set["images"], val_set["labels"]
    result = calibrate(network, images, labels, trained_prior, real_prior, cfg["merger_recall"], pick_device(device), fit=cfg["calibrate"])
    extra = {
        "classes": list(CLASS_NAMES),
        "recipe": recipe.settings,
        "best_epoch": best["epoch"],
        "epochs_run": len(fitted),
        "trained_in": f"{trainer.device.type}, {trainer.mode.name}",
        "cutout": manifest["cutout"],
        "calibration": result,
        "merger_threshold": result["merger_threshold"],
    }
    save_model(model, network, extra)
    write_csv_atomic(history, fitted)
    # the checkpoint exists to resume a crashed run; once the model is out, a rerun trains afresh
    trainer.checkpoint.unlink(missing_ok=True)
    log.info("saved %s (recipe %s, epoch %d of %d kept)", model, recipe.name, best["epoch"], len(fitted))
    return fitted
