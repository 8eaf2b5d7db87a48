"""Reference posterior for the rats tumour data by a long NUTS run.

Model (the posterior skre's deterministic method must reproduce):

    m_g  ~ Binomial(n_g, inv_logit(b + xi_g)),   g = 1..71
    xi_g ~ Normal(0, tau)
    b    ~ flat (improper uniform on the real line)
    tau  ~ HalfCauchy(scale = 1)

Sampled non-centred (xi_g = tau * z_g, z_g ~ Normal(0, 1)) with NumPyro's NUTS
on JAX CPU, in double precision. Run once by hand, never in the test suite:

    python3 -m venv /work/nutsenv && /work/nutsenv/bin/pip install numpyro jax pandas
    cd tests/reference && /work/nutsenv/bin/python rats_nuts.py   # -> rats_nuts.json

MCSE: mean = sd / sqrt(ESS) (batch means over 50 batches per chain as a
cross-check); quantiles = ArviZ's method (ESS of the indicator
x <= q on split chains, then a Beta interval of +-1 sd mapped through the
sorted draws). ESS is NumPyro's (Geyer initial monotone), R-hat is split R-hat.
"""

import json
import platform
import time
from pathlib import Path

import numpyro

numpyro.enable_x64()

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import scipy  # noqa: E402
from numpyro import distributions as dist  # noqa: E402
from numpyro.diagnostics import effective_sample_size, split_gelman_rubin  # noqa: E402
from numpyro.distributions import constraints  # noqa: E402
from numpyro.infer import MCMC, NUTS  # noqa: E402
from scipy import stats  # noqa: E402

NUM_CHAINS, NUM_WARMUP, NUM_SAMPLES = 4, 2_000, 50_000
TARGET_ACCEPT, SEED, PREDICTIVE_SEED = 0.9, 20240601, 12345
HERE = Path(__file__).resolve().parent
DATA = HERE.parents[1] / "skre" / "datasets" / "data" / "rats.csv"


def model(m, n):
    b = numpyro.sample("b", dist.ImproperUniform(constraints.real, (), ()))
    tau = numpyro.sample("tau", dist.HalfCauchy(1.0))
    with numpyro.plate("batch", len(m)):
        z = numpyro.sample("z", dist.Normal(0.0, 1.0))
        numpyro.sample("m", dist.Binomial(n, logits=b + tau * z), obs=m)


def mcse_quantile(x, prob):
    """ArviZ-style MCSE of a quantile; x has shape (chains, draws)."""
    half = x.shape[1] // 2
    split = np.concatenate([x[:, :half], x[:, half : 2 * half]])
    ess = float(effective_sample_size(split <= np.quantile(x, prob)))
    a = stats.beta.ppf([0.1586553, 0.8413447], ess * prob + 1, ess * (1 - prob) + 1)
    s = np.sort(x.ravel())
    lo = s[int(np.floor(max(a[0] * s.size - 1, 0)))]
    hi = s[int(np.ceil(min(a[1] * s.size - 1, s.size - 1)))]
    return float((hi - lo) / 2), ess


def summarise(x):
    """x: (chains, draws) -> dict of posterior summaries with MCSEs."""
    ess = float(effective_sample_size(x))
    out = {
        "mean": float(x.mean()),
        "sd": float(x.std(ddof=1)),
        "ess": ess,
        "rhat": float(split_gelman_rubin(x)),
    }
    out["mcse_mean"] = out["sd"] / np.sqrt(ess)
    bm = x.reshape(x.shape[0], 50, -1).mean(axis=2)  # 50 batches per chain
    out["mcse_mean_batch_means"] = float(bm.std(ddof=1) / np.sqrt(bm.size))
    for p, name in [(0.025, "q2.5"), (0.975, "q97.5")]:
        out[name] = float(np.quantile(x, p))
        out[f"mcse_{name}"], out[f"ess_{name}"] = mcse_quantile(x, p)
    return out


def quantiles(x, probs=(0.025, 0.975)):
    return {f"q{100 * p:g}": float(np.quantile(x, p)) for p in probs}


def main():
    df = pd.read_csv(DATA).sort_values("batch")
    m, n = jnp.asarray(df["m"].to_numpy()), jnp.asarray(df["n"].to_numpy())

    mcmc = MCMC(
        NUTS(model, target_accept_prob=TARGET_ACCEPT),
        num_warmup=NUM_WARMUP,
        num_samples=NUM_SAMPLES,
        num_chains=NUM_CHAINS,
        chain_method="sequential",
        progress_bar=False,
    )
    t0 = time.perf_counter()
    mcmc.run(jax.random.PRNGKey(SEED), m, n, extra_fields=("diverging", "num_steps"))
    jax.block_until_ready(mcmc.get_samples())
    wall = time.perf_counter() - t0

    s = {k: np.asarray(v) for k, v in mcmc.get_samples(group_by_chain=True).items()}
    extra = mcmc.get_extra_fields(group_by_chain=True)
    b, tau, z = s["b"], s["tau"], s["z"]  # (C, S), (C, S), (C, S, 71)
    theta = 1 / (1 + np.exp(-(b[..., None] + tau[..., None] * z)))
    z_new = np.random.default_rng(PREDICTIVE_SEED).standard_normal(b.shape)
    theta_new = 1 / (1 + np.exp(-(b + tau * z_new)))

    def batch(g):
        row = df.index[df["batch"] == g][0]
        t = theta[..., row]
        return {
            "m": int(df.loc[row, "m"]),
            "n": int(df.loc[row, "n"]),
            "mean": float(t.mean()),
            **quantiles(t),
            "mcse_mean": float(t.std(ddof=1) / np.sqrt(effective_sample_size(t))),
        }

    res = {
        "script": "rats_nuts.py",
        "data": "skre/datasets/data/rats.csv",
        "model": "m_g ~ Binomial(n_g, inv_logit(b + tau*z_g)), z_g ~ Normal(0,1) "
        "(non-centred xi_g = tau*z_g ~ Normal(0,tau)), b ~ flat improper "
        "(ImproperUniform on the reals), tau ~ HalfCauchy(scale=1)",
        "engine": "NumPyro NUTS, JAX CPU, float64 (enable_x64), "
        "chain_method=sequential",
        "versions": {
            "numpyro": numpyro.__version__,
            "jax": jax.__version__,
            "numpy": np.__version__,
            "scipy": scipy.__version__,
            "python": platform.python_version(),
        },
        "num_chains": NUM_CHAINS,
        "num_warmup": NUM_WARMUP,
        "num_samples_per_chain": NUM_SAMPLES,
        "target_accept_prob": TARGET_ACCEPT,
        "seed": SEED,
        "seed_note": "jax.random.PRNGKey(seed), split into one key per chain",
        "predictive_seed": PREDICTIVE_SEED,
        "divergences": int(np.asarray(extra["diverging"]).sum()),
        "mean_leapfrog_steps": float(np.asarray(extra["num_steps"]).mean()),
        "sampling_wall_clock_seconds": round(wall, 1),
        "timing_note": "mcmc.run() for all chains incl. warmup and JIT compilation, "
        "one CPU core (chains sequential)",
        "mcse_note": "mcse_mean = sd/sqrt(ess) (cross-check: mcse_mean_batch_means, "
        "50 batches per chain); quantile MCSE as in ArviZ (ess of "
        "the indicator x<=q on split chains, Beta(+-1sd) interval mapped "
        "through the sorted draws, half-width). rhat = split R-hat.",
        "b": summarise(b),
        "tau": summarise(tau),
        "theta_batch1": batch(1),
        "theta_batch71": batch(71),
        "theta_new": {
            "definition": "inv_logit(b + tau*z_new), one z_new ~ N(0,1) per draw",
            **quantiles(theta_new, (0.025, 0.5, 0.975)),
        },
        "max_rhat_z": float(np.max(split_gelman_rubin(z))),
        "min_ess_z": float(np.min(effective_sample_size(z))),
    }
    (HERE / "rats_nuts.json").write_text(json.dumps(res, indent=2) + "\n")
    print(
        json.dumps(
            {
                k: res[k]
                for k in ("b", "tau", "divergences", "sampling_wall_clock_seconds")
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
