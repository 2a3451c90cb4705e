//! Content discovery (end-8a, end-8b) and `/v2/_catalog`: sorted lists, `n`,
//! exclusive `last`, RFC 5988 `Link: <...>; rel="next"` while more remain,
//! `n=0` gives an empty list and no Link, unknown repository → NAME_UNKNOWN.

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

#[test]
fn tags_paginate_with_n_last_and_link() {
    let reg = TestRegistry::start();
    let repo = reg.repo("tags/pages");
    let all = ["t1", "t2", "t3", "t4", "t5", "t6", "t7"];
    tag_all(&reg, &repo, &all);
    let first = format!("/v2/{repo}/tags/list?n=3");
    let (r, page) = tags(&reg, &first);
    assert_eq!(page, ["t1", "t2", "t3"]);
    let link = next_link(&r).expect("Link header when more tags remain");
    let path = link.split('?').next().unwrap_or_default();
    assert!(
        path.ends_with(&format!("/v2/{repo}/tags/list")),
        "Link target {link}"
    );
    let q = query_pairs(&link);
    assert!(
        q.contains(&("n".into(), "3".into())),
        "Link {link} keeps n=3"
    );
    assert!(
        q.contains(&("last".into(), "t3".into())),
        "Link {link} carries last=t3"
    );

    // Follow the links to the end.
    let mut seen = page;
    let mut next = Some(link);
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
}

#[test]
fn n_zero_gives_an_empty_list_and_no_link() {
    let reg = TestRegistry::start();
    let repo = reg.repo("tags/zero");
    tag_all(&reg, &repo, &["a", "b"]);
    let (r, list) = tags(&reg, &format!("/v2/{repo}/tags/list?n=0"));
    assert!(list.is_empty(), "{list:?}");
    assert!(r.header("link").is_none(), "n=0 must not send Link");
}

#[test]
fn last_is_exclusive_with_and_without_n() {
    let reg = TestRegistry::start();
    let repo = reg.repo("tags/last");
    tag_all(&reg, &repo, &["a", "b", "c", "d"]);
    let (_, list) = tags(&reg, &format!("/v2/{repo}/tags/list?last=b"));
    assert_eq!(list, ["c", "d"]);
    let (_, list) = tags(&reg, &format!("/v2/{repo}/tags/list?n=1&last=b"));
    assert_eq!(list, ["c"]);
    // `last` need not be an existing tag.
    let (_, list) = tags(&reg, &format!("/v2/{repo}/tags/list?n=2&last=bb"));
    assert_eq!(list, ["c", "d"]);
    let (r, list) = tags(&reg, &format!("/v2/{repo}/tags/list?last=d"));
    assert!(list.is_empty());
    assert!(r.header("link").is_none());
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
