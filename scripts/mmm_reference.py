"""PyMC-Marketing reference fit of the example marketing mix model.

Fits pymc-marketing's `MMM` (geometric adstock, l_max 8, logistic saturation, controls
event_1, event_2, t, yearly seasonality of order 2, the library's default priors) on
`../shared/data/mmm/mmm_example.csv` and prints one JSON object: posterior mean and sd of
every parameter, channel contributions and ROAS in the data's units, and the seconds the
fit took (model build, compilation and sampling: what a user waits for).

Usage: python scripts/mmm_reference.py CSV [--chains 4] [--draws 1000] [--tune 1000] [--cores 2]
       python scripts/mmm_reference.py --diagnostics   (ArviZ R-hat and ESS of fixed chains)
"""
import argparse
import json
import sys
import time


def diagnostics():
    import arviz as az
    import numpy as np

    rng = np.random.default_rng(7)
    cases = []
    # AR(1) chains: independent, sticky, very sticky, and chains that disagree.
    for phi, chains, draws, shift in [(0.0, 4, 500, 0.0), (0.6, 4, 1000, 0.0),
                                      (0.95, 2, 400, 0.0), (0.3, 4, 300, 0.5)]:
        x = np.zeros((chains, draws))
        for c in range(chains):
            e = rng.standard_normal(draws)
            for t in range(draws):
                x[c, t] = (phi * x[c, t - 1] if t else 0.0) + e[t]
            x[c] += shift * c
        cases.append({
            "chains": x.tolist(),
            "rhat": float(az.rhat(x)),
            "ess_bulk": float(az.ess(x, method="bulk")),
            "ess_tail": float(az.ess(x, method="tail")),
        })
    json.dump({"arviz": az.__version__, "cases": cases}, sys.stdout)


def fit(args):
    # PyMC and ArviZ print progress on stdout; keep stdout for the one JSON object.
    out_stream, sys.stdout = sys.stdout, sys.stderr
    import numpy as np
    import pandas as pd
    import pymc_marketing
    from pymc_marketing.mmm import MMM, GeometricAdstock, LogisticSaturation

    data = pd.read_csv(args.csv, parse_dates=["date_week"])
    x = data[["date_week", "x1", "x2", "event_1", "event_2", "t"]]
    y = data["y"]
    started = time.perf_counter()
    mmm = MMM(
        date_column="date_week",
        channel_columns=["x1", "x2"],
        adstock=GeometricAdstock(l_max=8),
        saturation=LogisticSaturation(),
        control_columns=["event_1", "event_2", "t"],
        yearly_seasonality=2,
    )
    mmm.fit(x, y, chains=args.chains, draws=args.draws, tune=args.tune,
            random_seed=args.seed, progressbar=False, target_accept=0.8,
            cores=args.cores)
    seconds = time.perf_counter() - started
    post = mmm.idata.posterior

    def summary(values):
        values = np.asarray(values).reshape(args.chains * args.draws, -1)
        return {"mean": values.mean(axis=0).tolist(), "sd": values.std(axis=0, ddof=1).tolist()}

    params = {}
    for name in ["intercept", "adstock_alpha", "saturation_lam", "saturation_beta",
                 "gamma_control", "gamma_fourier", "y_sigma"]:
        params[name] = summary(post[name].values)
    contribution = post["channel_contribution_original_scale"].sum("date").values
    spend = data[["x1", "x2"]].sum().to_numpy()
    import arviz as az
    summ = az.summary(mmm.idata, var_names=["intercept", "adstock_alpha", "saturation_lam",
                                             "saturation_beta", "gamma_control", "gamma_fourier",
                                             "y_sigma"])
    out = {
        "pymc_marketing": pymc_marketing.__version__,
        "chains": args.chains, "draws": args.draws, "tune": args.tune,
        "seconds": seconds,
        "params": params,
        "contribution": summary(contribution),
        "roas": summary(contribution / spend),
        "fourier_modes": list(map(str, post.coords["fourier_mode"].values)),
        "rhat_max": float(summ["r_hat"].max()),
        "ess_min": float(summ["ess_bulk"].min()),
        "divergences": int(mmm.idata.sample_stats["diverging"].sum()),
    }
    json.dump(out, out_stream, indent=1)


if __name__ == "__main__":
    p = argparse.ArgumentParser()
    p.add_argument("csv", nargs="?")
    p.add_argument("--chains", type=int, default=4)
    p.add_argument("--draws", type=int, default=1000)
    p.add_argument("--tune", type=int, default=1000)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--cores", type=int, default=2)
    p.add_argument("--diagnostics", action="store_true")
    a = p.parse_args()
    diagnostics() if a.diagnostics else fit(a)
