"""The report: its sky map, its table of the uncertain galaxies (on a small made-up sample) and its sections'
words, rendered from the page's template (stages/templates/report.html.j2) one section at a time."""

import jinja2
import numpy as np
import pandas as pd
import pytest

from nightskynet.core.vocabulary import CLASS_NAMES
from nightskynet.stages.report import render_section, sky_map, uncertain_table


def sample(n=40, seed=0):
    rng = np.random.default_rng(seed)
    labels = pd.DataFrame(
        {
            "objid": np.arange(n, dtype=np.int64) + 587722983360102542,
            "ra": rng.uniform(-15, 15, n) % 360,  # across RA 0
            "dec": rng.uniform(-5, 30, n),
            "nvote": rng.integers(20, 70, n),
        }
    )
    human = rng.dirichlet(np.ones(4), 10)
    network = rng.dirichlet(np.ones(4), 10)
    uncertain = pd.DataFrame({"objid": labels["objid"].iloc[:10].to_numpy()})
    for k, c in enumerate(CLASS_NAMES):
        uncertain[f"human_p_{c}"], uncertain[f"p_{c}"] = human[:, k], network[:, k]
    uncertain["predicted"] = [CLASS_NAMES[i] for i in network.argmax(1)]
    return labels, uncertain


def test_the_uncertain_table_holds_every_galaxy_largest_disagreement_first():
    labels, uncertain = sample()
    page = render_section("table", uncertain_table(uncertain, labels))
    assert page.startswith('<table class="sortable small">')
    rows = page.split("<tbody>")[1].split("</tr>")[:-1]
    assert len(rows) == 10
    gaps = [float(r.split("<td>")[5].split("<")[0]) for r in rows]
    assert gaps == sorted(gaps, reverse=True)
    first = uncertain.set_index("objid").loc[int(rows[0].split("<td>")[1].split("<")[0])]
    expected = max(abs(first[f"p_{c}"] - first[f"human_p_{c}"]) for c in CLASS_NAMES)
    assert gaps[0] == round(expected, 3)
    assert str(labels["objid"].iloc[0]) in page  # the full 64-bit objid, not a rounded float


def test_the_sky_map_draws_every_galaxy_on_both_panels_across_ra_zero():
    labels, uncertain = sample()
    predicted = pd.concat(
        [
            uncertain[["objid", "predicted"]].assign(is_test=False),
            pd.DataFrame({"objid": labels["objid"].iloc[10:20], "predicted": "merger", "is_test": True}),
        ]
    )
    fig = sky_map(labels, predicted)
    sky, zoom = fig.axes
    for ax in (sky, zoom):
        drawn = sum(len(c.get_offsets()) for c in ax.collections)
        assert drawn == len(labels)
    lon = np.concatenate([c.get_offsets()[:, 0] for c in sky.collections])
    assert np.ptp(lon) < np.radians(31)  # a footprint across RA 0 stays in one piece, centred
    ra = np.concatenate([c.get_offsets()[:, 0] for c in zoom.collections])
    assert np.ptp(ra) < 31 and zoom.get_xlim()[0] > zoom.get_xlim()[1]  # in one piece too; right ascension grows to the left


def test_a_scaled_demo_sky_says_its_galaxies_are_copies_and_its_scores_mean_nothing():
    from nightskynet.stages.report import header_section

    demo = {"source": "demo", "demo": {"scale_to": 0}, "sdss": {}}
    plain = render_section("header", header_section(demo))
    scaled = render_section("header", header_section({**demo, "demo": {"scale_to": 893_000}}))
    assert "simulated" in plain and "copies" not in plain
    assert "simulated" in scaled and "891,500 of these galaxies are <b>copies" in scaled and "measure nothing" in scaled
    sdss = render_section(
        "header", header_section({"source": "sdss", "sdss": {"base_url": "https://skyserver.sdss.org", "release": "dr17"}})
    )
    assert "simulated" not in sdss and "copies" not in sdss


def test_the_result_says_how_many_views_were_averaged():
    from nightskynet.stages.report import result_section

    cm = np.diag([5, 5, 5, 5]).tolist()
    per_class = {c: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 5} for c in CLASS_NAMES}
    metrics = {"balanced_accuracy": 1.0, "accuracy": 1.0, "accuracy_single_view": 0.9, "n_test": 20, "per_class": per_class}
    metrics["confusion_matrix"] = cm
    assert "0.9 from a single view" in render_section("result", result_section({**metrics, "views": 8}, "simulated votes"))
    off = render_section("result", result_section({**metrics, "views": 1, "accuracy_single_view": 1.0}, "simulated votes"))
    assert "one view of each galaxy" in off and "from a single view" not in off


def test_the_download_row_counts_every_galaxy_and_per_class_only_the_confident_ones():
    from nightskynet.stages.report import count_rows

    labels = pd.DataFrame(
        {
            "objid": [1, 2, 3, 4, 5],
            "label": ["elliptical", "elliptical", "merger", "merger", "face_on_spiral"],
            "confidence": [1.0, 0.96, 0.95, 0.6, 0.7],  # the last two below the cut, trained on their votes
            "split": ["train", "test", "val", "train", "uncertain"],
        }
    )
    manifests = pd.DataFrame({"objid": [1, 2, 3, 4, 5, 6, 7], "status": ["ok", "ok", "missing", "ok", "ok", "ok", "failed"]})
    summary = {"threshold": 0.95, "confident": 3, "uncertain_total": 2, "confident_by_class": dict.fromkeys(CLASS_NAMES, 0)}
    shards = {"images": {"train": 10}, "copies_per_class": {c: {"images": 0} for c in CLASS_NAMES}}
    rows = {r[0]: r[1:] for r in count_rows(labels, pd.DataFrame({"objid": range(7)}), summary, manifests, shards)}
    downloaded = next(v for k, v in rows.items() if k.startswith("cutouts downloaded"))
    # galaxy 6 has no label (every vote don't-know, or not kept) but its cutout downloaded; 3 (confident) did not
    assert downloaded == [5, 2, 0, 0, 0]


def test_every_value_from_a_file_is_escaped_by_the_template():
    from nightskynet.stages.report import downloads_phrase, render_figure, render_table

    phrase = downloads_phrase(pd.DataFrame({"status": ["ok", "ok", "<b>odd</b>"]}))
    assert phrase == "<b>odd</b> 1, ok 2"  # the value as it is; the page escapes it
    hostile = "<script>alert(1)</script>"
    values = {
        "votes": hostile,
        "threshold": 0.95,
        "all_dont_know": 0,
        "downloads": phrase,
        "counts": render_table([[hostile, 1]], ["stage", hostile]),
        "examples": render_figure('data:image/png;base64,AAAA" onerror="alert(1)', hostile),
    }
    page = render_section("data", values)
    assert "Cutout downloads: &lt;b&gt;odd&lt;/b&gt; 1, ok 2." in page
    assert "<script>" not in page and "<b>odd" not in page and '" onerror=' not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 5  # the votes, a header, a cell, alt and caption


def test_a_value_the_template_names_but_the_stage_did_not_prepare_is_an_error_not_a_blank():
    from nightskynet.stages.report import header_section

    values = header_section({"source": "demo", "demo": {"scale_to": 0}, "sdss": {}})
    del values["source"]
    with pytest.raises(jinja2.UndefinedError, match="source"):
        render_section("header", values)


def test_the_headline_says_it_is_one_split_not_the_yardstick():
    from nightskynet.stages.report import result_section

    per_class = {c: {"precision": 1.0, "recall": 1.0, "f1": 1.0, "support": 5} for c in CLASS_NAMES}
    metrics = {"balanced_accuracy": 1.0, "accuracy": 1.0, "accuracy_single_view": 0.9, "n_test": 20, "per_class": per_class}
    text = render_section(
        "result", result_section({**metrics, "views": 4, "confusion_matrix": np.diag([5, 5, 5, 5]).tolist()}, "simulated votes")
    )
    assert "one seeded draw of 20 galaxies" in text and "5-fold cross-validation" in text
