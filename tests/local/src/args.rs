//! Flags as `--name value` or `--name=value`, each known by name.

use std::collections::HashMap;

use crate::{Failure, Result};

/// Parsed flags and positional arguments.
pub struct Args {
    flags: HashMap<String, String>,
    positional: Vec<String>,
}

impl Args {
    /// Reads `argv` against the known flag names and the number of positionals.
    pub fn parse(argv: &[String], known: &[&str], positionals: usize) -> Result<Self> {
        let mut flags = HashMap::new();
        let mut positional = Vec::new();
        let mut iter = argv.iter();
        while let Some(arg) = iter.next() {
            let Some(body) = arg.strip_prefix("--") else {
                if positional.len() < positionals {
                    positional.push(arg.clone());
                    continue;
                }
                return Err(Failure(format!("unexpected argument `{arg}` (see --help)")));
            };
            let (name, value) = match body.split_once('=') {
                Some((name, value)) => (name.to_owned(), value.to_owned()),
                None => {
                    let value = iter.next().ok_or_else(|| Failure(format!("`--{body}` needs a value")))?;
                    (body.to_owned(), value.clone())
                }
            };
            if !known.contains(&name.as_str()) {
                return Err(Failure(format!("unknown flag `--{name}` (known: --{})", known.join(", --"))));
            }
            flags.insert(name, value);
        }
        if positional.len() < positionals {
            return Err(Failure(format!("expected {positionals} argument(s) before the flags")));
        }
        Ok(Args { flags, positional })
    }

    /// A flag's value, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.flags.get(name).map(String::as_str)
    }

    /// A required flag.
    pub fn required(&self, name: &str) -> Result<&str> {
        self.get(name).filter(|v| !v.is_empty()).ok_or_else(|| Failure(format!("`--{name}` is required")))
    }

    /// A whole number, or `default`.
    pub fn number(&self, name: &str, default: u64) -> Result<u64> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v.trim().parse().map_err(|_| Failure(format!("`--{name}`: not a whole number: `{v}`"))),
        }
    }

    /// The `i`-th positional argument.
    pub fn positional(&self, i: usize) -> Result<&str> {
        self.positional.get(i).map(String::as_str).ok_or_else(|| Failure("missing argument".to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn flags_and_positionals() {
        let args =
            Args::parse(&argv(&["http://x", "--method", "POST", "--timeout-secs=3"]), &["method", "timeout-secs"], 1)
                .expect("parses");
        assert_eq!(args.positional(0).ok(), Some("http://x"));
        assert_eq!(args.get("method"), Some("POST"));
        assert_eq!(args.number("timeout-secs", 9).ok(), Some(3));
        assert_eq!(args.number("other", 9).ok(), Some(9));
    }

    #[test]
    fn refusals() {
        assert!(Args::parse(&argv(&["--nope", "1"]), &["table"], 0).is_err());
        assert!(Args::parse(&argv(&["--table"]), &["table"], 0).is_err());
        assert!(Args::parse(&argv(&["stray"]), &["table"], 0).is_err());
        assert!(Args::parse(&argv(&[]), &["table"], 1).is_err());
        let args = Args::parse(&argv(&["--table", "t"]), &["table"], 0).expect("parses");
        assert!(args.required("secret-id").is_err());
        assert!(args.number("table", 1).is_err());
    }
}
