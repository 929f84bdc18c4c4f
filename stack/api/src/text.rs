//! Text callers send that people will read later: log lines (cleaned before
//! they are stored) and labels (device names, key descriptions: refused when
//! they hold control characters).
//!
//! A log line is shown in terminals (`turtle`'s CLI, `curl`), where escape
//! sequences act: move the cursor, rewrite the title, hide text, make links
//! (OSC 8), or, on some terminals, answer back. So a stored line holds no
//! escape sequence and no control character but tab: ECMA-48 sequences (CSI
//! `ESC [` ... final byte, OSC `ESC ]` ... BEL or ST, the strings DCS, SOS, PM
//! and APC up to ST, and two-character escapes `ESC` + intermediates + final)
//! are dropped whole, in their 7-bit and C1 forms; line breaks (LF, CR, VT, FF,
//! NEL) become one space; every other C0 or C1 control and DEL is dropped. Then
//! the line is cut to a size (on a character boundary) with a marker.

/// The most bytes of a stored log message (before the truncation marker).
pub const MESSAGE_MAX: usize = 4096;
/// The most bytes of a stored log line's service.
pub const SERVICE_MAX: usize = 255;
/// What ends a message that was cut.
pub const TRUNCATED: &str = " [truncated]";

const ESC: char = '\u{1b}';
const BEL: char = '\u{07}';
/// The C1 String Terminator.
const ST: char = '\u{9c}';

/// `text` as it is stored: no escape sequences or controls but tab, at most
/// `max` bytes (plus [`TRUNCATED`] when cut).
pub fn clean_log_text(text: &str, max: usize) -> String {
    let mut out = String::with_capacity(text.len().min(max + TRUNCATED.len()));
    let mut chars = text.chars().peekable();
    let mut truncated = false;
    while let Some(c) = chars.next() {
        let kept = match c {
            ESC => {
                match chars.next() {
                    Some('[') => skip_csi(&mut chars),
                    Some(']' | 'P' | 'X' | '^' | '_') => skip_string(&mut chars),
                    Some(c) => skip_escape(c, &mut chars),
                    None => {}
                }
                true
            }
            '\u{9b}' => {
                skip_csi(&mut chars);
                true
            }
            '\u{9d}' | '\u{90}' | '\u{98}' | '\u{9e}' | '\u{9f}' => {
                skip_string(&mut chars);
                true
            }
            '\t' => push(&mut out, c, max),
            '\n' | '\r' | '\u{0b}' | '\u{0c}' | '\u{85}' => {
                // A break with no room left cuts nothing yet: the next
                // character kept would.
                if !(out.is_empty() || out.ends_with(' ')) {
                    push(&mut out, ' ', max);
                }
                true
            }
            c if c.is_control() => true,
            c => push(&mut out, c, max),
        };
        if !kept {
            truncated = true;
            break;
        }
    }
    let kept = out.trim_end_matches(' ').len();
    out.truncate(kept);
    if truncated {
        out.push_str(TRUNCATED);
    }
    out
}

/// Appends `c` unless that makes `out` longer than `max` bytes; says whether
/// it did.
fn push(out: &mut String, c: char, max: usize) -> bool {
    if out.len() + c.len_utf8() > max {
        return false;
    }
    out.push(c);
    true
}

/// After `ESC [` (or C1 CSI): parameter bytes 0x30-0x3F, intermediate bytes
/// 0x20-0x2F, then one final byte 0x40-0x7E. Anything else ends the sequence
/// where it stands (and is dropped with it, so a broken sequence leaves no
/// half behind).
fn skip_csi(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(&c) = chars.peek() {
        chars.next();
        match c {
            '\u{20}'..='\u{3f}' => {}
            _ => return,
        }
    }
}

/// After the opener of OSC, DCS, SOS, PM or APC: everything up to BEL, ST
/// (`ESC \` or C1) or the end of the line.
fn skip_string(chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    while let Some(c) = chars.next() {
        match c {
            BEL | ST => return,
            ESC => {
                if chars.peek() == Some(&'\\') {
                    chars.next();
                }
                return;
            }
            _ => {}
        }
    }
}

/// After `ESC` + `first`: intermediates 0x20-0x2F, then one final byte.
fn skip_escape(first: char, chars: &mut std::iter::Peekable<std::str::Chars<'_>>) {
    if !('\u{20}'..='\u{2f}').contains(&first) {
        return;
    }
    for c in chars.by_ref() {
        if !('\u{20}'..='\u{2f}').contains(&c) {
            return;
        }
    }
}

/// Why a label is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LabelError {
    #[error("{field} is longer than {max} bytes: give a shorter one")]
    TooLong { field: &'static str, max: usize },
    #[error(
        "{field} holds a control character ({code}): give plain text (it is shown to admins \
         in terminals)"
    )]
    Control { field: &'static str, code: String },
}

/// Checks a label: at most `max` bytes, no control characters (tab neither).
pub fn check_label(field: &'static str, text: &str, max: usize) -> Result<(), LabelError> {
    if text.len() > max {
        return Err(LabelError::TooLong { field, max });
    }
    match text.chars().find(|c| c.is_control()) {
        Some(c) => Err(LabelError::Control {
            field,
            code: format!("U+{:04X}", c as u32),
        }),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn clean(text: &str) -> String {
        clean_log_text(text, MESSAGE_MAX)
    }

    #[test]
    fn escape_sequences_are_dropped_whole() {
        for (input, stored) in [
            ("\x1b[31mred\x1b[0m plain", "red plain"),
            ("\x1b[2J\x1b[1;1Hcleared", "cleared"),
            ("\x1b[?25lhidden cursor\x1b[?25h", "hidden cursor"),
            ("\x1b]0;evil title\x07after", "after"),
            ("\x1b]0;evil title\x1b\\after", "after"),
            (
                "\x1b]8;;http://evil.example\x1b\\click\x1b]8;;\x1b\\",
                "click",
            ),
            ("\x1bPq#0;2;0;0;0\x1b\\sixel gone", "sixel gone"),
            ("\x1b_apc\x1b\\x", "x"),
            ("\x1b^pm\x07x", "x"),
            ("\x1bXsos\u{9c}x", "x"),
            ("\x1b(Bcharset", "charset"),
            ("\x1b7saved\x1b8", "saved"),
            ("\x1bcreset", "reset"),
            ("\u{9b}31mc1 csi", "c1 csi"),
            ("\u{9d}0;title\u{9c}c1 osc", "c1 osc"),
            ("unterminated \x1b]0;title", "unterminated"),
            ("unterminated \x1b[", "unterminated"),
            ("trailing escape \x1b", "trailing escape"),
        ] {
            assert_eq!(clean(input), stored, "{input:?}");
        }
    }

    #[test]
    fn controls_go_tabs_stay_line_breaks_become_spaces() {
        assert_eq!(clean("a\tb"), "a\tb");
        assert_eq!(clean("line one\nline two\r\n"), "line one line two");
        assert_eq!(clean("10%\r20%\r30%"), "10% 20% 30%");
        assert_eq!(
            clean("bell\x07 back\x08space del\x7f nul\0"),
            "bell backspace del nul"
        );
        assert_eq!(clean("c1\u{85}next \u{80}\u{9f}"), "c1 next");
        assert_eq!(clean("\n\nlead"), "lead");
        assert_eq!(clean("ünïcödé ✓ stays"), "ünïcödé ✓ stays");
        assert_eq!(clean(""), "");
    }

    #[test]
    fn long_lines_are_cut_on_a_character_boundary() {
        let long = "é".repeat(3000);
        let stored = clean(&long);
        assert!(stored.ends_with(TRUNCATED));
        let kept = stored.strip_suffix(TRUNCATED).unwrap();
        assert_eq!(
            kept.len(),
            MESSAGE_MAX,
            "2-byte characters fill 4096 exactly"
        );
        assert!(kept.chars().all(|c| c == 'é'));
        assert_eq!(clean_log_text("abcdef", 3), "abc [truncated]");
        assert_eq!(clean_log_text("abc", 3), "abc");
        assert_eq!(clean_log_text("abc\n", 3), "abc");
        assert_eq!(clean_log_text("ab\ncd", 3), "ab [truncated]");
        // What is dropped does not count.
        assert_eq!(clean_log_text("\x1b[31mabc\x1b[0m", 3), "abc");
    }

    #[test]
    fn labels_refuse_controls_and_length() {
        assert!(check_label("name", "pi in the hall", 253).is_ok());
        let e = check_label("name", "pi\x1b[2J", 253).unwrap_err();
        assert_eq!(
            e.to_string(),
            "name holds a control character (U+001B): give plain text (it is shown to \
             admins in terminals)"
        );
        assert!(check_label("name", "a\tb", 253).is_err());
        let e = check_label("description", &"x".repeat(11), 10).unwrap_err();
        assert!(e.to_string().contains("longer than 10 bytes"), "{e}");
    }
}
