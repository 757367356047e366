package console

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"
)

// chartHours is how many hours a chart shows: the current UTC hour and the
// 23 before it.
const chartHours = 24

// chartKind is how a chart draws its values.
type chartKind int

const (
	// barChart draws counts: in each hour one bar per series, from zero.
	barChart chartKind = iota
	// lineChart draws a sampled value: a dot per hour that has one, joined
	// to the next hour's dot; an hour without a value breaks the line.
	lineChart
)

// series is one row of values of a chart, one per hour from the chart's
// Start; NaN where an hour has no value.
type series struct {
	Name   string // in the legend and titles, e.g. "sent"
	Class  string // the CSS class that gives its colour, e.g. "s-sent"
	Values []float64
}

// chart is a small SVG chart of the last chartHours hours, rendered on the
// server: no script, no inline style (the CSP forbids both), colours from
// console.css by class, geometry in presentation attributes.
type chart struct {
	// ID is unique in the page; the ids of the title and description
	// derive from it.
	ID    string
	Title string
	Kind  chartKind
	// Start is the first hour shown, the start of a UTC hour.
	Start  time.Time
	Series []series
	// Zero puts zero on the scale: for quantities (counts, depths, ages,
	// money) whose size matters, not only their change.
	Zero bool
	// MinSpan is the least range the scale covers, so that noise (a signal
	// going from -79 to -77 dBm) does not look like a cliff; 0 means 1.
	MinSpan float64
	// Format writes a value with its unit, for the axis and the titles.
	Format func(float64) string
}

// The chart's geometry, in SVG user units (the SVG scales to its box).
const (
	chartWidth   = 480
	chartHeight  = 150
	plotLeft     = 64 // room for the y labels
	plotTop      = 10
	plotWidth    = chartWidth - plotLeft - 8
	plotHeight   = chartHeight - plotTop - 24 // room for the hour labels
	slotWidth    = float64(plotWidth) / chartHours
	hourLabelGap = 6 // a label every 6 hours, at 00, 06, 12 and 18 UTC
)

// empty reports whether the chart has nothing to show: no value at all, or
// for bars no count above zero.
func (c chart) empty() bool {
	for _, s := range c.Series {
		for _, v := range s.Values {
			if !math.IsNaN(v) && (c.Kind == lineChart || v != 0) {
				return false
			}
		}
	}
	return true
}

// scale returns the range of the y axis: the values' range, widened to
// zero when Zero, to at least MinSpan, then out to multiples of a round
// step (1, 2 or 5 times a power of ten, about a quarter of the range).
func (c chart) scale() (lo, hi float64) {
	lo, hi = math.Inf(1), math.Inf(-1)
	for _, s := range c.Series {
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				lo, hi = math.Min(lo, v), math.Max(hi, v)
			}
		}
	}
	if lo > hi {
		lo, hi = 0, 0
	}
	if c.Zero {
		lo, hi = math.Min(lo, 0), math.Max(hi, 0)
	}
	minSpan := c.MinSpan
	if minSpan <= 0 {
		minSpan = 1
	}
	if span := hi - lo; span < minSpan {
		switch {
		case c.Zero && lo == 0:
			hi = minSpan
		case c.Zero && hi == 0:
			lo = -minSpan
		default:
			lo, hi = lo-(minSpan-span)/2, hi+(minSpan-span)/2
		}
	}
	step := niceCeil((hi - lo) / 4)
	return math.Floor(lo/step) * step, math.Ceil(hi/step) * step
}

// niceCeil returns the least of 1, 2, 5 or 10 times a power of ten that is
// at least x > 0.
func niceCeil(x float64) float64 {
	p := math.Pow(10, math.Floor(math.Log10(x)))
	for _, f := range []float64{1, 2, 5} {
		if x <= f*p*(1+1e-9) {
			return f * p
		}
	}
	return 10 * p
}

// slotX returns the left edge of hour i's slot.
func slotX(i int) float64 { return plotLeft + float64(i)*slotWidth }

// yOf maps v onto the plot for the scale lo..hi: hi at the top.
func yOf(v, lo, hi float64) float64 {
	return plotTop + plotHeight*(hi-v)/(hi-lo)
}

// num writes an SVG coordinate.
func num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// hourLabel names an hour as the charts do: "14:00 UTC".
func hourLabel(t time.Time) string { return t.UTC().Format("15:04") + " UTC" }

// render returns the chart as a <figure>: a caption with the legend, then
// the SVG, or a plain sentence when there is no data.
func (c chart) render() template.HTML {
	esc := template.HTMLEscapeString
	if c.Format == nil {
		c.Format = formatCount
	}
	var b strings.Builder
	if c.empty() {
		fmt.Fprintf(&b, `<figure class="chart chart-empty" id="%s"><figcaption>%s</figcaption>`+
			`<p class="muted">No data in the last 24 h.</p></figure>`, esc(c.ID), esc(c.Title))
		return template.HTML(b.String())
	}
	lo, hi := c.scale()
	kind := "bars"
	if c.Kind == lineChart {
		kind = "line"
	}

	fmt.Fprintf(&b, `<figure class="chart" id="%s"><figcaption>%s`, esc(c.ID), esc(c.Title))
	for _, s := range c.Series {
		fmt.Fprintf(&b, ` <span class="legend"><span class="key %s"></span>%s %s</span>`, esc(s.Class), esc(s.Name), esc(c.legend(s)))
	}
	fmt.Fprintf(&b, `</figcaption>`+"\n")
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" class="chart-svg" viewBox="0 0 %d %d" width="%d" height="%d" `+
		`role="img" aria-labelledby="%[5]s-t %[5]s-d" data-kind="%s" data-slots="%d" data-min="%s" data-max="%s">`+"\n",
		chartWidth, chartHeight, chartWidth, chartHeight, esc(c.ID), kind, chartHours,
		strconv.FormatFloat(lo, 'f', -1, 64), strconv.FormatFloat(hi, 'f', -1, 64))
	fmt.Fprintf(&b, `<title id="%[1]s-t">%[2]s</title><desc id="%[1]s-d">%[3]s</desc>`+"\n", esc(c.ID), esc(c.Title), esc(c.summary()))

	// Axes, the scale's ends, and the hours.
	bottom := float64(plotTop + plotHeight)
	fmt.Fprintf(&b, `<g class="axes">`)
	fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%d" x2="%d" y2="%d"/>`, plotLeft, plotTop, plotLeft+plotWidth, plotTop)
	if lo < 0 && hi > 0 {
		y := num(yOf(0, lo, hi))
		fmt.Fprintf(&b, `<line class="grid" x1="%d" y1="%s" x2="%d" y2="%s"/>`, plotLeft, y, plotLeft+plotWidth, y)
	}
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%d" x2="%d" y2="%s"/>`, plotLeft, plotTop, plotLeft, num(bottom))
	fmt.Fprintf(&b, `<line class="axis" x1="%d" y1="%s" x2="%d" y2="%s"/>`, plotLeft, num(bottom), plotLeft+plotWidth, num(bottom))
	fmt.Fprintf(&b, `<text class="ymax" x="%d" y="%d" text-anchor="end" dominant-baseline="middle">%s</text>`,
		plotLeft-4, plotTop, esc(c.Format(hi)))
	fmt.Fprintf(&b, `<text class="ymin" x="%d" y="%s" text-anchor="end" dominant-baseline="middle">%s</text>`,
		plotLeft-4, num(bottom), esc(c.Format(lo)))
	for i := 0; i <= chartHours; i++ {
		x := num(slotX(i))
		fmt.Fprintf(&b, `<line class="tick" x1="%s" y1="%s" x2="%s" y2="%s"/>`, x, num(bottom), x, num(bottom+3))
		if h := c.Start.Add(time.Duration(i) * time.Hour).UTC(); i < chartHours && h.Hour()%hourLabelGap == 0 {
			fmt.Fprintf(&b, `<text class="hour" x="%s" y="%d" text-anchor="middle">%s</text>`, x, chartHeight-6, h.Format("15:04"))
		}
	}
	fmt.Fprintf(&b, "</g>\n")

	// Lines first, so that the dots and their titles sit on top.
	if c.Kind == lineChart {
		for _, s := range c.Series {
			var d strings.Builder
			prev := false
			for i, v := range s.Values {
				if math.IsNaN(v) {
					prev = false
					continue
				}
				op := "L"
				if !prev {
					op = "M"
				}
				fmt.Fprintf(&d, "%s%s %s ", op, num(slotX(i)+slotWidth/2), num(yOf(v, lo, hi)))
				prev = true
			}
			fmt.Fprintf(&b, `<path class="line %s" d="%s"/>`+"\n", esc(s.Class), strings.TrimSpace(d.String()))
		}
	}

	// One group per hour, for the titles (tooltips) and for tests.
	base := math.Max(lo, math.Min(0, hi))
	for i := range chartHours {
		h := c.Start.Add(time.Duration(i) * time.Hour).UTC()
		fmt.Fprintf(&b, `<g class="slot" data-hour="%s">`, h.Format("2006-01-02T15:04Z"))
		for k, s := range c.Series {
			v := math.NaN()
			if i < len(s.Values) {
				v = s.Values[i]
			}
			if math.IsNaN(v) || (c.Kind == barChart && v == 0) {
				continue
			}
			title := esc(fmt.Sprintf("%s: %s %s", hourLabel(h), c.Format(v), s.Name))
			value := strconv.FormatFloat(v, 'f', -1, 64)
			if c.Kind == lineChart {
				fmt.Fprintf(&b, `<circle class="point %s" cx="%s" cy="%s" r="2.5" data-value="%s"><title>%s</title></circle>`,
					esc(s.Class), num(slotX(i)+slotWidth/2), num(yOf(v, lo, hi)), value, title)
				continue
			}
			// Bars side by side in the middle 70% of the slot; at least
			// 1 unit tall, so that a count of 1 among hundreds shows.
			w := slotWidth * 0.7 / float64(len(c.Series))
			x := slotX(i) + slotWidth*0.15 + float64(k)*w
			y0, y1 := yOf(base, lo, hi), yOf(v, lo, hi)
			top, height := math.Min(y0, y1), math.Abs(y0-y1)
			if height < 1 {
				height = 1
				if v > base {
					top = y0 - 1
				}
			}
			fmt.Fprintf(&b, `<rect class="bar %s" x="%s" y="%s" width="%s" height="%s" data-value="%s"><title>%s</title></rect>`,
				esc(s.Class), num(x), num(top), num(w), num(height), value, title)
		}
		fmt.Fprintf(&b, "</g>\n")
	}
	fmt.Fprintf(&b, "</svg></figure>")
	return template.HTML(b.String())
}

// legend sums up a series: its total for counts, its latest value for
// samples.
func (c chart) legend(s series) string {
	if c.Kind == barChart {
		total := 0.0
		for _, v := range s.Values {
			if !math.IsNaN(v) {
				total += v
			}
		}
		return c.Format(total)
	}
	for i := len(s.Values) - 1; i >= 0; i-- {
		if !math.IsNaN(s.Values[i]) {
			return c.Format(s.Values[i])
		}
	}
	return "none"
}

// summary describes the chart in words, for screen readers.
func (c chart) summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "Per hour from %s on %s to now.", hourLabel(c.Start), c.Start.UTC().Format("2006-01-02"))
	for _, s := range c.Series {
		var n, total float64
		minV, maxV, at, last, lastAt := math.Inf(1), math.Inf(-1), -1, math.NaN(), -1
		for i, v := range s.Values {
			if math.IsNaN(v) {
				continue
			}
			n++
			total += v
			minV = math.Min(minV, v)
			if v > maxV {
				maxV, at = v, i
			}
			last, lastAt = v, i
		}
		switch {
		case n == 0 || (c.Kind == barChart && total == 0):
			fmt.Fprintf(&b, " %s: none.", s.Name)
		case c.Kind == barChart:
			fmt.Fprintf(&b, " %s: %s in total, at most %s in one hour (%s).", s.Name, c.Format(total), c.Format(maxV),
				hourLabel(c.Start.Add(time.Duration(at)*time.Hour)))
		default:
			fmt.Fprintf(&b, " %s: from %s to %s; latest %s (%s).", s.Name, c.Format(minV), c.Format(maxV), c.Format(last),
				hourLabel(c.Start.Add(time.Duration(lastAt)*time.Hour)))
		}
	}
	return b.String()
}
