//! Tool whitelists: which tenant or agent may call which tool, with a JSON
//! Schema per tool; arguments are validated before any call.

use serde::{Deserialize, Serialize};

/// A whitelisted tool as written in a policy.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ToolRule {
    /// Tool name as the model calls it.
    pub name: String,
    /// Tenants allowed to call it (`*` for all).
    #[serde(default = "everyone")]
    pub tenants: Vec<String>,
    /// Agents allowed to call it (`*` for all).
    #[serde(default = "everyone")]
    pub agents: Vec<String>,
    /// JSON Schema of the arguments, as a JSON string.
    pub schema: String,
}

fn everyone() -> Vec<String> {
    vec!["*".into()]
}

/// Why a call was refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum Refusal {
    /// The tool is not on the whitelist.
    #[error("tool {tool:?} is not whitelisted")]
    NotWhitelisted {
        /// The requested tool.
        tool: String,
    },
    /// The tool exists but not for this tenant or agent.
    #[error("tool {tool:?} is not allowed for this tenant or agent")]
    NotAllowed {
        /// The requested tool.
        tool: String,
    },
    /// The arguments break the tool's schema.
    #[error("arguments of {tool:?} do not match its schema: {}", errors.join("; "))]
    InvalidArguments {
        /// The requested tool.
        tool: String,
        /// One message per schema violation.
        errors: Vec<String>,
    },
}

/// Errors in a policy's tool section.
#[derive(Debug, thiserror::Error)]
pub enum ToolError {
    /// The schema is not JSON.
    #[error("tool {tool:?}: schema is not JSON: {message}")]
    Json {
        /// Tool name.
        tool: String,
        /// Parser message.
        message: String,
    },
    /// The schema is not a valid JSON Schema.
    #[error("tool {tool:?}: invalid JSON Schema: {message}")]
    Schema {
        /// Tool name.
        tool: String,
        /// Validator message.
        message: String,
    },
}

/// Compiled whitelist.
pub struct Whitelist {
    tools: Vec<(ToolRule, jsonschema::Validator)>,
}

impl std::fmt::Debug for Whitelist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.tools.iter().map(|(r, _)| &r.name))
            .finish()
    }
}

fn allowed(list: &[String], who: &str) -> bool {
    list.iter().any(|x| x == "*" || x == who)
}

impl Whitelist {
    /// Compiles every tool's schema.
    pub fn new(rules: Vec<ToolRule>) -> Result<Self, ToolError> {
        let tools = rules
            .into_iter()
            .map(|r| {
                let schema: serde_json::Value =
                    serde_json::from_str(&r.schema).map_err(|e| ToolError::Json {
                        tool: r.name.clone(),
                        message: e.to_string(),
                    })?;
                let v = jsonschema::validator_for(&schema).map_err(|e| ToolError::Schema {
                    tool: r.name.clone(),
                    message: e.to_string(),
                })?;
                Ok((r, v))
            })
            .collect::<Result<_, ToolError>>()?;
        Ok(Self { tools })
    }

    /// Names of the tools `tenant`/`agent` may call.
    pub fn allowed_tools(&self, tenant: &str, agent: &str) -> Vec<&str> {
        self.tools
            .iter()
            .filter(|(r, _)| allowed(&r.tenants, tenant) && allowed(&r.agents, agent))
            .map(|(r, _)| r.name.as_str())
            .collect()
    }

    /// Checks one call before it runs.
    pub fn check(
        &self,
        tenant: &str,
        agent: &str,
        tool: &str,
        arguments: &serde_json::Value,
    ) -> Result<(), Refusal> {
        let Some((rule, validator)) = self.tools.iter().find(|(r, _)| r.name == tool) else {
            return Err(Refusal::NotWhitelisted { tool: tool.into() });
        };
        if !allowed(&rule.tenants, tenant) || !allowed(&rule.agents, agent) {
            return Err(Refusal::NotAllowed { tool: tool.into() });
        }
        let errors: Vec<String> = validator
            .iter_errors(arguments)
            .map(|e| {
                let path = e.instance_path.to_string();
                if path.is_empty() {
                    e.to_string()
                } else {
                    format!("{path}: {e}")
                }
            })
            .collect();
        if errors.is_empty() {
            Ok(())
        } else {
            Err(Refusal::InvalidArguments {
                tool: tool.into(),
                errors,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn list() -> Whitelist {
        Whitelist::new(vec![ToolRule {
            name: "send_email".into(),
            tenants: vec!["*".into()],
            agents: vec!["support".into()],
            schema: r#"{"type":"object","required":["to","body"],"additionalProperties":false,
                        "properties":{"to":{"type":"string","format":"email","pattern":"@example\\.com$"},"body":{"type":"string","maxLength":2000}}}"#
                .into(),
        }])
        .unwrap()
    }

    #[test]
    fn validates_before_calling() {
        let w = list();
        assert_eq!(
            w.check(
                "t",
                "support",
                "send_email",
                &json!({"to": "a@example.com", "body": "hi"})
            ),
            Ok(())
        );
        assert!(matches!(
            w.check("t", "support", "delete_all", &json!({})),
            Err(Refusal::NotWhitelisted { .. })
        ));
        assert!(matches!(
            w.check(
                "t",
                "sales",
                "send_email",
                &json!({"to": "a@example.com", "body": "hi"})
            ),
            Err(Refusal::NotAllowed { .. })
        ));
        let Err(Refusal::InvalidArguments { errors, .. }) = w.check(
            "t",
            "support",
            "send_email",
            &json!({"to": "x@evil.com", "cc": 1}),
        ) else {
            panic!("expected invalid arguments");
        };
        assert!(errors.len() >= 2, "{errors:?}");
        assert_eq!(w.allowed_tools("t", "support"), vec!["send_email"]);
    }

    #[test]
    fn broken_schemas_are_errors() {
        let bad = |schema: &str| {
            Whitelist::new(vec![ToolRule {
                name: "x".into(),
                tenants: everyone(),
                agents: everyone(),
                schema: schema.into(),
            }])
        };
        assert!(matches!(bad("{"), Err(ToolError::Json { .. })));
        assert!(matches!(
            bad(r#"{"type": 5}"#),
            Err(ToolError::Schema { .. })
        ));
    }
}
