//! The confusion matrix as a PNG: one square per (true, predicted) pair, shaded by the share
//! of the true class it holds (diagonal blue, errors red) and labelled with its count when the
//! square is large enough; drawn with plotters and the font the sweep plots embed.

use std::path::Path;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::Confusion;

/// Room for the title above the squares.
const TOP: u32 = 46;
/// Room for the class labels and the axis name left of and below the squares.
const LEFT: u32 = 76;
const BOTTOM: u32 = 56;
const RIGHT: u32 = 24;
/// The squares together span about this many pixels, whatever the number of classes …
const GRID: u32 = 560;
/// … but a square is never smaller than this (many classes make a larger picture) nor larger
/// than that (two classes do not fill the page).
const MIN_CELL: u32 = 4;
const MAX_CELL: u32 = 80;
/// Squares smaller than this get no count written in them (it would not fit).
const MIN_LABELLED_CELL: u32 = 22;

/// The side of one square for `classes` classes.
fn cell(classes: usize) -> u32 {
    (GRID / classes.max(1) as u32).clamp(MIN_CELL, MAX_CELL)
}

/// Width and height in pixels of the picture of a `classes` × `classes` matrix.
pub fn size(classes: usize) -> (u32, u32) {
    let grid = cell(classes) * classes.max(1) as u32;
    (LEFT + grid + RIGHT, TOP + grid + BOTTOM)
}

/// White shading to `full` as `share` goes from 0 to 1.
fn shade(full: (u8, u8, u8), share: f64) -> RGBColor {
    let mix = |c: u8| (255.0 - (255.0 - c as f64) * share.clamp(0.0, 1.0)).round() as u8;
    RGBColor(mix(full.0), mix(full.1), mix(full.2))
}

/// Correct predictions: a dark blue; errors: a dark red (so that confusions stand out).
const RIGHT_COLOUR: (u8, u8, u8) = (31, 91, 160);
const WRONG_COLOUR: (u8, u8, u8) = (190, 30, 30);

/// Writes the picture of `confusion` (class names from `labels`) to `path`.
pub fn write(
    path: &Path,
    title: &str,
    labels: &[i64],
    confusion: &Confusion,
) -> Result<(), String> {
    if confusion.classes() == 0 {
        return Err(format!("{}: no classes to draw", path.display()));
    }
    crate::compare::plot::register_font();
    crate::compare::plot::write_png(path, size(confusion.classes()), |root| {
        draw(&root, title, labels, confusion)
    })
}

fn draw<DB: DrawingBackend>(
    root: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    labels: &[i64],
    confusion: &Confusion,
) -> Result<(), String> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
    root.fill(&WHITE).map_err(err)?;
    let k = confusion.classes();
    let side = cell(k) as i32;
    let (left, top) = (LEFT as i32, TOP as i32);
    let grid = side * k as i32;
    let centred = |px: u32| {
        ("sans-serif", px)
            .into_font()
            .color(&BLACK)
            .pos(Pos::new(HPos::Center, VPos::Center))
    };
    root.draw(&Text::new(
        title.to_string(),
        (left + grid / 2, top / 2),
        centred(18),
    ))
    .map_err(err)?;
    let name = |c: usize| {
        labels
            .get(c)
            .map_or_else(|| c.to_string(), |l| l.to_string())
    };
    // Class names only where they fit: every n-th one when the squares are small.
    let label_px = (side - 2).clamp(8, 14) as u32;
    let every = (14 / side.max(1) + 1) as usize;
    for (t, row) in confusion.counts.iter().enumerate() {
        let total: usize = row.iter().sum();
        for (p, &n) in row.iter().enumerate() {
            let share = if total > 0 {
                n as f64 / total as f64
            } else {
                0.0
            };
            let colour = shade(if t == p { RIGHT_COLOUR } else { WRONG_COLOUR }, share);
            let (x, y) = (left + p as i32 * side, top + t as i32 * side);
            root.draw(&Rectangle::new(
                [(x, y), (x + side, y + side)],
                colour.filled(),
            ))
            .map_err(err)?;
            if cell(k) >= MIN_LABELLED_CELL && n > 0 {
                let ink = if share > 0.5 { WHITE } else { BLACK };
                let style = centred(label_px.min(12)).color(&ink);
                root.draw(&Text::new(
                    n.to_string(),
                    (x + side / 2, y + side / 2),
                    style,
                ))
                .map_err(err)?;
            }
        }
        if t % every == 0 {
            let y = top + t as i32 * side + side / 2;
            let style = ("sans-serif", label_px)
                .into_font()
                .color(&BLACK)
                .pos(Pos::new(HPos::Right, VPos::Center));
            root.draw(&Text::new(name(t), (left - 6, y), style))
                .map_err(err)?;
            let x = left + t as i32 * side + side / 2;
            root.draw(&Text::new(name(t), (x, top + grid + 12), centred(label_px)))
                .map_err(err)?;
        }
    }
    root.draw(&Rectangle::new(
        [(left, top), (left + grid, top + grid)],
        BLACK,
    ))
    .map_err(err)?;
    root.draw(&Text::new(
        "predicted class".to_string(),
        (left + grid / 2, top + grid + 36),
        centred(14),
    ))
    .map_err(err)?;
    let vertical = ("sans-serif", 14)
        .into_font()
        .transform(FontTransform::Rotate270)
        .color(&BLACK)
        .pos(Pos::new(HPos::Center, VPos::Center));
    root.draw(&Text::new(
        "true class".to_string(),
        (16, top + grid / 2),
        vertical,
    ))
    .map_err(err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The RGB pixel at (x, y) of a decoded PNG.
    fn pixel(path: &Path, x: u32, y: u32) -> (u32, u32, [u8; 3]) {
        let mut reader = ::png::Decoder::new(std::fs::File::open(path).unwrap())
            .read_info()
            .unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        let frame = reader.next_frame(&mut buf).unwrap();
        assert_eq!(frame.color_type, ::png::ColorType::Rgb);
        let i = 3 * (y * frame.width + x) as usize;
        (frame.width, frame.height, [buf[i], buf[i + 1], buf[i + 2]])
    }

    #[test]
    fn squares_are_shaded_by_the_share_of_their_class() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        let mut c = Confusion::new(10);
        for t in 0..10 {
            c.counts[t][t] = 90;
            c.counts[t][(t + 1) % 10] = 10;
        }
        write(&path, "test", &(0..10).collect::<Vec<_>>(), &c).unwrap();
        let side = cell(10);
        // A corner of each square, away from the count written in its middle.
        let at = |t: u32, p: u32| pixel(&path, LEFT + p * side + 2, TOP + t * side + 2);
        let (w, h, diagonal) = at(3, 3);
        assert_eq!((w, h), size(10));
        let (_, _, error) = at(3, 4);
        let (_, _, empty) = at(3, 7);
        assert!(
            diagonal[2] > diagonal[0] + 60,
            "mostly right: dark blue {diagonal:?}"
        );
        assert!(
            error[0] > error[2] && error[1] > 200,
            "10%: light red {error:?}"
        );
        assert_eq!(empty, [255, 255, 255]);
    }

    #[test]
    fn many_classes_make_a_larger_picture_and_none_are_refused() {
        assert_eq!(size(10), (LEFT + 560 + RIGHT, TOP + 560 + BOTTOM));
        assert_eq!(size(1000).0, LEFT + 4000 + RIGHT);
        let dir = tempfile::tempdir().unwrap();
        let e = write(&dir.path().join("c.png"), "t", &[], &Confusion::new(0)).unwrap_err();
        assert!(e.contains("no classes"), "{e}");
    }
}
