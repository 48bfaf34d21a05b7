//! The reference for bench/search: what a dedicated text index does with
//! the same service texts and the same queries as Kết Nối's search.
//!
//!   ketnoi-search-tantivy TEXTS QUERIES CLIENTS SECONDS
//!
//! TEXTS has one service a line, `names<TAB>labels<TAB>descriptions`, and
//! QUERIES one query a line, both already folded by the database's
//! `ketnoi_fold` (lower case, no diacritics, đ → d), so that both engines
//! see the same words. Names weigh most, then category labels, then
//! descriptions (as the weights A, B, C of Kết Nối's documents); every word
//! is required, quotes make a phrase and `-word` excludes; a query that
//! finds nothing and has no operators is retried with each word allowed
//! one edit (Kết Nối's trigram fallback). Each query asks what a page of
//! the API asks: the 20 best and the number of matches.
//!
//! Prints the index build time, then one line per run:
//! `RESULT requests_per_second p50_ms p99_ms`.

use std::time::{Duration, Instant};

use tantivy::collector::{Count, TopDocs};
use tantivy::query::{BooleanQuery, FuzzyTermQuery, Occur, Query, QueryParser};
use tantivy::schema::{Field, Schema, TEXT};
use tantivy::{Index, IndexReader, TantivyDocument, Term, doc};

struct Engine {
    reader: IndexReader,
    parser: QueryParser,
    fields: [Field; 3],
}

impl Engine {
    /// The best 20 and how many match, as a page of the API asks.
    fn search(&self, words: &str) -> (usize, usize) {
        let searcher = self.reader.searcher();
        let collector = (TopDocs::with_limit(20), Count);
        let exact = match self.parser.parse_query(words) {
            Ok(query) => query,
            Err(_) => return (0, 0),
        };
        let (top, count) = searcher.search(&exact, &collector).unwrap_or_default();
        if count > 0 || words.contains('"') || words.split_whitespace().any(|w| w.starts_with('-')) {
            return (top.len(), count);
        }
        let fuzzy = self.fuzzy(words);
        let (top, count) = searcher.search(&fuzzy, &collector).unwrap_or_default();
        (top.len(), count)
    }

    /// Every word, in any field, within one edit.
    fn fuzzy(&self, words: &str) -> Box<dyn Query> {
        let each: Vec<(Occur, Box<dyn Query>)> = words
            .split_whitespace()
            .map(|word| {
                let fields: Vec<(Occur, Box<dyn Query>)> = self
                    .fields
                    .iter()
                    .map(|field| {
                        let term = Term::from_field_text(*field, word);
                        (Occur::Should, Box::new(FuzzyTermQuery::new(term, 1, true)) as Box<dyn Query>)
                    })
                    .collect();
                (Occur::Must, Box::new(BooleanQuery::new(fields)) as Box<dyn Query>)
            })
            .collect();
        Box::new(BooleanQuery::new(each))
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

fn main() -> tantivy::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let [_, texts, queries, clients, seconds] = args.as_slice() else {
        eprintln!("usage: ketnoi-search-tantivy TEXTS QUERIES CLIENTS SECONDS");
        std::process::exit(2);
    };
    let clients: usize = clients.parse().unwrap_or(1);
    let seconds: u64 = seconds.parse().unwrap_or(10);
    let texts = std::fs::read_to_string(texts)?;
    let queries: Vec<String> = std::fs::read_to_string(queries)?
        .lines()
        .map(str::to_owned)
        .filter(|q| !q.is_empty())
        .collect();

    let mut schema = Schema::builder();
    let names = schema.add_text_field("names", TEXT);
    let labels = schema.add_text_field("labels", TEXT);
    let descriptions = schema.add_text_field("descriptions", TEXT);
    let index = Index::create_in_ram(schema.build());
    let started = Instant::now();
    let mut writer = index.writer::<TantivyDocument>(200_000_000)?;
    let mut documents = 0;
    for line in texts.lines() {
        let mut parts = line.split('\t');
        let (n, l, d) = (
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
            parts.next().unwrap_or(""),
        );
        writer.add_document(doc!(names => n, labels => l, descriptions => d))?;
        documents += 1;
    }
    writer.commit()?;
    let reader = index.reader()?;
    eprintln!(
        "tantivy: indexed {documents} services in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let mut parser = QueryParser::for_index(&index, vec![names, labels, descriptions]);
    parser.set_conjunction_by_default();
    // ts_rank_cd's weights for A, B, C.
    parser.set_field_boost(names, 1.0);
    parser.set_field_boost(labels, 0.4);
    parser.set_field_boost(descriptions, 0.2);
    let engine = Engine {
        reader,
        parser,
        fields: [names, labels, descriptions],
    };
    for query in &queries {
        let (_, count) = engine.search(query);
        eprintln!("tantivy: {count:7}  {query}");
    }

    let deadline = Instant::now() + Duration::from_secs(seconds);
    let engine = &engine;
    let queries = &queries;
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let runs: Vec<_> = (0..clients)
            .map(|client| {
                scope.spawn(move || {
                    let mut latencies = Vec::new();
                    let mut next = client * 7;
                    while Instant::now() < deadline {
                        let query = &queries[next % queries.len()];
                        next += 1;
                        let asked = Instant::now();
                        std::hint::black_box(engine.search(query));
                        latencies.push(asked.elapsed());
                    }
                    latencies
                })
            })
            .collect();
        runs.into_iter()
            .flat_map(|run| run.join().unwrap_or_default())
            .collect()
    });
    latencies.sort();
    println!(
        "RESULT {:.1} {:.3} {:.3}",
        latencies.len() as f64 / seconds as f64,
        percentile(&latencies, 0.5),
        percentile(&latencies, 0.99)
    );
    Ok(())
}
