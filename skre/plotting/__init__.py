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
- :class:`FunnelDisplay`: each group's observed proportion against its trials,
  inside the (overdispersed) prediction limits of a new group of the
  population, with the unusual groups flagged.
- :class:`RankDisplay`: each group's rank with its marginal and simultaneous
  rank intervals, for any of the three estimators.
"""

from ._caterpillar import CaterpillarDisplay
from ._funnel import FunnelDisplay
from ._population import PopulationDisplay
from ._ranks import RankDisplay
from ._residuals import ResidualDisplay
from ._shrinkage import ShrinkageDisplay

__all__ = [
    "CaterpillarDisplay",
    "FunnelDisplay",
    "PopulationDisplay",
    "RankDisplay",
    "ResidualDisplay",
    "ShrinkageDisplay",
]
