//! `verify`, `list`, `get`, `delete`, `touch`, `purge` and `clear`.

use std::io::{IsTerminal, Write};
use std::ops::ControlFlow;

use serde_json::json;
use store_api::{Entry, Expiry, Key, ScanOptions, Timestamp};

use crate::target::Target;
use crate::{Failure, chain};

fn write(out: &mut dyn Write, s: &str) -> Result<(), Failure> {
    out.write_all(s.as_bytes()).map_err(Failure::output)
}

fn key_of(m: &clap::ArgMatches) -> Result<Key, Failure> {
    let k = m.get_one::<String>("key").expect("required");
    Key::new(k.as_str()).map_err(|e| Failure::new(chain(&e)))
}

fn expiry_text(at: Option<Timestamp>) -> String {
    match at {
        None => "never".into(),
        Some(t) => {
            let now = store_api::Clock::now(&store_api::SystemClock).as_millis();
            let ms = t.as_millis();
            if ms >= now {
                format!("in {}s (at {ms} ms)", (ms - now) / 1000)
            } else {
                format!("{}s ago (at {ms} ms)", (now - ms) / 1000)
            }
        }
    }
}

/// `verify [--repair]`.
pub(crate) fn verify(t: &Target, m: &clap::ArgMatches, out: &mut dyn Write) -> Result<(), Failure> {
    let Target::FastMmap(s) = t else {
        return Err(Failure::new(
            "verify checks a store-fastmmap file's pages and checksums; a Redis server keeps \
             its own (see redis-check-rdb and redis-check-aof)",
        ));
    };
    let repair = m.get_flag("repair");
    let bar = !m.get_flag("quiet") && std::io::stderr().is_terminal();
    let n = s.num_pages();
    let mut shown = 0;
    let report = s.verify(repair, &mut |done| {
        let pct = u64::from(done) * 100 / u64::from(n.max(1));
        if bar && (pct != shown || done == n) {
            shown = pct;
            let filled = (pct / 2) as usize;
            eprint!(
                "\r[{}{}] {pct:>3} % page {done}/{n}",
                "#".repeat(filled),
                " ".repeat(50 - filled)
            );
        }
    })?;
    if bar {
        eprintln!();
    }
    for p in &report.problems {
        let what = if p.repaired { "repaired" } else { "damaged" };
        write(out, &format!("page {}: {what}: {}\n", p.page, p.what))?;
    }
    write(
        out,
        &format!(
            "{} pages, {} records: {} fail their checks, {} duplicates, {} damaged pages{}\n",
            report.pages,
            report.records,
            report.bad_records,
            report.duplicates,
            report.problems.len(),
            if repair && !report.clean() {
                " (repaired)"
            } else {
                ""
            }
        ),
    )?;
    if report.clean() || repair {
        return Ok(());
    }
    Err(Failure::damage(format!(
        "{} of {} pages are damaged; `verify --repair` repairs them (or the next write to each \
         does)",
        report.problems.len(),
        report.pages
    )))
}

/// `list [--prefix P] [--json]`.
pub(crate) fn list(t: &Target, m: &clap::ArgMatches, out: &mut dyn Write) -> Result<(), Failure> {
    let mut opts = ScanOptions::new();
    if let Some(p) = m.get_one::<String>("prefix") {
        opts = opts.prefix(p.clone());
    }
    let as_json = m.get_flag("json");
    let mut failed = None;
    t.store().scan(&opts, &mut |e| {
        let line = if as_json {
            json!({
                "key": e.key.as_str(),
                "expires_at_ms": e.expires_at.map(Timestamp::as_millis),
                "version": e.version.get(),
                "value_len": e.value_len,
            })
            .to_string()
                + "\n"
        } else {
            format!(
                "{}\t{} bytes\texpires {}\n",
                e.key,
                e.value_len,
                expiry_text(e.expires_at)
            )
        };
        match write(out, &line) {
            Ok(()) => ControlFlow::Continue(()),
            Err(f) => {
                failed = Some(f);
                ControlFlow::Break(())
            }
        }
    })?;
    failed.map_or(Ok(()), Err)
}

/// `get KEY [--raw | --hex | --json]`.
pub(crate) fn get(t: &Target, m: &clap::ArgMatches, out: &mut dyn Write) -> Result<(), Failure> {
    let k = key_of(m)?;
    let Some(e) = t.store().get(&k)? else {
        return Err(Failure::new(format!("no live session under {k}")));
    };
    if m.get_flag("raw") {
        return out.write_all(&e.value).map_err(Failure::output);
    }
    if m.get_flag("hex") {
        return write(out, &hex_dump(&e.value));
    }
    if m.get_flag("json") {
        return write(out, &(entry_json(&k, &e).to_string() + "\n"));
    }
    write(out, &shown(&e.value))
}

fn entry_json(k: &Key, e: &Entry) -> serde_json::Value {
    let value = match serde_json::from_slice::<serde_json::Value>(&e.value) {
        Ok(v) => json!({ "json": v }),
        Err(_) => match std::str::from_utf8(&e.value) {
            Ok(s) => json!({ "text": s }),
            Err(_) => json!({ "hex": hex(&e.value) }),
        },
    };
    json!({
        "key": k.as_str(),
        "expires_at_ms": e.expires_at.map(Timestamp::as_millis),
        "version": e.version.get(),
        "value_len": e.value.len(),
        "value": value,
    })
}

/// JSON pretty-printed, text as is, anything else as a hex dump.
fn shown(v: &[u8]) -> String {
    if let Ok(j) = serde_json::from_slice::<serde_json::Value>(v)
        && let Ok(s) = serde_json::to_string_pretty(&j)
    {
        return s + "\n";
    }
    match std::str::from_utf8(v) {
        Ok(s) if !s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') => {
            let mut s = s.to_owned();
            if !s.ends_with('\n') {
                s.push('\n');
            }
            s
        }
        _ => hex_dump(v),
    }
}

fn hex(v: &[u8]) -> String {
    v.iter().map(|b| format!("{b:02x}")).collect()
}

fn hex_dump(v: &[u8]) -> String {
    let mut o = String::new();
    for (i, row) in v.chunks(16).enumerate() {
        let bytes: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
        let text: String = row
            .iter()
            .map(|&b| {
                if b.is_ascii_graphic() || b == b' ' {
                    b as char
                } else {
                    '.'
                }
            })
            .collect();
        o.push_str(&format!(
            "{:08x}  {:<47}  {text}\n",
            i * 16,
            bytes.join(" ")
        ));
    }
    o
}

/// `delete KEY`.
pub(crate) fn delete(t: &Target, m: &clap::ArgMatches, out: &mut dyn Write) -> Result<(), Failure> {
    let k = key_of(m)?;
    if t.store().delete(&k)? {
        write(out, &format!("deleted {k}\n"))
    } else {
        Err(Failure::new(format!("no live session under {k}")))
    }
}

/// `touch KEY DURATION`.
pub(crate) fn touch(t: &Target, m: &clap::ArgMatches, out: &mut dyn Write) -> Result<(), Failure> {
    let k = key_of(m)?;
    let d = m.get_one::<String>("duration").expect("required");
    let expiry = if d == "never" {
        Expiry::Never
    } else {
        Expiry::After(crate::duration::parse(d).map_err(Failure::new)?)
    };
    if t.store().touch(&k, expiry)? {
        write(
            out,
            &format!(
                "{k} now expires {}\n",
                match expiry {
                    Expiry::Never => "never".to_owned(),
                    _ => format!("in {d}"),
                }
            ),
        )
    } else {
        Err(Failure::new(format!("no live session under {k}")))
    }
}

/// `purge`.
pub(crate) fn purge(t: &Target, out: &mut dyn Write) -> Result<(), Failure> {
    let n = t.store().purge_expired()?;
    let note = if t.store().capabilities().expires_itself {
        " (the server removes expired keys by itself)"
    } else {
        ""
    };
    write(out, &format!("purged {n} expired sessions{note}\n"))
}

/// `clear --yes`.
pub(crate) fn clear(t: &Target, m: &clap::ArgMatches, out: &mut dyn Write) -> Result<(), Failure> {
    if !m.get_flag("yes") {
        return Err(Failure::new(
            "clear removes every session (everybody is logged out); run it again with --yes",
        ));
    }
    let n = t.store().clear()?;
    write(out, &format!("cleared: {n} live sessions removed\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_shown_as_json_text_or_hex() {
        let record = br#"{"tower_sessions":1,"data":{"n":2}}"#;
        let pretty = shown(record);
        assert!(pretty.contains("\n  \"data\": {\n    \"n\": 2"), "{pretty}");
        let back: serde_json::Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(
            back,
            serde_json::from_slice::<serde_json::Value>(record).unwrap()
        );
        assert_eq!(shown(b"user=ada"), "user=ada\n");
        assert!(shown(&[0, 159, 146, 150]).starts_with("00000000  00 9f 92 96"));
        assert_eq!(hex(&[1, 0xab]), "01ab");
    }
}
