"""Golden outputs for multiple-testing corrections (statsmodels' multipletests, methods
'holm' and 'fdr_bh') and the sequential SRM test (Optimizely's ssrm-test, sequential
p-values), on randomized inputs. Run through scripts/stats_golden.sh.
Output: crates/measure/tests/golden/multitest_ssrm.json
"""
import json
import random

import numpy as np
from ssrm_test import ssrm_test
from statsmodels.stats.multitest import multipletests

rng = random.Random(20261128)
out = {"multipletests": [], "ssrm": []}
for _ in range(500):
    m = rng.randint(1, 40)
    p = [rng.choice([rng.random(), rng.random() ** 4, rng.uniform(0, 0.05)]) for _ in range(m)]
    if rng.random() < 0.1 and m > 1:
        p[1] = p[0]  # ties
    out["multipletests"].append({
        "p": p,
        "holm": multipletests(p, method="holm")[1].tolist(),
        "fdr_bh": multipletests(p, method="fdr_bh")[1].tolist(),
    })
for _ in range(200):
    k = rng.randint(2, 4)
    w = [rng.uniform(0.2, 1) for _ in range(k)]
    null = [x / sum(w) for x in w]
    skew = rng.choice([0.0, 0.0, 0.03, 0.1])
    true = [x * (1 + rng.gauss(0, skew)) for x in null]
    true = [max(x, 1e-3) / sum(max(y, 1e-3) for y in true) for x in true]
    batches = []
    unit_level = rng.random() < 0.3
    for _ in range(rng.randint(1, 60)):
        if unit_level:
            b = [0] * k
            b[np.searchsorted(np.cumsum(true), rng.random() * 0.999999)] = 1
        else:
            size = rng.choice([10, 100, 1000, 10000])
            b = [int(x) for x in np.random.default_rng(rng.randrange(1 << 30)).multinomial(size, true)]
        batches.append(b)
    out["ssrm"].append({
        "null": null,
        "batches": batches,
        "p_values": [float(v) for v in ssrm_test.sequential_p_values(batches, null)],
    })
with open("crates/measure/tests/golden/multitest_ssrm.json", "w") as f:
    json.dump(out, f, separators=(",", ":"))
print("wrote crates/measure/tests/golden/multitest_ssrm.json")
