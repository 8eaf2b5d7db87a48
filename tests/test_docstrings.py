"""Every public class, function and method has a numpydoc docstring that
numpydoc's own validator accepts (as scikit-learn checks its own).

Checked for all: the summary line, the Parameters section against the
signature (every parameter documented, none unknown, each with a type and a
description) and the Returns section. Classes and functions also need
Examples (methods may leave them to the class); warnings need none. Not
checked: See Also (SA01) and an extended summary (ES01), and the line-break
conventions GL01/GL02.
"""

import inspect

import pytest

numpydoc_validate = pytest.importorskip("numpydoc.validate")

import skre  # noqa: E402
import skre.datasets  # noqa: E402
import skre.exceptions  # noqa: E402
import skre.metrics  # noqa: E402
import skre.plotting  # noqa: E402
import skre.priors  # noqa: E402

MODULES = [
    skre,
    skre.priors,
    skre.metrics,
    skre.plotting,
    skre.datasets,
    skre.exceptions,
]
IGNORED = {"SA01", "ES01", "GL01", "GL02"}
NOT_OURS = {"skre.exceptions.ConvergenceWarning"}  # scikit-learn's, re-exported
INSTANCES = {"skre.metrics.joint_log_score"}  # its class and __call__ are checked


def public_objects():
    for module in MODULES:
        for name in module.__all__:
            obj = getattr(module, name)
            path = f"{module.__name__}.{name}"
            if inspect.ismodule(obj) or path in NOT_OURS | INSTANCES:
                continue
            yield path, obj, "class" if inspect.isclass(obj) else "function"
            if not inspect.isclass(obj):
                continue
            for meth, member in inspect.getmembers(obj, inspect.isfunction):
                if (meth.startswith("_") and meth != "__call__") or not (
                    member.__module__.startswith("skre")
                ):
                    continue
                yield f"{path}.{meth}", member, "method"


CASES = sorted((p, kind) for p, _, kind in public_objects())


def test_every_public_module_lists_what_it_exports():
    assert len(CASES) > 80


@pytest.mark.parametrize("path, kind", CASES, ids=[p for p, _ in CASES])
def test_docstring(path, kind):
    errors = [
        (code, msg)
        for code, msg in numpydoc_validate.validate(path)["errors"]
        if code not in IGNORED
    ]
    if kind == "method" or path.startswith("skre.exceptions"):
        errors = [(c, m) for c, m in errors if c != "EX01"]
    assert not errors, f"{path}: {errors}"
