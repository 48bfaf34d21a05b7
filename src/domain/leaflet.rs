//! A commune's printed leaflet (tờ rơi): what it says, in Vietnamese or
//! English, without HTTP, SQL or typesetting.
//!
//! A leaflet is for anyone in the commune, so it is the matcher's answer
//! for a person of whom nothing is known, from the ward's reference point,
//! as the public sees it: a confidential location is printed with its
//! service's name and a number to call, never an address, a ward, a point
//! or a distance. [`Sheet`] is everything printed; the workflow fills it,
//! the typesetter lays it out, and its hash is the leaflet's `ETag`.

use chrono::NaiveDate;
use serde::Serialize;

use super::eligibility::Profile;
use super::geo::RadiusM;
use super::schedule::WeeklyHours;
use super::service::{Eligibility, Gender, Weekday};
use super::vocabulary;

vocabulary!(
    /// The language a leaflet is printed in.
    Lang, "language" {
        Vi,
        En,
    }
);

/// Services printed per category at most; fewer when the page would
/// otherwise overflow.
pub const MOST_PER_CATEGORY: usize = 3;

/// How far in-person services are looked for from the commune's reference
/// point (the matcher's default); beyond it, services that reach the
/// commune remotely are printed.
pub const RADIUS: RadiusM = RadiusM::DEFAULT;

/// [`RADIUS`] in kilometres, as printed.
pub const RADIUS_KM: u32 = RADIUS.metres() / 1000;

/// What is known of the reader: nothing, so every rule is unverified and
/// no service is left out for who the person is (each says who it is for).
pub fn anyone() -> Profile {
    Profile::default()
}

/// A national hotline, printed first and large.
#[derive(Debug, Clone, Copy)]
pub struct Hotline {
    pub number: &'static str,
    vi: &'static str,
    en: &'static str,
}

/// The national hotlines, free and day and night.
pub const HOTLINES: [Hotline; 3] = [
    Hotline {
        number: "111",
        vi: "Bảo vệ trẻ em, phòng chống mua bán người",
        en: "Child protection and human trafficking",
    },
    Hotline {
        number: "113",
        vi: "Công an",
        en: "Police",
    },
    Hotline {
        number: "115",
        vi: "Cấp cứu y tế",
        en: "Medical emergency",
    },
];

impl Hotline {
    pub fn label(&self, lang: Lang) -> &'static str {
        match lang {
            Lang::Vi => self.vi,
            Lang::En => self.en,
        }
    }
}

/// Everything a leaflet prints, in its language. Serialised, it is what the
/// typesetter reads (`src/print/leaflet.typ`) and what the `ETag` hashes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sheet {
    pub lang: Lang,
    pub title: String,
    pub ward: String,
    pub province: String,
    /// When and where from the data was read.
    pub read_line: String,
    /// How recently the printed listings were verified.
    pub verified_line: String,
    /// Set when no service has a location within the radius.
    pub nothing_nearby: Option<String>,
    pub hotlines_title: String,
    pub hotlines: Vec<PrintedHotline>,
    pub confidentiality_line: String,
    pub sections: Vec<Section>,
    /// The address the QR code opens: the map, centred on the commune.
    pub map_url: String,
    pub map_caption: String,
    pub footer: String,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PrintedHotline {
    pub number: String,
    pub label: String,
}

/// One need category: its label and the services printed for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Section {
    pub label: String,
    pub entries: Vec<Entry>,
    /// Said when no service is printed.
    pub empty: String,
}

/// One service, as printed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub name: String,
    pub organization: String,
    /// "12,4 km", "remote (phone, online)"; none for a confidential
    /// location.
    pub reach: Option<String>,
    /// Address (or the safe-place line), phones, hours, who and fees.
    pub lines: Vec<String>,
    /// When the service was last verified (for the sheet's line).
    pub verified: Option<NaiveDate>,
}

impl Sheet {
    /// How many services it prints.
    pub fn entries(&self) -> usize {
        self.sections.iter().map(|s| s.entries.len()).sum()
    }

    /// How many it prints at least: each category's nearest.
    pub fn least_entries(&self) -> usize {
        self.sections
            .iter()
            .filter(|s| !s.entries.is_empty())
            .count()
    }

    /// The same sheet printing `count` services (never fewer than
    /// [`Self::least_entries`]): every category's nearest first, then every
    /// category's second nearest, and so on, in category order. How a
    /// sheet is made to fit one page.
    pub fn keeping(&self, count: usize) -> Self {
        let mut left = count.max(self.least_entries());
        let mut kept = vec![0; self.sections.len()];
        for rank in 0..MOST_PER_CATEGORY {
            for (section, kept) in self.sections.iter().zip(kept.iter_mut()) {
                if left > 0 && section.entries.len() > rank {
                    *kept += 1;
                    left -= 1;
                }
            }
        }
        let mut sheet = self.clone();
        for (section, kept) in sheet.sections.iter_mut().zip(kept) {
            section.entries.truncate(kept);
        }
        sheet.verified_line = sheet.verification();
        sheet
    }

    /// How recently the services printed were verified (see
    /// [`verified_line`]).
    pub fn verification(&self) -> String {
        let dates: Vec<Option<NaiveDate>> = self
            .sections
            .iter()
            .flat_map(|s| s.entries.iter().map(|e| e.verified))
            .collect();
        verified_line(self.lang, &dates)
    }
}

/// The fixed words of a leaflet.
pub struct Words {
    pub title: &'static str,
    pub hotlines_title: &'static str,
    pub confidentiality: &'static str,
    pub map_caption: &'static str,
    pub remote: &'static str,
    pub free: &'static str,
    pub fees: &'static str,
    pub phone: &'static str,
    pub footer: &'static str,
}

pub fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Vi => &Words {
            title: "Nơi hỗ trợ gần bạn",
            hotlines_title: "Đường dây nóng toàn quốc — miễn phí, cả ngày lẫn đêm",
            confidentiality: "Các dịch vụ giữ bí mật thông tin của bạn; nhiều dịch vụ miễn phí. \
                Bạn không phải trả tiền để được giúp đỡ khi gọi 111.",
            map_caption: "Bản đồ dịch vụ quanh xã",
            remote: "từ xa (điện thoại, trực tuyến)",
            free: "Miễn phí",
            fees: "Có thu phí",
            phone: "ĐT",
            footer: "Kết Nối — danh bạ dịch vụ hỗ trợ người bị mua bán trở về.",
        },
        Lang::En => &Words {
            title: "Help near you",
            hotlines_title: "National hotlines — free, day and night",
            confidentiality: "These services keep what you tell them confidential; many are free. \
                Calling 111 costs nothing.",
            map_caption: "Map of services around the commune",
            remote: "remote (phone, online)",
            free: "Free",
            fees: "Fees apply",
            phone: "Tel",
            footer: "Kết Nối — a directory of support for people returning from trafficking.",
        },
    }
}

/// The line a confidential location gets instead of its address.
pub fn safe_place_line(lang: Lang, phone: Option<&str>) -> String {
    match (lang, phone) {
        (Lang::Vi, Some(phone)) => {
            format!("Địa chỉ được giữ kín. Gọi 111 hoặc {phone} để được đưa đến nơi an toàn.")
        }
        (Lang::Vi, None) => "Địa chỉ được giữ kín. Gọi 111 để được đưa đến nơi an toàn.".into(),
        (Lang::En, Some(phone)) => {
            format!("Address kept confidential. Call 111 or {phone} to be taken to a safe place.")
        }
        (Lang::En, None) => {
            "Address kept confidential. Call 111 to be taken to a safe place.".into()
        }
    }
}

/// What is said for a category without a service.
pub fn empty_line(lang: Lang) -> String {
    match lang {
        Lang::Vi => format!("Chưa có dịch vụ trong vòng {RADIUS_KM} km. Hãy gọi 111."),
        Lang::En => format!("No service within {RADIUS_KM} km yet. Call 111."),
    }
}

/// What is said when no service has a location within the radius.
pub fn nothing_nearby_line(lang: Lang) -> String {
    match lang {
        Lang::Vi => format!(
            "Không có dịch vụ nào có địa điểm trong vòng {RADIUS_KM} km quanh xã. \
             Dưới đây là các dịch vụ hỗ trợ từ xa và đường dây nóng toàn quốc."
        ),
        Lang::En => format!(
            "No service has a place within {RADIUS_KM} km of this commune. \
             Below are the services that help remotely, and the national hotlines."
        ),
    }
}

/// A date as the language writes it.
pub fn date(lang: Lang, day: NaiveDate) -> String {
    match lang {
        Lang::Vi => day.format("%d/%m/%Y").to_string(),
        Lang::En => day.format("%-d %B %Y").to_string(),
    }
}

fn month(lang: Lang, day: NaiveDate) -> String {
    match lang {
        Lang::Vi => day.format("%m/%Y").to_string(),
        Lang::En => day.format("%B %Y").to_string(),
    }
}

pub fn read_line(lang: Lang, today: NaiveDate) -> String {
    match lang {
        Lang::Vi => format!("Thông tin lấy từ Kết Nối ngày {}.", date(lang, today)),
        Lang::En => format!("Information read from Kết Nối on {}.", date(lang, today)),
    }
}

/// How recently the printed services were verified: the oldest and the
/// newest verification, and how many were never verified.
pub fn verified_line(lang: Lang, verified: &[Option<NaiveDate>]) -> String {
    let dates: Vec<NaiveDate> = verified.iter().flatten().copied().collect();
    let never = verified.len() - dates.len();
    let (oldest, newest) = (dates.iter().min(), dates.iter().max());
    let same_month = |a: &NaiveDate, b: &NaiveDate| month(lang, *a) == month(lang, *b);
    let mut line = match (lang, oldest, newest) {
        (_, None, _) | (_, _, None) => String::new(),
        (Lang::Vi, Some(a), Some(b)) if same_month(a, b) => {
            format!("Dịch vụ được xác minh vào {}.", month(lang, *a))
        }
        (Lang::Vi, Some(a), Some(b)) => format!(
            "Dịch vụ được xác minh từ {} đến {}.",
            month(lang, *a),
            month(lang, *b)
        ),
        (Lang::En, Some(a), Some(b)) if same_month(a, b) => {
            format!("Services verified in {}.", month(lang, *a))
        }
        (Lang::En, Some(a), Some(b)) => format!(
            "Services verified between {} and {}.",
            month(lang, *a),
            month(lang, *b)
        ),
    };
    if never > 0 {
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&match lang {
            Lang::Vi => format!("{never} dịch vụ chưa được xác minh."),
            Lang::En if never == 1 => "1 service not yet verified.".to_owned(),
            Lang::En => format!("{never} services not yet verified."),
        });
    }
    if verified.is_empty() {
        line = match lang {
            Lang::Vi => "Không có dịch vụ nào được in.".into(),
            Lang::En => "No service is printed.".into(),
        };
    }
    line
}

/// A distance in kilometres, one decimal, with the language's decimal mark.
pub fn distance(lang: Lang, metres: f64) -> String {
    let text = format!("{:.1} km", metres / 1000.0);
    match lang {
        Lang::Vi => text.replace('.', ","),
        Lang::En => text,
    }
}

fn day_name(lang: Lang, day: Weekday) -> &'static str {
    let index = day as usize;
    match lang {
        Lang::Vi => ["T2", "T3", "T4", "T5", "T6", "T7", "CN"][index],
        Lang::En => ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][index],
    }
}

/// Days as runs: "T2–T6, CN", "Mon–Fri, Sun".
fn days_in_words(lang: Lang, days: &[Weekday]) -> String {
    let mut indices: Vec<usize> = days.iter().map(|d| *d as usize).collect();
    indices.sort_unstable();
    indices.dedup();
    let all = <Weekday as strum::VariantArray>::VARIANTS;
    let mut runs: Vec<(usize, usize)> = Vec::new();
    for index in indices {
        match runs.last_mut() {
            Some((_, end)) if *end + 1 == index => *end = index,
            _ => runs.push((index, index)),
        }
    }
    runs.iter()
        .map(|(start, end)| {
            let (a, b) = (day_name(lang, all[*start]), day_name(lang, all[*end]));
            match end - start {
                0 => a.to_owned(),
                1 => format!("{a}, {b}"),
                _ => format!("{a}–{b}"),
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Opening hours in words: "T2–T6 07:30–17:00; T7 07:30–11:30", or `None`
/// when none are listed. Hours valid only before `today` are left out.
pub fn hours_in_words(lang: Lang, hours: &[&WeeklyHours], today: NaiveDate) -> Option<String> {
    let every_day = <Weekday as strum::VariantArray>::VARIANTS.len();
    // Hours of the same days together: "T2–T6 07:30–11:30, 13:30–17:00".
    let mut by_days: Vec<(Vec<Weekday>, Vec<String>)> = Vec::new();
    for h in hours.iter().filter(|h| {
        h.valid_to.is_none_or(|to| to >= today)
            && h.valid_from.is_none_or(|from| from <= today)
            && !h.byday.is_empty()
    }) {
        let mut days = h.byday.clone();
        days.sort_by_key(|d| *d as usize);
        days.dedup();
        let time = match (h.opens_at, h.closes_at) {
            (Some(opens), Some(closes)) => {
                format!("{}–{}", opens.format("%H:%M"), closes.format("%H:%M"))
            }
            (Some(opens), None) => match lang {
                Lang::Vi => format!("từ {}", opens.format("%H:%M")),
                Lang::En => format!("from {}", opens.format("%H:%M")),
            },
            (None, Some(closes)) => match lang {
                Lang::Vi => format!("đến {}", closes.format("%H:%M")),
                Lang::En => format!("until {}", closes.format("%H:%M")),
            },
            (None, None) => match lang {
                Lang::Vi => "cả ngày".to_owned(),
                Lang::En => "all day".to_owned(),
            },
        };
        match by_days.iter_mut().find(|(d, _)| *d == days) {
            Some((_, times)) => times.push(time),
            None => by_days.push((days, vec![time])),
        }
    }
    let parts: Vec<String> = by_days
        .iter()
        .map(|(days, times)| {
            let all_day = match lang {
                Lang::Vi => "cả ngày",
                Lang::En => "all day",
            };
            if days.len() == every_day && times.iter().all(|t| t == all_day) {
                return "24/7".to_owned();
            }
            let days = if days.len() == every_day {
                match lang {
                    Lang::Vi => "Hằng ngày".to_owned(),
                    Lang::En => "Every day".to_owned(),
                }
            } else {
                days_in_words(lang, days)
            };
            format!("{days} {}", times.join(", "))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// Who a service is for, in words, from its age and gender rules: "Dành
/// cho: nữ, từ 18 tuổi". `None` when it takes anyone by those rules.
pub fn who_in_words(lang: Lang, eligibility: &Eligibility) -> Option<String> {
    let mut parts = Vec::new();
    if let Some(genders) = &eligibility.genders
        && !genders.is_empty()
    {
        let names: Vec<&str> = genders
            .iter()
            .map(|g| match (lang, g) {
                (Lang::Vi, Gender::Female) => "nữ",
                (Lang::Vi, Gender::Male) => "nam",
                (Lang::Vi, Gender::Other) => "giới tính khác",
                (Lang::En, Gender::Female) => "women and girls",
                (Lang::En, Gender::Male) => "men and boys",
                (Lang::En, Gender::Other) => "other genders",
            })
            .collect();
        parts.push(names.join(", "));
    }
    match (lang, eligibility.min_age, eligibility.max_age) {
        (_, None, None) => {}
        (Lang::Vi, Some(min), None) => parts.push(format!("từ {min} tuổi")),
        (Lang::Vi, None, Some(max)) => parts.push(format!("đến {max} tuổi")),
        (Lang::Vi, Some(min), Some(max)) => parts.push(format!("từ {min} đến {max} tuổi")),
        (Lang::En, Some(min), None) => parts.push(format!("aged {min} and over")),
        (Lang::En, None, Some(max)) => parts.push(format!("aged {max} and under")),
        (Lang::En, Some(min), Some(max)) => parts.push(format!("aged {min} to {max}")),
    }
    (!parts.is_empty()).then(|| match lang {
        Lang::Vi => format!("Dành cho: {}", parts.join(", ")),
        Lang::En => format!("For: {}", parts.join(", ")),
    })
}

/// Free or not, with the fees described when they are.
pub fn fees_in_words(lang: Lang, is_free: bool, description: Option<&str>) -> String {
    let w = words(lang);
    match (is_free, description) {
        (true, _) => w.free.to_owned(),
        (false, Some(text)) if !text.trim().is_empty() => format!("{}: {}", w.fees, text.trim()),
        (false, _) => w.fees.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::NaiveTime;

    fn day(text: &str) -> NaiveDate {
        NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
    }

    fn hours(days: &[Weekday], opens: Option<&str>, closes: Option<&str>) -> WeeklyHours {
        let time = |t: Option<&str>| t.map(|t| NaiveTime::parse_from_str(t, "%H:%M").unwrap());
        WeeklyHours {
            byday: days.to_vec(),
            opens_at: time(opens),
            closes_at: time(closes),
            valid_from: None,
            valid_to: None,
        }
    }

    #[test]
    fn opening_hours_read_as_words_in_both_languages() {
        use Weekday::*;
        let office = hours(&[Mo, Tu, We, Th, Fr], Some("07:30"), Some("17:00"));
        let saturday = hours(&[Sa], Some("07:30"), Some("11:30"));
        let afternoon = hours(&[Fr, Mo, Tu, We, Th], Some("13:30"), Some("17:00"));
        let today = day("2026-12-05");
        assert_eq!(
            hours_in_words(Lang::Vi, &[&office, &saturday, &afternoon], today).as_deref(),
            Some("T2–T6 07:30–17:00, 13:30–17:00; T7 07:30–11:30")
        );
        assert_eq!(
            hours_in_words(Lang::Vi, &[&office, &saturday], today).as_deref(),
            Some("T2–T6 07:30–17:00; T7 07:30–11:30")
        );
        assert_eq!(
            hours_in_words(Lang::En, &[&office, &saturday], today).as_deref(),
            Some("Mon–Fri 07:30–17:00; Sat 07:30–11:30")
        );
        let always = hours(&[Mo, Tu, We, Th, Fr, Sa, Su], None, None);
        assert_eq!(
            hours_in_words(Lang::Vi, &[&always], today).as_deref(),
            Some("24/7")
        );
        let odd = hours(&[Mo, We, Th, Su], Some("08:00"), Some("12:00"));
        assert_eq!(
            hours_in_words(Lang::En, &[&odd], today).as_deref(),
            Some("Mon, Wed, Thu, Sun 08:00–12:00")
        );
        let later = WeeklyHours {
            valid_from: Some(day("2027-01-01")),
            ..saturday.clone()
        };
        assert_eq!(
            hours_in_words(Lang::En, &[&office, &later], today).as_deref(),
            Some("Mon–Fri 07:30–17:00")
        );
        let expired = WeeklyHours {
            valid_to: Some(day("2026-01-01")),
            ..office.clone()
        };
        assert_eq!(hours_in_words(Lang::En, &[&expired], today), None);
        assert_eq!(hours_in_words(Lang::En, &[], today), None);
    }

    #[test]
    fn verification_is_summed_up_by_month() {
        let (a, b) = (day("2025-03-10"), day("2026-11-02"));
        assert_eq!(
            verified_line(Lang::Vi, &[Some(b), None, Some(a)]),
            "Dịch vụ được xác minh từ 03/2025 đến 11/2026. 1 dịch vụ chưa được xác minh."
        );
        assert_eq!(
            verified_line(Lang::En, &[Some(a), Some(day("2025-03-28"))]),
            "Services verified in March 2025."
        );
        assert_eq!(
            verified_line(Lang::En, &[None, None]),
            "2 services not yet verified."
        );
        assert_eq!(verified_line(Lang::En, &[]), "No service is printed.");
    }

    #[test]
    fn who_distances_and_fees_in_words() {
        let rules = Eligibility {
            genders: Some(vec![Gender::Female]),
            min_age: Some(18),
            ..Eligibility::default()
        };
        assert_eq!(
            who_in_words(Lang::Vi, &rules).as_deref(),
            Some("Dành cho: nữ, từ 18 tuổi")
        );
        assert_eq!(
            who_in_words(Lang::En, &rules).as_deref(),
            Some("For: women and girls, aged 18 and over")
        );
        assert_eq!(who_in_words(Lang::En, &Eligibility::default()), None);
        assert_eq!(distance(Lang::Vi, 12_449.0), "12,4 km");
        assert_eq!(distance(Lang::En, 12_449.0), "12.4 km");
        assert_eq!(fees_in_words(Lang::Vi, true, Some("x")), "Miễn phí");
        assert_eq!(
            fees_in_words(Lang::En, false, Some(" 50,000 VND ")),
            "Fees apply: 50,000 VND"
        );
        assert_eq!(date(Lang::En, day("2026-12-05")), "5 December 2026");
        assert_eq!(date(Lang::Vi, day("2026-12-05")), "05/12/2026");
    }

    #[test]
    fn a_sheet_keeps_every_categorys_nearest_first() {
        let entry = |name: &str| Entry {
            name: name.into(),
            organization: String::new(),
            reach: None,
            lines: vec![],
            verified: None,
        };
        let section = |names: &[&str]| Section {
            label: String::new(),
            entries: names.iter().map(|n| entry(n)).collect(),
            empty: String::new(),
        };
        let sheet = Sheet {
            lang: Lang::Vi,
            title: String::new(),
            ward: String::new(),
            province: String::new(),
            read_line: String::new(),
            verified_line: String::new(),
            nothing_nearby: None,
            hotlines_title: String::new(),
            hotlines: vec![],
            confidentiality_line: String::new(),
            sections: vec![
                section(&["a1", "a2", "a3"]),
                section(&[]),
                section(&["c1", "c2"]),
            ],
            map_url: String::new(),
            map_caption: String::new(),
            footer: String::new(),
        };
        let names = |sheet: &Sheet| -> Vec<Vec<String>> {
            sheet
                .sections
                .iter()
                .map(|s| s.entries.iter().map(|e| e.name.clone()).collect())
                .collect()
        };
        assert_eq!((sheet.entries(), sheet.least_entries()), (5, 2));
        assert_eq!(names(&sheet.keeping(0)), [vec!["a1"], vec![], vec!["c1"]]);
        assert_eq!(
            names(&sheet.keeping(3)),
            [vec!["a1", "a2"], vec![], vec!["c1"]]
        );
        assert_eq!(
            names(&sheet.keeping(4)),
            [vec!["a1", "a2"], vec![], vec!["c1", "c2"]]
        );
        assert_eq!(sheet.keeping(9).sections, sheet.sections);
        // The line on verification speaks of what is printed only.
        assert_eq!(
            sheet.keeping(0).verified_line,
            "2 dịch vụ chưa được xác minh."
        );
    }
}
