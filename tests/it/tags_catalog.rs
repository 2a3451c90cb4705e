//! Content discovery (end-8a, end-8b) and `/v2/_catalog`: sorted lists, `n`,
//! exclusive `last`, RFC 5988 `Link: <...>; rel="next"` while more remain,
//! `n=0` gives an empty list and no Link, unknown repository → NAME_UNKNOWN.
//! Pagination is checked by tables (query → page, Link), as distribution's
//! `TestTagsAPI` does.

use crate::harness::*;
use serde_json::Value;

/// Pushes one image and points every tag in `tags` at its manifest.
fn tag_all(reg: &TestRegistry, repo: &str, tags: &[&str]) {
    let img = reg.sample_image(repo, tags[0]);
    for t in &tags[1..] {
        reg.push_manifest(repo, t, OCI_MANIFEST, &img.manifest);
    }
}

fn strings(v: &Value, key: &str, what: &str) -> Vec<String> {
    v[key]
        .as_array()
        .unwrap_or_else(|| panic!("{what}: {key} must be an array: {v}"))
        .iter()
        .map(|t| t.as_str().expect("string").to_string())
        .collect()
}

fn tags(reg: &TestRegistry, url: &str) -> (Resp, Vec<String>) {
    let r = reg.get(url);
    r.expect_status(200);
    let v = r.json();
    let list = strings(&v, "tags", &r.what);
    (r, list)
}

fn sorted(v: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = v.iter().map(|s| s.to_string()).collect();
    v.sort();
    v
}

#[test]
fn tags_list_is_sorted_and_names_the_repository() {
    let reg = TestRegistry::start();
    let repo = reg.repo("tags/sorted");
    let all = [
        "v2", "latest", "1.0", "a", "v10", "1.0.1", "b-1", "b_1", "b.1", "0",
    ];
    tag_all(&reg, &repo, &all);
    let (r, list) = tags(&reg, &format!("/v2/{repo}/tags/list"));
    assert_eq!(r.json()["name"], Value::String(repo.clone()));
    assert_eq!(list, sorted(&all));
    assert!(
        r.header("link").is_none(),
        "no Link when everything was returned"
    );
}

#[test]
fn mixed_case_tags_are_in_lexical_or_asciibetical_order() {
    let reg = TestRegistry::start();
    let repo = reg.repo("tags/case");
    tag_all(&reg, &repo, &["b", "C", "a", "B"]);
    let (_, list) = tags(&reg, &format!("/v2/{repo}/tags/list"));
    let ascii = ["B", "C", "a", "b"];
    let lexical_a = ["a", "B", "b", "C"];
    let lexical_b = ["a", "b", "B", "C"];
    assert!(
        list == ascii || list == lexical_a || list == lexical_b,
        "tags not in lexical or ASCIIbetical order: {list:?}"
    );
}

/// One row of a pagination table (like distribution's `TestTagsAPI`): the
/// query, the page it must give, and the `(n, last)` the `Link` must carry
/// (`None`: no Link header at all).
struct PageCase {
    query: &'static str,
    want: &'static [&'static str],
    link: Option<(&'static str, &'static str)>,
}

const fn case(
    query: &'static str,
    want: &'static [&'static str],
    link: Option<(&'static str, &'static str)>,
) -> PageCase {
    PageCase { query, want, link }
}

/// What is wrong with `r` for `case` (Link target `list_path`), if anything.
fn page_mismatch(r: &Resp, key: &str, list_path: &str, case: &PageCase) -> Option<String> {
    if r.status != 200 {
        return Some(format!("{}: status {} ({})", r.what, r.status, r.text()));
    }
    let got = strings(&r.json(), key, &r.what);
    if got != case.want {
        return Some(format!("{}: got {got:?}, want {:?}", r.what, case.want));
    }
    let got_link = r.header("link").map(|_| {
        let url = next_link(r).unwrap_or_else(|| panic!("{}: unparsable Link", r.what));
        let path = url.split('?').next().unwrap_or_default().to_string();
        (path, query_pairs(&url))
    });
    match (&case.link, got_link) {
        (None, None) => None,
        (None, Some((path, q))) => Some(format!("{}: unexpected Link {path} {q:?}", r.what)),
        (Some(_), None) => Some(format!("{}: no Link, want {:?}", r.what, case.link)),
        (Some((n, last)), Some((path, q))) => {
            let want_q = vec![
                ("n".to_string(), n.to_string()),
                ("last".to_string(), last.to_string()),
            ];
            let mut got_q = q.clone();
            got_q.sort();
            let mut want_sorted = want_q.clone();
            want_sorted.sort();
            if !path.ends_with(list_path) || got_q != want_sorted {
                Some(format!(
                    "{}: Link {path} {q:?}, want {list_path} {want_q:?}",
                    r.what
                ))
            } else {
                None
            }
        }
    }
}

/// GETs every row of `table` on `list_path` and reports all mismatches at once.
fn check_pages(reg: &TestRegistry, list_path: &str, key: &str, table: &[PageCase]) {
    let mut failures = Failures::default();
    for c in table {
        let url = if c.query.is_empty() {
            list_path.to_string()
        } else {
            format!("{list_path}?{}", c.query)
        };
        let r = reg.get(&url);
        failures.add(page_mismatch(&r, key, list_path, c));
    }
    failures.finish();
}

#[test]
fn tags_list_pagination_table() {
    let reg = TestRegistry::start();
    let repo = reg.repo("tags/pages");
    tag_all(&reg, &repo, &["c", "a", "e", "b", "d"]);
    let all: &[&str] = &["a", "b", "c", "d", "e"];
    let table = [
        case("", all, None),
        case("n=10", all, None),
        case("n=5", all, None),
        case("n=0", &[], None),
        case("n=2", &["a", "b"], Some(("2", "b"))),
        case("n=2&last=b", &["c", "d"], Some(("2", "d"))),
        // Exactly n left: the last page, no Link.
        case("n=2&last=c", &["d", "e"], None),
        case("n=3&last=c", &["d", "e"], None),
        case("n=1&last=b", &["c"], Some(("1", "c"))),
        // `last` is exclusive, with or without n, and need not be a tag.
        case("last=b", &["c", "d", "e"], None),
        case("n=2&last=bb", &["c", "d"], Some(("2", "d"))),
        case("n=1&last=0", &["a"], Some(("1", "a"))),
        case("last=e", &[], None),
        case("last=zzz", &[], None),
    ];
    check_pages(&reg, &format!("/v2/{repo}/tags/list"), "tags", &table);
}

#[test]
fn tags_link_chain_ends_after_every_tag_once() {
    let reg = TestRegistry::start();
    let repo = reg.repo("tags/chain");
    let all = ["t1", "t2", "t3", "t4", "t5", "t6", "t7"];
    tag_all(&reg, &repo, &all);
    let mut seen = Vec::new();
    let mut next = Some(format!("/v2/{repo}/tags/list?n=3"));
    let mut hops = 0;
    while let Some(l) = next {
        hops += 1;
        assert!(hops < 10, "Link chain does not end");
        let (r, page) = tags(&reg, &reg.loc(&l));
        assert!(page.len() <= 3);
        seen.extend(page);
        next = next_link(&r);
    }
    assert_eq!(seen, all);
    assert_eq!(hops, 3, "7 tags in pages of 3");
}

#[test]
fn catalog_pagination_table() {
    let Some(reg) = TestRegistry::local("catalog_pagination_table") else {
        return;
    };
    for name in ["r/c", "r/a", "r/e", "r/b", "r/d"] {
        reg.sample_image(name, "v1");
    }
    let all: &[&str] = &["r/a", "r/b", "r/c", "r/d", "r/e"];
    let table = [
        case("", all, None),
        case("n=10", all, None),
        case("n=0", &[], None),
        case("n=2", &["r/a", "r/b"], Some(("2", "r/b"))),
        case("n=2&last=r/b", &["r/c", "r/d"], Some(("2", "r/d"))),
        case("n=2&last=r/c", &["r/d", "r/e"], None),
        case("last=r/b", &["r/c", "r/d", "r/e"], None),
        case("n=1&last=r/bb", &["r/c"], Some(("1", "r/c"))),
        case("last=r/e", &[], None),
    ];
    check_pages(&reg, "/v2/_catalog", "repositories", &table);
}

#[test]
fn tags_of_an_unknown_repository_is_404_name_unknown() {
    let reg = TestRegistry::start();
    let repo = reg.repo("tags/nobody-here");
    reg.get(&format!("/v2/{repo}/tags/list"))
        .expect_error(404, &["NAME_UNKNOWN"]);
}

#[test]
fn catalog_is_sorted_and_paginates_with_link() {
    let reg = TestRegistry::start();
    let names = ["cat/b", "cat/a", "cat/a/sub", "cat/c-1", "cat/c"];
    let mine: Vec<String> = names.iter().map(|n| reg.repo(n)).collect();
    for r in &mine {
        reg.sample_image(r, "v1");
    }
    let mut want = mine.clone();
    want.sort();

    // Start just before our repositories (the whole catalog in normal mode).
    let start = reg.repo("cat/");
    let first = format!("/v2/_catalog?n=2&last={start}");
    let r = reg.get(&first);
    r.expect_status(200);
    let page = strings(&r.json(), "repositories", &r.what);
    assert_eq!(page, want[..2], "first catalog page");
    let link = next_link(&r).expect("Link header when more repositories remain");
    assert!(
        link.split('?')
            .next()
            .unwrap_or_default()
            .ends_with("/v2/_catalog"),
        "Link {link}"
    );
    let q = query_pairs(&link);
    assert!(
        q.contains(&("n".into(), "2".into())),
        "Link {link} keeps n=2"
    );
    assert!(
        q.contains(&("last".into(), want[1].clone())),
        "Link {link} carries last"
    );

    let mut seen = page;
    let mut next = Some(link);
    let mut hops = 0;
    while let Some(l) = next {
        hops += 1;
        assert!(hops < 50, "catalog Link chain does not end");
        let r = reg.get(&reg.loc(&l));
        r.expect_status(200);
        let page = strings(&r.json(), "repositories", &r.what);
        assert!(page.len() <= 2);
        let done = page.iter().any(|p| !p.starts_with(&start));
        seen.extend(page);
        next = if done { None } else { next_link(&r) };
    }
    let ours: Vec<String> = seen
        .iter()
        .filter(|s| s.starts_with(&start))
        .cloned()
        .collect();
    assert_eq!(ours, want);
    let mut check = seen.clone();
    check.sort();
    assert_eq!(seen, check, "catalog pages are not in order");

    if !reg.is_external() {
        let r = reg.get("/v2/_catalog");
        r.expect_status(200);
        assert_eq!(strings(&r.json(), "repositories", &r.what), want);
        assert!(r.header("link").is_none());
        let r = reg.get("/v2/_catalog?n=2");
        r.expect_status(200);
        assert_eq!(strings(&r.json(), "repositories", &r.what), want[..2]);
        assert!(next_link(&r).is_some(), "n=2 of 5: Link expected");
    }
    let r = reg.get("/v2/_catalog?n=0");
    r.expect_status(200);
    assert!(strings(&r.json(), "repositories", &r.what).is_empty());
    assert!(r.header("link").is_none(), "n=0 must not send Link");
}
