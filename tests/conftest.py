import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "workflow"))

SKY_DIR = REPO / "resources" / "demo_sky"


@pytest.fixture(scope="session")
def repo() -> Path:
    return REPO


@pytest.fixture(scope="session")
def demo_sky_url():
    """The real demo SkyServer, in its own process, on a free loopback port (capped at 25 rows per answer)."""
    from nightskynet.demo_server import running_demo_sky

    with running_demo_sky(SKY_DIR, seed=1, max_rows=25) as url:
        yield url
