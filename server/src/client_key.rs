//! The key every per-address limit counts under: an IPv4 address as is, an
//! IPv6 address by its /64, an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`,
//! a dual-stack socket's view of an IPv4 client) as the IPv4 address.
//!
//! One client is usually given a whole /64 (and may pick any address in
//! it), so counted by the full IPv6 address, one client would have 2^64
//! sets of caps. Used by the connection and session caps
//! ([`crate::per_ip`]) and the login throttle ([`crate::login_limit`]).

use std::net::{IpAddr, Ipv6Addr};

/// The address `ip` is counted under.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let prefix = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(Ipv6Addr::from(prefix))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(s: &str) -> String {
        client_key(s.parse().unwrap()).to_string()
    }

    #[test]
    fn ipv6_by_its_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(key("10.1.2.3"), "10.1.2.3");
        assert_eq!(key("2001:db8:1:2:aaaa:bbbb:cccc:dddd"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:2::1"), "2001:db8:1:2::");
        assert_eq!(key("2001:db8:1:3::1"), "2001:db8:1:3::");
        assert_eq!(key("::ffff:10.1.2.3"), "10.1.2.3");
        assert_eq!(key("::1"), "::");
    }
}
