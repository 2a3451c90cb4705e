//! Manifests and indexes: `Manifest::parse` with no Content-Type, with each
//! known media type, and with an arbitrary one. Input: the first byte picks the
//! Content-Type; for an arbitrary one, the bytes up to the first newline are it.
//! An accepted manifest is consistent (its kind matches its media type, an image
//! has a config and no children, an index children and no config or layers,
//! every digest round-trips) and parsing is deterministic; a refused one is 400
//! MANIFEST_INVALID (413 when too large).
#![no_main]

use libfuzzer_sys::fuzz_target;
use soute::error::Code;
use soute::oci::manifest::{bare_media_type, Kind};
use soute::oci::{media, Descriptor, Digest, Manifest};

const KNOWN: [&str; 6] = [
    media::OCI_MANIFEST,
    media::OCI_INDEX,
    media::DOCKER_MANIFEST,
    media::DOCKER_LIST,
    media::DOCKER_SCHEMA1,
    media::DOCKER_SCHEMA1_SIGNED,
];

fn check_descriptor(d: &Descriptor) {
    assert_eq!(
        Digest::parse(&d.digest.to_string()).ok().as_ref(),
        Some(&d.digest)
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (content_type, body): (Option<String>, &[u8]) = match mode % 8 {
        0 => (None, rest),
        m @ 1..=6 => {
            // A known type, sometimes with parameters and odd case.
            let t = KNOWN[usize::from(m - 1)];
            let t = if mode & 0x80 != 0 {
                format!("{}; charset=utf-8", t.to_uppercase())
            } else {
                t.to_string()
            };
            (Some(t), rest)
        }
        _ => {
            let cut = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let Ok(t) = std::str::from_utf8(&rest[..cut]) else {
                return;
            };
            (Some(t.to_string()), rest.get(cut + 1..).unwrap_or(&[]))
        }
    };
    let parsed = Manifest::parse(body, content_type.as_deref());
    let again = Manifest::parse(body, content_type.as_deref());
    assert_eq!(
        format!("{parsed:?}"),
        format!("{again:?}"),
        "parse is not deterministic"
    );
    match parsed {
        Ok(m) => {
            let header = content_type
                .as_deref()
                .map(bare_media_type)
                .filter(|t| !t.is_empty());
            if let Some(h) = &header {
                assert_eq!(&m.media_type, h);
            }
            match m.kind {
                Kind::Image => {
                    assert!(
                        m.media_type == media::OCI_MANIFEST
                            || m.media_type == media::DOCKER_MANIFEST
                    );
                    assert!(m.config.is_some() && m.manifests.is_empty());
                }
                Kind::Index => {
                    assert!(m.media_type == media::OCI_INDEX || m.media_type == media::DOCKER_LIST);
                    assert!(m.config.is_none() && m.layers.is_empty());
                }
            }
            m.config
                .iter()
                .chain(&m.layers)
                .chain(&m.manifests)
                .chain(&m.subject)
                .for_each(check_descriptor);
            let _ = m.referrer_artifact_type();
        }
        Err(e) => {
            assert_eq!(e.code(), Code::ManifestInvalid);
            assert!(matches!(e.status(), 400 | 413), "{}", e.status());
            assert!(
                e.client_message().len() <= 4096,
                "{} bytes",
                e.client_message().len()
            );
        }
    }
});
