//! The Qdrant backend: the same [`VectorStore`] over a Qdrant server (gRPC),
//! for installs larger than one process's memory or with several replicas.
//!
//! Layout, in two Qdrant collections this service owns:
//!
//! - `{prefix}chunks`: one point per chunk (the model's dimensions, cosine),
//!   its payload the Athena collection, document, position, heading, text,
//!   source and title, with keyword indexes on `collection` and `document`
//!   so that every filter below is an index lookup.
//! - `{prefix}meta`: one point per Athena collection and per document, its
//!   payload the record as JSON (and `kind`/`collection` to filter on), with
//!   a one-dimensional placeholder vector (Qdrant wants one).
//!
//! Point ids are UUIDs derived from a hash of what the point is (collection,
//! document, position), so writing the same thing twice overwrites it: the
//! client's retry of a write cannot duplicate a point.
//!
//! Every write waits until Qdrant has applied it (`wait: true`), so it is
//! durable when acknowledged, and every call has a deadline: a Qdrant that is
//! down or stuck is a [`StoreError::Io`] after at most the configured
//! timeout. Writes from this process are taken one at a time, like the
//! embedded store's, so a document being replaced and its collection being
//! deleted cannot interleave. Qdrant's own wire types stay in this file.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use qdrant_client::qdrant::{
    Condition, CreateCollectionBuilder, CreateFieldIndexCollectionBuilder, DeletePointsBuilder,
    Distance, FieldType, Filter, GetPointsBuilder, PointId, PointStruct, QueryPointsBuilder,
    ScrollPointsBuilder, UpsertPointsBuilder, Value, VectorParamsBuilder, point_id::PointIdOptions,
    vectors_config,
};
use qdrant_client::{Payload, Qdrant, QdrantError};
use sha2::{Digest, Sha256};

use super::{Chunk, Collection, CollectionInfo, Document, Hit, StoreError, VectorStore};
use crate::config::QdrantConfig;

/// Points written per request: a large document is several requests, each
/// well inside the deadline.
const UPSERT_BATCH: usize = 256;

/// Records read per scroll page.
const SCROLL_PAGE: u32 = 512;

/// What a point in the meta collection records.
const KIND_COLLECTION: &str = "collection";
const KIND_DOCUMENT: &str = "document";

/// The store on a Qdrant server.
#[derive(Clone)]
pub struct QdrantStore {
    client: Qdrant,
    /// For messages: which server a failure was about.
    url: String,
    /// The Qdrant collection of chunks.
    chunks: String,
    /// The Qdrant collection of collection and document records.
    meta: String,
    dims: usize,
    /// The deadline of one call (each request, and any retry, within it).
    timeout: Duration,
    /// One write at a time from this process (see the module docs).
    writing: Arc<tokio::sync::Mutex<()>>,
}

impl std::fmt::Debug for QdrantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("QdrantStore")
            .field("url", &self.url)
            .field("chunks", &self.chunks)
            .field("meta", &self.meta)
            .field("dims", &self.dims)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl QdrantStore {
    /// Connects to the server in `config` for vectors of `dims`, creating
    /// this service's Qdrant collections if they are missing; an existing
    /// chunks collection must hold vectors of `dims` compared by cosine.
    pub async fn open(config: &QdrantConfig, dims: usize) -> Result<Self, StoreError> {
        let url = config.url.trim().to_owned();
        let timeout = config.timeout();
        let api_key = (!config.api_key.is_empty()).then(|| config.api_key.expose().to_owned());
        let client = Qdrant::from_url(&url)
            .api_key(api_key)
            .timeout(timeout)
            .connect_timeout(timeout)
            // The version check blocks on a thread of its own and prints to
            // stdout; the health check below says what matters.
            .skip_compatibility_check()
            .build()
            .map_err(|e| StoreError::Io(format!("qdrant at {url}: {}", describe(&e))))?;
        let store = Self {
            client,
            url,
            chunks: format!("{}chunks", config.collection_prefix),
            meta: format!("{}meta", config.collection_prefix),
            dims,
            timeout,
            writing: Arc::new(tokio::sync::Mutex::new(())),
        };
        let health = store.call(store.client.health_check()).await?;
        store
            .ensure_collection(&store.chunks, dims, Distance::Cosine)
            .await?;
        store
            .ensure_collection(&store.meta, 1, Distance::Dot)
            .await?;
        for (collection, field) in [
            (&store.chunks, "collection"),
            (&store.chunks, "document"),
            (&store.meta, "kind"),
            (&store.meta, "collection"),
        ] {
            // Creating an index that exists is a no-op in Qdrant.
            store
                .call(
                    store.client.create_field_index(
                        CreateFieldIndexCollectionBuilder::new(
                            collection.as_str(),
                            field,
                            FieldType::Keyword,
                        )
                        .wait(true),
                    ),
                )
                .await?;
        }
        tracing::info!(
            url = %store.url,
            version = %health.version,
            chunks = %store.chunks,
            meta = %store.meta,
            dims,
            "qdrant index opened"
        );
        Ok(store)
    }

    /// Runs one request within the deadline, its failure said for people.
    async fn call<T>(
        &self,
        request: impl Future<Output = Result<T, QdrantError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, request).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(StoreError::Io(format!(
                "qdrant at {}: {}",
                self.url,
                describe(&e)
            ))),
            Err(_) => Err(StoreError::Io(format!(
                "qdrant at {} did not answer within {} s",
                self.url,
                self.timeout.as_secs_f32()
            ))),
        }
    }

    /// Creates `name` if it is missing, then checks its vectors.
    async fn ensure_collection(
        &self,
        name: &str,
        size: usize,
        distance: Distance,
    ) -> Result<(), StoreError> {
        if !self.call(self.client.collection_exists(name)).await? {
            let created = self
                .call(
                    self.client.create_collection(
                        CreateCollectionBuilder::new(name)
                            .vectors_config(VectorParamsBuilder::new(size as u64, distance)),
                    ),
                )
                .await;
            // Another replica may have created it in the meantime.
            if let Err(e) = created {
                if !self.call(self.client.collection_exists(name)).await? {
                    return Err(e);
                }
            } else {
                tracing::info!(collection = name, size, "qdrant collection created");
            }
        }
        let info = self.call(self.client.collection_info(name)).await?;
        let params = info
            .result
            .and_then(|r| r.config)
            .and_then(|c| c.params)
            .and_then(|p| p.vectors_config)
            .and_then(|v| v.config);
        match params {
            Some(vectors_config::Config::Params(p))
                if p.size == size as u64 && p.distance == distance as i32 =>
            {
                Ok(())
            }
            Some(vectors_config::Config::Params(p)) => Err(StoreError::Io(format!(
                "qdrant collection {name} holds vectors of {} dimensions ({:?}), this model \
                 makes {size} ({distance:?}): use another collection_prefix or delete it",
                p.size,
                Distance::try_from(p.distance).unwrap_or(Distance::UnknownDistance),
            ))),
            _ => Err(StoreError::Io(format!(
                "qdrant collection {name} does not have one unnamed vector; it is not this \
                 service's: use another collection_prefix"
            ))),
        }
    }

    /// The record stored in the meta point `id`, if there is one.
    async fn meta_record<T: serde::de::DeserializeOwned>(
        &self,
        id: String,
    ) -> Result<Option<T>, StoreError> {
        let found = self
            .call(self.client.get_points(
                GetPointsBuilder::new(&self.meta, vec![PointId::from(id)]).with_payload(true),
            ))
            .await?;
        found
            .result
            .into_iter()
            .next()
            .map(|p| record(&p.payload))
            .transpose()
    }

    /// The record of collection `name`, if it exists.
    async fn collection_record(&self, name: &str) -> Result<Option<Collection>, StoreError> {
        self.meta_record(collection_id(name)).await
    }

    /// Fails with [`StoreError::UnknownCollection`] unless `name` exists.
    async fn known(&self, name: &str) -> Result<(), StoreError> {
        match self.collection_record(name).await? {
            Some(_) => Ok(()),
            None => Err(StoreError::UnknownCollection(name.to_owned())),
        }
    }

    /// Every point of `collection` matching `filter`, page by page.
    async fn scroll_all(
        &self,
        collection: &str,
        filter: Filter,
    ) -> Result<Vec<HashMap<String, Value>>, StoreError> {
        let mut payloads = Vec::new();
        let mut offset: Option<PointId> = None;
        loop {
            let mut request = ScrollPointsBuilder::new(collection)
                .filter(filter.clone())
                .limit(SCROLL_PAGE)
                .with_payload(true)
                .with_vectors(false);
            if let Some(offset) = offset.take() {
                request = request.offset(offset);
            }
            let page = self.call(self.client.scroll(request)).await?;
            payloads.extend(page.result.into_iter().map(|p| p.payload));
            match page.next_page_offset {
                Some(next) => offset = Some(next),
                None => return Ok(payloads),
            }
        }
    }

    /// Every document record, of one collection or of all.
    async fn document_records(
        &self,
        collection: Option<&str>,
    ) -> Result<Vec<Document>, StoreError> {
        self.scroll_all(&self.meta, records_filter(KIND_DOCUMENT, collection))
            .await?
            .iter()
            .map(record)
            .collect()
    }

    /// Deletes the points of `collection` that `filter` matches.
    async fn delete_where(&self, collection: &str, filter: Filter) -> Result<(), StoreError> {
        self.call(
            self.client.delete_points(
                DeletePointsBuilder::new(collection)
                    .points(filter)
                    .wait(true),
            ),
        )
        .await
        .map(drop)
    }

    async fn upsert(&self, collection: &str, points: Vec<PointStruct>) -> Result<(), StoreError> {
        self.call(
            self.client
                .upsert_points(UpsertPointsBuilder::new(collection, points).wait(true)),
        )
        .await
        .map(drop)
    }
}

impl VectorStore for QdrantStore {
    async fn create_collection(&self, c: Collection) -> Result<(), StoreError> {
        let _turn = self.writing.lock().await;
        if self.collection_record(&c.name).await?.is_some() {
            return Err(StoreError::CollectionExists(c.name));
        }
        let point = meta_point(collection_id(&c.name), KIND_COLLECTION, &c.name, &c)?;
        self.upsert(&self.meta, vec![point]).await
    }

    async fn delete_collection(&self, name: &str) -> Result<(), StoreError> {
        let _turn = self.writing.lock().await;
        self.known(name).await?;
        // Its record last: until then the collection is there to delete again.
        self.delete_where(&self.chunks, chunks_filter(name, None))
            .await?;
        self.delete_where(&self.meta, records_filter(KIND_DOCUMENT, Some(name)))
            .await?;
        self.delete_where(&self.meta, records_filter(KIND_COLLECTION, Some(name)))
            .await
    }

    async fn collections(&self) -> Result<Vec<CollectionInfo>, StoreError> {
        let collections: Vec<Collection> = self
            .scroll_all(&self.meta, records_filter(KIND_COLLECTION, None))
            .await?
            .iter()
            .map(record)
            .collect::<Result<_, _>>()?;
        let mut counts: HashMap<String, (usize, usize)> = HashMap::new();
        for doc in self.document_records(None).await? {
            let entry = counts.entry(doc.collection).or_default();
            entry.0 += 1;
            entry.1 += doc.chunks;
        }
        let mut infos: Vec<CollectionInfo> = collections
            .into_iter()
            .map(|collection| {
                let (documents, chunks) = counts.get(&collection.name).copied().unwrap_or_default();
                CollectionInfo {
                    collection,
                    documents,
                    chunks,
                }
            })
            .collect();
        infos.sort_by(|a, b| a.collection.name.cmp(&b.collection.name));
        Ok(infos)
    }

    async fn put_document(&self, doc: Document, chunks: Vec<Chunk>) -> Result<(), StoreError> {
        if chunks.iter().any(|c| c.vector.len() != self.dims) {
            return Err(StoreError::Io(
                "a chunk's vector has the wrong length".into(),
            ));
        }
        let _turn = self.writing.lock().await;
        self.known(&doc.collection).await?;
        // The chunks first, then what the old version had beyond them, then
        // the record: a failure part-way leaves the old record, so the next
        // put of this text is not skipped as unchanged.
        let ids: Vec<String> = chunks
            .iter()
            .map(|c| chunk_id(&doc.collection, &doc.id, c.position))
            .collect();
        let mut points: Vec<PointStruct> = chunks
            .into_iter()
            .zip(&ids)
            .map(|(chunk, id)| {
                PointStruct::new(
                    id.clone(),
                    chunk.vector.clone(),
                    chunk_payload(&doc, &chunk),
                )
            })
            .collect();
        while !points.is_empty() {
            let rest = points.split_off(points.len().min(UPSERT_BATCH));
            self.upsert(&self.chunks, std::mem::replace(&mut points, rest))
                .await?;
        }
        self.delete_where(
            &self.chunks,
            stale_chunks_filter(&doc.collection, &doc.id, &ids),
        )
        .await?;
        let point = meta_point(
            document_id(&doc.collection, &doc.id),
            KIND_DOCUMENT,
            &doc.collection,
            &doc,
        )?;
        self.upsert(&self.meta, vec![point]).await
    }

    async fn delete_document(&self, collection: &str, id: &str) -> Result<(), StoreError> {
        let _turn = self.writing.lock().await;
        if self.document(collection, id).await?.is_none() {
            return Err(StoreError::UnknownDocument {
                collection: collection.to_owned(),
                document: id.to_owned(),
            });
        }
        self.delete_where(&self.chunks, chunks_filter(collection, Some(id)))
            .await?;
        self.call(
            self.client.delete_points(
                DeletePointsBuilder::new(&self.meta)
                    .points(vec![PointId::from(document_id(collection, id))])
                    .wait(true),
            ),
        )
        .await
        .map(drop)
    }

    async fn document(&self, collection: &str, id: &str) -> Result<Option<Document>, StoreError> {
        self.known(collection).await?;
        self.meta_record(document_id(collection, id)).await
    }

    async fn documents(&self, collection: &str) -> Result<Vec<Document>, StoreError> {
        self.known(collection).await?;
        let mut docs = self.document_records(Some(collection)).await?;
        docs.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(docs)
    }

    async fn search(
        &self,
        collections: &[String],
        vector: &[f32],
        limit: usize,
        threshold: f32,
    ) -> Result<Vec<Hit>, StoreError> {
        let ids: Vec<PointId> = collections
            .iter()
            .map(|name| PointId::from(collection_id(name)))
            .collect();
        if !ids.is_empty() {
            let found = self
                .call(
                    self.client
                        .get_points(GetPointsBuilder::new(&self.meta, ids).with_payload(false)),
                )
                .await?;
            let present: HashSet<String> = found
                .result
                .into_iter()
                .filter_map(|p| uuid_of(p.id?))
                .collect();
            if let Some(missing) = collections
                .iter()
                .find(|name| !present.contains(&collection_id(name)))
            {
                return Err(StoreError::UnknownCollection(missing.clone()));
            }
        }
        if collections.is_empty() || limit == 0 {
            return Ok(Vec::new());
        }
        let found = self
            .call(
                self.client.query(
                    QueryPointsBuilder::new(&self.chunks)
                        .query(vector.to_vec())
                        .filter(search_filter(collections))
                        .limit(limit as u64)
                        .score_threshold(threshold)
                        .with_payload(true),
                ),
            )
            .await?;
        let mut hits = found
            .result
            .into_iter()
            .map(|p| hit(p.score, &p.payload))
            .collect::<Result<Vec<_>, _>>()?;
        // The embedded store's rule (at least `threshold`), whatever Qdrant
        // does with a score exactly at it.
        hits.retain(|h| h.score >= threshold);
        hits.sort_by(|a, b| b.score.total_cmp(&a.score));
        Ok(hits)
    }
}

/// A Qdrant error, for people: the gRPC status without its metadata, and
/// a failure to connect as that rather than as the transport's debug text.
fn describe(e: &QdrantError) -> String {
    match e {
        QdrantError::ResponseError { status } if status.message().contains("Failed to connect") => {
            let m = status.message();
            let cause = m
                .rsplit_once("message: \"")
                .and_then(|(_, rest)| rest.split_once('"'))
                .map_or("no connection", |(cause, _)| cause);
            format!(
                "cannot connect ({cause}): is Qdrant running, and is this its gRPC port (6334)?"
            )
        }
        QdrantError::ResponseError { status }
        | QdrantError::ResourceExhaustedError { status, .. } => {
            format!("{:?}: {}", status.code(), status.message())
        }
        other => other.to_string(),
    }
}

/// A UUID (in its usual text form, version 8: "custom") from a hash of a
/// point's kind and the parts that name it. Each part is length-prefixed,
/// so no choice of names can make two different points collide.
fn point_id(kind: &str, parts: &[&str]) -> String {
    let mut hash = Sha256::new();
    for part in std::iter::once(kind).chain(parts.iter().copied()) {
        hash.update((part.len() as u64).to_le_bytes());
        hash.update(part.as_bytes());
    }
    let digest = hash.finalize();
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x80;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// The point of one chunk.
fn chunk_id(collection: &str, document: &str, position: usize) -> String {
    point_id("chunk", &[collection, document, &position.to_string()])
}

/// The point of a collection's record.
fn collection_id(name: &str) -> String {
    point_id(KIND_COLLECTION, &[name])
}

/// The point of a document's record.
fn document_id(collection: &str, document: &str) -> String {
    point_id(KIND_DOCUMENT, &[collection, document])
}

/// The UUID of a point id (ours are all UUIDs).
fn uuid_of(id: PointId) -> Option<String> {
    match id.point_id_options? {
        PointIdOptions::Uuid(u) => Some(u.to_ascii_lowercase()),
        PointIdOptions::Num(_) => None,
    }
}

/// What a chunk's point carries: all a search hit shows, no join needed.
fn chunk_payload(doc: &Document, chunk: &Chunk) -> Payload {
    let mut p = Payload::new();
    p.insert("collection", doc.collection.as_str());
    p.insert("document", doc.id.as_str());
    p.insert("position", chunk.position as i64);
    p.insert("heading", chunk.heading.as_str());
    p.insert("text", chunk.text.as_str());
    p.insert("source", doc.source.as_str());
    p.insert("title", doc.title.as_str());
    p
}

/// A record's point in the meta collection.
fn meta_point(
    id: String,
    kind: &str,
    collection: &str,
    record: &impl serde::Serialize,
) -> Result<PointStruct, StoreError> {
    let json = serde_json::to_string(record).map_err(|e| StoreError::Io(e.to_string()))?;
    let mut p = Payload::new();
    p.insert("kind", kind);
    p.insert("collection", collection);
    p.insert("record", json);
    Ok(PointStruct::new(id, vec![1.0f32], p))
}

/// The record a meta point holds.
fn record<T: serde::de::DeserializeOwned>(
    payload: &HashMap<String, Value>,
) -> Result<T, StoreError> {
    let json = text(payload, "record")?;
    serde_json::from_str(&json)
        .map_err(|e| StoreError::Io(format!("a record in qdrant is not valid: {e}")))
}

fn text(payload: &HashMap<String, Value>, key: &str) -> Result<String, StoreError> {
    payload
        .get(key)
        .and_then(Value::as_str)
        .cloned()
        .ok_or_else(|| StoreError::Io(format!("a qdrant point has no text {key:?}")))
}

/// A search hit from a chunk's point.
fn hit(score: f32, payload: &HashMap<String, Value>) -> Result<Hit, StoreError> {
    let position = payload
        .get("position")
        .and_then(Value::as_integer)
        .and_then(|p| usize::try_from(p).ok())
        .ok_or_else(|| StoreError::Io("a qdrant point has no position".into()))?;
    Ok(Hit {
        score,
        collection: text(payload, "collection")?,
        document: text(payload, "document")?,
        source: text(payload, "source")?,
        title: text(payload, "title")?,
        position,
        heading: text(payload, "heading")?,
        text: text(payload, "text")?,
    })
}

/// Chunks in any of `collections`.
fn search_filter(collections: &[String]) -> Filter {
    Filter::must([Condition::matches("collection", collections.to_vec())])
}

/// The chunks of a collection, or of one of its documents.
fn chunks_filter(collection: &str, document: Option<&str>) -> Filter {
    let mut must = vec![Condition::matches("collection", collection.to_owned())];
    if let Some(document) = document {
        must.push(Condition::matches("document", document.to_owned()));
    }
    Filter::must(must)
}

/// A document's chunks other than `keep` (what an earlier, longer version
/// left behind).
fn stale_chunks_filter(collection: &str, document: &str, keep: &[String]) -> Filter {
    let mut filter = chunks_filter(collection, Some(document));
    if !keep.is_empty() {
        filter.must_not = vec![Condition::has_id(keep.iter().cloned())];
    }
    filter
}

/// Records of one kind, of one collection or of all.
fn records_filter(kind: &str, collection: Option<&str>) -> Filter {
    let mut must = vec![Condition::matches("kind", kind.to_owned())];
    if let Some(collection) = collection {
        must.push(Condition::matches("collection", collection.to_owned()));
    }
    Filter::must(must)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use qdrant_client::qdrant::condition::ConditionOneOf;
    use qdrant_client::qdrant::r#match::MatchValue;

    use super::*;
    use crate::ingest::Format;

    /// Sorted keys of a payload, a stable thing to compare.
    fn keys(payload: &HashMap<String, Value>) -> Vec<&str> {
        let mut keys: Vec<&str> = payload.keys().map(String::as_str).collect();
        keys.sort_unstable();
        keys
    }

    fn doc() -> Document {
        Document {
            id: "wifi".into(),
            collection: "house_guide".into(),
            source: "wifi.md".into(),
            title: "Internet and TV".into(),
            format: Format::Markdown,
            bytes: 10,
            sha256: "00".into(),
            chunks: 2,
            updated: 1,
        }
    }

    #[test]
    fn point_ids_are_deterministic_distinct_uuids() {
        let a = chunk_id("house_guide", "wifi", 0);
        assert_eq!(a, chunk_id("house_guide", "wifi", 0));
        let others = [
            chunk_id("house_guide", "wifi", 1),
            chunk_id("house_guide", "wifi0", 0),
            chunk_id("house_guidew", "ifi", 0),
            chunk_id("house_guide", "kitchen", 0),
            document_id("house_guide", "wifi"),
            collection_id("house_guide"),
            point_id("chunk", &["house_guide/wifi", "0"]),
        ];
        let all: HashSet<&String> = std::iter::once(&a).chain(&others).collect();
        assert_eq!(all.len(), others.len() + 1);
        // 8-4-4-4-12 lowercase hex, version 8, RFC variant.
        let groups: Vec<&str> = a.split('-').collect();
        assert_eq!(
            groups.iter().map(|g| g.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(
            a.chars()
                .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        assert!(groups[2].starts_with('8'));
        assert!(matches!(
            groups[3].chars().next(),
            Some('8' | '9' | 'a' | 'b')
        ));
    }

    #[test]
    fn a_chunk_payload_becomes_the_same_hit() {
        let chunk = Chunk {
            position: 3,
            heading: "Internet and TV > Wifi".into(),
            text: "The password is sunflower-2024.".into(),
            vector: vec![0.0; 4],
        };
        let payload: HashMap<String, Value> = chunk_payload(&doc(), &chunk).into();
        assert_eq!(
            keys(&payload),
            [
                "collection",
                "document",
                "heading",
                "position",
                "source",
                "text",
                "title"
            ]
        );
        let h = hit(0.5, &payload).unwrap();
        assert_eq!(
            h,
            Hit {
                score: 0.5,
                collection: "house_guide".into(),
                document: "wifi".into(),
                source: "wifi.md".into(),
                title: "Internet and TV".into(),
                position: 3,
                heading: chunk.heading.clone(),
                text: chunk.text.clone(),
            }
        );
        let mut broken = payload.clone();
        broken.remove("text");
        assert!(matches!(hit(0.5, &broken), Err(StoreError::Io(_))));
    }

    #[test]
    fn records_round_trip_through_meta_points() {
        let point = meta_point(
            document_id("house_guide", "wifi"),
            KIND_DOCUMENT,
            "house_guide",
            &doc(),
        )
        .unwrap();
        assert_eq!(
            point
                .payload
                .get("kind")
                .and_then(Value::as_str)
                .map(String::as_str),
            Some("document")
        );
        let back: Document = record(&point.payload).unwrap();
        assert_eq!(back, doc());
        let wrong: Result<Collection, _> = record(&point.payload);
        assert!(matches!(wrong, Err(StoreError::Io(_))));
    }

    /// The field and match of a plain field condition.
    fn field(c: &Condition) -> (&str, &MatchValue) {
        match &c.condition_one_of {
            Some(ConditionOneOf::Field(f)) => (
                f.key.as_str(),
                f.r#match
                    .as_ref()
                    .and_then(|m| m.match_value.as_ref())
                    .unwrap(),
            ),
            other => panic!("not a field condition: {other:?}"),
        }
    }

    #[test]
    fn filters_say_what_they_mean() {
        let names = vec!["house_guide".to_owned(), "owner_notes".to_owned()];
        let f = search_filter(&names);
        assert_eq!(f.must.len(), 1);
        let (key, value) = field(&f.must[0]);
        assert_eq!(key, "collection");
        match value {
            MatchValue::Keywords(k) => assert_eq!(k.strings, names),
            other => panic!("not match-any: {other:?}"),
        }

        let f = chunks_filter("house_guide", Some("wifi"));
        let fields: Vec<_> = f.must.iter().map(field).collect();
        assert_eq!(
            fields,
            [
                ("collection", &MatchValue::Keyword("house_guide".into())),
                ("document", &MatchValue::Keyword("wifi".into())),
            ]
        );
        assert!(f.must_not.is_empty() && f.should.is_empty());

        let keep = vec![chunk_id("house_guide", "wifi", 0)];
        let f = stale_chunks_filter("house_guide", "wifi", &keep);
        assert_eq!(f.must.len(), 2);
        match &f.must_not[..] {
            [
                Condition {
                    condition_one_of: Some(ConditionOneOf::HasId(has)),
                },
            ] => assert_eq!(has.has_id, vec![PointId::from(keep[0].clone())]),
            other => panic!("not has_id: {other:?}"),
        }
        // Nothing to keep: every chunk of the document goes.
        assert!(
            stale_chunks_filter("house_guide", "wifi", &[])
                .must_not
                .is_empty()
        );

        let f = records_filter(KIND_DOCUMENT, None);
        assert_eq!(
            f.must.iter().map(field).collect::<Vec<_>>(),
            [("kind", &MatchValue::Keyword("document".into()))]
        );
        assert_eq!(records_filter(KIND_COLLECTION, Some("x")).must.len(), 2);
    }
}
