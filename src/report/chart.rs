//! The roll-out chart (plotters): SVG as it is, PNG through our own encoder. Text is
//! set in the postcards' Japanese font, registered with plotters once.

use std::path::Path;

use plotters::prelude::*;

use super::Report;
use crate::error::{Error, Result};

const SIZE: (u32, u32) = (1000, 560);

pub fn draw(report: &Report, path: &Path, font: &Path) -> Result<()> {
    register(font)?;
    let failed =
        |e: &dyn std::fmt::Display| Error::Config(format!("chart {}: {e}", path.display()));
    match path.extension().and_then(|e| e.to_str()) {
        Some("svg") => {
            let root = SVGBackend::new(path, SIZE).into_drawing_area();
            plot(report, &root).map_err(|e| failed(&e))?;
            root.present().map_err(|e| failed(&e))
        }
        Some("png") => {
            let mut pixels = vec![0u8; (SIZE.0 * SIZE.1 * 3) as usize];
            {
                let root = BitMapBackend::with_buffer(&mut pixels, SIZE).into_drawing_area();
                plot(report, &root).map_err(|e| failed(&e))?;
                root.present().map_err(|e| failed(&e))?;
            }
            image::RgbImage::from_raw(SIZE.0, SIZE.1, pixels)
                .expect("the buffer is the image's size")
                .save(path)
                .map_err(|e| failed(&e))
        }
        _ => Err(Error::Config(format!(
            "--chart {}: name it .svg or .png",
            path.display()
        ))),
    }
}

/// plotters keeps fonts for the life of the process: registered once.
fn register(font: &Path) -> Result<()> {
    static REGISTERED: std::sync::OnceLock<std::result::Result<(), String>> =
        std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(|| {
            let bytes = std::fs::read(font).map_err(|e| format!("font {}: {e}", font.display()))?;
            let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
            plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
                .map_err(|_| format!("font {}: not a font plotters can use", font.display()))
        })
        .clone()
        .map_err(Error::Config)
}

type Area<'a, B> = DrawingArea<B, plotters::coord::Shift>;

fn plot<B: DrawingBackend>(report: &Report, root: &Area<'_, B>) -> std::result::Result<(), String>
where
    B::ErrorType: 'static,
{
    let err = |e: &dyn std::fmt::Display| e.to_string();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let weeks = &report.weeks;
    let cumulative = |pick: fn(&super::Week) -> i64| -> Vec<i64> {
        weeks
            .iter()
            .scan(0, |sum, w| {
                *sum += pick(w);
                Some(*sum)
            })
            .collect()
    };
    let series = [
        ("取込(累計)", cumulative(|w| w.imported), BLUE),
        ("登録(累計)", cumulative(|w| w.registered), GREEN),
        ("初ログイン(累計)", cumulative(|w| w.first_logins), RED),
        (
            "利用中(30日)",
            weeks.iter().map(|w| w.active_30d).collect(),
            MAGENTA,
        ),
    ];
    let top = series
        .iter()
        .flat_map(|(_, v, _)| v.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    let last = weeks.len().saturating_sub(1).max(1) as i64;
    let mut chart = ChartBuilder::on(root)
        .caption(
            format!("利用登録の推移 ({} から週ごと)", report.since),
            ("sans-serif", 24),
        )
        .margin(20)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0i64..last, 0i64..top + top / 10 + 1)
        .map_err(|e| err(&e))?;
    let labels: Vec<String> = weeks
        .iter()
        .map(|w| w.week[5..].replace('-', "/"))
        .collect();
    chart
        .configure_mesh()
        .x_labels(labels.len().min(12))
        .x_label_formatter(&|i| labels.get(*i as usize).cloned().unwrap_or_default())
        .y_desc("人数")
        .label_style(("sans-serif", 14))
        .draw()
        .map_err(|e| err(&e))?;
    for (name, values, color) in series {
        chart
            .draw_series(LineSeries::new(
                values.iter().enumerate().map(|(i, v)| (i as i64, *v)),
                color.stroke_width(3),
            ))
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(3))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .label_font(("sans-serif", 16))
        .draw()
        .map_err(|e| err(&e))?;
    Ok(())
}
