//! A commune's leaflet: the matcher's answer for anyone in the commune, as
//! the public sees it, on one printed page; and every commune's leaflet of
//! a province or of the country, for the command line.
//!
//! [`prepare`] reads (a few statements) and decides what is printed, so
//! that its `ETag` is known before anything is typeset; [`render`]
//! typesets as many of the services as fit the page, every category's
//! nearest first ([`Sheet::keeping`]).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use sha2::{Digest, Sha256};

use crate::db::DbConn;
use crate::db::models::DbError;
use crate::db::models::parts::PhoneRecord;
use crate::db::models::reference::{self, WardRecord};
use crate::domain::access::{Audience, seen_location};
use crate::domain::category::Category;
use crate::domain::leaflet::{
    self, Entry, HOTLINES, Lang, MOST_PER_CATEGORY, PrintedHotline, Section, Sheet,
};
use crate::domain::matching::{MatchQuery, Origin};
use crate::domain::schedule::vietnam_time;
use crate::domain::service::DeliveryMode;
use crate::domain::ward::WardCode;
use crate::print::{self, PrintError};
use crate::workflows::matching::{self, MatchError, Matched};

/// What a leaflet is asked for.
#[derive(Debug, Clone)]
pub struct LeafletRequest {
    pub ward: WardCode,
    pub lang: Lang,
    /// The categories printed, in this order; all of them when empty.
    pub categories: Vec<Category>,
    /// Where the public reaches Kết Nối (no trailing slash): the QR code
    /// opens its map there.
    pub public_url: String,
}

/// A leaflet decided but not yet typeset.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub sheet: Sheet,
    /// A strong `ETag` (quoted): the hash of everything printed and of the
    /// template and fonts.
    pub etag: String,
    /// The day in Vietnam the data was read.
    pub today: NaiveDate,
}

#[derive(Debug, thiserror::Error)]
pub enum LeafletError {
    #[error("no ward has this code")]
    UnknownWard,
    #[error(transparent)]
    Print(#[from] PrintError),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl From<MatchError> for LeafletError {
    fn from(error: MatchError) -> Self {
        match error {
            MatchError::UnknownWard => Self::UnknownWard,
            MatchError::Db(error) => Self::Db(error),
        }
    }
}

fn phone_text(phone: &PhoneRecord) -> String {
    match &phone.extension {
        Some(extension) => format!("{} ext. {extension}", phone.number),
        None => phone.number.clone(),
    }
}

/// One service as printed, through the one decision of what the public
/// sees of its location.
fn entry(found: &Matched, lang: Lang, today: NaiveDate) -> Entry {
    let record = &found.record;
    let row = &record.row;
    let words = leaflet::words(lang);
    let english = lang == Lang::En;
    let pick = |vi: &str, en: Option<&str>| -> String {
        match en {
            Some(en) if english && !en.trim().is_empty() => en.to_owned(),
            _ => vi.to_owned(),
        }
    };
    let mut phones: Vec<String> = record.phones.iter().map(phone_text).collect();
    let mut lines = Vec::new();
    let reach = match (&found.location, found.mode) {
        (Some(location), DeliveryMode::InPerson) => {
            let seen = seen_location(location.stored(), Audience::Public);
            if seen.redacted() {
                lines.push(leaflet::safe_place_line(
                    lang,
                    phones.first().map(String::as_str),
                ));
                phones.clear();
                None
            } else {
                let shown = seen.shown();
                let place: Vec<&str> = [
                    shown.address,
                    shown.ward_name,
                    Some(location.province_name.as_str()),
                ]
                .into_iter()
                .flatten()
                .filter(|part| !part.trim().is_empty())
                .collect();
                lines.push(place.join(", "));
                phones.extend(shown.phones.iter().map(phone_text));
                found.distance_m.map(|m| leaflet::distance(lang, m))
            }
        }
        _ => Some(words.remote.to_owned()),
    };
    let mut seen_phones = std::collections::HashSet::new();
    phones.retain(|p| seen_phones.insert(p.clone()));
    phones.truncate(3);
    if !phones.is_empty() {
        lines.push(format!("{}: {}", words.phone, phones.join(" · ")));
    }
    let hours: Vec<_> = record.schedules.iter().map(|s| &s.hours).collect();
    let fees = leaflet::fees_in_words(
        lang,
        row.is_free,
        if english {
            row.fees_description_en
                .as_deref()
                .or(row.fees_description.as_deref())
        } else {
            row.fees_description.as_deref()
        },
    );
    match leaflet::hours_in_words(lang, &hours, today) {
        Some(hours) => lines.push(format!("{hours} · {fees}")),
        None => lines.push(fees),
    }
    if let Some(who) = leaflet::who_in_words(lang, &record.eligibility) {
        lines.push(who);
    }
    let organization = &record.organization.row;
    Entry {
        name: pick(&row.name, row.name_en.as_deref()),
        organization: pick(&organization.name, organization.name_en.as_deref()),
        reach,
        lines,
        verified: row.assured_date,
    }
}

/// The map widget, centred on the commune's reference point.
fn map_url(public_url: &str, lang: Lang, ward: &WardRecord) -> String {
    let (lat, lon) = (ward.lat.unwrap_or(16.0), ward.lon.unwrap_or(106.0));
    format!(
        "{public_url}/widget?lang={}&bbox={:.3},{:.3},{:.3},{:.3}",
        lang.as_str(),
        lon - 0.1,
        lat - 0.08,
        lon + 0.1,
        lat + 0.08
    )
}

/// Decides what the leaflet of `request.ward` prints, read at `now`.
pub async fn prepare(
    conn: &mut DbConn,
    request: &LeafletRequest,
    now: DateTime<Utc>,
) -> Result<Prepared, LeafletError> {
    let digest = print::typesetting_digest()?;
    let ward = reference::find_ward(conn, &request.ward)
        .await?
        .ok_or(LeafletError::UnknownWard)?;
    let province = reference::find_province(conn, &ward.province_code).await?;
    let labels: HashMap<String, (String, String)> = reference::list_categories(conn)
        .await?
        .into_iter()
        .map(|row| (row.code, (row.label_vi, row.label_en)))
        .collect();
    let needs: Vec<Category> = if request.categories.is_empty() {
        <Category as strum::VariantArray>::VARIANTS.to_vec()
    } else {
        request.categories.clone()
    };
    let query = MatchQuery {
        origin: Origin::Ward(request.ward.clone()),
        needs,
        profile: leaflet::anyone(),
        radius: leaflet::RADIUS,
        limit_per_need: MOST_PER_CATEGORY as u8,
        include_remote: true,
    };
    // The public's points: a shelter is measured (and so ordered) by its
    // 0.1° cell, and printed without address, ward, point or distance.
    let outcome = matching::run(conn, &query, Audience::Public, now).await?;
    let lang = request.lang;
    let english = lang == Lang::En;
    let today = vietnam_time(now).date_naive();
    let words = leaflet::words(lang);

    let mut any_in_person = false;
    let sections: Vec<Section> = outcome
        .needs
        .iter()
        .map(|need| {
            let entries = need
                .matches
                .iter()
                .map(|found| {
                    any_in_person |= found.mode == DeliveryMode::InPerson;
                    entry(found, lang, today)
                })
                .collect();
            let label = labels
                .get(need.need.as_str())
                .map(|(vi, en)| if english { en.clone() } else { vi.clone() })
                .unwrap_or_else(|| need.need.as_str().to_owned());
            Section {
                label,
                entries,
                empty: leaflet::empty_line(lang),
            }
        })
        .collect();

    let province_name = match (&province, english) {
        (Some(p), false) => p.full_name.clone(),
        (Some(p), true) => p.full_name_en.clone(),
        (None, false) => ward.province_name.clone(),
        (None, true) => ward.province_name_en.clone(),
    };
    let mut sheet = Sheet {
        lang,
        title: words.title.to_owned(),
        ward: if english {
            ward.full_name_en.clone()
        } else {
            ward.full_name.clone()
        },
        province: province_name,
        read_line: leaflet::read_line(lang, today),
        verified_line: String::new(),
        nothing_nearby: (!any_in_person).then(|| leaflet::nothing_nearby_line(lang)),
        hotlines_title: words.hotlines_title.to_owned(),
        hotlines: HOTLINES
            .iter()
            .map(|h| PrintedHotline {
                number: h.number.to_owned(),
                label: h.label(lang).to_owned(),
            })
            .collect(),
        confidentiality_line: words.confidentiality.to_owned(),
        sections,
        map_url: map_url(&request.public_url, lang, &ward),
        map_caption: words.map_caption.to_owned(),
        footer: words.footer.to_owned(),
    };
    sheet.verified_line = sheet.verification();
    let mut hash = Sha256::new();
    hash.update(digest.as_bytes());
    hash.update(serde_json::to_vec(&sheet).unwrap_or_default());
    let hex: String = hash.finalize()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let etag = format!("\"{hex}\"");
    Ok(Prepared { sheet, etag, today })
}

/// Typesets a prepared leaflet on one page: as many services as fit, each
/// category's nearest first (see [`Sheet::keeping`]), found by halving.
/// CPU-bound.
pub fn render(prepared: &Prepared) -> Result<Vec<u8>, LeafletError> {
    let sheet = &prepared.sheet;
    let print = |count: usize| print::leaflet_pdf(&sheet.keeping(count), prepared.today);
    let all = print(sheet.entries())?;
    if all.pages <= 1 {
        return Ok(all.pdf);
    }
    // The most that fits lies in [fits, overflows).
    let (mut fits, mut overflows) = (sheet.least_entries(), sheet.entries());
    let mut best = print(fits)?;
    if best.pages > 1 {
        tracing::warn!(pages = best.pages, "a leaflet does not fit one page");
        return Ok(best.pdf);
    }
    while overflows - fits > 1 {
        let middle = fits + (overflows - fits) / 2;
        let printed = print(middle)?;
        if printed.pages <= 1 {
            (fits, best) = (middle, printed);
        } else {
            overflows = middle;
        }
    }
    Ok(best.pdf)
}

/// What became of one leaflet in a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// Typeset and written.
    New,
    /// Already there with the same `ETag`: left alone.
    UpToDate,
}

/// The file a commune's leaflet is written to in `dir`, and the file
/// beside it that holds its `ETag` (how a batch resumes).
pub fn leaflet_paths(dir: &Path, ward: &str, lang: Lang) -> (PathBuf, PathBuf) {
    let stem = format!("{ward}-{}", lang.as_str());
    (
        dir.join(format!("{stem}.pdf")),
        dir.join(format!(".{stem}.etag")),
    )
}

/// Writes one commune's leaflet into `dir` unless the one there is up to
/// date. The PDF is written to a temporary file and renamed, so that an
/// interrupted batch leaves whole files only; the `ETag` is written last.
pub async fn write_one(
    conn: &mut DbConn,
    request: &LeafletRequest,
    dir: &Path,
    now: DateTime<Utc>,
) -> anyhow::Result<Written> {
    let prepared = prepare(conn, request, now).await?;
    let (pdf_path, etag_path) = leaflet_paths(dir, request.ward.as_str(), request.lang);
    if let Ok(stored) = tokio::fs::read_to_string(&etag_path).await
        && stored == prepared.etag
        && tokio::fs::try_exists(&pdf_path).await.unwrap_or(false)
    {
        return Ok(Written::UpToDate);
    }
    let pdf =
        tokio::task::spawn_blocking(move || render(&prepared).map(|pdf| (pdf, prepared))).await??;
    let (pdf, prepared) = pdf;
    // The tag goes first and comes back last: a run stopped in between
    // leaves a PDF without a tag, which the next run makes again.
    match tokio::fs::remove_file(&etag_path).await {
        Err(error) if error.kind() != std::io::ErrorKind::NotFound => return Err(error.into()),
        _ => {}
    }
    write_whole(&pdf_path, &pdf).await?;
    write_whole(&etag_path, prepared.etag.as_bytes()).await?;
    Ok(Written::New)
}

/// Writes `bytes` to a temporary file beside `path`, flushed to the disk,
/// and renames it to `path`: `path` is the whole file or what it was.
async fn write_whole(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let mut file = tokio::fs::File::create(&partial).await?;
    file.write_all(bytes).await?;
    file.sync_all().await?;
    drop(file);
    tokio::fs::rename(&partial, path).await
}

/// The wards of a province, or of the whole country, in code order.
pub async fn wards_to_print(
    conn: &mut DbConn,
    province: Option<&str>,
) -> Result<Vec<WardCode>, LeafletError> {
    let provinces: Vec<String> = match province {
        Some(code) => vec![code.to_owned()],
        None => reference::list_provinces(conn)
            .await?
            .into_iter()
            .map(|p| p.code)
            .collect(),
    };
    let mut codes = Vec::new();
    for province in provinces {
        for ward in reference::province_wards(conn, &province).await? {
            if let Ok(code) = WardCode::parse(&ward.code) {
                codes.push(code);
            }
        }
    }
    codes.sort_by(|a, b| a.as_str().cmp(b.as_str()));
    Ok(codes)
}
