//! Vietnamese-aware text search, as SQL fragments for the listing queries.
//!
//! Both sides are folded by `ketnoi_fold` (lower case, no diacritics, đ → d;
//! migration 6). A row matches when its full-text document holds every
//! word (`websearch_to_tsquery`: quotes for phrases, `-` to exclude, `or`).
//! When no row anywhere does (a typo, most often) and the words are plain
//! (no phrase, no `-word`), a row matches whose names or category labels
//! have a stretch close to the words instead (trigram word similarity ≥ 0.6,
//! `pg_trgm.word_similarity_threshold`). Trigrams only as that fallback: a
//! query of common words would otherwise be "close" to much of a large
//! directory, and `-word` or a phrase would mean nothing. Which of the two
//! applies is settled once by a query of its own ([`Words::settle_for_services`]),
//! so that each listing statement has one predicate its index answers.
//! Relevance is the full-text rank (names weigh most, then category labels,
//! then descriptions), or for fuzzy words the similarity, names counting
//! twice.

use std::marker::PhantomData;

use diesel::expression::{AppearsOnTable, Expression, SelectableExpression, ValidGrouping};
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, QueryFragment, QueryId};
use diesel::sql_types::{Bool, Double, Text};
use diesel_async::RunQueryDsl;

use super::DbError;
use crate::db::DbConn;
use crate::domain::search::SearchText;

/// Search words, and how they are matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Words {
    pub text: SearchText,
    /// `Some(true)`: by similarity, as no listing holds every word;
    /// `Some(false)`: exactly; `None`: not settled yet (matched exactly
    /// until it is).
    pub fuzzy: Option<bool>,
}

impl Words {
    pub fn new(text: SearchText) -> Self {
        Self { text, fuzzy: None }
    }

    fn is_fuzzy(&self) -> bool {
        self.fuzzy == Some(true)
    }

    /// Whether the words use search syntax: a quoted phrase or `-word`.
    fn has_operators(&self) -> bool {
        let text = self.text.as_str();
        text.contains('"') || text.split_whitespace().any(|word| word.starts_with('-'))
    }

    /// Settles how the words match services (once; later calls are free).
    pub async fn settle_for_services(self, conn: &mut DbConn) -> Result<Self, DbError> {
        self.settle(
            conn,
            "EXISTS (SELECT FROM service_search WHERE document @@ {tsq})",
        )
        .await
    }

    /// Settles how the words match organisations.
    pub async fn settle_for_organizations(self, conn: &mut DbConn) -> Result<Self, DbError> {
        self.settle(
            conn,
            "EXISTS (SELECT FROM organizations WHERE search_document @@ {tsq})",
        )
        .await
    }

    async fn settle(self, conn: &mut DbConn, exists: &str) -> Result<Self, DbError> {
        if self.fuzzy.is_some() {
            return Ok(self);
        }
        // A phrase or an exclusion says exactly what it wants: no guessing.
        if self.has_operators() {
            return Ok(Self {
                fuzzy: Some(false),
                ..self
            });
        }
        let exact: bool = diesel::select(fragment::<Bool>(exists, &self.text))
            .get_result(conn)
            .await?;
        Ok(Self {
            fuzzy: Some(!exact),
            ..self
        })
    }
}

/// SQL text with bind parameters: each `{}` in `sql` is the next of
/// `binds`. Usable wherever an expression of type `T` is.
#[derive(Debug, Clone)]
pub struct Fragment<T> {
    sql: String,
    binds: Vec<String>,
    kind: PhantomData<T>,
}

/// Builds a fragment from a template in which `{q}` is the folded words and
/// `{tsq}` their full-text query; every occurrence binds the words anew,
/// so no client text is ever part of the SQL.
fn fragment<T>(template: &str, words: &SearchText) -> Fragment<T> {
    let sql = template
        .replace("{tsq}", "websearch_to_tsquery('simple', {q})")
        .replace("{q}", "ketnoi_fold({})");
    let binds = vec![words.as_str().to_owned(); sql.matches("{}").count()];
    Fragment {
        sql,
        binds,
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
        for (part, bind) in parts.zip(&self.binds) {
            out.push_bind_param::<Text, _>(bind)?;
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

/// A row whose full-text `document` and folded `text` (SQL expressions)
/// match the words.
fn matches(words: &Words, document: &str, text: &str) -> Fragment<Bool> {
    if words.is_fuzzy() {
        fragment(&format!("{text} %> {{q}}"), &words.text)
    } else {
        fragment(&format!("{document} @@ {{tsq}}"), &words.text)
    }
}

/// How well such a row matches; higher is better. For fuzzy words, the
/// similarity to the names (`names`, an SQL expression) counts again, so
/// that a name close to the words ranks above a category label.
fn relevance(words: &Words, document: &str, text: &str, names: &str) -> Fragment<Double> {
    if words.is_fuzzy() {
        fragment(
            &format!("(word_similarity({{q}}, {text}) + word_similarity({{q}}, {names}))::float8"),
            &words.text,
        )
    } else {
        fragment(
            &format!("ts_rank_cd({document}, {{tsq}})::float8"),
            &words.text,
        )
    }
}

/// `services.id` passes when the service matches the words.
pub fn service_matches(words: &Words) -> Fragment<Bool> {
    let test = matches(words, "document", "words");
    Fragment {
        sql: format!(
            "services.id IN (SELECT service_id FROM service_search WHERE {})",
            test.sql
        ),
        ..test
    }
}

/// The `service_search` rows matching the words, as predicates on that
/// table in the order a broad search takes its candidates: for exact
/// words, first the rows whose names hold the words (which rank highest,
/// names weighing most; a small index of their own), then the others; for
/// fuzzy words, one predicate. Each predicate's rows include the earlier
/// ones'.
pub fn service_search_tiers(words: &Words) -> Vec<Fragment<Bool>> {
    if words.is_fuzzy() {
        return vec![matches(
            words,
            "service_search.document",
            "service_search.words",
        )];
    }
    // The second holds the first's rows too (the caller skips them again):
    // leaving them out would fold every row's names once more.
    [
        "(service_search.document @@ {tsq} AND to_tsvector('simple', service_search.names) @@ {tsq})",
        "service_search.document @@ {tsq}",
    ]
    .iter()
    .map(|template| fragment(template, &words.text))
    .collect()
}

/// How well a service matches the words, from its `service_search` row
/// joined into the query.
pub fn service_relevance(words: &Words) -> Fragment<Double> {
    relevance(
        words,
        "service_search.document",
        "service_search.words",
        "service_search.names",
    )
}

/// How well the service whose id is in `id_column` (an SQL column name)
/// matches the words, looked up row by row: for queries already narrowed
/// (by distance) that do not join `service_search`.
pub fn service_relevance_of(words: &Words, id_column: &'static str) -> Fragment<Double> {
    let rank = relevance(words, "document", "words", "names");
    Fragment {
        sql: format!(
            "(SELECT {} FROM service_search WHERE service_id = {id_column})",
            rank.sql
        ),
        ..rank
    }
}

/// The organisation row matches the words.
pub fn organization_matches(words: &Words) -> Fragment<Bool> {
    matches(
        words,
        "organizations.search_document",
        "organizations.search_words",
    )
}

/// How well the organisation row matches the words; higher is better.
pub fn organization_relevance(words: &Words) -> Fragment<Double> {
    relevance(
        words,
        "organizations.search_document",
        "organizations.search_words",
        "organizations.search_words",
    )
}

const CATEGORY_TEXT: &str = "(categories.label_vi || ' ' || categories.label_en || ' ' || \
                             categories.description_vi || ' ' || categories.description_en)";

/// The category row matches the words (labels and descriptions, both
/// languages; a dozen rows, so both ways at once).
pub fn category_matches(words: &SearchText) -> Fragment<Bool> {
    fragment(
        &format!(
            "(to_tsvector('simple', ketnoi_fold({CATEGORY_TEXT})) @@ {{tsq}} \
             OR ketnoi_fold({CATEGORY_TEXT}) %> {{q}})"
        ),
        words,
    )
}

/// How well the category row matches the words.
pub fn category_relevance(words: &SearchText) -> Fragment<Double> {
    fragment(
        &format!("word_similarity({{q}}, ketnoi_fold({CATEGORY_TEXT}))::float8"),
        words,
    )
}

/// A text of ours (bound, like the words) matches the words.
pub fn text_matches(text: &str, words: &SearchText) -> Fragment<Bool> {
    Fragment {
        sql: "(to_tsvector('simple', ketnoi_fold({})) @@ websearch_to_tsquery('simple', \
              ketnoi_fold({})) OR ketnoi_fold({}) %> ketnoi_fold({}))"
            .to_owned(),
        binds: vec![
            text.to_owned(),
            words.as_str().to_owned(),
            text.to_owned(),
            words.as_str().to_owned(),
        ],
        kind: PhantomData,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(text: &str) -> Words {
        Words::new(SearchText::parse(text).unwrap_or_else(|_| unreachable!()))
    }

    #[test]
    fn phrases_and_exclusions_are_operators_hyphenated_words_are_not() {
        assert!(words("\"phap ly\"").has_operators());
        assert!(words("tro giup -phap").has_operators());
        assert!(!words("tro giup phap ly").has_operators());
        assert!(!words("tam-ly").has_operators());
    }

    #[test]
    fn every_placeholder_binds_the_words() {
        let fragment: Fragment<Bool> = fragment("{q} {tsq} {q}", &words("x").text);
        assert_eq!(fragment.sql.matches("{}").count(), 3);
        assert_eq!(fragment.binds.len(), 3);
    }
}
