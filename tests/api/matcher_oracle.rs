//! The matcher against a brute-force oracle.
//!
//! Random directories (hundreds of services with random points, categories,
//! eligibility rules, service areas, statuses) and random requests; the
//! matcher answers through the HTTP API, and an independent model written
//! here answers by checking every service, with the `geo` crate's geodesic
//! distance and planar point-in-polygon. They must agree: same services, in
//! the same order (distances within 1 m, or equal areas, may swap), the same
//! distances within 0.5 m, the same unmet needs.
//!
//! `KETNOI_ORACLE_SEED` changes the seed (default below); each directory
//! serves `REQUESTS` requests, `DIRECTORIES` × `REQUESTS` cases per run.

use std::collections::HashMap;

use diesel_async::RunQueryDsl;
use geo::orient::{Direction, Orient};
use geo::{BooleanOps, Distance, Geodesic, GeodesicArea, Intersects};
use ketnoi::db::models::locations::{NewLocation, NewServiceAtLocation};
use ketnoi::db::models::organizations::NewOrganization;
use ketnoi::db::models::parts::NewServiceArea;
use ketnoi::db::models::services::{NewService, NewServiceCategory};
use ketnoi::db::postgis::{point, to_postgis};
use ketnoi::db::schema;
use ketnoi::domain::category::Category;
use ketnoi::domain::ids::{
    LocationId, OrganizationId, ServiceAreaId, ServiceAtLocationId, ServiceId,
};
use ketnoi::domain::province::ProvinceCode;
use ketnoi::domain::service::{DocumentType, Gender, VictimStatus};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{Value, json};
use strum::VariantArray;
use uuid::Uuid;

use crate::helpers::{TestApp, TestDb};

const DEFAULT_SEED: u64 = 20_261_128;
const DIRECTORIES: u64 = 20;
const REQUESTS: usize = 10;
const SERVICES: usize = 300;
const ORGANIZATIONS: usize = 60;
/// Wards per directory that ward-coded areas and requests draw from.
const WARD_POOL: usize = 12;

/// Northern Vietnam, from Lai Châu to Hà Nội, and a little of its
/// neighbours (points inside no province are part of the test).
const LAT: (f64, f64) = (20.9, 22.9);
const LON: (f64, f64) = (103.3, 106.0);
const PROVINCES: [&str; 10] = ["01", "04", "08", "12", "14", "15", "19", "20", "24", "25"];
const NATIONALITIES: [&str; 4] = ["VN", "LA", "CN", "KH"];
const LANGUAGES: [&str; 5] = ["vi", "hnj", "blt", "tyz", "km"];
const STATUSES: [&str; 4] = ["active", "inactive", "defunct", "temporarily closed"];

/// One ward of the reference file, with its bounding box for a quick
/// point lookup.
struct WardShape {
    code: String,
    province: String,
    shape: geo::MultiPolygon<f64>,
    bbox: geo::Rect<f64>,
    /// The reference point, (lat, lon).
    point: (f64, f64),
}

/// The reference geography, independently of the server's SQL: wards from
/// the shipped file (a point's ward is the lowest code whose shape covers
/// it, its province that ward's), province shapes as the database stores
/// them (the union of their wards).
struct Boundaries {
    wards: Vec<WardShape>,
    provinces: HashMap<String, geo::MultiPolygon<f64>>,
    /// Wards whose reference point lies in the test's box.
    nearby: Vec<usize>,
}

impl Boundaries {
    async fn load() -> Self {
        use geo::BoundingRect;
        let wards: Vec<WardShape> = ketnoi::db::reference::ward_shapes()
            .unwrap()
            .into_iter()
            .map(|ward| {
                let geometry: geojson::Geometry = serde_json::from_value(ward.geometry).unwrap();
                let shape: geo::MultiPolygon<f64> = geometry.try_into().unwrap();
                let [lon, lat] = ward.properties.point_on_surface;
                WardShape {
                    code: ward.properties.code,
                    province: ward.properties.province_code,
                    bbox: shape.bounding_rect().unwrap(),
                    shape,
                    point: (lat, lon),
                }
            })
            .collect();
        let nearby = wards
            .iter()
            .enumerate()
            .filter(|(_, w)| {
                (LAT.0..LAT.1).contains(&w.point.0) && (LON.0..LON.1).contains(&w.point.1)
            })
            .map(|(i, _)| i)
            .collect();
        let db = TestDb::bare().await;
        let mut conn = db.conn().await;
        let rows: Vec<crate::helpers::TextRow> = diesel::sql_query(
            "SELECT code || '|' || ST_AsGeoJSON(boundary) AS text FROM provinces",
        )
        .load(&mut conn)
        .await
        .unwrap();
        let provinces = rows
            .into_iter()
            .map(|row| {
                let (code, json) = row.text.split_once('|').unwrap();
                let geometry: geojson::Geometry = json.parse().unwrap();
                (code.to_owned(), geometry.try_into().unwrap())
            })
            .collect();
        Self {
            wards,
            provinces,
            nearby,
        }
    }

    fn shape(&self, code: &str) -> &geo::MultiPolygon<f64> {
        &self.provinces[code]
    }

    fn ward(&self, code: &str) -> &WardShape {
        self.wards.iter().find(|w| w.code == code).unwrap()
    }

    fn ward_at(&self, lat: f64, lon: f64) -> Option<&WardShape> {
        let point = geo::Point::new(lon, lat);
        self.wards
            .iter()
            .filter(|w| w.bbox.intersects(&point))
            .filter(|w| w.shape.intersects(&point))
            .min_by(|a, b| a.code.cmp(&b.code))
    }

    fn province_at(&self, lat: f64, lon: f64) -> Option<&str> {
        self.ward_at(lat, lon).map(|w| w.province.as_str())
    }
}

#[derive(Debug, Clone)]
enum Area {
    Province(&'static str),
    Ward(String),
    Polygon(geo::Polygon<f64>),
}

/// One service, as the oracle sees it.
#[derive(Debug, Clone)]
struct Service {
    id: ServiceId,
    status: &'static str,
    accepting: bool,
    in_person: bool,
    remote: bool,
    categories: Vec<Category>,
    min_age: Option<u8>,
    max_age: Option<u8>,
    genders: Option<Vec<Gender>>,
    victim_statuses: Option<Vec<VictimStatus>>,
    nationalities: Option<Vec<&'static str>>,
    residence: Option<Vec<&'static str>>,
    documents: Vec<DocumentType>,
    languages: Vec<&'static str>,
    interpretation: bool,
    /// Exact points: the matcher serves caseworkers, who see confidential
    /// locations exactly.
    points: Vec<(f64, f64)>,
    /// The points the public is shown: a confidential one snapped to the
    /// 0.1° grid, as PostGIS's ST_SnapToGrid does.
    public_points: Vec<(f64, f64)>,
    areas: Vec<Area>,
}

#[derive(Debug, Clone, Default)]
struct Person {
    age: Option<u8>,
    gender: Option<Gender>,
    victim_status: Option<VictimStatus>,
    nationality: Option<&'static str>,
    residence: Option<&'static str>,
    languages: Option<Vec<&'static str>>,
    documents: Option<Vec<DocumentType>>,
}

struct Request {
    /// The point, or the ward's reference point when `ward` is given.
    lat: f64,
    lon: f64,
    /// The person given by their ward (`ward_code`) instead of a point.
    ward: Option<String>,
    needs: Vec<Category>,
    person: Person,
    radius_m: u32,
    limit: usize,
    include_remote: bool,
}

fn subset<T: Copy>(rng: &mut ChaCha8Rng, items: &[T]) -> Vec<T> {
    let mut chosen: Vec<T> = items
        .iter()
        .copied()
        .filter(|_| rng.random_bool(0.4))
        .collect();
    if chosen.is_empty() {
        chosen.push(items[rng.random_range(0..items.len())]);
    }
    chosen
}

fn maybe<T>(rng: &mut ChaCha8Rng, p: f64, value: impl FnOnce(&mut ChaCha8Rng) -> T) -> Option<T> {
    if rng.random_bool(p) {
        Some(value(rng))
    } else {
        None
    }
}

fn random_point(rng: &mut ChaCha8Rng) -> (f64, f64) {
    (
        rng.random_range(LAT.0..LAT.1),
        rng.random_range(LON.0..LON.1),
    )
}

fn random_polygon(rng: &mut ChaCha8Rng) -> geo::Polygon<f64> {
    let (lat, lon) = random_point(rng);
    let (h, w) = (rng.random_range(0.2..1.0), rng.random_range(0.2..1.2));
    let ring = if rng.random_bool(0.5) {
        vec![
            (lon, lat),
            (lon + w, lat),
            (lon + w, lat + h),
            (lon, lat + h),
            (lon, lat),
        ]
    } else {
        vec![
            (lon, lat),
            (lon + w, lat),
            (lon + w / 2.0, lat + h),
            (lon, lat),
        ]
    };
    geo::Polygon::new(geo::LineString::from(ring), vec![])
}

/// A location: id, latitude, longitude, confidential.
type Place = (LocationId, f64, f64, bool);

struct Directory {
    services: Vec<Service>,
    organizations: Vec<(OrganizationId, Vec<Place>)>,
    /// Each service's organisation and the locations it is offered at.
    links: HashMap<ServiceId, (OrganizationId, Vec<LocationId>)>,
}

/// A few wards of the box per directory: ward-coded service areas and
/// ward-coded requests both draw from them, so that they meet.
fn random_wards(rng: &mut ChaCha8Rng, boundaries: &Boundaries) -> Vec<String> {
    (0..WARD_POOL)
        .map(|_| {
            let index = boundaries.nearby[rng.random_range(0..boundaries.nearby.len())];
            boundaries.wards[index].code.clone()
        })
        .collect()
}

fn random_directory(rng: &mut ChaCha8Rng, wards: &[String]) -> Directory {
    let organizations: Vec<(OrganizationId, Vec<Place>)> = (0..ORGANIZATIONS)
        .map(|_| {
            let places = (0..rng.random_range(1..5))
                .map(|_| {
                    let (lat, lon) = random_point(rng);
                    (
                        LocationId(Uuid::from_u128(rng.random())),
                        lat,
                        lon,
                        rng.random_bool(0.1),
                    )
                })
                .collect();
            (OrganizationId(Uuid::from_u128(rng.random())), places)
        })
        .collect();
    let mut services = Vec::with_capacity(SERVICES);
    let mut links = HashMap::new();
    for _ in 0..SERVICES {
        let (organization, places) = &organizations[rng.random_range(0..ORGANIZATIONS)];
        let (in_person, remote) = match rng.random_range(0..10) {
            0..6 => (true, false),
            6..8 => (false, true),
            _ => (true, true),
        };
        // A few in-person services list no location: never matched.
        let used: Vec<Place> = if in_person && !rng.random_bool(0.03) {
            subset(rng, places)
        } else {
            Vec::new()
        };
        let min_age = maybe(rng, 0.2, |rng| rng.random_range(0..30u8));
        let max_age = maybe(rng, 0.2, |rng| rng.random_range(10..70u8))
            .map(|max| max.max(min_age.unwrap_or(0)));
        let areas = match rng.random_range(0..12) {
            0..5 => Vec::new(),
            5..8 => subset(rng, &PROVINCES[..5])
                .into_iter()
                .take(2)
                .map(Area::Province)
                .collect(),
            8..10 => {
                let mut chosen: Vec<Area> = subset(rng, &[0, 1, 2, 3])
                    .into_iter()
                    .map(|_| Area::Ward(wards[rng.random_range(0..wards.len())].clone()))
                    .collect();
                // Sometimes with a province or a polygon too: the union.
                if rng.random_bool(0.3) {
                    chosen.push(Area::Province(PROVINCES[rng.random_range(0..5)]));
                }
                if rng.random_bool(0.2) {
                    chosen.push(Area::Polygon(random_polygon(rng)));
                }
                chosen
            }
            _ => vec![Area::Polygon(random_polygon(rng))],
        };
        let service = Service {
            id: ServiceId(Uuid::from_u128(rng.random())),
            status: if rng.random_bool(0.85) {
                "active"
            } else {
                STATUSES[rng.random_range(1..4)]
            },
            accepting: rng.random_bool(0.9),
            in_person,
            remote,
            categories: subset(rng, &Category::VARIANTS[..8])
                .into_iter()
                .take(3)
                .collect(),
            min_age,
            max_age,
            genders: maybe(rng, 0.2, |rng| subset(rng, Gender::VARIANTS)),
            victim_statuses: maybe(rng, 0.2, |rng| subset(rng, VictimStatus::VARIANTS)),
            nationalities: maybe(rng, 0.15, |rng| subset(rng, &NATIONALITIES)),
            residence: maybe(rng, 0.15, |rng| subset(rng, &PROVINCES)),
            documents: maybe(rng, 0.2, |rng| subset(rng, &DocumentType::VARIANTS[..4]))
                .unwrap_or_default(),
            languages: maybe(rng, 0.4, |rng| subset(rng, &LANGUAGES)).unwrap_or_default(),
            interpretation: rng.random_bool(0.2),
            points: used.iter().map(|(_, lat, lon, _)| (*lat, *lon)).collect(),
            public_points: used
                .iter()
                .map(|(_, lat, lon, confidential)| {
                    let snap = |x: f64| {
                        if *confidential {
                            (x * 10.0).round_ties_even() / 10.0
                        } else {
                            x
                        }
                    };
                    (snap(*lat), snap(*lon))
                })
                .collect(),
            areas,
        };
        links.insert(
            service.id,
            (*organization, used.iter().map(|place| place.0).collect()),
        );
        services.push(service);
    }
    Directory {
        services,
        organizations,
        links,
    }
}

async fn insert(db: &TestDb, boundaries: &Boundaries, directory: &Directory) {
    let (services, organizations) = (&directory.services, &directory.organizations);
    let mut conn = db.conn().await;
    let names: Vec<String> = (0..organizations.len())
        .map(|i| format!("Organisation {i}"))
        .collect();
    let new_organizations: Vec<NewOrganization> = organizations
        .iter()
        .zip(&names)
        .map(|((id, _), name)| NewOrganization {
            id: *id,
            name,
            name_en: None,
            description: "",
            description_en: None,
            email: None,
            website: None,
        })
        .collect();
    diesel::insert_into(schema::organizations::table)
        .values(&new_organizations)
        .execute(&mut conn)
        .await
        .unwrap();
    let new_locations: Vec<NewLocation> = organizations
        .iter()
        .flat_map(|(organization, locations)| {
            locations.iter().map(move |(id, lat, lon, confidential)| {
                let province = boundaries.province_at(*lat, *lon).unwrap_or("15");
                NewLocation {
                    id: *id,
                    organization_id: *organization,
                    name: "Location",
                    name_en: None,
                    description: None,
                    description_en: None,
                    address: None,
                    ward_code: None,
                    province_code: ProvinceCode::parse(province).unwrap().as_str(),
                    point: point(*lon, *lat),
                    confidential: *confidential,
                }
            })
        })
        .collect();
    diesel::insert_into(schema::locations::table)
        .values(&new_locations)
        .execute(&mut conn)
        .await
        .unwrap();

    let new_services: Vec<NewService> = services
        .iter()
        .map(|s| NewService {
            id: s.id,
            organization_id: directory.links[&s.id].0,
            name: "Service",
            name_en: None,
            description: "",
            description_en: None,
            url: None,
            email: None,
            status: s.status,
            delivery_in_person: s.in_person,
            delivery_remote: s.remote,
            accepting_referrals: s.accepting,
            min_age: s.min_age.map(i16::from),
            max_age: s.max_age.map(i16::from),
            genders: s
                .genders
                .as_ref()
                .map(|v| v.iter().map(|g| g.as_str()).collect()),
            victim_statuses: s
                .victim_statuses
                .as_ref()
                .map(|v| v.iter().map(|g| g.as_str()).collect()),
            nationalities: s.nationalities.clone(),
            residence_provinces: s.residence.clone(),
            required_documents: s.documents.iter().map(|d| d.as_str()).collect(),
            languages: s.languages.clone(),
            interpretation_available: s.interpretation,
            is_free: true,
            fees_description: None,
            fees_description_en: None,
            application_process: None,
            application_process_en: None,
            capacity_available: None,
            capacity_maximum: None,
            capacity_unit: None,
            capacity_updated: None,
            assured_date: None,
        })
        .collect();
    diesel::insert_into(schema::services::table)
        .values(&new_services)
        .execute(&mut conn)
        .await
        .unwrap();
    let categories: Vec<NewServiceCategory> = services
        .iter()
        .flat_map(|s| {
            s.categories.iter().map(|c| NewServiceCategory {
                service_id: s.id,
                category_code: c.as_str(),
            })
        })
        .collect();
    diesel::insert_into(schema::service_categories::table)
        .values(&categories)
        .execute(&mut conn)
        .await
        .unwrap();
    let at_locations: Vec<NewServiceAtLocation> = directory
        .links
        .iter()
        .flat_map(|(service, (_, locations))| {
            locations.iter().map(|location| NewServiceAtLocation {
                id: ServiceAtLocationId(Uuid::new_v4()),
                service_id: *service,
                location_id: *location,
            })
        })
        .collect();
    diesel::insert_into(schema::service_at_location::table)
        .values(&at_locations)
        .execute(&mut conn)
        .await
        .unwrap();
    let areas: Vec<NewServiceArea> = services
        .iter()
        .flat_map(|s| {
            s.areas.iter().map(|area| NewServiceArea {
                id: ServiceAreaId(Uuid::new_v4()),
                service_id: s.id,
                position: 0,
                description: None,
                description_en: None,
                province_code: match area {
                    Area::Province(code) => Some(ProvinceCode::parse(code).unwrap().as_str()),
                    Area::Ward(_) | Area::Polygon(_) => None,
                },
                ward_code: match area {
                    Area::Ward(code) => Some(code.as_str()),
                    Area::Province(_) | Area::Polygon(_) => None,
                },
                extent: match area {
                    Area::Province(_) | Area::Ward(_) => None,
                    Area::Polygon(polygon) => {
                        Some(to_postgis(&geo::MultiPolygon::new(vec![polygon.clone()])))
                    }
                },
            })
        })
        .collect();
    diesel::insert_into(schema::service_areas::table)
        .values(&areas)
        .execute(&mut conn)
        .await
        .unwrap();
}

fn random_request(rng: &mut ChaCha8Rng, boundaries: &Boundaries, wards: &[String]) -> Request {
    // A third by ward code, a sixth at a point near a pool ward, the rest
    // anywhere in the box.
    let (lat, lon, ward) = match rng.random_range(0..6) {
        0..2 => {
            let ward = boundaries.ward(&wards[rng.random_range(0..wards.len())]);
            (ward.point.0, ward.point.1, Some(ward.code.clone()))
        }
        2 => {
            let ward = boundaries.ward(&wards[rng.random_range(0..wards.len())]);
            (
                ward.point.0 + rng.random_range(-0.02..0.02),
                ward.point.1 + rng.random_range(-0.02..0.02),
                None,
            )
        }
        _ => {
            let (lat, lon) = random_point(rng);
            (lat, lon, None)
        }
    };
    let count = rng.random_range(1..4);
    let mut needs = Vec::new();
    while needs.len() < count {
        let need = Category::VARIANTS[rng.random_range(0..9)];
        if !needs.contains(&need) {
            needs.push(need);
        }
    }
    let person = Person {
        age: maybe(rng, 0.5, |rng| rng.random_range(0..80)),
        gender: maybe(rng, 0.5, |rng| Gender::VARIANTS[rng.random_range(0..3)]),
        victim_status: maybe(rng, 0.5, |rng| {
            VictimStatus::VARIANTS[rng.random_range(0..3)]
        }),
        nationality: maybe(rng, 0.4, |rng| NATIONALITIES[rng.random_range(0..4)]),
        residence: maybe(rng, 0.4, |rng| {
            PROVINCES[rng.random_range(0..PROVINCES.len())]
        }),
        languages: maybe(rng, 0.5, |rng| subset(rng, &LANGUAGES)),
        documents: maybe(rng, 0.5, |rng| {
            DocumentType::VARIANTS[..4]
                .iter()
                .copied()
                .filter(|_| rng.random_bool(0.5))
                .collect()
        }),
    };
    Request {
        lat,
        lon,
        ward,
        needs,
        person,
        radius_m: rng.random_range(5_000..200_000),
        limit: rng.random_range(1..6),
        include_remote: rng.random_bool(0.7),
    }
}

fn body(request: &Request) -> Value {
    let p = &request.person;
    let mut profile = serde_json::Map::new();
    if let Some(age) = p.age {
        profile.insert("age".into(), json!(age));
    }
    if let Some(gender) = p.gender {
        profile.insert("gender".into(), json!(gender));
    }
    if let Some(status) = p.victim_status {
        profile.insert("victim_status".into(), json!(status));
    }
    if let Some(nationality) = p.nationality {
        profile.insert("nationality".into(), json!(nationality));
    }
    if let Some(residence) = p.residence {
        profile.insert("residence_province".into(), json!(residence));
    }
    if let Some(languages) = &p.languages {
        profile.insert("languages".into(), json!(languages));
    }
    if let Some(documents) = &p.documents {
        profile.insert("documents".into(), json!(documents));
    }
    let mut body = json!({
        "needs": request.needs, "profile": profile,
        "radius_m": request.radius_m, "limit_per_need": request.limit,
        "include_remote": request.include_remote,
    });
    match &request.ward {
        Some(code) => body["ward_code"] = json!(code),
        None => {
            body["lat"] = json!(request.lat);
            body["lon"] = json!(request.lon);
        }
    }
    body
}

/// Whether the person meets every rule the service states (a rule on a
/// field the person leaves out does not exclude).
fn admits(s: &Service, p: &Person) -> bool {
    let age_ok = p.age.is_none_or(|age| {
        s.min_age.is_none_or(|min| age >= min) && s.max_age.is_none_or(|max| age <= max)
    });
    fn within<T: PartialEq>(allowed: &Option<Vec<T>>, given: Option<T>) -> bool {
        match (allowed, given) {
            (Some(allowed), Some(given)) => allowed.contains(&given),
            _ => true,
        }
    }
    let documents_ok = p
        .documents
        .as_ref()
        .is_none_or(|held| s.documents.iter().all(|d| held.contains(d)));
    let language_ok = s.languages.is_empty()
        || s.interpretation
        || p.languages
            .as_ref()
            .is_none_or(|spoken| spoken.iter().any(|l| s.languages.contains(l)));
    age_ok
        && within(&s.genders, p.gender)
        && within(&s.victim_statuses, p.victim_status)
        && within(&s.nationalities, p.nationality)
        && within(&s.residence, p.residence)
        && documents_ok
        && language_ok
}

fn covers(s: &Service, lat: f64, lon: f64, ward: Option<&WardShape>) -> bool {
    let point = geo::Point::new(lon, lat);
    s.areas.is_empty()
        || ward.is_some_and(|ward| {
            s.areas.iter().any(|area| match area {
                Area::Province(code) => *code == ward.province,
                Area::Ward(code) => *code == ward.code,
                Area::Polygon(polygon) => polygon.intersects(&point),
            })
        })
}

/// The geodesic area of the union of the service's areas, to the m².
fn area_m2(s: &Service, boundaries: &Boundaries) -> f64 {
    if s.areas.is_empty() {
        return f64::INFINITY;
    }
    let union = s
        .areas
        .iter()
        .map(|area| match area {
            Area::Province(code) => boundaries.shape(code).clone(),
            Area::Ward(code) => boundaries.ward(code).shape.clone(),
            Area::Polygon(polygon) => geo::MultiPolygon::new(vec![polygon.clone()]),
        })
        .reduce(|a, b| a.union(&b))
        .unwrap();
    union
        .orient(Direction::Default)
        .geodesic_area_unsigned()
        .round()
}

/// An expected match: the service, and its distance (in person) or the
/// area it serves (remote).
#[derive(Debug, Clone, Copy)]
enum Expected {
    InPerson(ServiceId, f64),
    Remote(ServiceId, f64),
}

fn oracle(
    services: &[Service],
    request: &Request,
    need: Category,
    boundaries: &Boundaries,
) -> Vec<Expected> {
    // The ward given, or the one containing the point.
    let ward = match &request.ward {
        Some(code) => Some(boundaries.ward(code)),
        None => boundaries.ward_at(request.lat, request.lon),
    };
    let here = geo::Point::new(request.lon, request.lat);
    let mut in_person = Vec::new();
    let mut remote = Vec::new();
    for s in services {
        let takes = s.status == "active"
            && s.accepting
            && s.categories.contains(&need)
            && admits(s, &request.person)
            && covers(s, request.lat, request.lon, ward);
        if !takes {
            continue;
        }
        let nearest = s
            .points
            .iter()
            .map(|(lat, lon)| Geodesic.distance(here, geo::Point::new(*lon, *lat)))
            .fold(f64::INFINITY, f64::min);
        if s.in_person && nearest <= f64::from(request.radius_m) {
            in_person.push((nearest, s.id));
        } else if s.remote && request.include_remote {
            remote.push((area_m2(s, boundaries), s.id));
        }
    }
    in_person.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    remote.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    in_person
        .into_iter()
        .map(|(d, id)| Expected::InPerson(id, d))
        .chain(remote.into_iter().map(|(a, id)| Expected::Remote(id, a)))
        .collect()
}

/// The nearest located service of the category, whatever excludes it, and
/// its distance: the first near miss of an unmet need.
fn nearest_of_category(
    services: &[Service],
    request: &Request,
    need: Category,
) -> Option<(ServiceId, f64)> {
    let here = geo::Point::new(request.lon, request.lat);
    services
        .iter()
        .filter(|s| s.in_person && s.categories.contains(&need))
        .filter_map(|s| {
            s.points
                .iter()
                .map(|(lat, lon)| Geodesic.distance(here, geo::Point::new(*lon, *lat)))
                .reduce(f64::min)
                .map(|d| (s.id, d))
        })
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
}

fn check(
    case: &str,
    expected: &[Expected],
    limit: usize,
    result: &Value,
    nearest: Option<(ServiceId, f64)>,
) {
    let matches = result["matches"].as_array().unwrap();
    let wanted = expected.len().min(limit);
    assert_eq!(
        matches.len(),
        wanted,
        "{case}: number of matches\n{result}\nexpected {expected:?}"
    );
    assert_eq!(result["met"], wanted > 0, "{case}: met");
    let by_id: HashMap<String, Expected> = expected
        .iter()
        .map(|e| match e {
            Expected::InPerson(id, _) | Expected::Remote(id, _) => (id.to_string(), *e),
        })
        .collect();
    for (position, actual) in matches.iter().enumerate() {
        let id = actual["service"]["id"].as_str().unwrap();
        let found = by_id
            .get(id)
            .unwrap_or_else(|| panic!("{case}: {id} matched, but the oracle rejects it"));
        match (
            found,
            expected[position],
            actual["delivery"].as_str().unwrap(),
        ) {
            (Expected::InPerson(_, distance), Expected::InPerson(_, at_position), "in_person") => {
                let reported = actual["distance_m"].as_f64().unwrap();
                assert!(
                    (reported - distance).abs() <= 0.5,
                    "{case}: {id} at {reported} m, oracle {distance} m"
                );
                assert!(
                    (distance - at_position).abs() <= 1.0,
                    "{case}: {id} out of order at {position}"
                );
            }
            (Expected::Remote(_, area), Expected::Remote(_, at_position), "remote") => {
                assert!(actual["distance_m"].is_null());
                // Equal areas tie; the service id decides.
                if let Some(previous) = position.checked_sub(1).map(|p| &matches[p]) {
                    let previous_id = previous["service"]["id"].as_str().unwrap();
                    if let Some(Expected::Remote(_, previous_area)) = by_id.get(previous_id)
                        && previous_area == area
                    {
                        assert!(previous_id < id, "{case}: remote tie not broken by id");
                    }
                }
                let same = (area.is_infinite() && at_position.is_infinite())
                    || (area - at_position).abs() <= 1e-6 * area.abs().max(1.0);
                assert!(
                    same,
                    "{case}: remote {id} (area {area}) out of order at {position}: expected area {at_position}\n{expected:?}"
                );
            }
            (found, at_position, delivery) => {
                panic!(
                    "{case}: {id} delivered {delivery}, oracle {found:?}, expected {at_position:?} at {position}"
                )
            }
        }
    }
    if wanted == 0 {
        let misses = result["near_misses"].as_array().unwrap();
        assert!(misses.len() <= 3, "{case}: more than three near misses");
        for miss in misses {
            assert!(
                !miss["excluded_by"].as_array().unwrap().is_empty(),
                "{case}: a near miss without a reason"
            );
            assert!(
                miss["service"]["categories"]
                    .as_array()
                    .unwrap()
                    .contains(&result["need"])
            );
        }
        // The nearest service of the category comes first.
        if let Some((_, distance)) = nearest {
            let first = misses
                .iter()
                .next()
                .unwrap_or_else(|| panic!("{case}: no near miss"));
            let reported = first["distance_m"].as_f64().unwrap();
            assert!(
                (reported - distance).abs() <= 1.0,
                "{case}: first near miss at {reported} m, nearest at {distance} m"
            );
        }
    } else {
        assert!(result["near_misses"].as_array().unwrap().is_empty());
    }
}

#[tokio::test]
async fn the_matcher_agrees_with_a_brute_force_oracle() {
    let seed = std::env::var("KETNOI_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED);
    let boundaries = Boundaries::load().await;
    let mut cases = 0;
    let mut unmet = 0;
    let mut remote = 0;
    // Matches only a ward-coded area lets through, and requests by ward.
    let mut by_ward_area = 0;
    let mut by_ward_code = 0;
    for number in 0..DIRECTORIES {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(number));
        let wards = random_wards(&mut rng, &boundaries);
        let directory = random_directory(&mut rng, &wards);
        let db = TestDb::bare().await;
        insert(&db, &boundaries, &directory).await;
        let services = &directory.services;
        let app = TestApp::spawn_on(db).await;
        for request_index in 0..REQUESTS {
            let request = random_request(&mut rng, &boundaries, &wards);
            let answer = app.post_match(&body(&request)).await;
            let results = answer["results"].as_array().unwrap();
            if let Some(code) = &request.ward {
                by_ward_code += 1;
                assert_eq!(answer["ward"]["code"], json!(code));
                assert_eq!(answer["origin"]["source"], "ward_reference_point");
                assert_eq!(answer["origin"]["distances_approximate"], true);
                assert_eq!(answer["origin"]["lat"], json!(request.lat));
                assert_eq!(answer["origin"]["lon"], json!(request.lon));
            } else {
                assert_eq!(answer["origin"]["distances_approximate"], false);
                let ward = boundaries.ward_at(request.lat, request.lon);
                assert_eq!(
                    answer["ward"]["code"].as_str(),
                    ward.map(|w| w.code.as_str()),
                    "the ward containing the point"
                );
            }
            let ward = match &request.ward {
                Some(code) => Some(boundaries.ward(code)),
                None => boundaries.ward_at(request.lat, request.lon),
            };
            assert_eq!(
                answer["province"]["code"].as_str(),
                ward.map(|w| w.province.as_str())
            );
            assert_eq!(results.len(), request.needs.len());
            for (need, result) in request.needs.iter().zip(results) {
                assert_eq!(result["need"], json!(need));
                let case = format!(
                    "seed {seed}, directory {number}, request {request_index}, need {}",
                    need.as_str()
                );
                let expected = oracle(services, &request, *need, &boundaries);
                let nearest = nearest_of_category(services, &request, *need);
                check(&case, &expected, request.limit, result, nearest);
                // Matches that only a ward-coded area lets in.
                by_ward_area += expected
                    .iter()
                    .take(request.limit)
                    .filter(|e| {
                        let (Expected::InPerson(id, _) | Expected::Remote(id, _)) = e;
                        let s = services.iter().find(|s| s.id == *id).unwrap();
                        let others = Service {
                            areas: s
                                .areas
                                .iter()
                                .filter(|a| !matches!(a, Area::Ward(_)))
                                .cloned()
                                .collect(),
                            ..s.clone()
                        };
                        others.areas.len() < s.areas.len()
                            && (others.areas.is_empty()
                                || !covers(&others, request.lat, request.lon, ward))
                    })
                    .count();
                unmet += usize::from(expected.is_empty());
                remote += result["matches"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter(|m| m["delivery"] == "remote")
                    .count();
            }
            cases += 1;
        }
    }
    assert_eq!(cases, 200);
    // The generator must exercise both branches, or the test proves little.
    assert!(unmet > 10, "only {unmet} unmet needs");
    assert!(remote > 10, "only {remote} remote matches");
    assert!(by_ward_code > 40, "only {by_ward_code} requests by ward");
    assert!(
        by_ward_area > 10,
        "only {by_ward_area} matches through a ward-coded area"
    );
}

// --- The coverage review against the same kind of oracle -----------------

/// A profile band, as the review takes it.
#[derive(Debug, Clone, Default)]
struct Band {
    min_age: Option<u8>,
    max_age: Option<u8>,
    gender: Option<Gender>,
    victim_status: Option<VictimStatus>,
    languages: Option<Vec<&'static str>>,
    documents: Option<Vec<DocumentType>>,
}

fn random_band(rng: &mut ChaCha8Rng) -> Band {
    let min_age = maybe(rng, 0.4, |rng| rng.random_range(0..30u8));
    let max_age =
        maybe(rng, 0.4, |rng| rng.random_range(10..70u8)).map(|max| max.max(min_age.unwrap_or(0)));
    Band {
        min_age,
        max_age,
        gender: maybe(rng, 0.5, |rng| Gender::VARIANTS[rng.random_range(0..3)]),
        victim_status: maybe(rng, 0.5, |rng| {
            VictimStatus::VARIANTS[rng.random_range(0..3)]
        }),
        languages: maybe(rng, 0.3, |rng| subset(rng, &LANGUAGES)),
        documents: maybe(rng, 0.3, |rng| {
            DocumentType::VARIANTS[..4]
                .iter()
                .copied()
                .filter(|_| rng.random_bool(0.5))
                .collect()
        }),
    }
}

fn band_query(band: &Band) -> String {
    let mut query = String::new();
    let mut add = |key: &str, value: String| query.push_str(&format!("&{key}={value}"));
    if let Some(age) = band.min_age {
        add("min_age", age.to_string());
    }
    if let Some(age) = band.max_age {
        add("max_age", age.to_string());
    }
    if let Some(gender) = band.gender {
        add("gender", gender.as_str().to_owned());
    }
    if let Some(status) = band.victim_status {
        add("victim_status", status.as_str().to_owned());
    }
    if let Some(languages) = &band.languages {
        add("languages", languages.join(","));
    }
    if let Some(documents) = &band.documents {
        add(
            "documents",
            documents
                .iter()
                .map(|d| d.as_str())
                .collect::<Vec<_>>()
                .join(","),
        );
    }
    query
}

/// Whether the service admits every person of the band: every age of an
/// age band (one end alone bounds that side), the other rules as for one
/// person; nationality and residence are no part of a band.
fn admits_band(s: &Service, b: &Band) -> bool {
    let ages_ok = match (b.min_age, b.max_age) {
        (None, None) => true,
        (min, max) => {
            let (min, max) = (min.unwrap_or(0), max.unwrap_or(130));
            s.min_age.is_none_or(|m| m <= min) && s.max_age.is_none_or(|m| m >= max)
        }
    };
    let person = Person {
        gender: b.gender,
        victim_status: b.victim_status,
        languages: b.languages.clone(),
        documents: b.documents.clone(),
        ..Person::default()
    };
    ages_ok && admits(s, &person)
}

const HORIZON_M: f64 = 100_000.0;

/// One ward's expected reach: the nearest eligible in-person distance
/// (within the horizon) and whether a remote service covers it.
fn coverage_oracle(
    services: &[Service],
    ward: &WardShape,
    need: Category,
    band: &Band,
    public: bool,
) -> (Option<f64>, bool) {
    let here = geo::Point::new(ward.point.1, ward.point.0);
    let mut nearest: Option<f64> = None;
    let mut remote = false;
    for s in services {
        let eligible = s.status == "active"
            && s.accepting
            && s.categories.contains(&need)
            && admits_band(s, band)
            && covers(s, ward.point.0, ward.point.1, Some(ward));
        if !eligible {
            continue;
        }
        if s.in_person {
            let points = if public { &s.public_points } else { &s.points };
            for (lat, lon) in points {
                let d = Geodesic.distance(here, geo::Point::new(*lon, *lat));
                if d <= HORIZON_M && nearest.is_none_or(|n| d < n) {
                    nearest = Some(d);
                }
            }
        }
        remote |= s.remote;
    }
    (nearest, remote)
}

fn band_of(distance: Option<f64>) -> &'static str {
    match distance {
        Some(d) if d <= 5_000.0 => "le_5km",
        Some(d) if d <= 15_000.0 => "le_15km",
        Some(d) if d <= 30_000.0 => "le_30km",
        Some(d) if d <= 60_000.0 => "le_60km",
        _ => "gt_60km",
    }
}

/// Whether a distance is too close to a threshold for the sphere/spheroid
/// and rounding differences to be judged.
fn near_edge(distance: Option<f64>, edges: &[f64]) -> bool {
    distance.is_some_and(|d| edges.iter().any(|e| (d - e).abs() < 1.0))
}

#[tokio::test]
async fn the_coverage_review_agrees_with_a_brute_force_oracle() {
    let seed = std::env::var("KETNOI_ORACLE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED)
        .wrapping_add(1_000);
    let boundaries = Boundaries::load().await;
    let (mut compared, mut served, mut unserved, mut remote_only) = (0, 0, 0, 0);
    for number in 0..4u64 {
        let mut rng = ChaCha8Rng::seed_from_u64(seed.wrapping_add(number));
        let wards = random_wards(&mut rng, &boundaries);
        let mut directory = random_directory(&mut rng, &wards);
        // Remote services that serve everywhere would serve every ward:
        // give each an area, so that some wards have nothing at all.
        for s in directory.services.iter_mut() {
            if s.remote && s.areas.is_empty() {
                s.areas = vec![Area::Province(
                    PROVINCES[rng.random_range(0..PROVINCES.len())],
                )];
            }
        }
        let db = TestDb::bare().await;
        insert(&db, &boundaries, &directory).await;
        let services = &directory.services;
        let app = TestApp::spawn_on(db).await;
        let admin = app.key("admin", None).await;
        for _ in 0..3 {
            let need = Category::VARIANTS[rng.random_range(0..8)];
            let band = random_band(&mut rng);
            let radius_km = [5u32, 15, 30, 60][rng.random_range(0..4)];
            let provinces: Vec<&str> = subset(&mut rng, &PROVINCES[..6]);
            let path = format!(
                "/v1/coverage?category={}&province={}&radius_km={radius_km}{}",
                need.as_str(),
                provinces.join(","),
                band_query(&band)
            );
            let case = format!("seed {seed}, directory {number}: {path}");
            let exact = app
                .send(Some(&admin), reqwest::Method::GET, &path, None, None)
                .await;
            assert_eq!(exact.status, 200, "{case}: {}", exact.body);
            assert_eq!(exact.body["distances"], "exact");
            let (_, _, public) = app.get_json(&path).await;
            assert_eq!(public["distances"], "banded", "{case}");
            let listed: Vec<&WardShape> = boundaries
                .wards
                .iter()
                .filter(|w| provinces.contains(&w.province.as_str()))
                .collect();
            let got = exact.body["wards"].as_array().unwrap();
            let got_public = public["wards"].as_array().unwrap();
            assert_eq!(got.len(), listed.len(), "{case}");
            let radius = f64::from(radius_km) * 1000.0;
            let (mut no_in_person, mut no_service) = (0, 0);
            for ((ward, result), seen) in listed.iter().zip(got).zip(got_public) {
                assert_eq!(result["code"], ward.code.as_str(), "{case}");
                let at = format!("{case}, ward {}", ward.code);
                let reach = &result["categories"][0];
                let (nearest, remote) = coverage_oracle(services, ward, need, &band, false);
                assert_eq!(reach["remote"], remote, "{at}: remote");
                let edges = [radius, HORIZON_M, 5e3, 15e3, 30e3, 60e3];
                if !near_edge(nearest, &edges) {
                    match (nearest, reach["nearest_in_person_m"].as_f64()) {
                        (Some(expected), Some(reported)) => assert!(
                            (expected - reported).abs() <= 0.5,
                            "{at}: nearest {reported} m, oracle {expected} m"
                        ),
                        (None, None) => {}
                        (expected, _) => panic!("{at}: oracle {expected:?}, got {reach}"),
                    }
                    assert_eq!(reach["nearest_in_person_band"], band_of(nearest), "{at}");
                    let within = nearest.is_some_and(|d| d <= radius);
                    assert_eq!(reach["in_person_within_radius"], within, "{at}");
                    assert_eq!(reach["served"], within || remote, "{at}");
                    no_in_person += usize::from(!within);
                    no_service += usize::from(!within && !remote);
                    served += usize::from(within);
                    unserved += usize::from(!within && !remote);
                    remote_only += usize::from(!within && remote);
                    compared += 1;
                } else {
                    no_in_person += usize::from(reach["in_person_within_radius"] == false);
                    no_service += usize::from(reach["served"] == false);
                }
                // The public: the same from the public points, in bands.
                let public_reach = &seen["categories"][0];
                assert!(public_reach.get("nearest_in_person_m").is_none(), "{at}");
                let (public_nearest, _) = coverage_oracle(services, ward, need, &band, true);
                if !near_edge(public_nearest, &edges) {
                    assert_eq!(
                        public_reach["nearest_in_person_band"],
                        band_of(public_nearest),
                        "{at}: public band"
                    );
                }
            }
            let total = &exact.body["total"][0];
            assert_eq!(total["all"]["wards"], listed.len(), "{case}");
            assert_eq!(
                total["no_in_person_within_radius"]["wards"], no_in_person,
                "{case}"
            );
            assert_eq!(total["no_service"]["wards"], no_service, "{case}");
        }
    }
    // Every outcome must be exercised, or the test proves little.
    assert!(compared > 1000, "only {compared} wards compared");
    assert!(served > 50, "only {served} wards served in person");
    assert!(unserved > 50, "only {unserved} wards with nothing");
    assert!(
        remote_only > 50,
        "only {remote_only} wards served only remotely"
    );
}
