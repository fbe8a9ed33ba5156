//! The chart: calls per second (ok, failed) above, p50/p99 latency below, each fault a
//! vertical line in both. One drawing, two backends:
//!
//! - SVG needs no font (text is left to the viewer), so it renders the same anywhere;
//! - PNG is drawn by plotters' `BitMapBackend` into a buffer and encoded with `png`. Its text is
//!   rasterised with `ab_glyph` from a TrueType font read from the system at run time
//!   ([`FONT_ENV`], else DejaVu Sans and a few fallbacks), through [`WithFont`], a backend
//!   wrapper. (Plotters' own `ab_glyph` feature would also route the SVG's text layout through
//!   a registered font, so the SVG would fail wherever no font is installed.)

use std::error::Error;
use std::path::{Path, PathBuf};

use ab_glyph::{Font, FontVec, PxScale, ScaleFont};
use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, VPos};
use plotters_backend::{BackendColor, BackendCoord, BackendTextStyle, DrawingErrorKind};

use crate::error::{DrillError, Result};
use crate::report::Report;

/// The chart's size in pixels (SVG user units for the SVG).
const SIZE: (u32, u32) = (1000, 640);

/// Environment variable naming the TrueType font of the PNG chart's text.
pub const FONT_ENV: &str = "TANDEM_CHART_FONT";

/// Where the PNG chart looks for a font when [`FONT_ENV`] is unset, in order.
pub(crate) const FONT_PATHS: &[&str] = &[
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", // Debian, Ubuntu: fonts-dejavu-core
    "/usr/share/fonts/TTF/DejaVuSans.ttf",             // Arch
    "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf", // Fedora
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",          // Alpine, older Fedora
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial.ttf", // macOS
];

/// Writes the chart of `report` to `path` (SVG).
pub fn write_svg(report: &Report, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    draw(root, report).map_err(|e| DrillError::Report(format!("chart: {e}")))
}

/// Writes the chart of `report` to `path` (PNG, 1000×640 RGB).
///
/// Fails with [`DrillError::ChartFont`] when no font can be read (install `fonts-dejavu-core`
/// or set [`FONT_ENV`]): a caller can treat that one as a warning and keep the SVG.
pub fn write_png(report: &Report, path: &Path) -> Result<()> {
    let env = std::env::var_os(FONT_ENV).map(PathBuf::from);
    let font = load_font(env.as_deref(), FONT_PATHS)?;
    let (w, h) = SIZE;
    let mut rgb = vec![0u8; w as usize * h as usize * 3];
    {
        let bitmap = BitMapBackend::with_buffer(&mut rgb, SIZE);
        let root = WithFont::new(bitmap, &font).into_drawing_area();
        draw(root, report).map_err(|e| DrillError::Report(format!("chart: {e}")))?;
    }
    let file = std::fs::File::create(path)
        .map_err(DrillError::io(format!("creating {}", path.display())))?;
    let mut encoder = png::Encoder::new(std::io::BufWriter::new(file), w, h);
    encoder.set_color(png::ColorType::Rgb);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut png| png.write_image_data(&rgb))
        .map_err(|e| DrillError::Report(format!("chart {}: {e}", path.display())))
}

/// Reads the font at `chosen` (from [`FONT_ENV`]) if given, else the first of `fallbacks` that
/// exists.
pub(crate) fn load_font(chosen: Option<&Path>, fallbacks: &[&str]) -> Result<FontVec> {
    let path = match chosen {
        Some(p) => p.to_owned(),
        None => fallbacks
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                DrillError::ChartFont(format!(
                    "no font found for the PNG chart (looked for {}); install fonts-dejavu-core \
                     or set {FONT_ENV} to a .ttf file",
                    fallbacks.join(", ")
                ))
            })?,
    };
    let bytes = std::fs::read(&path).map_err(|e| {
        DrillError::ChartFont(format!(
            "{}: {e} (install fonts-dejavu-core or set {FONT_ENV} to a .ttf file)",
            path.display()
        ))
    })?;
    FontVec::try_from_vec(bytes)
        .map_err(|e| DrillError::ChartFont(format!("{}: not a TrueType font: {e}", path.display())))
}

type DrawResult = std::result::Result<(), Box<dyn Error>>;

fn draw<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, report: &Report) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(SIZE.1 / 2);
    let x_max = report.duration_secs.max(1) as f64;
    let tl = &report.timeline;

    let calls_max = tl.iter().map(|s| s.ok + s.failed).max().unwrap_or(1).max(1) as f64;
    let mut c = ChartBuilder::on(&top)
        .caption(
            format!("drill {}: calls per second", report.scenario),
            ("sans-serif", 18),
        )
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max, 0f64..calls_max * 1.2)?;
    c.configure_mesh().x_desc("s").y_desc("calls").draw()?;
    let ok = tl.iter().map(|s| (s.t as f64, s.ok as f64));
    c.draw_series(LineSeries::new(ok, GREEN.stroke_width(2)))?
        .label("ok")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], GREEN));
    let failed = tl.iter().map(|s| (s.t as f64, s.failed as f64));
    c.draw_series(LineSeries::new(failed, RED.stroke_width(2)))?
        .label("failed")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], RED));
    for f in &report.faults {
        let color = if f.disruptive { &MAGENTA } else { &BLUE };
        c.draw_series(LineSeries::new(
            [(f.at_secs, 0.0), (f.at_secs, calls_max * 1.2)],
            color.stroke_width(1),
        ))?;
        c.draw_series(std::iter::once(Text::new(
            format!("{} {}", f.action, f.region),
            (f.at_secs + 0.3, calls_max * 1.12),
            ("sans-serif", 12).into_font().color(color),
        )))?;
    }
    c.configure_series_labels()
        .border_style(BLACK)
        .position(SeriesLabelPosition::LowerRight)
        .draw()?;

    let lat_max = tl.iter().filter_map(|s| s.p99_ms).fold(1.0f64, f64::max);
    let mut c = ChartBuilder::on(&bottom)
        .caption("latency (ms)", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(64)
        .build_cartesian_2d(0f64..x_max, 0f64..lat_max * 1.1)?;
    c.configure_mesh().x_desc("s").y_desc("ms").draw()?;
    for (name, color, pick) in [
        (
            "p50",
            &BLUE,
            (|s: &crate::report::Second| s.p50_ms) as fn(&_) -> _,
        ),
        ("p99", &RGBColor(230, 120, 0), |s| s.p99_ms),
    ] {
        let pts: Vec<(f64, f64)> = tl
            .iter()
            .filter_map(|s| pick(s).map(|v| (s.t as f64, v)))
            .collect();
        let color = *color;
        c.draw_series(LineSeries::new(pts, color.stroke_width(2)))?
            .label(name)
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
    }
    for f in &report.faults {
        let color = if f.disruptive { &MAGENTA } else { &BLUE };
        c.draw_series(LineSeries::new(
            [(f.at_secs, 0.0), (f.at_secs, lat_max * 1.1)],
            color.stroke_width(1),
        ))?;
    }
    c.configure_series_labels()
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .draw()?;
    root.present()?;
    Ok(())
}

/// A backend that draws everything through `inner` but measures and rasterises text with
/// `font` (every family and style: the chart only uses one), honouring anchors and rotations.
struct WithFont<'f, B> {
    inner: B,
    font: &'f FontVec,
}

impl<'f, B> WithFont<'f, B> {
    fn new(inner: B, font: &'f FontVec) -> Self {
        Self { inner, font }
    }

    /// Width and height of `text` at `size` pixels (ascent to descent).
    fn measure(&self, size: f64, text: &str) -> (i32, i32) {
        let font = self.font.as_scaled(PxScale::from(size as f32));
        let mut width = 0.0f32;
        let mut prev = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                width += font.kern(p, id);
            }
            width += font.h_advance(id);
            prev = Some(id);
        }
        (width.ceil() as i32, font.height().ceil() as i32)
    }
}

type BackendResult<B> = std::result::Result<(), DrawingErrorKind<<B as DrawingBackend>::ErrorType>>;

impl<B: DrawingBackend> DrawingBackend for WithFont<'_, B> {
    type ErrorType = B::ErrorType;

    fn get_size(&self) -> (u32, u32) {
        self.inner.get_size()
    }

    fn ensure_prepared(&mut self) -> BackendResult<B> {
        self.inner.ensure_prepared()
    }

    fn present(&mut self) -> BackendResult<B> {
        self.inner.present()
    }

    fn draw_pixel(&mut self, point: BackendCoord, color: BackendColor) -> BackendResult<B> {
        self.inner.draw_pixel(point, color)
    }

    fn draw_line<S: plotters_backend::BackendStyle>(
        &mut self,
        from: BackendCoord,
        to: BackendCoord,
        style: &S,
    ) -> BackendResult<B> {
        self.inner.draw_line(from, to, style)
    }

    fn draw_rect<S: plotters_backend::BackendStyle>(
        &mut self,
        upper_left: BackendCoord,
        bottom_right: BackendCoord,
        style: &S,
        fill: bool,
    ) -> BackendResult<B> {
        self.inner.draw_rect(upper_left, bottom_right, style, fill)
    }

    fn draw_path<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        path: I,
        style: &S,
    ) -> BackendResult<B> {
        self.inner.draw_path(path, style)
    }

    fn draw_circle<S: plotters_backend::BackendStyle>(
        &mut self,
        center: BackendCoord,
        radius: u32,
        style: &S,
        fill: bool,
    ) -> BackendResult<B> {
        self.inner.draw_circle(center, radius, style, fill)
    }

    fn fill_polygon<S: plotters_backend::BackendStyle, I: IntoIterator<Item = BackendCoord>>(
        &mut self,
        vert: I,
        style: &S,
    ) -> BackendResult<B> {
        self.inner.fill_polygon(vert, style)
    }

    fn blit_bitmap(&mut self, pos: BackendCoord, size: (u32, u32), src: &[u8]) -> BackendResult<B> {
        self.inner.blit_bitmap(pos, size, src)
    }

    fn estimate_text_size<S: BackendTextStyle>(
        &self,
        text: &str,
        style: &S,
    ) -> std::result::Result<(u32, u32), DrawingErrorKind<Self::ErrorType>> {
        let (w, h) = self.measure(style.size(), text);
        Ok((w.unsigned_abs(), h.unsigned_abs()))
    }

    fn draw_text<S: BackendTextStyle>(
        &mut self,
        text: &str,
        style: &S,
        pos: BackendCoord,
    ) -> BackendResult<B> {
        let color = style.color();
        if color.alpha == 0.0 {
            return Ok(());
        }
        let (width, height) = self.measure(style.size(), text);
        let dx = match style.anchor().h_pos {
            HPos::Left => 0,
            HPos::Center => -width / 2,
            HPos::Right => -width,
        };
        let dy = match style.anchor().v_pos {
            VPos::Top => 0,
            VPos::Center => -height / 2,
            VPos::Bottom => -height,
        };
        let font = self.font.as_scaled(PxScale::from(style.size() as f32));
        let trans = style.transform();
        let (w, h) = self.get_size();
        // Glyph pixels relative to the text box's top left, with their coverage.
        let mut pixels = Vec::new();
        let mut caret = 0.0f32;
        let mut prev = None;
        for c in text.chars() {
            let id = font.glyph_id(c);
            if let Some(p) = prev {
                caret += font.kern(p, id);
            }
            let glyph =
                id.with_scale_and_position(font.scale(), ab_glyph::point(caret, font.ascent()));
            if let Some(outline) = font.outline_glyph(glyph) {
                let bounds = outline.px_bounds();
                outline.draw(|x, y, coverage| {
                    let px = bounds.min.x as i32 + x as i32;
                    let py = bounds.min.y as i32 + y as i32;
                    pixels.push((px, py, coverage));
                });
            }
            caret += font.h_advance(id);
            prev = Some(id);
        }
        for (x, y, coverage) in pixels {
            if coverage <= 0.0 {
                continue;
            }
            let (x, y) = trans.transform(x + dx, y + dy);
            let (x, y) = (pos.0 + x, pos.1 + y);
            if x >= 0 && x < w as i32 && y >= 0 && y < h as i32 {
                let alpha = color.alpha * f64::from(coverage.min(1.0));
                self.inner.draw_pixel(
                    (x, y),
                    BackendColor {
                        alpha,
                        rgb: color.rgb,
                    },
                )?;
            }
        }
        Ok(())
    }
}
