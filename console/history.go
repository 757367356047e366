package console

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/simgate/simgate"
)

// chartStart returns the first hour the charts show at now: the start of
// the UTC hour chartHours-1 hours before the current one.
func chartStart(now time.Time) time.Time {
	return now.UTC().Truncate(time.Hour).Add(-(chartHours - 1) * time.Hour)
}

// slotOf returns the chart slot of the hour that starts at h, or false when
// it is outside the chart.
func slotOf(start, h time.Time) (int, bool) {
	d := h.Sub(start)
	if d < 0 || d >= chartHours*time.Hour {
		return 0, false
	}
	return int(d / time.Hour), true
}

// noValues returns chartHours NaNs: hours without a value.
func noValues() []float64 {
	vs := make([]float64, chartHours)
	for i := range vs {
		vs[i] = math.NaN()
	}
	return vs
}

func formatCount(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// formatTenths writes v to a tenth, without a trailing ".0".
func formatTenths(v float64) string {
	return strings.TrimSuffix(strconv.FormatFloat(v, 'f', 1, 64), ".0")
}

func formatDBm(v float64) string { return fmt.Sprintf("%.0f dBm", v) }

// modemHistory is one modem's charts on the modems page.
type modemHistory struct {
	ID     string
	Charts []template.HTML
	// LatestBalance is the modem's newest balance reading in the window,
	// shown as text under the charts (its amount may not have parsed).
	LatestBalance *simgate.BalanceReading
}

// modemCharts returns the charts of modem id (the n-th on the page) from
// the rollups and balance readings since start: SMS parts sent, delivered
// and failed per hour; the hourly average of the signal; and the balance
// (the last amount read in each hour) when it has any reading.
func modemCharts(n int, id string, start time.Time, hours []simgate.ModemHour, balances []simgate.BalanceReading) modemHistory {
	sent, delivered, failed := make([]float64, chartHours), make([]float64, chartHours), make([]float64, chartHours)
	signal := noValues()
	for _, h := range hours {
		i, ok := slotOf(start, h.Hour)
		if !ok || h.ModemID != id {
			continue
		}
		sent[i], delivered[i], failed[i] = float64(h.Sent), float64(h.Delivered), float64(h.Failed)
		if h.SignalSamples > 0 {
			signal[i] = h.SignalDBm
		}
	}
	mh := modemHistory{ID: id}
	mh.Charts = append(mh.Charts, chart{
		ID: fmt.Sprintf("chart-%d-sms", n), Title: "SMS parts per hour", Kind: barChart, Start: start, Zero: true,
		Format: formatCount,
		Series: []series{
			{Name: "sent", Class: "s-sent", Values: sent},
			{Name: "delivered", Class: "s-delivered", Values: delivered},
			{Name: "failed", Class: "s-failed", Values: failed},
		},
	}.render(), chart{
		ID: fmt.Sprintf("chart-%d-signal", n), Title: "Signal, hourly average", Kind: lineChart, Start: start,
		MinSpan: 20, Format: formatDBm,
		Series: []series{{Name: "signal", Class: "s-signal", Values: signal}},
	}.render())

	amount := noValues()
	for _, b := range balances {
		if b.ModemID != id {
			continue
		}
		mh.LatestBalance = &b
		if i, ok := slotOf(start, b.At.Truncate(time.Hour)); ok && b.Amount != nil {
			amount[i] = *b.Amount
		}
	}
	if mh.LatestBalance != nil {
		currency := mh.LatestBalance.Currency
		mh.Charts = append(mh.Charts, chart{
			ID: fmt.Sprintf("chart-%d-balance", n), Title: "Balance, last reading per hour", Kind: lineChart, Start: start,
			Zero: true, Format: func(v float64) string {
				if currency == "" {
					return fmt.Sprintf("%.2f", v)
				}
				return fmt.Sprintf("%.2f %s", v, currency)
			},
			Series: []series{{Name: "balance", Class: "s-balance", Values: amount}},
		}.render())
	}
	return mh
}

// queueCharts returns the queue's charts from its rollups since start: the
// most messages waiting to be sent, and the greatest age of the oldest
// queued message, in each hour.
func queueCharts(start time.Time, hours []simgate.QueueHour) []template.HTML {
	depth, age := noValues(), noValues()
	var maxAge time.Duration
	for _, h := range hours {
		if i, ok := slotOf(start, h.Hour); ok && h.Samples > 0 {
			depth[i], age[i] = float64(h.MaxDepth), h.MaxOldestAge.Seconds()
			maxAge = max(maxAge, h.MaxOldestAge)
		}
	}
	// Ages in the unit that suits the longest, so that the scale's round
	// numbers are round in it.
	unit, name := time.Second, "s"
	switch {
	case maxAge >= 2*time.Hour:
		unit, name = time.Hour, "h"
	case maxAge >= 2*time.Minute:
		unit, name = time.Minute, "min"
	}
	for i, v := range age {
		age[i] = v / unit.Seconds()
	}
	return []template.HTML{
		chart{
			ID: "chart-queue-depth", Title: "Messages waiting to be sent, peak per hour", Kind: lineChart, Start: start,
			Zero: true, Format: formatCount,
			Series: []series{{Name: "waiting", Class: "s-depth", Values: depth}},
		}.render(),
		chart{
			ID: "chart-queue-age", Title: "Oldest queued message's age, peak per hour", Kind: lineChart, Start: start,
			Zero: true, Format: func(v float64) string { return formatTenths(v) + " " + name },
			Series: []series{{Name: "oldest", Class: "s-age", Values: age}},
		}.render(),
	}
}
