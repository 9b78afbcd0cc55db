//! Config from the environment: `CARE_<SECTION>__<KEY>[__<KEY>…]` overrides
//! the file's value at that path, as deployments on Kubernetes or systemd
//! expect (the file in a ConfigMap, per-environment values and secrets in
//! variables).
//!
//! - Segments are separated by a double underscore and lower-cased:
//!   `CARE_KAFKA__BROKERS` is `kafka.brokers`,
//!   `CARE_ENGINE__ALLOWED_LATENESS_SECS` is `engine.allowed_lateness_secs`.
//! - librdkafka options: `CARE_KAFKA__OPTIONS__SASL_PASSWORD` is
//!   `kafka.options."sasl.password"`: single underscores become dots
//!   (librdkafka's property names are dotted and have no underscores),
//!   except a trailing `_FILE`, which stays `_file` (a secret read from a
//!   file). Their values are taken as given.
//! - Sources by name: `CARE_SOURCES__WEB__TOPIC` is the `topic` of the
//!   source named `web` (names match case-insensitively, with `-` written
//!   as `_`). Kind map entries cannot be set this way: event types keep
//!   their case, variable names cannot.
//! - A value is read as a TOML value when it is one (`100`, `true`,
//!   `["click","login"]`), else as a string; quote it (`'"100"'`) to force a
//!   string. Secrets (keys named like a password, secret, token or key) are
//!   always taken as given.
//!
//! Only variables of that shape are config; `CARE_LOG`, `CARE_INSTANCE_ID`
//! and the like (no `__`) are left alone. A variable naming a section or a
//! source that does not exist fails at start, naming the variable; an
//! unknown key inside a known section fails as an unknown key of the file
//! would. This module is pure: the caller passes the variables in.

use toml::{Table, Value};

use super::ConfigError;

/// Prefix of every config variable.
pub const PREFIX: &str = "CARE_";
/// The top-level tables of [`super::Config`].
const SECTIONS: [&str; 6] = ["kafka", "engine", "detect", "outputs", "http", "sources"];

/// One applied override, for `check-config` to say where a value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Override {
    /// The config path, e.g. `kafka.options."sasl.password"`.
    pub key: String,
    /// The variable it came from.
    pub var: String,
}

/// Applies every config variable among `vars` to `doc`, in name order (so
/// the result does not depend on the environment's order).
///
/// # Errors
/// A variable of config shape whose section or source does not exist.
pub fn apply(doc: &mut Table, vars: impl IntoIterator<Item = (String, String)>) -> Result<Vec<Override>, ConfigError> {
    let mut vars: Vec<(String, String)> = vars.into_iter().filter(|(k, _)| is_config_var(k)).collect();
    vars.sort();
    let mut applied = Vec::with_capacity(vars.len());
    for (var, raw) in vars {
        let segments: Vec<&str> = var[PREFIX.len()..].split("__").collect();
        let (table, path) = locate(doc, &var, &segments)?;
        let (last, parents) = path.split_last().ok_or_else(|| bad(&var, "names a section, not a key"))?;
        let mut at = table;
        for p in parents {
            let entry = at.entry(p.clone()).or_insert_with(|| Value::Table(Table::new()));
            at = entry.as_table_mut().ok_or_else(|| bad(&var, &format!("`{p}` is not a table")))?;
        }
        // librdkafka options are strings, and a secret must reach its key
        // exactly as given: never read as TOML (a digits-only password
        // would become a number and fail, printed, in the error).
        let raw_string = table_is_options(&segments) || super::KafkaOptions::is_secret(last);
        at.insert(last.clone(), if raw_string { Value::String(raw) } else { value(&raw) });
        applied.push(Override { key: display_key(&segments), var });
    }
    Ok(applied)
}

/// Whether `name` has the shape of a config variable.
pub fn is_config_var(name: &str) -> bool {
    name.starts_with(PREFIX) && name.contains("__")
}

/// The table a variable's path starts in, and the path within it.
fn locate<'d>(doc: &'d mut Table, var: &str, segments: &[&str]) -> Result<(&'d mut Table, Vec<String>), ConfigError> {
    let section = segments[0].to_ascii_lowercase();
    if !SECTIONS.contains(&section.as_str()) {
        return Err(bad(var, &format!("names no config section (one of {})", SECTIONS.join(", "))));
    }
    if section == "sources" {
        let name = segments.get(1).ok_or_else(|| bad(var, "needs a source name: CARE_SOURCES__<NAME>__<KEY>"))?;
        let sources = doc.get_mut("sources").and_then(Value::as_array_mut);
        let source = sources
            .and_then(|a| a.iter_mut().filter_map(Value::as_table_mut).find(|t| t.get("name").and_then(Value::as_str).is_some_and(|n| env_name(n) == name.to_ascii_uppercase())))
            .ok_or_else(|| bad(var, &format!("names no source of the config file (source `{}`)", name.to_ascii_lowercase())))?;
        let path: Vec<String> = segments[2..].iter().map(|s| s.to_ascii_lowercase()).collect();
        if path.len() > 2 && path[0] == "kind" && path[1] == "map" {
            // Event types are matched exactly, and a variable's name cannot
            // keep their case (`OrderPlaced`): an entry set here would not match.
            return Err(bad(var, "sets a kind map entry; event types keep their case, which variable names cannot: set the map in the file"));
        }
        return Ok((source, path));
    }
    let table = doc.entry(section.clone()).or_insert_with(|| Value::Table(Table::new()));
    let table = table.as_table_mut().ok_or_else(|| bad(var, &format!("`{section}` is not a table")))?;
    let path = segments[1..]
        .iter()
        .enumerate()
        // kafka.options keys are librdkafka's dotted names.
        .map(|(i, s)| if section == "kafka" && i == 1 && segments[1].eq_ignore_ascii_case("options") { option_name(s) } else { s.to_ascii_lowercase() })
        .collect();
    Ok((table, path))
}

/// Whether a variable sets a `kafka.options` entry.
fn table_is_options(segments: &[&str]) -> bool {
    segments.len() == 3 && segments[0].eq_ignore_ascii_case("kafka") && segments[1].eq_ignore_ascii_case("options")
}

/// A librdkafka option from its variable segment: `SASL_PASSWORD` is
/// `sasl.password`; a trailing `_FILE` stays `_file` (a secret read from a
/// file, see `kafka.options`), so `SASL_PASSWORD_FILE` is `sasl.password_file`.
fn option_name(segment: &str) -> String {
    let lower = segment.to_ascii_lowercase();
    match lower.strip_suffix("_file") {
        Some(base) => format!("{}_file", base.replace('_', ".")),
        None => lower.replace('_', "."),
    }
}

/// A source name as it appears in a variable name.
fn env_name(name: &str) -> String {
    name.to_ascii_uppercase().replace('-', "_")
}

/// A TOML value if the text is one, else the text as a string.
fn value(raw: &str) -> Value {
    toml::from_str::<Table>(&format!("v = {raw}")).ok().and_then(|mut t| t.remove("v")).unwrap_or_else(|| Value::String(raw.to_string()))
}

fn display_key(segments: &[&str]) -> String {
    let lower: Vec<String> = segments.iter().map(|s| s.to_ascii_lowercase()).collect();
    match lower.as_slice() {
        [k, o, key] if k == "kafka" && o == "options" => format!("kafka.options.\"{}\"", option_name(key)),
        [s, name, rest @ ..] if s == "sources" => format!("sources[{name}].{}", rest.join(".")),
        other => other.join("."),
    }
}

fn bad(var: &str, why: &str) -> ConfigError {
    ConfigError::Invalid { key: format!("environment variable {var}"), reason: why.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> Table {
        toml::from_str(
            r#"
[kafka]
brokers = "file:9092"
[[sources]]
name = "web-clicks"
topic = "clicks"
[sources.fields]
customer_id = "/u"
"#,
        )
        .unwrap()
    }

    fn vars(v: &[(&str, &str)]) -> Vec<(String, String)> {
        v.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    #[test]
    fn variables_override_the_file_and_add_keys_with_typed_values() {
        let mut d = doc();
        let applied = apply(
            &mut d,
            vars(&[
                ("CARE_KAFKA__BROKERS", "env:9092"),
                ("CARE_KAFKA__COMMIT_INTERVAL_MS", "1000"),
                ("CARE_KAFKA__OPTIONS__SASL_PASSWORD", "s3cret"),
                ("CARE_ENGINE__ACTIVITY_KINDS", r#"["click","login"]"#),
                ("CARE_OUTPUTS__CE_SOURCE", r#""123""#),
                ("CARE_SOURCES__WEB_CLICKS__FIELDS__CUSTOMER_ID", "/user/id"),
                ("CARE_LOG", "debug"),
                ("CARE_INSTANCE_ID", "pod-0"),
                ("PATH", "/bin"),
            ]),
        )
        .unwrap();
        assert_eq!(d["kafka"]["brokers"].as_str(), Some("env:9092"));
        assert_eq!(d["kafka"]["commit_interval_ms"].as_integer(), Some(1000));
        assert_eq!(d["kafka"]["options"]["sasl.password"].as_str(), Some("s3cret"));
        assert_eq!(d["engine"]["activity_kinds"].as_array().map(Vec::len), Some(2));
        assert_eq!(d["outputs"]["ce_source"].as_str(), Some("123"));
        assert_eq!(d["sources"][0]["fields"]["customer_id"].as_str(), Some("/user/id"));
        let keys: Vec<&str> = applied.iter().map(|o| o.key.as_str()).collect();
        assert_eq!(
            keys,
            ["engine.activity_kinds", "kafka.brokers", "kafka.commit_interval_ms", "kafka.options.\"sasl.password\"", "outputs.ce_source", "sources[web_clicks].fields.customer_id"]
        );
    }

    #[test]
    fn a_variable_naming_no_section_or_source_fails_naming_the_variable() {
        for (var, why) in [("CARE_KAFKAA__BROKERS", "section"), ("CARE_SOURCES__ORDERS__TOPIC", "source"), ("CARE_SOURCES__WEB_CLICKS", "section, not a key")] {
            let err = apply(&mut doc(), vars(&[(var, "x")])).unwrap_err().to_string();
            assert!(err.contains(var) && err.contains(why), "{var}: {err}");
        }
    }

    #[test]
    fn secrets_and_options_are_taken_as_given_and_file_keys_keep_their_suffix() {
        let mut d = doc();
        apply(
            &mut d,
            vars(&[
                ("CARE_KAFKA__OPTIONS__SASL_PASSWORD", "12345678"),
                ("CARE_KAFKA__OPTIONS__SSL_KEY_PASSWORD_FILE", "/run/secrets/key"),
                ("CARE_KAFKA__OPTIONS__SASL_USERNAME", "\"quoted\""),
                ("CARE_HTTP__TOKEN", "true"),
            ]),
        )
        .unwrap();
        assert_eq!(d["kafka"]["options"]["sasl.password"].as_str(), Some("12345678"));
        assert_eq!(d["kafka"]["options"]["ssl.key.password_file"].as_str(), Some("/run/secrets/key"));
        assert_eq!(d["kafka"]["options"]["sasl.username"].as_str(), Some("\"quoted\""));
        assert_eq!(d["http"]["token"].as_str(), Some("true"));
    }

    #[test]
    fn source_names_match_in_any_case_and_kind_map_entries_are_refused() {
        let mut d = doc();
        apply(&mut d, vars(&[("CARE_SOURCES__Web_Clicks__TOPIC", "t2")])).unwrap();
        assert_eq!(d["sources"][0]["topic"].as_str(), Some("t2"));
        let err = apply(&mut doc(), vars(&[("CARE_SOURCES__WEB_CLICKS__KIND__MAP__ORDERPLACED", "order")])).unwrap_err().to_string();
        assert!(err.contains("kind map") && err.contains("CARE_SOURCES__WEB_CLICKS__KIND__MAP__ORDERPLACED"), "{err}");
    }
}
