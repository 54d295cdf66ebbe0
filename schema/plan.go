package schema

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Plan is a named subscription level; its Retention decides how long the
// events of an org on it are kept.
type Plan struct {
	Name      string        `json:"name"`
	Retention time.Duration `json:"retention"`
}

// ExpiresAt is the expiry of an event received at received by an org on p.
// It is fixed at receive time: a later plan change affects new events only.
func (p Plan) ExpiresAt(received time.Time) time.Time {
	return received.Add(p.Retention).UTC()
}

// Retention bounds and the plan name pattern.
const (
	MinRetention = time.Second
	MaxRetention = 10 * 366 * 24 * time.Hour
)

// PlanNamePattern is what a plan name must match.
var PlanNamePattern = regexp.MustCompile(`^[a-z][a-z0-9_-]{0,31}$`)

// Plans is the set of plans a server offers, by name.
type Plans map[string]Plan

// DefaultPlans: free keeps 7 days, pro 90 days, enterprise 365 days.
func DefaultPlans() Plans {
	return Plans{
		"free":       {Name: "free", Retention: 7 * 24 * time.Hour},
		"pro":        {Name: "pro", Retention: 90 * 24 * time.Hour},
		"enterprise": {Name: "enterprise", Retention: 365 * 24 * time.Hour},
	}
}

// Lookup returns the named plan, or a KindInvalid error naming the plans
// that exist.
func (ps Plans) Lookup(name string) (Plan, error) {
	if p, ok := ps[name]; ok {
		return p, nil
	}
	return Plan{}, &Error{Kind: KindInvalid, Code: "unknown_plan",
		Message: fmt.Sprintf("unknown plan %q; plans are: %s", name, strings.Join(ps.Names(), ", "))}
}

// Names lists the plan names, sorted.
func (ps Plans) Names() []string {
	names := make([]string, 0, len(ps))
	for n := range ps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// String renders the plans in the form ParsePlans reads.
func (ps Plans) String() string {
	parts := make([]string, 0, len(ps))
	for _, n := range ps.Names() {
		parts = append(parts, n+"="+FormatRetention(ps[n].Retention))
	}
	return strings.Join(parts, ",")
}

// ParsePlans reads "name=retention,..." where a retention is a whole number
// followed by a unit: s, m, h, d (days) or y (365 days), e.g.
// "free=7d,pro=90d,enterprise=365d,trial=12h".
func ParsePlans(s string) (Plans, error) {
	ps := Plans{}
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, ret, ok := strings.Cut(item, "=")
		if !ok {
			return nil, fmt.Errorf("plan %q: want name=retention, e.g. pro=90d", item)
		}
		name = strings.TrimSpace(name)
		if !PlanNamePattern.MatchString(name) {
			return nil, fmt.Errorf("plan name %q must match %s", name, PlanNamePattern)
		}
		if _, dup := ps[name]; dup {
			return nil, fmt.Errorf("plan %q given twice", name)
		}
		d, err := ParseRetention(strings.TrimSpace(ret))
		if err != nil {
			return nil, fmt.Errorf("plan %q: %w", name, err)
		}
		ps[name] = Plan{Name: name, Retention: d}
	}
	if len(ps) == 0 {
		return nil, fmt.Errorf("no plans given")
	}
	return ps, nil
}

var retentionUnits = map[byte]time.Duration{
	's': time.Second, 'm': time.Minute, 'h': time.Hour,
	'd': 24 * time.Hour, 'y': 365 * 24 * time.Hour,
}

// ParseRetention reads a whole number with a unit (s, m, h, d, y) within
// MinRetention and MaxRetention.
func ParseRetention(s string) (time.Duration, error) {
	if len(s) < 2 {
		return 0, fmt.Errorf("retention %q: want a number and a unit (s, m, h, d, y)", s)
	}
	unit, ok := retentionUnits[s[len(s)-1]]
	n, err := strconv.ParseInt(s[:len(s)-1], 10, 64)
	if !ok || err != nil || n <= 0 {
		return 0, fmt.Errorf("retention %q: want a positive whole number and a unit (s, m, h, d, y)", s)
	}
	if n > int64(MaxRetention/unit) {
		return 0, fmt.Errorf("retention %q exceeds the maximum of %s", s, FormatRetention(MaxRetention))
	}
	return time.Duration(n) * unit, nil
}

// FormatRetention renders d in the largest unit that divides it exactly.
func FormatRetention(d time.Duration) string {
	for _, u := range []struct {
		c byte
		d time.Duration
	}{{'d', 24 * time.Hour}, {'h', time.Hour}, {'m', time.Minute}} {
		if d%u.d == 0 {
			return strconv.FormatInt(int64(d/u.d), 10) + string(u.c)
		}
	}
	return strconv.FormatInt(int64(d/time.Second), 10) + "s"
}
