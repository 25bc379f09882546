//! `/api/kb/…`: knowledge bases. Documents come in as JSON (one object or an array) or
//! as a multipart file upload; the answer comes once they are searchable. Text is
//! redacted by the tenant's guard policy before anything is embedded or stored.
//! Searches are confined to the caller's tenant by construction: each tenant's
//! knowledge bases live in a folder of their own.

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::Json;
use regelkreis_core::{EventKind, NewEvent, Timestamp};
use regelkreis_knowledge::{
    DocMetadata, Format, KnowledgeBase, KnowledgeError, NewDocument, SearchRequest,
};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::extract::{ApiJson, ApiPath};
use crate::{ApiError, AppState, Principal};

impl From<KnowledgeError> for ApiError {
    fn from(e: KnowledgeError) -> Self {
        match e {
            KnowledgeError::Invalid(m) => ApiError::Unprocessable(m),
            KnowledgeError::NotFound(m) => ApiError::NotFound(m),
            KnowledgeError::Embed(regelkreis_knowledge::embed::EmbedError::Input(m)) => {
                ApiError::Unprocessable(m)
            }
            KnowledgeError::Embed(regelkreis_knowledge::embed::EmbedError::Model(m)) => {
                ApiError::Unavailable(format!("embedding model unavailable: {m}"))
            }
            other => ApiError::Internal(other.to_string()),
        }
    }
}

/// Most documents in one request.
const MAX_BATCH: usize = 256;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct DocumentBody {
    id: String,
    #[serde(default)]
    title: Option<String>,
    text: String,
    #[serde(default = "default_format")]
    format: Format,
    #[serde(default)]
    metadata: DocMetadata,
}

fn default_format() -> Format {
    Format::Text
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(Box<DocumentBody>),
    Many(Vec<DocumentBody>),
}

fn into_new(d: DocumentBody) -> Result<NewDocument, ApiError> {
    if d.format == Format::Pdf {
        return Err(ApiError::Unprocessable(
            "a PDF is uploaded as a multipart file, not as JSON text".into(),
        ));
    }
    Ok(NewDocument {
        id: d.id,
        title: d.title,
        body: d.text.into_bytes(),
        format: d.format,
        metadata: d.metadata,
    })
}

async fn multipart_documents(mut form: Multipart) -> Result<Vec<NewDocument>, ApiError> {
    let mut file: Option<(Vec<u8>, Option<String>)> = None;
    let (mut id, mut title, mut format, mut metadata) = (None, None, None, DocMetadata::default());
    while let Some(field) = form
        .next_field()
        .await
        .map_err(|e| ApiError::BadRequest(format!("multipart body: {e}")))?
    {
        let name = field.name().unwrap_or("").to_owned();
        let filename = field.file_name().map(str::to_owned);
        let bytes = field
            .bytes()
            .await
            .map_err(|e| ApiError::BadRequest(format!("multipart field {name}: {e}")))?;
        let text = || String::from_utf8_lossy(&bytes).into_owned();
        match name.as_str() {
            "file" => file = Some((bytes.to_vec(), filename)),
            "id" => id = Some(text()),
            "title" => title = Some(text()),
            "format" => {
                format = Some(
                    serde_json::from_value::<Format>(Value::String(text())).map_err(|_| {
                        ApiError::Unprocessable("format must be text, markdown, html or pdf".into())
                    })?,
                )
            }
            "metadata" => {
                metadata = serde_json::from_slice(&bytes)
                    .map_err(|e| ApiError::Unprocessable(format!("metadata: {e}")))?
            }
            other => {
                return Err(ApiError::Unprocessable(format!(
                    "unknown multipart field {other:?}"
                )))
            }
        }
    }
    let (body, filename) = file
        .ok_or_else(|| ApiError::Unprocessable("multipart upload needs a `file` field".into()))?;
    let format = format
        .or_else(|| {
            filename
                .as_deref()
                .and_then(|f| Format::from_path(std::path::Path::new(f)))
        })
        .ok_or_else(|| {
            ApiError::Unprocessable("cannot tell the file's format: give a `format` field".into())
        })?;
    let id = id.or(filename).ok_or_else(|| {
        ApiError::Unprocessable("multipart upload needs an `id` field or a file name".into())
    })?;
    Ok(vec![NewDocument {
        id,
        title,
        body,
        format,
        metadata,
    }])
}

pub(crate) async fn open_kb(
    state: &AppState,
    principal: &Principal,
    kb: &str,
    create: bool,
) -> Result<Arc<KnowledgeBase>, ApiError> {
    let knowledge = state.knowledge()?;
    let tenant = principal.tenant.to_string();
    let kb = kb.to_owned();
    tokio::task::spawn_blocking(move || {
        if create {
            knowledge.get_or_create(&tenant, &kb, None)
        } else {
            knowledge.get(&tenant, &kb)
        }
    })
    .await
    .map_err(|e| ApiError::Internal(format!("knowledge task failed: {e}")))?
    .map_err(ApiError::from)
}

pub(super) async fn ingest(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(kb_name): ApiPath<String>,
    req: Request,
) -> Result<Json<Value>, ApiError> {
    let is_multipart = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    let documents = if is_multipart {
        let form = Multipart::from_request(req, &())
            .await
            .map_err(|e| ApiError::BadRequest(e.body_text()))?;
        multipart_documents(form).await?
    } else {
        let ApiJson(body) = ApiJson::<OneOrMany>::from_request(req, &()).await?;
        match body {
            OneOrMany::One(d) => vec![into_new(*d)?],
            OneOrMany::Many(ds) => ds.into_iter().map(into_new).collect::<Result<_, _>>()?,
        }
    };
    if documents.is_empty() {
        return Err(ApiError::Unprocessable("no documents given".into()));
    }
    if documents.len() > MAX_BATCH {
        return Err(ApiError::Unprocessable(format!(
            "at most {MAX_BATCH} documents per request"
        )));
    }
    regelkreis_knowledge::validate_name(&kb_name)?;
    let kb = open_kb(&state, &principal, &kb_name, true).await?;
    let guard = state.guard().await?;
    let key = regelkreis_guard::pseudonym_key(principal.tenant.as_str());
    let report = tokio::task::spawn_blocking(move || {
        let r = kb.ingest(documents, Some(&guard), &key)?;
        kb.maybe_save(4096)?;
        Ok::<_, KnowledgeError>(r)
    })
    .await
    .map_err(|e| ApiError::Internal(format!("ingest task failed: {e}")))??;
    Ok(Json(json!({
        "kb": kb_name,
        "documents": report.documents,
        "chunks_embedded": report.chunks_embedded,
        "chunks_cached": report.chunks_cached,
    })))
}

pub(super) async fn remove(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath((kb_name, id)): ApiPath<(String, String)>,
) -> Result<Json<Value>, ApiError> {
    let kb = open_kb(&state, &principal, &kb_name, false).await?;
    let doc = id.clone();
    let removed = tokio::task::spawn_blocking(move || kb.remove(&doc))
        .await
        .map_err(|e| ApiError::Internal(format!("knowledge task failed: {e}")))??;
    if !removed {
        return Err(ApiError::NotFound(format!("document {id} does not exist")));
    }
    Ok(Json(json!({ "removed": id })))
}

pub(super) async fn search(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(kb_name): ApiPath<String>,
    ApiJson(req): ApiJson<SearchRequest>,
) -> Result<Json<Value>, ApiError> {
    let kb = open_kb(&state, &principal, &kb_name, false).await?;
    let started = Instant::now();
    let query_hash = hex::encode(&Sha256::digest(req.query.as_bytes())[..16]);
    let hits = tokio::task::spawn_blocking(move || kb.search(&req))
        .await
        .map_err(|e| ApiError::Internal(format!("search task failed: {e}")))??;
    state.push_event(NewEvent {
        tenant: principal.tenant.clone(),
        at: Timestamp::now(),
        tags: regelkreis_core::Tags::default(),
        kind: EventKind::Retrieval {
            kb: kb_name,
            query_hash,
            chunk_ids: hits.iter().map(|h| h.chunk_id.to_string()).collect(),
            latency_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        },
    });
    Ok(Json(json!({ "results": hits })))
}

pub(super) async fn stats(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(kb_name): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let kb = open_kb(&state, &principal, &kb_name, false).await?;
    Ok(Json(json!({
        "kb": kb_name,
        "documents": kb.document_count(),
        "chunks": kb.chunk_count(),
        "model": kb.model(),
        "config": kb.config(),
    })))
}

pub(super) async fn list(
    State(state): State<AppState>,
    principal: Principal,
) -> Result<Json<Value>, ApiError> {
    let knowledge = state.knowledge()?;
    Ok(Json(
        json!({ "knowledge_bases": knowledge.list(principal.tenant.as_str()) }),
    ))
}

/// `POST /api/kb/{kb}/answer`: a grounded answer with citations, or an abstention.
/// Needs `chat` (it calls a model) and `kb:read` (it reads the base).
pub(super) async fn answer(
    State(state): State<AppState>,
    principal: Principal,
    ApiPath(kb_name): ApiPath<String>,
    ApiJson(req): ApiJson<crate::answer::AnswerRequest>,
) -> Result<Json<Value>, ApiError> {
    if !principal.scopes.allows(regelkreis_core::Scope::KbRead) {
        return Err(ApiError::Forbidden(regelkreis_core::Scope::KbRead));
    }
    let a = crate::answer::answer(&state, &principal, &kb_name, req).await?;
    Ok(Json(
        serde_json::to_value(&a).map_err(|e| ApiError::Internal(e.to_string()))?,
    ))
}
