"""``python -m nightskynet <command>``: one command per workflow stage, the demo SkyServer, and predict.

The Snakefile's rules call these commands; so can a person, with the same arguments. Stage
settings come as one JSON object (``--settings``) holding the config sections the stage reads.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from pathlib import Path

from .errors import NightSkyNetError

EVALUATE_OUTPUTS = ("metrics", "predictions_test", "predictions_uncertain", "confusion", "roc_pr", "reliability", "mistakes", "votes", "disagreements")
EXPECTED_ERRORS = (NightSkyNetError, ValueError, FileNotFoundError)


def _settings(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise SystemExit(f"--settings is not JSON: {err}")
    if not isinstance(value, dict):
        raise SystemExit("--settings must be a JSON object")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m nightskynet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("demo-sky", help="serve the demo SkyServer (SqlSearch + getjpeg) over the bundled galaxies")
    s.add_argument("--sky-dir", default="resources/demo_sky")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0, help="0 picks a free port; the URL is printed on stdout")
    s.add_argument("--max-rows", type=int, default=500_000, help="row cap per SQL answer (the real service: 500,000)")
    s.add_argument("--latency-ms", type=float, default=0.0, help="delay added to every answer")

    s = sub.add_parser("query", help="stage query: Galaxy Zoo 1 votes from SqlSearch")
    s.add_argument("--settings", type=_settings, required=True)
    s.add_argument("--out", required=True)

    s = sub.add_parser("labels", help="stage labels: the confidence cut and the splits")
    s.add_argument("--settings", type=_settings, required=True)
    s.add_argument("--catalog", required=True)
    s.add_argument("--out", required=True)
    s.add_argument("--summary", required=True)

    s = sub.add_parser("scrape", help="stage scrape: one chunk of cutouts")
    s.add_argument("--settings", type=_settings, required=True)
    s.add_argument("--labels", required=True)
    s.add_argument("--chunk", type=int, required=True)
    s.add_argument("--tar", required=True)
    s.add_argument("--manifest", required=True)

    def shard_inputs(s: argparse.ArgumentParser) -> None:
        s.add_argument("--settings", type=_settings, required=True)
        s.add_argument("--labels", required=True)
        s.add_argument("--scrape-manifests", nargs="+", required=True)

    s = sub.add_parser("shards-train", help="stage shards: one augmented training shard")
    shard_inputs(s)
    s.add_argument("--chunk-tars", nargs="+", required=True)
    s.add_argument("--shard", type=int, required=True)
    s.add_argument("--out", required=True)

    s = sub.add_parser("shards-eval", help="stage shards: val, test and uncertain sets (centre crops)")
    shard_inputs(s)
    s.add_argument("--chunk-tars", nargs="+", required=True)
    s.add_argument("--val", required=True)
    s.add_argument("--test", required=True)
    s.add_argument("--uncertain", required=True)

    s = sub.add_parser("shards-manifest", help="stage shards: counts and checksums of every shard")
    shard_inputs(s)
    s.add_argument("--shards", nargs="+", required=True)
    s.add_argument("--out", required=True)

    s = sub.add_parser("train", help="stage train: fit the network")
    s.add_argument("--settings", type=_settings, required=True)
    s.add_argument("--train-shards", nargs="+", required=True)
    s.add_argument("--val", required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--history", required=True)
    s.add_argument("--threads", type=int, default=1)

    s = sub.add_parser("evaluate", help="stage evaluate: metrics, predictions, figures")
    s.add_argument("--settings", type=_settings, required=True)
    s.add_argument("--model", required=True)
    s.add_argument("--test", required=True)
    s.add_argument("--uncertain", required=True)
    s.add_argument("--labels", required=True)
    for name in EVALUATE_OUTPUTS:
        s.add_argument(f"--{name.replace('_', '-')}", required=True)
    s.add_argument("--threads", type=int, default=1)

    s = sub.add_parser("report", help="stage report: the self-contained HTML page")
    s.add_argument("--settings", type=_settings, required=True)
    for name in ("catalog", "labels", "labels-summary", "shards-manifest", "history", "metrics", "model", "eval-dir", "examples", "network", "curves", "out"):
        s.add_argument(f"--{name}", required=True)
    s.add_argument("--scrape-manifests", nargs="+", required=True)
    s.add_argument("--chunk-tars", nargs="+", required=True)
    s = sub.add_parser("predict", help="classify a folder of JPEG cutouts or a catalog CSV (objid, ra, dec)")
    s.add_argument("model", help="a model.pt written by the train stage")
    s.add_argument("input", help="a folder of JPEG cutouts (any size) or a catalog .csv with objid, ra, dec")
    s.add_argument("-o", "--output", required=True, help="the CSV to write")
    s.add_argument("--no-tta", action="store_true", help="one view per image instead of the mean over the 8 D4 views")
    s.add_argument("--config", default=None, help="config YAML for cutout size and, for a catalog, where to download (default: config.yaml of this checkout)")
    s.add_argument("--settings", type=_settings, default=None, help=argparse.SUPPRESS)
    s.add_argument("--threads", type=int, default=2)
    return p


def predict_settings(args: argparse.Namespace) -> dict:
    if args.settings is not None:
        return args.settings
    import yaml

    from .config import validate_config

    path = Path(args.config) if args.config else Path(__file__).resolve().parents[2] / "config.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"config file {path} not found (pass --config)")
    config = yaml.safe_load(path.read_text())
    validate_config(config, Path(__file__).resolve().parent.parent / "schemas" / "config.schema.yaml")
    return config


def dispatch(args: argparse.Namespace) -> None:
    if args.command == "demo-sky":
        from .demo_server import serve

        asyncio.run(serve(args.sky_dir, args.seed, args.host, args.port, args.max_rows, args.latency_ms / 1000))
    elif args.command == "query":
        from . import query

        query.run(args.out, args.settings)
    elif args.command == "labels":
        from . import labels

        labels.run(args.catalog, args.out, args.summary, args.settings)
    elif args.command == "scrape":
        from . import scrape

        scrape.run(args.labels, args.chunk, args.tar, args.manifest, args.settings)
    elif args.command == "shards-train":
        from . import shards

        shards.run_train_shard(args.labels, args.scrape_manifests, args.chunk_tars, args.shard, args.out, args.settings)
    elif args.command == "shards-eval":
        from . import shards

        out = {"val": args.val, "test": args.test, "uncertain": args.uncertain}
        shards.run_eval_shards(args.labels, args.scrape_manifests, args.chunk_tars, out, args.settings)
    elif args.command == "shards-manifest":
        from . import shards

        shards.run_manifest(args.labels, args.scrape_manifests, args.shards, args.out, args.settings)
    elif args.command == "train":
        from . import train

        train.run(args.train_shards, args.val, args.model, args.history, args.settings, args.threads)
    elif args.command == "evaluate":
        from . import evaluate

        out = {name: getattr(args, name) for name in EVALUATE_OUTPUTS}
        evaluate.run(args.model, args.test, args.uncertain, args.labels, out, args.settings, args.threads)
    elif args.command == "predict":
        from . import predict

        predict.run(args.model, args.input, args.output, predict_settings(args), tta=not args.no_tta, threads=args.threads)
    elif args.command == "report":
        from . import report

        inputs = {k: getattr(args, k) for k in ("catalog", "labels", "labels_summary", "shards_manifest", "history", "metrics", "model", "eval_dir", "scrape_manifests", "chunk_tars")}
        figures = {"examples": args.examples, "network": args.network, "curves": args.curves}
        report.run(inputs, figures, args.out, args.settings)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        dispatch(args)
    except KeyboardInterrupt:
        return 130
    except EXPECTED_ERRORS as err:
        logging.getLogger("nightskynet").error("%s failed: %s", args.command, err)
        return 1
    return 0
