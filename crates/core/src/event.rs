//! The typed events of the one append-only log. Audit, metrics, evals and measurement are
//! views of this log.
//!
//! An event is stored as its type name plus a JSON object of its fields (`data`). New
//! fields may be added to a type; readers ignore fields they do not know, so old binaries
//! can read newer logs.

use crate::{EventId, TenantId, Timestamp};
use serde::{Deserialize, Serialize};

/// Tags carried from a request into cost and events.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tags {
    /// The product feature that caused the event (`x-regelkreis-feature`).
    pub feature: Option<String>,
    /// The marketing campaign the event belongs to (`x-regelkreis-campaign`).
    pub campaign: Option<String>,
}

/// What happened. Each variant is one event type; its name is the snake_case variant name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum EventKind {
    /// An HTTP request was answered.
    Request {
        /// HTTP method.
        method: String,
        /// The matched route template, not the raw path.
        route: String,
        /// HTTP status code of the answer.
        status: u16,
        /// Time from first byte in to response head out.
        latency_us: u64,
        /// The API key that made the request, when one was presented and valid.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_id: Option<String>,
    },
    /// A guardrail decided about an input or output.
    GuardDecision {
        /// Where the check ran (`input`, `output`, `retrieved`, `tool`).
        stage: String,
        /// `allow`, `flag`, `rewrite` or `block`.
        decision: String,
        /// The detector's score in `[0, 1]`.
        score: f64,
        /// Why, in short machine-readable reasons.
        #[serde(default)]
        reasons: Vec<String>,
        /// The version of the policy that decided.
        policy_version: String,
    },
    /// Sources were retrieved from a knowledge base.
    Retrieval {
        /// The knowledge base.
        kb: String,
        /// A hash of the query (queries may hold personal data).
        query_hash: String,
        /// The chunks returned, best first.
        #[serde(default)]
        chunk_ids: Vec<String>,
        /// Time the retrieval took.
        latency_us: u64,
    },
    /// A model provider was called.
    ModelCall {
        /// The provider (`openai`, `anthropic`, `local`, …).
        provider: String,
        /// The provider's model name.
        model: String,
        /// Prompt tokens.
        input_tokens: u64,
        /// Completion tokens.
        output_tokens: u64,
        /// Prompt tokens served from the provider's cache.
        #[serde(default)]
        cached_tokens: u64,
        /// Cost in micro-units.
        cost_micros: i64,
        /// Time the call took.
        latency_us: u64,
        /// Whether the gateway answered from its own cache.
        #[serde(default)]
        cache_hit: bool,
        /// The providers tried before this one answered.
        #[serde(default)]
        fallback_path: Vec<String>,
        /// The API key that made the call.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        key_id: Option<String>,
        /// The model (or alias, or tier) the client asked for.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        requested_model: Option<String>,
        /// Prompt tokens written to the provider's cache.
        #[serde(default)]
        cache_write_tokens: u64,
        /// The provider reported no usage; the gateway counted the tokens itself.
        #[serde(default)]
        estimated: bool,
        /// Callers that shared one upstream call (the cost is split between them).
        #[serde(default)]
        shared_by: u32,
        /// The answer was streamed.
        #[serde(default)]
        stream: bool,
        /// The stream broke after it started.
        #[serde(default)]
        interrupted: bool,
    },
    /// A unit was exposed to an experiment arm or a bandit decision.
    Exposure {
        /// The experiment or bandit.
        experiment: String,
        /// The arm shown.
        arm: String,
        /// The unit (user, session, geo) that saw it.
        unit: String,
    },
    /// An outcome was observed (a click, an order, revenue).
    Outcome {
        /// The metric name.
        name: String,
        /// Its value; must be finite.
        value: f64,
        /// The unit it belongs to, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
    /// Anything else, named.
    Custom {
        /// A name for the kind of event.
        name: String,
        /// Free-form data.
        #[serde(default)]
        data: serde_json::Value,
    },
}

/// An event could not be decoded or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum EventDecodeError {
    /// The type name is not one of [`EventKind::TYPE_NAMES`].
    #[error("unknown event type {0:?}")]
    UnknownType(String),
    /// The data does not fit the type.
    #[error("invalid data for event type {ty}: {source}")]
    Data {
        /// The event type.
        ty: String,
        /// What serde said.
        source: serde_json::Error,
    },
    /// A field holds a value the type forbids.
    #[error("invalid event: {0}")]
    Invalid(String),
}

impl EventKind {
    /// Every event type name.
    pub const TYPE_NAMES: [&'static str; 7] = [
        "request",
        "guard_decision",
        "retrieval",
        "model_call",
        "exposure",
        "outcome",
        "custom",
    ];

    /// The type name, as stored and queried.
    pub fn type_name(&self) -> &'static str {
        match self {
            EventKind::Request { .. } => "request",
            EventKind::GuardDecision { .. } => "guard_decision",
            EventKind::Retrieval { .. } => "retrieval",
            EventKind::ModelCall { .. } => "model_call",
            EventKind::Exposure { .. } => "exposure",
            EventKind::Outcome { .. } => "outcome",
            EventKind::Custom { .. } => "custom",
        }
    }

    /// Checks values that JSON cannot carry or that the type forbids.
    pub fn validate(&self) -> Result<(), EventDecodeError> {
        match self {
            EventKind::Outcome { value, .. } if !value.is_finite() => Err(
                EventDecodeError::Invalid("outcome value must be a finite number".into()),
            ),
            EventKind::GuardDecision { score, .. } if !score.is_finite() => Err(
                EventDecodeError::Invalid("guard score must be a finite number".into()),
            ),
            _ => Ok(()),
        }
    }

    /// The fields as a JSON object, without the type name.
    pub fn encode_data(&self) -> String {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(mut map)) => map
                .remove("data")
                .map(|d| d.to_string())
                .unwrap_or_else(|| "{}".to_owned()),
            _ => "{}".to_owned(),
        }
    }

    /// Decodes an event from its type name and JSON data.
    pub fn decode(type_name: &str, data: &[u8]) -> Result<Self, EventDecodeError> {
        if !Self::TYPE_NAMES.contains(&type_name) {
            return Err(EventDecodeError::UnknownType(
                type_name.chars().take(64).collect(),
            ));
        }
        let data_err = |source| EventDecodeError::Data {
            ty: type_name.to_owned(),
            source,
        };
        let value: serde_json::Value = serde_json::from_slice(data).map_err(data_err)?;
        Self::from_parts(type_name, value)
    }

    /// Builds an event from its type name and an already parsed JSON value.
    pub fn from_parts(type_name: &str, data: serde_json::Value) -> Result<Self, EventDecodeError> {
        if !Self::TYPE_NAMES.contains(&type_name) {
            return Err(EventDecodeError::UnknownType(
                type_name.chars().take(64).collect(),
            ));
        }
        let tagged = serde_json::json!({ "type": type_name, "data": data });
        let kind: EventKind =
            serde_json::from_value(tagged).map_err(|source| EventDecodeError::Data {
                ty: type_name.to_owned(),
                source,
            })?;
        kind.validate()?;
        Ok(kind)
    }
}

/// An event to append: the store assigns its id.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// When it happened.
    pub at: Timestamp,
    /// Feature and campaign.
    pub tags: Tags,
    /// What happened.
    pub kind: EventKind,
}

/// A stored event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// Its id; ids grow in append order.
    pub id: EventId,
    /// The tenant it belongs to.
    pub tenant: TenantId,
    /// When it happened.
    pub at: Timestamp,
    /// Feature and campaign.
    pub tags: Tags,
    /// What happened.
    pub kind: EventKind,
}

/// Which events to read. Results are in id order, at most `limit` of them.
#[derive(Debug, Clone, PartialEq)]
pub struct EventQuery {
    /// Only this tenant's events; there is no query across tenants.
    pub tenant: TenantId,
    /// Only this type, when set.
    pub type_name: Option<String>,
    /// At or after this time.
    pub since: Option<Timestamp>,
    /// Strictly before this time.
    pub until: Option<Timestamp>,
    /// Only ids greater than this, for paging.
    pub after: Option<EventId>,
    /// At most this many.
    pub limit: usize,
}

impl EventQuery {
    /// All of a tenant's events, first page of `limit`.
    pub fn for_tenant(tenant: TenantId, limit: usize) -> Self {
        EventQuery {
            tenant,
            type_name: None,
            since: None,
            until: None,
            after: None,
            limit,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn text() -> impl Strategy<Value = String> {
        proptest::string::string_regex(".{0,24}").unwrap()
    }

    fn finite() -> impl Strategy<Value = f64> {
        proptest::num::f64::NORMAL | proptest::num::f64::ZERO | proptest::num::f64::SUBNORMAL
    }

    fn kind() -> impl Strategy<Value = EventKind> {
        prop_oneof![
            (
                text(),
                text(),
                any::<u16>(),
                any::<u64>(),
                proptest::option::of(text())
            )
                .prop_map(|(method, route, status, latency_us, key_id)| {
                    EventKind::Request {
                        method,
                        route,
                        status,
                        latency_us,
                        key_id,
                    }
                }),
            (
                text(),
                text(),
                finite(),
                proptest::collection::vec(text(), 0..3),
                text()
            )
                .prop_map(|(stage, decision, score, reasons, policy_version)| {
                    EventKind::GuardDecision {
                        stage,
                        decision,
                        score,
                        reasons,
                        policy_version,
                    }
                }),
            (
                text(),
                text(),
                proptest::collection::vec(text(), 0..3),
                any::<u64>()
            )
                .prop_map(|(kb, query_hash, chunk_ids, latency_us)| {
                    EventKind::Retrieval {
                        kb,
                        query_hash,
                        chunk_ids,
                        latency_us,
                    }
                }),
            (
                text(),
                text(),
                any::<u64>(),
                any::<u64>(),
                any::<u64>(),
                any::<i64>(),
                any::<u64>(),
                any::<bool>()
            )
                .prop_map(|(provider, model, i, o, c, cost, lat, hit)| {
                    EventKind::ModelCall {
                        provider,
                        model,
                        input_tokens: i,
                        output_tokens: o,
                        cached_tokens: c,
                        cost_micros: cost,
                        latency_us: lat,
                        cache_hit: hit,
                        fallback_path: vec![],
                        key_id: None,
                        requested_model: None,
                        cache_write_tokens: 0,
                        estimated: false,
                        shared_by: 1,
                        stream: false,
                        interrupted: false,
                    }
                }),
            (text(), text(), text()).prop_map(|(experiment, arm, unit)| EventKind::Exposure {
                experiment,
                arm,
                unit
            }),
            (text(), finite(), proptest::option::of(text()))
                .prop_map(|(name, value, unit)| EventKind::Outcome { name, value, unit }),
            (text(), text()).prop_map(|(name, s)| EventKind::Custom {
                name,
                data: serde_json::json!({ "note": s })
            }),
        ]
    }

    proptest! {
        #[test]
        fn every_event_round_trips_through_its_stored_form(k in kind()) {
            let data = k.encode_data();
            let back = EventKind::decode(k.type_name(), data.as_bytes()).unwrap();
            prop_assert_eq!(back, k);
        }

        #[test]
        fn decoding_arbitrary_bytes_never_panics(
            ty in prop_oneof![Just("outcome".to_owned()), Just("model_call".to_owned()), text()],
            data in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let _ = EventKind::decode(&ty, &data);
        }

        #[test]
        fn decoding_arbitrary_json_never_panics(
            ty in proptest::sample::select(EventKind::TYPE_NAMES.to_vec()),
            json in r#"\{("[a-z_]{1,12}": ?(-?[0-9]{1,25}(\.[0-9]{1,5})?|"[^"\\]{0,8}"|true|null|\[\]),? ?){0,6}\}"#,
        ) {
            let _ = EventKind::decode(ty, json.as_bytes());
        }
    }

    #[test]
    fn non_finite_outcomes_are_refused() {
        let err = EventKind::from_parts("outcome", serde_json::json!({"name": "x", "value": null}));
        assert!(err.is_err());
        let k = EventKind::Outcome {
            name: "x".into(),
            value: f64::NAN,
            unit: None,
        };
        assert!(k.validate().is_err());
        assert!(matches!(
            EventKind::decode("nope", b"{}"),
            Err(EventDecodeError::UnknownType(_))
        ));
    }
}
