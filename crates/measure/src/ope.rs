//! Off-policy evaluation: the value a new policy would have had, estimated from rounds
//! logged under another policy with known propensities. Inverse propensity weighting
//! (IPS), self-normalised IPS and doubly robust, with the definitions of the `obp` package.

/// One logged round.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoggedRound {
    /// The action the logging policy took.
    pub action: usize,
    /// The observed reward.
    pub reward: f64,
    /// The logging policy's probability of that action.
    pub propensity: f64,
}

/// An input that cannot be evaluated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpeError {
    /// No rounds.
    #[error("no logged rounds")]
    Empty,
    /// Lengths of rounds and policy probabilities differ.
    #[error("{rounds} rounds but {given} rows of policy probabilities")]
    Length {
        /// Rounds.
        rounds: usize,
        /// Rows given.
        given: usize,
    },
    /// A propensity is not in (0, 1].
    #[error("round {0}: propensity must be in (0, 1]")]
    Propensity(usize),
    /// A round's action has no probability in the evaluated policy.
    #[error("round {0}: action outside the policy's distribution")]
    Action(usize),
}

fn weights(rounds: &[LoggedRound], target: &[Vec<f64>]) -> Result<Vec<f64>, OpeError> {
    if rounds.is_empty() {
        return Err(OpeError::Empty);
    }
    if target.len() != rounds.len() {
        return Err(OpeError::Length {
            rounds: rounds.len(),
            given: target.len(),
        });
    }
    rounds
        .iter()
        .zip(target)
        .enumerate()
        .map(|(i, (r, dist))| {
            if !(r.propensity > 0.0 && r.propensity <= 1.0) {
                return Err(OpeError::Propensity(i));
            }
            let p = dist.get(r.action).ok_or(OpeError::Action(i))?;
            Ok(p / r.propensity)
        })
        .collect()
}

/// IPS: mean of wᵢ rᵢ with wᵢ = π(aᵢ | xᵢ) / pᵢ. `target[i]` is π(· | xᵢ).
pub fn ips(rounds: &[LoggedRound], target: &[Vec<f64>]) -> Result<f64, OpeError> {
    let w = weights(rounds, target)?;
    Ok(rounds
        .iter()
        .zip(&w)
        .map(|(r, w)| w * r.reward)
        .sum::<f64>()
        / rounds.len() as f64)
}

/// Self-normalised IPS: Σ wᵢ rᵢ / Σ wᵢ.
pub fn snips(rounds: &[LoggedRound], target: &[Vec<f64>]) -> Result<f64, OpeError> {
    let w = weights(rounds, target)?;
    let total: f64 = w.iter().sum();
    if total == 0.0 {
        return Ok(0.0);
    }
    Ok(rounds
        .iter()
        .zip(&w)
        .map(|(r, w)| w * r.reward)
        .sum::<f64>()
        / total)
}

/// Doubly robust: mean of Σₐ π(a|xᵢ) q̂(xᵢ, a) + wᵢ (rᵢ − q̂(xᵢ, aᵢ)), where `q_hat[i]`
/// is a reward model's prediction for every action in round i.
pub fn doubly_robust(
    rounds: &[LoggedRound],
    target: &[Vec<f64>],
    q_hat: &[Vec<f64>],
) -> Result<f64, OpeError> {
    let w = weights(rounds, target)?;
    if q_hat.len() != rounds.len() {
        return Err(OpeError::Length {
            rounds: rounds.len(),
            given: q_hat.len(),
        });
    }
    let mut total = 0.0;
    for (i, ((r, dist), q)) in rounds.iter().zip(target).zip(q_hat).enumerate() {
        let direct: f64 = dist.iter().zip(q).map(|(p, q)| p * q).sum();
        let q_a = q.get(r.action).ok_or(OpeError::Action(i))?;
        total += direct + w[i] * (r.reward - q_a);
    }
    Ok(total / rounds.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimators_agree_on_the_logging_policy_itself() {
        let rounds = vec![
            LoggedRound {
                action: 0,
                reward: 1.0,
                propensity: 0.5,
            },
            LoggedRound {
                action: 1,
                reward: 0.0,
                propensity: 0.5,
            },
            LoggedRound {
                action: 1,
                reward: 1.0,
                propensity: 0.5,
            },
            LoggedRound {
                action: 0,
                reward: 0.0,
                propensity: 0.5,
            },
        ];
        let same = vec![vec![0.5, 0.5]; 4];
        assert_eq!(ips(&rounds, &same).unwrap(), 0.5);
        assert_eq!(snips(&rounds, &same).unwrap(), 0.5);
        let always_0 = vec![vec![1.0, 0.0]; 4];
        assert_eq!(ips(&rounds, &always_0).unwrap(), 0.5);
        let q = vec![vec![0.5, 0.5]; 4];
        assert_eq!(doubly_robust(&rounds, &always_0, &q).unwrap(), 0.5);
        assert_eq!(ips(&[], &[]), Err(OpeError::Empty));
        let bad = [LoggedRound {
            action: 0,
            reward: 1.0,
            propensity: 0.0,
        }];
        assert_eq!(ips(&bad, &[vec![1.0]]), Err(OpeError::Propensity(0)));
    }
}
