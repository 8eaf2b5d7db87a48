"""Every warning skre raises is an error in the test suite.

The suite's items (tests/ and the doctests of skre/) run with the filters of
:data:`SKRE_WARNINGS_ARE_ERRORS`, so a warning that no test expects fails the
test that raised it: a test asserts the warnings it expects (``pytest.warns``)
or filters them with its reason (a ``filterwarnings`` mark, which takes
precedence over these). tests/test_first_contact.py checks that the list names
every category of ``skre.exceptions``.

The user guide's doctests (``pytest --doctest-glob="*.rst" docs``) run under
the same rules: a page that shows a fit which warns shows the warning too.
"""

from pathlib import Path

import pytest

SKRE_WARNINGS_ARE_ERRORS = [
    f"error::{category}"
    for category in (
        "skre.exceptions.BoundaryWarning",
        "skre.exceptions.CollinearityWarning",
        "skre.exceptions.GroupLabelWarning",
        "skre.exceptions.QuadratureWarning",
        "skre.exceptions.SampleWeightWarning",
        "skre.exceptions.SeparationWarning",
        "sklearn.exceptions.ConvergenceWarning",
    )
]
SUITE = tuple(Path(__file__).parent / folder for folder in ("tests", "skre", "docs"))


def pytest_collection_modifyitems(config, items):
    for item in items:
        if any(item.path.is_relative_to(folder) for folder in SUITE):
            # first among the item's marks, so that its own marks and those of
            # its class and module take precedence (pytest applies them in turn)
            for rule in SKRE_WARNINGS_ARE_ERRORS:
                item.add_marker(pytest.mark.filterwarnings(rule), append=False)
