"""The four morphology classes, in the order every array, column and model output uses."""

CLASS_NAMES: tuple[str, ...] = ("elliptical", "face_on_spiral", "edge_on_spiral", "merger")
CLASS_INDEX: dict[str, int] = {name: i for i, name in enumerate(CLASS_NAMES)}
PROB_COLUMNS: tuple[str, ...] = tuple(f"p_{name}" for name in CLASS_NAMES)
CLASS_LABELS: dict[str, str] = {
    "elliptical": "elliptical",
    "face_on_spiral": "face-on spiral",
    "edge_on_spiral": "edge-on spiral",
    "merger": "merger",
}
