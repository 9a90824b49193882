//! Wycheproof `aes_gcm_test.json`: every case with a 256-bit key, 96-bit IV
//! and 128-bit tag.

use serde_json::Value;

use super::{aead_open, aead_seal, hex, read_vector};

#[test]
fn wycheproof_aes_256_gcm() {
    let doc: Value = serde_json::from_str(&read_vector("wycheproof/aes_gcm_test.json"))
        .expect("wycheproof JSON");
    let (mut valid, mut invalid) = (0, 0);
    for group in doc["testGroups"].as_array().unwrap() {
        if group["keySize"] != 256 || group["ivSize"] != 96 || group["tagSize"] != 128 {
            continue;
        }
        for case in group["tests"].as_array().unwrap() {
            let field = |name: &str| hex(case[name].as_str().unwrap());
            let (key, iv, aad, msg) = (field("key"), field("iv"), field("aad"), field("msg"));
            let mut ct_tag = field("ct");
            ct_tag.extend(field("tag"));
            let id = &case["tcId"];
            match case["result"].as_str().unwrap() {
                "valid" => {
                    valid += 1;
                    assert_eq!(aead_seal(&key, &iv, &aad, &msg), ct_tag, "tcId {id} seal");
                    assert_eq!(
                        aead_open(&key, &iv, &aad, &ct_tag),
                        Some(msg),
                        "tcId {id} open"
                    );
                }
                "invalid" => {
                    invalid += 1;
                    assert_eq!(
                        aead_open(&key, &iv, &aad, &ct_tag),
                        None,
                        "tcId {id} opened"
                    );
                }
                other => panic!("tcId {id}: unexpected result {other}"),
            }
        }
    }
    // The counts in tests/vectors/README.md: a filter that matched nothing
    // must not pass.
    assert_eq!((valid, invalid), (39, 27));
}
