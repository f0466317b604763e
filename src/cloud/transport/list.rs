//! Walking a list to its end, in the wire's pagination style, with the same guarantees for
//! every provider: each item once (items that move between pages while walking are kept once),
//! a walk that stops advancing is an error rather than a silently partial listing, and no walk
//! costs more than [`MAX_PAGES`] requests.

use std::collections::HashSet;

use serde::de::DeserializeOwned;

use super::{Answer, Pagination, Request, Transport, Wire};
use crate::cloud::CloudError;

/// A list walk stops after this many pages even if the server keeps answering full pages.
pub const MAX_PAGES: u64 = 10_000;

/// Where a page starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageAt {
    /// Page/limit style, numbered from 1.
    Number(u64),
    /// Cursor style: `None` for the first page.
    Cursor(Option<String>),
}

impl<W: Wire> Transport<W> {
    /// One page of the list `request` asks for, at most `limit` items (clamped to what the wire
    /// allows). With [`Pagination::None`] the whole list.
    pub async fn page<T: DeserializeOwned>(
        &self,
        request: Request,
        at: &PageAt,
        limit: u64,
    ) -> Result<Answer<Vec<T>>, CloudError> {
        let request = paged(self.wire().pagination(), request, at, limit);
        self.execute::<Vec<T>>(request).await
    }

    /// Every item of the list `request` asks for, walking pages at the largest size the wire
    /// allows; `id` tells items apart (see the module docs).
    pub async fn list_all<T: DeserializeOwned>(
        &self,
        request: Request,
        id: impl Fn(&T) -> String,
    ) -> Result<Vec<T>, CloudError> {
        let operation = request.operation;
        let protocol = |message: String| CloudError::Protocol {
            operation: operation.to_string(),
            status: 200,
            message,
        };
        let pagination = self.wire().pagination();
        let max = match pagination {
            Pagination::None => return self.data(request).await,
            Pagination::PageLimit { max_limit, .. } | Pagination::Cursor { max_limit, .. } => {
                max_limit
            }
        };
        let mut seen = HashSet::new();
        let mut all = Vec::new();
        let mut at = match pagination {
            Pagination::Cursor { .. } => PageAt::Cursor(None),
            _ => PageAt::Number(1),
        };
        let mut cursors = HashSet::new();
        for n in 1..=MAX_PAGES {
            let mut r = request.clone();
            // A walk already paid for is better finished than given up and started over.
            r.may_defer &= n == 1;
            let answer = self.page::<T>(r, &at, max).await?;
            let full = answer.data.len() as u64 >= max;
            let before = all.len();
            for item in answer.data {
                if seen.insert(id(&item)) {
                    all.push(item);
                }
            }
            let info = answer.page.unwrap_or_default();
            at = match at {
                PageAt::Number(page) => {
                    let Some(total) = info.total else {
                        if !full {
                            // A short answer without paging facts is the whole list.
                            return Ok(all);
                        }
                        return Err(protocol(format!(
                            "page {page} is full but says no total: cannot tell whether the list goes on"
                        )));
                    };
                    if !full || all.len() as u64 >= total {
                        return Ok(all);
                    }
                    if all.len() == before {
                        return Err(protocol(format!(
                            "page {page} repeats items already listed (the total says {total}, {} seen): the listing does not advance",
                            all.len()
                        )));
                    }
                    PageAt::Number(page + 1)
                }
                PageAt::Cursor(_) => {
                    let more = info.has_more.unwrap_or(info.next_cursor.is_some());
                    if !more {
                        return Ok(all);
                    }
                    if full && all.len() == before {
                        return Err(protocol(format!(
                            "page {n} repeats items already listed: the listing does not advance"
                        )));
                    }
                    let Some(next) = info.next_cursor.filter(|c| !c.is_empty()) else {
                        return Err(protocol(
                            "the answer says has_more but gives no next_cursor".into(),
                        ));
                    };
                    if !cursors.insert(next.clone()) {
                        return Err(protocol(format!(
                            "the cursor of page {} was given before: the listing does not advance",
                            n + 1
                        )));
                    }
                    PageAt::Cursor(Some(next))
                }
            };
        }
        Err(protocol(format!(
            "the list did not end after {MAX_PAGES} pages"
        )))
    }
}

/// `request` asking for the page at `at`, at most `limit` items.
fn paged(pagination: Pagination, request: Request, at: &PageAt, limit: u64) -> Request {
    match (pagination, at) {
        (
            Pagination::PageLimit {
                page,
                limit: name,
                max_limit,
            },
            PageAt::Number(n),
        ) => request
            .query(page, (*n).max(1))
            .query(name, limit.clamp(1, max_limit)),
        (
            Pagination::Cursor {
                cursor,
                limit: name,
                max_limit,
            },
            PageAt::Cursor(c),
        ) => {
            let request = request.query(name, limit.clamp(1, max_limit));
            match c {
                Some(c) => request.query(cursor, c),
                None => request,
            }
        }
        _ => request,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::throttle::Priority;

    const PAGES: Pagination = Pagination::PageLimit {
        page: "page",
        limit: "limit",
        max_limit: 100,
    };
    const CURSOR: Pagination = Pagination::Cursor {
        cursor: "cursor",
        limit: "limit",
        max_limit: 100,
    };

    fn query(r: &Request) -> Vec<(&'static str, String)> {
        r.query.clone()
    }

    #[test]
    fn page_requests_carry_the_wires_parameters_clamped_to_its_maximum() {
        let r = || Request::get("things.list", &["things"], Priority::Routine);
        assert_eq!(
            query(&paged(PAGES, r(), &PageAt::Number(0), 500)),
            vec![("page", "1".to_string()), ("limit", "100".to_string())]
        );
        assert_eq!(
            query(&paged(CURSOR, r(), &PageAt::Cursor(None), 0)),
            vec![("limit", "1".to_string())]
        );
        assert_eq!(
            query(&paged(CURSOR, r(), &PageAt::Cursor(Some("c2".into())), 50)),
            vec![("limit", "50".to_string()), ("cursor", "c2".to_string())]
        );
        assert!(query(&paged(Pagination::None, r(), &PageAt::Number(3), 50)).is_empty());
    }
}
