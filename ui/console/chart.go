package console

import (
	"fmt"
	"html/template"
	"strconv"
	"strings"
	"time"

	"github.com/modelplane/modelplane"
)

// trafficPoint is the split from one traffic change on.
type trafficPoint struct {
	At    time.Time
	Split modelplane.TrafficSplit
}

func fmtFloat(f float64) string { return strconv.FormatFloat(f, 'g', 4, 64) }

// palette holds colours with at least 3:1 contrast on white, in the order
// versions are drawn; the candidate is always the first.
var palette = []string{"#0a4fb3", "#a40e26", "#116329", "#7d4e00", "#6e40c9"}

// trafficChart draws each version's share over time as a step line: a
// server-rendered SVG, so it needs no script and tests can read it.
func trafficChart(points []trafficPoint, candidate string, start time.Time, end *time.Time) template.HTML {
	if len(points) == 0 {
		return ""
	}
	const w, h, left, right, top, bottom = 640.0, 240.0, 44.0, 12.0, 34.0, 30.0
	t0 := points[0].At
	if !start.IsZero() && start.Before(t0) {
		t0 = start
	}
	t1 := time.Now()
	if end != nil {
		t1 = *end
	}
	if last := points[len(points)-1].At; !t1.After(last) {
		t1 = last.Add(time.Second)
	}
	span := t1.Sub(t0).Seconds()
	x := func(t time.Time) float64 { return left + (w-left-right)*t.Sub(t0).Seconds()/span }
	y := func(pct int) float64 { return top + (h-top-bottom)*(1-float64(pct)/100) }
	versions := sortedVersions(points)
	// The candidate first, so it always gets the first colour.
	for i, v := range versions {
		if v == candidate && i > 0 {
			versions[0], versions[i] = versions[i], versions[0]
		}
	}
	var b strings.Builder
	esc := template.HTMLEscapeString
	fmt.Fprintf(&b, `<svg class="chart" viewBox="0 0 %g %g" width="%g" height="%g" role="img" aria-labelledby="traffic-title traffic-desc" xmlns="http://www.w3.org/2000/svg">`, w, h, w, h)
	fmt.Fprintf(&b, `<title id="traffic-title">Traffic split over time</title><desc id="traffic-desc">%s</desc>`, esc(describeTraffic(points)))
	for _, pct := range []int{0, 50, 100} {
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="%.1f" y2="%.1f" stroke="#d0d7de"/><text x="%g" y="%.1f" font-size="11" text-anchor="end" fill="#57606a">%d%%</text>`,
			left, w-right, y(pct), y(pct), left-6, y(pct)+4, pct)
	}
	fmt.Fprintf(&b, `<text x="%g" y="%g" font-size="11" fill="#57606a">%s</text><text x="%g" y="%g" font-size="11" text-anchor="end" fill="#57606a">%s</text>`,
		left, h-8, t0.UTC().Format("15:04:05"), w-right, h-8, t1.UTC().Format("15:04:05"))
	for i, v := range versions {
		colour := palette[i%len(palette)]
		var path strings.Builder
		prev := -1
		for j, p := range points {
			pct := p.Split[v]
			px := x(p.At)
			switch {
			case j == 0:
				fmt.Fprintf(&path, "M%.1f %.1f", px, y(pct))
			default:
				fmt.Fprintf(&path, " H%.1f V%.1f", px, y(pct))
			}
			prev = pct
		}
		fmt.Fprintf(&path, " H%.1f", x(t1))
		dash := ""
		if v != candidate {
			dash = ` stroke-dasharray="6 3"`
		}
		fmt.Fprintf(&b, `<path d="%s" fill="none" stroke="%s" stroke-width="2.5"%s data-version="%s" data-last="%d"/>`, path.String(), colour, dash, esc(v), prev)
		role := "stable"
		if v == candidate {
			role = "candidate"
		}
		fmt.Fprintf(&b, `<line x1="%g" x2="%g" y1="14" y2="14" stroke="%s" stroke-width="2.5"%s/><text x="%g" y="18" font-size="13" fill="%s">%s (%s)</text>`,
			left+float64(i)*180, left+float64(i)*180+24, colour, dash, left+float64(i)*180+30, colour, esc(v), role)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

func describeTraffic(points []trafficPoint) string {
	parts := make([]string, len(points))
	for i, p := range points {
		parts[i] = p.At.UTC().Format("15:04:05") + " " + trafficString(p.Split)
	}
	return strings.Join(parts, "; ")
}
