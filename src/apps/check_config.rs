//! `care check-config`: a config as care resolves it, every key with where
//! its value came from (`# default`, `# file`, `# env VAR`), and the values
//! derived from it. Secrets are redacted by the caller.

use std::path::Path;

use care_core::config::env::Override;
use care_core::config::Config;
use toml::{Table, Value};

/// The whole report: a header naming the file, the derived values, then
/// the resolved config (`resolved`, TOML) with each key's origin.
///
/// # Errors
/// The file cannot be read again or is not TOML (it was just loaded).
pub fn report(file: &Path, cfg: &Config, overrides: &[Override], resolved: &str) -> anyhow::Result<String> {
    let text = std::fs::read_to_string(file)?;
    let in_file: Table = toml::from_str(&text)?;
    let mut out = format!("# {} is valid; every key resolved (defaults < file < environment < flags), with where it came from:\n", file.display());
    for o in overrides {
        out += &format!("# {} from the environment ({})\n", o.key, o.var);
    }
    let instance = cfg.kafka.instance_id.as_deref().unwrap_or("--instance-id, CARE_INSTANCE_ID, else the host name");
    out += &format!(
        "# derived: changelog topic {:?}, instances topic {:?}, transactional.id \"{}-<instance_id>\" (instance_id: {instance})\n",
        cfg.kafka.changelog(),
        cfg.kafka.instances_topic(),
        cfg.kafka.group_id
    );
    out += &match &cfg.engine.emit_from {
        Some(t) => format!("# derived: outputs triggered before {t} (engine.emit_from) are suppressed\n"),
        None => "# derived: outputs triggered before the first start minus 24 h are suppressed (engine.emit_from unset; remembered in the changelog)\n".into(),
    };
    let names: Vec<&str> = cfg.sources.iter().map(|s| s.name.as_str()).collect();
    out += &annotate(resolved, &in_file, overrides, &names);
    Ok(out)
}

/// Appends to each `key = value` line of `resolved` where the value came
/// from: a variable of `overrides`, the file's table `in_file`, or the
/// default. `sources` names the resolved `[[sources]]` in order.
pub fn annotate(resolved: &str, in_file: &Table, overrides: &[Override], sources: &[&str]) -> String {
    let mut out = String::with_capacity(resolved.len() * 2);
    // The table the lines are in: its path in the file (a source by index)
    // and as the environment's overrides name it (a source by name).
    let (mut path, mut shown): (Vec<Seg>, String) = (Vec::new(), String::new());
    let mut source: Option<usize> = None;
    for line in resolved.lines() {
        out += line;
        if line == "[[sources]]" {
            let i = source.map_or(0, |i| i + 1);
            source = Some(i);
            path = vec![Seg::Key("sources".into()), Seg::Index(i)];
            shown = format!("sources[{}]", sources.get(i).copied().unwrap_or("?"));
        } else if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let keys = split_key(header);
            match (keys.first().map(String::as_str), source) {
                (Some("sources"), Some(i)) => {
                    path = [Seg::Key("sources".into()), Seg::Index(i)].into_iter().chain(keys[1..].iter().cloned().map(Seg::Key)).collect();
                    shown = format!("sources[{}].{}", sources.get(i).copied().unwrap_or("?"), header.split_once('.').map_or("", |x| x.1));
                }
                _ => {
                    path = keys.into_iter().map(Seg::Key).collect();
                    shown = header.to_string();
                }
            }
        } else if let Some((key, _)) = line.split_once(" = ").filter(|_| !line.starts_with([' ', ']', '#'])) {
            let full = if shown.is_empty() { key.to_string() } else { format!("{shown}.{key}") };
            let from_env = overrides.iter().find(|o| same_key(&o.key, &full));
            let name = split_key(key).pop().unwrap_or_default();
            if let Some(o) = from_env {
                out += &format!("  # env {}", o.var);
            } else if lookup(in_file, &path).is_some_and(|t| t.contains_key(&name)) {
                out += "  # file";
            } else {
                out += "  # default";
            }
        }
        out.push('\n');
    }
    out
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// The table at `path` in `t`, if the file has it.
fn lookup<'a>(t: &'a Table, path: &[Seg]) -> Option<&'a Table> {
    let mut v: Option<&Value> = None;
    for seg in path {
        v = match (seg, v) {
            (Seg::Key(k), None) => t.get(k),
            (Seg::Key(k), Some(Value::Table(t))) => t.get(k),
            (Seg::Index(i), Some(Value::Array(a))) => a.get(*i),
            _ => None,
        };
        v?;
    }
    match v {
        None => Some(t),
        Some(Value::Table(t)) => Some(t),
        _ => None,
    }
}

/// A dotted TOML key split into its parts, quotes removed: `a."b.c"` → [a, b.c].
fn split_key(key: &str) -> Vec<String> {
    let (mut parts, mut cur, mut quoted) = (Vec::new(), String::new(), false);
    for c in key.chars() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => parts.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    parts.push(cur);
    parts.into_iter().map(|p| p.trim().to_string()).collect()
}

/// Whether an override's key names `full`: source names are matched as
/// the environment writes them (any case, `-` as `_`).
fn same_key(override_key: &str, full: &str) -> bool {
    let norm = |s: &str| s.to_ascii_lowercase().replace('-', "_");
    norm(override_key) == norm(full)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_key_says_whether_it_came_from_the_default_the_file_or_the_environment() {
        let file = "[kafka]\nbrokers = \"b:9092\"\n[kafka.options]\n\"sasl.username\" = \"care\"\n[[sources]]\nname = \"web-1\"\ntopic = \"t\"\n[sources.fields]\ncustomer_id = \"/id\"\n";
        let resolved = "[kafka]\nbrokers = \"b:9092\"\ngroup_id = \"g\"\nlinger_ms = 5\n\n[kafka.options]\n\"sasl.username\" = \"care\"\n\"sasl.password\" = \"<redacted>\"\n\n[engine]\nactivity_kinds = [\n    \"click\",\n]\n\n[[sources]]\nname = \"web-1\"\ntopic = \"t2\"\nunknown_kinds = \"skip\"\n\n[sources.fields]\ncustomer_id = \"/id\"\nts = \"/ts\"\n";
        let env = [
            Override { key: "kafka.linger_ms".into(), var: "CARE_KAFKA__LINGER_MS".into() },
            Override { key: "kafka.options.\"sasl.password\"".into(), var: "CARE_KAFKA__OPTIONS__SASL_PASSWORD".into() },
            Override { key: "sources[web_1].topic".into(), var: "CARE_SOURCES__WEB_1__TOPIC".into() },
        ];
        let out = annotate(resolved, &toml::from_str(file).unwrap(), &env, &["web-1"]);
        let line = |start: &str| out.lines().find(|l| l.starts_with(start)).unwrap_or_else(|| panic!("{start} in {out}"));
        assert!(line("brokers").ends_with("# file"), "{out}");
        assert!(line("group_id").ends_with("# default"));
        assert!(line("linger_ms").ends_with("# env CARE_KAFKA__LINGER_MS"));
        assert!(line("\"sasl.username\"").ends_with("# file"));
        assert!(line("\"sasl.password\"").ends_with("# env CARE_KAFKA__OPTIONS__SASL_PASSWORD"));
        assert!(line("activity_kinds").ends_with("# default"));
        assert!(line("    \"click\"").ends_with("\"click\","), "inside an array nothing is added: {out}");
        assert!(line("name").ends_with("# file"));
        assert!(line("topic").ends_with("# env CARE_SOURCES__WEB_1__TOPIC"));
        assert!(line("unknown_kinds").ends_with("# default"));
        assert!(line("customer_id").ends_with("# file"));
        assert!(line("ts = ").ends_with("# default"));
        // The output is still the config, in TOML.
        let back: Table = toml::from_str(&out).unwrap();
        assert_eq!(back["sources"][0]["topic"].as_str(), Some("t2"));
    }
}
