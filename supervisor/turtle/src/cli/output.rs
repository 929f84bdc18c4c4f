//! Printing apply progress: a spinner per step on a terminal, plain lines otherwise.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use turtle_runtime::apply::Event;

pub struct Printer {
    bars: Option<(MultiProgress, Mutex<HashMap<usize, ProgressBar>>)>,
}

impl Printer {
    pub fn new() -> Self {
        let tty = std::io::stderr().is_terminal();
        Self {
            bars: tty.then(|| (MultiProgress::new(), Mutex::new(HashMap::new()))),
        }
    }

    pub fn event(&self, e: Event) {
        let Some((multi, bars)) = &self.bars else {
            match e {
                Event::Started { .. } => {}
                Event::Done { what, millis, .. } => eprintln!(" ✔ {what} ({millis} ms)"),
                Event::Failed { what, error, .. } => eprintln!(" ✘ {what}: {error}"),
                Event::Progress { line, .. } => eprintln!("   {line}"),
                Event::Ready { .. } => eprintln!("   {}", ready_line(&e)),
                Event::Release { line } => eprintln!(" • {line}"),
            }
            return;
        };
        let mut bars = bars.lock().unwrap();
        match e {
            Event::Started { step, what } => {
                let pb = multi.add(ProgressBar::new_spinner());
                pb.set_style(
                    ProgressStyle::with_template(" {spinner} {prefix} {wide_msg}")
                        .expect("valid template"),
                );
                pb.set_prefix(what);
                pb.enable_steady_tick(Duration::from_millis(120));
                bars.insert(step, pb);
            }
            Event::Progress { step, line } => {
                if let Some(pb) = bars.get(&step) {
                    pb.set_message(line);
                }
            }
            Event::Release { line } => {
                let _ = multi.println(format!(" • {line}"));
            }
            Event::Ready { step, .. } => {
                if let Some(pb) = bars.get(&step) {
                    pb.set_message(ready_line(&e));
                }
            }
            Event::Done { step, what, millis } => {
                if let Some(pb) = bars.remove(&step) {
                    pb.set_style(
                        ProgressStyle::with_template(" ✔ {prefix} {wide_msg}")
                            .expect("valid template"),
                    );
                    pb.finish_with_message(format!("({millis} ms)"));
                } else {
                    eprintln!(" ✔ {what} ({millis} ms)");
                }
            }
            Event::Failed { step, what, error } => {
                if let Some(pb) = bars.remove(&step) {
                    pb.set_style(
                        ProgressStyle::with_template(" ✘ {prefix} {wide_msg}")
                            .expect("valid template"),
                    );
                    pb.finish_with_message(error);
                } else {
                    eprintln!(" ✘ {what}: {error}");
                }
            }
        }
    }
}

/// `db-1 healthy (probed after 0.4 s)`.
fn ready_line(e: &Event) -> String {
    e.became().map(|b| b.to_string()).unwrap_or_default()
}
