"""The model file the train stage writes, read without PyTorch: its settings and its network as an ONNX graph.

``model.pt`` is a PyTorch archive, a zip: the weights and settings ``model.save_model`` pickles for
training, resuming and PyTorch on a GPU, and beside them, written from the same weights by the
same call, two members of its own that need no PyTorch to read:

* ``nightskynet/model.json``: every setting a consumer needs (the network and its architecture,
  the crop it takes, the cutout geometry it was trained on, the calibration, the merger
  threshold, the recipe, the classes);
* ``nightskynet/model.onnx``: the network as an ONNX graph, its input standardisation inside:
  uint8 crops (N, H, W, 3) in, the network's own logits (N, 4) and its penultimate features
  (N, F) out. The calibration stays in the JSON and is applied where the views are averaged
  (``inference.averaged_probabilities``), the one arithmetic every consumer shares.

Both are one artefact with the weights: nothing writes one without the others. A model file from
before the graph was stored has neither member; ``inference.open_engine`` then exports the graph
from the weights (with PyTorch) and says to retrain to skip that.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from ..core.errors import NightSkyNetError

INFO_MEMBER = "nightskynet/model.json"
GRAPH_MEMBER = "nightskynet/model.onnx"
WHAT = "a model.pt written by the train stage"


class ModelFileError(NightSkyNetError, ValueError):
    """A file that is not a model written by the train stage."""


def not_a_model(path: str | Path, why: str) -> ModelFileError:
    return ModelFileError(f"{path} is not a Night Sky Net model file ({WHAT}): {why}")


def archive_prefix(archive: zipfile.ZipFile) -> str | None:
    """The folder PyTorch's archive keeps its records in (``archive/`` for ours), or None when it is no PyTorch archive."""
    pickles = [name for name in archive.namelist() if name.endswith("/data.pkl") and name.count("/") == 1]
    return pickles[0][: -len("data.pkl")] if len(pickles) == 1 else None


def read_model_file(path: str | Path) -> tuple[dict | None, bytes | None]:
    """(settings, ONNX graph) of a model file; (None, None) for one written before they were stored.

    Raises ModelFileError, in words, for anything that is no model file at all.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(
            f"model file {path} does not exist" + (" (it is a folder)" if path.is_dir() else "") + "; train one with `snakemake`"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            prefix = archive_prefix(archive)
            if prefix is None:
                raise not_a_model(path, "a zip file, but not a PyTorch archive")
            names = set(archive.namelist())
            if prefix + INFO_MEMBER not in names:
                return None, None
            info = json.loads(archive.read(prefix + INFO_MEMBER))
            graph = archive.read(prefix + GRAPH_MEMBER) if prefix + GRAPH_MEMBER in names else None
    except zipfile.BadZipFile:
        raise not_a_model(path, "not a PyTorch archive (not even a zip file)") from None
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError):
        raise not_a_model(path, f"its {INFO_MEMBER} is damaged") from None
    if not isinstance(info, dict) or not {"network", "input_size", "cutout"} <= set(info) or graph is None:
        raise not_a_model(path, f"its {INFO_MEMBER} or {GRAPH_MEMBER} is incomplete")
    return info, graph
