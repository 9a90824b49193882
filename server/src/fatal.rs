//! How a failed start is told to the person running the binary: one line,
//! the context first and then each cause, each said once.

/// `what: why: deeper why`, each said once: many errors repeat their source
/// in their own message, and a context may repeat what its cause says
/// (anyhow's usual report would print both).
pub fn describe(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if text.contains(&line) {
            line = text;
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

#[cfg(test)]
mod tests {
    use super::describe;

    #[test]
    fn each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::AddrInUse, "Address in use");
        let err = anyhow::Error::new(io).context("cannot listen on 127.0.0.1:3000");
        assert_eq!(
            describe(&err),
            "cannot listen on 127.0.0.1:3000: Address in use"
        );
        let repeated = anyhow::anyhow!("bad keyring").context("keyring file k: bad keyring");
        assert_eq!(describe(&repeated), "keyring file k: bad keyring");
        let inner = anyhow::anyhow!("keyring file k: denied").context("keyring file k");
        assert_eq!(describe(&inner), "keyring file k: denied");
    }
}
