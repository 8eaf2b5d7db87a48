import json
from pathlib import Path

import pandas as pd
import pytest

REFERENCE = Path(__file__).parent / "reference"


def pytest_configure(config):
    """Property tests draw 200 examples each, 50 in the quick tier
    (``-m "not slow"``), whose target is two minutes on two cores."""
    try:
        from hypothesis import settings
    except ImportError:  # only tests/test_properties.py needs it
        return
    settings.register_profile("full", max_examples=200)
    settings.register_profile("quick", max_examples=50)
    quick = "not slow" in (config.getoption("markexpr", "") or "")
    settings.load_profile("quick" if quick else "full")


@pytest.fixture(scope="session")
def reference():
    """Load a JSON of R reference numbers from tests/reference (see its README)."""

    def load(name):
        return json.loads((REFERENCE / name).read_text())

    return load


@pytest.fixture(scope="session")
def reference_data():
    def load(name):
        return pd.read_csv(REFERENCE / "data" / name)

    return load


@pytest.fixture(scope="session")
def client():
    """One Dask LocalCluster (2 worker processes x 1 thread) for every Dask
    test of the session."""
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()
