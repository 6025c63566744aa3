//! Draws `bench/smtp-throughput.sh`'s results: mails accepted per second against
//! parallel clients for karamail, smtp-sink and aiosmtpd, and karamail's reply latency
//! (from each `250` to its `.eml`) against the same.
//!
//! ```text
//! intake_plot RESULTS.tsv OUT.svg
//! ```
//! RESULTS.tsv: `server clients rate session_p50 session_p99 reply_p50 reply_p99`, one
//! line per run, tab-separated, with a header line.

use plotters::prelude::*;

struct Point {
    server: String,
    clients: f64,
    rate: f64,
    reply_p50: f64,
    reply_p99: f64,
}

fn read(path: &str) -> Vec<Point> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            let number = |i: usize| {
                fields
                    .get(i)
                    .and_then(|f| f.parse().ok())
                    .unwrap_or(f64::NAN)
            };
            Point {
                server: fields[0].to_string(),
                clients: number(1),
                rate: number(2),
                reply_p50: number(5),
                reply_p99: number(6),
            }
        })
        .collect()
}

fn series<'a>(points: &'a [Point], server: &'a str, value: fn(&Point) -> f64) -> Vec<(f64, f64)> {
    points
        .iter()
        .filter(|p| p.server == server && value(p).is_finite())
        .map(|p| (p.clients, value(p)))
        .collect()
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    let (input, output) = match args.as_slice() {
        [_, input, output] => (input, output),
        _ => return Err("usage: intake_plot RESULTS.tsv OUT.svg".into()),
    };
    let points = read(input);
    let most_clients = points.iter().map(|p| p.clients).fold(1.0, f64::max);
    let most_rate = points.iter().map(|p| p.rate).fold(1.0, f64::max);
    let karamail = |value| series(&points, "karamail", value);
    let most_latency = karamail(|p| p.reply_p99)
        .iter()
        .map(|(_, ms)| *ms)
        .fold(1.0, f64::max);

    // plotters draws text with a font it is given (no system font library): the one the
    // postcards and the report's chart use.
    let font = karamail::postcards::japanese_font(&karamail::config::Config::default())?;
    let bytes: &'static [u8] = Box::leak(std::fs::read(&font)?.into_boxed_slice());
    plotters::style::register_font("sans-serif", FontStyle::Normal, bytes)
        .map_err(|_| format!("{}: not a font plotters can use", font.display()))?;

    let root = SVGBackend::new(output, (1200, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let x_range = (1.0..most_clients * 1.1).log_scale();

    let mut rate_chart = ChartBuilder::on(&left)
        .caption("SMTP intake: mails accepted per second", ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range.clone(), 0.0..most_rate * 1.1)?;
    rate_chart
        .configure_mesh()
        .x_desc("parallel clients (one connection per mail)")
        .y_desc("mails/s")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    let colours = [("karamail", RED), ("smtp-sink", BLUE), ("aiosmtpd", GREEN)];
    for (server, colour) in colours {
        let line = series(&points, server, |p| p.rate);
        rate_chart
            .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))?
            .label(server)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour));
        rate_chart.draw_series(
            line.into_iter()
                .map(|xy| Circle::new(xy, 3, colour.filled())),
        )?;
    }
    rate_chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;

    let mut latency_chart = ChartBuilder::on(&right)
        .caption(
            "karamail: from the 250 to the reply's .eml",
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(60)
        .build_cartesian_2d(x_range, 0.0..most_latency * 1.1)?;
    latency_chart
        .configure_mesh()
        .x_desc("parallel clients (one connection per mail)")
        .y_desc("ms")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .draw()?;
    for (label, value, colour) in [
        ("p50", (|p: &Point| p.reply_p50) as fn(&Point) -> f64, RED),
        ("p99", |p: &Point| p.reply_p99, MAGENTA),
    ] {
        let line = karamail(value);
        latency_chart
            .draw_series(LineSeries::new(line.clone(), colour.stroke_width(2)))?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour));
        latency_chart.draw_series(
            line.into_iter()
                .map(|xy| Circle::new(xy, 3, colour.filled())),
        )?;
    }
    latency_chart
        .configure_series_labels()
        .border_style(BLACK)
        .background_style(WHITE.mix(0.8))
        .draw()?;
    root.present()?;
    Ok(())
}
