//! Query strings: `name=value` pairs joined by `&`, every byte but the unreserved
//! ones (RFC 3986: `A-Z a-z 0-9 - . _ ~`) percent-encoded, so a time with `+` or
//! a scope with `:` and spaces arrives as written.

use std::fmt::{Display, Write};

/// A query string being built.
#[derive(Default)]
pub(crate) struct Query(String);

impl Query {
    /// Adds `name=value`.
    pub(crate) fn pair(&mut self, name: &str, value: &str) {
        if !self.0.is_empty() {
            self.0.push('&');
        }
        self.0.push_str(&encode(name));
        self.0.push('=');
        self.0.push_str(&encode(value));
    }

    /// Adds `name=value` when there is a value.
    pub(crate) fn opt<T: Display>(&mut self, name: &str, value: Option<T>) {
        if let Some(v) = value {
            self.pair(name, &v.to_string());
        }
    }

    pub(crate) fn finish(self) -> String {
        self.0
    }
}

/// Percent-encodes every byte but the unreserved ones.
pub(crate) fn encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            write!(out, "%{b:02X}").expect("writing to a String cannot fail");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unreserved_bytes_stay_others_are_encoded() {
        assert_eq!(encode("aZ09-._~"), "aZ09-._~");
        assert_eq!(encode("a b+c/é"), "a%20b%2Bc%2F%C3%A9");
        let mut q = Query::default();
        q.opt::<i64>("none", None);
        q.pair("a", "1");
        q.opt("b", Some(2));
        assert_eq!(q.finish(), "a=1&b=2");
    }
}
