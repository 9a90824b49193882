//! NIST CAVP GCMVS: `gcmEncryptExtIV256.rsp` and `gcmDecrypt256.rsp`, every
//! case with a 96-bit IV and a 128-bit tag.

use std::collections::HashMap;

use super::{aead_open, aead_seal, hex, read_vector};

struct Case {
    fields: HashMap<String, String>,
    fail: bool,
}

/// Parses a `.rsp` file into the cases of the sections with `IVlen = 96`
/// and `Taglen = 128` (every section of these files has `Keylen = 256`).
fn cases(text: &str) -> Vec<Case> {
    let mut section = HashMap::new();
    let mut out = Vec::new();
    let mut current: Option<Case> = None;
    let wanted = |s: &HashMap<String, String>| {
        s.get("Keylen").map(String::as_str) == Some("256")
            && s.get("IVlen").map(String::as_str) == Some("96")
            && s.get("Taglen").map(String::as_str) == Some("128")
    };
    for line in text.lines().map(str::trim) {
        if let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if let Some((k, v)) = inner.split_once('=') {
                section.insert(k.trim().to_string(), v.trim().to_string());
            }
        } else if line == "FAIL" {
            // Cases of sections we skip have no `current`.
            if let Some(case) = current.as_mut() {
                case.fail = true;
            }
        } else if let Some((k, v)) = line.split_once('=') {
            let (k, v) = (k.trim(), v.trim());
            if k == "Count" {
                if let Some(done) = current.take() {
                    out.push(done);
                }
                current = wanted(&section).then(|| Case {
                    fields: HashMap::new(),
                    fail: false,
                });
            }
            if let Some(case) = current.as_mut() {
                case.fields.insert(k.to_string(), v.to_string());
            }
        }
    }
    out.extend(current);
    out
}

fn field(case: &Case, name: &str) -> Vec<u8> {
    hex(case
        .fields
        .get(name)
        .unwrap_or_else(|| panic!("case lacks {name}")))
}

#[test]
fn nist_cavp_encrypt_256() {
    let all = cases(&read_vector("nist_cavp/gcmEncryptExtIV256.rsp"));
    for case in &all {
        let mut expected = field(case, "CT");
        expected.extend(field(case, "Tag"));
        let (key, iv, aad, pt) = (
            field(case, "Key"),
            field(case, "IV"),
            field(case, "AAD"),
            field(case, "PT"),
        );
        assert_eq!(
            aead_seal(&key, &iv, &aad, &pt),
            expected,
            "{:?}",
            case.fields
        );
        assert_eq!(aead_open(&key, &iv, &aad, &expected), Some(pt));
    }
    assert_eq!(all.len(), 375);
}

#[test]
fn nist_cavp_decrypt_256() {
    let all = cases(&read_vector("nist_cavp/gcmDecrypt256.rsp"));
    let mut failures = 0;
    for case in &all {
        let mut ct_tag = field(case, "CT");
        ct_tag.extend(field(case, "Tag"));
        let got = aead_open(
            &field(case, "Key"),
            &field(case, "IV"),
            &field(case, "AAD"),
            &ct_tag,
        );
        if case.fail {
            failures += 1;
            assert_eq!(got, None, "{:?}", case.fields);
        } else {
            assert_eq!(got, Some(field(case, "PT")), "{:?}", case.fields);
        }
    }
    assert_eq!((all.len(), failures), (375, 191));
}
