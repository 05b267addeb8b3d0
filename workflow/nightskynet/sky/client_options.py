"""The cutout client's settings, declared once: config ``scrape.<key>``, the ``nightskynet`` command's option, the
rule's resource (how a job runs, never a param: changing one reruns nothing) and the key of the dict the client reads.

The command's options (``cli.add_client_options``), the resources and shell options of the scrape and predict rules
(``client_resources``, ``client_options`` in workflow/rules/common.smk) and the client itself
(``cutout_client.download_all``) are all made from ``CLIENT_OPTIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ClientOption:
    key: str  # config scrape.<key>, the resource's name, the client dict's key
    kind: str  # "positive_int", "non_negative_float" or "positive_float": how the command parses it
    help: str = ""

    @property
    def flag(self) -> str:
        return "--" + self.key.replace("_", "-")

    def as_resource(self, value):
        """The value as a Snakemake resource: floats travel as text (Snakemake rounds float resources to integers)."""
        return str(value) if self.kind.endswith("float") else value


CLIENT_OPTIONS = (
    ClientOption("concurrency", "positive_int", "requests in flight"),
    ClientOption("max_rate", "non_negative_float", "requests a second (0: no limit)"),
    ClientOption("timeout_s", "positive_float", "seconds per request"),
    ClientOption("max_attempts", "positive_int", "tries per cutout"),
    ClientOption("backoff_base_s", "non_negative_float", "first wait before a retry, doubled each time"),
    ClientOption("backoff_max_s", "non_negative_float", "longest wait before a retry"),
)
CLIENT_KEYS = tuple(option.key for option in CLIENT_OPTIONS)
