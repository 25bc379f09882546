"""Writes golden outputs of GrowthBook's stats engine (gbstats 0.8.0) for randomized
A/B-test inputs, in the line format of `regelkreis stats ab`.

Run through scripts/stats_golden.sh, which installs gbstats into a virtualenv.
Output: crates/measure/tests/golden/gbstats_ab.jsonl, one {"input", "output"} per line.
"""
import json
import math
import random
import sys

from gbstats.bayesian.tests import EffectBayesianABTest, EffectBayesianConfig, GaussianPrior
from gbstats.frequentist.tests import (
    FrequentistConfig,
    SequentialConfig,
    SequentialTwoSidedTTest,
    TwoSidedTTest,
)
from gbstats.models.statistics import (
    ProportionStatistic,
    QuantileStatistic,
    RatioStatistic,
    RegressionAdjustedStatistic,
    SampleMeanStatistic,
    compute_theta,
)
from gbstats.utils import check_srm

N_CASES = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
OUT = sys.argv[2] if len(sys.argv) > 2 else "crates/measure/tests/golden/gbstats_ab.jsonl"
rng = random.Random(20261128)


def loguniform(lo, hi):
    return math.exp(rng.uniform(math.log(lo), math.log(hi)))


def sample_n():
    r = rng.random()
    if r < 0.03:
        return rng.choice([0, 1, 2])
    return int(loguniform(3, 2_000_000))


def mean_arm(n, mu, sd):
    """Sufficient statistics of n draws from a distribution with mean mu, sd sd."""
    if n == 0:
        return 0.0, 0.0, 0.0
    m = mu + rng.gauss(0, 1) * sd / math.sqrt(max(n, 1))
    var = sd * sd * max(0.05, rng.gauss(1, 0.1))
    total = m * n
    ss = (n - 1) * var + total * total / n
    return total, ss, var


def mean_case():
    mu = rng.choice([rng.uniform(-5, 100), loguniform(0.01, 1000)])
    sd = loguniform(0.05, 200)
    lift = rng.choice([0, 0, rng.gauss(0, 0.05), rng.gauss(0, 0.3)])
    arms = []
    for j in range(2):
        n = sample_n()
        s, ss, _ = mean_arm(n, mu * (1 + lift * j), sd)
        arms.append({"n": n, "sum": s, "sum_squares": ss})
    r = rng.random()
    if r < 0.02:  # zero baseline
        arms[0]["sum"] = 0.0
    elif r < 0.04:  # zero variance in one arm
        j = rng.randrange(2)
        n = max(arms[j]["n"], 1)
        arms[j]["sum_squares"] = arms[j]["sum"] ** 2 / n
    return arms


def binomial_count(n, p):
    p = min(max(p, 0.0), 0.99)
    if n == 0:
        return 0
    c = round(n * p + rng.gauss(0, 1) * math.sqrt(n * p * (1 - p)))
    return float(min(max(c, 0), n))


def binomial_case():
    p = loguniform(0.0005, 0.6)
    lift = rng.choice([0, 0, rng.gauss(0, 0.05), rng.gauss(0, 0.3)])
    arms = []
    for j in range(2):
        n = sample_n()
        arms.append({"n": n, "conversions": binomial_count(n, min(0.99, p * (1 + lift * j)))})
    if rng.random() < 0.03:
        arms[0]["conversions"] = 0.0
    return arms


def cuped_mean_case():
    mu_pre = rng.uniform(1, 100)
    mu_post = mu_pre * rng.uniform(0.8, 1.2)
    sd_pre, sd_post = loguniform(0.1, 50), loguniform(0.1, 50)
    rho = rng.choice([rng.uniform(-0.9, 0.99), 0.0, rng.uniform(0.5, 0.99)])
    lift = rng.choice([0, rng.gauss(0, 0.05)])
    arms = []
    for j in range(2):
        n = sample_n()
        s, ss, var_post = mean_arm(n, mu_post * (1 + lift * j), sd_post)
        ps, pss, var_pre = mean_arm(n, mu_pre, sd_pre)
        cov = rho * math.sqrt(var_pre * var_post)
        cross = (n - 1) * cov + (s * ps / n if n else 0.0)
        arms.append({"n": n, "sum": s, "sum_squares": ss, "pre_sum": ps, "pre_sum_squares": pss, "cross_sum": cross})
    if rng.random() < 0.03:  # no pre-period variance: theta 0, falls back to unadjusted
        for a in arms:
            a["pre_sum"] = float(a["n"])
            a["pre_sum_squares"] = float(a["n"])
            a["cross_sum"] = a["sum"]
    return arms


def ratio_case():
    """Revenue per session: numerator and denominator per unit, correlated."""
    sessions = loguniform(1, 5)
    value = loguniform(0.5, 80)
    lift = rng.choice([0, rng.gauss(0, 0.05)])
    arms = []
    for j in range(2):
        n = sample_n()
        ds, dss, dvar = mean_arm(n, sessions, sessions * rng.uniform(0.2, 1))
        ms, mss, mvar = mean_arm(n, sessions * value * (1 + lift * j), value * rng.uniform(0.5, 3))
        rho = rng.uniform(0, 0.95)
        cross = (n - 1) * rho * math.sqrt(dvar * mvar) + (ms * ds / n if n else 0.0)
        arms.append({"n": n, "m_sum": ms, "m_sum_squares": mss, "d_sum": ds, "d_sum_squares": dss, "m_d_sum_of_products": cross})
    return arms


def quantile_case():
    """A quantile of a skewed metric with its 95 % interval, as GrowthBook's SQL computes it."""
    nu = rng.choice([0.5, 0.9, 0.95, 0.99, rng.uniform(0.05, 0.99)])
    base = loguniform(1, 500)
    lift = rng.choice([0, rng.gauss(0, 0.05)])
    arms = []
    for j in range(2):
        n = sample_n() if rng.random() < 0.9 else rng.randint(2, 200)
        q = base * (1 + lift * j) * math.exp(rng.gauss(0, 0.02))
        half = base * loguniform(0.5, 5) * math.sqrt(nu * (1 - nu) / max(n, 1))
        lower, upper = q - half * rng.uniform(0.7, 1.3), q + half * rng.uniform(0.7, 1.3)
        if rng.random() < 0.03:
            lower = upper = q
        n_star = max(1, int(n * rng.uniform(0.9, 1.0)))
        arms.append({"n": n, "n_star": n_star, "nu": nu, "quantile_hat": q, "quantile_lower": lower, "quantile_upper": upper})
    return arms


def cuped_binomial_case():
    p_pre = loguniform(0.005, 0.5)
    p_post = min(0.95, p_pre * rng.uniform(0.7, 1.4))
    stick = rng.uniform(0, 1)
    arms = []
    for j in range(2):
        n = sample_n()
        pre = binomial_count(n, p_pre)
        post = binomial_count(n, p_post * (1 + rng.choice([0, rng.gauss(0, 0.05)]) * j))
        lo, hi = max(0.0, pre + post - n), min(pre, post)
        both = float(round(lo + stick * (hi - lo)))
        arms.append({"n": n, "conversions": post, "pre_conversions": pre, "cross_sum": both})
    return arms


def srm_case():
    k = rng.randint(2, 5)
    w = [rng.choice([1.0, rng.uniform(0.1, 1)]) for _ in range(k)]
    if rng.random() < 0.05:
        w[rng.randrange(k)] = 0.0
    total = int(loguniform(10, 5_000_000))
    sw = sum(w)
    skew = rng.choice([0, 0, 0.01, 0.05])
    counts = [max(0, round(total * wi / sw * (1 + rng.gauss(0, skew)) + rng.gauss(0, 1) * math.sqrt(total * wi / sw + 1))) for wi in w]
    if rng.random() < 0.02:
        counts = [0] * k
    return counts, w


def stat(kind, arm):
    if kind == "quantile":
        return QuantileStatistic(
            n=arm["n"], n_star=arm["n_star"], nu=arm["nu"], quantile_hat=arm["quantile_hat"],
            quantile_lower=arm["quantile_lower"], quantile_upper=arm["quantile_upper"],
        )
    if kind == "ratio":
        return RatioStatistic(
            n=arm["n"],
            m_statistic=SampleMeanStatistic(n=arm["n"], sum=arm["m_sum"], sum_squares=arm["m_sum_squares"]),
            d_statistic=SampleMeanStatistic(n=arm["n"], sum=arm["d_sum"], sum_squares=arm["d_sum_squares"]),
            m_d_sum_of_products=arm["m_d_sum_of_products"],
        )
    if kind == "mean":
        return SampleMeanStatistic(n=arm["n"], sum=arm["sum"], sum_squares=arm["sum_squares"])
    if kind == "binomial":
        return ProportionStatistic(n=arm["n"], sum=arm["conversions"])
    if kind == "cuped_mean":
        return RegressionAdjustedStatistic(
            n=arm["n"],
            post_statistic=SampleMeanStatistic(n=arm["n"], sum=arm["sum"], sum_squares=arm["sum_squares"]),
            pre_statistic=SampleMeanStatistic(n=arm["n"], sum=arm["pre_sum"], sum_squares=arm["pre_sum_squares"]),
            post_pre_sum_of_products=arm["cross_sum"],
            theta=0.0,
        )
    return RegressionAdjustedStatistic(
        n=arm["n"],
        post_statistic=ProportionStatistic(n=arm["n"], sum=arm["conversions"]),
        pre_statistic=ProportionStatistic(n=arm["n"], sum=arm["pre_conversions"]),
        post_pre_sum_of_products=arm["cross_sum"],
        theta=0.0,
    )


def frequentist(res):
    return {
        "estimate": res.expected,
        "ci_low": res.ci[0],
        "ci_high": res.ci[1],
        "se": res.uplift.stddev,
        "p_value": res.p_value,
        "error": res.error_message,
    }


def bayesian(res):
    return {
        "estimate": res.expected,
        "ci_low": res.ci[0],
        "ci_high": res.ci[1],
        "se": res.uplift.stddev,
        "chance_to_win": res.chance_to_win,
        "risk_control": res.risk[0],
        "risk_treatment": res.risk[1],
        "error": res.error_message,
    }


def guarded(f):
    try:
        out = f()
        if any(isinstance(v, float) and not math.isfinite(v) for v in out.values()):
            return {"exception": "non-finite result"}
        return out
    except ZeroDivisionError as e:  # gbstats divides 0 by 0.0 on some degenerate inputs
        return {"exception": type(e).__name__}


def analyse(inp):
    kind = inp["kind"]
    a, b = inp["control"], inp["treatment"]
    out = {"id": inp["id"]}
    alpha = inp["alpha"]
    for diff in ["relative", "absolute"]:
        out[f"ttest_{diff}"] = guarded(lambda: frequentist(TwoSidedTTest(stat(kind, a), stat(kind, b), FrequentistConfig(alpha=alpha, difference_type=diff)).compute_result()))
        out[f"sequential_{diff}"] = guarded(lambda: frequentist(SequentialTwoSidedTTest(stat(kind, a), stat(kind, b), SequentialConfig(alpha=alpha, difference_type=diff, sequential_tuning_parameter=inp["sequential_tuning_parameter"])).compute_result()))
        prior = inp.get("prior")
        if prior is None:
            config = EffectBayesianConfig(alpha=alpha, difference_type=diff, inverse=inp["inverse"])
        else:
            config = EffectBayesianConfig(
                alpha=alpha,
                difference_type=diff,
                inverse=inp["inverse"],
                prior_effect=GaussianPrior(mean=prior["mean"], variance=prior["variance"], proper=prior["proper"]),
                prior_type=prior["type"],
            )
        out[f"bayesian_{diff}"] = guarded(lambda: bayesian(EffectBayesianABTest(stat(kind, a), stat(kind, b), config).compute_result()))
    if kind.startswith("cuped"):
        out["cuped_theta"] = compute_theta(stat(kind, a), stat(kind, b))
    return out


def main():
    makers = {"mean": mean_case, "binomial": binomial_case, "cuped_mean": cuped_mean_case, "cuped_binomial": cuped_binomial_case, "ratio": ratio_case, "quantile": quantile_case}
    with open(OUT, "w") as f:
        for i in range(N_CASES):
            kind = rng.choice(["mean", "binomial", "cuped_mean", "cuped_binomial", "ratio", "quantile", "srm"])
            if kind == "srm":
                counts, weights = srm_case()
                inp = {"id": f"case-{i}", "kind": "srm", "counts": counts, "weights": weights}
                out = {"id": inp["id"], "srm_p_value": check_srm(counts, weights)}
            else:
                control, treatment = makers[kind]()
                inp = {
                    "id": f"case-{i}",
                    "kind": kind,
                    "alpha": rng.choice([0.05, 0.05, 0.1, 0.01, rng.uniform(0.001, 0.2)]),
                    "sequential_tuning_parameter": rng.choice([5000, loguniform(100, 1_000_000)]),
                    "inverse": rng.random() < 0.3,
                    "control": control,
                    "treatment": treatment,
                }
                if rng.random() < 0.3:
                    inp["prior"] = {
                        "mean": rng.gauss(0, 0.1),
                        "variance": loguniform(0.001, 1),
                        "proper": rng.random() < 0.9,
                        "type": rng.choice(["relative", "absolute"]),
                    }
                out = analyse(inp)
            f.write(json.dumps({"input": inp, "output": out}, allow_nan=False, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main()
