//! Turning figment's errors into messages for people: the key as it is written in the file
//! (`heartbeat.interval_msec`, not `default.heartbeat`), where the value came from (the file,
//! or the environment variable's own name), and for an unknown key the nearest known one —
//! a typo in the config must stop the server instead of silently leaving a default in place.

use figment::Source;
use figment::error::Kind;

/// Every problem in `error`, one a line.
pub fn describe(error: figment::Error) -> String {
    let lines: Vec<String> = error.into_iter().map(|e| describe_one(&e)).collect();
    lines.join("\n  ")
}

fn describe_one(e: &figment::Error) -> String {
    let origin = |path: &[String]| origin_of(e, path);
    match &e.kind {
        Kind::UnknownField(found, expected) => {
            let mut path = e.path.clone();
            // figment puts the unknown key itself at the end of the path for some providers
            // and not for others; it is named once either way.
            if path.last() != Some(found) {
                path.push(found.clone());
            }
            let key = path.join(".");
            let mut message = format!("unknown key `{key}`{}", origin(&path));
            match nearest(found, expected) {
                Some(near) => {
                    let mut known = path.clone();
                    known.pop();
                    known.push(near.to_owned());
                    message.push_str(&format!("; did you mean `{}`", known.join(".")));
                    if let Some(var) = env_name(e, &known) {
                        message.push_str(&format!(" ({var})"));
                    }
                    message.push('?');
                }
                None => message.push_str(&format!("; known keys here: {}", expected.join(", "))),
            }
            message
        }
        kind => {
            let key = e.path.join(".");
            let key = if key.is_empty() { "config" } else { &key };
            format!("{key}: {kind}{}", origin(&e.path))
        }
    }
}

/// ` (in FILE)` or ` (from VAR)`, when figment knows where the value came from.
fn origin_of(e: &figment::Error, path: &[String]) -> String {
    if let Some(var) = env_name(e, path) {
        return format!(" (from the environment variable {var})");
    }
    match e.metadata.as_ref().and_then(|m| m.source.as_ref()) {
        Some(Source::File(file)) => format!(" (in {})", file.display()),
        _ => String::new(),
    }
}

/// The environment variable that sets `path` (`SWITCHBOARD_<SECTION>__<KEY>`), when the value
/// came from the environment.
fn env_name(e: &figment::Error, path: &[String]) -> Option<String> {
    let md = e.metadata.as_ref()?;
    if !md.name.contains("environment") {
        return None;
    }
    let keys: Vec<String> = path.iter().map(|k| k.to_ascii_uppercase()).collect();
    Some(format!("SWITCHBOARD_{}", keys.join("__")))
}

/// The known key closest to `found`, if any is close enough to be what was meant.
fn nearest<'a>(found: &str, expected: &[&'a str]) -> Option<&'a str> {
    let found = found.to_ascii_lowercase();
    expected
        .iter()
        .map(|k| (*k, strsim::damerau_levenshtein(&found, k)))
        .filter(|(k, d)| {
            *d <= (k.len().max(found.len()) / 3).max(2)
                || k.starts_with(&found)
                || found.starts_with(k)
        })
        .min_by_key(|(_, d)| *d)
        .map(|(k, _)| k)
}

#[cfg(test)]
mod tests {
    use super::nearest;

    #[test]
    fn suggests_the_nearest_key() {
        let keys = ["listen", "data_dir", "security", "store"];
        assert_eq!(nearest("lisen", &keys), Some("listen"));
        assert_eq!(nearest("securty", &keys), Some("security"));
        assert_eq!(
            nearest("interval_msec", &["interval_ms", "timeout_ms"]),
            Some("interval_ms")
        );
        assert_eq!(nearest("colour", &keys), None);
    }
}
