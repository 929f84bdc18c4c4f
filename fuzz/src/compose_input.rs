//! The text format of a `compose_load` input: one or more files, the process
//! environment and profiles, in one text. Directives are lines starting with
//! `#@ ` (YAML comments, so a plain compose file is an input as it is):
//!
//! ```text
//! services: ...            lines before the first directive: compose.yaml, the first -f file
//! #@ -f other.yaml         the lines that follow are other.yaml, loaded as the next -f file
//! #@ file common/base.yaml the lines that follow are that file, reached only by reference
//!                          (extends, include, env_file, .env)
//! #@ env TAG=1.2           a process environment variable
//! #@ profile debug         a --profile
//! #@ allow-unknown-keys     --allow-unknown-keys
//! ```
//!
//! Paths are relative to the project directory [`PROJECT_DIR`], or absolute;
//! all of them live in memory (`turtle_compose::load_in_memory`).

use std::collections::HashMap;
use std::path::PathBuf;

/// The working and project directory of every input (in memory only).
pub const PROJECT_DIR: &str = "/fuzz/project";

/// One input, split.
#[derive(Debug, Default, PartialEq)]
pub struct ComposeInput {
    /// Every file, by path as written.
    pub files: Vec<(PathBuf, String)>,
    /// The `-f` files, in order.
    pub load: Vec<PathBuf>,
    pub env: HashMap<String, String>,
    pub profiles: Vec<String>,
    pub allow_unknown_keys: bool,
}

impl ComposeInput {
    pub fn parse(text: &str) -> ComposeInput {
        let mut input = ComposeInput::default();
        let mut path = PathBuf::from("compose.yaml");
        input.load.push(path.clone());
        let mut body = String::new();
        for line in text.split_inclusive('\n') {
            let Some(directive) = line.strip_prefix("#@ ") else {
                body.push_str(line);
                continue;
            };
            let directive = directive.trim_end_matches(['\n', '\r']);
            let (word, rest) = directive.split_once(' ').unwrap_or((directive, ""));
            match word {
                "-f" | "file" => {
                    input
                        .files
                        .push((std::mem::replace(&mut path, rest.into()), body));
                    body = String::new();
                    if word == "-f" {
                        input.load.push(path.clone());
                    }
                }
                "env" => {
                    let (k, v) = rest.split_once('=').unwrap_or((rest, ""));
                    input.env.insert(k.into(), v.into());
                }
                "profile" => input.profiles.push(rest.into()),
                "allow-unknown-keys" => input.allow_unknown_keys = true,
                _ => body.push_str(line),
            }
        }
        input.files.push((path, body));
        input
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directives_split_files_env_and_profiles() {
        let text = "services: {}\n#@ env A=1\n#@ -f o.yaml\nx: 1\n#@ profile p\n\
                    #@ file .env\nB=2\n#@ unknown stays\n#@ allow-unknown-keys\n";
        let input = ComposeInput::parse(text);
        assert_eq!(
            input.files,
            vec![
                ("compose.yaml".into(), "services: {}\n".into()),
                ("o.yaml".into(), "x: 1\n".into()),
                (".env".into(), "B=2\n#@ unknown stays\n".into()),
            ]
        );
        assert_eq!(
            input.load,
            vec![PathBuf::from("compose.yaml"), "o.yaml".into()]
        );
        assert_eq!(input.env, HashMap::from([("A".into(), "1".into())]));
        assert_eq!(input.profiles, vec!["p".to_string()]);
        assert!(input.allow_unknown_keys);
    }
}
