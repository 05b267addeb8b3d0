"""What a training recipe is, in one place: typed settings built from the schema-validated ``train`` config.

Two recipes (config ``train.recipe``), each with its own section: ``study`` (the paper's network and
schedule: Adam, early stopping on the val loss after ``patience`` epochs, the stored augmented images
as they are) and ``resnet`` (AdamW under a one-cycle schedule, fresh D4 views and shifts each epoch,
classes drawn so mergers make ``merger_share`` of each epoch). ``Recipe.settings`` is the plain dict
the model file records and a training's checkpoint key hashes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .architecture import Architecture, recipe_architecture
from .errors import SettingsError

RECIPES = ("resnet", "study")


@dataclass(frozen=True)
class Recipe:
    name: str  # "resnet" or "study"
    targets: str  # "votes" (the vote fractions) or "hard" (the class of confident galaxies)
    seed: int
    epochs: int
    batch_size: int
    learning_rate: float
    weight_decay: float
    architecture: Architecture
    # the resnet recipe's own; the study's recipe has none of them (its values here change nothing it does)
    label_smoothing: float = 0.0
    merger_share: float = 0.0
    shift: int = 0  # px of random shift of each fresh view
    ema: float = 0.0  # decay of the weights' moving average (0: none)
    # the study's own
    patience: int = 0  # epochs without a better val loss before stopping
    settings: dict = field(default_factory=dict, compare=False)

    @property
    def is_study(self) -> bool:
        return self.name == "study"

    @property
    def fresh_views(self) -> bool:
        """New D4 views and shifts of every image each epoch (resnet), or the stored augmented images (study)."""
        return not self.is_study

    @property
    def early_stopping(self) -> bool:
        return self.is_study

    @classmethod
    def from_config(cls, train: dict) -> Recipe:
        """The recipe in use from the ``train`` settings (schema-validated: every key is there and of its type)."""
        name = train["recipe"]
        if name not in RECIPES:
            raise SettingsError(f"train.recipe = {name!r}: known recipes are {', '.join(RECIPES)}")
        section = train[name]
        own = (
            {"patience": int(section["patience"])}
            if name == "study"
            else {
                "label_smoothing": float(section["label_smoothing"]),
                "merger_share": float(section["merger_share"]),
                "shift": int(section["shift"]),
                "ema": float(section["ema"]),
            }
        )
        return cls(
            name=name,
            targets=train["targets"],
            seed=int(train["seed"]),
            epochs=int(section["epochs"]),
            batch_size=int(section["batch_size"]),
            learning_rate=float(section["learning_rate"]),
            weight_decay=float(section["weight_decay"]),
            architecture=recipe_architecture(train),
            settings={"recipe": name, "targets": train["targets"], "seed": train["seed"], **section},
            **own,
        )
