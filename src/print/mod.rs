//! Printed documents, typeset with Typst used as a library: a commune's
//! leaflet ([`leaflet_pdf`]).
//!
//! Why Typst: it lays out and breaks lines, shapes text with HarfBuzz's
//! rules (Vietnamese tone marks stacked on circumflexes and breves, `đ`),
//! embeds only the glyphs used (subset fonts) and writes tagged PDF with
//! real text, so that `pdftotext` and screen readers read it back; it is
//! maintained by a company and used by many. The template
//! (`leaflet.typ`) is ours; what it prints arrives as data (`sheet.json`),
//! never as markup, so no listing can inject layout.
//!
//! The font is DejaVu Sans, which covers every Vietnamese letter; it comes
//! from Debian's `fonts-dejavu-core` (installed by `scripts/install-deps`),
//! read from `KETNOI_FONT_DIR` (default `/usr/share/fonts/truetype/dejavu`).

use std::path::PathBuf;
use std::sync::OnceLock;

use sha2::{Digest, Sha256};
use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Duration};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_layout::PagedDocument;

use crate::domain::leaflet::Sheet;

/// The leaflet's template, built into the binary.
const LEAFLET_TEMPLATE: &str = include_str!("leaflet.typ");

/// The font files a leaflet needs, in `KETNOI_FONT_DIR`.
const FONT_FILES: [&str; 2] = ["DejaVuSans.ttf", "DejaVuSans-Bold.ttf"];

const DEFAULT_FONT_DIR: &str = "/usr/share/fonts/truetype/dejavu";

/// Why a document could not be printed.
#[derive(Debug, thiserror::Error)]
pub enum PrintError {
    /// The fonts are not installed: the server cannot print at all.
    #[error(
        "the leaflet font is missing ({0}); install Debian's fonts-dejavu-core or set KETNOI_FONT_DIR"
    )]
    Fonts(String),
    /// Typst refused the template or the data: a defect of ours.
    #[error("typesetting failed: {0}")]
    Typeset(String),
}

/// The fonts and Typst's standard library, loaded once per process.
struct Resources {
    library: LazyHash<Library>,
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
    /// Changes when the font files, the template or the crates (Typst's
    /// version) change: part of every leaflet's `ETag`.
    digest: String,
}

fn resources() -> Result<&'static Resources, PrintError> {
    static RESOURCES: OnceLock<Result<Resources, String>> = OnceLock::new();
    RESOURCES
        .get_or_init(load)
        .as_ref()
        .map_err(|missing| PrintError::Fonts(missing.clone()))
}

fn load() -> Result<Resources, String> {
    let dir = std::env::var_os("KETNOI_FONT_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_FONT_DIR));
    let mut fonts = Vec::new();
    let mut digest = Sha256::new();
    digest.update(LEAFLET_TEMPLATE.as_bytes());
    // The typesetter's version too: the lockfile names every crate's.
    digest.update(include_str!("../../Cargo.lock").as_bytes());
    for file in FONT_FILES {
        let path = dir.join(file);
        let data = std::fs::read(&path).map_err(|_| path.display().to_string())?;
        digest.update(&data);
        let before = fonts.len();
        fonts.extend(Font::iter(Bytes::new(data)));
        if fonts.len() == before {
            return Err(format!("{} is not a font", path.display()));
        }
    }
    Ok(Resources {
        library: LazyHash::new(Library::default()),
        book: LazyHash::new(FontBook::from_fonts(&fonts)),
        fonts,
        digest: digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect(),
    })
}

/// A digest of what typesetting depends on besides the sheet (template and
/// fonts), or the reason leaflets cannot be printed here.
pub fn typesetting_digest() -> Result<&'static str, PrintError> {
    resources().map(|r| r.digest.as_str())
}

fn file_id(path: &str) -> FileId {
    #[expect(clippy::expect_used, reason = "the paths are constants of ours")]
    let path = VirtualPath::new(path).expect("a valid virtual path");
    FileId::new(RootedPath::new(VirtualRoot::Project, path))
}

/// One leaflet's files, as Typst sees them: the template, the sheet as
/// JSON, the QR code as SVG. Nothing else can be read.
struct LeafletWorld {
    resources: &'static Resources,
    main: Source,
    sheet: Bytes,
    qr: Bytes,
    today: Datetime,
}

impl World for LeafletWorld {
    fn library(&self) -> &LazyHash<Library> {
        &self.resources.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &self.resources.book
    }

    fn main(&self) -> FileId {
        self.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() {
            Ok(self.main.clone())
        } else {
            Err(FileError::AccessDenied)
        }
    }

    fn file(&self, id: FileId) -> FileResult<Bytes> {
        if id == file_id("sheet.json") {
            Ok(self.sheet.clone())
        } else if id == file_id("map.svg") {
            Ok(self.qr.clone())
        } else {
            Err(FileError::AccessDenied)
        }
    }

    fn font(&self, index: usize) -> Option<Font> {
        self.resources.fonts.get(index).cloned()
    }

    fn today(&self, _offset: Option<Duration>) -> Option<Datetime> {
        Some(self.today)
    }
}

/// A QR code of `url`, as SVG.
fn qr_svg(url: &str) -> Result<String, PrintError> {
    let code = qrcode::QrCode::with_error_correction_level(url, qrcode::EcLevel::M)
        .map_err(|error| PrintError::Typeset(format!("QR code: {error}")))?;
    Ok(code
        .render::<qrcode::render::svg::Color<'_>>()
        .quiet_zone(true)
        .build())
}

/// Typst's errors, as one.
fn refused(errors: &[typst::diag::SourceDiagnostic]) -> PrintError {
    PrintError::Typeset(
        errors
            .iter()
            .map(|e| e.message.to_string())
            .collect::<Vec<_>>()
            .join("; "),
    )
}

/// A typeset leaflet.
pub struct Printed {
    pub pdf: Vec<u8>,
    pub pages: usize,
}

/// Typesets `sheet` as a PDF. CPU-bound (milliseconds): call it off the
/// async runtime.
pub fn leaflet_pdf(sheet: &Sheet, today: chrono::NaiveDate) -> Result<Printed, PrintError> {
    use chrono::Datelike;
    let resources = resources()?;
    let json = serde_json::to_vec(sheet).map_err(|error| PrintError::Typeset(error.to_string()))?;
    let world = LeafletWorld {
        resources,
        main: Source::new(file_id("leaflet.typ"), LEAFLET_TEMPLATE.to_owned()),
        sheet: Bytes::new(json),
        qr: Bytes::from_string(qr_svg(&sheet.map_url)?),
        today: Datetime::from_ymd(
            today.year(),
            u8::try_from(today.month()).unwrap_or(1),
            u8::try_from(today.day()).unwrap_or(1),
        )
        .ok_or_else(|| PrintError::Typeset("date out of range".into()))?,
    };
    let document: PagedDocument = typst::compile(&world).output.map_err(|e| refused(&e))?;
    let options = typst_pdf::PdfOptions {
        ident: typst::foundations::Smart::Custom("ketnoi-leaflet".into()),
        creator: typst::foundations::Smart::Custom(Some("Kết Nối".into())),
        ..typst_pdf::PdfOptions::default()
    };
    let pdf = typst_pdf::pdf(&document, &options).map_err(|e| refused(&e))?;
    // Typst memoises across documents; keep what recent leaflets used
    // (the template, the fonts' shaping) and let the rest go.
    comemo::evict(30);
    Ok(Printed {
        pages: document.pages().len(),
        pdf,
    })
}
