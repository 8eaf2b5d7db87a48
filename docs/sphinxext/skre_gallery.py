"""The order of the gallery: a newcomer's reading order, not the alphabet.

``sphinx_gallery_conf["within_subsection_order"]`` names this class. Examples
listed in ``ORDER`` come first, in that order; any other example follows, by
file name.
"""

ORDER = [
    "plot_rats_strategies.py",  # the three strategies: start here
    "plot_rats.py",  # shrinkage, the population and a new batch
    "plot_model_checking.py",  # tests of tau = 0 and residual checks
    "plot_longitudinal.py",  # binary rows with covariates: patients over visits
    "plot_funnel.py",  # acting on estimates: history vs batch 71, funnel, ranks
    "plot_priors_gridsearch.py",  # priors tuned by GridSearchCV
    "plot_bayes.py",  # the full posterior, advanced
]


class ReadingOrder:
    """Sort key for sphinx-gallery: position in ``ORDER``, then file name."""

    def __init__(self, src_dir):
        self.src_dir = src_dir

    def __call__(self, filename):
        rank = ORDER.index(filename) if filename in ORDER else len(ORDER)
        return rank, filename

    def __repr__(self):
        return "<ReadingOrder>"


def minigallery_order(path):
    """Sort key for the API pages' mini-galleries: the same reading order."""
    name = str(path).replace("\\", "/").rsplit("/", 1)[-1]
    return ReadingOrder(None)(name)
