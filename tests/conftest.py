import json
from pathlib import Path

import pandas as pd
import pytest

REFERENCE = Path(__file__).parent / "reference"


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
