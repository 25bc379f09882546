"""Uplift references: CausalML 0.15.5's learners on its own synthetic data, and both
libraries' Qini/AUUC on fixed predictions.

Writes two files:
  crates/measure/tests/golden/uplift_data.csv  make_uplift_classification_logistic
      (control vs treatment1, 4,000 rows per arm, seed 20200101) with a train/test split
  crates/measure/tests/golden/uplift.json      per learner: CausalML's Qini and AUUC on
      the test rows (normalised, CausalML's definition), a bootstrap sd of the Qini (200
      resamples of the test rows), fit seconds; and for one model's predictions the
      scores of causalml.metrics and sklift.metrics to compare our definitions with.

Usage: scripts/uplift_golden.sh
"""
import importlib.metadata
import json
import sys
import time

import numpy as np
import pandas as pd
from causalml.dataset import make_uplift_classification_logistic
from causalml.inference.meta import BaseSClassifier, BaseTClassifier, BaseXClassifier
from causalml.inference.tree import UpliftRandomForestClassifier
from causalml.metrics import auuc_score, qini_score
from sklearn.linear_model import LogisticRegression
from sklift.metrics import qini_auc_score, uplift_auc_score
from xgboost import XGBClassifier, XGBRegressor

out_dir = sys.argv[1]
df, x_names = make_uplift_classification_logistic(
    n_samples=4000,
    treatment_name=["control", "treatment1"],
    n_uplift_dict={"treatment1": 2},
    n_mix_informative_uplift_dict={"treatment1": 1},
    delta_uplift_dict={"treatment1": 0.05},
    random_seed=20200101,
)
df["treated"] = (df["treatment_group_key"] == "treatment1").astype(int)
rng = np.random.default_rng(7)
df["test"] = (rng.random(len(df)) < 0.3).astype(int)
columns = x_names + ["treated", "conversion", "test"]
df[columns].to_csv(f"{out_dir}/uplift_data.csv", index=False, float_format="%.9g")
# Read back what was written, so both sides see the same rounded numbers.
df = pd.read_csv(f"{out_dir}/uplift_data.csv")
train, test = df[df.test == 0], df[df.test == 1]
X, Xt = train[x_names].to_numpy(), test[x_names].to_numpy()
w, y = train["treated"].to_numpy(), train["conversion"].to_numpy()


def xgb_c():
    return XGBClassifier(n_estimators=100, max_depth=3, learning_rate=0.1, n_jobs=2)


def xgb_r():
    return XGBRegressor(n_estimators=100, max_depth=3, learning_rate=0.1, n_jobs=2)


learners = {
    "s_logistic": lambda: BaseSClassifier(learner=LogisticRegression(max_iter=1000)),
    "t_logistic": lambda: BaseTClassifier(learner=LogisticRegression(max_iter=1000)),
    "t_boosting": lambda: BaseTClassifier(learner=xgb_c()),
    "x_boosting": lambda: BaseXClassifier(outcome_learner=xgb_c(), effect_learner=xgb_r()),
    "uplift_forest": None,
}
results = {}
scores = {}
for name, make in learners.items():
    started = time.perf_counter()
    if name == "uplift_forest":
        model = UpliftRandomForestClassifier(control_name="control", n_estimators=100,
                                             max_depth=6, min_samples_leaf=100,
                                             random_state=1, n_jobs=2)
        model.fit(X, treatment=np.where(w == 1, "treatment1", "control"), y=y)
        uplift = model.predict(Xt).reshape(-1)
    else:
        model = make()
        model.fit(X, treatment=w, y=y)
        uplift = np.asarray(model.predict(Xt)).reshape(-1)
    seconds = time.perf_counter() - started
    frame = pd.DataFrame({"y": test["conversion"].to_numpy(), "w": test["treated"].to_numpy(), "m": uplift})
    boot = []
    for b in range(200):
        idx = rng.integers(0, len(frame), len(frame))
        boot.append(float(qini_score(frame.iloc[idx].reset_index(drop=True))["m"]))
    results[name] = {
        "seconds": seconds,
        "qini": float(qini_score(frame)["m"]),
        "auuc": float(auuc_score(frame)["m"]),
        "qini_bootstrap_sd": float(np.std(boot, ddof=1)),
    }
    scores[name] = uplift

frame = pd.DataFrame({"y": test["conversion"].to_numpy(), "w": test["treated"].to_numpy(), "m": scores["t_boosting"]})
metrics = {
    "predictions": scores["t_boosting"].tolist(),
    "causalml_qini": float(qini_score(frame)["m"]),
    "causalml_auuc": float(auuc_score(frame)["m"]),
    "sklift_qini": float(qini_auc_score(frame["y"], frame["m"], frame["w"])),
    "sklift_auuc": float(uplift_auc_score(frame["y"], frame["m"], frame["w"])),
}
json.dump({
    "causalml": importlib.metadata.version("causalml"),
    "scikit_uplift": importlib.metadata.version("scikit-uplift"),
    "features": x_names,
    "learners": results,
    "metrics": metrics,
}, open(f"{out_dir}/uplift.json", "w"), indent=1)
