"""MABWiser side of `regelkreis bench stats`: Bernoulli bandit simulations with the same
arms, rates, steps and seeds as the Rust side. Prints one JSON object on stdout.

Usage: bench_mabwiser.py STEPS SEEDS RATES_JSON
"""
import json
import sys
import time

import numpy as np
from mabwiser.mab import MAB, LearningPolicy

steps = int(sys.argv[1])
seeds = [int(s) for s in sys.argv[2].split(",")]
rates = json.loads(sys.argv[3])
best = max(rates)
arms = list(range(len(rates)))
policies = {
    "thompson": lambda: LearningPolicy.ThompsonSampling(),
    "ucb1": lambda: LearningPolicy.UCB1(alpha=1.0),
    "epsilon_greedy": lambda: LearningPolicy.EpsilonGreedy(epsilon=0.1),
}
out = {}
for name, make in policies.items():
    regrets, decisions, seconds = [], 0, 0.0
    for seed in seeds:
        env = np.random.default_rng(seed)
        mab = MAB(arms=arms, learning_policy=make(), seed=seed)
        # one pull per arm to initialise, counted in the regret like the Rust side's
        # minimum of one pull per arm
        first = [int(env.random() < r) for r in rates]
        regret = sum(best - r for r in rates)
        mab.fit(decisions=arms, rewards=first)
        started = time.perf_counter()
        for _ in range(steps - len(arms)):
            arm = mab.predict()
            reward = int(env.random() < rates[arm])
            mab.partial_fit(decisions=[arm], rewards=[reward])
            regret += best - rates[arm]
        seconds += time.perf_counter() - started
        decisions += steps - len(arms)
        regrets.append(regret)
    out[name] = {"regret": regrets, "decisions_per_s": decisions / seconds}
print(json.dumps(out))
