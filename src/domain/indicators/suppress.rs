//! Complementary suppression: the relations between the cube's counts and
//! the hiding of cells until none can be worked out from them (the rule is
//! described in the parent module).

use super::*;

/// The additive relations between combinations (each holds for every
/// count): a parent combination and its children, in key order.
struct Relations {
    across: Vec<(usize, Vec<usize>)>,
    /// The relations each combination is the parent or a child in.
    member_of: Vec<Vec<usize>>,
}

fn relations(keys: &[Key]) -> Relations {
    let index: HashMap<&Key, usize> = keys.iter().enumerate().map(|(i, k)| (k, i)).collect();
    let mut by_parent: HashMap<(usize, usize), usize> = HashMap::new();
    let mut rels = Relations {
        across: Vec::new(),
        member_of: vec![Vec::new(); keys.len()],
    };
    for (child, (period, place, need)) in keys.iter().enumerate() {
        let parents = [
            place.parent().map(|p| (*period, p, *need)),
            period.parent().map(|p| (p, place.clone(), *need)),
            need.map(|_| (*period, place.clone(), None)),
        ];
        for (family, parent) in parents.iter().enumerate() {
            let Some(&parent) = parent.as_ref().and_then(|k| index.get(k)) else {
                continue;
            };
            let id = match by_parent.get(&(parent, family)) {
                Some(&id) => id,
                None => {
                    let id = rels.across.len();
                    rels.across.push((parent, Vec::new()));
                    rels.member_of[parent].push(id);
                    by_parent.insert((parent, family), id);
                    id
                }
            };
            rels.across[id].1.push(child);
            rels.member_of[child].push(id);
        }
    }
    rels
}

/// A relation to check: `Across(relation, measure)` or
/// `Within(combination, WITHIN index)`.
#[derive(Debug, Clone, Copy)]
enum Check {
    Across(usize, usize),
    Within(usize, usize),
}

/// Which counts are hidden: one bit per measure for each combination.
pub(super) fn suppress(keys: &[Key], counts: &[Counts], complementary: bool) -> Vec<u32> {
    let mut hidden: Vec<u32> = counts
        .iter()
        .map(|c| {
            (0..MEASURES)
                .filter(|&m| (1..SMALL).contains(&c[m]))
                .fold(0, |bits, m| bits | 1 << m)
        })
        .collect();
    if !complementary {
        return hidden;
    }
    let rels = relations(keys);
    let mut queue: VecDeque<Check> = (0..rels.across.len())
        .flat_map(|r| (0..MEASURES).map(move |m| Check::Across(r, m)))
        .chain((0..keys.len()).flat_map(|i| (0..WITHIN.len()).map(move |w| Check::Within(i, w))))
        .collect();
    let mut children: Vec<(usize, usize)> = Vec::new();
    while let Some(check) = queue.pop_front() {
        children.clear();
        let parent = match check {
            Check::Across(r, m) => {
                let (parent, members) = &rels.across[r];
                children.extend(members.iter().map(|&c| (c, m)));
                (*parent, m)
            }
            Check::Within(i, w) => {
                let (total, parts) = &WITHIN[w];
                children.extend(parts.clone().map(|m| (i, m)));
                (i, *total)
            }
        };
        let state = |(i, m): (usize, usize)| (counts[i][m], hidden[i] >> m & 1 == 1);
        if !pinned(state(parent), children.iter().map(|&c| state(c))) {
            continue;
        }
        let shown = |cell: &(usize, usize)| matches!(state(*cell), (n, false) if n > 0);
        let Some((i, m)) = children
            .iter()
            .copied()
            .filter(shown)
            .min_by_key(|&(i, m)| counts[i][m])
            .or(Some(parent).filter(shown))
        else {
            continue;
        };
        hidden[i] |= 1 << m;
        queue.extend(rels.member_of[i].iter().map(|&r| Check::Across(r, m)));
        for (w, (total, parts)) in WITHIN.iter().enumerate() {
            if m == *total || parts.contains(&m) {
                queue.push_back(Check::Within(i, w));
            }
        }
    }
    hidden
}

/// Whether the published cells of `parent = Σ children` pin a hidden one
/// down, each given as (count, hidden). An attacker knows the sum of the
/// hidden cells, that each is at least 1 (zeros are shown) and perhaps, if
/// "<5" is taken at its word, at most 4.
pub(super) fn pinned(parent: (u64, bool), children: impl Iterator<Item = (u64, bool)>) -> bool {
    // Σ hidden children − hidden parent = residual; signs of hidden terms.
    let mut residual = if parent.1 { 0 } else { i128::from(parent.0) };
    let mut signs: Vec<i128> = Vec::new();
    if parent.1 {
        signs.push(-1);
    }
    for (count, hidden) in children {
        if hidden {
            signs.push(1);
        } else {
            residual -= i128::from(count);
        }
    }
    if signs.is_empty() {
        return false;
    }
    [SMALL as i128 - 1, 1 << 64].into_iter().any(|most| {
        let span = |sign: i128| if sign > 0 { (1, most) } else { (-most, -1) };
        let (low, high) = signs.iter().fold((0, 0), |(l, h), &s| {
            let (a, b) = span(s);
            (l + a, h + b)
        });
        signs.iter().any(|&sign| {
            let (a, b) = span(sign);
            let (rest_low, rest_high) = (low - a, high - b);
            let (from, to) = if sign > 0 {
                (residual - rest_high, residual - rest_low)
            } else {
                (rest_low - residual, rest_high - residual)
            };
            from.max(1) == to.min(most)
        })
    })
}
