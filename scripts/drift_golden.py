"""Golden file for drift statistics: Evidently 0.7.14's PSI test and SciPy 1.15.3's
`ks_2samp` (method "auto") on seeded samples of several shapes and sizes.

Usage: target/venv-drift/bin/python scripts/drift_golden.py > crates/measure/tests/golden/drift.json
(scripts/drift_golden.sh makes the virtualenv and runs this).
"""
import json
import sys

import numpy as np
import pandas as pd
import scipy
import scipy.stats
from evidently.legacy.calculations.stattests.psi import _psi
from evidently.legacy.core import ColumnType

rng = np.random.default_rng(20261129)
cases = []
shapes = [
    ("normal vs same", lambda n: rng.normal(0, 1, n), lambda n: rng.normal(0, 1, n)),
    ("normal vs shifted", lambda n: rng.normal(0, 1, n), lambda n: rng.normal(0.3, 1, n)),
    ("normal vs wider", lambda n: rng.normal(0, 1, n), lambda n: rng.normal(0, 1.5, n)),
    ("lognormal spend", lambda n: rng.lognormal(3, 1, n), lambda n: rng.lognormal(3.2, 1, n)),
    ("rounded with ties", lambda n: np.round(rng.normal(50, 10, n)), lambda n: np.round(rng.normal(52, 10, n))),
    ("categories", lambda n: rng.integers(0, 6, n).astype(float), lambda n: rng.choice(6, n, p=[.3, .2, .2, .1, .1, .1]).astype(float)),
    ("category gone", lambda n: rng.integers(0, 4, n).astype(float), lambda n: rng.integers(0, 3, n).astype(float)),
]
for name, make_ref, make_cur in shapes:
    for n_ref, n_cur in [(30, 45), (200, 200), (1000, 700), (3000, 2500)]:
        ref, cur = make_ref(n_ref), make_cur(n_cur)
        kind = "categorical" if name.startswith("categor") else "numerical"
        psi, _ = _psi(pd.Series(ref), pd.Series(cur),
                      ColumnType.Categorical if kind == "categorical" else ColumnType.Numerical, 0.1)
        ks = scipy.stats.ks_2samp(ref, cur, method="auto")
        cases.append({"name": name, "kind": kind, "reference": ref.tolist(), "current": cur.tolist(),
                      "psi": float(psi), "ks_statistic": float(ks.statistic), "ks_p_value": float(ks.pvalue)})
json.dump({"evidently": "0.7.14", "scipy": scipy.__version__, "cases": cases}, sys.stdout)
