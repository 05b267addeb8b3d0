"""``nightskynet <command>`` (or ``python -m nightskynet``): one command per workflow stage, the demo SkyServer, and predict.

The Snakefile's rules call these commands; so can a person, with the same arguments. A stage's
settings that decide its outputs come as one JSON object (``--settings``, the rule's params); how
a job runs (threads, device, cache folders, the HTTP client's concurrency and timeouts) comes as
options of its own (the rule's resources), so changing it never reruns a stage.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from .core.errors import NightSkyNetError
from .sky.client_options import CLIENT_KEYS, CLIENT_OPTIONS


def _settings(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"not JSON: {err}") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError("must be a JSON object")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number (at least 1)")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _positive_float(text: str) -> float:
    value = _non_negative_float(text)
    if value == 0:
        raise argparse.ArgumentTypeError("must be more than 0")
    return value


# ---- the commands -------------------------------------------------------------------------------


def cmd_demo_sky(args) -> None:
    import asyncio  # here, not at the top: 0.1 s of every command's start-up

    from .sky.demo_server import serve

    asyncio.run(serve(args.sky_dir, args.seed, args.host, args.port, args.max_rows, args.latency_ms / 1000, args.scale_to))


def cmd_query(args) -> None:
    from .stages import query

    client = {
        "page_size": args.page_size,
        "timeout_s": args.timeout_s,
        "max_attempts": args.max_attempts,
        "demo_max_rows": args.demo_max_rows,
    }
    query.run(out_csv=args.out, settings=args.settings, client=client)


def cmd_labels(args) -> None:
    from .stages import labels

    labels.run(catalog_csv=args.catalog, out_csv=args.out, summary_json=args.summary, settings=args.settings)


def cmd_scrape(args) -> None:
    from .stages import scrape

    scrape.run(
        catalog_csv=args.catalog,
        chunk=args.chunk,
        tar_path=args.tar,
        manifest_path=args.manifest,
        settings=args.settings,
        client=client_settings(args),
        cache_dir=args.cache_dir,
    )


def cmd_shards_train(args) -> None:
    from .stages import shards

    shards.run_train_shard(
        labels_csv=args.labels,
        manifests=args.scrape_manifests,
        chunk_tars=args.chunk_tars,
        shard=args.shard,
        out_path=args.out,
        settings=args.settings,
    )


def cmd_shards_eval(args) -> None:
    from .stages import shards

    shards.run_eval_shards(
        labels_csv=args.labels,
        manifests=args.scrape_manifests,
        chunk_tars=args.chunk_tars,
        out_paths={"val": args.val, "test": args.test, "uncertain": args.uncertain},
        settings=args.settings,
    )


def cmd_shards_manifest(args) -> None:
    from .stages import shards

    shards.run_manifest(
        labels_csv=args.labels, manifests=args.scrape_manifests, shard_paths=args.shards, out_path=args.out, settings=args.settings
    )


def cmd_train(args) -> None:
    from .stages import train

    train.run(
        train_paths=args.train_shards,
        val_path=args.val,
        shards_manifest=args.shards_manifest,
        model_path=args.model,
        history_path=args.history,
        settings=args.settings,
        device=args.device,
        checkpoint_dir=args.checkpoint_dir,
        threads=args.threads,
    )


# The files of each stage command, by the names its options, its rule's input/output keys and its run()'s dicts share
# (tests/test_conventions.py checks every rule's shell options against its command's)
EVALUATE_FIGURES = ("confusion", "roc_pr", "reliability", "mistakes")  # evaluate writes them, the report shows them
EVALUATE_OUTPUTS = ("metrics", "predictions_test", "predictions_uncertain", *EVALUATE_FIGURES)


def cmd_evaluate(args) -> None:
    from .stages import evaluate

    out = {name: getattr(args, name) for name in EVALUATE_OUTPUTS}
    evaluate.run(
        model_path=args.model,
        test_path=args.test,
        uncertain_path=args.uncertain,
        labels_csv=args.labels,
        out=out,
        settings=args.settings,
        device=args.device,
        batch_size=args.batch_size,
        threads=args.threads,
    )


def cmd_morphology_chunk(args) -> None:
    from .stages import morphology

    morphology.run_chunk(
        model_path=args.model,
        catalog_csv=args.catalog,
        labels_csv=args.labels,
        tar_path=args.tar,
        manifest_path=args.manifest,
        chunk=args.chunk,
        out_csv=args.out,
        out_representations=args.representations,
        settings=args.settings,
        device=args.device,
        batch_size=args.batch_size,
        threads=args.threads,
    )


MORPHOLOGY_OUTPUTS = ("csv", "representations", "comparison", "vs_votes", "by_votes", "disagreements")


def cmd_morphology(args) -> None:
    from .stages import morphology

    morphology.run_merge(
        chunk_csvs=args.chunks,
        chunk_representations=args.chunk_representations,
        chunk_tars=args.chunk_tars,
        out={k: getattr(args, k) for k in MORPHOLOGY_OUTPUTS},
        settings=args.settings,
    )


SIMILARITY_OUTPUTS = ("index", "scores", "summary", "unusual", "neighbours", "map", "merger_like")


def cmd_similarity(args) -> None:
    from .stages import similarity

    similarity.run(
        catalog_csv=args.catalog,
        representations_path=args.representations,
        labels_csv=args.labels,
        labels_summary=args.labels_summary,
        chunk_tars=args.chunk_tars,
        out={k: getattr(args, k) for k in SIMILARITY_OUTPUTS},
        settings=args.settings,
        threads=args.threads,
    )


def cmd_similar(args) -> None:
    from .core.config import load_config
    from .stages import similarity

    if args.results:
        run = Path(args.results)
    else:
        config = load_config(args.config)
        run = Path("results") / (config["run"] or config["source"])
    queries = [args.objid is not None, args.ra is not None or args.dec is not None, args.image is not None]
    if sum(queries) != 1:
        raise NightSkyNetError("give exactly one query: --objid N, --ra RA --dec DEC, or --image FILE")
    if (args.ra is None) != (args.dec is None):
        raise NightSkyNetError("--ra and --dec go together")
    table = similarity.similar(
        catalog_csv=str(run / "morphology" / "catalog.csv"),
        representations_path=str(run / "morphology" / "representations.npy"),
        index_path=str(run / "similarity" / "index.faiss"),
        scores_csv=str(run / "similarity" / "scores.csv") if (run / "similarity" / "scores.csv").is_file() else None,
        k=args.k,
        objid=args.objid,
        position=(args.ra, args.dec) if args.ra is not None else None,
        image=args.image,
        model_path=args.model or str(run / "model" / "model.pt"),
        radius_arcsec=args.radius,
        tta=not args.no_tta,
        out_csv=args.output,
        out_html=args.html,
        chunk_tars=sorted(str(p) for p in (run / "images").glob("chunk_*.tar")),
        threads=args.threads,
    )
    if not args.output:
        degrees = {c: "{:.6f}".format for c in ("ra", "dec")}  # 0.004 arcsec: a position to follow up
        print(table.to_string(index=False, float_format="{:.4f}".format, formatters=degrees))


REPORT_INPUTS = (
    "catalog",
    "labels",
    "labels_summary",
    "shards_manifest",
    "history",
    "metrics",
    "predictions_test",
    "predictions_uncertain",
    "model",
    "morphology_comparison",
    "morphology_vs_votes",
    "morphology_by_votes",
    "morphology_disagreements",
    "similarity_summary",
    "similarity_unusual",
    "similarity_neighbours",
    "similarity_map",
    "similarity_merger_like",
)
REPORT_FIGURES = ("examples", "network", "curves", "sky_map")


def cmd_report(args) -> None:
    from .stages import report

    inputs = {k: getattr(args, k) for k in (*REPORT_INPUTS, "scrape_manifests", "chunk_tars")}
    eval_figures = {name: getattr(args, name) for name in EVALUATE_FIGURES}
    report.run(
        inputs=inputs,
        eval_figures=eval_figures,
        figures={k: getattr(args, k) for k in REPORT_FIGURES},
        out_html=args.out,
        settings=args.settings,
    )


def cmd_predict(args) -> None:
    from .core.config import load_config
    from .stages import predict

    if args.settings is not None:  # the workflow's rule: the source from its params
        settings = args.settings
        defaults = {}
    else:
        config = load_config(args.config)
        settings = {k: config[k] for k in ("source", "sdss", "demo")}
        defaults = {
            **{k: config["scrape"][k] for k in CLIENT_KEYS},
            "cache_dir": config["scrape"]["cache_dir"],
            "device": config["train"]["device"],
            "batch_size": config["evaluate"]["batch_size"],
        }
    given = {k: getattr(args, k) for k in (*CLIENT_KEYS, "cache_dir", "device", "batch_size")}
    missing = [k for k, v in given.items() if v is None and k not in defaults]
    if missing:
        raise NightSkyNetError(f"--settings needs --{missing[0].replace('_', '-')} too")
    run = {k: (v if v is not None else defaults[k]) for k, v in given.items()}
    predict.run(
        model_path=args.model,
        input_path=args.input,
        out_csv=args.output,
        settings=settings,
        client={k: run[k] for k in CLIENT_KEYS},
        cache_dir=run["cache_dir"],
        tta=not args.no_tta,
        threads=args.threads,
        batch_size=run["batch_size"],
        device=run["device"],
        columns={"objid": args.id_column, "ra": args.ra_column, "dec": args.dec_column},
        representations=args.representations,
    )


def client_settings(args) -> dict:
    return {k: getattr(args, k) for k in CLIENT_KEYS}


# ---- the parser ---------------------------------------------------------------------------------


def add_client_options(s: argparse.ArgumentParser, required: bool) -> None:
    """The cutout client's options (``sky.client_options``, config scrape.*); a stage job gets them from the rule's resources."""
    parse = {"positive_int": _positive_int, "non_negative_float": _non_negative_float, "positive_float": _positive_float}
    for option in CLIENT_OPTIONS:
        s.add_argument(option.flag, type=parse[option.kind], required=required, help=option.help)
    s.add_argument("--cache-dir", required=required, help="the cutout cache's folder")


def stage_parser(sub, name: str, help: str, func, files: tuple[str, ...] = (), many: tuple[str, ...] = ()) -> argparse.ArgumentParser:
    """A stage command: ``--settings`` (the rule's params), one path per name of ``files``, one or more per name of ``many``."""
    s = sub.add_parser(name, help=help)
    s.add_argument("--settings", type=_settings, required=True)
    for option in files:
        s.add_argument(f"--{option.replace('_', '-')}", required=True)
    for option in many:
        s.add_argument(f"--{option.replace('_', '-')}", nargs="+", required=True)
    s.set_defaults(func=func)
    return s


def add_device_options(s: argparse.ArgumentParser, batch_size: bool = False) -> None:
    s.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto")
    s.add_argument("--threads", type=_positive_int, default=1)
    if batch_size:
        s.add_argument("--batch-size", type=_positive_int, default=256)


def add_acquisition_parsers(sub) -> None:
    s = stage_parser(sub, "query", "stage query: Galaxy Zoo 1 votes from SqlSearch", cmd_query, ("out",))
    s.add_argument("--page-size", type=_positive_int, required=True)
    s.add_argument("--timeout-s", type=_positive_float, required=True)
    s.add_argument("--max-attempts", type=_positive_int, required=True)
    s.add_argument("--demo-max-rows", type=_positive_int, default=None, help="row cap of the demo SkyServer's answers")
    stage_parser(sub, "labels", "stage labels: the confidence cut and the splits", cmd_labels, ("catalog", "out", "summary"))
    s = stage_parser(sub, "scrape", "stage scrape: one chunk of cutouts", cmd_scrape, ("catalog", "tar", "manifest"))
    s.add_argument("--chunk", type=int, required=True)
    add_client_options(s, required=True)


def add_shard_parsers(sub) -> None:
    inputs, tars = ("labels",), ("scrape_manifests", "chunk_tars")
    s = stage_parser(sub, "shards-train", "stage shards: one augmented training shard", cmd_shards_train, (*inputs, "out"), tars)
    s.add_argument("--shard", type=int, required=True)
    stage_parser(
        sub,
        "shards-eval",
        "stage shards: val, test and uncertain sets (centre crops)",
        cmd_shards_eval,
        (*inputs, "val", "test", "uncertain"),
        tars,
    )
    stage_parser(
        sub,
        "shards-manifest",
        "stage shards: counts and checksums of every shard",
        cmd_shards_manifest,
        (*inputs, "out"),
        ("scrape_manifests", "shards"),
    )


def add_learning_parsers(sub) -> None:
    files = ("val", "shards_manifest", "model", "history", "checkpoint_dir")
    add_device_options(stage_parser(sub, "train", "stage train: fit the network", cmd_train, files, ("train_shards",)))
    files = ("model", "test", "uncertain", "labels", *EVALUATE_OUTPUTS)
    add_device_options(stage_parser(sub, "evaluate", "stage evaluate: metrics, predictions, figures", cmd_evaluate, files), batch_size=True)
    files = ("model", "catalog", "labels", "tar", "manifest", "out", "representations")
    s = stage_parser(sub, "morphology-chunk", "stage morphology: classify every galaxy of one scrape chunk", cmd_morphology_chunk, files)
    s.add_argument("--chunk", type=int, required=True)
    add_device_options(s)
    s.add_argument("--batch-size", type=int, default=0, help="galaxies per model call (0: 64 on a CPU, 1024 on a GPU)")
    stage_parser(
        sub,
        "morphology",
        "stage morphology: merge the chunks into the catalog, compare with the votes",
        cmd_morphology,
        MORPHOLOGY_OUTPUTS,
        ("chunks", "chunk_representations", "chunk_tars"),
    )
    files = ("catalog", "representations", "labels", "labels_summary", *SIMILARITY_OUTPUTS)
    s = stage_parser(
        sub,
        "similarity",
        "stage similarity: the index of the representations, unusual and merger_likeness",
        cmd_similarity,
        files,
        ("chunk_tars",),
    )
    s.add_argument("--threads", type=_positive_int, default=1)
    files = (*REPORT_INPUTS, *EVALUATE_FIGURES, *REPORT_FIGURES, "out")
    stage_parser(sub, "report", "stage report: the self-contained HTML page", cmd_report, files, ("scrape_manifests", "chunk_tars"))


def add_predict_parser(sub) -> None:
    s = sub.add_parser(
        "predict",
        help="classify a folder of JPEG/PNG cutouts, image files, or a catalog (objid, ra, dec; CSV, ECSV, FITS or VOTable)",
        description=(
            "Classify galaxies with a trained model. Settings not given as options come from the checkout's config.yaml, "
            "with each --config file merged over it."
        ),
    )
    s.add_argument("model", help="a model.pt written by the train stage")
    s.add_argument(
        "input",
        nargs="+",
        help="a folder of JPEG/PNG cutouts (any size), JPEG/PNG files (a.jpg b.png, cutouts/*.jpg: one row per file given), "
        "or a catalog with objid, ra, dec (.csv, .ecsv, .fits, .vot/.xml); ra/dec in decimal degrees or sexagesimal "
        "(10h21m00s, +41d12m00s)",
    )
    s.add_argument("-o", "--output", required=True, help="the table to write: .csv, .ecsv, .fits or .vot/.xml (by its extension)")
    s.add_argument("--id-column", default=None, metavar="NAME", help="the catalog's objid column (default: objid, objID, dr7objid...)")
    s.add_argument("--ra-column", default=None, metavar="NAME", help="the catalog's right ascension column (default: ra, RA, RAJ2000...)")
    s.add_argument("--dec-column", default=None, metavar="NAME", help="the catalog's declination column (default: dec, DEC, DEJ2000...)")
    s.add_argument("--no-tta", action="store_true", help="one view per image instead of the mean over the 8 D4 views")
    s.add_argument(
        "--representations",
        default=None,
        metavar="OUT.npy",
        help="also write each classified row's representation (the network's penultimate features, averaged over the views): "
        "float32, one row per classified row of the output table, in its order",
    )
    s.add_argument(
        "--config",
        action="append",
        default=[],
        metavar="YAML",
        help="a config file merged over config.yaml (repeatable, later ones win); for a catalog, where to download from",
    )
    s.add_argument("--settings", type=_settings, default=None, help=argparse.SUPPRESS)
    add_client_options(s, required=False)
    s.add_argument("--device", choices=("auto", "cuda", "cpu"), default=None, help="default: config train.device")
    s.add_argument("--batch-size", type=_positive_int, default=None, help="default: config evaluate.batch_size")
    s.add_argument("--threads", type=_positive_int, default=2, help="CPU threads (at least 1)")
    s.set_defaults(func=cmd_predict)


def add_similar_parser(sub) -> None:
    s = sub.add_parser(
        "similar",
        help="the galaxies of a run's catalog most like one galaxy (by objid or position) or an image file",
        description=(
            "Search a run's similarity index (results/<run>/similarity/index.faiss, built by the workflow's similarity rule) "
            "for the galaxies most like a query: a galaxy of the catalog by --objid or --ra/--dec, or an image file "
            "(--image, represented on the fly by the run's model). Prints the table, or writes it with -o; --html writes a "
            "page of their cutouts."
        ),
    )
    s.add_argument("--objid", type=int, default=None, help="a galaxy of the catalog")
    s.add_argument("--ra", type=float, default=None, help="with --dec: the catalog galaxy nearest this position (decimal degrees)")
    s.add_argument("--dec", type=float, default=None)
    s.add_argument("--radius", type=_positive_float, default=3.0, help="arcsec: how far from --ra/--dec a galaxy may be (default 3)")
    s.add_argument("--image", default=None, help="a JPEG/PNG cutout at the model's scale, represented by --model")
    s.add_argument("-k", type=_positive_int, default=20, help="how many galaxies (default 20)")
    s.add_argument("-o", "--output", default=None, help="write the table to this CSV instead of printing it")
    s.add_argument("--html", default=None, help="also write a page of their cutouts here")
    s.add_argument("--results", default=None, help="the run's folder (default: results/<run> of config.yaml)")
    s.add_argument("--model", default=None, help="for --image: the model (default: the run's model/model.pt)")
    s.add_argument("--config", action="append", default=[], help="a YAML file merged over config.yaml (repeatable)")
    s.add_argument("--no-tta", action="store_true", help="for --image: one view instead of the mean over the 8 D4 views")
    s.add_argument("--threads", type=_positive_int, default=2)
    s.set_defaults(func=cmd_similar)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="nightskynet", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("demo-sky", help="serve the demo SkyServer (SqlSearch + getjpeg) over the bundled galaxies")
    s.add_argument("--sky-dir", default="resources/demo_sky")
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--host", default="127.0.0.1")
    s.add_argument("--port", type=int, default=0, help="0 picks a free port; the URL is printed on stdout")
    s.add_argument("--max-rows", type=_positive_int, default=500_000, help="row cap per SQL answer (the real service: 500,000)")
    s.add_argument("--latency-ms", type=_non_negative_float, default=0.0, help="delay added to every answer")
    s.add_argument(
        "--scale-to", type=int, default=0, help="serve N galaxies: the bundled ones plus copies of their images (0: the bundled ones)"
    )
    s.set_defaults(func=cmd_demo_sky)
    add_acquisition_parsers(sub)
    add_shard_parsers(sub)
    add_learning_parsers(sub)
    add_predict_parser(sub)
    add_similar_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        args.func(args)
    except KeyboardInterrupt:
        return 130
    except NightSkyNetError as err:  # the project's own errors: one line; a bug keeps its traceback
        logging.getLogger("nightskynet").error("%s failed: %s", args.command, err)
        return 1
    return 0
