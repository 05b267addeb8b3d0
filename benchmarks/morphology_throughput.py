"""Catalog and predict throughput against the engine's own rate, and predict's start-up, in one run.

* bound: the engine alone (``inference.open_engine``: ONNX Runtime on a CPU) with ``--views`` D4 views a galaxy
  (config morphology.views by default), on crops already decoded, batch by batch as the morphology stage feeds
  it: galaxies a second;
* morphology stage: ``morphology.run_chunk`` over every chunk of a finished run (read the tar, check each
  image against its manifest, decode, look at its centre, crop, the engine, write the chunk's table):
  galaxies a second and its share of the bound (goal: >= 80% on a CPU; >= 5,000 galaxies/s on a GPU);
* the same stage with the PyTorch engine on the CPU (channels-last, as before ONNX Runtime): the
  path it replaced, for the goal of 2.5x;
* the source check alone (``sources.inspect`` on each decoded cutout, one thread), and the stage's own bound:
  the engine and the check one after the other, 1 / (1 / engine + 1 / check);
* baseline: the simple serial path of the same galaxies (read and decode every image first, then
  the model in batches of 256, as ``evaluate`` does with its shards);
* predict: ``predict.run`` on a folder of the demo sky's 423 x 423 JPEGs (decode and resample to
  120 px, the model): galaxies a second and its share of the bound;
* start-up: ``nightskynet predict`` on 5 images, wall time of the whole command (median of 3), and
  ``python -c "import torch"`` beside it, the floor of any command that starts PyTorch (predict does not);
* memory (``--chunk-galaxies N``): one ``nightskynet morphology-chunk`` job on a chunk of N galaxies
  (the run's cutouts again under made-up objids) and on one of N / 10: peak RSS of each, to show it
  does not grow with the chunk, and the job's wall time at the size of one of 32 chunks of 893,000 (28,000, with --views).

    .venv/bin/python benchmarks/morphology_throughput.py              # after `make demo`: results/demo/ of the demo run
    python benchmarks/morphology_throughput.py --device cuda          # on a GPU machine
    .venv/bin/python benchmarks/morphology_throughput.py --chunk-galaxies 28000   # + memory at 893,000 / 32 per chunk
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

from nightskynet.core import layout
from nightskynet.core.architecture import model_geometry
from nightskynet.images.cutouts import decode_crops, image_files, iter_chunk
from nightskynet.net.inference import CPU_BATCH, GPU_BATCH, Calibration, answer, open_engine, outputs_in_batches
from nightskynet.stages import morphology, predict

REPO = Path(__file__).resolve().parents[1]


def engine_bound(engine, calibration: Calibration, crops: np.ndarray, batch: int, views: int, seconds: float = 8.0) -> float:
    """Galaxies a second of the engine alone, with ``views`` views: crops already decoded."""
    batches = [crops[s : s + batch] for s in range(0, len(crops), batch)]
    answer(engine, batches[0], calibration, views)  # warm-up
    done, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        for x in batches:
            answer(engine, x, calibration, views)
            done += len(x)
    return done / (time.perf_counter() - t0)


def torch_cpu_engine(model_path, device="cpu", threads=1):
    """The path before ONNX Runtime: the PyTorch network on the CPU, channels-last."""
    import torch

    from nightskynet.net.torch_inference import TorchEngine

    torch.set_num_threads(threads)
    engine, info = TorchEngine.from_file(model_path, torch.device("cpu"))
    engine.model = engine.model.to(memory_format=torch.channels_last)
    return engine, info


def source_check_rate(jpegs: list[bytes], geometry: dict) -> float:
    """Galaxies a second of the look at each cutout's centre alone (``sources.inspect``, one thread), on decoded cutouts."""
    import io

    from PIL import Image

    from nightskynet.images.sources import inspect, psf_fwhm_px

    images = [np.asarray(Image.open(io.BytesIO(j)).convert("RGB")) for j in jpegs]
    psf = psf_fwhm_px(geometry)
    t0 = time.perf_counter()
    for image in images:
        inspect(image, psf)
    return len(images) / (time.perf_counter() - t0)


def run_stage(results: Path, chunks: list[int], device: str, threads: int, batch: int, views: int) -> tuple[int, float]:
    settings = {"scrape": {"chunks": len(chunks)}, "morphology": {"views": views}}
    n, t0 = 0, time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for k in chunks:
            table = morphology.run_chunk(
                model=str(results / layout.MODEL),
                catalog=str(results / layout.QUERY_CATALOG),
                labels=str(results / layout.LABELS),
                tar=str(results / layout.CHUNK_TAR.format(chunk=k)),
                manifest=str(results / layout.CHUNK_MANIFEST.format(chunk=k)),
                chunk_csv=str(Path(tmp) / f"chunk_{k}.csv"),
                chunk_representations=str(Path(tmp) / f"chunk_{k}.representations.npy"),
                chunk_representations_objid=str(Path(tmp) / f"chunk_{k}.representations_objid.npy"),
                chunk=k,
                settings=settings,
                device=device,
                batch_size=batch,
                threads=threads,
            )
            n += int((table["status"] == "classified").sum())
    return n, time.perf_counter() - t0


def serial_baseline(engine, results: Path, chunks: list[int], size: int, crop: int, views: int) -> tuple[int, float]:
    t0 = time.perf_counter()
    jpegs = [jpeg for k in chunks for _, jpeg in iter_chunk(results / f"images/chunk_{k}.tar")]
    crops = decode_crops(jpegs, size, crop)
    outputs_in_batches(engine, crops, views, 256)
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


def chunk_job_memory(results: Path, n: int, threads: int, views: int) -> tuple[float, float]:
    """(wall s, peak RSS MB) of one morphology-chunk command on a synthetic chunk of n galaxies, with ``views`` views as the stage runs."""
    import json

    # the job reports its own peak RSS: VmHWM of its address space, which starts at exec (ru_maxrss would not do:
    # Linux carries it over exec from the process that forked the job, this benchmark, which holds far more)
    job = "import re, sys; from pathlib import Path; from nightskynet.cli import main; rc = main(sys.argv[1:]); "
    job += "print('PEAK_RSS_KB', re.search(r'VmHWM:\\s+(\\d+)', Path('/proc/self/status').read_text()).group(1), file=sys.stderr); "
    job += "sys.exit(rc)"
    with tempfile.TemporaryDirectory() as tmp:
        files = synthetic_chunk(results, n, Path(tmp))
        settings = json.dumps({"scrape": {"chunks": 1}, "morphology": {"views": views}})
        command = [sys.executable, "-c", job, "morphology-chunk", "--settings", settings, "--model", str(results / "model/model.pt")]
        command += ["--catalog", files["catalog.csv"], "--labels", files["labels.csv"], "--tar", files["chunk.tar"]]
        command += ["--manifest", files["manifest.csv"], "--chunk", "0", "--chunk-csv", str(Path(tmp) / "out.csv")]
        command += ["--chunk-representations", str(Path(tmp) / "r.npy"), "--chunk-representations-objid", str(Path(tmp) / "r_objid.npy")]
        command += ["--device", "auto", "--batch-size", "0", "--threads", str(threads)]
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
    parser.add_argument(
        "--views", type=int, choices=(1, 2, 4, 8), default=None, help="D4 views a galaxy (default: config morphology.views)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="turns of (bound, morphology stage)")
    parser.add_argument("--predict-images", type=int, default=300, help="423 px demo images for the predict figure")
    parser.add_argument(
        "--chunk-galaxies", type=int, default=0, help="also the peak RSS of a morphology-chunk job on N and N / 10 galaxies"
    )
    args = parser.parse_args()
    if args.views is None:
        from nightskynet.core.config import load_config

        args.views = load_config()["morphology"]["views"]
    model_path = args.results / "model/model.pt"
    engine, saved = open_engine(model_path, args.device, args.threads)
    calibration = Calibration.of(saved)
    batch = CPU_BATCH if engine.on_cpu else GPU_BATCH
    geometry, crop = model_geometry(saved)
    chunks = sorted(int(p.stem.split("_")[1]) for p in (args.results / "images").glob("chunk_*.tar"))
    jpegs = [jpeg for _, jpeg in iter_chunk(args.results / f"images/chunk_{chunks[0]}.tar")]
    crops = decode_crops(jpegs, geometry["size"], crop)
    where = "ONNX Runtime on the CPU" if engine.on_cpu else "PyTorch on the GPU"
    print(f"engine: {where} ({args.threads} threads), batch {batch} galaxies x {args.views} views; {len(chunks)} chunks in {args.results}")

    # the bound and the stage in turns, --rounds times: a shared machine's speed drifts by tens of
    # percent from one minute to the next, so each is compared with the bound measured beside it
    bounds, stages, before = [], [], []
    for _ in range(args.rounds):
        bounds.append(engine_bound(engine, calibration, crops, batch, args.views))
        n_stage, t_stage = run_stage(args.results, chunks, args.device, args.threads, batch, args.views)
        stages.append(n_stage / t_stage)
        if engine.on_cpu:
            morphology.open_engine = torch_cpu_engine
            try:
                n_old, t_old = run_stage(args.results, chunks, "cpu", args.threads, batch, args.views)
            finally:
                morphology.open_engine = open_engine
            before.append(n_old / t_old)
    bound = statistics.median(bounds)
    check = source_check_rate(jpegs, geometry)
    stage_bound = 1.0 / (1.0 / bound + 1.0 / check)
    n_base, t_base = serial_baseline(engine, args.results, chunks, geometry["size"], crop, args.views)

    images = image_files(REPO / "resources/demo_sky/images")[: args.predict_images]
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for path in images:
            (folder / path.name).symlink_to(path)
        t0 = time.perf_counter()
        out = predict.run(
            model_path=args.results / layout.MODEL,
            input_path=folder,
            out_csv=Path(tmp) / "out.csv",
            settings={},
            client={},
            cache_dir=Path(tmp),
            views=args.views,
            threads=args.threads,
            batch_size=CPU_BATCH,
            device=args.device,
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

    each = ", ".join(f"{st / b:.0%}" for st, b in zip(stages, bounds, strict=True))
    rows = [
        ("model alone (the bound)", f"{bound:,.0f}", f"median of {', '.join(f'{b:,.0f}' for b in bounds)}", "100%"),
        (
            "morphology stage (run_chunk, every chunk)",
            f"{statistics.median(stages):,.0f}",
            f"{n_stage:,} galaxies, median of {', '.join(f'{st:,.0f}' for st in stages)}",
            f"{statistics.median(stages) / bound:.0%} (each round: {each})",
        ),
        *(
            [
                (
                    "morphology stage, PyTorch channels-last on the CPU (before)",
                    f"{statistics.median(before):,.0f}",
                    f"median of {', '.join(f'{b:,.0f}' for b in before)}",
                    f"{statistics.median(before) / bound:.0%}",
                )
            ]
            if before
            else []
        ),
        ("the source check alone (sources.inspect, one thread)", f"{check:,.0f}", f"{len(jpegs):,} cutouts", f"{check / bound:.0%}"),
        (
            "engine and source check one after the other (the stage's own bound)",
            f"{stage_bound:,.0f}",
            "1 / (1 / engine + 1 / check)",
            f"{stage_bound / bound:.0%}; the stage reaches {statistics.median(stages) / stage_bound:.0%} of it",
        ),
        row("baseline: decode all, then the engine (no source check)", n_base, t_base),
        row("predict, 423 px JPEG folder", len(out), t_predict, "images"),
    ]
    print("\n| what | galaxies/s | measured | share of the bound |\n|---|---|---|---|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")
    print(f"\npredict on 5 images, the whole command: {start_up:.2f} s (median of 3); `import torch` alone: {import_torch:.2f} s")
    if before:
        print(
            f"morphology stage, ONNX Runtime against the PyTorch path before: {statistics.median(stages) / statistics.median(before):.2f}x"
        )
    if args.chunk_galaxies:
        print("\n| morphology-chunk job | wall s | galaxies/s | peak RSS MB |\n|---|---|---|---|")
        for n in (args.chunk_galaxies // 10, args.chunk_galaxies):
            seconds, peak = chunk_job_memory(args.results, n, args.threads, args.views)
            print(f"| {n:,} galaxies | {seconds:.1f} | {n / seconds:,.0f} | {peak:,.0f} |")


if __name__ == "__main__":
    main()
