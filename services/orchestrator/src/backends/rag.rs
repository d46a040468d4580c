//! Knowledge for answers: passages from rag-api ([`RagClient`]), searched
//! only in the collections the house's current mode lets the speaker read
//! ([`CollectionRules`], through mode-service's policy).
//!
//! - rag-api `GET /v1/collections`: the collections and their access labels.
//! - rag-api `POST /v1/search` `{query, collections, access, limit}`.
//! - mode-service `POST /v1/policy/check` `{intent: "question", collection}`:
//!   whether the mode lets a question read that collection (its
//!   `rag_collections` rule), and which mode that is.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::json;

use super::{BackendError, JsonApi, MODE_SERVICE, Mode, SetupError};

/// rag-api's name in errors and metrics.
pub const RAG_API: &str = "rag-api";

/// The intent a question is checked as in mode-service's policy.
pub const QUESTION_INTENT: &str = "question";

/// Who is reading: rag-api shows `owner` collections to the owner only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Reader {
    /// The owner: every collection.
    Owner,
    /// A guest (or a mode this version does not know): collections
    /// labelled `guest` only.
    Guest,
}

/// A collection as rag-api lists it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CollectionInfo {
    /// Its name.
    pub name: String,
    /// Who may read it.
    pub access: Reader,
}

/// One passage found for a question.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct Passage {
    /// How close it is to the question (cosine, higher is closer).
    pub score: f32,
    /// Its collection.
    pub collection: String,
    /// Its document's title.
    #[serde(default)]
    pub title: String,
    /// The heading it is under.
    #[serde(default)]
    pub heading: String,
    /// The text.
    pub text: String,
}

/// What a search may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Access {
    /// The reader level sent to rag-api.
    pub reader: Reader,
    /// The collections the mode allows (empty: none, so no search).
    pub collections: Vec<String>,
}

/// rag-api's search.
#[derive(Debug, Clone)]
pub struct RagClient {
    api: JsonApi,
}

#[derive(Debug, Deserialize)]
struct SearchAnswer {
    results: Vec<Passage>,
}

impl RagClient {
    /// A client for rag-api at `url`, each call within `deadline`.
    pub fn new(url: &str, deadline: Duration) -> Result<Self, SetupError> {
        Ok(Self {
            api: JsonApi::new(RAG_API, url, deadline)?,
        })
    }

    /// The collections there are.
    pub async fn collections(&self) -> Result<Vec<CollectionInfo>, BackendError> {
        self.api.send(self.api.get(&["v1", "collections"])).await
    }

    /// At most `limit` passages for `query` scoring at least `threshold`,
    /// from the collections `access` allows, as its reader.
    pub async fn search(
        &self,
        query: &str,
        access: &Access,
        limit: usize,
        threshold: f32,
    ) -> Result<Vec<Passage>, BackendError> {
        let body = json!({
            "query": query,
            "collections": access.collections,
            "access": access.reader,
            "limit": limit,
            "threshold": threshold,
        });
        let request = self.api.post(&["v1", "search"]).json(&body);
        let answer: SearchAnswer = self.api.send(request).await?;
        Ok(answer.results)
    }
}

/// Which collections the current mode lets a question read, by
/// mode-service's policy (`rag_collections` per mode).
#[derive(Debug, Clone)]
pub struct CollectionRules {
    api: JsonApi,
}

/// mode-service's answer to a check, the parts used here.
#[derive(Debug, Deserialize)]
struct Check {
    mode: Mode,
    allowed: bool,
}

impl CollectionRules {
    /// Rules from mode-service at `url`, each call within `deadline`.
    pub fn new(url: &str, deadline: Duration) -> Result<Self, SetupError> {
        Ok(Self {
            api: JsonApi::new(MODE_SERVICE, url, deadline)?,
        })
    }

    /// Of `collections`, those a question may read now, and as whom (the
    /// owner in owner mode; a guest in any other). All are checked at
    /// once; one failed check fails the whole (least privilege).
    pub async fn access(&self, collections: &[CollectionInfo]) -> Result<Access, BackendError> {
        let checks = collections.iter().map(|c| {
            let request = self.api.post(&["v1", "policy", "check"]).json(&json!({
                "intent": QUESTION_INTENT,
                "collection": c.name,
            }));
            self.api.send::<Check>(request)
        });
        let checks = futures::future::try_join_all(checks).await?;
        let owner = !checks.is_empty() && checks.iter().all(|c| c.mode == Mode::Owner);
        let reader = if owner { Reader::Owner } else { Reader::Guest };
        let allowed = collections
            .iter()
            .zip(&checks)
            .filter(|(c, check)| {
                check.allowed && (reader == Reader::Owner || c.access == Reader::Guest)
            })
            .map(|(c, _)| c.name.clone())
            .collect();
        Ok(Access {
            reader,
            collections: allowed,
        })
    }
}
