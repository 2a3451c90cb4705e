//! The two S3 XML answers rusty-s3 does not parse: an error (`<Error><Code>`)
//! and ListMultipartUploads. Element text only, flat, the five predefined
//! entities unescaped; enough for S3's fixed schemas.
//!
//! It must NEVER be used for general XML, and never panic on any input.

/// The text of each `<name>...</name>` element in `xml`, in order.
pub fn texts(xml: &str, name: &str) -> Vec<String> {
    let (open, close) = (format!("<{name}>"), format!("</{name}>"));
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else { break };
        out.push(unescape(&after[..end]));
        rest = &after[end + close.len()..];
    }
    out
}

/// The text of the first `<name>` element.
pub fn text(xml: &str, name: &str) -> Option<String> {
    texts(xml, name).into_iter().next()
}

fn unescape(s: &str) -> String {
    s.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn elements_are_found_in_order_and_unescaped() {
        let xml = "<R><Upload><Key>a&amp;b</Key><UploadId>1</UploadId></Upload>\
                   <Upload><Key>c&lt;d</Key><UploadId>2</UploadId></Upload><Key>unclosed";
        assert_eq!(texts(xml, "Key"), ["a&b", "c<d"]);
        assert_eq!(texts(xml, "UploadId"), ["1", "2"]);
        assert_eq!(text(xml, "Missing"), None);
        assert_eq!(texts("<Key></Key>", "Key"), [""]);
        assert!(texts("</Key><Key>", "Key").is_empty());
    }
}
