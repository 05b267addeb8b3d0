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

from .core.commands import STAGE_COMMANDS, parameters
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
    value = _whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is not a positive number (at least 1)")
    return value


def _non_negative_int(text: str) -> int:
    value = _whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} is negative")
    return value


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None


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


STAGE_HELP = {
    "query": "stage query: Galaxy Zoo 1 votes from SqlSearch",
    "labels": "stage labels: the confidence cut and the splits",
    "scrape": "stage scrape: one chunk of cutouts",
    "shards-train": "stage shards: one augmented training shard",
    "shards-eval": "stage shards: val, test and uncertain sets (centre crops)",
    "shards-manifest": "stage shards: counts and checksums of every shard",
    "train": "stage train: fit the network",
    "evaluate": "stage evaluate: metrics, predictions, figures",
    "morphology-chunk": "stage morphology: classify every galaxy of one scrape chunk",
    "morphology": "stage morphology: merge the chunks into the catalog, compare with the votes",
    "similarity": "stage similarity: the index of the representations, unusual and merger_likeness",
    "report": "stage report: the self-contained HTML page",
}
RUN_TYPES = {"int": _non_negative_int, "float": _positive_float, "str": str}


def cmd_stage(args) -> None:
    """Run a stage command: its function called with each of its parameters (``core.commands``) from its option."""
    import importlib

    module, function = STAGE_COMMANDS[args.command]
    stage = getattr(importlib.import_module(f".stages.{module}", __package__), function)
    kwargs = {}
    for parameter in parameters(args.command):
        kwargs[parameter.name] = client_settings(args) if parameter.kind == "Client" else getattr(args, parameter.name)
    stage(**kwargs)


def add_stage_parser(sub, command: str) -> None:
    """A stage command's options: one per parameter of its function, named as the rule's keys (``core.commands``)."""
    s = sub.add_parser(command, help=STAGE_HELP[command])
    for parameter in parameters(command):
        if parameter.kind == "Settings":
            s.add_argument(parameter.flag, type=_settings, required=True, help="JSON of the settings that decide the outputs")
        elif parameter.kind == "File":
            s.add_argument(parameter.flag, required=True, metavar="PATH")
        elif parameter.kind == "Files":
            s.add_argument(parameter.flag, nargs="+", required=True, metavar="PATH")
        elif parameter.kind == "Wildcard":
            s.add_argument(parameter.flag, type=int, required=True, metavar="N")
        elif parameter.kind == "Client":
            add_client_options(s, required=True)
        else:  # Run: how the job runs
            s.add_argument(parameter.flag, type=RUN_TYPES[parameter.type_name], required=True)
    s.set_defaults(func=cmd_stage)


def the_run(results: str | None, config_files: list[str]):
    """The files of the run ``--results`` names, or of the run config.yaml (with ``--config`` files merged) names."""
    from .core.config import load_config
    from .core.layout import RunFiles, run_folder

    return RunFiles(Path(results) if results else Path(run_folder(load_config(config_files))))


def cmd_similar(args) -> None:
    from . import similar

    run = the_run(args.results, args.config)
    queries = [args.objid is not None, args.ra is not None or args.dec is not None, args.image is not None]
    if sum(queries) != 1:
        raise NightSkyNetError("give exactly one query: --objid N, --ra RA --dec DEC, or --image FILE")
    if (args.ra is None) != (args.dec is None):
        raise NightSkyNetError("--ra and --dec go together")
    table = similar.similar(
        run=run,
        k=args.k,
        objid=args.objid,
        position=(args.ra, args.dec) if args.ra is not None else None,
        image=args.image,
        model_path=args.model,
        radius_arcsec=args.radius,
        out_csv=args.output,
        out_html=args.html,
        threads=args.threads,
    )
    if not args.output:
        degrees = {c: "{:.6f}".format for c in ("ra", "dec")}  # 0.004 arcsec: a position to follow up
        print(table.to_string(index=False, float_format="{:.4f}".format, formatters=degrees))


def cmd_explore(args) -> None:
    from .explore.app import serve

    serve(the_run(args.results, args.config).folder, args.host, args.port)


def add_explore_parser(sub) -> None:
    s = sub.add_parser(
        "explore",
        help="a local web app over a finished run: any galaxy, its neighbours, lists, the sky, more like these",
        description=(
            "Serve a web app over one finished run (its catalog, representations, similarity index and cutouts), printing "
            "its address. It writes nothing into the run but its marks file (explore/marks.ecsv)."
        ),
    )
    s.add_argument("--results", default=None, help="the run's folder (default: results/<run> of config.yaml)")
    s.add_argument("--config", action="append", default=[], help="a YAML file merged over config.yaml (repeatable)")
    s.add_argument("--port", type=_port, default=8765, help="the port to listen on (default 8765; 0 picks a free one)")
    s.add_argument("--host", default="127.0.0.1", help="the address to listen on (default 127.0.0.1: this machine only)")
    s.set_defaults(func=cmd_explore)


def _port(text: str) -> int:
    value = _whole_number(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port (0 to 65535)")
    return value


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
            "views": config["predict"]["views"],
        }
    given = {k: getattr(args, k) for k in (*CLIENT_KEYS, "cache_dir", "device", "batch_size", "views")}
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
        views=run["views"],
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
    s.add_argument(
        "--views", type=int, choices=(1, 2, 4, 8), default=None, help="D4 views averaged per image (default: config predict.views)"
    )
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
    s.add_argument("--cache-dir", default=None, help="the cutout cache's folder (default: config scrape.cache_dir)")
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
    for command in STAGE_COMMANDS:
        add_stage_parser(sub, command)
    add_predict_parser(sub)
    add_similar_parser(sub)
    add_explore_parser(sub)
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
