"""The networks' settings, typed, and whether they can work with a given crop (no PyTorch needed).

The values come from config.yaml (``train.study.model``, ``train.resnet``) and nowhere else; the
config validation asks ``check`` before any job runs, so a network that cannot take the crop of
``shards.crop`` is refused with the keys named instead of failing at the first training batch.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from ..core.errors import SettingsError

POOL_AFTER = (True, True, False, True)  # the study's network: 2 x 2 max pooling after conv 1, 2 and 4


@dataclass(frozen=True)
class StudyArchitecture:
    """The study's network: 4 conv layers (channels, kernels), 4 dense layers (dense; two maxout)."""

    channels: tuple[int, ...]
    kernels: tuple[int, ...]
    dense: tuple[int, ...]
    maxout_pieces: int
    dropout: float

    def feature_side(self, crop: int) -> int:
        """Side of the last feature map for a crop x crop input (valid convolutions, pooling after 1, 2, 4); < 1 when it vanishes."""
        side = crop
        for k, pool in zip(self.kernels, POOL_AFTER, strict=True):
            side = side - k + 1
            if side < 1:
                return side
            if pool:
                side //= 2
        return side

    def check(self, crop: int) -> None:
        if len(self.channels) != 4 or len(self.kernels) != 4 or len(self.dense) != 4:
            raise SettingsError(
                "train.study.model: the study's network has exactly 4 conv layers (channels, kernels) and 4 dense layers (dense)"
            )
        if self.feature_side(crop) < 1:
            raise SettingsError(
                f"train.study.model.kernels = {list(self.kernels)} shrink the {crop} px crop (shards.crop) to nothing; use "
                "smaller kernels or a larger crop"
            )


@dataclass(frozen=True)
class ResNetArchitecture:
    """The small residual network: stage widths width, 2, 4 and 8 x width; dropout before the last layer."""

    width: int
    dropout: float
    MIN_CROP = 16

    def check(self, crop: int) -> None:
        if crop < self.MIN_CROP:
            raise SettingsError(
                f"shards.crop = {crop}: the residual network (train.recipe: resnet) needs crops of at least {self.MIN_CROP} px"
            )


Architecture = StudyArchitecture | ResNetArchitecture


def architecture_of(network: str, settings: dict) -> Architecture:
    """The typed architecture of ``network`` from its settings (``train.study.model`` or ``train.resnet``)."""
    if network == "study":
        return StudyArchitecture(
            tuple(settings["channels"]),
            tuple(settings["kernels"]),
            tuple(settings["dense"]),
            int(settings["maxout_pieces"]),
            float(settings["dropout"]),
        )
    if network == "resnet":
        return ResNetArchitecture(int(settings["width"]), float(settings["dropout"]))
    raise SettingsError(f"unknown network {network!r} (known: study, resnet)")


def recipe_architecture(train: dict) -> Architecture:
    """The architecture of the recipe in use, from the ``train`` settings."""
    recipe = train["recipe"]
    return architecture_of(recipe, train["study"]["model"] if recipe == "study" else train["resnet"])


def as_settings(architecture: Architecture) -> dict:
    """Plain settings (lists, numbers) to store in a model file."""
    return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(architecture).items()}


def model_geometry(saved: dict) -> tuple[dict, int]:
    """(the geometry of the cutouts a saved model was trained on, the network's input crop in px)."""
    return dict(saved["cutout"]), int(saved["input_size"])
