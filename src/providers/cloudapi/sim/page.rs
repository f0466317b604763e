//! Cursor pagination as `cloudapi` does it (001: `?limit=` up to 100 and `?cursor=`, answers
//! `next_cursor` and `has_more`), and the whole list `cloudplatform` answers.
//!
//! A cursor names the position after the last item of a page by that item's sequence number
//! (creation order), not by its index, so a page walk neither skips nor repeats an item when
//! others are created or deleted meanwhile. The cursor is opaque to clients (`cur_<hex>`).

use std::collections::HashMap;

use super::reply::ApiError;
use super::wire::Dialect;

/// The page size when `?limit=` is absent (*assumed*: 001's example asks for 20).
pub const DEFAULT_LIMIT: usize = 20;
/// The largest `?limit=` (001).
pub const MAX_LIMIT: usize = 100;

/// One page of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Where the next page starts; `None` on the last page.
    pub next_cursor: Option<String>,
    pub has_more: bool,
}

/// Which page a request asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PageRequest {
    pub limit: usize,
    /// The sequence number of the last item already seen.
    pub after: Option<u64>,
}

fn encode(seq: u64) -> String {
    format!("cur_{seq:x}")
}

fn decode(cursor: &str) -> Option<u64> {
    u64::from_str_radix(cursor.strip_prefix("cur_")?, 16).ok()
}

impl PageRequest {
    /// `?limit=` (1..=100, default 20) and `?cursor=` in `cloudapi`; `None` in `cloudplatform`,
    /// which has no paging (*assumed*: the whole list, the parameters ignored).
    pub fn from_query(
        dialect: Dialect,
        q: &HashMap<String, String>,
    ) -> Result<Option<Self>, ApiError> {
        if dialect == Dialect::Cloudplatform {
            return Ok(None);
        }
        let limit = match q.get("limit").map(|s| s.trim()).filter(|s| !s.is_empty()) {
            None => DEFAULT_LIMIT,
            Some(s) => match s.parse::<usize>() {
                Ok(n) if (1..=MAX_LIMIT).contains(&n) => n,
                _ => {
                    return Err(ApiError::invalid(
                        "limit",
                        format!("limit must be a whole number from 1 to {MAX_LIMIT}; got {s:?}"),
                    ));
                }
            },
        };
        let after = match q.get("cursor").map(|s| s.trim()).filter(|s| !s.is_empty()) {
            None => None,
            Some(c) => Some(decode(c).ok_or_else(|| {
                ApiError::invalid(
                    "cursor",
                    format!("cursor {c:?} is not one this API gave; pass next_cursor as it came"),
                )
            })?),
        };
        Ok(Some(PageRequest { limit, after }))
    }
}

/// Pages `items` (in list order, each with its sequence number). `newest_first`: the list is in
/// descending sequence order. `None`: the whole list, no paging.
pub fn paginate<T>(items: Vec<(u64, T)>, newest_first: bool, req: Option<PageRequest>) -> Page<T> {
    let Some(req) = req else {
        return Page {
            items: items.into_iter().map(|(_, t)| t).collect(),
            next_cursor: None,
            has_more: false,
        };
    };
    let mut rest = items
        .into_iter()
        .filter(|(seq, _)| match req.after {
            None => true,
            Some(a) if newest_first => *seq < a,
            Some(a) => *seq > a,
        })
        .peekable();
    let mut page = Vec::with_capacity(req.limit);
    let mut last = None;
    while page.len() < req.limit {
        match rest.next() {
            Some((seq, t)) => {
                last = Some(seq);
                page.push(t);
            }
            None => break,
        }
    }
    let has_more = rest.peek().is_some();
    Page {
        items: page,
        next_cursor: if has_more { last.map(encode) } else { None },
        has_more,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn a_walk_of_pages_sees_every_item_once_even_when_items_vanish_between_pages() {
        let all: Vec<(u64, u64)> = (1..=7).map(|i| (i, i)).collect();
        let req = |after| Some(PageRequest { limit: 3, after });
        let p1 = paginate(all.clone(), false, req(None));
        assert_eq!((p1.items.clone(), p1.has_more), (vec![1, 2, 3], true));
        // Item 4 is deleted before the next page is asked for.
        let without_4: Vec<_> = all.iter().copied().filter(|(s, _)| *s != 4).collect();
        let after = decode(p1.next_cursor.as_deref().unwrap());
        let p2 = paginate(without_4.clone(), false, req(after));
        assert_eq!(p2.items, vec![5, 6, 7]);
        assert_eq!((p2.has_more, p2.next_cursor), (false, None));
    }

    #[test]
    fn newest_first_lists_page_downwards() {
        let all: Vec<(u64, u64)> = (1..=5).rev().map(|i| (i, i)).collect();
        let p1 = paginate(
            all.clone(),
            true,
            Some(PageRequest {
                limit: 2,
                after: None,
            }),
        );
        assert_eq!(p1.items, vec![5, 4]);
        let after = decode(p1.next_cursor.as_deref().unwrap());
        let p2 = paginate(all, true, Some(PageRequest { limit: 2, after }));
        assert_eq!((p2.items, p2.has_more), (vec![3, 2], true));
    }

    #[test]
    fn limit_is_one_to_a_hundred_and_a_cursor_must_be_ours() {
        let d = Dialect::Cloudapi;
        assert_eq!(
            PageRequest::from_query(d, &q(&[])).unwrap(),
            Some(PageRequest {
                limit: 20,
                after: None
            })
        );
        assert_eq!(
            PageRequest::from_query(d, &q(&[("limit", "100"), ("cursor", "cur_a")])).unwrap(),
            Some(PageRequest {
                limit: 100,
                after: Some(10)
            })
        );
        for bad in ["0", "101", "x", "-1"] {
            assert!(
                PageRequest::from_query(d, &q(&[("limit", bad)])).is_err(),
                "{bad}"
            );
        }
        assert!(PageRequest::from_query(d, &q(&[("cursor", "eyJpZCI6")])).is_err());
        assert_eq!(
            PageRequest::from_query(Dialect::Cloudplatform, &q(&[("limit", "0")])).unwrap(),
            None,
            "cloudplatform has no paging"
        );
    }

    #[test]
    fn no_page_request_is_the_whole_list() {
        let p = paginate((1..=150).map(|i| (i, i)).collect(), false, None);
        assert_eq!(
            (p.items.len(), p.has_more, p.next_cursor),
            (150, false, None)
        );
    }
}
