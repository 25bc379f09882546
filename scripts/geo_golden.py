"""Golden file for geo experiments: pysyncon 1.5.2's synthetic-control weights on
California's Proposition 99 (every pre-1989 year's cigarette sales as a predictor, equal
V, the predictors scaled by their standard deviation across states as pysyncon does; its
QP solved to convergence, see below),
and statsmodels 0.14.4's OLS difference-in-differences with unit and year dummies
(cluster-robust by unit and HC1) on the same panel with California and seven more states
treated from 1989.

Usage: scripts/geo_golden.sh (makes the virtualenv, writes crates/measure/tests/golden/geo.json)
"""
import functools
import importlib.metadata
import json
import sys

import numpy as np
import pandas as pd
import statsmodels
import statsmodels.formula.api as smf
from pysyncon import Dataprep, Synth

wide = pd.read_csv(sys.argv[1])
years = wide["Year"].tolist()
states = [c for c in wide.columns if c != "Year"]
long = wide.melt(id_vars="Year", var_name="state", value_name="cigsale")
pre = [y for y in years if y < 1989]
controls = [s for s in states if s != "California"]
dataprep = Dataprep(
    foo=long,
    predictors=[],
    predictors_op="mean",
    time_predictors_prior=pre,
    special_predictors=[("cigsale", [y], "mean") for y in pre],
    dependent="cigsale",
    unit_variable="state",
    time_variable="Year",
    treatment_identifier="California",
    controls_identifier=controls,
    time_optimize_ssr=pre,
)
# pysyncon solves the inner QP with SLSQP at scipy's default ftol (1e-6), which stops
# before the optimum on this flat problem (loss 0.0029791 where 0.0029674 is reachable);
# the golden weights are pysyncon's with the same solver run to convergence, and the
# default run's weights are kept beside them.
V = np.full(len(pre), 1.0 / len(pre))
default = Synth()
default.fit(dataprep=dataprep, custom_V=V)
solve = Synth.w_optimize
Synth.w_optimize = staticmethod(
    functools.partial(solve, qp_options={"maxiter": 100000, "ftol": 1e-15}))
synth = Synth()
synth.fit(dataprep=dataprep, custom_V=V)
weights = dict(zip(controls, map(float, synth.W)))

treated = ["California", "Nevada", "Oregon", "Utah", "Texas", "Virginia", "Maine", "Ohio"]
panel = long.copy()
panel["d"] = (panel["state"].isin(treated) & (panel["Year"] >= 1989)).astype(float)
model = smf.ols("cigsale ~ d + C(state) + C(Year)", data=panel)
codes = panel["state"].astype("category").cat.codes
cluster = model.fit(cov_type="cluster", cov_kwds={"groups": codes})
hc1 = model.fit(cov_type="HC1")
json.dump({
    "pysyncon": importlib.metadata.version("pysyncon"),
    "statsmodels": statsmodels.__version__,
    "synth_weights": weights,
    "synth_loss": synth.loss_W,
    "synth_weights_default_tolerance": dict(zip(controls, map(float, default.W))),
    "synth_loss_default_tolerance": default.loss_W,
    "did_treated": treated,
    "did": {
        "effect": float(cluster.params["d"]),
        "cluster_se": float(cluster.bse["d"]), "cluster_p": float(cluster.pvalues["d"]),
        "hc1_se": float(hc1.bse["d"]), "hc1_p": float(hc1.pvalues["d"]),
    },
}, sys.stdout, indent=1)
