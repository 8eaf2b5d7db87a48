"""Plots of the three pooling strategies (needs matplotlib, the ``plot`` extra).

Display objects in scikit-learn's style: ``Display.from_estimator(...)`` (or
``from_estimators``) computes what to draw from fitted estimators and calls
``plot(ax=None, **kwargs)``, which returns the display with ``ax_``,
``figure_`` and the drawn artists as attributes. matplotlib is imported only
when a plot is drawn, so importing this module does not need it.

- :class:`ShrinkageDisplay`: each group's no-pooling estimate pulled to its
  multilevel estimate, toward the population mean.
- :class:`PopulationDisplay`: the distribution of theta for a new group, with
  its prediction interval and the observed proportions as a rug.
- :class:`CaterpillarDisplay`: every group's estimate and interval, sorted, for
  any of the three estimators.
- :class:`ResidualDisplay`: quantile residuals in a normal QQ plot and against
  fitted values.
"""

from ._caterpillar import CaterpillarDisplay
from ._population import PopulationDisplay
from ._residuals import ResidualDisplay
from ._shrinkage import ShrinkageDisplay

__all__ = [
    "CaterpillarDisplay",
    "PopulationDisplay",
    "ResidualDisplay",
    "ShrinkageDisplay",
]
