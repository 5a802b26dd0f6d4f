//! The report's horizontal bar charts, drawn as SVG with plotters' primitives at pixel coordinates.
//! A cartesian chart put each category label on a tick between two bars and its value on the next
//! row, and shrank labels to a few pixels when there was nothing to plot; here every row is laid out
//! by hand: label, bar and value share the bar's vertical centre, text is at least [`MIN_FONT_PX`],
//! rows set aside (rejected records, which are not a funnel stage) come under a rule in another
//! colour, and an empty chart says why it is empty.

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// The smallest font size in the charts, in SVG pixels (labels and values).
pub const MIN_FONT_PX: f64 = 14.0;
/// The text of an empty chart, before its note.
pub const NO_DATA: &str = "no data";

const WIDTH: u32 = 760;
/// Left of the bars: room for labels such as "original_passed" at 14 px.
const LEFT: i32 = 200;
/// Right of the longest bar: room for its value.
const RIGHT: i32 = 80;
const TITLE_H: i32 = 52;
const ROW: i32 = 34;
const BAR: i32 = 24;
/// The gap and rule between the stages and the rows set aside.
const GAP: i32 = 18;
const BOTTOM: i32 = 16;

/// What one chart shows.
pub struct BarChart<'a> {
    /// The caption.
    pub title: &'a str,
    /// The main rows, top to bottom.
    pub rows: &'a [(String, u64)],
    /// Rows drawn apart, under a rule and in another colour, on the same scale (e.g. rejected records).
    pub aside: &'a [(String, u64)],
    /// Shown under [`NO_DATA`] when every main row is zero or there is none.
    pub empty_note: &'a str,
}

// plotters' SVG backend writes `font-size` as the requested size / 1.24.
fn font(px: f64) -> f64 {
    px * 1.24
}

impl BarChart<'_> {
    /// Whether there is anything to draw.
    pub fn is_empty(&self) -> bool {
        self.rows.iter().all(|r| r.1 == 0)
    }

    /// The chart as an SVG document.
    pub fn to_svg(&self) -> Result<String, String> {
        let aside_h = if self.aside.is_empty() { 0 } else { GAP + ROW * self.aside.len() as i32 };
        let body = if self.is_empty() { 2 * ROW } else { ROW * self.rows.len() as i32 + aside_h };
        let height = (TITLE_H + body + BOTTOM) as u32;
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, height)).into_drawing_area();
            self.draw(&root).map_err(|e| e.to_string())?;
            root.present().map_err(|e| e.to_string())?;
        }
        Ok(svg)
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, plotters::coord::Shift>) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        root.fill(&WHITE).map_err(err)?;
        let centre = WIDTH as i32 / 2;
        let title = ("sans-serif", font(20.0)).into_font().style(FontStyle::Bold).color(&BLACK);
        root.draw(&Text::new(self.title, (centre, 18), title.pos(Pos::new(HPos::Center, VPos::Top)))).map_err(err)?;
        if self.is_empty() {
            let big = ("sans-serif", font(18.0)).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center));
            let small =
                ("sans-serif", font(MIN_FONT_PX)).into_font().color(&BLACK).pos(Pos::new(HPos::Center, VPos::Center));
            root.draw(&Text::new(NO_DATA, (centre, TITLE_H + ROW / 2), big)).map_err(err)?;
            root.draw(&Text::new(self.empty_note, (centre, TITLE_H + ROW + ROW / 2), small)).map_err(err)?;
            return Ok(());
        }
        let max = self.rows.iter().chain(self.aside).map(|r| r.1).max().unwrap_or(1).max(1);
        let span = (WIDTH as i32 - LEFT - RIGHT) as f64;
        let main = RGBColor(70, 110, 180);
        let apart = RGBColor(200, 90, 60);
        let mut top = TITLE_H;
        for (label, value) in self.rows {
            self.row(root, top, label, *value, max, span, main)?;
            top += ROW;
        }
        if !self.aside.is_empty() {
            let rule = top + GAP / 2;
            root.draw(&PathElement::new(
                vec![(LEFT / 2, rule), (WIDTH as i32 - RIGHT / 2, rule)],
                RGBColor(160, 160, 160),
            ))
            .map_err(err)?;
            top += GAP;
            for (label, value) in self.aside {
                self.row(root, top, label, *value, max, span, apart)?;
                top += ROW;
            }
        }
        Ok(())
    }

    /// One row: the label right-aligned left of the bar, the value just after the bar's end, both
    /// centred vertically on the bar.
    #[allow(clippy::too_many_arguments)]
    fn row<DB: DrawingBackend>(
        &self,
        root: &DrawingArea<DB, plotters::coord::Shift>,
        top: i32,
        label: &str,
        value: u64,
        max: u64,
        span: f64,
        colour: RGBColor,
    ) -> Result<(), String>
    where
        DB::ErrorType: 'static,
    {
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| e.to_string();
        let y0 = top + (ROW - BAR) / 2;
        let mid = y0 + BAR / 2;
        // A zero still gets a sliver, so the row visibly belongs to the chart.
        let len = ((value as f64 / max as f64) * span).round().max(2.0) as i32;
        root.draw(&Rectangle::new([(LEFT, y0), (LEFT + len, y0 + BAR)], colour.filled())).map_err(err)?;
        let text = |h| ("sans-serif", font(MIN_FONT_PX + 1.0)).into_font().color(&BLACK).pos(Pos::new(h, VPos::Center));
        root.draw(&Text::new(label.to_string(), (LEFT - 10, mid), text(HPos::Right))).map_err(err)?;
        root.draw(&Text::new(value.to_string(), (LEFT + len + 8, mid), text(HPos::Left))).map_err(err)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `(x, y, width, height)` of every `<rect>` but the background.
    fn rects(svg: &str) -> Vec<(f64, f64, f64, f64)> {
        let num = |tag: &str, a: &str| -> f64 {
            let v = tag.split(&format!(" {a}=\"")).nth(1).and_then(|r| r.split('"').next()).unwrap_or("nan");
            v.parse().unwrap_or(f64::NAN)
        };
        svg.split("<rect")
            .skip(1)
            .map(|t| (num(t, "x"), num(t, "y"), num(t, "width"), num(t, "height")))
            .filter(|r| r.2 < WIDTH as f64)
            .collect()
    }

    /// `(text, y, font-size)` of every `<text>`.
    fn texts(svg: &str) -> Vec<(String, f64, f64)> {
        svg.split("<text")
            .skip(1)
            .map(|t| {
                let attr = |a: &str| -> f64 {
                    t.split(&format!(" {a}=\"")).nth(1).and_then(|r| r.split('"').next()).unwrap().parse().unwrap()
                };
                let body = t.split('>').nth(1).unwrap().split('<').next().unwrap().trim().to_string();
                (body, attr("y"), attr("font-size"))
            })
            .collect()
    }

    fn rows(v: &[(&str, u64)]) -> Vec<(String, u64)> {
        v.iter().map(|(l, c)| (l.to_string(), *c)).collect()
    }

    #[test]
    fn labels_and_values_sit_inside_their_bars_vertical_range() {
        let main = rows(&[("retrieved", 40), ("tests_written", 31), ("verified", 12), ("accepted", 0)]);
        let aside = rows(&[("rejected", 28)]);
        let chart = BarChart { title: "Funnel", rows: &main, aside: &aside, empty_note: "" };
        let svg = chart.to_svg().unwrap();
        let bars = rects(&svg);
        let texts = texts(&svg);
        assert_eq!(bars.len(), 5, "{svg}");
        for ((label, value), (_, y, _, h)) in main.iter().chain(&aside).zip(&bars) {
            for needle in [label.clone(), value.to_string()] {
                let t = texts.iter().find(|t| t.0 == needle && t.1 >= *y && t.1 <= y + h);
                assert!(t.is_some(), "`{needle}` not within bar y {y}..{}: {texts:?}", y + h);
            }
        }
        // Bars are ordered top to bottom without overlapping, and lengths follow the values.
        for w in bars.windows(2) {
            assert!(w[0].1 + w[0].3 <= w[1].1, "{bars:?}");
        }
        assert!(bars[0].2 > bars[1].2 && bars[1].2 > bars[2].2, "{bars:?}");
        // Readable: every font at least the minimum.
        assert!(texts.iter().all(|t| t.2 >= MIN_FONT_PX - 0.01), "{texts:?}");
        // The rejected bar is in another colour than the stages.
        let fills: Vec<&str> = svg.split("fill=\"").skip(1).map(|r| r.split('"').next().unwrap()).collect();
        assert!(fills.contains(&"#C85A3C") && fills.contains(&"#466EB4"), "{fills:?}");
        assert!(!NO_DATA.is_empty() && !svg.contains(NO_DATA));
    }

    #[test]
    fn an_empty_chart_says_no_data_in_readable_text() {
        let chart = BarChart { title: "Accepted by round", rows: &[], aside: &[], empty_note: "no record accepted" };
        let svg = chart.to_svg().unwrap();
        let texts = texts(&svg);
        assert!(texts.iter().any(|t| t.0 == NO_DATA), "{svg}");
        assert!(texts.iter().any(|t| t.0 == "no record accepted"), "{svg}");
        assert!(texts.iter().all(|t| t.2 >= MIN_FONT_PX - 0.01), "{texts:?}");
        assert!(rects(&svg).is_empty(), "{svg}");
        let zeros = rows(&[("retrieved", 0)]);
        assert!(BarChart { title: "t", rows: &zeros, aside: &[], empty_note: "" }.to_svg().unwrap().contains(NO_DATA));
    }
}
