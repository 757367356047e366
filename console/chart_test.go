package console

import (
	"encoding/xml"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/simgate/simgate"
)

// node is an element of a rendered chart, parsed back.
type node struct {
	XMLName  xml.Name
	Attrs    []xml.Attr `xml:",any,attr"`
	Text     string     `xml:",chardata"`
	Children []node     `xml:",any"`
}

func (n node) attr(name string) string {
	for _, a := range n.Attrs {
		if a.Name.Local == name {
			return a.Value
		}
	}
	return ""
}

func (n node) num(t *testing.T, name string) float64 {
	t.Helper()
	f, err := strconv.ParseFloat(n.attr(name), 64)
	if err != nil {
		t.Fatalf("<%s %s=%q>: %v", n.XMLName.Local, name, n.attr(name), err)
	}
	return f
}

// find returns the elements below n named name with class class among
// their classes ("" for any).
func (n node) find(name, class string) []node {
	var out []node
	for _, c := range n.Children {
		if c.XMLName.Local == name && (class == "" || strings.Contains(" "+c.attr("class")+" ", " "+class+" ")) {
			out = append(out, c)
		}
		out = append(out, c.find(name, class)...)
	}
	return out
}

// parseChart renders c and parses it as XML: the figure must be well
// formed.
func parseChart(t *testing.T, c chart) node {
	t.Helper()
	var n node
	if err := xml.Unmarshal([]byte(c.render()), &n); err != nil {
		t.Fatalf("chart is not well formed: %v\n%s", err, c.render())
	}
	return n
}

// values returns chartHours values: NaN but for those given by slot.
func values(at map[int]float64) []float64 {
	vs := noValues()
	for i, v := range at {
		vs[i] = v
	}
	return vs
}

var chartT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func near(a, b float64) bool { return math.Abs(a-b) < 0.06 }

func TestChartScale(t *testing.T) {
	for _, c := range []struct {
		name    string
		vals    []float64
		zero    bool
		minSpan float64
		lo, hi  float64
	}{
		{"counts", []float64{0, 3, 1}, true, 0, 0, 3},
		{"counts to a round step", []float64{0, 7}, true, 0, 0, 8},
		{"a single count", []float64{1}, true, 0, 0, 1},
		{"counts in hundreds", []float64{130, 0}, true, 0, 0, 150},
		{"signal", []float64{-85, -71}, false, 20, -90, -65},
		{"steady signal", []float64{-79, -79}, false, 20, -90, -65},
		{"weak to strong", []float64{-113, -51}, false, 20, -120, -40},
		{"balance", []float64{12.5, 11}, true, 0, 0, 15},
		{"balance in debt", []float64{-3, 2}, true, 0, -4, 2},
		{"idle queue", []float64{0, 0}, true, 0, 0, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			ch := chart{Zero: c.zero, MinSpan: c.minSpan, Series: []series{{Values: c.vals}}}
			if lo, hi := ch.scale(); !near(lo, c.lo) || !near(hi, c.hi) {
				t.Fatalf("scale of %v = %v..%v, want %v..%v", c.vals, lo, hi, c.lo, c.hi)
			}
		})
	}
}

// Bars: 24 hourly slots, a bar per series where the count is above zero,
// heights in proportion on a scale from zero, labels at the scale's ends
// and every six hours.
func TestChartBars(t *testing.T) {
	c := chart{
		ID: "c1", Title: "SMS <per> hour", Kind: barChart, Start: chartT0, Zero: true, Format: formatCount,
		Series: []series{
			{Name: "sent", Class: "s-sent", Values: values(map[int]float64{0: 1, 23: 4})},
			{Name: "failed", Class: "s-failed", Values: values(map[int]float64{23: 2})},
		},
	}
	for i := range c.Series {
		for j, v := range c.Series[i].Values {
			if math.IsNaN(v) {
				c.Series[i].Values[j] = 0
			}
		}
	}
	svg := parseChart(t, c).find("svg", "")[0]
	if got, want := svg.attr("role"), "img"; got != want {
		t.Fatalf("role %q", got)
	}
	if got, want := svg.attr("aria-labelledby"), "c1-t c1-d"; got != want {
		t.Fatalf("aria-labelledby %q", got)
	}
	if title := svg.find("title", "")[0]; title.attr("id") != "c1-t" || title.Text != "SMS <per> hour" {
		t.Fatalf("title %+v", title)
	}
	desc := svg.find("desc", "")[0].Text
	if want := "sent: 5 in total, at most 4 in one hour (11:00 UTC). failed: 2 in total"; !strings.Contains(desc, want) {
		t.Fatalf("description %q lacks %q", desc, want)
	}
	if lo, hi := svg.attr("data-min"), svg.attr("data-max"); lo != "0" || hi != "4" {
		t.Fatalf("scale %s..%s, want 0..4", lo, hi)
	}
	if lo, hi := svg.find("text", "ymin")[0].Text, svg.find("text", "ymax")[0].Text; lo != "0" || hi != "4" {
		t.Fatalf("axis labels %q..%q", lo, hi)
	}
	slots := svg.find("g", "slot")
	if len(slots) != chartHours {
		t.Fatalf("%d slots, want %d", len(slots), chartHours)
	}
	if got, want := slots[0].attr("data-hour"), "2026-03-01T12:00Z"; got != want {
		t.Fatalf("first slot %s, want %s", got, want)
	}
	if got, want := slots[23].attr("data-hour"), "2026-03-02T11:00Z"; got != want {
		t.Fatalf("last slot %s, want %s", got, want)
	}
	if got := len(svg.find("rect", "bar")); got != 3 {
		t.Fatalf("%d bars, want 3 (zero counts draw none)", got)
	}
	bottom := float64(plotTop + plotHeight)
	for _, b := range []struct {
		slot   int
		class  string
		value  float64
		height float64
	}{
		{0, "s-sent", 1, plotHeight / 4},
		{23, "s-sent", 4, plotHeight},
		{23, "s-failed", 2, plotHeight / 2},
	} {
		rs := slots[b.slot].find("rect", b.class)
		if len(rs) != 1 {
			t.Fatalf("slot %d: %d %s bars", b.slot, len(rs), b.class)
		}
		r := rs[0]
		if got := r.num(t, "data-value"); got != b.value {
			t.Errorf("slot %d %s: value %v, want %v", b.slot, b.class, got, b.value)
		}
		if h, y := r.num(t, "height"), r.num(t, "y"); !near(h, b.height) || !near(y+h, bottom) {
			t.Errorf("slot %d %s: y %v height %v, want height %v standing on %v", b.slot, b.class, y, h, b.height, bottom)
		}
		if x := r.num(t, "x"); x < slotX(b.slot) || x+r.num(t, "width") > slotX(b.slot+1) {
			t.Errorf("slot %d %s: x %v outside the slot", b.slot, b.class, x)
		}
		if title := r.find("title", ""); len(title) != 1 || !strings.HasSuffix(title[0].Text, fmt.Sprintf(": %v %s", b.value, strings.TrimPrefix(b.class, "s-"))) {
			t.Errorf("slot %d %s: title %+v", b.slot, b.class, title)
		}
	}
	var hours []string
	for _, l := range svg.find("text", "hour") {
		hours = append(hours, l.Text)
	}
	if got, want := strings.Join(hours, ","), "12:00,18:00,00:00,06:00"; got != want {
		t.Fatalf("hour labels %s, want %s", got, want)
	}
	if got := len(svg.find("line", "tick")); got != chartHours+1 {
		t.Fatalf("%d hour ticks, want %d", got, chartHours+1)
	}
}

// A line of dBm: higher is better and drawn higher, on a scale of round
// negative numbers; a missing hour breaks the line.
func TestChartNegativeDBm(t *testing.T) {
	c := chart{
		ID: "sig", Title: "Signal", Kind: lineChart, Start: chartT0, MinSpan: 20, Format: formatDBm,
		Series: []series{{Name: "signal", Class: "s-signal", Values: values(map[int]float64{0: -90, 1: -70, 3: -80, 4: -85})}},
	}
	svg := parseChart(t, c).find("svg", "")[0]
	if lo, hi := svg.find("text", "ymin")[0].Text, svg.find("text", "ymax")[0].Text; lo != "-90 dBm" || hi != "-70 dBm" {
		t.Fatalf("axis labels %q..%q, want -90 dBm..-70 dBm", lo, hi)
	}
	points := svg.find("circle", "point")
	if len(points) != 4 {
		t.Fatalf("%d points, want 4", len(points))
	}
	bottom := float64(plotTop + plotHeight)
	for i, want := range []struct {
		slot  int
		value float64
		y     float64
	}{
		{0, -90, bottom},
		{1, -70, plotTop},
		{3, -80, plotTop + plotHeight/2},
		{4, -85, plotTop + plotHeight*3/4},
	} {
		p := points[i]
		if got := p.num(t, "data-value"); got != want.value {
			t.Errorf("point %d: value %v, want %v", i, got, want.value)
		}
		if x, y := p.num(t, "cx"), p.num(t, "cy"); !near(x, slotX(want.slot)+slotWidth/2) || !near(y, want.y) {
			t.Errorf("point %d (%v dBm): at %v,%v, want %v,%v", i, want.value, x, y, slotX(want.slot)+slotWidth/2, want.y)
		}
	}
	d := svg.find("path", "line")[0].attr("d")
	if got := strings.Count(d, "M"); got != 2 {
		t.Fatalf("path %q has %d segments, want 2 (hour 2 is missing)", d, got)
	}
	if desc := svg.find("desc", "")[0].Text; !strings.Contains(desc, "signal: from -90 dBm to -70 dBm; latest -85 dBm (16:00 UTC)") {
		t.Fatalf("description %q", desc)
	}
}

// No data is said in words, without an empty frame.
func TestChartEmpty(t *testing.T) {
	for _, c := range []chart{
		{ID: "e1", Title: "Signal", Kind: lineChart, Start: chartT0, Format: formatDBm, Series: []series{{Name: "signal", Values: noValues()}}},
		{ID: "e2", Title: "SMS", Kind: barChart, Start: chartT0, Format: formatCount, Series: []series{{Name: "sent", Values: make([]float64, chartHours)}}},
	} {
		n := parseChart(t, c)
		if len(n.find("svg", "")) != 0 || !strings.Contains(string(c.render()), "No data in the last 24 h.") {
			t.Fatalf("%s: %s", c.ID, c.render())
		}
	}
	// A queue sampled at zero all day has data: a flat line.
	c := chart{ID: "q", Kind: lineChart, Start: chartT0, Zero: true, Format: formatCount,
		Series: []series{{Name: "waiting", Values: values(map[int]float64{5: 0, 6: 0})}}}
	if got := len(parseChart(t, c).find("circle", "point")); got != 2 {
		t.Fatalf("%d points for two samples of 0", got)
	}
}

// Rollups land in the slots of their hours; hours before the window, and
// other modems, are left out; a balance chart appears with a reading.
func TestModemCharts(t *testing.T) {
	now := chartT0.Add(23*time.Hour + 20*time.Minute) // 2026-03-02 11:20
	start := chartStart(now)
	if !start.Equal(chartT0) {
		t.Fatalf("start %s, want %s", start, chartT0)
	}
	amount := 7.25
	hours := []simgate.ModemHour{
		{ModemID: "m0", Hour: chartT0.Add(-time.Hour), Sent: 9},
		{ModemID: "m0", Hour: chartT0, Sent: 2, Delivered: 1, SignalSamples: 60, SignalDBm: -77.5},
		{ModemID: "m1", Hour: chartT0.Add(23 * time.Hour), Sent: 5},
		{ModemID: "m0", Hour: chartT0.Add(23 * time.Hour), Sent: 3, Failed: 1},
	}
	balances := []simgate.BalanceReading{
		{ModemID: "m0", At: chartT0.Add(22*time.Hour + 5*time.Minute), Amount: &amount, Raw: "7.25"},
		{ModemID: "m0", At: chartT0.Add(23*time.Hour + 5*time.Minute), Raw: "try later"},
	}
	mh := modemCharts(0, "m0", start, hours, balances)
	if len(mh.Charts) != 3 || mh.LatestBalance == nil || mh.LatestBalance.Raw != "try later" {
		t.Fatalf("%d charts, latest balance %+v", len(mh.Charts), mh.LatestBalance)
	}
	var sms node
	if err := xml.Unmarshal([]byte(mh.Charts[0]), &sms); err != nil {
		t.Fatal(err)
	}
	slots := sms.find("g", "slot")
	got := func(slot int, class string) string {
		var vs []string
		for _, r := range slots[slot].find("rect", class) {
			vs = append(vs, r.attr("data-value"))
		}
		return strings.Join(vs, ",")
	}
	if got(0, "s-sent") != "2" || got(0, "s-delivered") != "1" || got(23, "s-sent") != "3" || got(23, "s-failed") != "1" {
		t.Fatalf("bars: %s", mh.Charts[0])
	}
	if n := len(sms.find("rect", "bar")); n != 4 {
		t.Fatalf("%d bars, want 4", n)
	}
	var bal node
	if err := xml.Unmarshal([]byte(mh.Charts[2]), &bal); err != nil {
		t.Fatal(err)
	}
	if ps := bal.find("circle", "point"); len(ps) != 1 || ps[0].attr("data-value") != "7.25" {
		t.Fatalf("balance: %s", mh.Charts[2])
	}
	if other := modemCharts(1, "m2", start, hours, balances); len(other.Charts) != 2 || other.LatestBalance != nil {
		t.Fatalf("a modem without rollups: %+v", other)
	}
}
