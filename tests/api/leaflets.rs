//! A commune's printed leaflet, read back as a printer and a reader would:
//! its text (`pdftotext`), its fonts (`pdffonts`), its one A4 page
//! (`pdfinfo`) and its pixels (`pdftoppm`, saved under
//! target/test-artifacts/leaflets/). poppler-utils comes from
//! `scripts/install-deps --browser`, as the test command runs it.

use std::path::{Path, PathBuf};
use std::process::Command;

use reqwest::Method;
use serde_json::{Value, json};

use crate::coverage::one_shelter;
use crate::helpers::{TestApp, TestDb, TextRow};

/// Phường Lào Cai; its reference point is (22.50643, 104.00511).
const LAO_CAI_WARD: &str = "02647";

/// The shelter's exact place, and its public cell's other corners.
const SHELTER_AT: (f64, f64) = (22.4173, 103.99701);
const SHELTER_ADDRESS: &str = "Số 99 ngõ Kín Đáo";
const SHELTER_PHONE: &str = "0214 555 0999";

fn poppler(tool: &str, args: &[&str]) -> Vec<u8> {
    let output = Command::new(tool)
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!(
                "{tool} is missing ({error}): scripts/install-deps --browser installs poppler-utils"
            )
        });
    assert!(
        output.status.success(),
        "{tool} {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// A leaflet read back.
struct Read {
    path: PathBuf,
    /// Its text with every run of white space made one space, so that a
    /// name broken over two lines is found whole.
    text: String,
}

fn read(dir: &Path, name: &str, pdf: &[u8]) -> Read {
    assert!(pdf.starts_with(b"%PDF-"), "not a PDF");
    let path = dir.join(format!("{name}.pdf"));
    std::fs::write(&path, pdf).unwrap();
    let raw = poppler("pdftotext", &[path.to_str().unwrap(), "-"]);
    let text = String::from_utf8(raw)
        .unwrap()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    Read { path, text }
}

impl Read {
    fn has(&self, what: &str) {
        assert!(self.text.contains(what), "{what:?} not in: {}", self.text);
    }

    fn lacks(&self, what: &str) {
        assert!(!self.text.contains(what), "{what:?} in: {}", self.text);
    }

    /// One A4 page, every font embedded and subset.
    fn is_one_a4_page_with_embedded_fonts(&self) {
        let path = self.path.to_str().unwrap();
        let info = String::from_utf8(poppler("pdfinfo", &[path])).unwrap();
        assert!(info.contains("Pages:           1\n"), "{info}");
        assert!(info.contains("595.276 x 841.89 pts (A4)"), "{info}");
        let fonts = String::from_utf8(poppler("pdffonts", &[path])).unwrap();
        let rows: Vec<&str> = fonts.lines().skip(2).collect();
        assert!(!rows.is_empty(), "{fonts}");
        for row in rows {
            // name+subset-tag, type…, then emb sub uni: yes yes yes.
            let name = row.split_whitespace().next().unwrap();
            assert!(
                name.len() > 7 && name.as_bytes()[6] == b'+',
                "not subset: {row}"
            );
            assert!(name.contains("DejaVuSans"), "another font: {row}");
            assert!(row.contains(" yes yes yes "), "not embedded: {row}");
        }
    }

    /// Rasterises the page into target/test-artifacts/leaflets/, and checks
    /// it is printed on: some, not most, of it is dark.
    fn is_printed_on(&self, artifact: &str) {
        let artifacts =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("target/test-artifacts/leaflets");
        std::fs::create_dir_all(&artifacts).unwrap();
        let path = self.path.to_str().unwrap();
        let png = artifacts.join(artifact);
        poppler(
            "pdftoppm",
            &[
                "-png",
                "-r",
                "110",
                "-singlefile",
                path,
                png.with_extension("").to_str().unwrap(),
            ],
        );
        assert!(png.exists());
        let pgm = poppler("pdftoppm", &["-gray", "-r", "30", "-singlefile", path]);
        // P5 <width> <height> 255, then one byte per pixel.
        let mut header = pgm.splitn(5, |b| b.is_ascii_whitespace());
        assert_eq!(header.next(), Some(&b"P5"[..]));
        let width: usize = std::str::from_utf8(header.next().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        let height: usize = std::str::from_utf8(header.next().unwrap())
            .unwrap()
            .parse()
            .unwrap();
        header.next();
        let pixels = header.next().unwrap();
        assert_eq!(pixels.len(), width * height);
        let dark = pixels.iter().filter(|p| **p < 128).count() as f64 / pixels.len() as f64;
        assert!(
            (0.01..0.5).contains(&dark),
            "{:.3} of the page is dark",
            dark
        );
    }
}

async fn leaflet(app: &TestApp, query: &str) -> (reqwest::header::HeaderMap, Vec<u8>) {
    let response = app
        .get(&format!("/v1/wards/{LAO_CAI_WARD}/leaflet.pdf{query}"))
        .await;
    assert_eq!(response.status(), 200, "{query}");
    let headers = response.headers().clone();
    (headers, response.bytes().await.unwrap().to_vec())
}

async fn post(app: &TestApp, admin: &str, path: &str, body: Value) -> String {
    let answer = app
        .send(Some(admin), Method::POST, path, Some(&body), None)
        .await;
    assert_eq!(answer.status, 201, "{path}: {}", answer.body);
    answer.body["id"].as_str().unwrap().to_owned()
}

/// A legal aid service `km` north of the ward's reference point.
async fn legal_aid(app: &TestApp, admin: &str, organization: &str, name: &str, km: f64) -> String {
    let location = post(
        app,
        admin,
        "/v1/locations",
        json!({
            "organization_id": organization, "name": "Trụ sở",
            "address": format!("Số {} đường Hoàng Liên", km as u32),
            "province_code": "15",
            "latitude": 22.50643 + km / 111.2, "longitude": 104.00511,
        }),
    )
    .await;
    post(
        app,
        admin,
        "/v1/services",
        json!({
            "organization_id": organization, "name": name,
            "name_en": format!("{name} (EN)"),
            "categories": ["legal_aid"], "delivery": ["in_person"],
            "location_ids": [location],
            "phones": [{"number": "0214 555 0107"}],
            "schedules": [{"byday": ["MO", "TU", "WE", "TH", "FR"],
                           "opens_at": "07:30", "closes_at": "17:00"}],
        }),
    )
    .await
}

/// Four legal aid services (1, 3, 6 and 9 km away), the shelter (about
/// 10 km away, with an address and a phone only some may see) and a
/// nationwide phone line: a directory of our own on reference data only.
struct Fixture {
    admin: String,
    nearest_legal_aid: String,
    shelter_location: String,
}

const LEGAL_AID: [(&str, f64); 4] = [
    ("Trợ giúp pháp lý miễn phí cho người bị mua bán trở về", 1.0),
    ("Văn phòng luật sư Nguyễn Thị Hường", 3.0),
    ("Điểm tư vấn pháp luật phường Cốc Lếu", 6.0),
    ("Câu lạc bộ trợ giúp pháp lý xã Hợp Thành", 9.0),
];
const PHONE_LINE: &str = "Đường dây tư vấn tâm lý toàn quốc cho người trở về";

async fn fixture(app: &TestApp) -> Fixture {
    let admin = app.key("admin", None).await;
    let organization = post(
        app,
        &admin,
        "/v1/organizations",
        json!({"name": "Trung tâm Trợ giúp pháp lý Nhà nước tỉnh Lào Cai",
               "name_en": "Lao Cai State Legal Aid Centre"}),
    )
    .await;
    let mut ids = Vec::new();
    for (name, km) in LEGAL_AID {
        ids.push(legal_aid(app, &admin, &organization, name, km).await);
    }
    post(
        app,
        &admin,
        "/v1/services",
        json!({
            "organization_id": organization, "name": PHONE_LINE,
            "categories": ["mental_health"], "delivery": ["remote"],
            "phones": [{"number": "1800 1567"}],
        }),
    )
    .await;
    let (_, shelter_location) = one_shelter(app, &admin, SHELTER_AT).await;
    let path = format!("/v1/locations/{shelter_location}");
    let tag = app
        .send(Some(&admin), Method::GET, &path, None, None)
        .await
        .etag();
    let hidden = app
        .send(
            Some(&admin),
            Method::PATCH,
            &path,
            Some(&json!({"address": SHELTER_ADDRESS,
                         "phones": [{"number": SHELTER_PHONE}]})),
            Some(&tag),
        )
        .await;
    assert_eq!(hidden.status, 200, "{}", hidden.body);
    Fixture {
        admin,
        nearest_legal_aid: ids.remove(0),
        shelter_location,
    }
}

#[tokio::test]
async fn a_communes_leaflet_prints_the_nearest_help_and_never_where_a_shelter_is() {
    let app = TestApp::spawn_on(TestDb::bare().await).await;
    fixture(&app).await;
    let dir = tempfile::tempdir().unwrap();

    let (headers, pdf) = leaflet(&app, "").await;
    assert_eq!(headers["content-type"], "application/pdf");
    assert_eq!(headers["cache-control"], "public, max-age=3600");
    assert!(headers.contains_key("etag"));
    let vi = read(dir.path(), "vi", &pdf);
    vi.is_one_a4_page_with_embedded_fonts();
    vi.is_printed_on("02647-vi.png");
    // The commune, the hotlines, the nearest services with every diacritic.
    vi.has("Phường Lào Cai");
    vi.has("Tỉnh Lào Cai");
    for hotline in ["111", "113", "115"] {
        vi.has(hotline);
    }
    vi.has(&format!("{} · 1,0 km", LEGAL_AID[0].0));
    vi.has("Trung tâm Trợ giúp pháp lý Nhà nước tỉnh Lào Cai");
    vi.has("Số 1 đường Hoàng Liên, ");
    vi.has("T2–T6 07:30–17:00 · Miễn phí");
    vi.has(&format!("{PHONE_LINE} · từ xa (điện thoại, trực tuyến)"));
    vi.has("Chưa có dịch vụ trong vòng 50 km");
    // The shelter: its service's name and the hotline, nothing of where.
    vi.has("Nơi tạm trú an toàn Mái ấm Địa chỉ được giữ kín. Gọi 111");
    vi.lacks("Nơi tạm trú an toàn ·");
    vi.lacks(SHELTER_ADDRESS);
    vi.lacks(SHELTER_PHONE);
    vi.lacks("Nhà tạm lánh");
    for coordinate in ["22.417", "22,417", "103.997", "103,997", "22.4 ", "104.0 "] {
        vi.lacks(coordinate);
    }

    let (_, pdf) = leaflet(&app, "?lang=en").await;
    let en = read(dir.path(), "en", &pdf);
    en.is_one_a4_page_with_embedded_fonts();
    en.is_printed_on("02647-en.png");
    en.has("Lao Cai Ward");
    en.has("National hotlines");
    en.has(&format!("{} (EN) · 1.0 km", LEGAL_AID[0].0));
    en.has("Lao Cai State Legal Aid Centre");
    en.has("Mon–Fri 07:30–17:00 · Free");
    en.has("Address kept confidential. Call 111");
    en.lacks(SHELTER_ADDRESS);

    // One category: its three nearest, nearest first; not the fourth.
    let (_, pdf) = leaflet(&app, "?categories=legal_aid").await;
    let legal = read(dir.path(), "legal", &pdf);
    let at: Vec<usize> = LEGAL_AID[..3]
        .iter()
        .map(|(name, _)| legal.text.find(name).unwrap_or_else(|| panic!("{name}")))
        .collect();
    assert!(at.is_sorted(), "{}", legal.text);
    legal.lacks(LEGAL_AID[3].0);
    legal.lacks("Nơi tạm trú");
}

#[tokio::test]
async fn a_commune_with_nothing_nearby_says_so_and_lists_remote_and_national_help() {
    let app = TestApp::spawn_on(TestDb::bare().await).await;
    fixture(&app).await;
    // A commune of Cà Mau, some 1,500 km from every place above.
    let mut conn = app.db.conn().await;
    use diesel_async::RunQueryDsl;
    let far: Vec<TextRow> = diesel::sql_query(
        "SELECT code AS text FROM wards WHERE province_code = '96' ORDER BY code LIMIT 1",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let far = &far[0].text;
    let response = app.get(&format!("/v1/wards/{far}/leaflet.pdf")).await;
    assert_eq!(response.status(), 200);
    let dir = tempfile::tempdir().unwrap();
    let read = read(dir.path(), "far", &response.bytes().await.unwrap());
    read.is_one_a4_page_with_embedded_fonts();
    read.is_printed_on("far-vi.png");
    read.has("Tỉnh Cà Mau");
    read.has("Không có dịch vụ nào có địa điểm trong vòng 50 km quanh xã");
    read.has(&format!("{PHONE_LINE} · từ xa"));
    read.has("111");
    read.has("Chưa có dịch vụ trong vòng 50 km. Hãy gọi 111.");
    read.lacks(LEGAL_AID[0].0);
    read.lacks("Nơi tạm trú an toàn");
}

#[tokio::test]
async fn the_etag_follows_what_is_printed_and_not_where_a_shelter_moved() {
    let app = TestApp::spawn_on(TestDb::bare().await).await;
    let fixture = fixture(&app).await;
    let admin = &fixture.admin;
    let path = format!("/v1/wards/{LAO_CAI_WARD}/leaflet.pdf");
    let (headers, pdf) = leaflet(&app, "").await;
    let etag = headers["etag"].to_str().unwrap().to_owned();
    let dir = tempfile::tempdir().unwrap();
    let before = read(dir.path(), "before", &pdf).text;

    // Asked again with its tag: not typeset again.
    let again = app
        .client
        .get(format!("{}{path}", app.address))
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    assert_eq!(again.headers()["etag"], etag.as_str());
    assert_eq!(again.headers()["cache-control"], "public, max-age=3600");

    // Other categories, another language: other leaflets.
    for query in [
        "?lang=en",
        "?categories=legal_aid",
        "?categories=shelter,legal_aid",
    ] {
        let (headers, _) = leaflet(&app, query).await;
        assert_ne!(headers["etag"], etag.as_str(), "{query}");
    }

    // The shelter moves within its public cell and changes its address and
    // phone: nothing printed changes, nor the tag.
    let location = format!("/v1/locations/{}", fixture.shelter_location);
    for (at, address) in [
        ((22.3601, 103.9502), "Số 1 ngõ Khác"),
        ((22.4449, 104.0449), "Thôn Mới"),
    ] {
        let tag = app
            .send(Some(admin), Method::GET, &location, None, None)
            .await
            .etag();
        let moved = app
            .send(
                Some(admin),
                Method::PATCH,
                &location,
                Some(
                    &json!({"latitude": at.0, "longitude": at.1, "ward_code": null,
                             "address": address, "phones": [{"number": "0214 555 0888"}]}),
                ),
                Some(&tag),
            )
            .await;
        assert_eq!(moved.status, 200, "{}", moved.body);
        let (headers, pdf) = leaflet(&app, "").await;
        assert_eq!(headers["etag"], etag.as_str(), "moved to {at:?}");
        assert_eq!(read(dir.path(), "moved", &pdf).text, before);
    }

    // What is printed changes: so does the tag.
    let service = format!("/v1/services/{}", fixture.nearest_legal_aid);
    let tag = app
        .send(Some(admin), Method::GET, &service, None, None)
        .await
        .etag();
    let renamed = app
        .send(
            Some(admin),
            Method::PATCH,
            &service,
            Some(&json!({"name": "Trợ giúp pháp lý lưu động"})),
            Some(&tag),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let (headers, pdf) = leaflet(&app, "").await;
    assert_ne!(headers["etag"], etag.as_str());
    read(dir.path(), "renamed", &pdf).has("Trợ giúp pháp lý lưu động · 1,0 km");
}

#[tokio::test]
async fn bad_leaflet_requests_are_problems_naming_the_field() {
    let app = TestApp::spawn_on(TestDb::bare().await).await;
    let leaflet = |query: &str| format!("/v1/wards/{LAO_CAI_WARD}/leaflet.pdf{query}");
    app.bad_request(&leaflet("?lang=fr"), "lang", "type").await;
    app.bad_request(&leaflet("?lang="), "lang", "type").await;
    app.bad_request(&leaflet("?categories=food"), "categories", "one_of")
        .await;
    app.bad_request(
        &leaflet("?categories=legal_aid,legal_aid"),
        "categories",
        "unique",
    )
    .await;
    app.bad_request(&leaflet("?categories="), "categories", "one_of")
        .await;
    app.bad_request(&leaflet("?near=1,2"), "near", "unknown_field")
        .await;
    app.bad_request("/v1/wards/2647/leaflet.pdf", "code", "format")
        .await;
    app.problem("/v1/wards/99999/leaflet.pdf", 404).await;
}

#[tokio::test]
async fn the_command_line_prints_a_provinces_leaflets_and_resumes() {
    let app = TestApp::spawn_on(TestDb::bare().await).await;
    fixture(&app).await;
    let dir = tempfile::tempdir().unwrap();
    // Lai Châu (12), the province with the fewest communes.
    let run = || {
        let output = Command::new(env!("CARGO_BIN_EXE_ketnoi"))
            .args([
                "--log",
                "warn",
                "leaflets",
                "--province",
                "12",
                "--jobs",
                "2",
            ])
            .arg("--output")
            .arg(dir.path())
            .args(["--public-url", "https://ketnoi.example.vn"])
            .env("DATABASE_URL", &app.db.url)
            .env_remove("KETNOI_DATA_DIR")
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "{stderr}");
        stderr
    };
    let mut conn = app.db.conn().await;
    use diesel_async::RunQueryDsl;
    let wards: Vec<TextRow> = diesel::sql_query(
        "SELECT code AS text FROM wards WHERE province_code = '12' ORDER BY code",
    )
    .load(&mut conn)
    .await
    .unwrap();
    let count = wards.len();
    let first = run();
    assert!(
        first.contains(&format!("{count} written, 0 already up to date")),
        "{first}"
    );
    for ward in &wards {
        let pdf = std::fs::read(dir.path().join(format!("{}-vi.pdf", ward.text))).unwrap();
        assert!(pdf.starts_with(b"%PDF-"));
    }
    let sample = read(
        dir.path(),
        "sample",
        &std::fs::read(dir.path().join(format!("{}-vi.pdf", wards[0].text))).unwrap(),
    );
    sample.has("Tỉnh Lai Châu");
    sample.has(&format!("{PHONE_LINE} · từ xa"));

    // Again: nothing to do. One leaflet lost: only it is made again.
    let second = run();
    assert!(
        second.contains(&format!("0 written, {count} already up to date")),
        "{second}"
    );
    std::fs::remove_file(dir.path().join(format!("{}-vi.pdf", wards[1].text))).unwrap();
    let third = run();
    assert!(
        third.contains(&format!("1 written, {} already up to date", count - 1)),
        "{third}"
    );

    // Refused before anything is written.
    let refused = Command::new(env!("CARGO_BIN_EXE_ketnoi"))
        .args(["--log", "warn", "leaflets", "--province", "99", "--output"])
        .arg(dir.path())
        .args(["--public-url", "https://ketnoi.example.vn"])
        .env("DATABASE_URL", &app.db.url)
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--province"));
}

#[tokio::test]
async fn a_busy_communes_leaflet_stays_one_page_with_the_hotlines_first_and_every_category() {
    // Sa Pa in the sample: services in all twelve categories, more than
    // fit at three each.
    let app = TestApp::spawn().await;
    let response = app.get("/v1/wards/03006/leaflet.pdf").await;
    assert_eq!(response.status(), 200);
    let dir = tempfile::tempdir().unwrap();
    let read = read(dir.path(), "sa-pa", &response.bytes().await.unwrap());
    read.is_one_a4_page_with_embedded_fonts();
    read.is_printed_on("03006-vi.png");
    let (_, _, categories) = app.get_json("/v1/categories").await;
    let labels: Vec<&str> = categories
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["label_vi"].as_str().unwrap())
        .collect();
    assert_eq!(labels.len(), 12);
    for label in &labels {
        read.has(&format!("{label} "));
    }
    // The first category, health, comes after the three hotlines.
    let first_category = read.text.find(labels[0]).unwrap();
    for hotline in ["111 ", "113 ", "115 "] {
        let at = read.text.find(hotline).unwrap();
        assert!(at < first_category, "{hotline} after the first category");
    }
    // Nothing says a category is empty here.
    read.lacks("Chưa có dịch vụ");
}
