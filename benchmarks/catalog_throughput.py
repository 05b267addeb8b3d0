"""Catalog and predict throughput against the model's own rate, and predict's start-up, in one run.

* bound: the model alone with test-time averaging (8 D4 views), on crops already decoded and on
  the device, batch by batch as the catalog stage feeds it: galaxies a second;
* catalog stage: ``catalog.run_chunk`` over every chunk of a finished run (read the tar, check each
  image against its manifest, decode, crop, the model, write the chunk's table): galaxies a second
  and its share of the bound (goal: >= 80% on a CPU; >= 5,000 galaxies/s on a GPU);
* baseline: the simple serial path of the same galaxies (read and decode every image first, then
  the model in batches of 256, as ``evaluate`` does with its shards);
* predict: ``predict.run`` on a folder of the demo sky's 423 x 423 JPEGs (decode and resample to
  120 px, the model): galaxies a second and its share of the bound;
* start-up: ``nightskynet predict`` on 5 images, wall time of the whole command (median of 3), and
  ``python -c "import torch"`` beside it, the floor of any command that starts PyTorch;
* memory (``--chunk-galaxies N``): one ``nightskynet catalog-chunk`` job on a chunk of N galaxies
  (the run's cutouts again under made-up objids) and on one of N / 10: peak RSS of each, to show it
  does not grow with the chunk (one view per galaxy, to keep it short: memory does not depend on it).

    .venv/bin/python benchmarks/catalog_throughput.py              # after `make demo`: results/demo/ of the demo run
    python benchmarks/catalog_throughput.py --device cuda          # on a GPU machine
    .venv/bin/python benchmarks/catalog_throughput.py --chunk-galaxies 28000   # + memory at 893,000 / 32 per chunk
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from nightskynet import catalog, predict
from nightskynet.architecture import model_geometry
from nightskynet.cutouts import decode_crops, image_files, iter_chunk
from nightskynet.inference import CPU_BATCH, pick_device, predict_proba, prepare_model, tta_probabilities
from nightskynet.model import load_model

REPO = Path(__file__).resolve().parents[1]


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def model_bound(model, crops: np.ndarray, device: torch.device, batch: int, seconds: float = 8.0) -> float:
    """Galaxies a second of the model alone, TTA on: crops already decoded and on the device."""
    model = prepare_model(model, device)
    on_device = [torch.from_numpy(crops[s : s + batch]).to(device) for s in range(0, len(crops), batch)]
    tta_probabilities(model, crops[:batch], device)  # warm-up
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for x in on_device:
            tta_probabilities(model, x, device)
            done += len(x)
    sync(device)
    return done / (time.perf_counter() - t0)


@torch.inference_mode()
def contiguous_rate(model, crops: np.ndarray, batch: int, seconds: float = 6.0) -> float:
    """The bound's arithmetic in PyTorch's default layout (NCHW), for comparison with channels-last."""
    from nightskynet.augment import d4_torch
    from nightskynet.model import to_input

    model = model.eval().to(memory_format=torch.contiguous_format)
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for s in range(0, len(crops), batch):
            x = to_input(torch.from_numpy(crops[s : s + batch]))
            sum(torch.softmax(model(d4_torch(x, g)), dim=1) for g in range(8))
            done += len(x)
    return done / (time.perf_counter() - t0)


def layouts(model_path: Path, crops: np.ndarray, device: torch.device, rounds: int = 2) -> list[tuple[str, float]]:
    """The model alone at batch 64 and 256, channels-last and NCHW, in turns: why the catalog feeds it 64 channels-last."""
    rates: dict[str, list[float]] = {}
    for _ in range(rounds):
        for batch in (64, 256):
            fresh, _ = load_model(model_path, device)
            rates.setdefault(f"batch {batch}, NCHW", []).append(contiguous_rate(fresh, crops, batch))
            rates.setdefault(f"batch {batch}, channels-last", []).append(model_bound(fresh, crops, device, batch, seconds=6.0))
    return [(name, statistics.median(r)) for name, r in rates.items()]


def run_stage(results: Path, chunks: list[int], device: str, threads: int, batch: int) -> tuple[int, float]:
    settings = {"scrape": {"chunks": len(chunks)}, "catalog": {"tta": True}}
    n, t0 = 0, time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k in chunks:
            table = catalog.run_chunk(
                str(results / "model/model.pt"),
                str(results / "catalog/gz1_votes.csv"),
                str(results / "labels/labels.csv"),
                str(results / f"images/chunk_{k}.tar"),
                str(results / f"images/chunk_{k}.manifest.csv"),
                k,
                str(Path(tmp) / f"chunk_{k}.csv"),
                settings,
                device=device,
                batch_size=batch,
                threads=threads,
            )
            n += int((table["status"] == "classified").sum())
    return n, time.perf_counter() - t0


def serial_baseline(model, results: Path, chunks: list[int], size: int, crop: int, device: torch.device) -> tuple[int, float]:
    t0 = time.perf_counter()
    jpegs = [jpeg for k in chunks for _, jpeg in iter_chunk(results / f"images/chunk_{k}.tar")]
    crops = decode_crops(jpegs, size, crop)
    predict_proba(model, crops, device, tta=True, batch_size=256)
    return len(crops), time.perf_counter() - t0


def synthetic_chunk(results: Path, n: int, folder: Path) -> dict[str, str]:
    """A one-chunk run of n galaxies: the run's cutouts over and over under made-up objids, with catalog, labels, manifest."""
    import hashlib
    import io
    import tarfile

    import pandas as pd

    jpegs = [jpeg for tar in sorted((results / "images").glob("chunk_*.tar")) for _, jpeg in iter_chunk(tar)]
    votes = pd.read_csv(results / "catalog/gz1_votes.csv")
    objids = 9_100_000_000_000_000_000 + np.arange(n, dtype=np.int64)
    rows = votes.iloc[np.arange(n) % len(votes)].reset_index(drop=True)
    rows["objid"] = objids
    folder.mkdir(parents=True, exist_ok=True)
    rows.to_csv(folder / "catalog.csv", index=False)
    pd.DataFrame({"objid": objids, "split": "none"}).to_csv(folder / "labels.csv", index=False)
    digests = []
    with tarfile.open(folder / "chunk.tar", "w") as tar:
        for k, objid in enumerate(objids):
            data = jpegs[k % len(jpegs)]
            info = tarfile.TarInfo(f"{objid}.jpg")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
            digests.append(hashlib.sha256(data).hexdigest())
    pd.DataFrame({"objid": objids, "status": "ok", "http_status": 200, "attempts": 1, "reason": "", "sha256": digests}).to_csv(
        folder / "manifest.csv", index=False
    )
    return {name: str(folder / name) for name in ("catalog.csv", "labels.csv", "chunk.tar", "manifest.csv")}


def chunk_job_memory(results: Path, n: int, threads: int) -> tuple[float, float]:
    """(wall s, peak RSS MB) of one catalog-chunk command on a synthetic chunk of n galaxies, one view each."""
    import json

    # the job reports its own peak RSS (ru_maxrss of the process, in kB on Linux)
    job = "import resource, sys; from nightskynet.cli import main; rc = main(sys.argv[1:]); "
    job += "print('PEAK_RSS_KB', resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr); sys.exit(rc)"
    with tempfile.TemporaryDirectory() as tmp:
        files = synthetic_chunk(results, n, Path(tmp))
        settings = json.dumps({"scrape": {"chunks": 1}, "catalog": {"tta": False}})
        command = [sys.executable, "-c", job, "catalog-chunk", "--settings", settings, "--model", str(results / "model/model.pt")]
        command += ["--catalog", files["catalog.csv"], "--labels", files["labels.csv"], "--tar", files["chunk.tar"]]
        command += ["--manifest", files["manifest.csv"], "--chunk", "0", "--out", str(Path(tmp) / "out.csv"), "--threads", str(threads)]
        t0 = time.perf_counter()
        done = subprocess.run(command, check=True, capture_output=True, text=True)
        seconds = time.perf_counter() - t0
    peak_kb = int(done.stderr.rsplit("PEAK_RSS_KB", 1)[1].split()[0])
    return seconds, peak_kb / 1024


def median_wall(command: list[str], repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--results", type=Path, default=REPO / "results" / "demo", help="a finished run's folder (results/<run>/)")
    parser.add_argument("--device", default="auto", choices=("auto", "cpu", "cuda"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3, help="turns of (bound, catalog stage)")
    parser.add_argument("--layouts", action="store_true", help="also the model alone at batch 64 / 256, NCHW / channels-last (CPU)")
    parser.add_argument("--predict-images", type=int, default=300, help="423 px demo images for the predict figure")
    parser.add_argument("--chunk-galaxies", type=int, default=0, help="also the peak RSS of a catalog-chunk job on N and N / 10 galaxies")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    batch = CPU_BATCH if device.type == "cpu" else 1024
    model, saved = load_model(args.results / "model/model.pt", device)
    geometry, crop = model_geometry(saved)
    chunks = sorted(int(p.stem.split("_")[1]) for p in (args.results / "images").glob("chunk_*.tar"))
    jpegs = [jpeg for _, jpeg in iter_chunk(args.results / f"images/chunk_{chunks[0]}.tar")]
    crops = decode_crops(jpegs, geometry["size"], crop)
    print(f"device {device} ({args.threads} CPU threads), batch {batch} galaxies x 8 views; {len(chunks)} chunks in {args.results}")

    # the bound and the stage in turns, --rounds times: a shared machine's speed drifts by tens of
    # percent from one minute to the next, so each is compared with the bound measured beside it
    bounds, stages = [], []
    for _ in range(args.rounds):
        bounds.append(model_bound(model, crops, device, batch))
        n_stage, t_stage = run_stage(args.results, chunks, args.device, args.threads, batch)
        stages.append(n_stage / t_stage)
    bound = statistics.median(bounds)
    n_base, t_base = serial_baseline(model, args.results, chunks, geometry["size"], crop, device)

    images = image_files(REPO / "resources/demo_sky/images")[: args.predict_images]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for path in images:
            (folder / path.name).symlink_to(path)
        t0 = time.perf_counter()
        out = predict.run(
            args.results / "model/model.pt", folder, Path(tmp) / "out.csv", {}, {}, Path(tmp), threads=args.threads, device=args.device
        )
        t_predict = time.perf_counter() - t0
        few = Path(tmp) / "few"
        few.mkdir()
        for path in images[:5]:
            (few / path.name).symlink_to(path)
        nightskynet = [sys.executable, "-m", "nightskynet", "predict", str(args.results / "model/model.pt"), str(few)]
        start_up = median_wall([*nightskynet, "-o", str(Path(tmp) / "few.csv")])
        import_torch = median_wall([sys.executable, "-c", "import torch"])

    def row(what: str, n: int, seconds: float, unit: str = "galaxies") -> tuple[str, ...]:
        return what, f"{n / seconds:,.0f}", f"{n:,} {unit} in {seconds:.1f} s", f"{n / seconds / bound:.0%}"

    each = ", ".join(f"{st / b:.0%}" for st, b in zip(stages, bounds))
    rows = [
        ("model alone, TTA (the bound)", f"{bound:,.0f}", f"median of {', '.join(f'{b:,.0f}' for b in bounds)}", "100%"),
        (
            "catalog stage (run_chunk, every chunk)",
            f"{statistics.median(stages):,.0f}",
            f"{n_stage:,} galaxies, median of {', '.join(f'{st:,.0f}' for st in stages)}",
            f"{statistics.median(stages) / bound:.0%} (each round: {each})",
        ),
        row("baseline: decode all, then model", n_base, t_base),
        row("predict, 423 px JPEG folder", len(out), t_predict, "images"),
    ]
    print("\n| what | galaxies/s | measured | share of the bound |\n|---|---|---|---|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    print(f"\npredict on 5 images, the whole command: {start_up:.2f} s (median of 3); `import torch` alone: {import_torch:.2f} s")
    if args.layouts and device.type == "cpu":
        print("\n| the model alone, TTA | galaxies/s (median of 2) |\n|---|---|")
        for name, rate in layouts(args.results / "model/model.pt", crops, device):
            print(f"| {name} | {rate:,.0f} |")
    if args.chunk_galaxies:
        print("\n| catalog-chunk job, one view per galaxy | wall s | galaxies/s | peak RSS MB |\n|---|---|---|---|")
        for n in (args.chunk_galaxies // 10, args.chunk_galaxies):
            seconds, peak = chunk_job_memory(args.results, n, args.threads)
            print(f"| {n:,} galaxies | {seconds:.1f} | {n / seconds:,.0f} | {peak:,.0f} |")


if __name__ == "__main__":
    main()
