//! `karamail postcards print`: the postcards CSV of an import or a reissue as a
//! print-ready PDF, and the `--pdf` of those commands.

use std::path::Path;

use anyhow::{Context, bail};

use crate::config::Config;
use crate::members::{self, PdfJob};
use crate::postcards::{self, Printed, Printer, Sheet};
use crate::templates::{Loaded, Templates};

/// What `--pdf` needs, checked before any credential is issued: the fonts, the layout.
pub struct PdfSetup {
    printer: Printer,
    templates: std::sync::Arc<Loaded>,
}

impl PdfSetup {
    pub fn new(config: &Config) -> anyhow::Result<PdfSetup> {
        let printer = Printer::new(config)?;
        let templates = Templates::new(config.site.templates_dir.as_deref())?.get();
        printer.check(&templates)?;
        Ok(PdfSetup { printer, templates })
    }

    pub fn job<'a>(&'a self, path: &'a Path, sheet: Sheet) -> PdfJob<'a> {
        PdfJob {
            path,
            printer: &self.printer,
            templates: &self.templates,
            sheet,
        }
    }
}

pub fn print(config: &Config, file: &Path, out: &Path, sheet: Sheet) -> anyhow::Result<()> {
    if out.exists() {
        bail!(
            "{} already exists; choose a new file name (it may hold passwords not yet printed)",
            out.display()
        );
    }
    let text = super::read_csv(file)?;
    let cards =
        postcards::read_csv(&text).with_context(|| format!("{} not printed", file.display()))?;
    if cards.is_empty() {
        bail!(
            "{}: no postcards in the file; nothing printed",
            file.display()
        );
    }
    let setup = PdfSetup::new(config)?;
    let partial = out.with_extension("pdf.partial");
    let printed = members::print_pdf(&setup.job(out, sheet), &cards, &partial)
        .with_context(|| format!("{} not written", out.display()))?;
    std::fs::rename(&partial, out).with_context(|| format!("cannot write {}", out.display()))?;
    report(out, &printed, &setup);
    Ok(())
}

/// The PDF written, its size in cards and pages, and the cards to check by hand.
pub fn report(path: &Path, printed: &Printed, setup: &PdfSetup) {
    println!(
        "postcards PDF: {} ({} card(s) on {} page(s); fonts {} and {}; holds passwords: print, then delete it)",
        path.display(),
        printed.cards,
        printed.pages,
        setup.printer.fonts()[0].display(),
        setup.printer.fonts()[1].display()
    );
    for warning in &printed.warnings {
        println!("WARNING: {warning}");
    }
}
