//! Printing results: text for people, one JSON line for scripts.

use crate::idle::IdleResult;
use crate::run::ChatResult;

#[allow(clippy::print_stdout)]
pub fn print(r: &ChatResult, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
        return;
    }
    println!(
        "{} [{}]: {} clients ({} sending, window {}{}) in {} room(s), {} B messages, {:.1} s{}",
        r.label,
        r.scenario,
        r.clients,
        r.senders,
        r.window,
        if r.rate > 0.0 {
            format!(", {} msg/s each", r.rate)
        } else {
            String::new()
        },
        r.rooms,
        r.size,
        r.seconds,
        if r.encrypted {
            ", every delivery checked (each message opened once per load thread, every other copy compared to it)"
        } else {
            ", plaintext"
        }
    );
    println!(
        "  accepted {} ({:.0}/s), delivered {} ({:.0}/s)",
        r.accepted, r.accepted_per_sec, r.delivered, r.deliveries_per_sec
    );
    println!(
        "  latency send→receipt p50 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
        r.latency_ms_p50, r.latency_ms_p99, r.latency_ms_p999, r.latency_ms_max
    );
    if let (Some(p50), Some(p99), Some(max), Some(n)) = (
        r.last_delivery_ms_p50,
        r.last_delivery_ms_p99,
        r.last_delivery_ms_max,
        r.messages_complete,
    ) {
        println!(
            "  latency send→last member p50 {p50:.2} ms, p99 {p99:.2} ms, max {max:.2} ms ({n} messages reached every member)"
        );
    }
    println!(
        "  errors {}: refused {}, unreadable {}, never delivered {}",
        r.errors, r.refused, r.unreadable, r.never_delivered
    );
    println!(
        "  server CPU {:.1} s ({:.0} %), peak RSS {:.1} MiB",
        r.server_cpu_seconds, r.server_cpu_percent, r.server_peak_rss_mib
    );
    if r.login_flood > 0 {
        println!(
            "  login flood: {} connections, {} logins ({:.0}/s): 401 {}, 429 {}, 503 {}, failed {}",
            r.login_flood,
            r.logins,
            r.logins_per_sec,
            r.logins_unauthorized,
            r.logins_limited,
            r.logins_unavailable,
            r.logins_failed
        );
    }
}

#[allow(clippy::print_stdout)]
pub fn print_idle(r: &IdleResult, json: bool) {
    if json {
        println!("{}", serde_json::to_string(r).unwrap_or_default());
        return;
    }
    println!(
        "{}: {} idle connections ({} load process(es)) in {:.1} s; RSS {:.1} → {:.1} MiB = {:.1} KiB per connection",
        r.label,
        r.connections,
        r.processes,
        r.connect_seconds,
        r.rss_before_mib,
        r.rss_after_mib,
        r.kib_per_connection
    );
}
