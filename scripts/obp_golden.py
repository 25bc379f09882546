"""Golden off-policy estimates from the `obp` package (Open Bandit Pipeline 0.4.1) on the
Open Bandit Dataset sample in ../shared/data/bandits/obd.

For each behaviour policy's log (random, bts) of campaign `all`, two evaluation policies
are estimated with obp's IPS, SNIPS and DR: the uniform random policy and obp's
production Bernoulli Thompson Sampling policy (`BernoulliTS(is_zozotown_prior=True)`,
its action distribution computed by obp). DR uses a reward model that is the
per-(item, position) empirical click rate of the log, exported with the results so the
Rust side uses exactly the same one.

Run through scripts/obp_golden.sh. Output: crates/measure/tests/golden/obp_ope.json.
"""
import json
from pathlib import Path

import numpy as np
from obp.dataset import OpenBanditDataset
from obp.ope import DoublyRobust, InverseProbabilityWeighting, SelfNormalizedInverseProbabilityWeighting
from obp.policy import BernoulliTS

DATA = Path("../shared/data/bandits/obd")
OUT = Path("crates/measure/tests/golden/obp_ope.json")

result = {"source": "obp 0.4.1", "campaign": "all", "logs": {}}
bts_dist = None
for behavior in ["random", "bts"]:
    ds = OpenBanditDataset(behavior_policy=behavior, campaign="all", data_path=DATA)
    fb = ds.obtain_batch_bandit_feedback()
    n, k, L = fb["n_rounds"], fb["n_actions"], ds.len_list
    if bts_dist is None:
        policy = BernoulliTS(n_actions=k, len_list=L, is_zozotown_prior=True, campaign="all", random_state=12345)
        bts_dist = policy.compute_batch_action_dist(n_rounds=1, n_sim=100_000)[0]  # (k, L)
    # reward model: empirical click rate per (item, position) in this log
    clicks = np.zeros((k, L))
    shown = np.zeros((k, L))
    np.add.at(clicks, (fb["action"], fb["position"]), fb["reward"])
    np.add.at(shown, (fb["action"], fb["position"]), 1)
    q = np.divide(clicks, shown, out=np.zeros_like(clicks), where=shown > 0)
    q_hat = np.broadcast_to(q, (n, k, L)).copy()
    policies = {
        "uniform": np.full((k, L), 1.0 / k),
        "bts": bts_dist,
    }
    log = {"on_policy_ctr": float(fb["reward"].mean()), "q_hat": q.tolist(), "estimates": {}}
    for name, dist in policies.items():
        action_dist = np.broadcast_to(dist, (n, k, L)).copy()
        kw = dict(reward=fb["reward"], action=fb["action"], position=fb["position"], pscore=fb["pscore"], action_dist=action_dist)
        log["estimates"][name] = {
            "action_dist": dist.tolist(),
            "ips": float(InverseProbabilityWeighting().estimate_policy_value(**kw)),
            "snips": float(SelfNormalizedInverseProbabilityWeighting().estimate_policy_value(**kw)),
            "dr": float(DoublyRobust().estimate_policy_value(estimated_rewards_by_reg_model=q_hat, **kw)),
        }
    result["logs"][behavior] = log
OUT.write_text(json.dumps(result, separators=(",", ":")))
print(f"wrote {OUT}")
