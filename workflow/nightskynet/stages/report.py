"""Stage ``report``: one self-contained HTML page (figures embedded) that a person reads first.

Data counts at each stage, example galaxies per class, the network, training curves, test
metrics and the evaluation figures, a map of the galaxies on the sky and a sortable table of the
uncertain galaxies (votes beside the network), with credits to SDSS and Galaxy Zoo. Wherever the demo
sky's votes appear, the page says they are simulated.
"""

from __future__ import annotations

import functools
import importlib.metadata
import json
import logging
import platform
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd

from .. import __version__
from ..analysis.figures import png_data_uri, save_figure
from ..analysis.report_figures import example_grid, network_drawing, sky_map, training_curves
from ..core.commands import File, Files, Settings
from ..core.files import write_text_atomic
from ..core.vocabulary import CATALOG_SPLITS, CLASS_LABELS, CLASS_NAMES, HUMAN_COLUMNS, PROB_COLUMNS, STATUSES, TRAINED_ON, is_confident
from ..net.model import layer_table, load_model
from ..sky.votes import votes_phrase

log = logging.getLogger(__name__)

REPORT_FIGURES = ("examples", "network", "curves", "sky_map")  # the figures this stage draws

CREDIT = (
    "Imagery: Sloan Digital Sky Survey (SDSS), funded by the Alfred P. Sloan Foundation, the Participating Institutions, "
    "the National Science Foundation and the U.S. Department of Energy. Classifications: Galaxy Zoo 1 "
    "(Lintott et al. 2008, MNRAS 389, 1179; Lintott et al. 2011, MNRAS 410, 166)."
)


RECIPE_WORDS = {
    "study": (
        "the study's network (4 convolutional and 4 dense layers, two of them maxout) trained as the study did: "
        "Adam at a constant learning rate, early stopping on the validation loss"
    ),
    "resnet": (
        "a small residual network trained with AdamW under a one-cycle schedule, each batch drawn so mergers make up "
        "a set share of it, every image given a fresh rotation/flip and shift each time it is seen"
    ),
}


def versions() -> dict[str, str]:
    out = {"nightskynet": __version__, "python": platform.python_version()}
    for name in ("snakemake", "torch", "numpy", "pandas", "pillow", "aiohttp", "matplotlib", "astropy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def count_rows(labels: pd.DataFrame, catalog: pd.DataFrame, summary: dict, manifests: pd.DataFrame, shards_manifest: dict) -> list[list]:
    """Galaxies at each step of the pipeline, in total and per class."""
    blank = [""] * len(CLASS_NAMES)
    ok = set(manifests.loc[manifests["status"] == "ok", "objid"].astype("int64"))
    got = labels.assign(downloaded=labels["objid"].isin(ok))

    def per_class(mask: pd.Series) -> list[int]:
        return [int((mask & (got["label"] == c)).sum()) for c in CLASS_NAMES]

    confident = got["confidence"] >= summary["threshold"] - 1e-9  # as the labels stage decides it
    rows = [
        ["catalog (SqlSearch, after validation)", len(catalog), *blank],
        [f"confident (max >= {summary['threshold']:.2f})", summary["confident"], *[summary["confident_by_class"][c] for c in CLASS_NAMES]],
        ["uncertain (below the cut)", summary["uncertain_total"], *blank],
        # the scrape fetches every galaxy of the catalog; per class, the confident ones
        ["cutouts downloaded (every galaxy; per class: the confident)", len(ok), *per_class(got["downloaded"] & confident)],
    ]
    for split in (*TRAINED_ON, "test"):
        part = (got["split"] == split) & got["downloaded"]
        rows.append([f"{split} galaxies", int(part.sum()), *per_class(part)])
    below_cut = (
        got["downloaded"]
        & got["split"].isin(TRAINED_ON)
        & got["confidence"].notna()
        & ~is_confident(got["confidence"], summary["threshold"])
    )
    if below_cut.any():
        rows.append(["of the train + val galaxies: below the cut, trained on their votes", int(below_cut.sum()), *per_class(below_cut)])
    held = (got["split"] == "uncertain") & got["downloaded"]
    rows.append(["uncertain galaxies held out (compared with the votes)", int(held.sum()), *blank])
    images = shards_manifest["images"]["train"]
    rows.append(["augmented training images", images, *[shards_manifest["copies_per_class"][c]["images"] for c in CLASS_NAMES]])
    return rows


CAPTIONS = {
    "network": (
        "The network, input on the left: box heights grow with each layer's output size (log scale); under each box its "
        "output shape (channels x height x width), above it the layer and the dropout that follows it, if any. "
        "The table lists every layer."
    ),
    "curves": (
        "Loss and accuracy per epoch on the augmented training images and the validation galaxies (centre crops); "
        "lower loss and higher accuracy are better, a widening gap means overfitting."
    ),
    "confusion": (
        "Confusion matrix on the test split: rows are the Galaxy Zoo class, columns the network's; "
        "the diagonal of the right panel is each class's recall."
    ),
    "roc_pr": (
        "One class against the rest: ROC (left; towards the top left is better, the dashed line is guessing) and "
        "precision-recall (right; towards the top right is better; the star is the merger decision). "
        "The areas are in the table below."
    ),
    "reliability": (
        "Reliability: test galaxies binned by the probability the network gives its top class, against the fraction it "
        "got right, before calibration (grey) and after (blue). On the dashed diagonal the probabilities can be taken at "
        "face value; below it the network is over-confident. Expected calibration error {ece}."
    ),
    "morphology_vs_votes": (
        "Per class, the network's probability against the vote fraction, on every galaxy it never trained on. Grey: how "
        "many galaxies fall in each cell (log scale); blue: the network's mean probability in each tenth of vote fraction, "
        "with one standard deviation; on the dashed red line network and volunteers agree."
    ),
    "morphology_by_votes": (
        "Agreement against the number of votes (bins holding galaxies only; in brackets, how many): the mean absolute "
        "difference over the four classes (left, lower is closer) and the share whose top class agrees (right). "
        "Fractions from few votes are noisy, so agreement should grow with the number of votes."
    ),
    "unusual": (
        "The 16 most unusual classified galaxies: those whose 10th nearest other galaxy of the catalog is least like them "
        "(unusual = 1 - that galaxy's cosine similarity), with the network's class, objid and position. Look here for "
        "rare objects, and for what the source check let through."
    ),
    "neighbours": (
        "A query galaxy of each class (framed: of the galaxies never trained on, the one the network is surest of) and its "
        "8 nearest neighbours in the catalog, with their cosine similarity and the network's class."
    ),
    "map": (
        "Every classified galaxy's representation on its first two principal axes (PCA): coloured by the network's class "
        "(left) and by the volunteers' elliptical (middle) and merger (right) vote fractions. Neighbouring points are "
        "galaxies the network sees as alike."
    ),
    "merger_like": (
        "Of the galaxies never trained on (test, uncertain, none), the 16 most like the training mergers (merger_likeness): "
        "the candidates a search for mergers by example would look at first, with p_merger, split and merger vote fraction."
    ),
    "morphology_disagreements": (
        "The galaxies (never trained on) where the network and the volunteers differ most, in any class: that class, "
        "the vote fraction and the network's probability, the split and the number of votes, objid and position."
    ),
}


# ---------------------------------------------------------------------------------------------------------------
# The page: templates/report/ holds its words and tags (report.html.j2, sections.html.j2, report.css,
# report.js); what follows prepares its values. A table is a header and rows of plain values, a figure a
# data URI and a caption; the template escapes every one of them.


def render_table(rows: list[list[object]], header: list[str], css: str = "") -> dict:
    return {"header": header, "rows": rows, "css": css}


def render_figure(uri: str, caption: str) -> dict:
    return {"uri": uri, "caption": caption}


@functools.cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("nightskynet", "stages/templates/report"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,  # a value the template names but Python did not prepare is an error, not a blank
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["commas"] = lambda v: f"{v:,}"
    env.filters["percent"] = lambda v: f"{v:.0%}"
    return env


def render_page(page: dict) -> str:
    return environment().get_template(TEMPLATE).render(page=page)


def render_section(name: str, values: dict) -> str:
    """One section of the page alone (the template's macro ``name``), for a test to read."""
    return str(getattr(environment().get_template(SECTIONS).module, name)(values))


TEMPLATE = "report.html.j2"  # the page: head, sections in order, script
SECTIONS = "sections.html.j2"  # a macro per section


def uncertain_table(uncertain: pd.DataFrame, labels: pd.DataFrame) -> dict:
    """Every uncertain galaxy compared: position, votes, human fraction beside network probability per class; sortable."""
    frame = uncertain.merge(labels[["objid", "ra", "dec", "nvote"]], on="objid", how="left")
    human = frame[list(HUMAN_COLUMNS)].to_numpy(float)
    network = frame[list(PROB_COLUMNS)].to_numpy(float)
    gap = np.abs(network - human).max(axis=1)
    header = ["objid", "ra", "dec", "votes", "largest gap"]
    for c in CLASS_NAMES:
        short = CLASS_LABELS[c].replace(" spiral", "").replace("elliptical", "ell.")
        header += [f"{short} human", f"{short} network"]
    header.append("network's class")
    rows = []
    for i in np.argsort(-gap, kind="stable"):
        r = frame.iloc[i]
        cells = [str(r["objid"]), f"{r['ra']:.5f}", f"{r['dec']:.5f}", str(int(r["nvote"])), f"{gap[i]:.3f}"]
        for k in range(len(CLASS_NAMES)):
            cells += [f"{human[i, k]:.3f}", f"{network[i, k]:.3f}"]
        cells.append(CLASS_LABELS[r["predicted"]])
        rows.append(cells)
    return render_table(rows, header, css="sortable small")


def header_section(settings: dict) -> dict:
    demo = settings["source"] == "demo"
    scaled = settings.get("demo", {}).get("scale_to", 0) if demo else 0
    source = (
        "demo sky (local SkyServer over 1,500 bundled Galaxy Zoo 1 galaxies)"
        if demo
        else f"{settings['sdss']['base_url']} / {settings['sdss']['release']}"
    )
    if scaled:
        source = (
            f"demo sky scaled to {scaled:,} galaxies (local SkyServer: the 1,500 bundled Galaxy Zoo 1 galaxies and copies of their images)"
        )
    return {
        "source": source,
        "version": __version__,
        "python": platform.python_version(),
        "demo": demo,
        "scaled": scaled,
        "copies": scaled - 1500 if scaled else 0,
    }


def result_section(metrics: dict, votes: str) -> dict:
    """The headline, in words: balanced accuracy first (what it means), accuracy, and every class
    the network never predicts or never gets right, named beside them."""
    per_class = metrics["per_class"]
    cm = np.array(metrics["confusion_matrix"])
    never_predicted = [c for i, c in enumerate(CLASS_NAMES) if cm[:, i].sum() == 0 and per_class[c]["support"]]
    never_right = [c for i, c in enumerate(CLASS_NAMES) if cm[i, i] == 0 and per_class[c]["support"] and c not in never_predicted]
    cal, merger = metrics.get("calibration", {}), metrics.get("merger", {})
    return {
        "metrics": metrics,
        "votes": votes,
        "calibration": cal if "uncalibrated" in cal else None,
        "merger": merger if merger.get("threshold") is not None else None,
        "never_predicted": [{"label": CLASS_LABELS[c], "support": per_class[c]["support"]} for c in never_predicted],
        "never_right": [{"label": CLASS_LABELS[c], "support": per_class[c]["support"]} for c in never_right],
        "per_class": render_table(
            [[CLASS_LABELS[c], v["precision"], v["recall"], v["f1"], v["support"]] for c, v in per_class.items()],
            ["class", "precision", "recall", "F1", "test galaxies"],
        ),
    }


def network_values(saved: dict, model, n_params: int) -> dict:
    """The network's paragraph: recipe, targets, size, epochs, which weights were kept, the calibration."""
    recipe = saved.get("recipe", {})
    kind = recipe.get("recipe", model.kind)
    cal = saved.get("calibration", {})
    calibration = (
        {
            "val_galaxies": cal.get("val_galaxies"),
            "logit_bias": ", ".join(f"{b:+.2f}" for b in cal.get("logit_bias", [])),
            "classes": ", ".join(CLASS_LABELS[c] for c in CLASS_NAMES),
            "temperature": cal.get("temperature", 1),
        }
        if cal.get("fitted")
        else None
    )
    return {
        "kind": kind,
        "recipe_words": RECIPE_WORDS.get(kind, ""),
        "targets": (
            "the vote fractions of every galaxy with enough votes"
            if recipe.get("targets") == "votes"
            else "the class of the confident galaxies"
        ),
        "n_params": n_params,
        "input_size": model.input_size,
        "epochs_run": saved.get("epochs_run"),
        "kept": (
            f"the weights of epoch {saved.get('best_epoch')} (lowest validation loss) kept"
            if kind == "study"
            else "the weights after the last epoch kept"
        ),
        "calibration": calibration,
    }


def save_png(fig, path: str | Path) -> str:
    """Write the figure to ``path`` and return it as a data URI for the page."""
    save_figure(fig, path)
    return png_data_uri(path)


def downloads_phrase(manifests: pd.DataFrame) -> str:
    """The scrape's outcomes counted (``ok 58, missing 2``); a status is text from a file, escaped by the template."""
    return ", ".join(f"{k} {v}" for k, v in sorted(manifests["status"].value_counts().to_dict().items()))


def data_section(inputs: dict, summary: dict, settings: dict, votes: str, examples_png: str) -> dict:
    catalog = pd.read_csv(inputs["catalog"], dtype={"objid": "int64"})
    labels = pd.read_csv(inputs["labels"], dtype={"objid": "int64"})
    manifests = pd.concat([pd.read_csv(p) for p in inputs["scrape_manifests"]], ignore_index=True)
    shards_manifest = json.loads(Path(inputs["shards_manifest"]).read_text())
    size = settings["scrape"]["size"]
    grid = example_grid(labels, inputs["chunk_tars"], settings["report"]["examples_per_class"], size, 0)
    return {
        "votes": votes,
        "threshold": summary["threshold"],
        "all_dont_know": summary["undefined_all_dont_know"],
        "downloads": downloads_phrase(manifests),
        "counts": render_table(
            count_rows(labels, catalog, summary, manifests, shards_manifest), ["stage", "total", *[CLASS_LABELS[c] for c in CLASS_NAMES]]
        ),
        "examples": render_figure(
            save_png(grid, examples_png),
            f"Confident galaxies of each class, as downloaded ({size} x {size} px cutouts; class from {votes}).",
        ),
    }


def network_section(inputs: dict, figures: dict) -> dict:
    model, saved = load_model(inputs["model"])
    shapes = layer_table(model)
    n_params = sum(p.numel() for p in model.parameters())
    history = pd.read_csv(inputs["history"])
    return {
        **network_values(saved, model, n_params),
        "drawing": render_figure(save_png(network_drawing(shapes, model.input_size), figures["network"]), CAPTIONS["network"]),
        "layers": render_table([[name, " x ".join(str(s) for s in shape)] for name, shape in shapes], ["layer", "output shape"]),
        "curves": render_figure(save_png(training_curves(history), figures["curves"]), CAPTIONS["curves"]),
    }


def evaluation_section(metrics: dict, eval_figures: dict, votes: str) -> dict:
    mistakes = metrics.get("most_confident_mistakes", [])
    ece = metrics["calibration"]["expected_calibration_error"]
    return {
        "confusion": render_figure(png_data_uri(eval_figures["confusion"]), CAPTIONS["confusion"]),
        "roc_pr": render_figure(png_data_uri(eval_figures["roc_pr"]), CAPTIONS["roc_pr"]),
        "areas": render_table(
            [[CLASS_LABELS[c], v.get("roc_auc"), v.get("average_precision")] for c, v in metrics["per_class"].items()],
            ["class", "ROC AUC", "average precision"],
        ),
        "reliability": render_figure(png_data_uri(eval_figures["reliability"]), CAPTIONS["reliability"].format(ece=ece)),
        "mistakes": render_figure(
            png_data_uri(eval_figures["mistakes"]),
            f"The {len(mistakes)} test galaxies the network got wrong most confidently: Galaxy Zoo class ({votes}), "
            "the network's class and its probability, objid and position.",
        ),
    }


def _fixed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def morphology_section(inputs: dict, votes: str) -> dict:
    """Every galaxy the query returned, classified: what the catalog holds and how it compares with the volunteers."""
    summary = json.loads(Path(inputs["morphology_comparison"]).read_text())
    by = summary["by_split_and_status"]
    splits = [s for s in CATALOG_SPLITS if s in by]
    # only the statuses that occur: a column of zeros would say nothing
    statuses = [t for t in STATUSES if any(by[s].get(t) for s in splits)]
    rows = [[s, *[by[s].get(t, 0) for t in statuses], sum(by[s].values())] for s in splits]
    rows.append(["all", *[sum(by[s].get(t, 0) for s in splits) for t in statuses], summary["galaxies"]])
    return {
        "votes": votes,
        "galaxies": summary["galaxies"],
        "views": f"the mean over {summary['views']} D4 views" if summary["views"] > 1 else "one view (morphology.views: 1)",
        "unclassified": summary["galaxies"] - sum(by[s].get("classified", 0) for s in splits),
        "statuses": render_table(rows, ["split", *statuses, "all"]),
        "compared": summary["compared"],
        "agreement": summary["top_class_agreement"],
        "per_class": render_table(
            [[CLASS_LABELS[c], _fixed(v["pearson_r"]), _fixed(v["mean_abs_diff"])] for c, v in summary["per_class"].items()],
            ["class", "Pearson r", "mean |network - votes|"],
        ),
        "vs_votes": render_figure(png_data_uri(inputs["morphology_vs_votes"]), CAPTIONS["morphology_vs_votes"]),
        "by_votes": render_figure(png_data_uri(inputs["morphology_by_votes"]), CAPTIONS["morphology_by_votes"]),
        "disagreements": render_figure(png_data_uri(inputs["morphology_disagreements"]), CAPTIONS["morphology_disagreements"]),
    }


def _share(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


def similarity_section(inputs: dict) -> dict:
    """Galaxies like this one: the index, the most unusual galaxies, neighbours per class, the map, mergers by example."""
    summary = json.loads(Path(inputs["similarity_summary"]).read_text())
    test = summary["test_split"]
    purity = test.get("neighbour_purity")
    rows = []
    for name, label in (("merger_likeness", "merger_likeness (by example)"), ("p_merger", "p_merger (the classifier)")):
        if name in test:
            rows.append([label, _share(test[name]["average_precision"]), _share(test[name]["precision_at_recall_0.7"])])
    return {
        "galaxies": summary["galaxies"],
        "indexed": summary["indexed"],
        "features": summary["features"],
        "neighbour": summary["unusual"]["neighbour"],
        "method": summary["merger_likeness"]["method"],
        "merger_neighbours": summary["merger_likeness"]["neighbours"],
        "reference_galaxies": summary["merger_likeness"]["reference_galaxies"],
        "reference_mergers": summary["merger_likeness"]["reference_mergers"],
        "test_galaxies": test.get("test_galaxies", 0),
        "test_mergers": test.get("test_mergers", 0),
        "purity": None
        if purity is None
        else {
            "balanced": _share(purity["balanced"]),
            "per_class": ", ".join(f"{CLASS_LABELS[c]} {_share(v)}" for c, v in purity["per_class"].items()),
        },
        "mergers": render_table(rows, ["ranking", "average precision", "precision at recall 0.7"]) if rows else None,
        "unusual": render_figure(png_data_uri(inputs["similarity_unusual"]), CAPTIONS["unusual"]),
        "neighbours": render_figure(png_data_uri(inputs["similarity_neighbours"]), CAPTIONS["neighbours"]),
        "map": render_figure(png_data_uri(inputs["similarity_map"]), CAPTIONS["map"]),
        "merger_like": render_figure(png_data_uri(inputs["similarity_merger_like"]), CAPTIONS["merger_like"]),
    }


def sky_section(inputs: dict, figures: dict, votes: str) -> dict:
    labels = pd.read_csv(inputs["labels"], dtype={"objid": "int64"})
    test = pd.read_csv(inputs["predictions_test"], dtype={"objid": "int64"})
    uncertain = pd.read_csv(inputs["predictions_uncertain"], dtype={"objid": "int64"})
    predicted = pd.concat(
        [test[["objid", "predicted"]].assign(is_test=True), uncertain[["objid", "predicted"]].assign(is_test=False)], ignore_index=True
    )
    return {
        "map": render_figure(
            save_png(sky_map(labels, predicted), figures["sky_map"]),
            f"Where the {len(labels):,} galaxies are (ICRS), coloured by the network's class: the {len(test)} test galaxies ringed, "
            f"the {len(uncertain)} uncertain galaxies compared with the votes as dots, the galaxies trained on (and any without "
            "a cutout) in grey. Left: the whole sky, east to the left; right: the survey area.",
        ),
        "uncertain_count": len(uncertain),
        "votes": votes,
        "uncertain": uncertain_table(uncertain, labels),
    }


def run_section(settings: dict) -> dict:
    return {
        "versions": render_table([[k, v] for k, v in versions().items()], ["software", "version"]),
        "settings": json.dumps(settings, indent=2),
        "credit": CREDIT,
    }


def run(
    *,
    catalog: File,
    labels: File,
    labels_summary: File,
    scrape_manifests: Files,
    chunk_tars: Files,
    shards_manifest: File,
    history: File,
    model: File,
    metrics: File,
    predictions_test: File,
    predictions_uncertain: File,
    confusion: File,
    roc_pr: File,
    reliability: File,
    mistakes: File,
    morphology_comparison: File,
    morphology_vs_votes: File,
    morphology_by_votes: File,
    morphology_disagreements: File,
    similarity_summary: File,
    similarity_unusual: File,
    similarity_neighbours: File,
    similarity_map: File,
    similarity_merger_like: File,
    html: File,
    examples: File,
    network: File,
    curves: File,
    sky_map: File,
    settings: Settings,
) -> None:
    """Stage ``report``: the page (``html``) and the figures this stage draws (``examples``, ``network``, ``curves``,
    ``sky_map``), from every stage's outputs (the other parameters, by the names the rule gives them)."""
    inputs = {name: value for name, value in locals().items() if name not in ("html", *REPORT_FIGURES, "settings")}
    figures = {"examples": examples, "network": network, "curves": curves, "sky_map": sky_map}
    eval_figures = {"confusion": confusion, "roc_pr": roc_pr, "reliability": reliability, "mistakes": mistakes}
    votes = votes_phrase(settings["source"])
    scores = json.loads(Path(metrics).read_text())
    summary = json.loads(Path(labels_summary).read_text())
    page = {
        "header": header_section(settings),
        "result": result_section(scores, votes),
        "data": data_section(inputs, summary, settings, votes, examples),
        "network": network_section(inputs, figures),
        "evaluation": evaluation_section(scores, eval_figures, votes),
        "morphology": morphology_section(inputs, votes),
        "similarity": similarity_section(inputs),
        "sky": sky_section(inputs, figures, votes),
        "run": run_section(settings),
    }
    write_text_atomic(html, render_page(page))
    log.info("wrote %s", html)
