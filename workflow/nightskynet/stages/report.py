"""Stage ``report``: one self-contained HTML page (figures embedded) that a person reads first.

Data counts at each stage, example galaxies per class, the network, training curves, test
metrics and the evaluation figures, a map of the galaxies on the sky and a sortable table of the
uncertain galaxies (votes beside the network), with credits to SDSS and Galaxy Zoo. Wherever the demo
sky's votes appear, the page says they are simulated.
"""

from __future__ import annotations

import html
import importlib.metadata
import json
import logging
import platform
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from ..analysis.figures import plt, png_data_uri, save_figure
from ..core.classes import CLASS_LABELS, CLASS_NAMES
from ..core.files import write_text_atomic
from ..images.cutouts import decode, read_chunks
from ..net.model import layer_table, load_model
from ..sky.votes import votes_phrase

log = logging.getLogger(__name__)

CREDIT = (
    "Imagery: Sloan Digital Sky Survey (SDSS), funded by the Alfred P. Sloan Foundation, the Participating Institutions, "
    "the National Science Foundation and the U.S. Department of Energy. Classifications: Galaxy Zoo 1 "
    "(Lintott et al. 2008, MNRAS 389, 1179; Lintott et al. 2011, MNRAS 410, 166)."
)


def training_curves(history: pd.DataFrame):
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    axes[0].plot(history["epoch"], history["train_loss"], "o-", label="train")
    axes[0].plot(history["epoch"], history["val_loss"], "o-", label="validation")
    axes[0].set_ylabel("cross-entropy loss")
    axes[1].plot(history["epoch"], history["train_accuracy"], "o-", label="train")
    axes[1].plot(history["epoch"], history["val_accuracy"], "o-", label="validation")
    axes[1].set_ylabel("accuracy")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    return fig


def example_grid(labels: pd.DataFrame, chunk_tars: list[str], per_class: int, size: int, seed: int):
    """A row of real cutouts per class, from the confident galaxies."""
    rng = np.random.default_rng(seed)
    wanted: dict[str, list[int]] = {}
    confident = labels[labels["split"] != "uncertain"]
    for c in CLASS_NAMES:
        ids = confident.loc[confident["label"] == c, "objid"].to_numpy()
        wanted[c] = [int(i) for i in rng.permutation(ids)[: per_class * 3]]
    all_ids = {i for ids in wanted.values() for i in ids}
    found = {objid: decode(jpeg, size) for objid, jpeg in read_chunks(chunk_tars, all_ids).items()}
    fig, axes = plt.subplots(len(CLASS_NAMES), per_class, figsize=(1.4 * per_class, 1.55 * len(CLASS_NAMES)), squeeze=False)
    for r, c in enumerate(CLASS_NAMES):
        ids = [i for i in wanted[c] if i in found][:per_class]
        for k in range(per_class):
            ax = axes[r][k]
            ax.axis("off")
            if k < len(ids):
                ax.imshow(found[ids[k]])
        axes[r][0].set_title(CLASS_LABELS[c], loc="left", fontsize=10)
    fig.tight_layout()
    return fig


CLASS_COLOURS = {"elliptical": "#d62728", "face_on_spiral": "#1f77b4", "edge_on_spiral": "#2ca02c", "merger": "#9467bd"}


def sky_map(labels: pd.DataFrame, predicted: pd.DataFrame):
    """The galaxies on the sky: an all-sky Mollweide map (east left, right ascension in hours) and a
    close-up of the footprint; galaxies with a network class coloured by it, the test galaxies
    ringed, the others grey. ``predicted``: objid, predicted, is_test."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from matplotlib.lines import Line2D
    from matplotlib.ticker import FuncFormatter

    positions = labels.set_index("objid")[["ra", "dec"]]
    coords = SkyCoord(ra=positions["ra"].to_numpy() * u.deg, dec=positions["dec"].to_numpy() * u.deg, frame="icrs")
    mean_ra = np.degrees(np.arctan2(np.sin(coords.ra.radian).mean(), np.cos(coords.ra.radian).mean()))
    centre = (round(mean_ra / 15) * 15) % 360  # the map centred on the galaxies, at a whole hour of right ascension
    lon = -(coords.ra - centre * u.deg).wrap_at(180 * u.deg).radian  # east to the left, as on the sky
    lat = coords.dec.radian
    row = pd.Series(np.arange(len(positions)), index=positions.index)
    shown = predicted[predicted["objid"].isin(positions.index)]
    at = row[shown["objid"]].to_numpy()
    fig = plt.figure(figsize=(12, 5.2))
    ax_sky = fig.add_subplot(1, 2, 1, projection="mollweide")
    ax_zoom = fig.add_subplot(1, 2, 2)
    others = np.setdiff1d(np.arange(len(positions)), at)
    ra_near_centre = centre - np.degrees(lon)  # continuous across RA 0 for the close-up; labelled modulo 360
    for ax, x, y in ((ax_sky, lon, lat), (ax_zoom, ra_near_centre, positions["dec"].to_numpy())):
        ax.scatter(x[others], y[others], s=3, c="#c8c8c8", lw=0, label="no network class shown")
        for name in CLASS_NAMES:
            for is_test, size, edge in ((False, 9, "none"), (True, 26, "black")):
                pick = at[(shown["predicted"].to_numpy() == name) & (shown["is_test"].to_numpy() == is_test)]
                ax.scatter(x[pick], y[pick], s=size, c=CLASS_COLOURS[name], edgecolors=edge, linewidths=0.6)
        ax.grid(alpha=0.3)
    ticks = np.radians(np.arange(-150, 181, 30))
    ax_sky.set_xticks(ticks[:-1])
    ax_sky.set_xticklabels([])
    label_lat = np.radians(np.clip(np.degrees(lat.min()) - 10, -75, 60))  # right ascension labelled below the galaxies
    for t in ticks[1:-1]:
        ax_sky.text(t, label_lat, f"{round((centre - np.degrees(t)) % 360 / 15) % 24}h", fontsize=8, color="#555", ha="center", va="top")
    ax_sky.set_title("All sky (Mollweide, ICRS)", fontsize=10)
    ax_zoom.set_xlim(ax_zoom.get_xlim()[::-1])  # right ascension grows to the east, on the left
    ax_zoom.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v % 360:g}"))
    ax_zoom.set_aspect(1 / max(0.1, np.cos(np.radians(positions["dec"].median()))))
    ax_zoom.set_xlabel("right ascension (deg)")
    ax_zoom.set_ylabel("declination (deg)")
    ax_zoom.set_title("The survey area", fontsize=10)
    handles = [Line2D([], [], ls="", marker="o", ms=6, color=CLASS_COLOURS[c], label=CLASS_LABELS[c]) for c in CLASS_NAMES]
    handles += [
        Line2D([], [], ls="", marker="o", ms=7, color="white", markeredgecolor="black", label="test galaxy (ringed)"),
        Line2D([], [], ls="", marker="o", ms=4, color="#c8c8c8", label="trained on, or no cutout"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=6, frameon=False, fontsize=9, title="colour: the network's class")
    fig.subplots_adjust(left=0.04, right=0.98, top=0.92, bottom=0.2, wspace=0.15)
    return fig


SORTABLE = """<script>
document.querySelectorAll('table.sortable th').forEach(function (th) {
  var col = th.cellIndex;
  th.style.cursor = 'pointer';
  th.title = 'click to sort';
  th.addEventListener('click', function () {
    var body = th.closest('table').tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var asc = th.getAttribute('data-order') !== 'asc';
    function compare(x, y) {  // numbers as numbers (long integer ids digit by digit), text as text
      if (/^[0-9]+$/.test(x + y) && x.length !== y.length) return x.length - y.length;
      if (/^[0-9]+$/.test(x + y)) return x.localeCompare(y);
      var nx = Number(x), ny = Number(y);
      return (x === '' || y === '' || isNaN(nx) || isNaN(ny)) ? x.localeCompare(y) : nx - ny;
    }
    rows.sort(function (a, b) {
      var cmp = compare(a.cells[col].textContent, b.cells[col].textContent);
      return asc ? cmp : -cmp;
    });
    rows.forEach(function (r) { body.appendChild(r); });
    th.setAttribute('data-order', asc ? 'asc' : 'desc');
  });
});
</script>"""


def uncertain_table(uncertain: pd.DataFrame, labels: pd.DataFrame) -> str:
    """Every uncertain galaxy compared: position, votes, human fraction beside network probability per class; sortable."""
    frame = uncertain.merge(labels[["objid", "ra", "dec", "nvote"]], on="objid", how="left")
    human = frame[[f"human_p_{c}" for c in CLASS_NAMES]].to_numpy(float)
    network = frame[[f"p_{c}" for c in CLASS_NAMES]].to_numpy(float)
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
    return table(rows, header).replace("<table>", "<table class='sortable small'>", 1)


def network_drawing(shapes: list[tuple[str, tuple[int, ...]]], input_size: int):
    """Boxes left to right, one per layer, height growing with the layer's size (log scale), its
    output shape under it and its name above, a dropout folded into the layer it follows."""
    items: list[tuple[str, tuple[int, ...]]] = [("input", (3, input_size, input_size))]
    for name, shape in shapes:
        if name.startswith("dropout") and items:
            items[-1] = (items[-1][0] + ", + " + name, items[-1][1])
        else:
            items.append((name, shape))
    items.append(("softmax", (4,)))
    fig, ax = plt.subplots(figsize=(max(8.0, 1.15 * len(items)), 3.6))
    sizes = [float(np.prod(shape)) for _, shape in items]
    lo, hi = np.log10(min(sizes)), np.log10(max(sizes))
    colours = {
        "conv": "#4c72b0",
        "max ": "#8fa8d8",
        "dens": "#dd8452",
        "maxo": "#c44e52",
        "inpu": "#55a868",
        "soft": "#55a868",
        "stem": "#4c72b0",
        "resi": "#64b5cd",
        "glob": "#8fa8d8",
    }
    for k, ((name, shape), size) in enumerate(zip(items, sizes, strict=True)):
        h = 0.35 + 1.6 * (np.log10(size) - lo) / max(1e-9, hi - lo)
        ax.add_patch(plt.Rectangle((k - 0.38, -h / 2), 0.76, h, color=colours.get(name[:4], "#999"), alpha=0.85))
        ax.text(k, -h / 2 - 0.12, " x ".join(str(v) for v in shape), ha="center", va="top", fontsize=7)
        label = name.replace("stem: ", "stem\n").replace(", ", "\n").replace(" (", "\n(")
        ax.text(k, h / 2 + 0.1, label, ha="center", va="bottom", fontsize=6.5, linespacing=1.15)
        if k:
            ax.annotate("", xy=(k - 0.4, 0), xytext=(k - 0.6, 0), arrowprops={"arrowstyle": "->", "color": "#444"})
    ax.set_xlim(-0.6, len(items) - 0.4)
    ax.set_ylim(-1.55, 2.25)
    ax.axis("off")
    fig.tight_layout()
    return fig


def result_section(metrics: dict, votes: str) -> str:
    """The headline, in words: balanced accuracy first (what it means), accuracy, and every class
    the network never predicts or never gets right, named beside them."""
    per_class = metrics["per_class"]
    cm = np.array(metrics["confusion_matrix"])
    never_predicted = [c for i, c in enumerate(CLASS_NAMES) if cm[:, i].sum() == 0 and per_class[c]["support"]]
    never_right = [c for i, c in enumerate(CLASS_NAMES) if cm[i, i] == 0 and per_class[c]["support"] and c not in never_predicted]
    text = (
        f"<p>Balanced accuracy <b>{metrics['balanced_accuracy']}</b> on {metrics['n_test']} test galaxies never used in training "
        f"(labels from {votes}). Balanced accuracy is the mean of the four classes' recalls (the share of each class's "
        "galaxies the network gets right), so a rare class such as the mergers counts as much as a common one; "
        f"plain accuracy, the share of all test galaxies classified right, is {metrics['accuracy']} "
        + (
            f"({metrics['accuracy_single_view']} from a single view, without averaging the 8 rotations and flips).</p>"
            if metrics.get("tta", True)
            else "(one view of each galaxy: test-time averaging is off, evaluate.tta).</p>"
        )
    )
    text += (
        f"<p class='note'>These figures are this run's test split: one seeded draw of {metrics['n_test']} galaxies, so they move "
        "by a few hundredths from one split to another. The figures the README quotes for the recipe are its yardstick instead, "
        "a 5-fold cross-validation over every demo galaxy (benchmarks/accuracy.py, docs/benchmarks.md): judge the recipe by "
        "those, and this run by these.</p>"
    )
    cal, merger = metrics.get("calibration", {}), metrics.get("merger", {})
    if "uncalibrated" in cal:
        text += (
            f"<p>Probabilities are calibrated: expected calibration error {cal['expected_calibration_error']} on the test split "
            f"({cal['uncalibrated']['expected_calibration_error']} before calibration), so a class given probability 0.8 is "
            "right about 8 times in 10.</p>"
        )
    if merger.get("threshold") is not None:
        found = (
            f"finds {merger['recall']:.2f} of the {merger['test_mergers']} test mergers"
            if merger.get("recall") is not None
            else "has no test merger to find"
        )
        prec = (
            f"{merger['precision']:.2f} of its {merger['candidates']} candidates are mergers"
            if merger.get("precision") is not None
            else "it flags no test galaxy"
        )
        text += (
            f"<p>Mergers: a galaxy with p_merger &ge; {merger['threshold']:.3f} is a <i>merger candidate</i> (the threshold that finds "
            f"{merger['recall_target']:.0%} of the validation mergers). On the test split it {found}; {prec}.</p>"
        )
    for c in never_predicted:
        text += (
            f"<p class='note'><b>The network never predicts {CLASS_LABELS[c]}</b>: none of the {per_class[c]['support']} "
            f"test {CLASS_LABELS[c]}s is found (recall 0) and no galaxy is called one (precision undefined, shown as 0). "
            "Its accuracy above holds for the other classes only.</p>"
        )
    for c in never_right:
        text += f"<p class='note'><b>No test {CLASS_LABELS[c]} is classified right</b> (recall 0 of {per_class[c]['support']}).</p>"
    return text


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


def network_paragraph(saved: dict, model, n_params: int) -> str:
    recipe = saved.get("recipe", {})
    kind = recipe.get("recipe", model.kind)
    kept = (
        f"the weights of epoch {saved.get('best_epoch')} (lowest validation loss) kept"
        if kind == "study"
        else "the weights after the last epoch kept"
    )
    targets = (
        "the vote fractions of every galaxy with enough votes"
        if recipe.get("targets") == "votes"
        else "the class of the confident galaxies"
    )
    cal = saved.get("calibration", {})
    calibrated = (
        (
            f" Calibrated on {cal.get('val_galaxies')} validation galaxies: class-prior correction "
            f"{', '.join(f'{b:+.2f}' for b in cal.get('logit_bias', []))} "
            f"(logits of {', '.join(CLASS_LABELS[c] for c in CLASS_NAMES)}) and temperature {cal.get('temperature', 1):.3f}."
        )
        if cal.get("fitted")
        else " Not calibrated (train.calibrate: false)."
    )
    return (
        f"<p>Recipe <b>{html.escape(kind)}</b>: {RECIPE_WORDS.get(kind, '')}. It learns {targets}. {n_params:,} parameters; input "
        f"{model.input_size} x {model.input_size} x 3 crops; trained {saved.get('epochs_run')} epochs, {kept}.{calibrated}</p>"
    )


def save_png(fig, path: str | Path) -> str:
    """Write the figure to ``path`` and return it as a data URI for the page."""
    save_figure(fig, path)
    return png_data_uri(path)


def versions() -> dict[str, str]:
    out = {"nightskynet": __version__, "python": platform.python_version()}
    for name in ("snakemake", "torch", "numpy", "pandas", "pillow", "aiohttp", "matplotlib", "astropy"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


# The page counts its own images once loaded, so a browser (or a test driving one) can tell that
# every figure decoded: <body data-images-loaded="N/M">.
SELF_CHECK = """<script>
window.addEventListener('load', function () {
  var imgs = Array.prototype.slice.call(document.images);
  var ok = imgs.filter(function (i) { return i.complete && i.naturalWidth > 0; }).length;
  document.body.setAttribute('data-images-loaded', ok + '/' + imgs.length);
});
</script>"""


def table(rows: list[list[object]], header: list[str]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def figure(uri: str, caption: str) -> str:
    return f'<figure><img src="{uri}" alt="{html.escape(caption)}"><figcaption>{html.escape(caption)}</figcaption></figure>'


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{margin-bottom:.2em} h2{border-bottom:1px solid #ddd;padding-bottom:.2em;margin-top:1.8em}
table{border-collapse:collapse;margin:.6em 0} td,th{border:1px solid #ccc;padding:.25em .6em;text-align:right}
th{background:#f3f3f3} td:first-child,th:first-child{text-align:left}
figure{margin:1em 0} figure img{max-width:100%} figcaption{color:#555;font-size:.92em}
.note{background:#fff6d5;border-left:4px solid #e0b000;padding:.5em .8em} .small{color:#666;font-size:.9em}
.small td,.small th{font-size:.85em}
pre{background:#f6f6f6;padding:.6em;overflow-x:auto;font-size:.85em}
"""


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
    for split in ("train", "val", "test"):
        part = (got["split"] == split) & got["downloaded"]
        rows.append([f"{split} galaxies", int(part.sum()), *per_class(part)])
    below_cut = got["downloaded"] & got["split"].isin(["train", "val"]) & (got["confidence"] < summary["threshold"] - 1e-9)
    if below_cut.any():
        rows.append(["of the train + val galaxies: below the cut, trained on their votes", int(below_cut.sum()), *per_class(below_cut)])
    held = (got["split"] == "uncertain") & got["downloaded"]
    rows.append(["uncertain galaxies held out (compared with the votes)", int(held.sum()), *blank])
    images = shards_manifest["images"]["train"]
    rows.append(["augmented training images", images, *[shards_manifest["copies_per_class"][c]["images"] for c in CLASS_NAMES]])
    return rows


SIMULATED_NOTE = (
    '<p class="note">Demo sky: the images are real SDSS galaxies, but their <b>votes and sky positions are simulated</b> '
    "(from each galaxy's Galaxy Zoo 1 class). Every vote fraction on this page is a simulated vote.</p>"
)
SCALED_NOTE = (
    '<p class="note">Scaled demo sky (demo.scale_to: {n:,}): {copies:,} of these galaxies are <b>copies of the 1,500 bundled '
    "images</b> under made-up objids and positions, so the same images sit in the training, validation and test splits. "
    "The scores below measure nothing about the classifier: this sky is for measuring the pipeline's time, memory and disk.</p>"
)
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
    "morphology_disagreements": (
        "The galaxies (never trained on) where the network and the volunteers differ most, in any class: that class, "
        "the vote fraction and the network's probability, the split and the number of votes, objid and position."
    ),
}


def header_section(settings: dict) -> list[str]:
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
    return [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Night Sky Net report</title><style>{STYLE}</style></head>",
        "<body><h1>Night Sky Net: galaxy morphology report</h1>",
        f"<p class='small'>Source: {html.escape(source)}. nightskynet {__version__}, Python {platform.python_version()}.</p>",
        SIMULATED_NOTE if demo else "",
        SCALED_NOTE.format(n=scaled, copies=scaled - 1500) if scaled else "",
    ]


def downloads_phrase(manifests: pd.DataFrame) -> str:
    """The scrape's outcomes counted (``ok 58, missing 2``), HTML-escaped: a manifest's status is text from a file."""
    return html.escape(", ".join(f"{k} {v}" for k, v in sorted(manifests["status"].value_counts().to_dict().items())))


def data_section(inputs: dict, summary: dict, settings: dict, votes: str, examples_png: str) -> list[str]:
    catalog = pd.read_csv(inputs["catalog"], dtype={"objid": "int64"})
    labels = pd.read_csv(inputs["labels"], dtype={"objid": "int64"})
    manifests = pd.concat([pd.read_csv(p) for p in inputs["scrape_manifests"]], ignore_index=True)
    shards_manifest = json.loads(Path(inputs["shards_manifest"]).read_text())
    size = settings["scrape"]["size"]
    grid = example_grid(labels, inputs["chunk_tars"], settings["report"]["examples_per_class"], size, 0)
    return [
        "<h2>Data through the pipeline</h2>",
        f"<p>Labels from {votes}: four classes renormalised after dropping don't-know; a galaxy is confident when its top class "
        f"reaches {summary['threshold']}. Catalog rows whose votes were all don't-know: {summary['undefined_all_dont_know']}. "
        f"Cutout downloads: {downloads_phrase(manifests)}.</p>",
        table(
            count_rows(labels, catalog, summary, manifests, shards_manifest), ["stage", "total", *[CLASS_LABELS[c] for c in CLASS_NAMES]]
        ),
        "<h2>Example galaxies</h2>",
        figure(
            save_png(grid, examples_png),
            f"Confident galaxies of each class, as downloaded ({size} x {size} px cutouts; class from {votes}).",
        ),
    ]


def network_section(inputs: dict, figures: dict) -> list[str]:
    model, saved = load_model(inputs["model"])
    shapes = layer_table(model)
    n_params = sum(p.numel() for p in model.parameters())
    history = pd.read_csv(inputs["history"])
    return [
        "<h2>The network</h2>",
        network_paragraph(saved, model, n_params),
        figure(save_png(network_drawing(shapes, model.input_size), figures["network"]), CAPTIONS["network"]),
        table([[name, " x ".join(str(s) for s in shape)] for name, shape in shapes], ["layer", "output shape"]),
        "<h2>Training</h2>",
        figure(save_png(training_curves(history), figures["curves"]), CAPTIONS["curves"]),
    ]


def evaluation_section(metrics: dict, eval_figures: dict, votes: str) -> list[str]:
    per_class = metrics["per_class"].items()
    mistakes = metrics.get("most_confident_mistakes", [])
    ece = metrics["calibration"]["expected_calibration_error"]
    return [
        "<h2>Evaluation</h2>",
        figure(png_data_uri(eval_figures["confusion"]), CAPTIONS["confusion"]),
        figure(png_data_uri(eval_figures["roc_pr"]), CAPTIONS["roc_pr"]),
        table(
            [[CLASS_LABELS[c], v.get("roc_auc"), v.get("average_precision")] for c, v in per_class],
            ["class", "ROC AUC", "average precision"],
        ),
        figure(png_data_uri(eval_figures["reliability"]), CAPTIONS["reliability"].format(ece=ece)),
        figure(
            png_data_uri(eval_figures["mistakes"]),
            f"The {len(mistakes)} test galaxies the network got wrong most confidently: Galaxy Zoo class ({votes}), "
            "the network's class and its probability, objid and position.",
        ),
    ]


def _fixed(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def catalog_section(inputs: dict, votes: str) -> list[str]:
    """Every galaxy the query returned, classified: what the catalog holds and how it compares with the volunteers."""
    summary = json.loads(Path(inputs["morphology_comparison"]).read_text())
    by = summary["by_split_and_status"]
    splits = [s for s in ("train", "val", "test", "uncertain", "none") if s in by]
    # only the statuses that occur: a column of zeros would say nothing
    every = ("classified", "no_source", "point_source", "artefact", "missing", "rejected", "failed")
    statuses = [t for t in every if any(by[s].get(t) for s in splits)]
    rows = [[s, *[by[s].get(t, 0) for t in statuses], sum(by[s].values())] for s in splits]
    rows.append(["all", *[sum(by[s].get(t, 0) for s in splits) for t in statuses], summary["galaxies"]])
    unclassified = summary["galaxies"] - sum(by[s].get("classified", 0) for s in splits)
    left_out = (
        "every galaxy had a cutout with a galaxy at its centre, so every one is classified"
        if unclassified == 0
        else f"{unclassified:,} galaxies are not classified (their status says why)"
    )
    agreement = summary["top_class_agreement"]
    views = "the mean over the 8 D4 views" if summary["tta"] else "one view (morphology.tta: false)"
    return [
        f"<h2>The catalog: every galaxy against its volunteers ({html.escape(votes)})</h2>",
        f"<p>All {summary['galaxies']:,} galaxies the query returned, confident or not, with the network's calibrated "
        f"probabilities ({views}) beside their renormalised vote fractions, are in <code>morphology/catalog.csv</code> "
        "(and its FITS twin). A galaxy without a cutout, or whose cutout shows no source at its centre, a star, or a trail, "
        f"bleed or bright star's light there, has a status and no probabilities; here {left_out}. Galaxies per split "
        "(train, val: trained on; test, uncertain: held out; none: not used) and status:</p>",
        table(rows, ["split", *statuses, "all"]),
        f"<p>Compared with the volunteers on the {summary['compared']:,} classified galaxies the network never trained on "
        f"(test, uncertain and none): the network's most probable class is the volunteers' most voted one for "
        f"{'n/a' if agreement is None else f'{agreement:.1%}'} of them.</p>",
        table(
            [[CLASS_LABELS[c], _fixed(v["pearson_r"]), _fixed(v["mean_abs_diff"])] for c, v in summary["per_class"].items()],
            ["class", "Pearson r", "mean |network - votes|"],
        ),
        figure(png_data_uri(inputs["morphology_vs_votes"]), CAPTIONS["morphology_vs_votes"]),
        figure(png_data_uri(inputs["morphology_by_votes"]), CAPTIONS["morphology_by_votes"]),
        figure(png_data_uri(inputs["morphology_disagreements"]), CAPTIONS["morphology_disagreements"]),
    ]


def sky_section(inputs: dict, figures: dict, votes: str) -> list[str]:
    labels = pd.read_csv(inputs["labels"], dtype={"objid": "int64"})
    test = pd.read_csv(inputs["predictions_test"], dtype={"objid": "int64"})
    uncertain = pd.read_csv(inputs["predictions_uncertain"], dtype={"objid": "int64"})
    predicted = pd.concat(
        [test[["objid", "predicted"]].assign(is_test=True), uncertain[["objid", "predicted"]].assign(is_test=False)], ignore_index=True
    )
    return [
        "<h2>On the sky</h2>",
        figure(
            save_png(sky_map(labels, predicted), figures["sky_map"]),
            f"Where the {len(labels):,} galaxies are (ICRS), coloured by the network's class: the {len(test)} test galaxies ringed, "
            f"the {len(uncertain)} uncertain galaxies compared with the votes as dots, the galaxies trained on (and any without "
            "a cutout) in grey. Left: the whole sky, east to the left; right: the survey area.",
        ),
        f"<details><summary>All {len(uncertain):,} uncertain galaxies: the human vote fractions ({html.escape(votes)}) beside the "
        "network's probabilities, largest disagreement first (click a column to sort)</summary>",
        uncertain_table(uncertain, labels),
        "</details>",
    ]


def run_section(settings: dict) -> list[str]:
    return [
        "<h2>Run</h2>",
        table([[k, v] for k, v in versions().items()], ["software", "version"]),
        "<details><summary>Settings of this run</summary>",
        f"<pre>{html.escape(json.dumps(settings, indent=2))}</pre></details>",
        f"<h2>Credits</h2><p class='small'>{html.escape(CREDIT)}</p>",
        SORTABLE,
        SELF_CHECK,
        "</body></html>",
    ]


def run(*, inputs: dict, eval_figures: dict, figures: dict, out_html: str, settings: dict) -> None:
    """Stage ``report``: ``eval_figures`` are the evaluate stage's PNGs by name (confusion, roc_pr,
    reliability, mistakes); ``figures`` the PNGs this stage draws (examples,
    network, curves, sky_map)."""
    votes = votes_phrase(settings["source"])
    metrics = json.loads(Path(inputs["metrics"]).read_text())
    summary = json.loads(Path(inputs["labels_summary"]).read_text())
    result = [
        "<h2>Result</h2>",
        result_section(metrics, votes),
        table(
            [[CLASS_LABELS[c], v["precision"], v["recall"], v["f1"], v["support"]] for c, v in metrics["per_class"].items()],
            ["class", "precision", "recall", "F1", "test galaxies"],
        ),
        "<p class='small'>Precision and recall here count a galaxy's most probable class; the merger candidates above use "
        "their own, lower threshold on p_merger, so they find more of the mergers than the merger row's recall says.</p>",
    ]
    parts = [
        *header_section(settings),
        *result,
        *data_section(inputs, summary, settings, votes, figures["examples"]),
        *network_section(inputs, figures),
        *evaluation_section(metrics, eval_figures, votes),
        *catalog_section(inputs, votes),
        *sky_section(inputs, figures, votes),
        *run_section(settings),
    ]
    write_text_atomic(out_html, "\n".join(parts))
    log.info("wrote %s", out_html)
