//! Vietnamese-aware text search, as SQL fragments for the listing queries.
//!
//! Both sides are folded by `ketnoi_fold` (lower case, no diacritics, đ → d;
//! migration 6). A row matches when its full-text document holds every
//! word (`websearch_to_tsquery`: quotes for phrases, `-` to exclude, `or`),
//! or when the words are close to a stretch of its text (trigram word
//! similarity ≥ 0.6, `pg_trgm.word_similarity_threshold`), which forgives
//! small typos. Relevance adds the full-text rank (names weigh most, then
//! category labels, then descriptions) to that similarity.

use std::marker::PhantomData;

use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Double, Text};

use crate::domain::search::SearchText;

/// SQL text in which every `{}` is the (folded) search words, sent as a
/// bind parameter each time. Usable wherever an expression of type `T` is.
#[derive(Debug, Clone)]
pub struct Fragment<T> {
    sql: String,
    words: String,
    kind: PhantomData<T>,
}

/// The words, folded: a constant for the whole statement, so the indexes
/// on folded text apply.
const FOLDED: &str = "ketnoi_fold({})";

fn fragment<T>(template: &str, words: &SearchText) -> Fragment<T> {
    Fragment {
        sql: template.replace("{q}", FOLDED),
        words: words.as_str().to_owned(),
        kind: PhantomData,
    }
}

impl<T: diesel::sql_types::SqlType + diesel::sql_types::SingleValue> Expression for Fragment<T> {
    type SqlType = T;
}

impl<T> QueryFragment<Pg> for Fragment<T> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> diesel::QueryResult<()> {
        let mut parts = self.sql.split("{}");
        if let Some(first) = parts.next() {
            out.push_sql(first);
        }
        for part in parts {
            out.push_bind_param::<Text, _>(&self.words)?;
            out.push_sql(part);
        }
        Ok(())
    }
}

impl<T> QueryId for Fragment<T> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<T, QS> AppearsOnTable<QS> for Fragment<T> where Self: Expression {}

impl<T, QS> SelectableExpression<QS> for Fragment<T> where Self: Expression {}

impl<T, G> ValidGrouping<G> for Fragment<T> {
    type IsAggregate = diesel::expression::is_aggregate::Never;
}

/// `services.id` passes when the service matches the words.
pub fn service_matches(words: &SearchText) -> Fragment<Bool> {
    fragment(
        "services.id IN (SELECT service_id FROM service_search \
         WHERE document @@ websearch_to_tsquery('simple', {q}) OR words %> {q})",
        words,
    )
}

/// How well the service whose id is in `id_column` (an SQL column name)
/// matches the words; higher is better.
pub fn service_relevance(words: &SearchText, id_column: &'static str) -> Fragment<Double> {
    fragment(
        &format!(
            "(SELECT (ts_rank_cd(document, websearch_to_tsquery('simple', {{q}})) \
             + word_similarity({{q}}, words))::float8 \
             FROM service_search WHERE service_id = {id_column})"
        ),
        words,
    )
}

/// The organisation row matches the words.
pub fn organization_matches(words: &SearchText) -> Fragment<Bool> {
    fragment(
        "(organizations.search_document @@ websearch_to_tsquery('simple', {q}) \
         OR organizations.search_words %> {q})",
        words,
    )
}

/// How well the organisation row matches the words; higher is better.
pub fn organization_relevance(words: &SearchText) -> Fragment<Double> {
    fragment(
        "(ts_rank_cd(organizations.search_document, websearch_to_tsquery('simple', {q})) \
         + word_similarity({q}, organizations.search_words))::float8",
        words,
    )
}

/// Matches over any folded text expression (`text` is SQL: a column
/// expression, or a quoted constant).
fn text_fragment(text: &str, words: &SearchText) -> Fragment<Bool> {
    fragment(
        &format!(
            "(to_tsvector('simple', ketnoi_fold({text})) @@ websearch_to_tsquery('simple', {{q}}) \
             OR ketnoi_fold({text}) %> {{q}})"
        ),
        words,
    )
}

const CATEGORY_TEXT: &str = "(categories.label_vi || ' ' || categories.label_en || ' ' || \
                             categories.description_vi || ' ' || categories.description_en)";

/// The category row matches the words (labels and descriptions, both
/// languages).
pub fn category_matches(words: &SearchText) -> Fragment<Bool> {
    text_fragment(CATEGORY_TEXT, words)
}

/// How well the category row matches the words.
pub fn category_relevance(words: &SearchText) -> Fragment<Double> {
    fragment(
        &format!("word_similarity({{q}}, ketnoi_fold({CATEGORY_TEXT}))::float8"),
        words,
    )
}

/// A constant text (ours, never a client's) matches the words.
pub fn constant_matches(text: &str, words: &SearchText) -> Fragment<Bool> {
    text_fragment(&format!("'{}'", text.replace('\'', "''")), words)
}
