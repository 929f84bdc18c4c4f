//! Shell-style word splitting for string `command:`/`entrypoint:` (what
//! compose does with `shlex`): whitespace separates words, single quotes are
//! literal, double quotes allow `\"`, `\\`, `\$` and `` \` ``, and a
//! backslash outside quotes escapes the next character. No expansion.

/// Splits `s` into words.
pub fn split(s: &str) -> Result<Vec<String>, String> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('\'') => break,
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated single quote in {s:?}")),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next() {
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\' | '$' | '`')) => cur.push(e),
                            Some('\n') => {}
                            Some(e) => {
                                cur.push('\\');
                                cur.push(e);
                            }
                            None => return Err(format!("unterminated double quote in {s:?}")),
                        },
                        Some(c) => cur.push(c),
                        None => return Err(format!("unterminated double quote in {s:?}")),
                    }
                }
            }
            '\\' => {
                in_word = true;
                match chars.next() {
                    Some('\n') | None => {}
                    Some(e) => cur.push(e),
                }
            }
            c => {
                in_word = true;
                cur.push(c);
            }
        }
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn words_and_quotes() {
        assert_eq!(
            split("  echo  hello world ").unwrap(),
            ["echo", "hello", "world"]
        );
        assert_eq!(
            split(r#"sh -c 'echo $HOME && ls' "a \"b\" c" d\ e ''"#).unwrap(),
            ["sh", "-c", "echo $HOME && ls", "a \"b\" c", "d e", ""]
        );
        assert_eq!(split(r#"a"b"'c'"#).unwrap(), ["abc"]);
        assert!(split("'open").is_err());
        assert!(split("\"open").is_err());
        assert!(split("").unwrap().is_empty());
    }
}
