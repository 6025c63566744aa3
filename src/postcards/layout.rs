//! The postcard's layout: `templates/postcard.txt`, rendered per member, gives one
//! drawing command a line. Lengths are millimetres from the card's top left corner,
//! type sizes points:
//!
//! ```text
//! text X Y SIZE words…         a line of text, its baseline at Y (Japanese font)
//! right X Y SIZE words…        the same, ending at X
//! mono X Y SIZE words…         in the monospaced font (IDs, passwords)
//! wrap X Y WIDTH SIZE words…   text broken into lines WIDTH wide, 1.5 × SIZE apart
//! qr X Y SIDE                  the QR code of the intake address, SIDE square
//! rect X Y WIDTH HEIGHT        a thin frame
//! line X1 Y1 X2 Y2             a thin line
//! ```
//!
//! Blank lines and lines starting with `#` are skipped.

use super::PostcardError;

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Face {
    Japanese,
    Mono,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Draw {
    Text {
        x: f32,
        y: f32,
        size: f32,
        face: Face,
        right_aligned: bool,
        text: String,
    },
    Wrap {
        x: f32,
        y: f32,
        width: f32,
        size: f32,
        text: String,
    },
    Qr {
        x: f32,
        y: f32,
        side: f32,
    },
    Rect {
        x: f32,
        y: f32,
        width: f32,
        height: f32,
    },
    Line {
        x1: f32,
        y1: f32,
        x2: f32,
        y2: f32,
    },
}

/// A postcard is 100 × 148 mm (はがき); nothing may be drawn outside it.
pub const CARD_MM: (f32, f32) = (100.0, 148.0);

pub fn parse(rendered: &str) -> Result<Vec<Draw>, PostcardError> {
    let mut draws = Vec::new();
    for (index, line) in rendered.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |message: String| PostcardError::Layout {
            line: index + 1,
            message,
        };
        draws.push(parse_line(line).map_err(bad)?);
    }
    Ok(draws)
}

fn parse_line(line: &str) -> Result<Draw, String> {
    let (command, rest) = line.split_once(' ').unwrap_or((line, ""));
    let (numbers, text) = match command {
        "text" | "right" | "mono" => numbers(rest, 3, true)?,
        "wrap" => numbers(rest, 4, true)?,
        "qr" => numbers(rest, 3, false)?,
        "rect" | "line" => numbers(rest, 4, false)?,
        other => {
            // A rendered line may begin with a member's value (a password): only a
            // word that looks like a mistyped command is shown.
            let shown = match other.len() <= 8 && other.bytes().all(|b| b.is_ascii_lowercase()) {
                true => format!(" {other:?}"),
                false => String::new(),
            };
            return Err(format!(
                "unknown command{shown} (a line starts with text, right, mono, wrap, qr, rect or line)"
            ));
        }
    };
    let n = |i: usize| numbers[i];
    let draw = match command {
        "text" | "right" | "mono" => Draw::Text {
            x: n(0),
            y: n(1),
            size: n(2),
            face: if command == "mono" {
                Face::Mono
            } else {
                Face::Japanese
            },
            right_aligned: command == "right",
            text,
        },
        "wrap" => Draw::Wrap {
            x: n(0),
            y: n(1),
            width: n(2),
            size: n(3),
            text,
        },
        "qr" => Draw::Qr {
            x: n(0),
            y: n(1),
            side: n(2),
        },
        "rect" => Draw::Rect {
            x: n(0),
            y: n(1),
            width: n(2),
            height: n(3),
        },
        _ => Draw::Line {
            x1: n(0),
            y1: n(1),
            x2: n(2),
            y2: n(3),
        },
    };
    Ok(draw)
}

/// The first `count` words of `rest` as numbers (positions inside the card, sizes
/// 1–72), and what follows as text when `with_text`.
fn numbers(rest: &str, count: usize, with_text: bool) -> Result<(Vec<f32>, String), String> {
    let mut words = rest.trim_start().splitn(count + 1, ' ');
    let mut numbers = Vec::with_capacity(count);
    for i in 0..count {
        let word = words.next().unwrap_or("").trim();
        let value: f32 = word
            .parse()
            .ok()
            .filter(|v: &f32| v.is_finite() && *v >= 0.0 && *v <= CARD_MM.1)
            .ok_or_else(|| {
                format!(
                    "expected {count} numbers (mm from the top left, at most 148); word {} is not one",
                    i + 1
                )
            })?;
        numbers.push(value);
    }
    let text = words.next().unwrap_or("").trim().to_string();
    match (with_text, text.is_empty()) {
        (false, false) => Err("unexpected text after the numbers".into()),
        _ => Ok((numbers, text)),
    }
}

/// Makes a member's value safe to put on a layout line: control characters (a line
/// break in a name would start a command of its own) become spaces.
pub fn one_line(value: &str) -> String {
    value
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_parse_with_their_text() {
        let draws = parse(
            "# comment\n\ntext 8 12 9 けんこう 健康保険組合\nqr 8 60 30\nmono 10 50 16 AB12\n",
        )
        .unwrap();
        assert_eq!(draws.len(), 3);
        assert_eq!(
            draws[0],
            Draw::Text {
                x: 8.0,
                y: 12.0,
                size: 9.0,
                face: Face::Japanese,
                right_aligned: false,
                text: "けんこう 健康保険組合".into()
            }
        );
        assert_eq!(
            draws[1],
            Draw::Qr {
                x: 8.0,
                y: 60.0,
                side: 30.0
            }
        );
    }

    #[test]
    fn mistakes_are_named_by_line() {
        let err = parse("text 1 2 3 ok\nqr 1 2\n").unwrap_err().to_string();
        assert!(err.contains("line 2"), "{err}");
        let err = parse("circle 1 2 3\n").unwrap_err().to_string();
        assert!(err.contains("unknown command \"circle\""), "{err}");
        let err = parse("rect 1 2 3 4 extra\n").unwrap_err().to_string();
        assert!(err.contains("unexpected"), "{err}");
        assert!(parse("line 1 2 3 900\n").is_err(), "outside the card");
    }

    #[test]
    fn a_line_break_in_a_name_cannot_start_a_command() {
        let name = one_line("山田\nqr 0 0 100");
        let draws = parse(&format!("text 8 30 11 {name} 様\n")).unwrap();
        assert_eq!(draws.len(), 1);
    }
}
